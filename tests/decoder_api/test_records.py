"""What callbacks receive: the EventCallback/EventRecordCallback union, UserContext, the
synthetic header event, timestamps (RAW vs FILETIME, checked against dissect.etl) and WPP
messages as EVENT_RECORD / EVENT_TRACE on real Windows captures."""
from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter

import pytest
from dissect.etl.etl import ETL

from wpptrace.decoder import api
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.consumer_types import (EVENT_RECORD, EVENT_TRACE, EVENT_TRACE_LOGFILE,
                                      TRACE_LOGFILE_HEADER, EventTraceGuid, GUID_NULL,
                                      PROCESS_TRACE_MODE_EVENT_RECORD,
                                      PROCESS_TRACE_MODE_RAW_TIMESTAMP)
from wpptrace.decoder.timestamps import TimeConverter

from .api_helpers import ALL_FILES, WPP_FILES, collect

EMITTER_GUID = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
EPOCH_1601 = dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)
#: dissect.etl computes times in float seconds since 1601: at ~1.3e16 us a double resolves
#: 2 us, so its datetimes may be off by that much (seen: StartTime ...175449 -> ...17546 us)
DISSECT_US_ERROR = 2


def test_the_callback_union_is_one_member():
    logfile = EVENT_TRACE_LOGFILE()
    logfile.EventCallback = print
    assert logfile.EventRecordCallback is print
    logfile.EventRecordCallback = len
    assert logfile.EventCallback is len
    with pytest.raises(TypeError):
        EVENT_TRACE_LOGFILE(EventCallback=print, EventRecordCallback=len)
    logfile.LogFileMode = PROCESS_TRACE_MODE_EVENT_RECORD
    assert logfile.ProcessTraceMode == PROCESS_TRACE_MODE_EVENT_RECORD


def test_event_record_flag_chooses_the_callback_signature(corpus_file):
    """Same callable, set once through either union name: with PROCESS_TRACE_MODE_EVENT_RECORD
    it gets EVENT_RECORDs, without it EVENT_TRACEs (the PEVENT_RECORD_CALLBACK page)."""
    path = corpus_file("wppemitter-sample.etl")
    as_records, _, _ = collect(path, PROCESS_TRACE_MODE_EVENT_RECORD)
    as_traces, _, _ = collect(path, 0)
    assert as_records and all(type(e) is EVENT_RECORD for e in as_records)
    assert as_traces and all(type(e) is EVENT_TRACE for e in as_traces)
    assert len(as_records) == len(as_traces)
    assert [e.UserData for e in as_records] == [e.MofData for e in as_traces]


def test_context_is_delivered_as_user_context(corpus_file):
    context = object()
    events, _, _ = collect(corpus_file("wppstr-sample.etl"), Context=context)
    assert events and all(e.UserContext is context for e in events)


@pytest.mark.parametrize("name", ALL_FILES)
@pytest.mark.parametrize("mode", [PROCESS_TRACE_MODE_EVENT_RECORD, 0])
def test_first_event_is_the_synthetic_logfile_header(corpus_file, name, mode):
    """ProviderId EventTraceGuid, Opcode 0, payload = TRACE_LOGFILE_HEADER as in the file."""
    events, logfile, _ = collect(corpus_file(name), mode)
    first = events[0]
    with EtlFile(corpus_file(name)) as etl:
        raw = etl.header.raw
        start = etl.header.start_time
    if mode:
        assert first.EventHeader.ProviderId == EventTraceGuid
        assert first.EventHeader.EventDescriptor.Opcode == 0
        assert first.UserData == raw and first.UserDataLength == len(raw)
        assert first.EventHeader.TimeStamp == start
    else:
        assert first.Header.Guid == EventTraceGuid and first.Header.Type == 0
        assert first.MofData == raw and first.MofLength == len(raw)
    header = TRACE_LOGFILE_HEADER.from_payload(raw, logfile.LogfileHeader.PointerSize)
    assert header == logfile.LogfileHeader
    # no other event claims to be a log-file header
    def is_header(e):
        if mode:
            return (e.EventHeader.ProviderId, e.EventHeader.EventDescriptor.Opcode)
        return (e.Header.Guid, e.Header.Type)
    assert [e for e in events[1:] if is_header(e) == (EventTraceGuid, 0)] == []


