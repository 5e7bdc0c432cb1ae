"""``tracefmt -summaryonly`` writes the summary and no text: its completion lines said "Event
traces dumped to /dev/null", a file the user never named. They say where the summary went,
and nothing of a text output; a text output the user names (``-o /dev/null``) is still said."""
from __future__ import annotations

import os
import subprocess
import sys


def tracefmt(*args, cwd):
    return subprocess.run([sys.executable, "-m", "wpptrace.decoder.tracefmt", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_summaryonly_says_only_where_the_summary_went(fmt_data, fmt_tmf, tmp_path):
    trace = fmt_data / "wppstr-sample.etl"
    res = tracefmt(trace, "-p", fmt_tmf, "-summaryonly", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""
    assert "Event traces dumped" not in res.stderr
    assert res.stderr.splitlines()[-1] == "Event Summary dumped to FmtSum.txt"
    assert "Processing completed   Buffers: 2, Events: 8," in res.stderr
    assert os.listdir(tmp_path) == ["FmtSum.txt"]

    # -o names the summary's file then (<file>.sum): no text file is made
    res = tracefmt(trace, "-p", fmt_tmf, "-SummaryOnly", "-o", "out.txt", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert "Event traces dumped" not in res.stderr
    assert res.stderr.splitlines()[-1] == "Event Summary dumped to out.txt.sum"
    assert sorted(os.listdir(tmp_path)) == ["FmtSum.txt", "out.txt.sum"]
    assert "Total Events  Processed 8\n" in (tmp_path / "out.txt.sum").read_text()


def test_a_text_output_named_is_still_said(fmt_data, fmt_tmf, tmp_path):
    res = tracefmt(fmt_data / "wppstr-sample.etl", "-p", fmt_tmf, "-o", os.devnull, cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stderr.splitlines()[-2:] == [f"Event traces dumped to {os.devnull}",
                                            "Event Summary dumped to FmtSum.txt"]
