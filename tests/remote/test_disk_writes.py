"""Each source's file is written in a thread of its own: a stuck disk holds up only its
source; nothing is acknowledged (ACK, END's ACK, a WELCOME's resume point) before it is on
the disk; a failed write is told to the relay, which keeps its buffers, and its file is
still closed and reported once; a connection keeps its place while its buffers wait for
the disk; queues are bounded by not reading, never by dropping; a hung disk holds up
neither stop() nor the process's exit."""
from __future__ import annotations

import contextlib
import errno
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

from remote_helpers import (HERE, PATIENCE, HandRelay, _StuckClose, _StuckOpen, _StuckWrite,
                            data_buffers, header,
                            ended_relay, wait_until)

from wpptrace.remote import Collector, Relay
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_BUSY, ERROR_DISK_FULL, Win32Error


def _open(address, head: bytes, session: str, source_id=None) -> HandRelay:
    relay = HandRelay(address, len(head), session, source_id)
    assert relay.answer()[:2] == (P.FrameType.WELCOME, 0)
    relay.header(head)
    return relay


@contextlib.contextmanager
def _relay(collector, disk, head: bytes, session: str) -> Iterator[HandRelay]:
    """A relay of ``session`` sending to ``collector`` whose ``disk`` may hang: on the way out
    the disk answers again and the relay is closed (also when the test failed)."""
    relay = _open(collector.address, head, session)
    try:
        yield relay
    finally:
        disk.release.set()
        relay.close()


def _error(answer) -> tuple[int, str]:
    assert answer is not None and answer[0] == P.FrameType.ERROR, answer
    return P.decode_error(P.Frame(answer[0], 0, 0, answer[2]))


def _one_source(collector):
    (source,) = collector.sources
    return source


def _release_and_end_slow(collector, disk, slow: HandRelay, buffers) -> None:
    """The tail of the two tests below: the disk answers again, "slow" (buffer 1 sent) ends
    and is acknowledged; both files hold their buffers ("quick": the first four). Run in
    their ``finally`` (the disk is released and "slow" closed even when the test failed)."""
    disk.release.set()
    try:
        slow.end(2)
        assert slow.answer()[:2] == (P.FrameType.ACK, 2)
    finally:
        slow.close()
    assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
    paths = {s.session: s.path for s in collector.sources}
    assert data_buffers(paths["quick"]) == buffers[:4]
    assert data_buffers(paths["slow"]) == buffers[:1]


def _deliver_one(collector, head: bytes, buffers, session: str, source_id=None) -> None:
    """A relay of ``session`` (taking ``source_id`` over, if given) sends buffer 1 and END, and
    gets END's ACK."""
    relay = _open(collector.address, head, session, source_id)
    try:
        relay.buffer(1, buffers[0])
        relay.end(2)
        assert relay.answer()[:2] == (P.FrameType.ACK, 2)
    finally:
        relay.close()


def _fill_every_queue(collector, disk, stuck: HandRelay, other: HandRelay, buffers) -> None:
    """Two sources, "stuck" (whose writes hang) and "other", each send two buffers once both
    headers are taken (other's connection then waits for its next frame: had stuck's buffers
    been taken first, it would not be read at all). Stuck's two fill every queue together:
    other's first is read (its reading had begun), its second is not, other waiting for
    room."""
    assert collector.wait_for(lambda ss: len(ss) == 2 and all(s.path for s in ss), PATIENCE)
    stuck.buffer(1, buffers[0])
    stuck.buffer(2, buffers[1])
    assert disk.stuck.wait(PATIENCE)
    assert collector.wait_for(
        lambda ss: [s.buffers for s in ss if s.session == "stuck"] == [2], PATIENCE)
    other.buffer(1, buffers[0])
    other.buffer(2, buffers[1])
    assert collector.wait_for(
        lambda ss: [s.disk_waits for s in ss if s.session == "other"] == [1], PATIENCE)


def _end_behind_a_stuck_write(collector, disk, relay: HandRelay, buffers) -> None:
    """Buffers 1 to 4 and END (with the session's EndTime) sent while the first write hangs;
    returns once the source took the END."""
    for seq in range(1, 5):
        relay.buffer(seq, buffers[seq - 1])
    relay.end(5, end_time=133_000_000_100_000_000)
    assert disk.stuck.wait(PATIENCE)
    assert collector.wait_for(lambda ss: ss[0].ended, PATIENCE)


def test_a_stuck_write_holds_up_no_other_source(recorded, tmp_path, monkeypatch):
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch, only="slow")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        slow = _open(collector.address, head, "slow")
        try:
            slow.buffer(1, buffers[0])
            assert disk.stuck.wait(PATIENCE)
            quick = Relay(collector.address, buffer_size=len(head), name="quick",
                          linger=PATIENCE).start()
            try:
                quick.add(head)
                for buf in buffers[:4]:
                    quick.add(buf)
                quick.finish()
                assert quick.wait(PATIENCE) and quick.outcome == "ended", quick.outcome
            finally:
                quick.close()
            assert collector.wait_for(lambda ss: any(s.closed for s in ss), PATIENCE)
            assert [s.session for s in collector.sources if s.closed] == ["quick"]
            assert not disk.release.is_set()
        finally:
            _release_and_end_slow(collector, disk, slow, buffers)


def test_a_file_whose_creation_hangs_holds_up_no_other_source(recorded, tmp_path, monkeypatch):
    """The disk does not answer while a source's file is made: the other sources are read,
    written and acknowledged meanwhile; the source's connection is not read until its file
    exists, and then goes on."""
    head, buffers = recorded
    disk = _StuckOpen(monkeypatch, only="slow")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        slow = _open(collector.address, head, "slow")
        try:
            slow.buffer(1, buffers[0])
            assert disk.stuck.wait(PATIENCE)
            quick = _open(collector.address, head, "quick")
            try:
                for seq in range(1, 5):
                    quick.buffer(seq, buffers[seq - 1])
                quick.end(5)
                assert quick.answer()[:2] == (P.FrameType.ACK, 5)
            finally:
                quick.close()
            assert collector.wait_for(lambda ss: any(s.closed for s in ss), PATIENCE)
            assert [(s.session, s.buffers, s.path) for s in collector.sources
                    if not s.closed] == [("slow", 0, None)]     # not read meanwhile
        finally:
            _release_and_end_slow(collector, disk, slow, buffers)


