"""Where TMF data comes from: files, directories (lazy per GUID), search paths, .tmc and .pdb files.

``load(*paths)`` builds one :class:`~wpptrace.tmf.model.TmfSet`. A directory is only listed:
``<guid>.tmf`` files (any case) are read the first time their GUID is looked up, other
``*.tmf`` files the first time a lookup misses (or on a full listing), and the well-formed
message entries of those files are parsed when one of their messages is looked up (a decoding
run uses a fraction of a directory; problems in entries are reported when they are parsed, or
on a full listing); ``*.tmc`` files are read.
Precedence follows tracefmt's search order: explicit paths first (earlier wins), then
``search_path``, then ``TRACE_FORMAT_SEARCH_PATH``; inside one file the last duplicate wins.

Paths are followed as given, symbolic links included (as tracefmt does; TMF directories are
often link farms); in a directory only regular files are read (a device, pipe or socket named
``*.tmf`` or ``*.tmc`` is reported, not opened: a pipe's open would wait). A file that is not TMF text
(``not_tmf_text``: binary data, or no #typev/#enumv line at all) is reported once, by path
and position, and none of its content is shown: a privileged decode with a link to /etc/shadow
in a TMF directory prints no line of it. Binary data after a TMF line leaves the file TMF
(``binary_lines``): NUL padding at its end is cut off, each other line with a control
character is one bad line.
"""
from __future__ import annotations

import errno
import functools
import os
import re

from .errors import TmfError, not_regular_file, open_regular, read_regular
from .lazyre import LazyPattern, compiled
from .model import ControlGuid, TmfSet

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Iterable

__all__ = ["load", "load_file", "split_search_path", "read_text", "parse_tmc", "not_tmf_text", "binary_lines",
           "ENV_SEARCH_PATH"]

ENV_SEARCH_PATH = "TRACE_FORMAT_SEARCH_PATH"
MAX_TEXT_FILE = 256 * 1024 * 1024  # a TMF/TMC larger than this is not a TMF: refuse, don't allocate
_GUID_NAME = compiled(r"^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?\.tmf$", re.I)
#: characters no TMF/TMC text holds: C0 controls other than tab, LF, VT, FF and CR, and DEL
_BINARY = LazyPattern(r"[\x00-\x08\x0e-\x1f\x7f]")
_BINARY_CHARS = tuple(map(chr, (*range(0x00, 0x09), *range(0x0e, 0x20), 0x7f)))
_GUID_START = LazyPattern(r"\{?[0-9A-Fa-f]{8}-")   # a line the TMF parser reads as a GUID header
_GUID = r"\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?"
_GUID_HEADER = LazyPattern(_GUID + r"(?:\s|$)")
# a #typev, #type or #enumv line: the first line, or one after a newline ("\n" first lets a
# search skip from newline to newline instead of trying a match at every character)
_TMF_KEY = LazyPattern(r"[ \t]*#(?:typev?|enumv)[ \t]")
_TMF_KEY_AFTER_NEWLINE = LazyPattern(r"\n[ \t]*#(?:typev?|enumv)[ \t]")
_TMC_KEY = LazyPattern(r"^[ \t]*" + _GUID + r"(?:\s|$)", re.M)
# (a blank or the line's end after the GUID: "<guid>ABC Name" is a mistyped GUID, not a GUID)
_GUID_LINE = LazyPattern(r"^\s*\{?([0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})\}?(?=\s|$)(?:\s+(\S+))?")


def split_search_path(value: str | None) -> list[str]:
    """Entries of a search path separated by os.pathsep and/or ";" (Windows style)."""
    if not value:
        return []
    parts = re.split(rf"[;{re.escape(os.pathsep)}]", value)
    return [part.strip() for part in parts if part.strip()]


def read_text(path: "str | os.PathLike[str]") -> str:
    """A TMF/TMC file as text: UTF-16 with BOM, UTF-8 (BOM optional), else the ANSI code page 1252.

    TmfError, before anything is read, for a directory, a device, pipe or socket (opened
    without waiting: a pipe's open waits for a writer) and for a file larger than MAX_TEXT_FILE."""
    data = read_regular(path, "give a TMF or TMC text file", MAX_TEXT_FILE, "a TMF or TMC file")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return data.decode("utf-16", errors="replace")
    data = _cut_long_lines(data)
    try:   # "utf-8-sig" would import its codec in every process that reads a TMF file
        return str(memoryview(data)[3:], "utf-8") if data[:3] == b"\xef\xbb\xbf" else data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


