"""The collector's network defaults: a port alone listens on this host only (127.0.0.1); an
address other hosts reach takes TLS, or an explicit ``--insecure-listen`` (then one warning
line); each source's file is bounded in size (past the bound its source is refused with
ERROR_DISK_FULL, said once and counted, its file kept readable); without client
certificates a source resumes only from the address it first came from."""
from __future__ import annotations

import logging

import pytest
from remote_helpers import PATIENCE, HandRelay, data_buffers, ended_relay, wait_until

from wpptrace import cli
from wpptrace.remote import Collector
from wpptrace.remote import collector as collector_module
from wpptrace.remote import protocol as P
from wpptrace.winerror import ERROR_ACCESS_DENIED, ERROR_DISK_FULL


class _Recorded:
    """Stands for the collector: records what the command gives it, never listens."""
    made: list = []

    def __init__(self, listen, **options):
        _Recorded.made.append((listen, options))

    def start(self):
        raise OSError("not listening in this test")


@pytest.fixture
def recorded_collector(monkeypatch):
    _Recorded.made = []
    monkeypatch.setattr(collector_module, "Collector", _Recorded)
    return _Recorded.made


def _collect(tmp_path, *options: str) -> int:
    return cli.main(["collect", "-o", str(tmp_path / "c"), *options])


def test_a_port_alone_listens_on_this_host_only(tmp_path, recorded_collector, capsys):
    assert _collect(tmp_path, "--listen", "9000") == 1
    assert _collect(tmp_path, "--listen", ":9001") == 1
    assert [listen for listen, _ in recorded_collector] == [("127.0.0.1", 9000),
                                                           ("127.0.0.1", 9001)]
    err = capsys.readouterr().err
    assert "TLS" not in err and err.count("cannot listen on") == 2


def test_the_collector_without_a_host_listens_on_the_loopback_address(tmp_path):
    with Collector(("", 0), output_dir=str(tmp_path / "c")) as collector:
        assert collector.address[0] == "127.0.0.1"


@pytest.mark.parametrize("listen", ["0.0.0.0:9000", "[::]:9000", "192.0.2.7:9000",
                                    "collector.lab:9000"])
def test_listening_for_other_hosts_without_tls_needs_insecure_listen(tmp_path, listen,
                                                                    recorded_collector, capsys):
    assert _collect(tmp_path, "--listen", listen) == 2
    assert capsys.readouterr().err == (
        f"wpptrace collect: --listen {listen}: other hosts could send traces without TLS and "
        f"unauthenticated; give --tls-cert PEM (with --tls-client-ca PEM to admit only "
        f"relays with a certificate), or --insecure-listen to listen so anyway\n")
    assert recorded_collector == [] and not (tmp_path / "c").exists()
    assert _collect(tmp_path, "--listen", listen, "--insecure-listen") == 1
    err = capsys.readouterr().err.splitlines()
    warned = [line for line in err if "without TLS" in line]
    assert warned == [f"wpptrace collect: listening on {listen} without TLS: anyone who "
                      f"reaches it can send traces"]
    assert len(recorded_collector) == 1


@pytest.mark.parametrize("listen", ["127.0.0.1:9000", "127.0.0.5:9000", "[::1]:9000",
                                    "localhost:9000", "9000"])
def test_the_loopback_addresses_need_neither_tls_nor_a_warning(tmp_path, listen,
                                                              recorded_collector, capsys):
    assert _collect(tmp_path, "--listen", listen) == 1
    assert "TLS" not in capsys.readouterr().err


def test_the_file_size_bound_reaches_the_collector_and_is_checked(tmp_path, recorded_collector,
                                                                  capsys):
    assert _collect(tmp_path, "--listen", "0", "--max-file-mb", "5") == 1
    assert _collect(tmp_path, "--listen", "0") == 1
    assert [o["max_file_size"] for _, o in recorded_collector] == [5 << 20, 16 << 30]
    capsys.readouterr()
    assert _collect(tmp_path, "--listen", "0", "--max-file-mb", "0") == 2
    assert capsys.readouterr().err == ("wpptrace collect: --max-file-mb '0': expected a whole "
                                       "number of MiB from 1 to 1048576\n")


