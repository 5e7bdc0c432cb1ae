"""The collector's live view: every source's messages, decoded through
OpenTraceFromBufferStream as they arrive, tagged with the source, equal to what ``wpptrace
fmt`` prints for the collected file; every buffer is released through the completion
callback."""
from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import threading
import time
import uuid

from remote_helpers import (PATIENCE, HandRelay, Provider, TracedSession, data_buffers,
                            decoded_text, delivered_by_hand, relay_process, wait_until,
                            wpptrace)

from wpptrace import tmf
from wpptrace.remote import Collector, LiveView
from wpptrace.remote import protocol as P

EVENTS = 3000


def _by_label(text: str) -> dict[str, list[str]]:
    lines: dict[str, list[str]] = {}
    for line in text.splitlines():
        assert line.startswith("["), line
        label, _, rest = line[1:].partition("] ")
        lines.setdefault(label, []).append(rest)
    return lines


def test_live_view_shows_both_sources_as_fmt_prints_them(tmp_path, tmf_dir):
    out = io.StringIO()
    live = LiveView(tmf.load(str(tmf_dir)), out)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), live=live) as collector, \
            TracedSession(tmp_path, "alpha", buffer_kb=8) as alpha, \
            TracedSession(tmp_path, "beta", buffer_kb=8) as beta:
        relays = [relay_process(s.name, collector.address) for s in (alpha, beta)]
        wait_until(lambda: len(collector.sources) == 2, what="both relays")
        for _ in range(3):            # interleaved, so both sources are live at once
            alpha.log(EVENTS // 3)
            beta.log(EVENTS // 3)
        alpha.stop()
        beta.stop()
        assert [r.wait(PATIENCE) for r in relays] == [0, 0]
        assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        sources = {s.label: s for s in collector.sources}
    # the collector stopped: every view drained
    shown = _by_label(out.getvalue())
    assert set(shown) == set(sources) and len(shown) == 2
    for label, lines in shown.items():
        source = sources[label]
        assert label == f"{source.session}@{source.host}"
        expected = decoded_text(source.path, tmf_dir).splitlines()
        assert len(lines) == EVENTS + 1 and lines[0].endswith("EventTrace")
        # live order merges what is queued at each moment; the file's order is global
        assert sorted(lines) == sorted(expected)
    for view in live.views:
        assert view.pending == 0 and view.skipped == 0    # every buffer released once
        assert view.lines == EVENTS + 1


def test_the_three_commands_start_relay_collect(tmp_path, tmf_dir):
    """The README's workflow with the real commands: ``wpptrace collect --listen
    127.0.0.1:0 --rt -p TMF --sources 1`` (the port it got is in its first log line),
    ``wpptrace session start NAME --realtime --guid G``, ``wpptrace relay NAME --to ...``;
    the application (a provider in this process) logs; ``wpptrace session stop NAME``."""
    collect = subprocess.Popen([sys.executable, "-m", "wpptrace.cli", "collect", "--listen",
                                "127.0.0.1:0", "--rt", "-p", str(tmf_dir), "--sources", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    provider = Provider("cli")
    name = f"relay-cli-{uuid.uuid4().hex[:8]}"
    try:
        first = collect.stderr.readline()
        assert "listening on 127.0.0.1:" in first, first
        port = int(first.rsplit(":", 1)[1].split()[0])
        started = wpptrace("session", "start", name, "--realtime", "--guid", str(provider.control_guid))
        assert started.returncode == 0, started.stderr
        relay = relay_process(name, ("127.0.0.1", port))
        wait_until(lambda: "connected from" in _peek(collect), what="the relay")
        wait_until(lambda: provider.logger is not None, what="the enable")
        # on one processor: moved to another, this thread would write another processor's
        # buffer, and the live view merges only the buffers that have arrived (order across
        # them is arrival order)
        cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {min(cpus)})
        try:
            provider.log(500)
        finally:
            os.sched_setaffinity(0, cpus)
        stopped = wpptrace("session", "stop", name)
        assert stopped.returncode == 0, stopped.stderr
        assert relay.wait(PATIENCE) == 0, relay.stderr.read()
        stdout, stderr = collect.communicate(timeout=PATIENCE)
    finally:
        provider.close()
        if collect.poll() is None:
            collect.kill()
    assert collect.returncode == 0, stderr
    lines = stdout.splitlines()
    label = f"[{name}@"
    assert len(lines) == 501 and all(line.startswith(label) for line in lines)
    assert lines[0].endswith("EventTrace")
    assert [int(line.split("value ")[1].split()[0]) for line in lines[1:]] == list(range(500))
    assert all(line.split("[RelayTest]")[1].startswith("value ") for line in lines[1:])


_seen: dict[int, str] = {}


def _peek(process) -> str:
    """Log lines of a running child so far (read without blocking on its stderr)."""
    import os
    import select

    fd = process.stderr.fileno()
    text = _seen.get(process.pid, "")
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536).decode()
        if not chunk:
            break
        text += chunk
    _seen[process.pid] = text
    return text


def test_a_source_whose_decoder_never_starts_does_not_stall_the_other_sources(tmp_path,
                                                                              monkeypatch):
    """Closing a source's view waits for its decoder to start (else what is queued would be
    released undecoded); a header buffer it cannot decode never starts it. That wait must
    not hold up the collector: another relay is answered meanwhile."""
    import socket

    from fuzz_frames import hello_frame

    from wpptrace.remote import liveview
    from wpptrace.remote import protocol as P

    monkeypatch.setattr(liveview, "_DECODER_START_WAIT", 4 * PATIENCE)
    with TracedSession(tmp_path, "nostart", buffer_kb=8) as session:
        session.log(50)
    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    header = data[:72] + b"\xff" * (size - 72)      # a header buffer with no records
    live = LiveView(tmf.load(tolerant=True), io.StringIO())
    with Collector(("127.0.0.1", 0), live=live, timeout=PATIENCE) as collector:
        with socket.create_connection(collector.address) as bad:
            bad.sendall(hello_frame(uuid.uuid4(), size)
                        + b"".join(bytes(p) for p in P.encode_buffer(P.FrameType.HEADER, 0, header))
                        + hello_frame(uuid.uuid4(), size))      # a second HELLO: closed
            wait_until(lambda: any(s.closed for s in collector.sources), what="the bad source")
        with socket.create_connection(collector.address, timeout=PATIENCE) as good:
            good.sendall(hello_frame(uuid.uuid4(), size))
            welcome = good.recv(P.HEADER.size)
        assert P.HEADER.unpack(welcome)[2] == P.FrameType.WELCOME
        for view in live.views:     # let the waiting close go on: the test is over
            view._running.set()


def test_all_views_together_hold_at_most_max_pending_bytes(tmp_path):
    """Each source may hold max_pending buffers of up to 1 MB, and there may be hundreds of
    sources: the bytes held by all views together are bounded too, header buffers
    included; beyond, buffers are skipped for the view and counted, and a new source whose
    header buffer finds no room gets no view."""
    with TracedSession(tmp_path, "budget", buffer_kb=8) as session:
        session.log(3000, size=40)
    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    header, buffers = data[:size], [data[i:i + size] for i in range(size, len(data), size)]
    live = LiveView(tmf.load(tolerant=True), io.StringIO(), max_pending_bytes=6 * size)
    with live._format_lock:     # decoding stalls on the first header line: nothing is released
        first = live.open("first", header)
        taken = [first.add(buf) for buf in buffers[:3]]
        second = live.open("second", header)
        more = [second.add(buf) for buf in buffers[:3]]
        assert live.pending_bytes == 6 * size
        third = live.open("third", header)
        assert third is None and live.views_refused == 1 and live.pending_bytes == 6 * size
    assert taken == [True] * 3 and more == [True, False, False] and second.skipped == 2
    for view in (first, second):
        view.close()
    live.join(PATIENCE)
    assert first.pending == second.pending == live.pending_bytes == 0


def test_views_whose_decoding_is_over_are_let_go(tmp_path):
    with TracedSession(tmp_path, "views", buffer_kb=8) as session:
        session.log(100)
    data = session.path.read_bytes()
    header = data[:int.from_bytes(data[:4], "little")]
    live = LiveView(tmf.load(tolerant=True), io.StringIO())
    first = live.open("first", header)
    first.close()
    first.join(PATIENCE)
    second = live.open("second", header)
    assert live.views == [second]
    second.close()
    live.join(PATIENCE)


def test_a_relayed_message_cannot_drive_the_terminal_or_forge_a_line(tmp_path, tmf_dir):
    """Message text comes from whoever reaches the collector: the live view escapes its
    control characters but tab (no terminal title, clipboard write or cursor move, no line
    that passes for another source's), while the collected file keeps the bytes as sent."""
    hostile = ("\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[H\r"
               "\n[other@host] forged\u2028\ttab")
    shown = (r"\x1b]0;owned\x07\x1b]52;c;ZXZpbA==\x07\x1b[2J\x1b[H\r"
             r"\n[other@host] forged\u2028" + "\ttab")
    out = io.StringIO()
    live = LiveView(tmf.load(str(tmf_dir)), out)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), live=live) as collector, \
            TracedSession(tmp_path, "hostile", buffer_kb=8) as session:
        session._source = hostile.encode() + b"\0"
        relay = relay_process(session.name, collector.address)
        wait_until(lambda: len(collector.sources) == 1, what="the relay")
        session.log(3)
        session.stop()
        assert relay.wait(PATIENCE) == 0
        assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        (source,) = collector.sources
    text = out.getvalue()
    lines = text.split("\n")
    assert lines.pop() == ""
    assert len(lines) == 4
    assert all(line.startswith(f"[{source.label}] ") for line in lines)
    assert [line.count(f" from {shown} tick ") for line in lines[1:]] == [1, 1, 1]
    assert not any(ch != "\t" and not ch.isprintable() for ch in text.replace("\n", ""))
    assert decoded_text(source.path, tmf_dir).count(f" from {hostile} tick ") == 3


