"""A running session holds its log file: another session may not start on it, switch to it or
record into it (ERROR_SHARING_VIOLATION, as Windows' logger meets a file held open without
write sharing), and the running session's file stays whole; readers read it meanwhile, and the
file is free again once the session closes it."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider import api
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error

L = P._lib
PATIENCE = 20.0


def _refused(start) -> int:
    with pytest.raises(Win32Error) as err:
        start()
    return err.value.winerror


def _logged(app, n: int) -> int:
    app.send(f"log {n} 1")
    return int(app.expect("logged")[1])


def _registered_app(apps) -> tuple:
    """An application with a registered provider: its control GUID, its message GUID, itself."""
    control, message = uuid.uuid4(), uuid.uuid4()
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    return control, message, app


def _messages_of(path, app, message: uuid.UUID) -> int:
    return sum(1 for m in etlcheck.read(path).messages if m.guid == message and m.process_id == app.pid)


def test_a_second_start_on_a_running_sessions_file_is_refused_and_the_file_kept(
        tmp_path, session_name, apps):
    control, message, app = _registered_app(apps)
    path = tmp_path / "held.etl"
    with TraceSession(session_name, path) as a:
        a.enable(control)
        app.expect("enable")
        written = _logged(app, 3000)
        a.flush()
        # a reader reads the file while it is held
        assert _messages_of(path, app, message) == written
        assert _refused(lambda: TraceSession(session_name + "b", path)) == L.ERROR_SHARING_VIOLATION
        with pytest.raises(Win32Error) as gone:
            P.ControlTrace(0, session_name + "b", None, P.EVENT_TRACE_CONTROL_QUERY)
        assert gone.value.winerror == L.ERROR_WMI_INSTANCE_NOT_FOUND
        written += _logged(app, 2000)
    assert a.final.EventsLost == 0 and a.final.LogBuffersLost == 0
    assert _messages_of(path, app, message) == written == 5000
    # closed at the stop: free for the next session at once
    with TraceSession(session_name + "c", path):
        pass
    assert etlcheck.read(path).header["EndTime"]


def test_an_update_to_a_running_sessions_file_is_refused_and_both_sessions_go_on(
        tmp_path, session_name, apps):
    control, message, app = _registered_app(apps)
    held, own = tmp_path / "held.etl", tmp_path / "own.etl"
    with TraceSession(session_name, held) as a, TraceSession(session_name + "b", own) as b:
        a.enable(control)
        app.expect("enable")
        written = _logged(app, 1000)
        props = b.query()
        props.LogFileName = str(held)
        code = _refused(lambda: P.ControlTrace(0, session_name + "b", props, P.EVENT_TRACE_CONTROL_UPDATE))
        assert code == L.ERROR_SHARING_VIOLATION
        assert b.query().LogFileName == str(own)        # it writes its own file still
        written += _logged(app, 1000)
        # a switch away lets the file go: another session may take the one left
        props = a.query()
        props.LogFileName = str(tmp_path / "next.etl")
        P.ControlTrace(0, session_name, props, P.EVENT_TRACE_CONTROL_UPDATE)
        props = b.query()
        props.LogFileName = str(held)
        assert _messages_of(held, app, message) == written == 2000
        P.ControlTrace(0, session_name + "b", props, P.EVENT_TRACE_CONTROL_UPDATE)
        assert b.query().LogFileName == str(held)


def test_a_private_sessions_file_is_held_against_a_session_of_the_same_process(tmp_path, session_name):
    path = tmp_path / "private.etl"
    private = TraceSession(session_name, path, LogFileMode=P.EVENT_TRACE_PRIVATE_LOGGER_MODE)
    try:
        assert _refused(lambda: TraceSession(session_name + "b", path)) == L.ERROR_SHARING_VIOLATION
        assert _refused(lambda: TraceSession(session_name + "c", path, LogFileMode=P.EVENT_TRACE_PRIVATE_LOGGER_MODE)
                        ) == L.ERROR_SHARING_VIOLATION
    finally:
        private.stop()
    assert etlcheck.read(path).header["EndTime"]


def _wpptrace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wpptrace", *args], capture_output=True, text=True,
                          timeout=PATIENCE)


def test_the_commands_say_the_file_is_another_sessions_in_one_line(tmp_path, session_name):
    path = tmp_path / "held.etl"
    script = tmp_path / "script.py"
    script.write_text("print('ran')\n")
    assert _wpptrace("session", "start", session_name, "-f", str(path)).returncode == 0
    try:
        assert _wpptrace("session", "start", session_name + "o", "-f", str(tmp_path / "o.etl")).returncode == 0
        refused = (f"{path}: session {session_name!r} writes this log file (ERROR_SHARING_VIOLATION); "
                   f"stop it or give another file\n")
        res = _wpptrace("session", "start", session_name + "b", "-f", str(path))
        assert (res.returncode, res.stderr) == (1, f"wpptrace session start: error: {refused}")
        res = _wpptrace("session", "update", session_name + "o", "-f", str(path))
        assert (res.returncode, res.stderr) == (1, f"wpptrace session update: error: {refused}")
        res = _wpptrace("session", "record", "-o", str(path), str(script))
        assert (res.returncode, res.stdout, res.stderr) == (1, "", f"wpptrace session record: error: {refused}")
    finally:
        _wpptrace("session", "stop", session_name + "o")
        stopped = _wpptrace("session", "stop", session_name)
    assert stopped.returncode == 0
    assert etlcheck.read(path).header["EndTime"]


def test_a_file_locked_by_a_program_that_is_no_session_is_said_to_be_another_process_s(
        tmp_path, session_name):
    import fcntl

    path = tmp_path / "locked.etl"
    path.write_bytes(b"")
    with open(path, "rb") as held:
        fcntl.lockf(held, fcntl.LOCK_SH)
        res = _wpptrace("session", "start", session_name, "-f", str(path))
    assert (res.returncode, res.stderr) == (1, (
        f"wpptrace session start: error: {path}: another process holds this log file locked "
        f"(ERROR_SHARING_VIOLATION), no running session writes it; give another file\n"))
    assert str(path) not in _wpptrace("session", "list").stdout      # started none on it


def _other_names(tmp_path, path) -> dict:
    """Other paths to the file ``path`` (in tmp_path/d): through a link to its directory, a
    second hard link, and a path through '..'."""
    (tmp_path / "lnk").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "hard.etl").hardlink_to(path)
    (tmp_path / "e").mkdir()
    return {"symlink": tmp_path / "lnk" / path.name, "hard link": tmp_path / "d" / "hard.etl",
            "dot-dot": tmp_path / "e" / ".." / "d" / path.name}


@pytest.mark.parametrize("mode", [0, P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC],
                         ids=["hosted", "private"])
def test_an_update_naming_the_session_s_own_file_by_another_path_is_no_switch(tmp_path, session_name, mode):
    """The file a session writes is no new file by any name (Windows: the same file): UPDATE
    leaves the session in it, its messages kept, instead of refusing the session's own lock
    or starting the file again."""
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "a.etl"
    with TraceSession(session_name, path, LogFileMode=mode | P.EVENT_TRACE_USE_LOCAL_SEQUENCE) as s:
        names = _other_names(tmp_path, path)
        sent = 0
        for other in names.values():
            P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=7), 1, bytes([sent]))
            sent += 1
            props = s.query()
            props.LogFileName = str(other)
            props, switched = api.update_trace(s.handle, None, props)
            assert (switched, props.LogFileName) == (False, str(other))     # named as last named
            assert s.query().LogFileName == str(other)
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=7), 1, bytes([sent]))
    assert s.final.LogFileName == str(other)
    read = etlcheck.read(path)
    assert [m.args for m in etlcheck.time_order(read)] == [bytes([i]) for i in range(sent + 1)]
    assert read.logfile_name == str(other)         # the header says it too


def test_session_update_naming_the_session_s_own_file_by_another_path_keeps_it(tmp_path, session_name):
    (tmp_path / "d").mkdir()
    path = tmp_path / "d" / "a.etl"
    assert _wpptrace("session", "start", session_name, "-f", str(path)).returncode == 0
    try:
        for other in _other_names(tmp_path, path).values():
            res = _wpptrace("session", "update", session_name, "-f", str(other))
            assert (res.returncode, res.stderr) == (0, "")       # nothing replaced
            named = os.path.abspath(other)             # the command takes '..' off
            assert f"log file {named}\n" in res.stdout
        query = _wpptrace("session", "query", session_name).stdout
    finally:
        stopped = _wpptrace("session", "stop", session_name)
    assert f"{named}\n" in query and stopped.returncode == 0
    assert etlcheck.read(path).header["EndTime"]


def test_session_update_naming_the_session_s_renamed_file_keeps_it_and_names_it_so(tmp_path, session_name):
    """The session's file renamed: an UPDATE naming it by its new name replaces nothing, and
    the session says that name from then on (the old one leads nowhere)."""
    path, renamed = tmp_path / "a.etl", tmp_path / "b.etl"
    assert _wpptrace("session", "start", session_name, "-f", str(path)).returncode == 0
    try:
        path.rename(renamed)
        res = _wpptrace("session", "update", session_name, "-f", str(renamed))
        query = _wpptrace("session", "query", session_name).stdout
    finally:
        stopped = _wpptrace("session", "stop", session_name)
    assert (res.returncode, res.stderr) == (0, "")
    assert res.stdout.endswith(f"log file {renamed}\n")
    assert f"Log Filename:           {renamed}\n" in query
    assert stopped.returncode == 0 and stopped.stdout.startswith(f"session {session_name!r} stopped: {renamed}: ")
    assert not path.exists() and etlcheck.read(renamed).header["EndTime"]


def test_a_session_s_file_named_by_a_shorter_name_keeps_a_whole_header(tmp_path, session_name):
    """The header holds the file's name: named by a shorter one, the header gets shorter and
    the 0xFF fill comes back over the end of the longer name (readers check the fill)."""
    path, renamed = tmp_path / ("a" * 120 + ".etl"), tmp_path / "b.etl"
    assert _wpptrace("session", "start", session_name, "-f", str(path)).returncode == 0
    try:
        path.rename(renamed)
        res = _wpptrace("session", "update", session_name, "-f", str(renamed))
    finally:
        stopped = _wpptrace("session", "stop", session_name)
    assert (res.returncode, stopped.returncode) == (0, 0), (res.stderr, stopped.stderr)
    assert etlcheck.read(renamed).header["EndTime"]


@pytest.mark.parametrize("mode", [0, P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC],
                         ids=["hosted", "private"])
def test_an_update_naming_the_session_s_file_name_that_holds_another_file_switches_to_it(
        tmp_path, session_name, mode):
    """The session's file removed and another file put at its name: that is another file (the
    identity of the open file decides, not the name), so an UPDATE naming it switches to it,
    replacing it, and the session's messages from then on are there."""
    path = tmp_path / "a.etl"
    with TraceSession(session_name, path, LogFileMode=mode | P.EVENT_TRACE_USE_LOCAL_SEQUENCE) as s:
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=7), 1, b"\0")
        path.unlink()
        path.write_text("an unrelated file at that name\n")
        props = s.query()
        props.LogFileName = str(path)
        assert P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE).LogFileName == str(path)
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=7), 1, b"\1")
    assert s.final.LogFileName == str(path)
    read = etlcheck.read(path)
    assert read.header["EndTime"] and [m.args for m in read.messages] == [b"\1"]


def test_session_update_naming_its_file_name_that_holds_another_file_replaces_it_and_says_so(
        tmp_path, session_name):
    path = tmp_path / "a.etl"
    assert _wpptrace("session", "start", session_name, "-f", str(path)).returncode == 0
    try:
        path.unlink()
        path.write_text("an unrelated file at that name\n")
        res = _wpptrace("session", "update", session_name, "-f", str(path))
    finally:
        stopped = _wpptrace("session", "stop", session_name)
    assert (res.returncode, res.stderr) == (0, f"wpptrace session update: replacing existing {path}\n")
    assert stopped.returncode == 0 and stopped.stdout.startswith(f"session {session_name!r} stopped: {path}: ")
    assert etlcheck.read(path).header["EndTime"]
