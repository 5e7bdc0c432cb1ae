"""``fmt -j 2`` over a file of many distinct messages (25,000 of one GUID, each logged twice):
a worker's messages and their counts, sent to the parent with each window's end or with its
results, are far more than a pipe holds (64 KiB); the worker waits for room while the parent
reads, and the run ends with the output, the summary and the counts of ``-j 1``. Output to a
file (each process writes its windows at their places) and to a pipe (the parent appends the
workers' windows)."""
from __future__ import annotations

import subprocess
import sys
import uuid

import etlgen

GUID = uuid.UUID("3a5e0000-0000-4000-8000-00000000d1ff")
MESSAGES = 25_000


def _trace(tmp_path):
    folder = tmp_path / "tmf"
    folder.mkdir()
    entries = "".join(f'#typev many{n} {n} "%0 message {n} n=%10!d!"\n{{\nn, ItemLong -- 10\n}}\n'
                      for n in range(10, 10 + MESSAGES))
    (folder / f"{GUID}.tmf").write_text(f"{GUID} many // SRC=many.c\n{entries}", encoding="ascii")
    rows = [(GUID, 10 + k % MESSAGES, k.to_bytes(4, "little"), 0x10, 0x20, k % 2, etlgen.T0 + 100 * k)
            for k in range(2 * MESSAGES)]
    path = tmp_path / "many.etl"
    etlgen.write_messages(path, rows, nprocs=2, buffer_size=65536)
    return path, folder


def _fmt(tmp_path, path, folder, jobs: int, to_file: bool, tag: str):
    summary = tmp_path / f"summary-{tag}.txt"
    out = tmp_path / f"out-{tag}.txt"
    args = [sys.executable, "-m", "wpptrace", "fmt", str(path), "-p", str(folder), "--utc",
            "-j", str(jobs), "--summary", str(summary), "--no-cache"]
    if to_file:
        args += ["-o", str(out)]
    done = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    text = out.read_bytes() if to_file else done.stdout
    told = [line for line in summary.read_text().splitlines() if not line.startswith("Elapsed Time")]
    return done.returncode, text, done.stderr, told


def test_many_messages_go_through_the_pipe_from_worker_to_parent(tmp_path):
    path, folder = _trace(tmp_path)
    one = _fmt(tmp_path, path, folder, 1, True, "one")
    assert one[0] == 0, one[2]
    assert one[1].count(b"\n") == 2 * MESSAGES + 1 and b" message 25009 n=49999" in one[1]
    for to_file in (True, False):
        two = _fmt(tmp_path, path, folder, 2, to_file, f"two-{to_file}")
        assert two == one, (to_file, two[2])
