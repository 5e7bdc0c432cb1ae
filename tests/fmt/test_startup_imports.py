"""``wpptrace fmt`` on a small file in one process stays clear of the heavy modules it does not
need: each costs start-up on every run (docs/performance.md, start-up)."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

#: modules a one-process text run must not import (what pulls them in, if it ever comes back)
UNWANTED = (
    "dataclasses",          # inspect, ast, dis, tokenize; code compiled per class
    "inspect",
    "pickle",               # nothing: -j's processes carry their news with marshal
    "traceback",
    "tempfile",             # importlib.resources (outputs make their temporary file themselves)
    "shutil",               # argparse's default formatter (the terminal's width), tempfile
    "importlib.resources",  # the WDK's WPP types, when a message needs them
    "typing",               # type checkers only: annotations are strings
    "json",                 # JSON Lines only
    "ipaddress",            # messages with an address argument only
    "datetime",             # time arguments, the Python API's timestamps, tracepdb's time stamp
    "wpptrace.decoder.events",    # typed events and decoded messages: the package imports
    "wpptrace.decoder.messages",  # them when one of their names is first used
    "atexit",               # weakref.finalize (each -j process makes its renderer after the fork)
    "encodings.utf_8_sig",  # the codec of "utf-8-sig" (each -j process reads TMF files)
)

_RUN = """
import sys
for name in {unwanted!r}:  # what start-up imported does not count (an editable install: ipaddress)
    sys.modules.pop(name, None)
from wpptrace import cli
from wpptrace.decoder import tracefmt
main = {{"fmt": lambda argv: cli.main(["fmt", *argv]), "tracefmt": tracefmt.main}}[{command!r}]
code = main(sys.argv[1:])
print(",".join(name for name in {unwanted!r} if name in sys.modules))
sys.exit(code)
"""


@pytest.mark.parametrize("command", ["fmt", "tracefmt"])
def test_fmt_imports_no_heavy_module(fmt_data, fmt_tmf, tmp_path, command):
    """Into a file (replaced through a temporary file beside it), from both commands."""
    out = tmp_path / "out.txt"
    res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=UNWANTED, command=command),
                          str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf),
                          *(["-j", "1"] if command == "fmt" else []), "-o", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
    assert out.stat().st_size > 0


def test_fmt_jobs_import_no_heavy_module(fmt_data, fmt_tmf, tmp_path):
    """A -j run into a file imports none of them either: before the fork every process waits
    for them (typing, traceback and tempfile cost 26 ms there; pickle 3 ms)."""
    res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=UNWANTED, command="fmt"),
                          str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf), "-j", "2",
                          "-o", str(tmp_path / "out.txt")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
    assert (tmp_path / "out.txt").stat().st_size > 0


_AT_FORK = """
import sys
from wpptrace import cli
from wpptrace.decoder import parallel
start, seen = parallel._Worker.start, []


def noted(*args, **kwargs):    # what this process imported when it forks its worker
    seen.append([name for name in {modules!r} if name in sys.modules])
    return start(*args, **kwargs)


