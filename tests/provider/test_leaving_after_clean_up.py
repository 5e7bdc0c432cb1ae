"""A process whose runtime directory a clean-up removed while it ran: stopping its sessions,
unregistering its providers and closing its endpoint (at exit, or any time later) do not make
the directory, or a registry in it, again; starting something new does."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import pytest

from provider_scripts import run_script

ERROR_WMI_INSTANCE_NOT_FOUND = 4201

_EXIT = """
    import shutil
    from wpptrace.provider.sessions import TraceSession, session_info
    runtime, out = sys.argv[1:3]

    def callback(code, context, buffer):
        return 0

    registration = P.RegisterTraceGuids(callback, None, GUID, [uuid.uuid4()])
    private = P.StartTrace("leaves-private", props("private"))      # stopped at exit
    P.EnableTrace(True, 0, 4, GUID, private)
    hosted = TraceSession("leaves-hosted", os.path.join(out, "hosted.etl"))   # stopped at exit
    host = session_info(handle=hosted.handle).host_pid
    shutil.rmtree(runtime)                   # a clean-up of /tmp: the host stops
    print(wait_gone(host), os.path.exists(runtime))
"""


def test_a_python_process_exiting_after_its_directory_was_removed_does_not_make_it_again(tmp_path):
    """Stopping its private session at exit made the directory again, with a registry, to free
    the session's entry there; the directory stayed behind, empty but for the registry."""
    runtime = tmp_path / "rt"
    done = run_script(_EXIT, runtime, tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
    assert not runtime.exists()


def test_a_c_program_leaving_after_its_directory_was_removed_does_not_make_it_again(
        build_c_program, out):
    """Each step of leaving is checked on its own (unregistering, stopping a private session and
    a hosted one, closing the endpoint), then a new session's start makes the directory again. A
    private session's STOP after another clean-up runs its provider's DISABLE callback, whose
    StartTrace found the directory refused, as for the STOP itself: it makes it again."""
    program = build_c_program("leave_after_clean_up")
    done = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "unregistered", "0", "there", "0",
        "private", "0", "there", "0",
        "hosted", "4201", "there", "0",
        "closed", "there", "0",
        "started", "0", "there", "1",
        "stopped", "0", "called", "0", "there", "1",
    ]


@pytest.fixture
def stop_after_clean_up(build_c_program_with_test_points, out):
    """run(mode) -> what stop_after_clean_up.c printed, as a dict of integers; its runtime
    directory this test's own."""
    program = build_c_program_with_test_points("stop_after_clean_up")

    def run(mode: str) -> dict[str, int]:
        done = subprocess.run([str(program), mode, str(out)], capture_output=True, text=True, timeout=90)
        assert done.returncode == 0, done.stderr
        words = done.stdout.split()
        return {words[i]: int(words[i + 1]) for i in range(0, len(words), 2)}
    return run


def test_a_stop_whose_directory_goes_after_the_lookup_finds_the_session_gone(stop_after_clean_up):
    """The STOP found its hosted session, then a clean-up removed the runtime directory before the
    request went (this process's ControlCallbacks run in between). The request's socket path
    needed the directory, which a STOP does not make again: the STOP failed with
    ERROR_BAD_PATHNAME and the session stayed mapped here. Now the session is gone, as its host
    went with the directory."""
    assert stop_after_clean_up("found") == {"stop": ERROR_WMI_INSTANCE_NOT_FOUND, "mapped": 0, "there": 0}


def test_a_stop_whose_check_misses_the_directory_finds_the_session_gone_though_it_is_made_again(
        build_c_program_with_test_points, tmp_path, monkeypatch):
    """As above, and the directory is made again (by any other process's start) between the
    STOP's check, which found it missing, and a second look by its name that decided whether it
    was missing: that look found it, and the STOP failed with ERROR_BAD_PATHNAME, its session
    left mapped. The check's own finding decides now. (The parent is renamed away while the
    check holds it open, so that the check misses the directory made again at the name.)"""
    runtime = tmp_path / "up" / "rt"
    runtime.mkdir(mode=0o700, parents=True)
    monkeypatch.setenv("WPPTRACE_RUNTIME_DIR", str(runtime))
    program = build_c_program_with_test_points("stop_after_clean_up")
    done = subprocess.run([str(program), "made-again", str(tmp_path)], capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["stop", str(ERROR_WMI_INSTANCE_NOT_FOUND), "mapped", "0"], done.stdout
    assert (tmp_path / "up.old").is_dir() and runtime.is_dir()      # the check missed it there


def test_a_child_forked_during_a_stop_makes_the_directory_again(stop_after_clean_up):
    """A process forked while a STOP ran (from a ControlCallback, say) kept the STOP's "do not make
    the directory again" for good: after a clean-up every start of the child failed."""
    assert stop_after_clean_up("fork") == {"stop": 0, "child": 0, "there": 1}



def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=60)


def test_the_session_commands_after_the_directory_was_removed_do_not_make_it_again(tmp_path, monkeypatch):
    """`wpptrace session stop` (and `tracelog -stop`) asked for the session's info before its
    STOP, and `query` and `list` looked the session up: each made the runtime directory again,
    with an empty registry, just to find no session there."""
    runtime = tmp_path / "rt"
    monkeypatch.setenv("WPPTRACE_RUNTIME_DIR", str(runtime))
    started = _run("wpptrace", "session", "start", "leaves-cli", "-f", str(tmp_path / "s.etl"))
    assert started.returncode == 0, started.stderr
    host = int(re.search(r"host process (\d+)", started.stdout).group(1))
    shutil.rmtree(runtime)                   # a clean-up of /tmp: the host stops
    deadline = time.monotonic() + 60
    while os.path.exists(f"/proc/{host}") and time.monotonic() < deadline:
        time.sleep(0.05)
    for command in (("wpptrace", "session", "stop", "leaves-cli"),
                    ("wpptrace.provider.tracelog", "-stop", "leaves-cli"),
                    ("wpptrace", "session", "query", "leaves-cli")):
        done = _run(*command)
        assert done.returncode != 0 and "no session named 'leaves-cli' is running" in done.stderr, (command, done)
        assert not runtime.exists(), command
    listed = _run("wpptrace", "session", "list")
    assert (listed.returncode, listed.stdout.strip()) == (0, "no session is running"), listed
    assert not runtime.exists()
