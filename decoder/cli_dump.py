"""``wpptrace dump FILE [--json]``: one line per record of an .etl file, then a summary.

Each line: kind, provider or message GUID, id (message number / event id / hook id),
time (UTC, 100 ns), processor, thread, process, size. The summary counts records by kind
(the log-file header record included), buffers, compressed buffers, events lost (unknown
when the log-file header is damaged) and records skipped or damaged; problems go to stderr with their file offsets, and so does a
notice when the session never stopped cleanly (docs/unclean-stop.md). Exit status is 0 for a
clean file, 1 when any damage was reported (everything readable is still listed).
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from wpptrace import _outputs as outputs
from wpptrace._cliutil import complain, input_problem

from .etlfile import EtlFile, unclean_stop_text
from .engine import ordered_records
from .records import KINDS
from .timestamps import FILETIME_TICKS_PER_SECOND, UNIX_EPOCH_SECONDS, TimeConverter


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = ("exit status: 0 a clean file, 1 the file could not be read or damage was "
                     "reported on stderr (everything readable is still listed), 2 bad usage")
    parser.add_argument("file", metavar="FILE", help=".etl file to list")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per record; the last line is {\"summary\": ...}")
    parser.add_argument("--file-order", action="store_true",
                        help="list records in file order instead of ProcessTrace (time) order")
    parser.add_argument("--raw-timestamps", action="store_true",
                        help="print raw clock values instead of UTC times")
    parser.add_argument("--summary-only", action="store_true",
                        help="print only the summary (fast: no per-record output)")


class _TimeText:
    """FILETIME -> 'YYYY-MM-DDTHH:MM:SS.fffffffZ', caching the per-second part."""

    def __init__(self) -> None:
        self._sec = None
        self._text = ""

    def __call__(self, filetime: int) -> str:
        sec, frac = divmod(filetime, FILETIME_TICKS_PER_SECOND)
        if sec != self._sec:
            self._sec = sec
            try:
                self._text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec - UNIX_EPOCH_SECONDS))
            except (OverflowError, OSError, ValueError):
                self._text = f"FILETIME:{sec}s"
        return f"{self._text}.{frac:07d}Z"


def run(args: argparse.Namespace) -> int:
    try:  # `dump x.etl >> x.etl` would write into the file being read
        outputs.check_outputs([], [args.file], stdout=sys.stdout)
    except outputs.OutputRefused as refused:
        return outputs.fail("wpptrace dump", refused)
    try:
        etl = EtlFile(args.file)
    except (OSError, ValueError) as exc:
        # the reason itself (offset, what was expected, Win32 name), not OSError's
        # "[Errno None] ...: 'path'"
        complain("dump", f"error: {input_problem(args.file, exc)}")
        return 1
    with etl:
        out = sys.stdout
        if args.summary_only:
            etl.scan()
        else:
            _dump_records(etl, args, out)
        summary = _summary(etl)
        for issue in etl.errors:
            complain("dump", issue)
        if "missing_ms" in summary:     # a notice, not damage: the exit status stays
            complain("dump", f"{args.file}: {unclean_stop_text(summary['missing_ms'])}")
        if args.json:
            out.write(json.dumps({"summary": summary}) + "\n")
        else:
            out.write(_summary_text(etl, summary))
        out.flush()
        return 1 if etl.errors else 0


def _dump_records(etl: EtlFile, args: argparse.Namespace, out) -> None:
    clock = TimeConverter(etl.header)
    time_text = _TimeText()
    records = etl.iter_records() if args.file_order else ordered_records(etl)
    write = out.write
    as_json = args.json
    raw_ts = args.raw_timestamps
    for rec in records:
        ts = rec.timestamp
        if ts is None:
            when = None
        elif raw_ts:
            when = ts
        else:
            when = time_text(clock.to_filetime(ts))
        guid = rec.provider_id
        tid, pid = rec.thread_id, rec.process_id
        if as_json:
            write(json.dumps({
                "kind": rec.kind, "provider": str(guid) if guid else None,
                "id": rec.event_id, "timestamp": when, "processor": rec.processor,
                "tid": tid, "pid": pid, "size": rec.size,
                "buffer": rec.buffer_index, "offset": rec.offset}) + "\n")
        else:
            write(f"{rec.kind:<8} {str(guid) if guid else '-':<36} id={rec.event_id:<5} "
                  f"{when if when is not None else '-'} cpu={rec.processor} "
                  f"tid={'-' if tid is None else tid} pid={'-' if pid is None else pid} "
                  f"size={rec.size}\n")


def _summary(etl: EtlFile) -> dict:
    st = etl.stats
    summary = {
        "records": st.records,
        "by_kind": {k: st.by_kind[k] for k in KINDS},
        "buffers": st.buffers,
        "compressed_buffers": st.compressed_buffers,
        # a damaged header's count is not told as a fact: None, unknown
        "events_lost": etl.header.events_lost if etl.header.valid else None,
        "skipped": st.skipped,
        "errors": [{"file": e.file, "offset": e.offset, "message": e.message} for e in etl.errors],
    }
    missing = etl.unclean_stop()
    if missing is not None:         # only then: the session never stopped (docs/unclean-stop.md)
        summary["stopped_cleanly"] = False
        summary["missing_ms"] = missing     # an estimate; -1: no data buffer was written
    return summary


def _summary_text(etl: EtlFile, s: dict) -> str:
    kinds = ", ".join(f"{k} {n}" for k, n in s["by_kind"].items() if n)
    h = etl.header
    lost = (f"events lost {s['events_lost']}, buffers lost {h.buffers_lost}" if h.valid
            else "events lost and buffers lost unknown (the log-file header is damaged)")
    return (f"-- {s['records']} records ({kinds}); {s['buffers']} buffers, "
            f"{s['compressed_buffers']} compressed; {lost}; skipped or damaged {s['skipped']}; "
            f"{len(s['errors'])} errors"
            + (f" (+{etl.issues_dropped} not listed)" if etl.issues_dropped else "") + "\n")
