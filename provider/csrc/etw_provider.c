/* etw_provider.c: classic provider side: RegisterTraceGuids, enable callbacks, TraceMessage.
 *
 * The logger handle a ControlCallback receives (WNODE_HEADER.HistoricalContext) carries
 * everything the provider asks for later, as on Windows: LoggerId (bits 0-15), level
 * (16-23), session generation (24-31) and enable flags (32-63). GetTraceEnableFlags and
 * GetTraceEnableLevel decode it; TraceMessage uses the LoggerId and generation.
 *
 * Each process keeps, per control GUID, the latest enable it heard of (from its own
 * EnableTrace calls, from other processes through etw_endpoint.c, or from the registry when
 * its endpoint started), ordered by version: one session holds a classic provider at a time,
 * and the latest enable takes it over, as on Windows. A registration made later is enabled
 * at once. Each registration keeps the ENABLE it was handed: an enable whose session could not
 * be joined in time is owed to the registrations that lack it and delivered to them alone
 * later, and a DISABLE reaches only registrations that had an ENABLE, with the handle they
 * got. ControlCallbacks run without any lock held, in the thread that delivers the change
 * (EnableTrace's caller for its own process, the endpoint thread for others), and
 * UnregisterTraceGuids waits until none of its callbacks is running (in another thread);
 * one queued and not started is not run.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include "_etw_internal.h"

typedef struct {
    int used;
    uint32_t generation;
    GUID control;
    WMIDPREQUEST callback;
    void *context;
    uint32_t inflight;          /* calls of this registration queued or running (the slot
                                 * is not reused meanwhile) */
    uint32_t running;           /* of those, callbacks running now (UnregisterTraceGuids waits
                                 * for them; a call not started yet never runs once it is gone) */
    uint64_t started_version;   /* of the last call whose callback started: an older one that
                                 * comes to run later (its thread let go of the lock meanwhile)
                                 * is not run */
    /* The ENABLE it was last handed (ENABLED: its callback run or about to; ENABLING: queued,
     * its session not joined yet) and no DISABLE since: an enable delivered again runs only
     * for the registrations that did not get it, and a DISABLE only for those that got an
     * ENABLE, with the handle they got. */
    int enabled;
    TRACEHANDLE enabled_logger;
    uint32_t enabled_generation;
    uint64_t enabled_version;
    uint64_t handed;            /* changes of the four above so far: a queued call knows whether
                                 * anything was handed to the registration after it */
    /* The last ENABLE whose callback ran (or is about to) and no DISABLE since: the handle the
     * provider writes with, which a DISABLE names, while a newer ENABLE is still queued. */
    int delivered;
    TRACEHANDLE delivered_logger;
    uint32_t delivered_generation;
    uint64_t delivered_version;
    uint64_t owed_counted;      /* `handed` + 1 when counted as owed and undelivered */
} registration;
enum { NOT_ENABLED = 0, ENABLED = 1, ENABLING = 2 };

typedef struct {
    int used;
    GUID guid;
    TRACEHANDLE logger;         /* the holder session's handle with flags and level */
    uint32_t generation;        /* that session's whole registry generation */
    uint32_t incarnation;       /* and its registry's, found with it (see wpt_attach) */
    uint32_t clock_type;
    uint64_t version;
} enable_entry;
/* A registration of the entry's GUID without its ENABLE is owed it: the session's host was too
 * busy to hand out its memory; the same enable heard again runs the callbacks it still owes. */

static registration g_regs[WPPTRACE_MAX_REGISTRATIONS];
static int g_regs_high;         /* entries of g_regs ever used (a forked child resets only those) */
#ifdef WPT_TEST_POINTS
_Atomic uint32_t wpt_fork_registrations_read;
#endif
static enable_entry g_enables[WPT_MAX_ENABLES];
/* The version of the last disable this process applied, per session and GUID: a disable
 * leaves no enable entry, and an enable of that session older than it (a registry copy taken
 * before it, a request that waited, an EnableTrace of another thread applied after it) is old
 * news, never applied (it re-enabled a provider the session disabled meanwhile). Every
 * disable is kept, held here or not: it may come before the enable it undoes. Each was checked
 * against the registry first (EnableTrace took the enable out; the endpoint refuses one the
 * registry still holds), and versions only grow, so it never refuses a later enable. The
 * session is its LoggerId and whole generation. Full, the oldest record gives way. */
typedef struct {
    int used;
    GUID guid;
    uint16_t logger_id;
    uint8_t generation8;        /* the handle's 8 bits of the generation */
    uint32_t generation;        /* the whole generation, 0 if not known */
    uint64_t version;
} disable_record;
static disable_record g_disables[WPT_MAX_ENABLES];
_Atomic uint32_t wpt_enables_dropped;
/* Enables withheld from a child forked in a copy that did not end (see g_copy_inherited). */
static _Atomic uint32_t g_enables_withheld;
/* Changes found owed to registrations, nothing delivering them, when asked (see
 * wpptrace_changes_undelivered), counted once per registration and change: its `handed` moves
 * with every change it is given. */
static _Atomic uint32_t g_owed_undelivered;
/* The enables counted so far (session, GUID, version), so that a copy made again while the
 * table stays full counts and reports each once. Full, the oldest gives way. Dropped and
 * withheld ones are recorded apart: one counted as withheld that a copy later has no room
 * for is dropped too. */
typedef struct {
    GUID guid;
    uint16_t logger_id;
    uint8_t generation;
    uint64_t version;
} counted_enable;
typedef struct {
    counted_enable at[WPT_MAX_ENABLES];
    int count, next;
} counted_enables;
static counted_enables g_dropped, g_withheld;
/* Guards both: a child forked in a copy counts there without the copy's lock. */
static pthread_mutex_t g_dropped_lock = PTHREAD_MUTEX_INITIALIZER;
/* A child forked in a callback of a registry copy: its forking thread holds the copy lock
 * for that copy until the copy ends, which it may never do (a worker that ends with _exit, or
 * runs on). A copy owed meanwhile (the child's endpoint owes one as it starts) waits for it, so
 * the enables only a copy brings are withheld: counted (once each) when asked. 0 once it ended. */
static _Atomic int g_copy_inherited;
static void count_withheld_enables(void);

ULONG wpptrace_enables_dropped(void) { return atomic_load(&wpt_enables_dropped); }

ULONG wpptrace_enables_withheld(void) {
    if (atomic_load(&g_copy_inherited)) count_withheld_enables();
    return atomic_load(&g_enables_withheld);
}
static pthread_mutex_t g_reg_lock = PTHREAD_MUTEX_INITIALIZER;
/* One copy of the registry at a time (copy_registry's buffers); a forked child gets the lock
 * fresh (its holder may be a thread of the parent, which the child has not), held by the
 * forking thread if that thread forked inside a copy (the child's endpoint thread must not
 * rewrite the buffers that copy still reads). */
static pthread_mutex_t g_copy_lock = PTHREAD_MUTEX_INITIALIZER;
/* This thread is making a copy: a copy asked for inside it (in a child forked in a callback
 * of the copy, which inherits this flag) would wait for its own lock forever, or overwrite
 * the buffers the outer copy still reads; it is owed instead, to the endpoint thread. */
