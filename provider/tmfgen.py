"""``wpptrace tmf gen``: TMF files for Python providers, from their sources (as tracewpp + tracepdb).

Scans Python sources (files, directories, or an installed package with ``--module``) with the
same AST scanner the running provider uses (:mod:`wpptrace.provider.tracing_sites`), so the files
it writes are byte for byte the ones ``Provider.write_tmf()`` writes at run time:

* ``<message-guid>.tmf`` per source file (tracepdb layout: ``// PDB:`` lines, GUID line, ``#typev``
  blocks in message-number order);
* the TMF of the ``logging`` call sites when the sources use ``WppHandler`` (or ``--logging``);
* ``<control-guid>.tmc`` (control GUID, name, flag names: what TraceView reads) and
  ``<component>.mof`` (tracepdb's MOF class for the control GUID, flags and levels);
* the site registry ``_wpptrace_sites.py`` in the provider's root directory (unless
  ``--no-registry``): the call sites it scanned, which the running provider uses where the
  sources are not available (.pyc-only installs, zipapps) or changed after import
  (:mod:`wpptrace.provider.tracing_sources`). Ship it with the package.

The provider's control GUID, name, flags and root come from a ``Provider("Name", guid=...,
flags=(...), root=...)`` (or ``WppHandler("Name", ...)``) call with literal arguments found in
the sources, or from the options; ``CustomType("NAME", "ItemX", ...)`` calls with literal
arguments declare the custom types. The ``Last Updated`` time is ``--timestamp``, else
``$SOURCE_DATE_EPOCH``, else 1970-01-01: the same sources always give the same bytes.
"""
from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import os
import pathlib
import sys
import uuid
from typing import Iterable, Sequence

from wpptrace import _outputs as outputs
from wpptrace._cliutil import (add_output_dir_option, add_timestamp_option, add_verbose_option,
                                complain, iso_time, source_date_epoch)
from wpptrace.tmf.writer import to_tmf_text

from .tracing_messages import FileMessages, compile_scan
from .tracing_sites import ScanError, ScanResult, etw_name_guid, nested_too_deeply, read_source, relative_source_path, \
    scan_file, scan_logging_calls
from .tracing_sources import REGISTRY_FILE, registry_text, source_digest
from .tracing_types import CustomType, TypeTable

__all__ = ["ProviderInfo", "file_tmf_text", "tmc_text", "mof_text", "write_files", "find_provider",
           "reproducible_time", "add_arguments", "run"]

TOOL = "wpptrace"


@dataclasses.dataclass(frozen=True)
class ProviderInfo:
    """What the files need to know about the provider."""

    name: str
    guid: uuid.UUID
    flags: tuple[str, ...]
    root: str


def reproducible_time(text: str | None = None) -> _dt.datetime:
    """``text`` (ISO 8601), else $SOURCE_DATE_EPOCH, else the Unix epoch (UTC)."""
    if text:
        return iso_time(text)
    return source_date_epoch() or _dt.datetime.fromtimestamp(0, _dt.timezone.utc)


def file_tmf_text(messages: FileMessages, when: _dt.datetime) -> str:
    """Contents of ``<guid>.tmf`` for one source file."""
    if not messages.sites:
        return ""
    return to_tmf_text(messages.messages, pdb_name=messages.relative_path, tool=TOOL, when=when)


def tmc_text(info: ProviderInfo, when: _dt.datetime) -> str:
    """``<control-guid>.tmc``: comment lines, ``<guid> <name>``, then the flag names (bit 0 first)."""
    stamp = when.astimezone(_dt.timezone.utc).strftime("%Y-%m-%d:%H:%M:%S:") + f"{when.microsecond // 1000:03d}"
    lines = [f"// PDB:  {info.name}", f"// PDB:  Last Updated :{stamp} (UTC) [{TOOL}]",
             f"{info.guid} {info.name}", *info.flags]
    return "\n".join(lines) + "\n"


def mof_text(info: ProviderInfo, when: _dt.datetime) -> str:
    """tracepdb's ``<module>.mof`` for the control GUID (the shared writer in tmf.pdb.tracepdb)."""
    from wpptrace.tmf import pdb
    from wpptrace.tmf.pdb import tracepdb

    annotation = pdb.Annotation(module_index=0, module_name=info.name, stream_index=0, stream_offset=0,
                                file_offset=None, segment=0, code_offset=0,
                                strings=("TMC:", str(info.guid), info.name, *info.flags),
                                procedure="<module>")
    control = pdb.ControlGuidRecord(guid=info.guid, guid_text=str(info.guid), name=info.name,
                                    flags=info.flags, public=False, annotation=annotation)
    trace_info = pdb.PdbTraceInfo(path=info.name, control_guids=[control])
    return tracepdb.mof_text(trace_info, when) or ""


