/* etw_endpoint.c: how a process with providers hears about sessions in other processes.
 *
 * The first RegisterTraceGuids of a process makes it listen on p-<pid>.sock in the runtime
 * directory and start one thread. A controller that enables or disables a control GUID
 * (EnableTrace in any process) or a host that stops connects to every p-*.sock and sends the
 * change (ENABLE/DISABLE with the registry version); the thread applies it: it maps the
 * session's memory if needed (JOIN: the host passes its memfd) and runs the ControlCallbacks
 * of the matching registrations, then answers, so EnableTrace returns once every process
 * has done so (or a bounded wait ran out). Every process hears every change, registered or
 * not, and keeps the latest per GUID: a provider registered later finds it at once. A new
 * endpoint first listens, then copies the registry, so no change falls between the two.
 * The thread also watches the connection each JOIN leaves open: when a host goes away
 * (stopped or killed), the session's memory is unmapped and its providers disabled here.
 *
 * fork: prepare/parent/child handlers keep the core's locks consistent; the child gets its
 * own endpoint (socket and thread) and keeps writing into the sessions it had mapped, which
 * are shared memory. The child handler only resets state and starts the endpoint: its copy of
 * the registry, and every callback the child is owed, is the endpoint thread's, after fork()
 * returned (a callback run inside fork() runs before the child's runtime starts again).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"

extern volatile int wpt_forking_host;

static pthread_mutex_t g_ep_lock = PTHREAD_MUTEX_INITIALIZER;   /* endpoint state */
static pthread_mutex_t g_attach_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_listen = -1;
static int g_wake[2] = {-1, -1};
static uint32_t g_pid;              /* the process the endpoint belongs to */
static int g_running, g_quit;
/* A new endpoint listens (g_running) while it copies the registry, before its thread exists:
 * wpptrace_endpoint_close waits for the thread (or lets the start undo itself) instead of
 * joining a thread that is not there. g_start_id tells the start apart from a later one (a
 * forked child starts its own inside a callback of the parent's copy). */
static int g_starting;
static uint64_t g_start_id;
static pthread_cond_t g_started = PTHREAD_COND_INITIALIZER;
static __thread int t_starting;         /* this thread is making the starting endpoint's copy */
/* wpptrace_endpoint_close was called in a callback the endpoint thread runs: it cannot join
 * itself, so it undoes the endpoint as it ends (unless a close in another thread joins it). */
static int g_self_closing;
static int g_closing;                   /* a close joins the endpoint thread (one at a time) */
static pthread_t g_thread;
static char g_path[256];
/* The socket file g_listen is bound at (0: not known), and when to look for it again: a
 * clean-up of the runtime directory takes it, and once the directory is made again the socket
 * is bound there again (no session of another process could reach this process's providers). */
static dev_t g_bound_dev, g_bound_dir_dev;
static ino_t g_bound_ino, g_bound_dir_ino;     /* and the directory it is in */
static uint32_t g_bound_dir_replaced;  /* wpt_runtime_dir_replaced() when it was bound */
static int64_t g_bound_check_at;
/* JOIN connection per slot, -1 if none (from the start: a forked child closes what it finds) */
static int g_joins[WPPTRACE_MAX_SESSIONS] = {[0 ... WPPTRACE_MAX_SESSIONS - 1] = -1};
static uint32_t g_join_gen[WPPTRACE_MAX_SESSIONS];   /* the joined session's registry generation */
/* and the incarnation of the registry it was found in, if its host checks it (else 0): a forked
 * child joins again with it, so a session of a registry made again since is not taken for it */
static uint32_t g_join_incarnation[WPPTRACE_MAX_SESSIONS];
static uint8_t g_rejoin[WPPTRACE_MAX_SESSIONS];  /* forked child: re-join g_join_gen[slot] */
static int64_t g_rejoin_at[WPPTRACE_MAX_SESSIONS];   /* when to try again (its host was busy) */
static int64_t g_rejoin_wait[WPPTRACE_MAX_SESSIONS];
/* This thread is the endpoint thread. A child forked in a callback the endpoint thread runs
 * has a copy of it (the forking thread), beside the new endpoint thread the child starts:
 * fork_child clears the flag there, and the copy leaves the endpoint's loop as soon as the
 * callback returns, touching none of the child's endpoint state (two loops used its requests,
 * retries and descriptors with no common lock). */
static __thread int t_endpoint_thread;
/* The process asked that a forked child's callbacks wait until the child lets them go (see
 * wpptrace_hold_callbacks_after_fork); wpt_callbacks_held: they wait now, in this child. */
static _Atomic int g_hold_after_fork;
_Atomic int wpt_callbacks_held;

/* Called with g_ep_lock held: wpptrace_endpoint_close closes the pipe under it. */
static void wake_thread(void) {
    int fd = g_wake[1];
    if (fd >= 0) {
        WPT_TEST_POINT(WPT_POINT_ENDPOINT_WAKING);
        char c = 'w';
        ssize_t w = write(fd, &c, 1);
        (void)w;
    }
}

/* registry_has and registry_dropped: the registry lock was held elsewhere too long to tell */
#define REGISTRY_BUSY (-1)

/* An ENABLE is applied only as the registry has it (same version, session, flags, level):
 * one made up by a process of this user cannot hand a callback a handle nobody enabled, nor
 * store a version from the future that would hide every later enable. One the registry
 * already replaced is old news: its successor comes too. An enable entry lives no longer than
 * its session's registry entry (freeing one removes its enables), so the session is the one
 * its slot holds now: *generation is its whole generation, which the handle has 8 bits of. */
static int registry_has(const wpt_wire_enable *m, uint32_t *generation, uint32_t *incarnation) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return rc == ERROR_BUSY ? REGISTRY_BUSY : 0;
    int found = 0;
    for (int i = 0; i < WPT_MAX_ENABLES && !found; i++) {
        const wpt_reg_enable *en = &reg->enables[i];
        found = en->used && en->version == m->version && memcmp(&en->guid, &m->guid, sizeof en->guid) == 0
             && en->clock_type == m->clock_type
             && wpt_handle_of(en->logger_id, en->generation, en->flags, en->level) == m->logger_handle;
        if (found) {
            const wpt_reg_logger *e = wpt_reg_logger_of(reg, en->logger_id);
            found = e && e->state != WPT_FREE && (uint8_t)e->generation == en->generation;
            if (found) {
                *generation = e->generation;
                *incarnation = wpt_reg_incarnation_for(reg, e);      /* in the same hold */
            }
        }
    }
    wpt_registry_unlock();
    return found;
}

/* A DISABLE is applied only once the registry holds no enable of its GUID (GUID 0: of any) by
 * its session (the one `meant_for` names): a stopping host, a process that found a host gone
 * and a disabling EnableTrace take them out of the registry before they tell anyone. One made
 * up by another process of the user, for a session that still holds the provider, changes
 * nothing. A whole session (GUID 0) whose slot is free or holds another one by now holds
 * nothing (its enables went with its entry); it is disabled by its whole generation. A single
 * GUID's disable is checked by the handle's 8 bits: refused while a newer session with the same
 * 8 bits holds that GUID. */
