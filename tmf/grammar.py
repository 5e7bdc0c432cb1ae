"""TMF grammar: pyparsing productions for each TMF line, and the block state machine building the model.

The BNF is in docs/tmf-grammar.md; every line production there is one named element here
(``guid_header``, ``typev_line``, ``arg_line``, ``enum_line``, ``enum_value`` ...). A TMF file is
line oriented, so ``parse_into`` classifies each line by its first characters, parses it with its
production (results are cached per line text: tracepdb-appended files repeat every line; the two
hot productions are first tried as one whole-line regex made of the same token patterns), and
drives the block rules (GUID context, ``#typev`` + ``{ ... }``, ``#enumv`` blocks) in plain Python.
Reading lazily, a file is split at the entries written as tracepdb writes them (``scan``);
each stretch of them is left, in one step, for when its messages are looked up, and the rest
is matched a unit at a time (``scan_units``: blank and // lines, GUID headers, entries left
the same way one by one), every other line read as above.
The pyparsing productions are built (and pyparsing imported) the first time a line needs them:
real TMFs are read by the whole-line matchers alone, which keeps start-up short.
"""
from __future__ import annotations

import functools
import re
import sys
from array import array
from itertools import accumulate, compress, repeat

from wpptrace._core import ffi as _ffi, lib as _lib
from wpptrace._fieldclass import fieldclass
from wpptrace._lazyuuid import GuidFromInt, guid_int, uuid_of_int

from .errors import TmfError
from .lazyre import LazyPattern
from .loader import text_lines as _text_lines
from .model import Argument, EnumDef, Message, TmfSet, make_argument, make_message

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import uuid
    from typing import Iterator

__all__ = [
    "guid_header", "typev_line", "arg_line", "enum_line", "enum_value", "block_open", "block_close",
    "comment", "parse_into", "iter_entries", "parse_guid_header", "parse_typev", "parse_arg", "parse_trailer",
    "reads_as_enumerator", "LazyPattern",
]

MAX_MESSAGE_NUMBER = 0xFFFF  # USHORT on the wire
MAX_INSERT = 99  # FormatMessage inserts run %1..%99
MAX_LINE = 65536  # characters; a WPP message is at most 64 KiB, so longer lines are not TMF

# ---------------------------------------------------------------------------------------------
# Tokens: patterns shared by the pyparsing elements and the whole-line fast matchers below
# ---------------------------------------------------------------------------------------------
P_TYPE_KEYWORD = r"#typev?(?=[ \t])"
P_MSG_NAME = r'[^\s"]+'
P_MSG_NO = r"\d+"
P_FORMAT = r'"(?P<format>.*)"(?=[ \t]*(?://|$))'  # greedy: up to the LAST suitable quote
P_TRAILER = r"[^\n]*"
P_ITEM_NAME = r"Item[A-Za-z0-9_]*(?:\[\d+\])?"
P_PARAMS = r"\([^()]*\)"
P_INSERT_MARK = r"--|//"
P_INSERT_NO = r"\d+"
# what follows an argument line's C expression. Each optional part takes the blanks after it:
# two blank runs with only optional parts between would be tried in every split of a long run
# of blanks before a character that fails the line (cubic in the run's length)
_ARG_TAIL = (rf"[ \t]*,[ \t]*{P_ITEM_NAME}[ \t]*(?:{P_PARAMS}[ \t]*)?"
             rf"(?:(?:{P_INSERT_MARK})[ \t]*{P_INSERT_NO}[ \t]*)?$")


# trailer ::= { key_value | word }: one token, split in its parse action (a per-pair pyparsing
# repetition was 70% of the cold parse time). key_value is KEY "=" [VALUE] with the value glued to
# "=" ("MJ= MN=" gives two empty values); a bare word extends the previous value, or the "" key.
_KEY_VALUE = LazyPattern(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)\Z")


@functools.lru_cache(maxsize=8192)  # messages of one function share their trailer
def _trailer_to_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """KEY=VALUE pairs in order; a bare word extends the previous value (or the "" key)."""
    pairs: dict[str, str] = {}
    for token in text.split():   # tracepdb writes KEY=VALUE tokens only: no regex (5x the cost)
        key, equals, value = token.partition("=")
        if not (equals and key.isascii() and key.isidentifier()):
            break
        pairs[key] = value
    else:
        return tuple(pairs.items())
    pairs.clear()
    last = ""
    for token in text.split():
        match = _KEY_VALUE.match(token)
        if match:
            last = match.group(1)
            pairs[last] = match.group(2)
        else:
            pairs[last] = f"{pairs[last]} {token}" if pairs.get(last) else token
    return tuple(pairs.items())


def _enum_int(text: str) -> int:
    negative = text.startswith("-")
    digits = text.lstrip("-")
    value = int(digits[2:], 16) if digits[:2].lower() == "0x" else int(digits, 10)
    value = -value if negative else value
    if value >= 1 << 63:  # DumpEnumsToTMF writes %I64X of a sign-extended value
        value -= 1 << 64
    return value


_PRODUCTIONS = ("guid_header", "typev_line", "arg_line", "enum_line", "enum_value", "block_open",
                "block_close", "comment", "trailer")
_built = False


