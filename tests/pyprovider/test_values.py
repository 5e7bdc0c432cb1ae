"""A trace call never raises by default: a call that cannot be written is dropped, counted per
call site and reported once; in strict mode it raises naming the call site as file:line. Both the
C level methods and the Python ones (the fallback) behave alike. Values take Python's own
conversions (%d of a float, %x of any __index__ ...) within 64 bits."""
from __future__ import annotations

import decimal
import enum
import pathlib
import re
import struct
import subprocess
import sys
import uuid
import warnings

import pytest

from wpptrace.provider import api, fastpath
from wpptrace.provider.tracing import Provider, TraceWarning

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = (HERE / "values_app.py").read_text().splitlines()
PATHS = ["python"] + (["c"] if fastpath.AVAILABLE else [])


def line_of(text: str) -> int:
    return next(i for i, line in enumerate(SOURCE, 1) if text in line)


@pytest.fixture
def app(pp):
    module = pp.load_module("pyprovider_values_app", HERE / "values_app.py")
    module.trace.stats(reset=True)
    module.trace._reported.clear()
    module.trace.strict = False
    yield module
    module.trace.strict = False
    module.trace.stats(reset=True)


class Writes:
    """Run calls through one path and return what was written: (message number, payload)."""

    def __init__(self, app, pp, tmp_path, path: str) -> None:
        self.app, self.pp, self.tmp_path, self.path = app, pp, tmp_path, path

    def __call__(self, *calls) -> list[tuple[int, bytes]]:
        trace = self.app.trace
        if self.path == "python":
            sent = []
            trace._use_writer(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0)
            trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
            try:
                for call in calls:
                    call()
            finally:
                trace._set_enable_state(0, 0, 0)
                trace._use_writer(None)
            return sent
        etl = self.tmp_path / f"writes-{uuid.uuid4().hex[:8]}.etl"
        with self.pp.etl_session(etl) as session:
            trace.register()
            try:
                api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
                assert type(type(trace).__dict__["info"]).__name__ == "method_descriptor"  # the C method
                for call in calls:
                    call()
            finally:
                trace.unregister()
        return self.pp.message_payloads(etl)


@pytest.fixture(params=PATHS)
def writes(request, app, pp, tmp_path):
    return Writes(app, pp, tmp_path, request.param)


class _RaisingStr:
    def __str__(self):
        raise RuntimeError("no text for you")


class _RaisingConversions:
    """repr(), __index__ and __int__ fail with an error that is neither TypeError nor ValueError."""

    def __repr__(self):
        raise RuntimeError("no repr for you")

    def __index__(self):
        raise LookupError("no index for you")

    def __int__(self):
        raise ArithmeticError("no int for you")


BAD = [
    # (site, value, exception in strict mode, detail)
    ("int", 2**64, ValueError, "does not fit a 64-bit integer"),
    ("int", -2**63 - 1, ValueError, "does not fit a 64-bit integer"),
    ("int", decimal.Decimal("1e999999"), ValueError, "does not fit a 64-bit integer"),
    ("int", -1e300, ValueError, "does not fit a 64-bit integer"),
    ("int", "7", TypeError, "expected a number, got str"),
    ("int", None, TypeError, "expected a number, got NoneType"),
    ("int", float("nan"), ValueError, "has no integer value"),
    ("int", 1j, TypeError, "expected a real number"),
    ("hex", 1.5, TypeError, "expected an integer, got float"),
    ("hex", 2**64, ValueError, "does not fit"),
    ("short", 2**15, ValueError, "does not fit a signed 16-bit integer"),
    ("long", -1, ValueError, "does not fit a non-negative 32-bit integer"),
    ("text", "nul\x00inside", ValueError, "NUL character"),
    ("text", _RaisingStr(), ValueError, "RuntimeError: no text for you"),
    ("repr", _RaisingConversions(), ValueError, "RuntimeError: no repr for you"),
    ("hex", _RaisingConversions(), ValueError, "LookupError: no index for you"),
    ("int", _RaisingConversions(), ValueError, "ArithmeticError: no int for you"),
    ("ansi", "\ud800", ValueError, "surrogate"),
    ("char", "ab", TypeError, "one-character str"),
    ("char", 0x110000, ValueError, "not in range(0x110000)"),
    ("double", "x", TypeError, "expected a float, got str"),
    ("guid", "not-a-guid", ValueError, "is not a GUID"),
    ("guid", 5, TypeError, "expected uuid.UUID"),
    ("status", 2**32, ValueError, "does not fit a 32-bit value"),
    ("ip", "300.1.1.1", ValueError, "not an IPv4 address"),
    ("ip", 1.5, TypeError, "expected an IPv4 address"),
    ("hexdump", "text", TypeError, "expected bytes, got str"),
    ("hexdump", b"x" * 70000, ValueError, "70000 bytes do not fit"),
]
SITE_LINES = {name: line_of(f'"{name}": lambda') for name, *_ in BAD}


