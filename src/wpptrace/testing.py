"""Round-trip tests: log through real providers, get the messages back decoded.

::

    from wpptrace.testing import capture

    with capture(trace) as cap:              # a Provider, a WppHandler, or a control GUID
        app.copy("a.txt")
    cap.assert_logged("read %d bytes", 42)
    assert cap.messages[0].args["n"] == 42

``capture`` starts a session of its own (an ``.etl`` file in a private temporary folder),
enables the providers, and on exit stops the session and decodes the file with the TMF
messages taken from the providers themselves: nothing to write to disk first, nothing to run
in a subprocess. Each message is a :class:`wpptrace.decoder.DecodedMessage`.

Sessions: when every target is a Python object of this process, the session is private to
the process (EVENT_TRACE_PRIVATE_LOGGER_MODE), so parallel test processes (pytest-xdist) each
see only their own events, even for the same control GUID. A control GUID given as such may
belong to another process (a C program), so it is enabled on a session every process of the
user sees; as on Windows, only one session holds a provider at a time, so two processes
capturing one control GUID at once (two pytest-xdist workers) take it from each other: what
it logs after the other took it is not in the first capture, whose ``takeovers``,
``report()`` and a :class:`CaptureWarning` say so (run such tests in one worker). Session
names are unique per process and capture, and a session is always stopped on exit (also on
KeyboardInterrupt; a control GUID's session, run by a host process, is stopped by its host when
the process that started it ends, also when it is killed).

Forked processes: a private session stays its process's own, so what a child forked during
the capture logs (multiprocessing's "fork", a pre-fork server) reaches no session: the child's
calls are dropped and counted in its own ``stats()``, not raised, even with ``strict=True``.
For code that logs from several processes, capture the control GUID, with the TMF written
first: ``trace.write_tmf(d, sources=[...])``, then ``capture(str(trace.guid), tmf=d)``.

Nesting: a capture inside another one that enables the same provider takes it over while it
runs (the one-session-per-provider rule) and gives it back on exit; the outer capture keeps
what was logged before and after.

Files: the ``.etl`` stays at ``etl_path`` while the capture object lives and is removed with
it, unless the capture was kept: on an exception in its block, on a failed ``assert_logged``,
with ``keep=True``, through the pytest plugin's ``--wpp-keep``, or when its file could not be
completed (a full or failing disk): then what the file holds is decoded and kept, and the
error (ERROR_DISK_FULL, ERROR_WRITE_FAULT) raised after, or added as a note to the block's
own exception. A kept capture is a folder
(``<keep_dir>/<name>/``) with ``trace.etl``, ``tmf/`` (one ``<guid>.tmf`` per message GUID)
and ``trace.txt`` (what ``wpptrace fmt trace.etl -p tmf`` prints), private to the user as the
``.etl`` is (folders 0700, files 0600).

A killed process: with a ``keep_dir`` (every capture of the pytest plugin has one), the
session writes in ``<keep_dir>/<name>~running/`` from the start, and writes what its buffers
hold every second (FlushTimer); a process killed while it captures (a CI timeout, ``kill -9``,
a crashed pytest-xdist worker) leaves there a ``trace.etl`` with what was logged until about a
second before. It has no ``tmf/`` (the messages were in the process): ``wpptrace tmf gen`` of
the sources makes it. A later run of the same test replaces such a folder of a dead run (only
its ``trace.etl``, held by no session), so ``<name>~running`` is the latest killed run's; one
of a run still capturing is left alone (the new run's is numbered). Only then: without a ``keep_dir`` the session writes a buffer when it is
full and when the capture ends, so its file grows with the messages (each flush would write a
whole 64 KB buffer), and a killed process's file may lack the last buffer's messages.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import glob
import hashlib
import itertools
import logging as _logging
import os
import re
import shutil
import sys
import tempfile
import threading
import uuid
import warnings
import weakref
from typing import Any, Callable, Pattern, Sequence

from wpptrace.decoder.messages import DecodedMessage, decode_file, format_file, load_tmf

__all__ = ["Capture", "CaptureAssertionError", "CaptureFactory", "CaptureWarning", "capture",
           "TRACE_LEVEL_VERBOSE", "ALL_FLAGS"]

TRACE_LEVEL_VERBOSE = 5
ALL_FLAGS = 0xFFFFFFFF

#: session buffers: 64 KB each, up to 16 MB queued before an event would be dropped (a test
#: logging 100,000 messages in a tight loop loses none while the writer thread catches up)
BUFFER_SIZE_KB = 64
MIN_BUFFERS = 4
MAX_BUFFERS = 256
#: seconds between the session's writes of what its buffers hold, for a capture with a
#: keep_dir only: a test killed while it captures (a CI timeout, a crashed worker) leaves a
#: file there with what was logged until about this long before. Each write is a whole
#: buffer: a capture without a keep_dir, whose file nobody looks for after a kill, writes its
#: buffers only as they fill, and its file grows with its messages, not with its time
FLUSH_TIMER_S = 1
#: at most this many messages are listed in an assertion failure
SHOWN_MESSAGES = 50
#: a test's capture name at most (the longest name is 120; room for a test's "~2", "~3"...)
TEST_NAME_LENGTH = 112
#: what follows a name for its second, third... capture or kept folder: a character no
#: sanitised name holds, so that ``name~2`` is never another name's first
NUMBER_SEPARATOR = "~"
#: a running capture's folder in its keep_dir is ``<name>~running``
RUNNING = "running"
#: a test's capture is kept in ``<name>~kept`` when ``<name>`` holds files of the user's
BESIDE = "kept"

_counter = itertools.count(1)
_active: list["Capture"] = []          # running captures, innermost last
_active_lock = threading.RLock()
_logging_handler = None                # the WppHandler ``logging=True`` attaches


class CaptureWarning(UserWarning):
    """Something that makes a capture miss messages without failing it (a control GUID taken
    over by another session)."""


class CaptureAssertionError(AssertionError):
    """A failed ``assert_logged``/``assert_not_logged``; its message lists the captured messages."""


class _Target:
    """One provider to enable: its control GUID, the Python objects that know its TMF."""

    def __init__(self, guid: uuid.UUID, provider: Any = None, handlers: Sequence[Any] = (),
                 local: bool = True) -> None:
        self.guid = guid
        self.provider = provider
        self.handlers = list(handlers)
        self.local = local          # a Python object of this process
        self.flags = ALL_FLAGS

    def tmf_messages(self) -> list:
        messages = []
        if self.provider is not None:
            for source in self.provider.source_files():
                messages += source.messages
        handlers = list(self.handlers)
        if self.provider is not None:
            handlers += [h for h in _wpp_handlers() if h.provider is self.provider and h not in handlers]
        for handler in handlers:
            messages += handler.messages()
        return messages


def _wpp_handlers() -> list:
    """Every live WppHandler (logging keeps a weak list of all handlers)."""
    from wpptrace.provider.logging_handler import WppHandler

    found = []
    for ref in list(getattr(_logging, "_handlerList", ())):
        handler = ref() if callable(ref) else None
        if isinstance(handler, WppHandler):
            found.append(handler)
    return found


def _target(item: Any) -> _Target:
    if isinstance(item, _Target):
        return item
    if isinstance(item, uuid.UUID):
        return _Target(item, local=False)
    if isinstance(item, str):
        try:
            return _Target(uuid.UUID(item.strip("{}")), local=False)
        except ValueError:
            raise ValueError(f"not a control GUID: {item!r}") from None
    if isinstance(item, _logging.Handler) and hasattr(item, "provider"):
        return _Target(item.provider.guid, item.provider, [item])
    if hasattr(item, "guid") and callable(getattr(item, "source_files", None)):
        return _Target(item.guid, item)
    raise TypeError(f"capture() takes Provider, WppHandler or control GUID targets, "
                    f"not {type(item).__name__}")


def _flag_mask(flags: Any, target: _Target) -> int:
    """An int mask, a flag name, or several of either, for one provider."""
    if isinstance(flags, (int, str)):
        flags = (flags,)
    mask = 0
    for flag in flags:
        if isinstance(flag, str):
            if target.provider is None:
                raise ValueError(f"flag {flag!r} given by name, but {target.guid} is a bare "
                                 f"control GUID: give its flags as a number")
            mask |= int(target.provider.flag(flag))
        else:
            mask |= int(flag)
    return mask & ALL_FLAGS


def _logging_level(trace_level: int) -> int:
    return {1: _logging.CRITICAL, 2: _logging.ERROR, 3: _logging.WARNING,
            4: _logging.INFO}.get(trace_level, _logging.DEBUG)


def _shared_logging_handler():
    """The WppHandler ``capture(logging=True)`` attaches (one per process)."""
    global _logging_handler
    if _logging_handler is None:
        from wpptrace.provider.logging_handler import WppHandler
        from wpptrace.provider.tracing import Provider

        provider = Provider("PythonLogging", flags=("LOGGING",), root=os.getcwd())
        _logging_handler = WppHandler(provider=provider)
    return _logging_handler


def _set_strict(provider: Any, strict: bool):
    """Set the provider's strict mode; returns what puts the previous one back."""
    before = provider.strict
    provider.strict = strict
    return lambda: setattr(provider, "strict", before)


