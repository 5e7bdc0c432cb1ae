"""Buffers at any address decode the same: the record walker copies headers, never casts.

Regression (sanitizer run, UBSan at -O0): etlread.c read record headers through struct
pointers cast from the buffer, a misaligned load (undefined behaviour) whenever the caller's
buffer is not 8-aligned, e.g. a memoryview slice handed to parse_buffer.
"""
from __future__ import annotations

import pytest

from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import parse_buffer

FILES = ["lxcore_kernel.etl", "smallEtlFile.etl", "SelfDescribingSingleEvent.etl",
         "wppemitter-sample.etl", "waasmedic.20251005_113019_195.etl"]


def _facts(records):
    return [(r.kind, r.offset, r.size, r.timestamp, r.thread_id, r.process_id, r.provider_id,
             r.event_id, r.flags, r.sequence, bytes(r.user_data)) for r in records]


@pytest.mark.parametrize("name", FILES)
def test_misaligned_buffers_decode_like_aligned_ones(corpus_file, name):
    with EtlFile(corpus_file(name)) as etl:
        pointer_size = etl.header.pointer_size
        buffers = [(b.index, bytes(b.data)) for b, _ in zip(etl.iter_buffers(), range(12))]
    kinds = set()
    for index, data in buffers:
        aligned, issues = parse_buffer(data, pointer_size, header_buffer=index == 0)
        expected = _facts(aligned)
        kinds.update(r.kind for r in aligned)
        for shift in (1, 2, 3, 4, 5, 7):
            view = memoryview(bytearray(shift) + bytearray(data))[shift:]
            got, got_issues = parse_buffer(view, pointer_size, header_buffer=index == 0)
            assert _facts(got) == expected, (name, index, shift)
            assert [i.message for i in got_issues] == [i.message for i in issues]
    assert kinds - {"unknown"}, f"{name}: no decodable records in the first buffers"
