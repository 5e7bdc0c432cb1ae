"""A trace call never disturbs the application it runs in: not after a fork, not under the
application's warning filters, not near the recursion limit, not with hostile arguments. It
drops, counts, and reports once; it never raises, blocks or prints on its own account."""
from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import marshal
import os
import pathlib
import signal
import subprocess
import sys
import textwrap
import threading
import time
import traceback
import uuid
import warnings
import weakref

import pytest

from wpptrace.provider import api, fastpath, tracing_sources
from wpptrace.provider.tracing import Provider, TraceWarning

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
    """Another thread holds the provider's lock (publishing a call site it resolved) when the
    application forks: the child has no such thread, and its own first call at a site must
    still resolve, not wait forever for a lock nobody will free."""
    app = make_app(tmp_path, APP)
    trace = app.trace
    sent = enable(trace, path)
    held, release = threading.Event(), threading.Event()

    def resolving():
        with trace._lock:
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


class _HeldRegistryLoader:
    """A finder and loader of one registry module whose loading waits (in the parent process)
    until released, as a slow file system would: the loading thread holds whatever the import
    system takes for it meanwhile."""

    def __init__(self, name: str) -> None:
        self.name, self.parent = name, os.getpid()
        self.entered, self.release = threading.Event(), threading.Event()

    def find_spec(self, name, path=None, target=None):
        if name != self.name or os.getpid() != self.parent:
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        self.entered.set()
        self.release.wait(20)

    def exec_module(self, module):
        module.VERSION, module.FILES = tracing_sources.REGISTRY_VERSION, {}


@pytest.mark.parametrize("path", PATHS)
def test_a_fork_while_another_thread_reads_the_site_registry_leaves_the_child_tracing(tmp_path, path):
    """The first trace call reads the site registry, running the registry module where there
    is no registry text (a .pyc-only install). Another thread is doing so when the application
    forks: the child's own first call must return and write its record, not wait forever for
    what that thread held (an import lock of the registry module); the child goes without
    the registry and says so."""
    app = make_app(tmp_path, APP)
    trace = app.trace
    sent = enable(trace, path)
    held = _HeldRegistryLoader(trace._sources._registry_module)
    sys.meta_path.insert(0, held)
    worker = threading.Thread(target=app.go, args=(1,))
    worker.start()
    try:
        assert held.entered.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                app.go(7)
                written = sent[-1:] == [(sent[-1][0], (7).to_bytes(8, "little"))] if path == "python" \
                    else bool(trace._sites)
                forked = "forked" in (trace._sources.registry_error or "")
                code = 0 if written and forked and trace.stats().calls_dropped == 0 else 2
            finally:
                os._exit(code)
    finally:
        held.release.set()
        worker.join()
        sys.meta_path.remove(held)
    assert wait_child(pid, "at its first trace call") == 0
    assert trace._sources.registry() == {} and trace._sources.registry_error is None


def test_a_registry_module_another_thread_is_importing_is_read_whole(tmp_path, monkeypatch):
    """A registry module in sys.modules that is still being imported (another thread runs it)
    is no registry to judge yet: it is run apart, whole, and not taken for one without FILES."""
    from wpptrace.provider.tracing_sites import scan_source
    name = f"host_safety_registry_{uuid.uuid4().hex[:10]}"
    scan = scan_source(textwrap.dedent(APP), str(tmp_path / "app.py"))
    (tmp_path / f"{name}.py").write_text(tracing_sources.registry_text([("app.py", "0" * 64, scan, [])]))
    monkeypatch.syspath_prepend(str(tmp_path))
    half = type(sys)(name)
    half.__spec__ = importlib.util.spec_from_file_location(name, tmp_path / f"{name}.py")
    half.__spec__._initializing = True
    monkeypatch.setitem(sys.modules, name, half)
    sources = tracing_sources.SiteSources(str(tmp_path), str(tmp_path / "none"), name)
    assert list(sources.registry()) == ["app.py"] and sources.registry_error is None
    assert sys.modules[name] is half


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


@pytest.mark.parametrize("path", PATHS)
def test_a_trace_call_leaves_other_threads_warning_filters_and_warnings_alone(tmp_path, monkeypatch, path):
    """Resolving a call site compiles its source with that source's own warnings silenced.
    The warning filters are process-wide and other threads run meanwhile: one adds a filter and
    gives a warning, another enters a ``catch_warnings`` block that it leaves after the call.
    The filter stays, the warning is shown, and leaving that block restores its thread's
    filters, not a list that ignores every warning."""
    app = make_app(tmp_path, APP + 'PATTERN = "\\d+"\n')
    trace = app.trace
    sent = enable(trace, path)
    entered, leave = threading.Event(), threading.Event()

    def other_thread():
        warnings.filterwarnings("error", message="another thread's filter")
        warnings.warn("another thread's warning", UserWarning)

    def other_threads_block():
        with warnings.catch_warnings():
            entered.set()
            leave.wait(10)
    blocker = threading.Thread(target=other_threads_block)
    real_compile = tracing_sources._compile

    def compile_while_others_run(*args):
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(10)
        blocker.start()
        assert entered.wait(10)
        return real_compile(*args)
    monkeypatch.setattr(tracing_sources, "_compile", compile_while_others_run)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            app.go(7)
        finally:
            leave.set()
            blocker.join(10)
        assert not blocker.is_alive()
        warnings.warn("after the call", UserWarning)
        patterns = [getattr(f[1], "pattern", f[1]) for f in warnings.filters if f[1] is not None]
        modules = [getattr(f[3], "pattern", f[3]) for f in warnings.filters if f[3] is not None]
    assert [str(w.message) for w in seen] == ["another thread's warning", "after the call"]
    assert "another thread's filter" in patterns
    assert not [m for m in modules if "wpptrace" in m]       # the call's own entry is gone
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


def _flag_and_level_app(tmp_path, name: str):
    """An application whose ``flag(value)`` traces with ``value`` as the flag and whose
    ``level(value)`` logs with it as the level."""
    return make_app(tmp_path, f'''
        from wpptrace.provider.tracing import Provider
        trace = Provider("{name}", register=False, flags=("IO",))
        def flag(value):
            trace.info(value, "value %d", 1)
        def level(value):
            trace.log(value, trace.flags.IO, "value %d", 2)
    ''')


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("bad", [_FailingAnd(), _Ambiguous()], ids=["failing-and", "ambiguous"])
def test_a_flag_or_level_that_is_no_int_is_dropped_whatever_its_operators_do(tmp_path, path, bad):
    """The enable test applies ``&`` to the flag (and, for log(), the level): an object whose
    operators raise something else than TypeError is still a call that cannot be written."""
    app = _flag_and_level_app(tmp_path, "HostileFlags")
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


class _NoRoomAnd:
    """A flag or level whose ``&`` finds no memory (or no stack) left. A RecursionError is no
    room only for a call made deep in the stack (see _deep): caught shallow, it is the value's
    own recursion, a value that does not convert."""

    def __init__(self, error: type[Exception]):
        self.error = error

    def __and__(self, other):
        raise self.error("no room")

    __rand__ = __and__


