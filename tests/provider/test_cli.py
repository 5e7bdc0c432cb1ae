"""``wpptrace session record``: a script's providers recorded into an .etl file."""
from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import uuid

import provider_etlcheck as etlcheck
import pytest

from wpptrace.cli import main

PATIENCE = 60.0   # seconds a host is given to end after its caller

SCRIPT = textwrap.dedent("""
    import sys, uuid
    import wpptrace.provider as P
    control = uuid.UUID(sys.argv[1])
    state = {"logger": 0, "flags": None}
    def callback(code, context, buffer):
        state["logger"] = P.GetTraceLoggerHandle(buffer) if code == P.WMI_ENABLE_EVENTS else 0
        state["flags"] = P.GetTraceEnableFlags(state["logger"]) if state["logger"] else None
        return 0
    P.RegisterTraceGuids(callback, None, control, [])
    for word in sys.argv[2:] if state["logger"] else ():
        P.TraceMessage(state["logger"], 0x2B, control, 10, word.encode() + b"\\0")
    print("flags", state["flags"])
    sys.exit(3)
""")


def record(tmp_path, *options):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    control = uuid.uuid4()
    out = tmp_path / "out.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o", str(out),
                           *[o.replace("CONTROL", str(control)) for o in options], "--",
                           str(script), str(control), "alpha", "beta"], capture_output=True, text=True)
    return proc, out, control


def test_record_enables_providers_the_script_registers(tmp_path):
    proc, out, control = record(tmp_path)
    assert proc.returncode == 3, proc.stderr          # the script's exit code
    assert "flags 4294967295" in proc.stdout and "0 events lost" in proc.stderr
    messages = etlcheck.time_order(etlcheck.read(out))
    assert [m.args for m in messages] == [b"alpha\0", b"beta\0"] and messages[0].guid == control


def test_record_enables_only_the_given_guid_with_its_flags(tmp_path):
    proc, out, control = record(tmp_path, "--guid", "CONTROL:0x30:4")
    assert "flags 48" in proc.stdout, proc.stderr
    assert len(etlcheck.read(out).messages) == 2
    proc, out, _ = record(tmp_path, "--guid", str(uuid.uuid4()))
    assert "flags None" in proc.stdout and etlcheck.read(out).messages == []


def test_script_exception_shows_its_traceback_and_the_session_still_stops(tmp_path):
    # Regression: an exception in the recorded script printed only "wpptrace session: error: boom"
    # (no file, no line) and skipped the session summary, which names the command as its other lines do.
    script = tmp_path / "crash.py"
    script.write_text("def work():\n    raise RuntimeError('boom')\n\nwork()\n")
    out = tmp_path / "out.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o", str(out),
                           "--", str(script)], capture_output=True, text=True)
    assert proc.returncode == 1
    err = proc.stderr
    assert err.startswith("Traceback (most recent call last):\n")
    assert f'File "{script}", line 4, in <module>' in err and f'File "{script}", line 2, in work' in err
    assert "RuntimeError: boom" in err and "runpy" not in err
    assert f"wpptrace session record: {out}: 1 buffers written" in err and out.exists()


def test_record_help_states_the_real_defaults(capsys):
    # Regression: --help said the output defaulted to "SESSION.etl" (it is <session name>.etl),
    # never said that without --guid every registering provider is enabled, and left the buffer
    # options undescribed.
    with pytest.raises(SystemExit) as info:
        main(["session", "record", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "SESSION.etl" not in text and "(default: <session name>.etl)" in text
    assert "default: every provider the script registers" in text
    for option, default in (("--buffer-size KB", "64"), ("--min-buffers N", "0"),
                            ("--max-buffers N", "256"), ("--flush-timer SECONDS", "1")):
        assert option in text and f"(default: {default})" in text


@pytest.mark.parametrize("kind", ["directory", "fifo"])
def test_a_script_that_is_no_file_is_refused_before_a_session_starts(tmp_path, kind):
    # a directory without __main__.py printed runpy's traceback after recording an empty
    # session; a FIFO's open waited forever for a writer
    import os

    script = tmp_path / "script"
    if kind == "directory":
        script.mkdir()
        said = f"{script}: is a directory with no __main__.py: give the script or its directory"
    else:
        os.mkfifo(script)
        said = f"{script}: not a regular file (a device, pipe or socket): give the script"
    out = tmp_path / "r.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o", str(out),
                           "--", str(script)], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == f"wpptrace session record: error: {said}\n"
    assert not out.exists()


def test_a_directory_with_main_is_run_as_python_runs_it(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "__main__.py").write_text("import sys; print('ran', sys.argv[1:]); sys.exit(4)\n")
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o",
                           str(tmp_path / "r.etl"), "--", str(app), "x"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert (proc.returncode, proc.stdout) == (4, "ran ['x']\n"), proc.stderr


PRINTING_APP = textwrap.dedent("""
    import sys
    print("hello from the app")
    sys.stderr.write(f"app: stdout is {type(sys.stdout).__name__}; finished\\n")
""")


def _closed_stdout():
    import os

    os.close(1)


def _full_stdout():
    import os

    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, 1)
    os.close(full)


