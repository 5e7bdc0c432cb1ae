/* callback_cancels.c: a thread cancelled inside one ControlCallback while the same change is
 * still to reach other registrations of the GUID (tests/provider/test_callback_cancels.py
 * builds it with the core's test points and runs it).
 *
 *     callback_cancels MODE DIR
 * MODE: enable, enable-private  two registrations R1 and R2 of one control GUID; a thread's
 *                     EnableTrace of session S is cancelled in R1's ENABLE callback, before
 *                     R2's runs (S hosted, or private to this process)
 *       disable, disable-private  both enabled for S; a thread's disable of the GUID is
 *                     cancelled in R1's DISABLE callback, before R2's runs
 *       enable-alone, disable-alone  as the private modes, in a process with no endpoint
 *                     thread (its runtime directory, WPPTRACE_RUNTIME_DIR, refused once S
 *                     started): a ControlTrace QUERY, an UnregisterTraceGuids of a third
 *                     registration R3 (of another GUID) and a RegisterTraceGuids, made holding
 *                     the lock R2's callback takes, return without delivering the change; a
 *                     later EnableTrace (of another GUID) delivers it
 *       enable-closed, disable-closed  the same with the endpoint closed by the program (no
 *                     RegisterTraceGuids: it starts an endpoint again)
 *       enable-closing, disable-closing  as the private modes; the endpoint is closed (by
 *                     another thread) just after its thread took the change to deliver
 *       enable-closing-busy, disable-closing-busy  the same, and the thread's delivery finds
 *                     the change busy (wpt_test_owed_busy): it ends with the change owed
 * The endpoint thread is held before it delivers what is owed until the program looked
 * whether R2 is listed as enabled (listed_before) and how many changes were counted as
 * undelivered; the counts are read once R2 heard the change and the endpoint thread's retries
 * that delivered it were all done (where a second callback would come), or, with no endpoint
 * (or once it closed), after a second EnableTrace. A mode that would deadlock is ended by
 * SIGALRM. Prints "cancelled 0|1 listed_before 0|1 undelivered N heard_early N r1_enables N
 * r1_disables N r2_enables N r2_disables N listed 0|1 stop RC" (heard_early: R2's count of the
 * change before the EnableTrace calls, with no endpoint thread), then exits 0.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID g_control = {0x7b1e4a30, 0x5c2d, 0x4e6f, {1, 2, 3, 4, 5, 6, 7, 8}};
static const GUID g_message = {0x7b1e4a31, 0x5c2d, 0x4e6f, {1, 2, 3, 4, 5, 6, 7, 8}};
static const GUID g_other = {0x7b1e4a32, 0x5c2d, 0x4e6f, {1, 2, 3, 4, 5, 6, 7, 8}};

static _Atomic int g_cancel_on;             /* the request code R1's callback is cancelled in */
static callback_count g_r1, g_r2, g_r3;     /* what R1's, R2's and R3's callbacks were told */
static _Atomic int *g_heard;                /* R2's count of the change */
static sem_t g_deliver;                     /* posted: the endpoint thread delivers what is owed */
static _Atomic int g_done_after_heard;      /* the endpoint's retries were done once R2 heard */
static pthread_mutex_t g_app_lock = PTHREAD_MUTEX_INITIALIZER;  /* the application's, R2's callback takes it */
static _Atomic int g_close_when_taken;      /* closing modes: hold the taken delivery for the close */
static sem_t g_taken, g_joining;            /* posted: delivery taken; a close joins the endpoint thread */

static void at_point(int point) {
    if (point == WPT_POINT_OWED_TAKEN && atomic_exchange(&g_close_when_taken, 0)) {
        sem_post(&g_taken);
        sem_wait(&g_joining);
    }
    if (point == WPT_POINT_ENDPOINT_JOINING) sem_post(&g_joining);
    if (point == WPT_POINT_OWED_DELIVERING) {
        sem_wait(&g_deliver);
        sem_post(&g_deliver);
    }
    if (point == WPT_POINT_RETRIES_DONE && g_heard && atomic_load(g_heard))
        atomic_store(&g_done_after_heard, 1);
}

/* R1's callback (its context g_r1): counts, then is cancelled in the request code chosen. */
static ULONG cancelled_callback(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    count_callbacks(code, context, size, buffer);
    if ((int)code == atomic_load(&g_cancel_on)) {
        atomic_store(&g_cancel_on, 0);
        pthread_cancel(pthread_self());
        pthread_testcancel();
    }
    return ERROR_SUCCESS;
}

/* R2's callback: takes the application's lock, as a provider guarding its state does. */
static ULONG locking_callback(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    pthread_mutex_lock(&g_app_lock);
    ULONG rc = count_callbacks(code, context, size, buffer);
    pthread_mutex_unlock(&g_app_lock);
    return rc;
}

static void *close_endpoint(void *unused) {
    (void)unused;
    wpptrace_endpoint_close();
    return NULL;
}

typedef struct {
    ULONG enable;
    TRACEHANDLE session;
} change;

static void *change_in_thread(void *arg) {
    const change *c = arg;
    EnableTrace(c->enable, 0x5, 4, &g_control, c->session);
    pthread_testcancel();
    return NULL;
}

static ULONG query(TRACEHANDLE h) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    return ControlTrace(h, NULL, &b.p, EVENT_TRACE_CONTROL_QUERY);
}

