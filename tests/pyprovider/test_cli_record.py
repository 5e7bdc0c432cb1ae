"""``wpptrace session record`` runs a script as ``python script.py`` would; ``wpptrace --version``,
``python -m wpptrace`` and ``tracefmt --help`` work."""
from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import textwrap
import uuid

from wpptrace import __version__

APP = textwrap.dedent("""
    import pickle, sys
    import sibling                     # beside the script: sys.path[0] is the script's directory
    from wpptrace.provider.tracing import Provider

    trace = Provider("RecordApp", flags=("IO",))

    class Job:                         # picklable only if this module is sys.modules["__main__"]
        pass

    assert sys.modules["__main__"].Job is Job
    pickle.loads(pickle.dumps(Job()))
    trace.info(trace.flags.IO, "sibling says %s, args %s, name %s", sibling.WORD, sys.argv[1:], __name__)
    print("path0", sys.path[0])
    sys.exit(int(sys.argv[1]))
""")


def record(tmp_path: pathlib.Path, script: pathlib.Path, *args: str) -> tuple[subprocess.CompletedProcess, pathlib.Path]:
    out = tmp_path / "out.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace", "session", "record", "-o", str(out), "--",
                           str(script), *args], capture_output=True, text=True, cwd=tmp_path)
    return proc, out


def test_record_runs_the_script_like_python(tmp_path, pp):
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "sibling.py").write_text("WORD = 'hello'\n")
    script = app_dir / "main.py"
    script.write_text(APP)
    proc, out = record(tmp_path, script, "7", "x y")
    assert proc.returncode == 7, proc.stderr
    assert f"path0 {app_dir.resolve()}" in proc.stdout
    assert "0 events lost" in proc.stderr
    tmf = tmp_path / "tmf"
    assert subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", str(script), "-o", str(tmf),
                           "--no-registry"], capture_output=True).returncode == 0
    assert pp.decode_lines(out, tmf, tmp_path) == ["sibling says hello, args ['7', 'x y'], name __main__"]


def test_a_script_named_relative_to_the_current_directory(tmp_path, pp):
    """As ``python app.py``: __file__ and the code's file name are absolute (sys.argv[0] stays as
    given), so a script that changes directory still finds its call sites."""
    script = tmp_path / "chdir_app.py"
    script.write_text(textwrap.dedent("""
        import os, sys
        from wpptrace.provider.tracing import Provider
        trace = Provider("ChdirApp", flags=("IO",), strict=True)
        print(__file__, sys.argv[0])
        os.chdir(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        trace.info(trace.flags.IO, "after chdir %d", 1)
    """))
    python = subprocess.run([sys.executable, script.name], capture_output=True, text=True, cwd=tmp_path)
    assert python.stdout.split() == [str(script), script.name]
    proc, out = record(tmp_path, pathlib.Path(script.name))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == python.stdout
    tmf = tmp_path / "tmf"
    assert subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", str(script), "-o", str(tmf),
                           "--no-registry"], capture_output=True).returncode == 0
    assert pp.decode_lines(out, tmf, tmp_path) == ["after chdir 1"]


def test_a_missing_script_is_one_line_and_leaves_no_etl(tmp_path):
    proc, out = record(tmp_path, tmp_path / "nope.py")
    assert proc.returncode == 2
    assert proc.stderr == f"wpptrace session record: error: {tmp_path / 'nope.py'}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)\n"
    assert not out.exists()


