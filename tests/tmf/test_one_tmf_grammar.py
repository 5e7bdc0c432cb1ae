"""TMF files have one grammar, docs/tmf-grammar.md, and the parser follows it: tmf-format.md
gives the evidence and keeps no second BNF that could disagree (its "last quote on the line"
rule would end the format below inside the trailer)."""
from __future__ import annotations

import pathlib

from wpptrace import tmf

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
HEADER = "// PDB: x.pdb\n01234567-89ab-cdef-0123-456789abcdef comp // SRC=a.c MJ= MN=\n"


def test_the_format_ends_at_the_last_quote_before_the_trailer():
    (message,) = tmf.parse_text(HEADER + '#typev a_c1 10 "abc" // FUNC="x" y\n{\n}\n').messages()
    assert message.format == "abc" and message.trailer["FUNC"] == '"x" y'


def test_tmf_format_keeps_no_grammar_of_its_own():
    text = (DOCS / "tmf-format.md").read_text(encoding="utf-8")
    assert "::=" not in text
    assert "The one grammar of a TMF file is `tmf-grammar.md`" in text
    assert "::=" in (DOCS / "tmf-grammar.md").read_text(encoding="utf-8")
