"""``wpptrace tmf gen``: TMF files the project's reader accepts, equal to the running provider's,
deterministic across runs, roots and machines (message GUID per file, numbers per call site)."""
from __future__ import annotations

import pathlib
import shutil
import sys
import uuid

import pytest

from wpptrace.cli import main
from wpptrace.provider import tmfgen
from wpptrace.provider.tracing_sites import etw_name_guid, message_guid, scan_source
from wpptrace.tmf import parse_text
from wpptrace.tmf.loader import parse_tmc

APP = '''
from wpptrace.provider.tracing import Provider
trace = Provider("GenApp", guid="0f3c2b1a-1111-4222-8333-944455556666", flags=("IO", "NET"), register=False)
IO, NET = trace.flags.IO, trace.flags.NET

class Reader:
    def read(self, n, path):
        trace.info(IO, "read %d bytes from %s", n, path); trace.verbose(IO, "second on line %d", 2)
        def inner():
            trace.error(NET, "inner %!STATUS!",
                        0xC0000001)
        return inner

trace.warning(IO | NET, 'quote "%s" and 100%%', "x")
'''


def _write_app(directory: pathlib.Path, name: str = "genapp.py") -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(APP, encoding="utf-8")
    return path


def test_gen_writes_tracepdb_layout_that_the_tmf_reader_parses(tmp_path: pathlib.Path) -> None:
    src = _write_app(tmp_path / "app")
    out = tmp_path / "tmf"
    assert main(["tmf", "gen", str(src), "-o", str(out)]) == 0
    guid = message_guid(uuid.UUID("0f3c2b1a-1111-4222-8333-944455556666"), "genapp.py")
    text = (out / f"{guid}.tmf").read_text(encoding="utf-8")
    assert text == (
        "// PDB:  genapp.py\n"
        "// PDB:  Last Updated :1970-01-01:00:00:00:000 (UTC) [wpptrace]\n"
        f"{guid} GenApp // SRC=genapp.py MJ= MN=\n"
        '#typev genapp_py8 10 "%0read %10!I64d! bytes from %11!s!" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=IO FUNC=Reader.read\n'
        "{\nn, ItemLongLong -- 10\npath, ItemWString -- 11\n}\n"
        '#typev genapp_py8 11 "%0second on line %10!I64d!" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=IO FUNC=Reader.read\n'
        "{\n2, ItemLongLong -- 10\n}\n"
        '#typev genapp_py10 12 "%0inner %10!s!" //   LEVEL=TRACE_LEVEL_ERROR FLAGS=NET FUNC=Reader.read.<locals>.inner\n'
        "{\n0xC0000001, ItemNTSTATUS -- 10\n}\n"
        '#typev genapp_py14 13 "%0quote "%10!s!" and 100%%" //   LEVEL=TRACE_LEVEL_WARNING FLAGS=IO|NET FUNC=<module>\n'
        '{\n"x", ItemWString -- 10\n}\n')
    tmfset = parse_text(text, path="gen.tmf", tolerant=False)
    messages = list(tmfset.messages())
    assert [m.number for m in messages] == [10, 11, 12, 13]
    assert messages[3].format == '%0quote "%10!s!" and 100%%'
    assert messages[2].args[0].item == "ItemNTSTATUS" and messages[2].func == "Reader.read.<locals>.inner"
    controls = parse_tmc((out / "0f3c2b1a-1111-4222-8333-944455556666.tmc").read_text(), path="x.tmc")
    assert [(c.guid, c.name, c.flags) for c in controls] == [
        (uuid.UUID("0f3c2b1a-1111-4222-8333-944455556666"), "GenApp", ("IO", "NET"))]
    mof = (out / "GenApp.mof").read_text()
    assert 'guid("{0f3c2b1a-1111-4222-8333-944455556666}")' in mof and '"0x00000002"' in mof


def test_runtime_write_tmf_equals_gen_byte_for_byte(pp, tmp_path: pathlib.Path) -> None:
    src = _write_app(tmp_path / "app", "genapp_rt.py")
    module = pp.load_module("pyprovider_genapp_rt", src)
    module.Reader().read(1, "x")  # sites are known once their file is seen; no session needed
    runtime_dir, gen_dir = tmp_path / "rt", tmp_path / "gen"
    module.trace.write_tmf(str(runtime_dir), sources=[str(src)])
    assert main(["tmf", "gen", str(src), "-o", str(gen_dir)]) == 0
    rt_files = sorted(p.name for p in runtime_dir.iterdir())
    assert rt_files == sorted(p.name for p in gen_dir.iterdir()) and len(rt_files) == 3
    for name in rt_files:
        assert (runtime_dir / name).read_bytes() == (gen_dir / name).read_bytes(), name


