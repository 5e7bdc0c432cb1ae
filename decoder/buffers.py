"""One ETW buffer, whatever its source: its header facts, expansion, record ranges and damage.

Every buffer the decoder reads (from a file, a live session or a buffer stream) goes through
``decode``: a compressed buffer is expanded here and only here (MS-XCA Plain LZ77, one size
cap), the record range is fixed (FilledBytes / SavedOffset, with the records a damaged
FilledBytes leaves past its end), and the C walker's problems are kept as ``DecodeIssue``s
with file offsets. The facts every consumer asks of a buffer or a record are answered here
once: is this the log-file header record (``starts_with_logfile_header``), which processor
(``processor_of``), what pointer size a message's ``%p`` arguments have
(``message_pointer_size``).
"""
from __future__ import annotations

from itertools import repeat
from operator import itemgetter

from wpptrace._fieldclass import field, fieldclass

from ._hazmat import BUFFER_HEADER, ETL, SYSTEM_HEADER, chain_ok, decompress_into

from .records import (_F_TS, KINDS, BufferContext, DecodeIssue, Record, WalkStats, walk,
                      walk_issues)
from .xpress import XPRESS_ERRORS

BUFFER_HEADER_SIZE = BUFFER_HEADER.size
#: the largest buffer ETW writes (MAX_ETW_BUFFER_SIZE): anything bigger is damage, not data
MAX_BUFFER_SIZE = ETL.MAX_ETW_BUFFER_SIZE_KB * 1024
#: a compressed buffer expands to at most this many times its size in the file (header
#: included): the real ones reach 13.4x (net.4.5.2.x64/x86.etl; 4.5x typical, 1.2x in
#: SelfDescribingSingleEvent.etl). One past it is a crafted "decompression bomb": skipped,
#: so the bytes held at once (one buffer per processor stream) stay below this many times
#: the file's size, whatever its buffers claim
MAX_EXPANSION = 64
#: issues kept per source; further ones are only counted (ReadLog.issues_dropped)
MAX_ISSUES = 10_000

_SAVED_OFFSET = BUFFER_HEADER.offset("SavedOffset")
#: the ETW_BUFFER_FLAG_* bits a WMI_BUFFER_HEADER holds today, and the count of its
#: BufferTypes (ETW_BUFFER_TYPE_MAXIMUM: every type is below it)
_KNOWN_BUFFER_FLAGS = (ETL.ETW_BUFFER_FLAG_FLUSH_MARKER | ETL.ETW_BUFFER_FLAG_EVENTS_LOST
                       | ETL.ETW_BUFFER_FLAG_BUFFER_LOST | ETL.ETW_BUFFER_FLAG_RTBACKUP_CORRUPT
                       | ETL.ETW_BUFFER_FLAG_RTBACKUP | ETL.ETW_BUFFER_FLAG_PROC_INDEX
                       | ETL.ETW_BUFFER_FLAG_COMPRESSED)
_BUFFER_TYPES = ETL.ETW_BUFFER_TYPE_MAXIMUM
_FILLED_BYTES = BUFFER_HEADER.offset("FilledBytes")
#: what ``expand`` reads of a compressed buffer's header (a plain tuple: no named tuple class
#: made per buffer)
_EXPANDED_SIZE = BUFFER_HEADER.some("BufferSize", "SavedOffset", "FilledBytes")
_SYSTEM_HEADER_SIZE = SYSTEM_HEADER.size
_TIMESTAMP = itemgetter(_F_TS)      # etlrd_record.timestamp in a walker tuple
_POINTER_FLAGS = ETL.TRACE_MESSAGE_POINTER64 | ETL.TRACE_MESSAGE_POINTER32


def processor_of(index: int, buffer_flag: int) -> int:
    """ETW_BUFFER_CONTEXT: ProcessorIndex with ETW_BUFFER_FLAG_PROC_INDEX, else the old
    {ProcessorNumber u8, Alignment u8} form (GetEventProcessorIndex in evntcons.h)."""
    if buffer_flag & ETL.ETW_BUFFER_FLAG_PROC_INDEX:
        return index & ETL.ETW_PROCESSOR_INDEX_MASK
    return index & 0xFF


