"""Shared helpers of the consumer API tests: run a file through the API, compare events."""
from __future__ import annotations

import uuid

from wpptrace._core import lib
from wpptrace.decoder import api
from wpptrace.decoder.consumer_types import (ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE,
                                      PROCESS_TRACE_MODE_EVENT_RECORD)
from wpptrace.provider import api as provider

WPP_FILES = ("wppemitter-sample.etl", "wppstr-sample.etl", "wpptypes-sample.etl",
             "wppenum-sample.etl")
ALL_FILES = WPP_FILES + ("powershell.etl", "lxcore_kernel.etl", "primitive-types.etl")
#: seconds a test waits for another thread: only a hang gets near it (a healthy run takes
#: milliseconds); generous so a loaded CI machine never fails a test on time alone
PATIENCE = 120.0


class ProviderSession:
    """A started session (``properties``: EVENT_TRACE_PROPERTIES fields) with one registered,
    enabled WPP-style provider: ``log`` writes a message, ``stop`` ends the session and
    unregisters the provider. A context manager (stops on exit)."""

    def __init__(self, prefix: str, **properties):
        self.control_guid = uuid.uuid4()
        self.message_guid = uuid.uuid4()
        self.logger = None
        self.registration = provider.RegisterTraceGuids(self._control, None, self.control_guid,
                                                        [self.message_guid])
        self.name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.stopped = False
        try:
            self.handle = provider.StartTrace(self.name,
                                              provider.EVENT_TRACE_PROPERTIES(**properties))
        except BaseException:
            provider.UnregisterTraceGuids(self.registration)
            raise
        try:
            provider.EnableTrace(True, 0xFFFFFFFF, 5, self.control_guid, self.handle)
        except BaseException:
            self.stop()
            raise

    def _control(self, code, context, buffer):
        if code == lib.WMI_ENABLE_EVENTS:
            self.logger = provider.GetTraceLoggerHandle(buffer)
        return 0

    def log(self, number: int, value: int | bytes, flags: int = 0x2B) -> None:
        """One message; an int ``value`` is its 4-byte little-endian argument."""
        data = value.to_bytes(4, "little") if isinstance(value, int) else value
        provider.TraceMessage(self.logger, flags, self.message_guid, number, data)

    def flush(self) -> None:
        provider.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_FLUSH)

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            try:
                provider.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_STOP)
            finally:
                provider.UnregisterTraceGuids(self.registration)

    def __enter__(self) -> "ProviderSession":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


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
