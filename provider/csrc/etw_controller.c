/* etw_controller.c: controller API: StartTrace, ControlTrace, EnableTrace(Ex2), QueryAllTraces,
 * EnumerateTraceGuids.
 *
 * Validates EVENT_TRACE_PROPERTIES (Win32 layout, names at LoggerNameOffset /
 * LogFileNameOffset inside Wnode.BufferSize) and finds the session a handle or name means:
 * a private session of this process (run here), or a session of the registry (run by its
 * host process, reached through its control socket). Enables go through the registry (who
 * holds each control GUID) and then to every provider process (etw_endpoint.c).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>
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

static void props_from_wire(const wpt_wire_props *w, EVENT_TRACE_PROPERTIES *p, int wide) {
    p->Wnode.HistoricalContext = wpt_handle_of((uint16_t)w->logger_id, (uint8_t)w->generation, 0, 0);
    p->Wnode.ClientContext = w->clock_type;
    p->Wnode.Flags |= WNODE_FLAG_TRACED_GUID;
    p->BufferSize = w->buffer_size_kb;
    p->MinimumBuffers = w->min_buffers;
    p->MaximumBuffers = w->max_buffers;
    p->MaximumFileSize = w->max_file_size;
    p->LogFileMode = w->log_file_mode;
    p->FlushTimer = w->flush_timer;
    p->EnableFlags = w->enable_flags;
    p->AgeLimit = w->age_limit;
    p->NumberOfBuffers = w->number_of_buffers;
    p->FreeBuffers = w->free_buffers;
    p->EventsLost = w->events_lost;
    p->BuffersWritten = w->buffers_written;
    p->LogBuffersLost = w->log_buffers_lost;
    p->RealTimeBuffersLost = w->realtime_buffers_lost;
    p->LoggerThreadId = (PVOID)(uintptr_t)w->logger_thread_id;
    write_name(p, p->LoggerNameOffset, wide, w->name);
    write_name(p, p->LogFileNameOffset, wide, w->logfile);
}

/* ---- finding a session ----------------------------------------------------------------- */

enum { TARGET_NONE, TARGET_LOCAL, TARGET_REMOTE, TARGET_GONE };

/* how long STOP waits for a host that no longer answers to end before cleaning up after it */
#define STOP_HOST_END_MS 2000

typedef struct {
    int kind;
    wpt_session *local;
    uint32_t slot;
    uint32_t generation;       /* the registry entry's (handles carry its low 8 bits) */
    uint32_t host_pid;
    uint32_t epoch;            /* wpt_handle_epoch() while the registry was locked */
    uint32_t incarnation;      /* that registry's, sent to a host that checks it (else 0) */
    uint32_t say_accepted;     /* WPT_REQ_SAY_ACCEPTED for a host that says it (else 0) */
} target;

static int name_matches(const wpt_reg_logger *e, const char *name) {
    return strncmp(e->name, name, sizeof e->name) == 0;
}

/* A session of another process: running (TARGET_REMOTE) or whose host is gone (TARGET_GONE). */
static void find_remote(wpt_registry *reg, TRACEHANDLE h, const char *name, target *t) {
    for (uint32_t i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_reg_logger *e = &reg->loggers[i];
        if (e->state == WPT_FREE || (e->flags & WPT_REG_PRIVATE)) continue;
        if (h ? (i != wpt_handle_slot(h) || (uint8_t)e->generation != wpt_handle_generation(h)
                 || wpt_handle_stale(h, e->generation)       /* an older session's: stopped */
                 || wpt_handle_displaced(h, e))              /* ours, left out of the registry */
              : !name_matches(e, name))
            continue;
        t->slot = i;
        t->generation = e->generation;
        t->host_pid = e->host_pid;
        t->incarnation = wpt_reg_incarnation_for(reg, e);
        t->say_accepted = e->flags & WPT_REG_SAYS_ACCEPTED ? WPT_REQ_SAY_ACCEPTED : 0;
        if (e->state == WPT_STARTING && e->host_pid == wpt_current_pid()) continue;  /* ours, half made */
        t->kind = wpt_reg_alive(e) ? TARGET_REMOTE : TARGET_GONE;
        if (t->kind == TARGET_REMOTE) return;
    }
}

static ULONG find_target(TRACEHANDLE h, const char *name, target *t) {
    memset(t, 0, sizeof *t);
    wpt_session *s = h ? wpt_local_session(h) : wpt_local_session_by_name(name);
    if (s && atomic_load(&s->status) == WPT_RUNNING) {
        t->kind = TARGET_LOCAL;
        t->local = s;
        return ERROR_SUCCESS;
    }
    if (h && wpt_handle_slot(h) == UINT32_MAX) return ERROR_SUCCESS;
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return rc;
    t->epoch = wpt_handle_epoch();
    find_remote(reg, h, name, t);
    wpt_registry_unlock();
    return ERROR_SUCCESS;
}

ULONG wpt_registry_find(const char *name, uint32_t *slot, uint32_t *generation) {
    uint32_t incarnation;
    return wpt_registry_find_in(name, slot, generation, &incarnation);
}

ULONG wpt_registry_find_in(const char *name, uint32_t *slot, uint32_t *generation, uint32_t *incarnation) {
    target t;
    memset(&t, 0, sizeof t);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return wpt_runtime_dir_missing_as_none(rc);
    find_remote(reg, 0, name, &t);
    wpt_registry_unlock();
    if (t.kind != TARGET_REMOTE) return ERROR_WMI_INSTANCE_NOT_FOUND;
    *slot = t.slot;
    *generation = t.generation;
    *incarnation = t.incarnation;
    return ERROR_SUCCESS;
}

/* A session whose host died: free its registry entry (its socket goes with it), tell the
 * providers. 1 if this call freed the entry (its host found gone here), 0 if it was freed
 * already (another STOP, or the host's own at a clean stop). */
static int clean_up_gone(const target *t) {
    ULONG rc;
    int freed = 0;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (reg) {
        wpt_reg_logger *e = &reg->loggers[t->slot];
        if (e->generation == t->generation && e->state != WPT_FREE && !wpt_reg_alive(e)) {
            GUID unused[1];
            wpt_registry_forget(reg, t->slot, unused, 0);
            freed = 1;
        }
        wpt_registry_unlock();
    }
    WPT_TEST_POINT(WPT_POINT_GONE_FREED);
    uint16_t id = t->slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : (uint16_t)t->slot;
    /* this process's callbacks, as a STOP runs them: a call of theirs may make the runtime
     * directory again (the STOP does not) */
    wpt_providers_session_stopping(t->slot, t->generation);
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    msg.logger_handle = wpt_handle_of(id, (uint8_t)t->generation, 0, 0);
    wpt_broadcast(WPT_REQ_DISABLE, wpt_for_session(t->generation), &msg);
    wpt_view *v = atomic_load(&wpt_views[t->slot]);
    if (v && v->registry_generation == t->generation && !v->private_pool) wpt_view_retire(v);
    return freed;
}

/* 1 while the registry entry a target was found in is still that session's (same generation,
 * not freed), 0 once it stopped (or the registry cannot be read). A registry whose lock is not
 * let go in time tells nothing either way: 1 (what the session's host said stands). */
static int still_registered(const target *t) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return rc == ERROR_BUSY;
    wpt_reg_logger *e = &reg->loggers[t->slot];
    int same = e->generation == t->generation && e->state != WPT_FREE;
    wpt_registry_unlock();
    return same;
}

/* A host that refused a STOP's connection has died or is dying (a live host always listens);
 * the kernel may take a while to end a killed process. 1 once it is gone (its registry entry
 * unchanged), 0 if it is not gone within wait_ms or the entry is another session's by now. */
static int host_ends(const target *t, int64_t wait_ms) {
    int64_t deadline = wpt_mono_ms() + wait_ms;
    for (;;) {
        ULONG rc;
        wpt_registry *reg = wpt_registry_lock(0, &rc);
        if (!reg) return 0;
        wpt_reg_logger *e = &reg->loggers[t->slot];
        int same = e->generation == t->generation && e->state != WPT_FREE;
        int alive = same && wpt_reg_alive(e);
        wpt_registry_unlock();
        if (!same) return 0;
        if (!alive) return 1;
        if (wpt_mono_ms() >= deadline) return 0;
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
    }
}

