"""The session calls every provider test script shares (provider_scripts.SESSION_CALLS), checked
on their own: a script that misreads one fails, or passes, for the wrong reason."""
from __future__ import annotations

import io
import os

from provider_scripts import SESSION_CALLS


def _calls(**replaced) -> dict:
    names: dict = {"out": "/nonexistent"}
    exec(SESSION_CALLS, names)       # the tests' own text, not input
    names.update(replaced)           # a name the calls look up in their globals, e.g. open
    return names


def test_gone_is_false_for_a_running_process_and_true_for_a_zombie():
    calls = _calls()
    assert calls["gone"](os.getpid()) is False
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        os.waitid(os.P_PID, child, os.WEXITED | os.WNOWAIT)   # a zombie now, not reaped
        assert calls["gone"](child) is True
    finally:
        os.waitpid(child, 0)
    assert calls["gone"](child) is True            # reaped: no /proc entry


def test_gone_is_true_for_a_process_reaped_between_the_open_and_the_read():
    """/proc/PID/stat opened, then the process reaped: the read fails with ESRCH. The check
    raised ProcessLookupError, and the script that waited for a session host to end failed."""
    class Reaped(io.StringIO):
        def read(self, *args):
            raise ProcessLookupError(3, "No such process")

    assert _calls(open=lambda *args: Reaped())["gone"](os.getpid()) is True
    assert _calls(open=lambda *args: io.StringIO(""))["gone"](os.getpid()) is True


def test_wait_gone_says_whether_the_process_ended_in_time():
    """True for a process that ended (a zombie, as a host not our child is to its waiter),
    False for one that still runs when the time is up."""
    calls = _calls()
    assert calls["wait_gone"](os.getpid(), 0.1) is False
    child = os.fork()
    if child == 0:
        os._exit(0)
    try:
        assert calls["wait_gone"](child) is True
    finally:
        os.waitpid(child, 0)