def message_pointer_size(flags: int, default: int) -> int:
    """Pointer size of a TraceMessage's arguments: TRACE_MESSAGE_POINTER64/32 in its
    MessageFlags, else the log file's PointerSize (``default``)."""
    if flags & _POINTER_FLAGS:
        return 8 if flags & ETL.TRACE_MESSAGE_POINTER64 else 4
    return default


@fieldclass
class BufferInfo:
    """A located buffer: its WMI_BUFFER_HEADER facts and where it sits (index and file
    offset -1 for a buffer that does not come from a file)."""

    index: int
    file_offset: int
    size_on_disk: int
    compressed: bool
    sequence: int
    processor: int
    logger_id: int
    flags: int
    buffer_type: int
    timestamp: int
    saved_offset: int
    filled_bytes: int
    state: int

    @property
    def is_header(self) -> bool:
        return self.index == 0


def not_a_buffer_header(info: BufferInfo) -> str | None:
    """What says these bytes are no WMI_BUFFER_HEADER (a BufferType no buffer ETW writes has:
    junk, not a damaged field), or None. A BufferFlag bit unknown today is no such sign alone
    (a newer Windows may add one, and every buffer of its files would be lost): it counts
    only beside a BufferType out of range."""
    if info.buffer_type >= _BUFFER_TYPES:
        return (f"expected a WMI_BUFFER_HEADER (BufferType below {_BUFFER_TYPES}, BufferFlag "
                f"bits in {_KNOWN_BUFFER_FLAGS:#x}), found BufferType {info.buffer_type:#x} and "
                f"BufferFlag {info.flags:#x}")
    return None


def buffer_info(raw, index: int = -1, file_offset: int = -1, size: int | None = None) -> BufferInfo:
    """The BufferInfo of raw buffer bytes (at least the WMI_BUFFER_HEADER)."""
    bh = BUFFER_HEADER.unpack(raw)
    return BufferInfo(
        index=index, file_offset=file_offset, size_on_disk=len(raw) if size is None else size,
        compressed=bool(bh.BufferFlag & ETL.ETW_BUFFER_FLAG_COMPRESSED),
        sequence=bh.SequenceNumber,
        processor=processor_of(bh.ProcessorIndex, bh.BufferFlag),
        logger_id=bh.LoggerId, flags=bh.BufferFlag, buffer_type=bh.BufferType,
        timestamp=bh.TimeStamp, saved_offset=bh.SavedOffset, filled_bytes=bh.FilledBytes,
        state=bh.State)


