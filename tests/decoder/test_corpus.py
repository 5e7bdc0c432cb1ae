"""Every real .etl file of the corpus (tests/corpus) reads like dissect.etl reads it.

Counts per kind for every file equal dissect.etl's: live for the small files, and for the
big ones as recorded in tests/data/etl/dissect_counts.json by record_dissect_counts.py
(dissect needs up to a minute per big file). Small files are also compared record by
record (kind, size, raw timestamp, thread, process, provider, message number, payload),
and every TRACE_LOGFILE_HEADER fact against dissect's.
"""
from __future__ import annotations

import json
import pathlib
import uuid

import pytest

from dec_dissect import dissect_counts, dissect_records
from wpptrace.decoder.etlfile import EtlFile

REFERENCE = json.loads((pathlib.Path(__file__).resolve().parents[1] / "data" / "etl"
                        / "dissect_counts.json").read_text())
FILES = sorted(REFERENCE["files"])
#: dissect takes well under a second on these: compared live, record by record
LIVE = [f for f in FILES if REFERENCE["files"][f]["records"] <= 500]


def test_reference_lists_every_corpus_file(corpus):
    on_disk = sorted(p.relative_to(corpus).as_posix() for p in corpus.rglob("*.etl"))
    assert on_disk == FILES, "corpus changed: rerun tests/decoder/record_dissect_counts.py"


def our_counts(path) -> dict:
    with EtlFile(path) as etl:
        stats = etl.scan()
        first = len(etl.read_buffer(etl.buffer_index()[0]).records())
        assert etl.errors == [], etl.errors
        return {"by_kind": {k: n for k, n in stats.by_kind.items() if n},
                "records": stats.records, "buffer0_records": first,
                "buffers": stats.buffers, "compressed": stats.compressed_buffers}


@pytest.mark.parametrize("name", FILES)
def test_counts_per_kind_equal_dissect(corpus, name):
    ref = REFERENCE["files"][name]
    ours = our_counts(corpus / name)
    assert ours["by_kind"] == ref["by_kind"]
    assert ours["records"] == ref["records"]
    # the header buffer's records (incl. those past SavedOffset) are all there
    assert ours["buffer0_records"] == ref["buffer0_records"] >= 1


@pytest.mark.parametrize("name", LIVE)
def test_counts_equal_a_live_dissect_run(corpus, name):
    live = dissect_counts(corpus / name)
    assert {k: live[k] for k in ("by_kind", "records", "buffer0_records")} == {
        k: REFERENCE["files"][name][k] for k in ("by_kind", "records", "buffer0_records")}
    ours = our_counts(corpus / name)
    assert ours["by_kind"] == live["by_kind"] and ours["buffer0_records"] == live["buffer0_records"]


@pytest.mark.parametrize("name", LIVE)
def test_records_equal_dissect_field_by_field(corpus, name):
    theirs = dissect_records(corpus / name)
    with EtlFile(corpus / name) as etl:
        ours = list(etl.iter_records())
    assert len(ours) == len(theirs)
    for i, (o, t) in enumerate(zip(ours, theirs)):
        where = f"record {i} ({o!r})"
        assert o.kind == t["kind"], where
        assert o.size == t["size"], where
        assert o.timestamp == t["time"], where
        assert o.thread_id == t["tid"], where
        assert o.process_id == t["pid"], where
        if t["provider"] is not None:
            assert o.provider_id == t["provider"], where
        if t["kernel_provider"] is not None and o.provider_id is not None:
            assert o.provider_id == t["kernel_provider"], where
        if o.kind == "message":
            assert o.event_id == t["id"] and o.message_guid == o.provider_id, where
        elif o.kind == "event":
            # dissect's payload keeps the extended items; ours strips them
            assert bytes(o.extended_data) + bytes(o.user_data) == t["payload"], where
        else:
            assert bytes(o.user_data) == t["payload"], where