/* `endpoint`: 1 as usual, 0 none (the runtime directory refused), -1 closed by the program,
 * 2 closed by another thread once the endpoint thread took the change to deliver, 3 the same
 * with that delivery found busy */
static int cancelled_change(const char *dir, int enable, int private_session, int endpoint) {
    sem_init(&g_deliver, 0, 0);
    sem_init(&g_taken, 0, 0);
    sem_init(&g_joining, 0, 0);
    alarm(50);                              /* a deadlock ends the program (no output) */
    wpt_test_point = at_point;
    TRACEHANDLE s;
    if ((private_session ? start_private_in_proc(dir, "callback-cancels", &s)
                         : start(dir, "callback-cancels", &s)) != ERROR_SUCCESS)
        return 3;
    /* refused from now on (others of the group may write to it): no endpoint thread starts */
    const char *runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!endpoint && (!runtime || chmod(runtime, 0770) != 0)) return 7;
    TRACE_GUID_REGISTRATION reg = {&g_message, NULL};
    TRACEHANDLE r1, r2, r3;
    if (RegisterTraceGuids(cancelled_callback, &g_r1, &g_control, 1, &reg, NULL, NULL, &r1)
        || RegisterTraceGuids(locking_callback, &g_r2, &g_control, 1, &reg, NULL, NULL, &r2)
        || RegisterTraceGuids(count_callbacks, &g_r3, &g_other, 1, &reg, NULL, NULL, &r3))
        return 4;
    if (!enable && EnableTrace(1, 0x5, 4, &g_control, s) != ERROR_SUCCESS) return 5;
    if (endpoint < 0) wpptrace_endpoint_close();
    atomic_store(&g_cancel_on, enable ? WMI_ENABLE_EVENTS : WMI_DISABLE_EVENTS);
    g_heard = enable ? &g_r2.enables : &g_r2.disables;
    atomic_store(&g_close_when_taken, endpoint >= 2);
    atomic_store(&wpt_test_owed_busy, endpoint == 3);
    change c = {(ULONG)enable, s};
    pthread_t t;
    if (pthread_create(&t, NULL, change_in_thread, &c) != 0) return 6;
    void *result = NULL;
    pthread_join(t, &result);
    int listed_before = listed_enabled(&g_control);
    ULONG undelivered = wpptrace_changes_undelivered();
    sem_post(&g_deliver);
    int heard_early = 0;
    if (endpoint == 1) {
        wait_for(g_heard, 20000);
        wait_for(&g_done_after_heard, 20000);
    } else {
        if (endpoint >= 2) {
            pthread_t closer;
            sem_wait(&g_taken);
            if (pthread_create(&closer, NULL, close_endpoint, NULL) != 0) return 9;
            pthread_join(closer, NULL);
            atomic_store(&wpt_test_owed_busy, 0);
        } else {
            /* a monitoring thread holding the provider's lock asks for the statistics, and
             * the application unregisters and registers providers under it: no other
             * registration's callback runs on its thread */
            pthread_mutex_lock(&g_app_lock);
            query(s);
            UnregisterTraceGuids(r3);
            if (!endpoint) {
                TRACEHANDLE r4;
                if (RegisterTraceGuids(count_callbacks, &g_r3, &g_other, 1, &reg, NULL, NULL, &r4) == ERROR_SUCCESS)
                    r3 = r4;
            }
            pthread_mutex_unlock(&g_app_lock);
        }
        heard_early = atomic_load(g_heard);
        EnableTrace(1, 0, 4, &g_other, s);  /* delivers what is owed */
        EnableTrace(0, 0, 4, &g_other, s);  /* a second callback would come now */
    }
    int listed = listed_enabled(&g_control);
    int told[4] = {atomic_load(&g_r1.enables), atomic_load(&g_r1.disables), atomic_load(&g_r2.enables),
                   atomic_load(&g_r2.disables)};
    if (!endpoint && chmod(runtime, 0700) != 0) return 8;
    ULONG stopped = stop(s);
    printf("cancelled %d listed_before %d undelivered %u heard_early %d r1_enables %d r1_disables %d "
           "r2_enables %d r2_disables %d listed %d stop %u\n",
           result == PTHREAD_CANCELED, listed_before, (unsigned)undelivered, heard_early, told[0], told[1],
           told[2], told[3], listed, (unsigned)stopped);
    fflush(stdout);
    UnregisterTraceGuids(r1);
    UnregisterTraceGuids(r2);
    UnregisterTraceGuids(r3);
    return 0;
}

int main(int argc, char **argv) {
    static const struct {
        const char *mode;
        int enable, private_session, endpoint;
    } modes[] = {
        {"enable", 1, 0, 1},         {"enable-private", 1, 1, 1}, {"disable", 0, 0, 1},
        {"disable-private", 0, 1, 1}, {"enable-alone", 1, 1, 0},  {"disable-alone", 0, 1, 0},
        {"enable-closed", 1, 1, -1}, {"disable-closed", 0, 1, -1}, {"enable-closing", 1, 1, 2},
        {"disable-closing", 0, 1, 2}, {"enable-closing-busy", 1, 1, 3},
        {"disable-closing-busy", 0, 1, 3},
    };
    if (argc != 3) return 2;
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(argv[1], modes[i].mode) == 0)
            return cancelled_change(argv[2], modes[i].enable, modes[i].private_session, modes[i].endpoint);
    return 2;
}
