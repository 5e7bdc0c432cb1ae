"""Loading TMF data: lazy directories, search paths, precedence, .tmc and .pdb files, bad files."""
from __future__ import annotations

import os
import shutil
import socket
import stat
import uuid

import pytest

import wpptrace.tmf as tmf
from wpptrace.tmf import loader
from wpptrace.tmf.errors import TmfError

RAW_QUOTES = "6a170eb6-8ee4-3b09-243f-4a1356054f8d"
GAPS = "d47178e4-703b-3465-f330-63f5cfd64eb4"
HEADER_FMT = "{guid} {component} // SRC=x.c MJ= MN=\n"


def _tmf(guid: str, number: int, name: str, component: str = "Comp") -> str:
    return HEADER_FMT.format(guid=guid, component=component) + f'#typev {name} {number} "%0{name}" //   LEVEL=L\n{{\n}}\n'


@pytest.fixture
def tmf_dir(tmp_path, driver_sample):
    for path in driver_sample.iterdir():
        shutil.copy(path, tmp_path / path.name)
    return tmp_path


@pytest.fixture
def reads(monkeypatch):
    """Paths read by the loader, in order."""
    seen: list[str] = []
    real = loader.read_text

    def counting(path):
        seen.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(loader, "read_text", counting)
    return seen


def test_directory_is_lazy_per_guid(tmf_dir, reads):
    tmfset = tmf.load(tmf_dir, use_environment=False)
    assert reads == []
    message = tmfset.lookup(uuid.UUID(RAW_QUOTES), 10)
    assert message.name == "Util_c68"
    assert reads == [f"{RAW_QUOTES}.tmf"]
    assert tmfset.lookup(uuid.UUID(RAW_QUOTES), 99) is None  # a miss on a loaded GUID reads nothing more
    assert tmfset.lookup(uuid.UUID(GAPS), 13).number == 13
    assert reads == [f"{RAW_QUOTES}.tmf", f"{GAPS}.tmf"]
    assert tmfset.lookup(uuid.uuid4(), 10) is None  # unknown GUID: no file to read
    assert len(reads) == 2
    assert len(tmfset.guids()) == 10  # a full listing reads the rest
    assert len(reads) == 10


def test_guid_file_names_match_case_insensitively_and_other_tmf_files_are_scanned(tmp_path, reads):
    g1, g2, g3 = (str(uuid.uuid4()) for _ in range(3))
    (tmp_path / f"{g1.upper()}.TMF").write_text(_tmf(g1, 10, "one"))
    (tmp_path / "default.tmf").write_text(_tmf(g2, 10, "two") + _tmf(g3, 11, "three"))
    (tmp_path / "notes.txt").write_text("not a tmf")
    tmfset = tmf.load(tmp_path, use_environment=False)
    assert tmfset.lookup(uuid.UUID(g1), 10).name == "one"
    assert reads == [f"{g1.upper()}.TMF"]
    assert tmfset.lookup(uuid.UUID(g3), 11).name == "three"  # a miss scans the other *.tmf files
    assert reads == [f"{g1.upper()}.TMF", "default.tmf"]
    assert tmfset.lookup(uuid.UUID(g2), 10).component == "Comp"


def test_single_file_and_missing_explicit_path(driver_sample, tmp_path):
    tmfset = tmf.load(driver_sample / f"{GAPS}.tmf", use_environment=False)
    assert [m.number for m in tmfset.messages()] == [13, 15, 19, 20, 31, 32]
    with pytest.raises(FileNotFoundError):
        tmf.load(tmp_path / "absent.tmf", use_environment=False)


def test_environment_search_path_and_precedence(tmp_path, monkeypatch):
    guid = str(uuid.uuid4())
    first, second, third = (tmp_path / name for name in ("first", "second", "third"))
    for directory, name in ((first, "from_first"), (second, "from_second"), (third, "from_third")):
        directory.mkdir()
        (directory / f"{guid}.tmf").write_text(_tmf(guid, 10, name))
    monkeypatch.setenv(loader.ENV_SEARCH_PATH, f"{tmp_path / 'missing'};{third}{os.pathsep}{second}")
    assert tmf.load().lookup(uuid.UUID(guid), 10).name == "from_third"  # earlier entry wins
    assert tmf.load(search_path=str(second)).lookup(uuid.UUID(guid), 10).name == "from_second"
    assert tmf.load(first, search_path=str(second)).lookup(uuid.UUID(guid), 10).name == "from_first"
    assert tmf.load(first, use_environment=False).lookup(uuid.UUID(guid), 10).name == "from_first"
    assert loader.split_search_path(f" a ;b{os.pathsep};c ") == ["a", "b", "c"]


