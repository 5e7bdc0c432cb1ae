"""Decoded WPP messages as Apache Arrow record batches (``pip install 'wpptrace[arrow]'``).

One row per message, in ProcessTrace order, with typed columns (``SCHEMA``, docs/analytics.md).
The batches are built by the formatting loop's C renderer in its "columns" form
(``WppDecoder.columns``): for each row of the engine's chunks it appends the row's own fields
(time, cpu, pid, tid, sequence, key...), the message text and the typed arguments to flat
buffers in Arrow's layouts (``wpprow_columns``), which become the batch's arrays without a
copy. An argument is typed as JSON Lines types it (``MessageFormatter.json_kinds``), so the
two outputs agree. The per-message columns (GUID, component, function, file, line, level...)
are dictionary arrays over one small table per message key. Python decodes only the rows the
renderer leaves to it (the log-file header, format errors, more distinct messages than the key
table holds, times beyond the row clock, messages with rarer item types: addresses, SIDs...)
and appends them in their places.

Arguments are one ``args`` column: a list of structs {name, type, int, float, str} per
message, in argument order. ``name`` is the TMF's argument expression, ``type`` its item type
(``ItemLong``...); integer values are in ``int`` (int64; 64-bit unsigned values keep their
bits, so a kernel pointer reads negative), floating-point ones in ``float``, the rest (strings,
GUIDs, addresses, SIDs) as text in ``str``. Unknown messages (no TMF entry) and format errors
are rows too, flagged by ``status``; with ``all_records`` the records that are not WPP
messages come as rows of status ``record`` with their header fields.

``to_arrow(paths, tmf=...)`` yields the batches of one or more files merged by time (as
``wpptrace fmt``); ``decode_range(path, window, tmfset)`` decodes one time window of one file
(decoder.parallel's windows) into a table plus its issues table: the unit the Dask reader and
the Spark recipe run on workers (``wpptrace.dask``).
"""
from __future__ import annotations

import json
import operator
import threading
import uuid
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa

from wpptrace._cliutil import reason, utf8_text

from ._hazmat import COLUMNS, ColumnBuffers, constants, sizeof
from .messages import DecodingRun, _paths, load_tmf, trace_level
from .records import kernel_provider
from .wpp_rows import NO_TIME, ROW_FIELDS, ROW_FORMAT, ROW_SIZE

__all__ = ["SCHEMA", "ARG_TYPE", "LABEL", "ISSUES_SCHEMA", "PORTABLE_SCHEMA", "portable",
           "PARQUET_OPTIONS", "ROW_GROUP_ROWS",
           "ArrowBuilder", "ArrowFileWriter", "ArrowRun", "to_arrow", "decode_range",
           "issues_table", "in_file_order", "DEFAULT_BATCH_ROWS", "MAX_BATCH_ROWS", "checked_batch_rows"]

#: rows per record batch unless asked otherwise
DEFAULT_BATCH_ROWS = 1 << 16
#: the most rows a record batch may be asked to hold (a batch's row count is a C uint32 and
#: Arrow's offsets int32)
MAX_BATCH_ROWS = (1 << 31) - 1


def checked_batch_rows(value: Any, name: str = "batch_rows") -> int:
    """``value`` as rows per record batch: a whole number from 1 to ``MAX_BATCH_ROWS``, else
    ValueError naming ``name`` (the parameter or option it was given as). The one check every
    way of asking for a batch size goes through (``ArrowBuilder.batch_rows``; ``fmt
    --batch-rows`` asks it before decoding): a batch of 0 rows is never full and a batch
    would be made forever."""
    try:
        rows = operator.index(value) if not isinstance(value, bool) else None
    except TypeError:
        rows = None
    if rows is None or not 1 <= rows <= MAX_BATCH_ROWS:
        raise ValueError(f"{name} must be a whole number of rows from 1 to {MAX_BATCH_ROWS:,}, "
                         f"not {value!r}")
    return rows
_GUID_SIZE = sizeof("GUID")

#: the type of the columns with few distinct values (per message, per file): dictionary-encoded
LABEL = pa.dictionary(pa.int32(), pa.string())

ARG_TYPE = pa.struct([("name", LABEL), ("type", LABEL), ("int", pa.int64()),
                      ("float", pa.float64()), ("str", pa.string())])

#: one row per message (docs/analytics.md describes each column)
SCHEMA = pa.schema([
    ("etl", LABEL),                            # the .etl file the record was read from
    ("timestamp", pa.timestamp("ns", tz="UTC")),
    ("filetime", pa.int64()),                  # the same instant as a FILETIME (100 ns ticks)
    ("cpu", pa.uint32()),
    ("pid", pa.uint32()),
    ("tid", pa.uint32()),
    ("sequence", pa.uint32()),
    ("status", LABEL),                         # ok | unknown | format-error | header | record
    ("guid", LABEL),                           # message GUID (event GUID of other records)
    ("number", pa.uint16()),                   # message number (event id of other records)
    ("component", LABEL),                      # prefix %1
    ("name", LABEL),                           # prefix %2
    ("function", LABEL),      
    ("file", LABEL),      
    ("line", pa.int32()),
    ("level", pa.uint8()),                     # TRACE_LEVEL_* the TMF's LEVEL= names
    ("level_name", LABEL),                     # LEVEL= as written
    ("flags", LABEL),                          # FLAGS= as written
    ("text", pa.string()),                     # the message text, without the prefix
    ("args", pa.list_(ARG_TYPE)),
    ("error", pa.string()),                    # why a format-error message failed
    ("kind", LABEL),                           # record kind (message, system, event...)
    ("payload_size", pa.uint32()),
])

