"""Raw record rows in ProcessTrace order, for the formatter's hot path (no per-record objects).

Same order as ``ordering.ordered_records`` (log-file header first; each processor's buffers
by SequenceNumber; streams merged by timestamp, ties in stream order) but yields batches of
rows ``(timestamp, walker_tuple, buffer_bytes, processor)``: the walker's flat tuples are
used as they come from C, and the merge is a windowed stable sort (everything up to the
earliest "last timestamp" among the loaded buffers), which costs a fraction of a per-record
heap merge. Memory: one buffer per processor stream at a time.
"""
from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter
from typing import TYPE_CHECKING, Iterator

from .ordering import buffer_streams
from .records import _F_ID, _F_KIND, _F_TS, KIND_INDEX, Record

if TYPE_CHECKING:
    from .etlfile import EtlFile

__all__ = ["ordered_rows", "header_record", "ROW_TS", "ROW_T", "ROW_DATA", "ROW_CPU"]

ROW_TS, ROW_T, ROW_DATA, ROW_CPU = range(4)
_KIND_SYSTEM = KIND_INDEX["system"]
_row_ts = itemgetter(ROW_TS)


class _Stream:
    __slots__ = ("infos", "pos", "rows", "at", "last")

    def __init__(self, infos):
        self.infos = iter(infos)
        self.rows: list = []
        self.at = 0
        self.last = 0


def _rows_of(etl: "EtlFile", buf) -> list:
    tuples = buf.walk(collect=True)
    etl._account(buf)
    data = buf.data
    # bytes, not a memoryview: slicing a short payload out of bytes and hashing it (the
    # formatter's memo key) is cheaper than doing the same with a memoryview
    data = data if isinstance(data, bytes) else bytes(data)
    cpu = buf.processor
    return [(t[_F_TS], t, data, cpu) for t in tuples]


def _load(etl: "EtlFile", stream: _Stream) -> bool:
    """Read the stream's next non-empty buffer; False when the stream is exhausted."""
    for info in stream.infos:
        buf = etl.read_buffer(info, stream.last)
        rows = _rows_of(etl, buf)
        if buf.stats is not None:
            stream.last = buf.stats.last_timestamp
        if rows:
            stream.rows = rows
            stream.at = 0
            return True
    stream.rows = []
    return False


def header_record(row) -> Record:
    """A ``Record`` for one row (used for the rare rows that need the full object)."""
    from .records import BufferContext

    return Record(row[ROW_T], BufferContext(memoryview(row[ROW_DATA]), 0, -1, row[ROW_CPU], 0, 8,
                                            False))


def ordered_rows(etl: "EtlFile") -> Iterator[list]:
    """Batches of rows in ProcessTrace order; the log-file header row comes first, alone."""
    index = etl.buffer_index()
    streams: list[_Stream] = []
    if index and index[0].index == 0:
        head = _rows_of(etl, etl.read_buffer(index[0]))
        if head and head[0][ROW_T][_F_KIND] == _KIND_SYSTEM and head[0][ROW_T][_F_ID] == 0:
            yield head[:1]
            head = head[1:]
        if head:
            first = _Stream(())
            first.rows = head
            streams.append(first)
    for infos in buffer_streams(etl):
        stream = _Stream(infos)
        if _load(etl, stream):
            streams.append(stream)
    while streams:
        if len(streams) == 1:  # one stream left: its buffers are already in order
            stream = streams[0]
            yield stream.rows[stream.at:] if stream.at else stream.rows
            while _load(etl, stream):
                yield stream.rows
            return
        lasts = [s.rows[-1][ROW_TS] for s in streams]
        bound = min(lasts)
        drained = lasts.index(bound)  # this stream is taken whole, so every round progresses
        batch: list = []
        for i, s in enumerate(streams):
            end = len(s.rows) if i == drained else bisect_right(s.rows, bound, s.at, key=_row_ts)
            if end > s.at:
                batch.extend(s.rows[s.at:end] if (s.at or end < len(s.rows)) else s.rows)
                s.at = end
        batch.sort(key=_row_ts)  # stable: ties stay in stream order, as in a heap merge
        yield batch
        streams = [s for s in streams if s.at < len(s.rows) or _load(etl, s)]
