"""``wpptrace collect``'s queue and write bounds: given on the command line, checked (a bad
value is one line saying what was expected, exit status 2), and handed to the collector."""
from __future__ import annotations

import pytest

from wpptrace import cli
from wpptrace.remote import collector as collector_module


def _collect(tmp_path, *options: str) -> int:
    return cli.main(["collect", "--listen", "127.0.0.1:0", "-o", str(tmp_path / "c"), "-q",
                     *options])


def test_the_help_shows_the_bounds_with_their_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(["collect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--max-queued-per-source-mb MB MiB of one source's buffers received" in text
    assert "--max-queued-mb MB the same for all sources together (default: 64)" in text
    assert "--write-timeout SECONDS fail a source whose disk finishes no write" in text


@pytest.mark.parametrize("options, said", [
    (("--max-queued-mb", "x"),
     "--max-queued-mb 'x': expected a whole number of MiB from 1 to 1048576"),
    (("--max-queued-per-source-mb", "0"),
     "--max-queued-per-source-mb '0': expected a whole number of MiB from 1 to 1048576"),
    (("--max-queued-mb", "1.5"),
     "--max-queued-mb '1.5': expected a whole number of MiB from 1 to 1048576"),
    (("--max-queued-mb", "1048577"),
     "--max-queued-mb '1048577': expected a whole number of MiB from 1 to 1048576"),
    (("--max-queued-per-source-mb", "65"),
     "--max-queued-per-source-mb 65 is more than --max-queued-mb 64, the bound of all "
     "sources together"),
    (("--write-timeout", "0"), "--write-timeout '0': expected a number of seconds, at least 1"),
    (("--write-timeout", "nan"), "--write-timeout 'nan': expected a number of seconds, at least 1"),
    (("--write-timeout", "inf"), "--write-timeout 'inf': expected a number of seconds, at least 1"),
    (("--write-timeout", "soon"),
     "--write-timeout 'soon': expected a number of seconds, at least 1"),
    (("--write-timeout", "0.000001"),
     "--write-timeout '0.000001': expected a number of seconds, at least 1"),
    (("--max-queued-mb", "2", "--max-queued-per-source-mb", "3"),
     "--max-queued-per-source-mb 3 is more than --max-queued-mb 2, the bound of all "
     "sources together"),
], ids=["not-a-number", "zero", "fraction", "too-large", "source-above-all", "no-time",
        "nan", "forever", "words", "too-short", "source-above-a-small-all"])
def test_a_bad_bound_is_one_line_and_exit_status_2(tmp_path, monkeypatch, capsys, options,
                                                   said):
    monkeypatch.setattr(collector_module, "Collector", _NotListening)  # (taken: status 1)
    assert _collect(tmp_path, *options) == 2
    err = capsys.readouterr().err
    assert err == f"wpptrace collect: {said}\n"
    assert not (tmp_path / "c").exists()                # nothing was started


class _NotListening:
    """A collector that cannot listen (``wpptrace collect`` exits with status 1 at once)."""

    def __init__(self, listen, **options):
        pass

    def start(self):
        raise OSError("not listening in this test")


def test_the_bounds_reach_the_collector(tmp_path, monkeypatch, capsys):
    made = []

    class NotListening(collector_module.Collector):
        """The real collector's bounds, as it took them; it cannot listen (status 1)."""

        def start(self):
            made.append((self.max_queued_per_source, self.max_queued, self.write_timeout))
            raise OSError("not listening in this test")
    monkeypatch.setattr(collector_module, "Collector", NotListening)
    assert _collect(tmp_path, "--max-queued-per-source-mb", "2", "--max-queued-mb", "3",
                    "--write-timeout", "7.5") == 1
    assert _collect(tmp_path) == 1
    # a total below the per-source default, alone: the per-source bound is the total
    assert _collect(tmp_path, "--max-queued-mb", "2", "--write-timeout", "1") == 1
    assert made == [(2 << 20, 3 << 20, 7.5), (4 << 20, 64 << 20, 60.0),
                    (2 << 20, 2 << 20, 1.0)]
    assert capsys.readouterr().err.count("cannot listen on 127.0.0.1:0") == 3


def test_the_per_source_default_is_the_librarys(tmp_path, monkeypatch, capsys):
    """Without --max-queued-per-source-mb the collector's own default applies (one value,
    kept in the library): the command line does not repeat it."""
    made = []

    class NotListening(collector_module.Collector):
        def start(self):
            made.append(self.max_queued_per_source)
            raise OSError("not listening in this test")
    monkeypatch.setattr(collector_module, "Collector", NotListening)
    monkeypatch.setattr(collector_module, "QUEUED_PER_SOURCE", 3 << 20)
    assert _collect(tmp_path) == 1
    assert _collect(tmp_path, "--max-queued-mb", "2") == 1
    assert made == [3 << 20, 2 << 20]


@pytest.mark.parametrize("options, said", [
    ({"max_queued": 0}, "max_queued_per_source and max_queued must be at least 1 byte"),
    ({"max_queued_per_source": 0}, "max_queued_per_source and max_queued must be at least 1 "
                                   "byte"),
    ({"write_timeout": 0}, "write_timeout must be more than 0 seconds, not 0"),
], ids=["all", "per-source", "write-timeout"])
def test_the_collector_refuses_bounds_that_could_never_hold(tmp_path, options, said):
    with pytest.raises(ValueError) as refused:
        collector_module.Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"), **options)
    assert str(refused.value) == said


def test_the_library_takes_the_per_source_default_down_to_a_smaller_total(tmp_path):
    """As the CLI does: the per-source default (4 MiB) is the total bound if that is less;
    a per-source bound given is kept."""
    def bounds(**options):
        c = collector_module.Collector(("127.0.0.1", 0), output_dir=str(tmp_path / "c"),
                                       **options)
        return c.max_queued_per_source, c.max_queued
    assert bounds() == (4 << 20, 64 << 20)
    assert bounds(max_queued=1 << 20) == (1 << 20, 1 << 20)
    assert bounds(max_queued_per_source=2 << 20, max_queued=1 << 20) == (2 << 20, 1 << 20)


def test_the_help_says_the_librarys_per_source_default(monkeypatch, capsys):
    """The help's per-source default is the collector's own value, not a copy of it."""
    monkeypatch.setattr(collector_module, "QUEUED_PER_SOURCE", 3 << 20)
    with pytest.raises(SystemExit):
        cli.main(["collect", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 3, or --max-queued-mb if less)" in text, text


def test_a_tmf_path_that_cannot_be_used_is_said_and_nothing_is_listened_on(tmp_path, monkeypatch,
                                                                          capsys):
    """``collect --rt -p /nonexist`` listened, its TMFs loaded with the problem dropped; as
    ``fmt -p /nonexist`` it now says so (fmt's words) and exits 1, before listening. A TMF file
    whose entries are skipped is said as fmt says it, and the collector listens."""
    made = []

    class Recorded(_NotListening):
        def __init__(self, listen, **options):
            made.append(options)
    monkeypatch.setattr(collector_module, "Collector", Recorded)
    missing = tmp_path / "nonexist"
    assert cli.main(["collect", "--listen", "127.0.0.1:0", "--rt", "-p", str(missing)]) == 1
    assert capsys.readouterr() == (
        "", f"wpptrace collect: error: {missing}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)\n")
    assert cli.main(["collect", "--listen", "127.0.0.1:0", "--rt", "--tmf", str(missing),
                     "-o", str(tmp_path / "c")]) == 1
    assert capsys.readouterr().err == f"wpptrace collect: error: {missing}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)\n"
    assert made == [] and not (tmp_path / "c").exists()

    bad = tmp_path / "bad.tmf"
    bad.write_text("garbage line\n")
    assert cli.main(["collect", "--listen", "127.0.0.1:0", "--rt", "--tmf", str(bad), "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"wpptrace collect: warning: TMF entry skipped: {bad}:1:1: not a TMF file")
    assert err[1:] == ["wpptrace collect: cannot listen on 127.0.0.1:0: not listening in this test"]
    assert len(made) == 1


def test_the_output_directory_is_made_only_as_the_last_step_of_its_path(tmp_path, monkeypatch,
                                                                          capsys):
    """``collect -o app.py`` (a file) said "[Errno 17] File exists"; ``-o /missing/a/b`` made
    the whole chain at the umask's modes. Now a file there, or a parent missing, is one line
    (exit status 1, nothing made); a missing last directory is made private."""
    import os
    import stat

    monkeypatch.setattr(collector_module, "Collector",
                        type("Checked", (collector_module.Collector,),
                             {"start": _NotListening.start}))
    afile = tmp_path / "app.py"
    afile.write_text("")
    deep = tmp_path / "missing" / "a" / "b"
    for path, said in [
            (afile, f"{afile}: not a directory (ERROR_BAD_PATHNAME)"),
            (deep, f"{deep}: there is no directory {deep.parent} (only the last directory of "
                   f"the path is made) (ERROR_BAD_PATHNAME)"),
            (afile / "x", f"{afile / 'x'}: a part of the path is not a directory (ERROR_BAD_PATHNAME)")]:
        assert cli.main(["collect", "--listen", "127.0.0.1:0", "-o", str(path), "-q"]) == 1, path
        assert capsys.readouterr() == ("", f"wpptrace collect: {said}\n"), path
    assert sorted(os.listdir(tmp_path)) == ["app.py"]
    made = tmp_path / "made"
    assert cli.main(["collect", "--listen", "127.0.0.1:0", "-o", str(made), "-q"]) == 1
    assert "cannot listen" in capsys.readouterr().err
    assert stat.S_IMODE(made.stat().st_mode) == 0o700


def test_an_output_directory_refused_for_another_reason_is_not_said_missing_a_parent(
        tmp_path, monkeypatch):
    """mkdir says ENOENT for other reasons than a missing parent (``-o /proc/x``): the
    parent exists, so the OS's error is said, not "there is no directory /proc"."""
    import errno
    import os

    from wpptrace.winerror import Win32Error

    target = tmp_path / "x"

    def refuse(path, mode=0o777):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))

    monkeypatch.setattr(os, "mkdir", refuse)
    with pytest.raises(Win32Error) as caught:
        collector_module._output_directory(str(target))
    assert caught.value.name == "ERROR_FILE_NOT_FOUND"
    assert "there is no directory" not in str(caught.value)
    assert str(target) in str(caught.value)


@pytest.mark.parametrize("given", ["0", "-1"])
def test_sources_below_one_is_a_usage_error(tmp_path, capsys, given):
    # --sources 0 or -1 was taken, and the collector ran until killed
    from wpptrace import cli

    assert cli.main(["collect", "--listen", "127.0.0.1:0", "-o", str(tmp_path / "out"), "-q",
                     "--sources", given]) == 2
    assert capsys.readouterr() == ("", f"wpptrace collect: --sources {given}: expected a number of "
                                       f"streams, at least 1\n")
    assert not (tmp_path / "out").exists()
