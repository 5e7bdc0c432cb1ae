"""Real-time consumption of in-process sessions (wpptrace.provider) through the API:
CLOSE_PENDING semantics of the CloseTrace page, BufferCallback stop, handle rules."""
from __future__ import annotations

import os
import threading
import uuid

import pytest

from wpptrace.decoder import api
from wpptrace.decoder.consumer_types import (ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE,
                                      PROCESS_TRACE_MODE_EVENT_RECORD, PROCESS_TRACE_MODE_REAL_TIME,
                                      TRACE_LOGFILE_HEADER, EventTraceGuid)
from wpptrace._core import lib
from wpptrace.winerror import (ERROR_CANCELLED, ERROR_CTX_CLOSE_PENDING, ERROR_INVALID_HANDLE,
                               ERROR_SUCCESS, ERROR_WMI_ALREADY_ENABLED,
                               ERROR_WMI_INSTANCE_NOT_FOUND, Win32Error)

from .api_helpers import PATIENCE, ProviderSession, collect, identity

REALTIME_EVENT_RECORD = PROCESS_TRACE_MODE_REAL_TIME | PROCESS_TRACE_MODE_EVENT_RECORD
#: FlushTimer (seconds) far beyond a test's run: only explicit flushes and the stop flush
NO_TIMER_FLUSH = 3600


@pytest.fixture
def session():
    """A REAL_TIME_MODE session with one enabled provider; the tests flush explicitly. (The
    default 1 s flush timer could flush between a log call and a consumer connecting, which
    made "buffered until the first consumer" fail now and then.)"""
    with ProviderSession("decoder-api-rt", LogFileMode=lib.EVENT_TRACE_REAL_TIME_MODE,
                         BufferSize=4, FlushTimer=NO_TIMER_FLUSH) as s:
        yield s


def _open(session, events, **fields):
    logfile = EVENT_TRACE_LOGFILE(LoggerName=session.name, ProcessTraceMode=REALTIME_EVENT_RECORD,
                                  EventRecordCallback=events.append, **fields)
    return api.OpenTrace(logfile), logfile


def _values(events):
    """The logged values of the WPP messages received (header and other events left out)."""
    return [int.from_bytes(e.UserData, "little") for e in events if e.EventHeader.Flags & 0x8]


def _run_in_thread(handle):
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("rc", api.ProcessTrace([handle])))
    worker.start()
    return worker, outcome


def _log_from_each_cpu(session, cpus, flush: bool) -> list[int]:
    """One thread per CPU, pinned to it, logs cpu * 1000 + 0..299 (all start together; each
    flushes at its end if ``flush``); returns the values logged, sorted."""
    barrier = threading.Barrier(len(cpus))

    def log_on(cpu):
        os.sched_setaffinity(0, {cpu})
        barrier.wait()
        for value in range(300):
            session.log(10, cpu * 1000 + value)
        if flush:
            session.flush()

    threads = [threading.Thread(target=log_on, args=(cpu,)) for cpu in cpus]
    for t in threads:
        t.start()
    for t in threads:
        t.join(PATIENCE)
    assert not any(t.is_alive() for t in threads)
    return sorted(c * 1000 + v for c in cpus for v in range(300))


def test_no_such_session_is_wmi_instance_not_found():
    logfile = EVENT_TRACE_LOGFILE(LoggerName="no-such-session-" + uuid.uuid4().hex,
                                  ProcessTraceMode=REALTIME_EVENT_RECORD)
    with pytest.raises(Win32Error) as info:
        api.OpenTrace(logfile)
    assert info.value.winerror == ERROR_WMI_INSTANCE_NOT_FOUND


def test_events_arrive_header_first_and_processtrace_ends_with_the_session(session):
    events = []
    handle, logfile = _open(session, events)
    assert logfile.LogfileHeader.LoggerName == session.name
    for i in range(5):
        session.log(10, i)
    session.flush()
    worker, outcome = _run_in_thread(handle)
    session.stop()
    worker.join(PATIENCE)
    assert not worker.is_alive() and outcome["rc"] == ERROR_SUCCESS
    assert events[0].EventHeader.ProviderId == EventTraceGuid
    assert events[0].EventHeader.EventDescriptor.Opcode == 0
    assert _values(events) == list(range(5))
    assert {e.EventHeader.ProviderId for e in events[1:]} == {session.message_guid}
    assert api.CloseTrace(handle) == ERROR_SUCCESS


