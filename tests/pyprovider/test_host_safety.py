"""A trace call never disturbs the application it runs in: not after a fork, not under the
application's warning filters, not near the recursion limit, not with hostile arguments. It
drops, counts, and reports once; it never raises, blocks or prints on its own account."""
from __future__ import annotations

import importlib.util
import os
import textwrap
import threading
import time
import uuid
import warnings

import pytest

from wpptrace.provider import fastpath
from wpptrace.provider.tracing import TraceWarning

PATHS = ["python"] + (["c"] if fastpath.AVAILABLE else [])


def make_app(tmp_path, source: str):
    """A traced module of its own (its provider rooted at tmp_path), imported from its file."""
    name = f"host_safety_{uuid.uuid4().hex[:10]}"
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the import's own compile warnings are not under test
        spec.loader.exec_module(module)
    return module


def enable(trace, path: str) -> list[tuple[int, bytes]]:
    """Enable the provider without a session: the Python level methods write into the list
    returned; the C ones write to a handle no session has (counted in events_dropped)."""
    sent: list[tuple[int, bytes]] = []
    if path == "python":
        trace._use_writer(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0)
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    return sent


APP = '''
from wpptrace.provider.tracing import Provider
trace = Provider("HostSafety", register=False, flags=("IO",))
def go(n):
    trace.info(trace.flags.IO, "value %d", n)
'''


def wait_child(pid: int, what: str) -> int:
    deadline = time.monotonic() + 20
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child hung {what}")
        time.sleep(0.005)


@pytest.mark.parametrize("path", PATHS)
def test_a_fork_while_another_thread_resolves_a_call_site_leaves_the_child_tracing(tmp_path, path):
    """Another thread is resolving a call site (reading and compiling its source, with the
    provider's locks held) when the application forks: the child has no such thread, and its
    own first call at a site must still resolve, not wait forever for locks nobody will free."""
    app = make_app(tmp_path, APP)
    trace = app.trace
    sent = enable(trace, path)
    held, release = threading.Event(), threading.Event()

    def resolving():
        with trace._lock, trace._sources._lock:
            held.set()
            release.wait()
    worker = threading.Thread(target=resolving)
    worker.start()
    try:
        assert held.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                app.go(7)
                resolved = bool(sent) if path == "python" else bool(trace._sites)
                code = 0 if resolved and trace.stats().calls_dropped == 0 else 2
            finally:
                os._exit(code)
    finally:
        release.set()
        worker.join()
    assert wait_child(pid, "at its first trace call") == 0


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("action", ["error", "always"])
def test_the_applications_own_compile_warnings_do_not_come_from_a_trace_call(tmp_path, path, action):
    """The file holding the call site has code Python warns about when it compiles it (an
    invalid escape sequence). Resolving the site compiles that source again: the warnings are
    not the trace call's to repeat, and warnings turned into errors (``-W error``, a test
    suite's ``filterwarnings = error``) must not make the site unreadable."""
    app = make_app(tmp_path, APP + 'PATTERN = "\\d+"\n')
    trace = app.trace
    sent = enable(trace, path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter(action)
        app.go(7)
    assert [str(w.message) for w in seen] == []
    assert trace.stats().calls_dropped == 0
    assert bool(sent) if path == "python" else bool(trace._sites)


class _FailingAnd:
    """A flag or level whose ``&`` fails with an error of its own."""

    def __and__(self, other):
        raise RuntimeError("no & for you")

    __rand__ = __and__


class _Ambiguous:
    """An array-like flag: ``&`` gives an object whose truth value cannot be told."""

    def __and__(self, other):
        return self

    __rand__ = __and__

    def __bool__(self):
        raise ValueError("the truth value is ambiguous")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bad", [_FailingAnd(), _Ambiguous()], ids=["failing-and", "ambiguous"])
def test_a_flag_or_level_that_is_no_int_is_dropped_whatever_its_operators_do(tmp_path, path, bad):
    """The enable test applies ``&`` to the flag (and, for log(), the level): an object whose
    operators raise something else than TypeError is still a call that cannot be written."""
    app = make_app(tmp_path, '''
        from wpptrace.provider.tracing import Provider
        trace = Provider("HostileFlags", register=False, flags=("IO",))
        def flag(value):
            trace.info(value, "value %d", 1)
        def level(value):
            trace.log(value, trace.flags.IO, "value %d", 2)
    ''')
    sent = enable(app.trace, path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(2):
            app.flag(bad)
            app.level(bad)
    assert sent == []
    stats = app.trace.stats()
    assert stats.calls_dropped == 4
    assert [(d.count, d.reason.split(": ", 1)[1]) for d in stats.sites] == [
        (2, "the flag must be an int, got " + type(bad).__name__),
        (2, "the level must be an int, got " + type(bad).__name__)]
    assert len([w for w in seen if w.category is TraceWarning]) == 2     # one report per site
