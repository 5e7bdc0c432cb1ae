"""A session host told to stop while another process, stopped (SIGSTOP, a debugger), holds the
runtime directory's registry lock: it completes its log file without waiting for that process."""
from __future__ import annotations

import os
import pathlib
import signal
import struct
import subprocess
import sys
import time

import provider_etlcheck as etlcheck

HOLD = """
import fcntl, os, signal, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(1, b"h")
os.kill(os.getpid(), signal.SIGSTOP)
"""


def _end_time(path) -> int:
    try:
        return etlcheck.read(path).header["EndTime"]
    except (OSError, etlcheck.EtlCheckError, struct.error):   # still being written
        return 0


def _gone(pid: int) -> bool:
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def _stopped_while_held(build, out, seen):
    """Runs the session "registry-held" (its host left running), has a process stopped holding
    the registry's lock, sends the host SIGTERM and calls ``seen(runtime, log_file)`` until it
    is true (a hang fails there, after 30 s: no time is measured). Then lets the lock go and
    waits for the host to end. Returns what ``seen`` said last and whether the host still ran
    then."""
    runtime = out / "rt"
    program = build("stop_registry_held")
    started = subprocess.run([str(program), str(out)], capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    host = int(started.stdout.split()[1])
    path = out / "registry-held.etl"
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(runtime / "registry")], stdout=subprocess.PIPE)
    said = None
    try:
        assert holder.stdout.read(1) == b"h"
        _, status = os.waitpid(holder.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        os.kill(host, signal.SIGTERM)
        for _ in range(600):
            said = seen(runtime, path)
            if said:
                break
            time.sleep(0.05)
        host_ran = not _gone(host)
    finally:
        holder.kill()
        holder.wait()
        for _ in range(600):
            if _gone(host):
                break
            time.sleep(0.05)
        if not _gone(host):
            os.kill(host, signal.SIGKILL)
    assert _gone(host)
    return said, host_ran


def test_a_host_stopped_while_a_stopped_process_holds_the_registry_completes_its_file(
        build_c_program_with_test_points, out):
    """The host disabled its providers before completing its file, and waited for the registry's
    lock for that without limit: held by a stopped process, the buffers in memory and the final
    header were never written (a STOP got ERROR_BUSY after 120 s, a host killed later lost the
    events). Now the host gives that wait up, completes the file, and disables its providers
    once it has the lock. It gives it up on a short limit of its own, not after the registry's
    usual wait (10 s, here longer than this test waits): as long as a container's stop grace
    period, that wait left a host killed before it had written its file."""
    completed, _ = _stopped_while_held(build_c_program_with_test_points, out,
                                       lambda runtime, path: _end_time(path) != 0)
    assert completed
    assert len(etlcheck.read(out / "registry-held.etl").messages) == 20


def test_a_host_waiting_for_the_registry_after_its_file_is_complete_says_so(
        build_c_program_with_test_points, out):
    """A host that completed its file and waits for the registry's lock to disable its providers
    and free its entry said nothing meanwhile: a STOP's reply, which waits for that too, looked
    like a flush that never ended. Its log now says the file is complete and what it waits for,
    while the lock is still held (the host runs on), and the file is complete by then."""
    waiting = f"the log file {out / 'registry-held.etl'} is complete; waiting for the registry's lock"

    def logged(runtime, path):
        text = "".join(log.read_text() for log in runtime.glob("s-*.log"))
        return waiting in text and (text, _end_time(path) != 0)

    said, host_ran = _stopped_while_held(build_c_program_with_test_points, out, logged)
    assert said, "the host never said it waits for the registry's lock"
    assert said[1] and host_ran