@pytest.mark.parametrize("stdout", ["closed", "full"])
def test_the_script_gets_the_standard_output_python_gives_it(tmp_path, stdout):
    # Regression: with descriptor 1 closed, the recorded script's print() raised wpptrace's own
    # "standard output: cannot write" error into the script (a traceback, exit 1) where python
    # drops it; on a full disk the script's failed write was said as wpptrace's, not as the
    # script's OSError.
    import os

    if stdout == "full" and not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    script = tmp_path / "app.py"
    script.write_text(PRINTING_APP)
    out = tmp_path / "r.etl"
    run = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
               timeout=60, cwd=tmp_path, preexec_fn=_closed_stdout if stdout == "closed" else _full_stdout)
    python = subprocess.run([sys.executable, str(script)], **run)
    recorded = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o", str(out),
                               "--", str(script)], **run)
    assert recorded.returncode == python.returncode, recorded.stderr
    summary = f"wpptrace session record: {out}: 1 buffers written, 0 events lost, 0 buffers lost\n"
    assert recorded.stderr == python.stderr + summary and out.exists()
    if stdout == "closed":     # (python drops a print to a closed standard output)
        assert python.stderr == "app: stdout is NoneType; finished\n"


def test_a_directory_with_a_sourceless_main_is_run_as_python_runs_it(tmp_path):
    # Regression: a directory holding __main__.pyc only (no __main__.py) was refused as "a
    # directory with no __main__.py", though python (and runpy, which record calls) runs it
    import py_compile

    app = tmp_path / "app"
    app.mkdir()
    source = tmp_path / "main_source.py"
    source.write_text("import sys; print('ran', sys.argv[1:]); sys.exit(4)\n")
    py_compile.compile(str(source), cfile=str(app / "__main__.pyc"), doraise=True)
    assert [p.name for p in app.iterdir()] == ["__main__.pyc"]
    run = dict(capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert subprocess.run([sys.executable, str(app), "x"], **run).stdout == "ran ['x']\n"
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o",
                           str(tmp_path / "r.etl"), "--", str(app), "x"], **run)
    assert (proc.returncode, proc.stdout) == (4, "ran ['x']\n"), proc.stderr


def test_an_interrupted_script_shows_only_its_own_frames(tmp_path):
    # Ctrl-C printed the KeyboardInterrupt traceback through wpptrace's own frames
    script = tmp_path / "s.py"
    script.write_text("def wait():\n    raise KeyboardInterrupt\nwait()\n")
    out = tmp_path / "r.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "-o", str(out), "--",
                           str(script)], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 130, proc.stderr
    lines = proc.stderr.split("Traceback (most recent call last):\n", 1)[1].splitlines()
    # the script's frames only (Python 3.13 adds a line of carets under a call: its own text)
    assert [line for line in lines if line.startswith("  File ")] == [
        f'  File "{script}", line 3, in <module>', f'  File "{script}", line 2, in wait']
    assert lines[lines.index("    raise KeyboardInterrupt") + 1] == "KeyboardInterrupt"
    assert out.exists()


