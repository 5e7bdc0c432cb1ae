"""Compile a TMF message into a fast formatter: argument bytes -> the text tracefmt prints.

``compile_message(message, tmfset)`` parses the format once, binds each insert %N to the argument
with ``insert == N`` (payload read in argument-block order), and precomputes per pointer size:
one ``struct.Struct`` per run of fixed-size arguments and a Python ``%`` template whose slots
take the decoded values directly where Python's formatting equals the C runtime's (``%d``,
``%08X`` ...) or the item's rendered text otherwise. Per event the work is: bounds check,
``unpack_from``, one ``%`` operation. Formatters are cached per message.
"""
from __future__ import annotations

import struct

from .cprintf import fast_template, format_insert, spec_bits
from .formatspec import (_FM_ESCAPES, MAX_WIDTH, FormatSpecError, Insert, Literal, Marker, Spec,
                         parse_tmf_format)
from .itemtypes import (NAMED_NATIVES, FormatError, ItemDecodeError, ItemType, RenderContext, item_type,
                        name_table)
from .lazyre import LazyPattern

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Any, Callable, Mapping

__all__ = ["FormatError", "MessageFormatter", "compile_message", "marker_defaults", "marker_default",
           "native_plan", "PER_MESSAGE", "clear_cache"]

# the digits ending a message name; the look-behind makes a search linear on a long run of
# digits (only the run's first digit can start a match)
_LINE_RE = LazyPattern(r"(?<!\d)(\d+)$")


def marker_defaults(message: Any) -> dict[str, str]:
    """WPP marker values known from the TMF entry itself (docs/tmf-format.md §5.4): trailer keys
    (FUNC=, LEVEL=, FLAGS= ... any key), COMPNAME = the component, FILE = SRC=, LINE = the
    digits ending the message name (``Device_c104`` -> 104)."""
    values = dict(getattr(message, "trailer", {}) or {})
    if "LEVEL" not in values:  # legacy substring search: TRACELEVEL= also answers LEVEL
        level = [val for key, val in values.items() if key.endswith("LEVEL")]
        if level:
            values["LEVEL"] = level[0]
    if "COMPNAME" not in values:
        values["COMPNAME"] = getattr(message, "component", "") or ""
    if "FILE" not in values:
        values["FILE"] = getattr(message, "source_file", "") or ""
    if "LINE" not in values:
        m = _LINE_RE.search(getattr(message, "name", "") or "")
        values["LINE"] = m.group(1) if m else ""
    return values


def marker_default(message: Any, name: str) -> str | None:
    """``marker_defaults(message).get(name)``, without making the dict."""
    trailer = getattr(message, "trailer", {}) or {}
    if name in trailer:
        return trailer[name]
    if name == "LEVEL":
        for key, value in trailer.items():
            if key.endswith("LEVEL"):
                return value
    elif name == "COMPNAME":
        return getattr(message, "component", "") or ""
    elif name == "FILE":
        return getattr(message, "source_file", "") or ""
    elif name == "LINE":
        m = _LINE_RE.search(getattr(message, "name", "") or "")
        return m.group(1) if m else ""
    return None


def _escape(text: str) -> str:
    return text.replace("%", "%%")


class _Unusable(Exception):
    """Raised while compiling: the format cannot be used with this argument list."""


class _Baked:
    """A plan's template with the marker values of one markers mapping baked in."""

    __slots__ = ("markers", "template", "slots", "direct", "unpack", "size", "constant", "star")

    def __init__(self, markers, template, slots, direct, fixed):
        self.markers = markers
        self.template = template  # % template; literal text and marker values escaped
        self.slots = slots        # per value slot: (arg index, converter | None)
        self.direct = direct      # True: template % decoded_values works as is
        # all arguments in one Struct and printed as decoded: template % unpack(buf)
        self.unpack = fixed.unpack_from if (direct and fixed is not None) else None
        self.size = fixed.size if fixed is not None else 0
        # no arguments: the text never changes
        self.constant = template % () if (direct and not slots) else None


class _Plan:
    """The compiled form of one message for one pointer size."""

    __slots__ = ("decode", "parts", "baked", "last", "fixed")

    def __init__(self, decode, parts, fixed):
        self.decode = decode  # buf -> tuple/list of per-argument values
        self.parts = parts    # ("lit", text) | ("marker", name) | ("arg", index, slot, conv) | ("var", N, conv)
        self.fixed = fixed    # the Struct of all arguments when every one is fixed-size, else None
        self.baked: dict[int, _Baked] = {}
        self.last: _Baked | None = None


