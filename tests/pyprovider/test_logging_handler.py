"""The logging handler: an unchanged application using logging.getLogger gets binary tracing by
adding one handler; the decoded text equals what logging itself formats."""
from __future__ import annotations

import logging
import pathlib
import re
import sys
import uuid

import pytest

from wpptrace.provider import api
from wpptrace.provider.logging_handler import WppHandler, compile_template, trace_level_for

HERE = pathlib.Path(__file__).resolve().parent


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if record.exc_info:
            self.lines += logging.Formatter().formatException(record.exc_info).split("\n")


@pytest.fixture
def shop(pp):
    return pp.load_module("pyprovider_logging_app", HERE / "logging_app.py")


def test_unchanged_application_traces_through_one_handler(shop, pp, tmp_path: pathlib.Path) -> None:
    root = logging.getLogger()
    handler = WppHandler("ShopLog", guid=uuid.UUID("7d4c3b2a-1e0f-4a9b-8c7d-6e5f4a3b2c1d"), root=str(HERE))
    capture = _Capture()
    old_level = root.level
    root.addHandler(handler)
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    etl = tmp_path / "shop.etl"
    try:
        with pp.etl_session(etl) as session:
            api.EnableTrace(True, 1, 5, handler.provider.guid, session)
            shop.place_order(17, ["apple", "pear"], 123.456)
    finally:
        root.removeHandler(handler)
        root.removeHandler(capture)
        root.setLevel(old_level)
        handler.provider.unregister()
    tmf_dir = tmp_path / "tmf"
    handler.write_tmf(str(tmf_dir))
    got = pp.decode_lines(etl, tmf_dir, tmp_path)
    # WPP renders doubles with %g (tracefmt does; a Provider's %f too): the one difference
    want = ["total 123.456 EUR, discount 12.5%, hex id 0x11" if line.startswith("total ") else line
            for line in capture.lines]
    assert "total 123.46 EUR, discount  12.5%, hex id 0x11" in capture.lines
    assert got == want
    # Typed: the 6 records with a literal template, a constant level and values that fit.
    # Formatted at once: the int beyond 64 bits, the %(who)s mapping, the non-literal template
    # and the log() at a computed level (the traceback after log.exception is its own catch-all
    # message, not counted as a record).
    assert handler.sent_typed == 6 and handler.sent_formatted == 4
    assert handler.provider.events_dropped == 0


def test_the_template_is_the_tmf_entry(shop, tmp_path: pathlib.Path) -> None:
    handler = WppHandler("ShopTmf", root=str(HERE))
    try:
        handler.add_sources(str(HERE / "logging_app.py"))
        by_number = {m.number: m for m in handler.messages() if m.source_file == "logging_app.py"}
    finally:
        handler.provider.unregister()
    assert by_number[10].format == "%0placing order %10!I64d! with %11!I64d! item(s)"
    assert [a.item for a in by_number[10].args] == ["ItemLongLong", "ItemLongLong"]
    assert by_number[10].trailer == {"LEVEL": "TRACE_LEVEL_VERBOSE", "FLAGS": "LOGGING", "FUNC": "place_order"}
    assert by_number[12].format == "%0total %10!s! EUR, discount %11!s!%%, hex id %12!#I64x!"
    assert [a.item for a in by_number[11].args] == ["ItemWString", "ItemWString"]  # %s and %r
    assert by_number[13].trailer["LEVEL"] == "TRACE_LEVEL_WARNING"
    assert 15 not in by_number  # %(who)s goes formatted
    assert 16 not in by_number  # log(logging.ERROR + 5, ...): a computed level goes formatted
    assert by_number[17].format == "%0lookup failed for %10!s!"  # the non-literal call is no site


def test_levels_map_to_trace_levels() -> None:
    assert [trace_level_for(level) for level in (50, 45, 40, 30, 25, 20, 10, 5, 0)] == [1, 2, 2, 3, 4, 4, 5, 5, 5]


def test_disabled_provider_costs_no_formatting(shop) -> None:
    handler = WppHandler("ShopOff", root=str(HERE))
    handler.provider._trace_packed = None  # would raise if called
    logger = logging.getLogger("shop.orders")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        shop.place_order(1, ["x"], 1.0)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.provider.unregister()
    assert handler.sent_typed == handler.sent_formatted == 0


