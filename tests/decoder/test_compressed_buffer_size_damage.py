"""Regression: a compressed buffer's damaged BufferSize is read around, counted, and said once.

net.4.5.2.x64.etl with buffer 100's BufferSize made 0: the buffer was skipped whole and
uncounted, then "expected 360 buffers ... the file ends after 359: truncated" followed. Its
other header fields being right, it is now read up to the next buffer header (all 179,474
records); a header that is no buffer's (every field junk) is skipped as one unreadable buffer
and not said missing at the end. The search for the next buffer header starts past the
damaged header (bytes inside it could look like one) and takes only a header of the session's
LoggerId. Read as a file object and by its path alike; fmt -j 1 and -j 2 print the same.
"""
from __future__ import annotations

import io
import struct
import uuid

import pytest

import dec_etlgen as gen
from dec_bomb import compressed_file
from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt
from wpptrace.decoder.etlfile import EtlFile

BUFFER_100, NEXT = 0x123633, 0x1255AF      # buffer 100 of net.4.5.2.x64.etl, and 101
RECORDS, IN_BUFFER_100 = 179_474, 421


@pytest.fixture(scope="module")
def x64(corpus_file) -> bytes:
    return corpus_file("net.4.5.2.x64.etl").read_bytes()


def test_a_buffer_size_of_0_is_read_to_the_next_buffer_header(x64, scan_summary):
    data = bytearray(x64)
    struct.pack_into("<I", data, BUFFER_100, 0)
    assert scan_summary(bytes(data)) == (RECORDS, 0, [
        f"x.etl: offset {BUFFER_100:#x}: buffer 100: expected BufferSize 72..16777216, inside "
        f"the file, found 0x0; the next buffer header is at {NEXT:#x}: read as "
        f"{NEXT - BUFFER_100} bytes"])


def test_a_last_buffer_of_size_0_is_read_to_the_end_of_the_file(x64, scan_summary):
    with EtlFile(io.BytesIO(x64)) as etl:
        last = etl.buffer_index()[-1].file_offset
    data = bytearray(x64)
    struct.pack_into("<I", data, last, 0)
    records, skipped, errors = scan_summary(bytes(data))
    assert (records, skipped) == (RECORDS, 0)
    assert errors == [f"x.etl: offset {last:#x}: buffer 359: expected BufferSize 72..16777216, "
                      f"inside the file, found 0x0; no buffer header follows: read as "
                      f"{len(x64) - last} bytes"]


def test_a_junk_header_is_one_skipped_buffer_not_a_missing_one(x64, scan_summary):
    data = bytearray(x64)
    data[BUFFER_100:BUFFER_100 + 0x48] = b"\x12\x34\x56\x78" * 18
    assert scan_summary(bytes(data)) == (RECORDS - IN_BUFFER_100, 1, [
        f"x.etl: offset {BUFFER_100:#x}: expected a WMI_BUFFER_HEADER (BufferSize 72..16777216, "
        f"inside the file; used size at most the session buffer size); found BufferSize "
        f"2018915346: skipped {NEXT - BUFFER_100} bytes to the next buffer at {NEXT:#x}"])


# A synthetic compressed file (LoggerId 7 throughout): buffer 1 of plain literal-coded
# messages, whose bytes can be chosen to look like a buffer header where wanted; then buffer 2.
LOGGER = 7
#: bytes_le: byte 3 0x01 (a SequenceNumber's top byte), bytes 12..15 00 00 07 00 (processor 0,
#: LoggerId 7) where a header would have them
G = uuid.UUID("01234567-89ab-cdef-0123-456700000700")


def literal_stream(data: bytes) -> bytes:
    """Plain LZ77 of ``data``, all literals (each byte where the record has it, after a flag
    word every 32 bytes)."""
    out = bytearray()
    for at in range(0, len(data), 32):
        chunk = data[at:at + 32]
        out += struct.pack("<I", (1 << (32 - len(chunk))) - 1 if len(chunk) < 32 else 0) + chunk
    if len(data) % 32 == 0:
        out += struct.pack("<I", 0xFFFFFFFF)
    return bytes(out)


