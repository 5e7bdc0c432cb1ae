"""A collector that stops tells each open connection (ERROR_CANCELLED, "the collector is
stopping") before it closes it: a relay that sent END never takes that close for END's
acknowledgement, and says that the collector stopped."""
from __future__ import annotations

import asyncio
import gc
import logging
import socket
import struct
import threading

import pytest
from remote_helpers import (PATIENCE, FakeCollector, HandRelay, close_as_told, delivered_by,
                            end_left_unread, header, read_frame,
                            relay_past_the_ack_that_crossed_end, stop_as_each_is_accepted,
                            take_until_end, wait_until)

from wpptrace.remote import Collector, Relay
from wpptrace.remote import collector as collector_module
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


@pytest.mark.parametrize("kind", [P.FrameType.HELLO, P.FrameType.BUFFER], ids=["hello", "buffer"])
def test_a_stop_that_begins_as_a_frame_is_read_is_what_the_relay_is_told(recorded, tmp_path,
                                                                         monkeypatch, kind):
    """The stop begins in the turn in which a connection's frame was read, before its handler
    had it: Python 3.11's wait_for then returns the frame and drops the stop's cancellation.
    The handler went on with it: a BUFFER was refused for a source the stop had closed (the
    relay was told its file was being closed without its end, ERROR_BUSY), a HELLO was
    welcomed to a new source after the stop had closed them all (and the stop waited for that
    connection). Each relay is told that the collector stops, then closed."""
    head, buffers = recorded
    collector = Collector(output_dir=str(tmp_path / "c")).start()
    read_frame = P.read_frame

    async def stop_as_it_is_read(reader, allowed, *args):
        frame = await read_frame(reader, allowed, *args)
        if frame.type == kind:
            collector._stop_event.set()     # (the stop's turn comes before the handler's)
        return frame
    monkeypatch.setattr(P, "read_frame", stop_as_it_is_read)
    hand = HandRelay(collector.address, len(head), session="read")
    try:
        if kind == P.FrameType.BUFFER:
            assert hand.answer()[0] == P.FrameType.WELCOME
            hand.header(head)
            hand.buffer(1, buffers[0])
        assert hand.answer() == (P.FrameType.ERROR, 0, _STOPPING)
        assert hand.answer() is None
        assert collector.wait(PATIENCE), "the collector did not stop"
    finally:
        hand.close()
        collector.stop()
    # (no source for a HELLO read as the stop began)
    expected = [] if kind == P.FrameType.HELLO else ["read@hand"]
    assert [source.label for source in collector.sources] == expected


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


def test_connections_made_while_the_collector_stops_are_told_without_a_traceback(
        tmp_path, monkeypatch, caplog):
    """Connections keep coming while the collector stops. One whose handler was made but
    not started when the stop began was cancelled before its first step (Python 3.11's
    stream server logged "Exception in callback ..." with a traceback); one made after the
    stop looked at its handlers was never cancelled nor waited for (left pending when the
    loop closed, its socket open). Each is told that the collector stops, as the connections
    it was handling are (both were reset without a word), then closed, and nothing is
    logged."""
    caplog.set_level(logging.WARNING, logger="asyncio")
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    loop = collector._loop
    reported: list = []
    loop.call_soon_threadsafe(loop.set_exception_handler,
                              lambda _loop, context: reported.append(context))
    made = asyncio.StreamReaderProtocol.connection_made
    handlers: list[asyncio.Task] = []
    first_seen = threading.Event()
    calls: list = []

    async def made_once_the_server_closed(protocol, transport):
        # an accept under way when the stop began (asyncio's own task: not undone by it)
        while collector._server.is_serving():
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                pass
        made(protocol, transport)
        handlers.append(protocol._task)

    def connection_made(protocol, transport):
        calls.append(None)
        if len(calls) == 1:             # made only after the stop closed the server
            asyncio.ensure_future(made_once_the_server_closed(protocol, transport))
            first_seen.set()
        else:                           # the stop begins before its handler starts
            collector._stop_event.set()
            made(protocol, transport)
            handlers.append(protocol._task)
    monkeypatch.setattr(asyncio.StreamReaderProtocol, "connection_made", connection_made)
    socks = []
    try:
        socks.append(socket.create_connection(collector.address))
        assert first_seen.wait(PATIENCE)
        socks.append(socket.create_connection(collector.address))
        for sock in socks:
            sock.settimeout(PATIENCE)
            assert sock.recv(1 << 16) == P.encode_error(ERROR_CANCELLED,
                                                        "the collector is stopping")
            assert sock.recv(1 << 16) == b""        # (a reset raises)
            sock.close()                            # (the stop waits for it, as for others)
        assert collector.wait(PATIENCE), "the collector did not stop"
        assert collector.stop(PATIENCE) is None
        gc.collect()
        assert reported == []
        logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert logged == [], logged
        assert len(handlers) == 2
        assert all(task.done() and not task.cancelled() for task in handlers), handlers
    finally:
        for sock in socks:
            sock.close()
        collector.stop()


