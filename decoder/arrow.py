"""Decoded WPP messages as Apache Arrow record batches (``pip install 'wpptrace[arrow]'``).

One row per message, in ProcessTrace order, with typed columns (``SCHEMA``, docs/analytics.md).
The batches are built from the formatting loop's chunks (``WppDecoder.rendered``: the engine's
compact rows and the C renderer's text), column by column: the row fields come from the row
table through one numpy view per buffer, the per-message columns (GUID, component, function,
file, line, level...) are taken from one small table per message key, the text column is the
renderer's buffer with the line ends cut out, and the typed arguments of a message whose
arguments all have a fixed size are read with numpy for every row of that message at once.
Python decodes only what the C renderer leaves to it (the log-file header, format errors,
more distinct messages than the key table holds) and the arguments of messages with strings
or other variable-size items (once per distinct argument block, as JSON Lines does).

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
import uuid
from typing import Any, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ._hazmat import ETL
from .messages import _paths, load_tmf, trace_level
from .wpp_rows import NO_TIME, NOT_MESSAGE, ROW_FIELDS, ROW_FORMAT, ROW_SIZE, TIME_OUT_OF_RANGE

__all__ = ["SCHEMA", "ARG_TYPE", "ISSUES_SCHEMA", "ArrowBuilder", "ArrowFileWriter", "to_arrow",
           "decode_range", "DEFAULT_BATCH_ROWS"]

#: rows per record batch unless asked otherwise
DEFAULT_BATCH_ROWS = 1 << 16

ARG_TYPE = pa.struct([("name", pa.string()), ("type", pa.string()), ("int", pa.int64()),
                      ("float", pa.float64()), ("str", pa.string())])

#: one row per message (docs/analytics.md describes each column)
SCHEMA = pa.schema([
    ("etl", pa.string()),                      # the .etl file the record was read from
    ("timestamp", pa.timestamp("ns", tz="UTC")),
    ("filetime", pa.int64()),                  # the same instant as a FILETIME (100 ns ticks)
    ("cpu", pa.uint32()),
    ("pid", pa.uint32()),
    ("tid", pa.uint32()),
    ("sequence", pa.uint32()),
    ("status", pa.string()),                   # ok | unknown | format-error | header | record
    ("guid", pa.string()),                     # message GUID (event GUID of other records)
    ("number", pa.uint16()),                   # message number (event id of other records)
    ("component", pa.string()),                # prefix %1
    ("name", pa.string()),                     # prefix %2
    ("function", pa.string()),
    ("file", pa.string()),
    ("line", pa.int32()),
    ("level", pa.uint8()),                     # TRACE_LEVEL_* the TMF's LEVEL= names
    ("level_name", pa.string()),               # LEVEL= as written
    ("flags", pa.string()),                    # FLAGS= as written
    ("text", pa.string()),                     # the message text, without the prefix
    ("args", pa.list_(ARG_TYPE)),
    ("error", pa.string()),                    # why a format-error message failed
    ("kind", pa.string()),                     # record kind (message, system, event...)
    ("payload_size", pa.uint32()),
])

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
_KIND_NAMES = {getattr(ETL, name): name[len("ETLRD_KIND_"):].lower()
               for name in dir(ETL) if name.startswith("ETLRD_KIND_") and name != "ETLRD_KIND_COUNT"}
_KINDS = pa.array([_KIND_NAMES.get(k, "unknown") for k in range(256)], pa.string())
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


#: how numpy types an argument: its unsigned value, sign-extended from ``bits``, a double, a float
_UNSIGNED, _SIGNED, _DOUBLE, _FLOAT = 0, 1, 2, 3
_WIDTH_MASK = np.array([0, 0xFF, 0xFFFF, 0, 0xFFFFFFFF, 0, 0, 0, _WIDE - 1], np.uint64)
_BYTE8 = np.arange(8, dtype=np.intp)


def _vector_plan(formatter, ps: int, ids) -> list[tuple] | None:
    """How numpy reads a message's arguments at pointer size ``ps``: per argument (name id,
    type id, byte offset, width, mode, sign bits); None when an argument has no fixed size or
    a typed value numpy cannot give (GUIDs, addresses, strings...)."""
    from wpptrace.tmf.cprintf import spec_bits
    from wpptrace.tmf.render import _TYPED_NAMES

    if formatter is None or getattr(formatter, "_layout_error", None) is not None:
        return None
    try:
        _steps, args = formatter._typed_plan(ps)
    except Exception:
        return None
    out, off = [], 0
    for name, item, it, conv, a in args:
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
        out.append((ids(name), ids(item), off, size, mode, bits))
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


class _Plans:
    """The numpy argument plans of every (message key, pointer size) met so far, in flat
    arrays indexed by ``code = key * 2 + (pointer size == 8)``: ``start`` (-1: not planned yet,
    -2: Python decodes it), ``count``, ``size``; per argument ``name``, ``type``, ``off``,
    ``width``, ``mode``, ``bits``."""

    FIELDS = ("name", "type", "off", "width", "mode", "bits")

    def __init__(self) -> None:
        self.start = np.full(0, -1, np.int64)
        self.count = np.zeros(0, np.int64)
        self.size = np.zeros(0, np.int64)
        self._flat: dict[str, list] = {f: [] for f in self.FIELDS}
        self.flat: dict[str, np.ndarray] = {}

    def ensure(self, codes: np.ndarray, entries, ids) -> None:
        top = int(codes.max()) + 1 if len(codes) else 0
        if top > len(self.start):
            grow = max(top, 2 * len(self.start), 64) - len(self.start)
            self.start = np.concatenate([self.start, np.full(grow, -1, np.int64)])
            self.count = np.concatenate([self.count, np.zeros(grow, np.int64)])
            self.size = np.concatenate([self.size, np.zeros(grow, np.int64)])
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
            for field, values in zip(self.FIELDS, zip(*plan)) if plan else ():
                flat[field].extend(values)
        self.flat = {f: np.array(v, np.int64) for f, v in flat.items()}


class ArrowBuilder:
    """Record batches (``SCHEMA``) of a ``WppDecoder``'s run: ``batches(chunks, view)`` takes
    the engine's chunks (made with ``view``, a ``wpp_rows.RowView``) through the decoder's
    formatting loop. ``all_records``: rows for the records that are not WPP messages too;
    ``batch_rows``: rows per batch at most (batches end at chunk boundaries, so they are
    a little shorter)."""

    #: distinct argument blocks whose Python-decoded arguments are kept (one decode each)
    ARGS_MEMO = 1 << 16

    def __init__(self, decoder, *, all_records: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS) -> None:
        if batch_rows < 1:
            raise ValueError(f"batch_rows must be at least 1, not {batch_rows}")
        self.decoder = decoder
        self.all_records = all_records
        self.batch_rows = batch_rows
        self._names = _Strings()          # argument names and types
        self._etls = _Strings()           # .etl file names
        self._keys: dict[str, list] = {c: [] for c in _KEY_COLUMNS}
        self._key_arrays: dict[str, pa.Array] | None = None
        self._plans = _Plans()
        self._memo: dict[tuple[int, int, bytes], list] = {}
        self._extras: dict[str, list] = {c: [] for c in _KEY_COLUMNS}   # Python's rows' values

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
        if self._key_arrays is None:
            self._key_arrays = {c: pa.array(v, SCHEMA.field(c).type) for c, v in self._keys.items()}
        return self._key_arrays[column]

    # -- batches ---------------------------------------------------------------------------
    def batches(self, chunks: Iterable, view) -> Iterator[pa.RecordBatch]:
        """The record batches of the engine's ``chunks`` (see the class docstring)."""
        pending: list[dict] = []
        rows = 0
        for text, ends, items, holes in self.decoder.rendered(chunks, view):
            part = self._chunk(text, ends, items, holes, view)
            if part is None or not part["n"]:
                continue
            if pending and rows + part["n"] > self.batch_rows:
                yield from self._sliced(self._batch(pending))
                pending, rows = [], 0
            pending.append(part)
            rows += part["n"]
        if pending:
            yield from self._sliced(self._batch(pending))

    def _sliced(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """A batch cut to ``batch_rows`` (one chunk may hold more rows than that)."""
        size = self.batch_rows
        if batch.num_rows <= size:
            yield batch
            return
        for start in range(0, batch.num_rows, size):
            yield batch.slice(start, size)

    def _chunk(self, text, ends, items, holes, view) -> dict | None:
        """One chunk's columns as numpy arrays (the rows kept only)."""
        n = len(items)
        if not n:
            return None
        decoder = self.decoder
        refs = np.asarray(items, dtype=np.uint64) if not isinstance(items, range) else \
            np.arange(items.start, items.stop, dtype=np.uint64)
        slots = (refs >> np.uint64(32)).astype(np.intp)
        index = (refs & np.uint64(0xFFFFFFFF)).astype(np.intp)
        present_slots = np.unique(slots).tolist()
        if len(present_slots) == 1:
            rows = np.frombuffer(view.blobs[present_slots[0]], _ROW_DTYPE)[index]
        else:
            rows = np.empty(n, _ROW_DTYPE)
            for s in present_slots:
                m = slots == s
                rows[m] = np.frombuffer(view.blobs[s], _ROW_DTYPE)[index[m]]
        key = rows["key"]
        ends_np = np.asarray(ends, dtype=np.int64)
        starts = np.empty(n, np.int64)
        starts[0] = 0
        starts[1:] = ends_np[:-1]
        printed = ends_np > starts                  # rows the renderer printed (a line each)

        # rows Python makes: holes (header, format errors, overflowed keys)
        special: dict[int, Any] = {}
        for row, _pos in holes:
            m = decoder._row_message(items[row], view)
            if m is not None:
                special[row] = m
        keep = printed.copy()
        if special:
            keep[list(special)] = True
        not_message = key == NOT_MESSAGE
        if self.all_records:
            keep |= not_message
        nkeys = self._sync_keys()   # the renderer and Python may have added keys

        # text: the renderer's lines without their line ends, Python's at their places
        data = np.frombuffer(text, np.uint8) if len(text) else np.zeros(0, np.uint8)
        lens = np.where(printed, ends_np - starts - 1, 0)
        body = np.delete(data, ends_np[printed] - 1).tobytes() if printed.any() else b""
        text_ok = printed.copy()
        if special:
            removed_before = np.cumsum(printed) - printed
            pieces, at = [], 0
            for r in sorted(special):
                p = int(starts[r] - removed_before[r])
                line = special[r].text.encode("utf-8", "surrogatepass")
                pieces += (body[at:p], line)
                at = p
                lens[r] = len(line)
                text_ok[r] = True
            pieces.append(body[at:])
            body = b"".join(pieces)

        # per-message columns: key ids, Python's rows as extras (negative ids)
        kid = key.astype(np.int64)
        extras = self._extras
        extra = np.zeros(n, bool)
        for r in np.flatnonzero(keep & ((key >= nkeys) | np.isin(np.arange(n), list(special)))
                                ).tolist():
            m = special.get(r)
            if m is not None:
                values = _message_values(m)
            else:                       # a record that is not a message (all_records)
                goff = int(rows["guid_offset"][r])
                raw = bytes(view.datas[int(slots[r])][goff:goff + 16]) if goff else b""
                values = ("record", str(uuid.UUID(bytes_le=raw)) if len(raw) == 16 else None,
                          None, None, None, None, None, None, None, None)
            for column, value in zip(_KEY_COLUMNS, values):
                extras[column].append(value)
            kid[r] = -len(extras["status"])
            extra[r] = True
        no_guid = ((rows["present"] & _HAS_GUID) == 0) & ~extra

        filetime, ts_valid = self._filetimes(rows, slots, present_slots, view)
        args = self._args(rows, key, slots, printed & ~extra, special, view, nkeys)
        errors = {r: m.error for r, m in special.items() if m.error}
        etl_ids = np.array([self._etls(view.sources[s].name) if s in present_slots else 0
                            for s in range(len(view.sources))], np.int64)[slots]
        part = {"etl": etl_ids, "filetime": filetime, "ts_valid": ts_valid, "kid": kid,
                "no_guid": no_guid, "text_len": lens, "text_ok": text_ok, "args_count": args[0],
                "error": np.array([errors.get(r) for r in range(n)], object) if errors else None}
        for field in ("cpu", "process_id", "thread_id", "sequence", "number", "kind",
                      "payload_size"):
            part[field] = rows[field]
        if not keep.all():
            part = {k: (v[keep] if isinstance(v, np.ndarray) else v) for k, v in part.items()}
            child_keep = np.repeat(keep, args[0])
            args = (args[0][keep],) + tuple(c[child_keep] if c is not None else None
                                            for c in args[1:])
        part["args"] = args
        part["body"] = body
        part["n"] = int(keep.sum())
        return part

    def _batch(self, parts: list[dict]) -> pa.RecordBatch:
        """One record batch of the pending chunks' columns."""
        def cat(name):
            return np.concatenate([p[name] for p in parts]) if len(parts) > 1 else parts[0][name]

        n = sum(p["n"] for p in parts)
        nkeys = self._sync_keys()
        extras = self._extras
        kid = cat("kid")
        take = pa.array(np.where(kid >= 0, kid, nkeys - 1 - kid))
        cols: dict[str, pa.Array] = {}
        for column in _KEY_COLUMNS:
            kind = SCHEMA.field(column).type
            base = self._key_array(column) if nkeys else pa.array([], kind)
            if extras["status"]:
                base = pa.concat_arrays([base, pa.array(extras[column], kind)])
            cols[column] = base.take(take) if len(base) else pa.nulls(n, kind)
        for column in _KEY_COLUMNS:
            extras[column].clear()
        no_guid = cat("no_guid")
        if no_guid.any():
            cols["guid"] = pc.if_else(pa.array(no_guid), pa.nulls(n, pa.string()),
                                              cols["guid"])
        lens = cat("text_len")
        offsets = np.zeros(n + 1, np.int64)
        np.cumsum(lens, out=offsets[1:])
        body = b"".join(p["body"] for p in parts)
        if offsets[-1] != len(body) or len(body) >= (1 << 31):
            raise ValueError("the renderer's line ends do not match its text")
        text_ok = cat("text_ok")
        text = pa.StringArray.from_buffers(
            n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(body),
            None if text_ok.all() else pa.array(text_ok).buffers()[1],
            0 if text_ok.all() else int((~text_ok).sum()))
        errors = [p["error"] if p["error"] is not None else np.full(p["n"], None, object)
                  for p in parts]
        has_errors = any(p["error"] is not None for p in parts)
        error = pa.array(np.concatenate(errors), pa.string()) if has_errors else \
            pa.nulls(n, pa.string())
        filetime, ts_valid = cat("filetime"), cat("ts_valid")
        ns_ok = ts_valid & (filetime >= _NS_LO) & (filetime <= _NS_HI)
        ns = np.where(ns_ok, filetime - _FILETIME_UNIX, 0) * 100
        return pa.RecordBatch.from_arrays([
            self._etls.array().take(pa.array(cat("etl"))),
            pa.array(ns, pa.timestamp("ns", tz="UTC"), mask=~ns_ok),
            pa.array(filetime, pa.int64(), mask=~ts_valid),
            pa.array(cat("cpu")), pa.array(cat("process_id")), pa.array(cat("thread_id")),
            pa.array(cat("sequence")),
            cols["status"], cols["guid"], pa.array(cat("number")), cols["component"],
            cols["name"], cols["function"], cols["file"], cols["line"], cols["level"],
            cols["level_name"], cols["flags"], text, self._args_array(parts), error,
            _KINDS.take(pa.array(cat("kind"))), pa.array(cat("payload_size")),
        ], schema=SCHEMA)

    def _args_array(self, parts: list[dict]) -> pa.Array:
        counts, name_id, type_id, ints, int_ok, floats, float_ok, strs = (
            [np.concatenate(c) for c in zip(*(p["args"][:7] for p in parts))] +
            [[p["args"][7] for p in parts]])
        total = len(name_id)
        offsets = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=offsets[1:])
        if any(s is not None for s in strs):
            values = np.concatenate([s if s is not None else np.full(len(p["args"][1]), None,
                                                                      object)
                                     for s, p in zip(strs, parts)])
            str_array = pa.array(values, pa.string())
        else:
            str_array = pa.nulls(total, pa.string())
        table = self._names.array()
        struct = pa.StructArray.from_arrays([
            table.take(pa.array(name_id)) if total else pa.array([], pa.string()),
            table.take(pa.array(type_id)) if total else pa.array([], pa.string()),
            pa.array(ints, pa.int64(), mask=~int_ok),
            pa.array(floats, pa.float64(), mask=~float_ok),
            str_array,
        ], fields=list(ARG_TYPE))
        return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), struct,
                                        type=pa.list_(ARG_TYPE))

    def _filetimes(self, rows, slots, present_slots, view) -> tuple[np.ndarray, np.ndarray]:
        """FILETIME of each row (exact integer arithmetic, as TimeConverter) and whether it
        has one."""
        raw = rows["timestamp"]
        milli = rows["milli"]
        valid = milli != NO_TIME
        out = np.zeros(len(raw), np.int64)
        for s in present_slots:
            m = slots == s if len(present_slots) > 1 else slice(None)
            start, origin, num, den = view.sources[s].clock.linear
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
            ft = view.sources[int(slots[r])].clock.to_filetime(int(raw[r]))
            if -(1 << 63) <= ft < (1 << 63):
                out[r] = ft
            else:
                valid[r] = False
        return out, valid

    def _args(self, rows, key, slots, known, special, view, nkeys) -> tuple:
        """The ``args`` column's parts: per row the argument count, per argument the name and
        type ids, int, float and str values. Numpy reads every fixed-size argument of the
        chunk at once; Python decodes the other messages' (memoized per argument block) and
        those of its own rows."""
        n = len(key)
        flags = rows["flags"].astype(np.int64)
        src_ps = np.array([8 if s is None else s.pointer_size for s in view.sources], np.int64)
        ps8 = np.where(flags & _POINTER64, True, np.where(flags & _POINTER32, False,
                                                          src_ps[slots] == 8))
        known = known & (key < nkeys)
        plans = self._plans
        counts = np.zeros(n, np.int64)
        python_rows: dict[int, list] = {r: list(m.args or ()) for r, m in special.items()}
        vec = np.zeros(n, bool)
        code = key.astype(np.int64) * 2 + ps8
        if known.any():
            entries = self.decoder._key_entries
            plans.ensure(code[known], entries, self._names)
            start = np.where(known, plans.start[np.where(known, code, 0)], -3)
            size = plans.size[np.where(known, code, 0)]
            vec = (start >= 0) & (rows["payload_size"] >= size)
            counts[vec] = plans.count[code[vec]]
            for r in np.flatnonzero(known & ~vec).tolist():
                entry = entries[int(key[r])]
                if entry.unknown is None and entry.formatter is not None:
                    python_rows[r] = self._python_args(entry, int(key[r]), 8 if ps8[r] else 4,
                                                       rows, r, slots, view)
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
        strs = None
        rows_v = np.flatnonzero(vec)
        if len(rows_v):
            cnt = counts[rows_v]
            pair_row = np.repeat(rows_v, cnt)
            first = np.repeat(offsets[rows_v], cnt)
            within = np.arange(len(pair_row)) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            pidx = np.repeat(plans.start[code[rows_v]], cnt) + within
            flat = plans.flat
            pos = first + within                    # child positions
            at = rows["payload_offset"][pair_row].astype(np.intp) + flat["off"][pidx]
            raw = np.empty(len(pair_row), np.uint64)
            pair_slot = slots[pair_row]
            for s in np.unique(pair_slot).tolist():
                m = pair_slot == s
                data = np.frombuffer(view.datas[s], np.uint8)
                padded = np.concatenate([data, np.zeros(8, np.uint8)])
                raw[m] = padded[at[m][:, None] + _BYTE8].view("<u8").ravel()
            width, mode, bits = flat["width"][pidx], flat["mode"][pidx], flat["bits"][pidx]
            raw &= _WIDTH_MASK[width]
            name_id[pos] = flat["name"][pidx]
            type_id[pos] = flat["type"][pidx]
            is_int = mode <= _SIGNED
            shift = np.where(mode == _SIGNED, 64 - bits, 0).astype(np.uint64)
            ints[pos[is_int]] = ((raw[is_int] << shift[is_int]).view(np.int64)
                                 >> shift[is_int].astype(np.int64))
            int_ok[pos[is_int]] = True
            dbl = mode == _DOUBLE
            floats[pos[dbl]] = raw[dbl].view(np.float64)
            flt = mode == _FLOAT
            if flt.any():
                floats[pos[flt]] = raw[flt].astype(np.uint32).view(np.float32).astype(np.float64)
            float_ok[pos[~is_int]] = True
        names = self._names
        for r, values in python_rows.items():
            at0 = int(offsets[r])
            for j, (name, item, value) in enumerate(values):
                i, f, s = _arg_value(value)
                pos = at0 + j
                name_id[pos] = names(name)
                type_id[pos] = names(item)
                if i is not None:
                    ints[pos] = i
                    int_ok[pos] = True
                elif f is not None:
                    floats[pos] = f
                    float_ok[pos] = True
                elif s is not None:
                    if strs is None:
                        strs = np.full(total, None, object)
                    strs[pos] = s
        return counts, name_id, type_id, ints, int_ok, floats, float_ok, strs

    def _python_args(self, entry, k: int, ps: int, rows, r: int, slots, view) -> list:
        poff, plen = int(rows["payload_offset"][r]), int(rows["payload_size"][r])
        data = bytes(view.datas[int(slots[r])][poff:poff + plen])
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

