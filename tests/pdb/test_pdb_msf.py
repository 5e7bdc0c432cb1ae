"""MSF 7.0 container: page sizes, scattered pages, multi-page directory maps, precise errors."""
from __future__ import annotations

import os
import pickle
import struct

import pytest

from wpptrace.tmf.errors import TmfError
from wpptrace.tmf.pdb.msf import MSF2_MAGIC, MSF7_MAGIC, MSFZ_MAGIC, MsfFile, PdbError
from wpptrace.tmf.pdb import read_pdb


def _messages(info):
    return [(m.guid, m.number, m.lines) for m in info.messages]


def test_fixture_containers(pdb_data):
    with MsfFile(pdb_data / "wpp_x64.pdb") as msf:
        # as `llvm-pdbutil dump -summary` reports them (stream sizes: test_pdb_fixtures)
        assert (msf.page_size, msf.num_pages, msf.num_streams) == (4096, 20, 17)
        assert msf.num_pages * msf.page_size == msf.file_size
        assert msf.stream(1).data[:4] == struct.pack("<I", 20000404)  # PDB info: VC70
        assert msf.stream(3).data[:4] == struct.pack("<i", -1)  # DBI signature
    with MsfFile(pdb_data / "wpp_x86_8k.pdb") as msf:
        assert (msf.page_size, msf.num_pages) == (8192, 21)


def test_stream_file_offsets_point_at_stream_bytes(pdb_data):
    raw = (pdb_data / "wpp_x64.pdb").read_bytes()
    with MsfFile(raw) as msf:
        for index in range(msf.num_streams):
            if not msf.has_stream(index):
                continue
            stream = msf.stream(index)
            for pos in range(0, len(stream.data), 1531):
                assert raw[stream.file_offset(pos)] == stream.data[pos]


@pytest.mark.parametrize("page_size", [512, 1024, 2048, 16384, 65536])
def test_repacked_with_other_page_sizes_reads_the_same(pdb_data, msf_tools, page_size):
    original = read_pdb(pdb_data / "wpp_x64.pdb")
    repacked = msf_tools.build_msf(msf_tools.streams_of(pdb_data / "wpp_x64.pdb"), page_size, seed=page_size)
    info = read_pdb(repacked)
    assert _messages(info) == _messages(original) and len(info.messages) == 10
    assert [c.guid for c in info.control_guids] == [c.guid for c in original.control_guids]
    assert info.issues == []


