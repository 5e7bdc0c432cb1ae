"""The ETW consumer API as Python callables: OpenTrace, ProcessTrace, CloseTrace and friends.

Same names, arguments and meanings as evntrace.h (see docs/reference/api/), on the
decoder engine (EtlFile, parse_buffer, ordering, TimeConverter). How results come back:

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

Order: each file's header buffer first (its first record is the synthetic EventTraceGuid
event), then the per-processor streams merged by time (decoder.ordering); several files are
merged by FILETIME. Live traces (real-time, buffer streams) deliver the buffers queued at
each moment merged by time (see _live_items), without waiting for more.
Buffers reach the Windows 11 BufferCallback in the order their last event was delivered
(header buffer first, per-processor sequence order), which is the order
ProcessTraceAddBufferToBufferStream requires. Compressed buffers are handed out expanded,
with the compressed flag cleared.
"""
from __future__ import annotations

import contextlib
import io
import itertools
import operator
import os
import threading
from typing import Any, Iterable, Iterator, Optional, Sequence

from wpptrace._core import lib
from wpptrace.winerror import (ERROR_ACCESS_DENIED, ERROR_BAD_LENGTH, ERROR_BAD_PATHNAME,
                               ERROR_BUSY, ERROR_CANCELLED, ERROR_CTX_CLOSE_PENDING,
                               ERROR_INVALID_HANDLE, ERROR_INVALID_PARAMETER, ERROR_INVALID_TIME,
                               ERROR_NOACCESS, ERROR_NOT_SUPPORTED, ERROR_SUCCESS,
                               ERROR_WMI_ALREADY_ENABLED, Win32Error)

from .api_convert import BufferFacts, to_event_record, to_event_trace
from .etlfile import EtlFile
from .ordering import buffer_streams, merged_chunks
from .realtime import BufferStream, LiveBuffer, RealtimeSource, rewrite_plain_header
from .records import DecodeIssue, parse_buffer
from .structs import (ETW_BUFFER_CALLBACK_INFORMATION, ETW_OPEN_TRACE_OPTIONS,
                      ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP, EVENT_TRACE_LOGFILE,
                      INVALID_PROCESSTRACE_HANDLE, MAXIMUM_LOGGERS,
                      PROCESS_TRACE_MODE_EVENT_RECORD, PROCESS_TRACE_MODE_RAW_TIMESTAMP,
                      PROCESS_TRACE_MODE_REAL_TIME, TRACE_LOGFILE_HEADER)
from .timestamps import TimeConverter

__all__ = ["OpenTrace", "OpenTraceFromFile", "OpenTraceFromRealTimeLogger",
           "OpenTraceFromRealTimeLoggerWithAllocationOptions", "OpenTraceFromBufferStream",
           "ProcessTraceAddBufferToBufferStream", "ProcessTraceBufferIncrementReference",
           "ProcessTraceBufferDecrementReference", "ProcessTrace", "CloseTrace",
           "GetTraceIssues"]

#: how long OpenTrace waits for a real-time session's header buffer (to fill LogfileHeader)
REALTIME_HEADER_WAIT = 2.0
KERNEL_LOGGER_NAME = "NT Kernel Logger"
#: a live trace merges at most this many already-queued buffers by time at once
LIVE_MERGE_BATCH = 256

_EVENT, _HEADER_EVENT, _BUFFER_DONE = 0, 1, 2
_TYPE_HEADER_BUFFER = lib.ETW_BUFFER_TYPE_HEADER

_table_lock = threading.RLock()
_traces: dict[int, "_Trace"] = {}
_handles = itertools.count(0x1000)


class _CallbackFailed(Exception):
    def __init__(self, where: str, exc: BaseException):
        super().__init__(where)
        self.where = where
        self.exc = exc


class _Trace:
    """One open trace processing session (the object behind a TRACEHANDLE)."""

    def __init__(self, *, path: Optional[str] = None, source=None, raw_timestamp: bool,
                 event_record: bool, event_callback, user_context, logfile=None,
                 buffer_callback=None, buffer_context=None):
        self.handle = 0
        self.path = path
        self.source = source                  # RealtimeSource / BufferStream, None for files
        self.live = source is not None
        self.etl: Optional[EtlFile] = None
        self.raw_timestamp = raw_timestamp
        self.event_record = event_record
        self.event_callback = event_callback
        self.user_context = user_context
        self.logfile: Optional[EVENT_TRACE_LOGFILE] = logfile
        self.buffer_callback = buffer_callback
        self.buffer_context = buffer_context
        self.header = TRACE_LOGFILE_HEADER()
        self.pointer_size = 8
        self.converter: Optional[TimeConverter] = None
        self.processing = False
        self.close_pending = False
        self.issues: dict[DecodeIssue, None] = {}     # insertion-ordered set
        self.buffers_read = 0

    # -- header ---------------------------------------------------------------------------
    def set_header(self, etl_header) -> None:
        """Take the log-file header facts (decoder.etlfile.LogfileHeader)."""
        self.pointer_size = etl_header.pointer_size
        self.converter = TimeConverter(etl_header)
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

    def header_from_buffer(self, data) -> None:
        """Live traces: the header facts from the header buffer (parsed by EtlFile)."""
        with EtlFile(io.BytesIO(bytes(data)), name=self.name) as etl:
            _note_issues(self, etl.errors)
            self.set_header(etl.header)

    @property
    def name(self) -> str:
        if self.path:
            return self.path
        if isinstance(self.source, RealtimeSource):
            return f"<real-time session {self.source.logger_name}>"
        return "<buffer stream>"

    # -- release ---------------------------------------------------------------------------
    def release(self) -> None:
        if self.etl is not None:
            self.etl.close()
            self.etl = None
        if self.source is not None:
            self.source.release()


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
        trace.etl = EtlFile(trace.path)
    except PermissionError:
        raise Win32Error(ERROR_ACCESS_DENIED, filename=trace.path) from None
    except IsADirectoryError:
        raise Win32Error(ERROR_BAD_PATHNAME, filename=trace.path) from None
    _note_issues(trace, trace.etl.errors)
    trace.set_header(trace.etl.header)


