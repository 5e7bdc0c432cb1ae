/* etw_session.c: a trace session's buffers: pool, per-processor lock-free reservation, flush thread.
 *
 * Design (see _etw_internal.h for the split):
 * - Per-processor buffers (not per-thread: ProcessorIndex must stay < NumberOfProcessors and
 *   any number of threads may log). A writer picks the stream of the CPU it runs on (rseq;
 *   one stream with EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) and reserves space with one CAS
 *   on the buffer's state word. The timestamp is read between loading that word and the
 *   CAS, so a successful CAS means every earlier record of the buffer took its timestamp
 *   before ours: timestamps never decrease within a buffer. A stream's next buffer is only
 *   installed after the previous one was closed (by a CAS/fetch-or on the same word), so
 *   they never decrease across a stream's buffers either (which readers need: they merge
 *   per-processor streams by time). A migrated thread just writes into another stream.
 * - A writer whose record does not fit closes the buffer; whoever swaps it out of the slot
 *   queues it for the flusher. Getting a new buffer takes the pool lock (held for a few
 *   instructions, never across I/O); an empty pool at MaximumBuffers drops the event at once
 *   (ERROR_NOT_ENOUGH_MEMORY, EventsLost += 1), a failed allocation below it too
 *   (ERROR_OUTOFMEMORY). Writers never wait.
 * - A writer commits by storing its record's first word (the size) last; free buffers are
 *   zero, so the flush thread knows a record is complete when that word is not 0. The flush
 *   thread writes queued buffers in queue order (so a stream's buffers get rising
 *   SequenceNumbers) once their records are complete; on FlushTimer it also closes the
 *   current buffers. Empty buffers are never written.
 * - No per-event reference count: STOP closes every stream's buffer (a writer's reservation
 *   either happened before, and the flusher waits for its commit, or fails), and a writer
 *   can only get a new buffer from the pool lock while the session runs. Buffer memory is
 *   mmap'ed and never unmapped: at STOP it is released with MADV_DONTNEED and the buffers
 *   wait in the slot's graveyard for the slot's next session, so a writer preempted inside
 *   TraceMessage across a STOP touches valid (zero) memory and its CAS fails. (Known limit:
 *   a writer that checked its handle, then slept through a STOP *and* a new StartTrace that
 *   reused the slot before reading the slot's buffer, logs that one event to the new
 *   session.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

wpt_session wpt_sessions[WPPTRACE_MAX_SESSIONS];
pthread_mutex_t wpt_control_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
_Atomic uint32_t wpt_global_sequence;
static _Atomic int g_fail_allocations;

void wpptrace_debug_fail_allocations(int count) { atomic_store(&g_fail_allocations, count); }

wpt_session *wpt_session_from_handle(TRACEHANDLE h) {
    uint32_t id = (uint32_t)(h & 0xFFFF);
    if (id == KERNEL_LOGGER_ID) id = WPT_KERNEL_SLOT;
    else if (id == WPT_KERNEL_SLOT || id >= WPPTRACE_MAX_SESSIONS) return NULL;
    wpt_session *s = &wpt_sessions[id];
    if (((h >> 24) & 0xFF) != (atomic_load(&s->generation) & 0xFF)) return NULL;
    return s;
}

wpt_session *wpt_session_by_name(const char *name) {
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_session *s = &wpt_sessions[i];
        uint32_t st = atomic_load(&s->status);
        if ((st == WPT_RUNNING || st == WPT_STOPPING) && strcmp(s->name, name) == 0) return s;
    }
    return NULL;
}

/* ---- pool ------------------------------------------------------------------------------ */

