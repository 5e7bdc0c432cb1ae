/* core_faults.c: writers that never complete a record, and signal handlers that log, against
 * a session of the wpptrace core (tests/provider/test_core_faults.py builds and runs it).
 *
 *     core_faults MODE OUT.etl
 * MODE: held      a thread reserves a record and stays alive without completing it
 *       exited    a thread reserves a record and exits
 *       cancel    threads logging in a loop are cancelled asynchronously at random moments
 *       longjmp   a thread logging in a loop is interrupted by signals whose handler longjmps out
 *       forkcrash a forked child reserves a record and aborts
 *       signal    a signal handler logs (every 50 us) while the main thread logs
 *       signal-starved  the same while the session's flusher is held, as one that gets no CPU
 *                 (the buffers run out: what does not fit is dropped and counted)
 * The logging loops are bounded (LOOP_EVENTS) so that the file can be checked record by record.
 * Flushes, then stops; prints "flushed MS stopped MS logged N lost L written W ... abandoned A
 * quarantined Q" (MS: how long FLUSH, FLUSH+STOP took; A, Q: the session's counters after the
 * flush) and exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "wpptrace_etw.h"
#include "child_calls.h"
#include "tagged_messages.h"

/* a tight loop, bounded so that the file stays small enough to check record by record */
#define LOOP_EVENTS 20000

static volatile int g_run = 1;

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static volatile int g_reserved;
static void *hold_forever(void *arg) {
    (void)arg;
    wpptrace_debug_reserve_only(g_session, 24);
    g_reserved = 1;
    while (g_run) usleep(1000);
    return NULL;
}

static void *reserve_and_exit(void *arg) {
    (void)arg;
    wpptrace_debug_reserve_only(g_session, 24);
    return NULL;
}

static void *loop_cancellable(void *arg) {
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, NULL);
    for (unsigned i = 0; i < LOOP_EVENTS; i++) log_one((unsigned)(uintptr_t)arg, i);
    for (;;) pthread_testcancel();
    return NULL;
}

static sigjmp_buf g_jump;
static volatile sig_atomic_t g_jumps;
static void jump_out(int sig) {
    (void)sig;
    g_jumps++;
    siglongjmp(g_jump, 1);
}

static volatile int g_jump_ready;
static void *loop_jumping(void *arg) {
    (void)arg;
    static unsigned i;
    sigsetjmp(g_jump, 1);     /* back here after each jump, with the signal blocked again */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    g_jump_ready = 1;
    for (; g_run && i < LOOP_EVENTS; i++) log_one(2, i);
    while (g_run) usleep(100);
    return NULL;
}

static volatile unsigned long g_in_handler;
static void log_from_handler(int sig) {
    (void)sig;
    log_one(9, (unsigned)g_in_handler);
    g_in_handler++;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *mode = argv[1];
    struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props;
    memset(&props, 0, sizeof props);
    props.p.Wnode.BufferSize = sizeof props;
    props.p.BufferSize = 1;                 /* small buffers: many new buffers and retires */
    props.p.MaximumBuffers = 4096;
    props.p.FlushTimer = 1;
    props.p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL;
    props.p.LogFileNameOffset = sizeof props.p;
    strcpy(props.names, argv[2]);
    char name[64];
    snprintf(name, sizeof name, "core-faults-%d", (int)getpid());
    if (StartTrace(&g_session, name, &props.p)) return 3;
    srand((unsigned)getpid());

    pthread_t holder;
    memset(&holder, 0, sizeof holder);
    if (!strcmp(mode, "held")) {
        pthread_create(&holder, NULL, hold_forever, NULL);
        while (!g_reserved) usleep(100);           /* the flush below finds it pending */
        for (unsigned i = 0; i < 100; i++) log_one(1, i);
    } else if (!strcmp(mode, "exited")) {
        pthread_t t;
        pthread_create(&t, NULL, reserve_and_exit, NULL);
        pthread_join(t, NULL);
        for (unsigned i = 0; i < 100; i++) log_one(1, i);
    } else if (!strcmp(mode, "cancel")) {
        for (int round = 0; round < 20; round++) {
            pthread_t t;
            pthread_create(&t, NULL, loop_cancellable, (void *)(uintptr_t)(100 + round));
            usleep(200 + (unsigned)(rand() % 1500));
            pthread_cancel(t);
            pthread_join(t, NULL);
        }
    } else if (!strcmp(mode, "longjmp")) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR1);
        pthread_sigmask(SIG_BLOCK, &s, NULL);           /* only the logging thread takes it */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = jump_out;
        sigaction(SIGUSR1, &sa, NULL);
        pthread_t t;
        pthread_create(&t, NULL, loop_jumping, NULL);
        while (!g_jump_ready) usleep(100);
        for (int i = 0; i < 8; i++) {
            usleep(300);
            int before = g_jumps;
            pthread_kill(t, SIGUSR1);
            while (g_jumps == before) usleep(50);     /* one jump per signal */
        }
        g_run = 0;
        pthread_join(t, NULL);
    } else if (!strcmp(mode, "forkcrash")) {
        pid_t child = fork_tied();
        if (child == 0) {
            wpptrace_debug_reserve_only(g_session, 24);
            abort();
        }
        int status;
        waitpid(child, &status, 0);
        for (unsigned i = 0; i < 100; i++) log_one(1, i);
    } else if (!strcmp(mode, "signal") || !strcmp(mode, "signal-starved")) {
        int starved = !strcmp(mode, "signal-starved");
        if (starved && wpptrace_debug_hold_flush(g_session, 1)) return 7;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = log_from_handler;
        sa.sa_flags = SA_RESTART;
        sigaction(SIGALRM, &sa, NULL);
        struct itimerval it = {{0, 50}, {0, 50}};
        setitimer(ITIMER_REAL, &it, NULL);
        for (unsigned i = 0; i < 5 * LOOP_EVENTS; i++) log_one(1, i);
        struct itimerval off = {{0, 0}, {0, 0}};
        setitimer(ITIMER_REAL, &off, NULL);
        if (starved && wpptrace_debug_hold_flush(g_session, 0)) return 7;
    } else {
        return 2;
    }
    /* a flush first: it gives up what no writer will complete; the session says how (a
     * buffer is quarantined only when the writer may still be running) */
    long t0 = now_ms();
    if (ControlTrace(g_session, NULL, &props.p, EVENT_TRACE_CONTROL_FLUSH)) return 4;
    long t1 = now_ms();
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(g_session, NULL, &info)) return 5;
    if (ControlTrace(g_session, NULL, &props.p, EVENT_TRACE_CONTROL_STOP)) return 6;
    long t2 = now_ms();
    printf("flushed %ld stopped %ld logged %lu lost %u written %u handler %lu jumps %d abandoned %u "
           "quarantined %u\n", t1 - t0, t2 - t0, g_logged, props.p.EventsLost, props.p.BuffersWritten,
           g_in_handler, (int)g_jumps, info.RecordsAbandoned, info.BuffersQuarantined);
    if (!strcmp(mode, "held")) {
        g_run = 0;
        pthread_join(holder, NULL);
    }
    return 0;
}