class Capture:
    """A running or finished capture (see the module docstring); use it as a context manager.

    After the block: ``messages`` (``DecodedMessage`` list, in ProcessTrace order), ``lost``
    (EventsLost: events the session dropped), ``errors`` (damage skipped while reading),
    ``etl_path``, and the assertion helpers. ``kept`` is the folder of a kept capture.
    """

    def __init__(self, *targets: Any, level: int = TRACE_LEVEL_VERBOSE, flags: Any = ALL_FLAGS,
                 logging: Any = False, strict: bool = True, tmf: Any = None,
                 name: str | None = None, keep: bool = False,
                 keep_dir: "str | os.PathLike[str] | None" = None) -> None:
        self.level = int(level)
        self.strict = bool(strict)
        self.name = _safe_name(name) if name else f"capture-{os.getpid()}-{next(_counter)}"
        self.keep_requested = bool(keep)
        # (a relative folder is the working directory's when made: a test may change it)
        self.keep_dir = os.path.abspath(keep_dir) if keep_dir is not None else None
        # a name of its own (a test's capture): a kept folder of that name (a previous run's)
        # is replaced, not kept beside it under another name
        self._replace_kept = False
        #: where a CaptureFactory's caller made this capture (file, line, module's globals):
        #: the takeovers of a capture the factory stops are said there
        self._made_at: "tuple[str, int, dict] | None" = None
        self.replaced = False
        self._tmf = tmf
        self._targets = [_target(t) for t in targets]
        self._logger = None
        if logging:
            self._logger = logging if isinstance(logging, _logging.Logger) else \
                _logging.getLogger(None if logging is True else logging)
            self._targets.append(_target(_shared_logging_handler()))
        seen = set()
        for t in self._targets:
            if t.guid in seen:
                raise ValueError(f"provider {t.guid} given twice")
            seen.add(t.guid)
            t.flags = _flag_mask(flags, t)
        if not self._targets:
            raise ValueError("capture() needs at least one provider, WppHandler or control GUID "
                             "(or logging=True)")
        self.messages: list[DecodedMessage] = []
        self.lost = 0
        self.errors: list = []
        self.counters = None
        self.etl_path: str | None = None
        self.kept: str | None = None
        self.kept_problems: str | None = None
        #: control GUIDs another session held when this one stopped: GUID -> its session's
        #: name (None: no session held it any more)
        self.takeovers: dict[uuid.UUID, str | None] = {}
        self.session_name = f"wpptrace-capture-{os.getpid()}-{next(_counter)}"
        self._session = None
        self._workdir: str | None = None
        self._finalizer = None
        self._undo: list = []
        self._taken: dict[uuid.UUID, Capture] = {}
        self._tmfset = None
        self.running = self.finished = False

    # -- the session ------------------------------------------------------------------------
    def __enter__(self) -> "Capture":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc is None:
            self._stop_then_warn(stacklevel=3)          # said at the user's ``with`` line
            return
        # the block's exception goes on: a failure to stop becomes a note on it
        from wpptrace.provider.sessions import _add_note, stop_noting

        stop_noting(exc, self._stop, f"wpptrace capture {self.name}")
        if self.etl_path is not None:
            self._keep_quietly()
            if self.kept:
                _add_note(exc, self.kept_note)
        self._say_takeovers(stacklevel=3, on=exc)

    def start(self) -> None:
        """Start the session and enable the providers (``with`` does this)."""
        from wpptrace.provider import (EVENT_TRACE_FILE_MODE_SEQUENTIAL,
                                       EVENT_TRACE_PRIVATE_LOGGER_MODE)
        from wpptrace.provider.sessions import TraceSession

        if self.running or self.finished:
            raise RuntimeError("a Capture runs once: make a new one")
        self._make_workdir()
        mode = EVENT_TRACE_FILE_MODE_SEQUENTIAL
        if all(t.local for t in self._targets):
            mode |= EVENT_TRACE_PRIVATE_LOGGER_MODE
        with _active_lock:
            # a control GUID's session runs in a host process: it ends with this process
            # also when this one is killed (a hung test, a crashed worker)
            self._session = TraceSession(self.session_name, self.etl_path, LogFileMode=mode,
                                         BufferSize=BUFFER_SIZE_KB, MinimumBuffers=MIN_BUFFERS,
                                         MaximumBuffers=MAX_BUFFERS,
                                         FlushTimer=FLUSH_TIMER_S if self.keep_dir is not None else 0,
                                         ends_with_caller=True)
            self.running = True
            try:
                for target in self._targets:
                    for outer in reversed(_active):
                        if any(t.guid == target.guid for t in outer._targets):
                            self._taken[target.guid] = outer
                            break
                    self._session.enable(target.guid, target.flags, self.level)
                    if self.strict and target.provider is not None:
                        self._undo.append(_set_strict(target.provider, True))
                if self._logger is not None:
                    self._attach_logging()
                _active.append(self)
            except BaseException as exc:
                from wpptrace.provider.sessions import stop_noting

                stop_noting(exc, self._end_session, f"wpptrace capture {self.name}")   # start's error first
                raise

    def _make_workdir(self) -> None:
        """The folder the session writes ``trace.etl`` in: with a ``keep_dir``, a folder
        ``<name>~running`` there from the start (renamed when kept, removed when not), so
        that a process killed while it captures leaves its file where kept captures go,
        named after the capture; else a private temporary folder."""
        if self.keep_dir is not None:
            os.makedirs(self.keep_dir, exist_ok=True)
            running = f"{self.name}{NUMBER_SEPARATOR}{RUNNING}"
            # a test's: a dead run's folder of that name is the older evidence, replaced
            self._workdir = (_replacing(self.keep_dir, (running,), _dead_run)[0] if self._replace_kept
                             else _unique_dir(self.keep_dir, running))
        else:
            self._workdir = tempfile.mkdtemp(prefix="wpptrace-capture-")
        self._finalizer = weakref.finalize(self, shutil.rmtree, self._workdir, True)
        self.etl_path = os.path.join(self._workdir, "trace.etl")

    def _attach_logging(self) -> None:
        logger, handler = self._logger, _shared_logging_handler()
        wanted = _logging_level(self.level)
        if handler not in logger.handlers:      # an outer capture may have attached it already
            logger.addHandler(handler)
            self._undo.append(lambda: logger.removeHandler(handler))
        if logger.getEffectiveLevel() > wanted:
            before = logger.level
            logger.setLevel(wanted)
            self._undo.append(lambda: logger.setLevel(before))

    def _end_session(self) -> None:
        """Stop the session, undo what start changed, give taken providers back: every step
        also when one before it failed; the first failure (the stop's first) is raised after."""
        failures: list[BaseException] = []
        while self._undo:
            try:
                self._undo.pop()()
            except BaseException as exc:  # noqa: BLE001 - raised once the session is stopped
                failures.append(exc)
        with _active_lock:
            if self in _active:
                _active.remove(self)
            session, self._session = self._session, None
            self.running = False
            if session is not None:
                self._note_takeovers()
                final = None
                try:
                    final = session.stop()
                except BaseException as exc:  # noqa: BLE001 - raised once the providers are given back
                    # stopped all the same if its file could not be completed
                    final = getattr(exc, "properties", None)
                    failures.insert(0, exc)
                if final is not None:
                    self.lost = int(final.EventsLost)
                for guid, outer in self._taken.items():
                    try:
                        if outer.running and outer._session is not None:
                            flags = next(t.flags for t in outer._targets if t.guid == guid)
                            outer._session.enable(guid, flags, outer.level)
                    except BaseException as exc:  # noqa: BLE001 - the other outers get theirs back
                        failures.append(exc)
        if failures:
            raise failures[0]

    def _note_takeovers(self) -> None:
        """Before the stop: which control GUIDs another session holds now (another process's
        capture of the same GUID took it, as only one session holds a provider), kept in
        ``takeovers`` (said by ``report()``, and by a CaptureWarning once the capture is done).
        Never raises: a registry that cannot be read now only leaves this unsaid."""
        guids = [t.guid for t in self._targets if not t.local]
        if not guids:
            return
        from wpptrace.provider.sessions import guid_holders

        try:
            holders = guid_holders(guids)
        except Exception:  # noqa: BLE001 - a courtesy; the stop and the messages matter
            return
        for guid in guids:
            holder = holders.get(guid)
            if holder is None or holder.name != self.session_name:
                self.takeovers[guid] = holder.name if holder is not None else None

    def _say_takeovers(self, stacklevel: int, on: BaseException | None = None,
                       made_at: bool = False) -> None:
        """One CaptureWarning naming every takeover (so that ``-W error`` raises them all), said
        at the user's line: ``stacklevel`` as ``warnings.warn`` counts it from here, or with
        ``made_at`` the line that made the capture (a capture the pytest plugin stops has no
        line of the user's on the stack). Issued once the capture is done (stopped, providers
        given back, decoded, kept): a warning turned into an error then fails the test, never
        leaves a session running or the messages unread. While ``on`` (an exception) is on its
        way, such an error becomes a note on it instead of hiding it."""
        if not self.takeovers:
            return
        said = "; ".join(_takeover_text(guid, by) for guid, by in self.takeovers.items())
        text = f"wpptrace capture {self.name}: {said}"
        try:
            if made_at and self._made_at is not None:
                filename, lineno, module_globals = self._made_at
                warnings.warn_explicit(CaptureWarning(text), CaptureWarning, filename, lineno,
                                       module=module_globals.get("__name__"),
                                       registry=module_globals.setdefault("__warningregistry__", {}),
                                       module_globals=module_globals)
            else:
                warnings.warn(CaptureWarning(text), stacklevel=stacklevel)
        except Exception:  # noqa: BLE001 - a warning filtered into an error
            if on is None:
                raise
            from wpptrace.provider.sessions import _add_note

            _add_note(on, text)

    def stop(self) -> None:
        """Stop the session and decode the file (``with`` does this).

        If stopping failed (the file could not be completed: a full or failing disk), what
        the file holds is decoded all the same and the capture is kept (its file is the
        evidence); then the error is raised, with a note saying where the capture was kept.
        A takeover (``takeovers``) is said last, in a CaptureWarning: once all that is done."""
        self._stop_then_warn(stacklevel=3)

    def _stop_then_warn(self, stacklevel: int, made_at: bool = False) -> None:
        """``_stop``, then the takeovers said at the line ``stacklevel`` frames up from here
        (``made_at``: the line that made the capture)."""
        if not self.running:
            return
        try:
            self._stop()
        except BaseException as exc:
            self._say_takeovers(stacklevel + 1, on=exc, made_at=made_at)
            raise
        self._say_takeovers(stacklevel + 1, made_at=made_at)

    def _stop(self) -> None:
        if not self.running:
            return
        failure: BaseException | None = None
        try:
            self._end_session()
        except Exception as exc:  # noqa: BLE001 - raised once the file is decoded and kept
            failure = exc
        self.finished = True
        try:
            self._tmfset = load_tmf([m for t in self._targets for m in t.tmf_messages()]
                                    + _as_list(self._tmf))
            result = decode_file(self.etl_path, self._tmfset)
        except Exception:
            if failure is None:
                raise
            from wpptrace.provider.sessions import _add_note

            _add_note(failure, f"wpptrace capture {self.name}: its file could not be decoded either")
            raise failure from None
        self.messages = result.messages
        self.errors = result.errors
        self.counters = result.counters
        if failure is not None:
            from wpptrace.provider.sessions import _add_note

            self._keep_quietly()
            if self.kept:
                _add_note(failure, self.kept_note)
            raise failure
        if self.keep_requested:
            self.keep()

    # -- what was logged -----------------------------------------------------------------------
    @property
    def texts(self) -> list[str]:
        """The messages' texts."""
        return [m.text for m in self.messages]

    def find(self, fmt: "str | Pattern[str]", *args: Any, **where: Any) -> list[DecodedMessage]:
        """The messages matching ``fmt`` (see assert_logged) and the ``where`` fields
        (``level=2``, ``function="read"``...)."""
        self._require_finished()
        match = _matcher(fmt, args)
        return [m for m in self.messages if match(m) and _fields_match(m, where)]

    def assert_logged(self, fmt: "str | Pattern[str]", *args: Any, count: int | None = None,
                      **where: Any) -> list[DecodedMessage]:
        """Assert that a message was logged; returns the matching messages.

        ``assert_logged("read %d bytes", 42)``: a message whose text has this shape (each
        conversion stands for any text) and whose typed arguments equal ``(42,)``, or whose
        text is ``"read %d bytes" % (42,)``. Without arguments, ``fmt`` is the whole text
        (conversions matching anything). A compiled regular expression is searched in the
        text. ``count``: exactly that many matches; ``where``: message fields that must equal
        (``level=...``, ``function=...``, ``flags=...``). On failure the AssertionError lists
        the captured messages and the capture is kept for inspection."""
        __tracebackhide__ = True
        found = self.find(fmt, *args, **where)
        if (count is None and found) or (count is not None and len(found) == count):
            return found
        wanted = "a message" if count is None else f"{count} message(s)"
        self._fail(f"expected {wanted} matching {_describe(fmt, args, where)}, found {len(found)}")
        return found

    def assert_logged_re(self, pattern: str, flags: int = 0, *, count: int | None = None,
                         **where: Any) -> list[DecodedMessage]:
        """``assert_logged`` with a regular expression searched in each message's text."""
        __tracebackhide__ = True
        return self.assert_logged(re.compile(pattern, flags), count=count, **where)

    def assert_not_logged(self, fmt: "str | Pattern[str]", *args: Any, **where: Any) -> None:
        """Assert that no message matches (same matching as assert_logged)."""
        __tracebackhide__ = True
        found = self.find(fmt, *args, **where)
        if found:
            self._fail(f"expected no message matching {_describe(fmt, args, where)}, "
                       f"found {len(found)}: {found[0].text!r}")

    def report(self, limit: int = SHOWN_MESSAGES) -> str:
        """The captured messages, one line each (what a failed assertion shows)."""
        lines = [f"{len(self.messages)} message(s) captured, {self.lost} lost"
                 + (f", {len(self.errors)} read error(s)" if self.errors else "") + ":"]
        for i, m in enumerate(self.messages[:limit]):
            args = f"  args={tuple(m.args)!r}" if m.args else ""
            where = m.function or m.component
            level = (m.level_name or "-").replace("TRACE_LEVEL_", "")
            lines.append(f"  [{i}] {level} {where}: {m.text}{args}")
        if len(self.messages) > limit:
            lines.append(f"  ... {len(self.messages) - limit} more")
        for guid, by in self.takeovers.items():
            lines.append(f"warning: {_takeover_text(guid, by)}")
        if self.kept:
            lines.append(f"capture kept in {self.kept} "
                         f"(wpptrace fmt {os.path.join(self.kept, 'trace.etl')} -p "
                         f"{os.path.join(self.kept, 'tmf')})"
                         + ("; it replaced a previous run's capture of that name" if self.replaced else "")
                         + (f"; {self.kept_problems}" if self.kept_problems else ""))
        return "\n".join(lines)

    def _fail(self, what: str) -> None:
        __tracebackhide__ = True
        self._keep_quietly()
        raise CaptureAssertionError(f"{what}\n{self.report()}")

    def _require_finished(self) -> None:
        if not self.finished:
            raise RuntimeError("the capture is still running: assert after the with block")

    # -- files -------------------------------------------------------------------------------
    def keep(self, keep_dir: "str | os.PathLike[str] | None" = None) -> str:
        """Keep the capture: a folder with ``trace.etl``, ``tmf/`` and ``trace.txt`` in
        ``keep_dir`` (default: the one given to capture, else beside the temporary file);
        returns its path. Idempotent.

        What cannot be written (a full disk) is left out and said in ``kept_problems`` and in
        the notes naming the folder: the ``.etl`` is the evidence, kept wherever it is (in
        its first folder if it cannot be moved). If even that fails the error is raised and
        the files are removed with the capture, as when it is not kept."""
        self._require_finished()
        if self.kept:
            return self.kept
        target_dir = os.fspath(keep_dir) if keep_dir is not None else self.keep_dir
        problems = []
        if target_dir is not None:
            try:
                self._move_to(target_dir)
            except OSError as exc:
                problems.append(f"not moved to {target_dir}: {_error_name(exc)}")
        folder = self._workdir
        try:
            _write_tmf_dir(self._tmfset, os.path.join(folder, "tmf"))
        except OSError as exc:
            shutil.rmtree(os.path.join(folder, "tmf"), ignore_errors=True)
            problems.append(f"tmf/ not written: {_error_name(exc)}")
        text = os.path.join(folder, "trace.txt")
        try:
            with format_file(self.etl_path, self._tmfset) as lines, _private_text(text) as out:
                for line in lines:
                    out.write(line + "\n")
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(text)                     # never half a text
            problems.append(f"trace.txt not written: {_error_name(exc)}")
        if self._finalizer is not None:           # complete: no longer removed with the object
            self._finalizer.detach()
        self.kept = folder
        self.kept_problems = "; ".join(problems) or None
        return folder

    def _move_to(self, target_dir: str) -> None:
        """Move the running folder's ``trace.etl`` into a kept folder of ``target_dir`` (the
        folder itself renamed when it is there already). A failure leaves it where it was."""
        os.makedirs(target_dir, exist_ok=True)
        if self._replace_kept:
            # a folder of the user's files is left alone: the capture goes to ``name~kept``
            # (replaced likewise on later runs), never to a name of the capture numbering
            folder, self.replaced = _replacing(target_dir, (self.name, f"{self.name}{NUMBER_SEPARATOR}{BESIDE}"),
                                               _kept_capture)
        else:
            folder = _unique_dir(target_dir, self.name)
        try:
            if os.path.dirname(self._workdir) == os.path.abspath(target_dir):
                os.rename(self._workdir, folder)        # the running folder onto the new, empty one
            else:
                shutil.move(os.path.join(self._workdir, "trace.etl"), os.path.join(folder, "trace.etl"))
                shutil.rmtree(self._workdir, ignore_errors=True)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            self.replaced = False
            raise
        if self._finalizer is not None:
            self._finalizer.detach()
        self._workdir = folder
        self._finalizer = weakref.finalize(self, shutil.rmtree, folder, True)
        self.etl_path = os.path.join(folder, "trace.etl")

    @property
    def kept_note(self) -> str:
        """The note naming the kept folder (and what it lacks) for an exception."""
        return f"wpptrace capture kept in {self.kept}" + \
            (f" ({self.kept_problems})" if self.kept_problems else "")

    def _keep_quietly(self) -> None:
        try:
            self.keep()
        except Exception:  # noqa: BLE001 - keeping is a courtesy; the test's own failure matters
            pass

    def discard(self) -> None:
        """Remove the capture's files now (unless kept)."""
        if self._finalizer is not None and not self.kept:
            self._finalizer()

    def __repr__(self) -> str:
        state = "running" if self.running else f"{len(self.messages)} messages" if self.finished else "new"
        return f"<Capture {self.name} {state}, lost {self.lost}>"


