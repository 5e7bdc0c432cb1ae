#!/usr/bin/env python3
"""Structured decoding from Python beside text, on one real-shaped WPP trace, in one run.

The trace is bench_fmt.py's (the corpus driver TMFs' messages, argument bytes per item type,
a skewed message mix), ``--events`` events (default 100,000), generated once into the temp
directory. CPU seconds, best of ``--repeat`` interleaved runs (TMFs loaded once, outside):

* ``format_file`` text lines (the engine's rows, the C renderer), the reference;
* ``run_fmt -f jsonl`` to /dev/null (text plus every event's fields and typed arguments);
* ``decode_file``: one ``DecodedMessage`` per message (the same rows and renderer: the text
  from the renderer, arguments decoded when first read);
* ``decode_file + args``: the same, then every message's typed arguments read;
* the floors of those two in Python: text lines, one object per line kept in a list (a
  three-slot class made by a Python ``__init__``, as a message holds its text, row and
  chunk); then, per object, one property read making one tuple with a ``Struct``.

Target: ``decode_file`` within 3x of text lines, ``decode_file + args`` within 1.5x of jsonl
(both decode every argument); the floors' ratios say how near the targets a design of one
Python object per message can come.
Usage: python3 benchmarks/bench_decode.py [--events N] [--repeat N]
"""
from __future__ import annotations

import argparse
import io
import os
import pathlib
import struct
import tempfile
import time

import bench_fmt  # (this folder is on the path of its scripts)

REPO = pathlib.Path(__file__).resolve().parent.parent
TEXT_TARGET, JSONL_TARGET = 3.0, 1.5
_PAIR = struct.Struct("<II")
_BLOCK = bytes(8)


class _Least:
    """The least a message object can be: its text and two references, and its arguments
    as one tuple made when first read."""

    __slots__ = ("text", "ref", "chunk", "_args")

    def __init__(self, text: str, ref: int, chunk: object) -> None:
        self.text, self.ref, self.chunk = text, ref, chunk
        self._args = None

    @property
    def args(self) -> tuple:
        args = self._args
        if args is None:
            args = self._args = _PAIR.unpack_from(_BLOCK, 0)
        return args


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)

    from wpptrace.decoder import decode_file, format_file, load_tmf
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt

    path = pathlib.Path(tempfile.gettempdir()) / f"wpptrace-bench-decode-{args.events}.etl"
    if not path.exists():
        bench_fmt.generate(path, args.events)
    tmfset = load_tmf(str(bench_fmt.TMF_DIR))
    tmfset.load_all()
    etl = str(path)

    def text() -> int:
        return sum(1 for _ in format_file(etl, tmf=tmfset)) - 1       # less the header line

    def jsonl() -> int:
        opts = FmtOptions(files=[etl], tmf_dirs=[str(bench_fmt.TMF_DIR)], output=os.devnull,
                          output_format="jsonl", progress="never")
        assert run_fmt(opts, out=io.StringIO(), err=io.StringIO()) == 0
        return args.events

    def decoded() -> int:
        return len(decode_file(etl, tmf=tmfset).messages)

    def decoded_args() -> int:
        messages = decode_file(etl, tmf=tmfset).messages
        return sum(1 for m in messages if m.args is not None)

    def least() -> list:
        return [_Least(line, i, None) for i, line in enumerate(format_file(etl, tmf=tmfset))][1:]

    def least_args() -> int:
        return sum(1 for m in least() if m.args is not None)

    runs = {"format_file text": text, "run_fmt -f jsonl": jsonl, "decode_file": decoded,
            "decode_file + args": decoded_args, "floor": lambda: len(least()),
            "floor + args": least_args}
    best = {name: float("inf") for name in runs}
    for _ in range(args.repeat):
        for name, fn in runs.items():
            c0 = time.process_time()
            n = fn()
            best[name] = min(best[name], time.process_time() - c0)
            assert n == args.events, (name, n)
    print(f"{args.events:,} events ({path.stat().st_size / 1e6:.1f} MB), CPU s, best of "
          f"{args.repeat}, load average {os.getloadavg()[0]:.2f}:")
    for name, seconds in best.items():
        print(f"  {name:<20} {seconds:6.2f} s  {args.events / seconds / 1e3:8.0f} k msg/s")
    ratio_text = best["decode_file"] / best["format_file text"]
    ratio_jsonl = best["decode_file + args"] / best["run_fmt -f jsonl"]
    print(f"decode_file / text lines: {ratio_text:.2f}x (target <= {TEXT_TARGET}x)"
          f"{'' if ratio_text <= TEXT_TARGET else '  MISSED'}")
    print(f"decode_file + args / jsonl: {ratio_jsonl:.2f}x (target <= {JSONL_TARGET}x)"
          f"{'' if ratio_jsonl <= JSONL_TARGET else '  MISSED'}")
    print(f"floors: {best['floor'] / best['format_file text']:.2f}x text lines, "
          f"{best['floor + args'] / best['run_fmt -f jsonl']:.2f}x jsonl")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
