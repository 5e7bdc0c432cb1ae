"""Fleets on Dask (``wpptrace.dask.read_etl``): a LocalCluster of 2 worker processes decodes 8
files, one of them damaged, split into time windows, into the same rows and issues as one
process decoding each file whole (with the issues dataframe and without it); ``to_parquet``
writes them; an unreadable file is an issue row, not a failed job."""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import wpptrace.dask as wdask
from wpptrace.decoder import to_arrow
from wpptrace.decoder.arrow import SCHEMA

SPLIT = 150_000          # bytes: each fleet file is cut into 2 to 4 windows
DAMAGED = 5


@pytest.fixture(scope="module")
def fleet(bench_fmt, tmp_path_factory):
    """8 traces of the real driver TMFs (6,000 to 9,500 events); the sixth has 96 bytes of
    garbage in the middle of a data buffer and a buffer header overwritten."""
    folder = tmp_path_factory.mktemp("fleet")
    paths = []
    for k in range(8):
        path = folder / f"host{k}.etl"
        bench_fmt.generate(path, 6_000 + 500 * k)
        paths.append(path)
    data = bytearray(paths[DAMAGED].read_bytes())
    data[2 * 65536 + 20_000: 2 * 65536 + 20_096] = b"\xa5" * 96
    data[4 * 65536: 4 * 65536 + 0x30] = b"\x00" * 0x30
    paths[DAMAGED].write_bytes(bytes(data))
    return folder, paths


def _plain(table: pa.Table) -> pa.Table:
    """The table with its label columns as plain strings (dictionaries differ by batch)."""
    def plain(kind):
        if pa.types.is_dictionary(kind):
            return kind.value_type
        if pa.types.is_list(kind):
            return pa.list_(plain(kind.value_type))
        if pa.types.is_struct(kind):
            return pa.struct([pa.field(f.name, plain(f.type)) for f in kind])
        return kind
    return table.cast(pa.schema([pa.field(f.name, plain(f.type)) for f in SCHEMA]))


def _single_process(paths, tmf):
    tables, issues = [], []
    for path in paths:
        run = to_arrow(path, tmf=tmf)
        tables.append(run.read_all())
        issues += run.issues.to_pylist()
    return pa.concat_tables(tables), issues


def test_plan_splits_large_files_into_windows(fleet):
    folder, paths = fleet
    parts = wdask.plan(str(folder / "*.etl"), SPLIT)
    assert [p for p, _w in parts] == sorted([p for p, _w in parts])
    assert {p for p, _w in parts} == {str(p) for p in paths}
    for path in paths:
        windows = [w for p, w in parts if p == str(path)]
        assert 2 <= len(windows) <= 5
        assert windows[0][0] is None and windows[-1][1] is None
        assert all(a[1] == b[0] for a, b in zip(windows, windows[1:]))
    assert wdask.plan([paths[0]], 1 << 30) == [(str(paths[0]), None)]
    with pytest.raises(FileNotFoundError):
        wdask.plan(str(folder / "*.nothing"))