@pytest.mark.parametrize("name", FILES)
def test_logfile_header_facts_equal_dissect(corpus, name):
    from dissect.etl import ETL

    with open(corpus / name, "rb") as fh:
        lh = ETL(fh).logfile_header
        c = lh.header
        with EtlFile(corpus / name) as etl:
            h = etl.header
        assert h.valid
        assert (h.buffer_size, h.provider_version, h.number_of_processors, h.end_time,
                h.timer_resolution, h.maximum_file_size, h.log_file_mode, h.buffers_written,
                h.start_buffers, h.pointer_size, h.events_lost, h.cpu_speed_mhz, h.boot_time,
                h.perf_freq, h.start_time, h.clock_type, h.buffers_lost) == (
            c.BufferSize, c.ProviderVersion, c.NumberOfProcessors, c.EndTime,
            c.TimerResolution, c.MaximumFileSize, c.LogFileMode, c.BuffersWritten,
            c.StartBuffers, c.PointerSize, c.EventsLost, c.CpuSpeedInMHz, c.BootTime,
            c.PerfFreq, c.StartTime, c.ReservedFlags, c.BufferLost)
        assert h.version == (c.MajorVersion, c.MinorVersion, c.SubVersion, c.SubMinorVersion)
        assert (h.logger_name, h.log_file_name) == (lh.logger_name, lh.log_filename)
        assert h.header_timestamp == lh.system_header.time_delta


def test_corpus_header_facts_from_the_readme(corpus):
    """Facts the corpus README states, independently of dissect."""
    def header(rel):
        with EtlFile(corpus / rel) as etl:
            etl.scan()
            return etl.header, etl.stats

    h, st = header("etl/microsoft__perfview/smallEtlFile.etl")
    assert h.pointer_size == 4 and h.compressed and st.compressed_buffers == 1
    h, st = header("etl/microsoft__perfview/net.4.5.2.x64.etl")
    assert h.compressed and h.relogged and st.buffers == 360 and st.compressed_buffers == 359
    assert h.version == (6, 2, 2, 0) and h.provider_version == 9200
    h, _ = header("etl/airbus-cert__etl-parser/AMSITrace.etl")
    assert h.events_lost == 3 and h.provider_version == 18362
    h, _ = header("etl/jtmoon79__super-speedy-syslog-searcher/WindowsUpdate.20251008.140245.443.8.etl")
    assert h.events_lost == 41
    h, _ = header("etl/jtmoon79__super-speedy-syslog-searcher/waasmedic.20251005_113019_195.etl")
    assert h.circular
    h, _ = header("wpp/guscatalano__findneedle/wppemitter-sample.etl")
    assert (h.buffer_size, h.pointer_size, h.provider_version, h.log_file_mode) == (8192, 8, 26200, 0)
    assert h.version[:2] == (10, 0) and h.clock_type == 1 and h.perf_freq == 10_000_000


def test_wpp_messages_carry_what_the_corpus_readme_says(corpus):
    """wppemitter: 45 messages = 30 x number 10 + 15 x number 11, flags 0xAA, one GUID."""
    with EtlFile(corpus / "wpp/guscatalano__findneedle/wppemitter-sample.etl") as etl:
        messages = [r for r in etl.iter_records() if r.kind == "message"]
    assert len(messages) == 45
    assert sorted(r.event_id for r in messages) == [10] * 30 + [11] * 15
    assert {r.flags for r in messages} == {0xAA}
    assert {r.message_guid for r in messages} == {uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")}
    assert all(r.sequence is None and r.timestamp and r.thread_id and r.process_id for r in messages)
    # "WppEmitter work item id=N status=0xN": two ULONG arguments, N = 0..29 in order
    ids = [int.from_bytes(r.user_data[:4], "little") for r in messages if r.event_id == 10]
    assert ids == list(range(30))


def test_kernel_group_guids_equal_dissect_for_every_group():
    from dissect.etl.utils import lookup_guid

    from wpptrace.decoder.records import KERNEL_GROUP_GUIDS

    for group, guid in KERNEL_GROUP_GUIDS.items():
        assert lookup_guid(group, 0) == guid, hex(group)
    assert lookup_guid(3, 10) == KERNEL_GROUP_GUIDS[0x14]       # old image-load hook


@pytest.mark.parametrize("name", ["etl/microsoft__perfview/net.4.5.2.x64.etl",
                                  "etl/airbus-cert__etl-parser/ShutdownPerfDiagLogger.etl"])
def test_kernel_records_name_their_event_class(corpus, name):
    with EtlFile(corpus / name) as etl:
        kernel = [r for r in etl.iter_records() if r.kind in ("system", "perfinfo")]
    named = [r for r in kernel if r.provider_id is not None]
    assert len(named) > 0.9 * len(kernel)
