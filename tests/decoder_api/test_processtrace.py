"""ProcessTrace: argument errors, BufferCallback stop, callback exceptions, merge, time window."""
from __future__ import annotations

import uuid

import pytest

from wpptrace._core import lib
from wpptrace.decoder import api
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records
from wpptrace.decoder.consumer_types import (ETW_OPEN_TRACE_OPTIONS, EVENT_TRACE_LOGFILE, EventTraceGuid,
                                      PROCESS_TRACE_MODE_EVENT_RECORD, PROCESS_TRACE_MODE_RAW_TIMESTAMP)
from wpptrace.provider import api as provider
from wpptrace.winerror import (ERROR_ACCESS_DENIED, ERROR_BAD_FORMAT, ERROR_BAD_LENGTH,
                               ERROR_BAD_PATHNAME, ERROR_CANCELLED,
                               ERROR_FILE_NOT_FOUND, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER,
                               ERROR_INVALID_TIME, ERROR_NOACCESS, ERROR_SUCCESS,
                               ERROR_WMI_ALREADY_ENABLED, Win32Error)

from .api_helpers import collect, identity


def _code(call) -> int:
    with pytest.raises(Win32Error) as info:
        call()
    return info.value.winerror


@pytest.fixture
def handle(corpus_file):
    h = api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(corpus_file("wppstr-sample.etl")),
                                          ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD))
    yield h
    api.CloseTrace(h)


def test_argument_errors(handle):
    assert _code(lambda: api.ProcessTrace(None)) == ERROR_INVALID_PARAMETER
    assert _code(lambda: api.ProcessTrace([])) == ERROR_BAD_LENGTH
    assert _code(lambda: api.ProcessTrace([handle] * 65)) == ERROR_BAD_LENGTH
    assert _code(lambda: api.ProcessTrace([handle, 0])) == ERROR_INVALID_HANDLE
    assert _code(lambda: api.ProcessTrace([handle], 20, 10)) == ERROR_INVALID_TIME
    # EndTime == StartTime is a valid (one-instant) window
    assert api.ProcessTrace([handle], 10, 10) == ERROR_SUCCESS


def test_more_than_one_live_handle_is_wmi_already_enabled(handle):
    streams = [api.OpenTraceFromBufferStream(ETW_OPEN_TRACE_OPTIONS()) for _ in range(2)]
    try:
        assert _code(lambda: api.ProcessTrace(streams)) == ERROR_WMI_ALREADY_ENABLED
        assert _code(lambda: api.ProcessTrace([streams[0], handle])) == ERROR_INVALID_PARAMETER
    finally:
        for h in streams:
            api.CloseTrace(h)


def test_opentrace_errors(tmp_path):
    assert _code(lambda: api.OpenTrace(None)) == ERROR_INVALID_PARAMETER
    assert _code(lambda: api.OpenTrace(EVENT_TRACE_LOGFILE())) == ERROR_BAD_PATHNAME
    missing = EVENT_TRACE_LOGFILE(LogFileName=str(tmp_path / "missing.etl"))
    assert _code(lambda: api.OpenTrace(missing)) == ERROR_FILE_NOT_FOUND
    assert _code(lambda: api.OpenTraceFromFile(str(tmp_path / "x.etl"), None)) == \
        ERROR_INVALID_PARAMETER
    assert _code(lambda: api.OpenTraceFromFile(str(tmp_path / "x.etl"), ETW_OPEN_TRACE_OPTIONS(),
                                               LogFileHeader={})) == ERROR_INVALID_PARAMETER
    not_etl = tmp_path / "short.etl"
    not_etl.write_bytes(b"\0" * 16)
    assert _code(lambda: api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(not_etl)))) == \
        ERROR_BAD_FORMAT
    assert _code(lambda: api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(tmp_path)))) in (
        ERROR_BAD_PATHNAME, ERROR_ACCESS_DENIED)


def test_opentrace_on_an_empty_file_says_so_in_one_line(tmp_path):
    """One line: the code's name, the file once, the offset, what was expected (it read
    "[Errno None] ... An attempt was made to load a program ... PATH: offset 0x0 ...: 'PATH'")."""
    empty = tmp_path / "empty.etl"
    empty.write_bytes(b"")
    with pytest.raises(Win32Error) as info:
        api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(empty)))
    assert str(info.value) == (f"ERROR_BAD_FORMAT (11): {empty}: offset 0x0: expected a 72-byte "
                               f"WMI_BUFFER_HEADER, the file has 0 bytes")
    with pytest.raises(Win32Error) as info:
        api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(tmp_path)))
    assert str(info.value) == (f"ERROR_BAD_PATHNAME (161): {tmp_path}: is a directory: expected "
                               f"an .etl file")


