"""Values that do not fit their type raise naming the call site, and nothing is written; the
disabled path never enters C; the enable state comes from the ControlCallback."""
from __future__ import annotations

import pathlib
import re
import struct
import uuid

import pytest

from wpptrace.provider import api

HERE = pathlib.Path(__file__).resolve().parent


@pytest.fixture
def app(pp):
    return pp.load_module("pyprovider_values_app", HERE / "values_app.py")


@pytest.fixture
def recorded(app):
    """Enable the provider without a session: record what would go to trace_packed."""
    calls = []
    saved = app.trace._trace_packed, app.trace._trace_site

    def fake(handle, flags, guid_le, number, payload):
        calls.append((handle, flags, uuid.UUID(bytes_le=bytes(guid_le)), number, bytes(payload)))
        return 0

    app.trace._set_writers(fake, None)  # the Python packer path, recorded
    app.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    yield calls
    app.trace._set_enable_state(0, 0, 0)
    app.trace._set_writers(*saved)


SITE = re.compile(r"values_app\.py:\d+ in \w+ \(\w+, message \d+\)")


@pytest.mark.parametrize("func, value, error, detail", [
    ("int32", 2**31, ValueError, "does not fit a signed 32-bit integer"),
    ("int32", -2**31 - 1, ValueError, "does not fit"),
    ("int32", 1.5, TypeError, "expected a signed 32-bit integer, got float"),
    ("int32", "7", TypeError, "got str"),
    ("uint32", -1, ValueError, "does not fit a non-negative 32-bit integer"),
    ("uint32", 2**32, ValueError, "does not fit"),
    ("text", "nul\x00inside", ValueError, "NUL character"),
    ("wide", "nul\x00", ValueError, "NUL character"),
    ("wide", "\ud800", ValueError, "utf-16"),
    ("guid", "not-a-guid", ValueError, "is not a GUID"),
    ("guid", 5, TypeError, "expected uuid.UUID"),
    ("status", 2**32, ValueError, "does not fit a 32-bit value"),
    ("ip", "300.1.1.1", ValueError, "not an IPv4 address"),
    ("ip", 1.5, TypeError, "expected an IPv4 address"),
])
def test_a_value_that_does_not_fit_raises_naming_the_call_site(app, recorded, func, value, error, detail):
    with pytest.raises(error) as info:
        getattr(app, func)(value)
    message = str(info.value)
    assert SITE.search(message), message
    assert detail in message
    assert recorded == []  # nothing written


def test_the_error_names_file_line_function_and_argument(app, recorded):
    with pytest.raises(ValueError) as info:
        app.int32(2**40)
    line = next(i for i, text in enumerate((HERE / "values_app.py").read_text().splitlines(), 1)
                if '"value %d"' in text)
    assert str(info.value).startswith(f"values_app.py:{line} in int32 (info, message 10): argument 1 (value) for ItemLong")


def test_wrong_argument_count_raises_and_writes_nothing(app, recorded):
    with pytest.raises(TypeError, match=r"values_app\.py:\d+ in two .*takes 2 argument\(s\), 1 given"):
        app.two(1)
    with pytest.raises(TypeError, match="takes 2 argument"):
        app.two(1, "a", "extra")
    app.two(1, "a")
    assert len(recorded) == 1 and recorded[0][4] == struct.pack("<i", 1) + b"a\x00"


def test_values_that_fit_are_packed_as_their_item_types(app, recorded):
    g = uuid.uuid4()
    app.int32(-2**31)
    app.uint32(2**32 - 1)
    app.status(-1073741790)       # negative NTSTATUS as Python may hold it
    app.status(0xC0000022)
    app.ip("10.0.0.1")
    app.guid(g)
    app.text(pathlib.PurePosixPath("/tmp/x"))  # %s formats any object with str(), as Python does
    payloads = [c[4] for c in recorded]
    assert payloads == [struct.pack("<i", -2**31), struct.pack("<I", 2**32 - 1), struct.pack("<I", 0xC0000022),
                        struct.pack("<I", 0xC0000022), bytes([10, 0, 0, 1]), g.bytes_le, b"/tmp/x\x00"]
    assert {c[0] for c in recorded} == {0x1234} and {c[1] for c in recorded} == {0x2B}
    numbers = [c[3] for c in recorded]
    assert numbers == [10, 11, 15, 15, 16, 14, 12]


def test_disabled_calls_never_reach_c(app):
    def must_not_be_called(*args):
        raise AssertionError("entered C while disabled")

    saved = app.trace._trace_packed, app.trace._trace_site
    app.trace._set_writers(must_not_be_called, must_not_be_called)
    try:
        app.trace._set_enable_state(0, 0, 0)
        app.int32(2**40)  # disabled: not even the value is looked at
        app.trace._set_enable_state(0x1234, int(app.A), 3)  # A at WARNING and above
        app.int32(1)      # info: level too verbose
        app.info_b()      # B is not enabled
        app.verbose_a()
    finally:
        app.trace._set_writers(*saved)
        app.trace._set_enable_state(0, 0, 0)