def test_local_cluster_equals_single_process(fleet, bench_fmt, tmp_path):
    from dask.distributed import Client, LocalCluster

    folder, paths = fleet
    tmf = str(bench_fmt.TMF_DIR)
    expected, expected_issues = _single_process(paths, tmf)
    assert expected_issues and all(i["etl"] == str(paths[DAMAGED]) for i in expected_issues)
    assert expected.num_rows > 8 * 6_000 - 100     # the damaged file keeps its intact records
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        # two worker processes, counted before any work: counted after it, on a busy machine,
        # one of them was once missing from the scheduler's list
        client.wait_for_workers(2, timeout=120)
        assert len(client.scheduler_info()["workers"]) == 2
        records, issues = wdask.read_etl(str(folder / "host*.etl"), tmf=tmf, split_bytes=SPLIT,
                                         issues=True)
        assert records.npartitions > 8
        out = tmp_path / "lake"
        records.to_parquet(str(out), write_index=False,
                           name_function=lambda i: f"part-{i:05d}.parquet")
        got_issues = issues.compute()
        # without the issues: one task per partition (dd.from_map), the same rows
        alone = wdask.read_etl(str(folder / "host*.etl"), tmf=tmf, split_bytes=SPLIT)
        assert alone.npartitions == records.npartitions
        out_alone = tmp_path / "lake-records"
        alone.to_parquet(str(out_alone), write_index=False,
                         name_function=lambda i: f"part-{i:05d}.parquet")
    got = pq.read_table(out)
    assert got.schema.equals(SCHEMA)
    assert got.num_rows == expected.num_rows
    assert _plain(got).equals(_plain(expected))
    got_alone = pq.read_table(out_alone)
    assert got_alone.schema.equals(SCHEMA)
    assert _plain(got_alone).equals(_plain(expected))
    assert sorted(map(tuple, got_issues.itertuples(index=False))) == sorted(
        (i["etl"], i["offset"], i["message"]) for i in expected_issues)
    assert len(expected_issues) >= 2            # the garbage and the broken buffer header


def test_unreadable_file_is_an_issue_row(fleet, bench_fmt, tmp_path):
    """An input that is not an .etl file (and one cut inside its first buffer) gives no rows
    and an issue row each; the other files decode. Dask's local scheduler, no cluster.

    The file that is not a trace is text (TMF files given by mistake), not random bytes: one
    in about 750 random 5,000-byte files holds a well-formed message record where a trace's
    first record sits (its byte 0x4B is 0x90, the message marker, and its size fits), which
    the reader, lenient with a damaged header buffer, decodes as a row."""
    import dask

    folder, paths = fleet
    junk = tmp_path / "junk.etl"
    text = b"".join(path.read_bytes() for path in sorted(bench_fmt.TMF_DIR.glob("*.tmf")))
    assert len(text) >= 5000
    junk.write_bytes(text[:5000])
    cut = tmp_path / "cut.etl"
    cut.write_bytes(paths[0].read_bytes()[:100])
    with dask.config.set(scheduler="synchronous"):
        records, issues = wdask.read_etl([paths[1], junk, cut], tmf=str(bench_fmt.TMF_DIR),
                                         issues=True)
        frame, problems = dask.compute(records, issues)
    assert set(frame["etl"]) == {str(paths[1])}
    assert len(frame) == 6_501
    with dask.config.set(scheduler="synchronous"):   # records only: the same frame
        alone = wdask.read_etl([paths[1], junk, cut], tmf=str(bench_fmt.TMF_DIR)).compute()
    assert alone.reset_index(drop=True).equals(frame.reset_index(drop=True))
    assert set(problems["etl"]) == {str(junk), str(cut)}
    said = list(problems[problems["etl"] == str(cut)]["message"])
    assert "file too short for the log-file header record" in said
    assert "buffer 0 truncated: expected 65536 bytes, the file ends after 100" in said


def test_fresh_workers_import_while_the_client_plans(fleet, bench_fmt):
    """read_etl starts the workers' imports before the client's own planning, so a fresh
    worker's first partition does not wait ~1 s for them; without any task running, the
    workers end up with every module a partition task needs."""
    import time

    from dask.distributed import Client, LocalCluster

    def _task_modules_loaded() -> bool:          # sent by value: tests/ is not importable there
        import sys

        return all(name in sys.modules for name in modules)

    modules = wdask._TASK_MODULES
    folder, _paths = fleet
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert not any(client.run(_task_modules_loaded).values())
        wdask.read_etl(str(folder / "host*.etl"), tmf=str(bench_fmt.TMF_DIR))   # no compute
        deadline = time.monotonic() + 60
        while not all(client.run(_task_modules_loaded).values()):
            assert time.monotonic() < deadline, "the workers never imported the task modules"
            time.sleep(0.05)


def test_a_client_that_cannot_prepare_workers_still_plans():
    class Refusing:
        def run(self, *args, **kwargs):
            raise OSError("scheduler gone")

    assert wdask._prepare_workers(Refusing()) is None
