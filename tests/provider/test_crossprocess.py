"""Sessions and providers in different processes: enable/disable reach providers registered
before or after, one session holds a provider at a time, many processes write one file."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider import sessions
from wpptrace.provider.sessions import TraceSession

HERE = os.path.dirname(os.path.abspath(__file__))
#: the C sample's messages of one round (samples/c_program/expected.txt)
SAMPLE_EXPECTED = open(os.path.join(HERE, "..", "..", "samples", "c_program", "expected.txt")).read().splitlines()
L = P._lib
PATIENCE = 20.0


@pytest.fixture
def guids():
    return uuid.uuid4(), uuid.uuid4()


def values(path, message: uuid.UUID) -> list[tuple[int, int, int]]:
    """(pid, thread index, i) of every message with GUID ``message``."""
    return [struct.unpack("<III", m.args) for m in etlcheck.read(path).messages if m.guid == message]


def test_provider_registered_before_the_enable_is_enabled_from_another_process(
        tmp_path, session_name, apps, guids):
    control, message = guids
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    path = tmp_path / "before.etl"
    with TraceSession(session_name, path) as s:
        s.enable(control, 0xC, P.TRACE_LEVEL_WARNING)
        # EnableTrace returned once every provider process ran its callbacks: the line is there
        assert app.expect("enable", 1.0) == ["enable", str(s.handle & 0xFFFF), "12", "3"]
        app.send("log 200 2")
        assert app.expect("logged") == ["logged", "400", "0", "0"]
    assert app.expect("disable") == ["disable"]
    got = values(path, message)
    assert sorted(got) == sorted((app.pid, t, i) for t in range(2) for i in range(200))
    app.send("log 1 1")
    assert app.expect("logged") == ["logged", "0", "0", "1"]    # disabled: handle 0


def test_provider_registered_after_the_enable_is_enabled_at_once(tmp_path, session_name, apps, guids):
    control, message = guids
    path = tmp_path / "after.etl"
    with TraceSession(session_name, path) as s:
        s.enable(control, 0x5, P.TRACE_LEVEL_ERROR)
        app = apps(control, message)
        app.send("register")
        assert app.expect("enable") == ["enable", str(s.handle & 0xFFFF), "5", "2"]
        app.expect("registered")
        app.send("log 50 1")
        assert app.expect("logged") == ["logged", "50", "0", "0"]
        app.send("unregister")
        app.expect("unregistered")
    assert app.quiet() == []                 # an unregistered provider gets no DISABLE
    assert sorted(values(path, message)) == [(app.pid, 0, i) for i in range(50)]


def test_a_second_session_takes_the_provider_over(tmp_path, session_name, apps, guids):
    """Windows lets one session enable a classic provider at a time: the latest enable wins,
    the first session stops receiving its events, and only the holder's stop disables it."""
    control, message = guids
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    with TraceSession(session_name + "a", tmp_path / "a.etl") as a, \
         TraceSession(session_name + "b", tmp_path / "b.etl") as b:
        a.enable(control, 1, 4)
        assert app.expect("enable")[1] == str(a.handle & 0xFFFF)
        app.send("log 10 1")
        app.expect("logged")
        # EnableTraceEx2 from this process (a classic provider sees MatchAnyKeyword's low bits)
        P.EnableTraceEx2(b.handle, control, P.EVENT_CONTROL_CODE_ENABLE_PROVIDER, 5, 0x1_0000_0002)
        assert app.expect("enable") == ["enable", str(b.handle & 0xFFFF), "2", "5"]
        held = {p.guid: p for p in sessions.providers()}[control]
        assert (held.enabled, held.logger_id, held.flags, held.level, held.processes) == \
            (True, b.handle & 0xFFFF, 2, 5, 1)
        # the operator's view: `session query` lists the provider under its holder only
        queries = {name: subprocess.run([sys.executable, "-m", "wpptrace", "session", "query", name],
                                        capture_output=True, text=True, timeout=PATIENCE).stdout
                   for name in (session_name + "a", session_name + "b")}
        holder = f"{{{control}}}  Flags 0x00000002  Level 5  registered in 1 process"
        assert holder in queries[session_name + "b"] and "Enabled Providers:      1" in queries[session_name + "b"]
        assert str(control) not in queries[session_name + "a"]
        assert "Enabled Providers:      0" in queries[session_name + "a"]
        app.send("log 20 1")
        app.expect("logged")
        a.disable(control)                 # not a's provider any more: nothing happens
        a.stop()
        assert app.quiet() == []
    assert app.expect("disable") == ["disable"]
    assert len(values(tmp_path / "a.etl", message)) == 10
    assert len(values(tmp_path / "b.etl", message)) == 20


