"""Compressed .etl files whose buffers expand far beyond their size on disk, for decoder tests.

A hostile file of a few hundred KB can say each of its compressed buffers expands to 16 MiB
(MAX_ETW_BUFFER_SIZE) of tiny records, one buffer per processor stream: a reader that takes
the expansion on trust holds every stream's first buffer at once while merging, gigabytes.
``bomb_file`` builds such a file (the layout of a real compressed file: a trimmed,
uncompressed buffer 0, then each buffer back to back by its own BufferSize); each stream is
one record, then an LZ77 match repeating it up to the claimed size (a few dozen bytes),
zero-padded on disk to ``on_disk`` bytes.
"""
from __future__ import annotations

import struct
import uuid

import dec_etlgen as gen

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
BUFFER_HEADER = 0x48
COMPRESSED_MODE = 0x4000000
_FLAG_COMPRESSED_PROC_INDEX = 0x40 | 0x20


def repeat_stream(unit: bytes, total: int) -> bytes:
    """A Plain LZ77 stream decoding to ``unit`` repeated up to ``total`` bytes (a multiple
    of ``len(unit)``): ``unit`` as literals, then one match at distance ``len(unit)``."""
    assert total % len(unit) == 0 and total >= 2 * len(unit)
    out = bytearray()
    items = [("lit", b) for b in unit] + [("match", len(unit), total - len(unit))]
    for start in range(0, len(items), 32):
        group = items[start:start + 32]
        flags = 0
        for k, item in enumerate(group):
            if item[0] == "match":
                flags |= 1 << (31 - k)
        flags |= (1 << (32 - len(group))) - 1       # unused bits: ones (the stream's end)
        out += struct.pack("<I", flags)
        for item in group:
            if item[0] == "lit":
                out.append(item[1])
                continue
            _, distance, length = item
            code = length - 3                       # always the u32 escape: length is large
            out += struct.pack("<H", ((distance - 1) << 3) | 7) + bytes([15, 255])
            out += struct.pack("<HI", 0, code)
    return bytes(out)


def bomb_buffer(processor: int, expanded: int, on_disk: int | None = None, sequence: int = 1,
                ts: int = 1000) -> bytes:
    """One compressed buffer of ``on_disk`` bytes (None: no padding) whose header says (and
    whose stream makes) ``expanded`` bytes (header included, rounded down to whole records) of
    one 8-byte-aligned message repeated, timestamp ``ts`` + ``processor``."""
    record = gen._pad8(gen.message(sequence, G, ts + processor))
    payload = expanded - BUFFER_HEADER
    payload -= payload % len(record)
    expanded = BUFFER_HEADER + payload
    stream = repeat_stream(record, payload)
    if on_disk is None:
        on_disk = BUFFER_HEADER + len(stream)
    assert BUFFER_HEADER + len(stream) <= on_disk
    head = struct.pack("<IIIiqqQHHIIHH16s", on_disk, expanded, expanded, 0, ts, sequence, 0,
                       processor, 7, 3, expanded, _FLAG_COMPRESSED_PROC_INDEX, 0, bytes(16))
    return (head + stream).ljust(on_disk, b"\0")


def compressed_file(buffers: list[bytes], *, session_buffer_size: int = 0x1000000,
                    processors: int = 64) -> bytes:
    """A compressed file: buffer 0 (the header buffer), then ``buffers`` back to back."""
    mode = 0x1 | COMPRESSED_MODE
    first = gen.buffer([gen.logfile_header_record(session_buffer_size, len(buffers) + 1,
                                                  processors, mode=mode)],
                       512, 0, 0, buffer_type=4, flag=0x21)
    return first + b"".join(buffers)


def bomb_file(streams: int, expanded: int, on_disk: int, **header) -> bytes:
    """``streams`` one-buffer processor streams, each ``bomb_buffer(p, expanded, on_disk)``."""
    return compressed_file([bomb_buffer(p, expanded, on_disk) for p in range(streams)], **header)


def main() -> None:
    """dec_bomb.py OUT [STREAMS]: the 16 MiB-a-stream file (16 streams by default)."""
    import sys
    out = sys.argv[1]
    streams = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    data = bomb_file(streams, 0x1000000, 16896)
    with open(out, "wb") as f:
        f.write(data)
    print(f"{out}: {len(data)} bytes, {streams} streams")


if __name__ == "__main__":
    main()
