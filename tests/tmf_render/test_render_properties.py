"""Properties of compiled formatters: the fast compiled text equals the item-by-item rendering for
random argument lists, specs and values; random (untrusted) argument bytes give text or a
FormatError, never another exception; markers and odd formats behave."""
from __future__ import annotations

import struct
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace.tmf.formatspec import Spec, parse_spec
from wpptrace.tmf.itemtypes import ITEM_TYPES, RenderContext
from wpptrace.tmf.model import Argument, Message
from wpptrace.tmf.render import FormatError, compile_message, marker_defaults

G = uuid.UUID("0badf00d-0000-4000-8000-000000000001")
RAW_ITEMS = ["ItemChar", "ItemShort", "ItemLong", "ItemLongLong", "ItemULongLong", "ItemLongLongXX", "ItemPtr"]
FORM_ITEMS = ["ItemNTSTATUS", "ItemHRESULT", "ItemWINERROR", "ItemGuid", "ItemListByte", "ItemSetLong",
              "ItemIPAddr", "ItemPort", "ItemTimeDelta", "ItemDouble"]
VAR_ITEMS = ["ItemString", "ItemWString", "ItemPString", "ItemPWString", "ItemSid", "ItemHEXDump", "ItemRString"]
INT_SPEC = st.builds(
    Spec, flags=st.text(alphabet="-+ #0", max_size=2), width=st.none() | st.integers(1, 20),
    precision=st.none() | st.integers(0, 12),
    length=st.sampled_from(["", "h", "hh", "l", "ll", "I64", "I"]), conversion=st.sampled_from(list("diuxXo")))


def _message(items, specs, fmt_prefix="%0"):
    args = tuple(Argument(f"a{i}", item, ("Low", "APC", "DPC") if item == "ItemListByte" else (), 10 + i)
                 for i, item in enumerate(items))
    fmt = fmt_prefix + " ".join(f"<%{10 + i}!{s.text}!>" for i, s in enumerate(specs))
    return Message(guid=G, number=10, name="P_c7", format=fmt, args=args, trailer={"FUNC": "f"})


@st.composite
def argument_lists(draw):
    n = draw(st.integers(1, 8))
    items, specs, blobs = [], [], []
    ps = draw(st.sampled_from([4, 8]))
    for _ in range(n):
        item = draw(st.sampled_from(RAW_ITEMS + FORM_ITEMS + VAR_ITEMS))
        it = ITEM_TYPES[item]
        if it.raw:
            spec = draw(INT_SPEC | st.just(Spec(conversion="p")))
        elif item == "ItemDouble":
            spec = draw(st.sampled_from([Spec(), parse_spec("e"), parse_spec(".2f"), parse_spec("10g")]))
        else:
            spec = draw(st.sampled_from([Spec(), parse_spec("-12s"), parse_spec("20.3s")]))
        size = it.fixed_size(ps)
        if size is not None:
            blob = draw(st.binary(min_size=size, max_size=size))
            if item == "ItemDouble":
                blob = struct.pack("<d", draw(st.floats(allow_nan=False, allow_infinity=False)))
        elif it.wire == "cstr":
            blob = draw(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0x7F), max_size=10)).encode() + b"\0"
        elif it.wire == "wstr":
            blob = draw(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=0xD7FF), max_size=10)).encode("utf-16-le") + b"\0\0"
        elif it.wire == "sid":
            subs = draw(st.lists(st.integers(0, 2**32 - 1), max_size=6))
            blob = bytes([1, len(subs)]) + (5).to_bytes(6, "big") + struct.pack(f"<{len(subs)}I", *subs)
        else:
            data = draw(st.binary(max_size=12))
            blob = struct.pack("<H", len(data)) + data
        items.append(item)
        specs.append(spec)
        blobs.append(blob)
    return items, specs, blobs, ps


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(argument_lists())
def test_compiled_text_equals_item_by_item_rendering(case):
    items, specs, blobs, ps = case
    message = _message(items, specs)
    expected = []
    for item, spec, blob in zip(items, specs, blobs):
        it = ITEM_TYPES[item]
        value, end = it.decode(blob, 0, ps)
        assert end == len(blob)
        params = ("Low", "APC", "DPC") if item == "ItemListByte" else ()
        expected.append(f"<{it.render(value, spec, RenderContext(pointer_size=ps, params=params))}>")
    formatter = compile_message(message, None)
    data = b"".join(blobs)
    assert formatter.format(data, ps) == " ".join(expected)
    assert formatter.format(data, ps, marker_defaults(message)) == " ".join(expected)
    assert len(formatter.decode_args(data, ps)) == len(items)
    with pytest.raises(FormatError):  # one byte short: the last item no longer fits
        formatter.format(data[:-1], ps)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(RAW_ITEMS + FORM_ITEMS + VAR_ITEMS), min_size=1, max_size=6),
       st.binary(max_size=80), st.sampled_from([4, 8]))
