"""defaultwpp.ini is read into the type table; project config blocks add types the same way."""
from __future__ import annotations

import pytest

from wpptrace.tmf import wppini
from wpptrace.tmf.formatspec import item_for_spec, printf_to_tmf


def test_default_types_cover_the_wdk_ini():
    types = wppini.default_types()
    assert len(types) == 154
    assert types["SINT"].item == "ItemLong" and types["SINT"].equiv_type == "signed int"
    assert types["hu"].format_spec == "u" and types["hu"].base == "USHORT"   # flavor overrides spec
    assert types["lc"].format_spec == "hd"                                  # flavor inherits spec
    assert types["UCHAR"].item == "ItemUChar"                                # flavor overrides MofType
    assert types["pnpmj"].params[-1] == "IRP_MJ_PNP" and len(types["pnpmj"].params) == 28
    assert types["FUNC"].is_constant and types["FUNC"].format_spec == "%!FUNC!"
    assert types["XSHORT"].format_spec == "04hX"


def test_lookup_is_exact_first_then_unambiguous_case_folded():
    assert wppini.lookup_type("bool").params == ("false", "true")
    assert wppini.lookup_type("BOOLEAN").params == ("FALSE", "TRUE")
    assert wppini.lookup_type("SID").name == "sid"
    assert wppini.lookup_type("Guid") is None   # GUID and guid both exist: ambiguous
    assert wppini.lookup_type("nosuch") is None


CONFIG = """
// begin_wpp config
// DEFINE_CPLX_TYPE(HEXDUMP, WPP_LOGHEXDUMP, WPP_HEXDUMP, ItemHEXDump, "s", _HEX_, 0, 2);
// DEFINE_CPLX_TYPE(IPV6ADDR, WPP_LOGIPV6, const UCHAR*, ItemIPV6Addr, "s", _IPV6_, 0, 1);
// CUSTOM_TYPE(STATE, ItemListLong(Idle, Busy=5, Done), "s");
// DEFINE_FLAVOR(MYSTATUS, STATUS,,);  # a comment, "with quotes"
// end_wpp
"""


def test_project_config_block_adds_types():
    types = wppini.parse_wpp_config(CONFIG, path="drv.h", base_types=wppini.default_types())
    assert types["HEXDUMP"].item == "ItemHEXDump" and types["HEXDUMP"].origin == "drv.h:3"
    assert types["STATE"].item_text == "ItemListLong(Idle,Busy=5,Done)"
    assert types["MYSTATUS"].item == "ItemNTSTATUS"
    assert item_for_spec("HEXDUMP", types) == "ItemHEXDump"
    fmt, items = printf_to_tmf("dump %!HEXDUMP! st=%!STATE!", types=types)
    assert fmt == "dump %10!s! st=%11!s!" and items == ["ItemHEXDump", "ItemListLong(Idle,Busy=5,Done)"]


@pytest.mark.parametrize("text,message", [
    ("DEFINE_FLAVOR(X, NOSUCHBASE,,);", "unknown base type"),
    ("CUSTOM_TYPE(X, NotAnItem);", r"expected ItemX\(extension\)"),
    ("DEFINE_FLAVOR(X, SINT", "unterminated"),
    ("DEFINE_FLAVOR(, SINT);", "without a type name"),
])
def test_config_errors_are_precise(text, message):
    with pytest.raises(wppini.WppIniError, match=message) as err:
        wppini.parse_wpp_config("\n" + text, path="cfg.ini", base_types=wppini.default_types())
    assert str(err.value).startswith("cfg.ini:2:")