/* ---- StartTrace ------------------------------------------------------------------------- */

static ULONG absolute_path(const char *in, char *out, size_t size) {
    if (!in[0] || in[0] == '/') {
        if (strlen(in) >= size) return ERROR_BAD_PATHNAME;
        strcpy(out, in);
        return ERROR_SUCCESS;
    }
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return ERROR_BAD_PATHNAME;
    int n = snprintf(out, size, "%s/%s", cwd, in);
    return n > 0 && (size_t)n < size ? ERROR_SUCCESS : ERROR_BAD_PATHNAME;
}

static int is_private(uint32_t mode) {
    return (mode & (EVENT_TRACE_PRIVATE_LOGGER_MODE | EVENT_TRACE_PRIVATE_IN_PROC)) != 0;
}

/* Take a registry slot for a new session (STARTING, owned by this process). *incarnation_out:
 * the registry's, which the host this process starts for it checks (it sets
 * WPT_REG_CHECKS_INCARNATION only as it registers the session). */
static ULONG claim_slot(const char *name, int kernel, uint32_t mode, uint32_t clock,
                        uint32_t *slot_out, uint32_t *generation_out, uint32_t *epoch_out,
                        uint32_t *incarnation_out) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return rc;
    *epoch_out = wpt_handle_epoch();
    *incarnation_out = reg->incarnation;
    int priv = is_private(mode) && !kernel;
    uint32_t me = wpt_current_pid();
    int found = -1;
    for (uint32_t i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_reg_logger *e = &reg->loggers[i];
        if (e->state == WPT_FREE) continue;
        if (!wpt_reg_alive(e)) {
            GUID unused[1];
            wpt_registry_forget(reg, i, unused, 0);     /* its process is gone */
            continue;
        }
        /* a name is unique among shared sessions and this process's private ones (private
         * sessions of different processes may share a name: they never meet) */
        if (name_matches(e, name) && (!(e->flags & WPT_REG_PRIVATE) || e->host_pid == me)) {
            wpt_registry_unlock();
            return ERROR_ALREADY_EXISTS;
        }
    }
    if (kernel) found = reg->loggers[WPT_KERNEL_SLOT].state == WPT_FREE ? WPT_KERNEL_SLOT : -2;
    else       /* nor a slot whose session of ours a registry made again left out */
        for (uint32_t i = 1; i < WPPTRACE_MAX_SESSIONS && found < 0; i++)
            if (reg->loggers[i].state == WPT_FREE && atomic_load(&wpt_sessions[i].role) == WPT_ROLE_NONE)
                found = (int)i;
    if (found < 0) {        /* every LoggerId taken: what Windows says for too many sessions */
        wpt_registry_unlock();
        return found == -2 ? ERROR_ALREADY_EXISTS : ERROR_NO_SYSTEM_RESOURCES;
    }
    wpt_reg_logger *e = &reg->loggers[found];
    e->generation++;        /* whole in requests (wpt_for_session); handles carry 8 bits */
    e->state = WPT_STARTING;
    e->host_pid = me;
    e->host_start = wpt_own_start();
    e->flags = (priv ? WPT_REG_PRIVATE : 0) | ((mode & EVENT_TRACE_REAL_TIME_MODE) ? WPT_REG_REALTIME : 0);
    e->log_file_mode = mode;
    e->clock_type = clock;
    snprintf(e->name, sizeof e->name, "%s", name);
    *slot_out = (uint32_t)found;
    *generation_out = e->generation;
    wpt_registry_unlock();
    return ERROR_SUCCESS;
}

/* Patient (as release_claim): a slot left STARTING or RUNNING under this live process stays
 * taken, and the session unfindable or unstartable, until the process ends. */
static void set_slot_state(uint32_t slot, uint32_t generation, uint32_t state) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock_patiently(1, &rc);
    if (!reg) return;
    wpt_reg_logger *e = &reg->loggers[slot];
    /* and its pid: after a clean-up another process's session may hold the slot, generation
     * alike, while this one was left out of the registry made again */
    if (e->generation == generation && e->host_pid == wpt_current_pid()) {
        if (state == WPT_FREE) {
            GUID unused[1];
            wpt_registry_forget(reg, slot, unused, 0);
        } else {
            e->state = state;
        }
    }
    wpt_registry_unlock();
}

/* A start that failed gives up the entry it claimed, but only while it is still STARTING: a
 * host that registered it (RUNNING) just before its caller stopped waiting for the answer
 * runs the session, and freeing its entry left it running where nobody could find or stop it.
 * 1 if so (the session is started, *host its host); an entry whose host died is freed like
 * any gone one's.
 * A host still starting never registers a freed entry: it ends, and the socket it may have
 * bound goes with the entry. It has written nothing to the file (records come only from
 * writers that joined a registered session), which stays the caller's alone.
 * Nothing is done in a registry made again after a clean-up this process found since the
 * claim (`epoch`, see wpt_handle_issued_in): the slot and generation there may be another
 * process's claim or session, never ours to free or to take for ours. Nor is an entry still
 * starting freed unless this process claimed it. */
static int release_claim(uint32_t slot, uint32_t generation, uint32_t epoch, wpt_process_ref *host) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock_patiently(1, &rc);
    if (!reg) return 0;
    wpt_reg_logger *e = &reg->loggers[slot];
    int running = 0;
    uint64_t start = wpt_own_start();
    int mine = e->host_pid == wpt_current_pid() && (!start || e->host_start == start);
    if (wpt_handle_epoch() == epoch && e->generation == generation && e->state != WPT_FREE
        && (e->state != WPT_STARTING || mine)) {
        running = e->state == WPT_RUNNING && wpt_reg_alive(e);
        if (running && host) *host = (wpt_process_ref){e->host_pid, e->host_start};
        if (!running) {
            GUID unused[1];
            wpt_registry_forget(reg, slot, unused, 0);
        }
    }
    wpt_registry_unlock();
    return running;
}

/* A hosted session whose handle StartTrace is to hand out, after this process found a
 * clean-up of the runtime directory since it claimed the slot (the epoch moved): the slot and
 * generation may name another process's session of the registry made again. Handed out (under
 * the registry's lock, the epoch read there: 1) only while the registry made again holds this
 * very host there (its pid and start), put back by it; *epoch and *incarnation are then that
 * registry's. */
static int hand_out_if_host(uint32_t slot, uint32_t generation, const wpt_process_ref *host,
                            uint32_t *epoch, uint32_t *incarnation) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 0;
    const wpt_reg_logger *e = &reg->loggers[slot];
    int ours = host->pid && e->generation == generation && e->state == WPT_RUNNING
            && e->host_pid == host->pid && e->host_start == host->start;
    if (ours) {
        *epoch = wpt_handle_epoch();
        *incarnation = wpt_reg_incarnation_for(reg, e);
        ours = wpt_handle_issued_in(slot, generation, *epoch);
    }
    wpt_registry_unlock();
    return ours;
}

static ULONG start_common(PTRACEHANDLE handle, const char *name, EVENT_TRACE_PROPERTIES *p, int wide,
                          ULONG options) {
    if (!handle || !name || !*name || !p) return ERROR_INVALID_PARAMETER;
    if (options & ~(ULONG)WPPTRACE_START_ENDS_WITH_CALLER) return ERROR_INVALID_PARAMETER;
    if (p->Wnode.BufferSize < sizeof *p) return ERROR_BAD_LENGTH;
    if (!wpt_valid_name(name)) return ERROR_INVALID_PARAMETER;
    uint32_t mode = p->LogFileMode;
    if ((mode & EVENT_TRACE_FILE_MODE_SEQUENTIAL) && (mode & EVENT_TRACE_FILE_MODE_CIRCULAR))
        return ERROR_INVALID_PARAMETER;
    uint32_t clock = p->Wnode.ClientContext ? p->Wnode.ClientContext : EVENT_TRACE_CLOCK_PERFCOUNTER;
    if (clock > EVENT_TRACE_CLOCK_CPUCYCLE) return ERROR_INVALID_PARAMETER;
    uint32_t kb = p->BufferSize ? p->BufferSize : 64;
    if (kb > MAX_ETW_BUFFER_SIZE_KB) return ERROR_INVALID_PARAMETER;
    char given[WPT_MAX_PATH], logfile[WPT_MAX_PATH];
    ULONG rc = read_name(p, p->LogFileNameOffset, wide, given, sizeof given);
    if (rc != ERROR_SUCCESS) return rc;
    if (!given[0] && !(mode & (EVENT_TRACE_REAL_TIME_MODE | EVENT_TRACE_BUFFERING_MODE)))
        return ERROR_BAD_PATHNAME;
    /* another process (the host, a QUERY from elsewhere) sees the path: make it absolute */
    rc = absolute_path(given, logfile, sizeof logfile);
    if (rc != ERROR_SUCCESS) return rc;
    uint64_t unit = (mode & EVENT_TRACE_USE_KBYTES_FOR_SIZE) ? 1024u : 1024u * 1024u;
    uint64_t max_bytes = (uint64_t)p->MaximumFileSize * unit;
    uint32_t buffer_size = kb * 1024;
    if ((mode & EVENT_TRACE_FILE_MODE_CIRCULAR) && (!logfile[0] || max_bytes < 2ull * buffer_size))
        return ERROR_INVALID_PARAMETER;
    if (max_bytes && max_bytes < 2ull * buffer_size) return ERROR_INVALID_PARAMETER;
    uint32_t streams = (mode & EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING) ? 1 : wpt_processor_count();
    /* every size product in 64 bits, and bounded */
    uint64_t min_buffers = p->MinimumBuffers ? p->MinimumBuffers : 2ull * streams;
    uint64_t max_buffers = p->MaximumBuffers ? p->MaximumBuffers : min_buffers + 20;
    if (p->MinimumBuffers > WPT_MAX_BUFFERS || p->MaximumBuffers > WPT_MAX_BUFFERS
        || (uint64_t)p->MinimumBuffers * buffer_size > WPT_MAX_POOL_BYTES
        || (uint64_t)p->MaximumBuffers * buffer_size > WPT_MAX_POOL_BYTES)
        return ERROR_INVALID_PARAMETER;
    if (max_buffers < min_buffers) max_buffers = min_buffers;
    if (max_buffers > WPT_MAX_BUFFERS) max_buffers = WPT_MAX_BUFFERS;
    while (max_buffers * buffer_size > WPT_MAX_POOL_BYTES) max_buffers--;
    if (min_buffers > max_buffers) min_buffers = max_buffers;
    int kernel = strcmp(name, KERNEL_LOGGER_NAMEA) == 0;
    int priv = is_private(mode) && !kernel;

    lock();
    if (wpt_local_session_by_name(name)) {
        unlock();
        return ERROR_ALREADY_EXISTS;
    }
    uint32_t slot = 0, generation = 0, epoch = 0, incarnation = 0;
    wpt_process_ref host = {0, 0};       /* the session's host, once one answered */
    int lost = 0;                         /* a clean-up found: its handle is not handed out */
    rc = claim_slot(name, kernel, mode, clock, &slot, &generation, &epoch, &incarnation);
    if (rc != ERROR_SUCCESS) {
        unlock();
        return rc;
    }
    wpt_session *s = &wpt_sessions[slot];
    if (atomic_load(&s->role) != WPT_ROLE_NONE) {     /* cannot be: the registry said free */
        release_claim(slot, generation, epoch, NULL);
        unlock();
        return ERROR_ALREADY_EXISTS;
    }
    atomic_store(&s->status, WPT_STARTING);
    s->logger_id = kernel ? KERNEL_LOGGER_ID : (uint16_t)slot;
    s->registry_generation = generation;
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->logfile_name, sizeof s->logfile_name, "%s", logfile);
    s->buffer_size = buffer_size;
    s->min_buffers = (uint32_t)min_buffers;
    s->max_buffers = (uint32_t)max_buffers;
    s->max_file_size_field = p->MaximumFileSize;
    s->max_file_bytes = max_bytes;
    s->log_file_mode = mode;
    s->flush_timer_field = p->FlushTimer;
    s->clock_type = clock;
    s->enable_flags = p->EnableFlags;
    s->age_limit = p->AgeLimit;
    s->ends_with_caller = (options & WPPTRACE_START_ENDS_WITH_CALLER) != 0;
    rc = wpt_session_prepare(s, priv);
    wpt_wire_props props;
    if (rc == ERROR_SUCCESS && priv) {
        wpt_session_set_role(s, WPT_ROLE_PRIVATE);
        rc = wpt_session_run(s);
        if (rc == ERROR_SUCCESS) {
            wpt_view_publish(s->view);
            set_slot_state(slot, generation, WPT_RUNNING);
            wpt_session_props(s, &props);
        } else {
            wpt_session_set_role(s, WPT_ROLE_NONE);
            wpt_session_discard(s, 1);
        }
    } else if (rc == ERROR_SUCCESS) {
        wpt_session_props(s, &props);
        rc = wpt_host_spawn(s, &host);
        /* no answer in time: the host may have registered the session all the same */
        if (rc != ERROR_SUCCESS && release_claim(slot, generation, epoch, &host)) rc = ERROR_SUCCESS;
        /* the host has the file and the memory now; this process maps it like any other */
        wpt_session_discard(s, rc != ERROR_SUCCESS);
        if (rc == ERROR_SUCCESS) {
            WPT_TEST_POINT(WPT_POINT_HOST_ANSWERED);
            /* a clean-up found meanwhile: the slot's session may be another process's, which
             * this process would join and QUERY (see hand_out_if_host) */
            if (wpt_handle_epoch() != epoch && !hand_out_if_host(slot, generation, &host, &epoch, &incarnation)) {
                lost = 1;
            } else {
                wpt_attach(slot, generation, incarnation);
                wpt_host_call(slot, wpt_for_session(generation), WPT_REQ_QUERY, NULL, 0, &props,
                              sizeof props, NULL);
            }
        }
        atomic_store(&s->status, WPT_FREE);
    }
    if (rc != ERROR_SUCCESS) {
        atomic_store(&s->status, WPT_FREE);
        release_claim(slot, generation, epoch, NULL);
        unlock();
        return rc;
    }
    /* A hosted session claimed in a registry that a clean-up removed since (this process found
     * it meanwhile): its handle would name the session of the registry made again that has its
     * slot and generation, another process's, unless this session's host put it back there.
     * Otherwise no handle names it: its host is made to stop (only the registry file may have
     * gone, its socket kept, and it ran on with nobody told of it). Nothing of the new registry
     * is ours to free. A private session is this process's own: put back, or found here by its
     * handle. */
    if (!priv && (lost || (!wpt_handle_issued_in(slot, generation, epoch)
                           && !hand_out_if_host(slot, generation, &host, &epoch, &incarnation)))) {
        wpt_host_end(&host);
        unlock();
        return ERROR_WMI_INSTANCE_NOT_FOUND;
    }
    if (priv) wpt_handle_issued(slot, generation);
    *handle = wpt_handle_of(s->logger_id, (uint8_t)generation, 0, 0);
    props_from_wire(&props, p, wide);
    unlock();
    return ERROR_SUCCESS;
}

/* The entry points below wait (hosts' replies, JOINs, callbacks) with locks held: they run
 * with cancellation held off (see wpt_cancel_hold). */
static ULONG start_uncancelled(PTRACEHANDLE handle, const char *name, EVENT_TRACE_PROPERTIES *p, int wide,
                               ULONG options) {
    int state = wpt_cancel_hold();
    ULONG rc = start_common(handle, name, p, wide, options);
    wpt_cancel_restore(state);
    return rc;
}

ULONG StartTraceA(PTRACEHANDLE handle, LPCSTR name, EVENT_TRACE_PROPERTIES *p) {
    return start_uncancelled(handle, name, p, 0, 0);
}

ULONG wpptrace_start_trace(PTRACEHANDLE handle, LPCSTR name, EVENT_TRACE_PROPERTIES *p, ULONG options) {
    return start_uncancelled(handle, name, p, 0, options);
}

ULONG StartTraceW(PTRACEHANDLE handle, LPCWSTR name, EVENT_TRACE_PROPERTIES *p) {
    char utf8[WPT_MAX_NAME];
    if (!name) return ERROR_INVALID_PARAMETER;
    if (wpt_utf16_to_utf8(name, utf8, sizeof utf8) != 0) return ERROR_INVALID_PARAMETER;
    return start_uncancelled(handle, utf8, p, 1, 0);
}

/* ---- ControlTrace ----------------------------------------------------------------------- */

/* control_local, control_remote and control_common answer in `p`, and in *seen (if given) what
 * the session said (its session info is there). */
static ULONG control_local(wpt_session *s, EVENT_TRACE_PROPERTIES *p, ULONG code, int wide,
                           wpt_wire_props *seen, int *sync_fd) {
    ULONG rc = ERROR_SUCCESS, old_file_error = ERROR_SUCCESS, new_file_error = ERROR_SUCCESS;
    uint32_t switched = 0;
    switch (code) {
    case EVENT_TRACE_CONTROL_QUERY:
        break;
    case EVENT_TRACE_CONTROL_FLUSH:
        rc = wpt_session_flush(s);
        break;
    case EVENT_TRACE_CONTROL_UPDATE: {
        if (p->MaximumBuffers > WPT_MAX_BUFFERS
            || (uint64_t)p->MaximumBuffers * s->buffer_size > WPT_MAX_POOL_BYTES) {
            rc = ERROR_INVALID_PARAMETER;
            break;
        }
        if (p->FlushTimer != s->flush_timer_field) {
            s->flush_timer_field = p->FlushTimer;
            wpt_session_update_flush_timer(s, wpt_flush_interval(p->FlushTimer, s->log_file_mode));
        }
        if (p->MaximumBuffers > s->max_buffers) rc = wpt_session_grow_max(s, p->MaximumBuffers);
        if (rc == ERROR_SUCCESS) {
            char given[WPT_MAX_PATH], path[WPT_MAX_PATH];
            rc = read_name(p, p->LogFileNameOffset, wide, given, sizeof given);
            if (rc == ERROR_SUCCESS) rc = absolute_path(given, path, sizeof path);
            if (rc == ERROR_SUCCESS && path[0])
                /* a new file from the next buffer on */
                rc = wpt_session_switch_file(s, path, &old_file_error, &new_file_error, &switched);
        }
        break;
    }
    case EVENT_TRACE_CONTROL_STOP:
        wpt_providers_session_stopping(wpt_slot_of_id(s->logger_id), s->registry_generation);
        /* stopped all the same if its file failed; the flush of the file to the disk is left
         * to the caller, once the control lock is released (it may take long) */
        rc = wpt_session_stop_unsynced(s, sync_fd);
        WPT_TEST_POINT(WPT_POINT_PRIVATE_STOPPED);
        break;
    }
    wpt_wire_props w;
    wpt_session_props(s, &w);
    w.old_file_error = old_file_error;
    w.new_file_error = new_file_error;
    w.file_switched = switched;
    props_from_wire(&w, p, wide);
    if (seen) *seen = w;
    if (code == EVENT_TRACE_CONTROL_STOP) {
        uint32_t slot = wpt_slot_of_id(s->logger_id);
        wpt_session_set_role(s, WPT_ROLE_NONE);
        atomic_store(&s->status, WPT_FREE);
        wpt_session_discard(s, 1);
        set_slot_state(slot, s->registry_generation, WPT_FREE);
    }
    return rc;
}

static ULONG control_remote(const target *t, EVENT_TRACE_PROPERTIES *p, ULONG code, int wide,
                            wpt_wire_props *seen) {
    wpt_wire_props w;
    memset(&w, 0, sizeof w);             /* a reply's properties name the session */
    ULONG rc;
    switch (code) {
    case EVENT_TRACE_CONTROL_QUERY:
        rc = wpt_host_call_in(t->incarnation, t->slot, wpt_for_session(t->generation), WPT_REQ_QUERY,
                              NULL, 0, &w, sizeof w, NULL);
        break;
    case EVENT_TRACE_CONTROL_FLUSH:
        rc = wpt_host_call_in(t->incarnation, t->slot, wpt_for_session(t->generation),
                              WPT_REQ_FLUSH | t->say_accepted, NULL, 0, &w, sizeof w, NULL);
        break;
    case EVENT_TRACE_CONTROL_UPDATE: {
        if (p->MaximumBuffers > WPT_MAX_BUFFERS) return ERROR_INVALID_PARAMETER;
        wpt_wire_update u;
        memset(&u, 0, sizeof u);
        u.flush_timer = p->FlushTimer;
        u.max_buffers = p->MaximumBuffers;
        char given[WPT_MAX_PATH];
        rc = read_name(p, p->LogFileNameOffset, wide, given, sizeof given);
        if (rc == ERROR_SUCCESS) rc = absolute_path(given, u.logfile, sizeof u.logfile);
        if (rc != ERROR_SUCCESS) return rc;
        u.has_logfile = u.logfile[0] != 0;
        rc = wpt_host_call_in(t->incarnation, t->slot, wpt_for_session(t->generation),
                              WPT_REQ_UPDATE | t->say_accepted, &u, sizeof u, &w, sizeof w, NULL);
        break;
    }
    case EVENT_TRACE_CONTROL_STOP: {
        /* every failure known without the host (no descriptor left to check the runtime
         * directory or for the socket, no memory) comes before any change: after DISABLE, the
         * session would run on without this process's providers (and a DISABLE callback may
         * take the last descriptor). A directory a clean-up removed took the host with it: the
         * session is gone, its providers here are told so. */
        wpt_host_prepared call;
        ULONG prepared = wpt_host_call_prepare(&call, t->incarnation, t->slot, WPT_REQ_STOP, NULL, 0);
        if (prepared != ERROR_SUCCESS && prepared != ERROR_WMI_INSTANCE_NOT_FOUND) return prepared;
        /* this process's providers first, in this thread; the host tells the others */
        wpt_providers_session_stopping(t->slot, t->generation);
        rc = prepared != ERROR_SUCCESS ? prepared
           : wpt_host_call_send(&call, wpt_for_session(t->generation), &w, sizeof w, NULL);
        /* a reply with the session's properties: stopped (its status says whether its file
         * could be completed) */
        if (rc == ERROR_SUCCESS || rc == ERROR_WMI_INSTANCE_NOT_FOUND || w.name[0]) {
            wpt_view *v = atomic_load(&wpt_views[t->slot]);
            if (v && v->registry_generation == t->generation && !v->private_pool) wpt_view_retire(v);
        }
        break;
    }
    default:
        return ERROR_INVALID_PARAMETER;
    }
    int answered = rc == ERROR_SUCCESS
                || ((code == EVENT_TRACE_CONTROL_UPDATE || code == EVENT_TRACE_CONTROL_STOP) && w.name[0]);
    if (answered) props_from_wire(&w, p, wide);
    if (answered && seen) *seen = w;
    return rc;
}

