"""Real-time consumers in other processes: header first, then what was flushed before they
came, then live buffers; several consumers; a slow one; consumers that leave; the live view
of fmt --rt / tracefmt -rt ending on session stop and on Ctrl-C."""
from __future__ import annotations

import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

import provider_etlcheck as etlcheck
import wpptrace.provider as P
from wpptrace.provider.sessions import TraceSession, session_info, subscribe_realtime

HERE = os.path.dirname(os.path.abspath(__file__))
GUID = uuid.UUID("5ee5ee5e-0000-4000-8000-00000000feed")
PATIENCE = 20.0
#: a command run with Ctrl-C at its default, as a terminal's foreground job has it, whatever
#: this process was given: a suite started in the background (``&`` in a shell without job
#: control) ignores SIGINT, an ignored signal stays ignored across exec, and a Python program
#: started so sets no Ctrl-C handler (a live view then ignores it, as a background job should)
AS_FOREGROUND = [sys.executable, "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                 "os.execvp(sys.argv[1], sys.argv[1:])"]


class Consumer:
    """xproc_consumer.py: an OpenTrace/ProcessTrace consumer of a real-time session."""

    def __init__(self, session: str):
        # unbuffered: readline takes exactly the first line, communicate() the rest
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "xproc_consumer.py"), session],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
        assert self.proc.stdout.readline().split() == [b"opened"], self.proc.stderr.read()

    def finish(self) -> list[list[str]]:
        out, err = self.proc.communicate(timeout=PATIENCE)
        lines = [line.split() for line in out.decode().splitlines()]
        assert lines and lines[-1] == ["done", "0"], (lines[-3:], err)
        return lines[:-1]


@pytest.fixture
def consumers():
    started: list[Consumer] = []

    def start(session: str) -> Consumer:
        consumer = Consumer(session)
        started.append(consumer)
        return consumer
    yield start
    for consumer in started:
        if consumer.proc.poll() is None:
            consumer.proc.kill()
        consumer.proc.communicate()


def wait_for_consumers(name: str, count: int) -> None:
    deadline = time.monotonic() + PATIENCE
    while session_info(name).realtime_consumers != count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert session_info(name).realtime_consumers == count


def kept_oldest_in_order(numbers: list[int], queue: int) -> bool:
    """What a consumer that does not read is owed, numbered from 0: the first ``queue``
    (MaximumBuffers) without a gap, since nothing is dropped before its queue is full, then
    the rest in order. A full queue drops the newest buffer, but the host's sender may make
    room again before the socket is full, so a buffer after a dropped one may still come."""
    return (numbers[:queue] == list(range(min(queue, len(numbers))))
            and all(a < b for a, b in zip(numbers, numbers[1:])))


def log(s: TraceSession, number: int, values, flush: bool = True) -> None:
    for v in values:
        P.TraceMessage(s.handle, 0x2B, GUID, number, v.to_bytes(4, "little"))
    if flush:
        s.flush()


def realtime(name: str, **props) -> TraceSession:
    # FlushTimer far beyond a test's run: only explicit flushes and the stop flush
    props.setdefault("FlushTimer", 3600)
    props.setdefault("LogFileMode", P.EVENT_TRACE_REAL_TIME_MODE)
    return TraceSession(name, None, **props)


def test_consumer_in_another_process_gets_header_then_buffered_then_live(session_name, consumers):
    with realtime(session_name, BufferSize=4) as s:
        log(s, 1, range(5))                 # flushed before anyone listens: waits for the first
        consumer = consumers(session_name)
        log(s, 2, range(5, 10))
        log(s, 2, range(10, 15), flush=False)   # the stop flushes these
    lines = consumer.finish()
    assert lines[0] == ["header"]
    assert [(int(n), int(v)) for _, n, v in lines[1:]] == [(1, v) for v in range(5)] + [(2, v) for v in range(5, 15)]


