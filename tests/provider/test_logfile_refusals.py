"""A session's log file is opened without following a link and used only if it is a regular
file of this user; nothing of an existing file changes before those checks."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error

L = P._lib
NOBODY = 65534


def _props(path) -> P.EVENT_TRACE_PROPERTIES:
    return P.EVENT_TRACE_PROPERTIES(BufferSize=4, MinimumBuffers=2, MaximumBuffers=4,
                                    LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL, LogFileName=str(path))


def _start_code(session_name: str, path) -> int:
    with pytest.raises(Win32Error) as err:
        P.StartTrace(session_name, _props(path))
    return err.value.winerror


def _victim(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious data\n")
    os.chmod(victim, 0o644)
    return victim


def _unchanged(victim) -> bool:
    return victim.read_bytes() == b"precious data\n" and stat.S_IMODE(victim.stat().st_mode) == 0o644


def test_a_planted_link_is_refused_and_its_target_kept(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "trace.etl"
    link.symlink_to(victim)
    assert _start_code(session_name, link) == L.ERROR_ACCESS_DENIED
    assert _unchanged(victim) and link.is_symlink()


def test_a_dangling_link_is_refused_and_nothing_is_made(session_name, tmp_path):
    target = tmp_path / "made.etl"
    link = tmp_path / "trace.etl"
    link.symlink_to(target)
    assert _start_code(session_name, link) == L.ERROR_ACCESS_DENIED
    assert not target.exists()


def test_a_fifo_is_refused_at_once(session_name, tmp_path):
    fifo = tmp_path / "trace.etl"
    os.mkfifo(fifo, 0o600)
    assert _start_code(session_name, fifo) == L.ERROR_BAD_PATHNAME


@pytest.mark.skipif(os.geteuid() != 0, reason="a file of another user needs root to make")
def test_a_file_of_another_user_is_refused_and_kept(session_name, tmp_path):
    victim = _victim(tmp_path)
    os.chown(victim, NOBODY, NOBODY)
    assert _start_code(session_name, victim) == L.ERROR_ACCESS_DENIED
    assert _unchanged(victim) and victim.stat().st_uid == NOBODY


def test_switching_to_a_planted_link_is_refused(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "next.etl"
    link.symlink_to(victim)
    with TraceSession(session_name, tmp_path / "first.etl") as s:
        props = s.query()
        props.LogFileName = str(link)
        with pytest.raises(Win32Error) as err:
            P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE)
        assert err.value.winerror == L.ERROR_ACCESS_DENIED
        assert s.query().LogFileName == str(tmp_path / "first.etl")
    assert _unchanged(victim)


def test_an_own_file_is_emptied_and_made_private(session_name, tmp_path):
    old = tmp_path / "old.etl"
    old.write_bytes(b"x" * 100000)
    os.chmod(old, 0o644)
    with TraceSession(session_name, old):
        pass
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert old.read_bytes()[:100000].count(b"x") < 1000        # a new trace, not the old bytes after it


def test_the_session_command_says_why_in_one_line(session_name, tmp_path):
    victim = _victim(tmp_path)
    link = tmp_path / "trace.etl"
    link.symlink_to(victim)
    cli = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", session_name, "-f", str(link)],
                         capture_output=True, text=True, timeout=60)
    assert cli.returncode == 1 and _unchanged(victim)
    lines = cli.stderr.strip().splitlines()
    assert len(lines) == 1 and str(link) in lines[0] and "ERROR_ACCESS_DENIED" in lines[0]
    assert "symbolic link" in lines[0]
