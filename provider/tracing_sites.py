"""Call-site identity for Python WPP providers: the AST scanner and the GUID/number scheme.

tracewpp scans C sources for trace macros and gives every source file one message GUID and every
call site a message number (from 10, in source order). This module does the same for Python
sources with :mod:`ast`, and both the running provider (:mod:`wpptrace.provider.tracing`) and
``wpptrace tmf gen`` (:mod:`wpptrace.provider.tmfgen`) use it, so they always agree:

* message GUID of a file = ``uuid5(MESSAGE_GUID_NAMESPACE, "<control guid>/<path relative to the
  provider root, '/'-separated>")``: the same on every run and every machine;
* message number = 10 + the index of the call among the file's trace calls sorted by source
  position (line, column) -- exactly the order a reader sees them;
* a trace call is ``<expr>.<level method>(FLAG, "format", args...)`` or
  ``<expr>.log(LEVEL, FLAG, "format", args...)`` whose format is a string literal and whose flag
  is not one (which keeps ``logger.info("text %s", x)`` out). The runtime finds its call site by
  the position CPython records for the CALL instruction (``co_positions``), which is the range of
  the ``ast.Call`` node.

The control GUID for a name follows ETW's name hashing (EventSource / TraceLogging / tracelog
``*Name``): SHA-1 over a fixed namespace and the upper-cased UTF-16BE name, version 5.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import functools
import hashlib
import itertools
import logging
import os
import re
import sys
import tokenize
import uuid
import warnings
from typing import Iterator

from wpptrace._core import lib as _lib

__all__ = [
    "LEVELS", "LEVEL_METHODS", "MESSAGE_GUID_NAMESPACE", "FIRST_MESSAGE_NUMBER",
    "CallSite", "ProviderDecl", "TypeDecl", "ScanResult", "ScanError", "ScopedVisitor",
    "etw_name_guid", "message_guid", "relative_source_path", "message_name",
    "scan_source", "scan_file", "read_source", "MAX_SOURCE_FILE", "recompiling", "LoggingSite", "LOGGING_METHODS", "scan_logging_calls",
    "trace_level_for",
]

#: TRACE_LEVEL_* values (evntrace.h).
LEVELS: dict[str, int] = {name: getattr(_lib, name) for name in dir(_lib) if name.startswith("TRACE_LEVEL_")}
LEVELS["TRACE_LEVEL_FATAL"] = LEVELS["TRACE_LEVEL_CRITICAL"]  # evntrace.h's older alias

#: Provider method -> (TRACE_LEVEL name written as LEVEL=, value).
LEVEL_METHODS: dict[str, tuple[str, int]] = {
    method: (name, LEVELS[name]) for method, name in (
        ("critical", "TRACE_LEVEL_CRITICAL"), ("fatal", "TRACE_LEVEL_FATAL"),
        ("error", "TRACE_LEVEL_ERROR"), ("warning", "TRACE_LEVEL_WARNING"),
        ("info", "TRACE_LEVEL_INFORMATION"), ("verbose", "TRACE_LEVEL_VERBOSE"),
        ("debug", "TRACE_LEVEL_VERBOSE"))
}
LOG_METHOD = "log"  # log(LEVEL, FLAG, "format", ...)

#: Namespace of the per-file message GUIDs (a fixed, random constant: never change it).
MESSAGE_GUID_NAMESPACE = uuid.UUID("6f1c3b0e-9a57-4c55-8d1e-2b7f0c4a91d3")
FIRST_MESSAGE_NUMBER = 10  # tracewpp's TRACERANGE default 10..65535
LAST_MESSAGE_NUMBER = 65535

_ETW_NAME_NAMESPACE = bytes.fromhex("482C2DB2C39047C887F81A15BFC130FB")


def etw_name_guid(name: str) -> uuid.UUID:
    """The provider GUID ETW tools derive from a provider name (EventSource.GetGuid rules).

    ``etw_name_guid("MyCompany.MyComponent") == UUID("ce5fa4ea-ab00-5402-8b76-9f76ac858fb5")``
    (the example in TraceLoggingProvider.h)."""
    digest = hashlib.sha1(_ETW_NAME_NAMESPACE + name.upper().encode("utf-16-be")).digest()
    raw = bytearray(digest[:16])
    raw[7] = (raw[7] & 0x0F) | 0x50
    return uuid.UUID(bytes_le=bytes(raw))


def relative_source_path(path: str, root: str) -> str:
    """``path`` relative to ``root`` with '/' separators (what the message GUID is made of)."""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(root))
    return rel.replace(os.sep, "/")


def message_guid(control_guid: uuid.UUID, relative_path: str) -> uuid.UUID:
    """The message GUID of one source file of a provider."""
    return uuid.uuid5(MESSAGE_GUID_NAMESPACE, f"{control_guid}/{relative_path}")


def message_name(source_file: str, line: int) -> str:
    """tracewpp's message name: ``<file base>_<extension><line>`` (``app.py``:42 -> ``app_py42``)."""
    base = os.path.basename(source_file)
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    return f"{stem}_{ext}{line}"