def test_buffer_callback_returning_false_stops_with_error_cancelled(corpus_file):
    """BufferCallback runs after each buffer; FALSE stops ProcessTrace (ERROR_CANCELLED)
    right there: only the first (header) buffer's events were delivered."""
    calls = []

    def on_buffer(logfile):
        calls.append((logfile.BuffersRead, logfile.BufferSize, logfile.Filled))
        return False

    events, logfile, rc = collect(corpus_file("wppemitter-sample.etl"), BufferCallback=on_buffer)
    assert rc == ERROR_CANCELLED
    assert len(calls) == 1 and calls[0][0] == 1
    with EtlFile(corpus_file("wppemitter-sample.etl")) as etl:
        head = etl.read_buffer(etl.buffer_index()[0])
        assert calls[0][1:] == (len(head.data), head.records_end)
        assert len(events) == len(head.records())
    assert all(e.EventHeader.EventDescriptor.Id != 10 for e in events)


def test_buffer_callback_returning_true_or_none_continues(corpus_file):
    full, _, _ = collect(corpus_file("wppemitter-sample.etl"))
    for result in (True, 1, None):
        events, logfile, rc = collect(corpus_file("wppemitter-sample.etl"),
                                      BufferCallback=lambda lf, r=result: r)
        assert rc == ERROR_SUCCESS and len(events) == len(full)
        assert logfile.BuffersRead == 2


def test_windows11_buffer_callback_false_is_error_cancelled(corpus_file):
    seen = []
    options = ETW_OPEN_TRACE_OPTIONS(
        EventCallback=seen.append,
        BufferCallback=lambda buf, size, info, ctx: (
            seen.append(("buffer", info.BuffersRead, ctx)), False)[1],
        BufferCallbackContext="bctx")
    handle = api.OpenTraceFromFile(str(corpus_file("powershell.etl")), options)
    try:
        assert api.ProcessTrace([handle]) == ERROR_CANCELLED
    finally:
        api.CloseTrace(handle)
    assert seen[-1] == ("buffer", 1, "bctx")
    assert all(not isinstance(e, tuple) for e in seen[:-1])


@pytest.mark.parametrize("where", ["event", "buffer"])
def test_exception_in_a_callback_is_error_noaccess_with_the_exception(corpus_file, where):
    boom = KeyError("boom")
    armed = [True]

    def fail(*args):
        if armed[0]:
            raise boom

    fields = {"EventCallback": fail} if where == "event" else {"BufferCallback": fail}
    logfile = EVENT_TRACE_LOGFILE(LogFileName=str(corpus_file("wppstr-sample.etl")),
                                  ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD, **fields)
    handle = api.OpenTrace(logfile)
    with pytest.raises(Win32Error) as info:
        api.ProcessTrace([handle])
    assert info.value.winerror == ERROR_NOACCESS
    assert info.value.__cause__ is boom
    # the handle is still open and usable after the failure
    armed[0] = False
    assert api.ProcessTrace([handle]) == ERROR_SUCCESS
    assert api.CloseTrace(handle) == ERROR_SUCCESS


@pytest.mark.parametrize("name", ["powershell.etl", "lxcore_kernel.etl", "wppemitter-sample.etl"])
def test_one_file_is_delivered_in_the_engines_processtrace_order(corpus_file, name):
    """powershell.etl has 8 per-processor streams flushed out of order: events come in the
    order of decoder.ordering (per stream by sequence, merged by time), timestamps never
    decrease, nothing lost (same count as the file's records)."""
    path = corpus_file(name)
    events, _, _ = collect(path)
    with EtlFile(path) as etl:
        records = list(ordered_records(etl))
        expected = [(r.provider_id, r.event_id, r.timestamp, bytes(r.user_data)) for r in records
                    if r.kind != "unknown"]
    got = [(e.EventHeader.ProviderId, e.EventHeader.EventDescriptor.Id
            if e.EventHeader.ProviderId != EventTraceGuid else 0, None, e.UserData) for e in events]
    assert len(got) == len(expected)
    assert [g[3] for g in got] == [x[3] for x in expected]
    assert [e.BufferContext.ProcessorIndex for e in events] == [r.processor for r in records]
    assert {e.BufferContext.LoggerId for e in events} == {r.logger_id for r in records}
    stamps = [e.EventHeader.TimeStamp for e in events]
    assert stamps == sorted(stamps)
    assert len({e.BufferContext.ProcessorIndex for e in events}) > 1


#: every corpus file up to 1.2 MB (the bigger ones take seconds through the Python API)
_ORDER_FILES = [
    "smallEtlFile.etl", "SelfDescribingSingleEvent.etl", "SIH.20230422.034724.362.1.etl",
    "wpptypes-sample.etl", "wppenum-sample.etl", "wppemitter-sample.etl", "wppstr-sample.etl",
    "primitive-types.etl", "waasmedic.20251005_113019_195.etl", "lxcore_kernel.etl",
    "WindowsUpdate.20251008.140245.443.8.etl", "diaghub-dotnetcore3.1-win-x64.diaghub.user_injected.1.etl",
    "gcrundownevents.PerfViewData.clrRundown.etl", "trace.etl", "powershell.etl",
    "gcevents.PerfViewData.etl", "AMSITrace.etl", "test.etl",
]