static ULONG pool_get_locked(wpt_session *s, wpt_buffer **out) {
    wpt_buffer *b = s->free_list;
    if (b) {
        s->free_list = b->next;
        s->free_count--;
        *out = b;
        return ERROR_SUCCESS;
    }
    if (s->allocated >= s->max_buffers) return ERROR_NOT_ENOUGH_MEMORY;
    if (atomic_load(&g_fail_allocations) > 0) {
        atomic_fetch_sub(&g_fail_allocations, 1);
        return ERROR_OUTOFMEMORY;
    }
    /* reuse a buffer of an earlier run of this slot if one has the right size */
    for (wpt_buffer **link = &s->graveyard; *link; link = &(*link)->next) {
        if ((*link)->capacity == s->buffer_size) {
            b = *link;
            *link = b->next;
            break;
        }
    }
    if (!b) {
        b = calloc(1, sizeof *b);
        void *data = b ? mmap(NULL, s->buffer_size, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
        if (data == MAP_FAILED) {
            free(b);
            return ERROR_OUTOFMEMORY;
        }
        b->data = data;
        b->capacity = s->buffer_size;
        atomic_store(&b->state, WPT_CLOSED);    /* free buffers look closed to stale writers */
    }
    memset(b->data, 0, s->buffer_size);      /* fault the pages in now, not on a writer's path */
    s->all[s->allocated++] = b;
    *out = b;
    return ERROR_SUCCESS;
}

static void pool_put(wpt_session *s, wpt_buffer *b) {
    uint64_t st = atomic_load(&b->state);
    atomic_store(&b->state, (st & 0xFFFFFFFF00000000ull) | WPT_CLOSED);
    pthread_mutex_lock(&s->pool_lock);
    b->next = s->free_list;
    s->free_list = b;
    s->free_count++;
    pthread_mutex_unlock(&s->pool_lock);
}

void wpt_session_counts(wpt_session *s, uint32_t *allocated, uint32_t *free_count) {
    pthread_mutex_lock(&s->pool_lock);
    *allocated = s->allocated;
    *free_count = s->free_count;
    pthread_mutex_unlock(&s->pool_lock);
}

ULONG wpt_session_grow_max(wpt_session *s, uint32_t max_buffers) {
    pthread_mutex_lock(&s->pool_lock);
    ULONG rc = ERROR_SUCCESS;
    if (max_buffers > s->max_buffers) {
        wpt_buffer **all = realloc(s->all, max_buffers * sizeof *all);
        if (!all) rc = ERROR_OUTOFMEMORY;
        else { s->all = all; s->max_buffers = max_buffers; }
    }
    pthread_mutex_unlock(&s->pool_lock);
    return rc;
}

/* Install a fresh buffer in an empty slot (or find that another writer already did). */
ULONG wpt_install_buffer(wpt_session *s, wpt_cpu_slot *slot, uint32_t processor, TRACEHANDLE h) {
    ULONG rc = ERROR_SUCCESS;
    pthread_mutex_lock(&s->pool_lock);
    if (atomic_load(&s->status) != WPT_RUNNING
        || (atomic_load(&s->generation) & 0xFF) != ((h >> 24) & 0xFF)) {
        rc = ERROR_INVALID_HANDLE;          /* stopping (or stopped): no new buffers */
    } else if (atomic_load_explicit(&slot->current, memory_order_acquire) == NULL) {
        wpt_buffer *b;
        rc = pool_get_locked(s, &b);
        if (rc == ERROR_SUCCESS) {
            b->processor = processor;
            uint64_t gen = (atomic_load(&b->state) >> 32) + 1;
            atomic_store_explicit(&b->state, (gen << 32) | WPT_BUFFER_HEADER_SIZE, memory_order_release);
            atomic_store_explicit(&slot->current, b, memory_order_release);
        }
    }
    pthread_mutex_unlock(&s->pool_lock);
    return rc;
}

/* Take a closed buffer out of its slot; exactly one caller wins and queues it. The swap and
 * the enqueue happen under the flush lock: the slot's next buffer can be installed right
 * after the swap, but it can only be queued after this one, so a stream's buffers reach the
 * flusher (and get their SequenceNumbers) in the order they were filled. */
void wpt_retire(wpt_session *s, wpt_cpu_slot *slot, wpt_buffer *b) {
    pthread_mutex_lock(&s->flush_lock);
    wpt_buffer *expect = b;
    if (atomic_compare_exchange_strong(&slot->current, &expect, NULL)) {
        b->next = NULL;
        if (s->fq_tail) s->fq_tail->next = b;
        else s->fq_head = b;
        s->fq_tail = b;
        pthread_cond_signal(&s->flush_cond);
    }
    pthread_mutex_unlock(&s->flush_lock);
}

/* ---- flushing ---------------------------------------------------------------------------- */

static void finish_buffer(wpt_session *s, wpt_buffer *b, uint32_t used) {
    WMI_BUFFER_HEADER *h = (WMI_BUFFER_HEADER *)b->data;
    memset(h, 0, sizeof *h);
    h->BufferSize = s->buffer_size;
    h->SavedOffset = used;
    h->CurrentOffset = used;
    h->TimeStamp = wpt_raw_now(s);
    h->SequenceNumber = ++s->buffer_sequence;
    h->ClientContext.ProcessorIndex = (uint16_t)b->processor;
    h->ClientContext.LoggerId = s->logger_id;
    h->State = ETW_BUFFER_STATE_FLUSH;
    h->FilledBytes = used;
    h->BufferFlag = ETW_BUFFER_FLAG_PROC_INDEX;
    h->BufferType = ETW_BUFFER_TYPE_GENERIC;
    memset(b->data + used, 0xFF, s->buffer_size - used);
}

/* Wait until every record reserved in b[0x48:used) has its first word stored (wpt_commit);
 * a writer between its CAS and its commit is copying a few bytes. */
static void wait_for_commits(const wpt_buffer *b, uint32_t used) {
    uint32_t off = WPT_BUFFER_HEADER_SIZE;
    while (off < used) {
        const _Atomic uint32_t *word = (const _Atomic uint32_t *)(const void *)(b->data + off);
        uint32_t first;
        while ((first = atomic_load_explicit(word, memory_order_acquire)) == 0) sched_yield();
        off += ((first & 0xFFFF) + 7u) & ~7u;      /* every record kind keeps its size there */
    }
}

/* Write out one queued buffer once its writers have committed, then zero it for reuse. */
static void flush_one(wpt_session *s, wpt_buffer *b) {
    uint32_t used = (uint32_t)atomic_load(&b->state) & ~WPT_CLOSED;
    uint32_t records = used - WPT_BUFFER_HEADER_SIZE;
    wait_for_commits(b, used);
    if (records > 0) {
        finish_buffer(s, b, used);
        int delivered = 0;
        if (s->logfile) delivered |= wpt_logfile_write(s, b->data) == 0;
        if (s->realtime) {
            if (wpt_rt_deliver(s, b->data, s->buffer_size) == 0)
                atomic_fetch_add(&s->rt_buffers_lost, 1);
            else delivered = 1;
        }
        if (delivered) atomic_fetch_add(&s->buffers_written, 1);
        if (s->logfile) wpt_logfile_update_header(s, 0);
        memset(b->data, 0, s->buffer_size);
    }
    pool_put(s, b);
}

/* Close every stream's current buffer that holds records (all of them when stopping: then
 * no reservation can follow) and queue it; empty ones go back to the pool unwritten. */
static void retire_all(wpt_session *s, int stopping) {
    for (uint32_t i = 0; i < s->nslots; i++) {
        wpt_cpu_slot *slot = &s->slots[i];
        wpt_buffer *b = atomic_load(&slot->current);
        if (!b) continue;
        uint64_t st = atomic_load(&b->state);
        if (!stopping && ((uint32_t)st & ~WPT_CLOSED) == WPT_BUFFER_HEADER_SIZE) continue;
        atomic_fetch_or(&b->state, WPT_CLOSED);
        wpt_retire(s, slot, b);
    }
}

static void deadline_after(struct timespec *ts, uint32_t ms) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) { ts->tv_sec++; ts->tv_nsec -= 1000000000L; }
}

