/* etw_controller.c: controller API: StartTrace, ControlTrace, EnableTrace, EnableTraceEx2.
 *
 * Validates EVENT_TRACE_PROPERTIES (Win32 layout, names at LoggerNameOffset /
 * LogFileNameOffset inside Wnode.BufferSize), picks a session slot and reports the
 * session's state back into the properties.
 */
#define _GNU_SOURCE
#include <string.h>
#include "_etw_internal.h"

/* wpt_control_lock is recursive: enable callbacks run under it and may call the API. */
static void lock(void) { pthread_mutex_lock(&wpt_control_lock); }
static void unlock(void) { pthread_mutex_unlock(&wpt_control_lock); }

/* Read a string stored in the properties block at `offset` (0 = none) as UTF-8. */
static ULONG read_name(const EVENT_TRACE_PROPERTIES *p, ULONG offset, int wide, char *out, size_t out_size) {
    out[0] = 0;
    if (!offset) return ERROR_SUCCESS;
    if (offset < sizeof *p || offset >= p->Wnode.BufferSize) return ERROR_INVALID_PARAMETER;
    const unsigned char *base = (const unsigned char *)p + offset;
    size_t room = p->Wnode.BufferSize - offset;
    if (!wide) {
        size_t n = strnlen((const char *)base, room);
        if (n == room || n >= out_size) return ERROR_INVALID_PARAMETER;
        memcpy(out, base, n + 1);
        return ERROR_SUCCESS;
    }
    size_t units = room / 2, n = 0;
    uint16_t tmp[WPT_MAX_PATH];
    for (; n < units && n < WPT_MAX_PATH - 1; n++) {
        memcpy(&tmp[n], base + 2 * n, 2);
        if (!tmp[n]) break;
    }
    if (n == units || n == WPT_MAX_PATH - 1) return ERROR_INVALID_PARAMETER;
    tmp[n] = 0;
    return wpt_utf16_to_utf8(tmp, out, out_size) == 0 ? ERROR_SUCCESS : ERROR_INVALID_PARAMETER;
}

static void write_name(EVENT_TRACE_PROPERTIES *p, ULONG offset, int wide, const char *name) {
    if (!offset || offset < sizeof *p || offset >= p->Wnode.BufferSize) return;
    unsigned char *base = (unsigned char *)p + offset;
    size_t room = p->Wnode.BufferSize - offset;
    if (!wide) {
        size_t n = strlen(name);
        if (n + 1 <= room) memcpy(base, name, n + 1);
        return;
    }
    uint16_t tmp[WPT_MAX_PATH];
    size_t n = wpt_utf8_to_utf16(name, tmp, WPT_MAX_PATH);
    if (2 * (n + 1) <= room) memcpy(base, tmp, 2 * (n + 1));
}

static void fill_properties(wpt_session *s, EVENT_TRACE_PROPERTIES *p, int wide) {
    uint32_t allocated, free_count;
    wpt_session_counts(s, &allocated, &free_count);
    p->Wnode.HistoricalContext = wpt_make_handle(s, 0, 0);
    p->Wnode.ClientContext = s->clock_type;
    p->Wnode.Flags |= WNODE_FLAG_TRACED_GUID;
    p->BufferSize = s->buffer_size / 1024;
    p->MinimumBuffers = s->min_buffers;
    p->MaximumBuffers = s->max_buffers;
    p->MaximumFileSize = s->max_file_size_field;
    p->LogFileMode = s->log_file_mode;
    p->FlushTimer = s->flush_timer_field;
    p->EnableFlags = s->enable_flags;
    p->AgeLimit = s->age_limit;
    p->NumberOfBuffers = allocated;
    p->FreeBuffers = free_count;
    p->EventsLost = atomic_load(&s->events_lost);
    p->BuffersWritten = atomic_load(&s->buffers_written);
    p->LogBuffersLost = atomic_load(&s->log_buffers_lost);
    p->RealTimeBuffersLost = atomic_load(&s->rt_buffers_lost);
    p->LoggerThreadId = (PVOID)(uintptr_t)atomic_load(&s->flusher_tid);
    write_name(p, p->LoggerNameOffset, wide, s->name);
    write_name(p, p->LogFileNameOffset, wide, s->logfile_name);
}

