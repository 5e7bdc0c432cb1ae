/* etw_session.c: the process that runs a session: its memory, flusher thread and sinks.
 *
 * Writers fill buffers (see _etw_internal.h, etw_buffers.c); this file takes them from there:
 * - The flusher sleeps on the session's wake word (a futex in the shared region) and wakes
 *   when a writer retires a buffer, on FlushTimer, and on FLUSH/UPDATE/STOP. It finds the
 *   retired buffers by scanning the descriptors and writes each processor stream's buffers
 *   in install order, so a stream's buffers get rising SequenceNumbers and timestamps never
 *   go back within a stream. On FlushTimer it also retires the current buffers holding
 *   records. Empty buffers are never written.
 * - A record is complete when its first word has bit 31 set (wpt_commit). The flusher waits
 *   for that a bounded time: a writer that died (its thread is gone) is given up at once,
 *   one that is alive but does not commit (cancelled, longjmp'ed out, stopped) after
 *   WPT_COMMIT_WAIT_MS. A given-up record is cut out of the buffer copy that is written
 *   (never torn into the file) and counted in EventsLost; if its writer may still store into
 *   the buffer, the buffer is quarantined (never reused) instead of going back to the pool.
 *   Records still all zero (writers stopped right after reserving) are one span of unknown
 *   count: the flusher walks the quarantined span again as their writers go on, and at the
 *   end of STOP, counting each record it finds there (and, at STOP, each stretch still zero
 *   as one).
 * - STOP sets the shared status (new reservations fail), then the flusher retires every
 *   stream's buffer and flushes until every slot is empty, seals the slots (an install a
 *   writer began earlier fails) and exits; the caller closes sinks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

wpt_session wpt_sessions[WPPTRACE_MAX_SESSIONS];
/* One bit per slot whose session this process runs privately: a forked child reads only those
 * sessions (each spans pages a child that never had a session would fault in to read). */
static _Atomic uint64_t g_private_slots;
#ifdef WPT_TEST_POINTS
_Atomic uint32_t wpt_fork_sessions_read;
#endif

void wpt_session_set_role(wpt_session *s, uint32_t role) {
    uint64_t bit = 1ull << (s - wpt_sessions);
    /* a fork may come between the two stores (its handlers take no control lock): the bit is
     * set before a session is PRIVATE and cleared after it no longer is, so a child never
     * sees a private session without its bit (it would keep the parent's) */
    if (role == WPT_ROLE_PRIVATE) {
        atomic_fetch_or(&g_private_slots, bit);
        atomic_store(&s->role, role);
    } else {
        atomic_store(&s->role, role);
        atomic_fetch_and(&g_private_slots, ~bit);
    }
}
pthread_mutex_t wpt_control_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

uint64_t wpt_flush_interval(uint32_t field, uint32_t mode) {
    uint64_t ms = (mode & EVENT_TRACE_USE_MS_FLUSH_TIMER) ? field : (uint64_t)field * 1000u;
    if (ms > WPT_MAX_FLUSH_MS) ms = WPT_MAX_FLUSH_MS;
    if (!ms && (mode & EVENT_TRACE_REAL_TIME_MODE)) ms = 1000;
    return ms;
}

wpt_session *wpt_local_session(TRACEHANDLE h) {
    uint32_t slot = wpt_handle_slot(h);
    if (slot == UINT32_MAX) return NULL;
    wpt_session *s = &wpt_sessions[slot];
    if (atomic_load(&s->role) == WPT_ROLE_NONE || (uint8_t)s->registry_generation != wpt_handle_generation(h))
        return NULL;
    return s;
}

wpt_session *wpt_local_session_by_name(const char *name) {
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_session *s = &wpt_sessions[i];
        uint32_t st = atomic_load(&s->status);
        if (atomic_load(&s->role) != WPT_ROLE_NONE && (st == WPT_RUNNING || st == WPT_STOPPING)
            && strcmp(s->name, name) == 0)
            return s;
    }
    return NULL;
}

/* ---- scanning and flushing ------------------------------------------------------------- */

typedef struct {
    uint32_t index1, processor, seq, generation;
} candidate;

