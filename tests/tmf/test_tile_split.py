"""The C split of a TMF text at its tiles (``grammar.tile_split``, tmf/csrc/wpptile.c) is the
pattern's (``grammar.pattern_split``, ``_TILE.split``): the same numbers and pieces, over every
TMF text of the tests, edges the pattern encodes, and texts mutated at random near the places
a tile starts, ends or is decided (quotes, braces, digits, GUID-like lines, "#type" inside a
line, long lines, the text's end)."""
from __future__ import annotations

import pathlib
import random

import pytest

from wpptrace.tmf import grammar
from wpptrace.tmf.loader import read_text

TESTS = pathlib.Path(__file__).resolve().parents[1]
ENTRY = '#typev a_c10 10 "%0message %10!d!" //   FUNC=F\n{\nn, ItemLong -- 10\n}\n'


def _pattern(text: str) -> tuple[list[int], list[int]]:
    numbers, pieces, _ = grammar.pattern_split(text)
    lengths = list(map(len, pieces))
    del lengths[2::4]
    return numbers, lengths


def _same(text: str) -> int:
    """The tiles of ``text``, asserted the same both ways."""
    numbers, pieces, lengths = grammar.tile_split(text)
    assert pieces is None and (list(numbers), list(lengths)) == _pattern(text), text[:2000]
    return len(numbers)


@pytest.fixture(scope="module")
def tmf_texts() -> list[str]:
    texts = [read_text(path) for path in sorted(TESTS.rglob("*")) if path.suffix.lower() == ".tmf"]
    assert len(texts) > 90
    return [text for text in texts if text.isascii() and "\r" not in text]


def test_every_tmf_text_of_the_tests_splits_alike(tmf_texts):
    assert sum(map(_same, tmf_texts)) > 3000


EDGES = {
    "empty": "",
    "entry": ENTRY,
    "legacy #type": ENTRY.replace("#typev", "#type"),
    "#typevv": ENTRY.replace("#typev", "#typevv"),
    "#typev without a blank": ENTRY.replace("#typev ", "#typev\t"),
    "indented": " " + ENTRY,
    "after text on the line": "x" + ENTRY,
    "after a line": "x\n" + ENTRY,
    "#type inside a line": "// #typev a 1 \"\"\n{\n}\n" + ENTRY,
    "two blanks before the name": ENTRY.replace("#typev ", "#typev  "),
    "quote in the name": ENTRY.replace("a_c10", 'a"c10'),
    "name of one character": ENTRY.replace("a_c10", "!"),
    "name with #, { and ~": ENTRY.replace("a_c10", "#{~}"),
    "no number": ENTRY.replace(" 10 ", "  "),
    "five digits": ENTRY.replace(" 10 ", " 99999 "),
    "six digits": ENTRY.replace(" 10 ", " 100000 "),
    "leading zeros": ENTRY.replace(" 10 ", " 00010 "),
    "a letter after the digits": ENTRY.replace(" 10 ", " 10x "),
    "one quote": '#typev a 1 "x\n{\n}\n',
    "two quotes, empty": '#typev a 1 ""\n{\n}\n',
    "the second quote on the next line": '#typev a 1 "x\n"\n{\n}\n',
    "quote not after the number": '#typev a 1 x"y"\n{\n}\n',
    "blank before {": ENTRY.replace("\n{\n", "\n {\n"),
    "{ with a blank": ENTRY.replace("\n{\n", "\n{ \n"),
    "} with a blank": ENTRY.replace("\n}\n", "\n} \n"),
    "empty block": '#typev a 1 "x"\n{\n}\n',
    "empty line in the block": ENTRY.replace("{\n", "{\n\n"),
    "indented block line": ENTRY.replace("{\nn", "{\n n"),
    "tab-started block line": ENTRY.replace("{\nn", "{\n\tn"),
    "#-started block line": ENTRY.replace("{\nn", "{\n#n"),
    "{-started block line": ENTRY.replace("{\nn", "{\n{n"),
    "GUID-like block line": ENTRY.replace("{\nn", "{\n0123abcD-n"),
    "seven hex digits and -": ENTRY.replace("{\nn", "{\n0123abc-n"),
    "nine hex digits and -": ENTRY.replace("{\nn", "{\n0123abcde-n"),
    "eight hex digits, no -": ENTRY.replace("{\nn", "{\n0123abcd_n"),
    "hex digit alone": ENTRY.replace("{\nn", "{\na\n"),
    **{f"GUID-like but character {i}": ENTRY.replace("{\nn", "{\n" + "0123abcD"[:i] + "g" + "0123abcD"[i + 1:] + "-n")
       for i in range(8)},
    "8 hex digits at the text's end": '#typev a 1 "x"\n{\n0123abcd',
    "no newline at the end": ENTRY[:-1],
    "ends after {": '#typev a 1 "x"\n{\n',
    "ends in the #typev line": '#typev a 1 "x"',
    "// and empty lines after": ENTRY + "// c\n\n//\n\n" + ENTRY,
    "/ line after": ENTRY + "/ c\n" + ENTRY,
    "// at the end without newline": ENTRY + "// c",
    "trailing blank line": ENTRY + " \n" + ENTRY,
    "entries back to back": ENTRY * 3,
    "long lines": ENTRY.replace("%0message", "%0" + "m" * 70000) + "// " + "x" * 50000 + "\n" + ENTRY,
    "many quotes": '#typev a 1 "' + '"' * 5000 + "\n{\n}\n",
    "control characters": ENTRY.replace("message", "mes\x00sa\x0bge\x7f"),
}