def test_an_end_after_a_failed_write_gets_the_failure_not_its_ack(recorded, tmp_path,
                                                                  monkeypatch, caplog):
    """END came while buffer 1 was being written; that write fails: the relay is told so
    (it keeps its buffers: the stream is not delivered) and may deliver it again."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    disk.fail = Win32Error(ERROR_DISK_FULL)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        with _relay(collector, disk, head, "failing") as relay:
            relay.buffer(1, buffers[0])
            relay.buffer(2, buffers[1])
            relay.end(3)
            assert disk.stuck.wait(PATIENCE)
            assert collector.wait_for(lambda ss: ss[0].ended, PATIENCE)
            disk.release.set()
            code, reason = _error(relay.answer())
            assert code == ERROR_BUSY and reason.startswith("cannot write "), reason
            assert "ERROR_DISK_FULL" in reason
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
            source = _one_source(collector)
            assert not source.ended and collector.files_failed == 1
            assert source.file_error.startswith("writing it failed: ERROR_DISK_FULL (112)")
            # said once (and the file's summary), counted once: not as the relay's fault
            assert (collector.write_failures, collector.protocol_errors) == (1, 0)
            said = [r.getMessage() for r in caplog.records if "cannot write" in r.getMessage()
                    and r.levelname == "WARNING"]
            assert said == [f"failing@hand ({source.peer}): closed: {reason}"]
            disk.fail = None
            again = HandRelay(collector.address, len(head), "failing", relay.source_id)
            try:
                assert again.answer()[:2] == (P.FrameType.WELCOME, 0)   # a new file
            finally:
                again.close()


def test_a_write_that_fails_as_the_next_frame_is_read_is_what_the_relay_is_told(
        recorded, tmp_path, monkeypatch):
    """Buffer 1's write fails, its outcome coming in the turn in which buffer 2 was read,
    before the handler had it: Python 3.11's wait_for returns the frame and drops the
    failure's cancellation of the read. The handler went on with it, refused for the source
    the failure had closed: its relay was told that the file was being closed without its
    end, counted as a refused connection. It is told that the write failed."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    disk.fail = Win32Error(ERROR_DISK_FULL)
    failed = threading.Event()
    tell = collector_module._DiskWriter._tell

    def tell_and_see(self, fn, *args):
        tell(self, fn, *args)
        if args and args[-1]:               # (a failure's outcome: queued for the collector)
            failed.set()
    monkeypatch.setattr(collector_module._DiskWriter, "_tell", tell_and_see)
    read_frame = P.read_frame

    async def fail_as_buffer_2_is_read(reader, allowed, *args):
        frame = await read_frame(reader, allowed, *args)
        if frame.type == P.FrameType.BUFFER and frame.sequence == 2:
            disk.release.set()
            assert failed.wait(PATIENCE)    # (its turn comes before the handler's)
        return frame
    monkeypatch.setattr(P, "read_frame", fail_as_buffer_2_is_read)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        with _relay(collector, disk, head, "failing") as relay:
            relay.buffer(1, buffers[0])
            relay.buffer(2, buffers[1])
            code, reason = _error(relay.answer())
            assert code == ERROR_BUSY and reason.startswith("cannot write "), reason
            assert "ERROR_DISK_FULL" in reason
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        assert (collector.write_failures, collector.protocol_errors,
                collector.connections_refused) == (1, 0, 0)


def test_no_ack_passes_an_unwritten_buffer_with_two_connections_on_one_source(
        recorded, tmp_path, monkeypatch):
    """Nine buffers arrive while the first is being written: the STATS's ACK says only
    what is on the disk; a connection that takes the source over meanwhile is told to come
    back (ERROR_BUSY), and is welcomed once all of it is written, at the sequence after it;
    the connection it took the source from is told so (ERROR_BUSY), then closed."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        first = _open(collector.address, head, "acks")
        second = third = None
        try:
            for seq in range(1, 10):
                first.buffer(seq, buffers[seq - 1])
            first.stats(10)
            assert disk.stuck.wait(PATIENCE)
            assert first.answer()[:2] == (P.FrameType.ACK, 1)
            second = HandRelay(collector.address, len(head), "acks", first.source_id)
            assert _error(second.answer()) == (ERROR_BUSY,
                                               "this source's file is still being written")
            code, reason = _error(first.answer())   # (replaced: told why, then closed)
            assert code == ERROR_BUSY and reason.startswith("a new connection from "), reason
            assert first.answer() is None
            disk.release.set()
            assert collector.wait_for(lambda ss: ss[0].buffers == 9, PATIENCE)
            wait_until(lambda: collector._sources[first.source_id].queued_buffers == 0,
                       what="every buffer written")
            third = HandRelay(collector.address, len(head), "acks", first.source_id)
            assert third.answer()[:2] == (P.FrameType.WELCOME, 10)
            third.stats(10)
            assert third.answer()[:2] == (P.FrameType.ACK, 10)
            third.end(10)
            assert third.answer()[:2] == (P.FrameType.ACK, 10)
        finally:
            disk.release.set()
            first.close()
            for later in (second, third):
                if later is not None:
                    later.close()
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = _one_source(collector)
    assert source.ended and source.lost == 0 and data_buffers(source.path) == buffers[:9]


def test_a_failed_write_still_closes_its_file_and_reports_it_once(recorded, tmp_path,
                                                                  monkeypatch, caplog):
    """The write fails after its relay went (the source waits for it to come back): the
    source ends all the same, its file closed and said once."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    disk.fail = Win32Error(ERROR_DISK_FULL)
    ended = []
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   on_source_end=ended.append) as collector:
        with _relay(collector, disk, head, "failing") as relay:
            relay.buffer(1, buffers[0])
            relay.buffer(2, buffers[1])
            assert disk.stuck.wait(PATIENCE)
            relay.close()
            assert collector.wait_for(lambda ss: not ss[0].connected, PATIENCE)
            disk.release.set()
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = _one_source(collector)
    assert [s.source_id for s in ended] == [source.source_id]
    assert collector.files_failed == 1 and not source.ended
    assert (collector.write_failures, collector.protocol_errors) == (1, 0)
    assert source.file_error.startswith("writing it failed: ERROR_DISK_FULL (112)")
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert line.endswith(f"{source.path} may be incomplete: {source.file_error} (its "
                         f"header does not say the session stopped)")
    assert data_buffers(source.path) == []          # (closed: readable, the header only)


def test_a_relay_resuming_over_a_queued_buffer_that_then_fails_is_not_welcomed_past_it(
        recorded, tmp_path, monkeypatch):
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    disk.fail = Win32Error(ERROR_DISK_FULL)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        first = _open(collector.address, head, "resume")
        second = None
        try:
            first.buffer(1, buffers[0])
            assert disk.stuck.wait(PATIENCE)
            second = HandRelay(collector.address, len(head), "resume", first.source_id)
            assert collector.wait_for(lambda ss: ss[0].connections == 2, PATIENCE)
            disk.release.set()
            assert _error(second.answer())[0] == ERROR_BUSY       # not WELCOME 2
        finally:
            disk.release.set()
            first.close()
            if second is not None:
                second.close()
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)