def _open_realtime(trace: _Trace, logger_name: Any) -> None:
    if not isinstance(logger_name, str) or not logger_name:
        raise Win32Error(ERROR_BAD_PATHNAME, f"LoggerName {logger_name!r}")
    trace.source = RealtimeSource(logger_name)   # raises ERROR_WMI_INSTANCE_NOT_FOUND
    trace.live = True
    first = trace.source.peek_header_buffer(REALTIME_HEADER_WAIT)
    if first is not None:
        trace.header_from_buffer(first)


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
    if isinstance(trace.source, BufferStream):
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
    trace = _options_trace(Options, source=BufferStream(BufferCompletionCallback,
                                                         BufferCompletionContext))
    return _register(trace)


def ProcessTraceAddBufferToBufferStream(TraceHandle: int, Buffer, BufferSize: int) -> int:
    """Queue one buffer on a buffer-stream trace. Buffers must come in the order ProcessTrace
    produced them: the header buffer first, then each processor's buffers in sequence order
    (ERROR_INVALID_PARAMETER "out of order" otherwise). Returns ERROR_SUCCESS."""
    trace = _lookup(TraceHandle)
    if not isinstance(trace.source, BufferStream):
        raise Win32Error(ERROR_INVALID_HANDLE,
                         f"TraceHandle {trace.handle:#x} is not a buffer-stream trace")
    trace.source.add(Buffer, BufferSize)
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
            trace.source.request_close()
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
    return list(_lookup(TraceHandle).issues)


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
                    t.source.complete_inflight()
                if t.close_pending:
                    t.release()
            except Exception as exc:   # a BufferCompletionCallback raised
                cleanup_failure = cleanup_failure or exc
    if cleanup_failure is not None:
        raise Win32Error(ERROR_NOACCESS, f"BufferCompletionCallback raised {cleanup_failure!r}"
                         ) from cleanup_failure
    return rc


def _run(traces: list[_Trace], start: Optional[int], end: Optional[int]) -> int:
    single = len(traces) == 1
    streams = [(_live_items(t) if t.live else _file_items(t, single)) for t in traces]
    items: Iterable[tuple] = (streams[0] if single
                              else _merged([_in_batches(s) for s in streams]))
    for key, code, trace, obj, facts, raw, filetime in items:
        if trace.close_pending and not trace.live:
            continue        # a file trace closed from a callback delivers nothing more
        if code == _BUFFER_DONE:
            if not _buffer_done(trace, obj):
                return ERROR_CANCELLED
            continue
        if code == _EVENT:
            if start is not None and filetime < start:
                continue
            if end is not None and filetime > end:
                if trace.live:
                    continue
                break
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
    return ERROR_SUCCESS


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
                trace.source.complete(entry)
            except Exception as exc:
                raise _CallbackFailed("BufferCompletionCallback", exc) from exc
    return keep_going


def _continue(result: Any) -> bool:
    """A BufferCallback result: FALSE (False / 0) stops; None (no return) continues."""
    return result is None or bool(result)


# -- per-trace item streams ---------------------------------------------------------------
# Items: (key, code, trace, record-or-done, BufferFacts, raw timestamp, FILETIME). The key
# orders a merge: raw clock within one trace, FILETIME across traces. Streams are merged by
# decoder.ordering.merged_chunks, the package's one ProcessTrace-order merge, fed batches
# (lists of items, one batch per buffer) and the items' keys.

#: items a trace's stream hands the cross-trace merge at a time
_MERGE_BATCH = 4096
_KEY = operator.itemgetter(0)


def _merged(streams: list[Iterable[list]]) -> Iterator[tuple]:
    """The items of several streams of item batches, merged by key (ties: lower stream)."""
    if len(streams) == 1:
        return itertools.chain.from_iterable(streams[0])
    keyed = [((items, list(map(_KEY, items))) for items in stream) for stream in streams]
    return itertools.chain.from_iterable(merged_chunks(keyed))