static int by_stream(const void *a, const void *b) {
    const candidate *x = a, *y = b;
    if (x->processor != y->processor) return x->processor < y->processor ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void finish_buffer(wpt_session *s, unsigned char *data, uint32_t used, uint32_t processor) {
    WMI_BUFFER_HEADER *h = (WMI_BUFFER_HEADER *)(void *)data;
    memset(h, 0, sizeof *h);
    h->BufferSize = s->buffer_size;
    h->SavedOffset = used;
    h->CurrentOffset = used;
    h->TimeStamp = wpt_raw_now_of(s->clock_type, s->filetime_offset, &s->cycles);
    h->SequenceNumber = ++s->buffer_sequence;
    h->ClientContext.ProcessorIndex = (uint16_t)processor;
    h->ClientContext.LoggerId = s->logger_id;
    h->State = ETW_BUFFER_STATE_FLUSH;
    h->FilledBytes = used;
    h->BufferFlag = ETW_BUFFER_FLAG_PROC_INDEX;
    h->BufferType = ETW_BUFFER_TYPE_GENERIC;
    memset(data + used, 0xFF, s->buffer_size - used);
}

static inline uint32_t word_at(const unsigned char *data, uint32_t off) {
    return atomic_load_explicit((const _Atomic uint32_t *)(const void *)(data + off), memory_order_acquire);
}

static inline int is_record_word(uint32_t w) {
    return (w & 0x80000000u) || (w & 0xFFFF0000u) == WPT_RECORD_PENDING;
}

/* The bytes a record takes in the buffer, from its first word (committed or pending). */
static inline uint32_t record_span(uint32_t w) {
    return ((w & 0xFFFF) + 7u) & ~7u;
}

/* The first non-zero word at or after `from` (8-byte steps), or `used`. */
static uint32_t next_non_zero(const unsigned char *data, uint32_t from, uint32_t used) {
    while (from < used && !word_at(data, from)) from += 8;
    return from < used ? from : used;
}

/* Where the record after an abandoned one with unknown size starts: its writer was stopped
 * right after reserving, so its bytes are still zero and the next non-zero word that starts
 * a chain of records ending exactly at `used` is the next record. A zero word in the chain is
 * another such record (found the same way when the wait reaches it). 0 if there is none. */
static uint32_t next_record_after(const unsigned char *data, uint32_t off, uint32_t used) {
    uint32_t p = next_non_zero(data, off + 8, used);
    if (p == used) return 0;
    uint32_t q = p;
    while (q < used) {
        uint32_t x = word_at(data, q);
        if (!x) {
            q = next_non_zero(data, q + 8, used);
            continue;
        }
        uint32_t size = record_span(x);
        if (!is_record_word(x) || size == 0) break;
        q += size;
    }
    return q == used ? p : 0;
}

typedef struct {
    uint32_t off, size;
    int zero;                        /* still all zero: one record counted, maybe more */
} cut;

/* A given-up span whose records were all zero when the flusher gave them up: it counted one
 * record lost for the whole span, which may hold several (writers stopped right after
 * reserving). The buffer is quarantined, never reused, so as the writers go on their records
 * appear in it; the flusher walks them and counts the rest (recount_zero_runs). */
typedef struct {
    uint32_t index1, generation;
    uint32_t pos, end;               /* the part of the span not walked yet */
    uint32_t seen;                   /* records found in the span so far */
} zero_run;

/* Wait (bounded) until every record in data[WPT_BUFFER_HEADER_SIZE, *used) is committed. Records given up are
 * returned in cuts; *used shrinks if a record's extent could not be found (*zero_tail is then
 * where, else 0). Returns the number of cuts; *live is set if a given-up writer may still be
 * running. */
static int wait_for_commits(wpt_session *s, const unsigned char *data, uint32_t *used, cut *cuts,
                            int *live, uint32_t *zero_tail) {
    int ncuts = 0;
    uint32_t off = WPT_BUFFER_HEADER_SIZE, end = *used;
    int64_t deadline = wpt_mono_ms() + WPT_COMMIT_WAIT_MS;
    int64_t next_check = 0;
    unsigned spins = 0;
    int graced = 0;
    while (off < end) {
        uint32_t w = word_at(data, off);
        if (w & 0x80000000u) {
            uint32_t size = record_span(w);
            if (size == 0 || off + size > end) { end = off; break; }   /* cannot be: stop here */
            off += size;
            spins = 0;
            continue;
        }
        int64_t now = wpt_mono_ms();
        int give_up = now >= deadline;
        uint32_t size = 0;
        if ((w & 0xFFFF0000u) == WPT_RECORD_PENDING) {
            size = record_span(w);
            /* looked at once more when the wait runs out (the flusher itself may have been
             * descheduled past the deadline): a dead writer's buffer is never quarantined */
            if (give_up || (spins > 64 && now >= next_check)) {
                uint32_t tid = word_at(data, off + 4);
                if (tid && wpt_thread_gone(tid)) give_up = 2;     /* nobody will commit it */
                next_check = now + 1;
            }
        }
        if (give_up) {
            if (give_up != 2) *live = 1;
            int zero = 0;
            if (!size) {
                uint32_t next = next_record_after(data, off, end);
                /* its writer went on meanwhile: what was read of its bytes may be its own */
                if (word_at(data, off)) continue;
                size = next ? next - off : 0;
                zero = 1;
            }
            if (!size || off + size > end) {
                /* its extent is unknown: the buffer ends here, the rest recounted later */
                *zero_tail = off;
                end = off;
                atomic_fetch_add(&s->view->sh->events_lost, 1);
                atomic_fetch_add(&s->records_abandoned, 1);
                break;
            }
            cuts[ncuts].off = off;
            cuts[ncuts].size = size;
            cuts[ncuts].zero = zero;
            ncuts++;
            off += size;
            atomic_fetch_add(&s->view->sh->events_lost, 1);
            atomic_fetch_add(&s->records_abandoned, 1);
            /* the rest get one short grace, together: k stopped writers (a debugged process)
             * hold the flusher, which every process's buffers wait for, no longer than one */
            if (give_up != 2 && !graced) {
                deadline = now + 50;
                graced = 1;
            }
            continue;
        }
        /* a writer between its reservation and its commit is copying a few bytes */
        if (++spins < 64) sched_yield();
        else {
            struct timespec nap = {0, 200 * 1000};
            nanosleep(&nap, NULL);
        }
    }
    *used = end;
    return ncuts;
}

/* Keep the all-zero spans given up in a buffer about to be quarantined, to be recounted. */
static void note_zero_runs(wpt_session *s, uint32_t index1, uint32_t generation, const cut *cuts,
                           int ncuts, uint32_t zero_tail, uint32_t full) {
    zero_run *runs = s->zero_runs;
    for (int i = 0; i <= ncuts; i++) {
        uint32_t off, end;
        if (i < ncuts) {
            if (!cuts[i].zero) continue;
            off = cuts[i].off;
            end = off + cuts[i].size;
        } else {
            if (!zero_tail) break;
            off = zero_tail;
            end = full;
        }
        if (s->nzero_runs == WPT_ZERO_RUNS) return;     /* one record counted for each */
        runs[s->nzero_runs++] = (zero_run){index1, generation, off, end, 0};
    }
}

/* Walk the records that appeared in the kept spans since the last look: a span walked to its
 * end adds its records beyond the one counted to EventsLost. At the end of STOP (`final`) a
 * stretch still zero counts as one record (it holds one at least; how many, nobody can say):
 * the next non-zero word starts a record, since a writer's first word is stored first. */
static void recount_zero_runs(wpt_session *s, int final) {
    wpt_view *v = s->view;
    zero_run *runs = s->zero_runs;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < s->nzero_runs; i++) {
        zero_run r = runs[i];
        int readable = r.index1 <= v->capacity
            && atomic_load(&v->desc[r.index1 - 1].phase) == wpt_phase(r.generation, WPT_BUF_QUARANTINED);
        if (readable) {
            const unsigned char *data = wpt_buffer_data(v, r.index1);
            while (r.pos < r.end) {
                uint32_t w = word_at(data, r.pos);
                if (!w) {
                    if (!final) break;                   /* its writer has not gone on yet */
                    r.seen++;
                    r.pos = next_non_zero(data, r.pos + 8, r.end);
                    continue;
                }
                uint32_t size = record_span(w);
                if (!is_record_word(w) || !size || r.pos + size > r.end) {
                    r.pos = r.end;                       /* cannot be: the walk ends here */
                    break;
                }
                r.pos += size;
                r.seen++;
            }
        }
        uint32_t more = 0;
        if (r.pos >= r.end) more = r.seen ? r.seen - 1 : 0;
        else if (!readable) more = r.seen;               /* the unread rest: the one counted */
        else {
            runs[kept++] = r;                            /* walked so far, looked at again */
            continue;
        }
        if (more) {
            atomic_fetch_add(&v->sh->events_lost, more);
            atomic_fetch_add(&s->records_abandoned, more);
        }
    }
    s->nzero_runs = kept;
}