def test_two_consumers_each_get_every_event(session_name, consumers):
    # one buffer stream: moved to another processor, this thread would fill that processor's
    # buffer, flushed as soon as it is full, before the older one it left half filled (order
    # across flushes is arrival order)
    with realtime(session_name, BufferSize=4, MaximumBuffers=64,
                  LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE | P.EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) as s:
        a, b = consumers(session_name), consumers(session_name)
        assert session_info(session_name).realtime_consumers == 2
        for start in range(0, 2000, 200):
            log(s, 3, range(start, start + 200))
    for consumer in (a, b):
        lines = consumer.finish()
        assert lines[0] == ["header"]
        assert [int(v) for _, _, v in lines[1:]] == list(range(2000))


def test_slow_consumer_is_queued_up_to_maximum_buffers_then_counted_lost(session_name):
    """A consumer that does not read: the host keeps MaximumBuffers buffers for it (and the
    socket a few more), then counts RealTimeBuffersLost; the writers never wait. Every
    buffer is either delivered or counted."""
    flushed = 60
    with realtime(session_name, BufferSize=4, MinimumBuffers=2, MaximumBuffers=8) as s:
        with subscribe_realtime(session_name) as sub:
            for i in range(flushed):
                log(s, 4, [i])
            lost = s.query().RealTimeBuffersLost
            assert lost > 0
            got = []
            deadline = time.monotonic() + PATIENCE
            while len(got) < 1 + flushed - lost and time.monotonic() < deadline:
                if (data := sub.get(0.5)) is not None:       # patient: a loaded host is slow
                    got.append(data)
            assert sub.get(0.5) is None                      # and nothing beyond
            values = [int.from_bytes(m["args"], "little") for d in got[1:] for m in etlcheck.buffer_messages(d)]
            assert len(got) - 1 + lost == flushed
            assert len(got) - 1 <= 8 + 3          # MaximumBuffers, and what the socket holds
            assert kept_oldest_in_order(values, 8)
            assert s.query().RealTimeBuffersLost == lost


@pytest.mark.parametrize("private", [False, True], ids=["host", "private"])
def test_the_end_of_a_stream_says_the_last_sequence_and_the_drops_after_the_last_buffer(session_name, private):
    """A consumer that does not read while the session flushes its last buffers and stops:
    the newest buffers are dropped, so the buffers it gets cannot show the last ones lost; the
    end of the stream says the last SequenceNumber flushed and this subscription's drops,
    which account for every buffer."""
    flushed = 60
    mode = P.EVENT_TRACE_REAL_TIME_MODE | (P.EVENT_TRACE_PRIVATE_LOGGER_MODE if private else 0)
    s = realtime(session_name, BufferSize=4, MinimumBuffers=2, MaximumBuffers=8, LogFileMode=mode)
    with subscribe_realtime(session_name) as sub:
        try:
            for i in range(flushed):
                log(s, 4, [i])
            assert sub.final_sequence is None and sub.dropped is None     # still running
        finally:
            final = s.stop()
        got = list(sub)                                  # header buffer, then what was kept
        assert sub.closed
        sequences = [etlcheck.BUFFER_HEADER.unpack_from(d, 0)[5] for d in got[1:]]  # SequenceNumber
        assert kept_oldest_in_order([n - 1 for n in sequences], 8)
        assert sub.final_sequence == flushed > sequences[-1]     # drops after the last one
        assert sub.dropped == flushed - len(sequences) == final.RealTimeBuffersLost > 0
    assert sub.final_sequence == flushed and sub.dropped == final.RealTimeBuffersLost  # kept


def test_a_consumer_that_leaves_does_not_disturb_the_session(session_name, consumers, tmp_path):
    path = tmp_path / "stays.etl"
    with TraceSession(session_name, path, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE
                      | P.EVENT_TRACE_FILE_MODE_SEQUENTIAL, FlushTimer=3600) as s:
        gone, stays = consumers(session_name), consumers(session_name)
        log(s, 5, range(10))
        gone.proc.kill()
        gone.proc.wait()
        log(s, 5, range(10, 20))
        wait_for_consumers(session_name, 1)
    assert [int(v) for _, _, v in stays.finish()[1:]] == list(range(20))
    assert len(etlcheck.read(path).messages) == 20