def _build() -> None:
    """Build the pyparsing productions (importing pyparsing) into this module's namespace."""
    global _built, pp
    if _built:
        return
    import pyparsing as pp

    SLASHES = pp.Suppress(pp.Literal("//")).set_name('"//"')
    LPAR, RPAR, COMMA = map(pp.Suppress, "(),")

    GUID = pp.Regex(
        r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?"
    ).set_name("GUID")
    GUID.set_parse_action(lambda t: uuid_of_int(int(t[0].strip("{}").replace("-", ""), 16)))
    NONSPACE = pp.Regex(r"\S+")

    trailer = pp.Regex(P_TRAILER).set_name("trailer KEY=VALUE pairs")
    trailer.set_parse_action(lambda t: [_trailer_to_pairs(t[0])])

    # ---------------------------------------------------------------------------------------------
    # Line productions (docs/tmf-grammar.md)
    # ---------------------------------------------------------------------------------------------
    comment = pp.Regex(r"//.*").set_name("comment")

    # a blank comes between the GUID and its component ("<guid>ABC" is a GUID with three more
    # digits, not a GUID and a component): the lookbehind sees the character before the token
    component = pp.Regex(r"(?<=\s)(?!//)\S+").set_name("blank, then component name")
    guid_header = (
        GUID("guid") - component("component") - pp.Opt(SLASHES + trailer("trailer")) - pp.StringEnd()
    ).set_name("GUID header line")

    TYPE_KEYWORD = pp.Regex(P_TYPE_KEYWORD).set_name('"#typev"')
    msg_name = pp.Regex(P_MSG_NAME).set_name("message name")
    msg_no = pp.Regex(P_MSG_NO).set_name("message number")
    msg_no.set_parse_action(lambda t: int(t[0]))
    msg_no.add_condition(lambda t: t[0] <= MAX_MESSAGE_NUMBER, message="message number 0..65535", fatal=True)
    # Greedy: the format runs to the LAST '"' that is followed by optional blanks and "//" or the
    # end of the line, so raw inner quotes ("LHS: "%10!s!"") and "http://" in formats survive.
    quoted_format = pp.Regex(P_FORMAT, flags=re.DOTALL).set_name(
        'quoted format string "..."'
    )
    quoted_format.set_parse_action(lambda t: t[0][1:-1])
    typev_line = (
        TYPE_KEYWORD("kind")
        - msg_name("name")
        - msg_no("number")
        - quoted_format("format")
        - pp.Opt(SLASHES + trailer("trailer"))
        - pp.StringEnd()
    ).set_name("#typev line")

    # The C expression is everything before the LAST ", Item" that starts a well-formed tail
    # (expressions contain commas; list parameters may themselves start with "Item"). If no tail is
    # well formed, the loose form splits at the last ", Item" so the error points into the tail.
    arg_expr = (pp.Regex(rf".*\S(?={_ARG_TAIL})") | pp.Regex(r".*\S(?=[ \t]*,[ \t]*Item)")).set_name(
        "C expression followed by \", Item<Type>\""
    )
    # legacy "ItemCharHidden[N]" keeps its "[N]" in the name (an unknown type to the type table)
    item_name = pp.Regex(P_ITEM_NAME).set_name("Item<Type> name")
    param = pp.Regex(r"[^,()]*").set_name("parameter")
    param.set_parse_action(lambda t: t[0].strip())
    item_params = (LPAR - pp.Opt(pp.DelimitedList(param, allow_trailing_delim=False)) - RPAR).set_name(
        "Item parameters (...)"
    )
    item_params.set_parse_action(lambda t: [tuple(t)])
    insert_no = pp.Regex(P_INSERT_NO).set_name("insert number")
    insert_no.set_parse_action(lambda t: int(t[0]))
    insert_no.add_condition(lambda t: 1 <= t[0] <= MAX_INSERT, message="insert number 1..99", fatal=True)
    insert_clause = (pp.Suppress(pp.Regex(P_INSERT_MARK)) - insert_no("insert")).set_name('"-- N" insert number')
    arg_line = (
        arg_expr("expr") + COMMA - item_name("item") - pp.Opt(item_params("params")) - pp.Opt(insert_clause)
        # named so errors say what may follow the item name, not pyparsing's "end of text"
        - pp.StringEnd().set_name('"-- N" insert number or end of line')
    ).set_name("argument line \"<expr>, Item<Type> -- <N>\"")

    enum_line = (pp.Regex(r"#enumv(?=[ \t])").suppress() - NONSPACE("name") - pp.StringEnd()).set_name(
        "#enumv line"
    )
    enumerator = pp.Regex(r"[^\s,]+").set_name("enumerator name")
    enum_number = pp.Regex(r"-?(?:0[xX][0-9A-Fa-f]+|[0-9]+)").set_name("enumerator value (0x... or decimal)")
    enum_number.set_parse_action(lambda t: _enum_int(t[0]))
    enum_value = (enumerator("name") + COMMA - enum_number("value") - pp.StringEnd()).set_name(
        'enum value line "<Name>,0x<HEX>"'
    )
    block_open = (pp.Literal("{") - pp.StringEnd()).set_name('"{" line')
    block_close = (pp.Literal("}") - pp.StringEnd()).set_name('"}" line')

    # Tabs are data (a format string may hold one): never let pyparsing expand them.
    for _production in (guid_header, typev_line, arg_line, enum_line, enum_value, block_open, block_close, trailer):
        _production.parse_with_tabs()
    globals().update({name: value for name, value in locals().items() if name != "_production"})
    _built = True


def __getattr__(name: str):
    if name in _PRODUCTIONS or name in ("GUID", "SLASHES", "arg_expr", "item_name", "item_params",
                                        "insert_clause", "quoted_format", "msg_no", "msg_name"):
        _build()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_GUID_START = LazyPattern(r"\{?[0-9A-Fa-f]{8}-")  # the line-by-line reader's


# ---------------------------------------------------------------------------------------------
# Line parsers: production -> plain tuples, cached per line text
# ---------------------------------------------------------------------------------------------
class _LineError(Exception):
    """A production failed on one line: 0-based offset in the line, message, expected text."""

    def __init__(self, offset: int, message: str, expected: str) -> None:
        super().__init__(message)
        self.offset, self.message, self.expected = offset, message, expected


def _one(result: pp.ParseResults, name: str, default: object) -> object:
    """The single value named ``name`` (pyparsing wraps names set on repetitions in a list)."""
    value = result.get(name, default)
    return value[0] if isinstance(value, pp.ParseResults) else value


def _run(name: str, text: str, what: str) -> pp.ParseResults:
    """Parse ``text`` with the production ``name`` (raises _LineError)."""
    _build()
    production = globals()[name]
    if len(text) > MAX_LINE:
        raise _LineError(MAX_LINE, f"bad {what}: line longer than {MAX_LINE} characters",
                         f"at most {MAX_LINE} characters per line")
    try:
        return production.parse_string(text)
    except pp.ParseBaseException as err:
        expected = err.msg[len("Expected "):] if err.msg.startswith("Expected ") else ""
        found = text[err.loc:err.loc + 20] if err.loc < len(text) else "end of line"
        expected = expected or err.msg  # conditions are worded as what was expected
        raise _LineError(err.loc, f"bad {what}: expected {expected}, found {found!r}", expected) from None


@fieldclass(frozen=True)
class GuidHeader:
    guid: uuid.UUID
    component: str
    trailer: tuple[tuple[str, str], ...]


# read by the fast matcher, a header holds its GUID as an int until it is read: the messages
# under it are keyed by that int (``uuid`` is not imported by a run that makes no UUID)
GuidHeader.guid = GuidFromInt()


@fieldclass(frozen=True)
class TypevLine:
    legacy: bool
    name: str
    number: int
    format: str
    trailer: tuple[tuple[str, str], ...]


