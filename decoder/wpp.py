"""The WPP decoding pipeline: message records -> TMF lookup -> compiled formatter -> prefix + text.

Records come from the decoder engine in ProcessTrace order. Each (message GUID, number) is
resolved once: its TMF ``Message`` is looked up, its ``MessageFormatter`` compiled
(``wpptrace.tmf.render.compile_message``) and the prefix template bound to its fixed values;
the result is cached, so a message costs one dict lookup, one argument render and one ``%``
for the prefix. The text path (``render_rows``) goes further: each message compiles once
to a program of the C renderer (``wpptrace.tmf.native``), which prints the engine's compact
rows into one buffer; Python prints only what the renderer leaves to it. Messages without a
format give tracefmt's ``Unknown( N): GUID=...`` line,
messages whose arguments don't fit give a format-error line; both are counted, neither stops
the run. Records that are not TraceMessage records are counted and skipped.

``WppMessage.property(name)`` is the TdhGetWppProperty-like accessor: a named argument (or a
WPP property such as ``FormattedString``, ``FunctionName``) as a typed value.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Sequence

from ._hazmat import ETL, RowPrinter

from .buffers import message_pointer_size
from .prefix import DEFAULT_PREFIX, PrefixTemplate, TimestampText, marker_values

__all__ = [
    "WppDecoder",
    "WppMessage",
    "FileContext",
    "FmtCounters",
    "UnknownPropertyError",
    "unknown_line",
    "wpp_property",
    "EVENT_TRACE_GUID",
]

#: EventTraceGuid: the provider GUID of the logfile-header event.
EVENT_TRACE_GUID = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")
_NO_GUID = uuid.UUID(int=0)

_KIND_SYSTEM = ETL.ETLRD_KIND_SYSTEM
_NO_TIME = -(1 << 63)          # wpp_rows.NO_TIME: the record carries no time

# Status of a decoded record.
OK = "ok"
UNKNOWN = "unknown"
FORMAT_ERROR = "format-error"
HEADER = "header"


def unknown_line(component: str, number: int, guid: uuid.UUID) -> str:
    """tracefmt's line for a message without format information (docs/tmf-format.md §6.2)."""
    return "%s(%3d): GUID=%s (No Format Information found)." % (component, number, guid)


def _format_error_line(entry: "_Entry", detail: str) -> str:
    """tracefmt's FormatMessage-failure line (legacy wording), saying which message and why."""
    if str(entry.guid) not in detail:  # the formatter's errors already name the message
        detail = "%s #%d (%s): %s" % (entry.guid, entry.number, entry.name, detail)
    return "*****FormatMessage (#Typev) failed: %s (Format = \"%s\")*****" % (detail, entry.format)


class UnknownPropertyError(KeyError):
    """No argument or WPP property of that name in the message (TdhGetWppProperty: ERROR_NOT_FOUND)."""


@dataclass
class FileContext:
    """Per-input-file facts a record needs: its pointer size and raw-clock -> FILETIME conversion."""

    path: str
    pointer_size: int = 8
    to_filetime: Any = None  # callable raw -> FILETIME; None: timestamps are already FILETIME
    # FILETIME = (raw + offset) when scale_num == scale_den, else
    # start + (raw - origin) * scale_num // scale_den (the TimeConverter's arithmetic, inlined)
    offset: int = 0
    start: int = 0
    origin: int = 0
    scale_num: int = 1
    scale_den: int = 1

    @classmethod
    def for_header(cls, path: str, header, time_converter=None) -> "FileContext":
        pointer_size = getattr(header, "pointer_size", 8) or 8
        convert = getattr(time_converter, "to_filetime", None)
        ctx = cls(path=str(path), pointer_size=pointer_size, to_filetime=convert)
        if time_converter is not None and hasattr(time_converter, "frequency"):
            if getattr(time_converter, "clock_type", 0) == 2:  # system time: raw is FILETIME
                return ctx
            ctx.start = time_converter.start_time
            ctx.origin = time_converter.origin
            ctx.scale_num, ctx.scale_den = 10_000_000, time_converter.frequency
            if ctx.scale_den == ctx.scale_num:
                ctx.offset = ctx.start - ctx.origin
        elif convert is not None:
            ctx.scale_num = ctx.scale_den = 0  # unknown converter: call it
        return ctx


