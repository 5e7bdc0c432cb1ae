"""Status-code names come from the generated table; the generator reproduces it from headers."""
from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

from wpptrace.tmf import statuscodes

REPO = pathlib.Path(__file__).resolve().parents[2]
GENERATOR = REPO / "tools" / "gen_status_tables.py"
DATA = REPO / "tmf" / "csrc" / "wppr_status_data.c"


@pytest.mark.parametrize("fn,code,name", [
    (statuscodes.ntstatus_name, 0, "STATUS_SUCCESS"),
    (statuscodes.ntstatus_name, 0xC0000022, "STATUS_ACCESS_DENIED"),
    (statuscodes.ntstatus_name, 0xC000000D, "STATUS_INVALID_PARAMETER"),
    (statuscodes.ntstatus_name, 0x8000000F, "STATUS_DEVICE_POWERED_OFF"),
    (statuscodes.ntstatus_name, 0x103, "STATUS_PENDING"),
    (statuscodes.winerror_name, 0, "ERROR_SUCCESS"),
    (statuscodes.winerror_name, 5, "ERROR_ACCESS_DENIED"),
    (statuscodes.winerror_name, 87, "ERROR_INVALID_PARAMETER"),
    (statuscodes.winerror_name, 4201, "ERROR_WMI_INSTANCE_NOT_FOUND"),
    (statuscodes.hresult_name, 0, "S_OK"),
    (statuscodes.hresult_name, 1, "S_FALSE"),
    (statuscodes.hresult_name, 0x80004005, "E_FAIL"),
    (statuscodes.hresult_name, 0x80070005, "ERROR_ACCESS_DENIED"),   # FACILITY_WIN32 -> Win32 name
    (statuscodes.hresult_name, 0x8007000E, "ERROR_OUTOFMEMORY"),
    (statuscodes.hresult_name, 0xD0000022, "STATUS_ACCESS_DENIED"),  # FACILITY_NT_BIT -> NTSTATUS
    (statuscodes.ndis_status_name, 0, "NDIS_STATUS_SUCCESS"),
    (statuscodes.ndis_status_name, 0xC0000001, "NDIS_STATUS_FAILURE"),
    (statuscodes.ndis_status_name, 0x103, "NDIS_STATUS_PENDING"),
    (statuscodes.ndis_oid_name, 0x00010101, "OID_GEN_SUPPORTED_LIST"),
])
def test_names(fn, code, name):
    assert fn(code) == name


def test_unknown_codes():
    assert statuscodes.ntstatus_name(0xC0DEC0DE) is None
    assert statuscodes.format_ntstatus(0xC0DEC0DE) == "NTSTATUS=C0DEC0DE"
    assert statuscodes.format_hresult(0x8FFF0001) == "HRESULT=8FFF0001"
    assert statuscodes.format_winerror(0x7FFF0001) == "WINERROR=7FFF0001"
    assert statuscodes.format_ndis_oid(0x7F7F7F7F) == "0x7f7f7f7f"


def test_tables_are_big_enough_to_be_the_real_headers():
    sizes = {k: len(statuscodes.table(k)) for k in ("ntstatus", "winerror", "hresult", "ndis_status", "ndis_oid")}
    assert sizes["ntstatus"] > 1500 and sizes["winerror"] > 1800 and sizes["hresult"] > 1000
    assert sizes["ndis_status"] > 100 and sizes["ndis_oid"] > 400


