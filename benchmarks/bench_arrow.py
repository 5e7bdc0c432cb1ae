#!/usr/bin/env python3
"""Arrow/Parquet output and Dask fleet decoding, each beside its peer in one run.

1. Single process: ``wpptrace fmt FILE -p TMFDIR -f parquet -o out.parquet`` beside
   ``-f text -o /dev/null`` on the same trace, interleaved ``--repeat`` times, best of each,
   on both of bench_fmt's traces over the corpus's real driver TMFs (2,610 messages): the
   unique-argument file (fresh random pointers, status codes, strings, doubles in every
   event, as real driver logs carry) and the interned-friendly one (argument blocks that
   repeat). Target: Parquet within 1.5x of text's time (CPU and wall clock are both
   printed; the shared 2-core machine's wall clock also measures other people's work). The
   runs share one process, as a long-lived program calling the decoder does; the same
   comparison with a fresh process per run (pyarrow's import included, as a ``wpptrace fmt``
   command pays it) is printed below it, and so are Parquet's two parts measured apart (the
   rows decoded into Arrow columns; pyarrow encoding them) with the least wall time the
   machine's cores allow for them.
2. Fleet: 8 unique-argument traces (each its own seed) of ``--fleet-events`` events each
   (250k: 13.3 MB a file) decoded by
   ``wpptrace.dask.read_etl(...).to_parquet(..., **PARQUET_OPTIONS)`` on a LocalCluster of 1 worker process and
   of 2 (one thread each), alternated ``--repeat`` times, best of each. Target: 2 workers
   >= 1.7x as fast as 1 (the machine has 2 cores; the client and scheduler share them), for
   the first job on a fresh cluster; the same job run again on that cluster is shown too (a
   long-lived cluster's workers have imported what the job needs).
   Beside it, in the same run, the CPU time of every process of each job (client, scheduler,
   workers) with the least wall time the cores allow for the 2-worker job's, and the
   machine's own parallel speed-up at that moment: a plain CPU loop in 2 processes vs 1
   (other people's work on a shared machine takes cores away).

Generated traces are cached in the temp directory.
Usage: python3 benchmarks/bench_arrow.py [--events N] [--fleet-events N] [--repeat N]
       [--skip-single] [--skip-dask]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
PARQUET_TARGET = 1.5
DASK_TARGET = 1.7


import bench_fmt as BF  # noqa: E402  (this folder is on the path of its scripts)


def trace(events: int, tag: str = "", unique: bool = True, seed: int = 99) -> pathlib.Path:
    """bench_fmt's unique-argument trace (``seed``: its random arguments) or, with
    ``unique=False``, its interned-friendly one; generated once, cached."""
    kind = f"unique-v{BF.UNIQUE_VERSION}" if unique else f"v{BF.GEN_VERSION}"
    path = pathlib.Path(tempfile.gettempdir()) / f"wpptrace-bench-fmt-{kind}-{events}{tag}.etl"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        if unique:
            BF.generate_unique(tmp, events, seed)
        else:
            BF.generate(tmp, events)
        os.replace(tmp, path)
        print(f"generated {path} ({path.stat().st_size / 1e6:.1f} MB, {events:,} events) in "
              f"{time.perf_counter() - t0:.1f} s", flush=True)
    return path


def run_fmt(path: pathlib.Path, output_format: str, output: str) -> tuple[float, float]:
    """(wall s, CPU s) of one ``wpptrace fmt`` run, TMF loading included."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt as fmt

    opts = FmtOptions(files=[str(path)], tmf_dirs=[str(BF.TMF_DIR)], output=output,
                      progress="never", output_format=output_format, jobs=1)
    t0, c0 = time.perf_counter(), time.process_time()
    code = fmt(opts)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    if code != 0:
        raise SystemExit(f"wpptrace fmt -f {output_format} failed with exit code {code}")
    return wall, cpu


def single(events: int, repeat: int) -> None:
    for label, unique in (("unique-argument", True), ("interned-friendly", False)):
        single_file(trace(events, unique=unique), label, events, repeat)