# Whole-line fast matchers for the two hot productions. They accept a subset of what
# ``typev_line`` / ``arg_line`` accept (pyparsing's default whitespace " \t\r\n" between tokens, the
# same token patterns) and give the same result; anything else, including every error, goes
# through the pyparsing production. tests/tmf/test_properties.py checks the two agree. As in
# ``_ARG_TAIL``, an optional part takes the blanks after it (no two blank runs meet).
_WS = r"[ \t\r\n]"
_FAST_TYPEV = LazyPattern(
    rf"(?P<kind>{P_TYPE_KEYWORD}){_WS}*(?P<name>{P_MSG_NAME}){_WS}+(?P<number>{P_MSG_NO}){_WS}*"
    rf"{P_FORMAT}{_WS}*(?://(?P<trailer>{P_TRAILER}){_WS}*)?\Z",
    re.DOTALL,
)
_FAST_ARG = LazyPattern(
    rf"{_WS}*(?P<expr>.*\S)(?={_ARG_TAIL})[ \t]*,{_WS}*(?P<item>{P_ITEM_NAME}){_WS}*"
    rf"(?:(?P<params>{P_PARAMS}){_WS}*)?(?:(?:{P_INSERT_MARK}){_WS}*(?P<insert>{P_INSERT_NO}){_WS}*)?\Z"
)


_FAST_GUID_HEADER = LazyPattern(
    rf"(?P<guid>\{{?[0-9A-Fa-f]{{8}}-[0-9A-Fa-f]{{4}}-[0-9A-Fa-f]{{4}}-[0-9A-Fa-f]{{4}}-[0-9A-Fa-f]{{12}}"
    # a closing brace is the GUID's, never the start of a component (taken atomically: else
    # "{GUID}//x" would match with "}//x" as its component, where the production refuses it)
    rf"(?=(?P<close>\}}?))(?P=close))"
    # the component is taken whole, as the pyparsing token takes it (no backtracking into it:
    # a lookahead capture, then a backreference, is an atomic group that works on every Python)
    rf"{_WS}+(?!//)(?=(?P<component>\S+))(?P=component){_WS}*(?://(?P<trailer>{P_TRAILER}){_WS}*)?\Z"
)
_FAST_ENUM_LINE = LazyPattern(rf"#enumv[ \t]{_WS}*(?P<name>\S+){_WS}*\Z")
_FAST_ENUM_VALUE = LazyPattern(
    rf"(?P<name>[^\s,]+){_WS}*,{_WS}*(?P<value>-?(?:0[xX][0-9A-Fa-f]+|[0-9]+)){_WS}*\Z"
)


def _guid_header_fast(text: str) -> GuidHeader | None:
    fast = _FAST_GUID_HEADER.match(text) if len(text) <= MAX_LINE else None
    if fast is None:
        return None
    header = object.__new__(GuidHeader)
    header.__dict__.update(_guid_int=int(fast["guid"].strip("{}").replace("-", ""), 16),
                           component=fast["component"],
                           trailer=_trailer_to_pairs(fast["trailer"] or ""))
    return header


def _guid_header_full(text: str) -> GuidHeader:
    result = _run("guid_header", text, "GUID header line")
    return GuidHeader(result["guid"], result["component"], _one(result, "trailer", ()))


@functools.lru_cache(maxsize=8192)
def parse_guid_header(text: str) -> GuidHeader:
    return _guid_header_fast(text) or _guid_header_full(text)


def _typev_fast(text: str) -> TypevLine | None:
    fast = _FAST_TYPEV.match(text) if len(text) <= MAX_LINE else None
    if fast is None or int(fast["number"]) > MAX_MESSAGE_NUMBER:
        return None
    kind, name, number, fmt, trailer = fast.group("kind", "name", "number", "format", "trailer")
    line = object.__new__(TypevLine)  # as make_message builds a Message: no frozen setattr per field
    line.__dict__.update(legacy=kind == "#type", name=name, number=int(number), format=fmt,
                         trailer=_trailer_to_pairs(trailer or ""))
    return line


def _typev_full(text: str) -> TypevLine:
    result = _run("typev_line", text, "#typev line")
    return TypevLine(
        result["kind"] == "#type", result["name"], result["number"], result["format"], _one(result, "trailer", ())
    )


@functools.lru_cache(maxsize=65536)
def parse_typev(text: str) -> TypevLine:
    """One #typev/#type line (raises _LineError with the position and what was expected)."""
    return _typev_fast(text) or _typev_full(text)


ArgTuple = tuple[str, str, tuple[str, ...], "int | None"]


def _arg_fast(text: str) -> ArgTuple | None:
    fast = _FAST_ARG.match(text) if len(text) <= MAX_LINE else None
    if fast is None or (fast["insert"] is not None and not 1 <= int(fast["insert"]) <= MAX_INSERT):
        return None
    params = fast["params"]
    return (fast["expr"].strip(), fast["item"],
            tuple(p.strip() for p in params[1:-1].split(",")) if params is not None else (),
            int(fast["insert"]) if fast["insert"] is not None else None)


def _arg_full(text: str) -> ArgTuple:
    result = _run("arg_line", text, "argument line")
    return result["expr"].strip(), result["item"], _one(result, "params", ()), result.get("insert")


@functools.lru_cache(maxsize=65536)
def parse_arg(text: str) -> ArgTuple:
    """(expression, item, params, insert or None) of one argument line."""
    return _arg_fast(text) or _arg_full(text)


def parse_trailer(text: str) -> dict[str, str]:
    """KEY=VALUE pairs of a trailer text (the part after "//")."""
    _build()
    return dict(trailer.parse_string(text.replace("\n", " "), parse_all=True)[0])


def _parse_enum_value(text: str) -> tuple[str, int]:
    fast = _FAST_ENUM_VALUE.match(text) if len(text) <= MAX_LINE else None
    if fast is not None:
        return fast["name"], _enum_int(fast["value"])
    result = _run("enum_value", text, "enum value line")
    return result["name"], result["value"]


def reads_as_enumerator(name: str) -> bool:
    """Is the line ``<name>,0x<value>`` read back as enumerator ``name`` inside an #enumv block?
    The block reader's steps for a line: one that ends the block ("#...", a GUID), a comment
    ("//..."), else an enum value line."""
    line = f"{name},0x0"
    if line != line.strip() or _ends_block(line) or line.startswith("//"):
        return False
    try:
        return _parse_enum_value(line)[0] == name
    except _LineError:
        return False