class MessageFormatter:
    """Formats one TMF message's events. ``format(arg_bytes, pointer_size, markers)`` -> text;
    ``decode_args(arg_bytes, pointer_size)`` -> [(name, item, value)]. Both raise
    :class:`FormatError` when the argument bytes don't fit the format.

    ``markers`` supplies WPP marker values (``"FUNC"``, ``"LEVEL"``, ``"PREFIX"`` for a leading
    %0 ...) and values of inserts %1..%9 (int keys) if the format uses them; missing markers
    come from the TMF entry (:func:`marker_defaults`). The markers' text is baked into the
    template the first time a mapping object is seen: pass the same mapping for every event of a
    message and do not mutate it afterwards (pass a new mapping for new values)."""

    def __init__(self, message: Any, tmfset: Any = None, *, utc: bool = False) -> None:
        self.message = message
        self.tmfset = tmfset
        self.utc = utc
        self._plans: dict[int, _Plan] = {}
        self._typed: dict[int, tuple] = {}     # pointer size -> _typed_plan
        self._markers = marker_defaults(message)
        args = getattr(message, "args", ()) or ()
        self._args = args = args if type(args) is tuple else tuple(args)
        self._layout = layout = _layout(getattr(message, "format", ""), args)
        self._pieces, self._items, self._by_insert = layout.pieces, layout.items, layout.by_insert
        self._layout_error = layout.layout_error
        self.error: str | None = layout.error
        self.has_prefix = layout.has_prefix

    @property
    def _label(self) -> str:
        """The message as errors name it (made when one is raised)."""
        message = self.message
        return (f"{getattr(message, 'guid', '?')} #{getattr(message, 'number', '?')} "
                f"({getattr(message, 'name', '?')})")

    # -- compilation --

    @property
    def markers(self) -> dict[str, str]:
        """The message's ``marker_defaults`` (computed once; do not modify)."""
        return self._markers

    def _fail(self, reason: str) -> FormatError:
        return FormatError(f"{self._label}: {reason}")

    def _plan(self, pointer_size: int) -> _Plan:
        plan = self._plans.get(pointer_size)
        if plan is None:
            if self.error is not None:
                raise self._fail(self.error)
            if pointer_size not in (4, 8):
                raise self._fail(f"pointer size {pointer_size} is not 4 or 8")
            try:
                plan = self._plans[pointer_size] = self._compile(pointer_size)
            except _Unusable as exc:
                self.error = str(exc)  # remembered: later events fail fast with the same reason
                raise self._fail(self.error) from None
        return plan

    def _compile(self, ps: int) -> _Plan:
        # 1. Which inserts use which argument; struct codes (a fast spec picks the signedness).
        uses: dict[int, list[Insert]] = {}
        for p in self._pieces:
            if not isinstance(p, Insert):
                continue
            stars = p.spec.stars if p.spec is not None else 0
            if stars and p.index < 10:
                raise _Unusable(f"%{p.index}: '*' width/precision on a prefix variable")
            if p.index >= 10:
                # FormatMessage: %N!*.*s! reads the width from %N, the precision from %N+1 and
                # the value from the insert after them.
                for n in range(p.index, p.index + stars + 1):
                    if n not in self._by_insert:
                        raise _Unusable(f"the format uses %{n} but no argument has insert {n}")
                    uses.setdefault(self._by_insert[n], []).append(p)
        codes: list[str | None] = []
        fast: dict[int, str] = {}
        for i, it in enumerate(self._items):
            size = it.fixed_size(ps)
            code = None
            if size is not None:
                code = it.struct_code or {4: "I", 8: "Q"}[ps]
                spec_uses = uses.get(i, [])
                if len(spec_uses) == 1 and (it.raw or it.name == "ItemDouble"):
                    ft = fast_template(spec_uses[0].spec, size * 8, ps, is_float=it.name == "ItemDouble")
                    if ft is not None:
                        fast[i], code = ft
            codes.append(code)

        # 2. Decoder: runs of fixed-size arguments share one Struct.
        steps: list[tuple] = []
        run: list[str] = []
        run_items: list[int] = []
        for i, code in enumerate(codes):
            if code is not None:
                run.append(code)
                run_items.append(i)
                continue
            if run:
                steps.append(("fixed", struct.Struct("<" + "".join(run)), tuple(run_items)))
                run, run_items = [], []
            steps.append(("var", self._items[i], i))
        if run:
            steps.append(("fixed", struct.Struct("<" + "".join(run)), tuple(run_items)))
        decode = self._make_decoder(steps, len(self._args), ps)

        # 3. Template parts.
        parts: list[tuple] = []
        for p in self._pieces:
            if isinstance(p, Literal):
                parts.append(("lit", _escape(p.text)))
            elif isinstance(p, Marker):
                if p.name == "END":
                    break
                parts.append(("marker", p.name))
            elif p.index < 10:
                parts.append(("var", p.index, _spec_conv(p.spec, ps)))
            elif p.spec is not None and p.spec.stars:
                by = self._by_insert
                star_args = tuple(by[n] for n in range(p.index, p.index + p.spec.stars + 1))
                iv = star_args[-1]
                ctx = RenderContext(pointer_size=ps, params=tuple(self._args[iv].params),
                                    tmfset=self.tmfset, utc=self.utc)
                parts.append(("arg", star_args, "%s", _star_converter(self._items[iv], p.spec, ctx, star_args)))
            else:
                i = self._by_insert[p.index]
                if i in fast:
                    parts.append(("arg", i, fast[i], None))
                else:
                    ctx = RenderContext(pointer_size=ps, params=tuple(self._args[i].params),
                                        tmfset=self.tmfset, utc=self.utc)
                    conv = self._items[i].converter(p.spec, ctx)
                    if getattr(self.message, "legacy", False) and self._items[i].kind == "text":
                        conv = _quoted(conv)  # old-style #type entries print strings in quotes
                    parts.append(("arg", i, "%s", conv))
        fixed = steps[0][1] if len(steps) == 1 and steps[0][0] == "fixed" else None
        return _Plan(decode, parts, fixed)

    def _bake(self, plan: _Plan, markers: Mapping[Any, Any] | None) -> _Baked:
        out: list[str] = []
        slots: list[tuple[int, Callable | None]] = []
        defaults = self._markers
        for part in plan.parts:
            kind = part[0]
            if kind == "lit":
                out.append(part[1])
            elif kind == "marker":
                name = part[1]
                v = markers.get(name) if markers else None
                if v is None:
                    v = "" if name == "PREFIX" else defaults.get(name, f"!{name}!")
                out.append(_escape(str(v)))
            elif kind == "var":
                v = markers.get(part[1]) if markers else None
                out.append("" if v is None else _escape(part[2](v)))
            else:
                out.append(part[2])
                slots.append((part[1], part[3]))
        direct = (all(c is None for _, c in slots)
                  and [i for i, _ in slots] == list(range(len(self._args))))
        baked = _Baked(markers, "".join(out), slots, direct, plan.fixed)
        baked.star = any(type(i) is tuple for i, _ in slots)
        return baked

    def _make_decoder(self, steps: list[tuple], nargs: int, ps: int) -> Callable:
        label = self._label
        args = self._args
        if not steps:
            return lambda buf: ()
        if len(steps) == 1 and steps[0][0] == "fixed":
            st = steps[0][1]
            size, unpack = st.size, st.unpack_from
            first = args[0]

            def decode_fixed(buf):
                if len(buf) < size:
                    raise FormatError(f"{label}: argument data is {len(buf)} bytes; the "
                                      f"{nargs} fixed-size arguments from {first.item} "
                                      f"{first.name!r} (%{first.insert}) need {size}")
                return unpack(buf)
            return decode_fixed

        # Steps run in argument order, so values are appended, never indexed.
        compiled = []
        for step in steps:
            if step[0] == "fixed":
                compiled.append((True, step[1].size, step[1].unpack_from, step[2][0]))
            else:
                compiled.append((False, step[1]._decode, args[step[2]].item, step[2]))  # the TMF spelling

        def decode_mixed(buf):
            if type(buf) is not bytes:
                buf = bytes(buf)
            values: list[Any] = []
            off = 0
            n = len(buf)
            for fixed, a1, a2, i in compiled:
                if fixed:
                    if off + a1 > n:
                        a = args[i]
                        raise FormatError(f"{label}: argument data ends inside {a.item} {a.name!r} "
                                          f"(%{a.insert}) at offset {off}: needed {a1} bytes, "
                                          f"{max(0, n - off)} available")
                    values.extend(a2(buf, off))
                    off += a1
                else:
                    try:
                        v, off = a1(buf, off, ps, a2)
                    except ItemDecodeError as exc:
                        raise FormatError(f"{label}: argument {args[i].name!r} (%{args[i].insert}): "
                                          f"{exc}") from None
                    values.append(v)
            return values
        return decode_mixed

    # -- per event --

    def format(self, arg_bytes: bytes | memoryview, pointer_size: int = 8,
               markers: Mapping[Any, Any] | None = None) -> str:
        plan = self._plans.get(pointer_size) or self._plan(pointer_size)
        baked = plan.last
        if baked is None or baked.markers is not markers:
            baked = self._baked_for(plan, markers)
        if baked.unpack is not None:  # all arguments fixed-size, printed as decoded
            if len(arg_bytes) < baked.size:
                plan.decode(arg_bytes)  # raises the precise error
            return baked.template % baked.unpack(arg_bytes)
        if baked.constant is not None:
            return baked.constant
        values = plan.decode(arg_bytes)
        if baked.direct:
            return baked.template % (values if type(values) is tuple else tuple(values))
        if baked.star:  # '*' inserts take several values
            return baked.template % tuple([c(values) if type(i) is tuple else
                                           (values[i] if c is None else c(values[i]))
                                           for i, c in baked.slots])
        return baked.template % tuple([values[i] if c is None else c(values[i]) for i, c in baked.slots])

    def _baked_for(self, plan: _Plan, markers: Mapping[Any, Any] | None) -> _Baked:
        baked = plan.baked.get(id(markers))
        if baked is None or baked.markers is not markers:
            baked = self._bake(plan, markers)
            if len(plan.baked) < 16:
                plan.baked[id(markers)] = baked  # holds a reference, so the id stays unique
        plan.last = baked
        return baked

    def decode_args(self, arg_bytes: bytes | memoryview, pointer_size: int = 8) -> list[tuple[str, str, Any]]:
        """[(C expression, item, typed value)] in argument-block order (works even when the format
        string itself is unusable, as long as every item type is known)."""
        names, items = self.arg_names_items()
        return list(zip(names, items, self.decode_values(arg_bytes, pointer_size)))

    def arg_names_items(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The arguments' names (C expressions) and item types, in argument-block order: what
        ``decode_values`` gives the values of."""
        try:
            return self._names_items
        except AttributeError:
            names_items = self._names_items = (tuple(a.name for a in self._args),
                                               tuple(a.item for a in self._args))
            return names_items

    def decode_values(self, arg_bytes: bytes | memoryview, pointer_size: int = 8) -> tuple:
        """The typed values ``decode_args`` pairs with ``arg_names_items()``, as a tuple."""
        if self._layout_error is not None:
            raise self._fail(self._layout_error)
        plan = self._typed.get(pointer_size)
        if plan is None:
            plan = self._typed[pointer_size] = self._typed_plan(pointer_size)
        steps, args, single = plan
        if single is not None and len(arg_bytes) >= single.size:
            return single.unpack_from(arg_bytes)     # one run of plain fixed-size values
        if type(arg_bytes) is not bytes:
            arg_bytes = bytes(arg_bytes)
        if steps is not None:
            # runs of fixed-size arguments in one unpack each, the others item by item
            values, off, end = [], 0, len(arg_bytes)
            for fixed, entries, plain in steps:
                if fixed is not None:
                    if off + fixed.size > end:
                        break                     # short: the item-by-item path says where
                    if plain:                     # typed values are the decoded ones
                        values.extend(fixed.unpack_from(arg_bytes, off))
                    else:
                        for (_name, _item, _it, conv, _a), v in zip(entries,
                                                                    fixed.unpack_from(arg_bytes, off)):
                            values.append(v if conv is None else conv(v))
                    off += fixed.size
                else:
                    _name, _item, it, conv, a = entries
                    try:
                        v, off = it.decode(arg_bytes, off, pointer_size)
                    except ItemDecodeError as exc:
                        raise self._fail(f"argument {a.name!r} (%{a.insert}): {exc}") from None
                    values.append(v if conv is None else conv(v))
            else:
                return tuple(values)
        return self._decode_one_by_one(arg_bytes, pointer_size, args)

    def values_reader(self, pointer_size: int, into: Callable[[tuple], Any] = tuple
                      ) -> Callable[[bytes, int, int], Any]:
        """``decode_values`` of argument blocks inside larger buffers: a function of (buffer,
        offset, size) giving ``into(decode_values(buffer[offset:offset + size], pointer_size))``.
        A block of one run of plain fixed-size values is read in place, not copied."""
        decode = self.decode_values
        single = None
        if self._layout_error is None:
            plan = self._typed.get(pointer_size)
            if plan is None:
                plan = self._typed[pointer_size] = self._typed_plan(pointer_size)
            if plan[0] == ():                  # no arguments: nothing to read
                return lambda buffer, offset, size: into(())
            single = plan[2]
        if single is None:
            def read(buffer: bytes, offset: int, size: int) -> Any:
                return into(decode(buffer[offset:offset + size], pointer_size))
            return read
        unpack, least = single.unpack_from, single.size

        def read_run(buffer: bytes, offset: int, size: int) -> Any:
            if size >= least:
                return into(unpack(buffer, offset))
            return into(decode(buffer[offset:offset + size], pointer_size))  # says what is short
        return read_run

    def _decode_one_by_one(self, arg_bytes: bytes, pointer_size: int, args) -> tuple:
        """decode_values item by item: what a short or damaged block needs to say where."""
        values, off = [], 0
        for _name, _item, it, conv, a in args:
            try:
                v, off = it.decode(arg_bytes, off, pointer_size)
            except ItemDecodeError as exc:
                raise self._fail(f"argument {a.name!r} (%{a.insert}): {exc}") from None
            values.append(v if conv is None else conv(v))
        return tuple(values)

    def _typed_plan(self, ps: int):
        """How decode_values decodes at this pointer size: the steps (runs of fixed-size
        arguments, one Struct each, and the other arguments; None for a pointer size items
        cannot have), per argument (name, item, item type, typing converter or None when the
        decoded value is the typed one, TMF argument), and the Struct that decodes all the
        arguments in one call when they are a single run of such plain values (else None)."""
        args = []
        for a, it in zip(self._args, self._items):
            spec = self._spec_of(a.insert)
            plain = (not (it.raw and spec is not None and spec.conversion in "di")
                     and it.name not in _TYPED_NAMES)
            args.append((a.name, a.item, it, None if plain else
                         (lambda v, it=it, spec=spec: _typed(it, v, spec, ps)), a))
        steps = None
        if ps in (4, 8):
            steps, run, codes = [], [], ""
            for entry in args:
                it = entry[2]
                if it.fixed_size(ps) is not None:
                    run.append(entry)
                    codes += it.struct_code or {4: "I", 8: "Q"}[ps]
                    continue
                if run:
                    steps.append(_fixed_step(codes, run))
                    run, codes = [], ""
                steps.append((None, entry, False))
            if run:
                steps.append(_fixed_step(codes, run))
            steps = tuple(steps)
        single = steps[0][0] if steps is not None and len(steps) == 1 and steps[0][2] else None
        return steps, tuple(args), single

    # -- the C renderer's program --

    def native_ops(self, markers: Mapping[Any, Any] | None = None
                   ) -> tuple[list[tuple[str, int | None, bool]], list[tuple]] | None:
        """(arguments, ops) for the C renderer (:mod:`wpptrace.tmf.native`), printing what
        ``format(data, ps, markers)`` prints; None when only Python prints this message (an
        item type the item table gives no native form, '*' widths, an unusable format)."""
        if self.error is not None:
            return None
        legacy = bool(getattr(self.message, "legacy", False))
        template = self._layout.native_template(self._args, legacy, self.tmfset, self.utc)
        if template is None:
            return None
        args, template = template
        defaults = self._markers
        ops: list[tuple] = []
        for kind, value in template:
            if kind is _OP:
                ops.append(value)
            elif kind is _MARKER:
                v = markers.get(value) if markers else None
                if v is None:
                    v = "" if value == "PREFIX" else defaults.get(value, f"!{value}!")
                ops.append(("lit", str(v)))
            elif kind is _VAR:  # %1..%9 in a message: only markers supply them
                if markers and markers.get(value) is not None:
                    return None
            else:               # an item whose names come from the TMF set's #enumv blocks
                ops.append(_native_insert(self._layout, self._args, value[0], value[1], legacy,
                                          self.tmfset, self.utc))
        return args, ops

    def json_kinds(self) -> list[tuple[str, str, str, int, int]] | None:
        """How the C renderer writes each argument's ``decode_args`` value in JSON: (C
        expression, item, kind, bits of a signed value at pointer size 4, at 8), kinds as in
        ``wpptrace.tmf.native.JSON_KINDS``; None when an argument's value is one only Python
        writes (addresses, SIDs, bytes, ...)."""
        if self._layout_error is not None or not all(it is not None for it in self._items):
            return None
        kinds = []
        for a, it in zip(self._args, self._items):
            spec = self._spec_of(a.insert)
            bits4 = bits8 = 0
            if it.raw and spec is not None and spec.conversion in "di":
                kind, bits4, bits8 = "signed", spec_bits(spec, 4), spec_bits(spec, 8)
            elif it.name in ("ItemGuid", "ItemCLSID", "ItemLIBID", "ItemIID"):
                kind = "guid"
            elif it.kind == "text" and it.wire in ("cstr", "wstr", "pstr", "pwstr"):
                kind = "string"
            elif it.name in _TYPED_NAMES:
                return None
            elif it.raw or it.struct_code in ("B", "H", "I", "Q"):
                kind = "unsigned"
            elif it.struct_code == "q":
                kind, bits4, bits8 = "signed", 64, 64
            elif it.struct_code == "d":
                kind = "double"
            else:
                return None
            kinds.append((a.name, a.item, kind, bits4, bits8))
        return kinds

    def value_layout(self) -> list[tuple[str, int | None, bool, str, int, int]] | None:
        """How C decodes each argument's ``decode_args`` value (``decoder/csrc/wpp_values.h``):
        (wire, size, reduced string, kind, bits of a signed value at pointer size 4, at 8),
        kinds as ``json_kinds`` gives them; None when an argument's value is one only Python
        gives."""
        kinds = self.json_kinds()
        if kinds is None:
            return None
        return [(it.wire, it.size, it.native == "reduced_text", kind, bits4, bits8)
                for it, (_name, _item, kind, bits4, bits8) in zip(self._items, kinds)]

    def _spec_of(self, insert: int) -> Spec | None:
        specs = self.__dict__.get("_specs")
        if specs is None:   # insert -> its first spec, built once (decode_args runs per event)
            specs = self._specs = {}
            for p in self._pieces:
                if isinstance(p, Insert):
                    specs.setdefault(p.index, p.spec)
        return specs.get(insert)


def _native_insert(layout: "_Layout", args: tuple, i: int, spec: Spec | None, legacy: bool,
                   tmfset: Any, utc: bool) -> tuple:
    """The op of the i-th argument's insert with ``spec`` (``MessageFormatter.native_ops``)."""
    it = layout.items[i]
    if it.kind == "raw":
        return _native_int(i, spec)
    flags, width, prec = ("", None, None) if spec is None else (spec.flags, spec.width, spec.precision)
    if it.kind == "text":
        return ("text", i, flags, width, prec, legacy)
    if it.native == "double" and spec is not None and spec.conversion in _FLOATS:
        return ("dbl", i, _FLOAT_AS.get(spec.conversion, spec.conversion), flags, width, prec)
    table = None      # (a context made only for the items that print names)
    if it.native in NAMED_NATIVES:
        table = name_table(it, RenderContext(params=tuple(args[i].params), tmfset=tmfset, utc=utc))
    if spec is None:
        return ("form", i, it.native, table, "", None, None)
    if spec.conversion in _NUMERIC and it.struct_code in ("B", "H", "I", "Q", "q"):
        return _native_int(i, spec)
    return ("form", i, it.native, table, flags, width, prec if spec.conversion in "sSZ" else None)


