"""The DuckDB query docs/analytics.md gives for what a fleet job could not read, run over the
lakes its Dask recipe writes: a file that could not be read at all is listed (it has no rows
in the records lake, only in the issues lake); the records query beside it runs."""
from __future__ import annotations

import pathlib
import re

import duckdb

import wpptrace.dask as wdask
from wpptrace.decoder.arrow import PARQUET_OPTIONS

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "analytics.md"


def _query_after(comment: str) -> str:
    """The SQL statement of the docs' DuckDB block that follows the comment line holding
    ``comment``."""
    block = re.search(r"## DuckDB\n\n```sql\n(.*?)```", DOCS.read_text(), re.S).group(1)
    lines = block.split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("--") and comment in line)
    statement = []
    for line in lines[start + 1:]:
        if line.startswith("--") and not statement:
            continue                         # the comment's own continuation lines
        statement.append(line)
        if line.rstrip().endswith(";"):
            return "\n".join(statement)
    raise AssertionError(f"no statement after {comment!r}")


def test_what_a_fleet_job_could_not_read(bench_fmt, tmp_path):
    import dask

    fleet = tmp_path / "fleet"
    fleet.mkdir()
    bench_fmt.generate(fleet / "a.etl", 2_000)
    (fleet / "tiny.etl").write_bytes(b"\0" * 24)
    lake = tmp_path / "lake"
    with dask.config.set(scheduler="synchronous"):   # the recipe, without a cluster
        records, issues = wdask.read_etl(str(fleet / "**" / "*.etl"), tmf=str(bench_fmt.TMF_DIR),
                                         issues=True)
        records.to_parquet(str(lake / "wpp"), write_index=False, **PARQUET_OPTIONS)
        issues.to_parquet(str(lake / "wpp-issues"), write_index=False)
    query = _query_after("could not read").replace("'/lake/", f"'{lake}/")
    rows = duckdb.connect().sql(query).fetchall()
    assert [row[0] for row in rows] == [str(fleet / "tiny.etl")]
    # the records lake's query beside it: the file read, by status
    query = _query_after("rows per file and status").replace("'/lake/", f"'{lake}/")
    rows = duckdb.connect().sql(query).fetchall()
    assert {(etl, status) for etl, status, _ in rows} == {(str(fleet / "a.etl"), "header"),
                                                          (str(fleet / "a.etl"), "ok")}
