"""Hazmat layer over the C provider core: direct ``lib`` calls, return codes turned into Win32Error.

Nothing here validates Python types beyond what cffi does; :mod:`wpptrace.provider.api` is the
Win32-named API built on it.

Fast paths for callers that count every nanosecond (the Pythonic provider). They run inside the
traced application, so they never raise for a failure: an int out of its C type's range (a
message number above 65535, say) is ERROR_INVALID_PARAMETER returned, nothing written; only a
value of the wrong type raises (TypeError):

* ``trace_packed_raw(logger_handle, flags, guid_bytes_le_or_None, number, payload) -> int``:
  one message whose argument bytes are ``payload``; returns the Win32 code.
* ``trace_message_raw(logger_handle, flags, guid_bytes_le_or_None, number, *byte_args) -> int``:
  the same with the arguments as separate byte strings (TraceMessage's (pointer, size) pairs).
* ``register_site(guid_le, number, flags, codes, converters) -> site id`` and
  ``trace_site(logger_handle, site_id, args: tuple) -> int``: a call site's "packer program"
  (one type code per argument, see provider/pyext/fastpath.c) packed in C straight from the
  Python values. ``trace_site`` returns ``NEEDS_CHECKER`` (-1) and writes nothing when a value
  does not take its fast form: the caller then packs with its validating Python encoder (which
  raises naming the call site) and writes with ``trace_packed_raw``.

They are METH_FASTCALL builtins of ``wpptrace._fastpath`` (see
:mod:`wpptrace.provider.fastpath`): unlike cffi calls they keep the GIL and skip cffi's per-call
conversion. ``FAST`` says whether that extension is loaded; if not (an interpreter version it
was not built for), ``trace_packed_raw`` and ``trace_message_raw`` fall back to cffi and
``register_site`` is None.
"""
from __future__ import annotations

from wpptrace._core import ffi, lib
from wpptrace.winerror import Win32Error, check

__all__ = ["ffi", "lib", "check", "Win32Error", "trace_packed_raw", "trace_message_raw",
           "register_site", "trace_site", "NEEDS_CHECKER", "FAST", "last_error",
           "INVALID_TRACEHANDLE"]

#: What GetTraceLoggerHandle returns on failure ((TRACEHANDLE)INVALID_HANDLE_VALUE).
INVALID_TRACEHANDLE = 0xFFFFFFFFFFFFFFFF
#: trace_site's answer when Python's checker must pack the arguments (nothing was written).
NEEDS_CHECKER = -1



from wpptrace.provider.fastpath import AVAILABLE as FAST
from wpptrace.provider.fastpath import module as _fast

if FAST:
    trace_packed_raw = _fast.trace_packed
    trace_message_raw = _fast.trace_message
    register_site = _fast.register_site
    trace_site = _fast.trace_site
else:  # the documented cffi fallback
    _ERROR_INVALID_PARAMETER = 87

    def trace_packed_raw(logger_handle: int, flags: int, guid_le: bytes | None, number: int,
                         payload: bytes, _raw=lib.wpptrace_trace_packed, _null=ffi.NULL) -> int:
        if guid_le is None:
            guid = _null
        elif isinstance(guid_le, bytes) and len(guid_le) == 16:
            guid = guid_le
        else:
            return _refused(logger_handle, flags, guid_le, number, payload)
        try:
            return _raw(logger_handle, flags, guid, number, payload, len(payload))
        except OverflowError:       # cffi's for an int out of its C type's range
            return _refused(logger_handle, flags, guid_le, number, payload)

    def _refused(logger_handle: object, flags: object, guid_le: object, number: object,
                 payload: object) -> int:
        """ERROR_INVALID_PARAMETER for an int out of range or a GUID of the wrong length, as the
        builtin answers; but a value of the wrong type is a TypeError whatever else is wrong, as
        in the builtin (cffi stops at the first bad argument, which may be the out-of-range one)."""
        for value in (logger_handle, flags, number):
            if not isinstance(value, int):
                raise TypeError(f"an integer is required, got {type(value).__name__}")
        if guid_le is not None and not isinstance(guid_le, bytes):
            raise TypeError(f"message GUID: expected 16 bytes or None, got {type(guid_le).__name__}")
        try:
            memoryview(payload)
        except TypeError:
            raise TypeError(f"a bytes-like object is required, not {type(payload).__name__!r}") from None
        return _ERROR_INVALID_PARAMETER

    def trace_message_raw(logger_handle: int, flags: int, guid_le: bytes | None, number: int,
                          *byte_args: bytes) -> int:
        return trace_packed_raw(logger_handle, flags, guid_le, number, b"".join(byte_args))

    register_site = None
    trace_site = None


def last_error() -> int:
    """The calling thread's last error from the C core (GetLastError)."""
    return lib.wpptrace_get_last_error()
