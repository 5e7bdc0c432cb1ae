"""Stopping the collector: from where stop() may be called, what a relay turned away while
its file closes is told and how often that is logged, and a second interrupt of
``wpptrace collect``."""
from __future__ import annotations

import logging
import os
import re
import signal
import threading

import pytest
from remote_helpers import (PATIENCE, FakeCollector, HandRelay, Proxy, RelayClock, TracedSession,
                            _StuckClose, _StuckWrite, close_as_told, collect_until_stuck,
                            delivered_by, ended_relay, read_frame,
                            relay_process, signal_once_handled, wait_until)

from wpptrace.remote import Collector, Relay
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_BUSY


def test_stop_in_the_collectors_own_thread_is_refused_and_stops_nothing(recorded, tmp_path):
    """``on_source_end`` runs in the collector's thread: a stop() there could not wait for
    the thread it runs in. It raises (saying so) and the collector keeps serving."""
    outcomes = []
    collector = None

    def stop_from_the_hook(stats):
        try:
            outcomes.append(collector.stop(1.0))
        except RuntimeError as exc:
            outcomes.append(exc)

    collector = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                          on_source_end=stop_from_the_hook).start()
    try:
        for name in ("first", "second"):
            relay = ended_relay(collector.address, recorded, name, 2)
            try:
                assert relay.wait(PATIENCE) and relay.outcome == "ended", relay.outcome
            finally:
                relay.close()
        assert collector.wait_for(lambda ss: len(ss) == 2 and all(s.closed for s in ss),
                                  PATIENCE)
        assert not collector.wait(0)
    finally:
        assert collector.stop(PATIENCE) is None
    assert [type(o) for o in outcomes] == [RuntimeError, RuntimeError]
    assert "collector's own thread" in str(outcomes[0])


def test_a_relay_turned_away_while_its_file_closes_is_logged_once_as_a_warning(
        recorded, tmp_path, monkeypatch, caplog):
    """A relay that reconnects while its file's close is stuck gets ERROR_BUSY (it retries):
    an expected transient, logged once per source, as a warning."""
    disk = _StuckClose(monkeypatch)
    head, buffers = recorded
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        first = HandRelay(collector.address, len(head), "closing")
        try:
            assert first.answer()[:2] == (P.FrameType.WELCOME, 0)
            first.header(head)
            first.buffer(1, buffers[0])
            first.end(2)
            assert disk.stuck.wait(PATIENCE)
            for _ in range(3):
                again = HandRelay(collector.address, len(head), "closing", first.source_id)
                try:
                    kind, _, payload = again.answer()
                    assert kind == P.FrameType.ERROR
                    assert P.decode_error(P.Frame(kind, 0, 0, payload))[0] == ERROR_BUSY
                finally:
                    again.close()
            disk.release.set()
            assert first.answer()[:2] == (P.FrameType.ACK, 2)
        finally:
            disk.release.set()
            first.close()
    said = [(r.levelname, r.getMessage()) for r in caplog.records
            if "being closed" in r.getMessage()]
    assert [level for level, _ in said] == ["WARNING", "DEBUG", "DEBUG"], said
    assert said[0][1].endswith("refused: this source's file is being closed (the relay retries)")


def _relay_cut_after_its_end(collector, proxy, recorded, **options) -> Relay:
    """A relay through ``proxy`` whose stream (the header and four buffers) ended; the link
    is cut once the collector has its END (its file's close is stuck): each reconnect is
    told ERROR_BUSY (the file is being closed) and retried every 0.05 s."""
    head, buffers = recorded
    relay = Relay(proxy.address, buffer_size=len(head), name="lingering", max_backoff=0.05,
                  **options).start()
    relay.add(head)
    for buf in buffers[:4]:
        relay.add(buf)
    relay.finish()
    assert collector.wait_for(lambda ss: ss and ss[0].ended, PATIENCE)
    proxy.cut(wait=True)
    return relay


