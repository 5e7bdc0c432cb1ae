"""The logfile header's names: NUL-terminated UTF-16LE strings, read like a loop over their
code units would read them (the terminator at an even offset; damaged text replaced)."""
from __future__ import annotations

import random

import pytest

from wpptrace.decoder.etlfile import _utf16z


def _by_code_units(data: bytes) -> tuple[str, bytes]:
    for i in range(0, len(data) - 1, 2):
        if data[i] == 0 and data[i + 1] == 0:
            return data[:i].decode("utf-16-le", "replace"), data[i + 2:]
    return data[: len(data) & ~1].decode("utf-16-le", "replace"), b""


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0", b"\x01\0\0\0", "Log\0rest".encode("utf-16-le"),
                                  b"\0\x01\0", b"\x00\xd8", b"\x00\xd8\x00", b"a\0\x00\xd8\0\0x"])
def test_names_as_code_units_read_them(data):
    assert _utf16z(data) == _by_code_units(data)


def test_random_bytes_read_as_code_units_read_them():
    rng = random.Random(7)
    for _ in range(2000):
        data = bytes(rng.choice((0, 0, 0, 1, 0xD8, 0xDC, 0x41)) for _ in range(rng.randint(0, 14)))
        assert _utf16z(data) == _by_code_units(data)
