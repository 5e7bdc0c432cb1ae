"""The clang/lld fixture PDBs: annotations vs llvm-pdbutil's dump, FUNC= filling, from-pdb output."""
from __future__ import annotations

import argparse
import datetime as dt
import re
import uuid

import pytest

from wpptrace.tmf import parse_text
from wpptrace.tmf.pdb import load_pdb, read_pdb, tracepdb
from wpptrace.tmf.pdb.msf import MsfFile

FIXTURES = ["wpp_x64.pdb", "wpp_x86_8k.pdb"]
DRIVER_GUID = uuid.UUID("6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80")
QUEUE_GUID = uuid.UUID("a1b2c3d4-0000-4111-8222-933344445555")
DEVICE_GUID = uuid.UUID("0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f")
CONTROL_GUID = uuid.UUID("2f4b5c6d-7e8f-4a1b-9c2d-3e4f5a6b7c8d")
WHEN = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.timezone.utc)


def pdbutil_annotations(dump: str) -> list[tuple]:
    """(module, offset, segment, code offset, strings, enclosing proc) from `llvm-pdbutil dump -symbols`.

    The enclosing procedure is found from each S_*PROC32 record's ``end =`` field, i.e. a
    different method from our reader's scope stack.
    """
    out = []
    module = -1
    procs: list[tuple[int, int, str]] = []
    lines = dump.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"\s*Mod (\d{4}) \|", line)
        if m:
            module, procs = int(m.group(1)), []
        m = re.match(r"\s*(\d+) \| (S_\w+) \[size = \d+\](?: `(.*)`)?", line)
        if m and m.group(2) in ("S_GPROC32", "S_LPROC32"):
            end = int(re.search(r"end = (\d+)", lines[i + 1]).group(1))
            procs.append((int(m.group(1)), end, m.group(3)))
        elif m and m.group(2) == "S_ANNOTATION":
            offset = int(m.group(1))
            seg, code = re.search(r"addr = (\w{4}):(\w{4})", lines[i + 1]).groups()
            assert lines[i + 2].strip() == "strings = ["
            strings, j = [], i + 3
            while True:
                text = lines[j].strip()
                if text.endswith("]") and (j + 1 == len(lines) or not lines[j + 1].startswith(" " * 20)):
                    strings.append(text[:-1])
                    break
                strings.append(text)
                j += 1
            proc = next((name for start, end, name in procs if start < offset < end), None)
            out.append((module, offset, int(seg), int(code), tuple(strings), proc))
            i = j
        i += 1
    return out


@pytest.mark.parametrize("name", FIXTURES)
def test_annotations_match_llvm_pdbutil(pdb_data, name):
    expected = pdbutil_annotations((pdb_data / name.replace(".pdb", ".pdbutil-symbols.txt")).read_text())
    info = read_pdb(pdb_data / name)
    got = [(a.module_index, a.stream_offset, a.segment, a.code_offset, a.strings, a.procedure)
           for a in info.annotations]
    assert len(expected) == 14
    assert got == expected
    assert info.issues == [] and info.modules == 4 and not info.stripped and not info.mini_pdb


@pytest.mark.parametrize("name, machine, pointer_size", [("wpp_x64.pdb", 0x8664, 8), ("wpp_x86_8k.pdb", 0x14C, 4)])
def test_pdb_identity_matches_llvm_pdbutil_summary(pdb_data, name, machine, pointer_size):
    summary = (pdb_data / name.replace(".pdb", ".pdbutil-summary.txt")).read_text()
    field = dict(re.findall(r"^\s+([A-Za-z ]+): (.*)$", summary, re.M))
    info = read_pdb(pdb_data / name)
    assert info.pdb_guid == uuid.UUID(field["GUID"]) and info.age == int(field["Age"])
    assert (info.machine, info.pointer_size) == (machine, pointer_size)
    assert info.stripped is (field["Is stripped"] == "true")
    sizes = [int(n) for n in re.findall(r"Stream\s+\d+ \(\s*(\d+) bytes\)", summary)]
    with MsfFile(pdb_data / name) as msf:
        assert msf.page_size == int(field["Block Size"]) and msf.num_pages == int(field["Number of blocks"])
        assert [msf.stream_size(i) for i in range(msf.num_streams)] == sizes
        assert len(sizes) == int(field["Number of streams"])


@pytest.mark.parametrize("name", FIXTURES)
def test_enums_match_llvm_pdbutil_types(pdb_data, name):
    dump = (pdb_data / name.replace(".pdb", ".pdbutil-types.txt")).read_text()
    expected = {}
    lists = {}
    for index, body in re.findall(r"(0x[0-9A-F]+) \| LF_FIELDLIST \[size = \d+\]\n((?:\s+- LF_ENUMERATE .*\n)+)", dump):
        lists[int(index, 16)] = tuple((n, int(v)) for n, v in re.findall(r"LF_ENUMERATE \[(\w+) = (\d+)\]", body))
    for name_, field_list in re.findall(r"LF_ENUM \[size = \d+\] `(\w+)`\n\s+field list: (0x[0-9A-F]+)", dump):
        expected[name_] = lists[int(field_list, 16)]
    assert set(expected) == {"_FixtureState", "_FixtureFlags"}
    assert read_pdb(pdb_data / name).enums == expected