def _portable_type(kind: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(kind):
        return kind.value_type
    if pa.types.is_unsigned_integer(kind):         # widened so every value fits, signed
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64()}.get(kind.bit_width, pa.int64())
    if pa.types.is_timestamp(kind):                 # microseconds (filetime stays exact)
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_list(kind):
        return pa.list_(_portable_type(kind.value_type))
    if pa.types.is_struct(kind):
        return pa.struct([pa.field(f.name, _portable_type(f.type)) for f in kind])
    return kind


#: ``SCHEMA`` for engines without unsigned integers, dictionaries or nanoseconds (Spark):
#: labels as plain strings, unsigned columns widened to the next signed type, timestamps in
#: microseconds
PORTABLE_SCHEMA = pa.schema([pa.field(f.name, _portable_type(f.type)) for f in SCHEMA])


def portable(table: "pa.Table | pa.RecordBatch") -> "pa.Table | pa.RecordBatch":
    """A table or batch of ``SCHEMA`` cast to ``PORTABLE_SCHEMA`` (the same values, the
    timestamps cut to the microsecond)."""
    return table.cast(PORTABLE_SCHEMA, safe=False)


ISSUES_SCHEMA = pa.schema([("etl", pa.string()), ("offset", pa.int64()), ("message", pa.string())])


def _validity(ok: np.ndarray | None) -> tuple:
    """(validity bitmap or None, null count) of a mask of the values that are set."""
    if ok is None:
        return None, 0
    nulls = len(ok) - int(np.count_nonzero(ok))
    if not nulls:
        return None, 0
    return pa.py_buffer(np.packbits(ok, bitorder="little")), nulls


def _utf8(text: str) -> bytes:
    """``text`` in UTF-8; a file name's bytes that are not UTF-8 as \\xNN (``utf8_text``)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return utf8_text(text).encode("utf-8")


def _py_array(values: list, kind: pa.DataType) -> pa.Array:
    """A string or integer Arrow array of Python values (None: null), built from its buffers.
    ``pa.array`` first asks whether its input is a pandas object, which imports pandas
    (0.2-0.3 s in every run that writes Parquet, where nothing uses it)."""
    n = len(values)
    ok = np.fromiter((v is not None for v in values), bool, n)
    if pa.types.is_string(kind):
        data = [_utf8(v) if v is not None else b"" for v in values]
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(np.fromiter(map(len, data), np.int64, n), out=offsets[1:])
        if offsets[-1] >= 1 << 31:
            raise ValueError("string column values over 2 GB")
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)),
                                           pa.py_buffer(b"".join(data)), *_validity(ok))
    if pa.types.is_integer(kind):
        dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.bit_width // 8}")
        array = np.fromiter((0 if v is None else v for v in values), dtype, n)
        return _np_array(array, kind, ok)
    raise TypeError(f"no Python conversion to {kind}")


def _np_array(values: np.ndarray, kind: pa.DataType, ok: np.ndarray | None = None) -> pa.Array:
    """A fixed-width Arrow array over a numpy array's bytes (``ok``: which are set), without
    ``pa.array`` (see ``_py_array``)."""
    values = np.ascontiguousarray(values)
    validity, _nulls = _validity(ok)
    return pa.Array.from_buffers(kind, len(values), [validity, pa.py_buffer(values)])


_KIND_NAMES = {value: name[len("ETLRD_KIND_"):].lower()
               for name, value in constants("ETLRD_KIND_").items() if name != "ETLRD_KIND_COUNT"}
#: the kind column's dictionary (each name once: Parquet keeps it dictionary-encoded) and the
#: index of each ETLRD_KIND_* number in it
_KINDS = _py_array(sorted(set(_KIND_NAMES.values()) | {"unknown"}), pa.string())
_KIND_INDEX = np.array([_KINDS.to_pylist().index(_KIND_NAMES.get(k, "unknown"))
                        for k in range(256)], np.int32)
#: why the C columns stopped (wpp_rows.h), what a row's flags and an argument's values hold
_DONE, _FULL = COLUMNS.DONE, COLUMNS.FULL
_C_TIME, _C_NS, _C_NO_GUID = COLUMNS.TIME, COLUMNS.NS, COLUMNS.NO_GUID
_C_NO_PID, _C_NO_TID = COLUMNS.NO_PID, COLUMNS.NO_TID
_C_INT, _C_FLOAT, _C_STR = COLUMNS.INT, COLUMNS.FLOAT, COLUMNS.STR
_GUID_OFFSET, _KIND, _NUMBER = (ROW_FIELDS.index(f) for f in ("guid_offset", "kind", "number"))
_FILETIME_UNIX = 116_444_736_000_000_000
# FILETIMEs whose nanoseconds since 1970 fit an int64
_NS_LO, _NS_HI = _FILETIME_UNIX - (1 << 63) // 100 + 1, _FILETIME_UNIX + ((1 << 63) - 1) // 100
#: per-message columns, in SCHEMA order, taken from the key table
_KEY_COLUMNS = ("status", "guid", "component", "name", "function", "file", "line", "level",
                "level_name", "flags")
_WIDE = (1 << 64)
_INT64_MAX = (1 << 63) - 1

def _arg_value(v: Any) -> tuple[int | None, float | None, str | None]:
    """(int, float, str) of one typed argument value (see the module docstring)."""
    kind = type(v)
    if kind is int or kind is bool:
        v = int(v)
        if v > _INT64_MAX:
            v -= _WIDE                  # 64-bit unsigned: the bits, as int64
        return (v, None, None) if -_WIDE // 2 <= v else (None, None, str(v))
    if kind is float:
        return None, v, None
    if kind is str:
        return None, None, v
    if kind is uuid.UUID:
        return None, None, str(v)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return None, None, bytes(v).hex()
    if isinstance(v, (list, tuple, set, frozenset)):
        from .output import _json_value

        return None, None, json.dumps(_json_value(v), ensure_ascii=False)
    if v is None:
        return None, None, None
    return None, None, str(v)


class _Strings:
    """Ids for repeated strings (argument names and types, file names): their columns are
    one ``take`` each."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.values: list[str] = []
        self._array: pa.Array | None = None

    def __call__(self, text: str) -> int:
        i = self.ids.get(text)
        if i is None:
            i = self.ids[text] = len(self.values)
            self.values.append(text)
            self._array = None
        return i

    def array(self) -> pa.Array:
        if self._array is None:
            self._array = _py_array(self.values, pa.string())
        return self._array


