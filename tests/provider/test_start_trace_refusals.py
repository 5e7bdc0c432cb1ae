"""StartTrace's errors name the log file only when the file is what was refused: a runtime
directory that is not private to the user is said so, as the session CLI says it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from provider_scripts import run_script

_START = """
    out = sys.argv[2]
    try:
        P.StartTrace("refusals", props("app"))
        print("started")
    except P.Win32Error as exc:
        print(exc.name)
        print(exc.filename)
        print(str(exc))
"""


def _start(runtime, out) -> list[str]:
    done = run_script(_START, runtime, out)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_a_runtime_directory_open_to_others_is_said_so_not_blamed_on_the_log_file(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir()
    os.chmod(runtime, 0o755)
    name, filename, text = _start(runtime, tmp_path)
    assert name == "ERROR_ACCESS_DENIED", text
    assert filename == "None" and "app.etl" not in text, text
    assert (f"the runtime directory {runtime} is not usable: its mode is 0755; it must be private "
            f"to this user (0700)") in text, text


def test_a_refused_log_file_is_named(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    os.mkfifo(tmp_path / "app.etl")      # never a session's log file
    name, filename, text = _start(runtime, tmp_path)
    assert name in ("ERROR_ACCESS_DENIED", "ERROR_BAD_PATHNAME"), text
    assert filename == str(tmp_path / "app.etl") and text.count("app.etl") == 1, text
    assert "runtime directory" not in text, text


@pytest.mark.parametrize("kind", ["directory", "symlink"])
def test_a_registry_that_is_not_a_file_is_said_so_not_blamed_on_the_log_file(tmp_path, kind):
    """The runtime directory itself is fine but its registry is a directory or a symbolic link:
    StartTrace named the log file ("app.etl: The specified path is invalid") and session start
    the same, though the runtime directory's check knew the cause. Both now say it."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    registry = runtime / "registry"
    if kind == "directory":
        registry.mkdir()
        why = f"its registry {registry} is not a file (remove it)"
    else:
        registry.symlink_to(tmp_path / "elsewhere")
        why = f"its registry {registry} is a symbolic link; it must be a file of this user (remove it)"
    refused = f"the runtime directory {runtime} is not usable: {why}"
    name, filename, text = _start(runtime, tmp_path)
    assert name == "ERROR_BAD_PATHNAME", text
    assert filename == "None" and "app.etl" not in text, text
    assert text.endswith(f"StartTrace('refusals'): {refused}"), text
    res = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", "refusals", "-f",
                          str(tmp_path / "cli.etl")], env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)),
                         capture_output=True, text=True, timeout=60)
    assert (res.returncode, res.stderr.splitlines()) == (1, [f"wpptrace session start: error: {refused}"])
    assert not (tmp_path / "cli.etl").exists() and not (tmp_path / "app.etl").exists()


def _spoil(registry, kind: str) -> None:
    if kind == "size":          # another version's registry (another size)
        os.truncate(registry, 1000)
    elif kind == "header":      # its size, another header (or damaged)
        with open(registry, "r+b") as f:
            f.write(b"\xff" * 64)
    else:
        os.chmod(registry, 0o644)


@pytest.mark.parametrize("kind", ["size", "header", "mode"])
def test_a_registry_the_core_cannot_use_is_named_by_start_and_list(tmp_path, kind):
    """A registry of another wpptrace version (or damaged), or not private: StartTrace named the
    log file (ERROR_BAD_FORMAT "app.etl: An attempt was made to load a program with an incorrect
    format"), session start no remedy, and session list said "no session is running", exit 0.
    Each now says what is wrong with the registry, naming it; the registry is left as it was."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    assert _start(runtime, tmp_path)[0] == "started"        # the registry made by this version
    registry = runtime / "registry"
    _spoil(registry, kind)
    spoiled = registry.read_bytes()
    if kind == "mode":
        code, why = "ERROR_ACCESS_DENIED", (f"its registry {registry} has mode 0644; it must be private to "
                                            f"this user (0600: chmod 600 it)")
    else:
        code, why = "ERROR_BAD_FORMAT", (f"its registry {registry} was made by another wpptrace version "
                                         f"(or is damaged): stop its sessions with that version, or remove it")
    refused = f"the runtime directory {runtime} is not usable: {why}"
    (tmp_path / "app.etl").unlink()
    name, filename, text = _start(runtime, tmp_path)
    assert name == code, text
    assert filename == "None" and "app.etl" not in text, text
    assert text.endswith(f"StartTrace('refusals'): {refused}"), text

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "wpptrace", "session", *args], env=env,
                              capture_output=True, text=True, timeout=60)
    res = cli("start", "refusals", "-f", str(tmp_path / "cli.etl"))
    assert (res.returncode, res.stderr.splitlines()) == (1, [f"wpptrace session start: error: {refused}"])
    res = cli("list")
    assert res.returncode == 1 and "no session" not in res.stdout + res.stderr, res
    assert res.stderr.splitlines()[0].startswith("wpptrace session list: error: ") and refused in res.stderr, res
    res = cli("query", "refusals")
    assert res.returncode == 1 and "no session" not in res.stderr and refused in res.stderr, res
    assert not (tmp_path / "cli.etl").exists() and not (tmp_path / "app.etl").exists()
    assert registry.read_bytes() == spoiled


_REFUSAL_AND_START = """
    from wpptrace.provider._hazmat import ffi, lib
    out = sys.argv[2]
    why = ffi.new("char[]", 8192)
    print(lib.wpptrace_registry_refusal(why, len(why)))
    print(ffi.string(why).decode())
    try:
        P.StartTrace("refusals", props("app"))
        print(0)
    except P.Win32Error as exc:
        print(exc.winerror)
