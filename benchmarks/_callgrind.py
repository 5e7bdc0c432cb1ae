"""Instruction counts of fmt runs under callgrind, for the benchmarks that count them
(bench_jobs_work.py, bench_fmt_steps.py): the VM's speed does not move them.

Not a benchmark itself: the scripts beside it import it.
"""
from __future__ import annotations

import glob
import os
import pathlib
import re
import subprocess
import sys


def fmt_env(cache: str | None) -> dict[str, str]:
    """This environment for a counted fmt run: compiled bytecode cached as an installed
    package has it (else each run would count compiling the modules), one hash seed (dicts
    and sets in the same order in every run), fmt's program cache off, or in ``cache``."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONHASHSEED"] = "0"
    if cache is None:
        env["WPPTRACE_NO_CACHE"] = "1"
    else:
        env.pop("WPPTRACE_NO_CACHE", None)
        env["WPPTRACE_CACHE_DIR"] = cache
    return env


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
