"""The findneedle corpus TMFs render the text tracefmt printed (corpus README, wpp/ table) from
argument bytes built by hand in the layout each TMF argument block describes.

The hand-built bytes were checked once against the real records of the four findneedle .etl
captures (read with wpptrace.decoder): every CASES entry equals the payload of a real record
byte for byte; the end-to-end decode of those files is tested in tests/fmt."""
from __future__ import annotations

import struct
import uuid

import pytest

from wpptrace.tmf import load
from wpptrace.tmf.render import FormatError, compile_message, marker_defaults

TYPES = uuid.UUID("4857fab7-1162-3184-360b-cdd863ddf4ea")
STR = uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d")
EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")
ENUM = uuid.UUID("d4153fff-ac08-361f-5ed7-af1d38cd1903")
G = uuid.UUID("11223344-5566-7788-99aa-bbccddeeff00")


@pytest.fixture(scope="module")
def tmfset(corpus):
    return load(corpus / "wpp" / "guscatalano__findneedle" / "tmf")


CASES = [
    (TYPES, 10, struct.pack("<iiq", 42, -1000, -5000000000), "sint i=42 neg=-1000 i64=-5000000000"),
    (TYPES, 11, struct.pack("<IIQ", 4000000000, 0xABCDEF, 0xDEADBEEFCAFE),
     "uint u=4000000000 hex=0xabcdef x64=0xdeadbeefcafe"),
    (TYPES, 12, struct.pack("<QQ", 0x7FF012345678, 0), "ptr p=00007FF012345678 null=0000000000000000"),
    (TYPES, 13, struct.pack("<iI", 42, 0xBEEF), "widths z=00042 h=0000beef"),
    (TYPES, 14, struct.pack("<II", 0x80070005, 0xC0000022) + G.bytes_le,
     "hr=0x80070005(ERROR_ACCESS_DENIED) st=0xc0000022(STATUS_ACCESS_DENIED) "
     "guid=11223344-5566-7788-99aa-bbccddeeff00"),
    (STR, 10, b"alpha\0" + struct.pack("<i", 0), "strtrace name=alpha id=0 tag=END"),
    (STR, 10, b"bravo\0" + struct.pack("<i", 1), "strtrace name=bravo id=1 tag=END"),
    (STR, 10, b"charlie\0" + struct.pack("<i", 2), "strtrace name=charlie id=2 tag=END"),
    (STR, 11, "root\0".encode("utf-16-le"), "widetrace user=root role=admin"),
    (EMITTER, 10, struct.pack("<ii", 0, 0),
     "WppEmitter work item id=0 status=0x0 phase=startup provider=WppEmitter"),
    (EMITTER, 10, struct.pack("<ii", 29, 29),
     "WppEmitter work item id=29 status=0x1d phase=startup provider=WppEmitter"),
    (EMITTER, 11, struct.pack("<ii", 2, 2),
     "WppEmitter detail seq=2 note=processing-record value=2 category=Detail"),
    (ENUM, 10, struct.pack("<IB", 1, 2), "b=0x00000001(true) irql=0x00000002(DPC)"),
    (ENUM, 11, struct.pack("<I", 5), "set=[1,3]"),
]


@pytest.mark.parametrize("guid,number,args,expected", CASES,
                         ids=[f"{g.hex[:8]}-{n}-{i}" for i, (g, n, _, _) in enumerate(CASES)])
def test_corpus_expected_text(tmfset, guid, number, args, expected):
    message = tmfset.lookup(guid, number)
    assert message is not None
    formatter = compile_message(message, tmfset)
    assert formatter.has_prefix  # every findneedle format starts with %0
    assert formatter.format(args, 8) == expected
    # the decoder passes the entry's markers; the text must not change
    assert formatter.format(args, 8, marker_defaults(message)) == expected
    # bytes and memoryview both work
    assert formatter.format(memoryview(args), 8) == expected


@pytest.mark.parametrize("guid,number,args,expected", CASES[:9] + CASES[12:],
                         ids=[f"short-{i}" for i in range(len(CASES[:9] + CASES[12:]))])
def test_truncated_arguments_are_a_format_error(tmfset, guid, number, args, expected):
    formatter = compile_message(tmfset.lookup(guid, number), tmfset)
    with pytest.raises(FormatError) as err:
        formatter.format(args[:-1], 8)
    text = str(err.value)
    assert str(guid) in text and f"#{number}" in text
    # says where: the argument or item that did not fit
    assert "argument" in text or "bytes" in text


def test_compiled_once_and_cached(tmfset):
    message = tmfset.lookup(TYPES, 10)
    assert compile_message(message, tmfset) is compile_message(message, tmfset)


def test_pointer_size_4(tmfset):
    formatter = compile_message(tmfset.lookup(TYPES, 12), tmfset)
    assert formatter.format(struct.pack("<II", 0x12345678, 0), 4) == "ptr p=12345678 null=00000000"
    with pytest.raises(FormatError):
        formatter.format(struct.pack("<I", 1), 4)


def test_decode_args_typed(tmfset):
    formatter = compile_message(tmfset.lookup(TYPES, 14), tmfset)
    args = formatter.decode_args(struct.pack("<II", 0x80070005, 0xC0000022) + G.bytes_le, 8)
    assert args == [("(HRESULT)E_ACCESSDENIED", "ItemHRESULT", 0x80070005),
                    ("(NTSTATUS)0xC0000022L", "ItemNTSTATUS", 0xC0000022),
                    ("&g", "ItemGuid", G)]
    formatter = compile_message(tmfset.lookup(TYPES, 10), tmfset)
    values = [v for _, _, v in formatter.decode_args(struct.pack("<iiq", 42, -1000, -5000000000), 8)]
    assert values == [42, -1000, -5000000000]
    formatter = compile_message(tmfset.lookup(STR, 10), tmfset)
    assert formatter.decode_args(b"alpha\0" + struct.pack("<i", 7), 8) == [
        ("names[i]", "ItemString", "alpha"), ("i", "ItemLong", 7)]
    with pytest.raises(FormatError, match="NUL"):
        formatter.decode_args(b"alpha", 8)
