"""The samples run and decode as their READMEs say; their TMF files parse with the TMF reader."""
from __future__ import annotations

import filecmp
import pathlib
import shutil
import subprocess

import pytest

from wpptrace.cli import main
from wpptrace.tmf import load

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"


def test_python_app_capture_decodes_with_its_committed_tmf(pp, tmp_path: pathlib.Path) -> None:
    lines = pp.decode_lines(SAMPLES / "python_app" / "app.etl", SAMPLES / "python_app" / "tmf", tmp_path)
    assert lines == [
        "indexed readme.txt: 10 bytes, sha256 9412c2d1792aa519",
        "indexed data.bin: 1024 bytes, sha256 785b0751fc2c53dc",
        "indexed empty.dat: 0 bytes, sha256 e3b0c44298fc1c14",
        "empty.dat is empty (status 0xc0000011(STATUS_END_OF_FILE))",
        "connecting to 192.0.2.7:8443",
        "session 00000000-0000-0000-0000-000000001234 published 3 entries, ok=0x00000001(true)",
        "peer answered 0x800704c7(ERROR_CANCELLED)",
        "indexed 3 files in 0.042 s",
    ]


def test_python_app_tmf_is_what_tmf_gen_writes(tmp_path: pathlib.Path) -> None:
    # The app uses WppHandler(provider=trace, flag=trace.flags.LOG): tmf gen writes the logging
    # call sites' TMF too, with that flag: every file the running app wrote, byte for byte.
    both = tmp_path / "both"
    assert main(["tmf", "gen", str(SAMPLES / "python_app" / "app.py"), "-o", str(both), "--no-registry"]) == 0
    names = sorted(p.name for p in (SAMPLES / "python_app" / "tmf").iterdir())
    assert sorted(p.name for p in both.iterdir()) == names and len(names) == 5
    assert filecmp.cmpfiles(both, SAMPLES / "python_app" / "tmf", names, shallow=False)[1:] == ([], [])
    # --no-logging: the trace calls' TMF and the control files only
    out = tmp_path / "gen"
    assert main(["tmf", "gen", str(SAMPLES / "python_app" / "app.py"), "-o", str(out), "--no-registry",
                 "--no-logging"]) == 0
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 3
    match, mismatch, errors = filecmp.cmpfiles(out, SAMPLES / "python_app" / "tmf", written, shallow=False)
    assert (mismatch, errors) == ([], [])


@pytest.mark.parametrize("directory", ["python_app/tmf", "c_program/tmf", "driver_tmf/tmf", "wpp_capture/tmf"])
def test_sample_tmf_files_parse_strictly(directory: str) -> None:
    tmfset = load(str(SAMPLES / directory), tolerant=False)
    assert len(tmfset) > 0 and tmfset.issues == []


@pytest.mark.skipif(shutil.which("cc") is None, reason="needs a C compiler")
def test_c_program_builds_runs_and_decodes(pp, tmp_path: pathlib.Path) -> None:
    exe, etl = tmp_path / "wppdemo", tmp_path / "wppdemo.etl"
    sources = sorted(str(p) for p in (REPO / "provider" / "csrc").glob("etw_*.c"))
    subprocess.run(["cc", "-O1", f"-I{REPO / 'src/wpptrace/include'}", f"-I{REPO / 'provider/csrc'}",
                    str(SAMPLES / "c_program" / "wppdemo.c"), *sources, "-pthread", "-o", str(exe)],
                   check=True, capture_output=True)
    run = subprocess.run([str(exe), str(etl)], check=True, capture_output=True, text=True)
    assert "0 events lost" in run.stdout
    lines = pp.decode_lines(etl, SAMPLES / "c_program" / "tmf", tmp_path)
    assert lines == (SAMPLES / "c_program" / "expected.txt").read_text().splitlines()
