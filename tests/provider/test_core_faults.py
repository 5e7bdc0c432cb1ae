"""Writers that never complete a record (held, exited, cancelled, longjmp'ed out of a signal
handler, a crashed forked child, a killed process) and signal handlers that log: STOP always
completes, a given-up record is counted and never torn into the file."""
from __future__ import annotations

import collections
import os
import random
import signal
import struct
import subprocess
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
from wpptrace.provider.sessions import TraceSession, session_info

MESSAGE = uuid.UUID("0badcafe-0001-0002-0304-05060708090a")


def per_thread_values(path) -> dict[int, list[int]]:
    """Values each writer logged, in file order per processor stream (checks the records)."""
    by_tag: dict[int, list[int]] = collections.defaultdict(list)
    for stream in etlcheck.stream_order(etlcheck.read(path)).values():
        for m in stream:
            tag, i = struct.unpack("<II", m.args)
            assert m.number == tag and m.guid == MESSAGE
            by_tag[tag].append(i)
    return by_tag


def test_a_writer_that_holds_its_record_delays_stop_boundedly(core_faults, tmp_path):
    """A live writer that never commits: its record is given up when the bounded wait runs
    out (the flush and STOP complete), its buffer is set aside for good (the writer may still
    store into it) and the rest of the buffer is written."""
    result = core_faults("held", tmp_path / "held.etl")
    assert (result["lost"], result["abandoned"], result["quarantined"], result["logged"]) == (1, 1, 1, 100)
    assert sorted(per_thread_values(tmp_path / "held.etl")[1]) == list(range(100))


def test_a_record_whose_thread_exited_is_given_up_at_once(core_faults, tmp_path):
    """Its writer is gone: given up without waiting for the bound (so its buffer is reused)."""
    result = core_faults("exited", tmp_path / "exited.etl")
    assert (result["lost"], result["abandoned"], result["quarantined"]) == (1, 1, 0)
    assert sorted(per_thread_values(tmp_path / "exited.etl")[1]) == list(range(100))


def test_a_crashed_forked_child_does_not_hold_the_session(core_faults, tmp_path):
    result = core_faults("forkcrash", tmp_path / "fork.etl")
    assert (result["lost"], result["abandoned"], result["quarantined"]) == (1, 1, 0)
    assert sorted(per_thread_values(tmp_path / "fork.etl")[1]) == list(range(100))


def test_writers_cancelled_at_random_moments(core_faults, tmp_path):
    result = core_faults("cancel", tmp_path / "cancel.etl")
    values = per_thread_values(tmp_path / "cancel.etl")
    # every record in the file is whole (the reader checks each); a call is in the file once
    # or counted in EventsLost (a full pool, or a record its cancelled writer left half written)
    for tag, got in values.items():
        assert 100 <= tag < 120 and len(set(got)) == len(got)
    assert sum(len(v) for v in values.values()) + result["lost"] >= result["logged"]


def test_writer_longjmping_out_of_signal_handlers(core_faults, tmp_path):
    result = core_faults("longjmp", tmp_path / "jump.etl")
    assert result["jumps"] == 8
    values = per_thread_values(tmp_path / "jump.etl")[2]
    assert len(values) + result["lost"] >= result["logged"] and len(values) <= result["logged"] + 8


@pytest.mark.parametrize("mode", ["signal", "signal-starved"])
def test_signal_handler_logging_while_its_thread_logs(core_faults, tmp_path, mode):
    """The record path takes no lock and maps nothing: a handler that logs while its thread is
    anywhere in TraceMessage (reserving, taking a new buffer, retiring one) cannot deadlock.
    Writers never wait for the flusher: when it falls behind (a loaded machine; held for the
    whole run in "signal-starved") the pool runs out and an event that does not fit is dropped
    and counted. Every event tried is in the file or in EventsLost, never both, never neither."""
    result = core_faults(mode, tmp_path / "signal.etl")
    tried = 5 * 20000 + result["handler"]                 # LOOP_EVENTS in the loop, one per tick
    assert result["handler"] > 100
    values = per_thread_values(tmp_path / "signal.etl")
    in_file = len(values[1]) + len(values[9])
    assert in_file == result["logged"] - result["abandoned"]
    assert in_file + result["lost"] == tried
    for tag, limit in ((1, 5 * 20000), (9, result["handler"])):
        assert len(set(values[tag])) == len(values[tag]) and set(values[tag]) <= set(range(limit))
    if mode == "signal-starved":
        assert result["lost"] > 0 and result["abandoned"] == 0


