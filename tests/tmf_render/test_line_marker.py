"""The LINE marker: the digits ending a message name, found in time linear in the name."""
from __future__ import annotations

import re
import subprocess
import sys
import textwrap
import types

import pytest

from wpptrace.tmf.render import marker_default, marker_defaults


def _message(name: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(name=name, trailer={}, component="c", source_file="a.c")


@pytest.mark.parametrize("name, line", [
    ("Device_c104", "104"), ("a_c0", "0"), ("x", ""), ("", ""), ("12x", ""), ("123", "123"),
    ("s_c12x34", "34"), ("fn\u0661\u0662", "\u0661\u0662"), ("v12\n", "12"), ("v\u00b2", ""),
])
def test_line_is_the_digits_ending_the_name(name, line):
    # the same answer as the plain (\d+)$ search: Unicode decimal digits, $ before a final newline
    old = re.search(r"(\d+)$", name)
    assert line == (old.group(1) if old else "")
    assert marker_defaults(_message(name))["LINE"] == line == marker_default(_message(name), "LINE")


def test_a_long_run_of_digits_costs_linear_work():
    """Four million digits and a letter: a search that restarts at every digit would need
    about 10^13 steps (days); a linear one needs milliseconds. The child process runs under a
    20-second CPU limit, orders of magnitude away from both."""
    code = textwrap.dedent("""
        import resource, types
        resource.setrlimit(resource.RLIMIT_CPU, (20, 20))
        from wpptrace.tmf.render import marker_default, marker_defaults
        run = "7" * 4_000_000
        for name, line in ((run + "x", ""), ("y" + run, run), (run + "_c" + run + "z", "")):
            message = types.SimpleNamespace(name=name, trailer={}, component="", source_file="")
            assert marker_defaults(message)["LINE"] == line
            assert marker_default(message, "LINE") == line
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr[-2000:]
