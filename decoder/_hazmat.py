"""Hazmat layer over the C reader (decoder/csrc) and the layouts of etl_layout.h.

The only decoder module that touches cffi: the rest of the package gets Python values.

* ``ETL``: every integer constant of the C headers (record markers, flags, error codes...);
* ``sizeof`` / ``offsetof`` and ``Layout``: structures as declared in etl_layout.h, read
  into flat named tuples (``Layout.unpack``) or nested namespaces (``read``); no offset is
  repeated in Python;
* ``walk_records`` / ``chain_ok``: the C record walker (etlread.c);
* ``decompress_into``: MS-XCA Plain LZ77 into a window of a bytearray (xpress.c);
* ``RowTables`` / ``RowWalker``: the formatter's id tables and row walker (wpp_rows.c).

Failures the C code reports with a code become exceptions here (MemoryError for a table
that cannot be allocated, IndexError for an unknown key id, ValueError for an output window
outside its buffer); codes that describe data (walk and decompression results, which keep
what was good) are returned as values.
"""
from __future__ import annotations

import struct
import threading
from collections import namedtuple
from types import SimpleNamespace

from wpptrace._core import ffi, lib

__all__ = ["ETL", "sizeof", "offsetof", "Layout", "read", "walk_records", "chain_ok",
           "decompress_into", "RowTables", "RowWalker", "BUFFER_HEADER", "SYSTEM_HEADER",
           "RECORD", "ROW"]

#: the C headers' integer constants, as plain ints
ETL = SimpleNamespace(**{name: getattr(lib, name) for name in dir(lib)
                         if isinstance(getattr(lib, name), int)})


def sizeof(ctype: str) -> int:
    return ffi.sizeof(ctype)


def offsetof(ctype: str, *fields: str) -> int:
    """Offset of a (nested) field: ``offsetof("WMI_BUFFER_HEADER", "ClientContext",
    "ProcessorIndex")``."""
    return ffi.offsetof(ctype, *fields)


_CODES = {"uint8_t": "B", "uint16_t": "H", "uint32_t": "I", "uint64_t": "Q", "int8_t": "b",
          "int16_t": "h", "int32_t": "i", "int64_t": "q"}


class Layout:
    """A C structure read as a flat named tuple: nested structures contribute their fields
    (leaf names), arrays and GUIDs come as bytes, fields named ``reserved...`` (C-side
    padding) are skipped. ``unpack(data, offset)`` reads one, ``iter_unpack(data)`` an array of them."""

    def __init__(self, ctype: str):
        self.ctype = ctype
        self.size = ffi.sizeof(ctype)
        fmt, names, pos = "<", [], 0
        for name, offset, ftype in self._leaves(ffi.typeof(ctype), 0):
            if offset > pos:
                fmt += f"{offset - pos}x"
            size = ffi.sizeof(ftype)
            if name.startswith("reserved"):
                fmt += f"{size}x"
            elif ftype.kind in ("array", "struct"):       # byte arrays, GUIDs
                fmt += f"{size}s"
                names.append(name)
            else:
                fmt += _CODES[ftype.cname]
                names.append(name)
            pos = offset + size
        fmt += f"{self.size - pos}x" if self.size > pos else ""
        self.struct = struct.Struct(fmt)
        assert self.struct.size == self.size, ctype
        self.fields: list[str] = names
        self.index = {name: i for i, name in enumerate(names)}
        self.tuple = namedtuple(ctype, names)
        self._place = {name: (offset, "<" + _CODES[ftype.cname])
                       for name, offset, ftype in self._leaves(ffi.typeof(ctype), 0)
                       if ftype.kind == "primitive" and ftype.cname in _CODES}

    @classmethod
    def _leaves(cls, ctype, base: int):
        for name, field in ctype.fields:
            if field.type.kind == "struct" and field.type.cname != "GUID":
                yield from cls._leaves(field.type, base + field.offset)
            else:
                yield name, base + field.offset, field.type

    def unpack(self, data, offset: int = 0):
        return self.tuple._make(self.struct.unpack_from(data, offset))

    def offset(self, *fields: str) -> int:
        return ffi.offsetof(self.ctype, *fields)

    def pack_into(self, buffer: bytearray, offset: int = 0, **fields: int) -> None:
        """Write some integer fields (by leaf name) of a structure at ``offset``."""
        for name, value in fields.items():
            at, code = self._place[name]
            struct.pack_into(code, buffer, offset + at, value)


