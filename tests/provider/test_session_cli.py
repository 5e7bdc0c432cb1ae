"""The operator's workflow from the shell: wpptrace session / tracelog start a session for a
running application, enable it, watch it live (fmt --rt / tracefmt -rt), stop it, decode."""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
from wpptrace.provider import sessions

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE_GUID = "4f1d2c3b-5a69-4788-9aab-bccdde0f1021"
PATIENCE = 20.0
REQUEST = re.compile(r"request (\d+) served in \d+ ms$")


def wpptrace(*args: str, check: bool = True, cwd=None) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "wpptrace", *args], capture_output=True, text=True,
                            timeout=PATIENCE, cwd=cwd)
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def tracelog(*args: str, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["tracelog", *args], capture_output=True, text=True, timeout=PATIENCE, cwd=cwd)


@pytest.fixture(scope="module")
def service_tmf(tmp_path_factory):
    tmf = tmp_path_factory.mktemp("servicetmf")
    # --no-registry: the site registry would be written beside service_app.py, into the checkout
    wpptrace("tmf", "gen", os.path.join(HERE, "service_app.py"), "-o", str(tmf), "--no-registry")
    return tmf


@pytest.fixture
def service():
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "service_app.py")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.stdin.close()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def read_requests(view: subprocess.Popen, count: int) -> list[int]:
    """The request numbers of the request lines a live view printed, once it printed at least
    ``count`` (or the patience ran out)."""
    numbers: list[int] = []
    pending = b""
    deadline = time.monotonic() + PATIENCE
    while len(numbers) < count and time.monotonic() < deadline:
        ready, _, _ = select.select([view.stdout], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(view.stdout.fileno(), 65536)
        if not chunk:
            break
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if m := REQUEST.search(line.decode()):
                numbers.append(int(m.group(1)))
    return numbers


README = os.path.join(HERE, "..", "..", "README.md")


def readme_operator_commands(session: str, etl, tmf) -> list[list[str]]:
    """The commands of README's "Trace a running application from another shell", with this
    test's session name, file and TMF directory."""
    text = open(README, encoding="utf-8").read()
    block = text.split("### Trace a running application from another shell", 1)[1].split("```sh\n", 1)[1]
    block = block.split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        words = shlex.split(line.split("#", 1)[0])
        words = [{"Shop": session, "shop.etl": str(etl), "tmf/": str(tmf)}.get(w, w) for w in words]
        assert words[0] == "wpptrace", line
        commands.append([sys.executable, "-m", "wpptrace", *words[1:]])
    return commands


def test_start_enable_watch_stop_decode(tmp_path, session_name, service, service_tmf):
    """README's operator workflow, its five commands as written there, against a running
    service-like application whose tracing is off until the session enables it."""
    etl = tmp_path / "shop.etl"
    start, enable, watch, stop, decode = readme_operator_commands(session_name, etl, service_tmf)
    assert watch[3:5] == ["fmt", "--rt"] and stop[3:5] == ["session", "stop"]

    def run(command: list[str]) -> str:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PATIENCE, cwd=tmp_path)
        assert result.returncode == 0, (command, result.stdout, result.stderr)
        return result.stdout

    out = run(start)
    assert f"session '{session_name}' started" in out and str(etl) in out
    assert f"{{{SERVICE_GUID}}} flags 0x1 level 4" in run(enable)
    view = subprocess.Popen(watch, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, cwd=tmp_path)
    try:
        live = read_requests(view, 5)
        assert len(live) >= 5 and live == list(range(live[0], live[0] + len(live)))
        query = wpptrace("session", "query", session_name).stdout
        assert re.search(rf"^Logger Name:\s+{re.escape(session_name)}$", query, re.M)
        assert re.search(rf"^\s+\{{{SERVICE_GUID}\}}\s+Flags 0x00000001\s+Level 4\s+registered in 1 process$",
                         query, re.M), query
        assert session_name in wpptrace("session", "list").stdout
        stopped = run(stop)
        assert "stopped" in stopped and "0 events lost" in stopped
        _, err = view.communicate(timeout=PATIENCE)        # the live view ends with the session
        assert view.returncode == 0, err
    finally:
        if view.poll() is None:
            view.kill()
            view.wait()
    assert service.poll() is None                      # the application ran on throughout
    decoded = run(decode)
    numbers = [int(m.group(1)) for line in decoded.splitlines() if (m := REQUEST.search(line))]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and set(live) <= set(numbers)
    assert wpptrace("session", "query", session_name, check=False).returncode == 1


