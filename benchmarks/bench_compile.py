#!/usr/bin/env python3
"""What ``wpptrace fmt`` pays per message before it prints one: compiling it, or installing
it from a record.

Over the 1,572 messages with arguments of the corpus driver TMFs (the messages of
bench_fmt.py's unique-argument file), in a fresh process each time, as a ``fmt`` run pays it:

* scan: every TMF file of those messages read and split into entries (per file, not per
  message: the part of compiling ``-j`` processes cannot share);
* compile: every message's program made as fmt makes it on a cold run, from a TMF set just
  listed: files read and scanned, entries parsed, programs made (by the C compiler of
  ``tmf/native_compile.py``, or in Python for the messages it declines) and registered (the
  messages in a fixed shuffled order, as a trace first uses them);
* python: the same with every program made in Python (layouts, plans, ``ProgramPlan.encode``):
  what the C compiler saves;
* install: every message's program registered from the record another decoder made, as a
  run does from fmt's program cache;
* share: the same from the records another decoder published in a ``ProgramShare`` table, as
  a ``fmt -j`` process does from the others';
* publish: every message claimed in a ``ProgramShare`` table, compiled and its record
  published, as the ``fmt -j`` process that first needs a message does (against compile: what
  only ``-j`` pays for the messages it compiles).

Prints CPU microseconds per message (median of ``--repeat`` fresh processes; the VM is
shared, so compare runs made close together) and, with ``--callgrind``, instructions per
message (the measured part only, counted by callgrind; the VM's speed does not move them).

``--pair``: also how much two processes compiling at once slow each other (each round: one
compile alone, then two at once; the slower of the two against the one alone), beside the same
for a plain CPU loop: what ``fmt -j 2`` can gain on its compile part on this machine, whatever
the program.

``--modes``: the modes measured (comma-separated; all of them by default).

Usage: python3 benchmarks/bench_compile.py [--repeat N] [--callgrind] [--pair] [--modes M,...]
"""
from __future__ import annotations

import argparse
import json
import operator
import os
import pathlib
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
TMF_DIR = REPO / "tests" / "corpus" / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
MODES = ("scan", "compile", "python", "install", "share", "publish")


def _keys() -> list[tuple[bytes, int]]:
    from wpptrace import tmf

    keys = [(m.guid.bytes_le, m.number) for m in tmf.load(str(TMF_DIR)).messages() if m.args]
    random.Random(7).shuffle(keys)
    return keys


def _fresh_decoder():
    """A decoder over a TMF set just listed, the process's TMF and compiler caches empty."""
    from wpptrace import tmf
    from wpptrace.decoder.prefix import DEFAULT_PREFIX
    from wpptrace.decoder.wpp import WppDecoder
    from wpptrace.tmf import grammar, render

    render.clear_cache()
    for cached in (grammar.parse_typev, grammar.parse_arg, grammar.parse_guid_header,
                   grammar._trailer_to_pairs):
        cached.cache_clear()
    getattr(grammar, "_BLOCKS", {}).clear()
    decoder = WppDecoder(tmf.load(str(TMF_DIR), tolerant=True), prefix=DEFAULT_PREFIX)
    decoder._row_printer()
    decoder._shared_prefix()          # registered first in every fmt process
    return decoder


def child(mode: str) -> int:
    """``--child MODE``: one measurement in this fresh process; prints (messages, CPU s)."""
    from wpptrace._lazyuuid import int_of_le
    from wpptrace.decoder.cli_fmt import _few_collections
    from wpptrace.decoder.program_cache import ProgramCache

    keys = _keys()
    with _few_collections():          # as fmt compiles (its collections held off)
        if mode == "install":
            first = _fresh_decoder()
            made = ProgramCache(tempfile.gettempdir(), bytes(32))
            first.use_cache(made)
            first._cached_entries(keys)
            decoder = _fresh_decoder()
            cache = ProgramCache(tempfile.gettempdir(), bytes(32))
            cache._records = dict(made._added)
            decoder.use_cache(cache)
            run = lambda: decoder._cached_entries(keys)    # noqa: E731
        elif mode == "share":
            from wpptrace.decoder.program_share import ProgramShare

            share = ProgramShare()
            first = _fresh_decoder()
            first.share_programs(share)
            first._shared_entries(keys)                    # compiled and published
            decoder = _fresh_decoder()
            decoder.share_programs(share)
            run = lambda: decoder._shared_entries(keys)    # noqa: E731
        elif mode == "publish":
            from wpptrace.decoder.program_share import ProgramShare

            share = ProgramShare()
            share.met = True                               # no meeting: one process
            decoder = _fresh_decoder()
            decoder.share_programs(share)
            run = lambda: decoder._shared_entries(keys)    # noqa: E731
        elif mode == "scan":
            decoder = _fresh_decoder()
            guids = list(dict.fromkeys(int_of_le(guid_le) for guid_le, _n in keys))
            run = lambda: [decoder.tmfset._load_guid(guid) for guid in guids]   # noqa: E731
        else:
            if mode == "python":
                from wpptrace.decoder import wpp

                wpp._COMPILER = False     # no C compiler: every program made in Python
            decoder = _fresh_decoder()
            run = lambda: [decoder._program(decoder._raw_entry(*key)) for key in keys]  # noqa: E731
        c0 = time.process_time()
        operator.call(run)            # what callgrind counts (--toggle-collect)
        cpu = time.process_time() - c0
    if mode == "install" and cache._added or mode == "share" and share.installed != len(keys):
        raise SystemExit(f"{mode}: some messages were compiled, not installed")
    if mode == "publish" and share.compiled != len(keys):
        raise SystemExit(f"{mode}: some messages were not claimed here")
    print(json.dumps([len(keys), cpu]))
    return 0


