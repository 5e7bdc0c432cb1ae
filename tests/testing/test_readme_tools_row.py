"""The README's layout table names every script in tools/."""
from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_the_tools_row_names_every_tool():
    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `tools/` |"))
    scripts = sorted(path.name for path in (ROOT / "tools").glob("*.py"))
    assert scripts and [name for name in scripts if f"`{name}`" not in row] == []
