"""Helpers of the relay/collector tests (a plain module: conftest puts this folder on sys.path).

``TracedSession``: a real-time session that also writes its own .etl (the reference the
collected file is compared with), with one enabled provider in this process whose messages
carry unique arguments. ``relay_process``: ``wpptrace relay`` as a child process.
"""
from __future__ import annotations

import io
import os
import pathlib
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid

from wpptrace._core import lib
from wpptrace.provider import api
from wpptrace.provider._hazmat import trace_packed_raw

MESSAGE_GUID = uuid.UUID("6a1f0c2e-9d3b-4e7a-8c51-3b2d9e4f7a10")
MESSAGE_NUMBER = 10
#: SEQUENCE | GUID | TIMESTAMP | SYSTEMINFO: what WPP's default macros log
MESSAGE_FLAGS = 0x2B
TMF_TEXT = f"""\
// written by the relay tests
{MESSAGE_GUID} RelayTest // SRC=remote_helpers.py MJ= MN=
#typev remote_helpers_py10 {MESSAGE_NUMBER} "%0value %10!d! from %11!s! tick %12!I64x!" //   LEVEL=TRACE_LEVEL_INFORMATION FUNC=emit
{{
value, ItemLong -- 10
source, ItemString -- 11
tick, ItemLongLong -- 12
}}
"""
#: seconds a test waits for another process or thread: only a hang gets near it
PATIENCE = 60.0
#: this folder (for a child process that imports these helpers)
HERE = pathlib.Path(__file__).resolve().parent
_FLUSH_TIMER = 1


class TracedSession:
    """A REAL_TIME_MODE session with its own sequential .etl and one enabled provider."""

    def __init__(self, directory: pathlib.Path, tag: str, *, buffer_kb: int = 64,
                 max_buffers: int | None = None, file: bool = True):
        self.tag = tag
        self.name = f"relay-{tag}-{uuid.uuid4().hex[:8]}"
        self.path = directory / f"{self.name}.etl" if file else None
        self.control_guid = uuid.uuid4()
        self.logger = None
        self.registration = api.RegisterTraceGuids(self._control, None, self.control_guid,
                                                   [MESSAGE_GUID])
        if max_buffers is None:
            # at least 8 MB queued for a consumer: a relay slowed down by a loaded test machine
            # must not make the session drop buffers the test counts on
            max_buffers = max(256, 8192 // buffer_kb)
        mode = lib.EVENT_TRACE_REAL_TIME_MODE
        if file:
            mode |= lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL
        props = api.EVENT_TRACE_PROPERTIES(BufferSize=buffer_kb, MinimumBuffers=4,
                                           MaximumBuffers=max_buffers, LogFileMode=mode,
                                           FlushTimer=_FLUSH_TIMER,
                                           LogFileName=str(self.path) if file else "")
        self.handle = api.StartTrace(self.name, props)
        self.final = None
        api.EnableTrace(True, 0xFFFFFFFF, 5, self.control_guid, self.handle)
        self._guid_le = MESSAGE_GUID.bytes_le
        self._source = tag.encode("ascii") + b"\0"
        self.written = 0

    def _control(self, code, context, buffer):
        if code == lib.WMI_ENABLE_EVENTS:
            self.logger = api.GetTraceLoggerHandle(buffer)
        return 0

    def log(self, count: int, *, size: int = 0, pace: float | None = None) -> None:
        """``count`` messages with unique arguments (value, source, tick); ``size`` pads the
        source string; ``pace``: events per second (None: as fast as possible)."""
        source = self._source if not size else (self.tag.encode() * size)[:size] + b"\0"
        start = time.perf_counter()
        base = self.written
        for i in range(count):
            value = base + i
            payload = struct.pack("<i", value) + source + struct.pack("<Q", value * 2654435761)
            trace_packed_raw(self.logger, MESSAGE_FLAGS, self._guid_le, MESSAGE_NUMBER, payload)
            if pace and i % 256 == 255:
                ahead = start + (i + 1) / pace - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
        self.written += count

    def query(self):
        return api.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_QUERY)

    def flush(self):
        """What was logged so far reaches the file and the real-time queues when this returns."""
        return api.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_FLUSH)

    def stop(self):
        if self.final is None:
            try:
                self.final = api.ControlTrace(self.handle, None, None, lib.EVENT_TRACE_CONTROL_STOP)
            finally:
                api.UnregisterTraceGuids(self.registration)
        return self.final

    def __enter__(self) -> "TracedSession":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Provider:
    """The test provider alone (for sessions started elsewhere, e.g. ``wpptrace session
    start --guid``): ``log`` writes once a session has enabled it."""

    def __init__(self, tag: str):
        self.control_guid = uuid.uuid4()
        self.tag = tag
        self.logger = None
        self.registration = api.RegisterTraceGuids(self._control, None, self.control_guid,
                                                   [MESSAGE_GUID])

    def _control(self, code, context, buffer):
        self.logger = api.GetTraceLoggerHandle(buffer) if code == lib.WMI_ENABLE_EVENTS else None
        return 0

    def log(self, count: int) -> None:
        source = self.tag.encode("ascii") + b"\0"
        for value in range(count):
            payload = struct.pack("<i", value) + source + struct.pack("<Q", value)
            trace_packed_raw(self.logger, MESSAGE_FLAGS, MESSAGE_GUID.bytes_le, MESSAGE_NUMBER,
                             payload)

    def close(self) -> None:
        api.UnregisterTraceGuids(self.registration)


