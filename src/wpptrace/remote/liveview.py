"""The collector's live view: each source's buffers through OpenTraceFromBufferStream and
ProcessTrace, its WPP messages printed as tracefmt lines tagged with the source.

Per source: a trace opened with OpenTraceFromBufferStream, a thread running ProcessTrace on
it, and ProcessTraceAddBufferToBufferStream for each buffer received. The buffer completion
callback releases the buffer (as the OpenTraceFromBufferStream page says it should): at most
``max_pending`` buffers are held per source, and ``max_pending_bytes`` by all sources
together (sources are many and buffers up to 1 MB); when the decoder falls behind, the view
skips buffers (counted in ``skipped``, which the collector reports in the source's summary
line and ``SourceStats.live_skipped``) while the source's file still gets every one. Each buffer's
events are formatted when ProcessTrace hands over the buffer (its BufferCallback), by the
same WppDecoder as ``wpptrace fmt``.

Each view holds a thread and its header buffer until its decoding is over, which an output
that does not drain (a stalled pipe or terminal) postpones for ever. The views of open
sources are as many as the sources the collector keeps (a bound of its own, which sources
waiting for their relay count in); those of closed sources still printing are at most
``max_views``, and each view's header buffer is charged to ``max_pending_bytes`` like any
other. A source that finds no room gets no view, for its whole life (every one of its
buffers is skipped and counted; its file is written as ever); the first refusal is said, and
``views_refused`` counts them all.
"""
from __future__ import annotations

import logging
import sys
import threading
import time
from typing import IO, Optional

from wpptrace.decoder import api
from wpptrace.decoder.consumer_types import (ETW_OPEN_TRACE_OPTIONS, EventTraceGuid,
                                             GUID_NULL)
from wpptrace.decoder.wpp import FileContext, WppDecoder
from wpptrace.decoder._hazmat import ETL
from wpptrace.winerror import Win32Error

from .protocol import escape_unprintable

__all__ = ["LiveView", "SourceView"]

log = logging.getLogger("wpptrace.remote.liveview")

_TRACE_MESSAGE = ETL.EVENT_HEADER_FLAG_TRACE_MESSAGE
_HEADER_32 = ETL.EVENT_HEADER_FLAG_32_BIT_HEADER
_POINTER32 = ETL.TRACE_MESSAGE_POINTER32
_POINTER64 = ETL.TRACE_MESSAGE_POINTER64
#: seconds a closing view waits for its decoder to start (it starts in milliseconds unless
#: the header buffer cannot be decoded)
_DECODER_START_WAIT = 5.0


class _EventRecordView:
    """An EVENT_RECORD seen as the record the formatter reads (the facts tracefmt prints:
    message GUID and number, arguments, time, thread, process, processor, sequence)."""

    __slots__ = ("kind", "message_guid", "provider_id", "event_id", "flags", "user_data",
                 "timestamp", "thread_id", "process_id", "processor", "sequence", "is_header")

    def __init__(self, event):
        h = event.EventHeader
        if h.Flags & _TRACE_MESSAGE:
            self.kind = "message"
            self.message_guid = h.ProviderId if h.ProviderId != GUID_NULL else None
            self.provider_id = None
            self.flags = _POINTER32 if h.Flags & _HEADER_32 else _POINTER64
        else:
            self.kind = "system" if h.ProviderId == EventTraceGuid else "other"
            self.message_guid = None
            self.provider_id = h.ProviderId
            self.flags = 0
        self.event_id = h.EventDescriptor.Id if self.kind == "message" else h.EventDescriptor.Opcode
        self.user_data = event.UserData
        self.timestamp = h.TimeStamp or None
        self.thread_id = h.ThreadId
        self.process_id = h.ProcessId
        self.processor = event.BufferContext.ProcessorIndex
        self.sequence = event.MessageSequence
        # the log-file header: ProcessTrace's EventTraceGuid event of type 0
        self.is_header = self.kind == "system" and self.event_id == 0


