"""The ETW consumer API as Python callables: OpenTrace, ProcessTrace, CloseTrace and friends.

Same names, arguments and meanings as evntrace.h (see docs/reference/api/), on the decoder
engine (decoder.engine: a FileSource per log file, a LiveSource per real-time session or
buffer stream; events are the engine's records seen through this module's view). How
results come back:

* a code that means success or a normal outcome the caller must see is RETURNED:
  ProcessTrace -> ERROR_SUCCESS or ERROR_CANCELLED (a BufferCallback returned False);
  CloseTrace -> ERROR_SUCCESS or ERROR_CTX_CLOSE_PENDING (closed while ProcessTrace runs);
  ProcessTraceAddBufferToBufferStream -> ERROR_SUCCESS;
* a failure RAISES ``wpptrace.winerror.Win32Error`` with the code Windows documents:
  ERROR_INVALID_HANDLE (0, INVALID_PROCESSTRACE_HANDLE, unknown or closed handles),
  ERROR_INVALID_PARAMETER, ERROR_BAD_PATHNAME, ERROR_FILE_NOT_FOUND, ERROR_BAD_LENGTH
  (0 or more than 64 handles), ERROR_INVALID_TIME (EndTime < StartTime),
  ERROR_WMI_ALREADY_ENABLED (more than one live handle), ERROR_WMI_INSTANCE_NOT_FOUND, and
  ERROR_NOACCESS when a callback raised: the callback's exception is the ``__cause__``.

Callbacks: EventRecordCallback(EVENT_RECORD) or EventCallback(EVENT_TRACE) (one union member,
chosen by PROCESS_TRACE_MODE_EVENT_RECORD); classic BufferCallback(EVENT_TRACE_LOGFILE) and
Windows 11 BufferCallback(Buffer, BufferSize, ConsumerInfo, Context) run after each buffer's
events; a return value of False (or 0) stops ProcessTrace with ERROR_CANCELLED (None, the
value of a function without ``return``, continues).

Order: the engine's (decoder.engine, decoder.ordering): each file's log-file header record
first (the synthetic EventTraceGuid event), then the per-processor streams merged by time;
several files are merged by FILETIME. Live traces (real-time, buffer streams) deliver the
buffers queued at each moment merged by time, without waiting for more.
Buffers reach the Windows 11 BufferCallback in the order their last event was delivered
(header buffer first, per-processor sequence order), which is the order
ProcessTraceAddBufferToBufferStream requires. Compressed buffers are handed out expanded,
with the compressed flag cleared.
"""
from __future__ import annotations

import contextlib
import itertools
import operator
import os
import threading
from typing import Any, Optional, Sequence

from wpptrace.winerror import (ERROR_ACCESS_DENIED, ERROR_BAD_LENGTH, ERROR_BAD_PATHNAME,
                               ERROR_BUSY, ERROR_CANCELLED, ERROR_CTX_CLOSE_PENDING,
                               ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER, ERROR_INVALID_TIME,
                               ERROR_NOACCESS, ERROR_NOT_SUPPORTED, ERROR_SUCCESS,
                               ERROR_WMI_ALREADY_ENABLED, Win32Error)

from .api_convert import BufferFacts, to_event_record, to_event_trace
from .buffers import Buffer
from .engine import FileSource, LiveSource, merge_sources
from .etlfile import EtlFile
from .realtime import BufferStream, RealtimeSource
from .records import DecodeIssue
from .consumer_types import (ETW_BUFFER_CALLBACK_INFORMATION, ETW_OPEN_TRACE_OPTIONS,
                      ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP, EVENT_TRACE_LOGFILE,
                      INVALID_PROCESSTRACE_HANDLE, MAXIMUM_LOGGERS,
                      PROCESS_TRACE_MODE_EVENT_RECORD, PROCESS_TRACE_MODE_RAW_TIMESTAMP,
                      PROCESS_TRACE_MODE_REAL_TIME, TRACE_LOGFILE_HEADER)

__all__ = ["OpenTrace", "OpenTraceFromFile", "OpenTraceFromRealTimeLogger",
           "OpenTraceFromRealTimeLoggerWithAllocationOptions", "OpenTraceFromBufferStream",
           "ProcessTraceAddBufferToBufferStream", "ProcessTraceBufferIncrementReference",
           "ProcessTraceBufferDecrementReference", "ProcessTrace", "CloseTrace",
           "GetTraceIssues"]

