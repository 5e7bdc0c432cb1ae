"""Cross-process sessions: what a provider pays per event when its session runs in another
process, beside a session in its own process, and what two provider processes reach together.

Run: ``python3 benchmarks/bench_crossprocess.py [--events N] [--repeat R] [--aggregate N] [--wall]``.

* Per-event cost: the same provider process logs the same message ("Read %u bytes from %s",
  a ULONG and "hello", WPP flags 0x2B) N events x R rounds, once into a private session it
  runs itself (EVENT_TRACE_PRIVATE_LOGGER_MODE: buffers and flusher in its own process) and
  once into a session started by this script, whose host is another process (the provider
  writes into the session's shared memory; the host flushes). Both rows are medians of the
  rounds, taken alternately in one run, for the C API (TraceMessage from a C program linked
  with the core) and for the Python fast path (``trace_packed``). Target: the cross-process
  figure at most 1.3x the in-process one.
* Aggregate: two provider processes (C) log at full speed into one session at once; events
  per second from the first event to the last, with EventsLost (must be 0: the pool is sized
  for it).

Times per event are the logging thread's CPU time (the development VM is shared; ``--wall``
gives wall-clock medians). The aggregate rate is wall time by nature.
"""
from __future__ import annotations

import argparse
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import uuid

REPO = pathlib.Path(__file__).resolve().parent.parent
CONTROL = "6a0d4f3c-1b2a-4c5d-0102-030405060708"

C_WORKER = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "wpptrace_etw.h"

