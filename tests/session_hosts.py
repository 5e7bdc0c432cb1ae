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

import _posixsubprocess
import ctypes
import os
import signal
import subprocess
import threading
import time
import traceback
from typing import Any, Callable

_PR_SET_CHILD_SUBREAPER = 36
_reaper: threading.Thread | None = None


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state, ppid, pgrp, session, ...), at
    least up to the start time; None if it cannot be read or reads as less than that (an empty
    read, of a process that ended meanwhile): such a process is looked at again next time."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            text = f.read()
    except OSError:
        return None
    name_end = text.rfind(b")")
    if name_end < 0:
        return None
    fields = text[name_end + 2:].decode("ascii", "replace").split()
    return fields if len(fields) > 19 else None


def _start_time(pid: int) -> str | None:
    """The process's start time (in clock ticks since boot): with the pid, names one process
    (a pid is reused, never at the same tick)."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None else None


# The children this process made itself (os.fork, subprocess, multiprocessing, pty), as
# {pid: start time}: each is left to whoever made it, who waits for it and wants its exit status.
# ``_forking`` counts the forks under way, whose child may exist before its pid is noted here.
_made: dict[int, str | None] = {}
_forking = 0
_made_lock = threading.Condition()
_subreaper = 0                          # the pid of the process made subreaper (not its forks)
# What failed in the reaper's passes (the first failure's traceback, and how many there were):
# the reaper goes on after one, and the run reports it at its end (``reaper_failure``).
_reaper_failed: list[str] = []
_reaper_failures = 0


def _note_made(pid: int) -> None:
    if pid > 0:
        _made[pid] = _start_time(pid)


def _making(fork: Callable[..., Any], pid_of: Callable[[Any], int]) -> Callable[..., Any]:
    """``fork`` with the child it makes noted as this process's own. A process forked from this
    one is no subreaper and forks as usual (it never takes the lock, which another thread may
    have held at the fork)."""
    def made(*args: Any, **kwargs: Any) -> Any:
        global _forking
        parent = os.getpid()
        if parent != _subreaper:
            return fork(*args, **kwargs)
        with _made_lock:
            _forking += 1
        try:
            result = fork(*args, **kwargs)
        except BaseException:
            if os.getpid() == parent:
                with _made_lock:
                    _forking -= 1
                    _made_lock.notify_all()
            raise
        if os.getpid() == parent:
            with _made_lock:
                _note_made(pid_of(result))
                _forking -= 1
                _made_lock.notify_all()
        return result
    made.__wrapped__ = fork  # type: ignore[attr-defined]
    return made


def _note_what_makes_children() -> None:
    """Every way Python makes a child process notes it in ``_made``: os.fork (multiprocessing
    forks through it), subprocess's fork_exec and posix_spawn, multiprocessing's spawn and
    forkserver (_posixsubprocess.fork_exec), os.forkpty (pty)."""
    for owner, name, pid_of in ((os, "fork", int), (os, "forkpty", lambda r: r[0]),
                                (os, "posix_spawn", int), (os, "posix_spawnp", int),
                                (_posixsubprocess, "fork_exec", int),
                                (subprocess, "_fork_exec", int)):
        call = getattr(owner, name, None)
        if call is not None and not hasattr(call, "__wrapped__"):
            setattr(owner, name, _making(call, pid_of))


def _children() -> set[int]:
    """This process's children (each thread's: a child is on the list of the thread that made
    it, an adopted one on one of them), ended ones not waited for included."""
    pids: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
        for task in tasks:
            with open(f"/proc/self/task/{task}/children") as f:
                pids.update(map(int, f.read().split()))
        return pids
    except FileNotFoundError:           # a task ended meanwhile, or no children files here
        me = os.getpid()
        return {pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
                if (f := _stat_fields(pid)) and int(f[1]) == me}


def _made_here(pid: int) -> bool:
    """Whether ``pid`` is a child this process made that its maker has not waited for."""
    if pid not in _made:
        return False
    now = _start_time(pid)
    return now is not None and _made[pid] in (None, now)


def _reap_adopted() -> None:
    """Reap the ended processes given to this one (hosts, and any process whose parent ended
    first), which nothing else waits for: a zombie would look alive to ``kill(pid, 0)``. The
    children this process made are left to whoever made them (a subprocess.Popen, a test's
    os.fork): they wait for their exit status. The core's own short-lived child (the first fork
    of a host, which it waits for only to free it) is reaped here too at times: the core's wait
    then finds it gone, which it takes as done. A child made in C in this process (``os.system``,
    ``system()`` through ctypes) is not noted and could lose its status here: tests run
    commands through subprocess."""
    global _reaper_failures
    while True:
        time.sleep(0.05)
        try:
            _reap_once()
        except Exception:   # noqa: BLE001 - a defect in one pass must not end the reaping
            # (every later wait in this process for a host to end would fail, far from the
            # cause): kept for the run to report at its end
            _reaper_failures += 1
            if not _reaper_failed:
                _reaper_failed.append(traceback.format_exc())


def _reap_once() -> None:
    """One pass of ``_reap_adopted``: the adopted children ended by now reaped."""
    try:
        peek = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return
    if peek is None:
        return
    with _made_lock:
        # no fork under way: every child made here is in ``_made`` by now
        _made_lock.wait_for(lambda: _forking == 0)
        for pid in _children():
            if _made_here(pid):
                continue
            fields = _stat_fields(pid)
            if fields is None or fields[0] != "Z":
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        for pid in [pid for pid in _made if not _made_here(pid)]:
            del _made[pid]              # waited for by its maker (its pid free, or another's)


def reaper_failure() -> str | None:
    """What failed in the reaper's passes so far (the first failure's traceback, and how many
    passes failed), or None: each pass after a failed one is still made."""
    if not _reaper_failed:
        return None
    return f"failed passes: {_reaper_failures}; the first:\n{_reaper_failed[0]}"


def become_subreaper() -> None:
    """Make this process the one its orphaned descendants (daemonized session hosts) are given
    to, and reap them as they end."""
    global _reaper, _subreaper
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    if _reaper is None:
        _subreaper = os.getpid()
        _note_what_makes_children()
        with _made_lock:
            for pid in _children():     # made before this: whoever made them waits for them
                _note_made(pid)
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
    ``directory``. Only those are looked at: another's descriptors are not walked."""
    identity, deleted = _target(directory)
    me = os.getpid()
    return [pid for pid in map(int, filter(str.isdigit, os.listdir("/proc")))
            if pid != me and _mine(pid) and _holds(pid, identity, deleted)]


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
                if _mine(pid) and _holds(pid, identity, deleted):
                    signal.pidfd_send_signal(handle, signal.SIGKILL)
            except OSError:
                pass
            finally:
                os.close(handle)
        time.sleep(0.01)