def test_a_live_view_whose_reader_leaves_ends_and_writes_its_summary(tmp_path, session_name, service,
                                                                      service_tmf):
    """``fmt --rt S --summary s.txt | head -1``: the reader leaving ends the live view as a session
    stop does (as it ends a file's printing): the summary written, status 0, while the session and
    the application run on. It used to watch on until a Ctrl-C."""
    wpptrace("session", "start", session_name, "--realtime")
    try:
        wpptrace("session", "enable", session_name, "--guid", f"{SERVICE_GUID}:0x1:4")
        view = subprocess.Popen([sys.executable, "-m", "wpptrace", "fmt", "--rt", session_name, "-p",
                                 str(service_tmf), "--summary", "s.txt"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, cwd=tmp_path)
        try:
            assert view.stdout.readline().rstrip().endswith(b"[Header]EventTrace")
            view.stdout.close()                             # the reader leaves (head -1)
            try:
                err = view.communicate(timeout=PATIENCE)[1].decode()
            except subprocess.TimeoutExpired:
                pytest.fail("the live view went on after its reader left")
        finally:
            if view.poll() is None:
                view.kill()
                view.wait()
        assert view.returncode == 0, err
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        summary = (tmp_path / "s.txt").read_text()
        assert f"(real-time session {session_name})" in summary
        assert re.search(r"^Total Events  Processed [1-9]\d*$", summary, re.M), summary
        assert service.poll() is None
        assert wpptrace("session", "query", session_name).returncode == 0   # still running
    finally:
        wpptrace("session", "stop", session_name, check=False)


def test_tracelog_spellings(tmp_path, session_name, service, service_tmf):
    etl = tmp_path / "tl.etl"
    ctl = tmp_path / "shop.ctl"
    ctl.write_text(f"# the shop service\n{{{SERVICE_GUID}}} ShopService\n")
    started = tracelog("-start", session_name, "-f", str(etl), "-guid", str(ctl), "-flag", "0x3", "-level", "5",
                       "-b", "16", "-min", "4", "-max", "40", "-ft", "1", "-rt")
    assert started.returncode == 0, started.stderr
    text = started.stdout
    for row in (rf"Logger Name:\s+{re.escape(session_name)}", r"Buffer Size:\s+16 Kb", r"Maximum Buffers:\s+40",
                r"Minimum Buffers:\s+4", r"Log Mode:\s+Sequential Real Time", r"Buffer Flush Timer:\s+1 secs",
                rf"Log Filename:\s+{re.escape(str(etl))}", r"Operation Status:\s+0L\s+The operation completed"):
        assert re.search(row, text), (row, text)
    view = subprocess.Popen(["tracefmt", "-rt", session_name, "-p", str(service_tmf), "-displayonly"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0, cwd=tmp_path)
    try:
        assert len(read_requests(view, 3)) >= 3
        assert tracelog("-flush", session_name).returncode == 0
        assert "Flags 0x00000003  Level 5  registered in 1 process" in tracelog("-q", session_name).stdout
        assert session_name in tracelog("-l").stdout
        assert tracelog("-update", session_name, "-ft", "2").returncode == 0
        assert re.search(r"Buffer Flush Timer:\s+2 secs", tracelog("-q", session_name).stdout)
        assert tracelog("-disable", session_name, "-guid", f"#{SERVICE_GUID}").returncode == 0
        assert "Enabled Providers:      0" in tracelog("-q", session_name).stdout
        stopped = tracelog("-stop", session_name)
        assert stopped.returncode == 0 and "Operation Status:       0L" in stopped.stdout
        view.communicate(timeout=PATIENCE)
        assert view.returncode == 0
    finally:
        if view.poll() is None:
            view.kill()
            view.wait()
    missing = tracelog("-stop", session_name)
    assert missing.returncode == 1 and f"no session named '{session_name}' is running" in missing.stderr
    assert etlcheck.read(etl).messages


def test_names_paths_and_duplicates_are_refused_with_a_message(tmp_path, session_name):
    bad = wpptrace("session", "start", "bad\x01name", "-f", str(tmp_path / "x.etl"), check=False)
    assert bad.returncode == 2 and "invalid session name" in bad.stderr
    nodir = wpptrace("session", "start", session_name, "-f", str(tmp_path / "no" / "x.etl"), check=False)
    assert nodir.returncode == 1 and f"there is no directory {tmp_path / 'no'}" in nodir.stderr
    isdir = wpptrace("session", "start", session_name, "-f", str(tmp_path), check=False)
    assert isdir.returncode == 1 and "is a directory" in isdir.stderr
    neither = wpptrace("session", "start", session_name, check=False)
    assert neither.returncode == 2 and "give a log file" in neither.stderr   # the command line's mistake
    wpptrace("session", "start", session_name, "-f", str(tmp_path / "a.etl"))
    try:
        again = wpptrace("session", "start", session_name, "-f", str(tmp_path / "b.etl"), check=False)
        assert again.returncode == 1 and "already running" in again.stderr
        badguid = wpptrace("session", "enable", session_name, "--guid", "not-a-guid", check=False)
        assert badguid.returncode == 2 and "not-a-guid" in badguid.stderr
    finally:
        wpptrace("session", "stop", session_name)
    unknown = wpptrace("session", "stop", session_name, check=False)
    assert unknown.returncode == 1 and "no session named" in unknown.stderr


def test_flags_and_levels_out_of_range_are_usage_errors_before_any_session(tmp_path, session_name):
    """Enable flags are 32 bits and levels 8, in `session start`, `session enable` and tracelog
    as in `session record`: a value beyond (or no number) is the option's one-line error, exit
    status 2, before a session starts or anything is enabled."""
    etl = str(tmp_path / "never.etl")
    guid = SERVICE_GUID
    cases = [
        (["session", "start", session_name, "-f", etl, "--flags", "0x1ffffffff"],
         "wpptrace session start: error: argument --flags: flags '0x1ffffffff' is outside 0..0xffffffff"),
        (["session", "start", session_name, "-f", etl, "--level", "300"],
         "wpptrace session start: error: argument --level: level '300' is outside 0..0xff"),
        (["session", "start", session_name, "-f", etl, "--guid", f"{guid}:0x1:256"],
         "wpptrace session start: error: argument --guid: level '256' is outside 0..0xff"),
        (["session", "enable", session_name, "--guid", guid, "--level", "256"],
         "wpptrace session enable: error: argument --level: level '256' is outside 0..0xff"),
        (["session", "enable", session_name, "--guid", guid, "--flags", "-1"],
         "wpptrace session enable: error: argument --flags: flags '-1' is outside 0..0xffffffff"),
        (["session", "enable", session_name, "--guid", f"{guid}:0x100000000"],
         "wpptrace session enable: error: argument --guid: flags '0x100000000' is outside 0..0xffffffff"),
        (["session", "enable", session_name, "--guid", guid, "--flags", "all"],
         "wpptrace session enable: error: argument --flags: flags 'all' is not a number"),
    ]
    try:
        for args, message in cases:
            result = wpptrace(*args, check=False)
            assert (result.returncode, result.stdout) == (2, ""), (args, result.stderr)
            assert result.stderr.splitlines()[-1] == message, args
        for args, message in [
                (["-start", session_name, "-f", etl, "-flag", "0x100000000"],
                 "tracelog: error: argument -flag/-flags: flags '0x100000000' is outside 0..0xffffffff"),
                (["-start", session_name, "-f", etl, "-guid", f"#{guid}", "-level", "256"],
                 "tracelog: error: argument -level: level '256' is outside 0..0xff"),
                (["-enable", session_name, "-guid", f"#{guid}", "-level", "x"],
                 "tracelog: error: argument -level: level 'x' is not a number")]:
            result = tracelog(*args)
            assert (result.returncode, result.stdout, result.stderr) == (2, "", message + "\n"), args
        assert not os.path.exists(etl)
        assert wpptrace("session", "query", session_name, check=False).returncode == 1
    finally:
        wpptrace("session", "stop", session_name, check=False)


def test_stop_of_a_session_whose_host_was_killed_cleans_up_and_says_so(tmp_path, session_name):
    etl = tmp_path / "killed.etl"
    wpptrace("session", "start", session_name, "-f", str(etl))
    info = sessions.session_info(session_name)
    os.kill(info.host_pid, signal.SIGKILL)
    deadline = time.monotonic() + PATIENCE
    while not sessions.session_info(session_name).host_gone and time.monotonic() < deadline:
        time.sleep(0.02)
    result = wpptrace("session", "stop", session_name, check=False)
    assert result.returncode == 1
    assert f"its host process {info.host_pid} is gone" in result.stderr and "cleaned up" in result.stderr
    assert session_name not in wpptrace("session", "list").stdout
    assert wpptrace("session", "stop", session_name, check=False).stderr.strip().endswith("is running")
    header = etlcheck.read(etl).header
    assert header["EndTime"] == 0                     # the file says it was not stopped cleanly
    wpptrace("session", "start", session_name, "-f", str(tmp_path / "again.etl"))
    wpptrace("session", "stop", session_name)


def test_stop_that_loses_a_race_with_another_stop_says_no_session_runs(tmp_path, session_name, monkeypatch,
                                                                        capsys):
    """`session stop` asks where the session runs, then sends STOP. Another stop completing in
    between (a clean stop) made it report a crash that did not happen ("its host process N is
    gone (killed?); cleaned up ... says it was not stopped cleanly"): it inferred the host's death
    from the earlier answer. The STOP itself says whether it found the host gone."""
    from wpptrace.provider import session_cli

    etl = tmp_path / "raced.etl"
    session_cli.start(session_name, str(etl))
    real = sessions.session_info

    def answered_then_stopped_elsewhere(name):
        info = real(name)
        assert wpptrace("session", "stop", name).stdout.startswith(f"session {name!r} stopped: ")
        return info

    with monkeypatch.context() as patch:
        patch.setattr(sessions, "session_info", answered_then_stopped_elsewhere)
        status = session_cli.run(argparse.Namespace(session_command="stop", name=session_name))
    assert status == 1
    assert capsys.readouterr().err.splitlines() == [
        f"wpptrace session stop: error: no session named {session_name!r} is running"]
    assert etlcheck.read(etl).header["EndTime"] > 0          # it was stopped cleanly


def test_stop_of_a_session_whose_host_is_slow_to_answer_a_query_stops_it(tmp_path, session_name,
                                                                         monkeypatch):
    """`session stop` asks where the session runs first. A host that does not answer that in
    time is alive (ERROR_BUSY): the stop goes on (STOP waits longer) and the session stops,
    rather than the command failing (or, as it did when the query said "host gone", reporting a
    killed host it had cleaned up after)."""
    from wpptrace.provider import session_cli
    from wpptrace.winerror import Win32Error

    etl = tmp_path / "slow.etl"
    session_cli.start(session_name, str(etl))
    with monkeypatch.context() as patch:
        patch.setattr(sessions, "session_info", _busy)
        final, message = session_cli.stop(session_name)
    assert final is not None and message.startswith(f"session {session_name!r} stopped: {etl}")
    assert etlcheck.read(etl).header["EndTime"] > 0
    assert "did not answer in time" in session_cli._describe(Win32Error(170), session_name)


def test_stop_that_is_not_answered_in_time_says_the_session_is_stopping(tmp_path, session_name, monkeypatch,
                                                                         capsys):
    """A hosted STOP is answered once the file is flushed to the disk; on a slow disk that takes
    longer than the wait for the answer (ERROR_BUSY), though the session does stop. `session
    stop` said only that the host did not answer: it says the session is stopping, its file
    perhaps still being flushed, and how to see when it is done."""
    from wpptrace.provider import api, session_cli
    from wpptrace.provider._hazmat import lib
    from wpptrace.winerror import Win32Error

    session_cli.start(session_name, str(tmp_path / "slow-disk.etl"))
    real = api.ControlTrace

    def stop_unanswered(handle, name, properties, code):
        if code == lib.EVENT_TRACE_CONTROL_STOP:
            raise Win32Error(lib.ERROR_BUSY)
        return real(handle, name, properties, code)

    try:
        with monkeypatch.context() as patch:
            patch.setattr(api, "ControlTrace", stop_unanswered)
            status = session_cli.run(argparse.Namespace(session_command="stop", name=session_name))
    finally:
        session_cli.stop(session_name)
    lines = capsys.readouterr().err.splitlines()
    assert status == 1
    assert lines == [f"wpptrace session stop: error: session {session_name!r} is stopping, but its host process "
                     f"did not answer in time: it may still be flushing its log file to the disk (a slow disk), and the "
                     f"session ends once that is done ('wpptrace session list' shows whether it still runs); or "
                     f"a process holding this user's session registry locked is stopped (under a debugger?); "
                     f"try again"]


def test_list_marks_a_session_whose_host_is_slow_to_answer(tmp_path, session_name, monkeypatch):
    """QueryAllTraces lists a session whose host does not answer in time from what the registry
    holds (its counters unknown); `session list` says so under it rather than show its zeros as
    counts."""
    from wpptrace.provider import session_cli

    session_cli.start(session_name, str(tmp_path / "listed.etl"))
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sessions, "list_sessions", _listed_busy(sessions.list_sessions))
            mine = _session_lines(session_cli.listing(), session_name)
        assert not any(line.startswith("Host Process Id:") for line in mine)
    finally:
        session_cli.stop(session_name)


def test_list_asks_each_sessions_host_once(tmp_path, session_name, monkeypatch, capsys):
    """`session list` and `tracelog -l` query every session; they then asked each host again for
    its session info (host process, consumers), so a host that did not answer in time was
    waited for twice. The one query per session answers both."""
    from wpptrace.provider import session_cli, tracelog

    session_cli.start(session_name, str(tmp_path / "listed.etl"))
    try:
        asked = []
        with monkeypatch.context() as patch:
            patch.setattr(sessions, "session_info", lambda *args, **kw: asked.append(args))
            listed = session_cli.listing()
            capsys.readouterr()
            assert tracelog.main(["-l"]) == 0
            printed = capsys.readouterr().out.splitlines()
        assert asked == []
        for lines in (listed, printed):
            mine = lines[lines.index(f"{'Logger Name:':<24}{session_name}"):]
            assert f"{'Host Process Id:':<24}{sessions.session_info(session_name).host_pid}" in mine
    finally:
        session_cli.stop(session_name)


def _both_listings_failing(monkeypatch, capsys, code: int) -> list[str]:
    """`session list` and `tracelog -l` run while listing sessions fails with Win32 error
    ``code``: both exit 1; the lines they said."""
    from wpptrace.provider import session_cli, tracelog
    from wpptrace.winerror import Win32Error

    def failing():
        raise Win32Error(code, "list_sessions")
    monkeypatch.setattr(sessions, "list_sessions", failing)
    assert session_cli.run(argparse.Namespace(session_command="list")) == 1
    assert tracelog.main(["-l"]) == 1
    return capsys.readouterr().err.splitlines()


def test_a_failure_is_said_once_in_words(monkeypatch, capsys):
    """A session command failing for a Win32 error says its code's name, number and message
    once, in one line (not the name and number twice, then the call that failed)."""
    from wpptrace.provider import session_cli
    from wpptrace.winerror import Win32Error

    said = _both_listings_failing(monkeypatch, capsys, 87)
    assert said == [f"{who}: error: cannot list sessions: ERROR_INVALID_PARAMETER (87): The parameter is incorrect."
                    for who in ("wpptrace session list", "tracelog")]
    assert session_cli._describe(Win32Error(87, "EnableTrace"), "s") == (
        "ERROR_INVALID_PARAMETER (87): The parameter is incorrect.")


def test_list_says_so_when_the_registry_is_locked_by_a_stopped_process(monkeypatch, capsys):
    """A process stopped while it holds the session registry locked makes listing fail with
    ERROR_BUSY (rather than wait forever): `session list` and `tracelog -l` say what may hold it,
    in one line, without a traceback."""
    said = _both_listings_failing(monkeypatch, capsys, 170)
    assert said == [f"{who}: error: cannot list sessions now: a process holding this user's session registry locked "
                    f"is stopped (under a debugger?); try again" for who in ("wpptrace session list", "tracelog")]


def _busy(name=None, handle=0):
    """``sessions.session_info`` of a host that does not answer in time."""
    from wpptrace.winerror import Win32Error

    raise Win32Error(170)


def _listed_busy(list_sessions):
    """``sessions.list_sessions`` as it lists sessions whose host does not answer in time."""
    import dataclasses

    def listed():
        return [(props, dataclasses.replace(info, host_pid=0, busy=True)) for props, info in list_sessions()]
    return listed


def _session_lines(lines: list[str], session_name: str) -> list[str]:
    """A listing's lines of one session, checked to end with the busy host's note."""
    mine = lines[lines.index(f"{'Logger Name:':<24}{session_name}"):]
    mine = mine[:mine.index("")]
    assert mine[-1] == f"{'Host:':<24}did not answer in time (busy): its counters are not known"
    return mine


def test_tracelog_list_marks_a_session_whose_host_is_slow_to_answer(tmp_path, session_name, monkeypatch,
                                                                     capsys):
    """`tracelog -l` says under such a session what `session list` says, in the same words,
    rather than show its zeros as counts."""
    from wpptrace.provider import session_cli, tracelog

    session_cli.start(session_name, str(tmp_path / "listed.etl"))
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sessions, "list_sessions", _listed_busy(sessions.list_sessions))
            capsys.readouterr()
            assert tracelog.main(["-l"]) == 0
            printed = capsys.readouterr().out.splitlines()
            listed = session_cli.listing()
        mine = _session_lines(printed, session_name)
        assert mine == _session_lines(listed, session_name)
    finally:
        session_cli.stop(session_name)