def _native_template(layout: "_Layout", args: tuple, legacy: bool, tmfset: Any,
                     utc: bool) -> tuple[list, list[tuple]] | None:
    """``native_ops`` without the message's own values: (arguments, [(kind, value)]) with kind
    ``_OP`` (a finished op), ``_MARKER`` (a marker's text), ``_VAR`` (%1..%9, which only
    markers supply) or ``_TABLE`` (an insert naming an #enumv type: the TMF set is asked for
    it when each message compiles, as a file read later may define it); None when only Python
    prints the format."""
    items, by_insert = layout.items, layout.by_insert
    if not all(it is not None and it.native for it in items):
        return None
    for p in layout.pieces:  # what makes the Python plan unusable, wherever it is
        if type(p) is Insert and ((p.spec is not None and p.spec.stars)
                                  or (p.index >= 10 and p.index not in by_insert)):
            return None
    arguments = [(it.wire, it.size, it.native == "reduced_text") for it in items]
    template: list[tuple] = []
    for p in layout.pieces:
        kind = type(p)
        if kind is Literal:
            template.append((_OP, ("lit", p.text)))
        elif kind is Marker:
            if p.name == "END":
                break
            template.append((_MARKER, p.name))
        elif p.index < 10:
            template.append((_VAR, p.index))
        else:
            i = by_insert[p.index]
            it = items[i]
            if it.kind not in ("raw", "text") and it.native not in ("list", "set") and args[i].params:
                template.append((_TABLE, (i, p.spec)))
            else:
                template.append((_OP, _native_insert(layout, args, i, p.spec, legacy, tmfset, utc)))
    return arguments, template


