"""The C renderer's Python side: program blobs and batch rendering (``tmf/csrc/wpprender.h``).

A message compiles (``MessageFormatter.native_ops``) to a list of ops over its arguments; the
prefix bound to it (``decoder.prefix.PrefixTemplate.native_ops``) to ops over the record's
thread, process, time ...; ``encode`` packs both into one program blob, and a
``NativeRenderer`` registers blobs and renders batches of rows into one byte buffer. Rows the
C side leaves to Python (holes) are reported with their place in the output.

Ops (tuples, first item the kind):

* ``("lit", text)``
* ``("int", arg, conv, flags, width, precision, bits)``: MSVC printf of an integer argument;
  ``bits`` the spec reads (0: the pointer size)
* ``("dbl", arg, conv, flags, width, precision)``: a double under e/E/f/g/G
* ``("text", arg, flags, width, precision, quoted)``: a string argument under %s
* ``("form", arg, native, table, flags, width, precision)``: an item's own text (``native`` as
  in the item table) under %s
* ``("pvar", var, conv, flags, width, precision)``: prefix variable %3 %5 %6 %7 %8 %9 (Python
  %-semantics, conv d x X o s)
* ``("ptime", flags, width, precision)``: prefix variable %4, the time text
* ``("pstr", k)``: in a shared prefix, the k-th string of the message's program (its %1, %2
  and marker texts: ``SharedPrefix.strings``)

``width`` / ``precision`` are None when the spec has none; ``flags`` is the spec's flag text.
"""
from __future__ import annotations

import struct
from collections import namedtuple

from wpptrace._core import ffi, lib

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Any, Iterable, Sequence

__all__ = ["encode", "ProgramPlan", "json_decoration", "column_decoration", "value_layout", "NativeRenderer",
           "SharedPrefix", "flag_bits", "JSON_KINDS"]

_HEAD = struct.Struct("<IIHHIiHH")
_ARG = struct.Struct("<BBBB")
_OP = struct.Struct("<BBBBBBHiiII")
_U32 = struct.Struct("<I")
_ENTRY = struct.Struct("<III")
_STRING = struct.Struct("<II")
_NAME = struct.Struct("<II")
_NO_NAME = (0, 0xFFFFFFFF)

_WIRES = {"fixed": lib.WPPR_W_FIXED, "pointer": lib.WPPR_W_PTR, "cstr": lib.WPPR_W_CSTR,
          "wstr": lib.WPPR_W_WSTR, "pstr": lib.WPPR_W_PSTR, "pwstr": lib.WPPR_W_PWSTR,
          "hexdump": lib.WPPR_W_HEXDUMP}
_FORMS = {"ntstatus": lib.WPPR_F_NTSTATUS, "hresult": lib.WPPR_F_HRESULT,
          "winerror": lib.WPPR_F_WINERROR, "ndis_status": lib.WPPR_F_NDIS_STATUS,
          "ndis_oid": lib.WPPR_F_NDIS_OID, "guid": lib.WPPR_F_GUID, "char4": lib.WPPR_F_CHAR4,
          "hexdump": lib.WPPR_F_HEXDUMP, "list": lib.WPPR_F_LIST, "set": lib.WPPR_F_SET,
          "enum": lib.WPPR_F_ENUM, "flags": lib.WPPR_F_FLAGS, "double": lib.WPPR_F_DOUBLE}
_FLAG_BITS = {"-": lib.WPPR_MINUS, "+": lib.WPPR_PLUS, " ": lib.WPPR_SPACE, "#": lib.WPPR_HASH,
              "0": lib.WPPR_ZERO}
_NONE = -1
_OUTPUTS = {"text": lib.WPPR_OUT_TEXT, "csv": lib.WPPR_OUT_CSV, "jsonl": lib.WPPR_OUT_JSON,
            "columns": lib.WPPR_OUT_COLUMNS}
