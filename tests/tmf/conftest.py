"""Fixtures for the TMF reader tests: directories of real TMF files from the corpus."""
from __future__ import annotations

import pathlib
import shutil

import pytest

import subsets  # tests/corpus/subsets.py (tests/conftest.py puts tests/corpus on sys.path)


@pytest.fixture(scope="session")
def driver_sample(corpus, tmp_path_factory) -> pathlib.Path:
    """A directory holding the ten driver TMFs of ``subsets.DRIVER_SAMPLE`` (most appended twice
    by tracepdb)."""
    out = tmp_path_factory.mktemp("driver-sample")
    for rel in subsets.DRIVER_SAMPLE:
        shutil.copy(corpus / rel, out)
    return out


@pytest.fixture(scope="session")
def findneedle_tmf(corpus) -> pathlib.Path:
    """The four TMF files tracepdb wrote for the findneedle WPP test providers."""
    return corpus / subsets.FINDNEEDLE / "tmf"