def _run(mode: str, callgrind: str | None = None) -> tuple[int, float]:
    env = dict(os.environ, WPPTRACE_NO_CACHE="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)       # modules from their .pyc, as installed
    argv = [sys.executable, __file__, "--child", mode]
    if callgrind is not None:
        argv = ["valgrind", "--tool=callgrind", "--toggle-collect=_operator_call*",
                f"--callgrind-out-file={callgrind}"] + argv
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def _start(mode: str) -> subprocess.Popen:
    env = dict(os.environ, WPPTRACE_NO_CACHE="1")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return subprocess.Popen([sys.executable, __file__, "--child", mode], stdout=subprocess.PIPE,
                            text=True, env=env)


def _cpu_of(proc: subprocess.Popen) -> float:
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"a compile child failed ({proc.returncode})")
    return json.loads(out.splitlines()[-1])[1]


def _spin_child() -> int:
    """``--child spin``: a plain CPU loop of fixed work; prints (0, CPU s) like a compile child."""
    c0 = time.process_time()
    total = 0
    for i in range(4_000_000):
        total += i * i % 7
    print(json.dumps([0, time.process_time() - c0]))
    return 0


def pair(rounds: int) -> None:
    """Two processes at once against one alone, for compiling and for a plain loop."""
    for mode, label in (("compile", "compiling 1,572 messages"), ("spin", "a plain CPU loop")):
        ratios = []
        for _ in range(rounds):
            alone = _cpu_of(_start(mode))
            both = [_start(mode), _start(mode)]
            ratios.append(max(_cpu_of(p) for p in both) / alone)
        shown = ", ".join(f"{r:.2f}x" for r in ratios)
        print(f"  two at once, {label}: the slower took {shown} the CPU time of one alone "
              f"(median {statistics.median(ratios):.2f}x)", flush=True)


def _instructions(dump: str) -> int:
    with open(dump, errors="replace") as stream:
        for line in stream:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise ValueError(f"no summary in {dump}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return _spin_child() if argv[1] == "spin" else child(argv[1])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--callgrind", action="store_true", help="count instructions too (valgrind)")
    ap.add_argument("--pair", action="store_true", help="how much two compiling processes slow each other")
    ap.add_argument("--modes", default=",".join(MODES), help="the modes measured, comma-separated")
    args = ap.parse_args(argv)
    if args.callgrind and shutil.which("valgrind") is None:
        print("valgrind is needed for --callgrind (apt install valgrind)")
        return 2
    _run("scan")                                     # the modules' .pyc written once
    print(f"per message, over the corpus driver TMFs ({TMF_DIR.name}/):")
    for mode in args.modes.split(","):
        if mode not in MODES:
            raise SystemExit(f"no mode {mode!r} (modes: {', '.join(MODES)})")
        runs = [_run(mode) for _ in range(max(1, args.repeat))]
        n = runs[0][0]
        cpu = statistics.median(cpu for _n, cpu in runs)
        line = f"  {mode:8s} {n:,} messages: {cpu * 1e3:6.1f} ms CPU, {cpu * 1e6 / n:5.1f} us a message"
        if args.callgrind:
            with tempfile.TemporaryDirectory() as tmp:
                dump = os.path.join(tmp, "callgrind.out")
                _run(mode, dump)
                count = _instructions(dump)
            line += f", {count / 1e6:,.1f} M instructions, {count / n / 1e3:,.1f} K a message"
        print(line, flush=True)
    if args.pair:
        pair(max(1, args.repeat))
    return 0


if __name__ == "__main__":
    sys.exit(main())