def capture(*providers: Any, level: int = TRACE_LEVEL_VERBOSE, flags: Any = ALL_FLAGS,
            logging: Any = False, strict: bool = True, tmf: Any = None, name: str | None = None,
            keep: bool = False, keep_dir: "str | os.PathLike[str] | None" = None) -> Capture:
    """Capture what ``providers`` log in a ``with`` block (see the module docstring).

    ``providers``: ``Provider`` objects, ``WppHandler`` objects, control GUIDs (for providers
    in other processes; their TMF comes from ``tmf``). ``level`` (TRACE_LEVEL_*, default
    verbose) and ``flags`` (a mask, flag names, or a list; default all) are what the session
    enables. ``logging``: also capture Python ``logging`` records, through a WppHandler
    attached for the block to the root logger (True) or to the logger given (a name or a
    Logger), whose level is lowered to ``level`` meanwhile if it is higher. ``strict``: trace
    calls that cannot be written raise instead of being dropped (the providers' strict mode).
    ``tmf``: more TMF data (directories, files, PDBs), as ``wpptrace fmt`` takes them.
    ``name``: the kept folder's name; ``keep``/``keep_dir``: keep the capture always / where (a
    relative ``keep_dir`` is taken from the working directory when the capture is made).
    """
    return Capture(*providers, level=level, flags=flags, logging=logging, strict=strict, tmf=tmf,
                   name=name, keep=keep, keep_dir=keep_dir)


