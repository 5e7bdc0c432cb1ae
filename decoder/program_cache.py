"""Compiled message records kept between ``wpptrace fmt`` runs, per user.

Compiling a message (its TMF entry read, its formatter and C program made) is most of what a
run pays before its first line, and every run over the same TMF files compiles the same
messages again. A ``ProgramCache`` keeps what a run compiled, as the records ``fmt -j``
processes share (``program_share.pack``), in one file per key: the key covers everything a
record depends on, so a changed input makes a new key, never a stale record:

* the TMF inputs the loader listed (path, device, inode, size, modification and change times
  of every TMF, TMC and PDB file), in the order they take precedence;
* the printer's mode (form, prefix or not, CSV quoting), the prefix template and UTC;
* this wpptrace's code (the version, and size and modification time of every file of the
  compiler and of the C renderer).

The cache lives in ``WPPTRACE_CACHE_DIR``, else ``$XDG_CACHE_HOME/wpptrace/programs``, else
``~/.cache/wpptrace/programs``; ``WPPTRACE_NO_CACHE=1`` (or ``fmt --no-cache``) turns it off.
The directory must be this user's and private (0700, not a symbolic link), each file too
(0600); anything else, and any file that is not whole (its checksum), is not read. A record
is data for the C renderer, never code: the renderer checks every program it is given, so a
damaged one is compiled again and cannot make a run crash or read out of bounds. The checksum
finds damage, not intent: a record its owner rewrote into another valid program prints what
that program prints (the file is the user's own, as their TMF files are). A run saves only when it compiled something and its
TMF files reported no problem, so a later run that takes its messages from here (and so never
reads those TMF files) reports what a run without the cache reports. Nothing here raises into
a run: a cache that cannot be read or written is simply not used.

File: ``MAGIC``, the key (32 bytes), the CRC-32 (zlib's) of the rest and the number of records N;
then N keys (GUID bytes_le, number), N + 1 offsets from the file's start (record k runs from
offset k to offset k + 1; the last is the file's end), and the records. The keys and offsets
are tables so that reading the file takes a few C calls, not Python steps per record.
"""
from __future__ import annotations

import gc
import os
import stat
import struct
from operator import le

from wpptrace._cliutil import program_cache_off

from ._hazmat import crc32

__all__ = ["ProgramCache", "cache_directory"]

MAGIC = b"WPPTPRG2"
_HEAD = struct.Struct("<8s32sII")       # magic, key, crc32 of the rest, records
_KEY = struct.Struct("<16sI")           # GUID bytes_le, number
MAX_BYTES = 64 << 20                    # a cache file larger than this is not read
MAX_RECORDS = 1 << 20
KEEP_FILES = 16                         # the newest files kept in the directory
_SUFFIX = ".prg"


def cache_directory() -> str | None:
    """Where the cache lives, or None when it is turned off."""
    if program_cache_off():
        return None
    explicit = os.environ.get("WPPTRACE_CACHE_DIR")
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "wpptrace", "programs")


def _private_directory(path: str) -> bool:
    """Make ``path`` (0700) if needed; whether it is a directory of this user's that nobody
    else can write or read (not a symbolic link)."""
    try:
        try:        # there already, as on every run but the first: one system call
            st = os.lstat(path)
        except FileNotFoundError:
            os.makedirs(path, mode=0o700, exist_ok=True)
            st = os.lstat(path)
    except (OSError, ValueError):
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


_LENGTH = struct.Struct("<Q")
_STAT = struct.Struct("<B5Q")           # found, device, inode, size, modification and change times
_MISSING = _STAT.pack(0, 0, 0, 0, 0, 0)
_MASK = (1 << 64) - 1                   # times before 1970 are negative


