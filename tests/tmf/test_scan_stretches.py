"""A lazy read splits a TMF text at the entries written as tracepdb writes them and defers each
stretch of them at once; whatever else the text holds is read unit by unit, or line by line.
Around every kind of line that ends a stretch, the three readings defer the same entries (with
their line numbers and priority), report the same problems at once, and give the same messages
and problems once everything is parsed."""
from __future__ import annotations

import re
import uuid

import pytest

from wpptrace.tmf import grammar
from wpptrace.tmf.model import TmfSet

G = uuid.UUID("0badf00d-1111-4222-8333-444455556666")
H = uuid.UUID("0badf00d-1111-4222-8333-777788889999")

HEADER = f"{G} Comp // SRC=a.c MJ= MN=\n"
OTHER_HEADER = f"{H} Other // SRC=b.c MJ= MN=\n"


def entry(number: int, name: str = "a_c", args: str = "n, ItemLong -- 10\n") -> str:
    return f'#typev {name}{number} {number} "%0message {number} %10!d!" //   FUNC=F{number}\n{{\n{args}}}\n'


def entries(*numbers: int) -> str:
    return "".join(entry(number) for number in numbers)


# what ends a stretch of entries, between two of them
BREAKS = {
    "nothing": "",
    "comment and empty lines": "// PDB:  x.pdb\n\n// PDB:  Last Updated\n",
    "blank line with spaces": "   \n",
    "indented entry": '  #typev a_c50 50 "%0indented" //   FUNC=F\n  {\n  }\n',
    "tab between tokens": '#typev\ta_c51\t51\t"%0tabs"\n{\n}\n',
    "entry of two #typev lines": '#typev a_c52 52 "%0one"\n#typev a_c53 53 "%0two"\n{\n}\n',
    "number too big": '#typev a_c54 70000 "%0too big"\n{\n}\n',
    "leading zeros": '#typev a_c55 00055 "%0zeros"\n{\n}\n',
    "one quote": '#typev a_c56 56 "%0unclosed\n{\n}\n',
    "quote not after the number": '#typev a_c57 57 x"%0late"\n{\n}\n',
    "missing closing brace": '#typev a_c58 58 "%0open"\n{\nn, ItemLong -- 10\n',
    "brace with blanks": '#typev a_c59 59 "%0brace"\n{ \n}\t\n',
    "GUID-like argument": f'#typev a_c60 60 "%0guid %10!s!"\n{{\n{H}, ItemGuid -- 10\n}}\n',
    "bad argument": '#typev a_c61 61 "%0bad %10!d!"\n{\nn, ItemLong -- 100\n}\n',
    "block without #typev": "{\nn, ItemLong -- 10\n}\n",
    "unexpected line": "what is this\n",
    "enum": "#enumv _E\n{\nA,0x1\n}\n",
    "other GUID": OTHER_HEADER,
    "same GUID again": HEADER,
    "bad GUID header": "0badf00d-1111-4222-8333-44445555666 Comp\n",
    "numbers read again": entries(10, 11),
    "arguments starting with hex digits": entry(63, args="dw, ItemLong -- 10\nabcdef01x, ItemLong -- 11\n"),
    "non-ASCII name": '#typev a_c\u00e962 62 "%0accent"\n{\n}\n',
}


def _deferred(tmfset: TmfSet) -> list:
    """Each deferred key, in the order noted, with the (line index, priority) of its entries."""
    def line(entries, i):
        return entries.index if i is None else entries.line_index(i)
    return [(key, [(line(entries, i), priority)
                   for _noted, entries, i, priority in tmfset._deferred[key[0]][key[1]]])
            for key in tmfset._deferred_keys()]


def _read(*texts: str) -> tuple:
    """What lazy reads of ``texts`` into one set defer and report at once (the later texts
    at higher priorities), then every message and problem once everything is parsed."""
    tmfset = TmfSet()
    for priority, text in enumerate(texts, -len(texts)):
        grammar.parse_into(tmfset, text, f"t{priority}.tmf", tolerant=True, priority=priority, lazy=True)
    at_once = (_deferred(tmfset), [str(issue) for issue in tmfset.issues])
    tmfset.load_all()
    messages = sorted((key, message, tmfset._priority[key]) for key, message in tmfset._messages.items())
    return at_once, messages, [str(issue) for issue in tmfset.issues]


def _three_readings(*texts: str, monkeypatch) -> list:
    """The lazy reading, unit by unit and line by line; the lazy reading of the pattern's
    split (its pieces; the lazy one reads the C split's lengths) is checked to be the lazy one."""
    readings = [_read(*texts)]
    with monkeypatch.context() as patch:
        patch.setattr(grammar, "tile_split", grammar.pattern_split)   # the pattern's pieces
        assert _read(*texts) == readings[0]
        patch.setattr(grammar, "split_text", lambda text: ([], [text], None))  # unit by unit
        readings.append(_read(*texts))
        patch.setattr(grammar, "_FAST_UNIT", re.compile(r"(?!)"))  # line by line
        readings.append(_read(*texts))
    return readings


