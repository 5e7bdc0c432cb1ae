"""Regression: every engine view gets the same header event for a damaged header record.

When the log-file header record's marker is damaged but its facts are read, ProcessTrace
still delivers the header event. Only the formatter's rows had it (a row written field by
field in Python, its time clamped by rules written again beside the C walker's); the
records (``ordered_records``, ``iter_records``) had none. The engine now hands every view
the header buffer made from the facts, so each view's event is the one the intact record
gives: the same record fields and the same row, times clamped by the C walker's rules.
"""
from __future__ import annotations

import struct

import pytest

from wpptrace.decoder import ordered_records
from wpptrace.decoder.engine import FileSource
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.wpp_rows import LOGFILE_HEADER, ROW_INDEX, RowView


def _facts(record) -> tuple:
    return (record.kind, record.event_id, record.timestamp, record.thread_id,
            record.process_id, record.file_offset, record.size, record.header_type,
            record.flags, record.version, record.processor, bytes(record.raw),
            bytes(record.user_data))


def _header_row(path) -> tuple:
    view = RowView()
    with EtlFile(path) as etl:
        chunks = FileSource(etl).ordered(view)
        refs, _keys = next(chunks)
        return view.full_row(refs[0])


@pytest.fixture(params=[None, 0, 1 << 62, -1, -(1 << 63)],
                ids=["as-read", "zero", "far-future", "minus-one", "int64-min"])
def pair(request, corpus_file, header_record):
    """The wppemitter capture with the header record's SystemTime set (None: as in the file),
    intact and with the record's marker flags zeroed."""
    def set_time(data: bytearray) -> None:
        struct.pack_into("<q", data, header_record.at("SystemTime"), request.param)
    return header_record.marker_zeroed(corpus_file("wppemitter-sample.etl"),
                                       None if request.param is None else set_time)


def test_records_in_both_orders_start_with_the_header_event(pair):
    intact, damaged = pair
    for read in (lambda etl: next(iter(ordered_records(etl))),
                 lambda etl: next(etl.iter_records())):
        with EtlFile(intact) as a, EtlFile(damaged) as b:
            assert _facts(read(b)) == _facts(read(a))


def test_the_header_row_is_the_one_the_record_gives(pair):
    intact, damaged = pair
    row = _header_row(damaged)
    assert row[ROW_INDEX["key"]] == LOGFILE_HEADER
    assert row == _header_row(intact)


def test_counted_once_as_damaged(pair):
    intact, damaged = pair
    with EtlFile(intact) as a, EtlFile(damaged) as b:
        whole, hurt = a.scan(), b.scan()
        assert hurt.records == whole.records - 1 and (whole.damaged, hurt.damaged) == (0, 1)
        assert sum(1 for _ in b.iter_records()) == whole.records
