"""Call sites without their source files: a .pyc-only install, a zipapp and a module edited after
import each log and decode correctly (site registry from ``tmf gen --module``, sources read
through the module's loader, running code compared with the file before it is trusted)."""
from __future__ import annotations

import compileall
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import zipapp

import pytest

INIT = textwrap.dedent("""
    from wpptrace.provider.tracing import Provider
    trace = Provider("ShopTrace", guid="2b6f9a10-3c4d-4e5f-8a9b-0c1d2e3f4a5b", flags=("ORDERS", "LOG"))
""")

ORDERS = textwrap.dedent("""
    import logging
    from wpptrace.provider.logging_handler import WppHandler
    from . import trace

    log = logging.getLogger("shop")
    log.addHandler(WppHandler(provider=trace, flag=trace.flags.LOG))
    log.setLevel(logging.INFO)
    ORDERS = trace.flags.ORDERS


    def place(order_id, item):
        trace.info(ORDERS, "placing order %d for %s", order_id, item)
        log.info("order %d logged", order_id)


    def ship(order_id):
        trace.warning(ORDERS, "shipping %d", order_id)
""")

DRIVER = textwrap.dedent("""
    import os, sys, uuid, warnings
    warnings.simplefilter("error")          # a dropped call would fail the run
    from wpptrace.provider import api
    import shop, shop.orders
    hook = os.environ.get("EDIT_AFTER_IMPORT")
    if hook:
        path = shop.orders.__file__
        text = open(path).read()
        # three lines more at the top, a new trace call before the old ones, a changed format
        text = text.replace("import logging", "import logging\\n\\n\\n", 1)
        text = text.replace("def place(order_id, item):",
                            "def early():\\n    trace.info(ORDERS, 'new call %d', 1)\\n\\n\\ndef place(order_id, item):")
        text = text.replace("shipping %d", "shipping order %d")
        open(path, "w").write(text)
    props = api.EVENT_TRACE_PROPERTIES(LogFileMode=1, LogFileName=sys.argv[1])
    session = api.StartTrace("deploy-" + uuid.uuid4().hex[:8], props)
    api.EnableTrace(True, 0xFFFFFFFF, 5, shop.trace.guid, session)
    shop.orders.place(1, "caf\\u00e9")
    shop.orders.ship(1)
    shop.orders.place(2, "tea")
    api.ControlTrace(session, None, None, 1)
    stats = shop.trace.stats()
    assert stats.calls_dropped == 0, stats
    if len(sys.argv) > 2:
        shop.trace.write_tmf(sys.argv[2])
        shop.orders.log.handlers[0].write_tmf(sys.argv[2])
""")

EXPECTED = ["placing order 1 for caf\u00e9", "order 1 logged", "shipping 1", "placing order 2 for tea",
            "order 2 logged"]


def make_package(root: pathlib.Path) -> pathlib.Path:
    pkg = root / "shop"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(INIT)
    (pkg / "orders.py").write_text(ORDERS)
    return pkg


def run(args: list[str], *, path: pathlib.Path, env: dict | None = None, cwd: pathlib.Path | None = None):
    environment = dict(os.environ, PYTHONPATH=str(path), PYTHONDONTWRITEBYTECODE="1", **(env or {}))
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=environment, cwd=cwd)


def gen(tmp_path: pathlib.Path, src_root: pathlib.Path) -> pathlib.Path:
    tmf = tmp_path / "tmf"
    proc = run(["-m", "wpptrace", "tmf", "gen", "--module", "shop", "-o", str(tmf)], path=src_root)
    assert proc.returncode == 0, proc.stderr
    assert (src_root / "shop" / "_wpptrace_sites.py").exists()
    return tmf


def test_gen_by_module_name_scans_the_package_without_running_it(tmp_path):
    src = tmp_path / "src"
    make_package(src)
    (src / "shop" / "__init__.py").write_text(INIT + "\nraise SystemExit('imported!')\n")
    tmf = gen(tmp_path, src)
    names = sorted(p.name for p in tmf.iterdir())
    # orders.py (trace calls), its logging calls, the catch-all messages, .tmc and .mof
    assert len(names) == 5 and "2b6f9a10-3c4d-4e5f-8a9b-0c1d2e3f4a5b.tmc" in names
    proc = run(["-m", "wpptrace", "tmf", "gen", "--module", "no_such_shop", "-o", str(tmf)], path=src)
    assert proc.returncode == 2 and "no_such_shop: no such module" in proc.stderr