#: how long OpenTrace waits for a real-time session's header buffer (to fill LogfileHeader)
REALTIME_HEADER_WAIT = 2.0
KERNEL_LOGGER_NAME = "NT Kernel Logger"

_EVENT, _HEADER_EVENT, _BUFFER_DONE = 0, 1, 2
_FACTS = operator.itemgetter(3)      # an item's BufferFacts (None: a buffer-done item)

_table_lock = threading.RLock()
_traces: dict[int, "_Trace"] = {}
_handles = itertools.count(0x1000)


class _CallbackFailed(Exception):
    def __init__(self, where: str, exc: BaseException):
        super().__init__(where)
        self.where = where
        self.exc = exc


class _Trace:
    """One open trace processing session (the object behind a TRACEHANDLE).

    ``feed`` is what the events come from (the EtlFile, or the live queue: RealtimeSource /
    BufferStream), ``source`` the engine's view of it (FileSource / LiveSource)."""

    def __init__(self, *, raw_timestamp: bool, event_record: bool, event_callback,
                 user_context, logfile=None, buffer_callback=None, buffer_context=None,
                 queue=None):
        self.handle = 0
        self.path: Optional[str] = None
        self.feed = queue
        self.source = None if queue is None else LiveSource(queue, self._live_name(queue))
        self.live = queue is not None
        self.raw_timestamp = raw_timestamp
        self.event_record = event_record
        self.event_callback = event_callback
        self.user_context = user_context
        self.logfile: Optional[EVENT_TRACE_LOGFILE] = logfile
        self.buffer_callback = buffer_callback
        self.buffer_context = buffer_context
        self.header = TRACE_LOGFILE_HEADER()
        self.processing = False
        self.close_pending = False
        self.buffers_read = 0

    @staticmethod
    def _live_name(queue) -> str:
        if isinstance(queue, RealtimeSource):
            return f"<real-time session {queue.logger_name}>"
        return "<buffer stream>"

    # -- header ---------------------------------------------------------------------------
    def set_header(self, etl_header) -> None:
        """Take the log-file header facts (decoder.etlfile.LogfileHeader)."""
        if etl_header.raw:
            try:
                self.header = TRACE_LOGFILE_HEADER.from_payload(etl_header.raw,
                                                                etl_header.pointer_size)
            except ValueError:
                pass
        if self.logfile is not None:
            lf = self.logfile
            lf.LogfileHeader = self.header
            lf.BufferSize = etl_header.buffer_size
            lf.IsKernelTrace = int(etl_header.logger_name == KERNEL_LOGGER_NAME)

    # -- the engine view: one buffer -> the events ProcessTrace delivers --------------------
    def view(self, source, buf: Buffer, slot: int, header_record: bool) -> tuple[list, list[int]]:
        """Items (code, trace, record or done, BufferFacts, raw time, FILETIME) of one buffer:
        its records, then the buffer-done item (BufferCallback, completion); sort keys raw."""
        if source.live and buf.is_header and source.header is not None:
            self.set_header(source.header)      # a live trace's header buffer has arrived
        records = buf.records()
        keys = buf.sort_keys()
        last = buf.stats.last_timestamp
        filetimes = source.clock.to_filetimes(keys + [last])
        facts = BufferFacts(buf.processor, buf.logger_id, buf.flags, buf.origin)
        items = list(zip(itertools.repeat(_EVENT), itertools.repeat(self), records,
                         itertools.repeat(facts), keys, filetimes))
        if header_record and items:
            items[0] = (_HEADER_EVENT,) + items[0][1:]
        items.append((_BUFFER_DONE, self, (buf.data, buf.records_end, buf.origin), None, last,
                      filetimes[-1]))
        return items, keys + [last]

    @property
    def name(self) -> str:
        return self.path or (self.source.name if self.source is not None else "")

    # -- release ---------------------------------------------------------------------------
    def release(self) -> None:
        if self.live:
            self.feed.release()
        elif self.feed is not None:
            self.feed.close()
            self.feed = None


def _register(trace: _Trace) -> int:
    with _table_lock:
        handle = next(_handles)
        trace.handle = handle
        _traces[handle] = trace
        return handle


def _lookup(handle: Any) -> _Trace:
    try:
        value = operator.index(handle) if not isinstance(handle, bool) else None
    except TypeError:
        value = None
    if value is None or value in (0, INVALID_PROCESSTRACE_HANDLE):
        raise Win32Error(ERROR_INVALID_HANDLE, f"TraceHandle {handle!r}")
    handle = value
    with _table_lock:
        trace = _traces.get(handle)
    if trace is None:
        raise Win32Error(ERROR_INVALID_HANDLE, f"TraceHandle {handle:#x} is not open")
    return trace


