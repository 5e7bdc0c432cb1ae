"""Regression: a compressed buffer's damaged SavedOffset no longer loses its records unsaid.

The expanded size came from SavedOffset alone: net.4.5.2.x64.etl with 0x49 written into
buffer 100's SavedOffset (FilledBytes still right) expanded that buffer to one byte and lost
its 421 records, and the summary said "skipped or damaged 0". The expanded size is now the
larger of SavedOffset and FilledBytes (they agree in every real buffer), so every record is
read and the disagreement said once; with both damaged the records past the expanded size
are lost, and counted as damaged. Read as a file object and by its path alike; fmt -j 1 and
-j 2 print the same.
"""
from __future__ import annotations

import io
import struct

import pytest

from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

BUFFER_100 = 0x123633                     # buffer 100 of net.4.5.2.x64.etl
SAVED_OFFSET, FILLED_BYTES = 0x04, 0x30
RECORDS, IN_BUFFER_100 = 179_474, 421


@pytest.fixture(scope="module")
def x64(corpus_file) -> bytes:
    return corpus_file("net.4.5.2.x64.etl").read_bytes()


def damaged(data: bytes, *fields: int) -> bytes:
    out = bytearray(data)
    for field in fields:
        struct.pack_into("<I", out, BUFFER_100 + field, 0x49)
    return bytes(out)


def test_a_damaged_saved_offset_expands_to_filled_bytes(x64, scan_summary):
    assert scan_summary(damaged(x64, SAVED_OFFSET)) == (RECORDS, 0, [
        f"x.etl: offset {BUFFER_100 + SAVED_OFFSET:#x}: buffer 100: expected SavedOffset and "
        f"FilledBytes to agree, found 0x49 and 0xff30; expanded to the larger, its events read "
        f"up to the end"])


def test_a_damaged_filled_bytes_expands_to_saved_offset(x64, scan_summary):
    records, skipped, errors = scan_summary(damaged(x64, FILLED_BYTES))
    assert (records, skipped, len(errors)) == (RECORDS, 0, 1)
    assert "found 0xff30 and 0x49" in errors[0]


def test_both_damaged_the_records_past_the_expanded_size_are_counted_lost(x64, scan_summary):
    assert scan_summary(damaged(x64, SAVED_OFFSET, FILLED_BYTES)) == (RECORDS - IN_BUFFER_100, 1, [
        f"x.etl: offset {BUFFER_100 + 0x48 + 5:#x}: buffer 100: expected an LZ77 stream "
        f"decoding to 1 bytes (SavedOffset 0x49 - 0x48); output larger than the expected size "
        f"after 1 bytes; records up to there are kept"])


def test_fmt_jobs_print_the_same(x64, tmp_path):
    path = tmp_path / "x64.etl"
    path.write_bytes(damaged(x64, SAVED_OFFSET))
    runs = {}
    for jobs in (1, 2):
        out, summary_file = tmp_path / f"out{jobs}", tmp_path / f"sum{jobs}"
        err = io.StringIO()
        code = run_fmt(FmtOptions(files=[str(path)], output=str(out), summary=str(summary_file),
                                  jobs=jobs, utc=True),
                       out=io.StringIO(), err=err)
        runs[jobs] = (code, out.read_bytes(),
                      [line for line in summary_file.read_text().splitlines()
                       if not line.startswith("Elapsed")],
                      [line for line in err.getvalue().splitlines() if "warning" in line])
    assert runs[1] == runs[2]
    assert sum("expected SavedOffset and FilledBytes to agree" in line
               for line in runs[1][3]) == 1