_FLOATS = frozenset("eEfFgGaA")
_FLOAT_AS = {"F": "f", "a": "e", "A": "E"}
_NUMERIC = frozenset("diuxXop")
_LENGTH_BITS = {"": 32, "l": 32, "w": 32, "I32": 32, "h": 16, "hh": 8, "ll": 64, "I64": 64, "q": 64,
                "j": 64, "L": 64}


def _native_int(i: int, spec: Spec | None) -> tuple:
    """The "int" op of an integer argument (as ``cprintf.format_insert`` prints it)."""
    if spec is None:
        return ("int", i, "s", "", None, None, 64)
    conv = spec.conversion
    if conv in "cC":
        conv = "C" if conv == "C" or spec.length in ("l", "w") else "c"
    elif conv in _FLOATS:
        conv = _FLOAT_AS.get(conv, conv)
    elif conv in "SZ":
        conv = "s"
    return ("int", i, conv, spec.flags, spec.width, spec.precision, _LENGTH_BITS.get(spec.length, 0))


def _star_converter(it: ItemType, spec: Spec, ctx: RenderContext,
                    star_args: tuple[int, ...]) -> Callable[[Any], str]:
    """An insert with '*' width and/or precision: those come from the preceding inserts' values
    (read as a C int: a negative width means left-justify, a negative precision none)."""
    iv = star_args[-1]
    iw = star_args[0] if spec.width == "*" else None
    ip = star_args[-2] if spec.precision == "*" else None

    def as_int(v: Any) -> int:
        if not isinstance(v, int):
            return 0
        v &= 0xFFFFFFFF
        return v - (1 << 32) if v >> 31 else v

    def conv(values):
        flags, width, prec = spec.flags, spec.width, spec.precision
        if iw is not None:
            width = as_int(values[iw])
            if width < 0:
                flags, width = flags + "-", -width
            width = min(width, MAX_WIDTH)
        if ip is not None:
            prec = as_int(values[ip])
            prec = None if prec < 0 else min(prec, MAX_WIDTH)
        return it.render(values[iv], Spec(flags, width, prec, spec.length, spec.conversion), ctx)
    return conv