class _Label(_Strings):
    """The distinct values of a label column (its dictionary, no value twice, so Parquet's
    dictionary pages stay small) and the value id of each message key (-1: null)."""

    def __init__(self) -> None:
        super().__init__()
        self._key_ids = np.zeros(0, np.int32)

    def __call__(self, value: str | None) -> int:
        return -1 if value is None else super().__call__(value)

    def forget_keys(self) -> None:
        """The message keys are numbered anew (the values stay)."""
        self._key_ids = np.zeros(0, np.int32)

    def key_ids(self, per_key: list) -> np.ndarray:
        """Value ids by message key (``per_key``: the column's value of each key so far)."""
        known = len(self._key_ids)
        if known < len(per_key):
            more = np.array([self(v) for v in per_key[known:]], np.int32)
            self._key_ids = np.concatenate([self._key_ids, more])
        return self._key_ids


class ArrowBuilder:
    """Record batches (``SCHEMA``) of a ``WppDecoder``'s run: ``batches(chunks, view)`` takes
    the engine's chunks (made with ``view``, a ``wpp_rows.RowView``) through the decoder's
    formatting loop, the C renderer in its "columns" form. ``all_records``: rows for the
    records that are not WPP messages too; ``batch_rows``: rows per batch at most; ``eager``:
    a batch as soon as a chunk is decoded (a live session). ``native`` False: Python decodes
    every row (what the C columns are checked against)."""

    def __init__(self, decoder, *, all_records: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS, eager: bool = False,
                 native: bool = True) -> None:
        self.batch_rows = batch_rows      # (checked first: nothing is set up for a bad one)
        self.decoder = decoder
        self.all_records = all_records
        self.eager = eager                # a batch per chunk (a live session is watched)
        self.native = native
        self._names = _Strings()          # argument names and types
        self._etls = _Strings()           # .etl file names
        self._entries: list | None = None    # the decoder's key entries the keys mirror
        self._keys: dict[str, list] = {c: [] for c in _KEY_COLUMNS}
        self._key_arrays: dict[str, pa.Array] | None = None
        self._labels = {c: _Label() for c in _KEY_COLUMNS if SCHEMA.field(c).type == LABEL}
        self._columns = ColumnBuffers()
        self._pending = _Python()

    @property
    def batch_rows(self) -> int:
        """Rows per record batch at most (``checked_batch_rows`` on every change)."""
        return self._batch_rows

    @batch_rows.setter
    def batch_rows(self, value: int) -> None:
        self._batch_rows = checked_batch_rows(value)

    # -- per-message columns ---------------------------------------------------------------
    def _sync_keys(self) -> int:
        entries = self.decoder._key_entries
        if entries is not self._entries:     # the decoder's key ids started anew (a new table)
            self._entries = entries
            self._keys = {c: [] for c in _KEY_COLUMNS}
            self._key_arrays = None
            for label in self._labels.values():
                label.forget_keys()
        keys = self._keys
        for entry in entries[len(keys["status"]):]:
            for column, value in zip(_KEY_COLUMNS, _entry_values(entry)):
                keys[column].append(value)
            self._key_arrays = None
        return len(keys["status"])

    def _key_array(self, column: str) -> pa.Array:
        """A per-message column's values by key id (the dictionary of a label column)."""
        if self._key_arrays is None:
            self._key_arrays = {c: _py_array(v, _value_type(c)) for c, v in self._keys.items()}
        return self._key_arrays[column]

    def _decoration(self, entry) -> bytes | None:
        """A message program's column decoration: its arguments typed as JSON Lines types
        them (None: Python decodes its rows)."""
        from wpptrace.tmf.native import column_decoration

        if not self.native:
            return None
        if entry.unknown is not None:
            return column_decoration([])
        kinds = entry.formatter.json_kinds() if entry.formatter is not None else None
        if kinds is None:
            return None
        names = self._names
        return column_decoration([(names(name), names(item), kind, bits4, bits8)
                                  for name, item, kind, bits4, bits8 in kinds])

    # -- batches ---------------------------------------------------------------------------
    def batches(self, chunks: Iterable, view) -> Iterator[pa.RecordBatch]:
        """The record batches of the engine's ``chunks`` (see the class docstring): the C
        renderer appends each chunk's rows to the columns, Python the rows it leaves."""
        self._columns.reset()
        self._pending = _Python()
        etls = self._etls
        view.number_source = lambda source: etls(source.name)   # (numbered as its buffers come)
        for done in self.decoder.columns(chunks, view, self._chunk, self._decoration):
            yield from done
        if self._columns.rows:
            yield self._build()

    def _chunk(self, printer, items, view) -> tuple[list[pa.RecordBatch], int]:
        """Append one chunk's rows (the sink of ``WppDecoder.columns``): the batches it
        completed and the rows that are not messages."""
        columns, done = self._columns, []
        at, skipped = 0, 0
        while True:
            at, why, skip = printer.columns(items, at, view.datas, view.blobs, view.pointer_sizes,
                                            view.source_numbers, columns.raw, self.all_records,
                                            self._batch_rows)
            skipped += skip
            if why == _DONE:
                break
            if why == _FULL:
                done.append(self._build())
                continue
            self._python_row(items[at], view)        # a hole: its row fields are in
            at += 1
        if self.eager and columns.rows:
            done.append(self._build())
        return done, skipped

    def _python_row(self, ref: int, view) -> None:
        """The text and arguments of a row the C renderer left, decoded by Python, and what
        its row differs in (per-message values, time, error)."""
        decoder = self.decoder
        columns = self._columns
        r = columns.rows
        slot, index = ref >> 32, ref & 0xFFFFFFFF
        full = ROW_FORMAT.unpack_from(view.blobs[slot], index * ROW_SIZE)
        raw_ts, milli, goff = full[0], full[1], full[_GUID_OFFSET]
        m = decoder._row_message(ref, view)
        pending = self._pending
        if milli != NO_TIME and not columns.has_time(r):   # beyond what the row clock computes
            ft = view.sources[slot].clock.to_filetime(raw_ts)
            if -(1 << 63) <= ft < (1 << 63):
                pending.times[r] = ft
        if m is None:                   # a record that is not a message (all_records)
            raw = view.datas[slot][goff:goff + _GUID_SIZE] if goff else b""
            # (one that carries none: the provider decoder.open gives it, if any)
            provider = (uuid.UUID(bytes_le=bytes(raw)) if len(raw) == _GUID_SIZE
                        else kernel_provider(full[_KIND], full[_NUMBER]))
            pending.values[r] = ("record", None if provider is None else str(provider),
                                 None, None, None, None, None, None, None, None)
            pending.no_text.append(r)
            columns.text(None)
            columns.end_row()
            return
        pending.values[r] = _message_values(m)
        if m.error:
            pending.errors[r] = m.error
        columns.text(m.text.encode("utf-8", "surrogatepass"))
        names = self._names
        for name, item, value in m.args or ():
            i, f, s = _arg_value(value)
            has = (_C_INT if i is not None else 0) | (_C_FLOAT if f is not None else 0) | \
                (_C_STR if s is not None else 0)
            columns.arg(names(name), names(item), has, 0 if i is None else i,
                        0.0 if f is None else f,   # (-0.0 is falsy: kept as it is)
                        None if s is None else s.encode("utf-8", "surrogatepass"))
        columns.end_row()

    def _build(self) -> pa.RecordBatch:
        """The record batch of the rows appended so far (the columns start anew)."""
        c = _Taken(self._columns)
        pending, self._pending = self._pending, _Python()
        n = c.rows
        nkeys = self._sync_keys()   # the renderer and Python may have added keys
        flags = np.frombuffer(c.flags, np.uint8)
        filetime, ns = c.filetime, c.ns
        if pending.times:            # times Python computed
            flags = flags.copy()
            ft = np.frombuffer(filetime, np.int64).copy()
            nsv = np.frombuffer(ns, np.int64).copy()
            for r, value in pending.times.items():
                ft[r] = value
                flags[r] |= _C_TIME
                if _NS_LO <= value <= _NS_HI:
                    nsv[r] = (value - _FILETIME_UNIX) * 100
                    flags[r] |= _C_NS
            filetime, ns = pa.py_buffer(ft), pa.py_buffer(nsv)

        # per-message columns through the key table; Python's rows appended after it
        kid = np.frombuffer(c.key, np.int32).astype(np.int64)
        extra_rows = sorted(pending.values)
        extra_values: dict[str, list] = {col: [] for col in _KEY_COLUMNS}
        for j, r in enumerate(extra_rows):
            for column, value in zip(_KEY_COLUMNS, pending.values[r]):
                extra_values[column].append(value)
            kid[r] = nkeys + j
        extra = np.zeros(n, bool)
        extra[extra_rows] = True
        indices = _np_array(kid.astype(np.int32), pa.int32())
        # a message logged without its GUID (component-id messages) has none in its row
        no_guid = ((flags & _C_NO_GUID) != 0) & ~extra
        cols: dict[str, pa.Array] = {}
        for column in _KEY_COLUMNS:
            kind = SCHEMA.field(column).type
            if kind == LABEL:                # indices into the column's distinct values
                label = self._labels[column]
                ids = label.key_ids(self._keys[column])[np.minimum(kid, max(nkeys - 1, 0))] \
                    if nkeys else np.zeros(n, np.int32)
                for j, r in enumerate(extra_rows):
                    ids[r] = label(extra_values[column][j])
                nulls = ids < 0                 # nulls live in the indices (Parquet wants so)
                if column == "guid":
                    nulls |= no_guid
                cols[column] = pa.DictionaryArray.from_arrays(
                    _np_array(ids.astype(np.int32), pa.int32(), ~nulls), label.array())
                continue
            base = self._key_array(column) if nkeys else _py_array([], _value_type(column))
            if extra_rows:
                base = pa.concat_arrays([base, _py_array(extra_values[column],
                                                        _value_type(column))])
            cols[column] = base.take(indices) if len(base) else pa.nulls(n, kind)

        text_ok = None
        if pending.no_text:
            ok = np.ones(n, bool)
            ok[pending.no_text] = False
            text_ok = ok
        text = pa.StringArray.from_buffers(n, c.text_off, c.text, *_validity(text_ok))
        if pending.errors:
            errs: list = [None] * n
            for r, e in pending.errors.items():
                errs[r] = e
            error = _py_array(errs, pa.string())
        else:
            error = pa.nulls(n, pa.string())
        etl = pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int32(), n, [None, c.source]), self._etls.array())
        kinds = pa.DictionaryArray.from_arrays(
            _np_array(_KIND_INDEX[np.frombuffer(c.kind, np.uint8)], pa.int32()), _KINDS)
        batch = pa.RecordBatch.from_arrays([
            etl,
            pa.Array.from_buffers(_TIMESTAMP, n, [*_validity((flags & _C_NS) != 0)[:1], ns]),
            pa.Array.from_buffers(pa.int64(), n,
                                  [*_validity((flags & _C_TIME) != 0)[:1], filetime]),
            _fixed(pa.uint32(), n, c.cpu), _maybe(pa.uint32(), n, c.pid, flags, _C_NO_PID),
            _maybe(pa.uint32(), n, c.tid, flags, _C_NO_TID), _fixed(pa.uint32(), n, c.sequence),
            cols["status"], cols["guid"], _fixed(pa.uint16(), n, c.number), cols["component"],
            cols["name"], cols["function"], cols["file"], cols["line"], cols["level"],
            cols["level_name"], cols["flags"], text, self._args_array(c), error, kinds,
            _fixed(pa.uint32(), n, c.payload_size),
        ], schema=SCHEMA)
        return batch

    def _args_array(self, c: "_Taken") -> pa.Array:
        total = c.args
        has = np.frombuffer(c.arg_has, np.uint8)
        table = self._names.array()
        strs = pa.StringArray.from_buffers(total, c.str_off, c.str,
                                           *_validity((has & _C_STR) != 0))
        struct = pa.StructArray.from_arrays([
            pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), total,
                                                                 [None, c.arg_name]), table),
            pa.DictionaryArray.from_arrays(pa.Array.from_buffers(pa.int32(), total,
                                                                 [None, c.arg_type]), table),
            pa.Array.from_buffers(pa.int64(), total,
                                  [*_validity((has & _C_INT) != 0)[:1], c.arg_int]),
            pa.Array.from_buffers(pa.float64(), total,
                                  [*_validity((has & _C_FLOAT) != 0)[:1], c.arg_float]),
            strs,
        ], fields=list(ARG_TYPE))
        return pa.ListArray.from_arrays(pa.Array.from_buffers(pa.int32(), c.rows + 1,
                                                              [None, c.arg_off]),
                                        struct, type=pa.list_(ARG_TYPE))


