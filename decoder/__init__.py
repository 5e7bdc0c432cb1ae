"""wpptrace.decoder: read real Windows .etl files (and ours) fast, off Windows.

Layers, bottom up (docs/architecture.md has the picture):

* ``etlfile.EtlFile``: buffers of a file (compressed or not), the log-file header facts;
* ``buffers``: one buffer from any source: expansion, record range, damage (``parse_buffer``);
* ``records``: the C record walker's output as lazy ``Record`` objects;
* ``engine``: any source (files, live sessions, buffer streams) in ProcessTrace order
  (``ordered_records``), through the one merge of ``ordering``;
* ``timestamps.TimeConverter``: raw clock -> FILETIME;
* ``open(path)``: typed Pythonic events (``events`` module);
* ``api``: the Win32-shaped OpenTrace / ProcessTrace / CloseTrace on the same engine;
* ``wpp``: WPP messages formatted like tracefmt, on the engine's compact rows (``wpp_rows``).
"""
from .buffers import Buffer, BufferInfo, parse_buffer
from .engine import ordered_records
from .etlfile import EtlFile, LogfileHeader
from .events import (ClassicEvent, Event, EventReader, HeaderEvent, ManifestEvent, MessageEvent,
                     SystemEvent, open)
from .records import DecodeIssue, Record
from .timestamps import TimeConverter

__all__ = [
    "Buffer", "BufferInfo", "ClassicEvent", "DecodeIssue", "EtlFile", "Event", "EventReader",
    "HeaderEvent", "LogfileHeader", "ManifestEvent", "MessageEvent", "Record", "SystemEvent",
    "TimeConverter", "open", "ordered_records", "parse_buffer",
]
