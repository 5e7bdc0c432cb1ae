/* etl_layout.h: the on-disk ETL layouts and ETW constants, declared once.
 *
 * Shared by the C writer (provider/csrc), the C reader (decoder/csrc) and, through cffi,
 * by Python (the cdef is generated from this file: keep it in the subset of C that cffi
 * parses: fixed-width types, plain typedef structs, `#define NAME integer`). No other file
 * repeats an offset or a size of these structures: C uses offsetof/sizeof, Python
 * ffi.offsetof/ffi.sizeof through decoder/_hazmat.py. Offsets follow docs/etl-format.md
 * and are checked by the static asserts at the end.
 * All integers little-endian; GUIDs in Windows in-memory order (uuid.UUID.bytes_le).
 */
#ifndef WPPTRACE_ETL_LAYOUT_H
#define WPPTRACE_ETL_LAYOUT_H
#include <stdint.h>

typedef struct {
    uint32_t Data1;
    uint16_t Data2;
    uint16_t Data3;
    uint8_t  Data4[8];
} GUID;

/* ---- buffers ------------------------------------------------------------------------ */

typedef struct {
    uint16_t ProcessorIndex;   /* ProcessorNumber (u8) + Alignment (u8) in old layouts */
    uint16_t LoggerId;
} ETW_BUFFER_CONTEXT;

typedef struct {                    /* 0x48 bytes, same on 32 and 64 bit */
    uint32_t BufferSize;            /* 0x00 bytes of this buffer on disk */
    uint32_t SavedOffset;           /* 0x04 bytes used (uncompressed size if compressed) */
    uint32_t CurrentOffset;         /* 0x08 */
    int32_t  ReferenceCount;        /* 0x0C */
    int64_t  TimeStamp;             /* 0x10 raw session clock at flush */
    int64_t  SequenceNumber;        /* 0x18 0 = header buffer */
    uint64_t ClockTypeFrequency;    /* 0x20 readers ignore */
    ETW_BUFFER_CONTEXT ClientContext; /* 0x28 */
    uint32_t State;                 /* 0x2C 3 = flushed; buffer 0 of compressed file: format */
    uint32_t FilledBytes;           /* 0x30 "Offset" */
    uint16_t BufferFlag;            /* 0x34 ETW_BUFFER_FLAG_* */
    uint16_t BufferType;            /* 0x36 ETW_BUFFER_TYPE_* */
    uint64_t Reserved[2];           /* 0x38 readers ignore */
} WMI_BUFFER_HEADER;

/* ---- record headers ----------------------------------------------------------------- */

typedef struct {                    /* SYSTEM32/64 (0x20); COMPACT = first 0x18 bytes */
    uint16_t Version;
    uint8_t  HeaderType;
    uint8_t  Flags;                 /* 0xC0 */
    uint16_t Size;
    uint16_t HookId;                /* Type | Group << 8 */
    uint32_t ThreadId;
    uint32_t ProcessId;
    int64_t  SystemTime;
    uint32_t KernelTime;
    uint32_t UserTime;
} SYSTEM_TRACE_HEADER;

typedef struct {                    /* PERFINFO32/64 (0x10) */
    uint16_t Version;
    uint8_t  HeaderType;
    uint8_t  Flags;
    uint16_t Size;
    uint16_t HookId;
    int64_t  SystemTime;
} PERFINFO_TRACE_HEADER;

typedef struct {                    /* TraceMessage record, 8 bytes, then packed items */
    uint16_t Size;
    uint8_t  Reserved;              /* 0 */
    uint8_t  Marker;                /* 0x90 */
    uint16_t MessageNumber;
    uint16_t OptionFlags;
} MESSAGE_TRACE_HEADER;

typedef struct {                    /* FULL_HEADER32/64 file record (0x30) */
    uint16_t Size;
    uint8_t  HeaderType;
    uint8_t  MarkerFlags;
    uint8_t  Type;                  /* Class.Type (opcode) */
    uint8_t  Level;
    uint16_t Version;
    uint32_t ThreadId;
    uint32_t ProcessId;
    int64_t  TimeStamp;
    GUID     Guid;
    uint64_t ProcessorTime;         /* KernelTime u32, UserTime u32 */
} EVENT_TRACE_HEADER;

typedef struct {                    /* INSTANCE32/64 file record (0x48) */
    EVENT_TRACE_HEADER Header;
    uint32_t InstanceId;
    uint32_t ParentInstanceId;
    GUID     ParentGuid;
} EVENT_INSTANCE_GUID_HEADER;

