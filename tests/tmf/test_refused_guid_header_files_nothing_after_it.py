"""Regression: entries after a refused GUID header were filed under the header before it.

Reading tolerantly (as ``wpptrace fmt`` reads TMF directories), a GUID header the grammar
refuses (here a GUID with three digits too many) was reported, and the entries after it went
on under the GUID and source file of the last good header: the mistyped GUID's message 11
became the first GUID's message 11. Now they are refused with it; a .tmc line with such a GUID
is refused too, not read as the GUID with no name.
"""
import uuid

import pytest

from wpptrace import tmf
from wpptrace.tmf import loader
from wpptrace.tmf.errors import TmfError

G1 = "01e9b841-7d67-315a-7b92-23b2033356de"
G2 = "5f5b9d2a-0c8e-4b1e-9d7e-2a3b4c5d6e7f"


TEXT = (f"{G1} comp // SRC=a.c\n#typev a_c10 10 \"ten\"\n{{\n}}\n"
        f"{G2}ABC comp // SRC=b.c\n#typev b_c11 11 \"eleven\"\n{{\n}}\n"
        f"{G2} comp // SRC=b.c\n#typev b_c12 12 \"twelve\"\n{{\n}}\n")


@pytest.mark.parametrize("how", ["text", "directory"])
def test_entries_after_a_refused_header_are_not_another_guids(tmp_path, how):
    """Read whole, and from a directory as fmt reads one (entries read when looked up)."""
    if how == "text":
        tmfset = tmf.parse_text(TEXT, path="two.tmf", tolerant=True)
    else:
        (tmp_path / f"{G1}.tmf").write_text(TEXT)
        tmfset = tmf.load(tmp_path, use_environment=False)
    assert tmfset.lookup(uuid.UUID(G1), 10).format == "ten"
    assert tmfset.lookup(uuid.UUID(G1), 11) is None
    assert tmfset.lookup(uuid.UUID(G2), 11) is None
    assert tmfset.lookup(uuid.UUID(G2), 12).source_file == "b.c"
    places = [(issue.line, issue.column) for issue in tmfset.issues]
    assert (5, 37) in places and (6, 1) in places   # the header, and the entry it leaves alone


def test_a_tmc_line_with_a_mistyped_guid_is_refused():
    control = uuid.UUID(G1)
    with pytest.raises(TmfError) as info:
        loader.parse_tmc(f"{control}ABC Name\nFLAG\n", path="c.tmc")
    assert (info.value.line, info.value.column) == (1, 1)
    assert [c.name for c in loader.parse_tmc(f"{control} Name\nFLAG\n", path="c.tmc")] == ["Name"]
