"""The processes a test run leaves running: at its end, every process descending from the run's
process (a pytest-xdist worker, or pytest itself without workers) must have ended, but for the
helpers multiprocessing keeps for the process's lifetime (its resource tracker and fork
server, which end with it). Processes that end as a test's clean-up finishes (a session host
after its STOP, a child reaped by a thread) get a short grace; the ones still running after it
are the tests' defects, named by pid and command line, and killed."""
from __future__ import annotations

import os
import signal
import time

from session_hosts import _stat_fields

GRACE = 2.0


def _lifetime_helpers() -> set[int]:
    """The pids of the processes multiprocessing started to serve this one while it lives."""
    import multiprocessing.forkserver
    import multiprocessing.resource_tracker

    pids = {getattr(multiprocessing.resource_tracker._resource_tracker, "_pid", None),
            getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)}
    return {pid for pid in pids if pid}


def descendants(root: int) -> dict[int, str]:
    """The running (not ended) processes descending from ``root``, as {pid: command line}; the
    lifetime helpers of multiprocessing are not listed (what they started is)."""
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (fields := _stat_fields(int(name))) is not None and fields[0] not in "ZX":
            children.setdefault(int(fields[1]), []).append(int(name))
    helpers = _lifetime_helpers() if root == os.getpid() else set()
    found: dict[int, str] = {}
    seen: set[int] = set()
    todo = list(children.get(root, ()))
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        if pid not in helpers:
            found[pid] = command_line(pid)
        todo.extend(children.get(pid, ()))
    return found


def command_line(pid: int) -> str:
    """The process's command line (its name in brackets if it has none, as ps shows it)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            words = f.read().rstrip(b"\0").split(b"\0")
        if words != [b""]:
            return " ".join(w.decode("utf-8", "replace") for w in words)
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f"[{f.read().decode('utf-8', 'replace').strip()}]"
    except OSError:
        return "?"


def left_running(root: int, grace: float = GRACE, among: set[int] | None = None) -> dict[int, str]:
    """``descendants(root)`` (only those of ``among`` when given) once none is left, or as they
    are after ``grace`` seconds. ``among`` is what a test waits for: the processes the run's
    other tests keep (a worker's session hosts) would have it wait the whole grace."""
    deadline = time.monotonic() + grace
    while True:
        found = descendants(root)
        if among is not None:
            found = {pid: command for pid, command in found.items() if pid in among}
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.05)


def report(found: dict[int, str]) -> str:
    """What a test run says of the processes it left running."""
    lines = [f"  pid {pid}: {command}" for pid, command in sorted(found.items())]
    return (f"{len(found)} process(es) started by the tests still running at the end of the run "
            f"(a test or its clean-up left them; killed now):\n" + "\n".join(lines))


def kill(found: dict[int, str]) -> None:
    """SIGKILL each of ``found`` that is still the process it was (a pidfd names it)."""
    for pid in found:
        try:
            handle = os.pidfd_open(pid)
        except OSError:
            continue                    # ended meanwhile
        try:
            if command_line(pid) == found[pid]:
                signal.pidfd_send_signal(handle, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(handle)