class ScanError(SyntaxError):
    """A source file the scanner cannot use (syntax error, unreadable), with file:line:column."""

    def __init__(self, message: str, path: str, line: int = 0, column: int = 0, text: str | None = None):
        super().__init__(message, (path, line, column, text))
        self.path, self.line, self.column = path, line, column

    def __str__(self) -> str:
        if not self.line:  # a whole-file problem (unreadable): no position to give
            return f"{self.path}: {self.msg}"
        return f"{self.path}:{self.line}:{self.column}: {self.msg}"


def nested_too_deeply(path: str) -> ScanError:
    """The failure of a source whose expressions or blocks are nested deeper than the scanner
    can walk within the recursion limit."""
    return ScanError(f"nested too deeply to scan (the recursion limit is {sys.getrecursionlimit()})", path)


@dataclasses.dataclass(frozen=True)
class CallSite:
    """One trace call found in a source file, numbered like tracewpp numbers call sites."""

    number: int
    line: int
    column: int          # 0-based, as ast and co_positions give it
    end_line: int
    end_column: int
    method: str          # "info", "log", ...
    level_text: str      # LEVEL= value: TRACE_LEVEL_* for the level methods, the expression for log()
    level: int | None    # the level when known statically
    flag_text: str       # FLAGS= value: the flag expression without spaces
    format: str          # the source (printf-style) format string
    arg_texts: tuple[str, ...]  # the argument expressions (whitespace collapsed)
    function: str        # FUNC= value: the enclosing function's qualified name, "<module>" at top level
    starred: bool = False  # the call passes *args: the count is only known at run time

    @property
    def position(self) -> tuple[int, int, int, int]:
        return (self.line, self.end_line, self.column, self.end_column)


@dataclasses.dataclass(frozen=True)
class ProviderDecl:
    """A ``Provider("Name", guid="...", root="...")`` (or ``WppHandler("Name", ...)``) call with
    literal arguments."""

    name: str
    guid: uuid.UUID | None
    root: str | None
    line: int
    flags: tuple[str, ...] | None = None  # flags=("IO", "NET") when literal
    handler: bool = False                 # a WppHandler making its own provider


@dataclasses.dataclass(frozen=True)
class TypeDecl:
    """A ``CustomType("NAME", "ItemX(...)", ..., format="...")`` call with literal arguments."""

    name: str
    item: str
    format: str | None
    line: int


@dataclasses.dataclass(frozen=True)
class ScanResult:
    path: str
    sites: tuple[CallSite, ...]
    providers: tuple[ProviderDecl, ...]
    types: tuple[TypeDecl, ...] = ()
    uses_handler: bool = False   # the file calls WppHandler(...)
    handler_flags: tuple[str, ...] = ()  # the flags WppHandler(..., flag=X.flags.NAME) use ("A|B": both)


