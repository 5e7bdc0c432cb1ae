"""fmt's command lines keep the memory a run frees for its next chunks: the same blocks again
cost no page faults (each chunk's rows and text would otherwise come back as fresh pages).
Holding is process-wide and cannot be undone exactly, so only a command line's own process
holds, for a file run; a library caller's process and a live view keep glibc's defaults."""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
from fmthelp import run_fmt_capture

from wpptrace.decoder import _hazmat, cli_fmt, tracefmt

_ROUNDS = r"""
import json, resource, sys
from wpptrace.decoder import cli_fmt

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def chunk():                     # a chunk's blocks: allocated, then freed
    blocks = [bytearray(700_000) for _ in range(4)]
    del blocks

def rounds():
    before = faults()
    chunk()
    first = faults() - before
    before = faults()
    for _ in range(20):
        chunk()
    return first, faults() - before

with cli_fmt._held_heap(sys.argv[1] == "held"):
    print(json.dumps(rounds()))
"""


def _rounds(mode: str) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True,
                          check=True)
    first, later = json.loads(done.stdout)
    return first, later


def _glibc() -> bool:
    return subprocess.run([sys.executable, "-c", "from wpptrace.decoder._hazmat import hold_heap;"
                           " raise SystemExit(0 if hold_heap(True) else 1)"]).returncode == 0


def test_a_held_run_reuses_the_memory_it_freed():
    if not _glibc():
        pytest.skip("the allocator cannot be told (not glibc): nothing is held")
    first, later = _rounds("held")
    assert first > 500                          # the first chunk's pages: fresh
    assert later < first // 10, (first, later)  # twenty more chunks: the same pages again


def test_without_holding_the_same_blocks_fault_again():
    """What holding is for (glibc's default gives a freed top back to the kernel)."""
    first, later = _rounds("plain")
    assert later > 5 * first, (first, later)


@pytest.fixture()
def holds(monkeypatch) -> list[bool]:
    calls: list[bool] = []

    def hold_heap(hold: bool) -> bool:
        calls.append(hold)
        return True
    monkeypatch.setattr(_hazmat, "hold_heap", hold_heap)
    return calls


def test_only_a_command_lines_file_run_holds(driver, tmp_path, holds):
    path, tmf_dir = driver
    out = str(tmp_path / "out.txt")
    assert run_fmt_capture(path, tmf_dirs=[tmf_dir], output=out, progress="never")[0] == 0
    assert holds == []                          # a library caller's process: left alone
    assert run_fmt_capture(path, tmf_dirs=[tmf_dir], output=out, progress="never",
                           hold_heap=True)[0] == 0
    assert holds == [True, False]               # held for the run, defaults after
    run_fmt_capture(realtime="no-such-session", hold_heap=True)
    assert holds == [True, False]               # a live view: never held


def test_both_command_lines_ask_for_it(monkeypatch):
    seen = []
    monkeypatch.setattr(cli_fmt, "run_fmt", lambda opts, *a, **k: seen.append(opts) or 0)
    monkeypatch.setattr(tracefmt, "run_fmt", lambda opts, *a, **k: seen.append(opts) or 0)
    parser = argparse.ArgumentParser()
    cli_fmt.add_arguments(parser)
    cli_fmt.run(parser.parse_args(["x.etl"]))
    tracefmt.main(["x.etl"])
    assert [opts.hold_heap for opts in seen] == [True, True]
