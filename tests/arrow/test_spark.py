"""The Spark recipe of docs/analytics.md, run: ``mapInArrow`` over the fleet's partitions
(``wpptrace.dask.plan``) with ``decode_range`` on the executors gives the same rows as one
process decoding each file (``PORTABLE_SCHEMA``: Spark has no unsigned integers,
dictionaries or nanoseconds)."""
from __future__ import annotations

import sys

import pyarrow as pa
import pytest

import wpptrace.dask as wdask
from wpptrace.decoder import load_tmf, to_arrow
from wpptrace.decoder.arrow import PORTABLE_SCHEMA, decode_range, portable


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    import os

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[2]").appName("wpptrace-test")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.local.dir", str(tmp_path_factory.mktemp("spark")))
               .getOrCreate())
    yield session
    session.stop()
    # the JVM Spark started (its py4j gateway) ends when its stdin closes, else only as this
    # process ends: ended here, with the tests that used it
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        gateway.shutdown()
        gateway.proc.stdin.close()
        gateway.proc.wait(60)
        SparkContext._gateway = SparkContext._jvm = None


def _key(row: dict) -> tuple:
    return (row["etl"], row["filetime"], row["sequence"], row["text"])


def test_spark_map_in_arrow_recipe(spark, bench_fmt, tmp_path):
    from pyspark.sql.pandas.types import from_arrow_schema

    for k in range(2):
        bench_fmt.generate(tmp_path / f"host{k}.etl", 3_000 + 1_000 * k)
    pattern = str(tmp_path / "*.etl")

    # the recipe (docs/analytics.md "Spark")
    tmf = spark.sparkContext.broadcast(load_tmf(bench_fmt.TMF_DIR))    # once per executor
    parts = [(p, *(w or (None, None))) for p, w in wdask.plan(pattern, split_bytes=60_000)]

    def decode(batches):                                               # on the executors
        for batch in batches:
            for path, lo, hi in zip(*batch.to_pydict().values()):
                table, _issues = decode_range(path, (lo, hi), tmf.value)
                yield from portable(table).to_batches()

    ranges = spark.createDataFrame(parts, "path string, lo long, hi long").repartition(len(parts))
    frame = ranges.mapInArrow(decode, from_arrow_schema(PORTABLE_SCHEMA))

    assert len(parts) > 2                         # the files were cut into time windows
    got = [r.asDict(recursive=True) for r in frame.collect()]
    expected = portable(pa.concat_tables(
        to_arrow(tmp_path / f"host{k}.etl", tmf=bench_fmt.TMF_DIR).read_all()
        for k in range(2))).to_pylist()
    assert len(got) == len(expected) == 3_001 + 4_001
    for row in got:       # Spark hands timestamps back as local naive datetimes
        row.pop("timestamp")
    for row in expected:
        row.pop("timestamp")
    assert sorted(got, key=_key) == sorted(expected, key=_key)