@pytest.mark.parametrize("name", FIXTURES)
def test_messages_and_func_names(pdb_data, name):
    info = read_pdb(pdb_data / name)
    funcs = {(m.guid, m.number): re.search(r" FUNC=(\S+)$", m.lines[0]).group(1) for m in info.messages}
    assert funcs == {
        (DRIVER_GUID, 10): "DriverEntry",
        (DRIVER_GUID, 11): "Fixture_Process",  # inside an S_BLOCK32
        (DRIVER_GUID, 12): "fixture_helper",  # S_LPROC32
        (DRIVER_GUID, 13): "Fixture_Emit_Custom",  # the record's own FUNC= is kept, none appended
        (DRIVER_GUID, 14): "Fixture_Public",
        (DRIVER_GUID, 15): "Fixture_State",
        (QUEUE_GUID, 10): "Queue_Start",  # force-inlined helper: first copy kept
        (QUEUE_GUID, 11): "Queue_Start",
        (DEVICE_GUID, 10): "drv::Dev::Init",
        (DEVICE_GUID, 11): "drv::twice<int>",  # first of two template instances
    }
    assert info.duplicates == 2 and info.other_annotations == 1
    assert [m.public for m in info.messages].count(True) == 1
    (control,) = info.control_guids
    assert (control.guid, control.name, control.flags, control.annotation.procedure) == (
        CONTROL_GUID, "WppFixtureTraceGuid", ("TRACE_DRIVER", "TRACE_QUEUE", "TRACE_DEVICE"), "DriverEntry")
    assert info.message_guids() == [DRIVER_GUID, QUEUE_GUID, DEVICE_GUID]


EXPECTED_DRIVER_TMF = """\
// PDB:  {pdb}
// PDB:  Last Updated :2026-01-02:03:04:05:678 (UTC) [Tracepdb]
6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture // SRC=driver.c MJ= MN=
#typev driver_c20 10 "%0 [%!FUNC!] --> Entry" //   LEVEL=TRACE_LEVEL_VERBOSE FLAGS=TRACE_DRIVER FUNC=DriverEntry
{{
}}
#typev driver_c33 11 "%0 [%!FUNC!] processing %10!d! items for %11!s!" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_QUEUE FUNC=Fixture_Process
{{
doubled, ItemLong -- 10
name, ItemString -- 11
}}
#typev driver_c60 13 "%0 say "hi" // x=%10!x!" //   LEVEL=TRACE_LEVEL_WARNING FLAGS=TRACE_DRIVER FUNC=Fixture_Emit_Custom
{{
value, ItemLong -- 10
}}
#typev driver_c48 12 "%0 [%!FUNC!] caf\u00e9 failed with %10!s!" //   LEVEL=TRACE_LEVEL_ERROR FLAGS=TRACE_DRIVER FUNC=fixture_helper
{{
status, ItemNTSTATUS -- 10
}}
#typev Unknown_cxx00 14 "%0code %10!d!" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_DEVICE FUNC=Fixture_Public
{{
Arg, ItemLong -- 10
}}
#typev driver_c92 15 "%0 [%!FUNC!] state=%10!s! flags=%11!s!" //   LEVEL=TRACE_LEVEL_INFORMATION FLAGS=TRACE_DEVICE FUNC=Fixture_State
{{
state, ItemEnum(_FixtureState) -- 10
flags, ItemFlagsEnum(_FixtureFlags) -- 11
}}
6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80 wppfixture
#enumv _FixtureState
{{
StateOff,0x0
StateOn,0x1
StateBig,0x90000000
StateNeg,0xFFFFFFFE
}}
#enumv _FixtureFlags
{{
FlagRead,0x1
FlagWrite,0x2
FlagExec,0x4
}}
"""


