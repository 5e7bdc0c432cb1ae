"""An enable or disable of several control GUIDs from the shell (wpptrace session enable /
disable / start --guid, tracelog -enable / -disable / -start -guid) that fails on one of them
puts back what it changed: a failing command leaves nothing half done."""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from wpptrace.provider import api, session_cli, sessions, tracelog
from wpptrace.provider._hazmat import lib
from wpptrace.winerror import Win32Error

NOT_ENOUGH_MEMORY, BUSY = 8, 170


def holders(guids) -> dict[uuid.UUID, tuple[str, int, int]]:
    """Which session holds each of ``guids`` (by name), at which flags and level."""
    return {guid: (h.name, h.flags, h.level) for guid, h in sessions.guid_holders(guids).items()}


def hold(name: str, *held: tuple[uuid.UUID, int, int]) -> None:
    """Session ``name`` holds each GUID at its flags and level."""
    handle = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY).HistoricalContext
    for guid, flags, level in held:
        api.EnableTrace(True, flags, level, guid, handle)


def failing_on(monkeypatch, guid: uuid.UUID, *, recorded: bool = False, failure=None,
               undo_fails: uuid.UUID | None = None, meanwhile=None, undoing=None) -> list[uuid.UUID]:
    """EnableTrace fails for ``guid`` (after making the change if ``recorded``, as a busy provider
    process leaves it; after calling ``meanwhile()``, what other commands do before it fails);
    putting ``undo_fails`` back (the second call for it) fails too; ``undoing()`` is called as
    the first GUID is put back. Returns the GUIDs of the calls made, in order."""
    real, real_if = api.EnableTrace, sessions.enable_trace_if
    seen: list[uuid.UUID] = []
    put_backs = 0

    def enable_trace(on, flags, level, control_guid, handle):
        seen.append(control_guid)
        if control_guid == guid and seen.count(guid) == 1:
            if recorded:
                real(on, flags, level, control_guid, handle)
            if meanwhile is not None:
                meanwhile()
            raise failure or Win32Error(BUSY if recorded else NOT_ENOUGH_MEMORY, "EnableTrace")
        real(on, flags, level, control_guid, handle)

    def enable_trace_if(on, flags, level, control_guid, handle, expected):
        nonlocal put_backs
        seen.append(control_guid)
        put_backs += 1
        if undoing is not None and put_backs == 1:
            undoing()
        if control_guid == undo_fails and seen.count(undo_fails) == 2:
            raise Win32Error(BUSY, "EnableTrace")
        return real_if(on, flags, level, control_guid, handle, expected)
    monkeypatch.setattr(api, "EnableTrace", enable_trace)
    monkeypatch.setattr(sessions, "enable_trace_if", enable_trace_if)
    return seen


@pytest.fixture
def two_sessions(tmp_path, session_name):
    """(this command's session, another session), both running."""
    other = f"{session_name}-other"
    started = []
    try:
        for name in (session_name, other):
            session_cli.start(name, str(tmp_path / f"{len(started)}.etl"))
            started.append(name)
        yield session_name, other
    finally:
        for name in started:
            with contextlib.suppress(session_cli.SessionError):
                session_cli.stop(name)


def session_command(action: str, name: str, guids: list[str], err: io.StringIO, **more) -> int:
    args = argparse.Namespace(session_command=action, name=name, flags=0xF, level=5,
                              guid=[session_cli.parse_guid_spec(g) for g in guids], **more)
    return session_cli.run(args, io.StringIO(), err)


def enable_command(cli: str, name: str, guids: list[uuid.UUID], capsys, action="enable") -> tuple[int, str]:
    """Run ``action`` of ``guids`` (flags 0xF, level 5) through ``cli``: (exit status, stderr)."""
    if cli == "session":
        err = io.StringIO()
        return session_command(action, name, [str(g) for g in guids], err), err.getvalue()
    argv = [f"-{action}", name, "-flag", "0xF", "-level", "5"]
    for guid in guids:
        argv += ["-guid", f"#{guid}"]
    status = tracelog.main(argv)
    return status, capsys.readouterr().err


def prog(cli: str, action: str) -> str:
    return f"wpptrace session {action}" if cli == "session" else "tracelog"


