#!/usr/bin/env python3
"""Formatted WPP events/s: wpptrace fmt in text, CSV and JSON Lines, one process and ``-j 2``,
beside dissect.etl's raw parse rate; start-up on a small file; peak memory.

Inputs (generated once, cached in the temp directory), all over the real driver TMFs of the
corpus (tests/corpus/tmf/nefarius__Nefarius.Utilities.ETW/tmf/: BthPS3, BthPS3PSM, DsHidMini
and the DMF libraries, 90 TMF files, 2,610 messages):

* unique-argument file: 1M events, every one with fresh random argument bytes (pointers,
  NTSTATUS codes, counters, device names, ...), as real driver logs are: no two argument
  blocks alike, so nothing can be formatted once and reused; a skewed mix of the 1,572
  messages that have arguments;
* interned-friendly file: 1M events whose argument blocks repeat often (counters from the
  event index, strings from short cycles, messages without arguments), the shape this
  benchmark used before;
* a 1,000-event unique-argument file, for start-up.

Each ``wpptrace fmt`` run is a fresh process (``--child``) that reports its own wall clock,
CPU time (its children's included: the ``-j`` workers), peak RSS and the FmtSum totals; the
run covers the whole command after imports: TMF reading, message compilation, decoding,
formatting, writing (to /dev/null; to a file for the ``-j`` comparison, which needs one).
The machine is shared: the load average is printed beside every timing, and CPU time beside
wall time. fmt's program cache (``decoder.program_cache``) is off in every run but those
named warm: those take every message's program from a cache a run before them filled, as a
second run over the same TMF files does.

Targets (one run prints each figure and its verdict):
* text >= 1M events/s in one process on the unique-argument file; the ratio to dissect.etl's
  raw parse (no formatting) >= 60x;
* CSV and JSON Lines >= 0.6M events/s and within 1.5x of text's time (on both files);
* ``-j 2`` at least 1.7x faster than ``-j 1`` (wall clock, the fastest run of each) on this
  2-core machine; beside it, the fixed cost each process pays (TMF entries read, messages
  compiled), the best speed-up that cost allows, what two processes of a plain CPU loop gain
  on the machine right now, how much slower a ``-j 1`` run gets while a second one runs
  beside it (two cores that share caches, memory bandwidth and a host give less than two on
  real work), and a split that shares nothing: the file's two halves decoded at once by two
  fresh processes; each round's ratio (its ``-j 1`` run against the ``-j 2`` run just before
  it: the VM's speed drifts within seconds), and the same ratio without the fixed cost (each
  process decodes the file once, then times a second run with every message compiled), and
  both again with the program cache warm;
* the 1,000-event file with the 90 TMFs formatted in under 0.3 s wall, Python start-up and
  imports shown separately; and with the program cache warm;
* peak RSS under 100 MB for 1M events in one process.

Usage: python3 benchmarks/bench_fmt.py [--events N] [--dissect-events N] [--repeat N (default 3)] [--keep]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import random
import resource
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
TMF_DIR = REPO / "tests" / "corpus" / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
TRACEFMT_EVENTS, TRACEFMT_SECONDS = 267_823, 9  # corpus wpp/guscatalano__findneedle/FmtSum.txt
GEN_VERSION = 2          # the interned-friendly file
UNIQUE_VERSION = 1       # the unique-argument file

TEXT_TARGET = 1_000_000
DISSECT_RATIO_TARGET = 60
STRUCTURED_TARGET = 600_000
FORMAT_TARGET = 1.5      # CSV and JSON Lines: at most this many times text's time
JOBS_TARGET = 1.7
STARTUP_TARGET = 0.3
RSS_TARGET_MB = 100
FORMATS = (("text", "text"), ("csv", "CSV"), ("jsonl", "JSON Lines"))


def _etlgen():
    spec = importlib.util.spec_from_file_location("fmt_etlgen", REPO / "tests" / "fmt" / "etlgen.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the interned-friendly file -------------------------------------------------------------

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
    """The interned-friendly trace; returns the number of distinct messages used."""
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


# -- the unique-argument file ---------------------------------------------------------------

_WORDS = (b"BthPS3", b"DsHidMini", b"PDO", b"FDO", b"L2CAP", b"HID_CONTROL", b"SDP", b"Interrupt",
          b"DMF_Bluetooth", b"queue", b"\\Device\\BTHPS3_0", b"Sixaxis")
_STATUS = (0, 0, 0, 0xC0000022, 0xC000000D, 0x103, 0xC0000001, 0x80000005, 0xC00000BB, 0xC0000120)


def _fresh_arg(item: str, params: tuple, rnd: random.Random) -> bytes:
    """Random argument bytes of one TMF item, as a driver logs them."""
    from wpptrace.tmf.itemtypes import item_type

    it = item_type(item)
    name = it.name
    if name in ("ItemNTSTATUS", "ItemHRESULT", "ItemWINERROR"):
        return struct.pack("<I", rnd.choice(_STATUS) if rnd.random() < 0.7 else rnd.getrandbits(32))
    if name == "ItemPtr":
        return struct.pack("<Q", 0xFFFF800000000000 | rnd.getrandbits(44) << 3)
    if name == "ItemDouble":
        return struct.pack("<d", rnd.getrandbits(32) / (rnd.getrandbits(10) + 1))
    if name.startswith("ItemList"):
        return rnd.randrange(len(params) + 1).to_bytes(it.size, "little")
    if it.wire == "fixed":
        return rnd.getrandbits(rnd.choice((8, 16, 32, it.size * 8))).to_bytes(it.size, "little")
    word = rnd.choice(_WORDS) + b"-%d" % rnd.getrandbits(20)
    if it.wire == "cstr":
        return word + b"\0"
    if it.wire == "wstr":
        return word.decode().encode("utf-16-le") + b"\0\0"
    if it.wire == "pwstr":
        raw = word.decode().encode("utf-16-le")
        return struct.pack("<H", len(raw)) + raw
    if it.wire == "pstr":
        return struct.pack("<H", len(word)) + word
    raise ValueError(f"no generator for {item}")


def generate_unique(path: pathlib.Path, events: int, seed: int = 99) -> int:
    """The unique-argument trace; returns the number of distinct messages used."""
    from wpptrace import tmf

    gen = _etlgen()
    messages = sorted((m for m in tmf.load(str(TMF_DIR)).messages() if m.args),
                      key=lambda m: (str(m.guid), m.number))
    rnd = random.Random(seed)
    order = list(range(len(messages)))
    rnd.shuffle(order)
    weights = [1.0 / (k + 1) ** 0.7 for k in range(len(messages))]   # skewed, long tail
    picks = rnd.choices(order, weights=weights, k=65536)
    threads = [(0x1000 + 4 * k, 4 + 0x100 * (k % 3)) for k in range(12)]

    def rows():
        ts = gen.T0
        for i in range(events):
            m = messages[picks[i & 65535]]
            args = b"".join(_fresh_arg(a.item, a.params, rnd) for a in m.args)
            ts += rnd.randrange(1, 80)
            tid, pid = threads[rnd.randrange(12)]
            yield (m.guid, m.number, args, tid, pid, rnd.randrange(2), ts, gen.FLAGS_CORPUS)

    gen.write_messages(path, rows(), nprocs=2, buffer_size=65536)
    return len(messages)


def _cached(name: str, events: int, make) -> pathlib.Path:
    path = pathlib.Path(tempfile.gettempdir()) / f"wpptrace-bench-fmt-{name}-{events}.etl"
    if not path.exists():
        t0 = time.perf_counter()
        tmp = path.with_suffix(".tmp")
        used = make(tmp, events)
        os.replace(tmp, path)
        print(f"generated {path} ({path.stat().st_size / 1e6:.1f} MB, {events:,} events, "
              f"{used} distinct corpus messages) in {time.perf_counter() - t0:.1f} s", flush=True)
    return path


# -- one fmt run in its own process ---------------------------------------------------------

def child(path: str, output_format: str, jobs: int, output: str, compiled: bool = False) -> int:
    """``--child``: one ``wpptrace fmt`` run; prints its figures as JSON. ``compiled``: the
    file is decoded once first (one process, to /dev/null) and the timed run reuses that
    decoder, every message compiled: the run without its fixed cost."""
    from wpptrace.decoder import wpp
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    if compiled:
        made = []

        def one_decoder(*args, **kwargs):
            if not made:
                made.append(decoder_class(*args, **kwargs))
            return made[0]
        decoder_class, wpp.WppDecoder = wpp.WppDecoder, one_decoder
        run_fmt(FmtOptions(files=[path], tmf_dirs=[str(TMF_DIR)], output=os.devnull,
                           summary=os.devnull, progress="never", output_format=output_format, jobs=1))
        made[0].counters = type(made[0].counters)()      # the timed run's totals only
        made[0].restore_counts((b"", b"", b""))

    # -j's module is imported here to see its steps; a -j run imports it inside the run, so
    # the time it takes is added to the run's
    w0, c0 = time.perf_counter(), time.process_time()
    from wpptrace.decoder import parallel
    imported = (time.perf_counter() - w0, time.process_time() - c0) if jobs != 1 else (0.0, 0.0)

    steps = {}
    decode_parallel = parallel.decode_parallel

    def timed(*args, **kwargs):          # where -j's steps fall in the run
        steps["began"] = time.perf_counter() - t0 + imported[0]
        run = decode_parallel(*args, **kwargs)
        timeline = run.timeline
        steps.update({name: getattr(timeline, name) for name in timeline.__match_args__})
        steps["owners"] = run.owners
        return run

    parallel.decode_parallel = timed
    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "fmt.sum")
        opts = FmtOptions(files=[path], tmf_dirs=[str(TMF_DIR)], output=output, summary=summary,
                          progress="never", output_format=output_format, jobs=jobs,
                          hold_heap=True)          # as the command line runs it
        ticks = cpu_ticks()
        t0, c0 = time.perf_counter(), time.process_time()
        code = run_fmt(opts)
        wall, cpu = time.perf_counter() - t0 + imported[0], time.process_time() - c0 + imported[1]
        ticks = [b - a for a, b in zip(ticks, cpu_ticks())]
        totals = {}
        for line in open(summary, encoding="utf-8"):
            if line.startswith("Total "):
                label, value = line.rsplit(None, 1)
                totals[" ".join(label.split())] = int(value)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    deadline = time.monotonic() + 2
    while jobs != 1 and not children.ru_utime and time.monotonic() < deadline:
        time.sleep(0.01)                 # the released workers are reaped by a thread
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "code": code, "wall": wall, "cpu": cpu + children.ru_utime + children.ru_stime,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": children.ru_maxrss / 1024, "totals": totals,
        "load": os.getloadavg()[0], "steal": ticks[1] / max(1, sum(ticks)), "steps": steps}))
    return 0


def window_child(path: str, window: int, output: str) -> int:
    """``--window-child``: one half of the file (cut as ``fmt -j`` cuts windows, into two even
    ones), decoded by a fresh process on its own (its own TMF reading and compiling, nothing
    shared, its own output file, nothing appended): half of a split that shares nothing.
    Prints wall and CPU time as JSON, from after the imports, as ``--child`` measures a run."""
    from wpptrace.decoder import cli_fmt, parallel
    from wpptrace.decoder.engine import FileSource
    from wpptrace.decoder.prefix import DEFAULT_PREFIX
    from wpptrace.decoder.wpp import WppDecoder

    t0, c0 = time.perf_counter(), time.process_time()
    opts = cli_fmt.FmtOptions(files=[path], tmf_dirs=[str(TMF_DIR)], output=output, progress="never")
    tmfset, _problems, _usable = cli_fmt.load_tmfs(opts, sys.stderr)
    decoder = WppDecoder(tmfset, prefix=DEFAULT_PREFIX)
    inp = cli_fmt._Input(path)
    cuts = parallel.cut_keys(inp.etl, 2, inp.source.streams())
    with cli_fmt._few_collections(), cli_fmt._held_heap():   # as fmt's command line does
        with open(output, "w", encoding="utf-8", newline="\n", buffering=1 << 16) as stream:
            writer = cli_fmt._writer(opts, stream, header=window == 0)
            source = FileSource(inp.etl, trust_flush_times=True) if window else inp.source
            cli_fmt._decode_sources(decoder, writer, opts, [source], None,
                                    (cuts[window], cuts[window + 1]))
            writer.flush()
    print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}))
    return 0


def cpu_ticks() -> list[int]:
    """(running, stolen, idle) clock ticks of all of this machine's CPUs so far (/proc/stat):
    stolen is the time the hypervisor ran something else while a vCPU had work; [0, 0, 0]
    where /proc/stat is not there."""
    try:
        with open("/proc/stat", encoding="ascii") as stat:
            fields = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return [0, 0, 0]
    fields += [0] * (8 - len(fields))
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return [user + nice + system + irq + softirq, steal, idle + iowait]


def _installed_env(cache_dir: str | None = None) -> dict:
    """This environment, with compiled bytecode cached as an installed package has it (a
    PYTHONDONTWRITEBYTECODE here would make every run compile the modules changed since);
    fmt's program cache (``decoder.program_cache``) off, or in ``cache_dir``."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache_dir is None:
        env["WPPTRACE_NO_CACHE"] = "1"
    else:
        env.pop("WPPTRACE_NO_CACHE", None)
        env["WPPTRACE_CACHE_DIR"] = cache_dir
    return env


