"""Untrusted argument bytes never stop a run; the C rows path prints what the record path prints."""
from __future__ import annotations

import json
import random
import struct
import uuid

import etlgen
from fmthelp import reference_lines, row_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace import tmf
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records
from wpptrace.decoder.wpp import WppDecoder


def _decode(path, tmfset, *, rows: bool, output: str = "text"):
    """The formatting loop's lines (rows=True) or each record formatted on its own: in text,
    a line per record (a string argument may hold line breaks of its own)."""
    decoder = WppDecoder(tmfset, utc=True)
    with EtlFile(path) as etl:
        lines = (row_lines if rows else reference_lines)(decoder, etl, output)
    return lines, decoder.counters


_MESSAGES = None


def _corpus_messages(fmt_tmf, corpus):
    global _MESSAGES
    if _MESSAGES is None:
        driver = corpus / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
        tmfset = tmf.load(fmt_tmf, driver)
        _MESSAGES = (tmfset, list(tmfset.messages()))
    return _MESSAGES


# timing is not the property: a loaded CI machine must not fail it on speed (too_slow)
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_random_argument_bytes_never_stop_the_run(data, tmp_path_factory, fmt_tmf, corpus):
    tmfset, messages = _corpus_messages(fmt_tmf, corpus)
    picks = data.draw(st.lists(st.tuples(st.integers(0, len(messages) - 1),
                                         st.binary(max_size=80), st.sampled_from([0x2B, 0xAA, 0x6A])),
                               min_size=1, max_size=30))
    path = tmp_path_factory.mktemp("fuzz") / "f.etl"
    etlgen.write_messages(path, [
        (messages[i].guid, messages[i].number, payload, 7, 8, 0, etlgen.T0 + k * 100, flags)
        for k, (i, payload, flags) in enumerate(picks)], buffer_size=8192)
    lines, c = _decode(path, tmfset, rows=True)
    assert len(lines) == len(picks) + 1  # one line per message, plus the header line
    assert c.messages == len(picks) and c.formatted + c.unknown + c.format_errors == c.messages
    assert lines == _decode(path, tmfset, rows=False)[0]
    for output in ("csv", "jsonl"):      # the same records in the structured formats
        assert _decode(path, tmfset, rows=True, output=output)[0] == \
            _decode(path, tmfset, rows=False, output=output)[0]