class ArrowFileWriter:
    """Record batches into a binary stream as Parquet (``format="parquet"``) or an Arrow IPC
    stream (``format="arrow"``); ``close()`` writes the Parquet footer / the stream's end."""

    def __init__(self, stream, format: str = "parquet", *, compression: str = "zstd") -> None:
        if format == "parquet":
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(stream, SCHEMA, compression=compression)
        elif format == "arrow":
            self._writer = pa.ipc.new_stream(stream, SCHEMA)
        else:
            raise ValueError(f"format {format!r}: expected parquet or arrow")
        self.format = format
        self.stream = stream
        self.rows = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        if self.format == "parquet":
            self._writer.write_batch(batch, row_group_size=max(batch.num_rows, 1 << 17))
        else:
            self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def flush(self) -> None:
        flush = getattr(self.stream, "flush", None)
        if flush is not None and self.format == "arrow":
            flush()

    def close(self) -> None:
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


class ArrowRun:
    """The batches of ``to_arrow`` (iterate once), with the decoder's ``counters`` and the
    files' ``issues`` (an Arrow table of ``ISSUES_SCHEMA``) once they are read."""

    def __init__(self, paths: list[str], tmfset, *, all_records: bool = False,
                 batch_rows: int = DEFAULT_BATCH_ROWS,
                 window: tuple[int | None, int | None] | None = None) -> None:
        from .engine import FileSource, merge_sources
        from .etlfile import EtlFile
        from .wpp import WppDecoder
        from .wpp_rows import RowView

        self.decoder = WppDecoder(tmfset, utc=True)
        self.builder = ArrowBuilder(self.decoder, all_records=all_records, batch_rows=batch_rows)
        self._files = []
        try:
            for path in paths:
                self._files.append(EtlFile(path))
        except BaseException:
            self.close()
            raise
        #: issues found opening the files (the header, the buffer index), before decoding
        self.opening_issues = sum(len(etl.errors) for etl in self._files)
        view = RowView()
        if window is not None:
            chunks = FileSource(self._files[0]).ordered(view, window=window)
        else:
            chunks = merge_sources([(FileSource(etl), view) for etl in self._files])
        self._batches = self._generate(self.builder.batches(chunks, view))

    def _generate(self, batches):
        try:
            yield from batches
        finally:
            self.close()

    @property
    def counters(self):
        return self.decoder.counters

    @property
    def issues(self) -> pa.Table:
        return issues_table([issue for etl in self._files for issue in etl.errors])

    def __iter__(self):
        return self._batches

    def __next__(self) -> pa.RecordBatch:
        return next(self._batches)

    def read_all(self) -> pa.Table:
        """Every batch as one table."""
        return pa.Table.from_batches(list(self), schema=SCHEMA)

    def close(self) -> None:
        for etl in self._files:
            etl.close()


