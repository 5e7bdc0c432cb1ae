"""WPP trace formats from a private PDB: the ``TMF:``/``TMC:`` S_ANNOTATION records, as tracepdb reads them.

Path through the file (docs/pdb-and-compression.md A5-A10): MSF container
(:mod:`wpptrace.tmf.pdb.msf`) -> PDB info stream (1: GUID, age, features) -> DBI stream (3: module
list) -> each module's symbol stream, walked with a scope stack so every annotation knows its
enclosing procedure (S_GPROC32/S_LPROC32 and the _ID/_DPC variants; S_BLOCK32, inline sites
and the other scope records nest inside). A ``TMF:`` record is the text of one message; the
procedure name becomes ``FUNC=`` when the record has none, exactly as tracepdb does it.
``TMC:`` records are control GUIDs with their flag names. Enums named by ``ItemEnum(T)``
arguments come from the type stream (:mod:`wpptrace.tmf.pdb.types`) as ``#enumv`` blocks.

Container or DBI damage raises :class:`PdbError`. Damage inside one module's symbols is an
issue recorded in ``PdbTraceInfo.issues`` (tolerant mode, the default) and the rest of the
file is still read; with ``tolerant=False`` it raises instead.
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import struct
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

from ..errors import TmfError
from ..grammar import iter_entries
from ..loader import not_tmf_text
from .msf import MsfFile, MsfStream, PdbError, Source
from .types import read_enums

if TYPE_CHECKING:
    from ..model import TmfSet

__all__ = [
    "PdbError", "Annotation", "TraceMessageRecord", "ControlGuidRecord", "PdbTraceInfo",
    "read_pdb", "read_pdb_identity", "load_pdb", "tracepdb_header", "message_from_annotation",
]

# fixed stream numbers
PDB_INFO_STREAM, DBI_STREAM = 1, 3
PDB_VERSION_VC70 = 20000404
FEATURE_MINI_PDB = 0x494E494D  # "MINI": /DEBUG:FASTLINK, symbols stay in the .obj files
DBI_HEADER = struct.Struct("<iIIHHHHHHiiiiiIiiHHI")  # 64 bytes
DBI_FLAG_STRIPPED = 0x2
MODINFO_FIXED = 64  # bytes before the two names
NO_STREAM = 0xFFFF
CV_SIGNATURE_C13 = 4
MACHINE_POINTER_SIZE = {0x14C: 4, 0x1C0: 4, 0x1C2: 4, 0x1C4: 4, 0x8664: 8, 0xAA64: 8, 0x200: 8, 0xA641: 8}

# CodeView symbol kinds (LLVM CodeViewSymbols.def)
S_ANNOTATION = 0x1019
PROC_KINDS = frozenset({0x1110, 0x110F, 0x1147, 0x1146, 0x1155, 0x1156})  # G/L PROC32, _ID, _DPC(_ID)
NAMELESS_SCOPE_KINDS = frozenset({
    0x1102,  # S_THUNK32
    0x1103,  # S_BLOCK32
    0x1104,  # S_WITH32
    0x112A, 0x112B,  # S_GMANPROC, S_LMANPROC (managed: no native proc name used)
    0x1132,  # S_SEPCODE
    0x114D, 0x115D,  # S_INLINESITE, S_INLINESITE2
})
SCOPE_END_KINDS = frozenset({0x0006, 0x114F, 0x114E})  # S_END, S_PROC_ID_END, S_INLINESITE_END
PROC_NAME_OFFSET = 0x27  # from the record start (u16 len, u16 kind, ...)
PROC_END_OFFSET = 0x08  # PtrEnd: stream offset of the matching S_END
#: deeper nesting is not tracked (reported once per module); real code nests tens of levels
MAX_SCOPE_DEPTH = 1024

TMF_PREFIX, TMC_PREFIX, PUBLIC_TMF = "TMF:", "TMC:", "PUBLIC_TMF:"
_WALK_KINDS = PROC_KINDS | NAMELESS_SCOPE_KINDS | SCOPE_END_KINDS | {S_ANNOTATION}
_RECORD_HEADER = struct.Struct("<HH")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_TYPEV = re.compile(r"#typev?\s+(\S+)\s+(\d{1,10})\b")
_FUNC_KEY = re.compile(r"(?:^|\s)FUNC=")
_ENUM_ITEM = re.compile(r",\s*Item(?:Flags)?Enum\(\s*([^()\s]+)\s*\)\s*--\s*\d+\s*$")


@dataclass(frozen=True)
class Annotation:
    """One S_ANNOTATION record and where it was found."""

    module_index: int
    module_name: str
    stream_index: int
    stream_offset: int  # record offset inside the module symbol stream (cvdump's "(00073C)")
    file_offset: int | None  # the same byte in the file
    segment: int
    code_offset: int
    strings: tuple[str, ...]
    procedure: str | None  # name of the enclosing S_*PROC32* record


@dataclass(frozen=True)
class TraceMessageRecord:
    """A ``TMF:`` annotation made into one message's TMF text (FUNC= added as tracepdb does)."""

    guid: uuid.UUID
    number: int
    header: str  # "<guid> <component> // SRC=<file> MJ= MN="
    lines: tuple[str, ...]  # "#typev ...", "{", argument lines..., "}"
    public: bool  # ended with "PUBLIC_TMF:"
    annotation: Annotation

    @property
    def text(self) -> str:
        return "\n".join((self.header, *self.lines)) + "\n"

    @property
    def component(self) -> str:
        parts = self.header.split(None, 2)
        return parts[1] if len(parts) > 1 and parts[1] != "//" else ""

    def enum_names(self) -> list[str]:
        """C enum types named by ``ItemEnum(T)`` / ``ItemFlagsEnum(T)`` arguments."""
        return [m.group(1) for m in map(_ENUM_ITEM.search, self.lines) if m]


