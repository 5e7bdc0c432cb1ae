/* wpptrace_etw.h: the classic ETW provider and controller API (Win32 names and meanings) on Linux.
 *
 * C programs compile the core directly:
 *     cc -Isrc/wpptrace/include -Iprovider/csrc app.c provider/csrc/etw_*.c -pthread
 * Python sees the same functions: the cffi cdef is generated from this header.
 *
 * Types follow the Win32 headers (ULONG = 32 bit, TRACEHANDLE = 64 bit, WCHAR = UTF-16 code
 * unit); structures have the x64 MS-ABI layout. The *A functions take UTF-8 strings, the *W
 * functions UTF-16. Every function returns a winerror.h code (ERROR_* in etl_layout.h).
 */
#ifndef WPPTRACE_ETW_H
#define WPPTRACE_ETW_H
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include "etl_layout.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef uint8_t   UCHAR;
typedef uint16_t  USHORT;
typedef uint32_t  ULONG;
typedef int32_t   LONG;
typedef uint64_t  ULONG64;
typedef uint64_t  ULONGLONG;
typedef int64_t   LONGLONG;
typedef void     *PVOID;
typedef uint16_t  WCHAR;
typedef const WCHAR *LPCWSTR;
typedef const char  *LPCSTR;
typedef ULONG    *PULONG;
typedef uint64_t  TRACEHANDLE;
typedef TRACEHANDLE *PTRACEHANDLE;
typedef const GUID *LPCGUID;
typedef int       WMIDPREQUESTCODE;   /* WMI_ENABLE_EVENTS, WMI_DISABLE_EVENTS, ... */

/* Provider control callback: RequestCode, RequestContext (the registration's Context),
 * *BufferSize, Buffer (a WNODE_HEADER; pass it to GetTraceLoggerHandle). */
typedef ULONG (*WMIDPREQUEST)(WMIDPREQUESTCODE RequestCode, PVOID RequestContext,
                              ULONG *BufferSize, PVOID Buffer);

typedef struct {                     /* x64: 0x10 */
    LPCGUID Guid;
    PVOID   RegHandle;               /* out */
} TRACE_GUID_REGISTRATION;

typedef struct {                     /* 0x30 */
    ULONG    BufferSize;             /* 0x00 total size of the properties + names */
    ULONG    ProviderId;             /* 0x04 */
    ULONG64  HistoricalContext;      /* 0x08 session / logger handle */
    int64_t  TimeStamp;              /* 0x10 */
    GUID     Guid;                   /* 0x18 */
    ULONG    ClientContext;          /* 0x28 clock type 1, 2, 3 */
    ULONG    Flags;                  /* 0x2C WNODE_FLAG_TRACED_GUID */
} WNODE_HEADER;

typedef struct {                     /* x64: 0x78, names follow at the offsets */
    WNODE_HEADER Wnode;
    ULONG    BufferSize;             /* 0x30 KB */
    ULONG    MinimumBuffers;         /* 0x34 */
    ULONG    MaximumBuffers;         /* 0x38 */
    ULONG    MaximumFileSize;        /* 0x3C MB (KB with EVENT_TRACE_USE_KBYTES_FOR_SIZE) */
    ULONG    LogFileMode;            /* 0x40 */
    ULONG    FlushTimer;             /* 0x44 seconds (ms with EVENT_TRACE_USE_MS_FLUSH_TIMER) */
    ULONG    EnableFlags;            /* 0x48 */
    LONG     AgeLimit;               /* 0x4C */
    ULONG    NumberOfBuffers;        /* 0x50 out */
    ULONG    FreeBuffers;            /* 0x54 out */
    ULONG    EventsLost;             /* 0x58 out */
    ULONG    BuffersWritten;         /* 0x5C out */
    ULONG    LogBuffersLost;         /* 0x60 out */
    ULONG    RealTimeBuffersLost;    /* 0x64 out */
    PVOID    LoggerThreadId;         /* 0x68 out: the flush thread's id */
    ULONG    LogFileNameOffset;      /* 0x70 */
    ULONG    LoggerNameOffset;       /* 0x74 */
} EVENT_TRACE_PROPERTIES;

