"""The collector: accepts relays (TCP or TLS), one .etl file and/or live view per source.

One asyncio loop (its own thread) serves every connection; each source's file is created,
written and closed in a thread of its own (``_DiskWriter``), so a slow or stuck disk holds
up only that source. A buffer is acknowledged once it is written to the file, never before
(the file is flushed to the disk when it closes); a source's
queue of buffers not yet written is bounded (its connection is not read meanwhile), and so
is the sum of all queues. A connection must say HELLO
first; then every frame is checked (protocol.read_frame: sizes, version, direction) and
fits the conversation (``_Source.take``: header buffer first and once, sequence numbers
increasing, each processor's buffers in order, buffers of the announced size). Anything
else closes that connection with a logged reason (sent to the relay as an ERROR frame);
no other source notices. A source whose connection is lost keeps its file open for
``resume_window`` seconds: a relay that reconnects with the same source id resumes where
the file ends, and whatever it can no longer send is counted as lost.

Lost buffers (the header's BuffersLost): gaps in the relay's sequence numbers (buffers the
relay dropped, or lost with a connection) plus those the session dropped before the relay
read them (the relay reports these). EventsLost is the session's, as the relay last saw it.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import ipaddress
import logging
import os
import queue
import re
import ssl
import threading
import time
import uuid
from typing import Callable, Optional

from wpptrace.decoder.buffers import buffer_info
from wpptrace.winerror import (ERROR_ACCESS_DENIED, ERROR_BUSY, ERROR_CANCELLED,
                               ERROR_DISK_FULL, ERROR_HANDLE_EOF, ERROR_INVALID_PARAMETER,
                               NAMES, Win32Error, in_words)

from . import protocol as P
from .etlstream import EtlStreamFile
from .sayer import Sayer

__all__ = ["Collector", "SourceStats", "Abandoned", "QUEUED_PER_SOURCE", "check_allow",
           "is_loopback", "peer_host", "peer_network"]

log = logging.getLogger("wpptrace.remote.collector")

_ACK_EVERY = 8          # buffers between ACKs (and one after every STATS)
#: bytes of one source's buffers waiting for its disk, by default (or ``max_queued`` if less)
QUEUED_PER_SOURCE = 4 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: names tried for a source's file: NAME.etl, NAME-2.etl ... (an existing file is never used)
_NAMES_TRIED = 999
_START_TLS = hasattr(asyncio.StreamWriter, "start_tls")
#: ended streams remembered (a relay that missed the last ACK is told it is done), and
#: streams whose file reached ``max_file_size`` (a relay that comes back is refused again)
_ENDED_KEPT = 4096
#: finished sources listed by ``sources`` (anyone may say HELLO: the list must not grow forever)
_FINISHED_KEPT = 4096
#: the largest BUFFER sequence: END and every ACK carry the one after it, in the same u64
_LAST_BUFFER_SEQUENCE = (1 << 64) - 2
#: NAT64's well-known prefix: the IPv4 host is the address's last 32 bits
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


@dataclasses.dataclass
class SourceStats:
    """What the collector knows about one source (a relay's stream)."""

    source_id: uuid.UUID
    label: str                       #: session@host
    session: str
    host: str
    peer: str
    identity: Optional[str] = None   #: the relay's TLS certificate name, if it showed one
    path: Optional[str] = None       #: the .etl file written, if any
    buffers: int = 0                 #: data buffers received
    bytes: int = 0
    lost: int = 0                    #: buffers missing from the file (BuffersLost)
    sequence_gaps: int = 0           #: of which: gaps in the relay's sequence numbers
    unwritten: int = 0               #: ... and buffers received but never written (a write
                                     #: failed, or the file was given up on); known once
                                     #: ``closed``
    relay_dropped: int = 0           #: as the relay reports them
    session_lost: int = 0            #: as the relay reports them
    events_lost: int = 0
    connections: int = 0
    connected: bool = False
    disk_waits: int = 0              #: times its connection was not read: its queue of
                                     #: buffers not yet written was full
    live_skipped: int = 0            #: buffers the live view skipped (its decoder was
                                     #: behind, or it had no room for this source; the
                                     #: file has them); known once ``closed``
    ended: bool = False              #: END received: the relay delivered everything
    stopped: bool = False            #: ... and the session had stopped: its file was closed
                                     #: with the session's EndTime (never a file that lacks
                                     #: buffers, or given up on); set with ``closed``
    closed: bool = False             #: the file is closed, or left to a disk that does not
                                     #: answer (``stopped`` and ``file_error`` final)
    file_error: str = ""             #: why the file may lack data (writing or closing it
                                     #: failed)
    reason: str = ""                 #: why the last connection closed


@dataclasses.dataclass
class Abandoned:
    """What a ``Collector.stop()`` that gave up waiting left behind (its thread was stuck,
    say in a write to a disk that does not answer)."""

    connections: int                 #: connections not closed
    files: list[str]                 #: files not closed (readable up to their last
                                     #: header), or still being made
    buffers: int                     #: data buffers received and not yet in their file
                                     #: (being written, or queued behind that write)
    views: int = 0                   #: live views not done printing (an output that does
                                     #: not drain): what they held is not shown

    def __str__(self) -> str:
        views = (f", {self.views} live views not done printing (their output does not "
                 f"drain)" if self.views else "")
        return (f"{self.connections} connections not closed, {len(self.files)} files not "
                f"closed ({', '.join(self.files) or 'none'}), {self.buffers} buffers "
                f"received and not written{views}")


class _DiskWriter:
    """One source's file, created, written and closed in a thread of its own, in the order
    asked (a daemon thread: a disk that never answers holds up neither the other sources nor
    the process's exit). ``create(writer)`` makes the file, the first job; its outcome,
    ``created(path, failure)``, each write's, ``written(seq, size, error)``, and the close's,
    ``settle(error)``, are called in the collector's thread; its own lines go through
    ``say`` (the collector's bound on lines about sources, from any thread). After a failed
    creation or write the later writes are not tried (each reports that error), but a file
    made is still closed: EndTime 0 if any buffer handed to it was not written (it does not
    pass for a session that stopped cleanly), those buffers counted in the header's
    BuffersLost. RuntimeError if no thread can be had."""

    def __init__(self, create: Callable[["_DiskWriter"], EtlStreamFile],
                 loop: asyncio.AbstractEventLoop,
                 created: Callable[[Optional[str], Optional[P.ProtocolError]], None],
                 written: Callable[[int, int, str], None], label: str,
                 say: Callable[..., None]):
        self._file: Optional[EtlStreamFile] = None
        self._say = say
        self.label = label              # its source's (what it says names it)
        self._error = ""
        self._loop = loop
        self._created = created
        self._written = written
        #: the file being made, then made (set by ``create`` in the writer's thread: a
        #: creation that hangs can still be named)
        self.path: Optional[str] = None
        #: why the collector gave up on this thread (set in the collector's thread)
        self._abandoned: Optional[str] = None
        self._settle: Optional[Callable[[str], None]] = None
        #: the loss counts last asked for (set in the collector's thread, in order: the
        #: close, queued after them, reads them even if their job was skipped or dropped)
        self._lost_asked = (0, 0)
        #: buffers handed to it and not written: failed or skipped (the writer's thread) ...
        self._not_written = 0
        #: ... and dropped from the queue when it was given up on (``abandon``)
        self._dropped = 0
        #: the two above as of when it was given up on: what the source's stats say (its
        #: file's header says what the file lacks once its thread is done: one more if the
        #: write under way then fails, which is said then)
        self._unwritten_given_up: Optional[int] = None
        #: the EndTime its file was closed with (None: not closed, or no file made)
        self.end_time_written: Optional[int] = None
        #: the EndTime its close decided to write (under ``_lock``; None: not decided yet,
        #: or no file to close). Given up on before that decision, it decides 0: only a
        #: close given up on after deciding a non-zero EndTime may still write one
        self.closing_with: Optional[int] = None
        self._lock = threading.Lock()   # (abandon's emptying of the queue vs the close)
        #: set when its thread ends (its file closed, or never made)
        self.finished = threading.Event()
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._work.put((self._create, create, created))
        threading.Thread(target=self._run, name="collector-disk", daemon=True).start()

    def write(self, seq: int, data: bytes) -> None:
        self._work.put((self._write, seq, data))

    def set_lost(self, events_lost: int, buffers_lost: int) -> None:
        self._lost_asked = (events_lost, buffers_lost)
        self._work.put((self._set_lost, events_lost, buffers_lost))

    def close(self, end_time: int, settle: Callable[[str], None]) -> None:
        if self._abandoned is not None:     # (its thread closes the file if it ever can)
            self._loop.call_soon(settle, self._abandoned)
            return
        self._settle = settle
        self._work.put((None, end_time, settle))

    def abandon(self, reason: str) -> None:
        """Give up on a thread stuck in the disk (in the collector's thread): no outcome of
        it is delivered any more, the jobs queued behind it are not tried, a close already
        asked is settled now with ``reason`` (a later one at once); if the disk ever
        answers, the thread closes the file and ends. The jobs queued are dropped now (their
        buffers are not kept for a thread that may never take them), all but the close."""
        if self._abandoned is not None:
            return
        self._abandoned = reason
        self._error = self._error or reason
        with self._lock:
            closes = []
            while True:
                try:
                    job = self._work.get_nowait()
                except queue.Empty:
                    break
                if job[0] is None:
                    closes.append(job)
                elif job[0] == self._write:
                    self._dropped += 1
            self._unwritten_given_up = self._not_written + self._dropped
            if self._settle is None:
                closes.append((None, 0, lambda error: None))
            for job in closes:
                self._work.put(job)
        if self._settle is not None:
            self._loop.call_soon(self._settle, reason)

    def unwritten(self) -> int:
        """Buffers handed to it that its file lacks (failed or skipped, or dropped when it
        was given up on): what its close adds to the header's BuffersLost (final once the
        close is settled; for a writer given up on, as of then: a write under way then
        that fails later is counted in the header, and said, but not here)."""
        with self._lock:
            if self._unwritten_given_up is not None:
                return self._unwritten_given_up
            return self._not_written + self._dropped

    def _tell(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(self._deliver, fn, args)
        except RuntimeError:    # the loop is closed: a stop gave up on this file
            pass

    def _deliver(self, fn, args) -> None:
        if self._abandoned is None:     # (read in the collector's thread, which sets it)
            fn(*args)
        elif fn is self._created and args[1] is not None:
            # its source, failed already, hears no more of it: said here, once
            self._say(logging.WARNING, "%s: the creation of a file given up on failed once "
                      "the disk answered: %s; no file was made", self.label, args[1])

    def _run(self) -> None:
        try:
            while True:
                op, a, b = self._work.get()
                if op is None:
                    self._close(a, b)
                    return
                op(a, b)
                # not kept while the next job is awaited, which may be for as long as the
                # source lives: its last buffer (or the header, in the creation's closure)
                del op, a, b
        finally:
            self.finished.set()

    def _create(self, create: Callable[[], EtlStreamFile],
                created: Callable[[Optional[str], Optional[P.ProtocolError]], None]) -> None:
        failure: Optional[P.ProtocolError] = None
        try:
            self._file = create(self)
        except P.ProtocolError as exc:
            failure = exc
        except BaseException as exc:    # noqa: BLE001 - said as the source's failure
            failure = _StorageFailed(f"cannot create the file: {exc!r}")
        if failure is not None:
            self._error = str(failure)
        self._tell(created, None if self._file is None else self._file.path, failure)

    def _write(self, seq: int, data: bytes) -> None:
        if not self._error:
            try:
                self._file.write(data)
            except OSError as exc:
                self._error = in_words(exc)
            except BaseException as exc:    # noqa: BLE001 - said as the file's error
                self._error = repr(exc)
            else:
                self._tell(self._written, seq, len(data), "")
                return
        with self._lock:            # (against abandon's count)
            self._not_written += 1
        self._tell(self._written, seq, len(data), self._error)

    def _set_lost(self, events_lost: int, buffers_lost: int) -> None:
        if not self._error:
            try:
                self._file.set_lost(events_lost, buffers_lost)
            except BaseException as exc:    # noqa: BLE001 - (the next write says it too)
                self._say(logging.WARNING, "%s: %s: cannot update the header's loss counts: "
                          "%s", self.label, self._file.path, in_words(exc))

    def _close(self, end_time: int, settle: Callable[[str], None]) -> None:
        error = "closing it failed"     # (what a BaseException leaves: still settled)
        try:
            if self._file is not None:  # (none was made: nothing to close)
                with self._lock:        # what the file lacks (the header says it exactly) ...
                    missing = self._not_written + self._dropped
                    said = self._unwritten_given_up     # ... and what its source said
                    if missing or self._abandoned is not None:
                        # a file that lacks buffers of its stream (or that was given up on:
                        # a write under way then may have failed) is not a session that
                        # stopped cleanly, whatever END said
                        end_time = 0
                    self.closing_with = end_time    # (a give-up's summary reads it)
                if self._error:         # (the loss counts asked since were not applied)
                    events_lost, buffers_lost = self._lost_asked
                    try:
                        self._file.set_lost(events_lost, buffers_lost + missing)
                    except Exception as exc:    # noqa: BLE001 - the close says it too
                        self._say(logging.WARNING, "%s: %s: cannot update the header's "
                                  "loss counts: %s", self.label, self._file.path,
                                  in_words(exc))
                self._file.close(end_time)
                self.end_time_written = end_time
                if said is not None and missing > said:     # (closed: its header says so)
                    self._say(logging.WARNING, "%s: %s: the file lacks %d buffers, %d more "
                              "than its source's summary said (the write under way when it "
                              "was given up on was not made once the disk answered)",
                              self.label, self._file.path, missing, missing - said)
            error = ""
        except OSError as exc:
            error = f"closing it failed: {in_words(exc)}"
        except Exception as exc:    # noqa: BLE001 - said as the file's error
            error = f"closing it failed: {exc!r}"
        finally:
            self._tell(settle, error)


class _Source:
    """One source's state across its connections: file, order checks, counters."""

    def __init__(self, collector: "Collector", hello: P.Hello, peer: str, label: str,
                 address: str):
        self.collector = collector
        self.hello = hello
        #: the address of its first connection: without a client certificate, the only one
        #: it may resume from
        self.address = address
        self.file_bytes = 0                      # handed to its file's writer (header too)
        self.buffer_size = hello.buffer_size
        self.stats = SourceStats(hello.source_id, label, hello.session, hello.host, peer)
        self.writer: Optional[_DiskWriter] = None  # None once finishing: no more writes
        self.disk: Optional[_DiskWriter] = None    # the same, kept (its file's name)
        self.view = None
        #: the live view had no room for it: each of its buffers is counted as skipped
        self.unviewed = False
        self.have_header = False
        self.last_seq = 0                        # the last BUFFER sequence taken
        self.written_seq = 0                     # every sequence up to it is on the disk
                                                 # (or counted lost): what ACKs say
        self.queued_buffers = 0                  # handed to the writer, not yet written
                                                 # (the file's creation counts as one)
        #: of which data buffers (received and not yet written: what a stop's snapshot
        #: counts, read from another thread; never the header, whatever the moment)
        self.queued_data = 0
        self.queued_bytes = 0
        self.progress_at = 0.0                   # when its writer last had an outcome, or
                                                 # its queue last stopped being empty
        self.write_error = ""                    # the file's creation or a write failed:
                                                 # nothing later is written
        self.creating = False                    # the file is being made: not read meanwhile
        self._idle: list[asyncio.Future] = []    # waiting for queued_buffers == 0
        self.last_by_processor: dict[int, int] = {}
        self.connection: Optional["_Connection"] = None
        self.detached_at: Optional[float] = None
        self.unacked = 0
        self.finishing = False                   # finish() called: no more frames, no resume
        self.end_taken = False                   # END started the close (only then is a
                                                 # relay told BUSY_FILE_CLOSING: it takes
                                                 # that for END's arrival)
        self.closing: Optional[asyncio.Future] = None   # the file's close, in its own thread
        self.busy_said = False                   # a relay refused while the file closes: logged
        self.kept_said = False                   # its writer was not given up on: logged
        self.step_failed = False                 # a watching task's step raised: logged

    @property
    def resume_at(self) -> int:
        """Where a reconnecting relay resumes: after what is on the disk (asked once nothing
        is queued: buffers queued would come again, out of order)."""
        return self.written_seq + 1 if self.have_header else 0

    def take(self, frame: P.Frame) -> bool:
        """Apply one frame; True when the stream ended. Raises ProtocolError, or _Refused
        once its file is being closed (its relay waits and retries: no fault of its own)."""
        if self.finishing:
            raise self.closing_refusal()
        kind = frame.type
        if kind == P.FrameType.HEADER:
            self._take_header(frame)
        elif kind == P.FrameType.BUFFER:
            self._take_buffer(frame)
        elif kind in (P.FrameType.STATS, P.FrameType.END):
            if not self.have_header:
                raise P.ProtocolError(f"{kind.name} before the header buffer")
            stats = P.decode_stats(frame)
            s = self.stats
            s.relay_dropped, s.session_lost, s.events_lost = (
                stats.relay_dropped, stats.session_lost, stats.events_lost)
            if kind == P.FrameType.END:
                if frame.sequence <= self.last_seq:
                    raise P.ProtocolError(f"END at sequence {frame.sequence} after buffer "
                                          f"{self.last_seq}")
                s.sequence_gaps += frame.sequence - self.last_seq - 1
                self.last_seq = frame.sequence - 1
                self._update_lost()
                s.ended = True
                self.end_taken = True
                self.finish(stats.end_time)
                return True
            self._update_lost()
        elif kind == P.FrameType.HELLO:
            raise P.ProtocolError("a second HELLO")
        else:   # ERROR from the relay
            raise _RelayFailed(*P.decode_error(frame))
        return False

    def closing_refusal(self) -> "_Refused":
        """What a relay of this source is told while its file is being closed: that it is
        closed because END came only if it was (a relay that sent END takes that answer
        for END's arrival; a file closed without it lacks the session's end)."""
        return _Refused(P.BUSY_FILE_CLOSING if self.end_taken
                        else P.BUSY_FILE_CLOSING_WITHOUT_END, ERROR_BUSY, transient=self)

    def _take_header(self, frame: P.Frame) -> None:
        if self.have_header:
            raise P.ProtocolError("a second header buffer")
        if frame.sequence != 0:
            raise P.ProtocolError(f"header buffer with sequence {frame.sequence} (must be 0)")
        data = P.expand_buffer(frame, self.buffer_size)
        info = buffer_info(data)
        if info.buffer_type != P.HEADER_BUFFER_TYPE:
            raise P.ProtocolError(f"the first buffer is not a header buffer (BufferType "
                                  f"{info.buffer_type})")
        if P.buffer_field(data, "BufferSize") != self.buffer_size:
            raise P.ProtocolError("the header buffer's BufferSize is not the announced one")
        self.collector._open_outputs(self, data)
        self.have_header = True

    def _take_buffer(self, frame: P.Frame) -> None:
        if not self.have_header:
            raise P.ProtocolError("a data buffer before the header buffer")
        seq = frame.sequence
        if seq <= self.last_seq:
            raise P.ProtocolError(f"buffer sequence {seq} after {self.last_seq}")
        if seq > _LAST_BUFFER_SEQUENCE:
            raise P.ProtocolError(f"buffer sequence {seq}: the last a buffer may have is "
                                  f"{_LAST_BUFFER_SEQUENCE}")
        data = P.expand_buffer(frame, self.buffer_size)
        info = buffer_info(data)
        bs = self.buffer_size
        if P.buffer_field(data, "BufferSize") != bs:
            raise P.ProtocolError(f"buffer {seq}: BufferSize is not {bs}")
        if info.buffer_type == P.HEADER_BUFFER_TYPE:
            raise P.ProtocolError(f"buffer {seq}: a second header buffer")
        if info.saved_offset > bs or info.filled_bytes > bs:
            raise P.ProtocolError(f"buffer {seq}: SavedOffset {info.saved_offset} / "
                                  f"FilledBytes {info.filled_bytes} past the buffer size {bs}")
        last = self.last_by_processor.get(info.processor)
        if last is not None and info.sequence <= last:
            raise P.ProtocolError(f"buffer {seq} out of order: processor {info.processor} "
                                  f"buffer sequence {info.sequence} after {last}")
        limit = self.collector.max_file_size
        if self.writer is not None and self.file_bytes + len(data) > limit:
            raise _FileFull(f"cannot write {self.stats.path or 'its file'}: the file reached "
                            f"the size this collector allows one source ({limit} bytes)")
        if self.writer is not None:
            self.collector._charge_disk(len(data), self.stats.path or "its file")
        self.last_by_processor[info.processor] = info.sequence
        gap = seq - self.last_seq - 1
        self.last_seq = seq
        s = self.stats
        s.buffers += 1
        s.bytes += len(frame.payload)
        if self.writer is not None:
            self.queue(len(data))
            self.queued_data += 1
            self.file_bytes += len(data)
            self.writer.write(seq, data)
        else:
            self.on_disk(seq)
        if gap:
            s.sequence_gaps += gap
            self._update_lost()
        if self.view is not None:
            self.view.add(data)
        elif self.unviewed:
            s.live_skipped += 1

    def _update_lost(self) -> None:
        s = self.stats
        lost = s.sequence_gaps + s.session_lost
        if lost != s.lost or self.writer is not None:
            s.lost = lost
            if self.writer is not None:
                self.writer.set_lost(s.events_lost, lost)

    def on_disk(self, seq: int) -> None:
        """Every buffer up to ``seq`` is written (or counted lost): ACK every 8."""
        self.written_seq = seq
        self.unacked += 1
        if self.unacked >= _ACK_EVERY:
            self.ack()

    def ack(self) -> None:
        """Tell the relay what is on the disk (only ever that: an ACK lets it forget)."""
        conn = self.connection
        if (conn is None or not conn.welcomed or conn.replaced or self.write_error
                or conn.told_error or conn.writer.transport.is_closing()):
            return
        self.unacked = 0
        conn.writer.write(P.encode(P.FrameType.ACK, self.written_seq + 1))

    def queue(self, size: int) -> None:
        """A buffer of ``size`` bytes handed to the writer (counted until its outcome)."""
        if self.connection is not None:
            self.connection.queued += 1
        if not self.queued_buffers:
            self.progress_at = time.monotonic()
        self.queued_buffers += 1
        self.queued_bytes += size
        self.collector._queued_bytes += size

    def created(self, path: Optional[str], failure: Optional[P.ProtocolError]) -> None:
        """The writer's outcome for the file's creation (in the collector's thread, before
        any write's)."""
        s = self.stats
        if path is not None:
            s.path = path
            self.collector._source_lines.say(logging.INFO, "%s: writing %s", s.label, path)
        if path is None:                    # (no file: its header is not on the disk)
            self.collector._credit_disk(self.buffer_size)
        if failure is not None and not self.write_error:
            self.write_error = str(failure)
            self._failed(failure)
        self._done_with(self.buffer_size)
        self.creating = False

    def written(self, seq: int, size: int, error: str) -> None:
        """The writer's outcome for buffer ``seq`` (in the collector's thread, in order)."""
        if error:                           # (failed, or not tried after a failure)
            self.collector._credit_disk(size)
        if error and not self.write_error:
            self.write_error = error
            self._failed(_StorageFailed(f"cannot write {self.stats.path}: {error}"))
        elif not self.write_error:
            self.on_disk(seq)
        self.queued_data -= 1
        self._done_with(size)

    def _done_with(self, size: int) -> None:
        self.progress_at = time.monotonic()
        self._release(1, size)

    def _release(self, buffers: int, size: int) -> None:
        """``buffers`` of ``size`` bytes in all leave the queue: wake the connections that
        may read again (this source's, and those waiting for all queues together)."""
        collector = self.collector
        self.queued_buffers -= buffers
        self.queued_bytes -= size
        collector._queued_bytes -= size
        if not self.queued_buffers:
            idle, self._idle = self._idle, []
            for waiter in idle:
                if not waiter.done():
                    waiter.set_result(None)
        if self.connection is not None and not self.connection.waits_for_all:
            self.connection.wake()
        if collector._queued_bytes < collector.max_queued:
            collector._wake_readers()

    def stalled(self, seconds: float) -> None:
        """Its writer made no progress for ``seconds`` while holding queued buffers (a disk
        that does not answer): the source fails as a failed write does (said and counted
        once, its relay told, which keeps its buffers), the writer's thread is left to the
        disk, its file is not closed (readable up to its last header), and what it holds
        leaves the queues (the other sources are read again)."""
        writer = self.disk
        reason = f"the disk made no progress for {seconds:g} s"
        if not self.write_error:
            self.write_error = reason
            # a name only once its creation confirmed it (``created``): one being tried may
            # turn out to be another's file, and the writer then moves on to the next
            named = self.stats.path or "its file"
            self._failed(_StorageFailed(f"cannot write {named}: {reason}"))
        if writer is not None and writer._abandoned is None:
            if not self.collector._may_give_up(self, seconds):
                return                  # (looked at again on the watch's next pass)
            writer.abandon("not closed: its thread still waits for the disk")
            self.collector._abandoned_writers.append(writer)
            # only now: until it is given up on, a creation may still move on to another
            # name (that one existed); given up on, it tries no other (see _create_file)
            with writer._lock:
                path = writer.path
            if path is not None:                # (being made: it may exist; its name stays
                self.stats.path = path          # its own, made or not)
                _remember(self.collector._names_given_up, path, None)
        self.creating = False
        self.queued_data = 0
        self._release(self.queued_buffers, self.queued_bytes)

    def close_stalled(self, seconds: float) -> None:
        """Its file's close, nothing queued before it, did not finish in ``seconds`` (a disk
        that does not answer its last header or the flush): given up on as a close that
        failed (said once, in the source's summary; counted in ``files_failed``), so the
        connection waiting for it goes and frees its place (its relay gets END's ACK: every
        buffer was written); the thread, left to the disk, closes the file if it answers."""
        writer = self.disk
        if writer is None or writer._abandoned is not None:
            return
        if not self.collector._may_give_up(self, seconds):
            return
        writer.abandon(f"closing it did not finish within {seconds:g} s (its thread still "
                       f"waits for the disk)")
        self.collector._abandoned_writers.append(writer)

    def _failed(self, failure: P.ProtocolError) -> None:
        """The file could not be made or written: the source ends (a file made is closed
        after what is queued, reported once); the failure is said and counted here, once,
        and its relay is told at once (it keeps every buffer not acknowledged)."""
        s = self.stats
        collector = self.collector
        conn = self.connection
        if isinstance(failure, _StorageFailed):
            collector.write_failures += 1
        else:                                       # (a header buffer the file refused)
            collector.protocol_errors += 1
        collector._source_lines.say(logging.WARNING, "%s: closed: %s",
                                    _who(self, conn.peer if conn else s.peer), failure)
        if conn is not None and conn.receiving is not None and conn.failure is None:
            conn.failure = failure
            conn.receiving.cancel()
        self.finish(0)

    async def wait_written(self) -> None:
        """Until nothing of this source is queued for the disk."""
        if self.queued_buffers:
            waiter = asyncio.get_running_loop().create_future()
            self._idle.append(waiter)
            await waiter

    def finish(self, end_time: int = 0) -> None:
        """Close the outputs (``end_time`` non-zero: the session stopped). The file is closed
        (its last header, the flush to the disk) in a thread of its own, ``closing``: a slow
        disk holds up no other connection. The source shows closed once the outcome is
        known."""
        if self.finishing:
            return
        self.finishing = True
        if self.connection is not None:
            self.connection.wake()                  # (if it waits for room: it ends)
        view, self.view = self.view, None
        writer, self.writer = self.writer, None
        if writer is not None:
            if not self.queued_buffers:             # (else: from the last write's outcome)
                self.progress_at = time.monotonic()     # the close has write_timeout too
            self.closing = self.collector._close_in_writer(writer, end_time, self._closed)
        if view is not None:
            self.stats.live_skipped = view.skipped      # (final: nothing is added to it now)
            try:                # (after the file's close is asked: a view never keeps it open)
                view.close()
            except Exception as exc:    # noqa: BLE001 - said once; the source still ends
                log.error("%s: closing its live view failed: %s", self.stats.label,
                          exc, exc_info=True)
        if writer is None:
            self._closed(end_time, "")

    async def wait_closed(self) -> None:
        """Until the file is closed (cancelling the wait leaves the close running)."""
        if self.closing is not None:
            await asyncio.shield(self.closing)

    def _closed(self, end_time: int, error: str) -> None:
        s = self.stats
        if self.write_error:
            if s.path is not None:          # (no file made lacks nothing: the relay was told)
                error = "; ".join(filter(None, (f"writing it failed: {self.write_error}",
                                                error)))
        elif self.have_header:
            self.written_seq = self.last_seq        # (END's sequence: the gaps before it)
        if s.path is None:      # no file was made (nor will be): none lacks anything
            error = ""
        unwritten = self.disk.unwritten() if self.disk is not None else 0
        with self.collector._lock:          # (``sources`` copies these together)
            s.unwritten = unwritten         # (in the header's BuffersLost too)
            s.lost = s.sequence_gaps + s.session_lost + unwritten
            s.file_error = error
            # as its file's header says it (a file that lacks buffers, or given up on, says
            # EndTime 0); without a file, as END said. A close given up on is never a clean
            # stop, whether or not its thread wrote the EndTime before the give-up settled
            disk = self.disk
            s.stopped = bool(end_time if disk is None
                             else disk.end_time_written and disk._abandoned is None)
            s.closed = True
            if self.write_error:
                s.ended = False             # not delivered: the relay sends it again
        if error:
            self.collector.files_failed += 1
        self.collector._source_finished(self)


class _Connection:
    def __init__(self, writer: asyncio.StreamWriter, peer: str, identity: Optional[str],
                 address: str):
        self.writer = writer
        self.peer = peer
        self.address = address              # the peer's IP address (as peer_address says it)
        self.identity = identity
        self.replaced = False
        self.welcomed = False               # WELCOME sent: ACKs may follow
        #: set while it is not read for want of room (see Collector._room_for) ...
        self.room: Optional[asyncio.Future] = None
        #: ... and whether for all queues together (else: its own source's)
        self.waits_for_all = False
        self.queued = 0                     # buffers it handed to the source's writer (the
                                            # header's file creation counts as one)
        #: the handler's task while it reads frames (a failed write cancels it) ...
        self.receiving: Optional[asyncio.Task] = None
        #: ... saying why
        self.failure: Optional[P.ProtocolError] = None
        self.end_acked = False              # END's ACK sent: the relay has its answer
        self.told_error = False             # an ERROR said (the collector's stop, say): no
                                            # frame after it

    def wake(self) -> None:
        """If it waits for room: look again."""
        if self.room is not None and not self.room.done():
            self.room.set_result(None)


# What a failed file's summary adds when the source is not a clean stop: a file whose close
# was given up on after it decided to write the session's EndTime may still get it from its
# thread if the disk answers (see _DiskWriter.closing_with)
_NOT_STOPPED = {False: " (its header does not say the session stopped)",
                True: " (given up on: not a clean stop, though its header may come to "
                      "say the session stopped if the disk answers)"}


#: characters a session name may hold and still be shown as it is in a source's label
#: (``SESSION@HOST``, the tag of its lines in the live view, and the name in the log)
_PLAIN_SESSION = re.compile(r'[^\s\[\]@"\\]+')


def _session_in_label(session: str) -> str:
    """``session`` as its source's label shows it: as it is if plain, else in quotes, with
    backslashes and quotes escaped by a backslash. No label made of another session name and
    a host name (which holds no "@", "]", quote, space or "#": P.HOST_NAME) then starts like
    another's tag, ``[SESSION@HOST] `` (a second source with the same label gets "#ID")."""
    if _PLAIN_SESSION.fullmatch(session) and session.isprintable():
        return session
    return '"' + session.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _output_directory(path: str) -> None:
    """``path`` as the collector's directory: an existing directory, or made (private) as the
    last step of a path whose parent exists. A Win32Error naming it otherwise: a file there,
    or a parent missing (a mistyped path would make a chain of directories in the wrong
    place, at the umask's modes)."""
    from wpptrace.winerror import ERROR_BAD_PATHNAME, as_win32, no_directory

    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise Win32Error(ERROR_BAD_PATHNAME, f"{path}: not a directory", filename=path) from None
    except FileNotFoundError as exc:
        parent = os.path.dirname(os.path.abspath(path))
        if os.path.isdir(parent):       # (mkdir said ENOENT for another reason: /proc/x)
            raise as_win32(exc) from None
        raise Win32Error(ERROR_BAD_PATHNAME, f"{path}: {no_directory(parent)} (only the "
                         f"last directory of the path is made)", filename=path) from None
    except NotADirectoryError:
        raise Win32Error(ERROR_BAD_PATHNAME, f"{path}: a part of the path is not a directory",
                         filename=path) from None
    except OSError as exc:
        raise as_win32(exc) from None


class Collector:
    """Accept relays on ``listen`` (host, port; port 0 picks one: see ``address``; an empty
    host is 127.0.0.1, this host only: listening where other hosts reach without TLS is the
    caller's explicit choice).

    ``output_dir``: write one .etl per source there (made private if missing, its parent must
    exist; Win32Error ERROR_BAD_PATHNAME if it is not a directory); ``live``: a
    ``wpptrace.remote.liveview.LiveView`` that decodes every source as its buffers arrive;
    ``tls``: a server ``ssl.SSLContext`` (``wpptrace.remote.tls.server_context``; with a
    client CA, only relays with a certificate it signed get in); ``allow``: certificate
    names (CN or DNS) admitted, None for any the CA signed (an empty set admits none).
    ``max_connections``: relays
    connected at once; ``max_per_address``: of which from one host (``peer_host``: one host
    cannot take every place); ``max_per_network``: from one IPv6 /64 (``peer_network``; one
    host may have a whole /64), None for the larger of ``max_per_address`` and half of
    ``max_connections``. ``max_queued_per_source``: bytes of one source's buffers received
    and not yet written (its disk is slow); past it, its connection is not read until the
    disk catches up (nothing is dropped: the relay keeps what is not acknowledged); None:
    4 MiB, or ``max_queued`` if less.
    ``max_queued``: the same for all sources together (each connection may take one frame
    past either: the check comes before a frame is read, whose size is not known yet).
    ``write_timeout``: seconds a source's writer may go without finishing a write (or the
    file's creation) while it holds queued buffers; past it the disk is taken for one that
    does not answer and the source fails as on a failed write (its relay keeps its buffers
    and retries; the file is left as it is, readable up to its last header, and its queued
    buffers leave the bounds above, so the other sources go on).
    ``max_file_size``: bytes written to one source's file at most (its header buffer
    included); a buffer that would pass it is refused, ERROR_DISK_FULL, said once and counted
    in ``files_full``: the source ends, its file is closed (readable, every buffer written)
    and a relay that comes back with its id is refused again. ``max_total_size``: bytes
    written to all the files together (``disk_bytes``; a header buffer takes the whole
    buffer size in its file, however few bytes carried it; a file that could not be made,
    or a write that failed, takes nothing of it); a source whose header or buffer
    would pass it is refused the same way, ERROR_DISK_FULL, the first said, all counted in
    ``total_full`` (and said at the stop). A source resumed without a
    client certificate must come from the address of its first connection (anyone who
    learnt the source id could otherwise take the stream over).
    ``on_source_end(stats)`` is called
    (in the collector's thread) when a source's file is closed.
    """

    def __init__(self, listen=("127.0.0.1", 0), *, output_dir: Optional[str] = None,
                 live=None, tls: Optional[ssl.SSLContext] = None,
                 allow: Optional[set[str]] = None, max_connections: int = 64,
                 max_per_address: int = 16, max_per_network: Optional[int] = None,
                 max_buffer_size: int = 1 << 20, timeout: float = 60.0,
                 handshake_timeout: float = 10.0, resume_window: float = 300.0,
                 max_queued_per_source: Optional[int] = None, max_queued: int = 64 << 20,
                 write_timeout: float = 60.0, max_file_size: int = 16 << 30,
                 max_total_size: int = 64 << 30,
                 on_source_end: Optional[Callable[[SourceStats], None]] = None):
        check_allow(allow, tls)
        if max_queued_per_source is None:          # (a smaller total bounds each source too)
            max_queued_per_source = min(QUEUED_PER_SOURCE, max_queued)
        if max_queued_per_source < 1 or max_queued < 1:
            raise ValueError("max_queued_per_source and max_queued must be at least 1 byte")
        if max_file_size < 1 or max_total_size < 1:
            raise ValueError(f"max_file_size and max_total_size must be at least 1 byte, "
                             f"not {max_file_size} and {max_total_size}")
        if not write_timeout > 0:
            raise ValueError(f"write_timeout must be more than 0 seconds, not {write_timeout}")
        self.listen = listen
        self.output_dir = output_dir
        self.live = live
        self.tls = tls
        self.allow = None if allow is None else set(allow)   # empty: nobody, not anybody
        self.max_connections = max_connections
        self.max_per_address = max_per_address
        self.max_per_network = (max(max_per_address, max_connections // 2)
                                if max_per_network is None else max_per_network)
        self.max_buffer_size = min(max_buffer_size, P.MAX_BUFFER_SIZE)
        self.timeout = timeout
        self.handshake_timeout = handshake_timeout
        self.resume_window = resume_window
        self.on_source_end = on_source_end
        self.max_queued_per_source = max_queued_per_source
        self.max_queued = max_queued
        self.write_timeout = write_timeout
        self.max_file_size = max_file_size
        self.max_total_size = max_total_size
        #: bytes handed to the files (header buffers included), all sources together
        self.disk_bytes = 0
        self._queued_bytes = 0                          # all sources' queued_bytes
        self._readers: list[asyncio.Future] = []        # connections waiting for room
        self.address: Optional[tuple[str, int]] = None
        self.connections_refused = 0
        self.protocol_errors = 0
        #: connections closed because their relay reported an error of its own (an ERROR
        #: frame: not a protocol error, and not answered)
        self.relay_errors = 0
        #: sources ended because their file could not be made or written (a full disk, say;
        #: the relay was told ERROR_BUSY and retries)
        self.write_failures = 0
        #: files that may lack data because closing them failed (see SourceStats.file_error)
        self.files_failed = 0
        #: sources refused because their file reached ``max_file_size``
        self.files_full = 0
        #: sources refused, or ended, because the files reached ``max_total_size``
        self.total_full = 0
        #: sources whose disk did not answer within ``write_timeout`` but whose writer was
        #: not given up on: ``max_connections`` writers given up on already waited for their
        #: disk (counted once per source)
        self.give_ups_refused = 0
        #: set when ``stop()`` gave up waiting: what it left behind
        self.abandoned: Optional[Abandoned] = None
        self._sources: dict[uuid.UUID, _Source] = {}
        self._finished: collections.deque[SourceStats] = collections.deque(maxlen=_FINISHED_KEPT)
        #: finished sources no longer listed by ``sources`` (the oldest go first)
        self.finished_forgotten = 0
        self._ended_ids: dict[uuid.UUID, None] = {}
        self._full_ids: dict[uuid.UUID, bool] = {}      # -> a relay coming back was told
        self._labels: set[str] = set()
        self._active = 0
        self._active_from: collections.Counter[str] = collections.Counter()   # by host
        self._active_in: collections.Counter[str] = collections.Counter()     # by IPv6 /64
        self._refusals_closing = 0      # connections told an ERROR before they were handled
                                        # being closed (see _tell_unhandled)
        #: set when the stop begins: a connection whose handler starts later is told that the
        #: collector stops, then closed (see _tell_stopping)
        self._stopping = False
        # Lines that may come by the thousand, each kind said within a bound in each
        # _REFUSALS_SAID_EVERY s, the others counted (see _say_counted): refusals past the
        # connection limits (the first of each of _PAST_KINDS a warning), lines about one
        # source or connection (connected, refused, replaced, writing, closed, failed, its
        # summary, its file's writer: the first _SOURCE_LINES_SAID), and sources refused
        # past max_total_size (the first; all counted in ``total_full``)
        self._refusals_said = Sayer(log, 1)
        self._source_lines = Sayer(
            log, _SOURCE_LINES_SAID,
            full=f"{_SOURCE_LINES_SAID} lines about sources said in {_REFUSALS_SAID_EVERY:g} "
                 f"s: more go to the debug level until that time is over, counted")
        self._total_full_said = Sayer(log, 1)
        # files that may be incomplete (their source's summary): an error each within a bound
        # of their own (other lines never use it up), those past it counted and the first of
        # them named, in an error as each period ends and after the closes at the stop
        self._incomplete_said = Sayer(log, _SOURCE_LINES_SAID)
        self._incomplete_unsaid = 0
        self._incomplete_named: list[str] = []
        self._handlers: set[asyncio.Task] = set()      # connection handlers started
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._server: Optional[asyncio.AbstractServer] = None
        self._stop_event: Optional[asyncio.Event] = None
        self._thread: Optional[threading.Thread] = None
        self._closing: set[asyncio.Future] = set()      # files being closed
        #: writers given up on (``_Source.stalled``) whose thread may still wait for the disk
        self._abandoned_writers: list[_DiskWriter] = []
        #: the names of files given up on while they were being made: a failed source names
        #: its file, so no later file takes such a name, even if that creation failed
        self._names_given_up: dict[str, None] = {}
        self._ready = threading.Event()
        self._stopped = threading.Event()
        self._startup_error: Optional[BaseException] = None
        self._lock = threading.Lock()
        if output_dir is not None:
            _output_directory(output_dir)

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "Collector":
        """Listen, in a background thread; returns once listening (OSError if it cannot)."""
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error
        return self

    def serve_forever(self) -> None:
        """Listen in this thread until ``stop()`` (or KeyboardInterrupt)."""
        self.start()
        try:
            while not self._stopped.wait(0.5):
                pass
        finally:
            self.stop()

    def stop(self, timeout: float = 30.0) -> Optional[Abandoned]:
        """Stop listening, close every connection and file (unfinished files stay
        readable, EndTime 0). None once all is closed; if that takes longer than
        ``timeout`` s, what was left behind (also ``abandoned``, and logged once; files
        given up on earlier, ``write_timeout``, whose disk still does not answer are among
        those not closed; live views whose output does not drain are left printing in
        their daemon threads: the same ``timeout`` bounds the wait for them). That is a
        snapshot taken when the first stop gave up: a later stop() returns it again at once,
        without waiting or looking again.

        RuntimeError if called in the collector's own thread (from ``on_source_end``, say):
        the stop would wait for the thread it runs in; nothing is stopped then. A hook that
        wants the collector to stop asks another thread to call ``stop()``."""
        thread = self._thread
        if thread is threading.current_thread():
            raise RuntimeError("Collector.stop() called in the collector's own thread (from "
                               "on_source_end?): it cannot wait for itself; call it from "
                               "another thread")
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:        # the loop is already closed
                pass
        if thread is None:
            return None
        deadline = time.monotonic() + timeout
        if self.abandoned is None:      # (a second stop does not wait or look again)
            thread.join(timeout)
            if not thread.is_alive():   # files given up on (a disk that did not answer)
                for writer in self._stuck_writers():
                    writer.finished.wait(max(0.0, deadline - time.monotonic()))
            views = []
            if self.live is not None:
                # (their output may not drain: the same deadline bounds them, together;
                # not waited for once the collector's thread or a file is left behind)
                closed = not thread.is_alive() and not self._stuck_writers()
                views = self.live.join(max(0.0, deadline - time.monotonic()) if closed else 0)
            self._note_left_behind(thread, timeout, len(views))
        return self.abandoned

    def _note_left_behind(self, thread: threading.Thread, timeout: float, views: int) -> None:
        """Once stop() waited ``timeout`` s: if the collector's thread, a file's writer
        given up on or one of ``views`` live views is not done, ``abandoned`` (and said,
        once) is what is left (a snapshot read from another thread while the collector's
        may be stuck; a file being closed is listed until its close is done)."""
        if not (thread.is_alive() or self._stuck_writers() or views):
            return
        with self._lock:
            open_ = list(self._sources.values())
        files = [w.path or "(a file being made)" for w in list(self._abandoned_writers)
                 if not w.finished.is_set()]
        for s in open_:
            # a file whose creation hangs is named too (its name is known, not yet said)
            path = s.stats.path or (s.disk.path if s.disk is not None else None)
            if path and not s.stats.closed:
                files.append(path)
        left = Abandoned(connections=self._active, files=files,
                         buffers=sum(s.queued_data for s in open_), views=views)
        with self._lock:        # (a second stop, stop(0), may be here too)
            said = self.abandoned is not None
            if not said:
                self.abandoned = left
        if not said:
            log.error("collector stopped without closing everything after %g s: %s",
                      timeout, left)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Block until the collector stopped (True) or ``timeout`` passed (False)."""
        return self._stopped.wait(timeout)

    def __enter__(self) -> "Collector":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def sources(self) -> list[SourceStats]:
        """The sources: the last 4096 finished ones (``finished_forgotten`` counts older
        ones), then the open ones (copies)."""
        with self._lock:
            open_ = [dataclasses.replace(s.stats) for s in self._sources.values()]
            return [dataclasses.replace(s) for s in self._finished] + open_

    def wait_for(self, predicate: Callable[[list[SourceStats]], bool],
                 timeout: float = 60.0) -> bool:
        """Poll ``sources`` until ``predicate`` holds (True) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.sources):
                return True
            time.sleep(0.02)
        return predicate(self.sources)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except Exception as exc:    # noqa: BLE001 - reported to start() or logged
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                log.exception("collector stopped: %s", exc)
        finally:
            self._ready.set()
            loop.close()
            self._stopped.set()

    async def _serve(self) -> None:
        self._stop_event = asyncio.Event()
        host, port = self.listen
        self._server = await asyncio.start_server(
            self._handle, host or "127.0.0.1", port,
            # TLS is started per connection (_handle) so that a refused handshake is logged;
            # Python 3.10 has no StreamWriter.start_tls: the server does it there
            ssl=self.tls if self.tls and not _START_TLS else None,
            ssl_handshake_timeout=self.handshake_timeout if self.tls and not _START_TLS else None,
            limit=1 << 20)
        sock = self._server.sockets[0].getsockname()
        self.address = (sock[0], sock[1])
        log.info("collector listening on %s:%d%s", sock[0], sock[1], " (TLS)" if self.tls else "")
        self._ready.set()
        expiry = asyncio.ensure_future(self._expire())
        watch = asyncio.ensure_future(self._watch_writers())
        counts = asyncio.ensure_future(self._say_counted_every_period())
        await self._stop_event.wait()
        self._stopping = True
        expiry.cancel()
        watch.cancel()
        counts.cancel()
        self._server.close()
        # each open connection is told (ERROR_CANCELLED) as its handler is cancelled below:
        # a relay that sent END must not take the close for END's acknowledgement
        for source in list(self._sources.values()):
            source.finish(0)
        # Only handlers already started are cancelled: one cancelled before its first step
        # never catches it, and Python 3.11's stream server logs it as an error with a
        # traceback; a handler that starts from now on tells its connection that the
        # collector stops, then closes it (not cancelled: waited for below, as the others).
        # asyncio's own tasks (accepts under way when the server closed) are not cancelled
        # but waited for: each may make one more handler, hence the repeat until no task is
        # left (none is left pending when the loop closes)
        me = asyncio.current_task()
        while True:
            for task in list(self._handlers):
                task.cancel()
            rest = asyncio.all_tasks() - {me}
            if not rest:
                break
            await asyncio.wait(rest)
        self._say_counted("since they were last said", stopping=True)
        if self._closing:
            await asyncio.wait(list(self._closing))
            self._say_incomplete("since they were last said")     # (files the stop closed)

    async def _expire(self) -> None:
        """Close the files of sources whose relay did not come back in time."""
        while True:
            await asyncio.sleep(min(1.0, self.resume_window / 4 or 0.1))
            now = time.monotonic()
            for source in list(self._sources.values()):
                if (source.connection is None and source.detached_at is not None
                        and not source.finishing
                        and now - source.detached_at >= self.resume_window):
                    with _said_once(source, "closing it after its relay did not come back"):
                        self._source_lines.say(
                            logging.WARNING, "%s: the relay did not come back within %g s: %s "
                            "closed (readable up to its last buffer)", source.stats.label,
                            self.resume_window, source.stats.path or "source")
                        source.finish(0)

    async def _watch_writers(self) -> None:
        """Fail the sources whose writer made no progress for ``write_timeout`` seconds while
        holding queued buffers (their disk does not answer): stuck sources alone could fill
        every queue, and then no connection at all would be read. Give up the same way on a
        file's close that outlasts it with nothing queued: its connection would keep its
        place, and its source its id, for as long as the disk does not answer."""
        while True:
            await asyncio.sleep(_watch_period(self.write_timeout))
            now = time.monotonic()
            for source in list(self._sources.values()):
                if source.disk is None or now - source.progress_at < self.write_timeout:
                    continue
                with _said_once(source, "giving up on its disk"):
                    if source.queued_buffers:
                        source.stalled(self.write_timeout)
                    elif source.closing is not None and not source.closing.done():
                        source.close_stalled(self.write_timeout)

    # -- sources ---------------------------------------------------------------------------
    def _close_in_writer(self, writer: "_DiskWriter", end_time: int,
                         then: Callable[[int, str], None]) -> asyncio.Future:
        """Close ``writer``'s file in its thread, after what is queued; ``then(end_time,
        error)`` runs in the collector's thread once it is done (after every write's
        outcome). The future returned is done after that."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._closing.add(done)
        done.add_done_callback(self._closing.discard)

        def settle(error: str) -> None:
            try:
                then(end_time, error)
            finally:
                done.set_result(None)

        writer.close(end_time, settle)
        return done

    def _wake_readers(self) -> None:
        readers, self._readers = self._readers, []
        for waiter in readers:
            if not waiter.done():
                waiter.set_result(None)

    async def _room_for(self, source: _Source, conn: _Connection) -> None:
        """Wait (not reading the connection: the relay's queue holds its buffers) while the
        source's file is being made, or its queue or all queues together are full. Woken
        only when it may go on: by its own source's progress, or (waiting for all queues)
        once they are below their bound."""
        counted = False
        while not (conn.replaced or source.finishing):
            if source.creating or source.queued_bytes >= self.max_queued_per_source:
                conn.waits_for_all = False
            elif self._queued_bytes >= self.max_queued:
                conn.waits_for_all = True
            else:
                return
            if not counted and not source.creating:
                source.stats.disk_waits += 1
                counted = True
            conn.room = asyncio.get_running_loop().create_future()
            if conn.waits_for_all:
                self._readers.append(conn.room)
            try:
                await conn.room
            finally:
                conn.room = None

    def _label_for(self, hello: P.Hello) -> str:
        """SESSION@HOST, or with "#ID" (the start of its id, then a count) if another open
        source has that label: a relay picks its id, so the start of it alone may be
        another's too."""
        label = plain = f"{_session_in_label(hello.session)}@{hello.host}"
        tried = 1
        while label in self._labels:
            label = f"{plain}#{hello.source_id.hex[:6]}" + (f"-{tried}" if tried > 1 else "")
            tried += 1
        self._labels.add(label)
        return label

    def _open_outputs(self, source: _Source, header: bytes) -> None:
        s = source.stats
        if self.output_dir is not None:
            stuck = self._stuck_writers()
            if len(stuck) >= self.max_connections:
                # each holds a thread and maybe a descriptor: a disk that never answers
                # must not take one more for every retry of every relay
                raise _StorageFailed(f"cannot write a file for {s.label}: {len(stuck)} "
                                     f"files still wait for a disk that does not answer")
            self._charge_disk(len(header), f"a file for {s.label}")
            base = "_".join(_UNSAFE.sub("_", part)[:64].strip("._") or "x"
                            for part in (s.host, s.session)) + "_" + s.source_id.hex[:8]
            # a file whose creation hangs may not exist yet: its name is still its own
            held = frozenset(w.path for w in stuck if w.path is not None).union(
                self._names_given_up)
            try:
                source.writer = source.disk = _DiskWriter(
                    lambda writer: self._create_file(base, header, writer, held),
                    asyncio.get_running_loop(), source.created, source.written, s.label,
                    self._source_lines.say)
            except RuntimeError:                    # no thread to be had
                self._credit_disk(len(header))
                raise _StorageFailed(f"cannot write a file for {s.label}: no thread for "
                                     f"it") from None
            source.creating = True                  # (the outcome comes on a later turn)
            source.queue(len(header))
            source.file_bytes = len(header)
        if self.live is not None:
            source.view = self.live.open(s.label, header)
            source.unviewed = source.view is None

    def _charge_disk(self, size: int, what: str) -> None:
        """``size`` bytes more for the files, or _TotalFull if that passes
        ``max_total_size``."""
        if self.disk_bytes + size > self.max_total_size:
            raise _TotalFull(f"cannot write {what}: the files of this collector reached the "
                             f"total it allows ({self.max_total_size} bytes)")
        self.disk_bytes += size

    def _credit_disk(self, size: int) -> None:
        """``size`` bytes charged that no file got (its creation or write failed): a disk
        that refuses files for a while must not use up the total for good."""
        self.disk_bytes -= size

    def _may_give_up(self, source: _Source, seconds: float) -> bool:
        """Whether ``source``'s writer may be given up on: fewer than ``max_connections``
        writers given up on still wait for their disk (each holds a thread and maybe a
        descriptor). Else it is kept (said and counted once per source): the source keeps
        its connection's place and its buffers their room until its disk answers or one of
        those is done (the watch looks again)."""
        stuck = self._stuck_writers()
        if len(stuck) < self.max_connections:
            return True
        if not source.kept_said:
            source.kept_said = True
            self.give_ups_refused += 1
            log.warning("%s: its disk made no progress for %g s, but %d files given up on "
                        "already wait for a disk that does not answer: not given up on (it "
                        "keeps its place until its disk answers or one of those is done)",
                        source.stats.label, seconds, len(stuck))
        return False

    def _stuck_writers(self) -> list[_DiskWriter]:
        """The writers given up on whose thread still waits for the disk."""
        self._abandoned_writers = [w for w in self._abandoned_writers
                                   if not w.finished.is_set()]
        return self._abandoned_writers

    def _create_file(self, base: str, header: bytes, writer: _DiskWriter,
                     held: frozenset = frozenset()) -> EtlStreamFile:
        """The source's new file (in its writer's thread: a disk that hangs holds up only
        this source): BASE.etl, or BASE-2.etl ... if it exists or is ``held`` (the names of
        files given up on, which their threads may yet make, and of those given up on while
        they were being made, whatever came of it); each name tried is the writer's ``path``
        while it is tried, and none after it failed (once given up on, it tries no other).
        ProtocolError if none can be made."""
        existed: Optional[str] = None      # the last name tried, which was another's
        for attempt in range(1, _NAMES_TRIED + 1):
            path = os.path.join(self.output_dir, base + ("" if attempt == 1 else f"-{attempt}")
                                + ".etl")
            if path in held:
                continue
            with writer._lock:      # (a give-up reads the name under it)
                if writer._abandoned is not None:   # (its source names no file of it)
                    raise _StorageFailed(
                        "cannot write its file: given up on while it was being made"
                        if existed is None else
                        f"cannot write {existed}: it exists (another's file), and its source "
                        f"was given up on before another name was tried")
                writer.path = path
            try:
                return EtlStreamFile(path, header)
            except OSError as exc:
                with writer._lock:      # a creation that failed left nothing (an existing
                    writer.path = None  # file is another's): no name is its own until the
                    given_up = writer._abandoned is not None    # next one is tried
                name = exc.name if isinstance(exc, Win32Error) else ""
                if name == "ERROR_ALREADY_EXISTS" and not given_up:
                    existed = path
                    continue
                if name in ("ERROR_BAD_FORMAT", "ERROR_BAD_LENGTH"):
                    raise P.ProtocolError("the header buffer does not start with a "
                                          "log-file header record") from None
                raise _storage_failed(path, exc) from None
        first = os.path.join(self.output_dir, base + ".etl")
        raise _StorageFailed(f"cannot write {first}: it and the {_NAMES_TRIED - 1} names "
                             f"after it (-2 to -{_NAMES_TRIED}) exist")

    def _source_finished(self, source: _Source) -> None:
        s = source.stats
        with self._lock:
            self._sources.pop(s.source_id, None)
            if len(self._finished) == self._finished.maxlen:
                self.finished_forgotten += 1        # the oldest goes with this append
            self._finished.append(s)
        self._labels.discard(s.label)
        if s.ended:
            _remember(self._ended_ids, s.source_id, None)
        unwritten = f", not written {s.unwritten}" if s.unwritten else ""
        skipped = f", live view skipped {s.live_skipped}" if s.live_skipped else ""
        summary = (f"{s.label}: {s.buffers} buffers, {s.lost} lost (relay dropped "
                   f"{s.relay_dropped}, session lost {s.session_lost}{unwritten}), events "
                   f"lost {s.events_lost}{skipped}")
        if s.file_error:
            disk = source.disk
            may_say = False
            if disk is not None and disk._abandoned is not None:
                with disk._lock:        # (decided before the give-up, or 0 from then on)
                    may_say = bool(disk.closing_with)
            if not self._incomplete_said.say(logging.ERROR, "%s: %s may be incomplete: %s%s",
                                             summary, s.path, s.file_error,
                                             "" if s.stopped else _NOT_STOPPED[may_say]):
                with self._lock:
                    self._incomplete_unsaid += 1
                    if len(self._incomplete_named) < _INCOMPLETE_NAMED:
                        self._incomplete_named.append(str(s.path))
        else:
            self._source_lines.say(logging.INFO, "%s%s%s", summary,
                                   f": {s.path}" if s.path else "",
                                   "" if s.stopped else " (the session had not stopped)")
        if self.on_source_end is not None:
            try:
                self.on_source_end(dataclasses.replace(s))
            except Exception:    # a caller's hook never takes the collector down
                log.exception("on_source_end failed")

    # -- connections -----------------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._stopping:
            # accepted as the collector stops, its handler not started when the stop
            # cancelled the others: told as they are (nothing acknowledged yet: the relay
            # retries), not reset without a word
            await self._tell_stopping(reader, writer)
            return
        task = asyncio.current_task()
        self._handlers.add(task)
        try:
            await self._connection(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _connection(self, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if peername else "?"
        address = peer_host(str(peername[0])) if peername else "?"
        network = peer_network(str(peername[0])) if peername else None
        refusal = None
        if self._active >= self.max_connections:
            kind, said = _PAST_MAX, f"already {self._active} connections"
            refusal = "too many connections"
        elif self._active_from[address] >= self.max_per_address:
            kind = _PAST_PER_ADDRESS
            said = f"already {self._active_from[address]} connections from {address}"
            refusal = (f"too many connections from {address} (at most "
                       f"{self.max_per_address} from one host)")
        elif network is not None and self._active_in[network] >= self.max_per_network:
            kind = _PAST_PER_NETWORK
            said = f"already {self._active_in[network]} connections from the network {network}"
            refusal = (f"too many connections from the network {network} (at most "
                       f"{self.max_per_network} from one IPv6 /64 network)")
        if refusal is not None:
            self.connections_refused += 1
            self._refusals_said.say(logging.WARNING, "%s: refused: %s", peer, said, kind=kind)
            await self._refuse_past_the_limits(reader, writer, refusal)
            return
        self._active += 1
        self._active_from[address] += 1
        if network is not None:
            self._active_in[network] += 1
        source: Optional[_Source] = None
        conn: Optional[_Connection] = None
        told = False        # an ERROR said (even one a stop cut short: the stop waits for
                            # that close as for the others'), the close left to the end (see
                            # _close_told)
        spoken = self.tls is None or not _START_TLS     # frames can reach the relay
        try:
            if not spoken:
                try:
                    await writer.start_tls(self.tls, ssl_handshake_timeout=self.handshake_timeout)
                except (ssl.SSLError, ConnectionError, asyncio.TimeoutError, OSError) as exc:
                    raise _Refused(f"TLS handshake failed: {_tls_reason(exc)}",
                                   ERROR_ACCESS_DENIED, tell=False) from None
                spoken = True
            identity = self._identity(writer)
            frame = await self._within(P.read_frame(reader, P.FROM_RELAY),
                                       self.handshake_timeout)
            if frame.type != P.FrameType.HELLO:
                raise P.ProtocolError(f"the first frame must be HELLO, got {frame.type.name}")
            hello = P.decode_hello(frame)
            if hello.buffer_size > self.max_buffer_size:
                raise P.ProtocolError(f"buffer size {hello.buffer_size} is larger than this "
                                      f"collector takes ({self.max_buffer_size})")
            conn = _Connection(writer, peer, identity,
                               peer_address(str(peername[0])) if peername else "?")
            source = self._attach(hello, conn)
            if source.queued_buffers:
                # resume only from what is on the disk: a buffer still queued may fail yet
                # (and one queued would come again, out of order). Answered at once, not
                # waited for: the relay backs off and retries, and a disk that does not
                # answer holds no place for it meanwhile
                raise _Refused(P.BUSY_FILE_WRITING, ERROR_BUSY,
                               transient=source)
            writer.write(P.encode(P.FrameType.WELCOME, source.resume_at))
            conn.welcomed = True
            await self._drain(writer)
            self._source_lines.say(logging.INFO, "%s: %s from %s%s (resuming at %d)",
                                   source.stats.label,
                                   "connected" if source.stats.connections == 1
                                   else "reconnected", peer,
                                   f" as {identity}" if identity else "", source.resume_at)
            conn.receiving = asyncio.current_task()
            try:
                await self._receive(reader, writer, source, conn)
            except asyncio.CancelledError:
                if conn.failure is None:
                    raise                           # the collector is stopping
                _uncancel()                         # a failed write cancelled the reading
                raise conn.failure from None
            finally:
                conn.receiving = None
            reason = "delivered"
        except _Replaced as exc:
            reason = str(exc)                       # (said when it was replaced)
            if not conn.end_acked:
                conn.told_error = True
                await _tell_and_close(reader, writer, exc.code, reason)
        except P.ProtocolError as exc:
            reason = str(exc)
            if conn is None or exc is not conn.failure:     # (else said and counted already)
                say, more = self._source_lines.say, ""
                if isinstance(exc, _TotalFull):
                    self.total_full += 1
                    say = self._total_full_said.say
                    if self.total_full == 1:
                        more = (f" (each source refused for this from now on is counted, and "
                                f"the count said every {_REFUSALS_SAID_EVERY:g} s and at the "
                                f"stop)")
                elif isinstance(exc, _FileFull):
                    self.files_full += 1
                    _remember(self._full_ids, source.stats.source_id, False)
                elif isinstance(exc, _StorageFailed):
                    self.write_failures += 1
                else:
                    self.protocol_errors += 1
                say(logging.WARNING, "%s: closed: %s%s", _who(source, peer), reason, more)
            # finished before the answer is sent: a relay that reconnects while it drains
            # would take the source over and carry on a stream that cannot be trusted further
            if source is not None and source.connection is conn:
                source.finish(0)
            if conn is not None:
                conn.told_error = True
            await self._send_error(writer, exc.code, reason)
            told = True
        except _RelayFailed as exc:
            # the relay's own failure, said by the rules: counted apart, and not answered
            # (it closes after its ERROR); its source ends as after a protocol error
            self.relay_errors += 1
            reason = str(exc)
            self._source_lines.say(logging.WARNING, "%s: closed: %s", _who(source, peer),
                                   reason)
            if source is not None and source.connection is conn:
                source.finish(0)
        except _Refused as exc:
            self.connections_refused += 1
            reason = str(exc)
            said = exc.said or (exc.transient is not None and exc.transient.busy_said)
            retries = "" if exc.transient is None else " (the relay retries)"
            if said:
                log.debug("%s: refused: %s%s", peer, reason, retries)
            else:
                self._source_lines.say(logging.WARNING, "%s: refused: %s%s", peer, reason,
                                       retries)
            if exc.transient is not None:
                exc.transient.busy_said = True
            if exc.tell:             # (no TLS session: nothing can be said to the relay)
                if conn is not None:
                    conn.told_error = True
                await self._send_error(writer, exc.code, reason)
                told = True
        except asyncio.IncompleteReadError as exc:
            reason = ("connection closed by the relay" if not exc.partial else
                      f"connection closed in the middle of a frame ({len(exc.partial)} bytes "
                      f"of {exc.expected} read)")
            self._source_lines.say(logging.WARNING, "%s: %s", _who(source, peer), reason)
        except asyncio.TimeoutError as exc:
            reason = str(exc) or "nothing received in time"
            self._source_lines.say(logging.WARNING, "%s: closed: %s", _who(source, peer),
                                   reason)
            if conn is not None:
                conn.told_error = True
            await self._send_error(writer, ERROR_BUSY, reason)
            told = True
        except (ConnectionError, ssl.SSLError, OSError) as exc:
            reason = str(exc) or type(exc).__name__
            self._source_lines.say(logging.WARNING, "%s: connection lost: %s",
                                   _who(source, peer), reason)
        except asyncio.CancelledError:
            # the collector is stopping; the handler ends normally (Python 3.11's stream
            # server logs a cancelled handler as an error with a traceback)
            reason = "collector stopping"
            if spoken and not (conn is not None and conn.end_acked):
                if conn is not None:
                    conn.told_error = True
                await _tell_and_close(reader, writer, ERROR_CANCELLED,
                                      "the collector is stopping")
        except Exception as exc:   # noqa: BLE001 - one source's failure never stops the others
            reason = f"internal error: {exc!r}"
            log.exception("%s: %s", _who(source, peer), reason)
            # told, as any other close but the one after END's ACK: a relay that sent END
            # must not take the close for END's acknowledgement (ERROR_BUSY: it retries)
            if spoken and not (conn is not None and conn.end_acked):
                if conn is not None:
                    conn.told_error = True
                await _tell_and_close(reader, writer, ERROR_BUSY,
                                      "the collector failed on this connection (an internal "
                                      "error, said in its log)")
        finally:
            try:
                if source is not None and conn is not None:
                    self._detach(source, conn, reason)
                    if conn.queued and not conn.replaced:
                        # the connection (and its place) lasts until what it brought is on
                        # the disk and, if it ended the source, the file is closed (one
                        # that brought nothing, refused say, leaves at once)
                        await source.wait_written()
                        await source.wait_closed()
                if told:            # (once the source is settled: said, then closed)
                    await _close_told(reader, writer)
            except asyncio.CancelledError:
                pass                                # (the collector is stopping)
            finally:
                writer.transport.abort()
                self._active -= 1
                self._active_from[address] -= 1
                if not self._active_from[address]:
                    del self._active_from[address]
                if network is not None:
                    self._active_in[network] -= 1
                    if not self._active_in[network]:
                        del self._active_in[network]

    def _say_counted(self, within: str, stopping: bool = False) -> None:
        """Say what the bounded lines counted and did not say (``within``: the time they
        came in, in words); each kind is news again. At the stop, the sources refused past
        the total are said in all (``total_full``), the first of them included."""
        refused = self._refusals_said.counted()
        if refused:
            log.warning("%d more connections refused past the connection limits %s (%s)",
                        sum(refused.values()), within,
                        ", ".join(f"{kind}: {refused[kind]}" for kind in _PAST_KINDS
                                  if refused[kind]))
        unsaid = sum(self._source_lines.counted().values())
        if unsaid:
            log.warning("%d more lines about sources went to the debug level %s", unsaid,
                        within)
        self._say_incomplete(within)
        full = sum(self._total_full_said.counted().values())
        if stopping:
            if self.total_full > 1:
                log.warning("%d sources refused in all because the files of this collector "
                            "reached the total it allows (%d bytes)", self.total_full,
                            self.max_total_size)
        elif full:
            log.warning("%d more sources refused because the files of this collector reached "
                        "the total it allows (%d bytes) %s", full, self.max_total_size, within)

    def _say_incomplete(self, within: str) -> None:
        """Say how many files that may be incomplete were said only at the debug level
        (``within``: the time they came in, in words), and the first of them; a new period."""
        self._incomplete_said.counted()
        with self._lock:
            unsaid, named = self._incomplete_unsaid, self._incomplete_named
            self._incomplete_unsaid, self._incomplete_named = 0, []
        if unsaid:
            log.error("%d more files may be incomplete %s (first: %s%s)", unsaid, within,
                      ", ".join(named), ", ..." if unsaid > len(named) else "")

    async def _say_counted_every_period(self) -> None:
        while True:
            await asyncio.sleep(_REFUSALS_SAID_EVERY)
            self._say_counted(f"in the last {_REFUSALS_SAID_EVERY:g} s")

    async def _refuse_past_the_limits(self, reader: asyncio.StreamReader,
                                      writer: asyncio.StreamWriter, reason: str) -> None:
        """Tell a connection past the connection limits why (ERROR_BUSY), then close it (see
        _tell_unhandled)."""
        await self._tell_unhandled(reader, writer, ERROR_BUSY, reason)

    async def _tell_stopping(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        """Tell a connection accepted as the collector stops, before its handler started,
        that it stops (ERROR_CANCELLED), then close it (see _tell_unhandled). The stop waits
        for it as for the others (told in parallel): without TLS at most _TELL_WAIT; with
        TLS started per connection (Python 3.11+) its handshake first, at most _TELL_WAIT,
        so up to twice that; on Python 3.10 the handshake was made as the connection was
        accepted (within handshake_timeout), then at most _TELL_WAIT."""
        await self._tell_unhandled(reader, writer, ERROR_CANCELLED, "the collector is stopping")

    async def _tell_unhandled(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                              code: int, reason: str) -> None:
        """Tell a connection that is not handled why (an ERROR), then close it as after any
        other ERROR (see _close_told: closed with the relay's HELLO unread, it was reset, and
        the reset may discard the ERROR). That close holds the socket and its task for up to
        _TELL_WAIT, so only _REFUSALS_CLOSING such connections at a time get it (refusals
        past the limits and connections accepted as the collector stops alike): past them
        one closes right after its ERROR, and a flood of connections holds no more. With
        TLS started per connection (Python 3.11+) the relay reads nothing before the
        handshake: a connection in one of those slots makes it first (at most _TELL_WAIT)
        and says the ERROR over TLS; past them, or if the handshake fails, it closes without
        a word (an ERROR in plain text would read to the relay as a broken handshake).
        A connection accepted as the collector stops (the stop begun when this starts) is
        said the ERROR and its relay's close waited for, as the stop does for the
        connections it was handling; for any other, a stop that comes meanwhile closes the
        connection at once (see _send_error)."""
        stopping = self._stopping       # before any wait: a stop begun later is _send_error's to see
        closing = self._refusals_closing < _REFUSALS_CLOSING
        if closing:
            self._refusals_closing += 1
        try:
            if self.tls is not None and _START_TLS and not (
                    closing and await self._start_tls_to_tell(writer)):
                return
            if stopping:
                _write_error(writer, code, reason)
                told = True
            else:
                told = await self._send_error(writer, code, reason)
            if told and closing:
                await _close_told(reader, writer)
        except asyncio.CancelledError:
            pass        # the collector is stopping (a cancelled handler is logged as an error)
        finally:
            if closing:
                self._refusals_closing -= 1
            writer.transport.abort()

    async def _start_tls_to_tell(self, writer: asyncio.StreamWriter) -> bool:
        """The TLS handshake of a connection told an ERROR before it is handled (at most
        _TELL_WAIT): whether it was made."""
        try:
            await writer.start_tls(self.tls, ssl_handshake_timeout=min(self.handshake_timeout,
                                                                       _TELL_WAIT))
        except (ssl.SSLError, ConnectionError, asyncio.TimeoutError, OSError):
            return False
        return True

    def _identity(self, writer: asyncio.StreamWriter) -> Optional[str]:
        """The TLS client certificate's names ("CN=..., DNS=..."); checked against ``allow``."""
        cert = writer.get_extra_info("peercert")
        if not cert:
            if self.allow is not None:
                raise _Refused("no client certificate", ERROR_ACCESS_DENIED)
            return None
        names = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "commonName"]
        names += [v for k, v in cert.get("subjectAltName", ()) if k == "DNS"]
        if self.allow is not None and not self.allow.intersection(names):
            raise _Refused(f"client certificate {names or '(no names)'} is not allowed",
                           ERROR_ACCESS_DENIED)
        return names[0] if names else "(certificate without names)"

    def _attach(self, hello: P.Hello, conn: _Connection) -> _Source:
        if hello.source_id in self._ended_ids:
            raise _Refused("this stream already ended", ERROR_HANDLE_EOF)
        said = self._full_ids.get(hello.source_id)
        if said is not None:
            self._full_ids[hello.source_id] = True
            raise _Refused("this source's file reached the size this collector allows one "
                           "source", ERROR_DISK_FULL, said=said)
        source = self._sources.get(hello.source_id)
        if source is not None and source.finishing:
            # expected while a slow disk finishes the close: the relay retries (logged once)
            raise source.closing_refusal()
        if source is None:
            if len(self._sources) >= 4 * self.max_connections:
                waiting = [s for s in self._sources.values()
                           if s.connection is None and not s.finishing]
                if not waiting:
                    raise _Refused("too many open sources", ERROR_BUSY)
                oldest = min(waiting, key=lambda s: s.detached_at or 0.0)
                self._source_lines.say(logging.WARNING, "%s: too many sources: closed while "
                                       "waiting for its relay", oldest.stats.label)
                oldest.finish(0)
            source = _Source(self, hello, conn.peer, self._label_for(hello), conn.address)
            with self._lock:
                self._sources[hello.source_id] = source
        else:
            if (hello.session, hello.host, hello.buffer_size) != (
                    source.hello.session, source.hello.host, source.hello.buffer_size):
                raise _Refused("source id already used by another session or host",
                               ERROR_INVALID_PARAMETER)
            if source.stats.identity != conn.identity:
                raise _Refused("this source belongs to another certificate", ERROR_ACCESS_DENIED)
            if conn.identity is None and conn.address != source.address:
                raise _Refused(f"this source resumes only from the address it first came from "
                               f"({source.address})", ERROR_ACCESS_DENIED)
            old = source.connection
            if old is not None:
                old.replaced = True
                self._source_lines.say(logging.WARNING, "%s: a new connection from %s "
                                       "replaces the one from %s", source.stats.label,
                                       conn.peer, old.peer)
                # its handler tells it (ERROR_BUSY) before it closes: a relay that sent END
                # must not take the close for END's acknowledgement
                if old.failure is None:
                    old.failure = _Replaced(conn.peer)
                    if old.receiving is not None:
                        old.receiving.cancel()
                old.wake()                          # (if it waits for room: it ends)
        source.connection = conn
        source.detached_at = None
        source.stats.peer = conn.peer
        source.stats.identity = conn.identity
        source.stats.connected = True
        source.stats.connections += 1
        return source

    def _detach(self, source: _Source, conn: _Connection, reason: str) -> None:
        if source.connection is not conn:
            return                                  # replaced by a newer connection
        source.connection = None
        source.stats.connected = False
        source.stats.reason = reason
        if source.finishing:
            return
        if source.have_header and self.resume_window > 0:
            source.detached_at = time.monotonic()
        else:
            source.finish(0)

    async def _receive(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       source: _Source, conn: _Connection) -> None:
        bs = source.buffer_size
        while True:
            await self._room_for(source, conn)
            if conn.replaced:
                raise conn.failure or _Replaced("?")
            frame = await self._within(P.read_frame(reader, P.FROM_RELAY, bs), self.timeout)
            if conn.failure is not None:
                # a failed write or a takeover cancelled the read, and wait_for dropped that
                # cancellation (see _within): the frame read is not taken
                _uncancel()
                raise conn.failure
            ended = source.take(frame)
            if ended:
                # the last ACK once every buffer is written and the file closed (a write
                # that failed meanwhile cancels this wait: the relay is told that instead)
                await source.wait_closed()
                if source.write_error:
                    raise conn.failure or _StorageFailed(f"cannot write {source.stats.path}: "
                                                         f"{source.write_error}")
                source.ack()
                conn.end_acked = True
                await self._drain(writer)
                return
            if frame.type == P.FrameType.STATS:
                source.ack()                        # (what is on the disk so far)
            if writer.transport.get_write_buffer_size() > (1 << 16):
                await self._drain(writer)

    async def _within(self, step, timeout: float):
        """``step``'s result (an awaitable of a connection's handler), or asyncio.TimeoutError
        past ``timeout`` s; CancelledError once the collector stops, even if ``step`` ended
        first. The stop cancels every handler, but Python 3.10 and 3.11's wait_for drops the
        cancellation when what it waits for ended in the same turn (it returns the result):
        the handler went on with a frame read as the stop began (refused a BUFFER for a
        source the stop had closed, welcomed a HELLO to a new source), and its relay was not
        told that the collector stops. From Python 3.12 wait_for does not yield when ``step``
        ends without waiting: a stop set in that turn has not begun yet, so it is given its
        turn here (it cancels this handler) and the frame is not taken, as on 3.10 and 3.11."""
        result = await asyncio.wait_for(step, timeout)
        event = self._stop_event
        if not self._stopping and event is not None and event.is_set():
            await asyncio.sleep(0)          # the stop's turn: _serve wakes before this handler
        if self._stopping:
            raise asyncio.CancelledError()
        return result

    async def _send_error(self, writer: asyncio.StreamWriter, code: int, reason: str) -> bool:
        """Tell the relay why, if it still listens (its drain waited for at most 1 s). False
        if the collector stops meanwhile: the stop's cancellation ends that wait (and never
        leaves a handler: the stream server logged it as an error with a traceback), and
        counts even when wait_for dropped it, the drain having ended in the same turn (see
        _within): a refusal past the limits then waited for its relay's close (up to
        _TELL_WAIT) instead of being closed at once."""
        try:
            writer.write(P.encode_error(code, reason))
            await asyncio.wait_for(writer.drain(), 1.0)
        except (OSError, asyncio.TimeoutError, ssl.SSLError, RuntimeError):
            pass
        except asyncio.CancelledError:
            return False
        return not self._stopping

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """Wait until the relay took what was written, at most the timeout (a relay that
        sends but never reads would hold its connection forever)."""
        try:
            await self._within(writer.drain(), self.timeout)
        except asyncio.TimeoutError:
            raise asyncio.TimeoutError(f"the relay read nothing the collector sent for "
                                       f"{self.timeout:g} s") from None


def check_allow(allow: Optional[set[str]], tls: Optional[ssl.SSLContext]) -> None:
    """ValueError unless an allow list (None: none) comes with TLS that asks relays for a
    certificate: names are read from certificates, and without a client CA no relay shows one
    (every relay would be refused as having none). Worded for Python callers (``wpptrace
    collect`` says it in its options)."""
    if allow is not None and (tls is None or tls.verify_mode == ssl.CERT_NONE):
        raise ValueError("allow needs tls=server_context(..., client_ca=PEM), the CA that "
                         "signs the relays' certificates: without it no relay is asked for a "
                         "certificate, so no name could be allowed")


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` reaches this host only: "localhost", or a loopback
    address (127.0.0.0/8, ::1). Any other name may resolve to an address others reach."""
    if host == "localhost":
        return True
    ip = _ip(host)
    return ip is not None and ip.is_loopback


def peer_address(host: str) -> str:
    """A peer's IP address as one string whatever form it came in (an IPv4-mapped or NAT64
    IPv6 address as its IPv4 address): what a resumed source's address is compared as."""
    ip = _ip(host)
    return host if ip is None else str(ip)


def peer_host(host: str) -> str:
    """What ``max_per_address`` counts a peer under: its address, a link-local one with its
    scope id (fe80::1 on two links is two hosts); an IPv4-mapped (::ffff:a.b.c.d) or NAT64
    (64:ff9b::a.b.c.d) IPv6 address as its IPv4 address; every loopback address as one host,
    "loopback"."""
    ip = _ip(host)
    if ip is None:
        return host
    return "loopback" if ip.is_loopback else str(ip)


def peer_network(host: str) -> Optional[str]:
    """What ``max_per_network`` counts an IPv6 peer under: its /64 (with the scope id of a
    link-local one). None for the others (IPv4, IPv4-mapped, NAT64, loopback)."""
    ip = _ip(host)
    if not isinstance(ip, ipaddress.IPv6Address) or ip.is_loopback:
        return None
    network = ipaddress.IPv6Network((int(ip) >> 64 << 64, 64))
    return f"{network}%{ip.scope_id}" if ip.scope_id else str(network)


def _ip(host: str):
    """The peer's IP address (an IPv6 one that carries an IPv4 host: that IPv4 address), or
    None if ``host`` is not one."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return ip.ipv4_mapped
        if ip in _NAT64:
            return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def _remember(kept: dict, key, value) -> None:
    """``kept[key] = value``, the oldest key forgotten past ``_ENDED_KEPT`` (anyone may say
    HELLO: the dict must not grow forever)."""
    kept[key] = value
    if len(kept) > _ENDED_KEPT:
        del kept[next(iter(kept))]


def _watch_period(write_timeout: float) -> float:
    """Seconds between two looks for stuck disks: a quarter of ``write_timeout``, at most 1
    s, at least 0.05 s (a tiny write_timeout must not have the look run without pause)."""
    return max(0.05, min(1.0, write_timeout / 4))


@contextlib.contextmanager
def _said_once(source: _Source, doing: str):
    """Around one source's step in a task that looks at every source: an exception is
    logged (with its traceback the first time for that source, then as one line) and the
    task goes on with the others, and with this one on its next pass."""
    try:
        yield
    except Exception as exc:    # noqa: BLE001 - one source's failure never stops the task
        if source.step_failed:
            log.debug("%s: %s failed again: %r", source.stats.label, doing, exc)
        else:
            source.step_failed = True
            log.exception("%s: %s failed", source.stats.label, doing)


def _uncancel() -> None:
    """Take back a cancellation the collector made and handled (Python 3.11+ counts them:
    a later timeout would read it as the task's own)."""
    task = asyncio.current_task()
    uncancel = getattr(task, "uncancel", None)
    if uncancel is not None:
        uncancel()


class _StorageFailed(P.ProtocolError):
    """A file that cannot be made or written ends its source; the relay is told (ERROR_BUSY:
    it retries, so a collector whose disk has room again resumes). Counted in
    ``write_failures``, not as the relay's fault."""

    def __init__(self, reason: str):
        super().__init__(reason, code=ERROR_BUSY)


class _Replaced(P.ProtocolError):
    """A connection that a newer one with its source id took over: its relay is told
    (ERROR_BUSY: it retries), not counted as a fault (the takeover was said)."""

    def __init__(self, peer: str):
        super().__init__(f"a new connection from {peer} took this source over", code=ERROR_BUSY)


class _FileFull(P.ProtocolError):
    """A source whose file reached ``max_file_size``: refused (ERROR_DISK_FULL, which a relay
    takes as final), counted in ``files_full``."""

    def __init__(self, reason: str):
        super().__init__(reason, code=ERROR_DISK_FULL)


class _TotalFull(P.ProtocolError):
    """A source whose header or buffer would take the collector's files past
    ``max_total_size``: refused (ERROR_DISK_FULL, which a relay takes as final), counted in
    ``total_full``."""

    def __init__(self, reason: str):
        super().__init__(reason, code=ERROR_DISK_FULL)


class _RelayFailed(Exception):
    """The relay reported an error of its own (an ERROR frame): its code said by its Win32
    name (a code the table lacks, as the number). Counted in ``relay_errors``, not answered."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"the relay reported an error: {reason} "
                         f"({NAMES.get(code, str(code))})")
        self.code = code


def _storage_failed(path: Optional[str], exc: OSError) -> _StorageFailed:
    return _StorageFailed(f"cannot write {path}: {exc.strerror or exc}")


class _Refused(Exception):
    """A connection turned away; ``transient``: the source it would resume, which will take
    it later (said once per source)."""

    def __init__(self, reason: str, code: int, tell: bool = True,
                 transient: Optional[_Source] = None, said: bool = False):
        super().__init__(reason)
        self.code = code
        self.tell = tell
        self.transient = transient
        self.said = said                # said before (a warning once): logged as detail


def _tls_reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError):
        return exc.reason or exc.strerror or str(exc)
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


def _who(source: Optional[_Source], peer: str) -> str:
    return f"{source.stats.label} ({peer})" if source is not None else peer


async def _tell_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                          code: int, reason: str) -> None:
    """Tell the relay why (an ERROR) before its connection closes, so that a relay that sent
    END does not take the close for END's acknowledgement. What the relay sent meanwhile is
    read and let go until it closes its end (at most a second): a socket closed with data
    unread resets the connection, and the reset may discard the ERROR before the relay read
    it."""
    _write_error(writer, code, reason)
    await _close_told(reader, writer)


def _write_error(writer: asyncio.StreamWriter, code: int, reason: str) -> None:
    """Write an ERROR without waiting for it to be sent (the connection may be gone)."""
    try:
        writer.write(P.encode_error(code, reason))
    except (OSError, ssl.SSLError, RuntimeError):
        pass


async def _close_told(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The close after an ERROR (see _tell_and_close): this end first, then what the relay
    sends is read until it closes its own (at most ``_TELL_WAIT``)."""
    try:
        if writer.can_write_eof():
            writer.write_eof()
        await asyncio.wait_for(_read_to_end(reader), _TELL_WAIT)
    except (OSError, asyncio.TimeoutError, ssl.SSLError, RuntimeError,
            asyncio.IncompleteReadError):
        pass
    except asyncio.CancelledError:
        # the collector stops meanwhile: the handler ends normally (Python 3.11's stream
        # server logs a cancelled handler as an error with a traceback)
        pass


#: refusals past the connection limits, by kind (see Collector._refusals_said)
_PAST_MAX = "too many connections"
_PAST_PER_ADDRESS = "too many from one host"
_PAST_PER_NETWORK = "too many from one IPv6 /64 network"
_PAST_KINDS = (_PAST_MAX, _PAST_PER_ADDRESS, _PAST_PER_NETWORK)
#: seconds between two warnings that count the refusals past the limits said only as debug
_REFUSALS_SAID_EVERY = 60.0
#: lines about sources said at their level in each _REFUSALS_SAID_EVERY s
_SOURCE_LINES_SAID = 200
#: files named in the error that counts files that may be incomplete past the bound
_INCOMPLETE_NAMED = 5
#: how long a connection told an ERROR is read for the relay's close (see _tell_and_close)
_TELL_WAIT = 1.0
#: connections told an ERROR before they were handled (refused past the connection limits,
#: or accepted as the collector stops) that are closed that way at a time; past them one
#: closes at once (see Collector._tell_unhandled)
_REFUSALS_CLOSING = 8


async def _read_to_end(reader: asyncio.StreamReader) -> None:
    while await reader.read(1 << 16):
        pass
