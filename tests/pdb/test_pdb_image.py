"""PE image -> PDB (tracepdb -i): RSDS records vs llvm-readobj, lookup by GUID and age, precise errors."""
from __future__ import annotations

import argparse
import re
import shutil
import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace.tmf.pdb import read_pdb_identity, tracepdb
from wpptrace.tmf.pdb.msf import PdbError
from wpptrace.tmf.pdb.peimage import pdb_candidates, read_codeview
from wpptrace.tmf.pdb.tracepdb import find_pdb_for_image

FIXTURES = ["wpp_x64", "wpp_x86_8k"]


@pytest.mark.parametrize("name", FIXTURES)
def test_codeview_record_matches_llvm_readobj(pdb_data, name):
    dump = (pdb_data / f"{name}.readobj-debug.txt").read_text()
    guid_bytes = bytes(int(b, 16) for b in re.search(r"PDBGUID: \(([0-9A-F ]+)\)", dump).group(1).split())
    info = read_codeview(pdb_data / f"{name}.dll")
    assert info.guid == uuid.UUID(bytes_le=guid_bytes)
    assert info.age == int(re.search(r"PDBAge: (\d+)", dump).group(1))
    assert info.pdb_path == re.search(r"PDBFileName: (.*)", dump).group(1) and info.pdb_name == f"{name}.pdb"
    identity = read_pdb_identity(pdb_data / f"{name}.pdb")  # the image and its PDB agree
    assert (identity.pdb_guid, identity.dbi_age) == (info.guid, info.age)
    assert info.symstore_key == info.guid.hex.upper() + "1"


def test_pdb_found_beside_image_in_symbol_paths_and_symstore(pdb_data, tmp_path):
    image = tmp_path / "bin" / "wpp_x64.dll"
    image.parent.mkdir()
    shutil.copy(pdb_data / "wpp_x64.dll", image)
    info = read_codeview(image)
    with pytest.raises(PdbError) as caught:
        find_pdb_for_image(image)
    assert "no PDB matching the image" in str(caught.value) and str(info.guid) in str(caught.value)
    store = tmp_path / "store" / "wpp_x64.pdb" / info.symstore_key
    store.mkdir(parents=True)
    shutil.copy(pdb_data / "wpp_x64.pdb", store / "wpp_x64.pdb")
    assert find_pdb_for_image(image, [str(tmp_path / "store")]) == str(store / "wpp_x64.pdb")
    # a PDB with the right name but another GUID beside the image is reported, not used
    shutil.copy(pdb_data / "wpp_x86_8k.pdb", image.parent / "wpp_x64.pdb")
    assert find_pdb_for_image(image, [str(tmp_path / "store")]) == str(store / "wpp_x64.pdb")
    with pytest.raises(PdbError) as caught:
        find_pdb_for_image(image)
    assert "found but not matching" in str(caught.value)
    shutil.copy(pdb_data / "wpp_x64.pdb", image.parent / "wpp_x64.pdb")
    assert find_pdb_for_image(image) == str(image.parent / "wpp_x64.pdb")
    assert pdb_candidates(image, info, ["a;b"])[-1].endswith(f"b/wpp_x64.pdb/{info.symstore_key}/wpp_x64.pdb")


def test_from_pdb_accepts_an_image(pdb_data, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    tracepdb.add_arguments(parser)
    args = parser.parse_args([str(pdb_data / "wpp_x86_8k.dll"), "-o", str(tmp_path), "--timestamp", "2026-01-01"])
    assert tracepdb.run(args) == 0
    out = capsys.readouterr().out
    assert f"PDB {pdb_data / 'wpp_x86_8k.pdb'}" in out and "10 messages in 3 message GUIDs" in out
    assert len(list(tmp_path.glob("*.tmf"))) == 3


def _image_error(data: bytes, tmp_path) -> PdbError:
    path = tmp_path / "x.sys"
    path.write_bytes(data)
    with pytest.raises(PdbError) as caught:
        read_codeview(path)
    return caught.value


def test_image_errors_are_precise(pdb_data, tmp_path):
    raw = bytearray((pdb_data / "wpp_x64.dll").read_bytes())
    assert _image_error(b"ZZ" + bytes(100), tmp_path).offset == 0
    assert _image_error(bytes(raw[:0x50]), tmp_path).offset == 0x3C   # e_lfanew points past the end
    bad_pe = bytearray(raw)
    struct.pack_into("<I", bad_pe, 0x3C, 0x7FFFFF)
    err = _image_error(bytes(bad_pe), tmp_path)
    assert err.offset == 0x3C and "PE signature" in str(err)
    outside = bytearray(raw)  # regression (found by the fuzz test): record pointer past the file end
    at = outside.index(struct.pack("<I", 0x638), 0x400)  # the CodeView entry's PointerToRawData
    struct.pack_into("<I", outside, at, 0x10638)
    err = _image_error(bytes(outside), tmp_path)
    assert err.offset == at and "outside the 2560-byte file" in str(err)
    no_rsds = bytearray(raw)
    at = no_rsds.index(b"RSDS")
    no_rsds[at:at + 4] = b"NB10"
    assert "RSDS" in str(_image_error(bytes(no_rsds), tmp_path))
    for cut in range(0, len(raw), 97):  # every truncation: PdbError or a result, nothing else
        path = tmp_path / "t.sys"
        path.write_bytes(bytes(raw[:cut]))
        try:
            read_codeview(path)
        except PdbError:
            pass


@pytest.fixture(scope="module")
def dll_bytes(pdb_data) -> bytes:
    return (pdb_data / "wpp_x64.dll").read_bytes()


# deadline: a runaway bound ~1000x a case's few ms, not a speed test (a tight one can trip on a loaded machine)
@settings(max_examples=120, deadline=30_000, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_image_headers(dll_bytes, tmp_path_factory, data):
    """Flipped bytes in the headers and the debug data: PdbError or a result, never another exception."""
    blob = bytearray(dll_bytes)
    hot = list(range(0, 0x400)) + list(range(0x600, 0x680))  # headers, section table, debug dir + RSDS
    for pos, value in data.draw(st.lists(st.tuples(st.sampled_from(hot), st.integers(0, 255)), min_size=1,
                                         max_size=12)):
        blob[pos] = value
    path = tmp_path_factory.mktemp("img") / "f.sys"
    path.write_bytes(bytes(blob))
    try:
        info = read_codeview(path)
    except PdbError as err:
        assert err.offset is None or 0 <= err.offset <= len(blob)
        return
    assert isinstance(info.age, int) and isinstance(info.pdb_path, str)
