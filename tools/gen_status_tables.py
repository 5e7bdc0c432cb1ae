#!/usr/bin/env python3
"""Generate tmf/csrc/wppr_status_data.c: the NTSTATUS, HRESULT, Win32, NDIS_STATUS and NDIS OID
name tables that the renderer (C) and wpptrace.tmf.statuscodes (through the extension) read.

The names come from the public-domain mingw-w64 headers ntstatus.h, winerror.h, ntddndis.h and
ddk/ndis.h. The repository keeps the part of them this generator reads (the object-like
``#define`` lines it uses, verbatim) in tools/mingw-w64-excerpt/, so regenerating needs nothing
else:

    python3 tools/gen_status_tables.py

To refresh the excerpt from newer headers (Debian: apt-get install mingw-w64-common
mingw-w64-x86-64-dev), which also checks that the excerpt gives the same tables as the full headers:

    python3 tools/gen_status_tables.py --write-excerpt --include /usr/share/mingw-w64/include

Only `#define NAME <number>` facts are kept (casts and the __MSABI_LONG / _HRESULT_TYPEDEF_ /
_NDIS_ERROR_TYPEDEF_ wrappers are peeled; aliases of other names are resolved). When several names
share a value the first one in the header wins, except for the documented preferences below.
The output is deterministic (sorted by value), so a diff shows real header changes.
"""
from __future__ import annotations

import argparse
import hashlib
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
EXCERPT = HERE / "mingw-w64-excerpt"
OUT = HERE.parent / "tmf" / "csrc" / "wppr_status_data.c"
HEADERS = ("ntstatus.h", "winerror.h", "ntddndis.h", "ddk/ndis.h")
#: table order: the WPPR_ST_* kinds of tmf/csrc/wpprender.h
KINDS = ("ntstatus", "winerror", "hresult", "ndis_status", "ndis_oid")

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


def table(names_values: list[tuple[str, int]], kind: str) -> dict[int, str]:
    by_value: dict[int, str] = {}
    for name, value in names_values:
        by_value.setdefault(value, name)
    by_value.update({v: n for v, n in PREFERRED.get(kind, {}).items() if n in dict(names_values)})
    return {v: by_value[v] for v in sorted(by_value)}


#: the multiplier of the lookup hash, (code * HASH_MULTIPLIER mod 2**32) >> (32 - bits): the
#: codes share their high bits (severity, facility), which the multiplication spreads
HASH_MULTIPLIER = 0x9E3779B1


def hash_bits(n: int) -> int:
    """Bits of a table's hash: at least twice as many buckets as codes."""
    return max(1, (2 * n - 1).bit_length())


def bucket(code: int, bits: int) -> int:
    return ((code * HASH_MULTIPLIER) & 0xFFFFFFFF) >> (32 - bits)


def c_source(tables: dict[str, dict[int, str]]) -> str:
    """The tables as C: one sorted {code, length, name} array per kind and their sizes, and
    a hash index per kind (the rows of bucket b are slots[start[b]:start[b + 1]])."""
    out = ["/* wppr_status_data.c: status names, generated by tools/gen_status_tables.py from the",
           " * mingw-w64 headers " + ", ".join(HEADERS) + "; do not edit. */",
           '#include "_wppr_internal.h"', ""]
    for kind in KINDS:
        out.append(f"const wppr_status_row wppr_status_{kind}[] = {{")
        out += [f'    {{0x{code:08x}u, {len(name)}, "{name}"}},' for code, name in sorted(tables[kind].items())]
        out += ["};", ""]
    out.append("const uint32_t wppr_status_sizes[5] = {" + ", ".join(str(len(tables[k])) for k in KINDS) + "};")
    out.append("")
    index = []
    for kind in KINDS:
        codes = sorted(tables[kind])
        if len(codes) > 0xFFFF:          # the index holds row numbers as uint16_t
            raise SystemExit(f"{kind}: {len(codes)} codes do not fit the 16-bit hash index")
        bits = hash_bits(len(codes))
        order = sorted(range(len(codes)), key=lambda i: (bucket(codes[i], bits), i))
        start, at = [], 0
        for b in range(1 << bits):
            start.append(at)
            while at < len(order) and bucket(codes[order[at]], bits) == b:
                at += 1
        start.append(at)
        out += _c_array(f"static const uint16_t {kind}_start[]", start)
        out += _c_array(f"static const uint16_t {kind}_slots[]", order)
        index.append(f"    {{{32 - bits}, {kind}_start, {kind}_slots}},")
    out.append(f"const uint32_t wppr_status_hash_multiplier = 0x{HASH_MULTIPLIER:08x}u;")
    out += ["const wppr_status_hash wppr_status_hashes[5] = {", *index, "};"]
    return "\n".join(out) + "\n"


def _c_array(declaration: str, values: list[int], per_line: int = 16) -> list[str]:
    lines = [f"{declaration} = {{"]
    for k in range(0, len(values), per_line):
        lines.append("    " + ", ".join(str(v) for v in values[k:k + per_line]) + ",")
    return lines + ["};", ""]


