"""Regression: no command writes over one of its inputs, and an interrupted run never leaves
a half-written file where a good one was.

``wpptrace fmt X.etl -o X.etl`` (and ``tracefmt X.etl -o X.etl``) truncated the capture before
reading it: the run failed and the .etl was gone. Every output path of every command is now
checked against the inputs (same device and inode after following links, so symbolic and
hard links count, and standard output when it is a file) before anything is opened for
writing, and refused with one line; outputs are written to a temporary file beside the target
and renamed into place. Decoded outputs are never more readable than their inputs.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap

import pytest

from wpptrace import _outputs as outputs

DATA = os.path.join(os.path.dirname(__file__), "corpus", "wpp", "guscatalano__findneedle")  # captures + tmf/
REFUSED = "refusing to write"


def run(*args: str, cwd=None, stdout=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, stdout=stdout or subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)


def wpptrace(*args) -> list[str]:
    return ["-m", "wpptrace.cli", *map(str, args)]


def tracefmt(*args) -> list[str]:
    return ["-m", "wpptrace.decoder.tracefmt", *map(str, args)]


@pytest.fixture
def capture(tmp_path):
    path = tmp_path / "capture.etl"
    shutil.copy(os.path.join(DATA, "wppemitter-sample.etl"), path)
    path.chmod(0o600)
    return path


@pytest.fixture
def tmf_dir(tmp_path):
    path = tmp_path / "tmf"
    shutil.copytree(os.path.join(DATA, "tmf"), path)
    return path


def refused_once(proc: subprocess.CompletedProcess, prog: str, target, source) -> None:
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"{prog}: error: {REFUSED} {target}: it is the same file as the input "
                     f"{source}; nothing was written"], proc.stderr


@pytest.mark.parametrize("cli", ["wpptrace", "tracefmt"])
def test_the_input_as_output_is_refused_and_kept(capture, tmf_dir, cli):
    before = capture.read_bytes()
    if cli == "wpptrace":
        proc = run(*wpptrace("fmt", capture, "-p", tmf_dir, "-o", capture))
        refused_once(proc, "wpptrace fmt", capture, capture)
    else:
        proc = run(*tracefmt(capture, "-p", tmf_dir, "-o", capture))
        refused_once(proc, "tracefmt", capture, capture)
    assert capture.read_bytes() == before
    assert sorted(os.listdir(capture.parent)) == ["capture.etl", "tmf"]       # no summary either


def test_links_to_the_input_are_refused(capture, tmf_dir, tmp_path):
    before = capture.read_bytes()
    (tmp_path / "soft.txt").symlink_to(capture)
    os.link(capture, tmp_path / "hard.txt")
    for target in (tmp_path / "soft.txt", tmp_path / "hard.txt"):
        proc = run(*wpptrace("fmt", capture, "-p", tmf_dir, "-o", target))
        refused_once(proc, "wpptrace fmt", target, capture)
    proc = run(*wpptrace("fmt", capture, "-p", tmf_dir, "--summary", tmp_path / "hard.txt"))
    refused_once(proc, "wpptrace fmt", tmp_path / "hard.txt", capture)
    assert capture.read_bytes() == before


def test_tmf_inputs_and_two_equal_outputs_are_refused(capture, tmf_dir, tmp_path):
    tmf = next(tmf_dir.glob("*.tmf"))
    before = tmf.read_bytes()
    proc = run(*wpptrace("fmt", capture, "--tmf", tmf, "-o", tmf))
    refused_once(proc, "wpptrace fmt", tmf, tmf)
    proc = run(*wpptrace("fmt", capture, "-p", tmf_dir, "-o", tmf))
    refused_once(proc, "wpptrace fmt", tmf, tmf)
    assert tmf.read_bytes() == before
    out = tmp_path / "out.txt"
    proc = run(*wpptrace("fmt", capture, "-p", tmf_dir, "-o", out, "--summary", out))
    assert proc.returncode == 1 and not out.exists()
    assert proc.stderr.strip() == (f"wpptrace fmt: error: {REFUSED} {out}: it is the same file "
                                   f"as the output {out}; nothing was written")


def test_standard_output_appending_to_the_input_is_refused(capture, tmf_dir):
    before = capture.read_bytes()
    for args in (wpptrace("fmt", capture, "-p", tmf_dir), wpptrace("dump", capture),
                 tracefmt(capture, "-p", tmf_dir, "-displayonly")):
        with open(capture, "a") as appended:
            proc = run(*args, stdout=appended)
        assert proc.returncode == 1
        assert f"{REFUSED} to <standard output>: it is the input {capture}" in proc.stderr
        assert capture.read_bytes() == before


def test_tmf_show_does_not_write_its_listing_into_what_it_lists(tmf_dir, tmp_path):
    # `tmf show x.tmf >> x.tmf` appended its listing to the TMF (which then had 19 errors);
    # `tmf show DIR > DIR/out.tmf` made a file the next run read as a TMF
    tmf = next(tmf_dir.glob("*.tmf"))
    search = tmp_path / "search"
    shutil.copytree(tmf_dir, search)
    searched = next(search.glob("*.tmf"))
    before = {path: path.read_bytes() for path in (tmf, searched)}
    for args, target in ((["tmf", "show", tmf], tmf), (["tmf", "show", tmf_dir], tmf),
                         (["tmf", "show", tmf, "--search-path", search], searched)):
        with open(target, "a") as appended:
            proc = run(*wpptrace(*args), stdout=appended)
        assert proc.returncode == 1, args
        assert proc.stderr == (f"wpptrace tmf show: error: {REFUSED} to <standard output>: it is the "
                               f"input {target}; nothing was written\n"), args
    assert {path: path.read_bytes() for path in before} == before
    with open(tmp_path / "listing.txt", "w") as elsewhere:
        assert run(*wpptrace("tmf", "show", tmf_dir), stdout=elsewhere).returncode == 0
    assert (tmp_path / "listing.txt").stat().st_size > 0


def test_outputs_take_the_most_restrictive_mode_of_the_inputs(capture, tmf_dir, tmp_path):
    other = tmp_path / "other.etl"
    shutil.copy(os.path.join(DATA, "wppstr-sample.etl"), other)
    other.chmod(0o644)
    old = os.umask(0o022)
    try:
        for inputs, mode in (([capture], 0o600), ([other], 0o644), ([capture, other], 0o600)):
            out, summary = tmp_path / "out.txt", tmp_path / "sum.txt"
            proc = run(*wpptrace("fmt", *inputs, "-p", tmf_dir, "-o", out, "--summary", summary))
            assert proc.returncode == 0, proc.stderr
            assert (out.stat().st_mode & 0o777, summary.stat().st_mode & 0o777) == (mode, mode)
    finally:
        os.umask(old)


def test_an_interrupted_decode_leaves_the_old_output(capture, tmf_dir, tmp_path, monkeypatch):
    from wpptrace.decoder import cli_fmt, wpp

    out = tmp_path / "out.txt"
    out.write_text("the good old decode\n")

    def interrupted(self, *args, **kwargs):
        yield b"a first line\n"
        raise KeyboardInterrupt

    monkeypatch.setattr(wpp.WppDecoder, "format", interrupted)
    opts = cli_fmt.FmtOptions(files=[str(capture)], tmf_dirs=[str(tmf_dir)], output=str(out))
    with pytest.raises(KeyboardInterrupt):
        cli_fmt.run_fmt(opts)
    assert out.read_text() == "the good old decode\n"
    assert sorted(os.listdir(tmp_path)) == ["capture.etl", "out.txt", "tmf"]   # no temporary file


def test_sigterm_while_writing_leaves_the_old_file(tmp_path):
    out = tmp_path / "out.txt"
    out.write_text("old\n")
    code = textwrap.dedent(f"""
        import os, signal
        from wpptrace import _outputs
        fh = _outputs.open_output({str(out)!r}, 0o600)
        fh.write("half of a new file")
        fh.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        fh.commit()
    """)
    proc = run("-c", code)
    assert proc.returncode == 128 + signal.SIGTERM
    assert out.read_text() == "old\n" and os.listdir(tmp_path) == ["out.txt"]


def test_a_finished_output_replaces_the_old_one_through_a_link(capture, tmf_dir, tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("old\n")
    (tmp_path / "link.txt").symlink_to(real)
    proc = run(*wpptrace("fmt", capture, "-p", tmf_dir, "-o", tmp_path / "link.txt"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "link.txt").is_symlink() and "wppemitter" in real.read_text().lower()
    assert real.stat().st_mode & 0o777 == 0o600


def test_special_outputs_are_written_in_place(capture, tmf_dir):
    proc = run(*tracefmt(capture, "-p", tmf_dir, "-o", os.devnull, "-nosummary"))
    assert proc.returncode == 0, proc.stderr
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


def test_tmf_writers_refuse_to_overwrite_their_sources(tmp_path):
    app = tmp_path / "app.py"
    app.write_text('from wpptrace.provider import Provider\nP = Provider("Demo")\n'
                   'P.info("hello %d", 1)\n')
    before = app.read_bytes()
    out = tmp_path / "out"
    out.mkdir()
    (out / "Demo.mof").symlink_to(app)
    proc = run(*wpptrace("tmf", "gen", app, "-o", out))
    refused_once(proc, "wpptrace tmf gen", out / "Demo.mof", app)
    assert app.read_bytes() == before and os.listdir(out) == ["Demo.mof"]

    pdb = tmp_path / "wpp_x64.pdb"
    shutil.copy(os.path.join(os.path.dirname(__file__), "data", "pdb", "wpp_x64.pdb"), pdb)
    before = pdb.read_bytes()
    (out / "wpp_x64.mof").symlink_to(pdb)
    proc = run(*wpptrace("tmf", "from-pdb", pdb, "-o", out))
    assert proc.returncode == 1
    assert (f"wpptrace tmf from-pdb: error: {REFUSED} {out / 'wpp_x64.mof'}: it is the same "
            f"file as the input {pdb}; nothing was written") in proc.stderr
    assert pdb.read_bytes() == before and sorted(os.listdir(out)) == ["Demo.mof", "wpp_x64.mof"]


def test_session_record_never_truncates_its_script(tmp_path):
    script = tmp_path / "app.py"
    script.write_text("print('hi')\n")
    proc = run(*wpptrace("session", "record", "-o", script, script))
    refused_once(proc, "wpptrace session record", script, script)
    assert script.read_text() == "print('hi')\n"


def test_the_check_compares_files_not_names(tmp_path):
    a = tmp_path / "a"
    a.write_text("x")
    (tmp_path / "sub").mkdir()
    with pytest.raises(outputs.OutputRefused):
        outputs.check_outputs([tmp_path / "sub" / ".." / "a"], [a])
    outputs.check_outputs([tmp_path / "b", os.devnull], [a])          # new files, special files: fine
    outputs.check_outputs([os.devnull, os.devnull], [a])


def _tmf_dir_with(tmp_path, **links):
    """A TMF directory of plain files (one .TMF in capitals, one .tmc, one .pdb, a file read
    by no one) and symbolic links ``name=target`` beside them."""
    tmf = tmp_path / "tmfdir"
    tmf.mkdir()
    for name in ("a.tmf", "B.TMF", "c.tmc", "d.pdb", "notes.txt"):
        (tmf / name).write_text(name)
    for name, target in links.items():
        (tmf / name.replace("_", ".")).symlink_to(target)
    return tmf


def test_the_files_of_an_input_directory_are_inputs_however_they_are_reached(tmp_path):
    """A TMF directory's members are inputs by name, through a symbolic link (relative or
    not, to a link), or as a hard link to the output; its other files are not."""
    out = tmp_path / "out.txt"
    out.write_text("old")
    (tmp_path / "via").symlink_to("out.txt")
    tmf = _tmf_dir_with(tmp_path, x_tmf=out, y_tmc="../out.txt", z_pdb="../via")
    os.link(out, tmf / "hard.TMC")
    with pytest.raises(outputs.OutputRefused, match=f"the same file as the input {tmf}/"):
        outputs.check_outputs([out], [], input_dirs=[tmf])
    for name in ("x.tmf", "y.tmc", "z.pdb", "hard.TMC"):
        for other in {"x.tmf", "y.tmc", "z.pdb", "hard.TMC"} - {name}:
            (tmf / other).rename(tmp_path / other)
        with pytest.raises(outputs.OutputRefused, match=f"as the input {tmf / name};"):
            outputs.check_outputs([out], [], input_dirs=[tmf])
        for other in {"x.tmf", "y.tmc", "z.pdb", "hard.TMC"} - {name}:
            (tmp_path / other).rename(tmf / other)
    for name in ("a.tmf", "B.TMF", "c.tmc", "d.pdb"):
        with pytest.raises(outputs.OutputRefused, match=f"as the input {tmf / name};"):
            outputs.check_outputs([tmf / name], [], input_dirs=[tmf])
    outputs.check_outputs([tmf / "notes.txt", tmp_path / "new.txt"], [], input_dirs=[tmf])


def test_a_member_linked_to_standard_output_is_an_input_when_stdout_is_written(tmp_path):
    """A member that is a link to /dev/stdout (or /dev/fd/N) is the file that descriptor is
    on: refused as stdout's file when the text goes to stdout, or as an output named by its
    descriptor."""
    out = tmp_path / "out.txt"
    out.write_text("")
    tmf = _tmf_dir_with(tmp_path)
    (tmf / "s.tmf").symlink_to("/dev/stdout")
    with open(out, "a") as stream:
        fd = stream.fileno()
        (tmf / "n.tmf").symlink_to(f"/dev/fd/{fd}")
        # (a subprocess: this process's descriptor 1 is pytest's)
        code = textwrap.dedent(f"""
            import sys
            from wpptrace import _outputs as outputs
            try:
                outputs.check_outputs([], [], input_dirs=[{str(tmf)!r}], stdout=sys.stdout)
            except outputs.OutputRefused as refused:
                sys.stderr.write(str(refused))
        """)
        proc = subprocess.run([sys.executable, "-c", code], stdout=stream, stderr=subprocess.PIPE,
                              text=True, timeout=60)
        assert proc.returncode == 0 and proc.stderr == (
            f"refusing to write to <standard output>: it is the input {tmf / 's.tmf'}; "
            f"nothing was written"), proc.stderr
        (tmf / "s.tmf").unlink()
        with pytest.raises(outputs.OutputRefused, match=f"as the input {tmf / 'n.tmf'};"):
            outputs.check_outputs([out], [], input_dirs=[tmf])
        with pytest.raises(outputs.OutputRefused, match=f"as the input {tmf / 'n.tmf'};"):
            outputs.check_outputs([f"/dev/fd/{fd}"], [], input_dirs=[tmf])
    assert out.read_text() == ""


def test_inputs_are_looked_at_only_for_outputs_that_are_there(tmp_path, descriptor_lookups):
    """Only a member that is a symbolic link has its links walked (a plain one is the file its
    listing finds), and no input is looked at when no output is a file yet (nothing there
    can be refused)."""
    walked = descriptor_lookups
    out = tmp_path / "out.txt"
    out.write_text("")
    tmf = _tmf_dir_with(tmp_path, link_tmf="a.tmf")
    etl = tmp_path / "x.etl"
    outputs.check_outputs([out], [etl], input_dirs=[tmf])
    assert sorted(walked) == sorted([str(out), str(etl), str(tmf / "link.tmf")])
    walked.clear()
    outputs.check_outputs([tmp_path / "new.txt"], [etl], input_dirs=[tmf])
    assert walked == [str(tmp_path / "new.txt")]


def _can_exchange(directory) -> bool:
    """Whether this system and file system swap two names (asked without wpptrace)."""
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    a, b = directory / "probe-a", directory / "probe-b"
    a.write_text("a")
    b.write_text("b")
    ok = fn(-100, bytes(a), -100, bytes(b), 2) == 0 and a.read_text() == "b"
    a.unlink()
    b.unlink()
    return ok


def test_replacing_an_old_output_swaps_the_names_then_removes_the_old_file(tmp_path, monkeypatch):
    """An output over an old one is swapped into place (renameat2 RENAME_EXCHANGE): a rename
    over a file makes ext4 allocate the new file's blocks inside rename(), which cost 80 ms
    at the end of a run over a 150 MB output. The old contents go; nothing is left behind."""
    out = tmp_path / "out.txt"
    out.write_text("old\n")
    old_inode = out.stat().st_ino
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: renames.append((a, b)) or real_replace(a, b))
    fh = outputs.open_output(str(out), 0o600)
    fh.write("new\n")
    new_inode = os.fstat(fh.stream.buffer.fileno()).st_ino
    fh.commit()
    assert out.read_text() == "new\n" and out.stat().st_ino == new_inode != old_inode
    assert os.listdir(tmp_path) == ["out.txt"]
    swapped = _can_exchange(tmp_path)
    assert len(renames) == (0 if swapped else 1)  # swapped, not renamed over, where it can
    before = len(renames)
    fresh = tmp_path / "fresh.txt"                  # no old file: a plain rename
    fh = outputs.open_output(str(fresh), 0o600)
    fh.write("first\n")
    fh.commit()
    assert fresh.read_text() == "first\n" and len(renames) == before + 1
    assert sorted(os.listdir(tmp_path)) == ["fresh.txt", "out.txt"]


def test_a_commit_that_does_not_wait_removes_the_old_file_by_settle(tmp_path):
    """commit(wait=False): the new contents are in place at once; the old file, out of the
    name already, is gone once settle() returns (a large one removed by a thread, a small
    one at once); nothing else is left in the directory."""
    out = tmp_path / "out.txt"
    for size in (outputs.BACKGROUND_REMOVE_BYTES, 4000):
        with open(out, "wb") as old:
            old.truncate(size)
        fh = outputs.open_output(str(out), 0o600)
        fh.write("new\n")
        fh.commit(wait=False)
        assert out.read_text() == "new\n"
        if size < outputs.BACKGROUND_REMOVE_BYTES or not _can_exchange(tmp_path):
            assert fh._remover is None
        else:                                   # swapped: the old file is a thread's to remove
            assert fh._remover is not None
        fh.settle()
        assert fh._remover is None
        fh.close()
        assert os.listdir(tmp_path) == ["out.txt"]
    fresh = outputs.open_output(str(tmp_path / "fresh.txt"), 0o600)   # no old file
    fresh.write("first\n")
    fresh.commit(wait=False)
    fresh.settle()
    assert sorted(os.listdir(tmp_path)) == ["fresh.txt", "out.txt"]


def test_an_output_over_a_directory_is_refused_as_before(tmp_path):
    target = tmp_path / "d"
    target.mkdir()
    (target / "keep").write_text("x")
    source = tmp_path / "new.txt"
    source.write_text("new\n")
    with pytest.raises(IsADirectoryError):
        outputs.replace_file(str(source), str(target))
    assert (target / "keep").read_text() == "x" and source.read_text() == "new\n"


def test_a_new_private_file_is_new_private_and_never_followed(tmp_path, monkeypatch):
    """``new_private_file`` makes a file only its owner can read, under a name nothing had
    (a name that exists, even as a link to elsewhere, is passed over for another)."""
    fd, path = outputs.new_private_file(str(tmp_path), ".out.", ".partial")
    os.close(fd)
    name = os.path.basename(path)
    assert name.startswith(".out.") and name.endswith(".partial")
    assert os.stat(path).st_mode & 0o777 == 0o600
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("kept\n")
    taken = [b"\x00" * 6, b"\x00" * 6, b"\x01" * 6]        # two names taken, then a free one
    (tmp_path / ".x.000000000000").symlink_to(elsewhere)
    monkeypatch.setattr(outputs.os, "urandom", lambda n: taken.pop(0))
    fd, path = outputs.new_private_file(str(tmp_path), ".x.", "")
    os.close(fd)
    assert os.path.basename(path) == ".x.010101010101" and not taken
    assert elsewhere.read_text() == "kept\n"