@pytest.mark.parametrize("recorded", [False, True], ids=["refused", "recorded"])
@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_a_failing_enable_puts_back_what_it_changed(two_sessions, monkeypatch, capsys, cli, recorded):
    """Enabling A (new), P (held by this session at other flags), Q (held by another session:
    the enable takes it over) and then B, which fails: A is disabled again, P has its flags and
    level back, Q is the other session's again, and B (even if its failing enable was recorded)
    is not enabled; the error names B alone."""
    name, other = two_sessions
    a, p, q, b = (uuid.uuid4() for _ in range(4))
    hold(name, (p, 0x1, 2))
    hold(other, (q, 0x4, 3))
    before = holders({a, p, q, b})
    assert before == {p: (name, 0x1, 2), q: (other, 0x4, 3)}
    failing_on(monkeypatch, b, recorded=recorded)
    status, err = enable_command(cli, name, [a, p, q, b], capsys)
    said = session_cli._describe(Win32Error(BUSY if recorded else NOT_ENOUGH_MEMORY, "EnableTrace"), name)
    assert (status, err) == (1, f"{prog(cli, 'enable')}: error: enable {b}: {said}\n")
    assert holders({a, p, q, b}) == before


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_a_failing_disable_enables_again_what_it_disabled(two_sessions, monkeypatch, capsys, cli):
    """Disabling A and P (held by this session at their own flags and levels), Q (another
    session's: a disable leaves it alone) and then B, which fails: A and P are enabled again
    at their flags and levels, Q stays the other session's."""
    name, other = two_sessions
    a, p, q, b = (uuid.uuid4() for _ in range(4))
    hold(name, (a, 0x2, 1), (p, 0x30, 4), (b, 0x1, 1))
    hold(other, (q, 0x4, 3))
    before = holders({a, p, q, b})
    failing_on(monkeypatch, b, recorded=True)
    status, err = enable_command(cli, name, [a, p, q, b], capsys, action="disable")
    said = session_cli._describe(Win32Error(BUSY, "EnableTrace"), name)
    assert (status, err) == (1, f"{prog(cli, 'disable')}: error: disable {b}: {said}\n")
    assert holders({a, p, q, b}) == before


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_an_enable_that_succeeds_changes_every_guid(two_sessions, capsys, cli):
    """The all-or-none enable still does all: new, re-flagged and taken over alike."""
    name, other = two_sessions
    a, p, q = (uuid.uuid4() for _ in range(3))
    hold(name, (p, 0x1, 2))
    hold(other, (q, 0x4, 3))
    assert enable_command(cli, name, [a, p, q], capsys)[0] == 0
    assert holders({a, p, q}) == {g: (name, 0xF, 5) for g in (a, p, q)}


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_undoing_that_fails_too_is_said_in_the_same_line(two_sessions, monkeypatch, capsys, cli):
    """A failing enable whose putting back fails as well: one error line says the failure, then
    what could not be put back (and the rest is put back all the same)."""
    name, other = two_sessions
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    failing_on(monkeypatch, b, undo_fails=a)
    status, err = enable_command(cli, name, [a, q, b], capsys)
    said = session_cli._describe(Win32Error(NOT_ENOUGH_MEMORY, "EnableTrace"), name)
    busy = session_cli._describe(Win32Error(BUSY, "EnableTrace"), name)
    assert (status, err) == (1, f"{prog(cli, 'enable')}: error: enable {b}: {said}; undoing this command "
                                f"failed too: {{{a}}} is still enabled on session {name!r} ({busy})\n")
    assert holders({a, q, b}) == {a: (name, 0xF, 5), q: (other, 0x4, 3)}


@pytest.mark.parametrize("undo_fails", [False, True])
def test_ctrl_c_during_an_enable_puts_back_what_it_changed(two_sessions, monkeypatch, undo_fails):
    """Ctrl-C in the middle of an enable: what it changed is put back and the interrupt goes
    on; if putting back fails, that is the one line said."""
    name, other = two_sessions
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    failing_on(monkeypatch, b, failure=KeyboardInterrupt(), undo_fails=a if undo_fails else None)
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        session_command("enable", name, [str(a), str(q), str(b)], err)
    left = holders({a, q, b})
    if undo_fails:
        busy = session_cli._describe(Win32Error(BUSY, "EnableTrace"), name)
        assert err.getvalue() == (f"wpptrace session enable: error: undoing this command failed too: "
                                  f"{{{a}}} is still enabled on session {name!r} ({busy})\n")
        assert left == {a: (name, 0xF, 5), q: (other, 0x4, 3)}
    else:
        assert err.getvalue() == ""
        assert left == {q: (other, 0x4, 3)}


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_a_start_whose_enable_fails_stops_and_gives_back(tmp_path, two_sessions, monkeypatch, capsys, cli):
    """start with -guid A -guid Q -guid B failing on B: the new session is stopped again (as
    before) and Q, which its enable took from another session, is that session's again."""
    _, other = two_sessions
    name = f"{other}-new"
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    failing_on(monkeypatch, b)
    etl = str(tmp_path / "new.etl")
    try:
        if cli == "session":
            err = io.StringIO()
            status = session_command("start", name, [str(a), str(q), str(b)], err, logfile=etl, realtime=False,
                                     circular=0, sequential=0, buffer_size=64, min_buffers=0, max_buffers=0,
                                     flush_timer=1, clock=1)
            err = err.getvalue()
        else:
            status = tracelog.main(["-start", name, "-f", etl, "-flag", "0xF", "-level", "5",
                                    "-guid", f"#{a}", "-guid", f"#{q}", "-guid", f"#{b}"])
            err = capsys.readouterr().err
        said = session_cli._describe(Win32Error(NOT_ENOUGH_MEMORY, "EnableTrace"), name)
        assert (status, err) == (1, f"{prog(cli, 'start')}: error: enable {b}: {said}\n")
        assert name not in {p.LoggerName for p in api.QueryAllTraces()}
        assert holders({a, q, b}) == {q: (other, 0x4, 3)}
    finally:
        with contextlib.suppress(session_cli.SessionError):
            session_cli.stop(name)


