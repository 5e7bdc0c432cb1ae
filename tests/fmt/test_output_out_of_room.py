"""A write that fails part-way through ``wpptrace fmt`` (the disk full, the file size limit
passed) is one line naming the output, in plain words with its Win32 name, as a failure to open
it is: exit 1, the old output kept, no partial or temporary file left. It used to reach the
command line's last line of defence: ``wpptrace fmt: error: [Errno 28] No space left on
device``, no file named. Every output format, ``-j 1`` and ``-j 2``, a file and standard
output."""
from __future__ import annotations

import io
import os
import resource
import subprocess
import sys

import pytest

FORMATS = ["text", "csv", "jsonl", "parquet", "arrow"]
DISK_FULL = "cannot write: There is not enough space on the disk (ERROR_DISK_FULL)"
TOO_LARGE = ("cannot write: The file size exceeds the limit allowed and cannot be saved "
             "(ERROR_FILE_TOO_LARGE)")


def _fmt(args, limit: int | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    def limited():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "wpptrace", "fmt", *map(str, args)],
                          stdout=stdout, stderr=subprocess.PIPE, text=True, timeout=120,
                          preexec_fn=limited if limit is not None else None)


def _jobs(form: str) -> list[str]:
    return ["1", "2"] if form in ("text", "csv", "jsonl") else ["1"]   # (-j: text outputs)


@pytest.mark.parametrize("form", FORMATS)
def test_a_full_disk_is_one_line_naming_the_output(form, driver):
    etl, tmf = driver
    for jobs in _jobs(form):
        done = _fmt([etl, "-p", tmf, "-f", form, "-j", jobs, "-o", "/dev/full"])
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr == f"wpptrace fmt: error: /dev/full: {DISK_FULL}\n", jobs


@pytest.mark.parametrize("form", ["jsonl", "arrow"])
def test_standard_output_on_a_full_disk_is_named_so(form, driver):
    etl, tmf = driver
    with open("/dev/full", "w") as full:
        done = _fmt([etl, "-p", tmf, "-f", form], stdout=full)
    assert done.returncode == 1
    assert done.stderr == f"wpptrace fmt: error: standard output: {DISK_FULL}\n"


def test_a_library_callers_full_stream_is_left_as_it_is(driver):
    """run_fmt called by a program writing to a stream of its own that fills: the same one
    line and exit status, and the caller's stream still writes where it did (only the
    command line's own standard output is pointed at /dev/null, so that its exit does not
    fail again on what it still buffers)."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    etl, tmf = driver
    err = io.StringIO()
    full = open("/dev/full", "w")
    before = os.fstat(full.fileno()).st_rdev
    code = run_fmt(FmtOptions(files=[str(etl)], tmf_dirs=[str(tmf)], output_format="jsonl"),
                   out=full, err=err)
    assert code == 1 and err.getvalue().endswith(f": standard output: {DISK_FULL}\n")
    assert os.fstat(full.fileno()).st_rdev == before
    with pytest.raises(OSError):
        full.close()                         # still /dev/full: its buffer is the caller's
    assert full.closed


@pytest.mark.parametrize("form", FORMATS)
def test_the_file_size_limit_passed_leaves_the_old_output(form, driver, tmp_path):
    etl, tmf = driver
    whole = tmp_path / f"whole.{form}"
    assert _fmt([etl, "-p", tmf, "-f", form, "-o", whole]).returncode == 0
    limit = 16 << 10
    assert whole.stat().st_size > 2 * limit
    whole.unlink()
    out = tmp_path / f"out.{form}"
    for jobs in _jobs(form):
        out.write_text("old contents\n")
        done = _fmt([etl, "-p", tmf, "-f", form, "-j", jobs, "-o", out], limit=limit)
        assert (done.returncode, done.stdout) == (1, ""), done.stderr
        assert done.stderr == f"wpptrace fmt: error: {out}: {TOO_LARGE}\n", jobs
        assert out.read_text() == "old contents\n"
        assert os.listdir(tmp_path) == [out.name]        # no partial or temporary file
