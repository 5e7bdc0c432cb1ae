"""A value whose own conversion recurses without end (a ``__str__`` that names itself, a list
nested 100 000 deep) is a value that does not convert: the call is dropped, counted at its call
site, reported once, and raised when strict; a logged record is written as its template and
arguments. Such calls were taken for calls with no stack left: lost with ERROR_NOT_ENOUGH_MEMORY,
never reported, silent in strict mode (and in tests that capture strictly) too."""
from __future__ import annotations

import logging
import sys
import uuid
import warnings

import pytest

from wpptrace.provider import api, fastpath
from wpptrace.provider.logging_handler import WppHandler
from wpptrace.provider.tracing import Provider, TraceWarning

ERROR_NOT_ENOUGH_MEMORY = 8


class Node:
    def __init__(self):
        self.parent = self

    def __str__(self):
        return f"Node({self.parent})"


def deep_list(depth: int) -> list:
    top = cur = []
    for _ in range(depth):
        cur.append([])
        cur = cur[0]
    return top


def node_calls(trace) -> None:
    for _ in range(3):
        trace.info(trace.flags.IO, "node %s", Node())


def deep_calls(trace) -> None:
    deep = deep_list(100_000)
    for _ in range(3):
        trace.info(trace.flags.IO, "deep %s", deep)


def recorded(name: str, strict: bool) -> Provider:
    trace = Provider(name, guid=uuid.uuid4(), flags=("IO",), register=False, strict=strict)
    trace._use_writer(lambda h, fl, g, n, p: 0)
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    return trace


def check_dropped(trace, calls) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        calls(trace)
    stats = trace.stats()
    assert stats.calls_dropped == 3 and len(stats.sites) == 1 and stats.sites[0].count == 3
    assert "RecursionError" in stats.sites[0].reason
    assert stats.events_dropped == 0 and stats.last_error != ERROR_NOT_ENOUGH_MEMORY
    assert len([w for w in seen if w.category is TraceWarning]) == 1


@pytest.mark.parametrize("calls", [node_calls, deep_calls])
def test_python_methods_drop_and_report_a_value_that_recurses(calls):
    check_dropped(recorded("RecursePy", strict=False), calls)


@pytest.mark.parametrize("calls", [node_calls, deep_calls])
def test_python_methods_raise_it_when_strict(calls):
    with pytest.raises(ValueError, match="RecursionError"):
        calls(recorded("RecursePyStrict", strict=True))


def enabled_in_session(pp, tmp_path, strict: bool, body) -> None:
    trace = Provider("RecurseC", guid=uuid.uuid4(), flags=("IO",), register=False, strict=strict)
    assert type(trace.info).__name__ == "builtin_function_or_method"
    with pp.etl_session(tmp_path / "recurse.etl") as session:
        trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
            body(trace)
        finally:
            trace.unregister()


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")
@pytest.mark.parametrize("calls", [node_calls, deep_calls])
def test_c_methods_drop_and_report_a_value_that_recurses(pp, tmp_path, calls):
    enabled_in_session(pp, tmp_path, False, lambda trace: check_dropped(trace, calls))


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")
def test_c_methods_raise_it_when_strict(pp, tmp_path):
    def body(trace):
        with pytest.raises(ValueError, match="RecursionError"):
            node_calls(trace)
    enabled_in_session(pp, tmp_path, True, body)


def test_a_logged_record_with_a_value_that_recurses_is_written_as_its_template_and_arguments(capsys):
    provider = Provider("RecurseLog", register=False, flags=("LOGGING",))
    sent: list[bytes] = []
    provider._use_writer(lambda h, fl, g, n, p: sent.append(bytes(p)) or 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    log = logging.getLogger(f"recurse.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(WppHandler(provider=provider))
    log.setLevel(logging.DEBUG)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(2):
            log.info("node %s", Node())
    texts = [payload[:-2].decode("utf-16-le") for payload in sent]
    assert len(texts) == 2 and all(t.startswith("node %s (not formatted: RecursionError") for t in texts)
    assert provider.events_dropped == 0 and provider.last_error != ERROR_NOT_ENOUGH_MEMORY
    assert len([w for w in seen if w.category is TraceWarning]) == 1
    assert "Logging error" not in capsys.readouterr().err


class Template(str):
    """A message template whose own hash recurses (the handler looks its call site up by it)."""

    def __hash__(self):
        return hash(Template(self))


def test_a_record_that_recurses_in_a_shallow_call_is_reported_not_counted_lost(capsys):
    """A RecursionError raised where the stack was shallow is the record's own (here its
    template's), reported as logging's handlers report a record they cannot write; it was
    counted as an event lost for want of memory (ERROR_NOT_ENOUGH_MEMORY), never said."""
    provider = Provider("RecurseLogShallow", register=False, flags=("LOGGING",))
    provider._use_writer(lambda h, fl, g, n, p: 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    log = logging.getLogger(f"recurse.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(WppHandler(provider=provider))
    log.setLevel(logging.DEBUG)
    log.info(Template("hashed %s"), 1)
    err = capsys.readouterr().err
    assert "--- Logging error ---" in err and "RecursionError" in err, err
    assert provider.events_dropped == 0 and provider.last_error != ERROR_NOT_ENOUGH_MEMORY


def test_a_record_logged_near_the_recursion_limit_is_still_counted_lost(capsys):
    """The other side of the rule: caught deep, a RecursionError is no room left (the record
    lost and counted, nothing said: saying it would need the same room)."""
    provider = Provider("RecurseLogDeep", register=False, flags=("LOGGING",))
    provider._use_writer(lambda h, fl, g, n, p: 0)
    provider._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    log = logging.getLogger(f"recurse.{uuid.uuid4().hex}")
    log.propagate = False
    log.addHandler(WppHandler(provider=provider))
    log.setLevel(logging.DEBUG)

    def down(depth: int) -> None:
        if depth:
            down(depth - 1)
        else:
            log.info("deep %d", depth)

    for depth in range(sys.getrecursionlimit()):
        try:
            down(depth)
        except RecursionError:
            break                                   # the recursion itself reached the limit
    assert provider.events_dropped > 0 and provider.last_error == ERROR_NOT_ENOUGH_MEMORY
    assert "Logging error" not in capsys.readouterr().err
