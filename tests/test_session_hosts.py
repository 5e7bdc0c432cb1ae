"""The clean-up at the end of a test run finds the session hosts a test left running, though
their sockets are bound through the descriptor the core holds the runtime directory at (so
/proc/net/unix names /proc/self/fd/N/s-1.sock, not a path in the directory), and kills nothing
but the run's own processes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

from session_hosts import holding, kill_session_hosts

TESTS = os.path.dirname(os.path.abspath(__file__))

LEFT_RUNNING = textwrap.dedent("""
    import os, sys
    from wpptrace.provider.sessions import TraceSession, session_info
    s = TraceSession("left-running", os.path.join(sys.argv[1], "left.etl"))
    print(session_info("left-running").host_pid, flush=True)
    os._exit(0)                           # the session is never stopped: its host runs on
""")

# a process that holds the directory open, as `find` or `du` does while it reads it
READER = textwrap.dedent("""
    import os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
    print(os.getpid(), flush=True)
    time.sleep(600)
""")

# another test run: its own process, subreaper of its hosts, that cleans up the same directory
OTHER_RUN = textwrap.dedent("""
    import os, subprocess, sys
    sys.path.insert(0, sys.argv[1])
    from session_hosts import become_subreaper, holding, kill_session_hosts
    become_subreaper()
    done = subprocess.run([sys.executable, "-c", sys.argv[2], sys.argv[3]], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    host = int(done.stdout)
    assert holding(sys.argv[4]) == [host], (holding(sys.argv[4]), host)
    kill_session_hosts(sys.argv[4])
    print(host, holding(sys.argv[4]), flush=True)
""")


def _start_host(tmp_path, runtime) -> int:
    done = subprocess.run([sys.executable, "-c", LEFT_RUNNING, str(tmp_path)], capture_output=True, text=True,
                          env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)), timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout)


def test_a_host_left_running_is_killed_and_does_not_make_the_directory_again(tmp_path):
    runtime = tmp_path / "rt"
    host = _start_host(tmp_path, runtime)
    assert host in holding(str(runtime))
    kill_session_hosts(str(runtime))
    assert holding(str(runtime)) == []
    shutil.rmtree(runtime)
    assert not os.path.exists(f"/proc/{host}/fd/0")       # gone, or a zombie that holds nothing
    assert not runtime.exists()


def test_a_host_is_found_through_a_symlinked_path(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    runtime = tmp_path / "link" / "rt"                    # as mkdtemp gives it under a TMPDIR that is a link
    host = _start_host(tmp_path, runtime)
    assert holding(str(runtime)) == [host]
    kill_session_hosts(str(runtime))
    assert holding(str(runtime)) == []
    assert not os.path.exists(f"/proc/{host}/fd/0")
    shutil.rmtree(tmp_path / "real" / "rt")


def test_a_process_outside_the_run_that_holds_the_directory_is_not_killed(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    # a reader started apart from the other run (its own session, not its descendant), such as
    # a `du` or a backup of the user's
    reader = subprocess.Popen([sys.executable, "-c", READER, str(runtime)], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    try:
        assert int(reader.stdout.readline()) == reader.pid
        env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
        done = subprocess.run([sys.executable, "-c", OTHER_RUN, TESTS, LEFT_RUNNING, str(tmp_path), str(runtime)],
                              capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        host, left = done.stdout.split(" ", 1)
        assert left.strip() == "[]"                          # the other run's host is killed
        assert not os.path.exists(f"/proc/{host}/fd/0")
        assert reader.poll() is None                         # the reader is not
    finally:
        reader.kill()
        reader.wait()
