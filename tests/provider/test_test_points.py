"""The core's test points (WPT_POINT_* in _etw_internal.h) each have a number of their own: a test
waiting for one point must not be woken by another that shares its number (the compiler accepts
two enumerators with the same value)."""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

HEADER = Path(__file__).resolve().parents[2] / "provider" / "csrc" / "_etw_internal.h"


def test_points_by_number() -> None:
    points = re.findall(r"^\s*(WPT_POINT_[A-Z0-9_]+)\s*=\s*(\d+)\s*,", HEADER.read_text(), re.M)
    assert len(points) > 40                     # the enumeration was found and read
    names_of: dict[int, list[str]] = defaultdict(list)
    for name, number in points:
        names_of[int(number)].append(name)
    assert {n: names for n, names in names_of.items() if len(names) > 1} == {}