static int registry_dropped(const wpt_wire_enable *m, uint32_t meant_for) {
    static const GUID zero;
    int any = memcmp(&m->guid, &zero, sizeof zero) == 0;
    uint16_t id = (uint16_t)(m->logger_handle & 0xFFFF);
    uint8_t generation = wpt_handle_generation(m->logger_handle);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return rc == ERROR_BUSY ? REGISTRY_BUSY : 1;  /* none: no session holds anything */
    const wpt_reg_logger *e = wpt_reg_logger_of(reg, id);
    if (any && (!e || e->state == WPT_FREE || !wpt_request_is_for(meant_for, e->generation))) {
        wpt_registry_unlock();
        return 1;
    }
    /* a version the registry never gave out is made up: applied, it would be kept as this
     * GUID's last disable and refuse every later enable */
    int held = !any && m->version > reg->last_version;
    for (int i = 0; i < WPT_MAX_ENABLES && !held; i++) {
        const wpt_reg_enable *en = &reg->enables[i];
        held = en->used && en->logger_id == id && en->generation == generation
            && (any || memcmp(&en->guid, &m->guid, sizeof en->guid) == 0);
    }
    wpt_registry_unlock();
    return !held;
}

/* Requests are read side by side, each connection as its bytes come: one that is slow or
 * silent holds up no other. One still incomplete after REQUEST_WAIT_MS is dropped. */
#define MAX_REQUESTS 64
#define REQUEST_WAIT_MS 10000

typedef struct {
    int fd;                     /* -1: a free entry */
    uint32_t have;
    int64_t since;
    unsigned char buf[sizeof(wpt_frame) + sizeof(wpt_wire_enable)];
} request_conn;

/* Connections being read (the endpoint thread's; changed under g_ep_lock, which fork holds). */
static request_conn g_requests[MAX_REQUESTS];

/* Out of descriptors (EMFILE, ENFILE, no memory): the connection waiting to be accepted keeps
 * the listening socket readable, and polling it again at once would spin in the application.
 * It is left unpolled until then; the connection waits in the listen queue (endpoint thread only). */
#define ACCEPT_PAUSE_MS 1000
static int64_t g_accept_paused_until;

/* Read what a connection has: 1 once a whole frame is buffered, 0 while more is to come, -1 at
 * its end, on an error, or for a frame that is none of ours (no answer). */
static int pump(request_conn *c, wpt_frame *f) {
    for (;;) {
        uint32_t need = sizeof *f;
        if (c->have >= need) {
            memcpy(f, c->buf, sizeof *f);
            if (f->magic != WPT_WIRE_MAGIC || f->length > sizeof(wpt_wire_enable)) return -1;
            need += f->length;
            if (c->have >= need) return 1;
        }
        ssize_t n = recv(c->fd, c->buf + c->have, need - c->have, MSG_DONTWAIT);
        if (n == 0) return -1;
        if (n < 0) return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->have += (uint32_t)n;
    }
}

static void drop_request(request_conn *c) {
    pthread_mutex_lock(&g_ep_lock);
    close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&g_ep_lock);
}

/* The session a request is about: its whole generation, as the sender named it in the status
 * word; older builds name only the handle's 8 bits. */
static uint32_t meant_for_of(uint32_t status, const wpt_wire_enable *msg) {
    uint8_t low8 = wpt_handle_generation(msg->logger_handle);
    return (status & WPT_FOR_GENERATION) && (uint8_t)status == low8 ? status : WPT_FOR_GENERATION | low8;
}

/* Apply an ENABLE or DISABLE as the registry has it: ERROR_BUSY when the registry could not be
 * read (the request is tried again later, see retry_later). */
static ULONG apply_request(uint32_t kind, uint32_t status, const wpt_wire_enable *msg) {
    static const GUID zero;
    uint32_t slot = wpt_handle_slot(msg->logger_handle);
    uint32_t meant_for = meant_for_of(status, msg);
    if (kind == WPT_REQ_DISABLE) {
        int dropped = registry_dropped(msg, meant_for);
        if (dropped == REGISTRY_BUSY) return ERROR_BUSY;
        if (!dropped) return ERROR_SUCCESS;     /* made up: the registry still has it held */
        if (memcmp(&msg->guid, &zero, sizeof zero) == 0) {
            if (slot != UINT32_MAX) wpt_apply_session_gone(slot, meant_for);
            return ERROR_SUCCESS;
        }
        /* the whole generation, when the sender named it (older builds: not known) */
        uint32_t whole = (meant_for & WPT_FOR_WIDE_GENERATION)
                       ? (meant_for & 0xFFu) | (meant_for >> 10) << 8 : 0;
        return wpt_apply_enable(&msg->guid, 0, msg->logger_handle, whole, 0, msg->clock_type, msg->version);
    }
    uint32_t generation = 0, incarnation = 0;
    int has = registry_has(msg, &generation, &incarnation);
    if (has == REGISTRY_BUSY) return ERROR_BUSY;
    if (!has) return ERROR_SUCCESS;             /* made up, or replaced already */
    return wpt_apply_enable(&msg->guid, 1, msg->logger_handle, generation, incarnation, msg->clock_type,
                            msg->version);
}

/* Requests the registry was too busy to check, and the registry copy a new endpoint could not
 * make: the endpoint thread tries them again, waits doubling from 1 s up to a minute (never a
 * thread of the application). Each is checked against the registry when tried, so only the
 * latest per session and GUID is kept (it replaces an earlier one). Without room the queue
 * gives way to one reconciliation with the whole registry, which brings its enables in and
 * disables what it no longer holds: no change is lost, in bounded memory. */
#define MAX_RETRIES 64
typedef struct {
    uint32_t kind, status;
    wpt_wire_enable msg;
} retry_entry;
static retry_entry g_retries[MAX_RETRIES];
static int g_retry_count;
static int g_reconcile_owed;
static int g_delivery_owed;     /* wpt_deliver_owed is to run (with the reconciliation) */
static int64_t g_retry_at, g_retry_wait;

static void retry_backoff(void) {
    g_retry_wait = g_retry_wait ? g_retry_wait * 2 : 1000;
    if (g_retry_wait > 60000) g_retry_wait = 60000;
    g_retry_at = wpt_mono_ms() + g_retry_wait;
}

/* Do two requests name the same session (LoggerId and whole generation) and GUID? */
static int same_subject(const retry_entry *a, uint32_t status, const wpt_wire_enable *b) {
    return (a->msg.logger_handle & 0xFFFF) == (b->logger_handle & 0xFFFF)
        && meant_for_of(a->status, &a->msg) == meant_for_of(status, b)
        && memcmp(&a->msg.guid, &b->guid, sizeof b->guid) == 0;
}

/* Only the newest request (by version) per session and GUID is kept: broadcasts of different
 * controllers may arrive out of order, and an older ENABLE that came last must not replace a
 * newer DISABLE (the provider stayed enabled). */
static void retry_later(uint32_t kind, uint32_t status, const wpt_wire_enable *msg) {
    if (!g_reconcile_owed) {
        int kept = 0, newer_held = 0;
        for (int i = 0; i < g_retry_count; i++) {   /* in the order they came */
            if (same_subject(&g_retries[i], status, msg) && g_retries[i].msg.version <= msg->version) continue;
            newer_held |= same_subject(&g_retries[i], status, msg);
            g_retries[kept++] = g_retries[i];
        }
        g_retry_count = kept;
        if (newer_held) {
            /* older news: dropped */
        } else if (g_retry_count < MAX_RETRIES) {
            g_retries[g_retry_count++] = (retry_entry){kind, status, *msg};
        } else {
            g_retry_count = 0;
            g_reconcile_owed = 1;
        }
    }
    if (!g_retry_at) retry_backoff();
}

#ifdef WPT_TEST_POINTS
_Atomic int wpt_test_owed_busy;
#endif

/* Set by any thread: an enable left undelivered outside the endpoint thread. */
static _Atomic int g_redeliver;

