"""Regression: a file that is not TMF text is reported by path and position only, never quoted.

A ``.tmf`` link in a ``-p`` directory pointing at /etc/shadow was read and every one of its
lines was echoed in an "unexpected line" error on stderr: a privileged decode leaked the file.
Now such a file (binary data, or not one #typev or #enumv line: a TMC, not one GUID header)
gives one error without any excerpt, and errors in real TMF files quote at most
a short, printable excerpt of the line. Links are still followed (as tracefmt follows the
paths it is given; TMF directories are often link farms).
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import wpptrace.tmf as tmf
from wpptrace.tmf.errors import SHOWN_LINE, TmfError
from wpptrace.tmf.loader import not_tmf_text

SECRET = "root:$6$S3CRETSALT$Hash0fTheRootPassword:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n"
GUID = "744151fd-b3f4-32e6-38eb-0fd11e3fb62d"
GOOD = (f"// PDB: x.pdb\n{GUID} findneedle // SRC=a.cpp MJ= MN=\n"
        '#typev a_cpp1 10 "%0hello" //   LEVEL=L FUNC=main\n{\n}\n')


def secret_words() -> list[str]:
    return ["S3CRETSALT", "Hash0f", "root:", "daemon", "99999"]


@pytest.fixture
def linked_dir(tmp_path):
    secret = tmp_path / "shadow"
    secret.write_text(SECRET)
    secret.chmod(0o600)
    tmfs = tmp_path / "tmfs"
    tmfs.mkdir()
    os.symlink(secret, tmfs / "a.tmf")
    os.symlink(secret, tmfs / f"{GUID.replace('7441', '8441')}.tmf")
    os.symlink(secret, tmfs / "flags.tmc")
    return tmfs


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wpptrace.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_a_link_to_a_secret_file_is_reported_without_its_content(linked_dir):
    tmfset = tmf.load(linked_dir, use_environment=False)
    tmfset.load_all()
    issues = [str(issue) for issue in tmfset.issues]
    assert len(issues) == 3                            # one per file, not one per line
    for text in issues:
        assert "its content is not shown" in text and "\n" not in text
        assert not any(word in text for word in secret_words())
    assert f"{linked_dir / 'a.tmf'}:1:1: not a TMF file: expected a #typev or #enumv line " \
           f"somewhere, found other lines (the first here); its content is not shown" in issues
    assert any(":1:1: not a TMC file: expected a GUID header somewhere" in text for text in issues)


def test_the_cli_prints_no_line_of_it(linked_dir, tmp_path, corpus_file):
    etl = corpus_file("wppemitter-sample.etl")
    for args in (["fmt", str(etl), "-p", str(linked_dir), "-o", str(tmp_path / "out.txt")],
                 ["tmf", "show", str(linked_dir)], ["tmf", "show", str(linked_dir / "a.tmf")]):
        proc = run_cli(*args)
        assert "not a TMF file" in proc.stderr, args
        assert not any(word in proc.stderr + proc.stdout for word in secret_words()), args


def test_binary_data_is_not_tmf(tmp_path):
    path = tmp_path / "image.tmf"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00secret\n" + GOOD.encode())
    tmfset = tmf.load(path, use_environment=False)
    [issue] = tmfset.issues
    assert str(issue) == (f"{path}:1:1: not a TMF file: expected text, found binary data "
                          f"(control character 0x7f); its content is not shown")
    assert len(tmfset) == 0
    with pytest.raises(TmfError, match="binary data"):
        tmf.load(path, use_environment=False, tolerant=False)


def test_binary_data_after_a_tmf_line_is_one_bad_line_not_shown(tmp_path):
    path = tmp_path / "image.tmf"
    path.write_bytes(GOOD.encode() + b"\x7fELF\x02\x01\x01\x00secret")
    tmfset = tmf.load(path, use_environment=False)
    [issue] = tmfset.issues
    assert str(issue) == (f"{path}:6:1: control character 0x7f in the line (binary data): the line is "
                          f"not read (expected a line of text)")
    assert len(tmfset) == 1
    with pytest.raises(TmfError, match="binary data"):
        tmf.load(path, use_environment=False, tolerant=False)


@pytest.mark.parametrize("end", ["\r", "\r\n"])
def test_binary_data_after_lines_that_end_with_a_cr_is_placed_on_its_line(end):
    """A CR alone ends a line, as TMF lines are read: binary data on the fourth line of a
    CR-only file was said at 1:26 (lines were counted by LF only)."""
    text = end.join(['// a', '// b', '#typev x 1 "a"', '\x01bad', ''])
    issue = not_tmf_text(text, "x.tmf")
    assert (issue.line, issue.column) == (4, 1)
    issue = not_tmf_text(text.replace("\x01", "  \x01"), "x.tmf")
    assert (issue.line, issue.column) == (4, 3)


def test_links_are_followed_to_real_tmf_files(tmp_path):
    real = tmp_path / "elsewhere" / "x.tmf"
    real.parent.mkdir()
    real.write_text(GOOD)
    tmfs = tmp_path / "tmfs"
    tmfs.mkdir()
    os.symlink(real, tmfs / f"{GUID}.tmf")
    tmfset = tmf.load(tmfs, use_environment=False)
    assert tmfset.lookup(__import__("uuid").UUID(GUID), 10).format == "%0hello"
    assert not tmfset.issues


def test_only_regular_files_of_a_directory_are_read(tmp_path, without_blocking):
    """A FIFO or device named *.tmf or *.tmc is reported and skipped, not opened (a FIFO would
    block, a device be read to the size limit); a directory so named is skipped."""
    tmfs = tmp_path / "tmfs"
    tmfs.mkdir()
    os.mkfifo(tmfs / "pipe.tmf")
    os.mkfifo(tmfs / "pipe.tmc")
    os.symlink("/dev/zero", tmfs / "zero.tmf")
    (tmfs / "dir.tmf").mkdir()
    (tmfs / "x.tmf").write_text(GOOD)
    loaded = without_blocking(lambda: tmf.load(tmfs, use_environment=False), "loading the directory")
    loaded.load_all()
    assert len(loaded) == 1
    assert [str(issue) for issue in loaded.issues] == [
        f"{tmfs / name}: not a regular file (a device, pipe or socket): not read"
        for name in ("pipe.tmc", "pipe.tmf", "zero.tmf")]


def test_errors_in_tmf_files_quote_a_short_printable_excerpt(tmp_path):
    path = tmp_path / "x.tmf"
    bad_arg = "i, ItemLong 10 \u202e\x85reversed" + "y" * 300     # bidi override, NEL
    path.write_text(GOOD.replace("{\n}", "{\n" + bad_arg + "\n}"), encoding="utf-8")
    [issue] = tmf.load(path, use_environment=False).issues
    where, shown, caret = str(issue).split("\n")
    assert where.startswith(f"{path}:5:13: ")
    assert "\u202e" not in shown and "\x85" not in shown and "\\u202e\\x85reversed" in shown
    assert len(shown) <= SHOWN_LINE + 3 and shown.endswith("...")
    assert shown[len(caret) - 1:].startswith("10")                # the caret under the column


def test_terminal_controls_make_a_file_binary(tmp_path):
    path = tmp_path / "x.tmf"
    path.write_text(GOOD.replace("{\n}", "{\ni, ItemLong \x1b]0;pwned\x07 -- 10\n}"))
    [issue] = tmf.load(path, use_environment=False).issues
    assert str(issue) == (f"{path}:5:13: control character 0x1b in the line (binary data): the line is "
                          f"not read (expected a line of text)")
