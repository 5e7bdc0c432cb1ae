"""A TMF file's problems are kept up to MAX_ISSUES_PER_FILE and counted past it: a hostile
file of a million bad lines (2 MB) held a TmfError with its excerpt per line (600 MB, 26 s to
read); now what is past the cap is counted without being made, and every reader of the set
(``tmf show``, ``fmt`` with one process or several) reports the count."""
from __future__ import annotations

import io
import pathlib
import uuid

import pytest

import wpptrace.tmf as tmf
from wpptrace import cli
from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt
from wpptrace.tmf import model

#: a mutated copy of a corpus TMF: twelve garbled lines between its two entries (PROVENANCE.md)
GARBLED = pathlib.Path(__file__).resolve().parent.parent / "data" / "tmf_damaged" / "garbled-lines.tmf"
UNEXPECTED = "unexpected line (expected comment, GUID header, #typev line or #enumv line)"


@pytest.fixture
def cap_of_ten(monkeypatch):
    monkeypatch.setattr(model, "MAX_ISSUES_PER_FILE", 10)


def test_problems_past_the_cap_are_counted_and_the_entries_after_them_still_load(cap_of_ten):
    tmfset = tmf.load(GARBLED, use_environment=False)
    assert sorted(m.number for m in tmfset.messages()) == [10, 11]
    assert [issue.line for issue in tmfset.issues] == list(range(9, 19))
    assert str(tmfset.issues[0]).splitlines()[0] == f"{GARBLED}:9:1: {UNEXPECTED}"
    assert tmfset.issues_dropped == {str(GARBLED): 2}


def test_the_cap_is_per_file_and_a_merged_set_keeps_it(cap_of_ten, tmp_path):
    other = tmp_path / "other.tmf"
    other.write_bytes(GARBLED.read_bytes())
    tmfset = tmf.load(GARBLED, other, use_environment=False)
    assert len(tmfset.issues) == 20
    assert tmfset.issues_dropped == {str(GARBLED): 2, str(other): 2}
    merged = tmf.load(GARBLED, use_environment=False)
    merged.update(tmf.load(GARBLED, use_environment=False))      # the same file twice: 24 problems
    assert len(merged.issues) == 10 and merged.issues_dropped == {str(GARBLED): 14}


def test_the_real_cap(tmp_path):
    path = tmp_path / "many.tmf"
    path.write_bytes(GARBLED.read_bytes() + b"\nx" * (model.MAX_ISSUES_PER_FILE + 3))
    tmfset = tmf.load(path, use_environment=False)
    assert len(tmfset.issues) == model.MAX_ISSUES_PER_FILE
    assert tmfset.issues_dropped == {str(path): 12 + 3}
    assert sorted(m.number for m in tmfset.messages()) == [10, 11]


