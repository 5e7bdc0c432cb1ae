"""PDB test fixtures: the fixture PDB paths, and an MSF 7.0 packer for synthetic containers.

``build_msf`` packs streams into an MSF file with any page size (512..65536), optionally in
scattered page order, so the tests can re-pack the real fixtures and hand-make broken
containers. (tests run with --import-mode=importlib, so helpers are handed out as fixtures.)
"""
from __future__ import annotations

import pathlib
import random
import struct
import types

import pytest

from wpptrace.tmf.pdb.msf import MSF7_MAGIC, MsfFile

NIL = None


def streams_of(path_or_bytes) -> list[bytes | None]:
    """All streams of an existing PDB (None for nil streams)."""
    with MsfFile(path_or_bytes) as msf:
        return [msf.stream(i).data if msf.has_stream(i) else NIL for i in range(msf.num_streams)]


def build_msf(streams: list[bytes | None], page_size: int = 4096, *, seed: int | None = None) -> bytes:
    """An MSF 7.0 image holding ``streams``; ``seed`` scatters the pages in random order."""
    ps = page_size

    def is_fpm(page: int) -> bool:  # FPM pages 1,2 of every interval, as real writers reserve them
        return page % ps in (1, 2)

    def pages_for(nbytes: int) -> int:
        return -(-nbytes // ps)

    need = sum(pages_for(len(s)) for s in streams if s is not None)
    dir_bytes = 4 + 4 * len(streams) + 4 * need
    dir_pages = pages_for(dir_bytes)
    map_pages = pages_for(4 * dir_pages)
    total = need + dir_pages + map_pages
    free = []
    page = 3
    while len(free) < total:
        if not is_fpm(page):
            free.append(page)
        page += 1
    num_pages = page
    if seed is not None:
        random.Random(seed).shuffle(free)
    take = iter(free)

    image = bytearray(num_pages * ps)

    def place(data) -> bytes:
        """``data`` written into the next free pages, in turn: their numbers (u32 each)."""
        numbers = bytearray()
        for i in range(pages_for(len(data))):
            p = next(take)
            chunk = data[i * ps:(i + 1) * ps]
            image[p * ps:p * ps + len(chunk)] = chunk
            numbers += struct.pack("<I", p)
        return bytes(numbers)

    directory = bytearray(struct.pack("<I", len(streams)))
    lists = bytearray()
    for s in streams:
        directory += struct.pack("<I", 0xFFFFFFFF if s is None else len(s))
        if s is not None:
            lists += place(s)
    directory += lists
    assert len(directory) == dir_bytes
    page_list = place(directory)
    assert len(page_list) == 4 * dir_pages
    map_page_list = place(page_list)
    assert len(map_page_list) == 4 * map_pages
    header = MSF7_MAGIC + struct.pack("<IIIII", ps, 1, num_pages, dir_bytes, 0)
    header += map_page_list
    assert len(header) <= ps, "directory map does not fit in the superblock"
    image[:len(header)] = header
    return bytes(image)


@pytest.fixture(scope="session")
def pdb_data(data_dir: pathlib.Path) -> pathlib.Path:
    return data_dir / "pdb"


@pytest.fixture(scope="session")
def msf_tools() -> types.SimpleNamespace:
    return types.SimpleNamespace(build_msf=build_msf, streams_of=streams_of)


# -- synthetic PDBs: hand-made PDB info, DBI and module symbol streams ----------------------------
def sym(kind: int, payload: bytes) -> bytes:
    """One CodeView symbol record, zero-padded to a multiple of 4 like lld and MSVC do."""
    body = payload + bytes(-(4 + len(payload)) % 4)
    return struct.pack("<HH", 2 + len(body), kind) + body


def proc_sym(name: str, ptr_end: int = 0, kind: int = 0x1110, segment: int = 1, offset: int = 0) -> bytes:
    return sym(kind, struct.pack("<IIIIIIIIHB", 0, ptr_end, 0, 16, 0, 0, 0, offset, segment, 0)
               + name.encode() + b"\0")


def block_sym(ptr_end: int = 0) -> bytes:
    return sym(0x1103, struct.pack("<IIIIH", 0, ptr_end, 4, 0, 1) + b"\0")


def annotation_sym(*strings: "str | bytes", segment: int = 1, offset: int = 0) -> bytes:
    raw = [s if isinstance(s, bytes) else s.encode() for s in strings]
    return sym(0x1019, struct.pack("<IHH", offset, segment, len(raw)) + b"".join(s + b"\0" for s in raw))


def end_sym() -> bytes:
    return sym(0x0006, b"")


def type_record(kind: int, payload: bytes) -> bytes:
    """One TPI record, padded with LF_PAD bytes (0xF3 0xF2 0xF1) like MSVC does."""
    pad = -(4 + len(payload)) % 4
    body = payload + bytes([0xF0 + n for n in range(pad, 0, -1)])
    return struct.pack("<HH", 2 + len(body), kind) + body


def tpi_stream(records: list[bytes], first_index: int = 0x1000) -> bytes:
    data = b"".join(records)
    header = struct.pack("<IIIII", 20040203, 56, first_index, first_index + len(records), len(data))
    return header + bytes(56 - len(header)) + data


def make_pdb(modules: list[tuple[str, "bytes | None"]], *, dbi_flags: int = 0, machine: int = 0x8664,
             features: tuple[int, ...] = (20140508,), cv_signature: int = 4, page_size: int = 512,
             tpi: bytes = b"") -> bytes:
    """A PDB whose modules hold the given symbol record bytes (None: module without a stream)."""
    info = struct.pack("<III", 20000404, 1, 7) + bytes(range(16)) + struct.pack("<IIIII", 0, 0, 0, 0, 0)
    info += struct.pack("<I", 0) + b"".join(struct.pack("<I", f) for f in features)
    streams: list[bytes | None] = [b"", info, tpi, None, b""]
    modinfo = bytearray()
    for name, symbols in modules:
        index = 0xFFFF
        size = 0
        if symbols is not None:
            data = struct.pack("<I", cv_signature) + symbols
            index, size = len(streams), len(data)
            streams.append(data)
        record = struct.pack("<I", 0) + bytes(28) + struct.pack("<HHIIIHHIII", 0, index, size, 0, 0, 0, 0, 0, 0, 0)
        record += name.encode() + b"\0" + name.encode() + b"\0"
        modinfo += record + bytes(-len(record) % 4)
    dbi = struct.pack("<iIIHHHHHHiiiiiIiiHHI", -1, 19990903, 7, 0xFFFF, 0x8E00, 0xFFFF, 0, 0xFFFF, 0,
                      len(modinfo), 0, 0, 0, 0, 0, 0, 0, dbi_flags, machine, 0) + bytes(modinfo)
    streams[3] = dbi
    return build_msf(streams, page_size)


@pytest.fixture(scope="session")
def pdb_maker() -> types.SimpleNamespace:
    return types.SimpleNamespace(make_pdb=make_pdb, sym=sym, proc=proc_sym, block=block_sym,
                                 annotation=annotation_sym, end=end_sym, type_record=type_record,
                                 tpi_stream=tpi_stream)
