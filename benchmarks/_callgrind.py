"""Instruction counts of fmt runs under callgrind, for the benchmarks that count them
(bench_jobs_work.py, bench_fmt_steps.py): the VM's speed does not move them.

Not a benchmark itself: the scripts beside it import it.
"""
from __future__ import annotations

import glob
import pathlib
import re
import subprocess
import sys


def fmt_env(cache: str | None) -> dict[str, str]:
    """The environment of a timed fmt run (bench_fmt.py's: bytecode cached as an installed
    package has it, fmt's program cache off or in ``cache``) with one hash seed, so dicts
    and sets come in the same order in every counted run."""
    from bench_fmt import _installed_env      # (this folder is on the path of its scripts)

    return dict(_installed_env(cache), PYTHONHASHSEED="0")


def instructions(out_prefix: str, argv: list[str], env: dict[str, str],
                 toggle: str | None = None) -> list[int]:
    """Run ``argv`` (a Python script and its arguments) under callgrind: the instructions of
    each of its processes, the first one started first (a forked process's count starts
    with its parent's). ``toggle``: count only inside calls of this function
    (``--toggle-collect``)."""
    options = [f"--toggle-collect={toggle}"] if toggle else []
    subprocess.run(["valgrind", "--tool=callgrind", *options, f"--callgrind-out-file={out_prefix}.%p",
                    sys.executable, *argv],
                   check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    counts = []
    for dump in sorted(glob.glob(f"{out_prefix}.[0-9]*"), key=lambda p: int(p.rsplit(".", 1)[1])):
        text = pathlib.Path(dump).read_text(errors="replace")
        counts.append(int(re.search(r"^summary: (\d+)", text, re.M).group(1)))
    return counts
