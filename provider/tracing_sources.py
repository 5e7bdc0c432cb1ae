"""Where the call sites of running code come from: the site registry ``wpptrace tmf gen`` writes
into a package, or the source file when it still matches the running code.

A call site's identity (message GUID and number) and its TMF entry need the text of its source
file: every trace call of the file in source order, the argument and flag expressions. At run time
that text may be missing (a .pyc-only install, a frozen application) or may no longer be the code
that runs (the file was edited after import). So, per file:

1. the **registry** (``_wpptrace_sites.py`` in the provider's root directory, written by ``tmf
   gen`` with the same scanner) is used when it lists the file and the source is missing or is
   the very text the registry was made from (same SHA-256);
2. otherwise the **source** (read through the module's loader, so zipapps work, or from the
   file) is used when it still compiles to the code that is running (the calling function's
   bytecode, constants and positions are compared with a fresh compile of the text);
3. otherwise a source that changed after import falls back to the registry if it lists the
   file; else the site cannot be resolved (the caller drops and reports the call).

One file keeps one choice for the whole run, so numbers never mix two versions of a file.
The registry is plain literals: it is read with :func:`ast.literal_eval` when its text is
available, and run as a module only in a .pyc-only install. Either is read by the first call
that needs it, so nothing here imports: the registry module is found through the import system's
finders and run into a module object of its own, outside the import locks (a child forked while
another thread held such a lock would wait for it forever), and the modules the scans use are
imported with this one.
"""
from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.util
import io
import os
import re
import sys
import threading
import tokenize
from typing import Any, Iterable

from .tracing_interrupts import call_depth, passes_on
from .tracing_sites import (FIRST_MESSAGE_NUMBER, CallSite, LoggingSite, ScanError, ScanResult, nested_too_deeply,
                            read_source, recompiling, relative_source_path, scan_logging_calls, scan_source)

__all__ = ["REGISTRY_MODULE", "REGISTRY_FILE", "RegistryEntry", "registry_text", "parse_registry",
           "source_digest", "SiteSources", "StackTooSmall"]

REGISTRY_MODULE = "_wpptrace_sites"
REGISTRY_FILE = REGISTRY_MODULE + ".py"
REGISTRY_VERSION = 2   # 2: a log() site's level_text is its TRACE_LEVEL_* name (or "")

_HEADER = '''\
# The trace and logging call sites of this package, for wpptrace (message identities and TMF
# entries where the sources are not available at run time, or changed after import).
# Written by `wpptrace tmf gen`; regenerate it with the TMF files, do not edit.
'''


