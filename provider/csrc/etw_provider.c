/* etw_provider.c: classic provider side: RegisterTraceGuids, enable callbacks, TraceMessage.
 *
 * The logger handle a ControlCallback receives (WNODE_HEADER.HistoricalContext) carries
 * everything the provider asks for later, as on Windows: LoggerId (bits 0-15), level
 * (16-23), session generation (24-31) and enable flags (32-63). GetTraceEnableFlags and
 * GetTraceEnableLevel decode it; TraceMessage uses the LoggerId and generation.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "_etw_internal.h"

#define MAX_REGISTRATIONS 1024
#define MAX_ENABLES       256

typedef struct {
    int used;
    uint32_t generation;
    GUID control;
    WMIDPREQUEST callback;
    void *context;
} registration;

typedef struct {
    int used;
    GUID guid;
    wpt_session *session;
    uint32_t session_generation;
    ULONG flags;
    UCHAR level;
} enable_entry;

static registration g_regs[MAX_REGISTRATIONS];
static enable_entry g_enables[MAX_ENABLES];
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;

/* Callbacks are collected under the lock and run after it is released, so a callback may
 * call any API (TraceMessage, RegisterTraceGuids, ControlTrace ...). */
typedef struct {
    WMIDPREQUEST callback;
    void *context;
    int code;
    TRACEHANDLE logger;
    GUID guid;
    ULONG clock;
} pending_call;

typedef struct {
    pending_call *calls;
    size_t n, cap;
} pending_list;

static void pending_add(pending_list *l, const registration *r, int code, TRACEHANDLE logger,
                        ULONG clock) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        pending_call *c = realloc(l->calls, cap * sizeof *c);
        if (!c) return;
        l->calls = c;
        l->cap = cap;
    }
    pending_call *c = &l->calls[l->n++];
    c->callback = r->callback;
    c->context = r->context;
    c->code = code;
    c->logger = logger;
    c->guid = r->control;
    c->clock = clock;
}

static void pending_run(pending_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        pending_call *c = &l->calls[i];
        WNODE_HEADER w;
        memset(&w, 0, sizeof w);
        w.BufferSize = sizeof w;
        w.HistoricalContext = c->logger;
        w.Guid = c->guid;
        w.ClientContext = c->clock;
        w.Flags = WNODE_FLAG_TRACED_GUID;
        ULONG size = sizeof w;
        c->callback(c->code, c->context, &size, &w);
    }
    free(l->calls);
}

void wpt_providers_after_fork(void) { pthread_mutex_init(&g_reg_lock, NULL); }

static int guid_eq(const GUID *a, const GUID *b) { return memcmp(a, b, sizeof *a) == 0; }

static enable_entry *find_enable(const GUID *g) {
    for (int i = 0; i < MAX_ENABLES; i++)
        if (g_enables[i].used && guid_eq(&g_enables[i].guid, g)) return &g_enables[i];
    return NULL;
}

static int enable_is_live(const enable_entry *e) {
    return atomic_load(&e->session->status) == WPT_RUNNING
        && atomic_load(&e->session->generation) == e->session_generation;
}

ULONG RegisterTraceGuidsA(WMIDPREQUEST cb, PVOID ctx, LPCGUID control, ULONG count,
                          TRACE_GUID_REGISTRATION *regs, LPCSTR mof_path, LPCSTR mof_resource,
                          PTRACEHANDLE out) {
    (void)mof_path;
    (void)mof_resource;   /* MOF class registration has no meaning without WMI */
    if (!cb || !control || !out || (count && !regs)) return ERROR_INVALID_PARAMETER;
    for (ULONG i = 0; i < count; i++)
        if (!regs[i].Guid) return ERROR_INVALID_PARAMETER;
    pending_list pending = {0};
    pthread_mutex_lock(&g_reg_lock);
    int idx = -1;
    for (int i = 0; i < MAX_REGISTRATIONS; i++)
        if (!g_regs[i].used) { idx = i; break; }
    if (idx < 0) {
        pthread_mutex_unlock(&g_reg_lock);
        return ERROR_NOT_ENOUGH_MEMORY;
    }
    registration *r = &g_regs[idx];
    r->used = 1;
    r->generation++;
    r->control = *control;
    r->callback = cb;
    r->context = ctx;
    TRACEHANDLE handle = ((TRACEHANDLE)r->generation << 32) | (TRACEHANDLE)(idx + 1);
    for (ULONG i = 0; i < count; i++) regs[i].RegHandle = (PVOID)(uintptr_t)handle;
    *out = handle;
    /* A session enabled this GUID before the provider registered: enable it now. */
    enable_entry *e = find_enable(control);
    if (e && enable_is_live(e))
        pending_add(&pending, r, WMI_ENABLE_EVENTS, wpt_make_handle(e->session, e->flags, e->level),
                    e->session->clock_type);
    pthread_mutex_unlock(&g_reg_lock);
    pending_run(&pending);
    return ERROR_SUCCESS;
}