/* Write out one retired buffer, then zero it and put it back (or quarantine it). */
static void flush_one(wpt_session *s, uint32_t index1) {
    wpt_view *v = s->view;
    wpt_desc *d = &v->desc[index1 - 1];
    unsigned char *data = wpt_buffer_data(v, index1);
    uint32_t used = (uint32_t)atomic_load(&d->state) & ~WPT_CLOSED;
    if (used > v->buffer_size) used = v->buffer_size;
    int live = 0, ncuts = 0;
    cut *cuts = s->cut_space;
    uint32_t full = used, zero_tail = 0;
    if (used > WPT_BUFFER_HEADER_SIZE) {
        ncuts = wait_for_commits(s, data, &used, cuts, &live, &zero_tail);
        unsigned char *out = data;
        if (ncuts || live) {
            /* a private copy without the given-up records: a writer still alive can only
             * store into its own record, which the copy leaves out */
            out = s->scratch;
            memcpy(out, data, used);
            if (ncuts) {
                uint32_t w = cuts[0].off;
                for (int i = 0; i < ncuts; i++) {
                    uint32_t from = cuts[i].off + cuts[i].size;
                    uint32_t to = i + 1 < ncuts ? cuts[i + 1].off : used;
                    memmove(out + w, out + from, to - from);
                    w += to - from;
                }
                used = w;
            }
        }
        if (used > WPT_BUFFER_HEADER_SIZE) {
            finish_buffer(s, out, used, atomic_load(&d->processor));
            int delivered = 0;
            if (s->logfile) delivered |= wpt_logfile_write(s, out) == 0;
            if (s->realtime) {
                atomic_fetch_add(&s->rt_buffers_lost, wpt_rt_deliver(s, out, s->buffer_size));
                delivered = 1;
            }
            if (delivered) atomic_fetch_add(&s->buffers_written, 1);
            if (s->logfile) wpt_logfile_update_header(s, 0);
        }
    }
    uint32_t generation = (uint32_t)(atomic_load(&d->phase) >> 32);
    if (live) {
        note_zero_runs(s, index1, generation, cuts, ncuts, zero_tail, full);
        atomic_store(&d->phase, wpt_phase(generation, WPT_BUF_QUARANTINED));
        atomic_fetch_add(&s->buffers_quarantined, 1);
        return;
    }
    memset(data, 0, s->buffer_size);
    atomic_store(&d->phase, wpt_phase(generation, WPT_BUF_FREE));
    atomic_fetch_or(&d->state, WPT_CLOSED);
    wpt_pool_push(v, index1);
}

