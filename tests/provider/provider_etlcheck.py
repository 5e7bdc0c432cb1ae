"""A strict, independent reader of the .etl files the provider writes (tests only).

Written from docs/etl-format.md with its own offsets (it deliberately does not use wpptrace's
decoder or etl_layout.h), it checks every writer rule of §4 while reading and returns plain
dicts, so the provider tests assert exact bytes. dissect.etl is the third-party cross-check.
"""
from __future__ import annotations

import dataclasses
import heapq
import struct
import uuid

BUFFER_HEADER = struct.Struct("<IIIiqqQHHIIHH16x")      # 0x48 bytes
SYSTEM_HEADER = struct.Struct("<HBBHHIIqII")             # 0x20 bytes
LOGFILE_HEADER_SIZE = 0x118
EVENT_TRACE_GUID = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")


@dataclasses.dataclass
class Message:
    buffer_index: int          # position in the file
    buffer_sequence: int
    processor: int
    offset: int
    size: int
    number: int
    flags: int
    sequence: int | None
    guid: uuid.UUID | None
    component_id: int | None
    timestamp: int | None
    thread_id: int | None
    process_id: int | None
    args: bytes


@dataclasses.dataclass
class EtlContents:
    header: dict
    logger_name: str
    logfile_name: str
    buffers: list[dict]
    messages: list[Message]


class EtlCheckError(AssertionError):
    pass


def _need(cond: bool, what: str) -> None:
    if not cond:
        raise EtlCheckError(what)


def _utf16z(data: bytes, start: int) -> tuple[str, int]:
    end = start
    while data[end:end + 2] != b"\0\0":
        end += 2
        _need(end < len(data), "unterminated UTF-16 name")
    return data[start:end].decode("utf-16-le"), end + 2


def parse_message(data: bytes, offset: int) -> tuple[dict, int]:
    """One MESSAGE_TRACE_HEADER record at data[offset:]; returns (fields, size)."""
    size, reserved, marker, number, flags = struct.unpack_from("<HBBHH", data, offset)
    _need(marker == 0x90 and reserved == 0, f"bad message marker at {offset:#x}")
    pos = offset + 8
    out: dict = {"size": size, "number": number, "flags": flags, "sequence": None, "guid": None,
                 "component_id": None, "timestamp": None, "thread_id": None, "process_id": None}
    if flags & 0x01:
        out["sequence"], = struct.unpack_from("<I", data, pos); pos += 4
    if flags & 0x02:
        out["guid"] = uuid.UUID(bytes_le=bytes(data[pos:pos + 16])); pos += 16
    if flags & 0x04:
        out["component_id"], = struct.unpack_from("<I", data, pos); pos += 4
    if flags & 0x08:
        out["timestamp"], = struct.unpack_from("<q", data, pos); pos += 8
    if flags & 0x20:
        out["thread_id"], out["process_id"] = struct.unpack_from("<II", data, pos); pos += 8
    _need(pos <= offset + size, f"message items overrun the record at {offset:#x}")
    out["args"] = bytes(data[pos:offset + size])
    return out, size


