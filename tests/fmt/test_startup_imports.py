"""``wpptrace fmt`` on a small file in one process stays clear of the heavy modules it does not
need: each costs start-up on every run (docs/performance.md, start-up)."""
from __future__ import annotations

import subprocess
import sys

#: modules a one-process text run must not import (what pulls them in, if it ever comes back)
UNWANTED = (
    "dataclasses",          # inspect, ast, dis, tokenize; code compiled per class
    "inspect",
    "pickle",               # decoder.parallel, for -j N only
    "traceback",
    "tempfile",             # an output file to replace only (not /dev/null); importlib.resources
    "importlib.resources",  # the WDK's WPP types, when a message needs them
    "typing",               # type checkers only: annotations are strings
    "json",                 # JSON Lines only
)

_RUN = """
import sys
from wpptrace import cli
code = cli.main(sys.argv[1:])
print(",".join(name for name in {unwanted!r} if name in sys.modules))
sys.exit(code)
"""


def test_fmt_imports_no_heavy_module(fmt_data, fmt_tmf):
    res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=UNWANTED), "fmt",
                          str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf), "-j", "1",
                          "-o", "/dev/null"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""


#: what a -j run into a file must not import either: before the fork every process waits for
#: them (typing and traceback, with tempfile, cost 26 ms there); pickle carries the workers'
#: news, tempfile makes the output beside its name (one process does too)
UNWANTED_PARALLEL = tuple(name for name in UNWANTED if name not in ("pickle", "json", "tempfile"))


def test_fmt_jobs_import_no_heavy_module(fmt_data, fmt_tmf, tmp_path):
    res = subprocess.run([sys.executable, "-c", _RUN.format(unwanted=UNWANTED_PARALLEL), "fmt",
                          str(fmt_data / "wppstr-sample.etl"), "-p", str(fmt_tmf), "-j", "2",
                          "-o", str(tmp_path / "out.txt")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ""
    assert (tmp_path / "out.txt").stat().st_size > 0
