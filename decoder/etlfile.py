"""One .etl file as buffers: locate, read, decompress, and expose the log-file header.

An .etl file is a run of buffers (docs/etl-format.md §1): fixed-size in normal files,
packed back to back with their own sizes in compressed ones (docs/pdb-and-compression.md §B2).
``EtlFile`` indexes the buffer headers once (one WMI_BUFFER_HEADER each), then reads one
buffer at a time, so memory stays bounded whatever the file size. Damage is reported as
``DecodeIssue``s (file, offset, what was expected) and reading goes on.
"""
from __future__ import annotations

import io
import os
import stat
from array import array
from codecs import utf_16_le_decode
from collections.abc import Sequence

from wpptrace._fieldclass import fieldclass, replace

from ._hazmat import (BUFFER_HEADER, ETL, INDEX_COLUMNS, SYSTEM_HEADER, FixedIndexReader,
                      next_header_shape, offsetof, read, sizeof, walk_records)
from wpptrace.winerror import Win32Error, as_win32

from .buffers import (BUFFER_HEADER_SIZE, MAX_BUFFER_SIZE, Buffer, BufferInfo, ReadLog,
                      ReadStats, buffer_info, decode, is_logfile_header_record,
                      not_a_buffer_header, processor_of, records_stop)
from .records import Record
from .timestamps import TimeConverter

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import BinaryIO, Iterator
_SYSTEM_HEADER_SIZE = sizeof("SYSTEM_TRACE_HEADER")
_RESYNC_WINDOW = 1 << 20
#: bytes of the file (a window, a header) are all zeros when this starts with them
#: (calloc'ed: its pages cost memory only once compared)
_ZERO_WINDOW = bytes(_RESYNC_WINDOW + BUFFER_HEADER_SIZE)
#: bytes read past the log-file header record's fixed part for its two names
_HEADER_READ_SLACK = 512
#: compression formats seen in theory, never in files (only Plain LZ77 is decoded)
UNSUPPORTED_COMPRESSION = {ETL.COMPRESSION_FORMAT_LZNT1: "LZNT1",
                           ETL.COMPRESSION_FORMAT_XPRESS_HUFF: "LZ77+Huffman"}

#: the fields the log-file header's reading takes from the first buffer's header and from
#: the header record's SYSTEM_TRACE_HEADER: plain tuples (the layouts' named tuple classes
#: compile code when made, 0.7 M instructions each, on every run)
_FIRST_BUFFER = BUFFER_HEADER.some("BufferSize", "SavedOffset", "State", "FilledBytes")
_HEADER_RECORD = SYSTEM_HEADER.some("HeaderType", "Size", "HookId", "ThreadId", "ProcessId",
                                    "SystemTime")
#: what ``_nothing_of_a_trace`` reads of the record after buffer 0's header
_RECORD_MARKER = SYSTEM_HEADER.some("HeaderType", "Flags")
#: what ``_plausible_packed`` reads of a buffer header (every run asks about the second buffer)
_PLAUSIBLE = BUFFER_HEADER.some("BufferSize", "SavedOffset", "SequenceNumber", "ProcessorIndex",
                                "FilledBytes", "BufferFlag", "BufferType")
_BUFFER_SIZE = offsetof("WMI_BUFFER_HEADER", "BufferSize")
_SEQUENCE = offsetof("WMI_BUFFER_HEADER", "SequenceNumber")
_SAVED_OFFSET = offsetof("WMI_BUFFER_HEADER", "SavedOffset")
_PROCESSOR = offsetof("WMI_BUFFER_HEADER", "ClientContext")
_LOGGER_ID = offsetof("WMI_BUFFER_HEADER", "ClientContext", "LoggerId")
_STATE = offsetof("WMI_BUFFER_HEADER", "State")
_BUFFER_FLAG = offsetof("WMI_BUFFER_HEADER", "BufferFlag")
_FILLED = offsetof("WMI_BUFFER_HEADER", "FilledBytes")
#: a later buffer starts at a multiple of this (``_a_buffer_further_on``), at most this far in
_BUFFER_ALIGN = 512
_FURTHEST_SECOND_BUFFER = MAX_BUFFER_SIZE
_U32 = sizeof("uint32_t")
#: PointerSize sits at the same offset in both TRACE_LOGFILE_HEADER layouts
_POINTER_SIZE = offsetof("TRACE_LOGFILE_HEADER64", "PointerSize")
assert _POINTER_SIZE == offsetof("TRACE_LOGFILE_HEADER32", "PointerSize")
_MIN_LOGFILE_HEADER = sizeof("TRACE_LOGFILE_HEADER32")
#: TRACE_LOGFILE_HEADER.BufferSize in the file: the header record's payload in buffer 0
_HEADER_BUFFER_SIZE = (BUFFER_HEADER_SIZE + _SYSTEM_HEADER_SIZE
                       + offsetof("TRACE_LOGFILE_HEADER64", "BufferSize"))
assert (offsetof("TRACE_LOGFILE_HEADER32", "BufferSize")
        == offsetof("TRACE_LOGFILE_HEADER64", "BufferSize"))
_HEADER_LOG_FILE_MODE = (BUFFER_HEADER_SIZE + _SYSTEM_HEADER_SIZE
                         + offsetof("TRACE_LOGFILE_HEADER64", "LogFileMode"))
assert (offsetof("TRACE_LOGFILE_HEADER32", "LogFileMode")
        == offsetof("TRACE_LOGFILE_HEADER64", "LogFileMode"))
#: buffer headers read at multiples of each stride when the header's BufferSize and buffer
#: 0's disagree (each that is a buffer of that size is a vote for it)
_STRIDE_VOTES = 4
#: the session buffer size taken when neither BufferSize is in range and no other buffer
#: header is found (the file is then one buffer, or less)
_GUESSED_BUFFER_SIZE = 65536
#: a record's Size is 16 bits
_MAX_RECORD_SIZE = ETL.MAX_ETW_EVENT_SIZE & ~7
#: most buffers one C call of the index reader writes (its columns: 52 bytes an entry)
_INDEX_CHUNK = 1 << 14


@fieldclass(frozen=True)
class LogfileHeader:
    """Every TRACE_LOGFILE_HEADER fact, from the first record of the header buffer."""

    buffer_size: int
    version: tuple[int, int, int, int]   # MajorVersion, MinorVersion, SubVersion, SubMinorVersion
    provider_version: int                # OS build number
    number_of_processors: int
    end_time: int                        # FILETIME
    timer_resolution: int                # 100 ns units
    maximum_file_size: int               # MB
    log_file_mode: int
    buffers_written: int
    start_buffers: int
    pointer_size: int
    events_lost: int
    cpu_speed_mhz: int
    time_zone_bias: int                  # minutes (TIME_ZONE_INFORMATION.Bias)
    time_zone: bytes                     # the 172-byte TIME_ZONE_INFORMATION
    boot_time: int                       # FILETIME
    perf_freq: int
    start_time: int                      # FILETIME
    clock_type: int                      # ReservedFlags: 1 QPC, 2 system time, 3 CPU cycles
    buffers_lost: int
    logger_name: str
    log_file_name: str
    raw: bytes                           # the header record's payload as in the file
    header_timestamp: int                # raw SystemTime of the header record
    header_thread_id: int = 0
    header_process_id: int = 0
    valid: bool = True                   # False: made up because the real one was damaged

    @property
    def os_version(self) -> tuple[int, int]:
        return self.version[0], self.version[1]

    @property
    def compressed(self) -> bool:
        return bool(self.log_file_mode & ETL.EVENT_TRACE_COMPRESSED_MODE)

    @property
    def circular(self) -> bool:
        return bool(self.log_file_mode & ETL.EVENT_TRACE_FILE_MODE_CIRCULAR)

    @property
    def relogged(self) -> bool:
        return bool(self.log_file_mode & ETL.EVENT_TRACE_RELOG_MODE)


