#!/usr/bin/env python3
"""Rebuild the PDB fixtures in tests/data/pdb/ from the C/C++ sources beside this script.

Needs (Debian 12): ``apt-get install clang lld llvm`` (clang/lld/llvm 14 checked).
Run from anywhere: ``python3 tests/data/pdb/recipe/build_fixtures.py``.

Why a restore step: clang writes each ``__annotation`` as a real S_ANNOTATION (0x1019)
record in the object's ``.debug$S``, but lld-link writes every one of them into the PDB
as an S_SKIP (0x0007) record of the same size with an all-zero payload ("ignoring unknown
symbol record with kind 0x1019" in /verbose). Because the slot keeps its size and position,
the object's record can be copied back into it in place; everything else lld wrote
(globals, publics, section contributions, line tables) stays valid.

Slots are matched to object records by enclosing procedure name and order inside that
procedure, and the sizes must agree. The record's code offset/segment are relocated the
way the linker would have: segment and offset of the enclosing procedure in the PDB plus
the annotation's distance from the procedure start in the object.

Outputs (committed, so CI needs no clang):
  wpp_x64.pdb       x86-64, 4 KiB pages
  wpp_x86_8k.pdb    i686 (32-bit), 8 KiB pages (/pdbpagesize:8192)
  <name>.dll        the linked images (their RSDS records name the PDBs: image -> PDB lookup)
  <name>.readobj-debug.txt     ``llvm-readobj --coff-debug-directory`` of each image
  <name>.pdbutil-symbols.txt   ``llvm-pdbutil dump -symbols`` of each, an independent oracle
  <name>.pdbutil-summary.txt   ``llvm-pdbutil dump -summary -streams`` (GUID, age, page size, streams)
  <name>.pdbutil-types.txt     ``llvm-pdbutil dump -types`` (the enum values behind ItemEnum)
Everything is built in a fixed directory so the embedded paths (S_OBJNAME, S_ENVBLOCK)
and therefore the bytes are reproducible.
"""
from __future__ import annotations

import pathlib
import shutil
import struct
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent
BUILD = pathlib.Path("/tmp/wpptrace-pdb-fixture")
SOURCES = ["driver.c", "queue.c", "device.cpp"]

S_ANNOTATION, S_SKIP, S_END = 0x1019, 0x0007, 0x0006
PROC_KINDS = {0x110F, 0x1110, 0x1146, 0x1147, 0x1155, 0x1156}
SCOPE_KINDS = {0x1102, 0x1103, 0x1104, 0x112A, 0x112B, 0x1132, 0x114D, 0x115D}
END_KINDS = {0x0006, 0x114F, 0x114E}
RELOC_SECREL, RELOC_SECTION = 0x0B, 0x0A  # same values for AMD64 and I386

VARIANTS = {
    "wpp_x64": {"target": "x86_64-pc-windows-msvc", "link": []},
    "wpp_x86_8k": {"target": "i686-pc-windows-msvc", "link": ["/machine:x86", "/pdbpagesize:8192"]},
}


def run(cmd: list[str], cwd: pathlib.Path) -> str:
    print("+", " ".join(cmd))
    return subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True).stdout


def cstr(buf: bytes, pos: int) -> str:
    end = buf.index(b"\0", pos)
    return buf[pos:end].decode("utf-8")


# -- object file side ---------------------------------------------------------------------
def object_annotations(path: pathlib.Path) -> dict[tuple[str, int], tuple[bytes, int]]:
    """(proc name, n-th annotation in proc) -> (record bytes, code distance from proc start)."""
    data = path.read_bytes()
    nsect, _, symtab, nsyms, opt_size = struct.unpack_from("<HIIIH", data, 2)
    symbol_value = [struct.unpack_from("<I", data, symtab + 18 * i + 8)[0] for i in range(nsyms)]
    found: dict[tuple[str, int], tuple[bytes, int]] = {}
    for i in range(nsect):
        sh = 20 + opt_size + 40 * i
        if data[sh:sh + 8].rstrip(b"\0") != b".debug$S":
            continue
        size, ptr, reloc_ptr = struct.unpack_from("<III", data, sh + 16)
        (nrelocs,) = struct.unpack_from("<H", data, sh + 32)
        secrel = {}  # offset in section -> target symbol value
        for r in range(nrelocs):
            va, sym, kind = struct.unpack_from("<IIH", data, reloc_ptr + 10 * r)
            if kind == RELOC_SECREL:
                secrel[va] = symbol_value[sym]
        sec = data[ptr:ptr + size]
        pos = 4  # after the CV signature
        while pos + 8 <= len(sec):
            kind, length = struct.unpack_from("<II", sec, pos)
            body_at = pos + 8
            if kind == 0xF1:  # DEBUG_S_SYMBOLS
                _walk_obj_symbols(sec, body_at, body_at + length, secrel, found)
            pos = body_at + ((length + 3) & ~3)
    return found


def _walk_obj_symbols(sec, start, end, secrel, found) -> None:
    stack: list[tuple[str | None, int]] = []
    counts: dict[str, int] = {}
    p = start
    while p + 4 <= end:
        reclen, kind = struct.unpack_from("<HH", sec, p)
        if kind in PROC_KINDS:
            # code offset field at record+0x20 is relocated SECREL: value = addend + symbol value
            addend = struct.unpack_from("<I", sec, p + 0x20)[0]
            stack.append((cstr(sec, p + 0x27), addend + secrel.get(p + 0x20, 0)))
        elif kind in SCOPE_KINDS:
            stack.append((None, 0))
        elif kind in END_KINDS and stack:
            stack.pop()
        elif kind == S_ANNOTATION:
            proc = next(((n, o) for n, o in reversed(stack) if n is not None), None)
            if proc is None:
                sys.exit("annotation outside a procedure in the object file")
            addend = struct.unpack_from("<I", sec, p + 4)[0]
            where = addend + secrel.get(p + 4, 0)
            n = counts.get(proc[0], 0)
            counts[proc[0]] = n + 1
            found[(proc[0], n)] = (bytes(sec[p:p + 2 + reclen]), where - proc[1])
        p += 2 + reclen