def test_rows_give_the_same_text_as_records(tmp_path, fmt_tmf, corpus):
    """Repeated and unique payloads of two messages on two processors."""
    tmfset, _ = _corpus_messages(fmt_tmf, corpus)
    types = tmfset.lookup(uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea"), 10)
    emitter = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
    rnd = random.Random(5)
    rows = []
    for i in range(5000):
        if i % 3:
            rows.append((types.guid, 10, struct.pack("<iiq", i % 4, -i % 7, -5), 1, 2, 0,
                         etlgen.T0 + i * 10, 0xAA))  # few distinct payloads
        else:
            rows.append((emitter, 10, struct.pack("<iI", rnd.randrange(1 << 30), i), 1, 2, 1,
                         etlgen.T0 + i * 10, 0xAA))  # unique payloads
    path = tmp_path / "payloads.etl"
    etlgen.write_messages(path, rows, nprocs=2, buffer_size=8192)
    fast, counters = _decode(path, tmfset, rows=True)
    slow, _ = _decode(path, tmfset, rows=False)
    assert fast == slow and len(fast) == 5001
    assert counters.formatted == 5000


def test_rows_keep_the_engine_order_with_equal_timestamps_across_buffers(tmp_path, fmt_tmf):
    """Rows come in exactly ordering.ordered_records' order, even with many equal timestamps
    spread over buffer boundaries of two processor streams."""
    from wpptrace.decoder.engine import FileSource
    from wpptrace.decoder.wpp_rows import ROW_INDEX, RowView

    seq = ROW_INDEX["sequence"]
    emitter = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
    rows = [(emitter, 10, struct.pack("<ii", i, i), 1, 2, (i // 3) % 2, etlgen.T0 + (i // 7) * 10,
             etlgen.FLAGS_WPP) for i in range(3000)]
    path = tmp_path / "ties.etl"
    etlgen.write_messages(path, rows, nprocs=2, buffer_size=4096)
    with EtlFile(path) as etl:
        view = RowView()
        by_rows = [view.full_row(row)[seq] for rows, _ in FileSource(etl).ordered(view)
                   for row in rows]
    with EtlFile(path) as etl:
        by_heap = [rec.sequence or 0 for rec in ordered_records(etl)]
    assert by_rows == by_heap and len(by_rows) == 3001


def test_a_full_key_table_changes_nothing(tmp_path, fmt_tmf, corpus, monkeypatch):
    """Past the C key table's bound (distinct messages) rows take Python's path with the same
    text and counts; a tiny bound forces the overflow path."""
    from wpptrace.decoder import wpp_rows

    tmfset, messages = _corpus_messages(fmt_tmf, corpus)
    rnd = random.Random(11)
    rows = [(messages[i % 40].guid, messages[i % 40].number, bytes(rnd.randrange(4) for _ in range(12)),
             100 + i % 9, 4 + i % 2, i % 2, etlgen.T0 + i * 10, 0xAA) for i in range(3000)]
    path = tmp_path / "tables.etl"
    etlgen.write_messages(path, rows, nprocs=2, buffer_size=8192)
    slow, slow_counts = _decode(path, tmfset, rows=False)
    for cap in (3, 1 << 20):
        monkeypatch.setattr(wpp_rows, "KEY_CAP", cap)
        fast, fast_counts = _decode(path, tmfset, rows=True)
        assert fast == slow and len(fast) == 3001
        assert fast_counts == slow_counts


def test_json_escapes_at_every_place_in_a_word(tmp_path, fmt_tmf, corpus):
    """Strings whose quote, backslash or control character falls at each byte of the C
    writer's 8-byte scan words, in texts of every length around them: JSON Lines from the
    rows path equals the json module's (the record path)."""
    tmfset, messages = _corpus_messages(fmt_tmf, corpus)
    message = next(m for m in messages
                   if len(m.args) == 1 and m.args[0].item == "ItemString")   # '... to %10!s!'
    texts = [""]
    for length in range(1, 26):
        for at in range(length):
            for special in ('"', "\\", "\n", "\x01", "\x1f", "\t"):
                texts.append("abcdefghijklmnopqrstuvwxy"[:at] + special + "ABCDEFGHIJKLMNOPQRSTUVWXY"[at + 1:length])
    texts += ["é clean text of some length é", "\x7f\x20~ no escapes here at all, none"]
    path = tmp_path / "escapes.etl"
    etlgen.write_messages(path, [
        (message.guid, message.number, text.encode("utf-8") + b"\0", 7, 8, 0, etlgen.T0 + k * 100)
        for k, text in enumerate(texts)], buffer_size=65536)
    rows, _c = _decode(path, tmfset, rows=True, output="jsonl")
    assert rows == _decode(path, tmfset, rows=False, output="jsonl")[0]
    assert len(rows) == len(texts) + 1 and '\\"' in rows[2] and "\\u0001" in "".join(rows)


def test_json_times_in_the_first_second_and_across_seconds(tmp_path, fmt_tmf, corpus):
    """JSON Lines timestamp and filetime from the rows path (which reuses the text of each
    second) equal the record path's: FILETIMEs of the first second (no digits before the
    ticks), on, just before and just after second boundaries, tick digits with zeros."""
    tmfset, messages = _corpus_messages(fmt_tmf, corpus)
    message = next(m for m in messages
                   if len(m.args) == 1 and m.args[0].item == "ItemString")
    times = [0, 1, 9, 10, 999_999, 1_000_000, 9_999_999, 10_000_000, 10_000_001, 19_999_999,
             20_000_000, 20_000_100, 123_456_789, 99_999_999_999, 100_000_000_000,
             etlgen.START_TIME - 1, etlgen.START_TIME, etlgen.START_TIME + 7]
    path = tmp_path / "times.etl"
    etlgen.write_messages(path, [
        (message.guid, message.number, b"x\0", 7, 8, 0, etlgen.T0 + filetime)
        for filetime in times], buffer_size=65536, start_time=0)
    rows, _c = _decode(path, tmfset, rows=True, output="jsonl")
    assert rows == _decode(path, tmfset, rows=False, output="jsonl")[0]
    got = [json.loads(row)["filetime"] for row in rows[1:]]
    assert got == times
    assert '"timestamp":"1601-01-01T00:00:00.0000000Z","filetime":0,' in rows[1]


def test_string_argument_holding_a_line_break(tmp_path, fmt_tmf, corpus):
    """A string argument's line break is printed as it is, inside its record's line (found by
    the random-argument test: the line count once split records at it)."""
    tmfset, messages = _corpus_messages(fmt_tmf, corpus)
    m = next(m for m in messages if m.guid == uuid.UUID("38d5151a-4e4c-3539-1743-e6e17424d039")
             and m.number == 66)        # "--> Entry <DmfModule=0x%10!p! [%11!s!]"
    path = tmp_path / "f.etl"
    etlgen.write_messages(path, [(m.guid, m.number, b"\0" * 8 + b"line\nbreak\0", 7, 8, 0,
                                  etlgen.T0, 0x2B)], buffer_size=8192)
    lines, c = _decode(path, tmfset, rows=True)
    assert c.messages == c.formatted == 1
    assert len(lines) == 2 and lines[1].endswith("--> Entry <DmfModule=0x0000000000000000 [line\nbreak]")
    assert lines == _decode(path, tmfset, rows=False)[0]