def _identities(paths: list[str]) -> bytes:
    """``paths`` and their files' identities (device, inode, size, modification and change
    times in ns), as a key hashes them: packed (printing every stat result with ``repr``
    cost more than making it)."""
    packed = []
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            packed.append(_MISSING)
            continue
        packed.append(_STAT.pack(1, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns & _MASK,
                                 st.st_ctime_ns & _MASK))
    return b"".join([_LENGTH.pack(len(paths)), "\0".join(paths).encode("utf-8", "surrogatepass"),
                     b"\0", *packed])


def _code_identity() -> tuple[list, list[str]]:
    """What of this wpptrace makes a record: the record's and the program's formats by their
    own marks (a format changed in a file of the same size and time still makes another
    key), and the compiler's and renderer's files (their identities are the key's)."""
    import wpptrace
    from wpptrace import _core, decoder, tmf

    from .program_share import RECORD

    files = [_core.__file__]
    for package in (tmf, decoder):
        directory = os.path.dirname(package.__file__)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            names = []
        files += [os.path.join(directory, name) for name in names if name.endswith(".py")]
    formats = ("formats", MAGIC, RECORD.format, _core.lib.WPPR_MAGIC)
    return [("wpptrace", wpptrace.__version__), formats], files


def _blake2b():
    try:   # the module behind hashlib.blake2b: hashlib itself imports OpenSSL (3 ms a run)
        from _blake2 import blake2b
    except ImportError:
        from hashlib import blake2b
    return blake2b(digest_size=32)


def cache_key(inputs: list[str], mode: bytes, settings: tuple) -> bytes:
    """The key of a run's records: its TMF inputs, printer ``mode`` (``ProgramShare.mode``),
    ``settings`` (prefix template, UTC) and this code."""
    marks, files = _code_identity()
    digest = _blake2b()
    for part in (repr([mode, settings]).encode("utf-8", "surrogatepass"), _identities(inputs),
                 repr(marks).encode("utf-8", "surrogatepass"), _identities(files)):
        digest.update(_LENGTH.pack(len(part)))
        digest.update(part)
    return digest.digest()


