#!/usr/bin/env python3
"""Formatted WPP events/s: wpptrace's tracefmt pipeline in text, CSV and JSON Lines, beside
dissect.etl's raw parse rate.

Generates (once, cached in the temp directory) a 1M-event WPP trace whose messages are the
real driver TMFs of the corpus (tests/corpus/tmf/nefarius__Nefarius.Utilities.ETW/tmf/:
BthPS3, BthPS3PSM, DsHidMini and the DMF libraries, 2,610 messages), with argument bytes built
per item type. Then, in one run:

* wpptrace fmt in each output format (``-f text``, ``-f csv``, ``-f jsonl``): .etl -> the
  engine's rows in ProcessTrace order -> TMF lookup -> the formatting loop (the C renderer
  prints each message's text; CSV and JSON Lines add each event's fields) -> output, written
  to /dev/null (the whole file), with the peak RSS (bounded memory check). CSV and JSON Lines
  are to stay within 1.5x of text's time. ``--repeat N`` runs the three N times, interleaved,
  and keeps each one's best (a shared machine's load varies between runs);
* wpptrace raw: the same records walked without formatting (the engine's share): as
  ``Record`` objects (``decoder.ordered_records``, the general API) and as the formatter's
  compact C rows (the engine with ``wpp_rows.RowView``: the walk + merge share of the fmt run);
* dissect.etl: raw record parse (no formatting: it has no TMF support), on the first
  ``--dissect-events`` records because it is slow;
* tracefmt (WDK): the published figure from a real FmtSum.txt, 267,823 events in 9 s;
* this machine's speed now: a plain struct-unpack + ``%`` loop (2.13M/s on a quiet machine),
  so the fmt rate can also be read as a load-independent ratio.

Rates are given per wall-clock second and per CPU second (other processes on a shared 2-core
machine slow the wall clock); "steady state" leaves out the one-off TMF reading.

Targets: >= 500k formatted text events/s on the 2-core machine (aim 1M), judged on CPU time (a
shared machine's wall clock mostly measures the other processes); CSV and JSON Lines within
1.5x of text's CPU time.
Usage: python3 benchmarks/bench_fmt.py [--events N] [--dissect-events N] [--repeat N] [--keep]
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import pathlib
import random
import resource
import struct
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
TMF_DIR = REPO / "tests" / "corpus" / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
TRACEFMT_EVENTS, TRACEFMT_SECONDS = 267_823, 9  # corpus wpp/guscatalano__findneedle/FmtSum.txt
TARGET = 500_000
GEN_VERSION = 2


def _etlgen():
    spec = importlib.util.spec_from_file_location("fmt_etlgen", REPO / "tests" / "fmt" / "etlgen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _arg_bytes(item: str, params: tuple, rnd: random.Random, i: int) -> bytes | None:
    if item in ("ItemNTSTATUS", "ItemHRESULT", "ItemWINERROR"):
        return struct.pack("<I", rnd.choice((0, 0xC0000022, 0xC000000D, 0x103, 0x80070005, 5)))
    if item == "ItemPtr":
        return struct.pack("<Q", 0xFFFF800000000000 + rnd.randrange(1 << 32) * 16)
    if item == "ItemLong":
        return struct.pack("<I", i & 0xFFFFFFFF)
    if item in ("ItemLongLong", "ItemULongLong", "ItemLongLongXX", "ItemLongLongX"):
        return struct.pack("<Q", (i * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
    if item == "ItemDouble":
        return struct.pack("<d", i / 7.0)
    if item == "ItemString":
        return b"device-%d\0" % (i % 97)
    if item == "ItemWString":
        return ("dev%d\0" % (i % 31)).encode("utf-16-le")
    if item == "ItemPWString":
        raw = ("\\Device\\Sym%d" % (i % 13)).encode("utf-16-le")
        return struct.pack("<H", len(raw)) + raw
    if item == "ItemListByte":
        return bytes([i % max(1, len(params))])
    return None


def generate(path: pathlib.Path, events: int) -> int:
    """Write the benchmark trace; returns the number of distinct messages used."""
    from wpptrace import tmf

    gen = _etlgen()
    tmfset = tmf.load(str(TMF_DIR))
    usable = []
    for message in tmfset.messages():
        if all(_arg_bytes(a.item, a.params, random.Random(0), 0) is not None for a in message.args):
            usable.append(message)
    rnd = random.Random(1234)
    # A skewed mix, as in real traces: a few messages dominate.
    weights = [1.0 / (k + 1) for k in range(len(usable))]
    picks = rnd.choices(range(len(usable)), weights=weights, k=4096)
    tid_pid = [(0x1000 + 4 * k, 4) for k in range(8)]

    def messages():
        ts = gen.T0
        for i in range(events):
            m = usable[picks[i & 4095]]
            args = b"".join(_arg_bytes(a.item, a.params, rnd, i) for a in m.args)
            ts += 37  # 3.7 us apart
            tid, pid = tid_pid[i & 7]
            yield (m.guid, m.number, args, tid, pid, i & 1, ts, gen.FLAGS_CORPUS | 0x01)

    gen.write_messages(path, messages(), nprocs=2, buffer_size=65536)
    return len(usable)


FORMATS = (("text", "text"), ("csv", "CSV"), ("jsonl", "JSON Lines"))
FORMAT_TARGET = 1.5   # CSV and JSON Lines: at most this many times text's CPU time


def bench_wpptrace(path: pathlib.Path, output_format: str = "text") -> tuple[int, float, float, dict]:
    """The ``wpptrace fmt FILE -p TMFDIR -f FORMAT -o /dev/null --summary S`` pipeline, end to
    end (TMF loading included). Returns (events, wall s, CPU s, summary totals)."""
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "fmt.sum")
        opts = FmtOptions(files=[str(path)], tmf_dirs=[str(TMF_DIR)], output=os.devnull,
                          summary=summary, progress="never", output_format=output_format)
        t0, c0 = time.perf_counter(), time.process_time()
        code = run_fmt(opts)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        if code != 0:
            raise SystemExit(f"wpptrace fmt -f {output_format} failed with exit code {code}")
        totals = {}
        for line in open(summary, encoding="utf-8"):
            if line.startswith("Total "):
                label, value = line.rsplit(None, 1)
                totals[" ".join(label.split())] = int(value)
    return totals["Total Events Processed"], elapsed, cpu, totals


def bench_tmf_load() -> tuple[int, float]:
    """The fixed cost inside the fmt run: reading every corpus TMF (CPU seconds), measured in
    a fresh interpreter (the TMF reader caches parsed lines within a process)."""
    import subprocess

    code = ("import time; c0 = time.process_time(); from wpptrace import tmf; "
            f"s = tmf.load({str(TMF_DIR)!r}); s.load_all(); print(len(s), time.process_time() - c0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    count, seconds = out.stdout.split()
    return int(count), float(seconds)


def bench_raw(path: pathlib.Path) -> tuple[int, float]:
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder import ordered_records

    t0 = time.perf_counter()
    n = 0
    with EtlFile(str(path)) as etl:
        for _rec in ordered_records(etl):
            n += 1
    return n, time.perf_counter() - t0


def bench_rows(path: pathlib.Path) -> tuple[int, float]:
    """The fmt run's engine share: C rows (walk, ids) merged in ProcessTrace order (CPU s)."""
    from wpptrace.decoder.engine import FileSource
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder.wpp_rows import RowView

    c0 = time.process_time()
    n = 0
    with EtlFile(str(path)) as etl:
        for rows, _keys in FileSource(etl).ordered(RowView()):
            n += len(rows)
    return n, time.process_time() - c0


