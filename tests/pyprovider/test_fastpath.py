"""The C fast path (provider/pyext/fastpath.c) writes exactly what the Python packer writes,
raises the same errors naming the call site with nothing written, counts drops, and is safe
from several threads."""
from __future__ import annotations

import pathlib
import threading
import uuid

import pytest

from wpptrace.provider import _hazmat, api

HERE = pathlib.Path(__file__).resolve().parent
G = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")

pytestmark = pytest.mark.skipif(not _hazmat.FAST, reason="wpptrace._fastpath is not built for this interpreter")

VALUES = {
    "int32": [0, 1, -1, 2**31 - 1, -2**31, True],
    "uint32": [0, 2**32 - 1, 7],
    "int16": [-2**15, 2**15 - 1],
    "uint16": [0, 0xFFFF],
    "int64": [-2**63, 2**63 - 1, 12345678901234],
    "uint64": [0, 2**64 - 1, 0x7FF012345678],
    "pointer": [0, 2**63 + 5],
    "double": [0.0, -1.5, 1e300, 3, float("inf")],
    "char": ["x", 65],
    "text": ["", "plain", "caf\u00e9 \u20ac \U0001F600", 42, pathlib.PurePosixPath("/tmp/x")],
    "wide": ["", "wide", "caf\u00e9 \u20ac \U0001F600 \U00010400", 7],
    "guid": [G, str(G)],
    "status": [0, 0xC0000022, -1073741790],   # negative: the C form refuses, the checker packs
    "ip": ["10.0.0.1", 0x7F000001],
    "port": [80, 65535],
    "sid": ["S-1-5-32-544"],
}


@pytest.fixture
def app(pp):
    return pp.load_module("pyprovider_fastpath_app", HERE / "fastpath_app.py")


def python_payloads(app, calls) -> list[tuple[int, bytes]]:
    """What the Python packer sends for the calls (recorded, no session)."""
    sent = []
    saved = app.trace._trace_packed, app.trace._trace_site
    app.trace._set_writers(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0, None)
    app.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    try:
        for call in calls:
            call()
    finally:
        app.trace._set_enable_state(0, 0, 0)
        app.trace._set_writers(*saved)
    return sent


def session_payloads(app, pp, etl, calls) -> list[tuple[int, bytes]]:
    """What the C fast path writes for the calls into a real session (decoded from the file)."""
    assert app.trace._trace_site is not None
    with pp.etl_session(etl) as session:
        app.trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, app.trace.guid, session)
            for call in calls:
                call()
        finally:
            app.trace.unregister()
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder import ordered_records
    with EtlFile(str(etl)) as f:
        return [(r.event_id, bytes(r.user_data)) for r in ordered_records(f) if r.kind == "message"]


def every_call(app):
    calls = [(lambda site=site, v=v: app.SITES[site](v)) for site, values in VALUES.items() for v in values]
    calls.append(lambda: app.six(-5, "six", 2**64 - 1, "w\u00e9", 2.5, G))
    calls.append(lambda: app.by_log(99))
    return calls


def test_fast_path_records_equal_the_python_packer_for_every_type(app, pp, tmp_path):
    calls = every_call(app)
    want = python_payloads(app, calls)
    assert len(want) == len(calls)
    got = session_payloads(app, pp, tmp_path / "types.etl", calls)
    assert got == want
    assert app.trace.events_dropped == 0


def test_fast_path_records_read_by_dissect_etl(app, pp, tmp_path):
    dissect_etl = pytest.importorskip("dissect.etl")
    etl = tmp_path / "dissect.etl"
    got = session_payloads(app, pp, etl, every_call(app))
    with open(etl, "rb") as fh:
        records = list(dissect_etl.ETL(fh))
    # dissect.etl lists the header record plus every message.
    assert len(records) == len(got) + 1


@pytest.mark.parametrize("site, value, error, detail", [
    ("int32", 2**31, ValueError, "does not fit a signed 32-bit integer"),
    ("int32", 1.5, TypeError, "expected a signed 32-bit integer, got float"),
    ("uint32", -1, ValueError, "does not fit a non-negative 32-bit integer"),
    ("uint64", 2**64, ValueError, "does not fit"),
    ("int16", 2**15, ValueError, "does not fit"),
    ("text", "nul\x00inside", ValueError, "NUL character"),
    ("text", "\ud800", ValueError, "surrogate"),
    ("wide", "\ud800", ValueError, "utf-16"),
    ("wide", "nul\x00", ValueError, "NUL character"),
    ("double", "x", TypeError, "expected a float"),
    ("guid", 5, TypeError, "expected uuid.UUID"),
    ("ip", "300.1.1.1", ValueError, "not an IPv4 address"),
    ("port", 70000, ValueError, "not a port number"),
])
def test_bad_values_raise_naming_the_call_site_and_write_nothing(app, pp, tmp_path, site, value, error, detail):
    def bad():
        with pytest.raises(error) as info:
            app.SITES[site](value)
        assert f"fastpath_app.py:" in str(info.value) and "in <lambda> (info, message" in str(info.value)
        assert detail in str(info.value)

    got = session_payloads(app, pp, tmp_path / "bad.etl", [lambda: app.SITES["int32"](1), bad,
                                                           lambda: app.SITES["int32"](2)])
    assert [p for _n, p in got] == [(1).to_bytes(4, "little"), (2).to_bytes(4, "little")]
    assert app.trace.events_dropped == 0


