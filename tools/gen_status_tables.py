#!/usr/bin/env python3
"""Generate tmf/data/statuscodes.json (NTSTATUS, HRESULT, Win32, NDIS_STATUS, NDIS OID names).

The names come from public headers: Debian's mingw-w64 packages ship ntstatus.h, winerror.h,
ntddndis.h and ddk/ndis.h. Regenerate with one command:

    apt-get install -y mingw-w64-common mingw-w64-x86-64-dev   # once
    python3 tools/gen_status_tables.py [--include /usr/share/mingw-w64/include]

Only `#define NAME <number>` facts are kept (casts and the __MSABI_LONG / _HRESULT_TYPEDEF_ /
_NDIS_ERROR_TYPEDEF_ wrappers are peeled; aliases of other names are resolved). When several names
share a value the first one in the header wins, except for the documented preferences below.
The output is deterministic (sorted), so a diff shows real header changes.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import re
import sys

DEFAULT_INCLUDES = ("/usr/share/mingw-w64/include", "/usr/x86_64-w64-mingw32/include")
OUT = pathlib.Path(__file__).resolve().parent.parent / "tmf" / "data" / "statuscodes.json"

_DEFINE = re.compile(r"^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)\s+(.+?)\s*(?:/[/*].*)?$")
_NUMBER = re.compile(r"^(0[xX][0-9A-Fa-f]+|[0-9]+)[uUlL]*$")
_WRAPPERS = re.compile(r"^(?:__MSABI_LONG|_HRESULT_TYPEDEF_|_NDIS_ERROR_TYPEDEF_|_NDIS_STATUS_TYPEDEF_)\((.*)\)$")
_CAST = re.compile(r"^\(\s*[A-Za-z_][A-Za-z0-9_ ]*\**\s*\)\s*(.*)$")

# Value -> preferred name where the header defines several names for one value.
PREFERRED = {
    "ntstatus": {0: "STATUS_SUCCESS"},
    "winerror": {0: "ERROR_SUCCESS"},
    "hresult": {0: "S_OK", 1: "S_FALSE"},
    "ndis_status": {0: "NDIS_STATUS_SUCCESS"},
}


def _peel(expr: str) -> str:
    """Strip outer parentheses, casts and the header's value wrappers."""
    prev = None
    expr = expr.strip()
    while expr != prev:
        prev = expr
        if expr.startswith("(") and expr.endswith(")") and _balanced(expr[1:-1]):
            expr = expr[1:-1].strip()
        m = _WRAPPERS.match(expr)
        if m:
            expr = m.group(1).strip()
        m = _CAST.match(expr)
        if m and m.group(1):
            expr = m.group(1).strip()
    return expr


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if depth < 0:
            return False
    return depth == 0


def read_defines(path: pathlib.Path) -> list[tuple[str, str, str]]:
    """(name, peeled value expression, raw expression) for every object-like #define, in order."""
    out = []
    text = path.read_text("latin-1").replace("\\\n", " ")
    for line in text.splitlines():
        m = _DEFINE.match(line)
        if m and "(" not in m.group(1):
            out.append((m.group(1), _peel(m.group(2)), m.group(2)))
    return out


def resolve(defines: list[tuple[str, str, str]], known: dict[str, int]) -> dict[str, int]:
    """name -> value for defines that are numbers or aliases of resolvable names."""
    values: dict[str, int] = {}
    pending = []
    for name, expr, _raw in defines:
        m = _NUMBER.match(expr)
        if m:
            values[name] = int(m.group(1), 0) & 0xFFFFFFFF
        else:
            pending.append((name, expr))
    for _ in range(4):  # aliases of aliases
        for name, expr in pending:
            if name not in values and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", expr):
                if expr in values:
                    values[name] = values[expr]
                elif expr in known:
                    values[name] = known[expr]
    return values


def table(names_values: list[tuple[str, int]], kind: str) -> dict[str, str]:
    by_value: dict[int, str] = {}
    for name, value in names_values:
        by_value.setdefault(value, name)
    by_value.update({v: n for v, n in PREFERRED.get(kind, {}).items() if n in dict(names_values)})
    return {f"0x{v:08x}": by_value[v] for v in sorted(by_value)}


def generate(include: pathlib.Path) -> dict[str, dict[str, str]]:
    nt_defs = read_defines(include / "ntstatus.h")
    nt_vals = resolve(nt_defs, {})
    ntstatus = [(n, nt_vals[n]) for n, _, _ in nt_defs
                if n in nt_vals and (n.startswith("STATUS_") or n.startswith("DBG_"))
                and not n.startswith("STATUS_SEVERITY_")]

    we_defs = read_defines(include / "winerror.h")
    we_vals = resolve(we_defs, {})
    skip = ("FACILITY_", "SEVERITY_", "__")
    winerror, hresult = [], []
    for name, expr, raw in we_defs:
        if name not in we_vals or name.startswith(skip) or name.endswith(("_FIRST", "_LAST")):
            continue
        value = we_vals[name]
        is_hresult = "_HRESULT_TYPEDEF_" in raw or "HRESULT" in raw or value > 0xFFFF
        (hresult if is_hresult else winerror).append((name, value))

    nd_defs = read_defines(include / "ddk" / "ndis.h")
    nd_vals = resolve(nd_defs, dict(nt_vals))
    ndis_status = [(n, nd_vals[n]) for n, _, _ in nd_defs
                   if n in nd_vals and n.startswith("NDIS_STATUS_")]

    oid_vals: dict[str, int] = {}
    oids: list[tuple[str, int]] = []
    for header in (include / "ntddndis.h", include / "ddk" / "ndis.h"):
        defs = read_defines(header)
        vals = resolve(defs, oid_vals)
        for n, _, _ in defs:
            if n.startswith("OID_") and n in vals and n not in oid_vals:
                oid_vals[n] = vals[n]
                oids.append((n, vals[n]))

    return {
        "ntstatus": table(ntstatus, "ntstatus"),
        "winerror": table(winerror, "winerror"),
        "hresult": table(hresult, "hresult"),
        "ndis_status": table(ndis_status, "ndis_status"),
        "ndis_oid": table(oids, "ndis_oid"),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include", type=pathlib.Path, default=None,
                    help="mingw-w64 include directory (default: the Debian locations)")
    ap.add_argument("-o", "--output", type=pathlib.Path, default=OUT)
    args = ap.parse_args(argv)
    include = args.include or next((pathlib.Path(p) for p in DEFAULT_INCLUDES
                                    if (pathlib.Path(p) / "ntstatus.h").is_file()), None)
    if include is None or not (include / "ntstatus.h").is_file():
        print("mingw-w64 headers not found: apt-get install -y mingw-w64-common mingw-w64-x86-64-dev",
              file=sys.stderr)
        return 2
    tables = generate(include)
    tables["_source"] = {"generator": "tools/gen_status_tables.py", "headers": "mingw-w64 "
                         + ", ".join(["ntstatus.h", "winerror.h", "ntddndis.h", "ddk/ndis.h"])}
    args.output.write_text(json.dumps(tables, indent=0, sort_keys=True) + "\n", "ascii")
    for k, v in tables.items():
        if not k.startswith("_"):
            print(f"{k}: {len(v)} names")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