typedef struct {
    uint16_t Id;
    uint8_t  Version;
    uint8_t  Channel;
    uint8_t  Level;
    uint8_t  Opcode;
    uint16_t Task;
    uint64_t Keyword;
} EVENT_DESCRIPTOR;

typedef struct {                    /* an extended data item of an EVENT_HEADER record (8 bytes,
                                       then the item's data) */
    uint16_t Reserved1;             /* the item's total size, 8-aligned (as the walker reads it) */
    uint16_t ExtType;
    uint16_t Linkage;               /* bit 0: another item follows; Reserved2 above it */
    uint16_t DataSize;
} EVENT_EXTENDED_ITEM_HEADER;

typedef struct {                    /* EVENT_HEADER32/64 file record (0x50) */
    uint16_t Size;
    uint16_t HeaderType;
    uint16_t Flags;
    uint16_t EventProperty;
    uint32_t ThreadId;
    uint32_t ProcessId;
    int64_t  TimeStamp;
    GUID     ProviderId;
    EVENT_DESCRIPTOR EventDescriptor;
    uint64_t ProcessorTime;
    GUID     ActivityId;
} EVENT_HEADER;

/* ---- log-file header (payload of the first record of buffer 0) ------------------------ */

typedef struct {
    uint16_t wYear, wMonth, wDayOfWeek, wDay, wHour, wMinute, wSecond, wMilliseconds;
} SYSTEMTIME;

typedef struct {                    /* 172 bytes */
    int32_t    Bias;
    uint16_t   StandardName[32];
    SYSTEMTIME StandardDate;
    int32_t    StandardBias;
    uint16_t   DaylightName[32];
    SYSTEMTIME DaylightDate;
    int32_t    DaylightBias;
} TIME_ZONE_INFORMATION;

typedef struct {                    /* writer with 8-byte pointers: 0x118 bytes */
    uint32_t BufferSize;
    uint8_t  MajorVersion, MinorVersion, SubVersion, SubMinorVersion;
    uint32_t ProviderVersion;
    uint32_t NumberOfProcessors;
    int64_t  EndTime;
    uint32_t TimerResolution;
    uint32_t MaximumFileSize;
    uint32_t LogFileMode;
    uint32_t BuffersWritten;
    uint32_t StartBuffers;
    uint32_t PointerSize;
    uint32_t EventsLost;
    uint32_t CpuSpeedInMHz;
    uint64_t LoggerName;
    uint64_t LogFileName;
    TIME_ZONE_INFORMATION TimeZone;
    uint32_t Padding;
    int64_t  BootTime;
    int64_t  PerfFreq;
    int64_t  StartTime;
    uint32_t ReservedFlags;         /* clock type */
    uint32_t BuffersLost;
} TRACE_LOGFILE_HEADER64;

typedef struct {                    /* writer with 4-byte pointers: 0x110 bytes */
    uint32_t BufferSize;
    uint8_t  MajorVersion, MinorVersion, SubVersion, SubMinorVersion;
    uint32_t ProviderVersion;
    uint32_t NumberOfProcessors;
    int64_t  EndTime;
    uint32_t TimerResolution;
    uint32_t MaximumFileSize;
    uint32_t LogFileMode;
    uint32_t BuffersWritten;
    uint32_t StartBuffers;
    uint32_t PointerSize;
    uint32_t EventsLost;
    uint32_t CpuSpeedInMHz;
    uint32_t LoggerName;
    uint32_t LogFileName;
    TIME_ZONE_INFORMATION TimeZone;
    uint32_t Padding;
    int64_t  BootTime;
    int64_t  PerfFreq;
    int64_t  StartTime;
    uint32_t ReservedFlags;
    uint32_t BuffersLost;
} TRACE_LOGFILE_HEADER32;

