"""The C renderer printing into memory it borrows (``wppr_buf_borrow`` / ``wppr_buf_return``):
the text lies in that memory while it fits; a text that outgrows it moves to the renderer's
own memory, nothing is written past the room lent, and the lent memory is never freed."""
from __future__ import annotations

import uuid

import pytest

from wpptrace._core import ffi, lib
from wpptrace.tmf import native
from wpptrace.tmf.model import Argument, Message
from wpptrace.tmf.render import MessageFormatter

GUARD = 0xA5
ROWS = 200


class Batch:
    """A renderer with one program and ROWS rows of it, rendered into ``renderer.out``."""

    def __init__(self) -> None:
        message = Message(guid=uuid.UUID("0badf00d-0000-4000-8000-00000000b0b0"), number=1,
                          name="m", format="row %10!d! of the batch: %11!s!",
                          args=(Argument("n", "ItemLong", (), 10), Argument("s", "ItemString", (), 11)))
        args, ops = MessageFormatter(message, None).native_ops({})
        self.renderer = native.NativeRenderer(utc=True, noprefix=True)
        program = self.renderer.add(native.encode(args, ops, None, prefix=False))
        self.rows = ffi.new("wppr_row[]", ROWS)
        self._data = [(n).to_bytes(4, "little") + b"x" * (n % 37) + b"\0" for n in range(ROWS)]
        self._keep = [ffi.from_buffer(data) for data in self._data]
        for row, data, keep in zip(self.rows, self._data, self._keep):
            row.args, row.size, row.program, row.pointer_size = keep, len(data), program, 8
        self._holes = ffi.new("uint32_t[]", ROWS)
        self._hole_at = ffi.new("uint64_t[]", ROWS)
        self._nholes = ffi.new("uint32_t *")

    @property
    def out(self):
        return self.renderer.out

    def render(self) -> bytes:
        """Render the rows, appended to ``out`` as it is: its text."""
        assert lib.wppr_render(self.renderer.raw, self.rows, ROWS, self.out, self._holes,
                               self._hole_at, self._nholes) == 0
        assert self._nholes[0] == 0
        return ffi.buffer(self.out.data, self.out.len)[:]

    def expected(self) -> bytes:
        return b"".join(b"row %d of the batch: %s\n" % (n, b"x" * (n % 37)) for n in range(ROWS))


def _lent(room: int, guard: int = 4096) -> bytearray:
    return bytearray([GUARD]) * (room + guard)


def _address(cdata) -> int:
    return int(ffi.cast("uintptr_t", cdata))


def address_of(memory: bytearray) -> int:
    return _address(ffi.from_buffer(memory))


@pytest.mark.parametrize("own_first", [False, True])
def test_a_text_that_fits_is_printed_in_the_lent_memory(own_first):
    """Printed in the lent memory whether or not the renderer has memory of its own yet;
    given back, the renderer prints in its own memory as before, not moved."""
    batch = Batch()
    expected = batch.expected()
    own = None
    if own_first:
        batch.out.len = 0
        assert batch.render() == expected
        own = _address(batch.out.data)
    memory = _lent(len(expected))
    lib.wppr_buf_borrow(batch.out, ffi.from_buffer(memory), len(expected))
    assert batch.render() == expected
    assert _address(batch.out.data) == address_of(memory) and batch.out.borrowed
    assert memory[:len(expected)] == expected and set(memory[len(expected):]) == {GUARD}
    lib.wppr_buf_return(batch.out)
    assert not batch.out.borrowed and batch.out.len == 0
    assert (_address(batch.out.data) == own) if own_first else batch.out.data == ffi.NULL
    assert batch.render() == expected
    if own_first:
        assert _address(batch.out.data) == own
    assert memory[:len(expected)] == expected     # the text printed there stays


@pytest.mark.parametrize("own_first", [False, True])
@pytest.mark.parametrize("room", [0, 1, 100, "half", "all but one"])
def test_a_text_outgrowing_the_lent_memory_moves_to_the_renderers_own(own_first, room):
    """The text printed so far moves to the renderer's own memory (its own buffer when large
    enough, else new memory) and the rest is printed there; nothing is written past the room
    lent; the renderer borrows no more, and giving back changes nothing."""
    batch = Batch()
    expected = batch.expected()
    room = {"half": len(expected) // 2, "all but one": len(expected) - 1}.get(room, room)
    own = None
    if own_first:
        batch.out.len = 0
        batch.render()
        own = _address(batch.out.data)
    memory = _lent(room)
    lib.wppr_buf_borrow(batch.out, ffi.from_buffer(memory), room)
    assert batch.render() == expected
    assert not batch.out.borrowed and _address(batch.out.data) != address_of(memory)
    if own_first:
        assert _address(batch.out.data) == own and batch.out.cap >= 65536
    assert expected.startswith(bytes(memory[:room].rstrip(bytes([GUARD]))))
    assert set(memory[room:]) == {GUARD}
    lib.wppr_buf_return(batch.out)
    assert ffi.buffer(batch.out.data, batch.out.len)[:] == expected
    batch.out.len = 0
    assert batch.render() == expected


def test_lent_memory_is_borrowed_again_and_never_freed():
    """Borrowing again replaces the lent memory (the renderer's own is kept once); freeing
    the buffer while it borrows frees its own memory only, and it starts anew after."""
    batch = Batch()
    expected = batch.expected()
    batch.render()
    own = _address(batch.out.data)
    first, second = _lent(len(expected)), _lent(len(expected))
    for _ in range(3):
        for memory in (first, second):
            lib.wppr_buf_borrow(batch.out, ffi.from_buffer(memory), len(expected))
            assert batch.render() == expected and _address(batch.out.data) == address_of(memory)
    lib.wppr_buf_return(batch.out)
    assert _address(batch.out.data) == own
    lib.wppr_buf_borrow(batch.out, ffi.from_buffer(first), len(expected))
    lib.wppr_buf_free(batch.out)                  # frees the renderer's own memory, not `first`
    assert batch.out.data == ffi.NULL and batch.out.own == ffi.NULL and not batch.out.borrowed
    assert batch.out.len == batch.out.cap == 0
    assert batch.render() == expected
    first[:] = bytes(len(first))                  # still this test's memory
