"""A Parquet file's memory is set by its row group, not by ``--batch-rows``.

Regression: a row group kept every batch it was made of until it was encoded, and each small
batch holds some 25 KB of C buffers and Arrow objects beside its values: 40,000 one-row
batches took over a gigabyte. At the other end, a batch larger than a row group became one
row group, and ``--batch-rows 2147483647`` decoded the whole file into one batch first.
"""
from __future__ import annotations

import io
import json
import resource
import subprocess
import sys

import pyarrow.parquet as pq
from arrowhelp import fmt

from wpptrace.decoder import to_arrow
from wpptrace.decoder.arrow import MAX_BATCH_ROWS, ROW_GROUP_ROWS, SCHEMA, ArrowFileWriter

LIMIT = 1 << 30


def _limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def _group_sizes(source) -> list[int]:
    meta = pq.ParquetFile(source).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_one_row_batches_stay_within_a_memory_limit(bench_fmt, tmp_path):
    etl = tmp_path / "u40k.etl"
    bench_fmt.generate_unique(etl, 40_000, 7)
    out = tmp_path / "one_row.parquet"
    proc = subprocess.run([sys.executable, "-m", "wpptrace", "fmt", str(etl), "-p",
                           str(bench_fmt.TMF_DIR), "-f", "parquet", "-o", str(out),
                           "--batch-rows", "1", "--no-cache"], capture_output=True, text=True,
                          preexec_fn=_limited, timeout=600)
    assert proc.returncode == 0, proc.stderr[-500:]
    assert sum(_group_sizes(out)) == 40_001


def test_the_largest_batches_are_cut_into_row_groups(bench_fmt, tmp_path, monkeypatch):
    etl = tmp_path / "u300k.etl"
    bench_fmt.generate_unique(etl, 300_000, 7)
    handed: list[int] = []
    write_batch = ArrowFileWriter.write_batch

    def recorded(self, batch):
        handed.append(batch.num_rows)
        return write_batch(self, batch)

    monkeypatch.setattr(ArrowFileWriter, "write_batch", recorded)
    out = tmp_path / "huge.parquet"
    code, _, err = fmt([etl], [bench_fmt.TMF_DIR], "parquet", str(out), batch_rows=MAX_BATCH_ROWS)
    assert code == 0, err
    # the decoder never holds more than a row group's rows for the writer
    assert handed and max(handed) <= ROW_GROUP_ROWS and sum(handed) == 300_001
    full, last = divmod(300_001, ROW_GROUP_ROWS)
    assert _group_sizes(out) == [ROW_GROUP_ROWS] * full + [last]


def test_batches_are_joined_and_cut_with_their_values_in_order(bench_fmt, tmp_path):
    """Many small batches (joined while a row group gathers them) and a batch larger than a
    row group (cut across groups) give the rows as they came, their labels intact."""
    etl = tmp_path / "u3k.etl"
    bench_fmt.generate_unique(etl, 3_000, 7)
    table = to_arrow(str(etl), tmf=str(bench_fmt.TMF_DIR), batch_rows=1).read_all()
    batches = table.to_batches()
    assert len(batches) == table.num_rows == 3_001
    sink = io.BytesIO()
    writer = ArrowFileWriter(sink, row_group_rows=1_000, encoders=2)
    for batch in batches + table.combine_chunks().to_batches():   # one row each, then all
        writer.write_batch(batch)
    writer.close()
    assert _group_sizes(io.BytesIO(sink.getvalue())) == [1_000] * 6 + [2]
    got = pq.read_table(io.BytesIO(sink.getvalue()))
    assert got.schema == SCHEMA
    # (as JSON text: NaN arguments compare equal)
    assert json.dumps(got.to_pylist(), default=str) == \
        json.dumps(table.to_pylist() * 2, default=str)