def _parse_enum_line(text: str) -> str:
    fast = _FAST_ENUM_LINE.match(text) if len(text) <= MAX_LINE else None
    return fast["name"] if fast is not None else _run("enum_line", text, "#enumv line")["name"]


# ---------------------------------------------------------------------------------------------
# The block state machine
# ---------------------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    # LF, CRLF and a CR alone (str.splitlines also splits on \x0b, \x1c, U+2028 ... and would
    # shift line numbers); the lazy reader splits texts without a CR only
    return _text_lines(text)


def _ends_block(line: str) -> bool:
    """A line that cannot be inside a block: a new entry or header (the "}" is missing)."""
    stripped = line.lstrip()
    return stripped.startswith("#") or (_GUID_START.match(stripped) is not None and ", Item" not in stripped)


#: the message number of a well-formed #typev line (where ``skim`` reads it)
_SKIM_TYPEV = LazyPattern(r"#typev?[ \t]+[^\s\"]+[ \t]+(\d+)[ \t]")

# What ``scan_units`` matches at the start of a line: a subset of what ``step`` and ``skim``
# accept, read the same way. Blanks are spaces and tabs only and every line ends with "\n" ("."
# is any character but "\n": ``scan`` takes only texts without "\r"); str.strip() removes more,
# and anything else takes the line-by-line path.
_FAST_UNIT = LazyPattern(
    # blank and // comment lines
    r"(?P<blank>(?:[ \t]*(?://.*)?\n)+)"
    # a GUID header line (``step`` reads it)
    r"|(?P<header>[ \t]*\{?[0-9A-Fa-f]{8}-.*\n)"
    # a message entry as ``skim`` defers it: one #typev line with its number (a quoted format
    # after it: checked by ``scan_units``), "{", lines that do not end a block (no "#", "{",
    # "}" or GUID at their start), "}"
    r'|(?P<entry>(?P<typev>[ \t]*#typev?[ \t]+[^\s"]+[ \t]+(?P<number>\d{1,5})[ \t].*\n)'
    r"[ \t]*\{[ \t]*\n"
    r"(?:[ \t]*(?:\n|(?=[^\s#{}])(?![0-9A-Fa-f]{8}-).*\n))*"
    r"[ \t]*\}[ \t]*\n)"
)
# What ``scan`` splits a text at (a tile): an entry as tracepdb writes it (single spaces,
# nothing but printable ASCII in the name and at the start of a line of the block) with the //
# and empty lines after it; a subset of what ``_FAST_UNIT`` matches and ``scan_units`` defers
# (the two quotes it counts are after the number). Groups: the #typev line, its number, the
# rest. Other entries are left to ``_FAST_UNIT``: each token less in this pattern makes every
# entry cheaper, and with the literal "#type" first the split does not try every character.
# Where the re module has atomic groups and possessive repeats (3.11), ``second_quote`` finds the
# line's last quote once and ``once`` ("+") makes the block's repeats give back no line they
# took; no line given back could end the tile otherwise, so the matches are those of the 3.10
# forms, whose look-ahead also keeps a failing line of many quotes from being tried at each.
# An ASCII text is split so in C (``tile_split``, tmf/csrc/wpptile.c): this pattern is the reference.
_TILE_PATTERN = (
    r'(#type(?<![^\n]#type)v? [!#-~]+ ([0-9]{{1,5}}) {second_quote}.*\n)'  # at a line start
    # no "#", "{{", "}}" or GUID starts a line of the block (only a hex digit is looked past)
    r'(\{{\n(?:[!"$-/:-@G-Z\[-`g-z|~].*\n|[0-9A-Fa-f](?![0-9A-Fa-f]{{7}}-).*\n)*{once}\}}\n'
    r"(?://.*\n|\n)*{once})"
)
_TILE_FORMS = {"3.10": {"second_quote": '"(?=.*")', "once": ""},
               "3.11": {"second_quote": '(?>".*")', "once": "+"}}
_TILE = LazyPattern(_TILE_PATTERN.format(**_TILE_FORMS["3.11" if sys.version_info >= (3, 11) else "3.10"]))
_NEWLINE = LazyPattern("\n")


class _Deferred:
    """A message entry left unparsed by ``skim``: parsed the first time one of its messages is
    looked up (``messages()``: its messages, errors reported then)."""

    __slots__ = ("lines", "index", "context", "parsed")

    def __init__(self, parser: "_Parser", lines: list[str], index: int) -> None:
        self.lines, self.index = lines, index
        self.context = parser.context()
        self.parsed: list[Message] | None = None

    def messages(self, tmfset: TmfSet) -> list[Message]:
        if self.parsed is None:
            self.parsed = _parse_entry(tmfset, self.context, self.lines, self.index)
            self.lines = None
        return self.parsed


def _parse_entry(tmfset: TmfSet, context: tuple, lines: list[str], index: int) -> list[Message]:
    """The messages of the entry at ``lines[index]`` (``_Parser.message``, problems reported)."""
    path, tolerant, priority, header, source_file = context
    parser = _Parser(tmfset, path, tolerant, priority)
    parser.header, parser.source_file = header, source_file
    parser.unit = index + 1         # parsed when looked up: by some processes of a run only
    collected: list[Message] = []
    parser.emit = lambda message, priority: collected.append(message)
    parser.message(lines, index)
    return collected


class _ScannedText:
    """A text ``scan`` read: its lines and their offsets, made the first time something reads
    it line by line."""

    __slots__ = ("text", "_lines", "_starts")

    def __init__(self, text: str, lines: list[str] | None = None) -> None:
        self.text, self._lines = text, lines
        self._starts: list[int] | None = None

    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = _lines(self.text)
        return self._lines

    def starts(self) -> list[int]:
        """The offset of each line."""
        if self._starts is None:
            self._starts = [0, *(m.end() for m in _NEWLINE.finditer(self.text))]
        return self._starts


