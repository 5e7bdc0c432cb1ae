"""What a round-trip test pays for ``wpptrace.testing.capture``, and the Python decoding API
beside ``wpptrace fmt``, in one run.

Per test (a body logging 10 messages through a ``Provider`` with 2 arguments each, then one
``assert_logged``), wall-clock milliseconds, best and median of ``--rounds`` interleaved rounds:

* ``body only``: the 10 calls with no session (what the test costs without a capture);
* ``capture``: the same inside ``with capture(trace)`` plus the assertion: a private session
  started and enabled, stopped, the file decoded with the provider's own TMF, the file removed;
  its parts (start + enable, stop, TMF + decode) are timed separately too;
* ``wpp_capture fixture``: the same through the pytest plugin's factory (naming, cleanup);
* peer ``logging + list handler``: the same 10 messages through ``logging`` into a handler that
  keeps the records and formats them, as pytest's ``caplog`` does;
* peer ``by hand``: what a test did before: StartTrace / EnableTrace / ControlTrace, write_tmf,
  a ``wpptrace fmt -f jsonl`` subprocess and ``json.loads`` (fewer rounds: it is slow).

``first capture in a new process``: a fresh interpreter importing the app and wpptrace.testing
and running one capture, timed inside it (every tenth round).

``pytest without the fixture``: a run of 2,000 trivial tests with the plugin loaded (installing
wpptrace registers it) and with ``-p no:wpptrace``: CPU seconds of the pytest process, best of
5 interleaved runs (the plugin must cost nothing to runs that do not use it).

Decoding API (one file of ``--messages`` messages written by a capture): ``format_file``
consumed line by line beside ``run_fmt`` (the code behind ``wpptrace fmt``) writing text to
/dev/null, and ``decode_file`` beside ``run_fmt -f jsonl``: same engine, so the ratios should
be about 1. Target: the capture overhead (capture minus body only) under 50 ms.
Run: ``python benchmarks/bench_capture.py [--rounds N] [--messages N]``.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# The code under test lives in a module file: Provider call sites are found from their source.
APP = textwrap.dedent('''
    import logging
    from wpptrace.provider.tracing import Provider

    trace = Provider("BenchCapture", flags=("IO",))
    IO = trace.flags.IO
    log = logging.getLogger("bench.capture")


    def body(k):
        for i in range(10):
            trace.info(IO, "read %d bytes from %s", k + i, "a.txt")


    def logging_body(k):
        for i in range(10):
            log.info("read %d bytes from %s", k + i, "a.txt")
''')


def load_app(tmp: str):
    path = os.path.join(tmp, "bench_capture_app.py")
    with open(path, "w") as fh:
        fh.write(APP)
    sys.path.insert(0, tmp)
    import bench_capture_app
    return bench_capture_app


def cases(app, tmp: str, parts: dict[str, list[float]]):
    from wpptrace.provider import api
    from wpptrace.testing import CaptureFactory, capture

    trace = app.trace

    def body_only(k):
        app.body(k)

    def with_capture(k):
        with capture(trace) as cap:
            app.body(k)
        cap.assert_logged("read %d bytes from %s", k, "a.txt")
        cap.discard()

    def capture_parts(k):
        cap = capture(trace)
        t0 = time.perf_counter()
        cap.start()
        t1 = time.perf_counter()
        app.body(k)
        t2 = time.perf_counter()
        cap._end_session()
        t3 = time.perf_counter()
        cap.running = True       # stop() decodes once the session is ended
        cap._session = None
        cap.stop()
        t4 = time.perf_counter()
        cap.discard()
        parts["start + enable"].append(t1 - t0)
        parts["stop"].append(t3 - t2)
        parts["TMF + decode"].append(t4 - t3)

    def with_fixture(k):
        factory = CaptureFactory(f"bench.py::test_{k}")
        with factory(trace) as cap:
            app.body(k)
        cap.assert_logged("read %d bytes from %s", k, "a.txt")
        factory.finish(failed=False)

    records: list = []

    class ListHandler(logging.Handler):
        def emit(self, record):
            self.format(record)
            records.append(record)

    handler = ListHandler()
    app.log.addHandler(handler)
    app.log.setLevel(logging.INFO)
    app.log.propagate = False

    def logging_peer(k):
        records.clear()
        app.logging_body(k)
        assert any(r.getMessage() == f"read {k} bytes from a.txt" for r in records)

    tmf_dir = os.path.join(tmp, "tmf")

    def by_hand(k):
        path = os.path.join(tmp, f"hand-{k}.etl")
        props = api.EVENT_TRACE_PROPERTIES(BufferSize=64, MinimumBuffers=4, MaximumBuffers=32,
                                           LogFileMode=1, LogFileName=path)
        handle = api.StartTrace(f"bench-hand-{os.getpid()}-{k}", props)
        try:
            api.EnableTrace(True, 0xFFFFFFFF, 5, trace.guid, handle)
            app.body(k)
        finally:
            api.ControlTrace(handle, None, None, 1)
        trace.write_tmf(tmf_dir)
        out = subprocess.run([sys.executable, "-m", "wpptrace", "fmt", path, "-p", tmf_dir, "-f",
                              "jsonl"], capture_output=True, text=True, check=True).stdout
        rows = [json.loads(line) for line in out.splitlines()][1:]
        assert any(r["text"] == f"read {k} bytes from a.txt" for r in rows)
        os.unlink(path)

    return [("body only", body_only, 1), ("capture", with_capture, 1),
            ("capture, timed in parts", capture_parts, 1), ("wpp_capture fixture", with_fixture, 1),
            ("peer: logging + list handler", logging_peer, 1), ("peer: by hand (fmt subprocess)", by_hand, 5)]


def first_capture(tmp: str) -> float:
    """A new interpreter: importing the app and wpptrace.testing and one capture, timed inside
    the process (the interpreter's own start is not counted)."""
    script = textwrap.dedent(f'''
        import sys, time
        t = time.perf_counter()
        sys.path.insert(0, {tmp!r})
        import bench_capture_app as app
        from wpptrace.testing import capture
        with capture(app.trace) as cap:
            app.body(0)
        cap.assert_logged("read %d bytes from %s", 0, "a.txt")
        print(time.perf_counter() - t)
    ''')
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout)


