"""What an open source holds in the collector while its relay is away (up to 4 x
max_connections of them, each with buffers up to 1 MiB): its file's writer does not keep a
buffer it has written, nor the header buffer its file was made from."""
from __future__ import annotations

import os
import tracemalloc

from remote_helpers import PATIENCE, HandRelay, TracedSession, wait_until

from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P

SOURCES = 4


def test_open_sources_keep_no_copy_of_their_buffers_once_written(tmp_path):
    with TracedSession(tmp_path, "big", buffer_kb=1024, max_buffers=8) as session:
        session.log(20, size=40)
    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    head, buffer = data[:size], data[size:2 * size]
    tracemalloc.start(25)
    try:
        with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                       resume_window=10 * PATIENCE) as collector:
            for n in range(SOURCES):
                hand = HandRelay(collector.address, size, f"away{n}")
                try:
                    assert hand.answer()[0] == P.FrameType.WELCOME
                    hand.header(head)
                    if n % 2:           # (a buffer written last, or the header)
                        hand.buffer(1, buffer)
                    wait_until(lambda: len(collector.sources) == n + 1
                               and collector.sources[-1].path is not None
                               and os.path.getsize(collector.sources[-1].path)
                               == (1 + n % 2) * size, what="the file written")
                finally:
                    hand.close()        # the relay goes away: the source waits for it
            wait_until(lambda: sum(not s.connected for s in collector.sources) == SOURCES,
                       what="the relays gone")
            # buffers the collector read, or expanded from a padded frame (protocol.py,
            # called by collector.py: not this test's relays, whose frames come from there too)
            snapshot = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, P.__file__)]).filter_traces(
                [tracemalloc.Filter(True, collector_module.__file__, all_frames=True)])
            held = sum(stat.size for stat in snapshot.statistics("filename"))
            assert held < size, f"{held} bytes of buffers held by {SOURCES} sources"
    finally:
        tracemalloc.stop()
