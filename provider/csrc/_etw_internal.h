/* _etw_internal.h: the session core's internal interface (not part of the public API).
 *
 * A session is four things kept apart (docs/cross-process-sessions.md has the picture):
 * (1) its buffers: one memory region (wpt_shm: header, per-processor slots, buffer
 *     descriptors, buffer data) that every writer maps; reservation, a new buffer for a
 *     slot and retiring a full one are lock-free operations on it (this header and
 *     etw_buffers.c), so a writer never waits and never takes a lock;
 * (2) the flusher (etw_session.c), which writes retired buffers to the sinks: it runs in the
 *     process hosting the session;
 * (3) the sinks: the .etl file writer (etw_logfile.c) and real-time delivery (etw_realtime.c);
 * (4) the control plane: a per-user runtime directory with a registry of sessions and
 *     enabled providers (etw_registry.c), session host processes with a control socket
 *     (etw_host.c), provider processes with a notification socket (etw_endpoint.c), and the
 *     framing they speak (etw_ipc.c).
 * A private session (EVENT_TRACE_PRIVATE_LOGGER_MODE) keeps (1)-(3) inside the process that
 * started it, in anonymous memory; any other session lives in a host process that the
 * starting process forks, in a memfd that writers map after asking the host for it.
 */
#ifndef WPPTRACE_ETW_INTERNAL_H
#define WPPTRACE_ETW_INTERNAL_H
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>
#include "wpptrace_etw.h"

#define WPT_BUFFER_HEADER_SIZE ((uint32_t)sizeof(WMI_BUFFER_HEADER))
#define WPT_CLOSED             0x80000000u   /* in the low word of wpt_desc.state */
#define WPT_MAX_NAME           1024
#define WPT_MAX_PATH           4096
#define WPT_KERNEL_SLOT        0             /* table slot of the NT Kernel Logger */
#define WPT_FILETIME_UNIX_EPOCH 116444736000000000LL

/* Bounds on what a session may ask for (ERROR_INVALID_PARAMETER beyond them). */
#define WPT_MAX_BUFFERS        65536u
#define WPT_MAX_POOL_BYTES     (4ull << 30)  /* MaximumBuffers x BufferSize */
#define WPT_MAX_FLUSH_MS       (7ull * 24 * 3600 * 1000)   /* longer timers are clamped */
/* A reservation whose writer neither committed nor died within this time is abandoned. */
#define WPT_COMMIT_WAIT_MS     500
#define WPT_ZERO_RUNS          256   /* spans the flusher recounts as their writers go on */

/* What a failed system call's errno `e` says when it is a shortage of this process or of the
 * system, on every path alike: no descriptor left (the process's or the system's limit),
 * ERROR_TOO_MANY_OPEN_FILES; no memory, ERROR_OUTOFMEMORY ("cannot allocate";
 * ERROR_NOT_ENOUGH_MEMORY is an event dropped for want of a free buffer). Anything else is the
 * caller's `otherwise` (a path at fault, a refusal). */
static inline ULONG wpt_win32_of_errno(int e, ULONG otherwise) {
    return e == EMFILE || e == ENFILE ? ERROR_TOO_MANY_OPEN_FILES
         : e == ENOMEM || e == ENOBUFS ? ERROR_OUTOFMEMORY
         : otherwise;
}

enum { WPT_FREE = 0, WPT_STARTING = 1, WPT_RUNNING = 2, WPT_STOPPING = 3, WPT_STOPPED = 4 };

/* ---- shared session memory ------------------------------------------------------------- */

#define WPT_SHM_MAGIC   0x314d4853u   /* "SHM1" */
#define WPT_SHM_VERSION 2u

/* Buffer life: FREE (in the free stack) -> ACTIVE (a slot's current buffer; closed when full)
 * -> RETIRED (out of its slot, waiting for the flusher) -> FLUSHING -> FREE, or QUARANTINED
 * when a live writer's reservation in it had to be abandoned (never reused: that writer may
 * still store into it). Each install starts a new generation of the buffer; its phase word
 * carries the generation next to the phase, so a retiring writer that was held up between
 * emptying the slot and setting RETIRED cannot mark a later generation of the same buffer,
 * which the flusher would then take while writers still fill it. */
enum { WPT_BUF_FREE = 0, WPT_BUF_ACTIVE = 1, WPT_BUF_RETIRED = 2, WPT_BUF_FLUSHING = 3,
       WPT_BUF_QUARANTINED = 4 };
static inline uint64_t wpt_phase(uint32_t generation, uint32_t phase) {
    return ((uint64_t)generation << 32) | phase;
}

/* A record's first word while it is being written: its size, and bit 31 clear (every
 * committed record kind has bit 31 set). The second word holds the writer's thread id until
 * the writer stores the record's own bytes 4-7, so the flusher can tell a dead writer. */
#define WPT_RECORD_PENDING     0x00010000u

typedef struct {
    _Atomic uint64_t word;     /* installs << 32 | (buffer index + 1); index 0 = no buffer */
    char pad[56];
} wpt_slot;
/* The index of a slot the flusher sealed at STOP: above any capacity, so wpt_reserve fails
 * at once and an install still in progress loses its CAS. */
#define WPT_SLOT_SEALED 0xFFFFFFFFu

typedef struct {
    _Atomic uint64_t state;    /* generation << 32 | bytes reserved (incl. header) | WPT_CLOSED */
    _Atomic uint64_t phase;    /* generation << 32 | WPT_BUF_* (wpt_phase) */
    _Atomic uint32_t next;     /* free stack link: index + 1 */
    _Atomic uint32_t processor;   /* stream it was installed in */
    _Atomic uint32_t stream_seq;  /* its install number in that stream (1, 2, ...) */
    _Atomic uint32_t backed;   /* memory committed (fallocate) */
    uint32_t pad[8];
} wpt_desc;
_Static_assert(sizeof(wpt_desc) == 64, "one descriptor per cache line");

/* Clock type 3: the cycle counter scaled to exactly the integer CpuSpeedInMHz the header
 * says, so raw / MHz converts without drift: raw = base + (cycles - base) * mult / 2^31 (mult:
 * that MHz over the counter's measured rate). Set once by the session's creator, read by
 * every writer; mult 0 (a creator that did not scale) leaves the counter as it is. */
typedef struct {
    uint64_t base, mult;
} wpt_cycle_scale;

typedef struct {
    /* set once by the creator */
    uint32_t magic, version;
    uint64_t map_size;
    uint32_t buffer_size, nslots, capacity, logger_id;
    uint32_t generation;       /* the registry's whole generation (older builds: its low 8 bits) */
    uint32_t log_file_mode, clock_type, owner_pid;
    int64_t  filetime_offset;
    uint64_t slots_offset, desc_offset, data_offset;
    wpt_cycle_scale cycles;    /* clock type 3 (zero from a build without it) */
    /* read on every event */
    _Alignas(64) _Atomic uint32_t status;
    _Atomic uint32_t max_buffers;
    /* written by events */
    _Alignas(64) _Atomic uint32_t events_lost;
    _Atomic uint32_t local_sequence;
    _Atomic uint32_t global_sequence;
    /* pool */
    _Alignas(64) _Atomic uint64_t free_top;     /* tag << 32 | index + 1 */
    _Atomic int32_t  free_count;
    _Atomic uint32_t next_unused;               /* buffers taken into use so far */
    /* flusher wake-up (a futex word) */
    _Alignas(64) _Atomic uint32_t wake;
    _Atomic uint32_t flusher_sleeping;
    _Alignas(64) char end[];
} wpt_shm;

/* What a process needs to write into a session. Immutable once published in wpt_views (but
 * for retiring it); a view that is replaced is kept (a writer may still be reading it) with its
 * memory swapped for zero pages, where every check fails. */
typedef struct wpt_view {
    wpt_shm *sh;
    wpt_slot *slots;
    wpt_desc *desc;
    unsigned char *data;
    uint32_t buffer_size, nslots, capacity;
    uint16_t logger_id;
    uint8_t private_pool;      /* anonymous memory of a private session */
    uint32_t registry_generation;   /* the session's whole registry generation (handles carry
                                     * its low 8 bits) */
    _Atomic uint32_t *sequence;   /* the counter EVENT_TRACE_USE_GLOBAL_SEQUENCE uses */
    int memfd;                 /* to commit new buffers; -1 for a private pool */
    void *map;
    size_t map_size;
    _Atomic uint64_t *mapped;  /* per buffer: page tables of this process already filled */
    _Atomic uint32_t retired;  /* taken by the one wpt_view_retire that swaps its memory */
    struct wpt_view *older;
} wpt_view;

extern _Atomic(wpt_view *) wpt_views[WPPTRACE_MAX_SESSIONS];
extern _Atomic uint32_t wpt_global_sequence;

static inline uint32_t wpt_slot_of_id(uint32_t logger_id) {
    return logger_id == KERNEL_LOGGER_ID ? WPT_KERNEL_SLOT : logger_id;
}

/* ---- clock and process facts (etw_clock.c) ---- */
int64_t  wpt_filetime_now(void);
static inline int64_t wpt_mono100_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 10000000 + ts.tv_nsec / 100;
}
static inline int64_t wpt_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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
void     wpt_set_last_error(ULONG code);
/* Start time of a process (/proc/<pid>/stat field 22), 0 if it is gone or a zombie. */
uint64_t wpt_process_start(uint32_t pid);
/* 1 if process `pid` runs and began at `start` (a wpt_process_start), 0 if it is gone or another
 * process has its pid, -1 if /proc could not tell (no descriptor or memory left): never taken
 * for gone, which frees the entries of live sessions. */
