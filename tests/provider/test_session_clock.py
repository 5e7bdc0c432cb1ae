"""The clock facts in a session's header (StartTime paired with the header event's raw time,
BootTime), taken while the core's clock reads are held as a preemption holds them, or after the
wall clock was stepped (test points compiled in): files a process writes at the same time
merge in the order it logged, and a clock step still shows."""
from __future__ import annotations

from wpptrace.decoder import api
from wpptrace.decoder.consumer_types import EVENT_TRACE_LOGFILE, PROCESS_TRACE_MODE_EVENT_RECORD
from wpptrace.decoder.etlfile import EtlFile

STEP = 1000 * 10_000_000        # what "stepped" sets the wall clock on by, in 100 ns ticks


def merged_values(paths) -> list[tuple[str, int]]:
    """ProcessTrace over both files: (file stem, logged value) of each message, in its order."""
    events, handles = [], []
    try:
        for p in paths:
            handles.append(api.OpenTrace(EVENT_TRACE_LOGFILE(
                LogFileName=str(p), ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD,
                EventRecordCallback=events.append, Context=p.stem)))
        assert api.ProcessTrace(handles) == 0
    finally:
        for h in handles:
            api.CloseTrace(h)
    return [(e.UserContext, int.from_bytes(e.UserData, "little"))
            for e in events if e.EventHeader.Flags & 0x8]    # the messages, not the headers


def clock_facts(path) -> tuple[int, int]:
    """(FILETIME minus raw clock, BootTime): how the file converts its times, its boot time."""
    with EtlFile(path) as f:
        h = f.header
        return h.start_time - h.header_timestamp, h.boot_time


def test_a_session_started_while_its_clock_reads_are_held_agrees_with_the_first(session_clock,
                                                                               tmp_path):
    """Every pair of clock reads b's start makes is held between its two reads. b still
    converts its times as a does (each file converts with its own header): the messages
    logged alternately to a and b merge in the order they were logged. (With StartTime read
    before a hold and the raw time after it, b's messages would be 10 ms early, all before
    a's.)"""
    assert session_clock("held-later", tmp_path) == {"logged": 100}
    a, b = tmp_path / "a.etl", tmp_path / "b.etl"
    assert clock_facts(b) == clock_facts(a)
    assert merged_values([a, b]) == [("ab"[v % 2], v) for v in range(100)]


def test_a_held_clock_read_is_not_the_one_used(session_clock, tmp_path):
    """The first pair of clock reads a's start makes is held 50 ms between its reads: the
    offset a uses is from an unheld pair (within 10 ms of the one this program measures; the
    held pair's is 50 ms off)."""
    measured = session_clock("held-first", tmp_path)["wall_minus_mono"]
    used, _ = clock_facts(tmp_path / "a.etl")
    assert abs(used - measured) < 100_000


def test_a_wall_clock_step_shows_in_sessions_started_after_it(session_clock, tmp_path):
    """The wall clock is set 1000 s on between the starts of a and b: b's times and boot time
    are 1000 s later (not a's offset kept), so all of b's messages merge after a's."""
    assert session_clock("stepped", tmp_path) == {"logged": 100}
    (a_offset, a_boot), (b_offset, b_boot) = clock_facts(tmp_path / "a.etl"), clock_facts(tmp_path / "b.etl")
    assert abs(b_offset - a_offset - STEP) < STEP // 10
    assert abs(b_boot - a_boot - STEP) < STEP // 10
    assert merged_values([tmp_path / "a.etl", tmp_path / "b.etl"]) == \
        [("a", v) for v in range(0, 100, 2)] + [("b", v) for v in range(1, 100, 2)]


def test_a_small_wall_clock_adjustment_between_starts_keeps_one_offset(session_clock, tmp_path):
    """The wall clock is set 200 us on between the starts of a and b (as a time service on a
    virtual machine sets it): b converts its times as a does, so the messages logged
    alternately to a and b merge in the order they were logged."""
    assert session_clock("nudged", tmp_path) == {"logged": 100}
    a, b = tmp_path / "a.etl", tmp_path / "b.etl"
    assert clock_facts(b) == clock_facts(a)
    assert merged_values([a, b]) == [("ab"[v % 2], v) for v in range(100)]


def test_a_wall_clock_step_of_a_few_milliseconds_shows(session_clock, tmp_path):
    """The wall clock is set 5 ms on between the starts of a and b: beyond what is taken as
    the same offset, so b's times and boot time are 5 ms later."""
    assert session_clock("stepped-5ms", tmp_path) == {"logged": 100}
    (a_offset, a_boot), (b_offset, b_boot) = clock_facts(tmp_path / "a.etl"), clock_facts(tmp_path / "b.etl")
    small = 5 * 10_000
    assert abs(b_offset - a_offset - small) < small // 10
    assert abs(b_boot - a_boot - small) < small // 10


def test_cycle_counter_times_convert_without_drift(session_clock, tmp_path):
    """Clock type 3 with a cycle counter of no whole number of MHz (2999.7): the header holds
    whole MHz (3000), and the counter is scaled to it, so the times every reader computes
    (raw / CpuSpeedInMHz, as Windows does for ClockType 3) are the counter's: 1, 60 and 1000 s
    after the start, and 1 s before it (message 0), within 1 us (unscaled they ran 100 ppm
    slow: 0.1 s in 1000 s)."""
    assert session_clock("cycles", tmp_path) == {"logged": 4}
    path = tmp_path / "a.etl"
    with EtlFile(path) as f:
        assert (f.header.clock_type, f.header.cpu_speed_mhz) == (3, 3000)
        start = f.header.start_time
    events = []
    handle = api.OpenTrace(EVENT_TRACE_LOGFILE(
        LogFileName=str(path), ProcessTraceMode=PROCESS_TRACE_MODE_EVENT_RECORD,
        EventRecordCallback=events.append))
    try:
        assert api.ProcessTrace([handle]) == 0
    finally:
        api.CloseTrace(handle)
    after = {int.from_bytes(e.UserData, "little"): e.EventHeader.TimeStamp - start
             for e in events if e.EventHeader.Flags & 0x8}
    assert after.keys() == {0, 1, 60, 1000}
    for value, ticks in after.items():
        seconds = value or -1
        assert abs(ticks - seconds * 10_000_000) <= 10, (seconds, ticks)