def wpptrace(*args: str, **options) -> subprocess.CompletedProcess:
    """``wpptrace ARGS`` in a child process, to completion."""
    return subprocess.run([sys.executable, "-m", "wpptrace.cli", *args], capture_output=True,
                          text=True, timeout=PATIENCE, **options)


def relay_process(session: str, address, *extra: str) -> subprocess.Popen:
    """``wpptrace relay SESSION --to HOST:PORT`` in a child process (stderr captured)."""
    return subprocess.Popen([sys.executable, "-m", "wpptrace.cli", "relay", session,
                             "--to", f"{address[0]}:{address[1]}", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def decoded_text(etl, tmf_dir) -> str:
    """``wpptrace fmt FILE -p TMF`` output (default prefix: times, thread, CPU...)."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    out, err = io.StringIO(), io.StringIO()
    code = run_fmt(FmtOptions(files=[str(etl)], tmf_dirs=[str(tmf_dir)], progress="never"),
                   out=out, err=err)
    assert code == 0, err.getvalue()
    return out.getvalue()


def data_buffers(etl) -> list[bytes]:
    """The data buffers of a file we wrote (fixed-size buffers after the header buffer)."""
    data = pathlib.Path(etl).read_bytes()
    size = int.from_bytes(data[:4], "little")
    return [data[i:i + size] for i in range(size, len(data), size)]


def header(etl):
    from wpptrace.decoder.etlfile import EtlFile

    with EtlFile(str(etl)) as f:
        assert not f.errors, f.errors
        return f.header


def descriptor_of(path) -> int:
    """This process's descriptor open on ``path``."""
    target = os.fspath(path)
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == target:
                return int(name)
        except OSError:
            continue
    raise AssertionError(f"{target} is not open")


def disk_full_under(path) -> None:
    """Make every later write of this process to the open file ``path`` fail as on a full
    disk (its descriptor becomes one on /dev/full)."""
    fd = descriptor_of(path)
    full = os.open("/dev/full", os.O_WRONLY)
    try:
        os.dup2(full, fd)
    finally:
        os.close(full)


def ended_relay(address, recorded, name: str, count: int):
    """A relay (started) given the recorded header and its first ``count`` buffers, then the
    session's end."""
    from wpptrace.remote import Relay

    head, buffers = recorded
    relay = Relay(address, buffer_size=len(head), name=name, linger=PATIENCE).start()
    relay.add(head)
    for buf in buffers[:count]:
        relay.add(buf)
    relay.finish()
    return relay


def delivered_by(fake, recorded, name: str, count: int = 4, **options):
    """A relay to ``fake`` (a FakeCollector) given the recorded header, its first ``count``
    buffers and the end, run until done (a hang fails), then closed with ``fake``."""
    from wpptrace.remote import Relay

    head, buffers = recorded
    relay = Relay(fake.address, buffer_size=len(head), name=name,
                  **{"linger": PATIENCE, "reply_timeout": PATIENCE, "max_backoff": 0.2, **options})
    try:
        relay.add(head)
        for buf in buffers[:count]:
            relay.add(buf)
        relay.finish()
        relay.start()
        assert relay.wait(PATIENCE), "the relay hangs"
    finally:
        relay.close(timeout=0.5)
        fake.close()
    return relay


def wait_until(predicate, timeout: float = PATIENCE, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class RelayClock:
    """The relay's clock (``time.monotonic`` in wpptrace.remote.relay), moved on only by the
    test (``now``): what the relay makes of the time does not depend on how fast a loaded
    machine runs it."""

    def __init__(self, monkeypatch):
        from wpptrace.remote import relay as relay_module

        self.now = time.monotonic()
        monkeypatch.setattr(relay_module, "time", self)

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name):
        return getattr(time, name)


def signal_once_handled(signum: int, original, returned: threading.Event,
                        timeout: float = PATIENCE) -> bool:
    """Send this process ``signum`` once a handler other than ``original`` is in place (a
    command's, which a loaded machine may install late), unless ``returned`` is set first or
    ``timeout`` passes; whether it was sent. (Sent with ``original`` in place, the signal
    would reach the test run itself.)"""
    import signal

    deadline = time.monotonic() + timeout
    while not returned.is_set():
        if signal.getsignal(signum) is not original:
            os.kill(os.getpid(), signum)
            return True
        if time.monotonic() > deadline:
            return False
        returned.wait(0.02)
    return False


def collect_until_stuck(tmp_path, recorded, disk, started: list, signum: int, name: str,
                        interrupt) -> tuple[int, bool]:
    """Runs ``wpptrace collect`` (quiet, on a free port, into tmp_path/c) while a thread, once
    it runs (``started[0]`` its collector, its ``signum`` handler in place), sends it relay
    ``name`` with the recorded header and first buffer, waits for ``disk`` (a _StuckWrite) to
    hang, calls ``interrupt()``, then waits for collect to return before releasing the disk.
    Returns collect's exit code and whether the disk still hung when it returned; the
    ``signum`` handler is the one before. A failure in that thread (the disk never hangs, an
    assertion in ``interrupt``) is raised here once collect returned: the thread then sends
    ``signum`` once more, so that collect returns rather than the test hanging."""
    import signal

    from wpptrace import cli
    from wpptrace.remote import Relay

    head, buffers = recorded
    original = signal.getsignal(signum)
    returned = threading.Event()
    relays = []
    failed: list[str] = []

    def interrupt_anyway() -> None:
        # (collect's handler: it stops, or gives up; it may come after the wait for it)
        signal_once_handled(signum, original, returned)

    def feed_then_interrupt():
        try:
            wait_until(lambda: started and started[0].address
                       and signal.getsignal(signum) is not original, what="collect running")
            relay = Relay(started[0].address, buffer_size=len(head), name=name).start()
            relays.append(relay)
            relay.add(head)
            relay.add(buffers[0])
            if disk.stuck.wait(PATIENCE):
                interrupt()
            else:
                failed.append("the disk did not hang")
                interrupt_anyway()
        except BaseException as exc:        # noqa: BLE001 - raised once collect returned
            failed.append(f"{type(exc).__name__}: {exc}")
            interrupt_anyway()
        finally:
            returned.wait(PATIENCE)         # (a collect that does not return: release it)
            disk.release.set()

    helper = threading.Thread(target=feed_then_interrupt)
    helper.start()
    try:
        code = cli.main(["collect", "--listen", "127.0.0.1:0", "-o", str(tmp_path / "c"), "-q"])
        still_stuck = not disk.release.is_set()
    finally:
        returned.set()
        helper.join(PATIENCE)
        for relay in relays:
            relay.close(timeout=0.5)
    assert not failed, failed
    assert signal.getsignal(signum) is original
    return code, still_stuck


class Proxy:
    """A TCP forwarder between relays and a collector that the test controls: ``pause()``
    stops moving bytes (a link that takes nothing), ``resume()``, ``cut()`` closes the
    connections open now (a link that breaks). Small socket buffers keep what sits in the
    kernel small."""

    def __init__(self, target, sock_buffer: int = 16384):
        import selectors
        import socket
        import threading

        self.target = target
        self.sock_buffer = sock_buffer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sock_buffer)
        self.address = self.listener.getsockname()[:2]
        self.paused = threading.Event()
        self.bytes = 0
        self._pairs: list = []
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._cut = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.paused.clear()

    def cut(self, wait: bool = False) -> None:
        """``wait``: return once the connections are gone (no byte moves on them after)."""
        self._cut.set()
        if wait:
            wait_until(lambda: not self._cut.is_set(), what="the link cut")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for a, b in self._pairs:
            a.close()
            b.close()
        self.listener.close()

    def _run(self) -> None:
        import selectors
        import socket

        peers = {}
        while not self._stop.is_set():
            if self._cut.is_set():
                self._cut.clear()
                for a, b in self._pairs:
                    for s in (a, b):
                        try:
                            self._selector.unregister(s)
                        except (KeyError, ValueError):
                            pass
                        s.close()
                self._pairs.clear()
                peers.clear()
            for key, _ in self._selector.select(0.01):
                sock = key.fileobj
                if sock is self.listener:
                    client, _ = self.listener.accept()
                    server = socket.create_connection(self.target)
                    for s in (client, server):
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.sock_buffer)
                        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sock_buffer)
                        self._selector.register(s, selectors.EVENT_READ)
                    peers[client], peers[server] = server, client
                    self._pairs.append((client, server))
                    continue
                if self.paused.is_set() or sock not in peers:
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                other = peers[sock]
                if not data:
                    for s in (sock, other):
                        try:
                            self._selector.unregister(s)
                        except (KeyError, ValueError):
                            pass
                        s.close()
                    peers.pop(sock, None)
                    peers.pop(other, None)
                    continue
                try:
                    other.sendall(data)
                    self.bytes += len(data)
                except OSError:
                    pass
            if self.paused.is_set():
                self._stop.wait(0.01)


