"""A TMF or PDB path that cannot be used (a -p folder not made yet, one entry of a ';' list, an
image without symbols, a TRACE_FORMAT_SEARCH_PATH entry) is said once, in one line, and the run
decodes with the paths that can be used (exit status 1 for a given path, a warning for the
environment's). Only when nothing is left to decode with does the run stop, the old output kept."""
from __future__ import annotations

import shutil
import struct
import uuid

import etlgen

from test_cli import run, tracefmt_cmd

EMITTER = uuid.UUID("9b93a332-c452-3e71-64f7-55130c7de2e4")     # formats in fmt_tmf
DRIVER = uuid.UUID("6f0e2a10-5b1c-4d2e-8f3a-9b4c5d6e7f80")      # formats in wpp_x64.pdb
PDB_LINE = "[Fixture_Process] processing 4 items for q0"
NO_ENV = {"TRACE_FORMAT_SEARCH_PATH": ""}


def _trace(tmp_path):
    path = tmp_path / "t.etl"
    rows = [(DRIVER, 11, struct.pack("<i", 4) + b"q0\0", 0x100, 0x200, 0, etlgen.T0 + 10_000,
             etlgen.FLAGS_WPP),
            (EMITTER, 10, struct.pack("<ii", 1, 1), 0x101, 0x200, 0, etlgen.T0 + 20_000,
             etlgen.FLAGS_WPP)]
    etlgen.write_messages(path, rows, nprocs=1, buffer_size=8192)
    return path


def _tracefmt(*args, env=NO_ENV):
    return run(tracefmt_cmd(*args, "-displayonly", "-nosummary", "-noprefix", "-q"), env=env)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line or ": warning: " in line]


def test_an_image_with_a_tmf_folder_not_made_yet_decodes_from_the_pdb(tmp_path, data_dir):
    pdb_dir = data_dir / "pdb"
    res = _tracefmt(_trace(tmp_path), "-i", pdb_dir / "wpp_x64.dll", "-r", pdb_dir,
                    "-p", tmp_path / "newtmf")
    assert res.returncode == 1
    assert _errors(res.stderr) == [f"tracefmt: error: {tmp_path / 'newtmf'}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"]
    assert PDB_LINE in res.stdout


def test_a_tmf_path_list_decodes_from_the_entries_that_exist(tmp_path, fmt_tmf):
    res = _tracefmt(_trace(tmp_path), "-p", f"{fmt_tmf};{tmp_path / 'nope'}")
    assert res.returncode == 1
    assert _errors(res.stderr) == [f"tracefmt: error: {tmp_path / 'nope'}: The system cannot find the file specified (ERROR_FILE_NOT_FOUND)"]
    lines = res.stdout.splitlines()
    assert any("WppEmitter" in line for line in lines)          # the emitter's format was read
    assert sum("Unknown" in line for line in lines) == 1        # the driver's message: no PDB


def test_an_image_list_decodes_with_the_images_whose_pdb_is_found(tmp_path, data_dir, fmt_tmf):
    pdb_dir = data_dir / "pdb"
    lonely = tmp_path / "lonely.dll"
    shutil.copy(pdb_dir / "wpp_x64.dll", lonely)
    res = _tracefmt(_trace(tmp_path), "-i", f"{pdb_dir / 'wpp_x64.dll'};{lonely}", "-p", fmt_tmf)
    assert res.returncode == 1
    errors = _errors(res.stderr)
    assert len(errors) == 1 and errors[0].startswith(f"tracefmt: error: {lonely}: ")
    assert PDB_LINE in res.stdout and "Unknown" not in res.stdout


def test_a_missing_search_path_entry_is_a_warning_and_the_others_are_read(tmp_path, fmt_tmf):
    env = {"TRACE_FORMAT_SEARCH_PATH": f"{tmp_path / 'nope'};{fmt_tmf}"}
    res = _tracefmt(_trace(tmp_path), env=env)
    assert res.returncode == 0, res.stderr
    assert _errors(res.stderr) == [f"tracefmt: warning: {tmp_path / 'nope'}: The system cannot find the "
                                   f"file specified (ERROR_FILE_NOT_FOUND) (an entry of TRACE_FORMAT_SEARCH_PATH)"]
    assert any("WppEmitter" in line for line in res.stdout.splitlines())


def test_a_missing_path_beside_a_search_path_that_gives_formats_decodes(tmp_path, fmt_tmf):
    res = _tracefmt(_trace(tmp_path), "-p", tmp_path / "nope", env={"TRACE_FORMAT_SEARCH_PATH": str(fmt_tmf)})
    assert res.returncode == 1
    assert any("WppEmitter" in line for line in res.stdout.splitlines())


def test_only_missing_paths_stop_the_run_and_keep_the_old_output(tmp_path):
    old = tmp_path / "old.txt"
    old.write_text("OLD\n")
    res = run(["-m", "wpptrace.cli", "fmt", str(_trace(tmp_path)), "-p", str(tmp_path / "nope"),
               "-o", str(old)], env=NO_ENV)
    assert res.returncode == 1 and old.read_text() == "OLD\n"
    assert res.stderr.endswith("nothing was decoded: give TMF and PDB paths that can be read; "
                               "the old output is kept\n")


def test_no_old_output_is_said_kept_when_there_was_none(tmp_path):
    never = tmp_path / "never.txt"
    res = run(["-m", "wpptrace.cli", "fmt", str(_trace(tmp_path)), "-p", str(tmp_path / "nope"),
               "-o", str(never)], env=NO_ENV)
    assert res.returncode == 1 and not never.exists()
    assert res.stderr.endswith("nothing was decoded: give TMF and PDB paths that can be read\n")
