"""Regression: an "unexpected line" error still says what was expected.

The message text "unexpected line" contains the substring "expected", which once suppressed the
"(expected ...)" part of the error.
"""
from __future__ import annotations

import pytest

from wpptrace.tmf import TmfError, parse_text


def test_unexpected_line_names_what_was_expected():
    with pytest.raises(TmfError) as info:
        parse_text('abc-not-a-guid x\n#typev foo 10 "%10!d!"\n', path="bad.tmf")
    text = str(info.value)
    assert text.splitlines()[0] == (
        "bad.tmf:1:1: unexpected line (expected comment, GUID header, #typev line or #enumv line)")
    assert text.splitlines()[1:] == ["abc-not-a-guid x", "^"]
