"""Regression: an argument line missing its "--" before the insert number says what may follow.

It used to say pyparsing's "expected end of text, found '11'", which does not tell the user that
the "-- N" insert mark is what is missing.
"""
from __future__ import annotations

import pytest

from wpptrace.tmf import TmfError, parse_text

HEADER = "744151fd-b3f4-32e6-38eb-0fd11e3fb62d findneedle // SRC=a.cpp MJ= MN="


def test_missing_insert_mark_names_the_insert_number():
    text = HEADER + '\n#typev a 10 "%0id=%10!d!" //   LEVEL=L FUNC=main\n{\ni, ItemLong 10\n}\n'
    with pytest.raises(TmfError) as info:
        parse_text(text, path="bad.tmf")
    err = info.value
    assert (err.line, err.column, err.expected) == (4, 13, '"-- N" insert number or end of line')
    assert str(err).splitlines() == [
        "bad.tmf:4:13: bad argument line: expected \"-- N\" insert number or end of line, found '10'",
        "i, ItemLong 10",
        " " * 12 + "^",
    ]
