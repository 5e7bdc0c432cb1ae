"""The classic ETW provider and controller API under its Win32 names, for Python.

Same functions, arguments and meanings as evntrace.h; failures raise
:class:`wpptrace.winerror.Win32Error` (an OSError with ``.winerror`` and ``.name``). GUIDs are
:class:`uuid.UUID`; message arguments are ``bytes`` (each one a (pointer, size) pair of the C
call). The hot path for Python loggers is :func:`trace_packed`, which returns the code instead
of raising.
"""
from __future__ import annotations

import _signal  # getsignal without signal's enum wrapping
import _thread
import atexit
import dataclasses
import os
import sys
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from wpptrace.provider._hazmat import (
    INVALID_TRACEHANDLE, check, ffi, last_error, lib, trace_message_raw, trace_packed_raw,
)
from wpptrace.provider import runtime_directory
from wpptrace.winerror import Win32Error

__all__ = [
    "RegisterTraceGuids", "UnregisterTraceGuids", "GetTraceLoggerHandle", "GetTraceEnableFlags",
    "GetTraceEnableLevel", "TraceMessage", "TraceMessageVa", "StartTrace", "ControlTrace",
    "EnableTrace", "EnableTraceEx2", "QueryAllTraces", "EnumerateTraceGuids",
    "EVENT_TRACE_PROPERTIES", "TRACE_GUID_PROPERTIES", "trace_packed", "control_callback_failures",
    "update_trace",
]

ControlCallback = Callable[[int, Any, Any], int]

# ---- provider ------------------------------------------------------------------------------

# registration handle -> objects C holds pointers to (callback handle, GUID storage) and the
# registration's record; dropped when UnregisterTraceGuids returns (C waits for callbacks
# still running in other threads)
_registrations: dict[int, tuple[Any, ...]] = {}

#: Called as hook(registration_handle, control_guid) after every successful RegisterTraceGuids
#: (``wpptrace session record`` uses it to enable providers a script registers). What a hook
#: raises is shown (``sys.excepthook``), not raised into the application registering.
registration_hooks: list[Callable[[int, uuid.UUID], None]] = []


class _Callback:
    """A registration's ControlCallback, its context, and how often it failed."""

    __slots__ = ("callback", "context", "failures")

    def __init__(self, callback: ControlCallback, context: Any) -> None:
        self.callback, self.context, self.failures = callback, context, 0


# What a control callback run by the main thread raised that is the application's own
# (KeyboardInterrupt, SystemExit): raised again by the call of this module that ran the
# callback, once that call is done (it cannot unwind through C).
_passed_on: list[BaseException] = []


def _in_main_thread() -> bool:
    return threading.get_ident() == threading.main_thread().ident