/* Constants not in etl_layout.h (evntrace.h / evntprov.h / wmistr.h values). */
#define EVENT_TRACE_USE_MS_FLUSH_TIMER        0x00000010
#define EVENT_CONTROL_CODE_DISABLE_PROVIDER   0
#define EVENT_CONTROL_CODE_ENABLE_PROVIDER    1
#define EVENT_CONTROL_CODE_CAPTURE_STATE      2
#define WMI_CAPTURE_STATE                     6
#define KERNEL_LOGGER_ID                      0xFFFF
#define WPPTRACE_MAX_SESSIONS                 64
#define WPPTRACE_MAX_REGISTRATIONS            1024    /* providers registered at once, per process */
#define WAIT_TIMEOUT                          258
#define INVALID_TRACEHANDLE_VALUE             0xFFFFFFFFFFFFFFFFull
/* BEGIN C ONLY (cffi cannot parse string macros) */
#define KERNEL_LOGGER_NAMEA                   "NT Kernel Logger"
/* END C ONLY */

/* ---- provider ----------------------------------------------------------------------- */
ULONG RegisterTraceGuidsW(WMIDPREQUEST RequestAddress, PVOID RequestContext, LPCGUID ControlGuid,
                          ULONG GuidCount, TRACE_GUID_REGISTRATION *TraceGuidReg,
                          LPCWSTR MofImagePath, LPCWSTR MofResourceName,
                          PTRACEHANDLE RegistrationHandle);
ULONG RegisterTraceGuidsA(WMIDPREQUEST RequestAddress, PVOID RequestContext, LPCGUID ControlGuid,
                          ULONG GuidCount, TRACE_GUID_REGISTRATION *TraceGuidReg,
                          LPCSTR MofImagePath, LPCSTR MofResourceName,
                          PTRACEHANDLE RegistrationHandle);
ULONG UnregisterTraceGuids(TRACEHANDLE RegistrationHandle);
/* These three report failure through wpptrace_get_last_error() (GetLastError). */
TRACEHANDLE GetTraceLoggerHandle(PVOID Buffer);
ULONG GetTraceEnableFlags(TRACEHANDLE LoggerHandle);
UCHAR GetTraceEnableLevel(TRACEHANDLE LoggerHandle);
ULONG wpptrace_get_last_error(void);

/* Arguments: (PVOID, size_t) pairs; the list ends at the first NULL pointer.
 * Async-signal-safe (no lock, no allocation, no mapping): a signal handler may log, even while
 * its thread is inside TraceMessage. It never blocks: a full buffer pool drops the event
 * (ERROR_NOT_ENOUGH_MEMORY, counted in EventsLost); so does a message too large for a buffer
 * (ERROR_MORE_DATA, counted in EventsLost: 8 + the MessageFlags items + the arguments, 8-byte
 * aligned, must not exceed BufferSize - 72). UnregisterTraceGuids waits for the
 * registration's callbacks running in other threads; registration and enabling take locks
 * (fork-safe: the child keeps a working provider) and are not async-signal-safe. */
ULONG TraceMessage(TRACEHANDLE LoggerHandle, ULONG MessageFlags, LPCGUID MessageGuid,
                   USHORT MessageNumber, ...);
ULONG TraceMessageVa(TRACEHANDLE LoggerHandle, ULONG MessageFlags, LPCGUID MessageGuid,
                     USHORT MessageNumber, va_list MessageArgList);

/* Fixed-arity entry points (no va_list): one message whose argument bytes are the given ones. */
typedef struct {
    const void *Data;
    size_t      Size;
} WPPTRACE_ARG;
ULONG wpptrace_trace_args(TRACEHANDLE LoggerHandle, ULONG MessageFlags, LPCGUID MessageGuid,
                          USHORT MessageNumber, const WPPTRACE_ARG *Args, ULONG ArgCount);
/* Python fast path: GUID as 16 bytes_le (or NULL), payload already packed by the caller. */
ULONG wpptrace_trace_packed(TRACEHANDLE LoggerHandle, ULONG MessageFlags, const char *MessageGuid,
                            USHORT MessageNumber, const char *Payload, size_t PayloadSize);

/* ---- controller ---------------------------------------------------------------------- */
ULONG StartTraceA(PTRACEHANDLE TraceHandle, LPCSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties);
ULONG StartTraceW(PTRACEHANDLE TraceHandle, LPCWSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties);
ULONG ControlTraceA(TRACEHANDLE TraceHandle, LPCSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties,
                    ULONG ControlCode);
ULONG ControlTraceW(TRACEHANDLE TraceHandle, LPCWSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties,
                    ULONG ControlCode);
