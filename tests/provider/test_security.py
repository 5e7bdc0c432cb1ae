"""Only processes of the same user reach a session: the runtime directory must be private,
every connection's peer credentials are checked; malformed requests are answered with an
error and logged; a host nobody can reach any more stops cleanly."""
from __future__ import annotations

import datetime
import os
import random
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession, runtime_directory, session_info

L = P._lib
MAGIC = 0x31545057
QUERY, REPLY = 1, 0x40
NOBODY = 65534
PATIENCE = 60.0     # seconds a loaded machine may take; waits end as soon as it is done


def frame(kind: int, payload: bytes = b"", length: int | None = None, magic: int = MAGIC) -> bytes:
    return struct.pack("<IIII", magic, kind, len(payload) if length is None else length, 0) + payload


def exchange(path: str, data: bytes, timeout: float = PATIENCE) -> bytes:
    """Send ``data``, then read until the host closes the connection."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout)
        conn.connect(path)
        try:
            conn.sendall(data)
            conn.shutdown(socket.SHUT_WR)        # nothing more comes: the host need not wait
        except (BrokenPipeError, ConnectionResetError):
            return b""                           # closed on us before we finished: refused
        out = b""
        try:
            while chunk := conn.recv(65536):
                out += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return out


def host_paths(name: str) -> tuple[str, str]:
    info = session_info(name)
    base = os.path.join(runtime_directory(), f"s-{info.logger_id}")
    return base + ".sock", base + ".log"


def test_runtime_directory_open_to_others_is_refused(tmp_path):
    shared = tmp_path / "rt"
    shared.mkdir()
    os.chmod(shared, 0o755)
    script = textwrap.dedent("""
        import sys, uuid
        import wpptrace.provider as P
        props = P.EVENT_TRACE_PROPERTIES(LogFileName=sys.argv[1], LogFileMode=1)
        try:
            P.StartTrace("refused-" + uuid.uuid4().hex[:6], props)
        except P.Win32Error as exc:
            print(exc.winerror)
        # a provider still registers: only sessions of other processes are out of reach
        P.UnregisterTraceGuids(P.RegisterTraceGuids(lambda *a: 0, None, uuid.uuid4()))
        print("registered")
    """)
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(shared))
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "x.etl")], env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == [str(L.ERROR_ACCESS_DENIED), "registered"], out.stderr
    assert sorted(os.listdir(shared)) == []                    # nothing was created there
    cli = subprocess.run([sys.executable, "-m", "wpptrace", "session", "start", "x", "-f",
                          str(tmp_path / "y.etl")], env=env, capture_output=True, text=True, timeout=30)
    assert cli.returncode == 1 and f"the runtime directory {shared} is not usable" in cli.stderr


def test_the_runtime_directory_is_private(session_name, tmp_path):
    with TraceSession(session_name, tmp_path / "p.etl"):
        sock, log = host_paths(session_name)
        directory = runtime_directory()
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        for path in (sock, log, os.path.join(directory, "registry")):
            assert stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0, path


def as_nobody(fn) -> int:
    """Run ``fn`` in a forked child with another user's ids; its exit status."""
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code = fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the parent through the code
            sys.stderr.write(f"as uid {NOBODY}: {exc!r}\n")
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another uid needs root")
def test_another_user_is_refused_by_the_host_and_by_a_provider(session_name, tmp_path, apps):
    """With the directory and sockets opened up on purpose, a process of another user reaches
    them, and is still refused on its credentials, and logged; through the library it is
    refused at the directory already."""
    control = uuid.uuid4()
    app = apps(control, uuid.uuid4())
    app.send("register")
    app.expect("registered")
    with TraceSession(session_name, tmp_path / "uid.etl") as s:
        s.enable(control, 1, 4)
        app.expect("enable")
        sock, log = host_paths(session_name)
        directory = runtime_directory()
        provider_sock = os.path.join(directory, f"p-{app.pid}.sock")

        def refused(path: str) -> int:
            answer = exchange(path, frame(QUERY))
            return 0 if answer == b"" else 1                   # closed without an answer

        os.chmod(directory, 0o711)
        os.chmod(sock, 0o777)
        os.chmod(provider_sock, 0o777)
        try:
            assert as_nobody(lambda: refused(sock)) == 0
            assert as_nobody(lambda: refused(provider_sock)) == 0
        finally:
            os.chmod(directory, 0o700)
            os.chmod(sock, 0o600)
            os.chmod(provider_sock, 0o600)
        with open(log) as fh:
            assert f"of uid {NOBODY} (not our user {os.geteuid()})" in fh.read()
        assert app.quiet() == []                               # nothing reached the provider
        assert s.query().LoggerName == session_name            # the host serves us on

        def through_the_library() -> int:
            props = P.EVENT_TRACE_PROPERTIES()
            block, p = props._to_c()
            rc = L.ControlTraceA(0, session_name.encode(), p, P.EVENT_TRACE_CONTROL_QUERY)
            return 0 if rc == L.ERROR_ACCESS_DENIED else rc
        assert as_nobody(through_the_library) == 0            # the directory keeps it out