/* UPDATE with a new LogFileName (flusher thread, every buffer so far written to the old
 * file): finish the old file, start the new one with its own header and SequenceNumbers. */
static ULONG switch_logfile(wpt_session *s) {
    if (s->logfile) wpt_logfile_close(s);
    strcpy(s->logfile_name, s->next_logfile);
    s->buffer_sequence = 0;
    ULONG rc = wpt_logfile_open(s);
    if (rc != ERROR_SUCCESS) s->logfile_name[0] = 0;     /* go on without a file */
    return rc;
}

static void *flusher_main(void *arg) {
    wpt_session *s = arg;
    atomic_store(&s->flusher_tid, (uint32_t)syscall(SYS_gettid));
    struct timespec next_timer;
    deadline_after(&next_timer, s->flush_interval_ms ? s->flush_interval_ms : 1000);
    pthread_mutex_lock(&s->flush_lock);
    for (;;) {
        int timer_due = 0;
        while (!s->stop_requested && (s->hold_flush || (!s->fq_head && s->flush_requests == s->flush_completed))) {
            if (s->flush_interval_ms && !s->hold_flush) {
                if (pthread_cond_timedwait(&s->flush_cond, &s->flush_lock, &next_timer) == ETIMEDOUT) {
                    timer_due = 1;
                    break;
                }
            } else {
                pthread_cond_wait(&s->flush_cond, &s->flush_lock);
            }
        }
        uint64_t requests = s->flush_requests;
        int stopping = s->stop_requested;
        if (timer_due) deadline_after(&next_timer, s->flush_interval_ms);
        if (timer_due || stopping || requests != s->flush_completed) {
            pthread_mutex_unlock(&s->flush_lock);
            retire_all(s, stopping);
            pthread_mutex_lock(&s->flush_lock);
        }
        while (s->fq_head) {
            wpt_buffer *b = s->fq_head;
            s->fq_head = b->next;
            if (!s->fq_head) s->fq_tail = NULL;
            pthread_mutex_unlock(&s->flush_lock);
            flush_one(s, b);
            pthread_mutex_lock(&s->flush_lock);
        }
        if (s->switch_pending) {
            s->switch_pending = 0;
            pthread_mutex_unlock(&s->flush_lock);
            s->switch_result = switch_logfile(s);
            pthread_mutex_lock(&s->flush_lock);
        }
        s->flush_completed = requests;
        pthread_cond_broadcast(&s->flush_done);
        if (stopping) break;
    }
    pthread_mutex_unlock(&s->flush_lock);
    return NULL;
}

