"""Output files of the command-line tools: never an input, never half written, never more
readable than what they were made from.

- ``check_outputs(outputs, inputs)`` refuses (``OutputRefused``, a one-line message) an
  output that is the same file as an input (same device and inode after following links,
  so symbolic and hard links count) or as another output; call it before anything is
  opened for writing. Standard output counts as an output when it is a regular file
  (``cmd x.etl >> x.etl``). Two outputs written through descriptors the process was handed
  may be one file when each write goes where the last ended, as a program's stdout and
  stderr do: one open file (``-o /dev/stdout --summary /dev/stderr > log 2>&1``) or both
  appending (``>> log 2>> log``); ``> log 2> log``, or a file named twice, is refused.
- ``open_output(path, mode)`` writes to a temporary file in the target's directory, renamed
  over the target by ``commit()``; closing without committing (an error, Ctrl-C, SIGTERM)
  removes it, so the target keeps its old contents. Targets that are not regular files
  (/dev/null, a FIFO, a terminal) are written in place. A symbolic link to a file stays a
  link: its target is replaced.
- A path naming a descriptor the process was handed (/dev/stdout, /dev/stderr, /dev/fd/N,
  /proc/self/fd/N, directly or through symbolic links, or a file the shell opened for it,
  ``-o log >> log``) is written through
  that descriptor (``handed_descriptor``), as standard output is: appended where it was
  opened to append, a pipe or terminal as a stream, a file the shell truncated (``>``) from
  where the descriptor is. Renaming a new file over it would lose what the file held.
  The checks take such a path as the descriptor's file (``fstat``), with or without /proc.
- ``mode_from(inputs)`` is what the umask allows, readable by the group (others) only where
  every input is: a decode of a 0600 capture is 0600, of a 0600 and a 0644 capture 0600, of
  a read-only 0444 capture 0644 under umask 022 (only reading is taken from the inputs); a
  decode of a live session is private (PRIVATE_MODE).
"""
from __future__ import annotations

import errno
import io
import os
import re
import stat
import sys
import threading

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import IO, Iterable

__all__ = ["OutputRefused", "check_outputs", "mode_from", "open_output", "write_text", "fail",
           "current_umask", "replace_file", "new_private_file", "handed_descriptor", "descriptor_named",
           "same_file_as_stream", "PRIVATE_MODE"]

#: the mode of outputs made from sources that have no file (a live session): private
PRIVATE_MODE = 0o600
_STDOUT = "<standard output>"


class OutputRefused(Exception):
    """An output that would overwrite an input (or another output); ``str()`` is one line."""


def _looked_up(path: str) -> tuple[int | None, os.stat_result | None]:
    """The descriptor ``path`` names (``descriptor_named``) and what is there (None: nothing),
    looked up once for everything asked of the path. For a descriptor, what is there is its
    file, which stat() finds only through /proc (/dev/stdout is a link to /proc/self/fd/1),
    and /proc may not be mounted (a container, a chroot)."""
    named = descriptor_named(path)
    try:
        return named, os.stat(path) if named is None else os.fstat(named)
    except (OSError, ValueError):
        return named, None


def _identity(st: os.stat_result | None) -> tuple[int, int] | None:
    """The (device, inode) pair that tells one file from another; None for no file."""
    return None if st is None else (st.st_dev, st.st_ino)


def _regular_stream_identity(stream: IO | None) -> tuple[int, int] | None:
    try:
        st = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISREG(st.st_mode) else None


#: the names of the files of an input directory that are read as inputs (TMF directories)
_MEMBER_SUFFIXES = (".tmf", ".tmc", ".pdb")


