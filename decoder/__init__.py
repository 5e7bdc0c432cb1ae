"""wpptrace.decoder: read real Windows .etl files (and ours) fast, off Windows.

Layers, bottom up:

* ``etlfile.EtlFile``: buffers of a file (compressed or not), the log-file header facts;
* ``records``: the C record walker's output as lazy ``Record`` objects, ``parse_buffer``;
* ``ordering.ordered_records``: ProcessTrace order (per-processor streams merged by time);
* ``timestamps.TimeConverter``: raw clock -> FILETIME;
* ``open(path)``: typed Pythonic events (``events`` module);
* ``api``: the Win32-shaped OpenTrace / ProcessTrace / CloseTrace on the same engine.
"""
from .etlfile import Buffer, BufferInfo, EtlFile, LogfileHeader
from .events import (ClassicEvent, Event, EventReader, HeaderEvent, ManifestEvent, MessageEvent,
                     SystemEvent, open)
from .ordering import ordered_records
from .records import DecodeIssue, Record, parse_buffer
from .timestamps import TimeConverter

__all__ = [
    "Buffer", "BufferInfo", "ClassicEvent", "DecodeIssue", "EtlFile", "Event", "EventReader",
    "HeaderEvent", "LogfileHeader", "ManifestEvent", "MessageEvent", "Record", "SystemEvent",
    "TimeConverter", "open", "ordered_records", "parse_buffer",
]
