/* etw_realtime.c: real-time sink: every flushed buffer of a REAL_TIME_MODE session, copied to
 * each subscriber's bounded queue (the header buffer first). A full queue drops the buffer
 * for that subscriber; a buffer no subscriber took counts in RealTimeBuffersLost. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "_etw_internal.h"

typedef struct rt_item {
    struct rt_item *next;
    uint32_t size;
    unsigned char data[];
} rt_item;

struct wpptrace_rt_subscription {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    rt_item *head, *tail;
    uint32_t count, limit;
    int ended;                 /* the session stopped: no more buffers */
    int closed;                /* the consumer closed it */
    int refs;                  /* the hub's and the consumer's */
    struct wpptrace_rt_subscription *next;
};

struct wpt_rt_hub {
    pthread_mutex_t lock;
    wpptrace_rt_subscription *subs;
};

ULONG wpt_rt_open(wpt_session *s) {
    wpt_rt_hub *hub = calloc(1, sizeof *hub);
    if (!hub) return ERROR_OUTOFMEMORY;
    pthread_mutex_init(&hub->lock, NULL);
    s->realtime = hub;
    return ERROR_SUCCESS;
}

static void drop_items(wpptrace_rt_subscription *sub) {
    rt_item *it = sub->head;
    while (it) {
        rt_item *next = it->next;
        free(it);
        it = next;
    }
    sub->head = sub->tail = NULL;
    sub->count = 0;
}

/* Drop one reference; the subscription is freed by whoever drops the last. */
static void unref(wpptrace_rt_subscription *sub) {
    pthread_mutex_lock(&sub->lock);
    int left = --sub->refs;
    pthread_mutex_unlock(&sub->lock);
    if (left == 0) {
        drop_items(sub);
        pthread_mutex_destroy(&sub->lock);
        pthread_cond_destroy(&sub->cond);
        free(sub);
    }
}

static int push(wpptrace_rt_subscription *sub, const unsigned char *buffer, uint32_t size, int force) {
    int ok = 0;
    pthread_mutex_lock(&sub->lock);
    if (!sub->closed && (force || sub->count < sub->limit)) {
        rt_item *it = malloc(sizeof *it + size);
        if (it) {
            it->next = NULL;
            it->size = size;
            memcpy(it->data, buffer, size);
            if (sub->tail) sub->tail->next = it;
            else sub->head = it;
            sub->tail = it;
            sub->count++;
            pthread_cond_signal(&sub->cond);
            ok = 1;
        }
    }
    pthread_mutex_unlock(&sub->lock);
    return ok;
}

int wpt_rt_deliver(wpt_session *s, const unsigned char *buffer, uint32_t size) {
    wpt_rt_hub *hub = s->realtime;
    int received = 0;
    pthread_mutex_lock(&hub->lock);
    for (wpptrace_rt_subscription *sub = hub->subs; sub; sub = sub->next)
        received += push(sub, buffer, size, 0);
    pthread_mutex_unlock(&hub->lock);
    return received;
}

void wpt_rt_end(wpt_session *s) {
    wpt_rt_hub *hub = s->realtime;
    pthread_mutex_lock(&hub->lock);
    wpptrace_rt_subscription *sub = hub->subs;
    hub->subs = NULL;
    pthread_mutex_unlock(&hub->lock);
    while (sub) {
        wpptrace_rt_subscription *next = sub->next;
        pthread_mutex_lock(&sub->lock);
        sub->ended = 1;
        pthread_cond_broadcast(&sub->cond);
        pthread_mutex_unlock(&sub->lock);
        unref(sub);
        sub = next;
    }
    pthread_mutex_destroy(&hub->lock);
    free(hub);
    s->realtime = NULL;
}

ULONG wpptrace_rt_subscribe(LPCSTR name, wpptrace_rt_subscription **out, ULONG *buffer_size) {
    if (!name || !out) return ERROR_INVALID_PARAMETER;
    pthread_mutex_lock(&wpt_control_lock);
    wpt_session *s = wpt_session_by_name(name);
    if (!s || atomic_load(&s->status) != WPT_RUNNING || !s->realtime) {
        pthread_mutex_unlock(&wpt_control_lock);
        return ERROR_WMI_INSTANCE_NOT_FOUND;
    }
    wpptrace_rt_subscription *sub = calloc(1, sizeof *sub);
    unsigned char *header = malloc(s->buffer_size);
    if (!sub || !header) {
        free(sub);
        free(header);
        pthread_mutex_unlock(&wpt_control_lock);
        return ERROR_OUTOFMEMORY;
    }
    pthread_mutex_init(&sub->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&sub->cond, &ca);
    pthread_condattr_destroy(&ca);
    sub->limit = s->max_buffers * 2 < 64 ? 64 : s->max_buffers * 2;
    sub->refs = 2;
    memset(header, 0xFF, s->buffer_size);
    wpt_build_header_buffer(s, header, 0, atomic_load(&s->buffers_written));
    /* the header goes first, then whatever the flusher delivers from now on */
    pthread_mutex_lock(&s->realtime->lock);
    push(sub, header, s->buffer_size, 1);
    sub->next = s->realtime->subs;
    s->realtime->subs = sub;
    pthread_mutex_unlock(&s->realtime->lock);
    if (buffer_size) *buffer_size = s->buffer_size;
    pthread_mutex_unlock(&wpt_control_lock);
    free(header);
    *out = sub;
    return ERROR_SUCCESS;
}

ULONG wpptrace_rt_next(wpptrace_rt_subscription *sub, int timeout_ms, void *out, ULONG out_size,
                       ULONG *filled) {
    struct timespec deadline;
    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += timeout_ms / 1000;
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    }
    ULONG rc;
    pthread_mutex_lock(&sub->lock);
    while (!sub->head && !sub->ended) {
        if (timeout_ms < 0) pthread_cond_wait(&sub->cond, &sub->lock);
        else if (pthread_cond_timedwait(&sub->cond, &sub->lock, &deadline) == ETIMEDOUT) break;
    }
    rt_item *it = sub->head;
    if (it) {
        if (filled) *filled = it->size;
        if (it->size > out_size) rc = ERROR_MORE_DATA;
        else {
            memcpy(out, it->data, it->size);
            sub->head = it->next;
            if (!sub->head) sub->tail = NULL;
            sub->count--;
            free(it);
            rc = ERROR_SUCCESS;
        }
    } else {
        if (filled) *filled = 0;
        rc = sub->ended ? ERROR_HANDLE_EOF : WAIT_TIMEOUT;
    }
    pthread_mutex_unlock(&sub->lock);
    return rc;
}

int wpptrace_rt_drained(wpptrace_rt_subscription *sub) {
    pthread_mutex_lock(&sub->lock);
    int drained = sub->ended && !sub->head;
    pthread_mutex_unlock(&sub->lock);
    return drained;
}

void wpptrace_rt_close(wpptrace_rt_subscription *sub) {
    if (!sub) return;
    pthread_mutex_lock(&sub->lock);
    sub->closed = 1;
    drop_items(sub);
    pthread_cond_broadcast(&sub->cond);
    pthread_mutex_unlock(&sub->lock);
    unref(sub);
}
