"""The TMF reader's fast paths give what the grammar gives on every TMF file of the corpus: each
line a whole-line matcher reads, the entries the lazy scan defers, the messages it parses."""
from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wpptrace.tmf import grammar
from wpptrace.tmf.loader import read_text
from wpptrace.tmf.model import TmfSet


@pytest.fixture(scope="module")
def corpus_tmfs(corpus) -> list[tuple[str, str]]:
    files = sorted(corpus.rglob("*.tmf"))
    assert len(files) > 50
    return [(str(path), read_text(path)) for path in files]


def _outcome(fn, text):
    try:
        return fn(text)
    except grammar._LineError as err:
        return ("error", err.offset, err.message)


def test_line_matchers_agree_with_the_productions(corpus_tmfs):
    pairs = {"#typev": (grammar._typev_fast, grammar._typev_full),
             "arg": (grammar._arg_fast, grammar._arg_full),
             "header": (grammar._guid_header_fast, grammar._guid_header_full)}
    checked = dict.fromkeys(pairs, 0)
    for _path, text in corpus_tmfs:
        for line in {line.strip() for line in grammar._lines(text)}:
            if line.startswith("#type"):
                kind = "#typev"
            elif ", Item" in line:
                kind = "arg"
            elif grammar._GUID_START.match(line):
                kind = "header"
            else:
                continue
            fast, full = pairs[kind]
            quick = fast(line)
            if quick is not None:
                assert quick == _outcome(full, line), line
                checked[kind] += 1
    assert all(checked.values()), checked


def _line_index(entries, i: int | None) -> int:
    """The line index of the i-th of deferred entries (no index: of the entry)."""
    return entries.index if i is None else entries.line_index(i)


def deferred_entries(tmfset: TmfSet) -> list:
    """Each key deferred, in the order noted, with the (line index, priority) of its entries
    in reading order."""
    return [(key, [(_line_index(entries, i), priority)
                   for _noted, entries, i, priority in tmfset._deferred[key[0]][key[1]]])
            for key in tmfset._deferred_keys()]


def _read(path: str, text: str) -> tuple[list, list, list]:
    """What a lazy read defers, then every message and problem once everything is parsed."""
    tmfset = grammar.parse_into(TmfSet(), text, path, tolerant=True, lazy=True)
    deferred = deferred_entries(tmfset)
    tmfset.load_all()
    messages = [(key, message, tmfset._priority[key]) for key, message in tmfset._messages.items()]
    return deferred, messages, [str(issue) for issue in tmfset.issues]


def test_lazy_scan_reads_as_the_line_by_line_reader(corpus_tmfs, monkeypatch):
    scanned = {path: _read(path, text) for path, text in corpus_tmfs}
    monkeypatch.setattr(grammar, "split_text", lambda text: ([], [text], None))  # no stretch: ``scan_units`` reads
    for path, text in corpus_tmfs:
        assert scanned[path] == _read(path, text), path
    monkeypatch.setattr(grammar, "_FAST_UNIT", re.compile(r"(?!)"))  # every line takes ``step``
    for path, text in corpus_tmfs:
        assert scanned[path] == _read(path, text), path
    assert sum(len(deferred) for deferred, _m, _i in scanned.values()) > 2000


def test_scanned_entries_parse_as_the_grammar_parses_them(corpus_tmfs, monkeypatch):
    parsed = {path: _read(path, text)[1] for path, text in corpus_tmfs}
    monkeypatch.setattr(grammar, "_scanned_messages", lambda *args: None)  # ``message`` parses each
    monkeypatch.setattr(grammar, "_tile_message", lambda *args: None)
    for path, text in corpus_tmfs:
        assert parsed[path] == _read(path, text)[1], path


@settings(max_examples=500, deadline=None)
@given(kind=st.sampled_from(["#typev", "#type"]), name=st.from_regex(r"[!#-~]{1,12}", fullmatch=True),
       number=st.integers(0, 99999), fmt=st.text(alphabet='ab "/%!\t', max_size=12),
       between=st.sampled_from(["", " ", "\t ", ' x"', '" //']),
       tail=st.sampled_from(["", "//", "// FUNC=f LEVEL=3", "//   FUNC=a b", ' // x="y"', "x", "\x0b// F=1"]))
def test_a_tile_typev_line_reads_as_parse_typev_reads_it(kind, name, number, fmt, between, tail):
    """An entry's #typev line read without the regular expression (``_tile_message``) gives
    the message ``parse_typev`` gives, or None (then ``parse_typev`` reads it): never for a
    format closed by its last quote."""
    line = f'{kind} {name} {number} "{fmt}"{between}{tail}'
    header = grammar.GuidHeader(uuid.UUID(int=7), "Comp", ())
    context = ("t.tmf", True, 0, header, "t.c")
    args = (grammar._argument("n, ItemLong -- 10", 0),)
    fast = grammar._tile_message(line + "\n", args, context, 4)
    try:
        typev = grammar.parse_typev(line.strip())
    except grammar._LineError:
        assert fast is None
        return
    if fast is not None:
        assert fast == grammar._entry_message(header, "t.c", "t.tmf:5", typev, args)
        assert fast.trailer == dict(typev.trailer)
    assert (fast is not None or number > grammar.MAX_MESSAGE_NUMBER
            or not (between in ("", " ", "\t ") and tail[:2] in ("", "//") and '"' not in tail))
