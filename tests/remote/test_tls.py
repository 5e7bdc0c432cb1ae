"""TLS: the collector's certificate is checked by the relay; with client authentication on,
only relays whose certificate the collector's CA signed (and, with ``allow``, whose name is
listed) are accepted. The PKI is made for the test with the openssl command."""
from __future__ import annotations

import logging
import socket
import subprocess
import sys
import uuid

import certificates
import pytest
from remote_helpers import (PATIENCE, TracedSession, data_buffers, decoded_text, recv_exactly,
                            relay_process, said_before_close, stop_as_each_is_accepted, wait_until)

from wpptrace.remote import Collector, Relay, client_context, server_context
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_ACCESS_DENIED, ERROR_BUSY

pytestmark = pytest.mark.skipif(not certificates.available(),
                                reason="needs the openssl command to make a test CA")


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return certificates.make(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """Buffers of a real session, to replay through ``Relay.add``: (header, data buffers)."""
    d = tmp_path_factory.mktemp("recorded")
    with TracedSession(d, "tls", buffer_kb=8) as session:
        session.log(2000, size=50)
    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    buffers = [data[i:i + size] for i in range(0, len(data), size)]
    return buffers[0], buffers[1:]


def _collector(pki, tmp_path, **options) -> Collector:
    tls = server_context(str(pki / "collector.pem"), str(pki / "collector.key"),
                         str(pki / "ca.pem"))
    return Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), tls=tls, **options)


def _replay(address, recorded, tls, **options) -> Relay:
    header, buffers = recorded
    relay = Relay(address, buffer_size=len(header), tls=tls, linger=1.0, connect_timeout=3.0,
                  max_backoff=0.2, name="replayed", **options).start()
    relay.add(header)
    for buf in buffers:
        relay.add(buf)
    relay.finish()
    relay.wait(PATIENCE)
    return relay


def test_a_relay_with_an_authorised_certificate_delivers_over_tls(pki, tmp_path, tmf_dir):
    with _collector(pki, tmp_path, allow={"relay-lab-1"}) as collector, \
            TracedSession(tmp_path, "tls-live", buffer_kb=8) as session:
        tls = client_context(str(pki / "ca.pem"), str(pki / "relay.pem"), str(pki / "relay.key"))
        relay = Relay(collector.address, session=session.name, tls=tls,
                      server_hostname="localhost").start()
        try:
            wait_until(lambda: len(collector.sources) == 1, what="the relay")
            session.log(2000, size=50)
            session.stop()
            assert relay.wait(PATIENCE) and relay.outcome == "ended"
            assert collector.wait_for(lambda ss: ss[0].closed, PATIENCE)
        finally:
            relay.close()
        source = collector.sources[0]
    assert source.identity == "relay-lab-1" and source.lost == 0
    assert data_buffers(source.path) == data_buffers(session.path)
    assert decoded_text(source.path, tmf_dir) == decoded_text(session.path, tmf_dir)


@pytest.mark.parametrize("who", ["no certificate", "another CA's certificate"])
def test_relays_without_a_certificate_the_ca_signed_are_refused(pki, tmp_path, recorded, who,
                                                                caplog):
    cert = {"no certificate": None, "another CA's certificate": "rogue"}[who]
    tls = client_context(str(pki / "ca.pem"), cert and str(pki / f"{cert}.pem"),
                         cert and str(pki / f"{cert}.key"))
    with caplog.at_level(logging.WARNING, logger="wpptrace.remote"), \
            _collector(pki, tmp_path) as collector:
        relay = _replay(collector.address, recorded, tls, server_hostname="localhost")
        assert collector.sources == []
    if sys.version_info >= (3, 11):          # the collector runs the handshake itself
        assert any("refused: TLS handshake failed" in r.getMessage() for r in caplog.records)
    assert relay.outcome.startswith("failed") and relay.stats.acknowledged == 0
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").iterdir())


def test_a_certificate_not_on_the_allow_list_is_refused_with_a_reason(pki, tmp_path, recorded):
    tls = client_context(str(pki / "ca.pem"), str(pki / "stranger.pem"), str(pki / "stranger.key"))
    with _collector(pki, tmp_path, allow={"relay-lab-1"}) as collector:
        relay = _replay(collector.address, recorded, tls, server_hostname="localhost")
        assert collector.sources == [] and collector.connections_refused == 1
    assert relay.refused is not None and relay.refused.code == ERROR_ACCESS_DENIED
    assert "relay-lab-2" in str(relay.refused) and relay.outcome.startswith("refused")


