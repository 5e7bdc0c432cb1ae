"""Unknown formats, format errors, pointer-size flags and prefix-less messages, on generated traces."""
from __future__ import annotations

import csv
import json
import struct
import uuid

import etlgen
import pytest
from fmthelp import run_fmt_capture

EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")  # findneedle TMF: messages 10, 11
TYPES = uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea")  # message 12: two ItemPtr
STRS = uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d")  # message 10: ItemString + ItemLong
NOBODY = uuid.UUID("37753236-c81f-505e-d40a-128d3bb2b5ff")  # no TMF anywhere

NOPREFIX_TMF = """\
// PDB:  test
aaaaaaaa-1111-2222-3333-444444444444 nopfx // SRC=n.c MJ= MN=
#typev n_c5 10 "raw %10!d!, no prefix" //   LEVEL=L FUNC=f
{
x, ItemLong -- 10
}
#typev n_c9 11 "%0[%!FUNC!] bad %10!s!" //   LEVEL=L FUNC=f
{
x, ItemUnheardOf -- 10
}
"""
NOPREFIX = uuid.UUID("aaaaaaaa-1111-2222-3333-444444444444")


def _trace(tmp_path, messages):
    path = tmp_path / "t.etl"
    ts = etlgen.T0
    rows = []
    for i, (guid, number, args, flags) in enumerate(messages):
        ts += 10_000  # 1 ms apart
        rows.append((guid, number, args, 0x100 + i, 0x200, 0, ts, flags))
    etlgen.write_messages(path, rows, nprocs=1, buffer_size=8192)
    return path


@pytest.fixture
def tmf_dirs(fmt_tmf, tmp_path):
    extra = tmp_path / "tmf2"
    extra.mkdir()
    (extra / f"{NOPREFIX}.tmf").write_text(NOPREFIX_TMF)
    return [str(fmt_tmf), str(extra)]


def test_unknown_and_format_error_lines_are_counted_and_the_run_goes_on(tmp_path, tmf_dirs):
    good = struct.pack("<ii", 7, 7)
    path = _trace(tmp_path, [
        (EMITTER, 10, good, etlgen.FLAGS_CORPUS),
        (NOBODY, 10, b"", etlgen.FLAGS_CORPUS),          # GUID without any TMF
        (EMITTER, 99, good, etlgen.FLAGS_CORPUS),        # known GUID, unknown number
        (EMITTER, 10, b"\x01\x02", etlgen.FLAGS_CORPUS),  # 2 bytes for two ItemLong
        (STRS, 10, b"abc", etlgen.FLAGS_CORPUS),          # string without its NUL
        (EMITTER, 11, good, etlgen.FLAGS_CORPUS),        # decoding continues
    ])
    summary = tmp_path / "s.sum"
    code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs, noprefix=True, summary=str(summary))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "EventTrace"
    assert lines[1] == "WppEmitter work item id=7 status=0x7 phase=startup provider=WppEmitter"
    assert lines[2] == f"Unknown( 10): GUID={NOBODY} (No Format Information found)."
    assert lines[3] == f"findneedle( 99): GUID={EMITTER} (No Format Information found)."
    assert lines[4].startswith("*****FormatMessage (#Typev) failed: ") and "ItemLong" in lines[4]
    assert str(EMITTER) in lines[4] and "#10 (WppEmitter_cpp36)" in lines[4]
    assert lines[5].startswith("*****FormatMessage") and "ItemString" in lines[5]
    assert lines[6] == "WppEmitter detail seq=7 note=processing-record value=7 category=Detail"
    assert len(lines) == 7
    text = summary.read_text()
    assert "Total Events  Processed 7\n" in text
    assert "Total Format  Errors    2\n" in text
    assert "Total Formats Unknown   2\n" in text
    assert f"|         1    Unknown              10          {NOBODY}|" in text


