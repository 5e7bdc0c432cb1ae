"""The ONE parser of the WPP format-spec language: TMF (FormatMessage) formats and C/tracewpp
source formats, plus the mapping from printf specs to TMF item types.

Two surface syntaxes share one piece model (:class:`Literal`, :class:`Insert`, :class:`Marker`)
and one printf-spec production (:class:`Spec`):

TMF format string (Win32 FormatMessage + WPP markers)::

    tmf_format  ::= { literal | escape | insert | marker | prefix | end }
    insert      ::= "%" INSERT_NO [ "!" printf_spec "!" ]    ; INSERT_NO = 1..99 (at most 2 digits);
                                                              ; no "!spec!" means !s!
    prefix      ::= "%0"                                      ; at position 0: the trace prefix
    end         ::= "%0"                                      ; elsewhere: the message ends here
    marker      ::= "%!" NAME "!"                             ; %!FUNC! %!LEVEL! %!FLAGS! %!COMPNAME! ...
    escape      ::= "%%" | "%n" | "%r" | "%t" | "%." | "%!" | "% " | "%" OTHER   ; OTHER: itself

C / tracewpp source format::

    src_format  ::= { literal | "%%" | conversion | ext }
    conversion  ::= "%" printf_spec
    ext         ::= "%!" NAME "!"            ; a WPP type (STATUS, bool, ...) or a constant (FUNC ...)

Shared printf production::

    printf_spec ::= flags [ width ] [ "." precision ] [ length ] conversion
    flags       ::= { "-" | "+" | " " | "#" | "0" }
    width       ::= DIGITS | "*"             precision ::= [ DIGITS | "*" ]
    length      ::= "I64" | "I32" | "hh" | "ll" | "h" | "l" | "L" | "I" | "w" | "z" | "j" | "t" | "q"
    conversion  ::= "d" | "i" | "u" | "x" | "X" | "o" | "c" | "C" | "s" | "S" | "Z" | "p" | "n"
                  | "e" | "E" | "f" | "F" | "g" | "G" | "a" | "A"

The scanner is a handful of anchored regular expressions (one per production); errors raise
:class:`FormatSpecError` with the column and what was expected.
"""
from __future__ import annotations

import re

from wpptrace._fieldclass import fieldclass, replace

from . import wppini
from .errors import TmfError
from .lazyre import LazyPattern, compiled

__all__ = [
    "FormatSpecError", "Spec", "Literal", "Insert", "Marker", "Piece",
    "parse_spec", "parse_tmf_format", "parse_printf_format", "item_for_spec", "wpp_type_for",
    "printf_to_tmf", "pieces_to_tmf", "WPP_MARKERS",
]

#: Markers tracefmt resolves from the message trailer / event context (never argument data).
WPP_MARKERS = ("FUNC", "LEVEL", "FLAGS", "COMPNAME", "SUBCOMP", "FILE", "LINE")


class FormatSpecError(TmfError):
    """A format string that does not follow the format-spec language (a :class:`TmfError`:
    ``column`` is 1-based in the format text, ``str()`` shows the text with a caret)."""

    def __init__(self, message: str, *, text: str, column: int, expected: str | None = None,
                 path: str = "<format>", line: int = 1) -> None:
        self.text, self.reason = text, message
        super().__init__(message, path=path, line=line, column=column, line_text=text,
                         expected=expected or "")

    def __reduce__(self):
        return (_rebuild_spec_error, (self.reason, self.text, self.column, self.expected, self.path, self.line))


def _rebuild_spec_error(message, text, column, expected, path, line):
    return FormatSpecError(message, text=text, column=column, expected=expected, path=path, line=line)


@fieldclass(frozen=True)
class Spec:
    """A printf conversion spec (without the leading '%')."""

    flags: str = ""
    width: int | str | None = None        # int, "*" or None
    precision: int | str | None = None    # int, "*" or None ("%.d" gives 0, as in C)
    length: str = ""
    conversion: str = "s"

    @property
    def text(self) -> str:
        width = "" if self.width is None else str(self.width)
        prec = "" if self.precision is None else f".{self.precision}"
        return f"{self.flags}{width}{prec}{self.length}{self.conversion}"

    @property
    def stars(self) -> int:
        """How many extra inserts '*' width/precision consume (FormatMessage semantics)."""
        return (self.width == "*") + (self.precision == "*")

    def __str__(self) -> str:
        return self.text


@fieldclass(frozen=True)
class Literal:
    text: str