def query_rows(text: str) -> dict[str, str]:
    return {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}


def test_start_options_and_every_session_command(tmp_path, session_name, apps):
    """Every option of ``session start`` reaches the session (query shows it) and the provider
    in another process (its ControlCallback sees the flags and level); flush, update, enable,
    disable, query and stop act on the running session."""
    control, message = uuid.uuid4(), uuid.uuid4()
    app = apps(control, message)
    app.send("register")
    app.expect("registered")
    etl = tmp_path / "options.etl"
    wpptrace("session", "start", session_name, "-f", str(etl), "--guid", str(control), "--flags", "0x3",
             "--level", "4", "--buffer-size", "8", "--min-buffers", "4", "--max-buffers", "40",
             "--flush-timer", "2", "--circular", "1")
    logger_id = str(sessions.session_info(session_name).logger_id)
    assert app.expect("enable") == ["enable", logger_id, "3", "4"]
    query = wpptrace("session", "query", session_name).stdout
    rows = query_rows(query)
    assert (rows["Buffer Size"], rows["Maximum Buffers"], rows["Minimum Buffers"], rows["Log Mode"],
            rows["Maximum File Size"], rows["Buffer Flush Timer"], rows["Log Filename"],
            rows["Enabled Providers"]) == ("8 Kb", "40", "4", "Circular", "1 Mb", "2 secs", str(etl), "1")
    assert re.search(rf"^\s+\{{{control}\}}\s+Flags 0x00000003\s+Level 4\s+registered in 1 process$", query, re.M)
    app.send("log 100 1")
    assert app.expect("logged") == ["logged", "100", "0", "0"]
    flushed = wpptrace("session", "flush", session_name).stdout
    assert re.search(r"flushed: ([2-9]|\d\d+) buffers written, 0 events lost", flushed), flushed
    updated = wpptrace("session", "update", session_name, "--flush-timer", "3", "--max-buffers", "50").stdout
    assert "flush timer 3, maximum buffers 50" in updated
    rows = query_rows(wpptrace("session", "query", session_name).stdout)
    assert (rows["Buffer Flush Timer"], rows["Maximum Buffers"]) == ("3 secs", "50")
    wpptrace("session", "enable", session_name, "--guid", f"{{{control}}}:0x5:2")
    assert app.expect("enable") == ["enable", logger_id, "5", "2"]
    wpptrace("session", "disable", session_name, "--guid", str(control))
    assert app.expect("disable") == ["disable"]
    assert query_rows(wpptrace("session", "query", session_name).stdout)["Enabled Providers"] == "0"
    assert "0 events lost" in wpptrace("session", "stop", session_name).stdout
    assert app.quiet() == []                            # disabled already: the stop has nothing to say
    c = etlcheck.read(etl)
    assert c.header["LogFileMode"] & 0x2 and c.header["BufferSize"] == 8192 and c.header["EndTime"]
    assert sorted(struct.unpack("<III", m.args)[2] for m in c.messages if m.guid == message) == list(range(100))


