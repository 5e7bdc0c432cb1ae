"""The source text of call arguments, as the site scanners read it (``SourceLines``): the same
text ``ast.get_source_segment`` gives, with the source split into lines once per scan."""
from __future__ import annotations

import ast

import pytest

from wpptrace.provider import tracing_sites
from wpptrace.provider.tracing_sites import SourceLines, scan_logging_calls, scan_source

SOURCES = {
    "lf": "x = f(a,\n      b)\ny = 'é' + g(c)\n",
    "crlf": "x = f(a,\r\n      b)\r\ny = 'é' + g(c)\r\n",
    "cr": "x = f(a,\r      b)\ry = g(c)\r",
    "form-feed": "x = f(a, \f b)\n\fy = g('\x0b', c)\n",
    "non-ascii": "名前 = f('ü', x['ß'],\n        '€' * 3)  # ✓\n",
    "no-final-newline": "x = (1 +\n     2)",
    "multi-line-string": 's = """one\ntwo\r\nthree""" + t\n',
}


@pytest.mark.parametrize("name", SOURCES)
def test_every_node_has_the_text_get_source_segment_gives(name):
    source = SOURCES[name]
    lines = SourceLines(source)
    nodes = [node for node in ast.walk(ast.parse(source)) if hasattr(node, "end_col_offset")]
    assert nodes
    for node in nodes:
        assert lines.segment(node) == ast.get_source_segment(source, node), ast.dump(node)


def _many_calls(n: int) -> str:
    lines = ["import logging", "from wpptrace.provider.tracing import Provider",
             'trace = Provider("Many", register=False, flags=("IO",))', "log = logging.getLogger()"]
    for i in range(n):
        lines.append(f'trace.info(trace.flags.IO, "value %d {i}", values[{i}] + 1)')
        lines.append(f'log.warning("value %s {i}", values[{i}] * 2)')
    return "\n".join(lines) + "\n"


def test_a_scan_splits_its_source_into_lines_once(monkeypatch):
    """Each call's arguments are read from the lines split once (ast.get_source_segment splits
    the whole source at every call: a file of n calls took time in n squared)."""
    splits = []

    class Counting:
        def findall(self, text):
            splits.append(len(text))
            return real.findall(text)
    real = tracing_sites._SOURCE_LINE
    monkeypatch.setattr(tracing_sites, "_SOURCE_LINE", Counting())

    def no_resplit(*args, **kwargs):
        raise AssertionError("the source split again for one node")
    monkeypatch.setattr(ast, "get_source_segment", no_resplit)
    source = _many_calls(200)
    scan = scan_source(source, "many.py")
    assert len(scan.sites) == 200 and len(splits) == 1
    logging_sites = scan_logging_calls(source, "many.py")
    assert len(logging_sites) == 200 and len(splits) == 2
    assert scan.sites[7].arg_texts == ("values[7] + 1",) and scan.sites[7].flag_text == "trace.flags.IO"
    assert logging_sites[7].arg_texts == ("values[7] * 2",)
