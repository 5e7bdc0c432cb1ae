"""Every message from-pdb writes is read back by our own TMF reader: the GUID header line is
written in its canonical form, a FUNC= added to a #typev line without a trailer gets its "//",
and a TMF: record whose message the reader would refuse (a line break inside a string, a
second message or GUID header in one record) is a damaged record, reported, never written."""
from __future__ import annotations

import argparse
import uuid

import pytest

import wpptrace.tmf as tmf
from wpptrace.tmf.pdb import read_pdb, tracepdb

GUID = "11112222-3333-4444-5555-666677778888"
OTHER = "99998888-7777-6666-5555-444433332222"
TYPEV = '#typev s_c10 10 "%0hello %10!d!" //   LEVEL=TRACE_LEVEL_ERROR FLAGS=F'


def _from_pdb(pdb_bytes: bytes, tmp_path, capsys) -> tuple[int, str, dict[str, str], str]:
    pdb = tmp_path / "m.pdb"
    pdb.write_bytes(pdb_bytes)
    out = tmp_path / "out"
    parser = argparse.ArgumentParser()
    tracepdb.add_arguments(parser)
    status = tracepdb.run(parser.parse_args([str(pdb), "-o", str(out), "--no-mof"]))
    files = {p.name: p.read_text() for p in out.iterdir()} if out.exists() else {}
    said = capsys.readouterr()
    return status, said.err, files, said.out


def _strict_messages(files: dict[str, str]) -> dict[tuple[uuid.UUID, int], tmf.Message]:
    found = {}
    for name, text in files.items():
        for message in tmf.parse_text(text, path=name).messages():
            found[(message.guid, message.number)] = message
    return found


@pytest.mark.parametrize("written", [f"urn:uuid:{GUID}", GUID.replace("-", ""), "{" + GUID.upper() + "}"])
def test_guid_forms_uuid_takes_are_written_canonically(pdb_maker, tmp_path, capsys, written):
    pm = pdb_maker
    body = pm.proc("P") + pm.annotation("TMF:", f"{written} comp // SRC=s.c MJ= MN=", TYPEV, "{",
                                        "n, ItemLong -- 10", "}") + pm.end()
    status, err, files, _ = _from_pdb(pm.make_pdb([("a.obj", body)]), tmp_path, capsys)
    assert status == 0 and err == ""
    assert f"\n{GUID} comp // SRC=s.c MJ= MN=\n" in files[f"{GUID}.tmf"]
    message = _strict_messages(files)[(uuid.UUID(GUID), 10)]
    assert message.component == "comp" and message.trailer["FUNC"] == "P"


def test_func_added_to_a_typev_line_without_a_trailer_gets_its_slashes(pdb_maker, tmp_path, capsys):
    pm = pdb_maker
    body = pm.proc("Proc") + pm.annotation("TMF:", f"{GUID} comp // SRC=s.c", '#typev s_c11 11 "%0plain"',
                                           "{", "}") + pm.end()
    status, err, files, _ = _from_pdb(pm.make_pdb([("a.obj", body)]), tmp_path, capsys)
    assert status == 0 and err == ""
    assert '#typev s_c11 11 "%0plain" //   FUNC=Proc\n' in files[f"{GUID}.tmf"]
    assert _strict_messages(files)[(uuid.UUID(GUID), 11)].trailer == {"FUNC": "Proc"}


@pytest.mark.parametrize("strings", [
    # a line break inside a string would write lines of another GUID into this GUID's file
    ("TMF:", f"{GUID} comp // SRC=s.c", TYPEV + f"\n}}\n{OTHER} evil // SRC=e.c\n#typev e 1 \"%0x\" //",
     "{", "}"),
    ("TMF:", f"{GUID} comp // SRC=s.c", TYPEV, "{", "n, ItemLong -- 10\r#typev e 1 \"%0x\" //", "}"),
    ("TMF:", f"{GUID} comp // SRC=s.c\n{OTHER} evil", TYPEV, "{", "}"),
    # a second GUID header or message as strings of one record
    ("TMF:", f"{GUID} comp // SRC=s.c", TYPEV, "{", "}", f"{OTHER} evil // SRC=e.c",
     '#typev e 1 "%0x" //', "{", "}"),
    # a message our reader refuses: an argument line that is not one
    ("TMF:", f"{GUID} comp // SRC=s.c", TYPEV, "{", "this is not an argument", "}"),
    # a control character: the reader takes the file for binary data
    ("TMF:", f"{GUID} comp // SRC=s.c", TYPEV.replace("hello", "hel\x01lo"), "{", "}"),
], ids=["lf-in-typev", "cr-in-argument", "lf-in-header", "second-guid", "bad-argument", "control-char"])
def test_records_the_reader_would_refuse_are_damaged_records(pdb_maker, tmp_path, capsys, strings):
    pm = pdb_maker
    good = ("TMF:", f"{GUID} comp // SRC=s.c", '#typev s_c12 12 "%0good" //', "{", "}")
    body = pm.proc("P") + pm.annotation(*strings) + pm.annotation(*good) + pm.end()
    info = read_pdb(pm.make_pdb([("a.obj", body)]), name="m.pdb")
    assert [m.number for m in info.messages] == [12]
    (issue,) = info.issues
    assert str(issue).startswith("m.pdb: offset ") and "\n" not in str(issue) and "\r" not in str(issue)
    status, err, files, out = _from_pdb(pm.make_pdb([("a.obj", body)]), tmp_path, capsys)
    assert status == 0 and "1 messages in 1 message GUIDs" in out and "(1 damaged records skipped)" in out
    assert err.count("warning:") == 1
    assert list(files) == [f"{GUID}.tmf"] and OTHER not in files[f"{GUID}.tmf"]
    assert set(_strict_messages(files)) == {(uuid.UUID(GUID), 12)}