def write_files(out_dir: "str | os.PathLike[str]", info: ProviderInfo, files: Iterable[FileMessages],
                when: _dt.datetime, *, control_files: bool = True) -> list[pathlib.Path]:
    """Write the TMF of every file with trace calls (and the .tmc/.mof); return the paths written.

    Raises ``OutputRefused`` before writing anything if a file to write is one of the sources;
    each file is written whole or not at all, with the sources' permissions at most."""
    out = pathlib.Path(out_dir)
    files = list(files)
    planned: list[tuple[pathlib.Path, str]] = []
    for messages in files:
        text = file_tmf_text(messages, when)
        if text:
            planned.append((out / f"{messages.guid}.tmf", text))
    if control_files:
        planned.append((out / f"{info.guid}.tmc", tmc_text(info, when)))
        planned.append((out / f"{info.name}.mof", mof_text(info, when)))
    sources = [messages.path for messages in files]
    outputs.check_outputs([path for path, _ in planned], sources)
    out.mkdir(parents=True, exist_ok=True)
    mode = outputs.mode_from(sources)
    for path, text in planned:
        outputs.write_text(path, text, mode)
    return [path for path, _ in planned]


def find_provider(scans: "dict[str, ScanResult] | Sequence[str]") -> tuple[str, "object"] | None:
    """The single literal ``Provider(...)`` / ``WppHandler(...)`` declaration among the sources
    (path, decl), if any."""
    if not isinstance(scans, dict):
        scans = {path: scan_file(path) for path in scans}
    found = [(path, decl) for path, scan in scans.items() for decl in scan.providers]
    distinct = {(d.name, d.guid) for _, d in found}
    if len(distinct) > 1:
        where = ", ".join(f"{p}:{d.line}" for p, d in found)
        raise ValueError(f"several providers are declared ({where}): choose one with --name/--guid/--root")
    return found[0] if found else None


def _expand(sources: Sequence[str]) -> list[str]:
    files: list[str] = []
    for src in sources:
        if os.path.isdir(src):
            for dirpath, dirnames, filenames in os.walk(src):
                dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
                files += [os.path.join(dirpath, f) for f in sorted(filenames)
                          if f.endswith(".py") and f != REGISTRY_FILE]
        else:
            files.append(src)
    return files


def module_sources(name: str) -> list[str]:
    """The .py files of an importable module or package (found without running it)."""
    import importlib.util
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as exc:
        raise ValueError(f"--module {name}: {exc}") from None
    if spec is None:
        raise ValueError(f"--module {name}: no such module on sys.path")
    if spec.submodule_search_locations:
        return _expand(sorted(spec.submodule_search_locations))
    if spec.origin and spec.origin.endswith(".py"):
        return [spec.origin]
    raise ValueError(f"--module {name}: no Python source ({spec.origin or 'no file'})")


def custom_types(scans: dict[str, ScanResult]) -> TypeTable:
    """The ``CustomType(...)`` declarations of the sources (names and items; no encoders here)."""
    found: dict[str, CustomType] = {}
    for path, scan in scans.items():
        for decl in scan.types:
            try:
                found[decl.name] = CustomType(decl.name, decl.item, format=decl.format)
            except ValueError as exc:
                raise ValueError(f"{path}:{decl.line}: {exc}") from None
    return TypeTable(found.values())


def _write_logging(args: argparse.Namespace, info: ProviderInfo, sources: list[str],
                   when: _dt.datetime, flag_name: str | None) -> list[pathlib.Path]:
    """The logging call sites' TMF, through the handler's own writer (same bytes as at run time)."""
    from .logging_handler import WppHandler
    from .tracing import Provider

    provider = Provider(info.name, info.guid, flags=info.flags, root=info.root, register=False)
    # ("A|B": a handler enabled by either flag; bits joined as the handler joins them, so a
    # name given twice is that one flag)
    flag = None
    if flag_name:
        flag = 0
        for name in flag_name.split("|"):
            flag |= int(provider.flag(name))
    handler = WppHandler(provider=provider, flag=flag)
    paths = handler.write_tmf(args.output, sources=tuple(sources), when=when)
    return [pathlib.Path(p) for p in paths if p.endswith(".tmf")]


def write_registry(root: str, scans: dict[str, ScanResult]) -> pathlib.Path:
    """``<root>/_wpptrace_sites.py``: the trace and logging call sites of every scanned file."""
    entries = []
    for path, scan in scans.items():
        text = read_source(path)
        entries.append((relative_source_path(path, root), source_digest(text), scan,
                        scan_logging_calls(text, path)))
    target = pathlib.Path(root) / REGISTRY_FILE
    text = registry_text(entries)
    if not target.exists() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8", newline="\n")
    return target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", metavar="SRC",
                        help="Python source files or directories (scanned for trace calls)")
    parser.add_argument("--module", "-m", action="append", default=[], metavar="PKG",
                        help="also scan an importable package or module by name (installed or on "
                             "sys.path), without running it; repeatable")
    add_output_dir_option(parser, "directory for <guid>.tmf, <control-guid>.tmc and <name>.mof (default: .)")
    parser.add_argument("--name", help="provider (component) name; default: from Provider(...) in the sources")
    parser.add_argument("--guid", help="control GUID; default: from Provider(...), else the ETW hash of --name")
    parser.add_argument("--flags", help="comma-separated flag names in bit order (for the .tmc/.mof)")
    parser.add_argument("--root", help="directory message GUIDs are relative to; default: the directory "
                                       "of the file declaring the Provider (as at run time)")
    add_timestamp_option(parser, "1970-01-01")
    logging_group = parser.add_mutually_exclusive_group()
    logging_group.add_argument("--logging", dest="logging", action="store_const", const=True, default=None,
                               help="write the TMF of the sources' logging calls (default: when the sources "
                                    "use WppHandler)")
    logging_group.add_argument("--no-logging", dest="logging", action="store_const", const=False,
                               help="never write the logging calls' TMF")
    parser.add_argument("--logging-flag", metavar="NAME",
                        help="the provider flag the WppHandler uses (A|B: flags A and B; default: the "
                             "flag= the sources give WppHandler, else the first flag)")
    parser.add_argument("--no-registry", dest="registry", action="store_false",
                        help=f"do not write the site registry ({REGISTRY_FILE}) into the provider's root")
    parser.add_argument("--no-control-files", dest="control_files", action="store_false",
                        help="write only the .tmf files")
    add_verbose_option(parser)


