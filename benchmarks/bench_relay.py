"""Relaying a live session over loopback, beside a plain file session, in one run.

Three measurements, each with the file session first and the relayed session beside it:

1. **Throughput, flat out.** A provider thread logs N events (unique arguments, 200-byte
   string) as fast as it can into (a) a sequential file session, (b) a real-time session
   read by ``wpptrace relay`` and sent to ``wpptrace collect`` writing a file (both child
   processes, as deployed). Buffers/s and MB/s from the first event to the last buffer on
   disk (for (b): the collector's file complete), with every loss counter. MaximumBuffers
   1024, so that a burst measures the path rather than how soon a queue fills.
2. **The relay path alone.** ``Relay.add`` of recorded buffers as fast as the collector
   takes them: what the protocol, TCP and the collector's writer carry.
3. **Provider per-event cost at 100k events/s.** The provider paced at 100k events/s for a
   few seconds; its thread's CPU time per event with a file session, then with a file +
   real-time session relayed to a collector. Target: relayed <= 1.2x the file session.

Run: ``python3 benchmarks/bench_relay.py [--events N] [--paced-seconds S] [--repeat R]``.
CPU times are the logging thread's own (the VM is shared: wall time mostly measures other
processes); medians of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parent.parent
PAYLOAD_TEXT = 200
MESSAGE = uuid.UUID("6a1f0c2e-9d3b-4e7a-8c51-3b2d9e4f7a10")


def _setup_runtime() -> None:
    os.environ.setdefault("WPPTRACE_RUNTIME_DIR", tempfile.mkdtemp(prefix="bench-relay-"))


class Session:
    """A session with one enabled provider logging from this process."""

    def __init__(self, directory: pathlib.Path, *, file: bool, realtime: bool,
                 buffer_kb: int = 64, max_buffers: int = 256):
        from wpptrace._core import lib
        from wpptrace.provider import api

        self.api, self.lib = api, lib
        self.name = f"bench-relay-{uuid.uuid4().hex[:8]}"
        self.path = directory / f"{self.name}.etl" if file else None
        self.control = uuid.uuid4()
        self.logger = None
        self.reg = api.RegisterTraceGuids(self._cb, None, self.control, [MESSAGE])
        mode = (lib.EVENT_TRACE_FILE_MODE_SEQUENTIAL if file else 0) | (
            lib.EVENT_TRACE_REAL_TIME_MODE if realtime else 0)
        props = api.EVENT_TRACE_PROPERTIES(BufferSize=buffer_kb, MinimumBuffers=8,
                                           MaximumBuffers=max_buffers, LogFileMode=mode,
                                           FlushTimer=1, LogFileName=str(self.path) if file else "")
        self.handle = api.StartTrace(self.name, props)
        api.EnableTrace(True, 0xFFFFFFFF, 5, self.control, self.handle)

    def _cb(self, code, ctx, buf):
        if code == self.lib.WMI_ENABLE_EVENTS:
            self.logger = self.api.GetTraceLoggerHandle(buf)
        return 0

    def log(self, count: int, pace: float | None = None) -> float:
        """Log ``count`` events; returns the logging thread's CPU seconds."""
        from wpptrace.provider._hazmat import trace_packed_raw

        guid, logger = MESSAGE.bytes_le, self.logger
        text = b"x" * PAYLOAD_TEXT + b"\0"
        start_wall = time.perf_counter()
        start_cpu = time.thread_time()
        for i in range(count):
            trace_packed_raw(logger, 0x2B, guid, 10, struct.pack("<i", i) + text + struct.pack("<Q", i))
            if pace and i % 512 == 511:
                ahead = start_wall + (i + 1) / pace - time.perf_counter()
                if ahead > 0:
                    time.sleep(ahead)
        return time.thread_time() - start_cpu

    def stop(self):
        final = self.api.ControlTrace(self.handle, None, None, self.lib.EVENT_TRACE_CONTROL_STOP)
        self.api.UnregisterTraceGuids(self.reg)
        return final