parallel._Worker.start = noted
code = cli.main(["fmt", *sys.argv[1:]])
seen.append([name for name in {modules!r} if name in sys.modules])    # and at the end
print(seen)
sys.exit(code)
"""


def test_fmt_jobs_into_a_file_imports_neither_fcntl_nor_select(tmp_path):
    """A -j run into a file (``-o``) imports neither ``fcntl`` (the output is a file the run
    opened itself, not to append: no flag to ask about) nor ``select`` (a process waits for
    another through the extension's poll): each loads a shared library, 0.15 ms before the
    fork, where every process waits, and 1.0-1.7 ms in the forked parent."""
    bench_fmt = _bench_fmt()
    path = tmp_path / "unique.etl"
    bench_fmt.generate_unique(path, 20_000)
    modules = ("fcntl", "select")
    script = "import sys\nfor name in %r:\n    sys.modules.pop(name, None)\n" % (modules,)
    res = subprocess.run([sys.executable, "-c", script + _AT_FORK.format(modules=modules), str(path),
                          "-p", str(bench_fmt.TMF_DIR), "-j", "2", "-o", str(tmp_path / "out.txt")],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[[], []]"
    assert (tmp_path / "out.txt").stat().st_size > 0


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_run_with_the_program_cache_turned_off_imports_none_of_it(tmp_path, jobs):
    """WPPTRACE_NO_CACHE=1: the cache's module is not imported, nor, without -j, the module of
    shared records that only the cache or -j needs (what they cost: docs/performance.md).
    Into a file, as the benchmark runs it."""
    bench_fmt = _bench_fmt()
    path = tmp_path / "unique.etl"
    bench_fmt.generate_unique(path, 20_000)
    modules = ("wpptrace.decoder.program_cache", "wpptrace.decoder.program_share")
    res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=modules, command="fmt"),
                          str(path), "-p", str(bench_fmt.TMF_DIR), "-j", jobs,
                          "-o", str(tmp_path / "out.txt")], capture_output=True, text=True,
                         timeout=120, env=dict(os.environ, WPPTRACE_NO_CACHE="1"))
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ("" if jobs == "1" else "wpptrace.decoder.program_share")
    assert (tmp_path / "out.txt").stat().st_size > 0


def test_a_run_the_program_cache_serves_imports_no_uuid(fmt_data, fmt_tmf, tmp_path):
    """A run whose messages all come from fmt's program cache makes no UUID, so it does not
    import uuid, which imports platform (10 M instructions); nor does the run that fills the
    cache: it reads the TMF texts, their GUIDs kept as ints."""
    env = dict(os.environ, WPPTRACE_CACHE_DIR=str(tmp_path / "cache"))
    found = []
    for run in ("fills", "served"):
        out = tmp_path / f"{run}.txt"
        res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=("uuid", "platform"), command="fmt"),
                              str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf), "-j", "1",
                              "-o", str(out)], capture_output=True, text=True, timeout=120, env=env)
        assert res.returncode == 0, res.stderr
        found.append(res.stdout.strip())
    assert found == ["", ""]
    assert (tmp_path / "served.txt").read_bytes() == (tmp_path / "fills.txt").read_bytes()


def test_a_jobs_run_the_program_cache_serves_imports_no_uuid(tmp_path):
    """-j 2 over the benchmark's unique-argument trace (a long tail of messages: some only
    the other process meets), the program cache filled by a run before: adding the other
    process's counts makes no UUID either (their messages are installed from the cache's
    records, or found by their GUIDs' bytes)."""
    bench_fmt = _bench_fmt()
    path = tmp_path / "unique.etl"
    bench_fmt.generate_unique(path, 20_000)
    env = dict(os.environ, WPPTRACE_CACHE_DIR=str(tmp_path / "cache"))
    found = []
    for run in ("fills", "served"):
        res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=("uuid", "platform"), command="fmt"),
                              str(path), "-p", str(bench_fmt.TMF_DIR), "-j", "2",
                              "-o", str(tmp_path / f"{run}.txt"), "--summary", str(tmp_path / f"{run}.sum")],
                             capture_output=True, text=True, timeout=120, env=env)
        assert res.returncode == 0, res.stderr
        found.append(res.stdout.strip())
    assert found == ["", ""]
    assert (tmp_path / "served.txt").read_bytes() == (tmp_path / "fills.txt").read_bytes()
    sums = [[line for line in (tmp_path / f"{run}.sum").read_text().splitlines()
             if not line.startswith("Elapsed Time")] for run in ("fills", "served")]
    assert sums[1] == sums[0]   # (the elapsed seconds may differ)