void wpt_endpoint_redeliver(void) {
    if (t_endpoint_thread) return;     /* its own are retried where they failed */
    atomic_store(&g_redeliver, 1);
    /* under the lock: an endpoint closing meanwhile closes the pipe, and the number may be
     * another descriptor of the process by the time the byte is written (write() is a
     * cancellation point: a thread cancelled there kept the lock) */
    int state = wpt_cancel_hold();
    pthread_mutex_lock(&g_ep_lock);
    wake_thread();
    pthread_mutex_unlock(&g_ep_lock);
    wpt_cancel_restore(state);
}

void wpptrace_hold_callbacks_after_fork(void) { atomic_store(&g_hold_after_fork, 1); }

/* The endpoint thread, held, touches none of its state until it is let go (below). */
void wpt_let_held_callbacks_go(void) {
    if (!atomic_load(&wpt_callbacks_held) || !atomic_exchange(&wpt_callbacks_held, 0)) return;
    int state = wpt_cancel_hold();           /* as in wpt_endpoint_redeliver */
    pthread_mutex_lock(&g_ep_lock);
    wake_thread();
    pthread_mutex_unlock(&g_ep_lock);
    wpt_cancel_restore(state);
}

/* As os.fork() returns in the child: a copy is made here, so the child has the registry's
 * enables when it goes on, as its parent had (in a callback its caller may hold what another
 * callback waits for: left to the endpoint thread). The endpoint thread still makes the one it
 * owes (this one may have found the registry busy): the enables it brings again run nothing. */
void wpptrace_release_callbacks_after_fork(void) {
    if (!atomic_load(&wpt_callbacks_held)) return;
    if (!wpt_in_callback()) {
        int state = wpt_cancel_hold();
        wpt_reconcile_with_registry();
        wpt_cancel_restore(state);
    }
    wpt_let_held_callbacks_go();
}

/* Is an endpoint thread of this process there to take a redelivery (not closing)? */
static int endpoint_delivers(void) {
    pthread_mutex_lock(&g_ep_lock);
    int yes = g_running && g_pid == (uint32_t)getpid() && !g_quit;
    pthread_mutex_unlock(&g_ep_lock);
    return yes;
}

/* With no endpoint thread (the runtime directory unusable, the endpoint closed by the
 * application, a session host) nothing reads g_redeliver: EnableTrace(Ex2) delivers what is
 * owed itself, outside any callback; its caller expects this process's ControlCallbacks on its
 * thread. No other entry point: a thread holding a lock a callback takes deadlocked there
 * (QUERYing a session under its provider's lock, or unregistering or registering another
 * provider under it, which Windows runs no other registration's callback in), nor in a
 * callback (its caller may hold what a callback waits for). What fails is owed to the next. */
void wpt_deliver_owed_at_entry(void) {
    wpt_let_held_callbacks_go();           /* a forked child runs its code again */
    if (!atomic_load(&g_redeliver) || t_endpoint_thread || wpt_in_callback() || endpoint_delivers()) return;
    if (!atomic_exchange(&g_redeliver, 0)) return;
    if (wpt_deliver_owed(1) != ERROR_SUCCESS) atomic_store(&g_redeliver, 1);
}

/* What is owed and nobody delivered yet (no endpoint thread, no entry point called since) is
 * counted, once each, when asked. */
void wpt_endpoint_owed_undelivered(void) {
    if (atomic_load(&g_redeliver) && !t_endpoint_thread && !endpoint_delivers()) wpt_count_owed_undelivered();
}

/* The retries due now, in the order the requests came. */
static void retry_due(void) {
    if (atomic_exchange(&g_redeliver, 0)) {
        g_reconcile_owed = 1;
        g_delivery_owed = 1;
        g_retry_count = 0;             /* the reconciliation checks them all */
        if (!g_retry_at) g_retry_at = wpt_mono_ms();   /* due now: no retry is waiting */
        WPT_TEST_POINT(WPT_POINT_OWED_TAKEN);
    }
    if (!g_retry_at || wpt_mono_ms() < g_retry_at) return;
    int busy = 0, kept = 0;
    for (int i = 0; i < g_retry_count; i++) {
        int applied = !busy && apply_request(g_retries[i].kind, g_retries[i].status, &g_retries[i].msg) != ERROR_BUSY;
        if (!t_endpoint_thread) return;     /* a forked child's copy of the thread */
        if (applied) continue;
        busy = 1;
        g_retries[kept++] = g_retries[i];
    }
    g_retry_count = kept;
    if (!busy && g_delivery_owed) {
        WPT_TEST_POINT(WPT_POINT_OWED_DELIVERING);
        busy = WPT_OWED_BUSY_FOR_TEST || wpt_deliver_owed(0) != ERROR_SUCCESS;
        if (!t_endpoint_thread) return;
        if (!busy) g_delivery_owed = 0;
    }
    if (!busy && g_reconcile_owed) busy = wpt_reconcile_with_registry() == ERROR_BUSY;
    if (!t_endpoint_thread) return;
    if (!busy) g_reconcile_owed = 0;
    if (busy) {
        retry_backoff();
    } else {
        g_retry_at = 0;
        g_retry_wait = 0;
        WPT_TEST_POINT(WPT_POINT_RETRIES_DONE);
    }
}

/* How long the endpoint thread may sleep in poll before a retry is due (ms, at most `most`). */
static int until_retry(int most) {
    if (!g_retry_at) return most;
    int64_t left = g_retry_at - wpt_mono_ms();
    return left < 0 ? 0 : left < most ? (int)left : most;
}

static void handle_request(int fd, const wpt_frame *frame, const unsigned char *payload) {
    wpt_frame f = *frame;
    wpt_wire_enable msg;
    if (f.length == sizeof msg) memcpy(&msg, payload, sizeof msg);
    if ((f.kind == WPT_REQ_ENABLE || f.kind == WPT_REQ_DISABLE) && f.length == sizeof msg) {
        ULONG rc = apply_request(f.kind, f.status, &msg);
        if (!t_endpoint_thread) return;    /* forked in a callback: the child's copy answers nothing */
        if (rc == ERROR_BUSY) retry_later(f.kind, f.status, &msg);
        wpt_ipc_send(fd, WPT_REPLY, rc, NULL, 0, -1, 2000);
    } else if (f.kind == WPT_REQ_LIST && f.length == 0) {
        wpt_wire_registered regs[256];
        size_t n = wpt_registered_guids(regs, 256);
        wpt_ipc_send(fd, WPT_REPLY, ERROR_SUCCESS, regs, (uint32_t)(n * sizeof regs[0]), -1, 2000);
    } else {
        wpt_ipc_send(fd, WPT_REPLY, ERROR_INVALID_PARAMETER, NULL, 0, -1, 500);
    }
}

/* Serve the connections poll found readable (pfd[first..n)), drop those that waited too long,
 * and take new ones while there is room (`accepting`: the listening socket is readable). */
static void serve_requests(const struct pollfd *pfd, int first, int n, const int *request_of, int accepting) {
    for (int k = first; k < n; k++) {
        if (!pfd[k].revents) continue;
        request_conn *c = &g_requests[request_of[k]];
        wpt_frame f;
        int got = pump(c, &f);
        if (got == 0) continue;
        if (got == 1) handle_request(c->fd, &f, c->buf + sizeof f);
        if (!t_endpoint_thread) return;    /* a forked child's copy: the fd is not its own */
        drop_request(c);                   /* answered, ended or malformed: closed */
    }
    int64_t now = wpt_mono_ms();
    for (int i = 0; i < MAX_REQUESTS; i++)
        if (g_requests[i].fd >= 0 && now - g_requests[i].since > REQUEST_WAIT_MS) drop_request(&g_requests[i]);
    for (int i = 0; accepting && i < MAX_REQUESTS; i++) {
        if (g_requests[i].fd >= 0) continue;
        int fd;
        do fd = wpt_ipc_accept(g_listen, SOCK_NONBLOCK, NULL, NULL);
        while (fd == -2);                  /* another user: refused */
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                g_accept_paused_until = now + ACCEPT_PAUSE_MS;
            break;
        }
        pthread_mutex_lock(&g_ep_lock);
        g_requests[i] = (request_conn){.fd = fd, .have = 0, .since = now};
        pthread_mutex_unlock(&g_ep_lock);
    }
}