ULONG RegisterTraceGuidsW(WMIDPREQUEST cb, PVOID ctx, LPCGUID control, ULONG count,
                          TRACE_GUID_REGISTRATION *regs, LPCWSTR mof_path, LPCWSTR mof_resource,
                          PTRACEHANDLE out) {
    (void)mof_path;
    (void)mof_resource;
    return RegisterTraceGuidsA(cb, ctx, control, count, regs, NULL, NULL, out);
}

ULONG UnregisterTraceGuids(TRACEHANDLE handle) {
    uint32_t idx = (uint32_t)(handle & 0xFFFFFFFF);
    if (idx == 0 || idx > MAX_REGISTRATIONS) return ERROR_INVALID_PARAMETER;
    ULONG rc = ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&g_reg_lock);
    registration *r = &g_regs[idx - 1];
    if (r->used && r->generation == (uint32_t)(handle >> 32)) {
        r->used = 0;
        rc = ERROR_SUCCESS;
    }
    pthread_mutex_unlock(&g_reg_lock);
    return rc;
}

TRACEHANDLE GetTraceLoggerHandle(PVOID buffer) {
    if (!buffer) {
        wpt_set_last_error(ERROR_INVALID_PARAMETER);
        return INVALID_TRACEHANDLE_VALUE;
    }
    TRACEHANDLE h = ((const WNODE_HEADER *)buffer)->HistoricalContext;
    if (!wpt_session_from_handle(h)) {
        wpt_set_last_error(ERROR_INVALID_HANDLE);
        return INVALID_TRACEHANDLE_VALUE;
    }
    wpt_set_last_error(ERROR_SUCCESS);
    return h;
}

ULONG GetTraceEnableFlags(TRACEHANDLE h) {
    if (!wpt_session_from_handle(h)) {
        wpt_set_last_error(ERROR_INVALID_HANDLE);
        return 0;
    }
    wpt_set_last_error(ERROR_SUCCESS);
    return (ULONG)(h >> 32);
}

UCHAR GetTraceEnableLevel(TRACEHANDLE h) {
    if (!wpt_session_from_handle(h)) {
        wpt_set_last_error(ERROR_INVALID_HANDLE);
        return 0;
    }
    wpt_set_last_error(ERROR_SUCCESS);
    return (UCHAR)((h >> 16) & 0xFF);
}

/* Controller side of enabling (called by EnableTrace / EnableTraceEx2). */
ULONG wpt_enable_provider(wpt_session *s, LPCGUID guid, int enable, ULONG flags, UCHAR level) {
    pending_list pending = {0};
    ULONG rc = ERROR_SUCCESS;
    pthread_mutex_lock(&g_reg_lock);
    enable_entry *e = find_enable(guid);
    if (enable) {
        if (!e) {
            for (int i = 0; i < MAX_ENABLES; i++)
                if (!g_enables[i].used) { e = &g_enables[i]; break; }
        }
        if (!e) rc = ERROR_NOT_ENOUGH_MEMORY;
        else {
            /* A classic provider logs to one session: the latest enable wins. */
            e->used = 1;
            e->guid = *guid;
            e->session = s;
            e->session_generation = atomic_load(&s->generation);
            e->flags = flags;
            e->level = level;
            TRACEHANDLE logger = wpt_make_handle(s, flags, level);
            for (int i = 0; i < MAX_REGISTRATIONS; i++)
                if (g_regs[i].used && guid_eq(&g_regs[i].control, guid))
                    pending_add(&pending, &g_regs[i], WMI_ENABLE_EVENTS, logger, s->clock_type);
        }
    } else if (e && e->session == s) {
        TRACEHANDLE logger = wpt_make_handle(s, e->flags, e->level);
        e->used = 0;
        for (int i = 0; i < MAX_REGISTRATIONS; i++)
            if (g_regs[i].used && guid_eq(&g_regs[i].control, guid))
                pending_add(&pending, &g_regs[i], WMI_DISABLE_EVENTS, logger, s->clock_type);
    }
    pthread_mutex_unlock(&g_reg_lock);
    pending_run(&pending);
    return rc;
}