@pytest.mark.parametrize("flags", [("F1\nF2",), ("F1", "F 2"), ("F1", "F2\r"), ("", ), ('F"1',)])
def test_control_records_with_names_that_are_not_one_word_are_damaged(pdb_maker, flags):
    pm = pdb_maker
    control = "A56A946C-AC5C-4E2F-9179-6821272856C6"
    body = pm.proc("Init") + pm.annotation("TMC:", control, "Ctl", *flags) + pm.annotation(
        "TMC:", control.replace("A56A", "B56A"), "Ctl", "F1", "F2") + pm.end()
    info = read_pdb(pm.make_pdb([("a.obj", body)]), name="m.pdb")
    assert [c.flags for c in info.control_guids] == [("F1", "F2")]
    (issue,) = info.issues
    assert "is not one word" in str(issue) and "\n" not in str(issue)


def test_enumerator_names_with_a_line_break_are_damage(pdb_maker):
    import struct

    pm = pdb_maker
    members = struct.pack("<HH", 0x1502, 3) + struct.pack("<H", 1) + b"One\n}\n#enumv Evil\0"
    field_list = pm.type_record(0x1203, members)
    enum = pm.type_record(0x1507, struct.pack("<HHII", 1, 0, 0x74, 0x1000) + b"_Big\0")
    strings = ("TMF:", f"{GUID} comp // SRC=s.c", '#typev s_c70 70 "%0%10!s!" //', "{", "s, ItemEnum(_Big) -- 10", "}")
    image = pm.make_pdb([("a.obj", pm.proc("P") + pm.annotation(*strings) + pm.end())],
                        tpi=pm.tpi_stream([field_list, enum]))
    info = read_pdb(image)
    assert [m.number for m in info.messages] == [70] and info.enums == {}
    (issue,) = info.issues
    assert "enumerator name 'One\\n}\\n#enumv Evil' is not one word" in str(issue)


def _enum_pdb(pm, *names: bytes) -> bytes:
    import struct

    members = b"".join(struct.pack("<HH", 0x1502, 3) + struct.pack("<H", value) + name + b"\0"
                       for value, name in enumerate(names, 1))
    field_list = pm.type_record(0x1203, members)
    enum = pm.type_record(0x1507, struct.pack("<HHII", len(names), 0, 0x74, 0x1000) + b"_Big\0")
    strings = ("TMF:", f"{GUID} comp // SRC=s.c", '#typev s_c70 70 "%0%10!s!" //', "{", "s, ItemEnum(_Big) -- 10", "}")
    return pm.make_pdb([("a.obj", pm.proc("P") + pm.annotation(*strings) + pm.end())],
                       tpi=pm.tpi_stream([field_list, enum]))


@pytest.mark.parametrize("name", [b"#x", b"//x", b"12345678-abcd"])
def test_enumerator_names_the_reader_would_not_read_back_are_damage(pdb_maker, tmp_path, capsys, name):
    """One word, but a line our reader takes for a comment ("//x": the enumerator was lost) or
    for the end of the block ("#x", a GUID: the file was refused); from-pdb wrote it, exit 0."""
    image = _enum_pdb(pdb_maker, b"One", name)
    info = read_pdb(image, name="m.pdb")
    assert [m.number for m in info.messages] == [70] and info.enums == {}
    (issue,) = info.issues
    assert f"enumerator name {name.decode()!r} " in str(issue), str(issue)
    status, err, files, _ = _from_pdb(image, tmp_path, capsys)
    assert status == 0 and err.count("warning:") == 1 and "#enumv" not in files[f"{GUID}.tmf"]
    assert set(_strict_messages(files)) == {(uuid.UUID(GUID), 70)}


def test_enumerator_names_the_reader_reads_back_are_written(pdb_maker, tmp_path, capsys):
    names = (b"One", b"}", b"{x", b"a//b", b"x#", "\u00e9t\u00e9".encode())
    status, err, files, _ = _from_pdb(_enum_pdb(pdb_maker, *names), tmp_path, capsys)
    assert status == 0 and err == ""
    enum = tmf.parse_text(files[f"{GUID}.tmf"], path="out").enum("_Big")
    assert enum.values == {value: name.decode() for value, name in enumerate(names, 1)}
