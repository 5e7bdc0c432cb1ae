"""A capture of a control GUID runs its session in a host process of its own: killed while it
captures (a hung test stopped by CI, a crashed xdist worker), the process that started it left
the session running for good, holding the provider and a LoggerId, writing every later run of
the provider into its file. The host now stops it when that process ends; a session of
``wpptrace session start`` still outlives the command that started it, as on Windows."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

PATIENCE = 20.0

_CAPTURING = textwrap.dedent("""
    import sys, time
    from wpptrace.provider._hazmat import lib
    from wpptrace.testing import capture
    lib.wpptrace_debug_watch_caller_by_polling(sys.argv[2] == "polling")
    with capture(sys.argv[1]) as cap:
        print(cap.session_name, cap.etl_path, flush=True)
        time.sleep(300)
""")


def _wpptrace(env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wpptrace", *args], capture_output=True, text=True,
                          timeout=PATIENCE, env=env)


def _running(env) -> str:
    listed = _wpptrace(env, "session", "list")
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


@pytest.mark.parametrize("watch", ["pidfd", "polling"])
def test_a_control_guid_capture_ends_with_the_process_killed_while_it_captures(tmp_path, watch):
    """The host watches the process that started it through a pidfd, or (none to be had: an
    old kernel, a sandbox) by its pid and start time each second; either way its log says the
    end once."""
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    starter = subprocess.Popen([sys.executable, "-c", _CAPTURING, str(uuid.uuid4()), watch], env=env,
                               stdout=subprocess.PIPE, text=True)
    etl = None
    try:
        name, etl = starter.stdout.readline().split()
        assert f"Logger Name:            {name}\n" in _running(env)     # in its host process
        starter.kill()
        starter.wait(timeout=PATIENCE)
        deadline = time.monotonic() + PATIENCE
        while name in _running(env) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert name not in _running(env)
        dumped = _wpptrace(env, "dump", etl)
        # stopped as STOP stops it: its file completed
        assert dumped.returncode == 0 and "did not stop cleanly" not in dumped.stderr, dumped.stderr
        log = "".join(p.read_text() for p in runtime.glob("s-*.log"))
        assert log.count(f"the process that started the session (pid {starter.pid}) ended: stopping") == 1, log
        assert (f"no pidfd for the process that started the session (pid {starter.pid})" in log) == (
            watch == "polling"), log
    finally:
        if starter.poll() is None:
            starter.kill()
            starter.wait()
        if etl is not None:
            _wpptrace(env, "session", "stop", name)
            shutil.rmtree(os.path.dirname(etl), ignore_errors=True)


def test_a_session_start_session_outlives_the_command_that_started_it(tmp_path):
    runtime = tmp_path / "rt"
    runtime.mkdir(mode=0o700)
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime))
    started = _wpptrace(env, "session", "start", "outlives", "-f", str(tmp_path / "outlives.etl"))
    assert started.returncode == 0, started.stderr
    try:
        assert "Logger Name:            outlives\n" in _running(env)
    finally:
        stopped = _wpptrace(env, "session", "stop", "outlives")
    assert stopped.returncode == 0 and stopped.stdout.startswith("session 'outlives' stopped: "), stopped
