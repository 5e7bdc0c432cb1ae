"""fmt -j 2 prints TMF problems in the order -j 1 prints them: by file, line and column.

Regression: TMF files are read when a message of theirs is first met, and their problems were
printed in that order. With -j 2 the first process meets its own window's messages first and
reads the other windows' files after: two damaged driver TMF files (one whose first line is a
#typev before the GUID header, one with a line that is not a TMF line) were reported the other
way round from -j 1 (in about half the runs: a process that installs another's program for a
message does not read its TMF file then).
"""
from __future__ import annotations

import re
import shutil

from fmthelp import run_fmt_capture

from wpptrace.decoder import parallel


def test_tmf_problems_in_file_order(tmp_path, driver, monkeypatch):
    path, driver_tmf = driver
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(driver_tmf, tmf_dir)
    first = tmf_dir / "01e9b841-7d67-315a-7b92-23b2033356de.tmf"
    first.write_text('#typev x_c1 10 "%0%10!s!" // FUNC=f\n' + first.read_text(encoding="utf-8-sig"),
                     encoding="utf-8")
    second = tmf_dir / "9a163380-087d-33ab-513f-86fc4290cb0e.tmf"
    lines = second.read_text(encoding="utf-8-sig").split("\n")
    assert lines[340] == "{"
    lines[340] = "this is not a TMF line"
    second.write_text("\n".join(lines), encoding="utf-8")
    # two windows, no tail: which process decodes each does not depend on timing
    monkeypatch.setattr(parallel, "window_shares", lambda jobs, data_bytes=0: [1.0 / jobs] * jobs)
    # which process reads a TMF file first also depends on which one compiles its messages
    # first (the other installs the program): -j 2 is run a few times
    runs = {}
    for jobs in (1, 2, 2, 2, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(tmf_dir)], output=str(out),
                                             summary=str(out) + ".sum", utc=True, jobs=jobs,
                                             cache=False)
        run = (code, out.read_bytes(), err)
        assert runs.setdefault(1, run) == run
    places = re.findall(r"TMF entry skipped: .*/([0-9a-f-]+)\.tmf:(\d+):(\d+):", runs[1][2])
    assert {guid for guid, _line, _col in places} == {first.stem, second.stem}
    assert places == sorted(places, key=lambda p: (p[0], int(p[1]), int(p[2])))
