"""MSF 7.0 ("big MSF") container reader: the page-based file system that holds a PDB's streams.

Layout (all little-endian; see docs/pdb-and-compression.md A2-A3):
superblock at offset 0 (magic, page size, page count, directory size, directory page map),
a stream directory spread over pages (``u32 count; u32 sizes[count]; u32 pages[...]``), and
streams that are lists of pages. Every size and page number is checked against the file
before use, so a corrupt or hostile file gives a :class:`PdbError` naming the file offset
and what was expected. What is kept of the directory, and what reading it allocates at most,
is three times its size (its bytes, and each stream's size and page-list start as two 32-bit
numbers: a directory of a million empty streams costs 12 MB, not a Python object each), plus
its page numbers; a stream's pages are copied when it is read, and all streams together fit
in the file's pages.
"""
from __future__ import annotations

import mmap
import os
import struct
import sys
from array import array
from dataclasses import dataclass
from typing import BinaryIO, Union

from ..errors import TmfError, open_regular

__all__ = ["PdbError", "MsfFile", "MsfStream", "MSF7_MAGIC", "MSF2_MAGIC", "MSFZ_MAGIC"]

MSF7_MAGIC = b"Microsoft C/C++ MSF 7.00\r\n\x1aDS\x00\x00\x00"
MSF2_MAGIC = b"Microsoft C/C++ program database 2.00\r\n\x1aJG\x00\x00"
MSFZ_MAGIC = b"Microsoft MSFZ Container\r\n\x1aALD\x00\x00"

#: page sizes we accept (powers of two); real linkers write 4096, lld /pdbpagesize up to 8192+
PAGE_SIZES = frozenset(1 << n for n in range(9, 17))  # 512 .. 65536
NIL_STREAM_SIZE = 0xFFFFFFFF
_SUPERBLOCK = struct.Struct("<32sIIIII")  # magic, page size, FPM page, page count, dir bytes, unused
_SUPERBLOCK_MAP_OFFSET = 0x34


class PdbError(TmfError):
    """A PDB/MSF file that cannot be read: ``path``, file ``offset`` (or None), what was ``expected``.

    A :class:`~wpptrace.tmf.errors.TmfError` (so TMF loaders report it like any bad TMF input),
    positioned by byte offset instead of line:column: ``str(err)`` is
    ``"path: offset 0x1234: message (expected ...)"``.
    """

    def __init__(self, message: str, *, path: str = "<bytes>", offset: int | None = None,
                 expected: str = "") -> None:
        self.offset = offset
        super().__init__(message, path=path, line=0, column=1, line_text="", expected=expected)

    def __str__(self) -> str:
        where = f"{self.path}: " if self.offset is None else f"{self.path}: offset {self.offset:#x}: "
        text = where + self.message
        if self.expected and "expected" not in self.message:
            text += f" (expected {self.expected})"
        return text

    def __reduce__(self):  # keyword-only constructor: keep pickling/copying working
        return (_rebuild, (self.message, self.path, self.offset, self.expected))


def _rebuild(message: str, path: str, offset: int | None, expected: str) -> PdbError:
    return PdbError(message, path=path, offset=offset, expected=expected)


@dataclass(frozen=True)
class MsfStream:
    """One stream's bytes plus the map back to file offsets (for precise error messages)."""

    index: int
    data: bytes
    pages: tuple[int, ...]
    page_size: int

    def file_offset(self, stream_offset: int) -> int | None:
        """File offset of byte ``stream_offset`` of this stream (None if outside it)."""
        if stream_offset < 0 or not self.pages:
            return None
        page = stream_offset // self.page_size
        if page >= len(self.pages):
            page, within = len(self.pages) - 1, self.page_size  # just past the end
        else:
            within = stream_offset % self.page_size
        return self.pages[page] * self.page_size + within


Source = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, BinaryIO]


