"""Events per second through the Win32-shaped consumer API, beside the engine and dissect.etl.

For each file: ProcessTrace delivering EVENT_RECORDs (EventRecordCallback) and EVENT_TRACEs
(EventCallback), both to a callback that only counts; the engine's own ProcessTrace-order
iteration (decoder.ordering.ordered_records, Record objects, no API structures); and
dissect.etl iterating the same file. Run: ``python3 benchmarks/bench_decoder_api.py [FILES]``
(default: the largest corpus files).
"""
from __future__ import annotations

import os
import pathlib
import sys
import time

from wpptrace.decoder import api
from wpptrace.decoder.etlfile import EtlFile
from wpptrace.decoder.ordering import ordered_records
from wpptrace.decoder.structs import EVENT_TRACE_LOGFILE, PROCESS_TRACE_MODE_EVENT_RECORD

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = pathlib.Path(os.environ.get("WPPTRACE_SHARED", ROOT.parent / "shared")) / "corpus"
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


def main(argv: list[str]) -> int:
    files = argv or [str(CORPUS / f) for f in DEFAULT]
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
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
