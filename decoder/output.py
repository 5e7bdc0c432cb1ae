"""Writers for decoded WPP messages: tracefmt text, CSV, JSON Lines, and the FmtSum summary file.

Text lines are written in batches (one ``write`` per few thousand lines) because a
``write`` call per line would cost as much as formatting the line. The summary follows the
layout of a real tracefmt ``FmtSum.txt`` (corpus ``wpp/guscatalano__findneedle/FmtSum.txt``):
the totals block, then an 85-column table of per-message counts.
"""
from __future__ import annotations

import csv
import io
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import IO, Iterable

__all__ = [
    "TextWriter",
    "CsvWriter",
    "JsonLinesWriter",
    "CSV_COLUMNS",
    "SummaryRow",
    "Summary",
    "format_summary",
    "filetime_to_iso",
]

_BATCH = 4096


def write_utf8(stream: IO[str], data: bytes | memoryview) -> None:
    """Write UTF-8 text to a text stream: straight to its byte buffer when the stream encodes
    UTF-8 without newline translation, else through the stream's own encoder."""
    buffer = getattr(stream, "buffer", None)
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    if buffer is not None and encoding == "utf8" and os.linesep == "\n":
        stream.flush()
        buffer.write(data)
    elif isinstance(stream, io.BytesIO):
        stream.write(data)
    else:
        stream.write(str(data, "utf-8"))


class TextWriter:
    """tracefmt text: one formatted line per message, batched writes."""

    def __init__(self, stream: IO[str], batch: int = _BATCH) -> None:
        self.stream = stream
        self.batch = batch
        self._pending: list[str] = []

    def write_line(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= self.batch:
            self.flush()

    def write_lines(self, lines: Iterable[str]) -> None:
        self._pending.extend(lines)
        if len(self._pending) >= self.batch:
            self.flush()

    def write_message(self, message) -> None:
        self.write_line(message.line)

    def write_utf8(self, data: bytes | memoryview) -> None:
        """Newline-terminated lines as UTF-8 (the C renderer's output)."""
        if self._pending:
            self.flush()
        write_utf8(self.stream, data)

    def flush(self) -> None:
        if self._pending:
            self._pending.append("")
            data = "\n".join(self._pending)
            self._pending = []
            self.stream.write(data)
        self.stream.flush()

    def close(self) -> None:
        self.flush()


#: CSV columns. tracefmt's ``-csv`` puts a structured prefix of the nine prefix variables
#: (%1..%9, in number order) before the usual line; their exact header names are not
#: documented (docs/tmf-format.md §6.1), so these names are ours.
CSV_COLUMNS = (
    "GuidName",      # %1 component (TMF friendly name)
    "MessageName",   # %2 #typev name / message number
    "ThreadId",      # %3
    "SystemTime",    # %4 text, local time unless UTC was asked for
    "KernelTime",    # %5
    "UserTime",      # %6
    "SequenceNum",   # %7
    "ProcessId",     # %8
    "CpuNumber",     # %9
    "FormattedMessage",  # the tracefmt line (prefix included unless -noprefix)
)


class CsvWriter:
    """CSV: the nine prefix variables, then the formatted line. Always valid CSV (RFC 4180 quoting)."""

    def __init__(self, stream: IO[str], header: bool = True, quote_all: bool = False) -> None:
        self.stream = stream
        self._writer = csv.writer(
            stream, lineterminator="\n", quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL)
        if header:
            self._writer.writerow(CSV_COLUMNS)

    def write_message(self, m) -> None:
        self._writer.writerow((
            m.component, m.name, "0x%04X" % m.thread_id, m.time_text, m.kernel_time, m.user_time,
            m.sequence, "0x%04X" % m.process_id, m.cpu, m.line))

    def flush(self) -> None:
        self.stream.flush()

    close = flush


def filetime_to_iso(filetime: int) -> str:
    """FILETIME -> ISO 8601 UTC with all seven fractional digits, e.g. ``2026-07-31T03:16:11.4509410Z``."""
    from .prefix import _civil_from_unix  # one calendar routine for the package

    seconds, ticks = divmod(filetime, 10_000_000)
    y, mo, d, h, mi, s = _civil_from_unix(seconds - 11644473600)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%07dZ" % (y, mo, d, h, mi, s, ticks)


def _json_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return "nan"
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_value(v) for v in value]
    return str(value)


class JsonLinesWriter:
    """JSON Lines: one object per message with its facts and its arguments as typed values."""

    def __init__(self, stream: IO[str], batch: int = 1024) -> None:
        self.stream = stream
        self.batch = batch
        self._pending: list[str] = []
        self._dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def write_message(self, m) -> None:
        record = {
            "timestamp": filetime_to_iso(m.filetime) if m.filetime is not None else None,
            "filetime": m.filetime,
            "guid": str(m.guid) if m.guid is not None else None,
            "number": m.number,
            "status": m.status,
            "component": m.component,
            "name": m.name,
            "file": m.source_file,
            "line": m.source_line,
            "function": m.function,
            "level": m.level,
            "flags": m.flags,
            "processor": m.cpu,
            "thread_id": m.thread_id,
            "process_id": m.process_id,
            "sequence": m.sequence,
            "text": m.text,
            "args": [
                {"name": name, "type": item, "value": _json_value(value)}
                for name, item, value in (m.args or ())
            ],
        }
        if m.error:
            record["error"] = m.error
        self._pending.append(self._dumps(record))
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            self._pending.append("")
            self.stream.write("\n".join(self._pending))
            self._pending = []
        self.stream.flush()

    close = flush


# -- summary ------------------------------------------------------------------------------

_RULE = "+" + "-" * 83 + "+"
_TABLE_HEADER = "|EventCount    EventName            EventType   TMF                                 |"


@dataclass
class SummaryRow:
    count: int
    event_name: str  # component (%1), "Unknown" without a format
    event_type: str  # message name (%2)
    guid: str  # message GUID (the TMF file's name without .tmf)


@dataclass
class Summary:
    """What a FmtSum file reports."""

    files: list[str] = field(default_factory=list)
    buffers: int = 0
    events: int = 0
    events_lost: int = 0
    format_errors: int = 0
    formats_unknown: int = 0
    elapsed_seconds: float = 0.0
    rows: list[SummaryRow] = field(default_factory=list)


def format_summary(summary: Summary) -> str:
    """The summary text, laid out like tracefmt's FmtSum.txt (LF line ends, trailing newline)."""
    lines = ["Files Processed:"]
    lines += ["\t" + name for name in summary.files]
    lines += [
        "Total Buffers Processed %d" % summary.buffers,
        "Total Events  Processed %d" % summary.events,
        "Total Events  Lost      %d" % summary.events_lost,
        "Total Format  Errors    %d" % summary.format_errors,
        "Total Formats Unknown   %d" % summary.formats_unknown,
        "Elapsed Time            %d sec" % int(summary.elapsed_seconds),
        _RULE,
        _TABLE_HEADER,
        "",
        _RULE,
    ]
    rows = sorted(summary.rows, key=lambda r: (r.guid, r.event_name, r.event_type))
    lines += ["|%10d    %-20s %-11s %-36s|" % (r.count, r.event_name, r.event_type, r.guid) for r in rows]
    lines.append(_RULE)
    return "\n".join(lines) + "\n"
