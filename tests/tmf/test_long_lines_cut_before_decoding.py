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


class _CountedBytes(bytes):
    """bytes whose find/rfind add up the bytes each call reads (memchr stops at a hit)."""

    scanned = 0

    def _count(self, at: int, start: int, end: int | None, forward: bool) -> int:
        end = len(self) if end is None else min(end, len(self))
        if at < 0:
            type(self).scanned += max(0, end - start)
        else:
            type(self).scanned += (at + 1 - start) if forward else (end - at)
        return at

    def find(self, sub, start=0, end=None):
        return self._count(bytes.find(self, sub, start, end), start, end, True)

    def rfind(self, sub, start=0, end=None):
        return self._count(bytes.rfind(self, sub, start, end), start, end, False)


@pytest.mark.parametrize("end", [b"\n", b"\r", b"\r\n"])
def test_many_long_lines_are_cut_in_time_linear_in_the_file(end):
    """Looking for the end of a cut line stops at that line's end: it does not read to the end
    of the file for the other line-end byte (50 long lines read the file 50 times over)."""
    from wpptrace.tmf.loader import _LONG_LINE_BYTES, _cut_long_lines

    line = b"a" * (_LONG_LINE_BYTES + 10)
    data = _CountedBytes((line + end) * 50)
    size = len(data)
    _CountedBytes.scanned = 0
    cut = _cut_long_lines(data)
    assert cut.count(end) == 50
    assert all(len(part) == _LONG_LINE_BYTES + 1 for part in cut.split(end)[:-1])
    assert _CountedBytes.scanned <= 8 * size        # (it was 28 times: once per line)


def _line_of(size: int, fill: bytes) -> bytes:
    """``size`` bytes that end with whole ``fill`` characters (a multi-byte one ends the file)."""
    return b"a" * (size % len(fill)) + fill * (size // len(fill))


@pytest.mark.parametrize("fill", [b"x", "\u00e9".encode(), "\u20ac".encode()])
@pytest.mark.parametrize("before", [b"", b"// h\n", b"// h\r\n" + b"y" * (4 * MAX_LINE + 5) + b"\r"])
@pytest.mark.parametrize("end", [b"", b"\n", b"\r", b"\r\n"])
@pytest.mark.parametrize("extra", [-1, 0, 1, 2, 3])
def test_a_last_line_about_as_long_as_the_cut_is_read_to_the_end_of_the_file(fill, before, end, extra):
    """The last line, with or without a line end, of the cut's length give or take a few bytes:
    a line of up to _LONG_LINE_BYTES + 1 bytes is kept whole; a longer one is cut to that, or
    up to 3 bytes less so as not to split a UTF-8 character; the line end stays."""
    from wpptrace.tmf.loader import _LONG_LINE_BYTES, _cut_long_lines, text_lines

    line = _line_of(_LONG_LINE_BYTES + extra, fill)
    cut = _cut_long_lines(before + line + end)
    assert cut.endswith(end)
    got = text_lines(cut.decode("utf-8"))
    want = text_lines((before + line + end).decode("utf-8"))
    assert len(got) == len(want)
    for kept, whole in zip(got, want):
        size = len(whole.encode())
        if size <= _LONG_LINE_BYTES + 1:
            assert kept == whole
        else:
            assert whole.startswith(kept)
            assert _LONG_LINE_BYTES - 2 <= len(kept.encode()) <= _LONG_LINE_BYTES + 1


def test_a_tmf_file_ending_in_a_line_one_byte_past_the_cut_is_refused_at_that_line(tmp_path, capsys):
    from wpptrace import cli
    from wpptrace.tmf.loader import _LONG_LINE_BYTES

    path = tmp_path / f"{GUID}.tmf"
    path.write_bytes(HEAD.encode() + b'#typev s_c10 10 "' + b"x" * (_LONG_LINE_BYTES + 1 - 17))
    assert cli.main(["tmf", "show", str(path), "--no-env"]) == 1
    out, err = capsys.readouterr()
    assert err.splitlines()[0].startswith(f"{path}:2:")
    assert f"line longer than {MAX_LINE} characters" in err.splitlines()[0]
    assert "index out of range" not in err


def test_fmt_goes_on_past_a_tmf_file_ending_in_a_line_one_byte_past_the_cut(tmp_path, capsys):
    """One such file among the TMF files of a -p folder: the others still decode the trace."""
    import shutil
    from pathlib import Path

    from wpptrace import cli
    from wpptrace.tmf.loader import _LONG_LINE_BYTES

    samples = Path(__file__).resolve().parents[2] / "samples" / "wpp_capture"
    tmfdir = tmp_path / "tmf"
    shutil.copytree(samples / "tmf", tmfdir)
    # a TMF file the trace's messages need, its last line a comment one byte past the cut
    needed = tmfdir / "9b93a332-c452-3e71-64f7-55130c7de2e4.tmf"
    needed.write_bytes(needed.read_bytes().rstrip(b"\r\n") + b"\n" + b"/" * (_LONG_LINE_BYTES + 1))
    code = cli.main(["fmt", "--no-cache", "-p", str(tmfdir), str(samples / "wppemitter-sample.etl")])
    out, err = capsys.readouterr()
    assert "index out of range" not in err
    assert code == 0, err
    assert "Unknown" not in out and out.count("\n") > 40