def test_a_connection_keeps_its_place_while_its_buffers_wait_for_the_disk(
        recorded, tmp_path, monkeypatch):
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch, only="pending")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_connections=1) as collector:
        gone = _open(collector.address, head, "pending")
        gone.buffer(1, buffers[0])
        assert disk.stuck.wait(PATIENCE)
        gone.close()
        assert collector.wait_for(lambda ss: not ss[0].connected, PATIENCE)
        other = HandRelay(collector.address, len(head), "other")
        try:
            assert _error(other.answer()) == (ERROR_BUSY, "too many connections")
        finally:
            other.close()
            disk.release.set()
        wait_until(lambda: collector._active == 0, what="the place freed once written")
        again = HandRelay(collector.address, len(head), "pending", gone.source_id)
        try:
            assert again.answer()[:2] == (P.FrameType.WELCOME, 2)   # its place is free
        finally:
            again.close()


def test_reconnects_turned_away_on_a_stuck_disk_keep_no_place(recorded, tmp_path, monkeypatch):
    """A source's write is stuck and its relay went: the one connection that brought the
    buffer keeps its place; each reconnect is told ERROR_BUSY at once and keeps none, so
    another session from the same host still gets in."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch, only="stuck")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_per_address=3,
                   timeout=5.0) as collector:
        gone = _open(collector.address, head, "stuck")
        other = None
        try:
            gone.buffer(1, buffers[0])
            assert disk.stuck.wait(PATIENCE)
            gone.close()
            assert collector.wait_for(lambda ss: not ss[0].connected, PATIENCE)
            for _ in range(4):
                again = HandRelay(collector.address, len(head), "stuck", gone.source_id)
                try:
                    assert _error(again.answer()) == (
                        ERROR_BUSY, "this source's file is still being written")
                finally:
                    again.close()
            wait_until(lambda: collector._active == 1, what="the places of the refused freed")
            other = HandRelay(collector.address, len(head), "other")
            assert other.answer()[:2] == (P.FrameType.WELCOME, 0)
        finally:
            disk.release.set()
            if other is not None:
                other.close()
        wait_until(lambda: collector._active == 0, what="every place freed once written")


def test_a_full_queue_stops_reading_the_connection_and_drops_nothing(recorded, tmp_path,
                                                                    monkeypatch):
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_queued_per_source=3 * len(head)) as collector:
        with _relay(collector, disk, head, "bounded") as relay:
            for seq in range(1, 11):
                relay.buffer(seq, buffers[seq - 1])
            assert disk.stuck.wait(PATIENCE)
            assert collector.wait_for(lambda ss: ss[0].disk_waits == 1, PATIENCE)
            assert _one_source(collector).buffers == 3          # the rest not read yet
            disk.release.set()
            relay.end(11)
            answers = []
            while not answers or answers[-1][:2] != (P.FrameType.ACK, 11):
                answers.append(relay.answer())
                assert answers[-1] is not None and answers[-1][0] == P.FrameType.ACK
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = _one_source(collector)
    assert source.lost == 0 and data_buffers(source.path) == buffers[:10]


def test_all_queues_together_are_bounded_too(recorded, tmp_path, monkeypatch):
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch, only="stuck")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_queued=2 * len(head)) as collector:
        stuck = _open(collector.address, head, "stuck")
        other = _open(collector.address, head, "other")
        try:
            _fill_every_queue(collector, disk, stuck, other, buffers)
            assert [s.buffers for s in collector.sources if s.session == "other"] == [1]
            disk.release.set()
            other.end(3)
            assert other.answer()[:2] == (P.FrameType.ACK, 3)
        finally:
            disk.release.set()
            stuck.close()
            other.close()


def test_a_disk_that_makes_no_progress_fails_its_source_and_the_others_go_on(
        recorded, tmp_path, monkeypatch, caplog):
    """A stuck source's queue fills every queue together, so another source is not read;
    once the stuck writer made no progress for ``write_timeout`` its source fails as on a
    failed write (said and counted once, its relay told ERROR_BUSY, its queued bytes let
    go), and the other source is read and delivered."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch, only="stuck")
    ended = []
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_queued=2 * len(head),
                   write_timeout=PATIENCE, on_source_end=ended.append) as collector:
        stuck = _open(collector.address, head, "stuck")
        other = _open(collector.address, head, "other")
        try:
            _fill_every_queue(collector, disk, stuck, other, buffers)
            collector.write_timeout = 2.0           # (only now: "other" is held up)
            code, reason = _error(stuck.answer())   # (the disk is never released)
            assert code == ERROR_BUSY
            assert reason.endswith(".etl: the disk made no progress for 2 s"), reason
            other.end(3)
            assert other.answer()[:2] == (P.FrameType.ACK, 3)
            assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
            assert collector._queued_bytes == 0
        finally:
            disk.release.set()
            stuck.close()
            other.close()
        sources = {s.session: s for s in collector.sources}
    assert sorted(s.session for s in ended) == ["other", "stuck"]
    assert sources["other"].ended and data_buffers(sources["other"].path) == buffers[:2]
    failed = sources["stuck"]
    assert not failed.ended and reason == f"cannot write {failed.path}: the disk made no " \
                                          f"progress for 2 s"
    assert failed.file_error == ("writing it failed: the disk made no progress for 2 s; not "
                                 "closed: its thread still waits for the disk")
    assert (collector.write_failures, collector.protocol_errors, collector.files_failed) == (
        1, 0, 1)
    said = [r.getMessage() for r in caplog.records
            if r.levelname in ("WARNING", "ERROR") and "no progress" in r.getMessage()]
    assert len(said) == 2 and said[0].endswith(f"closed: {reason}")     # and its summary
    assert said[1].endswith(f"{failed.path} may be incomplete: {failed.file_error} (its "
                            f"header does not say the session stopped)")


