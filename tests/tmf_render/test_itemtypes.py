"""Every item type: hand-built argument bytes -> decoded value -> tracefmt text, at pointer size
4 and 8, and a too-short buffer -> a precise ItemDecodeError / FormatError."""
from __future__ import annotations

import datetime
import struct
import uuid

import pytest

from wpptrace.tmf import wppini
from wpptrace.tmf.formatspec import parse_spec
from wpptrace.tmf.itemtypes import (ITEM_TYPES, ItemDecodeError, RenderContext, format_filetime,
                                    format_time_delta, item_type)
from wpptrace.tmf.model import Argument, EnumDef, Message
from wpptrace.tmf.render import FormatError, compile_message

G = uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00")
SID_SYSTEM = bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18)
SID_USER = bytes([1, 5, 0, 0, 0, 0, 0, 5]) + struct.pack("<5I", 21, 1004336348, 1177238915, 682003330, 512)
# 2020-04-24 09:43:36.917 UTC as FILETIME
FT = (int(datetime.datetime(2020, 4, 24, 9, 43, 36, 917000, tzinfo=datetime.timezone.utc).timestamp())
      * 10_000_000 + 11644473600 * 10_000_000)
FT = FT - FT % 10_000_000 + 9_170_000


class _Enums:
    def __init__(self, *defs):
        self._defs = {d.name: d for d in defs}

    def enum(self, name):
        return self._defs.get(name)


ENUMS = _Enums(EnumDef("_MachineState", {0: "Offline", 1: "Online", -1 & 0xFFFFFFFFFFFFFFFF: "Invalid"}),
               EnumDef("_Caps", {1: "Read", 2: "Write", 4: "Exec", 7: "All"}))

