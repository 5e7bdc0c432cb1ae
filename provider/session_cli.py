"""``wpptrace session start|stop|flush|query|update|enable|disable|list``: control sessions of
this user from any shell (tracelog's job), and the query text both CLIs print.

    wpptrace session start NAME [-f out.etl] [--guid G[:FLAGS[:LEVEL]] ...] [--flags F] [--level L]
                               [--buffer-size KB] [--min-buffers N] [--max-buffers N]
                               [--flush-timer S] [--circular MB | --sequential [MB]] [--realtime]
    wpptrace session enable NAME --guid G[:FLAGS[:LEVEL]] ... [--flags F] [--level L]
    wpptrace session disable NAME --guid G ...
    wpptrace session query NAME | flush NAME | stop NAME | list
    wpptrace session update NAME [--flush-timer S] [--max-buffers N] [-f new.etl]

A started session runs in a host process of its own until ``session stop``: the shell that
started it may close. Providers in running applications are enabled and disabled at once.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import uuid
from typing import Callable, Iterable, Iterator, NoReturn, TextIO

from wpptrace._cliutil import reason
from wpptrace.provider import api, runtime_directory, sessions
from wpptrace.provider._hazmat import lib
from wpptrace.provider.runtime_directory import refusal as runtime_directory_refusal
from wpptrace.winerror import Win32Error, in_words, no_directory

__all__ = ["add_subcommands", "run", "start", "query_text", "listed_text", "shown_text", "check_name",
           "check_logfile", "log_file_refusal", "parse_guid_spec", "flags_argument", "level_argument", "SessionError",
           "UsageError", "live_problem", "runtime_directory_refusal", "check_settings", "SETTINGS",
           "LONG_OPTIONS"]

ACTIONS = ("start", "stop", "flush", "query", "update", "enable", "disable", "list")

# What ERROR_BUSY from the registry lock means to a person (each busy message ends with it).
_REGISTRY_HELD = ("a process holding this user's session registry locked is stopped (under a debugger?); "
                  "try again")


class SessionError(Exception):
    """A one-line message for people (the CLI prints it and exits 1)."""


class UsageError(SessionError):
    """The command line itself is wrong (the CLI prints it as a SessionError, exit status 2),
    whatever the sessions are."""


def _in_range(text: str, what: str, highest: int) -> int:
    """A number (0x... too) from 0 to ``highest``, else the option's one-line error."""
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is not a number") from None
    if not 0 <= value <= highest:
        raise argparse.ArgumentTypeError(f"{what} {text!r} is outside 0..{highest:#x}")
    return value


def flags_argument(text: str) -> int:
    """Enable flags as an option gives them: EnableFlags is a ULONG (32 bits)."""
    return _in_range(text, "flags", 0xFFFFFFFF)


def level_argument(text: str) -> int:
    """An enable level as an option gives it: EnableLevel is a UCHAR (8 bits)."""
    return _in_range(text, "level", 0xFF)


def parse_guid_spec(text: str) -> tuple[uuid.UUID, int | None, int | None]:
    """GUID[:FLAGS[:LEVEL]] (braces around the GUID allowed; ``*Name`` for the control GUID ETW
    derives from provider name Name), flags and level in range."""
    parts = text.split(":")
    if len(parts) > 3:
        raise argparse.ArgumentTypeError(f"{text!r}: expected GUID[:FLAGS[:LEVEL]]")
    if parts[0].strip().startswith("*"):
        name = parts[0].strip()[1:]
        if not name.strip():
            raise argparse.ArgumentTypeError(f"{text!r}: expected a provider name after '*'")
        from wpptrace.provider.tracing_sites import etw_name_guid   # (its imports only when asked)
        guid = etw_name_guid(name)
    else:
        try:
            guid = uuid.UUID(parts[0].strip().strip("{}"))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    flags = flags_argument(parts[1]) if len(parts) > 1 and parts[1] else None
    level = level_argument(parts[2]) if len(parts) > 2 and parts[2] else None
    return guid, flags, level


def check_name(name: str) -> str:
    """A session name as StartTrace takes it: 1..1023 bytes of UTF-8, no control characters."""
    raw = name.encode("utf-8", "surrogateescape")
    if not name or len(raw) >= 1024 or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise SessionError(f"invalid session name {name!r}: 1 to 1023 bytes without control characters")
    return name


def check_logfile(path: str) -> str:
    """An absolute .etl path whose directory exists (the host process does not share our cwd)."""
    if not path or "\0" in path:
        raise SessionError(f"invalid log file name {path!r}")
    full = os.path.abspath(path)
    if os.path.isdir(full):
        raise SessionError(f"{path}: is a directory, not a log file")
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise SessionError(f"{path}: {no_directory(parent)}")
    if len(full.encode("utf-8", "surrogateescape")) >= 4096:
        raise SessionError(f"{path}: path too long")
    return full


#: StartTrace and UPDATE codes that refuse the log file itself (log_file_refusal says why)
LOG_FILE_REFUSALS = frozenset((lib.ERROR_BAD_PATHNAME, lib.ERROR_ACCESS_DENIED, lib.ERROR_SHARING_VIOLATION))