_TIMESTAMP = pa.timestamp("ns", tz="UTC")


def _fixed(kind: pa.DataType, n: int, buffer: pa.Buffer) -> pa.Array:
    return pa.Array.from_buffers(kind, n, [None, buffer])


def _maybe(kind: pa.DataType, n: int, buffer: pa.Buffer, flags: np.ndarray, absent: int) -> pa.Array:
    """A fixed-width column whose rows flagged ``absent`` are null."""
    return pa.Array.from_buffers(kind, n, [_validity((flags & absent) == 0)[0], buffer])


class _Python:
    """What the rows Python decoded in a batch differ in: per row, per-message values
    (``_KEY_COLUMNS``), a FILETIME, an error; the rows without text."""

    def __init__(self) -> None:
        self.values: dict[int, tuple] = {}
        self.times: dict[int, int] = {}
        self.errors: dict[int, str] = {}
        self.no_text: list[int] = []


class _Taken:
    """A batch's column buffers, taken from C (Arrow buffers over the C memory, freed with
    them), and its row and argument counts."""

    def __init__(self, columns: ColumnBuffers) -> None:
        self.rows, self.args = columns.rows, columns.args
        for name, (address, size, owner) in columns.take().items():
            setattr(self, name, pa.foreign_buffer(address, size, base=owner) if size
                    else pa.py_buffer(b""))


