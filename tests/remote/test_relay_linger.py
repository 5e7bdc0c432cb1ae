"""How long a relay tries on after its stream's end: whatever a collector answers, on a
connection that stays up or over retries, the relay gives up after ``linger`` without
progress and at the latest ``linger_limit`` after the end; only the answers that say the
collector has the stream in hand count as progress; a stop after the end gives up at once."""
from __future__ import annotations

import asyncio
import logging
import sys
import threading

import pytest
from remote_helpers import (PATIENCE, FakeCollector, HandRelay, RelayClock, _StuckClose,
                            _StuckWrite, delivered_by, read_frame, take_until_end, wait_until)

from wpptrace.remote import Collector, Relay
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_ACCESS_DENIED, ERROR_BUSY, ERROR_HANDLE_EOF


def _acknowledging_all_but_the_end(fake: FakeCollector):
    """A collector that takes the stream and ACKs every buffer but the last (whose ACK would
    be END's too), then repeats its last ACK every 0.05 s (an ACK of nothing new, which a
    collector may send at any time)."""
    def serve(sock):
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        last = [0]

        def repeat():
            while not fake.closed.wait(0.05):
                try:
                    sock.sendall(P.encode(P.FrameType.ACK, last[0]))
                except OSError:
                    return
        threading.Thread(target=repeat, daemon=True).start()
        while True:
            kind, seq = read_frame(sock)
            if kind == P.FrameType.BUFFER:
                last[0] = seq
    return serve


def _ended_relay(address, recorded, **options) -> Relay:
    """A relay whose stream ended before it started sending: its end comes before any
    answer of the collector (a test's clock moved on by those answers then always starts
    counting the linger from the same point)."""
    head, buffers = recorded
    relay = Relay(address, buffer_size=len(head), name="lingering", max_backoff=0.05,
                  **options)
    relay.add(head)
    for buf in buffers[:4]:
        relay.add(buf)
    relay.finish()
    return relay.start()


def _run_against(serve_for, recorded, before_the_outcome=None, **options) -> tuple[Relay, int]:
    fake = FakeCollector(None, threaded=True)
    fake.serve = serve_for(fake)
    relay = _ended_relay(fake.address, recorded, **options)
    try:
        if before_the_outcome is not None:
            before_the_outcome(relay)
        assert relay.wait(PATIENCE), "the relay did not end (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    return relay, fake.connections


def test_a_collector_that_repeats_its_last_ack_cannot_keep_the_relay_past_its_linger(
        recorded):
    """Every buffer but the last is acknowledged, and the collector goes on answering on
    the same connection: no progress, so the relay gives up once the linger (at least the
    reply timeout, on a connection that stays up) has passed."""
    relay, connections = _run_against(_acknowledging_all_but_the_end, recorded, linger=0.2,
                                      reply_timeout=0.5, linger_limit=PATIENCE)
    assert relay.outcome == ("failed: could not deliver the stream: no progress for 0.5 s "
                             "after its end (1 buffers undelivered)"), relay.outcome
    assert (connections, relay.stats.acknowledged) == (1, 4)


def test_a_collector_that_keeps_the_connection_up_cannot_keep_the_relay_past_its_limit(
        recorded):
    relay, connections = _run_against(_acknowledging_all_but_the_end, recorded,
                                      linger=PATIENCE, linger_limit=0.5)
    assert relay.outcome == ("failed: could not deliver the stream within 0.5 s of its end "
                             "(1 buffers undelivered)"), relay.outcome
    assert connections == 1


def test_a_second_stop_gives_up_at_once(recorded):
    """A relay waiting for END's ACK with a long linger: a second stop (a second interrupt
    of ``wpptrace relay``) ends the wait, and the outcome says it was not delivered."""
    def stop_once_all_is_acknowledged(relay):
        wait_until(lambda: relay.stats.acknowledged == 4, what="the buffers' ACK")
        relay.stop()
        assert not relay.wait(0)
        relay.stop()

    relay, _ = _run_against(_acknowledging_all_but_the_end, recorded,
                            before_the_outcome=stop_once_all_is_acknowledged,
                            linger=PATIENCE, linger_limit=PATIENCE)
    assert relay.outcome == ("failed: could not deliver the stream: stopped after its end, "
                             "before the collector acknowledged it (1 buffers undelivered)"), \
        relay.outcome


@pytest.mark.parametrize("step", ["connect", "answer"])
def test_a_second_stop_as_a_connection_step_ends_gives_up_at_once(recorded, monkeypatch, step):
    """The second stop comes in the turn in which the relay's connection is made (or the
    collector's answer to its HELLO is read), and the relay gives up on that connection:
    Python 3.11's wait_for then returns the connection (the answer) and drops the give-up's
    cancellation. The connection went on (said HELLO, waited for the answer, sent the
    stream) while the give-up waited for it. It is closed at once: the collector hears
    nothing more on it."""
    heard: list[str] = []
    listened = threading.Event()

    def serve(sock):
        heard.append("HELLO")
        try:
            sock.sendall(P.encode(P.FrameType.WELCOME, 0))
            sock.settimeout(PATIENCE)
            heard.append(P.FrameType(read_frame(sock)[0]).name)
            sock.close()                # (the relay ends its connection: no hang if it went on)
        finally:
            listened.set()
    fake = FakeCollector(serve)
    ended: list[asyncio.Future] = []   # the step's end, come with the second stop

    async def ending_with_the_second_stop(step_):
        result = await step_
        ended.append(asyncio.get_running_loop().create_future())
        try:
            await ended[0]
        except asyncio.CancelledError:      # (Python 3.12+: the give-up's cancellation comes here)
            if step == "connect":
                result[1].transport.abort()
            raise
        return result
    if step == "connect":
        open_connection = asyncio.open_connection
        monkeypatch.setattr(asyncio, "open_connection", lambda *args, **kw: (
            ending_with_the_second_stop(open_connection(*args, **kw))))
    else:
        read_frame_ = P.read_frame
        answers: list = []

        def read_the_answer(reader, allowed, *args):
            answers.append(None)
            if len(answers) == 1:
                return ending_with_the_second_stop(read_frame_(reader, allowed, *args))
            return read_frame_(reader, allowed, *args)
        monkeypatch.setattr(P, "read_frame", read_the_answer)
    check_linger = Relay._check_linger

    def second_stop_as_the_step_ends(self, connected):
        if connected and ended and not ended[0].done():
            self.stop()
            self.stop()
            ended[0].set_result(None)   # (its turn comes before the connection's cancellation)
        return check_linger(self, connected)
    monkeypatch.setattr(Relay, "_check_linger", second_stop_as_the_step_ends)
    head, buffers = recorded
    relay = Relay(fake.address, buffer_size=len(head), name="cut", linger=PATIENCE,
                  linger_limit=PATIENCE, reply_timeout=PATIENCE, connect_timeout=PATIENCE)
    relay.add(head)
    for buf in buffers[:4]:
        relay.add(buf)
    try:
        relay.start()
        assert relay.wait(PATIENCE), "the relay hangs"
        if step == "answer":
            assert listened.wait(PATIENCE)
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert relay.outcome == ("failed: could not deliver the stream: stopped after its end, "
                             "before the collector acknowledged it (4 buffers undelivered)"), \
        relay.outcome
    assert heard == ([] if step == "connect" else ["HELLO"]), heard
    # from Python 3.12 wait_for keeps the cancellation: a connection made in the give-up's
    # turn never reaches the relay (the step's own cleanup closes it), so none is counted
    dropped_by_wait_for = sys.version_info < (3, 12)
    assert relay.stats.connects == (1 if step == "answer" or dropped_by_wait_for else 0)


def _silent_while_closing(fake: FakeCollector):
    """A collector that takes the stream, ACKs every buffer but the last (whose ACK is END's),
    then says nothing after END (its file's close is slow: END's ACK would come once it is
    done); a relay that comes back is told the file is being closed, and then that the stream
    ended."""
    def serve(sock):
        if fake.connections == 1:
            sock.sendall(P.encode(P.FrameType.WELCOME, 0))
            while True:
                kind, seq = read_frame(sock)
                if kind == P.FrameType.BUFFER:
                    sock.sendall(P.encode(P.FrameType.ACK, seq))
                elif kind == P.FrameType.END:
                    fake.closed.wait(PATIENCE)
                    return
        elif fake.connections == 2:
            sock.sendall(P.encode_error(ERROR_BUSY, P.BUSY_FILE_CLOSING))
        else:
            sock.sendall(P.encode_error(ERROR_HANDLE_EOF, "this stream already ended"))
    return serve


def test_a_collector_silent_while_it_closes_the_file_is_left_to_the_reply_timeout(recorded):
    """After END, a collector whose file's close is slow says nothing on that connection:
    not a collector that answers without progress. The relay keeps it until the reply
    timeout (its linger, no longer than that, does not end it), and the retry learns that
    the file is being closed and then that the stream ended: it was delivered."""
    relay, connections = _run_against(_silent_while_closing, recorded, linger=2.5,
                                      reply_timeout=2.5, linger_limit=PATIENCE)
    assert relay.outcome == "ended", relay.outcome
    assert (connections, relay.stats.acknowledged) == (3, 4)