@fieldclass(frozen=True)
class Insert:
    """A value insert. TMF: ``index`` is the FormatMessage insert number (%10 -> 10).
    Source formats: ``index`` is the 0-based argument position; ``ext`` names a WPP type used as
    ``%!EXT!`` (then ``spec`` is None)."""

    index: int
    spec: Spec | None
    ext: str | None = None


@fieldclass(frozen=True)
class Marker:
    """A WPP marker (%!FUNC! ...), or the pseudo markers PREFIX (a leading %0) and END (%0)."""

    name: str


Piece = Literal | Insert | Marker

_SPEC_RE = compiled(
    r"(?P<flags>[-+ #0]*)"
    # a width does not start with "0" (a flag): else a long run of zeros before a character
    # that fails the spec is split between flags and width every way (quadratic)
    r"(?P<width>\*|[1-9][0-9]*)?"
    r"(?:\.(?P<precision>\*|[0-9]*))?"
    r"(?P<length>I64|I32|hh|ll|h|l|L|I|w|z|j|t|q)?"
    r"(?P<conversion>[diuxXocCsSZpneEfFgGaA])")
_NAME_RE = LazyPattern(r"[A-Za-z_][A-Za-z0-9_]*!")
_INSERT_RE = compiled(r"[0-9]{1,2}")
# Width/precision beyond this are nonsense in a trace format and would make one insert allocate
# a huge string (formats come from untrusted TMF/PDB files).
MAX_WIDTH = 8192

_FM_ESCAPES = {"%": "%", "n": "\n", "r": "\r", "t": "\t", ".": ".", "!": "!", " ": " "}


def _spec_from_match(m: re.Match, text: str, column: int) -> Spec:
    width, prec = m.group("width"), m.group("precision")
    for part in (width, prec):
        if part and part != "*" and (len(part) > 6 or int(part) > MAX_WIDTH):
            raise FormatSpecError("width or precision too large", text=text, column=column,
                                  expected=f"at most {MAX_WIDTH}")
    return Spec(
        flags=m.group("flags"),
        width=None if width is None else (width if width == "*" else int(width)),
        precision=None if prec is None else ("*" if prec == "*" else int(prec or "0")),
        length=m.group("length") or "",
        conversion=m.group("conversion"),
    )


def parse_spec(text: str) -> Spec:
    """Parse one printf spec such as ``08lx`` or ``-10.3s`` (no '%')."""
    m = _SPEC_RE.fullmatch(text)
    if m is None:
        partial = _SPEC_RE.match(text)
        col = partial.end() + 1 if partial else _spec_error_column(text)
        raise FormatSpecError(f"bad printf spec {text!r}", text=text, column=col,
                              expected="[flags][width][.precision][length]conversion")
    return _spec_from_match(m, text, 1)


def _spec_error_column(text: str) -> int:
    m = re.match(r"[-+ #0]*(\*|[0-9]+)?(\.(\*|[0-9]*))?(I64|I32|hh|ll|h|l|L|I|w|z|j|t|q)?", text)
    return (m.end() if m else 0) + 1


def _add_literal(pieces: list[Piece], text: str) -> None:
    if not text:
        return
    if pieces and isinstance(pieces[-1], Literal):
        pieces[-1] = Literal(pieces[-1].text + text)
    else:
        pieces.append(Literal(text))