def _start_child(path: pathlib.Path, output_format: str, jobs: int, output: str,
                 compiled: bool = False, cache_dir: str | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--child", str(path), output_format,
                             str(jobs), output] + ["compiled"] * compiled, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_installed_env(cache_dir))


def _child_result(proc: subprocess.Popen, output_format: str, jobs: int) -> dict:
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"fmt -f {output_format} -j {jobs} failed:\n{stderr}")
    result = json.loads(stdout.strip().splitlines()[-1])
    if result["code"] != 0:
        raise SystemExit(f"fmt -f {output_format} -j {jobs}: exit code {result['code']}")
    return result


def run_child(path: pathlib.Path, output_format: str, jobs: int, output: str,
              compiled: bool = False, cache_dir: str | None = None) -> dict:
    return _child_result(_start_child(path, output_format, jobs, output, compiled, cache_dir),
                         output_format, jobs)


def run_pair(path: pathlib.Path, outputs: tuple[str, str]) -> list[dict]:
    """Two ``-j 1`` text runs of the whole file at once, each a fresh process writing its own
    file: how much slower one run gets when the other core is busy with the same work (the
    most ``-j 2`` can gain on this machine, whatever the program)."""
    procs = [_start_child(path, "text", 1, out) for out in outputs]
    results = [_child_result(proc, "text", 1) for proc in procs]
    for out in outputs:
        os.unlink(out)
    return results


