"""The console commands leave what they made to the process's end unscanned, and only they:
the functions a program calls leave its collector as it was. After fmt the command's process
ends without the interpreter's teardown, with what a normal exit does for its output."""
from __future__ import annotations

import gc
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import wpptrace.cli as cli
from wpptrace.decoder import tracefmt

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture
def unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


@pytest.mark.parametrize("entry, argv", [
    (cli.entry, ["wpptrace", "fmt", "{etl}", "-p", "{tmf}", "-o", "{out}"]),
    (tracefmt.entry, ["tracefmt", "{etl}", "-p", "{tmf}", "-o", "{out}", "-nosummary"]),
])
def test_command_freezes_what_it_made(entry, argv, fmt_data, fmt_tmf, tmp_path, monkeypatch,
                                      unfrozen):
    out = tmp_path / "out.txt"
    values = {"etl": fmt_data / "wppstr-sample.etl", "tmf": fmt_tmf, "out": out}
    monkeypatch.setattr(sys, "argv", [a.format(**values) for a in argv])
    assert entry() == 0
    assert gc.get_freeze_count() > 0
    assert "strtrace name=alpha id=0 tag=END" in out.read_text()


def test_main_leaves_the_collector_alone(fmt_data, fmt_tmf, tmp_path, unfrozen):
    threshold = gc.get_threshold()
    assert cli.main(["fmt", str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf),
                     "-o", str(tmp_path / "out.txt")]) == 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == threshold


def test_console_scripts_are_the_entries():
    scripts = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"]
    assert scripts["wpptrace"] == "wpptrace.cli:command"
    assert scripts["tracefmt"] == "wpptrace.decoder.tracefmt:command"


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)


_ENDS = """
import atexit, sys, threading
from wpptrace.cli import ended
go = threading.Event()
def late():
    go.wait()
    print("thread ended")
threading.Thread(target=late).start()
atexit.register(print, "atexit ran")
sys.stdout.write("unflushed;")
go.set()
ended(3)
"""


def test_ended_joins_threads_runs_atexit_and_flushes():
    done = _python(_ENDS)
    assert done.returncode == 3
    assert done.stdout == "unflushed;thread ended\natexit ran\n"


def test_ended_leaves_an_unflushable_stream_to_the_interpreters_exit():
    done = _python("import sys\nfrom wpptrace.cli import ended\n"
                   "class Full:\n"
                   "    def write(self, text): return len(text)\n"
                   "    def flush(self): raise OSError(28, 'No space left on device')\n"
                   "sys.stdout = Full()\nended(0)\n")
    assert done.returncode == 120
    assert "No space left on device" in done.stderr


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_fmt_command_ends_with_its_whole_output_and_status(fmt_data, fmt_tmf, tmp_path, jobs):
    etl = fmt_data / "wppstr-sample.etl"
    expected = tmp_path / "expected.txt"
    assert cli.main(["fmt", str(etl), "-p", str(fmt_tmf), "-o", str(expected)]) == 0
    code = "from wpptrace.cli import command\ncommand()\n"
    done = _python(code, "fmt", str(etl), "-p", str(fmt_tmf), "-o", "-", "-j", jobs)
    assert done.returncode == 0, done.stderr
    assert done.stdout == expected.read_text()
    missing = _python(code, "fmt", str(tmp_path / "missing.etl"), "-p", str(fmt_tmf), "-o", "-")
    assert missing.returncode == 1
    assert "missing.etl" in missing.stderr