def test_start_sequential_with_a_size_and_a_clock(tmp_path, session_name):
    etl = tmp_path / "seq.etl"
    wpptrace("session", "start", session_name, "-f", str(etl), "--sequential", "3", "--clock", "2")
    try:
        rows = query_rows(wpptrace("session", "query", session_name).stdout)
        assert (rows["Log Mode"], rows["Maximum File Size"], rows["ClockType"]) == ("Sequential", "3 Mb", "SystemTime")
    finally:
        wpptrace("session", "stop", session_name)
    header = etlcheck.read(etl).header
    assert header["LogFileMode"] & 0x1 and header["MaximumFileSize"] == 3 and header["EndTime"]


def test_tracelog_says_its_own_refusals_as_every_failure(tmp_path, session_name, capsys):
    """A wrong tracelog argument is said as a failing action is ('tracelog: error: ...', one
    line), not in a form of its own or as a traceback. As every command of the project: exit
    status 2 when the command line itself is wrong, 1 when a -guid file is."""
    from wpptrace.provider import tracelog

    bad_line = tmp_path / "bad.ctl"
    bad_line.write_text(f"{SERVICE_GUID}\nzzz  NotAProvider\n")
    empty = tmp_path / "empty.guid"
    empty.write_text("# nothing but a comment\n")
    etl = str(tmp_path / "never.etl")
    for args, status, said in [
            (["-enable", session_name, "-guid", "#nope"], 2, "-guid #nope: not a GUID"),
            (["-enable", session_name, "-guid", SERVICE_GUID], 2,
             f"-guid {SERVICE_GUID}: give '#GUID' or a .ctl/.guid file"),
            # a missing file was said as a wrong spelling; it is a file that cannot be read
            (["-enable", session_name, "-guid", str(tmp_path / "no.ctl")], 1,
             f"{tmp_path / 'no.ctl'}: cannot read: The system cannot find the file specified "
             f"(ERROR_FILE_NOT_FOUND)"),
            (["-disable", session_name, "-guid", str(bad_line)], 1, f"{bad_line}:2: expected a GUID, got 'zzz'"),
            (["-enable", session_name, "-guid", str(empty)], 1, f"{empty}: no GUID in the file"),
            (["-enable", session_name, "-guid", str(tmp_path)], 1, f"{tmp_path}: cannot read: is a directory: expected a file (ERROR_BAD_PATHNAME)"),
            (["-enable", session_name], 2, "-enable needs -guid"),
            (["-disable", session_name], 2, "-disable needs -guid"),
            (["-flush"], 2, "-flush needs a logger name"),
            (["-q", "bad\x01name"], 2,
             "invalid session name 'bad\\x01name': 1 to 1023 bytes without control characters"),
            (["-start", session_name, "-f", etl, "-cir", "1", "-seq", "1"], 2, "-cir and -seq exclude each other"),
            (["-start", session_name, "-f", etl, "-cir", "0", "-seq", "1"], 2, "-cir and -seq exclude each other"),
            (["-flush", session_name, "-cir", "1", "-seq", "0"], 2, "-cir and -seq exclude each other"),
            (["-start", session_name], 2, "-start needs a log file (-f) or real-time delivery (-rt), or both"),
            ([session_name, "-f", etl], 2,
             "no action: give one of -start, -stop, -update, -enable, -disable, -flush, -q, -l (-h for help)"),
            # no argument at all printed the whole help (60 lines) for the same mistake
            ([], 2,
             "no action: give one of -start, -stop, -update, -enable, -disable, -flush, -q, -l (-h for help)"),
            (["-start", session_name, "-rt", "-cir", "4"], 2, "a circular session needs a log file (-f)")]:
        assert tracelog.main(args) == status, args
        assert capsys.readouterr() == ("", f"tracelog: error: {said}\n"), args
    assert not os.path.exists(etl)


