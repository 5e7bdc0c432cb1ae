"""fmt -j 2 prints TMF problems in the order -j 1 prints them: by file, line and column.

Regression: TMF files are read when a message of theirs is first met, and their problems were
printed in that order. With -j 2 the first process meets its own window's messages first and
reads the other windows' files after: two damaged driver TMF files (one whose first line is a
#typev before the GUID header, one with a line that is not a TMF line) were reported the other
way round from -j 1 (in about half the runs: a process that installs another's program for a
message does not read its TMF file then).
"""
from __future__ import annotations

import os
import re
import shutil
import time

from fmthelp import run_fmt_capture

from wpptrace.decoder import decode_file

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


def test_a_tmf_problem_only_a_worker_meets_is_reported(tmp_path, corpus, monkeypatch):
    """Regression: a worker's TMF problems stayed in the worker. A TMF file is read by the
    process that first needs one of its messages; the others install the programs it made and
    never read the file. When that was a worker, a problem in the file (here a line that is no
    TMF line, after its entries) was printed by -j 1 and not by -j 2 (in 11 of 20 runs of the
    fuzz input that found it). Here this process waits for the worker's record of each of the
    file's messages before it claims one, so the worker always reads the file."""
    import golden_traces

    from wpptrace import tmf
    from wpptrace.decoder._hazmat import ProgramTable

    [path], [driver_tmf] = golden_traces.build("repeat", tmp_path, corpus)
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(driver_tmf, tmf_dir)
    # a provider all of whose messages in the trace have a TMF entry (an unknown number is
    # looked up by each process, which reads the file); each is in both windows
    known = tmf.load(str(tmf_dir))
    numbers: dict = {}
    for message in decode_file(str(path), tmf=str(tmf_dir)).messages:
        numbers.setdefault(message.guid, set()).add(message.number)
    guid = next(guid for guid, used in numbers.items()
                if all(known.lookup(guid, number) is not None for number in used))
    damaged = tmf_dir / f"{guid}.tmf"
    text = damaged.read_text(encoding="utf-8-sig")
    damaged.write_text(text + "this is not a TMF line\n", encoding="utf-8")
    line = text.count("\n") + 1
    here = os.getpid()
    claim = ProgramTable.claim

    def claim_after_the_worker(table, guid_le, number):
        if os.getpid() == here and guid_le == guid.bytes_le:
            deadline = time.monotonic() + 60
            while table.ready([(guid_le, number)])[0] < 0 and time.monotonic() < deadline:
                time.sleep(0.001)
        return claim(table, guid_le, number)

    monkeypatch.setattr(ProgramTable, "claim", claim_after_the_worker)
    monkeypatch.setattr(parallel, "window_shares", lambda jobs, data_bytes=0: [1.0 / jobs] * jobs)
    runs = []
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(tmf_dir)], output=str(out),
                                             summary=str(out) + ".sum", utc=True, jobs=jobs,
                                             cache=False)
        runs.append((code, out.read_bytes(), err))
    assert f"TMF entry skipped: {damaged}:{line}:1:" in runs[0][2]
    assert runs[1] == runs[0]


def test_worker_tmf_problems_count_as_often_as_one_process_meets_them():
    """Each process reads a TMF file, and parses an entry, at most once, as one process does:
    a problem both met is said once, one a worker met twice (a file listed twice) twice."""
    from wpptrace.decoder.wpp import WppDecoder
    from wpptrace.tmf.errors import TmfError
    from wpptrace.tmf.model import TmfSet

    def problem(line: int) -> TmfError:
        return TmfError("unexpected line", path="a.tmf", line=line, column=1, line_text="x")

    tmfset = TmfSet()
    tmfset.add_issue(problem(3))
    decoder = WppDecoder(tmfset)
    assert [issue.line for issue in decoder.tmf_issues()] == [3]
    decoder.note_tmf_issues([problem(3).fields(), problem(7).fields(), problem(7).fields()])
    decoder.note_tmf_issues([problem(3).fields(), problem(9).fields()])
    decoder.note_tmf_issues([])
    issues = decoder.tmf_issues()
    assert sorted(issue.line for issue in issues) == [3, 7, 7, 9]
    assert all(str(issue) == str(problem(issue.line)) for issue in issues)
    tmfset.add_issue(problem(9))                # met here too, after the workers' came
    assert sorted(issue.line for issue in decoder.tmf_issues()) == [3, 7, 7, 9]
