#!/usr/bin/env python3
"""Instructions of each fixed step of a ``wpptrace fmt`` run (callgrind), the ones before its
first record and after its last, which every run pays whatever its size and which ``fmt -j``
runs in one process.

Each step is counted in its own run under callgrind: the step's function is called through
``operator.call`` and callgrind collects only inside that C function
(``--toggle-collect=_operator_call``), so the count is the step's inclusive instructions
(imports it makes included). Steps: ``load_tmfs``, ``WppDecoder()``, ``_open_cache`` (and
its ``cache_key``), ``_Input``, ``_open_output``, ``_writer``, the output's ``commit``,
``ProgramCache.save``, ``_finish`` (and its ``summary_table``, ``summary_text``,
``write_text``), installing messages from fmt's program cache or another process
(``_cached_entries``, ``_shared_entries``), ``count_marks``, and ``run_fmt`` whole; with
``-j``, the end of ``decode_parallel`` too: what a worker sends once its last window is
decoded (``_results``, in the worker), letting the workers go (``release``), the workers'
messages added to the program cache (``keep_shared``), their counts and read logs added to
this process's (``_Merge.end``; ``windows`` as the results come; the messages of the
workers' keys found while this process waits, ``find_ahead``); and
``decode_parallel``'s pieces: the buffer index
(``buffer_index``, ``streams``), the cuts, the output's places, the fork, a window
(``_decode_window``, every one of the process), the messages between the processes
(``_Outbox.send``, ``receive``; the keys sent, ``message_keys``), the wait for the held windows' places (``write_all``), for the
workers' results (``_Assembly.finish``, with ``prepare_summary`` in it), the windows' starts
checked (``first_started_wrong``), the work done before this process's last windows (``ahead``:
the summary's rows, ``summary_rows``) and at its first wait (``idle``), and ``decode_parallel`` whole; and the TMF reading: the
messages looked up (``TmfSet.lookup``, the files loaded and entries parsed in it), a file loaded
(``_load_tmf``), split at its entries (``split_text``), its entries deferred (``defer_run``), an argument block read (``_block_arguments``) and an entry
made from its tile (``_tile_message``). With ``-j 2`` there is a number per process, this one's first: a
forked worker's count starts with what its parent had collected before the fork (a step
before the fork shows twice; ``run_fmt``'s second number is the worker's own part plus that).
The ``fork`` step's second number is the worker's whole run: ``_Worker.start`` never returns
in the worker (it decodes its windows and ends inside that call), so the first number, this
process's, is the fork's cost.

Every run with fmt's program cache off and warm (``--cache``: a private cache a first run filled), on the
bench_fmt.py unique-argument file (text to a file, a summary file), over the corpus driver
TMFs. Needs valgrind.

With ``--worker-last`` (``-j``), this process takes no window after its first: it waits while the
workers decode the rest and they end last, as in most runs (the steps of the run's end then count
what the parent does once their last results are in; without it, which process ends last varies).
With ``--parent-last``, the workers take none after theirs: this process decodes the rest and ends
last, their results all in (its end then does what its wait would have done).

Usage: python3 benchmarks/bench_fmt_steps.py [--events N (default 1000)] [--jobs N]
       [--steps load_tmfs,finish,...] [--cache both|off|warm] [--worker-last | --parent-last]
"""
from __future__ import annotations

import argparse
import operator
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import bench_fmt  # (this folder is on the path of its scripts)
from _callgrind import fmt_env, instructions

REPO = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("src/wpptrace", "decoder", "tmf", "provider")

