/* etw_realtime.c: real-time delivery of a REAL_TIME_MODE session's buffers.
 *
 * In the process that runs the session, a hub copies every flushed buffer into each
 * consumer's bounded queue (MaximumBuffers buffers); a full queue drops the buffer for that
 * consumer and counts it in RealTimeBuffersLost. Buffers flushed while no consumer is
 * connected wait in a backlog (same bound) for the next one: a consumer receives the header
 * buffer, then the backlog, then live buffers. A consumer in another process connects to the
 * host (SUBSCRIBE); a host thread streams its queue over the socket, so a slow consumer
 * only ever fills its own queue, never the writers' buffers. At STOP the queues drain (up to
 * a few seconds for consumers that do not read), then consumers see the end.
 * The buffers of one flush (a FLUSH, the timer, STOP) reach each queue together, and the
 * host sends them marked as one batch, which a remote reader takes whole: a consumer sees
 * them together and merges their processors' records by time.
 * A subscription is local (a session of this process) or remote (a socket); the public
 * wpptrace_rt_* functions work on both. A remote consumer that must know it has everything
 * flushed so far (CloseTrace during ProcessTrace) asks the host for a sync marker, which
 * the host's sender puts behind the buffers already queued for it.
 * The end of a stream says what the consumer cannot see for itself: the last SequenceNumber
 * the session flushed and how many buffers its queue dropped (a remote consumer gets both in
 * the END frame), so buffers dropped after the last one it received are counted too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

typedef struct rt_item {
    struct rt_item *next;
    uint32_t size;
    unsigned char data[];
} rt_item;

struct wpptrace_rt_subscription {
    int remote;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    /* local */
    rt_item *head, *tail;
    uint32_t count, limit;
    rt_item *batch_head, *batch_tail;   /* delivered in the current flush, not visible yet */
    uint32_t batch_count;
    int ended;                 /* the session stopped (local) / END or EOF seen (remote) */
    uint64_t dropped;          /* buffers not queued because the queue was full (local) */
    wpptrace_rt_final_info final;   /* set with ended, when the end said so */
    int final_known;
    int closed;
    int refs;                  /* the hub's and the consumer's */
    wpt_rt_hub *hub;           /* NULL once unlinked (g_rt_lock) */
    struct wpptrace_rt_subscription *next;
    /* remote (head/tail/count also hold what wpptrace_rt_sync read ahead) */
    int fd;
    uint32_t buffer_size;
    wpt_frame frame;
    uint32_t head_have, body_have;
    int frame_ready;
    int sync_seen;
    unsigned char *body;
};

#define MAX_SERVED 64

typedef struct {
    int fd;                    /* -1: slot free */
    pthread_t thread;
    _Atomic int finished;
    _Atomic uint64_t sent;     /* frames sent: progress */
} served_slot;

struct wpt_rt_hub {
    wpptrace_rt_subscription *subs;
    rt_item *backlog_head, *backlog_tail;
    uint32_t backlog_count, limit, consumers;
    pthread_mutex_t serve_lock;
    served_slot served[MAX_SERVED];
};

/* One lock for every hub's list: subscribe, deliver, close and end never race on a link. */
static pthread_mutex_t g_rt_lock = PTHREAD_MUTEX_INITIALIZER;

ULONG wpt_rt_open(wpt_session *s) {
    wpt_rt_hub *hub = calloc(1, sizeof *hub);
    if (!hub) return ERROR_OUTOFMEMORY;
    hub->limit = s->max_buffers ? s->max_buffers : 1;
    pthread_mutex_init(&hub->serve_lock, NULL);
    for (int i = 0; i < MAX_SERVED; i++) hub->served[i].fd = -1;
    s->realtime = hub;
    return ERROR_SUCCESS;
}

static rt_item *copy_item(const unsigned char *buffer, uint32_t size) {
    rt_item *it = malloc(sizeof *it + size);
    if (!it) return NULL;
    it->next = NULL;
    it->size = size;
    memcpy(it->data, buffer, size);
    return it;
}

static void free_items(rt_item *it) {
    while (it) {
        rt_item *next = it->next;
        free(it);
        it = next;
    }
}

