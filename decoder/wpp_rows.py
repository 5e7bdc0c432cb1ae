"""Compact WPP rows: the engine view the formatter reads (no per-record Python objects).

``RowView`` is a view of decoder.engine: per buffer, the C walker of ``csrc/wpp_rows.c``
turns every record into a flat row (fields: ``ROW_FIELDS``) in one byte string, with the
message's key id (GUID, number) from a bounded table (``RowTables``) and the record's
FILETIME in milliseconds (``milli``), computed in C with the source's clock.

The items handed to the merge are row refs, ``slot << 32 | index``: plain ints, made as a
``range`` per buffer. A ref names its buffer by ``slot`` (the engine's stream number):
``view.datas[slot]`` / ``blobs[slot]`` hold that buffer's bytes and rows,
``view.sources[slot]`` its source (clock, pointer size; ``pointer_sizes[slot]``), while its
rows are being consumed;
the row itself is ``view.full_row(ref)``. The formatter hands the refs of a merged chunk to
the C renderer in one call (``_hazmat.RowPrinter``). The engine reads a stream's next buffer
only after its rows were handed out, so memory stays at one buffer per stream, plus the table.
"""
from __future__ import annotations

import struct
from types import SimpleNamespace
from collections.abc import Callable

from ._hazmat import ETL, ROW, RowTables as _Tables, RowWalker, offsetof, row_times
from .records import WalkStats, walk, walk_stats

__all__ = ["RowView", "RowTables", "header_record", "ROW_FIELDS", "ROW_INDEX", "ROW_FORMAT",
           "ROW_SIZE", "NOT_MESSAGE", "KEY_OVERFLOW", "LOGFILE_HEADER", "NO_TIME",
           "TIME_OUT_OF_RANGE"]

ROW_FORMAT, ROW_FIELDS = ROW.struct, ROW.fields
ROW_INDEX = ROW.index
ROW_SIZE = ROW.size
NOT_MESSAGE = ETL.WPPROW_NOT_MESSAGE
KEY_OVERFLOW = ETL.WPPROW_KEY_OVERFLOW
LOGFILE_HEADER = ETL.WPPROW_LOGFILE_HEADER
#: ``milli`` of a record without a time, and of one whose time is out of range
NO_TIME = ETL.WPPR_NO_TIME
TIME_OUT_OF_RANGE = ETL.WPPR_TIME_OUT_OF_RANGE
_TS = ROW_INDEX["timestamp"]
_KEY_OFFSET = offsetof("wpprow", "key")
_KEY_FIELD = struct.Struct("<I")
assert ROW_SIZE % 8 == 0 and offsetof("wpprow", "timestamp") == 0

#: distinct message keys a decoding run gives ids (past it: KEY_OVERFLOW, Python's path)
KEY_CAP = 1 << 20


def RowTables() -> _Tables:
    """The C key table of one decoding run, with this module's bound."""
    return _Tables(KEY_CAP)


class RowView:
    """The engine view giving a buffer's records as compact rows (see the module docstring).

    Consume each chunk before asking the engine for the next: a slot is reused for its
    stream's next buffer, so rows kept past that point would point at another buffer.

    Called with ``until`` (a raw time), the walk may stop once a record's time reached it:
    the engine asks this for the buffer where a window ends, whose later rows are the next
    window's (the buffer is then accounted by that window, which walks it whole)."""

    #: the engine may pass ``until``
    walks_until = True

    def __init__(self, tables=None) -> None:
        self.tables = tables if tables is not None else RowTables()
        self.datas: list[bytes] = []
        self.blobs: list[bytes] = []
        self.sources: list = []
        #: per slot, its source's pointer size (8 for a slot without one) and its number
        #: (``number_source(source)``, 0 without one): what the C renderer reads of a slot's
        #: source, kept as a buffer comes rather than made per chunk over every slot
        self.pointer_sizes: list[int] = []
        self.source_numbers: list[int] = []
        #: set by a reader numbering the sources (the Arrow columns' file names)
        self.number_source: Callable[[object], int] | None = None
        self._walker = RowWalker(self.tables)

    def __call__(self, source, buf, slot: int, header_record: bool,
                 until: int | None = None) -> tuple[range, list[int]]:
        while slot >= len(self.datas):
            self.datas.append(b"")
            self.blobs.append(b"")
            self.sources.append(None)
            self.pointer_sizes.append(8)
            self.source_numbers.append(0)
        data = buf.data
        data = data if isinstance(data, bytes) else bytes(data)
        walker = self._walker
        walker.set_clock(source.clock.linear)
        blobs: list = []
        count = 0

        def walk_range(_data, start: int, end: int, last: int, _collect: bool
                       ) -> tuple[list, WalkStats]:
            nonlocal count
            end = min(end, len(data))
            if end - start < 4:
                return walk(data, start, end, last, False)
            count, res = walker.walk(data, start, end, last, buf.processor, slot, count, blobs,
                                     until)
            return [], walk_stats(res)

        # the buffer's one walk: its stats and issues (the source's totals) and the rows
        buf.walk(collect=False, walker=walk_range)
        blob = blobs[0] if len(blobs) == 1 else b"".join(blobs)
        if header_record and count:
            blob = bytearray(blob)
            _KEY_FIELD.pack_into(blob, _KEY_OFFSET, LOGFILE_HEADER)
            blob = bytes(blob)
        self.datas[slot] = data
        self.blobs[slot] = blob
        self.sources[slot] = source
        self.pointer_sizes[slot] = source.pointer_size
        if self.number_source is not None:
            self.source_numbers[slot] = self.number_source(source)
        base = slot << 32
        return range(base, base + count), row_times(blob, count)

    def full_row(self, ref: int) -> tuple:
        """The full row (``ROW_FIELDS``) of a row ref whose buffer is still current."""
        return ROW_FORMAT.unpack_from(self.blobs[ref >> 32], (ref & 0xFFFFFFFF) * ROW_SIZE)


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