def _from_pdb(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    tracepdb.add_arguments(parser)
    return tracepdb.run(parser.parse_args(list(argv)))


@pytest.mark.parametrize("name", FIXTURES)
def test_from_pdb_writes_tracepdb_files(pdb_data, tmp_path, name, capsys):
    assert _from_pdb(str(pdb_data / name), "-o", str(tmp_path), "--timestamp", WHEN.isoformat()) == 0
    stem = name[:-4]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{DRIVER_GUID}.tmf", f"{QUEUE_GUID}.tmf", f"{DEVICE_GUID}.tmf", f"{stem}.mof"])
    assert (tmp_path / f"{DRIVER_GUID}.tmf").read_text(encoding="utf-8") == EXPECTED_DRIVER_TMF.format(pdb=name)
    mof = (tmp_path / f"{stem}.mof").read_text()
    assert f'guid("{{{CONTROL_GUID}}}")' in mof and f"class {stem}WppFixtureTraceGuid : EventTrace" in mof
    assert "(Init called in Function DriverEntry)" in mof and '"0x00000004"}: amended' in mof
    assert "10 messages in 3 message GUIDs" in capsys.readouterr().out
    # every written file parses with the TMF grammar, strictly, with FUNC in the trailer
    for guid in (DRIVER_GUID, QUEUE_GUID, DEVICE_GUID):
        tmfset = parse_text((tmp_path / f"{guid}.tmf").read_text(encoding="utf-8"), path=f"{guid}.tmf")
        assert tmfset.guids() == [guid] and all(m.trailer.get("FUNC") for m in tmfset.messages())
        assert all(m.component == "wppfixture" for m in tmfset.messages())


def test_from_pdb_append_like_tracepdb(pdb_data, tmp_path):
    args = [str(pdb_data / "wpp_x64.pdb"), "-o", str(tmp_path), "--timestamp", WHEN.isoformat(), "--no-mof"]
    assert _from_pdb(*args) == 0 and _from_pdb(*args, "--append") == 0
    text = (tmp_path / f"{QUEUE_GUID}.tmf").read_text()
    assert text.count("// PDB:  wpp_x64.pdb\n") == 2 and text.count(str(QUEUE_GUID)) == 1
    assert text.count("#typev queue_c26 11 ") == 2 and not list(tmp_path.glob("*.mof"))


def test_from_pdb_source_date_epoch(pdb_data, tmp_path, monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert _from_pdb(str(pdb_data / "wpp_x86_8k.pdb"), "-o", str(tmp_path)) == 0
    assert "Last Updated :2023-11-14:22:13:20:000 (UTC)" in (tmp_path / f"{DEVICE_GUID}.tmf").read_text()


def test_from_pdb_reports_bad_files(tmp_path, capsys):
    bad = tmp_path / "bad.pdb"
    bad.write_bytes(b"MZ" + bytes(100))
    assert _from_pdb(str(bad), "-o", str(tmp_path / "out")) == 1
    assert "bad.pdb: offset 0x0: not a PDB file" in capsys.readouterr().err


def test_load_pdb_gives_a_tmfset(pdb_data):
    tmfset = load_pdb(pdb_data / "wpp_x86_8k.pdb", updated=WHEN)
    assert len(tmfset) == 10 and tmfset.issues == []
    assert tmfset.enum("_FixtureState").values == {0: "StateOff", 1: "StateOn", 0x90000000: "StateBig", 0xFFFFFFFE: "StateNeg"}
    message = tmfset.lookup(QUEUE_GUID, 11)
    assert message.trailer == {"LEVEL": "TRACE_LEVEL_INFORMATION", "FLAGS": "TRACE_QUEUE", "FUNC": "Queue_Start"}
    assert [(a.name, a.item, a.params, a.insert) for a in message.args] == [
        ("irql", "ItemListByte", ("Low", "APC", "DPC"), 10), ("link", "ItemPWString", (), 11)]
    assert tmfset.lookup(DRIVER_GUID, 12).format == "%0 [%!FUNC!] caf\u00e9 failed with %10!s!"
    (control,) = tmfset.control_guids
    assert (control.guid, control.flags) == (CONTROL_GUID, ("TRACE_DRIVER", "TRACE_QUEUE", "TRACE_DEVICE"))


def test_package_loader_reads_pdb_paths(pdb_data):
    import wpptrace.tmf as tmf

    tmfset = tmf.load(str(pdb_data / "wpp_x64.pdb"))
    assert tmfset.lookup(DEVICE_GUID, 10).trailer["FUNC"] == "drv::Dev::Init"


def test_wpptrace_tmf_from_pdb_command(pdb_data, tmp_path, capsys):
    from wpptrace.cli import main

    rc = main(["tmf", "from-pdb", str(pdb_data / "wpp_x86_8k.pdb"), "-o", str(tmp_path), "--timestamp",
               WHEN.isoformat(), "-v"])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"{DEVICE_GUID}.tmf" in out and "wpp_x86_8k.mof" in out
    text = (tmp_path / f"{DEVICE_GUID}.tmf").read_text()
    assert "FUNC=drv::Dev::Init\n" in text and text.startswith("// PDB:  wpp_x86_8k.pdb\n")


def test_from_pdb_tmc_files_load_back(pdb_data, tmp_path):
    import wpptrace.tmf as tmf

    assert _from_pdb(str(pdb_data / "wpp_x64.pdb"), "-o", str(tmp_path), "-c", "--no-mof") == 0
    tmc = tmp_path / f"{CONTROL_GUID}.tmc"
    assert tmc.read_text().endswith(f"{CONTROL_GUID} WppFixtureTraceGuid\nTRACE_DRIVER\nTRACE_QUEUE\nTRACE_DEVICE\n")
    loaded = tmf.load(str(tmp_path))  # the directory: 3 .tmf files and the .tmc
    assert [(c.guid, c.name, c.flags) for c in loaded.control_guids] == [
        (CONTROL_GUID, "WppFixtureTraceGuid", ("TRACE_DRIVER", "TRACE_QUEUE", "TRACE_DEVICE"))]
    assert len(loaded) == 10 and loaded.lookup(DRIVER_GUID, 15).trailer["FUNC"] == "Fixture_State"
