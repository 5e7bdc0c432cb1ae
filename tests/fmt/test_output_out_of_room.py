"""A write that fails part-way through ``wpptrace fmt`` (the disk full, the file size limit
passed) is one line naming the output, in plain words with its Win32 name, as a failure to open
it is: exit 1, the old output kept, no partial or temporary file left. It used to reach the
command line's last line of defence: ``wpptrace fmt: error: [Errno 28] No space left on
device``, no file named. Every output format, ``-j 1`` and ``-j 2``, a file and standard
output."""
from __future__ import annotations

import errno
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


class _FailingRaw(io.RawIOBase):
    """A device that fails every write with ``errno``."""

    def __init__(self, errno_: int) -> None:
        self.errno_ = errno_

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        raise OSError(self.errno_, os.strerror(self.errno_))


@pytest.mark.parametrize("form", ["text", "jsonl"])
def test_any_other_write_error_is_one_line_with_its_win32_name(form, driver):
    """A write of the output that fails for another reason than room (EIO: a failing device) is
    one line naming the output and the Win32 code (ERROR_WRITE_FAULT, as the C core names a
    failed write of a session's file), exit 1 as for a full disk: it reached the command
    line's last line of defence (``wpptrace fmt: error: [Errno 5] Input/output error``)."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    etl, tmf = driver
    err = io.StringIO()
    failing = io.TextIOWrapper(io.BufferedWriter(_FailingRaw(errno.EIO)), encoding="utf-8")
    code = run_fmt(FmtOptions(files=[str(etl)], tmf_dirs=[str(tmf)], output_format=form),
                   out=failing, err=err)
    assert (code, err.getvalue()) == (1, "wpptrace fmt: error: standard output: cannot write: The "
                                         "system cannot write to the specified device "
                                         "(ERROR_WRITE_FAULT)\n")
    with pytest.raises(OSError):
        failing.close()             # the caller's, as the /dev/full above (else Python 3.13
    assert failing.closed           # says the failing close as the stream is collected)


@pytest.mark.parametrize("refused", [errno.EACCES, errno.EPERM], ids=errno.errorcode.get)
def test_a_refused_write_names_the_output_and_access_denied(refused, driver, tmp_path, monkeypatch):
    """A write of the output refused part-way (EACCES, EPERM: a network or FUSE file system
    that turns the writer away) is one line naming the output and ERROR_ACCESS_DENIED, exit 1;
    the old output is kept and no partial or temporary file is left."""
    from wpptrace.decoder import cli_fmt

    etl, tmf = driver
    out = tmp_path / "out.txt"
    out.write_text("old contents\n")
    real = cli_fmt._writer

    def refusing(opts, stream, header=True):
        return real(opts, io.TextIOWrapper(io.BufferedWriter(_FailingRaw(refused)), encoding="utf-8"),
                    header)

    monkeypatch.setattr(cli_fmt, "_writer", refusing)
    err = io.StringIO()
    code = cli_fmt.run_fmt(cli_fmt.FmtOptions(files=[str(etl)], tmf_dirs=[str(tmf)], output=str(out),
                                              jobs=1, progress="never"), out=io.StringIO(), err=err)
    assert (code, err.getvalue()) == (1, f"wpptrace fmt: error: {out}: cannot write: Access is "
                                         f"denied (ERROR_ACCESS_DENIED)\n")
    assert out.read_text() == "old contents\n"
    assert os.listdir(tmp_path) == [out.name]        # no partial or temporary file


def test_a_write_error_in_a_worker_is_the_same_one_line(driver, tmp_path):
    """``-j 2``: a worker whose write of its windows' text fails (EIO: the device failing
    under it) makes the run say the same line as this process's own write would."""
    etl, tmf = driver
    out = tmp_path / "out.txt"
    script = ("import errno, io, os, sys\n"
              "from wpptrace.decoder import cli_fmt\n"
              "class Failing(io.RawIOBase):\n"
              "    def writable(self):\n"
              "        return True\n"
              "    def write(self, data):\n"
              "        raise OSError(errno.EIO, os.strerror(errno.EIO))\n"
              "real = cli_fmt._writer\n"
              # the stand-ins kept to the worker's end: the worker closes its own stream, not
              # them, and Python 3.13 says a close that fails as one is collected
              "kept = []\n"
              "def failing(opts, stream, header=True):\n"
              "    if os.getpid() != parent:\n"
              "        stream = io.TextIOWrapper(io.BufferedWriter(Failing()), encoding='utf-8')\n"
              "        kept.append(stream)\n"
              "    return real(opts, stream, header)\n"
              "parent = os.getpid()\n"
              "cli_fmt._writer = failing\n"
              "from wpptrace.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    done = subprocess.run([sys.executable, "-c", script, "fmt", str(etl), "-p", str(tmf), "-j", "2",
                           "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (1, f"wpptrace fmt: error: {out}: cannot write: The "
                                                 f"system cannot write to the specified device "
                                                 f"(ERROR_WRITE_FAULT)\n")


def _run_patched(patch: str, args) -> subprocess.CompletedProcess:
    """``wpptrace fmt ARGS`` in a process where ``patch`` (Python source) ran first."""
    script = (f"import errno, os, sys\n{patch}\n"
              "from wpptrace.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", script, "fmt", *map(str, args)],
                          capture_output=True, text=True, timeout=120)


#: the .etl file's reads failing (EIO) after its first few: the input's device failing mid-run
_FAILING_READS = ("real = os.pread\n"
                  "calls = [0]\n"
                  "def failing(fd, size, offset):\n"
                  "    if os.readlink(f'/proc/self/fd/{fd}').endswith('.etl'):\n"
                  "        calls[0] += 1\n"
                  "        if calls[0] > 6:\n"
                  "            raise OSError(errno.EIO, os.strerror(errno.EIO))\n"
                  "    return real(fd, size, offset)\n"
                  "os.pread = failing\n")


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_input_that_cannot_be_read_is_named_not_the_output(jobs, driver, tmp_path):
    """A read of an input failing part-way (EIO) is one line naming the input and the
    offset read: not a failed write of the output (``out.txt: cannot write: ...``)."""
    etl, tmf = driver
    out = tmp_path / "out.txt"
    done = _run_patched(_FAILING_READS, [etl, "-p", tmf, "-j", jobs, "-o", out])
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"wpptrace fmt: error: {etl}: cannot read: offset 0x"), lines
    assert lines[0].endswith(": Input/output error (ERROR_READ_FAULT)"), lines
    assert not out.exists()


def test_a_window_file_that_cannot_be_made_names_its_directory(driver, tmp_path):
    """-j 2 to standard output: the temporary directory refusing the windows' files
    (EACCES) names that directory, not standard output."""
    etl, tmf = driver
    refused = tmp_path / "tmp"
    refused.mkdir()
    patch = ("import tempfile\n"
             f"tempfile.gettempdir = lambda: {str(refused)!r}\n"
             "real_open = os.open\n"
             "def refusing(path, *args, **kwargs):\n"
             f"    if str(path).startswith({str(refused)!r}):\n"
             "        raise OSError(errno.EACCES, os.strerror(errno.EACCES), path)\n"
             "    return real_open(path, *args, **kwargs)\n"
             "os.open = refusing\n")
    done = _run_patched(patch, [etl, "-p", tmf, "-j", "2"])
    assert (done.returncode, done.stderr) == (1, f"wpptrace fmt: error: {refused}: cannot make a "
                                                 f"temporary file: Access is denied "
                                                 f"(ERROR_ACCESS_DENIED)\n")