def _open_file(trace: _Trace, path: Any) -> None:
    if not isinstance(path, (str, bytes, os.PathLike)) or not os.fsdecode(path):
        raise Win32Error(ERROR_BAD_PATHNAME, f"LogFileName {path!r}")
    trace.path = os.fsdecode(path)
    try:
        trace.feed = EtlFile(trace.path)
    except PermissionError:
        raise Win32Error(ERROR_ACCESS_DENIED, filename=trace.path) from None
    except IsADirectoryError:
        raise Win32Error(ERROR_BAD_PATHNAME, filename=trace.path) from None
    trace.source = FileSource(trace.feed, stop=lambda: trace.close_pending)
    trace.set_header(trace.feed.header)


def _open_realtime(trace: _Trace, logger_name: Any) -> None:
    if not isinstance(logger_name, str) or not logger_name:
        raise Win32Error(ERROR_BAD_PATHNAME, f"LoggerName {logger_name!r}")
    queue = RealtimeSource(logger_name)   # raises ERROR_WMI_INSTANCE_NOT_FOUND
    trace.feed, trace.live = queue, True
    trace.source = LiveSource(queue, trace._live_name(queue))
    first = queue.peek_header_buffer(REALTIME_HEADER_WAIT)
    if first is not None:
        trace.set_header(trace.source.take_header(first))


@contextlib.contextmanager
def _released_on_failure(trace: _Trace):
    """Opening failed half way: close what was opened (file, subscription)."""
    try:
        yield
    except BaseException:
        trace.release()
        raise


def _check_header_out(out: Any) -> None:
    if out is not None and not isinstance(out, TRACE_LOGFILE_HEADER):
        raise Win32Error(ERROR_INVALID_PARAMETER, "LogFileHeader must be a TRACE_LOGFILE_HEADER")


def _copy_header_out(trace: _Trace, out: Optional[TRACE_LOGFILE_HEADER]) -> None:
    if out is None:
        return
    for name in TRACE_LOGFILE_HEADER.__slots__:
        setattr(out, name, getattr(trace.header, name))


# -- opening ------------------------------------------------------------------------------

def OpenTrace(Logfile: EVENT_TRACE_LOGFILE) -> int:
    """Open a log file (``LogFileName``) or, with PROCESS_TRACE_MODE_REAL_TIME, an in-process
    real-time session (``LoggerName``); return the TRACEHANDLE for ProcessTrace/CloseTrace.

    Fills ``Logfile.LogfileHeader``, ``BufferSize`` and ``IsKernelTrace``.
    """
    if not isinstance(Logfile, EVENT_TRACE_LOGFILE):
        raise Win32Error(ERROR_INVALID_PARAMETER, "Logfile must be an EVENT_TRACE_LOGFILE")
    mode = Logfile.ProcessTraceMode or 0
    trace = _Trace(raw_timestamp=bool(mode & PROCESS_TRACE_MODE_RAW_TIMESTAMP),
                   event_record=bool(mode & PROCESS_TRACE_MODE_EVENT_RECORD),
                   event_callback=Logfile.EventCallback, user_context=Logfile.Context,
                   logfile=Logfile, buffer_callback=Logfile.BufferCallback)
    Logfile.BuffersRead = 0
    Logfile.CurrentTime = 0
    with _released_on_failure(trace):
        if mode & PROCESS_TRACE_MODE_REAL_TIME:
            _open_realtime(trace, Logfile.LoggerName)
        elif Logfile.LogFileName is None:
            raise Win32Error(ERROR_BAD_PATHNAME, "neither LogFileName nor (with "
                             "PROCESS_TRACE_MODE_REAL_TIME) LoggerName is given")
        else:
            _open_file(trace, Logfile.LogFileName)
    return _register(trace)


def _options_trace(Options: Any, **extra) -> _Trace:
    if not isinstance(Options, ETW_OPEN_TRACE_OPTIONS):
        raise Win32Error(ERROR_INVALID_PARAMETER, "Options must be an ETW_OPEN_TRACE_OPTIONS")
    return _Trace(raw_timestamp=bool((Options.ProcessTraceModes or 0)
                                     & ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP),
                  event_record=True, event_callback=Options.EventCallback,
                  user_context=Options.EventCallbackContext,
                  buffer_callback=Options.BufferCallback,
                  buffer_context=Options.BufferCallbackContext, **extra)


