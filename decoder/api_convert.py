"""Decoded trace records as the consumer API delivers them: EVENT_RECORD and EVENT_TRACE.

One function per callback shape (``to_event_record`` for an EventRecordCallback,
``to_event_trace`` for a classic EventCallback); the mapping rules are docs/etl-format.md §5.2 and
the TraceMessageVa page. Choices where Microsoft documents nothing (docs/etl-format.md §9 Q4):

* every record: ``EventHeader.Size`` / ``Header.Size`` = the record's size in the file;
* WPP message: ProviderId = message GUID (GUID_NULL without TRACE_MESSAGE_GUID),
  EventDescriptor.Id = MessageNumber, other descriptor fields 0; ThreadId/ProcessId only with
  TRACE_MESSAGE_SYSTEMINFO, TimeStamp only with TRACE_MESSAGE_TIMESTAMP (0 otherwise); the
  sequence number (TRACE_MESSAGE_SEQUENCE) is ``EVENT_RECORD.MessageSequence`` (not a Win32
  member) and ``EVENT_TRACE.InstanceId``; in EVENT_TRACE the MessageNumber is
  ``Header.Version`` (Class.Version), ``Header.HeaderType`` is TRACE_HEADER_TYPE_MESSAGE and
  ``Header.Flags`` the logged MessageFlags;
* kernel (system/compact/perfinfo) records: Opcode = HookId type, Version = header version;
  the header group (group 0) has ProviderId EventTraceGuid, so the log-file header record is
  the synthetic first event (Opcode 0, UserData = TRACE_LOGFILE_HEADER as in the file);
  other groups carry no GUID in the file and are delivered with GUID_NULL.

Hot path: ``to_event_record`` reads the walker's flat record tuple (``Record._t``, indices
``records._F_*``, checked against the C layout by decoder.records) instead of the Record
properties: three times the events per second.
"""
from __future__ import annotations

import uuid

from ._hazmat import ETL, Layout, offsetof, sizeof

from .buffers import message_pointer_size
from .records import (_F_CHANNEL, _F_FLAGS, _F_GUID, _F_HTYPE, _F_ID, _F_KEYWORD, _F_KIND,
                      _F_LEVEL, _F_OFFSET, _F_OPCODE, _F_PID, _F_POFF, _F_PRESENT, _F_PSIZE,
                      _F_SEQ, _F_SIZE, _F_TASK, _F_TID, _F_VERSION, _HAS_GUID, _HAS_PID,
                      _HAS_SEQ, _HAS_TID)

from .consumer_types import (EVENT_DESCRIPTOR, EVENT_HEADER, EVENT_HEADER_EXTENDED_DATA_ITEM,
                      EVENT_RECORD, EVENT_TRACE, EVENT_TRACE_HEADER, ETW_BUFFER_CONTEXT,
                      GUID_NULL)

KIND_SYSTEM, KIND_COMPACT, KIND_PERFINFO, KIND_FULL, KIND_INSTANCE, KIND_EVENT, KIND_MESSAGE, \
    KIND_UNKNOWN = range(8)

_MSG_SEQUENCE = ETL.TRACE_MESSAGE_SEQUENCE
_MSG_GUID = ETL.TRACE_MESSAGE_GUID
_MSG_TIMESTAMP = ETL.TRACE_MESSAGE_TIMESTAMP
_MSG_SYSTEMINFO = ETL.TRACE_MESSAGE_SYSTEMINFO
_FLAG_TRACE_MESSAGE = ETL.EVENT_HEADER_FLAG_TRACE_MESSAGE
_FLAG_CLASSIC = ETL.EVENT_HEADER_FLAG_CLASSIC_HEADER
_FLAG_32 = ETL.EVENT_HEADER_FLAG_32_BIT_HEADER
_FLAG_64 = ETL.EVENT_HEADER_FLAG_64_BIT_HEADER
_FLAG_PROCESSOR_INDEX = ETL.EVENT_HEADER_FLAG_PROCESSOR_INDEX
_FLAG_EXTENDED_INFO = ETL.EVENT_HEADER_FLAG_EXTENDED_INFO
_HEADER_TYPE_MESSAGE = ETL.TRACE_HEADER_TYPE_MESSAGE