#: how the renderer writes an argument's JSON value (``MessageFormatter.json_kinds``)
JSON_KINDS = {"unsigned": lib.WPPR_J_UNSIGNED, "signed": lib.WPPR_J_SIGNED,
              "string": lib.WPPR_J_STRING, "guid": lib.WPPR_J_GUID, "double": lib.WPPR_J_DOUBLE}
_JSON_ARG = struct.Struct("<BBBBI")
_COLUMN_ARG = struct.Struct("<BBBBii")
_PREFIX_END = _OP.pack(lib.WPPR_OP_PREFIX_END, 0, 0, 0, 0, 0, 0, _NONE, _NONE, 0, 0)


def flag_bits(flags: str) -> int:
    bits = 0
    for ch in flags:
        bits |= _FLAG_BITS[ch]
    return bits


def _num(value: int | None) -> int:
    return _NONE if value is None else value


class _Pool:
    def __init__(self) -> None:
        self.data = bytearray()

    def text(self, text: str) -> tuple[int, int]:
        raw = text.encode("utf-8")
        at = len(self.data)
        self.data += raw
        return at, len(raw)

    def table(self, native: str, table: Any) -> int:
        """The name table of a list / set / enum / flags item (layouts in wpprender.h)."""
        if native == "set":
            head, size = len(self.data), 4 + 8 * len(table)
            self.data += bytes(size)
            entries = [_U32.pack(len(table))] + [_NAME.pack(*self.text(name)) for name in table]
            self.data[head:head + size] = b"".join(entries)
            return head
        values = table[0] if native == "flags" else table
        rows = sorted((v, n) for v, n in values.items() if 0 <= v <= 0xFFFFFFFF)
        bits = table[1] if native == "flags" else None
        head = len(self.data)
        size = 4 + 12 * len(rows) + (8 * 32 if bits is not None else 0)
        self.data += bytes(size)
        entries = [_U32.pack(len(rows))]
        for value, name in rows:
            off, n = self.text(name)
            entries.append(_ENTRY.pack(value, off, n))
        if bits is not None:
            for bit in range(32):
                name = bits.get(bit)
                entries.append(_NAME.pack(*self.text(name)) if name is not None else _NAME.pack(*_NO_NAME))
        self.data[head:head + size] = b"".join(entries)
        return head


class SharedPrefix(namedtuple("SharedPrefix", "program strings")):
    """A message's prefix as a shared prefix program (``NativeRenderer.add_prefix``) and the
    texts its ``pstr`` ops print for this message: ``program`` (int), ``strings`` (str
    sequence)."""

    __slots__ = ()


def encode(args: Sequence[tuple[str, int | None, bool]], message_ops: Iterable[tuple],
           prefix_ops: "Iterable[tuple] | SharedPrefix | None", *, prefix: bool,
           shared: bool = False) -> bytes:
    """One program blob. ``args``: (wire, size, reduce) per argument in block order;
    ``prefix``: the message starts with %0: ``prefix_ops`` (its own ops, or a
    ``SharedPrefix``) go in front unless disabled. ``shared``: the blob is a shared prefix."""
    pool = _Pool()
    ops: list[bytes] = []
    strings: list[bytes] = []
    program = -1
    if isinstance(prefix_ops, SharedPrefix):
        program = prefix_ops.program
        data = pool.data
        for string in prefix_ops.strings:  # ``pool.text`` inline: a message has several
            raw = string.encode("utf-8")
            strings.append(_STRING.pack(len(data), len(raw)))
            data += raw
    elif prefix_ops is not None:
        _encode_ops(prefix_ops, pool, ops)
        ops.append(_PREFIX_END)
    _encode_ops(message_ops, pool, ops)
    arg_rows = [_ARG_ROWS.get(arg) or _arg_row(arg) for arg in args]
    flags = (_P_PREFIX if prefix else 0) | (_P_SHARED if shared else 0)
    head = _HEAD.pack(_MAGIC, flags, len(arg_rows), len(ops), len(pool.data), program,
                      len(strings), 0)
    return b"".join((head, *arg_rows, *ops, *strings, pool.data))