static ULONG start_common(PTRACEHANDLE handle, const char *name, EVENT_TRACE_PROPERTIES *p, int wide) {
    if (!handle || !name || !*name || !p) return ERROR_INVALID_PARAMETER;
    if (p->Wnode.BufferSize < sizeof *p) return ERROR_BAD_LENGTH;
    if (strlen(name) >= WPT_MAX_NAME) return ERROR_INVALID_PARAMETER;
    uint32_t mode = p->LogFileMode;
    if ((mode & EVENT_TRACE_FILE_MODE_SEQUENTIAL) && (mode & EVENT_TRACE_FILE_MODE_CIRCULAR))
        return ERROR_INVALID_PARAMETER;
    uint32_t clock = p->Wnode.ClientContext ? p->Wnode.ClientContext : EVENT_TRACE_CLOCK_PERFCOUNTER;
    if (clock > EVENT_TRACE_CLOCK_CPUCYCLE) return ERROR_INVALID_PARAMETER;
    uint32_t kb = p->BufferSize ? p->BufferSize : 64;
    if (kb > MAX_ETW_BUFFER_SIZE_KB) return ERROR_INVALID_PARAMETER;
    char logfile[WPT_MAX_PATH];
    ULONG rc = read_name(p, p->LogFileNameOffset, wide, logfile, sizeof logfile);
    if (rc != ERROR_SUCCESS) return rc;
    if (!logfile[0] && !(mode & (EVENT_TRACE_REAL_TIME_MODE | EVENT_TRACE_BUFFERING_MODE)))
        return ERROR_BAD_PATHNAME;
    uint64_t unit = (mode & EVENT_TRACE_USE_KBYTES_FOR_SIZE) ? 1024u : 1024u * 1024u;
    uint64_t max_bytes = (uint64_t)p->MaximumFileSize * unit;
    uint32_t buffer_size = kb * 1024;
    if ((mode & EVENT_TRACE_FILE_MODE_CIRCULAR) && (!logfile[0] || max_bytes < 2ull * buffer_size))
        return ERROR_INVALID_PARAMETER;
    if (max_bytes && max_bytes < 2ull * buffer_size) return ERROR_INVALID_PARAMETER;

    lock();
    if (wpt_session_by_name(name)) { unlock(); return ERROR_ALREADY_EXISTS; }
    int kernel = strcmp(name, KERNEL_LOGGER_NAMEA) == 0;
    wpt_session *s = NULL;
    if (kernel) s = &wpt_sessions[WPT_KERNEL_SLOT];
    else {
        for (int i = 1; i < WPPTRACE_MAX_SESSIONS; i++)
            if (atomic_load(&wpt_sessions[i].status) == WPT_FREE) { s = &wpt_sessions[i]; break; }
    }
    if (!s || atomic_load(&s->status) != WPT_FREE) {
        unlock();
        return s ? ERROR_ALREADY_EXISTS : ERROR_NOT_ENOUGH_MEMORY;
    }
    atomic_store(&s->status, WPT_STARTING);
    s->logger_id = kernel ? KERNEL_LOGGER_ID : (uint16_t)(s - wpt_sessions);
    strcpy(s->name, name);
    strcpy(s->logfile_name, logfile);
    s->buffer_size = buffer_size;
    uint32_t streams = (mode & EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) ? 1 : wpt_processor_count();
    s->min_buffers = p->MinimumBuffers ? p->MinimumBuffers : 2 * streams;
    s->max_buffers = p->MaximumBuffers ? p->MaximumBuffers : s->min_buffers + 20;
    if (s->max_buffers < s->min_buffers) s->max_buffers = s->min_buffers;
    s->max_file_size_field = p->MaximumFileSize;
    s->max_file_bytes = max_bytes;
    s->log_file_mode = mode;
    s->flush_timer_field = p->FlushTimer;
    s->flush_interval_ms = (mode & EVENT_TRACE_USE_MS_FLUSH_TIMER) ? p->FlushTimer : p->FlushTimer * 1000;
    if (!s->flush_interval_ms && (mode & EVENT_TRACE_REAL_TIME_MODE)) s->flush_interval_ms = 1000;
    s->clock_type = clock;
    s->enable_flags = p->EnableFlags;
    s->age_limit = p->AgeLimit;
    rc = wpt_session_start(s);
    if (rc != ERROR_SUCCESS) {
        atomic_store(&s->status, WPT_FREE);
        unlock();
        return rc;
    }
    atomic_store_explicit(&s->status, WPT_RUNNING, memory_order_seq_cst);
    *handle = wpt_make_handle(s, 0, 0);
    fill_properties(s, p, wide);
    unlock();
    return ERROR_SUCCESS;
}

ULONG StartTraceA(PTRACEHANDLE handle, LPCSTR name, EVENT_TRACE_PROPERTIES *p) {
    return start_common(handle, name, p, 0);
}

ULONG StartTraceW(PTRACEHANDLE handle, LPCWSTR name, EVENT_TRACE_PROPERTIES *p) {
    char utf8[WPT_MAX_NAME];
    if (!name) return ERROR_INVALID_PARAMETER;
    if (wpt_utf16_to_utf8(name, utf8, sizeof utf8) != 0) return ERROR_INVALID_PARAMETER;
    return start_common(handle, utf8, p, 1);
}