def _value_type(column: str) -> pa.DataType:
    """The type of a per-message column's values (a label column's dictionary values)."""
    kind = SCHEMA.field(column).type
    return kind.value_type if kind == LABEL else kind


def _entry_values(entry) -> tuple:
    """The per-message columns (``_KEY_COLUMNS``) of a formatter entry."""
    markers = entry.markers
    line = markers.get("LINE", "")
    level = trace_level(markers.get("LEVEL"))
    return ("unknown" if entry.unknown is not None else "ok", str(entry.guid), entry.component,
            entry.name, markers.get("FUNC", ""), markers.get("FILE", ""),
            int(line) if str(line).isdigit() and int(line) < (1 << 31) else None,
            level if level is not None and 0 <= level < 256 else None,
            markers.get("LEVEL", ""), markers.get("FLAGS", ""))


def _message_values(m) -> tuple:
    """The per-message columns of a message Python decoded (``WppMessage``)."""
    line = m.source_line
    level = trace_level(m.level)
    return (m.status, str(m.guid) if m.guid is not None else None, m.component, m.name,
            m.function, m.source_file,
            int(line) if str(line).isdigit() and int(line) < (1 << 31) else None,
            level if level is not None and 0 <= level < 256 else None, m.level, m.flags)


# -- writers -------------------------------------------------------------------------------

