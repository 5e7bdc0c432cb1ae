"""Hypothesis properties of the TMF grammar: generated models round-trip; mutated text never crashes."""
from __future__ import annotations

import pathlib
import re
import time
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wpptrace.tmf as tmf
from wpptrace._fieldclass import replace
from wpptrace.tmf.errors import TmfError
from wpptrace.tmf.model import Argument, EnumDef, Message
from wpptrace.tmf.writer import to_tmf_text

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
IDENT = st.builds(lambda head, tail: head + tail, st.sampled_from(ALNUM[:52] + "_"), st.text(ALNUM, max_size=15))
# TMF text is 8-bit; "whitespace" is what Python's str.isspace()/\s say (also \x85, \xa0 ...).
NONSPACE = st.text(st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters='"\x85\xa0'),
                   min_size=1, max_size=20)
LINE_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r")


@st.composite
def arguments(draw, index: int) -> Argument:
    expr = draw(st.text(LINE_CHARS, min_size=1, max_size=40)).strip()
    if not expr or expr.startswith(("}", "//", "#")):
        expr = "value" + expr
    item = "Item" + draw(st.text(ALNUM, max_size=12))
    params = tuple(draw(st.lists(
        st.text(st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters=",()"), min_size=1,
                max_size=10), max_size=5)))
    insert = draw(st.integers(10, 99)) if draw(st.booleans()) else 10 + index
    return Argument(expr, item, params, insert)


@st.composite
def trailers(draw) -> dict[str, str]:
    keys = draw(st.lists(IDENT, max_size=4, unique=True))
    values = [draw(st.one_of(st.just(""), NONSPACE)) for _ in keys]
    return dict(zip(keys, values))


@st.composite
def messages(draw, guid: uuid.UUID, number: int, component: str, source: str) -> Message:
    count = draw(st.integers(0, 4))
    args = tuple(draw(arguments(i)) for i in range(count))
    return Message(
        guid=guid, number=number,
        name=draw(NONSPACE),
        format=draw(st.text(LINE_CHARS, max_size=60)),
        args=args, trailer=draw(trailers()), component=component, source_file=source,
        legacy=draw(st.booleans()),
    )


@st.composite
def message_sets(draw) -> list[Message]:
    result = []
    for _ in range(draw(st.integers(1, 3))):
        guid = draw(st.uuids())
        component = draw(st.text(ALNUM + ".", min_size=1, max_size=12))
        source = draw(st.text(ALNUM + ".", max_size=12))
        numbers = draw(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=5, unique=True))
        result += [draw(messages(guid, number, component, source)) for number in numbers]
    return result


@SETTINGS
@given(message_sets(), st.lists(st.tuples(IDENT, st.dictionaries(st.integers(-(1 << 63), (1 << 63) - 1), IDENT,
                                                                  max_size=4)), max_size=2))
def test_generated_model_round_trips(generated, enums):
    enum_defs = [EnumDef(name, dict((v, n) for v, n in values.items())) for name, values in dict(enums).items()]
    text = to_tmf_text(generated, enums=enum_defs)
    parsed = tmf.parse_text(text)
    assert [replace(m, origin="") for m in parsed.messages()] == sorted(
        generated, key=lambda m: (str(m.guid), m.number))
    for enum in enum_defs:
        got = parsed.enum(enum.name)
        # the first enumerator name of an aliased value is kept; values round-trip exactly
        assert got.values == {value: name for value, name in enum.values.items()}
    assert parsed.issues == []


CORPUS_SAMPLE = (pathlib.Path(__file__).resolve().parents[1] / "corpus" / "tmf" / "nefarius__Nefarius.Utilities.ETW"
                 / "tmf" / "03fb1cb4-1c81-30e9-50db-4ecb4f47594e.tmf").read_text()[:3000]


