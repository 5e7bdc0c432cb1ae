"""Every close of a connection by the collector, but the one after END's ACK (and the one
after the relay's own ERROR, which is not answered), comes after an ERROR frame that says
why: a relay that sent END, and got an ACK of END's value that the collector sent before it
read END, never takes such a close for END's acknowledgement."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading

import pytest

from remote_helpers import (PATIENCE, FakeCollector, HandRelay, data_buffers, delivered_by,
                            end_left_unread, header, read_frame,
                            relay_past_the_ack_that_crossed_end, said_before_close, wait_until)

from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_BAD_FORMAT, ERROR_BUSY, ERROR_CANCELLED, ERROR_DISK_FULL


def test_an_internal_error_after_the_ack_that_crossed_end_is_said_to_the_relay(
        recorded, tmp_path, monkeypatch):
    """The collector ACKs the last buffer after the relay sent END, then fails on that
    connection (an internal error) before it read END. Closed without a word, the connection
    looked like the close after END's ACK: the relay said "ended" while the file lacked END
    (no EndTime). Told (ERROR_BUSY), the relay retries and delivers END."""
    ends = end_left_unread(monkeypatch, "failing", once=True)
    fail = threading.Event()
    failed: list[bool] = []
    room_for = collector_module.Collector._room_for

    async def failing_after_the_first_end(self, source, conn):
        if len(ends) == 1 and not failed:       # (once: the retry goes on)
            failed.append(True)
            loop = asyncio.get_running_loop()
            if await loop.run_in_executor(None, fail.wait, PATIENCE):
                raise RuntimeError("a defect in the collector")
        await room_for(self, source, conn)
    monkeypatch.setattr(collector_module.Collector, "_room_for", failing_after_the_first_end)
    collector = Collector(output_dir=str(tmp_path / "c")).start()
    relay = None
    try:
        relay = relay_past_the_ack_that_crossed_end(collector, recorded, "failing", ends)
        fail.set()
        assert relay.wait(PATIENCE), "the relay hangs"
        assert relay.stats.connects == 2, relay.outcome
        assert collector.wait_for(lambda ss: ss and ss[0].ended, PATIENCE)
    finally:
        if relay is not None:
            relay.close(timeout=0.5)
        collector.stop()
    assert relay.outcome == "ended", relay.outcome
    assert ends == [9, 9]
    [source] = collector.sources
    assert source.buffers == 8
    assert header(source.path).end_time != 0


def test_a_connection_replaced_after_the_ack_that_crossed_end_is_told(
        recorded, tmp_path, monkeypatch):
    """The collector ACKs the last buffer after the relay sent END; before it read END,
    another connection with the same source id takes the source over. Closed without a
    word, the first relay took the close for END's acknowledgement ("ended") while the file
    never got END. Told (ERROR_BUSY, why), it retries, takes the source back and delivers
    END; the connection it takes it from is told too."""
    ends = end_left_unread(monkeypatch, "taken", once=True)
    head, _ = recorded
    collector = Collector(output_dir=str(tmp_path / "c")).start()
    relay = hand = None
    try:
        relay = relay_past_the_ack_that_crossed_end(collector, recorded, "taken", ends,
                                                    host="hand")
        hand = HandRelay(collector.address, len(head), "taken", relay.source_id)
        assert hand.answer()[:2] == (P.FrameType.WELCOME, 9)
        assert relay.wait(PATIENCE), "the relay hangs"
        assert relay.stats.connects == 2, relay.outcome
        kind, _, payload = hand.answer()        # taken back by the relay's retry
        assert kind == P.FrameType.ERROR
        code, reason = P.decode_error(P.Frame(kind, 0, 0, payload))
        assert code == ERROR_BUSY and "took this source over" in reason, reason
        assert collector.wait_for(lambda ss: ss and ss[0].ended, PATIENCE)
    finally:
        if relay is not None:
            relay.close(timeout=0.5)
        if hand is not None:
            hand.close()
        collector.stop()
    assert relay.outcome == "ended", relay.outcome
    assert ends == [9, 9]
    [source] = collector.sources
    assert source.buffers == 8
    assert header(source.path).end_time != 0



def _ack_crossing_end_then_error(sock, seen, code):
    """First connection: the last buffer's ACK (END's value) after END came, then an ERROR
    (``code``) and the close, END never taken. A retry: END acknowledged, then the close."""
    seen.append(None)
    sock.sendall(P.encode(P.FrameType.WELCOME, 0 if len(seen) == 1 else 5))
    while True:
        kind, sequence = read_frame(sock)
        if kind != P.FrameType.END:
            continue
        sock.sendall(P.encode(P.FrameType.ACK, sequence))
        if len(seen) == 1:
            sock.sendall(P.encode_error(code, "the collector did not read END"))
        sock.close()
        return


@pytest.mark.parametrize("code", [ERROR_BUSY, ERROR_CANCELLED, 9999],
                         ids=["busy", "stopping", "unknown"])
def test_a_close_after_an_error_is_never_ends_acknowledgement(recorded, code):
    """Whatever the ERROR says, the close that follows it is not the close after END's ACK,
    even after an ACK of END's value that came after END: "ended" only from the retry."""
    seen: list = []
    fake = FakeCollector(lambda sock: _ack_crossing_end_then_error(sock, seen, code))
    relay = delivered_by(fake, recorded, "told")
    assert relay.stats.acknowledged == 5
    if code == ERROR_CANCELLED:         # (a stop: not retried, END said not acknowledged)
        assert len(seen) == 1
        assert relay.outcome.startswith("ended: END not acknowledged (the collector stopped)")
        assert relay.end_unconfirmed
    else:
        assert len(seen) == 2
        assert relay.outcome == "ended"
        assert not relay.end_unconfirmed


def test_a_protocol_error_is_said_then_closed_without_a_reset(recorded, tmp_path):
    """A relay's bad frame, followed by more it sent before it read the answer: the
    collector says why (an ERROR), reads what came until the relay closes, then closes. Closed
    with that left unread, the connection was reset: the reset may discard the ERROR before
    the relay read it (and a relay that sent END takes no close that follows no ERROR for
    anything but END's acknowledgement)."""
    head, _ = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        hand = HandRelay(collector.address, len(head), "reset")
        sent: list = []

        def send_bad_frame_and_more():
            try:
                hand.sock.sendall(b"BAD!" + bytes(P.HEADER.size - 4) + bytes(1 << 20))
                hand.sock.shutdown(socket.SHUT_WR)
                sent.append(True)
            except OSError as exc:
                sent.append(exc)
        try:
            assert hand.answer()[:2] == (P.FrameType.WELCOME, 0)
            sender = threading.Thread(target=send_bad_frame_and_more, daemon=True)
            sender.start()
            kind, _, payload = hand.answer()
            assert kind == P.FrameType.ERROR
            assert "not a relay frame" in P.decode_error(P.Frame(kind, 0, 0, payload))[1]
            assert hand.sock.recv(1 << 16) == b""       # (a reset raises)
            sender.join(PATIENCE)
            assert sent == [True]
        finally:
            hand.close()


def test_a_stop_while_a_failed_connection_is_closed_logs_no_traceback(
        recorded, tmp_path, monkeypatch, caplog):
    """The collector stops while a connection it failed on (an internal error) waits for the
    relay's close after the ERROR: the handler ends normally. The stop's cancellation left
    it, and Python's stream server logged it as an error with a traceback."""
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)
    take = collector_module._Source.take

    def fail_on_a_buffer(self, frame):
        if frame.type == P.FrameType.BUFFER:
            raise RuntimeError("a defect in the collector")
        return take(self, frame)
    monkeypatch.setattr(collector_module._Source, "take", fail_on_a_buffer)
    head, buffers = recorded
    caplog.set_level(logging.ERROR, logger="asyncio")
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    hand = HandRelay(collector.address, len(head), "failed")
    try:
        assert hand.answer()[:2] == (P.FrameType.WELCOME, 0)
        hand.header(head)
        hand.buffer(1, buffers[0])
        kind, _, payload = hand.answer()
        assert kind == P.FrameType.ERROR
        assert "failed on this connection" in P.decode_error(P.Frame(kind, 0, 0, payload))[1]
        # (the relay keeps its end open: the collector waits for it, until the stop)
        assert collector.stop(PATIENCE) is None
    finally:
        hand.close()
        collector.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert logged == [], logged