ULONG EnableTrace(ULONG Enable, ULONG EnableFlag, ULONG EnableLevel, LPCGUID ControlGuid,
                  TRACEHANDLE TraceHandle);
ULONG EnableTraceEx2(TRACEHANDLE TraceHandle, LPCGUID ProviderId, ULONG ControlCode, UCHAR Level,
                     ULONGLONG MatchAnyKeyword, ULONGLONG MatchAllKeyword, ULONG Timeout,
                     PVOID EnableParameters);

/* StartTraceA with wpptrace's own options (0: as StartTraceA):
 * WPPTRACE_START_ENDS_WITH_CALLER  the session ends with the process that started it: its host
 *     watches that process (a pidfd; without one, its pid and start time each second) and
 *     stops the session as STOP does (its file completed) once the process has ended, however
 *     it ended (a test runner killed, a crash). A session of StartTrace outlives its starter,
 *     as on Windows; a test helper's is not meant to. A private session ends with its process
 *     anyway. */
#define WPPTRACE_START_ENDS_WITH_CALLER 0x1
ULONG wpptrace_start_trace(PTRACEHANDLE TraceHandle, LPCSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties,
                           ULONG Options);

/* Every session the calling user runs (PropertyArray[i] prepared as for ControlTrace). */
ULONG QueryAllTracesA(EVENT_TRACE_PROPERTIES **PropertyArray, ULONG PropertyArrayCount,
                      ULONG *LoggerCount);

typedef struct {
    GUID    Guid;
    ULONG   GuidType;
    ULONG   LoggerId;
    ULONG   EnableLevel;
    ULONG   EnableFlags;
    UCHAR   IsEnable;
} TRACE_GUID_PROPERTIES, *PTRACE_GUID_PROPERTIES;
/* Control GUIDs registered by the user's processes or enabled by its sessions. */
ULONG EnumerateTraceGuids(PTRACE_GUID_PROPERTIES *GuidPropertiesArray, ULONG PropertyArrayCount,
                          ULONG *GuidCount);

/* ---- sessions across processes (wpptrace) ---------------------------------------------- */
/* StartTrace's session runs in a host process until stopped (EVENT_TRACE_PRIVATE_LOGGER_MODE:
 * in the calling process, for its own providers only). These report what the Win32 calls
 * cannot say. */
#define WPPTRACE_SESSION_PRIVATE   0x1      /* run by the calling process */
#define WPPTRACE_SESSION_HOST_GONE 0x2      /* its host process died: STOP cleans up */
#define WPPTRACE_SESSION_BUSY      0x4      /* listed: its host did not answer in time, so its
                                               counters (and these) are not known */
typedef struct {
    ULONG LoggerId;
    ULONG HostProcessId;
    ULONG Flags;
    ULONG RealTimeConsumers;
    ULONG RecordsAbandoned;        /* records whose writer never completed them (in EventsLost) */
    ULONG BuffersQuarantined;      /* buffers never reused: a writer that gave up a record in
                                      one may still be running and store into it */
} WPPTRACE_SESSION_INFO;
ULONG wpptrace_session_info(TRACEHANDLE TraceHandle, LPCSTR InstanceName, WPPTRACE_SESSION_INFO *Info);
/* ControlTraceA(UPDATE), saying apart what became of each log file when it switched to a new
 * LogFileName (its one code cannot say which file failed): *OldFileError why the file it left
 * could not be completed (that file is incomplete; the switch was made all the same),
 * *NewFileError why the new one could not be started (the session writes no file now; the
 * properties name none). Both ERROR_SUCCESS when no switch was made, or it went well.
 * *Switched 1 if the session left its file for the LogFileName given, 0 if no file was given
 * or the name leads to the file the session has open (it goes on in it, by that name). Returns
 * what ControlTrace returns: the old file's error, else the new one's, else any other. */
ULONG wpptrace_update_trace(TRACEHANDLE TraceHandle, LPCSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties,
                            ULONG *OldFileError, ULONG *NewFileError, ULONG *Switched);
/* ControlTraceA(STOP), saying whether this call found the session's host process gone (killed:
 * the session was never stopped, its log file says so) and cleaned up after it: *HostGone 1,
 * and ERROR_WMI_INSTANCE_NOT_FOUND returned, as ControlTrace does. Else *HostGone 0: an
 * ERROR_WMI_INSTANCE_NOT_FOUND then means no such session runs (another STOP may have stopped
 * it cleanly meanwhile). */