static void unref(wpptrace_rt_subscription *sub) {
    pthread_mutex_lock(&sub->lock);
    int left = --sub->refs;
    pthread_mutex_unlock(&sub->lock);
    if (left == 0) {
        free_items(sub->head);
        free_items(sub->batch_head);
        pthread_mutex_destroy(&sub->lock);
        pthread_cond_destroy(&sub->cond);
        free(sub);
    }
}

/* Add an item to the current flush's batch; returns 0 if the queue was full (or closed). */
static int push(wpptrace_rt_subscription *sub, rt_item *it) {
    int ok = 0;
    pthread_mutex_lock(&sub->lock);
    if (!sub->closed && sub->count + sub->batch_count < sub->limit) {
        if (sub->batch_tail) sub->batch_tail->next = it;
        else sub->batch_head = it;
        sub->batch_tail = it;
        sub->batch_count++;
        ok = 1;
    } else if (!sub->closed) {
        sub->dropped++;
    }
    pthread_mutex_unlock(&sub->lock);
    return ok;
}

/* The batch becomes visible to the consumer at once (sub->lock held). */
static void publish_batch(wpptrace_rt_subscription *sub) {
    if (!sub->batch_head) return;
    if (sub->tail) sub->tail->next = sub->batch_head;
    else sub->head = sub->batch_head;
    sub->tail = sub->batch_tail;
    sub->count += sub->batch_count;
    sub->batch_head = sub->batch_tail = NULL;
    sub->batch_count = 0;
    pthread_cond_signal(&sub->cond);
}

void wpt_rt_batch_end(wpt_session *s) {
    wpt_rt_hub *hub = s->realtime;
    if (!hub) return;
    pthread_mutex_lock(&g_rt_lock);
    for (wpptrace_rt_subscription *sub = hub->subs; sub; sub = sub->next) {
        pthread_mutex_lock(&sub->lock);
        publish_batch(sub);
        pthread_mutex_unlock(&sub->lock);
    }
    pthread_mutex_unlock(&g_rt_lock);
}

uint32_t wpt_rt_deliver(wpt_session *s, const unsigned char *buffer, uint32_t size) {
    wpt_rt_hub *hub = s->realtime;
    uint32_t dropped = 0;
    pthread_mutex_lock(&g_rt_lock);
    if (!hub->subs) {
        rt_item *it = hub->backlog_count < hub->limit ? copy_item(buffer, size) : NULL;
        if (it) {
            if (hub->backlog_tail) hub->backlog_tail->next = it;
            else hub->backlog_head = it;
            hub->backlog_tail = it;
            hub->backlog_count++;
        } else {
            dropped = 1;
        }
    }
    for (wpptrace_rt_subscription *sub = hub->subs; sub; sub = sub->next) {
        rt_item *it = copy_item(buffer, size);
        if (!it || !push(sub, it)) {
            free(it);
            dropped++;
        }
    }
    pthread_mutex_unlock(&g_rt_lock);
    return dropped;
}

uint32_t wpt_rt_consumers(wpt_session *s) {
    pthread_mutex_lock(&g_rt_lock);
    uint32_t n = s->realtime ? s->realtime->consumers : 0;
    pthread_mutex_unlock(&g_rt_lock);
    return n;
}

static wpptrace_rt_subscription *new_subscription(int remote) {
    wpptrace_rt_subscription *sub = calloc(1, sizeof *sub);
    if (!sub) return NULL;
    pthread_mutex_init(&sub->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sub->cond, &ca);
    pthread_condattr_destroy(&ca);
    sub->remote = remote;
    sub->fd = -1;
    return sub;
}

