"""Hazmat layer over the C provider core: direct ``lib`` calls, return codes turned into Win32Error.

Nothing here validates Python types beyond what cffi does; :mod:`wpptrace.provider.api` is the
Win32-named API built on it. ``trace_packed_raw`` is the raw C fast path, exported for callers
that count every nanosecond (the Pythonic provider): ``trace_packed_raw(logger_handle, flags,
guid_bytes_le_or_None, number, payload, len(payload)) -> int`` returns the Win32 code and never
raises (OverflowError aside, for out-of-range integers).
"""
from __future__ import annotations

from wpptrace._core import ffi, lib
from wpptrace.winerror import Win32Error, check

__all__ = ["ffi", "lib", "check", "Win32Error", "trace_packed_raw", "last_error",
           "INVALID_TRACEHANDLE"]

#: The C function itself: (handle, flags, guid16 | None, number, payload, size) -> Win32 code.
trace_packed_raw = lib.wpptrace_trace_packed

#: What GetTraceLoggerHandle returns on failure ((TRACEHANDLE)INVALID_HANDLE_VALUE).
INVALID_TRACEHANDLE = 0xFFFFFFFFFFFFFFFF


def last_error() -> int:
    """The calling thread's last error from the C core (GetLastError)."""
    return lib.wpptrace_get_last_error()
