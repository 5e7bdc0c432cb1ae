"""The search for the next buffer header after damage in a compressed file.

Candidates are picked in C (``etlrd_next_header_shape``) by the shape of the header's fields,
then checked whole in Python. The C search must pick exactly the positions the field rules
pick (a plain per-position model here, on seeded data rich in the bytes the rules look at),
and a damaged copy of a real compressed file must be read past the damage with the one-line
error it always gave.
"""
from __future__ import annotations

import random
import struct

import pytest

from wpptrace.cli import main
from wpptrace.decoder._hazmat import next_header_shape
from wpptrace.decoder.etlfile import EtlFile

#: WMI_BUFFER_HEADER offsets, written out (docs/etl-format.md §2.1)
BUFFER_SIZE, SEQUENCE, STATE, BUFFER_FLAG, BUFFER_TYPE = 0x00, 0x18, 0x2C, 0x34, 0x36
SPAN = BUFFER_TYPE + 2


def shape_at(d: bytes, p: int) -> bool:
    """The field rules: BufferSize's low 24 bits at least 0x48 and its value below 2 * 16 MiB
    (top byte at most 1), SequenceNumber not negative, State <= 7, BufferFlag < 0x80,
    BufferType <= 8."""
    size = int.from_bytes(d[p:p + 4], "little")
    return (size & 0xFFFFFF >= 0x48 and size >> 24 <= 1
            and d[p + SEQUENCE + 7] < 0x80
            and int.from_bytes(d[p + STATE:p + STATE + 4], "little") <= 7
            and int.from_bytes(d[p + BUFFER_FLAG:p + BUFFER_FLAG + 2], "little") < 0x80
            and int.from_bytes(d[p + BUFFER_TYPE:p + BUFFER_TYPE + 2], "little") <= 8)


def every_candidate(d: bytes) -> list[int]:
    out, at = [], next_header_shape(d, 0)
    while at >= 0:
        out.append(at)
        at = next_header_shape(d, at + 1)
    return out


ALPHABETS = [[0], [0, 1], [0, 0, 0, 0x47, 0x48, 1, 2, 7, 8, 9, 0x7F, 0x80], list(range(256)),
             [0] * 40 + [0x48, 0x01, 0x08, 0xFF]]


@pytest.mark.parametrize("seed", range(6))
def test_the_c_search_picks_what_the_field_rules_pick(seed):
    rng = random.Random(seed)
    found = 0
    for _ in range(400):
        d = bytes(rng.choice(alphabet) for alphabet in [rng.choice(ALPHABETS)]
                  for _ in range(rng.randrange(700)))
        if d and rng.random() < 0.5:              # a header shape planted somewhere, zeros around
            at = rng.randrange(len(d))
            head = bytearray(SPAN)
            struct.pack_into("<I", head, BUFFER_SIZE, rng.choice([0x48, 0x1FF, 0x1FFFFFF, 0x1000000]))
            d = d[:at] + bytes(rng.randrange(20)) + bytes(head) + d[at:]
        model = [p for p in range(len(d) - SPAN + 1) if shape_at(d, p)]
        assert every_candidate(d) == model, d.hex()
        found += len(model)
    assert found > 100                            # the comparison saw candidates, not only misses


def test_long_zero_runs_and_a_start_inside_them():
    head = bytearray(SPAN)
    struct.pack_into("<I", head, BUFFER_SIZE, 0x100)
    d = bytes(100_003) + head + bytes(77)
    # BufferSize 0x100 (00 01 00 00) read one byte early is 0x10000, also a header's shape
    assert every_candidate(d) == [100_002, 100_003]
    assert next_header_shape(d, 100_003) == 100_003 and next_header_shape(d, 100_004) == -1
    assert next_header_shape(bytes(1 << 16), 0) == -1
    assert next_header_shape(b"\x01" + bytes(SPAN - 2), 0) == -1      # shorter than a header


def test_a_damaged_compressed_file_is_read_past_zeros_and_fill(tmp_path, corpus_file, capsys):
    """SelfDescribingSingleEvent.etl (buffers at 0, 1024 and 7177): buffer 1's BufferSize
    made 0x7ffffff8, then 1 MiB and a bit of zeros and some 0xFF fill put before buffer 2,
    so the search crosses a window boundary in zeros. Buffer 2 is found and read whole; the
    rest of buffer 1's header being right, it is read up to there, its records too (its LZ77
    stream ends before the gap)."""
    data = corpus_file("SelfDescribingSingleEvent.etl").read_bytes()
    damaged = bytearray(data)
    struct.pack_into("<I", damaged, 1024, 0x7FFFFFF8)
    gap = bytes((1 << 20) + 4099) + b"\xff" * 5000
    damaged[7177:7177] = gap
    path = tmp_path / "damaged.etl"
    path.write_bytes(damaged)
    buffer2 = 7177 + len(gap)

    with EtlFile(path) as etl:
        assert [b.file_offset for b in etl.buffer_index()] == [0, 1024, buffer2]
        got = [bytes(r.raw) for r in etl.iter_records() if r.buffer_index]
    with EtlFile(corpus_file("SelfDescribingSingleEvent.etl")) as etl:
        want = [bytes(r.raw) for r in etl.iter_records() if r.buffer_index]
    assert got == want and len(want) == 21

    assert main(["dump", "--summary-only", str(path)]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"wpptrace dump: {path}: offset 0x400: buffer 1: expected BufferSize 72..16777216, "
        f"inside the file, found 0x7ffffff8; the next buffer header is at {buffer2:#x}: read as "
        f"{buffer2 - 1024} bytes"]
    assert out.startswith("-- ") and "3 buffers, 2 compressed" in out
