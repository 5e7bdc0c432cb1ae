"""wpptrace.provider: classic ETW providers and .etl-writing trace sessions, in-process.

The Win32-named API (RegisterTraceGuids, TraceMessage, StartTrace, ControlTrace, EnableTrace,
...) lives in :mod:`wpptrace.provider.api`; :func:`trace_packed` is the fast path for Python
loggers; :mod:`wpptrace.provider.sessions` has real-time subscriptions and TraceSession.
Constants (TRACE_MESSAGE_*, EVENT_TRACE_*, WMI_*, TRACE_LEVEL_*) are re-exported here.
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

__all__ = [
    "RegisterTraceGuids", "UnregisterTraceGuids", "GetTraceLoggerHandle", "GetTraceEnableFlags",
    "GetTraceEnableLevel", "TraceMessage", "TraceMessageVa", "StartTrace", "ControlTrace",
    "EnableTrace", "EnableTraceEx2", "EVENT_TRACE_PROPERTIES", "trace_packed", "Win32Error",
]
