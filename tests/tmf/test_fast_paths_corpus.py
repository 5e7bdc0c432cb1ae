"""The TMF reader's fast paths give what the grammar gives on every TMF file of the corpus: each
line a whole-line matcher reads, the entries the lazy scan defers, the messages it parses."""
from __future__ import annotations

import re

import pytest

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
    monkeypatch.setattr(grammar, "_TILE", re.compile(r"(?!)"))  # no stretch: ``scan_units`` reads
    for path, text in corpus_tmfs:
        assert scanned[path] == _read(path, text), path
    monkeypatch.setattr(grammar, "_FAST_UNIT", re.compile(r"(?!)"))  # every line takes ``step``
    for path, text in corpus_tmfs:
        assert scanned[path] == _read(path, text), path
    assert sum(len(deferred) for deferred, _m, _i in scanned.values()) > 2000


def test_scanned_entries_parse_as_the_grammar_parses_them(corpus_tmfs, monkeypatch):
    parsed = {path: _read(path, text)[1] for path, text in corpus_tmfs}
    monkeypatch.setattr(grammar, "_scanned_messages", lambda *args: None)  # ``message`` parses each
    for path, text in corpus_tmfs:
        assert parsed[path] == _read(path, text)[1], path


def test_the_split_is_the_same_in_the_forms_of_each_python(corpus_tmfs):
    """Without atomic groups and possessive repeats (Python 3.10), the tile pattern splits
    every text as with them."""
    forms = [re.compile(grammar._TILE_PATTERN.format(**form)) for form in grammar._TILE_FORMS.values()]
    for path, text in corpus_tmfs:
        assert forms[0].split(text) == forms[1].split(text) == grammar._TILE.split(text), path
