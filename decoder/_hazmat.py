"""Hazmat layer over the C reader (decoder/csrc) and the layouts of etl_layout.h.

The only decoder module that touches cffi: the rest of the package gets Python values.

* ``ETL``: every integer constant of the C headers (record markers, flags, error codes...);
* ``sizeof`` / ``offsetof`` and ``Layout``: structures as declared in etl_layout.h, read
  into flat named tuples (``Layout.unpack``) or nested namespaces (``read``); no offset is
  repeated in Python;
* ``walk_records`` / ``chain_ok``: the C record walker (etlread.c);
* ``decompress_into``: MS-XCA Plain LZ77 into a window of a bytearray (xpress.c);
* ``INDEX_COLUMNS`` / ``FixedIndexReader``: the buffer index's columns, and the regular
  buffers of an uncompressed file read into them (etlindex.c); ``next_header_shape``: where
  a buffer header could start after damage (etlindex.c);
* ``cut_times``: the window bounds of ``fmt -j`` from the index columns (cuts.c);
* ``crc32``: zlib's CRC-32, sixteen bytes a step (crc32.c);
* ``hold_heap``: whether the allocator keeps the memory a run frees (heap.c);
* ``wait_readable``: waiting for one of a few descriptors to read (fdwait.c);
* ``add_at`` / ``add_into``: counts added to totals by place, or one to one, in one call
  (counts.c);
* ``RowTables`` / ``RowWalker``: the formatter's key table and row walker (wpp_rows.c);
* ``RowPrinter``: rows printed by the C renderer (``wpprow_render``, tmf/csrc) into its own
  buffer or into memory the caller lends it, or appended as Arrow columns
  (``wpprow_put_columns``) to ``ColumnBuffers``;
* ``address_of``: where a buffer's bytes are (is a text already where it is to be written?);
* ``ProgramTable``: the table of compiled message programs shared by forked processes
  (program_share.c);
* ``row_values``: the typed argument values of a chunk of rows, decoded at once
  (wpp_values.c).

Failures the C code reports with a code become exceptions here (MemoryError for a table
that cannot be allocated, IndexError for an unknown key id, ValueError for an output window
outside its buffer); codes that describe data (walk and decompression results, which keep
what was good) are returned as values.
"""
from __future__ import annotations

import functools
import struct
import threading
import weakref
from array import array
from collections import namedtuple
from types import SimpleNamespace

from wpptrace._core import ffi, lib

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Any

__all__ = ["ETL", "constants", "sizeof", "offsetof", "Layout", "read", "walk_records", "chain_ok",
           "decompress_into", "INDEX_COLUMNS", "FixedIndexReader", "next_header_shape", "running_max", "last_key",
           "merge_below", "stream_positions", "cut_times", "crc32", "hold_heap", "wait_readable", "add_at", "add_into", "row_times", "RowTables", "RowWalker", "RowPrinter", "ProgramTable",
           "NO_RECORD", "install_records", "RowValues", "row_values", "address_of",
           "BUFFER_HEADER", "SYSTEM_HEADER", "RECORD", "ROW"]


class _Constants:
    """``ETL.NAME``: an integer constant of the C headers, as a plain int. Each is read from
    the C module when first used: reading all ~260 at import cost 1.9 M instructions, and a
    run uses a few dozen."""

    def __getattr__(self, name: str) -> int:
        value = getattr(lib, name)
        if not isinstance(value, int):
            raise AttributeError(name)
        self.__dict__[name] = value
        return value

    def __dir__(self) -> list[str]:
        return sorted(name for name in dir(lib) if isinstance(getattr(lib, name), int))


#: the C headers' integer constants, as plain ints
ETL = _Constants()


def constants(prefix: str) -> dict[str, int]:
    """The C headers' integer constants whose names start with ``prefix`` (``"TRACE_LEVEL_"``)."""
    return {name: getattr(ETL, name) for name in dir(lib)
            if name.startswith(prefix) and isinstance(getattr(lib, name), int)}


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
        self._place = {name: (offset, "<" + _CODES[ftype.cname])
                       for name, offset, ftype in self._leaves(ffi.typeof(ctype), 0)
                       if ftype.kind == "primitive" and ftype.cname in _CODES}

    @functools.cached_property
    def tuple(self) -> type:
        """``unpack``'s named tuple class, made when first needed: making one compiles code
        (0.4 M instructions), and fmt unpacks two of the four layouts."""
        return namedtuple(self.ctype, self.fields)

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

    def some(self, *fields: str) -> struct.Struct:
        """A Struct reading only these integer fields (leaf names, in structure order) of
        one structure: a plain tuple, without the other fields."""
        fmt, pos = "<", 0
        for name in fields:
            offset, code = self._place[name]
            if offset < pos:
                raise ValueError(f"{self.ctype}.{name}: fields must come in structure order")
            fmt += (f"{offset - pos}x" if offset > pos else "") + code[1:]
            pos = offset + struct.calcsize(code)
        return struct.Struct(fmt)

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
#: records a walk told to stop at a time walks between looks at the times it met
_UNTIL_STEP = 256
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
                           end_offset=res.end_offset, ends_damaged=bool(res.ends_damaged),
                           max_timestamp=res.max_timestamp if res.timed else None)


def walk_records(data, start: int, end: int, last_timestamp: int,
                 collect: bool) -> tuple[list[tuple], SimpleNamespace]:
    """The C walker over data[start:end): flat ``RECORD`` tuples (none if not ``collect``)
    and the walk's totals (by_kind, errors, skipped_bytes, error, error_offset,
    last_timestamp, end_offset, ends_damaged)."""
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