def compressed_buffer(records: list[bytes], sequence: int, reserved: bytes = bytes(16)) -> bytes:
    plain = gen.buffer(records, 4096, sequence, 0)
    used = struct.unpack_from("<I", plain, 4)[0]
    stream = literal_stream(plain[0x48:used])
    head = bytearray(plain[:0x38]) + reserved
    struct.pack_into("<I", head, 0, 0x48 + len(stream))        # BufferSize: as stored
    struct.pack_into("<H", head, 0x34, 0x20 | 0x40)            # BufferFlag: compressed
    return bytes(head) + stream


def _file(first: bytes) -> tuple[bytes, int]:
    second = compressed_buffer([gen.message(20, G, 500)], 2)
    data = compressed_file([first, second], session_buffer_size=4096, processors=2)
    return data, len(data) - len(second)


def test_no_buffer_header_is_taken_inside_the_damaged_one(scan_summary):
    """Buffer 1's Reserved field and first record make the bytes 0x38 into its header a
    plausible header of the session, reaching buffer 2: the search starts past the header."""
    first = gen.message(10, G, 3)               # State 3, FilledBytes 0 where 0x38 + a header has them
    probe = compressed_buffer([first, gen.message(11, G, 4)], 1)
    data, second_at = _file(probe)
    fake_size = second_at - (512 + 0x38)
    reserved = struct.pack("<IIQ", fake_size, 0x100, 0)      # the fake's BufferSize, SavedOffset
    buffer1 = compressed_buffer([first, gen.message(11, G, 4)], 1, reserved)
    data = bytearray(_file(buffer1)[0])
    struct.pack_into("<I", data, 512, 0)        # buffer 1's BufferSize
    records, skipped, errors = scan_summary(bytes(data))
    assert (records, skipped) == (4, 0), errors
    assert errors == [f"x.etl: offset 0x200: buffer 1: expected BufferSize 72..16777216, inside "
                      f"the file, found 0x0; the next buffer header is at {second_at:#x}: read "
                      f"as {second_at - 512} bytes"]


def test_a_buffer_header_of_another_logger_is_not_taken(scan_summary):
    """A plausible buffer header, but of LoggerId 9, inside buffer 1's first record: passed
    over, buffer 2 is found."""
    fake = bytearray(gen.buffer([], 0x48, 5, 0))
    struct.pack_into("<HH", fake, 0x28, 0, 9)
    buffer1 = compressed_buffer([gen.message(10, G, 3, bytes(fake)), gen.message(11, G, 4)], 1)
    data, second_at = _file(buffer1)
    data = bytearray(data)
    struct.pack_into("<I", data, 512, 0)
    records, skipped, errors = scan_summary(bytes(data))
    assert (records, skipped) == (4, 0), errors
    assert errors[0].endswith(f"the next buffer header is at {second_at:#x}: read as "
                              f"{second_at - 512} bytes")


def test_fmt_jobs_print_the_same(x64, tmp_path):
    data = bytearray(x64)
    struct.pack_into("<I", data, BUFFER_100, 0)
    data[NEXT + 0x100:NEXT + 0x148] = bytes(0x48)       # and damage inside buffer 101's stream
    path = tmp_path / "x64.etl"
    path.write_bytes(bytes(data))
    runs = {}
    for jobs in (1, 2):
        out, summary_file = tmp_path / f"out{jobs}", tmp_path / f"sum{jobs}"
        err = io.StringIO()
        code = run_fmt(FmtOptions(files=[str(path)], output=str(out), summary=str(summary_file),
                                  jobs=jobs, utc=True), out=io.StringIO(), err=err)
        runs[jobs] = (code, out.read_bytes(),
                      [line for line in summary_file.read_text().splitlines()
                       if not line.startswith("Elapsed")],
                      [line for line in err.getvalue().splitlines() if "warning" in line])
    assert runs[1] == runs[2]
    assert sum("found 0x0; the next buffer header" in line for line in runs[1][3]) == 1
    assert not any("truncated" in line for line in runs[1][3])