"""


def _make_unusable_registry(runtime, kind: str) -> None:
    registry = runtime / "registry"
    if kind in ("size", "header", "mode", "owner"):
        (runtime.parent / "made").mkdir()
        assert _start(runtime, runtime.parent / "made")[0] == "started"    # made by this version
        if kind == "owner":
            os.chown(registry, 65534, 65534)
        else:
            _spoil(registry, kind)
    elif kind == "fifo":
        os.mkfifo(registry, 0o600)
    elif kind == "socket":
        import socket
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(registry))
        os.chmod(registry, 0o600)
    elif kind == "directory":
        registry.mkdir()
    else:
        registry.symlink_to(runtime / "elsewhere")


@pytest.mark.parametrize("kind", ["fifo", "socket", "directory", "symlink", "size", "header", "mode",
                                  pytest.param("owner", marks=pytest.mark.skipif(
                                      os.geteuid() != 0, reason="gives a file to another user"))])
def test_a_refused_registry_gives_start_the_code_its_words_are_said_for(tmp_path, kind):
    """StartTrace and the refusal query (the words `session list` says) look at the registry by
    one rule: the same code for every reason (a FIFO there was ERROR_ACCESS_DENIED to StartTrace
    but "not a file", ERROR_BAD_PATHNAME, to the words), and the list says those words."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    _make_unusable_registry(runtime, kind)
    done = run_script(_REFUSAL_AND_START, runtime, tmp_path)
    assert done.returncode == 0, done.stderr
    refusal_code, words, start_code = done.stdout.splitlines()
    assert int(refusal_code) != 0 and words.startswith(f"its registry {runtime / 'registry'} "), done.stdout
    assert int(start_code) == int(refusal_code), done.stdout
    res = subprocess.run([sys.executable, "-m", "wpptrace", "session", "list"],
                         env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)),
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and f"the runtime directory {runtime} is not usable: {words}" in res.stderr, res


_FILL_SLOTS = """
    out = sys.argv[2]
    started = 0
    for i in range(70):
        p = P.EVENT_TRACE_PROPERTIES(BufferSize=4, MinimumBuffers=2, MaximumBuffers=2,
                                     LogFileName=os.path.join(out, f"p{i}.etl"), LogFileMode=PRIVATE)
        try:
            P.StartTrace(f"P{i}", p)
            started += 1
        except P.Win32Error as exc:
            print(started)
            print(exc.name)
            print(exc.filename)
            print(str(exc))
            break
"""


def test_no_free_logger_id_is_said_so_not_blamed_on_memory_or_the_log_file(tmp_path):
    """Every LoggerId for sessions of the user taken (63; the 64th is the kernel logger's, free
    here and never given to another session): StartTrace said
    ERROR_NOT_ENOUGH_MEMORY and named the log file, though neither memory nor the file was
    short. Windows documents ERROR_NO_SYSTEM_RESOURCES for too many sessions."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    done = run_script(_FILL_SLOTS, runtime, tmp_path)
    assert done.returncode == 0, done.stderr
    started, name, filename, text = done.stdout.splitlines()
    assert (started, name, filename) == ("63", "ERROR_NO_SYSTEM_RESOURCES", "None"), text
    assert text == ("ERROR_NO_SYSTEM_RESOURCES (1450): Insufficient system resources exist to "
                    "complete the requested service. StartTrace('P63'): all 63 LoggerIds for "
                    "sessions of this user are in use (the 64th is the NT Kernel Logger's)"), text
    assert not (tmp_path / "p63.etl").exists()
