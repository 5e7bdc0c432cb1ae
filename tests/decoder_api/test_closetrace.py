"""CloseTrace as its reference page specifies (docs/reference/api/CloseTrace.txt)."""
from __future__ import annotations

import threading

import pytest

from wpptrace.decoder import api
from wpptrace.decoder.consumer_types import (ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE,
                                      INVALID_PROCESSTRACE_HANDLE, PROCESS_TRACE_MODE_EVENT_RECORD)
from wpptrace.winerror import (ERROR_CTX_CLOSE_PENDING, ERROR_INVALID_HANDLE, ERROR_SUCCESS,
                               Win32Error)

from .api_helpers import PATIENCE, buffers_of, collect, identity


def _open(path, **fields):
    fields.setdefault("ProcessTraceMode", PROCESS_TRACE_MODE_EVENT_RECORD)
    logfile = EVENT_TRACE_LOGFILE(LogFileName=str(path), **fields)
    return api.OpenTrace(logfile), logfile


@pytest.mark.parametrize("handle", [0, INVALID_PROCESSTRACE_HANDLE, 0x7FFF_FFFF_0000, -1, "1",
                                    None])
def test_invalid_handles_are_error_invalid_handle(handle):
    with pytest.raises(Win32Error) as info:
        api.CloseTrace(handle)
    assert info.value.winerror == ERROR_INVALID_HANDLE
    assert info.value.name == "ERROR_INVALID_HANDLE"


def test_close_returns_success_and_the_handle_is_then_invalid(corpus_file):
    handle, _ = _open(corpus_file("wppemitter-sample.etl"))
    assert api.CloseTrace(handle) == ERROR_SUCCESS
    for call in (lambda: api.CloseTrace(handle), lambda: api.ProcessTrace([handle])):
        with pytest.raises(Win32Error) as info:
            call()
        assert info.value.winerror == ERROR_INVALID_HANDLE


def test_close_after_processtrace_returned_is_success(corpus_file):
    events = []
    handle, _ = _open(corpus_file("wppstr-sample.etl"), EventRecordCallback=events.append)
    assert api.ProcessTrace([handle]) == ERROR_SUCCESS
    assert api.CloseTrace(handle) == ERROR_SUCCESS
    assert len(events) > 4


def test_close_from_event_callback_on_a_file_is_close_pending(corpus_file):
    """Called from EventCallback before ProcessTrace returns: ERROR_CTX_CLOSE_PENDING, the
    file delivers nothing more, ProcessTrace returns, and the handle is closed."""
    results, seen = [], []
    box = {}

    def on_event(record):
        seen.append(record)
        if len(seen) == 3:
            results.append(api.CloseTrace(box["handle"]))

    box["handle"], _ = _open(corpus_file("wppemitter-sample.etl"), EventRecordCallback=on_event)
    assert api.ProcessTrace([box["handle"]]) == ERROR_SUCCESS
    assert results == [ERROR_CTX_CLOSE_PENDING]
    assert len(seen) == 3
    with pytest.raises(Win32Error) as info:
        api.CloseTrace(box["handle"])
    assert info.value.winerror == ERROR_INVALID_HANDLE


def test_close_from_buffer_callback_is_close_pending(corpus_file):
    results = []
    box = {}

    def on_buffer(logfile):
        results.append(api.CloseTrace(box["handle"]))
        return True

    box["handle"], logfile = _open(corpus_file("powershell.etl"), BufferCallback=on_buffer,
                                   EventRecordCallback=lambda r: None)
    assert api.ProcessTrace([box["handle"]]) == ERROR_SUCCESS
    assert results == [ERROR_CTX_CLOSE_PENDING]   # called once: nothing after the close
    assert logfile.BuffersRead == 1


def test_close_pending_on_a_live_trace_delivers_what_was_queued(corpus_file):
    """A live (buffer-stream) trace closed from another thread while ProcessTrace is in its
    first event: ERROR_CTX_CLOSE_PENDING, every buffer queued before the close is still
    delivered, then ProcessTrace returns; buffers added after the close are refused."""
    buffers = buffers_of(corpus_file("wppemitter-sample.etl"))
    expected, _, _ = collect(corpus_file("wppemitter-sample.etl"))
    events = []
    entered, release = threading.Event(), threading.Event()

    def on_event(record):
        events.append(record)
        entered.set()
        release.wait(PATIENCE)       # hold ProcessTrace inside the header buffer

    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(EventCallback=on_event))
    for buf in buffers:
        api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf))
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("rc", api.ProcessTrace([handle])))
    worker.start()
    try:
        assert entered.wait(PATIENCE)
        assert api.CloseTrace(handle) == ERROR_CTX_CLOSE_PENDING
    finally:
        release.set()
        worker.join(PATIENCE)
    assert not worker.is_alive()
    assert outcome["rc"] == ERROR_SUCCESS
    assert [identity(e) for e in events] == [identity(e) for e in expected]
    with pytest.raises(Win32Error) as info:
        api.ProcessTraceAddBufferToBufferStream(handle, buffers[0], len(buffers[0]))
    assert info.value.winerror == ERROR_INVALID_HANDLE


def test_close_pending_from_inside_a_live_callback_still_drains_the_queue(corpus_file):
    buffers = buffers_of(corpus_file("wppemitter-sample.etl"))
    events, results = [], []
    box = {}

    def on_event(record):
        events.append(record)
        if len(events) == 1:
            results.append(api.CloseTrace(box["handle"]))

    box["handle"] = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(EventCallback=on_event))
    for buf in buffers:
        api.ProcessTraceAddBufferToBufferStream(box["handle"], buf, len(buf))
    assert api.ProcessTrace([box["handle"]]) == ERROR_SUCCESS
    assert results == [ERROR_CTX_CLOSE_PENDING]
    expected, _, _ = collect(corpus_file("wppemitter-sample.etl"))
    assert len(events) == len(expected)


def test_handles_are_any_integer_like_value(corpus_file):
    class Handle:              # e.g. a numpy.uint64 or a ctypes value's .value wrapper
        def __init__(self, value):
            self.value = value

        def __index__(self):
            return self.value

    handle, _ = _open(corpus_file("wppstr-sample.etl"))
    assert api.ProcessTrace([Handle(handle)]) == ERROR_SUCCESS
    assert api.CloseTrace(Handle(handle)) == ERROR_SUCCESS
    with pytest.raises(Win32Error) as info:
        api.CloseTrace(True)   # a bool is not a handle
    assert info.value.winerror == ERROR_INVALID_HANDLE
