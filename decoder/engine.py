"""The decoder engine: a source of buffers -> buffers in ProcessTrace order, with their records.

Sources:

* ``FileSource``: one .etl file (``EtlFile``): its header buffer, then each processor's
  buffers in sequence order, read one buffer per stream at a time (memory stays bounded);
* ``LiveSource``: a live queue (a real-time session's subscription or an
  OpenTraceFromBufferStream queue, decoder.realtime): the header buffer first, then the
  buffers queued at each moment (up to LIVE_MERGE_BATCH), merged by time across processors.
  Waiting for more would add latency, so order across such groups is arrival order;
* several file sources at once: ``merge_sources`` merges their orders by FILETIME.

Every buffer goes through ``buffers.decode`` (expansion, record range, damage), is walked by
the C walker and accounted once in the source's ``ReadLog`` (``errors``, ``stats``). What the
caller gets per buffer is chosen by a *view*: ``view(source, buffer, slot, header_record)``
returns the buffer's items and their sort keys (raw timestamps, carried forward where a record
has none): ``record_view`` gives ``Record`` objects; the consumer API, the typed events and
the formatter's compact C rows are views too (decoder.api, decoder.events, decoder.wpp_rows).
``slot`` numbers the stream the buffer belongs to (a view may keep one buffer per slot);
``header_record`` says the buffer's first record is the log-file header record, which the
engine delivers first, before the merge (ProcessTrace's synthetic first event). When a
file's header record is damaged but its facts were read, the engine hands every view the
header buffer made from those facts (``EtlFile.made_header_buffer``) in its place, so each
view makes that event from it as from the real record (``_made_header``). The order rules
and the merge itself are decoder.ordering's.
"""
from __future__ import annotations

import io
from bisect import bisect_left
from collections.abc import Callable
from itertools import accumulate, chain

from ._hazmat import ETL, last_key, running_max

from .buffers import (MAX_BUFFER_SIZE, Buffer, ReadLog, buffer_info, decode,
                      starts_with_logfile_header)
from .etlfile import EtlFile, LogfileHeader
from .ordering import buffer_streams, merge
from .records import Record
from .timestamps import TimeConverter

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Iterator, Protocol

    from .realtime import LiveBuffer
else:
    Protocol = object   # Source documents an interface: only type checkers check it

__all__ = ["FileSource", "LiveSource", "View", "record_view", "count_view", "merge_sources",
           "ordered_records", "LIVE_MERGE_BATCH"]

#: a live trace merges at most this many already-queued buffers by time at once
LIVE_MERGE_BATCH = 256
#: a fact a source has not read yet
_UNREAD = object()
_TYPE_HEADER = ETL.ETW_BUFFER_TYPE_HEADER


class Source(Protocol):
    name: str
    pointer_size: int
    clock: TimeConverter


#: view(source, buffer, slot, header_record) -> (items, sort keys)
View = Callable[["Source", Buffer, int, bool], tuple[list, list[int]]]


def record_view(source, buf: Buffer, slot: int, header_record: bool) -> tuple[list, list[int]]:
    """The buffer's ``Record`` objects."""
    return buf.records(), buf.sort_keys()


def count_view(source, buf: Buffer, slot: int, header_record: bool) -> tuple[list, list[int]]:
    """Nothing per record: the buffer is only walked and counted (the raw-speed path)."""
    return [], []


def _deliver(source, log: ReadLog, view: View, buf: Buffer, slot: int,
             header_record: bool) -> tuple[list, list[int]]:
    """One buffer through the view; walked (if the view did not) and accounted once."""
    items, keys = view(source, buf, slot, header_record)
    if buf.stats is None:
        buf.walk(collect=False)
    log.account(buf)
    return items, keys