/* Ask the host of the session in `slot` (whole registry generation) for its memory: the
 * connection to keep (*conn: its end tells that the host went away) and the session memory
 * (*memfd, *j), or why not: as every request to a host, ERROR_BUSY for a host alive but slow
 * to answer, ERROR_WMI_INSTANCE_NOT_FOUND for one gone or running another session by now. */
static ULONG join(uint32_t slot, uint32_t generation, uint32_t incarnation, int *conn, int *memfd,
                  wpt_wire_join *j) {
    /* the endpoint thread answers a broadcast after its JOIN: bounded within the broadcast's
     * wait, so a busy host is answered ERROR_BUSY (and tried again) rather than not at all */
    int bound = t_endpoint_thread && WPT_ENDPOINT_JOIN_MS < WPT_HOST_REPLY_MS ? WPT_ENDPOINT_JOIN_MS
                                                                              : WPT_HOST_REPLY_MS;
    /* with the incarnation of the registry the session was found in (see WPT_REQ_IN_INCARNATION);
     * a runtime directory that is busy: tried again as a busy host */
    wpt_frame f;
    void *payload = j;
    ULONG rc = wpt_host_open_in(incarnation, slot, wpt_for_session(generation), WPT_REQ_JOIN, &f, &payload,
                                sizeof *j, memfd, bound, conn);
    if (rc == ERROR_SUCCESS && f.status != ERROR_SUCCESS) rc = f.status;
    else if (rc == ERROR_SUCCESS && (f.length != sizeof *j || *memfd < 0 || wpt_slot_of_id(j->logger_id) != slot
                                     || !wpt_generation_said(j->generation, generation)))
        rc = ERROR_BAD_FORMAT;
    if (rc != ERROR_SUCCESS) {
        if (*memfd >= 0) close(*memfd);
        if (*conn >= 0) close(*conn);
        *conn = *memfd = -1;
    }
    return rc;
}

/* A forked child keeps the sessions it had mapped (shared memory): it only needs its own
 * connection to each host, to hear when the host goes away. A host that is busy is asked again
 * later (waits doubling up to a minute); one that refuses or is gone ended the session. */
static void rejoin(uint32_t slot, uint32_t generation, uint32_t incarnation) {
    int fd, memfd;
    wpt_wire_join j;
    ULONG rc = join(slot, generation, incarnation, &fd, &memfd, &j);
    if (rc == ERROR_BUSY) {
        g_rejoin_wait[slot] = g_rejoin_wait[slot] ? g_rejoin_wait[slot] * 2 : 1000;
        if (g_rejoin_wait[slot] > 60000) g_rejoin_wait[slot] = 60000;
        g_rejoin_at[slot] = wpt_mono_ms() + g_rejoin_wait[slot];
        g_rejoin[slot] = 1;
        return;
    }
    g_rejoin[slot] = 0;
    g_rejoin_wait[slot] = 0;
    if (rc != ERROR_SUCCESS) {
        wpt_apply_session_gone(slot, wpt_for_session(generation));
        WPT_TEST_POINT(WPT_POINT_REJOIN_ANSWERED);
        return;
    }
    close(memfd);
    pthread_mutex_lock(&g_ep_lock);
    if (g_joins[slot] < 0) {            /* else this process joined the slot's session since */
        g_joins[slot] = fd;
        g_join_gen[slot] = generation;
        g_join_incarnation[slot] = incarnation;
        fd = -1;
    }
    pthread_mutex_unlock(&g_ep_lock);
    if (fd >= 0) close(fd);
    WPT_TEST_POINT(WPT_POINT_REJOIN_ANSWERED);
}

/* The re-joins due now (of sessions this process still has mapped). */
static void rejoin_due(void) {
    int64_t now = wpt_mono_ms();
    for (uint32_t i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        if (!g_rejoin[i] || g_rejoin_at[i] > now) continue;
        pthread_mutex_lock(&g_ep_lock);
        uint32_t gen = g_join_gen[i], incarnation = g_join_incarnation[i];
        pthread_mutex_unlock(&g_ep_lock);
        g_rejoin[i] = 0;
        wpt_view *v = atomic_load(&wpt_views[i]);
        if (v && v->registry_generation == gen) rejoin(i, gen, incarnation);
        if (!t_endpoint_thread) return;
    }
}

static void endpoint_teardown(void);

/* g_ep_lock held (released here): the endpoint thread ends. Decided with the lock held since
 * the check of g_quit: a registration withdraws a close made in a callback under it (see
 * endpoint_ensure), never between the check and the undoing. */
static void *leave_loop(void) {
    /* what this thread took to deliver and did not is owed again: a later entry point (or a
     * new endpoint) delivers it, and it is counted as undelivered until then */
    if (g_delivery_owed || g_reconcile_owed) atomic_store(&g_redeliver, 1);
    g_delivery_owed = g_reconcile_owed = 0;
    for (int i = 0; i < MAX_REQUESTS; i++)
        if (g_requests[i].fd >= 0) {
            close(g_requests[i].fd);
            g_requests[i].fd = -1;
        }
    if (g_self_closing) {
        g_self_closing = 0;
        pthread_detach(pthread_self());
        endpoint_teardown();
    }
    pthread_mutex_unlock(&g_ep_lock);
    return NULL;
}

/* A forked child's copy of the endpoint thread (forked in a callback the thread ran, which
 * returned) leaves the loop. While threads of the application run in the child, its endpoint
 * keeps serving them (its registrations, inherited or new, still hear every ENABLE and
 * DISABLE, and its JOINs when a host goes): the copy waits for them to end, nothing else. Then,
 * or at once if there were none, it closes the child's endpoint (its thread joined, its socket
 * and JOINs undone): that thread, every signal blocked in it, would keep the process alive
 * forever, and the process ends as one whose last thread returned does (exit status 0). Where
 * /proc cannot tell, the copy closes at once. */
static void *copy_leaves(void) {
    while (wpt_application_threads() > 0) {
        WPT_TEST_POINT(WPT_POINT_COPY_WAITING);
        poll(NULL, 0, 200);         /* nothing tells of a thread's end: looked at again */
    }
    wpptrace_endpoint_close();
    return NULL;
}

/* Is this process's socket file in the runtime directory held now (the one g_listen is bound
 * at)? `note`: take the file there for it (just bound). */
static int socket_in_place(int note) {
    struct stat st;
    int dir = wpt_runtime_dir_fd();
    if (!g_path[0] || dir < 0 || fstatat(dir, strrchr(g_path, '/') + 1, &st, AT_SYMLINK_NOFOLLOW) != 0
        || !S_ISSOCK(st.st_mode))
        return 0;
    if (note) {
        struct stat in;
        g_bound_dev = st.st_dev;
        g_bound_ino = st.st_ino;
        g_bound_dir_replaced = wpt_runtime_dir_replaced();
        g_bound_dir_dev = fstat(dir, &in) == 0 ? in.st_dev : 0;
        g_bound_dir_ino = g_bound_dir_dev ? in.st_ino : 0;
    }
    return st.st_dev == g_bound_dev && st.st_ino == g_bound_ino;
}