def test_random_argument_bytes_never_crash(items, data, ps):
    formatter = compile_message(_message(items, [Spec()] * len(items)), None)
    try:
        text = formatter.format(data, ps)
    except FormatError as err:
        assert str(G) in str(err)
    else:
        assert isinstance(text, str)
    try:
        formatter.decode_args(data, ps)
    except FormatError:
        pass


def test_markers_from_trailer_and_from_caller():
    message = Message(guid=G, number=11, name="Device_c104", format="%0 [%!FUNC!] %!LEVEL! %!FLAGS! "
                      "%!COMPNAME! %!FILE!:%!LINE! %!NOSUCH! 100%% %10!d!",
                      args=(Argument("x", "ItemLong", (), 10),),
                      trailer={"LEVEL": "TRACE_LEVEL_ERROR", "FLAGS": "TRACE_DEVICE", "FUNC": "DevAdd"},
                      component="BthPS3", source_file="Device.c")
    f = compile_message(message, None)
    data = struct.pack("<i", -3)
    assert f.format(data, 8) == " [DevAdd] TRACE_LEVEL_ERROR TRACE_DEVICE BthPS3 Device.c:104 !NOSUCH! 100% -3"
    markers = {"FUNC": "100%Func", "PREFIX": "[0]01.02::t [x]"}
    assert f.format(data, 8, markers) == ("[0]01.02::t [x] [100%Func] TRACE_LEVEL_ERROR TRACE_DEVICE BthPS3 "
                                          "Device.c:104 !NOSUCH! 100% -3")
    # a new mapping object gives new text (no stale baked template)
    assert f.format(data, 8, {"FUNC": "other"}).startswith(" [other]")
    assert f.format(data, 8) .startswith(" [DevAdd]")


def test_tracelevel_answers_level_like_legacy_tracefmt():
    message = Message(guid=G, number=12, name="x_c1", format="%!LEVEL!", trailer={"TRACELEVEL": "TRACE_LEVEL_WARNING"})
    assert compile_message(message, None).format(b"", 8) == "TRACE_LEVEL_WARNING"


def test_prefix_variables_inside_a_message_come_from_markers():
    message = Message(guid=G, number=13, name="x_c1", format="tid=%3!04X! %2!s! v=%10!u!",
                      args=(Argument("v", "ItemLong", (), 10),))
    f = compile_message(message, None)
    assert f.format(struct.pack("<I", 7), 8, {3: 0xAB, 2: "x_c1"}) == "tid=00AB x_c1 v=7"


def test_end_mark_stops_output_and_extra_bytes_are_ignored():
    message = Message(guid=G, number=14, name="x_c1", format="a=%10!d!%0 never",
                      args=(Argument("v", "ItemLong", (), 10),))
    assert compile_message(message, None).format(struct.pack("<iI", 5, 9), 8) == "a=5"


@pytest.mark.parametrize("fmt,args,reason", [
    ("%10!d! %11!d!", (Argument("v", "ItemLong", (), 10),), "no argument has insert 11"),
    ("%10!kk!", (Argument("v", "ItemLong", (), 10),), "bad format string"),
    ("%10!*d!", (Argument("v", "ItemLong", (), 10),), "no argument has insert 11"),
    ("%3!*d!", (), "prefix variable"),
])
def test_unusable_formats_are_format_errors(fmt, args, reason):
    f = compile_message(Message(guid=G, number=15, name="x_c1", format=fmt, args=args), None)
    with pytest.raises(FormatError, match=reason):
        f.format(b"\0" * 8, 8)


def test_inserts_bind_by_number_not_position():
    # the payload is in argument-block order; %11 may appear first in the text
    message = Message(guid=G, number=16, name="x_c1", format="%11!s! then %10!d!",
                      args=(Argument("n", "ItemLong", (), 10), Argument("s", "ItemString", (), 11)))
    assert compile_message(message, None).format(struct.pack("<i", 4) + b"four\0", 8) == "four then 4"


def test_same_argument_twice():
    message = Message(guid=G, number=17, name="x_c1", format="%10!d! %10!x! %10!s!",
                      args=(Argument("n", "ItemLong", (), 10),))
    assert compile_message(message, None).format(struct.pack("<i", -1), 8) == "-1 ffffffff 4294967295"


def test_legacy_type_entries_quote_strings():
    message = Message(guid=G, number=18, name="x_c1", format="name=%10!s! n=%11!d!", legacy=True,
                      args=(Argument("s", "ItemString", (), 10), Argument("n", "ItemLong", (), 11)))
    assert compile_message(message, None).format(b"abc\0" + struct.pack("<i", 3), 8) == 'name="abc" n=3'