def read(path) -> EtlContents:
    data = open(path, "rb").read()
    _need(len(data) >= 0x48, "file shorter than a buffer header")
    bh = BUFFER_HEADER.unpack_from(data, 0)
    buffer_size = bh[0]
    _need(buffer_size % 1024 == 0 and buffer_size >= 1024, "BufferSize not a whole number of KiB")
    # header buffer and header record
    (_, saved, current, _, ts, seq, _, proc, logger, state, filled, bflag, btype) = bh
    _need(seq == 0 and btype == 4 and bflag == 0x21 and state == 3 and ts == 0 and proc == 0,
          f"header buffer fields {bh}")
    _need(saved == current == filled, "header buffer offsets differ")
    version, htype, hflags, hsize, hook, tid, pid, systime, ktime, utime = SYSTEM_HEADER.unpack_from(data, 0x48)
    _need((version, htype, hflags, hook) == (2, 0x02, 0xC0, 0), "logfile header record marker")
    _need(saved == 0x48 + ((hsize + 7) & ~7), "header buffer SavedOffset")
    lh = 0x68
    f = lambda fmt, off: struct.unpack_from(fmt, data, lh + off)[0]
    header = {
        "BufferSize": f("<I", 0x00), "Version": bytes(data[lh + 4:lh + 8]), "ProviderVersion": f("<I", 0x08),
        "NumberOfProcessors": f("<I", 0x0C), "EndTime": f("<q", 0x10), "TimerResolution": f("<I", 0x18),
        "MaximumFileSize": f("<I", 0x1C), "LogFileMode": f("<I", 0x20), "BuffersWritten": f("<I", 0x24),
        "StartBuffers": f("<I", 0x28), "PointerSize": f("<I", 0x2C), "EventsLost": f("<I", 0x30),
        "CpuSpeedInMHz": f("<I", 0x34), "BootTime": f("<q", 0xF8), "PerfFreq": f("<q", 0x100),
        "StartTime": f("<q", 0x108), "ReservedFlags": f("<I", 0x110), "BuffersLost": f("<I", 0x114),
        "header_systemtime": systime, "header_tid": tid, "header_pid": pid,
    }
    _need(header["BufferSize"] == buffer_size, "logfile BufferSize")
    _need(header["PointerSize"] == 8, "PointerSize")
    # EndTime is written by a clean stop only (0 while logging, or if the writer died)
    _need(header["EndTime"] == 0 or header["EndTime"] >= header["StartTime"], "EndTime < StartTime")
    logger_name, pos = _utf16z(data, lh + LOGFILE_HEADER_SIZE)
    logfile_name, pos = _utf16z(data, pos)
    _need(pos == 0x48 + hsize, "names do not end the header record")
    _need(data[pos:saved] == b"\0" * (saved - pos), "header record pad not zero")
    _need(data[saved:buffer_size] == b"\xff" * (buffer_size - saved), "header buffer fill not 0xFF")
    count = header["BuffersWritten"]
    _need(len(data) >= count * buffer_size, f"file of {len(data)} bytes shorter than BuffersWritten {count} x BufferSize {buffer_size}")
    buffers, messages = [], []
    for i in range(1, count):
        base = i * buffer_size
        (bsize, saved, current, refc, ts, seq, _, proc, logger, state, filled, bflag, btype) = \
            BUFFER_HEADER.unpack_from(data, base)
        _need(bsize == buffer_size and saved == current == filled and state == 3 and btype == 0
              and bflag == 0x20, f"data buffer {i} header")
        _need(saved > 0x48, f"empty data buffer {i}")
        _need(proc < header["NumberOfProcessors"], f"buffer {i} ProcessorIndex {proc}")
        _need(data[base + saved:base + buffer_size] == b"\xff" * (buffer_size - saved), f"buffer {i} fill")
        buffers.append({"index": i, "sequence": seq, "processor": proc, "logger_id": logger,
                        "timestamp": ts, "used": saved})
        off = 0x48
        chunk = data[base:base + buffer_size]
        last_ts = None
        while off < saved:
            rec, size = parse_message(chunk, off)
            aligned = (size + 7) & ~7
            _need(off + aligned <= saved, f"record at {off:#x} runs past SavedOffset")
            _need(chunk[off + size:off + aligned] == b"\0" * (aligned - size), "alignment pad not zero")
            messages.append(Message(buffer_index=i, buffer_sequence=seq, processor=proc, offset=off, **rec))
            if rec["timestamp"] is not None:
                _need(rec["timestamp"] <= ts, f"record at {off:#x} of buffer {i} after its buffer's flush time")
                if last_ts is not None:
                    _need(rec["timestamp"] >= last_ts, f"timestamps decrease inside buffer {i}")
                last_ts = rec["timestamp"]
            off += aligned
    return EtlContents(header, logger_name, logfile_name, buffers, messages)


def stream_order(contents: EtlContents) -> dict[int, list[Message]]:
    """Messages per ProcessorIndex, buffers ordered by SequenceNumber (how readers merge)."""
    in_buffer: dict[int, list[Message]] = {}
    for m in contents.messages:
        in_buffer.setdefault(m.buffer_index, []).append(m)
    streams: dict[int, list[Message]] = {}
    for b in sorted(contents.buffers, key=lambda b: b["sequence"]):
        streams.setdefault(b["processor"], []).extend(in_buffer.get(b["index"], ()))
    return streams


def time_order(contents: EtlContents) -> list[Message]:
    """Messages in ProcessTrace order: the per-processor streams merged by timestamp (ties go
    to the lower processor). Per-processor buffers are flushed out of order, and a logging
    thread may move between processors, so file order is not logging order."""
    streams = stream_order(contents)
    return list(heapq.merge(*(streams[p] for p in sorted(streams)), key=lambda m: m.timestamp))


def dissect_messages(path) -> list[dict]:
    """Message records as dissect.etl 3.14 reports them (items are inside its payload)."""
    from dissect.etl import ETL

    out = []
    with open(path, "rb") as fh:
        for record in ETL(fh):
            h = record.header
            if type(h).__name__ != "MessageTraceHeader":
                continue
            flags = h.header.EventProperty
            out.append({"number": h.id, "flags": flags, "guid": h.provider_id if flags & 2 else None,
                        "sequence": h.sequence_number if flags & 1 else None,
                        "thread_id": h.thread_id, "process_id": h.process_id,
                        "timestamp": h.timestamp if flags & 8 else None,
                        "raw_time": h.time_delta if flags & 8 else None,
                        "payload": bytes(h.payload)})
    return out


def buffer_messages(data: bytes) -> list[dict]:
    """The message records of one data buffer (as delivered in real time)."""
    used = struct.unpack_from("<I", data, 4)[0]
    out, off = [], 0x48
    while off < used:
        rec, size = parse_message(data, off)
        out.append(rec)
        off += (size + 7) & ~7
    return out