def run_split(path: pathlib.Path, outputs: tuple[str, str]) -> float:
    """The file's two halves (cut as ``fmt -j`` cuts windows) decoded at once by two fresh
    processes that share nothing (``--window-child``): the wall time of the slower, what a
    split of this work with no fork, no shared compiling and no append gives on this machine
    (each process compiles every message its half uses)."""
    procs = [subprocess.Popen([sys.executable, __file__, "--window-child", str(path), str(k), out],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_installed_env()) for k, out in enumerate(outputs)]
    walls = []
    for proc in procs:
        stdout, stderr = proc.communicate()
        if proc.returncode != 0:
            raise SystemExit(f"a window of the file failed:\n{stderr}")
        walls.append(json.loads(stdout.strip().splitlines()[-1])["wall"])
    for out in outputs:
        os.unlink(out)
    return max(walls)


def best(runs: list[dict]) -> dict:
    """The run with the least CPU time (the least disturbed by other processes)."""
    return min(runs, key=lambda r: r["cpu"])


# -- the peers ------------------------------------------------------------------------------

def bench_dissect(path: pathlib.Path, limit: int) -> tuple[int, float, float] | None:
    """dissect.etl's raw record parse (no formatting: it has no TMF support): (records, wall
    s, CPU s) for the first ``limit`` records."""
    try:
        from dissect.etl import ETL
    except ImportError:
        return None
    t0, c0 = time.perf_counter(), time.process_time()
    n = 0
    with open(path, "rb") as fh:
        for rec in ETL(fh):
            h = rec.header
            _ = (h.provider_id, h.thread_id, h.process_id, h.timestamp, rec.event)
            n += 1
            if n >= limit:
                break
    return n, time.perf_counter() - t0, time.process_time() - c0


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