def _refused_past_the_limit(collector, head) -> HandRelay:
    """A relay that connects past ``max_connections`` (its HELLO sent, unread by the
    collector, which refuses it at once) and reads the refusal."""
    refused = collector.connections_refused
    hand = HandRelay(collector.address, len(head), "refused")
    kind, _, payload = hand.answer()
    assert kind == P.FrameType.ERROR
    assert P.decode_error(P.Frame(kind, 0, 0, payload)) == (ERROR_BUSY, "too many connections")
    assert collector.connections_refused == refused + 1
    return hand


def test_a_refusal_past_the_connection_limit_is_closed_without_a_reset(recorded, tmp_path,
                                                                       monkeypatch):
    """A connection past ``max_connections`` is refused while what its relay sent waits in
    the collector's socket, unread (more than the collector takes in before it reads): it is
    closed as after any other ERROR, the collector's end shut and the rest read until the
    relay closes. Closed at once with data unread, it was reset, and a reset may discard the
    ERROR before the relay read it."""
    # (the wait ends with the relay's close: a long one keeps a loaded machine from ending it)
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)
    head, _ = recorded
    sent_enough = threading.Event()
    sent: list = []
    send_error = Collector._send_error

    async def once_data_waits_unread(self, writer, code, reason):
        await asyncio.get_running_loop().run_in_executor(None, sent_enough.wait, PATIENCE)
        return await send_error(self, writer, code, reason)
    monkeypatch.setattr(Collector, "_send_error", once_data_waits_unread)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_connections=1) as collector:
        held = socket.create_connection(collector.address)
        hand = None
        try:
            wait_until(lambda: collector._active == 1, what="the first connection handled")
            hand = HandRelay(collector.address, len(head), "refused")

            def send_more_than_the_collector_takes_in(sock=hand.sock):
                # (its stream reader stops reading at 2 MiB: 3 MiB leave some in the socket)
                total = 0
                try:
                    while total < 4 << 20:
                        total += sock.send(bytes(64 << 10))
                        if total >= 3 << 20:
                            sent_enough.set()
                    sock.shutdown(socket.SHUT_WR)   # (a relay closes after an ERROR)
                    sent.append(True)
                except OSError as exc:
                    sent.append(exc)
                finally:
                    sent_enough.set()
            sender = threading.Thread(target=send_more_than_the_collector_takes_in,
                                      daemon=True)
            sender.start()
            answer = hand.answer()
            assert answer is not None, "the ERROR was lost (the connection was reset)"
            kind, _, payload = answer
            assert kind == P.FrameType.ERROR
            assert P.decode_error(P.Frame(kind, 0, 0, payload)) == (ERROR_BUSY,
                                                                     "too many connections")
            assert hand.sock.recv(1 << 16) == b""   # (a reset raises)
            sender.join(PATIENCE)
            assert sent == [True]
            wait_until(lambda: collector._refusals_closing == 0, what="the refusal closed")
        finally:
            held.close()
            if hand is not None:
                hand.close()


def test_refusals_past_the_limits_wait_for_the_relays_close_only_a_few_at_a_time(
        recorded, tmp_path, monkeypatch):
    """A flood of connections past the limits must not hold a socket and a task each while
    the collector waits for the relay's close: past ``_REFUSALS_CLOSING`` refusals waiting
    so, a refusal closes at once after its ERROR; once one is closed, room is made again."""
    monkeypatch.setattr(collector_module, "_REFUSALS_CLOSING", 1)
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)
    head, _ = recorded
    hands: list[HandRelay] = []
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_connections=1) as collector:
        held = socket.create_connection(collector.address)
        try:
            wait_until(lambda: collector._active == 1, what="the first connection handled")
            hands.append(_refused_past_the_limit(collector, head))     # kept open: waited for
            wait_until(lambda: collector._refusals_closing == 1, what="the refusal waiting")
            hands.append(_refused_past_the_limit(collector, head))
            assert said_before_close(hands[1].sock) == b"", "a refusal past the cap is closed at once"
            assert collector._refusals_closing == 1
            hands[0].sock.shutdown(socket.SHUT_WR)
            assert hands[0].sock.recv(1 << 16) == b""
            wait_until(lambda: collector._refusals_closing == 0, what="the refusal closed")
            hands.append(_refused_past_the_limit(collector, head))     # room again
            wait_until(lambda: collector._refusals_closing == 1, what="the refusal waiting")
            hands[2].sock.shutdown(socket.SHUT_WR)
            assert hands[2].sock.recv(1 << 16) == b""
        finally:
            held.close()
            for hand in hands:
                hand.close()


