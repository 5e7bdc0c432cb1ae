"""The fuzz properties shared by the brief CI tests and the long-running scripts: any
mutation of a valid .etl file reads without an exception, hang or runaway output
(test_fuzz.py, fuzz_long.py), and so does any buffer of any size up to 16 MiB built from
records, damage, fill and noise (test_fuzz_buffer_sizes.py, fuzz_buffer_sizes_long.py)."""
from __future__ import annotations

import io
import struct
import time
import uuid

from hypothesis import strategies as st

import dec_etlgen as gen
import dec_hostile as hostile

from wpptrace.decoder.buffers import starts_with_logfile_header
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.events import EventReader
from wpptrace.decoder import ordered_records
from wpptrace.decoder.engine import FileSource
from wpptrace.decoder.records import walk
from wpptrace.decoder.wpp_rows import RowView
from wpptrace.winerror import Win32Error

INTERESTING_U32 = [0, 1, 7, 8, 0x47, 0x48, 0x49, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000,
                   0xFFFFFFFF, 0x90000000, 0xC0020000, 0xC0130050]


def mutation(size: int):
    pos = st.integers(min_value=0, max_value=max(size - 1, 0))
    return st.one_of(
        st.tuples(st.just("flip"), pos, st.integers(0, 7)),
        st.tuples(st.just("byte"), pos, st.integers(0, 255)),
        st.tuples(st.just("u32"), pos, st.sampled_from(INTERESTING_U32)),
        st.tuples(st.just("cut"), pos, st.just(0)),
        st.tuples(st.just("insert"), pos, st.integers(1, 64)),
    )


def mutate(data: bytes, mutations) -> bytes:
    buf = bytearray(data)
    for kind, pos, arg in mutations:
        if not buf:
            break
        pos %= len(buf)
        if kind == "flip":
            buf[pos] ^= 1 << arg
        elif kind == "byte":
            buf[pos] = arg
        elif kind == "u32" and pos + 4 <= len(buf):
            struct.pack_into("<I", buf, pos, arg)
        elif kind == "cut":
            del buf[pos:]
        elif kind == "insert":
            buf[pos:pos] = bytes([0xA5]) * arg
    return bytes(buf)


def read_everything(data: bytes) -> int:
    """Read a (damaged) file every way the engine offers; returns the record count."""
    try:
        etl = EtlFile(io.BytesIO(data), name="<fuzz>")
    except Win32Error as exc:
        assert exc.winerror == 11 and exc.offset == 0 and _nothing_of_a_trace(data)
        return 0
    with etl:
        n = sum(1 for _ in ordered_records(etl))
        assert n <= len(data) // 8 + 1
        for issue in etl.errors:
            assert isinstance(issue.offset, int) and 0 <= issue.offset <= len(data) + 0x48
            assert issue.message
    with EventReader(io.BytesIO(data), ordered=False) as events:
        assert sum(1 for _ in events) == n
    with EtlFile(io.BytesIO(data)) as etl:
        assert etl.scan().records == n - _made_header(etl)
    return n


def _nothing_of_a_trace(data: bytes) -> bool:
    """May OpenTrace refuse this file? Shorter than a WMI_BUFFER_HEADER (0x48 bytes), the
    start of a PE image ("MZ"), an ELF image or a PDB ("Microsoft "), or a start that keeps
    no sign of a trace: buffer 0's BufferSize (u32 at 0) above 0x48, at most 16 MiB and a
    multiple of 8 with SavedOffset (u32 at 4) from 0x48 to it; a SYSTEM32/64 marker on the
    record at 0x48 (its HeaderType byte at 0x4A 1 or 2, Flags byte at 0x4B 0xC0); the
    log-file header's PointerSize 4 or 8 (u32 at 0x48 + 32 + 44) beside its BufferSize (u32 at
    0x68) a multiple of 1 KiB up to 16 MiB. (A file without these may still open for a buffer
    header found further on.)"""
    if len(data) < 0x48 or data[:2] == b"MZ" or data[:4] == b"\x7fELF":
        return True
    if data.startswith(b"Microsoft "):
        return True
    size, saved = struct.unpack_from("<II", data, 0)
    sized = 0x48 < size <= 1 << 24 and size % 8 == 0 and 0x48 <= saved <= size
    marked = len(data) >= 0x4C and data[0x4A] in (1, 2) and data[0x4B] == 0xC0
    pointer, session = data[0x94:0x98], data[0x68:0x6C]
    pointed = (len(pointer) == 4 and struct.unpack("<I", pointer)[0] in (4, 8)
               and 0 < struct.unpack("<I", session)[0] <= 1 << 24
               and struct.unpack("<I", session)[0] % 1024 == 0)
    return not (sized or marked or pointed)


