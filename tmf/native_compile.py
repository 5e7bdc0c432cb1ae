"""A TMF message's program blob made by the C compiler (``tmf/csrc/wppcompile.h``).

``ProgramPlan.encode`` (``wpptrace.tmf.native``) makes a message's program from the plan its
format string and argument list share; compiling the messages of a driver that way costs
tens of thousands of instructions each in Python. The C compiler reads the format string
itself and lays out the same blob, byte for byte, for the messages whose every part it knows:
it declines the rest (the caller then compiles them in Python, the reference).

Item types and printf specs stay decided in one place: the op of an insert (its argument's
item class under a spec text) is what the Python compile makes of a format holding that one
insert, put in the C table the first time a message needs it.
"""
from __future__ import annotations

from _thread import allocate_lock

from wpptrace._core import ffi, lib

from . import native, render
from .formatspec import _FM_ESCAPES
from .model import make_argument

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Any, Sequence

__all__ = ["MessageCompiler"]

#: the blob buffer: a message whose blob does not fit is compiled in Python
_OUT_SIZE = 1 << 16
_NEEDS_LIMIT = 8       # ops put for one message before it is left to Python
_NO_STRINGS = ((), b"\0\0\0\0")
_message, _NEED, _buffer = lib.wppc_message, lib.WPPC_NEED, ffi.buffer


def _escapes() -> bytes:
    """What "%c" stands for in a format, for each ASCII c (0: the C side declines it)."""
    table = bytearray(128)
    for code in range(1, 128):
        ch = chr(code)
        value = _FM_ESCAPES.get(ch, ch)
        if len(value) == 1 and ord(value) < 128:
            table[code] = ord(value)
    return bytes(table)


def _names(names) -> bytes:
    return b"".join(name.encode("ascii") + b"\0" for name in names)