def test_the_help_names_the_network_options(capsys):
    with pytest.raises(SystemExit):
        cli.main(["collect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--listen [HOST:]PORT where relays connect (no HOST: 127.0.0.1, this host only)" in text
    assert "--insecure-listen" in text and "--max-file-mb MB" in text
    assert "(default: 16384, 16 GiB)" in text


def _error(answer) -> tuple[int, str]:
    assert answer is not None and answer[0] == P.FrameType.ERROR, answer
    return P.decode_error(P.Frame(answer[0], 0, 0, answer[2]))


def test_a_source_past_its_file_size_is_refused_once_and_its_file_kept(recorded, tmp_path,
                                                                      caplog):
    head, buffers = recorded
    caplog.set_level(logging.DEBUG, logger="wpptrace.remote.collector")
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_file_size=3 * len(head)) as collector:
        relay = HandRelay(collector.address, len(head), "big")
        try:
            assert relay.answer()[:2] == (P.FrameType.WELCOME, 0)
            relay.header(head)
            for seq in (1, 2, 3):
                relay.buffer(seq, buffers[seq - 1])
            code, reason = _error(relay.answer())
        finally:
            relay.close()
        assert collector.wait_for(lambda ss: ss and all(s.closed for s in ss), PATIENCE)
        (source,) = collector.sources
        assert code == ERROR_DISK_FULL
        assert reason == (f"cannot write {source.path}: the file reached the size this "
                          f"collector allows one source ({3 * len(head)} bytes)")
        for _ in range(2):              # the same source again: refused at once, not said again
            again = HandRelay(collector.address, len(head), "big", relay.source_id)
            try:
                assert _error(again.answer()) == (
                    ERROR_DISK_FULL, "this source's file reached the size this collector "
                                     "allows one source")
            finally:
                again.close()
        full, refused = collector.files_full, collector.connections_refused
        assert not source.ended and source.file_error == ""
    assert data_buffers(source.path) == buffers[:2]        # readable, every buffer written
    assert (full, refused, collector.protocol_errors, collector.write_failures) == (1, 2, 0, 0)
    said = [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "size this collector allows" in r.getMessage()]
    assert len(said) == 2, said             # the refusal, and once the source that came back
    assert said[0].endswith(f"closed: {reason}")


def test_a_relay_told_its_file_is_full_stops(recorded, tmp_path):
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                   max_file_size=3 * len(head)) as collector:
        relay = ended_relay(collector.address, recorded, "big", 6)
        try:
            assert relay.wait(PATIENCE)
        finally:
            relay.close()
    assert relay.refused is not None and relay.refused.code == ERROR_DISK_FULL
    assert relay.outcome.startswith("refused: cannot write "), relay.outcome


def test_a_source_resumes_only_from_the_address_it_first_came_from(recorded, tmp_path, caplog):
    """Without client certificates the source id is all a relay shows: another address
    that learnt it could otherwise take the stream over."""
    head, buffers = recorded
    with Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c")) as collector:
        first = HandRelay(collector.address, len(head), "moved")
        assert first.answer()[:2] == (P.FrameType.WELCOME, 0)
        first.header(head)
        first.buffer(1, buffers[0])
        first.close()
        wait_until(lambda: not collector.sources[0].connected and collector._queued_bytes == 0,
                   what="the lost connection, its buffer written")
        other = HandRelay(collector.address, len(head), "moved", first.source_id,
                          source_address=("127.0.0.2", 0))
        try:
            assert _error(other.answer()) == (
                ERROR_ACCESS_DENIED, "this source resumes only from the address it first "
                                     "came from (127.0.0.1)")
        finally:
            other.close()
        back = HandRelay(collector.address, len(head), "moved", first.source_id)
        try:
            assert back.answer()[:2] == (P.FrameType.WELCOME, 2)
            back.end(2)
            assert back.answer()[:2] == (P.FrameType.ACK, 2)
        finally:
            back.close()
        assert collector.wait_for(lambda ss: all(s.closed for s in ss), PATIENCE)
        (source,) = collector.sources
    assert source.ended and data_buffers(source.path) == buffers[:1]
    said = [r.getMessage() for r in caplog.records if "first came from" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("127.0.0.2:"), said