#: a line of source with its end, split as the parser counts lines (at \r\n, \r and \n only,
#: not at the form feeds and other breaks str.splitlines knows)
_SOURCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class SourceLines:
    """A source split into lines once, for the text of its nodes: what ast.get_source_segment
    gives, which splits the whole source again at every call (a scan of a file with many calls
    would take time in the square of its size)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self._lines: list[str] | None = None

    def segment(self, node: ast.AST) -> str | None:
        """The source text of ``node`` (None: it has no position)."""
        first, last = getattr(node, "lineno", None), getattr(node, "end_lineno", None)
        start, end = getattr(node, "col_offset", None), getattr(node, "end_col_offset", None)
        if None in (first, last, start, end):
            return None
        if self._lines is None:
            self._lines = _SOURCE_LINE.findall(self.source)
        lines = self._lines
        if first == last:   # column offsets count UTF-8 bytes
            return lines[first - 1].encode()[start:end].decode()
        return "".join([lines[first - 1].encode()[start:].decode(), *lines[first:last - 1],
                        lines[last - 1].encode()[:end].decode()])


def _segment(source: SourceLines, node: ast.AST) -> str:
    text = source.segment(node)
    if text is None:  # no position information (should not happen for parsed source)
        text = ast.unparse(node)
    return " ".join(text.split())


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class ScopedVisitor(ast.NodeVisitor):
    """An AST visitor that knows the qualified name of the function it is in (FUNC= of a site);
    the trace-call scanner here and the logging-call scanner (logging_handler) build on it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.lines = SourceLines(source)
        self.scope: list[tuple[str, bool]] = []

    def _function(self) -> str:
        return self.scope[-1][0] if self.scope else "<module>"

    def _scoped(self, node: ast.AST, name: str, is_function: bool) -> None:
        # Python's __qualname__ rules: "outer.<locals>.inner", "Class.method".
        if self.scope:
            parent, parent_is_function = self.scope[-1]
            qualname = f"{parent}.<locals>.{name}" if parent_is_function else f"{parent}.{name}"
        else:
            qualname = name
        self.scope.append((qualname, is_function))
        self.generic_visit(node)
        self.scope.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._scoped(node, node.name, True)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scoped(node, node.name, False)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scoped(node, "<lambda>", True)