ULONG wpt_session_flush(wpt_session *s) {
    pthread_mutex_lock(&s->flush_lock);
    uint64_t ticket = ++s->flush_requests;
    pthread_cond_signal(&s->flush_cond);
    while (s->flush_completed < ticket && !s->stop_requested)
        pthread_cond_wait(&s->flush_done, &s->flush_lock);
    pthread_mutex_unlock(&s->flush_lock);
    return ERROR_SUCCESS;
}

ULONG wpt_session_switch_file(wpt_session *s, const char *path) {
    ULONG rc = wpt_logfile_check_path(path);
    if (rc != ERROR_SUCCESS) return rc;
    pthread_mutex_lock(&s->flush_lock);
    strcpy(s->next_logfile, path);
    s->switch_pending = 1;
    uint64_t ticket = ++s->flush_requests;
    pthread_cond_signal(&s->flush_cond);
    while (s->flush_completed < ticket && !s->stop_requested)
        pthread_cond_wait(&s->flush_done, &s->flush_lock);
    rc = s->switch_result;
    pthread_mutex_unlock(&s->flush_lock);
    return rc;
}

void wpt_session_update_flush_timer(wpt_session *s, uint32_t interval_ms) {
    pthread_mutex_lock(&s->flush_lock);
    s->flush_interval_ms = interval_ms;
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->flush_lock);
}

ULONG wpptrace_debug_hold_flush(TRACEHANDLE h, int hold) {
    wpt_session *s = wpt_session_from_handle(h);
    if (!s || atomic_load(&s->status) != WPT_RUNNING) return ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&s->flush_lock);
    s->hold_flush = hold;
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->flush_lock);
    return ERROR_SUCCESS;
}

/* ---- header buffer ------------------------------------------------------------------------- */

