"""A source's label, ``SESSION@HOST``, tags each of its lines in the live view and names it
in the log: whatever names a relay says in HELLO, its label never passes for another
source's (a host name holds no "]" or "@", an unusual session name is shown quoted)."""
from __future__ import annotations

import io
import uuid

import pytest
from remote_helpers import HandRelay, delivered_by_hand, wait_until

from wpptrace import tmf
from wpptrace.remote import Collector, LiveView, Relay
from wpptrace.remote import protocol as P


def test_a_session_name_cannot_make_lines_that_pass_for_another_sources(recorded,
                                                                        tmf_dir):
    head, buffers = recorded
    out = io.StringIO()
    live = LiveView(tmf.load(str(tmf_dir)), out)
    forger = 'victim@hand] [0]0000.0000::12/07/2026 ALARM cleared "by" \\operator'
    with Collector(("127.0.0.1", 0), live=live) as collector:
        delivered_by_hand(collector.address, head, buffers[:1], "victim")
        delivered_by_hand(collector.address, head, buffers[:1], forger)
        delivered_by_hand(collector.address, head, buffers[:1], "a]b")
        wait_until(lambda: len(collector.sources) == 3
                   and all(s.closed for s in collector.sources), what="the sources' ends")
        labels = {s.session: s.label for s in collector.sources}
    assert labels["victim"] == "victim@hand"
    assert labels[forger] == ('"victim@hand] [0]0000.0000::12/07/2026 ALARM cleared '
                              '\\"by\\" \\\\operator"@hand')
    assert labels["a]b"] == '"a]b"@hand'
    lines = out.getvalue().splitlines()
    victims = [line for line in lines if line.startswith("[victim@hand] ")]
    forged = [line for line in lines if line.startswith(f"[{labels[forger]}] ")]
    assert len(victims) == len(forged) > 1
    assert not set(victims) & set(forged)


def test_a_relay_with_a_host_name_the_collector_refuses_is_not_made():
    with pytest.raises(ValueError, match="host name 'h] x' has characters other than"):
        Relay(("127.0.0.1", 9), session="s", host="h] x")


def test_sources_of_one_session_and_host_get_labels_of_their_own(recorded):
    """The "#ID" that tells apart sources of one SESSION@HOST is the start of an id the relay
    picks: two ids alike there still give two labels."""
    head, _ = recorded
    ids = [uuid.uuid4(), uuid.UUID("abcdef00-0000-0000-0000-000000000001"),
           uuid.UUID("abcdef00-0000-0000-0000-000000000002")]
    hands = []
    try:
        with Collector(("127.0.0.1", 0)) as collector:
            for source_id in ids:
                hand = HandRelay(collector.address, len(head), "S", source_id=source_id)
                hands.append(hand)
                assert hand.answer()[0] == P.FrameType.WELCOME
                hand.header(head)
            wait_until(lambda: len(collector.sources) == 3, what="the three sources")
            labels = [s.label for s in collector.sources]
    finally:
        for hand in hands:
            hand.close()
    assert labels[0] == "S@hand" and len(set(labels)) == 3, labels