def test_a_format_error_is_worded_the_same_in_text_csv_and_json_lines(tmp_path, tmf_dirs):
    """Whichever output form prints it, a format error is the text form's line (tracefmt's),
    and JSON's ``error`` is the reason that line gives, for each way the arguments fail:
    a short block of fixed-size arguments, a fixed-size one cut short after a string, a
    string without its NUL, an item type no one knows."""
    path = _trace(tmp_path, [
        (EMITTER, 10, b"\x01\x02", etlgen.FLAGS_CORPUS),       # 2 bytes for two ItemLong
        (STRS, 10, b"abc\0\x01\x02", etlgen.FLAGS_CORPUS),     # ItemLong cut after the string
        (STRS, 10, b"abc", etlgen.FLAGS_CORPUS),                 # string without its NUL
        (NOPREFIX, 11, b"xyz\0", etlgen.FLAGS_WPP),              # ItemUnheardOf
    ])
    lines = {}
    for form in ("text", "csv", "jsonl"):
        code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs, utc=True, output_format=form)
        assert code == 0, err
        lines[form] = out.splitlines()[2 if form == "csv" else 1:]
    csv_lines = [next(csv.reader([row]))[-1] for row in lines["csv"]]
    objects = [json.loads(row) for row in lines["jsonl"]]
    assert len(lines["text"]) == len(csv_lines) == len(objects) == 4
    for text, csv_line, obj in zip(lines["text"], csv_lines, objects):
        assert "*****FormatMessage (#Typev) failed: " in text
        assert csv_line == text
        assert obj["status"] == "format-error" and text.endswith(obj["text"])
        reason = obj["text"].split("failed: ", 1)[1].rsplit(' (Format = "', 1)[0]
        assert obj["error"] == reason
    assert "argument data is 2 bytes" in lines["text"][0]


def test_unknown_lines_have_no_prefix(tmp_path, tmf_dirs):
    path = _trace(tmp_path, [(NOBODY, 76, b"", etlgen.FLAGS_CORPUS)])
    code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs, utc=True)
    assert out.splitlines()[1] == f"Unknown( 76): GUID={NOBODY} (No Format Information found)."


def test_pointer_size_from_message_flags(tmp_path, tmf_dirs):
    ptr8 = struct.pack("<QQ", 0x7FF012345678, 0)
    ptr4 = struct.pack("<II", 0x12345678, 0)
    path = _trace(tmp_path, [
        (TYPES, 12, ptr8, 0x2A | 0x80),  # POINTER64
        (TYPES, 12, ptr4, 0x2A | 0x40),  # POINTER32: 4-byte pointers in a 64-bit trace
        (TYPES, 12, ptr8, 0x2A),         # no flag: the log file's PointerSize (8)
    ])
    code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs, noprefix=True)
    assert out.splitlines()[1:] == [
        "ptr p=00007FF012345678 null=0000000000000000",
        "ptr p=12345678 null=00000000",
        "ptr p=00007FF012345678 null=0000000000000000",
    ]


def test_format_without_percent_zero_gets_no_prefix_and_bad_item_is_a_format_error(tmp_path, tmf_dirs):
    path = _trace(tmp_path, [
        (NOPREFIX, 10, struct.pack("<i", -5), etlgen.FLAGS_WPP),
        (NOPREFIX, 11, b"xyz\0", etlgen.FLAGS_WPP),
    ])
    code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs, utc=True)
    lines = out.splitlines()
    assert lines[1] == "raw -5, no prefix"
    assert lines[2].startswith("[0]0200.0101::08/18/2025-14:13:20.002 [nopfx]*****FormatMessage")
    assert "ItemUnheardOf" in lines[2]


def test_custom_prefix_sequence_and_markers(tmp_path, tmf_dirs):
    path = _trace(tmp_path, [(EMITTER, 10, struct.pack("<ii", 1, 2), etlgen.FLAGS_WPP)])
    code, out, err = run_fmt_capture(
        path, tmf_dirs=tmf_dirs, utc=True,
        prefix="%7!04d! %2!s! %!FUNC! %!LEVEL! %!COMPNAME! %!FILE!:%!LINE! %4!s!| ")
    assert out.splitlines()[1] == (
        "0001 WppEmitter_cpp36 main TRACE_GENERAL findneedle WppEmitter.cpp:36 "
        "08/18/2025-14:13:20.001| WppEmitter work item id=1 status=0x2 phase=startup provider=WppEmitter")


def test_environment_prefix_and_cli_override(tmp_path, tmf_dirs, monkeypatch):
    path = _trace(tmp_path, [(EMITTER, 10, struct.pack("<ii", 1, 2), etlgen.FLAGS_WPP)])
    monkeypatch.setenv("TRACE_FORMAT_PREFIX", "%9!d!/%8!x!/%3!x!: ")
    code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs)
    assert out.splitlines()[1].startswith("0/200/100: WppEmitter work item id=1")
    code, out, err = run_fmt_capture(path, tmf_dirs=tmf_dirs, prefix="<%1!s!>")
    assert out.splitlines()[1].startswith("<findneedle>WppEmitter work item id=1")


