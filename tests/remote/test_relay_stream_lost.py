"""A collector that welcomes a relay below what it already acknowledged no longer holds the
source (it was restarted, or the source's file was closed without END): what the relay
sends now makes a new file. END's arrival at the first file is then not known. And a
collector that says the stream already ended to a relay that never sent END speaks of
another stream with the same source id."""
from __future__ import annotations

from remote_helpers import PATIENCE, FakeCollector, read_frame, wait_until

from wpptrace.remote import Relay
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_BUSY, ERROR_HANDLE_EOF


def _lost_after(last: int, connections: list, later: list):
    """A fake collector: the first connection welcomes at 0, acknowledges each buffer and
    fails once it read frame ``last`` (its sequence: END's is 4, the third buffer's 3), as
    one that fails on a connection says it (an ERROR, read after the ACKs before it); each
    later one welcomes at 0 again (the stream lost), notes the frames it gets in ``later``
    and acknowledges END, closing after it."""
    def serve(sock):
        connections.append(None)
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        first = len(connections) == 1
        while True:
            kind, seq = read_frame(sock)
            if not first:
                later.append(kind)
            if kind == P.FrameType.BUFFER:
                sock.sendall(P.encode(P.FrameType.ACK, seq + 1))
            if first and seq == last and kind != P.FrameType.STATS:
                sock.sendall(P.encode_error(ERROR_BUSY, "the collector failed on this "
                                                        "connection"))
                return              # (left open: the relay closes it)
            if kind == P.FrameType.END:
                sock.sendall(P.encode(P.FrameType.ACK, seq))
                sock.close()
                return
    return serve


def _relay(fake, recorded) -> Relay:
    head, buffers = recorded
    relay = Relay(fake.address, buffer_size=len(head), name="lost", linger=10 * PATIENCE,
                  linger_limit=10 * PATIENCE, reply_timeout=10 * PATIENCE, max_backoff=0.2)
    relay.add(head)
    for buf in buffers[:3]:
        relay.add(buf)
    return relay


def test_a_stream_lost_after_its_end_went_out_is_not_sent_again_to_a_new_file(recorded):
    """END went out, every buffer acknowledged, the connection failed before END's ACK; the
    retry is welcomed at 0. Sent again, the header buffer and END made a new file of the
    header alone, END's ACK there said "ended" (exit status 0) while the first file lacked
    its end. The relay is done instead: END's arrival not confirmed (exit status 3)."""
    connections: list = []
    later: list = []
    fake = FakeCollector(_lost_after(4, connections, later))
    relay = _relay(fake, recorded)
    try:
        relay.finish()
        relay.start()
        assert relay.wait(PATIENCE), "the relay did not end (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert len(connections) == 2 and later == [], (connections, later)
    assert relay.stats.acknowledged == 4
    assert relay.outcome.startswith(
        "ended: END not acknowledged (the collector no longer has the stream: it would start "
        "a new file): every buffer was delivered, but the end of the stream was not "
        "confirmed"), relay.outcome
    assert relay.end_unconfirmed


def test_ends_ack_after_the_collector_lost_the_stream_does_not_confirm_the_first_file(
        recorded):
    """The stream lost before END went out (welcomed at 0 again): the rest goes to a new
    file, and END's ACK there says nothing of the first file's end. The relay says so, END's
    arrival not confirmed (exit status 3), where it said "ended" (exit status 0)."""
    connections: list = []
    later: list = []
    fake = FakeCollector(_lost_after(3, connections, later))
    relay = _relay(fake, recorded)
    try:
        relay.start()
        wait_until(lambda: len(connections) >= 2, what="the retry")
        relay.finish()
        assert relay.wait(PATIENCE), "the relay did not end (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert later[0] == P.FrameType.HEADER and later[-1] == P.FrameType.END, later
    assert relay.outcome.startswith("ended: END acknowledged, but the collector had lost the "
                                    "stream before it"), relay.outcome
    assert relay.end_unconfirmed


def test_a_source_id_whose_stream_already_ended_is_refused_when_this_relay_sent_no_end(
        recorded):
    """A source id reused for another stream (the next session of a unit that gives a
    fixed --source-id): the collector says that id's stream already ended. This relay sent
    no END, and holds its whole stream: it was taken for delivered ("stopped", exit status
    0) and its buffers dropped without a word. It is a refusal that says what was left
    (exit status 1)."""
    def serve(sock):
        sock.sendall(P.encode_error(ERROR_HANDLE_EOF, "this stream already ended"))
    fake = FakeCollector(serve)
    head, buffers = recorded
    relay = Relay(fake.address, buffer_size=len(head), name="reused", max_backoff=0.2)
    try:
        relay.add(head)
        for buf in buffers[:2]:
            relay.add(buf)
        relay.start()
        assert relay.wait(PATIENCE), "the relay did not end (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert relay.outcome == ("refused: this source id's stream already ended at the collector "
                             "(an id names one stream: give each stream a new one) (2 buffers "
                             "undelivered)"), relay.outcome
    assert relay.refused is not None and relay.refused.code == ERROR_HANDLE_EOF
    assert not relay.end_unconfirmed
