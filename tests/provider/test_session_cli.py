"""The operator's workflow from the shell: wpptrace session / tracelog start a session for a
running application, enable it, watch it live (fmt --rt / tracefmt -rt), stop it, decode."""
from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time

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


def tracelog(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["tracelog", *args], capture_output=True, text=True, timeout=PATIENCE)


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


def test_start_enable_watch_stop_decode(tmp_path, session_name, service, service_tmf):
    etl = tmp_path / "shop.etl"
    out = wpptrace("session", "start", session_name, "-f", str(etl), "--realtime").stdout
    assert f"session '{session_name}' started" in out and str(etl) in out
    view = subprocess.Popen([sys.executable, "-m", "wpptrace", "fmt", "--rt", session_name, "-p", str(service_tmf)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    try:
        wpptrace("session", "enable", session_name, "--guid", f"{SERVICE_GUID}:0x1:4")
        live = read_requests(view, 5)
        assert len(live) >= 5 and live == list(range(live[0], live[0] + len(live)))
        query = wpptrace("session", "query", session_name).stdout
        assert re.search(rf"^Logger Name:\s+{re.escape(session_name)}$", query, re.M)
        assert re.search(rf"^\s+\{{{SERVICE_GUID}\}}\s+Flags 0x00000001\s+Level 4\s+registered in 1 process$",
                         query, re.M), query
        assert session_name in wpptrace("session", "list").stdout
        stopped = wpptrace("session", "stop", session_name).stdout
        assert "stopped" in stopped and "0 events lost" in stopped
        _, err = view.communicate(timeout=PATIENCE)
        assert view.returncode == 0, err
    finally:
        if view.poll() is None:
            view.kill()
            view.wait()
    assert service.poll() is None                      # the application ran on throughout
    decoded = wpptrace("fmt", str(etl), "-p", str(service_tmf)).stdout
    numbers = [int(m.group(1)) for line in decoded.splitlines() if (m := REQUEST.search(line))]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))) and set(live) <= set(numbers)
    assert wpptrace("session", "query", session_name, check=False).returncode == 1


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
    assert nodir.returncode == 1 and "does not exist" in nodir.stderr
    isdir = wpptrace("session", "start", session_name, "-f", str(tmp_path), check=False)
    assert isdir.returncode == 1 and "is a directory" in isdir.stderr
    neither = wpptrace("session", "start", session_name, check=False)
    assert neither.returncode == 1 and "give a log file" in neither.stderr
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
