"""Messages logged by the provider core (wpptrace.provider TraceMessage) decode to the text their
TMF format string promises: to a file, and live from a real-time session."""
from __future__ import annotations

import os
import struct
import threading
import uuid

import pytest
from fmthelp import reference_lines, run_fmt_capture

import wpptrace.provider as P
from wpptrace import tmf
from wpptrace.decoder.engine import LiveSource, record_view
from wpptrace.decoder.wpp import WppDecoder
from wpptrace.decoder.wpp_rows import RowView
from wpptrace.provider.sessions import TraceSession

TYPES = uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea")
STRS = uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d")
ENUMS = uuid.UUID("d4153fff-ac08-361f-5ed7-af1d38cd1903")
DMF_CORE = uuid.UUID("0a9ab260-f7e4-311e-a23e-f8ab6856dc72")  # corpus driver TMF (DmfKFramework)
DMF_HASH = uuid.UUID("3327597d-9c7e-3e01-12ca-5825bb05e28d")  # corpus driver TMF (DmfUModules)
WPP_FLAGS = (P.TRACE_MESSAGE_SEQUENCE | P.TRACE_MESSAGE_GUID | P.TRACE_MESSAGE_TIMESTAMP
             | P.TRACE_MESSAGE_SYSTEMINFO)