class CaptureFactory:
    """``wpp_capture(provider, ...)`` of the pytest plugin: makes captures named after the
    test (a name of its own: a test id changed to be a folder name ends with a hash of the
    id; the second capture of a test adds ``~2``, which no test's name can hold), keeps them
    all with ``--wpp-keep DIR`` or when the test failed, and removes the rest when the test
    ends. A kept folder replaces the one a previous run of the same test left under that
    name (the report says so): each folder is the latest run's. A folder of that name holding
    anything else (files of the user's) is left alone: the capture is kept in ``<name>~kept``
    (replaced in the same way on later runs), never under another capture's number."""

    def __init__(self, name: str, keep_dir: "str | os.PathLike[str] | None" = None,
                 keep_all: bool = False) -> None:
        self.name = _test_name(name)
        # (a relative folder is the working directory's when made: a test may change it)
        self.keep_dir = os.path.abspath(keep_dir) if keep_dir is not None else None
        self.keep_all = keep_all
        self.captures: list[Capture] = []

    def __call__(self, *providers: Any, **options: Any) -> Capture:
        number = len(self.captures) + 1
        options.setdefault("keep_dir", self.keep_dir)
        options.setdefault("keep", self.keep_all)
        cap = capture(*providers, **options)
        caller = sys._getframe(1)
        cap._made_at = (caller.f_code.co_filename, caller.f_lineno, caller.f_globals)
        if options.get("name") is None:     # (set here: capture()'s own names never hold "~")
            cap.name = self.name if number == 1 else f"{self.name}{NUMBER_SEPARATOR}{number}"
            cap._replace_kept = True
        self.captures.append(cap)
        return cap

    def report(self) -> str:
        """Each capture's messages (for the test report)."""
        return "\n\n".join(f"{cap.name}: {cap.report()}" for cap in self.captures if cap.finished)

    def finish(self, failed: bool, discard: bool = True) -> None:
        """At the end of the test: stop captures left running, keep them if the test failed,
        else remove their files (``discard=False``: leave that to :meth:`discard`, for a
        failure found after this, in a later fixture's teardown). Every capture is finished
        even if stopping one fails; the first failure is raised after, the others noted on it.
        A capture's takeovers are said at the line that made it."""
        from wpptrace.provider.sessions import _add_note

        first: BaseException | None = None
        for cap in self.captures:
            try:
                cap._stop_then_warn(0, made_at=True)
            except BaseException as exc:  # noqa: BLE001 - raised once every capture is finished
                if first is None:
                    first = exc
                else:
                    _add_note(first, str(exc) if isinstance(exc, CaptureWarning)
                              else f"{type(exc).__name__}: {exc}")
        if failed:
            self.keep_finished()
        elif discard:
            self.discard()
        if first is not None:
            raise first

    def keep_finished(self) -> None:
        """Keep every finished capture (the test failed)."""
        for cap in self.captures:
            if cap.finished:
                cap._keep_quietly()

    def discard(self) -> None:
        """Remove the files of every capture not kept and not running (a capture whose start
        failed made its folder and file too)."""
        for cap in self.captures:
            if not cap.kept and not cap.running:
                cap.discard()