def _quoted(conv: Callable[[Any], str] | None) -> Callable[[Any], str]:
    if conv is None:
        return lambda v: f'"{v}"'
    return lambda v: f'"{conv(v)}"'


def _spec_conv(spec: Spec | None, ps: int) -> Callable[[Any], str]:
    def conv(value):
        return format_insert(value, spec, ps)
    return conv


def _fixed_step(codes: str, run: list) -> tuple:
    """A run of fixed-size arguments for decode_values: (Struct, entries, whether every typed
    value is the decoded one)."""
    return struct.Struct("<" + codes), tuple(run), all(e[3] is None for e in run)


#: item types whose typed value is not the decoded one (see _typed)
_TYPED_NAMES = frozenset(("ItemGuid", "ItemCLSID", "ItemLIBID", "ItemIID", "ItemIPAddr",
                          "ItemIPV6Addr", "ItemPort", "ItemSid", "ItemChar4"))


def _typed(it: ItemType, value: Any, spec: Spec | None, pointer_size: int) -> Any:
    """The argument as a Python value: signed when its insert prints signed, UUID, address ..."""
    if it.raw and isinstance(value, int) and spec is not None and spec.conversion in "di":
        bits = spec_bits(spec, pointer_size)  # as printed: the spec's width of the zero-extended slot
        value &= (1 << bits) - 1
        return value - (1 << bits) if value >> (bits - 1) else value
    if it.name in ("ItemGuid", "ItemCLSID", "ItemLIBID", "ItemIID"):
        import uuid  # (imported by the messages that hold a GUID argument only)

        return uuid.UUID(bytes_le=bytes(value))
    if it.name in ("ItemIPAddr", "ItemIPV6Addr"):
        import ipaddress  # 1 ms to import: only for messages with an address argument

        return (ipaddress.IPv4Address if it.name == "ItemIPAddr" else ipaddress.IPv6Address)(bytes(value))
    if it.name == "ItemPort":
        return ((value & 0xFF) << 8) | (value >> 8)
    if it.name in ("ItemSid", "ItemChar4"):
        return it.render(value, None, RenderContext())
    return value