def _open_with_options(opener, target: Any, Options: Any,
                       LogFileHeader: Optional[TRACE_LOGFILE_HEADER]) -> int:
    """The OpenTraceFrom* pattern: ``opener(trace, target)`` on an options trace, then the
    header copied out and the handle registered."""
    _check_header_out(LogFileHeader)
    trace = _options_trace(Options)
    with _released_on_failure(trace):
        opener(trace, target)
    _copy_header_out(trace, LogFileHeader)
    return _register(trace)


def OpenTraceFromFile(LogFileName: str | os.PathLike, Options: ETW_OPEN_TRACE_OPTIONS,
                      LogFileHeader: Optional[TRACE_LOGFILE_HEADER] = None) -> int:
    """Open a log file with Windows 11 options; fills ``LogFileHeader`` if given."""
    return _open_with_options(_open_file, LogFileName, Options, LogFileHeader)


def OpenTraceFromRealTimeLogger(LoggerName: str, Options: ETW_OPEN_TRACE_OPTIONS,
                                LogFileHeader: Optional[TRACE_LOGFILE_HEADER] = None) -> int:
    """Attach to an in-process real-time session (wpptrace.provider.sessions)."""
    return _open_with_options(_open_realtime, LoggerName, Options, LogFileHeader)


def OpenTraceFromRealTimeLoggerWithAllocationOptions(
        LoggerName: str, Options: ETW_OPEN_TRACE_OPTIONS, AllocationSize: int = 0,
        MemoryPartitionHandle: Any = None,
        LogFileHeader: Optional[TRACE_LOGFILE_HEADER] = None) -> int:
    """OpenTraceFromRealTimeLogger; the allocation options (buffer memory size and partition)
    have no meaning for an in-process session and are ignored."""
    return OpenTraceFromRealTimeLogger(LoggerName, Options, LogFileHeader)


def ProcessTraceBufferIncrementReference(TraceHandle: int, Buffer: Any) -> int:
    """Keep a buffer given to a BufferCallback beyond the callback. Python buffers live as
    long as they are referenced, so this only checks the handle: ERROR_SUCCESS, or
    ERROR_NOT_SUPPORTED on a buffer-stream trace (as the Windows documentation says)."""
    trace = _lookup(TraceHandle)
    if isinstance(trace.feed, BufferStream):
        raise Win32Error(ERROR_NOT_SUPPORTED, "buffer-stream traces do not count references")
    return ERROR_SUCCESS


def ProcessTraceBufferDecrementReference(Buffer: Any) -> int:
    """Release a buffer kept with ProcessTraceBufferIncrementReference (nothing to do)."""
    return ERROR_SUCCESS


def OpenTraceFromBufferStream(Options: ETW_OPEN_TRACE_OPTIONS, BufferCompletionCallback=None,
                              BufferCompletionContext: Any = None) -> int:
    """A trace fed by ProcessTraceAddBufferToBufferStream (e.g. with the buffers another
    session's BufferCallback received). ProcessTrace on it runs until CloseTrace; the
    completion callback gets (Buffer, BufferCompletionContext) once per accepted buffer."""
    if BufferCompletionCallback is not None and not callable(BufferCompletionCallback):
        raise Win32Error(ERROR_INVALID_PARAMETER, "BufferCompletionCallback is not callable")
    trace = _options_trace(Options, queue=BufferStream(BufferCompletionCallback,
                                                        BufferCompletionContext))
    return _register(trace)


def ProcessTraceAddBufferToBufferStream(TraceHandle: int, Buffer, BufferSize: int) -> int:
    """Queue one buffer on a buffer-stream trace. Buffers must come in the order ProcessTrace
    produced them: the header buffer first, then each processor's buffers in sequence order
    (ERROR_INVALID_PARAMETER "out of order" otherwise). Returns ERROR_SUCCESS."""
    trace = _lookup(TraceHandle)
    if not isinstance(trace.feed, BufferStream):
        raise Win32Error(ERROR_INVALID_HANDLE,
                         f"TraceHandle {trace.handle:#x} is not a buffer-stream trace")
    trace.feed.add(Buffer, BufferSize)
    return ERROR_SUCCESS


# -- closing ------------------------------------------------------------------------------