#: a line of more bytes than this has more than grammar.MAX_LINE (65536) characters in UTF-8
#: (at most 4 bytes a character) or code page 1252: no TMF line is that long (grammar is not
#: imported to read files it may never parse)
_LONG_LINE_BYTES = 4 * 65536


def _cut_long_lines(data: bytes) -> bytes:
    """``data`` (UTF-8 or code page 1252: a CR or LF byte is always a line's end) with each
    line longer than _LONG_LINE_BYTES bytes cut to about that many, at a UTF-8 character's
    start: still too long, the grammar refuses it at its line as it would the whole line, and
    the file is not decoded and split whole (a file of one 200 MB line cost 4 times that).
    Each step looks for a line's end in the next _LONG_LINE_BYTES + 1 bytes only, from the
    back: a file of short lines takes one memrchr per such stretch. What is left at the end,
    _LONG_LINE_BYTES + 1 bytes or fewer, needs no cut (a line is cut to that length)."""
    if len(data) <= _LONG_LINE_BYTES + 1:
        return data
    kept, start, at = [], 0, 0      # data[start:at]: kept so far, not yet copied
    while len(data) - at > _LONG_LINE_BYTES + 1:     # (so data[stretch] is a byte of the file)
        stretch = at + _LONG_LINE_BYTES + 1
        end = data.rfind(b"\n", at, stretch)
        end = max(end, data.rfind(b"\r", max(at, end + 1), stretch))   # (a CR after that LF only)
        if end >= 0:
            at = end + 1
            continue
        cut = stretch
        while cut > stretch - 4 and 0x80 <= data[cut] < 0xC0:  # not inside a UTF-8 character
            cut -= 1
        at = _line_end(data, cut)
        kept.append(data[start:cut])
        start = at
    if not kept:
        return data
    kept.append(data[start:])
    return b"".join(kept)


def _line_end(data: bytes, at: int) -> int:
    """Where the first CR or LF at or after ``at`` is, else len(data). Each byte is looked
    for in one _LONG_LINE_BYTES stretch at a time: looking for the other one to the end of the
    file would read a file of many long lines (LF-only or CR-only) once per line."""
    while at < len(data):
        stretch = at + _LONG_LINE_BYTES
        end = data.find(b"\n", at, stretch)
        cr = data.find(b"\r", at, end if end >= 0 else stretch)      # (a CR before that LF only)
        if cr >= 0 or end >= 0:
            return cr if cr >= 0 else end
        at = stretch
    return len(data)


def text_lines(text: str) -> list[str]:
    """The lines of a TMF or TMC text: a LF, a CRLF or a CR alone ends a line (CRs just
    before a LF are its line end: a file converted to CRLF twice has "\r\r\n")."""
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if "\r" not in text:
        return lines
    return [part for line in lines for part in line.rstrip("\r").split("\r")]


def not_tmf_text(text: str, path: str = "<string>", tmc: bool = False) -> TmfError | None:
    """Why ``text`` (read from ``path``) is not TMF (or, with ``tmc``, TMC) text, or None.

    Not TMF: it holds binary data (a control character no text file has), or it has lines
    other than blanks, // comments and GUID headers but not one #typev or #enumv line (a TMC:
    but no GUID header). Real TMF files with a damaged line stay TMF (their errors quote a
    short excerpt of the line); other files are reported by position only, no excerpt."""
    what = "TMC" if tmc else "TMF"
    # one search per control character finds none at memchr speed; the pattern says where
    binary = _BINARY.search(text) if any(ch in text for ch in _BINARY_CHARS) else None
    if binary:
        before = text_lines(text[:binary.start()] + "x")    # (its line's start, then x)
        line, column = len(before), len(before[-1])
        return TmfError(f"not a {what} file: expected text, found binary data (control "
                        f"character {ord(binary.group()):#04x}); its content is not shown",
                        path=path, line=line, column=column, expected=f"a {what} text file")
    if _TMC_KEY.search(text) if tmc else _TMF_KEY.match(text) or _TMF_KEY_AFTER_NEWLINE.search(text):
        return None
    for lineno, line in enumerate(text_lines(text), 1):   # (lines that end with a CR alone)
        if (_TMC_KEY if tmc else _TMF_KEY).match(line):
            return None
        stripped = line.strip()
        if stripped and not stripped.startswith("//") and not _GUID_HEADER.match(stripped):
            keys = "a GUID header" if tmc else "a #typev or #enumv line"
            return TmfError(f"not a {what} file: expected {keys} somewhere, found other lines "
                            f"(the first here); its content is not shown", path=path,
                            line=lineno, column=len(line) - len(line.lstrip()) + 1,
                            expected=f"a {what} text file")
    return None


