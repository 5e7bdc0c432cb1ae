"""Trace records of one ETL buffer: the C walker's output wrapped as lazy Python objects.

``walk`` runs the C hot path (``etlrd_walk`` in decoder/csrc/etlread.c) over a range of one
decompressed buffer; each record comes back as a flat tuple and becomes a ``Record`` whose
fields are computed only when read. Every record kind of docs/etl-format.md §2.2 is covered;
unknown kinds are returned as kind "unknown" and counted, damage is reported as a
``DecodeIssue`` and the walk goes on.
"""
from __future__ import annotations

from collections import namedtuple

from wpptrace._fieldclass import fieldclass

from ._hazmat import ETL, RECORD, walk_records

#: record kinds, indexed by ETLRD_KIND_*
KINDS: tuple[str, ...] = ("system", "compact", "perfinfo", "full", "instance", "event",
                          "message", "unknown")
KIND_INDEX = {name: i for i, name in enumerate(KINDS)}

TYPE_CHECKING = False   # annotations are strings
if TYPE_CHECKING:
    import uuid

# The GUID constants below are made when first used (``__getattr__``): ``uuid`` is not imported
# by a fmt run that makes no UUID (``wpptrace._lazyuuid``).

#: EVENT_TRACE_GUID: provider of the log-file header and other header-group (group 0) system
#: records
_EVENT_TRACE_GUID = "68fdd900-4a3e-11d1-84f4-0000f80464e3"

#: KERNEL_GROUP_GUIDS: kernel event groups (HookId >> 8) -> the MOF event class GUID consumers
#: see as the provider of system/compact/perfinfo records (NT Kernel Logger classes); groups
#: not listed have no provider GUID here. Checked against dissect.etl in the corpus tests.
_KERNEL_GROUP_GUIDS = {
    0x00: "68fdd900-4a3e-11d1-84f4-0000f80464e3",   # header (EventTraceGuid)
    0x01: "3d6fa8d4-fe05-11d0-9dda-00c04fd7ba7c",   # DiskIo
    0x02: "3d6fa8d3-fe05-11d0-9dda-00c04fd7ba7c",   # PageFault
    0x03: "3d6fa8d0-fe05-11d0-9dda-00c04fd7ba7c",   # Process
    0x04: "90cbdc39-4a3e-11d1-84f4-0000f80464e3",   # FileIo
    0x05: "3d6fa8d1-fe05-11d0-9dda-00c04fd7ba7c",   # Thread
    0x06: "9a280ac0-c8e0-11d1-84e2-00c04fb998a2",   # TcpIp
    0x08: "bf3a50c5-a9c9-4988-a005-2df0b7c80f80",   # UdpIp
    0x09: "ae53722e-c863-11d2-8659-00c04fa321a1",   # Registry
    0x0A: "13976d09-a327-438c-950b-7f03192815c7",   # DbgPrint
    0x0B: "01853a65-418f-4f36-aefc-dc0f1d2fd235",   # EventTraceConfig
    0x0F: "ce1dbfb4-137e-4da6-87b0-3f59aa102cbc",   # PerfInfo
    0x10: "222962ab-6180-4b88-a825-346b75f2a24a",   # Heap
    0x11: "89497f50-effe-4440-8cf2-ce6b1cdcaca7",   # Object
    0x12: "e43445e0-0903-48c3-b878-ff0fccebdd04",   # Power
    0x14: "2cb15d1d-5fc1-11d2-abe1-00a0c911f518",   # Image
    0x18: "def2fe46-7bd6-4b80-bd94-f57fe20d0ce3",   # StackWalk
    0x1A: "45d8cccd-539f-4b72-a8b7-5c683142609a",   # ALPC
}


def _constant(name: str):
    """``EVENT_TRACE_GUID`` or ``KERNEL_GROUP_GUIDS``, made on first use."""
    value = globals().get(name)
    if value is None:
        import uuid

        value = (uuid.UUID(_EVENT_TRACE_GUID) if name == "EVENT_TRACE_GUID" else
                 {group: uuid.UUID(text) for group, text in _KERNEL_GROUP_GUIDS.items()})
        globals()[name] = value
    return value