class ProgramPlan:
    """What the programs of every message with one format string and argument list share:
    their argument rows and ops, the literal texts that are the same for all of them in a pool
    of their own, and where each message's marker texts go. ``encode`` makes one message's
    program from it: the blob ``encode`` gives for the same ops (the same text printed), for
    the cost of the message's own texts.

    ``args`` as ``encode`` takes them; ``steps``: ops as ``native_ops`` gives them, a marker's
    text as ``("marker", name, text without a value)``."""

    __slots__ = ("nargs", "front", "runs", "pool", "size", "nops")

    def __init__(self, args: Sequence[tuple[str, int | None, bool]], steps: Iterable[tuple]) -> None:
        pool = _Pool()
        data = pool.data
        ops: list[bytes] = []
        # per run of literals with markers: (index in ops, a %-template of the run with a %s
        # where each marker's text goes, ((name, text without a value), ...))
        runs: list[tuple] = []
        texts: list[str] = []           # the literal run not placed yet
        markers: list[tuple] = []       # the markers in it
        packed_ops = _PACKED
        for step in (*steps, _PLACE):   # the last run placed as one before an op is
            kind = step[0]
            if kind == "lit":
                texts.append(step[1].replace("%", "%%") if markers else step[1])
                continue
            if kind == "marker":
                if not markers:         # the literals before it become part of a template
                    texts = [text.replace("%", "%%") for text in texts]
                markers.append((step[1], step[2]))
                texts.append("%s")
                continue
            if markers:                 # a message's own: encoded per message
                runs.append((len(ops), "".join(texts), tuple(markers)))
                ops.append(b"")
                markers = []
            elif texts:                 # ``_literal``, inline
                raw = "".join(texts).encode("utf-8")
                if raw:
                    ops.append(_LIT_HEAD + _STRING.pack(len(data), len(raw)))
                    data += raw
            texts = []
            if step is not _PLACE:
                packed = packed_ops.get(step) if kind != "form" else None
                ops.append(packed if packed is not None else _op(step, pool))
        self.nargs = len(args)
        self.pool = bytes(data)
        self.size = len(data)
        self.nops = len(ops) - len(runs)
        # the argument rows and the ops before the first run, then per run (its template, its
        # markers, the ops after it up to the next run): a blob is these with each run's op
        arg_rows = _ARG_ROWS
        front = [arg_rows.get(arg) or _arg_row(arg) for arg in args]
        if not runs:
            front += ops
            self.runs = ()
        else:
            first = runs[0][0]
            front += ops[:first]
            last = len(runs) - 1
            self.runs = tuple([(template, places,
                                b"".join(ops[slot + 1:runs[k + 1][0] if k < last else None]))
                               for k, (slot, template, places) in enumerate(runs)])
        self.front = b"".join(front)

    def encode(self, markers: Any, program: int, strings: Sequence[bytes], prefix_flag: bool) -> bytes:
        """One message's program: ``markers`` gives its marker texts (``markers.get(name)``,
        None for none), ``program`` is the shared prefix program it calls (-1: none) and
        ``strings`` the UTF-8 texts it gives that prefix (``SharedPrefix.strings``, encoded);
        ``prefix_flag``: the message starts with %0 (``encode``'s ``prefix``)."""
        at = self.size
        nops = self.nops
        parts = [b"", self.front]       # the head, made last
        tail = [self.pool]
        for template, places, after in self.runs:
            values = []
            for name, none in places:
                value = markers.get(name)
                values.append(value if type(value) is str else none if value is None else str(value))
            raw = (template % tuple(values)).encode("utf-8")
            if raw:                     # an empty run prints nothing: no op, as in ``encode``
                parts.append(_LIT_HEAD + _STRING.pack(at, len(raw)))
                tail.append(raw)
                at += len(raw)
                nops += 1
            parts.append(after)
        for raw in strings:
            parts.append(_STRING.pack(at, len(raw)))
            tail.append(raw)
            at += len(raw)
        parts[0] = _HEAD.pack(_MAGIC, _P_PREFIX if prefix_flag else 0, self.nargs, nops, at, program,
                              len(strings), 0)
        parts += tail
        return b"".join(parts)