def _called_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _flag_names(node: ast.AST) -> list[str]:
    """The flag names of a ``flag=`` expression: ``p.flags.A``, ``A``, ``"A"``, or such names
    joined with ``|``; [] for anything else."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        left, right = _flag_names(node.left), _flag_names(node.right)
        return left + right if left and right else []
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    name = _called_name(node)
    return [name] if name is not None else []


class _Visitor(ScopedVisitor):
    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.raw: list[tuple] = []
        self.providers: list[ProviderDecl] = []
        self.types: list[TypeDecl] = []
        self.uses_handler = False
        self.handler_flags: list[str] = []

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            self._trace_call(node, func.attr)
        called = _called_name(func)
        if called == "Provider":
            self._provider_call(node)
        elif called == "WppHandler":
            self.uses_handler = True
            for kw in node.keywords:
                if kw.arg == "flag" and _flag_names(kw.value):
                    self.handler_flags.append("|".join(_flag_names(kw.value)))
            self._provider_call(node, handler=True)
        elif called == "CustomType":
            self._type_call(node)
        self.generic_visit(node)

    def _type_call(self, node: ast.Call) -> None:
        values = dict(zip(("name", "item", "encode", "format"), node.args))
        values.update({kw.arg: kw.value for kw in node.keywords if kw.arg})
        name, item, fmt = values.get("name"), values.get("item"), values.get("format")
        if name is None or item is None or not _is_str(name) or not _is_str(item):
            return
        if fmt is not None and not _is_str(fmt):
            return
        self.types.append(TypeDecl(name.value, item.value, fmt.value if fmt is not None else None, node.lineno))

    def _trace_call(self, node: ast.Call, method: str) -> None:
        args = node.args
        if method == LOG_METHOD:
            if len(args) < 3 or not _is_str(args[2]) or _is_str(args[1]) or _is_str(args[0]):
                return
            level_node, flag_node, fmt_node, rest = args[0], args[1], args[2], args[3:]
            level_text = "".join(_segment(self.lines, level_node).split())
            level = LEVELS.get(level_text.rpartition(".")[2])
            if level is None and isinstance(level_node, ast.Constant) and type(level_node.value) is int:
                level = level_node.value
        elif method in LEVEL_METHODS:
            if len(args) < 2 or not _is_str(args[1]) or _is_str(args[0]):
                return
            flag_node, fmt_node, rest = args[0], args[1], args[2:]
            level_text, level = LEVEL_METHODS[method]
        else:
            return
        if node.keywords:
            return  # trace calls take positional arguments only
        # The ',' between '(' and the function name of a qualified name has no spaces in a trailer.
        flag_text = "".join(_segment(self.lines, flag_node).split())
        self.raw.append((
            node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, method,
            level_text, level, flag_text, fmt_node.value,
            tuple(_segment(self.lines, a) for a in rest),
            self._function(), any(isinstance(a, ast.Starred) for a in rest)))

    def _provider_call(self, node: ast.Call, handler: bool = False) -> None:
        name = node.args[0].value if node.args and _is_str(node.args[0]) else None
        guid = root = flags = None
        if handler:
            flags = ("LOGGING",)
            if any(kw.arg == "provider" for kw in node.keywords):
                return  # WppHandler(provider=p): p is declared where it is made
        for kw in node.keywords:
            if kw.arg == "name" and _is_str(kw.value):
                name = kw.value.value
            elif kw.arg == "guid" and _is_str(kw.value):
                guid = kw.value.value
            elif kw.arg == "root" and _is_str(kw.value):
                root = kw.value.value
            elif kw.arg == "flags" and isinstance(kw.value, (ast.Tuple, ast.List)) and all(
                    _is_str(e) for e in kw.value.elts):
                flags = tuple(e.value for e in kw.value.elts)
        if name is None:
            return
        try:
            parsed = uuid.UUID(guid) if guid is not None else None
        except ValueError:
            parsed = None
        self.providers.append(ProviderDecl(name, parsed, root, node.lineno, flags, handler))


_recompiles = itertools.count(1)


@contextlib.contextmanager
def recompiling(path: str) -> Iterator[str]:
    """Around a parse or compile of an application's source text: yields the file name to
    parse or compile it under. The warnings Python gives about that code (an invalid escape
    sequence ...) are the application's, given when it was imported, not the scanner's to
    repeat; and the application's filters (``-W error``) must not make its file unreadable.

    The warning filters are process-wide, and other threads run meanwhile: the text is compiled
    under a name of its own, and one filter entry that ignores the warnings of that name only
    stands first while it compiles. The filter list is changed in place and the entry taken
    out again (from the list it went into and from the one in use, should another thread have
    swapped lists meanwhile): what other threads add, warn or restore meanwhile stays as they
    left it (``catch_warnings`` would swap in a copy and put the old list back, losing it)."""
    name = f"<wpptrace recompiling {next(_recompiles)}: {path}>"
    entry = ("ignore", None, Warning, re.compile(re.escape(name) + r"\Z"), 0)
    filters = warnings.filters
    filters.insert(0, entry)
    try:
        yield name
    finally:
        for current in (filters, warnings.filters):
            try:
                current.remove(entry)
            except ValueError:    # gone already (resetwarnings, or the same list twice)
                pass


def scan_source(source: str, path: str) -> ScanResult:
    """Find the trace calls (and Provider declarations) of one Python source text."""
    try:
        with recompiling(path) as name:
            tree = ast.parse(source, filename=name)
    except SyntaxError as exc:
        raise ScanError(f"cannot parse: {exc.msg}", path, exc.lineno or 0, exc.offset or 0, exc.text) from None
    visitor = _Visitor(source)
    visitor.visit(tree)
    raw = sorted(visitor.raw, key=lambda r: (r[0], r[1]))
    if len(raw) > LAST_MESSAGE_NUMBER - FIRST_MESSAGE_NUMBER + 1:
        r = raw[LAST_MESSAGE_NUMBER - FIRST_MESSAGE_NUMBER + 1]
        raise ScanError("more trace calls than message numbers (10..65535)", path, r[0], r[1] + 1)
    sites = tuple(CallSite(FIRST_MESSAGE_NUMBER + i, *r) for i, r in enumerate(raw))
    return ScanResult(path, sites, tuple(visitor.providers), tuple(visitor.types), visitor.uses_handler,
                      tuple(visitor.handler_flags))


# -- logging calls (for WppHandler) --------------------------------------------------------------

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


#: TRACE_LEVEL_* -> the name a logging call site's LEVEL= gives it (FATAL is CRITICAL's alias).
TRACE_LEVEL_NAMES = {value: name for name, value in LEVELS.items() if name != "TRACE_LEVEL_FATAL"}
#: the level constants of the logging module a ``logging.NAME`` level may name
_LOGGING_LEVELS = ("CRITICAL", "FATAL", "ERROR", "WARNING", "WARN", "INFO", "DEBUG", "NOTSET")

#: logging method -> the TRACE_LEVEL name its records get (logging.log: see _log_level_text).
LOGGING_METHODS = {
    "critical": "TRACE_LEVEL_CRITICAL", "fatal": "TRACE_LEVEL_CRITICAL", "error": "TRACE_LEVEL_ERROR",
    "exception": "TRACE_LEVEL_ERROR", "warning": "TRACE_LEVEL_WARNING", "warn": "TRACE_LEVEL_WARNING",
    "info": "TRACE_LEVEL_INFORMATION", "debug": "TRACE_LEVEL_VERBOSE",
}


@dataclasses.dataclass(frozen=True)
class LoggingSite:
    """A ``logger.info("template", args...)`` call, numbered like trace calls."""

    number: int
    line: int
    method: str
    level_text: str      # LEVEL= value: TRACE_LEVEL_*, "" for a log() level known only at run time
    template: str
    function: str
    arg_texts: tuple[str, ...]

    @property
    def trace_level(self) -> int | None:
        """The TRACE_LEVEL_* value of every record of this site; None if it varies."""
        return LEVELS.get(self.level_text) if self.level_text.startswith("TRACE_LEVEL_") else None


class _LoggingVisitor(ScopedVisitor):
    def __init__(self, source: str) -> None:
        super().__init__(source)
        self.found: list[tuple] = []

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute):
            args = node.args
            if func.attr in LOGGING_METHODS and args and _is_str(args[0]):
                self._add(node, func.attr, LOGGING_METHODS[func.attr], args[0].value, args[1:])
            elif func.attr == "log" and len(args) >= 2 and _is_str(args[1]) and not _is_str(args[0]):
                self._add(node, "log", _log_level_text(args[0]), args[1].value, args[2:])
        self.generic_visit(node)

    def _add(self, node: ast.Call, method: str, level_text: str, template: str, rest: list) -> None:
        texts = tuple(" ".join((self.lines.segment(a) or "?").split()) for a in rest)
        self.found.append((node.lineno, node.col_offset, method, level_text, template, self._function(), texts))


def _log_level_text(node: ast.expr) -> str:
    """LEVEL= of ``log.log(LEVEL, ...)``: the TRACE_LEVEL_* name of the trace level the handler
    gives its records (``trace_level_for``) when LEVEL is a literal int or ``logging.NAME``; ""
    for a level known only at run time, whose records go to the catch-all message of their level
    (one TMF level could not be right for all of them)."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return TRACE_LEVEL_NAMES[trace_level_for(node.value)]
    if (isinstance(node, ast.Attribute) and node.attr in _LOGGING_LEVELS
            and isinstance(node.value, ast.Name) and node.value.id == "logging"):
        return TRACE_LEVEL_NAMES[trace_level_for(getattr(logging, node.attr))]
    return ""