#: step name: (module, owner attribute path or None, function name)
STEPS = {
    "load_tmfs": ("wpptrace.decoder.cli_fmt", None, "load_tmfs"),
    "decoder": ("wpptrace.decoder.wpp", "WppDecoder", "__init__"),
    "open_cache": ("wpptrace.decoder.cli_fmt", None, "_open_cache"),
    "cache_key": ("wpptrace.decoder.program_cache", None, "cache_key"),
    "input": ("wpptrace.decoder.cli_fmt", None, "_Input"),
    "open_output": ("wpptrace.decoder.cli_fmt", None, "_open_output"),
    "writer": ("wpptrace.decoder.cli_fmt", None, "_writer"),
    "commit": ("wpptrace._outputs", "AtomicOutput", "commit"),
    "save": ("wpptrace.decoder.program_cache", "ProgramCache", "save"),
    "results": ("wpptrace.decoder.parallel", None, "_results"),
    "release": ("wpptrace.decoder.parallel", "_Worker", "release"),
    "keep_shared": ("wpptrace.decoder.parallel", None, "_keep_shared"),
    "merge": ("wpptrace.decoder.parallel", "_Merge", "end"),
    "merge_windows": ("wpptrace.decoder.parallel", "_Merge", "windows"),
    "find_ahead": ("wpptrace.decoder.parallel", "_Merge", "find_ahead"),
    "plain_counts": ("wpptrace.decoder.wpp", "WppDecoder", "add_plain_message_counts"),
    "install_counted": ("wpptrace.decoder.wpp", "WppDecoder", "_install_counted"),
    "pump": ("wpptrace.decoder.parallel", "_Assembly", "pump"),
    "buffer_index": ("wpptrace.decoder.etlfile", "EtlFile", "buffer_index"),
    "streams": ("wpptrace.decoder.engine", "FileSource", "streams"),
    "cut_keys": ("wpptrace.decoder.parallel", None, "cut_keys"),
    "places": ("wpptrace.decoder.parallel", "_Places", "for_output"),
    "fork": ("wpptrace.decoder.parallel", "_Worker", "start"),
    "window": ("wpptrace.decoder.parallel", None, "_decode_window"),
    "send": ("wpptrace.decoder.parallel", "_Outbox", "send"),
    "message_keys": ("wpptrace.decoder.wpp", "WppDecoder", "plain_message_keys"),
    "receive": ("wpptrace.decoder.parallel", "_Worker", "receive"),
    "write_all": ("wpptrace.decoder.parallel", "_Places", "write_all"),
    "assembly_finish": ("wpptrace.decoder.parallel", "_Assembly", "finish"),
    "started_wrong": ("wpptrace.decoder.parallel", "_Assembly", "first_started_wrong"),
    "prepare_summary": ("wpptrace.decoder.wpp", "WppDecoder", "prepare_summary"),
    "summary_rows": ("wpptrace.decoder.wpp", "WppDecoder", "prepare_summary_rows"),
    "ahead": ("wpptrace.decoder.parallel", "_Assembly", "ahead_of"),
    "idle": ("wpptrace.decoder.parallel", "_Assembly", "_idle"),
    "places_close": ("wpptrace.decoder.parallel", "_Places", "close"),
    "decode_parallel": ("wpptrace.decoder.parallel", None, "decode_parallel"),
    "finish": ("wpptrace.decoder.cli_fmt", None, "_finish"),
    "summary_table": ("wpptrace.decoder.wpp", "WppDecoder", "summary_table"),
    "cached_entries": ("wpptrace.decoder.wpp", "WppDecoder", "_cached_entries"),
    "shared_entries": ("wpptrace.decoder.wpp", "WppDecoder", "_shared_entries"),
    "count_marks": ("wpptrace.decoder.wpp", "WppDecoder", "count_marks"),
    "summary_text": ("wpptrace.decoder.output", None, "summary_text"),
    "write_text": ("wpptrace._outputs", None, "write_text"),
    "load_tmf": ("wpptrace.tmf.loader", None, "_load_tmf"),
    "lookup": ("wpptrace.tmf.model", "TmfSet", "lookup"),
    "defer_run": ("wpptrace.tmf.model", "TmfSet", "defer_run"),
    "block_arguments": ("wpptrace.tmf.grammar", None, "_block_arguments"),
    "tile_message": ("wpptrace.tmf.grammar", None, "_tile_message"),
    "split_text": ("wpptrace.tmf.grammar", None, "split_text"),
    "run_fmt": ("wpptrace.decoder.cli_fmt", None, "run_fmt"),
}


