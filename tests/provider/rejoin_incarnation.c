/* rejoin_incarnation.c: a provider enabled by a session in another process forks after a
 * clean-up removed the runtime directory (its endpoint thread held, so it has not heard of the
 * session's end yet), and another process started a session in the registry made again with
 * the same slot and generation. The child joins the session it inherited again: the host it
 * reaches is the new session's, which must refuse it (tests/provider/test_rejoin_incarnation.py
 * builds it with the core's test points).
 *
 *     rejoin_incarnation DIR         the provider
 *     rejoin_incarnation DIR other   starts the other session (in a process of its own) and
 *                                    prints "other_slot N other_generation N"
 * DIR: where the log files go (the runtime directory is the environment's).
 * Prints "first_slot N first_generation N enabled N other N child N stop N": the first
 * session's slot and whole generation (the other session must have the same), whether the
 * provider was enabled before the fork, what the other start returned, whether the child's
 * provider was still enabled once its JOIN again was answered (1), or was told the session is
 * gone (0; 2: neither within a minute), and what stopping the other session by name returned.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID CONTROL = {0x2b7d4c90, 0x6e13, 0x4f28, {0x8a, 0x5c, 0x31, 0x9e, 0x07, 0xd2, 0x64, 0xbb}};
static pid_t g_parent;
static _Atomic int g_hold, g_held, g_child_answered;

/* The parent's endpoint thread is held before its poll while g_hold is set (it must not hear
 * the first host's end before the fork); the child says when its JOIN again was answered (not
 * busy: a busy host is asked again later) and the answer applied. */
static void at_point(int point) {
    if (getpid() != g_parent) {
        if (point == WPT_POINT_REJOIN_ANSWERED) atomic_store(&g_child_answered, 1);
        return;
    }
    if (point != WPT_POINT_ENDPOINT_POLL || !wpt_on_endpoint_thread()) return;
    while (atomic_load(&g_hold)) {
        atomic_store(&g_held, 1);
        poll(NULL, 0, 5);
    }
}

/* The child's outcome, once definite (within a minute): its provider disabled, or its JOIN
 * again answered. */
static int child_outcome(void) {
    for (int i = 0; i < 12000 && atomic_load(&g_enabled) && !atomic_load(&g_child_answered); i++)
        poll(NULL, 0, 5);
    if (!atomic_load(&g_enabled)) return 0;
    return atomic_load(&g_child_answered) ? 1 : 2;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    const char *dir = argv[1];
    const char *runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!runtime) return 3;
    TRACEHANDLE h = 0;
    if (argc == 3 && strcmp(argv[2], "other") == 0) {
        uint32_t slot = 0, generation = 0;
        ULONG rc = start(dir, "rejoin-other", &h);
        if (rc == ERROR_SUCCESS) rc = wpt_registry_find("rejoin-other", &slot, &generation);
        printf("other_slot %u other_generation %u\n", (unsigned)slot, (unsigned)generation);
        return (int)rc;
    }
    if (argc != 2) return 2;
    g_parent = getpid();
    TRACE_GUID_REGISTRATION reg = {&CONTROL, NULL};
    TRACEHANDLE provider = 0;
    if (RegisterTraceGuidsA(track_control, NULL, &CONTROL, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS)
        return 4;
    if (start(dir, "rejoin-found", &h) != ERROR_SUCCESS) return 5;
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(h, NULL, &info) != ERROR_SUCCESS) return 6;
    if (EnableTrace(1, 0, 4, &CONTROL, h) != ERROR_SUCCESS) return 7;
    uint32_t slot = 0, generation = 0;
    if (wpt_registry_find("rejoin-found", &slot, &generation) != ERROR_SUCCESS) return 11;
    printf("first_slot %u first_generation %u\n", (unsigned)slot, (unsigned)generation);
    int enabled = atomic_load(&g_enabled);
    wpt_test_point = at_point;
    atomic_store(&g_hold, 1);
    if (!wait_for(&g_held, 30000)) return 8;
    /* a clean-up of /tmp removes the runtime directory; another process starts a session in
     * the registry made again, which gets the same slot and generation */
    if (clean_up_elsewhere(runtime) != 0) return 9;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return 10;
    self[n] = 0;
    char *other_argv[] = {self, (char *)dir, "other", NULL};
    int other = run(other_argv);
    fflush(stdout);
    pid_t child = fork_tied();
    if (child == 0) _exit(child_outcome());
    int status = 0;
    int child_said = child > 0 && waitpid(child, &status, 0) == child && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    atomic_store(&g_hold, 0);
    wpt_test_point = NULL;
    printf("enabled %d other %d child %d stop %u\n", enabled, other, child_said,
           (unsigned)stop_by_name("rejoin-other"));
    /* the first session's host ended with its directory; never left behind if not */
    if (wpt_process_start(info.HostProcessId)) kill((pid_t)info.HostProcessId, SIGTERM);
    UnregisterTraceGuids(provider);
    return 0;
}