class _StuckWrite:
    """Makes the collector's file writes wait for ``release`` (a disk that does not answer);
    ``stuck`` is set once one waits. ``only``: only the files of sessions so named stick.
    ``fail``: set it to an OSError to have the released writes fail with it."""

    def __init__(self, monkeypatch, only: str | None = None):
        from wpptrace.remote import collector as collector_module

        self.stuck, self.release = threading.Event(), threading.Event()
        self.fail: OSError | None = None
        outer = self

        class StuckDisk(collector_module.EtlStreamFile):
            def write(self, buffer):
                if only is None or f"_{only}_" in os.path.basename(self.path):
                    outer.stuck.set()
                    outer.release.wait(PATIENCE)
                    if outer.fail is not None:
                        raise outer.fail
                super().write(buffer)
        monkeypatch.setattr(collector_module, "EtlStreamFile", StuckDisk)


def end_left_unread(monkeypatch, name: str, once: bool = False) -> list[int]:
    """The collector's writes of session ``name``'s file wait (a _StuckWrite) until END
    comes, which it does not take (as if not read yet): the ACK of the last buffer, which
    carries END's value, goes out after END came. ``once``: only the first END is left so;
    the next (the relay's retry) is taken. Returns the END sequences seen."""
    from wpptrace.remote import collector as collector_module
    from wpptrace.remote import protocol as P

    disk = _StuckWrite(monkeypatch, only=name)
    ends: list[int] = []
    take = collector_module._Source.take

    def take_all_but_end(self, frame):
        if frame.type == P.FrameType.END and not (once and ends):
            ends.append(frame.sequence)
            disk.release.set()
            return False
        if frame.type == P.FrameType.END:
            ends.append(frame.sequence)
        return take(self, frame)
    monkeypatch.setattr(collector_module._Source, "take", take_all_but_end)
    return ends