def _member_identities(directory: str) -> Iterable[tuple[str, tuple[int, int] | None]]:
    """The files of an input directory that are read as inputs, each with its identity (None:
    nothing there), from one listing. A member that is not a symbolic link names no
    descriptor: its name ends in .tmf/.tmc/.pdb, so neither the path nor the path with its
    directory resolved is /dev/std*, /dev/fd/N or /proc/.../fd/N, and the file is no link to
    follow; what stat() finds is its file. A link may lead anywhere (/dev/stdout): looked up
    as a path given by name is."""
    try:
        with os.scandir(directory) as entries:
            members = [entry for entry in entries if entry.name.lower().endswith(_MEMBER_SUFFIXES)]
    except OSError:
        return
    for entry in members:
        try:
            st = None if entry.is_symlink() else entry.stat()
        except OSError:
            continue
        yield entry.path, _identity(_looked_up(entry.path)[1] if st is None else st)


def _input_identities(inputs: Iterable[str | os.PathLike],
                      input_dirs: Iterable[str | os.PathLike]) -> Iterable[tuple[str, tuple[int, int] | None]]:
    """Each file read (its path, its identity), the inputs given by name first."""
    for path in inputs:
        yield os.fspath(path), _identity(_looked_up(os.fspath(path))[1])
    for directory in input_dirs:
        yield from _member_identities(os.fspath(directory))


def check_outputs(outputs: Iterable[str | os.PathLike | None], inputs: Iterable[str | os.PathLike],
                  *, input_dirs: Iterable[str | os.PathLike] = (),
                  stdout: IO | None = None) -> None:
    """Raise OutputRefused if an output is an input or two outputs are one file.

    ``outputs``: paths to be written (None and "-" are skipped); ``inputs``: files read;
    ``input_dirs``: directories whose TMF/TMC/PDB files are read; ``stdout``: the stream
    written when no output path is given (checked if it is a regular file)."""
    targets = [os.fspath(p) for p in outputs if p is not None and os.fspath(p) != "-"]
    looked = [(path, *_looked_up(path)) for path in targets]
    stdout_ident = _regular_stream_identity(stdout)
    # only an input that is one of these files can be refused: none there (new outputs, stdout
    # a pipe), none of the inputs is looked at
    wanted = {_identity(st) for _path, _named, st in looked} | {stdout_ident}
    wanted.discard(None)
    read: dict[tuple[int, int], str] = {}
    if wanted:
        for path, ident in _input_identities(inputs, input_dirs):
            if ident in wanted:
                read.setdefault(ident, path)
    written: list[tuple[object, str, int | None]] = []   # (file, path, descriptor written through)
    for path, named, st in looked:
        ident = _identity(st)
        if ident in read:
            raise OutputRefused(f"refusing to write {path}: it is the same file as the input "
                                f"{read[ident]}; nothing was written")
        key = ident if ident is not None else os.path.realpath(path)
        fd = _handed(named, st)
        for other_key, other, other_fd in written:
            if other_key == key and not _is_special(st) and not _in_turn(fd, other_fd):
                raise OutputRefused(f"refusing to write {path}: it is the same file as the output "
                                    f"{other}; nothing was written")
        written.append((key, path, fd))
    ident = stdout_ident
    if ident in read:
        raise OutputRefused(f"refusing to write to {_STDOUT}: it is the input {read[ident]}; "
                            f"nothing was written")
    for key, path, fd in written:
        if ident is not None and key == ident and not _in_turn(fd, stdout.fileno()):
            raise OutputRefused(f"refusing to write {path}: {_STDOUT} is the same file; "
                                f"nothing was written")