@dataclass
class FmtCounters:
    """Counts tracefmt reports (FmtSum) plus what we skipped."""

    events: int = 0  # every record seen, header included
    messages: int = 0  # TraceMessage (WPP) records
    formatted: int = 0
    unknown: int = 0
    format_errors: int = 0
    non_wpp: int = 0  # other records: counted and skipped
    headers: int = 0


@dataclass
class WppMessage:
    """One decoded record with every fact the structured outputs need."""

    status: str
    guid: uuid.UUID | None
    number: int
    filetime: int | None
    time_text: str
    cpu: int
    thread_id: int
    process_id: int
    sequence: int
    kernel_time: int
    user_time: int
    component: str
    name: str
    source_file: str
    source_line: str
    function: str
    level: str
    flags: str
    text: str  # the message text without the prefix
    line: str  # the output line, prefix included
    args: list = field(default_factory=list)  # [(name, item, value)]
    error: str = ""
    subcomponent: str = ""

    # TdhGetWppProperty names (learn.microsoft.com PROPERTY_DATA_DESCRIPTOR / WPP properties).
    _WPP_PROPERTIES = {
        "FormattedString": "text",
        "SequenceNum": "sequence",
        "FunctionName": "function",
        "ComponentName": "component",
        "SubComponentName": "subcomponent",
        "TraceGuid": "guid",
        "GuidTypeName": "name",
        "FlagsName": "flags",
        "LevelName": "level",
        "FileName": "source_file",
        "LineNumber": "source_line",
        "SystemTime": "filetime",
        "ThreadId": "thread_id",
        "ProcessId": "process_id",
        "CpuNumber": "cpu",
    }

    def property(self, name: str) -> Any:
        """A named argument's typed value (the C expression from the TMF), or a WPP property.

        Arguments win over WPP property names. Raises ``UnknownPropertyError`` if neither exists.
        """
        for arg_name, _item, value in self.args:
            if arg_name == name:
                return value
        attr = self._WPP_PROPERTIES.get(name)
        if attr is not None:
            return getattr(self, attr)
        raise UnknownPropertyError(name)

    def property_type(self, name: str) -> str:
        """The TMF item type of a named argument (``ItemLong`` ...)."""
        for arg_name, item, _value in self.args:
            if arg_name == name:
                return item
        raise UnknownPropertyError(name)


def wpp_property(message: WppMessage, name: str) -> Any:
    """TdhGetWppProperty for a decoded message: the named argument (its TMF C expression) or
    WPP property (``FormattedString``, ``SequenceNum``, ``FunctionName``, ``ComponentName``,
    ``SubComponentName``, ``TraceGuid``, ``GuidTypeName``, ``FlagsName``, ``LevelName`` ...)
    as a typed value. Raises ``UnknownPropertyError`` (a KeyError) when there is none."""
    return message.property(name)


class _Entry:
    """Everything resolved once per (message GUID, number)."""

    __slots__ = ("guid", "number", "message", "formatter", "prefix", "markers", "component",
                 "name", "has_prefix", "count", "unknown", "format", "compile_error",
                 "program", "native_rows")

    def __init__(self, guid, number):
        self.guid = guid
        self.number = number
        self.message = None
        self.formatter = None
        self.prefix = None
        self.markers = {}
        self.component = "Unknown"
        self.name = "%3d" % number
        self.has_prefix = False
        self.count = 0
        self.unknown = None  # the Unknown line when there is no format
        self.format = ""
        self.compile_error = None
        self.program = None  # the C renderer's program id (HOLE: Python prints the lines)
        self.native_rows = 0  # rows of that program already in ``count``