@fieldclass
class Buffer(BufferInfo):
    """A decoded buffer: ``data`` is the whole (expanded) buffer, header included; an
    expanded buffer's header says so (compressed flag cleared, BufferSize = its length)."""

    data: bytes = b""
    records_end: int = BUFFER_HEADER_SIZE    # where the events end inside data
    #: where the walk starts: past the header, or past a damaged log-file header record that
    #: is no event (``EtlFile.header_record_end``), which the walk counts as one damaged record
    records_start: int = BUFFER_HEADER_SIZE
    pointer_size: int = 8
    issues: list[DecodeIssue] = field(default_factory=list)
    stats: WalkStats | None = None
    unreadable: bool = False                 # no buffer header, or compressed in a format
                                             # we cannot expand: its records are skipped
    origin: object = None                    # what a live source handed out for it
    _records: list[Record] | None = None
    _tuples: list[tuple] | None = None
    _last_timestamp: int = 0
    _source: str = ""
    _read_issues: int = -1                   # issues found reading it (before any walk)
    #: where FilledBytes/SavedOffset say the events end when the file ends before that (a
    #: truncated file: the records past its end are lost), else 0
    events_cut_at: int = 0
    #: the expansion ended before its LZ77 stream did (a damaged stream, or one longer than
    #: the expanded size): the records past the end are lost
    expansion_cut: bool = False
    #: (start, end, last timestamp before start) of each record range walk() found: the events
    #: up to FilledBytes, plus the tail past it when records chain cleanly to the buffer end.
    ranges: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def context(self) -> BufferContext:
        return BufferContext(memoryview(self.data), self.index, self.file_offset,
                             self.processor, self.logger_id, self.pointer_size, self.compressed)

    def tuples(self) -> list[tuple]:
        """The walker's flat record tuples (``records._F_*``), in buffer order (walked once)."""
        if self._tuples is None:
            self._tuples = self.walk(collect=True)
        return self._tuples

    def records(self) -> list[Record]:
        """The buffer's records in buffer order (walked once, then cached)."""
        if self._records is None:
            self._records = list(map(Record, self.tuples(), repeat(self.context)))
        return self._records

    def sort_keys(self) -> list[int]:
        """The records' timestamps (carried forward where absent), for merging by time."""
        return list(map(_TIMESTAMP, self.tuples()))

    def walk(self, collect: bool = True, walker=None) -> list[tuple]:
        """Run the C walker (``collect=False``: count only); sets ``stats`` and ``issues``.
        ``walker``, if given, walks each record range in place of ``records.walk`` (the same
        arguments and result): a view that makes its own rows (decoder.wpp_rows) walks each
        buffer once."""
        run = walk if walker is None else walker
        if self._read_issues < 0:
            self._read_issues = len(self.issues)
        else:                # walked again (a count, then rows): its problems are said once
            del self.issues[self._read_issues:]
        start = self.records_start
        tuples, self.stats = run(self.data, start, self.records_end, self._last_timestamp,
                                 collect)
        self.ranges = [(start, self.records_end, self._last_timestamp)]
        self._add_issues(self.stats)
        if start > BUFFER_HEADER_SIZE:      # the damaged header record (reported on opening)
            self.stats.errors += 1
            self.stats.skipped_bytes += start - BUFFER_HEADER_SIZE
        if self.events_cut_at and self._lost_past_cut():
            self.stats.errors += 1          # the records past the file's end: one damaged record
        elif self.expansion_cut and not self.stats.ends_damaged:
            self.stats.errors += 1          # the records past the stream's damage: one, unless
                                            # the walk counted one cut there
        # records past FilledBytes: only if they chain cleanly to the end of the buffer
        # (a damaged FilledBytes); the real tail is 0xFF fill or zeros, which never chains
        tail = (self.records_end + 7) & ~7
        if (self.stats.end_offset >= self.records_end and tail + 8 <= len(self.data)
                and chain_ok(self.data, len(self.data), tail)):
            self.issues.append(self._issue_at(
                _FILLED_BYTES, f"{self._where}expected the events to end at FilledBytes "
                               f"{self.records_end:#x}, but valid records follow up to the "
                               f"buffer end"))
            self.ranges.append((tail, len(self.data), self.stats.last_timestamp))
            more, extra = run(self.data, tail, len(self.data), self.stats.last_timestamp, collect)
            self._add_issues(extra)
            for i, n in enumerate(extra.by_kind):
                self.stats.by_kind[i] += n
            self.stats.errors += extra.errors
            self.stats.last_timestamp = extra.last_timestamp
            if extra.max_timestamp is not None and (self.stats.max_timestamp is None
                                                    or extra.max_timestamp > self.stats.max_timestamp):
                self.stats.max_timestamp = extra.max_timestamp
            tuples.extend(more)
        return tuples

    def _lost_past_cut(self) -> bool:
        """Did the file's end cut off records the walk has not counted? Not when the walk
        ended skipping damage up to the cut (a record cut in two: counted once), nor when
        it passed the cut whole (inside the last record's 8-byte alignment) and too few
        bytes are missing to hold another record."""
        st = self.stats
        if st.ends_damaged:
            return False
        return st.end_offset < self.records_end or self.events_cut_at - self.records_end >= 8

    @property
    def _where(self) -> str:
        """What a walk issue's message starts with: the buffer, unless ``_issue_at`` names
        it (a compressed buffer of a file: with its file offset)."""
        if self.index < 0 or (self.compressed and self.file_offset >= 0):
            return ""
        return f"buffer {self.index}: "

    def _issue_at(self, offset: int, message: str) -> DecodeIssue:
        if self.file_offset < 0:
            return DecodeIssue(self._source, offset, message)
        if self.compressed:
            return DecodeIssue(self._source, self.file_offset,
                               f"buffer {self.index} (compressed, at file offset "
                               f"{self.file_offset:#x}): decompressed offset {offset:#x}: {message}")
        return DecodeIssue(self._source, self.file_offset + offset, message)

    def _add_issues(self, stats: WalkStats) -> None:
        for issue in walk_issues(stats, self._source, 0, self._where):
            self.issues.append(self._issue_at(issue.offset, issue.message))


