"""Standard output's reader leaving early (``fmt x.etl --summary s.txt | head -1``) ended the
run quietly with status 0, and the summary file asked for was never written; with tracefmt
-display (text into a file and onto the console) neither file was. The run now goes on to
the end of its inputs without printing, like tracefmt, and writes the files asked for with the
whole inputs' counts; with none asked for it stops at once, as before."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import uuid

import etlgen
import pytest

EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
MESSAGES = 60_000          # ~3.6 MB of text: far more than a pipe holds, so the run meets the end
TOTAL = f"Total Events  Processed {MESSAGES + 1}\n"   # (and the header event)


@pytest.fixture(scope="module")
def trace(tmp_path_factory):
    path = tmp_path_factory.mktemp("leaves") / "big.etl"
    etlgen.write_messages(path, ((EMITTER, 10, struct.pack("<ii", i, i), 0x10, 0x20, i & 1,
                                  etlgen.T0 + i * 100) for i in range(MESSAGES)), buffer_size=16384)
    return path


def read_one_line(args, cwd) -> tuple[int, bytes, str]:
    """Run ``python args`` with standard output into a pipe whose reader reads one line and
    closes it; (status, the line, stderr)."""
    with subprocess.Popen([sys.executable, *map(str, args)], cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as proc:
        line = proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        return proc.wait(timeout=120), line, err


def fmt(*args):
    return ["-m", "wpptrace.cli", "fmt", *args]


def tracefmt(*args):
    return ["-m", "wpptrace.decoder.tracefmt", *args]


@pytest.mark.parametrize("more", [[], ["-f", "csv"], ["-f", "jsonl"], ["-j", "2"]],
                         ids=["text", "csv", "jsonl", "jobs"])
def test_fmt_summary_written_when_stdout_reader_leaves(trace, fmt_tmf, tmp_path, more):
    code, line, err = read_one_line(fmt(trace, "-p", fmt_tmf, "--summary", "s.txt", "-v", *more),
                                    tmp_path)
    assert code == 0, err
    assert line
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception" not in err, err
    summary = (tmp_path / "s.txt").read_text()
    assert TOTAL in summary                 # the whole input counted, not what was printed
    assert f"Events: {MESSAGES + 1}," in err
    assert "Event Summary dumped to s.txt" in err


def test_fmt_arrow_summary_written_when_stdout_reader_leaves(trace, fmt_tmf, tmp_path):
    pytest.importorskip("pyarrow")
    with subprocess.Popen([sys.executable, *fmt(trace, "-p", fmt_tmf, "--summary", "s.txt",
                                                 "-f", "arrow", "--batch-rows", "100")],
                          cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout.read(16)
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "Exception" not in err, err
    assert TOTAL in (tmp_path / "s.txt").read_text()


def test_tracefmt_displayonly_summary_written_when_reader_leaves(trace, fmt_tmf, tmp_path):
    code, line, err = read_one_line(tracefmt(trace, "-p", fmt_tmf, "-displayonly"), tmp_path)
    assert code == 0, err
    assert line.endswith(b"[Header]EventTrace\n")
    assert "Traceback" not in err and "Exception" not in err, err
    assert TOTAL in (tmp_path / "FmtSum.txt").read_text()
    assert os.listdir(tmp_path) == ["FmtSum.txt"]


def test_tracefmt_display_file_and_summary_written_when_console_reader_leaves(trace, fmt_tmf,
                                                                              tmp_path):
    """-display copies the text to the console: the console's reader leaving ends the copy,
    not the output file (it was left unwritten, the old one kept) nor the summary."""
    code, line, err = read_one_line(tracefmt(trace, "-p", fmt_tmf, "-display"), tmp_path)
    assert code == 0, err
    assert line.endswith(b"[Header]EventTrace\n")
    assert "Traceback" not in err and "Exception" not in err, err
    text = (tmp_path / "FmtFile.txt").read_bytes()
    assert text.startswith(line) and text.count(b"\n") == MESSAGES + 1
    assert b" id=59999 " in text.splitlines()[-1]
    assert TOTAL in (tmp_path / "FmtSum.txt").read_text()
    assert sorted(os.listdir(tmp_path)) == ["FmtFile.txt", "FmtSum.txt"]


def test_without_summary_the_run_still_stops_at_once(trace, fmt_tmf, tmp_path):
    """Nothing more was asked for than the text: the run ends where its reader left (quietly,
    status 0), not after decoding the rest of its inputs for nobody."""
    code, line, err = read_one_line(fmt(trace, "-p", fmt_tmf, "-v"), tmp_path)
    assert code == 0, err
    assert line and "Traceback" not in err and "Exception" not in err, err
    assert "Processing completed" not in err
    assert os.listdir(tmp_path) == []
