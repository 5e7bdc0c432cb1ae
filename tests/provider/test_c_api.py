"""The C API used from C: a program compiled with cc from provider/csrc, and the crash case."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider._hazmat import ffi
from wpptrace.provider.sessions import TraceSession


C_PROGRAM = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wpptrace_etw.h"

static TRACEHANDLE g_logger;
static GUID g_msg = {0x01234567, 0x89ab, 0xcdef, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}};
static int g_events;

static ULONG control(WMIDPREQUESTCODE code, PVOID ctx, ULONG *size, PVOID buffer) {
    (void)ctx; (void)size;
    g_logger = code == WMI_ENABLE_EVENTS ? GetTraceLoggerHandle(buffer) : 0;
    return 0;
}

static void *writer(void *arg) {
    unsigned t = (unsigned)(uintptr_t)arg;
    for (unsigned i = 0; i < (unsigned)g_events; i++) {
        unsigned v[2] = {t, i};
        char text[32];
        int n = snprintf(text, sizeof text, "thread %u event %u", t, i);
        /* WPP style: (pointer, size) pairs ended by a single NULL pointer */
        ULONG rc = TraceMessage(g_logger, 0x2B, &g_msg, (USHORT)(10 + t), &v, sizeof v,
                                text, (size_t)n + 1, NULL);
        if (rc) { fprintf(stderr, "TraceMessage %u\n", rc); exit(2); }
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: app LOG_FILE THREADS EVENTS\n"); return 1; }
    int threads = atoi(argv[2]);
    g_events = atoi(argv[3]);
    if (threads < 1 || threads > 64 || strlen(argv[1]) >= 4096) return 1;
    GUID control_guid = {0xc0c0c0c0, 1, 2, {3, 4, 5, 6, 7, 8, 9, 10}};
    struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props;
    memset(&props, 0, sizeof props);
    props.p.Wnode.BufferSize = sizeof props;
    props.p.BufferSize = 16;
    props.p.MaximumBuffers = 2048;
    props.p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_USE_GLOBAL_SEQUENCE;
    props.p.LogFileNameOffset = sizeof props.p;
    strcpy(props.names, argv[1]);
    TRACEHANDLE session, reg;
    TRACE_GUID_REGISTRATION guids[1] = {{&g_msg, NULL}};
    if (StartTrace(&session, "c-program", &props.p)) return 3;
    if (RegisterTraceGuids(control, NULL, &control_guid, 1, guids, NULL, NULL, &reg)) return 4;
    if (EnableTrace(1, 0xFF, TRACE_LEVEL_VERBOSE, &control_guid, session)) return 5;
    if (GetTraceEnableFlags(g_logger) != 0xFF || GetTraceEnableLevel(g_logger) != 5) return 6;
    pthread_t tid[64];
    for (int t = 0; t < threads; t++) pthread_create(&tid[t], NULL, writer, (void *)(uintptr_t)t);
    for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
    /* the records the core gave up, every writer done and all flushed: a writer that does not
     * commit within the core's wait is given up by design (a loaded machine may make one) */
    struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } flush;
    memset(&flush, 0, sizeof flush);
    flush.p.Wnode.BufferSize = sizeof flush;
    if (ControlTrace(session, NULL, &flush.p, EVENT_TRACE_CONTROL_FLUSH)) return 9;
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(session, NULL, &info)) return 10;
    if (ControlTrace(session, NULL, &props.p, EVENT_TRACE_CONTROL_STOP)) return 7;
    printf("%u %u %u\n", props.p.EventsLost, props.p.BuffersWritten, info.RecordsAbandoned);
    return UnregisterTraceGuids(reg) ? 8 : 0;
}
"""


@pytest.fixture(scope="module")
def c_program(build_c_program):
    return build_c_program("app", C_PROGRAM)


