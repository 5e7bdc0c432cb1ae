"""Decoded WPP messages as Apache Arrow record batches (``pip install 'wpptrace[arrow]'``).

One row per message, in ProcessTrace order, with typed columns (``SCHEMA``, docs/analytics.md).
The batches are built from the formatting loop's chunks (``WppDecoder.rendered``: the engine's
compact rows and the C renderer's text). Chunks are collected (rows, text, buffers by
reference) until a batch is full, then turned into columns at once: the row fields through a
numpy view of the row tables, the per-message columns (GUID, component, function, file, line,
level...) as dictionary arrays over one small table per message key, the text column from the
renderer's text with the line ends cut out, and the typed arguments of every message whose
items are numbers, pointers, status codes, doubles, ANSI strings or counted strings read by
numpy for the whole batch (each string located after the ones before it, level by level).
Python decodes only what the C renderer leaves to it (the log-file header, format errors,
more distinct messages than the key table holds), non-ASCII strings, and the arguments of the
rarer item types (GUIDs, addresses, SIDs, NUL-terminated UTF-16), once per distinct argument
block as JSON Lines does.

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
import struct
import threading
import uuid
from array import array
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._hazmat import ETL, sizeof
from .messages import DecodingRun, _paths, load_tmf, trace_level
from wpptrace.tmf.itemtypes import _ansi, _utf16
from .wpp_rows import NO_TIME, NOT_MESSAGE, ROW_FIELDS, ROW_FORMAT, ROW_SIZE, TIME_OUT_OF_RANGE

__all__ = ["SCHEMA", "ARG_TYPE", "LABEL", "ISSUES_SCHEMA", "PORTABLE_SCHEMA", "portable",
           "PARQUET_OPTIONS",
           "ArrowBuilder", "ArrowFileWriter", "ArrowRun", "to_arrow", "decode_range",
           "issues_table", "DEFAULT_BATCH_ROWS"]

#: rows per record batch unless asked otherwise
DEFAULT_BATCH_ROWS = 1 << 16
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



#: numpy dtypes of the struct codes fixed-size items decode with
_NP_CODES = {"B": "<u1", "H": "<u2", "I": "<u4", "Q": "<u8", "b": "<i1", "h": "<i2", "i": "<i4",
             "q": "<i8", "d": "<f8", "f": "<f4"}


def _row_dtype() -> np.dtype:
    """The numpy view of a row (wpp_rows.ROW_FORMAT, declared once in wpp_rows.h)."""
    codes = [c for c in ROW_FORMAT.format.lstrip("<") if c.isalpha() and c != "x"]
    offsets = [struct.calcsize("<" + "".join(codes[:k])) for k in range(len(codes))]
    return np.dtype({"names": list(ROW_FIELDS), "offsets": offsets, "itemsize": ROW_SIZE,
                     "formats": [_NP_CODES[c] for c in codes]})


_ROW_DTYPE = _row_dtype()
#: a row as opaque bytes: numpy copies these much faster than a structured dtype
_ROW_BYTES = np.dtype(f"V{ROW_SIZE}")
_KIND_NAMES = {getattr(ETL, name): name[len("ETLRD_KIND_"):].lower()
               for name in dir(ETL) if name.startswith("ETLRD_KIND_") and name != "ETLRD_KIND_COUNT"}
_KINDS = pa.array([_KIND_NAMES.get(k, "unknown") for k in range(256)], pa.string())
_NO_NULLS = np.zeros(1, bool)
_HAS_GUID = ETL.ETLRD_HAS_GUID
_POINTER64, _POINTER32 = ETL.TRACE_MESSAGE_POINTER64, ETL.TRACE_MESSAGE_POINTER32
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


#: how numpy types an argument: its unsigned value, sign-extended from ``bits``, a double, a
#: float; or a string: NUL-terminated ANSI, USHORT-counted ANSI, USHORT-counted UTF-16
_UNSIGNED, _SIGNED, _DOUBLE, _FLOAT, _CSTR, _PSTR, _PWSTR = range(7)
_WIDTH_MASK = np.array([0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF, 0, 0, 0, _WIDE - 1], np.uint64)
_BYTE8 = np.arange(8, dtype=np.intp)


def _string_modes() -> dict:
    from wpptrace.tmf import itemtypes

    return {itemtypes._cstr_decoder: _CSTR, itemtypes._pstr_decoder: _PSTR,
            itemtypes._pwstr_decoder: _PWSTR}


def _vector_plan(formatter, ps: int, ids) -> list[tuple] | None:
    """How numpy reads a message's arguments at pointer size ``ps``: per argument (name id,
    type id, byte offset after the strings before it, width (0: a string), mode, sign bits,
    strings before it); None when an argument's typed value is one numpy cannot give (GUIDs,
    addresses, SIDs, UTF-16 strings ended by NUL...)."""
    from wpptrace.tmf.cprintf import spec_bits
    from wpptrace.tmf.render import _TYPED_NAMES

    if formatter is None or getattr(formatter, "_layout_error", None) is not None:
        return None
    try:
        _steps, args = formatter._typed_plan(ps)
    except Exception:
        return None
    strings = _string_modes()
    out, off, nvar = [], 0, 0
    for name, item, it, conv, a in args:
        mode = strings.get(getattr(it, "_decode", None))
        if mode is not None:
            if conv is not None:
                return None
            out.append((ids(name), ids(item), off, 0, mode, 0, nvar))
            nvar += 1
            continue
        size = it.fixed_size(ps)
        code = it.struct_code or ({4: "I", 8: "Q"}.get(ps) if size == ps else None)
        if size is None or code is None or code not in _NP_CODES or \
                np.dtype(_NP_CODES[code]).itemsize != size:
            return None
        mode, bits = _UNSIGNED, 0
        if code in "df":
            mode = _DOUBLE if code == "d" else _FLOAT
        elif code in "bhiq":
            mode, bits = _SIGNED, 8 * size
        if conv is not None:            # typed differently from the decoded value
            if it.name in _TYPED_NAMES or not it.raw or mode != _UNSIGNED:
                return None
            spec = formatter._spec_of(a.insert)
            if spec is None or spec.conversion not in "di":
                return None
            mode, bits = _SIGNED, spec_bits(spec, ps)
            if not 0 < bits <= 64:
                return None
        out.append((ids(name), ids(item), off, size, mode, bits, nvar))
        off += size
    return out


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
            self._array = pa.array(self.values, pa.string())
        return self._array


class _Label(_Strings):
    """The distinct values of a label column (its dictionary, no value twice, so Parquet's
    dictionary pages stay small) and the value id of each message key (-1: null)."""

    def __init__(self) -> None:
        super().__init__()
        self._key_ids = np.zeros(0, np.int32)

    def __call__(self, value: str | None) -> int:
        return -1 if value is None else super().__call__(value)

    def key_ids(self, per_key: list) -> np.ndarray:
        """Value ids by message key (``per_key``: the column's value of each key so far)."""
        known = len(self._key_ids)
        if known < len(per_key):
            more = np.array([self(v) for v in per_key[known:]], np.int32)
            self._key_ids = np.concatenate([self._key_ids, more])
        return self._key_ids


class _Plans:
    """The numpy argument plans of every (message key, pointer size) met so far, in flat
    arrays indexed by ``code = key * 2 + (pointer size == 8)``: ``start`` (-1: not planned yet,
    -2: Python decodes it), ``count``, ``size`` (the fixed-size arguments' bytes), ``nvar``
    (strings); per argument ``name``, ``type``, ``off``, ``width``, ``mode``, ``bits``,
    ``var`` (strings before it)."""

    FIELDS = ("name", "type", "off", "width", "mode", "bits", "var")

    def __init__(self) -> None:
        self.start = np.full(0, -1, np.int64)
        self.count = np.zeros(0, np.int64)
        self.size = np.zeros(0, np.int64)
        self.nvar = np.zeros(0, np.int64)
        self._flat: dict[str, list] = {f: [] for f in self.FIELDS}
        self.flat: dict[str, np.ndarray] = {}

    def ensure(self, codes: np.ndarray, entries, ids) -> None:
        top = int(codes.max()) + 1 if len(codes) else 0
        if top > len(self.start):
            grow = max(top, 2 * len(self.start), 64) - len(self.start)
            self.start = np.concatenate([self.start, np.full(grow, -1, np.int64)])
            self.count = np.concatenate([self.count, np.zeros(grow, np.int64)])
            self.size = np.concatenate([self.size, np.zeros(grow, np.int64)])
            self.nvar = np.concatenate([self.nvar, np.zeros(grow, np.int64)])
        todo = np.unique(codes[self.start[codes] == -1])
        if not len(todo):
            return
        flat = self._flat
        for code in todo.tolist():
            entry = entries[code >> 1]
            plan = None
            if entry.unknown is None:
                plan = _vector_plan(entry.formatter, 8 if code & 1 else 4, ids)
            if plan is None:
                self.start[code] = -2
                continue
            self.start[code] = len(flat["name"])
            self.count[code] = len(plan)
            self.size[code] = sum(p[3] for p in plan)
            self.nvar[code] = sum(p[4] >= _CSTR for p in plan)
            for field, values in zip(self.FIELDS, zip(*plan)) if plan else ():
                flat[field].extend(values)
        self.flat = {f: np.array(v, np.int64) for f, v in flat.items()}


class ArrowBuilder:
    """Record batches (``SCHEMA``) of a ``WppDecoder``'s run: ``batches(chunks, view)`` takes
    the engine's chunks (made with ``view``, a ``wpp_rows.RowView``) through the decoder's
    formatting loop. ``all_records``: rows for the records that are not WPP messages too;
    ``batch_rows``: rows per batch at most (batches end at chunk boundaries, so they are
    a little shorter); ``eager``: a batch as soon as a chunk is decoded (a live session)."""

    #: distinct argument blocks whose Python-decoded arguments are kept (one decode each)
    ARGS_MEMO = 1 << 16

    def __init__(self, decoder, *, all_records: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS, eager: bool = False) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        self.decoder = decoder
        self.all_records = all_records
        self.batch_rows = batch_rows
        self.eager = eager                # a batch per chunk (a live session is watched)
        self._names = _Strings()          # argument names and types
        self._etls = _Strings()           # .etl file names
        self._keys: dict[str, list] = {c: [] for c in _KEY_COLUMNS}
        self._key_arrays: dict[str, pa.Array] | None = None
        self._labels = {c: _Label() for c in _KEY_COLUMNS if SCHEMA.field(c).type == LABEL}
        self._plans = _Plans()
        self._memo: dict[tuple[int, int, bytes], list] = {}

    # -- per-message columns ---------------------------------------------------------------
    def _sync_keys(self) -> int:
        entries = self.decoder._key_entries
        keys = self._keys
        for entry in entries[len(keys["status"]):]:
            for column, value in zip(_KEY_COLUMNS, _entry_values(entry)):
                keys[column].append(value)
            self._key_arrays = None
        return len(keys["status"])

    def _key_array(self, column: str) -> pa.Array:
        """A per-message column's values by key id (the dictionary of a label column)."""
        if self._key_arrays is None:
            self._key_arrays = {c: pa.array(v, _value_type(c)) for c, v in self._keys.items()}
        return self._key_arrays[column]

    # -- batches ---------------------------------------------------------------------------
    def batches(self, chunks: Iterable, view) -> Iterator[pa.RecordBatch]:
        """The record batches of the engine's ``chunks`` (see the class docstring). Chunks are
        collected (their rows, text and buffers kept by reference) until a batch is full, then
        decoded into columns at once: numpy's work is per batch, not per chunk."""
        pending = _Pending()
        for text, ends, items, holes in self.decoder.rendered(chunks, view):
            n = len(items)
            if not n:
                continue
            if pending.rows and pending.rows + n > self.batch_rows:
                yield from self._sliced(self._build(pending))
                pending = _Pending()
            self._collect(pending, text, ends, items, holes, view)
            if self.eager:
                yield from self._sliced(self._build(pending))
                pending = _Pending()
        if pending.rows:
            yield from self._sliced(self._build(pending))

    def _sliced(self, batch: pa.RecordBatch | None) -> Iterator[pa.RecordBatch]:
        """A batch cut to ``batch_rows`` (one chunk may hold more rows than that)."""
        if batch is None or not batch.num_rows:
            return
        size = self.batch_rows
        if batch.num_rows <= size:
            yield batch
            return
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)

    def _collect(self, pending: "_Pending", text, ends, items, holes, view) -> None:
        """Keep one chunk for the batch: its rows, its text (copied: the renderer reuses its
        buffer) and references to the buffers its rows point into; the rows the renderer
        left to Python are decoded now, while the view still holds their buffers."""
        n = len(items)
        if isinstance(items, range):
            refs = np.arange(items.start, items.stop, dtype=np.uint64)
        elif isinstance(items, array) and items.itemsize == 8:     # the merge's row refs
            refs = np.frombuffer(items, np.uint64)
        else:
            refs = np.frombuffer(array("Q", items), np.uint64)
        slots = (refs >> np.uint64(32)).astype(np.intp)
        index = (refs & np.uint64(0xFFFFFFFF)).astype(np.intp)
        first = int(slots[0])
        if (slots == first).all():
            rows = np.frombuffer(view.blobs[first], _ROW_BYTES)[index]
            gid = np.full(n, pending.buffer(view, first), np.int64)
        else:                           # one gather from the slots' row tables joined
            present = np.unique(slots).tolist()
            base = np.zeros(present[-1] + 1, np.intp)
            gids = np.zeros(present[-1] + 1, np.int64)
            at = 0
            for s in present:
                base[s] = at
                at += len(view.blobs[s]) // ROW_SIZE
                gids[s] = pending.buffer(view, s)
            joined = np.frombuffer(b"".join([view.blobs[s] for s in present]), _ROW_BYTES)
            rows = joined[base[slots] + index]
            gid = gids[slots]
        decoder = self.decoder
        for row, _pos in holes:
            m = decoder._row_message(items[row], view)
            if m is not None:
                pending.special[pending.rows + row] = m
        pending.row_parts.append(rows)
        pending.gid_parts.append(gid)
        pending.end_parts.append(np.frombuffer(array("q", ends), np.int64) + pending.text_size)
        pending.texts.append(bytes(text))
        pending.text_size += len(text)
        pending.rows += n

    def _build(self, pending: "_Pending") -> pa.RecordBatch | None:
        """The record batch of the collected chunks (the rows kept only)."""
        rows = np.concatenate(pending.row_parts).view(_ROW_DTYPE)
        gid = np.concatenate(pending.gid_parts)
        ends = np.concatenate(pending.end_parts)
        body = b"".join(pending.texts)
        special = pending.special
        n = len(rows)
        key = rows["key"]
        starts = np.empty(n, np.int64)
        starts[0] = 0
        starts[1:] = ends[:-1]
        printed = ends > starts                  # rows the renderer printed (a line each)
        keep = printed.copy()
        is_special = np.zeros(n, bool)
        if special:
            is_special[list(special)] = True
            keep |= is_special
        if self.all_records:
            keep |= key == NOT_MESSAGE
        if not keep.any():
            return None
        nkeys = self._sync_keys()   # the renderer and Python may have added keys
        data = _BatchData(pending)

        # text: the renderer's lines (cut before their line ends below), Python's put in
        text_ok = printed | is_special

        # per-message columns through the key table; Python's rows (and other records)
        # appended after it
        kid = key.astype(np.int64)
        extra = keep & ((key >= nkeys) | is_special)
        extra_rows = np.flatnonzero(extra).tolist()
        extra_values: dict[str, list] = {c: [] for c in _KEY_COLUMNS}
        for j, r in enumerate(extra_rows):
            m = special.get(r)
            if m is not None:
                values = _message_values(m)
            else:                       # a record that is not a message (all_records)
                goff = int(rows["guid_offset"][r])
                raw = data.raw(int(gid[r]))[goff:goff + _GUID_SIZE] if goff else b""
                values = ("record", str(uuid.UUID(bytes_le=bytes(raw))) if len(raw) == _GUID_SIZE
                          else None, None, None, None, None, None, None, None, None)
            for column, value in zip(_KEY_COLUMNS, values):
                extra_values[column].append(value)
            kid[r] = nkeys + j
        kid[~keep] = 0
        indices = pa.array(kid.astype(np.int32))
        # a message logged without its GUID (component-id messages) has none in its row
        no_guid = ((rows["present"] & _HAS_GUID) == 0) & ~extra
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
                    pa.array(ids, mask=nulls) if nulls.any() else pa.array(ids), label.array())
                continue
            base = self._key_array(column) if nkeys else pa.array([], _value_type(column))
            if extra_rows:
                base = pa.concat_arrays([base, pa.array(extra_values[column],
                                                        _value_type(column))])
            cols[column] = base.take(indices) if len(base) else pa.nulls(n, kind)

        if len(body) >= (1 << 31) or (n and ends[-1] != len(body)):
            raise ValueError("the renderer's line ends do not match its text")
        offsets = np.zeros(n + 1, np.int32)
        offsets[1:] = ends
        text = pc.utf8_slice_codeunits(pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets), pa.py_buffer(body),
            None if text_ok.all() else pa.array(text_ok).buffers()[1],
            0 if text_ok.all() else int((~text_ok).sum())), 0, -1)
        if special:
            rows_of = sorted(special)
            mask = np.zeros(n, bool)
            mask[rows_of] = True
            text = pc.replace_with_mask(text, pa.array(mask),
                                        pa.array([special[r].text for r in rows_of], pa.string()))
        if any(m.error for m in special.values()):
            errs = np.full(n, None, object)
            for r, m in special.items():
                if m.error:
                    errs[r] = m.error
            error = pa.array(errs, pa.string())
        else:
            error = pa.nulls(n, pa.string())
        filetime, ts_valid = self._filetimes(rows, gid, data)
        ns_ok = ts_valid & (filetime >= _NS_LO) & (filetime <= _NS_HI)
        ns = np.where(ns_ok, filetime - _FILETIME_UNIX, 0) * 100
        args = self._args_array(self._args(rows, key, gid, printed & ~extra, special, data,
                                           nkeys))
        etl_ids = np.array([self._etls(s.name) for s in data.sources],
                           np.int64)[data.source_of[gid]]
        batch = pa.RecordBatch.from_arrays([
            pa.DictionaryArray.from_arrays(pa.array(etl_ids.astype(np.int32)),
                                           self._etls.array()),
            pa.array(ns, pa.timestamp("ns", tz="UTC"), mask=~ns_ok),
            pa.array(filetime, pa.int64(), mask=~ts_valid),
            pa.array(rows["cpu"]), pa.array(rows["process_id"]), pa.array(rows["thread_id"]),
            pa.array(rows["sequence"]),
            cols["status"], cols["guid"], pa.array(rows["number"]), cols["component"],
            cols["name"], cols["function"], cols["file"], cols["line"], cols["level"],
            cols["level_name"], cols["flags"], text, args, error,
            pa.DictionaryArray.from_arrays(pa.array(rows["kind"].astype(np.int32)), _KINDS),
            pa.array(rows["payload_size"]),
        ], schema=SCHEMA)
        if not keep.all():
            batch = batch.filter(pa.array(keep))
        return batch

    def _args_array(self, args: tuple) -> pa.Array:
        counts, name_id, type_id, ints, int_ok, floats, float_ok, str_len, str_ok, body = args
        total = len(name_id)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        str_offsets = np.zeros(total + 1, np.int64)
        np.cumsum(str_len, out=str_offsets[1:])
        if str_offsets[-1] != len(body) or len(body) >= (1 << 31):
            raise ValueError("argument strings do not add up")
        strs = pa.StringArray.from_buffers(
            total, pa.py_buffer(str_offsets.astype(np.int32)), pa.py_buffer(body),
            pa.array(str_ok).buffers()[1] if total else None, int(total - str_ok.sum()))
        table = self._names.array()
        struct = pa.StructArray.from_arrays([
            pa.DictionaryArray.from_arrays(pa.array(name_id.astype(np.int32)), table),
            pa.DictionaryArray.from_arrays(pa.array(type_id.astype(np.int32)), table),
            pa.array(ints, pa.int64(), mask=~int_ok),
            pa.array(floats, pa.float64(), mask=~float_ok),
            strs,
        ], fields=list(ARG_TYPE))
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), struct,
                                        type=pa.list_(ARG_TYPE))

    @staticmethod
    def _filetimes(rows, gid, data) -> tuple[np.ndarray, np.ndarray]:
        """FILETIME of each row (exact integer arithmetic, as TimeConverter) and whether it
        has one."""
        raw = rows["timestamp"]
        milli = rows["milli"]
        valid = milli != NO_TIME
        out = np.zeros(len(raw), np.int64)
        clocks = [s.clock for s in data.sources]
        src = data.source_of[gid]
        many = len(clocks) > 1
        for k, clock in enumerate(clocks):
            m = src == k if many else slice(None)
            start, origin, num, den = clock.linear
            r = raw[m]
            with np.errstate(over="ignore"):
                if num == den:
                    out[m] = r + np.int64(start - origin)
                else:
                    q, rem = np.divmod(r - np.int64(origin), np.int64(den))
                    out[m] = (np.int64(start) + q * np.int64(num) +
                              rem * np.int64(num) // np.int64(den))
        far = np.flatnonzero(valid & (milli == TIME_OUT_OF_RANGE))
        for r in far.tolist():            # beyond what the row clock computes: Python's ints
            ft = clocks[int(src[r])].to_filetime(int(raw[r]))
            if -(1 << 63) <= ft < (1 << 63):
                out[r] = ft
            else:
                valid[r] = False
        return out, valid

    def _args(self, rows, key, slots, known, special, data, nkeys) -> tuple:
        """The ``args`` column's parts: per row the argument count; per argument the name and
        type ids, int and float values (with their validity), the string's length (and
        validity), and the strings' UTF-8 bytes. Numpy reads the arguments of every message
        whose items it knows (numbers, pointers, ANSI and counted strings) for the whole chunk
        at once; Python decodes the others' (memoized per argument block) and those of its
        own rows."""
        n = len(key)
        flags = rows["flags"].astype(np.int64)
        src_ps = np.array([s.pointer_size for s in data.sources], np.int64)[data.source_of]
        ps8 = np.where(flags & _POINTER64, True, np.where(flags & _POINTER32, False,
                                                          src_ps[slots] == 8))
        known = known & (key < nkeys)
        plans = self._plans
        counts = np.zeros(n, np.int64)
        python_rows: dict[int, list] = {r: list(m.args or ()) for r, m in special.items()}
        code = key.astype(np.int64) * 2 + ps8
        vec = np.zeros(n, bool)
        entries = self.decoder._key_entries
        if known.any():
            plans.ensure(code[known], entries, self._names)
            safe = np.where(known, code, 0)
            vec = known & (plans.start[safe] >= 0) & (rows["payload_size"] >= plans.size[safe])
        while True:
            pairs = self._pairs(np.flatnonzero(vec), code, rows, slots, counts, data)
            if pairs.bad is None:
                break
            vec[pairs.bad] = False        # the C renderer printed them: not expected here
        for r in np.flatnonzero(known & ~vec).tolist():
            entry = entries[int(key[r])]
            if entry.unknown is None and entry.formatter is not None:
                python_rows[r] = self._python_args(entry, int(key[r]), 8 if ps8[r] else 4,
                                                   rows, r, slots, data)
        for r, values in python_rows.items():
            counts[r] = len(values)
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        total = int(offsets[-1])
        name_id = np.zeros(total, np.int64)
        type_id = np.zeros(total, np.int64)
        ints = np.zeros(total, np.int64)
        int_ok = np.zeros(total, bool)
        floats = np.zeros(total, np.float64)
        float_ok = np.zeros(total, bool)
        str_len = np.zeros(total, np.int64)
        str_ok = np.zeros(total, bool)
        sources: list[bytes] = []                 # string bytes: numpy's, then Python's
        spans: list[tuple] = []                   # (child positions, offsets, lengths)
        py_pos: list[int] = []
        py_bytes: list[bytes] = []
        if pairs.count:
            flat = plans.flat
            pidx, at = pairs.pidx, pairs.at
            pos = offsets[pairs.row] + pairs.within
            name_id[pos] = flat["name"][pidx]
            type_id[pos] = flat["type"][pidx]
            mode = flat["mode"][pidx]
            fixed = mode < _CSTR
            if fixed.any():
                fpos, fat, fmode = pos[fixed], at[fixed], mode[fixed]
                raw = data.read8(pairs.slot[fixed], fat)
                raw &= _WIDTH_MASK[flat["width"][pidx[fixed]]]
                is_int = fmode <= _SIGNED
                bits = flat["bits"][pidx[fixed]]
                shift = np.where(fmode == _SIGNED, 64 - bits, 0).astype(np.uint64)
                ints[fpos[is_int]] = ((raw[is_int] << shift[is_int]).view(np.int64)
                                      >> shift[is_int].astype(np.int64))
                int_ok[fpos[is_int]] = True
                dbl = fmode == _DOUBLE
                floats[fpos[dbl]] = raw[dbl].view(np.float64)
                flt = fmode == _FLOAT
                if flt.any():
                    floats[fpos[flt]] = (raw[flt].astype(np.uint32).view(np.float32)
                                         .astype(np.float64))
                float_ok[fpos[~is_int]] = True
            var = ~fixed
            if var.any():
                vpos, vslot = pos[var], pairs.slot[var]
                vstart, vlen, vmode = pairs.str_start[var], pairs.str_len[var], mode[var]
                body = data.gather(vslot, vstart, vlen)
                boff = np.zeros(len(vlen), np.int64)
                np.cumsum(vlen[:-1], out=boff[1:])
                arr = np.frombuffer(body, np.uint8)
                # ASCII needs no decoding; UTF-16 that is ASCII is its even bytes
                high = np.zeros(len(vlen), bool)
                if len(arr):
                    nonempty = vlen > 0
                    top = np.zeros(len(vlen), np.uint8)
                    top[nonempty] = np.maximum.reduceat(arr, boff[nonempty])
                    high = top >= 0x80
                wide = vmode == _PWSTR
                if wide.any():
                    high |= wide & ((vlen & 1) == 1)
                    idx = np.flatnonzero(wide & ~high)
                    if len(idx):
                        odd_high = self._utf16_not_ascii(arr, boff[idx], vlen[idx])
                        high[idx[odd_high]] = True
                simple = ~high & ~wide
                sources.append(body)
                spans.append((vpos[simple], boff[simple], vlen[simple]))
                narrow = ~high & wide
                if narrow.any():
                    ascii_bytes, aoff, alen = self._even_bytes(arr, boff[narrow], vlen[narrow])
                    base = sum(len(s) for s in sources)
                    sources.append(ascii_bytes)
                    spans.append((vpos[narrow], aoff + base, alen))
                for j in np.flatnonzero(high).tolist():
                    raw_text = body[boff[j]:boff[j] + vlen[j]]
                    text = _utf16(raw_text) if vmode[j] == _PWSTR else _ansi(raw_text)
                    py_pos.append(int(vpos[j]))
                    py_bytes.append(text.encode("utf-8", "surrogatepass"))
        names = self._names
        for r, values in python_rows.items():
            at0 = int(offsets[r])
            for j, (name, item, value) in enumerate(values):
                i, f, s = _arg_value(value)
                p = at0 + j
                name_id[p] = names(name)
                type_id[p] = names(item)
                if i is not None:
                    ints[p] = i
                    int_ok[p] = True
                elif f is not None:
                    floats[p] = f
                    float_ok[p] = True
                elif s is not None:
                    py_pos.append(p)
                    py_bytes.append(s.encode("utf-8", "surrogatepass"))
        if py_pos:
            base = sum(len(s) for s in sources)
            lens = np.fromiter(map(len, py_bytes), np.int64, len(py_bytes))
            offs = np.zeros(len(lens), np.int64)
            np.cumsum(lens[:-1], out=offs[1:])
            sources.append(b"".join(py_bytes))
            spans.append((np.array(py_pos, np.int64), offs + base, lens))
        str_body = b""
        if spans:
            spos = np.concatenate([s[0] for s in spans])
            soff = np.concatenate([s[1] for s in spans])
            slen = np.concatenate([s[2] for s in spans])
            order = np.argsort(spos, kind="stable")
            spos, soff, slen = spos[order], soff[order], slen[order]
            str_len[spos] = slen
            str_ok[spos] = True
            src = np.frombuffer(b"".join(sources), np.uint8)
            str_body = src[_ranges(soff, slen)].tobytes()
        return (counts, name_id, type_id, ints, int_ok, floats, float_ok, str_len, str_ok,
                str_body)

    @staticmethod
    def _utf16_not_ascii(arr, off, length) -> np.ndarray:
        """Which UTF-16 strings hold a code unit that is not ASCII (their high bytes)."""
        idx = _ranges(off + 1, length // 2, step=2)
        if not len(idx):
            return np.zeros(len(off), bool)
        nonempty = length > 1
        top = np.zeros(len(off), np.uint8)
        firsts = np.zeros(len(off), np.int64)
        np.cumsum((length // 2)[:-1], out=firsts[1:])
        top[nonempty] = np.maximum.reduceat(arr[idx], firsts[nonempty])
        return top != 0

    @staticmethod
    def _even_bytes(arr, off, length) -> tuple[bytes, np.ndarray, np.ndarray]:
        """ASCII UTF-16 strings as their low bytes: (bytes, offsets, lengths)."""
        half = length // 2
        idx = _ranges(off, half, step=2)
        offs = np.zeros(len(half), np.int64)
        np.cumsum(half[:-1], out=offs[1:])
        return arr[idx].tobytes(), offs, half

    def _pairs(self, rows_v, code, rows, slots, counts, data) -> "_Pairs":
        """The (row, argument) pairs of the rows numpy decodes, with each argument's byte
        position (strings located level by level: the k-th string of a row starts after the
        k - 1 before it); ``bad``: rows whose strings or numbers run past their data."""
        plans = self._plans
        p = _Pairs()
        counts[:] = 0
        if not len(rows_v):
            return p
        cnt = plans.count[code[rows_v]]
        counts[rows_v] = cnt
        p.row = np.repeat(rows_v, cnt)
        rv = np.repeat(np.arange(len(rows_v)), cnt)
        p.within = np.arange(len(p.row)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
        p.pidx = np.repeat(plans.start[code[rows_v]], cnt) + p.within
        p.count = len(p.row)
        flat = plans.flat
        begin = rows["payload_offset"][rows_v].astype(np.int64)
        end = begin + rows["payload_size"][rows_v]
        p.slot = slots[p.row]
        off = flat["off"][p.pidx]
        mode = flat["mode"][p.pidx]
        var = flat["var"][p.pidx]
        levels = int(plans.nvar[code[rows_v]].max())
        extra = np.zeros((len(rows_v), levels + 1), np.int64)   # string bytes before each level
        p.str_start = np.zeros(p.count, np.int64)
        p.str_len = np.zeros(p.count, np.int64)
        bad = np.zeros(len(rows_v), bool)
        is_var = mode >= _CSTR
        for level in range(levels):
            extra[:, level + 1] = extra[:, level]
            sel = np.flatnonzero(is_var & (var == level))
            if not len(sel):
                continue
            ri = rv[sel]
            at = begin[ri] + off[sel] + extra[ri, level]
            stop = end[ri]
            m = mode[sel]
            length = np.zeros(len(sel), np.int64)
            start = at.copy()
            ok = at <= stop
            cstr = m == _CSTR
            if cstr.any():
                nul = data.next_nul(p.slot[sel][cstr], at[cstr], stop[cstr])
                length[cstr] = nul - at[cstr]
                ok[cstr] &= nul < stop[cstr]
            counted = ~cstr
            if counted.any():
                n16 = data.read8(p.slot[sel][counted], at[counted]) & np.uint64(0xFFFF)
                length[counted] = n16.astype(np.int64)
                start[counted] = at[counted] + 2
                ok[counted] &= at[counted] + 2 + length[counted] <= stop[counted]
            bad[ri[~ok]] = True
            consumed = np.where(cstr, length + 1, length + 2)
            extra[ri, level + 1] += np.where(ok, consumed, 0)
            p.str_start[sel] = start
            p.str_len[sel] = np.where(ok, length, 0)
        p.at = begin[rv] + off + extra[rv, var]
        width = flat["width"][p.pidx]
        over = ~is_var & (p.at + width > end[rv])
        bad[rv[over]] = True
        if bad.any():
            p.bad = rows_v[bad]
        return p

    def _python_args(self, entry, k: int, ps: int, rows, r: int, slots, buffers) -> list:
        poff, plen = int(rows["payload_offset"][r]), int(rows["payload_size"][r])
        data = bytes(buffers.raw(int(slots[r]))[poff:poff + plen])
        memo = self._memo
        values = memo.get((k, ps, data))
        if values is None:
            try:
                values = entry.formatter.decode_args(data, ps)
            except Exception:
                values = []             # its text was printed; the arguments are unreadable
            if len(memo) >= self.ARGS_MEMO:
                memo.clear()
            memo[(k, ps, data)] = values
        return values


class _Pairs:
    """(row, argument) pairs of a chunk (see ``ArrowBuilder._pairs``)."""

    count = 0
    bad = None
    row = within = pidx = slot = at = str_start = str_len = None


class _Pending:
    """The chunks collected for one batch: their rows, buffer ids, text and line ends, the
    rows Python decoded, and the buffers (data, source) the rows point into."""

    def __init__(self) -> None:
        self.rows = 0
        self.row_parts: list[np.ndarray] = []
        self.gid_parts: list[np.ndarray] = []
        self.end_parts: list[np.ndarray] = []
        self.texts: list[bytes] = []
        self.text_size = 0
        self.special: dict[int, Any] = {}
        self.datas: list[bytes] = []
        self.sources: list = []
        self._ids: dict[int, int] = {}

    def buffer(self, view, slot: int) -> int:
        """The id of the buffer a slot holds now (its bytes are kept, so the id is stable)."""
        data = view.datas[slot]
        g = self._ids.get(id(data))
        if g is None:
            g = self._ids[id(data)] = len(self.datas)
            self.datas.append(data)
            self.sources.append(view.sources[slot])
        return g


class _BatchData:
    """A batch's buffers as one numpy array (each padded, so an 8-byte read never runs
    off its end); positions are given per buffer id."""

    def __init__(self, pending: _Pending) -> None:
        self.datas = pending.datas
        sources: list = []
        index: dict[int, int] = {}
        of = []
        for source in pending.sources:
            k = index.get(id(source))
            if k is None:
                k = index[id(source)] = len(sources)
                sources.append(source)
            of.append(k)
        self.sources = sources
        self.source_of = np.array(of, np.int64)     # buffer id -> source number
        sizes = np.array([len(d) + 8 for d in self.datas], np.int64)
        self.base = np.zeros(len(sizes), np.int64)
        np.cumsum(sizes[:-1], out=self.base[1:])
        pad = bytes(8)
        self.big = np.frombuffer(b"".join(x for d in self.datas for x in (d, pad)), np.uint8)

    def raw(self, gid: int) -> bytes:
        return self.datas[gid]

    def read8(self, gids: np.ndarray, at: np.ndarray) -> np.ndarray:
        """The 8 bytes at each position, as little-endian uint64."""
        pos = (self.base[gids] + at).astype(np.intp)
        return self.big[pos[:, None] + _BYTE8].view("<u8").ravel()

    def next_nul(self, gids: np.ndarray, at: np.ndarray, stop: np.ndarray) -> np.ndarray:
        """The position of the first NUL at or after each position and before ``stop`` (in
        the buffer's coordinates; ``stop`` when there is none). Strings are short: every
        unfinished one moves one byte per step (each buffer's padding ends the scan)."""
        base = self.base[gids]
        pos = (base + at).astype(np.intp)
        end = (base + np.maximum(stop, at)).astype(np.intp)
        big = self.big
        live = np.flatnonzero(pos < end)
        while len(live):
            p = pos[live]
            found = big[p] == 0
            go = live[~found]
            pos[go] += 1
            live = go[pos[go] < end[go]]
        return pos - base

    def gather(self, gids: np.ndarray, start: np.ndarray, length: np.ndarray) -> bytes:
        """The byte ranges, one after the other."""
        if not len(gids):
            return b""
        return self.big[_ranges(self.base[gids] + start, length)].tobytes()


def _ranges(start: np.ndarray, length: np.ndarray, step: int = 1) -> np.ndarray:
    """The indexes start[i], start[i] + step, ... (length[i] of them) for each i, in order."""
    length = np.asarray(length, np.int64)
    total = int(length.sum())
    if not total:
        return np.zeros(0, np.intp)
    firsts = np.cumsum(length) - length
    within = np.arange(total, dtype=np.int64) - np.repeat(firsts, length)
    return (np.repeat(np.asarray(start, np.int64), length) + within * step).astype(np.intp)


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

#: Parquet keeps min/max statistics of these (what readers prune row groups by; those of the
#: text and argument columns would cost more than they save)
_STATISTICS_COLUMNS = ("timestamp", "filetime", "cpu", "pid", "tid", "sequence", "number",
                       "line", "level", "payload_size")

#: the Parquet writer options ``fmt -f parquet`` uses; pass them to other writers too
#: (``dataframe.to_parquet(path, **PARQUET_OPTIONS)``): without them pyarrow tries a dictionary
#: and keeps min/max statistics for every column, the unique texts included
PARQUET_OPTIONS = {"compression": "zstd", "use_dictionary": list(_DICTIONARY_COLUMNS),
                   "write_statistics": list(_STATISTICS_COLUMNS)}


class ArrowFileWriter:
    """Record batches into a binary stream as Parquet (``format="parquet"``, zstd) or an
    Arrow IPC stream (``format="arrow"``); ``close()`` writes the Parquet footer / the
    stream's end. Parquet is encoded by a thread of its own (pyarrow releases the GIL while
    it encodes and compresses), a batch or two behind the decoding, so the two overlap."""

    QUEUE = 2

    def __init__(self, stream, format: str = "parquet", *, compression: str = "zstd") -> None:
        self._thread = None
        if format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(stream, SCHEMA,
                                            **{**PARQUET_OPTIONS, "compression": compression})
            import queue
            import threading

            self._queue: "queue.Queue" = queue.Queue(self.QUEUE)
            self._failure: BaseException | None = None
            self._thread = threading.Thread(target=self._encode, name="wpptrace-parquet",
                                            daemon=True)
            self._thread.start()
        elif format == "arrow":
            self._writer = pa.ipc.new_stream(stream, SCHEMA)
        else:
            raise ValueError(f"format {format!r}: expected parquet or arrow")
        self.format = format
        self.stream = stream
        self.rows = 0

    def _encode(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is None:
                return
            if self._failure is None:
                try:
                    self._writer.write_batch(batch, row_group_size=max(batch.num_rows, 1 << 17))
                except BaseException as exc:     # raised in the caller's thread
                    self._failure = exc

    def _check(self) -> None:
        if self._thread is not None and self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self._thread is not None:
            self._check()
            self._queue.put(batch)
        else:
            self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None and self.format == "arrow":
            flush()

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._thread = None
            if self._failure is not None:
                self._writer = None
                failure, self._failure = self._failure, None
                raise failure
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
    WPP messages too (status ``record``); ``batch_rows``: rows per batch. The result is an
    ``ArrowRun``: iterate it once; its ``counters`` and ``issues`` (damage skipped, with
    offsets) fill as it goes."""
    return ArrowRun(_paths(paths), load_tmf(tmf), all_records=all_records,
                    batch_rows=batch_rows)


class ArrowRun(DecodingRun):
    """The batches of ``to_arrow`` (iterate once), with the decoder's ``counters`` and the
    files' ``issues`` (an Arrow table of ``ISSUES_SCHEMA``) once they are read."""

    def __init__(self, paths: list[str], tmfset, *, all_records: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS,
                 window: tuple[int | None, int | None] | None = None,
                 context: "_Context | None" = None) -> None:
        from .engine import FileSource, merge_sources
        from .wpp import FmtCounters
        from .wpp_rows import RowView

        if context is None:
            context = _Context(tmfset)
        super().__init__(paths, context.decoder)
        self.decoder.counters = FmtCounters()
        self.builder = context.builder
        self.builder.all_records = all_records
        self.builder.batch_rows = batch_rows
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
        return issues_table(self.errors)

    def read_all(self) -> pa.Table:
        """Every batch as one table."""
        return pa.Table.from_batches(list(self), schema=SCHEMA)


def issues_table(issues: Iterable) -> pa.Table:
    """An issues table (``ISSUES_SCHEMA``) from ``DecodeIssue``s or (etl, offset, message)."""
    rows = [(i.file, i.offset, i.message) if hasattr(i, "message") else tuple(i) for i in issues]
    return pa.table([pa.array([r[0] for r in rows], pa.string()),
                     pa.array([r[1] for r in rows], pa.int64()),
                     pa.array([r[2] for r in rows], pa.string())], schema=ISSUES_SCHEMA)


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
    except Exception as exc:
        return SCHEMA.empty_table(), issues_table([(path, None, _reason(exc))])
    try:
        table = pa.Table.from_batches(list(run), schema=SCHEMA)
    except Exception as exc:         # a defect, not the input's: still one issue, not a failed job
        run.close()
        _LOCAL.context = None        # its state may be half updated: the next call starts anew
        return SCHEMA.empty_table(), issues_table([(path, None, f"decoding failed: {_reason(exc)}")])
    issues = run.issues
    if window is not None and window[0] is not None:
        # what opening the file found is the first window's to report, not every window's
        issues = issues.slice(run.opening_issues)
    return table, issues


def _reason(exc: BaseException) -> str:
    name = getattr(exc, "name", None)
    text = getattr(exc, "strerror", None)
    if name and text:
        return f"{text.rstrip('.')} ({name})" if name not in text else text
    return str(exc) or type(exc).__name__