def test_close_pending_from_another_thread_delivers_queued_events_only(session):
    """CloseTrace while ProcessTrace runs: ERROR_CTX_CLOSE_PENDING; everything flushed before
    the call is still delivered, nothing flushed after it, and ProcessTrace returns although
    the session keeps running."""
    events = []
    entered, release = threading.Event(), threading.Event()

    def slow(record):
        events.append(record)
        entered.set()
        release.wait(PATIENCE)            # hold ProcessTrace so buffers pile up in the queue

    logfile = EVENT_TRACE_LOGFILE(LoggerName=session.name, ProcessTraceMode=REALTIME_EVENT_RECORD,
                                  EventRecordCallback=slow)
    handle = api.OpenTrace(logfile)
    session.log(10, 0)
    session.flush()
    worker, outcome = _run_in_thread(handle)
    try:
        assert entered.wait(PATIENCE)
        for value in range(1, 4):   # three more buffers, queued behind the blocked callback
            session.log(10, value)
            session.flush()
        assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
        session.log(10, 99)         # after the close: must not be delivered
        session.flush()
    finally:
        release.set()               # never leave the worker blocked, even on a failure
    worker.join(PATIENCE)
    assert not worker.is_alive() and outcome["rc"] == ERROR_SUCCESS
    assert _values(events) == [0, 1, 2, 3]
    with pytest.raises(Win32Error) as info:
        api.CloseTrace(handle)
    assert info.value.winerror == ERROR_INVALID_HANDLE


def test_close_pending_from_inside_the_event_callback(session):
    events, results = [], []
    box = {}

    def on_event(record):
        events.append(record)
        if record.EventHeader.Flags & 0x8 and not results:
            results.append(api.CloseTrace(box["handle"]))

    logfile = EVENT_TRACE_LOGFILE(LoggerName=session.name, ProcessTraceMode=REALTIME_EVENT_RECORD,
                                  EventRecordCallback=on_event)
    box["handle"] = api.OpenTrace(logfile)
    for value in range(3):          # flush() returns once the buffer is queued for consumers
        session.log(10, value)
        session.flush()
    worker, outcome = _run_in_thread(box["handle"])
    worker.join(PATIENCE)                 # returns by itself: the session is still running
    assert not worker.is_alive() and outcome["rc"] == ERROR_SUCCESS
    assert results == [ERROR_CTX_CLOSE_PENDING]
    assert _values(events) == [0, 1, 2]     # the queued buffers were still delivered


def test_buffer_callback_false_stops_a_realtime_trace(session):
    events, buffers = [], []

    def on_buffer(logfile):
        buffers.append(logfile.BuffersRead)
        return len(buffers) < 2

    handle, _ = _open(session, events, BufferCallback=on_buffer)
    for value in range(4):
        session.log(10, value)
        session.flush()
    try:
        assert api.ProcessTrace([handle]) == ERROR_CANCELLED
    finally:
        api.CloseTrace(handle)
    assert buffers == [1, 2]
    assert _values(events) == [0]    # header buffer, then the first data buffer only


def test_buffers_a_stopped_realtime_trace_had_not_started_go_to_the_next_processtrace(session):
    """The stop after the first data buffer leaves the 3 buffers ProcessTrace had already
    taken from the session (not started) queued: the next ProcessTrace delivers them."""
    events, buffers = [], []
    box = {}

    def on_buffer(logfile):
        buffers.append(logfile.BuffersRead)
        return len(buffers) != 2

    def on_event(record):
        events.append(record)
        if _values(events)[-1:] == [3]:
            assert api.CloseTrace(box["handle"]) == ERROR_CTX_CLOSE_PENDING

    box["handle"] = handle = api.OpenTrace(EVENT_TRACE_LOGFILE(
        LoggerName=session.name, ProcessTraceMode=REALTIME_EVENT_RECORD,
        EventRecordCallback=on_event, BufferCallback=on_buffer))
    for value in range(4):
        session.log(10, value)
        session.flush()
    assert api.ProcessTrace([handle]) == ERROR_CANCELLED
    assert _values(events) == [0]
    worker, outcome = _run_in_thread(handle)
    worker.join(PATIENCE)
    if worker.is_alive():               # value 3 never came
        assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
        worker.join(PATIENCE)
    assert not worker.is_alive() and outcome["rc"] == ERROR_SUCCESS
    assert _values(events) == [0, 1, 2, 3]
    assert buffers == [1, 2, 3, 4, 5]


def test_two_realtime_handles_are_wmi_already_enabled(session):
    first, _ = _open(session, [])
    second, _ = _open(session, [])
    try:
        with pytest.raises(Win32Error) as info:
            api.ProcessTrace([first, second])
        assert info.value.winerror == ERROR_WMI_ALREADY_ENABLED
    finally:
        api.CloseTrace(first)
        api.CloseTrace(second)


def test_open_trace_from_realtime_logger_with_options(session):
    events = []
    delivered = threading.Event()
    header = TRACE_LOGFILE_HEADER()

    def on_event(record):
        events.append(record)
        if record.EventHeader.Flags & 0x8:
            delivered.set()

    options = ETW_OPEN_TRACE_OPTIONS(EventCallback=on_event, EventCallbackContext="ctx")
    handle = api.OpenTraceFromRealTimeLogger(session.name, options, header)
    assert header.LoggerName == session.name and header.PointerSize == 8
    session.log(11, 7)
    session.flush()
    worker, outcome = _run_in_thread(handle)
    assert delivered.wait(PATIENCE)
    assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
    worker.join(PATIENCE)
    assert outcome["rc"] == ERROR_SUCCESS
    assert _values(events) == [7]
    assert all(e.UserContext == "ctx" for e in events)


