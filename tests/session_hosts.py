"""The processes a test run leaves using its runtime directory: found by the directory they hold
open (the core holds its runtime directory open and binds its sockets through that descriptor,
so /proc/net/unix names them /proc/self/fd/N/..., never by the directory's path)."""
from __future__ import annotations

import os
import signal
import time


def holding(directory: str) -> list[int]:
    """The processes other than this one with a descriptor open on ``directory``."""
    me = os.getpid()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == me:
            continue
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target in (directory, directory + " (deleted)"):
                found.append(int(pid))
                break
    return found


def kill_session_hosts(directory: str, patience: float = 10.0) -> None:
    """SIGKILL every process holding ``directory`` (session hosts, and processes a test left
    behind), and wait (up to ``patience`` s) until none holds it: a host still running when the
    directory is removed ends, and makes it again to free its registry entry."""
    deadline = time.monotonic() + patience
    while True:
        pids = holding(directory)
        if not pids or time.monotonic() >= deadline:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)
