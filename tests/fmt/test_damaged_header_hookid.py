"""Regression: a header record whose HookId is wrong is a damaged header, not an event.

A log-file header record whose only damage is its HookId (not 0) still walks as a whole
system record. fmt printed the header line made from its facts and, besides, that record as
an event of its own: counted among the events processed (50 where the intact file has 49)
and given a row by ``--all-records``. It is the damaged header record: the header event
stands for it, and it is counted once as damaged and reported once.
"""
from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from fmthelp import run_fmt_capture

from wpptrace.decoder import ordered_records, parallel
from wpptrace.decoder.etlfile import EtlFile


@pytest.fixture
def files(fmt_data, tmp_path, header_record):
    real = fmt_data / "wppemitter-sample.etl"
    data = bytearray(real.read_bytes())
    hook_id = header_record.at("HookId")
    assert data[hook_id:hook_id + 2] == b"\0\0"
    data[hook_id] = 5
    damaged = tmp_path / "hook.etl"
    damaged.write_bytes(bytes(data))
    return real, damaged


#: the summary's count of the damaged record (the header record, counted once)
_COUNTED = "Total Records Damaged   1"


def _summary(path, tmp_path, fmt_data):
    summary = tmp_path / f"{path.stem}.sum"
    code, out, err = run_fmt_capture(path, tmf_dirs=[str(fmt_data / "tmf")], utc=True,
                                     summary=str(summary))
    table = [line for line in summary.read_text().splitlines()[2:]
             if not line.startswith("Elapsed")]
    return code, out, err, table


def test_fmt_counts_it_as_the_header_only(files, fmt_data, tmp_path):
    real, damaged = files
    code, out, err, table = _summary(damaged, tmp_path, fmt_data)
    _code, intact_out, _err, intact_table = _summary(real, tmp_path, fmt_data)
    # the same lines and counts, and the damaged record counted (a line of its own)
    assert (out, [row for row in table if row != _COUNTED]) == (intact_out, intact_table)
    assert "Total Events  Processed 49" in table and _COUNTED in table
    assert code == 1 and err.count("\n") == 1 and "found marker 0xc0020002 HookId 0x5" in err


def test_all_records_gives_no_row_for_it(files, fmt_data, tmp_path):
    tables = {}
    for path in files:
        out = tmp_path / f"{path.stem}.parquet"
        run_fmt_capture(path, tmf_dirs=[str(fmt_data / "tmf")], output_format="parquet",
                        all_records=True, output=str(out))
        tables[path] = [dict(row, etl=None) for row in pq.read_table(out).to_pylist()]
    real, damaged = files
    assert tables[damaged] == tables[real]
    assert tables[damaged][0]["status"] == "header"


def test_records_and_counts(files):
    real, damaged = files
    with EtlFile(real) as a, EtlFile(damaged) as b:
        intact, hurt = list(ordered_records(a)), list(ordered_records(b))
        assert [(r.kind, r.event_id, r.timestamp) for r in hurt] == \
            [(r.kind, r.event_id, r.timestamp) for r in intact]
        assert (b.stats.records, b.stats.damaged) == (a.stats.records - 1, 1)


def test_jobs_count_it_once(driver, tmp_path, monkeypatch, header_record):
    """fmt -j 1 and -j 2 give the intact file's lines and counts: one header line, and the
    damaged record in no count of events."""
    etl, tmf_dir = driver
    data = bytearray(etl.read_bytes())
    data[header_record.at("HookId")] = 5
    damaged = tmp_path / "driver.etl"
    damaged.write_bytes(bytes(data))
    with EtlFile(damaged) as f:
        times = sorted(info.timestamp for info in f.buffer_index())
    monkeypatch.setattr(parallel, "cut_keys", lambda *_a, **_k: [None, times[len(times) // 2],
                                                                 None])
    outputs = {}
    for path, jobs in ((etl, 1), (damaged, 1), (damaged, 2)):
        out, summary = tmp_path / f"{path.stem}{jobs}", tmp_path / f"{path.stem}{jobs}.sum"
        code, _stdout, err = run_fmt_capture(path, tmf_dirs=[tmf_dir], utc=True, jobs=jobs,
                                             output=str(out), summary=str(summary))
        if path == damaged:
            assert code == 1 and err.count("\n") == 1 and "HookId 0x5" in err
        table = [line for line in summary.read_text().splitlines()[2:]
                 if not line.startswith("Elapsed")]
        assert (_COUNTED in table) == (path == damaged)
        outputs[path, jobs] = (out.read_text(), [row for row in table if row != _COUNTED])
    # the intact file's lines and counts, whatever the number of jobs
    assert outputs[damaged, 2] == outputs[damaged, 1] == outputs[etl, 1]
    assert outputs[damaged, 1][0].count("EventTrace") == 1
