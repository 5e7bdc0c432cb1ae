"""Pythonic WPP providers: ``trace.info(IO, "read %d bytes from %s", n, path)`` into ETW sessions.

A :class:`Provider` is a classic ETW provider (control GUID, friendly name, named flags with one
bit each, TRACE_LEVEL_* levels) registered with the core through ``RegisterTraceGuids``. A
session enables it with flags and a level; the ControlCallback stores them where the level
methods test them first, so a disabled call costs one test.

Each call site is a WPP message, as tracewpp makes them: one message GUID per source file, one
message number per call site (see :mod:`wpptrace.provider.tracing_sites`), a TMF entry with the
TMF format, the argument item types, LEVEL=, FLAGS= and FUNC=. The first enabled call of a site
finds it from the calling frame's code object and instruction offset (the position CPython
recorded for the call), in the site registry ``tmf gen`` wrote or in the source when it still
matches the running code (:mod:`wpptrace.provider.tracing_sources`), compiles its packer
(:mod:`wpptrace.provider.tracing_messages`) and caches it under (code object, offset). Later
calls pack and write at once.

The level methods are C methods of ``wpptrace._fastpath`` (enable test, site lookup by code
object and offset, packing, TraceMessage) when that extension is built for the running
interpreter; otherwise the Python methods of :class:`_PythonLevels` do the same and write the
same bytes.

**A provider never raises into the application by default.** One that cannot register (the
core refuses RegisterTraceGuids: the 1024 providers a process may register at once all
registered ...) is made all the same, a
provider no session can enable: its calls do nothing, :meth:`Provider.stats` says why in
``registration_error``, and a :class:`TraceWarning` reports it once (strict: it raises).
A trace call that cannot be written as its message (a value
that does not fit its type or whose conversion recurses without end, a wrong argument count, a call site whose source is gone and that no
site registry lists) is dropped; the drops are counted per call site (:meth:`Provider.stats`)
and the first one of each site is reported with a :class:`TraceWarning`. With ``strict=True``
(or the environment variable ``WPPTRACE_STRICT=1``) the call raises instead, naming the call
site as ``file:line``. Events the session refuses (no free buffer; larger than a buffer,
ERROR_MORE_DATA: the message's record, 8 bytes of header, its MessageFlags items and its
arguments, 8-byte aligned, must fit BufferSize less the 72-byte buffer header) are
counted in ``events_dropped``, as the session counts them in EventsLost; so are calls the
process had no memory or stack left for (a call made near the recursion limit), with
``last_error`` ERROR_NOT_ENOUGH_MEMORY, and calls made after the enabling session stopped but
before its disable callback arrived (stopped from another process), with ``last_error``
ERROR_INVALID_HANDLE: lost, never raised, in strict mode too. A source file
nested too deeply to scan, found so by a call that used at most a quarter of the recursion
limit, is kept as such for the run: its calls are dropped and reported, the file is not
scanned again. A deeper call that has no room to scan the file is lost as above, and so are
later calls as deep or deeper, without scanning again; a shallower call scans. A call from a
thread with too little C stack left to parse its file (made with a small `threading.stack_size`:
CPython's parser would crash the process on a deeply nested source) is dropped and reported,
and nothing is concluded: a call from a thread with room reads the file. Whether the room is
enough is estimated from the file's tokens (brackets and chains of operators, keywords and
lambdas); a thread with 2 MiB or more left reads any file. (The room is told by the C fast
path, `wpptrace._fastpath`; under an interpreter it was not built for, every file is read
without that check.) A trace call imports nothing: a process forked while another thread was reading the
site registry goes without it (its calls resolve from their sources; those without one are
dropped and reported, saying so), and never waits for what that thread held. Nor does a
call wait for another thread reading or compiling a source file, the same or another (a
slow file system): each reads what it needs on its own thread; two threads resolving one
site at once are both written, and one result is kept for the run (so is the logging
handler's first record from a file). What the
application raises while a call runs is its own and passes on: KeyboardInterrupt, SystemExit,
and what its signal handler raises when a signal is handled during the call (while a value
converts, while a site resolves: see :mod:`wpptrace.provider.tracing_interrupts`).

Level 0 from the session means "every level" (the ETW meaning of level 0).
"""
from __future__ import annotations

import atexit
import dataclasses
import os
import sys
import threading
import uuid
import warnings
import weakref
from typing import Any, Callable, Iterable, NamedTuple

from wpptrace.winerror import in_words

