"""Regression: a GUID header with no blank between the GUID and its component.

Both readers took ``<guid>ABC netkvm.sys`` (a GUID with three digits too many) as that GUID
with the component "ABC", and ``{<guid>}netkvm.sys`` as a header, where the grammar
(docs/tmf-grammar.md) puts a blank between them: a mistyped GUID was read silently as another
message's. Now both refuse such a line, with the place where the blank was expected.
"""
import pytest

from wpptrace import tmf
from wpptrace.tmf import grammar
from wpptrace.tmf.errors import TmfError

GUID = "01e9b841-7d67-315a-7b92-23b2033356de"


@pytest.mark.parametrize("header, column", [
    (f"{GUID}ABC netkvm.sys // SRC=a.c", 37),
    (f"{{{GUID}}}netkvm.sys", 39),
    (f"{GUID}netkvm.sys", 37),
])
def test_no_blank_after_the_guid_is_an_error_at_its_place(header, column):
    assert grammar._guid_header_fast(header) is None
    with pytest.raises(TmfError) as info:
        tmf.parse_text(f"{header}\n#typev a 10 \"x\" //\n{{\n}}\n", path="bad.tmf")
    err = info.value
    assert (err.line, err.column, err.expected) == (1, column, "blank, then component name")
    assert str(err).startswith(f"bad.tmf:1:{column}: ")


@pytest.mark.parametrize("header", [f"{GUID} netkvm.sys", f"{{{GUID}}}\tnetkvm.sys // SRC=a.c"])
def test_a_blank_after_the_guid_reads_as_before(header):
    fast = grammar._guid_header_fast(header)
    full = grammar._guid_header_full(header)
    assert (fast.guid, fast.component, fast.trailer) == (full.guid, full.component, full.trailer)
    assert str(fast.guid) == GUID and fast.component == "netkvm.sys"
