"""RegisterTraceGuids and the ControlCallback: who is called, when, in which thread, with what."""
from __future__ import annotations

import signal
import threading
import uuid

import provider_etlcheck as etlcheck
import pytest

import wpptrace.provider as P
from wpptrace.provider import api
from wpptrace.provider.sessions import TraceSession
from wpptrace.provider.tracing import Provider

ENABLE, DISABLE = P.WMI_ENABLE_EVENTS, P.WMI_DISABLE_EVENTS


def test_enable_trace_calls_back_synchronously(tmp_path, session_name, provider):
    path = tmp_path / "cb.etl"
    with TraceSession(session_name, path) as s:
        assert provider.calls == []
        s.enable(provider.control_guid, 0x0000000C, P.TRACE_LEVEL_WARNING)
        assert provider.calls == [(ENABLE, "ctx", 0xC, 3, threading.get_ident())]
        assert provider.logger & 0xFFFF == s.handle & 0xFFFF
        P.TraceMessage(provider.logger, 0x2B, provider.message_guid, 10, b"enabled")
        s.disable(provider.control_guid)
        assert provider.calls[-1][:2] == (DISABLE, "ctx") and provider.logger == 0
        s.enable(provider.control_guid, 1, 5)
    # STOP disables the providers the session enabled
    assert [c[0] for c in provider.calls] == [ENABLE, DISABLE, ENABLE, DISABLE]
    (m,) = etlcheck.read(path).messages
    assert m.args == b"enabled" and m.guid == provider.message_guid


def test_enable_trace_ex2_passes_keyword_as_flags(tmp_path, session_name, provider):
    with TraceSession(session_name, tmp_path / "ex2.etl") as s:
        P.EnableTraceEx2(s.handle, provider.control_guid, P.EVENT_CONTROL_CODE_ENABLE_PROVIDER,
                         P.TRACE_LEVEL_VERBOSE, 0x1_0000_00F0)
        assert provider.calls[-1][:4] == (ENABLE, "ctx", 0xF0, 5)
        P.EnableTraceEx2(s.handle, provider.control_guid, P.EVENT_CONTROL_CODE_DISABLE_PROVIDER, 0)
        assert provider.calls[-1][0] == DISABLE


def test_registration_after_enable_is_enabled_at_once(tmp_path, session_name):
    control = uuid.uuid4()
    with TraceSession(session_name, tmp_path / "late.etl") as s:
        s.enable(control, 0x5, 2)
        calls = []

        def callback(code, context, buffer):
            logger = P.GetTraceLoggerHandle(buffer)
            calls.append((code, context, P.GetTraceEnableFlags(logger), P.GetTraceEnableLevel(logger)))
            return 0
        handle = P.RegisterTraceGuids(callback, 42, control, [])
        assert calls == [(ENABLE, 42, 0x5, 2)]
        P.UnregisterTraceGuids(handle)
    assert len(calls) == 1          # unregistered providers get no DISABLE


def test_callback_from_another_thread_runs_in_that_thread(tmp_path, session_name, provider):
    with TraceSession(session_name, tmp_path / "thr.etl") as s:
        t = threading.Thread(target=s.enable, args=(provider.control_guid, 1, 4))
        t.start()
        t.join()
        assert provider.calls[-1][4] == t.ident


def test_callback_exception_does_not_break_the_session(tmp_path, session_name, capsys):
    """A callback's bug is shown once per registration (every enable and disable would
    otherwise repeat it into the application's stderr), and counted."""
    control = uuid.uuid4()

    def callback(code, context, buffer):
        raise RuntimeError("provider bug")
    handle = P.RegisterTraceGuids(callback, None, control)
    try:
        with TraceSession(session_name, tmp_path / "exc.etl") as s:
            s.enable(control, 1, 4)
            P.TraceMessage(s.handle, 0x2B, control, 1)
            s.disable(control)
            s.enable(control, 1, 4)
        assert api.control_callback_failures(handle) == 4     # STOP disabled it once more
    finally:
        P.UnregisterTraceGuids(handle)
    assert capsys.readouterr().err.count("RuntimeError: provider bug") == 1
    assert api.control_callback_failures(handle) == 0


def test_ctrl_c_in_a_callback_is_raised_by_the_main_threads_call_that_ran_it(tmp_path, session_name, capsys):
    """Ctrl-C while the main thread runs a callback (inside its EnableTrace) is the
    application's: it cannot unwind through the core, so the EnableTrace raises it once done.
    The enable took place and the session goes on."""
    assert threading.current_thread() is threading.main_thread()
    control = uuid.uuid4()
    calls = []

    def callback(code, context, buffer):
        calls.append(code)
        if len(calls) == 1:
            raise KeyboardInterrupt
        return 0
    handle = P.RegisterTraceGuids(callback, None, control)
    try:
        with TraceSession(session_name, tmp_path / "ctrlc.etl") as s:
            with pytest.raises(KeyboardInterrupt):
                s.enable(control, 1, 4)
            s.disable(control)
            s.enable(control, 2, 5)
        assert calls == [ENABLE, DISABLE, ENABLE, DISABLE]
        assert api.control_callback_failures(handle) == 0
    finally:
        P.UnregisterTraceGuids(handle)
    assert capsys.readouterr().err == ""


