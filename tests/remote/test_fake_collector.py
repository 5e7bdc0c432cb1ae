"""The fake collector the relay tests play a collector with: once closed it is gone, as a
collector that went away is (a relay's reconnect is refused, not served after the close)."""
from __future__ import annotations

import socket
import threading

import pytest
from remote_helpers import PATIENCE, FakeCollector

from wpptrace.remote import protocol as P


def test_a_closed_fake_collector_takes_no_more_connections():
    """close() ends its thread blocked in accept(), and a connection after it is refused: a
    close alone left the listener taking one more connection, read and served after close()."""
    served = threading.Event()
    fake = FakeCollector(lambda sock: served.set())
    try:
        with socket.create_connection(fake.address, timeout=PATIENCE) as first:
            first.sendall(P.encode(P.FrameType.HELLO))
            assert served.wait(PATIENCE)        # (then its thread waits for the next one)
    finally:
        fake.close()
    fake.accepting.join(PATIENCE)
    assert not fake.accepting.is_alive()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(fake.address, timeout=PATIENCE).close()
    assert fake.connections == 1