def test_a_finished_write_wakes_only_the_connections_that_may_go_on(recorded, tmp_path,
                                                                    monkeypatch):
    """A connection that waits for its own source's full queue is not woken by another
    source's writes (only by its own source's progress)."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch, only="waiting")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_queued_per_source=2 * len(head)) as collector:
        waiting = _open(collector.address, head, "waiting")
        try:
            for seq in range(1, 4):
                waiting.buffer(seq, buffers[seq - 1])
            assert disk.stuck.wait(PATIENCE)
            assert collector.wait_for(lambda ss: ss[0].disk_waits == 1, PATIENCE)
            conn = collector._sources[waiting.source_id].connection
            wait_until(lambda: conn.room is not None, what="the connection waits for room")
            first = conn.room
            busy = ended_relay(collector.address, recorded, "busy", 8)
            try:
                assert busy.wait(PATIENCE) and busy.outcome == "ended", busy.outcome
            finally:
                busy.close()
            assert collector._readers == []     # not among those waiting for all queues
            # never woken: a wake-up would have ended this wait (and the re-check made another)
            assert conn.room is first and not first.done()
            disk.release.set()
            waiting.end(4)
            answers = [waiting.answer()]
            while answers[-1][:2] != (P.FrameType.ACK, 4):
                answers.append(waiting.answer())
                assert answers[-1] is not None and answers[-1][0] == P.FrameType.ACK
        finally:
            disk.release.set()
            waiting.close()


def test_a_stop_that_gives_up_counts_every_queued_buffer(recorded, tmp_path, monkeypatch):
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    relay = _open(collector.address, head, "abandoned")
    try:
        for seq in range(1, 4):
            relay.buffer(seq, buffers[seq - 1])
        assert disk.stuck.wait(PATIENCE)
        assert collector.wait_for(lambda ss: ss[0].buffers == 3, PATIENCE)
        (path,) = [s.path for s in collector.sources]
        left = collector.stop(timeout=0.2)
        assert (left.connections, left.files, left.buffers) == (1, [path], 3)
    finally:
        disk.release.set()
        assert collector.wait(PATIENCE)
        relay.close()


def test_a_stop_that_gives_up_names_the_file_whose_creation_hangs(recorded, tmp_path,
                                                                   monkeypatch, caplog):
    """The file being made is named in the one-line report; the header buffer it is made
    with is not a buffer received and not written."""
    head, buffers = recorded
    disk = _StuckOpen(monkeypatch, only="making")
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    relay = _open(collector.address, head, "making")
    try:
        relay.buffer(1, buffers[0])                 # (not read while the file is made)
        assert disk.stuck.wait(PATIENCE)
        path = str(tmp_path / "c" / f"hand_making_{relay.source_id.hex[:8]}.etl")
        left = collector.stop(timeout=0.2)
        assert (left.connections, left.files, left.buffers) == (1, [path], 0)
        (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert line.endswith(f": 1 connections not closed, 1 files not closed ({path}), 0 "
                             f"buffers received and not written")
    finally:
        disk.release.set()
        assert collector.wait(PATIENCE)
        relay.close()


_HUNG_DISK = """
import sys, threading
sys.path.insert(0, sys.argv[1])
from remote_helpers import HandRelay
from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module

stuck, never = threading.Event(), threading.Event()

class HungDisk(collector_module.EtlStreamFile):
    def write(self, buffer):
        stuck.set()
        never.wait()

