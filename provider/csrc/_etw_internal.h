/* _etw_internal.h: the session core's internal interface (not part of the public API).
 *
 * A session is three things kept apart so that cross-process sessions later only swap the
 * transport: (1) the buffer pool and per-processor reservation (etw_session.c: the memory
 * could live in a shared mapping), (2) the flush thread that hands finished buffers to the
 * sinks, (3) the sinks: the .etl file writer (etw_logfile.c) and real-time delivery
 * (etw_realtime.c). Providers (etw_provider.c) only use wpt_message_begin/end.
 */
#ifndef WPPTRACE_ETW_INTERNAL_H
#define WPPTRACE_ETW_INTERNAL_H
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include "wpptrace_etw.h"

#define WPT_BUFFER_HEADER_SIZE 0x48u
#define WPT_CLOSED             0x80000000u   /* in the low word of wpt_buffer.state */
#define WPT_MAX_NAME           1024
#define WPT_MAX_PATH           4096
#define WPT_KERNEL_SLOT        0             /* table slot of the NT Kernel Logger */
#define WPT_FILETIME_UNIX_EPOCH 116444736000000000LL

enum { WPT_FREE = 0, WPT_STARTING = 1, WPT_RUNNING = 2, WPT_STOPPING = 3 };

typedef struct wpt_buffer {
    /* generation << 32 | bytes reserved (incl. the 0x48 header) | WPT_CLOSED. Reservation is
     * a CAS on this word; the generation makes a stale writer's CAS fail after recycling. */
    _Atomic uint64_t state;
    uint32_t processor;              /* ProcessorIndex of the stream it belongs to */
    struct wpt_buffer *next;         /* free list / flush queue / graveyard link */
    unsigned char *data;             /* BufferSize bytes, mmap'ed, never unmapped; all zero
                                      * while free, so an unwritten record reads as 0 */
    uint32_t capacity;               /* bytes mapped at data */
} wpt_buffer;

typedef struct {
    _Atomic(wpt_buffer *) current;
    char pad[64 - sizeof(void *)];
} __attribute__((aligned(64))) wpt_cpu_slot;

typedef struct wpt_logfile wpt_logfile;
typedef struct wpt_rt_hub wpt_rt_hub;

typedef struct wpt_session {
    _Atomic uint32_t status;         /* WPT_FREE ... */
    _Atomic uint32_t generation;     /* 8 bits used in handles */
    uint16_t logger_id;
    char name[WPT_MAX_NAME];         /* UTF-8 */
    char logfile_name[WPT_MAX_PATH]; /* UTF-8, "" if none */

    /* configuration */
    uint32_t buffer_size;            /* bytes */
    uint32_t min_buffers, max_buffers;
    uint32_t max_file_size_field;    /* as given (MB or KB) */
    uint64_t max_file_bytes;         /* 0 = unlimited */
    uint32_t log_file_mode;
    uint32_t flush_timer_field;
    uint32_t flush_interval_ms;      /* 0 = flush when full only */
    uint32_t clock_type;
    uint32_t enable_flags;
    int32_t  age_limit;
    uint32_t nslots;                 /* processor streams: ncpu, or 1 */
    wpt_cpu_slot *slots;             /* allocated once per table entry, never freed */
    uint32_t slots_capacity;

    /* clock */
    int64_t start_raw;               /* raw clock at StartTime */
    int64_t start_filetime;
    int64_t boot_filetime;
    int64_t filetime_offset;         /* clock 2: FILETIME = mono100 + offset */
    uint32_t cpu_mhz;
    uint32_t start_tid, start_pid;

    /* buffer pool */
    pthread_mutex_t pool_lock;
    wpt_buffer *free_list;
    uint32_t allocated, free_count;
    wpt_buffer **all;                /* max_buffers entries: every buffer of this run */
    wpt_buffer *graveyard;           /* buffers of earlier runs of this slot (see etw_session.c) */

    /* flush thread */
    pthread_mutex_t flush_lock;
    pthread_cond_t  flush_cond;      /* wakes the flusher */
    pthread_cond_t  flush_done;      /* wakes FLUSH/STOP callers */
    wpt_buffer *fq_head, *fq_tail;
    uint64_t flush_requests, flush_completed;
    int stop_requested, hold_flush;
    int switch_pending;              /* UPDATE asked for a new log file: next_logfile */
    ULONG switch_result;
    char next_logfile[WPT_MAX_PATH];
    pthread_t flusher;
    int flusher_started;
    _Atomic uint32_t flusher_tid;

    /* statistics */
    _Atomic uint32_t events_lost;
    _Atomic uint32_t buffers_written;  /* header buffer included */
    _Atomic uint32_t log_buffers_lost;
    _Atomic uint32_t rt_buffers_lost;
    _Atomic uint32_t local_sequence;
    int64_t buffer_sequence;         /* last SequenceNumber given (flusher only) */

    /* sinks */
    wpt_logfile *logfile;
    wpt_rt_hub *realtime;
} wpt_session;

