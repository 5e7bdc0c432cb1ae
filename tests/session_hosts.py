"""The processes a test run leaves using its runtime directory, and their clean-up.

A session host is found by the directory it holds open (the core holds its runtime directory
open and binds its sockets through that descriptor, so /proc/net/unix names them
/proc/self/fd/N/..., never by the directory's path). Holding it is not enough to be killed:
anything that walks the temp directory (``find``, ``du``, a backup, a file manager) holds it for
a while too. Only processes of this user that descend from the run's process are taken, which
hosts do because that process is made a child subreaper (``become_subreaper``): a host that
daemonizes is given to it, not to init. The signal goes through a pidfd opened before the last
check, so a pid reused meanwhile is never signalled."""
from __future__ import annotations

import ctypes
import os
import signal
import threading
import time

_PR_SET_CHILD_SUBREAPER = 36
_reaper: threading.Thread | None = None


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, pgrp, session, ...)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(b")") + 2:].decode().split()


def _adopted(pid: int, my_session: int) -> bool:
    """A child given to this process as a subreaper, not one it made: every child it made is in
    its session or leads its own (setsid), and a host is in the session of the process that
    forked it and ended."""
    fields = _stat_fields(pid)
    if fields is None:
        return False
    session = int(fields[3])
    return session not in (pid, my_session)


def _reap_adopted() -> None:
    """Reap the ended processes given to this one (hosts and their like), which nothing else
    waits for: a zombie would look alive to ``kill(pid, 0)``. Children this process made are
    left to whoever made them (subprocess, the core)."""
    me, my_session = os.getpid(), os.getsid(0)
    while True:
        time.sleep(0.05)
        try:
            peek = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            continue
        if peek is None:
            continue
        if _adopted(peek.si_pid, my_session):
            zombies = [peek.si_pid]
        else:                   # a child of ours not waited for yet hides the others: look for them
            time.sleep(0.2)
            zombies = [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                       if (f := _stat_fields(pid)) and f[0] == "Z" and int(f[1]) == me
                       and _adopted(pid, my_session)]
        for pid in zombies:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def become_subreaper() -> None:
    """Make this process the one its orphaned descendants (daemonized session hosts) are given
    to, and reap them as they end."""
    global _reaper
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    if _reaper is None:
        _reaper = threading.Thread(target=_reap_adopted, name="reap adopted hosts", daemon=True)
        _reaper.start()


def _descends_from_me(pid: int) -> bool:
    me = os.getpid()
    for _ in range(64):                 # deeper than any process tree a test makes
        fields = _stat_fields(pid)
        if fields is None:
            return False
        pid = int(fields[1])
        if pid == me:
            return True
        if pid <= 1:
            return False
    return False


def _mine(pid: int) -> bool:
    """A process of this user that descends from this one."""
    try:
        if os.stat(f"/proc/{pid}").st_uid != os.getuid():
            return False
    except OSError:
        return False
    return _descends_from_me(pid)


def _holds(pid: int, identity: tuple[int, int] | None, deleted: str) -> bool:
    """Whether ``pid`` has a descriptor on the directory: the same (st_dev, st_ino), or, for a
    directory removed since, the kernel's name for it."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        path = f"/proc/{pid}/fd/{fd}"
        try:
            st = os.stat(path)
            if identity is not None and (st.st_dev, st.st_ino) == identity:
                return True
            if os.readlink(path) == deleted:
                return True
        except OSError:
            continue
    return False


def _target(directory: str) -> tuple[tuple[int, int] | None, str]:
    try:
        st = os.stat(directory)
        identity: tuple[int, int] | None = (st.st_dev, st.st_ino)
    except OSError:
        identity = None
    return identity, os.path.realpath(directory) + " (deleted)"


def holding(directory: str) -> list[int]:
    """The processes of this user descending from this one with a descriptor open on
    ``directory``."""
    identity, deleted = _target(directory)
    me = os.getpid()
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if pid != me and _holds(pid, identity, deleted) and _mine(pid)]


def kill_session_hosts(directory: str, patience: float = 10.0) -> None:
    """SIGKILL every process ``holding`` ``directory`` (session hosts, and processes a test left
    behind), and wait (up to ``patience`` s) until none holds it: a host still running when the
    directory is removed ends, and makes it again to free its registry entry."""
    deadline = time.monotonic() + patience
    while True:
        identity, deleted = _target(directory)
        pids = holding(directory)
        if not pids or time.monotonic() >= deadline:
            return
        for pid in pids:
            try:
                handle = os.pidfd_open(pid)
            except OSError:
                continue                # ended meanwhile
            try:
                # checked again on the process the pidfd names: a pid reused since the scan
                # fails here, or the signal finds the pidfd's process ended (ESRCH)
                if _holds(pid, identity, deleted) and _mine(pid):
                    signal.pidfd_send_signal(handle, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(handle)
        time.sleep(0.01)
