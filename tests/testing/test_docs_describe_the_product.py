"""The documentation says what the product does, not how it came to be: no version of it
before this one is described ("earlier versions", "as before", "it was said"), there being no
release that such words could name. docs/api.md is made from the docstrings, so they are
read too."""
from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[2]
HISTORY = re.compile(r"earlier versions?|\bas before\b|allowed before|it was said|behaviou?r changes"
                     r"|earlier (?:session|tree)s?\b|\bare now\b", re.IGNORECASE)
#: a quotation (of another project's changelog, say) is not the product's history
QUOTED = re.compile(r'"[^"]*"')


def test_no_document_tells_the_products_history():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert ROOT / "docs" / "api.md" in pages
    found = [f"{page.relative_to(ROOT)}:{number}: {line.strip()}"
             for page in pages
             for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1)
             if HISTORY.search(QUOTED.sub("", line))]
    assert found == []
