"""Every error case of the TraceMessage(Va) reference page and of the controller calls."""
from __future__ import annotations

import uuid

import pytest

import wpptrace.provider as P
from wpptrace.provider._hazmat import ffi
from wpptrace.provider.sessions import TraceSession
from wpptrace.winerror import Win32Error

L = P._lib
GUID = uuid.UUID("e5e5e5e5-0000-4000-8000-000000000001")


def code_of(fn, *args) -> int:
    with pytest.raises(Win32Error) as err:
        fn(*args)
    assert isinstance(err.value, OSError) and err.value.name.startswith("ERROR_")
    return err.value.winerror


def test_invalid_handle_null(session_name):
    assert code_of(P.TraceMessage, 0, 0x2B, GUID, 1) == L.ERROR_INVALID_HANDLE
    assert P.trace_packed(0, 0x2B, GUID.bytes_le, 1, b"") == L.ERROR_INVALID_HANDLE
    assert code_of(P.TraceMessageVa, 0, 0x2B, GUID, 1, [b"x"]) == L.ERROR_INVALID_HANDLE


def test_holding_the_flush_of_the_null_handle_is_an_invalid_handle(tmp_path, session_name):
    """The test hook took handle 0 for a lookup by name, with no name: it crashed once a session
    ran."""
    with TraceSession(session_name, tmp_path / "held.etl"):
        assert L.wpptrace_debug_hold_flush(0, 1) == L.ERROR_INVALID_HANDLE


def test_invalid_handle_nt_kernel_logger(tmp_path):
    with TraceSession("NT Kernel Logger", tmp_path / "k.etl") as s:
        assert s.handle & 0xFFFF == P.KERNEL_LOGGER_ID
        assert code_of(P.TraceMessage, s.handle, 0x2B, GUID, 1, b"x") == L.ERROR_INVALID_HANDLE
        assert s.query().LoggerName == "NT Kernel Logger"


def test_invalid_handle_after_stop(tmp_path, session_name):
    s = TraceSession(session_name, tmp_path / "a.etl")
    handle = s.handle
    P.TraceMessage(handle, 0x2B, GUID, 1)
    s.stop()
    assert code_of(P.TraceMessage, handle, 0x2B, GUID, 1) == L.ERROR_INVALID_HANDLE
    # the slot reused by a new session does not accept the old handle
    with TraceSession(session_name, tmp_path / "b.etl") as s2:
        if s2.handle & 0xFFFF == handle & 0xFFFF:
            assert s2.handle != handle
        assert code_of(P.TraceMessage, handle, 0x2B, GUID, 1) == L.ERROR_INVALID_HANDLE


@pytest.mark.parametrize("flags", [0x100, 0x10000, 0x80000000])
def test_invalid_parameter_unknown_flags(tmp_path, session_name, flags):
    with TraceSession(session_name, tmp_path / "f.etl") as s:
        assert code_of(P.TraceMessage, s.handle, flags | 0x2B, GUID, 1) == L.ERROR_INVALID_PARAMETER


def test_invalid_parameter_guid_with_componentid(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "g.etl") as s:
        flags = P.TRACE_MESSAGE_GUID | P.TRACE_MESSAGE_COMPONENTID
        assert code_of(P.TraceMessage, s.handle, flags, GUID, 1) == L.ERROR_INVALID_PARAMETER
        assert code_of(P.TraceMessage, s.handle, P.TRACE_MESSAGE_GUID, None, 1) == L.ERROR_INVALID_PARAMETER
        assert s.query().EventsLost == 0


def test_more_data(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "m.etl", BufferSize=1) as s:
        assert code_of(P.TraceMessage, s.handle, 0, None, 1, b"x" * (1024 - 72 + 1)) == L.ERROR_MORE_DATA
        assert code_of(P.TraceMessage, s.handle, 0x2B, GUID, 1, b"x" * 1024 * 70) == L.ERROR_MORE_DATA


