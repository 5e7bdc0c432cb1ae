"""WPP messages formatted like tracefmt: the engine's rows -> TMF lookup -> compiled formatter
-> text, CSV or JSON Lines (or WppMessage objects).

``WppDecoder.format`` is the one formatting loop. Rows come from the decoder engine in
ProcessTrace order (decoder.engine with the ``wpp_rows.RowView``). Each (message GUID,
number) is resolved once: its TMF ``Message`` is looked up and, the first time a row needs
it, a program of the C renderer (``wpptrace.tmf.native``) made from the plan every message of
its format string and argument list shares (``wpptrace.tmf.render.native_plan``) and its own
marker texts; its ``MessageFormatter`` (``wpptrace.tmf.render.compile_message``) is compiled
when something needs more than that. The program prints every row of a merged chunk
into one buffer in one call, in the chosen form: the tracefmt line, a CSV row or a JSON
object (each program then carries the parts of its rows that depend only on the message, made
by decoder.output's ``CsvRows`` / ``JsonRows``: its "decoration"). Python prints only what the
renderer leaves to it, at its place. Messages without a format give tracefmt's ``Unknown( N): GUID=...`` line,
messages whose arguments don't fit give a format-error line; both are counted, neither stops
the run. Records that are not TraceMessage records are counted and skipped.

``decode_record`` decodes one ``Record`` into a ``WppMessage``, whose ``property(name)`` is
the TdhGetWppProperty-like accessor: a named argument (or a WPP property such as
``FormattedString``, ``FunctionName``) as a typed value.
"""
from __future__ import annotations

from array import array
from functools import cache, lru_cache
from itertools import compress, islice, repeat
from operator import add, and_ as _and, attrgetter, itemgetter, ne, not_, sub as _sub

from wpptrace._fieldclass import field, fieldclass
from wpptrace._lazyuuid import int_of_le, le_of_int, text_of_le, uuid_of_int

from ._hazmat import ETL, NO_RECORD, RowPrinter, add_at, add_into, install_records, sizeof

from .buffers import message_pointer_size
from .prefix import DEFAULT_PREFIX, MessageMarkers, PrefixTemplate, TimestampText, marker_values
from .records import _EVENT_TRACE_GUID

TYPE_CHECKING = False   # typing is not imported at run time: annotations are strings
if TYPE_CHECKING:
    import uuid
    from typing import Any, Callable, Iterable, Iterator, Sequence

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


def _event_trace_guid() -> uuid.UUID:
    """EventTraceGuid, the provider GUID of the logfile-header event (``EVENT_TRACE_GUID``):
    records', made when first used (no UUID is made by a fmt run whose messages all come from
    its program cache, and uuid is not imported then: ``wpptrace._lazyuuid``)."""
    from .records import EVENT_TRACE_GUID

    return EVENT_TRACE_GUID


def __getattr__(name: str):
    if name == "EVENT_TRACE_GUID":
        return _event_trace_guid()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_EVENT_TRACE_GUID_LE = le_of_int(int(_EVENT_TRACE_GUID.replace("-", ""), 16))
_KIND_SYSTEM = ETL.ETLRD_KIND_SYSTEM
_NO_TIME = ETL.WPPR_NO_TIME    # wpp_rows.NO_TIME: the record carries no time
_HAS_GUID = ETL.ETLRD_HAS_GUID
_KEY_OVERFLOW = ETL.WPPROW_KEY_OVERFLOW      # wpp_rows.KEY_OVERFLOW
_GUID_SIZE = sizeof("GUID")
_POINTER64, _POINTER32 = ETL.TRACE_MESSAGE_POINTER64, ETL.TRACE_MESSAGE_POINTER32
_OUTPUTS = ("text", "lines", "csv", "jsonl", "messages")
_RECORD_HAS_PREFIX, _RECORD_UNKNOWN = ETL.PRECORD_HAS_PREFIX, ETL.PRECORD_UNKNOWN

# Status of a decoded record.
OK = "ok"
UNKNOWN = "unknown"
FORMAT_ERROR = "format-error"
HEADER = "header"


def unknown_type(number: int) -> str:
    """tracefmt's %2 of a message without a format: the ``%3d`` of its number, as its Unknown
    line and CSV's MessageName column print it. The padding is layout: the message's name as a
    value (``_Entry.name``: JSON, Arrow, the API, the summary) is the number alone."""
    return "%3d" % number


def unknown_line(component: str, number: int, guid: uuid.UUID | str) -> str:
    """tracefmt's line for a message without format information (docs/tmf-format.md §6.2)."""
    return "%s(%s): GUID=%s (No Format Information found)." % (component, unknown_type(number), guid)


def _format_error_line(entry: "_Entry", detail: str) -> str:
    """tracefmt's FormatMessage-failure line (legacy wording), saying which message and why."""
    guid = _guid_text(entry.guid_le)
    if guid not in detail:  # the formatter's errors already name the message
        detail = "%s #%d (%s): %s" % (guid, entry.number, entry.name, detail)
    return "*****FormatMessage (#Typev) failed: %s (Format = \"%s\")*****" % (detail, entry.format)


def _text_or_format_error(entry: "_Entry", data, psize: int) -> tuple[str, str]:
    """(the text, "") of a known message's arguments, or (its format-error line, why) when
    they cannot be formatted: the one wording of a format error in every output form (the
    text form's; CSV and JSON Lines print the same line, JSON's ``error`` the same reason)."""
    formatter = entry.formatter
    if formatter is None:
        reason = entry.compile_error
    else:
        try:
            return formatter.format(data, psize, entry.markers), ""
        except Exception as exc:  # args don't fit: a format-error line, not a crash
            reason = str(exc) or type(exc).__name__
    return _format_error_line(entry, reason), reason


class UnknownPropertyError(KeyError):
    """No argument or WPP property of that name in the message (TdhGetWppProperty: ERROR_NOT_FOUND)."""


@fieldclass
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


@fieldclass
class FmtCounters:
    """Counts tracefmt reports (FmtSum) plus what we skipped."""

    events: int = 0  # every record seen, header included
    messages: int = 0  # TraceMessage (WPP) records
    formatted: int = 0
    unknown: int = 0
    format_errors: int = 0
    non_wpp: int = 0  # other records: counted and skipped
    headers: int = 0


class _WppProperties:
    """TdhGetWppProperty-like access of ``WppMessage``."""

    __slots__ = ()

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


@fieldclass
class WppMessage(_WppProperties):
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

    def __getstate__(self) -> dict:
        """Its fields as a message made with its UUID holds them (``guid``, not the bytes a
        decoded one keeps until it is read): a pickle any version can load."""
        state = dict(self.__dict__)
        if "_guid_le" in state:
            state.pop("_guid_le")
            state["guid"] = self.guid
        return state


def wpp_property(message: WppMessage, name: str) -> Any:
    """TdhGetWppProperty for a decoded message: the named argument (its TMF C expression) or
    WPP property (``FormattedString``, ``SequenceNum``, ``FunctionName``, ``ComponentName``,
    ``SubComponentName``, ``TraceGuid``, ``GuidTypeName``, ``FlagsName``, ``LevelName`` ...)
    as a typed value. Raises ``UnknownPropertyError`` (a KeyError) when there is none."""
    return message.property(name)


@cache
def _no_guid():
    """The zero GUID: the key of messages that carry none (made on first use: ``uuid`` is
    not imported by a run that makes no UUID)."""
    import uuid

    return uuid.UUID(int=0)


@lru_cache(maxsize=4096)
def _uuid_of_le(guid_le: bytes) -> uuid.UUID:
    """The UUID of GUID bytes_le (made once: a GUID has many messages; from its int:
    ``UUID(bytes_le=)`` costs twice as much)."""
    return uuid_of_int(int_of_le(guid_le))


class _GuidFromLe:
    """``WppMessage.guid`` of a message made with its GUID's bytes_le (``_guid_le``, set by
    ``_with_guid_le``): the UUID is made when first read, so a CSV or JSON Lines run, which
    prints GUIDs as text (``guid_text``), imports no ``uuid`` (``wpptrace._lazyuuid``)."""

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        guid_le = obj.__dict__.get("_guid_le")
        if guid_le is None:           # (a message made without its fields, or its guid deleted)
            raise AttributeError(f"{type(obj).__name__!r} object has no attribute 'guid'")
        guid = obj.__dict__["guid"] = _uuid_of_le(guid_le)
        return guid


WppMessage.guid = _GuidFromLe()


def _with_guid_le(message: WppMessage, guid_le: bytes) -> WppMessage:
    """``message`` (made with ``guid=None``) given the GUID ``guid_le``, no UUID made."""
    held = message.__dict__
    del held["guid"]
    held["_guid_le"] = guid_le
    return message


def guid_text(message: WppMessage) -> str | None:
    """``str(message.guid)``, or None for a message with no GUID; no UUID made."""
    held = message.__dict__
    if "guid" in held:
        guid = held["guid"]
        return None if guid is None else str(guid)
    return text_of_le(held["_guid_le"])


class _SummaryCounts:
    """This process's own counts of the messages, made by ``prepare_summary`` ahead of the
    summary table, kept while they do not change (the counts other processes add are apart:
    ``WppDecoder._added``)."""

    __slots__ = ("state", "counts")

    def __init__(self, state: tuple, counts: array) -> None:
        self.state = state        # what they hold for (``WppDecoder._summary_state``)
        self.counts = counts      # each message's count, in ``_entries`` order (int64)


class _FoundMessages:
    """The messages of plain keys as ``WppDecoder.add_plain_message_counts`` finds them: each
    one's place in the messages' order (``_entries``), -1 for a key of none, found ahead
    (``find_plain_messages``). A place found stays good (messages are only added, never
    moved); a key of none is looked up again once messages were met since (``met``)."""

    __slots__ = ("met", "at")

    def __init__(self, met: int, at: array) -> None:
        self.met = met            # the messages met when the keys of none were looked up
        self.at = at              # one per key, the keys' first ones