def test_a_script_that_does_not_compile_leaves_no_etl(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("def f(:\n")
    proc, out = record(tmp_path, script)
    assert proc.returncode == 1
    assert "SyntaxError" in proc.stderr and f'File "{script}", line 1' in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()


def test_exit_with_a_message_prints_it_and_returns_1(tmp_path):
    script = tmp_path / "bye.py"
    script.write_text("import sys\nsys.exit('bye now')\n")
    proc, _out = record(tmp_path, script)
    assert proc.returncode == 1 and proc.stderr.startswith("bye now\n")
    script.write_text("raise SystemExit\n")
    assert record(tmp_path, script)[0].returncode == 0


def test_version_module_entry_and_tracefmt_help():
    for command in (["wpptrace", "--version"], [sys.executable, "-m", "wpptrace", "--version"]):
        proc = subprocess.run(command, capture_output=True, text=True)
        assert (proc.returncode, proc.stdout) == (0, f"wpptrace {__version__}\n")
    proc = subprocess.run(["tracefmt", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("usage: tracefmt")


def test_exception_records_carry_their_level(tmp_path, pp):
    """A logged exception's traceback is written at the record's level (not 'record.levelno')."""
    app = tmp_path / "exc_app.py"
    app.write_text(textwrap.dedent("""
        import logging
        from wpptrace.provider.logging_handler import WppHandler
        log = logging.getLogger("exc")
        log.addHandler(WppHandler("ExcApp"))
        log.setLevel(logging.DEBUG)
        try:
            1 / 0
        except ZeroDivisionError:
            log.warning("careful with %s", "zero", exc_info=True)
            log.exception("failed")
    """))
    out = tmp_path / "exc.etl"
    proc = subprocess.run([sys.executable, "-m", "wpptrace", "session", "record", "-o", str(out), "--", str(app)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    tmf = tmp_path / "tmf"
    gen = subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", str(app), "-o", str(tmf)],
                         capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    rows = subprocess.run([sys.executable, "-m", "wpptrace", "fmt", str(out), "-p", str(tmf), "-f", "jsonl"],
                          capture_output=True, text=True, check=True).stdout.splitlines()
    records = [json.loads(r) for r in rows][1:]
    assert [(r["level"], r["text"].splitlines()[0]) for r in records] == [
        ("TRACE_LEVEL_WARNING", "careful with zero"),
        ("TRACE_LEVEL_WARNING", "Traceback (most recent call last):"),
        ("TRACE_LEVEL_ERROR", "failed"),
        ("TRACE_LEVEL_ERROR", "Traceback (most recent call last):"),
    ]
    assert records[1]["text"].endswith("ZeroDivisionError: division by zero")
    assert "record.levelno" not in "".join(rows)


def test_a_provider_that_cannot_be_enabled_is_one_line_and_exit_status_1(tmp_path):
    """The session is stopped from outside while the script runs, then the script registers
    a provider: recording it fails. The script runs on; that is said in one plain line (no
    traceback), and so is the session that had stopped; the status is 1 (the script's own
    when it failed)."""
    script = tmp_path / "late.py"
    script.write_text(textwrap.dedent("""
        import sys
        from wpptrace.provider import api
        from wpptrace.provider.tracing import Provider
        api.ControlTrace(0, sys.argv[2], None, 1)      # as `wpptrace session stop NAME`
        trace = Provider("LateApp", guid="6a1c52e0-8f0e-4d0e-9b43-2f4f7c8a0d11")
        print("script done")
        sys.exit(int(sys.argv[1]))
    """))
    name = f"record-stopped-{uuid.uuid4().hex[:8]}"
    for status, expected in (("0", 1), ("3", 3)):
        out = tmp_path / f"late{status}.etl"
        proc = subprocess.run([sys.executable, "-m", "wpptrace", "session", "record", "--name",
                               name, "-o", str(out), str(script), status, name],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == expected, proc.stderr
        assert proc.stdout == "script done\n"
        assert proc.stderr.splitlines() == [
            "wpptrace session record: error: cannot record provider 6a1c52e0-8f0e-4d0e-9b43-2f4f7c8a0d11: "
            f"session {name} is no longer running (stopped by another command?)",
            f"wpptrace session record: error: session {name} had stopped before the script "
            f"ended (by another command?): {out} holds what it wrote until then"]


def test_flags_and_levels_out_of_range_are_usage_errors_before_any_session(tmp_path):
    """Enable flags are 32 bits and levels 8: a value beyond is refused as the option's error
    (status 2) before a session starts, so no empty .etl is left, instead of an EnableTrace
    failure after it (or every provider the script registers failing to be recorded)."""
    script = tmp_path / "ok.py"
    script.write_text("print('ran')\n")
    guid = "6a1c52e0-8f0e-4d0e-9b43-2f4f7c8a0d11"
    for option, message in ((["--level", "300"], "argument --level: level '300' is outside 0..0xff"),
                            (["--flags", "0x1ffffffff"],
                             "argument --flags: flags '0x1ffffffff' is outside 0..0xffffffff"),
                            (["--guid", f"{guid}:0x1:256"], "argument --guid: level '256' is outside 0..0xff"),
                            (["--guid", f"{guid}:zz"], "argument --guid: flags 'zz' is not a number")):
        out = tmp_path / "out.etl"
        proc = subprocess.run([sys.executable, "-m", "wpptrace", "session", "record", "-o", str(out),
                               *option, str(script)], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2, (option, proc.stderr)
        assert proc.stderr.splitlines()[-1] == f"wpptrace session record: error: {message}"
        assert proc.stdout == "" and not out.exists()


TRACED = textwrap.dedent("""
    from wpptrace.provider.tracing import Provider
    trace = Provider("StreamApp", flags=("IO",))
    trace.info(trace.flags.IO, "traced %d", 1)
    print("the script ran")
""")


def _record_to(tmp_path: pathlib.Path, output: str, **popen) -> subprocess.CompletedProcess:
    script = tmp_path / "app.py"
    script.write_text(TRACED)
    popen.setdefault("stdout", subprocess.PIPE)
    popen.setdefault("stderr", subprocess.PIPE)
    return subprocess.run([sys.executable, "-m", "wpptrace", "session", "record", "-o", output, str(script)],
                          stdin=subprocess.DEVNULL, cwd=tmp_path, timeout=120, **popen)


def test_a_stream_as_the_output_is_refused_before_the_script_runs(tmp_path):
    """An .etl is written by its path (by the session's host process, whose /dev/stdout is not
    this one's) and its header rewritten as it grows: ``-o /dev/stdout`` failed with the core's
    ERROR_ACCESS_DENIED as a Python error, and ``-o -`` made a file named "-"."""
    for output in ("/dev/stdout", "-", "/dev/fd/1", "/proc/self/fd/1"):
        proc = _record_to(tmp_path, output)
        assert proc.returncode == 1 and proc.stdout == b""
        assert proc.stderr.decode() == (
            f"wpptrace session record: error: cannot record to {output}: an .etl file is written by "
            f"its path and its header rewritten as buffers are added; give a file (-o FILE.etl)\n")
        with open(tmp_path / "log", "wb") as log:                     # stdout a file: the same
            proc = _record_to(tmp_path, output, stdout=log)
        assert proc.returncode == 1 and b"cannot record to" in proc.stderr
        assert (tmp_path / "log").read_bytes() == b""
        assert sorted(os.listdir(tmp_path)) == ["app.py", "log"]


def test_the_file_stdout_or_stderr_goes_to_is_refused(tmp_path):
    """``record -o rec.etl app.py > rec.etl``: the script's prints would go into the .etl."""
    rec = tmp_path / "rec.etl"
    for stream, said in (("stdout", "standard output"), ("stderr", "standard error")):
        with open(rec, "ab") as redirected:
            proc = _record_to(tmp_path, "rec.etl", **{stream: redirected})
        refusal = (f"wpptrace session record: error: refusing to write rec.etl: <{said}> is the same file; "
                   f"nothing was written\n").encode()
        assert proc.returncode == 1
        if stream == "stdout":                                     # (the script did not run)
            assert proc.stderr == refusal and rec.read_bytes() == b""
        else:
            assert proc.stdout == b"" and rec.read_bytes() == refusal
        rec.unlink()
    proc = _record_to(tmp_path, "rec.etl")                            # a file of its own: recorded
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b"the script ran\n" and rec.stat().st_size > 0


def test_a_path_the_core_refuses_is_said_in_one_line(tmp_path):
    proc = _record_to(tmp_path, os.devnull)
    assert proc.returncode == 1 and proc.stdout == b""
    assert proc.stderr.decode() == ("wpptrace session record: error: /dev/null: cannot use it as the log "
                                    "file (ERROR_BAD_PATHNAME): it is not a regular file\n")


def test_a_runtime_directory_not_usable_is_said_as_session_start_says_it(tmp_path):
    """The core refuses a runtime directory that is a symbolic link (ERROR_ACCESS_DENIED, as
    for a log file it cannot create): the directory is named, not the .etl, before the script runs."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(real)
    env = {**os.environ, "WPPTRACE_RUNTIME_DIR": str(tmp_path / "link")}
    proc = _record_to(tmp_path, "rec.etl", env=env)
    assert proc.returncode == 1 and proc.stdout == b""
    start = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", "rt-check", "-f",
                            str(tmp_path / "s.etl")], capture_output=True, env=env, timeout=120)
    said = start.stderr.decode().removeprefix("wpptrace session start: error: ")
    assert start.returncode == 1 and said.startswith(f"the runtime directory {tmp_path / 'link'} is not usable: ")
    assert proc.stderr.decode() == f"wpptrace session record: error: {said}"
    assert sorted(os.listdir(tmp_path)) == ["app.py", "link", "real"]
