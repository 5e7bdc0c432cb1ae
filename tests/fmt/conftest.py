"""Fixtures for the fmt tests: the findneedle captures, their TMFs, and the golden driver trace."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # etlgen (test trace writer)
sys.path.insert(0, str(HERE.parent / "tmf_render"))  # golden_traces (the rendering tests' traces)

import golden_traces  # noqa: E402


@pytest.fixture(scope="session")
def fmt_data(corpus) -> pathlib.Path:
    """The findneedle WPP captures, their TMF files (tmf/) and a real tracefmt summary (FmtSum.txt)."""
    return corpus / "wpp" / "guscatalano__findneedle"


@pytest.fixture(scope="session")
def fmt_tmf(fmt_data) -> pathlib.Path:
    return fmt_data / "tmf"


@pytest.fixture(scope="session")
def driver(tmp_path_factory, corpus) -> tuple[pathlib.Path, str]:
    """The golden driver trace (every corpus driver message once) and its TMF directory, written
    once: a test that damages the trace writes its own copy."""
    etls, tmfs = golden_traces.build("driver", tmp_path_factory.mktemp("driver"), corpus)
    return etls[0], tmfs[0]