class _Entry:
    """Everything resolved once per (message GUID, number). A known message's formatter,
    markers and compile error are made the first time something reads them (its program is
    made without them: ``WppDecoder._program_code``); its GUID (a UUID) too, from its bytes
    (``guid_le``): a fmt run that reads none does not import ``uuid``."""

    __slots__ = ("guid_le", "guid", "number", "message", "formatter", "prefix", "markers", "component",
                 "name", "has_prefix", "count", "unknown", "format", "compile_error",
                 "program", "native_rows", "_resolver")

    def __init__(self, guid_le: bytes, number: int, guid=None):
        self.guid_le = guid_le
        if guid is not None:
            self.guid = guid
        self.number = number
        self.prefix = None
        self.component = "Unknown"
        self.name = str(number)  # a message without a format is named by its number
        self.has_prefix = False
        self.count = 0
        self.unknown = None  # the Unknown line when there is no format
        self.program = None  # the C renderer's program id (HOLE: Python prints the lines)
        self.native_rows = 0  # rows of that program already in ``count``
        self._resolver = None  # fills the slots below that are not filled yet

    def __getattr__(self, name: str):  # only for the slots not filled yet
        if name == "guid":
            guid = self.guid = _uuid_of_le(self.guid_le)
            return guid
        if name in _RESOLVED_LATER:
            resolver = self._resolver
            if resolver is not None:
                self._resolver = None
                resolver(self)
                return getattr(self, name)
        raise AttributeError(name)


class _SharedEntry(_Entry):
    """An entry made from a message's record (fmt's program cache, or another process of the
    run: see program_share), its program installed: what printing and counting its rows
    needs, set by ``WppDecoder._from_records`` (no __init__: thousands are made at once). The
    rest (TMF message, formatter, markers, format) is resolved from the TMFs the first time
    something reads it."""

    __slots__ = ()


_RESOLVED_LATER = frozenset({"message", "formatter", "markers", "format", "compile_error"})
_COUNT, _NATIVE_ROWS, _PROGRAM, _GUID_LE, _COMPONENT, _NAME = (
    attrgetter(name) for name in ("count", "native_rows", "program", "guid_le", "component", "name"))
_FIRST = itemgetter(0)
_COUNT_PARTS = attrgetter("count", "native_rows", "program")


def mark_counts(marks: tuple) -> list[int]:
    """A ``WppDecoder.count_marks`` mark as one count per message (its ``message_keys``):
    the count Python kept plus its program's rows (a program id that is none of the
    renderer's: a message Python prints)."""
    kept, programs, rows = (memoryview(part).cast(code) for part, code in zip(marks, "qqQ"))
    n = len(rows)
    return [c + rows[p] if 0 <= p < n else c for c, p in zip(kept, programs)]


def _import_render():
    from wpptrace.tmf import render  # imported late: prefix and output work without it

    return render


_ENCODER: tuple | None = None


def _native_encoder() -> tuple:
    """(SharedPrefix, encode) of wpptrace.tmf.native, imported once (late, as the renderer is;
    an import statement costs microseconds per message even when the module is loaded)."""
    global _ENCODER
    if _ENCODER is None:
        from wpptrace.tmf.native import SharedPrefix, encode

        _ENCODER = (SharedPrefix, encode)
    return _ENCODER


_COMPILER = None


def _message_compiler():
    """The C compiler of message programs (``wpptrace.tmf.native_compile``), made once a
    process; False where it cannot be made (then every message compiles in Python)."""
    global _COMPILER
    if _COMPILER is None:
        try:
            from wpptrace.tmf.native_compile import MessageCompiler

            from .prefix import _DEFAULTED, _EMPTY_MARKERS

            _COMPILER = MessageCompiler(_EMPTY_MARKERS, _DEFAULTED)
        except (ImportError, AttributeError, MemoryError):   # a C core without it
            _COMPILER = False
    return _COMPILER


_PACK_PARTS = None


def _pack_parts():
    """``program_share.pack_parts``, imported once (fmt without -j or a program cache
    shares no records)."""
    global _PACK_PARTS
    if _PACK_PARTS is None:
        from .program_share import pack_parts

        _PACK_PARTS = pack_parts
    return _PACK_PARTS


