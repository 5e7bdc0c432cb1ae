"""Records in ProcessTrace order: header record first, then a merge of buffer streams.

Each processor writes its own stream of buffers, flushed to the file out of order
(etl-format.md §1). Like ProcessTrace (PEVENT_RECORD_CALLBACK, "Technical details"), we
sort each stream's buffers by SequenceNumber and merge the streams by timestamp, assuming
that events within a buffer are in time order and buffers of one stream do not overlap.
When a file breaks those assumptions (clock set back with system-time clocks, imprecise
clocks, corrupt or hand-made files) events come out in the same out-of-order way the page
describes, never lost. Records without a timestamp (messages logged without
TRACE_MESSAGE_TIMESTAMP) sort at the time of the record before them in their stream.
Memory: one buffer per stream at a time.
"""
from __future__ import annotations

import heapq
from typing import TYPE_CHECKING, Iterator

from .records import Record

if TYPE_CHECKING:
    from .etlfile import BufferInfo, EtlFile


def _sort_key(record: Record) -> int:
    return record._t[4]      # etlrd_record.timestamp (carried forward when absent)


def buffer_streams(etlfile: "EtlFile") -> list[list["BufferInfo"]]:
    """Data buffers grouped per processor, each group in SequenceNumber order."""
    streams: dict[int, list] = {}
    for info in etlfile.buffer_index():
        if info.index == 0:
            continue
        streams.setdefault(info.processor, []).append(info)
    return [sorted(group, key=lambda i: (i.sequence, i.index)) for _, group in sorted(streams.items())]


def _stream_records(etlfile: "EtlFile", infos: list["BufferInfo"]) -> Iterator[Record]:
    last = 0
    for info in infos:
        buf = etlfile.read_buffer(info, last)
        records = buf.records()
        etlfile._account(buf)
        if buf.stats is not None:
            last = buf.stats.last_timestamp
        yield from records


def ordered_records(etlfile: "EtlFile") -> Iterator[Record]:
    """Every record of the file in ProcessTrace order (see the module docstring)."""
    index = etlfile.buffer_index()
    head_records: list[Record] = []
    if index and index[0].index == 0:
        buf = etlfile.read_buffer(index[0])
        head_records = buf.records()
        etlfile._account(buf)
    # the log-file header record is delivered first, whatever its timestamp
    rest = head_records
    if head_records and head_records[0].kind == "system" and head_records[0].event_id == 0:
        yield head_records[0]
        rest = head_records[1:]
    streams = [iter(rest)] + [_stream_records(etlfile, s) for s in buffer_streams(etlfile)]
    yield from heapq.merge(*streams, key=_sort_key)