@pytest.mark.parametrize("threads", [1, 8])
def test_c_program_threads(c_program, tmp_path, threads):
    path = tmp_path / "c.etl"
    events = 5000
    out = subprocess.run([str(c_program), str(path), str(threads), str(events)], check=True,
                         capture_output=True, text=True).stdout.split()
    lost, written, abandoned = map(int, out)
    # nothing is lost but the records the core gave up, each counted and reported as given up:
    # a writer still alive that does not commit within the core's wait (WPT_COMMIT_WAIT_MS), as
    # a loaded machine may make one (none else is ever missing, never silently)
    assert lost == abandoned
    c = etlcheck.read(path)
    assert c.header["BuffersWritten"] == written and len(c.messages) + lost == threads * events
    per_thread: dict[int, list[int]] = {}
    for m in c.messages:
        t, i = int.from_bytes(m.args[:4], "little"), int.from_bytes(m.args[4:8], "little")
        assert m.number == 10 + t and m.args[8:] == b"thread %d event %d\0" % (t, i)
        assert m.flags == 0xAB and m.guid == uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
        per_thread.setdefault(m.thread_id, []).append((m.sequence, i))
    assert len(per_thread) == threads
    for pairs in per_thread.values():
        indices = [i for _, i in sorted(pairs)]        # each thread's, in order (all, if none lost)
        assert indices == sorted(set(indices)) and set(indices) <= set(range(events))
    for msgs in etlcheck.stream_order(c).values():
        times = [m.timestamp for m in msgs]
        assert times == sorted(times)
    assert len({m.sequence for m in c.messages}) == len(c.messages)    # global counter may be shared


def test_variadic_trace_message_stops_at_null_pointer(tmp_path, session_name):
    """Through cffi's variadic call (slow, never used on the fast path): the list ends at the
    first NULL pointer without a size after it."""
    path = tmp_path / "va.etl"
    guid = ffi.new("GUID *")
    with TraceSession(session_name, path) as s:
        a, b = ffi.new("char[]", b"abc"), ffi.new("uint32_t *", 0xDEADBEEF)
        assert P._lib.TraceMessage(s.handle, 0x2B, guid, 3, a, ffi.cast("size_t", 3),
                                   b, ffi.cast("size_t", 4), ffi.NULL) == 0
        assert P._lib.TraceMessage(s.handle, 0x2B, guid, 4, ffi.NULL) == 0
    assert [m.args for m in etlcheck.time_order(etlcheck.read(path))] == [b"abc\xef\xbe\xad\xde", b""]


CRASHER = textwrap.dedent("""
    import os, sys, uuid
    import wpptrace.provider as P
    from wpptrace.provider.sessions import TraceSession
    s = TraceSession("crash-" + sys.argv[2], sys.argv[1], BufferSize=4, MaximumBuffers=64,
                     LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING
                     | P.EVENT_TRACE_PRIVATE_LOGGER_MODE)
    for i in range(1000):
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, i.to_bytes(4, "little"))
    s.flush()
    for i in range(1000, 1100):
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 10, i.to_bytes(4, "little"))
    os._exit(0)          # dies with a partly filled buffer and no STOP
""")


def test_file_of_a_crashed_writer_is_readable(tmp_path):
    """A private session dies with its process: the file holds what was flushed."""
    path = tmp_path / "crash.etl"
    subprocess.run([sys.executable, "-c", CRASHER, str(path), uuid.uuid4().hex], check=True)
    c = etlcheck.read(path)
    values = [int.from_bytes(m.args, "little") for m in c.messages]
    # everything up to the last flush, plus any buffer that filled up (and was flushed) after it
    assert values == list(range(len(values))) and 1000 <= len(values) < 1100
    # the writer may die between writing a buffer and counting it in the header: readers
    # walk BuffersWritten buffers, so such a trailing buffer is simply not seen
    assert c.header["BuffersWritten"] * 4096 <= path.stat().st_size <= (c.header["BuffersWritten"] + 1) * 4096
    assert len(etlcheck.dissect_messages(path)) == len(values)
    assert c.header["EndTime"] == 0                 # never stopped: no end time