def log_file_refusal(path: str, exc: Win32Error) -> str:
    """Why the core would not take ``path`` as the log file, one line: the rule that refused it,
    as the core says it (its walk of the path, links followed as it follows them). A file held
    locked (ERROR_SHARING_VIOLATION) is said to be the running session's that writes it, if one
    does, else another process's: the lock is all the core sees."""
    if exc.winerror == lib.ERROR_SHARING_VIOLATION:
        writer = _session_writing(path)
        if writer is not None:
            return (f"{path}: session {writer[0]!r} writes this log file ({exc.name}); stop it or "
                    f"give another file")
        return (f"{path}: another process holds this log file locked ({exc.name}), no running "
                f"session writes it; give another file")
    why = sessions.log_path_refusal(path)
    if not why:
        return f"{path}: cannot create the log file ({exc.name})"
    return f"{path}: cannot use it as the log file ({exc.name}): {why}"


def _session_writing(path: str) -> "tuple[str, str] | None":
    """The running session whose log file ``path`` is (by any name): its name and its file's
    name; None if none is, or the sessions cannot be listed now."""
    try:
        for props, _ in sessions.list_sessions():
            own = props.LogFileName
            with contextlib.suppress(OSError):
                if own and os.path.samefile(own, path):
                    return props.LoggerName, own
    except Exception:  # noqa: BLE001 - only the words of a refusal depend on it
        return None
    return None


def _refused_access(exc: BaseException) -> str | None:
    """ERROR_ACCESS_DENIED as the core's refusal of the runtime directory: why, in words; None
    if ``exc`` is another error or the directory is usable."""
    if getattr(exc, "winerror", None) != lib.ERROR_ACCESS_DENIED:
        return None
    refused = runtime_directory_refusal()
    return None if refused is None else f"{refused} (ERROR_ACCESS_DENIED)"


def live_problem(name: str, exc: BaseException) -> str:
    """Why the live view of session ``name`` (fmt --rt, relay) could not start, and what to
    do about it."""
    refused = _refused_access(exc)
    if refused is not None:
        return f"real-time session {name!r}: {refused}"
    if getattr(exc, "winerror", None) == lib.ERROR_WMI_INSTANCE_NOT_FOUND:
        import shlex

        return (f"real-time session {name!r}: no session of this user by that name delivers in "
                f"real time (ERROR_WMI_INSTANCE_NOT_FOUND); start one with "
                f"'wpptrace session start {shlex.quote(name)} --realtime'")
    return f"real-time session {name!r}: {reason(exc)}"


def check_runtime_directory() -> None:
    """SessionError unless this user's runtime directory is usable (private to the user)."""
    refused = runtime_directory_refusal()
    if refused is not None:
        raise SessionError(refused)


def _registry_refused() -> str | None:
    """The runtime directory's refusal (its registry's included) if the directory is there (a
    registry the core cannot read is taken for no session by lookups and listings); None if it
    is usable or not made yet (nothing runs: nothing is made to find out)."""
    if not os.path.lexists(runtime_directory.location()):
        return None
    return runtime_directory_refusal()


def _describe(exc: Win32Error, name: str) -> str:
    if exc.winerror == lib.ERROR_WMI_INSTANCE_NOT_FOUND:
        refused = _registry_refused()
        if refused is not None:
            return refused
        return f"no session named {name!r} is running"
    if exc.winerror == lib.ERROR_ALREADY_EXISTS:
        return f"a session named {name!r} is already running"
    if exc.winerror == lib.ERROR_BUSY:
        return f"session {name!r} is busy: its host process did not answer in time, or {_REGISTRY_HELD}"
    if exc.winerror == lib.ERROR_ACCESS_DENIED:
        refused = _refused_access(exc)
        if refused is not None:
            return refused
        return (f"{exc.name}: access denied (is the runtime directory {runtime_directory.location()} "
                f"private to this user?)")
    if exc.winerror in (lib.ERROR_BAD_PATHNAME, lib.ERROR_BAD_FORMAT):   # the runtime directory or its registry
        refused = runtime_directory.refusal()
        if refused is not None:
            return f"{exc.name}: {refused}"
    if exc.winerror == lib.ERROR_TOO_MANY_OPEN_FILES:
        return f"{exc.name}: no file descriptor left (this process's limit, ulimit -n, or the system's)"
    return in_words(exc)


# -- commands --------------------------------------------------------------------------------

#: the session settings each command takes, their unit and the most each may be (0: the
#: default); the rest of the rules (buffers by size, circular size by buffers) the core says
SETTINGS = (("buffer_size", "KB", lib.MAX_ETW_BUFFER_SIZE_KB), ("min_buffers", "buffers", 0xFFFFFFFF),
            ("max_buffers", "buffers", 0xFFFFFFFF), ("flush_timer", "seconds", 0xFFFFFFFF),
            ("circular", "MB", 0xFFFFFFFF), ("max_file", "MB", 0xFFFFFFFF))
