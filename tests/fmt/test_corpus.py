"""The real findneedle WPP captures decode to exactly the expected messages, with full prefix lines.

Expected message text: tests/corpus/README.md (wpp/ table), as findneedle asserted it against
WDK tracefmt. The prefix fields (CPU, PID, TID, time) are checked against the same records read
independently with dissect.etl.
"""
from __future__ import annotations

import datetime

import pytest
from dissect.etl import ETL
from fmthelp import reference_lines, row_lines, run_fmt_capture

from wpptrace import tmf
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records
from wpptrace.decoder.timestamps import TimeConverter
from wpptrace.decoder.wpp import FileContext, WppDecoder, wpp_property


def _emitter_messages():
    out = []
    for i in range(30):
        out.append(f"WppEmitter work item id={i} status=0x{i & 0xff:x} phase=startup provider=WppEmitter")
        if i % 2 == 0:
            out.append(f"WppEmitter detail seq={i} note=processing-record value={i % 7919} category=Detail")
    return out


EXPECTED = {
    "wppemitter-sample.etl": _emitter_messages(),
    "wppstr-sample.etl": [
        "strtrace name=alpha id=0 tag=END",
        "strtrace name=bravo id=1 tag=END",
        "strtrace name=charlie id=2 tag=END",
        "widetrace user=root role=admin",
    ],
    "wpptypes-sample.etl": [
        "sint i=42 neg=-1000 i64=-5000000000",
        "uint u=4000000000 hex=0xabcdef x64=0xdeadbeefcafe",
        "ptr p=00007FF012345678 null=0000000000000000",
        "widths z=00042 h=0000beef",
        "hr=0x80070005(ERROR_ACCESS_DENIED) st=0xc0000022(STATUS_ACCESS_DENIED) "
        "guid=11223344-5566-7788-99aa-bbccddeeff00",
    ],
    "wppenum-sample.etl": [
        "b=0x00000001(true) irql=0x00000002(DPC)",
        "set=[1,3]",
    ],
}


def dissect_messages(path):
    """(cpu, pid, tid, datetime UTC) of every message record, read with dissect.etl."""
    out = []
    with open(path, "rb") as fh:
        etl = ETL(fh)
        for buf in etl.buffers():
            cpu = buf.header.ProcessorIndex
            for rec in buf:
                h = rec.header
                if type(h).__name__ == "MessageTraceHeader":
                    out.append((cpu, h.process_id, h.thread_id, h.timestamp))
    out.sort(key=lambda m: m[3])  # ProcessTrace order: by time (stable)
    return out


