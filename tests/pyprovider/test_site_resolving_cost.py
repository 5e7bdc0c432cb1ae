"""Resolving a call site (its first call) finds the site among its file's sites from an index
made once per file: a file with many trace calls is resolved in time linear in its sites. A list
scan per first call made it quadratic (20000 sites: minutes), and each reload does it again.

The work is counted, not timed: the sites looked at, by iterating a file's compiled sites and
scanned call sites."""
from __future__ import annotations

import dataclasses
import uuid
import warnings

import pytest

from wpptrace.provider import tracing, tracing_sources
from wpptrace.provider.tracing import Provider

FUNCTIONS = 300


@pytest.fixture
def looked_at(monkeypatch) -> list[int]:
    """[sites looked at]: counted as the scanned call sites and the compiled sites of every file
    resolved from now on are iterated."""
    count = [0]

    class Counted(tuple):
        def __iter__(self):
            for item in tuple.__iter__(self):
                count[0] += 1
                yield item

    class CountedList(list):
        def __iter__(self):
            for item in list.__iter__(self):
                count[0] += 1
                yield item

    scan_source, compile_scan = tracing_sources.scan_source, tracing.compile_scan

    def scanned(text, path):
        result = scan_source(text, path)
        return dataclasses.replace(result, sites=Counted(result.sites))

    def compiled(scan, **kwargs):
        messages = compile_scan(scan, **kwargs)
        messages.sites = CountedList(messages.sites)
        return messages

    monkeypatch.setattr(tracing_sources, "scan_source", scanned)
    monkeypatch.setattr(tracing, "compile_scan", compiled)
    return count


def call_each(tmp_path, name: str, body: str) -> Provider:
    """FUNCTIONS functions of one file, each making one trace call (body % k), each called once
    while enabled."""
    trace = Provider(name, guid=uuid.uuid4(), flags=("IO",), register=False)
    trace._use_writer(lambda *_args: 0)
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    source = tmp_path / f"{name}.py"
    source.write_text("".join(f"def f{k}(trace, flag, i):\n    {body % k}\n" for k in range(FUNCTIONS)))
    namespace: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)   # noqa: S102 - the test's file
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # (each bad site's first drop is reported)
        for k in range(FUNCTIONS):
            namespace[f"f{k}"](trace, trace.flags.IO, k)
    return trace


def test_a_file_s_sites_are_resolved_in_linear_work(tmp_path, looked_at):
    trace = call_each(tmp_path, "many_sites", "trace.info(flag, 'f%d %%d', i)")
    assert trace.stats().calls_dropped == 0
    assert len(trace._sites) == FUNCTIONS
    # scanned once, compiled once, indexed once: a few passes, not one per call
    assert looked_at[0] <= 4 * FUNCTIONS


def test_a_file_s_bad_sites_are_resolved_in_linear_work(tmp_path, looked_at):
    """Sites whose format does not compile (here: an argument missing) are found the same way,
    for the first drop's report."""
    trace = call_each(tmp_path, "many_bad_sites", "trace.info(flag, 'f%d %%d %%d', i)")
    stats = trace.stats()
    assert stats.calls_dropped == FUNCTIONS
    assert len(stats.sites) == FUNCTIONS
    assert all("takes 2 argument(s), the call passes 1" in s.reason for s in stats.sites)
    assert looked_at[0] <= 4 * FUNCTIONS


def test_where_only_lines_are_recorded_a_call_is_the_first_site_spanning_its_line(tmp_path):
    """(Python 3.10 records no columns: the index by line gives what the scan by line gave.)"""
    from wpptrace.provider.tracing_messages import compile_scan
    from wpptrace.provider.tracing_sites import scan_source
    path = str(tmp_path / "lines.py")
    text = ("trace.info(flag, 'a %d', 1); trace.info(flag, 'a %d', 2)\n"
            "trace.info(flag,\n"
            "           'b %d', 3)\n"
            "trace.info(flag, 'c %d %d', 4)\n")
    messages = compile_scan(scan_source(text, path), control_guid=uuid.uuid4(), component="T",
                            root=str(tmp_path))
    first = messages.site_at((1,), "info", "a %d")
    assert (first.site.line, first.site.column) == (1, 0)
    assert messages.site_at((3,), "info", "b %d").site.line == 2
    assert messages.site_at((1,), "warning", "a %d") is None
    assert messages.site_at((1,), "info", b"a %d") is None
    assert messages.site_at((None,), "info", "a %d") is None
    assert messages.bad_site_at((4,), "info", "c %d %d").line == 4
    assert messages.bad_site_at((1,), "info", "a %d") is None
    # with the call's range, as 3.11+ records it
    second = messages.site_at((1, 1, 29, 56), "info", "a %d")
    assert (second.site.column, second.site.end_column) == (29, 56)