def test_an_enable_that_cannot_see_who_holds_what_changes_nothing(two_sessions, monkeypatch):
    """Who holds each GUID is asked before anything changes (to put it back on a failure): a
    lookup that fails (a busy registry) fails the command, with nothing changed, in the words
    the listings use."""
    name, other = two_sessions
    a, q = uuid.uuid4(), uuid.uuid4()
    hold(other, (q, 0x4, 3))

    def busy(*args):
        raise Win32Error(BUSY, "guid_holders")
    monkeypatch.setattr(sessions, "guid_holders", busy)
    err = io.StringIO()
    assert session_command("enable", name, [str(a), str(q)], err) == 1
    said = f"cannot list enabled providers now: {session_cli._REGISTRY_HELD}"
    assert err.getvalue() == f"wpptrace session enable: error: {said}\n"
    monkeypatch.undo()
    assert holders({a, q}) == {q: (other, 0x4, 3)}


STOPPED_PROVIDER = """
import os, signal, sys, uuid
from wpptrace.provider import api
api.RegisterTraceGuids(lambda *args: 0, None, uuid.UUID(sys.argv[1]))
os.write(1, b"r")
os.kill(os.getpid(), signal.SIGSTOP)
"""


@pytest.fixture
def stopped_provider():
    """A provider process of this user stopped (SIGSTOP, a debugger) with its control GUID
    registered: it answers nothing until continued."""
    guid = uuid.uuid4()
    child = subprocess.Popen([sys.executable, "-c", STOPPED_PROVIDER, str(guid)], stdout=subprocess.PIPE)
    try:
        assert child.stdout.read(1) == b"r"
        os.waitid(os.P_PID, child.pid, os.WSTOPPED | os.WNOWAIT)      # stopped, not only about to
        yield guid
    finally:
        child.kill()
        child.wait()


