"""Hostile buffer shapes for the record walker, at any size up to the 16 MiB ETW allows, and
whole .etl files holding one of them. Shared by the regression test of the walker's resume
search, the buffer-size fuzz target and its long-running script.

    python3 tests/decoder/dec_hostile.py [SIZE_KIB ...]

walks every shape at the given sizes (default 64 256 1024 16384) and prints the times.
"""
from __future__ import annotations

import struct
import sys
import time

BUFFER_HEADER = 0x48
MAX_BUFFER = 16 << 20
JUNK = b"\x78\x56\x34\x12"                        # no record marker
MSG8 = struct.pack("<HBBHH", 8, 0, 0x90, 1, 0)    # the smallest message record (no items)
MSG16 = struct.pack("<HBBHH", 16, 0, 0x90, 1, 0) + bytes(8)


def _blank(size: int, fill: bytes = b"\xff") -> bytearray:
    return bytearray(bytes(BUFFER_HEADER) + fill * (size - BUFFER_HEADER))


def fill_after_damaged_first_record(size: int) -> bytes:
    """The first record marker damaged, then 0xFF except the very last byte: every
    candidate resume point looks like the fill tail until the last byte."""
    b = _blank(size)
    b[BUFFER_HEADER:BUFFER_HEADER + 4] = JUNK
    b[-1] = 0
    return bytes(b)


def fill_with_junk_every_page(size: int) -> bytes:
    """0xFF with a junk word every 4 KiB and a last byte that is not 0xFF."""
    b = _blank(size)
    for off in range(BUFFER_HEADER, size - 8, 4096):
        b[off:off + 4] = JUNK
    b[-1] = 0
    return bytes(b)


def small_records_damaged_every_chunk(size: int) -> bytes:
    """8-byte records with a damaged one every 16384 (one per call of a caller taking
    16384 records at a time) and junk at the end, so no chain ever reaches the end."""
    count = (size - BUFFER_HEADER) // 8
    b = bytearray(bytes(BUFFER_HEADER) + MSG8 * count + bytes(size - BUFFER_HEADER - 8 * count))
    for i in range(16000, count, 16384):
        b[BUFFER_HEADER + 8 * i:BUFFER_HEADER + 8 * i + 4] = JUNK
    b[-8:] = JUNK * 2
    return bytes(b)


def plausible_headers_without_a_clean_chain(size: int) -> bytes:
    """A plausible record header at every 8-byte boundary, each leading 16 bytes on, and
    junk at both ends: every chain is long and none ends cleanly."""
    count = (size - BUFFER_HEADER) // 8
    b = bytearray(bytes(BUFFER_HEADER) + MSG16[:8] * count + bytes(size - BUFFER_HEADER - 8 * count))
    b[BUFFER_HEADER:BUFFER_HEADER + 4] = JUNK
    b[-16:] = JUNK * 4
    return bytes(b)


SHAPES = {f.__name__: f for f in (fill_after_damaged_first_record, fill_with_junk_every_page,
                                  small_records_damaged_every_chunk,
                                  plausible_headers_without_a_clean_chain)}


def etl_with_buffer(data: bytes) -> bytes:
    """A whole uncompressed .etl file: the log-file header buffer, then ``data`` as one data
    buffer whose FilledBytes says it is full (so the walker reads all of it)."""
    import dec_etlgen as gen
    size = len(data)
    first = gen.buffer([gen.logfile_header_record(size, 2, 1)], size, 0, 0, buffer_type=4, flag=0x21)
    head = struct.pack("<IIIiqqQHHIIHH16s", size, size, size, 0, 0, 1, 0, 0, 7, 3, size, 0x20, 0,
                       bytes(16))
    return first + head + data[BUFFER_HEADER:]


def walk_in_chunks(data: bytes, chunk: int = 16384) -> tuple[int, int, int]:
    """(records, damaged spots, skipped bytes) as records.walk takes them: chunk at a time."""
    from wpptrace._core import ffi, lib
    src = ffi.from_buffer(data)
    res = ffi.new("etlrd_walk_result *")
    out = ffi.new("etlrd_record[]", chunk)
    records, pos = 0, BUFFER_HEADER
    while True:
        records += lib.etlrd_walk(src, len(data), pos, out, chunk, res)
        if not res.more:
            return records, res.errors, res.skipped_bytes
        pos = res.end_offset


def main(argv: list[str]) -> int:
    sizes = [int(a) * 1024 for a in argv] or [64 << 10, 256 << 10, 1 << 20, MAX_BUFFER]
    for name, shape in SHAPES.items():
        for size in sizes:
            data = shape(size)
            t0 = time.perf_counter()
            records, errors, skipped = walk_in_chunks(data)
            print(f"{name:44s} {size >> 10:6d} KiB {time.perf_counter() - t0:9.4f} s  "
                  f"records={records} damaged={errors} skipped={skipped}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
