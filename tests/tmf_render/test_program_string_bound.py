"""A renderer program whose ops print string 65535 of a table that has none is refused.

The bound of the strings a program prints was kept in 16 bits: a PSTR op naming string 0xFFFF
wrapped it to 0, the check against the program's string count passed, and rendering read far
past the table (a crash, text silently lost, or a 4 GiB allocation). Programs come from the
program cache and from the other ``fmt -j`` processes, so the renderer checks every one.
Found by coverage-guided fuzzing of the renderer (a 48-byte program)."""
from __future__ import annotations

import struct

import pytest

from wpptrace._core import ffi, lib
from wpptrace.tmf import native


def _blob(flags: int, shared: int, ops: list[bytes], strings: bytes = b"") -> bytes:
    """A program of ``ops``; ``strings``: each a string of its own (its table, then its pool)."""
    table = b"".join(struct.pack("<II", i, 1) for i in range(len(strings)))
    head = struct.pack("<IIHHIiH", lib.WPPR_MAGIC, flags, 0, len(ops), len(strings), shared,
                       len(strings))
    return head + bytes(24 - len(head)) + b"".join(ops) + table + strings


def _pstr(index: int) -> bytes:
    return struct.pack("<BBBBBBHiiII", lib.WPPR_OP_PSTR, 0, 0, 0, 0, 0, index, 0, -1, 0, 0)


@pytest.mark.parametrize("index", [0, 1, 0xFFFE, 0xFFFF])
def test_a_message_printing_a_string_it_does_not_have_is_refused(index):
    with pytest.raises(ValueError, match="malformed renderer program"):
        native.NativeRenderer().add(_blob(0, -1, [_pstr(index)]))


@pytest.mark.parametrize("index", [0, 0xFFFF])
def test_a_shared_prefix_printing_more_strings_than_its_message_has_is_refused(index):
    renderer = native.NativeRenderer()
    prefix = renderer.add(_blob(lib.WPPR_P_SHARED, -1, [_pstr(index)]))   # checked when named
    with pytest.raises(ValueError, match="malformed renderer program"):
        renderer.add(_blob(lib.WPPR_P_PREFIX, prefix, []))


def test_a_message_printing_a_string_it_has_renders_it():
    """The same layout with the string there is taken and printed (the refusals above are the
    bound's, not the layout's)."""
    renderer = native.NativeRenderer()
    program = renderer.add(_blob(0, -1, [_pstr(1)], strings=b"ab"))
    rows = ffi.new("wppr_row[1]")
    rows[0].program, rows[0].milli, rows[0].pointer_size = program, native.NO_TIME, 8
    rows[0].args = ffi.new("uint8_t[1]")
    assert bytes(renderer.render(rows, 1)[0]) == b"b\n"

