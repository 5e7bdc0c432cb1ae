"""Each call site that drops calls has its own entry in Provider.stats() and its own one-time
TraceWarning: two calls on one source line are two sites, and so are two files of the same name
in different directories."""
from __future__ import annotations

import warnings

import pytest

from wpptrace.provider import tracing
from wpptrace.provider.tracing import Provider, TraceWarning


def _enabled(trace: Provider) -> Provider:
    trace._use_writer(lambda *a: 0)
    trace._set_enable_state(1, 0xFFFFFFFF, 5)
    return trace


def _dropped(calls) -> list[str]:
    """The TraceWarnings the calls give (every one the provider issues: no filter dedups them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for call in calls:
            call()
    return [str(w.message) for w in caught if w.category is TraceWarning]


@pytest.fixture(params=["columns", "lines only"])
def positions(request, monkeypatch) -> str:
    """What a call site's position holds: line and column (Python 3.11+), or its line only
    (as Python 3.10 records it)."""
    if request.param == "lines only":
        real = tracing._call_position
        monkeypatch.setattr(tracing, "_call_position", lambda code, lasti: real(code, lasti)[:1])
    return request.param


def test_two_bad_calls_on_one_line_are_two_sites(pp, tmp_path, positions):
    """Neither call has a literal format; the second one's drops are reported too, not only
    counted under the first one's label. Python 3.10 records lines only: the code offset then
    tells the calls apart."""
    source = tmp_path / "same_line.py"
    source.write_text(
        "from wpptrace.provider.tracing import Provider\n"
        "trace = Provider('SameLine', flags=('A',), register=False)\n"
        "def f(fmt):\n"
        "    trace.info(trace.flags.A, fmt, 1); trace.info(trace.flags.A, fmt, 2)\n")
    module = pp.load_module(f"pyprovider_same_line_{positions.replace(' ', '_')}", source)
    trace = _enabled(module.trace)
    try:
        messages = _dropped([lambda: module.f("v %d"), lambda: module.f("v %d")])
    finally:
        trace._set_enable_state(0, 0, 0)
    stats = trace.stats()
    assert stats.calls_dropped == 4
    assert [s.count for s in stats.sites] == [2, 2], stats.sites
    assert len({s.site for s in stats.sites}) == 2
    assert all(s.site.startswith("same_line.py:4") for s in stats.sites)
    assert len(messages) == 2, messages
    assert [m for m in messages if "not a trace call site" in m] == messages
    if positions == "columns":  # file:line:column (1-based) of each call
        assert {s.site.split(" ")[0] for s in stats.sites} == {"same_line.py:4:5", "same_line.py:4:40"}


def test_unexpected_resolve_failures_in_two_files_of_one_name_are_two_sites(pp, tmp_path, monkeypatch):
    """Two util.py files in different packages: each gets its own report and count."""
    modules = []
    for package in ("alpha", "beta"):
        (tmp_path / package).mkdir()
        path = tmp_path / package / "util.py"
        path.write_text("def f(trace):\n    trace.info(1, 'x %d', 1)\n")
        modules.append(pp.load_module(f"pyprovider_{package}_util", path))
    alpha, beta = modules

    def broken(*args):
        raise LookupError("no such table")

    trace = _enabled(Provider("TwoUtils", register=False))
    monkeypatch.setattr(trace, "_find", broken)
    messages = _dropped([lambda: alpha.f(trace), lambda: beta.f(trace), lambda: alpha.f(trace)])
    stats = trace.stats()
    assert stats.calls_dropped == 3
    assert len(messages) == 2, messages
    assert "alpha" in messages[0] and "beta" in messages[1]
    counts = {("alpha" if "alpha" in s.site else "beta" if "beta" in s.site else s.site): s.count
              for s in stats.sites}
    assert counts == {"alpha": 2, "beta": 1}, stats.sites
    assert all("util.py:2:5 (TwoUtils.info)" in s.site for s in stats.sites)
    assert all("LookupError: no such table" in s.reason for s in stats.sites)


def test_a_failing_label_still_drops_and_reports(pp, tmp_path, monkeypatch):
    """The label of an unexpected failure is made where something already went wrong: if the
    call's position cannot be read either, the call is still dropped, counted and reported."""
    path = tmp_path / "plain.py"
    path.write_text("def f(trace):\n    trace.info(1, 'x %d', 1)\n")
    module = pp.load_module("pyprovider_plain_label", path)

    def broken(*args):
        raise LookupError("no such table")

    trace = _enabled(Provider("NoPosition", register=False))
    monkeypatch.setattr(trace, "_find", broken)
    monkeypatch.setattr(tracing, "_call_position", broken)
    messages = _dropped([lambda: module.f(trace), lambda: module.f(trace)])
    stats = trace.stats()
    assert stats.calls_dropped == 2 and len(messages) == 1
    assert [s.count for s in stats.sites] == [2]
    assert "plain.py" in stats.sites[0].site


def test_sites_are_listed_in_source_order(pp, tmp_path, positions):
    """Line, column and code offset are numbers: line 9 comes before line 10 and column 5
    before column 40, for calls that are no trace call sites and for compiled sites that drop
    a value (line 12 before line 17); so do the code offsets of two calls on one line where
    only lines are recorded."""
    source = tmp_path / "order.py"
    source.write_text(
        "from wpptrace.provider.tracing import Provider\n"
        "trace = Provider('Order', flags=('A',), register=False)\n"
        "def f(fmt):\n" + "    pass\n" * 5 +
        "    trace.info(trace.flags.A, fmt, 1); trace.info(trace.flags.A, fmt, 2)\n"   # line 9
        "    trace.info(trace.flags.A, fmt, 3)\n"                                       # line 10
        "def g(value):\n"
        "    trace.info(trace.flags.A, 'v %d', value)\n"                                # line 12
        "def h(value):\n" + "    pass\n" * 3 +
        "    trace.info(trace.flags.A, 'v %d', value)\n")                               # line 17
    module = pp.load_module(f"pyprovider_order_{positions.replace(' ', '_')}", source)
    trace = _enabled(module.trace)
    try:
        _dropped([lambda: module.h("x"), lambda: module.g("x"), lambda: module.f("v %d")])
    finally:
        trace._set_enable_state(0, 0, 0)
    positions_seen = [s.site.split(" ")[0] for s in trace.stats().sites]
    if positions == "columns":
        assert positions_seen == ["order.py:9:5", "order.py:9:40", "order.py:10:5", "order.py:12", "order.py:17"]
    else:
        assert positions_seen == ["order.py:9", "order.py:9", "order.py:10", "order.py:12", "order.py:17"]
        offsets = [int(s.site.rsplit(" ", 1)[1].rstrip(")")) for s in trace.stats().sites[:2]]
        assert offsets == sorted(offsets) and offsets[0] != offsets[1]