static __thread int t_copying;
static pthread_cond_t g_reg_cond = PTHREAD_COND_INITIALIZER;   /* a callback returned */

/* The registrations whose callback this thread is running (a callback may unregister itself),
 * innermost first: each call's entry lives in the frame that runs it, so nesting has no limit
 * (a child forked in the innermost counts every one as running). */
typedef struct running_call {
    int reg;
    struct running_call *outer;
} running_call;
static __thread running_call *t_innermost;

typedef struct {
    int reg;                    /* index in g_regs */
    uint32_t reg_generation;
    WMIDPREQUEST callback;
    void *context;
    int code;
    TRACEHANDLE logger;
    uint32_t generation;        /* the whole registry generation of the logger's session */
    GUID guid;
    ULONG clock;
    uint64_t version;           /* of the enable an ENABLE call hands out */
    uint32_t epoch;             /* wpt_handle_epoch() when queued: its handle is handed out only
                                 * if no clean-up was found since */
    uint64_t handed;            /* the registration's `handed` once this call was queued */
    int skip;                   /* a DISABLE or a newer ENABLE came first: not run */
    /* what the registration was delivered before this call was queued: a call its thread
     * never ran (cancelled in an earlier callback of the list) gives it back */
    int was_delivered;
    TRACEHANDLE was_logger;
    uint32_t was_generation;
    uint64_t was_version;
} pending_call;

typedef struct {
    pending_call *calls;
    size_t n;
} pending_list;

static int guid_eq(const GUID *a, const GUID *b) { return memcmp(a, b, sizeof *a) == 0; }

static size_t count_registrations(const GUID *g) {
    size_t n = 0;
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++)
        if (g_regs[i].used && guid_eq(&g_regs[i].control, g)) n++;
    return n;
}

/* Room for `n` calls, taken before any state changes: an allocation failure is reported to
 * the caller (ERROR_OUTOFMEMORY) with nothing changed, never a callback silently skipped. */
static int pending_reserve(pending_list *l, size_t n) {
    l->n = 0;
    l->calls = NULL;
    if (!n) return 0;
    if (wpt_injected_failure()) return -1;
    l->calls = malloc(n * sizeof *l->calls);
    return l->calls ? 0 : -1;
}

/* Queue the call (g_reg_lock held); the registration counts it as in flight and as given it:
 * a call another thread queues meanwhile sees what this one hands out. */
static void pending_add(pending_list *l, int reg, int code, TRACEHANDLE logger, uint32_t generation,
                        ULONG clock, uint64_t version) {
    registration *r = &g_regs[reg];
    pending_call *c = &l->calls[l->n++];
    c->reg = reg;
    c->reg_generation = r->generation;
    c->callback = r->callback;
    c->context = r->context;
    c->code = code;
    c->logger = logger;
    c->generation = generation;
    c->guid = r->control;
    c->clock = clock;
    c->version = version;
    c->epoch = wpt_handle_epoch();
    c->skip = 0;
    c->was_delivered = r->delivered;
    c->was_logger = r->delivered_logger;
    c->was_generation = r->delivered_generation;
    c->was_version = r->delivered_version;
    r->inflight++;
    r->enabled = code == WMI_ENABLE_EVENTS ? ENABLING : NOT_ENABLED;
    r->enabled_logger = logger;
    r->enabled_generation = generation;
    r->enabled_version = version;
    if (code == WMI_DISABLE_EVENTS) r->delivered = 0;
    c->handed = ++r->handed;
}

/* Is the registration still waiting to run the queued ENABLE call `c` (nothing handed to it
 * since `c` was queued)? */
static int still_enabling(const registration *r, const pending_call *c) {
    return r->generation == c->reg_generation && r->handed == c->handed && r->enabled == ENABLING;
}

/* A registration is handed nothing (a DISABLE it is not owed, or an ENABLE still queued that
 * is not to run): it keeps only what it was delivered. */
static void hand_nothing(registration *r) {
    r->enabled = NOT_ENABLED;
    r->delivered = 0;
    r->handed++;
}

static int same_session(TRACEHANDLE a, uint32_t a_generation, TRACEHANDLE b, uint32_t b_generation) {
    return (a & 0xFF00FFFFull) == (b & 0xFF00FFFFull) && a_generation == b_generation;
}

/* Queued calls about to run (their session joined), g_reg_lock held: an ENABLE a DISABLE or a
 * newer ENABLE overtook meanwhile is not run. */
static void pending_confirm(pending_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        pending_call *c = &l->calls[i];
        registration *r = &g_regs[c->reg];
        if (c->code != WMI_ENABLE_EVENTS || c->skip) continue;
        if (still_enabling(r, c)) {
            r->enabled = ENABLED;
            r->delivered = 1;
            r->delivered_logger = c->logger;
            r->delivered_generation = c->generation;
            r->delivered_version = c->version;
            r->handed++;
        } else {
            c->skip = 1;
        }
    }
}

/* Queued ENABLE calls that will not run (their session could not be joined; `gone`: it is not
 * there any more, else its host was only too slow), g_reg_lock held; the caller then runs the
 * list (pending_run_confirmed) without the lock. A call after which something newer was handed to its
 * registration (another thread's ENABLE or DISABLE, queued or confirmed) changes nothing: the
 * newer state stands (a copy of the state from when the call was queued may name an ENABLE
 * whose call was dropped since, or a session that no longer holds the GUID). Otherwise the
 * registration falls back to the ENABLE it was delivered last: kept if it is of the call's
 * session and that session is still there (that session's DISABLE still reaches it); else
 * the call becomes that handle's DISABLE, run now (the session it names lost the GUID to the
 * call's, or is gone: no later DISABLE of it reaches the registration, which kept writing into
 * it). A registration delivered nothing is owed the ENABLE (not enabled). */
static void pending_cancel(pending_list *l, int gone) {
    for (size_t i = 0; i < l->n; i++) {
        pending_call *c = &l->calls[i];
        registration *r = &g_regs[c->reg];
        c->skip = 1;
        if (!still_enabling(r, c)) continue;
        if (r->delivered && !gone
            && same_session(r->delivered_logger, r->delivered_generation, c->logger, c->generation)) {
            r->enabled = ENABLED;
            r->enabled_logger = r->delivered_logger;
            r->enabled_generation = r->delivered_generation;
            r->enabled_version = r->delivered_version;
            r->handed++;
        } else if (r->delivered) {
            c->code = WMI_DISABLE_EVENTS;
            c->logger = r->delivered_logger;
            c->generation = r->delivered_generation;
            c->skip = 0;
            hand_nothing(r);
            c->handed = r->handed;          /* what a DISABLE call is queued with */
        } else {
            hand_nothing(r);
        }
    }
}

/* Each call runs unless its registration is gone or a newer call of it started first: the
 * calls of one registration may be queued by several threads, each running its own without
 * a lock, and the last callback the application sees must be the newest change (an ENABLE
 * started after the DISABLE that followed it left the provider on with a disabled handle). */
/* A thread cancelled in a callback it ran (see wpt_cancel_allow_callbacks) leaves the list as
 * if every call were done: the call running and those after it no longer count as running or
 * in flight (UnregisterTraceGuids waited for them forever, their slots were never used again).
 * The calls after it never ran: their registrations are given back what they were delivered
 * before (an ENABLE is owed them again, as to a registration whose session was not joined;
 * a DISABLE is owed as delivered and not enabled), and the endpoint thread delivers what is
 * owed (see wpt_deliver_owed). Nothing is run here: the application cancelled the thread. */
