"""ProcessTrace order: which buffers form a stream, and the one merge of streams by time.

The engine (decoder.engine) delivers a trace's log-file header record first, then merges the
rest with ``merge``. Each processor writes its own stream of buffers, flushed to the file
out of order (docs/etl-format.md §1). Like ProcessTrace (PEVENT_RECORD_CALLBACK, "Technical
details"), we sort each stream's buffers by SequenceNumber and merge the streams by timestamp,
assuming that events within a buffer are in time order and buffers of one stream do not overlap.
When a file breaks those assumptions (clock set back with system-time clocks, imprecise
clocks, corrupt or hand-made files) events come out in the same out-of-order way the page
describes, never lost. Records without a timestamp (messages logged without
TRACE_MESSAGE_TIMESTAMP) sort at the time of the record before them in their stream.
Several traces (ProcessTrace over several handles) are merged by FILETIME with the same
``merge``, one stream per trace. Memory: one buffer per stream at a time.
"""
from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ._hazmat import merge_below, running_max, stream_positions
from .etlfile import BufferSubset

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import Iterator

    from .buffers import BufferInfo
    from .etlfile import EtlFile


def buffer_streams(etlfile: "EtlFile") -> list[Sequence["BufferInfo"]]:
    """Data buffers grouped per processor, each group in SequenceNumber order (file order
    for equal numbers). Built from the index columns: no per-buffer objects; by one C sort
    (``order_streams``: 0.2 M instructions against 2.7 M for 808 buffers in Python, on
    every run before its first record)."""
    index = etlfile.buffer_index()
    grouped = stream_positions(index.column("processor"), index.column("sequence"))
    if grouped is None:
        return _streams_in_python(index)
    return [BufferSubset(index, positions) for positions in grouped]


def _streams_in_python(index) -> list[Sequence["BufferInfo"]]:
    """``buffer_streams`` for index columns the C sort does not take."""
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


def merge(batches: list[Iterator[tuple[list, list[int]]]]) -> Iterator[tuple[list, list[int]]]:
    """Merge streams of batches (items, sort keys) by key; ties go to the lower stream.
    Yields (items, keys) chunks in merged order.

    Works in windows: every item older than the earliest end key among the streams' current
    batches is taken from all streams at once and put in key order (the order one stable sort
    of the streams' runs, one after the other, gives: each stream keeps its own order, ties go
    to the lower stream), in C (``order_merge_below``) when the keys fit in 64 bits; the items
    at exactly that key follow, stream by stream, so ties come out as a heap merge gives them.
    A stream's key is the running maximum of its keys, so a stream whose clock goes backwards
    is delivered in its own order, out of time order, as ProcessTrace does. A stream's next
    batch is asked for only once the items of its current one have all been handed out (and
    so consumed by the caller). Items given as ``range`` objects (the formatter's row refs)
    come out as an ``array('Q')`` of refs, others as a list.
    """
    streams: list[list] = []        # per stream: [items, keys, position, batches, last key]
    for it in batches:
        st = [None, None, 0, it, -(1 << 63)]
        if _load(st):
            streams.append(st)
    while streams:
        window = min(st[1][-1] for st in streams)
        ends = [bisect_left(st[1], window, st[2]) for st in streams]
        count = sum(end - st[2] for end, st in zip(ends, streams))
        if count == 1 or (count and sum(end > st[2] for end, st in zip(ends, streams)) == 1):
            for end, st in zip(ends, streams):     # one stream only: its run as it is
                if end > st[2]:
                    yield st[0][st[2]:end], st[1][st[2]:end]
                    st[2] = end
        elif count and all(type(st[1]) is array for st in streams):
            ranges = all(type(st[0]) is range and st[0].step == 1 for st in streams)
            positions = [st[2] for st in streams]
            refs, keys = merge_below([st[1] for st in streams], positions, window,
                                     [st[0].start for st in streams] if ranges else None, count)
            for st, at in zip(streams, positions):
                st[2] = at
            if ranges:
                yield refs, keys
            else:
                items = [st[0] for st in streams]
                yield [items[code >> 32][code & 0xFFFFFFFF] for code in refs], keys
        elif count:
            chunk: list = []
            keys = []
            for end, st in zip(ends, streams):  # everything older than the window, all streams
                if end > st[2]:
                    chunk += st[0][st[2]:end]
                    keys += st[1][st[2]:end]
                    st[2] = end
            chunk = list(map(chunk.__getitem__, sorted(range(len(keys)), key=keys.__getitem__)))
            keys.sort()
            yield chunk, keys
        # then the items at the window key, stream after stream, each stream's run
        # continuing into its next batches (what a heap merge does with equal keys); given
        # out run by run, so a stream stuck at one key never piles up in memory
        live = []
        for st in streams:
            while st[1][st[2]] == window:
                j = bisect_right(st[1], window, st[2])
                yield st[0][st[2]:j], st[1][st[2]:j]
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
    for items, times in st[3]:
        if items:
            keys = running_max(times, st[4])
            if keys is None:               # times beyond 64 bits: Python ints
                keys = list(accumulate(times, max, initial=st[4]))[1:]
            st[0], st[1], st[2], st[4] = items, keys, 0, keys[-1]
            return True
    return False
