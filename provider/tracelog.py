"""``tracelog``: the Windows session controller's spellings for wpptrace sessions.

    tracelog -start Name [-f LogFile] [-guid #GUID | -guid *Provider | -guid file.ctl] [-flag N]
                         [-level N] [-b KB] [-min N] [-max N] [-ft Seconds] [-cir MB | -seq MB] [-rt]
    tracelog -enable Name -guid #GUID|*Provider|file [-flag N] [-level N]
    tracelog -disable Name -guid #GUID|*Provider|file
    tracelog -update Name [-ft Seconds] [-max N] [-f NewLogFile]
    tracelog -flush Name | -q Name | -stop Name | -l

Quote '#GUID' in a shell, which reads an unquoted # as the start of a comment, and '*Provider'
(the control GUID ETW derives from a provider name, as EventSource and TraceLogging do, and as
wpptrace's Provider("Provider") takes by default), which a shell may expand. A .ctl or
.guid file lists one control GUID per line (braces optional, a provider name may follow; '#'
starts a comment). Each command prints the session as tracelog does, then the
operation status.

An option the action does not use is ignored, as Windows tracelog ignores it, so a script
written for it runs unchanged: -stop Name -f x.etl stops Name and makes no file, -flush Name
-guid '#GUID' enables nothing. Each action uses the options its line above shows (-update
does not switch real-time delivery: -rt is for -start). What cannot be meant (an option not
listed here, such as -fio or -ls, two actions or none, -cir with -seq whatever the action,
-start with neither -f nor -rt) is a usage error.

Exit status: 0 success; 1 the action failed (the session, a -guid file); 2 bad usage (an
unknown option, two actions or none, a missing name or -guid, a wrong number, name or #GUID),
said in one line, as a failure is ('tracelog: error: ...'), no argument at all too; -h for
this help.
"""
from __future__ import annotations

import argparse
import os
import sys
import uuid
from typing import NoReturn

from wpptrace._cliutil import RawDescriptionHelpFormatter, foreign_option, reason
from wpptrace.provider import api, session_cli
from wpptrace.provider.session_cli import SessionError, UsageError
from wpptrace.provider._hazmat import lib
from wpptrace.winerror import Win32Error, as_win32

__all__ = ["main", "read_guid_file", "UsageError"]

EXIT_FAILURE = 1
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:   # one line, as every refusal (no usage block): exit 2
        raise UsageError(message)


def read_guid_file(path: str) -> list[uuid.UUID]:
    """The control GUIDs of a .ctl / .guid file (SessionError, a one-line message, if it cannot
    be read or names none)."""
    guids = []
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            lines = list(fh)
    except OSError as exc:
        raise SessionError(f"{path}: cannot read: {reason(as_win32(exc), path)}") from None
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            guids.append(uuid.UUID(text.split()[0].strip("{}")))
        except ValueError:
            raise SessionError(f"{path}:{number}: expected a GUID, got {text.split()[0]!r}") from None
    if not guids:
        raise SessionError(f"{path}: no GUID in the file")
    return guids


def _guids(values: list[str]) -> list[uuid.UUID]:
    out = []
    for value in values:
        if value.startswith("#"):
            try:
                out.append(uuid.UUID(value[1:].strip("{}")))
            except ValueError:
                raise UsageError(f"-guid {value}: not a GUID") from None
        elif value.startswith("*"):
            out.append(provider_name_guid(value[1:], f"-guid {value}"))
        elif _is_guid(value) and not os.path.exists(value):   # the command line's mistake
            raise UsageError(f"-guid {value}: give '#GUID' or a .ctl/.guid file")
        else:   # (a file that cannot be read, one missing too, is said as such: exit status 1)
            out += read_guid_file(value)
    return out


def provider_name_guid(name: str, given: str) -> uuid.UUID:
    """The control GUID of provider ``name`` (ETW's name hash); UsageError naming ``given`` if
    there is no name."""
    if not name.strip():
        raise UsageError(f"{given}: expected a provider name after '*'")
    from wpptrace.provider.tracing_sites import etw_name_guid   # (its imports only when asked)
    return etw_name_guid(name)


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text.strip("{}"))
    except ValueError:
        return False
    return True


#: what each action does, for --help, in the order help and the no-action error list them
_COMMAND_HELP = {
    "start": "start session Name (in a host process of its own)",
    "stop": "stop session Name: providers disabled, its file finished",
    "update": "change a running session's flush timer, buffer limit or file",
    "enable": "enable providers (-guid) on session Name",
    "disable": "disable providers (-guid) the session holds",
    "flush": "write the session's partly filled buffers now",
    "q": "show a session's settings, counters and providers",
    "l": "list every session",
}


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tracelog", prefix_chars="-", allow_abbrev=False, add_help=False,
                description=__doc__.split("\n\n")[0].replace("``", ""),
                formatter_class=RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    what = p.add_mutually_exclusive_group()
    for command, text in _COMMAND_HELP.items():
        what.add_argument(f"-{command}", dest="command", action="store_const", const=command, help=text)
    p.add_argument("name", nargs="?", help="logger (session) name")
    p.add_argument("-f", dest="logfile", metavar="LogFile", help="the .etl file to write")
    p.add_argument("-guid", action="append", default=[], metavar="#GUID|*Provider|file",
                   help="a control GUID, a provider name's (*Name), or a .ctl/.guid file of them "
                        "(repeatable)")
    p.add_argument("-flag", "-flags", dest="flags", type=session_cli.flags_argument, default=0xFFFFFFFF,
                   help="enable flags (default: all)")
    p.add_argument("-level", type=session_cli.level_argument, default=lib.TRACE_LEVEL_VERBOSE,
                   help="enable level (default: 5, verbose)")
    p.add_argument("-b", dest="buffer_size", type=int, default=64, metavar="KB",
                   help="buffer size (default: 64)")
    p.add_argument("-min", dest="min_buffers", type=int, default=0, metavar="N",
                   help="buffers allocated up front")
    p.add_argument("-max", dest="max_buffers", type=int, default=None, metavar="N",
                   help="buffer pool limit")
    p.add_argument("-ft", dest="flush_timer", type=int, default=None, metavar="Seconds",
                   help="write partly filled buffers this often")
    p.add_argument("-cir", dest="circular", type=int, default=None, metavar="MB",
                   help="circular file of this size (not with -seq)")
    p.add_argument("-seq", dest="sequential", type=int, default=None, metavar="MB",
                   help="sequential file of at most this size (not with -cir)")
    p.add_argument("-rt", dest="realtime", action="store_true",
                   help="deliver buffers to live consumers (tracefmt -rt Name)")
    p.add_argument("-h", "-help", "-?", dest="help", action="store_true", help="show this help")
    return p


