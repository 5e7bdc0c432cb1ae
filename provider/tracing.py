"""Pythonic WPP providers: ``trace.info(IO, "read %d bytes from %s", n, path)`` into ETW sessions.

A :class:`Provider` is a classic ETW provider (control GUID, friendly name, named flags with one
bit each, TRACE_LEVEL_* levels) registered with the core through ``RegisterTraceGuids``. A
session enables it with flags and a level; the ControlCallback stores them in plain Python
attributes (one enable mask per level), so a disabled call is one attribute test and never
enters C. (Measured alternatives, CPython 3.11: per-instance closures or ``*args`` signatures
are slower than a class method with default slots, which the interpreter specialises.)

Each call site is a WPP message, as tracewpp makes them: one message GUID per source file, one
message number per call site (see :mod:`wpptrace.provider.tracing_sites`), a TMF entry with the
TMF format, the argument item types, LEVEL=, FLAGS= and FUNC=. The first enabled call of a site
finds it by the position CPython recorded for the CALL instruction, compiles its packer
(:mod:`wpptrace.provider.tracing_messages`), registers its packer program with the C fast path
and caches it; later calls make one builtin call (``_hazmat.site_writer``) that finds the site
by the format object and packs the values into the record. A value the C form refuses is
packed by the site's validating Python encoder, which raises naming the call site. Without the
builtins, the site's generated Python packer and ``trace_packed_raw`` do the same. ``wpptrace tmf gen`` writes the same TMF from the sources,
``Provider.write_tmf()`` writes it from the running program; both are byte for byte equal.

Level 0 from the session means "every level" (the ETW meaning of level 0).
"""
from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import uuid
from typing import Any, Callable, Iterable

from ._hazmat import NEEDS_CHECKER, NEEDS_SITE
from ._hazmat import lib as _lib
from .tracing_messages import MISSING, CompiledSite, FileMessages, compile_file
from .tracing_sites import LEVELS, LEVEL_METHODS, ScanError, etw_name_guid