typedef struct {
    pending_list *list;
    size_t at;
    running_call *me;
} cancelled_run;

/* g_reg_lock held: call `c`, queued (and for an ENABLE confirmed) but never run, is undone
 * unless something was handed to its registration since (the newer state stands). */
static void give_back(const pending_call *c) {
    registration *r = &g_regs[c->reg];
    if (c->skip || !r->used || r->generation != c->reg_generation) return;
    if (c->code == WMI_ENABLE_EVENTS) {
        if (r->handed != c->handed + 1 || r->enabled != ENABLED) return;   /* not as confirmed */
        r->enabled = c->was_delivered ? ENABLED : NOT_ENABLED;
        r->enabled_logger = c->was_logger;
        r->enabled_generation = c->was_generation;
        r->enabled_version = c->was_version;
    } else if (r->handed != c->handed) {
        return;
    }
    /* a DISABLE's handle is the one delivered; an ENABLE's was the one before */
    r->delivered = c->was_delivered;
    r->delivered_logger = c->was_logger;
    r->delivered_generation = c->was_generation;
    r->delivered_version = c->was_version;
    r->handed++;
}

static void callback_cancelled(void *arg) {
    cancelled_run *c = arg;
    t_innermost = c->me->outer;
    pthread_mutex_lock(&g_reg_lock);
    registration *r = &g_regs[c->list->calls[c->at].reg];
    if (r->running) r->running--;
    for (size_t i = c->at; i < c->list->n; i++) {
        registration *q = &g_regs[c->list->calls[i].reg];
        if (q->inflight) q->inflight--;
        if (i > c->at) give_back(&c->list->calls[i]);
    }
    pthread_cond_broadcast(&g_reg_cond);
    pthread_mutex_unlock(&g_reg_lock);
    free(c->list->calls);
    c->list->calls = NULL;
    c->list->n = 0;
    /* also what a busy JOIN left owed (the caller's own redelivery after the list is skipped) */
    wpt_endpoint_redeliver();
}

static void run_callback(pending_list *l, size_t i, WNODE_HEADER *w, ULONG *size) {
    pending_call *c = &l->calls[i];
    running_call me = {c->reg, t_innermost};
    t_innermost = &me;
    cancelled_run undo = {l, i, &me};
    int allowed = wpt_callback_cancel_state(), held = -1;
    pthread_cleanup_push(callback_cancelled, &undo);
    if (allowed >= 0) pthread_setcancelstate(allowed, &held);
    c->callback(c->code, c->context, size, w);
    if (held >= 0) pthread_setcancelstate(held, NULL);
    pthread_cleanup_pop(0);
    t_innermost = me.outer;
}

static void pending_run_confirmed(pending_list *l) {
    for (size_t i = 0; i < l->n; i++) {
        pending_call *c = &l->calls[i];
        pthread_mutex_lock(&g_reg_lock);
        registration *r = &g_regs[c->reg];
        int live = r->used && r->generation == c->reg_generation && !c->skip
                && c->version >= r->started_version;
        if (live) {
            r->running++;
            r->started_version = c->version;
        }
        pthread_mutex_unlock(&g_reg_lock);
        if (live) {
            WNODE_HEADER w;
            memset(&w, 0, sizeof w);
            w.BufferSize = sizeof w;
            w.HistoricalContext = c->logger;
            w.Guid = c->guid;
            w.ClientContext = c->clock;
            w.Flags = WNODE_FLAG_TRACED_GUID;
            ULONG size = sizeof w;
            wpt_handle_seen(wpt_handle_slot(c->logger), c->generation, c->epoch);
            run_callback(l, i, &w, &size);
        }
        pthread_mutex_lock(&g_reg_lock);
        if (live && r->running) r->running--;
        if (r->inflight) r->inflight--;     /* a forked child did not count calls queued before */
        pthread_cond_broadcast(&g_reg_cond);
        pthread_mutex_unlock(&g_reg_lock);
    }
    free(l->calls);
    l->calls = NULL;
    l->n = 0;
}

static void pending_run(pending_list *l) {
    pthread_mutex_lock(&g_reg_lock);
    pending_confirm(l);
    pthread_mutex_unlock(&g_reg_lock);
    if (l->n) WPT_TEST_POINT(WPT_POINT_CALLBACKS_CONFIRMED);
    pending_run_confirmed(l);
}

int wpt_in_callback(void) { return t_innermost != NULL; }

void wpt_providers_fork_prepare(void) {
    pthread_mutex_lock(&g_reg_lock);
    pthread_mutex_lock(&g_dropped_lock);
}

void wpt_providers_fork_parent(void) {
    pthread_mutex_unlock(&g_dropped_lock);
    pthread_mutex_unlock(&g_reg_lock);
}

/* The child has only the forking thread: no callback of another thread is running there. */
void wpt_providers_after_fork(void) {
    /* the parent's drops are the parent's to report: the child counts and reports what it
     * lacks itself, once (the same enable its parent dropped too: its providers stay disabled
     * here as well) */
    atomic_store(&wpt_enables_dropped, 0);
    atomic_store(&g_enables_withheld, 0);
    atomic_store(&g_owed_undelivered, 0);
    g_dropped.count = g_dropped.next = 0;
    g_withheld.count = g_withheld.next = 0;
    pthread_mutex_init(&g_reg_lock, NULL);
    pthread_mutex_init(&g_copy_lock, NULL);
    pthread_mutex_init(&g_dropped_lock, NULL);
    if (t_copying) pthread_mutex_lock(&g_copy_lock);   /* the outer copy unlocks it as it ends */
    atomic_store(&g_copy_inherited, t_copying);
    pthread_cond_init(&g_reg_cond, NULL);
    for (int i = 0; i < g_regs_high; i++) {
#ifdef WPT_TEST_POINTS
        atomic_fetch_add(&wpt_fork_registrations_read, 1);
#endif
        g_regs[i].inflight = g_regs[i].running = 0;
        /* an ENABLE another thread of the parent had queued never runs here: owed again, the
         * registration left with what it was delivered */
        registration *r = &g_regs[i];
        if (r->enabled == ENABLING) {
            r->enabled = r->delivered ? ENABLED : NOT_ENABLED;
            r->enabled_logger = r->delivered_logger;
            r->enabled_generation = r->delivered_generation;
            r->enabled_version = r->delivered_version;
            r->handed++;
        }
    }
    /* the forking thread's own callbacks, one per nesting (the same registration's callback may
     * be nested in itself): each is lowered once as it returns */
    for (const running_call *k = t_innermost; k; k = k->outer) {
        g_regs[k->reg].inflight++;
        g_regs[k->reg].running++;
    }
}

static enable_entry *find_enable(const GUID *g) {
    for (int i = 0; i < WPT_MAX_ENABLES; i++)
        if (g_enables[i].used && guid_eq(&g_enables[i].guid, g)) return &g_enables[i];
    return NULL;
}

static int got_enable(const registration *r, const enable_entry *e) {
    return r->enabled && r->enabled_version == e->version && r->enabled_logger == e->logger;
}