static ULONG control_common(TRACEHANDLE h, const char *name, EVENT_TRACE_PROPERTIES *p, ULONG code, int wide,
                            wpt_wire_props *seen, int *host_gone) {
    if (host_gone) *host_gone = 0;
    if (!p) return ERROR_INVALID_PARAMETER;
    if (p->Wnode.BufferSize < sizeof *p) return ERROR_BAD_LENGTH;
    if (code > EVENT_TRACE_CONTROL_FLUSH) return ERROR_INVALID_PARAMETER;
    if (!h && !name) return ERROR_INVALID_PARAMETER;
    int sync_fd = -1;
    /* no control call makes the runtime directory or the registry again (a clean-up removed
     * them, and the sessions' hosts with them; an exit stops its private sessions): nothing is
     * there to stop or ask */
    int was_not_made = wpt_runtime_dir_not_made_begin();
    lock();
    target t;
    ULONG rc = find_target(h, name, &t);
    if (rc == ERROR_SUCCESS) {
        switch (t.kind) {
        case TARGET_LOCAL:
            /* the properties name the session by its handle (HistoricalContext) */
            wpt_handle_issued(wpt_slot_of_id(t.local->logger_id), t.local->registry_generation);
            rc = control_local(t.local, p, code, wide, seen, &sync_fd);
            break;
        case TARGET_REMOTE:
            WPT_TEST_POINT(WPT_POINT_TARGET_FOUND);
            /* found in a registry that a clean-up removed since: its host ended with it, and a
             * session of the registry made again may have its slot, generation and socket path */
            if (!wpt_handle_issued_in(t.slot, t.generation, t.epoch)) {
                rc = ERROR_WMI_INSTANCE_NOT_FOUND;
                break;
            }
            /* a request to another process's host, up to two minutes for a STOP, holds up no
             * other control call of this process: what a STOP changes here (this process's
             * providers, its view of the session, the registry when the host is gone) has locks
             * of its own, and the host refuses a request meant for another session */
            unlock();
            rc = control_remote(&t, p, code, wide, seen);
            if (code == EVENT_TRACE_CONTROL_STOP && rc == ERROR_WMI_INSTANCE_NOT_FOUND
                && host_ends(&t, STOP_HOST_END_MS) && clean_up_gone(&t) && host_gone)
                *host_gone = 1;              /* as for a host found gone: STOP cleans up */
            /* no answer in time: the session may have stopped meanwhile and a newer one's host,
             * busy, taken its slot and socket path; only one still registered is busy (a STOP's
             * ERROR_BUSY stays: it may still be stopping) */
            if (code != EVENT_TRACE_CONTROL_STOP && rc == ERROR_BUSY && !still_registered(&t))
                rc = ERROR_WMI_INSTANCE_NOT_FOUND;
            lock();
            break;
        case TARGET_GONE:
            if (code == EVENT_TRACE_CONTROL_STOP && clean_up_gone(&t) && host_gone) *host_gone = 1;
            rc = ERROR_WMI_INSTANCE_NOT_FOUND;
            break;
        default:
            rc = ERROR_WMI_INSTANCE_NOT_FOUND;
        }
    } else {
        /* no registry (its file, or the runtime directory as the check found it, missing), or
         * one of another wpptrace version: no session of another process can be meant. Any
         * other failure stays as it is (a path that cannot be used, no descriptor left, access
         * denied: the caller may not look), as for a session's info. */
        rc = wpt_runtime_dir_missing_as_none(rc);
        if (rc == ERROR_BAD_FORMAT || rc == ERROR_FILE_NOT_FOUND) rc = ERROR_WMI_INSTANCE_NOT_FOUND;
    }
    unlock();
    wpt_runtime_dir_not_made_end(was_not_made);
    if (sync_fd >= 0) {          /* a STOP here: its file flushed to the disk, the lock released */
        /* not cancelled midway: the descriptor is this thread's alone, and a thread cancelled
         * in fdatasync left it open for good (the flush waits for the disk only) */
        int state = wpt_cancel_hold();
        ULONG synced = wpt_session_sync_close(sync_fd);
        wpt_cancel_restore(state);
        if (rc == ERROR_SUCCESS) rc = synced;
    }
    return rc;
}

/* A STOP's ControlCallbacks run held off too: a private session's with the control lock held,
 * and another process's session is told to stop only after them (cancelled there, it ran on
 * with this process's providers disabled). */
static ULONG control_uncancelled(TRACEHANDLE h, const char *name, EVENT_TRACE_PROPERTIES *p, ULONG code,
                                 int wide) {
    int state = wpt_cancel_hold();
    ULONG rc = control_common(h, name, p, code, wide, NULL, NULL);
    wpt_cancel_restore(state);
    return rc;
}

ULONG ControlTraceA(TRACEHANDLE h, LPCSTR name, EVENT_TRACE_PROPERTIES *p, ULONG code) {
    return control_uncancelled(h, name, p, code, 0);
}

ULONG ControlTraceW(TRACEHANDLE h, LPCWSTR name, EVENT_TRACE_PROPERTIES *p, ULONG code) {
    char utf8[WPT_MAX_NAME];
    if (name && wpt_utf16_to_utf8(name, utf8, sizeof utf8) != 0) return ERROR_INVALID_PARAMETER;
    return control_uncancelled(h, name ? utf8 : NULL, p, code, 1);
}

ULONG wpptrace_update_trace(TRACEHANDLE h, LPCSTR name, EVENT_TRACE_PROPERTIES *p, ULONG *old_file_error,
                            ULONG *new_file_error, ULONG *switched) {
    if (!old_file_error || !new_file_error || !switched) return ERROR_INVALID_PARAMETER;
    wpt_wire_props w;
    memset(&w, 0, sizeof w);             /* no answer: no switch */
    int state = wpt_cancel_hold();
    ULONG rc = control_common(h, name, p, EVENT_TRACE_CONTROL_UPDATE, 0, &w, NULL);
    wpt_cancel_restore(state);
    *old_file_error = w.old_file_error;
    *new_file_error = w.new_file_error;
    *switched = w.file_switched;
    return rc;
}

ULONG wpptrace_stop_trace(TRACEHANDLE h, LPCSTR name, EVENT_TRACE_PROPERTIES *p, ULONG *host_gone) {
    if (!host_gone) return ERROR_INVALID_PARAMETER;
    int gone;
    int state = wpt_cancel_hold();
    ULONG rc = control_common(h, name, p, EVENT_TRACE_CONTROL_STOP, 0, NULL, &gone);
    wpt_cancel_restore(state);
    *host_gone = (ULONG)gone;
    return rc;
}

static int no_registry(ULONG rc);

/* ---- who holds a control GUID: the registry alone ------------------------------------------ */

/* The session an enable entry names, if that session still runs (registry locked): an entry
 * of a stopped or dead session is no one's. */
static wpt_reg_logger *live_holder_of(wpt_registry *reg, const wpt_reg_enable *en) {
    if (!en->used) return NULL;
    wpt_reg_logger *e = wpt_reg_logger_of(reg, en->logger_id);
    if (!e || (uint8_t)e->generation != en->generation || e->state != WPT_RUNNING || !wpt_reg_alive(e))
        return NULL;
    return e;
}

_Static_assert(sizeof(((WPPTRACE_GUID_HOLDER *)0)->LoggerName) == WPT_MAX_NAME, "a session name fits");

/* The handle naming running session `e` (registry locked), counted as issued; 0 (no LoggerId is
 * 0) when that value names a session of this process left out of the registry. */
static TRACEHANDLE issue_handle(wpt_registry *reg, wpt_reg_logger *e) {
    uint32_t slot = (uint32_t)(e - reg->loggers);
    uint16_t id = slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : (uint16_t)slot;
    TRACEHANDLE h = wpt_handle_of(id, (uint8_t)e->generation, 0, 0);
    if (wpt_handle_displaced(h, e)) return 0;
    wpt_handle_issued(slot, e->generation);
    return h;
}

/* Who holds `guid` now (registry locked): *out filled, its Guid set. */
static void holder_in(wpt_registry *reg, const GUID *guid, WPPTRACE_GUID_HOLDER *out) {
    memset(out, 0, sizeof *out);
    out->Guid = *guid;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        wpt_reg_enable *en = &reg->enables[i];
        if (memcmp(&en->guid, guid, sizeof *guid) != 0) continue;
        wpt_reg_logger *e = live_holder_of(reg, en);       /* NULL for an unused entry */
        if (!e) continue;
        out->LoggerHandle = issue_handle(reg, e);
        out->LoggerId = en->logger_id;
        out->Generation = e->generation;
        out->Incarnation = reg->incarnation;
        out->EnableFlags = en->flags;
        out->EnableLevel = en->level;
        out->IsEnable = 1;
        memcpy(out->LoggerName, e->name, sizeof out->LoggerName);     /* the same size */
        out->LoggerName[sizeof out->LoggerName - 1] = 0;
        return;
    }
}

