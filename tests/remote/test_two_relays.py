"""Two sessions relayed by two ``wpptrace relay`` processes into one collector: each
collected .etl decodes to exactly the text of the session's own file, and its data buffers
are the session's, byte for byte."""
from __future__ import annotations

from remote_helpers import (PATIENCE, TracedSession, data_buffers, decoded_text, header,
                            relay_process, wait_until)

from wpptrace.remote import Collector

EVENTS = 200_000


def test_two_relays_200k_events_each_give_the_local_files(tmp_path, tmf_dir):
    out = tmp_path / "collected"
    with Collector(("127.0.0.1", 0), output_dir=str(out)) as collector, \
            TracedSession(tmp_path, "alpha") as alpha, TracedSession(tmp_path, "beta") as beta:
        relays = [relay_process(s.name, collector.address) for s in (alpha, beta)]
        try:
            # both relays subscribed and delivered their header buffers
            wait_until(lambda: len(collector.sources) == 2, what="both relays")
            alpha.log(EVENTS)
            beta.log(EVENTS)
            finals = [alpha.stop(), beta.stop()]
            for relay in relays:
                relay.wait(PATIENCE)
        finally:
            for relay in relays:
                relay.kill() if relay.poll() is None else None
        stderr = [relay.stderr.read() for relay in relays]
        assert [r.returncode for r in relays] == [0, 0], stderr
        assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        sources = {s.session: s for s in collector.sources}

    for session, final in zip((alpha, beta), finals):
        assert final.EventsLost == 0 and final.RealTimeBuffersLost == 0
        got = sources[session.name]
        assert got.ended and got.stopped and got.lost == 0 and got.relay_dropped == 0
        local, collected = data_buffers(session.path), data_buffers(got.path)
        assert len(collected) == got.buffers == len(local) > 100
        assert collected == local
        h = header(got.path)
        assert h.buffers_written == len(local) + 1 and h.buffers_lost == 0
        assert h.end_time >= h.start_time > 0          # the session stopped: the file is complete
        assert h.logger_name == session.name
        text = decoded_text(got.path, tmf_dir)
        assert text == decoded_text(session.path, tmf_dir)
        lines = text.splitlines()
        assert len(lines) == EVENTS + 1                 # the EventTrace header line first
        assert lines[1].endswith(f"value 0 from {session.tag} tick 0")
        assert f"value {EVENTS - 1} from {session.tag} tick" in lines[-1] or any(
            f"value {EVENTS - 1} from" in line for line in lines[-64:])
    for text, session in zip(stderr, (alpha, beta)):
        assert f"{session.name}: " in text and "0 dropped" in text and "ended" in text
