"""Writers held at exact steps of the core's lock-free paths (test points compiled in): a
record is never reserved in a buffer no slot holds, and a buffer's later generation is never
marked RETIRED by a writer retiring an earlier one, so the flusher never takes a buffer that
writers are filling. Every record logged is in the file."""
from __future__ import annotations

import collections
import struct

import pytest

import provider_etlcheck as etlcheck

ACTIVE = 1


def values_by_writer(path) -> dict[int, list[int]]:
    by_tag: dict[int, list[int]] = collections.defaultdict(list)
    for m in etlcheck.read(path).messages:
        tag, i = struct.unpack("<II", m.args)
        by_tag[tag].append(i)
    return {tag: sorted(v) for tag, v in by_tag.items()}


@pytest.mark.parametrize("mode", ["stale-writer", "stale-state"])
def test_a_held_writer_never_writes_into_a_buffer_no_slot_holds(core_races, tmp_path, mode):
    """It read the slot (and, in stale-state, the buffer's state); meanwhile its buffer was
    retired, flushed and taken by an install that then lost the race for the slot. Its record
    goes to the slot's buffer, not that one (which went back to the pool unwritten, losing the
    record without a count)."""
    path = tmp_path / f"{mode}.etl"
    result = core_races(mode, path)
    assert result == {"logged": 21, "lost": 0}
    assert values_by_writer(path) == {1: list(range(17)), 2: [0], 3: [0, 1], 4: [0]}


def test_a_writer_held_while_retiring_never_retires_its_buffers_next_generation(core_races, tmp_path):
    """Held between emptying the slot and marking the buffer RETIRED, while the buffer was
    flushed and an install took it again: the install's buffer stays ACTIVE and open, so a
    flush leaves it alone (it used to be flushed and freed while going into the slot)."""
    path = tmp_path / "stale-retire.etl"
    result = core_races("stale-retire", path)
    assert result["retired"] == result["flushed"] == result["prepared"]
    assert result["prepared"] & 0xFFFFFFFF == 0x48              # open, empty (its header only)
    assert (result["retired_phase"], result["flushed_phase"]) == (ACTIVE, ACTIVE)
    assert (result["logged"], result["lost"]) == (54, 0)
    assert values_by_writer(path) == {1: list(range(51)), 2: [0, 1], 4: [0]}


def test_a_writer_that_began_an_install_before_stop_is_written_or_fails(core_races, tmp_path):
    """Held in an install it began while the session ran, until the host stopped the session:
    its record is in the file, counted as lost, or TraceMessage failed; it used to succeed
    into a buffer installed after the flusher had left."""
    path = tmp_path / "stop-install.etl"
    result = core_races("stop-install", path)
    values = values_by_writer(path)
    assert values[1] == [0, 1, 2]
    assert result["logged"] == sum(len(v) for v in values.values()) + result["lost"]


def test_a_writer_held_in_the_first_install_across_stop_fails(core_races, tmp_path):
    """This process stopped the session while a writer was in the stream's first install: the
    memory it holds is zero pages now, where an empty slot of install count 0 looks like the
    one it read. TraceMessage fails; it used to succeed into the zero pages."""
    path = tmp_path / "stop-first.etl"
    assert core_races("stop-first", path) == {"logged": 0, "lost": 0}
    assert values_by_writer(path) == {}


def test_every_record_after_many_abandoned_ones_is_written(core_races, tmp_path):
    """65 records given up (their thread is gone) before 5 committed ones in one buffer: the
    65 are counted as lost and the 5 are in the file."""
    path = tmp_path / "many-abandoned.etl"
    assert core_races("many-abandoned", path) == {"logged": 5, "lost": 65}
    assert values_by_writer(path) == {1: [0, 1, 2, 3, 4]}


def test_records_between_two_given_up_unbegun_ones_are_written(core_races, tmp_path):
    """Two writers held between reserving and marking their records (all zero), each followed
    by a committed record, while a flush gives them up: the two are counted as lost, and the
    records after them are in the file (the first cut used to end the buffer, dropping both
    committed records uncounted)."""
    path = tmp_path / "unbegun.etl"
    assert core_races("unbegun", path) == {"logged": 5, "lost": 2}
    assert values_by_writer(path) == {1: [0, 1, 2]}



def test_live_writers_that_never_commit_are_given_up_together(core_races, tmp_path):
    """16 live threads that reserved a record and never commit it, in one buffer: a flush
    counts each as lost after one wait for them all (it used to give each after the first
    another 50 ms: 1.25 s here, and a debugged process's stopped threads held the session's
    flusher, which every process's buffers wait for, as long)."""
    path = tmp_path / "many-pending.etl"
    result = core_races("many-pending", path)
    assert (result["logged"], result["lost"]) == (0, 16)
    assert values_by_writer(path) == {}
    assert result["flush_ms"] < 1200    # 500 ms wait + one 50 ms grace; it was 1,250 ms at least


def test_writers_held_right_after_reserving_are_each_counted(core_races, tmp_path):
    """16 writers held right after reserving (their records all zero, so their sizes and how
    many there are unknown), in one buffer, while a flush gives them up: the buffer is
    quarantined, and once the writers go on the flusher finds their 16 records there and
    counts each as lost (it counted one for the whole span)."""
    path = tmp_path / "many-held.etl"
    result = core_races("many-held", path)
    assert result["lost_running"] == 16                            # found by the next flush
    assert (result["logged"], result["lost"]) == (16, 16)
    assert values_by_writer(path) == {}
    assert etlcheck.read(path).header["EventsLost"] == 16          # the file says so too
    assert result["flush_ms"] < 1200    # one 500 ms wait for the whole span


def test_writers_still_held_at_stop_count_a_record_each(core_races, tmp_path):
    """Three writers held right after reserving, side by side, given up by a flush; the middle
    one goes on, then the session stops with the other two still held: their zero stretches
    on either side of its record count one each, so all three are counted (the walk used to
    stop at the first zero word and count the span as one)."""
    path = tmp_path / "held-over-stop.etl"
    assert core_races("held-over-stop", path) == {"logged": 3, "lost": 3}
    assert values_by_writer(path) == {}
    assert etlcheck.read(path).header["EventsLost"] == 3