def bench_dissect(path: pathlib.Path, limit: int) -> tuple[int, float] | None:
    try:
        from dissect.etl import ETL
    except ImportError:
        return None
    t0 = time.perf_counter()
    n = 0
    with open(path, "rb") as fh:
        for rec in ETL(fh):
            h = rec.header
            _ = (h.provider_id, h.thread_id, h.process_id, h.timestamp, rec.event)
            n += 1
            if n >= limit:
                break
    return n, time.perf_counter() - t0


REFERENCE_QUIET_RATE = 2_130_000  # docs/performance.md §4 "fmt: iter_unpack plus %", quiet machine


def bench_reference(n: int = 300_000) -> float:
    """This machine's speed right now: a plain struct-unpack + ``%`` loop over fixed 48-byte
    records (the docs/performance.md §4 "iter_unpack plus %" floor), events/s of CPU time."""
    rec = struct.Struct("<HHIQQQ16s")
    names = [b"file%d.txt" % i for i in range(16)]
    buf = b"".join(rec.pack(48, 7, 1234, 1_700_000_000 + i, i & 0xFFFF, 0xDEAD0000 + i, names[i & 15])
                   for i in range(n))
    fmt = "Read %d bytes from %s at %x"
    c0 = time.process_time()
    out = []
    for _size, _mid, _tid, _ts, count, addr, name in rec.iter_unpack(buf):
        out.append(fmt % (count, name.rstrip(b"\0").decode(), addr))
    return n / (time.process_time() - c0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dissect-events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=1,
                    help="run the three formats this many times, interleaved; keep the best")
    ap.add_argument("--keep", action="store_true", help="keep the generated trace")
    args = ap.parse_args(argv)

    path = pathlib.Path(tempfile.gettempdir()) / f"wpptrace-bench-fmt-v{GEN_VERSION}-{args.events}.etl"
    if not path.exists():
        t0 = time.perf_counter()
        used = generate(path, args.events)
        print(f"generated {path} ({path.stat().st_size / 1e6:.1f} MB, {args.events:,} events, "
              f"{used} distinct corpus messages) in {time.perf_counter() - t0:.1f} s")

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runs: dict[str, tuple] = {}
    for _ in range(max(1, args.repeat)):
        for fmt, _label in FORMATS:
            n, wall, cpu, totals = bench_wpptrace(path, fmt)
            if fmt not in runs or cpu < runs[fmt][2]:
                runs[fmt] = (n, wall, cpu, totals)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n_fmt, t_fmt, c_fmt, totals = runs["text"]
    n_raw, t_raw = bench_raw(path)
    n_rows, c_rows = bench_rows(path)
    dis = bench_dissect(path, args.dissect_events)
    ref = bench_reference()
    n_tmf, c_tmf = bench_tmf_load()

    fmt_rate = n_fmt / t_fmt
    tracefmt_rate = TRACEFMT_EVENTS / TRACEFMT_SECONDS
    print(f"{'what':44} {'events':>10} {'seconds':>8} {'events/s':>11} {'vs tracefmt':>11}")
    for fmt, label in FORMATS:
        n, wall, cpu, _ = runs[fmt]
        print(f"{'wpptrace fmt -f ' + fmt + ' (' + label + ', full file)':44} {n:>10,} {wall:>8.2f} "
              f"{n / wall:>11,.0f} {n / wall / tracefmt_rate:>10.1f}x")
        print(f"{'  same run, per CPU second (process time)':44} {n:>10,} {cpu:>8.2f} "
              f"{n / cpu:>11,.0f} {n / cpu / tracefmt_rate:>10.1f}x")
    steady = n_fmt / max(1e-9, c_fmt - c_tmf)
    print(f"{'text less the TMF loading (steady state)':44} {n_fmt:>10,} {c_fmt - c_tmf:>8.2f} "
          f"{steady:>11,.0f} {steady / tracefmt_rate:>10.1f}x   (loading {n_tmf:,} TMF messages: {c_tmf:.2f} s CPU)")
    print(f"{'wpptrace engine (Record objects, no format)':44} {n_raw:>10,} {t_raw:>8.2f} "
          f"{n_raw / t_raw:>11,.0f} {n_raw / t_raw / tracefmt_rate:>10.1f}x")
    print(f"{'wpptrace fmt rows (walk + merge, CPU s)':44} {n_rows:>10,} {c_rows:>8.2f} "
          f"{n_rows / c_rows:>11,.0f} {n_rows / c_rows / tracefmt_rate:>10.1f}x")
    if dis is not None:
        print(f"{'dissect.etl 3.14 (raw parse, no format)':44} {dis[0]:>10,} {dis[1]:>8.2f} "
              f"{dis[0] / dis[1]:>11,.0f} {dis[0] / dis[1] / tracefmt_rate:>10.1f}x")
    print(f"{'tracefmt (WDK, published FmtSum.txt)':44} {TRACEFMT_EVENTS:>10,} {TRACEFMT_SECONDS:>8.2f} "
          f"{tracefmt_rate:>11,.0f} {1:>10.1f}x")
    if dis is not None:
        print(f"ratio wpptrace formatted / dissect raw: {fmt_rate / (dis[0] / dis[1]):.1f}x")
    print(f"\n{'output format':12} {'events/s (CPU)':>15} {'CPU s':>7} {'x text time':>12}  "
          f"target <= {FORMAT_TARGET}x text (best of {max(1, args.repeat)})")
    for fmt, label in FORMATS:
        n, _wall, cpu, _ = runs[fmt]
        ratio = cpu / c_fmt
        verdict = "" if fmt == "text" else ("MET" if ratio <= FORMAT_TARGET else "NOT MET")
        print(f"{label:12} {n / cpu:>15,.0f} {cpu:>7.2f} {ratio:>11.2f}x  {verdict}")
    bad = totals["Total Format Errors"] + totals["Total Formats Unknown"]
    print(f"\nformat errors + unknown: {bad} (must be 0); load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (other load slows the wall-clock rate)")
    print(f"peak RSS grew {(rss1 - rss0) / 1024:.1f} MB "
          f"during the runs (file {path.stat().st_size / 1e6:.1f} MB); max RSS {rss1 / 1024:.1f} MB")
    factor = ref / REFERENCE_QUIET_RATE
    print(f"machine speed now: reference unpack+% loop {ref:,.0f}/s CPU = {factor:.2f}x its quiet-machine "
          f"rate ({REFERENCE_QUIET_RATE:,}/s); wpptrace fmt CPU rate / reference = {n_fmt / c_fmt / ref:.3f} "
          f"(target {TARGET / REFERENCE_QUIET_RATE:.3f}); quiet-machine estimate "
          f"{n_fmt / c_fmt / factor:,.0f} events/s")
    cpu_rate, quiet = n_fmt / c_fmt, n_fmt / c_fmt / factor
    for label, rate in (("CPU time, this run", cpu_rate), ("CPU time, quiet-machine estimate", quiet),
                        ("wall clock, this run", fmt_rate)):
        verdict = "MET" if rate >= TARGET else "NOT MET"
        print(f"target >= {TARGET:,} formatted text events/s ({label}): {verdict} ({rate / TARGET:.2f}x)")
    if not args.keep and args.events != 1_000_000:
        path.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