def test_decode_args_typed_values_for_json():
    message = Message(guid=G, number=19, name="x_c1", format="%10 %11 %12 %13 %14!d!",
                      args=(Argument("ip", "ItemIPAddr", (), 10), Argument("port", "ItemPort", (), 11),
                            Argument("sid", "ItemSid", (), 12), Argument("g", "ItemGuid", (), 13),
                            Argument("n", "ItemShort", (), 14)))
    data = bytes([192, 168, 0, 1]) + b"\x01\xbb" + bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18) \
        + G.bytes_le + struct.pack("<h", -2)
    f = compile_message(message, None)
    values = [v for _, _, v in f.decode_args(memoryview(data), 8)]
    assert [str(values[0]), values[1], values[2], values[3]] == ["192.168.0.1", 443, "S-1-5-18", G]
    assert values[4] == 0xFFFE  # %d reads 32 bits of the zero-extended slot: printed 65534
    assert f.format(data, 8) == f"192.168.0.1 443 S-1-5-18 {G} 65534"


ENUM_TMF = """// PDB:  drv.pdb
0badf00d-0000-4000-8000-000000000002 drv // SRC=state.c MJ= MN=
#typev state_c10 10 "%0Machine State :: %10!s! caps=%11!s!" //   LEVEL=TRACE_LEVEL_INFORMATION FUNC=SetState
{
state, ItemEnum(_MachineState) -- 10
caps, ItemFlagsEnum(_Caps) -- 11
}
0badf00d-0000-4000-8000-000000000002 drv
#enumv _MachineState
{
Offline,0x0
Online,0x1
Invalid,0xFFFFFFFFFFFFFFFF
}
#enumv _Caps
{
Read,0x1
Write,0x2
}
"""


def test_enums_from_enumv_blocks():
    from wpptrace.tmf import parse_text
    tmfset = parse_text(ENUM_TMF, path="state.tmf")
    message = tmfset.lookup(uuid.UUID("0badf00d-0000-4000-8000-000000000002"), 10)
    f = compile_message(message, tmfset)
    assert f.format(struct.pack("<II", 1, 3), 8) == "Machine State :: Online caps=Read | Write(0x3)"
    assert f.format(struct.pack("<II", 0xFFFFFFFF, 0), 8) == "Machine State :: Invalid caps=(0x0)"
    assert f.format(struct.pack("<II", 7, 4), 8) == "Machine State :: 7 caps=2(0x4)"


def test_unusable_format_still_decodes_arguments_and_fails_fast():
    message = Message(guid=G, number=20, name="x_c1", format="%10!d! %12!d!",
                      args=(Argument("n", "ItemLong", (), 10),))
    f = compile_message(message, None)
    for _ in range(2):  # the reason is remembered, not recompiled
        with pytest.raises(FormatError, match="no argument has insert 12"):
            f.format(struct.pack("<i", 1), 8)
    assert f.error is not None
    assert f.decode_args(struct.pack("<i", -1), 8) == [("n", "ItemLong", -1)]
    unknown = compile_message(Message(guid=G, number=21, name="x_c1", format="%10",
                                      args=(Argument("n", "ItemWhat", (), 10),)), None)
    with pytest.raises(FormatError, match="ItemWhat"):
        unknown.decode_args(b"\0\0\0\0", 8)


TMF_PIECES = st.sampled_from(["%10", "%11!d!", "%12!s!", "%10!08X!", "%!FUNC!", "%0", "%%", "%n", "!",
                              "%1!s!", "%13!x!", "%10!*d!", "%11!-5.2s!", "abc", " ", "%", "%10!p!",
                              "%11!I64u!", "%!X!", "%9!d!", "%12!lc!"])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(TMF_PIECES, max_size=12).map("".join) | st.text(max_size=40),
       st.binary(max_size=24), st.sampled_from([4, 8]), st.booleans())
def test_any_format_and_bytes_give_text_or_format_error(fmt, data, ps, with_markers):
    message = Message(guid=G, number=30, name="fz_c1", format=fmt,
                      args=(Argument("a", "ItemLong", (), 10), Argument("b", "ItemShort", (), 11),
                            Argument("c", "ItemString", (), 12)))
    f = compile_message(message, None)
    try:
        text = f.format(data, ps, {"FUNC": "f", 1: "comp", 9: 0} if with_markers else None)
    except FormatError:
        return
    assert isinstance(text, str)


def test_star_width_and_precision_take_the_preceding_inserts():
    # FormatMessage: %10!*.*s! reads width from %10, precision from %11, the string from %12
    args = tuple(Argument(n, it, (), 10 + k) for k, (n, it) in enumerate(
        [("w", "ItemLong"), ("p", "ItemLong"), ("s", "ItemString"), ("t", "ItemString"),
         ("w2", "ItemLong"), ("v", "ItemLong")]))
    message = Message(guid=G, number=31, name="x_c1", format="[%10!*.*s!] %13 [%14!*d!]", args=args)
    f = compile_message(message, None)
    data = struct.pack("<ii", 8, 3) + b"abcdef\0" + b"tail\0" + struct.pack("<ii", -5, 42)
    assert f.format(data, 8) == "[     abc] tail [42   ]"
    huge = struct.pack("<ii", 10**9, -1) + b"abcdef\0" + b"tail\0" + struct.pack("<ii", 3, 42)
    assert len(f.format(huge, 8)) < 8192 + 40  # widths from the data are capped too