/* ---- record markers ------------------------------------------------------------------ */
#define TRACE_HEADER_FLAG              0x80000000
#define TRACE_HEADER_EVENT_TRACE       0x40000000
#define TRACE_HEADER_TRACE_MESSAGE     0x10000000
#define TRACE_HEADER_ENUM_MASK         0x00FF0000
#define TRACE_HEADER_TYPE_SYSTEM32      0x01
#define TRACE_HEADER_TYPE_SYSTEM64      0x02
#define TRACE_HEADER_TYPE_COMPACT32     0x03
#define TRACE_HEADER_TYPE_COMPACT64     0x04
#define TRACE_HEADER_TYPE_FULL_HEADER32 0x0A
#define TRACE_HEADER_TYPE_INSTANCE32    0x0B
#define TRACE_HEADER_TYPE_TIMED         0x0C
#define TRACE_HEADER_TYPE_ERROR         0x0D
#define TRACE_HEADER_TYPE_WNODE_HEADER  0x0E
#define TRACE_HEADER_TYPE_MESSAGE       0x0F
#define TRACE_HEADER_TYPE_PERFINFO32    0x10
#define TRACE_HEADER_TYPE_PERFINFO64    0x11
#define TRACE_HEADER_TYPE_EVENT_HEADER32 0x12
#define TRACE_HEADER_TYPE_EVENT_HEADER64 0x13
#define TRACE_HEADER_TYPE_FULL_HEADER64 0x14
#define TRACE_HEADER_TYPE_INSTANCE64    0x15
#define TRACE_RECORD_MARKER_FIXED      0xC0
#define TRACE_RECORD_MARKER_MESSAGE    0x90
#define SYSTEM_TRACE_VERSION           2
#define TRACE_HEADER_PEBS_INDEX_FLAG   0x8000
#define TRACE_HEADER_PMC_COUNTERS_MASK 0x0700
#define COMPACT_HEADER_SIZE            0x18
/* kernel-style headers may be followed by a PEBS index and up to 7 PMC counters */
#define TRACE_HEADER_PEBS_INDEX_SIZE   8
#define TRACE_HEADER_PMC_COUNTER_SIZE  8
#define DEFAULT_TRACE_ALIGNMENT        8

/* ---- TraceMessage flags -------------------------------------------------------------- */
#define TRACE_MESSAGE_SEQUENCE              0x0001
#define TRACE_MESSAGE_GUID                  0x0002
#define TRACE_MESSAGE_COMPONENTID           0x0004
#define TRACE_MESSAGE_TIMESTAMP             0x0008
#define TRACE_MESSAGE_PERFORMANCE_TIMESTAMP 0x0010
#define TRACE_MESSAGE_SYSTEMINFO            0x0020
#define TRACE_MESSAGE_POINTER32             0x0040
#define TRACE_MESSAGE_POINTER64             0x0080
#define TRACE_MESSAGE_FLAG_MASK             0xFFFF
#define TRACE_MESSAGE_MAXIMUM_SIZE          65536
/* "the sum of the sizes of the arguments + 72 must not exceed the session's buffer size" */
#define TRACE_MESSAGE_OVERHEAD              72

/* ---- log-file modes (EVENT_TRACE_PROPERTIES.LogFileMode) ----------------------------- */
#define EVENT_TRACE_FILE_MODE_NONE          0x00000000
#define EVENT_TRACE_FILE_MODE_SEQUENTIAL    0x00000001
#define EVENT_TRACE_FILE_MODE_CIRCULAR      0x00000002
#define EVENT_TRACE_FILE_MODE_APPEND        0x00000004
#define EVENT_TRACE_FILE_MODE_NEWFILE       0x00000008
#define EVENT_TRACE_FILE_MODE_PREALLOCATE   0x00000020
#define EVENT_TRACE_NONSTOPPABLE_MODE       0x00000040
#define EVENT_TRACE_SECURE_MODE             0x00000080
#define EVENT_TRACE_REAL_TIME_MODE          0x00000100
#define EVENT_TRACE_DELAY_OPEN_FILE_MODE    0x00000200
#define EVENT_TRACE_BUFFERING_MODE          0x00000400
#define EVENT_TRACE_PRIVATE_LOGGER_MODE     0x00000800
#define EVENT_TRACE_ADD_HEADER_MODE         0x00001000
#define EVENT_TRACE_USE_KBYTES_FOR_SIZE     0x00002000
#define EVENT_TRACE_USE_GLOBAL_SEQUENCE     0x00004000
#define EVENT_TRACE_USE_LOCAL_SEQUENCE      0x00008000
#define EVENT_TRACE_RELOG_MODE              0x00010000
#define EVENT_TRACE_PRIVATE_IN_PROC         0x00020000
#define EVENT_TRACE_USE_PAGED_MEMORY        0x01000000
#define EVENT_TRACE_SYSTEM_LOGGER_MODE      0x02000000
#define EVENT_TRACE_COMPRESSED_MODE         0x04000000
#define EVENT_TRACE_INDEPENDENT_SESSION_MODE 0x08000000
#define EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING 0x10000000

