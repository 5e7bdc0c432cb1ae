"""fmt says how many of a file's problems it did not list.

Regression: fmt printed a damaged file's first 20 problems and nothing about the others (a
file with 30 damaged buffers read as if it had 20), while TMF problems past 20 were counted.
"""
from __future__ import annotations

import uuid

import etlgen
from fmthelp import run_fmt_capture

GUID = uuid.UUID("5d1e0f00-2b3c-4d5e-8f60-718293a4b5c6")
DAMAGED = 30                                     # data buffers whose first record marker is broken


def _warnings_of_a_damaged_file(tmp_path) -> tuple[str, list[str]]:
    """A file with DAMAGED damaged buffers formatted with -j 1 and -j 2 (the same output,
    warnings and exit code, which is 1): its path and the warnings."""
    etlgen.write_tmf(tmp_path, GUID, "v=%10!d!", [("v", "ItemLong")])
    path = tmp_path / "damaged.etl"
    etlgen.write_messages(path, [(GUID, 10, i.to_bytes(4, "little"), 1, 2, 0, etlgen.T0 + i * 10,
                                  etlgen.FLAGS_CORPUS) for i in range(700)], buffer_size=1024)
    data = bytearray(path.read_bytes())
    for b in range(1, DAMAGED + 1):
        data[b * 1024 + 0x48 + 2:b * 1024 + 0x48 + 4] = b"\xee\xee"
    path.write_bytes(bytes(data))
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(tmp_path)], output=str(out),
                                             jobs=jobs, cache=False)
        runs[jobs] = (code, out.read_bytes(), err)
    assert runs[2] == runs[1]
    code, _out, err = runs[1]
    assert code == 1
    return str(path), err.splitlines()


def test_problems_past_twenty_are_counted(tmp_path):
    path, lines = _warnings_of_a_damaged_file(tmp_path)
    assert len(lines) == 21
    assert all("expected a record marker" in line for line in lines[:20])
    assert lines[20] == f"wpptrace fmt: warning: {path}: {DAMAGED - 20} more problems not listed"


def test_problems_past_the_kept_ones_are_counted_once_with_jobs(tmp_path, monkeypatch):
    """A source keeps MAX_ISSUES problems and only counts the rest; with -j 2 the windows'
    problems and counts are added up so that fmt says what -j 1 says: every problem listed
    or counted once."""
    from wpptrace.decoder import buffers

    monkeypatch.setattr(buffers, "MAX_ISSUES", 12)
    path, lines = _warnings_of_a_damaged_file(tmp_path)
    assert len(lines) == 13
    assert all("expected a record marker" in line for line in lines[:12])
    assert lines[12] == f"wpptrace fmt: warning: {path}: {DAMAGED - 12} more problems not listed"