void wpt_build_header_buffer(wpt_session *s, unsigned char *out, int64_t end_time,
                             uint32_t buffers_written) {
    WMI_BUFFER_HEADER *bh = (WMI_BUFFER_HEADER *)out;
    SYSTEM_TRACE_HEADER *rec = (SYSTEM_TRACE_HEADER *)(out + WPT_BUFFER_HEADER_SIZE);
    TRACE_LOGFILE_HEADER64 *lh = (TRACE_LOGFILE_HEADER64 *)(rec + 1);
    uint16_t *names = (uint16_t *)(lh + 1);
    /* names: at most what fits in the buffer after the fixed parts */
    size_t room = (s->buffer_size - WPT_BUFFER_HEADER_SIZE - sizeof *rec - sizeof *lh) / 2;
    size_t n1 = wpt_utf8_to_utf16(s->name, names, room / 2);
    size_t n2 = wpt_utf8_to_utf16(s->logfile_name, names + n1 + 1, room - (n1 + 1));
    uint32_t size = (uint32_t)(sizeof *rec + sizeof *lh + 2 * (n1 + 1) + 2 * (n2 + 1));
    uint32_t used = WPT_BUFFER_HEADER_SIZE + ((size + 7u) & ~7u);
    memset((unsigned char *)rec + size, 0, used - WPT_BUFFER_HEADER_SIZE - size);

    memset(bh, 0, sizeof *bh);
    bh->BufferSize = s->buffer_size;
    bh->SavedOffset = bh->CurrentOffset = bh->FilledBytes = used;
    bh->ClientContext.LoggerId = s->logger_id;
    bh->State = ETW_BUFFER_STATE_FLUSH;
    bh->BufferFlag = ETW_BUFFER_FLAG_FLUSH_MARKER | ETW_BUFFER_FLAG_PROC_INDEX;
    bh->BufferType = ETW_BUFFER_TYPE_HEADER;

    rec->Version = SYSTEM_TRACE_VERSION;
    rec->HeaderType = TRACE_HEADER_TYPE_SYSTEM64;
    rec->Flags = TRACE_RECORD_MARKER_FIXED;
    rec->Size = (uint16_t)size;
    rec->HookId = 0;
    rec->ThreadId = s->start_tid;
    rec->ProcessId = s->start_pid;
    rec->SystemTime = s->start_raw;
    rec->KernelTime = 0;
    rec->UserTime = 0;

    memset(lh, 0, sizeof *lh);
    lh->BufferSize = s->buffer_size;
    lh->MajorVersion = 10;            /* observed `0a 00 01 05` on Windows 10/11 */
    lh->MinorVersion = 0;
    lh->SubVersion = 1;
    lh->SubMinorVersion = 5;
    lh->ProviderVersion = 19041;      /* an OS build number readers accept */
    lh->NumberOfProcessors = s->nslots > 1 ? s->nslots : wpt_processor_count();
    lh->EndTime = end_time;
    lh->TimerResolution = 156250;
    lh->MaximumFileSize = s->max_file_size_field;
    lh->LogFileMode = s->log_file_mode;
    lh->BuffersWritten = buffers_written;
    lh->StartBuffers = 1;
    lh->PointerSize = (uint32_t)sizeof(void *);
    lh->EventsLost = atomic_load(&s->events_lost);
    lh->CpuSpeedInMHz = s->cpu_mhz;
    lh->BootTime = s->boot_filetime;
    lh->PerfFreq = 10000000;            /* clock 1 ticks are 100 ns; clock 2 too */
    lh->StartTime = s->start_filetime;
    lh->ReservedFlags = s->clock_type;
    lh->BuffersLost = atomic_load(&s->log_buffers_lost);
}

/* ---- start / stop ------------------------------------------------------------------------ */

/* End of a run: give the memory back to the system but keep the mappings (see the top). */
static void free_buffers(wpt_session *s) {
    for (uint32_t i = 0; i < s->allocated; i++) {
        wpt_buffer *b = s->all[i];
        atomic_fetch_or(&b->state, WPT_CLOSED);
        madvise(b->data, b->capacity, MADV_DONTNEED);
        b->next = s->graveyard;
        s->graveyard = b;
    }
    free(s->all);
    s->all = NULL;
    s->allocated = s->free_count = 0;
    s->free_list = NULL;
}

static void init_session_locks(wpt_session *s) {
    pthread_mutex_init(&s->pool_lock, NULL);
    pthread_mutex_init(&s->flush_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->flush_cond, &ca);
    pthread_cond_init(&s->flush_done, NULL);
    pthread_condattr_destroy(&ca);
}

/* fork(): sessions belong to the process that started them. In the child every session is
 * gone (its handles fail with ERROR_INVALID_HANDLE; the parent's file and buffers are left
 * alone, their memory simply leaks) and every lock is new, since another thread of the
 * parent may have held one at the fork. */
static void sessions_after_fork_child(void) {
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&wpt_control_lock, &a);
    pthread_mutexattr_destroy(&a);
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_session *s = &wpt_sessions[i];
        if (!s->slots) continue;
        init_session_locks(s);
        if (atomic_load(&s->status) == WPT_FREE) continue;
        if (s->logfile) wpt_logfile_abandon(s);
        s->realtime = NULL;
        for (uint32_t k = 0; k < s->slots_capacity; k++) atomic_store(&s->slots[k].current, NULL);
        s->all = NULL;
        s->free_list = NULL;
        s->allocated = s->free_count = 0;
        s->fq_head = s->fq_tail = NULL;
        s->flusher_started = 0;
        atomic_fetch_add(&s->generation, 1);
        atomic_store(&s->status, WPT_FREE);
    }
    wpt_providers_after_fork();
}

static pthread_once_t g_fork_once = PTHREAD_ONCE_INIT;
static void install_fork_handler(void) { pthread_atfork(NULL, NULL, sessions_after_fork_child); }