# -- matching -------------------------------------------------------------------------------

_CONVERSION = re.compile(r"%(?:%|!\w+!|[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
                         r"(?:hh|h|ll|l|L|z|j|t|I64|I32|I|w)?[diouxXeEfFgGaAcCsSpZn])")


class _Shape:
    """A printf-style format as a glob: its literal text in order, each conversion standing for
    any text. Matched in linear time: the first piece is a prefix, the last a suffix, and each
    one between is found left to right (the leftmost place is never worse for the pieces after
    it), so a message that does not match costs one pass, however many conversions."""

    def __init__(self, fmt: str) -> None:
        pieces, literal, pos = [], [], 0
        for m in _CONVERSION.finditer(fmt):
            literal.append(fmt[pos:m.start()])
            if m.group() == "%%":
                literal.append("%")
            else:
                pieces.append("".join(literal))
                literal = []
            pos = m.end()
        literal.append(fmt[pos:])
        pieces.append("".join(literal))
        self.pieces = pieces

    def match(self, text: str) -> bool:
        pieces = self.pieces
        if len(pieces) == 1:
            return text == pieces[0]
        first, last = pieces[0], pieces[-1]
        if len(text) < len(first) + len(last) or not text.startswith(first) or not text.endswith(last):
            return False
        at, end = len(first), len(text) - len(last)
        for piece in pieces[1:-1]:
            found = text.find(piece, at, end)
            if found < 0:
                return False
            at = found + len(piece)
        return True


