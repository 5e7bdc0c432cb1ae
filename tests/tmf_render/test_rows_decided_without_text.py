"""The C renderer asked for no text (``NativeRenderer.text(False)``: fmt's summary alone)
decides every row as it does when printing it: the same rows are left to Python (argument
bytes that do not fit, a bad pointer size, a time only Python places under a prefix that
prints it) and the same rows are counted as each program's; it prints nothing."""
from __future__ import annotations

import itertools
import struct
import uuid

import pytest

from wpptrace._core import ffi
from wpptrace.decoder.prefix import PrefixTemplate
from wpptrace.tmf import native
from wpptrace.tmf.model import Argument, Message
from wpptrace.tmf.render import MessageFormatter

G = uuid.UUID("0badf00d-0000-4000-8000-00000000d0d0")
PREFIX = PrefixTemplate("[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]")
MESSAGES = (
    Message(guid=G, number=1, name="m", format="%0n=%10!d! s=%11!s! p=%12!p!",
            args=(Argument("n", "ItemLong", (), 10), Argument("s", "ItemString", (), 11),
                  Argument("p", "ItemPtr", (), 12))),
    Message(guid=G, number=2, name="w", format="%0%10!S! %11!x!",
            args=(Argument("w", "ItemWString", (), 10), Argument("x", "ItemLong", (), 11))),
    Message(guid=G, number=3, name="t", format="%0no arguments"),
)
PAYLOADS = (
    struct.pack("<i", 7) + b"abc\0" + bytes(8),            # fits at pointer size 8
    struct.pack("<i", 7) + b"abc\0" + bytes(4),            # fits at 4 only
    struct.pack("<i", 7) + b"abc",                         # string without its end
    struct.pack("<h", 7),                                  # cut inside the first argument
    "héllo".encode("utf-16-le") + bytes(2) + bytes(4),     # the wide-string message's
    b"",
)
TIMES = (0, 13_400_000_000_123, native.NO_TIME, native.TIME_OUT_OF_RANGE)
POINTER_SIZES = (8, 4, 3)


def _rendered(noprefix: bool, text: bool) -> tuple[bytes, list[int], bytes]:
    renderer = native.NativeRenderer(utc=True, noprefix=noprefix)
    renderer.text(text)
    programs = []
    for message in MESSAGES:
        args, ops = MessageFormatter(message, None).native_ops({})
        programs.append(renderer.add(native.encode(
            args, ops, PREFIX.native_ops("c", message.name, {}), prefix=True)))
    cases = list(itertools.product(programs, PAYLOADS, TIMES, POINTER_SIZES))
    rows = ffi.new("wppr_row[]", len(cases))
    keep = []
    for row, (program, data, milli, ps) in zip(rows, cases):
        keep.append(ffi.from_buffer(data))
        row.args, row.size, row.program, row.pointer_size = keep[-1], len(data), program, ps
        row.milli, row.thread_id, row.process_id, row.sequence, row.cpu = milli, 0x1A, 0x2B, 9, 1
    out, holes = renderer.render(rows, len(cases))
    return out, [row for row, _at in holes], renderer.rows_rendered()


@pytest.mark.parametrize("noprefix", [False, True], ids=["prefix", "noprefix"])
def test_same_holes_and_counts_without_text(noprefix):
    printed, holes, counts = _rendered(noprefix, text=True)
    quiet, quiet_holes, quiet_counts = _rendered(noprefix, text=False)
    assert quiet == b""
    assert quiet_holes == holes
    assert quiet_counts == counts
    # every kind of hole is among them, and rows printed besides
    assert printed and 0 < len(holes) < len(printed.splitlines()) + len(holes)


def test_out_of_range_time_is_a_hole_only_where_printed():
    _text, holes, _counts = _rendered(False, text=False)
    _text, holes_noprefix, _counts = _rendered(True, text=False)
    assert set(holes_noprefix) < set(holes)     # the prefix's time: holes only with the prefix
