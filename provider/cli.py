"""``wpptrace session``: record a Python script's providers into an .etl file (tracelog-like);
start, stop, query and enable sessions from any shell (provider/session_cli.py).

    wpptrace session record -o out.etl [--guid G[:FLAGS[:LEVEL]] ...] [--flags F] [--level L]
                            [--buffer-size KB] [--max-buffers N] [--flush-timer S]
                            [--circular MB] [--realtime] -- script.py [args ...]

The script runs in this process as ``python script.py`` would run it (``__main__``, its
directory first on ``sys.path``, ``sys.argv``, its exit code) under a session that enables the
given control GUIDs, or, without ``--guid``, every provider the script registers. A script that
cannot be opened or compiled is reported before any session starts (no empty .etl). The
session ends with this process, also when the script ends it without returning (``os._exit``, a
signal): its host stops the session and completes the file then.

Exit status: the script's; 1 if it exited 0 but not all it traced could be recorded (a provider
it registered could not be enabled, the session was stopped before it ended: each said in one
line), or if the output cannot be recorded to (an input, a stream: ``-o -``, ``/dev/stdout``,
the file stdout or stderr goes to; a path the core refuses) or this user's runtime directory is
not usable, before the script runs; 2 for a script that cannot be opened.
"""
from __future__ import annotations

import argparse
import builtins
import importlib.machinery
import os
import runpy
import sys
import traceback
import types
import uuid

from wpptrace import _outputs as outputs
from wpptrace.provider import api, session_cli
from wpptrace.provider._hazmat import lib
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error, in_words

