"""The table of compiled patterns (tmf/compiled_patterns.py): on its engine it holds every
pattern of the TMF modules as ``re`` compiles it; elsewhere, or where the engine refuses an
entry, ``re.compile`` makes the pattern."""
from __future__ import annotations

import re

import pytest

from wpptrace.tmf import compiled_patterns, errors, formatspec, grammar, lazyre, loader, render  # noqa: F401

KEYS = sorted(lazyre.PATTERNS, key=lambda key: (repr(key[0]), int(key[1])))


@pytest.fixture
def table():
    """``lazyre``'s table, loaded again after the test."""
    yield
    lazyre._table = None


def test_the_table_is_made_for_this_engine_with_every_pattern():
    """Run tools/compile_patterns.py when a pattern is added or changed (or for another
    interpreter: on one the table was not made for, it is not used)."""
    if compiled_patterns.ENGINE == lazyre.engine():
        assert sorted(compiled_patterns.PATTERNS) == sorted((p, int(f)) for p, f in KEYS)
    else:
        lazyre._table = None
        assert lazyre._load_table() == {}


@pytest.mark.parametrize("key", KEYS, ids=[f"{p!r}"[:40] for p, _f in KEYS])
def test_a_pattern_is_the_one_re_compiles(key):
    pattern, flags = key
    made, expected = lazyre.compiled(pattern, flags), re.compile(pattern, flags)
    assert made == expected                 # flags, code and pattern
    assert (made.groups, made.groupindex) == (expected.groups, expected.groupindex)


def test_another_engine_compiles_with_re(table, monkeypatch):
    monkeypatch.setattr(compiled_patterns, "ENGINE", ("another",))
    lazyre._table = None
    pattern, flags = KEYS[0]
    assert lazyre.compiled(pattern, flags) == re.compile(pattern, flags)
    assert lazyre._table == {}


def test_an_entry_the_engine_refuses_is_compiled_with_re(table):
    lazyre._table = {("a+b", 0): (32, (1, 2, 3), 0, {}, (None,))}   # not code the engine runs
    assert lazyre.compiled("a+b").fullmatch("aab")
    assert lazyre.compiled("a+b") == re.compile("a+b")