def source_digest(text: str) -> str:
    """SHA-256 of a source text as Python reads it (decoded, universal newlines)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclasses.dataclass(frozen=True)
class RegistryEntry:
    """One source file in the registry."""

    path: str                      # relative to the provider root, '/'-separated
    digest: str
    sites: tuple[CallSite, ...]
    logging: tuple[LoggingSite, ...]


def _site_fields(site: CallSite) -> tuple:
    return (site.line, site.column, site.end_line, site.end_column, site.method, site.level_text,
            site.level, site.flag_text, site.format, site.arg_texts, site.function, site.starred)


def _logging_fields(site: LoggingSite) -> tuple:
    return (site.line, site.method, site.level_text, site.template, site.function, site.arg_texts)


def registry_text(entries: Iterable[tuple[str, str, ScanResult, list[LoggingSite]]]) -> str:
    """The registry module for (relative path, digest, trace scan, logging sites) of each file."""
    lines = [_HEADER, f"VERSION = {REGISTRY_VERSION}", "FILES = {"]
    for rel, digest, scan, logging_sites in sorted(entries, key=lambda e: e[0]):
        lines.append(f"    {rel!r}: {{")
        lines.append(f"        'sha256': {digest!r},")
        lines.append("        'trace': [")
        lines += [f"            {_site_fields(s)!r}," for s in scan.sites]
        lines.append("        ],")
        lines.append("        'logging': [")
        lines += [f"            {_logging_fields(s)!r}," for s in logging_sites]
        lines.append("        ],")
        lines.append("    },")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _entries(files: Any) -> dict[str, RegistryEntry]:
    if not isinstance(files, dict):
        raise ValueError("FILES is not a dict")
    out = {}
    for rel, data in files.items():
        sites = tuple(CallSite(FIRST_MESSAGE_NUMBER + i, *fields) for i, fields in enumerate(data["trace"]))
        logging_sites = tuple(LoggingSite(FIRST_MESSAGE_NUMBER + i, *fields)
                              for i, fields in enumerate(data["logging"]))
        out[rel] = RegistryEntry(rel, data["sha256"], sites, logging_sites)
    return out


def parse_registry(text: str, origin: str) -> dict[str, RegistryEntry]:
    """Read a registry text without running it (literals only); raises ValueError if malformed."""
    try:
        tree = ast.parse(text, filename=origin)
        values = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                values[node.targets[0].id] = ast.literal_eval(node.value)
        if values.get("VERSION") != REGISTRY_VERSION:
            raise ValueError(f"version {values.get('VERSION')!r}, expected {REGISTRY_VERSION}")
        return _entries(values["FILES"])
    except (SyntaxError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{origin}: not a wpptrace site registry: {exc}") from None


# -- comparing running code with a fresh compile of its source ----------------------------------

def _code_key(code: Any) -> tuple:
    return (getattr(code, "co_qualname", code.co_name), code.co_firstlineno)


def _const_equal(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if hasattr(a, "co_code"):
        return _same_code(a, b)
    if isinstance(a, (tuple, frozenset)):
        if len(a) != len(b):
            return False
        if isinstance(a, frozenset):
            return a == b
        return all(_const_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, (float, complex)):
        return repr(a) == repr(b)
    return a == b


def _same_code(a: Any, b: Any) -> bool:
    if (a.co_code != b.co_code or a.co_names != b.co_names or a.co_firstlineno != b.co_firstlineno
            or len(a.co_consts) != len(b.co_consts)):
        return False
    if hasattr(a, "co_positions"):
        if list(a.co_positions()) != list(b.co_positions()):
            return False
    elif list(a.co_lines()) != list(b.co_lines()):
        return False
    return all(_const_equal(x, y) for x, y in zip(a.co_consts, b.co_consts))


def _compile(text: str, name: str, asserts_rewritten: bool) -> Any:
    """The module's code as the import compiled it: pytest compiles test modules after
    rewriting their assert statements, so their running code is compared with the same.
    ``name``: the file name to compile under (the file's name is no part of the comparison)."""
    if not asserts_rewritten:
        return compile(text, name, "exec", dont_inherit=True)
    # (pytest rewrote the module, so its rewriter is imported: looked up, never imported here)
    rewriter = sys.modules.get("_pytest.assertion.rewrite")
    if rewriter is None:
        return compile(text, name, "exec", dont_inherit=True)
    tree = ast.parse(text, name)
    rewriter.rewrite_asserts(tree, text.encode("utf-8"), name)
    return compile(tree, name, "exec", dont_inherit=True)


def _code_tree(text: str, path: str, asserts_rewritten: bool = False) -> dict[tuple, list]:
    tree: dict[tuple, list] = {}
    try:
        with recompiling(path) as name:
            top = _compile(text, name, asserts_rewritten)
    except (SyntaxError, ValueError, ImportError):
        return tree
    stack = [top]
    while stack:
        code = stack.pop()
        tree.setdefault(_code_key(code), []).append(code)
        stack += [c for c in code.co_consts if hasattr(c, "co_code")]
    return tree


# -- per-file state ------------------------------------------------------------------------------

@dataclasses.dataclass
class _File:
    path: str
    rel: str
    text: str | None
    digest: str | None
    entry: RegistryEntry | None
    # What calls found, each published once (``setdefault``: of threads that found one at once,
    # the first to publish is kept, and none waits for another): "choice" ("registry" or
    # "source"), "tree" (its code objects, see _tree_of), "scan" (a ScanResult) and "logging"
    # (its LoggingSites), or for these two the ScanError of a source that cannot be scanned
    # (kept: the text is fixed).
    results: dict[str, Any] = dataclasses.field(default_factory=dict)
    scan_room: int | None = None           # the shallowest call depth whose scan ran out of room
    logging_room: int | None = None        # the same for its logging calls
    tree_room: int | None = None           # the same for compiling it (to check running code)
    stack_need: int | None = None          # C stack its parse and compile may take (``_stack_need``)
    verified: dict[int, bool] = dataclasses.field(default_factory=dict)
    asserts_rewritten: bool = False        # a test module pytest imported (asserts rewritten)


def _read_text(path: str, module_globals: dict | None) -> str | None:
    """The module's current source: through its loader (zipimport, custom importers), else the file."""
    if module_globals:
        loader = module_globals.get("__loader__")
        name = module_globals.get("__name__")
        get_source = getattr(loader, "get_source", None)
        if get_source is not None and isinstance(name, str):
            try:
                get_filename = getattr(loader, "get_filename", None)
                same = get_filename is None or os.path.abspath(get_filename(name)) == path
            except Exception as exc:  # noqa: BLE001 - loaders of any kind: treat as "no"
                if passes_on(exc):
                    raise             # no room, or the application's: nothing is concluded
                same = False
            if same:
                try:
                    text = get_source(name)
                except Exception as exc:  # noqa: BLE001 - no source through the loader
                    if passes_on(exc):
                        raise
                    text = None
                if isinstance(text, str):
                    return text
    if os.path.isfile(path):
        try:
            return read_source(path)
        except ScanError:
            return None
    return None


#: A thread with this much C stack left parses and compiles any source: CPython's parser gives
#: up at 6,000 nested rules, and the most any source took on CPython 3.11 was 758 KiB (nested
#: lambdas, then MemoryError), under 1 MiB for every construct tried (brackets, operator, keyword
#: and lambda chains); twice that for other versions and the frames of the call.
_STACK_FOR_ANY_SOURCE = 2 << 20
#: What ``_stack_need`` counts, from the same measurements with about 1.5x to spare: the scan's
#: own frames, each open bracket (about 1.7 KiB measured), each token of a chain that nests one
#: level a token (``not``, unary minus, lambda: up to 210 bytes), each indented block.
_STACK_BASE, _STACK_PER_BRACKET, _STACK_PER_TOKEN, _STACK_PER_BLOCK = 64 << 10, 2560, 320, 1024
#: separators that end a chain (inside a lambda's parameters a comma does not end it)
_CHAIN_ENDS = frozenset((",", ";"))
#: words that nest what follows them one level (in an f-string's expressions)
_NESTING_WORDS = r"\b(?:not|lambda|await|yield|if|else|and|or|in|is)\b"


def _stack_room() -> int | None:
    """Bytes of C stack the calling thread has left, or None where it cannot be told."""
    from .fastpath import module
    return module.stack_room() if module is not None else None


#: before 3.12 an f-string is one token, whose expressions the parser reads recursively
_FSTRING_IS_ONE_TOKEN = sys.version_info < (3, 12)


def _fstring_need(token: str) -> int:
    """What the expressions of an f-string token may nest (before 3.12, when the tokenizer does
    not split them): each bracket in it a level, each operator character or nesting keyword a
    link of a chain; 0 for a string that is no f-string."""
    prefix = token[:token.find(token[-1])].lower()
    if "f" not in prefix:
        return 0
    brackets = sum(map(token.count, "([{"))
    links = sum(map(token.count, "-+~*/%@&|^<>=!.:")) + len(re.findall(_NESTING_WORDS, token))
    return brackets * _STACK_PER_BRACKET + links * _STACK_PER_TOKEN


def _stack_need(text: str) -> int:
    """An upper bound of the C stack that parsing and compiling ``text`` takes (CPython recurses
    on the C stack once a level of nesting): at each token, what the open brackets hold (each
    bracket, and the chain of tokens before it at its level, which it nests inside) plus the
    blocks around it. A text the tokenizer refuses may nest as deeply as any:
    ``_STACK_FOR_ANY_SOURCE``."""
    chains, lambdas = [0], [0]      # per open bracket: the chain so far, lambdas in parameters
    blocks = worst = 0
    quiet = (tokenize.NL, tokenize.COMMENT, tokenize.ENDMARKER)
    try:
        for kind, string, _start, _end, _line in tokenize.generate_tokens(io.StringIO(text).readline):
            extra = 0
            if kind == tokenize.INDENT:
                blocks += 1
                continue
            if kind == tokenize.DEDENT:
                blocks -= 1
                continue
            if kind == tokenize.NEWLINE:
                chains, lambdas = [0], [0]
                continue
            if kind in quiet:
                continue
            if kind == tokenize.OP and string in "([{":
                chains[-1] += 1
                chains.append(0)
                lambdas.append(0)
            elif kind == tokenize.OP and string in ")]}":
                if len(chains) > 1:
                    chains.pop()
                    lambdas.pop()
            elif kind == tokenize.OP and string in _CHAIN_ENDS and not lambdas[-1]:
                chains[-1] = 0
            else:
                if kind == tokenize.NAME and string == "lambda":
                    lambdas[-1] += 1
                elif kind == tokenize.OP and string == ":" and lambdas[-1]:
                    lambdas[-1] -= 1
                elif kind == tokenize.STRING and _FSTRING_IS_ONE_TOKEN:
                    extra = _fstring_need(string)
                chains[-1] += 1
            need = (_STACK_BASE + blocks * _STACK_PER_BLOCK + len(chains) * _STACK_PER_BRACKET
                    + sum(chains) * _STACK_PER_TOKEN + extra)
            if need > worst:
                worst = need
                if worst >= _STACK_FOR_ANY_SOURCE:
                    break
    except (tokenize.TokenError, SyntaxError):
        return _STACK_FOR_ANY_SOURCE
    return min(worst, _STACK_FOR_ANY_SOURCE)


class StackTooSmall(RuntimeError):
    """The calling thread has too little C stack left to read a source (see ``_check_stack``):
    this call is dropped, counted and reported; nothing is concluded for the file, so a call
    from a thread with more room reads it."""


def _check_stack(f: _File, what: str) -> None:
    """Raise StackTooSmall when the calling thread has too little C stack left to parse or
    compile ``f`` (a thread the application made with a small ``threading.stack_size``):
    CPython would crash in its parser, taking the application with it. A thread with room to
    spare pays one call."""
    room = _stack_room()
    if room is None or room >= _STACK_FOR_ANY_SOURCE:
        return
    if f.stack_need is None:
        f.stack_need = _stack_need(f.text or "")
    if room < f.stack_need:
        raise StackTooSmall(f"{f.path}: the calling thread has {room >> 10} KiB of stack left, and "
                            f"{what} this source may take {f.stack_need >> 10} KiB (a thread with "
                            f"a larger threading.stack_size, or a site registry, avoids it)")


def _kept(exc: ScanError) -> ScanError:
    """A copy of a scan failure to keep for its file: its message and position only, none of the
    traceback, context or frames of the call that found it (they would hold the application's
    stack, its objects and the scanner's tree for the rest of the run)."""
    return ScanError(exc.msg, exc.path, exc.line, exc.column, exc.text)


def _scanned(scan: Any, f: _File, room: str) -> Any:
    """``scan(f.text, f.path)``, with a RecursionError decided by the room the call had.

    Run out of room by a call that used no more than a quarter of the recursion limit, the
    source is nested too deeply for the scanner: a ScanError, to keep for the file. Run out
    of room by a deeper call, the call came too deep for this source: the RecursionError goes
    on (the call is lost and counted, nothing is concluded), and the call's depth is kept in
    ``f.<room>``: a call as deep or deeper is lost the same way without scanning again, and
    only a shallower one scans. The scan runs on the calling thread: a thread of its own would
    wait with the provider's locks held on what runs in that thread (gc callbacks, audit and
    trace hooks, logging), and would get the application's thread stack size."""
    failed_at = getattr(f, room)
    if failed_at is not None and call_depth() >= failed_at:
        raise RecursionError(f"{f.path}: a call this deep has no room to scan its source")
    _check_stack(f, "scanning")
    try:
        return scan(f.text, f.path)
    except RecursionError:
        depth = call_depth()
        if 4 * depth > sys.getrecursionlimit():
            setattr(f, room, depth if failed_at is None else min(failed_at, depth))
            raise
    # (raised outside the handler, so that no RecursionError rides along as its context)
    raise nested_too_deeply(f.path)


def _tree_of(f: _File) -> dict[tuple, list]:
    """The code objects of ``f``'s text, compiled on the calling thread. A call too deep to
    compile it is lost (the RecursionError goes on) and its depth kept in ``f.tree_room``, as
    for a scan: a call as deep or deeper is lost without compiling again."""
    if f.tree_room is not None and call_depth() >= f.tree_room:
        raise RecursionError(f"{f.path}: a call this deep has no room to compile its source")
    _check_stack(f, "compiling")
    try:
        return _code_tree(f.text or "", f.path, f.asserts_rewritten)
    except RecursionError:
        depth = call_depth()
        f.tree_room = depth if f.tree_room is None else min(f.tree_room, depth)
        raise


def _module_run_apart(name: str) -> Any:
    """The module ``name`` run into a module object of its own, as an import would find it
    (the finders of ``sys.meta_path``, in its package's ``__path__``), or None if no finder
    has it; neither ``sys.modules`` nor any import lock is touched. (A trace call that
    imported it would take the module's import lock: a child forked while another thread
    held that lock would wait for it forever at its first trace call.) Its package, the
    provider's, is imported already; if it is not, there is no registry to read."""
    package, _dot, _last = name.rpartition(".")
    path = None
    if package:
        path = getattr(sys.modules.get(package), "__path__", None)
        if path is None:
            return None
    for finder in list(sys.meta_path):
        find_spec = getattr(finder, "find_spec", None)
        spec = find_spec(name, path, None) if find_spec is not None else None
        if spec is not None:
            break
    else:
        return None
    if spec.loader is None:     # a namespace package of that name: no registry
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SiteSources:
    """The call sites of the files a provider's calls come from (see the module docstring)."""

    def __init__(self, root: str, registry_dir: str | None = None, registry_module: str | None = None,
                 creator_loader: Any = None) -> None:
        self.root = root
        self._registry_dir = registry_dir if registry_dir is not None else root
        self._registry_module = registry_module
        self._creator_loader = creator_loader
        # Files, and the registry's (files, why it cannot be used), each read once: no lock is
        # taken, so a call never waits for another thread's read of any file, however slow its
        # file system. Two threads that read the same at once both get served; the first
        # published (``setdefault``) is the one kept.
        self._files: dict[str, _File] = {}
        self._registry: dict[str, tuple[dict[str, RegistryEntry], str | None]] = {}
        self._reading_registry: list[int] = []   # the threads reading it now (see after_fork)

    def after_fork(self) -> None:
        """In a forked child: what other threads were reading or scanning at the fork was not
        published, so the child reads it again itself. A registry another thread was reading at
        the fork counts as empty for the child's run (``registry_error`` says why): what that
        thread held while reading (a loader's own lock, say) stays held in the child, so the
        child does not read it again."""
        me = threading.get_ident()
        if any(reader != me for reader in self._reading_registry):
            self._registry.setdefault("read", ({}, "another thread was reading the site registry when "
                                                   "the process forked (the forked process goes without it)"))
        self._reading_registry = [reader for reader in self._reading_registry if reader == me]

    # -- registry ---------------------------------------------------------------------------
    def registry(self) -> dict[str, RegistryEntry]:
        """The registry's files, read once: one that cannot be read counts as empty (and
        ``registry_error`` says why) for the whole run."""
        return self._registry_read()[0]

    @property
    def registry_error(self) -> str | None:
        """Why the registry read counts as empty (None: it did not fail, or was not read yet)."""
        read = self._registry.get("read")
        return read[1] if read is not None else None

    def _registry_read(self) -> tuple[dict[str, RegistryEntry], str | None]:
        read = self._registry.get("read")
        if read is None:
            me = threading.get_ident()
            self._reading_registry.append(me)
            try:
                read = self._load_registry()
            finally:
                self._reading_registry.remove(me)
            read = self._registry.setdefault("read", read)   # (its error with it)
        return read

    def _load_registry(self) -> tuple[dict[str, RegistryEntry], str | None]:
        """(the registry's files, None), or ({}, why) for one that cannot be used."""
        path = os.path.join(self._registry_dir, REGISTRY_FILE)
        text = None
        get_data = getattr(self._creator_loader, "get_data", None)
        if get_data is not None:
            try:
                text = get_data(path).decode("utf-8")
            except Exception as exc:  # noqa: BLE001 - not in the archive / not readable
                if passes_on(exc):
                    raise             # no room, or the application's: read again next time
                text = None
        if text is None and os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                text = None
        try:
            if text is not None:
                return parse_registry(text, path), None
            if self._registry_module:
                return self._imported_registry(self._registry_module), None
        except Exception as exc:  # noqa: BLE001 - a registry that cannot be used counts as empty
            if passes_on(exc):
                raise                 # not the registry's failure: nothing is concluded
            return {}, str(exc)
        return {}, None

    @staticmethod
    def _imported_registry(name: str) -> dict[str, RegistryEntry]:
        """The registry module's files (a .pyc-only install: no text to read); {} if there is
        none. Raises ValueError naming the module for one that cannot be used."""
        module = sys.modules.get(name)
        if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
            try:
                module = _module_run_apart(name)
            except ImportError:
                return {}
            except Exception as exc:  # noqa: BLE001 - its code failed: not a registry to use
                if passes_on(exc):
                    raise
                raise ValueError(f"{name}: importing it failed: {type(exc).__name__}: {exc}") from None
            if module is None:
                return {}
        try:
            version = getattr(module, "VERSION", None)
            if version != REGISTRY_VERSION:
                raise ValueError(f"version {version!r}, expected {REGISTRY_VERSION}")
            return _entries(module.FILES)
        except Exception as exc:  # noqa: BLE001 - no FILES, entries of the wrong shape ...
            if passes_on(exc):
                raise
            why = str(exc) if type(exc) is ValueError else f"{type(exc).__name__}: {exc}"
            raise ValueError(f"{name}: not a wpptrace site registry: {why}") from None

    # -- files ------------------------------------------------------------------------------
    def _file(self, path: str, module_globals: dict | None) -> _File:
        found = self._files.get(path)
        if found is None:
            text = _read_text(path, module_globals)
            rel = relative_source_path(path, self.root)
            found = _File(path, rel, text, source_digest(text) if text is not None else None,
                          self.registry().get(rel),
                          asserts_rewritten=bool(module_globals) and "@py_builtins" in module_globals)
            found = self._files.setdefault(path, found)   # (one step: the first one read is kept)
        return found

    def _matches(self, f: _File, code: Any) -> bool:
        known = f.verified.get(id(code))
        if known is None:
            tree = f.results.get("tree")
            if tree is None:
                tree = f.results.setdefault("tree", _tree_of(f))
            known = any(_same_code(code, c) for c in tree.get(_code_key(code), ()))
            f.verified[id(code)] = known
        return known

    def _choose(self, f: _File, code: Any) -> tuple[str | None, str]:
        choice = f.results.get("choice")
        if code is None and choice is not None:
            return choice, ""
        if f.entry is not None and (f.text is None or f.digest == f.entry.digest):
            f.results["choice"] = "registry"     # (the only choice this file can have)
            return "registry", ""
        if f.text is None:
            if self.registry_error:
                return None, (f"its source is not available and the site registry cannot be "
                              f"read: {self.registry_error}")
            return None, ("its source is not available and no site registry lists it "
                          "(write one with: wpptrace tmf gen)")
        wanted = "source" if code is None or self._matches(f, code) else (
            "registry" if f.entry is not None else None)
        if wanted is None:
            return None, ("the file changed after it was imported and no site registry lists it "
                          "(restart the program, or write one with: wpptrace tmf gen)")
        if f.results.setdefault("choice", wanted) != wanted:
            return None, "the file changed after it was imported (its call sites were read before)"
        return wanted, ""

    def trace_sites(self, path: str, code: Any, module_globals: dict | None) -> tuple[ScanResult | None, str]:
        """The trace calls of the file ``path`` that ``code`` (running) comes from, or (None, why).
        Raises ScanError for a source that does not parse."""
        return self._sites_of("scan", path, code, module_globals, scan_source,
                              lambda f: ScanResult(f.path, f.entry.sites, ()))

    def logging_sites(self, path: str, code: Any, module_globals: dict | None) -> tuple[LoggingSite, ...] | None:
        """The logging calls of ``path`` (the same choice as for trace calls), or None.
        Raises ScanError for a source too deeply nested to scan (kept: not scanned again)."""
        return self._sites_of("logging", path, code, module_globals,
                              lambda text, path: tuple(scan_logging_calls(text, path)),
                              lambda f: f.entry.logging)[0]

    def _sites_of(self, kind: str, path: str, code: Any, module_globals: dict | None,
                  scan: Any, listed: Any) -> tuple[Any, str]:
        """(``f.results[kind]``, "") for the file ``path``: ``listed(f)`` by the registry or
        ``scan(text, path)`` of its source, as chosen for ``code``; (None, why) if neither can
        be. A scan failure is kept for the file (its text is fixed: it is not scanned again)."""
        f = self._file(os.path.abspath(path), module_globals)
        choice, why = self._choose(f, code)
        if choice is None:
            return None, why
        sites = f.results.get(kind)
        if sites is None:
            if choice == "registry":
                sites = listed(f)
            else:
                try:
                    sites = _scanned(scan, f, kind + "_room")
                except ScanError as exc:
                    f.results.setdefault(kind, _kept(exc))
                    raise
            sites = f.results.setdefault(kind, sites)   # (one scan per file: its compiled messages)
        if type(sites) is ScanError:
            raise _kept(sites)
        return sites, ""

    def add_source(self, path: str) -> None:
        """Read a file now (``write_tmf(sources=...)``: files that did not run yet)."""
        f = self._file(os.path.abspath(path), None)
        if f.text is None and f.entry is None:
            raise ScanError("cannot read source: no such file", path)

    def files(self) -> list[str]:
        """Absolute paths of the files seen, in the order first seen."""
        return list(self._files)