def test_an_empty_allow_list_admits_nobody(pki, tmp_path, recorded):
    """An allow list with no name on it admits no relay (it used to mean any the CA signed)."""
    tls = client_context(str(pki / "ca.pem"), str(pki / "relay.pem"), str(pki / "relay.key"))
    with _collector(pki, tmp_path, allow=set()) as collector:
        relay = _replay(collector.address, recorded, tls, server_hostname="localhost")
        assert collector.sources == [] and collector.connections_refused == 1
    assert relay.refused is not None and relay.refused.code == ERROR_ACCESS_DENIED


@pytest.mark.parametrize("problem", ["untrusted CA", "wrong name"])
def test_the_relay_checks_the_collectors_certificate(pki, tmp_path, recorded, problem):
    ca, name = {"untrusted CA": ("rogue-ca", "localhost"),
                "wrong name": ("ca", "collector.example")}[problem]
    tls = client_context(str(pki / f"{ca}.pem"), str(pki / "relay.pem"), str(pki / "relay.key"))
    with _collector(pki, tmp_path) as collector:
        relay = _replay(collector.address, recorded, tls, server_hostname=name)
        assert collector.sources == []
    assert relay.outcome.startswith("failed") and relay.stats.acknowledged == 0


def test_relay_and_collect_commands_over_tls(pki, tmp_path):
    out = tmp_path / "c"
    collect = subprocess.Popen(
        [sys.executable, "-m", "wpptrace.cli", "collect", "--listen", "127.0.0.1:0", "-o", str(out),
         "--tls-cert", str(pki / "collector.pem"), "--tls-key", str(pki / "collector.key"),
         "--tls-client-ca", str(pki / "ca.pem"), "--allow", "relay-lab-1", "--sources", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = collect.stderr.readline()
        assert "listening on 127.0.0.1:" in first and "(TLS)" in first, first
        port = first.rsplit(":", 1)[1].split()[0]
        with TracedSession(tmp_path, "tls-cli", buffer_kb=8) as session:
            relay = relay_process(session.name, ("localhost", port), "--ca", str(pki / "ca.pem"),
                                  "--cert", str(pki / "relay.pem"), "--key", str(pki / "relay.key"))
            wait_until(lambda: out.exists() and list(out.iterdir()), what="the collected file")
            session.log(1000)
            session.stop()
            assert relay.wait(PATIENCE) == 0, relay.stderr.read()
        _, stderr = collect.communicate(timeout=PATIENCE)
    finally:
        if collect.poll() is None:
            collect.kill()
    assert collect.returncode == 0, stderr
    assert "as relay-lab-1" in stderr
    (collected,) = out.iterdir()
    assert data_buffers(collected) == data_buffers(session.path)


def test_allow_without_a_client_ca_says_what_is_missing(pki, tmp_path):
    """Names are read from relay certificates, which only a collector with a client CA asks
    for: ``--allow`` without ``--tls-client-ca`` would refuse every relay as having no
    certificate (even one that has one). It is refused at the start, saying what to add, in
    words its own audience knows: the command's options, Python's arguments."""
    expected = ("--allow needs --tls-cert with --tls-client-ca, the CA that signs the relays' "
                "certificates: without it no relay is asked for a certificate, so no name "
                "could be allowed")
    tls_options = ["--tls-cert", str(pki / "collector.pem"), "--tls-key",
                   str(pki / "collector.key")]
    for options in (tls_options, []):
        proc = subprocess.run(
            [sys.executable, "-m", "wpptrace.cli", "collect", "--listen", "127.0.0.1:0", "-o",
             str(tmp_path / "c"), *options, "--allow", "relay-lab-1"],
            capture_output=True, text=True, timeout=PATIENCE)
        assert proc.returncode == 2
        assert proc.stderr.splitlines() == [f"wpptrace collect: {expected}"]
    tls = server_context(str(pki / "collector.pem"), str(pki / "collector.key"))
    for context in (tls, None):
        with pytest.raises(ValueError) as info:
            Collector(("127.0.0.1", 0), tls=context, allow={"relay-lab-1"})
        assert str(info.value) == (
            "allow needs tls=server_context(..., client_ca=PEM), the CA that signs the relays' "
            "certificates: without it no relay is asked for a certificate, so no name could "
            "be allowed")


def _hold_the_only_connection(collector):
    """A connection that takes the collector's one place (its TLS handshake never begins)."""
    held = socket.create_connection(collector.address)
    wait_until(lambda: collector._active == 1, what="the first connection handled")
    return held


def test_a_refusal_past_the_connection_limit_is_said_over_tls(pki, tmp_path):
    """Past ``max_connections`` a TLS relay is told ERROR_BUSY over TLS. Said in plain text
    before the handshake, the ERROR read to the relay as a broken handshake ("wrong version
    number"): it looked for a certificate problem, not a full collector."""
    tls = client_context(str(pki / "ca.pem"), str(pki / "relay.pem"), str(pki / "relay.key"))
    with _collector(pki, tmp_path, max_connections=1, handshake_timeout=PATIENCE) as collector:
        held = _hold_the_only_connection(collector)
        try:
            with tls.wrap_socket(socket.create_connection(collector.address),
                                 server_hostname="localhost") as sock:
                sock.settimeout(PATIENCE)
                sock.sendall(P.encode_hello(P.Hello(uuid.uuid4(), 8192, "refused", "tls"), 1))
                head = recv_exactly(sock, P.HEADER.size)
                _, _, kind, _, length, _ = P.HEADER.unpack(head)
                payload = recv_exactly(sock, length)
                assert P.decode_error(P.Frame(kind, 0, 0, payload)) == (ERROR_BUSY,
                                                                         "too many connections")
            assert collector.connections_refused == 1
            wait_until(lambda: collector._refusals_closing == 0, what="the refusal closed")
        finally:
            held.close()


def test_a_tls_refusal_past_the_closing_slots_says_nothing_in_plain_text(pki, tmp_path,
                                                                         monkeypatch):
    """Past the refusals that get a slow close (here none), a TLS connection refused past the
    limits is closed without a word: no ERROR in plain text where the relay expects TLS."""
    monkeypatch.setattr(collector_module, "_REFUSALS_CLOSING", 0)
    with _collector(pki, tmp_path, max_connections=1, handshake_timeout=PATIENCE) as collector:
        held = _hold_the_only_connection(collector)
        try:
            with socket.create_connection(collector.address) as sock:
                sock.settimeout(PATIENCE)
                assert said_before_close(sock) == b""
            assert collector.connections_refused == 1
        finally:
            held.close()


def test_a_stop_during_a_refusals_handshake_logs_no_traceback(pki, tmp_path, monkeypatch,
                                                              caplog):
    """The collector stops while a connection refused past the limits is in its TLS
    handshake (its relay sends nothing): the refusal ends at once and normally. Its
    cancellation left unhandled, Python's stream server logged it as an error with a
    traceback."""
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)
    caplog.set_level(logging.WARNING, logger="asyncio")
    collector = _collector(pki, tmp_path, max_connections=1,
                           handshake_timeout=10 * PATIENCE).start()
    held = silent = None
    try:
        held = _hold_the_only_connection(collector)
        silent = socket.create_connection(collector.address)
        wait_until(lambda: collector._refusals_closing == 1, what="the refusal's handshake")
        assert collector.stop(PATIENCE) is None
        assert collector._refusals_closing == 0
    finally:
        for sock in (held, silent):
            if sock is not None:
                sock.close()
        collector.stop()
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert logged == [], logged


def test_a_relay_accepted_as_the_collector_stops_is_told_so_over_tls(pki, tmp_path, recorded,
                                                                     monkeypatch, caplog):
    """A TLS relay whose connection the collector accepts as it stops, before its handler
    starts: told that the collector stops, over TLS (the handshake first), as the
    connections being handled are; it retries."""
    # (the handshake's wait is min(handshake_timeout, _TELL_WAIT): 1 s may not be enough for a
    # loaded machine)
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)
    caplog.set_level(logging.WARNING, logger="wpptrace.remote.relay")

    def said():
        return [r.getMessage() for r in list(caplog.records)
                if r.name == "wpptrace.remote.relay"]
    collector = _collector(pki, tmp_path, handshake_timeout=PATIENCE).start()
    stop_as_each_is_accepted(monkeypatch, collector)
    header, buffers = recorded
    tls = client_context(str(pki / "ca.pem"), str(pki / "relay.pem"), str(pki / "relay.key"))
    relay = Relay(collector.address, buffer_size=len(header), tls=tls, linger=PATIENCE,
                  connect_timeout=PATIENCE, max_backoff=0.2, name="late")
    relay.add(header)
    relay.add(buffers[0])
    relay.start()
    try:
        assert collector.wait(PATIENCE), "the collector did not stop"
        wait_until(said, what="the relay's word on its first connection")
    finally:
        relay.close(timeout=0.5)
        collector.stop()
    assert said()[0] == "late: the collector stopped: the collector is stopping (retrying)", \
        said()