def test_wrong_argument_counts_raise_naming_the_call_site(app, pp, tmp_path):
    def wrong(*args):
        with pytest.raises(TypeError, match=r"fastpath_app\.py:\d+ in starred .*takes 2 argument\(s\), "
                                            rf"{len(args)} given"):
            app.starred(*args)

    got = session_payloads(app, pp, tmp_path / "arity.etl",
                           [lambda: wrong(1), lambda: app.starred(3, "ok"), lambda: wrong(1, "x", 2),
                            lambda: wrong(1, "x", 2, 3, 4, 5)])
    assert [p for _n, p in got] == [(3).to_bytes(4, "little") + b"ok\x00"]


def test_drops_are_counted_when_the_pool_is_exhausted(app, tmp_path):
    props = api.EVENT_TRACE_PROPERTIES(BufferSize=1, MinimumBuffers=1, MaximumBuffers=1, LogFileMode=1 | 0x10000000,
                                       LogFileName=str(tmp_path / "tiny.etl"))
    session = api.StartTrace(f"pyprovider-tiny-{uuid.uuid4().hex[:8]}", props)
    app.trace.register()
    _hazmat.lib.wpptrace_debug_hold_flush(session, 1)
    try:
        api.EnableTrace(True, 0xFFFFFFFF, 5, app.trace.guid, session)
        app.trace.events_dropped = app.trace.last_error = 0
        for i in range(200):  # 200 records of >= 40 bytes cannot fit one 1 KB buffer
            app.SITES["text"]("x" * 20)
        dropped = app.trace.events_dropped
    finally:
        _hazmat.lib.wpptrace_debug_hold_flush(session, 0)
        app.trace.unregister()
        stopped = api.ControlTrace(session, None, None, 1)
    assert dropped > 150 and app.trace.last_error == 8  # ERROR_NOT_ENOUGH_MEMORY
    assert stopped.EventsLost == dropped
    app.trace.events_dropped = app.trace.last_error = 0


def test_threads_write_whole_records(app, pp, tmp_path):
    workers, per_worker = 4, 1500

    def work(worker):
        for index in range(per_worker):
            app.threaded(worker, index)

    def run_all():
        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    got = session_payloads(app, pp, tmp_path / "threads.etl", [run_all])
    assert app.trace.events_dropped == 0
    seen = set()
    for _number, payload in got:
        worker = int.from_bytes(payload[0:4], "little")
        index = int.from_bytes(payload[4:8], "little")
        assert payload[8:] == f"w{worker}-{index}".encode() + b"\x00"
        seen.add((worker, index))
    assert len(got) == len(seen) == workers * per_worker


def test_builtins_write_what_the_cffi_path_writes(pp, tmp_path):
    """trace_packed / trace_message builtins against the cffi TraceMessage, same session."""
    etl = tmp_path / "builtins.etl"
    args = (b"\x01\x02\x03\x04", b"hello\x00", bytearray(b"\xff" * 9), memoryview(b"mv"))
    with pp.etl_session(etl) as session:
        from wpptrace.winerror import Win32Error
        for flags, guid in ((0x2B, G.bytes_le), (0, None)):
            uuid_or_none = G if guid else None
            api.TraceMessage(session, flags, uuid_or_none, 11, *[bytes(a) for a in args])
            assert _hazmat.trace_message_raw(session, flags, guid, 11, *args) == 0
            assert _hazmat.trace_packed_raw(session, flags, guid, 11, b"".join(bytes(a) for a in args)) == 0
        assert _hazmat.trace_packed_raw(session, 0x2B, b"short", 11, b"") == 87  # ERROR_INVALID_PARAMETER
        assert _hazmat.trace_message_raw(0, 0, None, 11) == 6  # ERROR_INVALID_HANDLE
        with pytest.raises(Win32Error):
            api.TraceMessage(0, 0, None, 11)
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder import ordered_records
    with EtlFile(str(etl)) as f:
        records = [r for r in ordered_records(f) if r.kind == "message"]
    assert len(records) == 6
    for group in (records[0:3], records[3:6]):
        first = group[0]
        for r in group:
            assert (r.flags, r.message_guid, r.event_id, bytes(r.user_data)) == \
                (first.flags, first.message_guid, first.event_id, bytes(first.user_data))
            assert r.size == first.size