@pytest.mark.parametrize("template, args, wanted", [
    ("%s|%r|%a", ("x", "y", "\u00e9"), None),
    ("%d %i %u", (-1, True, 3.9), None),
    ("%5s|%-5s|%05d|%x|%X|%o", ("a", "b", 42, 255, 255, 8), None),
    # doubles render with %g, whatever the template says (as tracefmt renders ItemDouble)
    ("%e %.3g %10.4f", (12345.678, 0.000123456, 3.14159), "12345.7 0.000123456 3.14159"),
    ("%c%c %d %u %x", ("\u00e9", 0x1F600, -2**63, 2**64 - 1, 2**64 - 1), None),
    # outside the conversion's signedness, a 64-bit value prints as C prints its two's complement
    ("%d %u %x", (2**63, -1, -1), "-9223372036854775808 18446744073709551615 ffffffffffffffff"),
])
def test_templates_render_like_python(template, args, wanted) -> None:
    from wpptrace.tmf.model import Argument, Message
    from wpptrace.tmf.render import compile_message

    compiled = compile_template(template)
    message = Message(guid=uuid.uuid4(), number=10, name="t", format=compiled.tmf_format,
                      args=tuple(Argument(f"a{i}", item, params, 10 + i)
                                 for i, (item, params) in enumerate(compiled.items)))
    text = compile_message(message).format(compiled.encode(args), 8, {})
    assert text == (wanted if wanted is not None else template % args)


@pytest.mark.parametrize("template", ["%(name)s", "%*d", "%.*f"])
def test_templates_that_cannot_travel_typed(template) -> None:
    with pytest.raises(ValueError):
        compile_template(template)


def test_messages_made_at_run_time_keep_the_handler_small(pp, tmp_path: pathlib.Path) -> None:
    """f-strings (a new message text per record) go formatted; the handler remembers call sites,
    not message texts, so a long-running service's memory does not grow with what it logs."""
    source = tmp_path / "fstrings.py"
    source.write_text(
        "import logging\n"
        "log = logging.getLogger('fstrings')\n"
        "def work(i):\n"
        "    log.info(f'processed item {i}')\n"
        "    log.info('typed item %d', i)\n")
    module = pp.load_module("pyprovider_fstrings", source)
    handler = WppHandler("FStrings", root=str(tmp_path))
    module.log.addHandler(handler)
    module.log.setLevel(logging.INFO)
    etl = tmp_path / "fstrings.etl"
    try:
        with pp.etl_session(etl) as session:
            api.EnableTrace(True, 1, 5, handler.provider.guid, session)
            for i in range(300):
                module.work(i)
    finally:
        module.log.removeHandler(handler)
        handler.provider.unregister()
    assert (handler.sent_formatted, handler.sent_typed) == (300, 300)
    assert len(handler._sites) <= 2   # one entry per call site, none per message text
    tmf_dir = tmp_path / "tmf"
    handler.write_tmf(str(tmf_dir))
    assert pp.decode_lines(etl, tmf_dir, tmp_path) == [
        line for i in range(300) for line in (f"processed item {i}", f"typed item {i}")]