#ifdef WPT_TEST_POINTS
_Atomic int wpt_test_bound_dir_number_reused;
#endif

/* Is the runtime directory held now the one this process's socket was bound in? Not if
 * another was held in its place since (a directory made again may have the removed one's
 * inode number: a disk filesystem reuses it), nor if it has no name left (removed), nor if
 * its device or inode number is another (as the check that holds it judges). */
static int same_directory(void) {
    struct stat st;
    int dir = wpt_runtime_dir_fd();
    if (dir < 0 || fstat(dir, &st) != 0) return 0;
    int same_number = st.st_dev == g_bound_dir_dev && st.st_ino == g_bound_dir_ino;
#ifdef WPT_TEST_POINTS
    if (atomic_load(&wpt_test_bound_dir_number_reused)) same_number = 1;
#endif
    return same_number && st.st_nlink > 0 && wpt_runtime_dir_replaced() == g_bound_dir_replaced;
}

/* Consecutive checks (one a second) that found the socket missing from the directory it was
 * bound in, the directory still there: a clean-up removing the directory takes milliseconds,
 * so after these the removal is over (only files were removed: all of them, an age-based
 * cleaner), and the socket is bound there again. */
#define SAME_DIRECTORY_CHECKS 5
static int g_missing_checks;
static _Atomic int g_exiting;   /* the process exits: its socket removed */
static _Atomic int g_binding;   /* the endpoint thread binds its socket again (see remove_socket) */
static int g_rebinding = -1;    /* the socket being bound again, not swapped in yet (g_ep_lock) */

static void unlink_socket(void);

/* Once a second, on the endpoint thread: the socket a clean-up removed is bound again, and the
 * registry copied again (what other processes told meanwhile reached nobody here). At once in a
 * runtime directory made again (never made again for it); in the directory it was bound in
 * only once it was missing there for SAME_DIRECTORY_CHECKS checks in a row: a clean-up removing
 * that directory may be under way (its files gone, the directory not yet), and a socket bound
 * there again would keep it from being removed. Tried again next time if it fails. */
static void bind_again_if_removed(void) {
    int64_t now = wpt_mono_ms();
    if (now < g_bound_check_at) return;
    g_bound_check_at = now + 1000;
    if (socket_in_place(0) || wpt_runtime_dir_present() != ERROR_SUCCESS || socket_in_place(0)) {
        g_missing_checks = 0;
        return;
    }
    if (same_directory() && ++g_missing_checks < SAME_DIRECTORY_CHECKS) {
        WPT_TEST_POINT(WPT_POINT_REBIND_DEFERRED);
        return;
    }
    g_missing_checks = 0;
    char path[sizeof g_path];
    if (wpt_socket_path(path, sizeof path, 'p', (uint32_t)getpid()) != ERROR_SUCCESS) return;
    WPT_TEST_POINT(WPT_POINT_REBINDING);
    /* Bound under the registry's lock alone (under which every endpoint binds), then swapped in
     * under the endpoint's: the registry's may be waited for a long while (a process stopped
     * holding it), and fork, exit and the entry points must not wait behind it for the
     * endpoint's. The socket is made under the endpoint's lock and kept at g_rebinding until
     * swapped: a child forked in between closes its copy (as it does the listening socket's).
     * Not once the process exits: its socket removed at exit (remove_socket), one bound after
     * would stay. The exit is looked at again after the wait for the registry's lock, right
     * before the bind, with g_binding set: the exit waits for a bind under way (a few system
     * calls), then removes what it bound; a bind that finds the exit begun is not made. */
    pthread_mutex_lock(&g_ep_lock);
    int fd = atomic_load(&g_exiting) ? -1 : wpt_ipc_socket();
    g_rebinding = fd;
    pthread_mutex_unlock(&g_ep_lock);
    if (fd < 0) return;
    ULONG locked;
    wpt_registry *reg = wpt_registry_lock(1, &locked);
    atomic_store(&g_binding, 1);
    int bound = !atomic_load(&g_exiting) && wpt_ipc_listen_on(fd, path) == 0;
    if (bound && atomic_load(&g_exiting)) {
        unlink(path);
        bound = 0;
    }
    atomic_store(&g_binding, 0);
    if (reg) wpt_registry_unlock();
    WPT_TEST_POINT(WPT_POINT_REBOUND);
    pthread_mutex_lock(&g_ep_lock);
    g_rebinding = -1;
    if (bound && !atomic_load(&g_exiting)) {
        if (g_listen >= 0) close(g_listen);
        g_listen = fd;
        socket_in_place(1);
    } else {
        close(fd);
        /* the exit began while it was bound: its socket was removed before, this one is too */
        if (bound) unlink_socket();
        fd = -1;
    }
    pthread_mutex_unlock(&g_ep_lock);
    if (fd < 0) return;
    g_reconcile_owed = 1;
    g_retry_count = 0;                 /* the reconciliation checks them all */
    g_retry_at = now;
}

static void *endpoint_main(void *arg) {
    (void)arg;
    t_endpoint_thread = 1;
    struct pollfd pfd[2 + WPPTRACE_MAX_SESSIONS + MAX_REQUESTS];
    int slot_of[2 + WPPTRACE_MAX_SESSIONS + MAX_REQUESTS];   /* join slot, or request entry */
    for (;;) {
        while (atomic_load(&wpt_callbacks_held)) {
            /* nothing that may run a callback (a re-join, a retry, a request): only the wake
             * that lets them go, or the close */
            WPT_TEST_POINT(WPT_POINT_CALLBACKS_HELD);
            pthread_mutex_lock(&g_ep_lock);
            if (g_quit) return leave_loop();
            struct pollfd wake = {g_wake[0], POLLIN, 0};
            pthread_mutex_unlock(&g_ep_lock);
            if (poll(&wake, 1, 1000) > 0) {
                char buf[64];
                while (read(wake.fd, buf, sizeof buf) > 0) {}
            }
        }
        rejoin_due();
        if (!t_endpoint_thread) return copy_leaves();
        bind_again_if_removed();
        retry_due();
        if (!t_endpoint_thread) return copy_leaves();
        int n = 0;
        pthread_mutex_lock(&g_ep_lock);
        if (g_quit) return leave_loop();
        int room = 0;
        for (int i = 0; i < MAX_REQUESTS; i++) room |= g_requests[i].fd < 0;
        /* no room (or no descriptor to take one with): new connections wait in the listen
         * queue until one is done */
        int64_t paused = g_accept_paused_until - wpt_mono_ms();
        if (paused > 0) room = 0;
        pfd[n++] = (struct pollfd){g_listen, room ? POLLIN : 0, 0};
        pfd[n++] = (struct pollfd){g_wake[0], POLLIN, 0};
        for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++)
            if (g_joins[i] >= 0) {
                slot_of[n] = i;
                pfd[n++] = (struct pollfd){g_joins[i], POLLIN, 0};
            }
        int first_request = n;
        for (int i = 0; i < MAX_REQUESTS; i++)
            if (g_requests[i].fd >= 0) {
                slot_of[n] = i;
                pfd[n++] = (struct pollfd){g_requests[i].fd, POLLIN, 0};
            }
        pthread_mutex_unlock(&g_ep_lock);
        WPT_TEST_POINT(WPT_POINT_ENDPOINT_POLL);
        int wait_ms = until_retry(paused > 0 && paused < 1000 ? (int)paused : 1000);
        if (poll(pfd, (nfds_t)n, wait_ms) < 0 && errno != EINTR) {
            pthread_mutex_lock(&g_ep_lock);
            return leave_loop();
        }
        if (pfd[1].revents) {
            char buf[64];
            while (read(g_wake[0], buf, sizeof buf) > 0) {}
        }
        for (int k = 2; k < first_request; k++) {
            if (!pfd[k].revents) continue;
            /* Only a connection still watched is read: wpt_attach closes the one it replaces
             * while this thread polls, and the number may belong to another descriptor of the
             * process by now (a ControlTrace reply, the application's own socket). */
            int slot = slot_of[k];
            uint32_t gen = 0;
            int gone = 0;
            pthread_mutex_lock(&g_ep_lock);
            if (g_joins[slot] == pfd[k].fd) {
                char buf[64];
                ssize_t got = recv(pfd[k].fd, buf, sizeof buf, MSG_DONTWAIT);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    /* the host closed the connection: it stopped or was killed */
                    close(g_joins[slot]);
                    g_joins[slot] = -1;
                    gen = g_join_gen[slot];
                    gone = 1;
                }
            }
            pthread_mutex_unlock(&g_ep_lock);
            if (gone) {
                wpt_apply_session_gone((uint32_t)slot, wpt_for_session(gen));
                if (!t_endpoint_thread) return copy_leaves();
                pthread_mutex_lock(&g_attach_lock);
                wpt_view *v = atomic_load(&wpt_views[slot]);
                if (v && v->registry_generation == gen && !v->private_pool) wpt_view_retire(v);
                pthread_mutex_unlock(&g_attach_lock);
            }
        }
        serve_requests(pfd, first_request, n, slot_of, (pfd[0].revents & POLLIN) != 0);
        if (!t_endpoint_thread) return copy_leaves();
    }
}