ULONG wpt_rt_subscribe_local(wpt_session *s, wpptrace_rt_subscription **out) {
    if (!s->realtime) return ERROR_WMI_INSTANCE_NOT_FOUND;
    wpptrace_rt_subscription *sub = new_subscription(0);
    unsigned char *header = malloc(s->buffer_size);
    rt_item *first = header ? malloc(sizeof *first + s->buffer_size) : NULL;
    if (!sub || !first || wpt_injected_failure()) {
        free(sub);
        free(header);
        free(first);
        return ERROR_OUTOFMEMORY;
    }
    sub->limit = s->max_buffers ? s->max_buffers : 1;
    sub->refs = 2;
    memset(header, 0xFF, s->buffer_size);
    wpt_build_header_buffer(s, header, 0, atomic_load(&s->buffers_written));
    first->next = NULL;
    first->size = s->buffer_size;
    memcpy(first->data, header, s->buffer_size);
    free(header);
    pthread_mutex_lock(&g_rt_lock);
    wpt_rt_hub *hub = s->realtime;
    /* the header first, then the buffers no consumer has seen, then live ones */
    sub->head = sub->tail = first;
    sub->count = 1;
    if (hub->backlog_head) {
        sub->tail->next = hub->backlog_head;
        sub->tail = hub->backlog_tail;
        sub->count += hub->backlog_count;
        hub->backlog_head = hub->backlog_tail = NULL;
        hub->backlog_count = 0;
    }
    sub->hub = hub;
    sub->next = hub->subs;
    hub->subs = sub;
    hub->consumers++;
    pthread_mutex_unlock(&g_rt_lock);
    *out = sub;
    return ERROR_SUCCESS;
}

/* ---- local queues ---------------------------------------------------------------------- */

/* The queue's first buffer into out (sub->lock held): ERROR_MORE_DATA if it does not fit (it
 * stays queued), ERROR_HANDLE_EOF at the end, WAIT_TIMEOUT if nothing is queued yet. */
static ULONG take_head(wpptrace_rt_subscription *sub, void *out, ULONG out_size, ULONG *filled) {
    rt_item *it = sub->head;
    if (!it) {
        if (filled) *filled = 0;
        return sub->ended || sub->closed ? ERROR_HANDLE_EOF : WAIT_TIMEOUT;
    }
    if (filled) *filled = it->size;
    if (it->size > out_size) return ERROR_MORE_DATA;
    memcpy(out, it->data, it->size);
    sub->head = it->next;
    if (!sub->head) sub->tail = NULL;
    sub->count--;
    free(it);
    return ERROR_SUCCESS;
}

static ULONG local_next(wpptrace_rt_subscription *sub, int timeout_ms, void *out, ULONG out_size,
                        ULONG *filled, int *more) {
    struct timespec deadline;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    }
    pthread_mutex_lock(&sub->lock);
    while (!sub->head && !sub->ended && !sub->closed) {
        if (timeout_ms < 0) pthread_cond_wait(&sub->cond, &sub->lock);
        else if (pthread_cond_timedwait(&sub->cond, &sub->lock, &deadline) == ETIMEDOUT) break;
    }
    ULONG rc = take_head(sub, out, out_size, filled);
    if (more) *more = sub->head != NULL;
    pthread_mutex_unlock(&sub->lock);
    return rc;
}

static void unlink_sub(wpptrace_rt_subscription *sub) {
    pthread_mutex_lock(&g_rt_lock);
    wpt_rt_hub *hub = sub->hub;
    int was_linked = 0;
    if (hub) {
        for (wpptrace_rt_subscription **link = &hub->subs; *link; link = &(*link)->next) {
            if (*link == sub) {
                *link = sub->next;
                was_linked = 1;
                break;
            }
        }
        hub->consumers--;
        sub->hub = NULL;
    }
    pthread_mutex_unlock(&g_rt_lock);
    if (was_linked) unref(sub);            /* the hub's reference */
}

/* ---- serving a remote consumer (in the session's process) ------------------------------- */

typedef struct {
    wpt_session *session;
    served_slot *slot;
    wpptrace_rt_subscription *sub;
    int fd;
} served;

