"""The directories a test run makes in the temp directory and what the run leaves of them: its
runtime directories (``/tmp/wpprt-*``, where its sessions' hosts are found) and fmt's program
caches (``/tmp/wppcache-*``).

Each process of a run (pytest, or pytest-xdist's controller and each of its workers) makes its
own of each, named with the run's tag (``WPPTRACE_TEST_RUN``: made by the run's first process,
inherited by the processes it starts), and removes them as it ends. A process that could not
(a worker killed, or ended by ``os._exit`` when an interrupted run stops it) leaves them
behind: the run's first process, at its end (``at_run_end``), finds the run's directories
still there (by their tag, owned by this user), fails the run naming them, and removes them
with any session host serving there."""
from __future__ import annotations

import os
import secrets
import shutil
import stat
import sys
import tempfile
import time

import pytest

from session_hosts import kill_session_hosts

VARIABLE = "WPPTRACE_TEST_RUN"
RUNTIME = "wpprt-"
CACHE = "wppcache-"
#: what the last processes of a run get to remove their own (a worker that ran no test
#: removes its directory as it exits, which may be after the run's last hook begins)
GRACE = 2.0


def _run_tag() -> tuple[str, bool]:
    given = os.environ.get(VARIABLE)
    if given:
        return given, False
    os.environ[VARIABLE] = made = secrets.token_hex(6)
    return made, True


#: this run's tag, and whether this process is the run's first (the one that made it)
TAG, FIRST_OF_RUN = _run_tag()
_made: list[str] = []


def make(kind: str = RUNTIME) -> str:
    """A new directory of this run (``kind``: RUNTIME or CACHE), private to this process."""
    directory = tempfile.mkdtemp(prefix=f"{kind}{TAG}-")
    _made.append(directory)
    return directory


def remove(directory: str) -> None:
    """``directory`` removed, any session host serving there killed first."""
    kill_session_hosts(directory)
    shutil.rmtree(directory, ignore_errors=True)


def _of_run() -> list[str]:
    base = tempfile.gettempdir()
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return []
    found = []
    for name in names:
        if name.startswith((f"{RUNTIME}{TAG}-", f"{CACHE}{TAG}-")):
            path = os.path.join(base, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue                    # removed meanwhile
            if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid():
                found.append(path)
    return found


def left(grace: float = GRACE) -> list[str]:
    """The run's directories still there once none is, or as they are after ``grace``."""
    deadline = time.monotonic() + grace
    while (found := _of_run()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def report(found: list[str]) -> str:
    """What a test run says of the directories its processes left."""
    return (f"{len(found)} director{'y' if len(found) == 1 else 'ies'} of this run still "
            f"there at its end (a process of the run ended without removing its own; removed "
            f"now): " + ", ".join(found))


def at_run_end(session: pytest.Session) -> None:
    """In the run's first process (its ``pytest_sessionfinish``, after pytest-xdist's controller
    ended its workers): its own directories removed, and the run failed naming those left."""
    if not FIRST_OF_RUN:
        return
    for directory in _made:
        remove(directory)
    found = left()
    if not found:
        return
    for directory in found:
        remove(directory)
    said = report(found)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:       # before the summary; the exit status says the run failed
        reporter.write("\n")             # (after the progress line, which xdist leaves open)
        reporter.write_line(said, red=True, bold=True)
    else:
        print(said, file=sys.stderr)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
