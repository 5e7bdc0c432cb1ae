"""Shared test fixtures: where the corpus and the shipped test data live."""
from __future__ import annotations

import os
import pathlib

import pytest

TESTS = pathlib.Path(__file__).resolve().parent
DATA = TESTS / "data"
REPO = TESTS.parent
# The shared corpus sits beside the clone (CI: ../shared). Tests that need files from it
# copy them into tests/data with provenance; the whole corpus is used for sweeps.
SHARED = pathlib.Path(os.environ.get("WPPTRACE_SHARED", REPO.parent / "shared")).resolve()
CORPUS = SHARED / "corpus"


@pytest.fixture(scope="session")
def corpus() -> pathlib.Path:
    if not CORPUS.is_dir():
        pytest.fail(f"the shared corpus is missing: expected it at {CORPUS} (set WPPTRACE_SHARED)")
    return CORPUS


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    return DATA
