"""Message entries of a TMF directory are parsed when one of their messages is looked up; the
messages, the precedence between duplicates and the problems reported are those of reading
the whole file at once."""
from __future__ import annotations

import uuid

import wpptrace.tmf as tmf
from wpptrace.tmf import grammar

G = uuid.UUID("0badf00d-1111-4222-8333-444455556666")
H = uuid.UUID("0badf00d-1111-4222-8333-777788889999")

TEXT = f"""// PDB: x.pdb
{G} Comp // SRC=a.c
#typev a_c10 10 "%0first 10 %10!d!" //   LEVEL=L FUNC=F1
{{
n, ItemLong -- 10
}}
#typev a_c20 20 "%0entry with two numbers (20)" //   FUNC=F2
#typev a_c21 21 "%0entry with two numbers (21)" //   FUNC=F2
{{
}}
#typev a_c10 10 "%0second 10, appended again by tracepdb" //   FUNC=F3
{{
}}
#typev a_c21 21 "%0an earlier 21? no: a later one" //   FUNC=F4
{{
}}
#typev a_c30 30 "%0bad argument line %10!d!" //   FUNC=F5
{{
n, ItemLong -- 100
}}
#typev a_c31 31 "%0fine %10!s!" //   FUNC=F6
{{
s, ItemString -- 10
}}
#typev a_c40 40 "%0no closing brace"
{{
n, ItemLong -- 10
#typev a_c41 41 "%0after the broken entry" //   FUNC=F7
{{
}}
{H} Other // SRC=b.c
#typev b_c5 5 "%0other GUID in the same file" //   FUNC=F8
{{
}}
"""


def _sets(tmp_path):
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / f"{G}.tmf").write_text(TEXT, encoding="utf-8")
    lazy = tmf.load(directory, use_environment=False)
    eager = tmf.load(directory / f"{G}.tmf", use_environment=False)
    return lazy, eager


def test_lookups_give_what_reading_the_whole_file_gives(tmp_path):
    lazy, eager = _sets(tmp_path)
    for guid, number in [(G, 21), (G, 10), (G, 20), (G, 30), (G, 31), (G, 40), (G, 41), (G, 99),
                         (H, 5)]:
        assert lazy.lookup(guid, number) == eager.lookup(guid, number), (guid, number)
    assert lazy.lookup(G, 10).format == "%0first 10 %10!d!"          # the first of duplicates
    assert lazy.lookup(G, 21).format == "%0entry with two numbers (21)"
    assert list(lazy.messages()) == list(eager.messages())
    assert sorted(map(str, lazy.issues)) == sorted(map(str, eager.issues))
    assert [issue.message for issue in eager.issues if "different formats" not in issue.message] == [
        "bad argument line: expected insert number 1..99, found '100'",
        "missing '}' closing the argument block"]                      # insert 100, no "}"
    assert [issue.line for issue in eager.issues if "different formats" in issue.message] == [3, 8]   # 10, 21


def test_only_the_entries_looked_up_are_parsed(tmp_path, monkeypatch):
    lazy, _eager = _sets(tmp_path)
    parsed = []
    real, real_scanned, real_tile = grammar._Parser.message, grammar._scanned_messages, grammar._tile_message

    def counting(self, lines, index):
        parsed.append(lines[index].split()[2])
        return real(self, lines, index)

    def counting_scanned(typev_line, block, context, index):  # an entry a scan matched
        messages = real_scanned(typev_line, block, context, index)
        if messages is not None:
            parsed.append(typev_line.split()[2])
        return messages

    def counting_tile(typev_line, args, context, index):  # an entry of a tile
        message = real_tile(typev_line, args, context, index)
        if message is not None:
            parsed.append(typev_line.split()[2])
        return message

    monkeypatch.setattr(grammar._Parser, "message", counting)
    monkeypatch.setattr(grammar, "_scanned_messages", counting_scanned)
    monkeypatch.setattr(grammar, "_tile_message", counting_tile)
    assert lazy.lookup(G, 31).format == "%0fine %10!s!"
    # the file is read once: the broken entry is parsed at once (its problem is reported where
    # its block ends: the next #typev line), then the entry looked up
    assert parsed == ["40", "31"]
    assert [issue.line for issue in lazy.issues] == [28]
    assert lazy.lookup(G, 30) is None                                # its problem now reported
    assert parsed == ["40", "31", "30"] and len(lazy.issues) == 2
    assert lazy.lookup(G, 10).format == "%0first 10 %10!d!"
    assert parsed == ["40", "31", "30", "10"]                        # the later 10 cannot win
    assert lazy.has_guid(H) and lazy.component(H) == "Other"