class BufferIndex(Sequence):
    """The located buffers of a file, kept compactly (array columns, about 52 bytes per
    buffer, so a multi-GB file of 4 KiB buffers indexes in tens of MB); items are made into
    BufferInfo objects when read."""

    #: (name, array type code), as the C index reader declares them (etlread.h)
    _COLUMNS = INDEX_COLUMNS

    #: the header fields kept, in structure order: one unpack per located buffer
    _HEADER_FIELDS = BUFFER_HEADER.some("SavedOffset", "TimeStamp", "SequenceNumber",
                                        "ProcessorIndex", "LoggerId", "State", "FilledBytes",
                                        "BufferFlag", "BufferType")

    def __init__(self, infos=()):
        self._cols = {name: array(code) for name, code in self._COLUMNS}
        for info in infos:
            self.append(info)

    def append(self, info: BufferInfo) -> None:
        for name, col in self._cols.items():
            col.append(getattr(info, name))

    def extend_headers(self, located: list[tuple[int, int, bytes]]) -> None:
        """Add buffers located at (file offset, size on disk, WMI_BUFFER_HEADER bytes), read
        as ``buffer_info`` reads them, column by column: a multi-GB file has tens of
        thousands of buffers, and no object is made for each."""
        if not located:
            return
        offsets, sizes, raws = zip(*located)
        unpack = self._HEADER_FIELDS.unpack_from
        (saved, timestamps, sequences, processors, logger_ids, states, filled, flags,
         buffer_types) = zip(*map(unpack, raws))
        c = self._cols
        for name, values in (("file_offset", offsets), ("size_on_disk", sizes),
                             ("sequence", sequences), ("timestamp", timestamps),
                             ("saved_offset", saved), ("filled_bytes", filled),
                             ("state", states), ("processor", map(processor_of, processors, flags)),
                             ("logger_id", logger_ids), ("flags", flags),
                             ("buffer_type", buffer_types)):
            c[name].extend(values)

    def extend_columns(self, columns: dict[str, array], count: int) -> None:
        """Add the first ``count`` entries of columns laid out as this index's."""
        for name, col in self._cols.items():
            col.extend(columns[name][:count])

    def __len__(self) -> int:
        return len(self._cols["file_offset"])

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("buffer index out of range")
        fields = {name: col[i] for name, col in self._cols.items()}
        return BufferInfo(index=i, compressed=bool(fields["flags"] & ETL.ETW_BUFFER_FLAG_COMPRESSED),
                          **fields)

    def column(self, name: str) -> array:
        """One field for every buffer (e.g. "processor", "sequence"), without objects."""
        return self._cols[name]


class BufferSubset(Sequence):
    """Some buffers of a BufferIndex, in a chosen order (e.g. one processor's stream)."""

    def __init__(self, index: BufferIndex, positions: array):
        self._index = index
        self._positions = positions

    def __len__(self) -> int:
        return len(self._positions)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._index[p] for p in self._positions[i]]
        return self._index[self._positions[i]]

    def column(self, name: str) -> list[int]:
        """One field of these buffers, in this order, without objects."""
        return list(map(self._index.column(name).__getitem__, self._positions))

    @property
    def parent(self) -> BufferIndex:
        """The index these buffers are of."""
        return self._index

    @property
    def positions(self) -> array:
        """The buffers' positions in ``parent``, in this order (``array('I')``; read it, do
        not change it)."""
        return self._positions


_IS_A_DIRECTORY = "{}: is a directory: expected an .etl file"