@pytest.mark.parametrize("site, value, error, detail", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_default_mode_drops_counts_and_warns_once(app, writes, site, value, error, detail):
    line = SITE_LINES[site]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = writes(lambda: app.SITES[site](value), lambda: app.SITES[site](value))
    assert written == []
    ours = [w for w in caught if issubclass(w.category, TraceWarning)]
    assert len(ours) == 1, [str(w.message) for w in caught]
    assert (ours[0].filename, ours[0].lineno) == (str(HERE / "values_app.py"), line)
    assert f"values_app.py:{line} in <lambda>" in str(ours[0].message) and detail in str(ours[0].message)
    stats = app.trace.stats()
    assert stats.calls_dropped == 2 and stats.events_dropped == 0
    assert [(s.count, s.site.startswith(f"values_app.py:{line} in <lambda>")) for s in stats.sites] == [(2, True)]
    assert detail in stats.sites[0].reason


@pytest.mark.parametrize("site, value, error, detail", BAD, ids=[f"{b[0]}-{i}" for i, b in enumerate(BAD)])
def test_strict_mode_raises_naming_file_and_line(app, writes, site, value, error, detail):
    app.trace.strict = True

    def bad():
        with pytest.raises(error) as info:
            app.SITES[site](value)
        assert str(info.value).startswith(f"values_app.py:{SITE_LINES[site]} in <lambda> (")
        assert detail in str(info.value)

    assert writes(bad) == []
    assert app.trace.stats().calls_dropped == 0


def test_the_error_names_file_line_function_and_argument(app):
    app.trace.strict = True
    app.trace._use_writer(lambda *a: 0)
    app.trace._set_enable_state(1, 0xFFFFFFFF, 5)
    try:
        with pytest.raises(ValueError) as info:
            app.int32(2**70)
    finally:
        app.trace._set_enable_state(0, 0, 0)
        app.trace._use_writer(None)
    line = line_of('trace.info(A, "value %d", value)')
    assert str(info.value).startswith(
        f"values_app.py:{line} in int32 (info, message 24): argument 1 (value) for ItemLongLong: ")


@pytest.mark.parametrize("call, detail", [
    (lambda app: app.two(1), "takes 2 argument(s), 1 given"),
    (lambda app: app.two(1, "a", "extra"), "takes 2 argument(s), 3 given"),
    (lambda app: app.by_flag("A"), "the flag must be an int, got str"),
    (lambda app: app.by_level("4"), "the level must be an int, got str"),
    (lambda app: app.dynamic("value %d"), "not a trace call site of values_app.py"),
    (lambda app: app.trace.info(), "not a trace call site"),
])
def test_calls_that_cannot_be_written(app, writes, call, detail):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = writes(lambda: call(app), lambda: app.two(1, "ok"))
    assert written[-1][1] == struct.pack("<q", 1) + "ok\0".encode("utf-16-le")
    assert len(written) == 1
    assert [detail in str(w.message) for w in caught if w.category is TraceWarning] == [True]
    app.trace.strict = True
    with pytest.raises((TypeError, RuntimeError), match=re.escape(detail)):
        writes(lambda: call(app))


class Color(enum.IntEnum):
    RED = 7


class Indexable:
    def __index__(self):
        return 0x1234


class Masked(str):
    """A str subclass with its own __str__: "%s" % value shows what __str__ returns."""

    def __str__(self):
        return "***"


class Mode(str, enum.Enum):
    FAST = "fast"


FITS = [
    ("int", 2**31, struct.pack("<q", 2**31)),
    ("int", -2**63, struct.pack("<q", -2**63)),
    ("int", 2**64 - 1, struct.pack("<Q", 2**64 - 1)),
    ("int", 3.99, struct.pack("<q", 3)),            # "%d" % 3.99 == "3"
    ("int", -2.5, struct.pack("<q", -2)),
    ("int", True, struct.pack("<q", 1)),
    ("int", decimal.Decimal("41.9"), struct.pack("<q", 41)),
    ("int", Color.RED, struct.pack("<q", 7)),
    ("uint", -1, struct.pack("<q", -1)),
    ("uint", 2**64 - 1, struct.pack("<Q", 2**64 - 1)),
    ("hex", -1, struct.pack("<q", -1)),
    ("hex", Indexable(), struct.pack("<q", 0x1234)),
    ("short", -2**15, struct.pack("<h", -2**15)),
    ("long", 2**32 - 1, struct.pack("<I", 2**32 - 1)),
    ("text", "h\u00e9llo \u2713 \U0001F600", "h\u00e9llo \u2713 \U0001F600\0".encode("utf-16-le")),
    ("text", None, "None\0".encode("utf-16-le")),
    ("text", pathlib.PurePosixPath("/tmp/x"), "/tmp/x\0".encode("utf-16-le")),
    ("text", 42, "42\0".encode("utf-16-le")),
    ("text", Masked("hunter2"), "***\0".encode("utf-16-le")),
    ("text", Mode.FAST, ("%s\0" % Mode.FAST).encode("utf-16-le")),
    ("text", "\ud800 lone", b"\x00\xd8" + " lone\0".encode("utf-16-le")),
    ("repr", "x", "'x'\0".encode("utf-16-le")),
    ("ansi", "caf\u00e9", "caf\u00e9".encode() + b"\0"),
    ("ansi", Masked("hunter2"), b"***\0"),
    ("char", "\u00e9", "\u00e9\0".encode("utf-16-le")),
    ("char", 0x1F600, "\U0001F600\0".encode("utf-16-le")),
    ("double", 1, struct.pack("<d", 1.0)),
    ("double", decimal.Decimal("2.5"), struct.pack("<d", 2.5)),
    ("status", -1073741790, struct.pack("<I", 0xC0000022)),
    ("status", 0xC0000022, struct.pack("<I", 0xC0000022)),
    ("ip", "10.0.0.1", bytes([10, 0, 0, 1])),
    ("hexdump", b"\x00\x01\xff", struct.pack("<H", 3) + b"\x00\x01\xff"),
    ("hexdump", bytearray(b"ab"), struct.pack("<H", 2) + b"ab"),
    ("hexdump", memoryview(b"xyz")[1:], struct.pack("<H", 2) + b"yz"),
]


def test_values_that_fit_are_packed_as_python_converts_them(app, writes):
    got = writes(*[(lambda s=site, v=value: app.SITES[s](v)) for site, value, _ in FITS])
    assert [payload for _n, payload in got] == [want for _s, _v, want in FITS]
    assert app.trace.stats().calls_dropped == 0


def test_disabled_calls_do_not_look_at_the_values(app):
    def must_not_be_called(*args):
        raise AssertionError("reached the enabled path while disabled")

    app.trace._trace = must_not_be_called  # the C methods call it through the instance too
    try:
        app.trace._set_enable_state(0, 0, 0)
        app.int32(2**70)  # disabled: not even the value is looked at
        app.by_flag("not an int")
        app.trace._set_enable_state(0x1234, int(app.A), 3)  # A at WARNING and above
        app.int32(2**70)  # info: level too verbose
        app.info_b()      # B is not enabled
        app.verbose_a()
    finally:
        del app.trace._trace
        app.trace._set_enable_state(0, 0, 0)
    assert app.trace.stats().calls_dropped == 0


def test_strict_comes_from_the_environment_unless_given(tmp_path):
    script = ("from wpptrace.provider.tracing import Provider\n"
              "print(Provider('EnvA', register=False).strict, Provider('EnvB', register=False, strict=False).strict)\n")
    for value, want in (("1", "True False"), ("0", "False False"), ("", "False False")):
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                             env={"WPPTRACE_STRICT": value, "PATH": "/usr/bin:/bin"})
        assert out.stdout.split() == want.split()
    assert Provider("EnvC", register=False, strict=True).strict is True


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
            app.SITES["status"](0)
            app.info_b()   # level 4 > 3: not written
            api.EnableTrace(False, 0, 0, app.trace.guid, session)
            assert app.trace.logger_handle == 0 and not app.trace.enabled()
            app.SITES["status"](1)
        finally:
            app.trace.unregister()
    assert [p for _n, p in pp.message_payloads(etl)] == [b"\x00\x00\x00\x00"]


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

    source = 'trace.info(F, "%hs%d%ls%u%hs%S%!GUID!%s", a, b, c, d, e, f, g, h)\n'
    site = scan_source(source, "p.py").sites[0]
    compiled = compile_site(site, guid=uuid.uuid4(), component="P", source_file="p.py", label_path="p.py")
    g = uuid.uuid4()
    args = ("x", -3, "w", 7, "", "\u2713", g, "end")
    want = (b"x\0" + struct.pack("<q", -3) + "w\0".encode("utf-16-le") + struct.pack("<Q", 7) + b"\0"
            + "\u2713\0".encode("utf-16-le") + g.bytes_le + "end\0".encode("utf-16-le"))
    assert compiled.pack(args) == want
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
    got = Writes(module, pp, tmp_path, PATHS[-1])(lambda: module.f(1), lambda: module.f(5))
    assert got == [(10, struct.pack("<q", 1)), (11, struct.pack("<q", 2)), (12, b""),
                   (10, struct.pack("<q", 5)), (11, struct.pack("<q", 6)), (12, b"")]