def _same(actual: Any, expected: Any) -> bool:
    if isinstance(expected, float) and isinstance(actual, float):
        return actual == expected or (actual != actual and expected != expected)
    return actual == expected


def _matcher(fmt: Any, args: tuple):
    if isinstance(fmt, re.Pattern):
        if args:
            raise TypeError("a regular expression takes no arguments")
        return lambda m: fmt.search(m.text) is not None
    if not isinstance(fmt, str):
        raise TypeError(f"expected a format string or a compiled pattern, not {type(fmt).__name__}")
    shape = _Shape(fmt)
    if not args:
        return lambda m: m.text == fmt or shape.match(m.text)
    try:
        rendered = fmt % args
    except (TypeError, ValueError, KeyError):
        rendered = None

    def match(m: DecodedMessage) -> bool:
        if rendered is not None and m.text == rendered:
            return True
        return (len(m.args) == len(args) and all(map(_same, m.args, args))
                and shape.match(m.text))
    return match


def _fields_match(m: DecodedMessage, where: dict) -> bool:
    for key, value in where.items():
        if not hasattr(m, key):
            raise TypeError(f"messages have no field {key!r}")
        if getattr(m, key) != value:
            return False
    return True


def _describe(fmt: Any, args: tuple, where: dict) -> str:
    text = f"re {fmt.pattern!r}" if isinstance(fmt, re.Pattern) else repr(fmt)
    if args:
        text += f" with arguments {args!r}"
    if where:
        text += " and " + ", ".join(f"{k}={v!r}" for k, v in where.items())
    return text