def test_directory_spanning_several_map_pages(pdb_data, msf_tools):
    streams = msf_tools.streams_of(pdb_data / "wpp_x86_8k.pdb") + [None] * 40000
    image = msf_tools.build_msf(streams, 512, seed=7)
    (dir_bytes,) = struct.unpack_from("<I", image, 0x2C)
    assert -(-(-(-dir_bytes // 512) * 4) // 512) >= 3  # the directory page map itself spans 3+ pages
    info = read_pdb(image)
    assert _messages(info) == _messages(read_pdb(pdb_data / "wpp_x86_8k.pdb"))


def _error(data: bytes) -> PdbError:
    with pytest.raises(PdbError) as caught:
        read_pdb(data, name="t.pdb")
    return caught.value


def test_not_a_pdb():
    err = _error(b"hello world" * 10)
    assert err.offset == 0 and "not a PDB file" in str(err) and str(err).startswith("t.pdb: offset 0x0: ")
    assert isinstance(err, TmfError) and isinstance(err, ValueError)
    assert _error(b"").offset == 0


def test_a_pipe_device_or_directory_is_refused_without_waiting_or_reading(tmp_path, without_blocking):
    """A pipe's open would wait for a writer and a device may never end: refused at once,
    in the wording the TMF reader uses."""
    fifo = tmp_path / "driver.pdb"
    os.mkfifo(fifo)
    for path, said in ((fifo, "not a regular file (a device, pipe or socket): give the .pdb file"),
                       ("/dev/zero", "not a regular file (a device, pipe or socket): give the .pdb file"),
                       (tmp_path, "is a directory: give the .pdb file")):
        with pytest.raises(PdbError) as err:
            without_blocking(lambda: MsfFile(str(path)), f"opening {path}")
        assert str(err.value) == f"{path}: {said}"


def test_msf2_and_msfz_are_reported_as_unsupported():
    old = MSF2_MAGIC + struct.pack("<IHHII", 1024, 1, 3, 8, 0) + bytes(3000)
    assert "MSF 2.0" in str(_error(old)) and "not supported" in str(_error(old))
    assert "MSFZ" in str(_error(MSFZ_MAGIC + bytes(4096)))


def _superblock(page_size=4096, num_pages=4, dir_bytes=8, map_page=2) -> bytes:
    return MSF7_MAGIC + struct.pack("<IIIIII", page_size, 1, num_pages, dir_bytes, 0, map_page)


@pytest.mark.parametrize("page_size", [0, 256, 1000, 4097, 1 << 17])
def test_bad_page_size(page_size):
    err = _error(_superblock(page_size=page_size) + bytes(8192))
    assert err.offset == 0x20 and "page size" in str(err)


def test_truncated_file_names_the_page_and_offset(pdb_data):
    raw = (pdb_data / "wpp_x64.pdb").read_bytes()
    err = _error(raw[:len(raw) - 4096])
    assert "past the end" in str(err) and err.offset is not None and err.offset < len(raw) - 4096


def test_out_of_range_page_number_points_at_the_directory_entry(pdb_data, msf_tools):
    image = bytearray(msf_tools.build_msf(msf_tools.streams_of(pdb_data / "wpp_x64.pdb"), 4096))
    with MsfFile(bytes(image)) as msf:
        # second page-number entry of the first non-empty stream
        where = msf.directory_file_offset(4 + 4 * msf.num_streams + 4)
    struct.pack_into("<I", image, where, 0x7FFFFFF0)
    err = _error(bytes(image))
    assert err.offset == where and "out of range" in str(err)
    assert struct.unpack_from("<I", image, err.offset)[0] == 0x7FFFFFF0


def test_oversized_directory_and_stream_count():
    err = _error(_superblock(dir_bytes=0xFFFFFFF0) + bytes(8192))
    assert err.offset == 0x2C
    # one directory page (page 3) whose stream count cannot fit in the 8-byte directory
    image = bytearray(_superblock(num_pages=4, dir_bytes=8) + bytes(4 * 4096 - 56))
    struct.pack_into("<I", image, 2 * 4096, 3)  # page map -> directory page 3
    struct.pack_into("<I", image, 3 * 4096, 1000)  # 1000 streams
    err = _error(bytes(image))
    assert err.offset == 3 * 4096 and "stream count 1000" in str(err)


def test_missing_dbi_stream(msf_tools):
    info_stream = struct.pack("<III", 20000404, 1, 1) + bytes(16) + struct.pack("<IIIII", 0, 0, 0, 0, 0) + bytes(4)
    err = _error(msf_tools.build_msf([b"", info_stream], 512))
    assert "DBI stream (3) is missing" in str(err)


def test_error_pickles_and_keeps_its_fields():
    err = PdbError("bad thing", path="x.pdb", offset=0x40, expected="a good thing")
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.offset, again.expected, str(again)) == (
        "x.pdb", 0x40, "a good thing", "x.pdb: offset 0x40: bad thing (expected a good thing)")


def test_directory_cannot_expand_a_small_file(pdb_data):
    """Regression: a directory naming the same pages again and again must not make a stream
    larger than the file (hostile input could otherwise expand kilobytes into gigabytes)."""
    raw = bytearray((pdb_data / "wpp_x64.pdb").read_bytes())
    with MsfFile(bytes(raw)) as msf:
        where = msf.directory_file_offset(4 + 4 * 11)  # size of stream 11 (driver.obj symbols)
    struct.pack_into("<I", raw, where, 40 * len(raw))
    err = _error(bytes(raw))
    assert err.offset == where and "stream 11 claims" in str(err) and "pages are left" in str(err)


def test_modules_sharing_a_symbol_stream_are_walked_once(pdb_maker):
    pm = pdb_maker
    body = pm.proc("P") + pm.annotation("TMF:", "11112222-3333-4444-5555-666677778888 c // SRC=a.c",
                                        '#typev a 10 "x" //   LEVEL=1', "{", "}") + pm.end()
    image = bytearray(pm.make_pdb([("a.obj", body), ("b.obj", body)]))
    with MsfFile(bytes(image)) as msf:
        dbi = msf.stream(3)
        first = struct.unpack_from("<H", dbi.data, 64 + 0x22)[0]
        second_record = 64 + (64 + len(b"a.obj\0a.obj\0") + 3) // 4 * 4
        at = dbi.file_offset(second_record + 0x22)
    struct.pack_into("<H", image, at, first)  # module 1 now names module 0's stream
    info = read_pdb(bytes(image), name="s.pdb")
    assert len(info.annotations) == 1 and len(info.issues) == 1
    assert "already used by module 0" in str(info.issues[0])


def _directory_image(page_size: int, file_pages: int, dir_pages: int, map_entries: list[int],
                     dir_entries: list[int]) -> bytes:
    """A container of ``file_pages`` pages whose superblock claims 0xFFFFFFFF pages and a
    directory of ``dir_pages`` pages; map page i lists ``dir_entries`` (page 1 onwards)."""
    image = bytearray(_superblock(page_size, 0xFFFFFFFF, dir_pages * page_size, 0)[:-4])
    image += struct.pack(f"<{len(map_entries)}I", *map_entries)
    image = image.ljust(file_pages * page_size, b"\0")
    struct.pack_into(f"<{len(dir_entries)}I", image, map_entries[0] * page_size, *dir_entries)
    return bytes(image)


def test_directory_larger_than_the_file_is_refused_from_the_superblock():
    """An 8 KiB file claiming a 20 000-page directory, every page of it page 1, is refused
    before any directory page is copied: memory stays near the file's size."""
    import tracemalloc
    image = _directory_image(4096, 2, 20000, [1] * 20, [1] * 1024)
    tracemalloc.start()
    try:
        err = _error(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.offset == 0x2C and "20020 pages" in str(err) and "more than the file's 2" in str(err)
    assert peak < 1 << 20


def test_directory_page_named_twice_is_refused_before_copying():
    # 40 directory pages in a 64-page file: the sizes fit, but every entry names page 3
    image = _directory_image(512, 64, 40, [2], [3] * 40)
    err = _error(image)
    assert err.offset == 2 * 512 + 4 and "page 3 is already used by the stream directory" in str(err)
    assert str(err).count("\n") == 0


def test_directory_page_that_is_a_map_page_is_refused():
    image = _directory_image(512, 64, 2, [2], [3, 2])
    err = _error(image)
    assert err.offset == 2 * 512 + 4 and "page 2 is already used by the directory page map" in str(err)


def test_map_page_named_twice_is_refused():
    # 129 directory pages need two map pages (128 entries each at 512 bytes)
    image = _directory_image(512, 300, 129, [2, 2], list(range(3, 131)))
    err = _error(image)
    assert err.offset == 0x34 + 4 and "page 2 is already used by the directory page map" in str(err)