def test_a_connection_accepted_as_the_collector_stops_past_the_slots_is_closed_at_once(
        pki, tmp_path, monkeypatch):
    """Past the slots of the connections that get a slow close (here none), a TLS connection
    accepted as the collector stops makes no handshake (which held its socket and task for
    up to 1 s, counted by no limit): it is closed without a word, at once."""
    monkeypatch.setattr(collector_module, "_REFUSALS_CLOSING", 0)
    monkeypatch.setattr(collector_module, "_TELL_WAIT", 10 * PATIENCE)     # (a wait shows)
    collector = _collector(pki, tmp_path, handshake_timeout=10 * PATIENCE).start()
    stop_as_each_is_accepted(monkeypatch, collector)
    try:
        with socket.create_connection(collector.address) as sock:   # (never begins TLS)
            sock.settimeout(PATIENCE)
            assert said_before_close(sock) == b""
            assert collector.wait(PATIENCE), "the collector did not stop"
    finally:
        collector.stop()


def test_a_tls_file_that_cannot_be_used_is_one_line_naming_it(pki, tmp_path, capsys):
    """collect --tls-cert /nonexist.pem said "TLS setup: [Errno 2] No such file or directory",
    a certificate without its key "[SSL] PEM lib (_ssl.c:3926)", and relay --ca alike: now
    the file, what is wrong with it in words (a file that cannot be read with its Win32 name)
    and, for a missing key, the option that gives it. Exit status 1, nothing listened on."""
    from wpptrace import cli

    missing = tmp_path / "nonexist.pem"
    junk = tmp_path / "junk.pem"
    junk.write_text("not a PEM file\n")
    cert, key, ca = str(pki / "collector.pem"), str(pki / "collector.key"), str(pki / "ca.pem")
    not_found = "cannot read: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"
    collect = ["collect", "--listen", "127.0.0.1:0", "-o", str(tmp_path / "out"), "-q"]
    for options, said in [
            (["--tls-cert", str(missing)], f"{missing}: {not_found}"),
            (["--tls-cert", cert], f"{cert}: has no private key: give --tls-key PEM"),
            (["--tls-cert", cert, "--tls-key", str(missing)], f"{missing}: {not_found}"),
            (["--tls-cert", cert, "--tls-key", str(junk)], f"{junk}: no PEM private key in it"),
            (["--tls-cert", cert, "--tls-key", str(pki / "relay.key")],
             f"{pki / 'relay.key'}: the private key is not the certificate's ({cert})"),
            (["--tls-cert", str(junk)], f"{junk}: no PEM certificate in it"),
            (["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", str(missing)],
             f"{missing}: {not_found}"),
            (["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", str(junk)],
             f"{junk}: no PEM certificate in it (a CA certificate was expected)")]:
        assert cli.main([*collect, *options]) == 1, options
        assert capsys.readouterr() == ("", f"wpptrace collect: {said}\n"), options
    assert not (tmp_path / "out").exists()
    relay = ["relay", "NoSuchSession", "--to", "127.0.0.1:9", "-q"]
    for options, said in [
            (["--ca", str(missing)], f"{missing}: {not_found}"),
            (["--ca", str(junk)], f"{junk}: no PEM certificate in it (a CA certificate was expected)"),
            (["--ca", ca, "--cert", str(pki / "relay.pem")],
             f"{pki / 'relay.pem'}: has no private key: give --key PEM")]:
        assert cli.main([*relay, *options]) == 1, options
        assert capsys.readouterr() == ("", f"wpptrace relay: {said}\n"), options


@pytest.mark.parametrize("option", ["--tls-cert", "--tls-key", "--tls-client-ca", "--ca"])
def test_a_pem_option_naming_a_fifo_is_refused_without_waiting_for_a_writer(pki, tmp_path, option):
    import os

    fifo = tmp_path / "fifo.pem"
    os.mkfifo(fifo)
    cert, key = str(pki / "collector.pem"), str(pki / "collector.key")
    given = {"--tls-cert": ["--tls-cert", str(fifo)], "--tls-key": ["--tls-cert", cert, "--tls-key", str(fifo)],
             "--tls-client-ca": ["--tls-cert", cert, "--tls-key", key, "--tls-client-ca", str(fifo)],
             "--ca": ["--ca", str(fifo)]}[option]
    command = (["relay", "NoSuchSession", "--to", "127.0.0.1:9", "-q"] if option == "--ca" else
               ["collect", "--listen", "127.0.0.1:0", "-o", str(tmp_path / "out"), "-q"])
    done = subprocess.run([sys.executable, "-m", "wpptrace", *command, *given], capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == (f"wpptrace {command[0]}: {fifo}: not a regular file (a device, pipe or socket): "
                           f"give a PEM file\n")
    assert not (tmp_path / "out").exists()