#: Parquet dictionary-encodes these columns (few distinct values); text and numbers are not
_DICTIONARY_COLUMNS = ("etl", "status", "guid", "component", "name", "function", "file",
                       "level_name", "flags", "kind", "args.list.element.name",
                       "args.list.element.type")

#: Parquet stores these as differences from the value before (times and sequence numbers
#: grow, the processor changes little): a few bits a value, and 3x faster to write than plain
#: values compressed
_DELTA_COLUMNS = ("timestamp", "filetime", "sequence", "cpu")

#: Parquet keeps min/max statistics of these (what readers prune row groups by; those of the
#: text and argument columns would cost more than they save)
_STATISTICS_COLUMNS = ("timestamp", "filetime", "cpu", "pid", "tid", "sequence", "number",
                       "line", "level", "payload_size")


def _leaf_paths(schema: pa.Schema) -> list[str]:
    """The Parquet column paths of a schema (a list's values: ``name.list.element``)."""
    def walk(name: str, kind: pa.DataType) -> list[str]:
        if pa.types.is_list(kind):
            return walk(f"{name}.list.element", kind.value_type)
        if pa.types.is_struct(kind):
            return [p for f in kind for p in walk(f"{name}.{f.name}", f.type)]
        return [name]
    return [p for f in schema for p in walk(f.name, f.type)]


#: Parquet compresses the arguments with snappy (their nested encoding is the costliest part
#: of a file: zstd adds ~10% to the writing time for ~4% smaller files), the rest with zstd
_COMPRESSION = {path: "snappy" if path.startswith("args.") else "zstd"
                for path in _leaf_paths(SCHEMA)}

#: the Parquet writer options ``fmt -f parquet`` uses; pass them to other writers too
#: (``dataframe.to_parquet(path, **PARQUET_OPTIONS)``): without them pyarrow tries a dictionary
#: and keeps min/max statistics for every column, the unique texts included. Values are handed
#: to the encoders 64k at a time (pyarrow's 1,024 costs ~10% more time, the same bytes).
PARQUET_OPTIONS = {"compression": _COMPRESSION, "use_dictionary": list(_DICTIONARY_COLUMNS),
                   "write_statistics": list(_STATISTICS_COLUMNS), "write_batch_size": 1 << 16,
                   "column_encoding": {c: "DELTA_BINARY_PACKED" for c in _DELTA_COLUMNS}}

#: rows per Parquet row group ``fmt -f parquet`` writes (batches are joined up to this many):
#: fewer, larger column chunks encode faster and compress better than a group per batch
ROW_GROUP_ROWS = 1 << 17

#: batches a gathering row group holds before it joins them into one: a small batch holds C
#: buffers and Arrow objects worth some 25 KB beside its values, so a row group of one-row
#: batches would hold gigabytes; joined, it holds about its rows' bytes
_JOIN_BATCHES = 16


def _encoders() -> int:
    """Threads encoding Parquet row groups: one per core this process may run on (at most 4:
    beyond that the decoding feeding them is the slower side)."""
    from .jobs import usable_cores

    return min(4, usable_cores())


def _joined(batches: list[pa.RecordBatch]) -> list[pa.RecordBatch]:
    """``batches`` as one batch (their label dictionaries unified), or as they are when they
    cannot be one (a string column past Arrow's 2 GB offsets)."""
    try:
        return pa.Table.from_batches(batches, schema=SCHEMA).combine_chunks().to_batches()
    except pa.ArrowException:
        return batches


def _encode_part(table: pa.Table, options: dict) -> pa.Buffer:
    """One row group as a Parquet file of its own (pyarrow releases the GIL meanwhile)."""
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(table.num_rows, 1), **options)
    return sink.getvalue()