collector_module.EtlStreamFile = HungDisk
head, buffer = open(sys.argv[2], "rb").read(), open(sys.argv[3], "rb").read()
collector = Collector(("127.0.0.1", 0), output_dir=sys.argv[4]).start()
relay = HandRelay(collector.address, len(head), "hung")
relay.answer()
relay.header(head)
relay.buffer(1, buffer)
stuck.wait()
print(collector.stop(0.2))
"""


def test_a_hung_disk_does_not_hold_up_the_process_exit(recorded, tmp_path):
    head, buffers = recorded
    (tmp_path / "head").write_bytes(head)
    (tmp_path / "buffer").write_bytes(buffers[0])
    done = subprocess.run([sys.executable, "-c", _HUNG_DISK, str(HERE), str(tmp_path / "head"),
                           str(tmp_path / "buffer"), str(tmp_path / "c")],
                          capture_output=True, text=True, timeout=PATIENCE)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 connections not closed, 1 files not closed"), done.stdout


def test_files_given_up_on_are_bounded_and_a_stop_names_those_still_stuck(
        recorded, tmp_path, monkeypatch):
    """A disk that never answers: each source given up on leaves a thread waiting for it.
    Once as many wait as connections may be open, no new file is tried (ERROR_BUSY: the
    relays keep their buffers); once the disk answers, files are made again. A stop while
    one still waits names its file."""
    head, buffers = recorded
    disk = _StuckOpen(monkeypatch, only="stuck")
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_connections=1,
                          write_timeout=0.5).start()
    try:
        stuck = _open(collector.address, head, "stuck")
        try:
            assert disk.stuck.wait(PATIENCE)
            code, reason = _error(stuck.answer())
            assert code == ERROR_BUSY and reason.endswith("the disk made no progress for 0.5 s")
        finally:
            stuck.close()
        (path,) = [s.path for s in collector.sources]
        wait_until(lambda: collector._active == 0, what="the stuck source's place freed")
        other = _open(collector.address, head, "other")
        try:
            assert _error(other.answer()) == (
                ERROR_BUSY, "cannot write a file for other@hand: 1 files still wait for a disk "
                            "that does not answer")
        finally:
            other.close()
        assert collector.write_failures == 2
        left = collector.stop(timeout=0.2)
        assert (left.connections, left.files, left.buffers) == (0, [path], 0)
    finally:
        disk.release.set()
        assert collector.wait(PATIENCE)


def test_once_the_disk_answers_files_are_made_again(recorded, tmp_path, monkeypatch):
    head, buffers = recorded
    disk = _StuckOpen(monkeypatch, only="stuck")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_connections=1,
                   write_timeout=PATIENCE) as collector:
        stuck = _open(collector.address, head, "stuck")
        try:
            assert disk.stuck.wait(PATIENCE)
            collector.write_timeout = 0.5       # (only now: no write has to succeed within it)
            assert _error(stuck.answer())[0] == ERROR_BUSY
        finally:
            stuck.close()
            disk.release.set()
        wait_until(lambda: collector._active == 0 and all(
            w.finished.is_set() for w in collector._abandoned_writers),
                   what="the stuck file's thread ended")
        collector.write_timeout = PATIENCE      # (the healthy file below takes what it takes)
        _deliver_one(collector, head, buffers, "again")
        assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        assert collector.stop(PATIENCE) is None
        paths = {s.session: s.path for s in collector.sources}
    assert data_buffers(paths["again"]) == buffers[:1]
    assert data_buffers(paths["stuck"]) == []       # made once the disk answered, then closed


def test_the_bound_on_files_given_up_on_holds_for_closes_given_up_on_too(
        recorded, tmp_path, monkeypatch, caplog):
    """Four sources wait for their relay, their files made (four times ``max_connections``:
    the most kept); each new HELLO closes the oldest, and every close hangs. Only
    ``max_connections`` of those closes are given up on: the others are kept (said once
    each, counted in ``give_ups_refused``), their sources open, until the disk answers."""
    head, buffers = recorded
    disk = _StuckClose(monkeypatch, every=True)
    caplog.set_level(logging.INFO, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_connections=1,
                   write_timeout=PATIENCE) as collector:
        try:
            for n in range(4):
                waiting = _open(collector.address, head, f"waiting{n}")
                waiting.buffer(1, buffers[0])
                waiting.close()
                wait_until(lambda: collector._active == 0, what="the buffer written")
            for n in range(4):
                newcomer = HandRelay(collector.address, len(head), f"new{n}")
                try:
                    assert newcomer.answer()[:2] == (P.FrameType.WELCOME, 0)
                finally:
                    newcomer.close()
                wait_until(lambda: collector._active == 0, what="the newcomer gone")
            assert disk.stuck.wait(PATIENCE)
            # (only now, every close asked: on a slow machine a close given up on before the
            # last newcomer came would leave it no source to close)
            collector.write_timeout = 0.5
            wait_until(lambda: len(collector._abandoned_writers)
                       + collector.give_ups_refused == 4, what="every hung close looked at")
            assert (len(collector._abandoned_writers), collector.give_ups_refused) == (1, 3)
            wait_until(lambda: sorted(s.closed for s in collector.sources if s.session.startswith(
                "waiting")) == [False, False, False, True], what="the one given up on settled")
        finally:
            disk.release.set()
        assert collector.wait_for(lambda ss: len(ss) == 8 and all(s.closed for s in ss),
                                  PATIENCE)
        assert collector.stop(PATIENCE) is None
        paths = [s.path for s in collector.sources if s.path]
    assert len(paths) == 4 and all(data_buffers(p) == buffers[:1] for p in paths)
    said = [r.getMessage() for r in caplog.records if "not given up on" in r.getMessage()]
    assert len(said) == 3 and all(r.endswith(
        ": its disk made no progress for 0.5 s, but 1 files given up on already wait for a "
        "disk that does not answer: not given up on (it keeps its place until its disk "
        "answers or one of those is done)") for r in said), said


def test_a_close_that_hangs_with_nothing_queued_is_given_up_on_after_write_timeout(
        recorded, tmp_path, monkeypatch, caplog):
    """Every buffer is written and END came, but the file's close (its last header, the
    flush) does not return: after ``write_timeout`` the close is given up on as one that
    failed (said once, counted), the relay gets END's ACK and the connection gives its place
    back; the thread closes the file once the disk answers."""
    head, buffers = recorded
    disk = _StuckClose(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=PATIENCE) as collector:
        with _relay(collector, disk, head, "hung") as relay:
            relay.buffer(1, buffers[0])
            relay.end(2)
            assert disk.stuck.wait(PATIENCE)
            collector.write_timeout = 1.0       # (only now: the file and buffer 1 are written)
            assert relay.answer()[:2] == (P.FrameType.ACK, 2)
            wait_until(lambda: collector._active == 0, what="the connection's place")
            source = _one_source(collector)
            assert (source.closed, source.ended, collector.files_failed) == (True, True, 1)
            assert source.file_error == ("closing it did not finish within 1 s (its thread "
                                         "still waits for the disk)")
            assert not disk.release.is_set()
        wait_until(lambda: all(w.finished.is_set() for w in collector._abandoned_writers),
                   what="the close's thread")
        assert collector.stop(PATIENCE) is None
    assert data_buffers(source.path) == buffers[:1]
    said = [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "did not finish" in r.getMessage()]
    assert len(said) == 1 and f"{source.path} may be incomplete: {source.file_error}" in said[0]


def test_a_close_given_up_on_whose_disk_answers_before_it_settles_is_no_clean_stop(
        recorded, tmp_path, monkeypatch, caplog):
    """Every buffer is written and END came with the session's EndTime, but the close hangs
    and is given up on; the disk answers right after the give-up, before the collector
    settles it: the header carries the EndTime, yet the source is not ``stopped`` (its close
    was given up on, as it would be had the disk answered later)."""
    head, buffers = recorded
    disk = _StuckClose(monkeypatch)
    abandon = collector_module._DiskWriter.abandon

    def abandon_then_answer(writer, reason: str) -> None:
        abandon(writer, reason)
        disk.release.set()                  # (before the loop's next turn runs the settle)
        assert writer.finished.wait(PATIENCE)

    monkeypatch.setattr(collector_module._DiskWriter, "abandon", abandon_then_answer)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=PATIENCE) as collector:
        with _relay(collector, disk, head, "answered") as relay:
            relay.buffer(1, buffers[0])
            relay.end(2, end_time=133_000_000_100_000_000)
            assert disk.stuck.wait(PATIENCE)
            collector.write_timeout = 0.5       # (only now: the close asked has END's time)
            assert relay.answer()[:2] == (P.FrameType.ACK, 2)
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = _one_source(collector)
        assert collector.files_failed == 1
        assert collector.stop(PATIENCE) is None
    assert header(source.path).end_time != 0           # (the session stopped, it says)
    assert source.file_error.startswith("closing it did not finish within 0.5 s")
    assert source.stopped is False
    said = [r.getMessage() for r in caplog.records if "may be incomplete" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(                # (not "does not say")
        "(given up on: not a clean stop, though its header may come to say the session "
        "stopped if the disk answers)")


def _given_up_summary(caplog) -> str:
    (said,) = [r.getMessage() for r in caplog.records if "may be incomplete" in r.getMessage()]
    return said


def test_a_creation_given_up_on_says_its_header_does_not_say_the_session_stopped(
        recorded, tmp_path, monkeypatch, caplog):
    """The file's creation hangs and is given up on: its close (if the disk answers) can
    only write EndTime 0, so the summary never says the header may come to say the session
    stopped."""
    head, _ = recorded
    disk = _StuckOpen(monkeypatch, only="hungmade")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=0.5) as collector:
        with _relay(collector, disk, head, "hungmade") as relay:
            assert disk.stuck.wait(PATIENCE)
            assert _error(relay.answer())[0] == ERROR_BUSY
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
            (writer,) = collector._abandoned_writers
        assert writer.finished.wait(PATIENCE)
        source = _one_source(collector)
    assert (source.stopped, writer.end_time_written) == (False, 0)
    said = _given_up_summary(caplog)
    assert said.endswith(f"{source.path} may be incomplete: writing it failed: the disk made "
                         f"no progress for 0.5 s; not closed: its thread still waits for the "
                         f"disk (its header does not say the session stopped)"), said


def test_a_close_given_up_on_without_end_says_its_header_does_not_say_the_session_stopped(
        recorded, tmp_path, monkeypatch, caplog):
    """Every buffer is written, but the relay goes without END and does not come back: the
    file's close (EndTime 0) hangs and is given up on; the summary says the header does not
    say the session stopped (no END: it never can), and it does not once the disk answers."""
    head, buffers = recorded
    disk = _StuckClose(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), resume_window=0.2,
                   write_timeout=PATIENCE) as collector:
        with _relay(collector, disk, head, "noend") as relay:
            relay.buffer(1, buffers[0])

            def written() -> bool:              # (every STATS is answered with an ACK)
                relay.stats(2)
                return relay.answer()[:2] == (P.FrameType.ACK, 2)
            wait_until(written, what="buffer 1 written")
            relay.close()                       # (gone, and not back in time)
            assert disk.stuck.wait(PATIENCE)
            collector.write_timeout = 0.5       # (only now: the file and buffer 1 are written)
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
            (writer,) = collector._abandoned_writers
        assert writer.finished.wait(PATIENCE)
        source = _one_source(collector)
    assert (source.ended, source.stopped, writer.end_time_written) == (False, False, 0)
    assert header(source.path).end_time == 0
    said = _given_up_summary(caplog)
    assert said.endswith(f"{source.path} may be incomplete: closing it did not finish within "
                         f"0.5 s (its thread still waits for the disk) (its header does not "
                         f"say the session stopped)"), said


def test_a_file_given_up_on_after_end_is_not_closed_as_a_clean_stop(recorded, tmp_path,
                                                                    monkeypatch):
    """END came while the first buffer's write hangs; the source is given up on. Its writer
    keeps no buffer queued for a disk that may never answer (only the file's close), and
    once the disk answers the file is closed with EndTime 0 (not the session's: it lacks
    buffers of the stream), those buffers counted in its header's BuffersLost."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=PATIENCE) as collector:
        with _relay(collector, disk, head, "after") as relay:
            _end_behind_a_stuck_write(collector, disk, relay, buffers)
            collector.write_timeout = 0.5       # (only now: the close asked has END's time)
            code, reason = _error(relay.answer())
            assert code == ERROR_BUSY and reason.endswith("the disk made no progress for 0.5 s")
            (writer,) = collector._abandoned_writers
            assert writer._work.qsize() == 1    # its close, none of the buffers
            disk.release.set()
            assert writer.finished.wait(PATIENCE)
        source = _one_source(collector)
    h = header(source.path)
    assert (h.end_time, h.buffers_written, h.buffers_lost) == (0, 2, 3)
    assert data_buffers(source.path) == buffers[:1]
    assert (source.lost, source.unwritten) == (h.buffers_lost, 3)
    assert (source.ended, source.stopped) == (False, False)     # as the header says


def _given_up_then_the_write_fails(recorded, tmp_path, monkeypatch, name: str):
    """A relay's END queued behind a write that hangs on the disk; the source given up on
    (ERROR_BUSY, its file closed in the stats); then the disk answers the write under way with
    EIO and the writer given up on finishes. (source, that writer)."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=PATIENCE) as collector:
        with _relay(collector, disk, head, name) as relay:
            _end_behind_a_stuck_write(collector, disk, relay, buffers)
            collector.write_timeout = 0.5
            assert _error(relay.answer())[0] == ERROR_BUSY
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
            (writer,) = collector._abandoned_writers
            disk.fail = OSError(errno.EIO, "Input/output error")
            disk.release.set()
            assert writer.finished.wait(PATIENCE)
        source = _one_source(collector)
    return source, writer


def test_a_write_under_way_when_its_file_was_given_up_on_that_fails_later_is_counted(
        recorded, tmp_path, monkeypatch, caplog):
    """As above, but the write under way when the file was given up on fails once the disk
    answers: the stats were final then (the buffers dropped when it was given up on), but
    the file's header counts what the file lacks, that buffer too, and the difference is
    said."""
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    source, _writer = _given_up_then_the_write_fails(recorded, tmp_path, monkeypatch, "laterfail")
    h = header(source.path)
    assert (h.end_time, h.buffers_written, h.buffers_lost) == (0, 1, 4)
    assert data_buffers(source.path) == []
    assert (source.lost, source.unwritten, source.stopped) == (3, 3, False)
    said = [r.getMessage() for r in caplog.records if "under way" in r.getMessage()]
    assert said == [f"{source.label}: {source.path}: the file lacks 4 buffers, 1 more than its source's summary "
                    f"said (the write under way when it was given up on was not made once the "
                    f"disk answered)"]


def test_a_file_given_up_on_whose_close_then_fails_claims_no_count_in_its_header(
        recorded, tmp_path, monkeypatch, caplog):
    """As above, but the file's close fails too once the disk answers: its header was not
    written, so nothing is said about what it counts (the source's summary said the file may
    be incomplete)."""
    def close_fails(self, end_time=0):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(collector_module.EtlStreamFile, "close", close_fails)
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    source, writer = _given_up_then_the_write_fails(recorded, tmp_path, monkeypatch, "closefails")
    assert (writer.end_time_written, source.unwritten) == (None, 3)
    said = [r.getMessage() for r in caplog.records]
    assert [m for m in said if "may be incomplete" in m], said
    assert not [m for m in said if "lacks" in m or "under way" in m], said


def test_a_write_that_fails_after_end_leaves_a_file_and_stats_that_say_no_clean_stop(
        recorded, tmp_path, monkeypatch, caplog):
    """END came while the first write waits for the disk; then the writes fail (a full
    disk): the file is closed with EndTime 0, and the source's stats and summary say the
    same (not stopped), with every buffer not written counted."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    caplog.set_level(logging.INFO, logger="wpptrace.remote.collector")
    ends = []
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   on_source_end=ends.append) as collector:
        with _relay(collector, disk, head, "failedend") as relay:
            _end_behind_a_stuck_write(collector, disk, relay, buffers)
            disk.fail = OSError(errno.ENOSPC, "No space left on device")
            disk.release.set()
            assert _error(relay.answer())[0] == ERROR_BUSY
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
    (source,) = ends
    h = header(source.path)
    assert (h.end_time, h.buffers_lost) == (0, 4)
    assert (source.ended, source.stopped, source.lost, source.unwritten) == (False, False, 4, 4)
    said = [r.getMessage() for r in caplog.records if "may be incomplete" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith("(its header does not say the session stopped)")


def test_the_buffers_a_failed_write_leaves_out_are_lost_in_the_stats_as_in_the_header(
        recorded, tmp_path, monkeypatch, caplog):
    """The first buffer's write fails (a full disk) and the three queued behind it are not
    tried; with a gap of one before the last, the file's header counts five lost, and so
    do the source's stats (and its summary)."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    caplog.set_level(logging.INFO, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        with _relay(collector, disk, head, "unwritten") as relay:
            for seq in (1, 2, 3, 5):
                relay.buffer(seq, buffers[seq - 1])
            assert disk.stuck.wait(PATIENCE)
            assert collector.wait_for(lambda ss: ss[0].buffers == 4, PATIENCE)
            disk.fail = OSError(errno.ENOSPC, "No space left on device")
            disk.release.set()
            assert _error(relay.answer())[0] == ERROR_BUSY
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = _one_source(collector)
    h = header(source.path)
    assert (h.buffers_written, h.buffers_lost) == (1, 5)
    assert (source.lost, source.sequence_gaps, source.unwritten) == (5, 1, 4)
    said = [r.getMessage() for r in caplog.records if "may be incomplete" in r.getMessage()]
    assert len(said) == 1 and "5 lost (relay dropped 0, session lost 0, not written 4)" in said[0]


def _raising_once(monkeypatch, name: str) -> list:
    """Makes ``_Source.<name>`` raise RuntimeError the first time it is called (a defect in
    one source's step), and work after; the list records the calls."""
    from wpptrace.remote import collector as collector_module

    original = getattr(collector_module._Source, name)
    calls = []

    def step(self, *args):
        calls.append(args)
        if len(calls) == 1:
            raise RuntimeError("a defect in one step")
        return original(self, *args)
    monkeypatch.setattr(collector_module._Source, name, step)
    return calls


def test_a_step_that_raises_does_not_end_the_watch_on_stuck_disks(recorded, tmp_path,
                                                                   monkeypatch, caplog):
    """Giving up on a source raises once: logged once, and the watch goes on (the source
    is given up on at its next pass)."""
    head, buffers = recorded
    disk = _StuckWrite(monkeypatch)
    calls = _raising_once(monkeypatch, "stalled")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=PATIENCE) as collector:
        with _relay(collector, disk, head, "raising") as relay:
            relay.buffer(1, buffers[0])
            assert disk.stuck.wait(PATIENCE)
            collector.write_timeout = 0.5       # (only now: the file is made)
            code, reason = _error(relay.answer())
            assert code == ERROR_BUSY and reason.endswith("the disk made no progress for 0.5 s")
    assert len(calls) == 2
    (said,) = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert said.getMessage() == "raising@hand: giving up on its disk failed"


def test_a_step_that_raises_does_not_end_the_watch_on_relays_gone(recorded, tmp_path,
                                                                  monkeypatch, caplog):
    """Closing the file of a source whose relay did not come back raises once: logged
    once, and the file is closed at the next pass."""
    head, buffers = recorded
    calls = _raising_once(monkeypatch, "finish")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   resume_window=0.2) as collector:
        relay = _open(collector.address, head, "gone")
        relay.buffer(1, buffers[0])
        assert collector.wait_for(lambda ss: ss[0].buffers == 1, PATIENCE)
        relay.close()
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
    assert len(calls) >= 2
    (said,) = [r for r in caplog.records if r.levelname == "ERROR" and r.exc_info]
    assert said.getMessage() == ("gone@hand: closing it after its relay did not come back "
                                 "failed")