/* By its name in the directory held now: g_path has the number the directory was held at
 * when it was bound (see wpt_runtime_unlink). */
static void unlink_socket(void) {
    if (g_path[0]) wpt_runtime_unlink(strrchr(g_path, '/') + 1);
}

/* At exit (atexit), while the endpoint thread still runs: it binds no socket again from then on
 * (see bind_again_if_removed). A bind under way (g_binding: a few system calls, the registry's
 * lock already taken) is waited for, at most a second, so that what it bound goes too. */
static void remove_socket(void) {
    atomic_store(&g_exiting, 1);
    for (int i = 0; i < 1000 && atomic_load(&g_binding); i++) {
        struct timespec nap = {0, 1000 * 1000};
        nanosleep(&nap, NULL);
    }
    if (g_running && g_pid == (uint32_t)getpid()) unlink_socket();
}

#ifdef WPT_TEST_POINTS
_Atomic uint32_t wpt_endpoint_teardowns;
#endif

/* g_ep_lock held: the endpoint's socket, wake pipe and JOIN connections closed. */
static void endpoint_teardown(void) {
#ifdef WPT_TEST_POINTS
    atomic_fetch_add(&wpt_endpoint_teardowns, 1);
#endif
    unlink_socket();
    if (g_listen >= 0) close(g_listen);
    if (g_wake[0] >= 0) close(g_wake[0]);
    if (g_wake[1] >= 0) close(g_wake[1]);
    g_listen = g_wake[0] = g_wake[1] = -1;
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++)
        if (g_joins[i] >= 0) {
            close(g_joins[i]);
            g_joins[i] = -1;
        }
    g_running = 0;
}

/* `registering`: for a RegisterTraceGuids, whose provider must be reachable once it returns.
 * `in_fork`: in the fork handler of a child, which runs no callback: the endpoint thread copies
 * the registry. */
static ULONG endpoint_ensure(int registering, int in_fork) {
    pthread_mutex_lock(&g_ep_lock);
    if (registering && g_running && g_pid == (uint32_t)getpid() && g_quit && !g_closing
        && (g_self_closing || g_starting)) {
        /* a close made in a callback returned at once, the undoing left to the endpoint thread
         * or the start: a registration after it withdraws it (the endpoint was undone under the
         * new provider, which no session of another process could reach) */
        g_quit = 0;
        g_self_closing = 0;
    }
    if (registering && g_closing && g_pid == (uint32_t)getpid() && !t_endpoint_thread && !wpt_in_callback()) {
        /* another thread's close joins the endpoint thread: once it is done a new endpoint
         * starts (in a callback it is not waited for: its caller may be what the thread waits for) */
        while (g_closing) pthread_cond_wait(&g_started, &g_ep_lock);
    }
    if (g_running && g_pid == (uint32_t)getpid()) {
        pthread_mutex_unlock(&g_ep_lock);
        return ERROR_SUCCESS;
    }
    static int once;
    ULONG rc = ERROR_SUCCESS;
    uint32_t pid = (uint32_t)getpid();
    rc = wpt_socket_path(g_path, sizeof g_path, 'p', pid);
    if (rc == ERROR_SUCCESS) {
        /* bound under the registry lock: a broadcast removes a gone process's socket under it
         * (without a registry, bound all the same) */
        ULONG locked;
        wpt_registry *reg = wpt_registry_lock(1, &locked);
        if ((g_listen = wpt_ipc_listen(g_path)) < 0) rc = ERROR_ACCESS_DENIED;
        else socket_in_place(1);
        g_bound_check_at = 0;
        g_missing_checks = 0;
        if (reg) wpt_registry_unlock();
    }
    if (rc == ERROR_SUCCESS && pipe2(g_wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        close(g_listen);
        g_listen = -1;
        rc = ERROR_OUTOFMEMORY;
    }
    uint64_t start_id = 0;
    if (rc == ERROR_SUCCESS) {
        for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) g_joins[i] = -1;
        for (int i = 0; i < MAX_REQUESTS; i++) g_requests[i].fd = -1;
        g_quit = 0;
        g_pid = pid;
        g_running = 1;
        g_starting = 1;
        start_id = ++g_start_id;
        t_starting = 1;
        if (!once) {
            once = 1;
            atexit(remove_socket);
        }
    }
    pthread_mutex_unlock(&g_ep_lock);
    if (rc != ERROR_SUCCESS) {
        g_path[0] = 0;
        return rc;
    }
    WPT_TEST_POINT(WPT_POINT_ENDPOINT_STARTING);
    /* after listening: no change is missed; a copy the registry was too busy for is made by
     * the endpoint thread later (set before it starts) */
    if (in_fork) {
        /* what the parent heard and the child did not (the parent's requests queued, enables
         * being applied in its other threads) is in the registry: checked whole, at once */
        g_reconcile_owed = 1;
        g_retry_count = 0;
        g_retry_at = wpt_mono_ms();
        g_retry_wait = 0;
    } else if (wpt_apply_registry_snapshot() == ERROR_BUSY) {
        g_reconcile_owed = 1;
        retry_backoff();
    }
    pthread_mutex_lock(&g_ep_lock);
    t_starting = 0;
    if (g_start_id != start_id) {
        /* a forked child (this thread forked in a callback) started an endpoint of its own */
        pthread_mutex_unlock(&g_ep_lock);
        return ERROR_SUCCESS;
    }
    /* the thread made under the lock: a close waits until it can be joined (the thread takes
     * the lock only later) */
    if (g_quit) {
        endpoint_teardown();                /* closed while the copy was made */
    } else if (wpt_thread_create(&g_thread, endpoint_main, NULL) != 0) {
        endpoint_teardown();
        rc = ERROR_OUTOFMEMORY;
    }
    g_starting = 0;
    pthread_cond_broadcast(&g_started);
    pthread_mutex_unlock(&g_ep_lock);
    return rc;
}

/* The caller's cancellation state for the application's code the library waits on, or -1. */
static __thread int t_callback_cancel = -1;

/* The state returned also carries what the application's code was given before (restored
 * with the state): a hold inside an entry point takes it back for its own part. */
