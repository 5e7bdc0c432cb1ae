"""The TMF reader's error type: where (path:line:column), an excerpt of the offending line with a caret,
what was expected.

The excerpt is short and printable: at most SHOWN_LINE characters around the column, control
and other unprintable characters escaped (\\x1b), so a hostile file cannot drive the terminal.
Files that are not TMF text at all are reported without any excerpt (see loader.not_tmf_text).

``open_regular``/``read_regular`` are the one way an input file is opened to be read whole
(TMF, PDB, Python source, PEM): a directory, device, pipe or socket, or a file larger than
its kind may be, is refused in one line before anything is read."""
from __future__ import annotations

import errno
import os
import stat

from .lazyre import LazyPattern

__all__ = ["TmfError", "not_regular_file", "open_regular", "read_regular", "read_at_most"]


def not_regular_file(then: str) -> str:
    """The one wording for an input path that names a device, pipe or socket (nothing is
    read from those: a pipe's open waits for a writer, a device may never end), ``then``
    what to give instead, or what was done."""
    return f"not a regular file (a device, pipe or socket): {then}"


class TmfError(ValueError):
    """A malformed TMF/TMC construct.

    ``str(err)`` is ``"path:line:col: message\\n<line>\\n   ^"``: the caret sits under
    ``column`` (1-based); a problem of the whole file (``line`` 0: unreadable, too large)
    is ``"path: message"``. ``expected`` names the production that was expected there, e.g.
    ``'argument line "<expr>, Item<Type> -- <N>"'``.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "<string>",
        line: int = 0,
        column: int = 1,
        line_text: str = "",
        expected: str = "",
    ) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = max(1, column)
        self.line_text = line_text
        self.expected = expected
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if not self.line:   # a whole-file problem: no line to name
            text = f"{self.path}: {self.message}"
        else:
            text = f"{self.path}:{self.line}:{self.column}: {self.message}"
        if self.expected and not _SAYS_EXPECTED.search(self.message):
            text += f" (expected {self.expected})"
        if self.line_text:
            shown, caret = excerpt(self.line_text.rstrip("\r\n"), self.column - 1)
            text += f"\n{shown}\n{' ' * caret}^"
        return text

    def fields(self) -> tuple[str, str, int, int, str, str]:
        """(message, path, line, column, line_text, expected): plain values, e.g. to send the
        problem to another process; ``from_fields`` makes it again."""
        return (self.message, self.path, self.line, self.column, self.line_text, self.expected)

    @classmethod
    def from_fields(cls, fields) -> "TmfError":
        return _rebuild(*fields)

    def __reduce__(self):  # keep pickling/copying working with keyword-only arguments
        return (_rebuild, self.fields())


def open_regular(path: "str | os.PathLike[str]", then: str) -> tuple[int, os.stat_result]:
    """(descriptor, its fstat) of ``path`` opened to read, if it is a regular file; else a
    TmfError naming ``path``: "is a directory: ``then``", or
    ``not_regular_file(then)`` for a device, pipe or socket. Opened without waiting (a pipe's
    open waits for a writer; O_NONBLOCK changes nothing for a regular file); the descriptor is
    closed on any error. Other OSErrors (missing, no permission) pass through."""
    name = os.fspath(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_BINARY", 0))
    except OSError as err:
        if err.errno != errno.ENXIO:    # ENXIO: a socket (or a device with nothing behind it)
            raise
        raise TmfError(not_regular_file(then), path=name) from None
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise TmfError(f"is a directory: {then}", path=name)
        if not stat.S_ISREG(st.st_mode):
            raise TmfError(not_regular_file(then), path=name)
    except BaseException:
        os.close(fd)
        raise
    return fd, st


def read_regular(path: "str | os.PathLike[str]", then: str, limit: int, what: str) -> bytes:
    """The bytes of ``path``, a regular file (``open_regular``, ``then`` what to give instead)
    of at most ``limit`` bytes; else a TmfError naming it: "file of N bytes, larger than the
    ``limit`` bytes ``what`` may have" (``what``: "a Python source"), said before any byte is
    read when the file tells its size. Other OSErrors (missing, no permission) pass through."""
    name = os.fspath(path)
    fd, st = open_regular(path, then)
    try:
        if st.st_size > limit:
            raise TmfError(f"file of {st.st_size} bytes, larger than the {limit} bytes {what} may have",
                           path=name)
        data = read_at_most(fd, limit + 1, st.st_size)
    finally:
        os.close(fd)
    if len(data) > limit:    # it grew while read
        raise TmfError(f"file larger than the {limit} bytes {what} may have", path=name)
    return data


def read_at_most(fd: int, limit: int, size: int) -> bytes:
    """At most ``limit`` bytes of an open file that told ``size``. Asked for ``limit`` bytes
    at once, Python allocates that much first (40 us a file for 256 MiB), so a file is asked
    for its size and one byte more, then on in 64 KiB steps to its end (a file that grew, or
    tells no size)."""
    want = min(size, limit - 1) + 1
    chunks, total = [], 0
    while total < limit:
        chunk = os.read(fd, want)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        want = min(limit - total, 1 << 16)
    return b"".join(chunks)


# "... (expected X)" unless the message already says what was expected ("unexpected" does not).
_SAYS_EXPECTED = LazyPattern(r"\bexpected\b")
SHOWN_LINE = 80  # longer lines are shown as a window around the column


def _printable(ch: str) -> str:
    if ch == "\t":
        return " "
    if ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def excerpt(line: str, offset: int) -> tuple[str, int]:
    """(shown text, caret offset) for the character at ``offset`` of ``line``: at most
    SHOWN_LINE characters of the line around it (marked "..." where cut), each unprintable
    character written as an escape."""
    start = max(0, min(offset - SHOWN_LINE // 2, len(line) - SHOWN_LINE))
    shown, caret, width = [], 0, 0
    for index in range(start, len(line)):
        if index == offset:
            caret = width
        piece = _printable(line[index])
        if width + len(piece) > SHOWN_LINE:
            break
        shown.append(piece)
        width += len(piece)
    else:
        index = len(line)
        if offset >= len(line):
            caret = width + max(0, offset - len(line))
    prefix = "..." if start else ""
    suffix = "..." if index < len(line) else ""
    return prefix + "".join(shown) + suffix, len(prefix) + caret


def _rebuild(message: str, path: str, line: int, column: int, line_text: str, expected: str) -> TmfError:
    return TmfError(message, path=path, line=line, column=column, line_text=line_text, expected=expected)
