#!/usr/bin/env python3
"""Where ``fmt -j 2``'s page faults after the fork fall, by when the page was made: how many
copy-on-write copies forking earlier could save.

One cold ``-j 2`` run (fmt's program cache off) of the bench_fmt.py unique-argument file, text
to a file, under ``perf record -e exceptions:page_fault_user``. The run notes which of its
writable pages are present (``/proc/self/pagemap``) at three points: when the process starts
(the interpreter's own), where ``run_fmt`` starts (after the command's imports) and just before
the worker's fork. Each fault after the fork, in either process, is then counted by its page:
one present at the fork is shared by the two processes (a write copies it, about 3.4 us, unless
the other process has its own copy already), counted by the first point it was present at; any
other page is fresh (0.5-1 us). Forking at some point can only spare the copies of pages made
after it, and the process forked there does again, by itself, what the parent did between that
point and the fork.

Counts, not times: they change little with the machine's load. A page present at two points
may have been freed and made again between them (counted at the first). Needs perf (with
tracepoints readable: ``perf_event_paranoid`` 2 or less, or root).

Usage: python3 benchmarks/bench_fork_pages.py [--events N] [--runs N (default 1)]
"""
from __future__ import annotations

# only what the interpreter has imported at its start: the run's first snapshot is taken
# before anything else is imported (the others are imported where they are used)
import collections
import os
import sys
import time

_PAGE = 4096
_buffer = bytearray(8 * 4096)       # made once: a snapshot adds few pages of its own


def snapshot(path: str) -> None:
    """This process's writable mappings and their pagemap entries, into ``path`` (and its
    mappings, as ``/proc/self/maps`` says, into ``path``.maps)."""
    view = memoryview(_buffer)
    with open("/proc/self/maps", "rb") as f:
        maps = f.read()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    pagemap = os.open("/proc/self/pagemap", os.O_RDONLY)
    try:
        for line in maps.splitlines():
            fields = line.split()
            if not fields[1].startswith(b"rw"):
                continue
            lo, hi = (int(x, 16) for x in fields[0].split(b"-"))
            if hi - lo > 1 << 30:       # reserved, not used (nothing of fmt's is that large)
                continue
            os.write(fd, lo.to_bytes(8, "little") + hi.to_bytes(8, "little"))
            at = lo
            while at < hi:
                pages = min(hi - at, len(_buffer) // 8 * _PAGE) // _PAGE
                got = os.preadv(pagemap, [view[:8 * pages]], at // _PAGE * 8)
                os.write(fd, view[:got])
                at += pages * _PAGE
    finally:
        os.close(pagemap)
        os.close(fd)
    with open(path + ".maps", "wb") as f:
        f.write(maps)


def child(path: str, output: str, tmf_dir: str, notes: str) -> int:
    """``--child``: the command's run (``wpptrace fmt -j 2``), its page snapshots and the
    fork's time and pids in ``notes``."""
    snapshot(os.path.join(notes, "start"))
    from wpptrace import cli
    from wpptrace.decoder import cli_fmt

    fork = os.fork

    def noted_fork() -> int:
        snapshot(os.path.join(notes, "fork"))
        when = time.clock_gettime(time.CLOCK_MONOTONIC)
        pid = fork()
        if pid:
            with open(os.path.join(notes, "pids"), "w") as f:
                f.write(f"{os.getpid()} {pid} {when}\n")
        return pid

    run_fmt = cli_fmt.run_fmt

    def noted_run_fmt(opts):
        snapshot(os.path.join(notes, "run_fmt"))
        return run_fmt(opts)

    os.fork, cli_fmt.run_fmt = noted_fork, noted_run_fmt
    sys.argv = ["wpptrace", "fmt", "-j", "2", "-p", tmf_dir, "-o", output, "--summary", os.devnull,
                "--progress", "never", path]
    return cli.entry()


def present(path: str) -> set[int]:
    """The page numbers a snapshot found present."""
    import struct

    pages = set()
    with open(path, "rb") as f:
        data = f.read()
    at = 0
    while at < len(data):
        lo, hi = struct.unpack_from("<QQ", data, at)
        at += 16
        count = (hi - lo) // _PAGE
        for i, entry in enumerate(struct.unpack_from(f"<{count}Q", data, at)):
            if entry >> 63:
                pages.add(lo // _PAGE + i)
        at += 8 * count
    return pages


def mapping_names(path: str) -> list[tuple[int, int, str]]:
    regions = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = line.split()
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5] if len(fields) > 5 else ""
            base = name.rsplit("/", 1)[-1]
            regions.append((lo, hi, "libpython" if base.startswith(("libpython", "python3")) else
                            "heap" if name == "[heap]" else "anonymous" if not name else "other"))
    return regions


def count(notes: str, events_file: str) -> collections.Counter:
    """(process, when the page was made, mapping) -> faults after the fork."""
    import subprocess

    start, run_fmt, fork = (present(os.path.join(notes, name)) for name in ("start", "run_fmt", "fork"))
    regions = mapping_names(os.path.join(notes, "fork.maps"))
    with open(os.path.join(notes, "pids")) as f:
        parent, _worker, forked = f.read().split()
    script = subprocess.run(["perf", "script", "-i", events_file, "-F", "pid,time,trace"],
                            capture_output=True, text=True, check=True).stdout
    counts: collections.Counter = collections.Counter()
    for line in script.splitlines():
        fields = line.split()
        pid, when = fields[0], float(fields[1].rstrip(":"))
        address = int(fields[2].partition("=")[2], 16)
        who = "parent" if pid == parent else "worker"
        if who == "parent" and when < float(forked):
            counts[who, "before the fork", ""] += 1
            continue
        page = address // _PAGE
        made = ("fresh" if page not in fork else "at start" if page in start else
                "imports" if page in run_fmt else "run_fmt")
        where = next((name for lo, hi, name in regions if lo <= address < hi), "")
        counts[who, made, where if made != "fresh" else ""] += 1
    return counts


_MADE = (("at start", "made before the command's imports (the interpreter's start)"),
         ("imports", "made by the command's imports"),
         ("run_fmt", "made in run_fmt before the fork"),
         ("fresh", "fresh pages (not there at the fork)"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(*argv[1:5])
    import argparse
    import shutil
    import subprocess
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args(argv)
    if shutil.which("perf") is None:
        print("perf is needed")
        return 2
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bench_fmt

    path = bench_fmt._cached(f"unique-v{bench_fmt.UNIQUE_VERSION}", args.events, bench_fmt.generate_unique)
    env = dict(bench_fmt._installed_env(), PYTHONHASHSEED="0")
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            events = os.path.join(tmp, "perf.data")
            subprocess.run(["perf", "record", "-q", "-k", "CLOCK_MONOTONIC", "-e",
                            "exceptions:page_fault_user", "-o", events, "--", sys.executable,
                            __file__, "--child", str(path), os.path.join(tmp, "out.txt"),
                            str(bench_fmt.TMF_DIR), tmp], check=True, env=env)
            counts = count(tmp, events)
        print(f"run {run + 1}: cold fmt -j 2, {args.events:,} unique-argument events, text to a "
              f"file; user page faults (the parent's before the fork: "
              f"{counts['parent', 'before the fork', '']:,})")
        for who in ("parent", "worker"):
            print(f" {who}, after the fork:")
            for made, label in _MADE:
                parts = sorted(((n, where) for (w, m, where), n in counts.items()
                                if w == who and m == made), reverse=True)
                total = sum(n for n, _ in parts)
                split = ", ".join(f"{where} {n:,}" for n, where in parts if where)
                print(f"  {total:6,}  {label}{f' ({split})' if split else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
