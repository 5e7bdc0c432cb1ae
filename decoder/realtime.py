"""Live buffer sources for ProcessTrace: in-process real-time sessions and buffer streams.

A live source hands ProcessTrace whole ETW buffers, header buffer first, blocking while none
is queued, and ends when its session stops or when CloseTrace asked it to: then it still
hands out what was already queued (CloseTrace's ERROR_CTX_CLOSE_PENDING rule) and takes
nothing new. Both sources are thread-safe: buffers are added, processed and closed from
different threads, and CloseTrace may run inside a ProcessTrace callback.

* :class:`RealtimeSource` reads a ``wpptrace.provider.sessions.subscribe_realtime``
  subscription.
* :class:`BufferStream` is the OpenTraceFromBufferStream queue: it checks the order rule of
  ProcessTraceAddBufferToBufferStream and calls the completion callback exactly once per
  accepted buffer, after the buffer is done with (or when the handle is closed unprocessed).

The buffers are decoded by the engine (decoder.engine.LiveSource), like a file's.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Any, Callable, Iterable, Optional

from ._hazmat import ETL
from wpptrace.winerror import (ERROR_BAD_FORMAT, ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER,
                               Win32Error)

from .buffers import BUFFER_HEADER_SIZE, BufferInfo, buffer_info, expand

#: how long a blocked real-time read waits before re-checking for CloseTrace (seconds)
POLL_INTERVAL = 0.05

_TYPE_HEADER = ETL.ETW_BUFFER_TYPE_HEADER


class LiveBuffer:
    """One buffer a live source handed out: ``data`` the buffer (as received, or expanded
    when the source had to check it), ``info`` its header facts, ``original`` what the
    caller passed (given back to the completion callback). ``started``: some of its events
    were delivered (a ProcessTrace that stops inside it is done with it); ``carried``: the
    timestamp carried into it from its processor's previous buffer, once it was decoded (a
    buffer given back unstarted is decoded again from the same one)."""

    __slots__ = ("data", "original", "info", "completed", "started", "carried")

    def __init__(self, data: bytes | memoryview, original: Any, info: BufferInfo):
        self.data = data
        self.original = original
        self.info = info
        self.completed = False
        self.started = False
        self.carried: Optional[int] = None


class RealtimeSource:
    """Buffers of an in-process real-time session, in the order the session flushed them."""

    live = True

    def __init__(self, logger_name: str):
        from wpptrace.provider import sessions

        self.logger_name = logger_name
        self._subscription = sessions.subscribe_realtime(logger_name)
        self._get_lock = threading.RLock()
        self._pending: deque[LiveBuffer] = deque()
        self._inflight: deque[LiveBuffer] = deque()
        self._closing = False
        self._ended = False

    @property
    def ended(self) -> bool:
        """The session stopped (what was queued can still be read)."""
        return self._subscription.closed

    def peek_header_buffer(self, timeout: float) -> Optional[bytes]:
        """Wait up to ``timeout`` s for the first (header) buffer; keep it queued."""
        with self._get_lock:
            if self._pending:
                return self._pending[0].data
            data = self._subscription.get(timeout)
            if data is not None:
                self._pending.append(_live(data))
            return data

    def next_buffer(self) -> Optional[LiveBuffer]:
        """The next buffer; blocks while none is queued; None when the stream is over."""
        while True:
            with self._get_lock:
                # a blocking read starts a new group: the buffers of the previous one are done
                self._inflight.clear()
                if self._pending:
                    return self._take(self._pending.popleft())
                if self._closing or self._ended:
                    return None
                data = self._subscription.get(POLL_INTERVAL)
                if data is not None:
                    return self._take(_live(data))
                if self._subscription.closed:
                    self._ended = True
                    return None

    def poll_buffer(self) -> Optional[LiveBuffer]:
        """The next buffer if one is queued right now, else None (never blocks)."""
        with self._get_lock:
            if self._pending:
                return self._take(self._pending.popleft())
            if self._closing or self._ended:
                return None
            data = self._subscription.get(0)
            return self._take(_live(data)) if data is not None else None

    def _take(self, entry: LiveBuffer) -> LiveBuffer:
        self._inflight.append(entry)
        return entry

    def interrupt(self) -> None:
        """End the stream at the next buffer boundary: what is queued here is still given
        out, nothing more is taken. Sets a flag only (no lock, no call into the session), so a
        signal handler may call it while this thread waits in ``next_buffer``."""
        self._closing = True

    def request_close(self) -> None:
        """CloseTrace during ProcessTrace: keep what is queued now, take nothing new."""
        with self._get_lock:
            if self._closing:
                return
            self._closing = True
            # what the session flushed before this call may still be on its way from the
            # session's process: wait until it is here
            sync = getattr(self._subscription, "sync", None)
            if sync is not None:
                sync()
            while True:
                data = self._subscription.get(0)
                if data is None:
                    break
                self._pending.append(_live(data))
            self._subscription.close()

    def complete(self, buffer: LiveBuffer) -> None:
        buffer.completed = True

    def complete_inflight(self) -> None:
        """ProcessTrace stopped: the buffers it took but had not started go back to the front
        of the queue, in order, for the next ProcessTrace; the one it stopped inside is done."""
        with self._get_lock:
            unstarted = [entry for entry in self._inflight
                         if not entry.started and not entry.completed]
            self._inflight.clear()
            self._pending.extendleft(reversed(unstarted))

    def release(self) -> None:
        with self._get_lock:
            self._closing = True
            self._pending.clear()
            self._inflight.clear()
            self._subscription.close()


def _live(data) -> LiveBuffer:
    return LiveBuffer(data, data, buffer_info(data))


class BufferStream:
    """The queue behind OpenTraceFromBufferStream / ProcessTraceAddBufferToBufferStream."""

    live = True

    def __init__(self, completion_callback: Optional[Callable[[Any, Any], None]],
                 completion_context: Any):
        self._completion_callback = completion_callback
        self._completion_context = completion_context
        self._cond = threading.Condition(threading.RLock())
        self._queue: deque[LiveBuffer] = deque()
        self._inflight: deque[LiveBuffer] = deque()
        self._closing = False
        self._released = False
        self._seen_header = False
        self._last_sequence: dict[int, int] = {}

    def add(self, buffer: Any, buffer_size: int) -> None:
        """Queue one buffer; raises Win32Error if it is malformed or out of order."""
        try:
            view = memoryview(buffer).cast("B")
        except TypeError as exc:
            raise Win32Error(ERROR_INVALID_PARAMETER,
                             f"Buffer must be bytes-like ({exc})") from None
        if not isinstance(buffer_size, int) or not BUFFER_HEADER_SIZE <= buffer_size <= len(view):
            raise Win32Error(ERROR_INVALID_PARAMETER,
                             f"BufferSize {buffer_size!r} must be between {BUFFER_HEADER_SIZE:#x} and the "
                             f"{len(view)} bytes given")
        view = view[:buffer_size]
        info = buffer_info(view)
        data = view
        if info.compressed and info.buffer_type != _TYPE_HEADER:
            # expanded now, so that a buffer that cannot be read is refused here
            data, problems, _cut = expand(view, source="<buffer stream>")
            if problems:
                raise Win32Error(ERROR_BAD_FORMAT, f"buffer payload does not decompress: "
                                                   f"{problems[0].message}")
        entry = LiveBuffer(data, buffer, buffer_info(data))
        is_header = info.buffer_type == _TYPE_HEADER
        processor = info.processor
        with self._cond:
            if self._closing or self._released:
                raise Win32Error(ERROR_INVALID_HANDLE, "the buffer stream was closed")
            if not self._seen_header:
                if not is_header:
                    raise Win32Error(ERROR_INVALID_PARAMETER,
                                     "out of order: the first buffer of a stream must be the "
                                     f"header buffer (BufferType {_TYPE_HEADER}), got BufferType "
                                     f"{info.buffer_type} sequence {info.sequence}")
            elif is_header:
                raise Win32Error(ERROR_INVALID_PARAMETER,
                                 "out of order: a second header buffer")
            else:
                last = self._last_sequence.get(processor)
                if last is not None and info.sequence <= last:
                    raise Win32Error(ERROR_INVALID_PARAMETER,
                                     f"out of order: processor {processor} buffer sequence "
                                     f"{info.sequence} after {last}")
            if is_header:
                self._seen_header = True
            else:
                self._last_sequence[processor] = info.sequence
            self._queue.append(entry)
            self._cond.notify_all()

    def next_buffer(self) -> Optional[LiveBuffer]:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if self._queue:
                entry = self._queue.popleft()
                self._inflight.append(entry)
                return entry
            return None

    def poll_buffer(self) -> Optional[LiveBuffer]:
        with self._cond:
            if not self._queue:
                return None
            entry = self._queue.popleft()
            self._inflight.append(entry)
            return entry

    def request_close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def complete(self, entry: LiveBuffer) -> None:
        """The buffer is done with: call the completion callback (once)."""
        with self._cond:
            if entry.completed:
                return
            entry.completed = True
            try:
                self._inflight.remove(entry)
            except ValueError:
                pass
        if self._completion_callback is not None:
            self._completion_callback(entry.original, self._completion_context)

    def complete_inflight(self) -> None:
        """ProcessTrace stopped: the buffer(s) it stopped inside (events delivered) are done
        with and completed; those it took from the queue but had not started go back to the
        front of the queue, in order, for the next ProcessTrace (or CloseTrace)."""
        with self._cond:
            started = [entry for entry in self._inflight if entry.started]
            unstarted = [entry for entry in self._inflight if not entry.started]
            self._inflight.clear()
            self._queue.extendleft(reversed(unstarted))
            if unstarted:
                self._cond.notify_all()
        self._complete_all(started)

    def release(self) -> None:
        """The handle is closed: every buffer not yet completed is completed now."""
        with self._cond:
            self._closing = True
            self._released = True
            left = list(self._inflight) + list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._complete_all(left)

    def _complete_all(self, entries: Iterable[LiveBuffer]) -> None:
        """Complete every entry, even if a completion callback raises (the first error is
        raised at the end)."""
        failure = None
        for entry in entries:
            try:
                self.complete(entry)
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure
