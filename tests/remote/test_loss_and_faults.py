"""Slow and broken links: the relay drops whole buffers and counts them exactly, the
provider never waits; a killed relay leaves a file readable up to its last whole buffer; a
broken connection resumes where the file ends."""
from __future__ import annotations

import collections
import os
import re
import signal
import sys
import threading

import pytest
from remote_helpers import (PATIENCE, Proxy, ended_relay, TracedSession, _StuckClose, _StuckWrite,
                            collect_until_stuck, data_buffers, decoded_text, disk_full_under, header, relay_process,
                            wait_until)

from wpptrace.remote import Collector, Relay
from wpptrace.remote import protocol as P


def _records(path) -> int:
    from wpptrace.decoder import EtlFile, ordered_records

    with EtlFile(str(path)) as f:
        count = sum(1 for _ in ordered_records(f))
        assert not f.errors, f.errors
    return count


def _dissect_records(path) -> int:
    from dissect.etl.etl import ETL

    with open(path, "rb") as fh:
        return sum(1 for _ in ETL(fh))


def _line_with(stream, needle: str, timeout: float) -> str | None:
    """The first line of ``stream`` containing ``needle``, read within ``timeout`` s."""
    found: list[str] = []

    def read() -> None:
        for line in iter(stream.readline, ""):
            if needle in line:
                found.append(line)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else None


def _stall_events(size: int) -> int:
    """Events of ``size`` bytes that overflow a stalled link: three times the most a TCP send
    buffer may grow to (tcp_wmem's maximum), at least 30,000."""
    try:
        with open("/proc/sys/net/ipv4/tcp_wmem") as fh:
            most = int(fh.read().split()[2])
    except (OSError, ValueError, IndexError):
        most = 4 << 20
    return max(30_000, 3 * most // size)


def _buffers_for(events: int, size: int, buffer_kb: int) -> int:
    """Session buffers that hold all these events at once (a third spare for each record's
    header and the flush timer's partial buffers): a relay starved of CPU by a loaded
    machine may read them late, and the session must not drop what the test counts on."""
    return max(1024, 3 * events * size // (2 * 1024 * buffer_kb))


def test_a_stalled_link_drops_whole_buffers_counted_exactly_without_stalling_the_provider(tmp_path):
    events = _stall_events(160)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector, \
            TracedSession(tmp_path, "stall", buffer_kb=8,
                          max_buffers=_buffers_for(events, 160, 8)) as session:
        proxy = Proxy(collector.address)
        relay = relay_process(session.name, proxy.address, "--max-queue", "8")
        try:
            wait_until(lambda: len(collector.sources) == 1, what="the relay")
            proxy.pause()                    # the link takes nothing at all
            # far more than the relay holds: its queue, and its socket's send buffer, which the
            # kernel may grow up to tcp_wmem's maximum (4 MB here) while the link is stalled
            session.log(events, size=160, pace=100_000)
            assert proxy.paused.is_set()     # every event was written while the link was stalled
            final = session.stop()
            # the link stays stalled until the relay has read the whole session (a slow
            # machine may still be reading it when the session stops)
            stopped = _line_with(relay.stderr, "the session stopped", PATIENCE)
            assert stopped, "the relay never said the session stopped"
            proxy.resume()
            assert relay.wait(PATIENCE) == 0
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            relay.kill() if relay.poll() is None else None
            proxy.close()
        source = collector.sources[0]
    summary = relay.stderr.read().strip().splitlines()[-1]
    # what the relay said when the session stopped is what it reports at the end
    assert re.search(r"(\d+) buffers read, (\d+) dropped", stopped).groups() == \
        re.search(r"(\d+) buffers read, \d+ sent, (\d+) dropped", summary).groups()
    read, dropped, session_lost = (int(re.search(rf"(\d+) {what}", summary).group(1))
                                   for what in ("buffers read", "dropped", "lost by the session"))

    # the session lost nothing: the relay kept reading while its link was stalled
    assert final.EventsLost == 0 and final.RealTimeBuffersLost == 0 and session_lost == 0
    local, collected = data_buffers(session.path), data_buffers(source.path)
    assert dropped > 0 and read == len(local)
    # the same count at both ends and in the file: exactly the buffers the file lacks
    assert source.relay_dropped == source.sequence_gaps == source.lost == dropped
    assert header(source.path).buffers_lost == dropped
    assert len(collected) == len(local) - dropped
    positions = {buf: i for i, buf in enumerate(local)}
    kept = [positions[buf] for buf in collected]      # whole buffers, unchanged, in order
    assert kept == sorted(kept)


def test_buffers_the_session_drops_after_the_last_one_the_relay_read_are_counted_exactly(tmp_path):
    """A relay that cannot read (stopped) while the session flushes its last buffers and
    stops: the session's queue for it keeps the oldest and drops the newest, which leave no
    gap; the end of the stream says the last SequenceNumber, so session_lost is exact."""
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector, \
            TracedSession(tmp_path, "tail", buffer_kb=8, max_buffers=8) as session:
        relay = relay_process(session.name, collector.address)
        try:
            wait_until(lambda: len(collector.sources) == 1, what="the relay")
            session.log(200, size=160)      # the flush timer takes them to the collector
            wait_until(lambda: collector.sources[0].buffers > 0, what="a first buffer")
            os.kill(relay.pid, signal.SIGSTOP)
            try:
                # kill() returns before the relay stops: its threads stop only once they run
                # again, and on a loaded machine one may go on reading meanwhile. Its parent
                # is told when every thread has stopped: it reads nothing from then on.
                stopped = os.waitid(os.P_PID, relay.pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
                assert stopped.si_code == os.CLD_STOPPED, stopped
                # 60 buffers, one flush at a time (8 buffers in all for writers): far more
                # than its queue (8) and the socket to it (the host sets its send buffer to
                # one buffer's size) hold
                for _ in range(60):
                    session.log(30, size=160)
                    session.flush()
                final = session.stop()
            finally:
                os.kill(relay.pid, signal.SIGCONT)
            assert relay.wait(PATIENCE) == 0
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            relay.kill() if relay.poll() is None else None
        source = collector.sources[0]
    summary = relay.stderr.read().strip().splitlines()[-1]
    read, dropped, session_lost, last = (
        int(re.search(what, summary).group(1))
        for what in (r"(\d+) buffers read", r"(\d+) dropped", r"(\d+) lost by the session",
                     r"lost by the session \(its last buffer: (\d+)\)"))

    local, collected = data_buffers(session.path), data_buffers(source.path)
    sequence = lambda buf: P.buffer_field(buf, "SequenceNumber")
    assert last == len(local) == sequence(local[-1])   # the session's own file: every buffer
    assert dropped == 0 and len(collected) == read      # the relay itself lost nothing
    assert sequence(collected[-1]) < last               # the newest were dropped: no gap shows
    assert session_lost == last - read > 0
    assert session_lost == final.RealTimeBuffersLost    # the relay was the only consumer
    assert final.EventsLost == 0
    # the collector got the same count, and its file says it
    assert source.session_lost == source.lost == session_lost and source.sequence_gaps == 0
    assert header(source.path).buffers_lost == session_lost
    positions = {buf: i for i, buf in enumerate(local)}
    kept = [positions[buf] for buf in collected]         # whole buffers, unchanged, in order
    assert kept == sorted(kept)


def test_killing_a_relay_mid_stream_leaves_a_file_readable_to_its_last_whole_buffer(tmp_path, tmf_dir):
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), resume_window=60) as collector, \
            TracedSession(tmp_path, "killed", buffer_kb=8) as session:
        relay = relay_process(session.name, collector.address)
        stop = threading.Event()
        writer = threading.Thread(target=lambda: [session.log(500, size=200)
                                                  for _ in iter(stop.is_set, True)])
        try:
            wait_until(lambda: len(collector.sources) == 1, what="the relay")
            writer.start()
            wait_until(lambda: collector.sources[0].buffers >= 40, what="buffers")
            relay.kill()                      # SIGKILL in the middle of the stream
            relay.wait(PATIENCE)
        finally:
            stop.set()
            writer.join(PATIENCE)
            relay.kill() if relay.poll() is None else None
        wait_until(lambda: not collector.sources[0].connected, what="the collector to notice")
        source = collector.sources[0]
        assert not source.closed          # kept open for a relay that comes back
        n = source.buffers
        # (the file is written in the source's own thread: it may lag what was received)
        wait_until(lambda: header(source.path).buffers_written == n + 1, what="the file")
        # readable while the collector still holds it
        assert _records(source.path) == _dissect_records(source.path) > 1
        session.stop()
    # the collector stopped: the file is closed as a session that never stopped
    h = header(source.path)
    assert h.end_time == 0 and h.buffers_written == n + 1
    local, collected = data_buffers(session.path), data_buffers(source.path)
    assert len(collected) == n and collected == local[:n]      # whole buffers, none torn
    records = _records(source.path)
    assert records == _dissect_records(source.path)
    lines = decoded_text(source.path, tmf_dir).splitlines()
    assert len(lines) == records and lines[0].endswith("EventTrace")


def test_a_broken_connection_resumes_where_the_file_ends(tmp_path, tmf_dir):
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector, \
            TracedSession(tmp_path, "resume", buffer_kb=8) as session:
        proxy = Proxy(collector.address)
        relay = Relay(proxy.address, session=session.name).start()
        try:
            wait_until(lambda: len(collector.sources) == 1, what="the relay")
            session.log(3000, size=100)
            wait_until(lambda: collector.sources[0].buffers >= 10, what="buffers")
            proxy.cut()                              # the link breaks
            session.log(3000, size=100)
            # (a reconnect made while the cut connection's buffers still wait for the disk is
            # told ERROR_BUSY at once, and the relay tries again: 2 connections or more)
            wait_until(lambda: collector.sources[0].connections >= 2, what="the reconnection")
            session.log(3000, size=100)
            session.stop()
            assert relay.wait(PATIENCE) and relay.outcome == "ended"
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            relay.close()
            proxy.close()
        source = collector.sources[0]
    assert source.lost == 0 and source.stopped and relay.stats.connects >= 2
    assert data_buffers(source.path) == data_buffers(session.path)
    assert decoded_text(source.path, tmf_dir) == decoded_text(session.path, tmf_dir)


def test_a_collector_that_cannot_write_says_so_and_the_relay_retries(tmp_path):
    out = tmp_path / "c"
    with Collector(("127.0.0.1", 0), output_dir=str(out)) as collector, \
            TracedSession(tmp_path, "nodisk", buffer_kb=8) as session:
        out.rmdir()
        out.write_text("not a directory")           # every file the collector makes fails
        relay = Relay(collector.address, session=session.name, max_backoff=0.2).start()
        try:
            wait_until(lambda: collector.write_failures >= 2, what="refusals")
            assert collector.protocol_errors == 0
            assert collector.sources and all(s.path is None for s in collector.sources)
            assert "cannot write" in collector.sources[0].reason
            out.unlink()
            out.mkdir()                              # room again: the relay gets in
            wait_until(lambda: any(s.path for s in collector.sources), what="the file")
            session.log(2000, size=50)
            session.stop()
            assert relay.wait(PATIENCE) and relay.outcome == "ended"
            assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        finally:
            relay.close()
        (source,) = [s for s in collector.sources if s.path]
    assert source.lost == 0 and data_buffers(source.path) == data_buffers(session.path)


class _RacingItems(collections.deque):
    """The outbox's buffers, making the race happen: when the sender asks whether any is held
    while the outbox's lock is free (so the pump could take it), the pump's ``put`` lets the
    oldest go just then, and pauses there (holding none) until told to go on."""

    def __init__(self, items):
        super().__init__(items)
        self.lock = threading.Lock()
        self.pump_may_start = threading.Event()
        self.pause_pump = False
        self.emptied = threading.Event()
        self.go_on = threading.Event()

    def __len__(self):
        held = super().__len__()
        if threading.current_thread().name.startswith("relay-send") and not self.lock.locked():
            self.pause_pump = True
            self.pump_may_start.set()
            self.emptied.wait(PATIENCE)
        return held

    def popleft(self):
        item = super().popleft()
        if self.pause_pump and threading.current_thread().name == "pump":
            self.emptied.set()
            self.go_on.wait(PATIENCE)
        return item


def test_a_buffer_let_go_while_the_relay_connects_leaves_it_sending(recorded, tmp_path):
    """With a queue of one buffer, each new buffer lets the sent one go: a connection that
    starts just then must not see the outbox hold a buffer and then find none (it read the
    oldest held without the lock, and the relay died of an IndexError)."""
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), timeout=5.0) as c:
        relay = Relay(c.address, buffer_size=len(head), max_queue=1, name="race", linger=5.0,
                      max_backoff=0.2)
        relay.add(head)
        relay.add(buffers[0])
        outbox = relay._outbox
        outbox.send_from = 2            # buffer 1 went out on a connection lost before its ACK
        items = outbox.items = _RacingItems(outbox.items)
        items.lock = outbox.lock

        def pump():
            items.pump_may_start.wait(PATIENCE)
            relay.add(buffers[1])
        pumping = threading.Thread(target=pump, name="pump")
        pumping.start()
        try:
            relay.start()
            wait_until(lambda: c.sources or relay.wait(0), what="the relay's HELLO")
            items.pump_may_start.set()
            items.go_on.set()
            pumping.join(PATIENCE)
            relay.finish()
            assert relay.wait(PATIENCE)
        finally:
            items.pump_may_start.set()
            items.go_on.set()
            pumping.join(PATIENCE)
            relay.close()
        assert relay.outcome == "ended", relay.outcome
        assert c.wait_for(lambda ss: len(ss) == 1 and ss[0].closed, PATIENCE)
        (source,) = c.sources
    # buffer 2 came after buffer 1 was sent (and let go) or before (and was dropped)
    assert source.buffers + source.lost == 2 and source.ended


