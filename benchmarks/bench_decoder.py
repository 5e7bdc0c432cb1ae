#!/usr/bin/env python3
"""Raw .etl reading speed (records/s): wpptrace's engine beside dissect.etl, in one run.

Files: the largest corpus files (compressed and not) and a generated 1M-record WPP file
(written by the provider core, cached in the temp directory). For each file:

* engine scan: every buffer read (and decompressed), every record walked and counted by
  kind in C: no per-record Python object (``EtlFile.scan``) — the raw rate;
* records, file order: a lazy ``Record`` per record (``EtlFile.iter_records``);
* records, ProcessTrace order: the same merged by time (``decoder.ordered_records``, the engine);
* typed events: ``wpptrace.decoder.open`` (FILETIME conversion, one object per event);
* dissect.etl: its record iterator, time-boxed (``--dissect-seconds``) because it is slow.

Target: >= 2M records/s raw on the 2-core machine (> 100x dissect.etl).
Usage: python3 benchmarks/bench_decoder.py [--records N] [--dissect-seconds S] [--quick]
"""
from __future__ import annotations

import argparse
import os
import pathlib
import resource
import sys
import tempfile
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "corpus"))
from unpack import unpacked  # noqa: E402  (the test corpus, big files unpacked once into ~/.cache)

BIGGEST = ["etl/microsoft__perfview/net.4.5.2.x64.etl", "etl/microsoft__perfview/net.4.5.2.x86.etl",
           "etl/microsoft__perfview/diaghub-dotnetcore3.1-win-x64.diaghub.etl",
           "etl/microsoft__perfview/diaghub-dotnetcore3.1-win-x64.diaghub.user_paged.1.etl",
           "etl/airbus-cert__etl-parser/ShutdownPerfDiagLogger.etl"]
TARGET = 2_000_000
GUID = uuid.UUID("6f2b8a52-0c3d-4e1f-9a7b-5d4c3b2a1908")


def generate(path: pathlib.Path, count: int) -> None:
    """A WPP-like file from the provider core: 4 threads of TraceMessage(0x2B) records with
    8-24 bytes of arguments, 64 KiB buffers."""
    import threading

    import wpptrace.provider as P
    from wpptrace.provider.sessions import TraceSession

    per = count // 4
    tmp = path.with_suffix(".tmp")
    with TraceSession(f"bench-decoder-{os.getpid()}", tmp, BufferSize=64, MaximumBuffers=512) as s:
        def work(k: int) -> None:
            guid = GUID.bytes_le
            for i in range(per):
                for _ in range(1000):
                    if not P.trace_packed(s.handle, 0x2B, guid, 10 + (i & 7),
                                          i.to_bytes(8, "little") + b"argument"[: i & 7]
                                          + bytes(8 + (i & 8))):
                        break
                    time.sleep(0.001)            # buffers full: let the flush thread catch up
                else:
                    raise RuntimeError("the provider core keeps refusing events")
        threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    os.replace(tmp, path)


def rate(fn) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = fn()
    return n, time.perf_counter() - t0


def measure(path: pathlib.Path, dissect_seconds: float, quick: bool) -> dict:
    import wpptrace.decoder as dec
    from wpptrace.decoder.etlfile import EtlFile
    from wpptrace.decoder import ordered_records

    def scan() -> int:
        with EtlFile(path) as etl:
            return etl.scan().records

    def file_order() -> int:
        with EtlFile(path) as etl:
            return sum(1 for _ in etl.iter_records())

    def ordered() -> int:
        with EtlFile(path) as etl:
            return sum(1 for _ in ordered_records(etl))

    def events() -> int:
        with dec.open(path) as reader:
            return sum(1 for _ in reader)

    def dissect() -> int:
        from dissect.etl import ETL

        n, stop = 0, time.perf_counter() + dissect_seconds
        with open(path, "rb") as fh:
            for _ in ETL(fh):
                n += 1
                if not n & 255 and time.perf_counter() > stop:
                    break
        return n

    out = {}
    scan()                                           # warm the page cache
    out["engine scan (C walk, no objects)"] = min((rate(scan) for _ in range(3)), key=lambda r: r[1])
    out["records, file order"] = rate(file_order)
    if not quick:
        out["records, ProcessTrace order"] = rate(ordered)
        out["typed events (decoder.open)"] = rate(events)
    out["dissect.etl"] = rate(dissect)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=1_000_000, help="size of the generated file")
    ap.add_argument("--dissect-seconds", type=float, default=4.0)
    ap.add_argument("--quick", action="store_true", help="raw scan, file order and dissect only")
    args = ap.parse_args()

    generated = pathlib.Path(tempfile.gettempdir()) / f"wpptrace-bench-decoder-{args.records}.etl"
    if not generated.exists():
        t0 = time.perf_counter()
        generate(generated, args.records)
        print(f"generated {generated} with the provider core in {time.perf_counter() - t0:.1f} s")
    corpus = unpacked()
    files = [generated] + [corpus / rel for rel in BIGGEST]

    print(f"{'file':<44} {'MB':>6} {'way of reading':<34} {'records':>9} {'seconds':>8} "
          f"{'records/s':>11} {'x dissect':>9}")
    raw_rates = []
    for path in files:
        results = measure(path, args.dissect_seconds, args.quick)
        d_n, d_s = results["dissect.etl"]
        d_rate = d_n / d_s if d_s else 0.0
        for how, (n, s) in results.items():
            r = n / s if s else 0.0
            ratio = f"{r / d_rate:8.0f}x" if d_rate and how != "dissect.etl" else ""
            print(f"{path.name[:44]:<44} {path.stat().st_size / 1e6:6.1f} {how:<34} {n:9d} "
                  f"{s:8.3f} {r:11,.0f} {ratio:>9}")
            if how.startswith("engine scan"):
                raw_rates.append((r, path.name, n / (path.stat().st_size / 1e6)))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    met = sum(r >= TARGET for r, _, _ in raw_rates)
    print(f"\nraw target {TARGET:,} records/s: met on {met} of {len(raw_rates)} files; "
          f"peak RSS {peak:.0f} MB; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for r, name, density in sorted(raw_rates):
        if r < TARGET:
            print(f"  below target: {name}: {r:,.0f} records/s ({density:,.0f} records per MB: "
                  f"bound by bytes read, not by records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
