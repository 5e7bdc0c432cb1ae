"""The name (prefix %2) of a message without a format is tracefmt's ``%3d`` of its number
(``findneedle( 99): GUID=...``). Padding is layout: tracefmt's lines keep it (the Unknown line,
CSV's MessageName column, tracefmt -csv's %2); a value has none: JSON's ``name`` was ``" 99"``,
as were the Arrow/Parquet column and ``DecodedMessage.name``; they are ``"99"``, as the
summary's EventType column is (docs/tmf-format.md §6.2)."""
from __future__ import annotations

import csv
import json
import uuid

import etlgen
import pytest
from fmthelp import run_fmt_capture

from wpptrace.decoder import decode_file

EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")  # findneedle TMF: messages 10, 11
NOBODY = uuid.UUID("37753236-c81f-505e-d40a-128d3bb2b5ff")   # no TMF anywhere


@pytest.fixture
def trace(tmp_path):
    path = tmp_path / "t.etl"
    etlgen.write_messages(path, [
        (EMITTER, 99, b"", 0x100, 0x200, 0, etlgen.T0 + 10_000, etlgen.FLAGS_CORPUS),  # known GUID
        (NOBODY, 7, b"", 0x100, 0x200, 0, etlgen.T0 + 20_000, etlgen.FLAGS_CORPUS),    # unknown GUID
    ], nprocs=1, buffer_size=8192)
    return path


def test_padding_in_tracefmt_lines_not_in_values(trace, fmt_tmf, tmp_path):
    code, out, err = run_fmt_capture(trace, tmf_dirs=[str(fmt_tmf)], noprefix=True,
                                     summary=str(tmp_path / "s.txt"))
    assert code == 0, err
    assert out.splitlines()[1:] == [
        f"findneedle( 99): GUID={EMITTER} (No Format Information found).",
        f"Unknown(  7): GUID={NOBODY} (No Format Information found)."]
    summary = (tmp_path / "s.txt").read_text()
    assert f"|         1    findneedle           99          {EMITTER}|\n" in summary
    assert f"|         1    Unknown              7           {NOBODY}|\n" in summary

    code, out, err = run_fmt_capture(trace, tmf_dirs=[str(fmt_tmf)], output_format="csv")
    assert code == 0, err
    rows = list(csv.reader(out.splitlines()))
    assert [row[:2] for row in rows[2:]] == [["findneedle", " 99"], ["Unknown", "  7"]]

    code, out, err = run_fmt_capture(trace, tmf_dirs=[str(fmt_tmf)], output_format="jsonl")
    assert code == 0, err
    objects = [json.loads(line) for line in out.splitlines()[1:]]
    assert [(o["component"], o["name"], o["number"], o["status"]) for o in objects] == [
        ("findneedle", "99", 99, "unknown"), ("Unknown", "7", 7, "unknown")]

    messages = decode_file(trace, tmf=fmt_tmf).messages
    assert [(m.name, m.to_dict()["name"]) for m in messages if m.status == "unknown"] == [
        ("99", "99"), ("7", "7")]


def test_arrow_name_column_has_no_padding(trace, fmt_tmf):
    pytest.importorskip("pyarrow")
    from wpptrace.decoder import to_arrow

    import pyarrow as pa

    table = pa.Table.from_batches(list(to_arrow(trace, tmf=fmt_tmf)))
    names = [(row["status"], row["name"]) for row in table.select(["status", "name"]).to_pylist()]
    assert [name for status, name in names if status == "unknown"] == ["99", "7"]