ULONG wpptrace_stop_trace(TRACEHANDLE TraceHandle, LPCSTR InstanceName, EVENT_TRACE_PROPERTIES *Properties,
                          ULONG *HostGone);
/* QueryAllTraces with the session info of each session listed (Infos: Count entries), from the
 * same one request per session. */
ULONG wpptrace_list_sessions(EVENT_TRACE_PROPERTIES **Array, WPPTRACE_SESSION_INFO *Infos, ULONG Count,
                             ULONG *LoggerCount);

typedef struct {
    GUID  Guid;
    ULONG LoggerId;                /* the session holding it, if IsEnable */
    ULONG EnableFlags;
    UCHAR EnableLevel;
    UCHAR IsEnable;
    ULONG ProcessCount;            /* processes that registered it */
} WPPTRACE_PROVIDER_INFO;
ULONG wpptrace_enumerate_providers(WPPTRACE_PROVIDER_INFO *Providers, ULONG Count, ULONG *Total);
/* Which running session holds a control GUID, as the registry says it (no process is asked). */
typedef struct {
    GUID  Guid;                    /* in: the control GUID asked about */
    TRACEHANDLE LoggerHandle;      /* the holding session (its generation in it), if IsEnable; 0
                                      if this process cannot name it (its own session of that
                                      value was left out of the registry) */
    ULONG LoggerId;
    ULONG Generation;              /* the holding session's whole registry generation */
    ULONG Incarnation;             /* the registry's (see the registry's layout) */
    ULONG EnableFlags;
    UCHAR EnableLevel;
    UCHAR IsEnable;                /* 0: no running session holds it */
    char  LoggerName[1024];        /* UTF-8, terminated */
} WPPTRACE_GUID_HOLDER;
/* For each of Count entries, who holds its Guid now: read in one hold of the registry's lock,
 * without contacting any provider or session host (a stopped one holds up nothing). No registry
 * (nothing runs): none is held. ERROR_BUSY if the registry's lock was held too long elsewhere. */
ULONG wpptrace_guid_holders(WPPTRACE_GUID_HOLDER *Holders, ULONG Count);
/* EnableTrace, only if the registry still shows *Expected for Guid (who holds it, at which
 * flags and level; IsEnable 0: no session holds it), checked and changed in one hold of its
 * lock: a command putting back what it changed does not undo what another did meanwhile.
 * *Applied is 1 if the change was made (then as EnableTrace returns), else 0 with ERROR_SUCCESS
 * and nothing changed; *Found is what the registry showed (Found->Guid is set to Guid).
 * ERROR_NOT_SUPPORTED for a private session (its enables are not in the registry). */
ULONG wpptrace_enable_trace_if(ULONG Enable, ULONG Flags, ULONG Level, LPCGUID Guid, TRACEHANDLE Handle,
                               const WPPTRACE_GUID_HOLDER *Expected, WPPTRACE_GUID_HOLDER *Found,
                               UCHAR *Applied);
/* The runtime directory holding the user's session sockets and registry (NULL if unusable). */
const char *wpptrace_runtime_directory(void);
/* Why this user's registry (in the runtime directory) cannot be used, in words (Size bytes,
 * terminated; its path and what to do): ERROR_BAD_FORMAT (made by another wpptrace version, or
 * damaged), ERROR_ACCESS_DENIED (not this user's, or not private), ERROR_BAD_PATHNAME (not a
 * file); ERROR_SUCCESS and "" if it is usable, not made yet, or the directory itself is not
 * usable. It is looked at only: nothing is locked or changed. */
ULONG wpptrace_registry_refusal(char *Why, ULONG Size);
/* Where the host process of a session with LoggerId writes its log (what went wrong with its
 * files, its requests), whether or not such a session runs now: ERROR_INVALID_PARAMETER for a
 * LoggerId no session can have (0, or above 63 but the NT Kernel Logger's 0xFFFF),
 * ERROR_BAD_PATHNAME if the name does not fit in Size bytes, ERROR_ACCESS_DENIED without a
 * usable runtime directory. */
ULONG wpptrace_host_log_path(ULONG LoggerId, char *Path, ULONG Size);
/* Stop listening for enable notifications (a process about to exit); a RegisterTraceGuids
 * after it listens again. It is not cancelled midway (cancellation is held off until it
 * returns), nor are RegisterTraceGuids and EnableTrace while they start the endpoint or join a
 * session of another process: ControlCallbacks run by a new endpoint's copy of the registry run
 * with cancellation held off too. */