class _ScannedRun:
    """Entries ``scan`` matched one after the other, deferred together (``TmfSet.defer_run``).
    ``pieces`` are the split's pieces from the first entry on (#typev line, number, block with
    the // and empty lines after it, "" between two entries), ``start`` the offset of the first
    entry in ``source``."""

    __slots__ = ("source", "pieces", "start", "context", "_lines_before")

    def __init__(self, source: _ScannedText, pieces: list[str], start: int, context: tuple) -> None:
        self.source, self.pieces, self.start, self.context = source, pieces, start, context
        self._lines_before: list[int] | None = None

    def messages(self, i: int, tmfset: TmfSet) -> list[Message]:
        """The messages of the i-th entry, parsed now (the set asks once for each entry)."""
        index = (self._lines_before or self._count_lines())[i] + i   # ``line_index``, inline
        return _run_entry(self.pieces[4 * i], self.pieces[4 * i + 2], self, index, tmfset)

    def line_index(self, i: int) -> int:
        """The index of the i-th entry's #typev line in ``source``."""
        return (self._lines_before or self._count_lines())[i] + i

    def _count_lines(self) -> list[int]:
        """For each entry, the lines before it but those of #typev lines (one each): counted
        once a lookup needs a line number, in the blocks only (the #typev lines are long)."""
        first = self.source.text.count("\n", 0, self.start)
        self._lines_before = list(accumulate(map(str.count, self.pieces[2::4], repeat("\n")),
                                             initial=first))
        return self._lines_before


class _SpannedRun(_ScannedRun):
    """A ``_ScannedRun`` of a split made as lengths (``tile_split``): ``pieces`` are the lengths
    of its pieces (#typev line, block, 0 between two entries), and an entry's pieces are cut
    from the text when it is looked up, none before."""

    __slots__ = ("_offsets",)

    def messages(self, i: int, tmfset: TmfSet) -> list[Message]:
        index = (self._lines_before or self._count_lines())[i] + i
        offsets, text = self._offsets, self.source.text
        start, block, end = offsets[3 * i:3 * i + 3]
        # (wppt_split ends every tile's block with a "}" line: tmf/csrc/wpptile.c tile_at)
        return _run_entry(text[start:block], text[block:end], self, index, tmfset)

    def _count_lines(self) -> list[int]:
        """``_ScannedRun._count_lines``, and the offsets of the entries' pieces."""
        text = self.source.text
        self._offsets = offsets = list(accumulate(self.pieces, initial=self.start))
        self._lines_before = list(accumulate(map(text.count, repeat("\n"), offsets[1::3], offsets[2::3]),
                                             initial=text.count("\n", 0, self.start)))
        return self._lines_before


def _run_entry(typev_line: str, block: str, run: _ScannedRun, index: int,
               tmfset: TmfSet) -> list[Message]:
    """The messages of an entry of a run, from its #typev line and block (with the // and
    empty lines after it), at line ``index``."""
    # a block line starts with neither blanks nor "}": the first "\n}\n" closes it
    body = block[2:block.find("\n}\n")]
    args = _BLOCKS.get(body)     # most often: a block text met before
    if args is None:
        args = _block_arguments(body)
    if args is not None:
        message = _tile_message(typev_line, args, run.context, index)
        if message is not None:
            return [message]
    lines = block.split("\n")
    # between "{" and "}": the // and empty lines after "}", if any, are not the entry's
    block = lines[1:-2] if lines[-2] == "}" else lines[1:lines.index("}")]
    return (_scanned_messages(typev_line, block, run.context, index)
            or _parse_entry(tmfset, run.context, run.source.lines(), index))


class _Scanned:
    """A message entry ``scan_units`` matched (its text ``source.text[start:end]`` from line
    ``index``: one #typev line, "{", lines none of which ends the block, "}"), parsed the first
    time one of its messages is looked up."""

    __slots__ = ("source", "start", "end", "index", "context", "parsed")

    def __init__(self, source: _ScannedText, start: int, end: int, index: int, context: tuple) -> None:
        self.source, self.start, self.end, self.index, self.context = source, start, end, index, context
        self.parsed: list[Message] | None = None

    def messages(self, tmfset: TmfSet) -> list[Message]:
        if self.parsed is None:
            lines = self.source.text[self.start:self.end].split("\n")  # it ends with a newline
            parsed = _scanned_messages(lines[0], lines[2:-2], self.context, self.index)
            if parsed is None:
                parsed = _parse_entry(tmfset, self.context, self.source.lines(), self.index)
            self.parsed, self.source = parsed, None
        return self.parsed


def _scanned_messages(typev_line: str, block: list[str], context: tuple,
                      index: int) -> list[Message] | None:
    """The message of an entry a scan matched, from its #typev line, the lines between "{" and
    "}", the reader's context and the line index of the #typev line; None if a line does not
    parse (``_Parser.message`` then reports it as reading the file line by line would)."""
    try:
        typev = parse_typev(typev_line.strip())
        args: list[Argument] = []
        for line in block:
            stripped = line.strip()
            if stripped and not stripped.startswith("//"):
                args.append(_argument(stripped, len(args)))
    except _LineError:
        return None
    path, _tolerant, _priority, header, source_file = context
    return [_entry_message(header, source_file, f"{path}:{index + 1}", typev, tuple(args))]


def _tile_message(typev_line: str, args: tuple, context: tuple, index: int) -> Message | None:
    """The message of an entry a tile matched, from its #typev line (single spaces before
    the quoted format: the tile's), its arguments, the reader's context and the line index
    of the #typev line: what ``parse_typev`` and ``_entry_message`` make, the format found
    as ``_FAST_TYPEV`` finds it (up to the last quote, then blanks and "//" or nothing);
    None for a line whose format ends otherwise (``parse_typev`` reads it)."""
    text = typev_line.strip()
    kind, name, number, rest = text.split(" ", 3)
    end = rest.rfind('"')
    after = rest[end + 1:].lstrip(" \t")
    if end <= 0 or (after and after[:2] != "//") or len(text) > MAX_LINE:
        return None
    number = int(number)
    if number > MAX_MESSAGE_NUMBER:
        return None
    path, _tolerant, _priority, header, source_file = context
    return make_message(guid_int(header), number, name, rest[1:end], args,
                        dict(_trailer_to_pairs(after[2:])), header.component, source_file,
                        f"{path}:{index + 1}", kind == "#type")


#: the lines between "{" and "}" of a block -> its arguments (immutable: messages share them)
_BLOCKS: dict[str, tuple] = {}


def _block_arguments(body: str) -> tuple[Argument, ...] | None:
    """The arguments of the lines between "{" and "}" of an entry's block (// lines and blank
    ones skipped); None when a line does not parse (the entry is then read line by line)."""
    args = _BLOCKS.get(body)
    if args is None:
        found: list[Argument] = []
        try:
            for line in body.split("\n") if body else ():
                stripped = line.strip()
                if stripped and not stripped.startswith("//"):
                    found.append(_argument(stripped, len(found)))
        except _LineError:
            return None
        args = tuple(found)
        if len(_BLOCKS) < 65536:
            _BLOCKS[body] = args
    return args