void wpt_providers_session_stopping(wpt_session *s) {
    pending_list pending = {0};
    pthread_mutex_lock(&g_reg_lock);
    for (int k = 0; k < MAX_ENABLES; k++) {
        enable_entry *e = &g_enables[k];
        if (!e->used || e->session != s) continue;
        TRACEHANDLE logger = wpt_make_handle(s, e->flags, e->level);
        e->used = 0;
        for (int i = 0; i < MAX_REGISTRATIONS; i++)
            if (g_regs[i].used && guid_eq(&g_regs[i].control, &e->guid))
                pending_add(&pending, &g_regs[i], WMI_DISABLE_EVENTS, logger, s->clock_type);
    }
    pthread_mutex_unlock(&g_reg_lock);
    pending_run(&pending);
}

/* ---- TraceMessage ------------------------------------------------------------------------ */

#define KNOWN_MESSAGE_FLAGS 0xFFu
#if UINTPTR_MAX > 0xFFFFFFFFu
#define POINTER_FLAG TRACE_MESSAGE_POINTER64
#else
#define POINTER_FLAG TRACE_MESSAGE_POINTER32
#endif

/* The items MessageFlags announce, in record order: sequence (ULONG), GUID or component id
 * (ULONG), timestamp (LONGLONG), thread and process ids (2 ULONG). */
#define SEQUENCE_ITEM_SIZE    sizeof(uint32_t)
#define COMPONENT_ITEM_SIZE   sizeof(uint32_t)
#define TIMESTAMP_ITEM_SIZE   sizeof(int64_t)
#define SYSTEMINFO_ITEM_SIZE  (2 * sizeof(uint32_t))

static inline uint32_t items_size(ULONG f) {
    return (uint32_t)(((f & TRACE_MESSAGE_SEQUENCE) ? SEQUENCE_ITEM_SIZE : 0)
                      + ((f & TRACE_MESSAGE_GUID) ? sizeof(GUID) : 0)
                      + ((f & TRACE_MESSAGE_COMPONENTID) ? COMPONENT_ITEM_SIZE : 0)
                      + ((f & TRACE_MESSAGE_TIMESTAMP) ? TIMESTAMP_ITEM_SIZE : 0)
                      + ((f & TRACE_MESSAGE_SYSTEMINFO) ? SYSTEMINFO_ITEM_SIZE : 0));
}