def CloseTrace(TraceHandle: int) -> int:
    """Close a trace processing session.

    Returns ERROR_SUCCESS, or ERROR_CTX_CLOSE_PENDING if ProcessTrace is running on it (also
    when called from one of its callbacks): ProcessTrace then delivers what a live trace had
    already queued, takes nothing new, and returns; a file trace stops at once. The handle is
    invalid from now on. Raises Win32Error(ERROR_INVALID_HANDLE) for 0,
    INVALID_PROCESSTRACE_HANDLE, unknown or already closed handles.
    """
    trace = _lookup(TraceHandle)
    with _table_lock:
        if _traces.get(trace.handle) is not trace:    # closed by another thread meanwhile
            raise Win32Error(ERROR_INVALID_HANDLE, f"TraceHandle {trace.handle:#x} is not open")
        del _traces[trace.handle]
        pending = trace.processing
        trace.close_pending = pending
    if pending:
        if trace.live:
            trace.feed.request_close()
        return ERROR_CTX_CLOSE_PENDING
    _release_checked(trace)
    return ERROR_SUCCESS


def _release_checked(trace: _Trace) -> None:
    try:
        trace.release()
    except Exception as exc:  # a BufferCompletionCallback raised while closing
        raise Win32Error(ERROR_NOACCESS, f"BufferCompletionCallback raised {exc!r}") from exc


def GetTraceIssues(TraceHandle: int) -> list[DecodeIssue]:
    """Not a Win32 function: the damage met so far on an open trace (file, offset, what
    was expected). Damaged records are skipped, never delivered, and listed here."""
    trace = _lookup(TraceHandle)
    return list(trace.source.errors) if trace.source is not None else []


# -- processing ---------------------------------------------------------------------------

def ProcessTrace(HandleArray: Sequence[int], StartTime: Optional[int] = None,
                 EndTime: Optional[int] = None) -> int:
    """Deliver the events of one or more traces, merged by time, to their callbacks.

    ``StartTime``/``EndTime`` (FILETIME ints, optional) bound the events delivered (each
    file's synthetic header event is always delivered). Returns ERROR_SUCCESS, or
    ERROR_CANCELLED when a BufferCallback returned False. Raises Win32Error:
    ERROR_INVALID_PARAMETER (HandleArray None, or a live handle mixed with files),
    ERROR_BAD_LENGTH (0 or more than 64 handles), ERROR_INVALID_HANDLE, ERROR_INVALID_TIME
    (EndTime < StartTime), ERROR_WMI_ALREADY_ENABLED (more than one real-time or stream
    handle), ERROR_BUSY (a handle is already being processed), ERROR_NOACCESS (a callback
    raised; the exception is ``__cause__``).
    """
    if HandleArray is None:
        raise Win32Error(ERROR_INVALID_PARAMETER, "HandleArray is None")
    if isinstance(HandleArray, int):
        raise Win32Error(ERROR_INVALID_PARAMETER, "HandleArray must be a sequence of handles")
    handles = list(HandleArray)
    if not 0 < len(handles) <= MAXIMUM_LOGGERS:
        raise Win32Error(ERROR_BAD_LENGTH, f"{len(handles)} handles (1 to {MAXIMUM_LOGGERS})")
    for value, name in ((StartTime, "StartTime"), (EndTime, "EndTime")):
        if value is not None and not isinstance(value, int):
            raise Win32Error(ERROR_INVALID_PARAMETER, f"{name} must be a FILETIME int or None")
    if StartTime is not None and EndTime is not None and EndTime < StartTime:
        raise Win32Error(ERROR_INVALID_TIME, f"EndTime {EndTime} < StartTime {StartTime}")
    traces = [_lookup(h) for h in handles]
    if len(set(map(id, traces))) != len(traces):
        raise Win32Error(ERROR_INVALID_PARAMETER, "a handle appears twice in HandleArray")
    live = [t for t in traces if t.live]
    if len(live) > 1:
        raise Win32Error(ERROR_WMI_ALREADY_ENABLED, "more than one real-time handle")
    if live and len(traces) > 1:
        raise Win32Error(ERROR_INVALID_PARAMETER, "a real-time handle cannot be merged with files")
    with _table_lock:
        closed = [t.handle for t in traces if _traces.get(t.handle) is not t]
        if closed:     # closed by another thread since the lookup
            raise Win32Error(ERROR_INVALID_HANDLE, f"TraceHandle {closed[0]:#x} is not open")
        busy = [t for t in traces if t.processing]
        if busy:
            raise Win32Error(ERROR_BUSY, f"TraceHandle {busy[0].handle:#x} is being processed")
        for t in traces:
            t.processing = True
    cleanup_failure: Optional[Exception] = None
    try:
        rc = _run(traces, StartTime, EndTime)
    except _CallbackFailed as failed:
        raise Win32Error(ERROR_NOACCESS, f"{failed.where} raised {failed.exc!r}") from failed.exc
    finally:
        with _table_lock:
            for t in traces:
                t.processing = False
        for t in traces:        # buffers done with; handles closed while we ran
            try:
                if t.live:
                    t.feed.complete_inflight()
                if t.close_pending:
                    t.release()
            except Exception as exc:   # a BufferCompletionCallback raised
                cleanup_failure = cleanup_failure or exc
    if cleanup_failure is not None:
        raise Win32Error(ERROR_NOACCESS, f"BufferCompletionCallback raised {cleanup_failure!r}"
                         ) from cleanup_failure
    return rc