def plugin_cost(tmp: str, runs: int = 5) -> None:
    import resource

    folder = os.path.join(tmp, "plain")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "test_plain.py"), "w") as fh:
        fh.write("import pytest\n\n\n@pytest.mark.parametrize('i', range(2000))\n"
                 "def test_plain(i):\n    assert i >= 0\n")
    cpu: dict[str, list[float]] = {"plugin loaded": [], "-p no:wpptrace": []}
    for _ in range(runs):
        for name, extra in (("plugin loaded", []), ("-p no:wpptrace", ["-p", "no:wpptrace"])):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra],
                           cwd=folder, capture_output=True, check=True)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[name].append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    a, b = min(cpu["plugin loaded"]), min(cpu["-p no:wpptrace"])
    print(f"\npytest, 2,000 tests not using the fixture, CPU s (best of {runs}): plugin loaded "
          f"{a:.2f}, -p no:wpptrace {b:.2f}, ratio {a / b:.2f}")


def decoding(app, tmp: str, messages: int, rounds: int) -> None:
    import io

    from wpptrace.decoder import decode_file, format_file
    from wpptrace.decoder.cli_fmt import FmtOptions, run_fmt
    from wpptrace.testing import capture

    with capture(app.trace, keep=True, keep_dir=tmp, name="decoding") as cap:
        for k in range(messages // 10):
            app.body(k)
    etl, tmf = cap.etl_path, os.path.join(cap.kept, "tmf")
    assert cap.lost == 0 and len(cap.messages) == messages
    del cap

    def fmt(output_format: str) -> None:
        opts = FmtOptions(files=[etl], tmf_dirs=[tmf], output=os.devnull,
                          output_format=output_format, progress="never")
        assert run_fmt(opts, out=io.StringIO(), err=io.StringIO()) == 0

    def lines() -> None:
        n = 0
        for _ in format_file(etl, tmf=tmf):
            n += 1
        assert n == messages + 1

    def decoded() -> None:
        assert len(decode_file(etl, tmf=tmf).messages) == messages

    pairs = [("format_file", lines, "run_fmt text", lambda: fmt("text")),
             ("decode_file", decoded, "run_fmt jsonl", lambda: fmt("jsonl"))]
    print(f"\ndecoding {messages:,} messages ({os.path.getsize(etl) / 1e6:.1f} MB), best of {rounds}:")
    for name, fn, peer_name, peer in pairs:
        ours, theirs = [], []
        for _ in range(rounds):
            for target, fn_ in ((ours, fn), (theirs, peer)):
                t = time.perf_counter()
                fn_()
                target.append(time.perf_counter() - t)
        a, b = min(ours), min(theirs)
        print(f"  {name:<14} {messages / a / 1e3:8.0f} k msg/s   {peer_name:<14} "
              f"{messages / b / 1e3:8.0f} k msg/s   ratio {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--messages", type=int, default=100_000)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench-capture-")
    try:
        run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace, tmp: str) -> None:
    app = load_app(tmp)
    parts: dict[str, list[float]] = {"start + enable": [], "stop": [], "TMF + decode": []}
    all_cases = cases(app, tmp, parts)
    for _, fn, _ in all_cases:          # warm up: imports, call sites, formatters
        fn(0)
    for v in parts.values():
        v.clear()
    times: dict[str, list[float]] = {name: [] for name, _, _ in all_cases}
    cold: list[float] = []
    for r in range(args.rounds):
        for name, fn, every in all_cases:
            if r % every == 0:
                t = time.perf_counter()
                fn(r + 1)
                times[name].append(time.perf_counter() - t)
        if r % 10 == 0:
            cold.append(first_capture(tmp))
    print(f"a test logging 10 messages, wall ms (best / median of {args.rounds} rounds), "
          f"Python {sys.version.split()[0]}:")
    base = min(times["body only"])
    for name, values in times.items():
        best, med = min(values) * 1e3, statistics.median(values) * 1e3
        extra = "" if name == "body only" else f"   overhead {best - base * 1e3:7.2f} ms"
        print(f"  {name:<32} {best:8.2f} / {med:8.2f}{extra}")
    for name, values in parts.items():
        print(f"    {name:<30} {min(values) * 1e3:8.2f} / {statistics.median(values) * 1e3:8.2f}")
    print(f"  first capture in a new process   {min(cold) * 1e3:8.2f} / {statistics.median(cold) * 1e3:8.2f}"
          f"   (imports, the C core, formatter compilation)")
    overhead = min(times["capture"]) - base
    print(f"target: capture overhead < 50 ms: {overhead * 1e3:.2f} ms -> "
          f"{'met' if overhead < 0.050 else 'NOT met'}")
    plugin_cost(tmp)
    decoding(app, tmp, args.messages, max(3, args.rounds // 10))


if __name__ == "__main__":
    main()