/* Close every stream's current buffer that holds records (all of them when stopping: then
 * no reservation can follow) and retire it. */
static void retire_all(wpt_session *s, int stopping) {
    wpt_view *v = s->view;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint64_t word = atomic_load(&v->slots[i].word);
        uint32_t index1 = (uint32_t)word;
        if (!index1 || index1 > v->capacity) continue;
        wpt_desc *d = &v->desc[index1 - 1];
        uint64_t st = atomic_load(&d->state);
        if (!stopping && ((uint32_t)st & ~WPT_CLOSED) == WPT_BUFFER_HEADER_SIZE) continue;
        atomic_fetch_or(&d->state, WPT_CLOSED);
        wpt_retire(v, &v->slots[i], word, (uint32_t)(st >> 32));
    }
}

/* Flush the retired buffers found now, each stream in install order. A stream whose next
 * buffer was not found retired (a writer retired it while the scan ran) waits for it, up to
 * a second (*deferred is set); `all` flushes everything found (the end of STOP). Returns
 * the number of buffers flushed. */
static uint32_t flush_retired(wpt_session *s, int all, int *deferred) {
    wpt_view *v = s->view;
    candidate *cand = s->scan_space;
    *deferred = 0;
    uint32_t n = atomic_load(&v->sh->next_unused);
    if (n > v->capacity) n = v->capacity;
    uint32_t count = 0;
    for (uint32_t i = 0; i < n; i++) {
        wpt_desc *d = &v->desc[i];
        uint64_t phase = atomic_load(&d->phase);
        uint64_t st = atomic_load(&d->state);
        /* ACTIVE and closed, of one generation: its retiring writer emptied the slot and has
         * not set RETIRED yet (or died first) */
        if ((uint32_t)phase == WPT_BUF_RETIRED
            || ((uint32_t)phase == WPT_BUF_ACTIVE && (st >> 32) == (phase >> 32)
                && ((uint32_t)st & WPT_CLOSED))) {
            cand[count].index1 = i + 1;
            cand[count].processor = atomic_load(&d->processor);
            cand[count].seq = atomic_load(&d->stream_seq);
            cand[count].generation = (uint32_t)(phase >> 32);
            count++;
        }
    }
    if (!count) return 0;
    /* closed but still in a slot: not retired yet (read the slots after the descriptors: a
     * closed buffer never enters a slot again before it is flushed) */
    uint32_t kept = 0;
    for (uint32_t i = 0; i < count; i++) {
        int in_slot = 0;
        for (uint32_t k = 0; k < v->nslots && !in_slot; k++)
            in_slot = (uint32_t)atomic_load(&v->slots[k].word) == cand[i].index1;
        if (!in_slot) cand[kept++] = cand[i];
    }
    qsort(cand, kept, sizeof *cand, by_stream);
    uint32_t flushed = 0;
    int64_t now = wpt_mono_ms();
    for (uint32_t i = 0; i < kept; i++) {
        candidate *c = &cand[i];
        uint32_t p = c->processor < v->nslots ? c->processor : 0;
        if (!all && c->seq > s->next_seq[p]) {
            if (!s->gap_since[p]) s->gap_since[p] = now;
            if (now - s->gap_since[p] < 1000) {
                *deferred = 1;
                while (i + 1 < kept && cand[i + 1].processor == c->processor) i++;
                continue;
            }
        }
        wpt_desc *d = &v->desc[c->index1 - 1];
        uint64_t phase = atomic_load(&d->phase);
        if ((phase != wpt_phase(c->generation, WPT_BUF_RETIRED)
             && phase != wpt_phase(c->generation, WPT_BUF_ACTIVE))
            || !atomic_compare_exchange_strong(&d->phase, &phase,
                                               wpt_phase(c->generation, WPT_BUF_FLUSHING)))
            continue;
        flush_one(s, c->index1);
        s->next_seq[p] = c->seq + 1;
        s->gap_since[p] = 0;
        flushed++;
    }
    return flushed;
}

/* STOP: seal every empty slot, so that an install a writer began before STOP fails its CAS
 * (the install count stays, the index says "none to take"). 1 once every slot is sealed. */
static int seal_slots(const wpt_view *v) {
    int sealed = 1;
    for (uint32_t i = 0; i < v->nslots; i++) {
        uint64_t word = atomic_load(&v->slots[i].word);
        if ((uint32_t)word == WPT_SLOT_SEALED) continue;
        if ((uint32_t)word
            || !atomic_compare_exchange_strong(&v->slots[i].word, &word, word | WPT_SLOT_SEALED))
            sealed = 0;
    }
    return sealed;
}

/* UPDATE with a new LogFileName (flusher thread, every buffer so far written to the old
 * file): finish the old file, start the new one with its own header and SequenceNumbers.
 * Sets why the old file could not be completed (ERROR_DISK_FULL, ERROR_WRITE_FAULT: the
 * switch was made all the same, as a STOP's file error) and why the new one could not be
 * started (the session goes on without a file), each apart: one code cannot say which file
 * failed. The host's log says each problem, both in one line when both happen. */