#: how ``wpptrace session start``, ``update`` and ``record`` spell them
LONG_OPTIONS = {"buffer_size": "--buffer-size", "min_buffers": "--min-buffers", "max_buffers": "--max-buffers",
                "flush_timer": "--flush-timer", "circular": "--circular", "max_file": "--sequential"}


def check_settings(values: dict[str, int], options: dict[str, str]) -> None:
    """UsageError naming the option (``options``: a setting's spelling) of the first of
    ``values`` (SETTINGS' names) out of its range, and the range."""
    for setting, unit, most in SETTINGS:
        value = values.get(setting)
        if value is not None and not 0 <= value <= most:
            raise UsageError(f"{options.get(setting, setting)} {value}: expected 0 to {most} {unit}")


def start(name: str, logfile: str | None, *, realtime: bool = False, circular: int = 0,
          max_file: int = 0, buffer_size: int = 64, min_buffers: int = 0, max_buffers: int = 0,
          flush_timer: int = 1, clock: int = 1,
          options: dict[str, str] = LONG_OPTIONS) -> api.EVENT_TRACE_PROPERTIES:
    """StartTrace for a session that runs on in its host process until stopped. ``options``:
    how the command spells each setting, for the error of one out of range."""
    check_settings({"buffer_size": buffer_size, "min_buffers": min_buffers, "max_buffers": max_buffers,
                    "flush_timer": flush_timer, "circular": circular, "max_file": max_file}, options)
    check_name(name)
    if logfile is None and not realtime:
        raise UsageError("give a log file (-f) or real-time delivery (--realtime), or both")
    if circular and logfile is None:
        raise UsageError("a circular session needs a log file (-f)")
    check_runtime_directory()
    mode = 0
    if logfile is not None:
        logfile = check_logfile(logfile)
        mode |= lib.EVENT_TRACE_FILE_MODE_CIRCULAR if circular else lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
    if realtime:
        mode |= lib.EVENT_TRACE_REAL_TIME_MODE
    props = api.EVENT_TRACE_PROPERTIES(BufferSize=buffer_size, MinimumBuffers=min_buffers,
                                       MaximumBuffers=max_buffers, FlushTimer=flush_timer,
                                       MaximumFileSize=circular or max_file,
                                       LogFileMode=mode | lib.EVENT_TRACE_USE_GLOBAL_SEQUENCE,
                                       LogFileName=logfile, ClientContext=clock)
    try:
        api.StartTrace(name, props)
    except Win32Error as exc:
        if exc.winerror in LOG_FILE_REFUSALS and logfile:
            raise SessionError(log_file_refusal(logfile, exc)) from None
        if exc.winerror == lib.ERROR_INVALID_PARAMETER:
            raise SessionError(f"invalid session settings ({exc.name}): buffer size 1..16384 KB, "
                               f"at most 65536 buffers and 4 GiB of buffers, circular size >= "
                               f"2 buffers") from None
        raise SessionError(_describe(exc, name)) from None
    return props


def _handle(name: str) -> int:
    """The running session's handle (SessionError if there is none)."""
    try:
        return api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY).HistoricalContext
    except Win32Error as exc:
        raise SessionError(_describe(exc, name)) from None


def _holders(guids: set[uuid.UUID]) -> dict[uuid.UUID, sessions.GuidHolder]:
    """Which session holds each of ``guids`` now (a GUID none holds is not in it), with its
    handle (its generation in it, so a session gone meanwhile is refused, never another one at
    its LoggerId), name, flags and level: from the registry alone, so a provider process that
    does not answer (stopped, under a debugger) holds up nothing."""
    try:
        return sessions.guid_holders(guids)
    except Win32Error as exc:
        raise _cannot_list("enabled providers", exc) from None


def enable(name: str, guids: Iterable[tuple[uuid.UUID, int | None, int | None]], flags: int,
           level: int, on: bool = True, *, say: Callable[[str], object], handle: int | None = None) -> list[str]:
    """EnableTrace (``on``) or disable of each GUID on session ``name``, all or none: a failure
    (Ctrl-C too) puts back what this command changed (a GUID it enabled is disabled again, one it
    took from another session or held at other flags or level is given back as it was, one it
    disabled is enabled again), so a failing command leaves nothing half done. What another
    command changed meanwhile is left as it set it, and said. If putting back fails too, one
    SessionError says both (after Ctrl-C, ``say`` tells what could not be put back and the
    interrupt goes on). ``handle``: the session's, when the caller has it (else asked by name)."""
    if handle is None:
        handle = _handle(name)
    wanted = [(guid, flags if f is None else f, level if lvl is None else lvl) for guid, f, lvl in guids]
    before = _holders({guid for guid, _, _ in wanted})
    done: list[str] = []
    # in order, each once, with the flags and level set last (the failing one too: it may be recorded)
    tried: dict[uuid.UUID, tuple[int, int]] = {}
    ended = False
    try:
        for guid, f, lvl in wanted:
            tried[guid] = (f, lvl)
            try:
                api.EnableTrace(on, f, lvl, guid, handle)
            except Win32Error as exc:
                ended = exc.winerror == lib.ERROR_INVALID_HANDLE and _ended(handle)
                said = f"session {name!r} ended meanwhile" if ended else _describe(exc, name)
                raise SessionError(f"{'enable' if on else 'disable'} {guid}: {said}") from None
            done.append(f"{'enabled' if on else 'disabled'} {{{guid}}}" + (f" flags 0x{f:X} level {lvl}" if on else ""))
    except BaseException as cause:
        _undo_after(cause, lambda: "; ".join(_put_back(name, handle, reversed(tried.items()), before, on, ended)),
                    say)
    return done