def test_logfile_header_output_matches_dissect(corpus_file):
    path = corpus_file("wppemitter-sample.etl")
    logfile = EVENT_TRACE_LOGFILE(LogFileName=str(path))
    handle = api.OpenTrace(logfile)
    api.CloseTrace(handle)
    with open(path, "rb") as fh:
        first = next(iter(ETL(fh)))
        theirs = first.event
        h = logfile.LogfileHeader
        assert (h.BufferSize, h.BuffersWritten, h.PointerSize, h.PerfFreq, h.ReservedFlags,
                h.NumberOfProcessors, h.EventsLost, h.LogFileMode, h.ProviderVersion) == (
            theirs.BufferSize, theirs.BuffersWritten, theirs.PointerSize, theirs.PerfFreq,
            theirs.ReservedFlags, theirs.NumberOfProcessors, theirs.EventsLost,
            theirs.LogFileMode, theirs.ProviderVersion)
        assert h.LoggerName == "FN_WppProbe" == theirs.SessionNameString.rstrip("\x00")
    assert logfile.BufferSize == 8192 and logfile.IsKernelTrace == 0


def _filetime_us(when: dt.datetime) -> int:
    delta = when - EPOCH_1601
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dissect_messages(path):
    with open(path, "rb") as fh:
        out = []
        for record in ETL(fh):
            h = record.header
            if type(h).__name__ == "MessageTraceHeader":
                # items of flags 0xAA: GUID 16 + TIMESTAMP 8 + TID/PID 8, then the arguments
                out.append((h.provider_id, h.thread_id, h.process_id, h.timestamp,
                            bytes(h.payload)[32:]))
        return out