def test_a_stop_while_a_refusal_is_said_logs_no_traceback(recorded, tmp_path, monkeypatch,
                                                          caplog):
    """The collector stops while it tells a connection past the limits why (its ERROR not yet
    taken by the relay): the refusal ends at once and normally, and its place among the
    refusals being closed is given back. Its cancellation left unhandled, Python's stream
    server logged it as an error with a traceback."""
    telling = threading.Event()

    async def never_taken(self, writer, code, reason):
        telling.set()
        await asyncio.get_running_loop().create_future()     # (a drain that waits)
    monkeypatch.setattr(Collector, "_send_error", never_taken)
    caplog.set_level(logging.WARNING, logger="asyncio")
    head, _ = recorded
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                          max_connections=1).start()
    held = hand = None
    try:
        held = socket.create_connection(collector.address)
        wait_until(lambda: collector._active == 1, what="the first connection handled")
        hand = HandRelay(collector.address, len(head), "refused")
        assert telling.wait(PATIENCE)
        assert collector._refusals_closing == 1
        assert collector.stop(PATIENCE) is None
        assert collector._refusals_closing == 0
    finally:
        if held is not None:
            held.close()
        if hand is not None:
            hand.close()
        collector.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert logged == [], logged


def test_a_stop_that_begins_as_a_refusal_is_said_closes_it_at_once(tmp_path, monkeypatch):
    """The stop begins in the turn in which the ERROR of a connection refused past the limits
    left (its drain ended), before the refusal went on: Python 3.11's wait_for then returns
    and drops the stop's cancellation. The refusal waited for its relay's close (up to
    _TELL_WAIT) as if the collector did not stop, and the stop waited for it. It is closed at
    once, as a refusal that the stop finds saying its ERROR is."""
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)
    drain = asyncio.StreamWriter.drain
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), max_connections=1)

    async def stop_as_the_refusal_drains(writer):
        await drain(writer)
        if collector._refusals_closing and not collector._stop_event.is_set():
            collector._stop_event.set()     # (the stop's turn comes before the refusal's)
    monkeypatch.setattr(asyncio.StreamWriter, "drain", stop_as_the_refusal_drains)
    collector.start()
    socks = []
    try:
        socks.append(socket.create_connection(collector.address))
        wait_until(lambda: collector._active == 1, what="the first connection handled")
        socks.append(socket.create_connection(collector.address))      # (says nothing)
        held, refused = socks
        for sock in socks:
            sock.settimeout(PATIENCE)
        assert refused.recv(1 << 16) == P.encode_error(ERROR_BUSY, "too many connections")
        assert held.recv(1 << 16) == P.encode_error(ERROR_CANCELLED, "the collector is stopping")
        assert held.recv(1 << 16) == b""
        held.close()                    # (the stop waits for it, as for every open connection)
        # (the refused relay keeps its end open)
        assert collector.wait(PATIENCE), "the stop waited for the refused relay's close"
        assert refused.recv(1 << 16) == b""
        assert collector._refusals_closing == 0
    finally:
        for sock in socks:
            sock.close()
        collector.stop()


