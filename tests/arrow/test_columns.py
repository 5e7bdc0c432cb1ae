"""The Arrow columns the C renderer builds (text, typed arguments, the rows' own fields) equal
what Python's decoding of every row gives (``ArrowBuilder(native=False)``), on the real
captures, the Python sample application's capture, the rendering tests' traces (every item
type under every printf spec, invalid UTF-8 / UTF-16, NaNs, cut-off argument blocks, unknown
messages, a clock that is not 10 MHz), with and without the non-WPP records, across batch
boundaries."""
from __future__ import annotations

import math
import pathlib
import sys

import pyarrow as pa
import pytest

from wpptrace.decoder import load_tmf
from wpptrace.decoder.arrow import SCHEMA, ArrowRun, _Context

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tmf_render"))
import golden_traces  # noqa: E402  (the rendering tests' deterministic traces)


def _table(etls, tmfset, *, native: bool, **options) -> pa.Table:
    context = _Context(tmfset)
    context.builder.native = native
    run = ArrowRun([str(p) for p in etls], tmfset, context=context, **options)
    table = run.read_all()
    run.close()
    return table


def _plain(value):
    """A value with NaNs made comparable (NaN != NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _rows(table: pa.Table) -> list[dict]:
    return [_plain(r) for r in table.to_pylist()]


@pytest.fixture(scope="module")
def traces(tmp_path_factory, corpus):
    tmp = tmp_path_factory.mktemp("columns")
    return {name: golden_traces.build(name, tmp, corpus)
            for name in ("synth", "driver", "captures", "pyapp")}


@pytest.mark.parametrize("name", ["synth", "driver", "captures", "pyapp"])
@pytest.mark.parametrize("all_records", [False, True])
def test_c_columns_equal_python_rows(traces, name, all_records):
    etls, tmfs = traces[name]
    tmfset = load_tmf(tmfs)
    # small batches: the C side stops at batch boundaries in the middle of chunks
    native = _table(etls, tmfset, native=True, all_records=all_records, batch_rows=777)
    python = _table(etls, tmfset, native=False, all_records=all_records, batch_rows=777)
    assert native.schema.equals(SCHEMA)
    assert native.num_rows == python.num_rows > 1
    assert _rows(native) == _rows(python)
    if name == "synth":       # what the C side types: every kind of argument value
        args = native.column("args").combine_chunks().flatten()
        for field in ("int", "float", "str"):
            assert args.field(field).null_count < len(args)


def test_c_columns_decode_most_rows(traces):
    """The rows Python decodes are the rare ones (the header, damaged and rarer items)."""
    etls, tmfs = traces["driver"]
    tmfset = load_tmf(tmfs)
    context = _Context(tmfset)
    builder = context.builder
    calls = []
    python_row = builder._python_row
    builder._python_row = lambda ref, view: (calls.append(ref), python_row(ref, view))
    run = ArrowRun([str(p) for p in etls], tmfset, context=context)
    rows = run.read_all().num_rows
    run.close()
    assert 0 < len(calls) < rows // 10


def test_builder_reused_with_another_key_table(traces):
    """A decoder and builder reused for a file read with another key table (its key ids start
    anew) give that file's messages, as a fresh run does."""
    from wpptrace.decoder.wpp_rows import RowTables

    first, tmfs = traces["driver"]
    second, second_tmfs = traces["captures"]
    tmfset = load_tmf(tmfs + second_tmfs)
    context = _Context(tmfset)
    run = ArrowRun([str(p) for p in first], tmfset, context=context)
    run.read_all()
    run.close()
    context.tables = RowTables()
    run = ArrowRun([str(p) for p in second], tmfset, context=context)
    reused = run.read_all()
    run.close()
    fresh = _table(second, tmfset, native=True)
    assert _rows(reused) == _rows(fresh)
