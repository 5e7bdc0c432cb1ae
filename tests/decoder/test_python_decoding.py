"""Decoding from Python: ``format_file`` prints what ``wpptrace fmt`` prints, ``open(tmf=...)``
events and ``decode_file`` carry the text, typed arguments and fields of ``fmt -f jsonl``, and
TMFs are taken as fmt takes them."""
from __future__ import annotations

import json
import pathlib
import pickle
import shutil

import pytest

from wpptrace import decoder, tmf
from wpptrace.cli import main

REPO = pathlib.Path(__file__).resolve().parents[2]
CAPTURES = REPO / "samples" / "wpp_capture"
TMF_DIR = CAPTURES / "tmf"
ETLS = sorted(CAPTURES.glob("*.etl"))
PDB_DIR = REPO / "tests" / "data" / "pdb"


def fmt_output(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["fmt", *args]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("etl", ETLS, ids=lambda p: p.name)
@pytest.mark.parametrize("options", [(), ("--no-prefix",), ("--utc",),
                                     ("--prefix", "%2!s! %3!d! %!FUNC!: ")], ids=str)
def test_format_file_prints_what_fmt_prints(etl, options, capsys) -> None:
    expected = fmt_output(capsys, str(etl), "-p", str(TMF_DIR), *options)
    prefix = options[1] if options[:1] == ("--prefix",) else None
    lines = decoder.format_file(etl, tmf=TMF_DIR, prefix=prefix,
                                noprefix="--no-prefix" in options, utc="--utc" in options)
    assert "".join(line + "\n" for line in lines) == expected
    assert lines.counters.messages > 0 and lines.counters.unknown == 0 and lines.errors == []


def test_format_file_merges_several_files_and_reads_the_prefix_variable(capsys, monkeypatch) -> None:
    monkeypatch.setenv("TRACE_FORMAT_PREFIX", "%1!s!/%2!s!: ")
    expected = fmt_output(capsys, *map(str, ETLS), "-p", str(TMF_DIR))
    assert expected.count("\n") > 10 and expected.startswith("Header/Header: EventTrace\n")
    assert "".join(line + "\n" for line in decoder.format_file(ETLS, tmf=str(TMF_DIR))) == expected


def test_format_file_without_formats_prints_unknown_lines() -> None:
    lines = list(decoder.format_file(CAPTURES / "wppstr-sample.etl", noprefix=True))
    assert lines[0] == "EventTrace"
    assert all(line.endswith("(No Format Information found).") for line in lines[1:])


def test_format_file_of_a_damaged_file_goes_on_and_reports(tmp_path) -> None:
    damaged = tmp_path / "damaged.etl"
    data = bytearray((CAPTURES / "wppenum-sample.etl").read_bytes())
    data[len(data) // 2:len(data) // 2 + 64] = b"\xff" * 64
    damaged.write_bytes(bytes(data))
    lines = decoder.format_file(damaged, tmf=TMF_DIR)
    text = list(lines)
    assert text and lines.errors
    assert all("offset" in str(issue) or "buffer" in str(issue) for issue in lines.errors)


def jsonl(capsys, etl: pathlib.Path) -> list[dict]:
    out = fmt_output(capsys, str(etl), "-p", str(TMF_DIR), "-f", "jsonl")
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("etl", ETLS, ids=lambda p: p.name)
def test_open_with_tmf_gives_the_jsonl_facts(etl, capsys) -> None:
    rows = [row for row in jsonl(capsys, etl) if row["status"] != "header"]
    with decoder.open(etl, tmf=TMF_DIR) as events:
        messages = [e for e in events if isinstance(e, decoder.MessageEvent)]
    assert len(messages) == len(rows)
    for event, row in zip(messages, rows):
        assert event.text == row["text"]
        assert [a["name"] for a in row["args"]] == list(event.args.names)
        assert [a["type"] for a in row["args"]] == list(event.args.types)
        for arg, value in zip(row["args"], event.args):
            assert arg["value"] == (value.hex() if isinstance(value, bytes) else
                                    str(value) if not isinstance(value, (int, float, str, type(None), list))
                                    else value)
        d = event.to_dict()
        for key in ("number", "status", "component", "name", "file", "function", "flags", "text",
                    "thread_id", "process_id", "processor", "sequence", "filetime"):
            assert d[key] == (row[key] if key != "flags" else row["flags"]), key
        assert str(d["guid"]) == row["guid"] and d["level_name"] == row["level"]
        assert d["line"] == (int(row["line"]) if row["line"] else None)
        assert d["timestamp"] == event.timestamp


def test_decode_file_is_the_same_messages_in_order(capsys) -> None:
    result = decoder.decode_file(ETLS, tmf=TMF_DIR)
    texts = [m.text for m in result.messages]
    merged = [row["text"] for row in map(json.loads, fmt_output(
        capsys, *map(str, ETLS), "-p", str(TMF_DIR), "-f", "jsonl").splitlines())
        if row["status"] != "header"]
    assert texts == merged
    assert result.errors == [] and result.events_lost == 0
    assert result.counters.messages == len(texts) and result.counters.unknown == 0


def test_message_events_without_tmf_say_unknown() -> None:
    with decoder.open(CAPTURES / "wppstr-sample.etl") as events:
        message = next(e for e in events if isinstance(e, decoder.MessageEvent))
    assert message.wpp.status == "unknown" and message.args == ()
    assert message.text.endswith("(No Format Information found).")


def test_args_by_position_and_by_name() -> None:
    args = decoder.Args((1, "x", 1), ("n", "path", "n"), ("ItemLong", "ItemString", "ItemLong"))
    assert args == (1, "x", 1) and args[1] == "x" and args["path"] == "x" and args[-1] == 1
    assert args.as_dict() == {"n": 1, "path": "x"} and args.get("missing", 5) == 5
    with pytest.raises(KeyError, match="no argument named 'nope' \\(arguments: n, path, n\\)"):
        args["nope"]


def test_args_of_a_signature_are_args() -> None:
    cls = decoder.Args.of_signature(("n", "path"), ("ItemLong", "ItemString"))
    args = cls((1, "x"))
    assert isinstance(args, decoder.Args) and args == (1, "x") and args["path"] == "x"
    assert (args.names, args.types) == (("n", "path"), ("ItemLong", "ItemString"))
    assert args.as_dict() == {"n": 1, "path": "x"} and repr(args) == "(1, 'x')"
    copy = pickle.loads(pickle.dumps(args))
    assert (type(copy), copy, copy.names, copy.types) == (decoder.Args, args, args.names, args.types)


def test_load_tmf_takes_what_fmt_takes(tmp_path) -> None:
    copied = tmp_path / "one.tmf"
    shutil.copy(next(TMF_DIR.glob("744151fd*.tmf")), copied)
    from_file = decoder.load_tmf(copied)
    from_dir = decoder.load_tmf([TMF_DIR])
    assert {m.guid for m in from_file.messages()} < {m.guid for m in from_dir.messages()}
    from_pdb = decoder.load_tmf(PDB_DIR / "wpp_x64.pdb")
    from_image = decoder.load_tmf(str(PDB_DIR / "wpp_x64.dll"))     # its PDB found beside it
    assert len(from_pdb) > 0
    assert [m.format for m in from_pdb.messages()] == [m.format for m in from_image.messages()]
    same = tmf.load(TMF_DIR)
    assert decoder.load_tmf(same) is same
    with pytest.raises(FileNotFoundError, match="TMF path not found: .*missing"):
        decoder.load_tmf(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        decoder.open(CAPTURES / "wppstr-sample.etl", tmf=tmp_path / "missing")


def test_trace_levels_from_tmf_text() -> None:
    assert decoder.messages.trace_level("TRACE_LEVEL_ERROR") == 2
    assert decoder.messages.trace_level("logging.INFO") == 4
    assert decoder.messages.trace_level("WARNING") == 3
    assert decoder.messages.trace_level("0x5") == 5
    assert decoder.messages.trace_level("STR_GENERAL") is None
    assert decoder.messages.trace_level("") is None


def test_format_file_lines_of_a_message_with_line_breaks(tmp_path, capsys) -> None:
    from wpptrace.provider.tracing import Provider
    from wpptrace.testing import capture

    trace = Provider("LineBreaks", flags=("IO",))
    with capture(trace, keep=True, keep_dir=tmp_path, name="breaks") as cap:
        trace.info(trace.flags.IO, "first %s last", "one\ntwo")
        trace.info(trace.flags.IO, "plain %d", 3)
    trace.unregister()
    etl, tmf_dir = tmp_path / "breaks" / "trace.etl", tmp_path / "breaks" / "tmf"
    expected = fmt_output(capsys, str(etl), "-p", str(tmf_dir), "--no-prefix")
    assert expected == "EventTrace\nfirst one\ntwo last\nplain 3\n"
    lines = list(decoder.format_file(etl, tmf=tmf_dir, noprefix=True))
    assert lines == ["EventTrace", "first one", "two last", "plain 3"]
    assert cap.texts == ["first one\ntwo last", "plain 3"]


def test_format_file_leaves_an_unreadable_file_out_as_fmt_does(tmp_path, capsys) -> None:
    """``format_file`` gives the lines ``wpptrace fmt`` prints: fmt leaves a file it cannot read
    out (one error line: the file, the offset, what was expected) and decodes the others, and so
    does ``format_file`` (and ``to_arrow``), the file said in ``errors``. It raised, giving no
    line of the files it could read."""
    garbage, missing = tmp_path / "garbage.etl", tmp_path / "missing.etl"
    garbage.write_bytes(b"hello world, not a trace")
    good = CAPTURES / "wppstr-sample.etl"
    capsys.readouterr()
    assert main(["fmt", str(garbage), str(good), str(missing), "-p", str(TMF_DIR)]) == 1
    printed = capsys.readouterr()
    lines = decoder.format_file([garbage, good, missing], tmf=TMF_DIR)
    assert "".join(line + "\n" for line in lines) == printed.out
    assert [str(issue) for issue in lines.errors] == [
        f"{garbage}: offset 0x0: cannot read: expected a 72-byte WMI_BUFFER_HEADER, the file has "
        f"24 bytes (ERROR_BAD_FORMAT)",
        f"{missing}: cannot read: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"]
    assert printed.err.splitlines()[:2] == [
        f"wpptrace fmt: error: {garbage}: cannot read: offset 0x0: expected a 72-byte "
        f"WMI_BUFFER_HEADER, the file has 24 bytes (ERROR_BAD_FORMAT)",
        f"wpptrace fmt: error: {lines.errors[1]}"]


def test_format_file_with_no_readable_input_raises_the_error_fmt_reports(tmp_path, capsys) -> None:
    """When no input can be read at all, fmt exits 1 with an error; ``format_file`` raises the
    first input's Win32Error (the file named), not an empty result that looks like an empty
    trace. One readable input among them keeps the skip-and-report behaviour above."""
    from wpptrace._cliutil import input_problem
    from wpptrace.winerror import Win32Error

    garbage, missing, folder = tmp_path / "garbage.etl", tmp_path / "missing.etl", tmp_path / "dir"
    garbage.write_bytes(b"hello world, not a trace")
    folder.mkdir()
    for inputs, name in (([garbage, missing], "ERROR_BAD_FORMAT"), ([missing, garbage], "ERROR_FILE_NOT_FOUND"),
                         (missing, "ERROR_FILE_NOT_FOUND"), ([folder], "ERROR_BAD_PATHNAME")):
        listed = inputs if isinstance(inputs, list) else [inputs]
        capsys.readouterr()
        assert main(["fmt", *map(str, listed), "-p", str(TMF_DIR)]) == 1
        said = capsys.readouterr().err.splitlines()[0]
        with pytest.raises(Win32Error) as raised:
            decoder.format_file(inputs, tmf=TMF_DIR)
        assert (raised.value.name, raised.value.filename) == (name, str(listed[0]))
        assert said == f"wpptrace fmt: error: {input_problem(str(listed[0]), raised.value)}"


def test_decode_file_leaves_an_unreadable_file_out_as_format_file_does(tmp_path) -> None:
    """``decode_file`` raised on the first file it could not open, giving nothing of the files
    it could read; it now leaves it out, said first in ``errors`` as ``format_file`` says it,
    and raises only when no input can be read."""
    from wpptrace.winerror import Win32Error

    garbage, missing = tmp_path / "garbage.etl", tmp_path / "missing.etl"
    garbage.write_bytes(b"hello world, not a trace")
    good = CAPTURES / "wppstr-sample.etl"
    alone = decoder.decode_file(good, tmf=TMF_DIR)
    mixed = decoder.decode_file([garbage, good, missing], tmf=TMF_DIR)
    assert [m.text for m in mixed.messages] == [m.text for m in alone.messages] != []
    lines = decoder.format_file([garbage, good, missing], tmf=TMF_DIR)
    list(lines)
    assert [str(issue) for issue in mixed.errors] == [str(issue) for issue in lines.errors]
    assert len(mixed.errors) == 2
    with pytest.raises(Win32Error) as raised:
        decoder.decode_file([missing, garbage], tmf=TMF_DIR)
    assert (raised.value.name, raised.value.filename) == ("ERROR_FILE_NOT_FOUND", str(missing))
