"""RegisterTraceGuids and the ControlCallback: who is called, when, in which thread, with what."""
from __future__ import annotations

import threading
import uuid

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession

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
    control = uuid.uuid4()

    def callback(code, context, buffer):
        raise RuntimeError("provider bug")
    handle = P.RegisterTraceGuids(callback, None, control)
    with TraceSession(session_name, tmp_path / "exc.etl") as s:
        s.enable(control, 1, 4)
        P.TraceMessage(s.handle, 0x2B, control, 1)
    P.UnregisterTraceGuids(handle)
    assert "provider bug" in capsys.readouterr().err


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
