/* stop_after_clean_up.c: a STOP in a process whose runtime directory a clean-up removes, at a
 * step of the STOP (tests/provider/test_leaving_after_clean_up.py builds it with the core's
 * test points).
 *
 *     stop_after_clean_up MODE DIR
 * DIR: where the sessions' log files go (the runtime directory is the environment's).
 *   found     a session this process started in a host, STOPped: the directory is removed once
 *             the STOP found the session, before its request goes to the host. Prints
 *             "stop N mapped 0|1 there 0|1": what the STOP returned, whether the session is
 *             still mapped here (its view not retired), whether the directory exists.
 *   made-again  the same, and while the STOP's check of the directory has its parent open (and
 *             has not looked in it), the parent is renamed away and made again with a new
 *             runtime directory in it: the check misses the directory, which another process
 *             made again by the time anything looks by its name. Prints "stop N mapped 0|1".
 *   fork      a private session, STOPped after the directory was removed; the STOP forks once
 *             the session stopped, and the child starts a private session of its own. Prints
 *             "stop N child N there 0|1": what the STOP returned, what the child's StartTrace
 *             returned, whether the directory exists (the child's start made it again).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const char *g_dir, *g_runtime;
static _Atomic int g_armed, g_made_again;
static int g_to_make_again;
static pthread_t g_main;
static int g_child = -1;

static int there(void) {
    return access(g_runtime, F_OK) == 0;
}

/* The runtime directory's parent renamed to "<parent>.old" and made again, a new runtime
 * directory in it: a check holding the old parent open finds nothing by the name in it. */
static void make_again(void) {
    char parent[512], old[600];
    snprintf(parent, sizeof parent, "%s", g_runtime);
    char *slash = strrchr(parent, '/');
    if (!slash || slash == parent) return;
    *slash = 0;
    snprintf(old, sizeof old, "%s.old", parent);
    if (rename(parent, old) != 0 || mkdir(parent, 0700) != 0) return;
    mkdir(g_runtime, 0700);
}

static void at_point(int point) {
    if (point == WPT_POINT_TARGET_FOUND && atomic_exchange(&g_armed, 0)) {
        clean_up_elsewhere(g_runtime);      /* spawned: no fork handler runs with the control lock held */
        atomic_store(&g_made_again, g_to_make_again);   /* at the STOP's next check */
    } else if (point == WPT_POINT_RUNTIME_DIR_OPENING && pthread_equal(pthread_self(), g_main)
               && atomic_exchange(&g_made_again, 0)) {
        make_again();
    } else if (point == WPT_POINT_PRIVATE_STOPPED && atomic_exchange(&g_armed, 0)) {
        /* forked in the STOP: the child is a process of its own, which starts something */
        pid_t pid = fork_tied();
        if (pid == 0) {
            wpt_test_point = NULL;
            TRACEHANDLE h = 0;
            ULONG rc = start_private_file(g_dir, "child", &h);
            if (rc == ERROR_SUCCESS) stop(h);
            _exit(rc == ERROR_SUCCESS ? 0 : rc == ERROR_BAD_PATHNAME ? 1 : rc == ERROR_FILE_NOT_FOUND ? 2 : 3);
        }
        int status = 0;
        if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status)) g_child = WEXITSTATUS(status);
    }
}

static int found(int made_again) {
    TRACEHANDLE h = 0;
    WPPTRACE_SESSION_INFO info;
    if (start(g_dir, "stop-found", &h) != ERROR_SUCCESS || wpptrace_session_info(h, NULL, &info) != ERROR_SUCCESS)
        return 4;
    uint32_t slot = wpt_handle_slot(h);
    if (slot >= WPPTRACE_MAX_SESSIONS || !atomic_load(&wpt_views[slot])) return 5;
    g_main = pthread_self();
    wpt_test_point = at_point;
    g_to_make_again = made_again;
    atomic_store(&g_armed, 1);
    ULONG rc = stop(h);
    wpt_test_point = NULL;
    if (made_again)
        printf("stop %u mapped %d\n", (unsigned)rc, atomic_load(&wpt_views[slot]) != NULL);
    else
        printf("stop %u mapped %d there %d\n", (unsigned)rc, atomic_load(&wpt_views[slot]) != NULL, there());
    /* its host ends with its directory; never left behind if not */
    if (wpt_process_start(info.HostProcessId)) kill((pid_t)info.HostProcessId, SIGTERM);
    return 0;
}

static int forked(void) {
    TRACEHANDLE h = 0;
    if (start_private_file(g_dir, "stopped", &h) != ERROR_SUCCESS) return 4;
    if (clean_up_elsewhere(g_runtime) != 0) return 5;
    wpt_test_point = at_point;
    atomic_store(&g_armed, 1);
    ULONG rc = stop(h);
    wpt_test_point = NULL;
    printf("stop %u child %d there %d\n", (unsigned)rc, g_child, there());
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_dir = argv[2];
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    if (strcmp(argv[1], "found") == 0) return found(0);
    if (strcmp(argv[1], "made-again") == 0) return found(1);
    if (strcmp(argv[1], "fork") == 0) return forked();
    return 2;
}