# -- helpers ----------------------------------------------------------------------------------

def _as_list(tmf: Any) -> list:
    if tmf is None:
        return []
    if isinstance(tmf, (str, os.PathLike)):
        return [tmf]
    return list(tmf) if isinstance(tmf, (list, tuple)) else [tmf]


def _takeover_text(guid: uuid.UUID, by: "str | None") -> str:
    who = f"session {by!r}" if by is not None else "another session, stopped since,"
    return (f"provider {guid} was taken over by {who} (another capture of that control GUID, "
            f"in another test process?): what it logged after that is not in this capture")


def _error_name(exc: OSError) -> str:
    """An OSError as its Win32 name (ERROR_DISK_FULL), else its errno name."""
    from wpptrace.winerror import Win32Error, as_win32

    failure = as_win32(exc, writing=True)
    if isinstance(failure, Win32Error):
        return failure.name
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


def _safe_name(name: str) -> str:
    """A test id as a folder name: letters, digits, ``-_.`` (runs of others become ``_``)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "capture"
    return safe[:120]


def _test_name(nodeid: str) -> str:
    """``tests/test_app.py::test_read[x]`` -> ``tests.test_app.test_read-x``. When the name had
    to be changed to be a folder name, a hash of the node id follows after a ``~`` (which no
    unchanged name holds), so that tests never share one, a second capture's ``name~2``
    included, and each keeps its own on every run (``t.py::test_p[a_b]`` -> ``t.test_p-a_b``,
    ``t.py::test_p[a/b]`` -> ``t.test_p-a_b~654ae4dc``)."""
    path, _, rest = nodeid.partition("::")
    if path.endswith(".py"):
        path = path[:-3]
    test, bracket, param = rest.partition("[")     # a parameter id may hold "::" or "["
    name = ".".join(p for p in path.replace("\\", "/").split("/") + test.split("::") if p)
    if bracket:
        name += "-" + param.removesuffix("]")
    safe = _safe_name(name)[:TEST_NAME_LENGTH]
    if safe != name:
        digest = hashlib.sha256(nodeid.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        safe = f"{safe[:TEST_NAME_LENGTH - 9].rstrip('-')}{NUMBER_SEPARATOR}{digest}"
    return safe


def left_running(keep_dir: str | os.PathLike, nodeid: str) -> list[str]:
    """The ``trace.etl`` files a test's captures left in ``keep_dir`` when its process was
    killed while they ran (``<name>~running``, ``<name>~running~N`` beside a live run's,
    ``<name>~N~running`` for its later captures), in name order."""
    name = glob.escape(_test_name(nodeid))
    found = set()
    for pattern in (f"{name}{NUMBER_SEPARATOR}{RUNNING}",
                    f"{name}{NUMBER_SEPARATOR}{RUNNING}{NUMBER_SEPARATOR}[0-9]*",
                    f"{name}{NUMBER_SEPARATOR}[0-9]*{NUMBER_SEPARATOR}{RUNNING}"):
        found.update(glob.glob(os.path.join(glob.escape(os.fspath(keep_dir)), pattern, "trace.etl")))
    return sorted(found)


def _unique_dir(parent: str, name: str) -> str:
    for n in itertools.count(1):
        path = os.path.join(parent, name if n == 1 else f"{name}{NUMBER_SEPARATOR}{n}")
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


#: what a kept capture's folder holds (a folder holding anything else is never replaced)
_KEPT_FILES = {"trace.etl", "tmf", "trace.txt"}


def _replacing(parent: str, names: Sequence[str], replaceable: "Callable[[str], bool]") -> "tuple[str, bool]":
    """``parent/<name>`` made anew for the first of ``names`` that can be had: made if there
    is none, or a folder (not a link) there that ``replaceable`` accepts removed first; else
    the last name numbered as _unique_dir does. Returns the folder and whether one was
    replaced."""
    for name in names:
        path = os.path.join(parent, name)
        try:
            os.mkdir(path, 0o700)
            return path, False
        except FileExistsError:
            pass
        if not os.path.islink(path) and os.path.isdir(path) and replaceable(path):
            shutil.rmtree(path)
            try:
                os.mkdir(path, 0o700)
                return path, True
            except FileExistsError:
                pass
    return _unique_dir(parent, names[-1]), False


def _kept_capture(path: str) -> bool:
    """A kept capture's folder (a previous run's: replaced by the next); one holding anything
    else holds the user's files."""
    return set(os.listdir(path)) <= _KEPT_FILES