def _import_render():
    from wpptrace.tmf import render  # imported late: prefix and output work without it

    return render


class WppDecoder:
    """Turns records into tracefmt lines or ``WppMessage`` objects, counting what it sees.

    ``prefix``: the prefix text (None: tracefmt's default); ``noprefix``: no prefix at all;
    ``utc``: timestamps in UTC instead of local time.
    """

    def __init__(self, tmfset, *, prefix: str | None = None, noprefix: bool = False,
                 utc: bool = False) -> None:
        self.tmfset = tmfset
        self.prefix_text = DEFAULT_PREFIX if prefix is None else prefix
        self.noprefix = noprefix
        self.utc = utc
        self.prefix = PrefixTemplate(self.prefix_text)
        self.time_text = TimestampText(utc)
        self.counters = FmtCounters()
        self._entries: dict[tuple, _Entry] = {}
        self._raw_entries: dict[tuple, _Entry] = {}  # keyed by (GUID bytes_le, number)
        self._guid_components: dict[uuid.UUID, str] | None = None
        self._render = None
        self._printer: RowPrinter | None = None  # the C renderer's, made on first use
        self._prefix_program: int | None = None  # its shared prefix program (-1: Python's)
        self._key_entries: list[_Entry] = []     # row key id -> entry (mirrors the C key table)

    # -- per-message resolution -----------------------------------------------------------
    def _entry(self, guid, number: int) -> _Entry:
        if guid is None:  # TRACE_MESSAGE_COMPONENTID messages carry no GUID (the rows path sees zeros)
            guid = _NO_GUID
        entry = _Entry(guid, number)
        message = self.tmfset.lookup(guid, number) if guid is not None else None
        if message is None:
            component = self._component_of_guid(guid)
            entry.component = component or "Unknown"
            entry.unknown = unknown_line(entry.component, number, guid)
        else:
            entry.message = message
            entry.component = message.component or "Unknown"
            entry.name = message.name
            entry.format = message.format
            entry.markers = marker_values(message)
            # A leading %0 is where the prefix goes: the formatter renders it as nothing and
            # this module puts the prefix in front.
            entry.has_prefix = message.format.startswith("%0")
            if self._render is None:
                self._render = _import_render()
            try:
                entry.formatter = self._render.compile_message(message, self.tmfset, utc=self.utc)
            except Exception as exc:  # a bad format string is a format error, not a crash
                entry.compile_error = str(exc) or type(exc).__name__
        self._entries[(guid, number)] = entry
        return entry

    def _component_of_guid(self, guid) -> str | None:
        if guid is None:
            return None
        try:
            if not self.tmfset.has_guid(guid):
                return None
        except AttributeError:
            return None
        if self._guid_components is None:
            self._guid_components = {}
            for message in self.tmfset.messages():
                self._guid_components.setdefault(message.guid, message.component)
        return self._guid_components.get(guid)

    # -- text from Record objects (any source: several files, live sessions) ---------------
    def format_records(self, records: Iterable, ctx: FileContext) -> Iterator[str]:
        """Yield the output line of every record (header line included; other non-WPP records skipped)."""
        entries = self._entries
        counters = self.counters
        make_entry = self._entry
        time_text = self.time_text
        to_filetime = ctx.to_filetime
        default_psize = ctx.pointer_size
        noprefix = self.noprefix
        events = messages = non_wpp = 0
        first = True
        try:
            for rec in records:
                events += 1
                if rec.kind != "message":
                    if first and _is_logfile_header(rec):
                        yield self._header_line(rec, ctx)
                    else:
                        non_wpp += 1
                    first = False
                    continue
                first = False
                messages += 1
                key = (rec.message_guid, rec.event_id)
                entry = entries.get(key)
                if entry is None:
                    entry = make_entry(*key)
                entry.count += 1
                formatter = entry.formatter
                if formatter is None:
                    if entry.unknown is not None:
                        counters.unknown += 1
                        yield entry.unknown
                        continue
                    counters.format_errors += 1
                    text = _format_error_line(entry, entry.compile_error)
                else:
                    psize = message_pointer_size(rec.flags, default_psize)
                    try:
                        text = formatter.format(rec.user_data, psize, entry.markers)
                    except Exception as exc:  # args don't fit: a format-error line, keep going
                        counters.format_errors += 1
                        text = _format_error_line(entry, str(exc) or type(exc).__name__)
                if noprefix or not entry.has_prefix:
                    yield text
                    continue
                prefix = self._bound_prefix(entry)
                if prefix.static is not None:
                    yield prefix.static + text
                    continue
                raw = rec.timestamp
                if prefix.needs_time and raw is not None:
                    tt = time_text(to_filetime(raw) if to_filetime is not None else raw)
                else:
                    tt = ""
                yield prefix.template % prefix.pick((
                    rec.thread_id or 0, tt, 0, 0, rec.sequence or 0, rec.process_id or 0,
                    rec.processor or 0)) + text
        finally:
            counters.events += events
            counters.messages += messages
            counters.non_wpp += non_wpp
            counters.formatted = (counters.messages - counters.unknown - counters.format_errors)

    def render_rows(self, chunks: Iterable[tuple[Sequence[int], list]], view) -> Iterator[bytes]:
        """The hot path: the engine's chunks of row refs (``view``: the ``wpp_rows.RowView``
        that made them) -> UTF-8 text, one line per message (the same text as
        ``format_records``). The C renderer (``wpptrace.tmf.native``) prints each row from its
        message's program; what it leaves to Python (the log-file header line, argument bytes
        that do not fit, the item types only Python prints) is filled in here."""
        for text, _ends in self._rendered_chunks(chunks, view, False):
            yield text

    def format_rows(self, chunks: Iterable[tuple[Sequence[int], list]], view) -> Iterator[list[str]]:
        """``render_rows`` as lists of lines (a line may hold line breaks of its message)."""
        for text, ends in self._rendered_chunks(chunks, view, True):
            lines, start = [], 0
            for end in ends:
                if end > start:
                    lines.append(str(text[start:end - 1], "utf-8"))
                    start = end
            yield lines

    def _rendered_chunks(self, chunks, view, want_ends: bool):
        """(text, line ends) per chunk; the text may be the renderer's buffer (valid until
        the next chunk is asked for)."""
        printer = self._row_printer()
        tables = view.tables
        key_entries, key_program = self._key_entries, printer.key_program
        counters = self.counters
        events = non_wpp = 0
        headers = counters.headers
        try:
            for items, _keys in chunks:
                n = len(items)
                if not n:
                    continue
                events += n
                for key in range(len(key_entries), tables.key_count()):  # compiled on first use
                    entry = self._raw_entry(*tables.key_info(key))
                    key_entries.append(entry)
                    key_program.append(self._program(entry))
                sources = view.sources
                text, holes, ends, skipped = printer.print(
                    items, view.datas, view.blobs,
                    [8 if s is None else s.pointer_size for s in sources], want_ends)
                non_wpp += skipped
                if holes:
                    text, ends = self._fill_holes(text, ends, items, view, holes)
                yield text, ends
        finally:
            counters.events += events
            counters.non_wpp += non_wpp
            counters.messages += events - non_wpp - (counters.headers - headers)
            self._sync_native_counts()
            counters.formatted = (counters.messages - counters.unknown - counters.format_errors)

    def _fill_holes(self, text, ends: list[int], items, view, holes: list[tuple[int, int]]):
        """Put the lines Python prints at their places in the C renderer's text (and move
        the line ends after them)."""
        filled = [(row, pos, (self._row_line(items[row], view) + "\n").encode("utf-8"))
                  for row, pos in holes]
        parts, at = [], 0
        for _row, pos, line in filled:
            parts += (text[at:pos], line)
            at = pos
        parts.append(text[at:])
        if ends:
            k = shift = 0
            for j in range(len(ends)):
                while k < len(filled) and filled[k][0] <= j:
                    shift += len(filled[k][2])
                    k += 1
                ends[j] += shift
        return b"".join(parts), ends

    def _row_line(self, ref: int, view) -> str:
        """The line of one row, printed by Python (a hole of the C renderer)."""
        from .wpp_rows import KEY_OVERFLOW, LOGFILE_HEADER, ROW_FORMAT, ROW_SIZE, TIME_OUT_OF_RANGE, header_record

        slot, index = ref >> 32, ref & 0xFFFFFFFF
        full = ROW_FORMAT.unpack_from(view.blobs[slot], index * ROW_SIZE)
        (ts, milli, kid, _slot, _index, tid, pid, seq, poff, plen, goff, cpu, number, flags, _kind,
         _present) = full
        source = view.sources[slot]
        if kid == LOGFILE_HEADER:
            return self._header_line(header_record(full), source.clock)
        if kid == KEY_OVERFLOW:  # more distinct messages than the C table holds
            data = view.datas[slot]
            entry = self._raw_entry(data[goff:goff + 16] if goff else bytes(16), number)
        else:
            entry = self._key_entries[kid]
        entry.count += 1
        counters = self.counters
        formatter = entry.formatter
        if formatter is None:
            if entry.unknown is not None:
                counters.unknown += 1
                return entry.unknown
            counters.format_errors += 1
            text = _format_error_line(entry, entry.compile_error)
        else:
            psize = message_pointer_size(flags, source.pointer_size)
            try:
                text = formatter.format(view.datas[slot][poff:poff + plen], psize, entry.markers)
            except Exception as exc:  # args don't fit: a format-error line
                counters.format_errors += 1
                text = _format_error_line(entry, str(exc) or type(exc).__name__)
                program = self._printer.key_program
                if formatter.error is not None and kid < len(program):
                    program[kid] = RowPrinter.HOLE  # its failure is remembered: Python's from now on
        if self.noprefix or not entry.has_prefix:
            return text
        tt = ""
        if milli != _NO_TIME:
            tt = self.time_text(source.clock.to_filetime(ts)) if milli == TIME_OUT_OF_RANGE else \
                self.time_text.from_milli(milli)
        return self._bound_prefix(entry).render((tid, tt, 0, 0, seq, pid, cpu)) + text

    def _row_printer(self) -> RowPrinter:
        if self._printer is None:
            from wpptrace.tmf.native import NativeRenderer

            self._printer = RowPrinter(NativeRenderer(utc=self.utc, noprefix=self.noprefix))
        return self._printer

    def _program(self, entry: _Entry) -> int:
        """The C renderer's program of a message (compiled the first time a row needs it), or
        WPPR_HOLE when Python prints its lines."""
        if entry.program is not None:
            return entry.program
        from wpptrace.tmf.native import SharedPrefix, encode

        program = RowPrinter.HOLE
        try:
            if entry.unknown is not None:
                blob = encode([], [("lit", entry.unknown)], None, prefix=False)
            elif entry.formatter is None:
                blob = None
            else:
                compiled = entry.formatter.native_ops(entry.markers)
                prefix = None
                if compiled is not None and entry.has_prefix and not self.noprefix:
                    shared = self._shared_prefix()
                    if shared is None:
                        compiled = None
                    else:
                        prefix = SharedPrefix(shared, self.prefix.native_strings(
                            entry.component, entry.name, entry.markers))
                blob = None if compiled is None else encode(*compiled, prefix, prefix=entry.has_prefix)
            if blob is not None:
                program = self._row_printer().renderer.add(blob)
        except UnicodeEncodeError:  # text only Python can write: its lines stay with Python
            program = RowPrinter.HOLE
        entry.program = program
        return program

    def _shared_prefix(self) -> int | None:
        """The program of the prefix all messages share (registered once), or None when
        only Python prints this prefix."""
        if self._prefix_program is None:
            ops = self.prefix.native_shared_ops()
            self._prefix_program = -1 if ops is None else self._row_printer().renderer.add_prefix(ops)
        return None if self._prefix_program < 0 else self._prefix_program

    def _sync_native_counts(self) -> None:
        """Add the rows the C renderer printed to the messages' counts (and the Unknowns)."""
        if self._printer is None:
            return
        native = self._printer.renderer
        for entry in self._key_entries:
            program = entry.program
            if program is None or program < 0:
                continue
            rows = native.rows_rendered(program)
            new = rows - entry.native_rows
            if new:
                entry.count += new
                entry.native_rows = rows
                if entry.unknown is not None:
                    self.counters.unknown += new

    def _bound_prefix(self, entry: _Entry):
        if entry.prefix is None:
            entry.prefix = self.prefix.bind(entry.component, entry.name, entry.markers)
        return entry.prefix

    def _raw_entry(self, guid_le: bytes, number: int) -> "_Entry":
        """The entry of a (GUID bytes_le, number) key as the rows path sees it."""
        key = (guid_le, number)
        entry = self._raw_entries.get(key)
        if entry is None:
            guid = uuid.UUID(bytes_le=guid_le)
            entry = self._entries.get((guid, number)) or self._entry(guid, number)
            self._raw_entries[key] = entry
        return entry

    # -- the structured path --------------------------------------------------------------
    def decode_records(self, records: Iterable, ctx: FileContext, *,
                       include_header: bool = True) -> Iterator[WppMessage]:
        """Yield a ``WppMessage`` per WPP record (and the logfile header unless include_header=False)."""
        counters = self.counters
        first = True
        try:
            for rec in records:
                counters.events += 1
                if rec.kind != "message":
                    if first and _is_logfile_header(rec):
                        if include_header:
                            yield self._header_message(rec, ctx)
                    else:
                        counters.non_wpp += 1
                    first = False
                    continue
                first = False
                counters.messages += 1
                yield self.decode_record(rec, ctx)
        finally:
            counters.formatted = (counters.messages - counters.unknown - counters.format_errors)

    def decode_record(self, rec, ctx: FileContext) -> WppMessage:
        """Decode one TraceMessage record (counts it as unknown / format error when it is one)."""
        key = (rec.message_guid, rec.event_id)
        entry = self._entries.get(key) or self._entry(*key)
        entry.count += 1
        filetime = self._filetime(rec, ctx)
        time_text = self.time_text(filetime) if filetime is not None else ""
        message = entry.message
        markers = entry.markers
        msg = WppMessage(
            status=OK, guid=rec.message_guid, number=rec.event_id, filetime=filetime,
            time_text=time_text, cpu=rec.processor or 0, thread_id=rec.thread_id or 0,
            process_id=rec.process_id or 0, sequence=rec.sequence or 0, kernel_time=0,
            user_time=0, component=entry.component, name=entry.name,
            source_file=markers.get("FILE", ""), source_line=markers.get("LINE", ""),
            function=markers.get("FUNC", ""), level=markers.get("LEVEL", ""),
            flags=markers.get("FLAGS", ""), subcomponent=markers.get("SUBCOMP", ""),
            text="", line="")
        if message is None:
            self.counters.unknown += 1
            msg.status = UNKNOWN
            msg.text = msg.line = entry.unknown
            return msg
        psize = message_pointer_size(rec.flags or 0, ctx.pointer_size)
        formatter = entry.formatter
        try:
            if formatter is None:
                raise ValueError(entry.compile_error)
            msg.args = [tuple(a) for a in formatter.decode_args(rec.user_data, psize)]
            msg.text = formatter.format(rec.user_data, psize, markers)
        except Exception as exc:
            self.counters.format_errors += 1
            msg.status = FORMAT_ERROR
            msg.error = str(exc) or type(exc).__name__
            msg.text = _format_error_line(entry, msg.error)
        msg.line = msg.text
        if entry.has_prefix and not self.noprefix:
            msg.line = self._bound_prefix(entry).render((
                msg.thread_id, time_text, 0, 0, msg.sequence, msg.process_id, msg.cpu)) + msg.text
        return msg

    # -- helpers --------------------------------------------------------------------------
    @staticmethod
    def _filetime(rec, ctx: FileContext) -> int | None:
        raw = rec.timestamp
        if raw is None:
            return None
        return ctx.to_filetime(raw) if ctx.to_filetime is not None else raw

    def _header_values(self, rec, ctx: FileContext):
        filetime = self._filetime(rec, ctx)
        return filetime, (self.time_text(filetime) if filetime is not None else "")

    def _header_line(self, rec, ctx: FileContext) -> str:
        # The logfile header is delivered as the first event; tracefmt prints it as an
        # "EventTrace" line (docs/tmf-format.md §6.2) with %1 = "Header".
        self.counters.headers += 1
        entry = self._header_entry()
        entry.count += 1
        if self.noprefix:
            return "EventTrace"
        _filetime, tt = self._header_values(rec, ctx)
        return entry.prefix.render((rec.thread_id or 0, tt, 0, 0, rec.sequence or 0,
                                    rec.process_id or 0, rec.processor or 0)) + "EventTrace"

    def _header_entry(self) -> _Entry:
        entry = self._entries.get(("header", 0))
        if entry is None:
            entry = _Entry(EVENT_TRACE_GUID, 0)
            entry.component = entry.name = "Header"
            entry.has_prefix = True
            entry.prefix = self.prefix.bind("Header", "Header", {})
            self._entries[("header", 0)] = entry
        return entry

    def _header_message(self, rec, ctx: FileContext) -> WppMessage:
        line = self._header_line(rec, ctx)
        filetime, tt = self._header_values(rec, ctx)
        return WppMessage(
            status=HEADER, guid=EVENT_TRACE_GUID, number=0, filetime=filetime, time_text=tt,
            cpu=rec.processor or 0, thread_id=rec.thread_id or 0, process_id=rec.process_id or 0,
            sequence=rec.sequence or 0, kernel_time=0, user_time=0, component="Header",
            name="Header", source_file="", source_line="", function="", level="", flags="",
            text="EventTrace", line=line)

    def message_counts(self) -> dict[tuple, int]:
        """Rows seen per message (the log-file header's too), for adding to another decoder."""
        self._sync_native_counts()
        return {key: entry.count for key, entry in self._entries.items() if entry.count}

    def add_message_counts(self, counts: dict[tuple, int]) -> None:
        """Add another decoder's ``message_counts`` (of the same TMFs) to this one's."""
        for key, count in counts.items():
            entry = self._entries.get(key)
            if entry is None:
                entry = self._header_entry() if key == ("header", 0) else self._entry(*key)
            entry.count += count

    def summary_rows(self):
        """(count, event name, event type, guid text) per message seen, for the FmtSum table."""
        from .output import SummaryRow

        rows = []
        for entry in self._entries.values():
            if entry.count:
                rows.append(SummaryRow(entry.count, entry.component, entry.name.strip(),
                                       str(entry.guid) if entry.guid is not None else ""))
        return rows


def _is_logfile_header(rec) -> bool:
    """The TRACE_LOGFILE_HEADER record: a system record with hook 0 (EventTrace group, type 0)."""
    return rec.kind == "system" and (rec.event_id or 0) == 0 and (
        getattr(rec, "provider_id", None) in (None, EVENT_TRACE_GUID))
