"""An input whose file name is not UTF-8 (bytes os.fsdecode keeps as lone surrogates) is named
in every output with those bytes escaped as \\xNN: --summary, tracefmt's FmtSum.txt and the
Arrow/Parquet etl column failed the run with "'utf-8' codec can't encode characters ...:
surrogates not allowed" (the text output was written, the summary was not)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

NAME = os.fsdecode(b"bad\xff\xfe.etl")
SHOWN = "bad\\xff\\xfe.etl"


@pytest.fixture
def oddly_named(fmt_data, tmp_path):
    path = tmp_path / NAME
    shutil.copyfile(fmt_data / "wppstr-sample.etl", path)
    return path


def _run(*args, cwd):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def test_the_summary_names_it_escaped(oddly_named, fmt_tmf, tmp_path):
    done = _run("-m", "wpptrace", "fmt", oddly_named, "-p", fmt_tmf, "--summary", "sum.txt", "-o", "out.txt",
                cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "sum.txt").read_text(encoding="utf-8")
    assert f"\t{os.path.join(str(tmp_path), SHOWN)}\n" in summary
    assert (tmp_path / "out.txt").stat().st_size > 0


def test_tracefmt_writes_its_summary_file(oddly_named, fmt_tmf, tmp_path):
    done = _run("-m", "wpptrace.decoder.tracefmt", NAME, "-p", fmt_tmf, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"\t{SHOWN}\n" in (tmp_path / "FmtSum.txt").read_text(encoding="utf-8")


@pytest.mark.parametrize("form", ["parquet", "arrow"])
def test_the_etl_column_names_it_escaped(oddly_named, fmt_tmf, tmp_path, form):
    pa = pytest.importorskip("pyarrow")
    out = tmp_path / f"out.{form}"
    done = _run("-m", "wpptrace", "fmt", "-f", form, "-o", out, oddly_named, "-p", fmt_tmf, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    if form == "parquet":
        import pyarrow.parquet as pq
        table = pq.read_table(out)
    else:
        with pa.ipc.open_stream(pa.OSFile(str(out))) as reader:
            table = reader.read_all()
    assert table.num_rows > 0
    assert set(table.column("etl").to_pylist()) == {os.path.join(str(tmp_path), SHOWN)}