def relay_past_the_ack_that_crossed_end(collector, recorded, name: str, ends: list[int],
                                        **options):
    """A relay (started) to ``collector`` under ``end_left_unread(name)`` (its ``ends``),
    given the recorded header, 8 buffers and the end: returned once the ACK of the last
    buffer (END's value) came after END was sent, END not taken."""
    from wpptrace.remote import Relay

    head, buffers = recorded
    relay = Relay(collector.address, buffer_size=len(head), name=name, linger=PATIENCE,
                  reply_timeout=PATIENCE, max_backoff=0.2, **options)
    relay.add(head)
    for buf in buffers[:8]:
        relay.add(buf)
    relay.finish()
    relay.start()
    try:
        wait_until(lambda: relay.stats.acknowledged == 9, what="the last buffer acknowledged")
        assert ends == [9]
        assert relay._end_acked                 # (the ACK came after END was sent)
    except BaseException:
        relay.close(timeout=0.5)
        raise
    return relay


class _StuckOpen:
    """Makes the creation of the collector's files for sessions named ``only`` wait for
    ``release`` (a disk that does not answer when a file is made); ``stuck`` is set once one
    waits."""

    def __init__(self, monkeypatch, only: str):
        from wpptrace.remote import collector as collector_module

        self.stuck, self.release = threading.Event(), threading.Event()
        outer = self

        class StuckOpen(collector_module.EtlStreamFile):
            def __init__(self, path, header_buffer):
                if f"_{only}_" in os.path.basename(path):
                    outer.stuck.set()
                    outer.release.wait(PATIENCE)
                super().__init__(path, header_buffer)

        monkeypatch.setattr(collector_module, "EtlStreamFile", StuckOpen)