def test_enable_state_arrives_through_the_control_callback(app, pp, tmp_path):
    etl = tmp_path / "enable.etl"
    with pp.etl_session(etl) as session:
        app.trace.register()
        try:
            assert app.trace.logger_handle == 0 and not app.trace.enabled()
            api.EnableTrace(True, int(app.B), 3, app.trace.guid, session)
            assert app.trace.logger_handle != 0
            assert (app.trace.enable_flags, app.trace.enable_level) == (int(app.B), 3)
            assert app.trace.enabled(app.B, 3) and not app.trace.enabled(app.B, 4)
            assert not app.trace.enabled(app.A, 1)
            app.status(0)
            app.info_b()   # level 4 > 3: not written
            api.EnableTrace(False, 0, 0, app.trace.guid, session)
            assert app.trace.logger_handle == 0 and not app.trace.enabled()
            app.status(1)
        finally:
            app.trace.unregister()
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder import ordered_records
    with EtlFile(str(etl)) as f:
        messages = [r for r in ordered_records(f) if r.kind == "message"]
    assert [(r.event_id, bytes(r.user_data)) for r in messages] == [(15, b"\x00\x00\x00\x00")]


def test_level_zero_means_every_level(app):
    app.trace._set_enable_state(0x1234, int(app.A), 0)
    try:
        assert app.trace.enabled(app.A, 5) and app.trace.enabled(app.A, 1)
    finally:
        app.trace._set_enable_state(0, 0, 0)


def test_generated_packer_matches_the_item_encodings() -> None:
    """Strings between fixed-size items: the terminator is folded into the next struct run."""
    from wpptrace.provider.tracing_messages import compile_site
    from wpptrace.provider.tracing_sites import scan_source

    source = 'trace.info(F, "%s%d%ls%u%s%S%!GUID!%s", a, b, c, d, e, f, g, h)\n'
    site = scan_source(source, "p.py").sites[0]
    compiled = compile_site(site, guid=uuid.uuid4(), component="P", source_file="p.py", label_path="p.py")
    g = uuid.uuid4()
    args = ("x", -3, "w", 7, "", "\u2713", g, "end")
    want = (b"x\0" + struct.pack("<i", -3) + "w\0".encode("utf-16-le") + struct.pack("<I", 7) + b"\0"
            + "\u2713\0".encode("utf-16-le") + g.bytes_le + b"end\0")
    assert compiled.pack_tuple(args) == want
    assert compiled.check_args(args) == want  # the slow path agrees with the fast one


def test_same_format_at_two_sites_keeps_two_messages(pp, tmp_path) -> None:
    source = tmp_path / "twice.py"
    source.write_text(
        "from wpptrace.provider.tracing import Provider\n"
        "trace = Provider('Twice', flags=('A',), register=False)\n"
        "def f(x):\n"
        "    trace.info(trace.flags.A, 'same %d', x)\n"
        "    trace.info(trace.flags.A, 'same %d', x + 1)\n"
        "    trace.info(trace.flags.A, 'started')\n")
    module = pp.load_module("pyprovider_twice", source)
    calls = []
    module.trace._set_writers(lambda h, fl, g, n, p: calls.append((n, p)) or 0, None)
    module.trace._set_enable_state(1, 1, 5)
    module.f(1)
    module.f(5)
    assert calls == [(10, struct.pack("<i", 1)), (11, struct.pack("<i", 2)), (12, b""),
                     (10, struct.pack("<i", 5)), (11, struct.pack("<i", 6)), (12, b"")]


def test_a_message_larger_than_a_buffer_is_dropped_and_counted(app, pp, tmp_path) -> None:
    """TraceMessage's rule: arguments + 72 > BufferSize -> ERROR_MORE_DATA, nothing written."""
    etl = tmp_path / "big.etl"
    with pp.etl_session(etl, buffer_kb=4) as session:
        app.trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, app.trace.guid, session)
            app.text("x" * 5000)
            app.text("fits")
        finally:
            app.trace.unregister()
    assert (app.trace.events_dropped, app.trace.last_error) == (1, 234)  # ERROR_MORE_DATA
    app.trace.events_dropped = app.trace.last_error = 0
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder import ordered_records
    with EtlFile(str(etl)) as f:
        messages = [bytes(r.user_data) for r in ordered_records(f) if r.kind == "message"]
    assert messages == [b"fits\x00"]


def test_a_bad_site_sharing_its_format_with_a_good_one_is_still_reported(pp, tmp_path) -> None:
    source = tmp_path / "shared_fmt.py"
    source.write_text(
        "from wpptrace.provider.tracing import Provider\n"
        "trace = Provider('Shared', flags=('A',), register=False)\n"
        "def good(x):\n"
        "    trace.info(trace.flags.A, 'value %d', x)\n"
        "def bad(x, y):\n"
        "    trace.info(trace.flags.A, 'value %d', x, y)\n")
    module = pp.load_module("pyprovider_shared_fmt", source)
    calls = []
    module.trace._set_writers(lambda h, fl, g, n, p: calls.append(n) or 0, None)
    module.trace._set_enable_state(1, 1, 5)
    module.good(1)
    with pytest.raises(TypeError, match=r"shared_fmt\.py:6 in bad .*takes 1 argument\(s\), the call passes 2"):
        module.bad(1, 2)
    module.good(2)
    assert calls == [10, 10]