def bench_fixed_cost(path: pathlib.Path, repeat: int = 3) -> tuple[int, float, float]:
    """What every ``-j`` process pays before its share of the work: reading the TMF entries
    and compiling the messages the file uses (distinct messages, CPU s), each measured in a
    fresh process (``--fixed-child``) so that nothing is compiled or imported before, as in a
    ``wpptrace fmt`` run. Returns (messages, CPU s of one process compiling them all, CPU s of
    the slower of two processes forked from one decoder and sharing them as ``fmt -j 2``
    does, at once: each takes the messages in its own order, compiles its share of them and
    what it takes of the other's, and installs the rest from the other's records). Medians of ``repeat`` runs."""
    def run(mode: str) -> dict:
        done = subprocess.run([sys.executable, __file__, "--fixed-child", mode, str(path)],
                              capture_output=True, text=True, env=_installed_env(), check=True)
        return json.loads(done.stdout)

    alone, shared = [], []
    for _ in range(max(1, repeat)):
        one, two = run("alone"), run("shared")
        alone.append(one["cpu"][0])
        shared.append(max(two["cpu"]))
    return one["keys"], statistics.median(alone), statistics.median(shared)


def fixed_child(mode: str, path: str) -> int:
    """``--fixed-child``: the fixed cost of ``bench_fixed_cost`` in this fresh process: "alone"
    compiles every message the file uses; "shared" forks a second process from the decoder
    and both compile through one ``ProgramShare`` at once (meeting over their first
    messages first, as ``fmt -j`` processes do). Prints the CPU time of each process as
    JSON."""
    from wpptrace import tmf
    from wpptrace.decoder.cli_fmt import _few_collections
    from wpptrace.decoder.engine import FileSource
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder.program_share import ProgramShare
    from wpptrace.decoder.wpp import WppDecoder
    from wpptrace.decoder.wpp_rows import RowView

    view = RowView()
    with EtlFile(path) as etl:
        for _rows, _keys in FileSource(etl).ordered(view):
            pass
    keys = [view.tables.key_info(k) for k in range(view.tables.key_count())]
    with _few_collections():          # as fmt compiles them (its -j workers are forked inside)
        decoder = WppDecoder(tmf.load(str(TMF_DIR), tolerant=True))
        decoder._row_printer()
        if mode == "alone":
            c0 = time.process_time()
            for guid_le, number in keys:
                decoder._program(decoder._raw_entry(guid_le, number))
            print(json.dumps({"keys": len(keys), "cpu": [time.process_time() - c0]}))
            return 0
        share = ProgramShare()
        decoder.share_programs(share)
        share.processes = 2                # they meet over their first messages, as fmt -j's do
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        share.process = 1 if pid == 0 else 0
        mine = list(keys)
        random.Random(pid == 0).shuffle(mine)   # each its own order, as two windows have
        c0 = time.process_time()
        decoder._shared_entries(mine)
        cpu = time.process_time() - c0
        if pid == 0:
            os.write(write_fd, json.dumps(cpu).encode())
            os._exit(0)
        os.close(write_fd)
        other = json.loads(os.read(read_fd, 1 << 10))
        os.waitpid(pid, 0)
        share.close()
    print(json.dumps({"keys": len(keys), "cpu": [cpu, other]}))
    return 0