void  wpptrace_endpoint_close(void);
/* In a forked child, the ControlCallbacks this process's providers are owed (the child's copy
 * of the registry, other processes' changes) run on the child's endpoint thread, never inside
 * fork(). A process whose callbacks cannot run in the child until its runtime has started again
 * there (Python rebuilds its GIL and thread states after the fork handlers) asks once for them
 * to be held: a forked child's endpoint thread then runs none until the child lets them go,
 * with the release below or any RegisterTraceGuids, EnableTrace or trace call it makes. The
 * release (called as fork returns in the child, outside any callback) also copies the
 * registry on the calling thread: the child goes on with the enables its parent had. */
void  wpptrace_hold_callbacks_after_fork(void);
void  wpptrace_release_callbacks_after_fork(void);
/* Enables of other processes' sessions this process had no room for (it keeps 1024) and
 * dropped, each counted once; their providers stay disabled here. */
ULONG wpptrace_enables_dropped(void);
/* Enables of other processes' sessions withheld from this process, a child forked in a
 * ControlCallback run by a copy of the enables that never returned into it: the copy owed
 * since waits for that one, so they never come. Counted once each, when asked (their providers
 * stay disabled here). */
ULONG wpptrace_enables_withheld(void);
/* Registrations found owed a change when asked: a thread cancelled in a ControlCallback left
 * it to them, and this process has no endpoint thread to deliver it (no usable runtime
 * directory, the endpoint closed, a session host); the next EnableTrace(Ex2) called outside a
 * callback delivers it (never RegisterTraceGuids, UnregisterTraceGuids, StartTrace or
 * ControlTrace: their callers do not expect other registrations' ControlCallbacks there).
 * Counted once per registration and change, as found when asked: the count only grows, and
 * one delivered after it was counted stays counted. */
ULONG wpptrace_changes_undelivered(void);
/* Sessions of other processes whose memory this process refused to map (its file not sealed
 * against shrinking, or not what the session said), each counted once; their providers stay
 * disabled for them here. */
ULONG wpptrace_views_refused(void);
/* Sessions this process runs that a registry made again after a clean-up of the runtime
 * directory could not take back (another session took their LoggerId there first): they run
 * on, found by this process only, and are put back once their slot allows. Counted once each. */
ULONG wpptrace_sessions_displaced(void);
/* Session hosts this process started that StartTrace had to make stop (a clean-up of the
 * runtime directory found before the session's handle was handed out) but could not: it could
 * not tell whether the pid was still the host's. Each runs on, writing its file, found by no
 * name. Counted once each. */
ULONG wpptrace_hosts_not_stopped(void);
/* Would `Path` (UTF-8) be taken as a session's log file? The checks StartTrace and UPDATE make
 * (a new file is made to see it can be, then removed; an existing one is opened, not changed):
 * ERROR_SUCCESS, or the code they return, with the rule that refused it in words in Why (Size
 * bytes, terminated; empty when no rule did: the path is missing or the system refused). */
ULONG wpptrace_log_path_refusal(LPCSTR Path, char *Why, ULONG Size);

/* ---- real-time delivery (consumers of a REAL_TIME_MODE session, in any process) --------- */
typedef struct wpptrace_rt_subscription wpptrace_rt_subscription;
/* Subscribe to the running real-time session `name` (UTF-8). The header buffer comes first,
 * then buffers flushed before anyone subscribed, then live ones. */
ULONG wpptrace_rt_subscribe(LPCSTR SessionName, wpptrace_rt_subscription **Subscription,
                            ULONG *BufferSize);
/* Next flushed buffer: ERROR_SUCCESS (copied, *Filled = its size), WAIT_TIMEOUT, ERROR_HANDLE_EOF
 * (session stopped and queue drained) or ERROR_MORE_DATA (*Filled = size needed).
 * TimeoutMs < 0 waits forever. */
ULONG wpptrace_rt_next(wpptrace_rt_subscription *Subscription, int TimeoutMs, void *Out,
                       ULONG OutSize, ULONG *Filled);
/* Wait until every buffer the session had flushed to this subscription when called can be
 * taken without waiting (a consumer in another process: they may still be on their way). */