def test_session_start_without_a_file_or_real_time_is_a_usage_error(tmp_path, session_name):
    """``session start X`` with neither -f nor --realtime (or --circular without -f) is the
    command line's mistake: exit status 2 (it was 1, as a session that failed), one line."""
    for extra, said in (((), "give a log file (-f) or real-time delivery (--realtime), or both"),
                        (("--realtime", "--circular", "4"), "a circular session needs a log file (-f)")):
        res = wpptrace("session", "start", session_name, *extra, check=False)
        assert (res.returncode, res.stdout, res.stderr) == (2, "", f"wpptrace session start: error: {said}\n")
    assert wpptrace("session", "query", session_name, check=False).returncode == 1


def test_session_start_over_an_existing_file_replaces_it_and_says_so(tmp_path, session_name, capsys):
    """``session start -f FILE`` replaces an existing FILE (as tracelog does on Windows), and
    says so in one stderr line; over a new file it says nothing. tracelog stays silent, as on
    Windows. The help says how to keep a file: another name."""
    from wpptrace.provider import tracelog

    etl = tmp_path / "earlier.etl"
    etl.write_bytes(b"an earlier trace")
    res = wpptrace("session", "start", session_name, "-f", str(etl))
    try:
        assert res.stderr == f"wpptrace session start: replacing existing {etl}\n"
    finally:
        wpptrace("session", "stop", session_name)
    assert etlcheck.read(etl).header["EndTime"]     # the session's file, not the earlier one
    fresh = tmp_path / "fresh.etl"
    res = wpptrace("session", "start", session_name, "-f", str(fresh))
    wpptrace("session", "stop", session_name)
    assert res.stderr == ""
    assert tracelog.main(["-start", session_name, "-f", str(etl)]) == 0
    wpptrace("session", "stop", session_name)
    assert capsys.readouterr().err == ""
    text = " ".join(wpptrace("session", "start", "--help").stdout.split())
    assert "an existing FILE is replaced, as tracelog does; give another name to keep it" in text


def test_session_update_to_an_existing_file_replaces_it_and_says_so(tmp_path, session_name):
    """``session update -f FILE`` switching to an existing FILE replaces it, and says so in one
    stderr line, as ``session start`` does; to a new file it says nothing."""
    wpptrace("session", "start", session_name, "-f", str(tmp_path / "first.etl"))
    try:
        earlier = tmp_path / "earlier.etl"
        earlier.write_bytes(b"an earlier trace")
        res = wpptrace("session", "update", session_name, "-f", str(earlier))
        assert res.stderr == f"wpptrace session update: replacing existing {earlier}\n"
        res = wpptrace("session", "update", session_name, "-f", str(tmp_path / "fresh.etl"))
        assert res.stderr == ""
        # to the file it writes: no switch, nothing replaced, nothing said
        fresh = tmp_path / "fresh.etl"
        before = fresh.stat().st_ino
        res = wpptrace("session", "update", session_name, "-f", str(fresh))
        assert (res.returncode, res.stderr) == (0, "") and fresh.stat().st_ino == before
    finally:
        wpptrace("session", "stop", session_name)
    assert etlcheck.read(earlier).header["EndTime"]     # the session's file, not the earlier one
    text = " ".join(wpptrace("session", "update", "--help").stdout.split())
    assert "an existing FILE is replaced, as tracelog does" in text


def test_tracelog_help_says_what_each_exit_status_means():
    """The help says the exit statuses tracelog gives: 2 for bad usage, as argparse's own
    refusals (an unknown option, a wrong number) and every other command of the project."""
    shown = tracelog("-h")
    assert shown.returncode == 0
    text = " ".join(shown.stdout.split())
    assert "Exit status: 0 success; 1 the action failed (the session, a -guid file); 2 bad usage" in text
    refused = tracelog("-q", "x", "-nosuch")
    assert (refused.returncode, refused.stdout) == (2, "")
    assert "-nosuch: not an option this tracelog takes" in refused.stderr


def test_tracelog_two_actions_or_an_unknown_option_are_a_one_line_usage_error(tmp_path, session_name, capsys):
    """What can only be a mistake (two actions at once, an option tracelog does not have) is
    one line, exit status 2, as every other refusal: no usage block, nothing started."""
    from wpptrace.provider import tracelog

    etl = tmp_path / "never.etl"
    for args, said in [
            (["-start", session_name, "-f", str(etl), "-stop"], "argument -stop: not allowed with argument -start"),
            (["-flush", session_name, "-l"], "argument -l: not allowed with argument -flush"),
            (["-start", session_name, "-f", str(etl), "-nosuch"], "-nosuch: not an option this tracelog takes"),
            # argparse read these as a one-letter option with a value glued on: -f io, -f tx, -l s
            (["-start", session_name, "-f", str(etl), "-fio"], "-fio: not an option this tracelog takes"),
            (["-start", session_name, "-f", str(etl), "-ftx"], "-ftx: not an option this tracelog takes"),
            (["-start", session_name, "-rt", "-f", str(etl), "-rt=1"], "-rt=1: not an option this tracelog takes"),
            (["-ls"], "-ls: not an option this tracelog takes")]:
        assert tracelog.main(args) == 2, args
        assert capsys.readouterr() == ("", f"tracelog: error: {said}\n"), args
    assert not etl.exists() and not os.path.exists("io") and not os.path.exists("tx")
    assert wpptrace("session", "query", session_name, check=False).returncode == 1