static void *serve_main(void *arg) {
    served *a = arg;
    uint32_t size = a->session->buffer_size;
    unsigned char *buf = malloc(size);
    int fd = a->fd;
    if (buf && wpt_ipc_send(fd, WPT_REPLY, ERROR_SUCCESS, &size, sizeof size, -1, 5000) == 0) {
        for (;;) {
            ULONG filled = 0;
            int more = 0;
            ULONG rc = local_next(a->sub, 250, buf, size, &filled, &more);
            if (rc == ERROR_SUCCESS) {
                /* status 1: more of the same batch follows at once */
                if (wpt_ipc_send(fd, WPT_RT_BUFFER, (uint32_t)more, buf, filled, -1, -1) != 0) break;
                atomic_fetch_add(&a->slot->sent, 1);
            } else if (rc == ERROR_HANDLE_EOF) {
                wpptrace_rt_final_info fin = {0, 0};
                pthread_mutex_lock(&a->sub->lock);
                int known = a->sub->final_known;
                if (known) fin = a->sub->final;
                pthread_mutex_unlock(&a->sub->lock);
                wpt_ipc_send(fd, WPT_RT_END, 0, &fin, known ? sizeof fin : 0, -1, 2000);
                break;
            }
            /* after SUBSCRIBE a consumer only sends SYNC; anything else (EOF) means it left */
            struct pollfd p = {fd, POLLIN, 0};
            if (poll(&p, 1, 0) <= 0) continue;
            wpt_frame f;
            void *none = NULL;
            if (wpt_ipc_recv(fd, &f, &none, 0, NULL, 1000) != 0 || f.kind != WPT_RT_SYNC) break;
            int ok = 1;
            while (ok && local_next(a->sub, 0, buf, size, &filled, &more) == ERROR_SUCCESS)
                ok = wpt_ipc_send(fd, WPT_RT_BUFFER, (uint32_t)more, buf, filled, -1, -1) == 0;
            if (!ok || wpt_ipc_send(fd, WPT_RT_SYNC, 0, NULL, 0, -1, -1) != 0) break;
        }
    }
    free(buf);
    wpptrace_rt_close(a->sub);
    atomic_store(&a->slot->finished, 1);
    free(a);
    return NULL;
}

/* Join the threads of consumers that are done (serve_lock held). */
static void reap_served(wpt_rt_hub *hub) {
    for (int i = 0; i < MAX_SERVED; i++) {
        served_slot *x = &hub->served[i];
        if (x->fd >= 0 && atomic_load(&x->finished)) {
            pthread_join(x->thread, NULL);
            close(x->fd);
            x->fd = -1;
        }
    }
}

ULONG wpt_rt_serve(wpt_session *s, int fd) {
    wpt_rt_hub *hub = s->realtime;
    served *a = calloc(1, sizeof *a);
    if (!a) return ERROR_OUTOFMEMORY;
    pthread_mutex_lock(&hub->serve_lock);
    reap_served(hub);
    served_slot *slot = NULL;
    for (int i = 0; i < MAX_SERVED && !slot; i++)
        if (hub->served[i].fd < 0) slot = &hub->served[i];
    ULONG rc = slot ? wpt_rt_subscribe_local(s, &a->sub) : ERROR_BUSY;
    if (rc == ERROR_SUCCESS) {
        /* what a slow consumer does not take waits in its queue (MaximumBuffers, counted when
         * full), not in a large socket buffer */
        int sndbuf = (int)s->buffer_size;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
        a->session = s;
        a->slot = slot;
        a->fd = fd;
        atomic_store(&slot->finished, 0);
        if (wpt_thread_create(&slot->thread, serve_main, a) != 0) {
            wpptrace_rt_close(a->sub);
            rc = ERROR_OUTOFMEMORY;
        } else {
            slot->fd = fd;
        }
    }
    pthread_mutex_unlock(&hub->serve_lock);
    if (rc != ERROR_SUCCESS) free(a);
    return rc;
}

void wpt_rt_end(wpt_session *s) {
    wpt_rt_hub *hub = s->realtime;
    uint64_t last = s->buffer_sequence > 0 ? (uint64_t)s->buffer_sequence : 0;
    pthread_mutex_lock(&g_rt_lock);
    wpptrace_rt_subscription *sub = hub->subs;
    hub->subs = NULL;
    hub->consumers = 0;
    for (wpptrace_rt_subscription *x = sub; x; x = x->next) x->hub = NULL;
    free_items(hub->backlog_head);
    hub->backlog_head = hub->backlog_tail = NULL;
    pthread_mutex_unlock(&g_rt_lock);
    while (sub) {
        wpptrace_rt_subscription *next = sub->next;
        pthread_mutex_lock(&sub->lock);
        publish_batch(sub);
        sub->ended = 1;
        sub->final.LastSequence = last;
        sub->final.Dropped = sub->dropped;
        sub->final_known = 1;
        pthread_cond_broadcast(&sub->cond);
        pthread_mutex_unlock(&sub->lock);
        unref(sub);
        sub = next;
    }
}