class MessageCompiler:
    """Program blobs of messages (``blob``), made in C; one a process, shared by its decoders
    (one thread at a time: the C call runs without the GIL, on one table and one buffer)."""

    __slots__ = ("_table", "_out", "_need", "_classes", "_items", "_arg_tables", "_strings", "_lock")

    def __init__(self, empty_markers: Sequence[str], derived_markers: Sequence[str]) -> None:
        """``empty_markers``: the markers that print empty when the trailer has no value for
        them; ``derived_markers``: those whose value is derived from the message's other
        fields when it has none (the decoder's marker rules: ``decoder.prefix.marker_value``;
        a message meeting one of those is declined)."""
        empty, defaulted = _names(empty_markers), _names(sorted(derived_markers))
        table = lib.wppc_new(_escapes(), empty, len(empty), defaulted, len(defaulted))
        if table == ffi.NULL:
            raise MemoryError("the message compiler's table")
        self._table = ffi.gc(table, lib.wppc_free)
        self._out = ffi.new("uint8_t[]", _OUT_SIZE)
        self._need = ffi.new("wppc_need *")
        self._classes: dict[tuple, int] = {}        # (item, params) -> class number
        self._items: list[tuple] = []                # class number -> (item, params)
        #: id of an argument tuple -> (the tuple, its argument table or None: declined)
        self._arg_tables: dict[int, tuple] = {}
        self._strings: dict[int, tuple] = {}         # id of prefix strings -> ``_packed_strings``
        self._lock = allocate_lock()

    def blob(self, message: Any, program: int, strings: Sequence[bytes], prefix: bool) -> bytes | None:
        """The program of ``message`` (a ``model.Message``) calling shared prefix ``program``
        (-1: none) with ``strings``, ``prefix`` its WPPR_P_PREFIX flag: what
        ``ProgramPlan.encode`` makes for it; None when the C compiler declines it."""
        if message.legacy:
            return None
        with self._lock:
            return self._blob(message, program, strings, prefix)

    def _blob(self, message: Any, program: int, strings: Sequence[bytes], prefix: bool) -> bytes | None:
        args = message.args
        found = self._arg_tables.get(id(args))
        if found is None or found[0] is not args:
            found = self._arg_table(args)
        table = found[1]
        if table is None:
            return None
        try:
            fmt = message.format.encode("utf-8")
            if len(fmt) >= _OUT_SIZE:       # its blob cannot fit (and C positions are 32-bit)
                return None
            trailer = message.trailer
            if trailer:   # its keys, then its values, each ended by a NUL (none inside one)
                packed = "\0".join(trailer) + "\0" + "\0".join(trailer.values()) + "\0"
                if packed.count("\0") != 2 * len(trailer):
                    return None
                packed = packed.encode("utf-8")
            else:
                packed = b""
        except (UnicodeEncodeError, TypeError, AttributeError):
            return None
        texts = self._strings.get(id(strings)) if strings else _NO_STRINGS
        if texts is None or texts[0] is not strings:
            texts = self._packed_strings(strings)
        out, need = self._out, self._need
        for _ in range(_NEEDS_LIMIT):
            size = _message(self._table, fmt, len(fmt), table, len(table), packed, len(packed), program, texts[1],
                            len(texts[1]), prefix, out, _OUT_SIZE, need)
            if size >= 0:
                return _buffer(out, size)[:]
            if size != _NEED or not self._put(need, fmt):
                return None
        return None

    def _packed_strings(self, strings: Sequence[bytes]) -> tuple:
        """(strings, their table as ``wppc_message`` takes it): kept by the tuple's id (a
        prefix's texts for a component and name are one tuple, made once)."""
        head = [len(strings).to_bytes(4, "little")]
        head += [len(text).to_bytes(4, "little") for text in strings]
        found = (strings, b"".join((*head, *strings)))
        if type(strings) is tuple:
            if len(self._strings) >= 100_000:
                self._strings.clear()
            self._strings[id(strings)] = found
        return found

    def _arg_table(self, args: tuple) -> tuple:
        """(args, the packed argument table of an argument tuple, None when its messages are
        Python's: an item with no C form, an insert number out of range)."""
        table = None
        try:
            rows = [len(args).to_bytes(4, "little")]
            for arg in args:
                it = render.item_type(arg.item)
                if it is None or not it.native or not 0 <= arg.insert <= 0xFFFFFFFF:
                    raise ValueError(arg.item)
                key = (arg.item, tuple(arg.params))
                cls = self._classes.get(key)
                if cls is None:
                    cls = self._classes[key] = len(self._items)
                    self._items.append(key)
                row = (it.wire, it.size, it.native == "reduced_text")
                rows += (arg.insert.to_bytes(4, "little"), cls.to_bytes(4, "little"),
                         native._ARG_ROWS.get(row) or native._arg_row(row))
            if len(args) <= 255:
                table = b"".join(rows)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError):
            table = None
        found = (args, table)
        if type(args) is tuple:          # immutable: kept by its id (the tuple held)
            if len(self._arg_tables) >= 100_000:
                self._arg_tables.clear()
            self._arg_tables[id(args)] = found
        return found

    def _put(self, need, fmt: bytes) -> bool:
        """Put the op the C compiler asked for (``need``) in its table: what the Python
        compile makes of a format of that one insert. False when it cannot be put."""
        cls, at, length = need.cls, need.spec_at, need.spec_len
        if cls >= len(self._items):
            return False
        spec = fmt[at:at + length] if length >= 0 else None
        op = insert_op(*self._items[cls], spec)
        return lib.wppc_put_op(self._table, cls, spec if spec is not None else ffi.NULL,
                               -1 if spec is None else len(spec), op if op is not None else ffi.NULL) == 0


def insert_op(item: str, params: tuple, spec: bytes | None) -> bytes | None:
    """The packed op of an argument of ``item`` (with ``params``) under the spec text ``spec``
    (None: an insert with no spec) at argument 0, as the Python compile makes it for a format
    of that one insert; None when that is not a single op that uses no pool (the messages with
    such an insert are compiled in Python)."""
    try:
        fmt = "%10" if spec is None else "%10!" + spec.decode("utf-8") + "!"
        args = (make_argument("", item, params, 10),)
        layout = render._Layout(fmt, args)
        if layout.error is not None:
            return None
        made = layout.plan_steps(args, False, None, False)
    except Exception:   # whatever the Python compile makes of it, it makes it for the message
        return None
    if type(made) is not tuple:
        return None
    steps = made[1]
    if len(steps) != 1 or steps[0][0] not in ("int", "dbl", "text", "form") or steps[0][1] != 0:
        return None
    step = steps[0]
    if step[0] == "form" and step[3] is not None:
        return None      # a name table: in the pool
    pool = native._Pool()
    try:
        op = native._op(step, pool)
    except Exception:
        return None
    return None if pool.data or len(op) != lib.WPPC_OP_SIZE else op