/* Does a registration of the entry's GUID still lack its ENABLE (or, `delivered`, have it)? */
static int registrations_with(const enable_entry *e, int delivered) {
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++)
        if (g_regs[i].used && guid_eq(&g_regs[i].control, &e->guid) && got_enable(&g_regs[i], e) == delivered)
            return 1;
    return 0;
}

/* Did the entry's enable reach every registration of its GUID (its callback ran or runs now)?
 * One whose ENABLE is still queued, its session not joined yet, is not enabled: what LIST says. */
static int reached_all(const enable_entry *e) {
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++) {
        const registration *r = &g_regs[i];
        if (r->used && guid_eq(&r->control, &e->guid)
            && !(r->enabled == ENABLED && got_enable(r, e)))
            return 0;
    }
    return 1;
}

/* The entry of `g` if it is still the enable (logger, version) a caller saw before it let go
 * of g_reg_lock (the entry may have been reused meanwhile). */
static enable_entry *enable_still(const GUID *g, TRACEHANDLE logger, uint64_t version) {
    enable_entry *e = find_enable(g);
    return e && e->logger == logger && e->version == version ? e : NULL;
}

static enable_entry *new_enable(const GUID *g) {
    enable_entry *e = find_enable(g);
    for (int i = 0; !e && i < WPT_MAX_ENABLES; i++)
        if (!g_enables[i].used) e = &g_enables[i];
    return e;
}

static int disable_of(const disable_record *d, const GUID *g, TRACEHANDLE logger) {
    return d->used && guid_eq(&d->guid, g) && d->logger_id == (uint16_t)(logger & 0xFFFF)
        && d->generation8 == wpt_handle_generation(logger);
}

/* The version of the last disable of `g` by the session `logger` and `generation` name. */
static uint64_t disabled_at(const GUID *g, TRACEHANDLE logger, uint32_t generation) {
    uint64_t at = 0;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        const disable_record *d = &g_disables[i];
        if (disable_of(d, g, logger) && (!d->generation || d->generation == generation)
            && d->version > at)
            at = d->version;
    }
    return at;
}

static void record_disable(const GUID *g, TRACEHANDLE logger, uint32_t generation, uint64_t version) {
    disable_record *d = NULL, *oldest = &g_disables[0];
    for (int i = 0; i < WPT_MAX_ENABLES && !d; i++) {
        if (disable_of(&g_disables[i], g, logger) && g_disables[i].generation == generation)
            d = &g_disables[i];
        else if (!g_disables[i].used || (oldest->used && g_disables[i].version < oldest->version))
            oldest = &g_disables[i];
    }
    if (!d) {
        d = oldest;
        *d = (disable_record){1, *g, (uint16_t)(logger & 0xFFFF), wpt_handle_generation(logger),
                              generation, 0};
    }
    if (version > d->version) d->version = version;
}

/* Is the session (handle, whole generation) still there, as far as this process can tell? */
static int logger_usable(TRACEHANDLE h, uint32_t generation) {
    uint32_t slot = wpt_handle_slot(h);
    if (slot == UINT32_MAX) return 0;
    wpt_view *v = atomic_load(&wpt_views[slot]);
    return v && v->registry_generation == generation
        && atomic_load(&v->sh->status) == WPT_RUNNING;
}

/* Map the session of an ENABLE before its callbacks hand the handle out. */
static ULONG make_usable(TRACEHANDLE h, uint32_t generation, uint32_t incarnation) {
    if (logger_usable(h, generation)) return ERROR_SUCCESS;
    uint32_t slot = wpt_handle_slot(h);
    if (slot == UINT32_MAX) return ERROR_INVALID_HANDLE;
    wpt_session *local = &wpt_sessions[slot];
    if (atomic_load(&local->role) == WPT_ROLE_PRIVATE) return ERROR_INVALID_HANDLE;  /* stopped */
    /* a private session with no host: stopped here meanwhile (a STOP between the enable and
     * this), or a parent's (this is a forked child) */
    if (incarnation == WPT_INCARNATION_PRIVATE) return ERROR_INVALID_HANDLE;
    return wpt_attach(slot, generation, incarnation);
}

/* The ENABLE callbacks queued in `pending` for the session `logger` names (version `version`
 * of the enable of `guid`) could not be run: make_usable failed (`usable`). They are dropped
 * (the DISABLEs the cancel leaves are run). A session gone: its enable ends unless a registration
 * still has it (owed the DISABLE). A host too slow to hand the session out (ERROR_BUSY): the
 * enable stays recorded and the endpoint thread delivers it again. */
static void enable_not_usable(pending_list *pending, const GUID *guid, TRACEHANDLE logger, uint64_t version,
                              ULONG usable) {
    pthread_mutex_lock(&g_reg_lock);
    pending_cancel(pending, usable != ERROR_BUSY);
    enable_entry *e = enable_still(guid, logger, version);
    if (e && usable != ERROR_BUSY && !registrations_with(e, 1)) e->used = 0;
    pthread_mutex_unlock(&g_reg_lock);
    pending_run_confirmed(pending);
    if (usable == ERROR_BUSY) wpt_endpoint_redeliver();
}

/* `host_busy`: the session's host was just found too busy to hand out its memory (a JOIN of
 * the same pass timed out): an enable that needs it is kept undelivered without joining again. */
static ULONG apply_enable(const GUID *guid, int enable, TRACEHANDLE logger, uint32_t generation,
                          uint32_t incarnation, uint32_t clock, uint64_t version, int host_busy) {
    pending_list pending = {0};
    pthread_mutex_lock(&g_reg_lock);
    enable_entry *e = find_enable(guid);
    int same_session = e && (e->logger & 0xFF00FFFFull) == (logger & 0xFF00FFFFull)
                    && (!generation || e->generation == generation);
    /* Every disable is kept, to refuse that session's older enables arriving after it (its
     * enable may not have come yet); only the session holding the GUID here, with an enable
     * older than the disable, has callbacks to run. */
    if (!enable) record_disable(guid, logger, same_session ? e->generation : generation, version);
    if (enable ? ((e && (e->version > version
                         || (e->version == version && e->logger == logger && !registrations_with(e, 0))))
                  || version < disabled_at(guid, logger, generation))
               : (!same_session || e->version > version)) {
        pthread_mutex_unlock(&g_reg_lock);       /* older news, or not that session's provider */
        return ERROR_SUCCESS;
    }
    size_t n = count_registrations(guid);
    if (pending_reserve(&pending, n) != 0) {
        pthread_mutex_unlock(&g_reg_lock);
        return ERROR_OUTOFMEMORY;
    }
    if (enable) {
        e = new_enable(guid);
        if (!e) {
            pthread_mutex_unlock(&g_reg_lock);
            free(pending.calls);
            return ERROR_NOT_ENOUGH_MEMORY;
        }
        e->used = 1;
        e->guid = *guid;
        e->logger = logger;
        e->generation = generation;
        e->incarnation = incarnation;
        e->clock_type = clock;
        e->version = version;
    } else {
        e->used = 0;
    }
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++) {
        registration *r = &g_regs[i];
        if (!r->used || !guid_eq(&r->control, guid)) continue;
        if (enable && !got_enable(r, e))
            pending_add(&pending, i, WMI_ENABLE_EVENTS, logger, generation, clock, version);
        else if (!enable && r->delivered)      /* the handle its ENABLE callback got */
            pending_add(&pending, i, WMI_DISABLE_EVENTS, r->delivered_logger, r->delivered_generation,
                        clock, version);
        else if (!enable)
            hand_nothing(r);                 /* an ENABLE still queued is not run */
    }
    pthread_mutex_unlock(&g_reg_lock);
    if (enable && pending.n) WPT_TEST_POINT(WPT_POINT_ENABLE_QUEUED);
    ULONG usable = !enable || !pending.n ? ERROR_SUCCESS
                 : host_busy && !logger_usable(logger, generation) ? ERROR_BUSY
                 : make_usable(logger, generation, incarnation);
    if (usable != ERROR_SUCCESS) {
        /* The session went away meanwhile: nobody more is enabled (the entry stays while a
         * registration has it, for the DISABLE it is owed). Its host alive but too slow to
         * hand out the session memory: the enable stays recorded (enabling again, or a
         * registration, retries it) and the caller hears ERROR_BUSY. */
        enable_not_usable(&pending, guid, logger, version, usable);
        return usable == ERROR_BUSY ? ERROR_BUSY : ERROR_SUCCESS;
    }
    pending_run(&pending);
    return ERROR_SUCCESS;
}