/* Serving threads still running, and frames they sent so far (serve_lock held). */
static int serving(wpt_rt_hub *hub, uint64_t *sent) {
    int busy = 0;
    *sent = 0;
    for (int i = 0; i < MAX_SERVED; i++) {
        served_slot *x = &hub->served[i];
        if (x->fd < 0) continue;
        *sent += atomic_load(&x->sent);
        busy += !atomic_load(&x->finished);
    }
    return busy;
}

void wpt_rt_settle(wpt_session *s, int max_ms) {
    wpt_rt_hub *hub = s->realtime;
    if (!hub) return;
    int64_t deadline = wpt_mono_ms() + max_ms, last_progress = wpt_mono_ms();
    uint64_t before = 0, now_sent;
    pthread_mutex_lock(&hub->serve_lock);
    while (serving(hub, &now_sent) && wpt_mono_ms() < deadline) {
        if (now_sent != before) {
            before = now_sent;
            last_progress = wpt_mono_ms();
        } else if (wpt_mono_ms() - last_progress > 200) {
            break;                      /* the rest waits for consumers that are not reading */
        }
        pthread_mutex_unlock(&hub->serve_lock);
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&hub->serve_lock);
    }
    pthread_mutex_unlock(&hub->serve_lock);
}

void wpt_rt_close_hub(wpt_session *s, int max_ms) {
    wpt_rt_hub *hub = s->realtime;
    if (!hub) return;
    int64_t deadline = wpt_mono_ms() + max_ms;
    uint64_t sent;
    pthread_mutex_lock(&hub->serve_lock);
    for (int cut = 0; serving(hub, &sent);) {
        if (!cut && wpt_mono_ms() >= deadline) {
            for (int i = 0; i < MAX_SERVED; i++)
                if (hub->served[i].fd >= 0) shutdown(hub->served[i].fd, SHUT_RDWR);
            cut = 1;
        }
        pthread_mutex_unlock(&hub->serve_lock);
        struct timespec nap = {0, 5 * 1000 * 1000};
        nanosleep(&nap, NULL);
        pthread_mutex_lock(&hub->serve_lock);
    }
    reap_served(hub);
    pthread_mutex_unlock(&hub->serve_lock);
    pthread_mutex_destroy(&hub->serve_lock);
    free(hub);
    s->realtime = NULL;
}

/* ---- the public subscription API --------------------------------------------------------- */

static ULONG subscribe(LPCSTR name, wpptrace_rt_subscription **out, ULONG *buffer_size);

/* Not cancelled midway, as the control calls (see wpt_cancel_hold): it takes the control and
 * registry locks and waits for the host's answer with a connection open. */
ULONG wpptrace_rt_subscribe(LPCSTR name, wpptrace_rt_subscription **out, ULONG *buffer_size) {
    wpt_lookup looking = wpt_lookup_begin();
    ULONG rc = subscribe(name, out, buffer_size);
    wpt_lookup_end(looking);
    return rc;
}

