"""Events per second through the Win32-shaped consumer API, beside the engine and dissect.etl.

For each file: ProcessTrace delivering EVENT_RECORDs (EventRecordCallback) and EVENT_TRACEs
(EventCallback), both to a callback that only counts; the engine's own ProcessTrace-order
iteration (decoder.ordered_records, Record objects, no API structures); and
dissect.etl iterating the same file. Then a live run: a provider logs WPP messages into an
in-process real-time session while ProcessTrace consumes them (events/s delivered, lost).
Run: ``python3 benchmarks/bench_decoder_api.py [FILES]`` (default: the largest corpus files).
"""
from __future__ import annotations

import pathlib
import sys
import time

from wpptrace.decoder import api
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder import ordered_records
from wpptrace.decoder.consumer_types import EVENT_TRACE_LOGFILE, PROCESS_TRACE_MODE_EVENT_RECORD

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "corpus"))
from unpack import unpacked  # noqa: E402  (the test corpus, big files unpacked once into ~/.cache)

DEFAULT = ["etl/microsoft__perfview/net.4.5.2.x64.etl",
           "etl/microsoft__perfview/diaghub-dotnetcore3.1-win-x64.diaghub.etl",
           "etl/airbus-cert__etl-parser/ShutdownPerfDiagLogger.etl",
           "wpp/guscatalano__findneedle/wppemitter-sample.etl"]


def _timed(run) -> tuple[int, float]:
    start = time.perf_counter()
    count = run()
    return count, time.perf_counter() - start


def via_api(path: str, mode: int) -> int:
    count = 0

    def on_event(event):
        nonlocal count
        count += 1

    handle = api.OpenTrace(EVENT_TRACE_LOGFILE(LogFileName=path, ProcessTraceMode=mode,
                                               EventCallback=on_event))
    try:
        api.ProcessTrace([handle])
    finally:
        api.CloseTrace(handle)
    return count


def via_engine(path: str) -> int:
    with EtlFile(path) as etl:
        return sum(1 for _ in ordered_records(etl))


def via_dissect(path: str) -> int:
    from dissect.etl.etl import ETL
    with open(path, "rb") as fh:
        return sum(1 for _ in ETL(fh))


def realtime(count: int = 200_000) -> None:
    """Provider -> real-time session -> ProcessTrace in another thread, both running at once."""
    import threading
    import uuid

    from wpptrace._core import lib
    from wpptrace.decoder.consumer_types import PROCESS_TRACE_MODE_REAL_TIME
    from wpptrace.provider import api as provider

    control, message = uuid.uuid4(), uuid.uuid4()
    loggers = []
    registration = provider.RegisterTraceGuids(
        lambda code, ctx, buf: loggers.append(provider.GetTraceLoggerHandle(buf))
        if code == lib.WMI_ENABLE_EVENTS else 0, None, control, [message])
    name = "bench-decoder-api-" + uuid.uuid4().hex[:8]
    session = provider.StartTrace(name, provider.EVENT_TRACE_PROPERTIES(
        LogFileMode=lib.EVENT_TRACE_REAL_TIME_MODE, BufferSize=64, MaximumBuffers=256))
    provider.EnableTrace(True, 0xFFFFFFFF, 5, control, session)
    delivered = 0

    def on_event(record):
        nonlocal delivered
        delivered += 1

    handle = api.OpenTrace(EVENT_TRACE_LOGFILE(
        LoggerName=name, EventRecordCallback=on_event,
        ProcessTraceMode=PROCESS_TRACE_MODE_REAL_TIME | PROCESS_TRACE_MODE_EVENT_RECORD))
    consumer = threading.Thread(target=api.ProcessTrace, args=([handle],))
    start = time.perf_counter()
    consumer.start()
    payload, guid, logger = (7).to_bytes(4, "little"), message.bytes_le, loggers[-1]
    dropped = sum(1 for _ in range(count) if provider.trace_packed(logger, 0x2B, guid, 10, payload))
    final = provider.ControlTrace(session, None, None, lib.EVENT_TRACE_CONTROL_STOP)
    consumer.join()
    elapsed = time.perf_counter() - start
    api.CloseTrace(handle)
    provider.UnregisterTraceGuids(registration)
    print(f"real-time: {count} logged, {delivered - 1} delivered as EVENT_RECORD in "
          f"{elapsed:.2f} s ({(delivered - 1) / elapsed:,.0f} events/s end to end), "
          f"{dropped} dropped at the "
          f"provider, EventsLost {final.EventsLost}, RealTimeBuffersLost "
          f"{final.RealTimeBuffersLost}")


def main(argv: list[str]) -> int:
    files = argv or [str(unpacked() / f) for f in DEFAULT]
    print(f"{'file':44} {'events':>8} {'EVENT_RECORD/s':>15} {'EVENT_TRACE/s':>14} "
          f"{'engine/s':>10} {'dissect/s':>10} {'api/dissect':>11}")
    for path in files:
        rec_n, rec_t = _timed(lambda: via_api(path, PROCESS_TRACE_MODE_EVENT_RECORD))
        tr_n, tr_t = _timed(lambda: via_api(path, 0))
        eng_n, eng_t = _timed(lambda: via_engine(path))
        dis_n, dis_t = _timed(lambda: via_dissect(path))
        print(f"{pathlib.Path(path).name[:44]:44} {rec_n:8} {rec_n / rec_t:15,.0f} "
              f"{tr_n / tr_t:14,.0f} {eng_n / eng_t:10,.0f} {dis_n / dis_t:10,.0f} "
              f"{(rec_n / rec_t) / (dis_n / dis_t):10.1f}x")
        if not rec_n == tr_n:
            print(f"  !! EVENT_RECORD and EVENT_TRACE counts differ: {rec_n} vs {tr_n}")
    realtime()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