class ArrowFileWriter:
    """Record batches into a binary stream as Parquet (``format="parquet"``, written with
    ``PARQUET_OPTIONS``; ``compression``: another codec, or codec per column) or an Arrow IPC
    stream (``format="arrow"``); ``close()`` writes the Parquet footer / the stream's end.
    Parquet row groups hold ``row_group_rows`` rows (the last one fewer: a batch is cut across
    groups, and the small batches a group gathers are joined as they come, so its memory is
    about its rows' whatever the batch size); each is encoded by
    pyarrow on a thread of a pool (``encoders`` threads; pyarrow releases the GIL while it
    encodes and compresses), beside the decoding, and written in order into one file
    (``decoder.parquet_join``): the same bytes pyarrow's own writer makes of them, in a
    fraction of its time."""

    def __init__(self, stream, format: str = "parquet", *, compression: Any = None,
                 row_group_rows: int = ROW_GROUP_ROWS, encoders: int | None = None) -> None:
        if isinstance(row_group_rows, bool) or not isinstance(row_group_rows, int) \
                or row_group_rows < 1:
            raise ValueError(f"row_group_rows must be a whole number from 1, not {row_group_rows!r}")
        self.row_group_rows = row_group_rows
        self._pool = None
        if format == "parquet":
            from collections import deque
            from concurrent.futures import ThreadPoolExecutor

            from .parquet_join import ParquetJoiner

            self._options = dict(PARQUET_OPTIONS)
            if compression is not None:         # one codec, or {column path: codec}
                self._options["compression"] = compression
            self._encoders = encoders or _encoders()
            self._pool = ThreadPoolExecutor(self._encoders, thread_name_prefix="wpptrace-parquet")
            self._pending: "deque" = deque()    # row groups being encoded, in file order
            # the row group being gathered: _levels[0] the batches as they came, _levels[k+1]
            # batches each joined from _JOIN_BATCHES of _levels[k] (and older than those)
            self._levels: list[list[pa.RecordBatch]] = [[]]
            self._group_rows = 0
            self._writer = ParquetJoiner(stream)
        elif format == "arrow":
            self._writer = pa.ipc.new_stream(stream, SCHEMA)
        else:
            raise ValueError(f"format {format!r}: expected parquet or arrow")
        self.format = format
        self.stream = stream
        self.rows = 0

    def _gather(self, batch: pa.RecordBatch) -> None:
        """Add a batch to the row group being gathered, joining batches as they pile up (each
        row is copied a few times at most: once per level)."""
        levels = self._levels
        levels[0].append(batch)
        self._group_rows += batch.num_rows
        k = 0
        while len(levels[k]) >= _JOIN_BATCHES:
            joined, levels[k] = _joined(levels[k]), []
            if k + 1 == len(levels):
                levels.append([])
            levels[k + 1].extend(joined)
            k += 1

    def _submit_group(self) -> None:
        group = [batch for level in reversed(self._levels) for batch in level]
        table = pa.Table.from_batches(group, schema=SCHEMA)
        self._levels, self._group_rows = [[]], 0
        self._pending.append(self._pool.submit(_encode_part, table, self._options))

    def _join(self, keep: int) -> None:
        """Write the encoded row groups in order, waiting until at most ``keep`` are being
        encoded (those done already are written at once)."""
        pending = self._pending
        while pending and (len(pending) > keep or pending[0].done()):
            self._writer.add(pending.popleft().result())   # an encoder's failure raises here

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self._pool is not None:
            # a batch larger than the room left in the row group is cut across groups
            at, rows = 0, batch.num_rows
            while at < rows:
                room = self.row_group_rows - self._group_rows
                part = batch if at == 0 and rows <= room else batch.slice(at, room)
                self._gather(part)
                at += part.num_rows
                if self._group_rows >= self.row_group_rows:
                    self._submit_group()
                    self._join(keep=self._encoders)
            self._join(keep=self._encoders)
        else:
            self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None and self.format == "arrow":
            flush()

    def close(self) -> None:
        if self._pool is not None:
            try:
                if self._group_rows or (not self._pending and self._writer.pos == 0):
                    self._submit_group()          # the last rows (an empty file: no rows)
                self._join(keep=0)
                self._writer.finish()
            finally:
                self._pending.clear()
                self._pool.shutdown(wait=True, cancel_futures=True)
                self._pool = None
            self._writer = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        flush = getattr(self.stream, "flush", None)
        if flush is not None:
            flush()


# -- Python API ----------------------------------------------------------------------------

def to_arrow(paths: Any, tmf: Any = None, *, all_records: bool = False,
             batch_rows: int = DEFAULT_BATCH_ROWS) -> "ArrowRun":
    """The WPP messages of ``paths`` (one .etl or several, merged by time as ``wpptrace fmt``
    merges them) as ``pyarrow.RecordBatch``es of ``SCHEMA``, in ProcessTrace order. ``tmf``
    as :func:`wpptrace.decoder.load_tmf` takes it; ``all_records``: the records that are not
    WPP messages too (status ``record``); ``batch_rows``: rows per batch, 1 or more (else
    ValueError, before anything is read). The result is an
    ``ArrowRun``: iterate it once; its ``counters`` and ``issues`` (damage skipped, with
    offsets; a file that cannot be read at all, left out) fill as it goes. When none of the
    files can be read, ``wpptrace fmt`` fails, and so does this: it raises the first one's
    ``Win32Error`` (the file named, the code fmt reports)."""
    run = ArrowRun(_paths(paths), load_tmf(tmf), all_records=all_records, batch_rows=batch_rows)
    run._raise_if_none_opened()
    return run