def parse_tmf_format(fmt: str) -> list[Piece]:
    """Parse a TMF (FormatMessage-style) format string into pieces."""
    pieces: list[Piece] = []
    text: list[str] = []  # literal text since the last piece

    def flush() -> None:
        if text:
            pieces.append(Literal("".join(text)))
            text.clear()

    i, n = 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            text.append(fmt[i:])
            break
        if j > i:
            text.append(fmt[i:j])
        if j + 1 >= n:
            text.append("%")  # FormatMessage copies a trailing lone '%'
            break
        ch = fmt[j + 1]
        if ch == "0":  # insert numbers never start with 0: "%0" is the prefix / end mark
            flush()
            if j == 0:
                pieces.append(_PREFIX_MARK)
                i = 2
                continue
            pieces.append(_END_MARK)
            break
        if "1" <= ch <= "9":  # ASCII only: str.isdigit() also accepts "¹"
            m = _INSERT_RE.match(fmt, j + 1)
            index = int(m.group())
            k = m.end()
            flush()
            if k < n and fmt[k] == "!":
                close = fmt.find("!", k + 1)
                if close < 0:
                    raise FormatSpecError("unterminated insert spec", text=fmt, column=k + 1,
                                          expected="closing '!'")
                body = fmt[k + 1:close]
                spec = _SPECS.get(body)
                if spec is None:
                    sm = _SPEC_RE.fullmatch(body)
                    if sm is None:
                        partial = _SPEC_RE.match(body)
                        col = k + 2 + (partial.end() if partial else _spec_error_column(body) - 1)
                        raise FormatSpecError(f"bad printf spec {body!r} in insert %{index}", text=fmt,
                                              column=col,
                                              expected="[flags][width][.precision][length]conversion")
                    spec = _spec_from_match(sm, fmt, k + 2)
                    if spec.conversion == "Z":  # tracefmt treats !Z! as !s!
                        spec = replace(spec, conversion="s")
                    if len(_SPECS) < 4096:
                        _SPECS[body] = spec
                pieces.append(_insert(index, spec, body))
                i = close + 1
            else:
                pieces.append(_insert(index, None, None))
                i = k
            continue
        if ch == "!":
            m = _NAME_RE.match(fmt, j + 2)
            if m is not None:
                flush()
                name = m.group()[:-1]
                marker = _MARKERS.get(name)
                if marker is None:
                    marker = Marker(name)
                    if len(_MARKERS) < 4096:
                        _MARKERS[name] = marker
                pieces.append(marker)
                i = m.end()
                continue
        text.append(_FM_ESCAPES.get(ch, ch))
        i = j + 2
    flush()
    return pieces


#: marker name -> Marker: pieces are immutable, and TMF formats repeat them
_MARKERS: dict[str, "Marker"] = {}
_PREFIX_MARK, _END_MARK = Marker("PREFIX"), Marker("END")
#: spec text -> Spec, for the specs TMF formats repeat (Spec is immutable)
_SPECS: dict[str, Spec] = {}
#: (index, spec text) -> Insert: pieces are immutable, and TMF formats repeat them
_INSERTS: dict[tuple, "Insert"] = {}


def _insert(index: int, spec: Spec | None, body: str | None) -> "Insert":
    key = (index, body)
    piece = _INSERTS.get(key)
    if piece is None:
        piece = Insert(index, spec)
        if len(_INSERTS) < 4096:
            _INSERTS[key] = piece
    return piece


def parse_printf_format(fmt: str, columns: list[int] | None = None) -> list[Piece]:
    """Parse a C / tracewpp source format (``"x=%d s=%ls st=%!STATUS! %!FUNC!"``) into pieces.
    Inserts are numbered 0, 1, ... in argument order; ``%!NAME!`` is a :class:`Marker` when NAME
    is a WPP constant (FUNC, LEVEL, COMPNAME ...) and an ``Insert(ext=NAME)`` otherwise.
    ``columns``, when given, gets the 1-based column of each insert's and marker's "%", in
    order (what a later error about one of them points at)."""
    pieces: list[Piece] = []
    arg = 0
    i, n = 0, len(fmt)
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            _add_literal(pieces, fmt[i:])
            break
        _add_literal(pieces, fmt[i:j])
        if j + 1 >= n:
            raise FormatSpecError("lone '%' at the end", text=fmt, column=j + 1,
                                  expected="a conversion or %%")
        ch = fmt[j + 1]
        if ch == "%":
            _add_literal(pieces, "%")
            i = j + 2
            continue
        if ch == "!":
            m = _NAME_RE.match(fmt, j + 2)
            if m is None:
                raise FormatSpecError("bad extended type", text=fmt, column=j + 3,
                                      expected="%!NAME!")
            name = m.group()[:-1]
            wtype = wppini.lookup_type(name)
            if name in WPP_MARKERS or name in ("STDPREFIX", "SPACE") or (wtype is not None and wtype.is_constant):
                pieces.append(Marker(name))
            else:
                pieces.append(Insert(arg, None, name))
                arg += 1
            if columns is not None:
                columns.append(j + 1)
            i = m.end()
            continue
        m = _SPEC_RE.match(fmt, j + 1)
        if m is None:
            raise FormatSpecError("bad conversion", text=fmt,
                                  column=j + _spec_error_column(fmt[j + 1:]) + 1,
                                  expected="[flags][width][.precision][length]conversion")
        spec = _spec_from_match(m, fmt, j + 2)
        pieces.append(Insert(arg, spec))
        if columns is not None:
            columns.append(j + 1)
        arg += 1 + spec.stars
        i = m.end()
    return pieces