static ULONG subscribe(LPCSTR name, wpptrace_rt_subscription **out, ULONG *buffer_size) {
    if (!name || !out) return ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&wpt_control_lock);
    wpt_session *local = wpt_local_session_by_name(name);
    if (local) {
        ULONG rc = atomic_load(&local->status) == WPT_RUNNING
                 ? wpt_rt_subscribe_local(local, out) : ERROR_WMI_INSTANCE_NOT_FOUND;
        if (rc == ERROR_SUCCESS && buffer_size) *buffer_size = local->buffer_size;
        pthread_mutex_unlock(&wpt_control_lock);
        return rc;
    }
    pthread_mutex_unlock(&wpt_control_lock);
    uint32_t slot, generation, incarnation;
    ULONG rc = wpt_registry_find_in(name, &slot, &generation, &incarnation);
    if (rc != ERROR_SUCCESS) return rc;
    WPT_TEST_POINT(WPT_POINT_TARGET_FOUND);
    /* The slot may be a newer session's by now: its host refuses another generation. A failure
     * is reported as for a control request: a host alive but slow to answer is busy, not gone.
     * With the incarnation of the registry it was found in, to a host that checks it: a clean-up
     * may have made the registry again meanwhile, and the slot's session there be another. */
    wpt_frame f;
    uint32_t size = 0;
    void *payload = &size;
    int fd;
    rc = wpt_host_open_in(incarnation, slot, wpt_for_session(generation), WPT_REQ_SUBSCRIBE, &f, &payload,
                          sizeof size, NULL, WPT_HOST_REPLY_MS, &fd);
    if (rc != ERROR_SUCCESS) return rc;
    if (f.status != ERROR_SUCCESS || f.length != sizeof size || size < 1024
        || size > (uint32_t)MAX_ETW_BUFFER_SIZE_KB * 1024) {
        close(fd);
        return f.status ? f.status : ERROR_BAD_FORMAT;
    }
    wpptrace_rt_subscription *sub = new_subscription(1);
    unsigned char *body = sub ? malloc(size) : NULL;
    if (!sub || !body) {
        free(sub);
        close(fd);
        return ERROR_OUTOFMEMORY;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    sub->fd = fd;
    sub->buffer_size = size;
    sub->body = body;
    sub->refs = 1;
    if (buffer_size) *buffer_size = size;
    *out = sub;
    return ERROR_SUCCESS;
}

/* Read toward the next frame for up to timeout_ms; 1 when a buffer frame is complete,
 * 2 at a sync marker, 0 on timeout, -1 when the stream ended (END, EOF or a malformed frame). */
static int remote_pump(wpptrace_rt_subscription *sub, int timeout_ms) {
    int64_t deadline = timeout_ms < 0 ? -1 : wpt_mono_ms() + timeout_ms;
    for (;;) {
        if (sub->ended) return -1;
        if (sub->frame_ready) return 1;
        unsigned char *dst;
        size_t want;
        if (sub->head_have < sizeof sub->frame) {
            dst = (unsigned char *)&sub->frame + sub->head_have;
            want = sizeof sub->frame - sub->head_have;
        } else {
            dst = sub->body + sub->body_have;
            want = sub->frame.length - sub->body_have;
        }
        ssize_t n = want ? recv(sub->fd, dst, want, MSG_DONTWAIT) : 0;
        if (n > 0 || want == 0) {
            if (sub->head_have < sizeof sub->frame) {
                sub->head_have += (uint32_t)n;
                if (sub->head_have == sizeof sub->frame) {
                    wpt_frame *f = &sub->frame;
                    if (f->magic != WPT_WIRE_MAGIC
                        || (f->kind != WPT_RT_BUFFER && f->kind != WPT_RT_END && f->kind != WPT_RT_SYNC)
                        || (f->kind == WPT_RT_SYNC && f->length)
                        || (f->kind == WPT_RT_END && f->length
                            && f->length != sizeof(wpptrace_rt_final_info))
                        || f->length > sub->buffer_size) {
                        sub->ended = 1;          /* not a stream we understand: stop here */
                        return -1;
                    }
                    if (f->kind == WPT_RT_END && !f->length) {
                        sub->ended = 1;         /* an end that does not say more */
                        return -1;
                    }
                    if (f->kind == WPT_RT_SYNC) {
                        sub->sync_seen = 1;
                        sub->head_have = 0;
                        return 2;
                    }
                }
            } else {
                sub->body_have += (uint32_t)n;
            }
            if (sub->head_have == sizeof sub->frame && sub->body_have == sub->frame.length) {
                if (sub->frame.kind == WPT_RT_END) {
                    memcpy(&sub->final, sub->body, sizeof sub->final);
                    sub->final_known = 1;
                    sub->ended = 1;
                    return -1;
                }
                sub->frame_ready = 1;
                return 1;
            }
            continue;
        }
        if (n == 0) {
            sub->ended = 1;                      /* the host is gone */
            return -1;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            sub->ended = 1;
            return -1;
        }
        int wait = -1;
        if (deadline >= 0) {
            int64_t left = deadline - wpt_mono_ms();
            if (left <= 0) return 0;
            wait = (int)left;
        }
        struct pollfd p = {sub->fd, POLLIN, 0};
        if (poll(&p, 1, wait) == 0) return 0;
    }
}