def test_a_real_collector_whose_close_is_slow_gets_its_stream_delivered(
        recorded, tmp_path, monkeypatch):
    """The same with a real collector whose file's close waits for the disk: the relay's
    reply timeout drops the silent connection, a retry is told the file is being closed,
    and once the close is done the stream ended."""
    disk = _StuckClose(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        relay = _ended_relay(collector.address, recorded, linger=2.5, reply_timeout=2.5,
                             linger_limit=PATIENCE)
        try:
            wait_until(lambda: relay.stats.connects >= 2 or relay.wait(0),
                       what="a second connection")
            disk.release.set()
            assert relay.wait(PATIENCE), "the relay did not end (hang guard)"
        finally:
            disk.release.set()
            relay.close(timeout=0.5)
        assert collector.wait_for(lambda sources: sources and sources[0].closed)
        source = collector.sources[0]
    assert relay.outcome == "ended", relay.outcome
    assert (source.ended, source.stopped, source.file_error) == (True, True, "")


def test_one_stop_after_the_streams_own_end_still_delivers_it(recorded):
    """The stream ended (the session stopped on its own) and END waits for its ACK: one
    stop (an interrupt, or SIGTERM from a service manager) ends only the reading, which is
    over already; the relay still waits for END's ACK, and the stream is delivered."""
    got_end, answer = threading.Event(), threading.Event()

    def serve_for(fake):
        def serve(sock):
            sock.sendall(P.encode(P.FrameType.WELCOME, 0))
            while True:
                kind, seq = read_frame(sock)
                if kind == P.FrameType.END:
                    got_end.set()
                    answer.wait(PATIENCE)
                    sock.sendall(P.encode(P.FrameType.ACK, seq))
                    sock.close()                # (a collector closes after END's ACK)
                    return
        return serve

    def stop_once_end_waits(relay):
        assert got_end.wait(PATIENCE)
        relay.stop()
        assert not relay.wait(1.0), relay.outcome       # (still waiting for END's ACK)
        answer.set()

    try:
        relay, connections = _run_against(serve_for, recorded,
                                          before_the_outcome=stop_once_end_waits,
                                          linger=PATIENCE, linger_limit=PATIENCE)
    finally:
        answer.set()
    assert relay.outcome == "ended", relay.outcome
    assert (connections, relay.stats.acknowledged) == (1, 5)


def _refusing(code: int, reason: str, welcome_first: bool):
    def serve_for(fake):
        def serve(sock):
            if welcome_first:                   # (the header comes, then the refusal)
                sock.sendall(P.encode(P.FrameType.WELCOME, 0))
                read_frame(sock)
            sock.sendall(P.encode_error(code, reason))
        return serve
    return serve_for


@pytest.mark.parametrize("reason, welcome_first", [
    ("cannot write lingering.etl: No space left on device", True),
    ("too many connections", False),
    ("too many open sources", False),
], ids=["disk-full", "too-many-connections", "too-many-sources"])
def test_a_busy_answer_that_says_nothing_of_the_stream_is_not_progress(
        recorded, reason, welcome_first):
    """A collector that cannot take the stream (a full disk, no room for another connection
    or source) answers ERROR_BUSY at every retry: the relay retries, but gives up after its
    linger, not its limit."""
    relay, connections = _run_against(_refusing(ERROR_BUSY, reason, welcome_first), recorded,
                                      linger=0.5, linger_limit=PATIENCE / 2)
    assert relay.outcome == ("failed: could not deliver the stream: no progress for 0.5 s "
                             "after its end (4 buffers undelivered)"), relay.outcome
    assert connections >= 2


@pytest.mark.parametrize("reason, welcome_first", [
    ("this source's file is being closed", False),
    ("this source's file is being closed", True),
    ("this source's file is still being written", False),
    ("file closing (changed text)", False),
], ids=["closing", "closing-after-welcome", "still-written", "changed-text"])
def test_a_busy_answer_that_the_stream_is_in_hand_is_progress(
        recorded, monkeypatch, reason, welcome_first):
    """The collector has the stream and is finishing it: the relay waits on past its linger,
    up to its limit. The texts are version 1's (what every collector says); the relay reads
    them from the protocol's table (a changed text there is what it knows)."""
    if reason.endswith("(changed text)"):
        monkeypatch.setattr(P, "BUSY_FILE_CLOSING", reason)
    clock = RelayClock(monkeypatch)

    def serve_for(fake):
        answer = _refusing(ERROR_BUSY, reason, welcome_first)(fake)

        def serve(sock):
            clock.now += 0.7            # each answer comes 0.7 s (of the relay's time) later
            answer(sock)
        return serve
    relay, connections = _run_against(serve_for, recorded, linger=1.0, linger_limit=3.0)
    assert relay.outcome == ("failed: could not deliver the stream within 3 s of its end "
                             "(4 buffers undelivered)"), relay.outcome
    assert connections == 5             # the answers at 0.7 ... 2.8 s kept it on, 3.5 s is past


def test_the_collectors_being_closed_answer_after_a_welcome_is_one_the_relay_knows(
        recorded, tmp_path, monkeypatch, caplog):
    """A welcomed relay whose source's file begins closing without END before its next
    frame (the collector's own step, run here at that moment) is told that the file is
    being closed without its end, as a relay that comes back meanwhile is: not the answer
    the relay takes for progress or END's arrival, but a refusal (the relay did nothing
    wrong, unlike a protocol error), said once as a warning for both."""
    disk = _StuckClose(monkeypatch)
    head, buffers = recorded
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        first = HandRelay(collector.address, len(head), "welcomed")
        again = None
        try:
            assert first.answer()[:2] == (P.FrameType.WELCOME, 0)
            first.header(head)
            first.buffer(1, buffers[0])
            assert collector.wait_for(lambda ss: ss and ss[0].buffers == 1, PATIENCE)
            source = collector._sources[first.source_id]
            wait_until(lambda: source.queued_buffers == 0, what="buffer 1 written")
            collector._loop.call_soon_threadsafe(source.finish, 0)
            assert disk.stuck.wait(PATIENCE)
            first.buffer(2, buffers[1])
            answers = [first.answer()]
            again = HandRelay(collector.address, len(head), "welcomed", first.source_id)
            answers.append(again.answer())
        finally:
            disk.release.set()
            first.close()
            if again is not None:
                again.close()
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        counted = (collector.connections_refused, collector.protocol_errors)
    said = [P.decode_error(P.Frame(kind, 0, 0, payload)) for kind, _, payload in answers
            if kind == P.FrameType.ERROR]
    assert said == [(ERROR_BUSY, P.BUSY_FILE_CLOSING_WITHOUT_END)] * 2
    assert not P.in_hand(*said[0])
    assert counted == (2, 0)
    warned = [r for r in caplog.records
              if P.BUSY_FILE_CLOSING_WITHOUT_END in r.getMessage()
              and r.levelno >= logging.WARNING]
    assert len(warned) == 1, [r.getMessage() for r in warned]


@pytest.mark.parametrize("changed", [False, True], ids=["as-is", "texts-changed"])
@pytest.mark.parametrize("state", ["closing", "still-written"])
def test_the_collectors_in_hand_answers_are_the_ones_the_relay_knows(
        recorded, tmp_path, monkeypatch, state, changed):
    """A real collector whose file is being closed, or whose received buffers still wait for
    the disk, turns a reconnecting relay away with ERROR_BUSY; the relay must take that
    answer for progress. Both ends use the protocol's one table: changing its texts changes
    what the collector says and what the relay knows alike."""
    if changed:
        monkeypatch.setattr(P, "BUSY_FILE_CLOSING", "file closing (changed text)")
        monkeypatch.setattr(P, "BUSY_FILE_WRITING", "file writing (changed text)")
    disk = _StuckClose(monkeypatch) if state == "closing" else _StuckWrite(monkeypatch)
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        first = HandRelay(collector.address, len(head), "inhand")
        again = None
        try:
            assert first.answer()[:2] == (P.FrameType.WELCOME, 0)
            first.header(head)
            first.buffer(1, buffers[0])
            if state == "closing":
                first.end(2)
            assert disk.stuck.wait(PATIENCE)
            again = HandRelay(collector.address, len(head), "inhand", first.source_id)
            kind, _, payload = again.answer()
            assert kind == P.FrameType.ERROR
            code, reason = P.decode_error(P.Frame(kind, 0, 0, payload))
        finally:
            disk.release.set()
            first.close()
            if again is not None:
                again.close()
    expected = P.BUSY_FILE_CLOSING if state == "closing" else P.BUSY_FILE_WRITING
    assert (code, reason) == (ERROR_BUSY, expected)
    assert P.in_hand(code, reason)
    assert not P.in_hand(code, "too many connections")
    assert not P.in_hand(ERROR_ACCESS_DENIED, reason)


def _ends_ack_then_the_stream_ended(seen: list):
    """A fake collector's conversation: END's ACK and the close after it; a relay that comes
    again is told that the stream already ended."""
    def serve(sock):
        seen.append(None)
        if len(seen) > 1:
            sock.sendall(P.encode_error(ERROR_HANDLE_EOF, "this stream already ended"))
            return
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        take_until_end(sock)
    return serve


def _closed_as_the_reply_timeout_runs_out(monkeypatch, clock: RelayClock) -> None:
    """The relay's reader sees the collector's close once the reply timeout (5 s, counted
    from the last thing heard before) has run out on the relay's clock."""
    read = P.read_frame

    async def closed_as_the_reply_timeout_runs_out(reader, *args, **kwargs):
        try:
            return await read(reader, *args, **kwargs)
        except asyncio.IncompleteReadError:
            clock.now += 6.0            # (the reply timeout is 5 s)
            raise
    monkeypatch.setattr(P, "read_frame", closed_as_the_reply_timeout_runs_out)


def _delivered_in_the_reply_timeouts_last_moments(recorded, caplog, seen: list) -> Relay:
    """A relay to ``_ends_ack_then_the_stream_ended`` (reply timeout 5 s), run until done."""
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.relay")
    fake = FakeCollector(_ends_ack_then_the_stream_ended(seen))
    relay = _ended_relay(fake.address, recorded, linger=PATIENCE, reply_timeout=5.0)
    try:
        assert relay.wait(PATIENCE), "the relay hangs"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert relay.outcome == "ended", relay.outcome
    assert len(seen) == 1, [r.getMessage() for r in caplog.records]
    assert not [r for r in caplog.records if "timed out" in r.getMessage()]
    return relay


def test_ends_close_in_the_reply_timeouts_last_moments_is_no_timeout(recorded, monkeypatch,
                                                                     caplog):
    """END's ACK and the close after it come when the reply timeout (counted from the last
    thing heard before) has just run out: the reader finished, END delivered, is looked at
    before the timeout. Looked at after it, the delivered END was counted as a timeout: a
    false warning, and a connection again, to be told that the stream ended."""
    _closed_as_the_reply_timeout_runs_out(monkeypatch, RelayClock(monkeypatch))
    _delivered_in_the_reply_timeouts_last_moments(recorded, caplog, [])


def test_ends_close_while_the_relay_waits_for_the_link_is_no_timeout(recorded, monkeypatch,
                                                                     caplog):
    """As above, while the relay waits for the connection to take what it wrote (END here:
    the link takes nothing more): the reader that finished, END delivered, ends that wait
    and is looked at first. The wait's own timeout looked at the reply timeout first, and
    counted the delivered END as a timeout."""
    _closed_as_the_reply_timeout_runs_out(monkeypatch, RelayClock(monkeypatch))
    relays: list[Relay] = []
    drain = asyncio.StreamWriter.drain

    async def nothing_taken_after_end(writer):
        if relays and relays[0]._end_seq is not None:
            await asyncio.Event().wait()        # (until the wait is given up)
        await drain(writer)
    monkeypatch.setattr(asyncio.StreamWriter, "drain", nothing_taken_after_end)
    start = Relay.start

    def started(relay):
        relays.append(relay)
        return start(relay)
    monkeypatch.setattr(Relay, "start", started)
    _delivered_in_the_reply_timeouts_last_moments(recorded, caplog, [])


def test_ends_ack_and_close_as_the_linger_limit_runs_out_is_delivery(recorded, monkeypatch):
    """END's ACK and the close after it come in the moment the relay's linger limit runs
    out, and the relay looks at its limits before the connection has returned: the stream
    was delivered ("ended", exit status 0). The limit looked at first, the relay gave up on
    the connection that had just delivered END and said END was not acknowledged (exit
    status 3)."""
    clock = RelayClock(monkeypatch)
    looked: list = []
    check_linger = Relay._check_linger

    def looking(relay, connected):
        if connected and relay._end_acked:
            looked.append(None)
        return check_linger(relay, connected)
    monkeypatch.setattr(Relay, "_check_linger", looking)
    send_loop = Relay._send_loop

    async def returned_after_a_look_at_the_limits(relay, writer, acks):
        delivered = await send_loop(relay, writer, acks)
        if delivered:
            clock.now += relay.linger_limit + 1.0
            while not looked:       # (until the relay looks, or is done with the connection)
                await asyncio.sleep(0.01)
        return delivered
    monkeypatch.setattr(Relay, "_send_loop", returned_after_a_look_at_the_limits)

    def serve(sock):
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        take_until_end(sock, ack_buffers=True)
    relay = delivered_by(FakeCollector(serve), recorded, "limit", linger_limit=PATIENCE)
    assert relay.outcome == "ended", relay.outcome
    assert not relay.end_unconfirmed