def test_forked_child_keeps_logging_to_a_shared_session(tmp_path, session_name):
    """A session runs in its host process and its buffers are shared memory: a forked child
    logs into it with the handle it inherited, and its events carry its own process id."""
    path = tmp_path / "shared.etl"
    with TraceSession(session_name, path) as s:
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=5), 1, b"parent before")
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                rc = P.trace_packed(s.handle, P.TRACE_MESSAGE_SYSTEMINFO | 0x28, None, 2, b"child")
                code = 0 if rc == 0 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=5), 4, b"parent after")
    messages = etlcheck.time_order(etlcheck.read(path))
    assert [m.args for m in messages] == [b"parent before", b"child", b"parent after"]
    assert messages[1].process_id == pid and messages[0].process_id == os.getpid()


def test_forked_child_has_no_private_sessions(tmp_path, session_name):
    """A private session runs in the process that started it: after fork() the child's
    TraceMessage fails with ERROR_INVALID_HANDLE, it can start its own session, and the
    parent's file only holds the parent's events, in time order. The parent's thread logs
    its two events on different processors (pinned here; under load the scheduler moves it
    across the fork and wait anyway): per-processor buffers are written out of order, so
    only the time order is the logging order."""
    path = tmp_path / "parent.etl"
    private = P.EVENT_TRACE_PRIVATE_LOGGER_MODE
    cpus = sorted(os.sched_getaffinity(0))
    with TraceSession(session_name, path, LogFileMode=private) as s:
        try:
            os.sched_setaffinity(0, {cpus[-1]})
            P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=5), 1, b"parent before")
        finally:
            os.sched_setaffinity(0, cpus)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                rc = P.trace_packed(s.handle, 0x28, None, 2, b"child")
                with TraceSession(session_name, tmp_path / "child.etl", LogFileMode=private) as c:
                    P.TraceMessage(c.handle, 0x2B, uuid.UUID(int=5), 3, b"child own")
                code = 0 if rc == P._lib.ERROR_INVALID_HANDLE else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        try:
            os.sched_setaffinity(0, {cpus[0]})
            P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=5), 4, b"parent after")
        finally:
            os.sched_setaffinity(0, cpus)
    assert [m.args for m in etlcheck.time_order(etlcheck.read(path))] == [b"parent before", b"parent after"]
    assert [m.args for m in etlcheck.read(tmp_path / "child.etl").messages] == [b"child own"]


def test_variadic_trace_message_with_many_arguments(tmp_path, session_name):
    """More (pointer, size) pairs than TraceMessage reads in its first pass (16)."""
    path = tmp_path / "many.etl"
    parts = [bytes([i]) * (i % 5) for i in range(40)]
    keep = [ffi.new("char[]", p or b"\0") for p in parts]
    varargs = []
    for cdata, p in zip(keep, parts):
        varargs += [cdata, ffi.cast("size_t", len(p))]
    with TraceSession(session_name, path) as s:
        assert P._lib.TraceMessage(s.handle, 0x28, ffi.NULL, 9, *varargs, ffi.NULL) == 0
        assert P._lib.TraceMessage(s.handle, 0x28, ffi.NULL, 9, *varargs[:32], ffi.NULL) == 0
    got = [m.args for m in etlcheck.time_order(etlcheck.read(path))]
    assert got == [b"".join(parts), b"".join(parts[:16])]


def test_sessions_still_running_at_exit_are_stopped(tmp_path):
    script = textwrap.dedent("""
        import sys, uuid
        import wpptrace.provider as P
        from wpptrace.provider.sessions import TraceSession
        s = TraceSession("atexit-" + uuid.uuid4().hex, sys.argv[1])
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=2), 10, b"last words")
    """)
    path = tmp_path / "exit.etl"
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    c = etlcheck.read(path)
    assert [m.args for m in c.messages] == [b"last words"] and c.header["EndTime"] > c.header["StartTime"]
