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

from wpptrace.tmf.msf import MSF7_MAGIC, MsfFile

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
    directory = bytearray(struct.pack("<I", len(streams)))
    lists = bytearray()
    for s in streams:
        directory += struct.pack("<I", 0xFFFFFFFF if s is None else len(s))
        if s is None:
            continue
        for i in range(pages_for(len(s))):
            p = next(take)
            chunk = s[i * ps:(i + 1) * ps]
            image[p * ps:p * ps + len(chunk)] = chunk
            lists += struct.pack("<I", p)
    directory += lists
    assert len(directory) == dir_bytes
    dir_page_nums = []
    for i in range(dir_pages):
        p = next(take)
        chunk = directory[i * ps:(i + 1) * ps]
        image[p * ps:p * ps + len(chunk)] = chunk
        dir_page_nums.append(p)
    page_list = b"".join(struct.pack("<I", p) for p in dir_page_nums)
    map_page_nums = []
    for i in range(map_pages):
        p = next(take)
        chunk = page_list[i * ps:(i + 1) * ps]
        image[p * ps:p * ps + len(chunk)] = chunk
        map_page_nums.append(p)
    header = MSF7_MAGIC + struct.pack("<IIIII", ps, 1, num_pages, dir_bytes, 0)
    header += b"".join(struct.pack("<I", p) for p in map_page_nums)
    assert len(header) <= ps, "directory map does not fit in the superblock"
    image[:len(header)] = header
    return bytes(image)


@pytest.fixture(scope="session")
def pdb_data(data_dir: pathlib.Path) -> pathlib.Path:
    return data_dir / "pdb"


@pytest.fixture(scope="session")
def msf_tools() -> types.SimpleNamespace:
    return types.SimpleNamespace(build_msf=build_msf, streams_of=streams_of)