class FileSource:
    """An .etl file as a buffer source (see the module docstring). ``stop``, if given, is
    asked before each buffer is read: True ends the reading (CloseTrace during ProcessTrace)."""

    live = False

    def __init__(self, etl: EtlFile, *, stop: Callable[[], bool] | None = None,
                 trust_flush_times: bool = False):
        self.etl = etl
        self.name = etl.name
        self.header: LogfileHeader = etl.header
        self.pointer_size = etl.pointer_size
        self.clock = TimeConverter(etl.header)
        self._stop = stop
        #: [processor streams, their flush times (per stream: the times, whether in order),
        #: the latest merge key of buffer 0's records after the log-file header record (None:
        #: none; ``_UNREAD``: not read yet)], each made once when first needed; shared with
        #: the sources that adopt it
        self._order: list = [None, None, _UNREAD]
        #: a window's streams start at their first buffer ``flushed_before`` does not count
        #: (the ones before it are not read); whoever decodes the window before checks it
        self.trust_flush_times = trust_flush_times
        #: per processor stream, where the last window read ended: the position (in the
        #: stream) of the buffer whose merge key reached the window's end, or the stream's
        #: length (``ordered``)
        self.window_stops: dict[int, int] = {}

    @property
    def errors(self):
        return self.etl.errors

    def streams(self):
        """The file's processor streams (decoder.ordering.buffer_streams), computed once."""
        order = self._order
        if order[0] is None:
            order[0] = buffer_streams(self.etl)
        return order[0]

    def adopt_streams(self, other: "FileSource") -> None:
        """Share ``other``'s processor streams and flush times (each made once, by whichever
        source asks first) when both read the same buffer index (``EtlFile.adopt_index``):
        ``fmt -j``'s sources of one file, its processes' (forked) and a process's own."""
        if other.etl.buffer_index() is self.etl.buffer_index():
            self._order = other._order

    def flushed_before(self, lo: int) -> list[int]:
        """Per processor stream, how many of its first buffers were flushed before raw time
        ``lo`` (header time < lo; none when lo is not after 0). A buffer's flush is no earlier
        than its records, as Windows writes files, so these hold no record at or after lo when
        that holds: a window from lo starts its streams there (``trust_flush_times``) and the
        window before it ends no earlier (``window_stops``) when it held."""
        order = self._order
        if order[1] is None:               # asked once per window: the columns made once
            order[1] = [(times, times == sorted(times))      # (in order: sorted in one pass)
                        for times in (stream.column("timestamp") for stream in self.streams())]
        counts = []
        for times, ordered in order[1]:
            n = 0
            if lo > 0:
                if ordered:
                    n = bisect_left(times, lo)
                else:
                    while n < len(times) and times[n] < lo:
                        n += 1
            counts.append(n)
        return counts

    def slot_count(self) -> int:
        """Slots ``ordered`` uses: the header buffer's, then one per processor stream."""
        return 1 + len(self.streams())

    def ordered(self, view: View, slot: int = 0,
                window: tuple[int | None, int | None] | None = None) -> Iterator[tuple[list, list[int]]]:
        """(items, raw keys) chunks in ProcessTrace order.

        ``window`` = (lo, hi): only the items whose merge key (the running maximum of their
        stream's raw times) lies in [lo, hi) (None: no bound), in the order the whole file
        gives them; the log-file header record belongs to the first window. Each buffer is
        accounted by the window its last key falls in, so the windows of one file add up to
        the whole (``fmt -j``: each window decoded in its own process)."""
        etl = self.etl
        index = etl.buffer_index()
        batches = []
        if window is not None:
            lo, hi = window
            first = ()
            top = self._order[2]
            # a window from lo after buffer 0's last record was read once: nothing of buffer
            # 0 is in it (nor accounted by it), so it is not read again (fmt -j's windows)
            if len(index) and (lo is None or top is _UNREAD or (top is not None and top >= lo)):
                buf = etl.read_buffer(index[0])
                header = starts_with_logfile_header(buf)
                if not header and lo is None:
                    yield from _made_header(self, view, etl.made_header_buffer(), slot)
                items, keys = view(self, buf, slot, header)
                if buf.stats is None:
                    buf.walk(collect=False)
                if header and items:
                    if lo is None:
                        yield items[:1], keys[:1]
                    items, keys = items[1:], keys[1:]
                self._order[2] = max(keys) if len(keys) else None   # (the last running maximum)
                first = ((buf, items, keys),)
            streams = self.streams()
            self.window_stops = {}
            skips = (self.flushed_before(lo) if self.trust_flush_times and lo is not None
                     else [0] * len(streams))
            batches.append(self._window_stream(first, (), view, slot, lo, hi))
            batches += [self._window_stream((), infos, view, slot + k, lo, hi, k - 1, skips[k - 1])
                        for k, infos in enumerate(streams, start=1)]
            yield from merge(batches)
            return
        if len(index):
            buf = etl.read_buffer(index[0])
            header = starts_with_logfile_header(buf)
            if not header:
                yield from _made_header(self, view, etl.made_header_buffer(), slot)
            items, keys = _deliver(self, etl, view, buf, slot, header)
            if header and items:
                yield items[:1], keys[:1]
                items, keys = items[1:], keys[1:]
            batches.append(iter([(items, keys)]))
        batches += [self._stream(infos, view, slot + k)
                    for k, infos in enumerate(self.streams(), start=1)]
        yield from merge(batches)

    def _window_stream(self, first, infos, view: View, slot: int, lo: int | None,
                       hi: int | None, stream: int | None = None,
                       skip: int = 0) -> Iterator[tuple[list, list[int]]]:
        """One stream's items with merge keys in [lo, hi) (see ``ordered``): buffers wholly
        before lo are only walked for their latest time (the first ``skip`` not even read:
        their records and the times they carry are all before lo, so the keys from lo on
        come out the same without them); the stream ends at hi, its position then noted in
        ``window_stops[stream]``."""
        etl, stop = self.etl, self._stop
        run = None          # the running maximum of the stream's keys so far
        last = 0
        position = skip     # of the buffer delivered last, in the stream

        def wholly_before(buf) -> bool:     # no record at or after lo, nor past the run so far
            top = buf.stats.max_timestamp
            return top is None or (run is not None and top <= run) or top < lo

        def delivered():
            nonlocal last, position
            yield from first
            # with the buffers flushed before lo skipped, the first one read mostly holds
            # lo itself: its rows are made at once, in its one walk; where fewer are skipped
            # (times not trusted), a buffer is walked for its latest time first
            walk_first = skip == 0
            # a buffer flushed at or after hi holds the window's end (or lies past it): its
            # rows from there on are the next window's, so its walk may stop there
            until = hi if hi is not None and getattr(view, "walks_until", False) else None
            for position in range(skip, len(infos)):
                if stop is not None and stop():
                    return
                info = infos[position]
                buf = etl.read_buffer(info, last)
                before = lo is not None and (run is None or run < lo)
                if before and walk_first:
                    buf.walk(collect=False)             # only its latest time is needed
                    if wholly_before(buf):
                        last = buf.stats.last_timestamp
                        yield buf, None, None
                        continue
                if until is not None and info.timestamp >= until:
                    items, keys = view(self, buf, slot, False, until)
                else:
                    items, keys = view(self, buf, slot, False)
                if buf.stats is None:
                    buf.walk(collect=False)
                last = buf.stats.last_timestamp
                if before and not walk_first:
                    walk_first = True
                    if wholly_before(buf):
                        yield buf, None, None           # wholly before the window after all
                        continue
                yield buf, items, keys
            position = len(infos)

        for buf, items, keys in delivered():
            if keys is None:                            # wholly before the window
                top = buf.stats.max_timestamp
                run = top if run is None or (top is not None and top > run) else run
                if _in_window(run, lo, hi):
                    etl.account(buf)
                continue
            if lo is None or (run is not None and run >= lo):   # no key before the window
                top = last_key(keys, -(1 << 63) if run is None else run)
                if top is not None and (hi is None or top < hi):    # nor past it: all of it
                    if keys:
                        run = top
                    if _in_window(run, lo, hi):
                        etl.account(buf)
                    if items:
                        yield items, keys
                    continue
            ends = running_max(keys, -(1 << 63) if run is None else run)
            if ends is None:                            # times beyond 64 bits: Python ints
                ends = list(accumulate(keys, max, initial=run)) if run is not None else \
                    list(accumulate(keys, max))
                if run is not None:
                    ends = ends[1:]
            start = 0 if lo is None else bisect_left(ends, lo)
            end = len(ends) if hi is None else bisect_left(ends, hi)
            if ends:
                run = ends[-1]
            if _in_window(run, lo, hi):
                etl.account(buf)
            if end > start:
                yield items[start:end], keys[start:end]
            if hi is not None and run is not None and run >= hi:
                if stream is not None:
                    self.window_stops[stream] = position
                return
        if stream is not None:
            self.window_stops[stream] = position

    def in_file_order(self, view: View) -> Iterator[list]:
        """Items buffer by buffer in file order (no reordering)."""
        etl = self.etl
        for info in etl.buffer_index():
            buf = etl.read_buffer(info)
            header = info.is_header and starts_with_logfile_header(buf)
            if info.is_header and not header:
                for items, _keys in _made_header(self, view, etl.made_header_buffer(), 0):
                    yield items
            yield _deliver(self, etl, view, buf, 0, header)[0]

    def _stream(self, infos, view: View, slot: int) -> Iterator[tuple[list, list[int]]]:
        """One processor stream: a batch per buffer, read when the merge asks for it (the
        previous buffer's items have all been handed out by then)."""
        etl, stop = self.etl, self._stop
        last = 0
        for info in infos:
            if stop is not None and stop():
                return
            buf = etl.read_buffer(info, last)
            items, keys = _deliver(self, etl, view, buf, slot, False)
            last = buf.stats.last_timestamp
            if items:
                yield items, keys