def test_kill_9_of_a_provider_mid_write(tmp_path, session_name, apps):
    """A provider process killed with a record reserved and not written: the session gives
    the record up at once (its writer is gone: no wait, its buffer is reused), counts it, and
    goes on with the other processes; the file is whole. A live process that holds a record
    the same way has it given up after the bound, and that buffer is set aside."""
    control, message = uuid.uuid4(), uuid.uuid4()
    killed, stays = apps(control, message), apps(control, message)
    for app in (killed, stays):
        app.send("register")
        app.expect("registered")
    path = tmp_path / "killed.etl"
    with TraceSession(session_name, path) as s:
        s.enable(control, 1, 4)
        for app in (killed, stays):
            app.expect("enable")
            app.send("log 50 1")
            app.expect("logged")
        killed.send("reserve")
        assert killed.expect("reserved") == ["reserved", "0"]
        os.kill(killed.pid, signal.SIGKILL)
        killed.proc.wait()
        assert s.flush().EventsLost == 1
        info = session_info(session_name)
        assert (info.records_abandoned, info.buffers_quarantined) == (1, 0)
        stays.send("log 50 1")                         # the session goes on
        assert stays.expect("logged") == ["logged", "50", "0", "0"]
        stays.send("reserve")                          # alive, never completes it
        assert stays.expect("reserved") == ["reserved", "0"]
        assert s.flush().EventsLost == 2
        info = session_info(session_name)
        assert (info.records_abandoned, info.buffers_quarantined) == (2, 1)
        stays.send("log 50 1")
        assert stays.expect("logged") == ["logged", "50", "0", "0"]
    assert s.final.EventsLost == 2
    got = collections.Counter(m.process_id for m in etlcheck.read(path).messages)
    assert got == {killed.pid: 50, stays.pid: 150}


def test_kill_9_of_a_provider_logging_in_a_loop(tmp_path, session_name, build_c_program):
    """Killed at a random moment of a tight logging loop (8 threads): whatever it left half
    written is counted, never torn into the file; the session goes on."""
    program = build_c_program("busy", BUSY_WRITER)
    path = tmp_path / "busy.etl"
    control = uuid.uuid4()
    with TraceSession(session_name, path, BufferSize=4, MaximumBuffers=1024) as s:
        busy = subprocess.Popen([str(program), str(control)], stdout=subprocess.PIPE)
        assert busy.stdout.readline().strip() == b"registered"
        s.enable(control, 1, 4)
        assert busy.stdout.readline().strip() == b"running"     # each thread logged a burst
        time.sleep(random.uniform(0, 0.2))                      # a random moment of the loop
        busy.kill()
        busy.wait()
        s.flush()
        # EventsLost also counts the calls a full pool refused (8 threads logging flat out);
        # what the kill left half written is at most one record per thread
        assert session_info(session_name).records_abandoned <= 8
    values = per_thread_values(path)
    for tag, got in values.items():
        assert sorted(got) == list(range(len(got))), tag     # no holes but the counted ones
    assert len(values) == 8 and all(len(got) >= 100 for got in values.values())


BUSY_WRITER = r"""
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include "wpptrace_etw.h"
static volatile TRACEHANDLE g_logger;
static GUID g_msg = {0x0badcafe, 0x1, 0x2, {3, 4, 5, 6, 7, 8, 9, 10}};
static ULONG control(WMIDPREQUESTCODE code, PVOID ctx, ULONG *size, PVOID buffer) {
    (void)ctx; (void)size;
    g_logger = code == WMI_ENABLE_EVENTS ? GetTraceLoggerHandle(buffer) : 0;
    return 0;
}
static volatile unsigned g_warm;
static void *loop(void *arg) {
    unsigned v[2] = {(unsigned)(uintptr_t)arg, 0};
    for (int burst = 0;; burst++) {   /* bursts of a tight loop (the file stays small enough to check) */
        for (int i = 0; i < 100; i++)
            if (TraceMessage(g_logger, 0x2B, &g_msg, (USHORT)v[0], v, sizeof v, NULL) == 0) v[1]++;
        if (burst == 0) __atomic_add_fetch(&g_warm, 1, __ATOMIC_RELEASE);
        usleep(2000);
    }
    return NULL;
}
int main(int argc, char **argv) {
    (void)argc;
    GUID c;
    unsigned a, b, d, e[8];
    sscanf(argv[1], "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &a, &b, &d,
           &e[0], &e[1], &e[2], &e[3], &e[4], &e[5], &e[6], &e[7]);
    c.Data1 = a; c.Data2 = (uint16_t)b; c.Data3 = (uint16_t)d;
    for (int i = 0; i < 8; i++) c.Data4[i] = (uint8_t)e[i];
    TRACEHANDLE reg;
    if (RegisterTraceGuids(control, NULL, &c, 0, NULL, NULL, NULL, &reg)) return 3;
    printf("registered\n");
    fflush(stdout);
    for (int i = 0; i < 2000 && !g_logger; i++) usleep(10000);
    if (!g_logger) return 4;
    pthread_t t[8];
    for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, loop, (void *)(uintptr_t)(20 + i));
    while (__atomic_load_n(&g_warm, __ATOMIC_ACQUIRE) < 8) usleep(100);   /* every thread logged */
    printf("running\n");
    fflush(stdout);
    for (int i = 0; i < 8; i++) pthread_join(t[i], NULL);
    return 0;
}
"""
