"""The relay: a live session's buffers, in order, to a collector over TCP (optionally TLS).

Three parts, so that the network can never slow the traced application down:

* a **pump** thread reads the session as a real-time consumer
  (``wpptrace.provider.sessions.subscribe_realtime``) and puts each buffer in the outbox; it
  only ever copies, so the session's own queue for the relay stays short;
* the **outbox** holds at most ``max_queue`` buffers and ``max_queue_bytes`` bytes (sent
  ones kept until the collector acknowledges them, for resuming; one buffer at least, the
  header buffer aside); when it is full the oldest sent one is let go, or if
  none was sent the new buffer is dropped whole and counted (``relay_dropped``); a sent one
  let go is counted too once its connection broke before the collector acknowledged it;
* a **sender** (asyncio, its own thread) connects, says HELLO, resumes where the collector
  asks, sends buffers, STATS every second and END when the session stops, and reconnects
  after a failure (backoff up to 5 s) while the pump goes on.

Buffers go out in the order the session flushed them (the header buffer first, each
processor's buffers in sequence order: the order ProcessTraceAddBufferToBufferStream
requires). Buffers the session dropped before the relay read them are found from gaps in
the buffers' SequenceNumbers while it runs, and at its end from the last SequenceNumber it
says it flushed (drops after the last buffer received leave no gap); both are reported as
``session_lost``. ``add()`` lets any other
source of buffers (a BufferCallback) feed a relay instead of a session.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import math
import socket
import ssl
import threading
import time
import uuid
from typing import Optional

from wpptrace.decoder.buffers import buffer_info
from wpptrace.decoder.timestamps import FILETIME_UNIX_EPOCH
from wpptrace.winerror import (ERROR_ACCESS_DENIED, ERROR_BUSY, ERROR_CANCELLED,
                               ERROR_DISK_FULL, ERROR_HANDLE_EOF, ERROR_NOT_SUPPORTED)

from . import protocol as P

__all__ = ["Relay", "RelayStats", "RelayRefused", "parse_address", "filetime_now"]

log = logging.getLogger("wpptrace.remote.relay")

#: collector answers that end the relay instead of a retry (ERROR_DISK_FULL: the stream's
#: file reached the collector's bound for one source; a disk that is full says ERROR_BUSY)
_FATAL = {ERROR_ACCESS_DENIED, ERROR_NOT_SUPPORTED, ERROR_DISK_FULL}


def filetime_now() -> int:
    return time.time_ns() // 100 + FILETIME_UNIX_EPOCH


def parse_address(text: str, default_host: str = "") -> tuple[str, int]:
    """``HOST:PORT``, ``[V6]:PORT`` or ``PORT`` -> (host, port). Raises ValueError."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = default_host, text
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{text!r}: expected [HOST:]PORT with a port number 0..65535")
    return host or default_host, int(port)


class _GiveUp(Exception):
    """The relay stops trying to deliver the stream; the text says why (after "could not
    deliver the stream", or "END not acknowledged")."""


class _StreamLost(Exception):
    """The collector welcomed below what it acknowledged after END went out, every buffer
    acknowledged: only END's ACK was missing; the text says why the relay is done."""


