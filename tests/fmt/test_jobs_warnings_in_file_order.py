"""fmt -j 2 prints a damaged file's warnings in the order -j 1 prints them: file order.

Regression: the warnings came in the order buffers were read. One process reads the buffers
of all streams as the merge needs them; with -j 2 each window's buffers are read by its own
process and their problems added in window order. Two record markers damaged in the golden
driver trace (buffer 6 of one stream, buffer 8 of another, which the whole-file merge reads
first) gave the two warnings the other way round under -j 2.
"""
from __future__ import annotations

import re

from fmthelp import run_fmt_capture


def test_warnings_of_two_streams_in_file_order(tmp_path, driver):
    path, tmf_dir = driver
    data = bytearray(path.read_bytes())
    data[0x1B602:0x1B604] = b"\x6d\xd2"      # a record marker in buffer 6
    data[0x2095A:0x2095C] = b"\x1d\x05"      # and one in buffer 8
    damaged = tmp_path / "damaged.etl"
    damaged.write_bytes(bytes(data))
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(damaged, tmf_dirs=[tmf_dir], output=str(out), utc=True,
                                             jobs=jobs, cache=False)
        runs[jobs] = (code, out.read_bytes(), err)
    assert runs[2] == runs[1]
    code, _out, err = runs[1]
    offsets = [int(m, 16) for m in re.findall(r"offset (0x[0-9a-f]+): buffer", err)]
    assert code == 1 and 0x1B600 in offsets and 0x20958 in offsets
    assert offsets == sorted(offsets)
