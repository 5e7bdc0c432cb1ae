"""Regression: a buffer whose WMI_BUFFER_HEADER is junk gives no records.

A file of junk whose bytes at 0x48 happened to look like a record decoded that record as an
event (and ``wpptrace fmt --all-records`` printed it): the walk read the records of whatever
sat where a buffer header should be. A buffer header whose BufferType is not below
ETW_BUFFER_TYPE_MAXIMUM is no buffer header: the buffer is skipped, reported in one line
(file, offset, what was expected) and counted as unreadable, in every reader. BufferFlag bits
unknown today are no such sign alone: a newer Windows may set one on every buffer.
"""
from __future__ import annotations

import io
import struct
import uuid

import dec_etlgen as gen
from wpptrace.decoder import ordered_records, parse_buffer
from wpptrace.decoder._hazmat import BUFFER_HEADER
from wpptrace.decoder.etlfile import EtlFile

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
#: a whole SYSTEM64 record (marker 0xC0020002, Size 0x50, HookId 0x50), then the 0xFF fill
RECORD = (struct.pack("<IHHIIqII", 0xC0020002, 0x50, 0x50, 7, 9, 1234, 0, 0) + bytes(48))
JUNK = b"JUNK" * 18 + RECORD + b"\xff" * 64
EXPECTED = ("offset 0x0: buffer 0: expected a WMI_BUFFER_HEADER (BufferType below 8, "
            "BufferFlag bits in 0x7f), found BufferType 0x4b4e and BufferFlag 0x554a; its "
            "records are skipped")


def test_a_junk_file_gives_no_record():
    with EtlFile(io.BytesIO(JUNK), name="junk.etl") as etl:
        assert list(ordered_records(etl)) == []
        assert f"junk.etl: {EXPECTED}" in [str(e) for e in etl.errors]
        assert etl.stats.records == 0 and etl.stats.unreadable_buffers == 1
        assert etl.stats.compressed_buffers == 0
        # the flag bit 0x40 of junk is not "compressed in an uncompressed file"
        assert not any("says compressed" in str(e) for e in etl.errors)
    with EtlFile(io.BytesIO(JUNK), name="junk.etl") as etl:
        assert etl.scan().records == 0


def test_parse_buffer_of_junk_gives_no_record():
    records, issues = parse_buffer(JUNK, 8, header_buffer=False)
    assert records == []
    assert [str(i) for i in issues] == [f"<buffer>: {EXPECTED.replace('buffer 0: ', '')}"]


def test_fmt_prints_and_counts_nothing_from_it(tmp_path):
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    path = tmp_path / "junk.etl"
    path.write_bytes(JUNK)
    out, err, summary = io.StringIO(), io.StringIO(), tmp_path / "sum"
    code = run_fmt(FmtOptions(files=[str(path)], summary=str(summary)), out=out, err=err)
    assert code == 1 and out.getvalue() == ""
    assert f"{path}: {EXPECTED}" in err.getvalue()
    assert "Total Events  Processed 0" in summary.read_text()


def test_a_junk_buffer_inside_a_trace_is_skipped_alone():
    size = 4096
    streams = [(p, seq, [gen.message(seq * 10 + i, G, 1000 * seq + i) for i in range(3)])
               for seq, p in ((1, 0), (2, 1), (3, 0))]
    clean = gen.etl_file(streams, buffer_size=size, processors=2)
    damaged = bytearray(clean)
    damaged[2 * size:2 * size + 0x48] = b"JUNK" * 18
    with EtlFile(io.BytesIO(bytes(damaged)), name="x.etl") as etl:
        numbers = [r.event_id for r in ordered_records(etl) if r.kind == "message"]
        assert numbers == [10, 11, 12, 30, 31, 32]
        assert etl.stats.unreadable_buffers == 1
        assert any(str(e).startswith(f"x.etl: offset {2 * size:#x}: buffer 2: expected a "
                                     f"WMI_BUFFER_HEADER") for e in etl.errors)


def _with_buffer_header(clean: bytes, size: int, k: int, **fields) -> bytes:
    damaged = bytearray(clean)
    for name, value in fields.items():
        struct.pack_into("<H", damaged, k * size + BUFFER_HEADER.offset(name), value)
    return bytes(damaged)


def test_the_first_type_past_the_known_ones_is_junk():
    size = 4096
    streams = [(0, 1, [gen.message(1, G, 1000)]), (0, 2, [gen.message(2, G, 2000)])]
    clean = gen.etl_file(streams, buffer_size=size, processors=1)
    with EtlFile(io.BytesIO(_with_buffer_header(clean, size, 2, BufferType=8)), name="x.etl") as etl:
        assert [r.event_id for r in ordered_records(etl) if r.kind == "message"] == [1]
        assert etl.stats.unreadable_buffers == 1


def test_a_flag_bit_unknown_today_loses_no_buffer():
    """A newer Windows may add a BufferFlag bit: its buffers are read as before."""
    size = 4096
    streams = [(0, 1, [gen.message(1, G, 1000)]), (0, 2, [gen.message(2, G, 2000)])]
    clean = gen.etl_file(streams, buffer_size=size, processors=1)
    with EtlFile(io.BytesIO(_with_buffer_header(clean, size, 2, BufferFlag=0x0100)), name="x.etl") as etl:
        assert [r.event_id for r in ordered_records(etl) if r.kind == "message"] == [1, 2]
        assert etl.stats.unreadable_buffers == 0