class _StuckClose:
    """Makes the first file the collector closes (``every``: each one) wait for ``release``
    (a disk whose flush does not answer); ``stuck`` is set once one waits."""

    def __init__(self, monkeypatch, every: bool = False):
        from wpptrace.remote import collector as collector_module

        self.stuck, self.release = threading.Event(), threading.Event()
        first = [True]
        outer = self

        class StuckClose(collector_module.EtlStreamFile):
            def close(self, end_time=0):
                if every or (first and first.pop()):
                    outer.stuck.set()
                    outer.release.wait(PATIENCE)
                super().close(end_time)

        monkeypatch.setattr(collector_module, "EtlStreamFile", StuckClose)


class FakeCollector:
    """A collector played by the test: accepts relays, reads each one's HELLO, then runs
    ``serve(sock)`` (an OSError ends that connection): one connection after another in the
    accepting thread (``threaded=False``: a test may count on that order), or each in a
    thread of its own. Keeps every socket open (a peer that vanished without closing) until
    ``close``, which sets ``closed``."""

    def __init__(self, serve, threaded: bool = False):
        self.serve = serve
        self.threaded = threaded
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()[:2]
        self.held: list[socket.socket] = []
        self.connections = 0
        self.closed = threading.Event()
        self._held_lock = threading.Lock()
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._held_lock:
                if self.closed.is_set():        # (accepted as it closed: gone with it)
                    sock.close()
                    return
                self.connections += 1
                self.held.append(sock)
            if self.threaded:
                threading.Thread(target=self._serve, args=(sock,), daemon=True).start()
            else:
                self._serve(sock)

    def _serve(self, sock: socket.socket) -> None:
        try:
            read_frame(sock)                    # HELLO
            self.serve(sock)
        except OSError:
            pass

    def close(self) -> None:
        with self._held_lock:
            self.closed.set()
        # (a close alone does not wake the accept under way, which would take one more
        # connection: the shutdown does, and refuses any after it)
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in self.held:
            sock.close()



def stop_as_each_is_accepted(monkeypatch, collector) -> None:
    """The collector's stop set in the turn in which it accepts a connection, before the
    connection's handler runs (connections the collector's own loop accepts: not a relay's end
    made in this process)."""
    import asyncio

    made = asyncio.StreamReaderProtocol.connection_made

    def stop_as_it_is_accepted(protocol, transport):
        if threading.current_thread() is collector._thread:
            collector._stop_event.set()
        made(protocol, transport)
    monkeypatch.setattr(asyncio.StreamReaderProtocol, "connection_made", stop_as_it_is_accepted)


