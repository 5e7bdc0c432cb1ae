"""Fixtures for the fmt tests: the findneedle captures, their TMFs, and a decode helper."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # etlgen (test trace writer)



@pytest.fixture(scope="session")
def fmt_data(corpus) -> pathlib.Path:
    """The findneedle WPP captures, their TMF files (tmf/) and a real tracefmt summary (FmtSum.txt)."""
    return corpus / "wpp" / "guscatalano__findneedle"


@pytest.fixture(scope="session")
def fmt_tmf(fmt_data) -> pathlib.Path:
    return fmt_data / "tmf"