ULONG wpt_session_start(wpt_session *s) {
    pthread_once(&g_fork_once, install_fork_handler);
    uint32_t ncpu = wpt_processor_count();
    if (!s->slots) {
        s->slots = aligned_alloc(64, sizeof(wpt_cpu_slot) * ncpu);
        if (!s->slots) return ERROR_OUTOFMEMORY;
        memset(s->slots, 0, sizeof(wpt_cpu_slot) * ncpu);
        s->slots_capacity = ncpu;
        init_session_locks(s);
    }
    s->nslots = (s->log_file_mode & EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) ? 1 : s->slots_capacity;
    for (uint32_t i = 0; i < s->slots_capacity; i++) atomic_store(&s->slots[i].current, NULL);

    s->all = calloc(s->max_buffers, sizeof *s->all);
    if (!s->all) return ERROR_OUTOFMEMORY;
    s->free_list = NULL;
    s->allocated = s->free_count = 0;
    for (uint32_t i = 0; i < s->min_buffers; i++) {
        wpt_buffer *b;
        pthread_mutex_lock(&s->pool_lock);
        ULONG rc = pool_get_locked(s, &b);
        pthread_mutex_unlock(&s->pool_lock);
        if (rc != ERROR_SUCCESS) { free_buffers(s); return rc; }
        pool_put(s, b);
    }
    s->fq_head = s->fq_tail = NULL;
    s->flush_requests = s->flush_completed = 0;
    s->stop_requested = s->hold_flush = s->switch_pending = 0;
    s->buffer_sequence = 0;
    atomic_store(&s->events_lost, 0);
    atomic_store(&s->buffers_written, 0);
    atomic_store(&s->log_buffers_lost, 0);
    atomic_store(&s->rt_buffers_lost, 0);
    atomic_store(&s->local_sequence, 0);
    atomic_store(&s->flusher_tid, 0);

    /* clock: StartTime and the header event's raw time are read at the same instant */
    s->cpu_mhz = wpt_cpu_mhz();
    s->start_tid = wpt_current_tid();
    s->start_pid = wpt_current_pid();
    int64_t ft = wpt_filetime_now();
    int64_t mono = wpt_mono100_now();
    s->filetime_offset = ft - mono;
    s->start_filetime = ft;
    s->start_raw = wpt_raw_now(s);
    s->boot_filetime = wpt_boot_filetime();

    ULONG rc = ERROR_SUCCESS;
    s->logfile = NULL;
    s->realtime = NULL;
    if (s->logfile_name[0]) rc = wpt_logfile_open(s);
    if (rc == ERROR_SUCCESS && (s->log_file_mode & EVENT_TRACE_REAL_TIME_MODE)) rc = wpt_rt_open(s);
    if (rc == ERROR_SUCCESS) {
        atomic_store(&s->buffers_written, 1);          /* the header buffer */
        if (pthread_create(&s->flusher, NULL, flusher_main, s) != 0) rc = ERROR_OUTOFMEMORY;
        else {
            s->flusher_started = 1;
            while (atomic_load(&s->flusher_tid) == 0) sched_yield();   /* QUERY reports it */
        }
    }
    if (rc != ERROR_SUCCESS) {
        if (s->logfile) wpt_logfile_close(s);
        if (s->realtime) wpt_rt_end(s);
        free_buffers(s);
        return rc;
    }
    return ERROR_SUCCESS;
}

ULONG wpt_session_stop(wpt_session *s) {
    /* New writers now fail; the flusher closes every buffer and waits for the reservations
     * made before to be committed. */
    atomic_store_explicit(&s->status, WPT_STOPPING, memory_order_seq_cst);
    pthread_mutex_lock(&s->pool_lock);      /* an install in progress finishes first */
    pthread_mutex_unlock(&s->pool_lock);
    pthread_mutex_lock(&s->flush_lock);
    s->stop_requested = 1;
    s->hold_flush = 0;
    pthread_cond_signal(&s->flush_cond);
    pthread_mutex_unlock(&s->flush_lock);
    if (s->flusher_started) pthread_join(s->flusher, NULL);
    s->flusher_started = 0;
    for (uint32_t i = 0; i < s->nslots; i++) {
        wpt_buffer *b = atomic_exchange(&s->slots[i].current, NULL);
        (void)b;   /* empty (retire_all queued the others); owned by the pool */
    }
    if (s->logfile) wpt_logfile_close(s);
    if (s->realtime) wpt_rt_end(s);
    free_buffers(s);
    return ERROR_SUCCESS;
}