# -- the buffer index of an uncompressed file (etlindex.c) --------------------------------

#: the buffer index's columns as etlrd_index_columns declares them: (name, array type code)
INDEX_COLUMNS: tuple[tuple[str, str], ...] = tuple(
    (name, _CODES[field.type.item.cname]) for name, field in ffi.typeof("etlrd_index_columns").fields)


class FixedIndexReader:
    """``etlrd_index_fixed`` over one open file: its output columns (``columns``, arrays of
    ``capacity`` entries) are allocated once and refilled call after call."""

    def __init__(self, fd: int, file_size: int, stride: int, capacity: int):
        self._fd, self._file_size, self._stride, self._capacity = fd, file_size, stride, capacity
        self.columns = {name: array(code, bytes(array(code).itemsize * capacity))
                        for name, code in INDEX_COLUMNS}
        self._cols = ffi.new("etlrd_index_columns *")
        self._keep = []                  # the arrays' pointers live as long as the struct
        for name, field in ffi.typeof("etlrd_index_columns").fields:
            ptr = ffi.from_buffer(field.type.item.cname + "[]", self.columns[name])
            self._keep.append(ptr)
            setattr(self._cols, name, ptr)
        self._at = ffi.new("int64_t *")
        self._empty = ffi.new("int64_t *")

    def read(self, offset: int, first_index: int) -> tuple[int, int, int]:
        """(entries written to ``columns``, the offset where reading stopped, never-written
        slots passed over) from ``offset``, whose buffer has index ``first_index``."""
        self._at[0], self._empty[0] = offset, 0
        n = lib.etlrd_index_fixed(self._fd, self._file_size, self._stride, self._at,
                                  first_index, self._cols, self._capacity, self._empty)
        return n, self._at[0], self._empty[0]


def next_header_shape(data: bytes, start: int) -> int:
    """The first position >= ``start`` of ``data`` where a WMI_BUFFER_HEADER could start, by
    its fields' shape (``etlrd_next_header_shape``), or -1."""
    return lib.etlrd_next_header_shape(ffi.from_buffer(data), len(data), start)


# -- the merge's inner loops (order.c) -----------------------------------------------------

def running_max(times, initial: int) -> "array | None":
    """The merge keys of a batch: the running maximum of its times from ``initial``, as
    ``array('q')``; None when a time does not fit in 64 bits (the caller keeps Python ints)."""
    try:
        keys = times if type(times) is array and times.typecode == "q" else array("q", times)
        out = array("q", bytes(8 * len(keys)))
        if keys:
            lib.order_running_max(ffi.from_buffer("int64_t[]", keys), 1, len(keys), initial,
                                  ffi.from_buffer("int64_t[]", out))
    except OverflowError:
        return None
    return out


def last_key(times, initial: int) -> int | None:
    """The last merge key of a batch (``running_max``'s last value, without the others); None
    when a time does not fit in 64 bits."""
    try:
        keys = times if type(times) is array and times.typecode == "q" else array("q", times)
        return lib.order_max(ffi.from_buffer("int64_t[]", keys), len(keys), initial) if keys else initial
    except OverflowError:
        return None


def merge_below(keys: list, positions: list[int], window: int, bases: list[int] | None,
                count: int) -> tuple[array, array]:
    """One window of the merge (``order_merge_below``): (refs, keys) of the ``count`` keys below
    ``window`` of the streams' key arrays from ``positions`` (updated). refs are
    ``bases[s] + index``, or ``s << 32 | index`` without bases."""
    n = len(keys)
    ptrs = ffi.new("const int64_t *[]", [ffi.from_buffer("int64_t[]", k) for k in keys])
    lens = ffi.new("uint32_t[]", [len(k) for k in keys])
    pos = ffi.new("uint32_t[]", positions)
    base = ffi.new("uint64_t[]", bases) if bases is not None else ffi.NULL
    refs, out_keys = array("Q", bytes(8 * count)), array("q", bytes(8 * count))
    taken = lib.order_merge_below(n, ptrs, lens, pos, window, base,
                                  ffi.from_buffer("uint64_t[]", refs),
                                  ffi.from_buffer("int64_t[]", out_keys))
    if taken != count:
        raise ValueError(f"merge window: {taken} keys below the window, {count} counted")
    positions[:] = list(pos)
    return refs, out_keys


def row_times(blob, count: int) -> array:
    """The raw timestamps (merge inputs) of ``count`` rows in a row blob, as ``array('q')``."""
    out = array("q", bytes(8 * count))
    if count:
        lib.order_gather(ffi.cast("const int64_t *", ffi.from_buffer(blob)), ROW.size // 8,
                         count, ffi.from_buffer("int64_t[]", out))
    return out


def stream_positions(processors: array, sequences: array) -> list[array] | None:
    """``order_streams``: the positions of the buffers 1 .. n - 1 of an index's columns
    ``processors`` (``array('H')``) and ``sequences`` (``array('q')``) grouped per processor
    (in processor order), each group in sequence order, file order for equal numbers: one
    ``array('I')`` a group. None for columns of other types."""
    n = len(processors)
    if (type(processors) is not array or processors.typecode != "H" or type(sequences) is not array
            or sequences.typecode != "q" or len(sequences) != n):
        return None
    if n <= 1:
        return []
    positions, lens = array("I", bytes(4 * (n - 1))), array("I", bytes(4 * (n - 1)))
    groups = lib.order_streams(ffi.from_buffer("uint16_t[]", processors),
                               ffi.from_buffer("int64_t[]", sequences), n,
                               ffi.from_buffer("uint32_t[]", positions), ffi.from_buffer("uint32_t[]", lens))
    if groups < 0:
        return None
    out, at = [], 0
    for length in lens[:groups]:
        out.append(positions[at:at + length])
        at += length
    return out


