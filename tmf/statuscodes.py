"""Names of NTSTATUS, HRESULT, Win32 error, NDIS_STATUS and NDIS OID values, and their tracefmt
renderings.

The tables are generated data compiled into the extension (``tmf/csrc/wppr_status_data.c``,
made from the public mingw-w64 headers by ``tools/gen_status_tables.py``); the C renderer
and these functions read the same tables and the same HRESULT / NDIS name rules
(``wppr_status_name``).
"""
from __future__ import annotations

import functools

from wpptrace._core import ffi, lib

__all__ = ["ntstatus_name", "hresult_name", "winerror_name", "ndis_status_name", "ndis_oid_name",
           "format_ntstatus", "format_hresult", "format_winerror", "format_ndis_status",
           "format_ndis_oid", "table"]

_KINDS = {"ntstatus": lib.WPPR_ST_NTSTATUS, "winerror": lib.WPPR_ST_WINERROR,
          "hresult": lib.WPPR_ST_HRESULT, "ndis_status": lib.WPPR_ST_NDIS_STATUS,
          "ndis_oid": lib.WPPR_ST_NDIS_OID}


@functools.lru_cache(maxsize=None)
def table(kind: str) -> dict[int, str]:
    """value -> name for ``kind`` in ntstatus, winerror, hresult, ndis_status, ndis_oid."""
    k = _KINDS[kind]
    code, name = ffi.new("uint32_t *"), ffi.new("const char **")
    out = {}
    for i in range(lib.wppr_status_count(k)):
        lib.wppr_status_entry(k, i, code, name)
        out[code[0]] = ffi.string(name[0]).decode("ascii")
    return out


def _name(kind: int, code: int) -> str | None:
    name = lib.wppr_status_name(kind, code & 0xFFFFFFFF)
    return None if name == ffi.NULL else ffi.string(name).decode("ascii")


def ntstatus_name(code: int) -> str | None:
    return _name(lib.WPPR_ST_NTSTATUS, code)


def winerror_name(code: int) -> str | None:
    return _name(lib.WPPR_ST_WINERROR, code)


def hresult_name(code: int) -> str | None:
    """HRESULT name as tracefmt resolves it: FACILITY_WIN32 failures name the Win32 error
    (0x80070005 -> ERROR_ACCESS_DENIED), FACILITY_NT_BIT values name the NTSTATUS, others
    come from the HRESULT table (S_OK, E_FAIL ...), then the Win32 table."""
    return _name(lib.WPPR_ST_HRESULT, code)


def ndis_status_name(code: int) -> str | None:
    return _name(lib.WPPR_ST_NDIS_STATUS, code)


def ndis_oid_name(code: int) -> str | None:
    return _name(lib.WPPR_ST_NDIS_OID, code)


# -- tracefmt renderings (docs/tmf-format.md §4) --

def format_ntstatus(code: int) -> str:
    code &= 0xFFFFFFFF
    if code == 0:
        return "STATUS_SUCCESS"
    name = ntstatus_name(code)
    return f"0x{code:08x}({name})" if name else f"NTSTATUS={code:8X}"


def format_hresult(code: int) -> str:
    code &= 0xFFFFFFFF
    if code == 0:
        return "S_OK"
    name = hresult_name(code)
    return f"0x{code:08x}({name})" if name else f"HRESULT={code:8X}"


def format_winerror(code: int) -> str:
    code &= 0xFFFFFFFF
    name = winerror_name(code)
    return f"{code}({name})" if name else f"WINERROR={code:8X}"


def format_ndis_status(code: int) -> str:
    code &= 0xFFFFFFFF
    if code == 0:
        return "NDIS_STATUS_SUCCESS"
    name = ndis_status_name(code)
    return f"0x{code:08x}({name})" if name else f"NDIS_STATUS={code:8X}"


def format_ndis_oid(code: int) -> str:
    code &= 0xFFFFFFFF
    name = ndis_oid_name(code)
    return f"0x{code:08x}({name})" if name else f"0x{code:08x}"