def _run(traces: list[_Trace], start: Optional[int], end: Optional[int]) -> int:
    chunks = merge_sources([(t.source, t.view) for t in traces])
    live = traces[0].live           # a live trace is processed alone
    for items, _keys in chunks:
        try:
            for code, trace, obj, facts, raw, filetime in items:
                if trace.close_pending and not trace.live:
                    continue        # a file trace closed from a callback delivers nothing more
                if code == _BUFFER_DONE:
                    if not _buffer_done(trace, obj):
                        if live:
                            _mark_started(items, obj)
                        return ERROR_CANCELLED
                    continue
                if code == _EVENT:
                    if start is not None and filetime < start:
                        continue
                    if end is not None and filetime > end:
                        if trace.live:
                            continue
                        return ERROR_SUCCESS
                stamp = raw if trace.raw_timestamp else filetime
                if trace.event_record:
                    event = to_event_record(obj, stamp, facts, trace.user_context)
                else:
                    event = to_event_trace(obj, stamp, facts)
                if event is None:
                    continue
                logfile = trace.logfile
                if logfile is not None:
                    logfile.CurrentTime = stamp
                    if not trace.event_record:
                        logfile.CurrentEvent = event
                callback = trace.event_callback
                if callback is not None:
                    try:
                        callback(event)
                    except Exception as exc:
                        raise _CallbackFailed("EventRecordCallback" if trace.event_record
                                              else "EventCallback", exc) from exc
        except _CallbackFailed:
            if live:
                _mark_started(items, obj)
            raise
        if live:
            _mark_started(items)
    return ERROR_SUCCESS


def _mark_started(items: list, upto: Any = None) -> None:
    """Mark the live buffers with items among ``items`` (up to the item whose object is
    ``upto``, if given) as started: a ProcessTrace that stops is done with them, while those it
    took but had not started are kept for the next one."""
    if upto is not None:
        at = next(k for k, item in enumerate(items) if item[2] is upto)
        items = items[:at + 1]
    for facts in set(map(_FACTS, items)):
        if facts is not None and facts.origin is not None:
            facts.origin.started = True


def _buffer_done(trace: _Trace, done: tuple) -> bool:
    """After a buffer's events: update counters, run the BufferCallback, complete a
    streamed buffer. False if the callback asked to stop."""
    data, filled, entry = done
    trace.buffers_read += 1
    keep_going = True
    callback = trace.buffer_callback
    try:
        if trace.logfile is not None:
            lf = trace.logfile
            lf.BuffersRead = trace.buffers_read
            lf.BufferSize = len(data)
            lf.Filled = filled
            if callback is not None:
                keep_going = _continue(callback(lf))
        elif callback is not None:
            info = ETW_BUFFER_CALLBACK_INFORMATION(TraceHandle=trace.handle,
                                                   LogfileHeader=trace.header,
                                                   BuffersRead=trace.buffers_read)
            keep_going = _continue(callback(data, len(data), info, trace.buffer_context))
    except Exception as exc:
        raise _CallbackFailed("BufferCallback", exc) from exc
    finally:
        if entry is not None:
            try:
                trace.feed.complete(entry)
            except Exception as exc:
                raise _CallbackFailed("BufferCompletionCallback", exc) from exc
    return keep_going


def _continue(result: Any) -> bool:
    """A BufferCallback result: FALSE (False / 0) stops; None (no return) continues."""
    return result is None or bool(result)