/* ---- buffer flags and types ---------------------------------------------------------- */
#define ETW_BUFFER_FLAG_NORMAL          0x0000
#define ETW_BUFFER_FLAG_FLUSH_MARKER    0x0001
#define ETW_BUFFER_FLAG_EVENTS_LOST     0x0002
#define ETW_BUFFER_FLAG_BUFFER_LOST     0x0004
#define ETW_BUFFER_FLAG_RTBACKUP_CORRUPT 0x0008
#define ETW_BUFFER_FLAG_RTBACKUP        0x0010
#define ETW_BUFFER_FLAG_PROC_INDEX      0x0020
#define ETW_BUFFER_FLAG_COMPRESSED      0x0040
#define ETW_BUFFER_TYPE_GENERIC         0
#define ETW_BUFFER_TYPE_RUNDOWN         1
#define ETW_BUFFER_TYPE_CTX_SWAP        2
#define ETW_BUFFER_TYPE_REFTIME         3
#define ETW_BUFFER_TYPE_HEADER          4
#define ETW_BUFFER_TYPE_BATCHED         5
#define ETW_BUFFER_TYPE_EMPTY_MARKER    6
#define ETW_BUFFER_TYPE_DBG_INFO        7
#define ETW_BUFFER_TYPE_MAXIMUM         8   /* a count: no buffer has this type */
#define ETW_BUFFER_STATE_FLUSH          3
#define ETW_PROCESSOR_INDEX_MASK        0x07FF
#define COMPRESSION_FORMAT_NONE         0
#define COMPRESSION_FORMAT_LZNT1        2
#define COMPRESSION_FORMAT_XPRESS       3
#define COMPRESSION_FORMAT_XPRESS_HUFF  4

/* ---- consumer side ------------------------------------------------------------------- */
#define PROCESS_TRACE_MODE_REAL_TIME        0x00000100
#define PROCESS_TRACE_MODE_RAW_TIMESTAMP    0x00001000
#define PROCESS_TRACE_MODE_EVENT_RECORD     0x10000000
#define EVENT_HEADER_FLAG_EXTENDED_INFO     0x0001
#define EVENT_HEADER_FLAG_PRIVATE_SESSION   0x0002
#define EVENT_HEADER_FLAG_STRING_ONLY       0x0004
#define EVENT_HEADER_FLAG_TRACE_MESSAGE     0x0008
#define EVENT_HEADER_FLAG_NO_CPUTIME        0x0010
#define EVENT_HEADER_FLAG_32_BIT_HEADER     0x0020
#define EVENT_HEADER_FLAG_64_BIT_HEADER     0x0040
#define EVENT_HEADER_FLAG_DECODE_GUID       0x0080
#define EVENT_HEADER_FLAG_CLASSIC_HEADER    0x0100
#define EVENT_HEADER_FLAG_PROCESSOR_INDEX   0x0200

/* ---- clocks (WNODE_HEADER.ClientContext / TRACE_LOGFILE_HEADER.ReservedFlags) -------- */
#define EVENT_TRACE_CLOCK_RAW           0
#define EVENT_TRACE_CLOCK_PERFCOUNTER   1
#define EVENT_TRACE_CLOCK_SYSTEMTIME    2
#define EVENT_TRACE_CLOCK_CPUCYCLE      3

/* ---- controller / provider ----------------------------------------------------------- */
#define EVENT_TRACE_CONTROL_QUERY       0
#define EVENT_TRACE_CONTROL_STOP        1
#define EVENT_TRACE_CONTROL_UPDATE      2
#define EVENT_TRACE_CONTROL_FLUSH       3
#define WMI_GET_ALL_DATA                0
#define WMI_ENABLE_EVENTS               4
#define WMI_DISABLE_EVENTS              5
#define TRACE_LEVEL_NONE                0
#define TRACE_LEVEL_CRITICAL            1
#define TRACE_LEVEL_ERROR               2
#define TRACE_LEVEL_WARNING             3
#define TRACE_LEVEL_INFORMATION         4
#define TRACE_LEVEL_VERBOSE             5
#define WNODE_FLAG_TRACED_GUID          0x00020000
#define MAX_ETW_EVENT_SIZE              0xFFFF
#define MIN_ETW_BUFFER_SIZE_KB          1
#define MAX_ETW_BUFFER_SIZE_KB          16384

