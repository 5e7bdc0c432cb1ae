"""Fixtures for the relay/collector tests: traced sessions, a collector, relays, decoding."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # remote_helpers

from remote_helpers import TMF_TEXT, MESSAGE_GUID  # noqa: E402


@pytest.fixture
def tmf_dir(tmp_path) -> pathlib.Path:
    """The TMF of the test messages (one format, three unique arguments per event)."""
    d = tmp_path / "tmf"
    d.mkdir()
    (d / f"{MESSAGE_GUID}.tmf").write_text(TMF_TEXT, encoding="utf-8")
    return d
