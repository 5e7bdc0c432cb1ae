"""The ``wpptrace`` console command: one entry point, subcommands owned by each part.

Each subcommand lives in its part's package as a module exposing
``add_arguments(parser)`` and ``run(args) -> int``; modules are imported only when their
subcommand runs, so ``wpptrace --help`` stays fast. ``python -m wpptrace`` runs the same.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import os
import sys

from . import __version__
from ._cliutil import ArgumentParser
from ._stdout import StandardOutputFailed, guarded_stdout

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import NoReturn

#: subcommand -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "fmt": ("wpptrace.decoder.cli_fmt", "decode WPP messages in .etl files like tracefmt"),
    "dump": ("wpptrace.decoder.cli_dump", "list every record of an .etl file, with a summary"),
    "tmf": ("wpptrace.tmf.cli", "TMF files: show, from-pdb, gen"),
    "session": ("wpptrace.provider.cli", "start, control and record trace sessions (tracelog-like)"),
    "relay": ("wpptrace.remote.cli_relay", "send a live session's buffers to a collector"),
    "collect": ("wpptrace.remote.cli_collect", "receive relayed sessions: .etl files, live view"),
}


#: the subcommands that write their output's blocks themselves and tell a failed write to
#: standard output as they tell one to a file (fmt: its summary is still written)
TELLS_ITS_OUTPUT_FAILURES = frozenset({"fmt"})

#: the subcommands that run the user's Python script in this process: it gets the standard
#: output ``python script.py`` would give it, unguarded (closed: None, its prints dropped; a
#: failed write: the script's own OSError); what they say themselves goes to standard error
RUN_A_SCRIPT = frozenset({"session record"})


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="wpptrace",
        description="Classic ETW / WPP tracing for Python and Linux: write, read and decode .etl files.",
    )
    parser.add_argument("--version", action="version", version=f"wpptrace {__version__}")
    parser.add_argument("--traceback", action="store_true", help="show a Python traceback on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue   # each parser costs start-up; only --help and errors list the others
        sp = sub.add_parser(name, help=help_text, description=help_text)
        importlib.import_module(module).add_arguments(sp)
        sp.set_defaults(_module=module)
    return parser


def subcommand(argv: list[str]) -> str | None:
    """The subcommand ``argv`` (the arguments after the program's name) names: its first word
    that is not an option, None when there is none. The one rule :func:`main` and
    :func:`command` both use, so the parser built and the process's end agree."""
    return next((a for a in argv if not a.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    chosen = subcommand(argv)
    parser = build_parser(only=chosen if chosen in SUBCOMMANDS else None)
    args, unknown = parser.parse_known_args(argv)
    if unknown:   # told by the (sub)command they were given to, with its usage line
        given_before = argv[:argv.index(chosen)] if chosen in argv else argv
        told_by = parser if any(arg in given_before for arg in unknown) else _parser_of(parser, args)
        told_by.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    named = _parser_of(parser, args).prog   # "wpptrace session record", as argparse's errors name it
    if named.partition(" ")[2] in RUN_A_SCRIPT:
        guard = contextlib.nullcontext()
    else:
        guard = guarded_stdout(wrap=args.command not in TELLS_ITS_OUTPUT_FAILURES)
    try:
        with guard:
            return int(importlib.import_module(args._module).run(args) or 0)
    except StandardOutputFailed as exc:     # closed, its disk full...: said as fmt says its own
        print(f"{named}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `wpptrace ... | head`: the reader went away; exit quietly like a Unix tool (fmt
        # with a summary file to write goes on without printing and writes it: run_fmt)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{named}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if args.traceback:
            raise
        print(f"{named}: error: {_said(exc)}", file=sys.stderr)
        return 1


def _said(exc: Exception) -> str:
    """``exc`` in one line: a file's OSError as "PATH: reason (Win32 name)", as every command
    says its own file problems, not Python's "[Errno 13] ...: 'PATH'"."""
    path = exc.filename if isinstance(exc, OSError) else None
    if path is None:
        return str(exc)
    from ._cliutil import reason
    from .winerror import as_win32

    path = os.fsdecode(path)
    return f"{path}: {reason(as_win32(exc), path)}"


def _parser_of(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the innermost subcommand ``args`` chose (``wpptrace tmf show``'s for
    ``tmf show``), ``parser`` itself when none was chosen."""
    while True:
        chooser = next((action for action in parser._actions
                        if isinstance(action, argparse._SubParsersAction)), None)
        chosen = getattr(args, chooser.dest, None) if chooser is not None else None
        if chosen not in getattr(chooser, "choices", {}):
            return parser
        parser = chooser.choices[chosen]


def leaving(code: int) -> int:
    """``code``, with the objects the command made frozen: the process is about to end, and the
    interpreter's last collection would otherwise scan them all (~0.2 s after a Parquet run
    of 1M rows, ~0.1 s after a text run). A console command's last step, never a library's."""
    gc.freeze()
    return code


def entry() -> int:
    """:func:`main` on ``sys.argv``, then :func:`leaving`."""
    return leaving(main())


#: the subcommands whose work is all done when they return (outputs closed or renamed, their
#: threads joined): their process ends without the interpreter's teardown (:func:`ended`).
#: os._exit also skips the C library's atexit handlers and stdio flush (the provider core's
#: handler removes its endpoint's socket): a subcommand that registers a provider, starts a
#: session or leaves other C atexit work must never be added here.
ENDS_WHEN_DONE = frozenset({"fmt"})


def command() -> NoReturn:
    """The ``wpptrace`` console command: :func:`entry`; the process ends with its status, at once
    after a subcommand of :data:`ENDS_WHEN_DONE`."""
    argv = sys.argv[1:]   # as main() reads it: what it runs is what decides the end
    code = entry()
    if subcommand(argv) in ENDS_WHEN_DONE:
        ended(code)
    sys.exit(code)


def ended(code: int) -> NoReturn:
    """End this process with status ``code`` as the interpreter's exit would for what a
    command's output depends on (threads joined, ``atexit`` functions run, the standard streams
    flushed), without taking every module and object apart one by one: the teardown is slow
    after a large run. A console command's last step, never a library's; where a standard
    stream cannot be flushed, the interpreter's own exit (its message, status 120), and so too
    on a Python without the two steps it borrows. It ends with ``os._exit``: only for a command
    :data:`ENDS_WHEN_DONE` may hold (see there)."""
    import atexit

    # the first steps Py_FinalizeEx takes, in its order: join the non-daemon threads, then run
    # the atexit functions (private CPython functions; a Python without them exits normally)
    threading = sys.modules.get("threading")
    join_threads = getattr(threading, "_shutdown", None) if threading is not None else _no_threads
    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if join_threads is None or run_exitfuncs is None:
        sys.exit(code)
    join_threads()
    run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except Exception:  # noqa: BLE001 - left to the interpreter's exit, which reports it
        sys.exit(code)
    os._exit(code)


def _no_threads() -> None:
    """No thread to join: ``threading`` was never imported, so no thread of it was started."""


if __name__ == "__main__":
    command()