# (item, params, spec, argument bytes, text at pointer size 8, text at 4 or None = same)
CASES = [
    ("ItemChar", (), "c", b"A", "A", None),
    ("ItemChar", (), "d", b"\xff", "255", None),
    ("ItemChar", (), "hhd", b"\xff", "-1", None),
    ("ItemChar", (), "02x", b"\x0a", "0a", None),
    ("ItemUChar", (), "c", b"z", "z", None),
    ("ItemCharShort", (), "d", b"\x05", "5", None),
    ("ItemShort", (), "hd", b"\xff\xff", "-1", None),
    ("ItemShort", (), "u", b"\xff\xff", "65535", None),
    ("ItemShort", (), "04hX", b"\xef\xbe", "BEEF", None),
    ("ItemShort", (), "C", b"\xe9\x00", "\u00e9", None),
    ("ItemShort", (), "lc", b"\x00\xd8", "\ufffd", None),  # a lone surrogate: U+FFFD, never unwritable text
    ("ItemShort", (), "3wc", b"\xff\xdf", "  \ufffd", None),
    ("ItemUShort", (), "u", struct.pack("<H", 4660), "4660", None),
    ("ItemLong", (), "d", struct.pack("<I", 0xFFFFFFFF), "-1", None),
    ("ItemLong", (), "u", struct.pack("<I", 0xFFFFFFFF), "4294967295", None),
    ("ItemLong", (), "08X", struct.pack("<I", 0xBEEF), "0000BEEF", None),
    ("ItemLong", (), "o", struct.pack("<I", 8), "10", None),
    ("ItemULong", (), "lu", struct.pack("<I", 7), "7", None),
    ("ItemULongX", (), "x", struct.pack("<I", 255), "ff", None),
    ("ItemLongLong", (), "I64d", struct.pack("<q", -5000000000), "-5000000000", None),
    ("ItemULongLong", (), "I64u", struct.pack("<Q", 2**64 - 1), "18446744073709551615", None),
    ("ItemLongLongX", (), "I64x", struct.pack("<Q", 0xDEADBEEFCAFE), "deadbeefcafe", None),
    ("ItemLongLongXX", (), "012I64X", struct.pack("<Q", 0xBEEF), "00000000BEEF", None),
    ("ItemLongLongO", (), "I64o", struct.pack("<Q", 8), "10", None),
    ("ItemDouble", (), "s", struct.pack("<d", 1.5), "1.5", None),
    ("ItemDouble", (), "s", struct.pack("<d", 1e-7), "1e-07", None),
    ("ItemNTSTATUS", (), "s", struct.pack("<I", 0), "STATUS_SUCCESS", None),
    ("ItemNTSTATUS", (), "s", struct.pack("<I", 0xC000000D), "0xc000000d(STATUS_INVALID_PARAMETER)", None),
    ("ItemNTSTATUS", (), "s", struct.pack("<I", 0xC0DEC0DE), "NTSTATUS=C0DEC0DE", None),
    ("ItemWINERROR", (), "s", struct.pack("<I", 5), "5(ERROR_ACCESS_DENIED)", None),
    ("ItemWINERROR", (), "s", struct.pack("<I", 0x7FFF1234), "WINERROR=7FFF1234", None),
    ("ItemHRESULT", (), "s", struct.pack("<I", 0), "S_OK", None),
    ("ItemHRESULT", (), "s", struct.pack("<I", 0x80004005), "0x80004005(E_FAIL)", None),
    ("ItemHRESULT", (), "s", struct.pack("<I", 0x80070005), "0x80070005(ERROR_ACCESS_DENIED)", None),
    ("ItemHRESULT", (), "s", struct.pack("<I", 0xD0000022), "0xd0000022(STATUS_ACCESS_DENIED)", None),
    ("ItemNDIS_STATUS", (), "s", struct.pack("<I", 0), "NDIS_STATUS_SUCCESS", None),
    ("ItemNDIS_STATUS", (), "s", struct.pack("<I", 0xC0000001), "0xc0000001(NDIS_STATUS_FAILURE)", None),
    ("ItemNDIS_OID", (), "s", struct.pack("<I", 0x00010101), "0x00010101(OID_GEN_SUPPORTED_LIST)", None),
    ("ItemGuid", (), "s", G.bytes_le, "11223344-5566-7788-99aa-bbccddeeff00", None),
    ("ItemCLSID", (), "s", G.bytes_le, "11223344-5566-7788-99aa-bbccddeeff00", None),
    ("ItemLIBID", (), "s", G.bytes_le, "11223344-5566-7788-99aa-bbccddeeff00", None),
    ("ItemIID", (), "s", G.bytes_le, "11223344-5566-7788-99aa-bbccddeeff00", None),
    ("ItemIPAddr", (), "s", bytes([10, 0, 0, 1]), "10.0.0.1", None),
    ("ItemIPV6Addr", (), "s", bytes(15) + b"\x01", "::1", None),
    ("ItemPort", (), "s", b"\x01\xbb", "443", None),
    ("ItemChar4", (), "s", b"ABCD", "ABCD", None),
    ("ItemTimestamp", (), "s", struct.pack("<q", FT), "04/24/2020-09:43:36.917", None),
    ("ItemWaitTime", (), "s", struct.pack("<q", FT), "04/24/2020-09:43:36.917", None),
    ("ItemWaitTime", (), "s", struct.pack("<q", -15_000_000), "+1.500s", None),
    ("ItemTimeDelta", (), "s", struct.pack("<q", 2_500_000), "250ms", None),
    ("ItemListByte", ("Low", "APC", "DPC"), "s", b"\x02", "0x00000002(DPC)", None),
    ("ItemListByte", ("Low", "APC", "DPC"), "s", b"\x03", "0x00000003", None),
    ("ItemListShort", ("A", "B=5", "C"), "s", struct.pack("<H", 6), "0x00000006(C)", None),
    ("ItemListLong", ("false", "true"), "s", struct.pack("<I", 1), "0x00000001(true)", None),
    ("ItemSetByte", ("A", "B", "C"), "s", b"\x05", "[A,C]", None),
    ("ItemSetShort", ("A",), "s", struct.pack("<H", 0x8001), "[A,15]", None),
    ("ItemSetLong", tuple(str(i) for i in range(1, 33)), "s", struct.pack("<I", 5), "[1,3]", None),
    ("ItemSetLong", ("A",), "s", struct.pack("<I", 0), "[]", None),
    ("ItemEnum", ("_MachineState",), "s", struct.pack("<I", 0), "Offline", None),
    ("ItemEnum", ("_MachineState",), "s", struct.pack("<I", 0xFFFFFFFF), "Invalid", None),
    ("ItemEnum", ("_MachineState",), "s", struct.pack("<I", 9), "9", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 5), "Read | Exec(0x5)", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 2), "Write(0x2)", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 0), "(0x0)", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 0x11), "Read | 4(0x11)", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 0x80000000), "31(0x80000000)", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 7), "All(0x7)", None),
    ("ItemFlagsEnum", ("_Caps",), "s", struct.pack("<I", 0xF), "Read | Write | Exec | 3(0xf)", None),
    ("ItemFlagsEnum", ("_Caps",), "08x", struct.pack("<I", 5), "00000005", None),
    ("ItemFlagsEnum", ("_Missing",), "s", struct.pack("<I", 5), "0x5", None),
    ("ItemString", (), "s", b"hello\0", "hello", None),
    ("ItemString", (), "-8s", b"hi\0", "hi      ", None),
    ("ItemString", (), ".2s", b"hello\0", "he", None),
    ("ItemString", (), "s", "caf\u00e9".encode("cp1252") + b"\0", "caf\u00e9", None),
    ("ItemRString", (), "s", b"a,b\tc\r\nd, \0", "a b c ,d", None),
    ("ItemWString", (), "s", "r\u00f6\u00f6t\0".encode("utf-16-le"), "r\u00f6\u00f6t", None),
    ("ItemRWString", (), "s", "x,y\n\0".encode("utf-16-le"), "x y", None),
    ("ItemPString", (), "s", b"\x03\x00abc", "abc", None),
    ("ItemPWString", (), "s", b"\x04\x00" + "ok".encode("utf-16-le"), "ok", None),
    ("ItemSid", (), "s", SID_SYSTEM, "S-1-5-18", None),
    ("ItemSid", (), "s", SID_USER, "S-1-5-21-1004336348-1177238915-682003330-512", None),
    ("ItemSid", (), "s", b"NULL\0", "NULL", None),
    ("ItemHEXDump", (), "s", b"\x03\x00\x01\xab\xff", "01 AB FF", None),
    ("ItemHexDump", (), "s", b"\x03\x00\x01\xab\xff", "01 AB FF", None),
    ("ItemHexDump", (), "s", b"\x00\x00", "", None),
]
PTR_CASES = [
    # (spec, bytes, text) per pointer size
    ("p", 8, struct.pack("<Q", 0x7FF012345678), "00007FF012345678"),
    ("p", 4, struct.pack("<I", 0x12345678), "12345678"),
    ("Iu", 8, struct.pack("<Q", 2**64 - 1), "18446744073709551615"),
    ("Id", 8, struct.pack("<Q", 2**64 - 1), "-1"),
    ("Id", 4, struct.pack("<I", 0xFFFFFFFE), "-2"),
    ("Ix", 4, struct.pack("<I", 0xABC), "abc"),
    ("IX", 8, struct.pack("<Q", 0xABC), "ABC"),
]


