"""Files written by the provider core (wpptrace.provider) read back exactly: every item of
every MessageFlags combination and every argument byte, across threads and buffers."""
from __future__ import annotations

import itertools
import os
import random
import threading
import time
import uuid

import pytest

import wpptrace.provider as P
from wpptrace.decoder import MessageEvent, open as open_events
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records
from wpptrace.provider.sessions import TraceSession

ITEMS = [P.TRACE_MESSAGE_SEQUENCE, P.TRACE_MESSAGE_GUID, P.TRACE_MESSAGE_COMPONENTID,
         P.TRACE_MESSAGE_TIMESTAMP, P.TRACE_MESSAGE_SYSTEMINFO]
FLAG_SETS = [sum(c) for n in range(len(ITEMS) + 1) for c in itertools.combinations(ITEMS, n)
             if not (P.TRACE_MESSAGE_GUID in c and P.TRACE_MESSAGE_COMPONENTID in c)]
GUID = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")


@pytest.fixture
def name(request):
    return f"dec-rt-{request.node.name[:30]}-{uuid.uuid4().hex[:6]}"


def test_every_flag_combination_and_argument_byte(tmp_path, name):
    path = tmp_path / "flags.etl"
    component = uuid.UUID(bytes_le=(0xBEEF).to_bytes(4, "little") + bytes(12))
    rng = random.Random(7)
    sent = []
    before = time.time()
    # one buffer stream: records are compared in file order, and messages without a
    # timestamp cannot be put back in order if the thread moves to another CPU's buffers
    with TraceSession(name, path, LogFileMode=P.EVENT_TRACE_USE_GLOBAL_SEQUENCE
                      | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        for i, flags in enumerate(FLAG_SETS * 3):
            args = [rng.randbytes(rng.randrange(0, 40)) for _ in range(rng.randrange(0, 4))]
            guid = component if flags & P.TRACE_MESSAGE_COMPONENTID else GUID
            P.TraceMessage(s.handle, flags, guid, 10 + i, *args)
            sent.append((flags, 10 + i, b"".join(args)))
    after = time.time()
    with EtlFile(path) as etl:
        got = [r for r in etl.iter_records() if r.kind == "message"]
        assert etl.errors == [] and etl.header.pointer_size == 8
    assert len(got) == len(sent)
    # a global sequence counts across every session of the process (USE_GLOBAL_SEQUENCE):
    # it starts wherever earlier tests left it, then goes up by one per sequenced message
    seq = next(r.sequence for r in got if r.sequence is not None) - 1
    assert seq >= 0
    for rec, (flags, number, payload) in zip(got, sent):
        seq += bool(flags & P.TRACE_MESSAGE_SEQUENCE)
        assert rec.flags == flags | P.TRACE_MESSAGE_POINTER64
        assert rec.event_id == number
        assert bytes(rec.user_data) == payload
        assert rec.message_guid == (GUID if flags & P.TRACE_MESSAGE_GUID else None)
        assert rec.component_id == (0xBEEF if flags & P.TRACE_MESSAGE_COMPONENTID else None)
        assert rec.sequence == (seq if flags & P.TRACE_MESSAGE_SEQUENCE else None)
        if flags & P.TRACE_MESSAGE_SYSTEMINFO:
            assert (rec.thread_id, rec.process_id) == (threading.get_native_id(), os.getpid())
        else:
            assert rec.thread_id is None and rec.process_id is None
        assert (rec.timestamp is not None) == bool(flags & P.TRACE_MESSAGE_TIMESTAMP)
    # FILETIMEs of the typed events fall inside the writing window
    with open_events(path) as events:
        times = [e.timestamp.timestamp() for e in events
                 if isinstance(e, MessageEvent) and e.raw_timestamp is not None]
    assert times and all(before - 1 <= t <= after + 1 for t in times)


def test_many_threads_many_buffers_ordered_by_time(tmp_path, name):
    path = tmp_path / "threads.etl"
    per_thread = 3000
    dropped = [0] * 4
    with TraceSession(name, path, BufferSize=4, MaximumBuffers=64) as s:
        def work(k):
            for i in range(per_thread):
                rc = P.trace_packed(s.handle, 0x2B, GUID.bytes_le, 10 + k,
                                    i.to_bytes(4, "little") + b"x" * (i % 50))
                dropped[k] += rc != 0
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        final = s.stop()
    with EtlFile(path) as etl:
        records = list(ordered_records(etl))
        assert etl.errors == []
        assert etl.stats.buffers == final.BuffersWritten == etl.header.buffers_written
    msgs = [r for r in records if r.kind == "message"]
    assert final.EventsLost == sum(dropped)
    assert len(msgs) == 4 * per_thread - sum(dropped)
    assert [r.sort_timestamp for r in msgs] == sorted(r.sort_timestamp for r in msgs)
    per = {}
    for r in msgs:
        i = int.from_bytes(r.user_data[:4], "little")
        assert bytes(r.user_data[4:]) == b"x" * (i % 50)
        per.setdefault(r.event_id, []).append(r.sequence)
    # each thread's messages keep their global sequence order after the time merge
    assert all(seqs == sorted(seqs) for seqs in per.values())