_COMPILES = """
import os, sys
try:
    from re import _compiler
except ImportError:        # before 3.11
    import sre_compile as _compiler
from wpptrace.tmf import compiled_patterns, lazyre
log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
compile_pattern = _compiler.compile


def noted(pattern, flags=0):   # every process's compile, the forked ones' too: one line each
    if (pattern, flags) in lazyre.PATTERNS:
        os.write(log, f"{os.getpid()}\\n".encode())
    return compile_pattern(pattern, flags)


_compiler.compile = noted
from wpptrace import cli
code = cli.main(["fmt", *sys.argv[2:]])
print(os.getpid(), len(lazyre.PATTERNS), compiled_patterns.ENGINE == lazyre.engine())
sys.exit(code)
"""


def _bench_fmt():
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "bench_fmt", pathlib.Path(__file__).resolve().parents[2] / "benchmarks" / "bench_fmt.py")
    bench_fmt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench_fmt)
    return bench_fmt


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_fmt_parses_none_of_the_tmf_patterns(fmt_data, fmt_tmf, tmp_path, jobs):
    """The TMF modules' regular expressions come from the table of compiled patterns
    (``tmf/compiled_patterns.py``) on the engine it was made for: none parsed and compiled, in
    fmt's process or in a ``-j`` worker (each notes its compiles in one file), the 11 M
    instructions every process reading a TMF text paid before its first message. -j 2 runs
    over the benchmark's unique-argument trace, large enough for a worker to take windows."""
    if jobs == "1":
        etl, tmf = fmt_data / "wppstr-sample.etl", fmt_tmf
    else:
        bench_fmt = _bench_fmt()
        etl, tmf = tmp_path / "unique.etl", bench_fmt.TMF_DIR
        bench_fmt.generate_unique(etl, 20_000)
    env = dict(os.environ, WPPTRACE_NO_CACHE="1")   # the TMF texts read, their messages compiled
    compiles = tmp_path / "compiles"
    res = subprocess.run([sys.executable, "-c", _COMPILES, str(compiles), str(etl), "-p", str(tmf),
                          "-j", jobs, "-o", str(tmp_path / "out.txt")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    _pid, known, same_engine = res.stdout.split()
    assert int(known) >= 20
    if same_engine == "True":
        assert not compiles.exists() or compiles.read_text() == ""


_UUID_IMPORTS = """
import os, sys
log = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)


class Noted:                   # every process's import, the forked ones' too: one line each
    def find_spec(self, name, path=None, target=None):
        if name in ("uuid", "platform"):
            os.write(log, f"{os.getpid()} {name}\\n".encode())
        return None


sys.meta_path.insert(0, Noted())
from wpptrace import cli
from wpptrace.decoder import parallel
workers = []
start = parallel._Worker.start.__func__
parallel._Worker.start = classmethod(lambda cls, *a, **k: workers.append(start(cls, *a, **k)) or workers[-1])
code = cli.main(["fmt", *sys.argv[2:]])
print(len(workers), "uuid" in sys.modules)
sys.exit(code)
"""


@pytest.mark.parametrize("output_format", ["text", "csv", "jsonl"])
@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_first_run_over_a_tmf_set_imports_no_uuid(tmp_path, jobs, output_format):
    """fmt with its program cache off (every message compiled from the TMF texts) makes no
    UUID in any of its processes: a GUID is kept as its int in the TMF set and as its bytes
    in the decoder, so uuid and platform (10 M instructions, paid after the fork by each -j
    process on its first message) are not imported. CSV and JSON Lines print GUIDs (the
    log header's row, each message's JSON object) from those ints and bytes."""
    bench_fmt = _bench_fmt()
    etl = tmp_path / "unique.etl"
    bench_fmt.generate_unique(etl, 20_000)
    env = dict(os.environ, WPPTRACE_NO_CACHE="1")
    imports = tmp_path / "imports"
    res = subprocess.run([sys.executable, "-c", _UUID_IMPORTS, str(imports), str(etl), "-p",
                          str(bench_fmt.TMF_DIR), "-j", jobs, "-f", output_format,
                          "-o", str(tmp_path / "out.txt")],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == [str(int(jobs) - 1), "False"]
    assert not imports.exists() or imports.read_text() == ""
