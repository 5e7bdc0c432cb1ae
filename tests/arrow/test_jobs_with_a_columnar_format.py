"""``-j N`` (processes decoding one file) is for the text formats: with ``-f parquet`` or
``-f arrow`` it did nothing, silently, while ``--batch-rows`` and ``--all-records`` with a
text format are refused. An explicit ``-j`` above 1 with a columnar format is a usage error
(exit 2, one line, nothing written); ``-j 1`` and ``-j 0`` (one per core when it pays) are
taken."""
from __future__ import annotations

import pytest

from wpptrace.cli import main


@pytest.mark.parametrize("form", ["parquet", "arrow"])
def test_jobs_above_one_with_a_columnar_format_is_a_usage_error(form, fmt_data, tmp_path, capsys):
    out = tmp_path / f"out.{form}"
    assert main(["fmt", str(fmt_data / "wpptypes-sample.etl"), "-p", str(fmt_data / "tmf"),
                 "-f", form, "-o", str(out), "-j", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"wpptrace fmt: error: -j 2 is for -f text, -f csv and -f jsonl, "
                            f"not -f {form} (written by one process)\n")
    assert not out.exists()


@pytest.mark.parametrize("jobs", [[], ["-j", "1"], ["-j", "0"]])
def test_one_job_or_the_default_is_taken(jobs, fmt_data, tmp_path, capsys):
    out = tmp_path / "out.parquet"
    assert main(["fmt", str(fmt_data / "wpptypes-sample.etl"), "-p", str(fmt_data / "tmf"),
                 "-f", "parquet", "-o", str(out), *jobs]) == 0
    assert out.stat().st_size > 0