@dataclass(frozen=True)
class ControlGuidRecord:
    """A ``TMC:`` annotation: control GUID, control name and flag names (first = value 1)."""

    guid: uuid.UUID
    guid_text: str  # as written in the record (case kept, as tracepdb copies it)
    name: str
    flags: tuple[str, ...]
    public: bool
    annotation: Annotation


@dataclass
class PdbTraceInfo:
    """Everything trace-related read from one PDB."""

    path: str
    pdb_guid: uuid.UUID | None = None
    age: int = 0  # PDB info stream age
    dbi_age: int = 0  # DBI age: the one an image's CodeView record carries
    machine: int = 0
    stripped: bool = False  # DBI flag: public PDB, trace formats removed by the linker
    mini_pdb: bool = False  # /DEBUG:FASTLINK: module symbols are not in this file
    modules: int = 0
    annotations: list[Annotation] = field(default_factory=list)  # every S_ANNOTATION, file order
    messages: list[TraceMessageRecord] = field(default_factory=list)  # TMF:, duplicates removed
    control_guids: list[ControlGuidRecord] = field(default_factory=list)  # TMC:
    enums: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)  # ItemEnum types (TPI)
    duplicates: int = 0  # identical TMF: records dropped (inlined/template copies)
    damaged_messages: int = 0  # TMF: records skipped as damaged (each also an issue, or dropped)
    other_annotations: int = 0  # S_ANNOTATION records that are not TMF:/TMC:
    issues: list[PdbError] = field(default_factory=list)
    # problems met past the first MAX_ISSUES_PER_FILE, counted only (a PDB of millions of
    # tiny damaged records would otherwise hold millions of errors while it is read)
    issues_dropped: int = 0

    @property
    def pdb_name(self) -> str:
        return os.path.basename(self.path)

    @property
    def pointer_size(self) -> int | None:
        return MACHINE_POINTER_SIZE.get(self.machine)

    def message_guids(self) -> list[uuid.UUID]:
        """Message GUIDs in the order their first message appears in the PDB."""
        return list(dict.fromkeys(m.guid for m in self.messages))

    def to_tmf_text_by_guid(self, updated: _dt.datetime | None = None, *,
                            guid_line: bool = True) -> dict[uuid.UUID, str]:
        """``{message GUID: contents of <guid>.tmf}`` in tracepdb's layout.

        Two ``// PDB:`` lines (file name; ``Last Updated`` time, ``updated`` or now, UTC),
        the GUID line of the first message, then each message's ``#typev`` block in PDB order.
        ``guid_line=False`` leaves out the GUID line, as tracepdb does when it appends to an
        existing file.
        """
        header = tracepdb_header(self.pdb_name, updated)
        out: dict[uuid.UUID, list[str]] = {}
        used_enums: dict[uuid.UUID, dict[str, str]] = {}  # guid -> enum name -> component
        for message in self.messages:
            block = out.get(message.guid)
            if block is None:
                block = out[message.guid] = [header, message.header + "\n"] if guid_line else [header]
            block.append("\n".join(message.lines) + "\n")
            for name in message.enum_names():
                if name in self.enums:
                    used_enums.setdefault(message.guid, {}).setdefault(name, message.component)
        for guid, names in used_enums.items():
            # tracepdb's DumpEnumsToTMF: "<guid> <module>", then "#enumv <name>" { "<enumerator>,0x<%I64X>" }
            out[guid].append(f"{guid} {next(iter(names.values()))}\n")
            for name in names:
                out[guid].append(f"#enumv {name}\n{{\n")
                out[guid].extend(f"{enumerator},0x{value & 0xFFFFFFFFFFFFFFFF:X}\n"
                                 for enumerator, value in self.enums[name])
                out[guid].append("}\n")
        return {guid: "".join(parts) for guid, parts in out.items()}


