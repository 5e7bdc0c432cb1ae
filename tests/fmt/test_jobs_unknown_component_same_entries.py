"""An Unknown message's component reads the same TMF entries whichever messages came first.

Regression: the component an Unknown line shows is its GUID's lowest-numbered message's. A
process that had met a known message of the GUID took the lowest it knew and parsed nothing
more; one whose first message of the GUID was Unknown parsed every entry of the GUID. So
``fmt -j 2``, whose worker meets its window's messages first, printed TMF problems ``-j 1``
never printed (found by tests/fmt/fuzz_fmt_damage.py --seed 2 --kinds jobs,tmf: input 288,
the golden ``repeat`` trace with the dshidmini TMF file 10ab5e95-... damaged, its line 16,
the #typev line of message 26, repeated into one line of 294,000 characters). Now the
entries are parsed in number order up to the first that gives a message, in every process.

The TMF bytes here are that real file (tests/corpus, dshidmini.pdb's tracepdb output) with
two entries broken the way the fuzzer broke it: the #typev lines of message 10 (the GUID's
lowest number) and message 26 each repeated 600 times on one line, too long to be a TMF line,
which only parsing the entry finds. The trace is written here: message 25 (known, no
arguments) in its first half, message 99 (no TMF entry) in its second half.
"""
from __future__ import annotations

import re
import uuid

import etlgen
from fmthelp import run_fmt_capture

from wpptrace.decoder import parallel
from wpptrace.tmf import load

GUID = uuid.UUID("10ab5e95-3a19-3bea-8e73-829a95a5dd10")
REPEATS = 600             # 600 * ~130 characters: past grammar.MAX_LINE (65,536)


def _damaged_tmf(corpus, tmp_path):
    source = corpus / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf" / f"{GUID}.tmf"
    lines = source.read_text(encoding="utf-8-sig").split("\n")
    # message 26: "#typev Ds3_c327 26 ..." on line 16; message 10: "#typev Ds3_c50 10 ..." on 82
    for typev, number in ((16, 26), (82, 10)):
        assert re.match(rf"#typev \w+ {number} ", lines[typev - 1])
        lines[typev - 1] *= REPEATS
    folder = tmp_path / "tmf"
    folder.mkdir()
    (folder / source.name).write_text("\n".join(lines), encoding="utf-8")
    return folder


def _places(issues) -> list[int]:
    return sorted({issue.line for issue in issues})


def test_the_entries_parsed_do_not_depend_on_what_was_looked_up(corpus, tmp_path):
    folder = _damaged_tmf(corpus, tmp_path)
    seen = {}
    for first in ((), (25,), (11,), (25, 11)):
        tmfset = load(str(folder))
        for number in first:
            assert tmfset.lookup(GUID, number) is not None
        component = tmfset.first_component(GUID)
        seen[first] = (component, tuple(_places(tmfset.issues)))
    # message 10's entry is parsed (and reported); 11 gives the component; 26's is not read
    assert set(seen.values()) == {("sys", (82,))}, seen


def test_jobs_report_the_tmf_problems_one_process_reports(corpus, tmp_path, monkeypatch):
    folder = _damaged_tmf(corpus, tmp_path)
    path = tmp_path / "t.etl"
    rows = [(GUID, 25 if k < 1500 else 99, b"", 0x10, 0x20, k % 2, etlgen.T0 + 1000 * k)
            for k in range(3000)]
    etlgen.write_messages(path, rows, nprocs=2, buffer_size=8192)
    half = etlgen.T0 + 1000 * 1500
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: [None, half, None])
    runs = {}
    for jobs in (1, 2):
        out = tmp_path / f"out{jobs}.txt"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(folder)], output=str(out),
                                             utc=True, jobs=jobs, cache=False)
        runs[jobs] = (code, out.read_bytes(), err)
    assert runs[2] == runs[1]
    code, text, err = runs[1]
    assert code == 0 and text.count(b"sys( 99): GUID=") == 1500
    assert re.findall(r"\.tmf:(\d+):", err) == ["82"]