def test_not_enough_memory_is_counted(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "n.etl", BufferSize=1, MinimumBuffers=1, MaximumBuffers=1,
                      LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        L.wpptrace_debug_hold_flush(s.handle, 1)
        while P.trace_packed(s.handle, 0, None, 1, bytes(100)) == 0:
            pass
        assert code_of(P.TraceMessage, s.handle, 0, None, 1, bytes(100)) == L.ERROR_NOT_ENOUGH_MEMORY
        assert s.query().EventsLost == 2
        L.wpptrace_debug_hold_flush(s.handle, 0)


def test_outofmemory_when_a_buffer_cannot_be_allocated(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "o.etl", BufferSize=1, MinimumBuffers=1, MaximumBuffers=4,
                      LogFileMode=P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        L.wpptrace_debug_hold_flush(s.handle, 1)
        L.wpptrace_debug_fail_allocations(1000)
        try:
            codes = [P.trace_packed(s.handle, 0, None, 1, bytes(100)) for _ in range(20)]
        finally:
            L.wpptrace_debug_fail_allocations(0)
            L.wpptrace_debug_hold_flush(s.handle, 0)
        assert codes[0] == 0 and L.ERROR_OUTOFMEMORY in codes
        assert set(codes) == {0, L.ERROR_OUTOFMEMORY}
        assert s.query().EventsLost == codes.count(L.ERROR_OUTOFMEMORY)


def test_start_trace_errors(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "x.etl"):
        assert code_of(TraceSession, session_name, tmp_path / "y.etl") == L.ERROR_ALREADY_EXISTS
    assert code_of(P.StartTrace, session_name, P.EVENT_TRACE_PROPERTIES()) == L.ERROR_BAD_PATHNAME
    props = P.EVENT_TRACE_PROPERTIES(LogFileName=str(tmp_path / "no" / "dir" / "z.etl"),
                                     LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL)
    assert code_of(P.StartTrace, session_name, props) == L.ERROR_BAD_PATHNAME
    for bad in (dict(LogFileMode=P.EVENT_TRACE_FILE_MODE_CIRCULAR),                       # no size
                dict(LogFileMode=P.EVENT_TRACE_FILE_MODE_CIRCULAR | P.EVENT_TRACE_FILE_MODE_SEQUENTIAL,
                     MaximumFileSize=4),
                dict(ClientContext=4), dict(BufferSize=16385)):
        props = P.EVENT_TRACE_PROPERTIES(LogFileName=str(tmp_path / "c.etl"), **bad)
        assert code_of(P.StartTrace, session_name, props) == L.ERROR_INVALID_PARAMETER, bad
    assert code_of(P.StartTrace, "", P.EVENT_TRACE_PROPERTIES()) == L.ERROR_INVALID_PARAMETER
    # Wnode.BufferSize smaller than the structure
    block = ffi.new("EVENT_TRACE_PROPERTIES *")
    block.Wnode.BufferSize = ffi.sizeof("EVENT_TRACE_PROPERTIES") - 1
    assert L.StartTraceA(ffi.new("uint64_t *"), session_name.encode(), block) == L.ERROR_BAD_LENGTH
    assert L.ControlTraceA(0, session_name.encode(), block, 0) == L.ERROR_BAD_LENGTH


def test_control_trace_errors(tmp_path, session_name):
    assert code_of(P.ControlTrace, 0, "missing-" + session_name, None,
                   P.EVENT_TRACE_CONTROL_QUERY) == L.ERROR_WMI_INSTANCE_NOT_FOUND
    with TraceSession(session_name, tmp_path / "q.etl") as s:
        assert code_of(P.ControlTrace, s.handle, None, None, 99) == L.ERROR_INVALID_PARAMETER
        handle = s.handle
    assert code_of(P.ControlTrace, handle, None, None, P.EVENT_TRACE_CONTROL_STOP) == L.ERROR_WMI_INSTANCE_NOT_FOUND
    assert code_of(P.ControlTrace, 0, None, None, P.EVENT_TRACE_CONTROL_QUERY) == L.ERROR_INVALID_PARAMETER


def test_enable_and_register_errors(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "e.etl") as s:
        assert code_of(P.EnableTraceEx2, s.handle, GUID, 7, 4) == L.ERROR_INVALID_PARAMETER
        assert code_of(P.EnableTraceEx2, s.handle, GUID, P.EVENT_CONTROL_CODE_CAPTURE_STATE, 4) == L.ERROR_NOT_SUPPORTED
        assert code_of(P.EnableTrace, True, 1, 256, GUID, s.handle) == L.ERROR_INVALID_PARAMETER
        stale = s.handle
    assert code_of(P.EnableTrace, True, 1, 4, GUID, stale) == L.ERROR_INVALID_HANDLE
    assert code_of(P.EnableTrace, True, 1, 4, GUID, 0) == L.ERROR_INVALID_PARAMETER
    assert code_of(P.UnregisterTraceGuids, 12345) == L.ERROR_INVALID_PARAMETER
    assert code_of(P.GetTraceEnableFlags, 0) == L.ERROR_INVALID_HANDLE
    assert code_of(P.GetTraceEnableLevel, stale) == L.ERROR_INVALID_HANDLE
    assert code_of(P.GetTraceLoggerHandle, None) == L.ERROR_INVALID_PARAMETER
    with pytest.raises(TypeError):
        P.RegisterTraceGuids(None, None, GUID)


def test_integers_out_of_their_c_range_are_invalid_parameter(tmp_path, session_name):
    """Every narrowed integer parameter out of its C type's range is ERROR_INVALID_PARAMETER
    naming it, as EnableTrace's level 256 is (never cffi's OverflowError)."""
    big64 = 1 << 64
    with TraceSession(session_name, tmp_path / "r.etl") as s:
        h = s.handle
        calls = {
            "level": [(P.EnableTraceEx2, h, GUID, 1, 256), (P.EnableTraceEx2, h, GUID, 1, -1)],
            "control_code": [(P.EnableTraceEx2, h, GUID, 1 << 32, 4),
                             (P.ControlTrace, h, None, None, -1)],
            "match_any_keyword": [(P.EnableTraceEx2, h, GUID, 1, 4, big64)],
            "match_all_keyword": [(P.EnableTraceEx2, h, GUID, 1, 4, 0, -1)],
            "timeout": [(P.EnableTraceEx2, h, GUID, 1, 4, 0, 0, 1 << 32)],
            "session_handle": [(P.EnableTraceEx2, big64, GUID, 1, 4),
                               (P.EnableTrace, True, 1, 4, GUID, -1)],
            "enable_level": [(P.EnableTrace, True, 1, 1 << 32, GUID, h)],
            "enable_flag": [(P.EnableTrace, True, -1, 4, GUID, h)],
            "handle": [(P.ControlTrace, -1, None, None, P.EVENT_TRACE_CONTROL_QUERY)],
            "logger_handle": [(P.GetTraceEnableFlags, -1), (P.GetTraceEnableLevel, big64),
                              (P.TraceMessage, -1, 0, None, 1, b"x")],
            "registration_handle": [(P.UnregisterTraceGuids, -1)],
            "number": [(P.TraceMessage, h, 0, None, 1 << 16, b"x"),
                       (P.TraceMessage, h, 0, None, -1),
                       (P.TraceMessageVa, h, 0, None, 1 << 16, [b"x"])],
            "flags": [(P.TraceMessage, h, 1 << 32, None, 1), (P.TraceMessageVa, h, -1, None, 1, [])],
            "FlushTimer": [(P.ControlTrace, h, None, P.EVENT_TRACE_PROPERTIES(FlushTimer=-1),
                            P.EVENT_TRACE_CONTROL_QUERY)],
            "BufferSize": [(P.StartTrace, session_name + "-b",
                            P.EVENT_TRACE_PROPERTIES(BufferSize=1 << 32))],
            "ClientContext": [(P.StartTrace, session_name + "-c",
                               P.EVENT_TRACE_PROPERTIES(ClientContext=1 << 32))],
        }
        for name, cases in calls.items():
            for fn, *args in cases:
                with pytest.raises(Win32Error) as err:
                    fn(*args)
                assert err.value.winerror == L.ERROR_INVALID_PARAMETER, (name, fn, args)
                assert name + " " in str(err.value), (name, str(err.value))
        assert s.query().EventsLost == 0
        P.EnableTraceEx2(h, GUID, 1, 255)       # the range's ends are accepted
        P.TraceMessage(h, 0, None, 0xFFFF, b"x")


def test_a_str_guid_is_a_type_error_in_tracemessage_as_in_tracemessageva(tmp_path, session_name):
    with TraceSession(session_name, tmp_path / "s.etl") as s:
        for call in (lambda: P.TraceMessage(s.handle, 0x2B, str(GUID), 1, b"x"),
                     lambda: P.TraceMessageVa(s.handle, 0x2B, str(GUID), 1, [b"x"])):
            with pytest.raises(TypeError) as err:
                call()
            assert str(err.value) == "message_guid must be a uuid.UUID, not str"


def test_the_fast_paths_answer_an_out_of_range_integer_with_a_code_never_raising(tmp_path, session_name):
    """``trace_packed`` and ``trace_message`` run inside the traced application: an integer out
    of its C type's range (a message number above 65535, flags above 32 bits, a negative or
    65-bit handle) is ERROR_INVALID_PARAMETER returned, nothing written, as a GUID that is
    not 16 bytes is (never read past its end); they raised OverflowError into the application. Both
    builds alike (the METH_FASTCALL builtins and their cffi fallbacks); a value of the wrong type is
    still a TypeError, whatever else is wrong with the call (the builtins raised SystemError when
    an out-of-range value followed it)."""
    from wpptrace.provider import _hazmat

    fallbacks = _fallbacks()
    with TraceSession(session_name, tmp_path / "r.etl") as s:
        h = s.handle
        # A wrong type beside an out-of-range value (before it or after it) is still a TypeError.
        wrong_types = ((h, 0x2B, None, "1"), ("x", -1, None, 1), (h, -1, None, "1"),
                       ("x", 0x2B, None, 1 << 16), (-1, 0x2B, "16 characters..", 1),
                       (h, 0x2B, "short", 1), (h, 0x2B, GUID.bytes_le[:5], "1"), (h, 1 << 32, 16, 1))
        bad_values = ((h, 0x2B, GUID.bytes_le, 1 << 16), (h, 1 << 32, None, 1), (1 << 64, 0x2B, None, 1),
                      (h, 0x2B, GUID.bytes_le[:5], 1))
        for fn in (P.trace_packed, _hazmat.trace_packed_raw, fallbacks["trace_packed_raw"]):
            for args in ((h, 0x2B, GUID.bytes_le, 1 << 16, b"x"), (h, 0x2B, GUID.bytes_le, -1, b"x"),
                         (h, 1 << 32, GUID.bytes_le, 1, b"x"), (h, -1, None, 1, b"x"),
                         (-1, 0x2B, None, 1, b"x"), (1 << 64, 0x2B, None, 1, b"x"),
                         (h, 0x2B, GUID.bytes_le[:5], 1, b"x"), (h, 0x2B, b"", 1, b"x")):
                assert fn(*args) == L.ERROR_INVALID_PARAMETER, (fn, args)
            for args in wrong_types:
                with pytest.raises(TypeError):
                    fn(*args, b"x")
            for args in bad_values:     # ... and a payload that is not bytes, beside a bad value
                with pytest.raises(TypeError):
                    fn(*args, 5)
        for fn in (_hazmat.trace_message_raw, fallbacks["trace_message_raw"]):
            assert fn(h, 0x2B, GUID.bytes_le, 1 << 16, b"x", b"y") == L.ERROR_INVALID_PARAMETER
            assert fn(h, 1 << 40, GUID.bytes_le, 1, b"x") == L.ERROR_INVALID_PARAMETER
            for args in wrong_types:
                with pytest.raises(TypeError):
                    fn(*args, b"a", b"b")
            for args in bad_values:
                with pytest.raises(TypeError):
                    fn(*args, b"a", 5)
        assert P.trace_packed(h, 0x2B, GUID.bytes_le, 0xFFFF, b"x") == 0     # the range's end
        assert s.query().EventsLost == 0


def _fallbacks() -> dict:
    """The cffi forms of the fast paths (what a build without the extension uses)."""
    import importlib.util

    from wpptrace.provider import fastpath

    spec = importlib.util.find_spec("wpptrace.provider._hazmat")
    module = importlib.util.module_from_spec(spec)
    saved = fastpath.AVAILABLE
    fastpath.AVAILABLE = False
    try:
        spec.loader.exec_module(module)
    finally:
        fastpath.AVAILABLE = saved
    assert not module.FAST
    return vars(module)