def test_a_relay_fed_by_add_closes_quietly_after_its_stream_ended(recorded, tmp_path):
    """``with Relay(...)``: add, finish, wait; leaving the block closes the relay, whose
    sender is done by then (its loop closed): nothing is left to wake, and nothing raises."""
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), timeout=5.0) as c:
        with Relay(c.address, buffer_size=len(head), name="fed", linger=5.0) as relay:
            relay.add(head)
            for buf in buffers[:3]:
                relay.add(buf)
            relay.finish()
            assert relay.wait(PATIENCE) and relay.outcome == "ended"
        assert c.wait_for(lambda ss: len(ss) == 1 and ss[0].closed, PATIENCE)
        assert data_buffers(c.sources[0].path) == buffers[:3]


@pytest.mark.parametrize("end_time", [None, 0], ids=["session-stopped", "session-running"])
def test_a_file_that_cannot_be_closed_whole_is_reported_not_claimed_complete(recorded, tmp_path,
                                                                              caplog, end_time):
    header_buffer, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        relay = Relay(collector.address, buffer_size=len(header_buffer), name="full").start()
        try:
            relay.add(header_buffer)
            for buf in buffers[:5]:
                relay.add(buf)
            wait_until(lambda: collector.sources and collector.sources[0].buffers == 5,
                       what="five buffers received")
            # (written in the source's own thread: the file may lag what was received)
            wait_until(lambda: header(collector.sources[0].path).buffers_written == 6,
                       what="five buffers written")
            disk_full_under(collector.sources[0].path)
            relay.finish(end_time)
            assert relay.wait(PATIENCE)
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            relay.close()
        (source,) = collector.sources
    assert source.ended and collector.files_failed == 1
    assert source.file_error.startswith("closing it failed: ERROR_DISK_FULL (112)")
    (line,) = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    # (a close that failed does not say its EndTime reached the header, whatever END said)
    assert not source.stopped
    assert line.endswith(f"{source.path} may be incomplete: {source.file_error} (its header "
                         f"does not say the session stopped)")
    assert "\n" not in line