class _ViewWhoseCloseRaises:
    """A live output whose views take every buffer and whose close raises (a thread that
    cannot be started, say)."""

    skipped = 0                 # (as a view's: buffers it skipped, read as it closes)

    def __init__(self):
        self.closes = 0

    def open(self, label, header):
        return self

    def add(self, buffer):
        return True

    def close(self):
        self.closes += 1
        raise RuntimeError("can't start new thread")

    def join(self, timeout=None):
        return []                   # (LiveView.join: the views not done)


def test_a_live_view_whose_close_raises_does_not_keep_the_file_open(recorded, tmp_path,
                                                                   caplog):
    """The relay did not come back and the source's live view cannot be closed: said once,
    and the file is still closed, the source finished (a relay coming back is not told the
    file is being closed forever)."""
    head, buffers = recorded
    live = _ViewWhoseCloseRaises()
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), live=live,
                   resume_window=0.2) as collector:
        relay = _open(collector.address, head, "viewraises")
        relay.buffer(1, buffers[0])
        assert collector.wait_for(lambda ss: ss[0].buffers == 1, PATIENCE)
        relay.close()
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = _one_source(collector)
        assert not collector._sources
    assert live.closes == 1
    assert data_buffers(source.path) == buffers[:1]
    said = [r for r in caplog.records if "live view" in r.getMessage()]
    assert len(said) == 1 and said[0].getMessage() == (
        "viewraises@hand: closing its live view failed: can't start new thread")


