"""The fuzz property shared by test_fuzz.py (brief, in CI) and fuzz_long.py (long runs):
any mutation of a valid .etl file reads without an exception, hang or runaway output."""
from __future__ import annotations

import io
import struct

from hypothesis import strategies as st

from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.events import EventReader
from wpptrace.decoder.ordering import ordered_records
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
        assert exc.winerror == 11 and len(data) < 0x48
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
        assert etl.scan().records == n
    return n
