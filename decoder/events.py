"""Typed, Pythonic events over the record engine: ``for event in wpptrace.decoder.open(path)``.

Each record is delivered as the class that fits its kind: ``MessageEvent`` (TraceMessage /
WPP), ``ManifestEvent`` (EVENT_HEADER), ``ClassicEvent`` (EVENT_TRACE_HEADER / instance),
``SystemEvent`` (kernel system, compact, perfinfo) and ``HeaderEvent`` (the log-file header
record, with its ``LogfileHeader``). Events are lazy views of the engine's record tuples:
a field is decoded when read, so iterating stays fast; ``timestamp`` is an aware UTC
datetime, ``filetime`` the FILETIME (or the raw clock with ``raw_timestamps=True``).
WPP messages also carry their decoded form (``wpp``, ``text``, ``args``, ``to_dict()``), made
on first access by the formatter ``wpptrace fmt`` uses, with the TMFs given to ``open``.
"""
from __future__ import annotations

import os
from itertools import chain

from .buffers import Buffer, message_pointer_size
from .engine import FileSource
from .etlfile import EtlFile, LogfileHeader
from .messages import Args, DecodedMessage, load_tmf
from .records import _F_KIND, DecodeIssue, Record
from .timestamps import TimeConverter, filetime_to_datetime

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import datetime as _dt
    from typing import BinaryIO, Iterator


class Event(Record):
    """What every record has (see Record for the raw facts: offset, size, flags...)."""

    __slots__ = ("_clock",)

    def __init__(self, raw: tuple, ctx, clock: TimeConverter | None):
        self._t = raw                      # (Record.__init__ inlined: this runs per event)
        self._ctx = ctx
        self._clock = clock

    @property
    def raw_timestamp(self) -> int | None:
        return Record.timestamp.__get__(self)

    @property
    def filetime(self) -> int | None:
        """FILETIME of the event (the raw clock value when opened with raw_timestamps)."""
        raw = Record.timestamp.__get__(self)
        if raw is None or self._clock is None:
            return raw
        return self._clock.to_filetime(raw)

    @property
    def timestamp(self) -> _dt.datetime | None:        # type: ignore[override]
        """Aware UTC datetime (None without a time, or with raw_timestamps)."""
        raw = Record.timestamp.__get__(self)
        if raw is None or self._clock is None:
            return None
        return filetime_to_datetime(self._clock.to_filetime(raw))

    @property
    def user_data(self) -> bytes:                      # type: ignore[override]
        return bytes(Record.user_data.__get__(self))

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} provider={self.provider_id} id={self.event_id} "
                f"time={self.timestamp} cpu={self.processor} tid={self.thread_id} "
                f"pid={self.process_id} data={len(Record.user_data.__get__(self))} bytes>")


class MessageEvent(Event):
    """A TraceMessage / WPP record: its identity is (message_guid, number); ``wpp`` is its
    ``DecodedMessage`` (``text``, ``args``, ``to_dict()`` are the same as properties)."""

    __slots__ = ("_decoded",)
    #: the reader's decoding (an EventReader makes its own subclass); events made elsewhere
    #: (make_event) share one without TMF paths (TRACE_FORMAT_SEARCH_PATH only)
    _formatter: "_EventFormatter | None" = None

    @property
    def wpp(self) -> DecodedMessage:
        """The message decoded with the reader's TMFs (Unknown text when there is no format)."""
        try:
            return self._decoded
        except AttributeError:
            pass
        formatter = self._formatter
        if formatter is None:
            formatter = MessageEvent._formatter = _EventFormatter(None)
        self._decoded = formatter.decode(self)
        return self._decoded

    @property
    def text(self) -> str:
        """The message text as tracefmt prints it after the prefix."""
        return self.wpp.text

    @property
    def args(self) -> Args:
        """The typed argument values in insert order (``args["name"]`` by TMF name)."""
        return self.wpp.args

    def to_dict(self) -> dict:
        """The decoded message as a dict (see DecodedMessage.to_dict)."""
        return self.wpp.to_dict()

    @property
    def number(self) -> int:
        return self.event_id

    @property
    def pointer_size(self) -> int | None:          # type: ignore[override]
        """Pointer size of %p arguments from TRACE_MESSAGE_POINTER64/32, else the file's."""
        return message_pointer_size(self.flags, self._ctx.pointer_size)


class ManifestEvent(Event):
    """An EVENT_HEADER record (manifest or TraceLogging provider); ``flags`` are
    EVENT_HEADER.Flags, ``extended_data`` the stored extended items."""

    __slots__ = ()


class ClassicEvent(Event):
    """An EVENT_TRACE_HEADER (full) or EVENT_INSTANCE_GUID_HEADER (instance) record."""

    __slots__ = ()

    @property
    def event_type(self) -> int:
        return self.opcode