def test_buffers_of_several_processors_are_merged_by_time(session):
    """Two threads pinned to two CPUs log into per-processor buffers; the buffers reach the
    consumer together at the stop and are delivered merged by time, none lost."""
    cpus = sorted(os.sched_getaffinity(0))[:2]
    if len(cpus) < 2:
        pytest.skip("needs two CPUs to fill two per-processor buffer streams")
    events = []
    handle, _ = _open(session, events)
    logged = _log_from_each_cpu(session, cpus, flush=False)
    session.stop()
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(handle)
    assert sorted(_values(events)) == logged
    assert len({e.BufferContext.ProcessorIndex for e in events[1:]}) == 2
    stamps = [e.EventHeader.TimeStamp for e in events[1:]]
    assert stamps == sorted(stamps)


def test_first_consumer_gets_buffered_events_second_only_newer_buffers(session):
    """PEVENT_RECORD_CALLBACK page: events collected while no consumer is connected stay
    buffered and reach the first consumer; a second consumer gets the synthetic header and
    only what is flushed after it connected (buffers, not single events, are the unit)."""
    session.log(10, 1)
    session.log(10, 2)                  # no consumer yet, not flushed
    first = []
    first_handle, _ = _open(session, first)
    session.flush()                     # 1, 2 go to the first consumer only
    session.log(10, 3)
    second = []
    second_handle, _ = _open(session, second)
    session.log(10, 4)
    session.flush()
    session.stop()
    try:
        assert api.ProcessTrace([first_handle]) == ERROR_SUCCESS
        assert api.ProcessTrace([second_handle]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(first_handle)
        api.CloseTrace(second_handle)
    assert _values(first) == [1, 2, 3, 4]
    assert _values(second) == [3, 4]
    assert second[0].EventHeader.ProviderId == EventTraceGuid


def test_remote_consumer_over_a_buffer_stream(session):
    """The OpenTraceFromBufferStream page's use: a real-time ProcessTrace ships every buffer
    from its BufferCallback; the receiving side feeds them, in that order, to a buffer stream
    and gets every event. Two CPUs write, so the shipped order interleaves two streams."""
    shipped, remote_events = [], []

    def ship(buffer, size, info, context):
        shipped.append(bytes(buffer))
        return True

    remote = api.OpenTraceFromRealTimeLogger(session.name, ETW_OPEN_TRACE_OPTIONS(
        BufferCallback=ship, EventCallback=remote_events.append))
    logged = _log_from_each_cpu(session, sorted(os.sched_getaffinity(0))[:2], flush=True)
    session.stop()
    try:
        assert api.ProcessTrace([remote]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(remote)
    local_events = []
    box = {}

    def on_local(record):
        local_events.append(record)
        if len(local_events) == 1:      # all buffers are queued: close, the queue drains
            box["close"] = api.CloseTrace(box["handle"])

    box["handle"] = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(EventCallback=on_local))
    for buffer in shipped:
        api.ProcessTraceAddBufferToBufferStream(box["handle"], buffer, len(buffer))
    assert api.ProcessTrace([box["handle"]]) == ERROR_SUCCESS
    assert box["close"] == ERROR_CTX_CLOSE_PENDING
    assert sorted(_values(remote_events)) == sorted(_values(local_events)) == logged
    stamps = [e.EventHeader.TimeStamp for e in local_events[1:]]
    assert stamps == sorted(stamps)


def test_realtime_and_file_of_one_session_deliver_the_same_events(tmp_path):
    """A session with a log file and REAL_TIME_MODE: what a real-time consumer received
    equals what OpenTrace on the finished file delivers (every header member and payload)."""
    path = tmp_path / "both.etl"
    live = []
    with ProviderSession("decoder-api-both", LogFileName=str(path), BufferSize=4,
                         LogFileMode=lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
                         | lib.EVENT_TRACE_REAL_TIME_MODE) as session:
        consumer = api.OpenTrace(EVENT_TRACE_LOGFILE(
            LoggerName=session.name, ProcessTraceMode=REALTIME_EVENT_RECORD,
            EventRecordCallback=live.append))
        for value in range(500):
            session.log(10 + value % 3, value.to_bytes(4, "little") * (1 + value % 5))
    try:
        assert api.ProcessTrace([consumer]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(consumer)
    from_file, _, _ = collect(path)
    live_messages = [identity(e) for e in live if e.EventHeader.Flags & 0x8]
    file_messages = [identity(e) for e in from_file if e.EventHeader.Flags & 0x8]
    assert len(file_messages) == 500
    assert live_messages == file_messages