/* Does `now` show the same holding as `expected` (the same session, flags and level)? */
static int same_holding(const WPPTRACE_GUID_HOLDER *expected, const WPPTRACE_GUID_HOLDER *now) {
    if (!expected->IsEnable || !now->IsEnable) return expected->IsEnable == now->IsEnable;
    return expected->LoggerId == now->LoggerId && expected->Generation == now->Generation
        && expected->Incarnation == now->Incarnation && expected->EnableFlags == now->EnableFlags
        && expected->EnableLevel == now->EnableLevel;
}

ULONG wpptrace_guid_holders(WPPTRACE_GUID_HOLDER *holders, ULONG count) {
    if (count && !holders) return ERROR_INVALID_PARAMETER;
    wpt_lookup looking = wpt_lookup_begin();
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    for (ULONG i = 0; i < count; i++) {
        GUID guid = holders[i].Guid;
        if (reg) holder_in(reg, &guid, &holders[i]);
        else {
            memset(&holders[i], 0, sizeof holders[i]);
            holders[i].Guid = guid;
        }
    }
    if (reg) {
        wpt_registry_unlock();
        rc = ERROR_SUCCESS;
    } else if (no_registry(rc)) {
        rc = ERROR_SUCCESS;                      /* nothing runs: none is held */
    }
    wpt_lookup_end(looking);
    return rc;
}

/* ---- enabling providers ----------------------------------------------------------------- */

/* What an enable only made if the registry still shows `expected`: *found what it showed,
 * *applied whether the change was made. */
typedef struct {
    const WPPTRACE_GUID_HOLDER *expected;
    WPPTRACE_GUID_HOLDER *found;
    UCHAR *applied;
} enable_condition;

static ULONG enable_trace(ULONG enable, ULONG flags, ULONG level, LPCGUID guid, TRACEHANDLE h,
                          const enable_condition *only_if);

static ULONG enable_entry(ULONG enable, ULONG flags, ULONG level, LPCGUID guid, TRACEHANDLE h,
                          const enable_condition *only_if) {
    int state = wpt_cancel_hold();
    wpt_deliver_owed_at_entry();           /* its callbacks held off: not the caller's change */
    wpt_cancel_allow_callbacks(state);     /* this process's callbacks run with no lock held */
    ULONG rc = enable_trace(enable, flags, level, guid, h, only_if);
    wpt_cancel_restore(state);
    return rc;
}

ULONG EnableTrace(ULONG enable, ULONG flags, ULONG level, LPCGUID guid, TRACEHANDLE h) {
    return enable_entry(enable, flags, level, guid, h, NULL);
}

ULONG wpptrace_enable_trace_if(ULONG enable, ULONG flags, ULONG level, LPCGUID guid, TRACEHANDLE h,
                               const WPPTRACE_GUID_HOLDER *expected, WPPTRACE_GUID_HOLDER *found,
                               UCHAR *applied) {
    if (!expected || !found || !applied) return ERROR_INVALID_PARAMETER;
    *applied = 0;
    enable_condition only_if = {expected, found, applied};
    return enable_entry(enable, flags, level, guid, h, &only_if);
}

typedef struct {
    uint32_t kind, meant_for;
    const wpt_wire_enable *msg;
} told_others;

static void tell_others(void *arg) {
    const told_others *t = arg;
    wpt_broadcast(t->kind, t->meant_for, t->msg);
}

static ULONG enable_trace(ULONG enable, ULONG flags, ULONG level, LPCGUID guid, TRACEHANDLE h,
                          const enable_condition *only_if) {
    if (!guid || !h || level > 0xFF) return ERROR_INVALID_PARAMETER;
    uint32_t slot = wpt_handle_slot(h);
    if (slot == UINT32_MAX) return ERROR_INVALID_HANDLE;
    uint8_t generation = wpt_handle_generation(h);
    lock();
    wpt_session *s = wpt_local_session(h);
    if (s && atomic_load(&s->status) == WPT_RUNNING) {
        if (only_if) {                      /* its enables are not in the registry */
            unlock();
            return ERROR_NOT_SUPPORTED;
        }
        /* a private session: only this process's providers */
        TRACEHANDLE logger = wpt_handle_of(s->logger_id, generation, flags, (UCHAR)level);
        uint32_t clock = s->clock_type;
        unlock();
        return wpt_apply_enable(guid, enable != 0, logger, s->registry_generation,
                                enable ? WPT_INCARNATION_PRIVATE : 0, clock, wpt_next_version(NULL));
    }
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) {
        unlock();
        return rc == ERROR_BUSY ? ERROR_BUSY : ERROR_INVALID_HANDLE;
    }
    wpt_reg_logger *e = &reg->loggers[slot];
    if ((uint8_t)e->generation != generation || wpt_handle_stale(h, e->generation)
        || wpt_handle_displaced(h, e)                   /* ours, left out of the registry */
        || e->state != WPT_RUNNING || (e->flags & WPT_REG_PRIVATE) || !wpt_reg_alive(e)) {
        wpt_registry_unlock();
        unlock();
        return ERROR_INVALID_HANDLE;
    }
    if (only_if) {
        holder_in(reg, guid, only_if->found);
        if (!same_holding(only_if->expected, only_if->found)) {
            wpt_registry_unlock();          /* changed meanwhile: left as it is */
            unlock();
            return ERROR_SUCCESS;
        }
    }
    uint16_t id = slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : (uint16_t)slot;
    uint32_t whole = e->generation, incarnation = wpt_reg_incarnation_for(reg, e);
    wpt_reg_enable *held = NULL, *free_entry = NULL;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        wpt_reg_enable *en = &reg->enables[i];
        if (en->used && memcmp(&en->guid, guid, sizeof *guid) == 0) held = en;
        else if (!en->used && !free_entry) free_entry = en;
    }
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    msg.guid = *guid;
    msg.clock_type = e->clock_type;
    msg.from_pid = wpt_current_pid();
    if (enable) {
        /* one session holds a classic provider: this enable takes it over */
        wpt_reg_enable *en = held ? held : free_entry;
        if (!en) {
            wpt_registry_unlock();
            unlock();
            return ERROR_NOT_ENOUGH_MEMORY;
        }
        en->used = 1;
        en->guid = *guid;
        en->logger_id = id;
        en->generation = generation;
        en->flags = flags;
        en->level = (uint8_t)level;
        en->clock_type = e->clock_type;
        en->version = wpt_next_version(reg);
        msg.version = en->version;
        msg.logger_handle = wpt_handle_of(id, generation, flags, (UCHAR)level);
    } else {
        if (!held || held->logger_id != id || held->generation != generation) {
            if (only_if) *only_if->applied = 1;
            wpt_registry_unlock();          /* not this session's provider: nothing to do */
            unlock();
            return ERROR_SUCCESS;
        }
        held->used = 0;
        msg.version = wpt_next_version(reg);
        msg.logger_handle = wpt_handle_of(id, generation, held->flags, held->level);
    }
    if (only_if) *only_if->applied = 1;     /* the registry holds the change */
    wpt_registry_unlock();
    unlock();
    WPT_TEST_POINT(WPT_POINT_ENABLE_APPLYING);
    /* the caller cancelled in a callback of its own: the other processes are told all the same
     * (the registry holds the change already) */
    told_others tell = {enable ? WPT_REQ_ENABLE : WPT_REQ_DISABLE, wpt_for_session(whole), &msg};
    pthread_cleanup_push(tell_others, &tell);
    rc = wpt_apply_enable(guid, enable != 0, msg.logger_handle, whole, incarnation, msg.clock_type,
                          msg.version);
    pthread_cleanup_pop(0);
    /* a provider process that could not run its callbacks (no memory for the list) says so:
     * the caller hears it (the enable stays recorded: enabling again retries it there) */
    ULONG others = wpt_broadcast(tell.kind, tell.meant_for, &msg);
    return rc != ERROR_SUCCESS ? rc : others;
}