class SystemEvent(Event):
    """A kernel system, compact or perfinfo record (``hook_id`` = group << 8 | type)."""

    __slots__ = ()


class HeaderEvent(SystemEvent):
    """The log-file header record; ``header`` holds its TRACE_LOGFILE_HEADER facts."""

    __slots__ = ("header",)


#: event class per record kind (records.KINDS order)
_CLASSES = (SystemEvent, SystemEvent, SystemEvent, ClassicEvent, ClassicEvent, ManifestEvent,
            MessageEvent, Event)
_MESSAGE_KIND = _CLASSES.index(MessageEvent)


class _EventFormatter:
    """One reader's WPP decoding: its TMF set (loaded on first use) and formatter."""

    def __init__(self, tmf, header: LogfileHeader | None = None, name: str = ""):
        self._tmf = tmf
        self._header, self._name = header, name
        self._decoder = self._ctx = None

    def decode(self, event: MessageEvent) -> DecodedMessage:
        from .wpp import FileContext, WppDecoder

        if self._decoder is None:
            header = self._header
            self._ctx = FileContext.for_header(self._name, header,
                                               TimeConverter(header) if header is not None else None)
            self._decoder = WppDecoder(load_tmf(self._tmf))
        # the formatter reads raw timestamps: give it the plain record
        return DecodedMessage.from_wpp(self._decoder.decode_record(Record(event._t, event._ctx),
                                                                   self._ctx))


def make_event(rec: Record, clock: TimeConverter | None, header: LogfileHeader | None = None
               ) -> Event:
    """The typed event for one record (clock None: raw timestamps)."""
    if header is not None:
        ev = HeaderEvent(rec._t, rec._ctx, clock)
        ev.header = header
        return ev
    return _CLASSES[rec._t[_F_KIND]](rec._t, rec._ctx, clock)


class EventReader:
    """Iterable over the typed events of one file, in ProcessTrace order.

    ``raw_timestamps=True`` keeps raw clock values (like PROCESS_TRACE_MODE_RAW_TIMESTAMP);
    ``ordered=False`` gives file order. ``errors`` lists the damage met so far. ``tmf``: the
    formats WPP messages are decoded with (see decoder.messages.load_tmf), read on the first
    ``text``/``args``/``wpp`` access.
    """

    def __init__(self, source: str | os.PathLike | BinaryIO, *, tmf=None,
                 raw_timestamps: bool = False, ordered: bool = True):
        self.file = EtlFile(source)
        self.header = self.file.header
        self.clock = None if raw_timestamps else TimeConverter(self.header)
        self.ordered = ordered
        # TMF paths are checked now (directories are read lazily, per GUID)
        formatter = _EventFormatter(load_tmf(tmf) if tmf is not None else None, self.header,
                                    self.file.name)
        message_class = type("MessageEvent", (MessageEvent,),
                             {"__slots__": (), "_formatter": formatter,
                              "__module__": MessageEvent.__module__,
                              "__qualname__": MessageEvent.__qualname__})
        classes = list(_CLASSES)
        classes[_MESSAGE_KIND] = message_class
        self._classes = tuple(classes)

    @property
    def errors(self) -> list[DecodeIssue]:
        return self.file.errors

    def __iter__(self) -> Iterator[Event]:
        source = FileSource(self.file)
        if self.ordered:
            chunks = (items for items, _ in source.ordered(self._view))
        else:
            chunks = source.in_file_order(self._view)
        return chain.from_iterable(chunks)

    def _view(self, source, buf: Buffer, slot: int, header_record: bool) -> tuple[list, list[int]]:
        """The engine view: one buffer's records as typed events."""
        clock, classes, ctx = self.clock, self._classes, buf.context
        tuples = buf.tuples()
        events = [classes[t[_F_KIND]](t, ctx, clock) for t in tuples]
        if header_record and events and self.header.valid:
            events[0] = make_event(events[0], clock, self.header)
        return events, buf.sort_keys()

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "EventReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(source: str | os.PathLike | BinaryIO, *, tmf=None,  # noqa: A001
         raw_timestamps: bool = False, ordered: bool = True) -> EventReader:
    """Open an .etl file for ``for event in ...`` iteration (see EventReader). ``tmf``: TMF
    directories, files, PDBs (as ``wpptrace fmt`` takes them) for the messages' ``text``,
    ``args`` and ``to_dict()``."""
    return EventReader(source, tmf=tmf, raw_timestamps=raw_timestamps, ordered=ordered)


__all__ = ["ClassicEvent", "Event", "EventReader", "HeaderEvent", "ManifestEvent",
           "MessageEvent", "SystemEvent", "make_event", "open"]