/* Move the complete frame into the read-ahead queue (sub->lock held); 0 if out of memory. */
static int keep_frame(wpptrace_rt_subscription *sub) {
    rt_item *it = copy_item(sub->body, sub->frame.length);
    if (!it) return 0;
    if (sub->tail) sub->tail->next = it;
    else sub->head = it;
    sub->tail = it;
    sub->count++;
    sub->frame_ready = 0;
    sub->head_have = sub->body_have = 0;
    return 1;
}

ULONG wpptrace_rt_next(wpptrace_rt_subscription *sub, int timeout_ms, void *out, ULONG out_size,
                       ULONG *filled) {
    if (!sub) return ERROR_INVALID_PARAMETER;
    if (!sub->remote) return local_next(sub, timeout_ms, out, out_size, filled, NULL);
    pthread_mutex_lock(&sub->lock);
    if (!sub->head && !sub->closed) {
        int got;
        do got = remote_pump(sub, timeout_ms);
        while (got == 2);                /* a marker a timed-out sync asked for */
        /* a batch is taken whole: the rest follows at once */
        while (got == 1 && keep_frame(sub) && sub->frame.status == 1) {
            do got = remote_pump(sub, 2000);
            while (got == 2);
        }
    }
    ULONG rc = take_head(sub, out, out_size, filled);
    pthread_mutex_unlock(&sub->lock);
    return rc;
}

int wpptrace_rt_drained(wpptrace_rt_subscription *sub) {
    if (!sub) return 1;
    pthread_mutex_lock(&sub->lock);
    int drained;
    if (sub->remote) {
        int got;
        do got = sub->head || sub->closed ? 0 : remote_pump(sub, 0);
        while (got == 2);
        drained = got < 0;
    }
    else drained = sub->ended && !sub->head;
    if (sub->closed) drained = 1;
    pthread_mutex_unlock(&sub->lock);
    return drained;
}

ULONG wpptrace_rt_sync(wpptrace_rt_subscription *sub, int timeout_ms) {
    if (!sub) return ERROR_INVALID_PARAMETER;
    if (!sub->remote) return ERROR_SUCCESS;       /* a local queue already holds everything */
    pthread_mutex_lock(&sub->lock);
    ULONG rc = ERROR_SUCCESS;
    if (!sub->ended && !sub->closed) {
        sub->sync_seen = 0;
        if (wpt_ipc_send(sub->fd, WPT_RT_SYNC, 0, NULL, 0, -1, timeout_ms) != 0) {
            sub->ended = 1;
        } else {
            int64_t deadline = timeout_ms < 0 ? -1 : wpt_mono_ms() + timeout_ms;
            while (!sub->sync_seen) {
                int left = deadline < 0 ? -1 : (int)(deadline - wpt_mono_ms());
                if (deadline >= 0 && left <= 0) { rc = WAIT_TIMEOUT; break; }
                int got = remote_pump(sub, left);
                if (got < 0) break;              /* the end came first: that is everything */
                if (got != 1) continue;
                if (!keep_frame(sub)) { rc = ERROR_OUTOFMEMORY; break; }
            }
        }
    }
    pthread_mutex_unlock(&sub->lock);
    return rc;
}

int wpptrace_rt_final(wpptrace_rt_subscription *sub, wpptrace_rt_final_info *info) {
    if (!sub) return 0;
    pthread_mutex_lock(&sub->lock);
    int known = sub->ended && sub->final_known;
    if (known && info) *info = sub->final;
    pthread_mutex_unlock(&sub->lock);
    return known;
}

void wpptrace_rt_close(wpptrace_rt_subscription *sub) {
    if (!sub) return;
    if (sub->remote) {
        if (sub->fd >= 0) close(sub->fd);
        free_items(sub->head);
        free(sub->body);
        pthread_mutex_destroy(&sub->lock);
        pthread_cond_destroy(&sub->cond);
        free(sub);
        return;
    }
    pthread_mutex_lock(&sub->lock);
    sub->closed = 1;
    free_items(sub->head);
    sub->head = sub->tail = NULL;
    sub->count = 0;
    pthread_cond_broadcast(&sub->cond);
    pthread_mutex_unlock(&sub->lock);
    unlink_sub(sub);
    unref(sub);
}