class Remote:
    """``wpptrace collect`` and ``wpptrace relay`` child processes for one session."""

    def __init__(self, session: str, out: pathlib.Path):
        self.out = out
        self.collect = subprocess.Popen(
            [sys.executable, "-m", "wpptrace.cli", "collect", "--listen", "127.0.0.1:0",
             "-o", str(out), "--sources", "1"], stderr=subprocess.PIPE, text=True)
        line = self.collect.stderr.readline()
        port = line.rsplit(":", 1)[1].split()[0]
        self.relay = subprocess.Popen(
            [sys.executable, "-m", "wpptrace.cli", "relay", session, "--to", f"127.0.0.1:{port}"],
            stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while not list(out.glob("*.etl")):        # subscribed and connected
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not connect")
            time.sleep(0.02)

    def finish(self) -> tuple[pathlib.Path, str]:
        relay_err = self.relay.communicate(timeout=120)[1]
        collect_err = self.collect.communicate(timeout=120)[1]
        (path,) = self.out.glob("*.etl")
        return path, relay_err.strip().splitlines()[-1] + " | " + collect_err.strip().splitlines()[-1]


def _header(path):
    from wpptrace.decoder import EtlFile

    with EtlFile(str(path)) as f:
        return f.header


def throughput(directory: pathlib.Path, events: int, relayed: bool) -> dict:
    d = pathlib.Path(tempfile.mkdtemp(dir=directory))
    # 64 MB of buffers: the throughput of the path, not how soon a burst fills a queue
    session = Session(d, file=not relayed, realtime=relayed, max_buffers=1024)
    remote = Remote(session.name, d / "collected") if relayed else None
    start = time.perf_counter()
    session.log(events)
    final = session.stop()
    report = ""
    if remote is not None:
        path, report = remote.finish()
    else:
        path = session.path
    elapsed = time.perf_counter() - start
    h = _header(path)
    data = (h.buffers_written - 1) * h.buffer_size
    return {"seconds": elapsed, "buffers": h.buffers_written - 1, "mb": data / 1e6,
            "events_lost": final.EventsLost, "rt_lost": final.RealTimeBuffersLost,
            "file_lost": h.buffers_lost, "report": report}


def relay_path(directory: pathlib.Path, repeat: int = 20) -> dict:
    """Relay.add of one recorded session's buffers ``repeat`` times over, to a collector."""
    from wpptrace.remote import Collector, Relay

    d = pathlib.Path(tempfile.mkdtemp(dir=directory))
    session = Session(d, file=True, realtime=False)
    session.log(20000)
    session.stop()
    from wpptrace._core import ffi

    data = session.path.read_bytes()
    size = int.from_bytes(data[:4], "little")
    buffers = [data[i:i + size] for i in range(0, len(data), size)]
    seq_at = ffi.offsetof("WMI_BUFFER_HEADER", "SequenceNumber")
    stream = []
    for k in range(repeat):        # each round numbered after the last: the order rule holds
        for buf in buffers[1:]:
            seq = int.from_bytes(buf[seq_at:seq_at + 8], "little") + k * len(buffers)
            stream.append(buf[:seq_at] + seq.to_bytes(8, "little") + buf[seq_at + 8:])
    with Collector(("127.0.0.1", 0), output_dir=str(d / "c")) as collector:
        relay = Relay(collector.address, buffer_size=size, name="bench", max_queue=1 << 20).start()
        start = time.perf_counter()
        relay.add(buffers[0])
        for buf in stream:
            relay.add(buf)
        relay.finish()
        relay.wait(300)
        collector.wait_for(lambda ss: ss and ss[0].closed, 300)
        elapsed = time.perf_counter() - start
        (source,) = collector.sources
    n = source.buffers
    return {"seconds": elapsed, "buffers": n, "mb": n * size / 1e6, "wire_mb": source.bytes / 1e6,
            "lost": source.lost}


def paced_cost(directory: pathlib.Path, seconds: float, relayed: bool) -> dict:
    d = pathlib.Path(tempfile.mkdtemp(dir=directory))
    session = Session(d, file=True, realtime=relayed)
    remote = Remote(session.name, d / "collected") if relayed else None
    rate = 100_000
    count = int(rate * seconds)
    cpu = session.log(count, pace=rate)
    final = session.stop()
    report = remote.finish()[1] if remote is not None else ""
    return {"ns_per_event": cpu / count * 1e9, "events_lost": final.EventsLost,
            "rt_lost": final.RealTimeBuffersLost, "report": report}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--paced-seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    _setup_runtime()
    sys.path.insert(0, str(REPO / "src"))
    directory = pathlib.Path(tempfile.mkdtemp(prefix="bench-relay-"))

    print(f"1. flat out, {args.events} events of {PAYLOAD_TEXT + 13} argument bytes, "
          f"64 KB buffers (median of {args.repeat})")
    for relayed in (False, True):
        runs = [throughput(directory, args.events, relayed) for _ in range(args.repeat)]
        r = sorted(runs, key=lambda x: x["seconds"])[len(runs) // 2]
        label = "relayed (relay -> collect file)" if relayed else "file session"
        print(f"   {label:34s} {r['buffers'] / r['seconds']:8.0f} buffers/s "
              f"{r['mb'] / r['seconds']:7.1f} MB/s  ({r['seconds']:.2f} s; events lost "
              f"{r['events_lost']}, real-time buffers lost {r['rt_lost']}, file BuffersLost "
              f"{r['file_lost']})")
        if relayed:
            print(f"      {r['report']}")

    r = relay_path(directory)
    print("2. the relay path alone (Relay.add of recorded 64 KB buffers -> collector file)")
    print(f"   {r['buffers'] / r['seconds']:8.0f} buffers/s {r['mb'] / r['seconds']:7.1f} MB/s "
          f"of buffers, {r['wire_mb'] / r['seconds']:7.1f} MB/s on the wire; lost {r['lost']}")

    print(f"3. provider CPU per event at 100k events/s for {args.paced_seconds:g} s "
          f"(median of {args.repeat})")
    results = {}
    runs = {False: [], True: []}
    for _ in range(args.repeat):           # alternated: a load change hits both alike
        for relayed in (False, True):
            runs[relayed].append(paced_cost(directory, args.paced_seconds, relayed))
    for relayed in (False, True):
        costs = sorted(r["ns_per_event"] for r in runs[relayed])
        cost = statistics.median(costs)
        results[relayed] = cost
        worst = max(runs[relayed], key=lambda x: x["events_lost"] + x["rt_lost"])
        label = "file + real-time, relayed" if relayed else "file session"
        print(f"   {label:34s} {cost:8.0f} ns/event  (runs {costs[0]:.0f}..{costs[-1]:.0f}; "
              f"events lost {worst['events_lost']}, real-time buffers lost {worst['rt_lost']})")
        if relayed:
            print(f"      {worst['report']}")
    ratio = results[True] / results[False]
    print(f"   relayed / file: {ratio:.2f}x (target <= 1.20x): {'met' if ratio <= 1.2 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