def test_who_holds_the_guids_is_read_from_the_registry_without_asking_providers(two_sessions, stopped_provider,
                                                                               monkeypatch):
    """The holders an enable records (to put them back) come from the registry alone: no
    listing of providers (which asks every provider process in turn, up to 2.5 s for one that
    does not answer) and no listing of sessions (which asks every session's host). With a
    stopped provider process registered, the lookup does not wait for it."""
    name, other = two_sessions
    a, q = uuid.uuid4(), uuid.uuid4()
    hold(other, (q, 0x4, 3))
    asked = []
    for module, listing in ((sessions, "providers"), (sessions, "list_sessions"), (api, "QueryAllTraces")):
        monkeypatch.setattr(module, listing, lambda *args, _what=listing: asked.append(_what))
    real, took = sessions.guid_holders, []

    def timed(guids):
        started = time.monotonic()
        try:
            return real(guids)
        finally:
            took.append(time.monotonic() - started)
    monkeypatch.setattr(sessions, "guid_holders", timed)
    err = io.StringIO()
    assert session_command("enable", name, [str(a), str(q), str(stopped_provider)], err) == 0, err.getvalue()
    assert asked == []
    assert len(took) == 1 and took[0] < 1.0        # the provider's answer would take 2 s
    monkeypatch.undo()
    assert holders({a, q, stopped_provider}) == {g: (name, 0xF, 5) for g in (a, q, stopped_provider)}


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_putting_back_leaves_what_another_command_changed_meanwhile(two_sessions, monkeypatch, capsys, cli):
    """Between this enable's changes and its failure, other commands gave A (which it enabled)
    to the other session and re-flagged Q (which it took from the other session): putting back
    leaves both as they set them (it neither disables A on the other session nor takes Q back
    from them) and says so in the one line."""
    name, other = two_sessions
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    failing_on(monkeypatch, b, meanwhile=lambda: (hold(other, (a, 0x8, 1)), hold(name, (q, 0x2, 2))))
    status, err = enable_command(cli, name, [a, q, b], capsys)
    said = session_cli._describe(Win32Error(NOT_ENOUGH_MEMORY, "EnableTrace"), name)
    assert (status, err) == (1, f"{prog(cli, 'enable')}: error: enable {b}: {said}; left as another command set "
                                f"it meanwhile: {{{q}}} (session {name!r} holds it at flags 0x2 level 2), "
                                f"{{{a}}} (session {other!r} holds it at flags 0x8 level 1)\n")
    assert holders({a, q, b}) == {a: (other, 0x8, 1), q: (name, 0x2, 2)}


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_a_disable_put_back_does_not_take_a_guid_from_another_session(two_sessions, monkeypatch, capsys, cli):
    """A disable that fails after disabling A and P, while another command gave A to the other
    session: P is enabled again, A stays the other session's."""
    name, other = two_sessions
    a, p, b = (uuid.uuid4() for _ in range(3))
    hold(name, (a, 0x2, 1), (p, 0x30, 4), (b, 0x1, 1))
    failing_on(monkeypatch, b, recorded=True, meanwhile=lambda: hold(other, (a, 0x8, 1)))
    status, err = enable_command(cli, name, [a, p, b], capsys, action="disable")
    said = session_cli._describe(Win32Error(BUSY, "EnableTrace"), name)
    assert (status, err) == (1, f"{prog(cli, 'disable')}: error: disable {b}: {said}; left as another command "
                                f"set it meanwhile: {{{a}}} (session {other!r} holds it at flags 0x8 level 1)\n")
    assert holders({a, p, b}) == {a: (other, 0x8, 1), p: (name, 0x30, 4), b: (name, 0x1, 1)}


@pytest.mark.parametrize("cli", ["session", "tracelog"])
def test_a_session_that_ends_during_the_command_is_said_to_have_ended(two_sessions, monkeypatch, capsys, cli):
    """The session stops between this enable's changes and its failure: what the command
    enabled on it ended with it (not 'still enabled' on it), which the line says; Q, which it
    took from the other session, is given back."""
    name, other = two_sessions
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    failing_on(monkeypatch, b, meanwhile=lambda: session_cli.stop(name))
    status, err = enable_command(cli, name, [a, q, b], capsys)
    said = session_cli._describe(Win32Error(NOT_ENOUGH_MEMORY, "EnableTrace"), name)
    assert (status, err) == (1, f"{prog(cli, 'enable')}: error: enable {b}: {said}; session {name!r} ended "
                                f"meanwhile\n")
    assert holders({a, q, b}) == {q: (other, 0x4, 3)}


def test_an_enable_on_a_session_that_ended_says_so(two_sessions, monkeypatch):
    """The session stops before the enable of B: its failure says the session ended."""
    name, other = two_sessions
    a, b = uuid.uuid4(), uuid.uuid4()
    real = api.EnableTrace

    def enable_trace(on, flags, level, control_guid, handle):
        if control_guid == b:
            session_cli.stop(name)
        real(on, flags, level, control_guid, handle)
    monkeypatch.setattr(api, "EnableTrace", enable_trace)
    err = io.StringIO()
    assert session_command("enable", name, [str(a), str(b)], err) == 1
    assert err.getvalue() == f"wpptrace session enable: error: enable {b}: session {name!r} ended meanwhile\n"


def test_a_guid_held_already_as_the_command_sets_it_is_not_put_back(two_sessions, monkeypatch, capsys):
    """P was held by this session at the very flags and level the enable sets: the failing
    enable's put-back leaves it alone (no second EnableTrace for it)."""
    name, other = two_sessions
    a, p, b = (uuid.uuid4() for _ in range(3))
    hold(name, (p, 0xF, 5))
    calls = failing_on(monkeypatch, b)
    status, _ = enable_command("session", name, [a, p, b], capsys)
    assert status == 1
    assert calls == [a, p, b, a]           # the enables, then A's put-back only
    assert holders({a, p, b}) == {p: (name, 0xF, 5)}


