"""A TMF file with a line far longer than a TMF line may be (MAX_LINE characters) is not
decoded whole: a file of one 200 MB line cost 4.2 times its size in memory (read, decoded,
split into lines) before the grammar refused that line. Each such line is cut, in the bytes,
to a length that is still longer than MAX_LINE characters in any encoding read: the grammar
refuses it as before, at its line, and the entries after it are read as before."""
from __future__ import annotations

import uuid

import pytest

from wpptrace.tmf.grammar import MAX_LINE
from wpptrace.tmf.loader import load, read_text

GUID = uuid.UUID("0f3c2b1a-1111-4222-8333-944455556666")
HEAD = f"{GUID} comp // SRC=s.c\n"
GOOD = '{\n}\n#typev s_c20 20 "%0after the long line" //   LEVEL=TRACE_LEVEL_ERROR\n{\n}\n'


@pytest.mark.parametrize("fill, end", [(b"A", b"\n"), ("\u00e9".encode(), b"\r\n"), (b"B", b"\r")])
def test_a_line_longer_than_any_tmf_line_is_cut_before_it_is_decoded(tmp_path, fill, end):
    long_line = b'#typev s_c10 10 "' + fill * (4 * MAX_LINE) + b'" //'
    path = tmp_path / f"{GUID}.tmf"
    path.write_bytes(HEAD.encode() + long_line + end + GOOD.replace("\n", end.decode()).encode())
    text = read_text(path)
    lines = text.splitlines()
    assert len(lines) == len(HEAD.splitlines() + GOOD.splitlines()) + 1
    assert MAX_LINE < len(lines[1]) <= 4 * MAX_LINE + 1          # cut, still too long for TMF
    assert lines[1].startswith('#typev s_c10 10 "' + fill.decode() * 100)
    assert lines[2:] == GOOD.splitlines()                          # the rest kept whole
    tmfset = load(str(path), use_environment=False)
    assert [m.format for m in tmfset.messages()] == ["%0after the long line"]
    assert any(f"{path}:2:" in str(issue) and f"line longer than {MAX_LINE} characters" in str(issue)
               for issue in tmfset.issues)


def test_the_cut_is_the_grammars_limit_in_utf8_bytes():
    from wpptrace.tmf.loader import _LONG_LINE_BYTES

    assert _LONG_LINE_BYTES == 4 * MAX_LINE


def test_lines_up_to_the_cut_are_kept_whole(tmp_path):
    path = tmp_path / "ok.tmf"
    lines = [HEAD.rstrip("\n"), "// " + "x" * (4 * MAX_LINE - 3)] * 3 + ["// end"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert read_text(path).split("\n")[:-1] == lines