def test_a_stop_while_a_relay_is_told_its_error_ends_the_handler_normally(
        tmp_path, monkeypatch, caplog):
    """The collector stops while it tells a relay why it closes the connection (a first frame
    that is not HELLO), its ERROR not yet taken: the stop's cancellation left the handler
    (Python's stream server logged it as an error with a traceback) and the connection was
    reset. The handler ends normally: the relay has its ERROR, then the close as after any
    ERROR (its end shut, what it sent read until it closes)."""
    caplog.set_level(logging.WARNING, logger="asyncio")
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"))

    async def a_drain_that_waits_as_the_collector_stops(writer):
        collector._stop_event.set()
        await asyncio.get_running_loop().create_future()    # (not taken: ended by the stop)
    monkeypatch.setattr(asyncio.StreamWriter, "drain", a_drain_that_waits_as_the_collector_stops)
    collector.start()
    loop = collector._loop
    reported: list = []
    loop.call_soon_threadsafe(loop.set_exception_handler,
                              lambda _loop, context: reported.append(context))
    sock = socket.create_connection(collector.address)
    try:
        sock.settimeout(PATIENCE)
        sock.sendall(P.encode_stats(P.FrameType.STATS, 1, P.Stats()))
        assert sock.recv(1 << 16) == P.encode_error(
            ERROR_BAD_FORMAT, "the first frame must be HELLO, got STATS")
        assert sock.recv(1 << 16) == b""     # (a reset raises)
        sock.close()
        assert collector.wait(PATIENCE), "the collector did not stop"
        assert collector.stop(PATIENCE) is None
    finally:
        sock.close()
        collector.stop()
    assert reported == []
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert logged == [], logged


def test_refusals_past_the_limits_are_warned_of_once_then_counted(recorded, tmp_path, caplog):
    """A flood of connections past the limits writes one warning, not one a connection: the
    first refusal of a kind is a warning, the others a debug line each, and how many came
    is said in one warning (here at the stop)."""
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    head, _ = recorded
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                          max_connections=1).start()
    held = socket.create_connection(collector.address)
    hands: list[HandRelay] = []
    try:
        wait_until(lambda: collector._active == 1, what="the first connection handled")
        for _ in range(3):
            hands.append(_refused_past_the_limit(collector, head))
        held.close()                # (else the stop waits for it, told, to close)
        assert collector.stop(PATIENCE) is None
    finally:
        held.close()
        for hand in hands:
            hand.close()
        collector.stop()
    refusals = [(r.levelno, r.getMessage().split(": ", 1)[1]) for r in caplog.records
                if "refused: already" in r.getMessage()]
    assert refusals == [(logging.WARNING, "refused: already 1 connections")] + [
        (logging.DEBUG, "refused: already 1 connections")] * 2, refusals
    counted = [r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING and "more connections refused" in r.getMessage()]
    assert counted == ["2 more connections refused past the connection limits since they "
                       "were last said (too many connections: 2)"], counted


@pytest.mark.parametrize("code, named", [(ERROR_DISK_FULL, "ERROR_DISK_FULL"), (9999, "9999")])
def test_a_relay_that_reports_its_own_error_is_neither_a_protocol_error_nor_answered(
        recorded, tmp_path, caplog, code, named):
    """An ERROR from a relay is its own failure, said by the rules: its code is said by its
    Win32 name (a code the table lacks, as the number), it is counted apart from protocol
    errors, and it gets no ERROR_BAD_FORMAT back (the relay closes after it; its source
    ends, its file keeps what came)."""
    head, buffers = recorded
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.collector")
    answers = []
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        hand = HandRelay(collector.address, len(head), "failing")
        try:
            assert hand.answer()[0] == P.FrameType.WELCOME
            hand.header(head)
            hand.buffer(1, buffers[0])
            hand.sock.sendall(P.encode_error(code, "disk full over here"))
            hand.sock.shutdown(socket.SHUT_WR)
            while (answer := hand.answer()) is not None:
                answers.append(answer[0])
        finally:
            hand.close()
        assert collector.wait_for(lambda ss: ss and ss[0].closed, PATIENCE)
        assert (collector.protocol_errors, collector.relay_errors) == (0, 1)
        [source] = collector.sources
    assert P.FrameType.ERROR not in answers, answers
    assert source.buffers == 1 and not source.ended and len(data_buffers(source.path)) == 1
    said = [r.getMessage() for r in caplog.records if "reported" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("failing@hand (127.0.0.1:"), said
    assert said[0].endswith(f"): closed: the relay reported an error: disk full over here "
                            f"({named})"), said
