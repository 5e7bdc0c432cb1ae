"""``logging`` -> WPP: a Handler that writes each record as a binary WPP message, formatted later.

Add one handler and an unchanged application that uses ``logging.getLogger`` gets binary,
deferred-format tracing::

    logging.getLogger().addHandler(WppHandler("MyApp"))

Each ``logger.info("read %d bytes from %s", n, path)`` call site becomes a TMF message: its
template is the format (``%d`` travels as a 64-bit ItemLongLong, ``%s``/``%r`` as ItemString of
``str()``/``repr()``, ``%f`` as ItemDouble keeping its precision), its arguments are sent typed,
and nothing is formatted in the process. As tracewpp does for C, message GUIDs are per source
file and numbers per call site in source order (from the file's AST), so the TMF is the same on
every run: ``handler.write_tmf(dir)``. Logging levels map to TRACE_LEVEL_* (CRITICAL 1, ERROR 2,
WARNING 3, INFO 4, DEBUG and below 5).

Records that cannot travel typed (a template that is not a literal at its call site, ``%(name)s``
mappings, ``*`` widths, a value that does not fit its type such as an int beyond 64 bits) are
still written: formatted at once (``record.getMessage()``) into the provider's catch-all message
``%0%10!s!``. Exception tracebacks follow their record as such a message. A handler never raises
into the application (``handleError`` as every logging handler).
"""
from __future__ import annotations

import ast
import dataclasses
import functools
import logging
import os
import re
import sys
import traceback
import uuid
from typing import Any, Callable

from wpptrace.tmf import formatspec
from wpptrace.tmf.model import Argument, Message

from .tracing import WPP_TRACE_OPTIONS, Provider
from .tracing_messages import ArgCodec, codec_for
from .tracing_sites import FIRST_MESSAGE_NUMBER, ScopedVisitor, _is_str, message_guid, message_name, \
    read_source, relative_source_path

__all__ = ["WppHandler", "trace_level_for", "compile_template", "scan_logging_calls", "LoggingSite"]

_LOGGING_METHODS = {
    "critical": "TRACE_LEVEL_CRITICAL", "fatal": "TRACE_LEVEL_CRITICAL", "error": "TRACE_LEVEL_ERROR",
    "exception": "TRACE_LEVEL_ERROR", "warning": "TRACE_LEVEL_WARNING", "warn": "TRACE_LEVEL_WARNING",
    "info": "TRACE_LEVEL_INFORMATION", "debug": "TRACE_LEVEL_VERBOSE",
}
_INT64 = (-(1 << 63), (1 << 63) - 1)


def trace_level_for(levelno: int) -> int:
    """logging level -> TRACE_LEVEL_* (levels between the named ones go to the less severe)."""
    if levelno >= logging.CRITICAL:
        return 1
    if levelno >= logging.ERROR:
        return 2
    if levelno >= logging.WARNING:
        return 3
    if levelno >= logging.INFO:
        return 4
    return 5


# -- call sites of logging calls (tracewpp-style numbering) --------------------------------------

@dataclasses.dataclass(frozen=True)
class LoggingSite:
    number: int
    line: int
    method: str
    level_text: str
    template: str
    function: str
    arg_texts: tuple[str, ...]


class _LoggingVisitor(ScopedVisitor):
    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.found: list[tuple] = []

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            args = node.args
            if func.attr in _LOGGING_METHODS and args and _is_str(args[0]):
                self._add(node, func.attr, _LOGGING_METHODS[func.attr], args[0].value, args[1:])
            elif func.attr == "log" and len(args) >= 2 and _is_str(args[1]) and not _is_str(args[0]):
                level = "".join((ast.get_source_segment(self.source, args[0]) or "?").split())
                self._add(node, "log", level, args[1].value, args[2:])
        self.generic_visit(node)

    def _add(self, node: ast.Call, method: str, level_text: str, template: str, rest: list) -> None:
        texts = tuple(" ".join((ast.get_source_segment(self.source, a) or "?").split()) for a in rest)
        self.found.append((node.lineno, node.col_offset, method, level_text, template, self._function(), texts))