def child(step: str, path: str, jobs: int, output: str, last: str | None = None) -> int:
    """``--child``: one fmt run with ``step`` called through ``operator.call`` (``last``:
    "worker", this process takes no window after its first; "parent", the workers take none
    after theirs)."""
    import importlib

    from wpptrace.decoder import cli_fmt, parallel

    if last is not None:
        parent, real_take = os.getpid(), parallel._take
        parallel._take = lambda fd: None if (os.getpid() == parent) == (last == "worker") else real_take(fd)

    module, owner, name = STEPS[step]
    target = importlib.import_module(module)
    if owner is not None:
        target = getattr(target, owner)
    real = getattr(target, name)

    def counted(*args, **kwargs):
        return operator.call(real, *args, **kwargs)

    setattr(target, name, counted)
    opts = cli_fmt.FmtOptions(files=[path], tmf_dirs=[str(bench_fmt.TMF_DIR)], output=output,
                              summary=output + ".sum", progress="never", jobs=jobs, hold_heap=True)
    return cli_fmt.run_fmt(opts)


def counted(tmp: str, step: str, path: pathlib.Path, jobs: int, cache: str | None,
            last: str | None = None) -> list[int]:
    """Instructions of ``step`` in every process of one run (the first one started first)."""
    name = f"{step}-{'warm' if cache else 'off'}"
    return instructions(os.path.join(tmp, name),
                        [__file__, "--child", step, str(path), str(jobs), os.path.join(tmp, f"{name}.txt"),
                         *([f"--{last}-last"] if last else [])],
                        fmt_env(cache), toggle="_operator_call*")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        last = {"--worker-last": "worker", "--parent-last": "parent"}.get(argv[5]) if argv[5:] else None
        return child(argv[1], argv[2], int(argv[3]), argv[4], last)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--steps", default=",".join(STEPS))
    ap.add_argument("--cache", choices=("both", "off", "warm"), default="both",
                    help="the runs counted: program cache off, warm, or both (default)")
    ap.add_argument("--worker-last", action="store_true",
                    help="with -j: this process takes no window after its first, so it waits for the "
                         "workers and they end last (the end of the run as most runs have it)")
    ap.add_argument("--parent-last", action="store_true",
                    help="with -j: the workers take no window after their first, so this process decodes "
                         "the rest and ends last (its end then does what its wait would have)")
    args = ap.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is needed (apt install valgrind)")
        return 2
    steps = [step for step in args.steps.split(",") if step]
    unknown = [step for step in steps if step not in STEPS]
    if unknown:
        ap.error(f"unknown steps: {', '.join(unknown)} (known: {', '.join(STEPS)})")
    # every module compiled to bytecode first: a stale .pyc would count compiling a module
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(REPO / part) for part in PACKAGES)],
                   check=True, env={k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                   stdout=subprocess.DEVNULL)
    bench = bench_fmt
    path = bench._cached(f"unique-v{bench.UNIQUE_VERSION}", args.events, bench.generate_unique)
    print(f"fmt text to a file, {args.events:,} unique-argument events, -j {args.jobs}; "
          f"instructions per step (callgrind), program cache "
          f"{ {'both': 'off / warm', 'off': 'off', 'warm': 'warm'}[args.cache] }:")
    with tempfile.TemporaryDirectory() as tmp:
        cache = os.path.join(tmp, "cache")
        os.mkdir(cache, 0o700)
        fill = dict(os.environ, WPPTRACE_CACHE_DIR=cache)
        fill.pop("WPPTRACE_NO_CACHE", None)
        if args.cache != "off":
            subprocess.run([sys.executable, __file__, "--child", "run_fmt", str(path), "1",
                            os.path.join(tmp, "fill.txt")], check=True, env=fill)
        runs = {"both": (None, cache), "off": (None,), "warm": (cache,)}[args.cache]
        for step in steps:
            cells = []
            for where in runs:
                last = "worker" if args.worker_last else "parent" if args.parent_last else None
                counts = counted(tmp, step, path, args.jobs, where, last)
                cells.append(", ".join(f"{count / 1e6:,.2f}" for count in counts) + " M")
            print(f"  {step:<16} {cells[0]:>22}" + "".join(f" / {cell}" for cell in cells[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
