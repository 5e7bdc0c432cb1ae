"""A provider's call-site cache keeps no code object alive: code compiled again from the same
file (importlib.reload, an autoreloader, a plugin system exec'ing a file's source) lets the old
code objects go, and the cache holds the live code's sites only. It held every code object that
made an enabled call for the life of the process, the application's memory growing with each
reload."""
from __future__ import annotations

import gc
import importlib
import sys
import uuid
import weakref

import pytest

from wpptrace.provider import fastpath
from wpptrace.provider.tracing import Provider

HANDLER = """
def handler(trace, flag, i):
    trace.info(flag, "request %d", i)
"""
RELOADS = 40


def reload_and_call(tmp_path, trace, name: str) -> tuple[list, object]:
    """The module reloaded RELOADS times, its handler called after each: weak references to each
    handler's code object but the last, and the last module."""
    (tmp_path / f"{name}.py").write_text(HANDLER)
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module(name)
        old = []
        for i in range(RELOADS):
            old.append(weakref.ref(module.handler.__code__))
            module = importlib.reload(module)
            module.handler(trace, trace.flags.IO, i)
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)
    gc.collect()
    return old, module


def test_reloaded_code_is_not_kept_by_the_python_methods(tmp_path):
    sent = []
    trace = Provider("ReloadPy", guid=uuid.uuid4(), flags=("IO",), register=False)
    trace._use_writer(lambda h, fl, g, n, p: sent.append((n, bytes(p))) or 0)
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
    old, module = reload_and_call(tmp_path, trace, "site_cache_reload_py")
    assert [ref() for ref in old] == [None] * RELOADS
    assert len(trace._sites) == 1                      # the live handler's
    assert [p for _n, p in sent] == [i.to_bytes(8, "little", signed=True) for i in range(RELOADS)]
    assert len({n for n, _p in sent}) == 1              # one site, whichever code object made it


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")
def test_reloaded_code_is_not_kept_by_the_c_methods(tmp_path, pp):
    trace = Provider("ReloadC", guid=uuid.uuid4(), flags=("IO",), register=False)
    assert type(trace.info).__name__ == "builtin_function_or_method"
    etl = tmp_path / "reload.etl"
    with pp.etl_session(etl) as session:
        trace.register()
        try:
            from wpptrace.provider import api
            api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
            old, module = reload_and_call(tmp_path, trace, "site_cache_reload_c")
            assert [ref() for ref in old] == [None] * RELOADS
            assert len(trace._sites) == 1
            # the C cache forgot the freed code objects: the live one's calls still write its site
            module.handler(trace, trace.flags.IO, RELOADS)
        finally:
            trace.unregister()
    got = pp.message_payloads(etl)
    assert [p for _n, p in got] == [i.to_bytes(8, "little", signed=True) for i in range(RELOADS + 1)]
    assert len({n for n, _p in got}) == 1


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")
def test_the_c_cache_finds_every_live_site_after_freed_ones_are_forgotten(tmp_path, pp):
    """Many code objects, half of them freed between calls: the entries left (moved as freed
    ones are taken out of the table) are still found by the C methods, and write their own
    sites. (A live entry the removal lost would still write its site, through the Python
    side: what shows it lost is that its call reached ``_trace``.)"""
    from wpptrace.provider import api
    trace = Provider("ReloadMany", guid=uuid.uuid4(), flags=("IO",), register=False)
    slow: list[int] = []                      # the calls the C methods handed to Python
    python_trace = trace._trace

    def counted_trace(*args):
        slow.append(args[4][0])
        return python_trace(*args)
    trace._trace = counted_trace
    source = tmp_path / "many.py"
    source.write_text("".join(f"def f{k}(trace, flag, i):\n    trace.info(flag, 'f{k} %d', i)\n" for k in range(120)))
    namespace: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)   # noqa: S102 - the module code goes
    functions = {k: namespace.pop(f"f{k}") for k in range(120)}
    etl = tmp_path / "many.etl"
    with pp.etl_session(etl) as session:
        trace.register()
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, session)
            for k in sorted(functions):
                functions[k](trace, trace.flags.IO, k)
            assert slow == list(range(120))       # each site resolved once, in Python
            for k in range(0, 120, 2):
                del functions[k]
            gc.collect()
            assert len(trace._sites) == 60
            for k in sorted(functions):
                functions[k](trace, trace.flags.IO, 1000 + k)
            assert slow == list(range(120))       # every live call found in the C cache
        finally:
            trace.unregister()
    got = pp.message_payloads(etl)
    assert [int.from_bytes(p, "little") for _n, p in got] == list(range(120)) + [1000 + k for k in range(1, 120, 2)]
    numbers = [n for n, _p in got]
    assert numbers[120:] == numbers[1:120:2]


@pytest.mark.skipif(not fastpath.AVAILABLE, reason="wpptrace._fastpath is not built for this interpreter")
def test_forgetting_freed_code_costs_in_proportion_to_its_entries(tmp_path):
    """Code objects freed in bulk (a plugin namespace cleared, a module dropped) are forgotten
    inside the application, in its GC: each by its own entries, found from their hash. A scan of
    the whole table for each one cost (freed code objects) x (table size)."""
    trace = Provider("ForgetCost", guid=uuid.uuid4(), flags=("IO",), register=False)
    trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)   # no session: calls are counted lost, sites cached
    functions = 400
    source = tmp_path / "plugin.py"
    # every other function makes two calls: a code object with two entries goes with both
    source.write_text("".join(f"def f{k}(trace, flag, i):\n    trace.info(flag, 'f{k} %d', i)\n"
                              + (f"    trace.info(flag, 'f{k} again %d', i)\n" if k % 2 else "")
                              for k in range(functions)))
    namespace: dict = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)   # noqa: S102 - the module code goes
    for k in range(functions):
        namespace[f"f{k}"](trace, trace.flags.IO, k)
    entries = functions + functions // 2
    assert trace._cache_entries == entries
    visits = trace._forget_visits
    namespace.clear()
    gc.collect()
    assert trace._sites == {}
    assert trace._cache_entries == 0
    # the table has room for at least twice its entries; a scan per code object looked at all of it
    assert trace._forget_visits - visits < 8 * entries