ULONG EnableTraceEx2(TRACEHANDLE h, LPCGUID guid, ULONG code, UCHAR level, ULONGLONG any,
                     ULONGLONG all, ULONG timeout, PVOID params) {
    (void)all;
    (void)timeout;   /* enabling is synchronous here (bounded waits per process) */
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

/* ---- listing ----------------------------------------------------------------------------- */

/* What the registry says of a listed session: what QueryAllTraces reports of one whose host
 * is alive but did not answer the QUERY in time (the counters only its host knows stay 0). */
typedef struct {
    TRACEHANDLE handle;
    uint32_t log_file_mode, clock_type, flags, host_pid;
    char name[WPT_MAX_NAME];
} listed;

/* The session info a session's own answer holds. */
static void info_of(const wpt_wire_props *w, ULONG flags, WPPTRACE_SESSION_INFO *info) {
    info->LoggerId = w->logger_id;
    info->HostProcessId = w->host_pid;
    info->Flags = flags;
    info->RealTimeConsumers = w->consumers;
    info->RecordsAbandoned = w->records_abandoned;
    info->BuffersQuarantined = w->buffers_quarantined;
}

static ULONG list_sessions(EVENT_TRACE_PROPERTIES **array, WPPTRACE_SESSION_INFO *infos, ULONG count,
                           ULONG *logger_count);
static ULONG session_info(TRACEHANDLE h, LPCSTR name, WPPTRACE_SESSION_INFO *info);

/* Listing and session info wait for hosts' replies with a connection open (and take the
 * control lock and the registry's): they run with cancellation held off, as the other control
 * calls do (see wpt_cancel_hold). */
ULONG wpptrace_list_sessions(EVENT_TRACE_PROPERTIES **array, WPPTRACE_SESSION_INFO *infos, ULONG count,
                             ULONG *logger_count) {
    wpt_lookup looking = wpt_lookup_begin();
    ULONG rc = list_sessions(array, infos, count, logger_count);
    wpt_lookup_end(looking);
    return rc;
}

ULONG wpptrace_session_info(TRACEHANDLE h, LPCSTR name, WPPTRACE_SESSION_INFO *info) {
    wpt_lookup looking = wpt_lookup_begin();
    ULONG rc = session_info(h, name, info);
    wpt_lookup_end(looking);
    return rc;
}

/* A lookup's registry failure that means nothing runs: no registry (its file, or the runtime
 * directory as the check found it, missing) or one of another wpptrace version. Any other
 * (busy, no descriptor left, no memory, not ours) is the lookup's own failure, never an empty
 * answer. */
static int no_registry(ULONG rc) {
    rc = wpt_runtime_dir_missing_as_none(rc);
    return rc == ERROR_WMI_INSTANCE_NOT_FOUND || rc == ERROR_FILE_NOT_FOUND || rc == ERROR_BAD_FORMAT;
}

/* A request that failed for want of something of this process's own (a descriptor, memory):
 * what it asked is not known, and the caller is told so rather than given less. */
static int local_shortage(ULONG rc) {
    return rc == ERROR_TOO_MANY_OPEN_FILES || rc == ERROR_OUTOFMEMORY;
}

static ULONG list_sessions(EVENT_TRACE_PROPERTIES **array, WPPTRACE_SESSION_INFO *infos, ULONG count,
                           ULONG *logger_count) {
    if (!logger_count || (count && !array)) return ERROR_INVALID_PARAMETER;
    for (ULONG i = 0; i < count; i++)
        if (!array[i] || array[i]->Wnode.BufferSize < sizeof(EVENT_TRACE_PROPERTIES))
            return ERROR_INVALID_PARAMETER;
    listed *found = calloc(WPPTRACE_MAX_SESSIONS, sizeof *found);
    if (!found) return ERROR_OUTOFMEMORY;
    ULONG n = 0;
    lock();
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg && !no_registry(rc)) {          /* what runs cannot be told (now) */
        unlock();
        free(found);
        *logger_count = 0;
        return rc;
    }
    if (reg) {
        for (uint32_t i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
            wpt_reg_logger *e = &reg->loggers[i];
            if (e->state != WPT_RUNNING || !wpt_reg_alive(e)) continue;
            if ((e->flags & WPT_REG_PRIVATE) && e->host_pid != wpt_current_pid()) continue;
            TRACEHANDLE h = issue_handle(reg, e);
            if (!h) continue;                               /* its handle names ours here */
            listed *l = &found[n++];
            l->handle = h;
            l->log_file_mode = e->log_file_mode;
            l->clock_type = e->clock_type;
            l->flags = e->flags;
            l->host_pid = e->host_pid;
            memcpy(l->name, e->name, sizeof l->name);       /* the same size */
            l->name[sizeof l->name - 1] = 0;
        }
        wpt_registry_unlock();
    }
    /* the sessions as the registry has them now; each is asked outside the control lock (a
     * host slow to answer holds up no other control call of this process) */
    unlock();
    ULONG filled = 0, failed = ERROR_SUCCESS;
    for (ULONG i = 0; i < n && filled < count; i++) {
        /* one request per session: its answer holds its session info too */
        wpt_wire_props w;
        memset(&w, 0, sizeof w);
        rc = control_common(found[i].handle, NULL, array[filled], EVENT_TRACE_CONTROL_QUERY, 0, &w, NULL);
        ULONG flags = found[i].flags & WPT_REG_PRIVATE ? WPPTRACE_SESSION_PRIVATE : 0;
        if (rc == ERROR_BUSY) {
            /* alive, only slow: listed all the same (a session that stopped meanwhile is not) */
            memset(&w, 0, sizeof w);
            w.logger_id = (uint32_t)(found[i].handle & 0xFFFF);
            w.generation = wpt_handle_generation(found[i].handle);
            w.log_file_mode = found[i].log_file_mode;
            w.clock_type = found[i].clock_type;
            w.host_pid = found[i].host_pid;
            memcpy(w.name, found[i].name, sizeof w.name);     /* the same size, terminated */
            props_from_wire(&w, array[filled], 0);
            flags |= WPPTRACE_SESSION_BUSY;
        }
        if (local_shortage(rc)) {       /* not a session that stopped meanwhile */
            failed = rc;
            break;
        }
        if (rc != ERROR_SUCCESS && rc != ERROR_BUSY) continue;
        if (infos) info_of(&w, flags, &infos[filled]);
        filled++;
    }
    free(found);
    *logger_count = filled;
    return failed != ERROR_SUCCESS ? failed : n > count ? ERROR_MORE_DATA : ERROR_SUCCESS;
}

ULONG QueryAllTracesA(EVENT_TRACE_PROPERTIES **array, ULONG count, ULONG *logger_count) {
    return wpptrace_list_sessions(array, NULL, count, logger_count);
}