class RelayRefused(Exception):
    """The collector refused this relay (ERROR frame): ``code`` (Win32) and its reason."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code = code


@dataclasses.dataclass
class RelayStats:
    buffers_read: int = 0       #: data buffers taken from the session (or add())
    buffers_sent: int = 0       #: BUFFER frames written to a connection (resends included)
    bytes_sent: int = 0
    relay_dropped: int = 0      #: dropped here because the outbox was full: new buffers not
                                #: queued, and sent ones let go before the collector
                                #: acknowledged them whose connection then broke
    session_lost: int = 0       #: dropped by the session before the relay read them (gaps
                                #: while it runs; exact once it ended: see session_final)
    session_final: Optional[int] = None   #: the last SequenceNumber the session flushed, as
                                #: its end said (None before, or if the end did not say)
    session_dropped: Optional[int] = None  #: buffers the session dropped for this relay's
                                #: subscription (its queue was full), as its end said
    events_lost: int = 0        #: the session's EventsLost (last known)
    session_rt_lost: int = 0    #: the session's RealTimeBuffersLost, all consumers (last known)
    acknowledged: int = 0       #: the collector has everything below this sequence
    connects: int = 0


class _Outbox:
    """Buffers waiting to be sent or acknowledged, bounded; shared by the pump and the sender."""

    def __init__(self, limit: int, max_bytes: int):
        self.limit = max(1, limit)
        self.max_bytes = max_bytes
        self.bytes = 0              # of ``items``
        self.lock = threading.Lock()
        self.items: collections.deque[tuple[int, bytes]] = collections.deque()
        self.header: Optional[bytes] = None
        self.next_seq = 1           # the sequence the next buffer gets
        self.send_from = 1          # the first sequence not yet sent on this connection
        self.dropped = 0
        #: sent buffers let go before their ACK, as [first, end) sequence ranges: lost (and
        #: counted in ``dropped``) if their connection breaks, delivered if an ACK covers them
        self.let_go: collections.deque[list[int]] = collections.deque()
        self.end: Optional[int] = None      # FILETIME (or 0) once no more buffers will come
        self.ended_at: Optional[float] = None   # monotonic time ``end`` was set
        self.wake = lambda: None

    def put(self, buffer: bytes) -> bool:
        with self.lock:
            seq = self.next_seq
            self.next_seq += 1
            while self.items and (len(self.items) >= self.limit
                                  or self.bytes + len(buffer) > self.max_bytes):
                if self.items[0][0] < self.send_from:     # sent, not yet acknowledged: let go
                    first = self._pop()
                    if self.let_go and self.let_go[-1][1] == first:
                        self.let_go[-1][1] = first + 1
                    else:
                        self.let_go.append([first, first + 1])
                else:
                    self.dropped += 1
                    return False
            self.items.append((seq, buffer))
            self.bytes += len(buffer)
        self.wake()
        return True

    def _pop(self) -> int:
        """Let the oldest buffer go (under the lock); its sequence."""
        seq, buffer = self.items.popleft()
        self.bytes -= len(buffer)
        return seq

    def acknowledge(self, upto: int) -> None:
        with self.lock:
            while self.items and self.items[0][0] < upto:
                self._pop()
            self._delivered(upto)

    def _delivered(self, upto: int) -> None:
        """The collector has every sequence below ``upto``: the ones let go among them
        arrived."""
        while self.let_go and self.let_go[0][1] <= upto:
            self.let_go.popleft()
        if self.let_go:
            self.let_go[0][0] = max(self.let_go[0][0], upto)

    def unconfirmed(self) -> int:
        """Sent buffers let go that no ACK has covered yet."""
        with self.lock:
            return sum(end - first for first, end in self.let_go)

    def resume(self, at: int) -> None:
        """A (new) connection wants everything from ``at`` on (in one step: a buffer put
        meanwhile must not take the old connection's sending for this one's). Sent buffers
        let go from ``at`` on never arrived: they are dropped."""
        with self.lock:
            while self.items and self.items[0][0] < at:
                self._pop()
            self._delivered(at)
            self.dropped += sum(end - first for first, end in self.let_go)
            self.let_go.clear()
            self.send_from = max(at, 1)

    def oldest(self) -> int:
        """The sequence of the oldest buffer held (the next one's if none is): read under
        the lock, as ``put`` may let the oldest go (and briefly hold none) meanwhile."""
        with self.lock:
            return self.items[0][0] if self.items else self.next_seq

    def take(self) -> Optional[tuple[int, bytes]]:
        """The next buffer to send, or None."""
        with self.lock:
            for seq, data in self.items:     # few sent-unacknowledged ones come first
                if seq >= self.send_from:
                    self.send_from = seq + 1
                    return seq, data
            self.send_from = max(self.send_from, self.next_seq)
            return None

    def finish(self, end_time: int) -> None:
        with self.lock:
            if self.end is None:
                self.end = end_time
                self.ended_at = time.monotonic()
        self.wake()


class Relay:
    """Send a live session's buffers (or buffers given to ``add``) to a collector.

    ``to``: (host, port) or "HOST:PORT"; ``tls``: an ``ssl.SSLContext`` for the client side
    (``wpptrace.remote.tls.client_context``), None for plain TCP; ``server_hostname``: the
    name the collector's certificate must carry (default: the host). ``host``: the host
    name the collector shows: ASCII letters, digits, ".", "-" and "_" only, ValueError
    otherwise (default: this host's, or one made from it if it has other characters:
    ``protocol.host_name_from``). ``max_queue``: buffers held at most, ``max_queue_bytes``: bytes
    (one buffer at least). ``start()`` subscribes (Win32Error if there is no such real-time session)
    and returns; ``wait()`` blocks until the relay is done; ``stop()`` ends it early (what
    is queued is still sent). Once the stream ended (or was stopped), a relay that cannot
    deliver it gives up after ``linger`` seconds without progress (no ACK of more buffers,
    no answer that the collector has it in hand: a file it closes, say; a connection that
    stays up waits at least ``reply_timeout``, and one on which the collector is silent is
    left to that timeout, whose retry learns how the close goes), and at the latest
    ``linger_limit`` seconds
    after its end, connected or not; after a ``stop()`` (a service manager's, say: it must
    end the process promptly), at the latest ``stop_limit`` seconds after it (30 by default;
    None: no limit of its own, only the two above), saying what it gave up on; a second
    ``stop()`` gives up at once. A give-up that leaves every buffer acknowledged (only END's
    ACK missing) left nothing undelivered, however it came, but only a sign that END reached
    the collector makes it a delivered stream (see ``outcome`` and ``end_unconfirmed``).
    ``reply_timeout``: a connection on which the
    collector said nothing for this long (it ACKs every STATS, sent every
    ``stats_interval``) is closed and retried.
    """

    def __init__(self, to, *, session: Optional[str] = None, buffer_size: int = 0,
                 tls: Optional[ssl.SSLContext] = None, server_hostname: Optional[str] = None,
                 max_queue: int = 1024, max_queue_bytes: int = 64 << 20,
                 source_id: Optional[uuid.UUID] = None,
                 host: Optional[str] = None, name: Optional[str] = None,
                 stats_interval: float = 1.0, connect_timeout: float = 10.0,
                 linger: float = 30.0, linger_limit: float = 300.0, max_backoff: float = 5.0,
                 reply_timeout: float = 60.0, stop_limit: Optional[float] = 30.0):
        self.address = parse_address(to) if isinstance(to, str) else (to[0], int(to[1]))
        self.session = session
        self.name = name or session or "buffers"
        self.buffer_size = buffer_size
        self.tls = tls
        self.server_hostname = server_hostname
        self.source_id = source_id or uuid.uuid4()
        if host:
            problem = P.host_name_problem(host)
            if problem:         # (the collector would refuse it)
                raise ValueError(f"{problem}: a collector refuses it")
            self.host = host
        else:                   # (this host's name may be one a collector refuses)
            own = socket.gethostname() or "localhost"
            self.host = P.host_name_from(own)
            if self.host != own:
                log.info("%s: this host's name %r is sent as %r (a collector takes only ASCII "
                         "letters, digits, '.', '-' and '_'; --host-name sets another)",
                         self.name, own, self.host)
        self.stats_interval = stats_interval
        self.connect_timeout = connect_timeout
        self.linger = linger
        self.linger_limit = linger_limit
        self.stop_limit = stop_limit
        self.max_backoff = max_backoff
        self.reply_timeout = reply_timeout
        self.stats = RelayStats()
        #: set when done: "ended" (the session's own end) or "stopped" (the relay's), both
        #: delivered; either followed by ": END not acknowledged" and why the relay gave up
        #: ("within N s of its end", "within N s of the stop", ...) when it gave up on END's
        #: ACK alone, every buffer it held acknowledged (the rest were dropped, and counted),
        #: whichever limit or stop came first, then whether END is known to have reached the
        #: collector (see ``end_unconfirmed``); or why it failed (buffers left undelivered, a
        #: refusal)
        self.outcome: Optional[str] = None
        #: True when the relay gave up with every buffer acknowledged but no sign that END
        #: reached the collector (its ACK, an answer that the source's file is being closed,
        #: or that the stream already ended): the collector's file may lack the session's
        #: end time and the last loss counts (``wpptrace relay`` exits 3)
        self.end_unconfirmed = False
        #: why reading the session failed after it started, or None: the stream was ended
        #: there, and what the session wrote after it was never read (``wpptrace relay``
        #: exits 1)
        self.read_failure: Optional[str] = None
        self.refused: Optional[RelayRefused] = None
        self._outbox = _Outbox(max_queue, max_queue_bytes)
        self._subscription = None
        self._stop = threading.Event()
        self._done = threading.Event()
        #: set when the session has ended and every buffer it gave was read (queued, sent or
        #: dropped): what is left is only the sending
        self.session_ended = threading.Event()
        self._threads: list[threading.Thread] = []
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._wakeup: Optional[asyncio.Event] = None
        self._backoff = 0.2             # the wait before the next connection after a failure
        self._busy_said = False         # ERROR_BUSY said since the relay last got in
        self._proven = False            # the current connection got an ACK
        self._session_seq_max = 0
        self._session_seq_seen = 0
        self._last_heard = 0.0          # monotonic time of the collector's last frame
        self._progress_at = 0.0         # ... of its last ACK of more, or answer that it has
                                        # the stream in hand
        self._retry_from: Optional[float] = None  # the first lost connection after the end
        self._header_taken = False      # the collector has the header buffer (a WELCOME
                                        # past it, or an ACK; not once it asks for it again)
        self._cut = False               # stopped a second time: give up now
        self._stopped_at: Optional[float] = None    # monotonic time of the first stop()
        self._end_sent_at: Optional[float] = None   # ... of END on the current connection
        self._end_seq: Optional[int] = None         # END's sequence on the current connection
        self._end_acked = False         # an ACK of END's sequence came after END on it
        self._acks: Optional[asyncio.Task] = None      # the connection's reader of answers
        self._dropping = False          # _attempt gave up on the connection (see _unless_dropped)
        self._end_ever_sent = False     # END went out on some connection
        self._end_reached = False       # a later answer said the collector has it (its
                                        # source's file being closed)
        self._stream_split = False      # a WELCOME below what was acknowledged: the collector
                                        # lost the stream, the rest goes to a new file

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "Relay":
        if self.session is not None:
            from wpptrace.provider.sessions import subscribe_realtime

            self._subscription = subscribe_realtime(self.session)
            self.buffer_size = self._subscription.buffer_size
            pump = threading.Thread(target=self._pump, name=f"relay-pump {self.session}",
                                    daemon=True)
            self._threads.append(pump)
        if not P.MIN_BUFFER_SIZE <= self.buffer_size <= P.MAX_BUFFER_SIZE:
            raise ValueError(f"buffer size {self.buffer_size} outside "
                             f"{P.MIN_BUFFER_SIZE}..{P.MAX_BUFFER_SIZE}")
        sender = threading.Thread(target=self._run_sender, name=f"relay-send {self.name}",
                                  daemon=True)
        self._threads.append(sender)
        for t in self._threads:
            t.start()
        return self

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the relay is done (True) or ``timeout`` passed (False)."""
        return self._done.wait(timeout)

    def stop(self) -> None:
        """Stop reading; send what is queued (up to ``linger`` s), then END, as after the
        session's own end or ``finish()``, for at most ``stop_limit`` s from now (even after
        the session's own end; 30 by default, None: ``linger_limit`` only). A second stop
        gives up at once instead: ``outcome`` says what was left undelivered."""
        if self._stop.is_set():
            self._cut = True
        else:
            self._stopped_at = time.monotonic()
        self._stop_reading()

    def _stop_reading(self) -> None:
        self._stop.set()
        if self._subscription is None:
            self._outbox.finish(0)
        self._outbox.wake()

    def close(self, timeout: float = 5.0) -> None:
        """Stop without waiting for the collector any longer than ``timeout``."""
        self.linger = min(self.linger, timeout)
        self.linger_limit = min(self.linger_limit, timeout)
        self._stop_reading()
        self.wait(timeout + 1.0)
        for t in self._threads:
            t.join(1.0)
        if self._subscription is not None:
            self._subscription.close()

    def __enter__(self) -> "Relay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    # -- feeding ---------------------------------------------------------------------------
    def add(self, buffer: bytes) -> bool:
        """Queue one buffer (the header buffer first, exactly ``buffer_size`` bytes each);
        False if it was dropped because the queue is full. Never blocks."""
        if not isinstance(buffer, bytes):
            buffer = bytes(buffer)
        if len(buffer) != self.buffer_size:
            raise ValueError(f"buffer of {len(buffer)} bytes (the buffer size is "
                             f"{self.buffer_size})")
        if self._outbox.header is None:
            if buffer_info(buffer).buffer_type != P.HEADER_BUFFER_TYPE:
                raise ValueError("the first buffer must be the header buffer")
            self._outbox.header = buffer
            self._outbox.wake()
            return True
        self.stats.buffers_read += 1
        ok = self._outbox.put(buffer)
        self._count_dropped()
        return ok

    def _count_dropped(self) -> None:
        """Copy the outbox's count (the pump and the sender both do: read and written under
        the outbox's lock, the later copy is never an older count)."""
        with self._outbox.lock:
            self.stats.relay_dropped = self._outbox.dropped

    def finish(self, end_time: Optional[int] = None) -> None:
        """No more buffers: the stream ends (``end_time``: FILETIME the session stopped, 0 if
        it did not; default now)."""
        self._outbox.finish(filetime_now() if end_time is None else end_time)

    def _pump(self) -> None:
        sub = self._subscription
        last_query = 0.0
        try:
            while not self._stop.is_set():
                data = sub.get(0.25)
                if data is None:
                    if sub.closed:
                        self._query_session()
                        self._count_session_end(sub)
                        self.finish()
                        self.session_ended.set()
                        return
                else:
                    if self._outbox.header is not None:
                        self._count_session_gap(data)
                    self.add(data)
                now = time.monotonic()
                if now - last_query >= self.stats_interval:
                    last_query = now
                    self._query_session()
            self._query_session()
            self._outbox.finish(0)
        except Exception as exc:   # never silently: the stream ends and says why
            self.read_failure = str(exc) or type(exc).__name__
            log.error("%s: reading the session failed: %s", self.name, exc)
            self._outbox.finish(0)

    def _count_session_gap(self, data: bytes) -> None:
        """Session buffers are numbered 1, 2, ... in flush order: the ones never seen were
        dropped before the relay read them."""
        seq = P.buffer_field(data, "SequenceNumber")
        self._session_seq_seen += 1
        self._session_seq_max = max(self._session_seq_max, seq)
        self.stats.session_lost = max(0, self._session_seq_max - self._session_seq_seen)

    def _count_session_end(self, sub) -> None:
        """The session's end says the last SequenceNumber it flushed: every one not received
        was lost, the last ones too (they leave no gap)."""
        final = sub.final_sequence
        if final is None:
            return          # the host died: the gaps seen are all that is known
        self.stats.session_final = final
        self.stats.session_dropped = sub.dropped
        self._session_seq_max = max(self._session_seq_max, final)
        self.stats.session_lost = max(0, self._session_seq_max - self._session_seq_seen)

    def _query_session(self) -> None:
        from wpptrace.provider import api
        from wpptrace.provider._hazmat import lib

        try:
            props = api.ControlTrace(0, self.session, None, lib.EVENT_TRACE_CONTROL_QUERY)
        except OSError:
            return          # stopped meanwhile: the last known counters stand
        self.stats.events_lost = int(props.EventsLost)
        self.stats.session_rt_lost = int(props.RealTimeBuffersLost)

    # -- sending ---------------------------------------------------------------------------
    def _current_stats(self) -> P.Stats:
        s = self.stats
        return P.Stats(self._outbox.dropped, s.session_lost, s.events_lost,
                       self._outbox.end or 0)

    def _run_sender(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._send_forever())
        except Exception as exc:
            self.outcome = f"failed: {exc}{self._undelivered()}"
            log.error("%s: %s", self.name, self.outcome)
        finally:
            loop.close()
            self._done.set()

    async def _send_forever(self) -> None:
        self._wakeup = asyncio.Event()
        loop = asyncio.get_running_loop()
        wakeup = self._wakeup

        def wake() -> None:
            try:
                loop.call_soon_threadsafe(wakeup.set)
            except RuntimeError:        # the sender is done and its loop closed: none to wake
                pass
        self._outbox.wake = wake
        self._welcomed()
        try:
            while True:
                while self._outbox.header is None and self._outbox.end is None:
                    await self._idle(0.25)
                if self._outbox.header is None:
                    self.outcome = "stopped"
                    return
                self._check_linger(connected=False)
                try:
                    if await self._attempt():
                        self._end_arrived("END acknowledged")
                        log.debug("%s: %s: %d buffers read, %d sent, %d dropped (queue full), "
                                  "%d lost by the session", self.name,
                                  "session stopped" if self._outbox.end else "relay stopped",
                                  self.stats.buffers_read, self.stats.buffers_sent,
                                  self._outbox.dropped, self.stats.session_lost)
                        return
                except _StreamLost as lost:
                    self._only_end_unacknowledged(str(lost))
                    return
                except RelayRefused as refused:
                    if refused.code == ERROR_HANDLE_EOF and self._end_ever_sent:
                        self._end_arrived("the stream ended")   # END arrived; its ACK did not
                        return
                    if refused.code == ERROR_HANDLE_EOF:
                        # an id the collector has seen end: another stream's (reused)
                        self.refused = refused
                        self.outcome = (f"refused: this source id's stream already ended at "
                                        f"the collector (an id names one stream: give each "
                                        f"stream a new one){self._undelivered(True)}")
                        log.error("%s: %s", self.name, self.outcome)
                        return
                    if refused.code == ERROR_CANCELLED:     # the collector stopped
                        if self._outbox.end is not None and self._all_acknowledged():
                            # only END's ACK was missing: a collector started again would
                            # make a new file of the header buffer alone
                            self._only_end_unacknowledged(" (the collector stopped)")
                            return
                        log.warning("%s: the collector stopped: %s (retrying)", self.name,
                                    refused)
                    elif refused.code == ERROR_BUSY:
                        if P.in_hand(refused.code, str(refused)):
                            self._progress_at = time.monotonic()
                            # (closed after END went out: END is what closes it)
                            if str(refused) == P.BUSY_FILE_CLOSING and self._end_ever_sent:
                                self._end_reached = True
                        log.log(logging.DEBUG if self._busy_said else logging.WARNING,
                                "%s: the collector is busy: %s (retrying)", self.name, refused)
                        self._busy_said = True
                    else:
                        log.error("%s: the collector refused: %s", self.name, refused)
                    if refused.code in _FATAL:
                        self.refused = refused
                        self.outcome = f"refused: {refused}{self._undelivered()}"
                        return
                except (OSError, EOFError, asyncio.TimeoutError, P.ProtocolError,
                        asyncio.IncompleteReadError) as exc:
                    log.warning("%s: connection to %s:%d: %s", self.name, *self.address,
                                _describe(exc))
                if self._outbox.end is not None and self._retry_from is None:
                    self._retry_from = time.monotonic()
                await self._idle(min(self._backoff, self._check_linger(connected=False)))
                self._backoff = min(self._backoff * 2, self.max_backoff)
        except _GiveUp as give_up:
            # decided on what is left, not on which limit (or stop) came first: with every
            # buffer acknowledged only END's ACK was missing, and the collector has the whole
            # stream (its close may be what is slow)
            if self._all_acknowledged():
                self._only_end_unacknowledged(str(give_up))
                return
            self.outcome = (f"failed: could not deliver the stream{give_up}"
                            f"{self._undelivered(True)}")
            log.error("%s: %s", self.name, self.outcome)

    def _end_arrived(self, sign: str) -> None:
        """END reached the collector (``sign``: how that is known): delivered, unless the
        collector had lost the stream before (see ``_collector_lost_the_stream``)."""
        self.outcome = "ended" if self._outbox.end else "stopped"
        if self._stream_split:
            self.end_unconfirmed = True
            self.outcome += (f": {sign}, but the collector had lost the stream before it and "
                             f"took the rest as a new file: the first file lacks the "
                             f"session's end time and last loss counts")
            log.warning("%s: %s", self.name, self.outcome)

    def _only_end_unacknowledged(self, why: str) -> None:
        """Done with every buffer acknowledged, END's ACK missing (``why``): delivered if an
        answer said the collector has END, else said as not confirmed (``end_unconfirmed``)."""
        said = f"{'ended' if self._outbox.end else 'stopped'}: END not acknowledged{why}"
        if self._stream_split:      # (a sign of END's arrival is the new file's, not the first's)
            self.end_unconfirmed = True
            self.outcome = (f"{said}: the collector had lost the stream before its end and "
                            f"took the rest as a new file: the first file lacks the session's "
                            f"end time and last loss counts")
        elif self._end_reached:
            self.outcome = f"{said} (the collector has it: its file was being closed)"
        else:
            self.end_unconfirmed = True
            self.outcome = (f"{said}: every buffer was delivered, but the end of the stream "
                            f"was not confirmed (the collector's file may lack the session's "
                            f"end time and last loss counts)")
        log.warning("%s: %s", self.name, self.outcome)

    def _check_linger(self, connected: bool) -> float:
        """Once the stream ended: raise _GiveUp when the relay should stop trying to deliver
        it, else return the seconds left until then (inf before the end). The linger counts
        from the last progress (a slow close at the collector is not a lost stream), or from
        the first lost connection after the end (the retries get their linger too), and on a
        connection that stays up it is at least ``reply_timeout`` and ends it only if the
        collector answers without progress: one that closes the file says nothing after END
        until END's ACK, and such a silent connection is left to the reply timeout, whose
        retry learns how the close goes (the file being closed, or the stream ended). The
        limit counts from the end, whatever the collector answers."""
        ended_at = self._outbox.ended_at
        if ended_at is None:
            return math.inf
        if self._cut:
            raise _GiveUp(": stopped after its end, before the collector acknowledged it")
        now = time.monotonic()
        since = max(ended_at, self._progress_at, self._retry_from or 0.0)
        linger = max(self.linger, self.reply_timeout) if connected else self.linger
        # silent: END went on this connection, and nothing but progress was heard since
        silent = (connected and self._end_sent_at is not None
                  and self._last_heard <= max(self._end_sent_at, self._progress_at))
        if now - since > linger and not silent:
            raise _GiveUp(f": no progress for {linger:g} s after its end")
        if now - ended_at > self.linger_limit:
            raise _GiveUp(f" within {self.linger_limit:g} s of its end")
        # a stop (SIGTERM from a service manager, say) waits no longer than its own limit
        hard = min(ended_at + self.linger_limit,
                   math.inf if self._stopped_at is None or self.stop_limit is None
                   else self._stopped_at + self.stop_limit)
        if now > hard:
            raise _GiveUp(f" within {self.stop_limit:g} s of the stop")
        left = min(since + linger, hard) - now
        if silent and left <= 0:        # (the reply timeout drops the connection)
            return min(0.25, hard - now)
        return left

    async def _attempt(self) -> bool:
        """One connection (see _connection), given up on as soon as the relay should stop
        trying after the end: a collector can keep a connection up, and answer on it, without
        ever taking the stream."""
        self._end_sent_at = None
        self._end_seq = None
        self._end_acked = False
        self._acks = None
        self._dropping = False
        task = asyncio.ensure_future(self._connection())
        try:
            while True:
                # END's ACK and the close after it, come as a limit ran out, are delivery:
                # looked at first (the connection has not returned yet, but will say so)
                if self._end_delivered():
                    return True
                left = self._check_linger(connected=True)
                # (before the end: looked at again every 0.25 s, to see the end come)
                done, _ = await asyncio.wait({task}, timeout=min(left, 0.25))
                if done:
                    return task.result()
        finally:
            if not task.done():
                self._dropping = True
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    def _end_delivered(self) -> bool:
        """Whether this connection's reader of answers ended normally after END's ACK (the
        collector closed the connection after it: END delivered)."""
        acks = self._acks
        return (acks is not None and acks.done() and not acks.cancelled()
                and acks.exception() is None and self._end_acked)

    def _welcomed(self) -> None:
        """A connection proved it works, its first ACK come (or none was tried yet): the next
        failure waits 0.2 s again, and an ERROR_BUSY is news again (said once, as a warning,
        since). A WELCOME alone proves nothing: a collector that cannot create the file
        welcomes, then refuses the header, and would be asked again every 0.2 s."""
        self._backoff = 0.2
        self._busy_said = False

    def _all_acknowledged(self) -> bool:
        """Whether the collector acknowledged the header and every buffer held (none sent and
        let go is left unconfirmed either)."""
        with self._outbox.lock:
            left = len(self._outbox.items)
        return self._header_taken and not left and not self._outbox.unconfirmed()

    def _undelivered(self, always: bool = False) -> str:
        """What a relay that gives up leaves, said as " (N buffers undelivered, M more sent
        and never acknowledged)": the buffers held, and those let go whose fate no ACK told
        ("" if none, unless ``always``)."""
        with self._outbox.lock:
            left = len(self._outbox.items)
        unknown = self._outbox.unconfirmed()
        if not (left or unknown or always):
            return ""
        return (f" ({left} buffers undelivered"
                + (f", {unknown} more sent and never acknowledged" if unknown else "") + ")")

    async def _idle(self, seconds: float) -> None:
        self._wakeup.clear()
        try:
            await asyncio.wait_for(self._wakeup.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def _connection(self) -> bool:
        """One connection: True when the stream was delivered to its END."""
        host, port = self.address
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self.tls,
                                    server_hostname=(self.server_hostname or host) if self.tls else None),
            self.connect_timeout)
        self.stats.connects += 1
        transport = writer.transport
        transport.set_write_buffer_limits(high=4 << 20)
        acks: Optional[asyncio.Task] = None
        try:
            self._unless_dropped()
            hello = P.Hello(self.source_id, self.buffer_size, self.name, self.host)
            writer.write(P.encode_hello(hello, self._outbox.oldest()))
            try:
                frame = await asyncio.wait_for(P.read_frame(reader, P.FROM_COLLECTOR),
                                               self.connect_timeout)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError) as exc:
                hint = " (was this relay's certificate refused?)" if self.tls else ""
                raise EOFError(f"the collector closed the connection before answering{hint}: "
                               f"{_describe(exc)}") from None
            self._unless_dropped()
            if frame.type == P.FrameType.ERROR:
                raise RelayRefused(*P.decode_error(frame))
            if frame.type != P.FrameType.WELCOME:
                raise P.ProtocolError(f"expected WELCOME, got {frame.type.name}")
            resume = frame.sequence
            if resume < self.stats.acknowledged:
                self._collector_lost_the_stream()
            self._proven = False        # until the collector ACKs on it (see _read_acks)
            self._last_heard = time.monotonic()
            log.info("%s: connected to %s:%d (resuming at %d)", self.name, host, port, resume)
            self._header_taken = resume > 0
            if resume == 0:
                writer.writelines(P.encode_buffer(P.FrameType.HEADER, 0, self._outbox.header))
            self._outbox.resume(resume)
            self._count_dropped()
            acks = self._acks = asyncio.ensure_future(self._read_acks(reader))
            return await self._send_loop(writer, acks)
        finally:
            if acks is not None:
                acks.cancel()
            transport.abort() if transport is not None else None

    def _unless_dropped(self) -> None:
        """CancelledError if the relay gave up on this connection (see _attempt) as a step of
        it ended: Python 3.10 and 3.11's wait_for drops the cancellation when what it waits
        for ended in the same turn, and returns the result. The connection went on (said
        HELLO, waited up to ``connect_timeout`` for the answer, then sent the stream) while
        the give-up (a second stop, the stop limit, the linger) waited for it to end."""
        if self._dropping:
            raise asyncio.CancelledError()

    def _collector_lost_the_stream(self) -> None:
        """A WELCOME below what the collector acknowledged: it no longer holds the source
        (restarted, or its file closed without END), and what it gets now makes a new file.
        After END went out with every buffer acknowledged, only END's ACK was missing: done
        (``_StreamLost``), rather than send a file of the header buffer alone and END. Else
        the stream goes on there, and even END's ACK then leaves the first file's end
        unconfirmed. An earlier answer that the file was being closed (``_end_reached``) is
        kept when done: that close was END's (a collector stopped meanwhile, and started
        again), as after its ERROR_CANCELLED."""
        if (self._outbox.end is not None and self._end_ever_sent
                and self._all_acknowledged()):
            raise _StreamLost(" (the collector no longer has the stream: it would start a new "
                              "file)")
        self._end_reached = False
        self._stream_split = True

    async def _send_loop(self, writer: asyncio.StreamWriter, acks: asyncio.Task) -> bool:
        outbox = self._outbox
        stats = self.stats
        next_stats = time.monotonic() + self.stats_interval
        end_sent: Optional[int] = None
        while True:
            if acks.done():
                # END's ACK carries the value of the ACKs after the last buffer and after
                # STATS (one may cross END on the wire): END is acknowledged only by an ACK
                # of its sequence after it that the collector then closes the connection on
                if acks.exception() is None and self._end_acked:
                    return True
                raise acks.exception() or EOFError("the collector closed the connection")
            self._wakeup.clear()
            end = outbox.end          # read before take(): every buffer put before it is seen
            item = outbox.take()
            if item is not None:
                seq, data = item
                parts = P.encode_buffer(P.FrameType.BUFFER, seq, data)
                writer.writelines(parts)
                stats.buffers_sent += 1
                stats.bytes_sent += P.HEADER.size + len(parts[1])
                if writer.transport.get_write_buffer_size() > (1 << 20):
                    await self._drain(writer, acks)
            elif end is not None and end_sent is None:
                end_sent = outbox.next_seq
                writer.write(P.encode_stats(P.FrameType.END, end_sent, self._current_stats()))
                self._end_sent_at = time.monotonic()
                self._end_seq = end_sent
                self._end_ever_sent = True
                await self._drain(writer, acks)
            else:
                await self._drain(writer, acks)
                wait = next_stats - time.monotonic() if end_sent is None else 1.0
                if wait > 0:
                    woken = asyncio.ensure_future(self._wakeup.wait())
                    try:
                        await asyncio.wait({acks, woken}, timeout=wait,
                                           return_when=asyncio.FIRST_COMPLETED)
                    finally:
                        woken.cancel()
            now = time.monotonic()
            if not acks.done():     # (else looked at first: END's close is no timeout)
                self._check_heard(now)
            if now >= next_stats and end_sent is None:
                next_stats = now + self.stats_interval
                writer.write(P.encode_stats(P.FrameType.STATS, outbox.next_seq,
                                            self._current_stats()))

    def _check_heard(self, now: float) -> None:
        if now - self._last_heard > self.reply_timeout:
            raise asyncio.TimeoutError(f"the collector answered nothing for "
                                       f"{self.reply_timeout:g} s")

    async def _drain(self, writer: asyncio.StreamWriter, acks: asyncio.Task) -> None:
        """Wait until the connection took what was written, as long as the collector is
        heard from (a collector that stopped reading would hold the relay forever), or until
        ``acks``, the reader of its answers, finished: the send loop looks at that first (END's
        ACK and close, come as the reply timeout ran out, are no timeout)."""
        drained = asyncio.ensure_future(writer.drain())
        try:
            while not drained.done():
                left = self._last_heard + self.reply_timeout - time.monotonic()
                await asyncio.wait({drained, acks}, timeout=max(left, 0.05),
                                   return_when=asyncio.FIRST_COMPLETED)
                if acks.done():
                    return
                if not drained.done():
                    self._check_heard(time.monotonic())     # else an ACK came: wait on
            drained.result()
        finally:
            if not drained.done():
                drained.cancel()
            elif not drained.cancelled():
                drained.exception()     # (retrieved: the reader says how the connection went)

    async def _read_acks(self, reader: asyncio.StreamReader) -> None:
        """Read the collector's answers until it closes the connection: normally (returns)
        once END's ACK came (see ``_end_acked``), else by raising."""
        while True:
            try:
                frame = await P.read_frame(reader, P.FROM_COLLECTOR)
            except asyncio.IncompleteReadError as exc:
                if self._end_acked and not exc.partial:
                    return                          # closed after END's ACK: delivered
                raise
            heard = time.monotonic()
            end_seq = self._end_seq
            if (frame.type != P.FrameType.ACK or frame.sequence != end_seq
                    or frame.sequence > self.stats.acknowledged):
                # (an ACK of END's value that says nothing new may have been sent before the
                # collector read END: END's connection is still silent)
                self._last_heard = heard
            if frame.type == P.FrameType.ACK:
                if not self._proven:                # the connection works: start afresh
                    self._proven = True
                    self._welcomed()
                sent = self._outbox.send_from       # every sequence below it was sent or dropped
                if frame.sequence > sent:
                    raise P.ProtocolError(f"ACK of sequence {frame.sequence}: only those below "
                                          f"{sent} were sent")
                self._header_taken = True           # (an ACK says the file was made)
                if frame.sequence > self.stats.acknowledged:
                    self._progress_at = heard
                    self.stats.acknowledged = frame.sequence
                    self._outbox.acknowledge(frame.sequence)
                    if self._wakeup is not None:
                        self._wakeup.set()
                if end_seq is not None and frame.sequence >= end_seq:
                    self._end_acked = True          # END's, if the connection closes next
            elif frame.type == P.FrameType.ERROR:
                raise RelayRefused(*P.decode_error(frame))
            else:
                raise P.ProtocolError(f"unexpected {frame.type.name} from the collector")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return "the collector closed the connection"
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