def said_before_close(sock: socket.socket) -> bytes:
    """What the peer sent before it closed ``sock``, up to 64 KiB; a reset said nothing."""
    try:
        return sock.recv(1 << 16)
    except ConnectionResetError:
        return b""


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    """``n`` bytes from ``sock``; OSError if it closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def read_frame(sock: socket.socket) -> tuple[int, int]:
    """(type, sequence) of the next frame on ``sock``, its payload read and let go."""
    from wpptrace.remote import protocol as P

    fields = P.HEADER.unpack(recv_exactly(sock, P.HEADER.size))
    recv_exactly(sock, fields[4])
    return fields[2], fields[5]


def take_until_end(sock: socket.socket, ack_buffers: bool = False) -> None:
    """A fake collector's rest of a conversation (its WELCOME sent): the frames read up to
    END (each buffer acknowledged with ``ack_buffers``), then END's ACK and the close after
    it."""
    from wpptrace.remote import protocol as P

    while True:
        kind, sequence = read_frame(sock)
        if kind == P.FrameType.BUFFER and ack_buffers:
            sock.sendall(P.encode(P.FrameType.ACK, sequence + 1))
        elif kind == P.FrameType.END:
            sock.sendall(P.encode(P.FrameType.ACK, sequence))
            sock.close()
            return


def close_as_told(sock: socket.socket) -> None:
    """A fake collector's close after what it sent last (an ACK, an ERROR), as the collector
    closes: its end shut, what the relay sent read until the relay closes (a close with data
    unread resets the connection, which can lose what was sent before it)."""
    sock.shutdown(socket.SHUT_WR)
    sock.settimeout(PATIENCE)
    while sock.recv(65536):
        pass
    sock.close()


class HandRelay:
    """A relay spoken by hand over a socket (the frames a test chooses, answers read one at
    a time): says HELLO as ``session`` from host "hand" with ``source_id``, connecting from
    ``source_address`` (host, port) if given."""

    def __init__(self, address, buffer_size: int, session: str = "hand",
                 source_id: uuid.UUID | None = None, source_address=None):
        from wpptrace.remote import protocol as P

        self.P = P
        self.source_id = source_id or uuid.uuid4()
        self.sock = socket.create_connection(address, source_address=source_address)
        self.sock.settimeout(PATIENCE)
        self.sock.sendall(P.encode_hello(P.Hello(self.source_id, buffer_size, session, "hand"),
                                         1))

    def header(self, buffer: bytes) -> None:
        self.sock.sendall(b"".join(bytes(p) for p in self.P.encode_buffer(
            self.P.FrameType.HEADER, 0, buffer)))

    def buffer(self, sequence: int, buffer: bytes) -> None:
        self.sock.sendall(b"".join(bytes(p) for p in self.P.encode_buffer(
            self.P.FrameType.BUFFER, sequence, buffer)))

    def stats(self, next_sequence: int) -> None:
        self.sock.sendall(self.P.encode_stats(self.P.FrameType.STATS, next_sequence,
                                              self.P.Stats()))

    def end(self, next_sequence: int, end_time: int = 0) -> None:
        self.sock.sendall(self.P.encode_stats(self.P.FrameType.END, next_sequence,
                                              self.P.Stats(end_time=end_time)))

    def answer(self):
        """The next frame the collector sent, as (type, sequence, payload); None if it closed
        the connection."""
        head = self._exactly(self.P.HEADER.size)
        if head is None:
            return None
        _, _, ftype, _, length, sequence = self.P.HEADER.unpack(head)
        payload = self._exactly(length) if length else b""
        return self.P.FrameType(ftype), sequence, payload or b""

    def _exactly(self, n: int) -> bytes | None:
        data = b""
        while len(data) < n:
            try:
                chunk = self.sock.recv(n - len(data))
            except ConnectionError:
                return None
            if not chunk:
                return None
            data += chunk
        return data

    def close(self) -> None:
        self.sock.close()


def delivered_by_hand(address, head: bytes, buffers=(), session: str = "hand", *,
                      end: bool = True, end_time: int = 1,
                      source_id: uuid.UUID | None = None) -> list:
    """A source spoken by hand (a HandRelay): WELCOME checked, then its header buffer,
    ``buffers`` (sequence 1 on) and, if ``end``, END (``end_time``: the session stopped);
    the collector's answers after WELCOME (HandRelay.answer's) until it closes the
    connection: END's ACK once the file is closed, or an ERROR."""
    from wpptrace.remote import protocol as P

    hand = HandRelay(address, len(head), session, source_id=source_id)
    try:
        welcome = hand.answer()
        assert welcome is not None and welcome[0] == P.FrameType.WELCOME, welcome
        hand.header(head)
        for sequence, buffer in enumerate(buffers, 1):
            hand.buffer(sequence, buffer)
        if end:
            hand.end(len(buffers) + 1, end_time=end_time)
        answers = []
        while (answer := hand.answer()) is not None:
            answers.append(answer)
        return answers
    finally:
        hand.close()
