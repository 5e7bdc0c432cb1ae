"""Compact WPP rows: the engine view the formatter reads (no per-record Python objects).

``RowView`` is a view of decoder.engine: per buffer, the C walker of ``csrc/wpp_rows.c``
turns every record into a flat row (fields: ``ROW_FIELDS``) and gives repeated facts small
integer ids from its bounded tables (``RowTables``): the message key (GUID, number), the memo
id (key, flags, argument bytes: same id, same text) and the head id (cpu, pid, tid), so the
formatter indexes lists instead of hashing tuples of bytes. The row also carries the
record's FILETIME in milliseconds (``milli``), computed in C with the source's clock.

The rows handed out hold only ``HOT_FIELDS`` (timestamp, milli, memo, head, key, slot,
index); the full row (``ROW_FIELDS``: thread, process, sequence, argument bytes ...) is
``ROW_FORMAT.unpack_from(view.blobs[slot], index * ROW_SIZE)``. A row names its buffer by
``slot`` (the engine's stream number): ``view.datas[slot]`` / ``blobs[slot]`` hold that
buffer's bytes and full rows, ``view.sources[slot]`` its source (clock, pointer size), while
its rows are being consumed. The engine reads a stream's next buffer only after its rows were
handed out, so memory stays at one buffer per stream, plus the bounded tables.
"""
from __future__ import annotations

import struct
from operator import itemgetter
from types import SimpleNamespace

from ._hazmat import ETL, ROW, RowTables as _Tables, RowWalker, offsetof

__all__ = ["RowView", "RowTables", "header_record", "ROW_FIELDS", "ROW_INDEX", "ROW_FORMAT",
           "ROW_SIZE", "HOT_FIELDS", "NOT_MESSAGE", "KEY_OVERFLOW", "LOGFILE_HEADER", "NO_TIME",
           "TIME_OUT_OF_RANGE"]

ROW_FORMAT, ROW_FIELDS = ROW.struct, ROW.fields
ROW_INDEX = ROW.index
ROW_SIZE = ROW.size
# the rows the merge and the formatter's loop see: the leading fields only (fewer Python
# ints per record); the full row is unpacked from the buffer's blob when needed
HOT_FIELDS = ROW_FIELDS[:ROW_FIELDS.index("thread_id")]
_HOT = struct.Struct("<qqIIIII%dx" % (ROW_SIZE - offsetof("wpprow", "thread_id")))
assert HOT_FIELDS == ["timestamp", "milli", "memo", "head", "key", "slot", "index"]
assert _HOT.size == ROW_SIZE
NOT_MESSAGE = ETL.WPPROW_NOT_MESSAGE
KEY_OVERFLOW = ETL.WPPROW_KEY_OVERFLOW
LOGFILE_HEADER = ETL.WPPROW_LOGFILE_HEADER
#: ``milli`` of a record without a time, and of one whose time is out of range
NO_TIME = -(1 << 63)
TIME_OUT_OF_RANGE = NO_TIME + 1
_TS = ROW_INDEX["timestamp"]
_KEY = ROW_INDEX["key"]
_ts_of = itemgetter(_TS)

# table bounds: distinct message keys, memoised texts (and per message), heads
KEY_CAP = 1 << 20
MEMO_CAP = 1 << 16
MEMO_PER_KEY = 256
MEMO_ARENA = 16 << 20
HEAD_CAP = 1 << 16


def RowTables() -> _Tables:
    """The C id tables of one decoding run, with this module's bounds."""
    return _Tables(KEY_CAP, MEMO_CAP, MEMO_PER_KEY, MEMO_ARENA, HEAD_CAP)


class RowView:
    """The engine view giving a buffer's records as compact rows (see the module docstring).

    Consume each chunk before asking the engine for the next: a slot is reused for its
    stream's next buffer, so rows kept past that point would point at another buffer."""

    def __init__(self, tables=None) -> None:
        self.tables = tables if tables is not None else RowTables()
        self.datas: list[bytes] = []
        self.blobs: list[bytes] = []
        self.sources: list = []
        self._walker = RowWalker(self.tables, _HOT)

    def __call__(self, source, buf, slot: int, header_record: bool) -> tuple[list, list[int]]:
        while slot >= len(self.datas):
            self.datas.append(b"")
            self.blobs.append(b"")
            self.sources.append(None)
        # the engine's own walk (count only) sets the buffer's stats and issues for the
        # source's totals; the row walk then covers the ranges it accepted
        buf.walk(collect=False)
        data = buf.data
        data = data if isinstance(data, bytes) else bytes(data)
        walker = self._walker
        walker.set_clock(source.clock.linear)
        rows: list = []
        blobs: list = []
        last = None
        for start, end, before in buf.ranges:
            last = walker.walk(data, start, end, before if last is None else last,
                               buf.processor, slot, rows, blobs)
        self.datas[slot] = data
        self.blobs[slot] = blobs[0] if len(blobs) == 1 else b"".join(blobs)
        self.sources[slot] = source
        if header_record and rows:
            head = rows[0]
            rows[0] = head[:_KEY] + (LOGFILE_HEADER,) + head[_KEY + 1:]
        return rows, list(map(_ts_of, rows))

    def full_row(self, row: tuple) -> tuple:
        """The full row (``ROW_FIELDS``) of a hot row whose buffer is still current."""
        return ROW_FORMAT.unpack_from(self.blobs[row[ROW_INDEX["slot"]]],
                                      row[ROW_INDEX["index"]] * ROW_SIZE)


_PRESENT = ROW_INDEX["present"]


def header_record(row) -> SimpleNamespace:
    """The facts of a full row that ``WppDecoder``'s header line reads, as a Record would give them."""
    present = row[_PRESENT]
    return SimpleNamespace(
        timestamp=row[_TS] if present & ETL.ETLRD_HAS_TIMESTAMP else None,
        thread_id=row[ROW_INDEX["thread_id"]] if present & ETL.ETLRD_HAS_THREAD else None,
        process_id=row[ROW_INDEX["process_id"]] if present & ETL.ETLRD_HAS_PROCESS else None,
        sequence=row[ROW_INDEX["sequence"]] if present & ETL.ETLRD_HAS_SEQUENCE else None,
        processor=row[ROW_INDEX["cpu"]])