def scan_logging_calls(source: str, path: str) -> list[LoggingSite]:
    """The logging calls with a literal template, numbered from 10 in source order."""
    try:
        with recompiling(path) as name:
            tree = ast.parse(source, filename=name)
    except SyntaxError:
        return []
    visitor = _LoggingVisitor(source)
    visitor.visit(tree)
    found = sorted(visitor.found, key=lambda f: (f[0], f[1]))
    return [LoggingSite(FIRST_MESSAGE_NUMBER + i, f[0], f[2], f[3], f[4], f[5], f[6])
            for i, f in enumerate(found) if FIRST_MESSAGE_NUMBER + i <= LAST_MESSAGE_NUMBER]


#: a Python source larger than this is refused unread (the largest sources seen are a few
#: MiB of generated tables; the scanner holds the text and its tree, several times the size)
MAX_SOURCE_FILE = 16 * 1024 * 1024


def read_source(path: str) -> str:
    """Source text as Python reads it (PEP 263 encoding, universal newlines). A directory,
    device, pipe or socket, or a file over MAX_SOURCE_FILE bytes, is a ScanError before
    anything is read (a pipe's open is not waited on)."""
    import io

    from wpptrace.tmf.errors import TmfError, read_regular

    try:
        data = read_regular(path, "give a Python source file", MAX_SOURCE_FILE, "a Python source")
        buffer = io.BytesIO(data)
        encoding, _ = tokenize.detect_encoding(buffer.readline)
        buffer.seek(0)
        return io.TextIOWrapper(buffer, encoding).read()
    except TmfError as exc:
        raise ScanError(exc.message, path) from None
    except OSError as exc:
        raise ScanError(f"cannot read source: {_why(exc)}", path) from None
    except (SyntaxError, UnicodeDecodeError) as exc:
        raise ScanError(f"cannot read source: {exc}", path) from None


def _why(exc: OSError) -> str:
    """Why a source could not be read, as every command says it (with the Win32 name)."""
    from wpptrace._cliutil import reason
    from wpptrace.winerror import as_win32

    return reason(as_win32(exc))


@functools.lru_cache(maxsize=256)
def _scan_file_cached(path: str, mtime_ns: int, size: int) -> ScanResult:
    return scan_source(read_source(path), path)


def scan_file(path: str) -> ScanResult:
    """Scan a file (cached while its modification time and size are unchanged)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ScanError(f"cannot read source: {_why(exc)}", path) from None
    return _scan_file_cached(os.path.abspath(path), st.st_mtime_ns, st.st_size)
