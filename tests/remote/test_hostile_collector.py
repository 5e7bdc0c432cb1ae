"""Hostile or broken collectors: the relay runs beside a traced system, so whatever the
collector does (answers garbage, stops acknowledging, stops reading, closes early) the relay
never crashes and never hangs: it retries, and once the stream ended it gives up after its
linger time without progress, saying how many buffers it could not deliver."""
from __future__ import annotations

import logging
import socket
import threading

import pytest
from remote_helpers import (PATIENCE, FakeCollector, RelayClock, read_frame, recv_exactly,
                            wait_until)

from wpptrace.remote import Relay
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_ACCESS_DENIED, ERROR_BUSY


def _read_forever(sock: socket.socket) -> None:
    def run():
        try:
            while sock.recv(1 << 20):
                pass
        except OSError:
            pass
    threading.Thread(target=run, daemon=True).start()


def _welcome_then_read_without_acknowledging(sock):
    sock.sendall(P.encode(P.FrameType.WELCOME, 0))
    _read_forever(sock)


def _welcome_then_never_read(sock):
    sock.sendall(P.encode(P.FrameType.WELCOME, 0))


def _relay_through(fake: FakeCollector, recorded, repeat: int = 1) -> Relay:
    """A relay whose stream ended before it started sending (what it says it left
    undelivered is then the whole stream, however soon the collector answers)."""
    header, buffers = recorded
    relay = Relay(fake.address, buffer_size=len(header), name="hostile-collector", linger=1.0,
                  linger_limit=PATIENCE / 4, connect_timeout=2.0, max_backoff=0.2,
                  max_queue=100_000, reply_timeout=1.0)
    relay.add(header)
    for _ in range(repeat):
        for buf in buffers:
            relay.add(buf)
    relay.finish()
    return relay.start()


def _relay_ended(fake: FakeCollector, recorded, repeat: int = 1) -> Relay:
    """_relay_through ``fake``, once the relay ended (then ``fake`` is closed; also when the
    relay hangs, which fails the test)."""
    try:
        relay = _relay_through(fake, recorded, repeat)
        assert relay.wait(PATIENCE), "the relay hangs on this collector"
    finally:
        fake.close()
    return relay


@pytest.mark.parametrize("answer, repeat", [
    (_welcome_then_read_without_acknowledging, 1),
    # far more than the socket buffers hold: the relay ends up waiting for them to drain
    (_welcome_then_never_read, 400),
], ids=["never-acknowledges", "never-reads"])
def test_a_collector_that_takes_the_stream_but_never_acknowledges_does_not_hang_the_relay(
        recorded, answer, repeat):
    """Silent after END (as a collector closing the file is), a connection is dropped by the
    reply timeout and retried; the retry makes no progress either: the relay gives up after
    its linger, long before its limit."""
    relay = _relay_ended(FakeCollector(answer), recorded, repeat)
    assert relay.outcome.startswith("failed: could not deliver the stream: no progress for 1 s "
                                  "after its end")
    assert relay.stats.acknowledged == 0


def _welcome_then_acknowledge_everything(sock):
    sock.sendall(P.encode(P.FrameType.WELCOME, 0) + P.encode(P.FrameType.ACK, 2**64 - 1))
    _read_forever(sock)


def test_an_acknowledgement_of_what_was_never_sent_is_not_taken_as_delivery(recorded):
    """A collector that acknowledges sequences the relay never sent is broken: believing it
    would report the stream delivered while it may be nowhere."""
    relay = _relay_ended(FakeCollector(_welcome_then_acknowledge_everything), recorded)
    assert relay.outcome.startswith("failed: could not deliver the stream: no progress for 1 s "
                                  "after its end")
    assert relay.stats.acknowledged == 0


def _refuse_for_good(sock):
    sock.sendall(P.encode_error(ERROR_ACCESS_DENIED, "not this relay"))


def test_a_relay_refused_for_good_says_what_it_did_not_deliver(recorded):
    relay = _relay_ended(FakeCollector(_refuse_for_good), recorded)
    assert relay.outcome == (f"refused: not this relay ({len(recorded[1])} buffers "
                             f"undelivered)")


def _busy(sock):
    sock.sendall(P.encode_error(ERROR_BUSY, "this source's file is being closed"))


def test_a_busy_collector_is_logged_once_as_a_warning_while_the_relay_retries(recorded, caplog):
    """ERROR_BUSY (a file still being closed, a full collector) is a transient the relay
    retries: one warning, not an error per attempt."""
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.relay")
    fake = FakeCollector(_busy)
    relay = _relay_ended(fake, recorded)
    assert fake.connections >= 2
    said = [(r.levelname, r.getMessage()) for r in caplog.records
            if "being closed" in r.getMessage()]
    # each attempt's answer is logged as the relay reads it; the last attempt can be cut short by
    # the relay's deadline after the collector accepted it and before its answer was read
    assert fake.connections - 1 <= len(said) <= fake.connections
    assert {level for level, _ in said[1:]} == {"DEBUG"}
    assert said[0] == ("WARNING", "hostile-collector: the collector is busy: this source's "
                                  "file is being closed (retrying)")
    # retried until the limit from the stream's end (a file being closed is the stream in
    # hand: progress, not a refusal), never taken as a refusal
    assert relay.refused is None
    assert relay.outcome == (f"failed: could not deliver the stream within {PATIENCE / 4:g} s of "
                             f"its end ({len(recorded[1])} buffers undelivered)")


def _busy_then_welcome_then_a_write_failure_then_refuse(sock, connections=[0]):
    connections[0] += 1
    if connections[0] == 1:
        sock.sendall(P.encode_error(ERROR_BUSY, "this source's file is being closed"))
    elif connections[0] == 2:
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        head = recv_exactly(sock, P.HEADER.size)           # the header buffer ...
        recv_exactly(sock, P.HEADER.unpack(head)[4])
        sock.sendall(P.encode(P.FrameType.ACK, 0))          # ... taken: the connection works
        sock.sendall(P.encode_error(ERROR_BUSY, "cannot write x.etl: ERROR_DISK_FULL (112)"))
    else:
        sock.sendall(P.encode_error(ERROR_ACCESS_DENIED, "not this relay"))


def _relay_backing_off(answer, name: str, recorded) -> tuple[Relay, list[float]]:
    """A relay sending ``recorded`` to a fake collector that answers its connections with
    ``answer(sock, state)``, run until the collector refuses it for good; returns the relay
    and the waits it made between connections (its backoff)."""
    header, buffers = recorded
    fake = FakeCollector(lambda sock, state=[0]: answer(sock, state))
    relay = Relay(fake.address, buffer_size=len(header), name=name, linger=PATIENCE,
                  connect_timeout=PATIENCE, max_queue=100_000)
    waits: list[float] = []
    idle = relay._idle

    async def counted_idle(seconds):
        waits.append(seconds)
        await idle(seconds)
    relay._idle = counted_idle
    relay.add(header)
    for buf in buffers:
        relay.add(buf)
    relay.start()
    try:
        assert relay.wait(PATIENCE)
    finally:
        relay.close()
        fake.close()
    assert relay.outcome.startswith("refused: not this relay"), relay.outcome
    return relay, waits


def _welcome_then_refuse_the_header(sock, connections=[0]):
    connections[0] += 1
    if connections[0] <= 3:
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        head = recv_exactly(sock, P.HEADER.size)
        recv_exactly(sock, P.HEADER.unpack(head)[4])
        sock.sendall(P.encode_error(ERROR_BUSY, "cannot write x.etl: ERROR_DISK_FULL (112)"))
    else:
        sock.sendall(P.encode_error(ERROR_ACCESS_DENIED, "not this relay"))