ENDS_ABRUPTLY = textwrap.dedent("""
    import os, signal, sys
    from wpptrace.provider import sessions
    print("host", sessions.session_info(sys.argv[1]).host_pid, flush=True)
    if sys.argv[2] == "_exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGTERM)
""")


@pytest.mark.parametrize("how, code", [("_exit", 3), ("SIGTERM", -signal.SIGTERM)])
def test_a_script_ending_without_returning_ends_the_session_with_it(tmp_path, session_name, how, code):
    # Regression: a script that ended by os._exit or a signal skipped record's stop, and left the
    # session and its host running for good (holding a LoggerId and the providers' enables, the
    # .etl never completed). The host now watches the record process and stops the session then.
    from wpptrace.provider import api, sessions

    script = tmp_path / "abrupt.py"
    script.write_text(ENDS_ABRUPTLY)
    out = tmp_path / "abrupt.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace.cli", "session", "record", "--name", session_name,
                           "-o", str(out), "--", str(script), session_name, how],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    try:
        assert proc.returncode == code, proc.stderr
        assert proc.stderr == ""                       # as python's: record never got to say anything
        host = int(proc.stdout.split()[1])
        try:
            watch = os.pidfd_open(host)
        except ProcessLookupError:
            pass                                       # already ended
        else:
            try:   # (a bound on the wait, so that a host that never ends fails the test)
                assert select.select([watch], [], [], PATIENCE)[0], f"the session's host {host} runs on"
            finally:
                os.close(watch)
        assert session_name not in [props.LoggerName for props, _info in sessions.list_sessions()]
        header = etlcheck.read(out).header
        assert header["EndTime"] >= header["StartTime"] > 0      # stopped cleanly: the file completed
    finally:
        try:   # never leave a session behind, whatever failed
            api.ControlTrace(0, session_name, None, 1)   # EVENT_TRACE_CONTROL_STOP
        except OSError:
            pass


@pytest.mark.parametrize("argv, said", [
    (["tracelog", "-start", "n", "-f", "{etl}", "-ft", "-1"], "tracelog: error: -ft -1: expected 0 to 4294967295 seconds"),
    (["tracelog", "-start", "n", "-f", "{etl}", "-b", "99999"], "tracelog: error: -b 99999: expected 0 to 16384 KB"),
    (["tracelog", "-start", "n", "-f", "{etl}", "-cir", str(2 ** 64)],
     f"tracelog: error: -cir {2 ** 64}: expected 0 to 4294967295 MB"),
    (["session", "start", "n", "-f", "{etl}", "--max-buffers", "-1"],
     "wpptrace session start: error: --max-buffers -1: expected 0 to 4294967295 buffers"),
    (["session", "record", "--buffer-size", "1048576", "-o", "{etl}", "--", "{script}"],
     "wpptrace session record: error: --buffer-size 1048576: expected 0 to 16384 KB"),
    # update passed these on to the core: "cannot update to these settings", exit 1 (checked
    # first here: no session "n" is needed to say so)
    (["session", "update", "n", "--flush-timer", "-1"],
     "wpptrace session update: error: --flush-timer -1: expected 0 to 4294967295 seconds"),
    (["session", "update", "n", "--max-buffers", str(2 ** 64)],
     f"wpptrace session update: error: --max-buffers {2 ** 64}: expected 0 to 4294967295 buffers"),
    (["tracelog", "-update", "n", "-ft", "-1"], "tracelog: error: -ft -1: expected 0 to 4294967295 seconds"),
])
def test_a_session_setting_out_of_range_names_its_option_and_range(tmp_path, capsys, argv, said):
    # every such value was "invalid session settings (ERROR_INVALID_PARAMETER): buffer size
    # 1..16384 KB, at most 65536 buffers ..." (tracelog) or "The parameter is incorrect" (record)
    from wpptrace.provider import tracelog

    script = tmp_path / "s.py"
    script.write_text("pass\n")
    argv = [a.format(etl=tmp_path / "x.etl", script=script) for a in argv]
    rc = tracelog.main(argv[1:]) if argv[0] == "tracelog" else main(argv)
    assert rc == 2
    assert capsys.readouterr().err == said + "\n"
    assert not (tmp_path / "x.etl").exists()
