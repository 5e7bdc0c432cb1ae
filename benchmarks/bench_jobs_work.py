#!/usr/bin/env python3
"""How much ``fmt -j 2`` can gain on two cores that do not slow each other: its work counted
in instructions (callgrind), which the speed of a shared VM does not change.

On the bench_fmt.py unique-argument file (1M events over the corpus driver TMFs, text to a
file), four runs under callgrind, each a fresh process:

* the command's imports only (stopped where ``run_fmt`` starts), and ``-j 2`` stopped where
  it forks its worker: what comes before the fork is done once, by one process;
* ``-j 1`` whole, and ``-j 2`` whole (one count per process; a forked process's count starts
  with its parent's, so the part before the fork is taken off both).

All four with fmt's program cache off (every process compiles what it uses, as a first run
over a TMF set does), then the last three again with it warm (a private cache that a run
before them filled: nothing compiled, as a second run over the same TMF files).

It prints the instructions of ``-j 1`` after the imports, those of each ``-j 2`` process after
the fork, and the speed-up two equal cores would give: ``-j 1`` / (before the fork + half of
what the two processes run after it; the windows go to whichever process is free, so on
equal cores the work splits evenly). Callgrind counts user-space instructions only, so this is
an upper bound: the kernel's part is not in it (writing the output into the page cache, and
the page clears and copy-on-write copies of memory a process touches first after the fork:
``perf record -e cpu-clock`` shows those, e.g. ``clear_page_erms``). Which process compiles a
message both need, and which takes which window, is decided by which gets there first (under
callgrind too), so the two processes' shares move between runs; their sum moves little.

Needs valgrind. Usage: python3 benchmarks/bench_jobs_work.py [--events N]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import bench_fmt  # (this folder is on the path of its scripts)
from _callgrind import fmt_env, instructions

REPO = pathlib.Path(__file__).resolve().parent.parent
#: the folders of the product's Python code (installed in place: ``pip install -e .``)
PACKAGES = ("src/wpptrace", "decoder", "tmf", "provider")


def child(stop: str, path: str, jobs: int, output: str) -> int:
    """``--child``: one fmt run, or its start up to ``stop`` ("run": run_fmt; "fork": the
    worker's fork), then the process ends."""
    from wpptrace.decoder import cli_fmt, parallel

    if stop == "run":
        os._exit(0)
    if stop == "fork":
        parallel._Worker.start = classmethod(lambda cls, *args, **kwargs: os._exit(0))
    opts = cli_fmt.FmtOptions(files=[path], tmf_dirs=[str(bench_fmt.TMF_DIR)], output=output,
                              summary=os.devnull, progress="never", jobs=jobs, hold_heap=True)
    return cli_fmt.run_fmt(opts)


def counted(tmp: str, name: str, stop: str, path: pathlib.Path, jobs: int,
            cache: str | None = None) -> list[int]:
    """Instructions of every process of one run (the first one started first); ``cache``: the
    program cache directory it uses (None: the cache off)."""
    return instructions(os.path.join(tmp, name),
                        [__file__, "--child", stop, str(path), str(jobs), os.path.join(tmp, f"{name}.txt")],
                        fmt_env(cache))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[2], int(argv[3]), argv[4])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed (apt install valgrind)")
        return 2
    # every module compiled to bytecode first: a stale .pyc would put compiling the module into
    # the first run counted (the imports), and every count taken off it would be wrong
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(REPO / part) for part in PACKAGES)],
                   check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                   stdout=subprocess.DEVNULL)
    bench = bench_fmt
    path = bench._cached(f"unique-v{bench.UNIQUE_VERSION}", args.events, bench.generate_unique)
    with tempfile.TemporaryDirectory() as tmp:
        [imports] = counted(tmp, "imports", "run", path, 1)
        cold = [counted(tmp, "prefork", "fork", path, 2)[0], *counted(tmp, "j1", "none", path, 1),
                *counted(tmp, "j2", "none", path, 2)]
        cache = os.path.join(tmp, "cache")
        subprocess.run([sys.executable, __file__, "--child", "none", str(path), "1",
                        os.path.join(tmp, "fill.txt")], check=True,
                       env={k: v for k, v in os.environ.items() if k != "WPPTRACE_NO_CACHE"}
                       | {"WPPTRACE_CACHE_DIR": cache})
        warm = [counted(tmp, "prefork-warm", "fork", path, 2, cache)[0],
                *counted(tmp, "j1-warm", "none", path, 1, cache),
                *counted(tmp, "j2-warm", "none", path, 2, cache)]
    print(f"fmt text to a file, {args.events:,} unique-argument events; instructions (callgrind), "
          f"the command's imports ({imports / 1e6:,.0f} M) left out:")
    for label, (before_fork, one, parent, worker) in (("program cache off", cold),
                                                      ("program cache warm", warm)):
        work = one - imports
        serial = before_fork - imports
        after = (parent - before_fork, worker - before_fork)
        even = serial + sum(after) / 2
        extra = serial + sum(after) - work
        print(f" {label}:")
        print(f"  -j 1: {work / 1e6:,.0f} M")
        print(f"  -j 2: {serial / 1e6:,.0f} M before the fork, then {after[0] / 1e6:,.0f} M in this "
              f"process (its windows, appending the others') and {after[1] / 1e6:,.0f} M in "
              f"the worker: {extra / 1e6:+,.0f} M ({extra / work:+.0%}) against -j 1 in all")
        print(f"  two equal cores that do not slow each other: -j 2 at most {work / even:.2f}x "
              f"(-j 1 / (before the fork + half of the rest))")
    return 0


if __name__ == "__main__":
    sys.exit(main())
