"""What a live view may hold when its output does not drain (a pipe or terminal nobody
reads): views of closed sources still decoding are bounded in number, all views in bytes (a
source past that is not shown, counted), and a stop does not wait for them past its own
timeout."""
from __future__ import annotations

import io
import logging
import threading

from remote_helpers import (PATIENCE, HandRelay, TracedSession, delivered_by_hand,
                            wait_until)

from wpptrace import tmf
from wpptrace.remote import Collector, LiveView
from wpptrace.remote import protocol as P


def _header(tmp_path, kb: int = 8) -> bytes:
    with TracedSession(tmp_path, f"limits{kb}", buffer_kb=kb) as session:
        session.log(20)
    data = session.path.read_bytes()
    return data[:int.from_bytes(data[:4], "little")]


def test_views_of_closed_sources_still_decoding_are_bounded_in_number(tmp_path, caplog):
    """Sources that come and go while the output is stuck: each closed view still decodes
    (its thread and header buffer held); past ``max_views`` a new source gets no view, is
    counted, and the first refusal alone is said."""
    header = _header(tmp_path)
    live = LiveView(tmf.load(tolerant=True), io.StringIO(), max_views=3)
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.liveview")
    opened = []
    with live._format_lock:     # the output is stuck: no view's decoding gets anywhere
        for n in range(10):
            view = live.open(f"s{n}", header)
            if view is not None:
                opened.append(view)
                view.close()
            assert len(live.views) <= 3
        threads = [t for t in threading.enumerate() if t.name.startswith("live s")]
        assert len(threads) == 3 and len(opened) == 3 and live.views_refused == 7
        assert live.pending_bytes == 3 * len(header)
    said = [r.getMessage() for r in caplog.records if "not shown live" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("s3: not shown live: the views of 3 closed sources")
    live.join(PATIENCE)
    assert all(view.done for view in opened) and live.pending_bytes == 0
    assert live.open("again", header) is not None     # room again once they are done
    live.views[-1].close()
    live.join(PATIENCE)


def test_a_source_the_live_view_has_no_room_for_counts_every_buffer_skipped(recorded,
                                                                             tmp_path):
    head, buffers = recorded
    live = LiveView(tmf.load(tolerant=True), io.StringIO(), max_views=1)
    ended: list = []
    live._format_lock.acquire()     # the output is stuck: the first view never gets done
    try:
        with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), live=live,
                       on_source_end=ended.append) as collector:
            for n in range(3):
                # (END's ACK comes once its source ended)
                delivered_by_hand(collector.address, head, buffers[:3], session=f"src{n}")
                assert len(ended) == n + 1
            assert live.views_refused == 2 and len(live.views) == 1
            live._format_lock.release()     # (the stop then waits for the one view)
    finally:
        if live._format_lock.locked():
            live._format_lock.release()
    by_session = {s.session: s for s in ended}
    assert [by_session[f"src{n}"].live_skipped for n in range(3)] == [0, 3, 3]
    assert all(s.buffers == 3 and s.stopped for s in ended)


class _StuckOutput(io.StringIO):
    """An output that does not drain (a pipe nobody reads) until ``release`` is set."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()
        self.writers = 0

    def write(self, text: str) -> int:
        self.writers += 1
        self.release.wait()
        return super().write(text)


def _stuck_sources(collector, live, out, head, count: int) -> None:
    """``count`` sources, header and END, whose views are stuck printing once ended."""
    for n in range(count):
        delivered_by_hand(collector.address, head, session=f"stuck{n}")
    # (one view prints at a time: the others wait for it)
    wait_until(lambda: out.writers == 1 and len(collector.sources) == count
               and all(s.closed for s in collector.sources), what="the sources' ends")
    assert sum(not v.done for v in live.views) == count


def _stuck_collector(recorded) -> tuple[Collector, _StuckOutput]:
    """A collector (started) whose live view holds 2 ended sources stuck printing."""
    head, _ = recorded
    out = _StuckOutput()
    live = LiveView(tmf.load(tolerant=True), out)
    collector = Collector(("127.0.0.1", 0), live=live).start()
    try:
        _stuck_sources(collector, live, out, head, 2)
    except BaseException:
        out.release.set()
        collector.stop()
        raise
    return collector, out


def _in_thread(fn) -> tuple[threading.Thread, list]:
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(fn()), daemon=True)
    thread.start()
    return thread, outcome


def test_a_stop_does_not_wait_past_its_timeout_for_views_whose_output_is_stuck(recorded):
    """Each stuck view used to be waited for 60 s, one after the other, outside the
    stop's timeout: the stop's one timeout bounds them all, and what is left is said."""
    collector, out = _stuck_collector(recorded)
    try:
        stopper, outcome = _in_thread(lambda: collector.stop(timeout=1))
        stopper.join(PATIENCE)
        assert not stopper.is_alive(), "the stop waited past its timeout"
        (abandoned,) = outcome
        assert abandoned is not None and abandoned.views == 2
        assert abandoned.connections == 0 and abandoned.files == []
        assert "2 live views not done printing" in str(abandoned)
    finally:
        out.release.set()
        collector.stop()


def test_a_second_stop_with_no_time_does_not_wait_for_stuck_views(recorded):
    """``collect``'s second interrupt: stop(0) while a first stop still waits for the
    views returns at once, saying what is left."""
    collector, out = _stuck_collector(recorded)
    try:
        first, _ = _in_thread(lambda: collector.stop(timeout=10 * PATIENCE))
        wait_until(lambda: collector.wait(0), what="the collector's loop to end")
        second, outcome = _in_thread(lambda: collector.stop(0))
        second.join(PATIENCE)
        assert not second.is_alive(), "stop(0) waited"
        (abandoned,) = outcome
        assert abandoned is not None and abandoned.views == 2
    finally:
        out.release.set()
    first.join(PATIENCE)
    assert not first.is_alive()


def test_sources_waiting_for_their_relay_do_not_keep_a_connected_one_from_being_shown(
        recorded, tmp_path):
    """Sources whose relay dropped wait for it (up to 4 x max_connections of them, for the
    resume window) with their views open: only views of closed sources still printing are
    capped, so a relay connected as usual is shown live."""
    head, buffers = recorded
    out = io.StringIO()
    live = LiveView(tmf.load(tolerant=True), out, max_views=2)  # as collect --max-connections 2
    ended: list = []
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), live=live,
                   max_connections=2, on_source_end=ended.append) as collector:
        for name in ("a", "b"):          # relays whose connection drops: their sources wait
            hand = HandRelay(collector.address, len(head), name)
            try:
                assert hand.answer()[0] == P.FrameType.WELCOME
                hand.header(head)
                hand.buffer(1, buffers[0])
                wait_until(lambda: any(s.session == name and s.buffers == 1
                                       for s in collector.sources), what="its buffer")
            finally:
                hand.close()
        wait_until(lambda: not any(s.connected for s in collector.sources),
                   what="a and b waiting for their relay")
        delivered_by_hand(collector.address, head, buffers[:6], session="c")
        (c,) = ended                    # (END's ACK comes once its source ended)
        assert c.session == "c" and c.buffers == 6
        assert c.live_skipped == 0 and live.views_refused == 0
        wait_until(lambda: "[c@hand]" in out.getvalue(), what="c's lines")