static ULONG session_info(TRACEHANDLE h, LPCSTR name, WPPTRACE_SESSION_INFO *info) {
    if (!info || (!h && !name)) return ERROR_INVALID_PARAMETER;
    memset(info, 0, sizeof *info);
    lock();
    target t;
    ULONG rc = wpt_runtime_dir_missing_as_none(find_target(h, name, &t));
    if (rc == ERROR_SUCCESS) {
        wpt_wire_props w;
        memset(&w, 0, sizeof w);
        switch (t.kind) {
        case TARGET_LOCAL:
            wpt_session_props(t.local, &w);
            info->Flags = WPPTRACE_SESSION_PRIVATE;
            break;
        case TARGET_REMOTE:
            WPT_TEST_POINT(WPT_POINT_TARGET_FOUND);
            if (wpt_handle_epoch() != t.epoch) {     /* found in a registry removed since */
                rc = ERROR_WMI_INSTANCE_NOT_FOUND;
                break;
            }
            /* asked outside the control lock: a slow host holds up no other control call */
            unlock();
            rc = wpt_host_call_in(t.incarnation, t.slot, wpt_for_session(t.generation), WPT_REQ_QUERY,
                                  NULL, 0, &w, sizeof w, NULL);
            if (rc == ERROR_SUCCESS) {
                lock();
                break;
            }
            /* Only a host that is gone is reported so. A refused connection means it died or
             * is dying (a live host always listens; the kernel may take a while to end a
             * killed one); a host that did not answer in time (ERROR_BUSY) is alive, and
             * says the same to ControlTrace QUERY. */
            if (rc == ERROR_WMI_INSTANCE_NOT_FOUND && host_ends(&t, STOP_HOST_END_MS)) {
                info->Flags = WPPTRACE_SESSION_HOST_GONE;
                w.host_pid = t.host_pid;
                w.logger_id = t.slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : t.slot;
                rc = ERROR_SUCCESS;
            } else if (!still_registered(&t)) {
                rc = ERROR_WMI_INSTANCE_NOT_FOUND;   /* it stopped; its slot may be a newer one's */
            }
            lock();
            break;
        case TARGET_GONE:
            info->Flags = WPPTRACE_SESSION_HOST_GONE;
            w.host_pid = t.host_pid;
            w.logger_id = t.slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : t.slot;
            break;
        default:
            rc = ERROR_WMI_INSTANCE_NOT_FOUND;
        }
        info_of(&w, info->Flags, info);
    }
    unlock();
    return rc;
}

/* ---- providers across processes ----------------------------------------------------------- */

typedef struct {
    WPPTRACE_PROVIDER_INFO *out;
    ULONG count, total;
} provider_list;

static WPPTRACE_PROVIDER_INFO *provider_entry(provider_list *l, const GUID *g) {
    ULONG kept = l->total < l->count ? l->total : l->count;
    for (ULONG i = 0; i < kept; i++)
        if (memcmp(&l->out[i].Guid, g, sizeof *g) == 0) return &l->out[i];
    if (l->total++ >= l->count) return NULL;
    WPPTRACE_PROVIDER_INFO *e = &l->out[l->total - 1];
    memset(e, 0, sizeof *e);
    e->Guid = *g;
    return e;
}

static void note_registered(provider_list *l, const wpt_wire_registered *r, size_t n) {
    for (size_t i = 0; i < n; i++) {
        WPPTRACE_PROVIDER_INFO *e = provider_entry(l, &r[i].guid);
        if (e) e->ProcessCount++;
    }
}

static ULONG enumerate_providers(WPPTRACE_PROVIDER_INFO *out, ULONG count, ULONG *total);

/* Not cancelled midway, as the listing calls (see wpt_cancel_hold): it takes the registry's lock
 * and waits for each provider process's reply with a connection and the directory open. */
ULONG wpptrace_enumerate_providers(WPPTRACE_PROVIDER_INFO *out, ULONG count, ULONG *total) {
    wpt_lookup looking = wpt_lookup_begin();
    ULONG rc = enumerate_providers(out, count, total);
    wpt_lookup_end(looking);
    return rc;
}

static ULONG enumerate_providers(WPPTRACE_PROVIDER_INFO *out, ULONG count, ULONG *total) {
    if (!total || (count && !out)) return ERROR_INVALID_PARAMETER;
    provider_list l = {out, count, 0};
    /* who holds what: the registry */
    ULONG rc, failed = ERROR_SUCCESS;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg && !no_registry(rc)) failed = rc;
    if (reg) {
        for (int i = 0; i < WPT_MAX_ENABLES; i++) {
            wpt_reg_enable *en = &reg->enables[i];
            if (!live_holder_of(reg, en)) continue;
            WPPTRACE_PROVIDER_INFO *x = provider_entry(&l, &en->guid);
            if (!x) continue;
            x->IsEnable = 1;
            x->LoggerId = en->logger_id;
            x->EnableFlags = en->flags;
            x->EnableLevel = en->level;
        }
        wpt_registry_unlock();
    }
    /* who registered what: every provider process, and this one */
    wpt_wire_registered mine[256];
    note_registered(&l, mine, wpt_registered_guids(mine, 256));
    const char *dir;
    ULONG checked = wpt_runtime_dir(&dir);
    if (checked != ERROR_SUCCESS && !no_registry(checked) && failed == ERROR_SUCCESS) failed = checked;
    if (checked == ERROR_SUCCESS) {
        DIR *d = opendir(dir);
        if (!d && failed == ERROR_SUCCESS) failed = wpt_win32_of_errno(errno, ERROR_BAD_PATHNAME);
        struct dirent *ent;
        while (d && (ent = readdir(d))) {
            unsigned pid;
            char tail;
            if (sscanf(ent->d_name, "p-%u.soc%c", &pid, &tail) != 2 || tail != 'k') continue;
            if (pid == wpt_current_pid()) continue;
            char path[600];
            snprintf(path, sizeof path, "%s/%s", dir, ent->d_name);
            wpt_wire_registered regs[256];
            wpt_frame f;
            int c = wpt_ipc_connect(path, 500, &rc);
            if (c < 0 && local_shortage(rc) && failed == ERROR_SUCCESS) failed = rc;
            if (c < 0) continue;
            void *payload = regs;
            if (wpt_ipc_send(c, WPT_REQ_LIST, 0, NULL, 0, -1, 1000) == 0
                && wpt_ipc_recv(c, &f, &payload, sizeof regs, NULL, 2000) == 0 && f.status == 0)
                note_registered(&l, regs, f.length / sizeof regs[0]);
            close(c);
        }
        if (d) closedir(d);
    }
    *total = l.total;
    return failed != ERROR_SUCCESS ? failed : l.total > count ? ERROR_MORE_DATA : ERROR_SUCCESS;
}

ULONG EnumerateTraceGuids(PTRACE_GUID_PROPERTIES *array, ULONG count, PULONG guid_count) {
    if (!guid_count || (count && !array)) return ERROR_INVALID_PARAMETER;
    for (ULONG i = 0; i < count; i++)
        if (!array[i]) return ERROR_INVALID_PARAMETER;
    WPPTRACE_PROVIDER_INFO *info = count ? calloc(count, sizeof *info) : NULL;
    if (count && !info) return ERROR_OUTOFMEMORY;
    ULONG total = 0;
    ULONG rc = wpptrace_enumerate_providers(info, count, &total);   /* not cancelled midway */
    ULONG n = total < count ? total : count;
    for (ULONG i = 0; i < n; i++) {
        TRACE_GUID_PROPERTIES *g = array[i];
        memset(g, 0, sizeof *g);
        g->Guid = info[i].Guid;
        g->GuidType = 0;                   /* TRACEGUID_TYPE: a control GUID */
        g->LoggerId = info[i].LoggerId;
        g->EnableLevel = info[i].EnableLevel;
        g->EnableFlags = info[i].EnableFlags;
        g->IsEnable = info[i].IsEnable;
    }
    free(info);
    *guid_count = total;
    return rc;
}

/* ---- test hooks --------------------------------------------------------------------------- */

ULONG wpptrace_debug_hold_flush(TRACEHANDLE h, int hold) {
    if (!h) return ERROR_INVALID_HANDLE;          /* (find_target takes 0 to mean "by name") */
    lock();
    target t;
    ULONG rc = find_target(h, NULL, &t);
    if (rc == ERROR_SUCCESS) {
        if (t.kind == TARGET_LOCAL) wpt_session_hold(t.local, hold);
        else if (t.kind == TARGET_REMOTE) {
            uint32_t value = hold != 0;
            rc = wpt_host_call_in(t.incarnation, t.slot, wpt_for_session(t.generation), WPT_REQ_HOLD,
                                  &value, sizeof value, NULL, 0, NULL);
        } else rc = ERROR_INVALID_HANDLE;
    }
    unlock();
    return rc == ERROR_WMI_INSTANCE_NOT_FOUND ? ERROR_INVALID_HANDLE : rc;
}