static ULONG control_common(TRACEHANDLE h, const char *name, EVENT_TRACE_PROPERTIES *p, ULONG code, int wide) {
    if (!p) return ERROR_INVALID_PARAMETER;
    if (p->Wnode.BufferSize < sizeof *p) return ERROR_BAD_LENGTH;
    if (code > EVENT_TRACE_CONTROL_FLUSH) return ERROR_INVALID_PARAMETER;
    lock();
    wpt_session *s = NULL;
    if (h) s = wpt_session_from_handle(h);
    else if (name) s = wpt_session_by_name(name);
    if (!s || atomic_load(&s->status) != WPT_RUNNING) {
        unlock();
        return h || name ? ERROR_WMI_INSTANCE_NOT_FOUND : ERROR_INVALID_PARAMETER;
    }
    ULONG rc = ERROR_SUCCESS;
    switch (code) {
    case EVENT_TRACE_CONTROL_QUERY:
        break;
    case EVENT_TRACE_CONTROL_FLUSH:
        rc = wpt_session_flush(s);
        break;
    case EVENT_TRACE_CONTROL_UPDATE:
        if (p->FlushTimer != s->flush_timer_field) {
            s->flush_timer_field = p->FlushTimer;
            uint32_t ms = (s->log_file_mode & EVENT_TRACE_USE_MS_FLUSH_TIMER) ? p->FlushTimer : p->FlushTimer * 1000;
            if (!ms && (s->log_file_mode & EVENT_TRACE_REAL_TIME_MODE)) ms = 1000;
            wpt_session_update_flush_timer(s, ms);
        }
        if (p->MaximumBuffers > s->max_buffers) rc = wpt_session_grow_max(s, p->MaximumBuffers);
        if (rc == ERROR_SUCCESS) {
            char path[WPT_MAX_PATH];
            rc = read_name(p, p->LogFileNameOffset, wide, path, sizeof path);
            if (rc == ERROR_SUCCESS && path[0] && strcmp(path, s->logfile_name) != 0)
                rc = wpt_session_switch_file(s, path);   /* a new file from the next buffer on */
        }
        break;
    case EVENT_TRACE_CONTROL_STOP:
        wpt_providers_session_stopping(s);
        wpt_session_stop(s);
        break;
    }
    fill_properties(s, p, wide);
    if (code == EVENT_TRACE_CONTROL_STOP) {
        atomic_fetch_add(&s->generation, 1);     /* every handle of this session is now stale */
        atomic_store(&s->status, WPT_FREE);
    }
    unlock();
    return rc;
}

ULONG ControlTraceA(TRACEHANDLE h, LPCSTR name, EVENT_TRACE_PROPERTIES *p, ULONG code) {
    return control_common(h, name, p, code, 0);
}

ULONG ControlTraceW(TRACEHANDLE h, LPCWSTR name, EVENT_TRACE_PROPERTIES *p, ULONG code) {
    char utf8[WPT_MAX_NAME];
    if (name && wpt_utf16_to_utf8(name, utf8, sizeof utf8) != 0) return ERROR_INVALID_PARAMETER;
    return control_common(h, name ? utf8 : NULL, p, code, 1);
}

ULONG EnableTrace(ULONG enable, ULONG flags, ULONG level, LPCGUID guid, TRACEHANDLE h) {
    if (!guid || !h || level > 0xFF) return ERROR_INVALID_PARAMETER;
    lock();
    wpt_session *s = wpt_session_from_handle(h);
    if (!s || atomic_load(&s->status) != WPT_RUNNING) {
        unlock();
        return ERROR_INVALID_HANDLE;
    }
    ULONG rc = wpt_enable_provider(s, guid, enable != 0, flags, (UCHAR)level);
    unlock();
    return rc;
}

ULONG EnableTraceEx2(TRACEHANDLE h, LPCGUID guid, ULONG code, UCHAR level, ULONGLONG any,
                     ULONGLONG all, ULONG timeout, PVOID params) {
    (void)all;
    (void)timeout;   /* enabling is synchronous here */
    (void)params;
    switch (code) {
    case EVENT_CONTROL_CODE_ENABLE_PROVIDER:
        /* classic providers see MatchAnyKeyword's low 32 bits as their enable flags */
        return EnableTrace(1, (ULONG)any, level, guid, h);
    case EVENT_CONTROL_CODE_DISABLE_PROVIDER:
        return EnableTrace(0, 0, 0, guid, h);
    case EVENT_CONTROL_CODE_CAPTURE_STATE:
        return ERROR_NOT_SUPPORTED;
    default:
        return ERROR_INVALID_PARAMETER;
    }
}