extern wpt_session wpt_sessions[WPPTRACE_MAX_SESSIONS];
extern pthread_mutex_t wpt_control_lock;   /* StartTrace/ControlTrace/EnableTrace */
extern _Atomic uint32_t wpt_global_sequence;

/* ---- clock and process facts (etw_clock.c) ---- */
int64_t  wpt_filetime_now(void);
static inline int64_t wpt_mono100_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100;
}
uint32_t wpt_cpu_mhz(void);
uint32_t wpt_processor_count(void);
uint32_t wpt_current_tid_slow(void);
uint32_t wpt_current_pid_slow(void);
extern __thread uint32_t wpt_tls_tid;      /* 0 until first use (and in a forked child) */
extern uint32_t wpt_cached_pid;
static inline uint32_t wpt_current_tid(void) {
    uint32_t t = wpt_tls_tid;
    return __builtin_expect(t != 0, 1) ? t : wpt_current_tid_slow();
}
static inline uint32_t wpt_current_pid(void) {
    uint32_t p = wpt_cached_pid;
    return __builtin_expect(p != 0, 1) ? p : wpt_current_pid_slow();
}
int64_t  wpt_boot_filetime(void);
void     wpt_set_last_error(ULONG code);

static inline uint64_t wpt_rdtsc(void) {
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi, aux;
    __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    return ((uint64_t)hi << 32) | lo;
#else
    return (uint64_t)wpt_mono100_now() * 100u;   /* "cycles" at 1000 MHz */
#endif
}

/* The session clock (ClientContext): 1 = CLOCK_MONOTONIC in 100 ns ticks (QPC with PerfFreq
 * 10^7); 2 = FILETIME, taken as the wall clock at StartTrace plus monotonic time since, so it
 * never steps back when the system time is set (streams must not go back in time); 3 = the
 * CPU cycle counter (CpuSpeedInMHz calibrated against CLOCK_MONOTONIC). */
static inline int64_t wpt_raw_now(const wpt_session *s) {
    switch (s->clock_type) {
    case EVENT_TRACE_CLOCK_CPUCYCLE:   return (int64_t)wpt_rdtsc();
    case EVENT_TRACE_CLOCK_SYSTEMTIME: return wpt_mono100_now() + s->filetime_offset;
    default:                           return wpt_mono100_now();
    }
}

/* ---- text (etw_clock.c) ---- */
/* UTF-8 -> UTF-16LE; returns code units written (without NUL), out always NUL-terminated. */
size_t wpt_utf8_to_utf16(const char *in, uint16_t *out, size_t out_units);
/* UTF-16 -> UTF-8; returns 0 on success, -1 if it does not fit. */
int    wpt_utf16_to_utf8(const uint16_t *in, char *out, size_t out_size);

/* ---- handles ---- */
static inline TRACEHANDLE wpt_make_handle(const wpt_session *s, ULONG flags, UCHAR level) {
    return (TRACEHANDLE)s->logger_id | ((TRACEHANDLE)level << 16)
         | ((TRACEHANDLE)(atomic_load(&s->generation) & 0xFF) << 24) | ((TRACEHANDLE)flags << 32);
}
/* Session for a handle (running or not; NULL if the handle cannot name one). */
wpt_session *wpt_session_from_handle(TRACEHANDLE h);
wpt_session *wpt_session_by_name(const char *name);

/* ---- session core (etw_session.c) ---- */
ULONG wpt_session_start(wpt_session *s);   /* config filled in; allocates, opens sinks */
ULONG wpt_session_stop(wpt_session *s);
ULONG wpt_session_flush(wpt_session *s);
ULONG wpt_session_switch_file(wpt_session *s, const char *path);   /* UPDATE LogFileName */
void  wpt_session_update_flush_timer(wpt_session *s, uint32_t interval_ms);
ULONG wpt_session_grow_max(wpt_session *s, uint32_t max_buffers);
void  wpt_session_counts(wpt_session *s, uint32_t *allocated, uint32_t *free_count);
/* Build the header buffer (buffer 0) into out (buffer_size bytes) with the current totals:
 * writes bytes [0, SavedOffset) only; the caller fills the rest with 0xFF once. */
void  wpt_build_header_buffer(wpt_session *s, unsigned char *out, int64_t end_time,
                              uint32_t buffers_written);


typedef struct {
    wpt_session *session;
    wpt_cpu_slot *slot;
    wpt_buffer *buffer;
    unsigned char *record;
    uint32_t aligned;
    int64_t timestamp;
} wpt_reservation;

/* Slow paths of wpt_reserve (etw_session.c): a new buffer for an empty slot (pool lock);
 * a closed buffer out of its slot and into the flush queue (flush lock). */
ULONG wpt_install_buffer(wpt_session *s, wpt_cpu_slot *slot, uint32_t processor, TRACEHANDLE h);
void  wpt_retire(wpt_session *s, wpt_cpu_slot *slot, wpt_buffer *b);