def _dead_run(path: str) -> bool:
    """The running folder of a run that died while it captured: only its ``trace.etl``, which no
    session holds any more."""
    return os.listdir(path) == ["trace.etl"] and not _held(os.path.join(path, "trace.etl"))


class _Flock(ctypes.Structure):
    """struct flock as the running ABI lays it out (ctypes pads as the C compiler does); the
    F_OFD_* commands take 64-bit offsets on every Linux ABI."""

    _fields_ = [("l_type", ctypes.c_short), ("l_whence", ctypes.c_short),
                ("l_start", ctypes.c_int64), ("l_len", ctypes.c_int64), ("l_pid", ctypes.c_int)]


def _held(etl: str) -> bool:
    """Whether a session holds ``etl`` (the write lock of an open file description a session
    takes on its log file); also when that cannot be told. Asked with F_OFD_GETLK, which takes
    no lock: a lock taken to probe, however briefly, would refuse a session starting on the
    file meanwhile."""
    import fcntl

    try:
        fd = os.open(etl, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return True
    try:
        asked = _Flock(l_type=fcntl.F_RDLCK, l_whence=os.SEEK_SET)   # whole file; l_pid 0
        found = _Flock.from_buffer_copy(fcntl.fcntl(fd, fcntl.F_OFD_GETLK, bytes(asked)))
        return found.l_type != fcntl.F_UNLCK
    except (OSError, AttributeError):       # (no F_OFD_GETLK here: cannot be told)
        return True
    finally:
        os.close(fd)


def _private_text(path: str):
    """``path`` opened to write text, made 0600 as the capture's ``.etl`` is (the decoded text
    of a private capture is no less private); never through a link."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    return open(fd, "w", encoding="utf-8", newline="\n")


def _write_tmf_dir(tmfset: Any, directory: str) -> None:
    """``<guid>.tmf`` per message GUID (and ``enums.tmf``), readable by ``wpptrace fmt -p``."""
    from wpptrace.tmf.writer import to_tmf_text

    os.makedirs(directory, mode=0o700, exist_ok=True)
    by_guid: dict = {}
    for message in tmfset.messages():
        by_guid.setdefault(message.guid, []).append(message)
    for guid, messages in by_guid.items():
        text = to_tmf_text(messages, pdb_name=messages[0].component or str(guid))
        with _private_text(os.path.join(directory, f"{guid}.tmf")) as fh:
            fh.write(text)
    enums = tmfset.enums()
    if enums:
        with _private_text(os.path.join(directory, "enums.tmf")) as fh:
            fh.write(to_tmf_text([], enums=enums))
