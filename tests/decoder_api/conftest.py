"""Fixtures for the consumer API tests."""
from __future__ import annotations

import pathlib

import pytest


@pytest.fixture(scope="session")
def api_data(data_dir) -> pathlib.Path:
    return data_dir / "decoder_api"