def read(ctype: str, data, offset: int = 0) -> SimpleNamespace:
    """One structure (nested ones included) as a namespace of Python values: ints, nested
    namespaces, lists for arrays. Raises ValueError if data is too short."""
    size = ffi.sizeof(ctype)
    if len(data) - offset < size:
        raise ValueError(f"{ctype} needs {size} bytes, {len(data) - offset} given")
    raw = ffi.new(f"{ctype} *")
    ffi.memmove(raw, memoryview(data)[offset:offset + size], size)
    return _python(raw[0], ffi.typeof(ctype))


def _python(value, ctype):
    if ctype.kind == "struct":
        return SimpleNamespace(**{name: _python(getattr(value, name), f.type)
                                  for name, f in ctype.fields})
    if ctype.kind == "array":
        return [_python(value[i], ctype.item) for i in range(ctype.length)]
    return value


BUFFER_HEADER = Layout("WMI_BUFFER_HEADER")
SYSTEM_HEADER = Layout("SYSTEM_TRACE_HEADER")


# -- the record walker (etlread.c) --------------------------------------------------------

#: etlrd_record / wpprow as flat tuples (decoder/csrc/etlread.h, wpp_rows.h)
RECORD = Layout("etlrd_record")
ROW = Layout("wpprow")

# records per walk call; a 64 KiB buffer holds at most 8183
_CHUNK = 16384
_RESULT_SIZE = ffi.sizeof("etlrd_walk_result")
_ZERO_RESULT = bytes(_RESULT_SIZE)
_local = threading.local()


def _scratch():
    """Per-thread walker output arrays, allocated once (ffi.new zero-fills: not per call)."""
    s = getattr(_local, "scratch", None)
    if s is None:
        s = _local.scratch = SimpleNamespace(result=ffi.new("etlrd_walk_result *"),
                                             records=ffi.new("etlrd_record[]", _CHUNK),
                                             counters=ffi.new("size_t[2]"))
    return s


def _result(res) -> SimpleNamespace:
    return SimpleNamespace(by_kind=list(res.by_kind), errors=res.errors,
                           skipped_bytes=res.skipped_bytes, error=res.error,
                           error_offset=res.error_offset, last_timestamp=res.last_timestamp,
                           end_offset=res.end_offset)