def _spin(n: int) -> int:
    s = 0
    for i in range(n):
        s += i * i
    return s


def machine_speedup(n: int = 3_000_000) -> float:
    """What 2 processes gain on this machine right now: a plain CPU loop run 4 times in one
    process vs in 2 forked processes (wall clock)."""
    import multiprocessing

    t0 = time.perf_counter()
    for _ in range(4):
        _spin(n)
    one = time.perf_counter() - t0
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_spin, [1000, 1000])
        t0 = time.perf_counter()
        pool.map(_spin, [n] * 4, chunksize=1)
        two = time.perf_counter() - t0
    return one / two


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


# -- start-up -------------------------------------------------------------------------------

def _wall(argv: list[str], env: dict, repeat: int) -> float:
    """The median wall time of a command."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_startup(path: pathlib.Path, repeat: int = 7) -> dict:
    """Wall time of ``wpptrace fmt`` on the small file, as a user runs it (a fresh
    interpreter, compiled bytecode cached as an installed package has it), split into Python's
    own start-up, the imports ``fmt`` needs, and the rest (TMF reading, compiling the
    messages used, decoding, writing)."""
    env = _installed_env()
    fmt = [sys.executable, "-m", "wpptrace", "fmt", str(path), "-p", str(TMF_DIR), "-o", os.devnull]
    imports = [sys.executable, "-c", "import wpptrace.cli, wpptrace.decoder.cli_fmt"]
    bare = [sys.executable, "-c", "pass"]
    subprocess.run(fmt, env=env, check=True, capture_output=True)     # writes the bytecode cache
    start = _wall(bare, env, repeat)
    imported = _wall(imports, env, repeat)
    total = _wall(fmt, env, repeat)
    with tempfile.TemporaryDirectory() as cache_dir:   # fmt's program cache, filled by a first run
        warm_env = _installed_env(cache_dir)
        subprocess.run(fmt, env=warm_env, check=True, capture_output=True)
        warm = _wall(fmt, warm_env, repeat)
    return {"start": start, "import": imported - start, "work": total - imported, "total": total,
            "warm": warm}


# -- the report -----------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        return child(argv[1], argv[2], int(argv[3]), argv[4], argv[5:6] == ["compiled"])
    if argv[:1] == ["--fixed-child"]:
        return fixed_child(argv[1], argv[2])
    if argv[:1] == ["--window-child"]:
        return window_child(argv[1], int(argv[2]), argv[3])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--dissect-events", type=int, default=50_000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="run each fmt configuration this many times, interleaved; keep the one "
                         "with the least CPU time (for -j 1 against -j 2: the least wall time)")
    ap.add_argument("--keep", action="store_true", help="keep generated traces of other sizes")
    args = ap.parse_args(argv)

    unique = _cached(f"unique-v{UNIQUE_VERSION}", args.events, generate_unique)
    interned = _cached(f"v{GEN_VERSION}", args.events, generate)
    small = _cached(f"unique-v{UNIQUE_VERSION}", 1000, generate_unique)
    files = (("unique", unique), ("interned", interned))

    runs: dict[tuple, list[dict]] = {}
    machine: list[float] = []
    slowdowns: list[float] = []   # the slower of two runs at once / one alone
    pair_steal: list[float] = []  # the host's share of the vCPUs' time during each pair
    splits: list[float] = []      # the two halves in two processes sharing nothing, at once
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "fmt.out")
        warm = os.path.join(tmp, "programs")      # fmt's program cache, for the warm runs
        os.mkdir(warm, 0o700)
        run_child(unique, "text", 1, out, cache_dir=warm)   # fills it (a first run over these TMFs)
        os.unlink(out)
        for _ in range(max(1, args.repeat)):
            for name, path in files:
                for fmt, _label in FORMATS:
                    runs.setdefault((name, fmt, 1), []).append(run_child(path, fmt, 1, os.devnull))
            machine.append(machine_speedup())
            for compiled in (False, True, "warm"):
                for jobs in (2, 1):   # -j needs a real output file (the windows are written at their places)
                    runs.setdefault(("unique", "text", jobs, "file", compiled), []).append(
                        run_child(unique, "text", jobs, out, compiled is True,
                                  warm if compiled == "warm" else None))
                    os.unlink(out)    # each run makes a new file (replacing one costs its freeing)
            # two -j 1 runs at once, between two alone (this VM's speed drifts within seconds)
            pair = run_pair(unique, (out, out + ".2"))
            after = run_child(unique, "text", 1, out)
            os.unlink(out)
            alone = (runs[("unique", "text", 1, "file", False)][-1]["wall"] + after["wall"]) / 2
            slowdowns.append(max(r["wall"] for r in pair) / alone)
            pair_steal.append(max(r["steal"] for r in pair))
            splits.append(run_split(unique, (out, out + ".2")))
        machine.append(machine_speedup())
    startup = bench_startup(small)
    n_rows, c_rows = bench_rows(unique)
    n_keys, fixed_alone, fixed = bench_fixed_cost(unique)
    dis = bench_dissect(unique, args.dissect_events)
    ref = bench_reference()
    load_now = os.getloadavg()

    tracefmt_rate = TRACEFMT_EVENTS / TRACEFMT_SECONDS
    print(f"\nwpptrace fmt, {args.events:,} events, one process (-j 1), output /dev/null; best of "
          f"{max(1, args.repeat)} by CPU time; load average = 1-min load when the run ended")
    print(f"{'file':10} {'format':11} {'wall s':>7} {'events/s':>11} {'CPU s':>7} {'events/s CPU':>13} "
          f"{'x text':>7} {'peak RSS':>9} {'load':>5}")
    results = {}
    for name, _path in files:
        text_run = best(runs[(name, "text", 1)])
        for fmt, label in FORMATS:
            r = best(runs[(name, fmt, 1)])
            n = r["totals"]["Total Events Processed"]
            results[(name, fmt)] = r
            ratio = r["wall"] / text_run["wall"]
            print(f"{name:10} {label:11} {r['wall']:>7.2f} {n / r['wall']:>11,.0f} {r['cpu']:>7.2f} "
                  f"{n / r['cpu']:>13,.0f} {ratio:>6.2f}x {r['rss_mb']:>6.1f} MB {r['load']:>5.1f}")
            bad = r["totals"]["Total Format Errors"] + r["totals"]["Total Formats Unknown"]
            if bad:
                print(f"  {bad} format errors / unknown messages (expected 0)")
    u_text = results[("unique", "text")]
    n_text = u_text["totals"]["Total Events Processed"]
    text_wall_rate, text_cpu_rate = n_text / u_text["wall"], n_text / u_text["cpu"]

    print("\nother figures on the unique-argument file:")
    print(f"  wpptrace fmt rows (engine: walk + merge, no format)  {n_rows / c_rows:>11,.0f} events/s CPU")
    if dis is not None:
        dis_rate = dis[0] / dis[1]
        print(f"  dissect.etl raw parse (first {dis[0]:,} records)       {dis_rate:>11,.0f} events/s wall "
              f"({dis[0] / dis[2]:,.0f}/s CPU)")
    print(f"  tracefmt (WDK, published FmtSum.txt)                  {tracefmt_rate:>11,.0f} events/s")
    factor = ref / REFERENCE_QUIET_RATE
    print(f"  machine speed now: reference unpack+% loop {ref:,.0f}/s CPU = {factor:.2f}x its "
          f"quiet-machine rate; text at quiet-machine speed ~{text_cpu_rate / factor:,.0f} events/s")

    # the fastest run of each: a run the host took time from uses less CPU time but more wall
    # time, so the least CPU time can pick the most disturbed run (a -j 2 run with 30% of the
    # vCPUs' time stolen: 1.06 s of wall, 0.87 s of CPU)
    j1_runs, j2_runs = runs[("unique", "text", 1, "file", False)], runs[("unique", "text", 2, "file", False)]
    j1, j2 = min(j1_runs, key=lambda r: r["wall"]), min(j2_runs, key=lambda r: r["wall"])
    speedup = j1["wall"] / j2["wall"]
    walls = [", ".join(f"{r['wall']:.2f}" for r in each) for each in (j1_runs, j2_runs)]
    print(f"\n-j 2 on the unique-argument file, text to a file (the fastest of {len(j2_runs)} runs "
          f"each: -j 1 took {walls[0]} s, -j 2 {walls[1]} s):")
    for label, r in (("-j 1", j1), ("-j 2", j2)):
        print(f"  {label}: wall {r['wall']:.2f} s, CPU {r['cpu']:.2f} s (workers included), "
              f"load average {r['load']:.1f}, the host took {r['steal']:.0%} of the vCPUs' time "
              f"(steal)")
    print(f"  speed-up {speedup:.2f}x wall (CPU time -j 2 / -j 1: {j2['cpu'] / j1['cpu']:.2f}); "
          f"with the 1-min load average at {max(j1['load'], j2['load']):.1f} on {os.cpu_count()} CPUs "
          f"the two processes of -j 2 share the cores with others")
    work = j1["cpu"] - fixed_alone
    print(f"  fixed cost per process (TMF entries read, {n_keys:,} messages compiled): one process "
          f"{fixed_alone:.2f} s CPU of -j 1's {j1['cpu']:.2f} s; the slower of -j 2's two, compiling "
          f"its share of the messages and installing the rest, both at once, {fixed:.2f} s; with it, 2 "
          f"processes can at best give "
          f"{j1['cpu'] / (fixed + work / 2):.2f}x on 2 free cores")
    print(f"  the machine's own speed-up, 2 processes vs 1 (plain CPU loop, before/between/after the "
          f"runs): {', '.join(f'{m:.2f}x' for m in machine)}")
    slowdowns.sort()
    slowdown = statistics.median(slowdowns)
    ceiling = j1["cpu"] / ((fixed + work / 2) * slowdown)
    print(f"  on this very work: two -j 1 runs of the whole file at once (each to its own file), "
          f"beside one alone just before and after: the slower of the two took "
          f"{', '.join(f'{r:.2f}x' for r in slowdowns)} as long as one alone (median {slowdown:.2f}x), "
          f"so 2 processes give at most {2 / slowdown:.2f}x here, and -j 2 with its fixed cost at "
          f"most {ceiling:.2f}x (it reached {speedup / ceiling:.0%} of that); the host took "
          f"{', '.join(f'{v:.0%}' for v in pair_steal)} of the vCPUs' time during the pairs")
    paired = [one["wall"] / two["wall"] for one, two in zip(j1_runs, j2_runs)]
    print(f"  each round's -j 1 against the -j 2 run just before it: "
          f"{', '.join(f'{r:.2f}x' for r in paired)} (median {statistics.median(paired):.2f}x; the "
          f"VM's speed drifts within seconds, so the two runs of a round are closer in speed than "
          f"the fastest of each)")
    c1_runs = runs[("unique", "text", 1, "file", True)]
    c2_runs = runs[("unique", "text", 2, "file", True)]
    compiled_paired = [one["wall"] / two["wall"] for one, two in zip(c1_runs, c2_runs)]
    c_median = statistics.median(compiled_paired)
    c_walls = [", ".join(f"{r['wall']:.2f}" for r in each) for each in (c1_runs, c2_runs)]
    print(f"  without the fixed cost (each process decodes the file once first, then the timed run "
          f"reuses its decoder, every message compiled): -j 1 took {c_walls[0]} s, -j 2 "
          f"{c_walls[1]} s; each round's ratio "
          f"{', '.join(f'{r:.2f}x' for r in compiled_paired)} (median {c_median:.2f}x, "
          f"{c_median / (2 / slowdown):.0%} of what two processes give here)")
    w1_runs = runs[("unique", "text", 1, "file", "warm")]
    w2_runs = runs[("unique", "text", 2, "file", "warm")]
    w1, w2 = min(w1_runs, key=lambda r: r["wall"]), min(w2_runs, key=lambda r: r["wall"])
    warm_speedup = w1["wall"] / w2["wall"]
    warm_paired = [one["wall"] / two["wall"] for one, two in zip(w1_runs, w2_runs)]
    w_walls = [", ".join(f"{r['wall']:.2f}" for r in each) for each in (w1_runs, w2_runs)]
    print(f"  with fmt's program cache warm (a run before over the same TMF files left every "
          f"message's program in it; nothing compiled): -j 1 took {w_walls[0]} s, -j 2 "
          f"{w_walls[1]} s; the fastest of each {warm_speedup:.2f}x (CPU time -j 2 / -j 1: "
          f"{w2['cpu'] / w1['cpu']:.2f}); each round's ratio "
          f"{', '.join(f'{r:.2f}x' for r in warm_paired)} (median {statistics.median(warm_paired):.2f}x)")
    steps = j2.get("steps") or {}
    if steps.get("workers_decoded") and None not in steps["workers_decoded"]:
        began = steps["began"]
        forked, last = began + steps["forked"], began + max(steps["decoded"],
                                                            *steps["workers_decoded"])
        appended = began + steps["appended"]
        outside = j2["wall"] - (last - forked)
        worker_windows = ", ".join(f"{e - steps['forked']:.3f}" for e in steps["workers_decoded"])
        owners = steps.get("owners") or []
        taken = [", ".join(str(k) for k, owner in enumerate(owners) if owner == who) for who in (0, 1)]
        bound = j1["wall"] / (outside + (j1["wall"] - outside) / 2 * slowdown)
        print(f"  -j 2's steps (the run above): {forked * 1e3:.0f} ms before the fork (TMF "
              f"listing, buffer index, cuts); then {len(owners)} windows (this process decoded "
              f"{taken[0] or 'none'}, the worker {taken[1] or 'none'}): this process's last "
              f"decoded after {steps['decoded'] - steps['forked']:.3f} s, the worker's after "
              f"{worker_windows} s; "
              f"the last bytes in the output {(appended - last) * 1e3:.0f} ms after the later one, the "
              f"run's end {(j2['wall'] - appended) * 1e3:.0f} ms after that. Outside its windows "
              f"the run took {outside * 1e3:.0f} ms: with that and two processes slowed "
              f"{slowdown:.2f}x, and the rest of -j 1's time split evenly, -j 2 can give at most "
              f"{bound:.2f}x (it reached {speedup / bound:.0%} of that)")
    split = statistics.median(splits)
    print(f"  a split that shares nothing: the file's two halves decoded at once by two fresh processes "
          f"that share nothing (each reads the TMFs and compiles what it uses, writes its own file, "
          f"nothing appended): the slower took {', '.join(f'{v:.2f}' for v in splits)} s (median "
          f"{split:.2f} s), {j1['wall'] / split:.2f}x -j 1's wall time; -j 2 took {j2['wall']:.2f} s")

    print(f"\nstart-up: the {1000:,}-event file with the 90 corpus TMFs, wall (median of 7):")
    print(f"  Python start-up {startup['start']:.3f} s + imports {startup['import']:.3f} s + "
          f"fmt work {startup['work']:.3f} s = {startup['total']:.3f} s (load average "
          f"{os.getloadavg()[0]:.1f}); with the program cache warm {startup['warm']:.3f} s")

    print(f"\ntargets (load average now {load_now[0]:.1f} / {load_now[1]:.1f} / {load_now[2]:.1f} "
          f"on {os.cpu_count()} CPUs):")
    print(f"  text >= {TEXT_TARGET:,}/s, one process, unique arguments: wall {text_wall_rate:,.0f} "
          f"({_verdict(text_wall_rate >= TEXT_TARGET)}), CPU {text_cpu_rate:,.0f} "
          f"({_verdict(text_cpu_rate >= TEXT_TARGET)})")
    if dis is not None:
        ratio = text_wall_rate / dis_rate
        print(f"  text / dissect.etl raw parse >= {DISSECT_RATIO_TARGET}x: {ratio:.0f}x "
              f"({_verdict(ratio >= DISSECT_RATIO_TARGET)}; both wall clock, same run)")
    for name, _path in files:
        t = results[(name, "text")]
        for fmt, label in FORMATS[1:]:
            r = results[(name, fmt)]
            n = r["totals"]["Total Events Processed"]
            rate_ok = n / r["wall"] >= STRUCTURED_TARGET
            ratio = r["wall"] / t["wall"]
            cpu_ratio = r["cpu"] / t["cpu"]
            print(f"  {label} on the {name} file: {n / r['wall']:,.0f}/s wall, {n / r['cpu']:,.0f}/s "
                  f"CPU (>= {STRUCTURED_TARGET:,}: {_verdict(rate_ok)}); {ratio:.2f}x text's wall time, "
                  f"{cpu_ratio:.2f}x its CPU time (<= {FORMAT_TARGET}x: "
                  f"{_verdict(max(ratio, cpu_ratio) <= FORMAT_TARGET)})")
    print(f"  -j 2 speed-up >= {JOBS_TARGET}x: {speedup:.2f}x with the cache off (each run compiles) "
          f"({_verdict(speedup >= JOBS_TARGET)}; load average {max(j1['load'], j2['load']):.1f}); "
          f"{warm_speedup:.2f}x with the program cache warm ({_verdict(warm_speedup >= JOBS_TARGET)}; "
          f"load average {max(w1['load'], w2['load']):.1f})")
    print(f"  1,000 events with the 90 TMFs < {STARTUP_TARGET} s wall: {startup['total']:.3f} s "
          f"({_verdict(startup['total'] < STARTUP_TARGET)}); {startup['warm']:.3f} s with the "
          f"program cache warm ({_verdict(startup['warm'] < STARTUP_TARGET)})")
    rss = max(results[(name, fmt)]["rss_mb"] for name, _ in files for fmt, _ in FORMATS)
    print(f"  peak RSS < {RSS_TARGET_MB} MB, 1M events, one process: {rss:.1f} MB "
          f"({_verdict(rss < RSS_TARGET_MB)})")
    if not args.keep and args.events != 1_000_000:
        unique.unlink()
        interned.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