# the library's constants, read once (each read of ``lib.NAME`` is a lookup in the C module)
_MAGIC, _P_PREFIX, _P_SHARED = lib.WPPR_MAGIC, lib.WPPR_P_PREFIX, lib.WPPR_P_SHARED
_A_REDUCE, _OP_LIT = lib.WPPR_A_REDUCE, lib.WPPR_OP_LIT
_ARG_ROWS: dict[tuple, bytes] = {}  # (wire, size, reduce) -> its packed row
#: a literal op but its text's place in the pool (offset, length: packed as ``_STRING``)
_LIT_HEAD = _OP.pack(_OP_LIT, 0, 0, 0, 0, 0, 0, _NONE, _NONE, 0, 0)[:-_STRING.size]


def _arg_row(arg: tuple[str, int | None, bool]) -> bytes:
    wire, size, reduce = arg
    row = _ARG_ROWS[arg] = _ARG.pack(_WIRES[wire], size or 0, _A_REDUCE if reduce else 0, 0)
    return row


def json_decoration(head: bytes, args: Sequence[tuple[str, str, int, int]]) -> bytes:
    """A program's JSON decoration (``NativeRenderer.decorate``): the object's head (keys
    "guid" .. "flags", leading comma) and per argument (text before its value, JSON_KINDS
    name, bits of a signed value at pointer size 4 and 8)."""
    parts = [_U32.pack(len(head)), head, struct.pack("<H", len(args))]
    for before, kind, bits4, bits8 in args:
        raw = before.encode("utf-8")
        parts += (_JSON_ARG.pack(JSON_KINDS[kind], bits4, bits8, 0, len(raw)), raw)
    return b"".join(parts)


def column_decoration(args: Sequence[tuple[int, int, str, int, int]]) -> bytes:
    """A program's decoration in the "columns" form: per argument (name id, type id,
    JSON_KINDS name, bits of a signed value at pointer size 4 and 8); the ids are the
    caller's, written as they are in the argument columns."""
    parts = [struct.pack("<H", len(args))]
    parts += [_COLUMN_ARG.pack(JSON_KINDS[kind], bits4, bits8, 0, name, item)
              for name, item, kind, bits4, bits8 in args]
    return b"".join(parts)


_VALUE_HEAD = struct.Struct("<HH")
_VALUE_ARG = struct.Struct("<BBBBBBH")


def value_layout(args: Sequence[tuple[str, int | None, bool, str, int, int]]) -> bytes:
    """A message's value layout for the C decoder of typed values
    (``decoder/csrc/wpp_values.h``) from ``MessageFormatter.value_layout``: per argument its
    wire form, size, reduced-string flag, JSON_KINDS name and signed bits at pointer size 4
    and 8."""
    parts = [_VALUE_HEAD.pack(len(args), 0)]
    parts += [_VALUE_ARG.pack(_WIRES[wire], size or 0, _A_REDUCE if reduce else 0,
                              JSON_KINDS[kind], bits4, bits8, 0)
              for wire, size, reduce, kind, bits4, bits8 in args]
    return b"".join(parts)


