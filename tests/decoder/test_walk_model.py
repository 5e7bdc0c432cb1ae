"""The C walker against a plain-Python model of its rules (dec_walkmodel): same records,
same damage counts, same resume points, whether a caller takes the records in one call or
a few at a time. Buffers are built from valid records, damaged records, fill and noise."""
from __future__ import annotations

import struct
import uuid

from hypothesis import HealthCheck, given, settings, strategies as st

import dec_etlgen as gen
import dec_walkmodel as model
from dec_fuzz import PIECES
from wpptrace._core import ffi, lib

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
START = 0x48


def c_walk(data: bytes, start: int, chunk: int) -> dict:
    """The C walker as records.walk drives it: one zeroed result, calls of at most chunk
    records, each resuming where the previous stopped."""
    src = ffi.from_buffer(data)
    res = ffi.new("etlrd_walk_result *")
    out = ffi.new("etlrd_record[]", chunk)
    offsets, pos = [], start
    while True:
        n = lib.etlrd_walk(src, len(data), pos, out, chunk, res)
        offsets += [out[i].offset for i in range(n)]
        if not res.more:
            break
        pos = res.end_offset
    return {"offsets": offsets, "errors": res.errors, "skipped": res.skipped_bytes,
            "first_error": res.error, "first_offset": res.error_offset, "end": res.end_offset,
            "ends_damaged": bool(res.ends_damaged)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=14), st.sampled_from([1, 2, 3, 1000]))
def test_walker_follows_the_model(pieces, chunk):
    data = bytes(START) + b"".join(pieces)
    assert c_walk(data, START, chunk) == model.walk(data, START, len(data), chunk)


def test_resume_steps_back_into_a_record_whose_size_was_the_damage():
    a, b, c = (gen.message(i, G, 5, b"x" * 8) for i in range(3))
    bad = bytearray(a)
    struct.pack_into("<H", bad, 0, 0x100)               # a valid size, but it skips b and c
    tail = bytearray(b"\xff" * 0x200)
    tail[0x100 - 3 * len(a):0x100 - 3 * len(a) + 4] = b"\x12\x34\x56\x78"   # where a leads
    data = bytes(START) + bytes(bad) + b + c + bytes(tail)
    got = c_walk(data, START, 1000)
    assert got == model.walk(data, START, len(data), 1000)
    assert got["offsets"] == [START, START + len(a), START + 2 * len(a)]   # b and c kept
    assert got["errors"] == 1 and got["first_offset"] == START + 0x100


def test_no_clean_point_resumes_at_each_next_plausible_header():
    # every record is followed by damage, so no chain reaches the end cleanly
    rec = gen.message(1, G, 5, b"x" * 8)
    data = bytes(START) + (rec + b"\x12\x34\x56\x78" * 2) * 50 + b"\x00" * 5
    got = c_walk(data, START, 7)
    assert got == model.walk(data, START, len(data), 7)
    assert len(got["offsets"]) == 50 and got["errors"] == 50   # the zeros end in the last skip