def _made_header(etl: EtlFile) -> int:
    """1 if the engine delivers a header event made from the facts of a damaged header
    record (buffer 0 does not start with it, its facts were read): an event, but no record
    the file holds whole, so the totals do not count it."""
    index = etl.buffer_index()
    if not len(index) or etl.made_header_buffer() is None:
        return 0
    return int(not starts_with_logfile_header(etl.read_buffer(index[0])))


# -- buffers of any size -----------------------------------------------------------------
G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
BUFFER_SIZES = [64 << 10, 256 << 10, 1 << 20, 4 << 20, hostile.MAX_BUFFER]

RECORDS = st.one_of(
    st.builds(lambda n, a: gen.message(n, G, 5, a), st.integers(0, 9), st.binary(max_size=24)),
    st.builds(lambda n, a: gen.message(n, None, None, a, tid=None), st.integers(0, 9),
              st.binary(max_size=16)),
    st.builds(lambda a: gen.system(0x0302, 7, payload=a), st.binary(max_size=16)),
    st.builds(lambda a: gen.perfinfo(0x0F2E, 7, payload=a), st.binary(max_size=8)),
    st.builds(lambda a: gen.full(G, 3, 7, payload=a), st.binary(max_size=8)),
    st.builds(lambda: gen.event(G, 1, 7, extended=[(1, b"E" * 8)])),
    st.builds(lambda: gen.unknown(0x0C, 16)),
)


def _damaged(rec: bytes, how: int, value: int) -> bytes:
    b = bytearray(rec)
    if how == 0:
        struct.pack_into("<I", b, 0, value)                       # the marker
    elif how == 1:                                                 # the size field
        kernel = b[3] == 0xC0 and (b[2] <= 4 or b[2] in (0x10, 0x11))
        struct.pack_into("<H", b, 4 if kernel else 0, value & 0xFFFF)
    else:
        b[value % len(b)] ^= 0xFF                                  # any byte
    return bytes(b)


#: pieces buffers are made of: valid records (8-aligned), damaged ones, fill, zeros, noise
PIECES = st.one_of(
    RECORDS.map(lambda r: r + bytes(-len(r) % 8)),
    st.builds(_damaged, RECORDS, st.integers(0, 2), st.sampled_from(INTERESTING_U32)),
    st.integers(1, 40).map(lambda n: b"\xff" * n),
    st.integers(1, 24).map(lambda n: bytes(n)),
    st.binary(min_size=1, max_size=24),
)


@st.composite
def big_buffer(draw, sizes=BUFFER_SIZES) -> bytes:
    """A whole buffer (0x48 header bytes first) of one of ``sizes``: a background (a tile
    of pieces repeated, 0xFF fill or zeros) with a run of other pieces somewhere in it,
    a few 32-bit words overwritten, and maybe a last byte that is not fill."""
    size = draw(st.sampled_from(sizes))
    body = size - hostile.BUFFER_HEADER
    tile = b"".join(draw(st.lists(PIECES, min_size=1, max_size=6)))
    background = draw(st.sampled_from(["tile", "fill", "zeros"]))
    if background == "tile":
        data = bytearray((tile * (body // len(tile) + 1))[:body])
    else:
        data = bytearray((b"\xff" if background == "fill" else b"\0") * body)
    run = b"".join(draw(st.lists(PIECES, max_size=12)))
    at = draw(st.integers(0, body)) & ~7
    data[at:at + len(run)] = run[:body - at]
    for _ in range(draw(st.integers(0, 6))):
        pos = draw(st.integers(0, body - 4))
        struct.pack_into("<I", data, pos, draw(st.sampled_from(INTERESTING_U32)))
    if draw(st.booleans()):
        data[-1] = 0
    return bytes(hostile.BUFFER_HEADER) + bytes(data[:body])


def read_big_buffer(data: bytes, rows_up_to: int = 1 << 20) -> float:
    """Walk one buffer every way the engine offers (chunked, counting, in a whole file,
    and, up to ``rows_up_to`` bytes, through the formatter's rows) and check the totals
    agree and stay inside the buffer. Returns the seconds the walks took."""
    t0 = time.perf_counter()
    size = len(data)
    records, errors, skipped = hostile.walk_in_chunks(data, chunk=4096)
    _, counted = walk(data, hostile.BUFFER_HEADER, size, collect=False)
    assert (sum(counted.by_kind), counted.errors, counted.skipped_bytes) == (records, errors, skipped)
    assert records <= (size - hostile.BUFFER_HEADER) // 8
    assert errors <= (size - hostile.BUFFER_HEADER) // 8 + 1
    assert hostile.BUFFER_HEADER <= counted.end_offset <= size
    with EtlFile(io.BytesIO(hostile.etl_with_buffer(data)), name="<fuzz>") as etl:
        stats = etl.scan()
        assert stats.records >= records + 1            # the log-file header record too
        assert stats.damaged >= errors
        if size <= rows_up_to:
            rows = FileSource(etl).ordered(RowView())
            assert sum(len(batch) for batch, _ in rows) == stats.records
    return time.perf_counter() - t0
