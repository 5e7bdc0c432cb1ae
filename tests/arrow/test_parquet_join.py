"""Parquet row groups encoded apart (by pyarrow, on a pool of threads) joined into one file
(``decoder.parquet_join``): the file is byte for byte the one pyarrow's own writer makes of
the same row groups; the footer's Thrift survives a round trip unchanged; DuckDB and pyarrow
read it; damaged parts and parts with page indexes are refused with what is wrong; an
encoder's failure reaches the caller; writing Parquet does not import pandas."""
from __future__ import annotations

import io
import os
import struct
import subprocess
import sys

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from wpptrace.decoder import to_arrow
from wpptrace.decoder.arrow import PARQUET_OPTIONS, SCHEMA, ArrowFileWriter
from wpptrace.decoder.parquet_join import ParquetJoiner, decode_struct, encode_struct


@pytest.fixture(scope="module")
def table(bench_fmt, tmp_path_factory) -> pa.Table:
    """3,000 real driver messages with unique arguments and the header row (every column type)."""
    etl = tmp_path_factory.mktemp("join") / "t.etl"
    bench_fmt.generate_unique(etl, 3_000)
    return pa.Table.from_batches(list(to_arrow(str(etl), tmf=str(bench_fmt.TMF_DIR))),
                                 schema=SCHEMA)


def _part(table: pa.Table, **options) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=max(table.num_rows, 1),
                   **{**PARQUET_OPTIONS, **options})
    return sink.getvalue().to_pybytes()


def _footer(data: bytes) -> bytes:
    length = struct.unpack_from("<I", data, len(data) - 8)[0]
    return data[len(data) - 8 - length:len(data) - 8]


@pytest.mark.parametrize("rows", [3_001, 1_000, 700, 1])
def test_joined_parts_are_pyarrows_own_file_byte_for_byte(table, rows):
    out = io.BytesIO()
    joiner = ParquetJoiner(out)
    for start in range(0, table.num_rows, rows):
        joiner.add(_part(table.slice(start, rows)))
    joiner.finish()
    whole = pa.BufferOutputStream()
    pq.write_table(table, whole, row_group_size=rows, **PARQUET_OPTIONS)
    assert out.getvalue() == whole.getvalue().to_pybytes()
    assert joiner.rows == table.num_rows == pq.ParquetFile(io.BytesIO(out.getvalue())).metadata.num_rows


def test_the_footer_survives_decoding_and_encoding(table):
    for data in (_part(table), _part(table.slice(0, 0)), _part(table, compression="none")):
        footer = _footer(data)
        tree = decode_struct(footer)
        assert encode_struct(tree) == footer
        assert [f[0] for f in tree][:4] == [1, 2, 3, 4]   # version, schema, num_rows, row_groups


def test_offsets_move_by_where_each_part_lands(table):
    parts = [_part(table.slice(k, 1_000)) for k in range(0, 3_000, 1_000)]
    out = io.BytesIO()
    joiner = ParquetJoiner(out)
    for part in parts:
        joiner.add(part)
    joiner.finish()
    meta = pq.ParquetFile(io.BytesIO(out.getvalue())).metadata
    at = 4
    for i, part in enumerate(parts):
        first = pq.ParquetFile(io.BytesIO(part)).metadata.row_group(0).column(0)
        column = meta.row_group(i).column(0)
        assert column.data_page_offset == first.data_page_offset + at - 4
        assert column.dictionary_page_offset == first.dictionary_page_offset + at - 4
        at += len(part) - 12 - len(_footer(part))
    assert [meta.row_group(i).num_rows for i in range(3)] == [1_000, 1_000, 1_000]


def test_duckdb_reads_a_joined_file(table, tmp_path):
    path = tmp_path / "joined.parquet"
    with open(path, "wb") as stream:
        writer = ArrowFileWriter(stream, row_group_rows=400, encoders=3)
        for batch in table.to_batches(max_chunksize=250):
            writer.write_batch(batch)
        writer.close()
    assert pq.ParquetFile(path).metadata.num_row_groups == 8     # 7 x 400 rows and 201
    got = duckdb.sql(f"SELECT count(*), count(DISTINCT text), sum(len(args)) FROM read_parquet('{path}')").fetchall()[0]
    texts = table.column("text").to_pylist()
    assert got == (3_001, len(set(texts)), sum(len(a) for a in table.column("args").to_pylist()))
    assert pq.read_table(path).column("text").to_pylist() == texts


def test_no_rows_make_a_file_with_none(tmp_path):
    path = tmp_path / "empty.parquet"
    with open(path, "wb") as stream:
        ArrowFileWriter(stream).close()
    assert pq.read_table(path).num_rows == 0 and pq.read_schema(path).names == SCHEMA.names


def test_bad_parts_are_refused_with_what_is_wrong(table):
    good = _part(table.slice(0, 10))
    joiner = ParquetJoiner(io.BytesIO())
    with pytest.raises(ValueError, match="no PAR1"):
        joiner.add(good[:-1] + b"X")
    with pytest.raises(ValueError, match="larger than the file"):
        joiner.add(good[:-8] + struct.pack("<I", len(good)) + b"PAR1")
    footer = _footer(good)
    cut = good[:4] + footer[:len(footer) // 2] + struct.pack("<I", len(footer) // 2) + b"PAR1"
    with pytest.raises(ValueError, match=r"Parquet footer"):
        joiner.add(cut)
    with pytest.raises(ValueError, match="page indexes"):
        joiner.add(_part(table.slice(0, 10), write_page_index=True))
    with pytest.raises(ValueError, match="no Parquet part"):
        ParquetJoiner(io.BytesIO()).finish()


def test_an_encoders_failure_reaches_the_caller(table):
    writer = ArrowFileWriter(io.BytesIO(), compression={"text": "no-such-codec"}, row_group_rows=100)
    with pytest.raises((ValueError, pa.ArrowException)):
        for batch in table.to_batches(max_chunksize=100):
            writer.write_batch(batch)
        writer.close()


def test_writing_parquet_does_not_import_pandas(fmt_data, tmp_path):
    """pa.array() imports pandas to ask whether its input is a pandas object: 0.2-0.3 s of
    every `fmt -f parquet` run, where nothing uses pandas."""
    capture = fmt_data / "wppemitter-sample.etl"
    code = (f"import sys\nfrom wpptrace.decoder.cli_fmt import FmtOptions, run_fmt\n"
            f"assert run_fmt(FmtOptions(files=[{str(capture)!r}], tmf_dirs=[{str(fmt_data / 'tmf')!r}], "
            f"output={str(tmp_path / 'x.parquet')!r}, output_format='parquet', progress='never')) == 0\n"
            f"print(sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={k: v for k, v in os.environ.items()})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == "['pyarrow']"
    assert pq.read_table(tmp_path / "x.parquet").num_rows > 0