/* Validate, reserve and write the message header and items; *args = where arguments go. */
static inline ULONG message_begin(TRACEHANDLE h, ULONG flags, const void *guid, USHORT number,
                                  size_t args_size, wpt_reservation *r, unsigned char **args) {
    if ((h & 0xFFFF) == 0 || (h & 0xFFFF) == KERNEL_LOGGER_ID) return ERROR_INVALID_HANDLE;
    if (flags & ~KNOWN_MESSAGE_FLAGS) return ERROR_INVALID_PARAMETER;
    if ((flags & (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID))
        == (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID))
        return ERROR_INVALID_PARAMETER;
    if ((flags & (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID)) && !guid)
        return ERROR_INVALID_PARAMETER;
    if (args_size > TRACE_MESSAGE_MAXIMUM_SIZE) args_size = TRACE_MESSAGE_MAXIMUM_SIZE;  /* too big anyway */
    uint32_t size = (uint32_t)(sizeof(MESSAGE_TRACE_HEADER) + items_size(flags) + args_size);
    /* wpt_reserve answers ERROR_MORE_DATA, before writing anything, when the record does not
     * fit an empty buffer; that implies the documented "arguments + 72 > BufferSize" case
     * (72 = the 0x48 buffer header, and the record adds at least 8 more bytes). */
    wpt_session *s;
    ULONG rc = wpt_reserve(h, size, r, &s);
    if (rc != ERROR_SUCCESS) return rc;
    unsigned char *p = r->record;      /* its first word is stored last, by message_end */
    uint16_t option_flags = (uint16_t)((flags & 0x3F) | POINTER_FLAG);
    memcpy(p + offsetof(MESSAGE_TRACE_HEADER, MessageNumber), &number, sizeof number);
    memcpy(p + offsetof(MESSAGE_TRACE_HEADER, OptionFlags), &option_flags, sizeof option_flags);
    p += sizeof(MESSAGE_TRACE_HEADER);
    if (flags & TRACE_MESSAGE_SEQUENCE) {
        uint32_t seq = 0;   /* without a sequence mode on the session there is no sequence */
        if (s->log_file_mode & EVENT_TRACE_USE_GLOBAL_SEQUENCE)
            seq = atomic_fetch_add_explicit(&wpt_global_sequence, 1, memory_order_relaxed) + 1;
        else if (s->log_file_mode & EVENT_TRACE_USE_LOCAL_SEQUENCE)
            seq = atomic_fetch_add_explicit(&s->local_sequence, 1, memory_order_relaxed) + 1;
        memcpy(p, &seq, SEQUENCE_ITEM_SIZE);
        p += SEQUENCE_ITEM_SIZE;
    }
    if (flags & TRACE_MESSAGE_GUID) { memcpy(p, guid, sizeof(GUID)); p += sizeof(GUID); }
    if (flags & TRACE_MESSAGE_COMPONENTID) { memcpy(p, guid, COMPONENT_ITEM_SIZE); p += COMPONENT_ITEM_SIZE; }
    if (flags & TRACE_MESSAGE_TIMESTAMP) { memcpy(p, &r->timestamp, TIMESTAMP_ITEM_SIZE); p += TIMESTAMP_ITEM_SIZE; }
    if (flags & TRACE_MESSAGE_SYSTEMINFO) {
        uint32_t ids[2] = {wpt_current_tid(), wpt_current_pid()};
        memcpy(p, ids, SYSTEMINFO_ITEM_SIZE);
        p += SYSTEMINFO_ITEM_SIZE;
    }
    *args = p;
    return ERROR_SUCCESS;
}

/* The alignment pad is already zero (free buffers are zero-filled). */
static inline void message_end(wpt_reservation *r, unsigned char *end) {
    wpt_commit(r, TRACE_HEADER_FLAG | TRACE_HEADER_TRACE_MESSAGE | (uint32_t)(end - r->record));
}

ULONG TraceMessageVa(TRACEHANDLE h, ULONG flags, LPCGUID guid, USHORT number, va_list ap) {
    va_list count;
    va_copy(count, ap);
    size_t total = 0;
    for (;;) {
        void *data = va_arg(count, void *);
        if (!data) break;                  /* stop on the NULL pointer before reading a size */
        size_t n = va_arg(count, size_t);
        total += n;
        if (n > TRACE_MESSAGE_MAXIMUM_SIZE || total > TRACE_MESSAGE_MAXIMUM_SIZE) {
            total = TRACE_MESSAGE_MAXIMUM_SIZE + 1;
            break;
        }
    }
    va_end(count);
    wpt_reservation r;
    unsigned char *p;
    ULONG rc = message_begin(h, flags, guid, number, total, &r, &p);
    if (rc != ERROR_SUCCESS) return rc;
    for (;;) {
        void *data = va_arg(ap, void *);
        if (!data) break;
        size_t n = va_arg(ap, size_t);
        memcpy(p, data, n);
        p += n;
    }
    message_end(&r, p);
    return ERROR_SUCCESS;
}

/* Arguments are mostly a few bytes (WPP: ints, pointers, short strings): copy those inline
 * instead of calling memcpy. */