def test_a_relay_accepted_as_the_collector_stops_is_told_so_and_retries(recorded, tmp_path,
                                                                        monkeypatch, caplog):
    """The collector accepts a relay's connection and stops before that connection's handler
    starts (the stop does not cancel it: it never saw it). It was reset without a word: the
    relay said that the collector closed the connection before answering. It is told that the
    collector stops, as the connections being handled are, and says so as it retries."""
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.relay")

    def said():
        return [r.getMessage() for r in list(caplog.records)
                if r.name == "wpptrace.remote.relay"]
    head, buffers = recorded
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")).start()
    stop_as_each_is_accepted(monkeypatch, collector)
    relay = Relay(collector.address, buffer_size=len(head), name="late", max_backoff=0.2,
                  linger=PATIENCE)
    relay.add(head)
    relay.add(buffers[0])
    relay.start()
    try:
        assert collector.wait(PATIENCE), "the collector did not stop"
        wait_until(said, what="the relay's word on its first connection")
    finally:
        relay.close(timeout=0.5)
        collector.stop()
    assert said()[0] == "late: the collector stopped: the collector is stopping (retrying)", \
        said()
    assert collector.sources == []


def test_connections_accepted_as_the_collector_stops_are_held_only_a_few_at_a_time(
        tmp_path, monkeypatch, caplog):
    """A flood of connections accepted as the collector stops: each is told that it stops,
    but only ``_REFUSALS_CLOSING`` at a time then wait for the relay's close (holding a
    socket and a task each, up to _TELL_WAIT), as refusals past the limits do; the others
    are closed right after their ERROR. They were counted by no limit: all 60 were held."""
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)     # (held until closed)
    caplog.set_level(logging.WARNING, logger="asyncio")
    held = [0, 0]           # connections waiting for the relay's close: now, at most
    close_told = collector_module._close_told

    async def counted(reader, writer):
        held[0] += 1
        held[1] = max(held)
        try:
            await close_told(reader, writer)
        finally:
            held[0] -= 1
    monkeypatch.setattr(collector_module, "_close_told", counted)
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                          max_connections=1).start()
    loop = collector._loop
    stop_as_each_is_accepted(monkeypatch, collector)
    gate, stalled = threading.Event(), threading.Event()
    socks: list[socket.socket] = []
    try:
        # all 60 wait in the listening socket's backlog, accepted in one turn of the loop
        loop.call_soon_threadsafe(lambda: (stalled.set(), gate.wait()))
        assert stalled.wait(PATIENCE)
        for _ in range(60):
            socks.append(socket.create_connection(collector.address))
        gate.set()
        for sock in socks:
            sock.settimeout(PATIENCE)
            assert sock.recv(1 << 16) == P.encode_error(ERROR_CANCELLED,
                                                        "the collector is stopping")
            assert sock.recv(1 << 16) == b""        # (a reset raises)
        # every connection told and its end closed: those in a slot wait for the relay's
        assert held == [collector_module._REFUSALS_CLOSING] * 2
        for sock in socks:
            sock.close()
        assert collector.wait(PATIENCE), "the collector did not stop"
        assert collector.stop(PATIENCE) is None
        assert held[0] == 0 and collector._refusals_closing == 0
        logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
        assert logged == [], logged
    finally:
        gate.set()
        for sock in socks:
            sock.close()
        collector.stop()
