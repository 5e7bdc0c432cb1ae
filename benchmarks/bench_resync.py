#!/usr/bin/env python3
"""Locating the buffers of damaged compressed files: the search for the next buffer header
over zeros and over garbage (MB/s), and a file of many tiny buffers (time, peak memory).

Inputs, made in a temporary directory from the corpus copy of net.4.5.2.x86.etl (compressed):

* zero tail: buffer 200's BufferSize set to 0x7ffffff8 (the search finds buffer 201), the
  file then extended with zeros to ``--size`` MB (a sparse file, as ``truncate -s`` makes);
* garbage tail: the same damage, then seeded random bytes up to ``--size`` MB;
* tiny buffers: buffer 0, then ``--tiny`` buffers of 72 bytes (a header each, no events).

For each: CPU seconds of ``EtlFile.buffer_index()`` in this process (the rate is the file's
size over it), and a ``wpptrace dump --summary-only`` child's wall time and peak RSS. Wall
and CPU times move with the machine's load: compare runs made one after the other.
Usage: python3 benchmarks/bench_resync.py [--size MB] [--tiny N]
"""
from __future__ import annotations

import argparse
import io
import os
import pathlib
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "corpus"))
from unpack import unpacked  # noqa: E402  (the test corpus, big files unpacked once into ~/.cache)

SOURCE = "etl/microsoft__perfview/net.4.5.2.x86.etl"
DAMAGED_BUFFER = 200


def damaged(data: bytes) -> bytearray:
    from wpptrace.decoder.etlfile import EtlFile

    with EtlFile(io.BytesIO(data)) as etl:
        at = etl.buffer_index()[DAMAGED_BUFFER].file_offset
    out = bytearray(data)
    struct.pack_into("<I", out, at, 0x7FFFFFF8)
    return out


def zero_tail(path: pathlib.Path, data: bytes, size: int) -> None:
    path.write_bytes(damaged(data))
    os.truncate(path, size)


def garbage_tail(path: pathlib.Path, data: bytes, size: int) -> None:
    rng = random.Random(1)
    with open(path, "wb") as out:
        out.write(damaged(data))
        while out.tell() < size:
            out.write(rng.randbytes(min(1 << 24, size - out.tell())))


def tiny_buffers(path: pathlib.Path, data: bytes, count: int) -> None:
    first = struct.unpack_from("<I", data, 0)[0]
    head = bytearray(data[first:first + 72])
    struct.pack_into("<III", head, 0, 72, 72, 72)       # BufferSize, SavedOffset, CurrentOffset
    struct.pack_into("<IH", head, 48, 72, 0x21)         # FilledBytes, BufferFlag (not compressed)
    with open(path, "wb") as out:
        out.write(data[:first])
        for i in range(count):
            struct.pack_into("<q", head, 24, i + 1)     # SequenceNumber
            out.write(head)


def locate_cpu(path: pathlib.Path) -> tuple[float, int, int]:
    """(CPU seconds of buffer_index, buffers found, errors reported)."""
    from wpptrace.decoder.etlfile import EtlFile

    t0 = time.process_time()
    with EtlFile(path) as etl:
        found = len(etl.buffer_index())
        errors = len(etl.errors)
    return time.process_time() - t0, found, errors


def dump(path: pathlib.Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of ``wpptrace dump --summary-only`` in a child."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "subprocess.run([sys.executable, '-m', 'wpptrace.cli', 'dump', '--summary-only', sys.argv[1]], "
            "stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         check=True).stdout.split()
    return float(out[0]), int(out[1]) // 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=300, help="MB of the zero and garbage files")
    ap.add_argument("--tiny", type=int, default=400_000, help="buffers of the tiny-buffer file")
    args = ap.parse_args()
    data = (unpacked() / SOURCE).read_bytes()
    work = pathlib.Path(tempfile.mkdtemp(prefix="bench-resync-"))
    try:
        cases = [("zero tail", zero_tail, args.size << 20), ("garbage tail", garbage_tail, args.size << 20),
                 ("tiny buffers", tiny_buffers, args.tiny)]
        for name, make, arg in cases:
            path = work / (name.replace(" ", "-") + ".etl")
            make(path, data, arg)
            size = path.stat().st_size
            cpu, found, errors = locate_cpu(path)
            wall, rss = dump(path)
            print(f"{name:13s} {size / 1e6:8.1f} MB  locate {cpu:6.2f} s CPU ({size / 1e6 / cpu:7.0f} MB/s), "
                  f"{found} buffers, {errors} errors;  dump --summary-only {wall:6.2f} s, {rss} MB peak RSS")
            path.unlink()
    finally:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