@pytest.mark.parametrize("text", EDGES.values(), ids=EDGES.keys())
def test_the_edges_split_alike(text):
    _same(text)


#: what a mutation puts in: characters and pieces the pattern decides on
INSERTS = [*' \t\n#{}"/v-!~\x0b\x00', *"0123456789abcdefABCDEFgGzZ_",
           "#type", "#typev ", "#type ", "\n#typev a_c 1 \"x\"\n", "{\n", "}\n", "\n}\n", "//", "\"\"",
           "0123abcd-", "0123abc-", "\n\n", " 12345 ", " 123456 ", "x" * 3000, ENTRY]


def _mutated(rng: random.Random, text: str) -> str:
    """``text`` with one to three characters or pieces inserted, deleted or replaced, most
    often where the pattern decides something (a line's start or end, a quote, a brace, a
    digit), or cut short."""
    for _ in range(rng.randint(1, 3)):
        if not text or rng.random() < 0.1:
            text = text[:rng.randint(0, len(text))] if text and rng.random() < 0.5 else text + rng.choice(INSERTS)
            continue
        at = rng.randrange(len(text))
        if rng.random() < 0.8:   # near a decision: move to one of these characters close by
            near = [i for i in range(max(0, at - 40), min(len(text), at + 40)) if text[i] in '\n"{}#0123456789 ']
            at = rng.choice(near) + rng.randint(-1, 1) if near else at
            at = min(max(at, 0), len(text) - 1)
        op = rng.random()
        if op < 0.4:
            text = text[:at] + rng.choice(INSERTS) + text[at:]
        elif op < 0.7:
            text = text[:at] + text[at + rng.randint(1, 3):]
        else:
            text = text[:at] + rng.choice(INSERTS) + text[at + rng.randint(1, 2):]
    return text


def test_mutated_texts_split_alike(tmf_texts):
    rng = random.Random(1729)
    pieces = [ENTRY, *EDGES.values()]
    for text in tmf_texts:   # stretches of a few entries of every text
        starts = [i for i in range(len(text)) if text.startswith("#type", i)]
        for start in rng.sample(starts, min(len(starts), 12)):
            pieces.append(text[max(0, start - rng.randint(0, 200)):start + rng.randint(50, 1500)])
    tiles = 0
    for _ in range(12_000):
        text = _mutated(rng, "".join(rng.choice(pieces) for _ in range(rng.randint(1, 3))))
        if text.isascii() and "\r" not in text:
            tiles += _same(text)
    assert tiles > 10_000


def test_whole_texts_mutated_split_alike(tmf_texts):
    rng = random.Random(31)
    for text in rng.sample(tmf_texts, 20):
        for _ in range(10):
            _same(_mutated(rng, text))


def test_a_text_the_c_split_does_not_take_is_split_by_the_pattern():
    accented = ENTRY + ENTRY.replace("a_c10", "a_c\u00e911") + ENTRY
    numbers, pieces, lengths = grammar.split_text(accented)
    assert lengths is None and (numbers, pieces) == grammar.pattern_split(accented)[:2]
    assert numbers == [10, 10]            # (the accented name is no tile's: [!#-~] is ASCII)
    assert grammar.split_text(ENTRY.replace("\n", "\r\n")) is None
    block = ENTRY.index("{")
    numbers, pieces, lengths = grammar.split_text(ENTRY)
    assert (list(numbers), pieces, list(lengths)) == ([10], None, [0, block, len(ENTRY) - block, 0])


@pytest.mark.parametrize("window", [1, 2, 3, 7])
def test_a_split_that_fills_its_window_goes_on_where_it_stopped(tmf_texts, monkeypatch, window):
    """A text of more tiles than one call of the C split writes (``SPLIT_WINDOW``) is split
    in calls, each going on after the last tile of the one before: the same split."""
    monkeypatch.setattr(grammar, "SPLIT_WINDOW", window)
    assert sum(map(_same, EDGES.values())) > 30
    assert sum(map(_same, tmf_texts[:20])) > 20 * window
    assert _same("// x\n" * 40 + (ENTRY + "// y\n\n") * 50 + "tail\n") == 50


def test_the_memory_reserved_is_the_most_tiles_the_text_could_hold_up_to_one_window(monkeypatch):
    """The split reserved room for the most tiles a text of its size could hold (a tile is 17
    bytes at least: 32 bytes of values each, about 1.9x the text, 480 MB for a 256 MiB TMF);
    it reserves that for a small text, one window at most for a large one, and keeps what the
    tiles take."""
    reserved = []
    real = grammar._uncleared
    monkeypatch.setattr(grammar, "_uncleared", lambda kind, n: reserved.append(n) or real(kind, n))
    text = ("// " + "c" * 60 + "\n") * 70_000 + ENTRY * 3     # 4.4 MB, 3 tiles
    assert _same(text) == 3
    assert reserved and max(reserved) <= 4 * (1 << 15) + 1
    reserved.clear()
    small = ENTRY * 3 + "// " + "c" * 200 + "\n"             # a text of a few tiles: room for its size
    assert _same(small) == 3
    assert max(reserved) == 4 * (len(small) // grammar._lib.WPPT_TILE_MIN + 1) + 1 < 4 * (1 << 15)
    dense = ENTRY * 70_000                                    # more tiles than a window
    assert _same(dense) == 70_000
    assert max(reserved) <= 4 * (1 << 15) + 1
