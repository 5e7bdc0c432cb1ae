"""``wpptrace dump``: one line / JSON object per record, then a summary."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from wpptrace.cli import main

KINDS = ["system", "compact", "perfinfo", "full", "instance", "event", "message", "unknown"]


def dump(capsys, *argv):
    rc = main(["dump", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out.splitlines(), err


def test_json_lines_and_summary(capsys, corpus_file):
    rc, lines, err = dump(capsys, "--json", corpus_file("wppemitter-sample.etl"))
    assert rc == 0 and err == ""
    *records, last = [json.loads(line) for line in lines]
    summary = last["summary"]
    assert list(summary) == ["records", "by_kind", "buffers", "compressed_buffers", "events_lost",
                             "skipped", "errors"]
    assert list(summary["by_kind"]) == KINDS
    assert summary["records"] == len(records) == 49          # header record included
    assert summary["by_kind"] == {"system": 2, "compact": 0, "perfinfo": 2, "full": 0,
                                  "instance": 0, "event": 0, "message": 45, "unknown": 0}
    assert (summary["buffers"], summary["compressed_buffers"], summary["events_lost"],
            summary["skipped"], summary["errors"]) == (2, 0, 0, 0, [])
    first, msg = records[0], records[-1]
    assert first["kind"] == "system" and first["provider"] == "68fdd900-4a3e-11d1-84f4-0000f80464e3"
    assert first["id"] == 0 and first["buffer"] == 0 and first["offset"] == 0x48
    assert set(msg) >= {"kind", "provider", "id", "timestamp", "processor", "tid", "pid", "size"}
    assert msg["kind"] == "message" and msg["provider"] == "9b93a332-c452-3e71-64f7-55130c7de2e4"
    assert msg["id"] in (10, 11) and msg["timestamp"].startswith("2026-07-31T")
    assert msg["tid"] and msg["pid"] and msg["size"] == 48


def test_compressed_file_and_events_lost(capsys, corpus_file):
    rc, lines, _ = dump(capsys, "--json", corpus_file("smallEtlFile.etl"))
    s = json.loads(lines[-1])["summary"]
    assert rc == 0 and (s["records"], s["buffers"], s["compressed_buffers"]) == (2, 2, 1)
    rc, lines, _ = dump(capsys, "--json", "--summary-only",
                        corpus_file("WindowsUpdate.20251008.140245.443.8.etl"))
    s = json.loads(lines[-1])["summary"]
    assert len(lines) == 1 and s["events_lost"] == 41 and s["records"] == 82


def test_text_lines(capsys, corpus_file):
    rc, lines, _ = dump(capsys, corpus_file("wppstr-sample.etl"))
    assert rc == 0 and len(lines) == 9
    assert lines[0].startswith("system   68fdd900-4a3e-11d1-84f4-0000f80464e3 id=0 ")
    msg = lines[-2].split()
    assert msg[0] == "message" and msg[1] == "744151fd-b3f4-32e6-38eb-0fd11e3fb62d"
    assert msg[2].startswith("id=") and msg[3].endswith("Z") and msg[4].startswith("cpu=")
    assert lines[-1] == ("-- 8 records (system 2, perfinfo 2, message 4); 2 buffers, 0 compressed; "
                         "events lost 0, buffers lost 0; skipped or damaged 0; 0 errors")


def test_damaged_file_reports_errors_on_stderr(capsys, corpus_file, tmp_path):
    data = bytearray(corpus_file("wppemitter-sample.etl").read_bytes())
    data[0x2000 + 0x48 + 3] = 0x11            # first record marker of buffer 1
    bad = tmp_path / "bad.etl"
    bad.write_bytes(bytes(data))
    rc, lines, err = dump(capsys, "--json", bad)
    s = json.loads(lines[-1])["summary"]
    assert rc == 1 and s["skipped"] == 1 and s["records"] == 48
    assert s["errors"][0]["offset"] == 0x2048 and "record marker" in s["errors"][0]["message"]
    assert "offset 0x2048" in err and str(bad) in err


def test_missing_file_is_an_error(capsys, tmp_path):
    rc, _, err = dump(capsys, tmp_path / "nope.etl")
    assert rc == 1 and "nope.etl" in err


def test_unreadable_file_error_is_one_clean_line(capsys, tmp_path):
    # Regression: an unopenable file printed OSError's repr-ish text,
    # "[Errno None] ERROR_BAD_FORMAT (11): ... bytes: 'empty.etl'", instead of path: reason.
    empty = tmp_path / "empty.etl"
    empty.write_bytes(b"")
    rc, out, err = dump(capsys, empty)
    assert rc == 1 and out == []
    # the file once, then where and what was expected, then the Win32 name
    assert err == (f"wpptrace dump: error: {empty}: cannot read: offset 0x0: expected a 72-byte "
                   f"WMI_BUFFER_HEADER, the file has 0 bytes (ERROR_BAD_FORMAT)\n")
    rc, out, err = dump(capsys, tmp_path / "nope.etl")
    assert rc == 1 and err == (f"wpptrace dump: error: {tmp_path / 'nope.etl'}: cannot read: "
                               f"The system cannot find the file specified (ERROR_FILE_NOT_FOUND)\n")


def test_a_directory_is_named_as_one(capsys, tmp_path):
    rc, out, err = dump(capsys, tmp_path)
    assert rc == 1 and out == []
    assert err == (f"wpptrace dump: error: {tmp_path}: is a directory: give the .etl files in it "
                   f"({tmp_path / '*.etl'})\n")


@pytest.mark.parametrize("order", [[], ["--file-order"]])
def test_piped_into_head(corpus_file, order):
    path = corpus_file("wppemitter-sample.etl")
    proc = subprocess.run(f"{sys.executable} -m wpptrace.cli dump {' '.join(order)} '{path}' | head -2",
                          shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stdout.count("\n") == 2 and "Traceback" not in proc.stderr