# the kinds of a native template's entries (MessageFormatter._native_template)
_OP, _MARKER, _VAR, _TABLE = range(4)


class _Layout:
    """What a message's format string and argument list make, whatever the message: messages
    share formats and argument lists (one driver logs the same status line from many
    functions), so each pair is parsed and typed once per process."""

    __slots__ = ("pieces", "items", "by_insert", "error", "layout_error", "has_prefix", "native",
                 "plans")

    def __init__(self, fmt: str, args: tuple) -> None:
        self.error: str | None = None
        try:
            self.pieces = tuple(parse_tmf_format(fmt))
        except FormatSpecError as exc:
            self.pieces = ()
            self.error = f"bad format string: {exc.reason} at column {exc.column}"
        first = self.pieces[0] if self.pieces else None
        self.has_prefix = type(first) is Marker and first.name == "PREFIX"
        items: list[ItemType | None] = []
        self.layout_error = None
        by_insert: dict[int, int] = {}
        for i, a in enumerate(args):
            it = item_type(a.item)
            items.append(it)
            if it is None and self.layout_error is None:
                self.layout_error = f"unknown item type {a.item}: the argument layout cannot be decoded"
            by_insert.setdefault(a.insert, i)
        if self.error is None:
            self.error = self.layout_error
        self.items = tuple(items)
        self.by_insert = by_insert
        self.native: dict[bool, Any] = {}  # legacy -> native template
        self.plans: dict[bool, Any] = {}   # legacy -> ProgramPlan, None or PER_MESSAGE

    def native_template(self, args: tuple, legacy: bool, tmfset: Any, utc: bool):
        """``_native_template`` of this layout, made once (``args``, ``tmfset``, ``utc``: the
        first message's: what the template reads of them is the same for every message)."""
        try:
            return self.native[legacy]
        except KeyError:
            template = self.native[legacy] = _native_template(self, args, legacy, tmfset, utc)
            return template

    def native_plan(self, args: tuple, legacy: bool, tmfset: Any, utc: bool):
        """The ``ProgramPlan`` of this layout's messages, made once; None when only Python
        prints them, ``PER_MESSAGE`` when each needs ``native_ops`` (an #enumv table)."""
        try:
            return self.plans[legacy]
        except KeyError:
            pass
        plan = self.plans[legacy] = _plan_of_steps(self.plan_steps(args, legacy, tmfset, utc))
        return plan

    def plan_steps(self, args: tuple, legacy: bool, tmfset: Any, utc: bool):
        """(arguments, steps) a ``ProgramPlan`` of this layout is made of; None when only
        Python prints its messages, ``PER_MESSAGE`` when each needs ``native_ops``."""
        template = self.native_template(args, legacy, tmfset, utc)
        if template is None:
            return None
        arguments, entries = template
        steps: list[tuple] = []
        for kind, value in entries:
            if kind is _OP:
                steps.append(value)
            elif kind is _MARKER:   # its text, or what native_ops prints without one
                steps.append(("marker", value, "" if value == "PREFIX" else f"!{value}!"))
            elif kind is _TABLE:
                return PER_MESSAGE
            # _VAR: %1..%9 print nothing unless markers supply them, which a TMF
            # message's never do (their keys are names)
        return arguments, steps


