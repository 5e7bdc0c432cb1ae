"""Helpers for the Python-provider tests: in-process sessions and decoding with the full path."""
from __future__ import annotations

import contextlib
import importlib.util
import pathlib
import sys
import uuid

import pytest

HERE = pathlib.Path(__file__).resolve().parent


def load_module(name: str, path: pathlib.Path):
    """Import a test program by path (tests are not a package)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def etl_session(path: pathlib.Path, *, buffer_kb: int = 64):
    """A file session (sequential mode) started for the block and stopped after it."""
    from wpptrace.provider import api

    props = api.EVENT_TRACE_PROPERTIES(BufferSize=buffer_kb, MinimumBuffers=4, MaximumBuffers=32,
                                       LogFileMode=1, LogFileName=str(path))
    name = f"pyprovider-{uuid.uuid4().hex[:12]}"
    handle = api.StartTrace(name, props)
    try:
        yield handle
    finally:
        api.ControlTrace(handle, None, None, 1)  # EVENT_TRACE_CONTROL_STOP


def decode_lines(etl: pathlib.Path, tmf_dir: pathlib.Path, tmp_path: pathlib.Path) -> list[str]:
    """``wpptrace fmt FILE -p DIR --no-prefix``: message lines (the EventTrace header line dropped)."""
    from wpptrace.cli import main

    out = tmp_path / f"{etl.stem}.txt"
    assert main(["fmt", str(etl), "-p", str(tmf_dir), "--no-prefix", "-o", str(out)]) == 0
    lines = out.read_text(encoding="utf-8").split("\n")
    assert lines[0] == "EventTrace"
    return [line for line in lines[1:] if line]


def message_payloads(etl: pathlib.Path) -> list[tuple[int, bytes]]:
    """(message number, argument bytes) of every message record, in ProcessTrace order."""
    from wpptrace.decoder import ordered_records
    from wpptrace.decoder.etlfile import EtlFile
    with EtlFile(str(etl)) as f:
        return [(r.event_id, bytes(r.user_data)) for r in ordered_records(f) if r.kind == "message"]


@pytest.fixture
def rt_app():
    return load_module("pyprovider_rt_app", HERE / "rt_app.py")


class Helpers:
    """The helpers above as a fixture (test modules cannot import conftest under importlib mode)."""

    here = HERE
    load_module = staticmethod(load_module)
    etl_session = staticmethod(etl_session)
    decode_lines = staticmethod(decode_lines)
    message_payloads = staticmethod(message_payloads)


@pytest.fixture
def pp() -> Helpers:
    return Helpers()