def _deep(call):
    """``call()`` made with half the recursion limit's frames below it."""
    def down(n):
        return call() if n <= 0 else down(n - 1)
    return down(sys.getrecursionlimit() // 2)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("error", [MemoryError, RecursionError])
def test_no_room_in_a_flags_or_levels_and_is_no_lost_call_when_disabled(tmp_path, path, error):
    """A disabled provider writes nothing: a flag (or log()'s level) whose ``&`` fails for
    want of memory or stack loses no event, and is not counted; enabled, the call is lost
    and counted (the C methods test no ``&`` of a flag that is no int: they drop the call)."""
    app = _flag_and_level_app(tmp_path, f"NoRoomFlags{error.__name__}")
    bad = _NoRoomAnd(error)
    app.flag(bad)
    app.level(bad)
    assert (app.trace.stats().events_dropped, app.trace.stats().calls_dropped) == (0, 0)
    if path == "python":
        app.trace._use_writer(lambda *_args: 0)    # the Python level methods, still disabled
        app.flag(bad)
        app.level(bad)
        assert (app.trace.stats().events_dropped, app.trace.stats().calls_dropped) == (0, 0)
    enable(app.trace, path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        _deep(lambda: (app.flag(bad), app.level(bad)))
    stats = app.trace.stats()
    assert (stats.events_dropped, stats.calls_dropped) == ((2, 0) if path == "python" else (0, 2))


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("error", [MemoryError, RecursionError])
def test_no_room_in_a_flags_and_is_no_lost_call_at_a_level_not_enabled(tmp_path, path, error):
    """log() at an int level the session did not enable (its mask 0) writes nothing, on an
    enabled provider too: a flag whose ``&`` fails for want of memory or stack loses no event
    and is not counted, as the level methods of a level not enabled."""
    app = _flag_and_level_app(tmp_path, f"NoRoomLevel{error.__name__}")
    if path == "python":
        app.trace._use_writer(lambda *_args: 0)
    app.trace._set_enable_state(0x1234, 0xFFFFFFFF, 3)
    bad = _NoRoomAnd(error)
    app.trace.log(5, bad, "value %d", 3)
    app.trace.verbose(bad, "value %d", 4)
    stats = app.trace.stats()
    assert (stats.events_dropped, stats.calls_dropped) == (0, 0)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        _deep(lambda: app.trace.log(3, bad, "value %d", 5))   # an enabled level: lost and counted
    stats = app.trace.stats()
    assert (stats.events_dropped, stats.calls_dropped) == ((1, 0) if path == "python" else (0, 1))
    assert [str(w.message).split(": ", 1)[1][:18] for w in said] == (
        [] if path == "python" else ["trace call dropped"])   # a drop is reported once


@contextlib.contextmanager
def writing(trace, path: str, pp, tmp_path):
    """Enable the provider: the Python level methods write into the list given; the C ones
    write to a real file session, whose messages the list gets when the block ends."""
    sent: list[tuple[int, bytes]] = []
    if path == "python":
        trace._use_writer(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0)
        trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
        try:
            yield sent
        finally:
            trace._set_enable_state(0, 0, 0)
            trace._use_writer(None)
        return
    etl = tmp_path / f"writes-{uuid.uuid4().hex[:8]}.etl"
    with pp.etl_session(etl) as session:
        trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
            yield sent
        finally:
            trace.unregister()
    sent += pp.message_payloads(etl)


class _Text:
    """A value whose text comes from Python code (one more frame when it converts)."""

    def __str__(self):
        return "text"


def _traced_at_depth(depth: int, trace, value):
    """Recurse ``depth`` frames, then trace: the RecursionError the trace call raised, if any."""
    if depth:
        return _traced_at_depth(depth - 1, trace, value)
    try:
        trace.info(1, "deep %s", value)
    except RecursionError as exc:
        return exc
    return None


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("first", [True, False], ids=["resolving", "cached"])
def test_a_call_near_the_recursion_limit_never_raises_and_is_counted(pp, tmp_path, path, first, strict):
    """An application deep in recursion traces: the provider's own frames (a value's __str__,
    the site lookup of a first call) may find no room left below the recursion limit. The
    application would have run on without tracing, so the call is never raised: it is lost
    and counted as an event for want of memory (``events_dropped``, ``last_error``
    ERROR_NOT_ENOUGH_MEMORY), the value's own conversion too, in strict mode as well (a
    strict provider raises for values that do not convert, not for want of room). (A Python
    level method can only fail to be entered, as any function called there.)"""
    trace = Provider("DeepRecursion", register=False, strict=strict)
    value = _Text()
    raised, calls = [], 0
    with writing(trace, path, pp, tmp_path) as sent:
        for depth in range(sys.getrecursionlimit()):
            if first:
                trace._sites.clear()
                if hasattr(trace, "_clear_sites"):
                    trace._clear_sites()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", TraceWarning)
                try:
                    exc = _traced_at_depth(depth, trace, value)
                except RecursionError:
                    break                             # the recursion itself reached the limit
                except Exception as other:  # noqa: BLE001 - a strict drop: what this test is about
                    raised.append(other)
                    continue
            if exc is None:
                calls += 1
            elif path == "c" or exc.__traceback__.tb_next is not None:
                raised.append(exc)
    assert raised == []
    stats = trace.stats()
    assert stats.events_dropped > 0 and stats.last_error == 8
    assert len(sent) + stats.events_dropped + stats.calls_dropped == calls


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("first", [True, False], ids=["resolving", "cached"])
def test_a_call_when_an_allocation_fails_never_raises_and_is_counted(pp, tmp_path, path, first, strict):
    """Each allocation the provider makes for one call fails in turn (CPython's allocation
    failure hook): the call never raises MemoryError into the application, whatever failed
    (the C methods' hand-over to Python, the site lookup, a value's conversion ...), nor
    anything else in strict mode.

    The hook fails allocations in every thread, and a call that reads its site's source lets
    other threads run: in a forked child only this thread is left, so what fails is the
    provider's allocations, never the test runner's."""
    testcapi = pytest.importorskip("_testcapi")
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            trace = Provider("NoMemory", register=False, strict=strict)
            value = _Text()
            raised = []
            with writing(trace, path, pp, tmp_path), warnings.catch_warnings():
                warnings.simplefilter("ignore", TraceWarning)
                for failing in range(300):
                    if first:
                        trace._sites.clear()
                        if hasattr(trace, "_clear_sites"):
                            trace._clear_sites()
                    testcapi.set_nomemory(failing, failing + 1)
                    try:
                        trace.info(1, "no memory %s", value)
                    except Exception as exc:  # noqa: BLE001 - MemoryError, or a strict drop made of it
                        raised.append(exc)
                    finally:
                        testcapi.remove_mem_hooks()
            stats = trace.stats()
            report = [[repr(exc) for exc in raised], stats.events_dropped, stats.last_error]
            os.write(writer, marshal.dumps(report))
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader, "rb") as pipe:
        data = pipe.read()
    assert wait_child(pid, "failing the provider's allocations one by one") == 0
    raised, events_dropped, last_error = marshal.loads(data)
    assert raised == []
    assert events_dropped > 0 and last_error == 8


def _nested_app(tmp_path, name: str, terms: int):
    """An application whose source holds an expression ``terms`` deep (a sum: the scanner's
    tree walk takes frames in proportion), and three trace call sites."""
    return make_app(tmp_path, f'''
        from wpptrace.provider.tracing import Provider
        trace = Provider("{name}", register=False, flags=("IO",))
        DEEP = {"+".join(["1"] * terms)}
        def go(n):
            trace.info(trace.flags.IO, "value %d", n)
        def other(n):
            trace.info(trace.flags.IO, "other %d", n)
        def deep(depth, n):
            return deep(depth - 1, n) if depth else go(n)
        def holding(value, n):
            trace.info(trace.flags.IO, "held %d", n)
    ''')


def _counting_scans(monkeypatch, name: str = "scan_source") -> list[str]:
    """The paths the scanner ``name`` is asked to scan, one entry a scan."""
    scans: list[str] = []
    real = getattr(tracing_sources, name)

    def counted(text, path):
        scans.append(path)
        return real(text, path)
    monkeypatch.setattr(tracing_sources, name, counted)
    return scans


@pytest.mark.parametrize("path", PATHS)
def test_a_source_nested_too_deeply_to_scan_is_scanned_once(tmp_path, monkeypatch, path):
    """A source whose expressions are nested deeper than the scanner can walk, found by a call
    with plenty of stack left: the failure is the source's and is kept, so the calls of its
    sites are dropped and reported, not scanned again each time."""
    scans = _counting_scans(monkeypatch)
    app = _nested_app(tmp_path, "TooDeep", 2 * sys.getrecursionlimit())
    sent = enable(app.trace, path)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for n in range(3):
            app.go(n)
            app.other(n)
    assert len(scans) == 1 and sent == []
    stats = app.trace.stats()
    assert (stats.calls_dropped, stats.events_dropped) == (6, 0)
    assert all("nested too deeply to scan" in d.reason for d in stats.sites)
    assert len([w for w in seen if w.category is TraceWarning]) == 2     # one report per site


class _Held:
    """An object of the application's, in the frame of a trace call."""


def test_a_kept_scan_failure_holds_nothing_of_the_call_that_found_it(tmp_path):
    """The failure kept for a source too deeply nested to scan keeps its message only: not the
    frames of the call that found it (they hold the application's objects), not the
    RecursionError and the scanner's frames behind it."""
    app = _nested_app(tmp_path, "HeldFrames", 2 * sys.getrecursionlimit())
    enable(app.trace, "python")
    value = _Held()
    held = weakref.ref(value)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        app.holding(value, 1)
        del value
        gc.collect()
        assert held() is None
        app.go(2)                 # the kept failure, raised again for another site
    kept = app.trace._sources._files[os.path.abspath(app.__file__)].results["scan"]
    assert "nested too deeply to scan" in str(kept)
    assert (kept.__traceback__, kept.__context__, kept.__cause__) == (None, None, None)
    assert app.trace.stats().calls_dropped == 2


def _depth() -> int:
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1
    return depth


def test_a_source_the_calls_stack_has_no_room_to_scan_concludes_nothing(tmp_path, monkeypatch):
    """The first call of a nested source's site comes with too little stack left to scan it
    (but enough for the call): the call is lost and counted, nothing is concluded about the
    source, and the next call, with room, scans it and is written."""
    scans = _counting_scans(monkeypatch)
    app = _nested_app(tmp_path, "DeepCaller", sys.getrecursionlimit() // 4)
    sent = enable(app.trace, "python")
    app.deep(sys.getrecursionlimit() - 200 - _depth(), 1)      # 200 frames left for the call
    assert len(scans) == 1 and sent == []
    assert (app.trace.stats().calls_dropped, app.trace.stats().events_dropped) == (0, 1)
    app.go(2)
    app.other(3)
    assert len(scans) == 2
    assert [number for number, _payload in sent] == [10, 11]
    assert app.trace.stats().calls_dropped == 0


def test_a_source_that_scans_from_a_shallow_call_is_not_kept_as_too_deep(tmp_path, monkeypatch):
    """A nested source that a shallow call can scan, first called from a third of the way down
    the stack, where the scan has no room: that call is lost and counted, but nothing is kept
    against the source, so a shallow call then scans it and is written."""
    scans = _counting_scans(monkeypatch)
    app = _nested_app(tmp_path, "HalfDeep", sys.getrecursionlimit() * 7 // 20)
    sent = enable(app.trace, "python")
    app.deep(sys.getrecursionlimit() * 9 // 20 - _depth(), 1)
    assert len(scans) == 1 and sent == []
    assert (app.trace.stats().calls_dropped, app.trace.stats().events_dropped) == (0, 1)
    app.go(2)
    assert len(scans) == 2
    assert [number for number, _payload in sent] == [10]
    assert app.trace.stats().calls_dropped == 0


def test_calls_too_deep_to_scan_their_source_do_not_scan_it_again(tmp_path, monkeypatch):
    """Recursive code whose calls all come near the recursion limit, in a source that needs more
    room than they have: the first one scans and is lost; the ones as deep or deeper are lost
    without scanning the whole file again each time; a shallower one scans."""
    scans = _counting_scans(monkeypatch)
    app = _nested_app(tmp_path, "AlwaysDeep", sys.getrecursionlimit() // 4)
    sent = enable(app.trace, "python")
    left = sys.getrecursionlimit() - 200 - _depth()
    for n in range(20):
        app.deep(left, n)
    assert len(scans) == 1 and sent == []
    assert app.trace.stats().events_dropped == 20
    app.go(20)
    assert len(scans) == 2 and [number for number, _payload in sent] == [10]


def test_calls_too_deep_to_compile_their_source_do_not_compile_it_again(tmp_path, monkeypatch):
    """A call's code is checked against its file compiled again; recursive code whose calls all
    come near the recursion limit, in a source too nested to compile from there: the first
    call compiles and is lost, the ones as deep or deeper are lost without compiling the whole
    file again each time."""
    compiles = []
    real = tracing_sources._code_tree

    def counted(text, path, asserts_rewritten=False):
        compiles.append(path)
        return real(text, path, asserts_rewritten)
    monkeypatch.setattr(tracing_sources, "_code_tree", counted)
    app = _nested_app(tmp_path, "DeepCompile", 2 * sys.getrecursionlimit())
    enable(app.trace, "python")
    left = sys.getrecursionlimit() - 200 - _depth()
    for n in range(10):
        app.deep(left, n)
    assert len(compiles) == 1
    assert app.trace.stats().events_dropped == 10


_TRACED_GC = '''
import gc
from wpptrace.provider.tracing import Provider
trace = Provider("TracedGc", register=False, flags=("GC",))
def on_gc(phase, info):
    trace.verbose(trace.flags.GC, "gc %d", phase)      # a str: dropped (which takes the locks)
'''

_DEEP_USER = '''
from traced import trace
DEEP = {deep}
def go(n):
    trace.info(trace.flags.GC, "value %d", n)
'''

_DEEP_DRIVER = '''
import gc, sys, threading, warnings
sys.path.insert(0, sys.argv[1])
warnings.simplefilter("ignore")
import traced, deep
traced.trace._use_writer(lambda h, fl, g, n, p: 0)
traced.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
{setup}
deep.go(1)
reasons = [d.reason for d in traced.trace.stats().sites if "deep.py" in d.site]
print("finished", reasons)
'''


def _run_deep_call(tmp_path, setup: str) -> str:
    """A program whose first trace call is in a source too deeply nested to scan, after
    ``setup``: run in a process of its own, given a minute (a hang is a failure)."""
    (tmp_path / "traced.py").write_text(_TRACED_GC)
    (tmp_path / "deep.py").write_text(_DEEP_USER.format(deep="+".join(["1"] * 2 * sys.getrecursionlimit())))
    (tmp_path / "driver.py").write_text(_DEEP_DRIVER.format(setup=setup))
    try:
        proc = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the trace call into a deeply nested source never returned")
    assert proc.returncode == 0, proc.stderr
    assert "finished" in proc.stdout and "nested too deeply to scan" in proc.stdout, proc.stdout
    return proc.stdout


def test_a_scan_that_runs_the_applications_gc_callback_which_traces_does_not_hang(tmp_path):
    """Scanning a source makes many objects, so the application's gc callbacks run during the
    scan; one that traces takes the provider's locks, which the call resolving its site holds.
    The program goes on (the scan is the calling thread's own)."""
    _run_deep_call(tmp_path, "gc.set_threshold(50)\ngc.callbacks.append(traced.on_gc)")


_SMALL_STACK_DRIVER = '''
import sys, threading, warnings
sys.path.insert(0, sys.argv[1])
warnings.simplefilter("ignore")
import traced, nested, shallow
traced.trace._use_writer(lambda h, fl, g, n, p: 0)
traced.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
threading.stack_size(128 * 1024)
for module in (shallow, nested):
    worker = threading.Thread(target=module.go, args=(1,))
    worker.start()
    worker.join()
print("in threads", [(d.site, d.count, d.reason) for d in traced.trace.stats(reset=True).sites])
nested.go(2)                # the main thread has room: the same site is read now
print("in main", [(d.site, d.count, d.reason) for d in traced.trace.stats().sites])
'''


def test_a_thread_with_a_small_stack_size_drops_a_call_it_has_no_room_to_read_and_does_not_crash(tmp_path):
    """The application made its threads with a small stack size (128 KiB). CPython's parser
    and compiler recurse on the C stack, so reading a source with 150 nested brackets in such a
    thread crashed the process (SIGSEGV). The call is dropped and reported instead, nothing is
    concluded for the file (the main thread reads it afterwards), and a plain source is still
    read in the small thread."""
    (tmp_path / "traced.py").write_text(_TRACED_GC)
    go = 'def go(n):\n    trace.info(trace.flags.GC, "value %d", n)\n'
    (tmp_path / "nested.py").write_text("from traced import trace\nDEEP = " + "(" * 150 + "1" + ")" * 150 + "\n" + go)
    (tmp_path / "shallow.py").write_text("from traced import trace\n" + go)
    (tmp_path / "driver.py").write_text(_SMALL_STACK_DRIVER)
    proc = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr}"
    in_threads, in_main = proc.stdout.splitlines()
    assert "shallow.py" not in in_threads
    assert "nested.py:" in in_threads and ", 1, " in in_threads
    assert "KiB of stack left" in in_threads and "threading.stack_size" in in_threads
    assert in_main == "in main []"


_SMALL_STACK_LOGGING_DRIVER = '''
import logging, sys, threading, warnings
sys.path.insert(0, sys.argv[1])
warnings.simplefilter("ignore")
import traced
from wpptrace.provider.logging_handler import WppHandler
traced.trace._use_writer(lambda h, fl, g, n, p: 0)
traced.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
handler = WppHandler(provider=traced.trace, flag=traced.trace.flags.GC)
logging.getLogger("app").addHandler(handler)
import logs
threading.stack_size(128 * 1024)
worker = threading.Thread(target=logs.go, args=(1,))
worker.start()
worker.join()
logs.go(2)
print("typed", handler.sent_typed, "formatted", handler.sent_formatted)
'''


def test_a_record_logged_from_a_thread_with_a_small_stack_goes_formatted_and_concludes_nothing(tmp_path):
    """A record logged from a 128 KiB thread in a deeply nested file is sent formatted (reading
    the file there would crash the process); the same line logged later from the main thread
    is read and sent typed."""
    (tmp_path / "traced.py").write_text(_TRACED_GC)
    (tmp_path / "logs.py").write_text("import logging\nDEEP = " + "(" * 150 + "1" + ")" * 150 + "\n"
                                      "def go(n):\n    logging.getLogger('app').warning('value %d', n)\n")
    (tmp_path / "driver.py").write_text(_SMALL_STACK_LOGGING_DRIVER)
    proc = subprocess.run([sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit status {proc.returncode}: {proc.stderr}"
    assert proc.stdout.split() == ["typed", "1", "formatted", "1"]


_STACK_BOUND_PROBE = '''
import ast, sys, threading
sys.path.insert(0, sys.argv[1])
from wpptrace.provider import tracing_sources
sources = {
    "brackets": "x = " + "(" * 199 + "1" + ")" * 199,
    "lists of negations": "x = " + "[-" * 199 + "1" + "]" * 199,
    "lambdas": "x = " + "lambda: " * 1500 + "1",
    "lambdas with parameters": "x = " + "lambda a, b: " * 600 + "1",
    "nots": "x = " + "not " * 900 + "1",
    "negations": "x = " + "-" * 900 + "1",
    "conditionals": "x = " + "1 if y else " * 900 + "1",
    "sums": "x = " + "+".join(["1"] * 900),
    "calls in brackets": "x = " + "(f(" * 99 + "1" + "))" * 99,
    "blocks": "".join(" " * i + "if x:\\n" for i in range(99)) + " " * 99 + "pass\\n",
    "empty brackets": "x = " + "(" * 150 + ")" * 150,
    "empty lists": "x = " + "[" * 199 + "]" * 199,
    "a chain of calls": "x = f" + "()" * 1000,
}
if sys.version_info < (3, 12):        # an f-string is one token, its expressions read recursively
    sources["brackets in an f-string"] = "x = f'{" + "(" * 120 + "1" + ")" * 120 + "}'"
    sources["negations in an f-string"] = "x = f'{" + "-" * 900 + "1}'"
    sources["nots in an f-string"] = "x = f'{" + "not " * 900 + "1}'"
for name, text in sources.items():
    need = tracing_sources._stack_need(text)
    assert need < tracing_sources._STACK_FOR_ANY_SOURCE, name
    threading.stack_size(max(need, 32 * 1024) + 4096 - max(need, 32 * 1024) % 4096)
    def read():
        try:
            compile(ast.parse(text), name, "exec")
        except (RecursionError, MemoryError, SyntaxError):
            pass
    worker = threading.Thread(target=read)
    worker.start()
    worker.join()
    print(name, need >> 10, flush=True)
print("done")
'''


def test_the_stack_a_source_is_estimated_to_need_is_enough_to_read_it(tmp_path):
    """The estimate the stack check uses is an upper bound: each deeply nested construct is
    parsed and compiled in a thread whose whole stack is only what the estimate says (a crash
    here means the estimate is too low for this interpreter)."""
    (tmp_path / "probe.py").write_text(_STACK_BOUND_PROBE)
    proc = subprocess.run([sys.executable, str(tmp_path / "probe.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"exit status {proc.returncode} after: {proc.stdout!r} {proc.stderr}"
    assert proc.stdout.splitlines()[-1] == "done"


class _Deadline(Exception):
    """What the application's SIGALRM handler raises."""


@contextlib.contextmanager
def deadline_handler():
    """The application's SIGALRM handler raises _Deadline."""
    def on_alarm(signum, frame):
        raise _Deadline("the application's deadline passed")
    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        yield
    finally:
        signal.signal(signal.SIGALRM, previous)


class _AlarmOnce:
    """A value whose conversion is interrupted once by SIGALRM (delivered at once by
    raise_signal); converting it again would succeed."""

    def __init__(self):
        self.alarmed = False

    def _once(self):
        if not self.alarmed:
            self.alarmed = True
            signal.raise_signal(signal.SIGALRM)

    def __str__(self):
        self._once()
        return "converted"

    def __int__(self):
        self._once()
        return 7


SIGNAL_APP = '''
    from wpptrace.provider.tracing import CustomType, Provider
    trace = Provider("Signalled", register=False, flags=("IO",),
                     types=[CustomType("ALARMED", "ItemLongLong", encode=int)])
    SITES = {
        "text": lambda v: trace.info(trace.flags.IO, "text %s", v),
        "int": lambda v: trace.info(trace.flags.IO, "int %d", v),
        "custom": lambda v: trace.info(trace.flags.IO, "custom %!ALARMED!", v),
    }
'''


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("site", ["text", "int", "custom"])
def test_what_the_applications_signal_handler_raises_in_a_conversion_reaches_it(tmp_path, path, site):
    """A signal arrives while a value converts (its __str__, __int__, a custom type's
    encoder): what the application's handler raises there is the application's (a deadline
    that must not be lost), not a value that does not convert; the call is neither written
    nor counted. The first call resolves the site, the second one runs the cached program."""
    app = make_app(tmp_path, SIGNAL_APP)
    sent = enable(app.trace, path)
    with deadline_handler():
        for attempt in range(2):
            value = _AlarmOnce()
            with pytest.raises(_Deadline):
                app.SITES[site](value)
            app.SITES[site](value)                       # converts now
    assert app.trace.stats().calls_dropped == 0
    if path == "python":
        assert len(sent) == 2


@pytest.mark.parametrize("path", PATHS)
def test_what_the_applications_signal_handler_raises_while_a_site_resolves_reaches_it(tmp_path, path):
    """The first call at a site reads and compiles its source: a signal handled meanwhile
    raises into the application, and the site resolves at the next call."""
    app = make_app(tmp_path, APP)
    trace = app.trace
    sent = enable(trace, path)
    reading = trace._sources.trace_sites
    alarms = [signal.SIGALRM]

    def interrupted(*args):
        if alarms:
            signal.raise_signal(alarms.pop())
        return reading(*args)
    trace._sources.trace_sites = interrupted
    with deadline_handler():
        with pytest.raises(_Deadline):
            app.go(1)
        app.go(2)
    assert trace.stats().calls_dropped == 0
    assert bool(sent) if path == "python" else bool(trace._sites)


class _AlarmingFlag:
    """A flag object whose ``&`` is interrupted once by SIGALRM (then it is an int's)."""

    def __init__(self, value: int):
        self.value, self.alarmed = value, False

    def __and__(self, other):
        if not self.alarmed:
            self.alarmed = True
            signal.raise_signal(signal.SIGALRM)
        return self.value & other

    __rand__ = __and__


def test_what_the_applications_signal_handler_raises_in_the_enable_test_reaches_it(tmp_path):
    """The Python level methods test ``flag & mask`` (and log()'s ``level & 0xFF``) first: a
    signal handled in a flag's or level's own ``__and__`` raises the application's exception
    through the call, not a flag taken for one that cannot be written."""
    app = _flag_and_level_app(tmp_path, "SignalledFlags")
    enable(app.trace, "python")
    with deadline_handler(), warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        with pytest.raises(_Deadline):
            app.flag(_AlarmingFlag(1))
        with pytest.raises(_Deadline):
            app.level(_AlarmingFlag(4))
    assert app.trace.stats().calls_dropped == 0


def _signal_logger(name: str):
    """A logger with a WppHandler of its own, enabled; its records go into the list returned."""
    from wpptrace.provider.logging_handler import WppHandler

    handler = WppHandler(provider=Provider(name, register=False))
    sent = enable(handler.provider, "python")
    logger = logging.getLogger(f"host_safety.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.handlers[:] = [handler]
    return logger, handler, sent


def test_what_the_applications_signal_handler_raises_in_a_logged_value_reaches_it(capsys):
    """As for a trace call: a signal handled while a record's value converts raises the
    application's exception through the logging call (not a "Logging error" report, not the
    record sent formatted instead); the next record of the site travels typed."""
    logger, handler, sent = _signal_logger("SignalledLogging")
    with deadline_handler():
        value = _AlarmOnce()
        with pytest.raises(_Deadline):
            logger.info("value %s", value)
        logger.info("value %s", value)
    assert (handler.sent_typed, handler.sent_formatted, len(sent)) == (1, 0, 1)
    assert "Logging error" not in capsys.readouterr().err


def test_what_the_applications_signal_handler_raises_while_a_logging_site_resolves_reaches_it(capsys):
    """The first record of a call site reads its source: a signal handled meanwhile raises
    into the application, and the site is not taken for one without a usable source (its
    records would all go formatted): the next record travels typed."""
    logger, handler, sent = _signal_logger("SignalledLoggingSite")
    sources = handler.provider._sources
    reading = sources.logging_sites
    alarms = [signal.SIGALRM]

    def interrupted(*args):
        if alarms:
            signal.raise_signal(alarms.pop())
        return reading(*args)
    sources.logging_sites = interrupted
    with deadline_handler():
        for attempt in range(2):
            try:
                logger.info("attempt %d", attempt)
            except _Deadline:
                assert attempt == 0
            else:
                assert attempt == 1
    assert (handler.sent_typed, handler.sent_formatted, len(sent)) == (1, 0, 1)
    assert "Logging error" not in capsys.readouterr().err


def _logged_at_depth(depth: int, logger, value):
    """Recurse ``depth`` frames, then log: the RecursionError the logging call raised, if any."""
    if depth:
        return _logged_at_depth(depth - 1, logger, value)
    try:
        logger.info("deep %s", value)
    except RecursionError as exc:
        return exc
    return None


def test_a_record_logged_near_the_recursion_limit_is_lost_and_counted_not_raised(capsys):
    """The first record of a logging call site makes the handler read its source: near the
    recursion limit that may find no room. The record is lost and counted (the provider's
    ``events_dropped``), nothing is raised through the handler or printed as a logging error,
    and the site is not taken for one without a usable source: its records still travel
    typed once there is room."""
    from wpptrace.provider.logging_handler import WppHandler

    value = _Text()
    logger = logging.getLogger(f"host_safety.{uuid.uuid4().hex}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    here, frame = 0, sys._getframe()
    while frame is not None:
        here, frame = here + 1, frame.f_back
    for depth in range(max(0, sys.getrecursionlimit() - here - 60), sys.getrecursionlimit()):
        handler = WppHandler(provider=Provider("DeepLogging", register=False))   # the site not read yet
        sent = enable(handler.provider, "python")
        handler.provider._trace_packed = lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0
        logger.handlers[:] = [handler]
        try:
            exc = _logged_at_depth(depth, logger, value)
        except RecursionError:
            break                                       # the recursion itself reached the limit
        mine = exc is not None and any(
            "logging_handler" in frame.filename for frame in traceback.extract_tb(exc.__traceback__))
        assert not mine, f"depth {depth}: {exc!r} raised through the handler"
        lost = handler.provider.stats().events_dropped
        assert handler.sent_typed + handler.sent_formatted + lost + (exc is not None) == 1
        assert lost == 0 or handler.provider.stats().last_error == 8
        typed = handler.sent_typed
        _logged_at_depth(0, logger, value)
        assert handler.sent_typed == typed + 1, f"depth {depth}: the site no longer travels typed"
    assert "Logging error" not in capsys.readouterr().err


def test_records_logged_from_a_source_too_deeply_nested_to_scan_go_formatted(tmp_path, monkeypatch):
    """The logging calls of a source nested too deeply to scan: the failure is kept (one
    scan), and the records travel as formatted text, as for any call without a site."""
    scans = _counting_scans(monkeypatch, "scan_logging_calls")
    app = make_app(tmp_path, f'''
        DEEP = {"+".join(["1"] * 2 * sys.getrecursionlimit())}
        def warn(logger, n):
            logger.warning("value %d", n)
        def info(logger, n):
            logger.info("info %d", n)
    ''')
    logger, handler, sent = _signal_logger("DeepSourceLogging")
    for n in range(5):
        app.warn(logger, n)
    app.info(logger, 5)
    assert len(scans) == 1
    assert (handler.sent_typed, handler.sent_formatted, len(sent)) == (0, 6, 6)
    assert handler.provider.stats().events_dropped == 0
    assert sent[0][1] == "value 0".encode("utf-16-le") + b"\0\0"


class _WatchedLock:
    """An RLock that tells when a thread other than its owner starts waiting for it."""

    def __init__(self, owner: threading.Thread, waiting: threading.Event) -> None:
        self._lock, self._owner, self._waiting = threading.RLock(), owner, waiting

    def __enter__(self):
        if threading.current_thread() is not self._owner:
            self._waiting.set()
        return self._lock.__enter__()

    def __exit__(self, *exc):
        return self._lock.__exit__(*exc)


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="the C methods keep a copy of the enable state")
def test_an_enable_and_a_disable_delivered_at_once_leave_one_state(tmp_path):
    """The core delivers enable callbacks in the thread that caused them (an EnableTrace of
    this process, the endpoint thread for other processes'), so an enable and a disable may
    run at once. The provider's state (the Python fields, the C methods' copy) must be one of
    them, not a mix. Here the enable stops before setting the C copy until the disable has
    either run or is waiting for the enable to finish: the C methods must not go on writing
    for an enable the Python side no longer shows."""
    app = make_app(tmp_path, APP)
    trace = app.trace
    inside, go = threading.Event(), threading.Event()
    trace._state_lock = _WatchedLock(threading.current_thread(), go)
    set_core_state = trace._set_core_state

    def held_core_state(handle, flags, level):
        if handle:
            inside.set()
            go.wait()
        set_core_state(handle, flags, level)
    trace._set_core_state = held_core_state

    def disable():
        inside.wait()
        trace._set_enable_state(0, 0, 0)
        go.set()
    other = threading.Thread(target=disable)
    other.start()
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    other.join()
    del trace._set_core_state
    enabled_in_python = trace.enabled(trace.flags.IO, 4)
    app.go(1)                                   # resolves (and writes) only if the C copy is enabled
    assert (enabled_in_python, bool(trace._sites)) == (False, False)


class _Vast:
    """A real number far past 64 bits whose int() is costly (as int() of Decimal('1e999999'),
    which makes a million digits, for minutes); its float() is cheap."""

    def __init__(self):
        self.made_int = False

    def __float__(self):
        return 1e300

    def __int__(self):
        self.made_int = True
        return 10**300


@pytest.mark.parametrize("path", PATHS)
def test_a_number_far_past_64_bits_is_dropped_without_making_its_integer(tmp_path, path):
    """``%d`` of a real number: one whose magnitude is far past any 64-bit integer does not fit,
    whatever its digits, so they are never made (int() of a vast Decimal would hold the call
    for minutes)."""
    app = make_app(tmp_path, '''
        from wpptrace.provider.tracing import Provider
        trace = Provider("VastNumbers", register=False)
        def go(value):
            trace.info(1, "value %d", value)
    ''')
    sent = enable(app.trace, path)
    value = _Vast()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        app.go(value)
    assert not value.made_int
    assert sent == [] and app.trace.stats().calls_dropped == 1
    assert "_Vast" in str(seen[0].message) and "does not fit a 64-bit integer" in str(seen[0].message)


@contextlib.contextmanager
def every_registration_taken():
    """The core's registration places all taken, as by an application that registered a
    thousand providers: RegisterTraceGuids fails with ERROR_NOT_ENOUGH_MEMORY."""
    handles = []
    try:
        while True:
            try:
                handles.append(api.RegisterTraceGuids(lambda *a: 0, None, uuid.uuid4()))
            except OSError as exc:
                assert exc.name == "ERROR_NOT_ENOUGH_MEMORY", exc
                break
            assert len(handles) <= 1 << 16
        yield
    finally:
        for handle in handles:
            api.UnregisterTraceGuids(handle)


def test_a_provider_the_core_cannot_register_is_made_and_reported_once(tmp_path, monkeypatch):
    """A module that makes a Provider at import must import even when the core refuses the
    registration: the provider is one no session can enable, its calls do nothing, it says
    why in stats() and warns once, pointing at the line that made it. Registering again
    later works once there is room; a strict provider raises instead."""
    monkeypatch.delenv("WPPTRACE_STRICT", raising=False)
    path = tmp_path / f"unregistered_{uuid.uuid4().hex[:10]}.py"
    path.write_text(textwrap.dedent('''\
        from wpptrace.provider.tracing import Provider
        trace = Provider("HostSafetyUnregistered", flags=("IO",))
        def go(n):
            trace.info(trace.flags.IO, "value %d", n)
    '''))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    app = importlib.util.module_from_spec(spec)
    with every_registration_taken():
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            spec.loader.exec_module(app)
            app.go(1)
            app.trace.register()                    # still no room: reported once
        trace = app.trace
        assert trace._registration is None
        (warning,) = seen
        assert warning.category is TraceWarning
        assert (warning.filename, warning.lineno) == (str(path), 2)
        # the cause is the per-process registration limit, not memory: said so
        limit = "no provider registration was available: a process may have at most 1024 registered at once"
        assert str(warning.message).startswith(
            f"HostSafetyUnregistered: not registered (RegisterTraceGuids failed: {limit} "
            f"(ERROR_NOT_ENOUGH_MEMORY)): ")
        assert trace.stats().registration_error == f"RegisterTraceGuids failed: {limit} (ERROR_NOT_ENOUGH_MEMORY)"
        with pytest.raises(OSError) as raised:
            Provider("HostSafetyStrict", strict=True)
        # one statement: Windows' text for the code, then which resource ran out
        assert str(raised.value) == ("ERROR_NOT_ENOUGH_MEMORY (8): Not enough memory resources are available "
                                     f"to process this command. RegisterTraceGuids: {limit}")
        monkeypatch.setenv("WPPTRACE_STRICT", "1")
        with pytest.raises(OSError, match=f"ERROR_NOT_ENOUGH_MEMORY .*RegisterTraceGuids: {limit}"):
            Provider("HostSafetyStrict")
    try:
        trace.register()
        assert trace._registration is not None and trace.stats().registration_error == ""
    finally:
        trace.unregister()


class _FlakyLoader:
    """A module's loader whose ``method`` fails once (``failure`` is raised, or SIGALRM is
    handled in it), then answers; the module's file is gone, so the loader is all there is."""

    def __init__(self, path: str, text: str, method: str, failure: str):
        self.path, self.text, self.method, self.failure = path, text, method, failure
        self.calls = 0

    def _maybe_fail(self, method: str):
        if method == self.method and not self.calls:
            self.calls += 1
            if self.failure == "signal":
                signal.raise_signal(signal.SIGALRM)
            raise MemoryError

    def get_filename(self, name):
        self._maybe_fail("get_filename")
        return self.path

    def get_source(self, name):
        self._maybe_fail("get_source")
        return self.text

    def get_data(self, path):
        self._maybe_fail("get_data")
        return self.text.encode("utf-8")


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("failure", ["signal", "memory"])
@pytest.mark.parametrize("method", ["get_filename", "get_source"])
def test_a_loader_failing_for_want_of_memory_or_by_the_applications_signal_handler_concludes_nothing(
        tmp_path, path, method, failure):
    """The first call at a site reads its source through the module's loader: a MemoryError
    there loses the call (counted), what the application's signal handler raises there reaches
    it, and neither makes the file one without a source for the rest of the run: the next
    call resolves the site and is written."""
    app = make_app(tmp_path, APP)
    source = pathlib.Path(app.__file__)
    app.__loader__ = loader = _FlakyLoader(str(source), source.read_text(), method, failure)
    source.unlink()
    trace = app.trace
    sent = enable(trace, path)
    with deadline_handler():
        if failure == "signal":
            with pytest.raises(_Deadline):
                app.go(1)
        else:
            app.go(1)
            assert (trace.stats().events_dropped, trace.stats().last_error) == (1, 8)
        assert loader.calls == 1
        app.go(2)
    assert trace.stats().calls_dropped == 0
    assert len(sent) == 1 if path == "python" else bool(trace._sites)


@pytest.mark.parametrize("failure", ["signal", "memory"])
def test_a_registry_read_failing_for_want_of_memory_or_by_the_signal_handler_is_read_again(tmp_path, failure):
    """The site registry is read once through the creator's loader: a MemoryError there, or
    what the application's signal handler raises there, is no conclusion that the registry is
    empty for the run; the next look reads it."""
    from wpptrace.provider.tracing_sites import scan_source
    scan = scan_source(textwrap.dedent(APP), str(tmp_path / "app.py"))
    registry = tracing_sources.registry_text([("app.py", "0" * 64, scan, [])])
    loader = _FlakyLoader("", registry, "get_data", failure)
    sources = tracing_sources.SiteSources(str(tmp_path), str(tmp_path / "archive"), None, loader)
    with deadline_handler():
        with pytest.raises(_Deadline if failure == "signal" else MemoryError):
            sources.registry()
    assert loader.calls == 1
    assert list(sources.registry()) == ["app.py"] and sources.registry_error is None


class _NoFiles(dict):
    def items(self):
        raise RuntimeError("entries cannot be listed")


@pytest.mark.parametrize("files, why", [
    (None, "AttributeError: module '{}' has no attribute 'FILES'"),
    (_NoFiles(), "RuntimeError: entries cannot be listed"),
], ids=["no-FILES", "failing-FILES"])
def test_a_registry_module_that_fails_in_any_way_is_tried_once(tmp_path, monkeypatch, files, why):
    """An imported registry module (a .pyc-only install) of this version but with no FILES, or
    whose FILES fails in a way of its own: the registry counts as empty for the run and
    registry_error says why; it is not tried again at every new call site."""
    name = f"host_safety_registry_{uuid.uuid4().hex[:10]}"
    module = type(sys)(name)
    module.VERSION = tracing_sources.REGISTRY_VERSION
    looked = []

    def lookup(attribute):
        looked.append(attribute)
        if files is None:
            raise AttributeError(f"module '{name}' has no attribute '{attribute}'")
        return files
    module.__getattr__ = lookup
    monkeypatch.setitem(sys.modules, name, module)
    sources = tracing_sources.SiteSources(str(tmp_path), str(tmp_path / "none"), name)
    assert sources.registry() == {} and sources.registry() == {}
    assert looked == ["FILES"]
    assert sources.registry_error == f"{name}: not a wpptrace site registry: {why.format(name)}"


def test_two_threads_registering_one_provider_at_once_make_one_registration(monkeypatch):
    """register() from two threads at once: the second waits for the first and finds the
    provider registered; it neither makes a second registration (whose handle nobody would
    unregister) nor touches the enable state the first one's callback set."""
    trace = Provider("HostSafetyRegisterTwice", register=False)
    entered, second_arrived = threading.Event(), threading.Event()
    real, calls, handles = api.RegisterTraceGuids, [], []

    def registering(*args):
        calls.append(args)
        if len(calls) > 1:
            second_arrived.set()
        else:
            entered.set()
            assert second_arrived.wait(20), "the second register() never came"
        handle = real(*args)
        handles.append(handle)
        return handle
    monkeypatch.setattr(api, "RegisterTraceGuids", registering)
    first = threading.Thread(target=trace.register)
    trace._registration_lock = _WatchedLock(first, second_arrived)
    second = threading.Thread(target=lambda: entered.wait(20) and trace.register())
    try:
        first.start()
        second.start()
        first.join()
        second.join()
        assert len(handles) == 1 and trace._registration == handles[0]
    finally:
        kept = trace._registration
        trace.unregister()
        for handle in handles:
            if handle != kept:
                api.UnregisterTraceGuids(handle)


def test_the_drop_and_send_counters_lose_no_count_under_threads(tmp_path):
    """Threads refused at once, some through the level methods and some through a logging
    handler (the C methods and the handler's Python code count into one events_dropped),
    switching as often as the interpreter lets them: every refusal and every record is counted.

    With the GIL today's counting cannot lose a count (each is one C increment made holding
    it, and the handler's run under logging's lock), so this cannot fail on CPython 3.11: it
    guards the counting against a rewrite that counts without the GIL (a C increment after
    the lock is let go around the write, or a build without the GIL). A few hundred calls a
    thread keep it cheap."""
    app = make_app(tmp_path, APP + "\nimport logging\nlog = logging.getLogger(__name__)\n"
                   "def logged(n):\n    log.info('value %d', n)\n")
    trace = app.trace
    from wpptrace.provider.logging_handler import WppHandler
    handler = WppHandler(provider=trace)
    app.log.addHandler(handler)
    app.log.propagate = False
    app.log.setLevel(logging.DEBUG)
    enable(trace, "c")      # a handle no session has: every write is refused and counted
    calls, threads = 500, 4
    app.go(0), app.logged(0)                     # both sites resolved before the threads start
    before = trace.stats().events_dropped
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        workers = [threading.Thread(target=lambda f=f: [f(n) for n in range(calls)])
                   for f in (app.go, app.logged) * (threads // 2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert trace.stats().events_dropped - before == calls * threads
    assert (handler.sent_typed, handler.sent_formatted) == (calls * threads // 2 + 1, 0)


_OTHER = '''
from {name} import trace
def other(n):
    trace.info(trace.flags.IO, "other %d", n)
'''


@contextlib.contextmanager
def _resolving_held(tmp_path, monkeypatch, app):
    """Another thread resolving a call site, held in the read of its source (a slow file
    system) until the block ends: it holds none of the provider's locks there, and the calls
    of other threads must not wait for it."""
    other_path = tmp_path / f"other_{uuid.uuid4().hex[:8]}.py"
    other_path.write_text(_OTHER.format(name=app.__name__))
    spec = importlib.util.spec_from_file_location(other_path.stem, other_path)
    other = importlib.util.module_from_spec(spec)
    sys.modules[app.__name__] = app
    try:
        spec.loader.exec_module(other)
    finally:
        del sys.modules[app.__name__]
    reading, release = threading.Event(), threading.Event()
    read_text = tracing_sources._read_text

    def slow_read(path, module_globals):
        if path == str(other_path):
            reading.set()
            release.wait(30)
        return read_text(path, module_globals)
    monkeypatch.setattr(tracing_sources, "_read_text", slow_read)
    worker = threading.Thread(target=other.other, args=(1,))
    worker.start()
    try:
        assert reading.wait(10), "the other thread never read its source"
        yield
    finally:
        release.set()
        worker.join(30)
    assert not worker.is_alive()


def _warmed(app):
    """The site of app.go resolved, as the calls of specialized code find it too (3.11's C
    method calls may be made at another instruction of the call once the code is specialized)."""
    for n in range(100):
        app.go(n)


def _dropping(calls):
    """Start threads making these calls; the threads that have not returned after a generous
    while (a drop that waits for the held resolving never returns before it is released)."""
    workers = [threading.Thread(target=call) for call in calls]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(10)
    return [worker for worker in workers if worker.is_alive()]


@pytest.mark.parametrize("path", PATHS)
def test_a_drop_does_not_wait_for_a_call_site_another_thread_is_resolving(tmp_path, monkeypatch, path):
    """A call that cannot be written (a value that does not fit) is dropped, counted and
    reported at once, while another thread is still reading the source of another call site."""
    app = make_app(tmp_path, APP)
    enable(app.trace, path)
    _warmed(app)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with _resolving_held(tmp_path, monkeypatch, app):
            waiting = _dropping([lambda: app.go("not a number")])
            assert not waiting, "the drop waited for the other thread's resolving"
            stats = app.trace.stats()
            assert stats.calls_dropped == 1
            assert [site.count for site in stats.sites] == [1]
    dropped = [w for w in said if w.category is TraceWarning]
    assert len(dropped) == 1 and "trace call dropped" in str(dropped[0].message)


@pytest.mark.parametrize("path", PATHS)
def test_threads_dropping_at_one_site_at_once_report_it_once_and_count_every_drop(tmp_path, monkeypatch,
                                                                                 path):
    """Threads dropping at one site at once, switching as often as the interpreter lets them
    (while another thread holds a resolving): every drop counted, the site reported once;
    stats(reset=True) gives them and starts again, the site not reported again."""
    app = make_app(tmp_path, APP)
    enable(app.trace, path)
    _warmed(app)
    calls, threads = 2000, 4
    interval = sys.getswitchinterval()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        with _resolving_held(tmp_path, monkeypatch, app):
            sys.setswitchinterval(1e-6)
            try:
                waiting = _dropping([lambda: [app.go("x") for _ in range(calls)]] * threads)
            finally:
                sys.setswitchinterval(interval)
            assert not waiting, "the drops waited for the other thread's resolving"
            stats = app.trace.stats(reset=True)
            assert stats.calls_dropped == calls * threads
            assert [site.count for site in stats.sites] == [calls * threads]
            app.go("x")
            stats = app.trace.stats()
            assert (stats.calls_dropped, len(stats.sites)) == (1, 1)
    assert len([w for w in said if w.category is TraceWarning]) == 1


def _written(trace, sent, path, before):
    """The records written since ``before`` (events_dropped then): the Python methods' list;
    the C methods write to a handle no session has, each write refused and counted."""
    return len(sent) if path == "python" else trace.stats().events_dropped - before


@pytest.mark.parametrize("path", PATHS)
def test_a_first_call_does_not_wait_for_another_thread_reading_another_source(tmp_path, monkeypatch, path):
    """The first call at a site of one file resolves, and is written, while another thread is
    still reading the source of another file (a slow file system): it does not wait for it."""
    app = make_app(tmp_path, APP)
    sent = enable(app.trace, path)
    before = app.trace.stats().events_dropped
    with _resolving_held(tmp_path, monkeypatch, app):
        waiting = _dropping([lambda: app.go(5)])
        assert not waiting, "the first call waited for the other thread's read of its source"
        assert _written(app.trace, sent, path, before) == 1
        assert app.trace.stats().calls_dropped == 0


@pytest.mark.parametrize("path", PATHS)
def test_a_logged_record_does_not_wait_for_another_thread_reading_another_source(tmp_path, monkeypatch,
                                                                                  path):
    """The logging handler's first record from a file is sent typed (its logging calls read)
    while another thread is still reading the source of another file."""
    app = make_app(tmp_path, APP + "\nimport logging\nlog = logging.getLogger(__name__)\n"
                   "def logged(n):\n    log.info('value %d', n)\n")
    from wpptrace.provider.logging_handler import WppHandler
    handler = WppHandler(provider=app.trace)
    app.log.addHandler(handler)
    app.log.propagate = False
    app.log.setLevel(logging.DEBUG)
    sent = enable(app.trace, path)
    before = app.trace.stats().events_dropped
    with _resolving_held(tmp_path, monkeypatch, app):
        waiting = _dropping([lambda: app.logged(5)])
        assert not waiting, "the record waited for the other thread's read of its source"
        assert (handler.sent_typed, handler.sent_formatted) == (1, 0)
        assert _written(app.trace, sent, path, before) == 1


@pytest.mark.parametrize("path", PATHS)
def test_threads_resolving_one_new_site_at_once_are_all_written(tmp_path, monkeypatch, path):
    """Two threads make the first call at one site at once: both read its source at the same
    time (neither waits for the other's read), both records are written, and the site is
    resolved once (one compiled file, one cached site)."""
    app = make_app(tmp_path, APP)
    trace = app.trace
    sent = enable(trace, path)
    before = trace.stats().events_dropped
    app_path = os.path.abspath(app.__file__)
    readers, both = [], threading.Event()
    read_text = tracing_sources._read_text

    def slow_read(path_read, module_globals):
        if path_read == app_path:
            readers.append(threading.get_ident())
            if len(readers) >= 2:
                both.set()
            both.wait(10)
        return read_text(path_read, module_globals)
    monkeypatch.setattr(tracing_sources, "_read_text", slow_read)
    waiting = _dropping([lambda: app.go(1), lambda: app.go(2)])
    assert not waiting
    assert both.is_set(), "the second call waited for the first one's read"
    assert _written(trace, sent, path, before) == 2
    if path == "python":
        assert len({payload for _number, payload in sent}) == 2      # go(1) and go(2), one each
    stats = trace.stats()
    assert (stats.calls_dropped, len(trace._files), len(trace._sources.files())) == (0, 1, 1)
    assert [len(sites) for _code, sites in trace._sites.values()] == [1]


@pytest.mark.parametrize("path", PATHS)
def test_a_call_after_its_session_stopped_before_the_disable_arrived_is_counted(tmp_path, path):
    """The session that enabled the provider stopped (in another process) and its disable
    callback has not arrived: the provider still holds the stopped session's handle. A call
    then is written to no session: counted in events_dropped with last_error
    ERROR_INVALID_HANDLE (6), as documented, never raised."""
    from wpptrace.provider import tracing
    app = make_app(tmp_path, APP)
    props = api.EVENT_TRACE_PROPERTIES(LogFileMode=1, LogFileName=str(tmp_path / "stopped.etl"))
    handle = api.StartTrace(f"stopped-{uuid.uuid4().hex[:12]}", props)
    api.ControlTrace(handle, None, None, 1)  # EVENT_TRACE_CONTROL_STOP
    if path == "python":
        app.trace._use_writer(tracing._trace_packed_raw)
    app.trace._set_enable_state(handle, 0xFFFFFFFF, 5)    # as before the disable callback
    app.go(1)
    app.go(2)
    stats = app.trace.stats()
    assert (stats.events_dropped, stats.last_error, stats.calls_dropped) == (2, 6, 0)


@pytest.mark.parametrize("path", PATHS)
def test_a_forked_childs_counts_start_at_zero(tmp_path, path):
    """The parent dropped calls (a flag that is no int) and had events refused (the Python
    methods' writer refuses them; the C ones write to a handle no session has), then forks: the
    child's stats() count the child's calls only. It reported the parent's, so that adding up
    the processes' counts counted each drop twice."""
    app = make_app(tmp_path, APP + '''
def bad():
    trace.info("not a flag", "value %d", 1)
''')
    trace = app.trace
    if path == "python":
        trace._use_writer(lambda *_args: 8)
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        for i in range(5):
            app.go(i)
            app.bad()
    before = trace.stats()
    assert before.events_dropped == 5 and before.calls_dropped == 5 and before.last_error != 0
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            s = trace.stats()
            os.write(write, repr((s.calls_dropped, s.events_dropped, s.last_error, s.sites)).encode())
        finally:
            os._exit(0)
    os.close(write)
    assert wait_child(pid, "reading its counts") == 0
    with os.fdopen(read) as f:
        got = f.read()
    assert got == repr((0, 0, 0, ()))
    assert trace.stats() == before                   # the parent's stay the parent's
