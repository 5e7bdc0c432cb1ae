"""Concurrency: N threads x M events, none lost or torn; a tiny pool drops and counts exactly."""
from __future__ import annotations

import hashlib
import os
import threading
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession

L = P._lib
GUID = uuid.UUID("7e57ab1e-0000-4000-8000-00000000beef")


def payload(thread: int, i: int) -> bytes:
    """Variable-length, self-checking argument bytes (a torn record fails the digest)."""
    body = thread.to_bytes(2, "little") + i.to_bytes(4, "little") + bytes([i % 251]) * (i % 37)
    return body + hashlib.blake2s(body, digest_size=8).digest()


def check_payload(data: bytes) -> tuple[int, int]:
    body, digest = data[:-8], data[-8:]
    assert hashlib.blake2s(body, digest_size=8).digest() == digest, "torn record"
    return int.from_bytes(body[:2], "little"), int.from_bytes(body[2:6], "little")


@pytest.mark.parametrize("threads", [1, 2, 3, 8])
def test_threads_none_lost_none_torn(tmp_path, session_name, threads):
    m_events = 3000
    path = tmp_path / "mt.etl"
    barrier = threading.Barrier(threads)
    tids = {}
    with TraceSession(session_name, path, BufferSize=8, MaximumBuffers=512,
                      LogFileMode=P.EVENT_TRACE_USE_GLOBAL_SEQUENCE) as s:
        def work(t):
            tids[t] = threading.get_native_id()
            barrier.wait()
            for i in range(m_events):
                assert P.trace_packed(s.handle, 0x2B, GUID.bytes_le, 10 + t, payload(t, i)) == 0
        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        for th in pool: th.start()
        for th in pool: th.join()
    assert s.final.EventsLost == 0
    c = etlcheck.read(path)          # checks per-buffer timestamp order and layout
    assert len(c.messages) == threads * m_events
    seen: dict[int, list[int]] = {t: [] for t in range(threads)}
    for m in c.messages:
        t, i = check_payload(m.args)
        assert m.number == 10 + t and m.thread_id == tids[t] and m.process_id == os.getpid()
        assert m.guid == GUID
        seen[t].append(i)
    for t in range(threads):
        assert sorted(seen[t]) == list(range(m_events))
    # each processor stream, buffers in SequenceNumber order, has non-decreasing timestamps
    for proc, msgs in etlcheck.stream_order(c).items():
        times = [m.timestamp for m in msgs]
        assert times == sorted(times), f"processor {proc} stream goes back in time"
    # a thread's own events keep their order (sequence numbers increase per thread)
    for t in range(threads):
        mine = sorted((m for m in c.messages if m.number == 10 + t), key=lambda m: m.sequence)
        assert [check_payload(m.args)[1] for m in mine] == list(range(m_events))
    assert sorted(m.sequence for m in c.messages) == sorted(set(m.sequence for m in c.messages))
    if threads == 3:
        assert len(etlcheck.dissect_messages(path)) == threads * m_events


def test_tiny_pool_counts_exactly_the_dropped_calls(tmp_path, session_name):
    """The flusher is held (a stalled disk): once both buffers are full every call returns
    ERROR_NOT_ENOUGH_MEMORY at once, and EventsLost equals the number of those calls."""
    path = tmp_path / "tiny.etl"
    results = {0: 0, L.ERROR_NOT_ENOUGH_MEMORY: 0}
    with TraceSession(session_name, path, BufferSize=1, MinimumBuffers=1, MaximumBuffers=2,
                      LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        assert L.wpptrace_debug_hold_flush(s.handle, 1) == 0
        for i in range(200):
            rc = P.trace_packed(s.handle, 0x2B, GUID.bytes_le, 1, i.to_bytes(4, "little") + bytes(12))
            results[rc] += 1
        q = s.query()
        assert q.EventsLost == results[L.ERROR_NOT_ENOUGH_MEMORY] > 0
        assert (q.NumberOfBuffers, q.FreeBuffers) == (2, 0)
        L.wpptrace_debug_hold_flush(s.handle, 0)
        s.flush()
        # the pool drained: logging works again
        assert P.trace_packed(s.handle, 0x2B, GUID.bytes_le, 2, b"again") == 0
        results[0] += 1
    assert s.final.EventsLost == results[L.ERROR_NOT_ENOUGH_MEMORY]
    c = etlcheck.read(path)
    assert len(c.messages) == results[0]
    assert c.header["EventsLost"] == s.final.EventsLost
    kept = [int.from_bytes(m.args[:4], "little") for m in c.messages if m.number == 1]
    assert kept == list(range(len(kept)))          # the first ones were kept, in order


def test_tiny_pool_with_threads_counts_exactly(tmp_path, session_name):
    path = tmp_path / "tiny-mt.etl"
    counts = []
    lock = threading.Lock()
    with TraceSession(session_name, path, BufferSize=1, MinimumBuffers=2, MaximumBuffers=3) as s:
        L.wpptrace_debug_hold_flush(s.handle, 1)

        def work(t):
            dropped = ok = 0
            for i in range(500):
                rc = P.trace_packed(s.handle, 0x2B, GUID.bytes_le, t, payload(t, i))
                assert rc in (0, L.ERROR_NOT_ENOUGH_MEMORY)
                dropped += rc != 0
                ok += rc == 0
            with lock:
                counts.append((ok, dropped))
        pool = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for th in pool: th.start()
        for th in pool: th.join()
        L.wpptrace_debug_hold_flush(s.handle, 0)
    dropped = sum(d for _, d in counts)
    assert s.final.EventsLost == dropped > 0
    c = etlcheck.read(path)
    assert len(c.messages) == sum(o for o, _ in counts)
    for m in c.messages:
        check_payload(m.args)