@pytest.mark.parametrize("name", WPP_FILES)
def test_wpp_messages_as_event_records(corpus_file, name):
    """Real WPP captures (MessageFlags 0xAA = GUID|TIMESTAMP|SYSTEMINFO|POINTER64): ProviderId
    = message GUID, Id = MessageNumber, TRACE_MESSAGE + CLASSIC + 64-bit flags, TID/PID and
    FILETIME timestamps equal to what dissect.etl decodes."""
    events, _, _ = collect(corpus_file(name))
    messages = [e for e in events if e.EventHeader.Flags & 0x0008]
    theirs = _dissect_messages(corpus_file(name))
    assert len(messages) == len(theirs) > 0
    assert Counter((e.EventHeader.ProviderId, e.EventHeader.ThreadId, e.EventHeader.ProcessId,
                    e.UserData) for e in messages) == Counter(
        (g, tid, pid, args) for g, tid, pid, _, args in theirs)
    our_times = sorted(e.EventHeader.TimeStamp // 10 for e in messages)
    their_times = sorted(_filetime_us(when) for _, _, _, when, _ in theirs)
    assert all(abs(o - t) <= DISSECT_US_ERROR for o, t in zip(our_times, their_times))
    for e in messages:
        h = e.EventHeader
        assert h.Flags & 0x0108 == 0x0108          # TRACE_MESSAGE | CLASSIC_HEADER
        assert h.Flags & 0x0040 and not h.Flags & 0x0020   # 64-bit (POINTER64 logged)
        assert h.HeaderType == 0 and h.EventDescriptor.Id >= 10
        assert h.ThreadId and h.ProcessId
        assert e.MessageSequence is None               # no TRACE_MESSAGE_SEQUENCE logged
        assert e.BufferContext.LoggerId == events[0].BufferContext.LoggerId


def test_wpp_emitter_message_numbers(corpus_file):
    events, _, _ = collect(corpus_file("wppemitter-sample.etl"))
    counts = Counter((e.EventHeader.ProviderId, e.EventHeader.EventDescriptor.Id)
                     for e in events if e.EventHeader.Flags & 0x0008)
    assert counts == {(EMITTER_GUID, 10): 30, (EMITTER_GUID, 11): 15}


def test_wpp_string_arguments_are_the_user_data(corpus_file):
    """wppstr-sample.etl logs "alpha", "bravo", "charlie" (ANSI) and "root" (UTF-16), each
    NUL-terminated inline (corpus README): UserData carries exactly those argument bytes."""
    events, _, _ = collect(corpus_file("wppstr-sample.etl"))
    payloads = [e.UserData for e in events if e.EventHeader.Flags & 0x0008]
    assert [name in p for p, name in zip(payloads, (b"alpha\0", b"bravo\0", b"charlie\0"))] == \
        [True] * 3
    assert "root".encode("utf-16-le") + b"\0\0" in payloads[3]


def test_wpp_messages_as_classic_event_trace(corpus_file):
    """EventCallback view: Header members set for the flags that were specified (0xAA:
    Guid, ThreadId/ProcessId, TimeStamp), Flags = the logged MessageFlags, MessageNumber in
    Class.Version, argument bytes in MofData."""
    records, _, _ = collect(corpus_file("wppemitter-sample.etl"))
    traces, _, _ = collect(corpus_file("wppemitter-sample.etl"), 0)
    pairs = [(r, t) for r, t in zip(records, traces) if r.EventHeader.Flags & 0x0008]
    assert len(pairs) == 45
    for r, t in pairs:
        assert t.Header.Flags == 0xAA
        assert t.Header.Guid == EMITTER_GUID
        assert (t.Header.ThreadId, t.Header.ProcessId) == (r.EventHeader.ThreadId,
                                                           r.EventHeader.ProcessId)
        assert t.Header.TimeStamp == r.EventHeader.TimeStamp
        assert t.Header.Version == r.EventHeader.EventDescriptor.Id
        assert t.InstanceId == 0                      # no sequence logged
        assert t.MofData == r.UserData and t.BufferContext == r.BufferContext


@pytest.mark.parametrize("name", ["wppemitter-sample.etl", "powershell.etl", "lxcore_kernel.etl"])
def test_raw_timestamp_mode_gives_raw_clock_values(corpus_file, name):
    path = corpus_file(name)
    converted, _, _ = collect(path)
    raw, _, _ = collect(path, PROCESS_TRACE_MODE_EVENT_RECORD | PROCESS_TRACE_MODE_RAW_TIMESTAMP)
    with EtlFile(path) as etl:
        to_filetime = TimeConverter(etl.header).to_filetime
        assert raw[0].EventHeader.TimeStamp == etl.header.header_timestamp
        assert converted[0].EventHeader.TimeStamp == etl.header.start_time
    assert len(raw) == len(converted)
    assert any(r.EventHeader.TimeStamp != c.EventHeader.TimeStamp for r, c in zip(raw, converted))
    for r, c in zip(raw, converted):
        assert c.EventHeader.TimeStamp == to_filetime(r.EventHeader.TimeStamp)


def test_filetime_timestamps_agree_with_dissect(corpus_file):
    """dissect.etl converts with the same §6 rule, independently (through float seconds)."""
    path = corpus_file("powershell.etl")
    events, _, _ = collect(path)
    ours = sorted(e.EventHeader.TimeStamp // 10 for e in events[1:])
    with open(path, "rb") as fh:
        theirs = sorted(_filetime_us(r.header.timestamp) for i, r in enumerate(ETL(fh)) if i)
    assert len(ours) == len(theirs) > 100
    assert max(abs(a - b) for a, b in zip(ours, theirs)) <= DISSECT_US_ERROR


def test_manifest_event_fields(corpus_file):
    """EVENT_HEADER records keep their descriptor, flags and activity id."""
    events, _, _ = collect(corpus_file("primitive-types.etl"))
    manifest = [e for e in events if not e.EventHeader.Flags & 0x0100]
    assert manifest
    with EtlFile(corpus_file("primitive-types.etl")) as etl:
        records = [r for b in etl.iter_buffers() for r in b.records() if r.kind == "event"]
    assert len(manifest) == len(records)
    for e, r in zip(manifest, records):
        d = e.EventHeader.EventDescriptor
        assert (e.EventHeader.ProviderId, d.Id, d.Version, d.Level, d.Opcode, d.Task,
                d.Keyword, d.Channel) == (r.provider_id, r.event_id, r.version, r.level,
                                          r.opcode, r.task, r.keyword, r.channel)
        assert e.EventHeader.Flags & 0xFF == r.flags & 0xFF
        assert e.UserData == bytes(r.user_data)
        assert e.ExtendedDataCount == len(e.ExtendedData)
    assert GUID_NULL not in {e.EventHeader.ProviderId for e in manifest}


@pytest.mark.parametrize("mode", [PROCESS_TRACE_MODE_EVENT_RECORD, 0])
def test_every_member_of_every_delivered_structure_is_set(corpus_file, mode):
    """The hot path builds structures without their constructors: each one must still have
    every Win32 member (repr reads them all) and compare equal to a copy of itself."""
    for name in ALL_FILES:
        events, logfile, _ = collect(corpus_file(name), mode)
        for event in events:
            text = repr(event)
            assert "Header" in text
            copy = type(event)(**{n: getattr(event, n) for n in type(event).__slots__})
            assert copy == event
    assert "EventCallback=" in repr(logfile)


def _dissect_event_headers(path):
    """(ProviderId, Id, Version, Channel, Level, Opcode, Task, Keyword, TID, PID,
    ProcessorTime, ActivityId, EventProperty) of every EVENT_HEADER record, per dissect.etl."""
    out = []
    with open(path, "rb") as fh:
        for record in ETL(fh):
            if type(record.header).__name__ != "EventHeader":
                continue
            h = record.header.header
            out.append((uuid.UUID(bytes_le=bytes(h.ProviderId)), h.Id, h.Version, h.Channel,
                        h.Level, h.OpCode, h.Task, h.Keywords, h.ThreadId, h.ProcessId,
                        h.ProcessorTime, uuid.UUID(bytes_le=bytes(h.ActivityId)),
                        h.EventProperty))
    return out


@pytest.mark.parametrize("name", ["powershell.etl", "lxcore_kernel.etl", "primitive-types.etl"])
def test_manifest_event_headers_agree_with_dissect(corpus_file, name):
    events, _, _ = collect(corpus_file(name))
    ours = []
    for e in events:
        h = e.EventHeader
        if h.Flags & 0x0100:          # classic / kernel / message records
            continue
        d = h.EventDescriptor
        ours.append((h.ProviderId, d.Id, d.Version, d.Channel, d.Level, d.Opcode, d.Task,
                     d.Keyword, h.ThreadId, h.ProcessId, h.ProcessorTime, h.ActivityId,
                     h.EventProperty))
    theirs = _dissect_event_headers(corpus_file(name))
    assert len(ours) == len(theirs) > 0
    assert Counter(ours) == Counter(theirs)


def test_classic_event_trace_headers_agree_with_dissect(corpus):
    """97 classic EVENT_TRACE_HEADER records (kernel MOF classes) of a relogged Windows file,
    as EVENT_TRACE: Guid, Class (Type/Level/Version), TID/PID and CPU times as dissect reads
    them."""
    path = corpus / "etl" / "Alan-Jowett__sonde" / "test.etl"
    events, _, _ = collect(path, 0)
    ours = Counter((e.Header.Guid, e.Header.Type | e.Header.Level << 8 | e.Header.Version << 16,
                    e.Header.ThreadId, e.Header.ProcessId, e.Header.KernelTime, e.Header.UserTime)
                   for e in events if e.Header.HeaderType in (0x0A, 0x14))
    theirs = Counter()
    with open(path, "rb") as fh:
        for record in ETL(fh):
            if type(record.header).__name__ == "EventTraceHeader":
                h = record.header.header
                theirs[(uuid.UUID(bytes_le=bytes(h.ProviderId)), h.Version, h.ThreadId,
                        h.ProcessId, h.KernelTime, h.UserTime)] += 1
    assert sum(theirs.values()) == 97
    assert ours == theirs
