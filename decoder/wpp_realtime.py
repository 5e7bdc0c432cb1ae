"""Records of a live in-process session for ``fmt --rt`` / ``tracefmt -rt``.

The provider core delivers every flushed buffer of a real-time session (header buffer first)
through ``wpptrace.provider.sessions.subscribe_realtime``. The header buffer gives the
LogfileHeader (read with ``EtlFile`` over the buffer bytes) and so the clock conversion and
pointer size; every later buffer is walked with ``records.parse_buffer``.

Order: each processor flushes its own buffers, so a thread that changes CPU leaves its
messages in several buffers that arrive in any order. Like decoder.api's live path, the
buffers queued at each moment (up to LIVE_MERGE_BATCH) are grouped by processor and merged
by time with the engine's ``ordering.merged_chunks``; waiting for more would add latency,
so order across such batches is arrival order.
"""
from __future__ import annotations

import io
from typing import Iterator

__all__ = ["realtime_available", "realtime_records", "LIVE_MERGE_BATCH"]

#: at most this many already-queued buffers are merged by time at once
LIVE_MERGE_BATCH = 256


def _subscribe_function():
    try:
        from wpptrace.provider import sessions
    except ImportError:
        return None
    return getattr(sessions, "subscribe_realtime", None)


def realtime_available(session: str) -> str | None:
    """None if live sessions can be read in this build, else the reason they can't."""
    if _subscribe_function() is None:
        return ("live sessions are not available in this build "
                "(wpptrace.provider.sessions.subscribe_realtime is missing)")
    return None


def realtime_records(session: str, timeout: float = 0.5):
    """(FileContext, record iterator) for a running session; raises Win32Error if there is none."""
    from .etlfile import EtlFile
    from .records import parse_buffer
    from .timestamps import TimeConverter
    from .wpp import FileContext

    subscribe = _subscribe_function()
    if subscribe is None:
        raise RuntimeError(realtime_available(session))
    sub = subscribe(session)
    first = None
    while first is None:
        first = sub.get(timeout)
        if first is None and sub.closed:
            sub.close()
            raise EOFError(f"real-time session {session!r} stopped before its header buffer arrived")
    etl = EtlFile(io.BytesIO(first), name=f"<real-time {session}>")
    header = etl.header
    ctx = FileContext.for_header(f"<real-time {session}>", header, TimeConverter(header))

    def records() -> Iterator:
        from .ordering import merged_chunks

        # per processor: the last timestamp seen, for records without one (they sort at the
        # time of the record before them in their stream, as in ordering.ordered_records)
        last_time: dict[int, int] = {}
        try:
            head, _issues = parse_buffer(first, header.pointer_size, header_buffer=True)
            yield from head
            while True:
                data = sub.get(timeout)
                if data is None:
                    if sub.closed:
                        return
                    continue
                batch = [data]
                while len(batch) < LIVE_MERGE_BATCH and (more := sub.get(0)) is not None:
                    batch.append(more)
                streams: dict[int, list] = {}
                for data in batch:
                    recs, _issues = parse_buffer(data, header.pointer_size, header_buffer=False)
                    if recs:
                        processor = recs[0].processor
                        keys = _sort_keys(recs, last_time.get(processor, 0))
                        last_time[processor] = keys[-1]
                        streams.setdefault(processor, []).append((recs, keys))
                for chunk in merged_chunks([iter(streams[p]) for p in sorted(streams)]):
                    yield from chunk
        finally:
            sub.close()
            etl.close()

    return ctx, records()


def _sort_keys(records: list, last: int) -> list[int]:
    """The records' timestamps, the previous one carried forward where a record has none."""
    keys = []
    for rec in records:
        if rec.timestamp is not None:
            last = rec.timestamp
        keys.append(last)
    return keys