def test_ctrl_c_in_a_callback_of_another_thread_reaches_the_main_thread(tmp_path, session_name, capsys):
    """The callback runs in the thread that enabled the provider (or the core's notification
    thread): Ctrl-C there reaches the main thread as SIGINT would (its handler runs there), at
    its next step; the other thread's call returns as usual."""
    control = uuid.uuid4()
    threads, errors = [], []

    def callback(code, context, buffer):
        threads.append(threading.get_ident())
        if code == ENABLE:
            raise KeyboardInterrupt
        return 0

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    handle = P.RegisterTraceGuids(callback, None, control)
    try:
        with TraceSession(session_name, tmp_path / "ctrlc-thread.etl") as s:
            def enable():
                try:
                    s.enable(control, 1, 4)
                except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
                    errors.append(exc)
            worker = threading.Thread(target=enable)
            with pytest.raises(KeyboardInterrupt):
                worker.start()
                worker.join(10)
                for _ in range(100):   # Python steps: where the main thread takes the signal
                    pass
            worker.join(10)
            assert not worker.is_alive() and errors == []
            assert threads == [worker.ident]
    finally:
        P.UnregisterTraceGuids(handle)
        signal.signal(signal.SIGINT, previous)
    assert capsys.readouterr().err == ""


def test_ctrl_c_in_the_callback_a_registration_runs_leaves_nothing_registered(tmp_path, session_name):
    """A session already holds the GUID, so RegisterTraceGuids runs the callback; Ctrl-C there
    makes RegisterTraceGuids raise, and then nothing may stay registered (the caller never got
    the handle to unregister it with)."""
    control = uuid.uuid4()
    calls = []

    def callback(code, context, buffer):
        calls.append(code)
        raise KeyboardInterrupt
    with TraceSession(session_name, tmp_path / "ctrlc-register.etl") as s:
        s.enable(control, 1, 4)
        before = set(api._registrations)
        with pytest.raises(KeyboardInterrupt):
            P.RegisterTraceGuids(callback, None, control)
        assert set(api._registrations) == before
        assert calls == [ENABLE]
    assert calls == [ENABLE]          # not registered: the STOP's disable does not reach it


def test_a_provider_whose_registration_is_interrupted_is_neither_registered_nor_enabled(tmp_path, session_name):
    trace = Provider(f"Interrupted{uuid.uuid4().hex[:8]}", flags=("A",), register=False)
    real = trace._control_callback

    def interrupted(code, context, buffer):
        real(code, context, buffer)
        raise KeyboardInterrupt
    trace._control_callback = interrupted
    with TraceSession(session_name, tmp_path / "ctrlc-provider.etl") as s:
        s.enable(trace.guid, 1, 4)
        with pytest.raises(KeyboardInterrupt):
            trace.register()
        assert trace._registration is None
        assert not trace.enabled() and trace.logger_handle == 0


def test_a_failing_registration_hook_is_shown_and_the_provider_stays_registered(session_name, capsys):
    """A hook (``wpptrace session record`` enabling what a script registers) that fails must
    not fail the application's registration: its handle would be lost, still registered."""
    def hook(handle, control_guid):
        raise RuntimeError("the session is gone")
    control = uuid.uuid4()
    api.registration_hooks.append(hook)
    try:
        handle = P.RegisterTraceGuids(lambda *a: 0, None, control)
    finally:
        api.registration_hooks.remove(hook)
    assert handle in api._registrations
    P.UnregisterTraceGuids(handle)
    assert "RuntimeError: the session is gone" in capsys.readouterr().err


def test_last_enable_wins_between_sessions(tmp_path, session_name, provider):
    with TraceSession(session_name + "a", tmp_path / "a.etl") as a, \
         TraceSession(session_name + "b", tmp_path / "b.etl") as b:
        a.enable(provider.control_guid, 1, 4)
        b.enable(provider.control_guid, 2, 5)
        assert provider.logger & 0xFFFF == b.handle & 0xFFFF
        P.TraceMessage(provider.logger, 0x2B, provider.message_guid, 1, b"to b")
        a.disable(provider.control_guid)       # not a's provider any more: no callback
        assert provider.calls[-1][2:4] == (2, 5)
    assert [m.args for m in etlcheck.read(tmp_path / "b.etl").messages] == [b"to b"]
    assert etlcheck.read(tmp_path / "a.etl").messages == []