static void switch_logfile(wpt_session *s) {
    ULONG closed = ERROR_SUCCESS;
    char old_name[WPT_MAX_PATH];
    strcpy(old_name, s->logfile_name);
    if (s->logfile) {
        int sync_fd;
        closed = wpt_logfile_close(s, &sync_fd);
        ULONG synced = wpt_session_sync_close(sync_fd);
        if (closed == ERROR_SUCCESS) closed = synced;
    }
    strcpy(s->logfile_name, s->next_logfile);
    s->buffer_sequence = 0;
    ULONG rc = wpt_logfile_open(s);
    /* a host's log; nothing in an application */
    if (closed != ERROR_SUCCESS && rc != ERROR_SUCCESS)
        wpt_host_log("the log file %s could not be completed (error %u), and the new log file %s "
                     "could not be started (error %u): the session writes no file", old_name,
                     (unsigned)closed, s->logfile_name, (unsigned)rc);
    else if (closed != ERROR_SUCCESS)
        wpt_host_log("the log file %s could not be completed (error %u)", old_name, (unsigned)closed);
    else if (rc != ERROR_SUCCESS)
        wpt_host_log("the new log file %s could not be started (error %u): the session writes no file",
                     s->logfile_name, (unsigned)rc);
    if (rc != ERROR_SUCCESS) s->logfile_name[0] = 0;     /* go on without a file */
    s->switch_old_error = closed;
    s->switch_new_error = rc;
}

/* UPDATE naming the open file by another name (it was renamed, or a link leads to it): the
 * session goes on in it and says it by that name, in its properties and in the file's header
 * (flusher thread: it alone rewrites the header, which holds the name). */
static void rename_logfile(wpt_session *s) {
    strcpy(s->logfile_name, s->next_logfile);
    if (s->logfile) wpt_logfile_update_header(s, 0);
}

/* Flush everything retired now; a stream waiting for its next buffer is re-scanned shortly. */
static uint32_t flush_pass(wpt_session *s) {
    uint32_t total = 0, n;
    int deferred;
    while ((n = flush_retired(s, 0, &deferred)) || deferred) {
        total += n;
        if (!n) sched_yield();
    }
    if (total && s->realtime) wpt_rt_batch_end(s);   /* consumers see this flush at once */
    if (s->nzero_runs) recount_zero_runs(s, 0);
    return total;
}

static void *flusher_main(void *arg) {
    wpt_session *s = arg;
    wpt_shm *sh = s->view->sh;
    atomic_store(&s->flusher_tid, (uint32_t)syscall(SYS_gettid));
    int64_t next_timer = 0;
    uint64_t timer_interval = 0;
    for (;;) {
        uint32_t seen = atomic_load(&sh->wake);
        pthread_mutex_lock(&s->flush_lock);
        uint64_t requests = s->flush_requests;
        int stopping = s->stop_requested, hold = s->hold_flush, switching = s->switch_pending;
        uint64_t interval = s->flush_interval_ms;
        pthread_mutex_unlock(&s->flush_lock);
        int64_t now = wpt_mono_ms();
        if (interval != timer_interval) {
            timer_interval = interval;
            next_timer = interval ? now + (int64_t)interval : 0;
        }
        int timer_due = next_timer && now >= next_timer;
        if (stopping) break;
        if (!hold) {
            if (timer_due || requests != s->flush_completed || switching) retire_all(s, 0);
            flush_pass(s);
            if (switching) {
                pthread_mutex_lock(&s->flush_lock);
                s->switch_pending = 0;
                pthread_mutex_unlock(&s->flush_lock);
                if (switching == WPT_SWITCH_FILE) switch_logfile(s);
                else rename_logfile(s);
            }
            if (timer_due) next_timer = now + (int64_t)interval;
            if (requests != s->flush_completed) {
                pthread_mutex_lock(&s->flush_lock);
                s->flush_completed = requests;
                pthread_cond_broadcast(&s->flush_done);
                pthread_mutex_unlock(&s->flush_lock);
            }
        }
        /* sleep until a writer retires a buffer, a request comes, or the timer is due */
        int64_t wait_ms = 1000;
        if (!hold && next_timer) wait_ms = next_timer - wpt_mono_ms();
        if (wait_ms < 1) wait_ms = 1;
        if (wait_ms > 1000) wait_ms = 1000;
        atomic_store(&sh->flusher_sleeping, 1);
        pthread_mutex_lock(&s->flush_lock);
        int pending = s->stop_requested || (!s->hold_flush && (s->flush_requests != s->flush_completed
                                                              || s->switch_pending));
        pthread_mutex_unlock(&s->flush_lock);
        if (!pending && atomic_load(&sh->wake) == seen) {
            struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
            syscall(SYS_futex, &sh->wake, FUTEX_WAIT, seen, &ts, NULL, 0);
        }
        atomic_store(&sh->flusher_sleeping, 0);
    }
    /* STOP: the shared status says STOPPING, so writers only finish what they reserved and
     * at most install one more buffer (they read RUNNING before). Retire and flush until
     * every slot is empty and sealed: a writer held for any time in an install fails its CAS
     * then, instead of filling a buffer after the flusher has gone. */
    for (;;) {
        retire_all(s, 1);
        flush_pass(s);
        if (seal_slots(s->view)) break;
        sched_yield();
    }
    int deferred;
    while (flush_retired(s, 1, &deferred)) {}
    recount_zero_runs(s, 1);
    if (s->realtime) wpt_rt_batch_end(s);
    pthread_mutex_lock(&s->flush_lock);
    s->flush_completed = s->flush_requests;
    pthread_cond_broadcast(&s->flush_done);
    pthread_mutex_unlock(&s->flush_lock);
    return NULL;
}

