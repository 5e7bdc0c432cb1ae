"""PE image (.sys/.dll/.exe) debug directory: which PDB an image was linked with (CodeView RSDS record).

Lets ``tmf from-pdb`` take driver images the way ``tracepdb -i`` does: the RSDS record holds
the PDB's GUID, age and path; a PDB matches the image when its info-stream GUID and DBI age
are the same. Layout: MZ header (``e_lfanew`` at 0x3C) -> ``PE\\0\\0`` -> COFF header ->
optional header (PE32 or PE32+) whose data directory 6 is the debug directory -> entries of
28 bytes; type 2 (CODEVIEW) points at ``"RSDS" GUID u32-age path\\0``. All reads are bounded.
"""
from __future__ import annotations

import mmap
import os
import struct
import uuid
from dataclasses import dataclass

from ..errors import TmfError, open_regular
from .msf import PdbError

__all__ = ["CodeViewInfo", "read_codeview", "is_pe_image", "pdb_candidates"]

IMAGE_DEBUG_TYPE_CODEVIEW = 2
DEBUG_DIRECTORY_INDEX = 6
_MAX_DEBUG_ENTRIES = 64
_MAX_SECTIONS = 96  # the PE loader's limit


@dataclass(frozen=True)
class CodeViewInfo:
    """The PDB an image names: GUID, age and the path the linker wrote."""

    guid: uuid.UUID
    age: int
    pdb_path: str

    @property
    def pdb_name(self) -> str:
        return self.pdb_path.replace("\\", "/").rsplit("/", 1)[-1]

    @property
    def symstore_key(self) -> str:
        """``<GUID hex, upper case, no dashes><age hex>``: the symbol-store directory name."""
        return f"{self.guid.hex.upper()}{self.age:X}"


def is_pe_image(path: "str | os.PathLike[str]") -> bool:
    """Whether ``path`` is a regular file starting with "MZ" (a pipe is not opened to wait:
    not an image, and the PDB reader then says what it is)."""
    try:
        fd, _ = open_regular(path, "give the .pdb file, or the image")
    except (OSError, TmfError):
        return False
    with open(fd, "rb") as fh:
        return fh.read(2) == b"MZ"


