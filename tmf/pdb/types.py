"""PDB type stream (TPI, stream 2): the enum definitions tracepdb writes as ``#enumv`` blocks for ItemEnum.

Layout (docs/pdb-and-compression.md A9): a 56-byte header (version, header size,
first type index, end type index, record bytes, hash fields), then type records ``u16 length,
u16 kind, payload``; a record's type index is the first index plus its position. An LF_ENUM
names its LF_FIELDLIST, whose LF_ENUMERATE members are ``u16 attributes, numeric leaf value,
name``; LF_INDEX continues the list in another record. Every read is bounded by the record.
"""
from __future__ import annotations

import struct

# (the TMF reader is imported with this: every PDB read for its trace formats needs it)
from ..grammar import reads_as_enumerator
from .msf import MsfFile, MsfStream, PdbError

__all__ = ["TPI_STREAM", "read_enums"]

TPI_STREAM = 2
TPI_HEADER = struct.Struct("<IIIII")  # version, header size, first index, end index, record bytes
LF_ENUM, LF_FIELDLIST, LF_ENUMERATE, LF_INDEX = 0x1507, 0x1203, 0x1502, 0x1404
ENUM_FORWARD_REF, ENUM_HAS_UNIQUE_NAME = 0x0080, 0x0200
# numeric leaf kinds: (struct format, size)
_NUMERIC = {0x8000: ("<b", 1), 0x8001: ("<h", 2), 0x8002: ("<H", 2), 0x8003: ("<i", 4), 0x8004: ("<I", 4),
            0x8009: ("<q", 8), 0x800A: ("<Q", 8)}
_MAX_INDEX_CHAIN = 4096  # LF_INDEX continuations followed per enum (a cycle guard)
_MAX_ENUMERATORS = 1 << 20  # enumerators produced per PDB; real enums have at most thousands


def read_enums(msf: MsfFile, names: set[str]) -> dict[str, tuple[tuple[str, int], ...]]:
    """``{enum name: ((enumerator, value), ...)}`` for the named enums found in the TPI stream.

    Forward references are skipped; the first full definition of a name wins. Values are
    Python ints as stored (signed leaves stay negative). Raises PdbError on a damaged stream.
    """
    if not names or not msf.has_stream(TPI_STREAM):
        return {}
    stream = msf.stream(TPI_STREAM, "TPI")
    records = _records(msf, stream)
    field_lists = _FieldLists(msf, stream, records)
    found: dict[str, tuple[tuple[str, int], ...]] = {}
    for offset, kind, payload in records.values():
        if kind != LF_ENUM or len(payload) < 12:
            continue
        _count, prop, _underlying, field_list = struct.unpack_from("<HHII", payload, 0)
        name = _cstr(payload, 12)
        if prop & ENUM_FORWARD_REF or name is None or name not in names or name in found:
            continue
        found[name] = field_lists.enumerators(field_list)
    return found


def _error(msf: MsfFile, stream: MsfStream, offset: int, message: str, expected: str) -> PdbError:
    return PdbError(f"stream {stream.index} (TPI) offset {offset:#x}: {message}", path=msf.path,
                    offset=stream.file_offset(offset), expected=expected)


def _records(msf: MsfFile, stream: MsfStream) -> dict[int, tuple[int, int, bytes]]:
    """type index -> (stream offset, kind, payload) of the LF_ENUM and LF_FIELDLIST records."""
    data = stream.data
    if len(data) < TPI_HEADER.size:
        raise _error(msf, stream, 0, f"TPI stream of {len(data)} bytes", f"a header of at least {TPI_HEADER.size}")
    _version, header_size, first, end_index, record_bytes = TPI_HEADER.unpack_from(data, 0)
    if header_size < TPI_HEADER.size or header_size + record_bytes > len(data) or end_index < first:
        raise _error(msf, stream, 4, f"TPI header (size {header_size}, {record_bytes} record bytes) does not fit "
                     f"the {len(data)}-byte stream", "header size + record bytes within the stream")
    records: dict[int, tuple[int, int, bytes]] = {}
    off, end, index = header_size, header_size + record_bytes, first
    while off + 4 <= end:
        length, kind = struct.unpack_from("<HH", data, off)
        if length < 2 or off + 2 + length > end:
            raise _error(msf, stream, off, f"type record length {length} runs past the records",
                         f"a length from 2 to {end - off - 2}")
        if kind in (LF_ENUM, LF_FIELDLIST):  # the only kinds enums need: keep memory to those
            records[index] = (off, kind, data[off + 4:off + 2 + length])
        off += 2 + length
        index += 1
    return records