def test_pyc_only_install(tmp_path, pp):
    src = tmp_path / "src"
    make_package(src)
    tmf = gen(tmp_path, src)
    site = tmp_path / "site"
    shutil.copytree(src / "shop", site / "shop")
    # as a build would: legacy .pyc beside the (removed) sources, compiled under another path
    assert compileall.compile_dir(str(site / "shop"), legacy=True, ddir="/build/src/shop", quiet=1)
    for py in (site / "shop").glob("*.py"):
        py.unlink()
    assert sorted(p.name for p in (site / "shop").iterdir()) == [
        "__init__.pyc", "_wpptrace_sites.pyc", "orders.pyc"]
    etl = tmp_path / "pyc.etl"
    proc = run(["-c", DRIVER, str(etl), str(tmp_path / "runtime-tmf")], path=site)
    assert proc.returncode == 0, proc.stderr
    assert pp.decode_lines(etl, tmf, tmp_path) == EXPECTED
    # Without any source, the TMF the running app writes (from the registry) is tmf gen's.
    runtime = {p.name: p.read_bytes() for p in (tmp_path / "runtime-tmf").iterdir()}
    assert runtime == {p.name: p.read_bytes() for p in tmf.iterdir()}


def test_zipapp(tmp_path, pp):
    src = tmp_path / "src"
    make_package(src)
    tmf = gen(tmp_path, src)
    (src / "shop" / "_wpptrace_sites.py").unlink()  # the sources are in the archive: read through its loader
    (src / "__main__.py").write_text(DRIVER)
    app = tmp_path / "shop.pyz"
    zipapp.create_archive(src, app)
    etl = tmp_path / "zip.etl"
    proc = run([str(app), str(etl), str(tmp_path / "runtime-tmf")], path=tmp_path / "empty")
    assert proc.returncode == 0, proc.stderr
    assert pp.decode_lines(etl, tmf, tmp_path) == EXPECTED
    # The TMF the running app writes from inside the archive is tmf gen's, byte for byte.
    runtime = {p.name: p.read_bytes() for p in (tmp_path / "runtime-tmf").iterdir()}
    assert runtime == {p.name: p.read_bytes() for p in tmf.iterdir()}


