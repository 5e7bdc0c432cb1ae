"""The Win32 consumer types (EVENT_TRACE_LOGFILE, EVENT_RECORD, ...) as Python classes.

Field names are the Win32 names (evntrace.h / evntcons.h), so code written against the consumer
API reads the same in Python. These are the in-memory API structures of docs/etl-format.md §2.8,
not on-disk layouts: the on-disk layouts live once in ``etl_layout.h`` and are read here
(decoder._hazmat) only where a structure is built from raw bytes (TRACE_LOGFILE_HEADER,
ETW_BUFFER_HEADER).
Classes use ``__slots__`` because one EVENT_RECORD is built per delivered event.
"""
from __future__ import annotations

import uuid
from typing import Any, Callable, Optional

from ._hazmat import ETL, read, sizeof

__all__ = [
    "EventTraceGuid", "GUID_NULL", "INVALID_PROCESSTRACE_HANDLE", "MAXIMUM_LOGGERS",
    "PROCESS_TRACE_MODE_REAL_TIME", "PROCESS_TRACE_MODE_RAW_TIMESTAMP",
    "PROCESS_TRACE_MODE_EVENT_RECORD", "ETW_PROCESS_TRACE_MODE_NONE",
    "ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP",
    "EVENT_DESCRIPTOR", "EVENT_HEADER", "ETW_BUFFER_CONTEXT", "EVENT_HEADER_EXTENDED_DATA_ITEM",
    "EVENT_RECORD", "EVENT_TRACE_HEADER", "EVENT_TRACE", "TIME_ZONE_INFORMATION",
    "TRACE_LOGFILE_HEADER", "EVENT_TRACE_LOGFILE", "ETW_BUFFER_HEADER",
    "ETW_OPEN_TRACE_OPTIONS", "ETW_BUFFER_CALLBACK_INFORMATION",
]

#: Provider of the synthetic log-file header event ({68fdd900-4a3e-11d1-84f4-0000f80464e3}).
EventTraceGuid = uuid.UUID("68fdd900-4a3e-11d1-84f4-0000f80464e3")
GUID_NULL = uuid.UUID(int=0)
#: (TRACEHANDLE)INVALID_HANDLE_VALUE for a 64-bit process.
INVALID_PROCESSTRACE_HANDLE = 0xFFFFFFFFFFFFFFFF
#: ProcessTrace accepts at most this many handles (ERROR_BAD_LENGTH beyond).
MAXIMUM_LOGGERS = 64

PROCESS_TRACE_MODE_REAL_TIME = ETL.PROCESS_TRACE_MODE_REAL_TIME
PROCESS_TRACE_MODE_RAW_TIMESTAMP = ETL.PROCESS_TRACE_MODE_RAW_TIMESTAMP
PROCESS_TRACE_MODE_EVENT_RECORD = ETL.PROCESS_TRACE_MODE_EVENT_RECORD
#: ETW_PROCESS_TRACE_MODES for ETW_OPEN_TRACE_OPTIONS (Windows 11 SDK).
ETW_PROCESS_TRACE_MODE_NONE = 0
ETW_PROCESS_TRACE_MODE_RAW_TIMESTAMP = 1


class _Struct:
    """Keyword constructor and a readable repr for the slot classes below."""

    __slots__ = ()

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, fields.pop(name, self._default(name)))
        if fields:
            raise TypeError(f"{type(self).__name__} has no field(s) {', '.join(fields)}")

    def _default(self, name: str) -> Any:
        return 0

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n, None)!r}" for n in self.__slots__
                          if not n.startswith("_"))
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    __hash__ = None  # mutable, like the C structures


class EVENT_DESCRIPTOR(_Struct):
    """evntprov.h EVENT_DESCRIPTOR. For a WPP message, Id is the MessageNumber."""

    __slots__ = ("Id", "Version", "Channel", "Level", "Opcode", "Task", "Keyword")


class ETW_BUFFER_CONTEXT(_Struct):
    """Where the event was buffered: processor and logger id (from the buffer header).

    ``ProcessorIndex`` is the 16-bit field; ``ProcessorNumber``/``Alignment`` are its two
    bytes as older headers name them.
    """

    __slots__ = ("ProcessorIndex", "LoggerId")

    @property
    def ProcessorNumber(self) -> int:
        return self.ProcessorIndex & 0xFF

    @property
    def Alignment(self) -> int:
        return self.ProcessorIndex >> 8