static ULONG wait_ticket(wpt_session *s, uint64_t ticket) {
    while (s->flush_completed < ticket && !s->stop_requested)
        pthread_cond_wait(&s->flush_done, &s->flush_lock);
    return ERROR_SUCCESS;
}

ULONG wpt_session_flush(wpt_session *s) {
    pthread_mutex_lock(&s->flush_lock);
    uint64_t ticket = ++s->flush_requests;
    pthread_mutex_unlock(&s->flush_lock);
    wpt_wake_flusher(s->view->sh);
    pthread_mutex_lock(&s->flush_lock);
    ULONG rc = wait_ticket(s, ticket);
    pthread_mutex_unlock(&s->flush_lock);
    return rc;
}

/* Switch to the log file `path`, unless `path` leads to the file the session has open (by
 * any name: no switch then, the session names it `path` from now on). *old_error: why the file
 * left could not be completed, *new_error: why `path` could not be started (the session writes
 * no file then); both ERROR_SUCCESS if no switch was made. *switched: 1 if the file was left
 * for `path`. Returns the one code ControlTrace says: the old file's error if it failed (the
 * properties name the new file, or none), else the new one's, else why the switch was refused
 * (the session goes on in its file). */
ULONG wpt_session_switch_file(wpt_session *s, const char *path, ULONG *old_error, ULONG *new_error,
                              uint32_t *switched) {
    *old_error = *new_error = ERROR_SUCCESS;
    *switched = 0;
    int kind = WPT_SWITCH_FILE;
    if (wpt_logfile_is_current(s, path)) {
        if (strcmp(path, s->logfile_name) == 0) return ERROR_SUCCESS;
        kind = WPT_SWITCH_RENAME;
    } else {
        ULONG rc = wpt_logfile_check_path(path);
        if (rc != ERROR_SUCCESS) return rc;
    }
    pthread_mutex_lock(&s->flush_lock);
    strcpy(s->next_logfile, path);
    s->switch_pending = kind;
    s->switch_old_error = s->switch_new_error = ERROR_SUCCESS;
    uint64_t ticket = ++s->flush_requests;
    pthread_mutex_unlock(&s->flush_lock);
    wpt_wake_flusher(s->view->sh);
    pthread_mutex_lock(&s->flush_lock);
    wait_ticket(s, ticket);
    *old_error = s->switch_old_error;
    *new_error = s->switch_new_error;
    *switched = kind == WPT_SWITCH_FILE && !s->switch_pending;   /* (a STOP may come first) */
    pthread_mutex_unlock(&s->flush_lock);
    return *old_error != ERROR_SUCCESS ? *old_error : *new_error;
}

void wpt_session_update_flush_timer(wpt_session *s, uint64_t interval_ms) {
    pthread_mutex_lock(&s->flush_lock);
    s->flush_interval_ms = interval_ms;
    pthread_mutex_unlock(&s->flush_lock);
    wpt_wake_flusher(s->view->sh);
}

void wpt_session_hold(wpt_session *s, int hold) {
    pthread_mutex_lock(&s->flush_lock);
    s->hold_flush = hold;
    pthread_mutex_unlock(&s->flush_lock);
    wpt_wake_flusher(s->view->sh);
}

ULONG wpt_session_grow_max(wpt_session *s, uint32_t max_buffers) {
    if (max_buffers > s->view->capacity) return ERROR_INVALID_PARAMETER;
    if (max_buffers > s->max_buffers) {
        s->max_buffers = max_buffers;
        atomic_store(&s->view->sh->max_buffers, max_buffers);
    }
    return ERROR_SUCCESS;
}

void wpt_session_counts(wpt_session *s, uint32_t *allocated, uint32_t *free_count) {
    wpt_shm *sh = s->view->sh;
    int32_t f = atomic_load(&sh->free_count);
    *allocated = atomic_load(&sh->next_unused);
    *free_count = f < 0 ? 0 : (uint32_t)f;
}

/* What ControlTrace reports of a session run by this process (QUERY/FLUSH/UPDATE/STOP
 * replies of a host, and a private session's own answer). */
