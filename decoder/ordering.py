"""Records in ProcessTrace order: header record first, then a merge of buffer streams.

Each processor writes its own stream of buffers, flushed to the file out of order
(docs/etl-format.md §1). Like ProcessTrace (PEVENT_RECORD_CALLBACK, "Technical details"), we
sort each stream's buffers by SequenceNumber and merge the streams by timestamp, assuming
that events within a buffer are in time order and buffers of one stream do not overlap.
When a file breaks those assumptions (clock set back with system-time clocks, imprecise
clocks, corrupt or hand-made files) events come out in the same out-of-order way the page
describes, never lost. Records without a timestamp (messages logged without
TRACE_MESSAGE_TIMESTAMP) sort at the time of the record before them in their stream.
Memory: one buffer per stream at a time.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate, chain
from typing import TYPE_CHECKING, Iterator

from .etlfile import BufferSubset
from .records import Record

if TYPE_CHECKING:
    from .etlfile import BufferInfo, EtlFile


def buffer_streams(etlfile: "EtlFile") -> list[Sequence["BufferInfo"]]:
    """Data buffers grouped per processor, each group in SequenceNumber order (file order
    for equal numbers). Built from the index columns: no per-buffer objects."""
    index = etlfile.buffer_index()
    processors, sequences = index.column("processor"), index.column("sequence")
    streams: dict[int, array] = {}
    for i in range(1, len(index)):
        group = streams.get(processors[i])
        if group is None:
            group = streams[processors[i]] = array("I")
        group.append(i)
    out = []
    for _, group in sorted(streams.items()):
        # stable sort on the sequence alone keeps file order for equal numbers
        out.append(BufferSubset(index, array("I", sorted(group, key=sequences.__getitem__))))
    return out


def _stream_batches(etlfile: "EtlFile", infos: list["BufferInfo"]
                    ) -> Iterator[tuple[list[Record], list[int]]]:
    last = 0
    for info in infos:
        buf = etlfile.read_buffer(info, last)
        records = buf.records()
        etlfile._account(buf)
        if buf.stats is not None:
            last = buf.stats.last_timestamp
        if records:
            yield records, buf.sort_keys()


def merged_chunks(batches: list[Iterator[tuple[list[Record], list[int]]]]
                  ) -> Iterator[list[Record]]:
    """Merge per-stream batches (records, timestamps) by time; ties go to the lower stream.

    Works in windows: every record older than the earliest end time among the streams'
    current buffers is taken from all streams at once and put in time order by one stable
    sort (C speed, keeping each stream's own order); the records at exactly that time follow,
    stream by stream, so ties come out as a heap merge gives them. Each window is one list.
    A stream's sort key is the running maximum of its timestamps, so a stream whose clock
    goes backwards is delivered in its own order, out of time order, as ProcessTrace does.
    """
    streams: list[list] = []        # per stream: [records, keys, position, batches, last key]
    for it in batches:
        st = [None, None, 0, it, -(1 << 63)]
        if _load(st):
            streams.append(st)
    while streams:
        window = min(st[1][-1] for st in streams)
        chunk: list[Record] = []
        keys: list[int] = []
        for st in streams:                  # everything older than the window, all streams
            j = bisect_left(st[1], window, st[2])
            if j > st[2]:
                chunk += st[0][st[2]:j]
                keys += st[1][st[2]:j]
                st[2] = j
        if len(chunk) > 1:
            chunk = list(map(chunk.__getitem__, sorted(range(len(keys)), key=keys.__getitem__)))
        if chunk:
            yield chunk
        # then the records at the window time, stream after stream, each stream's run
        # continuing into its next buffers (what a heap merge does with equal keys); given
        # out run by run, so a stream stuck at one time never piles up in memory
        live = []
        for st in streams:
            while st[1][st[2]] == window:
                j = bisect_right(st[1], window, st[2])
                yield st[0][st[2]:j]
                st[2] = j
                if j < len(st[0]):
                    break
                if not _load(st):
                    st = None
                    break
            if st is not None:
                live.append(st)
        streams = live


def _load(st: list) -> bool:
    """Move a stream to its next non-empty batch; False when it has none left."""
    for records, times in st[3]:
        if records:
            keys = list(accumulate(times, max, initial=st[4]))[1:]
            st[0], st[1], st[2], st[4] = records, keys, 0, keys[-1]
            return True
    return False


def ordered_records(etlfile: "EtlFile") -> Iterator[Record]:
    """Every record of the file in ProcessTrace order (see the module docstring)."""
    index = etlfile.buffer_index()
    head: list[Record] = []
    rest: list[Record] = []
    if index and index[0].index == 0:
        buf = etlfile.read_buffer(index[0])
        rest = buf.records()
        times = buf.sort_keys()
        etlfile._account(buf)
        # the log-file header record is delivered first, whatever its timestamp
        if rest and rest[0].kind == "system" and rest[0].event_id == 0:
            head, rest, times = rest[:1], rest[1:], times[1:]
    batches = [iter([(rest, times)] if rest else [])]
    batches += [_stream_batches(etlfile, s) for s in buffer_streams(etlfile)]
    return chain(head, chain.from_iterable(merged_chunks(batches)))