def test_generator_on_a_small_header_tree(tmp_path):
    inc = tmp_path / "inc"
    (inc / "ddk").mkdir(parents=True)
    (inc / "ntstatus.h").write_text(
        "#define STATUS_SEVERITY_SUCCESS 0x0\n"
        "#define STATUS_SUCCESS ((NTSTATUS)0x00000000)\n#define STATUS_WAIT_0 ((NTSTATUS)0x00000000)\n"
        "#define STATUS_UNSUCCESSFUL ((NTSTATUS)0xC0000001L)\n")
    (inc / "winerror.h").write_text(
        "#define FACILITY_WIN32 7\n#define ERROR_SUCCESS 0L\n#define NO_ERROR 0L\n"
        "#define ERROR_ACCESS_DENIED __MSABI_LONG(5)\n#define E_FAIL _HRESULT_TYPEDEF_(0x80004005)\n"
        "#define S_OK ((HRESULT)0x00000000)\n#define OLE_E_FIRST __MSABI_LONG(0x80040000)\n")
    (inc / "ntddndis.h").write_text("#define OID_GEN_SUPPORTED_LIST 0x00010101\n#define OID_X OID_GEN_SUPPORTED_LIST\n")
    (inc / "ddk" / "ndis.h").write_text(
        "#define NDIS_STATUS_SUCCESS ((NDIS_STATUS)STATUS_SUCCESS)\n"
        "#define NDIS_STATUS_FAILURE ((NDIS_STATUS)STATUS_UNSUCCESSFUL)\n")
    out = tmp_path / "out.c"
    subprocess.run([sys.executable, str(GENERATOR), "--include", str(inc), "-o", str(out)],
                   check=True, capture_output=True)
    t = _tables(out.read_text())
    assert t["ntstatus"] == {0: "STATUS_SUCCESS", 0xC0000001: "STATUS_UNSUCCESSFUL"}
    assert t["winerror"] == {0: "ERROR_SUCCESS", 5: "ERROR_ACCESS_DENIED"}
    assert t["hresult"] == {0: "S_OK", 0x80004005: "E_FAIL"}
    assert t["ndis_status"] == {0: "NDIS_STATUS_SUCCESS", 0xC0000001: "NDIS_STATUS_FAILURE"}
    assert t["ndis_oid"] == {0x00010101: "OID_GEN_SUPPORTED_LIST"}
    assert "const uint32_t wppr_status_sizes[5] = {2, 2, 2, 2, 1};" in out.read_text()


def _tables(source: str) -> dict[str, dict[int, str]]:
    """The generated C tables read back: kind -> {code: name}."""
    out = {}
    for kind, body in re.findall(r"wppr_status_(\w+)\[\] = \{(.*?)\};", source, re.S):
        rows = re.findall(r'\{0x([0-9a-f]{8})u, (\d+), "(\w+)"\}', body)
        assert all(int(length) == len(name) for _code, length, name in rows)
        out[kind] = {int(code, 16): name for code, _length, name in rows}
    return out


def test_the_extension_holds_the_committed_tables():
    committed = _tables(DATA.read_text())
    assert set(committed) == {"ntstatus", "winerror", "hresult", "ndis_status", "ndis_oid"}
    for kind, rows in committed.items():
        assert statuscodes.table(kind) == rows


def test_committed_table_is_what_the_generator_makes(tmp_path):
    """From the mingw-w64 header excerpt in tools/mingw-w64-excerpt (its default input)."""
    out = tmp_path / "wppr_status_data.c"
    subprocess.run([sys.executable, str(GENERATOR), "-o", str(out)], check=True, capture_output=True)
    assert out.read_text() == DATA.read_text()


def test_generated_win32_table_agrees_with_the_hand_written_one():
    # wpptrace.winerror.CODES is written by hand from winerror.h; the generated table must agree
    from wpptrace import winerror
    for name, code in winerror.CODES.items():
        assert statuscodes.winerror_name(code) == name


def test_lookup_finds_every_code_and_only_those():
    """The generated hash index: every code of every table is found with its own name, and
    codes not in a table are not (random ones, and neighbours of every code)."""
    import random

    from wpptrace._core import ffi, lib

    rng = random.Random(7)
    for kind, number in statuscodes._KINDS.items():
        rows = statuscodes.table(kind)
        for code, name in rows.items():
            assert ffi.string(lib.wppr_status_lookup(number, code)).decode() == name
        others = {rng.getrandbits(32) for _ in range(20_000)}
        others |= {(code + d) & 0xFFFFFFFF for code in rows for d in (-1, 1)}
        for code in others - rows.keys():
            assert lib.wppr_status_lookup(number, code) == ffi.NULL, (kind, hex(code))
    assert lib.wppr_status_lookup(5, 0) == ffi.NULL and lib.wppr_status_lookup(-1, 0) == ffi.NULL