class SourceView:
    """One source's live decoding (see the module docstring)."""

    def __init__(self, view: "LiveView", label: str, max_pending: int):
        self.view = view
        self.label = label
        self.max_pending = max_pending
        self.pending = 0
        self.skipped = 0
        self.lines = 0
        self._lock = threading.Lock()
        self._running = threading.Event()       # ProcessTrace has delivered the header
        self._events: list = []
        self._ctx = FileContext(path=label)
        options = ETW_OPEN_TRACE_OPTIONS(EventCallback=self._on_event,
                                         BufferCallback=self._on_buffer)
        self.handle = api.OpenTraceFromBufferStream(options, self._completed, None)
        self._thread = threading.Thread(target=self._process, name=f"live {label}", daemon=True)
        self._thread.start()
        self._closer: Optional[threading.Thread] = None
        #: ``close`` was called: what is left is printing
        self.closed = False

    def add(self, buffer: bytes, *, reserved: bool = False) -> bool:
        """Queue a buffer for decoding; False if skipped (the decoder is behind).
        ``reserved``: its bytes are already charged to the view's budget (the header
        buffer, see ``LiveView.open``)."""
        size = len(buffer)
        with self._lock:
            if not reserved and (self.pending >= self.max_pending
                                 or not self.view._reserve(size)):
                self.skipped += 1
                return False
            self.pending += 1
        try:
            api.ProcessTraceAddBufferToBufferStream(self.handle, buffer, size)
        except Win32Error as exc:
            self.view._release(size)
            with self._lock:
                self.pending -= 1
                self.skipped += 1
            log.warning("%s: live view: %s", self.label, exc)
            return False
        return True

    def close(self) -> None:
        """Decode what is queued, then end (ProcessTrace returns); does not wait for it
        (``join``). CloseTrace must find ProcessTrace running, else what is queued would be
        released undecoded: it runs once the header buffer was delivered (milliseconds).
        Until then the close waits in a thread of its own: the caller (the collector's
        loop, serving every source) never does."""
        self.closed = True
        if self._running.is_set():
            self._close_trace()
        elif self._closer is None:
            self._closer = threading.Thread(target=self._close_when_started,
                                            name=f"live close {self.label}", daemon=True)
            self._closer.start()

    def _close_when_started(self) -> None:
        if not self._running.wait(_DECODER_START_WAIT):
            log.warning("%s: live view: the decoder did not start", self.label)
        self._close_trace()

    def _close_trace(self) -> None:
        try:
            api.CloseTrace(self.handle)
        except Win32Error:
            pass

    @property
    def done(self) -> bool:
        """Closed and decoded to its end (ProcessTrace returned)."""
        return not self._thread.is_alive() and (self._closer is None
                                                 or not self._closer.is_alive())

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait until ``done``, for ``timeout`` seconds at most in all."""
        deadline = None if timeout is None else time.monotonic() + timeout
        if self._closer is not None:
            self._closer.join(timeout)
        self._thread.join(None if deadline is None
                          else max(0.0, deadline - time.monotonic()))

    # -- callbacks (ProcessTrace's thread) ---------------------------------------------------
    def _completed(self, buffer, context) -> None:
        self.view._release(len(buffer))
        with self._lock:            # the buffer is released: room for another
            self.pending -= 1

    def _on_event(self, event) -> None:
        self._running.set()
        self._events.append(_EventRecordView(event))

    def _on_buffer(self, buffer, size, info, context) -> bool:
        events, self._events = self._events, []
        if info.LogfileHeader is not None and info.LogfileHeader.PointerSize:
            self._ctx.pointer_size = info.LogfileHeader.PointerSize
        if events:
            lines = self.view.format(events, self._ctx)
            self.lines += len(lines)
            self.view.write(self.label, lines)
        return True

    def _process(self) -> None:
        try:
            api.ProcessTrace([self.handle])
        except Win32Error as exc:
            log.error("%s: live view stopped: %s", self.label, exc)


class LiveView:
    """Decoded lines of every source, written to ``out`` as ``[label] line``.

    ``tmfset``: the formats (``wpptrace.tmf.load``); ``prefix``/``utc``: as ``wpptrace fmt``.
    ``max_pending``: buffers held per source, ``max_pending_bytes``: by all sources (more
    are skipped for the view and counted), header buffers included; ``max_views``: views of
    closed sources still decoding (a source that finds that many, or whose header buffer
    finds no room, gets no view: see ``open``). The views of open sources are bounded by
    the caller (the collector's bound on the sources it keeps).
    """

    def __init__(self, tmfset, out: Optional[IO[str]] = None, *, prefix: Optional[str] = None,
                 utc: bool = False, max_pending: int = 256, max_pending_bytes: int = 256 << 20,
                 max_views: int = 64):
        if max_views < 1:
            raise ValueError(f"max_views must be at least 1, not {max_views}")
        self.decoder = WppDecoder(tmfset, prefix=prefix, utc=utc)
        self.out = sys.stdout if out is None else out
        self.max_pending = max_pending
        self.max_pending_bytes = max_pending_bytes
        self.max_views = max_views
        self.pending_bytes = 0
        #: sources that got no view (see ``open``)
        self.views_refused = 0
        self._budget_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._format_lock = threading.Lock()
        #: the views of open sources, and of closed ones still decoding
        self.views: list[SourceView] = []

    def open(self, label: str, header: bytes) -> Optional[SourceView]:
        """Start decoding a source; ``header`` is its header buffer (added first). None if
        the views of ``max_views`` closed sources still decode (an output that does not
        drain), or its header buffer does not fit in ``max_pending_bytes``: the source is not
        shown, not later either (the caller counts its buffers as skipped); the first such
        refusal is said, all are counted in ``views_refused``."""
        # views whose decoding is over are let go: a collector sees sources come and go
        self.views = [v for v in self.views if not v.done]
        printing = sum(v.closed for v in self.views)
        if printing >= self.max_views:
            why = (f"the views of {printing} closed sources are still printing (the most "
                   f"there may be)")
        elif not self._reserve(len(header)):
            why = (f"the views hold {self.pending_bytes} bytes (of {self.max_pending_bytes}) "
                   f"not yet shown")
        else:
            try:
                view = SourceView(self, label, self.max_pending)
            except BaseException:
                self._release(len(header))
                raise
            view.add(header, reserved=True)
            self.views.append(view)
            return view
        self.views_refused += 1
        if self.views_refused == 1:
            log.warning("%s: not shown live: %s; its file is written as ever (such sources "
                        "are counted in their summary, this is said once)", label, why)
        return None

    def _reserve(self, size: int) -> bool:
        with self._budget_lock:
            if self.pending_bytes + size > self.max_pending_bytes:
                return False
            self.pending_bytes += size
            return True

    def _release(self, size: int) -> None:
        with self._budget_lock:
            self.pending_bytes -= size

    def format(self, events: list, ctx: FileContext) -> list[str]:
        """tracefmt lines of ``events`` (one decoder for every source: one at a time)."""
        decoder = self.decoder
        lines = []
        with self._format_lock:
            for rec in events:
                if rec.kind == "message":
                    lines.append(decoder.decode_record(rec, ctx).line)
                elif rec.is_header:
                    lines.append(decoder.header_line(rec, ctx))
            return lines

    def join(self, timeout: float = 60.0) -> list[SourceView]:
        """Wait until every closed source's queued buffers are printed, for ``timeout``
        seconds at most in all (0: not at all); the views not done by then (an output that
        does not drain, say: their threads are daemons, left to it)."""
        deadline = time.monotonic() + timeout
        for view in list(self.views):
            view.join(max(0.0, deadline - time.monotonic()))
        return [view for view in self.views if not view.done]

    def write(self, label: str, lines: list[str]) -> None:
        """``lines`` tagged ``[label]``, each on its one line: the text comes from remote
        relays, so control characters but tab are escaped (a message could otherwise set the
        terminal's title or clipboard, move its cursor, or start a line that forges another
        source's; the source's file keeps the bytes as sent)."""
        tag = f"[{label}] "
        text = "".join(tag + escape_unprintable(line, "\t") + "\n" for line in lines)
        with self._write_lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):
                pass            # the reader went away: the files are what matters