void wpt_session_props(wpt_session *s, wpt_wire_props *w) {
    memset(w, 0, sizeof *w);
    uint32_t allocated, free_count;
    wpt_session_counts(s, &allocated, &free_count);
    w->buffer_size_kb = s->buffer_size / 1024;
    w->min_buffers = s->min_buffers;
    w->max_buffers = s->max_buffers;
    w->max_file_size = s->max_file_size_field;
    w->log_file_mode = s->log_file_mode;
    w->flush_timer = s->flush_timer_field;
    w->enable_flags = s->enable_flags;
    w->clock_type = s->clock_type;
    w->age_limit = s->age_limit;
    w->number_of_buffers = allocated;
    w->free_buffers = free_count;
    w->events_lost = wpt_events_lost(s);
    w->buffers_written = atomic_load(&s->buffers_written);
    w->log_buffers_lost = atomic_load(&s->log_buffers_lost);
    w->realtime_buffers_lost = atomic_load(&s->rt_buffers_lost);
    w->logger_thread_id = atomic_load(&s->flusher_tid);
    w->logger_id = s->logger_id;
    w->generation = s->registry_generation;
    w->host_pid = wpt_current_pid();
    w->consumers = s->realtime ? wpt_rt_consumers(s) : 0;
    w->records_abandoned = atomic_load(&s->records_abandoned);
    w->buffers_quarantined = atomic_load(&s->buffers_quarantined);
    snprintf(w->name, sizeof w->name, "%s", s->name);
    snprintf(w->logfile, sizeof w->logfile, "%s", s->logfile_name);
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
    lh->EventsLost = s->view ? wpt_events_lost(s) : 0;
    lh->CpuSpeedInMHz = s->cpu_mhz;
    lh->BootTime = s->boot_filetime;
    lh->PerfFreq = 10000000;            /* clock 1 ticks are 100 ns; clock 2 too */
    lh->StartTime = s->start_filetime;
    lh->ReservedFlags = s->clock_type;
    lh->BuffersLost = atomic_load(&s->log_buffers_lost);
}

/* ---- start / stop ------------------------------------------------------------------------ */

static void init_session_locks(wpt_session *s) {
    pthread_mutex_init(&s->flush_lock, NULL);
    pthread_cond_init(&s->flush_done, NULL);
}

ULONG wpt_session_prepare(wpt_session *s, int private_pool) {
    init_session_locks(s);
    uint32_t ncpu = wpt_processor_count();
    s->nslots = (s->log_file_mode & EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) ? 1 : ncpu;
    s->flush_requests = s->flush_completed = 0;
    s->stop_requested = s->hold_flush = s->switch_pending = 0;
    s->buffer_sequence = 0;
    s->flusher_started = 0;
    atomic_store(&s->buffers_written, 0);
    atomic_store(&s->log_buffers_lost, 0);
    atomic_store(&s->rt_buffers_lost, 0);
    atomic_store(&s->records_abandoned, 0);
    atomic_store(&s->buffers_quarantined, 0);
    atomic_store(&s->flusher_tid, 0);
    s->logfile = NULL;
    s->realtime = NULL;
    s->view = NULL;
    s->memfd = -1;

    /* clock: StartTime and the header event's raw time are of the same instant */
    s->cpu_mhz = wpt_cpu_mhz();
    s->start_tid = wpt_current_tid();
    s->start_pid = wpt_current_pid();
    wpt_clock_anchor clock;
    wpt_session_clock(s->clock_type, &clock);
    s->filetime_offset = clock.filetime_offset;
    s->cycles = clock.cycles;
    s->start_filetime = clock.start_filetime;
    s->start_raw = clock.raw;
    s->boot_filetime = clock.boot_filetime;

    uint32_t capacity = wpt_pool_capacity(s->buffer_size, s->max_buffers);
    s->next_seq = calloc(s->nslots, sizeof *s->next_seq);
    s->gap_since = calloc(s->nslots, sizeof *s->gap_since);
    s->scratch = malloc(s->buffer_size);
    s->scan_space = malloc(sizeof(candidate) * capacity);
    /* a record takes 8 bytes at least: every record of a buffer can be given up */
    s->cut_space = malloc(sizeof(cut) * (s->buffer_size / 8));
    s->zero_runs = malloc(sizeof(zero_run) * WPT_ZERO_RUNS);
    s->nzero_runs = 0;
    if (!s->next_seq || !s->gap_since || !s->scratch || !s->scan_space || !s->cut_space
        || !s->zero_runs) {
        wpt_session_discard(s, 1);
        return ERROR_OUTOFMEMORY;
    }
    for (uint32_t i = 0; i < s->nslots; i++) s->next_seq[i] = 1;
    wpt_pool_config c = {
        .buffer_size = s->buffer_size, .nslots = s->nslots,
        .capacity = capacity,
        .max_buffers = s->max_buffers, .min_buffers = s->min_buffers,
        .logger_id = s->logger_id, .generation = s->registry_generation,
        .log_file_mode = s->log_file_mode, .clock_type = s->clock_type,
        .filetime_offset = s->filetime_offset, .cycles = s->cycles, .private_pool = private_pool,
    };
    ULONG rc = wpt_pool_create(&c, &s->view, private_pool ? NULL : &s->memfd);
    if (rc == ERROR_SUCCESS && s->logfile_name[0]) rc = wpt_logfile_open(s);
    if (rc != ERROR_SUCCESS) {
        wpt_session_discard(s, 1);
        return rc;
    }
    atomic_store(&s->buffers_written, 1);          /* the header buffer */
    return ERROR_SUCCESS;
}

void wpt_session_discard(wpt_session *s, int close_sinks) {
    if (s->logfile) {
        if (close_sinks) wpt_logfile_close(s, NULL);
        else wpt_logfile_abandon(s);
    }
    if (s->realtime) {
        wpt_rt_end(s);
        wpt_rt_close_hub(s, 0);
    }
    if (s->view) {
        /* the view has the same memfd number and closes it as it retires: closed here again,
         * it was maybe a descriptor another thread had opened meanwhile */
        if (s->memfd == s->view->memfd) s->memfd = -1;
        wpt_view_retire(s->view);
        s->view = NULL;
    }
    if (s->memfd >= 0) close(s->memfd);
    s->memfd = -1;
    free(s->next_seq);
    free(s->gap_since);
    free(s->scratch);
    free(s->scan_space);
    free(s->cut_space);
    free(s->zero_runs);
    s->scan_space = NULL;
    s->cut_space = NULL;
    s->zero_runs = NULL;
    s->nzero_runs = 0;
    s->next_seq = NULL;
    s->gap_since = NULL;
    s->scratch = NULL;
}