class ProgramCache:
    """The records of one key: those read from its file (``get``) and those this run made
    (``add``), written back by ``save``."""

    def __init__(self, directory: str, key: bytes) -> None:
        self.directory, self.key = directory, key
        self.path = os.path.join(directory, key.hex() + _SUFFIX)
        self._records: dict[tuple[bytes, int], bytes] = {}
        self._added: dict[tuple[bytes, int], bytes] = {}

    @classmethod
    def open(cls, inputs: list[str], mode: bytes | None, settings: tuple) -> "ProgramCache | None":
        """The cache of a run (its file read if there is a good one); None when the cache is
        turned off, the printer mode is one records are not made for, or there is no private
        directory to keep it in."""
        directory = cache_directory()
        if directory is None or mode is None:
            return None
        try:
            key = cache_key(inputs, mode, settings)
        except (OSError, ValueError, ImportError):
            return None
        if not _private_directory(directory):
            return None
        cache = cls(directory, key)
        cache._records = _read(cache.path, key)
        return cache

    def __contains__(self, key: tuple[bytes, int]) -> bool:
        """Whether a record of ``key`` (GUID bytes_le, number) was read or added."""
        return key in self._records or key in self._added

    def get(self, guid_le: bytes, number: int) -> bytes | None:
        return self._records.get((guid_le, number))

    @property
    def records(self) -> dict[tuple[bytes, int], bytes]:
        """The records read, by (GUID bytes_le, number): what ``get`` looks in, for a caller
        that looks up thousands (read it, do not change it)."""
        return self._records

    def add(self, guid_le: bytes, number: int, record: bytes) -> None:
        """Keep a record this run made (in place of one read that did not serve)."""
        key = (guid_le, number)
        if self._records.get(key) != record:
            self._added[key] = record

    def save(self) -> bool:
        """Write the records (read and added) if any were added; whether it was written."""
        if not self._added:
            return False
        records = dict(self._records)
        records.update(self._added)
        if len(records) > MAX_RECORDS:
            return False
        data = _file_bytes(self.key, records)
        if len(data) > MAX_BYTES:
            return False
        temporary = os.path.join(self.directory, f".{self.key.hex()}.{os.getpid()}.tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                         | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError:
            return False
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(temporary, self.path)    # whole or not at all, for readers at any moment
        except OSError:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            return False
        self._records, self._added = records, {}
        _prune(self.directory, self.path)
        return True


def _file_bytes(key: bytes, records: dict[tuple[bytes, int], bytes]) -> bytes:
    """A cache file's bytes (as ``_read`` reads them)."""
    count = len(records)
    at = _HEAD.size + count * _KEY.size + (count + 1) * 4
    offsets = [at]
    for record in records.values():
        at += len(record)
        offsets.append(at)
    body = b"".join([b"".join([_KEY.pack(*k) for k in records]), struct.pack(f"<{count + 1}I", *offsets)]
                    + list(records.values()))
    return _HEAD.pack(MAGIC, key, crc32(body), count) + body


def _read(path: str, key: bytes) -> dict[tuple[bytes, int], bytes]:
    """The records of a cache file; none when it is missing, not this user's private
    regular file, or not whole."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return {}
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o077
                or not _HEAD.size <= st.st_size <= MAX_BYTES):
            return {}
        # one read of the size fstat gave, and one more byte: a file that grew since is seen
        # (and refused) as one that is not whole; a short read is read on to its end
        data = os.read(fd, st.st_size + 1)
        while len(data) < st.st_size:
            more = os.read(fd, MAX_BYTES + 1 - len(data))
            if not more:
                break
            data += more
    except OSError:
        return {}
    finally:
        os.close(fd)
    return _parse(data, key)


def _parse(data: bytes, key: bytes) -> dict[tuple[bytes, int], bytes]:
    """The records of a cache file's bytes; none unless it is whole (its magic, key and
    checksum, and its tables consistent with its size)."""
    if len(data) < _HEAD.size:
        return {}
    magic, found, crc, count = _HEAD.unpack_from(data)
    if magic != MAGIC or found != key or count > MAX_RECORDS:
        return {}
    keys_at = _HEAD.size
    offsets_at = keys_at + count * _KEY.size
    start = offsets_at + (count + 1) * 4
    if start > len(data) or crc32(memoryview(data)[_HEAD.size:]) != crc:
        return {}
    offsets = struct.unpack_from(f"<{count + 1}I", data, offsets_at)
    ends = offsets[1:]
    if offsets[0] != start or offsets[-1] != len(data) or not all(map(le, offsets, ends)):
        return {}
    # in C, however many records: the keys come as (bytes, int) tuples, the records as slices
    keys = _KEY.iter_unpack(memoryview(data)[keys_at:offsets_at])
    collecting = gc.isenabled()
    gc.disable()        # no collection passes over the thousands of key tuples as they come
    try:
        return dict(zip(keys, map(data.__getitem__, map(slice, offsets, ends))))
    finally:
        if collecting:
            gc.enable()


def _prune(directory: str, keep: str) -> None:
    """Remove all but the newest ``KEEP_FILES`` cache files (other keys: old TMF sets), and
    what a run that ended while writing left (a temporary file an hour old)."""
    import time

    try:
        entries = []
        for entry in os.scandir(directory):
            if not entry.is_file(follow_symlinks=False):
                continue
            if entry.name.endswith(_SUFFIX):
                entries.append(entry)
            elif (entry.name.startswith(".") and entry.name.endswith(".tmp")
                  and entry.stat(follow_symlinks=False).st_mtime < time.time() - 3600):
                os.unlink(entry.path)
        if len(entries) <= KEEP_FILES:
            return
        entries.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime_ns, reverse=True)
        for entry in entries[KEEP_FILES:]:
            if entry.path != keep:
                os.unlink(entry.path)
    except OSError:
        pass
