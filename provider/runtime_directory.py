"""This user's runtime directory (session sockets and registry): where it is, and why the core
would not use it, in words. The session CLI and StartTrace's errors say the same."""
from __future__ import annotations

import os
import stat

from wpptrace.provider._hazmat import ffi, lib

__all__ = ["location", "usable", "problem", "refusal"]


def location() -> str:
    """Where the runtime directory is looked for (as the core resolves it)."""
    if os.environ.get("WPPTRACE_RUNTIME_DIR"):
        return os.environ["WPPTRACE_RUNTIME_DIR"]
    if os.environ.get("XDG_RUNTIME_DIR", "").startswith("/"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "wpptrace")
    return f"/tmp/wpptrace-{os.geteuid()}"


def usable() -> str | None:
    """The directory holding this user's session sockets and registry (None if unusable)."""
    path = lib.wpptrace_runtime_directory()
    return ffi.string(path).decode("utf-8", "replace") if path != ffi.NULL else None


def problem(path: str) -> str | None:
    """What makes ``path`` unusable as the runtime directory, in words (the core's checks, and its
    registry's); None if none of them refuses it."""
    if not os.path.isdir("/proc/self/fd"):
        return "it is used through /proc/self/fd, and /proc is not mounted here"
    uid = os.geteuid()
    try:
        st = os.lstat(path)
    except OSError as exc:
        st = None
        if not isinstance(exc, FileNotFoundError):
            return (exc.strerror or str(exc)).lower()
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            return "it is a symbolic link; it must be a directory of this user, mode 0700"
        if not stat.S_ISDIR(st.st_mode):
            return "it is not a directory"
        if st.st_uid != uid:
            return (f"it belongs to user {st.st_uid}, not to this user ({uid}): someone else made it "
                    f"first; remove it, or set WPPTRACE_RUNTIME_DIR to a directory of this user")
        if st.st_mode & 0o077:
            return f"its mode is {stat.S_IMODE(st.st_mode):04o}; it must be private to this user (0700)"
    parent = os.path.dirname(path.rstrip("/")) or "/"
    try:
        up = os.stat(parent)
    except OSError as exc:
        return f"its parent {parent}: {(exc.strerror or str(exc)).lower()}"
    if up.st_uid not in (uid, 0):
        return (f"its parent {parent} belongs to user {up.st_uid}, who could move it away; "
                f"set WPPTRACE_RUNTIME_DIR to a directory of this user")
    if up.st_mode & 0o022 and not up.st_mode & stat.S_ISVTX:
        return (f"its parent {parent} is writable by others and not sticky, so they could move it "
                f"away; set WPPTRACE_RUNTIME_DIR to a directory of this user")
    registry = os.path.join(path, "registry")
    try:
        st = os.lstat(registry)
    except OSError:
        st = None
    if st is not None and stat.S_ISLNK(st.st_mode):
        return f"its registry {registry} is a symbolic link; it must be a file of this user (remove it)"
    if st is not None and not stat.S_ISREG(st.st_mode):
        return f"its registry {registry} is not a file (remove it)"
    return None


def refusal() -> str | None:
    """Why this user's runtime directory is not usable, in one line; None if it is. The core's
    check passes a directory whose registry it then refuses (ERROR_BAD_PATHNAME): problem() is
    asked either way."""
    directory = usable()       # first: the core makes the directory if there is none
    name = location()
    why = problem(name)
    if why is None and directory is None:
        why = "it must be a directory of this user, private to this user (mode 0700)"
    return None if why is None else f"the runtime directory {name} is not usable: {why}"
