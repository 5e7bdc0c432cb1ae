"""``wpptrace tmf gen``: TMF files for Python providers, from their sources (as tracewpp + tracepdb).

Scans Python sources with the same AST scanner the running provider uses
(:mod:`wpptrace.provider.tracing_sites`), so the files it writes are byte for byte the ones
``Provider.write_tmf()`` writes at run time:

* ``<message-guid>.tmf`` per source file (tracepdb layout: ``// PDB:`` lines, GUID line, ``#typev``
  blocks in message-number order);
* ``<control-guid>.tmc`` (control GUID, name, flag names: what TraceView reads) and
  ``<component>.mof`` (tracepdb's MOF class for the control GUID, flags and levels).

The provider's control GUID, name, flags and root come from a ``Provider("Name", guid=...,
flags=(...), root=...)`` call with literal arguments found in the sources, or from the options.
The ``Last Updated`` time is ``--timestamp``, else ``$SOURCE_DATE_EPOCH``, else 1970-01-01: the
same sources always give the same bytes.
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

from wpptrace._cliutil import (add_output_dir_option, add_timestamp_option, add_verbose_option,
                                complain, iso_time, source_date_epoch)
from wpptrace.tmf.writer import to_tmf_text

from .tracing_messages import FileMessages, compile_file
from .tracing_sites import ScanError, etw_name_guid, scan_file

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
    """Write the TMF of every file with trace calls (and the .tmc/.mof); return the paths written."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for messages in files:
        text = file_tmf_text(messages, when)
        if not text:
            continue
        path = out / f"{messages.guid}.tmf"
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    if control_files:
        path = out / f"{info.guid}.tmc"
        path.write_text(tmc_text(info, when), encoding="utf-8", newline="\n")
        written.append(path)
        path = out / f"{info.name}.mof"
        path.write_text(mof_text(info, when), encoding="utf-8", newline="\n")
        written.append(path)
    return written


def find_provider(sources: Sequence[str]) -> tuple[str, "object"] | None:
    """The single literal ``Provider(...)`` declaration among ``sources`` (path, decl), if any."""
    found = []
    for path in sources:
        for decl in scan_file(path).providers:
            found.append((path, decl))
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
                files += [os.path.join(dirpath, f) for f in sorted(filenames) if f.endswith(".py")]
        else:
            files.append(src)
    return files


def _write_logging(args: argparse.Namespace, info: ProviderInfo, sources: list[str],
                   when: _dt.datetime) -> list[pathlib.Path]:
    """The logging call sites' TMF, through the handler's own writer (same bytes as at run time)."""
    from .logging_handler import WppHandler
    from .tracing import Provider

    provider = Provider(info.name, info.guid, flags=info.flags, root=info.root, register=False)
    flag = provider.flag(args.logging_flag) if args.logging_flag else None
    handler = WppHandler(provider=provider, flag=flag)
    paths = handler.write_tmf(args.output, sources=tuple(sources), when=when)
    return [pathlib.Path(p) for p in paths if p.endswith(".tmf")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="+", metavar="SRC",
                        help="Python source files or directories (scanned for trace calls)")
    add_output_dir_option(parser, "directory for <guid>.tmf, <control-guid>.tmc and <name>.mof (default: .)")
    parser.add_argument("--name", help="provider (component) name; default: from Provider(...) in the sources")
    parser.add_argument("--guid", help="control GUID; default: from Provider(...), else the ETW hash of --name")
    parser.add_argument("--flags", help="comma-separated flag names in bit order (for the .tmc/.mof)")
    parser.add_argument("--root", help="directory message GUIDs are relative to; default: the directory "
                                       "of the file declaring the Provider (as at run time)")
    add_timestamp_option(parser, "1970-01-01")
    parser.add_argument("--logging", action="store_true",
                        help="also write the TMF of the sources' logging calls, as WppHandler.write_tmf does")
    parser.add_argument("--logging-flag", metavar="NAME",
                        help="the provider flag the WppHandler uses (default: the first flag)")
    parser.add_argument("--no-control-files", dest="control_files", action="store_false",
                        help="write only the .tmf files")
    add_verbose_option(parser)


def run(args: argparse.Namespace) -> int:
    sources = _expand(args.sources)
    declared = None
    if not (args.name and args.root):  # otherwise nothing is taken from a declaration
        try:
            declared = find_provider(sources)
        except (ScanError, ValueError) as exc:
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
        root = args.root
    elif decl_path is not None:
        base = os.path.dirname(os.path.abspath(decl_path))
        root = os.path.join(base, decl.root) if decl.root else base
    else:
        root = os.getcwd()
    info = ProviderInfo(name=name, guid=guid, flags=tuple(flags), root=root)
    compiled, failed = [], 0
    for path in sources:
        try:
            messages = compile_file(path, control_guid=guid, component=name, root=root)
        except ScanError as exc:
            complain("tmf gen", exc)
            failed += 1
            continue
        for exc in messages.errors:
            complain("tmf gen", f"error: {exc}")
            failed += 1
        compiled.append(messages)
    if failed:
        complain("tmf gen", f"{failed} error(s); nothing written")
        return 1
    when = reproducible_time(args.timestamp)
    written = write_files(args.output, info, compiled, when, control_files=args.control_files)
    count = sum(len(m.sites) for m in compiled)
    if args.logging:
        written += _write_logging(args, info, sources, when)
    if args.verbose:
        for path in written:
            print(path)
    print(f"{count} message(s) from {len(compiled)} file(s) -> {len(written)} file(s) in {args.output}")
    return 0
