"""Microsoft's reference pages kept in docs/reference/api are each listed in its README with
the page it copies and the SHA-256 of the copy, so a changed or added page is seen."""
from __future__ import annotations

import hashlib
import pathlib
import re

PAGES = pathlib.Path(__file__).resolve().parents[2] / "docs" / "reference" / "api"


def test_every_copied_page_is_listed_with_its_sum():
    readme = (PAGES / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+\.txt)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.MULTILINE))
    copies = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in PAGES.glob("*.txt")}
    assert copies and listed == copies
    assert "2026-12-02" in readme          # when they were copied in