class ArrowRun(DecodingRun):
    """The batches of ``to_arrow`` (iterate once), with the decoder's ``counters`` and the
    files' ``issues`` (an Arrow table of ``ISSUES_SCHEMA``) once they are read. A file that
    cannot be read at all is left out, as ``wpptrace fmt`` leaves it out: one issue row, the
    offset the reader stopped at (null if none), the reason fmt gives."""

    def __init__(self, paths: list[str], tmfset, *, all_records: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS,
                 window: tuple[int | None, int | None] | None = None,
                 context: "_Context | None" = None) -> None:
        from .engine import FileSource, merge_sources
        from .wpp import FmtCounters
        from .wpp_rows import RowView

        if context is None:
            context = _Context(tmfset)
        self.builder = context.builder
        self.builder.batch_rows = batch_rows    # checked before any file is opened
        self.builder.all_records = all_records
        super().__init__(paths, context.decoder, skip_unreadable=True)
        self.decoder.counters = FmtCounters()
        self.builder._etls = _Strings()
        #: issues found opening the files (the header, the buffer index), before decoding
        for etl in self._files:
            etl.buffer_index()
        self.opening_issues = len(self.errors)
        view = RowView(context.tables)
        if window is not None:
            chunks = FileSource(self._files[0]).ordered(view, window=window)
        else:
            chunks = merge_sources([(FileSource(etl), view) for etl in self._files])
        self._start(self.builder.batches(chunks, view))

    @property
    def issues(self) -> pa.Table:
        """The problems so far (``errors``), each file's in file order."""
        return issues_table(in_file_order(self.errors))

    def read_all(self) -> pa.Table:
        """Every batch as one table."""
        return pa.Table.from_batches(list(self), schema=SCHEMA)


def in_file_order(issues: Iterable) -> list:
    """``DecodeIssue``s file by file (in the order their files first come), each file's by
    offset, as ``wpptrace fmt`` lists them: a run meets them in another order (the problems
    found opening a file, its buffer index's, come before those of its buffers' records)."""
    issues = list(issues)
    files: dict[str, int] = {}
    for issue in issues:
        files.setdefault(issue.file, len(files))
    return sorted(issues, key=lambda i: (files[i.file], -1 if i.offset is None else i.offset))


def issues_table(issues: Iterable) -> pa.Table:
    """An issues table (``ISSUES_SCHEMA``) from ``DecodeIssue``s or (etl, offset, message)."""
    rows = [(i.file, i.offset, i.message) if hasattr(i, "message") else tuple(i) for i in issues]
    return pa.table([_py_array([r[0] for r in rows], pa.string()),
                     _py_array([r[1] for r in rows], pa.int64()),
                     _py_array([r[2] for r in rows], pa.string())], schema=ISSUES_SCHEMA)


class _Context:
    """What one decoding run sets up for a TMF set and can hand to the next: the decoder (its
    resolved and compiled messages, the C renderer's programs), the message key table they are
    numbered by, and the Arrow builder (argument plans, label dictionaries)."""

    def __init__(self, tmfset) -> None:
        from .wpp import WppDecoder
        from .wpp_rows import RowTables

        self.tmfset = tmfset
        self.decoder = WppDecoder(tmfset, utc=True)
        self.tables = RowTables()
        self.builder = ArrowBuilder(self.decoder)


_LOCAL = threading.local()


def _context_for(tmfset) -> _Context:
    """This thread's context for ``tmfset``: the partitions a worker decodes one after the
    other set up their messages once."""
    context = getattr(_LOCAL, "context", None)
    if context is None or context.tmfset is not tmfset:
        context = _LOCAL.context = _Context(tmfset)
    return context


def decode_range(path: str, window: tuple[int | None, int | None] | None, tmfset, *,
                 all_records: bool = False) -> tuple[pa.Table, pa.Table]:
    """One partition of a fleet: the messages of ``path`` whose merge keys lie in ``window``
    (decoder.parallel's windows; None: the whole file), and the issues met reading them.
    Never raises for bad input: a file that cannot be read at all gives no rows and one issue
    row saying why; damage inside a file gives its intact records and an issue per damage.
    Successive calls in a thread with the same TMF set share its compiled messages."""
    try:
        run = ArrowRun([path], tmfset, all_records=all_records, window=window,
                       context=_context_for(tmfset))
    except Exception as exc:         # (an unreadable file is an issue of the run: not here)
        return SCHEMA.empty_table(), issues_table([(path, None, reason(exc))])
    try:
        table = pa.Table.from_batches(list(run), schema=SCHEMA)
    except Exception as exc:         # a defect, not the input's: still one issue, not a failed job
        run.close()
        _LOCAL.context = None        # its state may be half updated: the next call starts anew
        return SCHEMA.empty_table(), issues_table([(path, None, f"decoding failed: {reason(exc)}")])
    issues = run.errors
    if window is not None and window[0] is not None:
        # what opening the file found is the first window's to report, not every window's
        issues = issues[run.opening_issues:]
    return table, issues_table(in_file_order(issues))