def walk_records(data, start: int, end: int, last_timestamp: int,
                 collect: bool) -> tuple[list[tuple], SimpleNamespace]:
    """The C walker over data[start:end): flat ``RECORD`` tuples (none if not ``collect``)
    and the walk's totals (by_kind, errors, skipped_bytes, error, error_offset,
    last_timestamp, end_offset)."""
    src = ffi.from_buffer(data)
    scratch = _scratch()
    res = scratch.result
    ffi.memmove(res, _ZERO_RESULT, _RESULT_SIZE)
    res.last_timestamp = last_timestamp
    tuples: list[tuple] = []
    if not collect:
        lib.etlrd_walk(src, end, start, ffi.NULL, 0, res)
    else:
        cap = min(_CHUNK, (end - start) // 8 + 1)
        out = scratch.records                   # reused: tuples are copied out of it
        unpack, size = RECORD.struct.iter_unpack, RECORD.size
        pos = start
        while True:
            n = lib.etlrd_walk(src, end, pos, out, cap, res)
            if n:
                tuples.extend(unpack(ffi.buffer(out, n * size)))
            if not res.more:
                break
            pos = res.end_offset
    return tuples, _result(res)


def chain_ok(data, end: int, start: int) -> int:
    """How many valid records chain from start to the end of the events (0: the chain breaks)."""
    return lib.etlrd_chain_ok(ffi.from_buffer(data), end, start)


# -- MS-XCA Plain LZ77 (xpress.c) ----------------------------------------------------------

def decompress_into(data, out: bytearray, start: int, max_output: int) -> tuple[int, int, int]:
    """Decode into ``out[start:start+max_output]`` in place; returns (rc, produced, consumed)
    (rc: 0 or ETL.ETLRD_XPRESS_*; what was produced before a problem is kept).

    Raises ValueError if that window is not inside ``out`` (the C code writes up to
    ``max_output`` bytes from ``start`` and must never be told a larger room than there is)."""
    if start < 0 or max_output < 0 or start + max_output > len(out):
        raise ValueError(f"output window [{start}, {start + max_output}) is not inside the "
                         f"{len(out)}-byte output buffer")
    counters = _scratch().counters
    rc = lib.etlrd_xpress_decompress(ffi.from_buffer(data), len(data),
                                     ffi.from_buffer(out) + start, max_output,
                                     counters, counters + 1)
    return rc, counters[0], counters[1]


# -- the formatter's rows (wpp_rows.c) ------------------------------------------------------

class RowTables:
    """The C id tables of one decoding run (bounded; freed with the object)."""

    def __init__(self, key_cap: int, memo_cap: int, memo_per_key: int, memo_arena: int,
                 head_cap: int) -> None:
        raw = lib.wpprow_tables_new(key_cap, memo_cap, memo_per_key, memo_arena, head_cap)
        if raw == ffi.NULL:
            raise MemoryError("wpprow_tables_new: the row id tables could not be allocated")
        self.raw = ffi.gc(raw, lib.wpprow_tables_free)
        self.memo_none = memo_cap       # memo id meaning "not memoised"
        self.head_none = head_cap       # head id meaning "no id"
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

    def set_seed(self, seed: int) -> None:
        """Fix the tables' hash seed (tests build worst cases for a known seed)."""
        lib.wpprow_tables_set_seed(self.raw, seed)


class RowWalker:
    """Walks buffer ranges into rows with one set of tables (output arrays reused)."""

    def __init__(self, tables: RowTables, hot: struct.Struct) -> None:
        self.tables = tables
        self._hot = hot
        self._res = ffi.new("etlrd_walk_result *")
        self._out = ffi.new("wpprow[]", _CHUNK)
        self._clock = ffi.new("wpprow_clock *")

    def set_clock(self, linear: tuple[int, int, int, int]) -> None:
        """The session clock: FILETIME = start + (raw - origin) * num // den."""
        clock = self._clock
        clock.start, clock.origin, clock.num, clock.den = linear

    def walk(self, data: bytes, start: int, end: int, last: int, cpu: int, slot: int,
             rows: list, blobs: list) -> int:
        """Append the hot rows of data[start:end) to rows, their full rows to blobs; returns
        the last timestamp seen."""
        if end - start < 4:
            return last
        res, out = self._res, self._out
        ffi.memmove(res, _ZERO_RESULT, _RESULT_SIZE)
        res.last_timestamp = last
        src = ffi.from_buffer(data)
        cap = min(_CHUNK, (end - start) // 8 + 1)
        pos = start
        walk, tables, clock, unpack = lib.wpprow_walk, self.tables.raw, self._clock, self._hot.iter_unpack
        size = ROW.size
        while True:
            n = walk(tables, src, end, pos, cpu, slot, len(rows), clock, out, cap, res)
            if n:
                blob = ffi.buffer(out, n * size)[:]
                blobs.append(blob)
                rows.extend(unpack(blob))
            if not res.more:
                break
            pos = res.end_offset
        return res.last_timestamp