# -- printf conversion -> WPP type (as tracewpp looks types up: length letters + conversion) --

# Conversions tracewpp has no type for, mapped to the nearest defaultwpp.ini type.
_FALLBACK_TYPES = {
    "i": "d", "I32d": "d", "I32i": "d", "I32u": "u", "I32x": "x", "I32X": "X", "I32o": "o",
    "lli": "lld", "I64i": "I64d", "Ii": "Id", "IX": "IX",
    "hhc": "c",
    "zd": "Id", "zi": "Id", "zu": "Iu", "zx": "Ix", "zX": "IX", "zo": "Io",
    "jd": "lld", "ji": "lld", "ju": "llu", "jx": "llx", "jX": "llX", "jo": "llo",
    "td": "Id", "ti": "Id", "tu": "Iu", "tx": "Ix", "tX": "IX", "to": "Io",
    "qd": "lld", "qu": "llu", "qx": "llx", "qX": "llX",
    "wS": "S", "lS": "S", "hS": "s", "hC": "c", "lC": "C", "wC": "C",
    "F": "f", "a": "e", "A": "E", "Le": "e", "LE": "E", "Lf": "f", "LF": "f", "Lg": "g", "LG": "G",
    "le": "e", "lE": "E", "lf": "f", "lF": "f", "lg": "g", "lG": "G",
}


def wpp_type_for(spec_or_ext: Spec | str, types: dict[str, wppini.WppType] | None = None) -> wppini.WppType:
    """The tracewpp type a printf spec (or an extended type name such as ``STATUS``) selects."""
    if isinstance(spec_or_ext, Spec):
        key = spec_or_ext.length + spec_or_ext.conversion
        if spec_or_ext.conversion == "n":
            raise FormatSpecError("%n writes to memory; WPP has no type for it",
                                  text=spec_or_ext.text, column=len(spec_or_ext.text),
                                  expected="a value conversion")
        wtype = wppini.lookup_type(key, types)
        if wtype is None and spec_or_ext.length == "hh" and spec_or_ext.conversion in "diuxXo":
            # tracewpp has no byte-sized integer conversions; log one byte, print it as a number
            conv = "d" if spec_or_ext.conversion == "i" else spec_or_ext.conversion
            return wppini.WppType(key, "fallback", "char", "ItemChar", (), "hh" + conv, None,
                                  "formatspec:hh")
        if wtype is None and key in _FALLBACK_TYPES:
            wtype = wppini.lookup_type(_FALLBACK_TYPES[key], types)
        if wtype is None:
            raise FormatSpecError(f"no WPP type for %{spec_or_ext.text}",
                                  text=spec_or_ext.text, column=len(spec_or_ext.text),
                                  expected="a conversion known to defaultwpp.ini")
        return wtype
    wtype = wppini.lookup_type(spec_or_ext, types)
    if wtype is None or wtype.is_constant:
        raise FormatSpecError(f"unknown WPP type %!{spec_or_ext}!", text=spec_or_ext, column=1,
                              expected="a type defined in defaultwpp.ini")
    return wtype


def item_for_spec(spec_or_ext: Spec | str, types: dict[str, wppini.WppType] | None = None) -> str:
    """The TMF item (with parameters) tracewpp writes for a printf spec or ``%!EXT!`` type name,
    e.g. ``Spec(conversion='d')`` -> ``ItemLong``, ``'bool'`` -> ``ItemListLong(false,true)``.
    A string is parsed as a spec first when it looks like one (``"08lx"``)."""
    if isinstance(spec_or_ext, str) and wppini.lookup_type(spec_or_ext, types) is None:
        try:
            spec_or_ext = parse_spec(spec_or_ext)
        except FormatSpecError:
            pass
    return wpp_type_for(spec_or_ext, types).item_text


def _tmf_escape(text: str) -> str:
    out = []
    for ch in text:
        if ch == "%":
            out.append("%%")
        elif ch == "\n":
            out.append("%n")
        elif ch == "\r":
            out.append("%r")
        else:
            out.append(ch)
    return "".join(out)


