"""``LazyPattern``: a regular expression compiled the first time it is used.

Compiling a pattern costs 0.05-0.5 ms, in every process that imports the module holding it;
a pattern that only some runs need (a TMF text to parse, an error to word) costs nothing
until one does. Kept apart from the modules using it so that any of them can import it
without importing the others.
"""
from __future__ import annotations

import re

__all__ = ["LazyPattern"]


class LazyPattern:
    """A pattern compiled when first used; after that its methods are the compiled
    pattern's own (bound methods kept on the instance: no lookup through this class)."""

    _METHODS = ("match", "fullmatch", "search", "finditer", "findall", "split", "sub")

    def __init__(self, pattern: str | bytes, flags: int = 0):
        self.pattern = pattern
        self.flags = flags

    def __getattr__(self, name: str):
        compiled = re.compile(self.pattern, self.flags)
        self.__dict__.update((method, getattr(compiled, method)) for method in self._METHODS)
        return getattr(compiled, name)
