"""``--all-records``: a record that does not log a process or thread id (perfinfo) has null
``pid`` and ``tid``, as ``wpptrace dump`` and ``decoder.open`` give it, not 0 (PID 0 is a
real process on Windows, the idle one); records and messages that log them keep them."""
from __future__ import annotations

import collections
import json

import pyarrow.parquet as pq
from arrowhelp import dump_iso, fmt

from wpptrace.cli import main


def test_records_without_process_ids_have_null_pid_and_tid(fmt_data, tmp_path, capsys):
    etl = fmt_data / "wppenum-sample.etl"
    out = tmp_path / "all.parquet"
    code, _, err = fmt([etl], [fmt_data / "tmf"], "parquet", str(out), all_records=True)
    assert code == 0, err
    rows = pq.read_table(out).to_pylist()

    perfinfo = [r for r in rows if r["kind"] == "perfinfo"]
    assert len(perfinfo) == 2
    assert all(r["pid"] is None and r["tid"] is None for r in perfinfo)
    assert all(r["pid"] is not None and r["tid"] is not None
               for r in rows if r["kind"] in ("system", "message"))

    assert main(["dump", "--json", str(etl)]) == 0
    dumped = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:-1]]
    expected = collections.Counter((d["kind"], d["timestamp"], d["id"], d["pid"], d["tid"])
                                   for d in dumped[1:] if d["kind"] != "message")
    assert collections.Counter((r["kind"], dump_iso(r["filetime"]), r["number"], r["pid"], r["tid"])
                               for r in rows if r["status"] == "record") == expected