def _holding(held: sessions.GuidHolder | None) -> str:
    """Who holds a GUID, in words."""
    if held is None:
        return "no session holds it"
    return f"session {held.name!r} holds it at flags 0x{held.flags:X} level {held.level}"


def _same(a: sessions.GuidHolder | None, b: sessions.GuidHolder | None) -> bool:
    """The same session holding a GUID at the same flags and level (or none, both), as the C
    core's conditional enable compares them: the session by LoggerId, generation and registry
    incarnation, not by handle (0 for any session whose handle names one of ours here)."""
    def holding(h: sessions.GuidHolder | None) -> tuple[int, ...] | None:
        return None if h is None else (h.logger_id, h.generation, h.incarnation, h.flags, h.level)
    return holding(a) == holding(b)


def _stands(now: sessions.GuidHolder | None, handle: int, flags: int, level: int) -> bool:
    """Does the registry still show a GUID as an enable on session ``handle`` set it?"""
    return now is not None and (now.handle, now.flags, now.level) == (handle, flags, level)


def _ended(handle: int) -> bool:
    """Has the session ``handle`` names ended (stopped, its host gone)?"""
    try:
        api.ControlTrace(handle, None, None, lib.EVENT_TRACE_CONTROL_QUERY)
    except Win32Error as exc:
        return exc.winerror in (lib.ERROR_INVALID_HANDLE, lib.ERROR_WMI_INSTANCE_NOT_FOUND)
    return False


def _put_back(name: str, handle: int, tried: Iterable[tuple[uuid.UUID, tuple[int, int]]],
              before: dict[uuid.UUID, sessions.GuidHolder], on: bool, ended: bool = False) -> list[str]:
    """Give each GUID ``tried`` (at the flags and level this command set) back the holder it had
    ``before``, only where the registry still shows what this command set (checked and changed
    in one hold of its lock): what another command changed meanwhile stays. What was not put
    back, in words (empty: all was). A session that ended (``ended``: known to, and said by the
    failure already) had what this command changed on it end with it: that is said once, and
    nothing of it is put back."""
    def changed_here(guid: uuid.UUID, f: int, lvl: int) -> bool:
        """Could this command have changed ``guid``? A disable changes only one this session
        held; an enable any but one this session held at these flags and level already."""
        held = before.get(guid)
        if held is None or held.handle != handle:
            return on
        return not on or (held.flags, held.level) != (f, lvl)

    tried = [(guid, f, lvl) for guid, (f, lvl) in tried if changed_here(guid, f, lvl)]
    said_ended = ended                # the failure said it already
    if not tried:
        return []
    try:
        now = _holders({guid for guid, _, _ in tried})
    except SessionError as exc:
        return [f"undoing this command failed too: {exc}"]
    if on and not ended and any(not _same(now.get(guid), before.get(guid)) and not _stands(now.get(guid), handle, f, lvl)
                                for guid, f, lvl in tried) and _ended(handle):
        ended = True                  # what it enabled is no one's once it ended
    failed, kept = [], []
    for guid, f, lvl in tried:
        held = before.get(guid)
        ours = held is None or held.handle == handle
        if ended and ours:
            continue                  # ended with the session
        expected = None               # disabled (by this command, or as its session ended)
        if on and not ended:
            expected = now.get(guid)
            if not _stands(expected, handle, f, lvl):
                if not _same(expected, held):     # else never changed (a failure not recorded)
                    kept.append(f"{{{guid}}} ({_holding(expected)})")
                continue
        try:
            if held is None:
                applied, found = sessions.enable_trace_if(False, 0, 0, guid, handle, expected)
            else:
                applied, found = sessions.enable_trace_if(True, held.flags, held.level, guid, held.handle, expected)
        except Win32Error as exc:
            if exc.winerror == lib.ERROR_INVALID_HANDLE and ours:
                ended = True
            elif exc.winerror == lib.ERROR_INVALID_HANDLE:
                failed.append(f"{{{guid}}} could not be given back to session {held.name!r}: it ended meanwhile")
            elif held is None:
                failed.append(f"{{{guid}}} is still enabled on session {name!r} ({_describe(exc, name)})")
            elif held.handle == handle:
                failed.append(f"{{{guid}}} could not get back flags 0x{held.flags:X} level {held.level} on "
                              f"session {name!r} ({_describe(exc, name)})")
            else:
                failed.append(f"{{{guid}}} could not be given back to session {held.name!r} "
                              f"({_describe(exc, held.name)})")
            continue
        if not applied and not _same(found, held):
            kept.append(f"{{{guid}}} ({_holding(found)})")
    left = [f"session {name!r} ended meanwhile"] if ended and not said_ended else []
    if failed:
        left.append(f"undoing this command failed too: {'; '.join(failed)}")
    if kept:
        left.append(f"left as another command set it meanwhile: {', '.join(kept)}")
    return left


