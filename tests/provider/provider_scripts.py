"""Application scripts the provider tests run in a Python of their own, with a runtime directory
given: the session calls they share (SESSION_CALLS, put before each script by run_script)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

# Names a script sets before calling these: `out`, the directory log files go to.
SESSION_CALLS = textwrap.dedent("""
    import os, resource, subprocess, sys, time, uuid
    import wpptrace.provider as P
    GUID = uuid.UUID("0f1d2c3b-4a59-4867-8e7d-6c5b4a392817")
    PRIVATE = P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC

    def props(name, mode=PRIVATE):
        return P.EVENT_TRACE_PROPERTIES(LogFileName=os.path.join(out, name + ".etl"), LogFileMode=mode)

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "wpptrace", "session", *args], capture_output=True).returncode

    def query(handle):
        try:
            return P.ControlTrace(handle, None, props("q"), P.EVENT_TRACE_CONTROL_QUERY).LoggerName
        except P.Win32Error as exc:
            return exc.name

    def stop(handle):
        try:
            return P.ControlTrace(handle, None, props("q"), P.EVENT_TRACE_CONTROL_STOP).LoggerName
        except P.Win32Error as exc:
            return exc.name

    def enable(handle):
        try:
            P.EnableTrace(True, 0, 4, GUID, handle)
            return "enabled"
        except P.Win32Error as exc:
            return exc.name

    def gone(pid):
        # ended (a zombie not yet reaped counts: it runs no more); reaped between the open and
        # the read, the read fails with ESRCH or reads nothing
        try:
            with open("/proc/%d/stat" % pid) as f:
                text = f.read()
        except (FileNotFoundError, ProcessLookupError):
            return True
        fields = text.rpartition(")")[2].split()
        return not fields or fields[0] in "ZX"

    def wait_gone(pid, seconds=60):
        # True once it ended, False if it still runs after `seconds` (not our child: never reaped)
        deadline = time.monotonic() + seconds
        while not gone(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return gone(pid)

    def without_descriptors(call, left=0):
        # every descriptor taken but `left` (as an application at its limit): /proc cannot be
        # opened
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        held = []
        try:
            while True:
                held.append(os.open("/dev/null", os.O_RDONLY))
        except OSError:
            pass
        for _ in range(left):
            os.close(held.pop())
        try:
            return call()
        finally:
            for fd in held:
                os.close(fd)
""")


def run_script(text: str, runtime, *args, timeout: int = 60) -> subprocess.CompletedProcess:
    """Runs ``text`` (after SESSION_CALLS) in a Python of its own whose runtime directory is
    ``runtime``, with ``runtime`` and ``args`` as its arguments."""
    return subprocess.run([sys.executable, "-c", SESSION_CALLS + textwrap.dedent(text), str(runtime),
                           *map(str, args)], env=dict(os.environ, WPPTRACE_RUNTIME_DIR=str(runtime)),
                          capture_output=True, text=True, timeout=timeout)
