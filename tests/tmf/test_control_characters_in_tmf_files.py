"""A control character inside a TMF file (a NUL mid-file, or a file padded with NULs after a
crash) no longer makes the whole file "not a TMF file": once a GUID header or #typev line has
come before it, the line holding it is one bad line (reported by line and column, its entry
not read) and trailing NUL padding ends the file. A file with no TMF line before its binary
data is still refused whole, its content not shown."""
from __future__ import annotations

import uuid

import pytest

import wpptrace.tmf as tmf
from wpptrace.tmf.errors import TmfError

GUID = "744151fd-b3f4-32e6-38eb-0fd11e3fb62d"
OTHER = "844151fd-b3f4-32e6-38eb-0fd11e3fb62d"


def entry(number: int, arg: str = "n, ItemLong -- 10") -> str:
    return f'#typev a_cpp{number} {number} "%0m{number} %10!d!" //   LEVEL=L FUNC=f{number}\n{{\n{arg}\n}}\n'


TEXT = f"// PDB: x.pdb\n{GUID} comp // SRC=a.cpp MJ= MN=\n" + entry(10) + entry(11) + entry(12)


def load(tmp_path, text: str, *, directory: bool, name: str = f"{GUID}.tmf", newline: str = "\n",
         tolerant: bool = True) -> tuple[tmf.TmfSet, str]:
    folder = tmp_path / "tmfs"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    tmfset = tmf.load(folder if directory else path, use_environment=False, tolerant=tolerant)
    tmfset.load_all()
    return tmfset, str(path)


def numbers(tmfset: tmf.TmfSet) -> dict[uuid.UUID, list[int]]:
    found: dict[uuid.UUID, list[int]] = {}
    for message in tmfset.messages():
        found.setdefault(message.guid, []).append(message.number)
    return {guid: sorted(n) for guid, n in found.items()}


@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
def test_trailing_nul_padding_ends_the_file(tmp_path, directory, newline):
    tmfset, _ = load(tmp_path, TEXT + "\0" * 4096, directory=directory, newline=newline)
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 11, 12]} and tmfset.issues == []
    # padding that starts inside the last entry: that entry is cut, the others are read
    tmfset, path = load(tmp_path, TEXT[:-3] + "\0" * 512, directory=directory, newline=newline)
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 11]}
    (issue,) = tmfset.issues
    assert "missing '}'" in str(issue) and issue.path == path


@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["lf", "crlf"])
@pytest.mark.parametrize("where", ["argument", "typev", "open", "close"])
def test_a_nul_inside_an_entry_is_one_bad_line(tmp_path, directory, newline, where):
    damaged = {"argument": entry(11, "n, Item\0Long -- 10"),
               "typev": entry(11).replace("%0m11", "%0m\x0011"),
               "open": entry(11).replace("{", "{\0"),
               "close": entry(11).replace("}", "\0}")}[where]
    text = TEXT.replace(entry(11), damaged)
    tmfset, path = load(tmp_path, text, directory=directory, newline=newline)
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 12]}     # never 11 with an argument short
    (issue,) = tmfset.issues
    lineno = text[:text.index("\0")].count("\n") + 1
    column = text.index("\0") - text.rindex("\n", 0, text.index("\0"))
    assert (issue.path, issue.line, issue.column) == (path, lineno, column)
    assert "control character 0x00" in issue.message and "\0" not in str(issue)


def test_a_nul_in_a_guid_header_files_nothing_under_the_header_before(tmp_path):
    text = TEXT + f"{OTHER[:8]}\0{OTHER[9:]} other // SRC=b.cpp\n" + entry(20) + f"{OTHER} other // SRC=b.cpp\n" + entry(21)
    tmfset, path = load(tmp_path, text, directory=False)
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 11, 12], uuid.UUID(OTHER): [21]}
    assert [(i.line, "control character" in i.message) for i in tmfset.issues] == [
        (15, True), (16, False)]     # #typev 20: no GUID header before it


def test_an_enum_line_with_a_nul_is_one_bad_line(tmp_path):
    text = TEXT + f"{GUID} comp\n#enumv E\n{{\nA,0x1\nB\0,0x2\nC,0x3\n}}\n"
    tmfset, _ = load(tmp_path, text, directory=False)
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 11, 12]}
    assert [(i.line, "control character 0x00" in i.message) for i in tmfset.issues] == [(19, True)]


def test_binary_data_before_any_tmf_line_is_still_refused_whole(tmp_path):
    for text in ("// PDB: x.pdb\n\0secret\n" + TEXT, f"{GUID} comp\0 secret\n" + entry(10), "\0" * 64 + TEXT):
        tmfset, path = load(tmp_path, text, directory=False)
        assert numbers(tmfset) == {}
        (issue,) = tmfset.issues
        assert "not a TMF file: expected text, found binary data" in str(issue)
        assert "its content is not shown" in str(issue) and "secret" not in str(issue)


def test_strict_reading_raises_at_the_bad_line(tmp_path):
    text = TEXT.replace(entry(11), entry(11, "n, Item\0Long -- 10"))
    with pytest.raises(TmfError) as caught:
        load(tmp_path, text, directory=False, tolerant=False)
    assert caught.value.line == 9 and "control character 0x00" in caught.value.message
    tmfset, _ = load(tmp_path, TEXT + "\0" * 100, directory=False, tolerant=False, name="padded.tmf")
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 11, 12]}


@pytest.mark.parametrize("directory", [False, True], ids=["file", "directory"])
def test_a_nul_in_a_comment_between_entries_loses_none_but_one_in_a_block_loses_its_entry(tmp_path, directory):
    """A comment line is still a line: one with a NUL between entries costs no entry (11 is
    read), one inside a block cuts that block, and its entry (12) is lost; each is reported."""
    text = (TEXT.replace(entry(11), "// a comment\0 between entries\n\n" + entry(11))
            .replace(entry(12), entry(12).replace("{\n", "{\n// a comment\0 in a block\n")))
    tmfset, _ = load(tmp_path, text, directory=directory)
    assert numbers(tmfset) == {uuid.UUID(GUID): [10, 11]}    # 12: its block is cut by the bad line
    assert [(i.line, "control character 0x00" in i.message) for i in tmfset.issues] == [(7, True), (15, True)]
