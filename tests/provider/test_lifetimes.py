"""Lifetimes and arithmetic of the core: UnregisterTraceGuids and running callbacks, callback
lists that cannot be allocated, fork while locks are held, size products and bounds."""
from __future__ import annotations

import gc
import os
import threading
import time
import uuid
import weakref

import pytest

import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error

L = P._lib
PRIVATE = P.EVENT_TRACE_PRIVATE_LOGGER_MODE


def code_of(fn, *args) -> int:
    with pytest.raises(Win32Error) as err:
        fn(*args)
    return err.value.winerror


def test_unregister_waits_for_a_callback_running_in_another_thread(tmp_path, session_name):
    control = uuid.uuid4()
    entered, events = threading.Event(), []

    def slow(code, context, buffer):
        entered.set()
        time.sleep(0.3)
        events.append("callback returned")
        return 0
    handle = P.RegisterTraceGuids(slow, None, control)
    with TraceSession(session_name, tmp_path / "u.etl", LogFileMode=PRIVATE) as s:
        enabler = threading.Thread(target=s.enable, args=(control, 1, 4))
        enabler.start()
        assert entered.wait(5)
        P.UnregisterTraceGuids(handle)             # returns only once the callback did
        events.append("unregistered")
        enabler.join()
    assert events == ["callback returned", "unregistered"]


def test_a_callback_may_unregister_itself(tmp_path, session_name):
    control = uuid.uuid4()
    handles = []

    def once(code, context, buffer):
        P.UnregisterTraceGuids(handles[0])         # no wait for itself
        return 0
    handles.append(P.RegisterTraceGuids(once, None, control))
    with TraceSession(session_name, tmp_path / "self.etl", LogFileMode=PRIVATE) as s:
        s.enable(control, 1, 4)
    assert code_of(P.UnregisterTraceGuids, handles[0]) == L.ERROR_INVALID_PARAMETER


def test_unregistered_callbacks_are_released():
    """The Python layer no longer keeps every unregistered callback alive."""
    class Callback:
        def __call__(self, code, context, buffer):
            return 0
    callback = Callback()
    ref = weakref.ref(callback)
    handle = P.RegisterTraceGuids(callback, None, uuid.uuid4())
    del callback
    P.UnregisterTraceGuids(handle)
    gc.collect()
    assert ref() is None


def test_a_callback_list_that_cannot_be_allocated_fails_the_enable_visibly(tmp_path, session_name):
    """The enable is refused with ERROR_OUTOFMEMORY and nothing changes (it was silently
    dropped: EnableTrace succeeded and the provider never heard of it)."""
    control = uuid.uuid4()
    calls = []
    handle = P.RegisterTraceGuids(lambda code, ctx, buf: calls.append(code) or 0, None, control)
    try:
        with TraceSession(session_name, tmp_path / "oom.etl", LogFileMode=PRIVATE) as s:
            L.wpptrace_debug_fail_allocations(1)
            try:
                assert code_of(s.enable, control, 1, 4) == L.ERROR_OUTOFMEMORY
            finally:
                L.wpptrace_debug_fail_allocations(0)
            assert calls == []
            s.enable(control, 1, 4)                # works again, and is the first enable
            assert calls == [P.WMI_ENABLE_EVENTS]
    finally:
        P.UnregisterTraceGuids(handle)


def test_fork_while_another_thread_registers_and_unregisters(tmp_path):
    """A fork may happen while another thread holds the core's locks: the child still
    registers, and its provider works."""
    stop = threading.Event()

    def churn():
        while not stop.is_set():
            P.UnregisterTraceGuids(P.RegisterTraceGuids(lambda *a: 0, None, uuid.uuid4()))
    worker = threading.Thread(target=churn)
    worker.start()
    try:
        for _ in range(30):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    P.UnregisterTraceGuids(P.RegisterTraceGuids(lambda *a: 0, None, uuid.uuid4()))
                    code = 0
                finally:
                    os._exit(code)
            deadline = time.monotonic() + 10
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    os.waitpid(pid, 0)
                    pytest.fail("a forked child hung registering a provider")
                time.sleep(0.005)
            assert os.waitstatus_to_exitcode(status) == 0
    finally:
        stop.set()
        worker.join()


def test_flush_timer_in_seconds_does_not_overflow(tmp_path, session_name):
    """FlushTimer 4294968 s used to become (4294968 * 1000) mod 2**32 = 704 ms."""
    with TraceSession(session_name, tmp_path / "ft.etl", FlushTimer=4294968) as s:
        P.TraceMessage(s.handle, 0x2B, uuid.UUID(int=1), 1, b"x")
        time.sleep(1.5)
        assert s.query().BuffersWritten == 1           # only the header: no timer flush yet
        assert s.query().FlushTimer == 4294968


@pytest.mark.parametrize("fields", [
    dict(MinimumBuffers=100000),                       # more than MaximumBuffers may be
    dict(MaximumBuffers=0x80000001),                   # (doubled, it used to wrap)
    dict(MaximumBuffers=65537),
    dict(BufferSize=16384, MaximumBuffers=300),        # 4.7 GiB of buffers
    dict(BufferSize=1024, MinimumBuffers=5000),
])
def test_buffer_counts_are_bounded(tmp_path, session_name, fields):
    props = P.EVENT_TRACE_PROPERTIES(LogFileName=str(tmp_path / "b.etl"),
                                     LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL, **fields)
    assert code_of(P.StartTrace, session_name, props) == L.ERROR_INVALID_PARAMETER


def test_update_beyond_the_bounds_is_refused(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "up.etl", MaximumBuffers=8) as s:
        props = s.query()
        props.MaximumBuffers = 70000
        assert code_of(P.ControlTrace, s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE) == L.ERROR_INVALID_PARAMETER
        props.MaximumBuffers = 512
        assert P.ControlTrace(s.handle, None, props, P.EVENT_TRACE_CONTROL_UPDATE).MaximumBuffers == 512