def test_a_provider_process_that_cannot_run_its_callbacks_fails_the_enable_visibly(
        tmp_path, session_name, apps, guids):
    """The provider process has no memory for its callback list: the enabler hears
    ERROR_OUTOFMEMORY (it was silently dropped there), and enabling again reaches it."""
    control, message = guids
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    with TraceSession(session_name, tmp_path / "oom.etl") as s:
        app.send("failalloc 1")
        app.expect("failing")
        with pytest.raises(P.Win32Error) as err:
            s.enable(control, 1, 4)
        assert err.value.winerror == L.ERROR_OUTOFMEMORY
        assert app.quiet() == []
        s.enable(control, 3, 4)
        assert app.expect("enable") == ["enable", str(s.handle & 0xFFFF), "3", "4"]
    app.expect("disable")


def test_stopping_a_session_disables_its_providers_in_every_process(tmp_path, session_name, apps):
    control = uuid.uuid4()
    group = [apps(control, uuid.uuid4()) for _ in range(3)]
    for app in group:
        app.send("register")
        app.expect("registered")
    s = TraceSession(session_name, tmp_path / "stop.etl")
    s.enable(control, 1, 4)
    for app in group:
        app.expect("enable")
    s.stop()
    for app in group:
        assert app.expect("disable", 1.0) == ["disable"]   # before STOP returned


def c_sample_round(path) -> list[tuple[int, bytes]]:
    """(message number, arguments) of one round of the C sample's calls, in order."""
    return [(m.number, m.args) for m in etlcheck.time_order(etlcheck.read(path))]


def test_processes_times_threads_into_one_file(tmp_path, session_name, apps, wppdemo):
    """Two Python provider processes registered before the enable and two C programs (the
    sample, samples/c_program, as a service: --provider) started after it, two threads each,
    into one file: every event present, each thread's events in order (global sequence
    numbers), per-processor streams in time order, nothing lost."""
    control = uuid.UUID("b7c1e3d2-5a4f-4e6b-9c8d-7f6e5d4c3b2a")      # the sample's control GUID
    message = uuid.uuid4()
    m_events, rounds = 3000, 400
    with TraceSession(session_name + "ref", tmp_path / "ref.etl") as ref:
        ref.enable(control, 0xFF, 5)
        subprocess.run([str(wppdemo), "--provider"], check=True, timeout=PATIENCE)
    one_round = c_sample_round(tmp_path / "ref.etl")
    assert len(one_round) == len(SAMPLE_EXPECTED)
    path = tmp_path / "many.etl"
    python = [apps(control, message) for _ in range(2)]
    for app in python:
        app.send("register")
        app.expect("registered")
    c_apps = []
    with TraceSession(session_name, path, BufferSize=16, MaximumBuffers=512,
                      LogFileMode=P.EVENT_TRACE_USE_GLOBAL_SEQUENCE) as s:
        try:
            s.enable(control, 0xFF, 5)
            for app in python:
                app.expect("enable")
                app.send(f"log {m_events} 2")
            c_apps = [subprocess.Popen([str(wppdemo), "--provider", str(rounds), "2"]) for _ in range(2)]
            for app in python:
                assert app.expect("logged") == ["logged", str(2 * m_events), "0", "0"]
            assert [c.wait(timeout=PATIENCE) for c in c_apps] == [0, 0]
        finally:
            for c in c_apps:
                if c.poll() is None:
                    c.kill()
                    c.wait()
    assert s.final.EventsLost == 0
    c = etlcheck.read(path)
    python_pids = {app.pid for app in python}
    by_thread: dict[tuple[int, int], list] = {}
    c_threads: dict[tuple[int, int], list] = {}
    for m in c.messages:
        if m.guid == message:
            pid, t, i = struct.unpack("<III", m.args)
            assert m.process_id == pid and pid in python_pids
            by_thread.setdefault((pid, t), []).append((m.sequence, i))
        else:
            c_threads.setdefault((m.process_id, m.thread_id), []).append((m.sequence, (m.number, m.args)))
    assert set(by_thread) == {(pid, t) for pid in python_pids for t in range(2)}
    for pairs in by_thread.values():
        assert [i for _, i in sorted(pairs)] == list(range(m_events))
    assert {pid for pid, _ in c_threads} == {p.pid for p in c_apps} and len(c_threads) == 4
    for pairs in c_threads.values():
        assert [call for _, call in sorted(pairs)] == one_round * rounds
    n = 2 * 2 * m_events + 2 * 2 * rounds * len(one_round)
    assert len({m.sequence for m in c.messages}) == len(c.messages) == n
    for msgs in etlcheck.stream_order(c).values():
        times = [m.timestamp for m in msgs]
        assert times == sorted(times)


