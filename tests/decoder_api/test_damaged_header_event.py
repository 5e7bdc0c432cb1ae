"""Regression: ProcessTrace delivers the header event of a file whose header record is damaged.

ProcessTrace's first event of a file is the log-file header event, made from the header
OpenTrace read. When the header record's marker was damaged, OpenTrace still read the header
facts from its payload (``Logfile.LogfileHeader`` filled), and ``wpptrace fmt`` printed the
header line, but the consumer API and ``decoder.open`` delivered no header event: the walk
skipped the record and nothing stood for it. Now they deliver the event the intact file
gives, and list the damage in ``GetTraceIssues`` / ``errors`` as they list any skipped record.
"""
from __future__ import annotations

import threading

import pytest

from .api_helpers import PATIENCE, buffers_of, collect, identity

from wpptrace import decoder
from wpptrace.decoder import api
from wpptrace.winerror import ERROR_SUCCESS
from wpptrace.decoder.consumer_types import ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE

DAMAGE = "offset 0x48: expected the log-file header record (SYSTEM32/64 marker, HookId 0)"


@pytest.fixture
def files(corpus_file, header_record):
    return header_record.marker_zeroed(corpus_file("wppemitter-sample.etl"))


def test_event_record_callback_gets_the_header_event(files):
    real, damaged = files
    intact, _lf, rc_intact = collect(real)
    events, _lf, rc = collect(damaged)
    assert rc == rc_intact == ERROR_SUCCESS
    assert [identity(e) for e in events] == [identity(e) for e in intact]
    assert events[0].EventHeader.EventDescriptor.Opcode == 0
    assert bytes(events[0].UserData) == bytes(intact[0].UserData)


def test_event_callback_gets_the_header_event(files):
    real, damaged = files
    intact, _lf, _rc = collect(real, mode=0)
    events, _lf, _rc = collect(damaged, mode=0)
    assert len(events) == len(intact) == 49
    first, expected = events[0], intact[0]
    assert (first.Header.Guid, first.Header.TimeStamp, first.Header.ThreadId,
            first.Header.ProcessId, bytes(first.MofData)) == \
        (expected.Header.Guid, expected.Header.TimeStamp, expected.Header.ThreadId,
         expected.Header.ProcessId, bytes(expected.MofData))


def test_the_damage_is_listed_and_no_buffer_is_added(files):
    real, damaged = files
    logfile = EVENT_TRACE_LOGFILE(LogFileName=str(damaged), EventCallback=lambda e: None,
                                  BufferCallback=lambda lf: True)
    handle = api.OpenTrace(logfile)
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
        issues = [str(i) for i in api.GetTraceIssues(handle)]
    finally:
        api.CloseTrace(handle)
    assert DAMAGE in issues[0]
    assert logfile.BuffersRead == 2
    # the buffers handed out are the file's (the made header buffer is none of them)
    assert len(buffers_of(damaged)) == len(buffers_of(real)) == 2


def test_decoder_open_gives_the_header_event(files):
    real, damaged = files
    with decoder.open(real) as reader:
        intact = list(reader)
    with decoder.open(damaged) as reader:
        events = list(reader)
        errors = [str(e) for e in reader.errors]
    assert type(events[0]).__name__ == "HeaderEvent"
    assert len(events) == len(intact)
    assert (events[0].timestamp, events[0].thread_id, events[0].process_id,
            bytes(events[0].user_data)) == (intact[0].timestamp, intact[0].thread_id,
                                            intact[0].process_id, bytes(intact[0].user_data))
    assert DAMAGE in errors[0]
    with decoder.open(damaged, ordered=False) as reader:
        assert type(next(iter(reader))).__name__ == "HeaderEvent"


def test_a_buffer_stream_of_the_damaged_file_gives_the_header_event(files):
    """A live source (a buffer stream fed the file's buffers) makes the same event from its
    damaged header buffer, and lists the damage once."""
    real, damaged = files
    intact, _lf, _rc = collect(real)
    events: list = []
    buffers = buffers_of(damaged)
    completed: list = []
    all_done = threading.Event()

    def on_completion(buf, _context):     # after each buffer's events
        completed.append(buf)
        if len(completed) == len(buffers):
            all_done.set()

    handle = api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS(EventCallback=events.append),
                                           on_completion)
    try:
        for buf in buffers:
            api.ProcessTraceAddBufferToBufferStream(handle, buf, len(buf))
        worker = threading.Thread(target=api.ProcessTrace, args=([handle],))
        worker.start()
        assert all_done.wait(PATIENCE)
        issues = [str(i) for i in api.GetTraceIssues(handle)]
    finally:
        api.CloseTrace(handle)
    worker.join(PATIENCE)
    assert not worker.is_alive()
    assert [identity(e) for e in events] == [identity(e) for e in intact]
    assert len(issues) == 1 and DAMAGE in issues[0]