class LiveSource:
    """A live queue (decoder.realtime ``RealtimeSource`` or ``BufferStream``) as a buffer
    source. The log-file header facts (pointer size, clock) come from the header buffer when
    it arrives (``take_header``); until then raw timestamps are taken as FILETIME."""

    live = True

    def __init__(self, queue, name: str):
        self.queue = queue
        self.name = name
        self.header: LogfileHeader | None = None
        self.pointer_size = 8
        self.clock = TimeConverter.system_time()
        self.log = ReadLog(name)
        self._last: dict[int, int] = {}        # processor -> last timestamp seen
        #: the header buffer's reading (``take_header``): the header buffer made from the
        #: facts of a damaged header record, and where the records after that record start
        self._made: Buffer | None = None
        self._header_record_end: int | None = None

    @classmethod
    def for_session(cls, session: str, poll: float = 0.5) -> "LiveSource":
        """A running in-process real-time session, once its header buffer has arrived.
        Raises Win32Error (ERROR_WMI_INSTANCE_NOT_FOUND) if there is no such session, EOFError
        if it stops before its header buffer arrives."""
        from .realtime import RealtimeSource

        queue = RealtimeSource(session)
        source = cls(queue, f"<real-time {session}>")
        while True:
            first = queue.peek_header_buffer(poll)
            if first is not None:
                break
            if queue.ended:
                queue.release()
                raise EOFError(f"real-time session {session!r} stopped before its header "
                               f"buffer arrived")
        if buffer_info(first).buffer_type == _TYPE_HEADER:
            source.take_header(first)
        return source

    @property
    def errors(self):
        return self.log.errors

    def take_header(self, data) -> LogfileHeader:
        """The log-file header facts from the header buffer's bytes."""
        with EtlFile(io.BytesIO(bytes(data)), name=self.name) as etl:
            for issue in etl.errors:
                self.log._issue(issue.offset, issue.message)
            self.header = etl.header
            self._made = etl.made_header_buffer()
            self._header_record_end = etl.header_record_end
        self.pointer_size = self.header.pointer_size
        self.clock = TimeConverter(self.header)
        return self.header

    def _limit(self) -> int:
        h = self.header
        return h.buffer_size if h is not None and h.valid else MAX_BUFFER_SIZE

    def ordered(self, view: View, slot: int = 0) -> Iterator[tuple[list, list[int]]]:
        """(items, raw keys) chunks: the header buffer, then merged groups of queued buffers;
        ends when the queue does (session stopped, or closed)."""
        queue = self.queue
        first = True
        while True:
            entry = queue.next_buffer()
            if entry is None:
                return
            if first and entry.info.buffer_type == _TYPE_HEADER:
                first = False
                self.take_header(entry.data)
                info = buffer_info(entry.data, index=0)
                buf = decode(entry.data, info, source=self.name, pointer_size=self.pointer_size,
                             start=self._header_record_end)
                buf.origin = entry
                header = starts_with_logfile_header(buf)
                if not header:
                    yield from _made_header(self, view, self._made, slot)
                items, keys = _deliver(self, self.log, view, buf, slot, header)
                if items:
                    yield items, keys
                continue
            first = False
            group = [entry]
            while len(group) < LIVE_MERGE_BATCH:
                more = queue.poll_buffer()
                if more is None:
                    break
                group.append(more)
            by_processor: dict[int, list] = {}
            for entry in group:
                by_processor.setdefault(entry.info.processor, []).append(entry)
            yield from merge([self._stream(by_processor[p], view, slot + k)
                              for k, p in enumerate(sorted(by_processor), start=1)])

    def _stream(self, entries: list["LiveBuffer"], view: View,
                slot: int) -> Iterator[tuple[list, list[int]]]:
        for entry in entries:
            info = entry.info
            if entry.carried is None:
                entry.carried = self._last.get(info.processor, 0)
            buf = decode(entry.data, info, source=self.name, pointer_size=self.pointer_size,
                         last_timestamp=entry.carried, limit=self._limit())
            buf.origin = entry
            items, keys = _deliver(self, self.log, view, buf, slot, False)
            self._last[info.processor] = buf.stats.last_timestamp
            yield items, keys


