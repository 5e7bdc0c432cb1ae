/* core_races.c: writers held at exact steps of the core's lock-free paths, against a session
 * of one stream (tests/provider/test_core_races.py builds it with WPT_TEST_POINTS and runs it).
 *
 *     core_races MODE OUT.etl
 * MODE: stale-writer  a writer that read the slot, then waited while its buffer was retired,
 *                     flushed and taken by an install that loses its race for the slot
 *       stale-state   the same with a writer that had read the buffer's state too: its CAS
 *                     fails, and it must not try again on the state of the buffer's next life
 *       stale-retire  a writer held between emptying the slot and marking its buffer RETIRED,
 *                     while the buffer is flushed and taken again by an install
 *       stop-install  a writer held in an install it began before STOP, until the host has
 *                     stopped the session (this process keeps its view of the memory, as
 *                     any other writer process does until it hears of the stop)
 *       stop-first    a writer held in the first install of the session's stream while this
 *                     process stops the session (and swaps its memory for zero pages)
 *       many-abandoned 65 reservations of a thread that is gone, then 5 records, in one buffer
 *       unbegun       two writers held right after reserving (their records still all zero),
 *                     each followed by a record, while a flush gives them up
 *       many-held     16 writers held right after reserving (their records all zero), in one
 *                     buffer, while a flush gives them up; prints how long it took ("flush_ms N")
 *                     and EventsLost after they went on and another flush ("lost_running N")
 *       many-pending  16 live threads that reserved a record (marked pending) and never commit
 *                     it, in one buffer, while a flush gives them up; "flush_ms N" too
 *       held-over-stop three writers held right after reserving, side by side, while a flush
 *                     gives them up; the middle one goes on, then the session stops with the
 *                     other two still held (released after STOP)
 * Prints "logged N lost L" and, for stale-retire, what the session's memory said of the
 * buffer the held install prepared: its state word when prepared, after the stale writer's
 * retire and after a flush ("prepared S retired S flushed S") and its phase after the last
 * two, without the generation ("retired_phase P flushed_phase P"), then exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "tagged_messages.h"

/* 56 bytes a record: 17 fill the 952 bytes a 1 KiB buffer has for records */
#define PER_BUFFER 17

/* A writer thread that stops once at a test point (hold) and again at `then` if set. */
typedef struct {
    pthread_t thread;
    unsigned tag, count;
    int hold, then;
    sem_t arrived, go;
} writer;

static __thread writer *t_self;

static void at_point(int point) {
    writer *w = t_self;
    if (!w || w->hold != point) return;
    w->hold = w->then;
    w->then = 0;
    sem_post(&w->arrived);
    sem_wait(&w->go);
}

static void *abandon_reservations(void *arg) {
    for (unsigned i = 0; i < 65; i++) wpptrace_debug_reserve_only(g_session, 8);
    return arg;
}

static sem_t g_reserved, g_done;

static void *reserve_and_wait(void *arg) {
    wpptrace_debug_reserve_only(g_session, 8);
    sem_post(&g_reserved);
    sem_wait(&g_done);                          /* alive, never committing */
    return arg;
}

static void *writer_main(void *arg) {
    t_self = arg;
    for (unsigned i = 0; i < t_self->count; i++) log_one(t_self->tag, i);
    return NULL;
}

static void start(writer *w, unsigned tag, unsigned count, int hold, int then) {
    w->tag = tag;
    w->count = count;
    w->hold = hold;
    w->then = then;
    sem_init(&w->arrived, 0, 0);
    sem_init(&w->go, 0, 0);
    pthread_create(&w->thread, NULL, writer_main, w);
    sem_wait(&w->arrived);                       /* it is held at its point */
}

static void release(writer *w, int held_again) {
    sem_post(&w->go);
    if (held_again) sem_wait(&w->arrived);
}

static void flush(EVENT_TRACE_PROPERTIES *p) {
    if (ControlTrace(g_session, NULL, p, EVENT_TRACE_CONTROL_FLUSH)) exit(4);
}

