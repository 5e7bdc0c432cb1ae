"""A small .etl writer for fmt tests and the fmt benchmark: TraceMessage records per docs/etl-format.md §4.

Writes a header buffer (SYSTEM64 logfile-header event) and data buffers of message records,
one buffer stream per processor, QPC clock at 10 MHz. Only what the formatter tests need;
the product's writer is the provider core.
"""
from __future__ import annotations

import pathlib
import struct
import uuid
from typing import BinaryIO, Iterable

BUFFER_HEADER = struct.Struct("<IIIiqqQHHIIHH16s")  # WMI_BUFFER_HEADER, 0x48 bytes
assert BUFFER_HEADER.size == 0x48
SYSTEM_HEADER = struct.Struct("<HBBHHIIqII")  # SYSTEM_TRACE_HEADER, 0x20 bytes
assert SYSTEM_HEADER.size == 0x20

FLAGS_WPP = 0x2B  # SEQUENCE | GUID | TIMESTAMP | SYSTEMINFO
FLAGS_CORPUS = 0xAA  # GUID | TIMESTAMP | SYSTEMINFO | POINTER64, as in the real captures

START_TIME = 134000000000000000  # FILETIME 2025-08-18 14:13:20 UTC
T0 = 5_000_000_000  # raw QPC (10 MHz) of the header event, paired with START_TIME


def logfile_header_event(*, buffer_size: int, buffers_written: int, nprocs: int, pointer_size: int,
                         start_time: int, end_time: int, t0: int, events_lost: int = 0,
                         logger: str = "wpptrace-test", logfile: str = "test.etl",
                         tid: int = 0x1111, pid: int = 0x2222, sequential_mode: int = 1) -> bytes:
    fixed = bytearray(0x118)
    struct.pack_into("<IBBBBII", fixed, 0, buffer_size, 10, 0, 1, 5, 19041, nprocs)
    struct.pack_into("<qIII", fixed, 0x10, end_time, 156250, 0, sequential_mode)
    struct.pack_into("<IIIII", fixed, 0x24, buffers_written, 1, pointer_size, events_lost, 3000)
    struct.pack_into("<qqq", fixed, 0xF8, start_time - t0, 10_000_000, start_time)
    struct.pack_into("<II", fixed, 0x110, 1, 0)
    names = (logger + "\0").encode("utf-16-le") + (logfile + "\0").encode("utf-16-le")
    payload = bytes(fixed) + names
    size = SYSTEM_HEADER.size + len(payload)
    head = SYSTEM_HEADER.pack(2, 0x02, 0xC0, size, 0x0000, tid, pid, t0, 0, 0)
    return head + payload


def message_record(guid: uuid.UUID, number: int, args: bytes, *, timestamp: int, tid: int,
                   pid: int, flags: int = FLAGS_WPP, sequence: int = 0) -> bytes:
    items = b""
    if flags & 0x01:
        items += struct.pack("<I", sequence)
    if flags & 0x02:
        items += guid.bytes_le
    if flags & 0x08:
        items += struct.pack("<q", timestamp)
    if flags & 0x20:
        items += struct.pack("<II", tid, pid)
    size = 8 + len(items) + len(args)
    return struct.pack("<HBBHH", size, 0, 0x90, number, flags) + items + args


def _align8(n: int) -> int:
    return (n + 7) & ~7


class EtlWriter:
    """Streams message records into per-processor buffers; ``close()`` patches the header totals."""

    def __init__(self, fh: BinaryIO, *, buffer_size: int = 65536, nprocs: int = 2,
                 pointer_size: int = 8, start_time: int = START_TIME, t0: int = T0,
                 events_lost: int = 0):
        self.fh = fh
        self.buffer_size = buffer_size
        self.nprocs = nprocs
        self.pointer_size = pointer_size
        self.start_time = start_time
        self.t0 = t0
        self.events_lost = events_lost
        self.buffers_written = 1
        self.sequence = 0
        self.last_ts = t0
        self._bufs: dict[int, list] = {}  # cpu -> [bytearray parts, used]
        fh.write(b"\0" * buffer_size)  # the header buffer, written at close

    def add(self, record: bytes, *, cpu: int = 0, timestamp: int | None = None) -> None:
        if len(record) > self.buffer_size - 0x48:
            raise ValueError("record larger than a buffer")
        if timestamp is not None:
            self.last_ts = max(self.last_ts, timestamp)
        state = self._bufs.get(cpu)
        if state is None:
            state = self._bufs[cpu] = [[], 0x48]
        size = _align8(len(record))
        if state[1] + size > self.buffer_size:
            self._flush(cpu)
            state = self._bufs[cpu] = [[], 0x48]
        state[0].append(record + b"\0" * (size - len(record)))
        state[1] += size

    def _flush(self, cpu: int) -> None:
        parts, used = self._bufs.pop(cpu)
        if not parts:
            return
        self.sequence += 1
        head = BUFFER_HEADER.pack(self.buffer_size, used, used, 0, self.last_ts, self.sequence, 0,
                                  cpu, 0x11, 3, used, 0x0020, 0, b"\0" * 16)
        body = head + b"".join(parts)
        self.fh.write(body + b"\xff" * (self.buffer_size - len(body)))
        self.buffers_written += 1

    def close(self) -> None:
        for cpu in sorted(self._bufs):
            self._flush(cpu)
        end_time = self.start_time + (self.last_ts - self.t0)
        event = logfile_header_event(
            buffer_size=self.buffer_size, buffers_written=self.buffers_written, nprocs=self.nprocs,
            pointer_size=self.pointer_size, start_time=self.start_time, end_time=end_time,
            t0=self.t0, events_lost=self.events_lost)
        used = 0x48 + _align8(len(event))
        head = BUFFER_HEADER.pack(self.buffer_size, used, used, 0, 0, 0, 0, 0, 0x11, 3, used,
                                  0x0021, 4, b"\0" * 16)
        body = head + event + b"\0" * (_align8(len(event)) - len(event))
        self.fh.seek(0)
        self.fh.write(body + b"\xff" * (self.buffer_size - len(body)))
        self.fh.seek(0, 2)


def write_tmf(directory, guid: uuid.UUID, text: str, args: list[tuple[str, str]]) -> pathlib.Path:
    """A TMF file of one message, number 10 of ``guid``, in ``directory``: its format ``text``
    after the %0 prefix mark, its arguments (name, item type) numbered from 10, as tracepdb
    writes them. Returns the file's path."""
    items = "".join(f"{name}, {item} -- {10 + k}\n" for k, (name, item) in enumerate(args))
    path = pathlib.Path(directory) / f"{guid}.tmf"
    path.write_text(f"{guid} T // SRC=t.c\n#typev t_c1 10 \"%0{text}\" //   FUNC=f\n{{\n{items}}}\n",
                    encoding="ascii")
    return path


def write_messages(path, messages: Iterable[tuple], **kwargs) -> int:
    """Write (guid, number, args, tid, pid, cpu, timestamp[, flags]) tuples to path; returns the count."""
    n = 0
    with open(path, "wb") as fh:
        writer = EtlWriter(fh, **kwargs)
        for m in messages:
            guid, number, args, tid, pid, cpu, ts = m[:7]
            flags = m[7] if len(m) > 7 else FLAGS_WPP
            n += 1
            writer.add(message_record(guid, number, args, timestamp=ts, tid=tid, pid=pid,
                                      flags=flags, sequence=n), cpu=cpu, timestamp=ts)
        writer.close()
    return n