def test_tmc_file(tmp_path):
    control = uuid.uuid4()
    (tmp_path / f"{control}.tmc").write_text(
        "// PDB:  drv.pdb\n// PDB:  Last Updated :2025-01-01:00:00:00:000 (UTC) [Tracepdb]\n"
        f"{control} MyDriverTraceGuid\nTRACE_DRIVER\nTRACE_QUEUE\n")
    tmfset = tmf.load(tmp_path / f"{control}.tmc", use_environment=False)
    assert [(c.guid, c.name, c.flags) for c in tmfset.control_guids] == [
        (control, "MyDriverTraceGuid", ("TRACE_DRIVER", "TRACE_QUEUE"))]
    assert tmf.load(tmp_path, use_environment=False).control_guids[0].guid == control
    with pytest.raises(TmfError) as info:
        loader.parse_tmc(f"{control} X\nnot a flag name!\n", path="c.tmc")
    assert (info.value.line, info.value.column) == (2, 1)


def test_pdb_file_through_the_pdb_reader(data_dir):
    """The fixture PDB (tests/data/pdb, clang + lld with restored S_ANNOTATION records)."""
    tmfset = tmf.load(data_dir / "pdb" / "wpp_x64.pdb", use_environment=False)
    assert tmfset.issues == []
    message = tmfset.lookup(uuid.UUID("6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80"), 13)
    assert message.format == '%0 say "hi" // x=%10!x!'
    assert message.func == "Fixture_Emit_Custom"
    assert [c.name for c in tmfset.control_guids] == ["WppFixtureTraceGuid"]


def test_bad_pdb_is_an_issue_in_tolerant_mode(tmp_path):
    bad = tmp_path / "bad.pdb"
    bad.write_bytes(b"not a pdb at all" * 10)
    tmfset = tmf.load(bad, use_environment=False)
    assert len(tmfset.issues) == 1 and isinstance(tmfset.issues[0], TmfError)
    with pytest.raises(TmfError):
        tmf.load(bad, tolerant=False, use_environment=False)


def test_bad_and_vanished_files_become_issues(tmp_path):
    good, bad, gone = (str(uuid.uuid4()) for _ in range(3))
    (tmp_path / f"{good}.tmf").write_text(_tmf(good, 10, "ok"))
    (tmp_path / f"{bad}.tmf").write_bytes(b"\x93quoted\x94 junk line\n" + _tmf(bad, 11, "fine").encode())
    (tmp_path / f"{gone}.tmf").write_text(_tmf(gone, 10, "x"))
    tmfset = tmf.load(tmp_path, use_environment=False)
    (tmp_path / f"{gone}.tmf").unlink()
    assert tmfset.lookup(uuid.UUID(gone), 10) is None
    assert tmfset.lookup(uuid.UUID(bad), 11).name == "fine"
    assert tmfset.lookup(uuid.UUID(good), 10).name == "ok"
    problems = sorted(str(issue) for issue in tmfset.issues)
    assert len(problems) == 2
    assert any("cannot read" in p and gone in p for p in problems)
    assert any(f"{bad}.tmf:1:1: unexpected line (expected comment, GUID header, #typev line or "
               f"#enumv line)\n\u201cquoted\u201d junk line" in p for p in problems)  # cp1252


def test_utf16_and_bom_files(tmp_path):
    guid = str(uuid.uuid4())
    (tmp_path / "a.tmf").write_bytes(_tmf(guid, 10, "wide").encode("utf-16"))
    (tmp_path / "b.tmf").write_bytes(b"\xef\xbb\xbf" + _tmf(guid, 11, "bom").encode())
    tmfset = tmf.load(tmp_path, use_environment=False)
    assert [m.name for m in tmfset.messages()] == ["wide", "bom"]


@pytest.mark.parametrize("data", [b"plain \xc3\xa9\n", b"\xef\xbb\xbfone BOM\n",
                                  b"\xef\xbb\xbf\xef\xbb\xbftwo BOMs\n", b"\xef\xbb\xbf",
                                  b"\xef\xbb\xbfnot UTF-8 \xe9\n", b"\xef\xbb", b""])
def test_read_text_decodes_utf8_as_utf8_sig_does(tmp_path, data):
    """One leading BOM dropped, the rest as UTF-8; a file that is not UTF-8 read as cp1252."""
    from wpptrace.tmf.loader import read_text

    path = tmp_path / "a.tmf"
    path.write_bytes(data)
    try:
        expected = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        expected = data.decode("cp1252", errors="replace")
    assert read_text(path) == expected