def test_tmf_show_lists_what_it_kept_and_counts_the_rest(cap_of_ten, capsys):
    assert cli.main(["tmf", "show", str(GARBLED), "--no-env"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "2 messages, 1 GUIDs, 12 errors"
    lines = err.splitlines()
    assert lines[0] == f"{GARBLED}:9:1: {UNEXPECTED}"
    assert lines[-1] == f"{GARBLED}: 2 more problems not listed"    # errors: no warning label
    assert len(lines) == 10 * 3 + 1                 # each kept problem: its line, excerpt, caret


def test_tmf_show_counts_each_files_rest_right_after_its_problems(cap_of_ten, capsys, tmp_path):
    other = tmp_path / "other.tmf"
    other.write_bytes(GARBLED.read_bytes())
    assert cli.main(["tmf", "show", str(GARBLED), str(other), "--no-env"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines()[-1] == "2 messages, 1 GUIDs, 24 errors"
    lines = err.splitlines()
    assert len(lines) == 2 * (10 * 3 + 1)
    first, second = lines[:31], lines[31:]
    for path, part in ((GARBLED, first), (other, second)):
        assert part[0::3][:10] == [f"{path}:{line}:1: {UNEXPECTED}" for line in range(9, 19)]
        assert part[-1] == f"{path}: 2 more problems not listed"


@pytest.mark.parametrize("jobs", [1, 2])
def test_fmt_counts_the_problems_it_did_not_keep(cap_of_ten, corpus_file, tmp_path, jobs):
    out, err = tmp_path / "out.txt", io.StringIO()
    code = run_fmt(FmtOptions(files=[str(corpus_file("wppemitter-sample.etl"))], tmf_files=[str(GARBLED)],
                              output=str(out), jobs=jobs, cache=False), out=io.StringIO(), err=err)
    assert code == 0
    lines = err.getvalue().splitlines()
    assert lines[0] == f"wpptrace fmt: warning: TMF entry skipped: {GARBLED}:9:1: {UNEXPECTED}"
    assert lines[-1] == "wpptrace fmt: warning: 2 more TMF entries skipped"
    assert len(lines) == 10 * 3 + 1
    text = out.read_text().splitlines()
    assert len(text) == 1 + 45                     # the header and every message, formatted
    assert sum("WppEmitter work item id=" in line for line in text) == 30
    assert sum("WppEmitter detail seq=" in line for line in text) == 15


def test_collect_counts_the_problems_it_did_not_keep_and_lists_them_in_file_order(
        cap_of_ten, tmp_path, capsys):
    """collect reads its TMF files as fmt does and says their problems as fmt says them, by
    one function: it did not count the problems a file had past the cap, and listed two files'
    problems in the order met, not in file order as fmt does."""
    import argparse

    from wpptrace.remote import cli_collect

    first, other = tmp_path / "b.tmf", tmp_path / "a.tmf"   # given first, sorts second
    first.write_bytes(GARBLED.read_bytes())               # (both beside each other: the order
    other.write_bytes(GARBLED.read_bytes())               # cannot depend on where tests are)
    tmfset = cli_collect._load_tmfs(argparse.Namespace(tmf=[str(first), str(other)], tmf_path=[]))
    assert tmfset is not None
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("wpptrace")]
    assert lines[0] == f"wpptrace collect: warning: TMF entry skipped: {other}:9:1: {UNEXPECTED}"
    assert lines[10] == f"wpptrace collect: warning: TMF entry skipped: {first}:9:1: {UNEXPECTED}"
    assert lines[-1] == "wpptrace collect: warning: 4 more TMF entries skipped"
    assert len(lines) == 20 + 1


def _directory_of_bad_entries(tmp_path) -> pathlib.Path:
    """A TMF directory whose ``<GUID>.tmf`` (GARBLED's) has four bad argument lines in each of
    its two entries (parsed when looked up) and eight garbled lines between them (met by every
    reader of the file): 16 problems."""
    lines = []
    for line in GARBLED.read_text().splitlines(True):
        if line.startswith("garbled line") and int(line.split()[-1]) > 8:
            continue
        lines.append(line)
        if line.startswith("i, ItemLong -- 10"):
            lines += [f"bad argument {k}\n" for k in range(1, 5)]
    directory = tmp_path / "tmfs"
    directory.mkdir()
    (directory / "9b93a332-c452-3e71-64f7-55130c7de2e4.tmf").write_text("".join(lines))
    return directory


def test_the_problems_kept_are_the_first_in_the_file_whatever_order_entries_are_looked_up(
        cap_of_ten, tmp_path):
    directory = _directory_of_bad_entries(tmp_path)
    guid = "9b93a332-c452-3e71-64f7-55130c7de2e4"
    seen = []
    for numbers in ([10, 11], [11, 10]):
        tmfset = tmf.load(directory, use_environment=False)
        for number in numbers:
            tmfset.lookup(uuid.UUID(guid), number)
        seen.append(([issue.fields() for issue in sorted(tmfset.issues, key=lambda i: i.line)],
                     tmfset.issues_dropped))
    assert seen[0] == seen[1]
    issues, dropped = seen[0]
    # entry 11's four (lines 7-10) and the first six garbled lines (13-18); entry 10 is after them
    assert [fields[2] for fields in issues] == [7, 8, 9, 10, *range(13, 19)]
    assert dropped == {str(directory / f"{guid}.tmf"): 6}


def test_fmt_jobs_report_the_problems_of_one_process_however_the_entries_were_split(
        cap_of_ten, corpus_file, tmp_path, monkeypatch):
    """This process decodes up to the first "detail" message (entry 11), so it looks up entry
    10 only; the worker looks up both, entry 11 first. The problems reported, listed and
    counted, are those of one process whatever each process kept and counted."""
    from wpptrace.decoder import parallel
    from wpptrace.decoder.engine import FileSource, record_view
    from wpptrace.decoder.etlfile import EtlFile

    etl_path = corpus_file("wppemitter-sample.etl")
    with EtlFile(etl_path) as etl:
        records = [r for items, _keys in FileSource(etl).ordered(record_view) for r in items]
    cut = next(r.timestamp for r in records if r.event_id == 11)
    assert {r.event_id for r in records if r.timestamp < cut} & {10, 11} == {10}
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: [None, cut, None])
    directory = _directory_of_bad_entries(tmp_path)
    errs = {}
    for jobs in (1, 2):
        err = io.StringIO()
        code = run_fmt(FmtOptions(files=[str(etl_path)], tmf_dirs=[str(directory)], output=str(tmp_path / "out"),
                                  jobs=jobs, cache=False), out=io.StringIO(), err=err)
        assert code == 0
        errs[jobs] = err.getvalue()
    assert errs[2] == errs[1]
    lines = errs[1].splitlines()
    assert lines[-1] == "wpptrace fmt: warning: 6 more TMF entries skipped"
    assert len(lines) == 10 * 3 + 1