def test_same_tree_elsewhere_gives_the_same_bytes(tmp_path: pathlib.Path) -> None:
    """Message GUIDs come from the path relative to the provider root, not the machine's path."""
    first = _write_app(tmp_path / "one" / "pkg")
    (tmp_path / "one" / "pkg" / "sub").mkdir()
    (tmp_path / "one" / "pkg" / "sub" / "more.py").write_text(
        "from pkg.genapp import trace, IO\n\ndef f():\n    trace.info(IO, \"more %u\", 1)\n")
    shutil.copytree(tmp_path / "one", tmp_path / "two" / "deeper")
    outs = []
    for base in (tmp_path / "one" / "pkg", tmp_path / "two" / "deeper" / "pkg"):
        out = base.parent / "tmf"
        assert main(["tmf", "gen", str(base), "-o", str(out)]) == 0
        outs.append({p.name: p.read_bytes() for p in out.iterdir()})
    assert outs[0] == outs[1] and len(outs[0]) == 4
    control = uuid.UUID("0f3c2b1a-1111-4222-8333-944455556666")
    assert f"{message_guid(control, 'sub/more.py')}.tmf" in outs[0]
    del first


def test_guid_scheme_is_fixed() -> None:
    """Changing these values would break every TMF already shipped: pinned on purpose."""
    control = uuid.UUID("0f3c2b1a-1111-4222-8333-944455556666")
    assert message_guid(control, "genapp.py") == uuid.uuid5(
        uuid.UUID("6f1c3b0e-9a57-4c55-8d1e-2b7f0c4a91d3"), "0f3c2b1a-1111-4222-8333-944455556666/genapp.py")
    # ETW's name hash (EventSource / TraceLogging): the example of TraceLoggingProvider.h.
    assert etw_name_guid("MyCompany.MyComponent") == uuid.UUID("ce5fa4ea-ab00-5402-8b76-9f76ac858fb5")


def test_numbers_follow_source_order_not_execution_order() -> None:
    sites = scan_source(APP, "genapp.py").sites
    assert [(s.number, s.line, s.column) for s in sites] == [(10, 8, 8), (11, 8, 58), (12, 10, 12), (13, 14, 0)]
    assert sites[2].end_line == 11  # multi-line call: its whole range identifies it at run time
    # logging-style calls (literal first argument) and calls with a literal flag are not trace calls
    assert scan_source('log.info("x %s", 1)\nlog.log(10, "y %s", "z")\n', "l.py").sites == ()


def test_gen_reports_bad_formats_with_file_and_line(tmp_path: pathlib.Path, capsys) -> None:
    src = tmp_path / "bad.py"
    src.write_text('trace = Provider("Bad")\ntrace.info(F, "two %d %d", 1)\ntrace.info(F, "bad %q", 1)\n')
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "bad.py:2 in <module>" in err and "takes 2 argument(s), the call passes 1" in err
    assert "bad.py:3 in <module>" in err and "bad trace format 'bad %q'" in err
    assert not (tmp_path / "out").exists()


def test_gen_names_a_source_nested_too_deeply_to_scan(tmp_path: pathlib.Path, capsys) -> None:
    """A source nested deeper than the scanner can walk: one line naming the file and why,
    nothing written."""
    src = tmp_path / "deep.py"
    src.write_text('trace = Provider("Deep")\nDEEP = ' + "+".join(["1"] * 2 * sys.getrecursionlimit()) + "\n")
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{src}: nested too deeply to scan (the recursion limit is {sys.getrecursionlimit()})" in err
    assert "maximum recursion depth" not in err and len(err.splitlines()) == 2     # and "1 error(s)"
    assert not (tmp_path / "out").exists()


def test_gen_without_a_provider_declaration_needs_a_name(tmp_path: pathlib.Path, capsys) -> None:
    src = tmp_path / "noprov.py"
    src.write_text('trace.info(F, "x %d", 1)\n')
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "o")]) == 2
    assert "give --name" in capsys.readouterr().err
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "o"), "--name", "NoProv", "--root",
                 str(tmp_path)]) == 0
    guid = message_guid(etw_name_guid("NoProv"), "noprov.py")
    assert (tmp_path / "o" / f"{guid}.tmf").exists()


def test_missing_source_is_reported_without_a_bogus_position(tmp_path: pathlib.Path, capsys) -> None:
    # Regression: an unreadable source printed "nope.py:0:0: cannot read source: [Errno 2] ...",
    # a line:column that does not exist and the path twice.
    missing = tmp_path / "nope.py"
    assert main(["tmf", "gen", str(missing), "-o", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: cannot read source: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)" in err
    assert ":0:0" not in err and "[Errno" not in err and "Traceback" not in err


def test_syntax_error_in_a_source_is_reported_with_position(tmp_path: pathlib.Path, capsys) -> None:
    src = tmp_path / "broken.py"
    src.write_text('trace = Provider("B")\ndef f(:\n')
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "o")]) == 1
    assert "broken.py:2:" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["%d %s", "%!STATUS! %!GUID! %ls %p %llx"])