def test_a_relay_welcomed_then_refused_before_any_ack_backs_off_and_says_it_once(recorded, caplog):
    """A collector that cannot create the file welcomes the relay, then refuses its header
    (a full disk): a WELCOME alone is no sign the connection works, so the relay backs off
    (0.2, 0.4, 0.8 s) and says the busy answer once, instead of asking every 0.2 s with a
    warning each time."""
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.relay")
    relay, waits = _relay_backing_off(_welcome_then_refuse_the_header, "full-disk", recorded)
    said = [r.levelname for r in caplog.records if "the collector is busy" in r.getMessage()]
    assert said == ["WARNING", "DEBUG", "DEBUG"]
    assert [w for w in waits if w != 0.25] == [0.2, 0.4, 0.8]   # (0.25: waiting for a header)


def test_a_relay_that_got_in_says_a_later_busy_answer_again_and_backs_off_from_the_start(
        recorded, caplog):
    """Once a connection works (the collector acknowledged on it), the relay starts afresh: a
    later ERROR_BUSY (a write that failed mid-stream) is a warning again, and the next attempt
    waits the first backoff again."""
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.relay")
    relay, waits = _relay_backing_off(_busy_then_welcome_then_a_write_failure_then_refuse,
                                      "welcomed", recorded)
    said = [(r.levelname, r.getMessage()) for r in caplog.records
            if "the collector is busy" in r.getMessage()]
    assert said == [
        ("WARNING", "welcomed: the collector is busy: this source's file is being closed "
                    "(retrying)"),
        ("WARNING", "welcomed: the collector is busy: cannot write x.etl: ERROR_DISK_FULL "
                    "(112) (retrying)")]
    assert [w for w in waits if w != 0.25] == [0.2, 0.2]   # (0.25: waiting for a header)


def _acknowledge_the_last_buffer_across_end_then_end_on_the_next_connection(
        sock, seen, relay: list, started: threading.Event, clock: RelayClock):
    """First connection: the collector ACKs the last buffer (its every-8th ACK, or the one
    after a STATS, both carrying END's value) only as END arrives, and has not read END
    (silent, as while it closes nothing) until the relay's reply timeout has passed (its
    clock moved on once the ACK was taken). The relay comes back: welcomed after its last
    buffer, it sends END again, which is ACKed and the connection closed, as a collector does
    after END's ACK."""
    resume = 0 if not seen else seen[-1]
    sock.sendall(P.encode(P.FrameType.WELCOME, resume))
    while True:
        kind, sequence = read_frame(sock)
        if kind == P.FrameType.END:
            break
    seen.append(sequence)
    sock.sendall(P.encode(P.FrameType.ACK, sequence))
    if len(seen) > 1:
        sock.close()
        return
    assert started.wait(PATIENCE)
    wait_until(lambda: relay[0].stats.acknowledged == sequence, what="the ACK taken")
    clock.now += 1.5                    # (the reply timeout is 1 s)


def test_an_ack_that_crosses_end_on_the_wire_is_not_taken_for_ends_own(recorded, monkeypatch):
    """After the last buffer the collector's ACKs (every 8 buffers, after each STATS) carry
    the value END's ACK does: one that comes after END was sent is not END's. Taking it for
    END's, the relay reported the stream ended and dropped the connection, and a collector
    that had not read END closed the file later without the session's EndTime. END counts as
    acknowledged only once the collector closes the connection after its ACK: until then the
    relay waits (here the reply timeout ends the silent connection) and sends END again.
    The relay's clock moves only as the test says: a loaded machine's stall is not taken for
    the linger (1 s) running out before the retry."""
    clock = RelayClock(monkeypatch)
    seen: list[int] = []
    relay: list[Relay] = []
    started = threading.Event()
    fake = FakeCollector(
        lambda sock: _acknowledge_the_last_buffer_across_end_then_end_on_the_next_connection(
            sock, seen, relay, started, clock))
    try:
        relay.append(_relay_through(fake, recorded))
        started.set()
        assert relay[0].wait(PATIENCE), "the relay hangs on this collector"
    finally:
        fake.close()
    last = len(recorded[1]) + 1
    assert seen == [last, last]
    assert relay[0].outcome == "ended"
    assert relay[0].stats.acknowledged == last