static long flush_ms(EVENT_TRACE_PROPERTIES *p) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    flush(p);
    clock_gettime(CLOCK_MONOTONIC, &b);
    return (long)((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *mode = argv[1];
    struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props;
    memset(&props, 0, sizeof props);
    props.p.Wnode.BufferSize = sizeof props;
    props.p.BufferSize = 1;
    props.p.MaximumBuffers = 64;
    props.p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING;
    props.p.LogFileNameOffset = sizeof props.p;
    strcpy(props.names, argv[2]);
    char name[64];
    snprintf(name, sizeof name, "core-races-%d", (int)getpid());
    if (StartTrace(&g_session, name, &props.p)) return 3;
    wpt_test_point = at_point;
    wpt_view *v = atomic_load(&wpt_views[g_session & 0xFFFF]);

    writer filler, stale, installer, held[16];
    writer *after_stop[2] = {NULL, NULL};
    memset(held, 0, sizeof held);
    memset(&filler, 0, sizeof filler);
    memset(&stale, 0, sizeof stale);
    memset(&installer, 0, sizeof installer);
    if (!strcmp(mode, "stale-writer") || !strcmp(mode, "stale-state")) {
        for (unsigned i = 0; i < PER_BUFFER - 1; i++) log_one(1, i);       /* buffer X, not full */
        start(&stale, 2, 1, strcmp(mode, "stale-state") ? WPT_POINT_RESERVE_SLOT_LOADED
                                                        : WPT_POINT_RESERVE_STATE_LOADED, 0);
        /* the filler fills X, closes it and empties the slot; X is flushed back to the pool */
        start(&filler, 3, 2, WPT_POINT_RETIRE_SLOT_EMPTIED, 0);
        flush(&props.p);
        /* an install takes X again (a new generation, open) and holds before the slot */
        start(&installer, 4, 1, WPT_POINT_INSTALL_PREPARED, 0);
        release(&stale, 0);                      /* the stale writer goes on */
        pthread_join(stale.thread, NULL);
        log_one(1, PER_BUFFER - 1);              /* another install wins the slot */
        release(&installer, 0);                  /* so X goes back to the pool */
        pthread_join(installer.thread, NULL);
        release(&filler, 0);
        pthread_join(filler.thread, NULL);
    } else if (!strcmp(mode, "stale-retire")) {
        for (unsigned i = 0; i < PER_BUFFER - 1; i++) log_one(1, i);
        uint32_t x = (uint32_t)atomic_load(&v->slots[0].word);
        /* the second record closes X; its writer is held with the slot emptied */
        start(&stale, 2, 2, WPT_POINT_RETIRE_SLOT_EMPTIED, WPT_POINT_INSTALL_PREPARED);
        flush(&props.p);                         /* X is flushed back to the pool */
        start(&installer, 4, 1, WPT_POINT_INSTALL_PREPARED, 0);   /* takes X, held */
        if ((uint32_t)atomic_load(&v->slots[0].word) != 0) return 7;
        uint64_t prepared = atomic_load(&v->desc[x - 1].state);
        release(&stale, 1);        /* it marks "its" buffer RETIRED, then installs one (held) */
        uint64_t retired = atomic_load(&v->desc[x - 1].state);
        uint32_t retired_phase = (uint32_t)atomic_load(&v->desc[x - 1].phase);
        flush(&props.p);                         /* must leave the install's buffer alone */
        uint64_t flushed = atomic_load(&v->desc[x - 1].state);
        uint32_t flushed_phase = (uint32_t)atomic_load(&v->desc[x - 1].phase);
        release(&installer, 0);
        pthread_join(installer.thread, NULL);
        release(&stale, 0);
        pthread_join(stale.thread, NULL);
        for (unsigned i = PER_BUFFER - 1; i < 3 * PER_BUFFER; i++) log_one(1, i);
        printf("prepared %llu retired %llu flushed %llu retired_phase %u flushed_phase %u ",
               (unsigned long long)prepared, (unsigned long long)retired,
               (unsigned long long)flushed, retired_phase, flushed_phase);
    } else if (!strcmp(mode, "stop-install")) {
        for (unsigned i = 0; i < 3; i++) log_one(1, i);
        flush(&props.p);                         /* the slot is empty: the next record installs */
        start(&installer, 4, 1, WPT_POINT_INSTALL_PREPARED, 0);
        /* When the host goes, this process's endpoint swaps the memory of the published view
         * for zero pages, at a moment of its own. Publish a stand-in for it to swap: the held
         * writer keeps the session memory, like a writer whose process has not heard yet. */
        wpt_view *stand_in = malloc(sizeof *stand_in);
        if (!stand_in) return 8;
        *stand_in = *v;
        stand_in->memfd = -1;
        stand_in->map = mmap(NULL, v->map_size, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        atomic_store(&wpt_views[g_session & 0xFFFF], stand_in);
        wpt_wire_props w;
        if (wpt_host_call(g_session & 0xFFFF, wpt_for_session(v->registry_generation), WPT_REQ_STOP, NULL, 0,
                          &w, sizeof w, NULL))
            return 6;
        release(&installer, 0);                  /* it goes on after the session stopped */
        pthread_join(installer.thread, NULL);
        wpt_test_point = NULL;
        printf("logged %lu lost %u\n", g_logged, w.events_lost);
        return 0;
    } else if (!strcmp(mode, "stop-first")) {
        start(&installer, 4, 1, WPT_POINT_INSTALL_PREPARED, 0);
        if (ControlTrace(g_session, NULL, &props.p, EVENT_TRACE_CONTROL_STOP)) return 6;
        release(&installer, 0);
        pthread_join(installer.thread, NULL);
        wpt_test_point = NULL;
        printf("logged %lu lost %u\n", g_logged, props.p.EventsLost);
        return 0;
    } else if (!strcmp(mode, "many-abandoned")) {
        pthread_t gone;
        pthread_create(&gone, NULL, abandon_reservations, NULL);
        pthread_join(gone, NULL);
        for (unsigned i = 0; i < 5; i++) log_one(1, i);
    } else if (!strcmp(mode, "unbegun")) {
        log_one(1, 0);
        start(&stale, 2, 1, WPT_POINT_RESERVE_CLAIMED, 0);
        log_one(1, 1);
        start(&filler, 3, 1, WPT_POINT_RESERVE_CLAIMED, 0);
        log_one(1, 2);
        flush(&props.p);                         /* gives up both held records */
        release(&stale, 0);
        release(&filler, 0);
        pthread_join(stale.thread, NULL);
        pthread_join(filler.thread, NULL);
    } else if (!strcmp(mode, "many-held")) {
        for (unsigned i = 0; i < 16; i++) start(&held[i], 10 + i, 1, WPT_POINT_RESERVE_CLAIMED, 0);
        long ms = flush_ms(&props.p);            /* gives up all 16 held records */
        for (unsigned i = 0; i < 16; i++) release(&held[i], 0);
        for (unsigned i = 0; i < 16; i++) pthread_join(held[i].thread, NULL);
        flush(&props.p);                         /* the flusher finds their records now */
        if (ControlTrace(g_session, NULL, &props.p, EVENT_TRACE_CONTROL_QUERY)) return 5;
        printf("flush_ms %ld\nlost_running %u\n", ms, props.p.EventsLost);
    } else if (!strcmp(mode, "held-over-stop")) {
        for (unsigned i = 0; i < 3; i++) start(&held[i], 10 + i, 1, WPT_POINT_RESERVE_CLAIMED, 0);
        flush(&props.p);                         /* gives up all three: one span, all zero */
        release(&held[1], 0);                    /* its record appears in the span */
        pthread_join(held[1].thread, NULL);
        after_stop[0] = &held[0];
        after_stop[1] = &held[2];
    } else if (!strcmp(mode, "many-pending")) {
        pthread_t pending[16];
        sem_init(&g_reserved, 0, 0);
        sem_init(&g_done, 0, 0);
        for (unsigned i = 0; i < 16; i++) {
            pthread_create(&pending[i], NULL, reserve_and_wait, NULL);
            sem_wait(&g_reserved);
        }
        long ms = flush_ms(&props.p);            /* gives up all 16 pending records */
        for (unsigned i = 0; i < 16; i++) sem_post(&g_done);
        for (unsigned i = 0; i < 16; i++) pthread_join(pending[i], NULL);
        printf("flush_ms %ld\n", ms);
    } else {
        return 2;
    }
    wpt_test_point = NULL;
    if (ControlTrace(g_session, NULL, &props.p, EVENT_TRACE_CONTROL_STOP)) return 6;
    for (unsigned i = 0; i < 2; i++) {           /* writers still held at STOP go on now */
        if (!after_stop[i]) continue;
        release(after_stop[i], 0);
        pthread_join(after_stop[i]->thread, NULL);
    }
    printf("logged %lu lost %u\n", g_logged, props.p.EventsLost);
    return 0;
}
