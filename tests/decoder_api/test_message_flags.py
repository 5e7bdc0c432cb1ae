"""Files written by the provider core: WPP messages with each combination of MessageFlags
(header members set only for the flags that were specified, TraceMessageVa page, in the
EVENT_RECORD and the classic EVENT_TRACE view) and with each session clock type."""
from __future__ import annotations

import time

import pytest

from wpptrace.decoder.consumer_types import (GUID_NULL, PROCESS_TRACE_MODE_EVENT_RECORD,
                                      PROCESS_TRACE_MODE_RAW_TIMESTAMP)
from wpptrace._core import lib

from .api_helpers import ProviderSession, collect

SEQUENCE, GUID, TIMESTAMP, SYSTEMINFO, POINTER64 = 0x01, 0x02, 0x08, 0x20, 0x80
FLAG_SETS = (0x00, GUID, GUID | TIMESTAMP, GUID | SYSTEMINFO, SEQUENCE,
             SEQUENCE | GUID | SYSTEMINFO,
             SEQUENCE | GUID | TIMESTAMP | SYSTEMINFO)


@pytest.fixture(scope="module")
def flags_file(tmp_path_factory):
    """One message per flag set (number 10 + i, argument = i as ULONG), sequence mode on."""
    path = tmp_path_factory.mktemp("flags") / "flags.etl"
    # one buffer stream: messages without a timestamp keep their logging order even if the
    # thread moves to another CPU meanwhile (per-processor buffers would split them)
    with ProviderSession("decoder-api-flags", LogFileName=str(path), BufferSize=8,
                         LogFileMode=lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
                         | lib.EVENT_TRACE_USE_GLOBAL_SEQUENCE
                         | lib.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as session:
        for i, flags in enumerate(FLAG_SETS):
            session.log(10 + i, i, flags)
    return path, session.message_guid


def _messages(path, mode):
    events, _, _ = collect(path, mode)
    return events[1:]


def test_event_record_members_follow_the_flags(flags_file):
    path, message = flags_file
    records = _messages(path, PROCESS_TRACE_MODE_EVENT_RECORD)
    assert len(records) == len(FLAG_SETS)
    sequences = []
    for i, (flags, record) in enumerate(zip(FLAG_SETS, records)):
        h = record.EventHeader
        assert h.EventDescriptor.Id == 10 + i
        assert record.UserData == i.to_bytes(4, "little")
        assert h.Flags & 0x0148 == 0x0148    # TRACE_MESSAGE | CLASSIC_HEADER | 64-bit
        assert h.ProviderId == (message if flags & GUID else GUID_NULL)
        assert bool(h.TimeStamp) == bool(flags & TIMESTAMP)
        assert bool(h.ThreadId) == bool(h.ProcessId) == bool(flags & SYSTEMINFO)
        assert (record.MessageSequence is not None) == bool(flags & SEQUENCE)
        if flags & SEQUENCE:
            sequences.append(record.MessageSequence)
    assert sequences == sorted(sequences) and sequences[0] >= 1 and len(set(sequences)) == 3


def test_event_trace_members_follow_the_flags(flags_file):
    path, message = flags_file
    traces = _messages(path, 0)
    records = _messages(path, PROCESS_TRACE_MODE_EVENT_RECORD)
    for i, (flags, event, record) in enumerate(zip(FLAG_SETS, traces, records)):
        h = event.Header
        assert h.Flags == flags | POINTER64          # the logged MessageFlags
        assert h.Version == 10 + i                   # MessageNumber
        assert h.Guid == (message if flags & GUID else GUID_NULL)
        assert h.TimeStamp == record.EventHeader.TimeStamp
        assert (h.ThreadId, h.ProcessId) == (record.EventHeader.ThreadId,
                                             record.EventHeader.ProcessId)
        assert event.InstanceId == (record.MessageSequence or 0)
        assert event.MofData == record.UserData and event.MofLength == 4


FILETIME_UNIX_EPOCH = 116_444_736_000_000_000


@pytest.mark.parametrize("clock", [1, 2, 3])
def test_filetime_of_each_clock_type_is_wall_clock_time(tmp_path, clock):
    """Files written with each session clock (1 QPC, 2 system time, 3 CPU cycles): delivered
    FILETIMEs fall between the wall-clock times taken around the logging; with the system
    time clock the raw values already are FILETIMEs."""
    path = tmp_path / f"clock{clock}.etl"
    with ProviderSession("decoder-api-clock", LogFileName=str(path), BufferSize=8,
                         ClientContext=clock) as session:
        before = time.time_ns() // 100 + FILETIME_UNIX_EPOCH
        for value in range(20):
            session.log(10, value)
        after = time.time_ns() // 100 + FILETIME_UNIX_EPOCH
    converted, logfile, _ = collect(path)
    raw, _, _ = collect(path, PROCESS_TRACE_MODE_EVENT_RECORD | PROCESS_TRACE_MODE_RAW_TIMESTAMP)
    assert logfile.LogfileHeader.ReservedFlags == clock
    stamps = [e.EventHeader.TimeStamp for e in converted[1:]]
    slack = 20_000     # 2 ms: clocks read a moment apart, and CPU-cycle rates are rounded
    assert len(stamps) == 20 and all(before - slack <= s <= after + slack for s in stamps)
    if clock == 2:
        assert [e.EventHeader.TimeStamp for e in raw] == [e.EventHeader.TimeStamp
                                                         for e in converted]
    else:
        assert all(r.EventHeader.TimeStamp != c.EventHeader.TimeStamp
                   for r, c in zip(raw[1:], converted[1:]))