_ProgramPlan = None   # the C renderer's (``native.ProgramPlan``): imported when first needed


def _plan_of_steps(made):
    """The ``ProgramPlan`` of ``_Layout.plan_steps``'s (arguments, steps), or what it says
    instead (None, ``PER_MESSAGE``)."""
    global _ProgramPlan
    if made is None or made is PER_MESSAGE:
        return made
    if _ProgramPlan is None:   # an import statement costs 7 K instructions each time it runs
        from .native import ProgramPlan as _ProgramPlan
    try:
        return _ProgramPlan(*made)
    except UnicodeEncodeError:   # text only Python can write
        return None


_LAYOUTS: dict[tuple, _Layout] = {}
_LAYOUT_LIMIT = 100_000
#: id of an argument tuple -> (the tuple, what layouts read of it): messages of one block
#: share the tuple (``wpptrace.tmf.grammar``), and so the key made of it
_ARG_KEYS: dict[int, tuple] = {}


def _layout(fmt: str, args: tuple) -> _Layout:
    try:     # what a layout reads of the arguments (their names are the messages' own)
        found = _ARG_KEYS.get(id(args))
        if found is not None and found[0] is args:
            shape = found[1]
        else:
            shape = tuple([(a.item, a.insert, a.params) for a in args])
            if type(args) is tuple:           # immutable: its shape stays
                if len(_ARG_KEYS) >= _LAYOUT_LIMIT:
                    _ARG_KEYS.clear()
                _ARG_KEYS[id(args)] = (args, shape)   # the tuple held: its id names no other
        key = (fmt, shape)
        layout = _LAYOUTS.get(key)
    except (TypeError, AttributeError):   # argument objects that cannot be keys: not shared
        return _Layout(fmt, args)
    if layout is None:
        if len(_LAYOUTS) >= _LAYOUT_LIMIT:
            _LAYOUTS.clear()
        layout = _LAYOUTS[key] = _Layout(fmt, args)
    return layout


_UNMADE = object()   # a layout's plan not made yet

#: ``native_plan``: the message's program needs ``MessageFormatter.native_ops`` (it names an
#: #enumv table, which the TMF set is asked for when each message compiles)
PER_MESSAGE = "per-message"


def native_plan(message: Any, tmfset: Any = None, utc: bool = False):
    """The ``wpptrace.tmf.native.ProgramPlan`` that every message with this one's format string
    and argument list (and #typev or legacy #type) shares: ``plan.encode`` makes the program
    ``native_ops`` gives, from the message's marker texts, without compiling the message's
    own formatter. None when only Python prints the message (as ``native_ops`` says),
    ``PER_MESSAGE`` when its program is made from ``native_ops`` only."""
    args = message.args
    fmt = message.format
    legacy = bool(message.legacy)
    try:
        found = _ARG_KEYS.get(id(args))   # ``_shape``, inline for a tuple met before
        key = (fmt, found[1] if found is not None and found[0] is args else _shape(args), legacy)
        plan = _PLANS.get(key, _UNMADE)
    except (TypeError, AttributeError):   # argument objects that cannot be keys: not shared
        layout = _Layout(fmt, args)
        return None if layout.error is not None else layout.native_plan(args, legacy, tmfset, utc)
    if plan is _UNMADE:                   # made already: most often
        if len(_PLANS) >= _LAYOUT_LIMIT:
            _PLANS.clear()
        plan = _PLANS[key] = _plan_of_steps(_skeleton_steps(fmt, args, key[1], legacy, tmfset, utc))
    return plan