def scan_logging_calls(source: str, path: str) -> list[LoggingSite]:
    """The logging calls with a literal template, numbered from 10 in source order."""
    try:
        tree = ast.parse(source, filename=path)
    except SyntaxError:
        return []
    visitor = _LoggingVisitor(source)
    visitor.visit(tree)
    found = sorted(visitor.found, key=lambda f: (f[0], f[1]))
    return [LoggingSite(FIRST_MESSAGE_NUMBER + i, f[0], f[2], f[3], f[4], f[5], f[6])
            for i, f in enumerate(found) if FIRST_MESSAGE_NUMBER + i <= 0xFFFF]


# -- templates: Python %-format -> WPP message ---------------------------------------------------

# One Python %-conversion (logging uses printf-style % formatting); "%%" is a literal.
_PY_CONVERSION = re.compile(r"%(?:%|(?P<key>\([^)]*\))?(?P<flags>[-+ #0]*)(?P<width>\*|\d+)?"
                            r"(?:\.(?P<prec>\*|\d*))?[hlL]?(?P<conv>[diouxXeEfFgGcrsa]))")
_INT_CONVERSIONS = {"d": "lld", "i": "lld", "u": "lld", "x": "llx", "X": "llX", "o": "llo"}


def _int64(value: Any) -> int:
    # Python's %d accepts ints, bools, objects with __index__ and (truncating) floats.
    v = int(value) if isinstance(value, float) else value.__index__()
    if not _INT64[0] <= v <= _INT64[1]:
        raise ValueError(f"{v} does not fit 64 bits")
    return v


def _uint64(value: Any) -> int:
    v = int(value) if isinstance(value, float) else value.__index__()
    if not 0 <= v < 1 << 64:
        raise ValueError(f"{v} is negative or does not fit 64 bits (Python prints '-' here)")
    return v


@dataclasses.dataclass
class CompiledTemplate:
    tmf_format: str
    items: list[tuple[str, tuple[str, ...]]]  # (item, params) per argument
    encode: Callable[[tuple], bytes]


@functools.lru_cache(maxsize=4096)
def compile_template(template: str) -> CompiledTemplate:
    """Python logging template -> TMF format, items and an encoder (ValueError if it can't travel typed)."""
    source_parts: list[str] = []
    converters: list[Callable[[Any], Any]] = []
    double_specs: dict[int, formatspec.Spec] = {}
    pos = 0
    for m in _PY_CONVERSION.finditer(template):
        source_parts.append(template[pos:m.start()])
        pos = m.end()
        if m.group() == "%%":
            source_parts.append("%%")
            continue
        if m.group("key") is not None or m.group("width") == "*" or m.group("prec") == "*":
            raise ValueError("mapping keys and '*' widths cannot travel typed")
        conv = m.group("conv")
        head = m.group()[1:-1].rstrip("hlL")
        index = len(converters)
        if conv in _INT_CONVERSIONS:
            source_parts.append(f"%{head}{_INT_CONVERSIONS[conv]}")
            converters.append(_int64 if conv in "diu" else _uint64)
        elif conv in "eEfFgG":
            source_parts.append(f"%{head}{conv}")
            double_specs[index] = formatspec.parse_spec(head + conv)
            converters.append(float)
        elif conv == "c":
            source_parts.append(f"%{head}c")
            converters.append(lambda v: v)
        else:  # s, r, a: the text of str(), repr(), ascii()
            source_parts.append(f"%{head}s")
            converters.append({"s": str, "r": repr, "a": ascii}[conv])
    source_parts.append(template[pos:])
    wpp_source = "".join(source_parts)
    try:
        tmf_format, _ = formatspec.printf_to_tmf(wpp_source, std_prefix=True)
        pieces = formatspec.parse_tmf_format(tmf_format)
    except formatspec.FormatSpecError as exc:
        raise ValueError(str(exc)) from None
    # tracewpp prints doubles with !s!; keep the template's own precision for them.
    fixed, index = [], 0
    for piece in pieces:
        if isinstance(piece, formatspec.Insert):
            if index in double_specs:
                piece = formatspec.Insert(piece.index, double_specs[index])
            index += 1
        fixed.append(piece)
    tmf_format = formatspec.pieces_to_tmf(fixed)
    inserts = [p for p in formatspec.parse_printf_format(wpp_source) if isinstance(p, formatspec.Insert)]
    codecs: list[ArgCodec] = []
    items = []
    for piece in inserts:
        wtype = formatspec.wpp_type_for(piece.spec if piece.ext is None else piece.ext)
        codecs.append(codec_for(wtype, piece.spec.conversion if piece.spec else "s"))
        items.append((wtype.item, wtype.params))
    pairs = list(zip(converters, [c.check for c in codecs]))

    def encode(args: tuple) -> bytes:
        if len(args) != len(pairs):
            raise TypeError(f"{len(pairs)} argument(s) expected, {len(args)} given")
        return b"".join([check(convert(value)) for (convert, check), value in zip(pairs, args)])

    return CompiledTemplate(tmf_format, items, encode)