ULONG wpt_apply_enable(const GUID *guid, int enable, TRACEHANDLE logger, uint32_t generation,
                       uint32_t incarnation, uint32_t clock, uint64_t version) {
    return apply_enable(guid, enable, logger, generation, incarnation, clock, version, 0);
}

/* Can the owed ENABLE of entry `e` be delivered by wpt_deliver_owed? Those of a private session
 * of this process always; with no endpoint thread (`without_endpoint`) those of a session of
 * another process this process has mapped too (no copy of the registry follows to bring them). */
static int owed_here(const enable_entry *e, int without_endpoint) {
    uint32_t slot = wpt_handle_slot(e->logger);
    if (!e->used || slot == UINT32_MAX) return 0;
    wpt_session *local = &wpt_sessions[slot];
    if (atomic_load(&local->role) == WPT_ROLE_PRIVATE && local->registry_generation == e->generation) return 1;
    return without_endpoint && logger_usable(e->logger, e->generation);
}

/* Calls a thread never ran (cancelled in an earlier callback of its list, see give_back): a
 * registration delivered an ENABLE and not enabled since is owed its DISABLE; one lacking the
 * enable of a private session of this process is owed that ENABLE (those of sessions in the
 * registry come with the copy of the registry the endpoint thread makes after this; with no
 * endpoint thread, those of sessions mapped here are delivered too). Run by the endpoint
 * thread, or by an entry point of the application when there is none, possibly both at once:
 * the enables to deliver are copied per call. */
ULONG wpt_deliver_owed(int without_endpoint) {
    pending_list pending = {0};
    enable_entry *owed = malloc(sizeof *owed * WPT_MAX_ENABLES);
    if (!owed) return ERROR_OUTOFMEMORY;
    pthread_mutex_lock(&g_reg_lock);
    size_t n = 0, k = 0;
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++)
        n += g_regs[i].used && g_regs[i].delivered && g_regs[i].enabled == NOT_ENABLED;
    if (pending_reserve(&pending, n) != 0) {
        pthread_mutex_unlock(&g_reg_lock);
        free(owed);
        return ERROR_OUTOFMEMORY;
    }
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++) {
        registration *r = &g_regs[i];
        if (r->used && r->delivered && r->enabled == NOT_ENABLED)
            pending_add(&pending, i, WMI_DISABLE_EVENTS, r->delivered_logger, r->delivered_generation, 0,
                        r->started_version > r->delivered_version ? r->started_version : r->delivered_version);
    }
    for (int i = 0; i < WPT_MAX_ENABLES; i++)
        if (owed_here(&g_enables[i], without_endpoint) && registrations_with(&g_enables[i], 0))
            owed[k++] = g_enables[i];
    pthread_mutex_unlock(&g_reg_lock);
    pending_run(&pending);
    ULONG rc = ERROR_SUCCESS;
    for (size_t i = 0; i < k; i++) {
        ULONG applied = apply_enable(&owed[i].guid, 1, owed[i].logger, owed[i].generation, owed[i].incarnation,
                                     owed[i].clock_type, owed[i].version, 0);
        if (applied != ERROR_SUCCESS) rc = applied;
    }
    free(owed);
    return rc;
}

void wpt_count_owed_undelivered(void) {
    uint32_t counted = 0;
    pthread_mutex_lock(&g_reg_lock);
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++) {
        registration *r = &g_regs[i];
        /* one with calls queued or running (an ENABLE in another thread's EnableTrace) is
         * being told now, not owed */
        if (!r->used || r->inflight || r->owed_counted == r->handed + 1) continue;
        const enable_entry *e = find_enable(&r->control);
        if ((r->delivered && r->enabled == NOT_ENABLED) || (e && !got_enable(r, e))) {
            r->owed_counted = r->handed + 1;
            counted++;
        }
    }
    pthread_mutex_unlock(&g_reg_lock);
    if (counted) atomic_fetch_add(&g_owed_undelivered, counted);
}

ULONG wpptrace_changes_undelivered(void) {
    wpt_endpoint_owed_undelivered();
    return atomic_load(&g_owed_undelivered);
}

/* Does an enable entry belong to the session in `slot` that `meant_for` names? */
static int enable_of(const enable_entry *e, uint32_t slot, uint32_t meant_for) {
    return e->used && wpt_handle_slot(e->logger) == slot && wpt_request_is_for(meant_for, e->generation);
}

void wpt_apply_session_gone(uint32_t slot, uint32_t meant_for) {
    pending_list pending = {0};
    pthread_mutex_lock(&g_reg_lock);
    size_t n = 0;
    for (int k = 0; k < WPT_MAX_ENABLES; k++) {
        enable_entry *e = &g_enables[k];
        if (enable_of(e, slot, meant_for)) n += count_registrations(&e->guid);
    }
    /* Without room for the callbacks the enables still go: the session is gone either way. */
    int room = pending_reserve(&pending, n) == 0;
    for (int k = 0; k < WPT_MAX_ENABLES; k++) {
        enable_entry *e = &g_enables[k];
        if (!enable_of(e, slot, meant_for)) continue;
        e->used = 0;
        for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++) {
            registration *r = &g_regs[i];
            if (!r->used || !guid_eq(&r->control, &e->guid) || !r->enabled) continue;
            if (room && r->delivered)
                pending_add(&pending, i, WMI_DISABLE_EVENTS, r->delivered_logger, r->delivered_generation,
                            e->clock_type, e->version);
            else
                hand_nothing(r);             /* no room, or nothing delivered */
        }
    }
    pthread_mutex_unlock(&g_reg_lock);
    pending_run(&pending);
}

/* The STOP never makes the runtime directory again (wpt_runtime_dir_not_made_begin), but the
 * callbacks it runs are the application's: a call of theirs that starts something does. */
void wpt_providers_session_stopping(uint32_t slot, uint32_t generation) {
    int was = wpt_runtime_dir_not_made_begin();
    wpt_runtime_dir_not_made_end(0);
    wpt_apply_session_gone(slot, wpt_for_session(generation));
    wpt_runtime_dir_not_made_end(was);
}

