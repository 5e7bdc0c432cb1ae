"""The TMF modules' patterns that a run with its messages already compiled (fmt's program
cache warm) never uses are compiled on first use, not at import; once compiled they match as
the pattern compiled by ``re`` does."""
from __future__ import annotations

import re
import subprocess
import sys

from wpptrace.tmf.lazyre import LazyPattern

LAZY = {"grammar": ["_FAST_TYPEV", "_FAST_ARG", "_FAST_GUID_HEADER", "_FAST_UNIT", "_TILE"],
        "loader": ["_TMF_KEY", "_TMF_KEY_AFTER_NEWLINE"],
        "formatspec": ["_NAME_RE"],
        "errors": ["_SAYS_EXPECTED"],
        "render": ["_LINE_RE"]}


def test_importing_the_tmf_modules_compiles_none_of_them():
    check = "; ".join(
        f"import wpptrace.tmf.{module} as m; "
        + "; ".join(f"assert type(m.{name}).__name__ == 'LazyPattern' and "
                    f"'match' not in vars(m.{name}), '{module}.{name}'" for name in names)
        for module, names in LAZY.items())
    subprocess.run([sys.executable, "-c", check], check=True)


def test_a_lazy_pattern_is_the_compiled_pattern():
    lazy = LazyPattern(r"(?P<word>\w+)!", re.I)
    plain = re.compile(r"(?P<word>\w+)!", re.I)
    text = "ab! CD! e"
    assert lazy.match(text).group("word") == plain.match(text).group("word") == "ab"
    assert lazy.split(text) == plain.split(text)
    assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in plain.finditer(text)]
    assert lazy.search(text, 3).span() == plain.search(text, 3).span()
    assert lazy.groupindex == plain.groupindex        # any other attribute: the compiled one's
    assert lazy.pattern == plain.pattern and lazy.flags & re.I
