"""This user's runtime directory (session sockets and registry): where it is, and why the core
would not use it, in words. The session CLI and StartTrace's errors say the same."""
from __future__ import annotations

import os
import stat

from wpptrace.provider._hazmat import ffi, lib

__all__ = ["location", "usable", "problem", "registry_problem", "refusal"]


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
    """What makes ``path`` unusable as the runtime directory, in words (the core's checks of the
    directory; its registry is registry_problem's); None if none of them refuses it."""
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
    return None


def registry_problem() -> str | None:
    """What makes the registry in the (usable) runtime directory unusable, in words naming it
    and what to do (the core's own look at it: not a file, not this user's or not private, made
    by another wpptrace version or damaged); None if nothing does."""
    why = ffi.new("char[]", 8192)
    if lib.wpptrace_registry_refusal(why, len(why)) == lib.ERROR_SUCCESS:
        return None
    return ffi.string(why).decode("utf-8", "replace")


def refusal() -> str | None:
    """Why this user's runtime directory is not usable, in one line; None if it is. The core's
    check passes a directory whose registry it then refuses (ERROR_BAD_PATHNAME,
    ERROR_ACCESS_DENIED, ERROR_BAD_FORMAT): its registry is looked at too."""
    directory = usable()       # first: the core makes the directory if there is none
    name = location()
    why = problem(name)
    if why is None and directory is None:
        why = "it must be a directory of this user, private to this user (mode 0700)"
    if why is None:
        why = registry_problem()
    return None if why is None else f"the runtime directory {name} is not usable: {why}"
