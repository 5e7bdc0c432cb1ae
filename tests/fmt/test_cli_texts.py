"""What the command lines say when an input is wrong: one line naming the file and what was
expected, a non-zero exit, no traceback; a wrong option told by the subcommand it was given to."""
from __future__ import annotations

import argparse
import os

import pytest

from wpptrace import cli
from wpptrace.decoder import cli_dump, tracefmt
from wpptrace.provider import cli as session_cli
from wpptrace.tmf import cli as tmf_cli


def wpptrace(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("argv, usage", [
    (["fmt", "x.etl", "--bogus"], "usage: wpptrace fmt "),
    (["tmf", "show", "x.tmf", "--bogus"], "usage: wpptrace tmf show "),
    (["session", "stop", "x", "--bogus"], "usage: wpptrace session stop "),
    (["dump", "--bogus", "x.etl"], "usage: wpptrace dump "),
    (["--bogus", "fmt", "x.etl"], "usage: wpptrace "),           # given before the subcommand
    (["--bogus", "tmf", "show", "x.tmf"], "usage: wpptrace "),
])
def test_an_unknown_option_is_told_by_its_subcommand(capsys, argv, usage):
    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    err = capsys.readouterr().err
    command = usage[len("usage: "):].strip()
    assert exited.value.code == 2
    assert err.startswith(usage) and err.endswith(f"\n{command}: error: unrecognized arguments: --bogus\n")


def test_a_directory_given_as_an_etl_file(capsys, tmp_path):
    rc, out, err = wpptrace(capsys, "fmt", tmp_path, "-p", tmp_path)
    assert rc == 1 and out == ""
    assert err.splitlines()[-1] == (f"wpptrace fmt: error: {tmp_path}: is a directory: give the "
                                    f".etl files in it ({tmp_path / '*.etl'})")


def test_a_file_that_is_no_etl_file_says_where_and_what_was_expected(capsys, tmp_path):
    empty = tmp_path / "empty.etl"
    empty.write_bytes(b"")
    rc, out, err = wpptrace(capsys, "fmt", empty, "-p", tmp_path)
    assert rc == 1 and out == ""
    # the file named once; no Windows loader text ("An attempt was made to load a program ...")
    assert err.splitlines()[-1] == (f"wpptrace fmt: error: {empty}: cannot read: offset 0x0: "
                                    f"expected a 72-byte WMI_BUFFER_HEADER, the file has 0 bytes "
                                    f"(ERROR_BAD_FORMAT)")


def test_a_tmf_directory_without_tmf_files_is_warned_about(capsys, fmt_data, tmp_path):
    for option in ("-p", "--tmf"):
        rc, out, err = wpptrace(capsys, "fmt", fmt_data / "wppstr-sample.etl", option, tmp_path)
        assert rc == 0 and "Unknown( 10)" in out
        assert err == (f"wpptrace fmt: warning: {tmp_path}: no .tmf files in this directory: "
                       f"messages without a format print as Unknown\n")


def test_a_missing_pdb_is_named_once(capsys, fmt_data, tmp_path):
    rc, out, err = wpptrace(capsys, "fmt", fmt_data / "wppstr-sample.etl", "--pdb", tmp_path / "x.pdb")
    assert rc == 1
    assert err.splitlines()[0] == f"wpptrace fmt: error: {tmp_path / 'x.pdb'}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"


def test_a_pdb_that_is_no_regular_file_is_not_called_missing(capsys, fmt_data, tmp_path):
    pipe = tmp_path / "x.pdb"
    os.mkfifo(pipe)
    rc, out, err = wpptrace(capsys, "fmt", fmt_data / "wppstr-sample.etl", "--pdb", pipe)
    assert rc == 1
    assert err.splitlines()[0] == (f"wpptrace fmt: error: {pipe}: not a regular file (a device, "
                                   f"pipe or socket): give the .pdb file, or the image")


@pytest.mark.parametrize("tmf", [[], ["-p", "EMPTY"]])
def test_a_live_view_of_no_session_says_how_to_start_one(capsys, tmp_path, tmf):
    """The session not being there is the one line said: the warnings about the formats (no TMF
    given, a directory without .tmf files) came first, for a run that decodes nothing."""
    tmf = [tmp_path if arg == "EMPTY" else arg for arg in tmf]
    rc, out, err = wpptrace(capsys, "fmt", "--rt", "NoSuchSession", *tmf)
    assert rc == 1 and out == ""
    assert err == (
        "wpptrace fmt: error: real-time session 'NoSuchSession': no session of this user by that "
        "name delivers in real time (ERROR_WMI_INSTANCE_NOT_FOUND); start one with "
        "'wpptrace session start NoSuchSession --realtime'\n")


def test_tmf_show_of_a_missing_path_or_an_empty_directory(capsys, tmp_path):
    rc, out, err = wpptrace(capsys, "tmf", "show", tmp_path / "nope")
    assert rc == 1 and out == ""
    assert err == f"wpptrace tmf show: error: {tmp_path / 'nope'}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)\n"
    rc, out, err = wpptrace(capsys, "tmf", "show", tmp_path)
    assert rc == 0 and out == "0 messages, 0 GUIDs, 0 errors\n"
    assert err == f"wpptrace tmf show: warning: {tmp_path}: no .tmf or .tmc files in this directory\n"


def test_a_loop_of_symbolic_links_is_named_by_its_win32_code(capsys, tmp_path):
    """A path whose links lead back to themselves (ELOOP) is one line naming the Win32 code, as
    a missing file is, not the C library's "Too many levels of symbolic links" or "No such TMF
    file or directory"."""
    for name in ("loop.etl", "loop"):
        os.symlink(name, tmp_path / name)
    unresolved = "The name of the file cannot be resolved by the system (ERROR_CANT_RESOLVE_FILENAME)"
    rc, out, err = wpptrace(capsys, "fmt", tmp_path / "loop.etl", "-p", tmp_path)
    assert rc == 1 and out == ""
    assert err == f"wpptrace fmt: error: {tmp_path / 'loop.etl'}: cannot read: {unresolved}\n"
    rc, out, err = wpptrace(capsys, "tmf", "show", tmp_path / "loop")
    assert rc == 1 and out == ""
    assert err == f"wpptrace tmf show: error: {tmp_path / 'loop'}: {unresolved}\n"


def test_tmf_from_pdb_of_a_missing_file(capsys, tmp_path):
    rc, out, err = wpptrace(capsys, "tmf", "from-pdb", tmp_path / "nope.pdb", "-o", tmp_path)
    assert rc == 1 and out == ""
    assert err == (f"wpptrace tmf from-pdb: error: {tmp_path / 'nope.pdb'}: The system cannot find the file "
                   f"specified (ERROR_FILE_NOT_FOUND)\n")


def test_ctrl_c_says_the_command_was_interrupted(capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_dump, "run", interrupted)
    assert wpptrace(capsys, "dump", "x.etl") == (130, "", "wpptrace dump: interrupted\n")
    monkeypatch.setattr(tracefmt, "run_fmt", interrupted)
    assert tracefmt.main(["x.etl"]) == 130
    assert capsys.readouterr().err == "tracefmt: interrupted\n"


@pytest.mark.parametrize("argv, named", [
    (["session", "query", "x"], "wpptrace session query"),
    (["tmf", "show", "x.tmf"], "wpptrace tmf show"),
    (["dump", "x.etl"], "wpptrace dump"),
])
def test_an_unexpected_error_or_ctrl_c_names_the_subcommand_given(capsys, monkeypatch, argv, named):
    # as argparse's own errors do: "wpptrace session query: error: ...", not "wpptrace session: ..."
    def failing(*args, **kwargs):
        raise raised
    for module in (session_cli, tmf_cli, cli_dump):
        monkeypatch.setattr(module, "run", failing)
    raised = RuntimeError("boom")
    assert wpptrace(capsys, *argv) == (1, "", f"{named}: error: boom\n")
    raised = KeyboardInterrupt()
    assert wpptrace(capsys, *argv) == (130, "", f"{named}: interrupted\n")


def _options_without_help(parser: argparse.ArgumentParser, name: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _options_without_help(subparser, f"{name} {sub}")
        elif action.option_strings and not action.help:
            yield name, action.option_strings[0]


@pytest.mark.parametrize("command", ["fmt", "dump", "tmf", "relay", "collect"])
def test_every_option_of_the_decoding_commands_says_what_it_does(command):
    parser = cli.build_parser(only=command)
    assert list(_options_without_help(parser, "wpptrace")) == []


def test_every_tracefmt_and_tracelog_option_says_what_it_does():
    from wpptrace.provider import tracelog

    assert list(_options_without_help(tracefmt.build_parser(), "tracefmt")) == []
    parser = tracelog._parser()
    assert list(_options_without_help(parser, "tracelog")) == []
    assert parser.description.startswith("tracelog: ")   # no source markup in the help
    # pasted into a shell, an unquoted #GUID would start a comment
    assert "Quote '#GUID' in a shell" in parser.epilog


def test_an_output_that_cannot_be_written_is_refused_before_decoding(capsys, fmt_data, tmp_path):
    etl = fmt_data / "wppstr-sample.etl"
    for option, path, problem in (("-o", tmp_path, "it is a directory"),
                                  ("--summary", tmp_path, "it is a directory"),
                                  ("-o", tmp_path / "no" / "x.txt", f"there is no directory {tmp_path / 'no'}")):
        rc, out, err = wpptrace(capsys, "fmt", etl, "-p", fmt_data / "tmf", option, path)
        assert (rc, out) == (1, "")
        assert err == f"wpptrace fmt: error: {path}: cannot write: {problem}; nothing was written\n"


def test_standard_input_is_no_etl_file(capsys, tmp_path):
    for command in ("fmt", "dump"):
        rc, out, err = wpptrace(capsys, command, "-")
        assert (rc, out) == (1, "")
        assert err.splitlines()[-1] == (
            f"wpptrace {command}: error: -: cannot read: an .etl file is read at its buffers' "
            f"offsets: give a file, not a pipe or standard input")


def test_a_named_pipe_with_no_writer_is_told_not_waited_on(tmp_path):
    """fmt and dump refuse a named pipe nobody writes to at once (a blocking open waited for a
    writer for ever), and a regular file named "-" is read as the file it is."""
    import os
    import subprocess
    import sys

    fifo = tmp_path / "capture.etl"
    os.mkfifo(fifo)
    for command in ("fmt", "dump"):
        done = subprocess.run([sys.executable, "-m", "wpptrace", command, str(fifo)],
                              capture_output=True, text=True, timeout=120)
        assert (done.returncode, done.stdout) == (1, "")
        assert done.stderr.splitlines()[-1] == (
            f"wpptrace {command}: error: {fifo}: cannot read: an .etl file is read at its buffers' "
            f"offsets: give a file, not a pipe or standard input")
    (tmp_path / "-").write_bytes(b"hi\n")
    done = subprocess.run([sys.executable, "-m", "wpptrace", "dump", "-"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        "wpptrace dump: error: -: cannot read: offset 0x0: expected a 72-byte WMI_BUFFER_HEADER, "
        "the file has 3 bytes (ERROR_BAD_FORMAT)")


def test_an_unreadable_etl_file_is_named_by_its_win32_code_as_a_missing_one_is(capsys, tmp_path,
                                                                             monkeypatch):
    """A missing .etl file said ERROR_FILE_NOT_FOUND, an unreadable one only "Permission
    denied". (Made unreadable by the open refusing it: root reads a file of mode 000.)"""
    locked = tmp_path / "locked.etl"
    locked.write_bytes(b"\0" * 64)
    real_open = os.open

    def refusing(path, *args, **kwargs):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(path, *args, **kwargs)
    monkeypatch.setattr(os, "open", refusing)
    rc, out, err = wpptrace(capsys, "fmt", locked)
    assert (rc, out) == (1, "")
    assert err == f"wpptrace fmt: error: {locked}: cannot read: Access is denied (ERROR_ACCESS_DENIED)\n"


def test_nothing_to_decode_is_the_one_fatal_line_without_the_no_tmf_warning(capsys, tmp_path):
    """fmt and tracefmt said "no TMF given" before the error that left nothing to decode
    (two lines); with nothing that can be decoded only the error is said."""
    missing = tmp_path / "missing.etl"
    rc, out, err = wpptrace(capsys, "fmt", missing)
    assert (rc, out) == (1, "")
    assert err == (f"wpptrace fmt: error: {missing}: cannot read: The system cannot find the "
                   f"file specified (ERROR_FILE_NOT_FOUND)\n")
    assert tracefmt.main([str(missing), "-displayonly", "-nosummary"]) == 1
    assert capsys.readouterr() == ("", f"tracefmt: error: {missing}: cannot read: The system "
                                       f"cannot find the file specified (ERROR_FILE_NOT_FOUND)\n")


@pytest.mark.parametrize("content", [b"", b"not a PDB at all\n", None])
def test_a_pdb_option_naming_no_pdb_says_so(capsys, fmt_data, tmp_path, content):
    # --pdb of an .etl file was read as a TMF ("TMF entry skipped: ...: not a TMF file"), an
    # empty file was taken without a word: every message printed as Unknown, exit 0
    given = fmt_data / "wppstr-sample.etl" if content is None else tmp_path / "symbols"
    if content is not None:
        given.write_bytes(content)
    rc, out, err = wpptrace(capsys, "fmt", fmt_data / "wppstr-sample.etl", "--pdb", given)
    assert rc == 1
    assert err.splitlines()[0] == (f"wpptrace fmt: error: {given}: offset 0x0: not a PDB file: bad magic "
                                   f"(expected 'Microsoft C/C++ MSF 7.00\\r\\n\\x1aDS' at the start of the file)")
    assert "not a TMF file" not in err


def test_a_pdb_named_otherwise_is_read_as_a_pdb(capsys, fmt_data, tmp_path):
    import pathlib
    import shutil

    pdb = pathlib.Path(__file__).resolve().parents[1] / "data" / "pdb" / "wpp_x64.pdb"
    renamed = tmp_path / "symbols.bin"
    shutil.copyfile(pdb, renamed)
    rc, listed, err = wpptrace(capsys, "tmf", "show", pdb)
    assert rc == 0 and listed.count("\n") > 2
    assert wpptrace(capsys, "tmf", "show", renamed) == (0, listed, err)
    rc, out, err = wpptrace(capsys, "fmt", fmt_data / "wppstr-sample.etl", "--pdb", renamed)
    assert rc == 0, err
    assert "not a TMF" not in err and "error" not in err


@pytest.mark.parametrize("options, said", [
    (["--prefix", "%4!s!", "--no-prefix"], "--no-prefix and --prefix: give one"),
    (["--seq", "--no-prefix"], "--no-prefix and --seq: give one"),
    (["--seq", "--prefix", "%4!s!"], "--seq and --prefix: give one (%7!08x! in a prefix is the sequence number)"),
    (["--csv-quote"], "--csv-quote is for -f csv, not -f text"),
    (["--no-csv-header", "-f", "jsonl"], "--no-csv-header is for -f csv, not -f jsonl"),
])
def test_options_that_cannot_all_be_followed_are_a_usage_error(capsys, fmt_data, tmp_path, options, said):
    # each was taken silently, one of the options doing nothing
    out = tmp_path / "out.txt"
    rc, _, err = wpptrace(capsys, "fmt", fmt_data / "wppstr-sample.etl", "-o", out, *options)
    assert (rc, err) == (2, f"wpptrace fmt: error: {said}\n")
    assert not out.exists()


@pytest.mark.parametrize("options, said", [
    (["-summaryonly", "-nosummary"], "-summaryonly and -nosummary: give one (together nothing would be written)"),
    (["-summaryonly", "-displayonly"], "-summaryonly and -displayonly: give one (-summaryonly writes no text)"),
    (["-summaryonly", "-display"], "-summaryonly and -display: give one (-summaryonly writes no text)"),
    (["-csvheader"], "-csvheader is for -csv output: give -csv too"),
    (["-csvquote", "-displayonly"], "-csvquote is for -csv output: give -csv too"),
    # the pairs fmt refuses, in tracefmt's spelling (one table for both)
    (["-prefix", "%4!s!", "-noprefix"], "-noprefix and -prefix: give one"),
    (["-seq", "-noprefix"], "-noprefix and -seq: give one"),
    (["-seq", "-prefix", "%4!s!"], "-seq and -prefix: give one (%7!08x! in a prefix is the sequence number)"),
])
def test_tracefmt_options_that_cannot_all_be_followed_are_a_usage_error(capsys, fmt_data, tmp_path, options,
                                                                         said, monkeypatch):
    from wpptrace.decoder import tracefmt

    monkeypatch.chdir(tmp_path)
    assert tracefmt.main([str(fmt_data / "wppstr-sample.etl"), *options]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.endswith(f"tracefmt: error: {said}\n")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command, seq", [(["fmt"], "--seq"), (["tracefmt"], "-seq")])
def test_seq_beside_a_prefix_from_the_environment_is_said(capsys, fmt_data, tmp_path, monkeypatch,
                                                          command, seq):
    """TRACE_FORMAT_PREFIX sets the prefix: --seq, which picks the default prefix with the
    sequence number, does nothing then, and the run says so (the environment is no option given
    beside it: a warning, not a usage error)."""
    from wpptrace.decoder import tracefmt

    monkeypatch.setenv("TRACE_FORMAT_PREFIX", "[%1!s!]")
    monkeypatch.chdir(tmp_path)
    etl = str(fmt_data / "wppstr-sample.etl")
    tmf = str(fmt_data / "tmf")
    if command == ["fmt"]:
        rc, out, err = wpptrace(capsys, "fmt", etl, "-p", tmf, "--seq")
    else:
        rc = tracefmt.main([etl, "-p", tmf, "-seq", "-displayonly", "-nosummary", "-q"])
        out, err = capsys.readouterr()
    assert rc == 0, err
    assert out.splitlines()[0].startswith("[Header]")
    assert err.splitlines() == [f"{command[0] if command == ['tracefmt'] else 'wpptrace fmt'}: warning: "
                                f"{seq} does nothing: TRACE_FORMAT_PREFIX sets the prefix "
                                f"(%7!08x! in it is the sequence number)"]
