"""The format-spec language: TMF (FormatMessage) and C/tracewpp source syntaxes, the printf spec,
item mapping, source -> TMF conversion; hypothesis: parsing never crashes and round-trips."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wpptrace.tmf.formatspec import (FormatSpecError, Insert, Literal, Marker, Spec, item_for_spec,
                                     parse_printf_format, parse_spec, parse_tmf_format,
                                     pieces_to_tmf, printf_to_tmf, wpp_type_for)


@pytest.mark.parametrize("text,spec", [
    ("d", Spec(conversion="d")),
    ("08lx", Spec(flags="0", width=8, length="l", conversion="x")),
    ("-+ #010.5I64d", Spec(flags="-+ #0", width=10, precision=5, length="I64", conversion="d")),
    ("*.*s", Spec(width="*", precision="*", conversion="s")),
    (".d", Spec(precision=0, conversion="d")),
    ("hhu", Spec(length="hh", conversion="u")),
    ("llX", Spec(length="ll", conversion="X")),
    ("I32o", Spec(length="I32", conversion="o")),
    ("Iu", Spec(length="I", conversion="u")),
    ("wc", Spec(length="w", conversion="c")),
    ("zu", Spec(length="z", conversion="u")),
    ("ls", Spec(length="l", conversion="s")),
    ("S", Spec(conversion="S")),
    ("p", Spec(conversion="p")),
    ("n", Spec(conversion="n")),
    ("12.3e", Spec(width=12, precision=3, conversion="e")),
    ("E", Spec(conversion="E")), ("f", Spec(conversion="f")),
    ("g", Spec(conversion="g")), ("G", Spec(conversion="G")),
    ("C", Spec(conversion="C")), ("i", Spec(conversion="i")),
])
def test_parse_spec(text, spec):
    assert parse_spec(text) == spec
    assert parse_spec(spec.text) == spec


@pytest.mark.parametrize("bad,column", [("k", 1), ("q", 2), ("08", 3), ("l", 2), ("5.3k", 4), ("", 1), ("dd", 2)])
def test_bad_spec_says_where(bad, column):
    with pytest.raises(FormatSpecError) as err:
        parse_spec(bad)
    assert err.value.column == column
    assert "conversion" in err.value.expected


def test_tmf_format_inserts_markers_and_escapes():
    pieces = parse_tmf_format("%0 [%!FUNC!]!! Sym: %10!s! (len: %11!d!) %%%n%t%r%.%!% %12 %q")
    assert pieces == [
        Marker("PREFIX"), Literal(" ["), Marker("FUNC"), Literal("]!! Sym: "),
        Insert(10, Spec(conversion="s")), Literal(" (len: "), Insert(11, Spec(conversion="d")),
        Literal(") %\n\t\r.! "), Insert(12, None), Literal(" q"),
    ]


@pytest.mark.parametrize("name", ["FUNC", "LEVEL", "FLAGS", "COMPNAME", "SUBCOMP", "FILE", "LINE"])
def test_wpp_markers(name):
    assert parse_tmf_format(f"a%!{name}!b") == [Literal("a"), Marker(name), Literal("b")]


def test_percent_zero_ends_the_message_except_at_the_start():
    assert parse_tmf_format("abc%0def %10") == [Literal("abc"), Marker("END")]
    assert parse_tmf_format("%0%10!x!") == [Marker("PREFIX"), Insert(10, Spec(conversion="x"))]


def test_insert_numbers_take_at_most_two_digits():
    assert parse_tmf_format("%123") == [Insert(12, None), Literal("3")]
    assert parse_tmf_format("%1!d!%99!s!") == [Insert(1, Spec(conversion="d")), Insert(99, Spec())]


def test_z_spec_is_s_and_raw_quotes_are_literal():
    assert parse_tmf_format('LHS: "%10!Z!"') == [Literal('LHS: "'), Insert(10, Spec(conversion="s")),
                                                Literal('"')]


def test_default_prefix_template():
    pieces = parse_tmf_format("[%9!d!]%8!04X!.%3!04X!::%4!s! [%1!s!]")
    assert [p.index for p in pieces if isinstance(p, Insert)] == [9, 8, 3, 4, 1]
    assert pieces[3] == Insert(8, Spec(flags="0", width=4, conversion="X"))


@pytest.mark.parametrize("fmt,column,expected", [
    ("abc %10!d", 8, "closing '!'"),
    ("x %10!08!", 9, "conversion"),
    ("%10!kk!", 5, "conversion"),
])
def test_tmf_format_errors_have_columns(fmt, column, expected):
    with pytest.raises(FormatSpecError) as err:
        parse_tmf_format(fmt)
    assert err.value.column == column
    assert expected in err.value.expected
    assert fmt in str(err.value) and "^" in str(err.value)


def test_printf_source_format():
    pieces = parse_printf_format("x=%08lx s=%ls st=%!STATUS! %!FUNC! %I64d %% %-5.3S %*d %!bool!")
    assert pieces == [
        Literal("x="), Insert(0, Spec(flags="0", width=8, length="l", conversion="x")),
        Literal(" s="), Insert(1, Spec(length="l", conversion="s")),
        Literal(" st="), Insert(2, None, "STATUS"), Literal(" "), Marker("FUNC"), Literal(" "),
        Insert(3, Spec(length="I64", conversion="d")), Literal(" % "),
        Insert(4, Spec(flags="-", width=5, precision=3, conversion="S")), Literal(" "),
        Insert(5, Spec(width="*", conversion="d")), Literal(" "), Insert(7, None, "bool"),
    ]


@pytest.mark.parametrize("fmt,column", [("abc %", 5), ("%!", 3), ("%y", 2), ("a %5.2k", 7)])
def test_printf_errors(fmt, column):
    with pytest.raises(FormatSpecError) as err:
        parse_printf_format(fmt)
    assert err.value.column == column


@pytest.mark.parametrize("spec,item", [
    ("d", "ItemLong"), ("i", "ItemLong"), ("u", "ItemLong"), ("x", "ItemLong"), ("X", "ItemLong"),
    ("o", "ItemLong"), ("08lx", "ItemLong"), ("ld", "ItemLong"), ("I32u", "ItemLong"),
    ("hd", "ItemShort"), ("hu", "ItemShort"), ("hx", "ItemShort"), ("C", "ItemShort"), ("lc", "ItemShort"),
    ("c", "ItemChar"), ("hhx", "ItemChar"), ("hhd", "ItemChar"), ("hhu", "ItemChar"),
    ("I64d", "ItemLongLong"), ("lld", "ItemLongLong"), ("I64u", "ItemULongLong"),
    ("I64x", "ItemLongLongX"), ("llX", "ItemLongLongXX"), ("I64o", "ItemLongLongO"),
    ("p", "ItemPtr"), ("Iu", "ItemPtr"), ("Id", "ItemPtr"), ("zu", "ItemPtr"), ("IX", "ItemPtr"),
    ("s", "ItemString"), ("hs", "ItemString"), ("S", "ItemWString"), ("ls", "ItemWString"),
    ("ws", "ItemWString"), ("Z", "ItemPString"), ("z", "ItemPString"), ("wZ", "ItemPWString"),
    ("e", "ItemDouble"), ("f", "ItemDouble"), ("g", "ItemDouble"), ("G", "ItemDouble"), ("E", "ItemDouble"),
    ("STATUS", "ItemNTSTATUS"), ("status", "ItemNTSTATUS"), ("HRESULT", "ItemHRESULT"),
    ("WINERROR", "ItemWINERROR"), ("winerr", "ItemWINERROR"), ("NDIS_STATUS", "ItemNDIS_STATUS"),
    ("NDIS_OID", "ItemNDIS_OID"), ("IPADDR", "ItemIPAddr"), ("PORT", "ItemPort"),
    ("GUID", "ItemGuid"), ("guid", "ItemGuid"), ("CLSID", "ItemCLSID"),
    ("bool", "ItemListLong(false,true)"), ("BOOLEAN", "ItemListByte(FALSE,TRUE)"),
    ("irql", "ItemListByte(Low,APC,DPC)"), ("TIMESTAMP", "ItemTimestamp"), ("TIME", "ItemTimestamp"),
    ("DATE", "ItemTimestamp"), ("WAITTIME", "ItemTimestamp"), ("due", "ItemWaitTime"),
    ("delta", "ItemTimeDelta"), ("sid", "ItemSid"), ("SID", "ItemSid"), ("cccc", "ItemChar4"),
    ("ItemEnum", "ItemEnum"), ("b1", "ItemSetByte(1,2,3,4,5,6,7,8)"),
])
def test_item_for_spec(spec, item):
    assert item_for_spec(spec) == item


def test_item_for_spec_takes_spec_objects_and_rejects_unknowns():
    assert item_for_spec(Spec(conversion="u", length="h")) == "ItemShort"
    with pytest.raises(FormatSpecError):
        item_for_spec("NOSUCHTYPE")
    with pytest.raises(FormatSpecError):
        wpp_type_for(Spec(conversion="n"))
    with pytest.raises(FormatSpecError):
        wpp_type_for("FUNC")  # a constant, not a value type


def test_printf_to_tmf_like_tracewpp():
    fmt, items = printf_to_tmf("x=%08lx st=%!STATUS! [%!FUNC!] %-5.3s %I64X %% %!bool! %hu "
                               "%012llX %5.2f %!COMPNAME! %p", std_prefix=True)
    assert fmt == ("%0x=%10!08x! st=%11!s! [%!FUNC!] %12!-5.3s! %13!I64X! %% %14!s! %15!u! "
                   "%16!012I64X! %17!s! %!COMPNAME! %18!p!")
    assert items == ["ItemLong", "ItemNTSTATUS", "ItemString", "ItemLongLongXX",
                     "ItemListLong(false,true)", "ItemShort", "ItemLongLongXX", "ItemDouble", "ItemPtr"]


def test_printf_to_tmf_constants_and_escapes():
    fmt, items = printf_to_tmf("%!COMPNAME!:%!FILE!:%!LINE! %!MOD! %!TID!%!SPACE!a\nb%d",
                               component="drv", file="x.c", line=42, first_insert=10)
    assert fmt == "drv:x.c:42 %1!s! %3!x! a%nb%10!d!"
    assert items == ["ItemLong"]
    # the TMF text parses back to the same meaning
    assert parse_tmf_format(fmt)[-1] == Insert(10, Spec(conversion="d"))


def test_printf_to_tmf_rejects_star_and_too_many():
    with pytest.raises(FormatSpecError):
        printf_to_tmf("%*d")
    with pytest.raises(FormatSpecError):
        printf_to_tmf("%d" * 91)


# -- hypothesis --

FORMAT_ALPHABET = st.sampled_from(list("%!0123456789dxXsSpIlh.-+ #*abcFUNC\n\t\"LEVEL") + ["%!FUNC!", "%10!"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60) | st.lists(FORMAT_ALPHABET, max_size=30).map("".join))
def test_tmf_parse_never_crashes_and_round_trips(text):
    try:
        pieces = parse_tmf_format(text)
    except FormatSpecError as err:
        assert 1 <= err.column <= len(text) + 1
        return
    again = parse_tmf_format(pieces_to_tmf(pieces))
    norm = lambda ps: [Insert(p.index, p.spec or Spec(), p.ext) if isinstance(p, Insert) else p for p in ps]  # noqa: E731
    assert norm(again) == norm(pieces)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60) | st.lists(FORMAT_ALPHABET, max_size=30).map("".join))
def test_printf_parse_never_crashes(text):
    try:
        pieces = parse_printf_format(text)
    except FormatSpecError as err:
        assert 1 <= err.column <= len(text) + 1
        return
    assert all(isinstance(p, (Literal, Insert, Marker)) for p in pieces)
    try:
        fmt, items = printf_to_tmf(text)
    except FormatSpecError:
        return
    parsed = parse_tmf_format(fmt)
    assert sorted(p.index for p in parsed if isinstance(p, Insert) and p.index >= 10) == \
        list(range(10, 10 + len(items)))


SPECS = st.builds(
    Spec,
    flags=st.text(alphabet="-+ #0", max_size=3),
    width=st.none() | st.integers(1, 40) | st.just("*"),
    precision=st.none() | st.integers(0, 30) | st.just("*"),
    length=st.sampled_from(["", "h", "hh", "l", "ll", "I", "I32", "I64", "w", "z", "L", "j", "t", "q"]),
    conversion=st.sampled_from(list("diuxXocCsSZpneEfFgGaA")),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SPECS)
def test_spec_text_round_trips(spec):
    assert parse_spec(spec.text) == spec


@pytest.mark.parametrize("fmt", ["%10!999999999d!", "%10!.100000s!", "%10!00000000000000009000x!"])
def test_huge_widths_are_rejected_not_allocated(fmt):
    with pytest.raises(FormatSpecError, match="too large"):
        parse_tmf_format(fmt)
    assert parse_tmf_format("%10!8192d!")[0].spec.width == 8192


def test_printf_to_tmf_wpp_markers():
    fmt, items = printf_to_tmf("%!STDPREFIX!%!LEVEL! %!FLAGS! %!KEYWORDS! %!SUBCOMP! %!FUNC!: %!COMPNAME! %u%%n")
    assert fmt == "%0%!LEVEL! %!FLAGS! %!FLAGS! %!SUBCOMP! %!FUNC!: %!COMPNAME! %10!u!%%n"
    assert items == ["ItemLong"]
    assert parse_tmf_format(fmt)[-1] == Literal("%n")
    with pytest.raises(FormatSpecError, match="STDPREFIX"):
        printf_to_tmf("x %!STDPREFIX!")


def test_byte_sized_integers_print_as_numbers():
    fmt, items = printf_to_tmf("%hhd %02hhx %hhi")
    assert fmt == "%10!hhd! %11!02hhx! %12!hhd!" and items == ["ItemChar"] * 3


def test_regression_non_ascii_digit_after_percent():
    # str.isdigit() is true for "¹" but insert numbers are ASCII digits (found by hypothesis)
    assert parse_tmf_format("%\u00b9x") == [Literal("\u00b9x")]


def test_errors_are_tmf_errors():
    from wpptrace.tmf.errors import TmfError
    with pytest.raises(TmfError) as err:
        parse_tmf_format("ok %10!kk!")
    assert err.value.column == 8 and err.value.line_text == "ok %10!kk!"
    assert str(err.value).startswith("<format>:1:8: ")


@pytest.mark.parametrize("fmt, column, reason", [
    ("value %!NOPE! here", 9, "unknown WPP type %!NOPE!"),    # the type name after "%!"
    ("value %5.2hn here", 12, "%n writes to memory"),          # the conversion
    ("a=%d b=%*d", 9, "'*' width"),                            # the star
    ("x %d %!STDPREFIX!", 6, "%!STDPREFIX! only works"),       # the marker's "%"
])
def test_printf_to_tmf_errors_point_into_the_format(fmt, column, reason):
    """An insert's type or a marker the WPP tables refuse is told at its place in the whole
    format, the format shown, not at a column of the spec or type name alone."""
    with pytest.raises(FormatSpecError) as err:
        printf_to_tmf(fmt)
    assert err.value.reason.startswith(reason)
    assert (err.value.line_text, err.value.column) == (fmt, column)