def _in_turn(a: int | None, b: int | None) -> bool:
    """Whether two outputs on one file, written through descriptors ``a`` and ``b`` the
    process was handed (None: a file it opens itself), each go where the other ended, as a
    program's standard output and error do (``> log 2>&1``, ``>> log 2>> log``): one open
    file (one offset), or both appending. Two opens of the file each write from their own
    offset (``> log 2> log``) and a file made anew replaces the other's: one loses the other."""
    if a is None or b is None:
        return False
    if a == b:
        return True
    try:
        import fcntl
    except ImportError:                    # what the descriptors share is not known
        return False
    try:
        flags_a, flags_b = fcntl.fcntl(a, fcntl.F_GETFL), fcntl.fcntl(b, fcntl.F_GETFL)
        if flags_a & flags_b & os.O_APPEND:
            return True
        if flags_a != flags_b:             # the flags are the open file's: two opens
            return False
        # one open file has one set of flags: change one descriptor's, see the other's change
        # (O_NONBLOCK: no effect on the regular files compared here; put back at once)
        try:                               # (an exception as the flip returns: put back too)
            fcntl.fcntl(a, fcntl.F_SETFL, flags_a ^ os.O_NONBLOCK)
            return fcntl.fcntl(b, fcntl.F_GETFL) != flags_b
        finally:
            fcntl.fcntl(a, fcntl.F_SETFL, flags_a)
    except OSError:
        return False


def _is_special(st: os.stat_result | None) -> bool:
    """An existing target that is not a regular file (/dev/null, a FIFO, a terminal)."""
    return st is not None and not stat.S_ISREG(st.st_mode)


#: paths that name one of this process's descriptors whatever the file behind it
_STANDARD_NAMES = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}
_DESCRIPTOR_DIRS = ("/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/")
#: /proc/<pid>/fd/N and /proc/<pid>/task/<tid>/fd/N (/proc/thread-self resolved): this
#: process's descriptor N when <pid> is this process
_PROC_FD = re.compile(r"/proc/([0-9]+)(?:/task/[0-9]+)?/fd/([0-9]+)", re.ASCII)


#: symbolic links followed to find a descriptor's name, as many as the kernel follows
_MAX_LINKS = 40


def descriptor_named(path: str | os.PathLike) -> int | None:
    """The descriptor ``path`` names, whatever file is behind it: 0, 1, 2 for /dev/stdin,
    /dev/stdout, /dev/stderr, N for /dev/fd/N and /proc/self/fd/N (/proc/<this process>/fd/N),
    named directly or through symbolic links (``out -> /dev/stdout``, ``d/fd/2`` with
    ``d -> /dev``); None for any other path. Another process opening the path (a session's
    host) opens its own descriptor N, not this one."""
    try:
        # not abspath: taking '..' away from the text finds /dev/stdout in lnk/../dev/stdout,
        # where the kernel takes '..' of where the link leads (below)
        name = os.path.join(os.getcwd(), os.fspath(path))
    except (OSError, ValueError):
        return None
    for _ in range(_MAX_LINKS):
        fd = _descriptor_of_name(name)
        if fd is not None:
            return fd
        # the links one at a time: resolved whole, /dev/stdout is "pipe:[N]" or the file. The
        # directory is resolved first, as the kernel does, so that a relative target is read
        # from where the link really is (/dev/fd is /proc/<this process>/fd then)
        try:
            head, tail = os.path.split(name)
            name = os.path.realpath(name) if tail in ("", ".", "..") else \
                os.path.join(os.path.realpath(head), tail)
            fd = _descriptor_of_name(name)
            if fd is not None:
                return fd
            target = os.readlink(name)
        except (OSError, ValueError):
            return None
        name = os.path.join(os.path.dirname(name), target)
    return None


def _descriptor_of_name(name: str) -> int | None:
    if name in _STANDARD_NAMES:
        return _STANDARD_NAMES[name]
    match = _PROC_FD.fullmatch(name)
    if match and int(match[1]) == os.getpid():    # /proc/self is /proc/<pid> resolved
        return int(match[2])
    for directory in _DESCRIPTOR_DIRS:
        number = name[len(directory):] if name.startswith(directory) else ""
        if number.isdigit() and number.isascii():
            return int(number)
    return None


def handed_descriptor(path: str | os.PathLike) -> int | None:
    """The descriptor an output ``path`` is to be written through, or None for a file to be
    made: N for /dev/fd/N, /proc/self/fd/N (/proc/<this process>/fd/N) and 0, 1, 2 for
    /dev/stdin, /dev/stdout, /dev/stderr, whether it is open or not (``open_output`` says);
    else the lowest descriptor handed to the process (inheritable: the files it opens itself
    are closed on exec) that is open for writing on the file ``path`` names (``-o log >> log``)."""
    return _handed(*_looked_up(os.fspath(path)))


