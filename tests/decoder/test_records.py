"""Every record header kind, 32 and 64 bit, decoded field by field (built files)."""
from __future__ import annotations

import io
import struct
import uuid

import pytest

import dec_etlgen as gen
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import parse_buffer

G1 = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")
G2 = uuid.UUID("11111111-2222-3333-4444-555555555555")


def records_of(data: bytes):
    with EtlFile(io.BytesIO(data)) as etl:
        recs = list(etl.iter_records())
        return recs, etl


@pytest.mark.parametrize("bits64", [True, False])
def test_every_kind(bits64):
    pebs = struct.pack("<Q", 0xABCDEF)
    pmc = struct.pack("<QQ", 7, 8)
    recs = [
        gen.system(0x0302, 100, 11, 22, b"SYS", bits64=bits64),
        gen.system(0x0510, 101, 11, 22, b"PEBS", bits64=bits64, version=0x8002, extra_items=pebs),
        gen.compact(0x0A01, 102, 33, 44, b"CMP", bits64=bits64),
        gen.perfinfo(0x0F2E, 103, b"PERF", bits64=bits64, version=0x0202, extra_items=pmc),
        gen.full(G1, 7, 104, 55, 66, b"FULL", bits64=bits64, level=3, version=2),
        gen.instance(G2, 9, 105, 4242, G1, b"INST", bits64=bits64),
        gen.event(G1, 77, 106, 88, 99, b"EVT", bits64=bits64, level=2, opcode=5, task=300,
                  keyword=0x8000000000000001, version=1, channel=16,
                  extended=[(1, b"A" * 16), (3, b"xyz")]),
        gen.message(10, G2, 107, b"ARGS", tid=5, pid=6, sequence=3),
        gen.message(11, None, None, b"C", tid=None, component=0xC0FFEE),
        gen.unknown(0x0D, 24),
    ]
    data = gen.etl_file([(1, 1, recs)], pointer_size=8 if bits64 else 4)
    got, etl = records_of(data)
    assert etl.errors == []
    assert etl.pointer_size == (8 if bits64 else 4)
    head, *rest = got
    assert head.kind == "system" and head.event_id == 0 and head.provider_id == gen.EVENT_TRACE_GUID
    kinds = [r.kind for r in rest]
    assert kinds == ["system", "system", "compact", "perfinfo", "full", "instance", "event",
                     "message", "message", "unknown"]
    sys_, pebs_r, cmp_, perf, full, inst, evt, msg, comp, unk = rest
    assert (sys_.hook_id, sys_.group, sys_.opcode, sys_.timestamp, sys_.thread_id,
            sys_.process_id, bytes(sys_.user_data)) == (0x0302, 3, 2, 100, 11, 22, b"SYS")
    assert bytes(pebs_r.user_data) == b"PEBS" and pebs_r.flags == 0x8002
    assert (cmp_.hook_id, cmp_.thread_id, cmp_.process_id, bytes(cmp_.user_data)) == (
        0x0A01, 33, 44, b"CMP")
    assert (perf.timestamp, perf.thread_id, perf.process_id, bytes(perf.user_data)) == (
        103, None, None, b"PERF")
    assert (full.provider_id, full.opcode, full.level, full.version, full.thread_id,
            bytes(full.user_data)) == (G1, 7, 3, 2, 55, b"FULL")
    assert (inst.provider_id, inst.opcode, inst.instance_id, bytes(inst.user_data)) == (
        G2, 9, 4242, b"INST")
    assert bytes(inst.raw[0x38:0x48]) == G1.bytes_le           # ParentGuid stays in raw
    assert (evt.provider_id, evt.event_id, evt.version, evt.channel, evt.level, evt.opcode,
            evt.task, evt.keyword, evt.thread_id, evt.process_id) == (
        G1, 77, 1, 16, 2, 5, 300, 0x8000000000000001, 88, 99)
    assert bytes(evt.user_data) == b"EVT" and len(evt.extended_data) == 24 + 16
    assert (msg.message_guid, msg.event_id, msg.sequence, msg.timestamp, msg.thread_id,
            msg.process_id, bytes(msg.user_data), msg.flags) == (
        G2, 10, 3, 107, 5, 6, b"ARGS", 0xAB)
    assert (comp.message_guid, comp.component_id, comp.timestamp, comp.thread_id,
            bytes(comp.user_data)) == (None, 0xC0FFEE, None, None, b"C")
    assert comp.sort_timestamp == 107         # no own time: ordered after its predecessor
    assert unk.size == 24 and unk.header_type == 0x0D
    assert etl.stats.by_kind["unknown"] == 1 and etl.stats.skipped == 0


def test_parse_buffer_on_a_bare_buffer():
    buf = gen.buffer([gen.message(10, G1, 5, b"x"), gen.perfinfo(0x0101, 6)], 1024, 1, 3)
    records, issues = parse_buffer(buf, 8, header_buffer=False)
    assert issues == []
    assert [(r.kind, r.processor, r.logger_id, r.offset) for r in records] == [
        ("message", 3, 7, 0x48), ("perfinfo", 3, 7, 0x48 + 48)]


def test_fill_marker_ends_the_events_and_alignment_is_eight():
    recs = [gen.message(1, G1, 5, b"123"), gen.message(2, G1, 6, b"")]
    buf = bytearray(gen.buffer(recs, 1024, 1, 0))
    struct.pack_into("<II", buf, 4, 1024, 0)          # SavedOffset says "all of it" ...
    struct.pack_into("<I", buf, 0x30, 1024)           # ... FilledBytes too: 0xFF fill stops us
    records, issues = parse_buffer(bytes(buf), 8, header_buffer=False)
    assert [r.offset for r in records] == [0x48, 0x48 + 48] and issues == []


