"""Fixtures for the Arrow / Parquet / Dask tests: the findneedle WPP captures and their TMFs,
the fmt tests' .etl writer, and the fmt benchmark's trace generator (real driver TMFs)."""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "fmt"))  # etlgen (test trace writer)
sys.path.insert(0, str(HERE))                 # arrowhelp


@pytest.fixture(scope="session")
def fmt_data(corpus) -> pathlib.Path:
    """The findneedle WPP captures and their TMF files (tmf/)."""
    return corpus / "wpp" / "guscatalano__findneedle"


@pytest.fixture(scope="session")
def bench_fmt():
    """benchmarks/bench_fmt.py: ``generate(path, events)`` writes a trace of the corpus's real
    driver TMFs (``TMF_DIR``) with unique argument values."""
    spec = importlib.util.spec_from_file_location("bench_fmt", REPO / "benchmarks" / "bench_fmt.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