def _issue_for_os_error(path: str, err: OSError) -> TmfError:
    return TmfError(f"cannot read: {err.strerror or err}", path=path, expected="a readable file")


def _load_tmf(path: str, priority: int, tolerant: bool, tmfset: TmfSet, lazy: bool = False) -> None:
    try:
        text = read_text(path)
    except OSError as err:
        if not tolerant:
            raise
        tmfset.add_issue(_issue_for_os_error(path, err))
        return
    except TmfError as err:
        if not tolerant:
            raise
        tmfset.add_issue(err)
        return
    bad_lines = None
    not_tmf = not_tmf_text(text, path)
    if not_tmf is not None:
        damaged = binary_lines(text)
        if damaged is not None and damaged[0] != text:
            text, bad_lines = damaged
            not_tmf = not_tmf_text(text, path)
    if not_tmf is not None:
        if not tolerant:
            raise not_tmf
        tmfset.add_issue(not_tmf)
        return
    _grammar().parse_into(tmfset, text, path=path, tolerant=tolerant, priority=priority, lazy=lazy,
                          bad_lines=bad_lines)


def _damaged_guid_header(line: str) -> bool:
    """Whether a line with control characters may have been a GUID header: it would start
    like one with them taken out, or each read as a hex digit or as a "-"."""
    start = line.lstrip()[:48]
    return any(_GUID_START.match(_BINARY.sub(fill, start).lstrip()) for fill in ("", "0", "-"))


#: what a bad line is replaced with for the parser: a line starting with "#" ends any entry or
#: block, and the parser says what was wrong with it (``bad_lines``)
_BAD_LINE = "#"


def binary_lines(text: str) -> tuple[str, dict[int, tuple[int, int, bool]]] | None:
    """A TMF text holding control characters read as TMF all the same, or None.

    None unless a whole GUID header or #typev/#enumv line comes before the first control
    character (a file that is not TMF shows none of its content). Trailing NUL padding (a file
    cut short by a crash) is taken off; each other line with a control character becomes
    ``_BAD_LINE``. Returns the text and, per bad line index, (column, the character's code,
    whether the line was a GUID header: entries after it are not filed under the one before)."""
    text = text.rstrip("\0")
    first = _BINARY.search(text)
    if first is None:
        return text, {}
    before = text[:text.rfind("\n", 0, first.start()) + 1]
    if not (_TMC_KEY.search(before) or _TMF_KEY.match(before) or _TMF_KEY_AFTER_NEWLINE.search(before)):
        return None
    lines = text_lines(text)
    bad: dict[int, tuple[int, int, bool]] = {}
    for index, line in enumerate(lines):
        found = _BINARY.search(line)
        if found is not None:
            bad[index] = (found.start() + 1, ord(found.group()), _damaged_guid_header(line))
            lines[index] = _BAD_LINE
    return "\n".join(lines) + "\n", bad


@functools.cache
def _grammar():
    """The grammar module, imported the first time a TMF text is parsed: a run served by the
    program cache parses none, and its import costs 2.4 M instructions (an import statement
    in ``_load_tmf`` would cost 12 K each file)."""
    from . import grammar

    return grammar


