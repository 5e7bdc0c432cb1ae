"""Typed, Pythonic events over the record engine: ``for event in wpptrace.decoder.open(path)``.

Each record becomes one small immutable object of the class that fits its kind
(``MessageEvent`` for TraceMessage/WPP records, ``ManifestEvent`` for EVENT_HEADER
records, ``ClassicEvent`` for EVENT_TRACE_HEADER/instance records, ``SystemEvent`` for
kernel system/compact/perfinfo records, ``HeaderEvent`` for the log-file header record),
with its time as a FILETIME and an aware UTC datetime.
"""
from __future__ import annotations

import datetime as _dt
import os
import uuid
from dataclasses import dataclass
from typing import BinaryIO, Iterator

from .etlfile import EtlFile, LogfileHeader
from .ordering import ordered_records
from .records import DecodeIssue, Record
from .timestamps import TimeConverter, filetime_to_datetime


@dataclass(frozen=True)
class Event:
    """What every record has. ``timestamp`` is None when the record carries no time."""

    kind: str
    provider_id: uuid.UUID | None
    event_id: int
    raw_timestamp: int | None
    filetime: int | None
    processor: int
    thread_id: int | None
    process_id: int | None
    user_data: bytes
    size: int
    buffer_index: int
    offset: int

    @property
    def timestamp(self) -> _dt.datetime | None:
        return None if self.filetime is None else filetime_to_datetime(self.filetime)


@dataclass(frozen=True)
class MessageEvent(Event):
    """A TraceMessage / WPP record: identity is (message_guid, number)."""

    message_guid: uuid.UUID | None
    number: int
    sequence: int | None
    component_id: int | None
    flags: int                           # the logged MessageFlags (OptionFlags)

    @property
    def pointer_size(self) -> int | None:
        """Pointer size of %p arguments from TRACE_MESSAGE_POINTER32/64, if logged."""
        if self.flags & 0x80:
            return 8
        if self.flags & 0x40:
            return 4
        return None


@dataclass(frozen=True)
class ManifestEvent(Event):
    """An EVENT_HEADER record (manifest or TraceLogging provider)."""

    version: int
    channel: int
    level: int
    opcode: int
    task: int
    keyword: int
    flags: int                           # EVENT_HEADER.Flags
    extended_data: bytes


@dataclass(frozen=True)
class ClassicEvent(Event):
    """An EVENT_TRACE_HEADER (full) or EVENT_INSTANCE_GUID_HEADER (instance) record."""

    event_type: int                      # Class.Type (the opcode)
    level: int
    version: int
    instance_id: int | None


@dataclass(frozen=True)
class SystemEvent(Event):
    """A kernel system, compact or perfinfo record (HookId = group << 8 | type)."""

    hook_id: int
    group: int
    opcode: int
    version: int


@dataclass(frozen=True)
class HeaderEvent(SystemEvent):
    """The log-file header record; ``header`` holds its TRACE_LOGFILE_HEADER facts."""

    header: LogfileHeader


def _common(rec: Record, filetime: int | None) -> dict:
    ts = rec.timestamp
    return dict(kind=rec.kind, provider_id=rec.provider_id, event_id=rec.event_id,
                raw_timestamp=ts, filetime=filetime, processor=rec.processor,
                thread_id=rec.thread_id, process_id=rec.process_id,
                user_data=bytes(rec.user_data), size=rec.size, buffer_index=rec.buffer_index,
                offset=rec.offset)


def make_event(rec: Record, clock: TimeConverter | None, header: LogfileHeader | None = None
               ) -> Event:
    """The typed event for one record (clock None: keep raw timestamps as filetime)."""
    ts = rec.timestamp
    filetime = None if ts is None else (clock.to_filetime(ts) if clock else ts)
    base = _common(rec, filetime)
    kind = rec.kind
    if kind == "message":
        return MessageEvent(**base, message_guid=rec.message_guid, number=rec.event_id,
                            sequence=rec.sequence, component_id=rec.component_id,
                            flags=rec.flags)
    if kind == "event":
        return ManifestEvent(**base, version=rec.version, channel=rec.channel, level=rec.level,
                             opcode=rec.opcode, task=rec.task, keyword=rec.keyword,
                             flags=rec.flags, extended_data=bytes(rec.extended_data))
    if kind in ("full", "instance"):
        return ClassicEvent(**base, event_type=rec.opcode, level=rec.level,
                            version=rec.version, instance_id=rec.instance_id)
    if kind in ("system", "compact", "perfinfo"):
        fields = dict(hook_id=rec.event_id, group=rec.event_id >> 8,
                      opcode=rec.event_id & 0xFF, version=rec.version)
        if header is not None:
            return HeaderEvent(**base, **fields, header=header)
        return SystemEvent(**base, **fields)
    return Event(**base)


class EventReader:
    """Iterable over the typed events of one file, in ProcessTrace order.

    ``raw_timestamps=True`` keeps raw clock values in ``filetime`` (like
    PROCESS_TRACE_MODE_RAW_TIMESTAMP); ``ordered=False`` gives file order.
    """

    def __init__(self, source: str | os.PathLike | BinaryIO, *, raw_timestamps: bool = False,
                 ordered: bool = True):
        self.file = EtlFile(source)
        self.header = self.file.header
        self.clock = None if raw_timestamps else TimeConverter(self.header)
        self.ordered = ordered

    @property
    def errors(self) -> list[DecodeIssue]:
        return self.file.errors

    def __iter__(self) -> Iterator[Event]:
        records = ordered_records(self.file) if self.ordered else self.file.iter_records()
        clock, first = self.clock, True
        for rec in records:
            if first:
                first = False
                if rec.buffer_index == 0 and rec.offset == 0x48 and self.header.valid:
                    yield make_event(rec, clock, self.header)
                    continue
            yield make_event(rec, clock)

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> "EventReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open(source: str | os.PathLike | BinaryIO, *, raw_timestamps: bool = False,  # noqa: A001
         ordered: bool = True) -> EventReader:
    """Open an .etl file for ``for event in ...`` iteration (see EventReader)."""
    return EventReader(source, raw_timestamps=raw_timestamps, ordered=ordered)
