"""Session helpers: real-time subscription to a running session, a TraceSession object, and
what the Win32 calls cannot say about sessions in other processes.

``subscribe_realtime(name)`` gives every buffer a REAL_TIME_MODE session flushes (complete
bytes: WMI_BUFFER_HEADER + records), the session's header buffer first, in this process or
any other process of this user. :class:`TraceSession` wraps StartTrace / EnableTrace /
ControlTrace for scripts and tests. :func:`session_info` and :func:`providers` report a
session's host process and which session holds each provider.
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import threading
import uuid
from typing import Any, Callable

from wpptrace.provider import api
from wpptrace.provider._hazmat import check, ffi, lib
from wpptrace.provider.runtime_directory import usable as runtime_directory
from wpptrace.winerror import Win32Error

__all__ = ["RealtimeSubscription", "subscribe_realtime", "TraceSession", "SessionInfo",
           "session_info", "list_sessions", "ProviderInfo", "providers", "GuidHolder", "guid_holders",
           "enable_trace_if", "runtime_directory"]

_WAIT_SLICE_MS = 200    # wait in slices so Ctrl-C reaches a consumer blocked in get(None)


class RealtimeSubscription:
    """The buffers of one real-time session, in flush order (header buffer first).

    ``get(timeout)`` returns the next buffer's bytes, or None on timeout or once the session
    stopped and every buffer was read (then ``closed`` is True). ``close()`` stops receiving.

    Once the stream ended, ``final_sequence`` is the SequenceNumber of the last buffer the
    session flushed and ``dropped`` the buffers it dropped for this subscription (its queue
    was full), as the session said at its end; both are None before, or if the end came
    without them (the session's host died). Buffers dropped after the last one received
    leave no gap in the SequenceNumbers: ``final_sequence`` counts them.
    """

    def __init__(self, session_name: str):
        out = ffi.new("wpptrace_rt_subscription **")
        size = ffi.new("uint32_t *")
        check(lib.wpptrace_rt_subscribe(session_name.encode("utf-8"), out, size),
              f"subscribe_realtime({session_name!r})")
        self._sub = out[0]
        self.session_name = session_name
        self.buffer_size = int(size[0])
        self._out = ffi.new("char[]", self.buffer_size)
        self._filled = ffi.new("uint32_t *")
        self._lock = threading.Lock()
        self._ended = False
        self._final: tuple[int, int] | None = None

    def _take_final(self) -> None:
        """Keep what the end of the stream said (self._sub still open)."""
        info = ffi.new("wpptrace_rt_final_info *")
        if self._final is None and lib.wpptrace_rt_final(self._sub, info):
            self._final = (int(info.LastSequence), int(info.Dropped))

    @property
    def final_sequence(self) -> int | None:
        """The last SequenceNumber the session flushed, once the stream ended (else None)."""
        return self._final[0] if self._final is not None else None

    @property
    def dropped(self) -> int | None:
        """Buffers the session dropped for this subscription, once the stream ended (else None)."""
        return self._final[1] if self._final is not None else None

    @property
    def closed(self) -> bool:
        """True once close() was called, or the session stopped and every buffer was read."""
        if self._sub is None or self._ended:
            return True
        self._ended = bool(lib.wpptrace_rt_drained(self._sub))
        if self._ended:
            self._take_final()
        return self._ended

    def get(self, timeout: float | None = None) -> bytes | None:
        with self._lock:
            if self._sub is None or self._ended:
                return None
            remaining = None if timeout is None else max(0, int(timeout * 1000))
            while True:
                wait = _WAIT_SLICE_MS if remaining is None else min(remaining, _WAIT_SLICE_MS)
                rc = lib.wpptrace_rt_next(self._sub, wait, self._out, self.buffer_size, self._filled)
                if rc == 0:
                    return ffi.unpack(self._out, self._filled[0])
                if rc == lib.ERROR_HANDLE_EOF:
                    self._ended = True
                    self._take_final()
                    return None
                if rc != lib.WAIT_TIMEOUT:
                    raise Win32Error(rc, "RealtimeSubscription.get")
                if remaining is not None:
                    remaining -= wait
                    if remaining <= 0:
                        return None

    def sync(self, timeout: float = 5.0) -> None:
        """Wait until every buffer the session had flushed to this subscription has arrived
        (from another process they may still be on their way): ``get(0)`` then returns each
        of them. A stopped session needs none: its end comes after its last buffer."""
        with self._lock:
            if self._sub is None or self._ended:
                return
            rc = lib.wpptrace_rt_sync(self._sub, max(0, int(timeout * 1000)))
            if rc not in (0, lib.WAIT_TIMEOUT):
                raise Win32Error(rc, "RealtimeSubscription.sync")

    def __iter__(self):
        while True:
            data = self.get(None)
            if data is None:
                return
            yield data

    def close(self) -> None:
        with self._lock:
            if self._sub is not None:
                self._take_final()
                lib.wpptrace_rt_close(self._sub)
                self._sub = None

    def __enter__(self) -> "RealtimeSubscription":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def subscribe_realtime(session_name: str) -> RealtimeSubscription:
    """Subscribe to running real-time session ``session_name`` (Win32Error
    ERROR_WMI_INSTANCE_NOT_FOUND if there is none)."""
    return RealtimeSubscription(session_name)


# TraceSessions not stopped yet: stopped when this process exits (unless keep_running).
_scoped: set["TraceSession"] = set()


@atexit.register
def _stop_scoped_sessions() -> None:
    for session in list(_scoped):
        try:
            session.stop()
        except Win32Error as exc:
            api._report_at_exit(exc)       # one line if its file is incomplete; never raises


class TraceSession:
    """A started session: ``enable()`` providers, ``query()``, ``flush()``, ``stop()``.

    Usable as a context manager (stops on exit; a failure to stop is raised only if the block
    succeeded, else it is added to the block's exception as a note). Keyword arguments are EVENT_TRACE_PROPERTIES
    fields; ``logfile`` sets LogFileName (and FILE_MODE_SEQUENTIAL unless a file mode is given).
    The session belongs to this object: it is stopped when this process exits, unless
    ``keep_running=True`` leaves it to run on in its host process (as StartTrace does);
    ``ends_with_caller=True`` makes its host stop it when this process has ended, also when
    it was killed (StartTrace's ``ends_with_caller``).
    """

    def __init__(self, name: str, logfile: str | os.PathLike | None = None, *,
                 keep_running: bool = False, ends_with_caller: bool = False, **properties: Any):
        props = api.EVENT_TRACE_PROPERTIES(**properties)
        if logfile is not None:
            props.LogFileName = os.fspath(logfile)
            if not props.LogFileMode & (lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL | lib.EVENT_TRACE_FILE_MODE_CIRCULAR):
                props.LogFileMode |= lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
        self.name = name
        self.properties = props
        self.handle = api.StartTrace(name, props, ends_with_caller=ends_with_caller)
        self.stopped = False
        if not keep_running:
            _scoped.add(self)

    def enable(self, control_guid: uuid.UUID, flags: int = 0xFFFFFFFF, level: int = 5) -> None:
        api.EnableTrace(True, flags, level, control_guid, self.handle)

    def disable(self, control_guid: uuid.UUID) -> None:
        api.EnableTrace(False, 0, 0, control_guid, self.handle)

    def query(self) -> api.EVENT_TRACE_PROPERTIES:
        return api.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_QUERY)

    def flush(self) -> api.EVENT_TRACE_PROPERTIES:
        return api.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_FLUSH)

    def stop(self) -> api.EVENT_TRACE_PROPERTIES:
        """Stop (idempotent); returns the final counters.

        If the log file could not be completed (a full or failing disk), the session is
        stopped all the same and Win32Error (ERROR_DISK_FULL, ERROR_WRITE_FAULT) is raised:
        its ``properties``, like ``final``, hold the final counters (LogBuffersLost counts the
        buffers not written)."""
        if not self.stopped:
            _scoped.discard(self)
            try:
                self.final = api.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_STOP)
            except OSError as exc:
                # stopped all the same when its log file could not be completed (the error
                # says why; the final counters come with it)
                if getattr(exc, "properties", None) is not None:
                    self.final, self.stopped = exc.properties, True
                raise
            self.stopped = True
        return self.final

    def __enter__(self) -> "TraceSession":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        """Stop. If the block raised, its exception goes on: a failure to stop (such as a log
        file that could not be completed) is added to it as a note instead of replacing it."""
        if exc is None:
            self.stop()
            return
        stop_noting(exc, self.stop, f"wpptrace: stopping session {self.name!r} also failed")


def stop_noting(exc: BaseException, stop: "Callable[[], object]", who: str) -> None:
    """``stop()`` while ``exc`` is on its way: a failure of it becomes a note on ``exc``
    (``who``: the words before the failure's), never the exception that is seen."""
    try:
        stop()
    except Exception as failure:  # noqa: BLE001 - exc is the one to see
        _add_note(exc, f"{who}: {_failure_words(failure)}")


def _failure_words(failure: BaseException) -> str:
    """A stop failure in one line (naming the log file if that is what failed)."""
    return api._incomplete_file_words(failure) or f"{type(failure).__name__}: {failure}"


def _add_note(exc: BaseException, note: str) -> None:
    """Add a note to an exception on its way (shown with its traceback); before Python 3.11,
    which has no notes, a warning says it."""
    if hasattr(exc, "add_note"):
        exc.add_note(note)
    else:
        import warnings
        warnings.warn(note, RuntimeWarning, stacklevel=3)


@dataclasses.dataclass
class SessionInfo:
    """What ControlTrace QUERY does not report: where a session runs."""

    logger_id: int
    host_pid: int
    private: bool            #: run by this process (EVENT_TRACE_PRIVATE_LOGGER_MODE)
    host_gone: bool          #: its host process died: ControlTrace STOP cleans up
    realtime_consumers: int
    records_abandoned: int   #: records whose writer never completed them (in EventsLost)
    buffers_quarantined: int  #: buffers set aside for good: a writer that gave up a record may still run
    busy: bool = False       #: listed, but its host did not answer in time: the counters are not known


def session_info(name: str | None = None, handle: int = 0) -> SessionInfo:
    """Where session ``name`` (or ``handle``) runs (Win32Error ERROR_WMI_INSTANCE_NOT_FOUND
    if there is none)."""
    info = ffi.new("WPPTRACE_SESSION_INFO *")
    raw = name.encode("utf-8") if name is not None else ffi.NULL
    check(lib.wpptrace_session_info(handle, raw, info), f"session_info({name or handle!r})")
    return _session_info_of(info)


def _session_info_of(info: Any) -> SessionInfo:
    return SessionInfo(int(info.LoggerId), int(info.HostProcessId),
                       bool(info.Flags & lib.WPPTRACE_SESSION_PRIVATE),
                       bool(info.Flags & lib.WPPTRACE_SESSION_HOST_GONE),
                       int(info.RealTimeConsumers), int(info.RecordsAbandoned),
                       int(info.BuffersQuarantined), bool(info.Flags & lib.WPPTRACE_SESSION_BUSY))


def list_sessions() -> list[tuple[api.EVENT_TRACE_PROPERTIES, SessionInfo]]:
    """QueryAllTraces with each session's :class:`SessionInfo`, from one request per session: a
    host that does not answer in time is waited for once (its session is listed ``busy``)."""
    count = lib.WPPTRACE_MAX_SESSIONS
    blocks = [api.EVENT_TRACE_PROPERTIES()._to_c() for _ in range(count)]
    array = ffi.new("EVENT_TRACE_PROPERTIES *[]", [p for _, p in blocks])
    infos = ffi.new("WPPTRACE_SESSION_INFO[]", count)
    found = ffi.new("uint32_t *")
    rc = lib.wpptrace_list_sessions(array, infos, count, found)
    if rc not in (0, lib.ERROR_MORE_DATA):
        raise Win32Error(rc, "list_sessions")
    out = []
    for i, (_, p) in enumerate(blocks[:found[0]]):
        props = api.EVENT_TRACE_PROPERTIES()
        props._from_c(p)
        out.append((props, _session_info_of(infos[i])))
    return out


@dataclasses.dataclass
class ProviderInfo:
    """A control GUID: which session holds it (if enabled) and how many processes registered it."""

    guid: uuid.UUID
    enabled: bool
    logger_id: int
    flags: int
    level: int
    processes: int


def providers() -> list[ProviderInfo]:
    """Every control GUID registered by this user's processes or enabled by its sessions."""
    count = 256
    while True:
        out = ffi.new("WPPTRACE_PROVIDER_INFO[]", count)
        total = ffi.new("uint32_t *")
        rc = lib.wpptrace_enumerate_providers(out, count, total)
        if rc == lib.ERROR_MORE_DATA and total[0] > count:
            count = total[0]
            continue
        check(rc, "providers")
        return [ProviderInfo(uuid.UUID(bytes_le=bytes(ffi.buffer(ffi.addressof(out[i], "Guid"), 16))),
                             bool(out[i].IsEnable), int(out[i].LoggerId), int(out[i].EnableFlags),
                             int(out[i].EnableLevel), int(out[i].ProcessCount))
                for i in range(total[0])]


@dataclasses.dataclass(frozen=True)
class GuidHolder:
    """The running session holding a control GUID, as the registry says it."""

    handle: int              #: the session's handle (its generation in it; 0: not nameable here)
    logger_id: int
    generation: int          #: the session's whole registry generation
    incarnation: int         #: the registry's
    name: str
    flags: int
    level: int


def _holder_of(c: Any) -> GuidHolder | None:
    if not c.IsEnable:
        return None
    return GuidHolder(int(c.LoggerHandle), int(c.LoggerId), int(c.Generation), int(c.Incarnation),
                      ffi.string(c.LoggerName).decode("utf-8", "replace"), int(c.EnableFlags),
                      int(c.EnableLevel))


def _guid_into(c: Any, guid: uuid.UUID) -> None:
    ffi.memmove(ffi.addressof(c, "Guid"), guid.bytes_le, 16)


def guid_holders(guids: "list[uuid.UUID] | set[uuid.UUID]") -> dict[uuid.UUID, GuidHolder]:
    """Which running session holds each of ``guids`` (one none holds is not in it): read from
    the registry alone, no provider or session host asked (Win32Error ERROR_BUSY if its lock
    was held too long elsewhere)."""
    wanted = list(guids)
    out = ffi.new("WPPTRACE_GUID_HOLDER[]", max(1, len(wanted)))
    for i, guid in enumerate(wanted):
        _guid_into(out[i], guid)
    check(lib.wpptrace_guid_holders(out, len(wanted)), "guid_holders")
    held = {guid: _holder_of(out[i]) for i, guid in enumerate(wanted)}
    return {guid: h for guid, h in held.items() if h is not None}


def _holder_into(c: Any, guid: uuid.UUID, holder: GuidHolder | None) -> None:
    _guid_into(c, guid)
    if holder is not None:
        c.IsEnable, c.LoggerHandle, c.LoggerId = 1, holder.handle, holder.logger_id
        c.Generation, c.Incarnation = holder.generation, holder.incarnation
        c.EnableFlags, c.EnableLevel = holder.flags, holder.level


def enable_trace_if(on: bool, flags: int, level: int, guid: uuid.UUID, handle: int,
                    expected: GuidHolder | None) -> tuple[bool, GuidHolder | None]:
    """EnableTrace only while the registry still shows ``expected`` holding ``guid`` (None: no
    session), checked and changed in one hold of its lock: (True, None) once changed, else
    (False, what the registry shows instead) with nothing changed. Win32Error as EnableTrace
    raises (ERROR_INVALID_HANDLE: the session ``handle`` names has ended)."""
    want = ffi.new("WPPTRACE_GUID_HOLDER *")
    _holder_into(want[0], guid, expected)
    found = ffi.new("WPPTRACE_GUID_HOLDER *")
    applied = ffi.new("UCHAR *")
    rc = lib.wpptrace_enable_trace_if(1 if on else 0, flags, level, ffi.addressof(want[0], "Guid"), handle,
                                      want, found, applied)
    api._pass_on()
    check(rc, "EnableTrace")
    return (True, None) if applied[0] else (False, _holder_of(found[0]))


def host_log_path(logger_id: int) -> str | None:
    """Where the host process of a session with ``logger_id`` writes its log (what went wrong
    with its files and requests), whether or not such a session runs now; None for a LoggerId no
    session can have, or if the runtime directory is unusable. The host's own name for it."""
    out = ffi.new("char[]", 4096)
    if lib.wpptrace_host_log_path(logger_id, out, len(out)) != 0:
        return None
    return ffi.string(out).decode("utf-8", "replace")


def log_path_refusal(path: str) -> str:
    """The rule that keeps ``path`` from being a session's log file, in words, as the core says it
    (the checks StartTrace and UPDATE make, links followed as they follow them); "" if no rule
    did (it is usable, its directory is missing, or the system refused it)."""
    out = ffi.new("char[]", 8192)
    lib.wpptrace_log_path_refusal(os.fsencode(path), out, len(out))
    return ffi.string(out).decode("utf-8", "replace")


