"""The name (prefix %2) of a message without a format is its number; tracefmt's layout pads it
to ``%3d`` (``findneedle( 99): GUID=...``): the Unknown line and CSV's MessageName column
(tracefmt -csv's %2) keep that padding; a value has none: JSON's ``name``, the Arrow/Parquet
column, ``DecodedMessage.name`` and GuidTypeName are ``"99"``, as the summary's EventType
column is (docs/tmf-format.md §6.2)."""
from __future__ import annotations

import csv
import json
import re
import shutil
import uuid

import etlgen
import pytest
from fmthelp import reference_lines, row_lines, run_fmt_capture

from wpptrace import decoder, tmf
from wpptrace.decoder import decode_file, ordered_records
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.timestamps import TimeConverter
from wpptrace.decoder.wpp import FileContext, WppDecoder, wpp_property

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


def _tmf_without(fmt_tmf, into, missing):
    """A copy of the findneedle TMF directory without ``missing``: a TMF file's name, or the
    (file name, number) of one message cut out of its file."""
    shutil.copytree(fmt_tmf, into)
    if isinstance(missing, str):
        (into / missing).unlink()
        return into
    name, number = missing
    text = (into / name).read_text()
    cut = re.sub(rf"#typev \S+ {number} .*?\n}}\n", "", text, count=1, flags=re.DOTALL)
    assert cut != text
    (into / name).write_text(cut)
    return into


@pytest.mark.parametrize("capture, missing", [
    ("wpptypes-sample.etl", "4857fab7-1162-3184-360b-cdd863ddf4ea.tmf"),
    ("wppemitter-sample.etl", ("9b93a332-c452-3e71-64f7-55130c7de2e4.tmf", 10)),
], ids=["tmf-file-removed", "message-removed"])
def test_every_path_names_an_unknown_message_alike(capture, missing, fmt_data, fmt_tmf, tmp_path):
    """A real capture whose TMFs lack a file or a message: the formatting loop (rows, the C
    renderer) and each record decoded on its own (``decode_record``) print the same lines in
    text, CSV and JSON Lines, and every value of the name (JSON, the API, GuidTypeName) is the
    number without padding."""
    tmf_dir = _tmf_without(fmt_tmf, tmp_path / "tmf", missing)
    tmfset = tmf.load(tmf_dir)
    path = fmt_data / capture
    for form in ("text", "csv", "jsonl"):
        results = []
        for helper in (row_lines, reference_lines):
            with EtlFile(path) as etl:
                results.append(helper(WppDecoder(tmfset, utc=True), etl, form))
        assert results[0] == results[1], form
    objects = [json.loads(line) for line in results[0]]
    numbers = [o["number"] for o in objects if o["status"] == "unknown"]
    assert numbers, "the TMFs left some messages without a format"
    names = list(map(str, numbers))
    assert [o["name"] for o in objects if o["status"] == "unknown"] == names

    messages = [m for m in decode_file(path, tmf=tmf_dir).messages if m.status == "unknown"]
    assert [(m.name, m.to_dict()["name"]) for m in messages] == list(zip(names, names))
    with decoder.open(path, tmf=tmf_dir) as reader:
        events = [e.wpp for e in reader if isinstance(e, decoder.MessageEvent)]
    assert [m.name for m in events if m.status == "unknown"] == names
    record_decoder = WppDecoder(tmfset)
    with EtlFile(path) as etl:
        ctx = FileContext.for_header(str(path), etl.header, TimeConverter(etl.header))
        records = [record_decoder.decode_record(r, ctx) for r in ordered_records(etl) if r.kind == "message"]
    assert [(m.name, wpp_property(m, "GuidTypeName")) for m in records
            if m.status == "unknown"] == list(zip(names, names))