def read_codeview(path: "str | os.PathLike[str]") -> CodeViewInfo:
    """The RSDS CodeView record of a PE image; PdbError (with file offset) if it has none."""
    name = os.fspath(path)
    fd, st = open_regular(path, "give the image (.sys, .dll or .exe)")
    with open(fd, "rb") as fh:   # mapped (unmapped with its last reference): a huge file is not loaded
        try:
            data = mmap.mmap(fd, 0, access=mmap.ACCESS_READ) if st.st_size else b""
        except (OSError, ValueError):
            data = fh.read()

    def fail(message: str, offset: int | None, expected: str) -> PdbError:
        return PdbError(message, path=name, offset=offset, expected=expected)

    def u16(pos: int) -> int:
        if pos + 2 > len(data):
            raise fail("file ends inside the PE headers", len(data), "a complete PE image")
        return struct.unpack_from("<H", data, pos)[0]

    def u32(pos: int) -> int:
        if pos + 4 > len(data):
            raise fail("file ends inside the PE headers", len(data), "a complete PE image")
        return struct.unpack_from("<I", data, pos)[0]

    if data[:2] != b"MZ":
        raise fail("not a PE image: no MZ signature", 0, "'MZ' at offset 0")
    pe = u32(0x3C)
    if data[pe:pe + 4] != b"PE\0\0":
        raise fail(f"no PE signature at e_lfanew {pe:#x}", 0x3C, "'PE\\0\\0' at the offset stored at 0x3C")
    sections, opt_size = u16(pe + 6), u16(pe + 20)
    opt = pe + 24
    magic = u16(opt)
    if magic == 0x10B:
        count_at, dirs_at = opt + 92, opt + 96
    elif magic == 0x20B:
        count_at, dirs_at = opt + 108, opt + 112
    else:
        raise fail(f"optional header magic {magic:#x}", opt, "0x10b (PE32) or 0x20b (PE32+)")
    if u32(count_at) <= DEBUG_DIRECTORY_INDEX or dirs_at + 8 * (DEBUG_DIRECTORY_INDEX + 1) > opt + opt_size:
        raise fail("the image has no debug directory", count_at, "a debug data directory (linked with /DEBUG)")
    debug_rva, debug_size = u32(dirs_at + 8 * DEBUG_DIRECTORY_INDEX), u32(dirs_at + 8 * DEBUG_DIRECTORY_INDEX + 4)
    if debug_rva == 0 or debug_size == 0:
        raise fail("the image has no debug directory", dirs_at + 8 * DEBUG_DIRECTORY_INDEX,
                   "a debug data directory (linked with /DEBUG)")
    table = opt + opt_size
    spans = []
    for i in range(min(sections, _MAX_SECTIONS)):
        at = table + 40 * i
        vsize, va, raw_size, raw_ptr = u32(at + 8), u32(at + 12), u32(at + 16), u32(at + 20)
        spans.append((va, max(vsize, raw_size), raw_ptr))

    def file_offset(rva: int, size: int) -> int:
        for va, span, raw_ptr in spans:
            if va <= rva and rva + size <= va + span:
                offset = raw_ptr + rva - va
                if offset + size <= len(data):
                    return offset
        raise fail(f"debug directory RVA {rva:#x} (+{size}) is not inside any section's file data",
                   dirs_at + 8 * DEBUG_DIRECTORY_INDEX, "an RVA inside a section")

    entries_at = file_offset(debug_rva, debug_size)
    for i in range(min(debug_size // 28, _MAX_DEBUG_ENTRIES)):
        entry = entries_at + 28 * i
        if u32(entry + 12) != IMAGE_DEBUG_TYPE_CODEVIEW:
            continue
        size, raw_ptr = u32(entry + 16), u32(entry + 24)
        if raw_ptr + size > len(data):
            raise fail(f"CodeView record at file offset {raw_ptr:#x} (+{size}) lies outside the "
                       f"{len(data)}-byte file", entry + 24, "a PointerToRawData inside the file")
        record = data[raw_ptr:raw_ptr + size]
        if len(record) < 25 or record[:4] != b"RSDS":
            raise fail("CodeView debug record is not an RSDS (PDB 7.0) record", raw_ptr,
                       "'RSDS' GUID age path (NB10 / PDB 2.0 images are not supported)")
        nul = record.find(b"\0", 24)
        raw_path = record[24:nul if nul >= 0 else len(record)]
        try:
            pdb_path = raw_path.decode("utf-8")
        except UnicodeDecodeError:
            pdb_path = raw_path.decode("cp1252", errors="replace")
        return CodeViewInfo(uuid.UUID(bytes_le=bytes(record[4:20])), struct.unpack_from("<I", record, 20)[0],
                            pdb_path)
    raise fail("no CodeView entry in the debug directory", entries_at, "an IMAGE_DEBUG_TYPE_CODEVIEW entry")


def pdb_candidates(image: "str | os.PathLike[str]", info: CodeViewInfo,
                   symbol_paths: "list[str] | tuple[str, ...]" = ()) -> list[str]:
    """Where to look for the image's PDB, in order: the path in the image, beside the image, then
    each symbol path directory both flat and in symbol-store layout (``name/<GUID><age>/name``)."""
    name = info.pdb_name
    out = [info.pdb_path, os.path.join(os.path.dirname(os.path.abspath(image)), name)]
    for directory in symbol_paths:
        for part in directory.replace(";", os.pathsep).split(os.pathsep):
            if part and not part.lower().startswith(("srv*", "cache*")):
                out += [os.path.join(part, name), os.path.join(part, name, info.symstore_key, name)]
    return list(dict.fromkeys(out))