class EVENT_HEADER(_Struct):
    """evntcons.h EVENT_HEADER as delivered to a consumer (HeaderType is always 0).

    ``KernelTime``/``UserTime`` and ``ProcessorTime`` share storage as in the C union:
    ProcessorTime = KernelTime | UserTime << 32.
    """

    __slots__ = ("Size", "HeaderType", "Flags", "EventProperty", "ThreadId", "ProcessId",
                 "TimeStamp", "ProviderId", "EventDescriptor", "ProcessorTime", "ActivityId")

    def _default(self, name: str) -> Any:
        if name in ("ProviderId", "ActivityId"):
            return GUID_NULL
        if name == "EventDescriptor":
            return EVENT_DESCRIPTOR()
        return 0

    @property
    def KernelTime(self) -> int:
        return self.ProcessorTime & 0xFFFFFFFF

    @property
    def UserTime(self) -> int:
        return self.ProcessorTime >> 32


class EVENT_HEADER_EXTENDED_DATA_ITEM(_Struct):
    """One extended data item of an EVENT_HEADER record; ``DataPtr`` holds the item's bytes."""

    __slots__ = ("Reserved1", "ExtType", "Linkage", "Reserved2", "DataSize", "DataPtr")


class EVENT_RECORD(_Struct):
    """evntcons.h EVENT_RECORD: what an EventRecordCallback receives.

    ``UserData`` is the payload as ``bytes`` (for a WPP message: the argument bytes only,
    message items stripped); ``ExtendedData`` is a list of EVENT_HEADER_EXTENDED_DATA_ITEM;
    ``UserContext`` is EVENT_TRACE_LOGFILE.Context (or ETW_OPEN_TRACE_OPTIONS.EventCallbackContext).
    ``MessageSequence`` is not a Win32 member: the sequence number a WPP message carried
    (TRACE_MESSAGE_SEQUENCE), else None (Windows exposes it only through TDH).
    """

    __slots__ = ("EventHeader", "BufferContext", "ExtendedDataCount", "UserDataLength",
                 "ExtendedData", "UserData", "UserContext", "MessageSequence")

    def _default(self, name: str) -> Any:
        if name == "EventHeader":
            return EVENT_HEADER()
        if name == "BufferContext":
            return ETW_BUFFER_CONTEXT()
        if name == "ExtendedData":
            return []
        if name == "UserData":
            return b""
        if name in ("UserContext", "MessageSequence"):
            return None
        return 0


class EVENT_TRACE_HEADER(_Struct):
    """evntrace.h EVENT_TRACE_HEADER (classic), as an EventCallback sees it.

    ``Class`` members are flattened as in the C union: ``Type`` (opcode), ``Level``,
    ``Version``; ``Guid`` is a uuid.UUID. ``Flags`` shares storage with ``ClientContext`` /
    ``ProcessorTime`` in C; they are separate attributes here. For a WPP message only the
    members its MessageFlags carried are set (decoder.api_convert has the full mapping).
    """

    __slots__ = ("Size", "HeaderType", "MarkerFlags", "Type", "Level", "Version", "ThreadId",
                 "ProcessId", "TimeStamp", "Guid", "KernelTime", "UserTime", "ClientContext",
                 "Flags")

    def _default(self, name: str) -> Any:
        return GUID_NULL if name == "Guid" else 0

    @property
    def ProcessorTime(self) -> int:
        return self.KernelTime | self.UserTime << 32


class EVENT_TRACE(_Struct):
    """evntrace.h EVENT_TRACE: what an EventCallback (no PROCESS_TRACE_MODE_EVENT_RECORD) receives.

    ``MofData`` is the payload as ``bytes`` and ``MofLength`` its length.
    """

    __slots__ = ("Header", "InstanceId", "ParentInstanceId", "ParentGuid", "MofData",
                 "MofLength", "BufferContext")

    def _default(self, name: str) -> Any:
        if name == "Header":
            return EVENT_TRACE_HEADER()
        if name == "ParentGuid":
            return GUID_NULL
        if name == "MofData":
            return b""
        if name == "BufferContext":
            return ETW_BUFFER_CONTEXT()
        return 0

    @property
    def ClientContext(self) -> int:
        """The union view of BufferContext as one ULONG."""
        return self.BufferContext.ProcessorIndex | self.BufferContext.LoggerId << 16


def _wstr(units) -> str:
    """A WCHAR[] array up to its first NUL."""
    chars = []
    for unit in units:
        if unit == 0:
            break
        chars.append(unit.to_bytes(2, "little"))
    return b"".join(chars).decode("utf-16-le", "replace")