@contextlib.contextmanager
def stopped_if_failing(name: str, say: Callable[[str], object]) -> Iterator[None]:
    """Around what follows a session's start: a failure there (Ctrl-C too) stops the session
    again, so a failing command leaves nothing half done (see _undo_after)."""
    def stopped() -> str:
        try:
            stop(name)
        except SessionError as exc:
            return f"session {name!r} was started but could not be stopped again: {exc}"
        return ""
    try:
        yield
    except BaseException as cause:
        _undo_after(cause, stopped, say)


def _undo_after(cause: BaseException, undo: Callable[[], str], say: Callable[[str], object]) -> NoReturn:
    """``cause`` (a failure, or Ctrl-C) ends a command: ``undo()`` puts back what it changed and
    returns what it could not, in words ("": all). A Ctrl-C meanwhile waits until it is done
    (the handler is this one's while it runs), so a second one does not cut the undoing short.
    Then, after Ctrl-C (the first, or one that came meanwhile), ``say`` tells in one line what
    was left (and the failure, if one came first) and the interrupt goes on (exit 130); after a
    failure, one SessionError says it and what was left."""
    came: list = []                 # a Ctrl-C while undoing: its frame, passed on after
    held = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is not None)      # (None: not set from Python)
    old = signal.signal(signal.SIGINT, lambda signum, frame: came.append(frame)) if held else None
    try:
        left = undo()
    finally:
        if held:
            signal.signal(signal.SIGINT, old)
    failed = isinstance(cause, Exception)
    said = cause.strerror if isinstance(cause, Win32Error) else str(cause)
    interrupted = bool(came) and callable(old)
    if interrupted and failed:
        say(f"{said}; {left}" if left else said)
    elif left and not failed:
        say(left)
    if interrupted:
        old(signal.SIGINT, came[0])     # the interrupt goes on (default_int_handler raises it)
    if failed and left:
        raise SessionError(f"{said}; {left}") from None
    raise cause


def stop(name: str) -> tuple[api.EVENT_TRACE_PROPERTIES | None, str]:
    """(final properties, message); properties None when the host was gone (cleaned up)."""
    check_name(name)
    try:
        info = sessions.session_info(name)
    except Win32Error as exc:
        if exc.winerror != lib.ERROR_BUSY:       # a busy host is alive: STOP waits longer
            raise SessionError(_describe(exc, name)) from None
        info = None
    try:
        final = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_STOP)
    except Win32Error as exc:
        final = getattr(exc, "properties", None)
        if final is not None:            # stopped, but its log file could not be completed
            lost = (f"{final.LogBuffersLost} buffers could not be written" if final.LogBuffersLost
                    else "it could not be finished")
            raise SessionError(f"session {name!r} stopped, but its log file {final.LogFileName} is "
                               f"incomplete: {lost}. {in_words(exc)}") from None
        if exc.winerror == lib.ERROR_BUSY:
            # STOP answers once the file is flushed to the disk, which a slow disk may make
            # longer than the wait for the answer: the session ends all the same
            raise SessionError(f"session {name!r} is stopping, but its host process did not answer in time: "
                               f"it may still be flushing its log file to the disk (a slow disk), and the "
                               f"session ends once that is done ('wpptrace session list' shows whether it "
                               f"still runs); or {_REGISTRY_HELD}") from None
        # STOP found its host gone and cleaned up after it (said by the STOP itself: a session
        # found running before that another STOP stopped cleanly meanwhile is just not there)
        if getattr(exc, "host_gone", False):
            host = f" {info.host_pid}" if info is not None else ""
            return None, (f"session {name!r}: its host process{host} is gone (killed?); "
                          f"cleaned up. Its log file holds what was flushed before, and says it "
                          f"was not stopped cleanly.")
        raise SessionError(_describe(exc, name)) from None
    where = final.LogFileName or "real time only"
    return final, (f"session {name!r} stopped: {where}: {final.BuffersWritten} buffers written, "
                   f"{final.EventsLost} events lost, {final.LogBuffersLost} log buffers lost, "
                   f"{final.RealTimeBuffersLost} real-time buffers lost")


_MODES = [(lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL, "Sequential"), (lib.EVENT_TRACE_FILE_MODE_CIRCULAR, "Circular"),
          (lib.EVENT_TRACE_REAL_TIME_MODE, "Real Time"), (lib.EVENT_TRACE_BUFFERING_MODE, "Buffering"),
          (lib.EVENT_TRACE_PRIVATE_LOGGER_MODE, "Private")]
_CLOCKS = {1: "PerfCounter", 2: "SystemTime", 3: "CpuCycle"}