def _made_header(source, view: View, made: Buffer | None, slot: int
                 ) -> Iterator[tuple[list, list[int]]]:
    """The log-file header event of a source whose first buffer does not start with a
    well-formed header record (damaged, and reported when it was read) but whose header facts
    were read from that record: ProcessTrace delivers that event whatever, from the facts
    OpenTrace read. ``made`` is the header buffer made from them (None: not read, no event);
    the view takes it into ``slot`` as the header buffer, before the real first buffer, and
    only its first item (the event) is kept: the made buffer is no buffer of the trace (not
    accounted, no buffer callback)."""
    if made is None:
        return
    items, keys = view(source, made, slot, True)
    if items:
        yield items[:1], keys[:1]


def _in_window(key: int | None, lo: int | None, hi: int | None) -> bool:
    """Whether a merge key (None: before any time) lies in [lo, hi) (None: no bound)."""
    if key is None:
        return lo is None
    return (lo is None or key >= lo) and (hi is None or key < hi)


def merge_sources(sources: list[tuple["FileSource | LiveSource", View]]
                  ) -> Iterator[tuple[list, list[int]]]:
    """Several traces in one ProcessTrace order: each (source, view)'s own order, merged by
    FILETIME (ties: the earlier source). The chunks' keys are FILETIMEs, raw keys for a single
    source (which may be live; several are files)."""
    if len(sources) == 1:
        source, view = sources[0]
        return source.ordered(view)
    streams, slot = [], 0
    for source, view in sources:
        streams.append(_by_filetime(source.ordered(view, slot), source.clock))
        slot += source.slot_count()
    return merge(streams)


def _by_filetime(chunks, clock: TimeConverter) -> Iterator[tuple[list, list[int]]]:
    for items, keys in chunks:
        yield items, clock.to_filetimes(keys)


def ordered_records(etl: EtlFile) -> Iterator[Record]:
    """Every record of the file in ProcessTrace order (see decoder.ordering)."""
    return chain.from_iterable(items for items, _ in FileSource(etl).ordered(record_view))