def single_file(path: pathlib.Path, label: str, events: int, repeat: int) -> None:
    import pyarrow.parquet as pq

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.parquet")
        best: dict[str, tuple[float, float]] = {}
        for _ in range(repeat):
            for fmt, output in (("text", os.devnull), ("parquet", out)):
                wall, cpu = run_fmt(path, fmt, output)
                old = best.get(fmt)
                best[fmt] = (min(wall, old[0]), min(cpu, old[1])) if old else (wall, cpu)
        rows = pq.ParquetFile(out).metadata.num_rows
        size = os.path.getsize(out)
    print(f"\n1. single process, {label} file {path.name}: {path.stat().st_size / 1e6:.1f} MB, "
          f"{events:,} events (best of {repeat})")
    print(f"{'output':10} {'rows/s (wall)':>14} {'wall s':>8} {'rows/s (CPU)':>13} {'CPU s':>7}")
    for fmt in ("text", "parquet"):
        wall, cpu = best[fmt]
        print(f"{fmt:10} {events / wall:>14,.0f} {wall:>8.2f} {events / cpu:>13,.0f} {cpu:>7.2f}")
    rw = best["parquet"][0] / best["text"][0]
    rc = best["parquet"][1] / best["text"][1]
    print(f"parquet / text time: {rw:.2f}x wall, {rc:.2f}x CPU; target <= {PARQUET_TARGET}x: "
          f"{'MET' if rc <= PARQUET_TARGET else 'NOT MET'} (CPU), "
          f"{'MET' if rw <= PARQUET_TARGET else 'NOT MET'} (wall)")
    print(f"parquet file: {rows:,} rows, {size / 1e6:.1f} MB")
    build, encode = parquet_parts(path)
    cores = os.cpu_count() or 1
    floor = max(build, (build + encode) / cores)   # the decoding is one thread
    text_wall = best["text"][0]
    print(f"its two parts measured apart (CPU, one thread each): the rows decoded into Arrow "
          f"columns {build:.2f} s ({build / text_wall:.2f}x text's time), pyarrow encoding them with "
          f"the same options {encode:.2f} s ({encode / text_wall:.2f}x); on {cores} cores "
          f"the least wall time they allow is {floor:.2f} s = {floor / text_wall:.2f}x text's")
    # as a command pays it: each run a fresh process (pyarrow's import included), best by CPU
    fresh = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeat):
            for fmt, output in (("text", os.devnull), ("parquet", os.path.join(tmp, "o.parquet"))):
                fresh.setdefault(fmt, []).append(BF.run_child(path, fmt, 1, output))
    text_run, parquet_run = BF.best(fresh["text"]), BF.best(fresh["parquet"])
    print(f"each run a fresh process (imports included, as `wpptrace fmt` pays them): text "
          f"{text_run['wall']:.2f} s, parquet {parquet_run['wall']:.2f} s "
          f"({parquet_run['wall'] / text_run['wall']:.2f}x wall, "
          f"{parquet_run['cpu'] / text_run['cpu']:.2f}x CPU)")


def parquet_parts(path: pathlib.Path) -> tuple[float, float]:
    """CPU seconds of the two parts of ``fmt -f parquet`` apart: the rows decoded into Arrow
    record batches (``to_arrow``, TMF loading included, as fmt does), and pyarrow encoding them
    as fmt's writer does (row groups of ``ROW_GROUP_ROWS``, ``PARQUET_OPTIONS``), one thread."""
    import pyarrow as pa

    from wpptrace.decoder import load_tmf, to_arrow
    from wpptrace.decoder.arrow import PARQUET_OPTIONS, ROW_GROUP_ROWS, _encode_part

    c0 = time.process_time()
    batches = list(to_arrow(str(path), tmf=load_tmf(str(BF.TMF_DIR))))
    build = time.process_time() - c0
    table = pa.Table.from_batches(batches)
    c0 = time.process_time()
    for at in range(0, table.num_rows, ROW_GROUP_ROWS):
        _encode_part(table.slice(at, ROW_GROUP_ROWS), PARQUET_OPTIONS)
    return build, time.process_time() - c0