def test_a_stop_that_gives_up_on_a_stuck_connection_says_what_it_left(recorded, tmp_path,
                                                                       monkeypatch, caplog):
    disk = _StuckWrite(monkeypatch)
    stuck, release = disk.stuck, disk.release
    header_buffer, buffers = recorded
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    relay = Relay(collector.address, buffer_size=len(header_buffer), name="stuck").start()
    try:
        relay.add(header_buffer)
        relay.add(buffers[0])
        assert stuck.wait(PATIENCE)
        (path,) = [s.path for s in collector.sources]
        left = collector.stop(timeout=0.2)
        assert (left.connections, left.files, left.buffers) == (1, [path], 1)
        assert collector.abandoned is left and collector.stop(timeout=0.2) is left
        lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
        assert lines == [f"collector stopped without closing everything after 0.2 s: 1 "
                         f"connections not closed, 1 files not closed ({path}), 1 buffers "
                         f"received and not written"]
    finally:
        release.set()
        assert collector.wait(PATIENCE)
        relay.close(timeout=0.5)            # (its collector is gone: no need to linger)


def test_collect_ends_on_sigterm_with_a_stuck_disk_and_exits_1(recorded, tmp_path, monkeypatch):
    """SIGTERM only asks ``wpptrace collect`` to stop: its one stop waits at most the stop
    bound, then the command returns 1 (it left a file it could not close) while the write
    is still stuck."""
    from wpptrace.remote import cli_collect
    from wpptrace.remote import collector as collector_module

    disk = _StuckWrite(monkeypatch)
    started = []

    class SeenCollector(collector_module.Collector):
        def start(self):
            started.append(self)
            return super().start()

    locked_in_handler = []

    class HandlerAwareEvent(threading.Event):
        """An event that notes a set() made by a signal handler: set() takes the event's
        lock, which a second signal arriving inside that set() would wait for forever."""

        def set(self):
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_code.co_filename == cli_collect.__file__ and frame.f_code.co_name == "<lambda>":
                    locked_in_handler.append(frame.f_code.co_firstlineno)
                frame = frame.f_back
            super().set()

    monkeypatch.setattr(collector_module, "Collector", SeenCollector)
    monkeypatch.setattr(cli_collect, "STOP_WAIT", 0.2)
    monkeypatch.setattr(cli_collect.threading, "Event", HandlerAwareEvent)
    code, still_stuck = collect_until_stuck(tmp_path, recorded, disk, started, signal.SIGTERM, "sigterm",
                                            lambda: os.kill(os.getpid(), signal.SIGTERM))
    assert (code, still_stuck) == (1, True)
    assert started[0].wait(PATIENCE)
    assert locked_in_handler == []          # the handler took no lock