def test_edited_after_import_uses_the_registry(tmp_path, pp):
    src = tmp_path / "src"
    make_package(src)
    tmf = gen(tmp_path, src)
    etl = tmp_path / "edited.etl"
    proc = run(["-c", DRIVER, str(etl)], path=src, env={"EDIT_AFTER_IMPORT": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "new call" in (src / "shop" / "orders.py").read_text()   # the file did change
    assert pp.decode_lines(etl, tmf, tmp_path) == EXPECTED


def test_edited_after_import_without_registry_is_dropped_not_misread(tmp_path, pp):
    src = tmp_path / "src"
    make_package(src)
    etl = tmp_path / "edited.etl"
    proc = run(["-c", DRIVER.replace('warnings.simplefilter("error")', 'warnings.simplefilter("default")')
                .replace("assert stats.calls_dropped == 0, stats", "print('dropped', stats.calls_dropped)"),
                str(etl)], path=src, env={"EDIT_AFTER_IMPORT": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "dropped 3" in proc.stdout
    assert proc.stderr.count("TraceWarning") == 2   # place and ship: one report per call site
    assert "the file changed after it was imported" in proc.stderr
    # The logging calls went out as formatted text (the handler never loses a record).
    tmf = tmp_path / "tmf"
    assert run(["-m", "wpptrace", "tmf", "gen", str(src / "shop"), "-o", str(tmf), "--no-registry"],
               path=src).returncode == 0
    assert pp.decode_lines(etl, tmf, tmp_path) == ["order 1 logged", "order 2 logged"]


@pytest.mark.parametrize("edit", ["same bytes", "changed"])
def test_unchanged_source_and_registry_agree(tmp_path, pp, edit):
    """The registry is used when the source is gone or is the very text it was made from; a
    source edited before the program started wins over a stale registry."""
    src = tmp_path / "src"
    make_package(src)
    gen(tmp_path, src)
    if edit == "changed":
        orders = src / "shop" / "orders.py"
        orders.write_text(orders.read_text().replace("shipping %d", "shipping #%d"))
    tmf = tmp_path / "tmf-now"
    etl = tmp_path / "run.etl"
    proc = run(["-c", DRIVER, str(etl), str(tmf)], path=src)
    assert proc.returncode == 0, proc.stderr
    want = [line.replace("shipping 1", "shipping #1") if edit == "changed" else line for line in EXPECTED]
    assert pp.decode_lines(etl, tmf, tmp_path) == want


def test_a_registry_whose_import_fails_is_tried_once(tmp_path):
    """In a .pyc-only install the registry is imported. One whose import fails (its code
    raises) is no registry: tried once and remembered, not imported again at every new
    call site; the call sites whose source is there still resolve from it, and one without
    source says why it cannot be identified."""
    import importlib
    import logging
    import py_compile
    import uuid
    import warnings

    from wpptrace.provider.tracing import TraceWarning

    name = f"shop_{uuid.uuid4().hex[:10]}"
    pkg = tmp_path / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text(INIT.replace("ShopTrace", "ShopBrokenRegistry"))
    (pkg / "orders.py").write_text(ORDERS.replace('getLogger("shop")', f'getLogger("{name}")'))
    runs = tmp_path / "registry-runs"
    registry = pkg / "_wpptrace_sites.py"
    registry.write_text(f"open({str(runs)!r}, 'a').write('x')\nraise RuntimeError('half installed')\n")
    py_compile.compile(str(registry), cfile=str(pkg / "_wpptrace_sites.pyc"), doraise=True)
    registry.unlink()
    (pkg / "gone.py").write_text("from . import trace\n\ndef go():\n    trace.info(trace.flags.ORDERS, 'gone %d', 1)\n")
    py_compile.compile(str(pkg / "gone.py"), cfile=str(pkg / "gone.pyc"), doraise=True)
    (pkg / "gone.py").unlink()
    sys.path.insert(0, str(tmp_path))
    try:
        shop = importlib.import_module(name)
        orders = importlib.import_module(f"{name}.orders")
        gone = importlib.import_module(f"{name}.gone")
        sent = []
        shop.trace._use_writer(lambda h, fl, g, n, p: sent.append(n) or 0)
        shop.trace._set_enable_state(0x1234, 0xFFFFFFFF, 5)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            orders.place(1, "tea")
            orders.ship(1)
            gone.go()
            gone.go()
        assert runs.read_text() == "x"
        assert len(sent) == 3           # place: a trace call and a logged record; ship: a trace call
        (warning,) = [w for w in seen if w.category is TraceWarning]
        assert ("its source is not available and the site registry cannot be read: "
                f"{name}._wpptrace_sites: importing it failed: RuntimeError: half installed"
                in str(warning.message)), warning.message
        stats = shop.trace.stats()
        assert stats.calls_dropped == 2 and [s.site.split(":")[0] for s in stats.sites] == ["gone.py"]
    finally:
        sys.path.remove(str(tmp_path))
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        if name in sys.modules:
            sys.modules[name].trace.unregister()
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def test_a_registry_written_before_log_sites_had_trace_levels_is_refused(tmp_path, pp):
    """A registry of an older version (its log() sites' level_text was the level's source text,
    "logging.WARNING", where it is now the TRACE_LEVEL_* name) is refused, and the sources are
    scanned instead: the TMF the running app writes says LEVEL=TRACE_LEVEL_WARNING, as tmf gen's."""
    from wpptrace.provider.tracing_sources import REGISTRY_VERSION

    src = tmp_path / "src"
    orders = make_package(src) / "orders.py"
    orders.write_text(ORDERS + "\n\ndef late(order_id):\n    log.log(logging.WARNING, 'order %d late', order_id)\n")
    tmf = gen(tmp_path, src)
    registry = src / "shop" / "_wpptrace_sites.py"
    text = registry.read_text()
    assert "'TRACE_LEVEL_WARNING', 'order %d late'" in text
    registry.write_text(text.replace(f"VERSION = {REGISTRY_VERSION}\n", "VERSION = 1\n")
                        .replace("'TRACE_LEVEL_WARNING', 'order %d late'", "'logging.WARNING', 'order %d late'"))
    etl, runtime = tmp_path / "old.etl", tmp_path / "runtime-tmf"
    driver = DRIVER.replace("shop.orders.place(2, \"tea\")", "shop.orders.place(2, \"tea\")\nshop.orders.late(3)")
    proc = run(["-c", driver, str(etl), str(runtime)], path=src)
    assert proc.returncode == 0, proc.stderr
    assert pp.decode_lines(etl, tmf, tmp_path) == [*EXPECTED, "order 3 late"]
    written = {p.name: p.read_text() for p in runtime.iterdir()}
    assert written == {p.name: p.read_text() for p in tmf.iterdir()}
    assert "LEVEL=TRACE_LEVEL_WARNING" in "".join(written.values())
    assert "logging.WARNING" not in "".join(written.values())