def test_tracelog_ignores_options_its_action_does_not_use(tmp_path, session_name, capsys):
    """As Windows tracelog (a script written for it runs unchanged), an option the action does
    not use is ignored: -q, -flush and -update enable no -guid and change no buffer size,
    -stop Name -f x.etl stops Name and makes no x.etl. The help says so."""
    from wpptrace.provider import session_cli, tracelog

    guid = uuid.uuid4()
    etl, other = tmp_path / "s.etl", tmp_path / "x.etl"
    assert tracelog.main(["-start", session_name, "-f", str(etl)]) == 0
    try:
        for args in (["-q", session_name, "-guid", f"#{guid}", "-b", "8", "-f", str(other)],
                     ["-flush", session_name, "-guid", f"#{guid}", "-cir", "4", "-level", "2"],
                     ["-update", session_name, "-guid", f"#{guid}", "-b", "8", "-min", "9"]):
            assert tracelog.main(args) == 0, args
        capsys.readouterr()
        rows = query_rows("\n".join(session_cli.query(session_name)))
        assert (rows["Buffer Size"], rows["Log Mode"], rows["Log Filename"], rows["Enabled Providers"]) == (
            "64 Kb", "Sequential", str(etl), "0")
        assert tracelog.main(["-stop", session_name, "-f", str(other), "-guid", f"#{guid}", "-rt"]) == 0
        assert "Operation Status:       0L" in capsys.readouterr().out
        assert not other.exists() and etlcheck.read(etl).header["EndTime"]
        assert wpptrace("session", "query", session_name, check=False).returncode == 1
    finally:
        wpptrace("session", "stop", session_name, check=False)
    assert tracelog.main(["-h"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "An option the action does not use is ignored, as Windows tracelog ignores it" in text


@pytest.mark.parametrize("guid", ["#nope", "bad.ctl"])
def test_tracelog_start_with_a_bad_guid_starts_nothing(tmp_path, session_name, guid):
    """-start reads every -guid before it starts the session: a wrong one is refused with no
    session left running and no log file made."""
    (tmp_path / "bad.ctl").write_text("not-a-guid\n")
    etl = tmp_path / "never.etl"
    try:
        result = tracelog("-start", session_name, "-f", str(etl), "-guid", guid, cwd=tmp_path)
        status, said = ((2, "-guid #nope: not a GUID") if guid == "#nope"    # a usage error, a file's
                        else (1, "bad.ctl:1: expected a GUID, got 'not-a-guid'"))
        assert (result.returncode, result.stdout, result.stderr) == (status, "", f"tracelog: error: {said}\n")
        assert session_name not in wpptrace("session", "list").stdout
        assert not etl.exists()
    finally:
        wpptrace("session", "stop", session_name, check=False)


@pytest.mark.parametrize("failure", ["win32", "interrupt", "stop fails too", "interrupt, stop fails too"])
def test_tracelog_start_failing_after_the_start_stops_the_session(tmp_path, session_name, monkeypatch,
                                                                  capsys, failure):
    """A failure once the session is started (its query, Ctrl-C) stops it again, as a failing
    enable does: a failing -start leaves no session running. If that stop fails as well, one
    error line says the failure and the failed stop (Ctrl-C: the failed stop, exit 130)."""
    from wpptrace.provider import session_cli, tracelog
    from wpptrace.winerror import Win32Error

    stop = session_cli.stop

    def failing(props):
        raise KeyboardInterrupt if failure.startswith("interrupt") else Win32Error(8, "ControlTrace")
    monkeypatch.setattr(session_cli, "shown_text", failing)
    if failure.endswith("stop fails too"):
        def refused(name):
            raise session_cli.SessionError("refused")
        monkeypatch.setattr(session_cli, "stop", refused)
    try:
        status = tracelog.main(["-start", session_name, "-f", str(tmp_path / "s.etl")])
        out, err = capsys.readouterr()
        left = f"session {session_name!r} was started but could not be stopped again: refused"
        if failure == "interrupt":
            assert (status, out, err) == (130, "", "")
        elif failure == "interrupt, stop fails too":
            assert (status, out, err) == (130, "", f"tracelog: error: {left}\n")
        elif failure == "stop fails too":
            said = Win32Error(8, "ControlTrace").strerror
            assert (status, out, err) == (1, "", f"tracelog: error: {said}; {left}\n")
        else:
            assert status == 1 and out.startswith("Operation Status:       8L      "), out
        if failure.endswith("stop fails too"):
            assert any(session_name in line for line in session_cli.listing())
        else:
            assert err == ""
            assert not any(session_name in line for line in session_cli.listing())
    finally:
        with contextlib.suppress(session_cli.SessionError):
            stop(session_name)


@pytest.mark.parametrize("failure", ["win32", "interrupt", "stop fails too"])
def test_session_start_failing_after_the_start_stops_the_session(tmp_path, session_name, monkeypatch,
                                                                 failure):
    """wpptrace session start: a failure once the session is started (asking where it runs,
    Ctrl-C) stops it again, as a failing enable does; a stop that fails as well is said in the
    same one line. (Asking where it runs failed with a traceback and left the session running.)"""
    from wpptrace.provider import session_cli
    from wpptrace.winerror import Win32Error

    stop, session_info = session_cli.stop, sessions.session_info
    asked = []

    def failing_once(*args, **kwargs):
        asked.append(args)
        if len(asked) == 1:
            raise KeyboardInterrupt if failure == "interrupt" else Win32Error(8, "session_info")
        return session_info(*args, **kwargs)
    monkeypatch.setattr(sessions, "session_info", failing_once)
    if failure == "stop fails too":
        def refused(name):
            raise session_cli.SessionError("refused")
        monkeypatch.setattr(session_cli, "stop", refused)
    args = argparse.Namespace(session_command="start", name=session_name, logfile=str(tmp_path / "s.etl"),
                              realtime=False, circular=0, sequential=0, buffer_size=64, min_buffers=0,
                              max_buffers=0, flush_timer=1, clock=1, guid=[], flags=0xFFFFFFFF, level=5)
    out, err = io.StringIO(), io.StringIO()
    try:
        if failure == "interrupt":
            with pytest.raises(KeyboardInterrupt):
                session_cli.run(args, out, err)
        else:
            assert session_cli.run(args, out, err) == 1
        running = any(session_name in line for line in session_cli.listing())
        if failure == "stop fails too":
            assert running
            assert err.getvalue().startswith("wpptrace session start: error: ")
            assert err.getvalue().endswith(f"; session {session_name!r} was started but could not be "
                                           f"stopped again: refused\n")
            assert err.getvalue().count("\n") == 1
        else:
            assert not running
            assert out.getvalue() == ""
            assert err.getvalue().count("\n") == (failure != "interrupt")
    finally:
        with contextlib.suppress(session_cli.SessionError):
            stop(session_name)


@pytest.mark.parametrize("kind", ["-seq", "-cir"])
def test_tracelog_file_kinds_guid_files_and_enable(tmp_path, session_name, apps, kind):
    """-seq/-cir MB, a .guid file, and -enable of a second provider on a running session."""
    first, second = uuid.uuid4(), uuid.uuid4()
    a, b = apps(first, uuid.uuid4()), apps(second, uuid.uuid4())
    for app in (a, b):
        app.send("register")
        app.expect("registered")
    guid_file = tmp_path / "first.guid"
    guid_file.write_text(f"{first}  FirstProvider  # one per line\n")
    started = tracelog("-start", session_name, "-f", str(tmp_path / "k.etl"), "-guid", str(guid_file),
                       "-flag", "0x6", "-level", "3", kind, "2")
    assert started.returncode == 0, started.stderr
    rows = query_rows(started.stdout)
    assert (rows["Log Mode"], rows["Maximum File Size"]) == (
        "Sequential" if kind == "-seq" else "Circular", "2 Mb")
    logger_id = str(sessions.session_info(session_name).logger_id)
    assert a.expect("enable") == ["enable", logger_id, "6", "3"]
    enabled = tracelog("-enable", session_name, "-guid", f"#{second}", "-flag", "1", "-level", "2")
    assert enabled.returncode == 0, enabled.stderr
    assert b.expect("enable") == ["enable", logger_id, "1", "2"]
    assert query_rows(tracelog("-q", session_name).stdout)["Enabled Providers"] == "2"
    assert tracelog("-stop", session_name).returncode == 0
    a.expect("disable")
    b.expect("disable")


@pytest.mark.parametrize("error, said", [(28, "ERROR_DISK_FULL (112)"), (5, "ERROR_WRITE_FAULT (29)"),
                                         (27, "ERROR_FILE_TOO_LARGE (223)")])
def test_stop_of_a_session_whose_file_could_not_be_completed_says_so(tmp_path, session_name, capsys,
                                                                     error, said):
    """Every write of the session's file after its first header fails (ENOSPC: a full disk; EIO:
    a failing one; EFBIG: the file size limit), in its host process: the buffers flushed are counted as lost, and STOP still
    stops the session and fills in its counters, but answers why its file is incomplete.
    `session stop` says so in one line and fails (it said "stopped" as for a complete file)."""
    from wpptrace.provider import session_cli
    from wpptrace.provider._hazmat import lib

    etl = tmp_path / "failing.etl"
    lib.wpptrace_debug_fail_file_writes(1, 1 << 30, error)   # the host, forked now, inherits it
    try:
        session_cli.start(session_name, str(etl), buffer_size=4)
    finally:
        lib.wpptrace_debug_fail_file_writes(0, 0, 0)
    # buffers to flush: logged from this process into the hosted session
    import wpptrace.provider as P
    from wpptrace.provider import api
    session = api.ControlTrace(0, session_name, None, lib.EVENT_TRACE_CONTROL_QUERY).HistoricalContext
    for i in range(3000):
        P.TraceMessage(session, P.TRACE_MESSAGE_TIMESTAMP, None, 1, i.to_bytes(8, "little"))
    assert session_cli.run(argparse.Namespace(session_command="stop", name=session_name)) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    found = re.fullmatch(rf"wpptrace session stop: error: session {re.escape(repr(session_name))} stopped, but its "
                         rf"log file {re.escape(str(etl))} is incomplete: (\d+) buffers could not be written\. "
                         rf"{re.escape(said)}: .*", lines[0])
    assert found and int(found.group(1)) > 0, lines[0]
    assert session_name not in wpptrace("session", "list").stdout    # stopped all the same


@pytest.mark.parametrize("error", ["ERROR_DISK_FULL", "ERROR_WRITE_FAULT"])
def test_stop_of_a_session_whose_file_could_not_be_flushed_to_the_disk_says_so(tmp_path, session_name, capsys,
                                                                               error):
    """Every buffer of the hosted session's file is written, but its flush to the disk fails
    (a full disk, quota or failing disk seen only at fdatasync or close). STOP answers why, as
    for a private session: `session stop` says so in one line and fails (the host answered
    STOP before the flush, and only its log, truncated by the slot's next host, said it)."""
    from wpptrace.provider import session_cli
    from wpptrace.provider._hazmat import lib

    etl = tmp_path / "unflushed.etl"
    lib.wpptrace_debug_fail_file_flushes(1, getattr(lib, error))   # the host, forked now, inherits it
    try:
        session_cli.start(session_name, str(etl), buffer_size=4)
    finally:
        lib.wpptrace_debug_fail_file_flushes(0, 0)
    assert session_cli.run(argparse.Namespace(session_command="stop", name=session_name)) == 1
    lines = capsys.readouterr().err.splitlines()
    code = getattr(lib, error)
    assert len(lines) == 1 and lines[0].startswith(
        f"wpptrace session stop: error: session {session_name!r} stopped, but its log file {etl} is incomplete: "
        f"it could not be finished. {error} ({code}): "), lines
    assert session_name not in wpptrace("session", "list").stdout    # stopped all the same


def _update_after_failed_writes(tmp_path, session_name, writes_failing: int, writes_done: int = 1,
                                traced: bool = True):
    """A session started on first.etl whose host fails ``writes_failing`` file writes after
    its first ``writes_done`` (ENOSPC), one message traced (if ``traced``) and flushed, then
    `session update -f second.etl`: (first, second, the session's handle, the command's exit
    status)."""
    import wpptrace.provider as P
    from wpptrace.provider import api, session_cli
    from wpptrace.provider._hazmat import lib

    first, second = tmp_path / "first.etl", tmp_path / "second.etl"
    lib.wpptrace_debug_fail_file_writes(writes_done, writes_failing, 28)   # the host, forked now
    try:
        session_cli.start(session_name, str(first), buffer_size=4)
    finally:
        lib.wpptrace_debug_fail_file_writes(0, 0, 0)
    session = api.ControlTrace(0, session_name, None, lib.EVENT_TRACE_CONTROL_QUERY).HistoricalContext
    if traced:
        P.TraceMessage(session, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"\0")
    session_cli.flush(session_name)
    update = argparse.Namespace(session_command="update", name=session_name, flush_timer=None,
                                max_buffers=None, logfile=str(second))
    return first, second, session, session_cli.run(update)


def _host_log_could_not(session) -> tuple[str, list[str]]:
    """The path of the host log of ``session`` (its handle), and its lines that say what could
    not be done."""
    from wpptrace.provider import sessions

    log = os.path.join(sessions.runtime_directory(), f"s-{session & 0xFFFF}.log")
    with open(log) as fh:
        return log, [line for line in fh if "could not" in line]


def test_update_whose_old_and_new_files_both_fail_names_both(tmp_path, session_name, capsys):
    """The old file cannot be completed and the new one cannot be started (a full disk): the
    UPDATE's one error code is the old file's, and the user heard only of that one, as if the
    session went on in the new file. The CLI names both files and says the session writes no
    file now; the host's log names both files and both errors in one line."""
    from wpptrace.provider import session_cli

    # the host: its header written, no write after it
    first, second, session, status = _update_after_failed_writes(tmp_path, session_name, 1000)
    assert status == 1
    log, said = _host_log_could_not(session)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"wpptrace session update: error: session {session_name!r}: its previous log file {first} is "
                     f"incomplete (ERROR_DISK_FULL (112): There is not enough space on the disk.), and the "
                     f"new log file {second} could not be started (ERROR_DISK_FULL (112): There is not "
                     f"enough space on the disk.); the session writes no file now (its host log: {log})"], lines
    session_cli.stop(session_name)
    assert len(said) == 1 and said[0].rstrip().endswith(
        f"the log file {first} could not be completed (error 112), and the new log file {second} "
        f"could not be started (error 112): the session writes no file"), said


def test_update_to_a_new_file_says_the_old_one_is_incomplete(tmp_path, session_name, capsys):
    """In the session's host, the one buffer written to the first file could not be (ENOSPC: a
    full disk). `session update -f` switches to the new file all the same, and says in one line
    that the old one is incomplete; the session goes on in the new file."""
    import wpptrace.provider as P
    from wpptrace.provider import session_cli

    # the host: its header written, the next write not
    first, second, session, status = _update_after_failed_writes(tmp_path, session_name, 1)
    assert status == 1
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"wpptrace session update: error: session {session_name!r} updated (log file {second}), but "
                     f"its previous log file {first} is incomplete. "
                     f"ERROR_DISK_FULL (112): There is not enough space on the disk."], lines
    P.TraceMessage(session, P.TRACE_MESSAGE_TIMESTAMP, None, 1, b"\1")
    final, _ = session_cli.stop(session_name)
    assert final.LogFileName == str(second) and final.LogBuffersLost == 1


