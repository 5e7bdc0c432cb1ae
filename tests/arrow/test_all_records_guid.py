"""``--all-records``: a record that is not a WPP message has in its ``guid`` column the
provider ``wpptrace dump`` and ``decoder.open`` give it: the GUID it carries (an EVENT_HEADER
record's ProviderId, a classic event's class GUID), or for a system or perfinfo record, which
carries none, the kernel event class of its HookId's group (as Windows' ProviderId)."""
from __future__ import annotations

import collections
import json

import pyarrow.parquet as pq

from arrowhelp import dump_iso, fmt
from wpptrace import decoder
from wpptrace.cli import main


def test_event_records_keep_their_provider_guid(corpus_file, tmp_path, capsys):
    etl = corpus_file("SIH.20230422.034724.362.1.etl")
    out = tmp_path / "all.parquet"
    code, _, err = fmt([etl], [], "parquet", str(out), all_records=True)
    assert code == 0, err
    rows = pq.read_table(out).to_pylist()

    assert main(["dump", "--json", str(etl)]) == 0
    dumped = [json.loads(line) for line in capsys.readouterr().out.splitlines()[:-1]]
    expected = collections.Counter((d["timestamp"], d["id"], d["provider"])
                                   for d in dumped if d["kind"] == "event")

    events = [r for r in rows if r["kind"] == "event"]
    assert len(events) == sum(expected.values()) == 10
    assert all(r["guid"] is not None for r in events)
    assert collections.Counter((dump_iso(r["filetime"]), r["number"], r["guid"])
                               for r in events) == expected



def test_kernel_records_have_the_provider_decoder_open_gives_them(corpus_file, tmp_path):
    etl = corpus_file("diaghub-dotnetcore3.1-win-x64.diaghub.kernel.1.etl")
    out = tmp_path / "all.parquet"
    code, _, err = fmt([etl], [], "parquet", str(out), all_records=True)
    assert code == 0, err
    rows = [r for r in pq.read_table(out, columns=["filetime", "kind", "number", "guid"])
            .to_pylist() if r["kind"] != "message"]
    with decoder.open(etl) as records:
        expected = collections.Counter(
            (r.filetime, r.kind, r.event_id, None if r.provider_id is None else str(r.provider_id))
            for r in records if r.kind != "message")
    got = collections.Counter((r["filetime"], r["kind"], r["number"], r["guid"]) for r in rows)
    assert got == expected
    kinds = collections.Counter(r["kind"] for r in rows if r["guid"] is not None)
    assert kinds["system"] > 100 and kinds["perfinfo"] > 100, kinds