/* ---- Win32 error codes the C core returns (winerror.h values) ------------------------- */
#define ERROR_SUCCESS                   0
#define ERROR_FILE_NOT_FOUND            2
#define ERROR_TOO_MANY_OPEN_FILES       4
#define ERROR_ACCESS_DENIED             5
#define ERROR_INVALID_HANDLE            6
#define ERROR_NOT_ENOUGH_MEMORY         8
#define ERROR_BAD_FORMAT                11
#define ERROR_OUTOFMEMORY               14
#define ERROR_BAD_LENGTH                24
#define ERROR_WRITE_FAULT               29
#define ERROR_READ_FAULT                30
#define ERROR_SHARING_VIOLATION         32
#define ERROR_HANDLE_EOF                38
#define ERROR_NOT_SUPPORTED             50
#define ERROR_INVALID_PARAMETER         87
#define ERROR_DISK_FULL                 112
#define ERROR_BAD_PATHNAME              161
#define ERROR_ALREADY_EXISTS            183
#define ERROR_BUSY                      170
#define ERROR_FILE_TOO_LARGE            223
#define ERROR_MORE_DATA                 234
#define ERROR_NOACCESS                  998
#define ERROR_CANCELLED                 1223
#define ERROR_NO_SYSTEM_RESOURCES       1450
#define ERROR_INVALID_TIME              1901
#define ERROR_CANT_RESOLVE_FILENAME     1921
#define ERROR_WMI_GUID_NOT_FOUND        4200
#define ERROR_WMI_INSTANCE_NOT_FOUND    4201
#define ERROR_WMI_ALREADY_ENABLED       4206
#define ERROR_CTX_CLOSE_PENDING         7007

/* BEGIN C ONLY: layout checks against the reference offsets (cffi does not see this). */
#ifndef WPPTRACE_NO_LAYOUT_ASSERTS
#include <stddef.h>
_Static_assert(sizeof(WMI_BUFFER_HEADER) == 0x48, "WMI_BUFFER_HEADER");
_Static_assert(offsetof(WMI_BUFFER_HEADER, ClientContext) == 0x28, "ClientContext");
_Static_assert(offsetof(WMI_BUFFER_HEADER, FilledBytes) == 0x30, "FilledBytes");
_Static_assert(offsetof(WMI_BUFFER_HEADER, BufferType) == 0x36, "BufferType");
_Static_assert(sizeof(SYSTEM_TRACE_HEADER) == 0x20, "SYSTEM_TRACE_HEADER");
_Static_assert(sizeof(PERFINFO_TRACE_HEADER) == 0x10, "PERFINFO_TRACE_HEADER");
_Static_assert(sizeof(MESSAGE_TRACE_HEADER) == 8, "MESSAGE_TRACE_HEADER");
_Static_assert(sizeof(EVENT_TRACE_HEADER) == 0x30, "EVENT_TRACE_HEADER");
_Static_assert(sizeof(EVENT_INSTANCE_GUID_HEADER) == 0x48, "EVENT_INSTANCE_GUID_HEADER");
_Static_assert(sizeof(EVENT_HEADER) == 0x50, "EVENT_HEADER");
_Static_assert(sizeof(EVENT_EXTENDED_ITEM_HEADER) == 8, "EVENT_EXTENDED_ITEM_HEADER");
_Static_assert(offsetof(PERFINFO_TRACE_HEADER, Size) == offsetof(SYSTEM_TRACE_HEADER, Size),
               "kernel-style headers share Size");
_Static_assert(offsetof(EVENT_HEADER, EventDescriptor) == 0x28, "EventDescriptor");
_Static_assert(sizeof(TIME_ZONE_INFORMATION) == 172, "TIME_ZONE_INFORMATION");
_Static_assert(offsetof(TRACE_LOGFILE_HEADER64, TimeZone) == 0x48, "TimeZone64");
_Static_assert(offsetof(TRACE_LOGFILE_HEADER64, BootTime) == 0xF8, "BootTime64");
_Static_assert(offsetof(TRACE_LOGFILE_HEADER64, StartTime) == 0x108, "StartTime64");
_Static_assert(sizeof(TRACE_LOGFILE_HEADER64) == 0x118, "TRACE_LOGFILE_HEADER64");
_Static_assert(offsetof(TRACE_LOGFILE_HEADER32, TimeZone) == 0x40, "TimeZone32");
_Static_assert(offsetof(TRACE_LOGFILE_HEADER32, BootTime) == 0xF0, "BootTime32");
_Static_assert(sizeof(TRACE_LOGFILE_HEADER32) == 0x110, "TRACE_LOGFILE_HEADER32");
#endif
/* END C ONLY */

#endif