def expand(raw, *, limit: int = MAX_BUFFER_SIZE, where: str = "",
           base: int = 0, source: str = "") -> tuple[bytes | None, list[DecodeIssue], bool]:
    """A compressed buffer (header, then its MS-XCA Plain LZ77 payload) as the plain buffer
    it stands for, the problems met (issue offsets are ``base`` + offset in ``raw``), and
    whether the expansion ended before the stream did (its records past the end are lost).

    The expanded size is the larger of SavedOffset and FilledBytes (equal in every real
    buffer: one damaged low would lose the records past it), at most ``limit`` (the
    session's buffer size when it is known); a damaged stream keeps the bytes decoded before
    the damage. A stream that expands past MAX_EXPANSION times the buffer's size (``raw``: as
    in the file) is no real buffer: it is decoded no further and None is returned in place of
    the buffer (its records are skipped). The header of the result says what it is:
    compressed flag cleared, BufferSize its length."""
    issues: list[DecodeIssue] = []
    view = memoryview(raw)
    stored, saved, filled = _EXPANDED_SIZE.unpack_from(view)
    size, said = (saved, "SavedOffset") if saved >= filled else (filled, "FilledBytes")
    limit = max(min(limit, MAX_BUFFER_SIZE), BUFFER_HEADER_SIZE)
    if size > limit:
        bound = "MAX_ETW_BUFFER_SIZE" if limit == MAX_BUFFER_SIZE else "the session's BufferSize"
        issues.append(DecodeIssue(source, base + (_SAVED_OFFSET if said == "SavedOffset"
                                                  else _FILLED_BYTES),
                                  f"{where}expected {said} (the expanded size) at most "
                                  f"{limit:#x} ({bound}), found {size:#x}; decoding stops there"))
    expected = max(min(size, limit) - BUFFER_HEADER_SIZE, 0)
    # decoded no further than a real buffer's expansion: the bytes made stay proportional
    # to the bytes read, whatever SavedOffset says
    most = max(MAX_EXPANSION * len(view), BUFFER_HEADER_SIZE)
    room = min(expected, most - BUFFER_HEADER_SIZE)
    out = bytearray(BUFFER_HEADER_SIZE + room)
    out[:BUFFER_HEADER_SIZE] = view[:BUFFER_HEADER_SIZE]
    rc, produced, consumed = decompress_into(view[BUFFER_HEADER_SIZE:], out,
                                             BUFFER_HEADER_SIZE, room)
    if room < expected and rc == ETL.ETLRD_XPRESS_OVERFLOW:
        issues.append(DecodeIssue(source, base,
                                  f"{where}expected a compressed buffer to expand to at most "
                                  f"{MAX_EXPANSION} times its {len(view)} bytes in the file, "
                                  f"{most:#x} bytes; it expands past that ({said} says "
                                  f"{size:#x}): the buffer is skipped"))
        return None, issues, False
    # a buffer whose own BufferSize is not its size in the file (damaged, its end taken from
    # the next buffer header found) may hold other bytes after its whole stream
    whole = produced == expected and (not rc or (rc == ETL.ETLRD_XPRESS_OVERFLOW
                                                 and stored != len(view)))
    if not whole:
        why = XPRESS_ERRORS.get(rc, "stream ended early") if rc else "stream ended early"
        issues.append(DecodeIssue(source, base + BUFFER_HEADER_SIZE + consumed,
                                  f"{where}expected an LZ77 stream decoding to {expected} bytes "
                                  f"({said} {size:#x} - {BUFFER_HEADER_SIZE:#x}); {why} "
                                  f"after {produced} bytes; records up to there are kept"))
        del out[BUFFER_HEADER_SIZE + produced:]
    flag = BUFFER_HEADER.unpack(out).BufferFlag & ~ETL.ETW_BUFFER_FLAG_COMPRESSED
    BUFFER_HEADER.pack_into(out, BufferSize=len(out), BufferFlag=flag)
    return bytes(out), issues, not whole


