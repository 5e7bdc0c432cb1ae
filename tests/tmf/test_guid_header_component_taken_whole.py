"""Regression: a GUID header whose component runs into '//' (``<guid>#// name // SRC=...``).

The fast line matcher backtracked into the component and accepted ``#`` as the name with a
made-up trailer, while the grammar (whose component token is taken whole) rejects the line.
Both readers must agree on every line.
"""
import pytest

from wpptrace.tmf import grammar

LINE = "01e9b841-7d67-315a-7b92-23b2033356de#// BthPS3 // SRC=L2CAP.c MJ= MN="


def test_fast_matcher_rejects_what_the_grammar_rejects():
    assert grammar._guid_header_fast(LINE) is None
    with pytest.raises(Exception):
        grammar._guid_header_full(LINE)


def test_fast_matcher_still_takes_ordinary_headers():
    header = grammar._guid_header_fast(
        "01e9b841-7d67-315a-7b92-23b2033356de BthPS3 // SRC=L2CAP.c MJ= MN=")
    assert header.component == "BthPS3"
    assert dict(header.trailer)["SRC"] == "L2CAP.c"
