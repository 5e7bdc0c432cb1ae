"""A real-time consumer process for the cross-process tests.

    python xproc_consumer.py SESSION

Opens SESSION with OpenTrace (LoggerName, PROCESS_TRACE_MODE_REAL_TIME) and prints one line
per event: "header" for the log-file header event, "event NUMBER VALUE" for a message whose
arguments start with a little-endian ULONG; "opened" once open and "done RC" when ProcessTrace
returns.
"""
from __future__ import annotations

import sys

import uuid

from wpptrace.decoder import api
from wpptrace.decoder.api import (EVENT_TRACE_LOGFILE, PROCESS_TRACE_MODE_EVENT_RECORD,
                                  PROCESS_TRACE_MODE_REAL_TIME)

#: the provider of the log-file header event (EventTraceGuid)
HEADER_PROVIDER = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")


def say(*words) -> None:
    sys.stdout.write(" ".join(str(w) for w in words) + "\n")
    sys.stdout.flush()


def on_event(record) -> None:
    if record.EventHeader.ProviderId == HEADER_PROVIDER:
        say("header")
    elif record.EventHeader.Flags & 0x8:            # a TraceMessage record
        data = bytes(record.UserData)
        say("event", record.EventHeader.EventDescriptor.Id, int.from_bytes(data[:4], "little"))


logfile = EVENT_TRACE_LOGFILE(LoggerName=sys.argv[1],
                              ProcessTraceMode=PROCESS_TRACE_MODE_REAL_TIME | PROCESS_TRACE_MODE_EVENT_RECORD,
                              EventRecordCallback=on_event)
handle = api.OpenTrace(logfile)
say("opened")
rc = api.ProcessTrace([handle])
say("done", rc)
api.CloseTrace(handle)