#: a line the whole-line matcher refuses, past the file's issue cap: only counted, so the
#: pyparsing production is not run to say what is wrong with it
_NOT_SHOWN = _LineError(0, "bad argument line", "")


def _argument(text: str, count: int, quick: bool = False) -> Argument:
    """The argument of a stripped argument line, the ``count``-th of its block (its insert
    defaults to 10 + count). ``quick``: the whole-line matcher only (every line it refuses,
    the production refuses too), raising ``_NOT_SHOWN`` for a bad line."""
    parsed = _arg_fast(text) if quick else parse_arg(text)
    if parsed is None:
        raise _NOT_SHOWN
    expr, item, params, insert = parsed
    return make_argument(expr, item, params, insert if insert is not None else 10 + count)


def _entry_message(header, source_file: str, where: str, typev: TypevLine,
                   args: tuple) -> Message:
    """The message of a #typev line of an entry under a GUID header (``where``: path:line)."""
    return make_message(guid_int(header), typev.number, typev.name, typev.format, args,
                        dict(typev.trailer), header.component, source_file, where, typev.legacy)


class _Parser:
    def __init__(self, tmfset: TmfSet, path: str, tolerant: bool, priority: int = 0,
                 lazy: bool = False, bad_lines: dict[int, tuple[int, int, bool]] | None = None) -> None:
        self.tmfset = tmfset
        # lines the loader found a control character in, each replaced by "#" (``loader.binary_lines``):
        # line index -> (column, character code, whether it was a GUID header)
        self.bad_lines = bad_lines or {}
        self.lazy = lazy
        self.priority = priority
        self.emit = tmfset.add_message  # where finished messages go: (message, priority)
        self.path = path
        self.tolerant = tolerant
        self.header: GuidHeader | None = None
        self.source_file = ""
        self.unit = 0       # where problems are counted (``TmfSet.issue_counts``): the file
        # a problem was only counted (past the file's issue cap): so is every later one, as
        # lines come in order, and a bad argument line is then not asked what is wrong with it
        self.capped = False

    def error(self, lineno: int, line: str, offset: int, message: str, expected: str) -> None:
        if self.tolerant and not self.tmfset.issue_room(self.path, lineno, offset + 1):
            self.tmfset.drop_issue(self.path, unit=self.unit)   # counted only: not worth its TmfError
            self.capped = True
            return
        err = TmfError(message, path=self.path, line=lineno, column=offset + 1, line_text=line, expected=expected)
        if not self.tolerant:
            raise err
        self.tmfset.add_issue(err, self.unit)

    def line_error(self, lineno: int, line: str, err: _LineError) -> None:
        self.error(lineno, line, err.offset + (len(line) - len(line.lstrip())), err.message, err.expected)

    def context(self) -> tuple:
        """What parsing an entry later needs of the reader now."""
        return (self.path, self.tolerant, self.priority, self.header, self.source_file)

    def run(self, text: str) -> None:
        if self.lazy and "\r" not in text:
            self.scan(text)
            return
        lines = _lines(text)
        index = 0
        while index < len(lines):
            index = self.step(lines, index)

    def scan(self, text: str) -> None:
        """``run`` for lazy parsing of a text without "\r": the text is split at the entries
        ``scan_units`` would defer (``split_text``); each
        stretch of them is deferred in one step (``TmfSet.defer_run``: no per-entry work
        until a lookup), and ``scan_units`` reads the rest. Where that reading runs past the
        rest into a stretch, or a stretch cannot be deferred as it stands, ``scan_units``
        reads on to the end."""
        source = _ScannedText(text)
        numbers, pieces, lengths = split_text(text)
        # rest, #typev line, number, block, rest, ..., rest; or their lengths (no number)
        rests = pieces[0::4] if pieces is not None else lengths[0::3]
        pos = first = 0   # the offset read next; the first entry not read
        counted = index = 0   # the lines before offset ``counted``: ``scan_units`` needs them
        context = None
        for rest in (*compress(range(len(rests)), rests), None):
            last = len(numbers) if rest is None else rest   # entries first .. last - 1
            if last > first:
                run = numbers[first:last]
                if self.header is None or max(run) > MAX_MESSAGE_NUMBER:
                    self.scan_units(source, pos, index + text.count("\n", counted, pos), len(text))
                    return
                if context is None or context[3] is not self.header:
                    context = self.context()
                if pieces is not None:
                    entries = pieces[4 * first + 1:4 * last]
                    deferred = _ScannedRun(source, entries, pos, context)
                else:
                    entries = lengths[3 * first + 1:3 * last]
                    deferred = _SpannedRun(source, entries, pos, context)
                self.tmfset.defer_run(guid_int(self.header), run, deferred, self.priority)
            if rest is None:
                return
            if last > first:
                pos += (sum(map(len, entries[0::4])) + sum(map(len, entries[2::4])) if pieces is not None
                        else sum(entries))
            end = pos + (len(rests[rest]) if pieces is not None else rests[rest])
            pos, index = self.scan_units(source, pos, index + text.count("\n", counted, pos), end)
            counted = pos
            if pos > end:
                self.scan_units(source, pos, index, len(text))
                return
            first = rest

    def scan_units(self, source: _ScannedText, pos: int, index: int, end: int) -> tuple[int, int]:
        """Read ``source.text`` from offset ``pos`` (line ``index``) up to at least ``end``: runs
        of blank and // lines, GUID headers and entries ``skim`` accepts are matched a unit at a
        time and their entries deferred as ``skim`` defers them; any other line takes ``step``.
        Returns the offset and line index where reading stopped."""
        text = source.text
        size = len(text)
        defer, match, priority = self.tmfset.defer, _FAST_UNIT.match, self.priority
        context = None
        while pos < end:
            unit = match(text, pos)
            if unit is not None:
                kind = unit.lastgroup
                if kind == "entry":
                    number = int(unit.group("number"))
                    if (self.header is not None and number <= MAX_MESSAGE_NUMBER
                            and unit.group("typev").count('"') >= 2):
                        if context is None or context[3] is not self.header:
                            context = self.context()
                        stop = unit.end()
                        defer(guid_int(self.header), (number,), _Scanned(source, pos, stop, index, context),
                              priority)
                        index += text.count("\n", pos, stop)
                        pos = stop
                        continue
                elif kind == "blank":
                    index += text.count("\n", pos, unit.end())
                    pos = unit.end()
                    continue
                else:  # a GUID header
                    self.guid_header(index + 1, unit.group()[:-1])
                    index += 1
                    pos = unit.end()
                    continue
            lines = source.lines()
            index = self.step(lines, index)
            pos = source.starts()[index] if index < len(lines) else size
        return pos, index

    def step(self, lines: list[str], index: int) -> int:
        """Read what starts at line ``index`` (a line, an entry or a block); the next index."""
        line = lines[index]
        stripped = line.strip()
        lineno = index + 1
        index += 1
        if not stripped or stripped.startswith("//"):
            return index
        if stripped.startswith("#type"):
            skimmed = self.skim(lines, index - 1) if self.lazy else None
            return skimmed if skimmed is not None else self.message(lines, index - 1)
        if stripped.startswith("#enumv"):
            return self.enum_def(lines, index - 1)
        if _GUID_START.match(stripped):
            self.guid_header(lineno, line)
        elif stripped.startswith("{"):
            self.error(lineno, line, len(line) - len(line.lstrip()),
                       "'{' block without a #typev or #enumv line", "#typev line, #enumv line or GUID header")
            return self.skip_block(lines, index)
        elif index - 1 in self.bad_lines:
            self.bad_line(index - 1)
            # the rest of the entry it was part of: not read, not reported line by line
            while index < len(lines) and not _ends_block(lines[index]):
                index += 1
                if lines[index - 1].lstrip().startswith("}"):
                    break
        else:
            self.error(lineno, line, len(line) - len(line.lstrip()), "unexpected line",
                       "comment, GUID header, #typev line or #enumv line")
        return index

    def bad_line(self, index: int) -> None:
        """Report the line at ``index`` that holds a control character."""
        column, code, header = self.bad_lines[index]
        if header:   # the entries after a damaged GUID header are not filed under the one before
            self.header, self.source_file = None, ""
        self.error(index + 1, "", column - 1, f"control character {code:#04x} in the line (binary data): "
                   "the line is not read", "a line of text")

    def is_bad(self, lines: list[str], index: int) -> bool:
        """Whether the line at ``index`` holds a control character (``step`` reports it, so what
        it cut short is not reported again)."""
        return index in self.bad_lines and index < len(lines)

    def guid_header(self, lineno: int, line: str) -> None:
        """A GUID header line: the GUID, component and source file of the entries after it."""
        try:
            self.header = parse_guid_header(line.strip())
        except _LineError as err:
            # the entries after it are refused, not filed under the header before it (a
            # mistyped GUID would give another GUID's messages)
            self.header, self.source_file = None, ""
            self.line_error(lineno, line, err)
            return
        self.source_file = dict(self.header.trailer).get("SRC", "")

    @staticmethod
    def skip_block(lines: list[str], index: int) -> int:
        """Skip to just after the next "}" line (or to a line that starts a new entry)."""
        while index < len(lines):
            stripped = lines[index].strip()
            if stripped.startswith("}"):
                return index + 1
            if stripped.startswith("#"):
                return index
            index += 1
        return index

    def skim(self, lines: list[str], index: int) -> int | None:
        """A message entry that looks well formed (one-line #typev lines under a GUID header,
        a "{" line, a "}" line before anything that ends a block) is not parsed now: its
        message numbers go to the set with the entry (``TmfSet.defer``), parsed when one of
        them is looked up. Returns the index after the entry, as ``message`` would; None for
        anything else (``message`` parses it now and reports what is wrong)."""
        start, count = index, len(lines)
        numbers = []
        while index < count:
            stripped = lines[index].strip()
            if not stripped.startswith("#type"):
                if not stripped or stripped.startswith("//"):
                    index += 1
                    continue
                break
            match = _SKIM_TYPEV.match(stripped)
            if match is None or stripped.count('"') < 2 or int(match[1]) > MAX_MESSAGE_NUMBER:
                return None
            numbers.append(int(match[1]))
            index += 1
        if self.header is None or index >= count or lines[index].strip() != "{":
            return None
        index += 1
        while True:
            if index >= count or _ends_block(lines[index]):
                return None
            stripped = lines[index].strip()
            index += 1
            if stripped.startswith("}"):
                if stripped != "}":
                    return None
                break
        self.tmfset.defer(guid_int(self.header), numbers, _Deferred(self, lines, start), self.priority)
        return index

    def typev_text(self, lines: list[str], index: int) -> tuple[str, int]:
        """The #typev line at ``index``, with legacy continuation lines of an unclosed format."""
        text = lines[index].strip()
        end = index + 1
        if text.count('"') < 2:
            parts = [text]
            while end < len(lines):
                nxt = lines[end].strip()
                if not nxt or nxt.startswith(("{", "#")):
                    break
                parts.append(lines[end].rstrip())
                end += 1
                if '"' in nxt:
                    break
            text = "\n".join(parts)
        return text, end

    def message(self, lines: list[str], index: int) -> int:
        """One message entry: #type(v) line(s), then { arg lines }. Returns the next line index."""
        typevs: list[tuple[TypevLine, int]] = []
        bad = False
        while index < len(lines):
            stripped = lines[index].strip()
            if not stripped.startswith("#type"):
                if not stripped or stripped.startswith("//"):
                    index += 1
                    continue
                break
            lineno = index + 1
            text, index = self.typev_text(lines, index)
            try:
                typevs.append((parse_typev(text), lineno))
            except _LineError as err:
                self.line_error(lineno, lines[lineno - 1], err)
                bad = True
        first_lineno = typevs[0][1] if typevs else index
        if self.header is None and typevs:
            line = lines[first_lineno - 1]
            self.error(first_lineno, line, len(line) - len(line.lstrip()),
                       "no GUID header before #typev", "a '<guid> <component> // SRC=<file>' line first")
            bad = True
        if index >= len(lines) or not lines[index].strip().startswith("{"):
            if not bad and not (self.bad_lines and self.is_bad(lines, index)):
                # (a broken #typev line, or the bad line after it, is reported already)
                line = lines[index] if index < len(lines) else ""
                self.error(index + 1, line, len(line) - len(line.lstrip()),
                           "missing '{' argument block after #typev", '"{" line')
            return index
        if lines[index].strip() != "{":  # only a malformed line needs the production (for its error)
            try:
                _run("block_open", lines[index].strip(), '"{" line')
            except _LineError as err:
                self.line_error(index + 1, lines[index], err)
                bad = True
        index += 1
        args: list[Argument] = []
        while True:
            if index >= len(lines) or _ends_block(lines[index]):
                if not (self.bad_lines and self.is_bad(lines, index)):
                    line = lines[index] if index < len(lines) else ""
                    self.error(index + 1, line, 0, "missing '}' closing the argument block", '"}" line')
                return index
            line = lines[index]
            stripped = line.strip()
            lineno = index + 1
            index += 1
            if stripped.startswith("}"):
                if stripped != "}":
                    try:
                        _run("block_close", stripped, '"}" line')
                    except _LineError as err:
                        self.line_error(lineno, line, err)
                        bad = True
                break
            if not stripped or stripped.startswith("//"):
                continue
            try:
                args.append(_argument(stripped, len(args), self.capped))
            except _LineError as err:
                self.line_error(lineno, line, err)
                bad = True
        if bad or self.header is None:
            return index
        header = self.header
        arg_tuple = tuple(args)
        for typev, lineno in typevs:
            self.emit(_entry_message(header, self.source_file, f"{self.path}:{lineno}", typev,
                                     arg_tuple), self.priority)
        return index

    def enum_def(self, lines: list[str], index: int) -> int:
        line = lines[index]
        lineno = index + 1
        index += 1
        try:
            name = _parse_enum_line(line.strip())
        except _LineError as err:
            self.line_error(lineno, line, err)
            return self.skip_block(lines, index) if index < len(lines) and lines[index].strip() == "{" else index
        while index < len(lines) and (not lines[index].strip() or lines[index].strip().startswith("//")):
            index += 1
        if index >= len(lines) or lines[index].strip() != "{":
            if not (self.bad_lines and self.is_bad(lines, index)):
                line = lines[index] if index < len(lines) else ""
                self.error(index + 1, line, 0, "missing '{' after #enumv", '"{" line')
            return index
        index += 1
        values: dict[int, str] = {}
        while True:
            if index >= len(lines) or _ends_block(lines[index]):
                if self.bad_lines and self.is_bad(lines, index):   # one enumerator: the block goes on
                    self.bad_line(index)
                    index += 1
                    continue
                line = lines[index] if index < len(lines) else ""
                self.error(index + 1, line, 0, "missing '}' closing the #enumv block", '"}" line')
                break
            line = lines[index]
            stripped = line.strip()
            index += 1
            if stripped == "}":
                break
            if not stripped or stripped.startswith("//"):
                continue
            try:
                enumerator_name, value = _parse_enum_value(stripped)
            except _LineError as err:
                self.line_error(index, line, err)
                continue
            values.setdefault(value, enumerator_name)  # first name wins for aliased values
        self.tmfset.add_enum(EnumDef(name, values, False, f"{self.path}:{lineno}"))
        return index