def test_a_message_larger_than_a_buffer_is_dropped_and_counted(app, pp, tmp_path) -> None:
    """A message larger than a buffer: ERROR_MORE_DATA, nothing written, counted both in the
    provider's events_dropped and in the session's EventsLost."""
    etl = tmp_path / "big.etl"
    with pp.etl_session(etl, buffer_kb=4) as session:
        app.trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, app.trace.guid, session)
            app.SITES["text"]("x" * 5000)
            app.SITES["text"]("fits")
            assert api.ControlTrace(session, None, None, 0).EventsLost == 1  # QUERY
        finally:
            app.trace.unregister()
    stats = app.trace.stats()
    assert (stats.events_dropped, stats.last_error, stats.calls_dropped) == (1, 234, 0)  # ERROR_MORE_DATA
    assert [p for _n, p in pp.message_payloads(etl)] == ["fits\0".encode("utf-16-le")]


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
    writes = Writes(module, pp, tmp_path, PATHS[-1])
    with pytest.warns(TraceWarning, match=r"shared_fmt\.py:6 in bad .*takes 1 argument\(s\), the call passes 2"):
        got = writes(lambda: module.good(1), lambda: module.bad(1, 2), lambda: module.good(2))
    assert [n for n, _ in got] == [10, 10]
    module.trace.strict = True
    with pytest.raises(TypeError, match=r"shared_fmt\.py:6 in bad .*takes 1 argument\(s\), the call passes 2"):
        writes(lambda: module.bad(1, 2))


