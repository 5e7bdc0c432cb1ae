"""``wpptrace relay``'s delivery bounds after the stream's end: given on the command line,
checked (a bad value is one line saying what was expected, exit status 2), and handed to
the relay."""
from __future__ import annotations

import logging

import pytest

from wpptrace import cli
from wpptrace.remote import relay as relay_module


def _relay(*options: str) -> int:
    return cli.main(["relay", "some-session", "--to", "127.0.0.1:9", "-q", *options])


def _relays_made(monkeypatch) -> list[dict]:
    """The options of each Relay the command makes from now on (none is started: the
    command then exits 1, saying "not started in this test")."""
    made: list[dict] = []

    class Recorded:
        def __init__(self, to, **options):
            made.append(options)

        def start(self):
            raise OSError("not started in this test")
    monkeypatch.setattr(relay_module, "Relay", Recorded)
    return made


def test_the_help_shows_the_linger_options_with_their_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["relay", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("--linger SECONDS once the session stopped (or the relay was interrupted), give "
            "up delivering what is left after this long without progress (default: 30)") in text
    assert ("--linger-limit SECONDS ... and at the latest this long after it (default: 300)"
            in text)


@pytest.mark.parametrize("options, said", [
    (("--linger", "0"), "--linger '0': expected a number of seconds above 0"),
    (("--linger", "-5"), "--linger '-5': expected a number of seconds above 0"),
    (("--linger", "nan"), "--linger 'nan': expected a number of seconds above 0"),
    (("--linger-limit", "inf"), "--linger-limit 'inf': expected a number of seconds above 0"),
    (("--linger-limit", "later"),
     "--linger-limit 'later': expected a number of seconds above 0"),
], ids=["zero", "negative", "nan", "forever", "words"])
def test_a_bad_linger_is_one_line_and_exit_status_2(capsys, options, said):
    assert _relay(*options) == 2
    assert capsys.readouterr().err == f"wpptrace relay: {said}\n"


def test_the_linger_options_reach_the_relay(monkeypatch, capsys):
    made = _relays_made(monkeypatch)
    assert _relay("--linger", "2.5", "--linger-limit", "40") == 1
    assert _relay() == 1
    assert [(o["linger"], o["linger_limit"]) for o in made] == [(2.5, 40.0), (30.0, 300.0)]
    assert capsys.readouterr().err.count("not started in this test") == 2


def test_a_stop_limit_of_none_reaches_the_relay_as_no_limit(monkeypatch, capsys):
    """--stop-limit takes seconds, or "none": an interrupt then waits as long as --linger and
    --linger-limit allow (the relay's stop_limit None); the help says so."""
    made = _relays_made(monkeypatch)
    assert _relay("--stop-limit", "none") == 1
    assert _relay("--stop-limit", "5") == 1
    assert _relay() == 1
    assert [o["stop_limit"] for o in made] == [None, 5.0, 30.0]
    capsys.readouterr()
    assert _relay("--stop-limit", "never") == 2
    assert capsys.readouterr().err == ("wpptrace relay: --stop-limit 'never': expected a number "
                                       "of seconds above 0, or none\n")
    with pytest.raises(SystemExit):
        cli.main(["relay", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("(default: 30: within a service manager's stop timeout; none: no limit of its own, "
            "only --linger and --linger-") in text


@pytest.mark.parametrize("text", ["0", "x", "1.5", "1048577"])
def test_a_bad_max_queue_mb_is_said_as_collect_says_its_sizes(capsys, text):
    """--max-queue-mb is read as collect reads its sizes in MiB: one line, the same words."""
    assert _relay("--max-queue-mb", text) == 2
    assert capsys.readouterr().err == (f"wpptrace relay: --max-queue-mb {text!r}: expected a "
                                       f"whole number of MiB from 1 to 1048576\n")


def test_max_queue_mb_reaches_the_relay_in_bytes(monkeypatch, capsys):
    made = _relays_made(monkeypatch)
    assert _relay("--max-queue-mb", "3") == 1
    assert _relay() == 1
    assert [o["max_queue_bytes"] for o in made] == [3 << 20, 64 << 20]
    capsys.readouterr()


def test_collect_and_relay_read_seconds_and_sizes_with_one_shared_helper():
    """Both commands read their options in seconds, and in MiB, with the remote commands' one
    helper each; neither takes a private helper of the other."""
    import ast
    import inspect

    from wpptrace.remote import cli_collect, cli_options, cli_relay

    for module in (cli_collect, cli_relay):
        imported = {(node.module, alias.name) for node in ast.walk(ast.parse(
            inspect.getsource(module))) if isinstance(node, ast.ImportFrom)
            for alias in node.names}
        assert ("wpptrace.remote.cli_options", "seconds") in imported, module.__name__
        assert ("wpptrace.remote.cli_options", "mebibytes") in imported, module.__name__
        private = [f"{where}.{name}" for where, name in imported
                   if name.startswith("_") and (where or "").startswith("wpptrace.remote")]
        assert private == [], module.__name__
    assert cli_options.seconds("2.5", "--linger") == 2.5
    with pytest.raises(ValueError, match=r"^--write-timeout '0.5': expected a number of "
                                         r"seconds, at least 1$"):
        cli_options.seconds("0.5", "--write-timeout", least=1.0)


def test_a_session_that_is_not_running_is_said_as_fmt_rt_says_it(capsys):
    """relay printed the raw WMI text ("ERROR_WMI_INSTANCE_NOT_FOUND (4201): The instance
    name passed was not recognized as valid by a WMI data provider. subscribe_realtime(...)")
    for a session that is not running; it now says it as fmt --rt does, and what to do."""
    import uuid

    name = f"no-such-{uuid.uuid4().hex[:8]}"
    assert cli.main(["relay", name, "--to", "127.0.0.1:9", "-q"]) == 1
    assert capsys.readouterr() == ("", (
        f"wpptrace relay: real-time session {name!r}: no session of this user by that name "
        f"delivers in real time (ERROR_WMI_INSTANCE_NOT_FOUND); start one with "
        f"'wpptrace session start {name} --realtime'\n"))


def test_the_relays_outbox_is_bounded_in_bytes_too(recorded):
    """With 1 MiB buffers, 1024 of them would be 1 GiB on the traced machine: the outbox is
    bounded in bytes too; past it new buffers are dropped whole and counted."""
    from wpptrace.remote import Relay

    head, buffers = recorded
    relay = Relay(("127.0.0.1", 9), buffer_size=len(head), max_queue_bytes=4 * len(head))
    assert relay.add(head)
    taken = [relay.add(buffers[n % len(buffers)]) for n in range(10)]
    assert taken == [True] * 4 + [False] * 6
    assert relay.stats.relay_dropped == 6 and relay._outbox.bytes == 4 * len(head)


@pytest.mark.parametrize("name", ["büro-pc", "WS$01", "a b"])
def test_a_host_name_a_collector_refuses_is_one_line_naming_it_as_given(capsys, name):
    assert _relay("--host-name", name) == 2
    assert capsys.readouterr().err == (
        f"wpptrace relay: host name '{name}' has characters other than ASCII letters, digits, "
        f"'.', '-' and '_': a collector refuses it (give another with --host-name NAME)\n")


@pytest.mark.parametrize("this_host, shown", [
    ("büro-pc", "buro-pc"),                     # the letters without their accents
    ("WS$01", "WS_01"),                         # a NetBIOS name's "$"
    ("服务器.lab", "xn--zfru1ggxt.lab"),          # DNS's form of a name in another script
    ("plain-host.example", "plain-host.example"),
], ids=["accent", "dollar", "other-script", "plain"])
def test_a_relay_on_a_host_whose_name_a_collector_refuses_shows_a_name_made_from_it(
        monkeypatch, caplog, this_host, shown):
    monkeypatch.setattr(relay_module.socket, "gethostname", lambda: this_host)
    with caplog.at_level(logging.INFO, logger="wpptrace.remote.relay"):
        relay = relay_module.Relay(("127.0.0.1", 9), session="s")
    assert relay.host == shown
    said = [r.getMessage() for r in caplog.records if "is sent as" in r.getMessage()]
    # a name made from the host's is said once, as the relay starts; a plain one is not
    assert said == ([f"s: this host's name {this_host!r} is sent as {shown!r} (a collector takes only "
                     f"ASCII letters, digits, '.', '-' and '_'; --host-name sets another)"]
                    if shown != this_host else [])