def __getattr__(name: str):
    if name in ("EVENT_TRACE_GUID", "KERNEL_GROUP_GUIDS"):
        return _constant(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

#: HookId 0x030A (process group, type 10) is the old image-load event: Image class
_IMAGE_LOAD_HOOK = 0x030A


# etlrd_record (decoder/csrc/etlread.h) as flat tuples; _F_* index them (the consumer API
# and the typed events read the tuples directly on their hot paths)
_RECORD_FIELDS = RECORD.fields
_F = RECORD.index
_F_OFFSET, _F_SIZE, _F_POFF, _F_PSIZE = _F["offset"], _F["size"], _F["payload_offset"], _F["payload_size"]
_F_TS, _F_TID, _F_PID, _F_SEQ = _F["timestamp"], _F["thread_id"], _F["process_id"], _F["sequence"]
_F_COMP, _F_KEYWORD, _F_GUID = _F["component_id"], _F["keyword"], _F["guid"]
_F_EXTOFF, _F_EXTSIZE, _F_ID, _F_FLAGS = _F["ext_offset"], _F["ext_size"], _F["event_id"], _F["flags"]
_F_TASK, _F_VERSION, _F_KIND, _F_HTYPE = _F["task"], _F["version"], _F["kind"], _F["header_type"]
_F_LEVEL, _F_OPCODE, _F_CHANNEL, _F_PRESENT = _F["level"], _F["opcode"], _F["channel"], _F["present"]

_HAS_TS = ETL.ETLRD_HAS_TIMESTAMP
_HAS_TID = ETL.ETLRD_HAS_THREAD
_HAS_PID = ETL.ETLRD_HAS_PROCESS
_HAS_GUID = ETL.ETLRD_HAS_GUID
_HAS_SEQ = ETL.ETLRD_HAS_SEQUENCE
_HAS_COMP = ETL.ETLRD_HAS_COMPONENT
_KIND_MESSAGE = ETL.ETLRD_KIND_MESSAGE
_KIND_SYSTEM = ETL.ETLRD_KIND_SYSTEM
_KIND_PERFINFO = ETL.ETLRD_KIND_PERFINFO


def kernel_provider(kind: int, hook_id: int) -> uuid.UUID | None:
    """The provider a record of ETLRD_KIND_* ``kind`` that carries no GUID has: for a system,
    compact or perfinfo record the kernel event class of its HookId's group
    (KERNEL_GROUP_GUIDS), else None."""
    if kind > _KIND_PERFINFO:
        return None
    group = 0x14 if hook_id == _IMAGE_LOAD_HOOK else hook_id >> 8
    return _constant("KERNEL_GROUP_GUIDS").get(group)


#: what the walker expected when it reported a problem (ETLRD_ERR_*)
WALK_ERRORS = {
    ETL.ETLRD_ERR_SHORT_HEADER: "a complete record header (buffer ends inside it)",
    ETL.ETLRD_ERR_BAD_MARKER: "a record marker (0xC0 trace header or 0x90 message)",
    ETL.ETLRD_ERR_BAD_SIZE: "a record size covering its header and inside the buffer",
    ETL.ETLRD_ERR_BAD_ITEMS: "message items / header extensions inside the record size",
}

@fieldclass(frozen=True)
class DecodeIssue:
    """One problem met while reading: where (file, byte offset) and what was expected."""

    file: str
    offset: int
    message: str

    def __str__(self) -> str:
        if self.offset is None:             # (a file that could not be opened at all)
            return f"{self.file}: {self.message}"
        return f"{self.file}: offset {self.offset:#x}: {self.message}"


class BufferContext(namedtuple("BufferContext", ("data", "index", "file_offset", "processor",
                                                  "logger_id", "pointer_size", "compressed"))):
    """What every record of one buffer shares (kept once, referenced by each record):
    ``data`` the whole decompressed buffer, header included (memoryview); ``index`` the
    buffer's index in file order (-1 if not from a file); ``file_offset`` its start in the
    file (-1 if unknown); ``processor``, ``logger_id``, ``pointer_size`` (ints);
    ``compressed`` (bool)."""

    __slots__ = ()


class Record:
    """One trace record. Fields are decoded on access from the walker's flat tuple."""

    __slots__ = ("_t", "_ctx")

    def __init__(self, raw: tuple, ctx: BufferContext):
        self._t = raw
        self._ctx = ctx

    # -- identity and placement --------------------------------------------------------
    @property
    def kind(self) -> str:
        return KINDS[self._t[_F_KIND]]

    @property
    def kind_index(self) -> int:
        return self._t[_F_KIND]

    @property
    def offset(self) -> int:
        """Record start, bytes from the start of its (decompressed) buffer."""
        return self._t[_F_OFFSET]

    @property
    def file_offset(self) -> int | None:
        """Record start in the file; None for compressed buffers (no file position)."""
        ctx = self._ctx
        if ctx.compressed or ctx.file_offset < 0:
            return None
        return ctx.file_offset + self._t[_F_OFFSET]

    @property
    def size(self) -> int:
        return self._t[_F_SIZE]

    @property
    def header_type(self) -> int:
        return self._t[_F_HTYPE]

    @property
    def buffer_index(self) -> int:
        return self._ctx.index

    @property
    def processor(self) -> int:
        return self._ctx.processor

    @property
    def logger_id(self) -> int:
        return self._ctx.logger_id

    @property
    def pointer_size(self) -> int:
        return self._ctx.pointer_size

    # -- header facts ----------------------------------------------------------------
    @property
    def timestamp(self) -> int | None:
        """Raw session clock value, None if the record carries none."""
        t = self._t
        return t[_F_TS] if t[_F_PRESENT] & _HAS_TS else None

    @property
    def sort_timestamp(self) -> int:
        """Timestamp used for ordering: the record's own, else the previous record's."""
        return self._t[_F_TS]

    @property
    def thread_id(self) -> int | None:
        t = self._t
        return t[_F_TID] if t[_F_PRESENT] & _HAS_TID else None

    @property
    def process_id(self) -> int | None:
        t = self._t
        return t[_F_PID] if t[_F_PRESENT] & _HAS_PID else None

    @property
    def provider_id(self) -> uuid.UUID | None:
        """Provider GUID: the message GUID for messages, the event's for full/instance/event
        records, the kernel event class (KERNEL_GROUP_GUIDS) for system kinds."""
        t = self._t
        if t[_F_PRESENT] & _HAS_GUID:
            import uuid

            return uuid.UUID(bytes_le=t[_F_GUID])
        return kernel_provider(t[_F_KIND], t[_F_ID])

    @property
    def message_guid(self) -> uuid.UUID | None:
        t = self._t
        if t[_F_KIND] == _KIND_MESSAGE and t[_F_PRESENT] & _HAS_GUID:
            import uuid

            return uuid.UUID(bytes_le=t[_F_GUID])
        return None

    @property
    def component_id(self) -> int | None:
        t = self._t
        return t[_F_COMP] if t[_F_PRESENT] & _HAS_COMP else None

    @property
    def instance_id(self) -> int | None:
        t = self._t
        return t[_F_COMP] if KINDS[t[_F_KIND]] == "instance" else None

    @property
    def event_id(self) -> int:
        """Message number, EVENT_DESCRIPTOR.Id, HookId (system/perfinfo) or class type."""
        return self._t[_F_ID]

    @property
    def hook_id(self) -> int | None:
        t = self._t
        return t[_F_ID] if t[_F_KIND] <= 2 else None

    @property
    def group(self) -> int | None:
        t = self._t
        return t[_F_ID] >> 8 if t[_F_KIND] <= 2 else None

    @property
    def version(self) -> int:
        return self._t[_F_VERSION]

    @property
    def level(self) -> int:
        return self._t[_F_LEVEL]

    @property
    def opcode(self) -> int:
        return self._t[_F_OPCODE]

    @property
    def channel(self) -> int:
        return self._t[_F_CHANNEL]

    @property
    def task(self) -> int:
        return self._t[_F_TASK]

    @property
    def keyword(self) -> int:
        return self._t[_F_KEYWORD]

    @property
    def flags(self) -> int:
        """Message OptionFlags, EVENT_HEADER.Flags, or the marker's low word (system kinds)."""
        return self._t[_F_FLAGS]

    @property
    def sequence(self) -> int | None:
        t = self._t
        return t[_F_SEQ] if t[_F_PRESENT] & _HAS_SEQ else None

    # -- bytes -------------------------------------------------------------------------
    @property
    def user_data(self) -> memoryview:
        """The payload only (message items and header extensions stripped)."""
        t = self._t
        return self._ctx.data[t[_F_POFF]:t[_F_POFF] + t[_F_PSIZE]]

    @property
    def payload_offset(self) -> int:
        return self._t[_F_POFF]

    @property
    def extended_data(self) -> memoryview:
        """EVENT_HEADER extended data items as stored (empty if none)."""
        t = self._t
        return self._ctx.data[t[_F_EXTOFF]:t[_F_EXTOFF] + t[_F_EXTSIZE]]

    @property
    def raw(self) -> memoryview:
        """The whole record as stored, header included (alignment pad excluded)."""
        t = self._t
        return self._ctx.data[t[_F_OFFSET]:t[_F_OFFSET] + t[_F_SIZE]]

    def __repr__(self) -> str:
        ident = self.provider_id
        return (f"<Record {self.kind} id={self.event_id} "
                f"{'guid=' + str(ident) + ' ' if ident else ''}ts={self.timestamp} "
                f"tid={self.thread_id} pid={self.process_id} size={self.size} "
                f"buffer={self.buffer_index}@{self.offset:#x}>")


class WalkStats:
    """Totals of one walk: records by kind, problems, bytes skipped, last timestamp, the
    latest timestamp of its records (None: no record), and whether it ended skipping damage
    up to its end (a record cut off there is counted so) rather than on a record boundary."""

    __slots__ = ("by_kind", "errors", "skipped_bytes", "first_error", "first_error_offset",
                 "last_timestamp", "end_offset", "max_timestamp", "ends_damaged")

    def __init__(self) -> None:
        self.by_kind = [0] * len(KINDS)
        self.errors = 0
        self.skipped_bytes = 0
        self.first_error = 0
        self.first_error_offset = 0
        self.last_timestamp = 0
        self.end_offset = 0
        self.max_timestamp = None
        self.ends_damaged = False


def walk(data, start: int, end: int, last_timestamp: int = 0,
         collect: bool = True) -> tuple[list[tuple], WalkStats]:
    """Run the C walker over data[start:end]; return flat record tuples and the totals.

    ``collect=False`` only counts (the raw-speed path: no per-record Python objects).
    """
    end = min(end, len(data))
    stats = WalkStats()
    stats.last_timestamp = last_timestamp
    if end - start < 4:
        stats.end_offset = start
        return [], stats
    tuples, res = walk_records(data, start, end, last_timestamp, collect)
    return tuples, walk_stats(res)


def walk_stats(res) -> WalkStats:
    """The totals of a walk as the C walker reports them (``_hazmat``'s result namespace)."""
    stats = WalkStats()
    stats.by_kind = res.by_kind
    stats.errors = res.errors
    stats.skipped_bytes = res.skipped_bytes
    stats.first_error = res.error
    stats.first_error_offset = res.error_offset
    stats.last_timestamp = res.last_timestamp
    stats.end_offset = res.end_offset
    stats.max_timestamp = res.max_timestamp
    stats.ends_damaged = bool(res.ends_damaged)
    return stats


def walk_issues(stats: WalkStats, source: str, base_offset: int,
                where: str = "") -> list[DecodeIssue]:
    """The walker's problems as DecodeIssues (first one precisely, the rest counted)."""
    if not stats.errors:
        return []
    msg = f"{where}expected {WALK_ERRORS.get(stats.first_error, 'a valid record')}"
    if stats.errors > 1:
        msg += f" ({stats.errors} damaged spots in this buffer"
    else:
        msg += " ("
    msg += f"{'; ' if stats.errors > 1 else ''}{stats.skipped_bytes} bytes skipped)"
    return [DecodeIssue(source, base_offset + stats.first_error_offset, msg)]