def _encode_ops(ops: Iterable[tuple], pool: "_Pool", out: list[bytes]) -> None:
    """Pack ops into ``out``; adjacent literals become one."""
    texts: list[str] = []  # the run of literals not packed yet
    packed_ops = _PACKED
    for op in ops:
        kind = op[0]
        if kind == "lit":
            texts.append(op[1])
            continue
        if texts:
            _literal("".join(texts), pool, out)
            texts.clear()
        packed = packed_ops.get(op) if kind != "form" else None
        out.append(packed if packed is not None else _op(op, pool))
    if texts:
        _literal("".join(texts), pool, out)


def _literal(text: str, pool: "_Pool", out: list[bytes]) -> None:
    if text:
        raw = text.encode("utf-8")
        data = pool.data
        out.append(_OP.pack(_OP_LIT, 0, 0, 0, 0, 0, 0, _NONE, _NONE, len(data), len(raw)))
        data += raw


_PACKED: dict[tuple, bytes] = {}  # ops that do not use the pool, packed once
#: ``ProgramPlan``'s step after the last: it places the run of literals before it
_PLACE = ("place",)


def _op(op: tuple, pool: _Pool) -> bytes:
    kind = op[0]
    if kind in ("int", "dbl", "text", "pvar", "ptime", "pstr"):
        packed = _PACKED.get(op)
        if packed is None:
            packed = _pack(op)
            if len(_PACKED) < 65536:
                _PACKED[op] = packed
        return packed
    if kind == "lit":
        off, n = pool.text(op[1])
        return _OP.pack(lib.WPPR_OP_LIT, 0, 0, 0, 0, 0, 0, _NONE, _NONE, off, n)
    if kind == "form":
        _, arg, native, table, flags, width, prec = op
        item = _FORMS[native]
        where = 0
        if native in ("list", "set", "enum") or (native == "flags" and table is not None):
            where = pool.table(native, table)
        elif native == "flags":
            item = lib.WPPR_F_FLAGS_NONE
        return _OP.pack(lib.WPPR_OP_FORM, ord("s"), flag_bits(flags), 0, item, 0, arg, _num(width),
                        _num(prec), where, 0)
    raise ValueError(f"unknown op {kind!r}")


def _pack(op: tuple) -> bytes:
    kind = op[0]
    if kind == "int":
        _, arg, conv, flags, width, prec, bits = op
        return _OP.pack(lib.WPPR_OP_INT, ord(conv), flag_bits(flags), bits, 0, 0, arg, _num(width),
                        _num(prec), 0, 0)
    if kind == "dbl":
        _, arg, conv, flags, width, prec = op
        return _OP.pack(lib.WPPR_OP_DBL, ord(conv), flag_bits(flags), 0, 0, 0, arg, _num(width),
                        _num(prec), 0, 0)
    if kind == "text":
        _, arg, flags, width, prec, quoted = op
        return _OP.pack(lib.WPPR_OP_TEXT, ord("s"), flag_bits(flags), 0, 0, 1 if quoted else 0, arg,
                        _num(width), _num(prec), 0, 0)
    if kind == "pvar":
        _, var, conv, flags, width, prec = op
        return _OP.pack(lib.WPPR_OP_PVAR, ord(conv), flag_bits(flags), 0, 0, 0, var, _num(width),
                        _num(prec), 0, 0)
    if kind == "ptime":
        _, flags, width, prec = op
        return _OP.pack(lib.WPPR_OP_PTIME, ord("s"), flag_bits(flags), 0, 0, 0, 0, _num(width),
                        _num(prec), 0, 0)
    if kind == "pstr":
        return _OP.pack(lib.WPPR_OP_PSTR, 0, 0, 0, 0, 0, op[1], _NONE, _NONE, 0, 0)
    raise ValueError(f"unknown op {kind!r}")


#: ``milli`` of a row without a time (empty time text), and of one only Python places
NO_TIME = -(1 << 63)
TIME_OUT_OF_RANGE = NO_TIME + 1


