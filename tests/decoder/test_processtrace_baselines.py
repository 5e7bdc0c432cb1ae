"""Our ProcessTrace order against Windows' own: the PerfView baselines in the corpus were
printed by TraceEvent, which reads .etl files through Windows' OpenTrace/ProcessTrace.

Every EVENT line of a baseline (time in ms since the log-file header event, processor,
user data length, and process / thread id of provider events) is found
in our ordered records, in the same order, to the microsecond.
File order fails this on three of the files, so the check tells the orders apart.
"""
from __future__ import annotations

import re

import pytest

from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records

BASELINES = {  # .etl -> baseline (corpus etl/microsoft__perfview/)
    "net.4.5.2.x64.etl": "net.4.5.2.x64.baseline.txt",
    "net.4.5.2.x86.etl": "net.4.5.2.x86.baseline.txt",
    "gcevents.PerfViewData.etl": "gcevents.baseline.txt",
    "gcrundownevents.PerfViewData.clrRundown.etl": "gcrundownevents.baseline.txt",
    "primitive-types.etl": "primitive-types.baseline.txt",
}
EVENT = re.compile(r"EVENT ([\d,.]+): (.+?) PID=(-?\d+); TID=(-?\d+);.*?ProceNum=(\d+); "
                   r"DataLen=(\d+);")


def baseline_events(path) -> list[tuple]:
    """(ms, name, pid, tid, processor, data length) per EVENT line (ids as unsigned 32-bit:
    TraceEvent prints -1 for 0xFFFFFFFF)."""
    events = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("EVENT "):
            m = EVENT.match(line)
            assert m, line
            events.append((float(m[1].replace(",", "")), m[2], int(m[3]) & 0xFFFFFFFF,
                           int(m[4]) & 0xFFFFFFFF, int(m[5]), int(m[6])))
    return events


def unmatched(records, header, events, limit: int = 10) -> list:
    """Baseline events not found, in order, among the records (greedy subsequence match);
    stops after ``limit`` misses."""
    t0, freq = records[0].timestamp, header.perf_freq
    # TraceEvent rewrites kernel events' ids from their payloads: compare ids only for
    # provider events (EVENT_HEADER, EVENT_TRACE_HEADER records)
    ours = [((r.sort_timestamp - t0) * 1000 / freq, r.processor, len(r.user_data),
             r.process_id if r.kind in ("event", "full", "instance") else None, r.thread_id)
            for r in records]

    def same(o, ms, pid, tid, cpu, length):
        return (abs(o[0] - ms) < 0.0015 and o[1] == cpu and o[2] == length
                and (o[3] is None or (o[3], o[4]) == (pid, tid)))

    missing, i = [], 0
    for ms, name, pid, tid, cpu, length in events:
        j = i
        while j < len(ours) and not same(ours[j], ms, pid, tid, cpu, length):
            j += 1
        if j == len(ours):
            missing.append((ms, name, pid, tid, cpu, length))
            if len(missing) >= limit:
                break
        else:
            i = j + 1
    return missing


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_windows_processtrace_order_is_reproduced(corpus, name):
    folder = corpus / "etl" / "microsoft__perfview"
    events = baseline_events(folder / "baselines" / BASELINES[name])
    assert len(events) >= 6
    with EtlFile(folder / name) as etl:
        records = list(ordered_records(etl))
        header = etl.header
    assert unmatched(records, header, events) == []


def test_file_order_would_not_pass(corpus):
    folder = corpus / "etl" / "microsoft__perfview"
    events = baseline_events(folder / "baselines" / BASELINES["net.4.5.2.x64.etl"])
    with EtlFile(folder / "net.4.5.2.x64.etl") as etl:
        records = list(etl.iter_records())
        header = etl.header
    assert len(unmatched(records, header, events, limit=20)) == 20