#: header types written by 32-bit loggers (their EVENT_HEADER gets the 32-bit flag)
_HEADER_TYPES_32 = frozenset((ETL.TRACE_HEADER_TYPE_SYSTEM32, ETL.TRACE_HEADER_TYPE_COMPACT32,
                              ETL.TRACE_HEADER_TYPE_PERFINFO32, ETL.TRACE_HEADER_TYPE_FULL_HEADER32,
                              ETL.TRACE_HEADER_TYPE_INSTANCE32))

# Where the CPU times and other members sit in the file record (etl_layout.h structures).
_U16, _U32, _U64, _GUID_SIZE = (sizeof("uint16_t"), sizeof("uint32_t"), sizeof("uint64_t"),
                                sizeof("GUID"))
_SYSTEM_CPU_TIME = offsetof("SYSTEM_TRACE_HEADER", "KernelTime")
_SYSTEM_USER_TIME = offsetof("SYSTEM_TRACE_HEADER", "UserTime")
_FULL_CPU_TIME = offsetof("EVENT_TRACE_HEADER", "ProcessorTime")   # {KernelTime, UserTime}
_INSTANCE_PARENT = offsetof("EVENT_INSTANCE_GUID_HEADER", "ParentInstanceId")
_INSTANCE_PARENT_GUID = offsetof("EVENT_INSTANCE_GUID_HEADER", "ParentGuid")
_INSTANCE_SIZE = sizeof("EVENT_INSTANCE_GUID_HEADER")
_EVENT_PROPERTY = offsetof("EVENT_HEADER", "EventProperty")
_EVENT_CPU_TIME = offsetof("EVENT_HEADER", "ProcessorTime")
_EVENT_ACTIVITY = offsetof("EVENT_HEADER", "ActivityId")
_EXT_ITEM = Layout("EVENT_EXTENDED_ITEM_HEADER")
_ALIGN = ETL.DEFAULT_TRACE_ALIGNMENT
_PROC_INDEX = ETL.ETW_BUFFER_FLAG_PROC_INDEX
_ZERO_GUID = bytes(sizeof("GUID"))
_GUIDS: dict[bytes, uuid.UUID] = {}     # bytes_le -> UUID: providers repeat, UUID() is slow
_GUID_CACHE_LIMIT = 4096


class BufferFacts:
    """What every event of one buffer shares when delivered: its BufferContext (one object,
    shared by the buffer's events), the EVENT_HEADER_FLAG_PROCESSOR_INDEX bit, and ``origin``,
    what a live source handed out for the buffer (None for a file's)."""

    __slots__ = ("buffer_context", "processor_index_flag", "origin")

    def __init__(self, processor_index: int, logger_id: int, buffer_flag: int,
                 origin: object = None):
        self.origin = origin
        self.buffer_context = ETW_BUFFER_CONTEXT(ProcessorIndex=processor_index,
                                                 LoggerId=logger_id)
        # the buffer says its ProcessorIndex is a full index (ETW_BUFFER_FLAG_PROC_INDEX)
        self.processor_index_flag = _FLAG_PROCESSOR_INDEX if buffer_flag & _PROC_INDEX else 0


def _uint(raw, off: int, size: int) -> int:
    return int.from_bytes(raw[off:off + size], "little") if len(raw) >= off + size else 0


def _guid(raw, off: int) -> uuid.UUID:
    if len(raw) < off + _GUID_SIZE:
        return GUID_NULL
    return uuid.UUID(bytes_le=bytes(raw[off:off + _GUID_SIZE]))


