"""The output formats of decoded WPP messages: tracefmt text, CSV, JSON Lines, and the FmtSum
summary file.

WppDecoder's one formatting loop (decoder.wpp) makes every line; this module says what a CSV
row and a JSON Lines object hold (``CsvRows``, ``JsonRows``: the parts that depend only on
the message are built once, the rest per event; the C renderer prints the same rows from
those parts, tmf/csrc/wpprender.c) and writes the lines. Lines are written in
batches (one ``write`` per few thousand lines) because a ``write`` call per line would cost
as much as formatting the line. The summary follows the layout of a real tracefmt
``FmtSum.txt`` (corpus ``wpp/guscatalano__findneedle/FmtSum.txt``): the totals block, then an
85-column table of per-message counts.
"""
from __future__ import annotations

import io
import os
from itertools import chain, compress, islice
from operator import eq

from wpptrace._fieldclass import field, fieldclass
from wpptrace._lazyuuid import is_uuid

from .timestamps import FILETIME_TICKS_PER_SECOND, ISO_END_FILETIME, UNIX_EPOCH_SECONDS

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    from typing import IO

__all__ = [
    "TextWriter",
    "CsvWriter",
    "JsonLinesWriter",
    "CsvRows",
    "JsonRows",
    "CSV_COLUMNS",
    "SummaryRow",
    "Summary",
    "format_summary",
    "summary_text",
    "SummaryRows",
    "filetime_to_iso",
]

_BATCH = 4096
_WRITE_CHARS = 1 << 18


def utf8_buffer(stream: IO[str]):
    """The byte buffer of a text stream that encodes UTF-8 without newline translation (UTF-8
    text can go straight there), else None."""
    buffer = getattr(stream, "buffer", None)
    encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
    return buffer if buffer is not None and encoding == "utf8" and os.linesep == "\n" else None


def write_utf8(stream: IO[str], data: bytes | memoryview) -> None:
    """Write UTF-8 text to a text stream: straight to its byte buffer when the stream encodes
    UTF-8 without newline translation, else through the stream's own encoder."""
    buffer = utf8_buffer(stream)
    if buffer is not None:
        stream.flush()
        buffer.write(data)
    elif isinstance(stream, io.BytesIO):
        stream.write(data)
    else:
        stream.write(str(data, "utf-8", "surrogatepass"))