/* Does the registry copy hold an enable of `guid` by the session a local enable names? */
static int copy_holds(const wpt_reg_enable *copy, const GUID *guid, TRACEHANDLE logger) {
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        const wpt_reg_enable *en = &copy[i];
        if (en->used && guid_eq(&en->guid, guid) && en->logger_id == (uint16_t)(logger & 0xFFFF)
            && en->generation == wpt_handle_generation(logger))
            return 1;
    }
    return 0;
}

/* The registry's enables copied into this process; with `drop_absent`, this process's enables
 * of sessions in other processes that the registry no longer holds are disabled too (changes
 * it heard of but could not check). An enable newer than the copy is kept: the registry had
 * not seen it yet. */
/* Is the registry's enable `en` counted in `records` (dropped or withheld) for the first time? */
static int first_count(counted_enables *records, const wpt_reg_enable *en) {
    pthread_mutex_lock(&g_dropped_lock);
    for (int i = 0; i < records->count; i++) {
        const counted_enable *d = &records->at[i];
        if (d->version == en->version && d->logger_id == en->logger_id && d->generation == en->generation
            && guid_eq(&d->guid, &en->guid)) {
            pthread_mutex_unlock(&g_dropped_lock);
            return 0;
        }
    }
    records->at[records->next] = (counted_enable){en->guid, en->logger_id, en->generation, en->version};
    records->next = (records->next + 1) % WPT_MAX_ENABLES;
    if (records->count < WPT_MAX_ENABLES) records->count++;
    pthread_mutex_unlock(&g_dropped_lock);
    return 1;
}

/* Count as withheld (once each) the registry's enables of other processes' sessions that a provider
 * registered here lacks, while the copy inherited from the parent holds the copy lock: only a
 * copy would bring them (in its own buffers: the inherited copy's are not touched). */
static void count_withheld_enables(void) {
    int state = wpt_cancel_hold();
    wpt_reg_enable *seen = malloc(sizeof *seen * WPT_MAX_ENABLES);
    uint32_t alive[WPPTRACE_MAX_SESSIONS];
    ULONG rc;
    wpt_registry *reg = seen ? wpt_registry_lock(0, &rc) : NULL;
    if (reg) {
        memcpy(seen, reg->enables, sizeof *seen * WPT_MAX_ENABLES);
        for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
            wpt_reg_logger *l = &reg->loggers[i];
            alive[i] = l->state == WPT_RUNNING && !(l->flags & WPT_REG_PRIVATE) && wpt_reg_alive(l)
                     ? l->generation + 1 : 0;
        }
        wpt_registry_unlock();
        uint32_t withheld = 0;
        for (int i = 0; i < WPT_MAX_ENABLES; i++) {
            const wpt_reg_enable *en = &seen[i];
            uint32_t slot = wpt_slot_of_id(en->logger_id);
            if (!en->used || slot >= WPPTRACE_MAX_SESSIONS || !alive[slot]
                || (uint8_t)(alive[slot] - 1) != en->generation)
                continue;
            pthread_mutex_lock(&g_reg_lock);
            const enable_entry *e = find_enable(&en->guid);
            int lacking = count_registrations(&en->guid) && !(e && e->version >= en->version);
            pthread_mutex_unlock(&g_reg_lock);
            if (lacking) withheld += (uint32_t)first_count(&g_withheld, en);
        }
        if (withheld) atomic_fetch_add(&g_enables_withheld, withheld);
    }
    free(seen);
    wpt_cancel_restore(state);
}

static ULONG copy_registry(int drop_absent) {
    static wpt_reg_enable copy[WPT_MAX_ENABLES];
    static uint32_t alive[WPPTRACE_MAX_SESSIONS];   /* generation + 1 of a running session */
    static uint32_t found_in[WPPTRACE_MAX_SESSIONS];    /* and its incarnation (see wpt_attach) */
    static enable_entry held[WPT_MAX_ENABLES];
    static uint8_t busy[WPPTRACE_MAX_SESSIONS];     /* a JOIN of this pass found its host busy */
    if (t_copying) return ERROR_BUSY;
    /* taken before the registry lock: waiting for it never holds the registry. Never waited
     * for by the endpoint thread, which retries (the copy stays owed): a copy holding it may
     * never end (a child forked in its callback that never returns there), and the endpoint
     * went deaf */
    WPT_TEST_POINT(WPT_POINT_REGISTRY_COPY_LOCKING);
    if (wpt_on_endpoint_thread() ? pthread_mutex_trylock(&g_copy_lock) != 0 : pthread_mutex_lock(&g_copy_lock) != 0)
        return ERROR_BUSY;
    t_copying = 1;
    WPT_TEST_POINT(WPT_POINT_REGISTRY_COPYING);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) {
        t_copying = 0;
        atomic_store(&g_copy_inherited, 0);   /* a child's inherited copy ends here, or none */
        pthread_mutex_unlock(&g_copy_lock);
        return rc;
    }
    memcpy(copy, reg->enables, sizeof copy);
    memset(busy, 0, sizeof busy);
    uint64_t copied_at = reg->last_version;
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_reg_logger *l = &reg->loggers[i];
        alive[i] = l->state == WPT_RUNNING && !(l->flags & WPT_REG_PRIVATE) && wpt_reg_alive(l)
                 ? l->generation + 1 : 0;
        found_in[i] = wpt_reg_incarnation_for(reg, l);
    }
    wpt_registry_unlock();
    ULONG unfinished = ERROR_SUCCESS;
    uint32_t dropped = 0;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        wpt_reg_enable *en = &copy[i];
        uint32_t slot = wpt_slot_of_id(en->logger_id);
        if (!en->used || slot >= WPPTRACE_MAX_SESSIONS || !alive[slot]
            || (uint8_t)(alive[slot] - 1) != en->generation)
            continue;
        TRACEHANDLE h = wpt_handle_of(en->logger_id, en->generation, en->flags, en->level);
        /* a host too slow to hand out its session, or no memory for the callbacks: the copy is
         * made again later (the enable is kept undelivered, or not kept), never dropped. One
         * JOIN per busy host and pass: each waits for it (the endpoint thread deaf meanwhile). */
        ULONG applied = apply_enable(&en->guid, 1, h, alive[slot] - 1, found_in[slot], en->clock_type,
                                     en->version, busy[slot]);
        if (applied == ERROR_BUSY) busy[slot] = 1;
        /* no room for one more enable: a copy made again has none either (it waited for a
         * disable here that may never come, pass after pass); it is dropped, counted and
         * reported once (a copy made again finds the same one dropped already) */
        if (applied == ERROR_NOT_ENOUGH_MEMORY) dropped += (uint32_t)first_count(&g_dropped, en);
        else if (applied != ERROR_SUCCESS) unfinished = ERROR_BUSY;
    }
    if (drop_absent) {
        pthread_mutex_lock(&g_reg_lock);
        memcpy(held, g_enables, sizeof held);
        pthread_mutex_unlock(&g_reg_lock);
        for (int i = 0; i < WPT_MAX_ENABLES; i++) {
            enable_entry *e = &held[i];
            uint32_t slot = wpt_handle_slot(e->logger);
            if (!e->used || e->version > copied_at || slot == UINT32_MAX) continue;
            wpt_session *local = &wpt_sessions[slot];   /* a private session is not in the registry */
            if (atomic_load(&local->role) == WPT_ROLE_PRIVATE && local->registry_generation == e->generation)
                continue;
            /* the registry dropped it by the time of the copy: a disable that new */
            if (!copy_holds(copy, &e->guid, e->logger)
                && wpt_apply_enable(&e->guid, 0, e->logger, e->generation, 0, e->clock_type, copied_at)
                   != ERROR_SUCCESS)
                unfinished = ERROR_BUSY;
        }
    }
    t_copying = 0;
    atomic_store(&g_copy_inherited, 0);       /* a child's inherited copy ends here, or none */
    pthread_mutex_unlock(&g_copy_lock);
    if (dropped) atomic_fetch_add(&wpt_enables_dropped, dropped);
    if (dropped && unfinished == ERROR_SUCCESS) return ERROR_NOT_ENOUGH_MEMORY;
    return unfinished;
}

