"""Looking for the next buffer header of a compressed file after damage skips zeroed (or
any one-byte) regions in the search that picks candidates (etlrd_next_header_shape) instead
of checking a candidate at every byte.

The rules that pick candidate offsets used to match anywhere in a run of zeros, and each
candidate was then checked in Python: a compressed file whose second buffer header was
damaged and followed by zeros located its buffers at about 0.3 MB/s (3.5 s per MiB). The
count of candidates checked is the measure here: linear work, not wall time.
"""
from __future__ import annotations

import io

import pytest

import dec_etlgen as gen
from wpptrace._core import lib
from wpptrace.decoder.etlfile import _RESYNC_WINDOW, EtlFile

MODE = lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL | lib.EVENT_TRACE_COMPRESSED_MODE
FIRST = gen.buffer([gen.logfile_header_record(4096, 3, 1, mode=MODE)], 4096, 0, 0,
                   buffer_type=4, flag=0x21)
DAMAGED_HEADER = b"\x12\x34\x56\x78" * 18


@pytest.mark.parametrize("byte", [0x00, 0xFF, 0x01, 0x48])
def test_a_uniform_region_after_a_damaged_header_yields_no_candidates(monkeypatch, byte):
    checked = []
    real = EtlFile._plausible_packed

    def counting(self, offset, raw):
        checked.append(offset)
        return real(self, offset, raw)

    monkeypatch.setattr(EtlFile, "_plausible_packed", counting)
    data = FIRST + DAMAGED_HEADER + bytes([byte]) * (1 << 20)
    with EtlFile(io.BytesIO(data), name="zeroed.etl") as etl:
        assert len(etl.buffer_index()) == 1
        assert any("no further buffer found" in e.message for e in etl.errors)
    assert len(checked) < 16                     # was about one per byte: 1 MiB of them


def test_a_real_buffer_after_the_zeros_is_still_found():
    body = gen.buffer([gen.message(1, None, 5, b"x")], 4096, 1, 0)
    data = FIRST + DAMAGED_HEADER + bytes(4096) + body
    with EtlFile(io.BytesIO(data), name="zeroed.etl") as etl:
        offsets = [b.file_offset for b in etl.buffer_index()]
    assert offsets == [0, len(FIRST) + len(DAMAGED_HEADER) + 4096]


PREALLOCATED = MODE | lib.EVENT_TRACE_FILE_MODE_PREALLOCATE


def preallocated_file(mode: int, tail: bytes) -> bytes:
    """Buffer 0 and two data buffers of a compressed session (BuffersWritten 3), then ``tail``."""
    first = gen.buffer([gen.logfile_header_record(4096, 3, 1, mode=mode)], 4096, 0, 0,
                       buffer_type=4, flag=0x21)
    data = [gen.buffer([gen.message(1, None, 5 + k, b"x")], 512, k + 1, 0) for k in range(2)]
    return first + b"".join(data) + tail


def reads_past(monkeypatch, start: int) -> list[tuple[int, int]]:
    """(offset, length) of each read of the file at or after ``start``, as they are made."""
    reads = []
    real = EtlFile._read_at

    def counting(self, offset, size):
        data = real(self, offset, size)
        if offset >= start:
            reads.append((offset, len(data)))
        return data

    monkeypatch.setattr(EtlFile, "_read_at", counting)
    return reads


def read_once(reads: list[tuple[int, int]], start: int, end: int) -> bool:
    """Whether the reads cover start..end with each byte read once, but for the overlap of
    a buffer header between two windows of the search (a header across their border): a
    read starts at most a header before where the ones before it stopped, and all of them
    read at most a header more than start..end per window of the search (and its first)."""
    pos = start
    for offset, length in sorted(reads):
        if not pos - 72 <= offset <= pos:
            return False
        pos = max(pos, offset + length)
    windows = 1 + (end - start) // _RESYNC_WINDOW
    return pos == end and sum(length for _, length in reads) <= end - start + 72 * windows


def test_read_once_tells_bytes_read_twice():
    start, end = 5120, 5120 + (2 << 20) + 100
    assert read_once([(start, 72), (start + 1, _RESYNC_WINDOW + 72),
                      (start + 1 + _RESYNC_WINDOW, _RESYNC_WINDOW + 72),
                      (start + 1 + 2 * _RESYNC_WINDOW, end - start - 1 - 2 * _RESYNC_WINDOW)], start, end)
    # 144 bytes at a time moving 72: no read starts past where the ones before it stopped
    n = 30000
    assert read_once([(start + 72 * k, 144) for k in range(n - 1)], start, start + 72 * n) is False


def test_the_zeroed_rest_of_a_preallocated_compressed_file_ends_it_quietly(monkeypatch):
    """EVENT_TRACE_FILE_MODE_PREALLOCATE: the file was made its maximum size at the start, and
    a session that did not stop leaves zeros after its last buffer. They end the file: no
    error, and each byte of them is read once (the search for a buffer header is the zero
    check)."""
    data = preallocated_file(PREALLOCATED, bytes((2 << 20) + 100))
    reads = reads_past(monkeypatch, 4096 + 1024)
    with EtlFile(io.BytesIO(data), name="prealloc.etl") as etl:
        assert [b.file_offset for b in etl.buffer_index()] == [0, 4096, 4096 + 512]
        assert read_once(reads, 4096 + 1024, len(data)), reads
        assert etl.scan().by_kind["message"] == 2
        assert etl.errors == []


@pytest.mark.parametrize("mode, tail", [(MODE, bytes(5000)),                       # not preallocated
                                        (PREALLOCATED, bytes((1 << 20) + 9) + b"\x01"),
                                        (PREALLOCATED, bytes((2 << 20) + 9) + b"\x01"),
                                        (PREALLOCATED, bytes(30) + b"\x01" + bytes(5000))])
def test_zeros_that_are_no_unwritten_rest_are_reported(monkeypatch, mode, tail):
    """Zeros that end in a non-zero byte (or in a file not preallocated) are damage: one
    search reads them once, both to tell that and to look for a buffer after them."""
    data = preallocated_file(mode, tail)
    reads = reads_past(monkeypatch, 4096 + 1024)
    with EtlFile(io.BytesIO(data), name="zeros.etl") as etl:
        assert len(etl.buffer_index()) == 3
        assert read_once(reads, 4096 + 1024, len(data)), reads
        assert [(e.offset, e.message) for e in etl.errors] == [
            (4096 + 1024, "expected a WMI_BUFFER_HEADER (BufferSize 72..16777216, inside the file; "
                          "used size at most the session buffer size); found BufferSize 0: no "
                          "further buffer found")]
