"""Build small .etl files byte by byte for decoder tests (layouts per docs/etl-format.md).

The provider core writes real files; this builder exists for what a live session cannot
produce on demand: every record header kind (32/64-bit, PEBS/PMC items, extended data,
component ids, unknown kinds), chosen timestamps and processors, flush order, clock types.
Offsets are written out here on purpose, independently of etl_layout.h.
"""
from __future__ import annotations

import struct
import uuid

EVENT_TRACE_GUID = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")
START_TIME = 133_500_000_000_000_000          # 2024-01-17 21:20:00 UTC (FILETIME)
T0 = 9_995_000_000                            # raw clock of the header record


def _pad8(b: bytes) -> bytes:
    return b + bytes(-len(b) % 8)


def system(hook: int, ts: int, tid: int = 1, pid: int = 2, payload: bytes = b"",
           bits64: bool = True, version: int = 2, extra_items: bytes = b"") -> bytes:
    """SYSTEM32/64 record; ``version`` may carry PEBS (0x8000) / PMC (0x0700) bits, whose
    8-byte items follow the header (``extra_items``)."""
    size = 0x20 + len(extra_items) + len(payload)
    return struct.pack("<HBBHHIIqII", version, 2 if bits64 else 1, 0xC0, size, hook, tid, pid,
                       ts, 0, 0) + extra_items + payload


def compact(hook: int, ts: int, tid: int = 1, pid: int = 2, payload: bytes = b"",
            bits64: bool = True) -> bytes:
    size = 0x18 + len(payload)
    return struct.pack("<HBBHHIIq", 2, 4 if bits64 else 3, 0xC0, size, hook, tid, pid, ts) + payload


def perfinfo(hook: int, ts: int, payload: bytes = b"", bits64: bool = True, version: int = 2,
             extra_items: bytes = b"") -> bytes:
    size = 0x10 + len(extra_items) + len(payload)
    return struct.pack("<HBBHHq", version, 0x11 if bits64 else 0x10, 0xC0, size, hook, ts) \
        + extra_items + payload


def full(guid: uuid.UUID, event_type: int, ts: int, tid: int = 1, pid: int = 2,
         payload: bytes = b"", bits64: bool = True, level: int = 4, version: int = 0) -> bytes:
    size = 0x30 + len(payload)
    return struct.pack("<HBBBBHIIq16sQ", size, 0x14 if bits64 else 0x0A, 0xC0, event_type, level,
                       version, tid, pid, ts, guid.bytes_le, 0) + payload


def instance(guid: uuid.UUID, event_type: int, ts: int, instance_id: int, parent: uuid.UUID,
             payload: bytes = b"", bits64: bool = True) -> bytes:
    size = 0x48 + len(payload)
    return struct.pack("<HBBBBHIIq16sQII16s", size, 0x15 if bits64 else 0x0B, 0xC0, event_type, 4,
                       0, 1, 2, ts, guid.bytes_le, 0, instance_id, 0, parent.bytes_le) + payload


def event(guid: uuid.UUID, event_id: int, ts: int, tid: int = 1, pid: int = 2,
          payload: bytes = b"", bits64: bool = True, flags: int = 0x40, level: int = 4,
          opcode: int = 0, task: int = 0, keyword: int = 0, version: int = 0, channel: int = 0,
          extended: list[tuple[int, bytes]] = ()) -> bytes:
    """EVENT_HEADER record; ``extended`` items (type, data) set EXTENDED_INFO."""
    ext = b""
    for i, (ext_type, data) in enumerate(extended):
        item_size = 8 + len(_pad8(data))
        linkage = 1 if i + 1 < len(extended) else 0
        ext += struct.pack("<HHHH", item_size, ext_type, linkage, len(data)) + _pad8(data)
    if extended:
        flags |= 0x0001
    size = 0x50 + len(ext) + len(payload)
    return struct.pack("<HBBHHIIq16sHBBBBHQQ16s", size, 0x13 if bits64 else 0x12, 0xC0, flags, 0,
                       tid, pid, ts, guid.bytes_le, event_id, version, channel, level, opcode,
                       task, keyword, 0, bytes(16)) + ext + payload


