/* start_registry_removed.c: StartTrace of a hosted session while a clean-up removes the
 * registry file alone (the runtime directory stays, and the host's socket in it): the caller
 * finds the registry made again before it hands the handle out, and fails
 * (tests/provider/test_host_after_clean_up.py builds it with the core's test points).
 *
 *     start_registry_removed DIR [late]
 * DIR: where the session's log file goes (the runtime directory is the environment's).
 * late: StartTrace gives up waiting for its host's answer at once, and then finds it registered
 * (RUNNING): the session is started all the same, but its host's pid came with no answer.
 * Prints "start N": what StartTrace returned; "ended 1" if the host ended within 30 s (else it
 * is stopped with SIGTERM and "ended 0" printed).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

#define NAME "registry-removed"

static const char *g_runtime;
static uint32_t g_host;

/* The session's host as the registry file says (0: not there, or not yet RUNNING). */
static uint32_t registered_host(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s/registry", g_runtime);
    FILE *f = fopen(path, "rb");
    static wpt_registry reg;
    uint32_t host = 0;
    if (!f) return 0;
    if (fread(&reg, sizeof reg, 1, f) == 1)
        for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++)
            if (reg.loggers[i].state == WPT_RUNNING && strcmp(reg.loggers[i].name, NAME) == 0)
                host = reg.loggers[i].host_pid;
    fclose(f);
    return host;
}

/* The caller's host answered (or was found RUNNING once the caller gave up on its answer): its
 * pid read from the registry, then the registry removed. StartTrace that gave up waits here
 * until its host registered. */
static void at_point(int point) {
    if (point == WPT_POINT_HOST_UNANSWERED) {
        for (int i = 0; i < 20000 && !registered_host(); i++) usleep(1000);
        return;
    }
    if (point != WPT_POINT_HOST_ANSWERED || g_host) return;
    g_host = registered_host();
    char path[4096];
    snprintf(path, sizeof path, "%s/registry", g_runtime);
    unlink(path);
}

int main(int argc, char **argv) {
    if (argc != 2 && !(argc == 3 && strcmp(argv[2], "late") == 0)) return 2;
    if (argc == 3) wpt_host_answer_ms = 0;
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    wpt_test_point = at_point;
    TRACEHANDLE h = 0;
    ULONG rc = start(argv[1], NAME, &h);
    wpt_test_point = NULL;
    if (!g_host) return 4;
    int ended = wait_gone((pid_t)g_host);
    if (!ended) kill((pid_t)g_host, SIGTERM);
    printf("start %u ended %d\n", (unsigned)rc, ended);
    return 0;
}
