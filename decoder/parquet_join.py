"""One Parquet file from row groups encoded apart, so that several threads can encode them.

pyarrow encodes a Parquet file's row groups one after the other, in one thread. Here each
row group is encoded by pyarrow as a Parquet file of its own (in any thread: pyarrow
releases the GIL while it encodes), and ``ParquetJoiner`` writes their column chunks one
after the other into one file, with one footer. A Parquet file is::

    "PAR1" | column chunks (pages) | FileMetaData (Thrift compact) | length (u32 LE) | "PAR1"

The pages hold no file positions; the footer does: each row group's and column chunk's
offsets (file_offset, data_page_offset, dictionary_page_offset, index_page_offset,
bloom_filter_offset), which move by where the part's chunks land. The footer is decoded
into a generic Thrift tree (field id, wire type, value) and encoded back unchanged but for
those fields, the row groups' ordinals and the row count (``decode_struct``,
``encode_struct``: the compact protocol of the Apache Thrift specification). Page indexes
hold positions inside their own structures, so parts written with one are refused.

Field ids are parquet-format's (parquet.thrift): FileMetaData 3 num_rows, 4 row_groups;
RowGroup 1 columns, 5 file_offset, 7 ordinal; ColumnChunk 2 file_offset, 3 meta_data,
4 offset_index_offset, 6 column_index_offset; ColumnMetaData 9 data_page_offset,
10 index_page_offset, 11 dictionary_page_offset, 14 bloom_filter_offset.
"""
from __future__ import annotations

import struct
from typing import Any, BinaryIO

__all__ = ["ParquetJoiner", "decode_struct", "encode_struct", "MAGIC"]

MAGIC = b"PAR1"

# compact protocol wire types
STOP, TRUE, FALSE, I8, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT, UUID = range(14)

# (struct) -> field ids holding absolute file offsets
_FILE_META_ROWS, _FILE_META_ROW_GROUPS = 3, 4
_ROW_GROUP_COLUMNS, _ROW_GROUP_OFFSETS, _ROW_GROUP_ORDINAL = 1, (5,), 7
_CHUNK_META, _CHUNK_OFFSETS, _CHUNK_PAGE_INDEX = 3, (2,), (4, 6)
_COLUMN_META_OFFSETS = (9, 10, 11, 14)


class _Reader:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data).cast("B")
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise ValueError(f"Parquet footer cut short at byte {self.pos}")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(f"Parquet footer cut short at byte {self.pos}: {n} bytes expected")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def varint(self) -> int:
        shift = value = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            if b < 0x80:
                return value
            shift += 7
            if shift > 70:
                raise ValueError(f"Parquet footer: varint too long at byte {self.pos}")

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)


def _read_value(r: _Reader, kind: int, in_list: bool = False) -> Any:
    if kind in (TRUE, FALSE):               # a bool element of a list is one byte of its own
        return r.byte() if in_list else None
    if kind == I8:
        return r.byte()
    if kind in (I16, I32, I64):
        return r.zigzag()
    if kind == DOUBLE:
        return r.take(8)
    if kind == BINARY:
        return r.take(r.varint())
    if kind == UUID:
        return r.take(16)
    if kind in (LIST, SET):
        head = r.byte()
        size, elem = head >> 4, head & 0x0F
        if size == 15:
            size = r.varint()
        if size > len(r.data) - r.pos:       # every element takes a byte at least
            raise ValueError(f"Parquet footer: list of {size} at byte {r.pos} is longer than the footer")
        return (elem, [_read_value(r, elem, True) for _ in range(size)])
    if kind == MAP:
        size = r.varint()
        if size == 0:
            return (0, 0, [])
        head = r.byte()
        ktype, vtype = head >> 4, head & 0x0F
        if size > len(r.data) - r.pos:
            raise ValueError(f"Parquet footer: map of {size} at byte {r.pos} is longer than the footer")
        return (ktype, vtype, [(_read_value(r, ktype, True), _read_value(r, vtype, True))
                               for _ in range(size)])
    if kind == STRUCT:
        return _read_fields(r)
    raise ValueError(f"Parquet footer: unknown Thrift type {kind} at byte {r.pos}")


def _read_fields(r: _Reader) -> list[list]:
    fields: list[list] = []
    last = 0
    while True:
        head = r.byte()
        kind = head & 0x0F
        if kind == STOP:
            return fields
        delta = head >> 4
        fid = last + delta if delta else r.zigzag()
        fields.append([fid, kind, _read_value(r, kind)])
        last = fid


def decode_struct(data: bytes | memoryview) -> list[list]:
    """A Thrift compact struct -> [[field id, wire type, value], ...] (nested structs the
    same; lists (element type, values); maps (key type, value type, pairs); bool fields'
    values are in their wire type). ValueError on bytes that are not one whole struct."""
    r = _Reader(data)
    fields = _read_fields(r)
    if r.pos != len(r.data):
        raise ValueError(f"Parquet footer: {len(r.data) - r.pos} bytes after its end")
    return fields


def _varint(out: bytearray, v: int) -> None:
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)