def _renumbered(buffer: bytes, sequence: int) -> bytes:
    """``buffer`` with another SequenceNumber (one buffer sent again and again, in order)."""
    from wpptrace.remote import protocol as P

    offset, size = P._BUFFER_FIELDS["SequenceNumber"]
    return buffer[:offset] + sequence.to_bytes(size, "little") + buffer[offset + size:]


class _BlockedOutput(io.StringIO):
    """A live view's output whose writes wait until ``release`` is set (a terminal or pipe
    nobody reads): the view's decoder falls behind and skips buffers."""

    def __init__(self):
        super().__init__()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.release.wait(PATIENCE)
        return super().write(text)


def test_buffers_the_live_view_skipped_are_reported_and_the_file_has_every_one(
        recorded, tmp_path, caplog):
    """A view whose output blocks falls behind: it skips buffers (the file still gets each
    one). The source's stats and its summary line say how many it skipped."""
    head, buffers = recorded
    sent = [_renumbered(buffers[0], 1000 + n) for n in range(200)]
    out = _BlockedOutput()
    live = LiveView(tmf.load(tolerant=True), out, max_pending=4)
    ended: list = []
    caplog.set_level(logging.INFO, logger="wpptrace.remote.collector")
    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), live=live,
                          on_source_end=ended.append).start()
    hand = None
    try:
        hand = HandRelay(collector.address, len(head), "behind")
        assert hand.answer()[0] == P.FrameType.WELCOME
        hand.header(head)
        for sequence, buffer in enumerate(sent, 1):
            hand.buffer(sequence, buffer)
        hand.end(len(sent) + 1, end_time=1)
        wait_until(lambda: ended, what="the source's end")
        (view,) = live.views
        assert view.skipped >= len(sent) - 4       # at most 4 held while nothing is written
    finally:
        out.release.set()
        if hand is not None:
            hand.close()
        collector.stop()
    (stats,) = ended
    assert stats.live_skipped == view.skipped and stats.buffers == len(sent)
    assert stats.lost == 0 and stats.stopped
    (summary,) = [r.getMessage() for r in caplog.records
                  if r.getMessage().startswith(f"{stats.label}: {len(sent)} buffers")]
    assert f", events lost 0, live view skipped {view.skipped}: {stats.path}" in summary
    assert data_buffers(stats.path) == sent