@pytest.mark.parametrize("between", BREAKS.values(), ids=BREAKS.keys())
def test_a_stretch_ends_where_the_entries_do(between, monkeypatch):
    text = "// PDB:  x.pdb\n" + HEADER + entries(10, 11, 12) + between + entries(11, 20, 21) + "\n"
    scanned, by_unit, by_line = _three_readings(text, monkeypatch=monkeypatch)
    assert scanned == by_unit == by_line
    assert scanned[0][0], "some entries are deferred"


@pytest.mark.parametrize("text", [
    entries(10, 11) + HEADER + entries(12),                     # no GUID header yet
    HEADER + entries(10, 11)[:-1],                              # no newline at the end
    HEADER + entries(10) + '#typev a_c11 11 "%0cut"\n{\n',      # the text ends in a block
    HEADER + entries(10) + "// last\n\n",
    "",
], ids=["entries before the header", "no final newline", "ends in a block", "ends with comments",
        "empty"])
def test_the_ends_of_a_text(text, monkeypatch):
    scanned, by_unit, by_line = _three_readings(text, monkeypatch=monkeypatch)
    assert scanned == by_unit == by_line


def test_a_guid_in_two_files_of_two_priorities(monkeypatch):
    """The entries of both files are deferred under the same keys, in reading order (the
    lower priority's first here); the higher priority's message wins unless it is broken."""
    low = HEADER + entries(10, 11) + entry(12, args="n, ItemLong -- 100\n") + entries(13)
    high = HEADER + entry(11, args="n, ItemLong -- 100\n") + entries(12, 13, 14)
    scanned, by_unit, by_line = _three_readings(low, high, monkeypatch=monkeypatch)
    assert scanned == by_unit == by_line
    deferred = dict(scanned[0][0])
    assert deferred[G.int, 12] == [(9, -2), (5, -1)] and deferred[G.int, 14] == [(13, -1)]
    messages = {key[1]: (message.origin, priority) for key, message, priority in scanned[1]}
    assert messages == {10: ("t-2.tmf:2", -2), 11: ("t-2.tmf:6", -2), 12: ("t-1.tmf:6", -1),
                        13: ("t-1.tmf:10", -1), 14: ("t-1.tmf:14", -1)}


def test_line_numbers_of_deferred_entries_are_exact(monkeypatch):
    """Line numbers are counted when an entry is parsed: its message's origin and the position
    of a problem in it are those of reading the whole file at once."""
    text = ("// PDB:  x.pdb\n" + HEADER + entries(10) + "// again\n\n" + entries(11)
            + entry(12, args="n, ItemLong -- 100\n") + OTHER_HEADER + entries(13))
    lazy = grammar.parse_into(TmfSet(), text, "t.tmf", tolerant=True, lazy=True)
    eager = grammar.parse_into(TmfSet(), text, "t.tmf", tolerant=True)
    assert not lazy.issues and lazy._deferred
    by_line = []
    real = grammar._Parser.message
    monkeypatch.setattr(grammar._Parser, "message",
                        lambda self, lines, index: by_line.append(index) or real(self, lines, index))
    assert lazy.lookup(G, 10).origin == eager.lookup(G, 10).origin == "t.tmf:3"
    assert by_line == []   # the // and empty lines after its "}" are not the entry's
    assert lazy.lookup(G, 11).origin == eager.lookup(G, 11).origin == "t.tmf:9"
    assert lazy.lookup(H, 13).origin == "t.tmf:18"
    assert lazy.lookup(G, 12) is None   # its problem is reported now, where it is
    assert by_line == [12]
    assert [(issue.line, issue.column) for issue in lazy.issues] == [(15, 16)]
    assert list(map(str, lazy.issues)) == list(map(str, eager.issues))


def test_the_c_split_parses_an_entry_from_the_text_when_it_is_looked_up():
    """The C split holds no piece of the text: an entry's #typev line and block are cut from
    the text when one of its messages is looked up, with its line number, and only that
    entry is parsed."""
    text = ("// PDB:  x.pdb\n" + HEADER + entries(10) + "// again\n\n" + entries(11, 12)
            + OTHER_HEADER + entries(13, 10))
    lazy = grammar.parse_into(TmfSet(), text, "t.tmf", tolerant=True, lazy=True)
    eager = grammar.parse_into(TmfSet(), text, "t.tmf", tolerant=True)
    runs = {id(entries): entries for by_number in lazy._deferred.values()
            for found in by_number.values() for _noted, entries, _i, _priority in found}
    assert len(runs) == 2 and all(type(run).__name__ == "_SpannedRun" for run in runs.values())
    assert all(type(piece) is int for run in runs.values() for piece in run.pieces)
    for guid, number in ((G, 12), (H, 10), (G, 11), (H, 13), (G, 10)):
        assert lazy.lookup(guid, number) == eager.lookup(guid, number)
    assert [lazy.lookup(G, 12).origin, lazy.lookup(H, 10).origin] == ["t.tmf:13", "t.tmf:22"]
    assert not lazy.issues and not lazy._deferred