def tracepdb_header(pdb_name: str, updated: _dt.datetime | None = None) -> str:
    """The two ``// PDB:`` comment lines tracepdb writes at the top of each file it makes."""
    when = updated or _dt.datetime.now(_dt.timezone.utc)
    if when.tzinfo is not None:
        when = when.astimezone(_dt.timezone.utc)
    stamp = when.strftime("%Y-%m-%d:%H:%M:%S:") + f"{when.microsecond // 1000:03d}"
    return f"// PDB:  {pdb_name}\n// PDB:  Last Updated :{stamp} (UTC) [Tracepdb]\n"


# -- reading -------------------------------------------------------------------------------------
def read_pdb(source: Source, *, tolerant: bool = True, name: str | None = None) -> PdbTraceInfo:
    """Read the WPP annotations of a PDB (path, bytes or binary file object).

    Raises :class:`PdbError` for a damaged container, PDB info or DBI stream. Damage inside a
    module's symbols is recorded in ``.issues`` (that module's remaining records are skipped)
    unless ``tolerant`` is False, in which case it raises.
    """
    with MsfFile(source, name=name) as msf:
        reader = _PdbReader(msf, tolerant)
        return reader.read()


def read_pdb_identity(source: Source, *, name: str | None = None) -> PdbTraceInfo:
    """Only the PDB's identity (GUID, ages, machine, stripped flag): cheap, for matching images."""
    with MsfFile(source, name=name) as msf:
        return _PdbReader(msf, tolerant=True).read_identity()


def load_pdb(source: Source, *, tolerant: bool = True, updated: _dt.datetime | None = None) -> "TmfSet":
    """The PDB's trace formats as a :class:`~wpptrace.tmf.model.TmfSet` (via the TMF grammar)."""
    from .. import parse_text
    from ..model import ControlGuid, TmfSet

    info = read_pdb(source, tolerant=tolerant)
    tmfset = TmfSet()
    for guid, text in info.to_tmf_text_by_guid(updated).items():
        tmfset.update(parse_text(text, path=f"{info.path}[{guid}.tmf]", tolerant=tolerant))
    for control in info.control_guids:
        tmfset.add_control_guid(ControlGuid(control.guid, control.name, control.flags,
                                            origin=f"{info.path}:{_origin(control.annotation)}"))
    for issue in info.issues:
        tmfset.add_issue(issue)
    if info.issues_dropped:
        tmfset.drop_issue(info.path, info.issues_dropped)
    return tmfset


def _origin(annotation: Annotation) -> str:
    return f"module {annotation.module_index} stream {annotation.stream_index} offset {annotation.stream_offset:#x}"


def _decode(raw: bytes) -> str:
    # clang writes UTF-8; MSVC writes narrow bytes that are UTF-8 in practice (ASCII mostly)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", errors="replace")