def _cpu_seconds(pids: list[int]) -> float:
    """CPU seconds used so far by this process (the client and a LocalCluster's scheduler)
    and by the worker processes ``pids`` and their children."""
    import resource

    import psutil   # distributed's own dependency

    me = resource.getrusage(resource.RUSAGE_SELF)
    total = me.ru_utime + me.ru_stime
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            for p in (proc, *proc.children(recursive=True)):
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def _fleet_run(files: list[pathlib.Path], workers: int, out: str) -> list[tuple[float, float]]:
    """(wall s, CPU s of every process: client, scheduler, workers) of the job on a fresh
    cluster, then of the same job again on it (its workers have imported what the job needs:
    a long-lived cluster's case)."""
    from dask.distributed import Client, LocalCluster

    import wpptrace.dask as wdask
    from wpptrace.decoder.arrow import PARQUET_OPTIONS

    runs = []
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        for k in range(2):
            c0, t0 = _cpu_seconds(pids), time.perf_counter()
            frame = wdask.read_etl([str(f) for f in files], tmf=str(BF.TMF_DIR))
            frame.to_parquet(f"{out}-{k}", write_index=False, **PARQUET_OPTIONS)
            runs.append((time.perf_counter() - t0, _cpu_seconds(pids) - c0))
    return runs


def fleet(events: int, repeat: int) -> None:
    import pyarrow.parquet as pq

    files = [trace(events, f"-fleet{k}", seed=1000 + k) for k in range(8)]
    best: dict[int, tuple[float, float]] = {}
    warm: dict[int, tuple[float, float]] = {}
    machine: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        rows = 0
        for r in range(repeat):
            machine.append(BF.machine_speedup())
            for workers in (1, 2):
                out = os.path.join(tmp, f"lake-{workers}-{r}")
                first, again = _fleet_run(files, workers, out)
                best[workers] = min(first, best.get(workers, first))
                warm[workers] = min(again, warm.get(workers, again))
                rows = pq.read_metadata(os.path.join(f"{out}-0", "part.0.parquet")).num_rows
                shutil.rmtree(f"{out}-0")
                shutil.rmtree(f"{out}-1")
        machine.append(BF.machine_speedup())
    total = sum(f.stat().st_size for f in files)
    print(f"\n2. Dask fleet: 8 files x {events:,} events ({total / 1e6:.0f} MB; a file "
          f"{files[0].stat().st_size / 1e6:.1f} MB, {rows:,} rows), read_etl(...).to_parquet "
          f"(best of {repeat}, cluster start-up excluded)")
    cores = os.cpu_count() or 1
    for workers in (1, 2):
        wall, cpu = best[workers]
        print(f"{workers} worker{'s' if workers > 1 else ' '}  {wall:7.2f} s  "
              f"{8 * events / wall:>12,.0f} rows/s  CPU of every process {cpu:6.2f} s "
              f"({cpu / wall:.2f} cores busy)")
    speedup = best[1][0] / best[2][0]
    print(f"speed-up 2 workers vs 1: {speedup:.2f}x; target >= {DASK_TARGET}x: "
          f"{'MET' if speedup >= DASK_TARGET else 'NOT MET'}")
    floor = best[2][1] / cores
    print(f"the 2-worker job needed {best[2][1]:.2f} CPU s (each worker imports and compiles "
          f"for itself); {cores} cores cannot do that in less than {floor:.2f} s, so 2 workers "
          f"can give at most {best[1][0] / floor:.2f}x here (they reached "
          f"{speedup / (best[1][0] / floor):.0%} of it)")
    print(f"the same job again on the same cluster (its workers have imported dask.dataframe "
          f"and pandas, ~0.4 s each the first time): 1 worker {warm[1][0]:.2f} s, 2 workers "
          f"{warm[2][0]:.2f} s, {warm[1][0] / warm[2][0]:.2f}x")
    print(f"the machine's own speed-up, 2 processes vs 1 (plain CPU loop, before/between/after "
          f"the runs): {', '.join(f'{m:.2f}x' for m in machine)}; Dask reached "
          f"{speedup / max(machine):.0%} of the best of them")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--fleet-events", type=int, default=250_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-single", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args(argv)
    if not args.skip_single:
        single(args.events, args.repeat)
    if not args.skip_dask:
        fleet(args.fleet_events, args.repeat)
    print(f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
