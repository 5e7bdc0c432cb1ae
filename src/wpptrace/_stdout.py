"""A console command's standard output: a write to it that fails is one line naming it.

Started with descriptor 1 closed (``cmd >&-``), Python's ``sys.stdout`` is None and every
print() to it is lost without a word; a full disk or a failing device behind it raises an
OSError no different from any other file's. ``guarded_stdout`` gives the command a standard
output whose failed writes raise :class:`StandardOutputFailed`, which ``str()`` says as
"standard output: cannot write: <reason> (<Win32 name>)": the commands tell it and exit 1.
A reader that left (``| head``) stays a BrokenPipeError: commands end quietly on it."""
from __future__ import annotations

import contextlib
import errno
import io
import os
import sys

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Iterator

__all__ = ["StandardOutputFailed", "guarded_stdout"]


class StandardOutputFailed(OSError):
    """A write to standard output failed; ``str()`` is what to tell, without the command."""

    def __str__(self) -> str:
        if self.errno == errno.EBADF:
            return "standard output: cannot write: it is closed (ERROR_INVALID_HANDLE)"
        from ._cliutil import reason
        from .winerror import as_win32

        return f"standard output: cannot write: {reason(as_win32(OSError(self.errno, self.strerror), writing=True))}"


def _failed(exc: OSError) -> OSError:
    """``exc`` of a write to standard output as what is raised: a BrokenPipeError as it is."""
    return exc if isinstance(exc, BrokenPipeError) else StandardOutputFailed(exc.errno, exc.strerror)


class _Closed(io.TextIOBase):
    """``sys.stdout`` for a process started without descriptor 1: nothing written is lost
    silently. Flushing what was never written succeeds (the interpreter's exit flushes)."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise StandardOutputFailed(errno.EBADF, os.strerror(errno.EBADF))

    def flush(self) -> None:
        pass


class _Descriptor(io.RawIOBase):
    """Descriptor 1 under a buffered standard output, its first failed write raised as
    StandardOutputFailed and what is written after it dropped (told once: the buffer's
    flush at the end, or when collected, says nothing more). The buffer writes in blocks:
    a call per block, not per line."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._failed = False

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, data) -> int:
        if self._failed:
            return len(data)
        try:
            return os.write(self._fd, data)
        except OSError as exc:
            self._failed = True
            raise _failed(exc) from None

    def close(self) -> None:    # descriptor 1 stays open: it is the process's, not this object's
        if not self.closed:
            super().close()


@contextlib.contextmanager
def guarded_stdout(wrap: bool = True) -> Iterator[None]:
    """Inside: ``sys.stdout`` raises StandardOutputFailed on a failed write (descriptor 1
    closed; with ``wrap``, also a write the disk or device behind it refused, its encoding
    and buffering kept), flushed at the end. A ``sys.stdout`` that is not the process's own
    descriptor 1 (a test's capture, a caller's stream) is left as it is. After: the previous
    ``sys.stdout`` again."""
    previous = sys.stdout
    if previous is None:
        sys.stdout = _Closed()
    elif wrap and type(previous) is io.TextIOWrapper and _fileno(previous) == 1:
        previous.flush()
        sys.stdout = io.TextIOWrapper(io.BufferedWriter(_Descriptor(1)), encoding=previous.encoding,
                                      errors=previous.errors, line_buffering=previous.line_buffering,
                                      write_through=previous.write_through)
    if sys.stdout is previous:
        yield
        return
    try:
        yield
        sys.stdout.flush()
    finally:
        ours, sys.stdout = sys.stdout, previous
        ours.close()        # (after a failed write: what it still holds is dropped)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (OSError, ValueError):
        return None