def query_text(props: api.EVENT_TRACE_PROPERTIES, info: sessions.SessionInfo | None,
               providers: list[sessions.ProviderInfo]) -> list[str]:
    """What tracelog -q prints, and who holds which provider."""
    mode = " ".join(label for bit, label in _MODES if props.LogFileMode & bit) or "none"
    unit = "Kb" if props.LogFileMode & lib.EVENT_TRACE_USE_KBYTES_FOR_SIZE else "Mb"
    ms = props.LogFileMode & lib.EVENT_TRACE_USE_MS_FLUSH_TIMER
    rows = [
        ("Logger Name", props.LoggerName),
        ("Logger Id", f"0x{props.HistoricalContext & 0xFFFF:x}"),
        ("Logger Thread Id", f"{props.LoggerThreadId:016X}"),
        ("Buffer Size", f"{props.BufferSize} Kb"),
        ("Maximum Buffers", props.MaximumBuffers),
        ("Minimum Buffers", props.MinimumBuffers),
        ("Number of Buffers", props.NumberOfBuffers),
        ("Free Buffers", props.FreeBuffers),
        ("Buffers Written", props.BuffersWritten),
        ("Events Lost", props.EventsLost),
        ("Log Buffers Lost", props.LogBuffersLost),
        ("Real Time Buffers Lost", props.RealTimeBuffersLost),
        ("AgeLimit", props.AgeLimit),
        ("Real Time Consumers", info.realtime_consumers if info else 0),
        ("ClockType", _CLOCKS.get(props.ClientContext, str(props.ClientContext))),
        ("Log Mode", mode),
        ("Maximum File Size", f"{props.MaximumFileSize} {unit}" if props.MaximumFileSize else "not set"),
        ("Buffer Flush Timer", (f"{props.FlushTimer} {'ms' if ms else 'secs'}") if props.FlushTimer else "not set"),
        ("Log Filename", props.LogFileName or ""),
    ]
    if info is not None:
        rows += [("Host Process Id", info.host_pid), ("Records Abandoned", info.records_abandoned),
                 ("Buffers Quarantined", info.buffers_quarantined)]
    lines = [f"{label + ':':<24}{value}" for label, value in rows]
    logger_id = props.HistoricalContext & 0xFFFF
    mine = [p for p in providers if p.enabled and p.logger_id == logger_id]
    lines.append(f"{'Enabled Providers:':<24}{len(mine)}")
    for p in mine:
        lines.append(f"    {{{p.guid}}}  Flags 0x{p.flags:08X}  Level {p.level}  "
                     f"registered in {p.processes} process{'es' if p.processes != 1 else ''}")
    return lines


def _providers() -> list[sessions.ProviderInfo]:
    """sessions.providers, a failure (the registry or a provider process that cannot be asked
    here) said as a SessionError."""
    try:
        return sessions.providers()
    except Win32Error as exc:
        raise _cannot_list("providers", exc) from None


def _cannot_list(what: str, exc: Win32Error) -> SessionError:
    """A listing of ``what`` that failed, in words (a busy registry: try again)."""
    if exc.winerror == lib.ERROR_BUSY:
        return SessionError(f"cannot list {what} now: {_REGISTRY_HELD}")
    return SessionError(f"cannot list {what}: {_describe(exc, '')}")


def query(name: str) -> list[str]:
    check_name(name)
    try:
        props = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY)
        info = sessions.session_info(name)
    except Win32Error as exc:
        raise SessionError(_describe(exc, name)) from None
    return query_text(props, info, _providers())


def listed_text(props: api.EVENT_TRACE_PROPERTIES, info: sessions.SessionInfo | None,
                providers: list[sessions.ProviderInfo]) -> list[str]:
    """query_text of a running session. One whose host did not answer in time (``info.busy``)
    was listed from what the registry holds: a line under it says its counters are not known
    (rather than show its zeros as counts)."""
    if info is not None and info.busy:
        return query_text(props, None, providers) + [
            f"{'Host:':<24}did not answer in time (busy): its counters are not known"]
    return query_text(props, info, providers)


def shown_text(props: api.EVENT_TRACE_PROPERTIES) -> list[str]:
    """listed_text of a session just queried: its session info asked for (none if it stopped
    meanwhile)."""
    try:
        info = sessions.session_info(props.LoggerName)
    except Win32Error as exc:
        info = None
        if exc.winerror == lib.ERROR_BUSY:
            info = sessions.SessionInfo(props.HistoricalContext & 0xFFFF, 0, False, False, 0, 0, 0, busy=True)
    return listed_text(props, info, _providers())


def listed(providers: list[sessions.ProviderInfo] | None = None) -> list[str]:
    """Every running session as listed_text shows it, a blank line after each (each host asked
    once)."""
    if providers is None:
        providers = _providers()
    try:
        found = sessions.list_sessions()
    except Win32Error as exc:
        raise _cannot_list("sessions", exc) from None
    if not found and not providers:
        refused = _registry_refused()        # unreadable, not empty: never "no session is running"
        if refused is not None:
            raise SessionError(refused)
    lines: list[str] = []
    for props, info in found:
        lines += listed_text(props, info, providers) + [""]
    return lines