def _status(code: int) -> str:
    """tracelog's last line: the Win32 status and its message."""
    from wpptrace.winerror import error_message

    return f"{'Operation Status:':<24}{code}L      {error_message(code)}"


def _error(message: str, status: int = EXIT_FAILURE) -> int:
    """Say a failure as every command's one-line error says it; the exit status."""
    print(f"tracelog: error: {message}", file=sys.stderr)
    return status


#: how tracelog spells the session settings (session_cli.SETTINGS)
_OPTIONS = {"buffer_size": "-b", "min_buffers": "-min", "max_buffers": "-max", "flush_timer": "-ft",
            "circular": "-cir", "max_file": "-seq"}


def _start(args: argparse.Namespace, guids: list[uuid.UUID]) -> list[str]:
    """Start the session and enable ``guids`` on it; a failure after the start stops it again
    (``session_cli.stopped_if_failing``)."""
    name = args.name
    session_cli.start(name, args.logfile, realtime=args.realtime, circular=args.circular or 0,
                      max_file=args.sequential or 0, buffer_size=args.buffer_size,
                      min_buffers=args.min_buffers, max_buffers=args.max_buffers or 0,
                      flush_timer=1 if args.flush_timer is None else args.flush_timer, options=_OPTIONS)
    with session_cli.stopped_if_failing(name, _error):
        session_cli.enable(name, [(g, None, None) for g in guids], args.flags, args.level, say=_error)
        return session_cli.shown_text(api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY))


def run(args: argparse.Namespace) -> tuple[int, list[str]]:
    """(Win32 status, lines). Every argument is checked before anything is started or changed:
    UsageError (a one-line message) if the command line is wrong, SessionError if a -guid file
    is. Options the command does not use are not looked at (as Windows tracelog ignores them)."""
    command, name = args.command, args.name
    if args.circular is not None and args.sequential is not None:   # whichever the action, and 0 too
        raise UsageError("-cir and -seq exclude each other")
    if command == "l":
        return 0, session_cli.listed()
    if not name:
        raise UsageError(f"-{command} needs a logger name")
    try:
        session_cli.check_name(name)
    except SessionError as exc:
        raise UsageError(str(exc)) from None
    if command == "start":
        if args.logfile is None and not args.realtime:
            raise UsageError("-start needs a log file (-f) or real-time delivery (-rt), or both")
        return 0, _start(args, _guids(args.guid))
    if command in ("enable", "disable"):
        guids = _guids(args.guid)
        if not guids:
            raise UsageError(f"-{command} needs -guid")
        session_cli.enable(name, [(g, None, None) for g in guids], args.flags, args.level,
                           on=command == "enable", say=_error)
        return 0, []
    if command == "stop":
        final, message = session_cli.stop(name)
        if final is None:
            return lib.ERROR_WMI_INSTANCE_NOT_FOUND, [message]
        return 0, session_cli.query_text(final, None, [])
    if command == "update":
        session_cli.update(name, args.flush_timer, args.max_buffers, args.logfile, options=_OPTIONS)
    elif command == "flush":
        session_cli.flush(name)
    props = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY)
    return 0, session_cli.shown_text(props)


def main(argv: list[str] | None = None) -> int:
    from wpptrace._stdout import StandardOutputFailed, guarded_stdout

    try:
        with guarded_stdout():
            return _main(argv)
    except StandardOutputFailed as exc:     # closed, its disk full...: one line, not a traceback
        return _error(str(exc))


def _main(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = _parser()
    try:
        # argparse would read a dash word it does not know as a known one-letter option with
        # a value glued on (-fio as -f io, -ls as -l s): no such word is one of ours
        foreign = foreign_option(argv, parser)
        if foreign is not None:
            parser.error(f"{foreign}: not an option this tracelog takes")
        args = parser.parse_args(argv)
        if args.help:
            parser.print_help()
            return 0
        if not args.command:
            actions = ", ".join(f"-{command}" for command in _COMMAND_HELP)
            raise UsageError(f"no action: give one of {actions} (-h for help)")
        status, lines = run(args)
    except UsageError as exc:
        return _error(str(exc), EXIT_USAGE)
    except SessionError as exc:
        return _error(str(exc))
    except Win32Error as exc:
        print(_status(exc.winerror))
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    try:
        for line in lines:
            print(line)
        print(_status(status))
        sys.stdout.flush()
    except BrokenPipeError:
        # `tracelog -l | head`: the reader left; stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0 if status == 0 else EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