def test_a_source_shows_closed_only_once_its_file_is(recorded, tmp_path, monkeypatch):
    """While its file is being closed a source shows neither closed nor stopped (its outcome
    is not known yet), and a stop that gives up then lists that file."""
    disk = _StuckClose(monkeypatch)
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    relay = ended_relay(collector.address, recorded, "closing", 3)
    try:
        assert disk.stuck.wait(PATIENCE)
        (source,) = collector.sources
        assert source.ended and not (source.closed or source.stopped)
        left = collector.stop(timeout=0.2)
        assert (left.connections, left.files) == (1, [source.path])
    finally:
        disk.release.set()
        assert collector.wait(PATIENCE)
        relay.close(timeout=0.5)
    (source,) = collector.sources
    assert source.closed and source.stopped and source.file_error == ""
    assert data_buffers(source.path) == recorded[1][:3]


def test_a_file_being_closed_holds_up_no_other_connection(recorded, tmp_path, monkeypatch):
    """A file's close (its last header, the flush to the disk) runs outside the thread that
    serves the connections: while one is stuck, another relay's stream is served whole.
    The stuck one's relay gets its last ACK once its file is closed."""
    disk = _StuckClose(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        slow = ended_relay(collector.address, recorded, "slow", 3)
        try:
            assert disk.stuck.wait(PATIENCE)
            quick = ended_relay(collector.address, recorded, "quick", 4)
            try:
                assert quick.wait(PATIENCE) and quick.outcome == "ended", quick.outcome
            finally:
                quick.close()
            done = {s.session: s for s in collector.sources if s.closed}
            assert list(done) == ["quick"] and not slow.wait(0)
            disk.release.set()
            assert slow.wait(PATIENCE) and slow.outcome == "ended", slow.outcome
        finally:
            disk.release.set()
            slow.close()
        assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        paths = {s.session: s.path for s in collector.sources}
    assert data_buffers(paths["quick"]) == recorded[1][:4]
    assert data_buffers(paths["slow"]) == recorded[1][:3]


def test_sent_buffers_let_go_and_lost_with_their_connection_are_counted_dropped(recorded, tmp_path):
    """A full outbox lets the oldest sent buffer go before the collector acknowledged it; if
    that connection then breaks, the buffer never arrives: the relay counts it in
    relay_dropped, as many as the collector finds missing."""
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        proxy = Proxy(collector.address)
        relay = Relay(proxy.address, buffer_size=len(head), max_queue=4, name="letgo",
                      stats_interval=3600, max_backoff=0.2, linger=5.0).start()
        try:
            relay.add(head)
            wait_until(lambda: collector.sources and collector.sources[0].path,
                       what="the header buffer")
            proxy.pause()                       # nothing more reaches the collector
            for buf in buffers[:4]:
                relay.add(buf)
            wait_until(lambda: relay.stats.buffers_sent == 4, what="four buffers sent")
            assert relay.add(buffers[4]) and relay.add(buffers[5])  # 1 and 2 let go
            proxy.cut(wait=True)                # ... and lost with their connection
            proxy.resume()
            relay.finish()
            assert relay.wait(PATIENCE) and relay.outcome == "ended", relay.outcome
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            relay.close()
            proxy.close()
        (source,) = collector.sources
    assert relay.stats.relay_dropped == 2
    assert source.relay_dropped == source.sequence_gaps == source.lost == 2
    assert data_buffers(source.path) == buffers[2:6]


def test_sent_buffers_let_go_count_as_dropped_only_from_where_the_collector_resumes():
    from wpptrace.remote.relay import _Outbox

    def two_let_go() -> _Outbox:
        outbox = _Outbox(2, 1 << 20)
        outbox.put(b"1"), outbox.put(b"2")
        outbox.take(), outbox.take()            # both sent
        outbox.put(b"3"), outbox.put(b"4")      # 1 and 2 let go before any ACK
        assert outbox.unconfirmed() == 2 and outbox.dropped == 0
        return outbox

    for resume_at, dropped in ((3, 0), (2, 1), (1, 2)):
        outbox = two_let_go()
        outbox.resume(resume_at)                # a new connection: the collector has < resume_at
        assert (outbox.dropped, outbox.unconfirmed()) == (dropped, 0)
    outbox = two_let_go()
    outbox.acknowledge(2)                       # 1 arrived
    assert outbox.unconfirmed() == 1
    outbox.acknowledge(3)                       # ... and 2
    outbox.resume(3)
    assert outbox.unconfirmed() == 0 and outbox.dropped == 0


def test_the_relays_dropped_count_is_copied_under_the_outbox_lock(recorded):
    """The pump (``add``) and the sender (a new connection) both copy the outbox's dropped
    count into the stats: each copies it under the outbox's lock, so that the later copy is
    never an older count."""
    from wpptrace.remote.relay import RelayStats

    head, buffers = recorded
    relay = Relay(("127.0.0.1", 9), buffer_size=len(head), max_queue=1)     # (not started)
    lock = relay._outbox.lock

    class Checked(RelayStats):
        armed = False

        def __setattr__(self, name, value):
            if name == "relay_dropped" and self.armed:
                assert lock.locked(), "relay_dropped copied outside the outbox lock"
            super().__setattr__(name, value)

    relay.stats = Checked()
    relay.stats.armed = True
    relay.add(head)
    assert relay.add(buffers[0]) and not relay.add(buffers[1])     # (nothing sent: dropped)
    assert relay.stats.relay_dropped == 1


def test_a_close_that_ends_its_thread_with_a_base_exception_still_settles(recorded, tmp_path,
                                                                         monkeypatch):
    """A file's close ends its thread with a BaseException (SystemExit from inside a library):
    the source is still settled, its file said to have failed, and the collector stops
    without waiting on a close that will never report."""
    from wpptrace.remote import collector as collector_module

    exits = [SystemExit(3)]

    class ExitingClose(collector_module.EtlStreamFile):
        def close(self, end_time=0):
            super().close(end_time)
            if exits:
                raise exits.pop()

    monkeypatch.setattr(collector_module, "EtlStreamFile", ExitingClose)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)   # (the thread's own end)
    header_buffer, buffers = recorded
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    relay = Relay(collector.address, buffer_size=len(header_buffer), name="exiting").start()
    try:
        relay.add(header_buffer)
        relay.add(buffers[0])
        relay.finish(1)
        assert collector.wait_for(lambda ss: ss and ss[0].closed, PATIENCE)
    finally:
        relay.close(timeout=0.5)
        abandoned = collector.stop(PATIENCE)
    (source,) = collector.sources
    assert source.file_error == "closing it failed" and collector.files_failed == 1
    assert abandoned is None