def test_update_whose_new_file_alone_fails_says_the_old_one_is_complete(tmp_path, session_name, capsys):
    """The old file is completed (its header, the buffer flushed, the header after it, its last
    header: four writes), and the new one cannot be started (a full disk at its first write).
    UPDATE's one code was the same as when the old file failed, and the user heard that the
    complete old file was incomplete. The CLI says the old file was completed, why the new one
    could not be started, and that the session writes no file now."""
    from wpptrace.provider import session_cli

    first, second, session, status = _update_after_failed_writes(tmp_path, session_name, 1000, writes_done=4)
    assert status == 1
    log, said = _host_log_could_not(session)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"wpptrace session update: error: session {session_name!r}: its previous log file {first} was "
                     f"completed, but the new log file {second} could not be started (ERROR_DISK_FULL "
                     f"(112): There is not enough space on the disk.); the session writes no file now "
                     f"(its host log: {log})"], lines
    final, _ = session_cli.stop(session_name)
    assert final.LogFileName is None
    assert len(said) == 1 and said[0].rstrip().endswith(
        f"the new log file {second} could not be started (error 112): the session writes no file"), said
    c = etlcheck.read(first)
    assert c.header["EndTime"] != 0 and len(c.messages) == 1


def test_update_of_the_kernel_logger_names_the_log_its_host_writes(tmp_path, capsys):
    """The NT Kernel Logger (LoggerId 0xFFFF) has slot 0, and its host writes s-0.log; the CLI
    named s-65535.log, a file no host writes. Host and CLI take the name from one function."""
    from wpptrace.provider import session_cli, sessions

    name = "NT Kernel Logger"
    # its file's header, and its last header (no message: the kernel logger takes none from here)
    first, second, session, status = _update_after_failed_writes(tmp_path, name, 1000, writes_done=2,
                                                                 traced=False)
    try:
        assert status == 1 and session & 0xFFFF == 0xFFFF
        log = os.path.join(sessions.runtime_directory(), "s-0.log")
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and lines[0].endswith(f"the session writes no file now (its host log: {log})"), lines
        with open(log) as fh:
            assert any(f"the new log file {second} could not be started" in line for line in fh)
        assert sessions.host_log_path(0xFFFF) == log
    finally:
        session_cli.stop(name)