def _zigzag(out: bytearray, v: int) -> None:
    _varint(out, (v << 1) ^ (v >> 63) if v < 0 else v << 1)


def _write_value(out: bytearray, kind: int, value: Any, in_list: bool = False) -> None:
    if kind in (TRUE, FALSE):
        if in_list:
            out.append(value)
    elif kind == I8:
        out.append(value)
    elif kind in (I16, I32, I64):
        _zigzag(out, value)
    elif kind in (DOUBLE, UUID):
        out += value
    elif kind == BINARY:
        _varint(out, len(value))
        out += value
    elif kind in (LIST, SET):
        elem, values = value
        if len(values) < 15:
            out.append(len(values) << 4 | elem)
        else:
            out.append(0xF0 | elem)
            _varint(out, len(values))
        for v in values:
            _write_value(out, elem, v, True)
    elif kind == MAP:
        ktype, vtype, pairs = value
        _varint(out, len(pairs))
        if pairs:
            out.append(ktype << 4 | vtype)
            for k, v in pairs:
                _write_value(out, ktype, k, True)
                _write_value(out, vtype, v, True)
    elif kind == STRUCT:
        _write_fields(out, value)
    else:
        raise ValueError(f"unknown Thrift type {kind}")


def _write_fields(out: bytearray, fields: list[list]) -> None:
    last = 0
    for fid, kind, value in fields:
        if 0 < fid - last <= 15:
            out.append((fid - last) << 4 | kind)
        else:
            out.append(kind)
            _zigzag(out, fid)
        _write_value(out, kind, value)
        last = fid
    out.append(STOP)


def encode_struct(fields: list[list]) -> bytes:
    """``decode_struct``'s tree -> Thrift compact bytes (the same bytes it was decoded from)."""
    out = bytearray()
    _write_fields(out, fields)
    return bytes(out)


def _field(fields: list[list], fid: int) -> list | None:
    for f in fields:
        if f[0] == fid:
            return f
    return None


def _shift(fields: list[list], fids: tuple[int, ...], by: int) -> None:
    for f in fields:
        if f[0] in fids and f[1] == I64 and f[2] > 0:      # 0: not set
            f[2] += by


def _move_row_group(row_group: list[list], by: int, ordinal: int) -> None:
    _shift(row_group, _ROW_GROUP_OFFSETS, by)
    ordinal_field = _field(row_group, _ROW_GROUP_ORDINAL)
    if ordinal_field is not None:
        ordinal_field[2] = ordinal
    columns = _field(row_group, _ROW_GROUP_COLUMNS)
    for chunk in columns[2][1] if columns else ():
        if any(_field(chunk, fid) for fid in _CHUNK_PAGE_INDEX):
            raise ValueError("Parquet parts with page indexes cannot be joined")
        _shift(chunk, _CHUNK_OFFSETS, by)
        meta = _field(chunk, _CHUNK_META)
        if meta is not None:
            _shift(meta[2], _COLUMN_META_OFFSETS, by)


class ParquetJoiner:
    """Writes Parquet parts (whole files of the same schema, each holding row groups: pyarrow
    ``write_table`` output) into ``stream`` as one Parquet file: ``add`` each part in order,
    then ``finish`` (the footer: the first part's, with every part's row groups)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.pos = 0
        self.rows = 0
        self._template: list[list] | None = None
        self._row_groups: list[list] = []

    def add(self, part: bytes | memoryview) -> None:
        data = memoryview(part).cast("B")     # pyarrow's buffers show signed bytes
        n = len(data)
        if n < 12 or data[:4] != MAGIC or data[n - 4:] != MAGIC:
            raise ValueError("not a Parquet file (no PAR1 at both ends)")
        length = struct.unpack_from("<I", data, n - 8)[0]
        start = n - 8 - length
        if start < 4:
            raise ValueError(f"Parquet footer length {length} is larger than the file ({n} bytes)")
        meta = decode_struct(data[start:n - 8])
        if self.pos == 0:
            self.stream.write(MAGIC)
            self.pos = 4
        by = self.pos - 4
        groups = _field(meta, _FILE_META_ROW_GROUPS)
        for group in groups[2][1] if groups else ():
            _move_row_group(group, by, len(self._row_groups))
            self._row_groups.append(group)
        rows = _field(meta, _FILE_META_ROWS)
        self.rows += rows[2] if rows else 0
        if self._template is None:
            self._template = meta
        body = data[4:start]
        self.stream.write(body)
        self.pos += len(body)

    def finish(self) -> None:
        """Write the footer (at least one part must have been added)."""
        if self._template is None:
            raise ValueError("no Parquet part to join")
        meta = [list(f) for f in self._template]
        for f in meta:
            if f[0] == _FILE_META_ROWS:
                f[2] = self.rows
            elif f[0] == _FILE_META_ROW_GROUPS:
                f[2] = (STRUCT, self._row_groups)
        footer = encode_struct(meta)
        self.stream.write(footer)
        self.stream.write(struct.pack("<I", len(footer)))
        self.stream.write(MAGIC)
        self.pos += len(footer) + 8
