"""Capturing a C program's provider: samples/c_program's wppdemo, built with the core's C
sources as a C user builds it, runs as another process with no session of its own; the
capture enables its control GUID and decodes with the sample's TMF."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import uuid

import pytest

from wpptrace.provider.tracing import TRACE_LEVEL_WARNING
from wpptrace.testing import capture

REPO = pathlib.Path(__file__).resolve().parents[2]
SAMPLE = REPO / "samples" / "c_program"
CONTROL_GUID = uuid.UUID("b7c1e3d2-5a4f-4e6b-9c8d-7f6e5d4c3b2a")
TRACE_IO, TRACE_NET = 2, 4
EXPECTED = (SAMPLE / "expected.txt").read_text().splitlines()


@pytest.fixture(scope="module")
def wppdemo(tmp_path_factory) -> pathlib.Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    assert cc, "a C compiler is needed (the extension itself is built with one)"
    out = tmp_path_factory.mktemp("wppdemo") / "wppdemo"
    subprocess.run([cc, "-O2", "-std=gnu11", "-Wall", "-Wextra", "-I", str(REPO / "src/wpptrace/include"),
                    "-I", str(REPO / "provider/csrc"), str(SAMPLE / "wppdemo.c"),
                    *map(str, sorted((REPO / "provider/csrc").glob("etw_*.c"))), "-pthread",
                    "-o", str(out)], check=True)
    return out


def run_provider(program: pathlib.Path) -> int:
    child = subprocess.Popen([str(program), "--provider"])
    assert child.wait(timeout=60) == 0
    return child.pid


def test_a_c_programs_provider_in_another_process(wppdemo) -> None:
    with capture(CONTROL_GUID, tmf=SAMPLE / "tmf") as cap:
        pid = run_provider(wppdemo)
    assert cap.lost == 0 and cap.errors == []
    assert cap.texts == EXPECTED
    assert {m.pid for m in cap.messages} == {pid} and pid != os.getpid()
    opened = cap.assert_logged("opened %s with %d bytes", "beta.dat", 200)[0]
    assert opened.args.names == ("names[i]", "100 * (i + 1)") and opened.function == "read_files"
    assert cap.assert_logged("read %d into buffer %p", 1, 0x7FF000002000)[0].level == 5
    cap.assert_logged("link status %!STATUS! after %d tries", 0xC000020C, 3, flags="TRACE_NET")


def test_flags_and_level_reach_the_c_program(wppdemo) -> None:
    with capture(str(CONTROL_GUID), tmf=[SAMPLE / "tmf"], flags=TRACE_IO | TRACE_NET,
                 level=TRACE_LEVEL_WARNING) as cap:
        run_provider(wppdemo)
    assert cap.texts == ["link status 0xc000020c(STATUS_CONNECTION_DISCONNECTED) after 3 tries"]


def test_the_program_runs_with_no_session_enabling_it(wppdemo) -> None:
    run_provider(wppdemo)                        # every TraceEvents skipped, exit status 0
