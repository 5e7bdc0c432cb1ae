"""``wpptrace relay`` whose reading of the session fails after it started: the stream is
ended there (END sent, acknowledged), but what the session wrote after that was never read,
so the command says so and exits 1, not 0 as for a delivered stream."""
from __future__ import annotations

from remote_helpers import FakeCollector, take_until_end

from wpptrace.remote import protocol as P


def _acks_everything(sock):
    """A fake collector's conversation: every buffer and END acknowledged, then the close."""
    sock.sendall(P.encode(P.FrameType.WELCOME, 0))
    take_until_end(sock, ack_buffers=True)


def test_a_session_read_that_fails_after_the_start_exits_1(recorded, monkeypatch, capsys):
    from wpptrace import cli
    from wpptrace.provider import sessions

    head, buffers = recorded

    class FailingSubscription:
        """The session's header and one buffer, then a read that fails."""
        buffer_size = len(head)
        closed = False

        def __init__(self):
            self._left = [head, buffers[0]]

        def get(self, timeout):
            if self._left:
                return self._left.pop(0)
            raise OSError("the session's buffers could not be read")

        def close(self):
            pass
    monkeypatch.setattr(sessions, "subscribe_realtime", lambda name: FailingSubscription())
    fake = FakeCollector(_acks_everything)
    try:
        code = cli.main(["relay", "some-session", "--to", "%s:%d" % fake.address, "-q"])
    finally:
        fake.close()
    err = capsys.readouterr().err
    assert code == 1, err
    assert ("some-session: reading the session failed: the session's buffers could not be "
            "read; the stream was ended there, and what the session wrote after that was not "
            "read") in err, err