@st.composite
def mutated_texts(draw) -> str:
    text = CORPUS_SAMPLE
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "dup_line", "drop_line", "swap"]))
        pos = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 30)):]
        elif kind == "insert":
            text = text[:pos] + draw(st.text(st.sampled_from('{}#",()-/\\ \n\rItemtypev0123456789abcdef=%!'),
                                             max_size=20)) + text[pos:]
        elif kind == "replace" and pos < len(text):
            text = text[:pos] + draw(st.characters()) + text[pos + 1:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(0, len(lines) - 1))
            if kind == "dup_line":
                lines.insert(j, lines[i])
            elif kind == "drop_line":
                del lines[i]
            else:
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
    return text


@SETTINGS
@given(mutated_texts())
def test_mutated_text_gives_tmf_error_or_issues_never_another_exception(text):
    # this thread's CPU time: a loaded machine stretches wall time, not the parser's work
    start = time.thread_time()
    try:
        strict = tmf.parse_text(text, path="m.tmf")
    except TmfError as err:
        assert err.path == "m.tmf" and err.line >= 1 and err.column >= 1
        strict = None
    tolerant = tmf.parse_text(text, path="m.tmf", tolerant=True)  # never raises
    for issue in tolerant.issues:
        assert isinstance(issue, TmfError) and issue.line >= 1
    if strict is not None:  # a clean strict parse means the tolerant parse found nothing wrong
        assert tolerant.issues == []
        assert list(tolerant.messages()) == list(strict.messages())
    else:
        assert tolerant.issues
    assert time.thread_time() - start < 2.0  # 3 KB of text: anything slower is a runaway


@SETTINGS
@given(st.text(max_size=400))
def test_arbitrary_text_never_crashes(text):
    tmf.parse_text(text, tolerant=True)
    try:
        tmf.parse_text(text)
    except TmfError:
        pass


def test_pathological_long_lines_parse_in_linear_time():
    """Lines built to make the greedy ", Item" / last-quote rules backtrack (64 KiB is the line cap)."""
    header = "01e9b841-7d67-315a-7b92-23b2033356de C // SRC=a.c\n"
    bodies = [  # (argument line, is it malformed?)
        ("x" + ", ItemA(" * 9000, True),
        ("x" + ", ItemLong" * 6000 + " -- ", True),
        ("x, ItemListLong(" + "Item," * 12000 + ")", False),  # 12001 parameters, the last one empty
        (", Item" * 10000, False),  # expression ", Item, Item, ...", type "Item"
    ]
    for body, malformed in bodies:
        text = header + '#typev n 10 "' + '" ' * 20000 + '\n{\n' + body + "\n}\n"
        start = time.thread_time()              # CPU time: the bound is on work, not load
        tmfset = tmf.parse_text(text, tolerant=True)
        assert time.thread_time() - start < 2.0
        assert bool(tmfset.issues) == malformed
        assert len(tmfset) == (0 if malformed else 1)


# -- the whole-line fast matchers agree with the pyparsing productions ---------------------------

from wpptrace.tmf import grammar  # noqa: E402

REAL_LINES = [line for line in CORPUS_SAMPLE.split("\n") if line.startswith("#typev") or " -- " in line]
REAL_LINES += ["01e9b841-7d67-315a-7b92-23b2033356de BthPS3 // SRC=L2CAP.c MJ= MN=",
               "{0A9AB260-F7E4-311E-A23E-F8AB6856DC72} DmfKFramework", "#enumv _MachineState",
               "Offline,0x0", "Big,0xFFFFFFFFFFFFFFFE", "Neg,-12"]
LINE_ALPHABET = st.sampled_from(list('#typev ItemLong(),-/"!%0123456789abcxyz_\t=[]{}') + ["--", "//", ", Item"])


def _outcome(fn, text):
    try:
        return fn(text)
    except grammar._LineError:
        return "error"


