"""fmt keeps the memory a run frees for its next chunks: the same blocks again cost no page
faults (each chunk's rows and text would otherwise come back as fresh pages)."""
from __future__ import annotations

import json
import subprocess
import sys

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

if sys.argv[1] in ("held", "live"):
    with cli_fmt._held_heap(sys.argv[1] == "held"):
        print(json.dumps(rounds()))
else:
    print(json.dumps(rounds()))
"""


def _rounds(mode: str) -> tuple[int, int]:
    done = subprocess.run([sys.executable, "-c", _ROUNDS, mode], capture_output=True, text=True,
                          check=True)
    first, later = json.loads(done.stdout)
    return first, later


def test_a_run_reuses_the_memory_it_freed():
    first, later = _rounds("held")
    assert first > 500                          # the first chunk's pages: fresh
    assert later < first // 10, (first, later)  # twenty more chunks: the same pages again


def test_without_holding_the_same_blocks_fault_again():
    """What holding is for (glibc's default gives a freed top back to the kernel)."""
    first, later = _rounds("plain")
    assert later > 5 * first, (first, later)


def test_a_live_view_gives_what_it_frees_back():
    """A live view runs for hours: what it frees is not held for it."""
    first, later = _rounds("live")
    assert later > 5 * first, (first, later)