def test_a_stop_snapshot_never_counts_the_header_being_made(recorded, tmp_path, monkeypatch):
    """A stop gives up while the collector's thread is in the middle of taking a file's
    creation: the header it was made with is not among the buffers not written."""
    from wpptrace.remote import collector as collector_module

    head, buffers = recorded
    inside, go_on = threading.Event(), threading.Event()
    original = collector_module._Source._done_with

    def done_with(self, size):
        original(self, size)
        if self.creating:                   # (taking the creation's outcome)
            inside.set()
            go_on.wait(PATIENCE)
    monkeypatch.setattr(collector_module._Source, "_done_with", done_with)
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    relay = None
    try:
        relay = _open(collector.address, head, "snapshot")
        assert inside.wait(PATIENCE)
        left = collector.stop(timeout=0.2)
        assert left is not None and left.buffers == 0
    finally:
        go_on.set()
        assert collector.wait(PATIENCE)
        if relay is not None:
            relay.close()


def test_a_tiny_write_timeout_does_not_have_the_watch_run_without_pause(tmp_path,
                                                                       monkeypatch):
    """The watch on stuck disks pauses a quarter of write_timeout between looks, at most 1 s
    and at least 0.05 s: the pauses a running collector's watch takes are looked at."""
    import asyncio

    from wpptrace.remote import collector as collector_module

    pauses = []
    sleep = asyncio.sleep

    async def recorded_sleep(delay, *args, **kwargs):
        if asyncio.current_task().get_coro().__name__ == "_watch_writers":
            pauses.append(delay)
        return await sleep(delay, *args, **kwargs)
    monkeypatch.setattr(collector_module.asyncio, "sleep", recorded_sleep)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=1e-6):
        wait_until(lambda: len(pauses) >= 3, what="the watch's pauses")
    assert set(pauses) == {0.05}
    assert collector_module._watch_period(60.0) == 1.0
    assert collector_module._watch_period(2.0) == 0.5


def _first_creation_hangs(monkeypatch, then: OSError | None = None
                          ) -> tuple[threading.Event, threading.Event]:
    """The first file a collector makes hangs while it is made (the first event returned set
    then) until the second event is set; then it fails with ``then`` if given, or is made."""
    stuck, release = threading.Event(), threading.Event()
    first = [True]

    class FirstOpenHangs(collector_module.EtlStreamFile):
        def __init__(self, path, header_buffer):
            if first and first.pop():
                stuck.set()
                release.wait(PATIENCE)
                if then is not None:
                    raise then
            super().__init__(path, header_buffer)
    monkeypatch.setattr(collector_module, "EtlStreamFile", FirstOpenHangs)
    return stuck, release


def test_a_file_whose_creation_was_given_up_on_keeps_its_name(recorded, tmp_path,
                                                              monkeypatch):
    """The first file of a source hangs while it is made and is given up on; its relay comes
    back and gets a new file, under another name: the one the failed source reports is the
    one its thread makes once the disk answers (header only), never the new file."""
    head, buffers = recorded
    stuck, release = _first_creation_hangs(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_connections=2,
                   write_timeout=PATIENCE) as collector:
        gone = _open(collector.address, head, "named")
        try:
            assert stuck.wait(PATIENCE)
            collector.write_timeout = 0.5       # (only now: no write has to succeed within it)
            assert _error(gone.answer())[0] == ERROR_BUSY
        finally:
            gone.close()
        (failed,) = collector.sources
        collector.write_timeout = PATIENCE      # (the new file below takes what it takes)
        try:
            _deliver_one(collector, head, buffers, "named", gone.source_id)
        finally:
            release.set()
        wait_until(lambda: all(w.finished.is_set() for w in collector._abandoned_writers),
                   what="the given-up creation's thread")
        assert collector.wait_for(lambda ss: len(ss) == 2 and all(s.closed for s in ss),
                                  PATIENCE)
        delivered = collector.sources[1]
    assert delivered.path != failed.path
    assert data_buffers(delivered.path) == buffers[:1]
    assert data_buffers(failed.path) == []


