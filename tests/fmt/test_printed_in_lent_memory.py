"""fmt into a text stream whose byte buffer lends memory for the bytes it is given next
(``room()``): the C renderer prints each chunk there (text, CSV, JSON Lines), the stream gets
it without a copy; a chunk larger than the room goes to the renderer's own memory, and
nothing is written past the room."""
from __future__ import annotations

import io
import os

import pytest

from wpptrace.decoder import cli_fmt
from wpptrace.decoder._hazmat import address_of

import golden_traces  # the rendering tests' deterministic traces (on the path by conftest)


@pytest.fixture(scope="module")
def repeat(tmp_path_factory, corpus):
    """A trace whose only line Python prints is the log-file header's, in the first chunk."""
    return golden_traces.build("repeat", tmp_path_factory.mktemp("lent"), corpus)


def _run(repeat, fmt: str, stream) -> None:
    etls, tmfs = repeat
    code = cli_fmt.run_fmt(cli_fmt.FmtOptions(files=[str(etls[0])], tmf_dirs=tmfs, utc=True,
                                              output_format=fmt, summary=os.devnull),
                           out=stream, err=io.StringIO())
    assert code == 0
    stream.flush()


class _Lender(io.BufferedIOBase):
    """A byte buffer that lends ``room`` bytes of memory (then guard bytes) for the next bytes
    written, and keeps the bytes written, counting those printed in its memory."""

    GUARD = 0xA5

    def __init__(self, room: int) -> None:
        super().__init__()
        self.lent = room
        self.memory = bytearray([self.GUARD]) * (room + 4096)
        self.data = bytearray()
        self.in_place: list[int] = []     # the sizes of the writes printed in its memory
        self.copied: list[int] = []       # and of the others

    def writable(self) -> bool:
        return True

    def room(self) -> tuple[int, int]:
        return address_of(self.memory), self.lent

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if view.nbytes:
            printed_here = address_of(view) == address_of(self.memory)
            (self.in_place if printed_here else self.copied).append(view.nbytes)
        self.data += view
        return view.nbytes


@pytest.mark.parametrize("fmt", ["text", "csv", "jsonl"])
@pytest.mark.parametrize("room", [1 << 22, 1000, 0])
def test_a_stream_lending_memory_gets_the_chunks_printed_there(repeat, fmt, room):
    """Into a text stream over a byte buffer that lends memory, the renderer prints each
    chunk there (but the first, holding the header line Python prints, and the CSV header);
    a chunk larger than the room goes to the renderer's own memory, nothing written past
    the room."""
    one = io.BytesIO()
    stream = io.TextIOWrapper(one, encoding="utf-8", newline="\n")
    _run(repeat, fmt, stream)
    lender = _Lender(room)
    _run(repeat, fmt, io.TextIOWrapper(lender, encoding="utf-8", newline="\n"))
    assert bytes(lender.data) == one.getvalue()
    assert set(lender.memory[room:]) == {lender.GUARD}
    assert all(size <= room for size in lender.in_place)
    if room == 1 << 22:
        assert len(lender.in_place) >= 2 and len(lender.copied) == 1 + (fmt == "csv")
    elif room:
        assert lender.in_place and max(lender.copied) > room
    else:
        assert not lender.in_place
