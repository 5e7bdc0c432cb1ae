#!/usr/bin/env python3
"""Message formatting rate of wpptrace.tmf.render over the real driver TMFs of the corpus.

Loads every message of tests/corpus/tmf/nefarius__Nefarius.Utilities.ETW/tmf/ (BthPS3,
BthPS3PSM, DsHidMini, DMF: ~2,600 messages), builds plausible argument bytes per item type, and
prints side by side in one run:

* compile: formatters compiled per second (first use of a message);
* format (compiled, cached): formatted messages/s, cycling over all messages, with the
  decoder's markers mapping (the hot path of ``wpptrace fmt``);
* format (no cache): compile + format per event, i.e. what a reader without compiled
  formatters pays; the ratio is the gain of compiling once;
* findneedle messages: the 14 corpus records whose expected text the tests assert.

Target of the whole fmt pipeline: >= 500k formatted events/s; this is the formatter's share.
Usage: python3 benchmarks/bench_tmf_render.py [--events N]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import struct
import sys
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "corpus"
TMF_DIR = CORPUS / "tmf" / "nefarius__Nefarius.Utilities.ETW" / "tmf"
FINDNEEDLE = CORPUS / "wpp" / "guscatalano__findneedle" / "tmf"


def sample_bytes(item: str, ps: int, i: int) -> bytes:
    from wpptrace.tmf.itemtypes import ITEM_TYPES
    it = ITEM_TYPES[item]
    size = it.fixed_size(ps)
    if item == "ItemNTSTATUS":
        return struct.pack("<I", (0, 0xC0000022, 0xC000000D, 0x103)[i % 4])
    if item == "ItemDouble":
        return struct.pack("<d", i / 7)
    if size is not None:
        return (i * 0x9E3779B97F4A7C15 & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
    text = f"dev-{i % 97}"
    if it.wire == "cstr":
        return text.encode() + b"\0"
    if it.wire == "wstr":
        return text.encode("utf-16-le") + b"\0\0"
    if it.wire in ("pstr", "hexdump"):
        return struct.pack("<H", len(text)) + text.encode()
    if it.wire == "pwstr":
        raw = text.encode("utf-16-le")
        return struct.pack("<H", len(raw)) + raw
    if it.wire == "sid":
        return bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18)
    raise ValueError(item)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=500_000)
    args = ap.parse_args(argv)
    from wpptrace.tmf import load
    from wpptrace.tmf.render import MessageFormatter, clear_cache, compile_message, marker_defaults

    tmfset = load(TMF_DIR)
    messages = list(tmfset.messages())
    work = []
    for i, m in enumerate(messages):
        try:
            data = b"".join(sample_bytes(a.item, 8, i + k) for k, a in enumerate(m.args))
        except (KeyError, ValueError):
            continue
        work.append((m, data, marker_defaults(m)))
    print(f"corpus: {len(messages)} messages, {len(work)} with known item types")

    clear_cache()
    t0 = time.perf_counter()
    formatters = [compile_message(m, tmfset) for m, _, _ in work]
    for f, (m, data, mk) in zip(formatters, work):
        f.format(data, 8, mk)  # the per-pointer-size plan is built on first use
    t_compile = time.perf_counter() - t0
    print(f"compile + first format: {len(work) / t_compile:12,.0f} messages/s")

    n = args.events
    jobs = [(f.format, data, mk) for f, (m, data, mk) in zip(formatters, work)]
    k = len(jobs)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fmt, data, mk = jobs[i % k]
        fmt(data, 8, mk)
    t_fast = time.perf_counter() - t0
    cpu_rate = n / max(1e-9, time.process_time() - c0)
    fast_rate = n / t_fast

    n_slow = max(1, n // 50)
    t0 = time.perf_counter()
    for i in range(n_slow):
        m, data, mk = work[i % k]
        MessageFormatter(m, tmfset).format(data, 8, mk)
    t_slow = time.perf_counter() - t0
    slow_rate = n_slow / t_slow

    fn = load(FINDNEEDLE)
    fn_jobs = []
    for m in fn.messages():
        data = b"".join(sample_bytes(a.item, 8, 3) for a in m.args)
        fn_jobs.append((compile_message(m, fn).format, data, marker_defaults(m)))
    t0 = time.perf_counter()
    for i in range(n):
        fmt, data, mk = fn_jobs[i % len(fn_jobs)]
        fmt(data, 8, mk)
    fn_rate = n / (time.perf_counter() - t0)

    print(f"{'':34}{'events/s':>14}{'ratio':>10}")
    print(f"{'format, compiled (corpus TMFs)':34}{fast_rate:14,.0f}{fast_rate / slow_rate:9.1f}x")
    print(f"{'  same, per CPU second':34}{cpu_rate:14,.0f}{cpu_rate / slow_rate:9.1f}x")
    print(f"{'format, compile per event':34}{slow_rate:14,.0f}{1.0:9.1f}x")
    print(f"{'format, compiled (findneedle)':34}{fn_rate:14,.0f}{fn_rate / slow_rate:9.1f}x")
    load = os.getloadavg()[0]
    print(f"target for the whole fmt pipeline: 500,000/s; formatter alone (CPU time): "
          f"{'OK' if cpu_rate >= 500_000 else 'below'}; load average {load:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