def _is_ntstatus(name: str) -> bool:
    return name.startswith(("STATUS_", "DBG_")) and not name.startswith("STATUS_SEVERITY_")


def _is_win32_or_hresult(name: str) -> bool:
    return not name.startswith(("FACILITY_", "SEVERITY_", "__")) and not name.endswith(("_FIRST", "_LAST"))


#: header -> which of its names become table entries (the excerpt keeps these and what they refer to)
_WANTED = {
    "ntstatus.h": _is_ntstatus,
    "winerror.h": _is_win32_or_hresult,
    "ntddndis.h": lambda name: name.startswith("OID_"),
    "ddk/ndis.h": lambda name: name.startswith(("OID_", "NDIS_STATUS_")),
}


def generate(include: pathlib.Path) -> dict[str, dict[int, str]]:
    nt_defs = read_defines(include / "ntstatus.h")
    nt_vals = resolve(nt_defs, {})
    ntstatus = [(n, nt_vals[n]) for n, _, _ in nt_defs if n in nt_vals and _is_ntstatus(n)]

    we_defs = read_defines(include / "winerror.h")
    we_vals = resolve(we_defs, {})
    winerror, hresult = [], []
    for name, expr, raw in we_defs:
        if name not in we_vals or not _is_win32_or_hresult(name):
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


_EXCERPT_NOTE = """\
/* Excerpt of mingw-w64's {header} ({size} bytes, sha256 {sha256}): the object-like #define
 * lines tools/gen_status_tables.py reads, verbatim and in order (continuation lines joined).
 * The original says: {notice}
 * Made by: python3 tools/gen_status_tables.py --write-excerpt --include <mingw-w64 include dir> */
"""


def _public_domain_notice(text: str) -> str:
    for sentence in ("This file has no copyright assigned and is placed in the Public Domain.",
                     "This source code is offered for use in the public domain."):
        if sentence in text:
            return sentence
    if "This file is part of the mingw-w64 runtime package." in text:  # the headers' licence is package-wide
        return ("This file is part of the mingw-w64 runtime package. (mingw-w64-headers/include/* is "
                "public domain: Debian's mingw-w64-common copyright file.)")
    raise SystemExit("the header carries no public-domain notice: check its licence before excerpting it")


def write_excerpt(include: pathlib.Path, dest: pathlib.Path) -> None:
    """Copy into ``dest`` the #define lines of the headers that ``generate`` needs: every wanted name
    and, transitively, the names their values refer to. The excerpt must give the same tables."""
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
    texts = {h: (include / h).read_bytes() for h in HEADERS}
    lines = {}
    for h in HEADERS:
        joined = texts[h].decode("latin-1").replace("\\\n", " ")
        lines[h] = [(m.group(1), m.group(2), line) for line in joined.splitlines()
                    if (m := _DEFINE.match(line)) and "(" not in m.group(1)]
    keep = {(h, name) for h in HEADERS for name, _, _ in lines[h] if _WANTED[h](name)}
    while True:
        wanted = {ref for h in HEADERS for name, value, _ in lines[h] if (h, name) in keep
                  for ref in ident.findall(value)}
        more = {(h, name) for h in HEADERS for name, _, _ in lines[h] if name in wanted} - keep
        if not more:
            break
        keep |= more
    for h in HEADERS:
        text = texts[h].decode("latin-1")
        note = _EXCERPT_NOTE.format(header=h, size=len(texts[h]), sha256=hashlib.sha256(texts[h]).hexdigest(),
                                    notice=_public_domain_notice(text))
        body = "\n".join(line for name, _, line in lines[h] if (h, name) in keep)
        (dest / h).parent.mkdir(parents=True, exist_ok=True)
        (dest / h).write_text(note + body + "\n", "latin-1")
    if generate(dest) != generate(include):
        raise SystemExit(f"{dest}: the excerpt does not give the same tables as {include}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--include", type=pathlib.Path, default=EXCERPT,
                    help="mingw-w64 include directory (default: the excerpt in tools/mingw-w64-excerpt)")
    ap.add_argument("-o", "--output", type=pathlib.Path, default=OUT)
    ap.add_argument("--write-excerpt", action="store_true",
                    help="refresh tools/mingw-w64-excerpt from the --include headers, then generate from it")
    args = ap.parse_args(argv)
    include = args.include
    if not (include / "ntstatus.h").is_file():
        print(f"{include}: no ntstatus.h (mingw-w64 headers: apt-get install mingw-w64-common "
              "mingw-w64-x86-64-dev)", file=sys.stderr)
        return 2
    if args.write_excerpt:
        write_excerpt(include, EXCERPT)
        print(f"wrote {EXCERPT}")
    tables = generate(include)
    args.output.write_text(c_source(tables), "ascii")
    for k, v in tables.items():
        print(f"{k}: {len(v)} names")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
