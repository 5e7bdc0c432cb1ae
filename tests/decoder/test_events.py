"""The Pythonic layer: ``for event in wpptrace.decoder.open(path)`` with typed events."""
from __future__ import annotations

import datetime as dt
import uuid

import wpptrace.decoder as decoder


def test_wpp_file_as_typed_events(corpus_file):
    with decoder.open(corpus_file("wppemitter-sample.etl")) as events:
        got = list(events)
        assert events.errors == []
    head = got[0]
    assert isinstance(head, decoder.HeaderEvent)
    assert head.header.logger_name == "FN_WppProbe" and head.provider_id == decoder.records.EVENT_TRACE_GUID
    assert head.timestamp == decoder.timestamps.filetime_to_datetime(head.header.start_time)
    messages = [e for e in got if isinstance(e, decoder.MessageEvent)]
    assert len(messages) == 45
    m = messages[0]
    assert m.message_guid == uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
    assert (m.number, m.sequence, m.pointer_size, m.flags) == (10, None, 8, 0xAA)
    assert (m.thread_id, m.process_id, m.processor) == (29228, 9292, 2)
    assert isinstance(m.user_data, bytes) and m.user_data[:4] == bytes(4)
    assert m.timestamp.tzinfo is dt.timezone.utc and m.timestamp.year == 2026
    assert m.filetime == events.clock.to_filetime(m.raw_timestamp)
    times = [e.filetime for e in messages]
    assert times == sorted(times)


def test_kinds_map_to_classes(corpus):
    with decoder.open(corpus / "etl/Alan-Jowett__sonde/test.etl") as events:
        classes = {type(e).__name__ for e in events}
    assert classes == {"HeaderEvent", "SystemEvent", "ClassicEvent", "ManifestEvent"}
    with decoder.open(corpus / "etl/Alan-Jowett__sonde/test.etl") as events:
        evt = next(e for e in events if isinstance(e, decoder.ManifestEvent))
        full = next(e for e in events if isinstance(e, decoder.ClassicEvent))
    assert (evt.provider_id, evt.level, evt.keyword, evt.opcode) == (
        uuid.UUID("559e1292-fdb4-551e-6ee3-4e8c6d9da223"), 4, 1, 0)
    assert (full.event_type, full.opcode, full.provider_id) == (
        33, 33, uuid.UUID("9b79ee91-b5fd-41c0-a243-4248e266e9d0"))


def test_raw_timestamps_mode(corpus_file):
    with decoder.open(corpus_file("wppstr-sample.etl"), raw_timestamps=True) as events:
        got = list(events)
    assert all(e.filetime == e.raw_timestamp for e in got) and got[0].timestamp is None