def issues_table(issues: Iterable) -> pa.Table:
    """An issues table (``ISSUES_SCHEMA``) from ``DecodeIssue``s or (etl, offset, message)."""
    rows = [(i.file, i.offset, i.message) if hasattr(i, "message") else tuple(i) for i in issues]
    return pa.table([pa.array([r[0] for r in rows], pa.string()),
                     pa.array([r[1] for r in rows], pa.int64()),
                     pa.array([r[2] for r in rows], pa.string())], schema=ISSUES_SCHEMA)


def decode_range(path: str, window: tuple[int | None, int | None] | None, tmfset, *,
                 all_records: bool = False) -> tuple[pa.Table, pa.Table]:
    """One partition of a fleet: the messages of ``path`` whose merge keys lie in ``window``
    (decoder.parallel's windows; None: the whole file), and the issues met reading them.
    Never raises for bad input: a file that cannot be read at all gives no rows and one issue
    row saying why; damage inside a file gives its intact records and an issue per damage."""
    try:
        run = ArrowRun([path], tmfset, all_records=all_records, window=window)
    except Exception as exc:
        return SCHEMA.empty_table(), issues_table([(path, None, _reason(exc))])
    try:
        table = pa.Table.from_batches(list(run), schema=SCHEMA)
    except Exception as exc:         # a defect, not the input's: still one issue, not a failed job
        run.close()
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