class TextWriter:
    """One output line per message (any format: the lines are made by the decoder), written
    in batches of about _WRITE_CHARS characters: a ``write`` per line would cost as much as
    making the line, and one huge string per write costs its allocation (the memory goes back
    to the system and page faults bring it back)."""

    def __init__(self, stream: IO[str], batch: int | None = None) -> None:
        self.stream = stream
        self.batch = _BATCH if batch is None else batch
        self._adapt = batch is None       # size batches by the lines' length
        self._pending: list[str] = []
        buffer = utf8_buffer(stream)
        # a byte buffer in memory that lends the memory its next bytes go to
        self._lender = buffer if callable(getattr(buffer, "room", None)) else None

    def write_line(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) >= self.batch:
            self.flush()

    def write_utf8(self, data: bytes | memoryview) -> None:
        """Newline-terminated lines as UTF-8 (the C renderer's output)."""
        if self._pending:
            self.flush()
        write_utf8(self.stream, data)

    def room(self) -> tuple[int, int] | None:
        """The memory the next ``write_utf8`` bytes go to, as (address, bytes), when the
        stream's byte buffer keeps them in memory and lends it (its ``room()``); else None.
        Bytes printed there and then given to ``write_utf8`` are not copied. What is pending
        is written first; nothing may be written between this call and that one."""
        lender = self._lender
        if lender is None:
            return None
        self.flush()
        return lender.room()

    def flush(self) -> None:
        pending = self._pending
        if pending:
            self._pending = []
            write, batch = self.stream.write, self.batch
            for start in range(0, len(pending), batch):
                part = pending[start:start + batch]
                part.append("")
                data = "\n".join(part)
                write(data)
            if self._adapt:   # lines per write for the next batches, from this one's size
                self.batch = max(64, min(_BATCH, _WRITE_CHARS * (len(part) - 1) // max(1, len(data))))
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


def csv_field(value: str, quote_all: bool = False) -> str:
    """One CSV field as Python's csv module writes it from 3.13 (RFC 4180: quoted when it
    holds a comma, a quote, a line feed or a carriage return, quotes doubled; every field with
    ``quote_all``). A bare carriage return, which the module left unquoted before 3.13, ends
    the row for a CSV reader."""
    if quote_all or "," in value or '"' in value or "\n" in value or "\r" in value:
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_bytes_field(value: bytes, quote_all: bool = False) -> bytes:
    """``csv_field`` of UTF-8 text (the C renderer's lines)."""
    if quote_all or b"," in value or b'"' in value or b"\n" in value or b"\r" in value:
        return b'"' + value.replace(b'"', b'""') + b'"'
    return value


class CsvRows:
    """CSV rows (CSV_COLUMNS), as UTF-8: the nine prefix variables, then the formatted line
    (``line``); ``piece`` (GuidName, MessageName) is what a row takes from its message."""

    def __init__(self, quote_all: bool = False) -> None:
        self.quote_all = quote_all
        q = b'"' if quote_all else b""
        # KernelTime and UserTime are always 0 (user-mode traces carry no CPU times)
        self.LINE = (b"%s,Q0x%04XQ,Q%sQ,Q0Q,Q0Q,Q%dQ,Q0x%04XQ,Q%dQ,%s\n").replace(b"Q", q)

    def header(self) -> str:
        return ",".join(csv_field(c, self.quote_all) for c in CSV_COLUMNS)

    def piece(self, component: str, name: str) -> bytes:
        """What a row takes from its message: GuidName and MessageName."""
        return (csv_field(component, self.quote_all) + "," +
                csv_field(name, self.quote_all)).encode("utf-8", "surrogatepass")

    def line(self, piece: bytes, tid: int, time_text: bytes, seq: int, pid: int, cpu: int,
             line: bytes) -> bytes:
        """One row, its line end included."""
        return self.LINE % (piece, tid, time_text, seq, pid, cpu,
                            csv_bytes_field(line, self.quote_all))


def filetime_to_iso(filetime: int) -> str:
    """FILETIME -> ISO 8601 UTC with all seven fractional digits, e.g. ``2026-07-31T03:16:11.4509410Z``.
    A time from year 10000 on has no such text: ValueError (it read as a day of year 9999)."""
    from .prefix import _civil_from_unix  # one calendar routine for the package

    if filetime >= ISO_END_FILETIME:
        raise ValueError(f"FILETIME {filetime} is past year 9999: ISO 8601 has four digits for the year")

    seconds, ticks = divmod(filetime, FILETIME_TICKS_PER_SECOND)
    y, mo, d, h, mi, s = _civil_from_unix(seconds - UNIX_EPOCH_SECONDS)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%07dZ" % (y, mo, d, h, mi, s, ticks)


def _json_value(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and value != value:  # NaN is not JSON
            return "nan"
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return value
    if is_uuid(value):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_json_value(v) for v in value]
    return str(value)


class JsonRows:
    """JSON Lines, as UTF-8: one object per message with its facts and its arguments as typed
    values. Keys, in order: timestamp (ISO 8601 UTC, 100 ns; null without a time, or after year
    9999, which ISO 8601's four-digit years cannot write), filetime, guid, number, status,
    component, name, file, line, function, level, flags (``head``: the same for every event
    of a message and status), processor, thread_id, process_id, sequence (the event's), text,
    args ([{name, type, value}]) and, for a format error, error (``tail``)."""

    def __init__(self) -> None:
        from json.encoder import JSONEncoder, encode_basestring   # JSON Lines runs only

        self._dumps = JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        self._encode_string = encode_basestring   # json.dumps(str), ensure_ascii=False
        self._arg_names: dict[tuple, str] = {}     # (name, item) -> '{"name":..,"type":..,"value":'
        self._second = None
        self._second_text = b""

    def head(self, guid: str | None, number: int, status: str, component: str, name: str,
             markers: dict) -> bytes:
        """The keys from ``guid`` (its text, or None) to ``flags``."""
        return _utf8("," + self._dumps(dict(zip(_JSON_HEAD_KEYS, (
            guid, number, status, component, name,
            markers.get("FILE", ""), markers.get("LINE", ""), markers.get("FUNC", ""),
            markers.get("LEVEL", ""), markers.get("FLAGS", "")))))[1:-1])

    def arg_name(self, name: str, item: str) -> str:
        """What an argument's object holds before its value: ``{"name":..,"type":..,"value":``."""
        text = self._arg_names.get((name, item))
        if text is None:
            text = self._arg_names[(name, item)] = '{"name":%s,"type":%s,"value":' % (
                self._encode_string(name), self._encode_string(item))
        return text

    def tail(self, text: str, args, error: str = "") -> bytes:
        """The keys ``text``, ``args`` (and ``error``), the closing brace and the line end."""
        enc, names = self._encode_string, self._arg_names
        parts = []
        for n, item, v in args:
            name = names.get((n, item))
            if name is None:
                name = self.arg_name(n, item)
            kind = type(v)
            if kind is str:
                value = enc(v)
            elif kind is int:
                value = repr(v)
            elif kind is float and v - v == 0:      # finite: json writes float.__repr__
                value = repr(v)
            elif is_uuid(v):
                value = '"%s"' % v
            else:
                value = self._dumps(_json_value(v))
            parts.append(name + value + "}")
        tail = ',"text":' + enc(text) + ',"args":[' + ",".join(parts) + "]"
        if error:
            tail += ',"error":' + enc(error)
        return _utf8(tail + "}\n")

    def line(self, head: bytes, tail: bytes, filetime: int | None, cpu: int, tid: int, pid: int,
             seq: int) -> bytes:
        """One object, its line end included."""
        if filetime is None:
            return _JSON_NO_TIME % (head, cpu, tid, pid, seq, tail)
        if filetime >= ISO_END_FILETIME:     # a five-digit year: no ISO 8601 text, not 9999
            return _JSON_LATE % (filetime, head, cpu, tid, pid, seq, tail)
        second, ticks = divmod(filetime, 10_000_000)
        if second != self._second:
            self._second = second
            self._second_text = filetime_to_iso(second * 10_000_000)[:-8].encode()
        return _JSON_LINE % (self._second_text, ticks, filetime, head, cpu, tid, pid, seq, tail)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


_JSON_HEAD_KEYS = ("guid", "number", "status", "component", "name", "file", "line",
                   "function", "level", "flags")
_JSON_LINE = (b'{"timestamp":"%s%07dZ","filetime":%d%s,"processor":%d,"thread_id":%d,'
              b'"process_id":%d,"sequence":%d%s')
_JSON_NO_TIME = (b'{"timestamp":null,"filetime":null%s,"processor":%d,"thread_id":%d,'
                 b'"process_id":%d,"sequence":%d%s')
_JSON_LATE = (b'{"timestamp":null,"filetime":%d%s,"processor":%d,"thread_id":%d,'
              b'"process_id":%d,"sequence":%d%s')


class CsvWriter(TextWriter):
    """CSV lines (made by ``CsvRows``), after the header row unless ``header`` is False."""

    def __init__(self, stream: IO[str], header: bool = True, quote_all: bool = False) -> None:
        super().__init__(stream)
        self.rows = CsvRows(quote_all)
        if header:
            self.write_line(self.rows.header())


class JsonLinesWriter(TextWriter):
    """JSON Lines (made by ``JsonRows``)."""


# -- summary ------------------------------------------------------------------------------

_RULE = "+" + "-" * 83 + "+"
_ROW_COUNT = "|%10d"
_ROW_TEXTS = "    %-20s %-11s %-36s|"
_TABLE_ROW = _ROW_COUNT + _ROW_TEXTS
_TABLE_HEADER = "|EventCount    EventName            EventType   TMF                                 |"


@fieldclass
class SummaryRow:
    count: int
    event_name: str  # component (%1), "Unknown" without a format
    event_type: str  # message name (%2)
    guid: str  # message GUID (the TMF file's name without .tmf)


@fieldclass
class Summary:
    """What a FmtSum file reports."""

    files: list[str] = field(default_factory=list)
    buffers: int = 0
    events: int = 0
    events_lost: int = 0
    format_errors: int = 0
    formats_unknown: int = 0
    #: damaged records and skipped buffers (lines of their own only when not 0: a summary of
    #: an undamaged file is tracefmt's)
    records_damaged: int = 0
    buffers_skipped: int = 0
    elapsed_seconds: float = 0.0
    rows: list[SummaryRow] = field(default_factory=list)


def format_summary(summary: Summary) -> str:
    """The summary text, laid out like tracefmt's FmtSum.txt (LF line ends, trailing newline)."""
    return summary_text(summary, [(r.guid, r.event_name, r.event_type, r.count) for r in summary.rows])


def _utf8_text(name: str) -> str:
    """A file name as any UTF-8 output holds it (bytes that are not UTF-8 as \\xNN)."""
    from wpptrace._cliutil import utf8_text

    return utf8_text(name)


def summary_text(summary: Summary, table: list[tuple[str, str, str, int]] | None = None,
                 body: str | None = None) -> str:
    """``format_summary`` of ``summary`` with ``table`` for its rows: (GUID text, event name,
    event type, count) per row, in any order; or with its rows printed already (``body``:
    ``SummaryRows.body``)."""
    lines = ["Files Processed:"]
    lines += ["\t" + (name if name.isascii() else _utf8_text(name)) for name in summary.files]
    lines += [
        "Total Buffers Processed %d" % summary.buffers,
        "Total Events  Processed %d" % summary.events,
        "Total Events  Lost      %d" % summary.events_lost,
        "Total Format  Errors    %d" % summary.format_errors,
        "Total Formats Unknown   %d" % summary.formats_unknown,
        *(["Total Records Damaged   %d" % summary.records_damaged] if summary.records_damaged else []),
        *(["Total Buffers Skipped   %d" % summary.buffers_skipped] if summary.buffers_skipped else []),
        "Elapsed Time            %d sec" % int(summary.elapsed_seconds),
        _RULE,
        _TABLE_HEADER,
        "",
        _RULE,
    ]
    if body is not None:
        return "".join(("\n".join(lines), "\n", body, _RULE, "\n"))
    # the whole row is the key: messages of one GUID may share a component and name (and
    # then a row differs by its count alone), and the order rows come in is the order their
    # messages were first met, which fmt -j changes. Sorted as plain tuples (compared in C),
    # by GUID first and then each GUID's rows: a comparison of two rows of one GUID would
    # compare the GUIDs (equal) before anything else
    by_guid: dict[str, list] = {}
    for row in table or ():
        by_guid.setdefault(row[0], []).append(row)
    for key in sorted(by_guid):
        lines += [_TABLE_ROW % (count, name, kind, guid)
                  for guid, name, kind, count in sorted(by_guid[key])]
    lines.append(_RULE)
    return "\n".join(lines) + "\n"


class SummaryRows:
    """The table's rows of some messages (their GUID texts, event names and types, in the
    messages' order), sorted and printed but for their counts: made while a process waits
    for others (fmt -j's, for its workers), so that only the counts are left for the end."""

    def __init__(self, guids: list[str], names: list[str], kinds: list[str]) -> None:
        keys = list(zip(guids, names, kinds))
        self.size = len(keys)
        self.order = sorted(range(self.size), key=keys.__getitem__)
        ordered = list(map(keys.__getitem__, self.order))
        #: runs of rows alike but for their counts (messages of one GUID with one component and
        #: name: their texts are one), [start, end) in the order: their counts order them
        self.alike: list[tuple[int, int]] = []
        for at in compress(range(1, self.size), map(eq, ordered, islice(ordered, 1, None))):
            if self.alike and self.alike[-1][1] == at:
                self.alike[-1] = (self.alike[-1][0], at + 1)
            else:
                self.alike.append((at - 1, at + 1))
        self.texts = [_ROW_TEXTS % (name, kind, guid) for guid, name, kind in ordered]

    def body(self, counts: list[int]) -> str | None:
        """The table's rows of these messages with ``counts`` (one per message, in their
        order; a message counted 0 has no row), or None for counts of other messages."""
        if len(counts) != self.size:
            return None
        counts = list(map(counts.__getitem__, self.order))
        for start, end in self.alike:
            counts[start:end] = sorted(counts[start:end])
        texts = self.texts
        if counts.count(0):
            texts = list(compress(texts, counts))
            counts = list(filter(None, counts))
        # one format of them all: 0.39 ms against 0.66 ms one a row (1,573 rows)
        return (_ROW_COUNT + "%s\n") * len(counts) % tuple(chain.from_iterable(zip(counts, texts)))