@pytest.mark.parametrize("name", _ORDER_FILES)
def test_processtrace_order_is_the_engines_ordered_records(corpus_file, name):
    """ProcessTrace merges through decoder.ordering's merge: for every test file the events
    (payload, processor, raw timestamp) come exactly in ordered_records' order."""
    path = corpus_file(name)
    events = []
    handle = api.OpenTrace(EVENT_TRACE_LOGFILE(
        LogFileName=str(path), EventRecordCallback=events.append,
        ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD | PROCESS_TRACE_MODE_RAW_TIMESTAMP))
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(handle)
    with EtlFile(path) as etl:
        expected = [(bytes(r.user_data), r.processor, r.timestamp) for r in ordered_records(etl)
                    if r.kind != "unknown"]
    got = [(e.UserData, e.BufferContext.ProcessorIndex, e.EventHeader.TimeStamp) for e in events]
    # a WPP message logged without TRACE_MESSAGE_TIMESTAMP has no time: delivered as 0
    assert [(d, p, t if t is not None else 0) for d, p, t in expected] == got
    assert len(got) > 1


def _process_together(paths, **fields):
    """ProcessTrace over one handle per path (Context = the path); the merged events."""
    merged, handles = [], []
    try:
        for p in paths:
            handles.append(api.OpenTrace(EVENT_TRACE_LOGFILE(
                LogFileName=str(p), ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD,
                EventRecordCallback=merged.append, Context=p, **fields)))
        assert api.ProcessTrace(handles) == ERROR_SUCCESS
    finally:
        for h in handles:
            api.CloseTrace(h)
    return merged


def test_two_files_are_merged_by_time(corpus_file):
    """Handles given latest capture first: the merge still delivers the earlier capture first
    (a concatenation in handle order would not); each file keeps its own order; none lost."""
    a, b = corpus_file("wppemitter-sample.etl"), corpus_file("wppstr-sample.etl")
    alone = {p: collect(p)[0] for p in (a, b)}
    early, late = sorted((a, b), key=lambda p: alone[p][0].EventHeader.TimeStamp)
    assert alone[early][-1].EventHeader.TimeStamp < alone[late][0].EventHeader.TimeStamp
    merged = _process_together([late, early])
    assert [e.UserContext for e in merged] == \
        [early] * len(alone[early]) + [late] * len(alone[late])
    for p in (a, b):
        assert [identity(e) for e in merged if e.UserContext == p] == \
            [identity(e) for e in alone[p]]


def test_overlapping_files_interleave_by_time(tmp_path):
    """Two sessions written at the same time by the provider core: ProcessTrace over both
    files interleaves their events in timestamp order."""
    paths = [tmp_path / "one.etl", tmp_path / "two.etl"]
    control, message = uuid.uuid4(), uuid.uuid4()
    loggers = {}

    def on_control(code, context, buffer):
        if code == lib.WMI_ENABLE_EVENTS:
            loggers[context] = provider.GetTraceLoggerHandle(buffer)
        return 0

    registrations, sessions = [], []
    try:
        for i, path in enumerate(paths):
            control_i = uuid.UUID(int=control.int + i)
            registrations.append(provider.RegisterTraceGuids(on_control, i, control_i, [message]))
            sessions.append(provider.StartTrace(
                f"decoder-api-merge-{i}-{uuid.uuid4().hex[:6]}",
                provider.EVENT_TRACE_PROPERTIES(LogFileName=str(path), BufferSize=4)))
            provider.EnableTrace(True, 0xFFFFFFFF, 5, control_i, sessions[-1])
        for value in range(200):
            provider.TraceMessage(loggers[value % 2], 0x2B, message, 10,
                                  value.to_bytes(4, "little"))
    finally:
        for session in sessions:
            provider.ControlTrace(session, None, None, lib.EVENT_TRACE_CONTROL_STOP)
        for registration in registrations:
            provider.UnregisterTraceGuids(registration)
    merged = _process_together(paths)
    messages = [e for e in merged if e.EventHeader.Flags & 0x8]
    assert [int.from_bytes(e.UserData, "little") for e in messages] == list(range(200))
    assert [e.UserContext for e in messages] == [paths[v % 2] for v in range(200)]
    stamps = [e.EventHeader.TimeStamp for e in merged]
    assert stamps == sorted(stamps)


def test_start_and_end_time_bound_the_events(corpus_file):
    path = corpus_file("wppemitter-sample.etl")
    full, _, _ = collect(path)
    messages = [e for e in full if e.EventHeader.EventDescriptor.Id in (10, 11)
                and e.EventHeader.ProviderId != EventTraceGuid]
    start = messages[10].EventHeader.TimeStamp
    end = messages[20].EventHeader.TimeStamp
    window, _, rc = collect(path, start=start, end=end)
    assert rc == ERROR_SUCCESS
    expected = [identity(e) for e in full
                if start <= e.EventHeader.TimeStamp <= end or e is full[0]]
    assert [identity(e) for e in window] == expected
    assert window[0].EventHeader.ProviderId == EventTraceGuid   # header event always first
    assert len(window) >= 12
