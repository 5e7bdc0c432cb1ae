"""Raw clock -> FILETIME for the three clock types (docs/etl-format.md §6), against dissect."""
from __future__ import annotations

import datetime as dt
import io

import dec_etlgen as gen
from wpptrace.decoder import open as open_events
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.timestamps import TimeConverter, filetime_to_datetime


def header(**kw):
    return EtlFile(io.BytesIO(gen.etl_file([], **kw))).header


def test_worked_example_of_the_format_note():
    """§7: StartTime 133500000000000000, T0 9,995,000,000, PerfFreq 10^7: raw 10^10 is
    2024-01-17 21:20:00.5 UTC = FILETIME 133500000005000000."""
    clock = TimeConverter(header())
    assert clock.to_filetime(10_000_000_000) == 133_500_000_005_000_000
    assert clock.to_datetime(10_000_000_000) == dt.datetime(2024, 1, 17, 21, 20, 0, 500000,
                                                            tzinfo=dt.timezone.utc)


def test_other_qpc_frequency_is_exact_on_long_traces():
    clock = TimeConverter(header(perf_freq=3_579_545))
    # one hour of ticks later: exactly 36,000,000,000 FILETIME units
    assert clock.to_filetime(gen.T0 + 3_579_545 * 3600) == gen.START_TIME + 36_000_000_000


def test_system_time_clock_is_already_filetime():
    clock = TimeConverter(header(clock=2, t0=gen.START_TIME))
    assert clock.to_filetime(gen.START_TIME + 12345) == gen.START_TIME + 12345


def test_cpu_cycle_clock_uses_cpu_speed():
    clock = TimeConverter(header(clock=3, cpu_mhz=2500))
    assert clock.to_filetime(gen.T0 + 2_500_000_000) == gen.START_TIME + 10_000_000   # 1 s


def test_filetime_to_datetime_gives_none_past_what_a_datetime_holds_instead_of_raising():
    """Never another instant (a time past year 9999 clamped to 9999-12-31 would be one)."""
    assert filetime_to_datetime(2**63 - 1) is None
    assert filetime_to_datetime(-(2**63)) is None
    assert filetime_to_datetime(0) == dt.datetime(1601, 1, 1, tzinfo=dt.timezone.utc)


def test_event_times_equal_dissect_on_a_real_file(corpus):
    """dissect computes base + scale * raw in floats (ULP 32 units at 1.3e17): equal within
    that; ours is exact integer arithmetic."""
    from dissect.etl import ETL

    path = corpus / "wpp/guscatalano__findneedle/wppemitter-sample.etl"
    with open(path, "rb") as fh:
        etl = ETL(fh)
        theirs = [etl.get_filetime_for_event(r.header.time_delta) for r in etl]
    with open_events(path, ordered=False) as events:
        ours = [e.filetime for e in events]
    assert len(ours) == len(theirs) == 49
    assert all(abs(a - b) <= 64 for a, b in zip(ours, theirs))