from . import api as _api, fastpath
from ._hazmat import lib as _lib, trace_packed_raw as _trace_packed_raw
from .tracing_interrupts import passes_on, raised_by_signal_handler
from .tracing_messages import CompiledSite, FileMessages, compile_scan, site_label, site_order
from .tracing_sites import LEVELS, LEVEL_METHODS, ScanError, etw_name_guid, relative_source_path
from .tracing_sources import REGISTRY_MODULE, SiteSources, StackTooSmall
from .tracing_types import CustomType, TypeTable

__all__ = [
    "Provider", "TraceFlag", "TraceWarning", "ProviderStats", "DroppedCalls", "CustomType",
    "TRACE_LEVEL_NONE", "TRACE_LEVEL_CRITICAL", "TRACE_LEVEL_FATAL", "TRACE_LEVEL_ERROR",
    "TRACE_LEVEL_WARNING", "TRACE_LEVEL_INFORMATION", "TRACE_LEVEL_VERBOSE", "WPP_TRACE_OPTIONS",
    "STRICT_ENVIRONMENT_VARIABLE",
]

TRACE_LEVEL_NONE = LEVELS["TRACE_LEVEL_NONE"]
TRACE_LEVEL_CRITICAL = LEVELS["TRACE_LEVEL_CRITICAL"]
TRACE_LEVEL_FATAL = LEVELS["TRACE_LEVEL_FATAL"]
TRACE_LEVEL_ERROR = LEVELS["TRACE_LEVEL_ERROR"]
TRACE_LEVEL_WARNING = LEVELS["TRACE_LEVEL_WARNING"]
TRACE_LEVEL_INFORMATION = LEVELS["TRACE_LEVEL_INFORMATION"]
TRACE_LEVEL_VERBOSE = LEVELS["TRACE_LEVEL_VERBOSE"]

#: TraceMessage flags WPP uses: SEQUENCE | GUID | TIMESTAMP | SYSTEMINFO (tracemacro.tpl).
WPP_TRACE_OPTIONS = (_lib.TRACE_MESSAGE_SEQUENCE | _lib.TRACE_MESSAGE_GUID
                     | _lib.TRACE_MESSAGE_TIMESTAMP | _lib.TRACE_MESSAGE_SYSTEMINFO)
WMI_ENABLE_EVENTS = _lib.WMI_ENABLE_EVENTS
WMI_DISABLE_EVENTS = _lib.WMI_DISABLE_EVENTS
MAX_FLAGS = 32  # EnableFlags is a ULONG
#: Set to 1 (or true/yes/on) to make every Provider strict unless it says otherwise.
STRICT_ENVIRONMENT_VARIABLE = "WPPTRACE_STRICT"

_getframe = sys._getframe
#: last_error of a call lost for want of memory or stack (made near the recursion limit).
_NO_ROOM = _lib.ERROR_NOT_ENOUGH_MEMORY   # last_error of a call lost for want of memory or stack
#: the failures of no memory or stack left (not the call's fault: lost and counted if enabled)
_NO_ROOM_ERRORS = (MemoryError, RecursionError)


class TraceWarning(RuntimeWarning):
    """A trace call was dropped (reported once per call site; see :meth:`Provider.stats`)."""


def _warn_once(reported: dict, key, text: Callable[[], str], filename: str, lineno: int) -> None:
    """A TraceWarning ``text()`` at ``filename:lineno`` unless one was given for ``key`` in
    ``reported`` (filled here): the text is made only for the warning given. The check-and-set
    is one call, atomic under the GIL, and takes no lock: of racing threads (or a signal handler
    interrupting this one) one warns, and none waits. Never raises (warnings turned into errors,
    say)."""
    token = object()
    if reported.setdefault(key, token) is not token:
        return
    message = text()
    try:
        warnings.warn_explicit(message, TraceWarning, filename, lineno)
    except Exception:  # noqa: BLE001 - e.g. warnings turned into errors: still never raise
        pass


@dataclasses.dataclass(frozen=True)
class DroppedCalls:
    """The trace calls dropped at one call site, and why the first one was.

    ``site`` names the call site, its file relative to the provider root: ``file:line in
    function (method, message N)`` for a trace call site whose values or argument count do not
    fit its message; ``file:line:column (Provider.method)`` for a call that is no trace call
    site or whose site cannot be resolved (the column tells apart calls on one line)."""

    site: str
    count: int
    reason: str