class _PdbReader:
    def __init__(self, msf: MsfFile, tolerant: bool) -> None:
        self.msf = msf
        self.tolerant = tolerant
        self.info = PdbTraceInfo(path=msf.path)
        self._seen: set[tuple[uuid.UUID, int, tuple[str, ...]]] = set()

    def error(self, message: str, stream: MsfStream | None, offset: int | None,
              expected: str = "") -> PdbError:
        file_offset = stream.file_offset(offset) if stream is not None and offset is not None else offset
        where = "" if stream is None else f"stream {stream.index} offset {offset:#x}: "
        return PdbError(where + message, path=self.msf.path, offset=file_offset, expected=expected)

    def issue(self, err: PdbError) -> None:
        from .. import model

        if not self.tolerant:
            raise err
        if len(self.info.issues) < model.MAX_ISSUES_PER_FILE:
            self.info.issues.append(err)
        else:
            self.info.issues_dropped += 1

    def read_identity(self) -> PdbTraceInfo:
        self.read_info_stream()
        self.read_dbi_header()
        return self.info

    def read(self) -> PdbTraceInfo:
        self.read_info_stream()
        walked: dict[int, int] = {}  # symbol stream -> module that owns it
        for index, name, stream_index, sym_bytes in self._read_modules():
            if stream_index != NO_STREAM and stream_index in walked:
                # each module has its own stream; walking a shared one again could only repeat work
                self.issue(self.error(f"module {index} ({name}) names symbol stream {stream_index}, already "
                                      f"used by module {walked[stream_index]}", None, None,
                                      "one symbol stream per module"))
                continue
            walked[stream_index] = index
            self._walk_module(index, name, stream_index, sym_bytes)
        wanted = {name for message in self.info.messages for name in message.enum_names()}
        try:
            self.info.enums = read_enums(self.msf, wanted)
        except PdbError as err:  # enum damage leaves the messages usable: numbers instead of names
            self.issue(err)
        return self.info

    # -- stream 1 --------------------------------------------------------------------------
    def read_info_stream(self) -> None:
        if not self.msf.has_stream(PDB_INFO_STREAM):
            raise self.error("the PDB info stream (1) is missing", None, None, "a PDB, not another MSF file")
        s = self.msf.stream(PDB_INFO_STREAM, "PDB info")
        data = s.data
        if len(data) < 12:
            raise self.error(f"PDB info stream is {len(data)} bytes", s, 0, "at least 12 bytes")
        version, _signature, age = struct.unpack_from("<III", data, 0)
        self.info.age = age
        pos = 12
        if version >= PDB_VERSION_VC70:
            if len(data) < 28:
                raise self.error("PDB info stream ends inside the GUID", s, len(data), "a 16-byte GUID at 12")
            self.info.pdb_guid = uuid.UUID(bytes_le=bytes(data[12:28]))
            pos = 28
        self.info.mini_pdb = FEATURE_MINI_PDB in self._feature_codes(data, pos)

    @staticmethod
    def _feature_codes(data: bytes, pos: int) -> list[int]:
        """Feature codes after the named-stream map (empty if the map is not well formed)."""
        def u32() -> int:
            nonlocal pos
            if pos + 4 > len(data):
                raise IndexError
            (value,) = struct.unpack_from("<I", data, pos)
            pos += 4
            return value

        try:
            pos += u32()  # names buffer
            count, _capacity = u32(), u32()
            pos += 4 * u32()  # present bit words
            pos += 4 * u32()  # deleted bit words
            pos += 8 * count + 4  # (name offset, stream) pairs, then niMac
            if pos > len(data):
                return []
            return [u32() for _ in range((len(data) - pos) // 4)]
        except IndexError:
            return []

    # -- stream 3 --------------------------------------------------------------------------
    def read_dbi_header(self) -> tuple[MsfStream, int]:
        """The DBI stream and its module-info size; sets age, machine and the stripped flag."""
        if not self.msf.has_stream(DBI_STREAM):
            raise self.error("the DBI stream (3) is missing", None, None, "a PDB with debug info")
        s = self.msf.stream(DBI_STREAM, "DBI")
        dbi = s.data
        if len(dbi) < DBI_HEADER.size:
            raise self.error(f"DBI stream is {len(dbi)} bytes", s, 0, f"a {DBI_HEADER.size}-byte DBI header")
        fields = DBI_HEADER.unpack_from(dbi, 0)
        signature, age, mod_info_size, flags, machine = fields[0], fields[2], fields[9], fields[17], fields[18]
        if signature != -1:
            raise self.error(f"DBI version signature is {signature}", s, 0,
                             "-1 (the VC 4.1+ DBI header); older DBI formats are not supported")
        if mod_info_size < 0 or DBI_HEADER.size + mod_info_size > len(dbi):
            raise self.error(f"module info size {mod_info_size} does not fit in the {len(dbi)}-byte DBI stream",
                             s, 0x18, f"0 to {len(dbi) - DBI_HEADER.size}")
        self.info.dbi_age = age
        self.info.machine = machine
        self.info.stripped = bool(flags & DBI_FLAG_STRIPPED)
        return s, mod_info_size

    def _read_modules(self) -> Iterator[tuple[int, str, int, int]]:
        """(module index, module name, symbol stream, symbol byte size) of each module."""
        s, mod_info_size = self.read_dbi_header()
        dbi = s.data
        end = DBI_HEADER.size + mod_info_size
        pos, index = DBI_HEADER.size, 0
        while pos < end:
            if pos + MODINFO_FIXED > end:
                raise self.error(f"module {index}: record header runs past the module info substream",
                                 s, pos, f"{MODINFO_FIXED} bytes before offset {end:#x}")
            stream_index, sym_bytes = struct.unpack_from("<HI", dbi, pos + 0x22)
            name_end = dbi.find(b"\0", pos + MODINFO_FIXED, end)
            obj_end = dbi.find(b"\0", name_end + 1, end) if name_end >= 0 else -1
            if obj_end < 0:
                raise self.error(f"module {index}: names are not NUL-terminated inside the module info substream",
                                 s, pos + MODINFO_FIXED, "module name and object name, each ending in NUL")
            module_name = _decode(bytes(dbi[pos + MODINFO_FIXED:name_end]))
            yield index, module_name, stream_index, sym_bytes
            pos = (obj_end + 1 + 3) & ~3
            index += 1
            self.info.modules = index

    # -- module symbol streams ---------------------------------------------------------------
    def _walk_module(self, index: int, module_name: str, stream_index: int, sym_bytes: int) -> None:
        if stream_index == NO_STREAM:
            return  # no symbols (import module, or stripped)
        if not self.msf.has_stream(stream_index):
            self.issue(self.error(f"module {index} ({module_name}): symbol stream {stream_index} is absent",
                                  None, None, "a present stream"))
            return
        s = self.msf.stream(stream_index, f"module {index} symbols")
        data = s.data
        if sym_bytes < 4 or sym_bytes > len(data):
            self.issue(self.error(f"module {index} ({module_name}): symbol size {sym_bytes} does not fit "
                                  f"the {len(data)}-byte stream", s, 0, f"4 to {len(data)}"))
            return
        (cv_signature,) = struct.unpack_from("<I", data, 0)
        if cv_signature != CV_SIGNATURE_C13:
            self.issue(self.error(f"module {index} ({module_name}): CodeView signature {cv_signature}", s, 0,
                                  "4 (C13; C7/C11-era symbols are not supported)"))
            return
        # open scopes: (record offset, PtrEnd, record offset of the innermost open procedure or
        # -1). Carrying the procedure with each entry makes an annotation's lookup O(1) however
        # deep the nesting; its name is decoded once per procedure.
        scopes: list[tuple[int, int, int]] = []
        names: dict[int, str] = {}
        untracked = 0  # scopes open beyond MAX_SCOPE_DEPTH (not on the stack)
        skipped, first_skipped = 0, 0
        header = _RECORD_HEADER.unpack_from
        u32 = _U32.unpack_from
        off = 4
        while off + 4 <= sym_bytes:
            reclen, kind = header(data, off)
            next_off = off + 2 + reclen
            if reclen < 2 or next_off > sym_bytes:
                self.issue(self.error(f"module {index} ({module_name}): symbol record length {reclen} "
                                      f"runs past the symbols", s, off,
                                      f"a length from 2 to {sym_bytes - off - 2}"))
                break
            if kind in _WALK_KINDS:
                # a scope whose PtrEnd we have passed without seeing its S_END is closed
                while not untracked and scopes and scopes[-1][0] < scopes[-1][1] < off:
                    scopes.pop()
                if kind in PROC_KINDS or kind in NAMELESS_SCOPE_KINDS:
                    if kind in PROC_KINDS and reclen + 2 <= PROC_NAME_OFFSET:
                        self.issue(self.error(f"procedure record of {reclen + 2} bytes", s, off,
                                              f"more than {PROC_NAME_OFFSET} bytes (fields and a name)"))
                        break
                    if untracked or len(scopes) >= MAX_SCOPE_DEPTH:
                        untracked += 1
                        skipped += 1
                        first_skipped = first_skipped or off
                    elif kind in PROC_KINDS:
                        scopes.append((off, u32(data, off + PROC_END_OFFSET)[0], off))
                    else:
                        scopes.append((off, u32(data, off + 8)[0] if reclen >= 10 else 0,
                                       scopes[-1][2] if scopes else -1))
                elif kind in SCOPE_END_KINDS:
                    if untracked:
                        untracked -= 1
                    elif scopes:
                        scopes.pop()
                elif not self._annotation(index, module_name, s, off, next_off,
                                          self._procedure_name(data, scopes, names)):
                    break
            off = next_off
        if skipped:
            self.issue(self.error(f"module {index} ({module_name}): {skipped} scopes nested more than "
                                  f"{MAX_SCOPE_DEPTH} deep were not tracked (their annotations name the "
                                  f"procedure at depth {MAX_SCOPE_DEPTH} or above)", s, first_skipped,
                                  f"scopes nested at most {MAX_SCOPE_DEPTH} deep"))

    def _procedure_name(self, data: bytes, scopes: list[tuple[int, int, int]],
                        names: dict[int, str]) -> str | None:
        """Name of the innermost enclosing procedure ('' if its name is not NUL-terminated)."""
        start = scopes[-1][2] if scopes else -1
        if start < 0:
            return None
        name = names.get(start)
        if name is None:
            (reclen,) = _U16.unpack_from(data, start)
            name = self._cstring(data, start + PROC_NAME_OFFSET, start + 2 + reclen) or ""
            names[start] = name
        return name

    @staticmethod
    def _cstring(data: bytes, start: int, end: int) -> str | None:
        nul = data.find(b"\0", start, end)
        if nul < 0:
            return None
        return _decode(bytes(data[start:nul]))

    def _annotation(self, module_index: int, module_name: str, s: MsfStream, off: int, end: int,
                    procedure: str | None) -> bool:
        data = s.data
        if end - off < 12:
            self.issue(self.error(f"S_ANNOTATION record of {end - off} bytes", s, off, "at least 12 bytes"))
            return False
        code_offset, segment, count = struct.unpack_from("<IHH", data, off + 4)
        pieces = data[off + 12:end].split(b"\0", count)  # the last piece: padding (or a runaway string)
        if len(pieces) <= count:
            found = len(pieces) - 1
            bad_at = off + 12 + sum(len(p) + 1 for p in pieces[:found])
            self.issue(self.error(f"S_ANNOTATION string {found + 1} of {count} runs past the record end "
                                  f"{end:#x}", s, bad_at, "a NUL-terminated string inside the record"))
            return True  # the record framing is fine: skip just this record
        strings = [_decode(p) for p in pieces[:count]]
        annotation = Annotation(module_index, module_name, s.index, off, s.file_offset(off), segment,
                                code_offset, tuple(strings), procedure)
        self.info.annotations.append(annotation)
        if strings and strings[0] == TMF_PREFIX:
            self._tmf(annotation, s)
        elif strings and strings[0] == TMC_PREFIX:
            self._tmc(annotation, s)
        else:
            self.info.other_annotations += 1
        return True

    def _tmf(self, a: Annotation, s: MsfStream) -> None:
        try:
            message = message_from_annotation(a)
            _check_reads_back(message)
        except ValueError as exc:
            self.info.damaged_messages += 1
            self.issue(self.error(str(exc), s, a.stream_offset,
                                  "'TMF:', '<guid> <component> // SRC=...', '#typev <name> <number> ...', ..."))
            return
        key = (message.guid, message.number, a.strings)
        if key in self._seen:  # the same message inlined/instantiated again: tracepdb keeps one
            self.info.duplicates += 1
            return
        self._seen.add(key)
        self.info.messages.append(message)

    def _tmc(self, a: Annotation, s: MsfStream) -> None:
        body = list(a.strings[1:])
        public = bool(body) and body[-1] == PUBLIC_TMF
        if public:
            body.pop()
        if len(body) < 2:
            self.issue(self.error(f"TMC: annotation with {len(body)} strings", s, a.stream_offset,
                                  "a control GUID and a control name"))
            return
        try:
            guid = uuid.UUID(body[0].strip())
        except ValueError:
            self.issue(self.error(f"TMC: control GUID {body[0][:40]!r} is not a GUID", s, a.stream_offset,
                                  "'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'"))
            return
        bad = next((i for i, string in enumerate(body[1:], 3) if not _is_word(string)), None)
        if bad is not None:   # written one per line into .tmc and .mof: a line break would add lines
            self.issue(self.error(f"TMC: annotation string {bad} is not one word (a blank, line break, "
                                  f"quote or control character)", s, a.stream_offset,
                                  "a control name and flag names, each a C identifier"))
            return
        self.info.control_guids.append(
            ControlGuidRecord(guid, body[0].strip(), body[1], tuple(body[2:]), public, a))


def message_from_annotation(a: Annotation) -> TraceMessageRecord:
    """Turn a ``TMF:`` annotation into one message's TMF text, adding `` FUNC=<procedure>``.

    The strings after ``TMF:`` are the message's lines (a trailing ``PUBLIC_TMF:`` marks a
    public message and is dropped). tracepdb appends the enclosing procedure's name as
    ``FUNC=`` to the ``#typev`` line unless the record already has a FUNC= key.
    Raises ValueError if the strings do not have that shape.
    """
    body = list(a.strings[1:])
    public = bool(body) and body[-1] == PUBLIC_TMF
    if public:
        body.pop()
    if len(body) < 2:
        raise ValueError(f"TMF: annotation with {len(body)} strings, too few for a message")
    for number, string in enumerate(body, 2):
        if "\n" in string or "\r" in string:   # one string is one line: a break would write others
            raise ValueError(f"TMF: annotation string {number} holds a line break (CR or LF)")
    guid_text, *rest = body[0].split(None, 1) or [""]
    try:
        guid = uuid.UUID(guid_text)
    except ValueError:
        raise ValueError(f"TMF: annotation header {body[0][:60]!r} does not start with a GUID") from None
    # uuid.UUID also takes "urn:uuid:...", braces and 32 bare digits: the file gets the form TMF readers take
    header = " ".join((str(guid), *rest))
    typev_at = next((i for i, line in enumerate(body[1:], 1) if _TYPEV.match(line)), None)
    if typev_at is None:
        raise ValueError("TMF: annotation has no '#typev <name> <number>' line")
    number = int(_TYPEV.match(body[typev_at]).group(2))  # type: ignore[union-attr]
    lines = body[1:]
    if a.procedure:
        trailer = _trailer(lines[typev_at - 1])
        if "//" not in trailer:
            lines[typev_at - 1] += f" //   FUNC={a.procedure}"
        elif not _FUNC_KEY.search(trailer):
            lines[typev_at - 1] += f" FUNC={a.procedure}"
    return TraceMessageRecord(guid, number, header, tuple(lines), public, a)


def _is_word(text: str) -> bool:
    """A name that is one word on a line: not empty; no blank, quote, backslash or control character."""
    return bool(text) and text.isprintable() and not any(ch.isspace() or ch in '"\\' for ch in text)


def _trailer(typev_line: str) -> str:
    """What follows the format's closing quote on a ``#typev`` line."""
    quote = typev_line.rfind('"')
    return typev_line[quote + 1:] if quote >= 0 else typev_line


def _check_reads_back(message: TraceMessageRecord) -> None:
    """Raise ValueError unless our TMF reader reads ``message.text`` as that one message: a
    record it would refuse (or read as other messages) is damaged, not written."""
    text = message.text
    try:
        refused = not_tmf_text(text)
        if refused is not None:
            raise refused
        found = [(m.guid, m.number) for m in iter_entries(text)]
    except TmfError as err:
        where = f"string {err.line + 1}, column {err.column}: " if err.line else ""
        expected = f" (expected {err.expected})" if err.expected and "expected" not in err.message else ""
        raise ValueError(f"TMF: annotation refused by the TMF reader: {where}{err.message}{expected}") from None
    if found != [(message.guid, message.number)]:
        raise ValueError(f"TMF: annotation holds {len(found)} messages, expected one "
                         f"({message.guid} number {message.number})")
