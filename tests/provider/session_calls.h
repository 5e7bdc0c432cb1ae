/* session_calls.h: the session calls the C test programs of this folder share (the test
 * builder puts the folder on their include path): one properties block (and a sequential
 * file's filled in), a file or real-time session started, stopped or queried, provider control
 * callbacks (one that keeps what it was last told, one that counts what each registration was
 * told, one that does nothing), a flag waited for, and the processes of child_calls.h. Include
 * after _etw_internal.h. */
#ifndef WPPTRACE_TESTS_SESSION_CALLS_H
#define WPPTRACE_TESTS_SESSION_CALLS_H

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "child_calls.h"

typedef struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props_block;

/* A sequential-file session's properties in `b`, logging to `file` (none if NULL or too long),
 * with room for the name the call puts at b->names. */
static inline void props_of(props_block *b, const char *file) {
    memset(b, 0, sizeof *b);
    b->p.Wnode.BufferSize = sizeof *b;
    b->p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL;
    b->p.LoggerNameOffset = sizeof b->p;
    b->p.LogFileNameOffset = sizeof b->p + 1024;
    if (file && strlen(file) < sizeof b->names - 1024) memcpy(b->names + 1024, file, strlen(file) + 1);
}

/* A session `name` in LogFileMode `mode`, logging to DIR/NAME.etl. */
static inline ULONG start_in_mode(const char *dir, const char *name, ULONG mode, TRACEHANDLE *h) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    b.p.BufferSize = 1;
    b.p.LogFileMode = mode;
    b.p.LogFileNameOffset = sizeof b.p;
    snprintf(b.names, sizeof b.names, "%s/%s.etl", dir, name);
    return StartTrace(h, name, &b.p);
}

/* A sequential-file session `name` logging to DIR/NAME.etl. */
static inline ULONG start(const char *dir, const char *name, TRACEHANDLE *h) {
    return start_in_mode(dir, name, EVENT_TRACE_FILE_MODE_SEQUENTIAL, h);
}

/* The same, private to this process (no host). */
static inline ULONG start_private_file(const char *dir, const char *name, TRACEHANDLE *h) {
    return start_in_mode(dir, name, EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_PRIVATE_LOGGER_MODE, h);
}

/* The same in-process too (EVENT_TRACE_PRIVATE_IN_PROC). */
static inline ULONG start_private_in_proc(const char *dir, const char *name, TRACEHANDLE *h) {
    return start_in_mode(dir, name, EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_PRIVATE_LOGGER_MODE
                                    | EVENT_TRACE_PRIVATE_IN_PROC, h);
}

/* A real-time session `name`. */
static inline ULONG start_rt(const char *name, TRACEHANDLE *h) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    b.p.BufferSize = 1;
    b.p.LogFileMode = EVENT_TRACE_REAL_TIME_MODE;
    return StartTrace(h, name, &b.p);
}

static inline ULONG control_by_name(const char *name, ULONG code) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    return ControlTrace(0, name, &b.p, code);
}

static inline ULONG stop(TRACEHANDLE h) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    return ControlTrace(h, NULL, &b.p, EVENT_TRACE_CONTROL_STOP);
}

static inline ULONG query_by_name(const char *name) {
    return control_by_name(name, EVENT_TRACE_CONTROL_QUERY);
}

static inline ULONG stop_by_name(const char *name) {
    return control_by_name(name, EVENT_TRACE_CONTROL_STOP);
}

/* Each registration's callbacks, counted by code (its context). */
typedef struct {
    _Atomic int enables, disables;
} callback_count;

static inline ULONG count_callbacks(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)size;
    (void)buffer;
    callback_count *c = context;
    if (code == WMI_ENABLE_EVENTS) atomic_fetch_add(&c->enables, 1);
    if (code == WMI_DISABLE_EVENTS) atomic_fetch_add(&c->disables, 1);
    return ERROR_SUCCESS;
}

/* What the provider's control callback (`track_control`) was told last: enabled or not, and
 * the session's logger handle when enabled. */
static _Atomic int g_enabled;
static _Atomic TRACEHANDLE g_logger;

static inline ULONG track_control(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    atomic_store(&g_enabled, code == WMI_ENABLE_EVENTS);
    if (code == WMI_ENABLE_EVENTS) atomic_store(&g_logger, GetTraceLoggerHandle(buffer));
    return ERROR_SUCCESS;
}

static inline ULONG quiet(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)code;
    (void)context;
    (void)size;
    (void)buffer;
    return ERROR_SUCCESS;
}

/* Whether this process's registration of `control` is listed with a session. */
static inline int listed_enabled(const GUID *control) {
    wpt_wire_registered regs[16];
    size_t n = wpt_registered_guids(regs, 16);
    int enabled = 0;
    for (size_t i = 0; i < n; i++)
        enabled |= memcmp(&regs[i].guid, control, sizeof(GUID)) == 0 && regs[i].logger_handle != 0;
    return enabled;
}

/* Waits until `flag` is set, for `ms` at the most: whether it is. */
static inline int wait_for(_Atomic int *flag, int64_t ms) {
    int64_t until = wpt_mono_ms() + ms;
    while (!atomic_load(flag) && wpt_mono_ms() < until) usleep(1000);
    return atomic_load(flag);
}

#endif