def _ctx(ps, params=()):
    return RenderContext(pointer_size=ps, params=params, tmfset=ENUMS, utc=True)


def _message(item, params, spec):
    return Message(guid=G, number=10, name="T_c1", format=f"%0v=%10!{spec}!",
                   args=(Argument("x", item, tuple(params), 10),), trailer={"FUNC": "f"},
                   component="t", source_file="t.c")


@pytest.mark.parametrize("item,params,spec,data,text,text4", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("ps", [4, 8])
def test_item_decode_and_render(item, params, spec, data, text, text4, ps):
    it = item_type(item)
    value, end = it.decode(data, 0, ps)
    assert end == len(data)
    assert it.render(value, parse_spec(spec), _ctx(ps, params)) == (text if ps == 8 or text4 is None else text4)
    # the same through a compiled message
    formatter = compile_message(_message(item, params, spec), ENUMS, utc=True)
    assert formatter.format(data, ps) == "v=" + text


@pytest.mark.parametrize("item,params,spec,data,text,text4", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
@pytest.mark.parametrize("ps", [4, 8])
def test_item_too_short(item, params, spec, data, text, text4, ps):
    it = item_type(item)
    short = data[:-1]
    with pytest.raises(ItemDecodeError) as err:
        it.decode(short, 0, ps)
    assert err.value.item.lower() == item.lower() and err.value.offset == 0
    assert err.value.item in str(err.value)
    with pytest.raises(FormatError, match=item):
        compile_message(_message(item, params, spec), ENUMS).format(short, ps)


@pytest.mark.parametrize("spec,ps,data,text", PTR_CASES)
def test_pointer_sizes(spec, ps, data, text):
    it = ITEM_TYPES["ItemPtr"]
    assert it.fixed_size(ps) == ps
    value, end = it.decode(data, 0, ps)
    assert end == ps
    assert it.render(value, parse_spec(spec), _ctx(ps)) == text
    assert compile_message(_message("ItemPtr", (), spec), None).format(data, ps) == "v=" + text
    with pytest.raises(ItemDecodeError, match=r"needed %d bytes, %d available" % (ps, ps - 1)):
        it.decode(data[:ps - 1], 0, ps)


def test_every_defaultwpp_item_type_is_known_and_tested():
    ini_items = {t.item for t in wppini.default_types().values() if t.item}
    assert len(ini_items) >= 40
    assert ini_items <= set(ITEM_TYPES), ini_items - set(ITEM_TYPES)
    tested = {c[0] for c in CASES} | {"ItemPtr"}  # ItemPtr: PTR_CASES
    assert set(ITEM_TYPES) <= tested, set(ITEM_TYPES) - tested


def test_decode_at_offset_and_memoryview():
    buf = memoryview(b"\x01\x02\x03" + b"hi\0" + struct.pack("<I", 7))
    value, end = item_type("ItemString").decode(buf, 3, 8)
    assert (value, end) == ("hi", 6)
    assert item_type("ItemLong").decode(buf, 6, 8) == (7, 10)
    with pytest.raises(ItemDecodeError, match="at argument offset 7"):
        item_type("ItemLong").decode(buf, 7, 8)


def test_counted_string_length_past_end_is_precise():
    with pytest.raises(ItemDecodeError) as err:
        item_type("ItemPString").decode(b"\xff\xffab", 0, 8)
    assert err.value.needed == 2 + 0xFFFF and err.value.available == 4
    assert "USHORT length 65535" in str(err.value)


def test_sid_with_too_many_subauthorities():
    with pytest.raises(ItemDecodeError, match="at most 15"):
        item_type("ItemSid").decode(bytes([1, 200]) + bytes(6), 0, 8)


def test_utf16_terminator_must_be_aligned():
    # "\u0100" is 00 01; followed by "\u0001" (01 00): the bytes 00 00 at odd offset 1..2 are
    # not a terminator.
    data = "\u0100\u0001\0".encode("utf-16-le")
    assert item_type("ItemWString").decode(data, 0, 8) == ("\u0100\u0001", len(data))


def test_time_delta_forms():
    ms = 10_000
    assert format_time_delta(999 * ms) == "999ms"
    assert format_time_delta(-1500 * ms) == "-1.500s"
    assert format_time_delta(600_000 * ms) == "600.000s"
    assert format_time_delta(601_000 * ms) == "10:01.000s"
    assert format_time_delta(3_661_001 * ms) == "1:01:01.001s"
    assert format_time_delta((86_400_000 + 3_661_001) * ms) == "1~01:01:01.001s"


def test_filetime_local_and_out_of_range():
    assert format_filetime(FT, utc=True) == "04/24/2020-09:43:36.917"
    assert format_filetime(2**63 - 1, utc=True) == "0x7FFFFFFFFFFFFFFF"
    assert format_filetime(FT, utc=False).startswith(("04/24/2020-", "04/23/2020-", "04/25/2020-"))


def test_numeric_spec_on_a_status_prints_the_number():
    it = item_type("ItemNTSTATUS")
    assert it.render(0xC0000022, parse_spec("08x"), _ctx(8)) == "c0000022"
    assert it.render(0xC0000022, parse_spec("-40s"), _ctx(8)) == "0xc0000022(STATUS_ACCESS_DENIED)".ljust(40)


def test_unknown_item_type_is_a_format_error_not_a_crash():
    message = _message("ItemFancyThing", (), "s")
    formatter = compile_message(message, None)
    with pytest.raises(FormatError, match="unknown item type ItemFancyThing"):
        formatter.format(b"\0" * 16, 8)


def test_the_item_table_is_made_without_compiling_the_field_class_init():
    """Importing the item types makes none of ItemType's ``__init__`` (compiling it cost
    0.8 M instructions in each process that compiles a message); the table's types are what
    ``ItemType(...)`` makes of their fields."""
    import subprocess
    import sys

    probe = ("import wpptrace.tmf.itemtypes as m; "
             "print(type(vars(m.ItemType)['__init__']).__name__)")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "_LazyInit"
    from wpptrace.tmf.itemtypes import ItemType

    for name in ITEM_TYPES:
        made = ITEM_TYPES[name]
        again = ItemType(**{f.name: getattr(made, f.name) for f in ItemType._fc_fields})
        assert vars(again) == vars(made)
        assert again == made and hash(again) == hash(made)