def listing() -> list[str]:
    providers = _providers()
    lines = listed(providers)
    for p in providers:
        if not p.enabled:
            lines.append(f"Provider {{{p.guid}}}: registered in {p.processes} process"
                         f"{'es' if p.processes != 1 else ''}, not enabled")
    return lines


def flush(name: str) -> list[str]:
    check_name(name)
    try:
        props = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_FLUSH)
    except Win32Error as exc:
        raise SessionError(_describe(exc, name)) from None
    return [f"session {name!r} flushed: {props.BuffersWritten} buffers written, {props.EventsLost} events lost"]


def update(name: str, flush_timer: int | None, max_buffers: int | None, logfile: str | None,
           replacing: "Callable[[str], None] | None" = None,
           options: dict[str, str] = LONG_OPTIONS) -> list[str]:
    """Change a running session's settings; ``replacing(path)`` is called once the session
    switched to a log file that existed (replaced, as tracelog does). ``options``: how the
    command spells each setting, for the error of one out of range."""
    check_settings({"flush_timer": flush_timer, "max_buffers": max_buffers}, options)
    check_name(name)
    try:
        props = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY)
    except Win32Error as exc:
        raise SessionError(_describe(exc, name)) from None
    if flush_timer is not None:
        props.FlushTimer = flush_timer
    if max_buffers is not None:
        props.MaximumBuffers = max_buffers
    old_logfile = new_logfile = props.LogFileName
    existed = False
    if logfile is not None:
        props.LogFileName = new_logfile = check_logfile(logfile)
        existed = os.path.isfile(new_logfile)
    try:
        # a file that existed is replaced only if the session switched to it: naming the
        # session's own file (renamed, or by a link) is no switch
        props, switched = api.update_trace(0, name, props)
    except Win32Error as exc:
        old_failed, new_failed = getattr(exc, "old_file_error", None), getattr(exc, "new_file_error", None)
        if new_failed is not None:
            # switched to no file: the old one finished (or not), the new one never started
            old_said = (f"is incomplete ({in_words(old_failed)})" if old_failed is not None
                        else "was completed")
            log = sessions.host_log_path(exc.properties.HistoricalContext & 0xFFFF)
            raise SessionError(f"session {name!r}: its previous log file {old_logfile} {old_said}, "
                               f"{'and' if old_failed is not None else 'but'} the new log file "
                               f"{new_logfile} could not be started ({in_words(new_failed)}); the "
                               f"session writes no file now{f' (its host log: {log})' if log else ''}") from None
        if old_failed is not None:    # switched, the old file incomplete
            raise SessionError(f"session {name!r} updated (log file {exc.properties.LogFileName or '(none)'}), "
                               f"but its previous log file {old_logfile} is incomplete. "
                               f"{in_words(old_failed)}") from None
        if exc.winerror == lib.ERROR_INVALID_PARAMETER:
            raise SessionError(f"session {name!r}: cannot update to these settings ({exc.name})") from None
        if exc.winerror in LOG_FILE_REFUSALS and logfile:
            raise SessionError(log_file_refusal(logfile, exc)) from None
        raise SessionError(_describe(exc, name)) from None
    if existed and switched and replacing is not None:      # (a failed update replaced nothing)
        replacing(new_logfile)
    return [f"session {name!r} updated: flush timer {props.FlushTimer}, maximum buffers "
            f"{props.MaximumBuffers}, log file {props.LogFileName or '(none)'}"]


# -- argparse ----------------------------------------------------------------------------------