def _shape(args: tuple) -> tuple:
    """What a layout reads of a message's arguments (their names are the message's own)."""
    found = _ARG_KEYS.get(id(args))
    if found is not None and found[0] is args:
        return found[1]
    shape = tuple([(a.item, a.insert, a.params) for a in args])
    if type(args) is tuple:           # immutable: its shape stays
        if len(_ARG_KEYS) >= _LAYOUT_LIMIT:
            _ARG_KEYS.clear()
        _ARG_KEYS[id(args)] = (args, shape)   # the tuple held: its id names no other
    return shape


#: (format, argument shape, legacy) -> the plan of its messages (``native_plan``)
_PLANS: dict[tuple, Any] = {}
#: (a format's tokens but its literal texts, argument shape, legacy) -> (arguments, steps,
#: where the literal texts go in steps), or what ``_Layout.plan_steps`` says instead (None,
#: PER_MESSAGE); none kept when the layout's literals are not the texts between the tokens
_SKELETONS: dict[tuple, Any] = {}
# Every "%" sequence of a TMF format as ``parse_tmf_format`` reads it, from left to right: an
# insert (%N, %N!spec!, or %N! with no closing "!", which is an error), a marker %!NAME!, %0,
# or an escape (%%, %n, %!, ... a lone "%" at the end): what is between them is literal text.
_FORMAT_TOKENS = LazyPattern(r"(%(?:[1-9][0-9]?(?:![^!]*!|!)?|![A-Za-z_][A-Za-z0-9_]*!|[\s\S]|\Z))")


def _skeleton_steps(fmt: str, args: tuple, shape: tuple, legacy: bool, tmfset: Any, utc: bool):
    """``_Layout.plan_steps`` of a format, made from those of a format that differs from it
    only in its literal texts (formats of one driver share their inserts and markers: a
    status line logged with other words) when one was made, else from the format's layout.

    Formats share a skeleton: their "%" sequences but escapes, in order, with a literal text
    or none between each two, and the messages' argument shape and #type form. The plan
    steps depend on nothing else: a literal text becomes a ("lit", text) step of its own."""
    parts = _FORMAT_TOKENS.split(fmt)
    texts: list[str] = []
    skeleton: list = []
    run = [parts[0]]
    for k in range(1, len(parts), 2):
        token = parts[k]
        ch = token[1:2]
        if ch and ch in "123456789":
            if token[-1] == "!" and token.count("!") == 1:
                skeleton = None       # an unterminated spec: the layout says what is wrong
                break
        elif ch == "0":
            if k != 1 or parts[0]:
                skeleton = None       # %0 ends the text: read by the layout
                break
        elif ch != "!" or len(token) == 2:
            run.append(_FM_ESCAPES.get(ch, ch) if ch else "%")
            run.append(parts[k + 1])
            continue
        text = "".join(run)
        if text:
            texts.append(text)
            skeleton.append(None)
        skeleton.append(token)
        run = [parts[k + 1]]
    if skeleton is not None:
        text = "".join(run)
        if text:
            texts.append(text)
            skeleton.append(None)
        skeleton = (tuple(skeleton), shape, legacy)
        made = _SKELETONS.get(skeleton, _UNMADE)
        if type(made) is tuple:
            arguments, steps, places = made
            steps = list(steps)
            for place, text in zip(places, texts):
                steps[place] = ("lit", text)
            return arguments, steps
        if made is not _UNMADE:
            return made
    layout = _layout(fmt, args)
    made = None if layout.error is not None else layout.plan_steps(args, legacy, tmfset, utc)
    if skeleton is not None and len(_SKELETONS) < _LAYOUT_LIMIT:
        if type(made) is tuple:
            steps = made[1]
            places = [i for i, step in enumerate(steps) if step[0] == "lit"]
            # the layout's literals are the texts found between the tokens: else no skeleton
            if [steps[i][1] for i in places] == texts:
                _SKELETONS[skeleton] = (made[0], tuple(steps), tuple(places))
        else:
            _SKELETONS[skeleton] = made
    return made


_CACHE: dict[tuple[int, int, bool], MessageFormatter] = {}
_CACHE_LIMIT = 200_000


def compile_message(message: Any, tmfset: Any = None, *, utc: bool = False) -> MessageFormatter:
    """The (cached) formatter of ``message``. Never raises: a message whose format cannot be used
    gets a formatter whose ``format`` raises FormatError saying why."""
    key = (id(message), id(tmfset), utc)
    f = _CACHE.get(key)
    if f is None or f.message is not message or f.tmfset is not tmfset:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        f = _CACHE[key] = MessageFormatter(message, tmfset, utc=utc)
    return f


def clear_cache() -> None:
    _CACHE.clear()
    _LAYOUTS.clear()
    _PLANS.clear()
    _SKELETONS.clear()
    _ARG_KEYS.clear()
