"""Decoder engine tests: make the helper modules beside this file importable, and the fixture
the damage tests read a damaged file's bytes with."""
from __future__ import annotations

import io
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))   # dec_dissect, dec_damage, dec_etlgen helpers


@pytest.fixture(params=["BytesIO", "path"])
def scan_summary(request, tmp_path):
    """``scan_summary(data)``: (records, skipped buffers, the errors as said) of ``data`` read as
    ``x.etl`` through a file object, or as a file by its path (its buffers then located by the
    C index, as fmt reads them): each test runs both ways, and both must say the same."""
    from wpptrace.decoder.etlfile import EtlFile

    def scan_summary(data: bytes) -> tuple[int, int, list[str]]:
        source: io.BytesIO | str = io.BytesIO(data)
        if request.param == "path":
            (tmp_path / "x.etl").write_bytes(data)
            source = str(tmp_path / "x.etl")
        with EtlFile(source, name="x.etl") as etl:
            stats = etl.scan()
            return stats.records, stats.skipped, [str(e) for e in etl.errors]
    return scan_summary
