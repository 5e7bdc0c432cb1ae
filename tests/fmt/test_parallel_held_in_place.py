"""fmt -j N into a file: a window held in memory until its place is known is printed by the
C renderer straight where it is held (text, CSV, JSON Lines), never copied there; a chunk
outgrowing the memory left goes to the process's own file. The bytes one process gives,
either way."""
from __future__ import annotations

import os
import pathlib

import pytest
from fmthelp import hold_up, run_fmt_capture

from wpptrace.decoder import parallel

import golden_traces  # the rendering tests' deterministic traces (on the path by conftest)


@pytest.fixture(scope="module")
def repeat(tmp_path_factory, corpus):
    """A trace whose only line Python prints is the log-file header's, the first one: the
    windows held later are the C renderer's alone."""
    return golden_traces.build("repeat", tmp_path_factory.mktemp("held"), corpus)


def _note(path: pathlib.Path, line: bytes) -> None:
    """Append a line to a file every process of the run appends to (the workers are forked
    from this one)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


class _NotedArena(bytearray):
    """An arena that notes each copy into it (in ``notes``)."""

    def __init__(self, size: int, notes: pathlib.Path) -> None:
        super().__init__(size)
        self.notes = notes

    def __setitem__(self, key, value) -> None:
        _note(self.notes, b"copied %d %d\n" % (os.getpid(), memoryview(value).nbytes))
        super().__setitem__(key, value)

    def madvise(self, *args) -> None:
        pass

    def close(self) -> None:
        pass


def _noted_run(monkeypatch, tmp_path, arena_bytes: int) -> pathlib.Path:
    """From now on each process's arena is a ``_NotedArena`` of ``arena_bytes``, every held
    window notes (in the returned file) its bytes in memory and in the process's file, and
    every window of the worker is decoded before the parent's first one is sized (held)."""
    notes = tmp_path.parent / f"{tmp_path.name}-notes"
    notes.touch()
    real_mmap, real_write_at = parallel.mmap.mmap, parallel._Held.write_at

    def noted_arena(*args, **kwargs):
        if kwargs.get("flags", 0) & parallel.mmap.MAP_PRIVATE:
            return _NotedArena(arena_bytes, notes)
        return real_mmap(*args, **kwargs)

    def noted_write_at(self, start):
        lo, hi = self.memory
        in_file = self.file[1] - self.file[0] if self.file else 0
        _note(notes, b"held %d %d %d\n" % (os.getpid(), hi - lo, in_file))
        return real_write_at(self, start)

    monkeypatch.setattr(parallel, "_ARENA_BYTES", arena_bytes)
    monkeypatch.setattr(parallel.mmap, "mmap", noted_arena)
    monkeypatch.setattr(parallel._Held, "write_at", noted_write_at)
    hold_up(monkeypatch, tmp_path.parent / f"{tmp_path.name}-out-of-windows", "parent")
    return notes


def _notes(path: pathlib.Path) -> tuple[list[int], list[tuple[int, int]]]:
    """(the sizes of the copies into an arena, (bytes in memory, bytes in the file) of each
    held window)."""
    copies, held = [], []
    for line in path.read_text().splitlines():
        kind, _pid, *numbers = line.split()
        if kind == "copied":
            copies.append(int(numbers[0]))
        else:
            held.append((int(numbers[0]), int(numbers[1])))
    return copies, held


def _output(repeat, tmp_path, fmt: str, jobs: int) -> bytes:
    etls, tmfs = repeat
    out = tmp_path / f"out{jobs}.{fmt}"
    code, _stdout, err = run_fmt_capture(etls[0], tmf_files=tmfs, output=str(out), utc=True,
                                         output_format=fmt, jobs=jobs)
    assert code == 0, err
    return out.read_bytes()


@pytest.mark.parametrize("fmt", ["text", "csv", "jsonl"])
def test_held_windows_are_printed_where_they_are_held(repeat, tmp_path, monkeypatch, fmt):
    """Every chunk of a held window is printed by the renderer in the arena, where it stays
    until written at its place: not one byte is copied into the arena."""
    one = _output(repeat, tmp_path, fmt, 1)
    notes = _noted_run(monkeypatch, tmp_path, 8 << 20)
    assert _output(repeat, tmp_path, fmt, 2) == one
    copies, held = _notes(notes)
    assert copies == []
    assert len(held) >= 2 and all(in_file == 0 for _memory, in_file in held)
    assert sum(memory for memory, _in_file in held) > len(one) // 3


@pytest.mark.parametrize("fmt", ["text", "jsonl"])
def test_a_chunk_outgrowing_the_arena_goes_to_the_file(repeat, tmp_path, monkeypatch, fmt):
    """An arena of a fifth of the output, less than the worker's windows hold: a chunk
    outgrows the room left (the renderer moves it to its own memory) and goes with the rest
    of its window to the process's file; nothing is copied into the arena."""
    one = _output(repeat, tmp_path, fmt, 1)
    notes = _noted_run(monkeypatch, tmp_path, len(one) // 5)
    assert _output(repeat, tmp_path, fmt, 2) == one
    copies, held = _notes(notes)
    assert copies == []
    assert any(memory and in_file for memory, in_file in held)
    assert all(memory <= len(one) // 5 for memory, _in_file in held)