def _name(text: str) -> str:
    try:
        return check_name(text)
    except SessionError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_subcommands(sub) -> None:
    """Add start/stop/... to the ``wpptrace session`` subparsers."""
    st = sub.add_parser("start", help="start a session that runs until stopped",
                        description="Start a session in a host process of its own; it runs on after "
                                    "this command until 'wpptrace session stop NAME'.")
    st.add_argument("name", type=_name, help="session name")
    st.add_argument("-f", "--file", dest="logfile", metavar="FILE",
                    help="the .etl file to write (an existing FILE is replaced, as tracelog does; "
                         "give another name to keep it)")
    _guid_options(st, required=False)
    st.add_argument("--buffer-size", type=int, default=64, metavar="KB", help="buffer size (default: 64)")
    st.add_argument("--min-buffers", type=int, default=0, metavar="N", help="buffers allocated up front")
    st.add_argument("--max-buffers", type=int, default=0, metavar="N",
                    help="buffer pool limit (default: minimum + 20); a full pool drops events, counted")
    st.add_argument("--flush-timer", type=int, default=1, metavar="SECONDS",
                    help="write partly filled buffers this often (default: 1; 0: only full ones, "
                         "but a real-time session (--realtime) still flushes every second)")
    kind = st.add_mutually_exclusive_group()
    kind.add_argument("--circular", type=int, default=0, metavar="MB", help="circular file of this size")
    kind.add_argument("--sequential", type=int, nargs="?", const=0, default=None, metavar="MB",
                      help="sequential file (the default), at most MB if given")
    st.add_argument("--realtime", action="store_true",
                    help="deliver buffers to live consumers (wpptrace fmt --rt NAME)")
    st.add_argument("--clock", type=int, choices=(1, 2, 3), default=1,
                    help="1 performance counter, 2 system time, 3 CPU cycles")

    for action, text in (("stop", "stop a session (its providers are disabled, its file finished)"),
                         ("flush", "write the session's partly filled buffers now"),
                         ("query", "show a session's settings, counters and enabled providers")):
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("name", type=_name, help="session name")
    up = sub.add_parser("update", help="change a running session's flush timer, buffers or file",
                        description="Change settings of a running session: how often partly filled "
                                    "buffers are written, how many buffers it may use, or the .etl "
                                    "file it writes to (the current file is finished first). "
                                    "Settings not given stay as they are.")
    up.add_argument("name", type=_name, help="session name")
    up.add_argument("--flush-timer", type=int, metavar="SECONDS",
                    help="write partly filled buffers this often (0: only full ones, but a "
                         "real-time session still flushes every second; milliseconds for a "
                         "session started with EVENT_TRACE_USE_MS_FLUSH_TIMER, which query "
                         "shows in ms)")
    up.add_argument("--max-buffers", type=int, metavar="N", help="raise the buffer pool limit")
    up.add_argument("-f", "--file", dest="logfile", metavar="FILE", help="continue in a new .etl file (an existing FILE is replaced, as tracelog does)")
    en = sub.add_parser("enable", help="enable providers (in every process) on a session",
                        description="Enable providers on a running session: every process that "
                                    "registers one of these control GUIDs, now or later, logs its "
                                    "events to the session at the flags and level given. If one "
                                    "fails, what this command changed is put back.")
    en.add_argument("name", type=_name, help="session name")
    _guid_options(en, required=True)
    dis = sub.add_parser("disable", help="disable providers the session holds",
                         description="Disable providers on a running session: processes stop "
                                     "logging events of these control GUIDs to it. Other sessions "
                                     "that enabled them keep them. If one fails, what this command "
                                     "disabled is enabled again.")
    dis.add_argument("name", type=_name, help="session name")
    dis.add_argument("--guid", action="append", type=parse_guid_spec, required=True, metavar="GUID",
                     help="control GUID (repeatable)")
    sub.add_parser("list", help="every session of this user, and registered providers",
                   description="Every session of this user (as 'query' shows it), and providers "
                               "registered but not enabled.")


def _guid_options(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument("--guid", action="append", type=parse_guid_spec, default=[], required=required,
                        metavar="GUID[:FLAGS[:LEVEL]]",
                        help="control GUID to enable, or *Name for provider Name's (repeatable)")
    parser.add_argument("--flags", type=flags_argument, default=0xFFFFFFFF, help="enable flags (default: all)")
    parser.add_argument("--level", type=level_argument, default=lib.TRACE_LEVEL_VERBOSE,
                        help="enable level (default: 5, verbose)")


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    action = args.session_command

    def say(line: str) -> None:
        print(f"wpptrace session {action}: error: {line}", file=err)
    try:
        if action == "start":
            sequential_max = args.sequential or 0
            # (said once the start succeeded: a start that failed replaced nothing)
            replacing = args.logfile is not None and os.path.isfile(args.logfile)
            props = start(args.name, args.logfile, realtime=args.realtime, circular=args.circular,
                          max_file=sequential_max, buffer_size=args.buffer_size,
                          min_buffers=args.min_buffers, max_buffers=args.max_buffers,
                          flush_timer=args.flush_timer, clock=args.clock)
            if replacing:
                print(f"wpptrace session start: replacing existing {props.LogFileName}", file=err)
            with stopped_if_failing(args.name, say):
                try:
                    info = sessions.session_info(args.name)
                except Win32Error as exc:
                    raise SessionError(_describe(exc, args.name)) from None
                print(f"session {args.name!r} started: LoggerId 0x{info.logger_id:x}, host process "
                      f"{info.host_pid}, {props.LogFileName or 'real time only'}", file=out)
                lines = enable(args.name, args.guid, args.flags, args.level, say=say) if args.guid else []
        elif action == "stop":
            final, message = stop(args.name)
            print(message, file=out if final is not None else err)
            return 0 if final is not None else 1
        elif action == "enable":
            lines = enable(args.name, args.guid, args.flags, args.level, say=say)
        elif action == "disable":
            lines = enable(args.name, args.guid, 0, 0, on=False, say=say)
        elif action == "query":
            lines = query(args.name)
        elif action == "flush":
            lines = flush(args.name)
        elif action == "update":
            lines = update(args.name, args.flush_timer, args.max_buffers, args.logfile,
                           replacing=lambda path: print(f"wpptrace session update: replacing existing "
                                                        f"{path}", file=err))
        else:
            lines = listing() or ["no session is running"]
    except SessionError as exc:
        print(f"wpptrace session {action}: error: {exc}", file=err)
        return 2 if isinstance(exc, UsageError) else 1
    for line in lines:
        print(line, file=out)
    return 0