/* The CPU we run on: glibc >= 2.35 keeps it in the thread's rseq area (one load instead of
 * sched_getcpu's call); elsewhere sched_getcpu. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35)) \
    && defined(__GNUC__) && (defined(__x86_64__) || defined(__aarch64__))
#include <sys/rseq.h>
static inline int wpt_cpu_number(void) {
    if (__rseq_size) {
        const struct rseq *rs = (const struct rseq *)(void *)((char *)__builtin_thread_pointer() + __rseq_offset);
        int cpu = (int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
        if (cpu >= 0) return cpu;
    }
    return sched_getcpu();
}
#else
static inline int wpt_cpu_number(void) { return sched_getcpu(); }
#endif

static inline uint32_t wpt_current_stream(const wpt_session *s) {
    if (s->nslots <= 1) return 0;     /* 0: a handle guessed before the first start */
    int cpu = wpt_cpu_number();
    if (cpu < 0) cpu = 0;
    return (uint32_t)cpu % s->nslots;
}

/* Enter the session named by handle and reserve `aligned` bytes in the current processor's
 * buffer (zero-filled). On success the caller writes the record except its first 4 bytes,
 * then wpt_commit stores those (never 0: they hold the size): that store is what tells the
 * flusher the record is complete, so a commit costs no atomic read-modify-write. */
static inline ULONG wpt_reserve(TRACEHANDLE h, uint32_t size, wpt_reservation *r, wpt_session **session_out) {
    uint32_t id = (uint32_t)(h & 0xFFFF);
    if (id == 0 || id >= WPPTRACE_MAX_SESSIONS) return ERROR_INVALID_HANDLE;   /* 0, kernel */
    wpt_session *s = &wpt_sessions[id];
    if (!s->slots) return ERROR_INVALID_HANDLE;
    uint32_t stream = wpt_current_stream(s);
    wpt_cpu_slot *slot = &s->slots[stream];
    if (atomic_load_explicit(&s->status, memory_order_acquire) != WPT_RUNNING
        || (atomic_load_explicit(&s->generation, memory_order_relaxed) & 0xFF) != ((h >> 24) & 0xFF))
        return ERROR_INVALID_HANDLE;
    *session_out = s;
    uint32_t aligned = (size + 7u) & ~7u;
    if (size > 0xFFFF || aligned > s->buffer_size - WPT_BUFFER_HEADER_SIZE)
        return ERROR_MORE_DATA;
    for (;;) {
        wpt_buffer *b = atomic_load_explicit(&slot->current, memory_order_acquire);
        if (!b) {
            ULONG rc = wpt_install_buffer(s, slot, stream, h);
            if (rc != ERROR_SUCCESS) {
                if (rc != ERROR_INVALID_HANDLE)
                    atomic_fetch_add_explicit(&s->events_lost, 1, memory_order_relaxed);
                return rc;
            }
            continue;
        }
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        for (;;) {
            uint32_t off = (uint32_t)st;
            if (off & WPT_CLOSED) break;
            if (off + aligned > s->buffer_size) {
                atomic_fetch_or_explicit(&b->state, WPT_CLOSED, memory_order_acq_rel);
                break;
            }
            int64_t ts = wpt_raw_now(s);
            if (atomic_compare_exchange_weak_explicit(&b->state, &st, st + aligned,
                                                      memory_order_acq_rel, memory_order_acquire)) {
                r->session = s;
                r->slot = slot;
                r->buffer = b;
                r->record = b->data + off;
                r->aligned = aligned;
                r->timestamp = ts;
                return ERROR_SUCCESS;
            }
        }
        wpt_retire(s, slot, b);
    }
}


static inline void wpt_commit(wpt_reservation *r, uint32_t first_word) {
    atomic_store_explicit((_Atomic uint32_t *)(void *)r->record, first_word, memory_order_release);
}

/* ---- .etl file sink (etw_logfile.c) ---- */
ULONG wpt_logfile_open(wpt_session *s);
ULONG wpt_logfile_check_path(const char *path);   /* can we create it? (no truncation) */
/* Write one finished data buffer; returns 0, or 1 if dropped (file full). */
int   wpt_logfile_write(wpt_session *s, const unsigned char *buffer);
void  wpt_logfile_update_header(wpt_session *s, int final);
void  wpt_logfile_close(wpt_session *s);
void  wpt_logfile_abandon(wpt_session *s);  /* forked child: drop the file without writing */

/* ---- real-time sink (etw_realtime.c) ---- */
ULONG wpt_rt_open(wpt_session *s);
/* Returns the number of subscribers that received the buffer. */
int   wpt_rt_deliver(wpt_session *s, const unsigned char *buffer, uint32_t size);
void  wpt_rt_end(wpt_session *s);            /* session stopped: consumers drain then EOF */

/* ---- providers (etw_provider.c) ---- */
/* A session stops: send WMI_DISABLE_EVENTS to the providers it enabled. */
void  wpt_providers_session_stopping(wpt_session *s);
void  wpt_providers_after_fork(void);      /* forked child: fresh lock */
ULONG wpt_enable_provider(wpt_session *s, LPCGUID guid, int enable, ULONG flags, UCHAR level);

#endif