ULONG wpt_apply_registry_snapshot(void) {
    return copy_registry(0);
}

ULONG wpt_reconcile_with_registry(void) {
    return copy_registry(1);
}

size_t wpt_registered_guids(wpt_wire_registered *out, size_t max) {
    size_t n = 0;
    pthread_mutex_lock(&g_reg_lock);
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS && n < max; i++) {
        if (!g_regs[i].used) continue;
        int seen = 0;
        for (size_t k = 0; k < n && !seen; k++) seen = guid_eq(&out[k].guid, &g_regs[i].control);
        if (seen) continue;
        enable_entry *e = find_enable(&g_regs[i].control);
        out[n].guid = g_regs[i].control;
        out[n].logger_handle = e && reached_all(e) ? e->logger : 0;
        n++;
    }
    pthread_mutex_unlock(&g_reg_lock);
    return n;
}

static ULONG register_guids(WMIDPREQUEST cb, PVOID ctx, LPCGUID control, ULONG count,
                            TRACE_GUID_REGISTRATION *regs, PTRACEHANDLE out);
static ULONG unregister_guids(TRACEHANDLE handle);

/* The entry points that wait (JOINs, callbacks of other threads) with a lock held run with
 * cancellation held off (see wpt_cancel_hold), except in the application's own code: the
 * callbacks they run, and UnregisterTraceGuids's wait for callbacks in other threads. Neither
 * delivers what is owed to other registrations (see wpt_deliver_owed_at_entry): as on Windows,
 * RegisterTraceGuids runs only the new registration's own ENABLE and UnregisterTraceGuids no
 * callback, and their callers may hold a lock another registration's callback takes. */
ULONG RegisterTraceGuidsA(WMIDPREQUEST cb, PVOID ctx, LPCGUID control, ULONG count,
                          TRACE_GUID_REGISTRATION *regs, LPCSTR mof_path, LPCSTR mof_resource,
                          PTRACEHANDLE out) {
    (void)mof_path;
    (void)mof_resource;   /* MOF class registration has no meaning without WMI */
    int state = wpt_cancel_hold();
    wpt_cancel_allow_callbacks(state);
    ULONG rc = register_guids(cb, ctx, control, count, regs, out);
    wpt_cancel_restore(state);
    return rc;
}

ULONG UnregisterTraceGuids(TRACEHANDLE handle) {
    int state = wpt_cancel_hold();
    wpt_cancel_allow_callbacks(state);
    ULONG rc = unregister_guids(handle);
    wpt_cancel_restore(state);
    return rc;
}

static void unlock_registrations(void *unused) {
    (void)unused;
    pthread_mutex_unlock(&g_reg_lock);
}

static ULONG register_guids(WMIDPREQUEST cb, PVOID ctx, LPCGUID control, ULONG count,
                            TRACE_GUID_REGISTRATION *regs, PTRACEHANDLE out) {
    if (!cb || !control || !out || (count && !regs)) return ERROR_INVALID_PARAMETER;
    for (ULONG i = 0; i < count; i++)
        if (!regs[i].Guid) return ERROR_INVALID_PARAMETER;
    /* Sessions of other processes reach this one through its endpoint. Without a usable
     * runtime directory the provider still works with sessions of this process. */
    if (!wpt_in_host) wpt_endpoint_ensure();
    wpt_let_held_callbacks_go();           /* a forked child runs its code again */
    pending_list pending = {0};
    pthread_mutex_lock(&g_reg_lock);
    int idx = -1;
    for (int i = 0; i < WPPTRACE_MAX_REGISTRATIONS; i++)
        if (!g_regs[i].used && g_regs[i].inflight == 0) { idx = i; break; }
    if (idx < 0 || pending_reserve(&pending, 1) != 0) {
        pthread_mutex_unlock(&g_reg_lock);
        /* every place taken (WPPTRACE_MAX_REGISTRATIONS): ERROR_NOT_ENOUGH_MEMORY, which
         * only this says; callers name the limit, the code's own text speaks of memory */
        return idx < 0 ? ERROR_NOT_ENOUGH_MEMORY : ERROR_OUTOFMEMORY;
    }
    registration *r = &g_regs[idx];
    if (idx >= g_regs_high) g_regs_high = idx + 1;
    r->used = 1;
    r->generation++;
    r->started_version = 0;
    r->control = *control;
    r->callback = cb;
    r->context = ctx;
    TRACEHANDLE handle = ((TRACEHANDLE)r->generation << 32) | (TRACEHANDLE)(idx + 1);
    for (ULONG i = 0; i < count; i++) regs[i].RegHandle = (PVOID)(uintptr_t)handle;
    *out = handle;
    hand_nothing(r);
    /* A session enabled this GUID before the provider registered: enable it now. What the
     * entry says is copied: once the lock is let go it may be replaced or reused. */
    enable_entry *e = find_enable(control);
    TRACEHANDLE logger = 0;
    uint32_t generation = 0, incarnation = 0;
    uint64_t version = 0;
    if (e) {
        logger = e->logger;
        generation = e->generation;
        incarnation = e->incarnation;
        version = e->version;
        pending_add(&pending, idx, WMI_ENABLE_EVENTS, e->logger, e->generation, e->clock_type, e->version);
    }
    pthread_mutex_unlock(&g_reg_lock);
    ULONG usable = pending.n ? make_usable(logger, generation, incarnation) : ERROR_SUCCESS;
    if (usable != ERROR_SUCCESS) {
        /* this registration is owed the ENABLE (not listed as enabled) until the endpoint
         * thread delivers it, to it alone: the other registrations of the GUID have it. A
         * session gone is no longer enabled, unless a registration still has it (it is owed
         * the DISABLE). */
        enable_not_usable(&pending, control, logger, version, usable);
        return ERROR_SUCCESS;
    }
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

/* With g_reg_lock held: waits until no thread but this one runs a callback of the registration
 * at `idx` (this thread's own calls of it, if a callback unregisters, are `mine`). The waits
 * are the application's: cancelled meanwhile, the registration is gone all the same and only
 * the lock is to be let go. A function of its own so that nothing of the caller's is live
 * across the setjmp of pthread_cleanup_push. */
static void wait_for_other_callbacks(const registration *r, uint32_t mine) {
    int allowed = wpt_callback_cancel_state(), held = -1;
    pthread_cleanup_push(unlock_registrations, NULL);
    if (allowed >= 0) pthread_setcancelstate(allowed, &held);
    while (r->running > mine) {
        WPT_TEST_POINT(WPT_POINT_UNREGISTER_WAITING);
        pthread_cond_wait(&g_reg_cond, &g_reg_lock);
    }
    if (held >= 0) pthread_setcancelstate(held, NULL);
    pthread_cleanup_pop(0);
}

static ULONG unregister_guids(TRACEHANDLE handle) {
    uint32_t idx = (uint32_t)(handle & 0xFFFFFFFF);
    if (idx == 0 || idx > WPPTRACE_MAX_REGISTRATIONS) return ERROR_INVALID_PARAMETER;
    ULONG rc = ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&g_reg_lock);
    registration *r = &g_regs[idx - 1];
    if (r->used && r->generation == (uint32_t)(handle >> 32)) {
        r->used = 0;
        rc = ERROR_SUCCESS;
        /* wait for callbacks running in other threads (not for our own caller); calls queued
         * and not started never run now (a sibling's callback may unregister it while this
         * thread still has its call queued: waiting for that waited forever) */
        uint32_t mine = 0;
        for (const running_call *k = t_innermost; k; k = k->outer) mine += k->reg == (int)(idx - 1);
        wait_for_other_callbacks(r, mine);
    }
    pthread_mutex_unlock(&g_reg_lock);
    return rc;
}