int      wpt_process_is(uint32_t pid, uint64_t start);
/* 1 only if /proc says process `pid` (thread `tid`) is gone or a zombie: 0 if it runs or
 * /proc could not tell (no descriptor or memory left), never taken for gone. */
int      wpt_process_gone(uint32_t pid);
int      wpt_thread_gone(uint32_t tid);
/* Fault injection for tests: the next `count` allocations fail (wpptrace_debug_fail_allocations). */
int      wpt_injected_failure(void);

#ifdef WPT_TEST_POINTS
/* the cycle counter a test sets (a function of its own), and the rate calibration finds
 * (cycles per ns; 0: measured) */
extern uint64_t (*wpt_test_cycles)(void);
extern double wpt_test_cycles_per_ns;
#endif

static inline uint64_t wpt_rdtsc(void) {
#ifdef WPT_TEST_POINTS
    if (wpt_test_cycles) return wpt_test_cycles();
#endif
#if defined(__x86_64__) || defined(__i386__)
    uint32_t lo, hi, aux;
    __asm__ __volatile__("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    return ((uint64_t)hi << 32) | lo;
#else
    return (uint64_t)wpt_mono100_now() * 100u;   /* "cycles" at 1000 MHz */
#endif
}

/* The cycle counter value `cycles` on the session's scale. Split multiply: no 128-bit
 * integers on every target, and neither product overflows (mult < 2^32, the high half of a
 * distance below 2^63 is below 2^31). */
static inline uint64_t wpt_cycles_scaled(const wpt_cycle_scale *c, uint64_t cycles) {
    if (!c->mult) return cycles;
    uint64_t d = cycles - c->base;
    int before = (int64_t)d < 0;      /* another processor's counter a little behind the base */
    if (before) d = (uint64_t)0 - d;
    uint64_t scaled = (((d >> 32) * c->mult) << 1) + (((d & 0xFFFFFFFFu) * c->mult) >> 31);
    return before ? c->base - scaled : c->base + scaled;
}

/* The session clock (ClientContext): 1 = CLOCK_MONOTONIC in 100 ns ticks (QPC with PerfFreq
 * 10^7); 2 = FILETIME, taken as the wall clock at StartTrace plus monotonic time since, so it
 * never steps back when the system time is set (streams must not go back in time); 3 = the
 * CPU cycle counter, scaled to the integer CpuSpeedInMHz calibrated against CLOCK_MONOTONIC
 * (`cycles`: the session's scale). All three are the same in every process of the machine,
 * so records from several processes order by time. */
static inline int64_t wpt_raw_now_of(uint32_t clock_type, int64_t filetime_offset,
                                     const wpt_cycle_scale *cycles) {
    switch (clock_type) {
    case EVENT_TRACE_CLOCK_CPUCYCLE:   return (int64_t)wpt_cycles_scaled(cycles, wpt_rdtsc());
    case EVENT_TRACE_CLOCK_SYSTEMTIME: return wpt_mono100_now() + filetime_offset;
    default:                           return wpt_mono100_now();
    }
}

/* A session's clock facts at StartTrace: a raw value of its clock and the FILETIME of the
 * same instant (the header event's SystemTime and StartTime), FILETIME - CLOCK_MONOTONIC in
 * 100 ns ticks (clock 2's offset), and the boot time (FILETIME). Each offset between clocks is
 * read bracketed and kept by the process while the clocks are not stepped, so the sessions a
 * process starts agree on it (etw_clock.c). Called under wpt_control_lock. */
typedef struct {
    int64_t raw, start_filetime, filetime_offset, boot_filetime;
    wpt_cycle_scale cycles;            /* clock type 3's scale (else zero) */
} wpt_clock_anchor;
void wpt_session_clock(uint32_t clock_type, wpt_clock_anchor *a);

/* A thread of the core (flusher, endpoint, senders): it never runs the application's signal
 * handlers, whichever signals the application directs at the process. */
int      wpt_thread_create(pthread_t *thread, void *(*main)(void *), void *arg);
/* The threads of this process that are not the core's (-1: /proc cannot tell; at least 1 while
 * the core's threads keep starting and ending across every listing), and the core's
 * count of its own threads made right in a forked child (called in its only thread). */
int      wpt_application_threads(void);
void     wpt_core_threads_after_fork(void);

/* ---- text (etw_clock.c) ---- */
/* UTF-8 -> UTF-16LE; returns code units written (without NUL), out always NUL-terminated. */
size_t wpt_utf8_to_utf16(const char *in, uint16_t *out, size_t out_units);
/* UTF-16 -> UTF-8; returns 0 on success, -1 if it does not fit. */
int    wpt_utf16_to_utf8(const uint16_t *in, char *out, size_t out_size);
/* A session name: 1..WPT_MAX_NAME-1 bytes of UTF-8 without control characters. */
int    wpt_valid_name(const char *name);

/* ---- handles ---- */
static inline TRACEHANDLE wpt_handle_of(uint16_t logger_id, uint8_t generation, ULONG flags,
                                        UCHAR level) {
    return (TRACEHANDLE)logger_id | ((TRACEHANDLE)level << 16)
         | ((TRACEHANDLE)generation << 24) | ((TRACEHANDLE)flags << 32);
}
static inline uint32_t wpt_handle_slot(TRACEHANDLE h) {
    uint32_t id = (uint32_t)(h & 0xFFFF);
    if (id == KERNEL_LOGGER_ID) return WPT_KERNEL_SLOT;
    if (id == WPT_KERNEL_SLOT || id >= WPPTRACE_MAX_SESSIONS) return UINT32_MAX;
    return id;
}
static inline uint8_t wpt_handle_generation(TRACEHANDLE h) { return (uint8_t)(h >> 24); }
/* A handle has 8 bits of its session's registry generation: after 256 more sessions in its
 * slot it names the newest. This process keeps, per slot and 8-bit value, the whole generation
 * of the last session it handed a handle out for (StartTrace, ControlTrace, QueryAllTraces,
 * ControlCallbacks; etw_registry.c): a handle it gave out for an older session than the one
 * its slot holds now, and none for that one, is stale (wpt_handle_stale), not the newer
 * session's. So is every value handed out before a clean-up removed the registry, but its own
 * sessions' that run on, and a stopped session's left out of the registry made again. A handle
 * of the same value it also got for the newer session cannot be told from it; nor one this
 * process never handed out (it is taken as it names). */
void wpt_handle_issued(uint32_t slot, uint32_t generation);
/* How many times this process found a registry replaced (a clean-up) and made its handles
 * stale. A handle resolved in the registry and handed out after its lock is let go is handed
 * out with the count read under the lock (wpt_handle_issued_in): 0 if it changed meanwhile, the
 * value then made stale (the session was in a registry removed since: its host ended with it). */
uint32_t wpt_handle_epoch(void);
int  wpt_handle_issued_in(uint32_t slot, uint32_t generation, uint32_t epoch);
/* The handle of that session names no session in this process from now on (a forked child's
 * of its parent's private sessions), until a lookup or a listing hands the value out again. */
void wpt_handle_make_stale(uint32_t slot, uint32_t generation);
/* The same for the handle a ControlCallback is given, which never undoes a stale mark: its
 * session may have stopped since the call was queued (see etw_registry.c); nor is it handed
 * out if the count changed since (`epoch`, read when the call was queued). */
void wpt_handle_seen(uint32_t slot, uint32_t generation, uint32_t epoch);
int  wpt_handle_stale(TRACEHANDLE h, uint32_t generation);

/* ---- buffers (etw_buffers.c) ---- */
typedef struct {
    uint32_t buffer_size, nslots, capacity, max_buffers, min_buffers;
    uint32_t logger_id, generation, log_file_mode, clock_type;
    int64_t filetime_offset;
    wpt_cycle_scale cycles;
    int private_pool;
} wpt_pool_config;
/* Create a session's memory: anonymous (private) or a memfd (*memfd_out). */
ULONG wpt_pool_create(const wpt_pool_config *c, wpt_view **view_out, int *memfd_out);
/* A view of a session memory received from its host (validated against what it says), for the
 * session of that whole registry generation. */
ULONG wpt_view_map(int memfd, uint64_t map_size, uint16_t logger_id, uint32_t generation,
                   wpt_view **view_out);
/* A generation a host says (JOIN reply, session memory) is the session's whole one; a host of
 * an older build says only its low 8 bits (it checked the JOIN's whole generation, or the low
 * 8 bits of it, itself). */
static inline int wpt_generation_said(uint32_t said, uint32_t generation) {
    return said == generation || (said <= 0xFFu && said == (generation & 0xFFu));
}
/* Publish in wpt_views / swap the memory for zero pages and unpublish. */
void  wpt_view_publish(wpt_view *v);
void  wpt_view_retire(wpt_view *v);
/* fork: a view being swapped is finished by the child (the parent's thread does not go on there) */
void  wpt_views_fork_prepare(void);
void  wpt_views_fork_parent(void);
void  wpt_views_after_fork(void);
/* The pool capacity (buffers mapped) a session of these sizes gets. */
uint32_t wpt_pool_capacity(uint32_t buffer_size, uint32_t max_buffers);
void  wpt_pool_push(wpt_view *v, uint32_t index1);
uint32_t wpt_pool_pop(wpt_view *v);
void  wpt_wake_flusher(wpt_shm *sh);
/* Slow paths of wpt_reserve: a buffer for an empty slot; a closed buffer out of its slot. */
ULONG wpt_install_buffer(wpt_view *v, wpt_slot *slot, uint32_t stream);
/* Retire generation `generation` of the buffer a slot holds as `word` (the buffer is closed). */
void  wpt_retire(wpt_view *v, wpt_slot *slot, uint64_t word, uint32_t generation);

static inline unsigned char *wpt_buffer_data(const wpt_view *v, uint32_t index1) {
    return v->data + (size_t)(index1 - 1) * v->buffer_size;
}

/* ---- the write path -------------------------------------------------------------------- */

typedef struct {
    wpt_view *view;
    unsigned char *record;
    uint32_t aligned;
    int64_t timestamp;
} wpt_reservation;

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

/* Test builds (-DWPT_TEST_POINTS) call wpt_test_point at these steps of the lock-free paths,
 * of the endpoint thread and of the control plane, where a test holds a thread to force an
 * interleaving; other builds have no such call. */
enum {
    WPT_POINT_RESERVE_SLOT_LOADED = 1,   /* wpt_reserve read the slot, not its buffer's state */
    WPT_POINT_INSTALL_PREPARED = 2,      /* a new buffer is ready, not in the slot yet */
    WPT_POINT_RETIRE_SLOT_EMPTIED = 3,   /* the slot is empty, the buffer not RETIRED yet */
    WPT_POINT_RESERVE_STATE_LOADED = 4,  /* wpt_reserve read the state, has not CASed it */
    WPT_POINT_RESERVE_CLAIMED = 5,       /* wpt_reserve CASed the state; its record is still 0 */
    WPT_POINT_ENDPOINT_POLL = 6,         /* the endpoint thread made its poll set, not polled */
    WPT_POINT_GONE_FREED = 7,            /* a gone host's registry entry freed, the lock released */
    WPT_POINT_STOPPER_FREED = 8,         /* a stopping host freed its registry entry, lock released */
    WPT_POINT_HOST_RUNNING = 9,          /* a starting host listens, runs, is not registered yet */
    WPT_POINT_HOST_LISTENING = 10,       /* a starting host has its socket path, has not bound it */
    WPT_POINT_HOST_BOUND = 11,           /* a starting host bound its socket, has not run its session */
    WPT_POINT_TARGET_FOUND = 12,         /* ControlTrace, a real-time subscription or a session-info
                                          * query found a session of another process, lock
                                          * released; has not sent the host its request */
    WPT_POINT_HOST_FORKED = 13,          /* a host process began, has not opened its log */
    WPT_POINT_HOST_UNANSWERED = 14,      /* StartTrace gave up waiting for its host's answer,
                                          * has not released its registry entry */
    WPT_POINT_CLOCK_PAIR_BEGUN = 15,     /* a session's clock offset: the first read of a
                                          * bracket made, the wall clock not read yet */
    WPT_POINT_REQUEST_CONNECTED = 16,    /* a control request connected to its host (the
                                          * connection in wpt_test_request_fd), not sent yet */
    WPT_POINT_JOIN_CHOSEN = 17,          /* a process is to join a session (slot, generation
                                          * chosen), has not connected to its host */
    WPT_POINT_PEER_REFUSED = 18,         /* a broadcast found a provider socket refused and its
                                          * process gone, has not removed the socket */
    WPT_POINT_VIEW_RETIRE = 19,          /* wpt_view_retire called, the view still published */
    WPT_POINT_VIEW_RETIRING = 20,        /* a view is being retired, its memory not swapped yet */
    WPT_POINT_REGISTRY_COPYING = 21,     /* a copy of the registry's enables holds its lock, has
                                          * not locked the registry */
    WPT_POINT_VIEW_RETIRED = 22,         /* a view's memory swapped and its memfd closed */
    WPT_POINT_ENDPOINT_WAKING = 23,      /* a thread is to write to the endpoint thread's wake
                                          * pipe (found open), has not written */
    WPT_POINT_ENABLE_APPLYING = 24,      /* EnableTrace changed the registry and let go of its
                                          * locks, has not applied the change here */
    WPT_POINT_ENDPOINT_STARTING = 25,    /* a new endpoint listens, has not copied the registry
                                          * nor made its thread */
    WPT_POINT_ENDPOINT_CLOSE_WAITING = 26,  /* wpptrace_endpoint_close found the endpoint
                                          * starting, or another close joining its thread, and
                                          * is to wait for it (lock held) */
    WPT_POINT_CALLBACKS_CONFIRMED = 27,  /* queued ControlCallbacks confirmed (their session
                                          * joined), the first not invoked yet, no lock held */
    WPT_POINT_ENDPOINT_JOINING = 28,     /* wpptrace_endpoint_close told the endpoint thread to
                                          * end, has not joined it */
    WPT_POINT_COMMIT_MEMORY = 30,        /* a writer is to commit a new buffer's memory */
    WPT_POINT_FILE_SYNC = 31,            /* a session's log file is to be flushed to the disk */
    WPT_POINT_ENABLE_QUEUED = 32,        /* an enable's ControlCallbacks are queued, the lock let
                                          * go; its session not joined yet */
    WPT_POINT_REGISTRY_COPY_LOCKING = 34,  /* a copy of the registry's enables is to take
                                          * its lock (not held yet) */
    WPT_POINT_UNREGISTER_WAITING = 33,   /* UnregisterTraceGuids is to wait for callbacks
                                          * of the registration running in other threads */
    WPT_POINT_COPY_WAITING = 40,         /* a forked child's copy of the endpoint thread left
                                          * the loop; threads of the application still run */
    WPT_POINT_RUNTIME_DIR_CHECKED = 35,  /* the runtime directory was opened, checked and held;
                                          * its caller has not used it yet */
    WPT_POINT_RUNTIME_DIR_OPENING = 44,  /* the runtime directory's parent is open (its lock
                                          * held), the directory not opened yet */
    WPT_POINT_THREADS_LISTING = 45,      /* the core's threads counted, this process's threads
                                          * not listed yet */
    WPT_POINT_THREADS_LISTED = 46,       /* this process's threads listed, the core's not
                                          * counted again yet */
    WPT_POINT_PEER_UNANSWERED = 48,      /* a broadcast found a provider socket refused, has not
                                          * looked up whether its process is gone */
    WPT_POINT_PRIVATE_STOPPED = 47,      /* a private session's STOP stopped it: it says
                                          * STOPPING, its role and registry entry are not let go
                                          * yet (the control lock held by this thread) */
    WPT_POINT_OWED_DELIVERING = 60,      /* the endpoint thread is to deliver the changes a
                                          * thread cancelled in a callback left owed */
    WPT_POINT_RETRIES_DONE = 61,         /* the endpoint thread's retries are all done (the
                                          * changes owed delivered, the registry reconciled) */
    WPT_POINT_REBINDING = 62,            /* the endpoint thread is to bind its socket again
                                          * after a clean-up (no lock taken yet) */
    WPT_POINT_REBOUND = 63,              /* the endpoint thread bound its socket again, has
                                          * not put it in place of the old one */
    WPT_POINT_RUNTIME_DIR_HOLDING = 65,  /* a check holds the runtime directory at a new
                                          * descriptor, whose path is not stored yet */
    WPT_POINT_HOST_ANSWERED = 64,        /* StartTrace's host answered (its session registered,
                                          * the registry's lock let go); the session not joined,
                                          * its handle not handed out */
    WPT_POINT_OWED_TAKEN = 66,           /* the endpoint thread took the changes owed to
                                          * deliver (g_redeliver cleared), has not yet */
    WPT_POINT_FORK_UNLOCKED = 67,        /* a fork gave up waiting for the runtime directory's
                                          * lock and goes on without it */
    WPT_POINT_REBIND_DEFERRED = 68,      /* the endpoint's socket is missing from the directory
                                          * it was bound in: bound again only after more checks */
    WPT_POINT_REGISTRY_WAITING = 69,     /* the registry's file lock is held by another process:
                                          * this thread waits for it (holding the process's
                                          * registry mutex) */
    WPT_POINT_ATTACHING = 80,            /* a process is to join a session it found (slot,
                                          * generation and incarnation taken, the registry's
                                          * lock let go); nothing of the join done yet */
    WPT_POINT_REJOIN_ANSWERED = 81,      /* a forked child's JOIN again was answered (not
                                          * busy) and what it said applied */
    WPT_POINT_HOST_PIDFD_TAKEN = 82,     /* wpt_host_end took the host's pidfd, has not read
                                          * its start */
    WPT_POINT_CALLBACKS_HELD = 83,       /* a forked child's endpoint thread waits, its
                                          * callbacks held (wpptrace_hold_callbacks_after_fork) */
};
#ifdef WPT_TEST_POINTS
extern void (*wpt_test_point)(int point);
#define WPT_TEST_POINT(point) do { if (wpt_test_point) wpt_test_point(point); } while (0)
extern int wpt_test_request_fd;
/* a test makes every JOIN's session memory refused, as memory not sealed is */
extern int wpt_test_refuse_views;
/* a test makes the endpoint thread's delivery of the changes owed find them busy, as a host
 * too slow to hand out its session memory does */
extern _Atomic int wpt_test_owed_busy;
#define WPT_OWED_BUSY_FOR_TEST atomic_load(&wpt_test_owed_busy)
/* how long StartTrace waits for its host's answer, a QUERY (and the like) for the host's
 * reply, and a STOP, FLUSH or UPDATE: a test may shorten them, not wait 30 s, 10 s or 120 s */
extern int64_t wpt_host_answer_ms, wpt_host_reply_ms, wpt_host_long_reply_ms;
#define WPT_HOST_ANSWER_MS wpt_host_answer_ms
#define WPT_HOST_REPLY_MS ((int)wpt_host_reply_ms)
#define WPT_HOST_LONG_REPLY_MS ((int)wpt_host_long_reply_ms)
/* a test makes wpt_host_end find pidfd_open refused (EPERM), as an older container's seccomp
 * profile does */
extern _Atomic int wpt_test_pidfd_refused;
/* and pidfd_send_signal refused (EPERM), as seccomp or an LSM may */
extern _Atomic int wpt_test_signal_refused;
/* and the host's start unreadable once its pidfd is taken (ENOMEM) */
extern _Atomic int wpt_test_start_unreadable;
/* how many hosts wpt_host_end signalled through a pidfd, and by their pid */
extern _Atomic int wpt_test_host_end_by_pidfd, wpt_test_host_end_by_pid;
/* a test makes wpt_thread_create fail (EAGAIN), as a process at its thread limit finds it */
extern _Atomic int wpt_test_threads_refused;
/* how long a process waits for the registry lock: a test may shorten it */
extern int64_t wpt_registry_wait_ms;
#define WPT_REGISTRY_WAIT_MS wpt_registry_wait_ms
/* the next check finds the directory at the name with the inode number of the one held, as
 * a disk filesystem may give a directory made again the number of one removed (a test) */
extern _Atomic int wpt_test_dir_number_reused;
/* the endpoint's check finds the directory held with the inode number of the one its socket
 * was bound in, as a disk filesystem may give a directory made again (a test) */
extern _Atomic int wpt_test_bound_dir_number_reused;
/* where the process's descriptors are named: a test names a missing one (no /proc) */
extern const char *wpt_proc_fd_dir;
#define WPT_PROC_FD_DIR wpt_proc_fd_dir
/* added to every CLOCK_REALTIME read of the core: a test steps the wall clock without
 * privileges */
extern int64_t wpt_wall_shift_ns;
/* sessions a forked child read to release the private ones (a test counts them) */
extern _Atomic uint32_t wpt_fork_sessions_read;
/* provider registrations a forked child reset (a test counts them) */
extern _Atomic uint32_t wpt_fork_registrations_read;
/* views whose memory was swapped for zero pages (a test counts them) */
extern _Atomic uint32_t wpt_views_retired;
/* endpoints undone (socket, wake pipe and JOIN connections closed; a test counts them) */
extern _Atomic uint32_t wpt_endpoint_teardowns;
#else
#define WPT_TEST_POINT(point) ((void)0)
#define WPT_OWED_BUSY_FOR_TEST 0
#define WPT_HOST_ANSWER_MS 30000
#define WPT_HOST_REPLY_MS 10000
#define WPT_HOST_LONG_REPLY_MS 120000
#define WPT_REGISTRY_WAIT_MS 10000
#define WPT_PROC_FD_DIR "/proc/self/fd"
#endif

/* Reserve `size` bytes (zero-filled) in the current processor's buffer of the session the
 * handle names. On success the record's first word holds WPT_RECORD_PENDING | size and the
 * second the thread id; the caller writes bytes 8.., then bytes 4-7, then wpt_commit stores
 * the first word: that store is what tells the flusher the record is complete. Lock-free and
 * async-signal-safe: no lock, no allocation, no mapping on this path. */
static inline ULONG wpt_reserve(TRACEHANDLE h, uint32_t size, wpt_reservation *r) {
    uint32_t id = (uint32_t)(h & 0xFFFF);
    if (id == 0 || id >= WPPTRACE_MAX_SESSIONS) return ERROR_INVALID_HANDLE;   /* 0, kernel */
    wpt_view *v = atomic_load_explicit(&wpt_views[id], memory_order_acquire);
    if (!v || (uint8_t)v->registry_generation != (uint8_t)(h >> 24)) return ERROR_INVALID_HANDLE;
    wpt_shm *sh = v->sh;
    if (atomic_load_explicit(&sh->status, memory_order_acquire) != WPT_RUNNING)
        return ERROR_INVALID_HANDLE;
    r->view = v;
    uint32_t aligned = (size + 7u) & ~7u;
    if (size > 0xFFFF || aligned > v->buffer_size - WPT_BUFFER_HEADER_SIZE) {
        /* too large for any buffer: lost, and counted as Windows' logger counts it */
        atomic_fetch_add_explicit(&sh->events_lost, 1, memory_order_relaxed);
        return ERROR_MORE_DATA;
    }
    uint32_t stream = 0;
    if (v->nslots > 1) {
        int cpu = wpt_cpu_number();
        stream = (uint32_t)(cpu < 0 ? 0 : cpu) % v->nslots;
    }
    wpt_slot *slot = &v->slots[stream];
    uint32_t clock = sh->clock_type;
    int64_t offset = sh->filetime_offset;
    const wpt_cycle_scale *cycles = &sh->cycles;
    for (;;) {
        uint64_t word = atomic_load_explicit(&slot->word, memory_order_acquire);
        uint32_t index1 = (uint32_t)word;
        if (__builtin_expect(index1 > v->capacity, 0)) return ERROR_INVALID_HANDLE;
        if (!index1) {
            ULONG rc = wpt_install_buffer(v, slot, stream);
            if (rc != ERROR_SUCCESS) {
                if (rc != ERROR_INVALID_HANDLE)
                    atomic_fetch_add_explicit(&sh->events_lost, 1, memory_order_relaxed);
                return rc;
            }
            continue;
        }
        WPT_TEST_POINT(WPT_POINT_RESERVE_SLOT_LOADED);
        wpt_desc *b = &v->desc[index1 - 1];
        uint64_t st = atomic_load_explicit(&b->state, memory_order_acquire);
        /* The slot still holds this install (install counts only grow), so `st` is the state
         * of the generation the slot holds. Only that generation is reserved in or closed: a
         * writer held up here or between its tries never touches a later one, which may be
         * an install that never reaches a slot. */
        if (__builtin_expect(atomic_load_explicit(&slot->word, memory_order_acquire) != word, 0))
            continue;
        WPT_TEST_POINT(WPT_POINT_RESERVE_STATE_LOADED);
        uint32_t generation = (uint32_t)(st >> 32);
        for (;;) {
            uint32_t off = (uint32_t)st;
            if ((uint32_t)(st >> 32) != generation || (off & WPT_CLOSED)) break;
            if (off + aligned > v->buffer_size) {
                if (atomic_compare_exchange_weak_explicit(&b->state, &st, st | WPT_CLOSED,
                                                          memory_order_acq_rel, memory_order_acquire))
                    break;
                continue;
            }
            /* The timestamp is read between loading the state and the CAS: a successful CAS
             * means every earlier record of the buffer took its timestamp before ours. */
            int64_t ts = wpt_raw_now_of(clock, offset, cycles);
            if (atomic_compare_exchange_weak_explicit(&b->state, &st, st + aligned,
                                                      memory_order_acq_rel, memory_order_acquire)) {
                WPT_TEST_POINT(WPT_POINT_RESERVE_CLAIMED);
                unsigned char *rec = wpt_buffer_data(v, index1) + off;
                atomic_store_explicit((_Atomic uint64_t *)(void *)rec,
                                      ((uint64_t)wpt_current_tid() << 32) | WPT_RECORD_PENDING | size,
                                      memory_order_relaxed);
                /* The flusher tells where a record still all zero ends by the next non-zero
                 * word, so this word is seen before any later byte of the record (no
                 * instruction on x86; a barrier where stores may become visible out of order) */
                atomic_thread_fence(memory_order_release);
                r->record = rec;
                r->aligned = aligned;
                r->timestamp = ts;
                return ERROR_SUCCESS;
            }
        }
        /* closed (or already a later generation: then the slot moved on and this is a no-op) */
        wpt_retire(v, slot, word, generation);
    }
}

static inline void wpt_commit(wpt_reservation *r, uint32_t first_word) {
    atomic_store_explicit((_Atomic uint32_t *)(void *)r->record, first_word, memory_order_release);
}

/* ---- the host role: flusher and sinks of a session run by this process (etw_session.c) ---- */

typedef struct wpt_logfile wpt_logfile;
typedef struct wpt_rt_hub wpt_rt_hub;

enum { WPT_ROLE_NONE = 0, WPT_ROLE_PRIVATE = 1, WPT_ROLE_HOST = 2 };

typedef struct wpt_session {
    _Atomic uint32_t role;           /* WPT_ROLE_*: this process runs the session's flusher */
    _Atomic uint32_t status;         /* WPT_FREE ... (mirrors the shared status) */
    uint16_t logger_id;
    /* its registry entry's (handles carry its low 8 bits); atomic: the endpoint thread and
     * handle checks read it without the control lock StartTrace writes it under */
    _Atomic uint32_t registry_generation;
    wpt_view *view;
    int memfd;                       /* -1 for a private pool */
    char name[WPT_MAX_NAME];         /* UTF-8 */
    char logfile_name[WPT_MAX_PATH]; /* UTF-8, "" if none */

    /* configuration */
    uint32_t buffer_size;            /* bytes */
    uint32_t min_buffers, max_buffers;
    uint32_t max_file_size_field;    /* as given (MB or KB) */
    uint64_t max_file_bytes;         /* 0 = unlimited */
    uint32_t log_file_mode;
    uint32_t flush_timer_field;
    uint64_t flush_interval_ms;      /* 0 = flush when full only */
    uint32_t clock_type;
    uint32_t enable_flags;
    int32_t  age_limit;
    uint32_t nslots;                 /* processor streams: ncpu, or 1 */
    int ends_with_caller;            /* WPPTRACE_START_ENDS_WITH_CALLER: its host stops it when
                                      * the process that started it ends */

    /* clock */
    int64_t start_raw;               /* raw clock at StartTime */
    int64_t start_filetime;
    int64_t boot_filetime;
    int64_t filetime_offset;         /* clock 2: FILETIME = mono100 + offset */
    wpt_cycle_scale cycles;          /* clock 3: the counter's scale */
    uint32_t cpu_mhz;
    uint32_t start_tid, start_pid;

    /* flusher */
    pthread_mutex_t flush_lock;
    pthread_cond_t  flush_done;      /* wakes FLUSH/STOP/UPDATE callers */
    uint64_t flush_requests, flush_completed;
    int stop_requested, hold_flush;
    int switch_pending;              /* UPDATE named a log file: WPT_SWITCH_* (next_logfile) */
    ULONG switch_old_error;          /* why the file left could not be completed */
    ULONG switch_new_error;          /* why the new one could not be started */
    char next_logfile[WPT_MAX_PATH];
    pthread_t flusher;
    int flusher_started;
    _Atomic uint32_t flusher_tid;
    uint32_t *next_seq;              /* per stream: the install number to flush next */
    int64_t *gap_since;              /* per stream: when the flusher started waiting for it */
    unsigned char *scratch;          /* a buffer's copy when a record has to be cut out */
    void *scan_space;                /* the flusher's list of retired buffers (capacity entries) */
    void *cut_space;                 /* records of a buffer given up (one per 8 bytes) */
    void *zero_runs;                 /* given-up spans of a quarantined buffer whose records
                                      * were still all zero (WPT_ZERO_RUNS of them) */
    uint32_t nzero_runs;

    /* statistics (the flusher writes them) */
    _Atomic uint32_t buffers_written;  /* header buffer included */
    _Atomic uint32_t log_buffers_lost;
    _Atomic uint32_t rt_buffers_lost;
    _Atomic uint32_t records_abandoned;
    _Atomic uint32_t buffers_quarantined; /* never reused: a live writer gave up a record in it */
    ULONG file_error;                /* why its file could not be completed at STOP (0: it was) */
    int64_t buffer_sequence;         /* last SequenceNumber given (flusher only) */

    /* sinks */
    wpt_logfile *logfile;
    wpt_rt_hub *realtime;
} wpt_session;

extern wpt_session wpt_sessions[WPPTRACE_MAX_SESSIONS];
/* Set a session's role (WPT_ROLE_*): the only way it changes, so that a forked child knows
 * which sessions are private ones without reading them all. */
void wpt_session_set_role(wpt_session *s, uint32_t role);
extern pthread_mutex_t wpt_control_lock;   /* StartTrace/ControlTrace of this process */

static inline uint32_t wpt_events_lost(const wpt_session *s) {
    return atomic_load(&s->view->sh->events_lost);
}

/* Memory and sinks for a configured session (config filled in; this process). */
ULONG wpt_session_prepare(wpt_session *s, int private_pool);
/* Start the flusher thread (the process that runs the session: the private owner or the host). */
ULONG wpt_session_run(wpt_session *s);
/* Undo wpt_session_prepare (StartTrace failed, or the copy a host process took over). */
void  wpt_session_discard(wpt_session *s, int close_sinks);
ULONG wpt_session_stop(wpt_session *s);
/* wpt_session_stop leaving the log file's flush to the disk and close to the caller
 * (wpt_session_sync_close(*sync_fd)): a caller holding a lock does them after releasing it. */
ULONG wpt_session_stop_unsynced(wpt_session *s, int *sync_fd);
/* wpt_logfile_sync_close, with the test hook wpptrace_debug_fail_file_flushes. */
ULONG wpt_session_sync_close(int fd);
ULONG wpt_session_flush(wpt_session *s);
/* What an UPDATE naming a log file asks of the flusher (switch_pending). */
#define WPT_SWITCH_FILE   1          /* finish the file, start next_logfile */
#define WPT_SWITCH_RENAME 2          /* next_logfile is another name of the open file: keep it */
/* UPDATE LogFileName: what became of each file in *old_error and *new_error, and *switched 1
 * if a new file was started (or tried) (see etw_session.c) */
ULONG wpt_session_switch_file(wpt_session *s, const char *path, ULONG *old_error, ULONG *new_error,
                              uint32_t *switched);
void  wpt_session_update_flush_timer(wpt_session *s, uint64_t interval_ms);
ULONG wpt_session_grow_max(wpt_session *s, uint32_t max_buffers);
void  wpt_session_hold(wpt_session *s, int hold);
void  wpt_session_counts(wpt_session *s, uint32_t *allocated, uint32_t *free_count);
/* FlushTimer as given -> milliseconds (clamped; 0 = only when full, except real time: 1 s). */
uint64_t wpt_flush_interval(uint32_t field, uint32_t log_file_mode);
/* Build the header buffer (buffer 0) into out (buffer_size bytes) with the current totals:
 * writes bytes [0, SavedOffset) only; the caller fills the rest with 0xFF once. */
void  wpt_build_header_buffer(wpt_session *s, unsigned char *out, int64_t end_time,
                              uint32_t buffers_written);
wpt_session *wpt_local_session(TRACEHANDLE h);            /* a private session of this process */
wpt_session *wpt_local_session_by_name(const char *name);

/* ---- .etl file sink (etw_logfile.c) ---- */
ULONG wpt_logfile_open(wpt_session *s);
ULONG wpt_logfile_check_path(const char *path);   /* can we create it? (no truncation) */
/* Write one finished data buffer; returns 0, or 1 if dropped (file full). */
int   wpt_logfile_write(wpt_session *s, const unsigned char *buffer);
void  wpt_logfile_update_header(wpt_session *s, int final);
/* The file finished (last header, size, flush to the disk, close; freed whatever happens):
 * ERROR_SUCCESS only if that and every buffer written before succeeded, else why not
 * (ERROR_DISK_FULL, ERROR_WRITE_FAULT ...). With `sync_fd`, the flush to the disk and the
 * close are left to wpt_logfile_sync_close(*sync_fd) (-1: nothing left to do). */
ULONG wpt_logfile_close(wpt_session *s, int *sync_fd);
ULONG wpt_logfile_sync_close(int fd);
void  wpt_logfile_abandon(wpt_session *s);  /* drop the file without writing (forked copies) */
int   wpt_logfile_fd(const wpt_session *s);
/* Whether `path` (absolute) leads now to the file the session has open, by any name: the same
 * file is no new file for an UPDATE (as on Windows), and its own lock would refuse it. */
int   wpt_logfile_is_current(const wpt_session *s, const char *path);

/* ---- real-time sink (etw_realtime.c) ---- */
ULONG wpt_rt_open(wpt_session *s);
/* Copy a flushed buffer to every consumer (or, with none, to the backlog the next consumer
 * receives); returns the number of copies dropped because a queue was full. */
uint32_t wpt_rt_deliver(wpt_session *s, const unsigned char *buffer, uint32_t size);
void  wpt_rt_end(wpt_session *s);            /* session stopped: consumers drain then EOF */
void  wpt_rt_batch_end(wpt_session *s);      /* what one flush delivered becomes visible */
/* Wait while consumers in other processes take what is queued for them (until they stop
 * taking it, at most max_ms); then close_hub waits for them up to max_ms and frees it all. */
void  wpt_rt_settle(wpt_session *s, int max_ms);
void  wpt_rt_close_hub(wpt_session *s, int max_ms);
uint32_t wpt_rt_consumers(wpt_session *s);
/* A subscription to a session run by this process (a private one, or the host's own). */
ULONG wpt_rt_subscribe_local(wpt_session *s, wpptrace_rt_subscription **out);

/* ---- runtime directory and registry (etw_registry.c) ---- */

#define WPT_REG_MAGIC      0x31474552u   /* "REG1" */
#define WPT_REG_VERSION    1u
#define WPT_MAX_ENABLES    1024
/* WPT_REG_CHECKS_INCARNATION: the session's host refuses a request found in a registry of
 * another incarnation (WPT_REQ_IN_INCARNATION), so requests to it carry it; a host of an
 * earlier build does not set it, and gets requests without it. WPT_REG_SAYS_ACCEPTED: the
 * host says it took a FLUSH or UPDATE up when the request asks it (WPT_REQ_SAY_ACCEPTED); the
 * same: a host of an earlier build gets requests without the bit. */
enum { WPT_REG_PRIVATE = 1, WPT_REG_REALTIME = 2, WPT_REG_CHECKS_INCARNATION = 4, WPT_REG_SAYS_ACCEPTED = 8 };

typedef struct {
    uint32_t state;            /* WPT_FREE / STARTING / RUNNING / STOPPING */
    uint32_t generation;       /* one more at each claim of the slot; handles carry 8 bits */
    uint32_t host_pid;         /* the process running the flusher (a private session: its owner) */
    uint32_t flags;            /* WPT_REG_* */
    uint64_t host_start;       /* wpt_process_start(host_pid) when it registered */
    uint32_t log_file_mode, clock_type;
    char name[WPT_MAX_NAME];
} wpt_reg_logger;

/* 1 if `h` is the handle of a session of this process that a registry made again after a
 * clean-up left out (another session took its slot there first) and `e` (the registry's entry
 * of h's slot, registry locked) is not that session: the other session's handle may have the
 * same value, but in this process that value names its own session while it runs or stops.
 * Once it stopped the value is stale (wpt_handle_stale) and names no session, until a listing
 * or a lookup hands it out for the other session. */
int  wpt_handle_displaced(TRACEHANDLE h, const wpt_reg_logger *e);

typedef struct {
    uint32_t used;
    uint16_t logger_id;
    uint8_t  generation, level;
    GUID     guid;
    uint32_t flags, clock_type;
    uint64_t version;
} wpt_reg_enable;

typedef struct {
    uint32_t magic, version, size;
    /* Random, never 0, written under the exclusive lock by the first process of this build to
     * open the file (a registry made again after a clean-up gets another): a process whose
     * handles came from a registry of another incarnation makes them stale (etw_registry.c).
     * A registry of an earlier build has 0 there. */
    uint32_t incarnation;
    uint64_t last_version;
    wpt_reg_logger loggers[WPPTRACE_MAX_SESSIONS];
    wpt_reg_enable enables[WPT_MAX_ENABLES];
} wpt_registry;

/* What a request to the host of `e` carries as the incarnation of the registry it was found in
 * (see WPT_REQ_IN_INCARNATION): read in the same hold of the registry's lock that found `e`,
 * since a clean-up between two holds may put another process's session in the same slot and
 * generation of a registry made again; 0 for a host that does not check it (an earlier build's). */
static inline uint32_t wpt_reg_incarnation_for(const wpt_registry *reg, const wpt_reg_logger *e) {
    return e->flags & WPT_REG_CHECKS_INCARNATION ? reg->incarnation : 0;
}

/* The logger entry a LoggerId names (an enable entry's), NULL for one outside the table: the
 * registry is a file every process of the user can write, so what it says is checked before it
 * indexes anything. */
static inline wpt_reg_logger *wpt_reg_logger_of(wpt_registry *reg, uint32_t logger_id) {
    uint32_t slot = wpt_slot_of_id(logger_id);
    return slot < WPPTRACE_MAX_SESSIONS ? &reg->loggers[slot] : NULL;
}

/* The runtime directory (created 0700 if missing, refused unless it is ours and private), as
 * a path through its held descriptor ("/proc/self/fd/<n>"): what is made, bound or reached
 * under it is in the directory checked, whatever its name leads to by then. ERROR_BUSY when
 * another thread held the lock too long while it was not resolved yet; ERROR_NOT_SUPPORTED
 * without /proc (such paths do not resolve there). */
ULONG wpt_runtime_dir(const char **dir_out);
/* The held descriptor of the runtime directory (-1: none yet); a forked session host keeps it. */
int wpt_runtime_dir_fd(void);
/* Counts the times another directory was held in place of the one held (a clean-up removed
 * it and it was made again): two reads alike, the same directory was held between them. */
uint32_t wpt_runtime_dir_replaced(void);
/* This process ends (a session host stopping): from now on a runtime directory or a registry
 * that a clean-up removed is not made again for it (the registry's lock fails instead). */
void wpt_runtime_dir_ending(void);
/* The calling thread leaves or looks (stops a session; controls, asks for, lists or subscribes
 * to sessions) until wpt_runtime_dir_not_made_end(the value returned; 0 lets a ControlCallback
 * such a call runs make them): meanwhile a runtime directory or a registry that a clean-up
 * removed is not made again for it (what uses them fails instead: nothing of another process is
 * there to stop or find). A forked child does not inherit it. */
int wpt_runtime_dir_not_made_begin(void);
void wpt_runtime_dir_not_made_end(int was);
/* 0 while this process ends or the calling thread leaves (see above): a missing runtime
 * directory is not made again for this thread now. */
int wpt_runtime_dir_may_make(void);
/* What a call that uses the runtime directory or the registry (the socket path of a session's
 * host, the registry's lock) answers when they are missing and not made again for this thread:
 * ERROR_WMI_INSTANCE_NOT_FOUND (a clean-up removed every session of the directory with it),
 * else `rc`. Missing as this thread's last check of the directory found it. */
ULONG wpt_runtime_dir_missing_as_none(ULONG rc);
/* The incarnation of the registry this process opened last (0: none yet): a host's, the one it
 * is registered in. */
uint32_t wpt_registry_incarnation(void);
/* The same checks as wpt_runtime_dir, but a directory that is missing (a clean-up removed it) is
 * not made again: ERROR_SUCCESS once it is there again (and held). */
ULONG wpt_runtime_dir_present(void);
/* Its name, for messages to people ("" until resolved). */
const char *wpt_runtime_dir_name(void);
/* Remove `name` (a socket this process bound) from the runtime directory. */
void wpt_runtime_unlink(const char *name);
/* Lock the registry (a process mutex and flock) and map it; NULL + *rc on failure. */
wpt_registry *wpt_registry_lock(int exclusive, ULONG *rc);
/* The same, given up (ERROR_BUSY) after `wait_ms` rather than WPT_REGISTRY_WAIT_MS. */
wpt_registry *wpt_registry_lock_within(int exclusive, int64_t wait_ms, ULONG *rc);
/* The same without giving up on a lock held elsewhere (no ERROR_BUSY): for release paths. */
wpt_registry *wpt_registry_lock_patiently(int exclusive, ULONG *rc);
void wpt_registry_unlock(void);
/* Does the entry name a session whose process is still there? */
int  wpt_reg_alive(const wpt_reg_logger *e);
/* This process's start (wpt_process_start), read once per process; 0 while it could not be. */
uint64_t wpt_own_start(void);
/* A new enable version: later than every earlier one on this machine (CLOCK_MONOTONIC). */
uint64_t wpt_next_version(wpt_registry *reg);
void wpt_registry_fork_prepare(void);   /* its directory lock: taken last, a leaf */
void wpt_registry_fork_parent(void);
void wpt_registry_after_fork(void);
/* A socket path in the runtime directory: "s-<id>.sock" or "p-<pid>.sock"; what
 * wpt_runtime_dir failed with, or ERROR_BAD_PATHNAME for a path too long. */
ULONG wpt_socket_path(char *out, size_t size, char kind, uint32_t number);
/* Free a slot's registry entry (registry locked): its enables removed, its socket file too;
 * returns the GUIDs that were enabled on it (the caller tells the providers). */
size_t wpt_registry_forget(wpt_registry *reg, uint32_t slot, GUID *guids, size_t max);

/* ---- control plane wire format and sockets (etw_ipc.c) ---- */

#define WPT_WIRE_MAGIC 0x31545057u    /* "WPT1" */
#define WPT_WIRE_MAX_CONTROL (64u * 1024)

enum {
    /* to a session host */
    WPT_REQ_QUERY = 1, WPT_REQ_FLUSH, WPT_REQ_UPDATE, WPT_REQ_STOP, WPT_REQ_JOIN,
    WPT_REQ_SUBSCRIBE, WPT_REQ_HOLD,
    /* to a provider process */
    WPT_REQ_ENABLE = 0x20, WPT_REQ_DISABLE, WPT_REQ_LIST,
    /* answers and streams */
    WPT_REPLY = 0x40, WPT_RT_BUFFER, WPT_RT_END,
    WPT_RT_SYNC,              /* consumer -> host, and back after what was queued before it */
    WPT_ACCEPTED              /* host -> caller: a FLUSH or UPDATE taken up, its reply to come
                               * once its work on the disk is done (asked: WPT_REQ_SAY_ACCEPTED) */
};

typedef struct {
    uint32_t magic, kind, length, status;
} wpt_frame;
/* A request to a session host whose kind has WPT_REQ_IN_INCARNATION set starts its payload with
 * the incarnation (wpt_wire_incarnation) of the registry the caller found the session in, then the kind's
 * own payload. A clean-up may remove the runtime directory, and a session of the registry made
 * again take the slot, generation and socket path of the one the caller found: its host,
 * whose registry's incarnation is another, refuses the request (ERROR_WMI_INSTANCE_NOT_FOUND),
 * as it refuses one meant for another generation. Sent only to hosts whose registry entry has
 * WPT_REG_CHECKS_INCARNATION (a host of an earlier build refuses an unknown kind). */
#define WPT_REQ_IN_INCARNATION 0x10000u
/* A FLUSH or UPDATE whose kind has WPT_REQ_SAY_ACCEPTED asks the host to say it took it up
 * (WPT_ACCEPTED) before the reply. A caller of an earlier build reads one frame, the reply, and
 * does not ask; it is sent only to hosts whose registry entry has WPT_REG_SAYS_ACCEPTED. */
#define WPT_REQ_SAY_ACCEPTED 0x20000u
/* A request's status word names the generation of the session it is meant for. The caller
 * found the slot under the registry lock and calls after releasing it: the session may have
 * stopped and a newer one taken the slot and its socket path meanwhile, and the host refuses a
 * request meant for another generation. Bits 0-7 with WPT_FOR_GENERATION: the generation's low
 * 8 bits (what handles carry, and all that older builds send and check); with
 * WPT_FOR_WIDE_GENERATION, bits 10-31 hold its bits 8-29, so 256 sessions started in the slot
 * meanwhile do not make an old request look new. (A request without the flag is not checked.) */
#define WPT_FOR_GENERATION      0x100u
#define WPT_FOR_WIDE_GENERATION 0x200u
static inline uint32_t wpt_for_session(uint32_t generation) {    /* the registry's generation */
    return WPT_FOR_GENERATION | WPT_FOR_WIDE_GENERATION | (generation & 0xFFu)
         | (generation >> 8) << 10;
}
static inline int wpt_request_is_for(uint32_t status, uint32_t generation) {
    if (!(status & WPT_FOR_GENERATION)) return 1;
    if (status & WPT_FOR_WIDE_GENERATION) return status == wpt_for_session(generation);
    return (uint8_t)status == (uint8_t)generation;
}

typedef struct {                /* QUERY/FLUSH/UPDATE/STOP replies: what ControlTrace reports */
    uint32_t buffer_size_kb, min_buffers, max_buffers, max_file_size, log_file_mode;
    uint32_t flush_timer, enable_flags, clock_type;
    int32_t  age_limit;
    uint32_t number_of_buffers, free_buffers, events_lost, buffers_written, log_buffers_lost;
    uint32_t realtime_buffers_lost, logger_thread_id, logger_id, generation;
    uint32_t host_pid, consumers, records_abandoned, buffers_quarantined;
    char name[WPT_MAX_NAME];
    char logfile[WPT_MAX_PATH];
    /* UPDATE that switched to a new log file: why the one left could not be completed, why
     * the new one could not be started (0: it was; a reply of an older host has neither) */
    uint32_t old_file_error, new_file_error;
    /* UPDATE: 1 if it started the log file named (or tried to), 0 if it named the session's open
     * file (a reply of an older host has it 0) */
    uint32_t file_switched;
} wpt_wire_props;

/* A session run by this process as ControlTrace reports it (etw_session.c). */
void wpt_session_props(wpt_session *s, wpt_wire_props *w);

typedef struct {                /* UPDATE request */
    uint32_t flush_timer, max_buffers, has_logfile, reserved;
    char logfile[WPT_MAX_PATH];
} wpt_wire_update;

/* The prefix of a request's payload whose kind has WPT_REQ_IN_INCARNATION (see there). */
typedef struct {
    uint32_t incarnation;
} wpt_wire_incarnation;

/* The longest payload of a request to a session host: UPDATE's, after an incarnation. */
#define WPT_HOST_REQUEST_MAX ((uint32_t)(sizeof(wpt_wire_incarnation) + sizeof(wpt_wire_update)))

/* A request to a session host as it goes out: its kind and payload, the incarnation in front
 * when one is sent. */
typedef struct {
    uint32_t kind, length;
    unsigned char payload[WPT_HOST_REQUEST_MAX];
} wpt_host_request;

typedef struct {                /* JOIN reply (the memfd comes with it) */
    uint64_t map_size;
    uint32_t logger_id, generation;   /* the session's whole registry generation */
} wpt_wire_join;

typedef struct {                /* ENABLE / DISABLE to a provider process */
    GUID guid;
    uint64_t version;
    uint64_t logger_handle;     /* LoggerId | level | generation | flags */
    uint32_t clock_type, from_pid;
} wpt_wire_enable;

typedef struct {                /* LIST reply: one per registered control GUID */
    GUID guid;
    uint64_t logger_handle;     /* 0 if not enabled in that process */
} wpt_wire_registered;

/* Sockets: every connection is checked to come from a process of our own user. */
int   wpt_ipc_listen(const char *path);
/* wpt_ipc_listen in two steps: the socket made (-1 on failure), then bound at `path` and
 * listening (0, else -1 with the socket left open): a caller can keep the socket's number
 * where a fork handler closes it while it is bound */
int   wpt_ipc_socket(void);
int   wpt_ipc_listen_on(int fd, const char *path);
/* -2: refused; -1 with errno as accept4 left it. `flags`: more accept4 flags (SOCK_NONBLOCK) */
int   wpt_ipc_accept(int listen_fd, int flags, uint32_t *peer_pid, uint32_t *peer_uid);
int   wpt_ipc_connect(const char *path, int timeout_ms, ULONG *rc);
/* wpt_ipc_connect in two steps: a socket for `path` made (-1 and *rc on failure: a path too
 * long, no descriptor), then connected (the socket closed on failure): a caller that must fail
 * before it changes anything takes the descriptor first */
int   wpt_ipc_client(const char *path, ULONG *rc);
int   wpt_ipc_connect_on(int fd, const char *path, int timeout_ms, ULONG *rc);
/* Send one frame (and an fd if fd >= 0); 0 on success. */
int   wpt_ipc_send(int fd, uint32_t kind, uint32_t status, const void *payload, uint32_t length,
                   int pass_fd, int timeout_ms);
/* Receive one frame of at most max_length payload bytes into payload (malloc'ed if *payload
 * is NULL); 0 on success, -1 on EOF/timeout/malformed (errno set: EPROTO malformed). */
int   wpt_ipc_recv(int fd, wpt_frame *frame, void **payload, uint32_t max_length,
                   int *received_fd, int timeout_ms);
/* What a failed send or receive of a request means, from its errno: the peer did not take or
 * answer it in time (ERROR_BUSY: alive, only slow), sent what is no frame of ours
 * (ERROR_BAD_FORMAT), a shortage here (wpt_win32_of_errno), or it is gone
 * (ERROR_WMI_INSTANCE_NOT_FOUND). Every request to a host reports failures by this table. */
ULONG wpt_ipc_failure(int e);
/* One request on the socket `client` (wpt_ipc_client; closed whatever happens; -1: one made
 * here), then its reply's frame (payload as wpt_ipc_recv, at most max_length bytes), the
 * connection left open in *conn (-1 on failure) for what follows it (a real-time stream).
 * Fails as wpt_ipc_connect, as wpt_ipc_failure says, or ERROR_BAD_FORMAT for a frame that is
 * no reply; the reply's own status is the caller's to read (but that of a refusal the peer
 * sent before it closed the connection, which the request then could not be written to). */
ULONG wpt_ipc_open_on(int client, const char *path, uint32_t kind, uint32_t status, const void *payload,
                      uint32_t length, wpt_frame *frame, void **reply, uint32_t max_length,
                      int *reply_fd, int timeout_ms, int *conn);
/* As wpt_ipc_call_on, for a request the peer first says it took up (WPT_ACCEPTED) and then
 * works on: `timeout_ms` bounds the wait until then (a peer that takes nothing up, stopped,
 * is only busy), `accepted_ms` the wait for the reply after it. */
ULONG wpt_ipc_call_accepted_on(int client, const char *path, uint32_t kind, uint32_t status,
                               const void *payload, uint32_t length, void *reply, uint32_t reply_size,
                               int *reply_fd, int timeout_ms, int accepted_ms);
/* One request (`status` its status word), one reply (STOP/FLUSH get a long timeout). */
ULONG wpt_ipc_call(const char *path, uint32_t kind, uint32_t status, const void *payload,
                   uint32_t length, void *reply, uint32_t reply_size, int *reply_fd, int timeout_ms);
/* The same on the socket `client` (wpt_ipc_client; closed whatever happens; -1: one made here). */
ULONG wpt_ipc_call_on(int client, const char *path, uint32_t kind, uint32_t status, const void *payload,
                      uint32_t length, void *reply, uint32_t reply_size, int *reply_fd, int timeout_ms);

/* ---- session hosts (etw_host.c) ---- */
/* A process told by its pid and its start (see wpt_process_start). */
typedef struct {
    uint32_t pid;
    uint64_t start;
} wpt_process_ref;
/* Fork the host process of a prepared session; returns once it runs (or failed). *host: the
 * host that answered (pid 0 if none did). */
ULONG wpt_host_spawn(wpt_session *s, wpt_process_ref *host);
/* Make a host this process spawned stop (SIGTERM), if it is still that process. */
void  wpt_host_end(const wpt_process_ref *host);
/* A forked child: the hosts its parent could not tell are the parent's to report. */
void  wpt_hosts_after_fork(void);
/* A request to the host of the session in `slot` that `meant_for` names (wpt_for_session):
 * ERROR_WMI_INSTANCE_NOT_FOUND if the slot's host runs another one by now. */
ULONG wpt_host_call(uint32_t slot, uint32_t meant_for, uint32_t kind, const void *payload,
                    uint32_t length, void *reply, uint32_t reply_size, int *reply_fd);
/* The same, for a session found in the registry of `incarnation` (sent with the request, see
 * WPT_REQ_IN_INCARNATION; 0: not sent, for a host that does not check it). */
ULONG wpt_host_call_in(uint32_t incarnation, uint32_t slot, uint32_t meant_for, uint32_t kind,
                       const void *payload, uint32_t length, void *reply, uint32_t reply_size,
                       int *reply_fd);
/* A request without payload to the same host, kept open for what follows its reply (a JOIN's
 * session memory, a SUBSCRIBE's stream): as wpt_ipc_open_on, once the same local steps as
 * wpt_host_call_in's (see wpt_host_call_prepare) are done. */
ULONG wpt_host_open_in(uint32_t incarnation, uint32_t slot, uint32_t meant_for, uint32_t kind, wpt_frame *frame,
                       void **reply, uint32_t max_length, int *reply_fd, int timeout_ms, int *conn);
/* wpt_host_call_in in two steps, for a caller that must change nothing before a failure known
 * without the host (no descriptor left, no memory): wpt_host_call_prepare does every local step
 * (the socket's path, the request, the socket: a runtime directory a clean-up removed, not made
 * again for this thread, is ERROR_WMI_INSTANCE_NOT_FOUND); then the caller changes what it must, and
 * wpt_host_call_send connects, sends and reads the reply (and closes the socket). A failed
 * prepare leaves nothing open. */
#define WPT_HOST_PATH_MAX 256
typedef struct {
    char path[WPT_HOST_PATH_MAX];
    wpt_host_request request;
    int fd;
} wpt_host_prepared;
ULONG wpt_host_call_prepare(wpt_host_prepared *c, uint32_t incarnation, uint32_t slot, uint32_t kind,
                            const void *payload, uint32_t length);
ULONG wpt_host_call_send(wpt_host_prepared *c, uint32_t meant_for, void *reply, uint32_t reply_size,
                         int *reply_fd);
/* The request of `kind` with `payload` into *out, with `incarnation` in front unless it is 0
 * (WPT_REQ_IN_INCARNATION). ERROR_INVALID_PARAMETER for a payload longer than any request's. */
ULONG wpt_host_request_of(wpt_host_request *out, uint32_t incarnation, uint32_t kind, const void *payload,
                          uint32_t length);
extern int wpt_in_host;        /* this process is a session host */
void  wpt_host_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Stream a session's real-time buffers to a consumer connected to the host. */
ULONG wpt_rt_serve(wpt_session *s, int fd);
/* A running, reachable session by name (not private): its registry slot and generation; with
 * _in, the registry's incarnation too if its host checks it (else 0: see
 * WPT_REQ_IN_INCARNATION). */
ULONG wpt_registry_find(const char *name, uint32_t *slot, uint32_t *generation);
ULONG wpt_registry_find_in(const char *name, uint32_t *slot, uint32_t *generation, uint32_t *incarnation);

/* ---- provider processes (etw_endpoint.c, etw_provider.c) ---- */
/* Cancellation held off for the whole of a public call that may wait (poll, recv, write,
 * pthread_cond_wait: cancellation points) with a library lock held: a thread cancelled there
 * kept the lock, and every fork() and later call waited for it forever. The caller's state is
 * restored on return, so a pending cancel acts in the application's code after the call. */
int  wpt_cancel_hold(void);                 /* returns the state to restore */
void wpt_cancel_restore(int state);
/* The application's own code the library waits on (its ControlCallbacks run in this thread,
 * UnregisterTraceGuids waiting for its callbacks in other threads) stays cancellable: an entry
 * point with nothing of its own left held there gives the caller's state (`held`, from
 * wpt_cancel_hold) to them; a hold inside it (a lock kept across callbacks) takes it back until
 * it ends. wpt_callback_cancel_state: that state, or -1 (the waits stay held off). */
void wpt_cancel_allow_callbacks(int held);
int  wpt_callback_cancel_state(void);
/* A public call that only looks (lists or asks for sessions or providers, subscribes to one):
 * cancellation held off (it takes the control and registry locks and waits for answers with
 * connections open), and a runtime directory or registry that a clean-up removed not made
 * again for it (no session is there to find), until wpt_lookup_end. */
typedef struct {
    int cancel_state;
    int was_not_made;
} wpt_lookup;
static inline wpt_lookup wpt_lookup_begin(void) {
    wpt_lookup l;
    l.cancel_state = wpt_cancel_hold();
    l.was_not_made = wpt_runtime_dir_not_made_begin();
    return l;
}
static inline void wpt_lookup_end(wpt_lookup l) {
    wpt_runtime_dir_not_made_end(l.was_not_made);
    wpt_cancel_restore(l.cancel_state);
}
/* Make sure this process listens for enable notifications (RegisterTraceGuids): a close made
 * in a callback and not done yet is withdrawn, one joining the endpoint thread waited for. */
ULONG wpt_endpoint_ensure(void);
/* Is this thread the endpoint thread (never one that must wait for a lock of a copy)? */
int wpt_on_endpoint_thread(void);
/* Map the memory of hosted session (slot, whole registry generation) into this process if not
 * done yet: the JOIN names the whole generation, so the host of a newer session in the slot
 * (even 256 generations on, with the same handles) refuses it. It carries `incarnation`, taken
 * with the slot and generation (wpt_reg_incarnation_for; 0: none), so the host of a session of
 * a registry made again since, with the same slot and generation, refuses it too; a forked
 * child joins again with it. */
ULONG wpt_attach(uint32_t slot, uint32_t generation, uint32_t incarnation);
/* How long a broadcast waits for each provider process's answer, and the bound of a JOIN the
 * endpoint thread makes before it answers (within that wait: a host too slow to hand out its
 * session is answered ERROR_BUSY, which EnableTrace reports, and the endpoint tries again). */
#define WPT_BROADCAST_WAIT_MS 3000
#define WPT_ENDPOINT_JOIN_MS  2000
_Static_assert(WPT_ENDPOINT_JOIN_MS < WPT_BROADCAST_WAIT_MS, "a JOIN is answered within the broadcast's wait");
/* Tell every other provider process about an enable change of the session `meant_for` names
 * (wpt_for_session, as a request's status word) and wait for their answers: the first failure
 * one of them answered (e.g. it could not allocate its callback list), else ERROR_SUCCESS. */
ULONG wpt_broadcast(uint32_t kind, uint32_t meant_for, const wpt_wire_enable *msg);
/* An enable's incarnation is one of three: a registry's (random, never 0 nor this value), 0
 * (none sent: a host that does not check it, or a disable), or WPT_INCARNATION_PRIVATE, the
 * one an enable of a private session is applied with: such a session has no host and is its
 * process's alone, so no provider joins for it (make_usable, etw_provider.c). A forked child's
 * provider, whose enable names its parent's private session, stays disabled, even once a
 * registry made again after a clean-up gives that slot and generation to another process's
 * session (a JOIN there would be accepted). No registry is given this incarnation
 * (new_incarnation, etw_registry.c). */
#define WPT_INCARNATION_PRIVATE UINT32_MAX
/* Apply an enable change in this process: ControlCallbacks of the matching registrations
 * run in the calling thread. A disable only applies to the session holding the GUID. An
 * enable names its session's whole registry generation (the handle carries 8 bits of it) and
 * the incarnation found with it (see wpt_attach and WPT_INCARNATION_PRIVATE; 0 for a
 * disable), with which this process joins the session when a registration needs it; a
 * disable names the generation when known (0: not known). */
ULONG wpt_apply_enable(const GUID *guid, int enable, TRACEHANDLE logger, uint32_t generation,
                       uint32_t incarnation, uint32_t clock_type, uint64_t version);
/* The session in `slot` that `meant_for` names (wpt_for_session; from an older build, its low
 * 8 bits) stopped or its host is gone: disable what this process has on it, and nothing it has
 * on a newer session of the slot. */
void  wpt_apply_session_gone(uint32_t slot, uint32_t meant_for);
/* Copy the registry's enables into this process (a fresh endpoint). ERROR_BUSY: the registry
 * lock was held too long, or an enable could not be delivered (its session's host too slow to
 * hand it out, no memory for the callbacks): the copy is to be made again later. */
ULONG wpt_apply_registry_snapshot(void);
/* The same, and this process's enables the registry no longer holds disabled: what follows
 * changes it heard of and could not check (ERROR_BUSY as above). */
ULONG wpt_reconcile_with_registry(void);
/* The callbacks a thread cancelled in a callback never ran, owed since (a DISABLE, or the
 * ENABLE of a private session of this process; `without_endpoint`: of a session mapped here
 * too). ERROR_SUCCESS, or what kept one from being delivered (to be tried again later). */
ULONG wpt_deliver_owed(int without_endpoint);
/* At an entry point, outside callbacks: what is owed is delivered here if no endpoint thread
 * of this process will (see wpt_endpoint_redeliver). */
void  wpt_deliver_owed_at_entry(void);
/* Set in a forked child whose callbacks are held (see wpptrace_hold_callbacks_after_fork): an
 * entry point of the application lets them go, the child running its code again. A trace call
 * (maybe in a signal handler) only clears it, taking no lock: the endpoint thread sees it
 * within its wait; the other entry points wake the thread (wpt_let_held_callbacks_go), which
 * then makes the child's copy of the registry. */
extern _Atomic int wpt_callbacks_held;
void  wpt_let_held_callbacks_go(void);
static inline void wpt_release_held_callbacks(void) {
    if (atomic_load_explicit(&wpt_callbacks_held, memory_order_relaxed)) atomic_store(&wpt_callbacks_held, 0);
}
/* Count (once each) the registrations still owed a change that nothing delivers: the
 * endpoint's part checks there is no endpoint thread and a redelivery is pending. */
void  wpt_endpoint_owed_undelivered(void);
void  wpt_count_owed_undelivered(void);
/* Enables of other processes' sessions a registry copy found no room for in this process's
 * table, each counted once (each is dropped; the copy that drops one first answers
 * ERROR_NOT_ENOUGH_MEMORY: the copy is not made again for it). wpptrace_enables_dropped reads it. */
extern _Atomic uint32_t wpt_enables_dropped;
/* An enable of this process could not be delivered (its session's host too slow to hand out
 * the session): the endpoint thread reconciles with the registry later, which delivers it. */
void  wpt_endpoint_redeliver(void);
/* This process's registered control GUIDs (LIST). */
size_t wpt_registered_guids(wpt_wire_registered *out, size_t max);
/* Enables this process delivered itself for a slot (ControlTrace STOP, before the host stops, or
 * once it found the host gone): disabled, their callbacks free to make the runtime directory
 * again. */
void  wpt_providers_session_stopping(uint32_t slot, uint32_t generation);
void  wpt_providers_after_fork(void);
/* This thread is running a ControlCallback (its caller may hold the control lock: a STOP of a
 * private session): it must not wait for a thread that may run a callback itself. */
int   wpt_in_callback(void);
void  wpt_providers_fork_prepare(void);
void  wpt_providers_fork_parent(void);
void  wpt_sessions_after_fork(void);     /* forked child: private sessions stay the parent's */

#endif