def test_file_text_is_stable_for_one_compile(fmt: str, tmp_path: pathlib.Path) -> None:
    src = tmp_path / "s.py"
    src.write_text(f'trace = Provider("S")\ntrace.info(F, "{fmt}", *args)\n')
    from wpptrace.provider.tracing_messages import compile_file
    one = compile_file(str(src), control_guid=etw_name_guid("S"), component="S", root=str(tmp_path))
    two = compile_file(str(src), control_guid=etw_name_guid("S"), component="S", root=str(tmp_path))
    when = tmfgen.reproducible_time()
    assert tmfgen.file_tmf_text(one, when) == tmfgen.file_tmf_text(two, when)
    assert "arg1, " in tmfgen.file_tmf_text(one, when)  # starred: names by position


def test_gen_writes_logging_sites_when_the_sources_use_wpphandler(tmp_path: pathlib.Path, capsys) -> None:
    src = tmp_path / "logs.py"
    src.write_text("import logging\n"
                   "from wpptrace.provider.logging_handler import WppHandler\n"
                   "log = logging.getLogger('x')\n"
                   "log.addHandler(WppHandler('LogsApp'))\n"
                   "def f(n):\n"
                   "    log.info('got %d', n)\n")
    out = tmp_path / "out"
    assert main(["tmf", "gen", str(src), "-o", str(out), "--no-registry"]) == 0
    texts = [p.read_text() for p in out.glob("*.tmf")]
    assert any('"%0got %10!I64d!"' in t and "FLAGS=LOGGING" in t for t in texts), texts
    assert any("logging_formatted 13" in t for t in texts)        # the catch-all per level
    assert (out / f"{etw_name_guid('LogsApp')}.tmc").exists()     # WppHandler("LogsApp") declares it
    assert "warning" not in capsys.readouterr().err
    # no logging call with a literal template: a warning, and only the catch-all messages
    src.write_text(src.read_text().replace("log.info('got %d', n)", "log.info(n)"))
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "out2"), "--no-registry"]) == 0
    assert "no logging call with a literal template was found" in capsys.readouterr().err
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "out3"), "--no-registry", "--no-logging"]) == 0
    assert sorted(p.suffix for p in (tmp_path / "out3").iterdir()) == [".mof", ".tmc"]


def test_gen_writes_the_site_registry_into_the_root(tmp_path: pathlib.Path) -> None:
    from wpptrace.provider.tracing_sources import parse_registry, source_digest

    src = _write_app(tmp_path / "app")
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "tmf")]) == 0
    registry = tmp_path / "app" / "_wpptrace_sites.py"
    entries = parse_registry(registry.read_text(), str(registry))
    assert list(entries) == ["genapp.py"]
    assert entries["genapp.py"].digest == source_digest(src.read_text())
    assert entries["genapp.py"].sites == scan_source(APP, str(src)).sites
    before = registry.stat().st_mtime_ns
    assert main(["tmf", "gen", str(src), "-o", str(tmp_path / "tmf")]) == 0
    assert registry.stat().st_mtime_ns == before  # same sources: the file is left alone
    with pytest.raises(ValueError, match="not a wpptrace site registry"):
        parse_registry("VERSION = 1\nFILES = __import__('os')\n", "evil.py")


def _gen_in_a_child(tmp_path: pathlib.Path, source: str) -> "subprocess.CompletedProcess[str]":
    """``wpptrace tmf gen SOURCE`` in its own process: a source whose open or read never ends
    must not take the test run with it."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", "-o", str(tmp_path / "o"), source],
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_a_fifo_as_source_is_refused_without_waiting_for_a_writer(tmp_path: pathlib.Path) -> None:
    import os

    fifo = tmp_path / "app.py"
    os.mkfifo(fifo)
    done = _gen_in_a_child(tmp_path, str(fifo))
    assert done.returncode == 1
    assert f"{fifo}: not a regular file (a device, pipe or socket)" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()


def test_a_device_as_source_is_refused_before_reading_it(tmp_path: pathlib.Path) -> None:
    done = _gen_in_a_child(tmp_path, "/dev/zero")
    assert done.returncode == 1
    assert "/dev/zero: not a regular file (a device, pipe or socket)" in done.stderr


def test_a_source_larger_than_a_source_may_be_is_refused_before_reading_it(tmp_path: pathlib.Path) -> None:
    from wpptrace.provider.tracing_sites import MAX_SOURCE_FILE

    huge = tmp_path / "huge.py"
    with open(huge, "wb") as handle:    # sparse: no disk, and nothing the reader may load
        handle.truncate(1 << 30)
    done = _gen_in_a_child(tmp_path, str(huge))
    assert done.returncode == 1
    assert (f"{huge}: file of {1 << 30} bytes, larger than the {MAX_SOURCE_FILE} bytes a Python "
            f"source may have") in done.stderr


def test_a_source_at_the_size_limit_is_read(tmp_path: pathlib.Path) -> None:
    from wpptrace.provider.tracing_sites import MAX_SOURCE_FILE, read_source

    src = tmp_path / "big.py"
    head = "# -*- coding: latin-1 -*-\r\nx = '\xe9'\r\n"
    src.write_bytes(head.encode("latin-1") + b"#" * (MAX_SOURCE_FILE - len(head)))
    text = read_source(str(src))
    assert text.startswith("# -*- coding: latin-1 -*-\nx = '\xe9'\n") and len(text) == MAX_SOURCE_FILE - 2
