"""Regular expressions of the TMF modules: ``compiled`` makes one, from the table of compiled
patterns (``compiled_patterns``) when it was made on this engine; ``LazyPattern`` makes one the
first time it is used.

Parsing and compiling a pattern costs 0.05-0.5 ms (0.3-3 M instructions), in every process
that needs it: the eight a first TMF message needs cost 11 M, in each ``fmt -j`` process. The
table holds what ``re`` hands its engine for each pattern (tools/compile_patterns.py writes
it), so a process on the same engine (implementation, version, engine constants) only makes
the pattern object; on another, ``re.compile`` makes it. A pattern that only some runs need (a
TMF text to parse, an error to word) costs nothing until one does. Kept apart from the modules
using it so that any of them can import it without importing the others.
"""
from __future__ import annotations

import re
import sys

import _sre   # (re's engine: imported with re)

__all__ = ["LazyPattern", "compiled", "engine", "PATTERNS"]

#: every (pattern, flags) made through this module: the table's keys
PATTERNS: set[tuple[str | bytes, int]] = set()

_table: dict | None = None


def engine() -> tuple:
    """What the table's compiled code depends on: the implementation, its exact version (a
    pre-release's level and serial too: ``sys.hexversion``) and its regular expression engine's
    constants. Nothing else guards the table: the engine runs any code it is handed that is
    well formed."""
    return (sys.implementation.name, sys.hexversion, _sre.MAGIC, _sre.CODESIZE,
            _sre.MAXREPEAT, _sre.MAXGROUPS)


def _load_table() -> dict:
    global _table
    try:
        from . import compiled_patterns
    except ImportError:                 # not made yet (tools/compile_patterns.py makes it)
        _table = {}
    else:
        _table = compiled_patterns.PATTERNS if compiled_patterns.ENGINE == engine() else {}
    return _table


def compiled(pattern: str | bytes, flags: int = 0) -> re.Pattern:
    """``re.compile(pattern, flags)``, from the table when it has the pattern."""
    PATTERNS.add((pattern, flags))
    made = (_table if _table is not None else _load_table()).get((pattern, flags))
    if made is not None:
        final_flags, code, groups, groupindex, indexgroup = made
        try:
            return _sre.compile(pattern, final_flags, list(code), groups, groupindex, indexgroup)
        except (RuntimeError, TypeError, ValueError):   # code this engine refuses: made again
            pass
    return re.compile(pattern, flags)


class LazyPattern:
    """A pattern compiled when first used; after that its methods are the compiled
    pattern's own (bound methods kept on the instance: no lookup through this class)."""

    _METHODS = ("match", "fullmatch", "search", "finditer", "findall", "split", "sub")

    def __init__(self, pattern: str | bytes, flags: int = 0):
        self.pattern = pattern
        self.flags = flags
        PATTERNS.add((pattern, flags))

    def __getattr__(self, name: str):
        made = compiled(self.pattern, self.flags)
        self.__dict__.update((method, getattr(made, method)) for method in self._METHODS)
        return getattr(made, name)