# (guid, number, argument byte strings, the text the format string promises)
MESSAGES = [
    (TYPES, 10, [struct.pack("<i", 42), struct.pack("<i", -1000), struct.pack("<q", -5000000000)],
     "sint i=42 neg=-1000 i64=-5000000000"),
    (TYPES, 11, [struct.pack("<I", 4000000000), struct.pack("<I", 0xABCDEF),
                 struct.pack("<Q", 0xDEADBEEFCAFE)],
     "uint u=4000000000 hex=0xabcdef x64=0xdeadbeefcafe"),
    (TYPES, 12, [struct.pack("<Q", 0x7FF012345678), struct.pack("<Q", 0)],
     "ptr p=00007FF012345678 null=0000000000000000"),
    (TYPES, 13, [struct.pack("<i", 42), struct.pack("<I", 0xBEEF)], "widths z=00042 h=0000beef"),
    (TYPES, 14, [struct.pack("<I", 0x80070005), struct.pack("<I", 0xC0000022),
                 uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00").bytes_le],
     "hr=0x80070005(ERROR_ACCESS_DENIED) st=0xc0000022(STATUS_ACCESS_DENIED) "
     "guid=11223344-5566-7788-99aa-bbccddeeff00"),
    (STRS, 10, [b"delta\0", struct.pack("<i", 3)], "strtrace name=delta id=3 tag=END"),
    (STRS, 11, ["r\u00f6\u00f6t\0".encode("utf-16-le")], "widetrace user=r\u00f6\u00f6t role=admin"),
    (ENUMS, 10, [struct.pack("<I", 0), bytes([1])], "b=0x00000000(false) irql=0x00000001(APC)"),
    (ENUMS, 11, [struct.pack("<I", 0x80000003)], "set=[1,2,32]"),
    (DMF_CORE, 15, [struct.pack("<Q", 0xFFFFA0012345F000), struct.pack("<Q", 0xFFFFA00123460000),
                    struct.pack("<i", 3)],
     " [DmfModuleParentUpdate]Add Child=0xFFFFA0012345F000 Parent=0xFFFFA00123460000 "
     "NumberOfChildModules=3"),
    (DMF_HASH, 16, [struct.pack("<I", 0)], " [HashTable_ContextInitialize] <-- Exit <ntStatus=STATUS_SUCCESS>"),
]


@pytest.fixture
def tmf_paths(fmt_tmf, corpus):
    driver = corpus / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
    return [str(fmt_tmf / f"{g}.tmf") for g in (TYPES, STRS, ENUMS)] + [
        str(driver / f"{g}.tmf") for g in (DMF_CORE, DMF_HASH)]


def _session_name(tag: str) -> str:
    return f"wpptrace-fmt-{tag}-{uuid.uuid4().hex[:8]}"


def _log_all(handle: int) -> None:
    for guid, number, args, _text in MESSAGES:
        P.TraceMessage(handle, WPP_FLAGS, guid, number, *args)
    # one message with no format, one whose arguments don't fit
    P.TraceMessage(handle, WPP_FLAGS, uuid.UUID(int=7), 10)
    P.TraceMessage(handle, WPP_FLAGS, TYPES, 10, b"\x01")


def _check(lines: list[str]) -> None:
    texts = [line.split("[findneedle]", 1)[-1].split("[DmfKFramework]", 1)[-1]
             .split("[DmfUModules.Library]", 1)[-1] for line in lines]
    assert texts[:len(MESSAGES)] == [m[3] for m in MESSAGES]
    assert texts[len(MESSAGES)] == (
        "Unknown( 10): GUID=00000000-0000-0000-0000-000000000007 (No Format Information found).")
    assert texts[len(MESSAGES) + 1].startswith("*****FormatMessage (#Typev) failed:")
    prefix = "[%d]%04X.%04X::" % (0, os.getpid(), threading.get_native_id())
    # the provider writes this thread's TID and this process's PID into every message
    assert all(line.split("]", 1)[1].startswith(prefix.split("]", 1)[1]) for line in lines[:3])


def test_file_session_round_trip(tmp_path, tmf_paths):
    path = tmp_path / "provider.etl"
    with TraceSession(_session_name("file"), path,
                      LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL | P.EVENT_TRACE_USE_LOCAL_SEQUENCE) as s:
        _log_all(s.handle)
    code, out, err = run_fmt_capture(path, tmf_files=tmf_paths, utc=True)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith("[Header]EventTrace")
    _check(lines[1:])


def test_realtime_session_round_trip(tmf_paths):
    name = _session_name("rt")
    session = TraceSession(name, None, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE)
    try:
        source = LiveSource.for_session(name)  # subscribed: the header buffer has arrived
        _log_all(session.handle)
    finally:
        session.stop()
    decoder = WppDecoder(tmf.load(*tmf_paths), utc=True)
    view = RowView()
    try:
        lines = [line for batch in decoder.format(source.ordered(view), view, "lines")
                 for line in batch]
    finally:
        source.queue.release()
    assert lines[0].endswith("[Header]EventTrace")
    _check(lines[1:])
    assert decoder.counters.unknown == 1 and decoder.counters.format_errors == 1


def test_component_id_messages_print_an_unknown_line_on_both_paths(tmp_path):
    """TRACE_MESSAGE_COMPONENTID messages have no message GUID: an Unknown line, never a crash."""
    from wpptrace.decoder.etlfile import EtlFile

    component = uuid.UUID(bytes_le=(0xC0FFEE).to_bytes(4, "little") + bytes(12))
    path = tmp_path / "component.etl"
    with TraceSession(_session_name("cid"), path) as s:
        P.TraceMessage(s.handle, P.TRACE_MESSAGE_COMPONENTID | P.TRACE_MESSAGE_TIMESTAMP
                       | P.TRACE_MESSAGE_SYSTEMINFO, component, 12, b"abcd")
    code, out, err = run_fmt_capture(path, noprefix=True)
    expected = "Unknown( 12): GUID=00000000-0000-0000-0000-000000000000 (No Format Information found)."
    assert out.splitlines()[1:] == [expected]
    decoder = WppDecoder(tmf.load())
    with EtlFile(path) as etl:
        lines = reference_lines(decoder, etl)
    assert lines[1] == expected


def _log_moving_between_cpus(handle: int, values_and_cpus: list[tuple[int, int]]) -> None:
    """Log each value as a 4-byte message from a thread pinned to the given CPU (pinning
    moves the thread between per-processor buffers); the pytest thread stays unpinned."""
    def log():
        for value, cpu in values_and_cpus:
            os.sched_setaffinity(0, {cpu})
            P.TraceMessage(handle, WPP_FLAGS, TYPES, 99, struct.pack("<I", value))

    worker = threading.Thread(target=log)
    worker.start()
    worker.join(120)
    assert not worker.is_alive()


def test_realtime_records_merge_processor_buffers_by_time():
    """Regression: live records were handed out in buffer arrival order, so a thread that
    changed CPU between messages came out of order (10, 12, 11). One flush queues both
    processors' buffers (CPU a: 10 and 12, CPU b: 11); they must come out in time order."""
    cpu_a, cpu_b = sorted(os.sched_getaffinity(0))[:2]
    name = _session_name("rtcpu")
    # no timer flush during the test: the explicit stop flush queues both buffers together
    session = TraceSession(name, None, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE, FlushTimer=3600)
    try:
        source = LiveSource.for_session(name)
        _log_moving_between_cpus(session.handle, [(10, cpu_a), (11, cpu_b), (12, cpu_a)])
    finally:
        session.stop()
    try:
        records = [r for items, _ in source.ordered(record_view) for r in items]
    finally:
        source.queue.release()
    messages = [r for r in records if r.kind == "message" and r.event_id == 99]
    assert {r.processor for r in messages} == {cpu_a, cpu_b}
    assert [int.from_bytes(bytes(r.user_data), "little") for r in messages] == [10, 11, 12]
    stamps = [r.timestamp for r in messages]
    assert stamps == sorted(stamps)


def _component_id_trace(tmp_path, name: str):
    """A trace of three TRACE_MESSAGE_COMPONENTID messages (component id 0xC0FFEE, number 12):
    messages that carry no GUID."""
    component = uuid.UUID(bytes_le=(0xC0FFEE).to_bytes(4, "little") + bytes(12))
    path = tmp_path / "component3.etl"
    with TraceSession(_session_name(name), path) as s:
        for _ in range(3):
            P.TraceMessage(s.handle, P.TRACE_MESSAGE_COMPONENTID | P.TRACE_MESSAGE_TIMESTAMP
                           | P.TRACE_MESSAGE_SYSTEMINFO, component, 12, b"abcd")
    return path


def test_component_id_messages_are_counted_under_one_entry(tmp_path):
    """Regression: ``decode_record`` looked a record with no message GUID up under (None,
    number) but kept it under the zero GUID, so each one made a new entry and the summary
    counted none of them (fmt's rows path counted 3)."""
    from fmthelp import _records
    from wpptrace.decoder.etlfile import EtlFile

    path = _component_id_trace(tmp_path, "cid3")
    decoder = WppDecoder(tmf.load())
    with EtlFile(path) as etl:
        texts = [decoder.decode_record(rec, ctx).text
                 for is_header, rec, ctx in _records(decoder, etl) if not is_header]
    assert texts == ["Unknown( 12): GUID=00000000-0000-0000-0000-000000000000 "
                     "(No Format Information found)."] * 3
    assert decoder.summary_table() == [("00000000-0000-0000-0000-000000000000", "Unknown", "12", 3)]
    assert decoder.counters.unknown == 3


def test_the_reference_path_counts_component_id_messages_as_the_rows_path(tmp_path):
    """The per-record text path of the tests (fmthelp.reference_lines) looks a message with no
    GUID up where the decoder keeps it: under (None, number) each of its lines made a new entry
    in place of the one decode_record had just counted, and the summary lost the messages."""
    from fmthelp import row_lines
    from wpptrace.decoder.etlfile import EtlFile

    path = _component_id_trace(tmp_path, "cid3r")
    summaries = []
    for lines_of in (reference_lines, row_lines):
        decoder = WppDecoder(tmf.load(), noprefix=True)
        with EtlFile(path) as etl:
            lines = lines_of(decoder, etl)
        assert lines[1:] == ["Unknown( 12): GUID=00000000-0000-0000-0000-000000000000 "
                             "(No Format Information found)."] * 3
        summaries.append(decoder.summary_table())
    assert summaries[0] == summaries[1]
    assert summaries[0][1:] == [("00000000-0000-0000-0000-000000000000", "Unknown", "12", 3)]