class MsfFile:
    """A parsed MSF 7.0 container. ``stream(i)`` returns stream *i*'s bytes.

    Accepts a path, raw bytes, or a binary file object. Use as a context manager (or call
    :meth:`close`) to release a memory-mapped file early.
    """

    def __init__(self, source: Source, *, name: str | None = None) -> None:
        self._mmap: mmap.mmap | None = None
        self.path = name or _source_name(source)
        self._buf = self._load(source)
        try:
            self._parse_superblock()
            self._parse_directory()
        except BaseException:
            self.close()
            raise

    # -- loading ---------------------------------------------------------------------------
    def _load(self, source: Source) -> bytes | mmap.mmap | memoryview:
        if isinstance(source, (bytes, bytearray, memoryview)):
            return bytes(source)
        if hasattr(source, "read"):
            return source.read()  # type: ignore[union-attr]
        try:
            fd, st = open_regular(source, "give the .pdb file")
        except TmfError as err:   # a PdbError, named as this file is
            raise PdbError(err.message, path=self.path) from None
        with open(fd, "rb") as fh:
            if st.st_size == 0:
                return b""
            try:
                self._mmap = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
                return self._mmap
            except (OSError, ValueError):
                return fh.read()

    def close(self) -> None:
        if self._mmap is not None:
            try:
                self._mmap.close()
            except BufferError:  # a memoryview still points into it; the GC will release it
                pass
            self._mmap = None
            self._buf = b""

    def __enter__(self) -> "MsfFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers ---------------------------------------------------------------------------
    def _error(self, message: str, offset: int | None, expected: str = "") -> PdbError:
        return PdbError(message, path=self.path, offset=offset, expected=expected)

    @property
    def file_size(self) -> int:
        return len(self._buf)

    def _page_error(self, page: int, what: str, where: int) -> PdbError:
        """The error for ``page``, which is not a whole page of the file; ``where`` is the file
        offset of the u32 that named it."""
        if page >= self.num_pages:
            return self._error(f"{what}: page number {page} is out of range", where,
                               f"a page number below the superblock's page count {self.num_pages}")
        start = page * self.page_size
        return self._error(f"{what}: page {page} (file offset {start:#x}) lies past the end of "
                           f"the {len(self._buf)}-byte file (truncated?)", where,
                           "the whole page inside the file")

    # -- superblock and directory ----------------------------------------------------------
    def _parse_superblock(self) -> None:
        buf = self._buf
        head = bytes(buf[:len(MSF2_MAGIC)])
        if head.startswith(MSF2_MAGIC):
            raise self._error("MSF 2.0 (pre-2002, VC6-era) PDB is not supported", 0,
                              "an MSF 7.00 PDB (Visual C++ 7.0 / WDK 2002 or later)")
        if head.startswith(MSFZ_MAGIC):
            raise self._error("MSFZ (compressed PDB container) is not supported", 0,
                              "an MSF 7.00 PDB; convert with 'pdbcopy' or rebuild without /PDBCOMPRESS")
        if len(buf) < _SUPERBLOCK.size or not head.startswith(MSF7_MAGIC):
            raise self._error("not a PDB file: bad magic", 0,
                              "'Microsoft C/C++ MSF 7.00\\r\\n\\x1aDS' at the start of the file")
        _magic, page_size, _fpm, num_pages, dir_bytes, _unused = _SUPERBLOCK.unpack_from(buf, 0)
        if page_size not in PAGE_SIZES:
            raise self._error(f"bad page size {page_size}", 0x20,
                              "a power of two from 512 to 65536")
        if num_pages == 0:
            raise self._error("page count is 0", 0x28, "at least one page")
        if len(buf) < page_size:
            raise self._error(f"file is {len(buf)} bytes, shorter than one {page_size}-byte page",
                              len(buf), "a complete superblock page")
        self.page_size = page_size
        self.num_pages = num_pages
        if dir_bytes < 4:
            raise self._error(f"stream directory size {dir_bytes} is too small", 0x2C,
                              "at least 4 bytes (the stream count)")
        # Pages belong to one owner each (superblock, directory map, directory, one stream), so
        # everything the reader copies fits in the pages the file really has. The claimed page
        # count is a number from the file, so the file's length bounds it too.
        self.file_pages = min(num_pages, len(buf) // page_size)
        dir_pages = -(-dir_bytes // page_size)
        map_pages = -(-(dir_pages * 4) // page_size)
        if dir_pages + map_pages > self.file_pages:
            raise self._error(f"stream directory of {dir_bytes} bytes needs {dir_pages + map_pages} pages "
                              f"with its page map, more than the file's {self.file_pages}", 0x2C,
                              "a directory that fits in the file")
        if _SUPERBLOCK_MAP_OFFSET + 4 * map_pages > page_size:
            raise self._error(f"directory page map needs {map_pages} entries, more than fit in "
                              f"the superblock", 0x2C, "a smaller stream directory")
        self.directory_bytes = dir_bytes
        self._dir_pages = dir_pages
        self._map_pages = struct.unpack_from(f"<{map_pages}I", buf, _SUPERBLOCK_MAP_OFFSET)

    def _parse_directory(self) -> None:
        ps = self.page_size
        # Every page number is checked (in the file, named once) before any page is copied, so
        # the copies together never exceed the file's size.
        owner: dict[int, str] = {}

        def claim(page: int, what: str, where: int) -> None:
            if page >= self.file_pages:
                raise self._page_error(page, what, where)
            if page in owner:
                raise self._error(f"{what}: page {page} is already used by the {owner[page]}", where,
                                  "each directory and directory map page named once")
            owner[page] = what

        # level 1: pages holding the list of directory pages
        for i, p in enumerate(self._map_pages):
            claim(p, "directory page map", _SUPERBLOCK_MAP_OFFSET + 4 * i)
        page_list = b"".join(bytes(self._buf[p * ps:(p + 1) * ps]) for p in self._map_pages)
        dir_page_nums = struct.unpack_from(f"<{self._dir_pages}I", page_list, 0)
        # level 2: the directory itself
        for i, p in enumerate(dir_page_nums):
            claim(p, "stream directory", self._map_pages[(4 * i) // ps] * ps + (4 * i) % ps)
        joined = bytearray()
        for p in dir_page_nums:
            joined += self._buf[p * ps:(p + 1) * ps]
        del joined[self.directory_bytes:]   # (in place: a slice would be a third copy at once)
        directory = bytes(joined)
        del joined
        self._dir_page_nums = dir_page_nums

        def dir_offset(pos: int) -> int:  # file offset of byte ``pos`` of the directory
            return dir_page_nums[pos // ps] * ps + pos % ps

        (num_streams,) = struct.unpack_from("<I", directory, 0)
        if 4 + 4 * num_streams > len(directory):
            raise self._error(f"stream count {num_streams} does not fit in the "
                              f"{len(directory)}-byte stream directory", dir_offset(0),
                              f"at most {(len(directory) - 4) // 4} streams")
        sizes = _u32s(directory, 4, num_streams)
        starts = array("I", [0]) * num_streams   # where each stream's page list starts
        pos = 4 + 4 * num_streams
        # Pages belong to one stream each, so all streams together fit in the file's pages. This
        # bound also stops a hostile directory from naming the same page over and over to make
        # a few kilobytes of file expand into gigabytes of stream data.
        file_pages = self.file_pages
        pages_left = file_pages - len(dir_page_nums) - len(self._map_pages)
        pages_in_file = min(self.num_pages, len(self._buf) // ps)
        for i, size in enumerate(sizes):
            if size == NIL_STREAM_SIZE:
                continue
            count = -(-size // ps)
            if count > pages_left:
                raise self._error(f"stream {i} claims {size} bytes ({count} pages) but only {max(pages_left, 0)} "
                                  f"of the file's {file_pages} pages are left for it", dir_offset(4 + 4 * i),
                                  "stream sizes that together fit in the file")
            pages_left -= count
            if pos + 4 * count > len(directory):
                raise self._error(f"page list of stream {i} ({count} pages) runs past the end of "
                                  f"the {len(directory)}-byte stream directory",
                                  dir_offset(min(pos, len(directory) - 1)),
                                  "page lists that fit in the directory")
            if count and max(pages := _u32s(directory, pos, count)) >= pages_in_file:
                for j, p in enumerate(pages):
                    if p >= pages_in_file:
                        what = ("out of range" if p >= self.num_pages
                                else "past the end of the file (truncated?)")
                        raise self._error(f"stream {i}: page number {p} is {what}",
                                          dir_offset(pos + 4 * j),
                                          f"a page number below {file_pages}")
            starts[i] = pos
            pos += 4 * count
        self._directory, self._sizes, self._starts = directory, sizes, starts

    # -- public API ------------------------------------------------------------------------
    @property
    def num_streams(self) -> int:
        return len(self._sizes)

    def stream_size(self, index: int) -> int | None:
        """Size of stream ``index`` in bytes, or None if it is absent (nil or out of range)."""
        if not 0 <= index < len(self._sizes):
            return None
        size = self._sizes[index]
        return None if size == NIL_STREAM_SIZE else size

    def has_stream(self, index: int) -> bool:
        return self.stream_size(index) is not None

    def directory_file_offset(self, pos: int) -> int:
        """File offset of byte ``pos`` of the stream directory."""
        if not 0 <= pos < self.directory_bytes:
            raise IndexError(f"directory offset {pos} outside 0..{self.directory_bytes - 1}")
        return self._dir_page_nums[pos // self.page_size] * self.page_size + pos % self.page_size

    def stream(self, index: int, what: str = "") -> MsfStream:
        """Stream ``index`` (its bytes and page map). Raises PdbError if it is absent."""
        label = f"stream {index}" + (f" ({what})" if what else "")
        if not 0 <= index < len(self._sizes):
            raise self._error(f"{label} does not exist; the directory has {len(self._sizes)} streams",
                              None, "a stream index named by the PDB")
        size = self._sizes[index]
        if size == NIL_STREAM_SIZE:
            raise self._error(f"{label} is a nil stream", None, "a present stream")
        ps = self.page_size
        pages = struct.unpack_from(f"<{-(-size // ps)}I", self._directory, self._starts[index])
        buf = self._buf
        data = b"".join(bytes(buf[p * ps:(p + 1) * ps]) for p in pages)[:size]
        return MsfStream(index, data, pages, ps)


def _u32s(data: bytes, pos: int, count: int) -> array:
    """``count`` little-endian u32 values of ``data`` from ``pos``, in an array (4 bytes each)."""
    values = array("I", [0]) * count   # allocated at its size (array("I", bytes) adds 1/16 for growth)
    memoryview(values).cast("B")[:] = memoryview(data)[pos:pos + 4 * count]
    if sys.byteorder == "big":
        values.byteswap()
    return values


def _source_name(source: object) -> str:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)
    if isinstance(name, str):
        return name
    try:
        return os.fspath(source)  # type: ignore[arg-type]
    except TypeError:
        return "<file>"
