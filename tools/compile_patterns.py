#!/usr/bin/env python3
"""Write tmf/compiled_patterns.py: the TMF modules' regular expressions as this interpreter's
``re`` compiles them, so that a process on the same engine makes each from the table
(``wpptrace.tmf.lazyre.compiled``) instead of parsing and compiling it again. Run it again
after adding or changing a pattern there, or to make the table for another interpreter
(tests/tmf/test_compiled_patterns.py finds a table that differs from what ``re`` makes).

Usage: python3 tools/compile_patterns.py [--check]
"""
from __future__ import annotations

import argparse
import pathlib
import sys

REPO = pathlib.Path(__file__).resolve().parent.parent
TARGET = REPO / "tmf" / "compiled_patterns.py"

HEADER = '''"""The TMF modules' regular expressions as the ``re`` of one engine (``ENGINE``: implementation,
version, engine constants) compiles them: for each (pattern, flags), what ``re`` hands the
engine to make the pattern object (flags, code, groups, group names, names by index), which
``wpptrace.tmf.lazyre.compiled`` hands it on the same engine. Made by tools/compile_patterns.py:
do not edit."""

'''


def _compile_arguments(pattern, flags: int) -> tuple:
    """What ``re.compile(pattern, flags)`` hands ``_sre.compile`` (after the pattern)."""
    try:
        from re import _compiler
    except ImportError:                       # before 3.11
        import sre_compile as _compiler
    engine, seen = _compiler._sre, []

    class Capture:
        def __getattr__(self, name):
            return getattr(engine, name)

        @staticmethod
        def compile(*args):
            seen.append(args)
            return engine.compile(*args)

    _compiler._sre = Capture()
    try:
        _compiler.compile(pattern, flags)
    finally:
        _compiler._sre = engine
    _pattern, final_flags, code, groups, groupindex, indexgroup = seen[0]
    return int(final_flags), tuple(map(int, code)), int(groups), dict(groupindex), tuple(indexgroup)


def _code_text(code: tuple) -> str:
    rows = [", ".join(str(int(c)) for c in code[i:i + 16]) for i in range(0, len(code), 16)]
    return "(\n            " + ",\n            ".join(rows) + ",\n        )"


def table_text() -> str:
    from wpptrace.tmf import errors, formatspec, grammar, lazyre, loader, render  # noqa: F401  (their patterns)

    lines = [HEADER, f"ENGINE = {lazyre.engine()!r}\n\n", "PATTERNS = {\n"]
    for pattern, flags in sorted(lazyre.PATTERNS, key=lambda key: (repr(key[0]), int(key[1]))):
        final_flags, code, groups, groupindex, indexgroup = _compile_arguments(pattern, flags)
        lines.append(f"    ({pattern!r}, {int(flags)}): (\n        {final_flags}, {_code_text(code)},\n"
                     f"        {groups}, {groupindex!r}, {indexgroup!r},\n    ),\n")
    lines.append("}\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only say whether the table is up to date")
    args = ap.parse_args(argv)
    text = table_text()
    if args.check:
        same = TARGET.exists() and TARGET.read_text() == text
        print(f"{TARGET.relative_to(REPO)}: {'up to date' if same else 'out of date'}")
        return 0 if same else 1
    TARGET.write_text(text)
    print(f"wrote {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
