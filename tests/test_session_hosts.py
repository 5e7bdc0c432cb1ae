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
import time

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


# a child that leaves a grandchild behind in the run's session (no setsid): the grandchild is
# given to the run's process when the child ends, and ends when its standard input is closed
LEAVES_A_GRANDCHILD = textwrap.dedent("""
    import os, sys
    if os.fork() == 0:
        print(os.getpid(), flush=True)
        sys.stdin.read()
        os._exit(3)
    os._exit(0)
""")


def _state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _until(condition, what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_an_orphan_in_the_runs_session_is_reaped_and_children_made_here_keep_their_status():
    """A process given to the run's process (its parent ended first) that ends is reaped as the
    run goes on, though it is in the run's session: a zombie looks alive to kill(pid, 0). The
    children the run's process made itself, ended and not waited for yet, are left to whoever
    waits for them, with their exit status."""
    owned = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(7)"])
    forked = os.fork()
    if forked == 0:
        os._exit(5)
    child = subprocess.Popen([sys.executable, "-c", LEAVES_A_GRANDCHILD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    assert child.wait() == 0
    _until(lambda: _state(owned.pid) == "Z" and _state(forked) == "Z", "the owned children end")
    assert os.getsid(grandchild) == os.getsid(0)
    child.stdin.close()                             # the grandchild ends
    _until(lambda: _state(grandchild) is None, f"grandchild {grandchild} reaped")
    assert _state(owned.pid) == "Z" and _state(forked) == "Z"
    assert owned.wait() == 7
    assert os.waitstatus_to_exitcode(os.waitpid(forked, 0)[1]) == 5


# another test run that asks which of its processes hold a directory, and tells whose
# descriptors it looked at
WALKS = textwrap.dedent("""
    import os, subprocess, sys
    sys.path.insert(0, sys.argv[1])
    import session_hosts
    inside = subprocess.Popen([sys.executable, "-c", sys.argv[2], sys.argv[3]], stdout=subprocess.PIPE,
                              text=True)
    assert int(inside.stdout.readline()) == inside.pid
    walked = []
    real_holds = session_hosts._holds
    session_hosts._holds = lambda pid, *a: walked.append(pid) or real_holds(pid, *a)
    held = session_hosts.holding(sys.argv[3])
    print(held == [inside.pid], inside.pid in walked, all(session_hosts._mine(pid) for pid in walked),
          " ".join(map(str, walked)), flush=True)
    inside.kill()
    inside.wait()
""")


def test_only_the_runs_processes_have_their_descriptors_looked_at(tmp_path):
    """The clean-up walks the descriptors of the run's own processes only, not those of every
    process of the machine (another user's, or the user's outside the run)."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    outside = subprocess.Popen([sys.executable, "-c", READER, str(runtime)], stdout=subprocess.PIPE,
                               text=True)
    try:
        assert int(outside.stdout.readline()) == outside.pid
        done = subprocess.run([sys.executable, "-c", WALKS, TESTS, READER, str(runtime)],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        held_inside, walked_inside, walked_only_own, *walked = done.stdout.split()
        assert (held_inside, walked_inside, walked_only_own) == ("True", "True", "True"), done.stdout
        assert str(outside.pid) not in walked and "1" not in walked
    finally:
        outside.kill()
        outside.wait()


# a run's process whose reaper meets a fault (argv[3]) while an orphan given to it ends: it
# tells whether the orphan was reaped, and what the reaper said failed
REAPS_ON = textwrap.dedent("""
    import builtins, io, os, subprocess, sys, time
    sys.path.insert(0, sys.argv[1])
    import session_hosts
    session_hosts.become_subreaper()
    child = subprocess.Popen([sys.executable, "-c", sys.argv[2]], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    assert child.wait() == 0
    if sys.argv[3] == "cut stat":
        # its stat read back empty, then cut before the name's end, then short of fields
        texts = [b"", b"%d (python" % grandchild, b"%d (python) Z 1" % grandchild]
        def cut(path, *args, **kwargs):
            if path == f"/proc/{grandchild}/stat" and texts:
                return io.BytesIO(texts.pop(0))
            return builtins.open(path, *args, **kwargs)
        session_hosts.open = cut
    else:
        children, failed = session_hosts._children, []
        def fails_once():
            if not failed:
                failed.append(1)
                raise RuntimeError("a defect in one pass")
            return children()
        session_hosts._children = fails_once
    child.stdin.close()                             # the grandchild ends
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{grandchild}") and time.monotonic() < deadline:
        time.sleep(0.01)
    print(os.path.exists(f"/proc/{grandchild}"))
    print(session_hosts.reaper_failure())
""")


def _reaps_on(fault: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", REAPS_ON, TESTS, LEAVES_A_GRANDCHILD, fault],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    left, said = done.stdout.split("\n", 1)
    return left, said


def test_a_stat_read_empty_or_cut_short_is_looked_at_again_not_the_reapers_end():
    """A process's stat read back empty (as it can be for one that ended meanwhile), or cut
    short, is taken as unreadable this time: it raised IndexError in the reaper, which then
    stopped reaping for the rest of the run."""
    left, said = _reaps_on("cut stat")
    assert (left, said) == ("False", "None\n")          # reaped; nothing failed


def test_a_pass_of_the_reaper_that_fails_is_reported_and_the_reaping_goes_on():
    """A defect in one pass is kept for the run's end to report (its clean-up fails with it),
    and the passes after it still reap."""
    left, said = _reaps_on("a pass fails")
    assert left == "False"                              # reaped by a later pass
    assert said.startswith("failed passes: 1; the first:\nTraceback"), said
    assert said.rstrip().endswith("RuntimeError: a defect in one pass"), said
