"""The C level methods (provider/pyext/fastpath.c) write exactly what the Python methods write,
count drops, and are safe from several threads."""
from __future__ import annotations

import decimal
import pathlib
import threading
import uuid

import pytest

from wpptrace.provider import _hazmat, api, fastpath

HERE = pathlib.Path(__file__).resolve().parent
G = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")

pytestmark = pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")

VALUES = {
    "int32": [0, 1, -1, 2**31 - 1, -2**31, True, 2**40, -2**63, 2**64 - 1, 2.75, decimal.Decimal(-3)],
    "uint32": [0, 2**32 - 1, 7, -1, 2**64 - 1],
    "int16": [-2**15, 2**15 - 1],
    "uint16": [0, 0xFFFF],
    "int64": [-2**63, 2**63 - 1, 12345678901234],
    "uint64": [0, 2**64 - 1, 0x7FF012345678],
    "pointer": [0, 2**63 + 5],
    "double": [0.0, -1.5, 1e300, 3, float("inf"), decimal.Decimal("0.5")],
    "char": ["x", 65, "\u00e9", 0x1F600],
    "text": ["", "plain", "caf\u00e9 \u20ac \U0001F600", 42, None, pathlib.PurePosixPath("/tmp/x"), "\udc80"],
    "wide": ["", "wide", "caf\u00e9 \u20ac \U0001F600 \U00010400", 7],
    "guid": [G, str(G)],
    "status": [0, 0xC0000022, -1073741790],   # negative: the C form refuses, Python packs
    "ip": ["10.0.0.1", 0x7F000001],
    "port": [80, 65535],
    "sid": ["S-1-5-32-544"],
    "hexdump": [b"", b"\x00\xff" * 40, bytearray(b"abc")],
}


@pytest.fixture
def app(pp):
    module = pp.load_module("pyprovider_fastpath_app", HERE / "fastpath_app.py")
    module.trace.stats(reset=True)
    return module


def python_payloads(app, calls) -> list[tuple[int, bytes]]:
    """What the Python level methods send for the calls (recorded, no session)."""
    sent = []
    app.trace._use_writer(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0)
    app.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    try:
        assert app.trace.info.__func__.__qualname__ == "info"   # the Python method
        for call in calls:
            call()
    finally:
        app.trace._set_enable_state(0, 0, 0)
        app.trace._use_writer(None)
    return sent


def session_payloads(app, pp, etl, calls) -> list[tuple[int, bytes]]:
    """What the C level methods write for the calls into a real session (decoded from the file)."""
    assert type(app.trace.info).__name__ == "builtin_function_or_method"
    with pp.etl_session(etl) as session:
        app.trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, app.trace.guid, session)
            for call in calls:
                call()
        finally:
            app.trace.unregister()
    return pp.message_payloads(etl)


def every_call(app):
    calls = [(lambda site=site, v=v: app.SITES[site](v)) for site, values in VALUES.items() for v in values]
    calls.append(lambda: app.six(-5, "six", 2**64 - 1, "w\u00e9", 2.5, G))
    calls.append(lambda: app.by_log(99))
    return calls


def test_c_records_equal_the_python_methods_for_every_type(app, pp, tmp_path):
    calls = every_call(app)
    want = python_payloads(app, calls)
    assert len(want) == len(calls)
    got = session_payloads(app, pp, tmp_path / "types.etl", calls)
    assert got == want
    stats = app.trace.stats()
    assert stats.events_dropped == 0 and stats.calls_dropped == 0


def test_c_records_read_by_dissect_etl(app, pp, tmp_path):
    dissect_etl = pytest.importorskip("dissect.etl")
    etl = tmp_path / "dissect.etl"
    got = session_payloads(app, pp, etl, every_call(app))
    with open(etl, "rb") as fh:
        records = list(dissect_etl.ETL(fh))
    # dissect.etl lists the header record plus every message.
    assert len(records) == len(got) + 1


def test_one_site_called_from_many_frames_and_many_sites_from_one(app, pp, tmp_path):
    """The site table is keyed by code object and offset: fresh frames of one function share a
    site; many sites in one code object stay apart; growing the table keeps every entry."""
    source = tmp_path / "many_sites.py"
    lines = ["from wpptrace.provider.tracing import Provider",
             "trace = Provider('ManySites', flags=('A',), register=False)", "A = trace.flags.A", "def f(i):"]
    lines += [f"    trace.info(A, 'site {k} %d', i)" for k in range(150)]
    source.write_text("\n".join(lines) + "\n")
    module = pp.load_module("pyprovider_many_sites", source)
    got = session_payloads(module, pp, tmp_path / "many.etl", [lambda: [module.f(i) for i in range(3)]])
    assert [n for n, _ in got] == list(range(10, 160)) * 3
    assert [p for _, p in got][150 * 2] == (2).to_bytes(8, "little")


def test_drops_are_counted_when_the_pool_is_exhausted(app, tmp_path):
    props = api.EVENT_TRACE_PROPERTIES(BufferSize=1, MinimumBuffers=1, MaximumBuffers=1, LogFileMode=1 | 0x10000000,
                                       LogFileName=str(tmp_path / "tiny.etl"))
    session = api.StartTrace(f"pyprovider-tiny-{uuid.uuid4().hex[:8]}", props)
    app.trace.register()
    _hazmat.lib.wpptrace_debug_hold_flush(session, 1)
    try:
        api.EnableTrace(True, 0xFFFFFFFF, 5, app.trace.guid, session)
        app.trace.stats(reset=True)
        for i in range(200):  # 200 records of >= 40 bytes cannot fit one 1 KB buffer
            app.SITES["text"]("x" * 20)
        dropped = app.trace.stats().events_dropped
    finally:
        _hazmat.lib.wpptrace_debug_hold_flush(session, 0)
        app.trace.unregister()
        stopped = api.ControlTrace(session, None, None, 1)
    assert dropped > 150 and app.trace.stats().last_error == 8  # ERROR_NOT_ENOUGH_MEMORY
    assert stopped.EventsLost == dropped


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
    assert app.trace.stats().events_dropped == 0
    seen = set()
    for _number, payload in got:
        worker = int.from_bytes(payload[0:8], "little")
        index = int.from_bytes(payload[8:16], "little")
        assert payload[16:] == f"w{worker}-{index}\0".encode("utf-16-le")
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
    from wpptrace.decoder import ordered_records
    from wpptrace.decoder.etlfile import EtlFile
    with EtlFile(str(etl)) as f:
        records = [r for r in ordered_records(f) if r.kind == "message"]
    assert len(records) == 6
    for group in (records[0:3], records[3:6]):
        first = group[0]
        for r in group:
            assert (r.flags, r.message_guid, r.event_id, bytes(r.user_data)) == \
                (first.flags, first.message_guid, first.event_id, bytes(first.user_data))
            assert r.size == first.size