def tracefmt_time(dt: datetime.datetime) -> str:
    return dt.strftime("%m/%d/%Y-%H:%M:%S.") + "%03d" % (dt.microsecond // 1000)


def expected_lines(path, messages):
    refs = dissect_messages(path)
    assert len(refs) == len(messages)
    return ["[%d]%04X.%04X::%s [findneedle]%s" % (cpu, pid, tid, tracefmt_time(ts), text)
            for (cpu, pid, tid, ts), text in zip(refs, messages)]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_capture_full_lines(name, fmt_data, fmt_tmf):
    path = fmt_data / name
    code, out, err = run_fmt_capture(path, tmf_dirs=[str(fmt_tmf)], utc=True)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].endswith(" [Header]EventTrace")  # the log-file header event
    assert lines[1:] == expected_lines(path, EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_capture_noprefix_and_counts(name, fmt_data, fmt_tmf):
    tmfset = tmf.load(fmt_tmf)
    decoder = WppDecoder(tmfset, noprefix=True, utc=True)
    with EtlFile(fmt_data / name) as etl:
        lines = row_lines(decoder, etl)
    assert lines == ["EventTrace"] + EXPECTED[name]
    c = decoder.counters
    assert (c.messages, c.formatted, c.unknown, c.format_errors) == (len(EXPECTED[name]),) * 2 + (0, 0)
    assert c.non_wpp == 3 and c.headers == 1  # buffer 0 also holds system/perfinfo records
    assert c.events == c.messages + c.non_wpp + c.headers


@pytest.mark.parametrize("output", ["text", "csv", "csv-quoted", "jsonl"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_record_path_equals_row_path(name, output, fmt_data, fmt_tmf):
    """The formatting loop (rows, the C renderer) and each record formatted on its own
    (fmthelp.reference_lines: the csv and json modules over decode_record) agree, in every
    output format."""
    tmfset = tmf.load(fmt_tmf)
    fmt, quote_all = output.split("-")[0], output.endswith("quoted")
    results = []
    for helper in (row_lines, reference_lines):
        decoder = WppDecoder(tmfset, utc=True)
        with EtlFile(fmt_data / name) as etl:
            results.append("\n".join(helper(decoder, etl, fmt, quote_all)))
    assert results[0] == results[1]


@pytest.mark.parametrize("output", ["text", "jsonl"])
def test_one_decoder_formats_files_one_after_the_other(output, fmt_data, fmt_tmf):
    """A decoder reused for another file (another RowView, so other message key ids) prints
    what a fresh decoder prints: its key mirror follows the view's key table."""
    tmfset = tmf.load(fmt_tmf)
    names = ["wppenum-sample.etl", "wppstr-sample.etl", "wpptypes-sample.etl", "wppenum-sample.etl"]
    reused = WppDecoder(tmfset, utc=True)
    for name in names:
        with EtlFile(fmt_data / name) as etl:
            again = row_lines(reused, etl, output)
        with EtlFile(fmt_data / name) as etl:
            fresh = row_lines(WppDecoder(tmfset, utc=True), etl, output)
        assert again == fresh and fresh, name
    assert reused.counters.messages == sum(len(EXPECTED[name]) for name in names)


def _wpptypes_messages(fmt_data, fmt_tmf) -> list:
    """The messages of wpptypes-sample.etl, decoded one record at a time in file order."""
    path = fmt_data / "wpptypes-sample.etl"
    decoder = WppDecoder(tmf.load(fmt_tmf), utc=True)
    with EtlFile(path) as etl:
        ctx = FileContext.for_header(str(path), etl.header, TimeConverter(etl.header))
        return [decoder.decode_record(r, ctx) for r in ordered_records(etl) if r.kind == "message"]


def test_structured_messages_carry_prefix_facts(fmt_data, fmt_tmf):
    path = fmt_data / "wpptypes-sample.etl"
    msgs = _wpptypes_messages(fmt_data, fmt_tmf)
    refs = dissect_messages(path)
    assert [m.text for m in msgs] == EXPECTED["wpptypes-sample.etl"]
    for m, (cpu, pid, tid, ts) in zip(msgs, refs):
        assert (m.cpu, m.process_id, m.thread_id) == (cpu, pid, tid)
        assert m.time_text == tracefmt_time(ts)
        # dissect converts through a float: agree within a few microseconds
        micros = (ts - datetime.datetime(1601, 1, 1, tzinfo=datetime.timezone.utc)) // datetime.timedelta(microseconds=1)
        assert abs(m.filetime // 10 - micros) <= 5
        assert (m.component, m.function, m.level, m.source_file) == (
            "findneedle", "main", "T_ALL", "WppTypesEmitter.cpp")
    assert msgs[0].name == "WppTypesEmitter_cpp23" and msgs[0].source_line == "23"


def test_wpp_property_typed_values(fmt_data, fmt_tmf):
    """The TdhGetWppProperty-like accessor: arguments by their TMF name, as typed values."""
    import uuid

    msgs = _wpptypes_messages(fmt_data, fmt_tmf)
    sint, uint, ptr, widths, status = msgs
    assert sint.property("(int)42") == 42
    assert sint.property("(int)-1000") == -1000
    assert sint.property("(long long)-5000000000LL") == -5000000000
    assert uint.property("(unsigned)4000000000u") == 4000000000
    assert uint.property("(unsigned long long)0xDEADBEEFCAFEULL") == 0xDEADBEEFCAFE
    assert ptr.property("(void*)(ULONG_PTR)0x7ff012345678ULL") == 0x7FF012345678
    assert ptr.property_type("(void*)0") == "ItemPtr"
    assert status.property("&g") == uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00")
    assert status.property("(NTSTATUS)0xC0000022L") == 0xC0000022
    assert status.property("FormattedString") == status.text
    assert wpp_property(status, "LevelName") == "T_ALL"
    assert wpp_property(sint, "SequenceNum") == 0  # these captures log no sequence numbers
    assert status.property("FunctionName") == "main"
    assert status.property("TraceGuid") == uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea")
    with pytest.raises(KeyError):
        status.property("no such argument")
