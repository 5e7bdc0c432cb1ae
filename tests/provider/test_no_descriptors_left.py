"""A process with no descriptor left cannot open /proc: what it looks up there cannot be told,
and is never taken for gone (a live writer's record given up as a dead one's)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

_PENDING = textwrap.dedent("""
    import os, resource, sys, threading
    import wpptrace.provider as P
    from wpptrace.provider.sessions import session_info
    props = P.EVENT_TRACE_PROPERTIES(LogFileName=os.path.join(sys.argv[1], "s.etl"),
                                     LogFileMode=P.EVENT_TRACE_PRIVATE_LOGGER_MODE | P.EVENT_TRACE_PRIVATE_IN_PROC)
    handle = P.StartTrace("pending-writer", props)
    reserved, done = threading.Event(), threading.Event()

    def writer():   # reserves a record (marked pending) and, alive, never commits it
        P._lib.wpptrace_debug_reserve_only(handle, 64)
        reserved.set()
        done.wait()

    thread = threading.Thread(target=writer)
    thread.start()
    reserved.wait()
    # every descriptor taken (as an application at its limit): /proc cannot be opened
    resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    held = []
    try:
        while True:
            held.append(os.open("/dev/null", os.O_RDONLY))
    except OSError:
        pass
    P.ControlTrace(handle, None, props, P.EVENT_TRACE_CONTROL_FLUSH)
    for fd in held:
        os.close(fd)
    info = session_info(handle=handle)
    print(len(held) > 0, info.records_abandoned, info.buffers_quarantined)
    done.set()
    thread.join()
    P.ControlTrace(handle, None, props, P.EVENT_TRACE_CONTROL_STOP)
    print(props.EventsLost)
""")


def test_a_live_writers_record_is_not_given_up_as_a_dead_ones_when_proc_cannot_be_read(tmp_path):
    """A flush finds a record its live writer has not committed, while the process has no
    descriptor left to read /proc: the writer was taken for gone, its record given up at once
    and the buffer put back for reuse, into which the writer could still store. A writer /proc
    cannot tell of is waited for, and its buffer, given up, is set aside (quarantined)."""
    env = dict(os.environ, WPPTRACE_RUNTIME_DIR=str(tmp_path / "rt"))
    done = subprocess.run([sys.executable, "-c", _PENDING, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == ["True 1 1", "1", ""], done.stdout
