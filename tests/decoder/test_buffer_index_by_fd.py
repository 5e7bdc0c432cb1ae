"""An uncompressed file opened by path has its regular buffers indexed in C (etlindex.c, one
call for the whole file); every buffer the C loop stops at, and every buffer of a file
object, is judged in Python. Both ways give the same index, the same issues and the same
counts, on clean, damaged and cut files; and by path the C loop does read the headers."""
from __future__ import annotations

import io
import os
import random
import struct
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import dec_etlgen as gen
from dec_fuzz import mutate, mutation
from wpptrace.decoder import etlfile
from wpptrace.decoder._hazmat import INDEX_COLUMNS
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.winerror import Win32Error

SIZE = 1024
SEEDS = ["lxcore_kernel.etl", "WindowsUpdate.20251008.140245.443.8.etl", "wppstr-sample.etl",
         "waasmedic.20251005_113019_195.etl"]


def _built(buffers: int = 8) -> bytes:
    return gen.etl_file([(k % 3, k // 3 + 1, [gen.message(10 + k, None, 100 + k, b"ARG")])
                         for k in range(buffers)], buffer_size=SIZE)


def _read(source, name: str):
    try:
        etl = EtlFile(source, name=name)
    except Win32Error as e:
        return "cannot open", str(e)
    with etl:
        index = etl.buffer_index()
        return (etl.compressed, [list(index.column(c)) for c, _ in INDEX_COLUMNS],
                [(e.offset, e.message) for e in etl.errors], etl.issues_dropped,
                etl.stats.empty_buffers, etl.stats.unreadable_buffers, etl._zeroed_slots)


def _same_both_ways(data: bytes):
    fd, path = tempfile.mkstemp(suffix=".etl")
    try:
        os.write(fd, data)
        os.close(fd)
        by_path = _read(path, "damaged.etl")
    finally:
        os.unlink(path)
    assert by_path == _read(io.BytesIO(data), "damaged.etl")
    return by_path


def _put(data: bytearray, offset: int, fmt: str, value: int) -> None:
    struct.pack_into(fmt, data, offset, value)


def _slot(k: int) -> int:
    return k * SIZE


def _zero_header(data: bytearray, k: int, then: bytes | None = None) -> None:
    data[_slot(k):_slot(k) + 0x48] = bytes(0x48)
    if then is not None:
        data[_slot(k) + 0x48:_slot(k) + 0x4C] = then


def _cases():
    clean = _built()
    yield "clean", clean
    d = bytearray(clean)
    _zero_header(d, 3, bytes(4))
    yield "empty slot of zeros", bytes(d)
    d = bytearray(clean)
    _zero_header(d, 3, b"\xff" * 4)
    _zero_header(d, 4, b"\xff" * 4)
    yield "empty slots of fill", bytes(d)
    d = bytearray(clean)
    _zero_header(d, 2)                           # records follow: a damaged buffer
    yield "zeroed header before records", bytes(d)
    d = bytearray(clean)
    _zero_header(d, 8, bytes(4))
    yield "empty last slot", bytes(d)
    d = bytearray(clean)
    _put(d, _slot(5), "<I", 2 * SIZE)
    yield "BufferSize differs", bytes(d)
    d = bytearray(clean)
    _put(d, _slot(1), "<I", SIZE // 2)
    _put(d, _slot(2), "<I", 0)
    yield "BufferSize differs twice in a row", bytes(d)
    d = bytearray(clean)
    _put(d, 0, "<I", SIZE * 2)
    yield "buffer 0 BufferSize differs", bytes(d)
    for cut in (SIZE * 9 - 1, SIZE * 8 + 0x48, SIZE * 8 + 0x47, SIZE * 8 + 0x4A, SIZE * 8 + 1,
                SIZE * 8, SIZE + 0x48, SIZE * 2 - 3):
        yield f"cut at {cut:#x}", clean[:cut]
    yield "zero tail", clean + bytes(4 * SIZE)
    yield "zero tail cut", clean + bytes(2 * SIZE + 100)
    yield "fill tail", clean + b"\xff" * (3 * SIZE)
    d = bytearray(_built(20))
    for k in (5, 6, 9, 14):
        _zero_header(d, k, bytes(4) if k != 9 else None)
    _put(d, _slot(11), "<I", 7)
    _put(d, _slot(12) + 0x28, "<H", 0x2FF)            # processor beyond the header's count
    d[_slot(16) + 0x18:_slot(16) + 0x20] = d[_slot(13) + 0x18:_slot(13) + 0x20]
    yield "mixed damage", bytes(d[:-SIZE // 3])


@pytest.mark.parametrize("name, data", list(_cases()), ids=[n for n, _ in _cases()])
def test_damaged_files_index_the_same_by_path_and_by_file_object(name, data):
    _same_both_ways(data)


@pytest.mark.parametrize("name, data", list(_cases()), ids=[n for n, _ in _cases()])
def test_the_c_reader_stops_and_goes_on_at_chunk_ends(monkeypatch, name, data):
    monkeypatch.setattr(etlfile, "_INDEX_CHUNK", 3)
    _same_both_ways(data)


def test_by_path_the_headers_are_read_in_c(tmp_path, monkeypatch):
    data = _built(40)
    path = tmp_path / "clean.etl"
    path.write_bytes(data)
    reads = []
    real = EtlFile._read_at

    def counting(self, offset, size):
        reads.append(offset)
        return real(self, offset, size)

    with EtlFile(path) as etl:
        monkeypatch.setattr(EtlFile, "_read_at", counting)
        assert len(etl.buffer_index()) == 41
        assert etl.errors == []
    assert reads == []


def test_corpus_seeds_index_the_same_both_ways(corpus_file):
    for name in SEEDS:
        data = corpus_file(name).read_bytes()
        assert _same_both_ways(data)[0] is False, name        # uncompressed: the C path


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_files_index_the_same_both_ways(corpus_file, data):
    seeds = [_built(12)] + [corpus_file(name).read_bytes() for name in SEEDS]
    seed = data.draw(st.sampled_from(seeds))
    mutations = data.draw(st.lists(mutation(len(seed)), min_size=1, max_size=6))
    _same_both_ways(mutate(seed, mutations))


def test_randomly_zeroed_and_resized_headers_index_the_same_both_ways():
    rng = random.Random(1)
    base = _built(30)
    for _ in range(60):
        d = bytearray(base)
        for k in rng.sample(range(1, 31), rng.randint(1, 8)):
            what = rng.randrange(4)
            if what == 0:
                _zero_header(d, k, rng.choice([bytes(4), b"\xff" * 4, None]))
            elif what == 1:
                _put(d, _slot(k), "<I", rng.choice([0, 0x48, SIZE - 8, SIZE * 2]))
            elif what == 2:
                _put(d, _slot(k) + 0x18, "<q", rng.choice([1, 2, 3]))
            else:
                _put(d, _slot(k) + 0x04, "<I", rng.randrange(SIZE))
        _same_both_ways(bytes(d[:rng.choice([len(d), len(d) - rng.randrange(1, 2 * SIZE)])]))
