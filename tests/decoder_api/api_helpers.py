"""Shared helpers of the consumer API tests: run a file through the API, compare events."""
from __future__ import annotations

from wpptrace.decoder import api
from wpptrace.decoder.structs import (ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE,
                                      PROCESS_TRACE_MODE_EVENT_RECORD)

WPP_FILES = ("wppemitter-sample.etl", "wppstr-sample.etl", "wpptypes-sample.etl",
             "wppenum-sample.etl")
ALL_FILES = WPP_FILES + ("powershell.etl", "lxcore_kernel.etl", "primitive-types.etl")
#: seconds a test waits for another thread: only a hang gets near it (a healthy run takes
#: milliseconds); generous so a loaded CI machine never fails a test on time alone
PATIENCE = 120.0


def collect(path, mode: int = PROCESS_TRACE_MODE_EVENT_RECORD, start=None, end=None, **fields):
    """Open ``path`` with OpenTrace, run ProcessTrace, close; (events, logfile, rc)."""
    events: list = []
    logfile = EVENT_TRACE_LOGFILE(LogFileName=str(path), ProcessTraceMode=mode,
                                  EventCallback=events.append, **fields)
    handle = api.OpenTrace(logfile)
    try:
        rc = api.ProcessTrace([handle], start, end)
    finally:
        api.CloseTrace(handle)
    return events, logfile, rc


def buffers_of(path):
    """The buffers a file session hands its (Windows 11) BufferCallback, in order."""
    buffers = []
    options = ETW_OPEN_TRACE_OPTIONS(
        BufferCallback=lambda buf, size, info, ctx: buffers.append(bytes(buf)) or True)
    handle = api.OpenTraceFromFile(str(path), options)
    api.ProcessTrace([handle])
    api.CloseTrace(handle)
    return buffers


def identity(record):
    """What identifies a delivered EVENT_RECORD (for comparing deliveries)."""
    h = record.EventHeader
    return (h.ProviderId, h.EventDescriptor.Id, h.EventDescriptor.Opcode, h.ThreadId,
            h.ProcessId, h.TimeStamp, h.Flags, record.BufferContext.ProcessorIndex,
            record.UserData)
