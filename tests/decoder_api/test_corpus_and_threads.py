"""The API over every real corpus file (counts, header first, 32-bit files, compressed files),
damaged input, buffer headers, and concurrent use from several threads."""
from __future__ import annotations

import threading

import pytest

from wpptrace.decoder import api
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.consumer_types import (ETW_BUFFER_HEADER, EVENT_TRACE_LOGFILE, EventTraceGuid,
                                      PROCESS_TRACE_MODE_EVENT_RECORD)
from wpptrace.winerror import ERROR_BUSY, ERROR_SUCCESS, Win32Error

from .api_helpers import PATIENCE, collect, identity


def _corpus_files(corpus):
    return sorted(corpus.rglob("*.etl"))


def test_every_corpus_file_delivers_every_record(corpus):
    """Each known record of every real file (compressed, 32-bit, circular, relogged ...) is
    delivered exactly once, the synthetic header first, with no damage reported."""
    files = _corpus_files(corpus)
    assert len(files) >= 24
    for path in files:
        count = 0
        first = []

        def on_event(record):
            nonlocal count
            if not first:
                first.append(record)
            count += 1

        handle = api.OpenTrace(EVENT_TRACE_LOGFILE(
            LogFileName=str(path), ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD,
            EventRecordCallback=on_event))
        try:
            assert api.ProcessTrace([handle]) == ERROR_SUCCESS
            assert api.GetTraceIssues(handle) == [], path
        finally:
            api.CloseTrace(handle)
        with EtlFile(path) as etl:
            stats = etl.scan()
            assert count == stats.records - stats.by_kind["unknown"], path
            assert first[0].UserData == etl.header.raw, path
        assert first[0].EventHeader.ProviderId == EventTraceGuid


def test_a_32_bit_file_gives_32_bit_events(corpus):
    path = corpus / "etl" / "microsoft__perfview" / "smallEtlFile.etl"
    events, logfile, _ = collect(path)
    assert logfile.LogfileHeader.PointerSize == 4
    assert events and all(e.EventHeader.Flags & 0x0020 and not e.EventHeader.Flags & 0x0040
                          for e in events if e.EventHeader.Flags & 0x0100)


def test_buffer_header_struct_matches_the_engine(corpus_file):
    path = corpus_file("powershell.etl")
    with EtlFile(path) as etl, open(path, "rb") as raw:
        for info in etl.buffer_index():
            raw.seek(info.file_offset)
            h = ETW_BUFFER_HEADER.from_buffer(raw.read(0x48))
            assert (h.BufferSize, h.SequenceNumber, h.ClientContext.ProcessorIndex,
                    h.ClientContext.LoggerId, h.BufferType, h.BufferFlag, h.SavedOffset,
                    h.Offset, h.TimeStamp) == (
                info.size_on_disk, info.sequence, info.processor, info.logger_id,
                info.buffer_type, info.flags, info.saved_offset, info.filled_bytes,
                info.timestamp)
    with pytest.raises(ValueError):
        ETW_BUFFER_HEADER.from_buffer(b"\0" * 0x47)


def test_damaged_file_delivers_intact_records_and_reports_the_damage(corpus_file, tmp_path):
    source = corpus_file("wppemitter-sample.etl")
    data = bytearray(source.read_bytes())
    intact, _, _ = collect(source)
    with EtlFile(source) as etl:
        second = etl.buffer_index()[1]
        records = etl.read_buffer(second).records()
    victim = records[5]                      # smash one message's marker in the data buffer
    at = second.file_offset + victim.offset
    data[at:at + 4] = b"\xAB\xCD\xEF\x01"
    damaged = tmp_path / "damaged.etl"
    damaged.write_bytes(bytes(data))
    events = []
    handle = api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=str(damaged),
                                               ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD,
                                               EventRecordCallback=events.append))
    try:
        assert api.ProcessTrace([handle]) == ERROR_SUCCESS
        issues = api.GetTraceIssues(handle)
    finally:
        api.CloseTrace(handle)
    assert len(issues) == 1 and issues[0].offset == at and str(damaged) in issues[0].file
    ours = [identity(e) for e in events]
    assert len(ours) == len(intact) - 1
    assert set(ours) <= {identity(e) for e in intact}


def test_concurrent_processtrace_on_separate_handles(corpus_file):
    paths = [corpus_file("powershell.etl"), corpus_file("wppemitter-sample.etl")] * 2
    expected = {p: [identity(e) for e in collect(p)[0]] for p in set(paths)}
    results, errors = {}, []

    def worker(i, path):
        try:
            results[i] = [identity(e) for e in collect(path)[0]]
        except BaseException as exc:   # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(PATIENCE)
    assert not errors
    assert all(results[i] == expected[p] for i, p in enumerate(paths))


def test_processtrace_on_a_handle_already_being_processed_is_busy(corpus_file):
    outcome = []
    box = {}

    def on_event(record):
        if not outcome:
            try:
                api.ProcessTrace([box["handle"]])
            except Win32Error as exc:
                outcome.append(exc.winerror)

    box["handle"] = api.OpenTrace(EVENT_TRACE_LOGFILE(
        LogFileName=str(corpus_file("wppstr-sample.etl")),
        ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD, EventRecordCallback=on_event))
    try:
        assert api.ProcessTrace([box["handle"]]) == ERROR_SUCCESS
    finally:
        api.CloseTrace(box["handle"])
    assert outcome == [ERROR_BUSY]