static int handle_known(TRACEHANDLE h) {
    uint32_t slot = wpt_handle_slot(h);
    if (slot == UINT32_MAX) return 0;
    wpt_view *v = atomic_load(&wpt_views[slot]);
    if (v && (uint8_t)v->registry_generation == wpt_handle_generation(h)) return 1;
    wpt_session *s = &wpt_sessions[slot];
    return atomic_load(&s->role) != WPT_ROLE_NONE
        && (uint8_t)s->registry_generation == wpt_handle_generation(h);
}

TRACEHANDLE GetTraceLoggerHandle(PVOID buffer) {
    if (!buffer) {
        wpt_set_last_error(ERROR_INVALID_PARAMETER);
        return INVALID_TRACEHANDLE_VALUE;
    }
    TRACEHANDLE h = ((const WNODE_HEADER *)buffer)->HistoricalContext;
    if (!handle_known(h)) {
        wpt_set_last_error(ERROR_INVALID_HANDLE);
        return INVALID_TRACEHANDLE_VALUE;
    }
    wpt_set_last_error(ERROR_SUCCESS);
    return h;
}

ULONG GetTraceEnableFlags(TRACEHANDLE h) {
    if (!handle_known(h)) {
        wpt_set_last_error(ERROR_INVALID_HANDLE);
        return 0;
    }
    wpt_set_last_error(ERROR_SUCCESS);
    return (ULONG)(h >> 32);
}

UCHAR GetTraceEnableLevel(TRACEHANDLE h) {
    if (!handle_known(h)) {
        wpt_set_last_error(ERROR_INVALID_HANDLE);
        return 0;
    }
    wpt_set_last_error(ERROR_SUCCESS);
    return (UCHAR)((h >> 16) & 0xFF);
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
static inline ULONG message_begin(TRACEHANDLE h, ULONG flags, const void *guid, size_t args_size,
                                  wpt_reservation *r, unsigned char **args) {
    wpt_release_held_callbacks();          /* a forked child runs its code again */
    if ((h & 0xFFFF) == 0 || (h & 0xFFFF) == KERNEL_LOGGER_ID) return ERROR_INVALID_HANDLE;
    if (flags & ~KNOWN_MESSAGE_FLAGS) return ERROR_INVALID_PARAMETER;
    if ((flags & (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID))
        == (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID))
        return ERROR_INVALID_PARAMETER;
    if ((flags & (TRACE_MESSAGE_GUID | TRACE_MESSAGE_COMPONENTID)) && !guid)
        return ERROR_INVALID_PARAMETER;
    if (args_size > TRACE_MESSAGE_MAXIMUM_SIZE) args_size = TRACE_MESSAGE_MAXIMUM_SIZE;  /* too big anyway */
    uint32_t size = (uint32_t)(sizeof(MESSAGE_TRACE_HEADER) + items_size(flags) + args_size);
    /* wpt_reserve answers ERROR_MORE_DATA (counted in EventsLost), before writing anything,
     * when the record does not fit an empty buffer: 8 (this header) + the flags' items + the
     * arguments, 8-byte aligned, must not exceed BufferSize - 72 (the WMI_BUFFER_HEADER), as
     * Windows counts it. The documented "arguments + 72 <= BufferSize" is necessary only. */
    ULONG rc = wpt_reserve(h, size, r);
    if (rc != ERROR_SUCCESS) return rc;
    /* bytes 0-7 are stored last, by message_end: until then they say "being written, by
     * this thread" (see wpt_reserve) */
    unsigned char *p = r->record + sizeof(MESSAGE_TRACE_HEADER);
    if (flags & TRACE_MESSAGE_SEQUENCE) {
        uint32_t seq = 0;   /* without a sequence mode on the session there is no sequence */
        wpt_shm *sh = r->view->sh;
        if (sh->log_file_mode & EVENT_TRACE_USE_GLOBAL_SEQUENCE)
            seq = atomic_fetch_add_explicit(r->view->sequence, 1, memory_order_relaxed) + 1;
        else if (sh->log_file_mode & EVENT_TRACE_USE_LOCAL_SEQUENCE)
            seq = atomic_fetch_add_explicit(&sh->local_sequence, 1, memory_order_relaxed) + 1;
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
static inline void message_end(wpt_reservation *r, unsigned char *end, ULONG flags, USHORT number) {
    uint16_t option_flags = (uint16_t)((flags & 0x3F) | POINTER_FLAG);
    memcpy(r->record + offsetof(MESSAGE_TRACE_HEADER, MessageNumber), &number, sizeof number);
    memcpy(r->record + offsetof(MESSAGE_TRACE_HEADER, OptionFlags), &option_flags, sizeof option_flags);
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
    ULONG rc = message_begin(h, flags, guid, total, &r, &p);
    if (rc != ERROR_SUCCESS) return rc;
    for (;;) {
        void *data = va_arg(ap, void *);
        if (!data) break;
        size_t n = va_arg(ap, size_t);
        memcpy(p, data, n);
        p += n;
    }
    message_end(&r, p, flags, number);
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
    ULONG rc = message_begin(h, flags, guid, total, &r, &p);
    if (rc != ERROR_SUCCESS) return rc;
    for (ULONG i = 0; i < count; i++) {
        copy_arg(p, args[i].Data, args[i].Size);
        p += args[i].Size;
    }
    message_end(&r, p, flags, number);
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
    ULONG rc = message_begin(h, flags, guid, size, &r, &p);
    if (rc != ERROR_SUCCESS) return rc;
    if (size) memcpy(p, payload, size);
    message_end(&r, p + size, flags, number);
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

/* A reservation that is never completed, as a writer leaves it when it dies (or is cancelled,
 * or longjmps out) between reserving and committing. */
ULONG wpptrace_debug_reserve_only(TRACEHANDLE h, ULONG size) {
    wpt_reservation r;
    return wpt_reserve(h, size < 8 ? 8 : size, &r);
}
