"""A program with an empty literal op renders as without it.

No encoder of ours writes one, but a program may come from the program cache or another
``fmt -j`` process: the renderer added an offset to an output buffer not yet made for it
(undefined behaviour, found by fuzzing). Empty literals are now dropped once, when the program
is read, so no row runs them."""
from __future__ import annotations

import struct

import pytest

from wpptrace._core import ffi, lib
from wpptrace.tmf import native


def _program(ops: list[tuple[int, int]], pool: bytes) -> bytes:
    head = struct.pack("<IIHHIiH", lib.WPPR_MAGIC, 0, 0, len(ops), len(pool), -1, 0)
    packed = [struct.pack("<BBBBBBHiiII", lib.WPPR_OP_LIT, 0, 0, 0, 0, 0, 0, -1, -1, off, n)
              for off, n in ops]
    return head + bytes(24 - len(head)) + b"".join(packed) + pool


@pytest.mark.parametrize("ops, text", [
    ([(0, 0)], b"\n"),
    ([(0, 0), (0, 2), (2, 0)], b"hi\n"),
    ([(0, 2), (2, 0), (0, 2)], b"hihi\n"),
])
def test_empty_literals_print_nothing(ops, text):
    renderer = native.NativeRenderer()
    program = renderer.add(_program(ops, b"hi"))
    rows = ffi.new("wppr_row[1]")
    rows[0].program, rows[0].milli, rows[0].pointer_size = program, native.NO_TIME, 8
    rows[0].args = ffi.new("uint8_t[1]")
    assert bytes(renderer.render(rows, 1)[0]) == text