def test_a_summary_says_nothing_of_the_live_view_when_it_skipped_nothing(recorded, tmp_path,
                                                                         caplog):
    head, buffers = recorded
    live = LiveView(tmf.load(tolerant=True), io.StringIO())
    ended: list = []
    caplog.set_level(logging.INFO, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), live=live, on_source_end=ended.append) as collector:
        delivered_by_hand(collector.address, head, buffers[:4], session="kept", end_time=0)
        assert ended                    # (END's ACK comes once its source ended)
    (stats,) = ended
    assert stats.live_skipped == 0
    (summary,) = [r.getMessage() for r in caplog.records
                  if r.getMessage().startswith(f"{stats.label}: 4 buffers")]
    assert summary.endswith("events lost 0 (the session had not stopped)"), summary


def test_collect_rt_says_what_its_live_view_skipped(recorded, tmp_path, tmf_dir):
    """``wpptrace collect --rt`` whose standard output nobody reads: its live view skips
    buffers, and the source's summary line on stderr says how many."""
    head, buffers = recorded
    count = 600
    collect = subprocess.Popen([sys.executable, "-m", "wpptrace.cli", "collect", "--listen",
                                "127.0.0.1:0", "--rt", "-p", str(tmf_dir), "--sources", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    hand = None
    try:
        first = collect.stderr.readline()
        assert "listening on 127.0.0.1:" in first, first
        port = int(first.rsplit(":", 1)[1].split()[0])
        hand = HandRelay(("127.0.0.1", port), len(head), "unread")
        assert hand.answer()[0] == P.FrameType.WELCOME
        hand.header(head)
        for sequence in range(1, count + 1):
            hand.buffer(sequence, _renumbered(buffers[0], sequence))
        hand.end(count + 1)
        wait_until(lambda: " buffers, " in _peek(collect), what="the source's summary")
        collect.stdout.read()           # read at last: the view goes on, and the collector ends
        assert collect.wait(PATIENCE) == 0, _peek(collect)
    finally:
        if hand is not None:
            hand.close()
        if collect.poll() is None:
            collect.kill()
            collect.wait()
    (summary,) = [line for line in _peek(collect).splitlines() if " buffers, " in line]
    assert f"unread@hand: {count} buffers, 0 lost" in summary, summary
    skipped = int(summary.split(", live view skipped ")[1].split()[0].rstrip(":"))
    assert 0 < skipped < count