def cut_times(times: array, sizes: array, streams: list[array], parts: list[float],
              whole: float) -> list[int] | None:
    """``cuts_sweep``: the cut times of ``decoder.parallel.cut_keys`` from the index columns
    ``times`` (``array('q')``) and ``sizes`` (``array('I')``), each stream a positions
    ``array('I')`` into them, the bounds ``total * part / whole``. None when the sweep needs
    more than 64 bits (the caller cuts in Python)."""
    positions = array("I")
    for stream in streams:
        positions += stream
    lens = ffi.new("uint32_t[]", [len(stream) for stream in streams] or [0])
    out = ffi.new("int64_t[]", max(1, len(parts)))
    made = lib.cuts_sweep(ffi.from_buffer("int64_t[]", times), ffi.from_buffer("uint32_t[]", sizes),
                          ffi.from_buffer("uint32_t[]", positions), lens, len(streams),
                          ffi.new("double[]", parts or [0.0]), len(parts), whole, out)
    return None if made < 0 else list(out[0:made])


def hold_heap(hold: bool) -> bool:
    """Keep (True) the memory freed from now on in the process, for the next chunks, or give
    the allocator its defaults back (False); whether the allocator could be told (heap.h)."""
    return bool(lib.heap_hold(1 if hold else 0))


def wait_readable(fds: list[int], seconds: float) -> bool:
    """Wait up to ``seconds`` until one of ``fds`` can be read (data, its other end closed)
    (``fd_wait_readable``, fdwait.h: poll, no module to load, no descriptor needed, no limit on
    their numbers). False where the wait could not be made (the caller waits otherwise); a
    signal ends it early (True: the caller looks, and Python runs the signal's handler)."""
    if lib.fd_wait_readable(fds, len(fds), max(0, int(seconds * 1000))) >= 0:
        return True
    import errno         # (built in: no library loaded)

    return ffi.errno == errno.EINTR


def add_at(totals: array, places: array, counts: array) -> int:
    """``totals[places[i]] += counts[i]`` for every i (int64 arrays; a place given twice
    takes both counts, a place outside ``totals``, -1 for none, adds nothing): how many counts
    not 0 had no place (``counts_add_at``, counts.h)."""
    n = min(len(places), len(counts))
    if not n:
        return 0
    return lib.counts_add_at(ffi.from_buffer("int64_t[]", totals), len(totals),
                             ffi.from_buffer("int64_t[]", places), ffi.from_buffer("int64_t[]", counts), n)


def add_into(totals: array, more: array) -> None:
    """``totals[i] += more[i]`` for the first ``min(len(totals), len(more))`` (int64 arrays;
    ``counts_add``, counts.h)."""
    n = min(len(totals), len(more))
    if n:
        lib.counts_add(ffi.from_buffer("int64_t[]", totals), ffi.from_buffer("int64_t[]", more), n)


def crc32(data) -> int:
    """``zlib.crc32(data)`` (``crc32_update``: a third of its instructions, and no zlib
    module imported) of bytes or a contiguous memoryview."""
    return lib.crc32_update(0, ffi.from_buffer("uint8_t[]", data), memoryview(data).nbytes)


# -- the formatter's rows (wpp_rows.c) ------------------------------------------------------

class RowTables:
    """The C key table of one decoding run (bounded; freed with the object)."""

    def __init__(self, key_cap: int) -> None:
        raw = lib.wpprow_tables_new(key_cap)
        if raw == ffi.NULL:
            raise MemoryError("wpprow_tables_new: the row key table could not be allocated")
        self.raw = ffi.gc(raw, lib.wpprow_tables_free)
        self._guid = ffi.new("uint8_t[]", ffi.sizeof("GUID"))
        self._number = ffi.new("uint32_t *")

    def key_count(self) -> int:
        return lib.wpprow_key_count(self.raw)

    def key_info(self, key: int) -> tuple[bytes, int]:
        """(GUID bytes_le, message number) of a key id."""
        if not lib.wpprow_key_info(self.raw, key, self._guid, self._number):
            raise IndexError(key)
        return bytes(ffi.buffer(self._guid)), self._number[0]

    def key_infos(self, first: int, end: int) -> list[tuple[bytes, int]]:
        """``key_info`` of the key ids first .. end - 1, in one C call."""
        n = end - first
        if n <= 0:
            return []
        out = ffi.new("uint8_t[]", 20 * n)
        done = lib.wpprow_key_infos(self.raw, first, n, out)
        if done != n:
            raise IndexError(first + done)
        return list(_KEY_INFO.iter_unpack(ffi.buffer(out, 20 * n)))

    def set_seed(self, seed: int) -> None:
        """Fix the table's hash seed (tests build worst cases for a known seed)."""
        lib.wpprow_tables_set_seed(self.raw, seed)


_KEY_INFO = struct.Struct("=16sI")      # wpprow_key_infos: GUID bytes_le, native u32 number