@dataclasses.dataclass(frozen=True)
class ProviderStats:
    """What a provider could not write.

    ``calls_dropped``: trace calls that could not be written as their message (per call site in
    ``sites``); ``events_dropped``: events the session refused (no free buffer, larger than a
    buffer: the session counts them in EventsLost), calls the process had no memory or stack
    left for, and calls made after the session that enabled the provider stopped but before
    its disable callback arrived (a session stopped from another process: no session took
    them); ``last_error``: the last of these refusals (a Win32 code: ERROR_NOT_ENOUGH_MEMORY for
    want of memory or stack, ERROR_INVALID_HANDLE for a stopped session); ``registration_error``: why the
    provider is not registered, empty when it is (or was never asked to be): no session can
    enable it, and its calls do nothing."""

    calls_dropped: int
    events_dropped: int
    last_error: int
    sites: tuple[DroppedCalls, ...]
    registration_error: str = ""


class TraceFlag(int):
    """A provider flag: an int with one bit set, which remembers its name."""

    name: str

    def __new__(cls, value: int, name: str) -> "TraceFlag":
        self = super().__new__(cls, value)
        self.name = name
        return self

    def __repr__(self) -> str:
        return f"<TraceFlag {self.name}=0x{int(self):x}>"


class _Flags:
    """``provider.flags.IO``: the flags by name, in bit order."""

    def __init__(self, flags: Iterable[TraceFlag]) -> None:
        self._flags = list(flags)
        for flag in self._flags:
            setattr(self, flag.name, flag)

    def __iter__(self):
        return iter(self._flags)

    def __len__(self) -> int:
        return len(self._flags)


