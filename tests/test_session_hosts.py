"""The clean-up at the end of a test run finds the session hosts a test left running, though
their sockets are bound through the descriptor the core holds the runtime directory at (so
/proc/net/unix names /proc/self/fd/N/s-1.sock, not a path in the directory)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

from session_hosts import holding, kill_session_hosts

LEFT_RUNNING = textwrap.dedent("""
    import os, sys
    from wpptrace.provider.sessions import TraceSession, session_info
    s = TraceSession("left-running", os.path.join(sys.argv[1], "left.etl"))
    print(session_info("left-running").host_pid, flush=True)
    os._exit(0)                           # the session is never stopped: its host runs on
""")


def test_a_host_left_running_is_killed_and_does_not_make_the_directory_again(tmp_path):
    runtime = tmp_path / "rt"
    done = subprocess.run([sys.executable, "-c", LEFT_RUNNING, str(tmp_path)], capture_output=True, text=True,
                          env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)), timeout=120)
    assert done.returncode == 0, done.stderr
    host = int(done.stdout)
    assert host in holding(str(runtime))
    kill_session_hosts(str(runtime))
    assert holding(str(runtime)) == []
    shutil.rmtree(runtime)
    assert not os.path.exists(f"/proc/{host}/fd/0")       # gone, or a zombie that holds nothing
    assert not runtime.exists()