def pieces_to_tmf(pieces: list[Piece]) -> str:
    """Write TMF-format pieces back as a TMF format string (inverse of parse_tmf_format; an
    insert without a spec followed by a digit or '!' is written with an explicit ``!s!``)."""
    out = []
    for k, p in enumerate(pieces):
        if isinstance(p, Literal):
            out.append(_tmf_escape(p.text))
        elif isinstance(p, Marker):
            out.append("%0" if p.name in ("PREFIX", "END") else f"%!{p.name}!")
        elif p.spec is None:
            nxt = pieces[k + 1] if k + 1 < len(pieces) else None
            ambiguous = isinstance(nxt, Literal) and nxt.text[:1] in tuple("0123456789!")
            out.append(f"%{p.index}!s!" if ambiguous else f"%{p.index}")
        else:
            out.append(f"%{p.index}!{p.spec.text}!")
    return "".join(out)


_CONSTANT_TEXT = {"__COMPNAME__": "component", "__FILE__": "file", "__LINE__": "line"}


def printf_to_tmf(fmt: str, *, first_insert: int = 10, std_prefix: bool = False,
                  component: str | None = None, file: str | None = None, line: int | None = None,
                  types: dict[str, wppini.WppType] | None = None) -> tuple[str, list[str]]:
    """Convert a source format to the TMF format string tracewpp writes, plus the item list.

    ``"x=%08lx st=%!STATUS! %!FUNC!"`` -> ``("x=%10!08x! st=%11!s! %!FUNC!", ["ItemLong",
    "ItemNTSTATUS"])``: flags/width/precision are kept, the type's FormatSpec replaces length and
    conversion. ``std_prefix`` prepends ``%0`` (tracewpp's default USEPREFIX). %!COMPNAME!,
    %!FILE!, %!LINE! become text when the values are given, as tracewpp does at build time.
    ``*`` width/precision are not supported by WPP and raise :class:`FormatSpecError`."""
    context = {"component": component, "file": file, "line": None if line is None else str(line)}
    out: list[str] = ["%0"] if std_prefix else []
    items: list[str] = []
    columns: list[int] = []
    pieces = parse_printf_format(fmt, columns)
    column = iter(columns)
    for piece in pieces:
        if isinstance(piece, Literal):
            out.append(_tmf_escape(piece.text))
            continue
        at = next(column)                    # this piece's "%" in fmt
        if isinstance(piece, Marker):
            wtype = wppini.lookup_type(piece.name, types)
            name = "FLAGS" if piece.name == "KEYWORDS" else piece.name
            if name in ("FUNC", "LEVEL", "FLAGS", "SUBCOMP"):
                out.append(f"%!{name}!")
            elif name == "STDPREFIX":
                if out:
                    raise FormatSpecError("%!STDPREFIX! only works at the start", text=fmt,
                                          column=at, expected="%!STDPREFIX! first")
                out.append("%0")
            elif wtype is not None and wtype.format_spec in _CONSTANT_TEXT:
                value = context[_CONSTANT_TEXT[wtype.format_spec]]
                out.append(f"%!{name}!" if value is None else _tmf_escape(value))
            elif wtype is not None:
                out.append(wtype.format_spec)  # SPACE, MOD (%1!s!), TID (%3!x!) ...
            else:
                out.append(f"%!{name}!")
        else:
            if piece.spec is not None and piece.spec.stars:
                raise FormatSpecError("'*' width/precision is not supported by WPP", text=fmt,
                                      column=at + 1 + piece.spec.text.index("*"), expected="a fixed width")
            try:
                wtype = wpp_type_for(piece.spec if piece.ext is None else piece.ext, types)
            except FormatSpecError as error:     # told at the insert's place in the format:
                # its column is in the spec after "%", or in the type name after "%!"
                start = at + (1 if piece.ext is not None else 0)
                raise FormatSpecError(error.reason, text=fmt, column=start + error.column,
                                      expected=error.expected) from None
            tmf_spec = wtype.format_spec
            sp = piece.spec
            if sp is not None and re.fullmatch(r"(I64|I32|I|hh|h|ll|l|w|z|j|t|q|L)?[diuxXocCsSZpeEfFgGaA]", tmf_spec):
                keep_layout = not (tmf_spec == "s" and sp.conversion not in "sSZ")
                if keep_layout:
                    width = "" if sp.width is None else str(sp.width)
                    prec = "" if sp.precision is None else f".{sp.precision}"
                    tmf_spec = f"{sp.flags}{width}{prec}{tmf_spec}"
            out.append(f"%{first_insert + len(items)}!{tmf_spec}!")
            items.append(wtype.item_text)
    if first_insert + len(items) - 1 > 99:
        raise FormatSpecError("more than 99 inserts", text=fmt, column=1, expected="at most 90 arguments")
    return "".join(out), items