def test_malformed_requests_get_an_error_and_a_log_line(session_name, tmp_path):
    with TraceSession(session_name, tmp_path / "m.etl") as s:
        sock, log = host_paths(session_name)
        error = struct.pack("<IIII", MAGIC, REPLY, 0, L.ERROR_INVALID_PARAMETER)
        assert exchange(sock, frame(QUERY, magic=0xDEADBEEF)) == error          # not our frame
        assert exchange(sock, frame(0x77)) == error                             # unknown request
        assert exchange(sock, frame(QUERY, b"xxxx")) == error                   # QUERY takes nothing
        assert exchange(sock, frame(QUERY, length=0xFFFFFFFF)) == error         # hostile size
        assert exchange(sock, frame(3, b"\x01" * 4112)) == error                # UPDATE: path not ended
        assert exchange(sock, frame(QUERY)[:7]) == b""                          # cut short
        rng = random.Random(12)
        for _ in range(200):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
            if rng.random() < 0.5:
                junk = struct.pack("<I", MAGIC) + junk
            exchange(sock, junk, timeout=2.0)
        q = s.query()                                                           # still serving
        assert q.LoggerName == session_name
        with open(log) as fh:
            text = fh.read()
        assert "malformed frame" in text and "malformed unknown request" in text


def test_malformed_requests_to_a_provider_process_are_refused_and_it_runs_on(session_name, tmp_path, apps):
    """The notification endpoint lives inside the application: junk gets an error reply (or the
    connection closed), never a crash or a callback, and real enables still reach it."""
    control = uuid.uuid4()
    app = apps(control, uuid.uuid4())
    app.send("register")
    app.expect("registered")
    sock = os.path.join(runtime_directory(), f"p-{app.pid}.sock")
    error = struct.pack("<IIII", MAGIC, REPLY, 0, L.ERROR_INVALID_PARAMETER)
    enable, listing = 0x20, 0x22
    assert exchange(sock, frame(0x77)) == error                                # unknown request
    assert exchange(sock, frame(enable, b"\x01" * 39)) == error               # ENABLE is 40 bytes
    assert exchange(sock, frame(listing, b"x")) == error                      # LIST takes nothing
    assert exchange(sock, frame(enable, length=0xFFFFFFFF)) in (b"", error)    # hostile size
    assert exchange(sock, frame(enable, magic=0xDEADBEEF)) in (b"", error)     # not our frame
    rng = random.Random(7)
    for _ in range(200):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64)))
        if rng.random() < 0.5:
            junk = struct.pack("<III", MAGIC, rng.choice((enable, enable + 1, listing)), 40) + b"\0" * 4 + junk
        exchange(sock, junk, timeout=2.0)
    assert app.quiet() == [] and app.proc.poll() is None                     # no callback, no crash
    with TraceSession(session_name, tmp_path / "after.etl") as s:
        s.enable(control, 1, 4)
        assert app.expect("enable") == ["enable", str(s.handle & 0xFFFF), "1", "4"]
        app.send("log 10 1")
        assert app.expect("logged") == ["logged", "10", "0", "0"]
    app.expect("disable")


def test_an_enable_the_registry_does_not_hold_is_not_applied(session_name, tmp_path, apps):
    """A well-formed ENABLE made up by a process of this user (a running session's handle, a
    version from the future) runs no callback and does not hide the enables that follow."""
    control = uuid.uuid4()
    app = apps(control, uuid.uuid4())
    app.send("register")
    app.expect("registered")
    sock = os.path.join(runtime_directory(), f"p-{app.pid}.sock")
    with TraceSession(session_name, tmp_path / "forged.etl") as s:
        forged = control.bytes_le + struct.pack("<QQII", 2**63, s.handle | (0xFF << 32) | (5 << 16), 1, 0)
        reply = exchange(sock, frame(0x20, forged))
        assert reply[:8] == struct.pack("<II", MAGIC, REPLY)
        assert app.quiet() == []                                   # no callback
        s.enable(control, 2, 3)
        assert app.expect("enable") == ["enable", str(s.handle & 0xFFFF), "2", "3"]
    app.expect("disable")


def test_a_host_whose_socket_was_removed_stops_cleanly(tmp_path):
    """Nobody could reach it to stop it any more: it stops by itself, finishing its file."""
    own = tmp_path / "rt"
    own.mkdir(mode=0o700)
    etl = tmp_path / "orphan.etl"
    script = textwrap.dedent("""
        import sys
        from wpptrace.provider.sessions import TraceSession, session_info
        s = TraceSession("orphan", sys.argv[1], keep_running=True)
        print(session_info("orphan").host_pid)
    """)
    out = subprocess.run([sys.executable, "-c", script, str(etl)], capture_output=True, text=True,
                         timeout=30, env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(own)))
    host = int(out.stdout)
    assert etlcheck.read(etl).header["EndTime"] == 0                # running
    os.unlink(own / "s-1.sock")
    deadline = time.monotonic() + PATIENCE
    while os.path.exists(f"/proc/{host}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{host}")
    assert etlcheck.read(etl).header["EndTime"] != 0                # stopped cleanly
    with open(own / "s-1.log") as fh:
        log = fh.read()
    assert f"the control socket {own}/s-1.sock was removed: stopping" in log   # its name, not /proc's
    # each line stamped with the UTC time it was written (made without the C library's
    # time-zone lock: see etw_host.c)
    now = datetime.datetime.now(datetime.timezone.utc)
    for line in log.splitlines():
        stamp = datetime.datetime.strptime(line[:21], "%Y-%m-%dT%H:%M:%SZ ").replace(tzinfo=datetime.timezone.utc)
        assert abs((now - stamp).total_seconds()) < 600, line