@pytest.mark.parametrize("action, says", [
    ("update", "Change settings of a running session"),
    ("enable", "Enable providers on a running session"),
    ("disable", "Disable providers on a running session"),
])
def test_session_subcommands_say_what_they_do(action, says):
    """`wpptrace session ACTION --help` says what the action does, and every option of
    update says what it changes."""
    text = " ".join(wpptrace("session", action, "--help").stdout.split())
    assert says in text
    if action == "update":
        assert "--flush-timer SECONDS write partly filled buffers this often" in text


@pytest.mark.parametrize("action", ["start", "update"])
def test_the_flush_timer_help_says_what_the_core_does_with_0(action):
    """0 writes only full buffers, but the core flushes a real-time session every second
    whatever the timer says (its consumers would wait for a full buffer otherwise)."""
    text = " ".join(wpptrace("session", action, "--help").stdout.split())
    assert "0: only full ones, but a" in text
    assert "real-time session" in text and "still flushes every second" in text
    if action == "update":
        assert "milliseconds for a session started with EVENT_TRACE_USE_MS_FLUSH_TIMER" in text


def test_session_update_asks_the_session_once(tmp_path, session_name, monkeypatch, capsys):
    """``session update -f FILE`` words "replacing" from the QUERY it makes for the update
    itself, not from a second one (which another update could change in between)."""
    from wpptrace.provider import api, session_cli
    from wpptrace.provider._hazmat import lib

    session_cli.start(session_name, str(tmp_path / "first.etl"))
    try:
        asked = []
        control, update_trace = api.ControlTrace, api.update_trace

        def counted(handle, name, props, code):
            asked.append(code)
            return control(handle, name, props, code)

        def counted_update(handle, name, props):
            asked.append(lib.EVENT_TRACE_CONTROL_UPDATE)
            return update_trace(handle, name, props)
        monkeypatch.setattr(api, "ControlTrace", counted)
        monkeypatch.setattr(api, "update_trace", counted_update)
        earlier = tmp_path / "earlier.etl"
        earlier.write_bytes(b"an earlier trace")
        update = argparse.Namespace(session_command="update", name=session_name, flush_timer=None,
                                    max_buffers=None, logfile=str(earlier))
        capsys.readouterr()
        assert session_cli.run(update) == 0
        assert capsys.readouterr().err == f"wpptrace session update: replacing existing {earlier}\n"
        assert asked == [lib.EVENT_TRACE_CONTROL_QUERY, lib.EVENT_TRACE_CONTROL_UPDATE]
    finally:
        monkeypatch.undo()
        session_cli.stop(session_name)


def test_a_provider_name_gives_its_control_guid_to_tracelog_and_session():
    """``*Name`` stands for the control GUID ETW derives from provider name Name, the one
    Provider("Name") takes by default: tracelog -guid '*Name' read it as a file ("cannot find
    the file specified", exit 1) and --guid '*Name' refused it ("badly formed hexadecimal UUID
    string", exit 2)."""
    from wpptrace.provider import tracelog as tl
    from wpptrace.provider.session_cli import parse_guid_spec
    from wpptrace.provider.tracing import Provider
    expected = uuid.UUID("731465b4-cbad-560e-fb32-79c202e54be0")
    assert Provider("MyApp2", register=False).guid == expected
    assert tl._guids(["*MyApp2"]) == [expected]
    assert parse_guid_spec("*MyApp2") == (expected, None, None)
    assert parse_guid_spec("*MyApp2:0x3:4") == (expected, 3, 4)
    for bad in ("*", "* "):
        with pytest.raises(tl.UsageError, match="expected a provider name after"):
            tl._guids([bad])
        with pytest.raises(argparse.ArgumentTypeError, match="expected a provider name after"):
            parse_guid_spec(bad)