class TIME_ZONE_INFORMATION(_Struct):
    """winbase.h TIME_ZONE_INFORMATION; the SYSTEMTIME members are 8-tuples."""

    __slots__ = ("Bias", "StandardName", "StandardDate", "StandardBias", "DaylightName",
                 "DaylightDate", "DaylightBias")

    def _default(self, name: str) -> Any:
        if name in ("StandardName", "DaylightName"):
            return ""
        if name in ("StandardDate", "DaylightDate"):
            return (0,) * 8
        return 0

    @classmethod
    def _from_layout(cls, tz) -> "TIME_ZONE_INFORMATION":
        def systemtime(st):
            return (st.wYear, st.wMonth, st.wDayOfWeek, st.wDay, st.wHour, st.wMinute,
                    st.wSecond, st.wMilliseconds)
        return cls(Bias=tz.Bias, StandardName=_wstr(tz.StandardName),
                   StandardDate=systemtime(tz.StandardDate), StandardBias=tz.StandardBias,
                   DaylightName=_wstr(tz.DaylightName), DaylightDate=systemtime(tz.DaylightDate),
                   DaylightBias=tz.DaylightBias)


_LOGFILE_HEADER_INTS = (
    "BufferSize", "MajorVersion", "MinorVersion", "SubVersion", "SubMinorVersion",
    "ProviderVersion", "NumberOfProcessors", "EndTime", "TimerResolution", "MaximumFileSize",
    "LogFileMode", "BuffersWritten", "StartBuffers", "PointerSize", "EventsLost",
    "CpuSpeedInMHz", "BootTime", "PerfFreq", "StartTime", "ReservedFlags", "BuffersLost")


class TRACE_LOGFILE_HEADER(_Struct):
    """evntrace.h TRACE_LOGFILE_HEADER with the two names that follow it in the file.

    Built from the payload of the log-file header record (the file's layout:
    TRACE_LOGFILE_HEADER64 for 8-byte pointers, TRACE_LOGFILE_HEADER32 for 4-byte pointers). ``LoggerName``/``LogFileName`` are the
    strings that follow the structure (the in-struct "pointer" fields carry no meaning).
    ``Version`` is the packed ULONG of the four version bytes.
    """

    __slots__ = _LOGFILE_HEADER_INTS + ("LoggerName", "LogFileName", "TimeZone")

    def _default(self, name: str) -> Any:
        if name in ("LoggerName", "LogFileName"):
            return ""
        if name == "TimeZone":
            return TIME_ZONE_INFORMATION()
        return 0

    @property
    def Version(self) -> int:
        return (self.MajorVersion | self.MinorVersion << 8 | self.SubVersion << 16
                | self.SubMinorVersion << 24)

    @property
    def LogInstanceGuid(self) -> uuid.UUID:
        """The union view of StartBuffers/PointerSize/EventsLost/CpuSpeedInMHz."""
        raw = b"".join(v.to_bytes(4, "little") for v in
                       (self.StartBuffers, self.PointerSize, self.EventsLost, self.CpuSpeedInMHz))
        return uuid.UUID(bytes_le=raw)

    @classmethod
    def from_payload(cls, payload: bytes, pointer_size: int = 8) -> "TRACE_LOGFILE_HEADER":
        """Parse the header record payload; raises ValueError if it is too short."""
        ctype = "TRACE_LOGFILE_HEADER64" if pointer_size == 8 else "TRACE_LOGFILE_HEADER32"
        size = sizeof(ctype)
        payload = bytes(payload)
        if len(payload) < size:
            raise ValueError(f"TRACE_LOGFILE_HEADER needs {size} bytes, the record has "
                             f"{len(payload)}")
        raw = read(ctype, payload)
        fields = {name: getattr(raw, name) for name in _LOGFILE_HEADER_INTS}
        names = payload[size:]
        logger_name, log_file_name = _two_wide_strings(names)
        return cls(LoggerName=logger_name, LogFileName=log_file_name,
                   TimeZone=TIME_ZONE_INFORMATION._from_layout(raw.TimeZone), **fields)


def _two_wide_strings(data: bytes) -> tuple[str, str]:
    """The two NUL-terminated UTF-16LE strings after the header (missing ones are '')."""
    out = []
    pos = 0
    for _ in range(2):
        end = pos
        while end + 1 < len(data) and (data[end] or data[end + 1]):
            end += 2
        out.append(data[pos:end].decode("utf-16-le", "replace"))
        pos = end + 2
    return out[0], out[1]


EventCallbackType = Callable[[Any], Any]


