"""CSV, JSON Lines and the FmtSum summary layout."""
from __future__ import annotations

import csv
import io
import json
import re
import sys

import pytest

from fmthelp import run_fmt_capture

from wpptrace.decoder.output import (
    CSV_COLUMNS, Summary, SummaryRow, TextWriter, filetime_to_iso, format_summary)


def test_csv_columns_and_quoting(fmt_data, fmt_tmf):
    code, out, err = run_fmt_capture(fmt_data / "wpptypes-sample.etl", tmf_dirs=[str(fmt_tmf)],
                                     utc=True, output_format="csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == 1 + 1 + 5  # header row, log-file header event, 5 messages
    assert all(len(r) == len(CSV_COLUMNS) for r in rows)
    last = dict(zip(CSV_COLUMNS, rows[-1]))
    assert last["GuidName"] == "findneedle"
    assert last["MessageName"] == "WppTypesEmitter_cpp28"
    assert last["ThreadId"] == "0x2D3C" and last["ProcessId"] == "0x79A8" and last["CpuNumber"] == "10"
    assert last["SystemTime"] == "07/31/2026-09:02:55.916"
    assert last["FormattedMessage"] == (
        "[10]79A8.2D3C::07/31/2026-09:02:55.916 [findneedle]hr=0x80070005(ERROR_ACCESS_DENIED) "
        "st=0xc0000022(STATUS_ACCESS_DENIED) guid=11223344-5566-7788-99aa-bbccddeeff00")
    # no header row, every field quoted
    code, out2, err = run_fmt_capture(fmt_data / "wpptypes-sample.etl", tmf_dirs=[str(fmt_tmf)],
                                      utc=True, output_format="csv", csv_header=False, csv_quote=True)
    assert out2.splitlines()[0].startswith('"Header","Header","0x8184"')
    assert list(csv.reader(io.StringIO(out2))) == rows[1:]


def test_jsonl_fields_and_typed_arguments(fmt_data, fmt_tmf):
    code, out, err = run_fmt_capture(fmt_data / "wpptypes-sample.etl", tmf_dirs=[str(fmt_tmf)],
                                     utc=True, output_format="jsonl")
    assert code == 0, err
    objs = [json.loads(line) for line in out.splitlines()]
    assert objs[0]["status"] == "header" and objs[0]["text"] == "EventTrace"
    sint, uint, ptr, widths, status = objs[1:]
    assert sint["guid"] == "4857fab7-1162-3184-360b-cdd863ddf4ea" and sint["number"] == 10
    assert sint["args"] == [
        {"name": "(int)42", "type": "ItemLong", "value": 42},
        {"name": "(int)-1000", "type": "ItemLong", "value": -1000},
        {"name": "(long long)-5000000000LL", "type": "ItemLongLong", "value": -5000000000},
    ]
    assert sint["text"] == "sint i=42 neg=-1000 i64=-5000000000"
    for key in ("timestamp", "component", "name", "file", "line", "function", "level", "flags",
                "processor", "thread_id", "process_id", "sequence"):
        assert key in sint
    assert (sint["component"], sint["name"], sint["file"], sint["line"], sint["function"],
            sint["level"]) == ("findneedle", "WppTypesEmitter_cpp23", "WppTypesEmitter.cpp", "23",
                               "main", "T_ALL")
    assert (sint["processor"], sint["thread_id"], sint["process_id"]) == (10, 0x2D3C, 0x79A8)
    assert sint["timestamp"].startswith("2026-07-31T09:02:55.916") and sint["timestamp"].endswith("Z")
    assert ptr["args"][0]["value"] == 0x7FF012345678
    assert status["args"][2] == {"name": "&g", "type": "ItemGuid",
                                 "value": "11223344-5566-7788-99aa-bbccddeeff00"}


def test_summary_layout_matches_real_fmtsum(fmt_data):
    real = (fmt_data / "FmtSum.txt").read_text().splitlines()
    ours = format_summary(Summary(
        files=[r"C:\Program Files (x86)\Windows Kits\10\bin\10.0.19041.0\x64\test.etl"],
        buffers=30, events=267823, events_lost=1, format_errors=2, formats_unknown=184696,
        elapsed_seconds=9.4)).splitlines()
    assert ours == real  # same totals, no rows: byte-for-byte the real file


def test_summary_rows_fit_the_table():
    text = format_summary(Summary(files=["a.etl"], rows=[
        SummaryRow(1700, "tracedrv", "tracedrv_c264", "37753236-c81f-505e-d40a-128d3bb2b5ff"),
        SummaryRow(17, "tracedrv", "tracedrv_c258", "37753236-c81f-505e-d40a-128d3bb2b5ff")]))
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|") and "tracedrv" in line]
    assert rows == [
        "|        17    tracedrv             tracedrv_c258 37753236-c81f-505e-d40a-128d3bb2b5ff|",
        "|      1700    tracedrv             tracedrv_c264 37753236-c81f-505e-d40a-128d3bb2b5ff|",
    ]
    short = format_summary(Summary(rows=[SummaryRow(5, "x", "x_c1", "37753236-c81f-505e-d40a-128d3bb2b5ff")]))
    row = [line for line in short.splitlines() if "x_c1" in line][0]
    assert len(row) == 85 and row.index("x_c1") == 36 and row.index("3775") == 48


def test_summary_of_a_corpus_run(fmt_data, fmt_tmf, tmp_path):
    summary = tmp_path / "out.sum"
    code, out, err = run_fmt_capture(fmt_data / "wppemitter-sample.etl", tmf_dirs=[str(fmt_tmf)],
                                     summary=str(summary))
    lines = summary.read_text().splitlines()
    assert lines[1] == "\t" + str(fmt_data / "wppemitter-sample.etl")
    assert lines[2:7] == ["Total Buffers Processed 2", "Total Events  Processed 49",
                          "Total Events  Lost      0", "Total Format  Errors    0",
                          "Total Formats Unknown   0"]
    assert "|        30    findneedle           WppEmitter_cpp36 9b93a332-c452-3e71-64f7-55130c7de2e4|" in lines
    assert "|        15    findneedle           WppEmitter_cpp40 9b93a332-c452-3e71-64f7-55130c7de2e4|" in lines


def test_text_writer_batches_and_iso_time():
    sink = io.StringIO()
    writer = TextWriter(sink, batch=3)
    for i in range(7):
        writer.write_line(str(i))
    assert sink.getvalue() == "0\n1\n2\n3\n4\n5\n"  # two full batches written, one pending
    writer.flush()
    assert sink.getvalue().splitlines() == [str(i) for i in range(7)]
    assert filetime_to_iso(132321950169170001) == "2020-04-24T09:43:36.9170001Z"
    from wpptrace.decoder.timestamps import ISO_END_FILETIME
    assert filetime_to_iso(ISO_END_FILETIME - 1) == "9999-12-31T23:59:59.9999999Z"
    with pytest.raises(ValueError, match="past year 9999"):   # it gave a day of year 9999
        filetime_to_iso(3_000_000_000_000_000_000)


def test_csv_rows_quote_as_the_csv_module_does():
    """The formatting loop writes CSV itself (no csv.writer per row): header and fields are
    quoted exactly as Python's csv module quotes them (3.13's, which quotes a bare CR),
    minimal or every field."""
    import csv as csvmod

    from wpptrace.decoder.output import CsvRows

    tricky = ["plain", "a,b", 'say "hi"', "two\nlines", "cr\ronly", "", " lead", "tab\tx", "é"]
    for quote_all in (False, True):
        rows = CsvRows(quote_all)
        buf = io.StringIO()
        writer = csvmod.writer(buf, lineterminator="\n",
                               quoting=csvmod.QUOTE_ALL if quote_all else csvmod.QUOTE_MINIMAL)
        writer.writerow(CSV_COLUMNS)
        ours = rows.header().encode() + b"\n"
        for i, text in enumerate(tricky):
            time_text = "08/18/2025-14:13:20.00%d" % i
            writer.writerow((text, text[::-1], "0x%04X" % i, time_text, 0, 0, i * 7,
                             "0x%04X" % (i + 1), i % 3, text + "|" + text))
            ours += rows.line(rows.piece(text, text[::-1]), i, time_text.encode(), i * 7, i + 1,
                              i % 3, (text + "|" + text).encode())
        expected = buf.getvalue()
        if sys.version_info < (3, 13) and not quote_all:
            # before 3.13 the module left a bare CR unquoted, which ends the row for a reader
            expected = re.sub(r'(?<![^,\n])([^,"\n]*\r[^,"\n]*)(?![^,\n])', r'"\1"', expected)
        assert ours.decode() == expected
        read = list(csvmod.reader(io.StringIO(ours.decode(), newline="")))
        assert [row[0] for row in read[1:]] == tricky       # each row read back whole
