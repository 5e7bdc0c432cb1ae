"""Records of a live in-process session for ``fmt --rt`` / ``tracefmt -rt``.

The provider core delivers every flushed buffer of a real-time session (header buffer first)
through ``wpptrace.provider.sessions.subscribe_realtime``. The header buffer gives the
LogfileHeader (read with ``EtlFile`` over the buffer bytes) and so the clock conversion and
pointer size; every later buffer is walked with ``records.parse_buffer`` and its records are
passed on in delivery order.
"""
from __future__ import annotations

import io
from typing import Iterator

__all__ = ["realtime_available", "realtime_records"]


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
        try:
            head, _issues = parse_buffer(first, header.pointer_size, header_buffer=True)
            yield from head
            while True:
                data = sub.get(timeout)
                if data is None:
                    if sub.closed:
                        return
                    continue
                recs, _issues = parse_buffer(data, header.pointer_size, header_buffer=False)
                yield from recs
        finally:
            sub.close()
            etl.close()

    return ctx, records()