def test_enable_trace_if_changes_only_what_the_registry_still_shows(two_sessions):
    """The put-back's compare-and-set: the change is made only while the registry shows the
    expected holder (checked under its lock), else nothing changes and what it shows is told."""
    name, other = two_sessions
    a = uuid.uuid4()
    hold(other, (a, 0x4, 3))
    theirs = sessions.guid_holders({a})[a]
    mine = api.ControlTrace(0, name, None, lib.EVENT_TRACE_CONTROL_QUERY).HistoricalContext
    assert sessions.enable_trace_if(True, 0x1, 1, a, mine, None) == (False, theirs)     # not "no one"
    assert sessions.enable_trace_if(True, 0x1, 1, a, mine, dataclasses.replace(theirs, flags=0x5)) == (False, theirs)
    assert holders({a}) == {a: (other, 0x4, 3)}
    assert sessions.enable_trace_if(True, 0x1, 1, a, mine, theirs) == (True, None)
    assert holders({a}) == {a: (name, 0x1, 1)}
    assert sessions.enable_trace_if(False, 0, 0, a, mine, theirs)[0] is False
    assert sessions.enable_trace_if(False, 0, 0, a, mine, sessions.guid_holders({a})[a]) == (True, None)
    assert holders({a}) == {}


def test_enable_trace_if_is_not_supported_on_a_private_session(tmp_path, session_name):
    """A private session's enables are not in the registry: there is nothing to compare with,
    so the conditional enable is refused (ERROR_NOT_SUPPORTED), not made unconditionally."""
    private = lib.EVENT_TRACE_PRIVATE_LOGGER_MODE | lib.EVENT_TRACE_PRIVATE_IN_PROC
    a = uuid.uuid4()
    with sessions.TraceSession(session_name, tmp_path / "private.etl", LogFileMode=private) as s:
        for on in (True, False):
            with pytest.raises(Win32Error) as raised:
                sessions.enable_trace_if(on, 0x1, 1, a, s.handle, None)
            assert raised.value.winerror == lib.ERROR_NOT_SUPPORTED


@pytest.mark.parametrize("first", ["ctrl-c", "failure"])
def test_a_second_ctrl_c_does_not_cut_putting_back_short(two_sessions, monkeypatch, first):
    """Ctrl-C (or a failure) in the middle of an enable, and another Ctrl-C while what it changed
    is put back: all is put back all the same, then the interrupt goes on; after a failure its
    one line is said first."""
    name, other = two_sessions
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    # raised in this (the main) thread: sent to the process, another thread may take it and the
    # main thread see it only after the put-back is done (the interrupt then goes on later)
    failing_on(monkeypatch, b, failure=KeyboardInterrupt() if first == "ctrl-c" else None,
               undoing=lambda: signal.raise_signal(signal.SIGINT))
    err = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        session_command("enable", name, [str(a), str(q), str(b)], err)
    assert holders({a, q, b}) == {q: (other, 0x4, 3)}
    said = session_cli._describe(Win32Error(NOT_ENOUGH_MEMORY, "EnableTrace"), name)
    assert err.getvalue() == ("" if first == "ctrl-c" else f"wpptrace session enable: error: enable {b}: {said}\n")


def test_record_whose_enable_fails_gives_back_what_it_took(tmp_path, two_sessions, monkeypatch, capsys):
    """session record --guid A --guid Q --guid B, failing on B: Q, which its enable took from
    another session, is that session's again (as for 'session enable'), the script does not
    run, its session is stopped, and the one line says the failure."""
    from wpptrace.provider import cli as record_cli

    _, other = two_sessions
    name = f"{other}-rec"
    a, q, b = (uuid.uuid4() for _ in range(3))
    hold(other, (q, 0x4, 3))
    failing_on(monkeypatch, b)
    script = tmp_path / "script.py"
    script.write_text(f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    parser = argparse.ArgumentParser()
    record_cli.add_arguments(parser)
    args = parser.parse_args(["record", "--name", name, "-o", str(tmp_path / "r.etl"), "--flags", "0xF",
                              "--guid", str(a), "--guid", str(q), "--guid", str(b), str(script)])
    assert record_cli.run(args) == 1
    said = session_cli._describe(Win32Error(NOT_ENOUGH_MEMORY, "EnableTrace"), name)
    assert capsys.readouterr().err == f"wpptrace session record: error: enable {b}: {said}\n"
    assert holders({a, q, b}) == {q: (other, 0x4, 3)}
    assert not (tmp_path / "ran").exists()
    assert name not in {p.LoggerName for p in api.QueryAllTraces()}
