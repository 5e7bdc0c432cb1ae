"""The C fast path of the Python provider: loads ``wpptrace._fastpath`` and connects it to the core.

``wpptrace._fastpath`` (provider/pyext/fastpath.c: the Provider's level methods and the
TraceMessage builtins) is a CPython extension built for one
interpreter version; it calls the core (``wpptrace._core``) through the function addresses
given here, so both modules share one provider and session state. When it is missing (another
interpreter version than the one it was built for, or a build without a compiler) ``AVAILABLE``
is False and callers use the cffi/Python fallbacks, which write the same bytes.
"""
from __future__ import annotations

from typing import Any

from wpptrace._core import ffi, lib

__all__ = ["AVAILABLE", "module"]


def _address(name: str) -> int:
    return int(ffi.cast("uintptr_t", ffi.addressof(lib, name)))


def _load() -> Any:
    try:
        from wpptrace import _fastpath
    except ImportError:
        return None
    from .tracing_interrupts import raised_by_signal_handler
    _fastpath.bind(_address("wpptrace_trace_packed"), _address("wpptrace_trace_args"), raised_by_signal_handler)
    return _fastpath


#: The bound extension module, or None.
module = _load()
AVAILABLE = module is not None