def _most_per_unit(into: dict[str, dict[int, int]], counts: dict[str, dict[int, int]]) -> None:
    """Merge TMF problem counts per (file, parse unit) into ``into``, each unit's the most any
    process met: a unit parses alike wherever it is read, so its count is taken once."""
    for path, units in counts.items():
        have = into.setdefault(path, {})
        for unit, count in units.items():
            have[unit] = max(count, have.get(unit, 0))


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
        # False: the text of ``format`` "text" is not wanted, only what it counts (fmt's
        # summary alone, or the output's reader gone): each row is decided as when printed
        # (the same rows left to Python, the same counts) but the renderer prints none.
        # Read before each chunk: a run may turn it off while it formats.
        self.text_wanted = True
        # every message seen, in the order first seen (``message_keys``): keyed by (GUID as
        # an int, number), or by (GUID bytes_le, number) for a message installed from a
        # record, whose value is an int (its place in the installed columns below) until its
        # entry is made
        self._entries: dict[tuple, _Entry | int] = {}
        self._raw_entries: dict[tuple, _Entry] = {}  # keyed by (GUID bytes_le, number)
        # Messages installed from records, one column each: what printing and counting their
        # rows needs, their entries made only when something reads one (``_installed_entry``)
        self._installed_keys: list[tuple[bytes, int]] = []
        self._installed_programs = array("i")
        self._installed_flags = bytearray()          # PRECORD_* flags
        # component, name, Unknown line of each (``_installed_strings``): the batches'
        # texts, split when first read
        self._installed_texts: list[str] = []
        self._installed_joined: list[str] = []
        self._installed_counts = array("q")          # rows counted besides the renderer's
        # the counts other processes added (``add_plain_message_counts``: fmt -j's workers'),
        # one per message in ``_entries`` order, apart from this process's own until something
        # reads or sets the entries' counts (``_fold_added``): adding them is one C call
        self._added: array | None = None
        # each message's place in ``_entries`` order by what ``find_plain_messages`` finds (its
        # entry, or an installed message's int), for the first ``_places_made`` messages
        self._places: dict = {}
        self._places_made = 0
        self._guid_ints: dict[bytes, int] = {}       # GUID bytes_le -> its int (many messages each)
        self._guid_components: dict[int, str | None] | None = None
        self._other_tmf_issues: list[list[tuple]] = []   # per process that sent its own
        # path -> parse unit -> problems the other processes met (``note_tmf_issues``)
        self._other_tmf_counts: dict[str, dict[int, int]] = {}
        self._render = None
        self._printer: RowPrinter | None = None  # the C renderer's, made on first use
        self._prefix_program: int | None = None  # its shared prefix program (-1: Python's)
        # the printer's (noprefix, form, CSV quote_all): its programs leave the prefix out,
        # print rows as text, csv or jsonl
        self._printer_mode: tuple = (noprefix, "text", False)
        self._decorations = None                 # makes the programs' CSV / JSON decorations
        # row key id -> entry, or installed message (an int: ``_installed_entry``), mirroring
        # the C key table
        self._key_items: list = []
        self._key_entries_made = 0      # the ids ``_key_entries`` has made entries of
        # the programs printing Unknown lines, and their rows already in counters.unknown
        self._unknown_programs: dict[int, None] = {}
        self._unknown_seen = 0
        # changed whenever a count Python keeps or a message's program changes: a mark's
        # parts made from the messages are made again only then (``count_marks``)
        self._counted = 0
        self._mark_parts: tuple = (None, b"", b"")
        # the summary table's GUID texts, event names and types of the first messages met,
        # and GUID texts by GUID bytes_le (``_summary_parts``)
        self._summary_made: tuple[list[str], list[str], list[str]] = ([], [], [])
        self._summary_rows = None                # ... their rows but the counts (prepare_summary)
        # the messages' counts made in ``prepare_summary``, while still right (``_kept_summary_counts``)
        self._summary_kept: _SummaryCounts | None = None
        self._guid_texts: dict[bytes, str] = {}
        self._key_tables = None                  # ... of this RowTables
        self.column_decoration = None            # "columns" form: entry -> its decoration
        self._share = None                       # programs shared with the other processes of a run
        self._cache = None                       # programs kept between runs (program_cache)

    # -- per-message resolution -----------------------------------------------------------
    def _entry(self, guid, number: int) -> _Entry:
        """The entry of (UUID, number): the one the rows path has (``_raw_entry``)."""
        if guid is None:  # TRACE_MESSAGE_COMPONENTID messages carry no GUID (the rows path sees zeros)
            guid = _no_guid()
        entry = self._entries.get((guid.int, number))   # (an int hashes in C, a UUID in Python)
        if entry is None:
            entry = self._raw_entry(guid.bytes_le, number)
            entry.guid = guid            # (the same GUID: not made again from its bytes)
        return entry

    def _resolve(self, entry: _Entry) -> None:
        """Fill an entry from the TMFs: its message (or its Unknown line), component and name;
        a known message's formatter and markers when first read (``_formatted``)."""
        guid, number = self._guid_int(entry.guid_le), entry.number   # the TMF set's key: no UUID made
        message = self.tmfset.lookup(guid, number)
        entry.message = message
        if message is None:
            entry.formatter, entry.markers, entry.format, entry.compile_error = None, {}, "", None
            component = self._component_of_guid(guid)
            entry.component = component or "Unknown"
            entry.unknown = unknown_line(entry.component, number, _guid_text(entry.guid_le))
        else:
            entry.component = message.component or "Unknown"
            entry.name = message.name
            entry.format = message.format
            # A leading %0 is where the prefix goes: the formatter renders it as nothing and
            # this module puts the prefix in front.
            entry.has_prefix = message.format.startswith("%0")
            entry._resolver = self._formatted

    def _formatted(self, entry: _Entry) -> None:
        """Fill a known message's formatter (or compile error) and markers."""
        if self._render is None:
            self._render = _import_render()
        message = entry.message
        entry.formatter, entry.compile_error = None, None
        try:
            entry.formatter = self._render.compile_message(message, self.tmfset, utc=self.utc)
        except Exception as exc:  # a bad format string is a format error, not a crash
            entry.compile_error = str(exc) or type(exc).__name__
        entry.markers = marker_values(message, defaults=getattr(entry.formatter, "markers", None))

    def _component_of_guid(self, guid: int) -> str | None:
        """The component an Unknown message of ``guid`` (its int) shows: its provider's first
        message's (None for a GUID with no message). Only that GUID's TMF files are read:
        listing every message would read and parse every TMF file at the first Unknown
        message."""
        components = self._guid_components
        if components is None:
            components = self._guid_components = {}
        if guid not in components:
            try:
                components[guid] = self.tmfset.first_component(guid)
            except AttributeError:
                components[guid] = None
        return components[guid]

    # -- the formatting loop ---------------------------------------------------------------
    def format(self, chunks: Iterable[tuple[Sequence[int], list]], view, output: str = "text",
               quote_all: bool = False, room: Callable[[], tuple[int, int] | None] | None = None
               ) -> Iterator:
        """The one formatting loop: the engine's chunks of row refs (``view``: the
        ``wpp_rows.RowView`` that made them) -> per chunk, the chosen output:

        * "text": UTF-8 bytes, one tracefmt line per message (the C renderer's buffer, valid
          until the next chunk is asked for); "lines": the same as lists of str;
        * "csv" / "jsonl": UTF-8 bytes, one CSV row / JSON object per message
          (decoder.output ``CsvRows``, ``JsonRows``; ``quote_all``: every CSV field quoted),
          also the renderer's buffer;
        * "messages": lists of ``DecodedMessage`` (the log-file header left out), made
          straight from the rows the C renderer printed (decoder.row_messages: fields read
          and typed arguments decoded when first used), over a ``WppMessage`` for a row
          Python decoded.

        Each message compiles once to a program of the C renderer (``wpptrace.tmf.native``),
        which prints every row of a merged chunk into one buffer in one call (with the prefix
        for text and CSV, without it for JSON Lines and messages); what it leaves to Python
        (the log-file header, argument bytes that do not fit, item types only Python prints)
        is made here, at its place. CSV rows and JSON objects (the row's own facts, the line or
        text quoted or escaped, the typed arguments) are printed by the renderer too, for every
        message whose arguments it can type; Python writes the others' rows the same way.

        ``room`` (text, CSV, JSON Lines): called before each chunk is printed, the memory where
        its bytes are to be written, as (address, bytes), or None; the renderer prints the chunk
        there, and the bytes yielded are that memory when they fit and Python printed none of
        the chunk's lines (``TextWriter.room``: no copy between the renderer and the output)."""
        if output not in _OUTPUTS:
            raise ValueError(f"output {output!r}: expected one of {', '.join(_OUTPUTS)}")
        if output == "messages":
            from .row_messages import MessageRows

            rows = MessageRows(self)
            for text, ends, items, holes in self._rendered_chunks(
                    chunks, view, want_ends=True, fill_holes=False, mode=self.printer_mode(output)):
                yield rows.chunk(text, ends, items, holes, view)
            return
        rendered = self._rendered_chunks(chunks, view, want_ends=output == "lines", fill_holes=True,
                                         mode=self.printer_mode(output, quote_all),
                                         room=room if output != "lines" else None,
                                         may_drop_text=output == "text")
        if output in ("text", "csv", "jsonl"):
            for text, _ends, _items, _holes in rendered:
                yield text
            return
        if output == "lines":
            for text, ends, _items, _holes in rendered:
                lines, start = [], 0
                for end in ends:
                    if end > start:
                        lines.append(str(text[start:end - 1], "utf-8"))
                        start = end
                yield lines
            return

    def columns(self, chunks: Iterable[tuple[Sequence[int], list]], view, sink,
                decoration) -> Iterator:
        """The formatting loop for Arrow columns (decoder.arrow): per chunk of the engine's row
        refs, ``sink(printer, items, view)`` -> (its result, rows that are not messages), the
        printer's renderer in the "columns" form; ``decoration(entry)``: a program's column
        decoration (``wpptrace.tmf.native.column_decoration``; None: Python decodes its
        rows). Yields the sink's results."""
        self.column_decoration = decoration
        return self._rendered_chunks(chunks, view, want_ends=False, fill_holes=False,
                                     mode=self.printer_mode("columns"), sink=sink)

    def printer_mode(self, output: str = "text", quote_all: bool = False) -> tuple[bool, str, bool]:
        """The C renderer's printer that ``format(output)`` (or ``columns``: "columns") prints
        with, as (noprefix, form, quote_all): what its programs are compiled for, so what fmt's
        program cache keeps them under. The prefix is printed for text lines and CSV rows
        unless the decoder leaves it out; ``form``: rows as "text" lines, "csv" rows, "jsonl"
        objects or "columns"; ``quote_all``: every CSV field quoted."""
        form = output if output in ("csv", "jsonl", "columns") else "text"
        prefixed = output in ("text", "lines", "csv")
        return (self.noprefix or not prefixed, form, bool(quote_all) and form == "csv")

    def _rendered_chunks(self, chunks, view, want_ends: bool, fill_holes: bool, mode: tuple,
                         sink=None, room=None, may_drop_text: bool = False):
        """(text, line ends, row refs, holes) per chunk; the text may be the renderer's buffer
        (valid until the next chunk is asked for). ``fill_holes``: the lines Python prints
        are put in the text (else the holes [(item index, text position)] are handed out);
        ``mode``: the printer's (``printer_mode``); in the "columns" form ``sink`` (see
        ``columns``) consumes each chunk and its results are yielded; ``room``: see
        ``format``; ``may_drop_text``: the C renderer prints nothing while ``text_wanted``
        is off (the chunk's text is then only the lines Python printed)."""
        printer = self._row_printer(mode)
        _noprefix, form, quote_all = mode
        line_of = self._row_line_bytes
        if form in ("csv", "jsonl"):
            line_of = _StructuredRows(self, form, quote_all).hole_line
        tables = view.tables
        if tables is not self._key_tables:   # key ids are the table's: another table starts anew
            if self._key_tables is not None:
                self._key_items = []
                self._key_entries_made = 0
                del printer.key_program[:]
            self._key_tables = tables
        key_entries, key_program = self._key_items, printer.key_program
        installed_programs, installed_flags = self._installed_programs, self._installed_flags
        counters = self.counters
        events = non_wpp = 0
        headers = counters.headers
        try:
            for items, _keys in chunks:
                n = len(items)
                if not n:
                    continue
                events += n
                if len(key_entries) < tables.key_count():                # compiled on first use
                    keys = tables.key_infos(len(key_entries), tables.key_count())
                    if self._share is not None and sink is None:
                        key_entries.extend(self._shared_entries(keys))
                    elif self._cache is not None and sink is None:
                        key_entries.extend(self._cached_entries(keys))
                    else:
                        key_entries.extend([self._raw_entry(*key) for key in keys])
                if len(key_program) < len(key_entries):
                    new = key_entries[len(key_program):]
                    if all(map(isinstance, new, repeat(int))):    # all installed: in C loops
                        programs = list(map(installed_programs.__getitem__, new))
                        key_program.extend(programs)
                        unknown = map(_and, map(installed_flags.__getitem__, new), repeat(_RECORD_UNKNOWN))
                        self._unknown_programs.update(dict.fromkeys(compress(programs, unknown)))
                for key in range(len(key_program), len(key_entries)):
                    entry = key_entries[key]
                    if type(entry) is int:      # installed from a record
                        program = installed_programs[entry]
                        key_program.append(program)
                        if installed_flags[entry] & _RECORD_UNKNOWN:
                            self._unknown_programs[program] = None
                        continue
                    program = entry.program     # installed from a record, or compiled now
                    if program is None:
                        program = self._program(entry)
                    key_program.append(program)
                    if entry.unknown is not None:
                        self._unknown_programs[program] = None
                if sink is not None:
                    result, skipped = sink(printer, items, view)
                    non_wpp += skipped
                    yield result
                    continue
                text, holes, ends, skipped = printer.print(
                    items, view.datas, view.blobs, view.pointer_sizes, want_ends,
                    room() if room is not None else None,
                    text_wanted=self.text_wanted or not may_drop_text)
                non_wpp += skipped
                if holes and fill_holes:
                    text, ends = self._fill_holes(text, ends, items, view, holes, line_of)
                    holes = []
                yield text, ends, items, holes
        finally:
            counters.events += events
            counters.non_wpp += non_wpp
            counters.messages += events - non_wpp - (counters.headers - headers)
            self._sync_unknown()
            counters.formatted = (counters.messages - counters.unknown - counters.format_errors)

    def _fill_holes(self, text, ends: list[int], items, view, holes: list[tuple[int, int]],
                    line_of):
        """Put the lines Python prints (``line_of(ref, view)``: UTF-8, line end included) at
        their places in the C renderer's text (and move the line ends after them)."""
        filled = [(row, pos, line_of(items[row], view)) for row, pos in holes]
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

    def _row_line_bytes(self, ref: int, view) -> bytes:
        return (self._row_line(ref, view) + "\n").encode("utf-8")

    def _row_line(self, ref: int, view) -> str:
        """The line of one row, printed by Python (a hole of the C renderer)."""
        from .wpp_rows import LOGFILE_HEADER, ROW_FORMAT, ROW_SIZE, TIME_OUT_OF_RANGE, header_record

        slot, index = ref >> 32, ref & 0xFFFFFFFF
        full = ROW_FORMAT.unpack_from(view.blobs[slot], index * ROW_SIZE)
        (ts, milli, kid, _slot, _index, tid, pid, seq, poff, plen, goff, cpu, number, flags, _kind,
         _present, _filetime) = full
        source = view.sources[slot]
        if kid == LOGFILE_HEADER:
            return self.header_line(header_record(full), source.clock)
        entry = self._row_entry(kid, goff, number, view.datas[slot])
        entry.count += 1
        self._counted += 1
        counters = self.counters
        formatter = entry.formatter
        if formatter is None and entry.unknown is not None:
            counters.unknown += 1
            return entry.unknown
        text, error = _text_or_format_error(entry, view.datas[slot][poff:poff + plen],
                                            message_pointer_size(flags, source.pointer_size))
        if error:
            counters.format_errors += 1
            program = self._printer.key_program
            if formatter is not None and formatter.error is not None and kid < len(program):
                program[kid] = RowPrinter.HOLE  # its failure is remembered: Python's from now on
        if self.noprefix or not entry.has_prefix:
            return text
        tt = ""
        if milli != _NO_TIME:
            tt = self.time_text(source.clock.to_filetime(ts)) if milli == TIME_OUT_OF_RANGE else \
                self.time_text.from_milli(milli)
        return self._bound_prefix(entry).render((tid, tt, 0, 0, seq, pid, cpu)) + text

    def _row_printer(self, mode: tuple | None = None) -> RowPrinter:
        """The C renderer's printer for this run in ``mode`` (``printer_mode``; None: text
        lines). A run asking for another mode gets a new one."""
        if mode is None:
            mode = self.printer_mode()
        noprefix, form, quote_all = mode
        if self._printer is None or self._printer_mode != mode:
            from wpptrace.tmf.native import NativeRenderer

            self._make_installed()       # their programs are the old renderer's
            self._sync_native_counts()   # the rows the old renderer printed, before it goes
            self._sync_unknown()
            self._unknown_programs, self._unknown_seen = {}, 0
            self._printer = RowPrinter(NativeRenderer(utc=self.utc, noprefix=noprefix,
                                                      output=form, quote_all=quote_all))
            self._printer_mode = mode
            self._prefix_program = None
            # the shared prefix before any message's program, whichever message comes first:
            # records (fmt -j's processes', the program cache's) call it by its id, so it
            # must be the same in every process and run
            self._prefix_id()
            self._decorations = None
            for entry in self._key_entries + list(self._raw_entries.values()):
                entry.program, entry.native_rows = None, 0
            self._counted += 1
        return self._printer

    def _program(self, entry: _Entry) -> int:
        """The C renderer's program of a message (compiled the first time a row needs it), or
        WPPR_HOLE when Python prints its lines."""
        if entry.program is None:
            noprefix, form, _quote_all = self._printer_mode
            if form == "text" and entry.unknown is None:   # ``_program_code``'s, inline
                try:
                    blob = self._message_blob(entry, noprefix)
                except UnicodeEncodeError:  # text only Python can write
                    blob = None
                entry.program = RowPrinter.HOLE if blob is None else self._printer.renderer.add(blob)
            else:
                entry.program = self._install(*self._program_code(entry))
            self._counted += 1
        return entry.program

    def _program_code(self, entry: _Entry) -> tuple[bytes | None, bytes | None]:
        """(program blob, decoration) of a message for this printer: blob None when Python
        prints its lines; decoration None in the text form, or when Python prints its rows
        in the printer's other form."""
        noprefix, form, _quote_all = self._printer_mode
        try:
            if entry.unknown is not None:
                blob = _native_encoder()[1]([], [("lit", entry.unknown)], None, prefix=False)
            else:
                blob = self._message_blob(entry, noprefix)
                if blob is None:
                    return None, None
            if form == "text":
                return blob, None
            if form == "columns":
                decoration = self.column_decoration(entry)
            else:
                if self._decorations is None:
                    self._decorations = _StructuredRows(self, form, self._printer_mode[2])
                decoration = self._decorations.decoration(entry)
            return (None, None) if decoration is None else (blob, decoration)
        except UnicodeEncodeError:  # text only Python can write: its lines stay with Python
            return None, None

    def _message_blob(self, entry: _Entry, noprefix: bool) -> bytes | None:
        """The program blob of a message with a format; None when Python prints its lines.
        Made from the plan its format string and argument list share with other messages
        (``wpptrace.tmf.render.native_plan``) and its own marker texts, without its
        formatter; from the formatter's ``native_ops`` when the plan says so."""
        render = self._render or self._renderer_module()
        message = entry.message
        blob = self._compiled_blob(entry, noprefix)
        if blob is not None:
            return blob
        try:
            plan = render.native_plan(message, self.tmfset, self.utc)
        except Exception:  # a message the plans do not cover: compiled as it is
            plan = render.PER_MESSAGE
        if plan is None:
            return None
        if plan is render.PER_MESSAGE:
            return self._ops_blob(entry, noprefix)
        markers = MessageMarkers(message)
        if not entry.has_prefix or noprefix:
            return plan.encode(markers, -1, (), entry.has_prefix)
        shared = self._prefix_program
        if shared is None:
            self._shared_prefix()
            shared = self._prefix_program
        if shared < 0:
            return None
        return plan.encode(markers, shared, self.prefix.native_encoded_strings(
            entry.component, entry.name, markers), True)

    def _compiled_blob(self, entry: _Entry, noprefix: bool) -> bytes | None:
        """``_message_blob`` made by the C compiler (the same bytes); None when it declines
        the message (or the shared prefix is not made yet): compiled in Python then."""
        compiler = _COMPILER if _COMPILER is not None else _message_compiler()
        if compiler is False:
            return None
        if not entry.has_prefix or noprefix:
            return compiler.blob(entry.message, -1, (), entry.has_prefix)
        shared = self._prefix_program
        if shared is None or shared < 0:
            return None
        try:
            strings = self.prefix.native_encoded_strings(entry.component, entry.name,
                                                         MessageMarkers(entry.message))
        except Exception:   # the Python compile meets it again and says what it makes of it
            return None
        return compiler.blob(entry.message, shared, strings, True)

    def _ops_blob(self, entry: _Entry, noprefix: bool) -> bytes | None:
        """``_message_blob`` from the message's formatter (its ``native_ops``)."""
        SharedPrefix, encode = _native_encoder()
        formatter = entry.formatter
        if formatter is None:
            return None
        compiled = formatter.native_ops(entry.markers)
        if compiled is None:
            return None
        prefix = None
        if entry.has_prefix and not noprefix:
            shared = self._shared_prefix()
            if shared is None:
                return None
            prefix = SharedPrefix(shared, self.prefix.native_strings(entry.component, entry.name,
                                                                     entry.markers))
        return encode(*compiled, prefix, prefix=entry.has_prefix)

    def _renderer_module(self):
        self._render = _import_render()
        return self._render

    def _install(self, blob: bytes | None, decoration: bytes | None) -> int:
        """Register a program (and its decoration) with the renderer: its id, or WPPR_HOLE
        for no blob."""
        if blob is None:
            return RowPrinter.HOLE
        renderer = self._printer.renderer
        program = renderer.add(blob)
        if decoration is not None:
            renderer.decorate(program, decoration)
        return program

    def note_tmf_issues(self, fields, counts: dict[str, dict[int, int]] | None = None) -> None:
        """The problems another process of the run met in TMF files (``TmfError.fields``
        tuples of those it kept, and its ``TmfSet.issue_counts``), reported with this
        decoder's by ``tmf_issues`` and ``tmf_issues_dropped``: a TMF file or entry is read by
        the process that first needs it, and the others install what it made."""
        self._other_tmf_issues.append([tuple(f) for f in fields])
        _most_per_unit(self._other_tmf_counts, counts or {})

    def tmf_issues_dropped(self, kept: list | None = None) -> int:
        """The TMF problems counted but not kept: per file, those of each parse unit
        (``TmfSet.issue_counts``) as often as a process that parsed it met them, less the
        ones ``tmf_issues`` keeps (``kept``: what it returned, if the caller has it); as one
        process reading every part the run read counts."""
        counts = {path: dict(units) for path, units in getattr(self.tmfset, "issue_counts", {}).items()}
        _most_per_unit(counts, self._other_tmf_counts)
        from collections import Counter

        kept = Counter(issue.path for issue in (self.tmf_issues() if kept is None else kept))
        return sum(max(0, sum(units.values()) - kept[path]) for path, units in counts.items())

    def tmf_issues(self) -> list:
        """The problems met in TMF files (``TmfError``): this decoder's set's and those of
        other processes (``note_tmf_issues``) each as often as the process that met it most
        often met it (a process reads a file, and parses an entry, once, as one process does),
        per file the first MAX_ISSUES_PER_FILE by line and column, as ``TmfSet`` keeps them."""
        from collections import Counter

        from wpptrace.tmf import model

        issues = list(getattr(self.tmfset, "issues", ()))
        if not self._other_tmf_issues:
            return issues
        from wpptrace.tmf.errors import TmfError

        have = Counter(issue.fields() for issue in issues)
        for fields in self._other_tmf_issues:
            for place, n in Counter(fields).items():
                if n > have[place]:
                    issues.extend(TmfError.from_fields(place) for _ in range(n - have[place]))
                    have[place] = n
        issues.sort(key=lambda issue: (issue.path, issue.line or 0, issue.column or 0))
        per_file = Counter()
        kept = []
        for issue in issues:
            per_file[issue.path] += 1
            if per_file[issue.path] <= model.MAX_ISSUES_PER_FILE:
                kept.append(issue)
        return kept

    def share_programs(self, share) -> None:
        """Take messages' programs from ``share`` (a ``program_share.ProgramShare`` made before
        this process was forked) when another process of the run compiled them, and publish
        the ones this process compiles; None: compile every message here."""
        self._share = share

    @property
    def shared_programs(self):
        """The ``ProgramShare`` given to ``share_programs``, or None."""
        return self._share

    def use_cache(self, cache) -> None:
        """Take messages' programs from ``cache`` (a ``program_cache.ProgramCache``) where it
        has them, and add the ones compiled here to it; None: no cache."""
        self._cache = cache

    @property
    def program_cache(self):
        """The ``ProgramCache`` given to ``use_cache``, or None."""
        return self._cache

    def _cached_entries(self, keys: list[tuple[bytes, int]]) -> list:
        """The entries of new row keys (GUID bytes_le, number), their programs set: installed
        from the cache's records (as ints: ``_from_records``), or compiled here and added to
        it."""
        from .program_share import ProgramShare

        mode = ProgramShare.mode(self._printer_mode)
        if mode is None:
            return [self._raw_entry(*key) for key in keys]
        cache = self._cache
        known = self._known(keys)
        installed = self._from_records(keys, self._records_of(keys, cache.records, known), mode)
        if installed.count(None) == 0:
            return installed
        entries = []
        for key, entry, old in zip(keys, installed, known):
            if entry is None:
                entry = old
                if entry is None:
                    entry, packed = self._compiled_entry(key, mode)
                    if packed is not None:
                        cache.add(*key, packed)
            entries.append(entry)
        return entries

    def _known(self, keys: list[tuple[bytes, int]]) -> list:
        """What this decoder has of each row key already: its entry, an installed message's
        int, or None."""
        known = list(map(self._raw_entries.get, keys)) if self._raw_entries else [None] * len(keys)
        if self._installed_keys:     # (the ones not made yet are kept only in ``_entries``)
            known = list(map(self._entries.get, keys, known))
        return known

    @staticmethod
    def _records_of(keys: list[tuple[bytes, int]], records: dict, known: list) -> list[bytes]:
        """The cache's record of each key (``NO_RECORD``: none, or an entry of it is ``known``)."""
        found = list(map(records.get, keys, repeat(NO_RECORD)))
        if known.count(None) != len(known):
            found = [NO_RECORD if old is not None else record for record, old in zip(found, known)]
        return found

    def _from_records(self, keys: list[tuple[bytes, int]], records, mode: bytes) -> list:
        """The messages of records (the cache's, as a list of bytes; or another process's, as
        a list of ``ProgramShare`` slots), their programs installed in one C call, as ints:
        their places in the installed columns (their entries are made when something reads
        one: ``_installed_entry``); None where a record cannot serve (none, made with another
        prefix program than this process's, a program the renderer refuses): that message
        is then compiled here."""
        slots = bool(records) and type(records[0]) is int
        if records.count(-1 if slots else NO_RECORD) == len(records):
            return [None] * len(keys)
        renderer, prefix = self._printer.renderer, self._prefix_id()
        try:
            if slots:
                programs, flags, texts = self._share.table.install(renderer, records, mode, prefix)
            else:
                programs, flags, texts = install_records(renderer, records, mode, prefix)
        except UnicodeDecodeError:   # a text that is not UTF-8 (a damaged record): compiled
            return [None] * len(keys)
        if min(programs) >= 0:
            taken, programs_taken, flags_taken = keys, programs, flags
        else:
            served = [program >= 0 for program in programs]
            taken, programs_taken = list(compress(keys, served)), list(compress(programs, served))
            flags_taken = bytes(compress(flags, served))
        first = len(self._installed_keys)
        places = list(range(first, first + len(taken)))
        self._installed_keys += taken
        self._installed_programs.extend(programs_taken)
        self._installed_flags += flags_taken
        self._installed_joined.append(texts)
        self._installed_counts.frombytes(bytes(8 * len(taken)))
        self._entries.update(zip(taken, places))
        if taken:
            self._counted += 1
        if taken is keys:
            return places
        ahead = iter(places).__next__
        return [ahead() if ok else None for ok in served]

    def _installed_entry(self, place: int) -> _Entry:
        """The entry of the installed message at ``place`` (made the first time it is asked
        for, in that message's place in ``_entries``)."""
        key = self._installed_keys[place]
        entry = self._entries.get(key)
        if type(entry) is not int:   # made already
            return entry if entry is not None else self._raw_entries[key]
        guid_le, number = key
        bits = self._installed_flags[place]
        component, name, unknown = self._installed_strings()[3 * place:3 * place + 3]
        # _SharedEntry's fields set here: its __init__ called would cost more than them
        made = object.__new__(_SharedEntry)
        made.guid_le, made.number = guid_le, number
        made.component, made.name = component, name
        made.program = self._installed_programs[place]
        made.has_prefix = bits & _RECORD_HAS_PREFIX != 0
        made.unknown = unknown if bits & _RECORD_UNKNOWN else None
        made.count, made.native_rows = self._installed_counts[place], 0
        made.prefix = None
        made._resolver = self._resolve
        self._entries[key] = self._raw_entries[key] = made
        at = self._places.get(place)
        if at is not None:           # (its place in the messages' order, by its entry now too)
            self._places[made] = at
        self._counted += 1
        return made

    def _installed_strings(self) -> list[str]:
        """Component, name and Unknown line of every installed message, in order (each batch's
        NUL-ended texts split the first time one is read)."""
        if self._installed_joined:
            for joined in self._installed_joined:
                self._installed_texts += joined.split("\0")[:-1]
            self._installed_joined.clear()
        return self._installed_texts

    def _make_installed(self) -> None:
        """Every installed message's entry made (and put in the key ids' list)."""
        for place in range(len(self._installed_keys)):
            self._installed_entry(place)
        self._key_entries       # (the key ids' list)

    @property
    def _key_entries(self) -> list[_Entry]:
        """Row key id -> entry (mirrors the C key table; installed messages' entries made).
        Asked once per chunk or record batch: only the ids added since the last time are
        looked at (the list only grows, or is replaced when a new key table starts)."""
        items = self._key_items
        for key in range(self._key_entries_made, len(items)):
            item = items[key]
            if type(item) is int:
                items[key] = self._installed_entry(item)
        self._key_entries_made = len(items)
        return items

    def _compiled_entry(self, key: tuple[bytes, int], mode: bytes) -> tuple[_Entry, bytes | None]:
        """(entry, its record for ``mode`` as ``program_share.pack`` makes it, None when it
        has no program) of a message compiled here, its program installed."""
        entry = self._raw_entry(*key)
        blob, decoration = self._program_code(entry)
        entry.program = self._install(blob, decoration)
        self._counted += 1
        if blob is None:
            return entry, None
        prefix_program = self._prefix_program if entry.has_prefix and not self._printer_mode[0] else -1
        return entry, _pack_parts()(mode, entry.component, entry.name, entry.has_prefix,
                                    entry.unknown, prefix_program, blob, decoration)

    def _prefix_id(self) -> int:
        """The shared prefix program's id (registered first, as the printer is made, in every
        process and run: one id in all), -1 for none."""
        if self._printer_mode[0]:
            return -1
        prefix = self._shared_prefix()
        return -1 if prefix is None else prefix

    def cache_shared(self, keys: list[tuple[bytes, int]]) -> None:
        """Add to the cache the records the run's other processes published for ``keys`` (the
        messages they compiled: this process added its own)."""
        from .program_share import ProgramShare

        cache, share = self._cache, self._share
        if cache is None or share is None or ProgramShare.mode(self._printer_mode) is None:
            return
        table = share.table
        for key in keys:
            if key in cache:
                continue
            slot, state = table.claim(*key)
            if state == table.READY:
                record = table.record(slot)
                if record is not None:
                    cache.add(*key, record)

    def _shared_entries(self, keys: list[tuple[bytes, int]]) -> list:
        """The entries of new row keys (GUID bytes_le, number), their programs set: each
        message compiled here is published as soon as it is made; the ones another process
        claimed are installed from its records (as ints: ``_from_records``) once this
        process's own are published (so no process waits for one that waits for it)."""
        share, table, cache = self._share, self._share.table, self._cache
        mode = share.mode(self._printer_mode)
        if mode is None:
            return [self._raw_entry(*key) for key in keys]
        known = self._known(keys)
        if cache is not None:
            entries = self._from_records(keys, self._records_of(keys, cache.records, known), mode)
            if entries.count(None) == 0 and share.met:   # all from the cache: most often
                return entries
        else:
            entries = [None] * len(keys)
        left = [k for k, entry, old in zip(range(len(keys)), entries, known)
                if entry is None and old is None]
        if not share.met:
            self._meet(left, keys, entries, mode)
            left = [k for k in left if entries[k] is None]
        # the records other processes published already: installed in one call
        if left:
            left_keys = keys if len(left) == len(keys) else [keys[k] for k in left]
            ready = table.ready(left_keys)
            if ready.count(-1) != len(ready):
                installed = self._from_records(left_keys, ready, mode)
                if left_keys is keys and installed.count(None) == 0:   # all of them: most often
                    share.installed += len(keys)
                    return installed
                for k, slot, entry in zip(left, ready, installed):
                    if entry is not None:
                        share.installed += 1
                    elif slot >= 0:           # its record cannot serve: compiled here
                        entry = self._raw_entry(*keys[k])
                    entries[k] = entry
        later, slots = [], []
        todo = []
        for k, entry in enumerate(entries):
            if entry is None:
                if known[k] is None:
                    todo.append(k)
                else:
                    entries[k] = known[k]
        if todo:
            mine, others = self._publish_claimed([keys[k] for k in todo], mode, stop=False)
            for k, entry in zip(todo, mine):
                if entry is not None:
                    entries[k] = entry
            for at, slot, state in others:
                k = todo[at]
                if state == table.CLAIMED or state == table.READY:
                    later.append(k)
                    slots.append(slot)
                else:
                    entries[k] = self._raw_entry(*keys[k])
        if later:
            slots = [slot if share.settle(slot) == table.READY else -1 for slot in slots]
            installed = self._from_records([keys[k] for k in later], slots, mode)
            for k, entry in zip(later, installed):
                if entry is None:            # the record cannot serve: compiled here
                    entry = self._raw_entry(*keys[k])
                else:
                    share.installed += 1
                entries[k] = entry
        return entries

    def _meet(self, left: list[int], keys: list[tuple[bytes, int]], entries: list,
              mode: bytes) -> None:
        """This process's part of the run's meeting over its first messages
        (``ProgramShare.share_out``): ``keys[k]`` for k in ``left`` are the ones to compile.
        The messages of this process's share (its first window's or another's) are compiled
        and published, the entries of its own set in ``entries``; then what the others have
        not begun of theirs, from the end back (they go on from the start); then the others'
        records are waited for (the caller installs them)."""
        share = self._share
        needed = [keys[k] for k in left]
        shares = share.share_out(needed, lambda: self._warm_up(needed[0][0]))
        if shares is None:
            return
        place = dict(zip(needed, left))
        self._compile_shared(shares[share.process], place, entries, mode, stop=False)
        for k, other in enumerate(shares):
            if k != share.process and share.steal:
                self._compile_shared(other[::-1], place, entries, mode, stop=True)
        share.await_ready([key for key in needed if entries[place[key]] is None])

    def _warm_up(self, guid_le: bytes) -> None:
        """What the first message compiled in a process pays once, done ahead (while the
        run's other processes come to the meeting): the renderer's modules (item types, printf,
        status tables), the program encoder and the C compiler of programs, the TMF grammar,
        about 10 M instructions. No TMF file is read: which process reads which is the meeting's."""
        if self._render is None:
            self._renderer_module()
        _native_encoder()
        _message_compiler()
        from wpptrace.tmf import grammar  # noqa: F401

    def _compile_shared(self, keys: list[tuple[bytes, int]], place: dict, entries: list,
                        mode: bytes, stop: bool) -> None:
        """Claim, compile and publish ``keys`` (``place``: the index in ``entries`` of the
        ones this process needs): one claimed already is skipped, or with ``stop`` ends it."""
        mine, _others = self._publish_claimed(keys, mode, stop)
        for key, entry in zip(keys, mine):
            if entry is not None:
                k = place.get(key)
                if k is not None:
                    entries[k] = entry

    def _publish_claimed(self, keys: list[tuple[bytes, int]], mode: bytes, stop: bool
                         ) -> tuple[list, list[tuple[int, int, int]]]:
        """Claim ``keys`` one after another; compile each this process gets and publish its
        record for the run's other processes (refused when it has no program; added to the
        program cache too), the next key claimed in the call that publishes one. (entries:
        per key, its entry when compiled here, else None; the others: (index, slot, state)
        of each key claimed already (CLAIMED, READY, REFUSED) or with no slot (FULL)); with
        ``stop``, the first of those ends it."""
        share, table, cache = self._share, self._share.table, self._cache
        mine_state = table.MINE
        noprefix, form, _quote_all = self._printer_mode
        text = form == "text"
        renderer = self._printer.renderer
        prefix_of = self._prefix_id()
        mode_le = int.from_bytes(mode, "little")
        publish_claim, add_publish_claim = table.publish_claim, table.add_publish_claim
        raw_entry = self._raw_entry
        n = len(keys)
        entries: list = [None] * n
        others: list[tuple[int, int, int]] = []
        if not n:
            return entries, others
        slot, state = table.claim(*keys[0])
        done = -1
        try:
            for at, key in enumerate(keys):
                if state != mine_state:
                    others.append((at, slot, state))
                    if stop:
                        break
                    if at + 1 < n:
                        slot, state = table.claim(*keys[at + 1])
                    continue
                entry = entries[at] = raw_entry(*key)
                next_guid, next_number = keys[at + 1] if at + 1 < n else (None, 0)
                done = slot
                if text and entry.unknown is None:   # ``_program_code`` and ``_install``, inline
                    try:
                        blob = self._message_blob(entry, noprefix)
                    except UnicodeEncodeError:  # text only Python can write
                        blob = None
                    decoration = None
                    if blob is not None:
                        # the program registered, its record laid out in the table (pack_parts's
                        # bytes, none made here) and the next key claimed, in one C call
                        prefix_program = prefix_of if entry.has_prefix else -1
                        entry.program, slot, state = add_publish_claim(
                            renderer, done, mode_le, entry.component, entry.name, entry.has_prefix,
                            prefix_program, blob, next_guid, next_number)
                        if entry.program < 0:
                            entry.program = None
                            raise ValueError("malformed renderer program")
                    else:
                        entry.program = RowPrinter.HOLE
                else:
                    blob, decoration = self._program_code(entry)
                    entry.program = self._install(blob, decoration)
                    if blob is not None:   # (the same, the program registered apart)
                        prefix_program = prefix_of if entry.has_prefix else -1
                        slot, state = publish_claim(done, mode_le, entry.component, entry.name,
                                                    entry.has_prefix, entry.unknown, prefix_program,
                                                    blob, decoration, next_guid, next_number)
                self._counted += 1
                share.compiled += 1
                if blob is None:
                    table.refuse(done)
                    if next_guid is not None:
                        slot, state = table.claim(next_guid, next_number)
                    continue
                if cache is not None:
                    record = table.record(done)
                    cache.add(*key, record if record is not None else
                              _pack_parts()(mode, entry.component, entry.name, entry.has_prefix,
                                            entry.unknown, prefix_program, blob, decoration))
        except BaseException:
            # nothing this process claimed is left CLAIMED: another process would wait for it
            if state == mine_state:             # the key at hand, or the one claimed ahead
                table.refuse(slot)
            if done >= 0 and done != slot and table.state(done) == table.CLAIMED:
                table.refuse(done)              # the key whose record was not published
            raise
        return entries, others

    def _shared_prefix(self) -> int | None:
        """The program of the prefix all messages share (registered once), or None when
        only Python prints this prefix."""
        if self._prefix_program is None:
            ops = self.prefix.native_shared_ops()
            self._prefix_program = -1 if ops is None else self._printer.renderer.add_prefix(ops)
        return None if self._prefix_program < 0 else self._prefix_program

    def _sync_native_counts(self) -> None:
        """Add the rows the C renderer printed to the messages' counts: a look at every
        message, so only where the counts are read (the summary, going back to a mark) or
        the renderer goes; what a run's counters need is kept up to date by
        ``_sync_unknown``, and a mark takes the renderer's rows as they are
        (``count_marks``). The counts other processes added go into them too."""
        self._fold_added()
        if self._printer is None:
            return
        rows = memoryview(self._printer.renderer.rows_rendered()).cast("Q")
        n = len(rows)
        for entry in self._entries.values():
            if type(entry) is int:    # installed, no entry yet: its count is the renderer's
                continue
            program = entry.program
            if program is None or not 0 <= program < n:
                continue
            new = rows[program] - entry.native_rows
            if new:
                entry.count += new
                entry.native_rows += new

    def _sync_unknown(self) -> None:
        """Add the Unknown lines the C renderer printed since the last look to the counters
        (one C call, however many messages)."""
        if self._unknown_programs and self._printer is not None:
            rows = self._printer.renderer.rows_of(list(self._unknown_programs))
            self.counters.unknown += rows - self._unknown_seen
            self._unknown_seen = rows

    def _bound_prefix(self, entry: _Entry):
        if entry.prefix is None:
            entry.prefix = self.prefix.bind(entry.component, entry.name, entry.markers)
        return entry.prefix

    def _raw_entry(self, guid_le: bytes, number: int) -> "_Entry":
        """The entry of a (GUID bytes_le, number) key as the rows path sees it."""
        key = (guid_le, number)
        entry = self._raw_entries.get(key)
        if entry is None and self._installed_keys:
            installed = self._entries.get(key)
            if installed is not None:   # installed from a record: its entry made now
                return self._installed_entry(installed)
        if entry is None:
            entry = _Entry(guid_le, number)
            self._entries[(self._guid_int(guid_le), number)] = entry
            self._resolve(entry)
            self._raw_entries[key] = entry
        return entry

    def _guid_int(self, guid_le: bytes) -> int:
        """The int of GUID bytes_le (made once: a GUID has many messages)."""
        guid = self._guid_ints.get(guid_le)
        if guid is None:
            guid = self._guid_ints[guid_le] = int_of_le(guid_le)
        return guid

    def _row_entry(self, kid: int, goff: int, number: int, data: bytes) -> "_Entry":
        """A message row's entry: by its key id, or by the GUID in the record when the C key
        table was full (KEY_OVERFLOW: more distinct messages than it holds)."""
        if kid == _KEY_OVERFLOW:
            return self._raw_entry(data[goff:goff + _GUID_SIZE] if goff else bytes(_GUID_SIZE), number)
        entry = self._key_items[kid]
        if type(entry) is int:       # installed from a record: its entry made now
            entry = self._key_items[kid] = self._installed_entry(entry)
        return entry

    # -- one record, structured ---------------------------------------------------------
    def decode_record(self, rec, ctx: FileContext) -> WppMessage:
        """Decode one TraceMessage record (counts it as unknown / format error when it is one)."""
        # a message with no GUID (TRACE_MESSAGE_COMPONENTID) is kept under the zero GUID
        entry = self._entry(rec.message_guid, rec.event_id)
        entry.count += 1
        self._counted += 1
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
        self._decode_into(msg, entry, rec.user_data, psize)
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

    def header_line(self, rec, ctx: FileContext) -> str:
        """tracefmt's line for the log-file header record, which ProcessTrace delivers as the
        first event: an "EventTrace" line (docs/tmf-format.md §6.2) with %1 = "Header"."""
        self.counters.headers += 1
        entry = self._header_entry()
        entry.count += 1
        self._counted += 1
        if self.noprefix:
            return "EventTrace"
        _filetime, tt = self._header_values(rec, ctx)
        return entry.prefix.render((rec.thread_id or 0, tt, 0, 0, rec.sequence or 0,
                                    rec.process_id or 0, rec.processor or 0)) + "EventTrace"

    def _header_entry(self) -> _Entry:
        entry = self._entries.get(("header", 0))
        if entry is None:
            # its GUID as text: only ever printed (the summary, JSON Lines), and a run whose
            # messages all come from the program cache makes no UUID (wpptrace._lazyuuid)
            entry = _Entry(_EVENT_TRACE_GUID_LE, 0, _EVENT_TRACE_GUID)
            entry.message, entry.formatter, entry.markers = None, None, {}
            entry.format, entry.compile_error = "", None
            entry.component = entry.name = "Header"
            entry.has_prefix = True
            entry.prefix = self.prefix.bind("Header", "Header", {})
            self._entries[("header", 0)] = entry
        return entry

    def _header_message(self, rec, clock) -> WppMessage:
        line = self.header_line(rec, clock)
        filetime, tt = self._header_values(rec, clock)
        return _with_guid_le(WppMessage(
            status=HEADER, guid=None, number=0, filetime=filetime, time_text=tt,
            cpu=rec.processor or 0, thread_id=rec.thread_id or 0, process_id=rec.process_id or 0,
            sequence=rec.sequence or 0, kernel_time=0, user_time=0, component="Header",
            name="Header", source_file="", source_line="", function="", level="", flags="",
            text="EventTrace", line=line), _EVENT_TRACE_GUID_LE)

    def count_marks(self) -> tuple:
        """Rows seen so far per message, in the order of ``message_keys``, as a mark to go
        back to (``restore_counts``) or to hand to another decoder (``mark_counts`` makes
        it one int per message). Cheap, for one after every window of a ``fmt -j`` run: the
        counts Python keeps and each message's program (made again only when one of them
        changed: ``_counted``) and the renderer's rows per program, as bytes of native int64
        / uint64 values, which marshal carries."""
        self._fold_added()
        made, kept, programs = self._mark_parts
        if made != (self._counted, len(self._entries)):
            entries = self._entries.values()
            if self._installed_keys:      # installed messages (ints): their columns' values
                counts, installed = self._installed_counts, self._installed_programs
                kept = array("q", [counts[e] if type(e) is int else e.count - e.native_rows
                                   for e in entries]).tobytes()
                programs = array("q", [installed[e] if type(e) is int else
                                       -1 if e.program is None else e.program
                                       for e in entries]).tobytes()
            else:
                kept = array("q", map(_sub, map(_COUNT, entries), map(_NATIVE_ROWS, entries))).tobytes()
                programs = array("q", [-1 if p is None else p for p in map(_PROGRAM, entries)]).tobytes()
            self._mark_parts = ((self._counted, len(self._entries)), kept, programs)
        rows = self._printer.renderer.rows_rendered() if self._printer is not None else b""
        return kept, programs, rows

    def message_keys(self) -> list[tuple]:
        """The messages of ``count_marks``, in its order (a message first seen later comes
        after the others), as (GUID, number): the GUID a UUID, or its bytes_le for a message
        installed from a record."""
        return [(uuid_of_int(guid), number) if type(guid) is int else (guid, number)
                for guid, number in self._entries]

    def plain_message_keys(self, start: int = 0) -> list[tuple]:
        """``message_keys`` from the ``start``-th on (the list only grows: a ``fmt -j`` worker
        sends the new ones after each window) with each GUID as its 16 bytes (bytes_le), a
        form marshal carries: a message with an entry has the key the rows path knows it by
        (no UUID made)."""
        raw = self._raw_entries
        keys = []
        for key, entry in islice(self._entries.items(), start, None):
            if type(entry) is not int and type(key[0]) is not bytes:   # (its row key, if any)
                made = getattr(entry, "guid_le", None), entry.number
                if raw.get(made) is entry:
                    key = made
            # the others keep their own key: an installed message's is its GUID bytes
            # already (the log header's is not a GUID)
            keys.append(key)
        return keys

    def restore_counts(self, marks: tuple) -> None:
        """Go back to the per-message counts of ``marks`` (``count_marks``; messages first
        seen since: 0)."""
        marks = mark_counts(marks)
        self._make_installed()
        self._sync_native_counts()
        for i, entry in enumerate(self._entries.values()):
            entry.count = marks[i] if i < len(marks) else 0
        self._counted += 1

    def add_message_counts(self, counts: dict[tuple, int]) -> None:
        """Add rows seen per message by another decoder of the same TMFs (keyed as its
        ``message_keys`` or ``plain_message_keys``, counted as its ``count_marks``) to this
        one's."""
        for key, count in counts.items():
            entry = self._entries.get(key)
            if entry is None:
                if key == ("header", 0):
                    entry = self._header_entry()
                elif type(key[0]) is bytes:   # (bytes_le, number), as ``plain_message_keys``
                    entry = self._raw_entry(*key)
                else:
                    entry = self._entry(*key)
            if type(entry) is int:        # installed, no entry yet
                self._installed_counts[entry] += count
            else:
                entry.count += count
            self._counted += 1

    def find_plain_messages(self, keys: list[tuple], ahead: _FoundMessages | None = None,
                            again: bool = True) -> _FoundMessages:
        """The messages of ``keys`` (``plain_message_keys``' form) as
        ``add_plain_message_counts`` finds them, to hand it later (fmt -j's parent finds a
        worker's as they come: each is two dict lookups by a tuple, whose hash is not kept):
        each one's place in the messages' order. ``ahead``: found before for the first keys (a
        list that only grows), added to; its keys of no message are looked up again if
        messages were met since (unless not ``again``: left for a later call)."""
        met = len(self._entries)
        if ahead is None:
            ahead = _FoundMessages(met, array("q"))
        at = ahead.at
        if again and ahead.met != met:
            if at.count(-1):              # (most often none: every key's message met here)
                missing = list(compress(range(len(at)), map((-1).__eq__, at)))
                for i, place in zip(missing, self._key_places([keys[i] for i in missing])):
                    at[i] = place
            ahead.met = met
        if len(at) < len(keys):
            at.extend(self._key_places(keys[len(at):]))
        return ahead

    def _key_places(self, keys: list[tuple]) -> Iterator[int]:
        """The places of the messages of ``keys`` (``find_plain_messages``), -1 for none."""
        found = map(self._raw_entries.get, keys)
        if self._installed_keys:          # installed messages without an entry: by their bytes too
            found = map(self._entries.get, keys, found)
        return map(self._message_places().get, found, repeat(-1))

    def _message_places(self) -> dict:
        """``_places``, with the messages met since the last call."""
        places, made = self._places, self._places_made
        if made < len(self._entries):
            places.update(zip(islice(self._entries.values(), made, None), range(made, len(self._entries))))
            self._places_made = len(self._entries)
        return places

    def add_plain_message_counts(self, keys: list[tuple], counts: list[int],
                                 ahead: _FoundMessages | None = None) -> list[tuple]:
        """Add ``counts`` (one per key, in order) to the messages of ``keys`` given with their
        GUID as its bytes_le that this process has a row entry of: found by those bytes, so
        no UUID is made or hashed (Python code); and to the messages this process never met
        that the program cache has a record of (``_install_counted``). ``ahead``: the keys'
        messages as ``find_plain_messages`` found them before. The (key, count) pairs left,
        counts not 0, for ``add_message_counts`` once their keys are made.

        The counts go apart from this process's own (``_added``, by each message's place: one
        C call), into them when something reads the entries' counts (``_fold_added``)."""
        at = self.find_plain_messages(keys, ahead).at
        added, n = self._added, len(self._entries)
        if added is None:
            added = self._added = array("q")
        if len(added) < n:
            added.frombytes(bytes(8 * (n - len(added))))
        left = []
        if add_at(added, at, array("q", counts)):     # (counts of keys this process has no message of)
            left = [(key, count) for key, place, count in zip(keys, at, counts) if place < 0 and count]
        return self._install_counted(left) if left and self._cache is not None else left

    def _fold_added(self) -> None:
        """The counts other processes added (``_added``) into the messages' own, where those
        are read or set one by one."""
        added, self._added = self._added, None
        if added is None:
            return
        installed = self._installed_counts
        for entry, more in zip(self._entries.values(), added):
            if more:
                if type(entry) is int:    # installed, no entry yet
                    installed[entry] += more
                else:
                    entry.count += more
        self._counted += 1

    def _install_counted(self, left: list[tuple]) -> list[tuple]:
        """Of (key, count) pairs of messages this process never met, the ones the program
        cache has a record of installed from it, their counts in its columns: no entry made,
        so no TMF file read (``fmt -j``'s merge: the messages only a worker met, tens of
        M instructions); an entry is made when something reads one, as for the messages
        installed for their rows. The pairs left."""
        from .program_share import ProgramShare

        mode = ProgramShare.mode(self._printer_mode)
        if mode is None or self._printer is None:
            return left
        keys = [key for key, _count in left]
        places = self._from_records(keys, self._records_of(keys, self._cache.records, [None] * len(keys)),
                                    mode)
        counts = self._installed_counts
        rest = []
        for pair, place in zip(left, places):
            if place is None:
                rest.append(pair)
            elif type(place) is int:
                counts[place] += pair[1]
            else:                         # its entry, made by its UUID before (adopted)
                place.count += pair[1]
        return rest

    def _row_message(self, ref: int, view) -> WppMessage | None:
        """One row decoded by Python as ``decode_record`` decodes a record (the rows of the
        structured and "messages" outputs that the C renderer leaves)."""
        from .wpp_rows import LOGFILE_HEADER, NOT_MESSAGE, ROW_FORMAT, ROW_SIZE, header_record

        slot, index = ref >> 32, ref & 0xFFFFFFFF
        full = ROW_FORMAT.unpack_from(view.blobs[slot], index * ROW_SIZE)
        (ts, milli, kid, _slot, _index, tid, pid, seq, poff, plen, goff, cpu, number, flags,
         _kind, present, _filetime) = full
        source = view.sources[slot]
        if kid == NOT_MESSAGE:
            return None               # not a TraceMessage record (counted by the loop)
        if kid == LOGFILE_HEADER:
            return self._header_message(header_record(full), source.clock)
        entry = self._row_entry(kid, goff, number, view.datas[slot])
        entry.count += 1
        self._counted += 1
        filetime = None if milli == _NO_TIME else source.clock.to_filetime(ts)
        time_text = self.time_text(filetime) if filetime is not None else ""
        markers = entry.markers
        msg = WppMessage(
            status=OK, guid=None, number=number,
            filetime=filetime, time_text=time_text, cpu=cpu, thread_id=tid, process_id=pid,
            sequence=seq, kernel_time=0, user_time=0, component=entry.component, name=entry.name,
            source_file=markers.get("FILE", ""), source_line=markers.get("LINE", ""),
            function=markers.get("FUNC", ""), level=markers.get("LEVEL", ""),
            flags=markers.get("FLAGS", ""), subcomponent=markers.get("SUBCOMP", ""),
            text="", line="")
        if present & _HAS_GUID:
            _with_guid_le(msg, entry.guid_le)
        if entry.message is None:
            self.counters.unknown += 1
            msg.status = UNKNOWN
            msg.text = msg.line = entry.unknown
            return msg
        data = view.datas[slot][poff:poff + plen]
        psize = message_pointer_size(flags, source.pointer_size)
        self._decode_into(msg, entry, data, psize)
        if entry.has_prefix and not self.noprefix:
            msg.line = self._bound_prefix(entry).render((tid, time_text, 0, 0, seq, pid, cpu)) + msg.text
        return msg

    def _decode_into(self, msg: WppMessage, entry: _Entry, data, psize: int) -> None:
        """A known message's typed arguments and text (or its format error) into ``msg``."""
        formatter = entry.formatter
        failed = ""
        if formatter is not None:
            try:
                msg.args = formatter.decode_args(data, psize)
            except Exception as exc:  # noqa: BLE001  (said below: the text's reason first)
                failed = str(exc) or type(exc).__name__
        msg.text, msg.error = _text_or_format_error(entry, data, psize)
        if failed and not msg.error:   # the text prints, but its typed values do not decode
            msg.error, msg.text = failed, _format_error_line(entry, failed)
        if msg.error:
            self.counters.format_errors += 1
            msg.status = FORMAT_ERROR
        msg.line = msg.text

    def summary_rows(self):
        """(count, event name, event type, guid text) per message seen, for the FmtSum table."""
        from .output import SummaryRow

        return [SummaryRow(count, component, name, guid)
                for guid, component, name, count in self.summary_table()]

    def summary_table(self) -> list[tuple[str, str, str, int]]:
        """(GUID text, event name, event type, count) per message seen, in the messages'
        order: the FmtSum table's rows as ``output.summary_text`` sorts and prints them."""
        counts = self._summary_counts()
        texts, components, names = self._summary_parts()
        return list(zip(compress(texts, counts), compress(components, counts),
                        compress(names, counts), filter(None, counts)))

    def prepared_summary(self) -> str | None:
        """The FmtSum table's rows, sorted and printed (``output.summary_text``'s ``body``),
        from the rows ``prepare_summary`` made; None where it made none, or messages were met
        since (then ``summary_table``)."""
        rows, self._summary_rows = self._summary_rows, None
        if rows is None or rows.size != len(self._entries):
            return None
        return rows.body(self._summary_counts())

    def prepare_summary(self) -> None:
        """Make now what ``summary_table`` needs of the messages met so far but their counts,
        and their rows of the table sorted and printed but for their counts
        (``output.SummaryRows``): for a process that waits for others before its summary
        (fmt -j's, for its workers), so that less is left for after them."""
        self.prepare_summary_rows()
        # its own counts too (a fmt -j parent's are all in by then): at the end only what the
        # other processes counted is added to them (``_added``), no message looked at again
        self._summary_kept = None
        self._summary_kept = _SummaryCounts(self._summary_state(), array("q", self._own_counts()))

    def prepare_summary_rows(self) -> None:
        """``prepare_summary``'s rows alone (no counts), of the messages met so far: made ahead
        by a process that decodes more rows before it waits (fmt -j's, before its last
        windows); ``prepare_summary`` makes them again only if messages were met since."""
        from .output import SummaryRows

        rows = self._summary_rows
        if rows is None or rows.size != len(self._entries):
            self._summary_rows = SummaryRows(*self._summary_parts())

    def _summary_state(self) -> tuple:
        """What the messages' counts depend on: changes to the counts Python keeps (and
        messages added), the renderer's rows."""
        return ((self._counted, len(self._entries)),
                self._printer.renderer.rows_rendered() if self._printer is not None else b"")

    def _kept_summary_counts(self) -> _SummaryCounts | None:
        """``_summary_kept`` while the counts have changed only as it was told, else None
        (and it is dropped)."""
        kept = self._summary_kept
        if kept is not None and kept.state != self._summary_state():
            kept = self._summary_kept = None
        return kept

    def _summary_counts(self) -> list[int]:
        """Each message's count, in ``_entries`` order: this process's own (``_own_counts``)
        and what other processes added (``_added``)."""
        counts = self._own_counts()
        added = self._added
        if added is None:
            return counts if type(counts) is list else counts.tolist()
        total = counts if type(counts) is array else array("q", counts)   # (by C loops: fmt -j's end)
        add_into(total, added)
        return total.tolist()

    def _own_counts(self) -> list[int] | array:
        """Each message's count with the rows the C renderer printed, in ``_entries`` order,
        but the counts other processes added (``_added``): ``mark_counts`` of a
        ``count_marks`` (from its parts when no count changed since the last one, else
        without its arrays): an entry's from its
        attributes (read by C loops: an entry reads each through its ``__getattr__`` hook,
        slow in a Python loop), an installed message's without an entry from its columns."""
        kept = self._kept_summary_counts()
        if kept is not None:              # (fmt -j's parent: made while it waited)
            return kept.counts[:]         # (an array: ``_summary_counts`` adds to it in C)
        made, kept_part, programs = self._mark_parts
        rendered = self._printer.renderer.rows_rendered() if self._printer is not None else b""
        if made == (self._counted, len(self._entries)):   # (fmt -j: a mark made since they changed)
            return mark_counts((kept_part, programs, rendered))
        rows = memoryview(rendered).cast("Q").tolist()    # (a list item is read faster)
        n = len(rows)
        entries = list(self._entries.values())
        made = entries
        if self._installed_keys:          # installed messages without an entry (ints) apart
            ints = list(map(isinstance, entries, repeat(int)))
            made = list(compress(entries, map(not_, ints)))
        counts = [count - kept + rows[program] if program is not None and 0 <= program < n
                  else count - kept for count, kept, program in map(_COUNT_PARTS, made)]
        if len(made) == len(entries):
            return counts
        kept, programs = self._installed_counts, self._installed_programs
        try:
            column = list(map(rows.__getitem__, programs))
        except IndexError:                # a message installed for an older renderer (it has an entry)
            column = [rows[program] if program < n else 0 for program in programs]
        if kept.count(0) != len(kept):    # (most often none: every row the renderer's)
            column = list(map(add, kept, column))
        # back in the messages' order: each message's count from its part
        parts = [iter(counts), map(column.__getitem__, compress(entries, ints))]
        return list(map(next, map(parts.__getitem__, ints)))

    def _summary_parts(self) -> tuple[list[str], list[str], list[str]]:
        """(GUID texts, event names, event types) of the messages, in ``_entries`` order, each
        message's made once: messages are only added, and an installed message's entry, when
        made in its place, holds its columns' texts."""
        parts = self._summary_made
        if len(parts[0]) == len(self._entries):
            return parts
        new = list(islice(self._entries.values(), len(parts[0]), None))
        known = self._guid_texts          # a GUID's text made once: a TMF file holds dozens of messages
        made = new
        if self._installed_keys:          # installed messages without an entry (ints) apart
            ints = list(map(isinstance, new, repeat(int)))
            made = list(compress(new, map(not_, ints)))
        guids = list(map(_GUID_LE, made))
        for guid_le in set(guids).difference(known):
            known[guid_le] = _guid_text(guid_le)
        texts = list(map(known.__getitem__, guids))
        components, names = list(map(_COMPONENT, made)), list(map(_NAME, made))
        if len(made) == len(new):
            for part, more in zip(parts, (texts, components, names)):
                part += more
            return parts
        places = list(compress(new, ints))
        strings = self._installed_strings()   # component, name, Unknown line of each
        first, end = places[0], places[0] + len(places)
        if places == list(range(first, end)):   # most often: slices of the columns
            guids_le = list(map(_FIRST, self._installed_keys[first:end]))
            installed_components = strings[3 * first:3 * end:3]
            installed_names = strings[3 * first + 1:3 * end:3]
        else:
            guids_le = list(map(_FIRST, map(self._installed_keys.__getitem__, places)))
            installed_components = list(map(strings[0::3].__getitem__, places))
            installed_names = list(map(strings[1::3].__getitem__, places))
        for guid_le in set(guids_le).difference(known):
            known[guid_le] = _guid_text(guid_le)
        _in_order(ints, (texts, components, names),
                  (list(map(known.__getitem__, guids_le)), installed_components, installed_names),
                  parts)
        return parts


