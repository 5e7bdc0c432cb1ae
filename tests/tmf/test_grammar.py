"""Grammar shapes from docs/tmf-format.md §3 that the corpus lacks, and the errors for bad input."""
from __future__ import annotations

import uuid

import pytest

import wpptrace.tmf as tmf
from wpptrace.tmf import grammar
from wpptrace.tmf.errors import TmfError
from wpptrace.tmf.model import Argument

G1 = "01e9b841-7d67-315a-7b92-23b2033356de"
G2 = "ca66b9c0-97d7-3776-3daf-3296492866aa"
HEADER = f"{G1} BthPS3 // SRC=L2CAP.c MJ= MN="


def one(text: str) -> tmf.Message:
    messages = list(tmf.parse_text(text).messages())
    assert len(messages) == 1
    return messages[0]


def test_comma_in_expression_splits_at_last_item():
    message = one(HEADER + "\n"
                  '#typev n 10 "%10!c! %11!d!" //   LEVEL=L\n{\n'
                  "cso.IPv6Transmit.TcpOptionsSupported ? '+' : ' ', ItemChar -- 10\n"
                  "foo(a, b, ItemLong), ItemLong -- 11\n}\n")
    assert message.args == (
        Argument("cso.IPv6Transmit.TcpOptionsSupported ? '+' : ' '", "ItemChar", (), 10),
        Argument("foo(a, b, ItemLong)", "ItemLong", (), 11),
    )


def test_mof_template_numbering_and_indentation():
    message = one(HEADER + '\n#typev n 10 "%10!d!%11!s!" // LEVEL=L\n{\n  a, ItemLong // 10\n  b, ItemString\n}\n')
    assert [(a.name, a.item, a.insert) for a in message.args] == [("a", "ItemLong", 10), ("b", "ItemString", 11)]


def test_list_params_with_values_and_enum_param():
    message = one(HEADER + '\n#typev n 10 "%10!s!%11!s!" //   LEVEL=L\n{\n'
                  "m, ItemListLong(ModificationUnspecified=0x0, Added = 3,Removed) -- 10\n"
                  "state, ItemEnum(_MachineState) -- 11\n}\n")
    assert message.args[0].params == ("ModificationUnspecified=0x0", "Added = 3", "Removed")
    assert message.args[1] == Argument("state", "ItemEnum", ("_MachineState",), 11)


def test_legacy_char_hidden_keeps_its_count_in_the_name():
    message = one(HEADER + '\n#type n 10 "%10" \n{\nbuf, ItemCharHidden[16] -- 10\n}\n')
    assert message.args == (Argument("buf", "ItemCharHidden[16]", (), 10),)


def test_http_in_format_and_trailer_with_other_keys():
    message = one(HEADER + '\n#typev Unknown_cxx00 11 "see http://x/y "q" //" //   GLOBALS=GetDriverGlobals() '
                  "TRACELEVEL=TRACE_LEVEL_WARNING Flags=TRACE_DRIVER FUNC=Fx::Do\n{\n}\n")
    assert message.format == 'see http://x/y "q" //'
    assert message.trailer == {
        "GLOBALS": "GetDriverGlobals()", "TRACELEVEL": "TRACE_LEVEL_WARNING", "Flags": "TRACE_DRIVER",
        "FUNC": "Fx::Do"}
    assert message.level is None  # TRACELEVEL= is a different key (the legacy substring search is not copied)


def test_trailer_bare_words_and_empty_values():
    message = one(HEADER + '\n#typev n 10 "x" // INDENT LEVEL= FUNC=operator new\n{\n}\n')
    assert message.trailer == {"": "INDENT", "LEVEL": "", "FUNC": "operator new"}


def test_several_guids_appended_runs_and_crlf():
    text = (
        "// PDB:  a.pdb\r\n// PDB:  Last Updated :2006-3-8:10:29:10:368 (UTC) [binplace]\r\n"
        f"{HEADER}\r\n#typev L2CAP_c141 15 \"%0 <--\" //   LEVEL=V FLAGS=F FUNC=f\r\n{{\r\n}}\r\n"
        f"{{{G2.upper()}}} BthPS3PSM // SRC=Device.c MJ= MN=\r\n"
        '#typev Device_c104 13 "%0 [%!FUNC!] <--" //   LEVEL=V FLAGS=D FUNC=g\r\n{\r\nx, ItemLong -- 10\r\n}\r\n'
        "// PDB:  a.pdb\r\n"
        '#typev Device_c105 14 "y" //   LEVEL=V\r\n{\r\n}\r\n'
    )
    tmfset = tmf.parse_text(text)
    assert tmfset.guids() == [uuid.UUID(G1), uuid.UUID(G2)]
    assert tmfset.lookup(uuid.UUID(G1), 15).func == "f"
    second = tmfset.lookup(uuid.UUID(G2), 14)
    assert (second.component, second.source_file, second.origin) == ("BthPS3PSM", "Device.c", "<string>:13")


def test_legacy_type_lines_sharing_a_block_and_continuation():
    tmfset = tmf.parse_text(HEADER + '\n#type a 10 "%10!d!"\n#typev b 11 "two\nlines %10!d!" //   LEVEL=L\n{\nx, ItemLong -- 10\n}\n')
    a = tmfset.lookup(uuid.UUID(G1), 10)
    b = tmfset.lookup(uuid.UUID(G1), 11)
    assert a.legacy and not b.legacy
    assert a.args == b.args == (Argument("x", "ItemLong", (), 10),)
    assert b.format == "two\nlines %10!d!"
    assert a.trailer == {}