class NativeRenderer:
    """One C renderer: its registered programs and output options."""

    def __init__(self, *, utc: bool = False, noprefix: bool = False, output: str = "text",
                 quote_all: bool = False) -> None:
        """``output``: the rows' form, "text" (tracefmt lines), "csv" or "jsonl" (rows of
        programs given a decoration), "columns" (Arrow columns, ``wppr_column_row``: the
        text without prefix and the typed arguments); ``quote_all``: every CSV field quoted."""
        raw = lib.wppr_new()
        if raw == ffi.NULL:
            raise MemoryError("wppr_new")
        self.raw = ffi.gc(raw, lib.wppr_free)
        # freed with this object (a weakref.finalize would import atexit in every process)
        self.out = ffi.gc(ffi.new("wppr_buf *"), lib.wppr_buf_free)
        self._holes_cap = 0
        self._holes = self._hole_at = None
        self._nholes = ffi.new("uint32_t *")
        lib.wppr_set_options(self.raw, utc, noprefix)
        lib.wppr_set_output(self.raw, _OUTPUTS[output], quote_all)

    def text(self, wanted: bool) -> None:
        """Whether text lines are printed (the default) or only decided: a row is left to
        Python, or counted as its program's, as when printed, but nothing is written."""
        lib.wppr_set_text(self.raw, bool(wanted))

    def add(self, blob: bytes) -> int:
        """Register a program; its id."""
        pid = lib.wppr_add_program(self.raw, blob, len(blob))
        if pid < 0:
            raise ValueError("malformed renderer program")
        return pid

    def decorate(self, program: int, decoration: bytes) -> None:
        """Give a program the decoration of its CSV rows (GuidName,MessageName as CSV), JSON
        objects (``json_decoration``) or columns (``column_decoration``)."""
        if lib.wppr_set_decoration(self.raw, program, decoration, len(decoration)) < 0:
            raise ValueError("malformed renderer decoration")

    def add_prefix(self, ops: Iterable[tuple]) -> int:
        """Register a shared prefix program (``pstr`` ops print each message's strings)."""
        return self.add(encode([], ops, None, prefix=False, shared=True))

    def rows_rendered(self) -> bytes:
        """Rows rendered so far by each program, indexed by program id, as native uint64
        values (one C copy, no Python int each: a ``fmt -j`` window takes one)."""
        n = lib.wppr_program_rows_all(self.raw, ffi.NULL, 0)
        if not n:
            return b""
        out = ffi.new("uint64_t[]", n)
        n = min(n, lib.wppr_program_rows_all(self.raw, out, n))
        return ffi.buffer(out, 8 * n)[:]

    def rows_of(self, programs: list[int]) -> int:
        """Rows rendered so far by the ``programs`` (program ids) together."""
        return lib.wppr_program_rows_of(self.raw, programs, len(programs))

    def render(self, rows, n: int) -> tuple[bytes, list[tuple[int, int]]]:
        """Render ``rows`` (a ``wppr_row[]`` of at least n) -> (text, [(row index, position)])
        where each hole's line belongs at ``position`` of the text."""
        if n > self._holes_cap:
            self._holes_cap = max(n, 1024)
            self._holes = ffi.new("uint32_t[]", self._holes_cap)
            self._hole_at = ffi.new("uint64_t[]", self._holes_cap)
        out = self.out
        out.len = 0
        if lib.wppr_render(self.raw, rows, n, out, self._holes, self._hole_at, self._nholes) < 0:
            raise MemoryError("wppr_render")
        text = ffi.buffer(out.data, out.len)[:] if out.len else b""
        holes = [(self._holes[i], self._hole_at[i]) for i in range(self._nholes[0])]
        return text, holes


def time_text(filetime: int, utc: bool) -> str:
    """tracefmt's MM/DD/YYYY-HH:MM:SS.mmm of a FILETIME, from the C renderer."""
    out = ffi.new("char[64]")
    n = lib.wppr_time_text(filetime, utc, out)
    return ffi.buffer(out, n)[:].decode("ascii")