def parse_into(
    tmfset: TmfSet, text: str, path: str = "<string>", tolerant: bool = False, priority: int = 0,
    lazy: bool = False, bad_lines: dict[int, tuple[int, int, bool]] | None = None,
) -> TmfSet:
    """Parse TMF ``text`` into ``tmfset`` (strict: raise the first TmfError; tolerant: record
    issues). ``lazy`` (tolerant only): well-formed message entries are parsed when one of their
    messages is first looked up (a decoding run needs a fraction of a TMF directory).
    ``bad_lines``: lines holding a control character, replaced by "#" (``loader.binary_lines``)."""
    _Parser(tmfset, path, tolerant, priority, lazy=lazy and tolerant, bad_lines=bad_lines).run(text)
    return tmfset


#: ``split_text``'s form: (numbers, pieces, lengths): the entries' message numbers, and the
#: text's pieces (rest, #typev line, number, block, rest, ..., rest: four for each entry and
#: one more) or their lengths but the numbers' (three for each entry and one more; pieces None:
#: ``tile_split``'s)
TextSplit = tuple


def split_text(text: str) -> TextSplit | None:
    """Where a lazy parse splits ``text`` (``_Parser.scan``): at the entries written as
    tracepdb writes them (``_TILE``), each a #typev line with its message number and a block
    (with the // and empty lines after it), the rest between them. None for a text a lazy
    parse reads line by line. An ASCII text is split in C (``tile_split``: the numbers and
    the pieces' lengths, no piece made), any other by the pattern (``pattern_split``)."""
    if "\r" in text:
        return None
    if text.isascii():
        return tile_split(text)
    return pattern_split(text)


