#!/usr/bin/env python3
"""Long fuzzing run of the record walker over buffers of every size up to 16 MiB (the CI
test test_fuzz_buffer_sizes.py runs the same property briefly).

    python3 tests/decoder/fuzz_buffer_sizes_long.py [--examples N] [--rows-up-to BYTES]

Each example is a buffer of 64 KiB .. 16 MiB built from records, damage, fill, zeros and
noise; it is walked every way the engine offers. Any exception, inconsistent total or
example slower than --bound seconds is reported by hypothesis with the shrunk input; the
slowest example is printed at the end.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hypothesis import HealthCheck, given, settings  # noqa: E402

from dec_fuzz import big_buffer, read_big_buffer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--bound", type=float, default=10.0, help="seconds one example may take")
    ap.add_argument("--rows-up-to", type=int, default=4 << 20,
                    help="also walk the formatter's rows for buffers up to this size")
    args = ap.parse_args()
    slowest = [0.0, 0]

    @settings(max_examples=args.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(big_buffer())
    def run(data):
        seconds = read_big_buffer(data, rows_up_to=args.rows_up_to)
        if seconds > slowest[0]:
            slowest[:] = [seconds, len(data)]
        assert seconds < args.bound, f"{len(data)} bytes took {seconds:.1f} s"

    t0 = time.perf_counter()
    run()
    print(f"ok: {args.examples} examples in {time.perf_counter() - t0:.0f} s; slowest "
          f"{slowest[0]:.3f} s ({slowest[1] >> 10} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
