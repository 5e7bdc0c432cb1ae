"""Compact WPP rows in ProcessTrace order, for the formatter's hot path (no per-record objects).

Exactly the order of ``ordering.ordered_records`` (log-file header first; each processor's
buffers by SequenceNumber; streams merged by the engine's ``merged_chunks``). Each record is a
flat tuple built by the C walker of ``csrc/wpp_rows.c`` (fields: ``ROW_FIELDS``), which also
gives repeated facts small integer ids from its bounded tables (``RowTables``): the message
key (GUID, number), the memo id (key, flags, argument bytes: same id, same text) and the head
id (cpu, pid, tid), so the formatter indexes lists instead of hashing tuples of bytes.

The rows handed out hold only ``HOT_FIELDS`` (timestamp, milli, memo, head, key, slot,
index); the full row (``ROW_FIELDS``: thread, process, sequence, argument bytes ...) is
``ROW_FORMAT.unpack_from(RowStream.blobs[slot], index * ROW_SIZE)``. A row names its buffer
by ``slot`` (its stream's number): ``RowStream.datas[slot]`` / ``blobs[slot]`` hold that
buffer's bytes and full rows while its rows are being consumed. Memory: one buffer per processor stream at
a time, as in the engine, plus the bounded tables.
"""
from __future__ import annotations

import struct
from operator import itemgetter
from types import SimpleNamespace
from typing import TYPE_CHECKING, Iterator

from wpptrace._core import ffi, lib

from .ordering import buffer_streams, merged_chunks
from .records import _ZERO_RESULT, _RESULT_SIZE, _unpacker

if TYPE_CHECKING:
    from .etlfile import Buffer, EtlFile

__all__ = ["ordered_rows", "RowStream", "RowTables", "header_record", "ROW_FIELDS", "ROW_INDEX",
           "ROW_FORMAT", "ROW_SIZE", "HOT_FIELDS", "NOT_MESSAGE", "KEY_OVERFLOW"]

ROW_FORMAT, ROW_FIELDS = _unpacker("wpprow")
ROW_INDEX = {name: i for i, name in enumerate(ROW_FIELDS)}
ROW_SIZE = ROW_FORMAT.size
assert ROW_SIZE == ffi.sizeof("wpprow")
# the rows the merge and the formatter's loop see: the leading fields only (fewer Python
# ints per record); the full row is unpacked from the buffer's blob when needed
HOT_FIELDS = ROW_FIELDS[:ROW_FIELDS.index("thread_id")]
_HOT = struct.Struct("<qqIIIII%dx" % (ROW_SIZE - ffi.offsetof("wpprow", "thread_id")))
assert HOT_FIELDS == ["timestamp", "milli", "memo", "head", "key", "slot", "index"]
assert _HOT.size == ROW_SIZE
NOT_MESSAGE = lib.WPPROW_NOT_MESSAGE
KEY_OVERFLOW = lib.WPPROW_KEY_OVERFLOW
_TS, _KIND, _NUMBER = ROW_INDEX["timestamp"], ROW_INDEX["kind"], ROW_INDEX["number"]
_SLOT, _INDEX = ROW_INDEX["slot"], ROW_INDEX["index"]
_ts_of = itemgetter(_TS)
_KIND_SYSTEM = lib.ETLRD_KIND_SYSTEM
_CHUNK = 16384            # rows per C call (as the engine's walker chunk)
_INT64 = 1 << 63

# table bounds: distinct message keys, memoised texts (and per message), heads
KEY_CAP = 1 << 20
MEMO_CAP = 1 << 16
MEMO_PER_KEY = 256
MEMO_ARENA = 16 << 20
HEAD_CAP = 1 << 16


class RowTables:
    """The C id tables of one decoding run (bounded; freed with the object)."""

    def __init__(self) -> None:
        raw = lib.wpprow_tables_new(KEY_CAP, MEMO_CAP, MEMO_PER_KEY, MEMO_ARENA, HEAD_CAP)
        if raw == ffi.NULL:
            raise MemoryError("wpprow_tables_new")
        self.raw = ffi.gc(raw, lib.wpprow_tables_free)
        self.memo_none = MEMO_CAP       # memo id meaning "not memoised"
        self.head_none = HEAD_CAP       # head id meaning "no id"
        self._guid = ffi.new("uint8_t[16]")
        self._number = ffi.new("uint32_t *")

    def key_count(self) -> int:
        return lib.wpprow_key_count(self.raw)

    def key_info(self, key: int) -> tuple[bytes, int]:
        """(GUID bytes_le, message number) of a key id."""
        if not lib.wpprow_key_info(self.raw, key, self._guid, self._number):
            raise IndexError(key)
        return bytes(ffi.buffer(self._guid, 16)), self._number[0]

    def stop_memo(self, key: int) -> None:
        """Never give this key memo ids again (its lines cannot be memoised)."""
        lib.wpprow_key_memo_left(self.raw, key, 0)