static inline void copy_arg(unsigned char *dst, const unsigned char *src, size_t n) {
    if (n <= 16) {
        if (n >= 8) {
            uint64_t a, b;
            memcpy(&a, src, 8);
            memcpy(&b, src + n - 8, 8);
            memcpy(dst, &a, 8);
            memcpy(dst + n - 8, &b, 8);
        } else if (n >= 4) {
            uint32_t a, b;
            memcpy(&a, src, 4);
            memcpy(&b, src + n - 4, 4);
            memcpy(dst, &a, 4);
            memcpy(dst + n - 4, &b, 4);
        } else {
            for (size_t i = 0; i < n; i++) dst[i] = src[i];
        }
    } else {
        memcpy(dst, src, n);
    }
}

static inline ULONG trace_arg_array(TRACEHANDLE h, ULONG flags, LPCGUID guid, USHORT number,
                                    const WPPTRACE_ARG *args, ULONG count, size_t total) {
    wpt_reservation r;
    unsigned char *p;
    ULONG rc = message_begin(h, flags, guid, number, total, &r, &p);
    if (rc != ERROR_SUCCESS) return rc;
    for (ULONG i = 0; i < count; i++) {
        copy_arg(p, args[i].Data, args[i].Size);
        p += args[i].Size;
    }
    message_end(&r, p);
    return ERROR_SUCCESS;
}

ULONG wpptrace_trace_args(TRACEHANDLE h, ULONG flags, LPCGUID guid, USHORT number,
                          const WPPTRACE_ARG *args, ULONG count) {
    size_t total = 0;
    if (count && !args) return ERROR_INVALID_PARAMETER;
    for (ULONG i = 0; i < count; i++) {
        if (!args[i].Data && args[i].Size) return ERROR_INVALID_PARAMETER;
        total += args[i].Size;
        if (args[i].Size > TRACE_MESSAGE_MAXIMUM_SIZE || total > TRACE_MESSAGE_MAXIMUM_SIZE) {
            total = TRACE_MESSAGE_MAXIMUM_SIZE + 1;
            break;
        }
    }
    return trace_arg_array(h, flags, guid, number, args, count, total);
}

ULONG wpptrace_trace_packed(TRACEHANDLE h, ULONG flags, const char *guid, USHORT number,
                            const char *payload, size_t size) {
    if (!payload && size) return ERROR_INVALID_PARAMETER;
    wpt_reservation r;
    unsigned char *p;
    ULONG rc = message_begin(h, flags, guid, number, size, &r, &p);
    if (rc != ERROR_SUCCESS) return rc;
    if (size) memcpy(p, payload, size);
    message_end(&r, p + size);
    return ERROR_SUCCESS;
}

#define INLINE_ARGS 16

ULONG TraceMessage(TRACEHANDLE h, ULONG flags, LPCGUID guid, USHORT number, ...) {
    /* One pass into a local array for the usual few arguments (TraceMessageVa needs a second
     * pass over a va_copy, which costs a store-forwarding stall per call). */
    WPPTRACE_ARG args[INLINE_ARGS];
    ULONG count = 0;
    size_t total = 0;
    int more = 0;
    va_list ap;
    /* The Win32 prototype ends its named parameters with a USHORT; every ABI we build for
     * finds the variadic area after it the same way, so silence clang's -Wvarargs here. */
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wvarargs"
#endif
    va_start(ap, number);
    for (;;) {
        void *data = va_arg(ap, void *);
        if (!data) break;                  /* stop on the NULL pointer before reading a size */
        if (count == INLINE_ARGS) { more = 1; break; }
        args[count].Data = data;
        args[count].Size = va_arg(ap, size_t);
        total += args[count].Size;
        if (args[count].Size > TRACE_MESSAGE_MAXIMUM_SIZE || total > TRACE_MESSAGE_MAXIMUM_SIZE)
            total = TRACE_MESSAGE_MAXIMUM_SIZE + 1;     /* too big; never wraps */
        count++;
    }
    va_end(ap);
    if (!more) {
        if (total > TRACE_MESSAGE_MAXIMUM_SIZE) total = TRACE_MESSAGE_MAXIMUM_SIZE + 1;  /* too big */
        return trace_arg_array(h, flags, guid, number, args, count, total);
    }
    va_start(ap, number);
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
    ULONG rc = TraceMessageVa(h, flags, guid, number, ap);
    va_end(ap);
    return rc;
}
