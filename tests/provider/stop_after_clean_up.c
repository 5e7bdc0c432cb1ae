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
 */
#define _GNU_SOURCE
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

extern char **environ;

static const char *g_dir, *g_runtime;
static _Atomic int g_armed;

static int there(void) {
    return access(g_runtime, F_OK) == 0;
}

/* A clean-up of /tmp, by another process (spawned: no fork handler runs with the control lock
 * held here). */
static int clean_up(void) {
    char *rm[] = {"/bin/rm", "-rf", (char *)g_runtime, NULL};
    pid_t pid;
    if (posix_spawn(&pid, rm[0], NULL, NULL, rm, environ) != 0) return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void at_point(int point) {
    if (point == WPT_POINT_TARGET_FOUND && atomic_exchange(&g_armed, 0)) {
        clean_up();
    }
}

static int found(void) {
    TRACEHANDLE h = 0;
    WPPTRACE_SESSION_INFO info;
    if (start(g_dir, "stop-found", &h) != ERROR_SUCCESS || wpptrace_session_info(h, NULL, &info) != ERROR_SUCCESS)
        return 4;
    uint32_t slot = wpt_handle_slot(h);
    if (slot >= WPPTRACE_MAX_SESSIONS || !atomic_load(&wpt_views[slot])) return 5;
    wpt_test_point = at_point;
    atomic_store(&g_armed, 1);
    ULONG rc = stop(h);
    wpt_test_point = NULL;
    printf("stop %u mapped %d there %d\n", (unsigned)rc, atomic_load(&wpt_views[slot]) != NULL, there());
    /* its host ends with its directory; never left behind if not */
    if (wpt_process_start(info.HostProcessId)) kill((pid_t)info.HostProcessId, SIGTERM);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_dir = argv[2];
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    if (strcmp(argv[1], "found") == 0) return found();
    return 2;
}