def run(args: argparse.Namespace) -> int:
    try:
        sources = _expand(args.sources)
        for name in args.module:
            sources += module_sources(name)
    except ValueError as exc:
        complain("tmf gen", exc)
        return 2
    if not sources:
        complain("tmf gen", "no sources: give Python files, directories or --module PKG")
        return 2
    scans: dict[str, ScanResult] = {}
    failed = 0
    for path in sources:
        try:
            try:
                scans[path] = scan_file(path)
            except RecursionError:
                raise nested_too_deeply(path) from None
        except ScanError as exc:
            complain("tmf gen", exc)
            failed += 1
    if failed:
        complain("tmf gen", f"{failed} error(s); nothing written")
        return 1
    declared = None
    if not (args.name and args.root):  # otherwise nothing is taken from a declaration
        try:
            declared = find_provider(scans)
        except ValueError as exc:
            complain("tmf gen", exc)
            return 1
    decl_path, decl = declared if declared else (None, None)
    name = args.name or (decl.name if decl else None)
    if not name:
        print("wpptrace tmf gen: no Provider(\"Name\", ...) with literal arguments in the sources; "
              "give --name (and --guid)", file=sys.stderr)
        return 2
    guid = uuid.UUID(args.guid) if args.guid else (decl.guid if decl and decl.guid else etw_name_guid(name))
    flags = tuple(f for f in args.flags.split(",") if f) if args.flags else (decl.flags or () if decl else ())
    if args.root:
        root = os.path.abspath(args.root)
    elif decl_path is not None:
        base = os.path.dirname(os.path.abspath(decl_path))
        root = os.path.abspath(os.path.join(base, decl.root)) if decl.root else base
    else:
        root = os.getcwd()
    info = ProviderInfo(name=name, guid=guid, flags=tuple(flags), root=root)
    try:
        table = custom_types(scans)
    except ValueError as exc:
        complain("tmf gen", exc)
        return 1
    compiled = []
    for path, scan in scans.items():
        messages = compile_scan(scan, control_guid=guid, component=name, root=root, table=table)
        for exc in messages.errors:
            complain("tmf gen", f"error: {exc}")
            failed += 1
        compiled.append(messages)
    if failed:
        complain("tmf gen", f"{failed} error(s); nothing written")
        return 1
    when = reproducible_time(args.timestamp)
    try:
        written = write_files(args.output, info, compiled, when, control_files=args.control_files)
    except outputs.OutputRefused as refused:
        return outputs.fail("wpptrace tmf gen", refused)
    count = sum(len(m.sites) for m in compiled)
    uses_handler = any(scan.uses_handler for scan in scans.values())
    if args.logging or (args.logging is None and uses_handler):
        found = sum(len(scan_logging_calls(read_source(p), p)) for p in scans)
        if not found:
            complain("tmf gen", "warning: the sources use WppHandler, but no logging call with a literal "
                                "template was found: only the catch-all messages are written"
                     if uses_handler else "warning: --logging: no logging call with a literal template found")
        handler_flags = [f for scan in scans.values() for f in scan.handler_flags
                         if all(name in flags for name in f.split("|"))]
        flag_name = args.logging_flag or (handler_flags[0] if handler_flags else None)
        try:
            written += _write_logging(args, info, list(scans), when, flag_name)
        except KeyError as exc:
            complain("tmf gen", f"--logging-flag: {exc.args[0]}")
            return 2
        except outputs.OutputRefused as refused:
            return outputs.fail("wpptrace tmf gen", refused)
    registry = None
    if args.registry:
        try:
            registry = write_registry(root, scans)
        except OSError as exc:
            complain("tmf gen", f"cannot write the site registry: {exc.strerror or exc} "
                                f"({os.path.join(root, REGISTRY_FILE)}); use --no-registry to skip it")
            return 1
    if args.verbose:
        for path in written + ([registry] if registry else []):
            print(path)
    note = f"; site registry {registry}" if registry else ""
    print(f"{count} message(s) from {len(compiled)} file(s) -> {len(written)} file(s) in {args.output}{note}")
    return 0