def test_exact_events_lost_across_processes(tmp_path, session_name, apps, guids):
    """A tiny pool whose flusher is held: what two processes were refused is EventsLost."""
    control, message = guids
    group = [apps(control, message) for _ in range(2)]
    for app in group:
        app.send("register")
        app.expect("registered")
    with TraceSession(session_name, tmp_path / "lost.etl", BufferSize=1, MinimumBuffers=1,
                      MaximumBuffers=3) as s:
        s.enable(control, 1, 4)
        assert L.wpptrace_debug_hold_flush(s.handle, 1) == 0
        for app in group:
            app.expect("enable")
            app.send("log 300 2")
        counts = [app.expect("logged") for app in group]
        kept = sum(int(c[1]) for c in counts)
        dropped = sum(int(c[2]) for c in counts)
        assert dropped > 0 and all(c[3] == "0" for c in counts)
        assert s.query().EventsLost == dropped
        L.wpptrace_debug_hold_flush(s.handle, 0)
    assert s.final.EventsLost == dropped
    assert len(values(tmp_path / "lost.etl", message)) == kept


def test_pythonic_provider_in_another_process(tmp_path, session_name, apps, guids):
    control, message = guids
    app = apps(control, message, "pythonic")
    app.send("register")
    app.expect("registered")
    path = tmp_path / "py.etl"
    with TraceSession(session_name, path) as s:
        s.enable(control, 1, P.TRACE_LEVEL_INFORMATION)
        app.expect("enable")
        app.send("log 25")
        assert app.expect("logged") == ["logged", "25", "0", "0"]
    app.expect("disable")
    messages = [m for m in etlcheck.read(path).messages if m.process_id == app.pid]
    assert len(messages) == 25 and all(m.thread_id for m in messages)
    app.send("log 5")
    assert app.expect("logged") == ["logged", "5", "0", "0"]       # disabled: nothing written
    assert len(etlcheck.read(path).messages) == 25


def test_a_forked_provider_hears_enables_and_disables_itself(tmp_path, session_name, apps, guids):
    """The child of a provider process gets its own notification endpoint: a later enable
    reaches it (and it logs into that session with its own pid), a stop disables it."""
    control, message = guids
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    with TraceSession(session_name + "a", tmp_path / "a.etl") as a:
        a.enable(control, 1, 4)
        app.expect("enable")
        app.send("forkwatch")
        child = int(app.expect("forked")[1])
        try:
            with TraceSession(session_name + "b", tmp_path / "b.etl") as b:
                b.enable(control, 2, 5)
                got = app.expect_all({"enable", "child-enable"})
                assert got["child-enable"] == ["child-enable", str(b.handle & 0xFFFF), "2", "5"]
            app.expect_all({"disable", "child-disable"})
        finally:
            os.kill(child, 9)
    mine = [m for m in etlcheck.read(tmp_path / "b.etl").messages if m.process_id == child]
    assert [struct.unpack("<III", m.args)[2] for m in mine] == list(range(10))


def test_kill_9_of_the_host(tmp_path, session_name, apps, guids):
    """Providers see the session gone (WMI_DISABLE_EVENTS) and their logging becomes a no-op;
    a consumer sees the end; the file reads up to its last flushed buffer and says it was
    not stopped cleanly; STOP then cleans up."""
    control, message = guids
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    path = tmp_path / "host.etl"
    s = TraceSession(session_name, path, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE
                     | P.EVENT_TRACE_FILE_MODE_SEQUENTIAL, FlushTimer=3600)
    s.enable(control, 1, 4)
    app.expect("enable")
    sub = sessions.subscribe_realtime(session_name)
    app.send("log 100 1")
    app.expect("logged")
    s.flush()
    os.kill(sessions.session_info(session_name).host_pid, 9)
    assert app.expect("disable") == ["disable"]
    app.send("log 100 1")
    assert app.expect("logged") == ["logged", "0", "0", "100"]      # refused at once, no hang
    deadline = time.monotonic() + PATIENCE
    while P.trace_packed(s.handle, 0x2B, message.bytes_le, 1, b"x") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)                 # this process hears it too (its own watch connection)
    assert P.trace_packed(s.handle, 0x2B, message.bytes_le, 1, b"x") == L.ERROR_INVALID_HANDLE
    got = []
    deadline = time.monotonic() + PATIENCE
    while not sub.closed and time.monotonic() < deadline:           # the consumer sees the end
        if (data := sub.get(0.5)) is not None:
            got.append(data)
    assert sub.closed and got and got[0][0x36] == 4
    c = etlcheck.read(path)
    assert len(c.messages) == 100 and c.header["EndTime"] == 0
    with pytest.raises(P.Win32Error) as err:
        s.stop()
    assert err.value.winerror == L.ERROR_WMI_INSTANCE_NOT_FOUND
    with pytest.raises(P.Win32Error):
        sessions.session_info(session_name)                        # cleaned up