int wpt_cancel_hold(void) {
    int state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
    int before = t_callback_cancel;
    t_callback_cancel = -1;
    return state | (before + 1) << 8;
}

void wpt_cancel_restore(int state) {
    t_callback_cancel = (state >> 8) - 1;
    pthread_setcancelstate(state & 0xFF, NULL);
}

void wpt_cancel_allow_callbacks(int held) { t_callback_cancel = held & 0xFF; }

int wpt_callback_cancel_state(void) { return t_callback_cancel; }

/* Cancellation is held off in the calls below that wait with a lock held or a state half
 * changed (in poll, recv, pthread_join, pthread_cond_wait: cancellation points): a thread
 * cancelled there left the lock held, and every fork() and later call waited for it forever.
 * The start's copy runs application callbacks: they run with cancellation held off too. */

/* Not cancelled midway (the copy's JOINs wait in poll and recv): a start left unfinished
 * held the copy lock, and every later close waited for it forever. */
static ULONG ensure_uncancelled(int registering, int in_fork) {
    int state = wpt_cancel_hold();
    ULONG rc = endpoint_ensure(registering, in_fork);
    wpt_cancel_restore(state);
    return rc;
}

ULONG wpt_endpoint_ensure(void) { return ensure_uncancelled(1, 0); }

int wpt_on_endpoint_thread(void) { return t_endpoint_thread; }

static void endpoint_close(void);

/* Not cancelled midway: cancelled in pthread_join it left a close marked as joining, and every
 * later close (Python's atexit among them) waited for it forever; in pthread_cond_wait it
 * returned holding the endpoint's lock, and every fork() waited for that. */
void wpptrace_endpoint_close(void) {
    int state = wpt_cancel_hold();
    endpoint_close();
    wpt_cancel_restore(state);
}

static void endpoint_close(void) {
    /* in a ControlCallback (its caller may hold the control lock, which a callback of the
     * start or of the endpoint thread may wait for): it never waits, the undoing is left to
     * the start or to the thread */
    int in_callback = wpt_in_callback();
    pthread_mutex_lock(&g_ep_lock);
    if (g_starting && g_pid == (uint32_t)getpid()) {
        if (t_starting || in_callback) {
            /* called in a callback (of the starting endpoint's own copy, or any while it
             * starts): the start undoes itself once the copy is made */
            g_quit = 1;
            pthread_mutex_unlock(&g_ep_lock);
            return;
        }
        WPT_TEST_POINT(WPT_POINT_ENDPOINT_CLOSE_WAITING);
        while (g_starting) pthread_cond_wait(&g_started, &g_ep_lock);
    }
    if (g_closing && g_pid == (uint32_t)getpid() && !t_endpoint_thread) {
        /* another thread's close joins the thread (a second join of it is undefined, and its
         * undoing came after a new endpoint's start): this one returns once it is done, or
         * at once in a callback */
        if (in_callback) {
            pthread_mutex_unlock(&g_ep_lock);
            return;
        }
        WPT_TEST_POINT(WPT_POINT_ENDPOINT_CLOSE_WAITING);
        while (g_closing) pthread_cond_wait(&g_started, &g_ep_lock);
        pthread_mutex_unlock(&g_ep_lock);
        return;
    }
    if (!g_running || g_pid != (uint32_t)getpid()) {
        pthread_mutex_unlock(&g_ep_lock);
        return;
    }
    g_quit = 1;
    if (t_endpoint_thread || in_callback) {
        /* in a callback the endpoint thread runs (a JOIN it makes meanwhile is still
         * watched, then closed with the rest), or in any callback: the thread undoes the
         * endpoint as it ends, unless a close in another thread is joining it already */
        if (!g_closing) g_self_closing = 1;
        if (!t_endpoint_thread) wake_thread();
        pthread_mutex_unlock(&g_ep_lock);
        return;
    }
    g_self_closing = 0;                     /* joined here, undone here */
    g_closing = 1;
    wake_thread();
    pthread_mutex_unlock(&g_ep_lock);
    WPT_TEST_POINT(WPT_POINT_ENDPOINT_JOINING);
    pthread_join(g_thread, NULL);
    pthread_mutex_lock(&g_ep_lock);
    endpoint_teardown();
    g_closing = 0;
    pthread_cond_broadcast(&g_started);
    pthread_mutex_unlock(&g_ep_lock);
}

static ULONG attach(uint32_t slot, uint32_t generation, uint32_t incarnation);

/* Sessions whose memory was refused (wpt_view_map: ERROR_BAD_FORMAT), and per slot the
 * generation + 1 of the last one (g_attach_lock held), so a JOIN made again counts none. */
static _Atomic uint32_t g_views_refused;
static uint32_t g_refused_gen[WPPTRACE_MAX_SESSIONS];
#ifdef WPT_TEST_POINTS
int wpt_test_refuse_views;
#endif

ULONG wpptrace_views_refused(void) { return atomic_load(&g_views_refused); }

/* Not cancelled midway: the JOIN waits in poll and recv with the attach lock held, which a
 * cancelled thread kept, and every fork() and later attach waited for it forever. */
ULONG wpt_attach(uint32_t slot, uint32_t generation, uint32_t incarnation) {
    int state = wpt_cancel_hold();
    ULONG rc = attach(slot, generation, incarnation);
    wpt_cancel_restore(state);
    return rc;
}

static ULONG attach(uint32_t slot, uint32_t generation, uint32_t incarnation) {
    WPT_TEST_POINT(WPT_POINT_ATTACHING);
    if (slot >= WPPTRACE_MAX_SESSIONS) return ERROR_INVALID_HANDLE;
    wpt_view *mapped = atomic_load(&wpt_views[slot]);
    if (mapped && mapped->registry_generation == generation
        && atomic_load(&mapped->sh->status) == WPT_RUNNING)
        return ERROR_SUCCESS;            /* joined already (checked again under the lock) */
    /* Someone must watch the host. Started before the attach lock: a new endpoint copies the
     * registry, whose enables attach to their sessions in turn (under the lock, that attach
     * waited for this one forever). */
    ULONG rc = endpoint_ensure(0, 0);
    pthread_mutex_lock(&g_attach_lock);
    wpt_view *v = atomic_load(&wpt_views[slot]);
    if (v && v->registry_generation == generation && atomic_load(&v->sh->status) == WPT_RUNNING) {
        pthread_mutex_unlock(&g_attach_lock);
        return ERROR_SUCCESS;
    }
    WPT_TEST_POINT(WPT_POINT_JOIN_CHOSEN);
    int fd = -1, memfd = -1;
    wpt_wire_join j;
    if (rc == ERROR_SUCCESS) rc = join(slot, generation, incarnation, &fd, &memfd, &j);
    wpt_view *nv = NULL;
    if (rc == ERROR_SUCCESS) {
#ifdef WPT_TEST_POINTS
        if (wpt_test_refuse_views) rc = ERROR_BAD_FORMAT;     /* as for memory not sealed */
        else
#endif
        rc = wpt_view_map(memfd, j.map_size, (uint16_t)j.logger_id, generation, &nv);
        if (rc == ERROR_BAD_FORMAT && g_refused_gen[slot] != generation + 1) {
            g_refused_gen[slot] = generation + 1;      /* counted once a session */
            atomic_fetch_add(&g_views_refused, 1);
        }
    }
    if (rc != ERROR_SUCCESS) {
        if (memfd >= 0) close(memfd);
        if (fd >= 0) close(fd);
        pthread_mutex_unlock(&g_attach_lock);
        return rc;
    }
    wpt_view_publish(nv);
    pthread_mutex_lock(&g_ep_lock);
    if (g_running && g_pid == (uint32_t)getpid()) {
        if (g_joins[slot] >= 0) close(g_joins[slot]);
        g_joins[slot] = fd;
        g_join_gen[slot] = generation;
        g_join_incarnation[slot] = incarnation;
    } else {
        /* the endpoint was closed meanwhile: nobody watches the connection (kept, a new endpoint
         * would forget it open, and a child would keep it) */
        close(fd);
    }
    wake_thread();
    pthread_mutex_unlock(&g_ep_lock);
    pthread_mutex_unlock(&g_attach_lock);
    return ERROR_SUCCESS;
}