class _FieldLists:
    """Parses each LF_FIELDLIST record once and bounds the enumerators produced per PDB, so a
    hostile type stream (many enums sharing one long LF_INDEX chain) cannot blow up."""

    def __init__(self, msf: MsfFile, stream: MsfStream, records: dict[int, tuple[int, int, bytes]]) -> None:
        self.msf, self.stream, self.records = msf, stream, records
        self._parsed: dict[int, tuple[tuple[tuple[str, int], ...], int]] = {}
        self.budget = _MAX_ENUMERATORS

    def enumerators(self, field_list: int) -> tuple[tuple[str, int], ...]:
        out: list[tuple[str, int]] = []
        seen: set[int] = set()
        while field_list in self.records and field_list not in seen and len(seen) < _MAX_INDEX_CHAIN:
            seen.add(field_list)
            offset = self.records[field_list][0]
            members, field_list = self._parse(field_list)
            self.budget -= len(members)
            if self.budget < 0:
                raise _error(self.msf, self.stream, offset, "more enumerators than any real PDB holds",
                             f"at most {_MAX_ENUMERATORS} enumerators in the enums ItemEnum names")
            out.extend(members)
        return tuple(out)

    def _parse(self, index: int) -> tuple[tuple[tuple[str, int], ...], int]:
        """(members of field list ``index``, LF_INDEX continuation or -1)."""
        cached = self._parsed.get(index)
        if cached is not None:
            return cached
        msf, stream = self.msf, self.stream
        offset, kind, payload = self.records[index]
        if kind != LF_FIELDLIST:
            raise _error(msf, stream, offset, f"enum field list {index:#x} is kind {kind:#06x}",
                         "LF_FIELDLIST (0x1203)")
        members: list[tuple[str, int]] = []
        continuation = -1
        pos = 0
        while pos + 2 <= len(payload):
            if payload[pos] >= 0xF0:  # LF_PAD<n>: skip to the next member
                pos += max(1, payload[pos] & 0x0F)
                continue
            (member,) = struct.unpack_from("<H", payload, pos)
            if member == LF_INDEX and pos + 8 <= len(payload):
                (continuation,) = struct.unpack_from("<I", payload, pos + 4)
                break
            if member != LF_ENUMERATE or pos + 6 > len(payload):
                raise _error(msf, stream, offset + 4 + pos, f"field list member kind {member:#06x}",
                             "LF_ENUMERATE (0x1502) or LF_INDEX (0x1404)")
            value, pos = _numeric(msf, stream, payload, pos + 4, offset + 4)
            name = _cstr(payload, pos)
            if name is None:
                raise _error(msf, stream, offset + 4 + pos, "enumerator name runs past the record",
                             "a NUL-terminated name")
            if not name.isprintable() or not reads_as_enumerator(name):
                # written as a "<name>,0x<value>" line, which our reader must read back as it
                raise _error(msf, stream, offset + 4 + pos,
                             f"enumerator name {name[:40]!r} is not one word the TMF reader reads back",
                             "a name without blanks or commas, not starting with '#', '//' or a GUID")
            members.append((name, value))
            pos = payload.index(b"\0", pos) + 1
        result = (tuple(members), continuation)
        self._parsed[index] = result
        return result


def _numeric(msf: MsfFile, stream: MsfStream, payload: bytes, pos: int, base: int) -> tuple[int, int]:
    (leaf,) = struct.unpack_from("<H", payload, pos)
    if leaf < 0x8000:
        return leaf, pos + 2
    fmt = _NUMERIC.get(leaf)
    if fmt is None or pos + 2 + fmt[1] > len(payload):
        raise _error(msf, stream, base + pos, f"numeric leaf kind {leaf:#06x}",
                     "an integer leaf (value < 0x8000 or LF_CHAR..LF_UQUADWORD) inside the record")
    return struct.unpack_from(fmt[0], payload, pos + 2)[0], pos + 2 + fmt[1]


def _cstr(data: bytes, pos: int) -> str | None:
    nul = data.find(b"\0", pos)
    if nul < 0:
        return None
    raw = bytes(data[pos:nul])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")
