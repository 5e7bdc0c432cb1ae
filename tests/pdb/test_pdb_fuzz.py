"""Fuzzed PDB input (truncations, flipped bytes, random block maps and sizes) gives PdbError or a result.

Never another exception, never a hang: each case has a hypothesis deadline (RUNAWAY_MS, far
above the few milliseconds a case takes, so it flags runaway work but not a loaded machine). Mutations are aimed
at the parts the reader interprets (superblock, directory, PDB info, DBI and module symbol
streams) as well as anywhere in the file.
"""
from __future__ import annotations

import datetime as dt
import struct
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace.tmf.errors import TmfError
from wpptrace.tmf.pdb.msf import MsfFile, PdbError
from wpptrace.tmf.pdb import PdbTraceInfo, load_pdb, read_pdb
from wpptrace.tmf.pdb.tracepdb import mof_text

WHEN = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
#: per-case bound: ~1000x what a case takes on an idle machine (a few ms)
RUNAWAY_MS = 30_000
FUZZ = settings(max_examples=150, deadline=RUNAWAY_MS, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def target(pdb_data) -> types.SimpleNamespace:
    """The x64 fixture and the file offsets of every byte the reader interprets."""
    raw = (pdb_data / "wpp_x64.pdb").read_bytes()
    with MsfFile(raw) as msf:
        directory = [msf.directory_file_offset(pos) for pos in range(0, msf.directory_bytes, 4)]
        interesting = list(range(0, 0x38))
        for index in (1, 2, 3, 11, 12, 13, 14):  # PDB info, TPI, DBI, the module symbol streams
            stream = msf.stream(index)
            interesting += [stream.file_offset(i) for i in range(len(stream.data))]
        sizes_end = 4 + 4 * msf.num_streams
    return types.SimpleNamespace(raw=raw, directory=directory, size_entries=directory[1:sizes_end // 4],
                                 page_entries=directory[sizes_end // 4:], interesting=interesting,
                                 num_pages=len(raw) // msf.page_size)


def check(blob: bytes, tolerant: bool) -> PdbTraceInfo | None:
    try:
        info = read_pdb(blob, tolerant=tolerant, name="fuzz.pdb")
    except PdbError as err:
        assert err.path == "fuzz.pdb" and str(err).startswith("fuzz.pdb: ")
        assert err.offset is None or 0 <= err.offset <= len(blob), err
        return None
    if not tolerant:
        assert info.issues == []
    info.to_tmf_text_by_guid(WHEN)
    mof_text(info, WHEN)
    return info


def mutate(raw: bytes, edits: list[tuple[int, bytes]]) -> bytes:
    blob = bytearray(raw)
    for pos, value in edits:
        blob[pos:pos + len(value)] = value
    return bytes(blob[:len(raw)])


@FUZZ
@given(cut=st.integers(0, 81920), tolerant=st.booleans())
def test_truncated(target, cut, tolerant):
    check(target.raw[:cut], tolerant)


@FUZZ
@given(st.data())
def test_flipped_bytes_anywhere(target, data):
    edits = data.draw(st.lists(st.tuples(st.integers(0, len(target.raw) - 1), st.binary(min_size=1, max_size=4)),
                               min_size=1, max_size=24))
    check(mutate(target.raw, edits), data.draw(st.booleans()))


@FUZZ
@given(st.data())
def test_flipped_bytes_in_interpreted_structures(target, data):
    positions = st.sampled_from(target.interesting)
    edits = data.draw(st.lists(st.tuples(positions, st.binary(min_size=1, max_size=2)), min_size=1, max_size=12))
    check(mutate(target.raw, edits), data.draw(st.booleans()))


u32_values = st.one_of(st.integers(0, 24), st.integers(0, 2**32 - 1), st.sampled_from([0xFFFFFFFF, 0x7FFFFFFF]))


@FUZZ
@given(st.data())
def test_random_block_map(target, data):
    slots = st.sampled_from(target.page_entries)
    edits = data.draw(st.lists(st.tuples(slots, u32_values.map(lambda v: struct.pack("<I", v))),
                               min_size=1, max_size=16))
    check(mutate(target.raw, edits), data.draw(st.booleans()))


@FUZZ
@given(st.data())
def test_random_stream_sizes_and_superblock(target, data):
    slots = st.sampled_from(target.size_entries + [0x20, 0x24, 0x28, 0x2C, 0x30, 0x34, target.directory[0]])
    edits = data.draw(st.lists(st.tuples(slots, u32_values.map(lambda v: struct.pack("<I", v))),
                               min_size=1, max_size=6))
    check(mutate(target.raw, edits), data.draw(st.booleans()))


@settings(max_examples=60, deadline=RUNAWAY_MS, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_load_pdb_tolerant_on_damaged_symbols(target, data):
    """Through the TMF grammar too: tolerant loading reports problems as TmfErrors only."""
    positions = st.sampled_from(target.interesting)
    edits = data.draw(st.lists(st.tuples(positions, st.binary(min_size=1, max_size=2)), min_size=1, max_size=8))
    try:
        tmfset = load_pdb(mutate(target.raw, edits), tolerant=True, updated=WHEN)
    except TmfError:
        return
    assert all(isinstance(issue, TmfError) for issue in tmfset.issues)


def test_damaged_module_is_skipped_and_reported(target):
    """One bad symbol record ends that module's walk; the other modules are still read."""
    with MsfFile(target.raw) as msf:
        stream = msf.stream(12)  # queue.obj's symbols
    blob = bytearray(target.raw)
    struct.pack_into("<H", blob, stream.file_offset(4), 0xFFF0)  # first record length: far too long
    info = read_pdb(bytes(blob), name="bad.pdb")
    assert len(info.messages) == 8 and len(info.issues) == 1  # queue.c's 2 messages lost
    (issue,) = info.issues
    assert issue.offset == stream.file_offset(4) and "record length 65520" in str(issue)
    assert "stream 12 offset 0x4" in str(issue)
    with pytest.raises(PdbError) as caught:
        read_pdb(bytes(blob), name="bad.pdb", tolerant=False)
    assert caught.value.offset == stream.file_offset(4)


def test_annotation_string_running_past_its_record(target):
    with MsfFile(target.raw) as msf:
        stream = msf.stream(11)
    info = read_pdb(target.raw)
    first = info.annotations[0]
    assert first.stream_index == 11
    blob = bytearray(target.raw)
    struct.pack_into("<H", blob, stream.file_offset(first.stream_offset + 10), 60)  # claims 60 strings
    damaged = read_pdb(bytes(blob))
    assert len(damaged.annotations) == 13 and len(damaged.issues) == 1
    assert "runs past the record end" in str(damaged.issues[0])
