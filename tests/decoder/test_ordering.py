"""ProcessTrace order: header first, per-processor streams by sequence, merged by time,
including the out-of-order cases the PEVENT_RECORD_CALLBACK page documents."""
from __future__ import annotations

import collections
import io
import uuid

import pytest

import dec_etlgen as gen
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records

G = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef")


def ordered(data: bytes):
    with EtlFile(io.BytesIO(data)) as etl:
        return list(ordered_records(etl)), etl


def numbers(records):
    return [r.event_id for r in records if r.kind == "message"]


def test_streams_sorted_by_sequence_and_merged_by_time():
    # flush order 0,2,1 like real files: processor 0 has buffers seq 1 and 3, processor 1 seq 2
    data = gen.etl_file([
        (0, 3, [gen.message(5, G, 500), gen.message(7, G, 700)]),
        (1, 2, [gen.message(2, G, 200), gen.message(4, G, 400), gen.message(6, G, 600)]),
        (0, 1, [gen.message(1, G, 100), gen.message(3, G, 300)]),
    ])
    records, etl = ordered(data)
    assert records[0].kind == "system" and records[0].event_id == 0     # header first
    assert numbers(records) == [1, 2, 3, 4, 5, 6, 7]
    assert etl.errors == [] and etl.stats.buffers == 4


def test_header_record_first_even_when_data_is_older():
    data = gen.etl_file([(0, 1, [gen.message(1, G, gen.T0 - 1000)])])
    records, _ = ordered(data)
    assert [r.kind for r in records] == ["system", "message"]


def test_records_without_timestamp_follow_their_predecessor():
    data = gen.etl_file([
        (0, 1, [gen.message(1, G, 100), gen.message(2, G, None), gen.message(3, G, 300)]),
        (1, 2, [gen.message(10, G, 150), gen.message(11, G, 250)]),
    ])
    records, _ = ordered(data)
    assert numbers(records) == [1, 2, 10, 11, 3]


def test_timestamp_ties_keep_processor_order():
    data = gen.etl_file([(2, 1, [gen.message(3, G, 100)]), (1, 2, [gen.message(2, G, 100)]),
                         (0, 3, [gen.message(1, G, 100)])])
    assert numbers(ordered(data)[0]) == [1, 2, 3]


def test_clock_set_back_within_a_stream_is_delivered_out_of_order_not_lost():
    """System-time clock adjusted backwards while logging (PEVENT_RECORD_CALLBACK page):
    events come out in stream order, out of time order, none dropped or reordered inside
    the stream."""
    data = gen.etl_file([
        (0, 1, [gen.message(1, G, 1000), gen.message(2, G, 1100), gen.message(3, G, 500)]),
        (1, 2, [gen.message(10, G, 800)]),
    ], clock=2)
    records, _ = ordered(data)
    got = numbers(records)
    assert sorted(got) == [1, 2, 3, 10]
    assert [n for n in got if n < 10] == [1, 2, 3]                   # stream order kept
    times = [r.timestamp for r in records if r.kind == "message"]
    assert times != sorted(times)                                    # out of time order


def test_overlapping_buffers_of_one_stream_follow_sequence_not_time():
    """ProcessTrace assumes the buffers of a stream do not overlap in time; when they do
    the later buffer still comes after the earlier one (page: 'Technical details')."""
    data = gen.etl_file([(0, 2, [gen.message(3, G, 150)]),
                         (0, 1, [gen.message(1, G, 100), gen.message(2, G, 200)])])
    assert numbers(ordered(data)[0]) == [1, 2, 3]


WPP = ["wpp/guscatalano__findneedle/wppemitter-sample.etl",
       "etl/microsoft__krabsetw/powershell.etl",
       "etl/microsoft__perfview/net.4.5.2.x64.etl",
       "etl/microsoft__perfview/gcevents.PerfViewData.etl"]


@pytest.mark.parametrize("name", WPP)
def test_real_files_ordered_output_is_a_time_sorted_permutation(corpus, name):
    with EtlFile(corpus / name) as etl:
        file_order = [(r.buffer_index, r.offset) for r in etl.iter_records()]
    with EtlFile(corpus / name) as etl:
        recs = list(ordered_records(etl))
        assert etl.errors == []
    assert sorted((r.buffer_index, r.offset) for r in recs) == sorted(file_order)
    assert recs[0].event_id == 0 and recs[0].buffer_index == 0 and recs[0].offset == 0x48
    # within each processor stream, buffer order follows the sequence numbers
    seqs = collections.defaultdict(list)
    index = {b.index: b for b in EtlFile(corpus / name).buffer_index()}
    for r in recs[1:]:
        info = index[r.buffer_index]
        if info.index and (not seqs[info.processor] or seqs[info.processor][-1] != info.sequence):
            seqs[info.processor].append(info.sequence)
    assert all(s == sorted(s) for s in seqs.values())
    # real Windows streams keep their time rules: the merge comes out sorted by time
    times = [r.sort_timestamp for r in recs[1:]]
    assert times == sorted(times)


def test_ties_across_buffer_boundaries_merge_like_a_heap():
    """Many equal timestamps, runs crossing buffer ends in two streams: the same order as a
    plain heap merge of the two streams (ties to the lower processor)."""
    import heapq
    import random

    rng = random.Random(3)
    streams = {0: [], 1: []}
    t = 100
    for i in range(600):
        t += rng.choice((0, 0, 0, 10))
        streams[i % 2 if rng.random() < 0.7 else (i + 1) % 2].append((i, t))
    buffers, seq = [], 0
    for cpu, items in streams.items():
        for k in range(0, len(items), 37):              # short buffers: runs cross them
            seq += 1
            buffers.append((cpu, seq, [gen.message(n, G, ts) for n, ts in items[k:k + 37]]))
    rng.shuffle(buffers)                                  # any flush order
    want = [n for n, _ in heapq.merge(streams[0], streams[1], key=lambda x: x[1])]
    got = numbers(ordered(gen.etl_file(buffers, buffer_size=4096))[0])
    assert got == want