ULONG wpt_session_run(wpt_session *s) {
    ULONG rc = ERROR_SUCCESS;
    if (s->log_file_mode & EVENT_TRACE_REAL_TIME_MODE) rc = wpt_rt_open(s);
    if (rc != ERROR_SUCCESS) return rc;
    s->flush_interval_ms = wpt_flush_interval(s->flush_timer_field, s->log_file_mode);
    atomic_store(&s->view->sh->status, WPT_RUNNING);
    atomic_store(&s->status, WPT_RUNNING);
    if (wpt_thread_create(&s->flusher, flusher_main, s) != 0) {
        atomic_store(&s->view->sh->status, WPT_STOPPED);
        return ERROR_OUTOFMEMORY;
    }
    s->flusher_started = 1;
    while (atomic_load(&s->flusher_tid) == 0) sched_yield();   /* QUERY reports it */
    return ERROR_SUCCESS;
}

/* Test hook: the next `count` flushes of a finished log file to the disk fail with `error` (a
 * disk or file system that reports a lost write only at fdatasync or close, which no test can
 * have for real). The file is flushed and closed all the same. */
static _Atomic int g_fail_syncs;
static _Atomic ULONG g_fail_sync_error;

void wpptrace_debug_fail_file_flushes(int count, ULONG error) {
    atomic_store(&g_fail_sync_error, error);
    atomic_store(&g_fail_syncs, count);
}

ULONG wpt_session_sync_close(int fd) {
    if (fd < 0) return ERROR_SUCCESS;
    ULONG rc = wpt_logfile_sync_close(fd);
    int n = atomic_load(&g_fail_syncs);
    while (n > 0)
        if (atomic_compare_exchange_weak(&g_fail_syncs, &n, n - 1))
            return rc != ERROR_SUCCESS ? rc : atomic_load(&g_fail_sync_error);
    return rc;
}

ULONG wpt_session_stop(wpt_session *s) {
    int sync_fd;
    ULONG rc = wpt_session_stop_unsynced(s, &sync_fd);
    ULONG synced = wpt_session_sync_close(sync_fd);
    if (rc == ERROR_SUCCESS) rc = synced;
    s->file_error = rc;
    return rc;
}

ULONG wpt_session_stop_unsynced(wpt_session *s, int *sync_fd) {
    if (sync_fd) *sync_fd = -1;
    /* New writers now fail; the flusher retires every buffer and flushes what was reserved
     * before (bounded: see wait_for_commits). */
    atomic_store_explicit(&s->view->sh->status, WPT_STOPPING, memory_order_seq_cst);
    atomic_store(&s->status, WPT_STOPPING);
    pthread_mutex_lock(&s->flush_lock);
    s->stop_requested = 1;
    s->hold_flush = 0;
    pthread_mutex_unlock(&s->flush_lock);
    wpt_wake_flusher(s->view->sh);
    if (s->flusher_started) pthread_join(s->flusher, NULL);
    s->flusher_started = 0;
    s->file_error = s->logfile ? wpt_logfile_close(s, sync_fd) : ERROR_SUCCESS;
    if (s->realtime) wpt_rt_end(s);
    atomic_store(&s->view->sh->status, WPT_STOPPED);
    return s->file_error;
}

/* fork(): a private session belongs to the process that started it. In the child it is gone
 * (its handle names no session: ControlTrace fails with ERROR_WMI_INSTANCE_NOT_FOUND, EnableTrace
 * and TraceMessage with ERROR_INVALID_HANDLE, even once a registry made again after a clean-up
 * gives its LoggerId and generation to another process's session; the parent's file is left
 * alone and the child's copy of its memory released). Sessions of host processes stay usable:
 * their memory is shared. */
void wpt_sessions_after_fork(void) {
    uint64_t slots = atomic_load(&g_private_slots);
    while (slots) {
        int i = __builtin_ctzll(slots);
        slots &= slots - 1;
        wpt_session *s = &wpt_sessions[i];
#ifdef WPT_TEST_POINTS
        atomic_fetch_add(&wpt_fork_sessions_read, 1);
#endif
        if (atomic_load(&s->role) != WPT_ROLE_PRIVATE) continue;
        init_session_locks(s);
        if (s->logfile) wpt_logfile_abandon(s);
        s->realtime = NULL;                   /* the parent's consumers */
        s->flusher_started = 0;
        wpt_view *v = s->view;
        if (v) {
            wpt_view *expect = v;
            atomic_compare_exchange_strong(&wpt_views[i], &expect, NULL);
            if (v->map) munmap(v->map, v->map_size);
            v->map = NULL;
        }
        s->view = NULL;
        wpt_handle_make_stale((uint32_t)i, s->registry_generation);
        wpt_session_set_role(s, WPT_ROLE_NONE);
        atomic_store(&s->status, WPT_FREE);
    }
}
