#!/usr/bin/env python3
"""Long fuzzing run of the decoder engine (the CI test runs the same property briefly).

    python3 tests/decoder/fuzz_long.py [--examples N] [--corpus DIR]   (default: the unpacked tests/corpus)

Mutates every small corpus .etl file (and a built file with every record kind) and reads
the result every way the engine offers; any exception, hang (> 10 s per example) or
runaway output is reported by hypothesis with the shrunk failing input.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from dec_fuzz import mutate, mutation, read_everything  # noqa: E402
from test_fuzz import BUILT  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=20000)
    ap.add_argument("--corpus", default=None)
    ap.add_argument("--max-size", type=int, default=400_000, help="skip seeds bigger than this")
    args = ap.parse_args()
    if args.corpus is None:
        sys.path.insert(0, str(HERE.parent / "corpus"))
        from unpack import unpacked
        args.corpus = str(unpacked())
    seeds = [BUILT] + [p.read_bytes() for p in sorted(pathlib.Path(args.corpus).rglob("*.etl"))
                       if p.stat().st_size <= args.max_size]
    print(f"{len(seeds)} seed files, {args.examples} examples", flush=True)

    @settings(max_examples=args.examples, deadline=10_000, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def run(data):
        seed = data.draw(st.sampled_from(seeds))
        read_everything(mutate(seed, data.draw(st.lists(mutation(len(seed)), min_size=1,
                                                        max_size=12))))

    t0 = time.perf_counter()
    run()
    print(f"ok: {args.examples} examples in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
