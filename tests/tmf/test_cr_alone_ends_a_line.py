"""Regression: a CR alone ends a line, as LF and CRLF do (and CR CR LF, a file converted to CRLF twice).

A TMF file with old Mac line ends (CR only) was one line; starting with a // comment line, it
was a comment: no message, no problem, exit status 0. Its lines are now read as lines, in a
directory (read lazily) and as a single file, with the right line numbers in what is reported.
"""
from __future__ import annotations

import itertools
import uuid

import pytest

import wpptrace.tmf as tmf

GUID = uuid.UUID("744151fd-b3f4-32e6-38eb-0fd11e3fb62d")
TEXT = (f"// PDB:  x.pdb\n{GUID} comp // SRC=a.c MJ= MN=\n"
        '#typev a_c10 10 "hello %10!d!" //   FUNC=F\n{\ni, ItemLong -- 10\n}\n'
        '#typev a_c11 11 "bad %10!d!" //   FUNC=F\n{\ni, ItemLong -- 100\n}\n')


def _mixed(text: str) -> str:
    """``text`` with its line ends taken in turn from CR, LF, CRLF and CR CR LF."""
    ends = itertools.cycle(("\r", "\n", "\r\n", "\r\r\n"))
    return "".join(line + next(ends) for line in text.splitlines())


@pytest.mark.parametrize("text", [TEXT.replace("\n", "\r"), TEXT.replace("\n", "\r\r\n"), _mixed(TEXT)],
                         ids=["cr", "cr-cr-lf", "mixed"])
def test_a_file_with_cr_line_ends_is_read_line_by_line(tmp_path, text):
    (tmp_path / f"{GUID}.tmf").write_bytes(text.encode())
    for tmfset in (tmf.load(tmp_path, use_environment=False),
                   tmf.load(tmp_path / f"{GUID}.tmf", use_environment=False)):
        assert tmfset.lookup(GUID, 10).origin == f"{tmp_path / f'{GUID}.tmf'}:3"
        assert tmfset.lookup(GUID, 11) is None
        assert [m.number for m in tmfset.messages()] == [10]
        assert [(issue.line, issue.column, issue.message) for issue in tmfset.issues] == [
            (9, 16, "bad argument line: expected insert number 1..99, found '100'")]