def test_subscription_from_this_process_sees_a_consumer_count_of_zero_after_close(session_name):
    """Closed subscriptions leave the session at once (they used to stay listed until STOP)."""
    with realtime(session_name) as s:
        for _ in range(20):
            sub = subscribe_realtime(session_name)
            assert sub.get(PATIENCE) is not None
            sub.close()
        wait_for_consumers(session_name, 0)
        log(s, 6, [1])


def test_closed_subscriptions_of_a_private_session_leave_it(session_name):
    """The in-process hub of a private session frees a closed subscription at once (they
    stayed on its list until the session ended)."""
    with realtime(session_name, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE | P.EVENT_TRACE_PRIVATE_LOGGER_MODE):
        for _ in range(20):
            sub = subscribe_realtime(session_name)
            assert sub.get(PATIENCE) is not None
            assert session_info(session_name).realtime_consumers == 1
            sub.close()
            assert session_info(session_name).realtime_consumers == 0


def test_private_session_consumers_in_this_process(session_name):
    """A private session serves consumers of its own process; no other process sees it."""
    with realtime(session_name, LogFileMode=P.EVENT_TRACE_REAL_TIME_MODE | P.EVENT_TRACE_PRIVATE_LOGGER_MODE) as s:
        with subscribe_realtime(session_name) as sub:
            assert sub.get(PATIENCE)[0x36] == 4
            log(s, 7, [42])
            assert [m["args"] for m in etlcheck.buffer_messages(sub.get(PATIENCE))] == [(42).to_bytes(4, "little")]
        script = ("import sys; from wpptrace.provider.sessions import subscribe_realtime\n"
                  "try:\n    subscribe_realtime(sys.argv[1])\nexcept OSError as e:\n    print(e.winerror)")
        out = subprocess.run([sys.executable, "-c", script, session_name], capture_output=True, text=True,
                             timeout=PATIENCE).stdout.split()
        assert out == [str(P._lib.ERROR_WMI_INSTANCE_NOT_FOUND)]


@pytest.fixture(scope="module")
def demo_tmf(tmp_path_factory):
    """An app whose provider has a TMF (tmf gen), for decoded live views."""
    tmp = tmp_path_factory.mktemp("livedemo")
    app = tmp / "liveapp.py"
    app.write_text(
        "import sys, time\n"
        "from wpptrace.provider.tracing import Provider\n"
        "trace = Provider('LiveDemo', guid='8e0f6b1c-4a7d-4c52-b1e3-2f8d6a5c7b91', flags=('IO',))\n"
        "for i in range(int(sys.argv[1])):\n"
        "    trace.info(trace.flags.IO, 'tick %d of %s', i, 'live')\n")
    subprocess.run([sys.executable, "-m", "wpptrace", "tmf", "gen", str(app), "-o", str(tmp / "tmf")],
                   check=True, capture_output=True)
    return app, tmp / "tmf", uuid.UUID("8e0f6b1c-4a7d-4c52-b1e3-2f8d6a5c7b91")