__all__ = [
    "Provider", "TraceFlag",
    "TRACE_LEVEL_NONE", "TRACE_LEVEL_CRITICAL", "TRACE_LEVEL_FATAL", "TRACE_LEVEL_ERROR",
    "TRACE_LEVEL_WARNING", "TRACE_LEVEL_INFORMATION", "TRACE_LEVEL_VERBOSE", "WPP_TRACE_OPTIONS",
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

_getframe = sys._getframe
_NO_SITES: dict = {}


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


class Provider:
    """A classic (WPP) provider with named flags and level methods.

    ``Provider("MyApp", guid=..., flags=("IO", "NET"))``: the control GUID defaults to the ETW
    hash of the name (what ``tracelog *MyApp`` would use). ``root`` (default: the directory of
    the file that creates the provider) is what source paths in message GUIDs are relative to;
    give the same to ``wpptrace tmf gen --root`` if you do not declare the provider literally.
    The provider registers at once (``register=False`` to defer) and unregisters at exit.
    """

    def __init__(self, name: str, guid: "uuid.UUID | str | None" = None, *,
                 flags: Iterable[str] = (), root: str | None = None, register: bool = True) -> None:
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
        caller = _getframe(1).f_code.co_filename
        base = os.path.dirname(os.path.abspath(caller)) if os.path.exists(caller) else os.getcwd()
        self.root = os.path.abspath(os.path.join(base, root)) if root else base
        # Enable state, written by the ControlCallback: per level, the enabled flag bits.
        self._mask1 = self._mask2 = self._mask3 = self._mask4 = self._mask5 = 0
        self._masks = [0] * 256
        self.logger_handle = 0
        self.enable_flags = 0
        self.enable_level = 0
        self.events_dropped = 0   # trace_packed refusals (no free buffer, too big ...)
        self.last_error = 0
        self._files: dict[str, FileMessages] = {}
        # format text -> (the format object, writer key, site) when the object names the site;
        # the key is what self._write takes: the C program id, or the site for the Python packer
        self._by_format: dict[str, tuple[str, Any, CompiledSite]] = {}
        # id(code object) -> {instruction offset -> site}; the site keeps the code object alive,
        # so the id cannot be reused while it is cached.
        self._by_code: dict[int, dict[int, CompiledSite]] = {}
        self._lock = threading.Lock()
        self._registration: int | None = None
        self._trace_packed: Callable[..., int] | None = None
        self._trace_site: Callable[..., int] | None = None
        # _write(handle, fmt, a0, a1, a2, a3, more): by the format object (or NEEDS_SITE);
        # _write_key(handle, key, a0, a1, a2, a3, more): by the site's writer key
        self._write: Callable[..., int] = self._python_write
        self._write_key: Callable[..., int] = self._python_write_key
        from ._hazmat import trace_packed_raw, trace_site_slots
        self._set_writers(trace_packed_raw, trace_site_slots)
        if register:
            self.register()

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
        self.logger_handle = logger_handle
        self.enable_flags, self.enable_level = flags, level
        self._masks = masks
        self._mask1, self._mask2, self._mask3, self._mask4, self._mask5 = masks[1:6]

    def _set_writers(self, trace_packed: Callable[..., int] | None,
                     trace_site_slots: Callable[..., int] | None) -> None:
        """Choose the entries the level methods write with (tests substitute recorders):
        ``trace_site_slots(handle, program id, a0, a1, a2, a3, more)`` packs in C; None -> the
        site's Python packer and ``trace_packed(handle, flags, guid_le, number, payload)``."""
        with self._lock:
            self._trace_packed, self._trace_site = trace_packed, trace_site_slots
            if trace_site_slots is None:
                self._write, self._write_key = self._python_write, self._python_write_key
            else:
                from ._hazmat import site_writer
                self._write, self._write_key = site_writer(self._by_format), trace_site_slots
            for sites in self._by_code.values():
                for site in sites.values():
                    self._register_program(site)
            for fmt, (obj, _key, site) in list(self._by_format.items()):
                self._by_format[fmt] = (obj, self._writer_key(site), site)

    def _writer_key(self, site: CompiledSite) -> Any:
        return site if self._trace_site is None else site.cid

    def _python_write(self, handle: int, fmt: str, a0: Any, a1: Any, a2: Any, a3: Any,
                      more: tuple) -> int:
        """``self._write`` without the builtins: by the format object, or NEEDS_SITE."""
        entry = self._by_format.get(fmt)
        if entry is None or entry[0] is not fmt:
            return NEEDS_SITE
        return self._python_write_key(handle, entry[1], a0, a1, a2, a3, more)

    def _python_write_key(self, handle: int, site: CompiledSite, a0: Any, a1: Any, a2: Any, a3: Any,
                          more: tuple) -> int:
        """``self._write_key`` without the builtins: the site's generated packer (which raises
        naming the call site for a value that does not fit), then trace_packed."""
        return self._trace_packed(handle, WPP_TRACE_OPTIONS, site.guid_le, site.number,
                                  site.pack(a0, a1, a2, a3, more))

    def _control_callback(self, request_code: int, context: Any, buffer: Any) -> int:
        from .api import GetTraceEnableFlags, GetTraceEnableLevel, GetTraceLoggerHandle
        if request_code == WMI_ENABLE_EVENTS:
            handle = GetTraceLoggerHandle(buffer)
            self._set_enable_state(handle, GetTraceEnableFlags(handle), GetTraceEnableLevel(handle))
        elif request_code == WMI_DISABLE_EVENTS:
            self._set_enable_state(0, 0, 0)
        return 0

    # -- registration ---------------------------------------------------------------------
    def register(self) -> None:
        """RegisterTraceGuids for the control GUID (idempotent)."""
        if self._registration is not None:
            return
        from .api import RegisterTraceGuids
        self._registration = RegisterTraceGuids(self._control_callback, None, self.guid, [])
        atexit.register(self.unregister)

    def unregister(self) -> None:
        if self._registration is None:
            return
        from .api import UnregisterTraceGuids
        handle, self._registration = self._registration, None
        self._set_enable_state(0, 0, 0)
        UnregisterTraceGuids(handle)
        atexit.unregister(self.unregister)

    close = unregister

    def __enter__(self) -> "Provider":
        self.register()
        return self

    def __exit__(self, *exc: object) -> None:
        self.unregister()

    # -- call sites -----------------------------------------------------------------------
    def _file(self, path: str) -> FileMessages:
        messages = self._files.get(path)
        if messages is None:
            messages = compile_file(path, control_guid=self.guid, component=self.name, root=self.root)
            self._files[path] = messages
        return messages

    def _entry(self, fmt: str, method: str, depth: int) -> tuple[str, Any, CompiledSite]:
        """The call site of the frame ``depth`` levels up: (format, writer key, site)."""
        frame = _getframe(depth)
        site = self._by_code.get(id(frame.f_code), _NO_SITES).get(frame.f_lasti)
        if site is None:
            site = self._resolve(frame, method, fmt)
        return fmt, self._writer_key(site), site

    def _resolve(self, frame: Any, method: str, fmt: str) -> CompiledSite:
        """Find (and cache) the call site the frame is executing."""
        code, lasti = frame.f_code, frame.f_lasti
        with self._lock:
            site = self._by_code.get(id(code), _NO_SITES).get(lasti)
            if site is not None:
                return site
            path = code.co_filename
            try:
                messages = self._file(path)
            except ScanError as exc:
                raise RuntimeError(f"{self.name}: cannot find the trace call site: {exc}") from None
            position = _call_position(code, lasti, frame.f_lineno)
            site = _match(messages, position, method, fmt)
            if site is None:
                bad = messages.bad_sites.get(position) if len(position) == 4 else None
                if bad is not None:
                    raise bad
                raise RuntimeError(f"{path}:{frame.f_lineno}: {self.name}.{method}() call not found by the "
                                   f"scanner: the format must be a string literal and the flag must not be")
            site = _bind(site, code, lasti, fmt)
            self._register_program(site)
            self._by_code.setdefault(id(code), {})[lasti] = site
            # The format object alone identifies the site when no other call in its file uses the
            # same text and the compiler did not intern it (then no other module shares the object).
            if _format_identifies_site(messages, site):
                self._by_format[fmt] = (fmt, self._writer_key(site), site)
            return site

    def _register_program(self, site: CompiledSite) -> None:
        if site.cid is None and self._trace_site is not None:
            from ._hazmat import register_site
            site.cid = register_site(site.guid_le, site.number, WPP_TRACE_OPTIONS, *site.program())

    def _dropped(self, rc: int) -> None:
        self.events_dropped += 1
        self.last_error = rc

    def _not_written(self, rc: int, fmt: str, method: str, a0: Any, a1: Any, a2: Any, a3: Any,
                     more: tuple) -> None:
        """After ``_write`` from a level method refused (rc != 0): NEEDS_SITE -> find the site
        from the caller's frame and write by its key; NEEDS_CHECKER -> pack with the site's
        Python packer (which raises naming the call site if a value does not fit) and write
        that; otherwise count the drop."""
        if rc == NEEDS_SITE:  # the common slow case (a format shared or interned): inline
            frame = _getframe(2)  # here <- level method <- caller
            site = self._by_code.get(id(frame.f_code), _NO_SITES).get(frame.f_lasti)
            if site is None:
                site = self._resolve(frame, method, fmt)
            rc = self._write_key(self.logger_handle, site if self._trace_site is None else site.cid,
                                 a0, a1, a2, a3, more)
            if not rc:
                return
        else:
            entry = self._by_format.get(fmt)
            if entry is None or entry[0] is not fmt:
                entry = self._entry(fmt, method, 3)  # _entry <- here <- level method <- caller
            site = entry[2]
        if rc == NEEDS_CHECKER:
            rc = self._trace_packed(self.logger_handle, WPP_TRACE_OPTIONS, site.guid_le, site.number,
                                    site.pack(a0, a1, a2, a3, more))
            if not rc:
                return
        self._dropped(rc)

    def log(self, level: int, flag: int, fmt: str, *args: Any) -> None:
        """``log(TRACE_LEVEL_WARNING, IO, "fmt", ...)``: the level as a value."""
        if flag & self._masks[level & 0xFF]:
            padded = args + (MISSING,) * 4
            a0, a1, a2, a3, more = padded[0], padded[1], padded[2], padded[3], args[4:]
            rc = self._write(self.logger_handle, fmt, a0, a1, a2, a3, more)
            if rc:
                self._not_written(rc, fmt, "log", a0, a1, a2, a3, more)

    # -- TMF ------------------------------------------------------------------------------
    def add_sources(self, *paths: str) -> None:
        """Compile the call sites of these files now (for write_tmf before they run)."""
        for path in paths:
            self._file(os.path.abspath(path))

    def source_files(self) -> list[FileMessages]:
        return list(self._files.values())

    def write_tmf(self, directory: str, *, sources: Iterable[str] = (), when: Any = None,
                  control_files: bool = True) -> list[str]:
        """Write the TMF of every source file seen (and ``sources``), plus .tmc/.mof; as tmf gen."""
        from . import tmfgen
        self.add_sources(*sources)
        info = tmfgen.ProviderInfo(self.name, self.guid, tuple(f.name for f in self.flags), self.root)
        when = tmfgen.reproducible_time() if when is None else when
        files = sorted(self._files.values(), key=lambda m: m.relative_path)
        return [str(p) for p in tmfgen.write_files(directory, info, files, when, control_files=control_files)]


def _call_position(code: Any, lasti: int, lineno: int | None) -> tuple:
    positions = getattr(code, "co_positions", None)
    if positions is not None:  # 3.11+: the CALL instruction carries the ast.Call range
        for index, pos in enumerate(positions()):
            if index == lasti // 2:
                return pos
    return (lineno,)


def _match(messages: FileMessages, position: tuple, method: str, fmt: str) -> CompiledSite | None:
    candidates = [c for c in messages.sites if c.site.format == fmt and c.site.method == method]
    if len(position) == 4:
        for c in candidates:
            if c.site.position == position:
                return c
        return None
    on_line = [c for c in candidates if c.site.line <= position[0] <= c.site.end_line]
    return on_line[0] if on_line else None


def _bind(site: CompiledSite, code: Any, lasti: int, fmt: str) -> CompiledSite:
    if site.code is None:
        site.code, site.lasti, site.fmt = code, lasti, fmt
        return site
    # The same source site reached through another code object (e.g. re-exec'd module): a copy.
    import copy
    clone = copy.copy(site)
    clone.code, clone.lasti, clone.fmt = code, lasti, fmt
    return clone


_INTERNED_LOOKING = re.compile(r"[A-Za-z0-9_]*")


def _format_identifies_site(messages: FileMessages, site: CompiledSite) -> bool:
    text = site.site.format
    if _INTERNED_LOOKING.fullmatch(text):
        return False  # CPython interns such constants: other modules may hold the same object
    return messages.format_counts.get(text, 0) == 1  # bad sites count too: they share the object


def _level_method(name: str, level_name: str, level: int):
    """Generate one level method: the disabled path is a single attribute test; the enabled path
    one writer call (C: finds the site by the format object, packs, writes)."""
    source = f'''
def {name}(self, flag, fmt, a0=MISSING, a1=MISSING, a2=MISSING, a3=MISSING, *more):
    """Trace at {level_name} if ``flag`` is enabled: ``{name}(FLAG, "format %d", value, ...)``."""
    if flag & self._mask{level}:
        rc = self._write(self.logger_handle, fmt, a0, a1, a2, a3, more)
        if rc:
            self._not_written(rc, fmt, "{name}", a0, a1, a2, a3, more)
'''
    namespace = {"MISSING": MISSING}
    exec(compile(source, f"<wpptrace Provider.{name}>", "exec"), namespace)  # noqa: S102
    return namespace[name]


for _name, (_level_name, _level) in LEVEL_METHODS.items():
    setattr(Provider, _name, _level_method(_name, _level_name, _level))
del _name, _level_name, _level