def _callback_failed(record: _Callback | None, exc: BaseException) -> None:
    """A control callback raised. Ctrl-C reaches the main thread, as the signal would: from the
    call that ran the callback there, else as if SIGINT arrived (the application's SIGINT
    handler runs in its main thread). SystemExit in the main thread likewise. Anything else is
    the provider's bug, and the session goes on: the first of a registration is shown (through
    ``sys.excepthook``), the later ones only counted (:func:`control_callback_failures`)."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)) and _in_main_thread():
        if not _passed_on:
            _passed_on.append(exc)
        return
    if isinstance(exc, KeyboardInterrupt) and callable(_signal.getsignal(_signal.SIGINT)):
        _thread.interrupt_main()
        return
    if record is not None:
        record.failures += 1
        if record.failures > 1:
            return
    try:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    except BaseException:  # noqa: BLE001 - the report of a failure must not fail through C
        pass


def _pass_on() -> None:
    """Raise what a control callback this main thread ran raised for the application."""
    if _passed_on and _in_main_thread():
        exc = _passed_on.pop()
        _passed_on.clear()
        raise exc


def _bridge_failed(exc_type: Any, exc: BaseException, tb: Any) -> int:
    """(cffi's onerror: what the bridge itself raised, a Ctrl-C arriving on its first lines.)"""
    _callback_failed(None, exc)
    return lib.ERROR_INVALID_PARAMETER


@ffi.def_extern(onerror=_bridge_failed)
def _wpptrace_control_callback(request_code, request_context, buffer_size, buffer):
    """C -> Python bridge: RequestContext is the handle of the registration's _Callback."""
    record = ffi.from_handle(request_context)
    try:
        return int(record.callback(int(request_code), record.context, buffer) or 0) & 0xFFFFFFFF
    except BaseException as exc:   # a provider's bug must not unwind through C
        _callback_failed(record, exc)
        return lib.ERROR_INVALID_PARAMETER


# A forked child runs its ControlCallbacks once Python runs again there: the core holds them
# until this module's fork hook lets them go (they ran inside fork() before, where a callback
# that released the GIL never got it back). The hooks renewing what callbacks use that another
# thread of the parent may have held at the fork (the Provider's locks) run first.
_renewed_in_child: list[Callable[[], None]] = []


def renew_in_forked_child(hook: Callable[[], None]) -> None:
    """Run ``hook`` in a forked child before any ControlCallback runs there."""
    _renewed_in_child.append(hook)


def _let_callbacks_go_in_child() -> None:
    try:
        for hook in _renewed_in_child:
            hook()
    finally:
        lib.wpptrace_release_callbacks_after_fork()


lib.wpptrace_hold_callbacks_after_fork()
os.register_at_fork(after_in_child=_let_callbacks_go_in_child)


def _in_range(what: str, value: Any, bits: int) -> None:
    """Raise ERROR_INVALID_PARAMETER if the int ``value`` does not fit the C parameter's
    ``bits``-bit unsigned type (other types are left to cffi, which raises TypeError)."""
    if isinstance(value, int) and not 0 <= value < 1 << bits:
        raise Win32Error(lib.ERROR_INVALID_PARAMETER,
                         f"{what} {value} is out of range (0 to {(1 << bits) - 1})")


def _guid(value: uuid.UUID | None, what: str):
    """A GUID* for C (NULL for None)."""
    if value is None:
        return ffi.NULL
    if not isinstance(value, uuid.UUID):
        raise TypeError(f"{what} must be a uuid.UUID, not {type(value).__name__}")
    guid = ffi.new("GUID *")
    ffi.memmove(guid, value.bytes_le, 16)
    return guid


#: Why RegisterTraceGuids fails with ERROR_NOT_ENOUGH_MEMORY, in words that follow Windows'
#: "Not enough memory resources are available ..." (the resource is a registration, not memory).
REGISTRATIONS_FULL = (f"no provider registration was available: a process may have at most "
                      f"{lib.WPPTRACE_MAX_REGISTRATIONS} registered at once")


def RegisterTraceGuids(control_callback: ControlCallback, context: Any, control_guid: uuid.UUID,
                       guid_registrations: Iterable[uuid.UUID] = (),
                       mof_image_path: str | None = None,
                       mof_resource_name: str | None = None) -> int:
    """Register a classic provider; returns the registration handle. A process registers at
    most WPPTRACE_MAX_REGISTRATIONS (1024) at once: one more fails with ERROR_NOT_ENOUGH_MEMORY,
    whose text says that limit was reached.

    ``control_callback(request_code, context, buffer) -> int`` runs with WMI_ENABLE_EVENTS or
    WMI_DISABLE_EVENTS when a session enables or disables ``control_guid``: synchronously in
    the thread that called EnableTrace / EnableTraceEx2 / ControlTrace STOP when that is this
    process, in the core's notification thread when another process did (or a session's host
    went away), and during this call if a session already holds ``control_guid``. ``buffer``
    is valid during the call only: pass it to :func:`GetTraceLoggerHandle`. The MOF arguments
    are accepted and ignored (no WMI here).

    What the callback raises does not reach the core. A KeyboardInterrupt reaches the
    application's main thread: raised by the call that ran the callback when that call was
    made there (this one then registers nothing), else delivered as SIGINT would be. Any
    other exception is shown once per registration (``sys.excepthook``) and counted
    (:func:`control_callback_failures`); the callback answers ERROR_INVALID_PARAMETER.
    """
    if not callable(control_callback):
        raise TypeError("control_callback must be callable")
    guids = list(guid_registrations)
    control = _guid(control_guid, "control_guid")
    trace_guids = [_guid(g, "guid_registrations item") for g in guids]
    regs = ffi.new("TRACE_GUID_REGISTRATION[]", max(1, len(guids)))
    for i, g in enumerate(trace_guids):
        regs[i].Guid = g
    record = _Callback(control_callback, context)
    keep = ffi.new_handle(record)
    out = ffi.new("uint64_t *")
    rc = lib.RegisterTraceGuidsA(lib._wpptrace_control_callback, keep, control, len(guids), regs,
                                 ffi.NULL, ffi.NULL, out)
    if rc == 0:
        _registrations[out[0]] = (keep, control, trace_guids, regs, record)
        if _passed_on and _in_main_thread():
            # Ctrl-C in the callback this call ran: the call did not complete, nothing stays
            # registered (the handle would be lost to the caller)
            UnregisterTraceGuids(int(out[0]))
    _pass_on()
    if rc == lib.ERROR_NOT_ENOUGH_MEMORY:      # the core's only cause for it: every place taken
        raise Win32Error(rc, f"RegisterTraceGuids: {REGISTRATIONS_FULL}")
    check(rc, "RegisterTraceGuids")
    handle = int(out[0])
    for hook in list(registration_hooks):
        try:
            hook(handle, control_guid)
        except Exception:  # noqa: BLE001 - a hook's failure is not the application's registration's
            sys.excepthook(*sys.exc_info())
        except BaseException:
            UnregisterTraceGuids(handle)   # Ctrl-C: the call did not complete (as above)
            raise
    return handle


def UnregisterTraceGuids(registration_handle: int) -> None:
    """Unregister a provider (no callback is sent). Returns once no callback of this
    registration is running in another thread; none starts afterwards."""
    _in_range("registration_handle", registration_handle, 64)
    check(lib.UnregisterTraceGuids(registration_handle), "UnregisterTraceGuids")
    _registrations.pop(registration_handle, None)


def control_callback_failures(registration_handle: int) -> int:
    """How often the registration's ControlCallback raised (Ctrl-C aside); 0 once unregistered."""
    held = _registrations.get(registration_handle)
    return held[-1].failures if held is not None else 0


def GetTraceLoggerHandle(buffer: Any) -> int:
    """The session's logger handle from the ``buffer`` a ControlCallback received."""
    handle = lib.GetTraceLoggerHandle(buffer if buffer is not None else ffi.NULL)
    if handle == INVALID_TRACEHANDLE:
        raise Win32Error(last_error(), "GetTraceLoggerHandle")
    return int(handle)


def GetTraceEnableFlags(logger_handle: int) -> int:
    """The enable flags the session passed (EnableTrace EnableFlag / low 32 bits of MatchAnyKeyword)."""
    _in_range("logger_handle", logger_handle, 64)
    flags = lib.GetTraceEnableFlags(logger_handle)
    check(last_error(), "GetTraceEnableFlags")
    return int(flags)


def GetTraceEnableLevel(logger_handle: int) -> int:
    """The enable level the session passed."""
    _in_range("logger_handle", logger_handle, 64)
    level = lib.GetTraceEnableLevel(logger_handle)
    check(last_error(), "GetTraceEnableLevel")
    return int(level)


def _bytes_args(args: Iterable[Any]) -> list[bytes]:
    out = []
    for a in args:
        if not isinstance(a, bytes):
            a = bytes(memoryview(a))
        out.append(a)
    return out


def TraceMessage(logger_handle: int, flags: int, message_guid: uuid.UUID | None, number: int,
                 *args: bytes) -> None:
    """Log one message: the argument bytes are ``args`` concatenated (raises Win32Error)."""
    try:
        guid = message_guid.bytes_le if message_guid is not None else None
        # trace_message_raw: the fixed-arity builtin (no variadic cffi call), or its cffi fallback
        rc = trace_message_raw(logger_handle, flags, guid, number, *args)
    except AttributeError:                       # checked here, off the fast path
        _guid(message_guid, "message_guid")
        raise
    if rc == lib.ERROR_INVALID_PARAMETER:        # an int out of range: named
        _message_ranges(logger_handle, flags, number)
    check(rc, "TraceMessage")


def _message_ranges(logger_handle: int, flags: int, number: int) -> None:
    _in_range("logger_handle", logger_handle, 64)
    _in_range("flags", flags, 32)
    _in_range("number", number, 16)


def TraceMessageVa(logger_handle: int, flags: int, message_guid: uuid.UUID | None, number: int,
                   arg_list: Iterable[bytes]) -> None:
    """TraceMessage with the arguments as one list (the va_list), logged as separate pairs."""
    _message_ranges(logger_handle, flags, number)
    parts = _bytes_args(arg_list)
    array = ffi.new("WPPTRACE_ARG[]", max(1, len(parts)))
    keep = []
    for i, part in enumerate(parts):
        data = ffi.from_buffer(part)
        keep.append(data)
        array[i].Data = data
        array[i].Size = len(part)
    guid = _guid(message_guid, "message_guid")
    check(lib.wpptrace_trace_args(logger_handle, flags, guid, number, array, len(parts)),
          "TraceMessageVa")


#: Fast path: ``trace_packed(logger_handle, flags, message_guid_bytes_le, number, payload)``
#: logs one message whose argument bytes are exactly ``payload`` and returns the Win32 code
#: (0 = logged; ERROR_NOT_ENOUGH_MEMORY = dropped and counted in EventsLost;
#: ERROR_INVALID_PARAMETER for a GUID that is not 16 bytes or an int out of its C type's range,
#: a message number above 65535 say, nothing written). It never raises for a failure: it runs
#: in the traced application (a value of the wrong type is a TypeError).
#: ``message_guid_bytes_le`` is ``uuid.bytes_le`` or None. The METH_FASTCALL builtin of
#: provider/pyext/fastpath.c in the normal build, else _hazmat's cffi form (same contract).
trace_packed = trace_packed_raw


# ---- controller ------------------------------------------------------------------------------

_NAME_ROOM = 1024        # bytes reserved for the session name (UTF-8, NUL included)
_PATH_ROOM = 4096        # bytes reserved for the log file name


@dataclasses.dataclass
class EVENT_TRACE_PROPERTIES:
    """EVENT_TRACE_PROPERTIES with the Win32 field names (inputs, then what QUERY reports).

    ``ClientContext`` is the clock (Wnode.ClientContext): 1 performance counter (CLOCK_MONOTONIC
    in 100 ns ticks), 2 system time (FILETIME), 3 CPU cycles. ``LogFileName``/``LoggerName``
    stand for the strings stored at LogFileNameOffset/LoggerNameOffset in C.
    """

    BufferSize: int = 64              # KB
    MinimumBuffers: int = 0
    MaximumBuffers: int = 0
    MaximumFileSize: int = 0          # MB (KB with EVENT_TRACE_USE_KBYTES_FOR_SIZE)
    LogFileMode: int = 0
    FlushTimer: int = 0               # seconds (ms with EVENT_TRACE_USE_MS_FLUSH_TIMER)
    EnableFlags: int = 0
    AgeLimit: int = 0
    LogFileName: str | None = None
    ClientContext: int = 1
    # outputs
    LoggerName: str | None = None
    NumberOfBuffers: int = 0
    FreeBuffers: int = 0
    EventsLost: int = 0
    BuffersWritten: int = 0
    LogBuffersLost: int = 0
    RealTimeBuffersLost: int = 0
    LoggerThreadId: int = 0
    HistoricalContext: int = 0        # Wnode.HistoricalContext: the session handle

    _INPUTS = ("BufferSize", "MinimumBuffers", "MaximumBuffers", "MaximumFileSize", "LogFileMode",
               "FlushTimer", "EnableFlags", "AgeLimit")
    _OUTPUTS = ("NumberOfBuffers", "FreeBuffers", "EventsLost", "BuffersWritten", "LogBuffersLost",
                "RealTimeBuffersLost")

    def _to_c(self):
        size = ffi.sizeof("EVENT_TRACE_PROPERTIES")
        block = ffi.new("char[]", size + _NAME_ROOM + _PATH_ROOM)
        p = ffi.cast("EVENT_TRACE_PROPERTIES *", block)
        p.Wnode.BufferSize = size + _NAME_ROOM + _PATH_ROOM
        p.Wnode.Flags = lib.WNODE_FLAG_TRACED_GUID
        _in_range("ClientContext", self.ClientContext, 32)
        p.Wnode.ClientContext = self.ClientContext
        for name in self._INPUTS:
            _in_range(name, getattr(self, name), 32)
            setattr(p, name, getattr(self, name))
        p.LoggerNameOffset = size
        p.LogFileNameOffset = size + _NAME_ROOM      # "" = no file; QUERY writes the name here
        if self.LogFileName:
            path = str(self.LogFileName).encode("utf-8")
            if len(path) >= _PATH_ROOM or b"\0" in path:
                raise Win32Error(lib.ERROR_BAD_PATHNAME, f"LogFileName: expected fewer than "
                                 f"{_PATH_ROOM} bytes and no NUL character", str(self.LogFileName))
            ffi.memmove(block + size + _NAME_ROOM, path, len(path))
        return block, p

    def _from_c(self, p) -> None:
        for name in self._INPUTS + self._OUTPUTS:
            setattr(self, name, int(getattr(p, name)))
        self.ClientContext = int(p.Wnode.ClientContext)
        self.HistoricalContext = int(p.Wnode.HistoricalContext)
        self.LoggerThreadId = int(ffi.cast("uintptr_t", p.LoggerThreadId))
        base = ffi.cast("char *", p)
        self.LoggerName = ffi.string(base + p.LoggerNameOffset).decode("utf-8", "replace")
        if p.LogFileNameOffset:
            name = ffi.string(base + p.LogFileNameOffset).decode("utf-8", "replace")
            self.LogFileName = name or None


def _encode_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    if not raw or b"\0" in raw or len(raw) >= _NAME_ROOM:
        raise Win32Error(lib.ERROR_INVALID_PARAMETER, f"session name {name!r}")
    return raw


# Private sessions (EVENT_TRACE_PRIVATE_LOGGER_MODE) run in this process: the ones still
# running at exit are stopped then, so their last buffers reach the file. Other sessions run
# in their own host process and outlive this one until someone stops them, as on Windows.
# A forked child has none of them (they stay its parent's), so it stops none at exit: their
# handles may name another process's session there after a clean-up of the runtime directory.
_running: set[int] = set()
os.register_at_fork(after_in_child=_running.clear)
_PRIVATE_MODES = lib.EVENT_TRACE_PRIVATE_LOGGER_MODE | lib.EVENT_TRACE_PRIVATE_IN_PROC


def _incomplete_file_words(exc: BaseException) -> str | None:
    """What a STOP or UPDATE error says about a log file that could not be completed (one
    line naming the file), or None if the error is about something else."""
    props = getattr(exc, "properties", None)
    if props is None or not isinstance(exc, Win32Error):
        return None
    lost = (f"{props.LogBuffersLost} buffers could not be written" if props.LogBuffersLost
            else "it could not be finished")
    return f"its log file {props.LogFileName} is incomplete: {lost} ({exc.name})"


def _report_at_exit(exc: Win32Error) -> None:
    """One line on stderr for a session stopped at exit whose log file is incomplete (nothing
    may raise at exit; the file is all the evidence, so it is named)."""
    words = _incomplete_file_words(exc)
    if words is not None:
        try:
            sys.stderr.write(f"wpptrace: session {exc.properties.LoggerName!r} stopped at exit, "
                             f"but {words}\n")
            sys.stderr.flush()
        except Exception:  # noqa: BLE001 - stderr may be closed at exit
            pass


#: (the core's count, its line at exit given the count and whether it is plural), in the
#: order ``_report_enables_dropped`` says them
_EXIT_REPORTS = (
    (lambda: lib.wpptrace_enables_dropped(),
     lambda n, plural: f"this process had no room for {n} enable{'s' if plural else ''} of other "
                       f"processes' sessions (it keeps 1024 at a time): "
                       f"{'their providers' if plural else 'its provider'} stayed disabled here"),
    (lambda: lib.wpptrace_enables_withheld(),
     lambda n, plural: f"{n} enable{'s' if plural else ''} of other processes' sessions never "
                       f"reached this process (forked in a provider callback that never returned "
                       f"into the copy bringing {'them' if plural else 'it'}): "
                       f"{'their providers' if plural else 'its provider'} stayed disabled here"),
    (lambda: lib.wpptrace_changes_undelivered(),
     lambda n, plural: f"{n} provider registration{'s' if plural else ''} of this process "
                       f"{'were' if plural else 'was'} found owed a change of "
                       f"{'their' if plural else 'its'} enable state when asked (the thread "
                       f"making it was cancelled in a ControlCallback, and no endpoint thread was "
                       f"there to deliver it; a later EnableTrace may have)"),
    (lambda: lib.wpptrace_views_refused(),
     lambda n, plural: f"this process refused the memory of {n} session{'s' if plural else ''} of "
                       f"other processes (not sealed against shrinking, or not as the session "
                       f"said): its providers were not enabled for {'them' if plural else 'it'}"),
    (lambda: lib.wpptrace_sessions_displaced(),
     lambda n, plural: f"{n} session{'s' if plural else ''} of this process "
                       f"{'were' if plural else 'was'} left out of the registry made again after a "
                       f"clean-up of the runtime directory (another session took "
                       f"{'their LoggerIds' if plural else 'its LoggerId'} there first): "
                       f"{'they' if plural else 'it'} ran on, but other processes could not find "
                       f"or list {'them' if plural else 'it'}"),
    (lambda: lib.wpptrace_hosts_not_stopped(),
     lambda n, plural: f"{n} session host{'s' if plural else ''} this process started after a "
                       f"clean-up of the runtime directory could not be made to stop (whether "
                       f"{'their pids were' if plural else 'its pid was'} still the host's could "
                       f"not be told): {'they' if plural else 'it'} may run on, writing "
                       f"{'their files' if plural else 'its file'}, found by no name"),
)


def _report_enables_dropped() -> None:
    """One line on stderr at exit if this process had no room for enables of other processes'
    sessions (each dropped and counted once by the core, its provider left disabled here), one
    if such enables were withheld from it (a child forked in a callback of the copy bringing
    them, that never returned into it), one if it refused the memory of such a session, and one
    if a session of its own was left out of a registry made again after a clean-up: nothing else
    shows these counts to a person."""
    try:
        for count, line in _EXIT_REPORTS:
            n = int(count())
            if n:
                sys.stderr.write(f"wpptrace: {line(n, n != 1)}\n")
                sys.stderr.flush()
    except Exception:  # noqa: BLE001 - stderr may be closed at exit
        pass


@atexit.register
def _at_exit() -> None:
    for handle in list(_running):
        try:
            ControlTrace(handle, None, None, lib.EVENT_TRACE_CONTROL_STOP)
        except Win32Error as exc:
            _report_at_exit(exc)
    _report_enables_dropped()
    # no enable notification may reach Python callbacks while the interpreter shuts down
    lib.wpptrace_endpoint_close()


#: StartTrace failures about the session's name or this user's registry, never its log file
_NOT_ABOUT_THE_FILE = frozenset((lib.ERROR_ALREADY_EXISTS, lib.ERROR_BUSY, lib.ERROR_WMI_INSTANCE_NOT_FOUND,
                                 lib.ERROR_BAD_FORMAT))


def _start_failed(rc: int, name: str, properties: EVENT_TRACE_PROPERTIES) -> None:
    """Win32Error for StartTrace's ``rc``: a runtime directory the core refuses (not private to
    this user ...) is said so, as the session CLI says it; the log file is named only when the
    error may be about it."""
    call = f"StartTrace({name!r})"
    if rc == lib.ERROR_NO_SYSTEM_RESOURCES:     # the core's only cause for it: no LoggerId free
        # (slot 0 is the NT Kernel Logger's, whose name never gets this code: taken, it is ALREADY_EXISTS)
        raise Win32Error(rc, f"{call}: all {lib.WPPTRACE_MAX_SESSIONS - 1} LoggerIds for sessions of "
                             f"this user are in use (the {lib.WPPTRACE_MAX_SESSIONS}th is the NT Kernel "
                             f"Logger's)")
    if rc in (lib.ERROR_ACCESS_DENIED, lib.ERROR_BAD_PATHNAME, lib.ERROR_BAD_FORMAT):
        refused = runtime_directory.refusal()
        if refused is not None:
            raise Win32Error(rc, f"{call}: {refused}")
    about_the_file = properties.LogFileName and rc not in _NOT_ABOUT_THE_FILE
    check(rc, call, str(properties.LogFileName) if about_the_file else None)


def StartTrace(name: str, properties: EVENT_TRACE_PROPERTIES, *, ends_with_caller: bool = False) -> int:
    """Start session ``name``; returns its handle and fills ``properties``' outputs.

    The session runs in a host process of its own (started here) until ControlTrace STOP
    from any process of this user, or ``wpptrace session stop``; with
    EVENT_TRACE_PRIVATE_LOGGER_MODE it runs in this process, for this process's providers
    only, and stops at exit. ``ends_with_caller`` (wpptrace's own): the host stops the session
    (its file completed) once this process has ended, however it ended (killed, crashed)."""
    raw = _encode_name(name)
    block, p = properties._to_c()
    out = ffi.new("uint64_t *")
    options = lib.WPPTRACE_START_ENDS_WITH_CALLER if ends_with_caller else 0
    rc = lib.wpptrace_start_trace(out, raw, p, options)
    if rc != lib.ERROR_SUCCESS:
        _start_failed(rc, name, properties)
    properties._from_c(p)
    if properties.LogFileMode & _PRIVATE_MODES:
        _running.add(int(out[0]))
    return int(out[0])


def ControlTrace(handle: int, name: str | None, properties: EVENT_TRACE_PROPERTIES | None,
                 control_code: int) -> EVENT_TRACE_PROPERTIES:
    """QUERY / STOP / FLUSH / UPDATE the session named by ``handle`` (or ``name`` if 0), in
    whichever process of this user runs it.

    A log file that could not be completed (a full or failing disk, the file size limit) raises
    Win32Error ERROR_DISK_FULL, ERROR_WRITE_FAULT or ERROR_FILE_TOO_LARGE, whose ``properties`` are filled all the same: at
    STOP the session's file (the session is stopped), at an UPDATE that switched to a new
    LogFileName the old file (the session goes on writing the new one). An UPDATE that
    switched files and failed says which file failed apart, in the error's ``old_file_error``
    (why the file left is incomplete) and ``new_file_error`` (why the new file could not be
    started: the session writes no file now), each a Win32Error or None; the error raised is
    the old file's if it failed, else the new file's. On any other error both are None. A STOP's
    error says in ``host_gone`` whether this call found the session's host process gone (killed,
    the session never stopped: ERROR_WMI_INSTANCE_NOT_FOUND) and cleaned up after it; False for
    a session that is not there (another STOP may have stopped it meanwhile)."""
    return _control(handle, name, properties, control_code)[0]


def update_trace(handle: int, name: str | None,
                 properties: EVENT_TRACE_PROPERTIES) -> tuple[EVENT_TRACE_PROPERTIES, bool]:
    """ControlTrace(UPDATE), and whether the session left its log file for the LogFileName
    given (False when none is given, or the name leads to the file the session has open: it
    goes on in it, named so from now on). Raises as ControlTrace does."""
    return _control(handle, name, properties, lib.EVENT_TRACE_CONTROL_UPDATE)


def _control(handle: int, name: str | None, properties: EVENT_TRACE_PROPERTIES | None,
             control_code: int) -> tuple[EVENT_TRACE_PROPERTIES, bool]:
    _in_range("handle", handle or 0, 64)
    _in_range("control_code", control_code, 32)
    if properties is None:
        properties = EVENT_TRACE_PROPERTIES()
    block, p = properties._to_c()
    raw = _encode_name(name) if name is not None else ffi.NULL
    old_error = new_error = host_gone = file_switched = 0
    if control_code == lib.EVENT_TRACE_CONTROL_UPDATE:
        out = ffi.new("ULONG[3]")
        rc = lib.wpptrace_update_trace(handle or 0, raw, p, out, out + 1, out + 2)
        old_error, new_error, file_switched = int(out[0]), int(out[1]), int(out[2])
    elif control_code == lib.EVENT_TRACE_CONTROL_STOP:
        gone = ffi.new("ULONG *")
        rc = lib.wpptrace_stop_trace(handle or 0, raw, p, gone)   # DISABLE callbacks
        host_gone = int(gone[0])
    else:
        rc = lib.ControlTraceA(handle or 0, raw, p, control_code)
    # a STOP that filled the properties stopped the session, an UPDATE that says a file error
    # switched its file (the error carries them as .properties)
    stopped = control_code == lib.EVENT_TRACE_CONTROL_STOP and (rc == 0 or p.Wnode.HistoricalContext != 0)
    switched = bool(old_error or new_error)
    if rc == 0 or stopped or switched:
        properties._from_c(p)
        if stopped:
            _running.discard(properties.HistoricalContext)
    _pass_on()
    try:
        check(rc, f"ControlTrace({control_code})")
    except Win32Error as exc:
        exc.properties = properties if stopped or switched else None
        exc.old_file_error = Win32Error(old_error, "the log file left") if old_error else None
        exc.new_file_error = Win32Error(new_error, "the new log file") if new_error else None
        exc.host_gone = bool(host_gone)
        raise
    return properties, bool(file_switched)


def EnableTrace(enable: bool, enable_flag: int, enable_level: int, control_guid: uuid.UUID,
                session_handle: int) -> None:
    """Enable (or disable) the classic provider ``control_guid`` on a session."""
    _in_range("enable_flag", enable_flag, 32)
    _in_range("enable_level", enable_level, 8)
    _in_range("session_handle", session_handle, 64)
    rc = lib.EnableTrace(1 if enable else 0, enable_flag, enable_level, _guid(control_guid, "control_guid"),
                         session_handle)
    _pass_on()
    check(rc, "EnableTrace")


def EnableTraceEx2(session_handle: int, provider_guid: uuid.UUID, control_code: int, level: int,
                   match_any_keyword: int = 0, match_all_keyword: int = 0, timeout: int = 0,
                   enable_parameters: Any = None) -> None:
    """EVENT_CONTROL_CODE_ENABLE_PROVIDER / DISABLE_PROVIDER; a classic provider sees the low 32
    bits of ``match_any_keyword`` as its enable flags. ``enable_parameters`` must be None."""
    if enable_parameters is not None:
        raise Win32Error(lib.ERROR_NOT_SUPPORTED, "EnableTraceEx2: enable_parameters")
    for what, value, bits in (("session_handle", session_handle, 64),
                              ("control_code", control_code, 32), ("level", level, 8),
                              ("match_any_keyword", match_any_keyword, 64),
                              ("match_all_keyword", match_all_keyword, 64),
                              ("timeout", timeout, 32)):
        _in_range(what, value, bits)
    rc = lib.EnableTraceEx2(session_handle, _guid(provider_guid, "provider_guid"), control_code, level,
                            match_any_keyword, match_all_keyword, timeout, ffi.NULL)
    _pass_on()
    check(rc, "EnableTraceEx2")


def QueryAllTraces() -> list[EVENT_TRACE_PROPERTIES]:
    """QUERY of every session this user runs (and this process's private ones)."""
    count = lib.WPPTRACE_MAX_SESSIONS
    blocks = [EVENT_TRACE_PROPERTIES()._to_c() for _ in range(count)]
    array = ffi.new("EVENT_TRACE_PROPERTIES *[]", [p for _, p in blocks])
    found = ffi.new("uint32_t *")
    rc = lib.QueryAllTracesA(array, count, found)
    if rc not in (0, lib.ERROR_MORE_DATA):
        raise Win32Error(rc, "QueryAllTraces")
    out = []
    for _, p in blocks[:found[0]]:
        props = EVENT_TRACE_PROPERTIES()
        props._from_c(p)
        out.append(props)
    return out


@dataclasses.dataclass
class TRACE_GUID_PROPERTIES:
    """A control GUID known on this machine: registered by a provider, enabled by a session
    (``LoggerId`` is the session holding it when ``IsEnable``)."""

    Guid: uuid.UUID
    GuidType: int = 0
    LoggerId: int = 0
    EnableLevel: int = 0
    EnableFlags: int = 0
    IsEnable: bool = False


def EnumerateTraceGuids() -> list[TRACE_GUID_PROPERTIES]:
    """Every control GUID registered in this user's processes or enabled by its sessions."""
    count = 256
    while True:
        items = [ffi.new("TRACE_GUID_PROPERTIES *") for _ in range(count)]
        array = ffi.new("TRACE_GUID_PROPERTIES *[]", items)
        total = ffi.new("uint32_t *")
        rc = lib.EnumerateTraceGuids(array, count, total)
        if rc == lib.ERROR_MORE_DATA and total[0] > count:
            count = total[0]
            continue
        check(rc, "EnumerateTraceGuids")
        return [TRACE_GUID_PROPERTIES(uuid.UUID(bytes_le=bytes(ffi.buffer(ffi.addressof(g[0], "Guid"), 16))),
                                      int(g.GuidType), int(g.LoggerId), int(g.EnableLevel),
                                      int(g.EnableFlags), bool(g.IsEnable))
                for g in items[:total[0]]]
