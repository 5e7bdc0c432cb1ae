"""A lazy read defers a file's entries until a lookup needs one: whatever the order of the
lookups, each finds the message reading everything at once finds (duplicate numbers in one
stretch of entries, across several stretches of a file, across files of two priorities or of
equal ones), and once everything is parsed the messages, their priorities and the problems
reported are the same."""
from __future__ import annotations

import random
import uuid

import pytest

from wpptrace.tmf import grammar
from wpptrace.tmf.model import TmfSet

G = uuid.UUID("0badf00d-1111-4222-8333-444455556666")
H = uuid.UUID("0badf00d-1111-4222-8333-777788889999")
HEADER = f"{G} Comp // SRC=a.c MJ= MN=\n"
OTHER_HEADER = f"{H} Other // SRC=b.c MJ= MN=\n"
BROKEN = "n, ItemLong -- 100\n"   # an insert number out of range: a problem, no message


def entry(number: int, text: str = "", args: str = "n, ItemLong -- 10\n") -> str:
    return f'#typev a_c{number} {number} "%0m{number}{text} %10!d!" //   FUNC=F{number}\n{{\n{args}}}\n'


def entries(*numbers: int, text: str = "") -> str:
    return "".join(entry(number, text) for number in numbers)


# duplicates in one stretch (a file appended twice, its first copy of 12 broken), across
# stretches (a comment line, the header again, another GUID between them) and within the
# entries read unit by unit (the indented one)
ONE_FILE = ("// PDB:  x.pdb\n" + HEADER + entries(10, 11) + entry(12, args=BROKEN) + entries(13)
            + entries(10, 11, 12, text="again") + "// PDB:  Last Updated\n\n" + entries(14, 11, text="late")
            + OTHER_HEADER + entries(10, 20) + HEADER + entries(15, 13, text="third")
            + '  #typev a_c16 16 "%0indented"\n  {\n  }\n' + entries(16, 17, text="after"))
KEYS = [(guid, number) for guid in (G, H) for number in range(9, 22)]


def _sets(texts: list[tuple[str, int]], lazy: bool) -> TmfSet:
    tmfset = TmfSet()
    for n, (text, priority) in enumerate(texts):
        grammar.parse_into(tmfset, text, f"t{n}.tmf", tolerant=True, priority=priority, lazy=lazy)
    return tmfset


def _found(tmfset: TmfSet, keys) -> dict:
    return {key: tmfset.lookup(*key) for key in keys}


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("texts", [
    [(ONE_FILE, 0)],
    [(ONE_FILE, 0), (HEADER + entry(11, args=BROKEN) + entries(12, 13, 18, text="high"), 1)],
    [(HEADER + entries(12, 13, 18, text="high"), 1), (ONE_FILE, 0)],
    [(ONE_FILE, 0), (HEADER + entries(10, 12, 19, text="same"), 0)],
], ids=["one file", "then a higher priority", "after a higher priority", "equal priorities"])
def test_lookups_in_any_order_find_what_reading_everything_finds(texts, seed):
    eager = _sets(texts, lazy=False)
    keys = KEYS[:]
    random.Random(seed).shuffle(keys)
    lazy = _sets(texts, lazy=True)
    assert _found(lazy, keys) == _found(eager, keys)
    lazy.load_all()
    eager.load_all()
    assert lazy._messages == eager._messages and lazy._priority == eager._priority
    assert sorted(map(str, lazy.issues)) == sorted(map(str, eager.issues))
    assert not lazy._deferred


def test_files_read_after_a_lookup_of_their_guid():
    """A file of the GUID read after some of its messages were looked up: a higher priority's
    entry wins over the message found before, an equal priority's does not (the first read
    stays); a copy of an entry that lost is still parsed, and its problem reported, once
    everything is parsed."""
    tmfset = _sets([(ONE_FILE, 0)], lazy=True)
    assert tmfset.lookup(G, 11).format == "%0m11 %10!d!"
    grammar.parse_into(tmfset, HEADER + entries(11, 14, 30, text="next"), "next.tmf", tolerant=True,
                       priority=1, lazy=True)
    assert tmfset.lookup(G, 11).format == "%0m11next %10!d!"   # a higher priority, read later
    assert tmfset.lookup(G, 14).format == "%0m14next %10!d!"
    assert tmfset.lookup(G, 30).origin == "next.tmf:10"
    grammar.parse_into(tmfset, HEADER + entries(15, text="last") + entry(16, args=BROKEN), "last.tmf",
                       tolerant=True, lazy=True)
    assert tmfset.lookup(G, 15).format == "%0m15third %10!d!"   # equal priority: the first read
    assert tmfset.lookup(G, 12).format == "%0m12again %10!d!"   # its broken first copy reported
    assert [(issue.path, issue.line) for issue in tmfset.issues] == [("t0.tmf", 13)]
    tmfset.load_all()   # (and the keys given several formats, at the entry used)
    assert [(issue.path, issue.line) for issue in tmfset.issues
            if "different formats" not in issue.message] == [("t0.tmf", 13), ("last.tmf", 8)]
    assert tmfset.lookup(G, 16).format == "%0indented"   # the first of the three read