def _strict_default() -> bool:
    return os.environ.get(STRICT_ENVIRONMENT_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


class _Place(NamedTuple):
    """Where a call is, as drops report and sort it: ``label`` names it, ``where`` (file, line)
    is the warning's location, ``order`` its place in source order with the numbers kept as
    numbers: (file, line, column, code offset or message number)."""

    label: str
    where: tuple[str, int]
    order: tuple[str, int, int, int]


class _BadSite:
    """A call site that cannot be written: every call there is dropped (or raises if strict)."""

    __slots__ = ("place", "error")

    def __init__(self, place: _Place, error: Exception) -> None:
        self.place, self.error = place, error


def _py_level_method(name: str, level: int):
    """One level method in Python: the enable test, then the cached site of the caller's frame
    (or ``_trace`` for everything else)."""
    source = f'''
def {name}(self, flag=None, fmt=None, *args):
    """Trace at level {level} if ``flag`` is enabled: ``{name}(FLAG, "format %d", value, ...)``."""
    try:
        try:
            if not flag & self._mask{level}:
                return
        except Exception as exc:  # noqa: BLE001 - a flag that is no int: _trace drops the call
            if not self._mask{level}:   # disabled: nothing would be written, so nothing is lost
                if not isinstance(exc, _NO_ROOM_ERRORS) and _raised_by_signal_handler(exc):
                    raise                # (its __and__ ran the application's signal handler)
                return
            if _passes_on(exc):   # (the application's, or no room: the call is counted lost)
                raise
        frame = _getframe(1)
        code = frame.f_code
        entry = self._sites.get(id(code))
        site = entry[1].get(frame.f_lasti) if entry is not None else None
        if type(site) is _CompiledSite and type(flag) in _FLAG_TYPES:
            try:
                payload = site.pack(args)
            except Exception as exc:  # noqa: BLE001 - _trace reports it (or raises if strict)
                if _passes_on(exc):
                    raise
            else:
                rc = self._trace_packed(self.logger_handle, _OPTIONS, site.guid_le, site.number, payload)
                if rc:
                    self.events_dropped += 1
                    self.last_error = rc
                return
        self._trace({level}, "{name}", flag, fmt, args, code, frame.f_lasti, frame.f_globals)
    except (MemoryError, RecursionError):  # no room left: lost and counted (no call in here)
        self.events_dropped += 1
        self.last_error = _NO_ROOM
'''
    namespace = {"_getframe": _getframe, "_CompiledSite": CompiledSite, "_FLAG_TYPES": (int, TraceFlag),
                 "_OPTIONS": WPP_TRACE_OPTIONS, "_NO_ROOM": _NO_ROOM, "_passes_on": passes_on,
                 "_raised_by_signal_handler": raised_by_signal_handler, "_NO_ROOM_ERRORS": _NO_ROOM_ERRORS}
    exec(compile(source, f"<wpptrace Provider.{name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


class _PythonLevels:
    """The level methods in Python (the fallback of the C methods; the same records)."""

    def log(self, level=None, flag=None, fmt=None, *args) -> None:
        """``log(TRACE_LEVEL_WARNING, IO, "fmt", ...)``: the level as a value."""
        try:
            try:
                if not flag & self._masks[level & 0xFF]:
                    return
            except Exception as exc:  # noqa: BLE001 - a level or flag that is no int: _trace drops the call
                # disabled, or an int level not enabled (its mask 0; int's own &, no hook runs):
                # nothing would be written, nothing is lost (the C method never tests the flag)
                if not self.logger_handle or (isinstance(level, int)
                                              and not self._masks[int.__and__(level, 0xFF)]):
                    if not isinstance(exc, _NO_ROOM_ERRORS) and raised_by_signal_handler(exc):
                        raise         # (its __and__ ran the application's signal handler)
                    return
                if passes_on(exc):    # (the application's, or no room: the call is counted lost)
                    raise
            frame = _getframe(1)
            self._trace(level, "log", flag, fmt, args, frame.f_code, frame.f_lasti, frame.f_globals)
        except (MemoryError, RecursionError):
            self.events_dropped += 1
            self.last_error = _NO_ROOM

    def _cache_site(self, code: Any, lasti: int, cid: int) -> None:
        """(The C methods' site cache; the Python methods use ``_sites``.)"""

    def _forget_code(self, code_id: int, lastis: tuple[int, ...]) -> None:
        """(The C methods' site cache forgets a code object being freed: its entries at these
        instruction offsets.)"""

    def _set_core_state(self, handle: int, flags: int, level: int) -> None:
        """(The C methods' copy of the enable state.)"""


for _name, (_level_name, _level) in LEVEL_METHODS.items():
    setattr(_PythonLevels, _name, _py_level_method(_name, _level))
del _name, _level_name, _level

_LEVEL_METHOD_NAMES = tuple(LEVEL_METHODS) + ("log",)


class _ProviderMethods:
    """A classic (WPP) provider with named flags and level methods.

    ``Provider("MyApp", guid=..., flags=("IO", "NET"))``: the control GUID defaults to the ETW
    hash of the name (what ``tracelog -guid '*MyApp'`` and ``--guid '*MyApp'`` enable). ``root`` (default: the directory of
    the file that creates the provider) is what source paths in message GUIDs are relative to,
    and where ``wpptrace tmf gen`` writes the site registry; give the same to ``tmf gen
    --root`` if you do not declare the provider literally. ``types``: :class:`CustomType` s for
    ``%!NAME!``. ``strict``: raise from trace calls that cannot be written instead of dropping
    them, and from a registration the core refuses (default: the ``WPPTRACE_STRICT``
    environment variable). The provider registers at once (``register=False`` to defer) and
    unregisters at exit.
    """

    __slots__ = ()  # the provider class adds the instance dict (and, in C, the enable state)

    def __init__(self, name: str, guid: "uuid.UUID | str | None" = None, *,
                 flags: Iterable[str] = (), root: str | None = None, register: bool = True,
                 strict: bool | None = None, types: Iterable[CustomType] = (), _creator: Any = None) -> None:
        if not name or any(c.isspace() for c in name):
            raise ValueError(f"a provider name must be one word (it is the TMF component name): {name!r}")
        self.name = name
        self.guid = uuid.UUID(str(guid)) if guid is not None else etw_name_guid(name)
        flag_names = list(flags)
        if len(flag_names) > MAX_FLAGS:
            raise ValueError(f"at most {MAX_FLAGS} flags (EnableFlags is 32 bits), {len(flag_names)} given")
        if len(set(flag_names)) != len(flag_names):
            raise ValueError("flag names must be unique")
        self.flags = _Flags(TraceFlag(1 << i, n) for i, n in enumerate(flag_names))
        self.types = TypeTable(types)
        self.strict = _strict_default() if strict is None else bool(strict)
        frame = _creator if _creator is not None else _getframe(1)
        self._created_at = (frame.f_code.co_filename, frame.f_lineno)   # where reports point
        self.root, registry_dir, registry_module = _locations(frame, root)
        self._sources = SiteSources(self.root, registry_dir, registry_module, frame.f_globals.get("__loader__"))
        # Enable state, written by the ControlCallback: per level, the enabled flag bits.
        self._mask1 = self._mask2 = self._mask3 = self._mask4 = self._mask5 = 0
        self._masks = [0] * 256
        self.logger_handle = 0
        self.enable_flags = 0
        self.enable_level = 0
        self.events_dropped = 0   # refused by the session (no free buffer, too big ...)
        self.last_error = 0
        self.calls_dropped = 0
        self.registration_error = ""        # why RegisterTraceGuids failed (see register)
        self._drops: dict[str, list] = {}   # site label -> [count, first reason, _Place.order]
        self._reported: dict[str, object] = {}   # sites whose first drop was reported (see _drop)
        self._files: dict[str, FileMessages] = {}
        # id(code object) -> (a weak reference to it, {instruction offset -> CompiledSite or
        # _BadSite}); the entry goes as the code object is freed, before its id is reused (_hold).
        self._sites: dict[int, tuple[Any, dict[int, Any]]] = {}
        # Publishing resolved sites and the drop counts (calls_dropped, _drops): held over a few
        # dict operations only, never while a call site is read or compiled (see _resolve), so
        # no call waits for another thread's resolving. Reentrant: a signal handler may trace
        # or drop while it is held.
        self._lock = threading.RLock()
        self._state_lock = threading.RLock()   # the enable state (see _set_enable_state)
        self._registration_lock = threading.RLock()   # register / unregister
        _live.add(self)
        self._registration: int | None = None
        self._trace_packed: Callable[..., int] = _trace_packed_raw
        if register:
            self.register()

    def _after_fork(self) -> None:
        """In a forked child: new locks. Only the forking thread lives on there, so a lock that
        another thread held at the fork (publishing a call site) would never be released; what
        other threads were resolving was not published, and the child resolves it itself. The
        counts start at zero (the C methods' too): the child's stats() say what the child lost,
        and the processes' counts add up (the parent's drops stay the parent's). A site reported
        once is not reported again."""
        self._lock = threading.RLock()
        self._state_lock = threading.RLock()
        self._registration_lock = threading.RLock()
        self._sources.after_fork()
        self._drops = {}
        self.calls_dropped = 0
        self.events_dropped = 0
        self.last_error = 0

    # -- flags and enable state -------------------------------------------------------------
    def flag(self, name: str) -> TraceFlag:
        try:
            return getattr(self.flags, name)
        except AttributeError:
            raise KeyError(f"{self.name} has no flag {name!r}") from None

    def enabled(self, flag: int = ~0, level: int = TRACE_LEVEL_VERBOSE) -> bool:
        """Would a message with this flag and level be written now? (a cheap guard)"""
        return bool(flag & self._masks[level & 0xFF])

    def _set_enable_state(self, logger_handle: int, flags: int, level: int) -> None:
        masks = [0] * 256
        if logger_handle:
            for lvl in range(256):
                if level == 0 or lvl <= level:
                    masks[lvl] = flags & 0xFFFFFFFF
        # Callbacks may run in two threads at once (an EnableTrace here, the endpoint thread for
        # other processes): the state is one callback's, the Python fields as the C methods' copy.
        with self._state_lock:
            self.logger_handle = logger_handle
            self.enable_flags, self.enable_level = flags, level
            self._masks = masks
            self._mask1, self._mask2, self._mask3, self._mask4, self._mask5 = masks[1:6]
            self._set_core_state(logger_handle, flags & 0xFFFFFFFF, level & 0xFF)

    def _control_callback(self, request_code: int, context: Any, buffer: Any) -> int:
        if request_code == WMI_ENABLE_EVENTS:
            handle = _api.GetTraceLoggerHandle(buffer)
            self._set_enable_state(handle, _api.GetTraceEnableFlags(handle), _api.GetTraceEnableLevel(handle))
        elif request_code == WMI_DISABLE_EVENTS:
            self._set_enable_state(0, 0, 0)
        return 0

    def _use_writer(self, trace_packed: Callable[..., int] | None) -> None:
        """Write through ``trace_packed(handle, flags, guid_le, number, payload)`` with the Python
        level methods (tests record what would be written); None restores the normal path."""
        self._trace_packed = trace_packed or _trace_packed_raw
        for name in _LEVEL_METHOD_NAMES:
            if trace_packed is None:
                self.__dict__.pop(name, None)
            else:
                self.__dict__[name] = getattr(_PythonLevels, name).__get__(self)

    # -- registration ---------------------------------------------------------------------
    def register(self) -> None:
        """RegisterTraceGuids for the control GUID (idempotent). If the core refuses it, the
        provider stays one no session can enable (its calls do nothing): ``stats()`` says why
        in ``registration_error`` and a :class:`TraceWarning` reports it once; a strict
        provider raises the error instead."""
        # One registration at a time: two at once would both register (one handle leaked), and
        # a failing one would clear the enable state the other's callback had just set.
        with self._registration_lock:
            if self._registration is not None:
                return
            try:
                self._registration = _api.RegisterTraceGuids(self._control_callback, None, self.guid, [])
            except BaseException as exc:
                # not registered (a Ctrl-C in the enable callback it ran): no session's state stays
                self._set_enable_state(0, 0, 0)
                # Not passes_on: a MemoryError here is no trace call that the level method counts
                # lost; it would raise out of Provider() (an import). It is reported like the core's
                # ERROR_NOT_ENOUGH_MEMORY, and register() may be called again.
                if self.strict or not isinstance(exc, Exception) or raised_by_signal_handler(exc):
                    raise
                self._not_registered(exc)
                return
            self.registration_error = ""
            atexit.register(self.unregister)

    def _not_registered(self, exc: Exception) -> None:
        """Report once that RegisterTraceGuids failed (the provider works on, disabled)."""
        reported = bool(self.registration_error)
        why = in_words(exc)
        if getattr(exc, "winerror", None) == _lib.ERROR_NOT_ENOUGH_MEMORY:  # not memory: the limit
            why = f"{_api.REGISTRATIONS_FULL} ({exc.name})"
        self.registration_error = f"RegisterTraceGuids failed: {why}"
        if reported:
            return
        try:
            warnings.warn_explicit(
                f"{self.name}: not registered ({self.registration_error}): no session can enable "
                f"it, so its trace calls do nothing (Provider.stats().registration_error)",
                TraceWarning, *self._created_at)
        except Exception:  # noqa: BLE001 - e.g. warnings turned into errors: still never raise
            pass

    def unregister(self) -> None:
        with self._registration_lock:
            if self._registration is None:
                return
            handle, self._registration = self._registration, None
            self._set_enable_state(0, 0, 0)
            _api.UnregisterTraceGuids(handle)
            atexit.unregister(self.unregister)

    close = unregister

    def __enter__(self) -> "Provider":
        self.register()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unregister()

    # -- the enabled path -----------------------------------------------------------------
    def _trace(self, level: Any, method: str, flag: Any, fmt: Any, args: tuple, code: Any, lasti: int,
               module_globals: dict | None) -> None:
        """An enabled call whose site is not cached yet (or whose values need Python): find the
        site, pack, write; or drop and count (raise if strict)."""
        entry = self._sites.get(id(code))
        site = entry[1].get(lasti) if entry is not None else None
        if site is None:
            try:
                site = self._resolve(method, fmt, code, lasti, module_globals)
            except Exception as exc:  # noqa: BLE001 - whatever went wrong, never into the application
                if passes_on(exc):
                    raise  # no room to resolve it now (the level method counts the call), or the application's
                place = self._failed_place(method, code, lasti)
                why = str(exc) if type(exc) is StackTooSmall else f"{type(exc).__name__}: {exc}"
                return self._drop(place, RuntimeError(f"{place.label}: cannot resolve the call site: {why}"))
        if type(site) is _BadSite:
            return self._drop(site.place, site.error)
        if not (isinstance(flag, int) and isinstance(level, int)):
            what, value = ("flag", flag) if not isinstance(flag, int) else ("level", level)
            return self._drop(_compiled_place(site, code), TypeError(
                f"{site.label}: the {what} must be an int, got {type(value).__name__}"))
        try:
            payload = site.pack(args)
        except Exception as exc:  # noqa: BLE001 - never into the application (see _drop)
            if passes_on(exc):
                raise
            return self._drop(_compiled_place(site, code), exc)
        rc = self._trace_packed(self.logger_handle, WPP_TRACE_OPTIONS, site.guid_le, site.number, payload)
        if rc:
            self.events_dropped += 1
            self.last_error = rc

    def _resolve(self, method: str, fmt: Any, code: Any, lasti: int, module_globals: dict | None) -> Any:
        """The site of a call, found (the source read, scanned, compiled) outside the lock, so
        that no call waits for another thread's read of any file; published under it: of threads
        resolving one site at once, the first to publish is kept and every one is served."""
        site = self._find(method, fmt, code, lasti, module_globals)
        with self._lock:
            entry = self._sites.get(id(code))
            published = entry[1].get(lasti) if entry is not None else None
            if published is not None:
                return published
            if entry is None:   # first: what forgets the C methods' entries of the code object too
                entry = self._sites[id(code)] = (self._hold(code), {})
            if type(site) is not _BadSite:
                self._register_program(site)
                if site.cid is not None:
                    self._cache_site(code, lasti, site.cid)
            entry[1][lasti] = site
            return site

    def _hold(self, code: Any) -> Any:
        """A weak reference to a cached code object, which forgets its entries (here and the C
        methods') as the code object is freed, before its id can be another object's: code
        compiled again (a reload, exec'd text) would otherwise be kept for the provider's life."""
        sites, key, provider = self._sites, id(code), weakref.ref(self)

        def forget(_ref: Any) -> None:
            entry = sites.pop(key, None)
            alive = provider()
            if alive is not None and entry is not None:   # (the C entries' offsets are entry's)
                alive._forget_code(key, tuple(entry[1]))
        return weakref.ref(code, forget)

    def _call_place(self, method: str, code: Any, lasti: int, position: tuple) -> _Place:
        """``file:line:column (Provider.method)`` (1-based column) of a call that is no compiled
        site, its file relative to the provider root: the column tells apart calls on one line,
        and all the code objects one exec'd text makes share it. Where only lines are
        recorded (3.10), the code offset does that instead."""
        rel = relative_source_path(os.path.abspath(code.co_filename), self.root)
        line = position[0] or 0
        call = f"{self.name}.{method}"
        if len(position) == 4 and position[2] is not None:
            column = position[2] + 1
            return _Place(f"{rel}:{line}:{column} ({call})", (code.co_filename, line), (rel, line, column, 0))
        return _Place(f"{rel}:{line} ({call} at code offset {lasti})", (code.co_filename, line),
                      (rel, line, 0, lasti))

    def _failed_place(self, method: str, code: Any, lasti: int) -> _Place:
        """The place of a call whose resolving failed unexpectedly: as _find makes it when it
        can; else (whatever failed fails here too) by the full file name."""
        try:
            return self._call_place(method, code, lasti, _call_position(code, lasti))
        except Exception as exc:  # noqa: BLE001 - the call is dropped all the same
            if passes_on(exc):
                raise
            name = code.co_filename
            return _Place(f"{name} ({self.name}.{method})", (name, code.co_firstlineno), (name, 0, 0, 0))

    def _find(self, method: str, fmt: Any, code: Any, lasti: int, module_globals: dict | None) -> Any:
        path = os.path.abspath(code.co_filename)
        position = _call_position(code, lasti)
        place = self._call_place(method, code, lasti, position)
        label = place.label
        try:
            scan, why = self._sources.trace_sites(path, code, module_globals)
        except ScanError as exc:
            return _BadSite(place, RuntimeError(f"{label}: cannot read the call site: {exc}"))
        if scan is None:
            return _BadSite(place, RuntimeError(f"{label}: cannot identify the call site: {why}"))
        messages = self._compiled(scan)
        site = messages.site_at(position, method, fmt)
        if site is not None:
            return site
        bad = messages.bad_site_at(position, method, fmt)
        if bad is not None:
            rel = messages.relative_path
            return _BadSite(_Place(site_label(rel, bad), place.where, site_order(rel, bad)),
                            messages.bad_sites[bad.position])
        return _BadSite(place, RuntimeError(
            f"{label}: not a trace call site of {messages.relative_path}: the format must be a string "
            f"literal and the flag must not be one"))

    def _compiled(self, scan: Any) -> FileMessages:
        """The messages of a scanned file, compiled outside the lock and published under it (one
        FileMessages per scan, whichever thread compiled it first: its sites get one program)."""
        messages = self._files.get(scan.path)
        if messages is None or messages.scan is not scan:
            compiled = compile_scan(scan, control_guid=self.guid, component=self.name, root=self.root,
                                    table=self.types)
            with self._lock:
                messages = self._files.get(scan.path)
                if messages is None or messages.scan is not scan:
                    messages = self._files[scan.path] = compiled
        return messages

    def _register_program(self, site: CompiledSite) -> None:
        if site.cid is None and fastpath.AVAILABLE:
            site.cid = fastpath.module.register_site(site.guid_le, site.number, WPP_TRACE_OPTIONS,
                                                     *site.program())

    def _drop(self, place: _Place, error: Exception) -> None:
        """A call that cannot be written: raise if strict, else count it and report the first.
        Never waits for a call site being resolved in another thread (see _lock). The error's
        text is made for a site's first drop only (and again after stats(reset=True))."""
        if self.strict:
            raise error.with_traceback(None)
        label = place.label
        reason = None
        while True:
            with self._lock:
                record = self._drops.get(label)
                if record is not None or reason is not None:
                    self.calls_dropped += 1
                    if record is not None:
                        record[0] += 1
                    else:
                        self._drops[label] = [1, reason, place.order]
                    break
            reason = _text_of(error)     # outside the lock: an application's __str__ may run

        def text() -> str:   # a racing drop may report the site before the one that counted it first
            why = reason if reason is not None else _text_of(error)
            return (f"{self.name}: trace call dropped: {why} (later drops at this call site are "
                    f"only counted: Provider.stats())")
        _warn_once(self._reported, label, text, *place.where)

    def stats(self, reset: bool = False) -> ProviderStats:
        """Calls dropped (per call site, with the first reason) and events the session refused;
        ``reset=True`` starts the counts again from zero (each site is still reported once per
        process)."""
        with self._lock:
            sites = tuple(DroppedCalls(label, count, reason) for label, (count, reason, _order)
                          in sorted(self._drops.items(), key=lambda item: (item[1][2], item[0])))
            stats = ProviderStats(self.calls_dropped, int(self.events_dropped), int(self.last_error), sites,
                                  self.registration_error)
            if reset:
                self._drops.clear()
                self.calls_dropped = self.events_dropped = self.last_error = 0
            return stats

    # -- TMF ------------------------------------------------------------------------------
    def add_sources(self, *paths: str) -> None:
        """Read (and compile) the call sites of these files now, for write_tmf before they run."""
        for path in paths:
            path = os.path.abspath(path)
            self._sources.add_source(path)
            scan, why = self._sources.trace_sites(path, None, None)
            if scan is None:
                raise ScanError(why, path)
            self._compiled(scan)

    def source_files(self) -> list[FileMessages]:
        out = []
        for path in self._sources.files():
            scan, _why = self._sources.trace_sites(path, None, None)
            if scan is not None:
                out.append(self._compiled(scan))
        return out

    def write_tmf(self, directory: str, *, sources: Iterable[str] = (), when: Any = None,
                  control_files: bool = True) -> list[str]:
        """Write the TMF of every source file seen (and ``sources``), plus .tmc/.mof; as tmf gen."""
        from . import tmfgen
        self.add_sources(*sources)
        info = tmfgen.ProviderInfo(self.name, self.guid, tuple(f.name for f in self.flags), self.root)
        when = tmfgen.reproducible_time() if when is None else when
        files = sorted(self.source_files(), key=lambda m: m.relative_path)
        return [str(p) for p in tmfgen.write_files(directory, info, files, when, control_files=control_files)]


_live: "weakref.WeakSet[Any]" = weakref.WeakSet()   # every provider, for _after_fork


def _after_fork_in_child() -> None:
    for provider in list(_live):
        provider._after_fork()


_api.renew_in_forked_child(_after_fork_in_child)   # before any callback runs in the child


if fastpath.AVAILABLE:
    # The level methods are C methods of the very class the instances have (see provider_type).
    Provider = fastpath.module.provider_type(f"{__name__}.Provider", _ProviderMethods)
else:
    class Provider(_PythonLevels, _ProviderMethods):
        pass
Provider.__doc__ = _ProviderMethods.__doc__


def _locations(frame: Any, root: str | None) -> tuple[str, str, str | None]:
    """The provider root (message GUID paths are relative to it, as the call sites' code objects
    name their files), where the site registry is read from (the same place beside the module's
    actual file, which differs from its code's file name in a .pyc-only install), and the
    registry's module name."""
    code_file = frame.f_code.co_filename
    if code_file and not (code_file.startswith("<") and code_file.endswith(">")):
        base = os.path.dirname(os.path.abspath(code_file))
    else:
        base = os.getcwd()
    root_abs = os.path.abspath(os.path.join(base, root)) if root else base
    step = os.path.relpath(root_abs, base)
    module_file = frame.f_globals.get("__file__")
    real_base = os.path.dirname(os.path.abspath(module_file)) if isinstance(module_file, str) else base
    registry_dir = os.path.normpath(os.path.join(real_base, step))
    package = frame.f_globals.get("__package__") or ""
    parts = [] if step == os.curdir else step.split(os.sep)
    module = None
    if all(p == os.pardir for p in parts):
        names = package.split(".") if package else []
        if len(parts) <= len(names):
            names = names[:len(names) - len(parts)]
            module = ".".join(names + [REGISTRY_MODULE])
    return root_abs, registry_dir, module


def _call_position(code: Any, lasti: int) -> tuple:
    """(line, end_line, column, end_column) CPython recorded for the instruction, or (line,)."""
    positions = getattr(code, "co_positions", None)
    if positions is not None:  # 3.11+: the CALL instruction carries the ast.Call range
        for index, pos in enumerate(positions()):
            if index == lasti // 2:
                return pos
    for start, end, line in code.co_lines():
        if start <= lasti < end:
            return (line,)
    return (None,)


def _text_of(value: Any, convert: Callable[[Any], str] = str) -> str:
    """``str(value)`` (or ``convert(value)``), or what its type is if that fails (the
    application's object, whose own exception never goes into the application)."""
    try:
        return convert(value)
    except Exception as exc:  # noqa: BLE001 - the application's object
        if passes_on(exc):
            raise
        return f"<{type(value).__name__} object: {convert.__name__}() failed>"


def _compiled_place(site: CompiledSite, code: Any) -> _Place:
    return _Place(site.label, (code.co_filename, site.site.line), site.order)
