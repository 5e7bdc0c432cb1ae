"""``wpptrace tmf``: show the messages of TMF/TMC/PDB sources; from-pdb and gen delegate to their modules."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import TextIO

from .model import Message

__all__ = ["add_arguments", "run", "message_to_json"]

#: nested subcommand -> (delegate module exposing add_arguments/run, help)
DELEGATES: dict[str, tuple[str, str]] = {
    "from-pdb": ("wpptrace.tmf.pdb.tracepdb", "write tracepdb-style <guid>.tmf files from a PDB's WPP annotations"),
    "gen": ("wpptrace.provider.tmfgen", "generate TMF files for Python WPP providers"),
}
_FIXED_FIELDS = ("guid", "number", "name", "format", "args", "component", "source_file", "trailer", "origin")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tmf_command", metavar="SUBCOMMAND")
    show = sub.add_parser("show", help="list the messages found in TMF files, directories, .tmc or .pdb files",
                          description="List the messages found (unique (GUID, number) pairs).",
                          epilog="exit status: 0 ok, 1 a path could not be read or an entry was "
                                 "malformed (see stderr), 2 bad usage")
    show.add_argument("paths", nargs="+", metavar="PATH", help="TMF file, directory, .tmc or .pdb")
    show.add_argument("--json", action="store_true",
                      help="one JSON object per message, then {\"summary\": {...}}")
    show.add_argument("--strict", action="store_true", help="stop at the first malformed entry")
    show.add_argument("--search-path", default=None, metavar="DIRS",
                      help="extra TMF search path (';' or os.pathsep separated)")
    show.add_argument("--no-env", action="store_true", help="ignore TRACE_FORMAT_SEARCH_PATH")
    show.set_defaults(_tmf_run=_run_show)
    for name, (module, help_text) in DELEGATES.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        try:
            delegate = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:
                raise
            sp.set_defaults(_tmf_missing=module)
            sp.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            continue
        delegate.add_arguments(sp)
        sp.set_defaults(_tmf_run=delegate.run)


def run(args: argparse.Namespace) -> int:
    missing = getattr(args, "_tmf_missing", None)
    if missing:
        print(f"wpptrace tmf {args.tmf_command}: not available: module {missing} is missing from this build",
              file=sys.stderr)
        return 2
    handler = getattr(args, "_tmf_run", None)
    if handler is None:
        print("wpptrace tmf: choose a subcommand: show, from-pdb, gen (see wpptrace tmf --help)", file=sys.stderr)
        return 2
    return int(handler(args) or 0)


def message_to_json(message: Message) -> dict[str, object]:
    """The ``show --json`` object of one message: fixed fields, then the trailer keys."""
    obj: dict[str, object] = {
        "guid": str(message.guid),
        "number": message.number,
        "name": message.name,
        "format": message.format,
        "args": [
            {"name": arg.name, "type": arg.item, "insert": arg.insert, "params": list(arg.params)}
            for arg in message.args
        ],
        "component": message.component,
        "source_file": message.source_file,
        "trailer": dict(message.trailer),
        "origin": message.origin,
    }
    for key, value in message.trailer.items():
        if key and key not in _FIXED_FIELDS:
            obj[key] = value
    return obj


def _print_issues(tmfset) -> None:
    """Each file's problems, then how many more it had (errors too, not listed: past
    MAX_ISSUES_PER_FILE), file after file in the order their problems were met."""
    by_path: dict[str, list] = {}
    for issue in tmfset.issues:
        by_path.setdefault(issue.path, []).append(issue)
    dropped = tmfset.issues_dropped
    for path in [*by_path, *sorted(dropped.keys() - by_path.keys())]:
        for issue in by_path.get(path, ()):
            print(issue, file=sys.stderr)
        if dropped.get(path):
            print(f"{path}: {dropped[path]} more problems not listed", file=sys.stderr)


def _print_text(message: Message, out: TextIO) -> None:
    trailer = " ".join(f"{k}={v}" if k else v for k, v in message.trailer.items())
    out.write(f"{message.guid} {message.number:5d} {message.name} [{message.component}] \"{message.format}\"")
    out.write(f"  {trailer}\n" if trailer else "\n")
    for arg in message.args:
        params = f"({','.join(arg.params)})" if arg.params else ""
        out.write(f"    %{arg.insert}: {arg.name}, {arg.item}{params}\n")


def _has_tmf_files(directory: str) -> bool:
    try:
        with os.scandir(directory) as entries:      # (closed at the first TMF file found)
            return any(entry.name.lower().endswith((".tmf", ".tmc")) for entry in entries)
    except OSError:
        return True  # unreadable: the loader reports it


def _run_show(args: argparse.Namespace) -> int:
    from wpptrace import _outputs as outputs

    from .errors import TmfError
    from .loader import ENV_SEARCH_PATH, load, split_search_path

    out = sys.stdout
    dirs = [path for path in args.paths if os.path.isdir(path)]
    dirs += split_search_path(args.search_path)
    if not args.no_env:
        dirs += split_search_path(os.environ.get(ENV_SEARCH_PATH))
    try:  # `tmf show x.tmf >> x.tmf` would write into a file being read
        outputs.check_outputs([], [path for path in args.paths if path not in dirs], input_dirs=dirs,
                              stdout=out)
    except outputs.OutputRefused as refused:
        return outputs.fail("wpptrace tmf show", refused)
    try:
        tmfset = load(*args.paths, search_path=args.search_path, tolerant=not args.strict,
                      use_environment=not args.no_env)
        messages = list(tmfset.messages())
    except TmfError as err:
        print(f"wpptrace tmf show: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:
        # "PATH: reason (its Win32 code)", not OSError's "[Errno 2] reason: 'PATH'"
        from wpptrace._cliutil import reason
        from wpptrace.winerror import as_win32

        where = f"{err.filename}: " if err.filename is not None else ""
        print(f"wpptrace tmf show: error: {where}{reason(as_win32(err), err.filename)}",
              file=sys.stderr)
        return 1
    for path in args.paths:
        if os.path.isdir(path) and not _has_tmf_files(path):
            print(f"wpptrace tmf show: warning: {path}: no .tmf or .tmc files in this directory",
                  file=sys.stderr)
    for message in messages:
        if args.json:
            out.write(json.dumps(message_to_json(message)) + "\n")
        else:
            _print_text(message, out)
    _print_issues(tmfset)
    guids = {message.guid for message in messages}
    errors = len(tmfset.issues) + sum(tmfset.issues_dropped.values())
    summary = {"messages": len(messages), "guids": len(guids), "errors": errors}
    if args.json:
        out.write(json.dumps({"summary": summary}) + "\n")
    else:
        out.write(f"{summary['messages']} messages, {summary['guids']} GUIDs, {summary['errors']} errors\n")
    return 1 if errors else 0
