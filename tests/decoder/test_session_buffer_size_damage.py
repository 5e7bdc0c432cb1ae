"""Regression: a damaged session buffer size never makes the reader step over buffers unsaid.

TRACE_LOGFILE_HEADER.BufferSize (offset 0x68) damaged to a whole multiple of the real buffer
size made an uncompressed file be read at that stride: every buffer in between was skipped,
and the summary said "skipped or damaged 0" (60,000 messages gave 30,001 events). The
header's size and buffer 0's disagreeing, the buffers at each stride now vote; the stride
chosen leaves no buffer unsaid (one it steps over is counted as skipped), and the
disagreement is said once, at the field's offset. Both damaged alike, the buffers after
buffer 0 saying the real size outvote them (80 of 159 buffers were read, and the one buffer 0
hid was not even counted). Both sizes out of range: the next buffer
header found gives the stride (it was 65,536 whatever the file, and 143 of 3,001 records
were read). A header size below the buffers' (read packed in an uncompressed file, "0
errors") is reported the same way. Each file is read as a file object and by its path (the
buffers then located by the C index, as fmt reads them): both say the same (they disagreed on
buffers inside buffer 0, which only the first looked for).
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
STREAMS = [(seq % 2, seq, [gen.message(seq * 10 + i, G, 1000 * seq + i) for i in range(3)])
           for seq in range(1, 9)]
CLEAN = gen.etl_file(STREAMS, buffer_size=SIZE, processors=2)
RECORDS = 1 + 3 * len(STREAMS)          # the header record and the messages
HEADER_BUFFER_SIZE = 0x68               # TRACE_LOGFILE_HEADER.BufferSize in the file


def damaged(*fields: tuple[int, int], data: bytes = CLEAN) -> bytes:
    out = bytearray(data)
    for offset, value in fields:
        struct.pack_into("<I", out, offset, value)
    return bytes(out)


def test_the_clean_file_reads_whole(scan_summary):
    assert scan_summary(CLEAN) == (RECORDS, 0, [])


@pytest.mark.parametrize("value", [2 * SIZE, 3 * SIZE, SIZE // 2])
def test_a_header_buffer_size_the_buffers_outvote_is_said_once(value, scan_summary):
    assert scan_summary(damaged((HEADER_BUFFER_SIZE, value))) == (RECORDS, 0, [
        f"x.etl: offset {HEADER_BUFFER_SIZE:#x}: expected TRACE_LOGFILE_HEADER.BufferSize "
        f"{SIZE:#x} (buffer 0's BufferSize, and the buffers' found at that stride), found "
        f"{value:#x}; reading {SIZE:#x}-byte buffers"])


def test_buffer_0s_damaged_size_is_outvoted_by_the_header_and_the_buffers(scan_summary):
    records, skipped, errors = scan_summary(damaged((0, 2 * SIZE)))
    assert (records, skipped) == (RECORDS, 0)
    assert errors == [f"x.etl: offset 0x0: buffer 0: expected BufferSize {SIZE:#x} (the session "
                      f"buffer size), found {2 * SIZE:#x}; reading fixed-size buffers"]


def both_sizes_said(value: int) -> list[str]:
    return [f"x.etl: offset {HEADER_BUFFER_SIZE:#x}: expected TRACE_LOGFILE_HEADER.BufferSize "
            f"{SIZE:#x} (the buffers' found at that stride), found {value:#x}; reading "
            f"{SIZE:#x}-byte buffers",
            f"x.etl: offset 0x0: buffer 0: expected BufferSize {SIZE:#x} (the buffers' found at "
            f"that stride), found {value:#x}; reading {SIZE:#x}-byte buffers"]


@pytest.mark.parametrize("value", [2 * SIZE, 3 * SIZE])
def test_both_sizes_damaged_alike_are_outvoted_by_the_buffers(value, scan_summary):
    """Both sizes damaged to the same multiple of the real one: the buffers after buffer 0
    say the real size, so every buffer is read (half or more of them, and those inside
    buffer 0, were stepped over), and each damaged field is said once."""
    assert scan_summary(damaged((HEADER_BUFFER_SIZE, value), (0, value))) == (
        RECORDS, 0, both_sizes_said(value))


def test_a_buffer_at_the_wrong_stride_saying_it_too_does_not_decide(scan_summary):
    """The buffer where the damaged stride puts buffer 1 says that size too: the next buffer
    saying another size is the one whose stride is tried, and wins."""
    data = damaged((HEADER_BUFFER_SIZE, 2 * SIZE), (0, 2 * SIZE), (2 * SIZE, 2 * SIZE))
    records, skipped, errors = scan_summary(data)
    assert (records, skipped) == (RECORDS, 0)
    assert errors == both_sizes_said(2 * SIZE) + [
        f"x.etl: offset {2 * SIZE:#x}: buffer 2: expected BufferSize {SIZE:#x} (the session "
        f"buffer size), found {2 * SIZE:#x}; read as {SIZE:#x} bytes"]


def test_buffers_inside_one_the_stride_reads_are_counted_and_said(scan_summary):
    """A buffer of the file holding two of half the session size (its header says the
    smaller size): the one the stride steps over is counted as skipped and said with its
    bytes."""
    half = [gen.buffer([gen.message(900 + k, G, 9000 + k)], SIZE // 2, 100 + k, 0)
            for k in range(2)]
    at = 3 * SIZE
    data = CLEAN[:at] + half[0] + half[1] + CLEAN[at + SIZE:]
    records, skipped, errors = scan_summary(data)
    assert (records, skipped) == (RECORDS - 3 + 1, 1)
    assert errors == [
        f"x.etl: offset {at:#x}: buffer 3: expected BufferSize {SIZE:#x} (the session buffer "
        f"size), found {SIZE // 2:#x}; read as {SIZE:#x} bytes: 1 buffer of {SIZE // 2:#x} bytes "
        f"inside it, {SIZE // 2} bytes from {at + SIZE // 2:#x}, are skipped"]


def test_buffer_0_smaller_than_the_stride_is_said_once_by_either_path(scan_summary):
    """Buffer 0 saying half the session size, a buffer of that size after it: buffer 0's
    size is the one said (choosing the layout); neither the file object's path nor the
    C index's looks inside buffer 0 for buffers (they disagreed: only the first did)."""
    half = gen.buffer([gen.message(900, G, 9000)], SIZE // 2, 100, 0)
    data = damaged((0, SIZE // 2))
    assert scan_summary(data[:SIZE // 2] + half + data[SIZE:]) == (RECORDS, 0, [
        f"x.etl: offset 0x0: buffer 0: expected BufferSize {SIZE:#x} (the session buffer "
        f"size), found {SIZE // 2:#x}; reading fixed-size buffers"])


@pytest.mark.parametrize("value", [0x48, 0xFFFFFFFF])
def test_both_sizes_out_of_range_take_the_next_buffer_headers_stride(value, scan_summary):
    records, skipped, errors = scan_summary(damaged((HEADER_BUFFER_SIZE, value), (0, value)))
    assert (records, skipped) == (RECORDS, 0)
    assert errors == [
        f"x.etl: offset {HEADER_BUFFER_SIZE:#x}: expected TRACE_LOGFILE_HEADER.BufferSize above "
        f"0x48 and at most 0x1000000, found {value:#x}",
        f"x.etl: offset 0x0: buffer 0: expected BufferSize above 0x48 and at most 0x1000000, "
        f"found {value:#x}; the next buffer header, at {SIZE:#x}, says BufferSize {SIZE:#x}: "
        f"reading {SIZE:#x}-byte buffers"]


def test_dump_reads_every_buffer_past_both_sizes_damaged_alike(tmp_path):
    path = tmp_path / "x.etl"
    path.write_bytes(damaged((HEADER_BUFFER_SIZE, 2 * SIZE), (0, 2 * SIZE)))
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "dump", "--summary-only",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stdout.startswith(f"-- {RECORDS} records ")
    assert proc.stdout.endswith("; skipped or damaged 0; 2 errors\n")


def test_dump_reads_every_buffer_past_a_header_size_of_twice_theirs(tmp_path):
    path = tmp_path / "x.etl"
    path.write_bytes(damaged((HEADER_BUFFER_SIZE, 2 * SIZE)))
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "dump", "--summary-only",
                           str(path)], capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith(f"-- {RECORDS} records ")
    assert proc.stdout.endswith("; skipped or damaged 0; 1 errors\n")
    assert proc.returncode == 1


def test_a_compressed_file_without_its_mode_bit_is_read_packed_and_said(corpus_file, scan_summary):
    """EVENT_TRACE_COMPRESSED_MODE cleared in a compressed file: its buffers are still read
    back to back, and the mode field is the one reported."""
    data = corpus_file("smallEtlFile.etl").read_bytes()
    with EtlFile(io.BytesIO(data), name="x.etl") as etl:
        records, mode = etl.scan().records, etl.header.log_file_mode
    mode_at = 0x68 + 0x20                       # TRACE_LOGFILE_HEADER.LogFileMode
    assert struct.unpack_from("<I", data, mode_at)[0] == mode and mode & 0x4000000
    assert scan_summary(damaged((mode_at, mode & ~0x4000000), data=data)) == (records, 0, [
        f"x.etl: offset {mode_at:#x}: expected EVENT_TRACE_COMPRESSED_MODE in TRACE_LOGFILE_HEADER."
        f"LogFileMode {mode & ~0x4000000:#x}: the buffer at 0x200 is compressed; the buffers are "
        f"read back to back, each by its own BufferSize"])


def test_uncompressed_buffers_of_their_own_sizes_are_read_packed_and_said(scan_summary):
    """Buffers of different sizes in an uncompressed file (no stride fits them): each is read
    by its own BufferSize, and the header's BufferSize, which fits none, is reported."""
    first = gen.logfile_header_record(SIZE // 2, 3, 1)
    records = [[gen.message(10 * k + i, G, 1000 * k + i) for i in range(3)] for k in (1, 2)]
    data = (gen.buffer([first], SIZE, 0, 0, buffer_type=4, flag=0x21)
            + gen.buffer(records[0], SIZE // 2, 1, 0) + gen.buffer(records[1], SIZE, 2, 0))
    assert scan_summary(data) == (7, 0, [
        f"x.etl: offset {HEADER_BUFFER_SIZE:#x}: expected TRACE_LOGFILE_HEADER.BufferSize "
        f"{SIZE:#x} (buffer 0's BufferSize), found {SIZE // 2:#x}; the buffers are read back to "
        f"back, each by its own BufferSize"])