def _in_batches(items: Iterator[tuple]) -> Iterator[list]:
    """A whole trace's items as batches for the cross-trace merge."""
    while batch := list(itertools.islice(items, _MERGE_BATCH)):
        yield batch


def _records_items(trace: _Trace, records, facts: BufferFacts, last: list, single: bool,
                   first_is_header: bool) -> Iterator[tuple]:
    to_ft = trace.converter.to_filetime if trace.converter else (lambda raw: raw)
    raw_last, ft_last = last
    code = _HEADER_EVENT if first_is_header else _EVENT
    for rec in records:
        raw = rec.timestamp
        if raw is None:
            raw, ft = raw_last, ft_last
        else:
            ft = to_ft(raw)
            raw_last, ft_last = raw, ft
        yield (raw if single else ft), code, trace, rec, facts, raw, ft
        code = _EVENT
    last[0], last[1] = raw_last, ft_last


def _file_items(trace: _Trace, single: bool) -> Iterator[tuple]:
    etl = trace.etl
    index = etl.buffer_index()
    head_last = [0, 0]
    if index and index[0].index == 0:
        buf = etl.read_buffer(index[0])
        records = buf.records()
        _note_issues(trace, buf.issues)
        facts = BufferFacts(buf.processor, buf.logger_id, buf.flags)
        header_first = bool(records) and records[0].kind == "system" and records[0].event_id == 0
        yield from _records_items(trace, records, facts, head_last, single, header_first)
        yield _done_item(trace, buf, head_last, single)
    yield from _merged([_stream_batches(trace, infos, single) for infos in buffer_streams(etl)])


def _stream_batches(trace: _Trace, infos, single: bool) -> Iterator[list]:
    """One processor stream of a file: a list of items per buffer, its done item last."""
    last = [0, 0]
    for info in infos:
        if trace.close_pending:
            return
        buf = trace.etl.read_buffer(info, last[0])
        records = buf.records()
        _note_issues(trace, buf.issues)
        facts = BufferFacts(buf.processor, buf.logger_id, buf.flags)
        items = list(_records_items(trace, records, facts, last, single, False))
        items.append(_done_item(trace, buf, last, single))
        yield items


def _done_item(trace: _Trace, buf, last: list, single: bool) -> tuple:
    data = rewrite_plain_header(buf.data) if buf.compressed and buf.index else buf.data
    return ((last[0] if single else last[1]), _BUFFER_DONE, trace,
            (data, buf.records_end, None), None, last[0], last[1])


def _note_issues(trace: _Trace, issues) -> None:
    for issue in issues:
        trace.issues.setdefault(issue, None)


def _live_items(trace: _Trace) -> Iterator[tuple]:
    """A live trace: the header buffer alone, then batches of whatever buffers are queued
    (up to LIVE_MERGE_BATCH), each batch merged by time across processors. Waiting for more
    would add latency, so order across batches is arrival order."""
    source = trace.source
    last_by_processor: dict[int, list] = {}
    first = True
    while True:
        entry: Optional[LiveBuffer] = source.next_buffer()
        if entry is None:
            return
        if first and entry.header.BufferType == _TYPE_HEADER_BUFFER:
            trace.header_from_buffer(entry.data)
            first = False
            yield from _live_buffer_items(trace, entry, [0, 0], True)
            continue
        first = False
        batch = [entry]
        while len(batch) < LIVE_MERGE_BATCH:
            more = source.poll_buffer()
            if more is None:
                break
            batch.append(more)
        streams: dict[int, list] = {}
        for buf in batch:
            streams.setdefault(buf.header.ClientContext.ProcessorIndex, []).append(buf)
        yield from _merged([_live_stream_batches(trace, bufs,
                                                 last_by_processor.setdefault(proc, [0, 0]))
                            for proc, bufs in streams.items()])


def _live_stream_batches(trace: _Trace, buffers: list, last: list) -> Iterator[list]:
    for entry in buffers:
        yield list(_live_buffer_items(trace, entry, last, False))


def _live_buffer_items(trace: _Trace, entry: LiveBuffer, last: list,
                       is_header: bool) -> Iterator[tuple]:
    header = entry.header
    records, issues = parse_buffer(entry.data, trace.pointer_size, header_buffer=is_header,
                                   source=trace.name)
    _note_issues(trace, issues)
    facts = BufferFacts(header.ClientContext.ProcessorIndex, header.ClientContext.LoggerId,
                        header.BufferFlag)
    header_first = (is_header and bool(records) and records[0].kind == "system"
                    and records[0].event_id == 0)
    yield from _records_items(trace, records, facts, last, True, header_first)
    end = max(header.SavedOffset, header.FilledBytes)
    yield (last[0], _BUFFER_DONE, trace,
           (entry.data, min(end, len(entry.data)), entry), None, last[0], last[1])
