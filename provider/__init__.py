"""wpptrace.provider: classic ETW providers and .etl-writing trace sessions, in-process.

The Win32-named API (RegisterTraceGuids, TraceMessage, StartTrace, ControlTrace, EnableTrace,
...) lives in :mod:`wpptrace.provider.api`; :func:`trace_packed` is the fast path for Python
loggers; :mod:`wpptrace.provider.sessions` has real-time subscriptions and TraceSession.
Constants (TRACE_MESSAGE_*, EVENT_TRACE_*, WMI_*, TRACE_LEVEL_*) are re-exported here.
The Pythonic provider (:class:`Provider`, :class:`CustomType`, :class:`TraceWarning`, from
:mod:`wpptrace.provider.tracing`) and :class:`WppHandler` (:mod:`.logging_handler`) are
imported on first use.
"""
from __future__ import annotations

from wpptrace.provider._hazmat import lib as _lib
from wpptrace.provider.api import (
    EVENT_TRACE_PROPERTIES, ControlTrace, EnableTrace, EnableTraceEx2, GetTraceEnableFlags,
    GetTraceEnableLevel, GetTraceLoggerHandle, RegisterTraceGuids, StartTrace, TraceMessage,
    TraceMessageVa, UnregisterTraceGuids, trace_packed,
)
from wpptrace.winerror import Win32Error

_CONSTANT_PREFIXES = ("TRACE_MESSAGE_", "EVENT_TRACE_", "WMI_", "TRACE_LEVEL_", "EVENT_CONTROL_CODE_",
                      "KERNEL_LOGGER_ID", "WNODE_FLAG_")
globals().update({name: getattr(_lib, name) for name in dir(_lib)
                  if name.startswith(_CONSTANT_PREFIXES) and isinstance(getattr(_lib, name), int)})

_LAZY = {"Provider": "tracing", "TraceFlag": "tracing", "TraceWarning": "tracing", "CustomType": "tracing",
         "ProviderStats": "tracing", "WppHandler": "logging_handler"}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    *_LAZY, "RegisterTraceGuids", "UnregisterTraceGuids", "GetTraceLoggerHandle", "GetTraceEnableFlags",
    "GetTraceEnableLevel", "TraceMessage", "TraceMessageVa", "StartTrace", "ControlTrace",
    "EnableTrace", "EnableTraceEx2", "EVENT_TRACE_PROPERTIES", "trace_packed", "Win32Error",
]