def _open_seekable(path: str) -> BinaryIO:
    """``path`` opened to read, if it is a file read by position (a regular file or a block
    device). Opened without waiting: a named pipe with no writer would keep a blocking open
    waiting for ever."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:      # a missing or unreadable file named as the C core's errors are
        raise as_win32(exc) from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise Win32Error(ETL.ERROR_BAD_PATHNAME, _IS_A_DIRECTORY.format(path), filename=path)
        if not (stat.S_ISREG(mode) or stat.S_ISBLK(mode)):
            raise Win32Error(ETL.ERROR_NOT_SUPPORTED,
                             f"{path}: an .etl file is read at its buffers' offsets: give a file, "
                             f"not a pipe, socket or character device", filename=path)
        os.set_blocking(fd, True)
        return open(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class EtlFile(ReadLog):
    """A readable .etl file (compressed or not). Use as a context manager.

    ``header`` is the LogfileHeader; ``buffer_index()`` lists the located buffers;
    ``iter_buffers()`` reads them in file order; ``iter_records()`` walks every record in
    file order; ``errors`` lists the problems met so far.
    """

    def __init__(self, source: str | os.PathLike | BinaryIO, *, name: str | None = None):
        if isinstance(source, (str, bytes, os.PathLike)):
            path = os.fsdecode(source)
            self._fh: BinaryIO = _open_seekable(path)
            self._owns = True
            self._fd: int | None = self._fh.fileno()   # this object's own: read by position
            self.name = name or path
        else:
            self._fh = source
            self._owns = False
            self._fd = None
            self.name = name or getattr(source, "name", "<stream>")
            if not isinstance(self.name, str):
                self.name = "<stream>"
            if not (hasattr(source, "seekable") and source.seekable()):
                raise Win32Error(ETL.ERROR_NOT_SUPPORTED,
                                 f"{self.name}: an .etl file is read by buffer offsets: "
                                 f"expected a seekable binary file", filename=self.name)
        self._fh.seek(0, io.SEEK_END)
        self.file_size = self._fh.tell()
        ReadLog.__init__(self, self.name)
        self._index: BufferIndex | None = None
        self._zeroed_slots = 0              # buffers skipped for a zeroed header
        #: stretches of a compressed file skipped for a header that is no buffer's: each
        #: counted as one unreadable buffer (none is missing at the end for it)
        self._junk_headers = 0
        #: buffers of an uncompressed file skipped inside one read at the session buffer size
        #: (their headers found there: that buffer's BufferSize is smaller)
        self._skipped_inside = 0
        self._size_guessed = False          # neither BufferSize was in range
        #: the header facts were read from a log-file header record's payload (PointerSize 4
        #: or 8, BufferSize in range), its marker damaged or not; False: made up or partly
        self.header_read = False
        #: where buffer 0's records go on after a damaged log-file header record whose facts
        #: were read (``header_read``) and whose end is known (its own Size, or past its
        #: names): that record is no event (the one ``made_header_buffer`` gives stands for
        #: it); None: the walk reads buffer 0 whole
        self.header_record_end: int | None = None
        self._first_head = b""              # buffer 0's WMI_BUFFER_HEADER as read
        self._record_head = b""             # the header record's SYSTEM_TRACE_HEADER as read
        self.header = self._read_logfile_header()
        self.pointer_size = self.header.pointer_size
        #: the session buffer size: where buffer i of an uncompressed file starts (i *
        #: buffer_stride) and the most a buffer uses. The header's BufferSize, or the size
        #: the buffers say when they outvote it (``header`` stays as read)
        self.buffer_stride = self.header.buffer_size
        self.compressed = self._choose_layout()
        # compression format: State of buffer 0 in compressed files (docs/pdb-and-compression.md
        # §B1); every real file uses Plain LZ77 (3, which is also the plain "flushed" state)
        self.compression_format = (self._first_state & 0xFF) if self.compressed else 0
        if self.compression_format in UNSUPPORTED_COMPRESSION:
            self._issue(_STATE, f"buffer 0: compression format {self.compression_format} "
                              f"({UNSUPPORTED_COMPRESSION[self.compression_format]}) is not "
                              f"supported: compressed buffers are skipped")

    # -- life cycle --------------------------------------------------------------------
    def close(self) -> None:
        if self._owns and not self._fh.closed:
            self._fd = None
            self._fh.close()

    def __enter__(self) -> "EtlFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_at(self, offset: int, size: int) -> bytes:
        if self._fd is None:
            self._fh.seek(offset)
            return self._fh.read(size)
        try:
            data = os.pread(self._fd, size, offset)     # one call, no copy through a buffer
            while 0 < len(data) < size:                 # a short read before the end: go on
                more = os.pread(self._fd, size - len(data), offset + len(data))
                if not more:
                    break
                data += more
        except OSError as exc:      # the device failing under the file: where, in one line
            raise Win32Error(ETL.ERROR_READ_FAULT, exc.strerror, filename=self.name,
                             offset=offset) from exc
        return data

    # -- the log-file header -------------------------------------------------------------
    def _read_logfile_header(self) -> LogfileHeader:
        head = self._read_at(0, BUFFER_HEADER_SIZE)
        if len(head) < BUFFER_HEADER_SIZE:
            raise Win32Error(ETL.ERROR_BAD_FORMAT,
                             f"expected a {BUFFER_HEADER_SIZE}-byte WMI_BUFFER_HEADER, the "
                             f"file has {self.file_size} bytes", filename=self.name, offset=0)
        self._first_head = head
        first_size, saved, self._first_state, filled = _FIRST_BUFFER.unpack_from(head)
        nothing_of_a_trace = self._nothing_of_a_trace(head)
        if nothing_of_a_trace:
            raise Win32Error(ETL.ERROR_BAD_FORMAT, nothing_of_a_trace, filename=self.name,
                             offset=0)
        self._first_size = first_size
        self._first_end = max(saved, filled)
        sane_end = self._first_end if self._first_end <= MAX_BUFFER_SIZE else 0
        body = self._read_at(0, max(min(max(first_size, sane_end), MAX_BUFFER_SIZE, 1 << 20),
                                    BUFFER_HEADER_SIZE + _SYSTEM_HEADER_SIZE + _HEADER_READ_SLACK))
        at = BUFFER_HEADER_SIZE
        if len(body) < at + _SYSTEM_HEADER_SIZE:
            return self._fallback_header("file too short for the log-file header record")
        marker = int.from_bytes(body[at:at + _U32], "little")
        sys_h = _HEADER_RECORD.unpack_from(body, at)     # (its fields: _HEADER_RECORD)
        self._record_head = body[at:at + _SYSTEM_HEADER_SIZE]
        htype, size, hook = sys_h[:3]
        # damaged: still try the payload, the rest of the file depends on it; said once,
        # with the bytes skipped if the record's end is known
        damage = (f"expected the log-file header record (SYSTEM32/64 marker, HookId 0) at "
                  f"offset {at:#x}, found marker {marker:#010x} HookId {hook:#x} Size {size}"
                  if not is_logfile_header_record(body, at, len(body)) else "")
        own_size = _SYSTEM_HEADER_SIZE + _MIN_LOGFILE_HEADER <= size <= len(body) - at
        if not own_size:
            size = len(body) - at
        payload = body[at + _SYSTEM_HEADER_SIZE:at + size]
        if len(payload) < _POINTER_SIZE + _U32:
            return self._fallback_header(f"expected a complete log-file header record, the "
                                         f"file ends {len(payload)} bytes into its payload",
                                         damage=damage)
        # PointerSize sits at the same offset in both layouts; the record type agrees
        ptr = int.from_bytes(payload[_POINTER_SIZE:_POINTER_SIZE + _U32], "little")
        pointer_read = ptr in (4, 8)
        if not pointer_read:
            if damage:
                self._issue(at, damage)
                damage = ""
            self._issue(at + _SYSTEM_HEADER_SIZE + _POINTER_SIZE, f"expected PointerSize 4 or 8, found {ptr}")
            ptr = 4 if htype == ETL.TRACE_HEADER_TYPE_SYSTEM32 else 8
        ctype = "TRACE_LOGFILE_HEADER64" if ptr == 8 else "TRACE_LOGFILE_HEADER32"
        fixed = sizeof(ctype)
        if len(payload) < fixed:
            return self._fallback_header(f"log-file header record of {size} bytes is shorter "
                                         f"than its {fixed}-byte TRACE_LOGFILE_HEADER",
                                         damage=damage)
        header = self._make_header(read(ctype, payload), payload, fixed, ptr, sys_h)
        if not BUFFER_HEADER_SIZE < header.buffer_size <= MAX_BUFFER_SIZE:
            return self._fallback_header(f"expected TRACE_LOGFILE_HEADER.BufferSize above "
                                         f"{BUFFER_HEADER_SIZE:#x} and at most "
                                         f"{MAX_BUFFER_SIZE:#x}, found {header.buffer_size:#x}",
                                         header, damage, at=_HEADER_BUFFER_SIZE)
        self.header_read = pointer_read
        if damage:
            end, other = (self._damaged_record_end(body, at, size if own_size else None, fixed)
                          if pointer_read else (None, None))
            if end is not None:
                self.header_record_end = end
                damage += f"; its {end - at} bytes skipped, the records go on at {end:#x}"
                if other is not None:
                    damage += (f" (records chain from {other:#x} too: the {other - end} bytes "
                               f"between are read as records)")
            self._issue(at, damage)
        return header

    def _nothing_of_a_trace(self, head: bytes) -> str:
        """Why the file is no trace at all, or "". Refused: a file that starts with the
        signature of a format often handed to a trace reader by mistake (a PE image, a PDB,
        an ELF image), and a file that keeps no sign of a trace: buffer 0's WMI_BUFFER_HEADER
        has no BufferSize and SavedOffset of a buffer, the record after it has no SYSTEM32/64
        marker, its log-file header has no PointerSize 4 or 8 beside a session buffer size,
        and no buffer header sits where a later buffer would (``_a_buffer_further_on``). A
        trace whose start took damage keeps one of these or a later buffer, and is read with
        its damage counted; a trace of one buffer whose first 0x98 bytes are all damaged is
        refused. Text keeps none; random bytes keep one about 3 times in 100,000 (two
        bytes of the marker: 2 in 65,536), and are then read as a damaged trace."""
        foreign = _foreign_format(head)
        if foreign:
            return f"not an .etl file: expected a WMI_BUFFER_HEADER, found the start of {foreign}"
        size, saved = _buffer_size_of(head), _saved_offset_of(head)
        if _a_buffer_size(size) and BUFFER_HEADER_SIZE <= saved <= size:
            return ""
        at = BUFFER_HEADER_SIZE
        tail = self._read_at(at, _SYSTEM_HEADER_SIZE + _POINTER_SIZE + _U32)
        if len(tail) >= _SYSTEM_HEADER_SIZE:
            htype, flags = _RECORD_MARKER.unpack_from(tail)
            if (flags == ETL.TRACE_RECORD_MARKER_FIXED and htype in (
                    ETL.TRACE_HEADER_TYPE_SYSTEM32, ETL.TRACE_HEADER_TYPE_SYSTEM64)):
                return ""
        ptr = tail[_SYSTEM_HEADER_SIZE + _POINTER_SIZE:]
        session_size = _buffer_size_of(tail[_SYSTEM_HEADER_SIZE:])
        if (len(ptr) == _U32 and int.from_bytes(ptr, "little") in (4, 8)
                and session_size % 1024 == 0 and _a_buffer_size(session_size)):
            return ""
        if self._a_buffer_further_on() is not None:
            return ""
        marker = tail[:_U32].ljust(_U32, b"\0")
        return (f"not an .etl file: expected a WMI_BUFFER_HEADER (BufferSize above "
                f"{BUFFER_HEADER_SIZE:#x} and at most {MAX_BUFFER_SIZE:#x}, SavedOffset inside "
                f"it), found BufferSize {size:#x} SavedOffset {saved:#x}; at offset {at:#x} "
                f"expected the log-file header record (a SYSTEM32/64 marker), found "
                f"{int.from_bytes(marker, 'little'):#010x}; and no buffer header where a "
                f"later buffer would be (a multiple of {_BUFFER_ALIGN} bytes in the first "
                f"{_FURTHEST_SECOND_BUFFER:#x})")

    def _a_buffer_further_on(self) -> int | None:
        """Where the first buffer header after buffer 0 is found at a place a later buffer
        starts, or None. Buffer 0 is a whole session buffer (a multiple of 1 KiB) or, in a
        compressed file, trimmed to whole 512-byte sectors, so buffer 1 starts at a multiple
        of _BUFFER_ALIGN, at most _FURTHEST_SECOND_BUFFER in. Read only for a file whose
        start kept no sign of a trace."""
        end = min(self.file_size, _FURTHEST_SECOND_BUFFER + BUFFER_HEADER_SIZE)
        pos = _BUFFER_ALIGN
        while pos + BUFFER_HEADER_SIZE <= end:
            window = self._read_at(pos, min(_RESYNC_WINDOW, end - pos))
            for at in range(0, len(window) - BUFFER_HEADER_SIZE + 1, _BUFFER_ALIGN):
                if self._a_later_buffer(pos + at, window[at:at + BUFFER_HEADER_SIZE]):
                    return pos + at
            pos += _RESYNC_WINDOW
        return None

    def _a_later_buffer(self, offset: int, raw: bytes) -> bool:
        """Are ``raw``, read at ``offset``, the header of a buffer after buffer 0: a
        fixed-size buffer whose BufferSize ``offset`` is a multiple of, or a compressed one
        followed by another buffer header or by the end of the file?"""
        if not _a_buffer_header(raw):
            return False
        size = _buffer_size_of(raw)
        if not buffer_info(raw).compressed:
            return offset % size == 0 and max(_saved_offset_of(raw), _filled_of(raw)) <= size
        after = offset + size
        return after == self.file_size or (
            after < self.file_size and _a_buffer_header(self._read_at(after, BUFFER_HEADER_SIZE)))

    def _damaged_record_end(self, body: bytes, at: int, size: int | None,
                            fixed: int) -> tuple[int | None, int | None]:
        """Where buffer 0's records go on after the damaged log-file header record at
        ``at`` whose facts were read: the end past its two names or the end past its own
        Size (``size``, None if it did not hold), whichever records chain cleanly from to the
        end of the events, the smaller if both do (fewer bytes taken for the header, no
        record swallowed); the own Size's end also if it agrees with the names; None: not
        known (the walk reads buffer 0 from the record, and resumes where records chain
        again). The record is damaged, so its Size alone is no witness: an in-range wrong
        one would swallow records. Returns (end, the larger end when both chain and differ,
        for the report; else None)."""
        events_end = min(self._first_end, len(body))
        names = _names_end(body, at + _SYSTEM_HEADER_SIZE + fixed, events_end)
        names_end = at + _align8(names - at) if names is not None else None
        own_end = at + _align8(size) if size is not None else None
        if own_end is not None and own_end == names_end and own_end <= events_end:
            return own_end, None
        ends = sorted(end for end in (names_end, own_end)
                      if end is not None and _chains_to_events_end(body, end, events_end))
        if not ends:
            return None, None
        return ends[0], (ends[1] if len(ends) == 2 and ends[1] != ends[0] else None)

    def made_header_buffer(self) -> Buffer | None:
        """The header buffer ProcessTrace's first event comes from when buffer 0 does not
        start with a well-formed log-file header record but the header facts were read from
        that record (``header_read``): buffer 0's WMI_BUFFER_HEADER, then that record as
        read, made whole (its marker, Size and HookId those of a log-file header record;
        thread, process, times and payload as read), so every view makes the header event
        from it as from the real record. None if the facts were not read (no header event:
        the file is no trace, or its header is lost)."""
        if not self.header_read:
            return None
        h = self.header
        payload = h.raw[:_MAX_RECORD_SIZE - _SYSTEM_HEADER_SIZE]
        size = _SYSTEM_HEADER_SIZE + len(payload)
        used = BUFFER_HEADER_SIZE + ((size + 7) & ~7)
        data = bytearray(used)
        data[:BUFFER_HEADER_SIZE] = self._first_head
        data[BUFFER_HEADER_SIZE:BUFFER_HEADER_SIZE + _SYSTEM_HEADER_SIZE] = self._record_head
        info = buffer_info(data)
        flag = info.flags & ~ETL.ETW_BUFFER_FLAG_COMPRESSED
        if not_a_buffer_header(info) is not None:   # junk: only the record is the facts'
            data[:BUFFER_HEADER_SIZE] = bytes(BUFFER_HEADER_SIZE)
            flag = 0
        BUFFER_HEADER.pack_into(data, BufferSize=used, SavedOffset=used, FilledBytes=used,
                                BufferFlag=flag, BufferType=ETL.ETW_BUFFER_TYPE_HEADER)
        SYSTEM_HEADER.pack_into(
            data, BUFFER_HEADER_SIZE, Version=ETL.SYSTEM_TRACE_VERSION,
            HeaderType=(ETL.TRACE_HEADER_TYPE_SYSTEM64 if h.pointer_size == 8
                        else ETL.TRACE_HEADER_TYPE_SYSTEM32),
            Flags=ETL.TRACE_RECORD_MARKER_FIXED, Size=size, HookId=0)
        data[BUFFER_HEADER_SIZE + _SYSTEM_HEADER_SIZE:BUFFER_HEADER_SIZE + size] = payload
        data = bytes(data)
        return decode(data, buffer_info(data, index=0, file_offset=0), source=self.name,
                      pointer_size=self.pointer_size)

    def _fallback_header(self, problem: str, damaged: LogfileHeader | None = None,
                         damage: str = "", at: int = BUFFER_HEADER_SIZE) -> LogfileHeader:
        """Damaged header: carry on with what the buffer header says, so the data still reads
        (``damage``: the header record's own damage, said first; ``problem`` is at ``at``,
        the field it is about, else the record)."""
        if damage:
            self._issue(BUFFER_HEADER_SIZE, damage)
        self._issue(at, problem)
        size = self._first_size
        if not BUFFER_HEADER_SIZE < size <= MAX_BUFFER_SIZE:
            size, self._size_guessed = _GUESSED_BUFFER_SIZE, True    # _choose_layout looks further
        if damaged is not None:
            return replace(damaged, buffer_size=size, valid=False)
        return LogfileHeader(
            buffer_size=size, version=(0, 0, 0, 0), provider_version=0, number_of_processors=0,
            end_time=0, timer_resolution=0, maximum_file_size=0, log_file_mode=0,
            buffers_written=0, start_buffers=0, pointer_size=8, events_lost=0, cpu_speed_mhz=0,
            time_zone_bias=0, time_zone=b"", boot_time=0, perf_freq=0, start_time=0,
            clock_type=1, buffers_lost=0, logger_name="", log_file_name="", raw=b"",
            header_timestamp=0, valid=False)

    def _choose_layout(self) -> bool:
        """Packed (compressed-file) layout or fixed-size buffers, and their stride
        (``buffer_stride``)?

        Compressed files trim buffer 0 and pack buffers by their own sizes; normal files use
        TRACE_LOGFILE_HEADER.BufferSize for every buffer. A damaged size or mode bit is
        outvoted by where the next buffer headers really are, and the damage said once."""
        h = self.header
        first = self._first_size
        if self._size_guessed:
            return self._layout_from_next_header()
        # the header where buffer 0 ends, read once: the next buffer of either layout
        after_first = self._read_at(first, BUFFER_HEADER_SIZE)
        packed_next = (BUFFER_HEADER_SIZE <= first < self.file_size
                       and self._plausible_packed(first, after_first))
        if first == h.buffer_size:
            # no trustworthy header: a compressed second buffer means the packed layout
            packed = h.compressed if h.valid else packed_next and buffer_info(after_first).compressed
            if not packed:
                self._stride_of_next_buffer(first, after_first)
            return packed
        fixed_next = (h.buffer_size < self.file_size and self._plausible_packed(
            h.buffer_size, self._read_at(h.buffer_size, BUFFER_HEADER_SIZE)))
        if not (BUFFER_HEADER_SIZE < first <= MAX_BUFFER_SIZE or fixed_next or packed_next):
            # neither BufferSize leads to a buffer (both damaged, the header's in range by
            # chance): the next buffer header found says where buffer 0 ends
            return self._layout_from_next_header()
        if (not h.compressed and BUFFER_HEADER_SIZE < first <= MAX_BUFFER_SIZE
                and self._stride_votes(first, self._headers_at_stride(first, after_first))
                > self._stride_votes(h.buffer_size, self._headers_at_stride(h.buffer_size))):
            # the header's BufferSize is the damaged one (a multiple of the real size would
            # step over every buffer between): the buffers say their size
            self.buffer_stride = first
            self._issue(_HEADER_BUFFER_SIZE, _stride_taken(first, "buffer 0's BufferSize, and "
                                               "the buffers' found at that stride", h.buffer_size))
            return False
        if packed_next and not (fixed_next and not h.compressed):
            if h.valid and not h.compressed:
                self._say_packed(first, after_first)
            return True
        if fixed_next or not h.compressed:
            self._issue(0, f"buffer 0: expected BufferSize {h.buffer_size:#x} (the session buffer "
                           f"size), found {first:#x}; reading fixed-size buffers")
            return False
        return True

    def _stride_of_next_buffer(self, first: int, after_first: bytes) -> None:
        """The header's BufferSize and buffer 0's agree, yet both may be damaged alike: a
        multiple of the real size would step over buffers that all say the real size, and
        buffer 0 itself would hide some. The first other size a buffer at that stride says
        is taken if more buffers found at its own stride say it."""
        headers = self._headers_at_stride(first, after_first)
        # the candidate is any other BufferSize said, whatever the rest of its header: the
        # votes judge it
        said = next((size for size in map(_buffer_size_of, headers) if size != first), None)
        if said is None:
            return                  # (an undamaged file: a few header reads)
        if (not BUFFER_HEADER_SIZE < said <= MAX_BUFFER_SIZE
                or self._stride_votes(said, self._headers_at_stride(said))
                <= self._stride_votes(first, headers)):
            return
        self.buffer_stride = said
        reason = "the buffers' found at that stride"
        if self.header.valid:
            self._issue(_HEADER_BUFFER_SIZE, _stride_taken(said, reason, first))
        self._issue(0, f"buffer 0: {_stride_taken(said, reason, first, field='BufferSize')}")

    def _say_packed(self, first: int, after_first: bytes) -> None:
        """The packed layout chosen in a file whose header says it is not compressed: the
        field that disagrees, once (LogFileMode if the next buffer, ``after_first``, is
        compressed, else the header's BufferSize)."""
        h = self.header
        if buffer_info(after_first).compressed:
            self._issue(_HEADER_LOG_FILE_MODE,
                        f"expected EVENT_TRACE_COMPRESSED_MODE in TRACE_LOGFILE_HEADER."
                        f"LogFileMode {h.log_file_mode:#x}: the buffer at {first:#x} is "
                        f"compressed; the buffers are read back to back, each by its own "
                        f"BufferSize")
        else:
            self._issue(_HEADER_BUFFER_SIZE, _stride_taken(
                first, "buffer 0's BufferSize", h.buffer_size,
                reading="the buffers are read back to back, each by its own BufferSize"))

    def _headers_at_stride(self, stride: int, at_stride: bytes | None = None) -> list[bytes]:
        """The bytes of the buffer headers the first few places a fixed-size buffer of
        ``stride`` bytes would follow buffer 0 at (``at_stride``: the one at ``stride``,
        already read)."""
        return [at_stride if k == 1 and at_stride is not None
                else self._read_at(k * stride, BUFFER_HEADER_SIZE)
                for k in range(1, _STRIDE_VOTES + 1)]

    def _stride_votes(self, stride: int, headers: list[bytes]) -> int:
        """How many of ``headers`` (``_headers_at_stride(stride)``) are buffers of that
        size, uncompressed (a compressed buffer's size is its own, whatever the others')."""
        return sum(self._is_buffer_of(k * stride, raw, stride, uncompressed=True)
                   for k, raw in enumerate(headers, 1))

    def _is_buffer_of(self, offset: int, raw: bytes, size: int, *, uncompressed: bool) -> bool:
        """Are the header bytes ``raw`` read at ``offset`` a plausible buffer header saying
        BufferSize ``size`` (and, if ``uncompressed``, not compressed)?"""
        return (_buffer_size_of(raw) == size and self._plausible_packed(offset, raw)
                and not (uncompressed and buffer_info(raw).compressed))

    def _layout_from_next_header(self) -> bool:
        """Neither the header's BufferSize nor buffer 0's is in range: the next buffer
        header found says where buffer 0 ends (a fixed-size buffer there says that size; a
        compressed one means the packed layout, whose reading finds it again)."""
        first = self._first_size
        at = BUFFER_HEADER_SIZE
        # a few candidates, each search from the last and none past the end of a buffer 0
        # as large as any
        for _candidate in range(_STRIDE_VOTES):
            nxt = self._resync(at, MAX_BUFFER_SIZE + BUFFER_HEADER_SIZE)[0]
            if nxt is None:
                break
            raw = self._read_at(nxt, BUFFER_HEADER_SIZE)
            info = buffer_info(raw)
            if info.compressed and not_a_buffer_header(info) is None:
                return True
            # (found by _resync: plausible; a junk header's compressed bit is no sign)
            if self._is_buffer_of(nxt, raw, nxt, uncompressed=False):
                self.buffer_stride = nxt
                self._issue(0, f"buffer 0: expected BufferSize above {BUFFER_HEADER_SIZE:#x} "
                               f"and at most {MAX_BUFFER_SIZE:#x}, found {first:#x}; the next "
                               f"buffer header, at {nxt:#x}, says BufferSize {nxt:#x}: reading "
                               f"{nxt:#x}-byte buffers")
                return False
            at = nxt + 1
        self._issue(0, f"buffer 0: expected BufferSize above {BUFFER_HEADER_SIZE:#x} and at "
                       f"most {MAX_BUFFER_SIZE:#x}, found {first:#x}, and no buffer header "
                       f"found after it says where it ends; reading "
                       f"{self.buffer_stride:#x}-byte buffers")
        return False

    @staticmethod
    def _make_header(h, payload: bytes, fixed: int, ptr: int, sys_h: tuple) -> LogfileHeader:
        names = payload[fixed:]
        logger_name, rest = _utf16z(names)
        log_file_name, _ = _utf16z(rest)
        tz_off = offsetof("TRACE_LOGFILE_HEADER64" if ptr == 8 else "TRACE_LOGFILE_HEADER32",
                              "TimeZone")
        return LogfileHeader(
            buffer_size=h.BufferSize,
            version=(h.MajorVersion, h.MinorVersion, h.SubVersion, h.SubMinorVersion),
            provider_version=h.ProviderVersion, number_of_processors=h.NumberOfProcessors,
            end_time=h.EndTime, timer_resolution=h.TimerResolution,
            maximum_file_size=h.MaximumFileSize, log_file_mode=h.LogFileMode,
            buffers_written=h.BuffersWritten, start_buffers=h.StartBuffers, pointer_size=ptr,
            events_lost=h.EventsLost, cpu_speed_mhz=h.CpuSpeedInMHz,
            time_zone_bias=h.TimeZone.Bias,
            time_zone=bytes(payload[tz_off:tz_off + sizeof("TIME_ZONE_INFORMATION")]),
            boot_time=h.BootTime, perf_freq=h.PerfFreq, start_time=h.StartTime,
            clock_type=h.ReservedFlags, buffers_lost=h.BuffersLost,
            logger_name=logger_name, log_file_name=log_file_name, raw=bytes(payload),
            header_timestamp=sys_h[5], header_thread_id=sys_h[3], header_process_id=sys_h[4])

    # -- locating buffers ------------------------------------------------------------------
    def buffer_index(self) -> BufferIndex:
        """Every buffer of the file in file order (headers only; computed once; a sequence
        of BufferInfo)."""
        if self._index is None:
            index = BufferIndex()
            if not self.compressed:
                self._locate_fixed(index, self.buffer_stride)
            else:
                self._locate_packed(index)
            self._index = index
            h = self.header
            found = (len(self._index) + self.stats.empty_buffers + self._zeroed_slots
                     + self._skipped_inside + self._junk_headers)
            if h.valid and not h.circular and found < h.buffers_written:
                self._issue(self.file_size,
                            f"expected {h.buffers_written} buffers (TRACE_LOGFILE_HEADER."
                            f"BuffersWritten), the file ends after {found}: truncated")
            elif h.valid and not h.circular and h.end_time and len(self._index) > h.buffers_written:
                self._issue(self.file_size,
                            f"expected {h.buffers_written} buffers (TRACE_LOGFILE_HEADER."
                            f"BuffersWritten), found {len(self._index)}; the extra ones are read too")
            self._check_buffer_headers(self._index)
        return self._index

    def adopt_index(self, other: "EtlFile") -> None:
        """Use the buffer index ``other`` (this file, opened by the process this one was
        forked from) made: locating every buffer again would cost this process a read of
        each buffer header; the problems found doing it were reported there."""
        if self._index is None and other.file_size == self.file_size:
            self._index = other.buffer_index()
            self._zeroed_slots = other._zeroed_slots
            self._skipped_inside = other._skipped_inside
            self._junk_headers = other._junk_headers
            self.stats.empty_buffers = other.stats.empty_buffers

    def _check_buffer_headers(self, index: "BufferIndex") -> None:
        """Report the buffer-header facts the reader works around (every real Windows file
        of the corpus is free of them): FilledBytes and SavedOffset disagreeing (the events
        are read up to the larger), a processor number not below NumberOfProcessors, and a
        SequenceNumber repeated within one processor's buffers."""
        h = self.header
        nproc = h.number_of_processors if h.valid else 0
        offsets, saved, filled = (index.column(c) for c in ("file_offset", "saved_offset",
                                                            "filled_bytes"))
        processors, sequences = index.column("processor"), index.column("sequence")
        if len(index) < 2 or (saved[1:] == filled[1:]
                              and (not nproc or max(processors[1:]) < nproc)
                              # numbers all different (a session numbers its buffers in one
                              # count): no pair repeated, found without a pair made per buffer
                              and (len(set(sequences[1:])) == len(index) - 1
                                   or len(set(zip(processors[1:], sequences[1:]))) == len(index) - 1)):
            return          # nothing to report: whole columns compared, no step per buffer
        seen: dict[tuple[int, int], int] = {}
        for i in range(1, len(index)):             # buffer 0, the header buffer, differs
            at = offsets[i]
            if saved[i] != filled[i] and not_a_buffer_header(info := index[i]) is None:
                # (a junk header is reported where the buffer is read: no record is)
                self._issue(at + _SAVED_OFFSET,
                            f"buffer {i}: expected SavedOffset and FilledBytes to agree, found "
                            f"{saved[i]:#x} and {filled[i]:#x}; {_read_up_to(info)}")
            if nproc and processors[i] >= nproc:
                self._issue(at + _PROCESSOR,
                            f"buffer {i}: expected a processor below NumberOfProcessors "
                            f"{nproc}, found {processors[i]}; read as its own stream")
            key = (processors[i], sequences[i])
            if key in seen:
                self._issue(at + _SEQUENCE,
                            f"buffer {i}: expected a SequenceNumber not used before on "
                            f"processor {key[0]}, found {key[1]} again (buffer {seen[key]}); "
                            f"both are read")
            else:
                seen[key] = i

    def unclean_stop(self) -> int | None:
        """None if the session stopped cleanly (TRACE_LOGFILE_HEADER.EndTime set, see
        docs/unclean-stop.md) or the header is damaged; otherwise an estimate, in ms, of how
        much of the end may be missing: each processor's buffer still in memory covered
        about as long as its last written buffer did (the time from the flush before it),
        and the longest such span is given. -1 if no data buffer was written at all."""
        h = self.header
        if not h.valid or h.end_time:
            return None
        index = self.buffer_index()
        if len(index) < 2:
            return -1
        to_filetime = TimeConverter(h).to_filetime
        previous: dict[int, int] = {}
        span = 0
        for processor, flushed in sorted(zip(index.column("processor")[1:],
                                             index.column("timestamp")[1:]),
                                         key=lambda pair: pair[1]):
            when = to_filetime(flushed)
            span = max(span, when - previous.get(processor, h.start_time))
            previous[processor] = when
        return -(-span // 10_000)                 # 100 ns ticks -> ms, rounded up

    def _locate_fixed(self, index: BufferIndex, stride: int) -> None:
        """Uncompressed files: buffer i sits at i * BufferSize whatever its header says.
        With a file descriptor the regular buffers are read in C (``FixedIndexReader``; one
        call for an undamaged file: a Python step and a read call per buffer cost more than
        the rest of the index); each buffer it stops at is judged here, as every buffer of
        a file object is."""
        reader = None
        if self._fd is not None and self.file_size >= stride:
            reader = FixedIndexReader(self._fd, self.file_size, stride,
                                      min(self.file_size // stride, _INDEX_CHUNK))
        located: list[tuple[int, int, bytes]] = []   # judged here, not yet in index
        offset = 0
        while offset < self.file_size:
            if reader is not None and self.file_size - offset >= stride:
                index.extend_headers(located)
                located.clear()
                count, offset, empty = reader.read(offset, len(index))
                index.extend_columns(reader.columns, count)
                self.stats.empty_buffers += empty
                if count or empty:
                    continue            # read on from there (a full chunk, or a buffer for Python)
            n = len(index) + len(located)
            raw = self._read_at(offset, BUFFER_HEADER_SIZE)
            size = min(stride, self.file_size - offset)
            if len(raw) < BUFFER_HEADER_SIZE:
                self._issue(offset, f"expected a {BUFFER_HEADER_SIZE}-byte WMI_BUFFER_HEADER, "
                                    f"the file ends after {len(raw)} bytes")
                break
            if _ZERO_WINDOW.startswith(raw):
                # a never-written slot (preallocated/circular) is zeros throughout; records
                # after a zeroed header are a damaged buffer, skipped (its records are lost)
                first = self._read_at(offset + BUFFER_HEADER_SIZE, _U32)
                if first.strip(b"\0") and first != b"\xff" * len(first):
                    self.stats.unreadable_buffers += 1
                    self._zeroed_slots += 1
                    self._issue(offset, f"expected a WMI_BUFFER_HEADER before the records at "
                                        f"{offset + BUFFER_HEADER_SIZE:#x}, found zeros; the "
                                        f"buffer is skipped")
                else:
                    self.stats.empty_buffers += 1
                offset += stride
                continue
            located.append((offset, size, raw))
            declared = _buffer_size_of(raw)
            # (buffer 0's size was judged choosing the layout; the C index takes it whatever
            # it says, so buffers inside it are looked for by neither path)
            inside = (self._buffers_inside(offset, size, declared)
                      if n and BUFFER_HEADER_SIZE < declared < size else 0)
            if inside:
                self._skipped_inside += inside
                self.stats.unreadable_buffers += inside
            if n and declared != stride:
                lost = (f": {inside} buffer{'s' if inside > 1 else ''} of {declared:#x} bytes "
                        f"inside it, {size - declared} bytes from {offset + declared:#x}, are "
                        f"skipped" if inside else "")
                self._issue(offset + _BUFFER_SIZE,
                            f"buffer {n}: expected BufferSize {stride:#x} (the session "
                            f"buffer size), found {declared:#x}; read as {stride:#x} bytes{lost}")
            if size < stride:
                self._issue(offset, f"buffer {n} truncated: expected {stride} bytes, "
                                    f"the file ends after {size}")
            offset += stride
        index.extend_headers(located)

    def _buffers_inside(self, offset: int, size: int, declared: int) -> int:
        """How many buffer headers saying BufferSize ``declared`` sit at multiples of it
        inside the ``size`` bytes read as one buffer from ``offset`` (a stride larger than
        the buffers' own would skip them)."""
        data = self._read_at(offset, size)
        # compressed or not: either is a buffer the stride steps over
        return sum(self._is_buffer_of(offset + at, data[at:at + BUFFER_HEADER_SIZE], declared,
                                      uncompressed=False)
                   for at in range(declared, len(data) - BUFFER_HEADER_SIZE + 1, declared))

    def _plausible_packed(self, offset: int, raw: bytes) -> bool:
        if len(raw) < BUFFER_HEADER_SIZE:
            return False
        size, saved, sequence, processor, filled, flag, kind = _PLAUSIBLE.unpack_from(raw)
        used = max(saved, filled)
        limit = max(self.buffer_stride, BUFFER_HEADER_SIZE) if self.header.valid else MAX_BUFFER_SIZE
        nproc = self.header.number_of_processors or 4096
        return (BUFFER_HEADER_SIZE <= size <= MAX_BUFFER_SIZE
                and offset + size <= self.file_size
                and BUFFER_HEADER_SIZE <= used <= max(limit, size)
                and kind <= 8 and not flag & ~0x7F
                and (processor & ETL.ETW_PROCESSOR_INDEX_MASK) < nproc
                and sequence >= 0)

    def _only_size_damaged(self, offset: int, raw: bytes, logger_id: int) -> bool:
        """Is ``raw`` (read at ``offset``) a plausible buffer header of the session but for its
        BufferSize (0, out of range or past the end of the file)?"""
        if len(raw) < BUFFER_HEADER_SIZE or _logger_id_of(raw) != logger_id:
            return False
        sized = bytearray(raw)
        BUFFER_HEADER.pack_into(sized, BufferSize=BUFFER_HEADER_SIZE)
        return self._plausible_packed(offset, sized)

    def _preallocated(self) -> bool:
        """EVENT_TRACE_FILE_MODE_PREALLOCATE: the file is made its maximum size when the
        session starts, and a session that did not stop leaves the never-written rest as
        zeros."""
        return bool(self.header.valid
                    and self.header.log_file_mode & ETL.EVENT_TRACE_FILE_MODE_PREALLOCATE)

    def _resync(self, start: int, end: int | None = None,
                logger_id: int | None = None) -> tuple[int | None, bool]:
        """Next offset >= start holding a plausible buffer header whole before ``end`` (None:
        none before it; default: the end of the file), of the session ``logger_id`` if given,
        and whether no header was found because the file is zeros from start to there. A window of zeros is passed with one
        comparison; in the others, candidates are picked in C by the shape of the header's fields
        (``next_header_shape``: zeros or garbage pass at memory speed), then checked whole
        here. Each byte is read once, for the search and the zero check together (windows
        overlap by a header, so none across a border is missed)."""
        pos, zeros = start, True
        end = self.file_size if end is None else min(end, self.file_size)
        while True:
            window = self._read_at(pos, max(min(_RESYNC_WINDOW + BUFFER_HEADER_SIZE, end - pos), 0))
            if not _ZERO_WINDOW.startswith(window):     # (a header is not all zeros)
                zeros = False
                at = next_header_shape(window, 0)
                while at >= 0:
                    head = window[at:at + BUFFER_HEADER_SIZE]
                    if (self._plausible_packed(pos + at, head)
                            and (logger_id is None or _logger_id_of(head) == logger_id)):
                        return pos + at, False
                    at = next_header_shape(window, at + 1)
            if pos + len(window) >= end:
                return None, zeros
            pos += _RESYNC_WINDOW

    def _locate_packed(self, index: BufferIndex) -> None:
        """Compressed files: buffers back to back, each as long as its own BufferSize. The
        headers found go into ``index`` a chunk at a time: kept as (offset, size, header
        bytes) until then, about 550 bytes a buffer, a file of 400,000 tiny buffers held
        220 MB before its index was made."""
        found: list[tuple[int, int, bytes]] = []
        offset, n = 0, 0
        # LoggerId -> buffers saying it, of the first ``counted`` located (counted at damage
        # only: nothing per buffer of an undamaged file)
        loggers: dict[int, int] = {}
        counted = 0
        while offset < self.file_size:
            if len(found) >= _INDEX_CHUNK:
                index.extend_headers(found)
                found.clear()
            raw = self._read_at(offset, BUFFER_HEADER_SIZE)
            if len(raw) < BUFFER_HEADER_SIZE:
                self._issue(offset, f"expected a {BUFFER_HEADER_SIZE}-byte WMI_BUFFER_HEADER, "
                                    f"the file ends after {len(raw)} bytes")
                break
            bh = BUFFER_HEADER.unpack(raw)
            size = bh.BufferSize
            if n == 0 and not (max(bh.SavedOffset, bh.FilledBytes) <= size <= self.file_size):
                nxt, _ = self._resync(offset + BUFFER_HEADER_SIZE)
                self._issue(offset, f"buffer 0: expected BufferSize covering its events and inside "
                                    f"the file, found {size:#x}; next buffer found at "
                                    f"{nxt if nxt is not None else self.file_size:#x}")
                size = (nxt if nxt is not None else self.file_size) - offset
                bh = None
            if n == 0 or self._plausible_packed(offset, raw):
                if size > self.file_size - offset:
                    self._issue(offset, f"buffer {n} truncated: its header says {size} "
                                        f"bytes, the file ends after {self.file_size - offset}")
                    size = self.file_size - offset
                if size < BUFFER_HEADER_SIZE:
                    size = BUFFER_HEADER_SIZE
                found.append((offset, size, raw))
                n += 1
                offset += size
                continue
            # the session's buffers all say one LoggerId: a header found in the search must too
            counted = _count_loggers(index, found, loggers, counted)
            usual = max(loggers, key=loggers.__getitem__)
            if self._only_size_damaged(offset, raw, usual):
                # the buffer ends where the next buffer header is, searched for past its own
                # header (bytes of which can look like a header)
                nxt, _ = self._resync(offset + BUFFER_HEADER_SIZE, logger_id=usual)
                if nxt is not None or not BUFFER_HEADER_SIZE <= size <= MAX_BUFFER_SIZE:
                    end = nxt if nxt is not None else self.file_size
                    self._issue(offset + _BUFFER_SIZE,
                                f"buffer {n}: expected BufferSize {BUFFER_HEADER_SIZE}.."
                                f"{MAX_BUFFER_SIZE}, inside the file, found {size:#x}; "
                                + (f"the next buffer header is at {end:#x}" if nxt is not None
                                   else "no buffer header follows")
                                + f": read as {end - offset} bytes")
                    found.append((offset, end - offset, raw))
                    n += 1
                    offset = end
                    continue
            if offset + size > self.file_size and BUFFER_HEADER_SIZE <= size <= MAX_BUFFER_SIZE:
                # a cut-off last buffer: keep what is there
                self._issue(offset, f"buffer {n} truncated: its header says {size} bytes, "
                                    f"the file ends after {self.file_size - offset}")
                found.append((offset, self.file_size - offset, raw))
                break
            nxt, zeros_to_end = self._resync(offset + 1, logger_id=usual)
            if zeros_to_end and _ZERO_WINDOW.startswith(raw) and self._preallocated():
                break                   # the never-written rest: the file ends here, quietly
            # what lies here is counted as one buffer whose records are skipped
            self._junk_headers += 1
            self.stats.unreadable_buffers += 1
            self._issue(offset, f"expected a WMI_BUFFER_HEADER (BufferSize {BUFFER_HEADER_SIZE}.."
                                f"{MAX_BUFFER_SIZE}, inside the file; used size at most the "
                                f"session buffer size); found BufferSize {size}: "
                                + (f"skipped {nxt - offset} bytes to the next buffer at {nxt:#x}"
                                   if nxt is not None else "no further buffer found"))
            if nxt is None:
                break
            offset = nxt
        index.extend_headers(found)

    # -- reading buffers -------------------------------------------------------------------
    def read_buffer(self, info: BufferInfo, last_timestamp: int = 0) -> Buffer:
        """Read one located buffer and decode it (``buffers.decode``: expansion, record range);
        its problems are in ``Buffer.issues`` until ``account`` adds them to ``errors``."""
        raw = self._read_at(info.file_offset, info.size_on_disk)
        if info.compressed and not self.compressed and not_a_buffer_header(info) is None:
            # fixed-size buffers of an uncompressed file cannot be compressed: damage
            self._issue(info.file_offset + _BUFFER_FLAG,
                        f"buffer {info.index}: BufferFlag {info.flags:#x} says compressed in an "
                        f"uncompressed file; read as uncompressed")
            info = replace(info, compressed=False)
        whole = _buffer_size_of(raw) if self.compressed else self.buffer_stride
        cut = len(raw) < whole and info.file_offset + len(raw) >= self.file_size
        return decode(raw, info, source=self.name, pointer_size=self.pointer_size,
                      last_timestamp=last_timestamp, cut=cut,
                      start=self.header_record_end if info.index == 0 else None,
                      limit=self.buffer_stride if self.header.valid else MAX_BUFFER_SIZE,
                      expandable=self.compression_format not in UNSUPPORTED_COMPRESSION)

    def iter_buffers(self) -> Iterator[Buffer]:
        """Every buffer in file order, read one at a time."""
        for info in self.buffer_index():
            yield self.read_buffer(info)

    def iter_records(self) -> Iterator[Record]:
        """Every record in file order (buffer by buffer, no reordering; decoder.engine)."""
        from .engine import FileSource, record_view

        for records in FileSource(self).in_file_order(record_view):
            yield from records

    def scan(self) -> ReadStats:
        """Walk every buffer counting records by kind, without making record objects."""
        from .engine import FileSource, count_view

        for _ in FileSource(self).in_file_order(count_view):
            pass
        return self.stats


def _count_loggers(index: BufferIndex, found: list[tuple[int, int, bytes]],
                   loggers: dict[int, int], counted: int) -> int:
    """Add to ``loggers`` the LoggerId of each located buffer (``index``'s, then ``found``'s)
    past the first ``counted``; returns how many are counted now."""
    for logger in index.column("logger_id")[counted:]:
        loggers[logger] = loggers.get(logger, 0) + 1
    for _offset, _size, raw in found[max(counted - len(index), 0):]:
        logger = _logger_id_of(raw)
        loggers[logger] = loggers.get(logger, 0) + 1
    return len(index) + len(found)


def _logger_id_of(raw: bytes) -> int:
    """WMI_BUFFER_HEADER.ClientContext.LoggerId of header bytes."""
    return int.from_bytes(raw[_LOGGER_ID:_LOGGER_ID + 2], "little")


def _a_buffer_size(size: int) -> bool:
    """Is ``size`` a BufferSize a buffer header of a file says (buffer 0's is a whole buffer,
    or trimmed to whole sectors; at most MAX_BUFFER_SIZE)?"""
    return BUFFER_HEADER_SIZE < size <= MAX_BUFFER_SIZE and size % 8 == 0


def _a_buffer_header(raw: bytes) -> bool:
    """Do the bytes ``raw`` have a buffer header's shape: a BufferSize in range (a compressed
    buffer's is its own size on disk, any number), a BufferType below ETW_BUFFER_TYPE_MAXIMUM,
    known BufferFlag bits, and events ending past the header and inside a buffer?"""
    if len(raw) < BUFFER_HEADER_SIZE:
        return False
    size, saved, _seq, _proc, filled, flag, kind = _PLAUSIBLE.unpack_from(raw)
    return (BUFFER_HEADER_SIZE < size <= MAX_BUFFER_SIZE and kind < ETL.ETW_BUFFER_TYPE_MAXIMUM
            and not flag & ~0x7F and BUFFER_HEADER_SIZE <= max(saved, filled) <= MAX_BUFFER_SIZE)


def _foreign_format(head: bytes) -> str:
    """The format ``head``, a file's first bytes, is the signature of, in plain words, or ""
    (the formats most often given as a trace by mistake: the image or PDB beside it)."""
    if head[:2] == b"MZ":
        return "a PE image (MZ)"
    if head[:4] == b"\x7fELF":
        return "an ELF image"
    if head[:10] == b"Microsoft ":
        from wpptrace.tmf.pdb.msf import MSF2_MAGIC, MSF7_MAGIC, MSFZ_MAGIC   # (only then)
        for magic in (MSF7_MAGIC, MSF2_MAGIC, MSFZ_MAGIC):
            if head.startswith(magic):
                return f"a PDB ({magic[:magic.index(13)].decode()})"
    return ""


def _saved_offset_of(raw: bytes) -> int:
    return int.from_bytes(raw[_SAVED_OFFSET:_SAVED_OFFSET + _U32], "little")


def _filled_of(raw: bytes) -> int:
    return int.from_bytes(raw[_FILLED:_FILLED + _U32], "little")


def _buffer_size_of(raw: bytes) -> int:
    """WMI_BUFFER_HEADER.BufferSize of header bytes (of what is there of it, if the file
    ends first)."""
    return int.from_bytes(raw[_BUFFER_SIZE:_BUFFER_SIZE + _U32], "little")


def _stride_taken(size: int, reason: str, found: int,
                  field: str = "TRACE_LOGFILE_HEADER.BufferSize", reading: str = "") -> str:
    """The problem said when a damaged buffer size is outvoted: ``size`` is read (for
    ``reason``) where ``field`` says ``found``."""
    return (f"expected {field} {size:#x} ({reason}), found {found:#x}; "
            + (reading or f"reading {size:#x}-byte buffers"))


def _read_up_to(info: BufferInfo) -> str:
    """Where the events of a buffer whose SavedOffset and FilledBytes disagree are read up
    to, as ``buffers.decode`` reads them: the larger, but never past the buffer's end (a
    junk value would name an offset in no buffer)."""
    if info.compressed:
        return "expanded to the larger, its events read up to the end"
    stop = records_stop(info, info.size_on_disk)
    if stop is None:
        return f"events read up to the buffer's end, {info.size_on_disk:#x}"
    return f"events read up to {stop:#x}"


def unclean_stop_text(missing_ms: int) -> str:
    """What to tell about a file whose session never stopped (``EtlFile.unclean_stop``)."""
    if missing_ms < 0:
        return "the session did not stop cleanly: no data buffer was written, its events are missing"
    return f"the session did not stop cleanly: the last {missing_ms} ms may be missing"


def _align8(size: int) -> int:
    return (size + 7) & ~7


def _names_end(body: bytes, start: int, end: int) -> int | None:
    """Offset just past the two NUL-terminated UTF-16LE names (LoggerName, LogFileName) a
    log-file header record's payload holds from ``start``; None if either has no NUL before
    ``end``."""
    pos = start
    for _name in range(2):
        i = body.find(b"\0\0", pos, end)
        while i >= 0 and (i - pos) & 1:
            i = body.find(b"\0\0", i + 1, end)
        if i < 0:
            return None
        pos = i + 2
    return pos


def _chains_to_events_end(body: bytes, start: int, events_end: int) -> bool:
    """Do records follow each other cleanly from ``start`` to the end of the events: every
    record whole, the last one ending at the end, or the rest all 0xFF fill (a -1 marker with
    anything but fill after it is damage, not the end of the events)."""
    if start > events_end:
        return False
    _records, walk = walk_records(body, start, events_end, 0, collect=False)
    tail = body[walk.end_offset:events_end]
    return not walk.errors and (len(tail) < _U32 or tail.count(0xFF) == len(tail))


def _utf16z(data: bytes) -> tuple[str, bytes]:
    """One NUL-terminated UTF-16LE string from the front of data, and the rest."""
    # the first NUL pair at an even offset, found in C; decoded by the codec's own function
    # (bytes.decode would look the codec up by name and import its module)
    i = data.find(b"\0\0")
    while i >= 0 and i & 1:
        i = data.find(b"\0\0", i + 1)
    if i < 0:
        return utf_16_le_decode(data[: len(data) & ~1], "replace", True)[0], b""
    return utf_16_le_decode(data[:i], "replace", True)[0], data[i + 2:]
