"""The session writer leaves TRACE_LOGFILE_HEADER.EndTime at 0 until a clean stop writes it,
so a reader can tell a file whose writer died (killed, crashed, _exit) from a finished one.

It used to rewrite EndTime with the current time after every buffer: a file whose writer was
SIGKILLed in the middle of a session looked exactly like a stopped one. The rule (Windows
also leaves EndTime 0 in a file still being logged to) is in docs/unclean-stop.md.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession

WRITER = textwrap.dedent("""
    import os, signal, sys, time, uuid
    import wpptrace.provider as P
    from wpptrace.provider.sessions import TraceSession
    s = TraceSession("unclean-" + sys.argv[2], sys.argv[1], BufferSize=4,
                     LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING)
    for i in range(300):
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, i.to_bytes(4, "little"))
    s.flush()
    for i in range(300, 310):
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, i.to_bytes(4, "little"))
    how = sys.argv[3]
    if how == "exit":
        os._exit(0)
    if how == "stop":
        s.stop()
        sys.exit(0)
    print("ready", flush=True)
    time.sleep(60)                   # SIGKILLed here
""")


@pytest.fixture
def run_writer(request):
    """run_writer(path, how): the writer run to its end `how`; a session it left running (its
    host runs on) is stopped at the end of the test."""
    left = []

    def run(path, how: str) -> None:
        name = uuid.uuid4().hex
        left.append("unclean-" + name)
        _run_writer(path, how, name)

    yield run
    for name in left:
        try:
            P.ControlTrace(0, name, None, P.EVENT_TRACE_CONTROL_STOP)
        except P.Win32Error:
            pass


def _run_writer(path, how: str, name: str) -> None:
    args = [sys.executable, "-c", WRITER, str(path), name, how]
    if how != "kill":
        subprocess.run(args, check=True, timeout=60)
        return
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def test_a_killed_writer_leaves_end_time_zero(tmp_path, run_writer):
    path = tmp_path / "killed.etl"
    run_writer(path, "kill")
    c = etlcheck.read(path)
    assert c.header["EndTime"] == 0
    assert c.header["BuffersWritten"] >= 2                    # the flushed buffers still count
    values = [int.from_bytes(m.args, "little") for m in c.messages]
    assert values[:300] == list(range(300))


def test_an_exiting_writer_leaves_end_time_zero(tmp_path, run_writer):
    path = tmp_path / "exited.etl"
    run_writer(path, "exit")
    assert etlcheck.read(path).header["EndTime"] == 0


def test_a_stopped_session_writes_its_end_time(tmp_path, run_writer):
    path = tmp_path / "stopped.etl"
    run_writer(path, "stop")
    h = etlcheck.read(path).header
    now = int(time.time() * 10_000_000) + 116_444_736_000_000_000          # FILETIME
    assert 0 < h["StartTime"] <= h["EndTime"] <= now


def test_end_time_is_zero_while_the_session_runs(tmp_path, session_name):
    path = tmp_path / "running.etl"
    with TraceSession(session_name, path, BufferSize=4) as s:
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, b"x")
        assert etlcheck.read(path).header["EndTime"] == 0          # written at start
        s.flush()
        deadline = time.monotonic() + 60
        while etlcheck.read(path).header["BuffersWritten"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        h = etlcheck.read(path).header
        assert h["BuffersWritten"] >= 2 and h["EndTime"] == 0      # rewritten after a buffer
    assert etlcheck.read(path).header["EndTime"] >= h["StartTime"]


def test_third_party_readers_take_an_unstopped_file(tmp_path, run_writer):
    path = tmp_path / "killed.etl"
    run_writer(path, "kill")
    assert len(etlcheck.dissect_messages(path)) == len(etlcheck.read(path).messages) >= 300