# -- PDB side -----------------------------------------------------------------------------
def restore(pdb_in: pathlib.Path, objects: list[pathlib.Path], pdb_out: pathlib.Path) -> int:
    from wpptrace.tmf.pdb.msf import MsfFile  # our reader, used only to locate stream pages

    wanted: dict[tuple[str, int], tuple[bytes, int]] = {}
    for obj in objects:
        for key, value in object_annotations(obj).items():
            if key in wanted:
                sys.exit(f"procedure {key[0]!r} defined in two objects; cannot match slots")
            wanted[key] = value
    image = bytearray(pdb_in.read_bytes())
    msf = MsfFile(bytes(image), name=str(pdb_in))
    dbi = msf.stream(3).data
    (mod_size,) = struct.unpack_from("<i", dbi, 24)
    p, restored = 64, 0
    while p < 64 + mod_size:
        stream_index, sym_bytes = struct.unpack_from("<HI", dbi, p + 0x22)
        q = dbi.index(b"\0", p + 64)
        q = (dbi.index(b"\0", q + 1) + 1 + 3) & ~3
        p = q
        if stream_index == 0xFFFF:
            continue
        stream = msf.stream(stream_index)
        ms = stream.data
        stack: list[tuple[str | None, int, int]] = []
        counts: dict[str, int] = {}
        off = 4
        while off < sym_bytes:
            reclen, kind = struct.unpack_from("<HH", ms, off)
            if kind in PROC_KINDS:
                code_off, seg = struct.unpack_from("<IH", ms, off + 0x20)
                stack.append((cstr(ms, off + 0x27), code_off, seg))
            elif kind in SCOPE_KINDS:
                stack.append((None, 0, 0))
            elif kind in END_KINDS and stack:
                stack.pop()
            elif kind == S_SKIP and reclen > 2 and not any(ms[off + 4:off + 2 + reclen]):
                name, code_off, seg = next(e for e in reversed(stack) if e[0] is not None)
                n = counts.get(name, 0)
                counts[name] = n + 1
                record, distance = wanted.pop((name, n))
                if len(record) != 2 + reclen:
                    sys.exit(f"{name}#{n}: slot of {2 + reclen} bytes, record of {len(record)}")
                record = bytearray(record)
                struct.pack_into("<IH", record, 4, code_off + distance, seg)
                for j, byte in enumerate(record):  # write through the stream's page map
                    image[stream.file_offset(off + j)] = byte
                restored += 1
            off += 2 + reclen
    if wanted:
        sys.exit(f"annotations not restored: {sorted(wanted)}")
    pdb_out.write_bytes(bytes(image))
    return restored


def main() -> None:
    for tool in ("clang", "lld-link", "llvm-pdbutil"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install clang lld llvm")
    for name, variant in VARIANTS.items():
        build = BUILD / name
        shutil.rmtree(build, ignore_errors=True)
        build.mkdir(parents=True)
        objects = []
        for src in SOURCES:
            shutil.copy(HERE / src, build / src)
            obj = build / (src.rsplit(".", 1)[0] + ".obj")
            run(["clang", f"--target={variant['target']}", "-fms-extensions", "-fno-exceptions",
                 "-gcodeview", "-g", "-O0", "-mno-incremental-linker-compatible",
                 "-c", src, "-o", obj.name], build)
            objects.append(obj)
        run(["lld-link", "/nologo", "/brepro", "/dll", "/noentry", "/nodefaultlib", "/debug",
             *variant["link"], f"/out:{name}.dll", f"/pdb:{name}.pdb",
             *[o.name for o in objects]], build)
        out = OUT / f"{name}.pdb"
        count = restore(build / f"{name}.pdb", objects, out)
        shutil.copy(build / f"{name}.dll", OUT / f"{name}.dll")  # its RSDS record names the PDB
        # the unpatched PDB must not sit at the path the image names (image -> PDB lookup tests)
        (build / f"{name}.pdb").rename(build / f"{name}.lld.pdb")
        readobj = run(["llvm-readobj", "--coff-debug-directory", f"{name}.dll"], build)
        (OUT / f"{name}.readobj-debug.txt").write_text(readobj)
        dump = run(["llvm-pdbutil", "dump", "-symbols", str(out)], build)
        if dump.count("S_ANNOTATION") != count:
            sys.exit(f"llvm-pdbutil sees {dump.count('S_ANNOTATION')} S_ANNOTATION, expected {count}")
        (OUT / f"{name}.pdbutil-symbols.txt").write_text(dump)
        summary = run(["llvm-pdbutil", "dump", "-summary", "-streams", str(out)], build)
        (OUT / f"{name}.pdbutil-summary.txt").write_text(summary)
        types = run(["llvm-pdbutil", "dump", "-types", str(out)], build)
        (OUT / f"{name}.pdbutil-types.txt").write_text(types)
        print(f"{out.name}: {out.stat().st_size} bytes, {count} annotations restored")


if __name__ == "__main__":
    main()