def pattern_split(text: str) -> TextSplit:
    """``split_text`` of a text without "\r" by ``_TILE``, the reference: the numbers and the
    pieces."""
    pieces = _TILE.split(text)
    return list(map(int, pieces[2::4])), pieces, None


#: C memory that is not cleared: the split writes every value read back
_uncleared = _ffi.new_allocator(should_clear_after_alloc=False)
#: the most tiles one call of the C split writes (their values 1 MiB): a longer text is split
#: in calls that each go on where the last stopped, so what is reserved follows what the
#: split makes, not the text's size (a 256 MiB text would reserve 480 MB for its most tiles)
SPLIT_WINDOW = 1 << 15


def tile_split(text: str) -> TextSplit:
    """``pattern_split`` of an ASCII text without "\r", made in C (``tmf/csrc/wpptile.h``:
    about 2 instructions a character against the pattern's 31): the numbers and the pieces'
    lengths but the numbers'."""
    data = text.encode("ascii")
    size = len(data)
    cap = min(size // _lib.WPPT_TILE_MIN + 1, SPLIT_WINDOW)
    out = _uncleared("uint64_t[]", 4 * cap + 1)
    lengths = array("Q")     # (copied whole: ffi.unpack makes each int apart, 8x the cost)
    tiles = _lib.wppt_split(data, size, out, cap)
    start, at = _ffi.from_buffer("uint8_t[]", data), 0
    while tiles < 0:       # out is full: keep its tiles, go on after the last of them
        lengths.frombytes(_ffi.buffer(out, 8 * 4 * cap))
        at += out[4 * cap]
        tiles = _lib.wppt_split(start + at, size - at, out, cap)
    lengths.frombytes(_ffi.buffer(out, 8 * (4 * tiles + 1)))
    numbers = lengths[2::4]
    del lengths[2::4]
    return numbers, None, lengths


def iter_entries(text: str, path: str = "<string>") -> Iterator[Message]:
    """Messages of ``text`` in file order (strict), duplicates included."""
    collected: list[Message] = []
    parser = _Parser(TmfSet(), path, tolerant=False)
    parser.emit = lambda message, priority: collected.append(message)
    parser.run(text)
    return iter(collected)
