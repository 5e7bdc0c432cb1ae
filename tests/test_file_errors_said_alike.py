"""A file a command cannot read or write is said as "PATH: <reason> (<Win32 name>)", the
file named being the one asked for: tmf gen and from-pdb said Python's "[Errno 13] Permission
denied: '<dir>/.<name>.<random>.partial'" (a temporary name) or "No such file or directory",
fmt "cannot write: Permission denied" for its output and "No space left on device" for its
summary, where its other lines give the Win32 name."""
from __future__ import annotations

import errno
import os
import pathlib

import pytest

from wpptrace import _outputs, cli

SAMPLES = pathlib.Path(__file__).resolve().parents[1] / "samples" / "wpp_capture"
ETL = SAMPLES / "wppstr-sample.etl"
APP = 'from wpptrace.provider.tracing import Provider\ntrace = Provider("A", register=False)\ntrace.info(0, "x %d", 1)\n'
DENIED = "Access is denied (ERROR_ACCESS_DENIED)"
MISSING = "The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"


@pytest.fixture
def no_new_files(monkeypatch):
    """Making a file in the output's directory is refused, as in a directory of another user."""
    def refused(directory, prefix, suffix):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.path.join(directory, prefix + "x" + suffix))

    monkeypatch.setattr(_outputs, "new_private_file", refused)


def test_tmf_gen_names_the_file_it_could_not_make(tmp_path, capsys, no_new_files):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "out").mkdir()
    assert cli.main(["tmf", "gen", str(tmp_path / "app.py"), "-o", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"wpptrace tmf gen: error: {tmp_path / 'out'}/") and err.endswith(f".tmf: {DENIED}\n")
    assert ".partial" not in err and "Errno" not in err


def test_fmt_says_its_output_cannot_be_made_with_the_win32_name(tmp_path, capsys, no_new_files):
    out = tmp_path / "o.txt"
    assert cli.main(["fmt", str(ETL), "-p", str(SAMPLES / "tmf"), "-o", str(out)]) == 1
    assert capsys.readouterr().err == f"wpptrace fmt: error: {out}: cannot write: {DENIED}\n"


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_fmt_says_a_summary_that_cannot_be_written_with_the_win32_name(tmp_path, capsys):
    assert cli.main(["fmt", str(ETL), "-p", str(SAMPLES / "tmf"), "-o", str(tmp_path / "o.txt"),
                     "--summary", "/dev/full"]) == 1
    assert capsys.readouterr().err == ("wpptrace fmt: error: /dev/full: cannot write the summary: There is not "
                                       "enough space on the disk (ERROR_DISK_FULL)\n")


def test_missing_inputs_of_from_pdb_and_gen_are_said_with_the_win32_name(tmp_path, capsys):
    missing = tmp_path / "nope"
    assert cli.main(["tmf", "from-pdb", "-o", str(tmp_path / "o"), str(missing)]) == 1
    assert capsys.readouterr().err == f"wpptrace tmf from-pdb: error: {missing}: {MISSING}\n"
    assert cli.main(["tmf", "gen", "-o", str(tmp_path / "o"), f"{missing}.py"]) == 1
    assert capsys.readouterr().err.startswith(f"wpptrace tmf gen: {missing}.py: cannot read source: {MISSING}\n")


@pytest.mark.parametrize("argv", [
    ["fmt", "{missing}"], ["dump", "{missing}"], ["tmf", "from-pdb", "-o", "{out}", "{missing}"],
    ["tmf", "show", "{missing}"], ["fmt", str(ETL), "-p", "{missing}"], ["fmt", str(ETL), "--tmf", "{missing}"],
    ["fmt", str(ETL), "--pdb", "{missing}"], ["session", "record", "{missing}"],
])
def test_a_missing_input_is_said_alike_by_every_command(tmp_path, capsys, argv):
    """One wording for a file or folder given that is not there: its path once, then the
    Win32 message and name (no command's own "no such file", "No such TMF file or directory")."""
    missing = str(tmp_path / "nope")
    code = cli.main([arg.format(missing=missing, out=tmp_path / "o") for arg in argv])
    line = next(line for line in capsys.readouterr().err.splitlines() if missing in line)
    assert code in (1, 2)
    assert line.endswith(MISSING) and line.count(missing) == 1, line


def test_a_missing_directory_is_said_alike_by_fmt_collect_and_session(tmp_path, capsys):
    """An output whose directory is not there: "there is no directory D" from fmt, collect and
    session start alike (session said "directory D does not exist")."""
    from wpptrace.provider.session_cli import SessionError, check_logfile

    nodir = tmp_path / "no"
    assert cli.main(["fmt", str(ETL), "-p", str(SAMPLES / "tmf"), "-o", str(nodir / "x.txt")]) == 1
    assert f"there is no directory {nodir};" in capsys.readouterr().err
    with pytest.raises(SessionError) as caught:
        check_logfile(str(nodir / "x.etl"))
    assert str(caught.value) == f"{nodir / 'x.etl'}: there is no directory {nodir}"