def message(number: int, guid: uuid.UUID | None, ts: int | None, args: bytes = b"",
            tid: int | None = 1, pid: int = 2, sequence: int | None = None,
            component: int | None = None, pointer_flag: int = 0x80) -> bytes:
    flags = pointer_flag
    items = b""
    if sequence is not None:
        flags |= 0x01
        items += struct.pack("<I", sequence)
    if guid is not None:
        flags |= 0x02
        items += guid.bytes_le
    elif component is not None:
        flags |= 0x04
        items += struct.pack("<I", component)
    if ts is not None:
        flags |= 0x08
        items += struct.pack("<q", ts)
    if tid is not None:
        flags |= 0x20
        items += struct.pack("<II", tid, pid)
    size = 8 + len(items) + len(args)
    return struct.pack("<HBBHH", size, 0, 0x90, number, flags) + items + args


def unknown(type_byte: int, size: int = 16) -> bytes:
    """A 0xC0-family record of a header type we do not decode (size in the low word)."""
    return struct.pack("<HBB", size, type_byte, 0xC0) + bytes(size - 4)


def logfile_header_record(buffer_size: int, buffers_written: int, processors: int,
                          pointer_size: int = 8, clock: int = 1, perf_freq: int = 10_000_000,
                          start_time: int = START_TIME, t0: int = T0, mode: int = 1,
                          events_lost: int = 0, cpu_mhz: int = 3000,
                          logger: str = "DecoderTest", logfile: str = "C:\\t\\test.etl") -> bytes:
    ptr_fmt = "Q" if pointer_size == 8 else "I"
    body = struct.pack(f"<I4BIIqIIIIIIII{ptr_fmt}{ptr_fmt}", buffer_size, 10, 0, 1, 5, 19041,
                       processors, start_time + 10**8, 156250, 0, mode, buffers_written, 1,
                       pointer_size, events_lost, cpu_mhz, 0, 0)
    body += struct.pack("<i", -60) + bytes(168)          # TIME_ZONE_INFORMATION (Bias -60)
    body += bytes(4)                                     # alignment pad before BootTime
    body += struct.pack("<qqqII", start_time - 10**9, perf_freq, start_time, clock, 0)
    body += (logger + "\0").encode("utf-16-le") + (logfile + "\0").encode("utf-16-le")
    return system(0, t0, 0x1234, 0x5678, body, bits64=pointer_size == 8)


def buffer(records: list[bytes], buffer_size: int, sequence: int, processor: int,
           flush_ts: int = 0, buffer_type: int = 0, flag: int = 0x20) -> bytes:
    body = b"".join(_pad8(r) for r in records)
    used = 0x48 + len(body)
    assert used <= buffer_size, "records do not fit the buffer"
    head = struct.pack("<IIIiqqQHHIIHH16s", buffer_size, used, used, 0, flush_ts, sequence, 0,
                       processor, 7, 3, used, flag, buffer_type, bytes(16))
    return head + body + b"\xff" * (buffer_size - used)


def etl_file(streams: list[tuple[int, int, list[bytes]]], buffer_size: int = 4096,
             processors: int = 4, header_extra: list[bytes] = (), **header) -> bytes:
    """A whole uncompressed file. ``streams``: (processor, sequence, records) per data
    buffer, written in the order given (= flush order)."""
    first = logfile_header_record(buffer_size, len(streams) + 1, processors, **header)
    out = [buffer([first, *header_extra], buffer_size, 0, 0, 0, buffer_type=4, flag=0x21)]
    for processor, sequence, records in streams:
        out.append(buffer(records, buffer_size, sequence, processor, flush_ts=0))
    return b"".join(out)