ULONG wpptrace_rt_sync(wpptrace_rt_subscription *Subscription, int TimeoutMs);
/* 1 once the session stopped and every buffer was taken. */
int   wpptrace_rt_drained(wpptrace_rt_subscription *Subscription);
typedef struct {
    ULONG64 LastSequence;   /* the SequenceNumber of the last buffer the session flushed (0: none) */
    ULONG64 Dropped;        /* buffers dropped for this subscription: its queue was full */
} wpptrace_rt_final_info;
/* What the session said when the stream ended: 1 (and *Info filled) once it stopped and said
 * it; 0 while it runs, or if the stream ended without it (the host died). Buffers dropped
 * after the last one received show no gap: LastSequence counts them. */
int   wpptrace_rt_final(wpptrace_rt_subscription *Subscription, wpptrace_rt_final_info *Info);
void  wpptrace_rt_close(wpptrace_rt_subscription *Subscription);

/* ---- .etl files written from another session's buffers (a collector of relayed sessions) ---
 * One thread at a time per stream. The header buffer (BufferSize bytes, the log-file header
 * record first) becomes buffer 0 with this file's totals; data buffers follow in the order
 * given, each exactly BufferSize bytes; the header is rewritten after each. */
typedef struct wpptrace_etl_stream wpptrace_etl_stream;
/* Create Path (UTF-8): never an existing file (ERROR_ALREADY_EXISTS), mode 0600.
 * ERROR_BAD_FORMAT / ERROR_BAD_LENGTH if HeaderBuffer is not such a header buffer. */
ULONG wpptrace_etl_stream_create(LPCSTR Path, const void *HeaderBuffer, ULONG BufferSize,
                                 wpptrace_etl_stream **Stream);
/* Append one data buffer (ERROR_BAD_LENGTH unless Size is the stream's BufferSize). */
ULONG wpptrace_etl_stream_write(wpptrace_etl_stream *Stream, const void *Buffer, ULONG Size);
/* What the file lacks: the header's EventsLost and BuffersLost. */
ULONG wpptrace_etl_stream_set_lost(wpptrace_etl_stream *Stream, ULONG EventsLost, ULONG BuffersLost);
/* Buffers in the file, header buffer included (the header's BuffersWritten). */
ULONG wpptrace_etl_stream_buffers(const wpptrace_etl_stream *Stream);
/* Close (the stream is freed whatever it returns). EndTime (FILETIME) != 0: the session
 * stopped, the file is complete (EndTime is written, never before StartTime); 0: it did not
 * (EndTime stays 0, as for a file whose writer never stopped). ERROR_SUCCESS only if the
 * last header, the file's size and the flush to the disk all succeeded; else
 * ERROR_DISK_FULL (a full disk), ERROR_FILE_TOO_LARGE (the file size limit) or ERROR_WRITE_FAULT. */
ULONG wpptrace_etl_stream_close(wpptrace_etl_stream *Stream, LONGLONG EndTime);

/* ---- test hooks (simulate a slow disk / failing allocator / a writer that never completes
 * its record; not for production use) ------------------------------------------------------ */
ULONG wpptrace_debug_hold_flush(TRACEHANDLE TraceHandle, int Hold);
void  wpptrace_debug_fail_allocations(int Count);
/* After Skip more writes of .etl files succeed, the next Count fail with errno Error. */
void  wpptrace_debug_fail_file_writes(int Skip, int Count, int Error);
/* The next Count flushes of a finished .etl file to the disk (at STOP or UPDATE) fail with
 * Error (ERROR_DISK_FULL, ERROR_WRITE_FAULT ...). */
void  wpptrace_debug_fail_file_flushes(int Count, ULONG Error);
ULONG wpptrace_debug_reserve_only(TRACEHANDLE LoggerHandle, ULONG Size);
/* On: session hosts started from now on (WPPTRACE_START_ENDS_WITH_CALLER) watch the process
 * that started them by its pid and start time each second, as where no pidfd can be had. */
void  wpptrace_debug_watch_caller_by_polling(int On);

/* BEGIN C ONLY */
#ifdef UNICODE
#define RegisterTraceGuids RegisterTraceGuidsW
#define StartTrace StartTraceW
#define ControlTrace ControlTraceW
#else
#define RegisterTraceGuids RegisterTraceGuidsA
#define StartTrace StartTraceA
#define ControlTrace ControlTraceA
#endif
#define GetLastError wpptrace_get_last_error
/* END C ONLY */

#ifdef __cplusplus
}
#endif
#endif
