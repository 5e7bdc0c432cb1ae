"""The WPP decoding pipeline: message records -> TMF lookup -> compiled formatter -> prefix + text.

Records come from the decoder engine in ProcessTrace order. Each (message GUID, number) is
resolved once: its TMF ``Message`` is looked up, its ``MessageFormatter`` compiled
(``wpptrace.tmf.render.compile_message``) and the prefix template bound to its fixed values;
the result is cached, so a message costs one dict lookup, one argument render and one ``%``
for the prefix. The single-file text path (``format_rows``) goes further: the C rows of
``wpp_rows`` carry small-integer ids (message, argument bytes, thread), so a repeated argument
block costs two list indexes and one string join, and only new ones are rendered. Messages without a format give tracefmt's ``Unknown( N): GUID=...`` line,
messages whose arguments don't fit give a format-error line; both are counted, neither stops
the run. Records that are not TraceMessage records are counted and skipped.

``WppMessage.property(name)`` is the TdhGetWppProperty-like accessor: a named argument (or a
WPP property such as ``FormattedString``, ``FunctionName``) as a typed value.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ._hazmat import ETL

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

_MILLIS = tuple("%03d" % i for i in range(1000))
_MEMO_OFF, _MEMO_PLAIN, _MEMO_PREFIXED = 0, 1, 2
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
                 "memo_mode")

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
        self.memo_mode = 0  # _MEMO_*: how format_rows may memoise this message's lines


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
            entry.prefix = self.prefix.bind(entry.component, entry.name, entry.markers)
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
                prefix = entry.prefix
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

    def format_rows(self, chunks: Iterable[tuple[list, list]], view) -> Iterator[list[str]]:
        """The hot path: the engine's chunks of ``wpp_rows`` rows (``view``: the RowView that
        made them) -> lists of output lines (same text as ``format_records``).

        Per row the loop indexes lists by the C tables' ids: ``texts[memo]`` is the text of
        an argument block seen before (only the prefix is then per event), ``by_key[key]`` the
        resolved message, ``heads[head]`` the prefix part before the time."""
        from .wpp_rows import (HOT_FIELDS, KEY_OVERFLOW, LOGFILE_HEADER, NO_TIME, NOT_MESSAGE,
                               ROW_FIELDS, ROW_FORMAT, ROW_INDEX, ROW_SIZE, TIME_OUT_OF_RANGE,
                               header_record)

        assert ROW_FIELDS[len(HOT_FIELDS):] == [
            "thread_id", "process_id", "sequence", "payload_offset", "payload_size",
            "guid_offset", "cpu", "number", "flags", "kind", "present"]
        at_tid, at_pid, at_cpu = ROW_INDEX["thread_id"], ROW_INDEX["process_id"], ROW_INDEX["cpu"]
        unpack_row, row_size = ROW_FORMAT.unpack_from, ROW_SIZE
        tables, datas, blobs, sources = view.tables, view.datas, view.blobs, view.sources
        counters = self.counters
        noprefix = self.noprefix
        time_text = self.time_text
        second_text = time_text._second_text
        cur_second = cur_milli = None
        cur_text = second_part = ""
        # Formatted texts by memo id (key, flags, argument bytes): real traces repeat payloads
        # (function enter/exit, the same status), and a hit leaves only the prefix to build.
        # Bounded by the C table (MEMO_CAP ids, MEMO_PER_KEY per message).
        memo_none, head_none = tables.memo_none, tables.head_none
        texts: list = [None] * (memo_none + 1)   # the last slot (no id) stays None
        heads: list = [None] * (head_none + 1)   # (cpu, pid, tid) -> head, for ``fast_head``
        by_key: list = []                        # key id -> _Entry (mirrors the C key table)
        nkeys = 0
        fast_head = self._fast_head_template()
        events = non_wpp = headers = 0
        try:
            for batch, _keys in chunks:
                out = []
                append = out.append
                events += len(batch)
                for ts, milli, mid, hid, kid, slot, index in batch:
                    hit = texts[mid]
                    if hit is not None:  # seen before: only the prefix is per event
                        suffix, entry, plain = hit
                        entry.count += 1
                        if plain:
                            append(suffix)
                            continue
                        if milli != cur_milli:  # the time text changes at most once per ms
                            cur_milli = milli
                            if milli <= TIME_OUT_OF_RANGE:
                                cur_second = None
                                cur_text = "" if milli == NO_TIME else \
                                    time_text(sources[slot].clock.to_filetime(ts))
                            else:
                                second, ms = divmod(milli, 1000)
                                if second != cur_second:
                                    cur_second = second
                                    second_part = second_text(second)
                                cur_text = second_part + _MILLIS[ms]
                        head = heads[hid]
                        if head is None:
                            full = unpack_row(blobs[slot], index * row_size)
                            head = entry.prefix.head(full[at_cpu], full[at_pid], full[at_tid])
                            if hid != head_none:
                                heads[hid] = head
                        append(head + cur_text + suffix)
                        continue
                    (_ts, _milli, _mid, _hid, _kid, _slot, _index, tid, pid, seq, poff, plen,
                     goff, cpu, number, flags, kind, _present) = unpack_row(blobs[slot],
                                                                            index * row_size)
                    if kid < nkeys:
                        entry = by_key[kid]
                    elif kid == NOT_MESSAGE:
                        non_wpp += 1
                        continue
                    elif kid == LOGFILE_HEADER:
                        full = unpack_row(blobs[slot], index * row_size)
                        append(self._header_line(header_record(full), sources[slot].clock))
                        headers += 1
                        continue
                    elif kid == KEY_OVERFLOW:  # more distinct messages than the C table holds
                        guid = datas[slot][goff:goff + 16] if goff else bytes(16)
                        entry = self._raw_entry(guid, number)
                    else:  # new keys: resolve them in id order
                        while nkeys <= kid:
                            entry = self._raw_entry(*tables.key_info(nkeys))
                            if not entry.memo_mode:
                                tables.stop_memo(nkeys)
                            by_key.append(entry)
                            nkeys += 1
                        entry = by_key[kid]
                    entry.count += 1
                    formatter = entry.formatter
                    if formatter is None:
                        if entry.unknown is not None:
                            counters.unknown += 1
                            append(entry.unknown)
                            continue
                        counters.format_errors += 1
                        text = _format_error_line(entry, entry.compile_error)
                    else:
                        psize = message_pointer_size(flags, sources[slot].pointer_size)
                        try:
                            text = formatter.format(datas[slot][poff:poff + plen], psize,
                                                    entry.markers)
                        except Exception as exc:  # args don't fit: a format-error line
                            counters.format_errors += 1
                            text = _format_error_line(entry, str(exc) or type(exc).__name__)
                        else:
                            mode = entry.memo_mode
                            if mode and mid != memo_none:
                                texts[mid] = ((text if mode == _MEMO_PLAIN else
                                               entry.prefix.tail + text), entry, mode == _MEMO_PLAIN)
                    if noprefix or not entry.has_prefix:
                        append(text)
                        continue
                    prefix = entry.prefix
                    tail = prefix.tail
                    if tail is None:
                        append(self._generic_prefix(prefix, ts, milli, tid, seq, pid, cpu,
                                                    sources[slot].clock) + text)
                        continue
                    if milli != cur_milli:
                        cur_milli = milli
                        if milli <= TIME_OUT_OF_RANGE:
                            cur_second = None
                            cur_text = "" if milli == NO_TIME else \
                                time_text(sources[slot].clock.to_filetime(ts))
                        else:
                            second, ms = divmod(milli, 1000)
                            if second != cur_second:
                                cur_second = second
                                second_part = second_text(second)
                            cur_text = second_part + _MILLIS[ms]
                    if prefix.head_template == fast_head:
                        head = heads[hid]
                        if head is None:
                            head = prefix.head(cpu, pid, tid)
                            if hid != head_none:
                                heads[hid] = head
                    else:
                        head = prefix.head(cpu, pid, tid)
                    append(head + cur_text + tail + text)
                yield out
        finally:
            counters.events += events
            counters.messages += events - non_wpp - headers
            counters.non_wpp += non_wpp
            counters.formatted = (counters.messages - counters.unknown - counters.format_errors)

    def _raw_entry(self, guid_le: bytes, number: int) -> "_Entry":
        """The entry of a (GUID bytes_le, number) key as the rows path sees it."""
        key = (guid_le, number)
        entry = self._raw_entries.get(key)
        if entry is None:
            guid = uuid.UUID(bytes_le=guid_le)
            entry = self._entries.get((guid, number)) or self._entry(guid, number)
            self._raw_entries[key] = entry
        entry.memo_mode = self._memo_mode(entry)
        return entry

    def _fast_head_template(self):
        """The head template (prefix part before the time) shared by memoised lines."""
        return self.prefix.bind("", "", {}).head_template

    def _memo_mode(self, entry: "_Entry") -> int:
        """How a message's lines can be memoised: not (0), text only, or tail + text."""
        if entry.formatter is None:
            return _MEMO_OFF
        if self.noprefix or not entry.has_prefix:
            return _MEMO_PLAIN
        prefix = entry.prefix
        if prefix.tail is not None and prefix.head_template == self._fast_head_template():
            return _MEMO_PREFIXED
        return _MEMO_OFF

    def _generic_prefix(self, prefix, ts, milli, tid, seq, pid, cpu, clock) -> str:
        if prefix.static is not None:
            return prefix.static
        tt = ""
        if prefix.needs_time and milli != _NO_TIME:
            tt = self.time_text(clock.to_filetime(ts))
        return prefix.template % prefix.pick((tid, tt, 0, 0, seq, pid, cpu))

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
            msg.line = entry.prefix.render((
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
        entry = self._entries.get(("header", 0))
        if entry is None:
            entry = _Entry(EVENT_TRACE_GUID, 0)
            entry.component = entry.name = "Header"
            entry.has_prefix = True
            entry.prefix = self.prefix.bind("Header", "Header", {})
            self._entries[("header", 0)] = entry
        entry.count += 1
        if self.noprefix:
            return "EventTrace"
        _filetime, tt = self._header_values(rec, ctx)
        return entry.prefix.render((rec.thread_id or 0, tt, 0, 0, rec.sequence or 0,
                                    rec.process_id or 0, rec.processor or 0)) + "EventTrace"

    def _header_message(self, rec, ctx: FileContext) -> WppMessage:
        line = self._header_line(rec, ctx)
        filetime, tt = self._header_values(rec, ctx)
        return WppMessage(
            status=HEADER, guid=EVENT_TRACE_GUID, number=0, filetime=filetime, time_text=tt,
            cpu=rec.processor or 0, thread_id=rec.thread_id or 0, process_id=rec.process_id or 0,
            sequence=rec.sequence or 0, kernel_time=0, user_time=0, component="Header",
            name="Header", source_file="", source_line="", function="", level="", flags="",
            text="EventTrace", line=line)

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