class RowStream:
    """Iterable of row batches (lists) in ProcessTrace order; the log-file header row comes
    first, alone. ``offset`` (raw clock + offset = FILETIME) must be set before iterating
    for the rows' ``milli`` field to be meaningful.

    Consume each batch before asking for the next: a row's ``datas``/``blobs`` slot is
    reused for its stream's next buffer (that is what keeps memory at one buffer per
    stream), so rows kept past that point would point at another buffer's bytes."""

    def __init__(self, etl: "EtlFile", tables: RowTables | None = None) -> None:
        self.etl = etl
        self.tables = tables if tables is not None else RowTables()
        self.datas: list[bytes] = []
        self.blobs: list[bytes] = []
        self.offset = 0
        self._res = ffi.new("etlrd_walk_result *")
        self._out = ffi.new("wpprow[]", _CHUNK)

    def _walk(self, data: bytes, start: int, end: int, last: int, cpu: int, slot: int,
              first: int = 0) -> tuple[list, list, int]:
        """(hot rows, full-row blobs, last timestamp) of data[start:end)."""
        if end - start < 4:
            return [], [], last
        src = ffi.from_buffer(data)
        res, out = self._res, self._out
        ffi.memmove(res, _ZERO_RESULT, _RESULT_SIZE)
        res.last_timestamp = last
        cap = min(_CHUNK, (end - start) // 8 + 1)
        rows: list = []
        blobs: list = []
        pos = start
        walk, tables, offset, unpack = lib.wpprow_walk, self.tables.raw, self.offset, _HOT.iter_unpack
        while True:
            n = walk(tables, src, end, pos, cpu, slot, first + len(rows), offset, out, cap, res)
            if n:
                blob = ffi.buffer(out, n * ROW_SIZE)[:]
                blobs.append(blob)
                rows.extend(unpack(blob))
            if not res.more:
                break
            pos = res.end_offset
        return rows, blobs, res.last_timestamp

    def _rows_of(self, buf: "Buffer", slot: int) -> list:
        """The rows of one buffer. The engine's own walk (count only) sets the buffer's
        stats and issues for the file's totals; the row walk then covers the same ranges."""
        etl = self.etl
        buf.walk(collect=False)
        etl._account(buf)
        data = buf.data
        data = data if isinstance(data, bytes) else bytes(data)
        self.datas[slot] = data
        rows: list = []
        blobs: list = []
        last = None
        for start, end, before in buf.ranges:  # the ranges the engine's walk accepted
            more, more_blobs, last = self._walk(data, start, end, before if last is None else last,
                                                buf.processor, slot, len(rows))
            rows += more
            blobs += more_blobs
        self.blobs[slot] = blobs[0] if len(blobs) == 1 else b"".join(blobs)
        return rows

    def full_row(self, row: tuple) -> tuple:
        """The full row (``ROW_FIELDS``) of a hot row whose buffer is still current."""
        return ROW_FORMAT.unpack_from(self.blobs[row[_SLOT]], row[_INDEX] * ROW_SIZE)

    def _stream_batches(self, infos, slot: int) -> Iterator[tuple[list, list[int]]]:
        """(rows, sort keys) per buffer of one processor stream, in SequenceNumber order.
        A buffer is read only when the previous one's rows have all been consumed (the
        merge asks for it then), so one data slot per stream suffices."""
        last = 0
        for info in infos:
            buf = self.etl.read_buffer(info, last)
            rows = self._rows_of(buf, slot)
            if buf.stats is not None:
                last = buf.stats.last_timestamp
            if rows:
                yield rows, list(map(_ts_of, rows))

    def __iter__(self) -> Iterator[list]:
        if not -_INT64 <= self.offset < _INT64:
            self.offset = 0               # the formatter then ignores ``milli``
        etl = self.etl
        index = etl.buffer_index()
        streams = buffer_streams(etl)
        # in place: the formatter holds these lists
        self.datas[:] = [b""] * (len(streams) + 1)
        self.blobs[:] = [b""] * (len(streams) + 1)
        rest: list = []
        if index and index[0].index == 0:
            rest = self._rows_of(etl.read_buffer(index[0]), 0)
            head = self.full_row(rest[0]) if rest else None
            if head and head[_KIND] == _KIND_SYSTEM and head[_NUMBER] == 0:
                yield rest[:1]
                rest = rest[1:]
        batches = [iter([(rest, list(map(_ts_of, rest)))] if rest else [])]
        batches += [self._stream_batches(infos, slot)
                    for slot, infos in enumerate(streams, start=1)]
        yield from merged_chunks(batches)


def ordered_rows(etl: "EtlFile", tables: RowTables | None = None) -> RowStream:
    """Batches of compact rows in ProcessTrace order (see ``RowStream``)."""
    return RowStream(etl, tables)


_PRESENT = ROW_INDEX["present"]


def header_record(row) -> SimpleNamespace:
    """The facts of a full row that ``WppDecoder``'s header line reads, as a Record would give them."""
    present = row[_PRESENT]
    return SimpleNamespace(
        timestamp=row[_TS] if present & lib.ETLRD_HAS_TIMESTAMP else None,
        thread_id=row[ROW_INDEX["thread_id"]] if present & lib.ETLRD_HAS_THREAD else None,
        process_id=row[ROW_INDEX["process_id"]] if present & lib.ETLRD_HAS_PROCESS else None,
        sequence=row[ROW_INDEX["sequence"]] if present & lib.ETLRD_HAS_SEQUENCE else None,
        processor=row[ROW_INDEX["cpu"]])