PROG = "wpptrace session record"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="session_command", metavar="ACTION", required=True)
    rec = sub.add_parser("record", help="run a Python script under a trace session",
                         description=__doc__.split("\n\n")[1])
    rec.add_argument("-o", "--output", help="the .etl file to write (default: <session name>.etl)")
    rec.add_argument("--name", default=None, help="session name (default: wpptrace-<pid>)")
    rec.add_argument("--guid", action="append", type=session_cli.parse_guid_spec, default=[],
                     metavar="GUID[:FLAGS[:LEVEL]]",
                     help="control GUID to enable, or *Name for provider Name's (repeatable; default: "
                          "every provider the script registers)")
    rec.add_argument("--flags", type=session_cli.flags_argument, default=0xFFFFFFFF, help="enable flags (default: all)")
    rec.add_argument("--level", type=session_cli.level_argument, default=lib.TRACE_LEVEL_VERBOSE,
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
    session_cli.add_subcommands(sub)


def _load_script(path: str) -> tuple[str | None, int]:
    """Check the script as Python would before running it: (error line or None, exit code).
    A directory runs its __main__ module; a device, pipe or socket is refused unopened (a pipe's
    open would wait for a writer), before any session starts."""
    from wpptrace.tmf.errors import TmfError, open_regular

    if os.path.isdir(path):
        if _has_main(path):
            return None, 0
        return f"{path}: is a directory with no __main__.py: give the script or its directory", 2
    try:
        fd, _ = open_regular(path, "give the script")
    except TmfError as exc:
        return str(exc), 2
    except OSError as exc:
        from wpptrace._cliutil import reason
        from wpptrace.winerror import as_win32

        return f"{path}: {reason(as_win32(exc), path)}", 2
    with open(fd, "rb") as handle:
        if path.endswith((".zip", ".pyz")):   # an archive with a __main__.py: runpy reads it
            return None, 0
        source = handle.read()
    try:
        compile(source, path, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        traceback.print_exception(type(exc), exc, None)
        return "", 1
    return None, 0


def _has_main(directory: str) -> bool:
    """Whether ``directory`` holds a __main__ module python would run (``__main__.py``, a
    sourceless ``__main__.pyc``...): the import system's finder for it is asked, as runpy does."""
    import pkgutil

    finder = pkgutil.get_importer(directory)
    try:
        spec = finder.find_spec("__main__") if finder is not None else None
    except (ImportError, OSError, ValueError):
        return False
    return spec is not None and spec.loader is not None     # (no loader: a namespace directory)


def _exit_code(exc: SystemExit) -> int:
    """sys.exit(x) as the interpreter turns it into a status: int, None -> 0, other -> printed, 1."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def _run_file(path: str) -> None:
    """Run a script file as ``python path`` does: in a fresh ``__main__`` module, compiled under
    its absolute file name (so a script that changes directory still finds its call sites and
    tracebacks name the file fully); sys.argv[0] stays as given."""
    filename = os.path.abspath(path)
    with open(filename, "rb") as handle:
        code = compile(handle.read(), filename, "exec", dont_inherit=True)
    main = types.ModuleType("__main__")
    main.__dict__.update(__file__=filename, __cached__=None, __builtins__=builtins,
                         __loader__=importlib.machinery.SourceFileLoader("__main__", filename))
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)  # noqa: S102 - running the user's script is this command's job
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def _run_script(args: argparse.Namespace) -> int:
    """The script with the interpreter's own setup for it (argv, sys.path[0]), restored afterwards."""
    script_args = list(args.script_args)
    if script_args[:1] == ["--"]:
        del script_args[0]
    saved_argv, saved_path0 = sys.argv, sys.path[0] if sys.path else None
    sys.argv = [args.script, *script_args]
    # python script.py: the script's directory (symlinks resolved) replaces sys.path[0]
    script_dir = os.path.dirname(os.path.realpath(args.script)) if not os.path.isdir(args.script) \
        else os.path.realpath(args.script)
    if sys.path:
        sys.path[0] = script_dir
    else:
        sys.path.append(script_dir)
    try:
        if os.path.isfile(args.script):
            _run_file(args.script)
        else:  # a directory or a zip archive with a __main__.py
            runpy.run_path(args.script, run_name="__main__")
        return 0
    except SystemExit as exc:
        return _exit_code(exc)
    except BaseException as exc:  # noqa: BLE001 - the script's own error: its traceback, as python shows it
        tb = exc.__traceback__
        script = os.path.abspath(args.script)
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
            tb = tb.tb_next  # drop this module's and runpy's frames
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        sys.argv = saved_argv
        if saved_path0 is not None and sys.path:
            sys.path[0] = saved_path0


def _running(session: TraceSession) -> bool:
    try:
        session.query()
    except OSError:
        return False
    return True


def run(args: argparse.Namespace) -> int:
    if args.session_command != "record":
        return session_cli.run(args)

    def error(text: str) -> None:
        print(f"{PROG}: error: {text}", file=sys.stderr)

    problem, code = _load_script(args.script)
    if problem is not None:
        if problem:
            error(problem)
        return code
    name = args.name or f"wpptrace-{os.getpid()}"
    output = args.output or f"{name}.etl"
    if output == "-" or outputs.descriptor_named(output) is not None:
        # the session's host process opens the log file by its path (its own /dev/stdout, not
        # this one's) and rewrites the file's first buffer after each buffer: no stream
        error(f"cannot record to {output}: an .etl file is written by its path and "
              f"its header rewritten as buffers are added; give a file (-o FILE.etl)")
        return 1
    try:  # the session truncates its file: never the script (or a file it is given)
        outputs.check_outputs([output], [args.script, *args.script_args])
        for stream, said in ((sys.stdout, "standard output"), (sys.stderr, "standard error")):
            # the script's prints (and this command's lines) would be written into the .etl
            if outputs.same_file_as_stream(output, stream):
                raise outputs.OutputRefused(f"refusing to write {output}: <{said}> is the same "
                                            f"file; nothing was written")
    except outputs.OutputRefused as refused:
        return outputs.fail(PROG, refused)
    try:    # as 'session start': a runtime directory the core refuses is not the log file's fault
        session_cli.check_settings({"buffer_size": args.buffer_size, "min_buffers": args.min_buffers,
                                    "max_buffers": args.max_buffers, "flush_timer": args.flush_timer,
                                    "circular": args.circular}, session_cli.LONG_OPTIONS)
        session_cli.check_runtime_directory()
    except session_cli.SessionError as exc:
        error(str(exc))
        return 2 if isinstance(exc, session_cli.UsageError) else 1
    mode = lib.EVENT_TRACE_USE_GLOBAL_SEQUENCE
    mode |= lib.EVENT_TRACE_FILE_MODE_CIRCULAR if args.circular else lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
    if args.realtime:
        mode |= lib.EVENT_TRACE_REAL_TIME_MODE
    try:
        # ends with this process also when the script ends it without returning here (os._exit,
        # a signal): its host completes the file then
        session = TraceSession(name, output, BufferSize=args.buffer_size, MinimumBuffers=args.min_buffers,
                               MaximumBuffers=args.max_buffers, FlushTimer=args.flush_timer,
                               MaximumFileSize=args.circular, LogFileMode=mode, ClientContext=args.clock,
                               ends_with_caller=True)
    except Win32Error as exc:   # a path the core will not write: the rule that refused it, in words
        if exc.winerror not in session_cli.LOG_FILE_REFUSALS:
            raise
        error(session_cli.log_file_refusal(output, exc))
        return 1
    hook = None
    incomplete = False
    try:
        if args.guid:
            # all or none, as 'session enable': one that fails gives back what the others took
            try:
                session_cli.enable(name, args.guid, args.flags, args.level,
                                   say=error, handle=session.handle)
            except session_cli.SessionError as exc:
                error(str(exc))
                return 1          # (the session is stopped below)
        else:
            def hook(handle: int, control_guid: uuid.UUID) -> None:
                nonlocal incomplete
                try:
                    session.enable(control_guid, args.flags, args.level)
                except Exception as exc:  # noqa: BLE001 - the script goes on; this provider is not recorded
                    incomplete = True
                    why = (in_words(exc) if _running(session) else
                           f"session {name} is no longer running (stopped by another command?)")
                    error(f"cannot record provider {control_guid}: {why}")
            api.registration_hooks.append(hook)
        exit_code = _run_script(args)
    finally:
        if hook is not None:
            api.registration_hooks.remove(hook)
        try:
            final = session.stop()
        except OSError as exc:
            final = None
            why = (f"session {name} had stopped before the script ended (by another command?)"
                   if isinstance(exc, Win32Error) and exc.name == "ERROR_WMI_INSTANCE_NOT_FOUND"
                   else f"stopping session {name}: {in_words(exc)}")
            error(f"{why}: {output} holds what it wrote until then")
    if final is not None:
        print(f"{PROG}: {output}: {final.BuffersWritten} buffers written, "
              f"{final.EventsLost} events lost, {final.LogBuffersLost} buffers lost", file=sys.stderr)
    if exit_code == 0 and (incomplete or final is None):
        return 1
    return exit_code