@st.composite
def candidate_lines(draw) -> str:
    if draw(st.booleans()):
        return "".join(draw(st.lists(LINE_ALPHABET, max_size=30)))
    line = draw(st.sampled_from(REAL_LINES))
    pos = draw(st.integers(0, len(line)))
    return line[:pos] + "".join(draw(st.lists(LINE_ALPHABET, max_size=3))) + line[pos + draw(st.integers(0, 3)):]


@SETTINGS
@given(candidate_lines())
def test_fast_matchers_agree_with_the_productions(line):
    pairs = ((grammar._typev_fast, grammar._typev_full), (grammar._arg_fast, grammar._arg_full),
             (grammar._guid_header_fast, grammar._guid_header_full),
             (lambda t: grammar._FAST_ENUM_LINE.match(t) and grammar._parse_enum_line(t),
              lambda t: grammar._run("enum_line", t, "#enumv line")["name"]),
             (lambda t: grammar._FAST_ENUM_VALUE.match(t) and grammar._parse_enum_value(t),
              lambda t: tuple(grammar._run("enum_value", t, "enum value line")[k] for k in ("name", "value"))))
    for fast, full in pairs:
        quick = fast(line)
        if quick is not None:  # a fast match must be exactly what the production gives
            assert quick == _outcome(full, line)



@pytest.mark.parametrize("line", ["{0A9AB260-F7E4-311E-A23E-F8AB6856DC72}//DmfKFramework",
                                  "{0A9AB260-F7E4-311E-A23E-F8AB6856DC72} //DmfKFramework",
                                  "{0A9AB260-F7E4-311E-A23E-F8AB6856DC72}\t//DmfKFramework"])
def test_a_guid_headers_closing_brace_is_never_taken_for_its_component(line):
    """A GUID header line whose closing brace stands right before the trailer: the production
    refuses it (no component); the fast matcher once backed off the brace and took "}//..."
    (or "}") as the component (a line the property test above found)."""
    assert grammar._guid_header_fast(line) is None
    with pytest.raises(grammar._LineError):
        grammar._guid_header_full(line)

# a trailer of KEY=VALUE tokens only, and how their pairs are found, as regular expressions
KEY_VALUES_ONLY = re.compile(r"\s*(?:[A-Za-z_][A-Za-z0-9_]*=\S*(?:\s+|\Z))*")
KEY_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(\S*)")
TRAILER_ALPHABET = st.sampled_from(["A", "z", "_", "0", "=", " ", "\t", "\x0b", "\x1c", "\x85", "\xa0",
                                    "\u2003", "\xe9", "\u01c5", "-", ".", "FUNC=", "LEVEL=x"])


def trailer_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """The pairs of a trailer by the regular expressions: KEY=VALUE tokens; with other words,
    a bare word extends the previous value (or the "" key)."""
    if KEY_VALUES_ONLY.fullmatch(text):
        return tuple(dict(KEY_VALUE.findall(text)).items())
    pairs: dict[str, str] = {}
    last = ""
    for token in text.split():
        match = KEY_VALUE.fullmatch(token)
        if match:
            last = match.group(1)
            pairs[last] = match.group(2)
        else:
            pairs[last] = f"{pairs[last]} {token}" if pairs.get(last) else token
    return tuple(pairs.items())


@SETTINGS
@given(st.lists(TRAILER_ALPHABET, max_size=16).map("".join))
def test_trailer_pairs_are_those_of_the_regular_expressions(text):
    assert grammar._trailer_to_pairs.__wrapped__(text) == trailer_pairs(text)


@SETTINGS
@given(candidate_lines())
def test_the_argument_matcher_refuses_only_what_the_production_refuses(line):
    """Past a file's issue cap a bad argument line is counted on the whole-line matcher's word
    alone (``_Parser.capped``): a line it refuses must be one the production refuses."""
    stripped = line.strip()
    if grammar._arg_fast(stripped) is None:
        assert _outcome(grammar._arg_full, stripped) == "error"