def parse_tmc(text: str, path: str = "<string>", tolerant: bool = False,
              issues: list[TmfError] | None = None) -> list[ControlGuid]:
    """Control GUIDs of a .tmc file (tolerant: a bad line is skipped, and added to ``issues``).

    The layout is inferred (no real .tmc was available): ``//`` comment lines, then per control
    GUID a line ``<guid> <ControlName>`` followed by its flag names, one per line, bit 0 first
    (the order of the ``TMC:`` annotation strings).
    """
    controls: list[ControlGuid] = []
    current: tuple[uuid.UUID, str, list[str], int] | None = None
    for lineno, line in enumerate(text_lines(text), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("//") or stripped == "PUBLIC_TMF:":
            continue
        match = _GUID_LINE.match(line)
        if match:
            if current:
                controls.append(ControlGuid(current[0], current[1], tuple(current[2]), f"{path}:{current[3]}"))
            import uuid

            current = (uuid.UUID(match.group(1)), match.group(2) or "", [], lineno)
        elif current is not None and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", stripped):
            current[2].append(stripped)
        else:
            err = TmfError("unexpected line in .tmc file", path=path, line=lineno, column=len(line) - len(line.lstrip()) + 1,
                           line_text=line, expected="'<control-guid> <name>' or a flag name")
            if not tolerant:
                raise err
            if issues is not None:
                issues.append(err)
    if current:
        controls.append(ControlGuid(current[0], current[1], tuple(current[2]), f"{path}:{current[3]}"))
    return controls


def _load_tmc(path: str, tolerant: bool, tmfset: TmfSet) -> None:
    try:
        text = read_text(path)
        not_tmc = not_tmf_text(text, path, tmc=True)
        if not_tmc is not None:
            raise not_tmc
        skipped: list[TmfError] = []
        for control in parse_tmc(text, path=path, tolerant=tolerant, issues=skipped):
            tmfset.add_control_guid(control)
        for issue in skipped:
            tmfset.add_issue(issue)
    except OSError as err:
        if not tolerant:
            raise
        tmfset.add_issue(_issue_for_os_error(path, err))
    except TmfError as err:
        if not tolerant:
            raise
        tmfset.add_issue(err)


def _load_pdb(path: str, priority: int, tolerant: bool, tmfset: TmfSet) -> None:
    try:
        from . import pdb as pdb_module
    except ImportError as err:  # the PDB reader is optional at import time
        issue = TmfError(f"cannot read PDB files: {err}", path=path, line=0, expected="wpptrace.tmf.pdb")
        if not tolerant:
            raise issue from err
        tmfset.add_issue(issue)
        return
    try:
        from_pdb = pdb_module.load_pdb(path, tolerant=tolerant)
    except OSError as err:
        if not tolerant:
            raise
        tmfset.add_issue(_issue_for_os_error(path, err))
        return
    except TmfError as err:  # PdbError is a TmfError
        if not tolerant:
            raise
        tmfset.add_issue(err)
        return
    tmfset.update(from_pdb, priority=priority)


#: priorities a source's files take below the source's own (``file_priority``)
FILES_PER_SOURCE = 1 << 32


def file_priority(source_rank: int, file_rank: int = 0) -> int:
    """The priority of the ``file_rank``-th file of the ``source_rank``-th source (both from
    0): a message of (GUID, number) is taken from the first source that has one, and in a
    directory from its first file, whatever was read first (docs/tmf-grammar.md)."""
    return -source_rank * FILES_PER_SOURCE - file_rank


def _directory_order(entry: os.DirEntry) -> tuple[bool, str]:
    """A directory's files in the order they rank: the <guid>.tmf files (tracepdb's), then
    the others, each by name."""
    return _GUID_NAME.match(entry.name) is None, entry.name


def _add_directory(tmfset: TmfSet, directory: str, priority: int, tolerant: bool) -> None:
    try:
        entries = sorted(os.scandir(directory), key=_directory_order)
    except OSError as err:
        if not tolerant:
            raise
        tmfset.add_issue(_issue_for_os_error(directory, err))
        return
    file_rank = 0
    for entry in entries:
        name = entry.name.lower()
        if not name.endswith((".tmf", ".tmc")):
            continue
        if not entry.is_file():
            if not entry.is_dir() and os.path.exists(entry.path):   # a device, pipe or socket
                issue = TmfError(not_regular_file("not read"), path=entry.path)
                if not tolerant:
                    raise issue
                tmfset.add_issue(issue)
            continue
        if name.endswith(".tmf"):
            tmfset.inputs.append(entry.path)
            ranked = priority - file_rank
            file_rank += 1
            loader = functools.partial(_load_tmf, entry.path, ranked, tolerant, lazy=True)
            match = _GUID_NAME.match(entry.name)
            # the GUID as its int (what the set keys by): a UUID object per file costs more
            tmfset.add_pending(int(match.group(1).replace("-", ""), 16) if match else None, loader, ranked)
        else:
            tmfset.inputs.append(entry.path)
            _load_tmc(entry.path, tolerant, tmfset)


def _is_pdb(path: str) -> bool:
    """Whether ``path`` starts as a PDB does (an MSF container's signature): a PDB named
    otherwise is read as one. False for what cannot be opened or read: the TMF reader says why."""
    try:
        from .pdb.msf import MSF2_MAGIC, MSF7_MAGIC, MSFZ_MAGIC
    except ImportError:     # the PDB reader is optional at import time
        return False
    try:
        fd, _ = open_regular(path, "")
    except (OSError, TmfError):
        return False
    try:
        head = os.read(fd, max(len(MSF2_MAGIC), len(MSF7_MAGIC), len(MSFZ_MAGIC)))
    except OSError:
        return False
    finally:
        os.close(fd)
    return head.startswith((MSF7_MAGIC, MSF2_MAGIC, MSFZ_MAGIC))


def load_file(tmfset: TmfSet, path: str, priority: int = 0, tolerant: bool = True) -> None:
    """Add one file by its kind: .pdb (annotations) or any other file that starts as a PDB
    does, .tmc (control GUIDs), anything else TMF text."""
    suffix = os.path.splitext(os.path.basename(os.fspath(path)))[1].lower()
    tmfset.inputs.append(os.fspath(path))
    if suffix == ".pdb" or (suffix not in (".tmf", ".tmc") and _is_pdb(path)):
        _load_pdb(path, priority, tolerant, tmfset)
    elif suffix == ".tmc":
        _load_tmc(path, tolerant, tmfset)
    else:
        _load_tmf(path, priority, tolerant, tmfset)


def _add_source(tmfset: TmfSet, path: str, priority: int, tolerant: bool, required: bool) -> None:
    if os.path.isdir(path):
        _add_directory(tmfset, path, priority, tolerant)
    elif os.path.exists(path):
        load_file(tmfset, path, priority, tolerant)
    elif required:
        raise _not_found(path)
    # a missing search-path entry is skipped, as SearchPath does


def _not_found(path: str) -> OSError:
    """Why a path given names nothing to load: missing, or else what stat says (a loop of
    symbolic links is not a missing file), by its Win32 code where it has one."""
    from wpptrace.winerror import as_win32

    try:
        os.stat(path)
    except OSError as err:
        if err.errno not in (errno.ENOENT, errno.ENOTDIR):
            return as_win32(err)
    except ValueError:      # a NUL in the name: nothing by that name
        pass
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)   # (said by its Win32 name)


def load(
    *paths: "str | os.PathLike[str]",
    search_path: str | Iterable[str] | None = None,
    tolerant: bool = True,
    use_environment: bool = True,
) -> TmfSet:
    """Load TMF data from ``paths`` (files or directories), ``search_path`` and TRACE_FORMAT_SEARCH_PATH.

    Missing explicit paths raise FileNotFoundError; missing search-path entries are skipped.
    With ``tolerant`` (the default) bad entries become ``TmfSet.issues`` and the rest loads;
    otherwise the first one raises :class:`TmfError`.
    """
    tmfset = TmfSet()
    sources: list[tuple[str, bool]] = [(os.fspath(p), True) for p in paths]
    if isinstance(search_path, str):
        sources += [(entry, False) for entry in split_search_path(search_path)]
    elif search_path is not None:
        sources += [(os.fspath(entry), False) for entry in search_path]
    if use_environment:
        sources += [(entry, False) for entry in split_search_path(os.environ.get(ENV_SEARCH_PATH))]
    for rank, (path, required) in enumerate(sources):
        _add_source(tmfset, path, file_priority(rank), tolerant, required)
    return tmfset