def test_records_past_saved_offset_in_the_header_buffer_are_read():
    extra = gen.system(0x0050, gen.T0, payload=bytes(48))
    data = bytearray(gen.etl_file([(0, 1, [gen.message(1, G1, gen.T0 + 1)])], header_extra=[extra]))
    # SavedOffset covers only the log-file header record, FilledBytes both (as in 7 corpus files)
    first_len = 0x48 + len(gen._pad8(gen.logfile_header_record(4096, 2, 4)))
    struct.pack_into("<I", data, 4, first_len)
    got, etl = records_of(bytes(data))
    assert [r.kind for r in got[:2]] == ["system", "system"] and got[1].event_id == 0x50
    assert etl.errors == []


def test_dissect_agrees_on_the_built_kinds(tmp_path):
    from dec_dissect import dissect_counts

    recs = [gen.system(0x0302, 100), gen.compact(0x0A01, 102), gen.perfinfo(0x0F2E, 103),
            gen.full(G1, 7, 104), gen.instance(G2, 9, 105, 1, G1), gen.event(G1, 77, 106),
            gen.message(10, G2, 107, b"ARGS", sequence=3)]
    path = tmp_path / "kinds.etl"
    path.write_bytes(gen.etl_file([(1, 1, recs), (0, 2, recs)]))
    with EtlFile(path) as etl:
        etl.scan()
        ours = {k: n for k, n in etl.stats.by_kind.items() if n}
    assert ours == dissect_counts(path)["by_kind"]


def test_never_written_buffers_are_skipped_quietly():
    """Preallocated / circular files can hold all-zero buffer slots (DbgShell: unused)."""
    data = gen.etl_file([(0, 1, [gen.message(1, G1, 100)]), (1, 2, [gen.message(2, G1, 200)])])
    data = data[:4096] + bytes(4096) + data[4096:]
    got, etl = records_of(data)
    assert [r.event_id for r in got if r.kind == "message"] == [1, 2]
    assert etl.stats.empty_buffers == 1 and etl.stats.buffers == 3 and etl.errors == []


def test_32_bit_header_layout_facts():
    data = gen.etl_file([(0, 1, [gen.message(1, G1, 100)])], pointer_size=4, events_lost=5,
                        logger="Small", logfile="C:\\x.etl")
    _, etl = records_of(data)
    h = etl.header
    assert (h.pointer_size, h.events_lost, h.logger_name, h.log_file_name) == (4, 5, "Small", "C:\\x.etl")
    assert (h.perf_freq, h.start_time, h.clock_type, h.time_zone_bias) == (
        10_000_000, gen.START_TIME, 1, -60)
    assert len(h.raw) == 0x110 + 2 * (len("Small") + 1 + len("C:\\x.etl") + 1)


def test_parse_buffer_takes_a_compressed_buffer_as_stored(corpus_file):
    """A compressed buffer in its on-disk form (e.g. from a buffer stream) is decoded first."""
    with EtlFile(corpus_file("SelfDescribingSingleEvent.etl")) as etl:
        infos = etl.buffer_index()
        expected = [[bytes(r.raw) for r in etl.read_buffer(i).records()] for i in infos[1:]]
        stored = []
        for info in infos[1:]:
            etl._fh.seek(info.file_offset)
            stored.append(etl._fh.read(info.size_on_disk))
    for raw, want in zip(stored, expected):
        records, issues = parse_buffer(raw, 8, header_buffer=False)
        assert issues == [] and [bytes(r.raw) for r in records] == want and want


def test_resync_work_stays_linear_on_a_hostile_16_mb_buffer():
    """Every 8-byte slot a plausible record, broken at both ends: resynchronising may check
    chains, but within a budget (no quadratic blow-up)."""
    import time

    from wpptrace.decoder.records import walk

    size = 16 * 1024 * 1024
    body = bytearray(struct.pack("<I", 0x90000008) + bytes(4)) * ((size - 0x48) // 8)
    body[0:4] = b"\x11" * 4
    body[-8:-4] = b"\x22" * 4
    data = gen.buffer([], size, 1, 0)[:0x48] + bytes(body)
    t0 = time.thread_time()                     # CPU time: the bound is on work, not load
    _, stats = walk(data, 0x48, len(data), collect=False)
    assert time.thread_time() - t0 < 2
    assert stats.errors == 2 and stats.by_kind[6] == (size - 0x48) // 8 - 2


def test_unseekable_source_is_not_supported():
    import os

    from wpptrace.winerror import Win32Error

    r, w = os.pipe()
    try:
        with open(r, "rb") as pipe, pytest.raises(Win32Error) as exc:
            EtlFile(pipe)
        assert exc.value.winerror == 50
    finally:
        os.close(w)


def test_a_path_that_is_no_file_is_not_supported(tmp_path):
    """A named pipe (with no writer: opening it to read must not wait for one) or a character
    device given by path is refused as ERROR_NOT_SUPPORTED, saying why; a directory is
    ERROR_BAD_PATHNAME."""
    import os

    from wpptrace.winerror import Win32Error

    fifo = tmp_path / "capture.etl"
    os.mkfifo(fifo)
    for path in (fifo, "/dev/null"):
        with pytest.raises(Win32Error) as exc:
            EtlFile(path)
        assert exc.value.winerror == 50 and "read at its buffers' offsets" in str(exc.value)
    with pytest.raises(Win32Error) as exc:
        EtlFile(tmp_path)
    assert exc.value.winerror == 161


def test_missing_file_is_file_not_found(tmp_path):
    from wpptrace.winerror import Win32Error

    with pytest.raises(Win32Error) as exc:
        EtlFile(tmp_path / "absent.etl")
    assert exc.value.winerror == 2 and "absent.etl" in str(exc.value)
