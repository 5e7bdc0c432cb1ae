"""Hostile relays: fuzzed conversations (hypothesis), oversized and silent frames, too many
connections. Each bad connection is closed with a logged reason; the collector never
crashes, never hangs, and other sources go on."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import socket
import threading
import time
import uuid

import pytest
from fuzz_frames import conversation, hello_frame
from hypothesis import HealthCheck, given, settings
from remote_helpers import PATIENCE, data_buffers

from wpptrace.remote import Collector, Relay
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_BUSY


class _Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture(scope="module")
def collector(tmp_path_factory):
    with _collector(tmp_path_factory.mktemp("collected")) as c:
        yield c


@contextlib.contextmanager
def _collector(out: pathlib.Path, send_buffer: int = 0):
    """A collector with short timeouts, its log kept (``.log``); ``send_buffer``: the
    SO_SNDBUF of its listening socket, which the connections it accepts inherit (0: the
    system's)."""
    log = _Records()
    logger = logging.getLogger("wpptrace.remote")
    logger.addHandler(log)
    # (the lines about sources past a number a minute go to the debug level: the tests
    # that share one collector look for theirs whatever the number before them)
    level, _ = logger.level, logger.setLevel(logging.DEBUG)
    c = Collector(("127.0.0.1", 0), output_dir=str(out), timeout=1.0, handshake_timeout=1.0,
                  resume_window=0.5).start()
    try:
        if send_buffer:
            c._server.sockets[0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        c.log = log
        yield c
    finally:
        c.stop()
        logger.removeHandler(log)
        logger.setLevel(level)


def _converse(address, data: bytes, half_close: bool = True, wait: float = 10.0) -> bytes:
    """Send ``data``, then read until the collector closes; fails if it never does."""
    with socket.create_connection(address, timeout=wait) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass                               # it closed on us first: fine
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return received
            except socket.timeout:
                break
            if not chunk:
                return received
            received += chunk
        raise AssertionError(f"the collector kept the connection open for {wait} s")


def _replay(address, recorded) -> Relay:
    header, buffers = recorded
    relay = Relay(address, buffer_size=len(header), name="honest", linger=5.0).start()
    relay.add(header)
    for buf in buffers:
        relay.add(buf)
    relay.finish()
    assert relay.wait(PATIENCE) and relay.outcome == "ended"
    return relay


def _internal_errors(collector) -> list[str]:
    return [r.getMessage() for r in collector.log.records
            if r.levelno >= logging.ERROR or "internal error" in r.getMessage()]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=__import__("hypothesis").strategies.data())
def test_fuzzed_conversations_never_crash_or_hang_the_collector(collector, recorded, data):
    header, buffers = recorded
    talk = data.draw(conversation(len(header), header, buffers[:4]))
    _converse(collector.address, talk)
    assert not _internal_errors(collector)


def test_after_fuzzing_an_honest_relay_still_delivers(collector, recorded):
    relay = _replay(collector.address, recorded)
    source = next(s for s in collector.sources if s.source_id == relay.source_id)
    assert collector.wait_for(lambda ss: any(s.source_id == relay.source_id and s.closed
                                             for s in ss), PATIENCE)
    assert source.lost == 0 and data_buffers(source.path) == recorded[1]
    assert not _internal_errors(collector)


def _error_reason(data: bytes) -> tuple[int, str]:
    """The ERROR frame among what the collector sent."""
    while data:
        magic, version, ftype, aux, length, seq = P.HEADER.unpack_from(data)
        frame = P.Frame(P.FrameType(ftype), aux, seq, data[P.HEADER.size:P.HEADER.size + length])
        if frame.type == P.FrameType.ERROR:
            return P.decode_error(frame)
        data = data[P.HEADER.size + length:]
    raise AssertionError("no ERROR frame")


def test_an_oversized_frame_is_refused_without_waiting_for_it(collector, recorded):
    header, _ = recorded
    talk = hello_frame(uuid.uuid4(), len(header)) + P.HEADER.pack(
        P.MAGIC, P.VERSION, P.FrameType.BUFFER, 0, 0xFFFFFFF0, 1)
    answer = _converse(collector.address, talk, half_close=False)   # and no payload follows
    code, reason = _error_reason(answer)
    assert "payload of 4294967280 bytes" in reason      # not the timeout: refused at once
    assert any("payload of 4294967280 bytes" in r.getMessage() for r in collector.log.records)


def test_a_relay_that_falls_silent_mid_frame_is_closed_after_the_timeout(collector, recorded):
    header, _ = recorded
    talk = hello_frame(uuid.uuid4(), len(header)) + b"WPRB\x01"     # half a frame header
    started = time.monotonic()
    answer = _converse(collector.address, talk, half_close=False)
    assert time.monotonic() - started > 0.8
    assert "nothing received in time" in _error_reason(answer)[1]


def test_a_silent_connection_is_closed_after_the_handshake_timeout(collector):
    started = time.monotonic()
    _converse(collector.address, b"", half_close=False)
    assert time.monotonic() - started > 0.8


def test_out_of_order_buffers_close_that_source_only(collector, recorded, tmp_path):
    from wpptrace.decoder.buffers import buffer_info

    header, buffers = recorded
    # two buffers of one processor stream (a logging thread the scheduler moved has buffers in
    # several streams, and the file's first two need not share one), in their stream's order
    streams: dict[int, list[bytes]] = {}
    for buffer in buffers:
        streams.setdefault(buffer_info(buffer).processor, []).append(buffer)
    first, second = next(stream for stream in streams.values() if len(stream) >= 2)[:2]
    frames = [hello_frame(uuid.uuid4(), len(header)),
              *P.encode_buffer(P.FrameType.HEADER, 0, header),
              *P.encode_buffer(P.FrameType.BUFFER, 1, second),
              *P.encode_buffer(P.FrameType.BUFFER, 2, first)]       # processor order broken
    answer = _converse(collector.address, b"".join(bytes(f) for f in frames), half_close=False)
    code, reason = _error_reason(answer)
    assert "out of order" in reason
    bad = next(s for s in collector.sources if s.reason.startswith("buffer 2 out of order"))
    assert bad.closed and bad.buffers == 1 and data_buffers(bad.path) == [second]


def test_connections_beyond_the_limit_are_refused(recorded, tmp_path):
    with Collector(("127.0.0.1", 0), max_connections=2, timeout=5.0) as c:
        held = [socket.create_connection(c.address) for _ in range(2)]
        try:
            time.sleep(0.2)
            answer = _converse(c.address, b"", half_close=False)
            assert _error_reason(answer) == (ERROR_BUSY, "too many connections")
            assert c.connections_refused == 1
        finally:
            for s in held:
                s.close()


def _welcomed(sock: socket.socket, header: bytes) -> None:
    """Say HELLO as a new source and read the WELCOME: the connection is being served."""
    sock.settimeout(PATIENCE)
    sock.sendall(hello_frame(uuid.uuid4(), len(header)))
    answer = b""
    while len(answer) < P.HEADER.size:
        chunk = sock.recv(P.HEADER.size - len(answer))
        assert chunk, "the collector closed the connection instead of answering"
        answer += chunk
    assert P.HEADER.unpack(answer)[2] == P.FrameType.WELCOME


def test_connections_beyond_the_limit_from_one_host_are_refused(recorded):
    """One host cannot take every place: past ``max_per_address`` connections from it,
    another is refused with the reason (every loopback address is this one host: see
    peer_host); a place it frees is its again."""
    header, _ = recorded
    with Collector(("127.0.0.1", 0), max_per_address=2, timeout=5.0) as c:
        held = [socket.create_connection(c.address) for _ in range(2)]
        try:
            for sock in held:
                _welcomed(sock, header)
            answer = _converse(c.address, b"", half_close=False)
            assert _error_reason(answer) == (
                ERROR_BUSY, "too many connections from loopback (at most 2 from one host)")
            assert c.connections_refused == 1
            held.pop().close()
            assert c.wait_for(lambda ss: sum(s.connected for s in ss) == 1, PATIENCE)
            held.append(socket.create_connection(c.address))
            _welcomed(held[-1], header)
            assert c.connections_refused == 1
        finally:
            for sock in held:
                sock.close()


def _frames(*parts) -> bytes:
    return b"".join(bytes(p) for p in parts)


def test_a_buffer_sequence_that_leaves_no_room_for_the_next_is_refused(collector, recorded):
    """Sequences are u64 and END (and every ACK) names the one after the last buffer: the
    last value cannot be a buffer's."""
    header, buffers = recorded
    talk = _frames(hello_frame(uuid.uuid4(), len(header)),
                   *P.encode_buffer(P.FrameType.HEADER, 0, header),
                   *P.encode_buffer(P.FrameType.BUFFER, 2**64 - 1, buffers[0]),
                   P.encode_stats(P.FrameType.STATS, 1, P.Stats()))
    code, reason = _error_reason(_converse(collector.address, talk, half_close=False))
    assert reason == f"buffer sequence {2**64 - 1}: the last a buffer may have is {2**64 - 2}"
    assert not _internal_errors(collector)


def test_a_relay_that_stops_reading_is_closed_after_the_timeout(tmp_path, recorded):
    """A relay that sends STATS (each one ACKed) but never reads: once the collector's
    answers back up, waiting for them to drain is bounded by the timeout like a read. The
    collector's send buffer is small, as the relay's receive buffer is: with the system's
    (autotuned, up to megabytes) the answers backed up only after some 500,000 STATS, which
    a loaded machine took more than a minute to handle."""
    header, _ = recorded
    source_id = uuid.uuid4()
    with _collector(tmp_path / "c", send_buffer=4096) as collector, socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(collector.address)
        sock.sendall(_frames(hello_frame(source_id, len(header)),
                             *P.encode_buffer(P.FrameType.HEADER, 0, header)))
        stats = P.encode_stats(P.FrameType.STATS, 1, P.Stats()) * 1000

        def send_until_closed():        # never idle: only a write that never drains is left
            try:
                while True:
                    sock.sendall(stats)
            except OSError:
                pass
        threading.Thread(target=send_until_closed, daemon=True).start()

        def closed(sources):
            return any(s.source_id == source_id and not s.connected for s in sources)
        assert collector.wait_for(closed, PATIENCE), "the collector is still waiting for the relay"
        source = next(s for s in collector.sources if s.source_id == source_id)
        assert source.reason == "the relay read nothing the collector sent for 1 s"
        assert not _internal_errors(collector)


def test_a_relays_error_reason_is_logged_on_one_line(collector, recorded):
    header, _ = recorded
    source_id = uuid.uuid4()
    talk = hello_frame(source_id, len(header)) + P.encode_error(5, "bad\nforged: line\r")
    _converse(collector.address, talk, half_close=False)
    assert collector.wait_for(lambda ss: any(s.source_id == source_id and s.closed for s in ss),
                              PATIENCE)
    source = next(s for s in collector.sources if s.source_id == source_id)
    assert source.reason == ("the relay reported an error: bad\\nforged: line\\r "
                             "(ERROR_ACCESS_DENIED)")
    assert any(r.getMessage().endswith("closed: " + source.reason) for r in collector.log.records)


def test_a_source_whose_file_names_are_all_taken_is_refused_not_left_unwritten(collector,
                                                                                 recorded):
    """Never over an existing file: when every name the collector would try exists, the
    source is refused with the reason, and no file is reported as written."""
    header, _ = recorded
    source_id = uuid.uuid4()
    out = pathlib.Path(collector.output_dir)
    base = f"fuzz-host_fuzzed_{source_id.hex[:8]}"
    taken = [out / f"{base}.etl"] + [out / f"{base}-{n}.etl" for n in range(2, 1000)]
    for path in taken:
        path.write_bytes(b"someone else's file")
    talk = _frames(hello_frame(source_id, len(header)),
                   *P.encode_buffer(P.FrameType.HEADER, 0, header))
    code, reason = _error_reason(_converse(collector.address, talk, half_close=False))
    assert (code, reason) == (ERROR_BUSY, f"cannot write {out / base}.etl: it and the 998 "
                                          f"names after it (-2 to -999) exist")
    source = next(s for s in collector.sources if s.source_id == source_id)
    assert source.closed and source.path is None
    assert all(path.read_bytes() == b"someone else's file" for path in taken)


def test_the_finished_sources_remembered_are_bounded(monkeypatch, recorded):
    """A collector runs for weeks and anyone may say HELLO: it keeps the newest finished
    sources only, and counts the ones it let go."""
    from wpptrace.remote import collector as collector_module

    monkeypatch.setattr(collector_module, "_FINISHED_KEPT", 3)
    header, _ = recorded
    ids = [uuid.uuid4() for _ in range(5)]
    with Collector(("127.0.0.1", 0), timeout=5.0) as c:
        for source_id in ids:           # HELLO, then gone before the header: finished
            _converse(c.address, hello_frame(source_id, len(header)))
        assert c.wait_for(lambda ss: c.finished_forgotten == 2, PATIENCE)
        assert [s.source_id for s in c.sources] == ids[2:]


def test_stopping_with_a_relay_connected_logs_no_error(recorded):
    """Stopping cancels the connections' handlers: that is no error, and says nothing."""
    header, _ = recorded
    records = _Records()
    logging.getLogger("asyncio").addHandler(records)
    try:
        with Collector(("127.0.0.1", 0), timeout=5.0) as c:
            with socket.create_connection(c.address) as sock:
                sock.sendall(hello_frame(uuid.uuid4(), len(header)))
                sock.recv(P.HEADER.size)        # WELCOME: the connection is being served
                c.stop()
    finally:
        logging.getLogger("asyncio").removeHandler(records)
    assert [r.getMessage() for r in records.records if r.levelno >= logging.ERROR] == []


@pytest.mark.parametrize("peer, host, network", [
    ("192.0.2.7", "192.0.2.7", None),
    ("::ffff:192.0.2.7", "192.0.2.7", None),            # IPv4-mapped: the IPv4 host
    ("64:ff9b::c000:207", "192.0.2.7", None),           # NAT64: the IPv4 host too
    ("127.0.0.1", "loopback", None),                    # every loopback address: one host
    ("127.1.2.3", "loopback", None),
    ("::1", "loopback", None),
    ("::ffff:127.0.0.1", "loopback", None),
    ("2001:db8:1:2:aaaa::1", "2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
    ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
    ("fe80::1%eth0", "fe80::1%eth0", "fe80::/64%eth0"),  # link-local: its link's
    ("fe80::1%eth1", "fe80::1%eth1", "fe80::/64%eth1"),
    ("::", "::", "::/64"),
    ("relay.example", "relay.example", None),           # (not an address: as it is)
])
def test_the_limits_count_a_peer_by_its_host_and_an_ipv6_one_also_by_its_64(peer, host, network):
    from wpptrace.remote.collector import peer_host, peer_network

    assert (peer_host(peer), peer_network(peer)) == (host, network)


class _PeerWriter:
    """The collector's side of a connection from ``peername``, without a socket."""

    def __init__(self, peername):
        self.peername = peername
        self.sent = bytearray()
        self.transport = self

    def get_extra_info(self, name):
        return self.peername if name == "peername" else None

    def write(self, data):
        self.sent += data

    async def drain(self):
        pass

    def abort(self):
        pass

    def can_write_eof(self):
        return False

    def get_write_buffer_size(self):
        return 0


async def _connect_each(c: Collector, peernames) -> list:
    """Connect to ``c`` from each peer in turn: a connection let in waits for its HELLO,
    holding its place. The ERROR each got (None: let in)."""
    tasks, writers, refused = [], [], []
    for peername in peernames:
        before = c.connections_refused
        writers.append(_PeerWriter(peername))
        reader = asyncio.StreamReader()
        tasks.append(asyncio.ensure_future(c._handle(reader, writers[-1])))
        await asyncio.sleep(0)          # the handler's first step: refused, or in
        refused.append(c.connections_refused > before)
        if refused[-1]:
            reader.feed_eof()           # (the refused peer closes: its close waits no longer)
    for task, was_refused in zip(tasks, refused):
        if not was_refused:
            task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [_error_reason(bytes(w.sent)) if r else None for w, r in zip(writers, refused)]


def _connections(*peernames, **limits) -> list:
    async def connect():
        return await _connect_each(Collector(handshake_timeout=PATIENCE, **limits), peernames)

    return asyncio.run(connect())


def test_the_hosts_of_one_ipv6_64_each_have_their_own_places():
    """A LAN (SLAAC, DHCPv6) puts every machine in one /64: twenty application hosts each
    get in with the default limits; a second connection from one host is its own."""
    hosts = [(f"fd00:1:2:3::{n:x}", 4000 + n, 0, 0) for n in range(1, 21)]
    assert _connections(*hosts) == [None] * 20
    assert _connections(*hosts[:2], hosts[0], max_per_address=1) == [None, None, (
        ERROR_BUSY, "too many connections from fd00:1:2:3::1 (at most 1 from one host)")]


def test_one_ipv6_64_cannot_take_more_places_than_max_per_network():
    """A host given a whole /64 could come from ever new addresses: past ``max_per_network``
    connections from one /64 another is refused, with its own reason; another /64 gets in."""
    peers = [("2001:db8::1", 4000, 0, 0), ("2001:db8::9:8:7:6", 4001, 0, 0),
             ("2001:db8::5", 4002, 0, 0), ("2001:db8:0:1::5", 4003, 0, 0)]
    assert _connections(*peers, max_per_network=2) == [None, None, (
        ERROR_BUSY, "too many connections from the network 2001:db8::/64 (at most 2 from "
                    "one IPv6 /64 network)"), None]
    c = Collector(max_connections=64, max_per_address=16)
    assert c.max_per_network == 32


def test_link_local_peers_on_different_links_are_different_hosts():
    """fe80::1 on two interfaces is two machines: each has its own place."""
    peers = [("fe80::1%eth0", 4000, 0, 1), ("fe80::1%eth1", 4001, 0, 2),
             ("fe80::1%eth0", 4002, 0, 1)]
    assert _connections(*peers, max_per_address=1) == [None, None, (
        ERROR_BUSY, "too many connections from fe80::1%eth0 (at most 1 from one host)")]


def test_a_source_closed_for_a_protocol_error_is_finished_before_the_answer(recorded, tmp_path,
                                                                          monkeypatch):
    """The relay reconnects while the collector sends it the ERROR for a broken stream (its
    source is then the new connection's): the source is finished all the same, not carried on
    by the new connection."""
    header, buffers = recorded
    real = Collector._send_error
    c = Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), timeout=5.0).start()

    async def reconnected_meanwhile(self, writer, code, reason):
        for source in list(c._sources.values()):
            source.connection = object()      # what a reconnect does to the source meanwhile
        return await real(self, writer, code, reason)
    monkeypatch.setattr(Collector, "_send_error", reconnected_meanwhile)
    try:
        frames = [hello_frame(uuid.uuid4(), len(header)),
                  *P.encode_buffer(P.FrameType.HEADER, 0, header),
                  *P.encode_buffer(P.FrameType.HEADER, 1, header)]      # a second header buffer
        answer = _converse(c.address, b"".join(bytes(f) for f in frames), half_close=False)
        assert "a second header buffer" in _error_reason(answer)[1]
        assert c.wait_for(lambda ss: ss and ss[0].closed, PATIENCE)
    finally:
        c.stop()
