"""A collector that stops tells each open connection (ERROR_CANCELLED, "the collector is
stopping") before it closes it: a relay that sent END never takes that close for END's
acknowledgement, and says that the collector stopped."""
from __future__ import annotations

import socket
import struct

from remote_helpers import (PATIENCE, FakeCollector, HandRelay, close_as_told, delivered_by,
                            end_left_unread, header, read_frame,
                            relay_past_the_ack_that_crossed_end, take_until_end, wait_until)

from wpptrace.remote import Collector
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_CANCELLED

_STOPPING = struct.pack("<I", ERROR_CANCELLED) + b"the collector is stopping"


def test_a_stop_between_the_last_buffers_ack_and_reading_end_is_said_to_the_relay(
        recorded, tmp_path, monkeypatch):
    """The collector ACKs the relay's last buffer (its every-8th ACK, which carries END's
    value) after the relay sent END, and stops before it read END. Closed without a word,
    the connection looked to the relay like the close that follows END's ACK: it said the
    stream ended, delivered, while the file was closed without the session's EndTime. Told
    that the collector stopped, it says so: every buffer delivered, END not confirmed."""
    end_read = end_left_unread(monkeypatch, "stopping")
    collector = Collector(output_dir=str(tmp_path / "c")).start()
    relay = None
    try:
        relay = relay_past_the_ack_that_crossed_end(collector, recorded, "stopping", end_read)
        assert collector.stop() is None
        assert relay.wait(PATIENCE), "the relay hangs"
    finally:
        if relay is not None:
            relay.close(timeout=0.5)
        collector.stop()
    assert relay.outcome == ("ended: END not acknowledged (the collector stopped): every "
                             "buffer was delivered, but the end of the stream was not "
                             "confirmed (the collector's file may lack the session's end "
                             "time and last loss counts)"), relay.outcome
    assert relay.end_unconfirmed
    [source] = collector.sources
    assert not source.ended and not source.stopped
    assert source.buffers == 8
    assert header(source.path).end_time == 0


def test_each_open_connection_is_told_before_the_collector_closes_it(recorded, tmp_path):
    """A relay welcomed (its header and a buffer sent) and a connection that said nothing yet
    both get the ERROR frame, then the close."""
    head, buffers = recorded
    collector = Collector(output_dir=str(tmp_path / "c")).start()
    silent = None
    hand = HandRelay(collector.address, len(head), session="told")
    try:
        assert hand.answer()[0] == P.FrameType.WELCOME
        hand.header(head)
        hand.buffer(1, buffers[0])                  # (not ACKed: one in 8 is)
        silent = socket.create_connection(collector.address)
        silent.settimeout(PATIENCE)
        wait_until(lambda: collector._active == 2, what="both connections handled")
        assert collector.stop() is None
        assert hand.answer() == (P.FrameType.ERROR, 0, _STOPPING)
        assert hand.answer() is None
        assert silent.recv(1 << 16) == P.encode_error(ERROR_CANCELLED,
                                                      "the collector is stopping")
        assert silent.recv(1 << 16) == b""
    finally:
        hand.close()
        if silent is not None:
            silent.close()
        collector.stop()


def _stop_with_buffers_unacknowledged_then_take_everything(sock, seen):
    """First connection: ACKs the header only, then the collector stops (ERROR_CANCELLED),
    told as the collector tells it (its end shut, what the relay sent read until it closes:
    a close with unread data would reset the connection and could lose the ACK and the
    ERROR). The relay comes back to a collector that kept the stream (WELCOME at the header's
    ACK): every buffer and END acknowledged, then the close after END's ACK."""
    seen.append(None)
    if len(seen) == 1:
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        read_frame(sock)                            # HEADER
        sock.sendall(P.encode(P.FrameType.ACK, 1))
        sock.sendall(P.encode_error(ERROR_CANCELLED, "the collector is stopping"))
        close_as_told(sock)
        return
    sock.sendall(P.encode(P.FrameType.WELCOME, 1))
    take_until_end(sock)


def test_a_relay_with_buffers_left_retries_after_the_collectors_stop(recorded):
    """A collector that stops while buffers wait for its ACK may start again: the relay
    retries, and delivers the stream to it."""
    seen: list = []
    fake = FakeCollector(lambda sock: _stop_with_buffers_unacknowledged_then_take_everything(
        sock, seen))
    relay = delivered_by(fake, recorded, "retried")
    assert len(seen) == 2
    assert relay.outcome == "ended"
    assert relay.stats.acknowledged == 5