# -- the handler -------------------------------------------------------------------------------

@dataclasses.dataclass
class _SiteEntry:
    guid_le: bytes
    number: int
    encode: Callable[[tuple], bytes] | None  # None: send formatted (catch-all message)


_FALLBACK_NUMBER = FIRST_MESSAGE_NUMBER
_FALLBACK_FORMAT = "%0%10!s!"


class WppHandler(logging.Handler):
    """A logging handler that writes WPP messages through a :class:`Provider`.

    ``WppHandler("MyApp")`` makes (and registers) a provider named MyApp with one flag,
    ``LOGGING``, rooted (for message GUIDs) at the directory of the file that creates the handler,
    or at ``root`` relative to it; ``WppHandler(provider=p, flag=p.flags.X)`` uses yours. Records are written when
    a session has enabled the provider for the flag at the record's trace level; the handler's
    own logging level filters first, as usual."""

    def __init__(self, name: str | None = None, *, guid: "uuid.UUID | str | None" = None,
                 provider: Provider | None = None, flag: int | None = None, root: str | None = None,
                 level: int = logging.NOTSET) -> None:
        super().__init__(level)
        if provider is None:
            if not name:
                raise ValueError("give a provider name or a Provider")
            # As for Provider: source paths are relative to the directory of the file creating it.
            caller = sys._getframe(1).f_code.co_filename
            base = os.path.dirname(os.path.abspath(caller)) if os.path.exists(caller) else os.getcwd()
            provider = Provider(name, guid, flags=("LOGGING",), root=os.path.join(base, root or ""))
        self.provider = provider
        self.flag = int(flag) if flag is not None else (int(next(iter(provider.flags))) if len(provider.flags) else 1)
        self.flag_name = next((f.name for f in provider.flags if int(f) == self.flag), "LOGGING")
        self._levels = {lvl: trace_level_for(lvl) for lvl in range(0, 101)}
        self._sites: dict[tuple[str, int, str], _SiteEntry] = {}
        self._files: dict[str, tuple[str, uuid.UUID, list[LoggingSite]]] = {}
        self.fallback_guid = message_guid(provider.guid, "<logging>")
        self._fallback_le = self.fallback_guid.bytes_le
        self.sent_typed = 0
        self.sent_formatted = 0

    # Handler.handle takes a lock per record; trace_packed is thread-safe, so skip it.
    def handle(self, record: logging.LogRecord) -> bool:  # type: ignore[override]
        provider = self.provider
        level = self._levels.get(record.levelno) or trace_level_for(record.levelno)
        if not (self.flag & provider._masks[level]):
            return False
        if self.filters and not self.filter(record):
            return False
        self.emit(record)
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
                except (TypeError, ValueError, OverflowError, UnicodeError, AttributeError):
                    payload = None
            if payload is None:
                payload = self._formatted(record.getMessage())
                guid_le, number = self._fallback_le, _FALLBACK_NUMBER
                self.sent_formatted += 1
            self._send(handle, guid_le, number, payload)
            if record.exc_info or record.stack_info:
                text = ""
                if record.exc_info:
                    text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
                if record.stack_info:
                    text = (text + "\n" if text else "") + record.stack_info
                self._send(handle, self._fallback_le, _FALLBACK_NUMBER, self._formatted(text))
        except Exception:  # noqa: BLE001 - logging's contract: report, never raise
            self.handleError(record)

    def _send(self, handle: int, guid_le: bytes, number: int, payload: bytes) -> None:
        rc = self.provider._trace_packed(handle, WPP_TRACE_OPTIONS, guid_le, number, payload)
        if rc:
            self.provider.events_dropped += 1
            self.provider.last_error = rc

    @staticmethod
    def _formatted(text: str) -> bytes:
        return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace") + b"\x00"

    def _file(self, path: str) -> tuple[str, uuid.UUID, list[LoggingSite]]:
        known = self._files.get(path)
        if known is None:
            rel = relative_source_path(path, self.provider.root)
            try:
                sites = scan_logging_calls(read_source(path), path)
            except Exception:  # noqa: BLE001 - no source: everything goes formatted
                sites = []
            known = self._files[path] = (rel, message_guid(self.provider.guid, rel + "#logging"), sites)
        return known

    def _resolve(self, record: logging.LogRecord, key: tuple | None) -> _SiteEntry:
        entry = _SiteEntry(self._fallback_le, _FALLBACK_NUMBER, None)
        if key is not None:
            _rel, guid, sites = self._file(record.pathname)
            site = next((s for s in sites if s.line == record.lineno and s.template == record.msg), None)
            if site is not None:
                try:
                    entry = _SiteEntry(guid.bytes_le, site.number, compile_template(site.template).encode)
                except (ValueError, TypeError):
                    pass
            self._sites[key] = entry
        return entry

    # -- TMF ------------------------------------------------------------------------------
    def messages(self) -> list[Message]:
        """TMF messages: the catch-all message, then every logging call site of the files seen."""
        name = self.provider.name
        out = [Message(guid=self.fallback_guid, number=_FALLBACK_NUMBER, name="logging_formatted",
                       format=_FALLBACK_FORMAT, args=(Argument("record.getMessage()", "ItemString", (), 10),),
                       trailer={"LEVEL": "record.levelno", "FLAGS": self.flag_name, "FUNC": "WppHandler.emit"},
                       component=name, source_file="<logging>", origin="<logging>")]
        for path in sorted(self._files, key=lambda p: self._files[p][0]):
            rel, guid, sites = self._files[path]
            base = os.path.basename(path)
            for site in sites:
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
            self._file(os.path.abspath(path))

    def write_tmf(self, directory: str, *, sources: tuple[str, ...] = (), when: Any = None) -> list[str]:
        """Write one ``<guid>.tmf`` per message GUID (and the provider's .tmc/.mof)."""
        from wpptrace.tmf.writer import to_tmf_text
        from . import tmfgen
        self.add_sources(*sources)
        when = tmfgen.reproducible_time() if when is None else when
        by_guid: dict[uuid.UUID, list[Message]] = {}
        for message in self.messages():
            by_guid.setdefault(message.guid, []).append(message)
        os.makedirs(directory, exist_ok=True)
        written = []
        for guid, messages in by_guid.items():
            path = os.path.join(directory, f"{guid}.tmf")
            with open(path, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(to_tmf_text(messages, pdb_name=messages[0].source_file, tool=tmfgen.TOOL, when=when))
            written.append(path)
        info = tmfgen.ProviderInfo(self.provider.name, self.provider.guid,
                                   tuple(f.name for f in self.provider.flags), self.provider.root)
        written += [str(p) for p in tmfgen.write_files(directory, info, [], when)]
        return written

    def close(self) -> None:
        super().close()