def test_a_file_whose_creation_was_given_up_on_and_then_failed_keeps_its_name(
        recorded, tmp_path, monkeypatch, caplog):
    """As above, but the creation given up on then fails (the disk answers with an error):
    no file has the failed source's name, and the source's next file still takes another
    (the failed source reports the name it was given: never the good file). The creation's
    failure, which its source no longer hears, is said once."""
    head, buffers = recorded
    stuck, release = _first_creation_hangs(monkeypatch, then=OSError(errno.EIO, "Input/output error"))
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=PATIENCE) as collector:
        gone = _open(collector.address, head, "failedname")
        try:
            assert stuck.wait(PATIENCE)
            collector.write_timeout = 0.5       # (only now: no write has to succeed within it)
            assert _error(gone.answer())[0] == ERROR_BUSY
        finally:
            gone.close()
            release.set()
        wait_until(lambda: all(w.finished.is_set() for w in collector._abandoned_writers),
                   what="the given-up creation's thread")
        collector.write_timeout = PATIENCE      # (the new file below takes what it takes)
        (failed,) = collector.sources
        _deliver_one(collector, head, buffers, "failedname", gone.source_id)
        assert collector.wait_for(lambda ss: len(ss) == 2 and all(s.closed for s in ss),
                                  PATIENCE)
        delivered = collector.sources[1]
    assert failed.path is not None and delivered.path != failed.path
    assert data_buffers(delivered.path) == buffers[:1]
    said = [r.getMessage() for r in caplog.records if "once the disk answered" in r.getMessage()]
    assert said == [f"{failed.label}: the creation of a file given up on failed once the disk "
                    f"answered: cannot write {failed.path}: Input/output error; no file was made"]


def _give_ups_refused_until_allowed(monkeypatch) -> tuple[threading.Event, threading.Event]:
    """Every give-up is refused (as with too many files given up on already) until the
    second event returned is set; the first is set once one was asked for."""
    asked, allowed = threading.Event(), threading.Event()

    def may_give_up(self, source, seconds) -> bool:
        asked.set()
        return allowed.is_set()
    monkeypatch.setattr(collector_module.Collector, "_may_give_up", may_give_up)
    return asked, allowed


def test_a_creation_given_up_on_after_a_refused_give_up_names_the_file_it_tried_last(
        recorded, tmp_path, monkeypatch, caplog):
    """The first name's creation hangs; the give-up is refused (too many files given up on
    already); the disk then answers that the name exists, so the writer moves on to the next
    name, whose creation hangs too, and is given up on: the failed source names that file
    (the one its thread makes once the disk answers), never the existing one it did not
    write; the first failure, said before the name is known, names no file ("its file")."""
    from wpptrace.remote import collector as collector_module

    head, _ = recorded
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    tried: list[str] = []
    first_stuck, first_go_on = threading.Event(), threading.Event()
    second_stuck, second_go_on = threading.Event(), threading.Event()

    class FirstNameExistsSecondHangs(collector_module.EtlStreamFile):
        def __init__(self, path, header_buffer):
            tried.append(path)
            if len(tried) == 1:
                first_stuck.set()
                first_go_on.wait(PATIENCE)
                open(path, "xb").close()        # (made meanwhile by someone else)
            elif len(tried) == 2:
                second_stuck.set()
                second_go_on.wait(PATIENCE)
            super().__init__(path, header_buffer)
    monkeypatch.setattr(collector_module, "EtlStreamFile", FirstNameExistsSecondHangs)
    asked, allowed = _give_ups_refused_until_allowed(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=0.5) as collector:
        relay = _open(collector.address, head, "renamed")
        try:
            assert first_stuck.wait(PATIENCE)
            assert _error(relay.answer()) == (
                ERROR_BUSY, "cannot write its file: the disk made no progress for 0.5 s")
            assert asked.wait(PATIENCE)         # (refused: not given up on)
            assert not collector._abandoned_writers
            first_go_on.set()
            assert second_stuck.wait(PATIENCE)
            allowed.set()
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
            (failed,) = collector.sources
            assert failed.path == tried[1] != tried[0]
        finally:
            first_go_on.set()
            second_go_on.set()
            relay.close()
        wait_until(lambda: all(w.finished.is_set() for w in collector._abandoned_writers),
                   what="the given-up creation's thread")
        assert collector.stop(PATIENCE) is None
    assert data_buffers(tried[1]) == []
    said = [r.getMessage() for r in caplog.records]
    assert not [m for m in said if tried[0] in m], said
    assert [m for m in said if m.endswith(": closed: cannot write its file: the disk made no "
                                          "progress for 0.5 s")], said


def test_a_creation_given_up_on_as_its_name_turns_out_taken_names_no_file(
        recorded, tmp_path, monkeypatch, caplog):
    """The first name's creation hangs; the give-up is refused; the disk then answers that
    the name exists (another's file), and the collector gives up on the writer before it
    tries the next name: the failed source names no file (it made none), never the
    existing one, which it leaves as it was."""
    from wpptrace.remote import collector as collector_module

    head, _ = recorded
    tried: list[str] = []
    stuck, go_on = threading.Event(), threading.Event()
    answered, read_on = threading.Event(), threading.Event()

    class ExistsAnsweredWhileGivenUpOn(Win32Error):
        """ERROR_ALREADY_EXISTS, whose answer is read while the collector gives up."""

        @property
        def name(self):
            answered.set()
            read_on.wait(PATIENCE)
            return self._name

        @name.setter
        def name(self, value):
            self._name = value

    class FirstNameExists(collector_module.EtlStreamFile):
        def __init__(self, path, header_buffer):
            tried.append(path)
            if len(tried) == 1:
                stuck.set()
                go_on.wait(PATIENCE)
                with open(path, "xb") as other:         # (made meanwhile by someone else)
                    other.write(b"another's")
                raise ExistsAnsweredWhileGivenUpOn(183, filename=path)
            super().__init__(path, header_buffer)
    monkeypatch.setattr(collector_module, "EtlStreamFile", FirstNameExists)
    asked, allowed = _give_ups_refused_until_allowed(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   write_timeout=0.5) as collector:
        relay = _open(collector.address, head, "taken")
        try:
            assert stuck.wait(PATIENCE)
            assert _error(relay.answer())[0] == ERROR_BUSY
            assert asked.wait(PATIENCE)         # (refused: not given up on)
            go_on.set()
            assert answered.wait(PATIENCE)
            allowed.set()
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
            (failed,) = collector.sources
        finally:
            go_on.set()
            read_on.set()
            relay.close()
        wait_until(lambda: all(w.finished.is_set() for w in collector._abandoned_writers),
                   what="the given-up creation's thread")
        assert collector.stop(PATIENCE) is None
    assert (failed.path, failed.file_error) == (None, "")
    assert len(tried) == 1                      # (given up on: it tried no other name)
    with open(tried[0], "rb") as other:
        assert other.read() == b"another's"
    said = [r.getMessage() for r in caplog.records if "once the disk answered" in r.getMessage()]
    assert said == [f"{failed.label}: the creation of a file given up on failed once the disk "
                    f"answered: cannot write {tried[0]}: it exists (another's file), and its source was given "
                    f"up on before another name was tried; no file was made"]
