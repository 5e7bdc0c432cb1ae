/* fork_pending_enable.c: a process forks while an enable of its provider is pending: the
 * registry holds it (another thread's EnableTrace, held once the registry has the change) and
 * the provider here has not had it. The child copies the registry as its endpoint starts and
 * finds the enable its provider lacks. Its ControlCallback must not run inside fork(): a fork
 * handler runs before the child's runtime starts again (Python rebuilds its GIL after the fork
 * handlers), and a callback that needed it hung there for good, fork() never returning.
 * (tests/provider/test_fork_pending_enable.py builds it with the core's test points.)
 *
 *     fork_pending_enable MODE DIR
 * MODE: plain       the child's callback must come later, from its endpoint thread
 *       held        the process asked for callbacks held in a forked child: the child's endpoint
 *                   thread waits (reaching the hold) with no callback run until the child lets
 *                   them go (wpptrace_release_callbacks_after_fork, which copies the registry)
 *       held-trace  the same, let go by the child's first trace call
 * DIR: where the log file goes (the runtime directory is the environment's).
 * Prints "in_fork 0|1 child_enabled 0|1 held_reached 0|1 enabled_while_held 0|1 enable RC
 * parent_enabled 0|1 child_status N stop_a RC": whether a callback ran inside fork() in the
 * child, whether the child's provider got the enable, whether its endpoint thread reached the
 * hold and whether a callback ran before it was let go (0 for plain), what the held EnableTrace
 * returned and whether the parent's provider got it, the child's exit status and what stopping
 * the session returned.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID CONTROL = {0x5d1c7a42, 0x93e0, 0x4b6f, {0x8e, 0x21, 0x0c, 0x77, 0x4a, 0xd9, 0x36, 0x15}};

static pid_t g_parent;
static TRACEHANDLE g_session;
/* the fork is under way in this process: set by the first prepare handler to run (this one,
 * registered after the core's), cleared by the last child handler (this one) */
static _Atomic int g_in_fork, g_called_in_fork;
static _Atomic int g_enabler_held, g_enabler_go, g_held_reached;
static _Atomic ULONG g_enable_rc = 0xFFFFFFFFu;

static void fork_begins(void) { atomic_store(&g_in_fork, 1); }
static void fork_ends(void) { atomic_store(&g_in_fork, 0); }

static ULONG control(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    if (atomic_load(&g_in_fork)) atomic_store(&g_called_in_fork, 1);
    return track_control(code, context, size, buffer);
}

static void at_point(int point) {
    if (getpid() == g_parent) {
        if (point == WPT_POINT_ENABLE_APPLYING && !atomic_exchange(&g_enabler_held, 1))
            while (!atomic_load(&g_enabler_go)) usleep(1000);
    } else if (point == WPT_POINT_CALLBACKS_HELD) {
        atomic_store(&g_held_reached, 1);
    }
}

static void *enabler(void *arg) {
    atomic_store(&g_enable_rc, EnableTrace(1, 0x3, 4, &CONTROL, g_session));
    return arg;
}

/* The child: what it saw, on one line; exit status 0. */
static void child(const char *mode) {
    int held = strcmp(mode, "plain") != 0;
    int reached = held ? wait_for(&g_held_reached, 20000) : 0;
    int enabled_while_held = held ? atomic_load(&g_enabled) : 0;
    if (strcmp(mode, "held") == 0) {
        wpptrace_release_callbacks_after_fork();
    } else if (strcmp(mode, "held-trace") == 0) {
        TraceMessage(atomic_load(&g_logger), TRACE_MESSAGE_SEQUENCE, NULL, 1, NULL);
    }
    int enabled = wait_for(&g_enabled, 20000);
    printf("in_fork %d child_enabled %d held_reached %d enabled_while_held %d ", atomic_load(&g_called_in_fork),
           enabled, reached, enabled_while_held);
    fflush(stdout);
    _exit(0);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *mode = argv[1];
    if (strcmp(mode, "plain") != 0 && strcmp(mode, "held") != 0 && strcmp(mode, "held-trace") != 0) return 2;
    if (strcmp(mode, "plain") != 0) wpptrace_hold_callbacks_after_fork();
    g_parent = getpid();
    if (start(argv[2], "fork-pending-a", &g_session) != ERROR_SUCCESS) return 3;
    TRACE_GUID_REGISTRATION reg = {&CONTROL, NULL};
    TRACEHANDLE provider = 0;
    if (RegisterTraceGuidsA(control, NULL, &CONTROL, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS) return 4;
    pthread_atfork(fork_begins, fork_ends, fork_ends);
    wpt_test_point = at_point;
    pthread_t t;
    if (pthread_create(&t, NULL, enabler, NULL) != 0) return 5;
    if (!wait_for(&g_enabler_held, 20000)) return 6;
    pid_t pid = fork_tied();
    if (pid < 0) return 7;
    if (pid == 0) child(mode);
    int status = -1;
    if (waitpid(pid, &status, 0) != pid) return 8;
    atomic_store(&g_enabler_go, 1);
    pthread_join(t, NULL);
    int parent_enabled = atomic_load(&g_enabled);
    wpt_test_point = NULL;
    UnregisterTraceGuids(provider);
    printf("enable %u parent_enabled %d child_status %d stop_a %u\n", (unsigned)atomic_load(&g_enable_rc),
           parent_enabled, WIFEXITED(status) ? WEXITSTATUS(status) : -1, (unsigned)stop(g_session));
    return 0;
}