static volatile TRACEHANDLE g_logger;
static ULONG cb(WMIDPREQUESTCODE code, PVOID ctx, ULONG *size, PVOID buf) {
    (void)ctx; (void)size;
    g_logger = code == WMI_ENABLE_EVENTS ? GetTraceLoggerHandle(buf) : 0;
    return 0;
}
static clockid_t g_clock = CLOCK_THREAD_CPUTIME_ID;
static double now_ns(clockid_t c) {
    struct timespec ts; clock_gettime(c, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}
static GUID g_msg = {0x01234567, 0x89ab, 0xcdef, {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}};
static GUID g_ctl = {0x6a0d4f3c, 0x1b2a, 0x4c5d, {1, 2, 3, 4, 5, 6, 7, 8}};

/* worker MODE EVENTS ROUNDS [wall]; MODE private PATH | shared NAME | burst NAME */
int main(int argc, char **argv) {
    const char *mode = argv[1], *where = argv[2];
    int events = atoi(argv[3]), rounds = atoi(argv[4]);
    if (argc > 5 && argv[5][0] == 'w') g_clock = CLOCK_MONOTONIC;
    struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props;
    memset(&props, 0, sizeof props);
    props.p.Wnode.BufferSize = sizeof props;
    props.p.LoggerNameOffset = sizeof props.p;
    props.p.LogFileNameOffset = sizeof props.p + 1024;
    TRACEHANDLE session = 0, reg;
    TRACE_GUID_REGISTRATION r = {&g_msg, 0};
    if (RegisterTraceGuids(cb, NULL, &g_ctl, 1, &r, NULL, NULL, &reg)) return 3;
    char name[64];
    if (!strcmp(mode, "private")) {
        props.p.BufferSize = 64;
        props.p.MinimumBuffers = 256;
        props.p.MaximumBuffers = 1024;
        props.p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_PRIVATE_LOGGER_MODE;
        strcpy(props.names + 1024, where);
        snprintf(name, sizeof name, "bench-private-%d", (int)getpid());
        if (StartTrace(&session, name, &props.p) || EnableTrace(1, 1, 5, &g_ctl, session)) return 4;
    } else {
        printf("registered\n");
        fflush(stdout);
        for (int i = 0; i < 3000 && !g_logger; i++) usleep(1000);   /* enabled from outside */
        if (!g_logger) return 5;
        strcpy(name, where);
    }
    ULONG n = 123456;
    unsigned failed = 0;
    double *ns = malloc(sizeof(double) * rounds);
    double first = now_ns(CLOCK_MONOTONIC), last = first;
    for (int k = 0; k < rounds; k++) {
        double t0 = now_ns(g_clock);
        for (int i = 0; i < events; i++)
            failed += TraceMessage(g_logger, 0x2B, &g_msg, 10, &n, (size_t)4, "hello", (size_t)6, NULL) != 0;
        ns[k] = (now_ns(g_clock) - t0) / events;
        last = now_ns(CLOCK_MONOTONIC);
        if (strcmp(mode, "burst"))
            ControlTraceA(session, strcmp(mode, "private") ? name : NULL, &props.p, EVENT_TRACE_CONTROL_FLUSH);
    }
    if (!strcmp(mode, "private")) ControlTraceA(session, NULL, &props.p, EVENT_TRACE_CONTROL_STOP);
    for (int k = 0; k < rounds; k++) printf("round %.2f\n", ns[k]);
    printf("failed %u\nstart %.0f\nend %.0f\n", failed, first, last);
    if (!strcmp(mode, "private")) printf("lost %u\n", props.p.EventsLost);
    return 0;
}
"""

PY_WORKER = textwrap.dedent("""
    import sys, time, uuid
    import wpptrace.provider as P
    mode, where, events, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    clock = time.perf_counter_ns if sys.argv[5:] == ["wall"] else time.thread_time_ns
    state = {"logger": 0}
    def cb(code, ctx, buf):
        state["logger"] = P.GetTraceLoggerHandle(buf) if code == P.WMI_ENABLE_EVENTS else 0
        return 0
    control = uuid.UUID(%r)
    reg = P.RegisterTraceGuids(cb, None, control, [])
    if mode == "private":
        props = P.EVENT_TRACE_PROPERTIES(BufferSize=64, MinimumBuffers=256, MaximumBuffers=1024,
                                         LogFileName=where, LogFileMode=P.EVENT_TRACE_FILE_MODE_SEQUENTIAL
                                         | P.EVENT_TRACE_PRIVATE_LOGGER_MODE)
        session = P.StartTrace("bench-private-py", props)
        P.EnableTrace(True, 1, 5, control, session)
    else:
        print("registered", flush=True)
        deadline = time.monotonic() + 5
        while not state["logger"] and time.monotonic() < deadline:
            time.sleep(0.001)
    trace_packed = P.trace_packed
    message = uuid.UUID("01234567-89ab-cdef-0123-456789abcdef").bytes_le
    payload = (123456).to_bytes(4, "little") + b"hello\\0"
    logger = state["logger"]
    failed = 0
    for k in range(rounds):
        t0 = clock()
        for _ in range(events):
            failed += trace_packed(logger, 0x2B, message, 10, payload) != 0
        print("round %%.2f" %% ((clock() - t0) / events))
        if mode == "private":
            P.ControlTrace(session, None, None, P.EVENT_TRACE_CONTROL_FLUSH)
        else:
            P.ControlTrace(0, where, None, P.EVENT_TRACE_CONTROL_FLUSH)
    if mode == "private":
        print("lost", P.ControlTrace(session, None, None, P.EVENT_TRACE_CONTROL_STOP).EventsLost)
    print("failed", failed)
""") % CONTROL


def build_worker(tmp: pathlib.Path) -> pathlib.Path:
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise SystemExit("bench_crossprocess: no C compiler (cc) found")
    (tmp / "worker.c").write_text(C_WORKER)
    sources = sorted(str(p) for p in (REPO / "provider" / "csrc").glob("etw_*.c"))
    subprocess.run([cc, "-O2", "-std=gnu11", "-I", str(REPO / "src" / "wpptrace" / "include"), "-I",
                    str(REPO / "provider" / "csrc"), str(tmp / "worker.c"), *sources, "-pthread",
                    "-o", str(tmp / "worker")], check=True)
    return tmp / "worker"


def parse(out: str) -> dict:
    rounds, fields = [], {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        if key == "round":
            rounds.append(float(value))
        elif key in ("failed", "lost", "start", "end"):
            fields[key] = float(value)
    fields["rounds"] = rounds
    return fields


def run_private(command: list[str], tmp: pathlib.Path, events: int, rounds: int, clock: str) -> dict:
    out = subprocess.run([*command, "private", str(tmp / f"private-{uuid.uuid4().hex[:6]}.etl"),
                          str(events), str(rounds), clock], check=True, capture_output=True, text=True)
    return parse(out.stdout)


def run_shared(command: list[str], tmp: pathlib.Path, events: int, rounds: int, clock: str,
               mode: str = "shared", workers: int = 1) -> tuple[list[dict], int]:
    """Provider processes logging into a session of this process's making (its own host)."""
    from wpptrace.provider.sessions import TraceSession

    name = f"bench-shared-{uuid.uuid4().hex[:8]}"
    with TraceSession(name, tmp / f"{name}.etl", BufferSize=64, MinimumBuffers=256,
                      MaximumBuffers=2048) as s:
        procs = [subprocess.Popen([*command, mode, name, str(events), str(rounds), clock],
                                  stdout=subprocess.PIPE, text=True) for _ in range(workers)]
        for p in procs:
            assert p.stdout.readline().strip() == "registered"
        s.enable(uuid.UUID(CONTROL), 1, 5)
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=600)
            if p.returncode:
                raise SystemExit(f"bench_crossprocess: a worker failed ({p.returncode})")
            results.append(parse(out))
    return results, s.final.EventsLost


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=200_000, help="events per round (default 200000)")
    ap.add_argument("--repeat", type=int, default=7, help="rounds per case (default 7)")
    ap.add_argument("--aggregate", type=int, default=2_000_000,
                    help="events per provider process in the aggregate run (default 2000000)")
    ap.add_argument("--wall", action="store_true", help="wall-clock medians instead of thread CPU time")
    args = ap.parse_args(argv)
    clock = "wall" if args.wall else "cpu"
    with tempfile.TemporaryDirectory(prefix="bench-xproc-") as tmp_name:
        tmp = pathlib.Path(tmp_name)
        worker = [str(build_worker(tmp))]
        python = [sys.executable, "-c", PY_WORKER]
        rows = []
        for label, command, events in (("C TraceMessage", worker, args.events),
                                       ("Python trace_packed", python, args.events // 4)):
            inside, across, lost, failed = [], [], 0, 0
            for _ in range(args.repeat):       # alternate, so machine noise hits both alike
                r = run_private(command, tmp, events, 1, clock)
                inside += r["rounds"]
                lost += int(r.get("lost", 0))
                failed += int(r["failed"])
                results, shared_lost = run_shared(command, tmp, events, 1, clock)
                across += results[0]["rounds"]
                lost += shared_lost
                failed += int(results[0]["failed"])
            a, b = statistics.median(inside), statistics.median(across)
            rows.append((label, a, b, lost, failed))
        results, lost = run_shared(worker, tmp, args.aggregate, 1, "wall", mode="burst", workers=2)
        span = (max(r["end"] for r in results) - min(r["start"] for r in results)) / 1e9
        total = 2 * args.aggregate - sum(int(r["failed"]) for r in results)
    unit = "wall" if args.wall else "thread CPU"
    print(f"per event, {args.events:,} events (Python: {args.events // 4:,}) x {args.repeat} rounds, "
          f"median ns ({unit} time)")
    print(f"  {'path':<22}{'in-process':>12}{'cross-process':>15}{'ratio':>8}   lost failed")
    for label, a, b, lost_, failed_ in rows:
        print(f"  {label:<22}{a:>12.1f}{b:>15.1f}{b / a:>7.2f}x   {lost_:>4} {failed_:>6}")
    print(f"aggregate: 2 provider processes x {args.aggregate:,} events into one session: "
          f"{total / span / 1e6:.2f} M events/s ({span * 1e3:.0f} ms), EventsLost {lost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