def test_a_relay_lingers_while_the_collector_answers_that_its_file_closes(
        recorded, tmp_path, monkeypatch):
    """The collector's close of the file outlasts the relay's linger; the relay, cut off
    after its END, is told at every retry that the file is being closed: that is progress,
    so it waits on and ends delivered once the close is done."""
    disk = _StuckClose(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        proxy = Proxy(collector.address)
        relay = None
        try:
            relay = _relay_cut_after_its_end(collector, proxy, recorded, linger=2.0)
            assert disk.stuck.wait(PATIENCE)
            # 50 connections: at least 2.6 s of retries (0.2 s, then 0.05 s each), more
            # than the linger, all answered ERROR_BUSY
            wait_until(lambda: relay.stats.connects >= 50 or relay.wait(0),
                       what="the relay's retries")
            assert not relay.wait(0), relay.outcome
            disk.release.set()
            assert relay.wait(PATIENCE) and relay.outcome == "ended", relay.outcome
        finally:
            disk.release.set()
            if relay is not None:
                relay.close()
            proxy.close()
        (source,) = collector.sources
    assert source.ended and source.file_error == "" and source.buffers == 4


def test_a_relay_gives_up_at_its_linger_limit_however_the_collector_answers(
        recorded, tmp_path, monkeypatch):
    disk = _StuckClose(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        proxy = Proxy(collector.address)
        relay = None
        try:
            relay = _relay_cut_after_its_end(collector, proxy, recorded, linger=PATIENCE,
                                             linger_limit=0.5)
            assert relay.wait(PATIENCE)
        finally:
            disk.release.set()
            if relay is not None:
                relay.close()
            proxy.close()
    assert relay.outcome == ("failed: could not deliver the stream within 0.5 s of its end "
                             "(4 buffers undelivered)"), relay.outcome


def test_a_second_interrupt_makes_collect_exit_at_once_saying_what_it_left(
        recorded, tmp_path, monkeypatch, capsys):
    """The first SIGINT asks ``wpptrace collect`` to stop; a second one while that stop
    waits on a stuck disk ends the wait: the command returns 1 at once (the write still
    stuck) and says what it left unfinished."""
    from wpptrace.remote import cli_collect
    from wpptrace.remote import collector as collector_module

    disk = _StuckWrite(monkeypatch)
    stopping = threading.Event()
    started = []

    class SeenCollector(collector_module.Collector):
        def start(self):
            started.append(self)
            return super().start()

        def stop(self, timeout=30.0):
            stopping.set()
            return super().stop(timeout)

    monkeypatch.setattr(collector_module, "Collector", SeenCollector)
    monkeypatch.setattr(cli_collect, "STOP_WAIT", 10 * PATIENCE)    # only a cut ends it

    def interrupt_twice():
        os.kill(os.getpid(), signal.SIGINT)
        assert stopping.wait(PATIENCE)
        os.kill(os.getpid(), signal.SIGINT)
    code, still_stuck = collect_until_stuck(tmp_path, recorded, disk, started, signal.SIGINT, "twice",
                                            interrupt_twice)
    assert (code, still_stuck) == (1, True)
    err = capsys.readouterr().err
    assert "interrupted again: stopped without waiting: 1 connections not closed" in err
    assert started[0].wait(PATIENCE)


def test_collect_until_stuck_fails_rather_than_hangs_when_the_disk_never_hangs(
        recorded, tmp_path, monkeypatch):
    """The helper's thread finds that the disk did not hang: collect is interrupted all the
    same (it returns) and the helper fails, saying why, instead of waiting forever."""
    import types

    from wpptrace.remote import collector as collector_module

    started = []

    class SeenCollector(collector_module.Collector):
        def start(self):
            started.append(self)
            return super().start()

    monkeypatch.setattr(collector_module, "Collector", SeenCollector)
    never_stuck = types.SimpleNamespace(stuck=types.SimpleNamespace(wait=lambda timeout: False),
                                        release=threading.Event())
    with pytest.raises(AssertionError, match="the disk did not hang"):
        collect_until_stuck(tmp_path, recorded, never_stuck, started, signal.SIGTERM, "never",
                            lambda: None)
    assert started[0].wait(PATIENCE)


def test_the_helpers_interrupt_waits_for_a_handler_installed_late(monkeypatch):
    """collect_until_stuck's interrupt after a failure in its thread: collect may install its
    handler only after that thread stopped waiting for it (a loaded machine). The signal goes
    out once the handler is in place (never before: the test run itself would get it), and
    not at all once collect returned."""
    signum = signal.SIGUSR1
    original = signal.getsignal(signum)
    real_getsignal = signal.getsignal
    looked = threading.Event()

    def getsignal(sig):
        found = real_getsignal(sig)
        if threading.current_thread() is not threading.main_thread():
            looked.set()                        # (set once the handler was looked up)
        return found
    monkeypatch.setattr(signal, "getsignal", getsignal)
    got, sent = [], []
    returned = threading.Event()
    helper = threading.Thread(
        target=lambda: sent.append(signal_once_handled(signum, original, returned)))
    helper.start()
    try:
        assert looked.wait(PATIENCE)            # it looked once: no handler yet
        signal.signal(signum, lambda sig, frame: got.append(sig))   # collect's, late
        helper.join(PATIENCE)
        assert sent == [True]
        wait_until(lambda: got, what="the signal")
    finally:
        returned.set()
        helper.join(PATIENCE)
        signal.signal(signum, original)
    assert got == [signum]
    assert signal_once_handled(signum, original, returned) is False     # (collect returned)


class _Lines:
    """The lines a child process writes to ``stream``, read as they come (a thread)."""

    def __init__(self, stream):
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._ended = False
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._ended = True
            self._seen.notify_all()

    def wait_ended(self) -> list[str]:
        """Every line, once the stream ended (the process closed it: its last line is in)."""
        with self._seen:
            assert self._seen.wait_for(lambda: self._ended, PATIENCE), self.lines
            return list(self.lines)

    def wait_for(self, text: str) -> str:
        """The first line holding ``text``, once written (AssertionError if the stream ends,
        or PATIENCE passes, before)."""
        def found():
            return next((line for line in self.lines if text in line), None)
        with self._seen:
            self._seen.wait_for(lambda: found() is not None or self._ended, PATIENCE)
            assert found() is not None, f"no line with {text!r} in {self.lines}"
            return found()


def _never_acknowledging(monkeypatch) -> None:
    """The collector (in this process) writes what it gets but never ACKs: the relay holds
    every buffer, whenever it gives up (the ACKs of a real collector come every 8 buffers
    and after each STATS, at moments no test can pin)."""
    from wpptrace.remote import collector as collector_module

    monkeypatch.setattr(collector_module._Source, "ack", lambda self: None)


def _interrupted_relay(tmp_path, monkeypatch, twice: bool):
    """``wpptrace relay`` of a live session (a child process) into a collector whose file
    closes are stuck (END's ACK waits for them), interrupted once the collector has its
    first buffers and then, if ``twice``, again once the collector has its END (the
    collector then never ACKs: every buffer is left unacknowledged). Returns the process's
    exit code, its stderr lines, and the collector's source."""
    disk = _StuckClose(monkeypatch)
    if twice:
        _never_acknowledging(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector, \
            TracedSession(tmp_path, "interrupted", buffer_kb=8) as session:
        relay = relay_process(session.name, collector.address, "--linger", "600",
                              "--linger-limit", "600")
        err = _Lines(relay.stderr)
        try:
            err.wait_for("relaying to")         # (said once its interrupts are handled)
            session.log(500, size=100)
            session.flush()
            assert collector.wait_for(lambda ss: ss and ss[0].buffers > 0, PATIENCE)
            relay.send_signal(signal.SIGINT)    # stop reading, send what is left, then END
            assert collector.wait_for(lambda ss: ss[0].ended, PATIENCE)
            assert disk.stuck.wait(PATIENCE)    # END's ACK waits for the close
            if twice:
                assert relay.poll() is None     # lingering for END's ACK
                relay.send_signal(signal.SIGINT)
                code = relay.wait(PATIENCE)     # gives up at once, the close still stuck
                assert not disk.release.is_set()
            disk.release.set()
            if not twice:
                code = relay.wait(PATIENCE)
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            disk.release.set()
            if relay.poll() is None:
                relay.kill()
                relay.wait(PATIENCE)
        return code, err.wait_ended(), collector.sources[0]


def test_one_interrupt_of_relay_sends_what_is_left_and_waits_for_the_collector(
        tmp_path, monkeypatch):
    """The first SIGINT stops the reading; the relay sends what it holds and END, and waits
    for END's ACK (held until the collector's file is closed): delivered, exit 0."""
    code, lines, source = _interrupted_relay(tmp_path, monkeypatch, twice=False)
    assert code == 0, lines
    assert lines[-1].endswith("; stopped"), lines
    assert source.ended and not source.stopped and source.file_error == ""
    read = int(re.search(r"(\d+) buffers read", lines[-1]).group(1))
    assert source.buffers == read > 0


def test_a_second_interrupt_of_relay_gives_up_at_once_saying_what_it_left(
        tmp_path, monkeypatch):
    """The first SIGINT stops the reading and END goes out; the collector's close (and so
    END's ACK) hangs, and no buffer was acknowledged; a second SIGINT ends the relay at once,
    exit 1, saying how many buffers it left undelivered."""
    code, lines, source = _interrupted_relay(tmp_path, monkeypatch, twice=True)
    assert code == 1, lines
    said = re.search(r"; failed: could not deliver the stream: stopped after its end, before "
                     r"the collector acknowledged it \((\d+) buffers undelivered\)$", lines[-1])
    assert said, lines
    read = int(re.search(r"(\d+) buffers read", lines[-1]).group(1))
    assert int(said.group(1)) == read > 0, lines
    assert source.ended and source.file_error == ""


def test_a_sigterm_after_the_sessions_own_end_gives_up_after_the_stop_limit(
        tmp_path, monkeypatch):
    """The session stopped on its own and END went out; the collector's close (and so END's
    ACK) hangs, and no buffer was acknowledged. A service manager's SIGTERM must end the
    relay promptly, not after its linger limit (600 s here): it gives up once --stop-limit
    passed, exit 1, saying how many buffers it left undelivered."""
    disk = _StuckClose(monkeypatch)
    _never_acknowledging(monkeypatch)
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector, \
            TracedSession(tmp_path, "terminated", buffer_kb=8) as session:
        relay = relay_process(session.name, collector.address, "--linger", "600",
                              "--linger-limit", "600", "--stop-limit", "1")
        err = _Lines(relay.stderr)
        try:
            said = err.wait_for("relaying to")
            session.log(500, size=100)
            session.stop()
            err.wait_for("the session stopped")
            assert collector.wait_for(lambda ss: ss and ss[0].ended, PATIENCE)
            assert disk.stuck.wait(PATIENCE)    # END's ACK waits for the close
            relay.send_signal(signal.SIGTERM)
            code = relay.wait(PATIENCE)         # (a hang guard: the limit is 1 s)
            still_stuck = not disk.release.is_set()
        finally:
            disk.release.set()
            if relay.poll() is None:
                relay.kill()
                relay.wait(PATIENCE)
        lines = err.wait_ended()
        assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        source = collector.sources[0]
    assert (code, still_stuck) == (1, True), lines
    left = re.search(r"; failed: could not deliver the stream within 1 s of the stop "
                     r"\((\d+) buffers undelivered\)$", lines[-1])
    assert left, lines
    read = int(re.search(r"(\d+) buffers read", lines[-1]).group(1))
    assert int(left.group(1)) == read > 0, lines
    assert "an interrupt stops reading and sends what is left, for at most 1 s" in said
    assert source.ended and source.file_error == ""


def _acks_every_buffer_never_end(got_end: threading.Event):
    """A fake collector's conversation: welcomes, acknowledges each buffer, never END."""
    def serve(sock):
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        while True:
            kind, seq = read_frame(sock)
            if kind == P.FrameType.BUFFER:
                sock.sendall(P.encode(P.FrameType.ACK, seq + 1))
            elif kind == P.FrameType.END:
                got_end.set()
    return serve


#: how a relay's wait for END's ACK ends, every buffer it held acknowledged: the options
#: (beside long ones), what the test then does, and what the relay says it gave up on
_ONLY_ENDS_ACK_MISSING = {
    "stop-limit": (dict(stop_limit=0.5), ("finish", "stop"),
                   "ended: END not acknowledged within 0.5 s of the stop"),
    "linger-limit": (dict(linger_limit=0.5), ("finish",),
                     "ended: END not acknowledged within 0.5 s of its end"),
    "linger-limit-with-no-stop-limit": (dict(linger_limit=0.5, stop_limit=None), ("stop",),
                                        "stopped: END not acknowledged within 0.5 s of its end"),
    "second-stop": (dict(), ("finish", "stop", "stop"),
                    "ended: END not acknowledged: stopped after its end, before the collector "
                    "acknowledged it"),
}


@pytest.mark.parametrize("how", list(_ONLY_ENDS_ACK_MISSING))
def test_a_give_up_with_only_ends_ack_missing_leaves_nothing_undelivered(recorded, how):
    """The one buffer the relay held was acknowledged (the two after it were dropped, its
    queue full), only END's ACK did not come: whichever limit (or a second stop) ends the
    wait, the relay says that it ended (or stopped) with no buffer left undelivered, not
    that it failed, and that END was not confirmed to have reached the collector (nothing
    said it did: END's ACK, or a later answer that the stream ended or that its file is
    being closed). The stream ends (``finish``, or a ``stop`` before it) only once that
    buffer was acknowledged: the limits, counted from the end or the stop, are passed in
    that state however slow the machine."""
    options, steps, said = _ONLY_ENDS_ACK_MISSING[how]
    got_end = threading.Event()
    fake = FakeCollector(_acks_every_buffer_never_end(got_end))
    head, buffers = recorded
    long = 10 * PATIENCE
    relay = Relay(fake.address, buffer_size=len(head), name="acked",
                  **{"linger": long, "linger_limit": long, "reply_timeout": long,
                     "stop_limit": long, "max_queue": 1, **options})
    try:
        relay.add(head)
        for buf in buffers[:3]:
            relay.add(buf)
        relay.start()
        wait_until(lambda: relay.stats.acknowledged == 2, what="the buffer held acknowledged")
        for step in steps:
            getattr(relay, step)()
            if step == "finish":
                assert got_end.wait(PATIENCE)
        assert relay.wait(PATIENCE), "the limit did not end the relay (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert relay.outcome == (f"{said}: every buffer was delivered, but the end of the stream "
                             f"was not confirmed (the collector's file may lack the session's "
                             f"end time and last loss counts)"), relay.outcome
    assert relay.end_unconfirmed
    assert relay.stats.relay_dropped == 2


@pytest.mark.parametrize("how", ["stop-limit", "linger-limit"])
def test_relay_exits_3_when_only_ends_ack_is_missing(recorded, monkeypatch, capsys, how):
    """``wpptrace relay`` waiting for END's ACK, the buffer it held acknowledged (those after
    it dropped: --max-queue 1): ended by its --stop-limit once SIGTERMed, or by its
    --linger-limit with no stop limit (the stream ends once that buffer was acknowledged),
    it exits with status 3: no buffer was left undelivered, but nothing said that END
    reached the collector (exit status 0 says that it did, 1 that buffers were left)."""
    from wpptrace import cli
    from wpptrace.remote import relay as relay_module

    got_end = threading.Event()
    fake = FakeCollector(_acks_every_buffer_never_end(got_end))
    head, buffers = recorded
    made = []

    class Fed(relay_module.Relay):
        """The relay the command makes, fed the recorded buffers instead of a session's."""

        def __init__(self, to, **options):
            options.pop("session")
            super().__init__(to, buffer_size=len(head), name="fed", **options)
            made.append(self)

        def start(self):
            self.add(head)
            for buf in buffers[:3]:
                self.add(buf)
            if how == "stop-limit":
                self.finish()
            return super().start()
    monkeypatch.setattr(relay_module, "Relay", Fed)
    original = signal.getsignal(signal.SIGTERM)
    failed = []

    def end_once_acknowledged():
        try:
            wait_until(lambda: made and signal.getsignal(signal.SIGTERM) is not original,
                       what="relay running")
            wait_until(lambda: made[0].stats.acknowledged == 2,
                       what="the buffer held acknowledged")
            if how == "linger-limit":
                made[0].finish()                # its linger limit counts from now
                return
            assert got_end.wait(PATIENCE)
        except BaseException as exc:            # noqa: BLE001 - asserted once relay returned
            failed.append(f"{type(exc).__name__}: {exc}")
        if signal.getsignal(signal.SIGTERM) is not original:
            os.kill(os.getpid(), signal.SIGTERM)
    helper = threading.Thread(target=end_once_acknowledged)
    helper.start()
    limits = (["--stop-limit", "0.5"] if how == "stop-limit"
              else ["--stop-limit", "none", "--linger-limit", "0.5"])
    try:
        code = cli.main(["relay", "some-session", "--to", "%s:%d" % fake.address, "-q",
                         "--max-queue", "1", *limits])
    finally:
        helper.join(PATIENCE)
        fake.close()
    assert not failed, failed
    err = capsys.readouterr().err
    assert code == 3, err
    since = "the stop" if how == "stop-limit" else "its end"
    assert err.rstrip("\n").endswith(
        f"; ended: END not acknowledged within 0.5 s of {since}: every buffer was delivered, "
        f"but the end of the stream was not confirmed (the collector's file may lack the "
        f"session's end time and last loss counts)"), err


@pytest.mark.parametrize("stop_limit", [None, 30.0])
def test_a_stop_limit_of_none_leaves_only_the_linger_limit(recorded, monkeypatch, stop_limit):
    """``stop_limit=None``: a stop after the end sets no limit of its own, however long ago
    it came; only the linger limit, counted from the end, ends the wait for END's ACK (a
    finite stop limit, 30 s here, ends it 30 s after the stop). The relay's clock is the
    test's."""
    from wpptrace.remote import relay as relay_module

    clock = RelayClock(monkeypatch)
    head, _ = recorded
    relay = Relay(("127.0.0.1", 9), buffer_size=len(head), name="unlimited", linger=10**9,
                  linger_limit=100_000.0, stop_limit=stop_limit)      # (never started)
    relay.add(head)
    relay.finish()
    clock.now += 10.0
    relay.stop()
    clock.now += 31.0
    if stop_limit is None:
        assert relay._check_linger(connected=False) == pytest.approx(100_000.0 - 41.0)
        clock.now += 100_000.0 - 41.0 + 1.0
        expected = " within 100000 s of its end"
    else:
        expected = " within 30 s of the stop"
    with pytest.raises(relay_module._GiveUp) as given_up:
        relay._check_linger(connected=False)
    assert str(given_up.value) == expected


def test_a_stop_after_the_end_waits_at_most_the_stop_limit(recorded):
    """A relay whose stream ended waits for END's ACK (a collector closing a slow file says
    nothing meanwhile); one stop() then leaves it its stop limit, not its linger limit."""
    got_end = threading.Event()

    def silent_after_end(sock):
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        while True:
            if read_frame(sock)[0] == P.FrameType.END:
                got_end.set()
    fake = FakeCollector(silent_after_end)
    head, buffers = recorded
    relay = Relay(fake.address, buffer_size=len(head), name="stopped", linger=10 * PATIENCE,
                  linger_limit=10 * PATIENCE, reply_timeout=10 * PATIENCE, stop_limit=0.5)
    try:
        relay.add(head)
        for buf in buffers[:3]:
            relay.add(buf)
        relay.finish()
        relay.start()
        assert got_end.wait(PATIENCE)
        relay.stop()
        assert relay.wait(PATIENCE), "the stop limit did not end the relay (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    assert relay.outcome == ("failed: could not deliver the stream within 0.5 s of the stop "
                             "(3 buffers undelivered)"), relay.outcome


def _acks_every_buffer_then_answers(connections: list, answer: str):
    """A fake collector's conversation: the first connection welcomes, acknowledges each
    buffer, takes END and starts the file's close, and the connection is lost before END's
    ACK (a collector that closes the file says nothing until then); each later one is
    refused with ERROR_BUSY ``answer``."""
    def serve(sock):
        connections.append(None)
        if len(connections) > 1:
            sock.sendall(P.encode_error(ERROR_BUSY, answer))
            return
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        while True:
            kind, seq = read_frame(sock)
            if kind == P.FrameType.BUFFER:
                sock.sendall(P.encode(P.FrameType.ACK, seq + 1))
            elif kind == P.FrameType.END:
                # lost in the middle of a frame: not the clean close after END's ACK (and,
                # unlike a reset, the ACKs before it are read)
                sock.sendall(P.encode(P.FrameType.ACK, seq)[:5])
                sock.close()
                return
    return serve


def _given_up_after_later_answers(serve, connections: list, recorded) -> Relay:
    """A relay with the recorded header, three buffers and the end, given up (a second stop)
    once ``serve``'s later connections (``connections``) reached three: it came again after
    the second of their answers, so it took that answer."""
    fake = FakeCollector(serve)
    head, buffers = recorded
    long = 10 * PATIENCE
    relay = Relay(fake.address, buffer_size=len(head), name="signs", linger=long,
                  linger_limit=long, reply_timeout=long, stop_limit=long, max_backoff=0.2)
    try:
        relay.add(head)
        for buf in buffers[:3]:
            relay.add(buf)
        relay.finish()
        relay.start()
        wait_until(lambda: len(connections) >= 3, what="the later answers taken")
        relay.stop()
        relay.stop()
        assert relay.wait(PATIENCE), "the second stop did not end the relay (hang guard)"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    return relay


@pytest.mark.parametrize("answer, confirmed", [
    (P.BUSY_FILE_CLOSING, True),
    (P.BUSY_FILE_CLOSING_WITHOUT_END, False),
    (P.BUSY_FILE_WRITING, False),
    ("too many connections from 127.0.0.1", False),
], ids=["file-being-closed", "closed-without-end", "still-written", "busy"])
def test_a_later_answer_that_the_file_is_being_closed_confirms_end(recorded, answer,
                                                                   confirmed):
    """Every buffer acknowledged, END sent and never acknowledged: a later connection told
    that the source's file is being closed (said only for a close END started) knows END
    reached the collector, and the relay that gives up then (a second stop here) counts the
    stream delivered. Any other answer, that the file is being closed without its end too,
    leaves END's arrival unconfirmed."""
    connections: list = []
    relay = _given_up_after_later_answers(
        _acks_every_buffer_then_answers(connections, answer), connections, recorded)
    assert relay.stats.acknowledged == 4
    said = ("ended: END not acknowledged: stopped after its end, before the collector "
            "acknowledged it")
    if confirmed:
        assert relay.outcome == f"{said} (the collector has it: its file was being closed)", \
            relay.outcome
        assert not relay.end_unconfirmed
    else:
        assert relay.outcome.startswith(f"{said}: every buffer was delivered, but the end of "
                                        f"the stream was not confirmed"), relay.outcome
        assert relay.end_unconfirmed


def test_a_file_being_closed_after_the_stream_split_confirms_only_the_new_files_end(recorded):
    """The collector lost the stream mid-way (a WELCOME below what it acknowledged: the rest
    goes to a new file), then took END there and started that file's close: a later answer
    that the source's file is being closed confirms the new file's end, not the first
    file's, so the relay that then gives up says the end unconfirmed (exit status 3)."""
    first: list = []
    connections: list = []          # those after the first
    later = _acks_every_buffer_then_answers(connections, P.BUSY_FILE_CLOSING)

    def serve(sock):
        if first:                       # the stream lost: WELCOME 0 again, then as above
            return later(sock)
        first.append(None)
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))
        while read_frame(sock)[0] != P.FrameType.BUFFER:
            pass
        sock.sendall(P.encode(P.FrameType.ACK, 2))      # the header and the first buffer
        close_as_told(sock)                             # lost (no reset takes the ACK away)

    relay = _given_up_after_later_answers(serve, connections, recorded)
    assert relay.stats.acknowledged == 4
    assert relay.end_unconfirmed, relay.outcome
    assert "lost the stream" in relay.outcome and "first file lacks" in relay.outcome, \
        relay.outcome