def test_an_unexpected_failure_while_resolving_is_a_drop_too(app, monkeypatch):
    """Whatever goes wrong inside the provider (here: the site lookup itself) stays out of the
    application by default (no memory or stack left is another matter: test_host_safety)."""
    def broken(*args):
        raise LookupError("no such table")

    fresh = Provider("Fresh", register=False)
    fresh._use_writer(lambda *a: 0)
    fresh._set_enable_state(1, 0xFFFFFFFF, 5)
    monkeypatch.setattr(fresh, "_find", broken)
    with pytest.warns(TraceWarning, match="cannot resolve the call site: LookupError: no such table"):
        fresh.info(1, "x %d", 1)
    assert fresh.stats().calls_dropped == 1
    fresh.strict = True
    with pytest.raises(RuntimeError, match="LookupError: no such table"):
        fresh.info(1, "x %d", 1)


class _Interrupted:
    """Ctrl-C arriving while the value converts: the signal handler raises KeyboardInterrupt once,
    in the value's Python code; converting it again would succeed."""

    def __init__(self):
        self.interrupted = False

    def _once(self):
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt

    def __str__(self):
        self._once()
        return "converted"

    @property
    def bytes_le(self):
        self._once()
        return bytes(16)


@pytest.mark.parametrize("site, good", [("text", "ok"), ("guid", uuid.UUID(int=1))])
def test_keyboard_interrupt_inside_a_value_conversion_reaches_the_application(app, writes, site, good):
    """A trace call's own failures are dropped; a KeyboardInterrupt (or SystemExit) raised while
    a value converts is the application's, as with logging, and is neither swallowed nor counted
    (the first call resolves the site, the second one is packed by the cached program)."""
    def interrupted():
        with pytest.raises(KeyboardInterrupt):
            app.SITES[site](_Interrupted())

    assert len(writes(lambda: app.SITES[site](good), interrupted, interrupted)) == 1
    assert app.trace.stats().calls_dropped == 0


def test_trace_calls_in_code_made_at_run_time_are_not_kept(writes):
    """exec'd or typed-in code has no source: its calls are dropped and counted, and the provider
    does not keep each such code object (a program exec'ing new code in a loop stays flat)."""
    import gc

    trace = Provider("ExecLoop", register=False)
    writes.app = type("App", (), {"trace": trace})
    calls = [lambda i=i: exec(f"trace.info(1, 'made at run time {i} %d', 1)", {"trace": trace})
             for i in range(200)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert writes(*calls) == []
    gc.collect()
    assert trace.stats().calls_dropped == 200
    assert len(trace._sites) < 10
