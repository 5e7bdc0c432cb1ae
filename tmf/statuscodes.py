"""Names of NTSTATUS, HRESULT, Win32 error, NDIS_STATUS and NDIS OID values, and their tracefmt
renderings.

The tables are generated data (tmf/data/statuscodes.json, made from the public mingw-w64 headers
by ``tools/gen_status_tables.py``) and are loaded once, on first use.
"""
from __future__ import annotations

import functools
import importlib.resources
import json

__all__ = ["ntstatus_name", "hresult_name", "winerror_name", "ndis_status_name", "ndis_oid_name",
           "format_ntstatus", "format_hresult", "format_winerror", "format_ndis_status",
           "format_ndis_oid", "table"]

FACILITY_WIN32 = 7
FACILITY_NT_BIT = 0x10000000


@functools.lru_cache(maxsize=1)
def _tables() -> dict[str, dict[int, str]]:
    raw = json.loads(importlib.resources.files("wpptrace.tmf")
                     .joinpath("data/statuscodes.json").read_text("ascii"))
    return {kind: {int(k, 16): v for k, v in names.items()}
            for kind, names in raw.items() if not kind.startswith("_")}


def table(kind: str) -> dict[int, str]:
    """value -> name for ``kind`` in ntstatus, winerror, hresult, ndis_status, ndis_oid."""
    return _tables()[kind]


def ntstatus_name(code: int) -> str | None:
    return _tables()["ntstatus"].get(code & 0xFFFFFFFF)


def winerror_name(code: int) -> str | None:
    return _tables()["winerror"].get(code & 0xFFFFFFFF)


def hresult_name(code: int) -> str | None:
    """HRESULT name as tracefmt resolves it: FACILITY_WIN32 failures name the Win32 error
    (0x80070005 -> ERROR_ACCESS_DENIED), FACILITY_NT_BIT values name the NTSTATUS, others
    come from the HRESULT table (S_OK, E_FAIL ...), then the Win32 table."""
    code &= 0xFFFFFFFF
    if code & 0x80000000 and (code >> 16) & 0x1FFF == FACILITY_WIN32:
        name = winerror_name(code & 0xFFFF)
        if name is not None:
            return name
    if code & FACILITY_NT_BIT:
        name = ntstatus_name(code & ~FACILITY_NT_BIT)
        if name is not None:
            return name
    return _tables()["hresult"].get(code) or _tables()["winerror"].get(code)


def ndis_status_name(code: int) -> str | None:
    code &= 0xFFFFFFFF
    return _tables()["ndis_status"].get(code) or ntstatus_name(code)


def ndis_oid_name(code: int) -> str | None:
    return _tables()["ndis_oid"].get(code & 0xFFFFFFFF)


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
