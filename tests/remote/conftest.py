"""Fixtures for the relay/collector tests: traced sessions, a collector, relays, decoding."""
from __future__ import annotations

import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # remote_helpers

from remote_helpers import MESSAGE_GUID, TMF_TEXT, TracedSession, data_buffers  # noqa: E402


@pytest.fixture
def tmf_dir(tmp_path) -> pathlib.Path:
    """The TMF of the test messages (one format, three unique arguments per event)."""
    d = tmp_path / "tmf"
    d.mkdir()
    (d / f"{MESSAGE_GUID}.tmf").write_text(TMF_TEXT, encoding="utf-8")
    return d


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[bytes, list[bytes]]:
    """A real session's 8 KB buffers, for peers that send them by hand: (header buffer, data
    buffers)."""
    d = tmp_path_factory.mktemp("recorded")
    with TracedSession(d, "recorded", buffer_kb=8) as session:
        session.log(1500, size=40)
    data = session.path.read_bytes()
    return data[:int.from_bytes(data[:4], "little")], data_buffers(session.path)