class RowWalker:
    """Walks buffer ranges into rows with one key table (output arrays reused)."""

    def __init__(self, tables: RowTables) -> None:
        self.tables = tables
        self._res = ffi.new("etlrd_walk_result *")
        self._out = ffi.new("wpprow[]", _CHUNK)
        self._clock = ffi.new("wpprow_clock *")

    def set_clock(self, linear: tuple[int, int, int, int]) -> None:
        """The session clock: FILETIME = start + (raw - origin) * num // den."""
        clock = self._clock
        clock.start, clock.origin, clock.num, clock.den = linear

    def walk(self, data: bytes, start: int, end: int, last: int, cpu: int, slot: int,
             count: int, blobs: list, until: int | None = None) -> tuple[int, SimpleNamespace]:
        """Append the rows of data[start:end) (at least 4 bytes; numbered from ``count``) to
        blobs as bytes; returns (the new count, the walk's totals as ``walk_records`` gives
        them). ``until``: the walk may stop once a record's time reached it (in steps of
        ``_UNTIL_STEP`` records; the totals are then of the part walked, ``end_offset`` where
        it stopped)."""
        res, out = self._res, self._out
        ffi.memmove(res, _ZERO_RESULT, _RESULT_SIZE)
        res.last_timestamp = last
        src = ffi.from_buffer(data)
        cap = min(_CHUNK if until is None else _UNTIL_STEP, (end - start) // 8 + 1)
        pos = start
        walk, tables, clock, size = lib.wpprow_walk, self.tables.raw, self._clock, ROW.size
        while True:
            n = walk(tables, src, end, pos, cpu, slot, count, clock, out, cap, res)
            if n:
                blobs.append(ffi.buffer(out, n * size)[:])
                count += n
            if not res.more or (until is not None and res.timed and res.max_timestamp >= until):
                break
            pos = res.end_offset
        return count, _result(res)


class RowPrinter:
    """Prints chunks of row refs (``slot << 32 | index``) with a C renderer
    (``wpptrace.tmf.native.NativeRenderer``) in one ``wpprow_render`` call each.
    ``key_program[key]`` is a message key's program id, or ``HOLE`` (Python prints it)."""

    HOLE = lib.WPPR_HOLE

    def __init__(self, renderer) -> None:
        self.renderer = renderer
        self.key_program = array("i")
        self._cap = self._slot_cap = 0
        self._nholes = ffi.new("uint32_t *")
        self._skipped = ffi.new("uint32_t *")
        self._why = ffi.new("int *")
        self._text_wanted = True

    def print(self, items, datas: list, blobs: list, pointer_sizes: list[int],
              want_ends: bool,
              into: tuple[int, int] | None = None, text_wanted: bool = True
              ) -> tuple[memoryview | bytes, list[tuple[int, int]], list[int], int]:
        """(UTF-8 lines, holes [(item index, text position)], output length after each item
        (if ``want_ends``), rows that are not messages). The text is the renderer's buffer:
        valid until the next call. ``into``: (address, bytes) of memory to print into
        instead; the text is there if it fits (else in the renderer's buffer).
        ``text_wanted`` False: the rows are decided (holes, counts) but none is printed: the
        text is empty and every hole's position 0."""
        refs = _refs(items)
        n = len(refs)
        if n > self._cap:
            self._cap = max(n, 4096)
            self._holes = ffi.new("uint32_t[]", self._cap)
            self._hole_at = ffi.new("uint64_t[]", self._cap)
            self._ends = ffi.new("uint64_t[]", self._cap)
        nslots = len(datas)
        keep = self._slots(refs, datas, blobs, pointer_sizes)  # noqa: F841  (held during the call)
        renderer = self.renderer
        if text_wanted != self._text_wanted:
            renderer.text(text_wanted)
            self._text_wanted = text_wanted
        out = renderer.out
        if into is None:
            out.len = 0
        else:
            lib.wppr_buf_borrow(out, ffi.cast("uint8_t *", into[0]), into[1])
        rc = lib.wpprow_render(renderer.raw, ffi.from_buffer("uint64_t[]", refs), n, self._rows,
                               self._counts, self._datas, self._sizes, nslots,
                               ffi.from_buffer("int32_t[]", self.key_program), len(self.key_program),
                               out, self._holes, self._hole_at, self._nholes, self._skipped,
                               self._ends if want_ends else ffi.NULL)
        text = memoryview(ffi.buffer(out.data, out.len)) if out.len else b""
        if into is not None:
            lib.wppr_buf_return(out)
        if rc < 0:
            raise MemoryError("wpprow_render: no memory for the output")
        holes = [(self._holes[k], self._hole_at[k]) for k in range(self._nholes[0])]
        ends = ffi.unpack(self._ends, n) if want_ends else []
        return text, holes, ends, self._skipped[0]

    def _slots(self, refs: array, datas: list, blobs: list, pointer_sizes: list[int],
               sources=None) -> list:
        """Point the slot arrays at the view's buffers and row tables; the cdata to keep
        alive while C reads them. A slot keeps its buffer for several chunks: only the
        slots whose buffer changed are pointed anew. A view of many more slots than the
        chunk has rows (thousands of processor streams of a buffer each) visits only the
        slots the refs name, so the chunks of a file do not cost slots x chunks."""
        nslots = len(datas)
        if nslots > self._slot_cap:
            self._slot_cap = max(nslots, 16)
            self._datas = ffi.new("const uint8_t *[]", self._slot_cap)
            self._rows = ffi.new("const wpprow *[]", self._slot_cap)
            self._counts = ffi.new("uint32_t[]", self._slot_cap)
            self._sizes = ffi.new("uint32_t[]", self._slot_cap)
            self._sources = ffi.new("int32_t[]", self._slot_cap)
            self._held = [None] * self._slot_cap
        held = self._held
        if nslots > 64 and nslots > 2 * len(refs):
            high = set(memoryview(refs).cast("B").cast("I")[1::2])   # a ref's high word: its slot
            used = [slot for slot in high if slot < nslots]          # (C skips refs beyond)
        else:
            used = range(nslots)
        for slot in used:
            data, blob = datas[slot], blobs[slot]
            was = held[slot]
            if was is None or was[0] is not data or was[1] is not blob:
                cdata, cblob = ffi.from_buffer(data), ffi.from_buffer(blob)
                held[slot] = (data, blob, cdata, cblob)    # the objects, so ids stay theirs
                self._datas[slot] = cdata
                self._rows[slot] = ffi.cast("const wpprow *", cblob)
                self._counts[slot] = len(blob) // ROW.size
            self._sizes[slot] = pointer_sizes[slot]
            if sources is not None:
                self._sources[slot] = sources[slot]
        return held

    def columns(self, items, start: int, datas: list, blobs: list, pointer_sizes: list[int],
                sources: list[int], columns, all_records: bool, max_rows: int
                ) -> tuple[int, int, int]:
        """Append the rows items[start:] to ``columns`` (a ``wpprow_columns *``, the renderer
        in the "columns" form) until one is left to Python: (index of the first item not done,
        why (WPPROW_C_DONE / _HOLE / _FULL), rows that are not messages skipped).
        ``sources[slot]``: the number written in the rows' source column."""
        refs = _refs(items)
        keep = self._slots(refs, datas, blobs, pointer_sizes, sources)  # noqa: F841
        why = self._why
        self._skipped[0] = 0
        at = lib.wpprow_put_columns(
            self.renderer.raw, ffi.from_buffer("uint64_t[]", refs), start, len(refs),
            self._rows, self._counts, self._datas, self._sizes, self._sources, len(datas),
            ffi.from_buffer("int32_t[]", self.key_program), len(self.key_program),
            all_records, max_rows, columns, self._skipped, why)
        if at < 0:
            raise MemoryError("wpprow_put_columns: no memory for the columns")
        return at, why[0], self._skipped[0]


def _key_columns(keys: list[tuple[bytes, int]]) -> tuple[bytes, array]:
    """Message keys (GUID bytes_le, number) as the table's C calls take them: the GUIDs end
    to end, the numbers as uint32."""
    return b"".join([guid for guid, _number in keys]), array("I", [number for _guid, number in keys])


_NULL = ffi.NULL


class ProgramTable:
    """A table of message records in an anonymous shared mapping (``pshare_*``): made before
    a fork, the processes after it see one table. ``claim`` -> (slot, state): the caller
    that gets ``MINE`` publishes the record or refuses; the others read it once READY."""

    MINE, CLAIMED, READY, REFUSED, FULL = (lib.PSHARE_MINE, lib.PSHARE_CLAIMED, lib.PSHARE_READY,
                                           lib.PSHARE_REFUSED, lib.PSHARE_FULL)
    AGREED, ABANDONED, POSTERS = lib.PSHARE_MEET_AGREED, lib.PSHARE_MEET_ABANDONED, lib.PSHARE_POSTERS

    def __init__(self, slots: int, arena: int) -> None:
        import mmap

        size = lib.pshare_size(slots, arena)
        self._map = mmap.mmap(-1, size, flags=mmap.MAP_SHARED)   # zeroed, inherited on fork
        self._mem = ffi.from_buffer("uint8_t[]", self._map)
        # the handle every call takes: the map and its sizes, in this process's memory
        self._table = ffi.new("pshare_table *")
        if lib.pshare_init(self._table, self._mem, size, slots) < 0:
            raise ValueError(f"a shared program table of {slots} slots cannot be made")
        self._state = ffi.new("uint32_t *")
        self._length = ffi.new("uint32_t *")
        self._program = ffi.new("int32_t *")
        self._keys_at = ffi.new("uint8_t **")
        self._publish_claim = lib.pshare_publish_claim   # (one lookup: called once a message)
        self._add_publish_claim = lib.pshare_add_publish_claim

    def _open(self):
        """The table's handle for a C call; ValueError once closed (C is never handed none)."""
        table = self._table
        if table is None:
            raise ValueError("the shared program table is closed")
        return table

    def claim(self, guid_le: bytes, number: int) -> tuple[int, int]:
        slot = lib.pshare_claim(self._open(), guid_le, number, self._state)
        return slot, self._state[0]

    def state(self, slot: int) -> int:
        return lib.pshare_state(self._open(), slot)

    def publish(self, slot: int, record: bytes) -> bool:
        return lib.pshare_publish(self._open(), slot, record, len(record)) == 0

    def publish_parts(self, slot: int, mode: bytes, component: str, name: str, has_prefix: bool,
                      unknown: str | None, prefix_program: int, blob: bytes,
                      decoration: bytes | None) -> bool:
        """``publish`` of the record ``program_share.pack_parts`` makes of these fields, laid
        out in the table in one C call (no record made here); False: refused, no room."""
        component_b, name_b = component.encode(), name.encode()
        if unknown is None:
            unknown_b, unknowns = ffi.NULL, 0
        else:
            unknown_b = unknown.encode()
            unknowns = len(unknown_b)
        return lib.pshare_publish_parts(
            self._open(), slot, mode, has_prefix, prefix_program, component_b, len(component_b),
            name_b, len(name_b), unknown_b, unknowns, blob, len(blob),
            ffi.NULL if decoration is None else decoration,
            0 if decoration is None else len(decoration)) == 0

    def publish_claim(self, slot: int, mode: int, component: str, name: str, has_prefix: bool,
                      unknown: str | None, prefix_program: int, blob: bytes,
                      decoration: bytes | None, next_guid: bytes | None, next_number: int
                      ) -> tuple[int, int]:
        """``publish_parts`` (``mode``: its 4 bytes as a little-endian int), then ``claim`` of
        the next key (``next_guid`` None: none, (-1, FULL)), in one C call: the next key's
        (slot, state). Whether the record was published: ``record(slot)`` is not None."""
        component_b, name_b = component.encode(), name.encode()
        unknown_b = _NULL if unknown is None else unknown.encode()
        state = self._state
        return self._publish_claim(
            self._open(), slot, mode, has_prefix, prefix_program, component_b, len(component_b),
            name_b, len(name_b), unknown_b, 0 if unknown is None else len(unknown_b), blob,
            len(blob), _NULL if decoration is None else decoration,
            0 if decoration is None else len(decoration),
            _NULL if next_guid is None else next_guid, next_number, state), state[0]

    def add_publish_claim(self, renderer, slot: int, mode: int, component: str, name: str,
                          has_prefix: bool, prefix_program: int, blob: bytes,
                          next_guid: bytes | None, next_number: int) -> tuple[int, int, int]:
        """The program ``blob`` registered with ``renderer`` (a ``NativeRenderer``), then
        ``publish_claim`` of a record with no Unknown line and no decoration, in one C call:
        (program id, the next key's slot, its state); program -1: the renderer refused the
        blob, nothing published or claimed."""
        component_b, name_b = component.encode(), name.encode()
        state = self._state
        slot = self._add_publish_claim(
            self._open(), renderer.raw, self._program, slot, mode, has_prefix, prefix_program,
            component_b, len(component_b), name_b, len(name_b), blob, len(blob),
            _NULL if next_guid is None else next_guid, next_number, state)
        return self._program[0], slot, state[0]

    def refuse(self, slot: int) -> None:
        lib.pshare_refuse(self._open(), slot)

    def record(self, slot: int) -> bytes | None:
        data = lib.pshare_record(self._open(), slot, self._length)
        return None if data == ffi.NULL else ffi.unpack(ffi.cast("char *", data), self._length[0])

    def ready(self, keys: list[tuple[bytes, int]]) -> list[int]:
        """The slot of each key (GUID bytes_le, number) whose record is READY, -1 for the
        others (nothing claimed), in one C call."""
        table = self._open()
        n = len(keys)
        guids, numbers = _key_columns(keys)
        slots = array("q", bytes(8 * n))
        if n:
            lib.pshare_ready(table, guids, ffi.from_buffer("uint32_t[]", numbers), n,
                             ffi.from_buffer("int64_t[]", slots))
        return slots.tolist()

    def post(self, process: int, keys: list[tuple[bytes, int]]) -> bool:
        """Post the keys (GUID bytes_le, number) process number ``process`` needs first;
        False when it cannot (see ``pshare_post``)."""
        guids, numbers = _key_columns(keys)
        return lib.pshare_post(self._open(), process, guids, ffi.from_buffer("uint32_t[]", numbers),
                               len(keys)) == 0

    def posted(self, process: int) -> list[tuple[bytes, int]] | None:
        """The keys process number ``process`` posted, None when it has not posted."""
        at = ffi.new("uint8_t **")
        n = lib.pshare_posted(self._open(), process, at)
        if n < 0:
            return None
        data = ffi.buffer(at[0], 20 * n)[:]
        return list(zip([data[i:i + 16] for i in range(0, 16 * n, 16)],
                        array("I", data[16 * n:]).tolist()))

    def has_posted(self, process: int) -> bool:
        """Whether process number ``process`` has posted its keys (none read)."""
        return lib.pshare_posted(self._open(), process, self._keys_at) >= 0

    def shares(self, processes: int, file_weight: int) -> list[list[tuple[bytes, int]]] | None:
        """``program_share.shares_of`` of the keys processes 0..``processes``-1 posted, made
        in one C call (``pshare_shares``; ``file_weight``: what a GUID's file weighs); None
        when one has not posted. A GUID is one bytes object in all the keys."""
        table = self._open()
        total = 0
        for k in range(processes):
            posted = lib.pshare_posted(table, k, self._keys_at)
            if posted < 0:
                return None
            total += posted
        room = total or 1
        guids = _UNCLEARED("uint8_t[]", 16 * room)
        guid_of, numbers = array("I", bytes(4 * room)), array("I", bytes(4 * room))
        counts = array("I", bytes(4 * processes))
        found = lib.pshare_shares(table, processes, file_weight, guids,
                                  ffi.from_buffer("uint32_t[]", guid_of),
                                  ffi.from_buffer("uint32_t[]", numbers),
                                  ffi.from_buffer("uint32_t[]", counts))
        if found < 0:
            return None
        data = ffi.buffer(guids, 16 * found)[:]
        each = [data[at:at + 16] for at in range(0, 16 * found, 16)]
        given = sum(counts)
        keys = list(zip(map(each.__getitem__, guid_of[:given]), numbers[:given]))
        shares, start = [], 0
        for count in counts:
            shares.append(keys[start:start + count])
            start += count
        return shares

    def meet(self, outcome: int) -> int:
        """The meeting's outcome (``AGREED`` or ``ABANDONED``): ``outcome`` if it was still
        open, else the one decided before."""
        return lib.pshare_meet(self._open(), outcome)

    def install(self, renderer, slots: list[int], mode: bytes, prefix: int
                ) -> tuple[array, bytes, str]:
        """``install_records`` of the records of ``slots`` (one not READY: none), read where
        they are in the table."""
        table = self._open()
        n = len(slots)
        offsets, lengths = ffi.new("uint64_t[]", n or 1), ffi.new("uint32_t[]", n or 1)
        lib.pshare_records(table, slots, n, offsets, lengths)
        return _install(renderer, lib.pshare_arena(table), 0, offsets, lengths, n,
                        sum(ffi.unpack(lengths, n)), mode, prefix)

    @property
    def closed(self) -> bool:
        return self._mem is None

    def close(self) -> None:
        if self._mem is not None:
            self._table = None
            ffi.release(self._mem)
            self._mem = None
            self._map.close()


#: no record (``install_records``)
NO_RECORD = b""


def install_records(renderer, records: list[bytes], mode: bytes, prefix: int
                    ) -> tuple[array, bytes, str]:
    """Register the programs of message ``records`` (``program_share.pack``'s; ``NO_RECORD``:
    none) with ``renderer`` (a ``wpptrace.tmf.native.NativeRenderer``) in one C call
    (``precord_install``): (program id per record, -1 where it cannot serve and the message
    is compiled instead; PRECORD_* flags per record; component, name and Unknown line of
    each installed record, in order, each ended by a NUL, in one str: split only by a caller
    that reads them). ``mode``: the printer's record
    tag; ``prefix``: this renderer's shared prefix program (-1: none). Raises
    UnicodeDecodeError for texts that are not UTF-8 (their programs are registered)."""
    lengths = array("I", list(map(len, records)))   # (from an iterator: grown item by item)
    data = b"".join(records)           # one buffer, the records end to end
    return _install(renderer, data, len(data), ffi.NULL, ffi.from_buffer("uint32_t[]", lengths),
                    len(records), len(data), mode, prefix)


def _install(renderer, base, size: int, offsets, lengths, n: int, room: int, mode: bytes,
             prefix: int) -> tuple[array, bytes, str]:
    programs, flags = array("i", bytes(4 * n)), bytearray(n)
    strings = _UNCLEARED("uint8_t[]", room or 1)    # only what precord_install writes is read
    used = lib.precord_install(renderer.raw, base, size, offsets, lengths, n, mode, prefix,
                               ffi.from_buffer("int32_t[]", programs), ffi.from_buffer(flags),
                               strings)
    return programs, bytes(flags), str(ffi.buffer(strings, used), "utf-8") if used else ""


_UNCLEARED = ffi.new_allocator(should_clear_after_alloc=False)


RowValues = namedtuple("RowValues", "ids starts pools order")
RowValues.__doc__ = """What ``row_values`` decoded: ``ids`` (array 'i': per row its key id + 1, 0 when
Python decodes it), ``starts`` (array 'I', one more than the rows: row i's values are
``order[starts[i]:starts[i + 1]]``), ``pools`` (bytes per WPPV_* kind: uint64, int64,
double, NUL-ended UTF-8 texts, 16-byte GUIDs), ``order`` (array 'I': each value's index in
the pools' values laid end to end)."""


def row_values(items, datas: list, blobs: list, pointer_sizes: list[int], key_layout: array,
               layouts: bytes | bytearray) -> RowValues:
    """The typed argument values of the rows ``items`` (row refs into ``datas`` / ``blobs``, as
    ``RowPrinter.print`` takes them) in one ``wppv_decode`` call. ``key_layout[key]``: the
    offset of the key's value layout in ``layouts`` (``wpptrace.tmf.native.value_layout``), -1
    for none. Every call has its own buffers: chunks may be decoded from several threads."""
    refs = _refs(items)
    n, nslots = len(refs), len(datas)
    keep = [(ffi.from_buffer(data), ffi.from_buffer(blob)) for data, blob in zip(datas, blobs)]
    cdatas = ffi.new("const uint8_t *[]", [d for d, _ in keep] or 1)
    rows = ffi.new("const wpprow *[]", [ffi.cast("const wpprow *", b) for _, b in keep] or 1)
    counts = ffi.new("uint32_t[]", [len(blob) // ROW.size for blob in blobs] or 1)
    sizes = ffi.new("uint32_t[]", list(pointer_sizes) or 1)
    ids, starts = array("i", bytes(4 * n)), array("I", bytes(4 * (n + 1)))
    out = ffi.new("wppv_values *")
    try:
        rc = lib.wppv_decode(ffi.from_buffer("uint64_t[]", refs), n, rows, counts, cdatas, sizes,
                             nslots, ffi.from_buffer("int32_t[]", key_layout), len(key_layout),
                             ffi.from_buffer(layouts), len(layouts),
                             ffi.from_buffer("int32_t[]", ids), ffi.from_buffer("uint32_t[]", starts),
                             out)
        if rc < 0:
            raise MemoryError("wppv_decode: no memory for the values")
        pools = [ffi.buffer(pool.data, pool.len)[:] if pool.len else b"" for pool in out.pool]
        order = array("I")
        if out.order.len:
            order.frombytes(ffi.buffer(out.order.data, out.order.len))
    finally:
        lib.wppv_free(out)
    del keep
    return RowValues(ids, starts, pools, order)


def address_of(data) -> int:
    """The address of a buffer's first byte (bytes, bytearray, memoryview, mmap)."""
    cdata = ffi.from_buffer(data)
    try:
        return int(ffi.cast("uintptr_t", cdata))
    finally:
        ffi.release(cdata)


def _refs(items) -> array:
    """The engine's row refs as the uint64 array C reads (the merge's own array as it is)."""
    return items if isinstance(items, array) and items.typecode == "Q" else array("Q", items)


#: the constants of the Arrow columns (wpp_rows.h, wpprender.h): why ``RowPrinter.columns``
#: stopped, a row's flags, which value of an argument is set
COLUMNS = SimpleNamespace(DONE=lib.WPPROW_C_DONE, HOLE=lib.WPPROW_C_HOLE, FULL=lib.WPPROW_C_FULL,
                          TIME=lib.WPPROW_C_TIME, NS=lib.WPPROW_C_NS, NO_GUID=lib.WPPROW_C_NO_GUID,
                          NO_PID=lib.WPPROW_C_NO_PID, NO_TID=lib.WPPROW_C_NO_TID,
                          INT=lib.WPPR_C_INT, FLOAT=lib.WPPR_C_FLOAT, STR=lib.WPPR_C_STR)

#: the buffers of ``wpprow_columns`` (the rows' own fields) and of its ``wppr_columns``
_ROW_BUFFERS = ("filetime", "ns", "cpu", "pid", "tid", "sequence", "payload_size", "number",
                "kind", "key", "source", "flags")
_MSG_BUFFERS = ("text_off", "text", "arg_off", "arg_name", "arg_type", "arg_int", "arg_float",
                "arg_has", "str_off", "str")


class ColumnBuffers:
    """The C column buffers a batch's rows are appended to (``wpprow_columns``), given to
    ``RowPrinter.columns`` as ``raw``; ``take()`` hands their memory over."""

    def __init__(self) -> None:
        raw = ffi.new("wpprow_columns *")
        self.raw = raw
        self._finalizer = weakref.finalize(self, _free_columns, raw)
        self.reset()

    def reset(self) -> None:
        if lib.wpprow_columns_reset(self.raw) < 0:
            raise MemoryError("wpprow_columns_reset")

    @property
    def rows(self) -> int:
        return self.raw.msg.rows

    @property
    def args(self) -> int:
        return self.raw.msg.args

    def has_time(self, r: int) -> bool:
        """Whether row r (appended, this batch) has its FILETIME."""
        return bool(self.raw.flags.data[r] & lib.WPPROW_C_TIME)

    def text(self, data: bytes | None) -> None:
        """A row's text (None: it has none)."""
        if lib.wppr_columns_text(ffi.addressof(self.raw.msg), ffi.NULL if data is None else data,
                                 0 if data is None else len(data)) < 0:
            raise MemoryError("wppr_columns_text")

    def arg(self, name: int, item: int, has: int, i: int, f: float, s: bytes | None) -> None:
        """One argument of the row: name and type ids, which values are set, the values."""
        if lib.wppr_columns_arg(ffi.addressof(self.raw.msg), name, item, has, i, f,
                                ffi.NULL if s is None else s, 0 if s is None else len(s)) < 0:
            raise MemoryError("wppr_columns_arg")

    def end_row(self) -> None:
        if lib.wppr_columns_end_row(ffi.addressof(self.raw.msg)) < 0:
            raise MemoryError("wppr_columns_end_row")

    def take(self) -> dict[str, tuple[int, int, Any]]:
        """Each buffer as (address, size, owner): the memory is the owner's from now on (freed
        when it is collected); the columns start anew."""
        raw = self.raw
        sizes = (raw.msg.rows, raw.msg.args, raw.msg.text.len, raw.msg.str.len)
        out = {name: _take(getattr(raw, name)) for name in _ROW_BUFFERS}
        out.update((name, _take(getattr(raw.msg, name))) for name in _MSG_BUFFERS)
        self.reset()
        lib.wpprow_columns_reserve(raw, *sizes)   # room for a batch like this one (or less)
        return out


def _free_columns(raw) -> None:
    for name in _ROW_BUFFERS:
        lib.wppr_buf_free(ffi.addressof(raw, name))
    for name in _MSG_BUFFERS:
        lib.wppr_buf_free(ffi.addressof(raw.msg, name))


def _take(buf) -> tuple[int, int, Any]:
    n = buf.len
    if not n:
        return 0, 0, None
    if n * 8 <= buf.cap:
        # a few bytes in a large buffer (a batch of a few rows; a buffer starts at 64 KiB):
        # a copy of them, the buffer freed with the columns' others (and its room reused); a
        # batch taking the buffer itself would keep all its room as long as it lives
        owner = ffi.new("int64_t[]", (n + 7) // 8)      # 8-byte aligned, as Arrow wants
        ffi.memmove(owner, buf.data, n)
        return int(ffi.cast("uintptr_t", owner)), n, owner
    owner = ffi.gc(buf.data, lib.wppr_mem_free)
    buf.data = ffi.NULL
    buf.len = buf.cap = 0
    return int(ffi.cast("uintptr_t", owner)), n, owner
