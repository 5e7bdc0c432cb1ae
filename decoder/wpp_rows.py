"""Raw record rows in ProcessTrace order, for the formatter's hot path (no per-record objects).

Exactly the order of ``ordering.ordered_records`` (log-file header first; each processor's
buffers by SequenceNumber; streams merged by the engine's ``merged_chunks``), but each record
is a row ``(timestamp, walker_tuple, buffer_bytes, processor)`` built straight from the C
walker's flat tuples instead of a ``Record`` object. Memory: one buffer per processor stream
at a time, as in the engine.
"""
from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING, Iterator

from .ordering import buffer_streams, merged_chunks
from .records import _F_ID, _F_KIND, _F_TS, KIND_INDEX, Record

if TYPE_CHECKING:
    from .etlfile import EtlFile

__all__ = ["ordered_rows", "header_record", "ROW_TS", "ROW_T", "ROW_DATA", "ROW_CPU"]

ROW_TS, ROW_T, ROW_DATA, ROW_CPU = range(4)
_KIND_SYSTEM = KIND_INDEX["system"]
_row_ts = itemgetter(ROW_TS)


def _rows_of(etl: "EtlFile", buf) -> list:
    tuples = buf.walk(collect=True)
    etl._account(buf)
    data = buf.data
    # bytes, not a memoryview: slicing a short payload out of bytes and hashing it (the
    # formatter's memo key) is cheaper than doing the same with a memoryview
    data = data if isinstance(data, bytes) else bytes(data)
    cpu = buf.processor
    return [(t[_F_TS], t, data, cpu) for t in tuples]


def _stream_batches(etl: "EtlFile", infos) -> Iterator[tuple[list, list[int]]]:
    """(rows, sort keys) per buffer of one processor stream, in SequenceNumber order."""
    last = 0
    for info in infos:
        buf = etl.read_buffer(info, last)
        rows = _rows_of(etl, buf)
        if buf.stats is not None:
            last = buf.stats.last_timestamp
        if rows:
            yield rows, list(map(_row_ts, rows))


def header_record(row) -> Record:
    """A ``Record`` for one row (used for the rare rows that need the full object)."""
    from .records import BufferContext

    return Record(row[ROW_T], BufferContext(memoryview(row[ROW_DATA]), 0, -1, row[ROW_CPU], 0, 8,
                                            False))


def ordered_rows(etl: "EtlFile") -> Iterator[list]:
    """Batches of rows in ProcessTrace order; the log-file header row comes first, alone."""
    index = etl.buffer_index()
    rest: list = []
    if index and index[0].index == 0:
        rest = _rows_of(etl, etl.read_buffer(index[0]))
        if rest and rest[0][ROW_T][_F_KIND] == _KIND_SYSTEM and rest[0][ROW_T][_F_ID] == 0:
            yield rest[:1]
            rest = rest[1:]
    batches = [iter([(rest, list(map(_row_ts, rest)))] if rest else [])]
    batches += [_stream_batches(etl, infos) for infos in buffer_streams(etl)]
    yield from merged_chunks(batches)
