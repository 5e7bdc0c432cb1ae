"""``wpptrace session``: record a Python script's providers into an .etl file (tracelog-like).

    wpptrace session record -o out.etl [--guid G[:FLAGS[:LEVEL]] ...] [--flags F] [--level L]
                            [--buffer-size KB] [--max-buffers N] [--flush-timer S]
                            [--circular MB] [--realtime] -- script.py [args ...]

The script runs in this process (``runpy``, as ``__main__``) under a session that enables the
given control GUIDs, or, without ``--guid``, every provider the script registers. Sessions
live in the process that starts them, so this is how a session traces a Python program.
"""
from __future__ import annotations

import argparse
import os
import runpy
import sys
import traceback
import uuid

from wpptrace import _outputs as outputs
from wpptrace.provider import api
from wpptrace.provider._hazmat import lib
from wpptrace.provider.sessions import TraceSession


def _int(text: str) -> int:
    return int(text, 0)


def _guid_spec(text: str) -> tuple[uuid.UUID, int | None, int | None]:
    parts = text.split(":")
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected GUID[:FLAGS[:LEVEL]]")
    try:
        guid = uuid.UUID(parts[0].strip("{}"))
        flags = int(parts[1], 0) if len(parts) > 1 and parts[1] else None
        level = int(parts[2], 0) if len(parts) > 2 and parts[2] else None
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    return guid, flags, level


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    rec = sub.add_parser("record", help="run a Python script under a trace session",
                         description=__doc__.split("\n\n")[1])
    rec.add_argument("-o", "--output", help="the .etl file to write (default: <session name>.etl)")
    rec.add_argument("--name", default=None, help="session name (default: wpptrace-<pid>)")
    rec.add_argument("--guid", action="append", type=_guid_spec, default=[],
                     metavar="GUID[:FLAGS[:LEVEL]]",
                     help="control GUID to enable (repeatable; default: every provider the script registers)")
    rec.add_argument("--flags", type=_int, default=0xFFFFFFFF, help="enable flags (default: all)")
    rec.add_argument("--level", type=_int, default=lib.TRACE_LEVEL_VERBOSE,
                     help="enable level (default: 5, verbose)")
    rec.add_argument("--buffer-size", type=int, default=64, metavar="KB", help="buffer size (default: 64)")
    rec.add_argument("--min-buffers", type=int, default=0, metavar="N", help="buffers allocated up front (default: 0)")
    rec.add_argument("--max-buffers", type=int, default=256, metavar="N", help="buffer pool limit (default: 256)")
    rec.add_argument("--flush-timer", type=int, default=1, metavar="SECONDS",
                     help="write partly filled buffers this often (default: 1)")
    rec.add_argument("--circular", type=int, default=0, metavar="MB",
                     help="circular file of this size instead of a sequential one")
    rec.add_argument("--realtime", action="store_true", help="also deliver buffers in real time")
    rec.add_argument("--clock", type=int, choices=(1, 2, 3), default=1,
                     help="1 performance counter, 2 system time, 3 CPU cycles")
    rec.add_argument("script", help="the Python script to run")
    rec.add_argument("script_args", nargs=argparse.REMAINDER, help="its arguments")


def run(args: argparse.Namespace) -> int:
    name = args.name or f"wpptrace-{os.getpid()}"
    output = args.output or f"{name}.etl"
    try:  # the session truncates its file: never the script (or a file it is given)
        outputs.check_outputs([output], [args.script, *args.script_args])
    except outputs.OutputRefused as refused:
        return outputs.fail("wpptrace session", refused)
    mode = lib.EVENT_TRACE_USE_GLOBAL_SEQUENCE
    mode |= lib.EVENT_TRACE_FILE_MODE_CIRCULAR if args.circular else lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
    if args.realtime:
        mode |= lib.EVENT_TRACE_REAL_TIME_MODE
    session = TraceSession(name, output, BufferSize=args.buffer_size, MinimumBuffers=args.min_buffers,
                           MaximumBuffers=args.max_buffers, FlushTimer=args.flush_timer,
                           MaximumFileSize=args.circular, LogFileMode=mode, ClientContext=args.clock)
    hook = None
    try:
        for guid, flags, level in args.guid:
            session.enable(guid, args.flags if flags is None else flags,
                           args.level if level is None else level)
        if not args.guid:
            def hook(handle: int, control_guid: uuid.UUID) -> None:
                session.enable(control_guid, args.flags, args.level)
            api.registration_hooks.append(hook)
        script_args = list(args.script_args)
        if script_args[:1] == ["--"]:
            del script_args[0]
        saved_argv, sys.argv = sys.argv, [args.script, *script_args]
        exit_code = 0
        try:
            runpy.run_path(args.script, run_name="__main__")
        except SystemExit as exc:
            exit_code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except Exception as exc:  # noqa: BLE001 - the script's own error: its traceback, as python shows it
            tb = exc.__traceback__
            while tb is not None and tb.tb_frame.f_code.co_filename != args.script:
                tb = tb.tb_next  # drop this module's and runpy's frames
            traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
            exit_code = 1
        finally:
            sys.argv = saved_argv
    finally:
        if hook is not None:
            api.registration_hooks.remove(hook)
        final = session.stop()
    print(f"wpptrace session: {output}: {final.BuffersWritten} buffers written, "
          f"{final.EventsLost} events lost, {final.LogBuffersLost} buffers lost", file=sys.stderr)
    return exit_code
