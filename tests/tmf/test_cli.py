"""`wpptrace tmf`: show (text and --json) and the delegating subcommands."""
from __future__ import annotations

import json

from wpptrace import cli
from wpptrace.tmf import cli as tmf_cli

GUID = "d4153fff-ac08-361f-5ed7-af1d38cd1903"


def test_show_json_objects_and_summary(findneedle_tmf, capsys, monkeypatch):
    monkeypatch.delenv("TRACE_FORMAT_SEARCH_PATH", raising=False)
    code = cli.main(["tmf", "show", str(findneedle_tmf), "--json"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[-1] == {"summary": {"messages": 11, "guids": 4, "errors": 0}}
    by_key = {(obj["guid"], obj["number"]): obj for obj in lines[:-1]}
    assert len(by_key) == 11
    obj = by_key[(GUID, 10)]
    assert obj["name"] == "WppEnumEmitter_cpp20"
    assert obj["format"] == "%0b=%10!s! irql=%11!s!"
    assert obj["args"] == [
        {"name": "TRUE", "type": "ItemListLong", "insert": 10, "params": ["false", "true"]},
        {"name": "2 /*DPC*/", "type": "ItemListByte", "insert": 11, "params": ["Low", "APC", "DPC"]},
    ]
    assert (obj["LEVEL"], obj["FUNC"]) == ("EN", "main")  # trailer keys
    assert obj["trailer"] == {"LEVEL": "EN", "FUNC": "main"}
    assert "FLAGS" not in obj
    assert (obj["component"], obj["source_file"]) == ("findneedle", "WppEnumEmitter.cpp")


def test_show_counts_unique_pairs_and_errors(driver_sample, tmp_path, capsys):
    bad = tmp_path / "bad.tmf"
    bad.write_text(f"{GUID} X // SRC=a.c\n#typev ok 10 \"a\" //\n{{\n}}\n#typev broken 11 \"b\" //\n{{\nnonsense\n}}\n")
    appended = driver_sample / "d47178e4-703b-3465-f330-63f5cfd64eb4.tmf"  # 12 entries, 6 unique
    code = cli.main(["tmf", "show", str(appended), str(bad), "--json", "--no-env"])
    out, err = capsys.readouterr()
    assert code == 1
    assert json.loads(out.splitlines()[-1]) == {"summary": {"messages": 7, "guids": 2, "errors": 1}}
    assert f"{bad}:7:1: bad argument line" in err


def test_show_text_listing(findneedle_tmf, capsys):
    code = cli.main(["tmf", "show", str(findneedle_tmf / f"{GUID}.tmf"), "--no-env"])
    out, _ = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        f'{GUID}    10 WppEnumEmitter_cpp20 [findneedle] "%0b=%10!s! irql=%11!s!"  LEVEL=EN FUNC=main',
        "    %10: TRUE, ItemListLong(false,true)",
        "    %11: 2 /*DPC*/, ItemListByte(Low,APC,DPC)",
        f'{GUID}    11 WppEnumEmitter_cpp21 [findneedle] "%0set=%10!s!"  LEVEL=EN FUNC=main',
        "    %10: (unsigned long)0x5, ItemSetLong(" + ",".join(str(n) for n in range(1, 33)) + ")",
        "2 messages, 1 GUIDs, 0 errors",
    ]


def test_strict_show_stops_at_first_error(tmp_path, capsys):
    bad = tmp_path / "bad.tmf"
    bad.write_text("junk\n")
    assert cli.main(["tmf", "show", str(bad), "--strict", "--no-env"]) == 1
    assert f"{bad}:1:1: not a TMF file" in capsys.readouterr().err


def test_missing_delegate_exits_2(monkeypatch, capsys):
    monkeypatch.setitem(tmf_cli.DELEGATES, "gen", ("wpptrace.provider.no_such_module", "generate"))
    assert cli.main(["tmf", "gen", "anything"]) == 2
    assert "wpptrace.provider.no_such_module is missing" in capsys.readouterr().err
    assert cli.main(["tmf"]) == 2


def test_from_pdb_output_reads_back_like_the_pdb(data_dir, tmp_path, capsys):
    """from-pdb (our tracepdb) writes <guid>.tmf + .tmc; the TMF loader reads them back."""
    import wpptrace.tmf as tmf

    pdb = data_dir / "pdb" / "wpp_x64.pdb"
    assert cli.main(["tmf", "from-pdb", str(pdb), "-o", str(tmp_path), "-c"]) == 0
    capsys.readouterr()
    from_files = tmf.load(tmp_path, use_environment=False)
    from_pdb = tmf.load(pdb, use_environment=False)
    strip = lambda s: [(m.guid, m.number, m.name, m.format, m.args, m.trailer, m.component) for m in s.messages()]
    assert strip(from_files) == strip(from_pdb) and len(strip(from_pdb)) == 10
    assert [(c.guid, c.name, c.flags) for c in from_files.control_guids] == [
        (c.guid, c.name, c.flags) for c in from_pdb.control_guids]
    assert from_files.issues == []


def test_a_path_that_stops_a_strict_listing_is_one_line_naming_the_command(tmp_path, capsys):
    # with --strict, "fifo: not a regular file ..." had no "wpptrace tmf show: error:" before it,
    # unlike its other errors (the problems of a listing are file:line: diagnostics, as before)
    import os

    from wpptrace import cli

    fifo = tmp_path / "x.tmf"
    os.mkfifo(fifo)
    assert cli.main(["tmf", "show", "--strict", str(fifo)]) == 1
    assert capsys.readouterr().err == (f"wpptrace tmf show: error: {fifo}: not a regular file (a device, "
                                       f"pipe or socket): give a TMF or TMC text file\n")