/* ---- telling the other processes ---------------------------------------------------------- */

#define BROADCAST_BATCH 128

/* The socket of a provider process that is gone. A new process may have its pid by now and
 * bind its own socket at the path: the path is removed under the registry lock, under which
 * every endpoint binds, and only while nothing listens there. */
static void remove_stale(const char *path) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return;                   /* left: a new endpoint replaces it when it binds */
    int fd = wpt_ipc_connect(path, 0, &rc);
    if (fd >= 0) close(fd);
    else if (rc == ERROR_WMI_INSTANCE_NOT_FOUND) unlink(path);
    wpt_registry_unlock();
}

/* The answers of a batch, each awaited until WPT_BROADCAST_WAIT_MS after its request went. */
static ULONG finish_batch(int *fds, const int64_t *sent_at, int n) {
    ULONG failed = ERROR_SUCCESS;
    for (int i = 0; i < n; i++) {
        wpt_frame f;
        void *payload = NULL;
        int left = (int)(sent_at[i] + WPT_BROADCAST_WAIT_MS - wpt_mono_ms());
        if (left < 1) left = 1;
        if (wpt_ipc_recv(fds[i], &f, &payload, WPT_WIRE_MAX_CONTROL, NULL, left) == 0) {
            free(payload);
            if (f.kind == WPT_REPLY && f.status != ERROR_SUCCESS && failed == ERROR_SUCCESS) failed = f.status;
        }
        close(fds[i]);
    }
    return failed;
}

ULONG wpt_broadcast(uint32_t kind, uint32_t meant_for, const wpt_wire_enable *msg) {
    const char *dir;
    ULONG failed = ERROR_SUCCESS, batch;
    /* The change is in the registry already: it took effect whatever happens here. Processes
     * that cannot be told now apply it when they next read the registry. */
    if (wpt_runtime_dir(&dir) != ERROR_SUCCESS) return ERROR_SUCCESS;
    DIR *d = opendir(dir);
    if (!d) return ERROR_SUCCESS;
    uint32_t self = (uint32_t)getpid();
    int fds[BROADCAST_BATCH];
    int64_t sent_at[BROADCAST_BATCH];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned pid;
        char tail;
        if (sscanf(e->d_name, "p-%u.soc%c", &pid, &tail) != 2 || tail != 'k') continue;
        if (pid == self || pid == msg->from_pid) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ULONG rc;
        int fd = wpt_ipc_connect(path, 500, &rc);
        if (fd < 0) {
            if (rc == ERROR_WMI_INSTANCE_NOT_FOUND) WPT_TEST_POINT(WPT_POINT_PEER_UNANSWERED);
            /* kept while /proc cannot tell (no descriptor left): it may be a live process's */
            if (rc == ERROR_WMI_INSTANCE_NOT_FOUND && wpt_process_gone(pid)) {
                WPT_TEST_POINT(WPT_POINT_PEER_REFUSED);
                remove_stale(path);
            }
            continue;
        }
        if (wpt_ipc_send(fd, kind, meant_for, msg, sizeof *msg, -1, 1000) != 0) {
            close(fd);
            continue;
        }
        fds[n] = fd;
        sent_at[n] = wpt_mono_ms();
        if (++n == BROADCAST_BATCH) {
            batch = finish_batch(fds, sent_at, n);
            if (failed == ERROR_SUCCESS) failed = batch;
            n = 0;
        }
    }
    closedir(d);
    batch = finish_batch(fds, sent_at, n);
    return failed == ERROR_SUCCESS ? batch : failed;
}

/* ---- fork --------------------------------------------------------------------------------- */

void wpt_providers_fork_prepare(void);
void wpt_providers_fork_parent(void);

static void fork_prepare(void) {
    pthread_mutex_lock(&g_attach_lock);
    pthread_mutex_lock(&g_ep_lock);
    wpt_providers_fork_prepare();
    wpt_views_fork_prepare();
    wpt_registry_fork_prepare();
}

static void fork_parent(void) {
    wpt_registry_fork_parent();
    wpt_views_fork_parent();
    wpt_providers_fork_parent();
    pthread_mutex_unlock(&g_ep_lock);
    pthread_mutex_unlock(&g_attach_lock);
}

/* The child: fresh locks; the parent's endpoint socket and JOIN connections stay the
 * parent's (the child only closes its copies) and a new endpoint starts for the child, which
 * joins again the sessions it has mapped so that it hears when their host goes away. */
static void fork_child(void) {
    wpt_tls_tid = 0;
    wpt_cached_pid = 0;
    t_endpoint_thread = 0;                 /* the child's endpoint thread is a new one */
    wpt_views_after_fork();
    pthread_mutex_init(&g_attach_lock, NULL);
    pthread_mutex_init(&g_ep_lock, NULL);
    pthread_cond_init(&g_started, NULL);
    g_starting = 0;                        /* a start of the parent's is not the child's */
    atomic_store(&g_exiting, 0);           /* the child's own exit removes its socket */
    atomic_store(&g_binding, 0);           /* a bind of the parent's thread is not the child's */
    g_self_closing = g_closing = 0;
    g_start_id++;
    atomic_store(&wpt_callbacks_held, 0);  /* a parent's hold was its own */
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&wpt_control_lock, &a);
    pthread_mutexattr_destroy(&a);
    wpt_registry_after_fork();
    wpt_providers_after_fork();
    wpt_core_threads_after_fork();
    /* the parent's refusals are the parent's to report; the sessions it counted stay counted
     * (each refusal is said once, by the process that first made it) */
    atomic_store(&g_views_refused, 0);
    wpt_hosts_after_fork();
    int was_running = g_running;
    int had[WPPTRACE_MAX_SESSIONS] = {0};
    /* A process whose endpoint never ran has no connection to close (and its child touches
     * none of this state) */
    for (int i = 0; was_running && i < WPPTRACE_MAX_SESSIONS; i++) {
        had[i] = g_joins[i] >= 0;
        if (g_joins[i] >= 0) close(g_joins[i]);
        g_joins[i] = -1;
    }
    for (int i = 0; was_running && i < MAX_REQUESTS; i++) {
        if (g_requests[i].fd >= 0) close(g_requests[i].fd);   /* the parent's */
        g_requests[i].fd = -1;
    }
    if (g_listen >= 0) close(g_listen);
    if (g_rebinding >= 0) close(g_rebinding);     /* the parent's, being bound again */
    if (g_wake[0] >= 0) close(g_wake[0]);
    if (g_wake[1] >= 0) close(g_wake[1]);
    g_listen = g_rebinding = g_wake[0] = g_wake[1] = -1;
    g_running = 0;
    g_path[0] = 0;
    wpt_sessions_after_fork();
    if (wpt_forking_host || !was_running) return;   /* a session host needs none of this */
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        g_rejoin[i] = (uint8_t)had[i];
        g_rejoin_at[i] = g_rejoin_wait[i] = 0;
    }
    atomic_store(&wpt_callbacks_held, atomic_load(&g_hold_after_fork));
    ensure_uncancelled(0, 1);
}



__attribute__((constructor)) static void install_fork_handlers(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}