def _in_order(ints: list[bool], made: tuple[list, ...], installed: tuple[list, ...],
              into: tuple[list, ...]) -> None:
    """Extend each list of ``into`` with its values of messages that have an entry (``made``)
    and of installed ones without (``installed``) back in the messages' order (``ints``: which
    messages are installed ones): a slice a run where they come in few runs, else one by one."""
    n = len(ints)
    cuts = list(compress(range(1, n), map(ne, islice(ints, 1, None), ints)))
    if len(cuts) > n // 16:               # interleaved: each value from its part
        for out, values, installed_values in zip(into, made, installed):
            ahead = [iter(values), iter(installed_values)]
            out += map(next, map(ahead.__getitem__, ints))
        return
    taken, start = [0, 0], 0
    for end in (*cuts, n):
        side = ints[start]
        first = taken[side]
        last = taken[side] = first + end - start
        for out, values in zip(into, installed if side else made):
            out += values[first:last]
        start = end


def _guid_text(guid_le: bytes) -> str:
    """``str(UUID)`` of GUID bytes_le, no UUID made (its __init__ and __str__ are Python code)."""
    text = (guid_le[3::-1] + guid_le[5:3:-1] + guid_le[7:5:-1] + guid_le[8:]).hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


class _StructuredRows:
    """CSV rows and JSON objects: the decorations the C renderer's programs print them with
    (``decoration``) and the rows Python prints (``hole_line``: the log-file header, rows the
    renderer leaves)."""

    def __init__(self, decoder: WppDecoder, output: str, quote_all: bool) -> None:
        from .output import CsvRows, JsonRows

        self.decoder = decoder
        self.output = output
        self.csv = CsvRows(quote_all) if output == "csv" else None
        self.json = JsonRows() if output == "jsonl" else None

    def decoration(self, entry: _Entry) -> bytes | None:
        """What the C renderer prints around a message's lines in this form (CSV: GuidName
        and MessageName; JSON: ``wpptrace.tmf.native.json_decoration``); None when only Python
        writes its rows (JSON values of item types the renderer does not type)."""
        from wpptrace.tmf.native import json_decoration

        if self.csv is not None:
            return self.csv.piece(entry.component, entry.name if entry.unknown is None
                                  else unknown_type(entry.number))
        if entry.unknown is not None:
            return json_decoration(self.json.head(text_of_le(entry.guid_le), entry.number, UNKNOWN,
                                                  entry.component, entry.name, entry.markers), [])
        kinds = entry.formatter.json_kinds()
        if kinds is None:
            return None
        head = self.json.head(text_of_le(entry.guid_le), entry.number, OK, entry.component, entry.name,
                              entry.markers)
        return json_decoration(head, [(self.json.arg_name(name, item), kind, bits4, bits8)
                                      for name, item, kind, bits4, bits8 in kinds])

    def hole_line(self, ref: int, view) -> bytes:
        """The CSV row or JSON object of a row Python decodes."""
        m = self.decoder._row_message(ref, view)
        if self.csv is not None:
            csv = self.csv
            name = unknown_type(m.number) if m.status == UNKNOWN else m.name
            return csv.line(csv.piece(m.component, name), m.thread_id,
                            m.time_text.encode(), m.sequence, m.process_id, m.cpu,
                            m.line.encode("utf-8", "surrogatepass"))
        json = self.json
        return json.line(json.head(guid_text(m), m.number, m.status, m.component, m.name,
                                   _markers_of(m)),
                         json.tail(m.text, m.args, m.error), m.filetime, m.cpu, m.thread_id,
                         m.process_id, m.sequence)


def _markers_of(m: WppMessage) -> dict:
    return {"FILE": m.source_file, "LINE": m.source_line, "FUNC": m.function,
            "LEVEL": m.level, "FLAGS": m.flags}