class EVENT_TRACE_LOGFILE(_Struct):
    """evntrace.h EVENT_TRACE_LOGFILEW: the argument of OpenTrace.

    Inputs: ``LogFileName`` or ``LoggerName``, ``ProcessTraceMode`` (alias ``LogFileMode``,
    the C union), ``BufferCallback``, ``EventRecordCallback`` / ``EventCallback``, ``Context``.
    ``EventCallback`` and ``EventRecordCallback`` are ONE member, as in the C union: setting
    either sets both. ProcessTrace calls it with an EVENT_RECORD when ProcessTraceMode has
    PROCESS_TRACE_MODE_EVENT_RECORD and with an EVENT_TRACE otherwise.
    Outputs (filled by OpenTrace/ProcessTrace): ``LogfileHeader``, ``CurrentTime``,
    ``BuffersRead``, ``BufferSize``, ``Filled``, ``IsKernelTrace``, ``CurrentEvent``.
    """

    __slots__ = ("LogFileName", "LoggerName", "CurrentTime", "BuffersRead", "ProcessTraceMode",
                 "CurrentEvent", "LogfileHeader", "BufferCallback", "BufferSize", "Filled",
                 "EventsLost", "_callback", "IsKernelTrace", "Context")

    def __init__(self, **fields: Any) -> None:
        if "LogFileMode" in fields:
            fields.setdefault("ProcessTraceMode", fields.pop("LogFileMode"))
        callbacks = [fields.pop(n) for n in ("EventCallback", "EventRecordCallback")
                     if n in fields]
        if len(callbacks) == 2 and callbacks[0] is not callbacks[1]:
            raise TypeError("EventCallback and EventRecordCallback are one union member: "
                            "give one of them")
        super().__init__(**fields)
        self._callback = callbacks[0] if callbacks else None

    def _default(self, name: str) -> Any:
        if name in ("LogFileName", "LoggerName", "BufferCallback", "_callback", "Context",
                    "CurrentEvent"):
            return None
        if name == "LogfileHeader":
            return TRACE_LOGFILE_HEADER()
        return 0

    @property
    def EventCallback(self) -> Optional[EventCallbackType]:
        return self._callback

    @EventCallback.setter
    def EventCallback(self, value: Optional[EventCallbackType]) -> None:
        self._callback = value

    EventRecordCallback = EventCallback

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", EventCallback={self._callback!r})"

    @property
    def LogFileMode(self) -> int:
        return self.ProcessTraceMode

    @LogFileMode.setter
    def LogFileMode(self, value: int) -> None:
        self.ProcessTraceMode = value


_BUFFER_HEADER_INTS = ("BufferSize", "SavedOffset", "CurrentOffset", "ReferenceCount",
                       "TimeStamp", "SequenceNumber", "ClockTypeFrequency", "State",
                       "FilledBytes", "BufferFlag", "BufferType")


class ETW_BUFFER_HEADER(_Struct):
    """The header at the start of every ETW buffer (WMI_BUFFER_HEADER; Windows 11 SDK name).

    ``Offset`` is an alias of FilledBytes (the SDK's name for that field). Build one from raw
    buffer bytes with :meth:`from_buffer`.
    """

    __slots__ = _BUFFER_HEADER_INTS + ("ClientContext",)

    def _default(self, name: str) -> Any:
        return ETW_BUFFER_CONTEXT() if name == "ClientContext" else 0

    @property
    def Offset(self) -> int:
        return self.FilledBytes

    SIZE = sizeof("WMI_BUFFER_HEADER")

    @classmethod
    def from_buffer(cls, buffer) -> "ETW_BUFFER_HEADER":
        """Read the header of raw buffer bytes; ValueError if shorter than the header."""
        view = memoryview(buffer).cast("B")
        if len(view) < cls.SIZE:
            raise ValueError(f"an ETW buffer starts with a {cls.SIZE:#x}-byte header; got "
                             f"{len(view)} bytes")
        raw = read("WMI_BUFFER_HEADER", view)
        fields = {name: getattr(raw, name) for name in _BUFFER_HEADER_INTS}
        return cls(ClientContext=ETW_BUFFER_CONTEXT(ProcessorIndex=raw.ClientContext.ProcessorIndex,
                                                    LoggerId=raw.ClientContext.LoggerId),
                   **fields)


class ETW_OPEN_TRACE_OPTIONS(_Struct):
    """evntrace.h (Windows 11) ETW_OPEN_TRACE_OPTIONS for OpenTraceFrom*.

    ``EventCallback(EVENT_RECORD)`` always receives EVENT_RECORDs (its UserContext is
    ``EventCallbackContext``); ``BufferCallback(Buffer, BufferSize, ConsumerInfo,
    BufferCallbackContext) -> bool`` receives each raw buffer (bytes, header first) after its
    events were delivered; returning False stops ProcessTrace with ERROR_CANCELLED.
    """

    __slots__ = ("ProcessTraceModes", "EventCallback", "EventCallbackContext",
                 "BufferCallback", "BufferCallbackContext")

    def _default(self, name: str) -> Any:
        return 0 if name == "ProcessTraceModes" else None


class ETW_BUFFER_CALLBACK_INFORMATION(_Struct):
    """evntrace.h (Windows 11): the ConsumerInfo argument of a PETW_BUFFER_CALLBACK."""

    __slots__ = ("TraceHandle", "LogfileHeader", "BuffersRead")

    def _default(self, name: str) -> Any:
        return None if name == "LogfileHeader" else 0