def test_a_record_whose_arguments_do_not_fit_its_template_is_written_and_reported_once(capsys) -> None:
    """``log.info("%d %d", 1)``: the record goes formatted as its template and arguments (nothing
    of it lost), counted in sent_formatted; one TraceWarning at the call site, no logging error
    traceback printed at every call."""
    import warnings

    from wpptrace.provider.tracing import Provider, TraceWarning
    provider = Provider("LogUnformattable", register=False, flags=("LOGGING",))
    sent: list[tuple[int, bytes]] = []
    provider._use_writer(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    handler = WppHandler(provider=provider)
    log = logging.getLogger(f"unformattable.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):
            log.info("bad %d %d", 1)
    texts = [payload[:-2].decode("utf-16-le") for _number, payload in sent]
    assert texts == ["bad %d %d (not formatted: TypeError: not enough arguments for format string; "
                     "arguments: (1,))"] * 3
    assert {number for number, _payload in sent} == {14}     # the catch-all message of INFO
    assert handler.sent_formatted == 3 and handler.sent_typed == 0
    (warning,) = [w for w in seen if w.category is TraceWarning]
    assert "cannot be formatted (TypeError: not enough arguments" in str(warning.message)
    assert warning.filename == __file__
    assert 'log.info("bad %d %d", 1)' in pathlib.Path(__file__).read_text().split("\n")[warning.lineno - 1]
    assert "Logging error" not in capsys.readouterr().err


def test_two_threads_at_one_unformattable_call_site_warn_once() -> None:
    """The handler's "report once per call site" looked its set up and filled it in two steps,
    without a lock: two threads both between them both warned. Each thread is held at its
    second hash of the call site's file name (in Python), until the other is there too: the
    two steps were two hashes, and one warned in each thread; a check-and-set in one step
    hashes once, and one thread warns."""
    import threading
    import warnings

    from wpptrace.provider.tracing import Provider, TraceWarning
    together, hashes = threading.Barrier(2), threading.local()

    class Held(str):
        def __hash__(self):
            hashes.n = getattr(hashes, "n", 0) + 1
            if hashes.n == 2:
                try:
                    together.wait(5)
                except threading.BrokenBarrierError:
                    pass
            return str.__hash__(self)

    provider = Provider("LogUnformattableThreads", register=False, flags=("LOGGING",))
    provider._use_writer(lambda h, fl, g, n, p: 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    handler = WppHandler(provider=provider)
    where = Held("app.py")
    record = logging.LogRecord("x", logging.INFO, where, 7, "bad %d %d", (1,), None)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        threads = [threading.Thread(target=handler._report_unformattable, args=(record, "why"))
                   for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len([w for w in seen if w.category is TraceWarning]) == 1


def _filters_as_on_3_12(handler: logging.Handler) -> None:
    """Python 3.12's Filterer.filter on ``handler``: a filter may return a LogRecord, which
    replaces the record for the filters after it and for the handler. On 3.11 Filterer.filter
    returns a bool, so the handler's use of a returned record is tested through this."""
    if sys.version_info >= (3, 12):
        return

    def filter(record: logging.LogRecord) -> logging.LogRecord | bool:
        for f in handler.filters:
            result = f.filter(record) if hasattr(f, "filter") else f(record)
            if not result:
                return False
            if isinstance(result, logging.LogRecord):
                record = result
        return record

    handler.filter = filter  # type: ignore[method-assign]


class _Redacting(logging.Filter):
    """Replaces each record by one whose arguments are redacted (3.12's way to change a record
    for one handler only)."""

    def filter(self, record: logging.LogRecord) -> logging.LogRecord:
        copy = logging.makeLogRecord(record.__dict__)
        copy.args = tuple("<redacted>" for _ in record.args or ())
        return copy


@pytest.mark.parametrize("dropping", [False, True])
def test_a_record_a_filter_replaces_is_written_as_replaced(dropping: bool) -> None:
    """A filter returning a new record (redacted arguments): the handler writes that record, as
    logging's own handlers do, not the original with the secret; a falsy result drops it."""
    from wpptrace.provider.tracing import Provider
    provider = Provider("LogRedacted", register=False, flags=("LOGGING",))
    sent: list[bytes] = []
    provider._use_writer(lambda h, fl, g, n, p: sent.append(bytes(p)) or 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    handler = WppHandler(provider=provider)
    handler.addFilter(_Redacting())
    if dropping:
        handler.addFilter(lambda record: False)
    _filters_as_on_3_12(handler)
    log = logging.getLogger(f"redacted.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.info("token %s", "hunter2")
    log.warning(f"formatted {'x'} %s", "hunter2")
    if dropping:
        assert sent == []
        return
    assert len(sent) == 2 and (handler.sent_typed, handler.sent_formatted) == (1, 1)
    assert not any("hunter2".encode("utf-16-le") in payload for payload in sent), sent
    assert all("<redacted>".encode("utf-16-le") in payload for payload in sent), sent


_LOG_LEVELS_SOURCE = """\
import logging
log = logging.getLogger("levels")
def work(level):
    log.log(25, "between info and warning %d", 1)
    log.log(logging.WARNING, "named warning %d", 2)
    log.log(logging.ERROR + 5, "computed %d", 3)
    log.log(level, "variable %d", 4)
    log.warning("method %d", 5)
"""


def test_log_with_a_constant_level_names_the_trace_level_the_handler_filters_with(pp, tmp_path) -> None:
    """``log.log(25, ...)`` is written when INFORMATION (4) is enabled, so its TMF says
    TRACE_LEVEL_INFORMATION (not LEVEL=25); ``log.log(logging.WARNING, ...)`` is
    TRACE_LEVEL_WARNING as log.warning is. A level computed at run time has no one TMF level:
    such records go to the catch-all message of their level, as a non-literal template does."""
    source = tmp_path / "levels_app.py"
    source.write_text(_LOG_LEVELS_SOURCE)
    handler = WppHandler("LogLevels", root=str(tmp_path))
    try:
        handler.add_sources(str(source))
        by_number = {m.number: m for m in handler.messages() if m.source_file == "levels_app.py"}
    finally:
        handler.provider.unregister()
    assert {n: m.trailer["LEVEL"] for n, m in by_number.items()} == {
        10: "TRACE_LEVEL_INFORMATION", 11: "TRACE_LEVEL_WARNING", 14: "TRACE_LEVEL_WARNING"}

    module = pp.load_module("pyprovider_log_levels", source)
    from wpptrace.provider.tracing import Provider
    provider = Provider("LogLevelsRun", register=False, flags=("LOGGING",), root=str(tmp_path))
    sent: list[tuple[bytes, int]] = []
    provider._use_writer(lambda h, fl, g, n, p: sent.append((bytes(g), n)) or 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    handler = WppHandler(provider=provider)
    module.log.addHandler(handler)
    module.log.setLevel(logging.DEBUG)
    try:
        module.work(logging.ERROR)
    finally:
        module.log.removeHandler(handler)
    fallback = handler.fallback_guid.bytes_le
    typed = [n for g, n in sent if g != fallback]
    assert typed == [10, 11, 14]
    # computed: ERROR+5 is ERROR (2), the variable ERROR too: catch-all 12
    assert [n for g, n in sent if g == fallback] == [12, 12]


def test_the_flag_is_the_providers_flag_its_name_or_a_clear_error() -> None:
    """``flag=`` takes the provider's flag (``p.flags.B``, an int) or its name ("B"); anything
    else is refused at construction naming the parameter, not with int()'s bare ValueError."""
    from wpptrace.provider.tracing import Provider
    provider = Provider("LogFlagNames", register=False, flags=("A", "B"))
    assert WppHandler(provider=provider, flag=provider.flags.B).flag == 2
    by_name = WppHandler(provider=provider, flag="B")
    assert (by_name.flag, by_name.flag_name) == (2, "B")
    with pytest.raises(ValueError, match=r"flag 'C': LogFlagNames has no flag of that name \(its flags: A, B\)"):
        WppHandler(provider=provider, flag="C")
    with pytest.raises(TypeError, match=r"flag must be a flag of the provider \(an int\) or its name, not float"):
        WppHandler(provider=provider, flag=2.0)
    for bad in (0, 1 << 32, -1):
        with pytest.raises(ValueError, match=r"flag .* must be 1\.\.0xffffffff"):
            WppHandler(provider=provider, flag=bad)


def test_a_combined_flag_is_written_as_its_names_joined_as_a_provider_call_writes_it(tmp_path) -> None:
    """``flag=A|C`` enables the records by either bit: FLAGS= (what ``%!FLAGS!`` shows) names
    both, ``A|C``, as a provider's own ``trace.info(A | C, ...)`` writes it, not one of them;
    ``wpptrace tmf gen`` of a source making such a handler writes the same."""
    import textwrap

    from wpptrace.cli import main
    from wpptrace.provider.tracing import Provider

    provider = Provider("LogFlagCombined", register=False, flags=("A", "B", "C"))
    for flag, name in ((provider.flags.A | provider.flags.C, "A|C"), (provider.flags.B, "B"), (7, "A|B|C")):
        handler = WppHandler(provider=provider, flag=flag)
        assert handler.flag_name == name
        assert {m.trailer["FLAGS"] for m in handler.fallback_messages()} == {name}
    source = tmp_path / "app.py"
    source.write_text(textwrap.dedent("""
        import logging
        from wpptrace.provider.tracing import Provider
        from wpptrace.provider.logging_handler import WppHandler
        trace = Provider("LogFlagCombinedApp", flags=("A", "B", "C"))
        logging.getLogger().addHandler(WppHandler(provider=trace, flag=trace.flags.A | trace.flags.C))
        logging.warning("took %d ms", 5)
        """))
    assert main(["tmf", "gen", str(source), "-o", str(tmp_path / "tmf"), "--no-registry"]) == 0
    written = "".join(p.read_text() for p in (tmp_path / "tmf").glob("*.tmf"))
    assert "took %10!I64d! ms" in written and "FLAGS=A|C FUNC=<module>" in written
    assert written.count("FLAGS=A|C FUNC=WppHandler.emit") == 5 and "FLAGS=A FUNC" not in written
    # a name given twice is that one flag, as the handler sees it (bits joined, not added)
    source.write_text(source.read_text().replace("trace.flags.A | trace.flags.C",
                                                 "trace.flags.A | trace.flags.A"))
    for out, extra, name in (("twice", [], "A"), ("option", ["--logging-flag", "C|C"], "C")):
        assert main(["tmf", "gen", str(source), "-o", str(tmp_path / out), "--no-registry", *extra]) == 0
        written = "".join(p.read_text() for p in (tmp_path / out).glob("*.tmf"))
        assert written.count(f"FLAGS={name} FUNC=WppHandler.emit") == 5, out
        assert set(re.findall(r"FLAGS=(\S+)", written)) == {name}, out


def test_an_int_flag_is_made_of_the_providers_declared_bits_and_a_bool_is_refused() -> None:
    """An int ``flag=`` outside the provider's declared bits would send records under a bit no
    session can enable by the provider's flag names: refused at construction, naming the flags.
    A bool is an int to Python but never a flag. A provider that declares no flags keeps the
    plain 32-bit rule."""
    from wpptrace.provider.tracing import Provider
    provider = Provider("LogFlagBits", register=False, flags=("A", "B"))
    assert WppHandler(provider=provider, flag=provider.flags.A | provider.flags.B).flag == 3
    for undeclared, extra in ((4, "0x4"), (0x80000000, "0x80000000"), (5, "0x4")):
        with pytest.raises(ValueError, match=rf"^flag 0x{undeclared:x}: LogFlagBits declares no flag {extra} "
                                             r"\(its flags: A=0x1, B=0x2\)$"):
            WppHandler(provider=provider, flag=undeclared)
    for bad in (True, False):
        with pytest.raises(TypeError, match=r"flag must be a flag of the provider \(an int\) or its name, not bool"):
            WppHandler(provider=provider, flag=bad)
    flagless = Provider("LogNoFlags", register=False)
    assert WppHandler(provider=flagless, flag=4).flag == 4
    assert WppHandler(provider=flagless, flag=0xFFFFFFFF).flag == 0xFFFFFFFF
    with pytest.raises(TypeError, match=r"not bool"):
        WppHandler(provider=flagless, flag=True)


def test_a_provider_without_flags_writes_the_handlers_bits_as_flags() -> None:
    """A provider that declares no flags has no name for the handler's bit: FLAGS= (what
    ``%!FLAGS!`` shows) is the bit's value, as a provider's own ``trace.info(0x4, ...)``
    writes its flag, not LOGGING, a flag the provider does not have."""
    from wpptrace.provider.tracing import Provider

    flagless = Provider("LogNoFlagNames", register=False)
    for flag, text in ((None, "0x1"), (4, "0x4"), (5, "0x5"), (0xFFFFFFFF, "0xffffffff")):
        handler = WppHandler(provider=flagless, flag=flag)
        assert handler.flag_name == text
        assert {m.trailer["FLAGS"] for m in handler.fallback_messages()} == {text}
    named = Provider("LogFlagNamed", register=False, flags=("LOGGING",))
    assert WppHandler(provider=named).flag_name == "LOGGING"