def test_a_collector_started_again_after_ends_close_began_keeps_that_sign(recorded):
    """Every buffer acknowledged, END sent and never acknowledged; a later connection is told
    that the source's file is being closed (a close END started), and the next is welcomed
    at 0: the collector stopped meanwhile and was started again. The relay is done, as after
    the stopping collector's ERROR_CANCELLED, and END's arrival stays confirmed by that
    earlier answer: the close was the first file's, there was no other (exit status 0). The
    WELCOME threw that answer away: the end said unconfirmed (exit status 3)."""
    connections: list = []
    closing = _acks_every_buffer_then_answers(connections, P.BUSY_FILE_CLOSING)

    def serve(sock):
        if len(connections) < 2:
            return closing(sock)
        connections.append(None)
        sock.sendall(P.encode(P.FrameType.WELCOME, 0))  # a collector started again
    relay = delivered_by(FakeCollector(serve), recorded, "restarted")
    assert len(connections) == 3
    assert relay.stats.acknowledged == 5
    assert relay.outcome == ("ended: END not acknowledged (the collector no longer has the "
                             "stream: it would start a new file) (the collector has it: its "
                             "file was being closed)"), relay.outcome
    assert not relay.end_unconfirmed


def test_a_file_closed_without_its_end_is_no_sign_that_end_arrived(recorded, tmp_path,
                                                                    monkeypatch):
    """With no resume window, a collector that fails on the connection (an internal error)
    before it took END closes the file without it (EndTime 0). A relay that comes again
    while that close is slow is told the file is being closed without its end: not the
    answer a close END started gets, so the relay that then gives up says END's arrival
    unconfirmed (exit status 3), not delivered."""
    from wpptrace.remote import collector as collector_module

    disk = _StuckClose(monkeypatch)
    take = collector_module._Source.take
    failed: list[int] = []

    def fail_on_the_first_end(self, frame):
        if frame.type == P.FrameType.END and not failed:
            failed.append(frame.sequence)
            raise RuntimeError("a defect in the collector")
        return take(self, frame)
    monkeypatch.setattr(collector_module._Source, "take", fail_on_the_first_end)
    head, buffers = recorded
    long = 10 * PATIENCE
    relay = None
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   resume_window=0) as collector:
        try:
            relay = Relay(collector.address, buffer_size=len(head), name="unended",
                          linger=long, linger_limit=long, reply_timeout=long,
                          stop_limit=long, max_backoff=0.2)
            relay.add(head)
            for buf in buffers[:3]:
                relay.add(buf)
            relay.start()
            wait_until(lambda: relay.stats.acknowledged == 4, what="every buffer acknowledged")
            relay.finish()
            assert disk.stuck.wait(PATIENCE)
            # (refused twice: the relay came again after the first answer)
            wait_until(lambda: collector.connections_refused >= 2, what="the retries refused")
            relay.stop()
            relay.stop()
            assert relay.wait(PATIENCE), "the second stop did not end the relay (hang guard)"
        finally:
            disk.release.set()
            if relay is not None:
                relay.close(timeout=0.5)
        assert collector.wait_for(lambda ss: ss and ss[0].closed, PATIENCE)
        (source,) = collector.sources
    assert failed and not source.ended and not source.stopped
    assert relay.outcome.startswith(
        "ended: END not acknowledged: stopped after its end, before the collector "
        "acknowledged it: every buffer was delivered, but the end of the stream was not "
        "confirmed"), relay.outcome
    assert relay.end_unconfirmed