def extended_items(data) -> list:
    """EVENT_HEADER extended data items as stored (EVENT_EXTENDED_ITEM_HEADER, then the data,
    8-aligned).

    The first USHORT is not trusted (sources disagree, docs/etl-format.md §2.6); the walk follows
    DataSize and stops at the end of the area or when the Linkage bit is clear.
    """
    items = []
    pos = 0
    end = len(data)
    head = _EXT_ITEM.size
    while pos + head <= end:
        item = _EXT_ITEM.unpack(data, pos)
        payload = bytes(data[pos + head:min(end, pos + head + item.DataSize)])
        items.append(EVENT_HEADER_EXTENDED_DATA_ITEM(
            Reserved1=item.Reserved1, ExtType=item.ExtType, Linkage=item.Linkage & 1,
            Reserved2=item.Linkage >> 1, DataSize=len(payload), DataPtr=payload))
        pos += head + -(-item.DataSize // _ALIGN) * _ALIGN
        if not item.Linkage & 1:
            break
    return items


def _provider_guid(t, rec) -> uuid.UUID:
    """The record's GUID as a uuid.UUID, built once per distinct GUID."""
    if t[_F_PRESENT] & _HAS_GUID:
        raw = t[_F_GUID]
        guid = _GUIDS.get(raw)
        if guid is None:
            guid = _GUIDS[raw] = uuid.UUID(bytes_le=raw)
            if len(_GUIDS) > _GUID_CACHE_LIMIT:
                _GUIDS.clear()
        return guid
    return rec.provider_id or GUID_NULL


def _parts(rec) -> tuple | None:
    """(flat tuple, kind, present bits, buffer data, payload bytes) of ``rec``; None for an
    unknown record. The flat tuple is the walker's: the hot path reads it directly."""
    t = rec._t
    kind = t[_F_KIND]
    if kind == KIND_UNKNOWN:
        return None
    data = rec._ctx.data
    poff = t[_F_POFF]
    return t, kind, t[_F_PRESENT], data, bytes(data[poff:poff + t[_F_PSIZE]])


def to_event_record(rec, timestamp: int, facts: BufferFacts, user_context) -> EVENT_RECORD | None:
    """``rec`` (a decoder.records.Record) as an EVENT_RECORD; None for unknown records.

    ``timestamp`` is the value to deliver (FILETIME or raw, chosen by the caller) and is
    ignored for a message that carried no TRACE_MESSAGE_TIMESTAMP.
    """
    parts = _parts(rec)
    if parts is None:
        return None
    t, kind, present, data, user_data = parts
    descriptor = EVENT_DESCRIPTOR.__new__(EVENT_DESCRIPTOR)
    header = EVENT_HEADER.__new__(EVENT_HEADER)
    header.Size = t[_F_SIZE]
    header.HeaderType = 0
    header.EventProperty = 0
    header.ThreadId = t[_F_TID] if present & _HAS_TID else 0
    header.ProcessId = t[_F_PID] if present & _HAS_PID else 0
    header.ProviderId = _provider_guid(t, rec)
    header.EventDescriptor = descriptor
    header.ActivityId = GUID_NULL
    header.ProcessorTime = 0
    record = EVENT_RECORD.__new__(EVENT_RECORD)
    record.MessageSequence = None
    record.ExtendedData = []
    record.ExtendedDataCount = 0
    if kind == KIND_MESSAGE:
        options = t[_F_FLAGS]
        header.Flags = (_FLAG_TRACE_MESSAGE | _FLAG_CLASSIC | facts.processor_index_flag
                        | _pointer_flag(options, rec._ctx.pointer_size))
        header.TimeStamp = timestamp if options & _MSG_TIMESTAMP else 0
        descriptor.Id = t[_F_ID]
        descriptor.Version = descriptor.Channel = descriptor.Level = descriptor.Opcode = 0
        descriptor.Task = descriptor.Keyword = 0
        if present & _HAS_SEQ:
            record.MessageSequence = t[_F_SEQ]
    else:
        header.TimeStamp = timestamp
        descriptor.Version = t[_F_VERSION]
        descriptor.Level = t[_F_LEVEL]
        descriptor.Opcode = t[_F_OPCODE]
        if kind == KIND_EVENT:
            off = t[_F_OFFSET]
            flags = t[_F_FLAGS]
            header.Flags = flags | facts.processor_index_flag
            header.EventProperty = _uint(data, off + _EVENT_PROPERTY, _U16)
            header.ProcessorTime = _uint(data, off + _EVENT_CPU_TIME, _U64)
            activity = bytes(data[off + _EVENT_ACTIVITY:off + _EVENT_ACTIVITY + _GUID_SIZE])
            if activity != _ZERO_GUID:
                header.ActivityId = uuid.UUID(bytes_le=activity)
            descriptor.Id = t[_F_ID]
            descriptor.Channel = t[_F_CHANNEL]
            descriptor.Task = t[_F_TASK]
            descriptor.Keyword = t[_F_KEYWORD]
            if flags & _FLAG_EXTENDED_INFO:
                record.ExtendedData = extended_items(rec.extended_data)
                record.ExtendedDataCount = len(record.ExtendedData)
        else:
            header.Flags = (_FLAG_CLASSIC | facts.processor_index_flag
                            | (_FLAG_32 if t[_F_HTYPE] in _HEADER_TYPES_32 else _FLAG_64))
            descriptor.Id = descriptor.Channel = descriptor.Task = descriptor.Keyword = 0
            cpu = _SYSTEM_CPU_TIME if kind == KIND_SYSTEM else (
                _FULL_CPU_TIME if kind >= KIND_FULL else 0)
            if cpu and t[_F_SIZE] >= cpu + _U64:
                header.ProcessorTime = _uint(data, t[_F_OFFSET] + cpu, _U64)
    record.EventHeader = header
    record.BufferContext = facts.buffer_context
    record.UserDataLength = len(user_data)
    record.UserData = user_data
    record.UserContext = user_context
    return record


def _pointer_flag(options: int, pointer_size: int) -> int:
    return _FLAG_64 if message_pointer_size(options, pointer_size) == 8 else _FLAG_32


def to_event_trace(rec, timestamp: int, facts: BufferFacts) -> EVENT_TRACE | None:
    """``rec`` as a classic EVENT_TRACE (EventCallback); None for unknown records.

    For a WPP message only the members its MessageFlags carried are set (TraceMessageVa):
    Header.Guid needs TRACE_MESSAGE_GUID, ThreadId/ProcessId TRACE_MESSAGE_SYSTEMINFO,
    TimeStamp TRACE_MESSAGE_TIMESTAMP, InstanceId (the sequence) TRACE_MESSAGE_SEQUENCE.
    """
    parts = _parts(rec)
    if parts is None:
        return None
    t, kind, present, data, user_data = parts
    header = EVENT_TRACE_HEADER.__new__(EVENT_TRACE_HEADER)
    header.Size = t[_F_SIZE]
    header.HeaderType = t[_F_HTYPE]
    header.Level = t[_F_LEVEL]
    header.KernelTime = header.UserTime = header.ClientContext = 0
    header.ThreadId = t[_F_TID] if present & _HAS_TID else 0
    header.ProcessId = t[_F_PID] if present & _HAS_PID else 0
    header.Guid = _provider_guid(t, rec)
    event = EVENT_TRACE.__new__(EVENT_TRACE)
    event.InstanceId = event.ParentInstanceId = 0
    event.ParentGuid = GUID_NULL
    if kind == KIND_MESSAGE:
        options = t[_F_FLAGS]
        header.MarkerFlags = 0
        header.Type = 0
        header.Version = t[_F_ID]
        header.TimeStamp = timestamp if options & _MSG_TIMESTAMP else 0
        header.Flags = options
        if present & _HAS_SEQ:
            event.InstanceId = t[_F_SEQ]
    else:
        header.MarkerFlags = ETL.TRACE_RECORD_MARKER_FIXED
        header.Type = t[_F_OPCODE]
        header.Version = t[_F_VERSION]
        header.TimeStamp = timestamp
        header.Flags = 0
        off = t[_F_OFFSET]
        size = t[_F_SIZE]
        if kind == KIND_SYSTEM and size >= _SYSTEM_USER_TIME + _U32:
            header.KernelTime = _uint(data, off + _SYSTEM_CPU_TIME, _U32)
            header.UserTime = _uint(data, off + _SYSTEM_USER_TIME, _U32)
        elif kind in (KIND_FULL, KIND_INSTANCE) and size >= _FULL_CPU_TIME + _U64:
            # the C union: {KernelTime, UserTime} = {ClientContext, Flags}
            header.KernelTime = header.ClientContext = _uint(data, off + _FULL_CPU_TIME, _U32)
            header.UserTime = header.Flags = _uint(data, off + _FULL_CPU_TIME + _U32, _U32)
            if kind == KIND_INSTANCE and size >= _INSTANCE_SIZE:
                event.InstanceId = rec.instance_id or 0
                event.ParentInstanceId = _uint(data, off + _INSTANCE_PARENT, _U32)
                event.ParentGuid = _guid(data, off + _INSTANCE_PARENT_GUID)
        elif kind == KIND_EVENT and size >= _EVENT_CPU_TIME + _U64:
            cpu = _uint(data, off + _EVENT_CPU_TIME, _U64)
            header.KernelTime = cpu & 0xFFFFFFFF
            header.UserTime = cpu >> 32
    event.Header = header
    event.MofData = user_data
    event.MofLength = len(user_data)
    event.BufferContext = facts.buffer_context
    return event