def records_stop(info: BufferInfo, size: int) -> int | None:
    """Where the records of a buffer of ``size`` bytes end: the larger of SavedOffset and
    FilledBytes (they may disagree); None when that is past its end (a junk value naming an
    offset in no buffer: the records are read up to the end)."""
    stop = max(info.saved_offset, info.filled_bytes)
    return stop if stop <= size else None


def decode(raw, info: BufferInfo, *, source: str, pointer_size: int, last_timestamp: int = 0,
           limit: int = MAX_BUFFER_SIZE, expandable: bool = True,
           end: int | None = None, start: int | None = None, cut: bool = False) -> Buffer:
    """``raw`` (the buffer as stored or received) as a Buffer ready to walk.

    A compressed buffer (never the header buffer) is expanded (``limit``: see ``expand``);
    ``expandable=False`` means its compression format is not supported: only its header is
    kept and it is marked ``unreadable``, as is one that expands past MAX_EXPANSION times
    its size and a buffer whose header is junk (``not_a_buffer_header``). The events end at ``end`` if given, else at the
    larger of SavedOffset and FilledBytes (buffer 0 holds records past SavedOffset in real
    files), within the bytes there are. They start at ``start`` if given (a damaged
    log-file header record skipped), else right after the buffer header. ``cut``: the file
    ends inside this buffer (it is truncated): events said to run past its end are lost, and
    the walk counts them as one damaged record."""
    issues: list[DecodeIssue] = []
    where = f"buffer {info.index}: " if info.index >= 0 else ""
    base = max(info.file_offset, 0)
    unreadable, cut_at, expansion_cut = False, 0, False
    junk = not_a_buffer_header(info)
    if junk is not None:
        # its records would be read by what junk says of them: none is kept
        issues.append(DecodeIssue(source, base, f"{where}{junk}; its records are skipped"))
        data, stop, unreadable = bytes(raw[:BUFFER_HEADER_SIZE]), BUFFER_HEADER_SIZE, True
        info = BufferInfo(**{**info.__dict__, "compressed": False})
    elif info.compressed and not info.is_header:
        if expandable:
            data, issues, expansion_cut = expand(raw, limit=limit, where=where, base=base,
                                                 source=source)
        if expandable and data is not None:
            stop = len(data)
        else:
            data, stop, unreadable = bytes(raw[:BUFFER_HEADER_SIZE]), BUFFER_HEADER_SIZE, True
    else:
        data = raw if isinstance(raw, bytes) else bytes(raw)
        stop = records_stop(info, len(data))
        if stop is None:
            found = max(info.saved_offset, info.filled_bytes)
            if cut:
                cut_at = found
                issues.append(DecodeIssue(source, base + len(data),
                                          f"{where}expected the events to end at {found:#x} "
                                          f"(FilledBytes/SavedOffset), the file ends "
                                          f"{len(data):#x} bytes into the buffer; the events "
                                          f"past its end are lost"))
            elif len(data) == info.size_on_disk and not info.is_header:
                issues.append(DecodeIssue(source, base + _FILLED_BYTES,
                                          f"{where}expected FilledBytes/SavedOffset at most the "
                                          f"buffer size {info.size_on_disk:#x}, found {found:#x}"))
            stop = len(data)
    if end is not None:
        stop = min(end, len(data))
    begin = BUFFER_HEADER_SIZE if start is None or unreadable else min(start, stop)
    return Buffer(**info.__dict__, data=data, records_end=stop, records_start=begin,
                  pointer_size=pointer_size, events_cut_at=cut_at, expansion_cut=expansion_cut,
                  issues=issues, unreadable=unreadable, _last_timestamp=last_timestamp,
                  _source=source)


