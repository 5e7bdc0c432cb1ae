"""Regression: damage in a buffer header that the reader works around is reported and counted.

A data buffer whose BufferSize field was 0 or 72 later in a file decoded completely (buffers
of an uncompressed file sit at multiples of the session buffer size whatever their header
says), and ``wpptrace dump`` said "0 errors" and exited 0. The other header facts the reader
works around are reported the same way: SavedOffset and FilledBytes disagreeing, a processor
number not below NumberOfProcessors, a SequenceNumber repeated on one processor, and more
buffers than BuffersWritten in a file whose session stopped. Every real Windows file of the
corpus reads without any of them.
"""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import uuid

import pytest

import dec_etlgen as gen
from wpptrace.decoder.etlfile import EtlFile

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
SIZE = 4096
STREAMS = [(p, seq, [gen.message(seq * 10 + i, G, 1000 * seq + i) for i in range(3)])
           for seq, p in ((1, 0), (2, 1), (3, 0))]
CLEAN = gen.etl_file(STREAMS, buffer_size=SIZE, processors=2)


def damaged(offset: int, fmt: str, value: int, data: bytes = CLEAN) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, value)
    return bytes(out)


def read(data: bytes) -> tuple[int, list[str]]:
    with EtlFile(io.BytesIO(data), name="x.etl") as etl:
        stats = etl.scan()
        return stats.records, [str(e) for e in etl.errors]


def test_the_clean_file_has_no_issue():
    assert read(CLEAN) == (10, [])


@pytest.mark.parametrize("value", [0, 72, SIZE // 2, 2 * SIZE])
def test_a_wrong_buffer_size_field_is_reported(value):
    records, errors = read(damaged(2 * SIZE, "<I", value))
    assert records == 10                                    # everything still decodes
    assert errors == [f"x.etl: offset {2 * SIZE:#x}: buffer 2: expected BufferSize {SIZE:#x} "
                      f"(the session buffer size), found {value:#x}; read as {SIZE:#x} bytes"]


def test_dump_counts_it_and_exits_1(tmp_path):
    path = tmp_path / "x.etl"
    path.write_bytes(damaged(3 * SIZE, "<I", 0))
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "dump", "--summary-only", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.endswith("skipped or damaged 0; 1 errors\n")
    assert f"buffer 3: expected BufferSize {SIZE:#x} (the session buffer size), found 0x0" in proc.stderr


def test_saved_offset_and_filled_bytes_disagreeing_is_reported():
    used = struct.unpack_from("<I", CLEAN, SIZE + 0x30)[0]
    records, errors = read(damaged(SIZE + 4, "<I", used - 8))    # SavedOffset
    assert records == 10
    assert errors == [f"x.etl: offset {SIZE + 4:#x}: buffer 1: expected SavedOffset and "
                      f"FilledBytes to agree, found {used - 8:#x} and {used:#x}; events read up "
                      f"to {used:#x}"]


@pytest.mark.parametrize("field", [4, 0x30])                 # SavedOffset, FilledBytes
def test_events_are_said_read_up_to_an_offset_in_the_buffer(field):
    """A junk SavedOffset or FilledBytes past the buffer's end: the events are read up to the
    buffer's end, and that is the offset named (it named the junk value, in no buffer)."""
    records, errors = read(damaged(SIZE + field, "<I", 0x100000))
    assert records == 10
    other = struct.unpack_from("<I", CLEAN, SIZE + (0x30 if field == 4 else 4))[0]
    found = (0x100000, other) if field == 4 else (other, 0x100000)
    assert errors == [f"x.etl: offset {SIZE + 4:#x}: buffer 1: expected SavedOffset and "
                      f"FilledBytes to agree, found {found[0]:#x} and {found[1]:#x}; events read "
                      f"up to the buffer's end, {SIZE:#x}",
                      f"x.etl: offset {SIZE + 0x30:#x}: buffer 1: expected FilledBytes/SavedOffset "
                      f"at most the buffer size {SIZE:#x}, found 0x100000"]


def test_a_processor_out_of_range_is_reported():
    records, errors = read(damaged(2 * SIZE + 0x28, "<H", 7))
    assert records == 10
    assert errors == [f"x.etl: offset {2 * SIZE + 0x28:#x}: buffer 2: expected a processor "
                      f"below NumberOfProcessors 2, found 7; read as its own stream"]


def test_a_repeated_sequence_number_is_reported():
    records, errors = read(damaged(3 * SIZE + 0x18, "<q", 1))     # processor 0 again seq 1
    assert records == 10
    assert errors == [f"x.etl: offset {3 * SIZE + 0x18:#x}: buffer 3: expected a SequenceNumber "
                      f"not used before on processor 0, found 1 again (buffer 1); both are read"]


def test_more_buffers_than_buffers_written_in_a_stopped_file_are_reported():
    bw = 0x48 + 0x20 + 0x24                                       # TRACE_LOGFILE_HEADER.BuffersWritten
    records, errors = read(damaged(bw, "<I", 3))
    assert records == 10
    assert errors == [f"x.etl: offset {len(CLEAN):#x}: expected 3 buffers (TRACE_LOGFILE_HEADER."
                      f"BuffersWritten), found 4; the extra ones are read too"]


def test_a_zeroed_header_before_records_is_reported_and_counted():
    data = bytearray(CLEAN)
    data[2 * SIZE:2 * SIZE + 0x48] = bytes(0x48)
    with EtlFile(io.BytesIO(bytes(data)), name="x.etl") as etl:
        stats = etl.scan()
        assert (stats.records, stats.skipped, stats.empty_buffers) == (7, 1, 0)
        assert [str(e) for e in etl.errors] == [
            f"x.etl: offset {2 * SIZE:#x}: expected a WMI_BUFFER_HEADER before the records at "
            f"{2 * SIZE + 0x48:#x}, found zeros; the buffer is skipped"]
    data[2 * SIZE:3 * SIZE] = bytes(SIZE)               # a never-written slot: quiet
    with EtlFile(io.BytesIO(bytes(data)), name="x.etl") as etl:
        assert etl.scan().empty_buffers == 1 and etl.errors == []


def test_real_files_have_none_of_them(corpus):
    for path in sorted(corpus.rglob("*.etl")):
        with EtlFile(path) as etl:
            etl.scan()
            assert etl.errors == [], path
