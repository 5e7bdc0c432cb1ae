"""A command whose standard output cannot be written says so in one line and exits 1.

Started with descriptor 1 closed, ``session list`` exited 0 with its listing lost, ``dump``
and ``fmt`` said "'NoneType' object has no attribute 'write'" and ``tracelog -l`` printed a
traceback; with standard output on a full disk, ``dump`` said "[Errno 28] No space left on
device" and ``tracelog`` a traceback. Each now says "standard output: cannot write: ..." with
the Win32 name, as fmt says a failed write of its own."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

SAMPLES = os.path.join(os.path.dirname(__file__), os.pardir, "samples", "wpp_capture")
ETL = os.path.join(SAMPLES, "wpptypes-sample.etl")
TMF = os.path.join(SAMPLES, "tmf", "4857fab7-1162-3184-360b-cdd863ddf4ea.tmf")
TRACELOG = shutil.which("tracelog") or "tracelog"

COMMANDS = {
    "session list": [sys.executable, "-m", "wpptrace", "session", "list"],
    "dump": [sys.executable, "-m", "wpptrace", "dump", ETL],
    "tmf show": [sys.executable, "-m", "wpptrace", "tmf", "show", TMF],
    "fmt": [sys.executable, "-m", "wpptrace", "fmt", ETL, "-p", os.path.dirname(TMF)],
    "tracefmt": [sys.executable, "-m", "wpptrace.decoder.tracefmt", ETL, "-p", os.path.dirname(TMF),
                 "-displayonly", "-nosummary"],
    "tracelog": [sys.executable, "-c", "import sys; from wpptrace.provider.tracelog import main; "
                                       "sys.exit(main())", "-l"],
}
PROG = {"tracefmt": "tracefmt", "tracelog": "tracelog"}


def _said(name: str, how: str) -> str:
    prog = PROG.get(name, f"wpptrace {name}")
    return f"{prog}: error: standard output: cannot write: {how}\n"


@pytest.mark.parametrize("name", COMMANDS)
def test_a_closed_standard_output_is_said(name, tmp_path):
    done = subprocess.run(COMMANDS[name], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          timeout=120, cwd=tmp_path, preexec_fn=lambda: os.close(1))
    assert done.returncode == 1, done.stderr
    assert done.stderr.endswith(_said(name, "it is closed (ERROR_INVALID_HANDLE)")), done.stderr
    assert "Traceback" not in done.stderr and "NoneType" not in done.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("name", COMMANDS)
def test_standard_output_on_a_full_disk_is_said(name, tmp_path):
    with open("/dev/full", "w") as full:
        done = subprocess.run(COMMANDS[name], stdin=subprocess.DEVNULL, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stderr.endswith(_said(name, "There is not enough space on the disk (ERROR_DISK_FULL)")), \
        done.stderr
    assert "Traceback" not in done.stderr and "Errno" not in done.stderr


@pytest.mark.parametrize("name", ["session list", "dump", "tmf show", "tracelog"])
def test_what_is_written_reaches_standard_output_whole(name, tmp_path):
    done = subprocess.run(COMMANDS[name], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("\n") and done.stderr == ""
    if name in ("dump", "tmf show"):
        assert done.stdout.count("\n") > 5