def is_logfile_header_record(data, at: int, end: int) -> bool:
    """Is data[at:] the log-file header record: a SYSTEM32/64 record of the EventTrace group,
    type 0 (HookId 0), no PEBS/PMC extension, whole before ``end``? ProcessTrace delivers it
    first, as the synthetic EventTraceGuid event."""
    if end - at < _SYSTEM_HEADER_SIZE or len(data) < end:
        return False
    version, header_type, flags, size, hook = _HEADER_MARKS.unpack_from(data, at)
    return (flags == ETL.TRACE_RECORD_MARKER_FIXED
            and header_type in (ETL.TRACE_HEADER_TYPE_SYSTEM32, ETL.TRACE_HEADER_TYPE_SYSTEM64)
            and hook == 0
            and not version & (ETL.TRACE_HEADER_PEBS_INDEX_FLAG | ETL.TRACE_HEADER_PMC_COUNTERS_MASK)
            and _SYSTEM_HEADER_SIZE <= size <= end - at)


#: what ``is_logfile_header_record`` reads: a plain tuple (making SYSTEM_HEADER's named tuple
#: class compiles code, 0.7 M instructions, and every run reads the header record)
_HEADER_MARKS = SYSTEM_HEADER.some("Version", "HeaderType", "Flags", "Size", "HookId")


def starts_with_logfile_header(buf: Buffer) -> bool:
    """Does this (header) buffer start with the log-file header record?"""
    return is_logfile_header_record(buf.data, BUFFER_HEADER_SIZE, buf.records_end)


def parse_buffer(data, pointer_size: int, *, header_buffer: bool, end: int | None = None,
                 source: str = "<buffer>") -> tuple[list[Record], list[DecodeIssue]]:
    """The records of one whole buffer, WMI_BUFFER_HEADER included (as stored: a compressed
    buffer is expanded), in buffer order, and the problems met (offsets in the buffer)."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    if len(view) < BUFFER_HEADER_SIZE:
        return [], [DecodeIssue(source, 0, f"buffer of {len(view)} bytes is shorter than its "
                                           f"{BUFFER_HEADER_SIZE}-byte WMI_BUFFER_HEADER")]
    info = buffer_info(view, 0 if header_buffer else -1, -1)
    buf = decode(view, info, source=source, pointer_size=pointer_size, end=end)
    return buf.records(), buf.issues


@fieldclass
class ReadStats:
    """Totals over everything read so far (what ``wpptrace dump`` summarises)."""

    buffers: int = 0
    compressed_buffers: int = 0
    empty_buffers: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    damaged: int = 0            # damaged records / spots skipped inside buffers
    unreadable_buffers: int = 0

    @property
    def records(self) -> int:
        return sum(self.by_kind.values())

    @property
    def skipped(self) -> int:
        return self.damaged + self.unreadable_buffers


class ReadLog:
    """What was read from one source (a file, a live session): the totals and the problems
    met, each problem once, at most MAX_ISSUES of them (the rest only counted)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.errors: list[DecodeIssue] = []
        self.issues_dropped = 0
        self.stats = ReadStats()
        self._seen_issues: set[tuple[int, str]] = set()
        self._counted = bytearray()         # per file buffer index: 1 once in the totals

    def _issue(self, offset: int, message: str) -> None:
        key = (offset, message)
        if key in self._seen_issues:
            return
        if len(self.errors) >= MAX_ISSUES:
            self.issues_dropped += 1     # a wrecked multi-GB file: keep memory bounded
            return
        self._seen_issues.add(key)
        self.errors.append(DecodeIssue(self.name, offset, message))

    def account(self, buf: Buffer) -> None:
        """Add a walked buffer to the totals and its problems to ``errors`` (a file buffer
        read twice counts once)."""
        for issue in buf.issues:
            self._issue(issue.offset, issue.message)
        index = buf.index
        if index >= 0:
            if index < len(self._counted) and self._counted[index]:
                return
            if index >= len(self._counted):
                self._counted.extend(bytes(index + 1 - len(self._counted)))
            self._counted[index] = 1
        st = self.stats
        st.buffers += 1
        st.compressed_buffers += buf.compressed
        st.unreadable_buffers += buf.unreadable
        if buf.stats is not None:
            for i, n in enumerate(buf.stats.by_kind):
                st.by_kind[KINDS[i]] += n
            st.damaged += buf.stats.errors
