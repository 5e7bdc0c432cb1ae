"""A process forks while an enable of its provider is pending (the registry has it, the
provider here not yet): the child's ControlCallback runs after fork() returned, never inside
it. A fork handler runs before the child's runtime starts again: Python rebuilds its GIL after
the fork handlers, and a Python callback that released the GIL there never got it back, the
child hung in os.fork() for good."""
from __future__ import annotations

import subprocess
import sys


def run(program, mode: str, out) -> dict[str, int]:
    done = subprocess.run([str(program), mode, str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    words = done.stdout.split()
    return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}


def test_a_child_forked_with_an_enable_pending_gets_it_after_fork_returns(build_c_program_with_test_points, out):
    """The child's endpoint copies the registry on its own thread, after fork() returned; the
    copy made inside fork() ran the callback there, on the forking thread."""
    got = run(build_c_program_with_test_points("fork_pending_enable"), "plain", out)
    assert got == {"in_fork": 0, "child_enabled": 1, "held_reached": 0, "enabled_while_held": 0,
                   "enable": 0, "parent_enabled": 1, "child_status": 0, "stop_a": 0}


def test_callbacks_held_in_a_forked_child_wait_until_it_lets_them_go(build_c_program_with_test_points, out):
    """The process asked for a forked child's callbacks to be held (as the Python layer does,
    whose callbacks need the interpreter running again in the child): the child's endpoint
    thread reaches the hold with no callback run; the child's release lets the copy run."""
    got = run(build_c_program_with_test_points("fork_pending_enable"), "held", out)
    assert got == {"in_fork": 0, "child_enabled": 1, "held_reached": 1, "enabled_while_held": 0,
                   "enable": 0, "parent_enabled": 1, "child_status": 0, "stop_a": 0}


def test_a_trace_call_of_the_forked_child_lets_its_held_callbacks_go(build_c_program_with_test_points, out):
    got = run(build_c_program_with_test_points("fork_pending_enable"), "held-trace", out)
    assert got == {"in_fork": 0, "child_enabled": 1, "held_reached": 1, "enabled_while_held": 0,
                   "enable": 0, "parent_enabled": 1, "child_status": 0, "stop_a": 0}


# A Python application with an enable pending at each fork: its endpoint thread sits in a
# callback that waits (so another process's enable of `trace` reaches the registry only),
# while threads keep the GIL contended. Each child must return from os.fork(), get the enable
# and exit 0. Prints "forks N exited N enabled N hung N".
FORKING_APP = r"""
import os, signal, subprocess, sys, threading, time, uuid
from wpptrace.provider import Provider, api
from wpptrace.provider._hazmat import lib
from wpptrace.provider.sessions import TraceSession

out, forks = sys.argv[1], int(sys.argv[2])
session = TraceSession("fork-pending-py", os.path.join(out, "a.etl"))
trace = Provider("ForkPending", guid=uuid.uuid4(), flags=("IO",))
busy_guid = uuid.uuid4()
in_callback, let_go = threading.Event(), threading.Event()

def waits(code, context, buffer):
    if code == lib.WMI_ENABLE_EVENTS:
        in_callback.set()
        let_go.wait(300)
    return 0

busy = api.RegisterTraceGuids(waits, None, busy_guid, [])

def cli(*args):
    subprocess.run([sys.executable, "-m", "wpptrace", "session", *args], check=True, capture_output=True)

cli("enable", "fork-pending-py", "--guid", str(busy_guid))     # the endpoint thread waits in it
assert in_callback.wait(60)
cli("enable", "fork-pending-py", "--guid", str(trace.guid))    # unanswered here: pending
assert not trace.enabled()
done = threading.Event()

def spin():
    i = 0
    while not done.is_set():
        i += 1

spinners = [threading.Thread(target=spin, daemon=True) for _ in range(3)]
for t in spinners:
    t.start()
sys.setswitchinterval(1e-6)
exited = enabled = hung = 0
for k in range(forks):
    pid = os.fork()
    if pid == 0:
        for _ in range(30000):
            if trace.enabled():
                os._exit(0)
            time.sleep(0.001)
        os._exit(3)
    until = time.monotonic() + 120
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            exited += 1
            enabled += os.waitstatus_to_exitcode(status) == 0
            break
        if time.monotonic() > until:
            hung += 1
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.005)
done.set()
let_go.set()
print("forks", forks, "exited", exited, "enabled", enabled, "hung", hung)
session.stop()
"""


def test_a_python_child_forked_with_an_enable_pending_returns_from_fork(out):
    """Before, a child's copy of the registry ran the Python callback inside fork(); with
    the GIL contended at the fork, the callback's release of the GIL hung the child for good."""
    script = out / "forking_app.py"
    script.write_text(FORKING_APP)
    done = subprocess.run([sys.executable, str(script), str(out), "40"], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert done.stdout.split() == ["forks", "40", "exited", "40", "enabled", "40", "hung", "0"]