def test_has_guid_and_component_load_only_that_guid(tmf_dir, reads):
    tmfset = tmf.load(tmf_dir, use_environment=False)
    assert tmfset.component(uuid.UUID(RAW_QUOTES)) == "BthPS3"
    assert tmfset.has_guid(uuid.UUID(GAPS))
    assert not tmfset.has_guid(uuid.uuid4())
    assert tmfset.component(uuid.uuid4()) is None
    assert reads == [f"{RAW_QUOTES}.tmf", f"{GAPS}.tmf"]


def test_enum_miss_does_not_read_the_whole_directory(tmp_path, reads):
    users, other = str(uuid.uuid4()), str(uuid.uuid4())
    (tmp_path / f"{users}.tmf").write_text(
        HEADER_FMT.format(guid=users, component="C") + '#typev n 10 "%10!s!" //\n{\ns, ItemEnum(_State) -- 10\n}\n'
        f"{users} Module\n#enumv _State\n{{\nOff,0x0\nOn,0x1\n}}\n")
    (tmp_path / f"{other}.tmf").write_text(_tmf(other, 10, "x"))
    tmfset = tmf.load(tmp_path, use_environment=False)
    assert tmfset.lookup(uuid.UUID(users), 10).args[0].params == ("_State",)
    assert tmfset.enum("_State").values == {0: "Off", 1: "On"}
    assert tmfset.enum("_Missing") is None
    assert reads == [f"{users}.tmf"]
    assert [e.name for e in tmfset.enums()] == ["_State"]


def test_text_files_are_read_whole_whatever_size_they_tell(tmp_path, monkeypatch):
    """A file is asked for the size it tells and one byte more; one that holds more (it grew,
    or tells no size, as /proc files do) is read on to the limit; past the limit it is refused."""
    text = "// a comment\n" * 100
    path = tmp_path / "grew.tmf"
    path.write_text(text)
    real_fstat = os.fstat
    told = os.stat_result((stat.S_IFREG,) + (0,) * 5 + (7,) + (0,) * 3)
    monkeypatch.setattr(loader.os, "fstat", lambda fd: told)
    assert loader.read_text(path) == text                        # told 7 bytes, holds more
    monkeypatch.setattr(loader, "MAX_TEXT_FILE", 100)
    with pytest.raises(TmfError) as info:                        # told 7, grew past the limit
        loader.read_text(path)
    assert str(info.value) == f"{path}: file larger than the 100 bytes a TMF or TMC file may have"
    monkeypatch.setattr(loader.os, "fstat", real_fstat)
    monkeypatch.setattr(loader, "MAX_TEXT_FILE", 100000)
    assert loader.read_text(path) == text


def test_a_text_file_too_large_is_refused_by_its_size_before_any_read(tmp_path, monkeypatch):
    """A file that tells a size past the limit is refused before a byte is read, the file named
    with no line (the problem is the whole file's)."""
    path = tmp_path / "big.tmf"
    path.write_text("// a comment\n" * 100)
    monkeypatch.setattr(loader, "MAX_TEXT_FILE", 100)
    reads = []
    monkeypatch.setattr(loader.os, "read", lambda *args: reads.append(args) or b"")
    with pytest.raises(TmfError) as info:
        loader.read_text(path)
    assert reads == []
    assert str(info.value) == (f"{path}: file of 1300 bytes, larger than the 100 bytes a TMF or "
                               f"TMC file may have")
    [issue] = tmf.load(path, use_environment=False).issues
    assert str(issue) == str(info.value)


@pytest.mark.parametrize("kind", ["fifo", "device", "socket"])
def test_a_tmf_path_that_is_no_regular_file_is_refused_at_once(tmp_path, monkeypatch, without_blocking,
                                                               kind):
    """A FIFO (whose open would wait for a writer), a device (/dev/zero: read up to the size
    limit) or a socket given as a TMF is refused before anything is read from it."""
    path = tmp_path / "x.tmf"
    with socket.socket(socket.AF_UNIX) as listening:
        if kind == "fifo":
            os.mkfifo(path)
        elif kind == "device":
            path = "/dev/zero"
        else:
            listening.bind(str(path))
        reads = []
        monkeypatch.setattr(loader.os, "read", lambda *args: reads.append(args) or b"")
        loaded = without_blocking(lambda: tmf.load(path, use_environment=False), "loading the path")
        assert [str(issue) for issue in loaded.issues] == [
            f"{path}: not a regular file (a device, pipe or socket): give a TMF or TMC text file"]
        assert reads == []
        with pytest.raises(TmfError, match="not a regular file"):
            tmf.load(path, use_environment=False, tolerant=False)


def test_a_text_file_path_that_is_a_directory_is_refused_as_one(tmp_path):
    """read_text on a directory (a TMF path given as a directory is listed, not read) says so."""
    with pytest.raises(TmfError) as info:
        loader.read_text(tmp_path)
    assert str(info.value) == f"{tmp_path}: is a directory: give a TMF or TMC text file"