def test_multiple_files_are_merged_by_time(tmp_path, tmf_dirs):
    a, b = tmp_path / "a.etl", tmp_path / "b.etl"
    msg = lambda i: (EMITTER, 10, struct.pack("<ii", i, i), 0x10, 0x20, 0, etlgen.T0 + i * 10_000)
    etlgen.write_messages(a, [msg(i) for i in (0, 2, 4)], buffer_size=8192)
    etlgen.write_messages(b, [msg(i) for i in (1, 3)], buffer_size=8192)
    code, out, err = run_fmt_capture(a, b, tmf_dirs=tmf_dirs, noprefix=True)
    ids = [line.split("id=")[1].split()[0] for line in out.splitlines() if "id=" in line]
    assert ids == ["0", "1", "2", "3", "4"]


def test_formats_from_a_private_pdb_and_from_its_image(tmp_path, data_dir):
    """-pdb PDB and -i IMAGE (PDB found by the image's CodeView GUID/age) feed the same formats.
    Fixture: tests/data/pdb/wpp_x64.{dll,pdb} (see its PROVENANCE.md)."""
    driver = uuid.UUID("6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80")
    path = _trace(tmp_path, [
        (driver, 11, struct.pack("<i", 4) + b"q0\0", etlgen.FLAGS_WPP),
        (driver, 12, struct.pack("<I", 0xC0000022), etlgen.FLAGS_WPP),
    ])
    expected = [" [Fixture_Process] processing 4 items for q0",
                " [fixture_helper] caf\u00e9 failed with 0xc0000022(STATUS_ACCESS_DENIED)"]
    pdb_dir = data_dir / "pdb"
    for source in ({"pdbs": [str(pdb_dir / "wpp_x64.pdb")]},
                   {"pdbs": [str(pdb_dir / "wpp_x64.dll")], "symbol_paths": [str(pdb_dir)]}):
        code, out, err = run_fmt_capture(path, noprefix=True, **source)
        assert code == 0, err
        assert out.splitlines()[1:] == expected
    code, out, err = run_fmt_capture(path, noprefix=True, pdbs=[str(tmp_path / "none.sys")])
    assert code == 1 and "none.sys" in err


RICH_TMF = """\
bbbbbbbb-1111-2222-3333-444444444444 rich // SRC=rich.c MJ= MN=
#typev rich_c7 10 "%0at %10!s! after %11!s! from %12!s!:%13!s! sid=%14!s! dump=%15!s!" //   LEVEL=L FUNC=f
{
when, ItemTimestamp -- 10
delta, ItemTimeDelta -- 11
addr, ItemIPAddr -- 12
port, ItemPort -- 13
sid, ItemSid -- 14
buf, ItemHEXDump -- 15
}
"""
RICH = uuid.UUID("bbbbbbbb-1111-2222-3333-444444444444")


def test_rich_item_types_through_the_whole_pipeline_local_and_utc(tmp_path, monkeypatch):
    """Timestamps in arguments follow -utc like the prefix does; other string-form items pass through."""
    import time

    (tmp_path / f"{RICH}.tmf").write_text(RICH_TMF)
    when = etlgen.START_TIME + 36_917_0000  # 2025-08-18 14:13:56.917 UTC
    args = (struct.pack("<q", when) + struct.pack("<q", 2_500_000) + bytes([10, 0, 0, 1]) + b"\x01\xbb"
            + bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18) + b"\x03\x00\x01\xab\xff")
    path = _trace(tmp_path, [(RICH, 10, args, etlgen.FLAGS_CORPUS)])
    monkeypatch.setenv("TZ", "UTC-02")  # POSIX sign: two hours east of UTC
    time.tzset()
    try:
        code, out_utc, err = run_fmt_capture(path, tmf_dirs=[str(tmp_path)], utc=True)
        code, out_local, err = run_fmt_capture(path, tmf_dirs=[str(tmp_path)])
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    tail = " after 250ms from 10.0.0.1:443 sid=S-1-5-18 dump=01 AB FF"
    assert out_utc.splitlines()[1] == (
        "[0]0200.0100::08/18/2025-14:13:20.001 [rich]at 08/18/2025-14:13:56.917" + tail)
    assert out_local.splitlines()[1] == (
        "[0]0200.0100::08/18/2025-16:13:20.001 [rich]at 08/18/2025-16:13:56.917" + tail)