def _handed(named: int | None, st: os.stat_result | None) -> int | None:
    """``handed_descriptor`` of a path looked up (``_looked_up``)."""
    if named is not None or st is None:    # no file yet: no descriptor can be open on it
        return named
    for fd in _open_descriptors():
        try:
            same = os.path.samestat(os.fstat(fd), st) and os.get_inheritable(fd)
        except OSError:
            continue
        if same and _writable(fd):
            return fd
    return None


def same_file_as_stream(path: str | os.PathLike, stream: IO | None) -> bool:
    """Whether what is written to ``path`` goes where ``stream`` goes: the same file, pipe
    or terminal (``-o /dev/stdout``, ``-o log > log``, ``-o /dev/stderr 2>&1``)."""
    try:
        where = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return False
    target = _looked_up(os.fspath(path))[1]
    return target is not None and os.path.samestat(where, target)


def _open_descriptors() -> list[int]:
    for listing in ("/proc/self/fd", "/dev/fd"):
        try:
            return sorted(int(entry) for entry in os.listdir(listing) if entry.isdigit())
        except OSError:
            continue
    return [0, 1, 2]


def _writable(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:                    # no fcntl: what the descriptor allows is not known
        return True
    return fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE != os.O_RDONLY


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def mode_from(inputs: Iterable[str | os.PathLike], default: int | None = None) -> int:
    """The mode of an output made from the input files: what the umask allows, without the
    group's (others') bits where an input is not readable by its group (by others). Only
    reading is taken from the inputs: a read-only input (0444) makes an output its user can
    write, as the shell's ``>`` would. With no input file ``default`` (PRIVATE_MODE for what
    comes from a live session), else what the umask allows."""
    readable = None
    for path in inputs:
        try:
            bits = os.stat(path).st_mode
        except OSError:
            continue
        readable = bits if readable is None else readable & bits
    if readable is None and default is not None:
        return default
    mode = 0o666 & ~current_umask()
    if readable is not None:
        if not readable & stat.S_IRGRP:
            mode &= ~0o060
        if not readable & stat.S_IROTH:
            mode &= ~0o006
    return mode


class _TermAsExit:
    """While an output is open in the main thread, SIGTERM and SIGHUP leave through the
    normal error path (the temporary file is removed) instead of killing the process. With
    several open at once (fmt opens its summary's file while its output is still open), the
    first one in puts the handlers and the last one out puts back what was there."""

    _open = 0                              # outputs open in the main thread
    _saved: dict[int, object] = {}         # the handlers to put back once none is

    def __init__(self) -> None:
        self.entered = False

    def __enter__(self) -> "_TermAsExit":
        if not self.entered and threading.current_thread() is threading.main_thread():
            if _TermAsExit._open == 0:
                signal = _signal_module()
                for name in ("SIGTERM", "SIGHUP"):
                    sig = getattr(signal, name, None)
                    if sig is not None and signal.getsignal(sig) == signal.SIG_DFL:
                        _TermAsExit._saved[sig] = signal.signal(sig, self._raise)
            _TermAsExit._open += 1
            self.entered = True
        return self

    @staticmethod
    def _raise(signum, frame) -> None:
        raise SystemExit(128 + signum)

    def __exit__(self, *exc) -> None:
        if self.entered:
            self.entered = False
            _TermAsExit._open -= 1
            if _TermAsExit._open == 0 and _TermAsExit._saved:
                signal = _signal_module()
                for sig, handler in _TermAsExit._saved.items():
                    signal.signal(sig, handler)
                _TermAsExit._saved.clear()


def term_as_exit(handler: object) -> bool:
    """True if ``handler`` is the one an open output puts on SIGTERM (``_TermAsExit``)."""
    return handler == _TermAsExit._raise


def _signal_module():
    """The signal functions: the C module under ``signal`` (the same handlers, as plain
    ints), whose import costs nothing; ``signal`` itself builds its enums (2.9 M
    instructions, on every run that writes a file)."""
    try:
        import _signal
    except ImportError:
        import signal as _signal
    return _signal


def _exchange_names(a: str, b: str) -> bool:
    """Swap the names ``a`` and ``b`` atomically (Linux renameat2 RENAME_EXCHANGE); False
    where the system or the file system cannot."""
    from wpptrace._core import lib

    return lib.fileswap_exchange(os.fsencode(a), os.fsencode(b)) == 0


#: an old file at least this large is removed by a thread (``replace_file(background=True)``);
#: a smaller one costs less to remove than starting the thread does
BACKGROUND_REMOVE_BYTES = 4 << 20


def replace_file(source: str, target: str, *, background: bool = False) -> threading.Thread | None:
    """``os.replace(source, target)``, by swapping the two names when ``target`` is a regular
    file, then removing the old file. Replacing a file by rename makes ext4 allocate the new
    file's blocks and start writing them inside rename(), its guard for programs that do not
    sync (80 ms for a 150 MB decoded output, at the end of every run over an old output); a
    swap does not. Readers see the old file or the whole new one either way.

    ``background``: the old file (already out of the target's name) is removed by a thread,
    returned for joining, when it has ``BACKGROUND_REMOVE_BYTES`` or more; removing a large
    file just written, its pages still cached, costs 20 ms for 150 MB, which the caller can
    spend on other work."""
    try:
        swap = stat.S_ISREG(os.lstat(target).st_mode) and _exchange_names(source, target)
    except OSError:                        # no target yet: a plain rename costs nothing more
        swap = False
    if not swap:
        os.replace(source, target)
        return None
    if background:
        try:
            st = os.lstat(source)
            large = stat.S_ISREG(st.st_mode) and st.st_size >= BACKGROUND_REMOVE_BYTES
        except OSError:
            large = False
        if large:
            remover = threading.Thread(target=_remove_quietly, args=(source,),
                                       name="wpptrace-old-output", daemon=True)
            remover.start()
            return remover
    try:
        os.unlink(source)                  # the old file, now under the temporary name
    except IsADirectoryError:              # the target became a directory meanwhile: as before
        _exchange_names(source, target)
        os.replace(source, target)
    except OSError:
        pass
    return None


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


class AtomicOutput:
    """A text file whose contents reach ``path`` only on ``commit()`` (see the module doc).
    Writes go to ``stream`` (also reachable as this object's own write/flush/...).
    ``descriptor``: the descriptor the process was handed that it is written through (a
    copy of it is written and closed), None for a file of its own."""

    def __init__(self, path: str, mode: int, *, encoding: str = "utf-8", newline: str | None = "\n",
                 buffering: int = 1 << 16, binary_prefix: bytes = b"") -> None:
        self.path = path
        self._temp: str | None = None
        self._target = os.path.realpath(path)
        self._committed = False
        self._remover: threading.Thread | None = None
        named, st = _looked_up(path)
        self.descriptor = _handed(named, st)
        if self.descriptor is not None:    # written where the descriptor is, as a stream
            try:
                fd = os.dup(self.descriptor)
            except OSError as exc:
                if exc.errno != errno.EBADF:
                    raise
                raise OSError(errno.EBADF, f"no descriptor {self.descriptor} is open", path) from None
            try:
                if not _writable(fd):
                    raise OSError(errno.EBADF, "the descriptor is open for reading only", path)
                raw = os.fdopen(fd, "wb", buffering=buffering)
            except BaseException:
                os.close(fd)
                raise
            self._signals = _TermAsExit()  # nothing to remove on the way out
        elif _is_special(st):
            raw = open(self._target, "wb", buffering=buffering)
        else:
            try:
                fd, self._temp = new_private_file(os.path.dirname(self._target) or ".",
                                                  f".{os.path.basename(self._target)}.", ".partial")
            except OSError as exc:  # said of the file asked for, not of its temporary name
                exc.filename = self._target
                raise
            try:
                os.fchmod(fd, mode)
                raw = os.fdopen(fd, "wb", buffering=buffering)
            except BaseException:
                os.close(fd)
                self._discard()
                raise
        if self.descriptor is None:
            self._signals = _TermAsExit().__enter__()
        if binary_prefix:
            raw.write(binary_prefix)
        self.stream = io.TextIOWrapper(raw, encoding=encoding, newline=newline)

    def __getattr__(self, name: str):
        return getattr(self.__dict__["stream"], name)

    def write(self, text: str) -> int:
        return self.stream.write(text)

    def commit(self, *, wait: bool = True) -> None:
        """Flush and rename into place (once); the file is closed afterwards. Not synced to
        disk (as tracefmt, sort -o and compressors do not): a decoded output can be made again
        from its inputs, and syncing a large one costs as much as a third of decoding it; the
        rename (``replace_file``) still means readers see the old file or the whole new one.
        ``wait=False``: the old file is removed while the caller goes on; ``settle`` waits."""
        if self._committed or self.stream.closed:
            return
        self.stream.flush()
        self.stream.close()
        if self._temp is not None:
            self._remover = replace_file(self._temp, self._target, background=not wait)
            self._temp = None
        self._committed = True
        self._signals.__exit__()

    def settle(self) -> None:
        """Wait until the old file a ``commit(wait=False)`` replaced is removed."""
        if self._remover is not None:
            self._remover.join()
            self._remover = None

    def close(self) -> None:
        """Close; without a commit the temporary file is removed and the target untouched."""
        try:
            self.stream.close()
        except OSError:
            pass
        finally:
            self._discard()
            self._signals.__exit__()

    def _discard(self) -> None:
        if self._temp is not None:
            try:
                os.unlink(self._temp)
            except OSError:
                pass
            self._temp = None

    def __enter__(self) -> "AtomicOutput":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        self.close()

    def __del__(self) -> None:  # never leave the temporary file behind
        if "stream" in self.__dict__:
            self.close()
        else:
            self._discard()


def new_private_file(directory: str, prefix: str, suffix: str) -> tuple[int, str]:
    """A new file only its owner can read, with a random name in ``directory``: (descriptor,
    path), as ``tempfile.mkstemp`` makes it. Importing tempfile (shutil, random, bz2, lzma)
    costs a run about 6 ms, more than formatting a small file."""
    flags = (os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    for _attempt in range(100):
        path = os.path.join(directory, f"{prefix}{os.urandom(6).hex()}{suffix}")
        try:
            return os.open(path, flags, 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(f"no free name for a new file in {directory}")


def open_output(path: str | os.PathLike, mode: int, **kwargs) -> AtomicOutput:
    """A text output for ``path``: ``commit()`` (or leaving a ``with`` block normally) puts
    it in place; anything else leaves the old file as it was."""
    return AtomicOutput(os.fspath(path), mode, **kwargs)


def write_text(path: str | os.PathLike, text: str, mode: int, *, append: bool = False) -> None:
    """Write (or, with ``append``, extend) a whole text file atomically; through a descriptor
    the process was handed, ``text`` goes where the descriptor is (``append`` or not)."""
    old = b""
    if append and handed_descriptor(path) is None:
        try:
            with open(path, "rb") as fh:
                old = fh.read()
            mode &= os.stat(path).st_mode & 0o777
        except FileNotFoundError:
            pass
    with open_output(path, mode, binary_prefix=old) as fh:
        fh.write(text)


def fail(prog: str, refused: OutputRefused, err: IO[str] | None = None) -> int:
    """Print ``prog: error: <refusal>`` and return the exit status 1."""
    print(f"{prog}: error: {refused}", file=sys.stderr if err is None else err)
    return 1
