"""A frame's descriptors: the control plane keeps at most the one it asked for and closes every
other; control data cut short is a malformed frame, and nothing of it stays open."""
from __future__ import annotations

import subprocess

import pytest


@pytest.fixture(scope="session")
def ipc_descriptors(build_c_program):
    program = build_c_program("ipc_descriptors")

    def run(mode: str) -> dict[str, int]:
        out = subprocess.run([str(program), mode], capture_output=True, text=True, timeout=60,
                             check=True).stdout.split()
        return {out[i]: int(out[i + 1]) for i in range(0, len(out), 2)}
    return run


@pytest.mark.parametrize("mode, expected", [
    ("one", {"received": 1, "eproto": 0, "kept": 1, "leaked": 0}),
    ("two", {"received": 1, "eproto": 0, "kept": 1, "leaked": 0}),
    ("three", {"received": 0, "eproto": 1, "kept": 0, "leaked": 0}),
])
def test_extra_descriptors_are_closed(ipc_descriptors, mode, expected):
    assert ipc_descriptors(mode) == expected
