"""Byte-identical rendering: ``wpptrace fmt`` output (text, CSV, JSON Lines; prefixes, local and
UTC time) on the traces of ``golden_traces`` equals the committed golden files, which were
written by the Python renderer. Whatever renders a message (the C renderer, a Python fallback,
several processes) must print exactly these bytes."""
from __future__ import annotations

import pathlib

import golden_traces
import pytest

CASES = [(trace, variant) for trace, variants in golden_traces.VARIANTS.items() for variant in variants]


@pytest.fixture(scope="module")
def traces(tmp_path_factory, corpus) -> dict[str, tuple[list[pathlib.Path], list[str]]]:
    tmp = tmp_path_factory.mktemp("golden")
    return {name: golden_traces.build(name, tmp, corpus) for name in golden_traces.VARIANTS}


def _first_difference(got: bytes, want: bytes) -> str:
    got_lines, want_lines = got.split(b"\n"), want.split(b"\n")
    for n, (a, b) in enumerate(zip(got_lines, want_lines), 1):
        if a != b:
            return f"line {n}:\n  got:  {a!r}\n  want: {b!r}"
    return f"{len(got_lines)} lines, {len(want_lines)} expected"


@pytest.mark.parametrize("trace,variant", CASES, ids=[f"{t}.{v}" for t, v in CASES])
def test_output_equals_the_golden_file(traces, trace, variant):
    etls, tmfs = traces[trace]
    got = golden_traces.render(etls, tmfs, golden_traces.VARIANTS[trace][variant])
    want = golden_traces.read_golden(trace, variant)
    assert got == want, _first_difference(got, want)


@pytest.mark.parametrize("trace,variant", [("synth", "text"), ("synth", "custom.text"), ("synth", "csv"),
                                           ("synth", "quoted.csv"), ("synth", "jsonl"),
                                           ("driver", "text"), ("driver", "csv"), ("driver", "jsonl"),
                                           ("captures", "csv"), ("captures", "jsonl")])
def test_python_alone_prints_the_golden_file_too(traces, trace, variant):
    """The same bytes when every row is left to the Python renderer (the holes path): the C
    renderer's text, CSV rows (quoting) and JSON objects (escaping, typed values) against
    Python's, on every message of the corpus driver TMFs and on the synthetic TMF."""
    etls, tmfs = traces[trace]
    got = golden_traces.render(etls, tmfs, golden_traces.VARIANTS[trace][variant], python_only=True)
    want = golden_traces.read_golden(trace, variant)
    assert got == want, _first_difference(got, want)


def test_every_golden_file_is_checked():
    names = {golden_traces.golden_path(t, v).name for t, v in CASES}
    assert {p.name for p in golden_traces.GOLDEN.glob("*.xz")} == names


def test_the_traces_cover_what_the_renderer_must_handle():
    """The golden texts hold every kind of line: formatted, Unknown, format errors, U+FFFD,
    non-ASCII, line breaks inside messages, both pointer widths."""
    synth = golden_traces.read_golden("synth", "text").decode("utf-8")
    driver = golden_traces.read_golden("driver", "text").decode("utf-8")
    for text in (synth, driver):
        assert "(No Format Information found)." in text and "*****FormatMessage (#Typev) failed" in text
    assert "\ufffd" in synth and "\u65e5\u672c" in synth and "FlagRead" in synth
    assert "[p]=00000000" in synth and "[p]=0000000000000000" in synth  # POINTER32 and POINTER64
    assert driver.count("\n") > 2600