@pytest.mark.parametrize("command", [["wpptrace", "fmt", "--rt"], ["tracefmt", "-displayonly", "-rt"]])
def test_live_view_ends_when_the_session_stops(session_name, demo_tmf, command, tmp_path):
    app, tmf, control = demo_tmf
    with realtime(session_name, FlushTimer=1) as s:
        s.enable(control, 0xFFFFFFFF, 5)
        view = subprocess.Popen([*command, session_name, "-p", str(tmf)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        wait_for_consumers(session_name, 1)
        subprocess.run([sys.executable, str(app), "7"], check=True, timeout=PATIENCE)
    out, err = view.communicate(timeout=PATIENCE)
    assert view.returncode == 0, err
    assert [line.split("]")[-1] for line in out.splitlines() if "LiveDemo" in line] == \
        [f"tick {i} of live" for i in range(7)]


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_live_view_ends_on_ctrl_c_with_its_output_written(session_name, demo_tmf, tmp_path, stop):
    """Ctrl-C, or SIGTERM (a service manager's or CI job's stop), ends a live view with what
    it decoded written out (SIGTERM used to leave through the error path: no file)."""
    app, tmf, control = demo_tmf
    out_file = tmp_path / "live.txt"
    with realtime(session_name, FlushTimer=1) as s:
        s.enable(control, 0xFFFFFFFF, 5)
        # -display: the console shows each line as it is decoded, so the interrupt comes once
        # the three were taken (the file itself is put in place only when the view ends)
        # (PYTHONFAULTHANDLER: a view that does not end is aborted and shows where it was)
        view = subprocess.Popen([*AS_FOREGROUND, "tracefmt", "-rt", session_name, "-p", str(tmf), "-o",
                                 str(out_file), "-display"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                                env=dict(os.environ, PYTHONFAULTHANDLER="1"))
        wait_for_consumers(session_name, 1)
        subprocess.run([sys.executable, str(app), "3"], check=True, timeout=PATIENCE)
        s.flush()
        shown, pending = 0, b""
        deadline = time.monotonic() + PATIENCE
        while shown < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([view.stdout], [], [], 0.2)
            if ready:
                chunk = os.read(view.stdout.fileno(), 65536)
                assert chunk, "the live view ended before the interrupt"
                pending += chunk
                *lines, pending = pending.split(b"\n")
                shown += sum(b"LiveDemo" in line for line in lines)
        assert shown == 3
        view.send_signal(stop)
        try:
            _, err = view.communicate(timeout=PATIENCE)
        except subprocess.TimeoutExpired:
            view.send_signal(signal.SIGABRT)
            _, err = view.communicate(timeout=PATIENCE)
            pytest.fail(f"the view did not end on {stop.name}; where it was:\n{err.decode()}")
        err = err.decode()
    assert view.returncode == 0, err
    assert "Traceback" not in err and "Event traces dumped to" in err
    lines = out_file.read_text().splitlines()
    assert [line.split("]")[-1] for line in lines if "LiveDemo" in line] == [f"tick {i} of live" for i in range(3)]


def test_ctrl_c_ends_a_live_view_between_buffers_with_every_line_written(session_name, monkeypatch):
    """fmt --rt in this process (its main thread): Ctrl-C ends the view at the next buffer
    boundary (the source is told to stop; no KeyboardInterrupt lands inside the loop, where
    a buffer taken from the session and not yet decoded would be lost), every line it was
    given is written, and Python's Ctrl-C handler is back afterwards."""
    from wpptrace.decoder import cli_fmt
    from wpptrace.decoder.realtime import RealtimeSource

    # as in a fresh process: another library in this one (pyspark) may have left its own
    # handler, which run_fmt keeps
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    term = signal.getsignal(signal.SIGTERM)
    told, loop_ended = [], []
    interrupt = RealtimeSource.interrupt
    monkeypatch.setattr(RealtimeSource, "interrupt", lambda self: (told.append(1), interrupt(self)))
    decode_sources = cli_fmt._decode_sources

    def watched(*args, **kwargs):
        try:
            decode_sources(*args, **kwargs)
        except BaseException as exc:
            loop_ended.append(type(exc).__name__)
            raise
        loop_ended.append("returned")
    monkeypatch.setattr(cli_fmt, "_decode_sources", watched)
    out, err = io.StringIO(), io.StringIO()
    with realtime(session_name) as s:
        def ctrl_c_once_shown():
            wait_for_consumers(session_name, 1)
            log(s, 4, range(20))
            deadline = time.monotonic() + PATIENCE
            while out.getvalue().count("\n") < 21 and time.monotonic() < deadline:   # header + 20
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGINT)

        driver = threading.Thread(target=ctrl_c_once_shown)
        driver.start()
        try:
            code = cli_fmt.run_fmt(cli_fmt.FmtOptions(realtime=session_name, progress="never",
                                                      cache=False), out=out, err=err)
        finally:
            driver.join(PATIENCE)
            handler = signal.signal(signal.SIGINT, previous)
    assert code == 0, err.getvalue()
    assert told == [1] and loop_ended == ["returned"]
    assert handler is signal.default_int_handler
    assert signal.getsignal(signal.SIGTERM) == term      # SIGTERM's handler put back too
    lines = out.getvalue().splitlines()
    assert "[Header]EventTrace" in lines[0]
    assert len(lines) == 21 and all("Unknown(  4)" in line for line in lines[1:]), lines[:3]
