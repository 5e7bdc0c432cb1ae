"""The console commands leave what they made to the process's end unscanned, and only they:
the functions a program calls leave its collector as it was. After fmt the command's process
ends without the interpreter's teardown, with what a normal exit does for its output."""
from __future__ import annotations

import atexit
import gc
import os
import subprocess
import sys
import threading
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


#: what makes a child's standard streams unbuffered, so that a missing flush would go unseen:
#: Python's own switch and stdbuf's (``stdbuf -oL pytest``: its variables and its preloaded library)
UNBUFFERING = ("PYTHONUNBUFFERED", "_STDBUF_I", "_STDBUF_O", "_STDBUF_E")


def _buffered_env() -> dict[str, str]:
    """This run's environment without what would make a child's streams unbuffered."""
    env = {name: value for name, value in os.environ.items() if name not in UNBUFFERING}
    if "libstdbuf" in env.get("LD_PRELOAD", ""):
        kept = [lib for lib in env.pop("LD_PRELOAD").replace(":", " ").split() if "libstdbuf" not in lib]
        if kept:
            env["LD_PRELOAD"] = " ".join(kept)
    return env


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = _buffered_env()
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120, env=env)


def test_the_child_environment_drops_stdbuf_and_keeps_other_preloads(monkeypatch):
    monkeypatch.setenv("PYTHONUNBUFFERED", "1")
    monkeypatch.setenv("_STDBUF_O", "L")
    monkeypatch.setenv("LD_PRELOAD", "/usr/libexec/coreutils/libstdbuf.so:/opt/other.so")
    env = _buffered_env()
    assert "PYTHONUNBUFFERED" not in env and "_STDBUF_O" not in env
    assert env["LD_PRELOAD"] == "/opt/other.so"
    monkeypatch.setenv("LD_PRELOAD", "/usr/libexec/coreutils/libstdbuf.so")
    assert "LD_PRELOAD" not in _buffered_env()


def test_the_child_streams_are_buffered():
    """A pipe's stdout is block-buffered in the child: what it wrote reaches the pipe only when
    flushed (here never: os._exit), whatever this test run's environment says."""
    done = _python("import os, sys\nsys.stdout.write('kept in the buffer')\n"
                   "assert not sys.stdout.write_through\nos._exit(0)\n")
    assert (done.returncode, done.stdout) == (0, ""), done.stderr


#: a line left in the C library's stdout buffer (a pipe's: fully buffered), which its exit()
#: writes out and os._exit does not: seen only after the interpreter's usual exit (an object's
#: __del__ would not do: the commands freeze every object, and the exit does not free frozen ones)
_C_EXIT = """
import ctypes
ctypes.CDLL(None).printf(b"C exit ran\\n")
"""

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


def test_the_finalize_steps_ended_borrows_exist():
    """ended() takes Py_FinalizeEx's first steps through these private functions; a Python
    without them would have ended() exit normally, and this says so."""
    assert callable(threading._shutdown)
    assert callable(atexit._run_exitfuncs)


@pytest.mark.parametrize("missing", ["threading._shutdown", "atexit._run_exitfuncs"])
def test_ended_without_a_finalize_step_exits_normally(missing):
    module = missing.split(".")[0]
    done = _python(f"import {module}\ndel {missing}\n" + _C_EXIT + _ENDS)
    assert done.returncode == 3, done.stderr
    # the interpreter's own exit: the C library's exit ran, as it does not after os._exit
    assert "C exit ran" in done.stdout
    assert "unflushed;" in done.stdout and "atexit ran\n" in done.stdout


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


def _console_script(name: str) -> str:
    """The code the installed ``name`` console script runs: its pyproject entry, called and
    exited with, as the script pip writes does."""
    module, function = tomllib.loads(PYPROJECT.read_text())["project"]["scripts"][name].split(":")
    return f"import sys\nfrom {module} import {function}\nsys.exit({function}())\n"


#: how each command is started: its console script, and ``python -m wpptrace`` (runpy, as -m)
STARTS = {
    "wpptrace": _console_script("wpptrace"),
    "tracefmt": _console_script("tracefmt"),
    "python -m wpptrace": "import runpy\nrunpy.run_module('wpptrace', run_name='__main__', alter_sys=True)\n",
}


FMT = ["fmt", "{etl}", "-p", "{tmf}", "-o", "-"]
DUMP = ["dump", "{etl}"]   # not in ENDS_WHEN_DONE: the interpreter's usual exit


@pytest.mark.parametrize("start, argv, exited", [
    ("wpptrace", FMT, False),
    ("wpptrace", ["--traceback", *FMT], False),
    ("python -m wpptrace", FMT, False),
    ("tracefmt", ["{etl}", "-p", "{tmf}", "-o", "-", "-nosummary"], False),
    ("wpptrace", DUMP, True),
    ("python -m wpptrace", DUMP, True),
], ids=["wpptrace-fmt", "wpptrace-option-fmt", "python-m-fmt", "tracefmt", "wpptrace-dump",
        "python-m-dump"])
def test_only_fmt_ends_without_the_teardown(start, argv, exited, fmt_data, fmt_tmf):
    values = {"etl": str(fmt_data / "wppstr-sample.etl"), "tmf": str(fmt_tmf)}
    done = _python(_C_EXIT + STARTS[start], *(a.format(**values) for a in argv))
    assert done.returncode == 0, done.stderr
    assert "strtrace" in done.stdout if argv[0] != "dump" else "2 buffers" in done.stdout
    assert ("C exit ran" in done.stdout) is exited
