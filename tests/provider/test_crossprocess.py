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
        b.enable(control, 2, 5)
        assert app.expect("enable") == ["enable", str(b.handle & 0xFFFF), "2", "5"]
        held = {p.guid: p for p in sessions.providers()}[control]
        assert (held.enabled, held.logger_id, held.flags, held.level, held.processes) == \
            (True, b.handle & 0xFFFF, 2, 5, 1)
        app.send("log 20 1")
        app.expect("logged")
        a.disable(control)                 # not a's provider any more: nothing happens
        a.stop()
        assert app.quiet() == []
    assert app.expect("disable") == ["disable"]
    assert len(values(tmp_path / "a.etl", message)) == 10
    assert len(values(tmp_path / "b.etl", message)) == 20


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


def test_processes_times_threads_into_one_file(tmp_path, session_name, apps, c_provider):
    """Two Python provider processes and a C one, two threads each: every event present, each
    thread's events in order (global sequence numbers), per-processor streams in time order."""
    control, message = uuid.uuid4(), uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
    path = tmp_path / "many.etl"
    m_events = 3000
    python = [apps(control, message) for _ in range(2)]
    for app in python:
        app.send("register")
        app.expect("registered")
    with TraceSession(session_name, path, BufferSize=16, MaximumBuffers=512,
                      LogFileMode=P.EVENT_TRACE_USE_GLOBAL_SEQUENCE) as s:
        c_app = subprocess.Popen([str(c_provider), str(control), "2", str(m_events)],
                                 stdout=subprocess.PIPE, text=True)
        try:
            s.enable(control, 0xFF, 5)
            for app in python:
                app.expect("enable")
                app.send(f"log {m_events} 2")
            for app in python:
                assert app.expect("logged") == ["logged", str(2 * m_events), "0", "0"]
            c_out = c_app.communicate(timeout=PATIENCE)[0].split()
        finally:
            if c_app.poll() is None:
                c_app.kill()
                c_app.wait()
        assert c_out == ["logged", str(2 * m_events)]
    assert s.final.EventsLost == 0
    c = etlcheck.read(path)
    by_thread: dict[tuple[int, int], list] = {}
    for m in c.messages:
        pid, t, i = struct.unpack("<III", m.args)
        by_thread.setdefault((pid, t), []).append((m.sequence, i))
    expected = {(app.pid, t) for app in python for t in range(2)} | {(c_app.pid, t) for t in range(2)}
    assert set(by_thread) == expected
    for pairs in by_thread.values():
        assert [i for _, i in sorted(pairs)] == list(range(m_events))
    assert len({m.sequence for m in c.messages}) == len(c.messages) == 6 * m_events
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


C_PROVIDER = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "wpptrace_etw.h"

static volatile TRACEHANDLE g_logger;
static GUID g_msg = {0x01234567, 0x89ab, 0xcdef, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}};
static unsigned g_events;
static volatile unsigned g_ok;

static ULONG control(WMIDPREQUESTCODE code, PVOID ctx, ULONG *size, PVOID buffer) {
    (void)ctx; (void)size;
    g_logger = code == WMI_ENABLE_EVENTS ? GetTraceLoggerHandle(buffer) : 0;
    return 0;
}

static void *writer(void *arg) {
    unsigned v[3] = {(unsigned)getpid(), (unsigned)(uintptr_t)arg, 0};
    for (unsigned i = 0; i < g_events; i++) {
        v[2] = i;
        if (TraceMessage(g_logger, 0x2B, &g_msg, (USHORT)(10 + v[1]), v, sizeof v, NULL) == 0)
            __atomic_add_fetch(&g_ok, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(int argc, char **argv) {
    GUID control_guid;
    unsigned a, b, c, d[8];
    sscanf(argv[1], "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &a, &b, &c,
           &d[0], &d[1], &d[2], &d[3], &d[4], &d[5], &d[6], &d[7]);
    control_guid.Data1 = a; control_guid.Data2 = (uint16_t)b; control_guid.Data3 = (uint16_t)c;
    for (int i = 0; i < 8; i++) control_guid.Data4[i] = (uint8_t)d[i];
    int threads = atoi(argv[2]);
    g_events = (unsigned)atoi(argv[3]);
    TRACEHANDLE reg;
    TRACE_GUID_REGISTRATION guids[1] = {{&g_msg, NULL}};
    if (RegisterTraceGuids(control, NULL, &control_guid, 1, guids, NULL, NULL, &reg)) return 4;
    for (int i = 0; i < 2000 && !g_logger; i++) usleep(10000);      /* enabled from outside */
    if (!g_logger) return 5;
    pthread_t tid[64];
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, writer, (void *)(uintptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    printf("logged %u\n", g_ok);
    return UnregisterTraceGuids(reg) ? 8 : 0;
}
"""


@pytest.fixture(scope="module")
def c_provider(build_c_program):
    return build_c_program("prov", C_PROVIDER)


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
    assert app.expect("disable", 5.0) == ["disable"]
    app.send("log 100 1")
    assert app.expect("logged") == ["logged", "0", "0", "100"]      # refused at once, no hang
    deadline = time.monotonic() + 5
    while P.trace_packed(s.handle, 0x2B, message.bytes_le, 1, b"x") == 0 and time.monotonic() < deadline:
        time.sleep(0.01)                 # this process hears it too (its own watch connection)
    assert P.trace_packed(s.handle, 0x2B, message.bytes_le, 1, b"x") == L.ERROR_INVALID_HANDLE
    got = []
    while (data := sub.get(2.0)) is not None:
        got.append(data)
    assert sub.closed and got and got[0][0x36] == 4
    c = etlcheck.read(path)
    assert len(c.messages) == 100 and c.header["EndTime"] == 0
    with pytest.raises(P.Win32Error) as err:
        s.stop()
    assert err.value.winerror == L.ERROR_WMI_INSTANCE_NOT_FOUND
    with pytest.raises(P.Win32Error):
        sessions.session_info(session_name)                        # cleaned up
