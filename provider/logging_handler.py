"""``logging`` -> WPP: a Handler that writes each record as a binary WPP message, formatted later.

Add one handler and an unchanged application that uses ``logging.getLogger`` gets binary,
deferred-format tracing::

    logging.getLogger().addHandler(WppHandler("MyApp"))

Each ``logger.info("read %d bytes from %s", n, path)`` call site becomes a TMF message: its
template is the format, its arguments are sent typed by the same rules as a
:class:`~wpptrace.provider.Provider`'s trace formats (:mod:`wpptrace.provider.tracing_types`:
``%d`` a 64-bit integer, ``%s``/``%r`` UTF-16 text of ``str()``/``repr()``, ``%f`` a double that
WPP renders with ``%g``), and nothing is formatted in the process. As tracewpp does for C,
message GUIDs are per source file and numbers per call site in source order, found like the
provider's call sites (site registry or unchanged source), so the TMF is the same on every run:
``handler.write_tmf(dir)``. Logging levels map to TRACE_LEVEL_* (CRITICAL 1, ERROR 2, WARNING 3,
INFO 4, DEBUG and below 5), and a message's LEVEL= names the level its records are enabled at:
``log.log(25, ...)`` is TRACE_LEVEL_INFORMATION, ``log.log(logging.WARNING, ...)``
TRACE_LEVEL_WARNING, as ``log.warning`` is.

Records that cannot travel typed (a template that is not a literal at its call site, ``%(name)s``
mappings, ``*`` widths, a ``log.log`` level that is neither a literal int nor ``logging.NAME``
and so known only at run time, a value that does not fit its type such as an int beyond 64 bits) are
still written: formatted at once (``record.getMessage()``) into the provider's catch-all message
for the record's level (``%0%10!s!``, LEVEL= that level). A record whose template and arguments
do not fit (``log.info("%d %d", 1)``) goes there as its template and arguments, saying why, and
is reported once per call site with a :class:`TraceWarning` (logging's own handlers print a
traceback at every such call). Exception tracebacks follow their record as such a message, at
the record's level. A handler never raises into the application
(``handleError`` as every logging handler); a record it has no memory or stack left for (one
logged near the recursion limit) is lost and counted in the provider's ``events_dropped``; the
records of a file nested too deeply to scan are written formatted, as above, and so are those
logged from a thread with too little stack to read their file (a later record from a thread with
room reads it). What
the application's signal handler raises while a record is written (a value converting, the
first record of a call site reading its source) is the application's and passes on, as from a
trace call (:mod:`wpptrace.provider.tracing_interrupts`): a deadline must not be lost.
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
import traceback
import uuid
from typing import Any, Callable

from wpptrace.tmf import formatspec
from wpptrace.tmf.model import Argument, Message

from .tracing import _NO_ROOM, WPP_TRACE_OPTIONS, Provider, _text_of, _warn_once
from .tracing_interrupts import no_room, passes_on, raised_by_signal_handler
from .tracing_sources import StackTooSmall
from .tracing_sites import TRACE_LEVEL_NAMES, LoggingSite, message_guid, message_name, relative_source_path, \
    scan_logging_calls, trace_level_for
from .tracing_types import python_format

__all__ = ["WppHandler", "trace_level_for", "compile_template", "scan_logging_calls", "LoggingSite"]


# -- templates: Python %-format -> WPP message ---------------------------------------------------

@dataclasses.dataclass
class CompiledTemplate:
    tmf_format: str
    items: list[tuple[str, tuple[str, ...]]]  # (item, params) per argument
    encode: Callable[[tuple], bytes]


@functools.lru_cache(maxsize=4096)
def compile_template(template: str) -> CompiledTemplate:
    """Python logging template -> TMF format, items and an encoder (ValueError if it can't travel typed)."""
    try:
        compiled = python_format(template)
    except (formatspec.FormatSpecError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    encoders = [c.encode for c in compiled.codecs]

    def encode(args: tuple) -> bytes:
        if len(args) != len(encoders):
            raise TypeError(f"{len(encoders)} argument(s) expected, {len(args)} given")
        return b"".join([enc(value) for enc, value in zip(encoders, args)])

    return CompiledTemplate(compiled.tmf_format, [(t.item, t.params) for t in compiled.types], encode)


# -- the handler -------------------------------------------------------------------------------

@dataclasses.dataclass
class _SiteEntry:
    guid_le: bytes
    number: int
    encode: Callable[[tuple], bytes] | None  # None: send formatted (catch-all message)


_FALLBACK_FORMAT = "%0%10!s!"
#: ``_sites_of``: the calling thread has no stack to read the file now (nothing concluded)
_NOT_NOW = object()


def fallback_number(trace_level: int) -> int:
    """The catch-all message of a trace level (1..5): numbers 11..15."""
    return 10 + min(max(trace_level, 1), 5)


class WppHandler(logging.Handler):
    """A logging handler that writes WPP messages through a :class:`Provider`.

    ``WppHandler("MyApp")`` makes (and registers) a provider named MyApp with one flag,
    ``LOGGING``, rooted (for message GUIDs) at the directory of the file that creates the
    handler, or at ``root`` relative to it; ``WppHandler(provider=p, flag=p.flags.X)`` (or
    ``flag="X"``, the flag's name) uses yours; an int ``flag`` must be made of the provider's
    declared flag bits (any bit of 1..0xffffffff if it declares none), and a bool is refused
    (TypeError). Records are written when a session has enabled the provider for the flag at the
    record's trace level; the handler's own logging level filters first, as usual, then its
    filters (a record one of them returns in place of the original, Python 3.12+, is written)."""

    def __init__(self, name: str | None = None, *, guid: "uuid.UUID | str | None" = None,
                 provider: Provider | None = None, flag: int | str | None = None, root: str | None = None,
                 level: int = logging.NOTSET) -> None:
        super().__init__(level)
        if provider is None:
            if not name:
                raise ValueError("give a provider name or a Provider")
            # As for Provider: source paths are relative to the file creating the handler.
            provider = Provider(name, guid, flags=("LOGGING",), root=root, _creator=sys._getframe(1))
        self.provider = provider
        self.flag = _flag_of(provider, flag)
        self.flag_name = _flag_text(provider, self.flag)
        self._levels = {lvl: trace_level_for(lvl) for lvl in range(0, 101)}
        # (template, line, file) of the literal templates seen -> how they travel; the catch-all
        # entries are not kept per message, so messages made at run time (f-strings) add nothing
        self._sites: dict[tuple[str, int, str], _SiteEntry] = {}
        self._lines: dict[tuple[str, int], dict[str, LoggingSite]] = {}  # (file, line) -> its sites
        self._paths: dict[str, None] = {}   # files whose logging calls were looked up, in order
        self.fallback_guid = message_guid(provider.guid, "<logging>")
        self._fallback_le = self.fallback_guid.bytes_le
        self.sent_typed = 0
        self.sent_formatted = 0
        self._unformattable_reported: dict[tuple[str, int], object] = {}   # (file, line) of such records

    # Handler.handle takes a lock per record; trace_packed is thread-safe, so skip it.
    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        provider = self.provider
        level = self._levels.get(record.levelno) or trace_level_for(record.levelno)
        if not (self.flag & provider._masks[level]):
            return False
        if self.filters:
            # Python 3.12+: a filter may return a new record (redacted arguments ...) that
            # stands for the original from then on; logging's handlers write that one.
            passed = self.filter(record)
            if not passed:
                return False
            if isinstance(passed, logging.LogRecord):
                record = passed
        try:
            self.emit(record)
        except (MemoryError, RecursionError):  # no room to enter emit (see there)
            self._lost()
        return True

    def emit(self, record: logging.LogRecord) -> None:
        try:
            provider = self.provider
            handle = provider.logger_handle
            if not handle:
                return
            msg = record.msg
            key = (msg, record.lineno, record.pathname) if isinstance(msg, str) else None
            entry = self._sites.get(key) if key is not None else None
            if entry is None:
                entry = self._resolve(record, key)
            payload = None
            if entry.encode is not None:
                args = record.args if isinstance(record.args, tuple) else ((record.args,) if record.args else ())
                try:
                    payload = entry.encode(args)
                    guid_le, number = entry.guid_le, entry.number
                    self.sent_typed += 1
                except Exception as exc:  # noqa: BLE001 - a value that does not travel typed: send the text
                    if passes_on(exc):
                        raise
                    payload = None
            level = self._levels.get(record.levelno) or trace_level_for(record.levelno)
            if payload is None:
                payload = self._formatted(self._message(record))
                guid_le, number = self._fallback_le, fallback_number(level)
                self.sent_formatted += 1
            self._send(handle, guid_le, number, payload)
            if record.exc_info or record.stack_info:
                text = ""
                if record.exc_info:
                    text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                if record.stack_info:
                    text = (text + "\n" if text else "") + record.stack_info
                self._send(handle, self._fallback_le, fallback_number(level), self._formatted(text))
        except Exception as exc:  # noqa: BLE001 - logging's contract: report, never raise
            if no_room(exc):
                # No memory or stack left (a record logged near the recursion limit): lost and
                # counted as the provider's calls are; handleError would need the same room.
                # A RecursionError caught shallow is the record's own (its template, its
                # exception): reported below as any record that cannot be written.
                self._lost()
                return
            if raised_by_signal_handler(exc):
                raise     # ... but what the application's signal handler raised is its own
            self.handleError(record)

    def _message(self, record: logging.LogRecord) -> str:
        """``record.getMessage()``; for a record whose template and arguments do not fit (``log.info("%d
        %d", 1)``), the template and the arguments as they are, said so, and reported once per
        call site: the record still reaches the trace, and a mistake of the application's does
        not print a traceback at every call."""
        try:
            return record.getMessage()
        except Exception as exc:  # noqa: BLE001 - the application's template or values
            if passes_on(exc):
                raise
            why = f"{type(exc).__name__}: {_text_of(exc)}"
            self._report_unformattable(record, why)
            return f"{_text_of(record.msg)} (not formatted: {why}; arguments: {_text_of(record.args, repr)})"

    def _report_unformattable(self, record: logging.LogRecord, why: str) -> None:
        _warn_once(self._unformattable_reported, (record.pathname, record.lineno),
                   lambda: f"{self.provider.name}: a logged record cannot be formatted ({why}): it is "
                           f"written as its template and arguments (later ones at this call site are "
                           f"not reported)",
                   record.pathname, record.lineno)

    def _lost(self) -> None:
        self.provider.events_dropped += 1
        self.provider.last_error = _NO_ROOM

    def _send(self, handle: int, guid_le: bytes, number: int, payload: bytes) -> None:
        rc = self.provider._trace_packed(handle, WPP_TRACE_OPTIONS, guid_le, number, payload)
        if rc:
            self.provider.events_dropped += 1
            self.provider.last_error = rc

    @staticmethod
    def _formatted(text: str) -> bytes:
        """Formatted text as the catch-all message's ItemWString (a NUL shows as \\0)."""
        return text.replace("\x00", "\\0").encode("utf-16-le", "surrogatepass") + b"\x00\x00"

    def _guid(self, path: str) -> uuid.UUID:
        rel = relative_source_path(path, self.provider.root)
        return message_guid(self.provider.guid, rel + "#logging")

    def _sites_of(self, path: str, code: Any, module_globals: Any) -> tuple[LoggingSite, ...] | object | None:
        path = os.path.abspath(path)
        self._paths.setdefault(path)
        try:
            return self.provider._sources.logging_sites(path, code, module_globals)
        except StackTooSmall:    # this thread cannot read the file; one with room will
            return _NOT_NOW
        except Exception as exc:  # noqa: BLE001 - no usable source: everything goes formatted
            if passes_on(exc):
                raise             # no room, or the application's: nothing is concluded (or kept)
            return None

    def _resolve(self, record: logging.LogRecord, key: tuple | None) -> _SiteEntry:
        entry = _SiteEntry(self._fallback_le, fallback_number(trace_level_for(record.levelno)), None)
        if key is not None:
            line = (record.pathname, record.lineno)
            templates = self._lines.get(line)
            if templates is None:
                frame = _caller_frame(record)
                sites = self._sites_of(record.pathname, frame.f_code if frame else None,
                                       frame.f_globals if frame else None)
                if sites is _NOT_NOW:   # sent formatted, the line read by a later record
                    return entry
                templates = self._lines[line] = {s.template: s for s in sites or () if s.line == record.lineno}
            site = templates.get(record.msg)
            # a log() whose level is computed at run time has no message of its own: its TMF
            # level could not be the one each record is written (and enabled) at
            if site is not None and site.trace_level != trace_level_for(record.levelno):
                site = None
            if site is not None:
                try:
                    entry = _SiteEntry(self._guid(record.pathname).bytes_le, site.number,
                                       compile_template(site.template).encode)
                except (ValueError, TypeError):
                    pass
                self._sites[key] = entry
        return entry

    # -- TMF ------------------------------------------------------------------------------
    def fallback_messages(self) -> list[Message]:
        """The catch-all messages, one per trace level (formatted records and tracebacks)."""
        return [Message(guid=self.fallback_guid, number=fallback_number(level), name="logging_formatted",
                        format=_FALLBACK_FORMAT, args=(Argument("record.getMessage()", "ItemWString", (), 10),),
                        trailer={"LEVEL": TRACE_LEVEL_NAMES[level], "FLAGS": self.flag_name, "FUNC": "WppHandler.emit"},
                        component=self.provider.name, source_file="<logging>", origin="<logging>")
                for level in range(1, 6)]

    def messages(self) -> list[Message]:
        """TMF messages: the catch-all messages, then every logging call site of the files seen."""
        name = self.provider.name
        out = self.fallback_messages()
        files = []
        for path in self._paths:
            sites = self._sites_of(path, None, None)
            if sites is not None:
                files.append((relative_source_path(path, self.provider.root), path, sites))
        for rel, path, sites in sorted(files):
            guid = self._guid(path)
            base = os.path.basename(path)
            for site in sites:
                if site.trace_level is None:
                    continue  # a level known only at run time: such records go formatted
                try:
                    compiled = compile_template(site.template)
                except (ValueError, TypeError):
                    continue  # such records go formatted
                args = tuple(Argument(site.arg_texts[i] if i < len(site.arg_texts) else f"arg{i + 1}",
                                      item, params, 10 + i) for i, (item, params) in enumerate(compiled.items))
                out.append(Message(guid=guid, number=site.number, name=message_name(base, site.line),
                                   format=compiled.tmf_format, args=args,
                                   trailer={"LEVEL": site.level_text, "FLAGS": self.flag_name, "FUNC": site.function},
                                   component=name, source_file=base, origin=f"{rel}:{site.line}"))
        return out

    def add_sources(self, *paths: str) -> None:
        for path in paths:
            path = os.path.abspath(path)
            self.provider._sources.add_source(path)
            self._paths.setdefault(path)

    def write_tmf(self, directory: str, *, sources: tuple[str, ...] = (), when: Any = None) -> list[str]:
        """Write one ``<guid>.tmf`` per message GUID (and the provider's .tmc/.mof)."""
        from wpptrace import _outputs as outputs
        from wpptrace.tmf.writer import to_tmf_text
        from . import tmfgen
        self.add_sources(*sources)
        when = tmfgen.reproducible_time() if when is None else when
        by_guid: dict[uuid.UUID, list[Message]] = {}
        for message in self.messages():
            by_guid.setdefault(message.guid, []).append(message)
        planned = {os.path.join(directory, f"{guid}.tmf"):
                   to_tmf_text(messages, pdb_name=messages[0].source_file, tool=tmfgen.TOOL, when=when)
                   for guid, messages in by_guid.items()}
        outputs.check_outputs(planned, sources)     # never over a source (OutputRefused)
        os.makedirs(directory, exist_ok=True)
        mode = outputs.mode_from(sources)
        for path, text in planned.items():
            outputs.write_text(path, text, mode)
        written = list(planned)
        info = tmfgen.ProviderInfo(self.provider.name, self.provider.guid,
                                   tuple(f.name for f in self.provider.flags), self.provider.root)
        written += [str(p) for p in tmfgen.write_files(directory, info, [], when)]
        return written

    def close(self) -> None:
        super().close()


def _flag_text(provider: Provider, flag: int) -> str:
    """The FLAGS= of the handler's messages (what ``%!FLAGS!`` shows): the names of the flag's
    bits in bit order, joined with '|' as a provider's own call with ``A | B`` writes them
    (records go when a session enables any of them); the flag's value in hex if the provider
    declares no flags (no name to show; as ``trace.info(0x4, ...)`` writes its flag)."""
    return "|".join(f.name for f in provider.flags if int(f) & flag) or f"0x{flag:x}"


def _flag_of(provider: Provider, flag: int | str | None) -> int:
    """The flag bit(s) a handler writes with: given (the provider's flag(s), or its name), else the
    provider's first flag; a clear error naming ``flag`` otherwise (at construction).

    An int must be made of the provider's declared bits, when it declares any: records under
    another bit could be enabled by no session that names the provider's flags."""
    if flag is None:
        return int(next(iter(provider.flags))) if len(provider.flags) else 1
    if isinstance(flag, str):
        try:
            return int(provider.flag(flag))
        except KeyError:
            names = ", ".join(f.name for f in provider.flags) or "none"
            raise ValueError(f"flag {flag!r}: {provider.name} has no flag of that name (its flags: "
                             f"{names})") from None
    if not isinstance(flag, int) or isinstance(flag, bool):   # a bool is an int, never a flag
        raise TypeError(f"flag must be a flag of the provider (an int) or its name, not "
                        f"{type(flag).__name__}")
    if not 0 < flag <= 0xFFFFFFFF:
        raise ValueError(f"flag {flag!r}: flags are bits of a 32-bit mask, it must be 1..0xffffffff")
    declared = 0
    for f in provider.flags:
        declared |= int(f)
    if declared and flag & ~declared:
        names = ", ".join(f"{f.name}=0x{int(f):x}" for f in provider.flags)
        raise ValueError(f"flag 0x{flag:x}: {provider.name} declares no flag 0x{flag & ~declared:x} "
                         f"(its flags: {names})")
    return int(flag)


def _caller_frame(record: logging.LogRecord) -> Any:
    """The frame of the logging call (to check its code against the source), if still running."""
    frame = sys._getframe(1)
    while frame is not None:
        code = frame.f_code
        if code.co_filename == record.pathname and frame.f_lineno == record.lineno:
            return frame
        frame = frame.f_back
    return None