def test_enum_definitions():
    tmfset = tmf.parse_text(
        f"{G1} BthPS3 // SRC=a.c MJ= MN=\n#typev n 10 \"%10!s!\" // LEVEL=L\n{{\nx, ItemEnum(_MachineState) -- 10\n}}\n"
        f"{G1} BthPS3\n#enumv _MachineState\n{{\nOffline,0x0\nOnline,0x1\nBig,0x90000000\n"
        "Neg,0xFFFFFFFFFFFFFFFE\nAlias,0x1\n}\n")
    enum = tmfset.enum("_MachineState")
    assert enum.values == {0: "Offline", 1: "Online", 0x90000000: "Big", -2: "Neg"}
    assert tmfset.enum("nope") is None
    assert tmfset.lookup(uuid.UUID(G1), 10).args[0].params == ("_MachineState",)


# -- errors --------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "text, line, column, expected",
    [
        ('#typev a 10 "x" //\n{\n}\n', 1, 1, "a '<guid> <component> // SRC=<file>' line first"),
        ("bad line\n", 1, 1, "comment, GUID header, #typev line or #enumv line"),
        (HEADER + '\n#typev a 10 "x" //  L=1\n{\nstatus ItemNTSTATUS -- 10\n}\n', 4, 1,
         'C expression followed by ", Item<Type>"'),
        (HEADER + '\n#typev a 10 "x" //  L=1\n{\nstatus, ItemNTSTATUS -- ab\n}\n', 4, 25, "insert number"),
        (HEADER + '\n#typev a 10 "x" //\n{\n  status, ItemNTSTATUS -- 100\n}\n', 4, 27, "insert number 1..99"),
        (HEADER + '\n#typev a 99999 "x" //  L=1\n{\n}\n', 2, 10, "message number 0..65535"),
        (HEADER + '\n#typev a 10 x" //  L=1\n{\n}\n', 2, 13, 'quoted format string "..."'),
        (HEADER + '\n#typev a 10 "x" //  L=1\n{\na, ItemLong -- 10\n', 5, 1, '"}" line'),
        (HEADER + '\n#typev a 10 "x" //  L=1\nx\n', 3, 1, '"{" line'),
        (HEADER + '\n#typev a 10 "x" //  L=1\n{\na, ItemListLong(a,b -- 10\n}', 4, 26, "')'"),
        (G1 + "\n", 1, 37, "blank, then component name"),
        ("#enumv E\n{\nA,0x1\nB,zz\n}\n", 4, 3, "enumerator value (0x... or decimal)"),
        ("{\n}\n", 1, 1, "#typev line, #enumv line or GUID header"),
    ],
)
def test_errors_carry_position_line_and_expected(text, line, column, expected):
    with pytest.raises(TmfError) as info:
        tmf.parse_text(text, path="bad.tmf")
    err = info.value
    assert (err.path, err.line, err.column, err.expected) == ("bad.tmf", line, column, expected)
    rendered = str(err).split("\n")
    assert rendered[0].startswith(f"bad.tmf:{line}:{column}: ")
    if err.line_text:
        assert rendered[1] == err.line_text
        assert rendered[2] == " " * (column - 1) + "^"
    assert isinstance(err, ValueError)


def test_tolerant_mode_skips_only_the_bad_entry():
    text = (HEADER + "\n"
            '#typev good1 10 "a" //   LEVEL=L\n{\nx, ItemLong -- 10\n}\n'
            '#typev bad 11 "b" //   LEVEL=L\n{\nno item here\n}\n'
            "garbage\n"
            '#typev good2 12 "c" //   LEVEL=L\n{\n}\n')
    tmfset = tmf.parse_text(text, path="t.tmf", tolerant=True)
    assert [m.name for m in tmfset.messages()] == ["good1", "good2"]
    assert [(e.line, e.column) for e in tmfset.issues] == [(8, 1), (10, 1)]
    with pytest.raises(TmfError):
        tmf.parse_text(text, path="t.tmf")


def test_line_productions_are_usable_alone():
    assert grammar.parse_arg("a, b, ItemLong -- 12") == ("a, b", "ItemLong", (), 12)
    typev = grammar.parse_typev('#typev n 65535 "" //')
    assert (typev.number, typev.format, typev.trailer) == (65535, "", ())
    header = grammar.parse_guid_header("{01E9B841-7D67-315A-7B92-23B2033356DE} netkvm.sys")
    assert header.guid == uuid.UUID(G1) and header.component == "netkvm.sys"
    assert grammar.parse_trailer("SRC=a b.c MJ= MN=") == {"SRC": "a b.c", "MJ": "", "MN": ""}


def test_regression_tabs_in_format_are_kept():
    """pyparsing expands tabs by default; a format string's TAB must survive (found by hypothesis)."""
    message = one(HEADER + '\n#typev n 10 "a\tb%10!d!" //\tLEVEL=L\n{\n\tx,\tItemLong -- 10\n}\n')
    assert message.format == "a\tb%10!d!"
    assert message.trailer == {"LEVEL": "L"}
    assert message.args == (Argument("x", "ItemLong", (), 10),)


def test_regression_header_after_unclosed_block_starts_a_new_section():
    text = (HEADER + '\n#typev a 10 "x" //\n{\nx, ItemLong -- 10\n'
            f"{G2} Other // SRC=b.c MJ= MN=\n#typev b 11 \"y\" //\n{{\n}}\n")
    tmfset = tmf.parse_text(text, tolerant=True)
    assert [(e.line, e.expected) for e in tmfset.issues] == [(5, '"}" line')]
    assert [(m.guid, m.number, m.component) for m in tmfset.messages()] == [(uuid.UUID(G2), 11, "Other")]
