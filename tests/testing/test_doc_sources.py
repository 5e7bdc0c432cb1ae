"""The format documents rest only on sources that can be found again: no source whose
repository is unknown, none that is a copy of Microsoft source of unknown origin or a
decompilation (etl-format.md rules those out, and tmf-format.md says the same)."""
from __future__ import annotations

import pathlib
import re

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs"
UNFOUNDED = re.compile(r"not identified|unofficial|Hex-Rays|\[LEGACY|\[RE[\] ]", re.IGNORECASE)


def test_tmf_format_sources_can_be_found_again():
    text = (DOCS / "tmf-format.md").read_text(encoding="utf-8")
    sources = text[text.index("## 13. Sources"):]
    keys = re.findall(r"^\* \*\*(S\d+)\*\*", sources, re.MULTILINE)
    assert keys and len(keys) == len(set(keys))
    assert [line for line in text.splitlines() if UNFOUNDED.search(line)] == []
    cited = set(re.findall(r"\bS\d+\b", text[:text.index("## 13. Sources")]))
    assert cited <= set(keys), sorted(cited - set(keys))       # every key cited is listed


def test_the_format_documents_rule_out_the_same_sources():
    for page in ("etl-format.md", "tmf-format.md"):
        text = " ".join((DOCS / page).read_text(encoding="utf-8").split())
        assert "copies of Microsoft source code of unknown origin" in text, page
        assert "decompilations of Microsoft binaries" in text, page
