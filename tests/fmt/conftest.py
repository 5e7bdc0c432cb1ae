"""Fixtures for the fmt tests: the findneedle captures, their TMFs, and a decode helper."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # etlgen (test trace writer)

FMT_DATA = HERE.parent / "data" / "fmt"


@pytest.fixture(scope="session")
def fmt_data() -> pathlib.Path:
    return FMT_DATA


@pytest.fixture(scope="session")
def fmt_tmf() -> pathlib.Path:
    return FMT_DATA / "tmf"
