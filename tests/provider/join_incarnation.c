/* join_incarnation.c: a provider registers while a session of another process holds an enable
 * of its GUID. Once it found the session (slot, generation and incarnation) and before it joins
 * it, a clean-up removes the runtime directory and another process starts a session in the
 * registry made again, which gets the same slot and generation. The JOIN must carry the
 * incarnation of the registry the session was found in, so the new session's host refuses it
 * (tests/provider/test_join_incarnation.py builds it with the core's test points).
 *
 *     join_incarnation DIR          the provider
 *     join_incarnation DIR first    starts the first session and enables the provider in it
 *     join_incarnation DIR other    starts the other session and prints its slot and generation
 * DIR: where the log files go (the runtime directory is the environment's).
 * The provider prints "first_slot N first_generation N other_slot N other_generation N
 * started N other N enabled N stop N": the sessions' slots and whole generations, what the first
 * start and the other start returned, whether the provider was enabled once registered (1: it
 * joined the other session), and what stopping the other session by name returned.
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

static const GUID CONTROL = {0x5c1e8a42, 0x93d7, 0x4b06, {0x9f, 0x21, 0x6a, 0x3c, 0xe8, 0x17, 0x40, 0xd5}};
static char g_self[4096];
static const char *g_dir, *g_runtime;
static _Atomic int g_armed;
static int g_other = -1;

static int run_mode(const char *mode) {
    char *argv[] = {g_self, (char *)g_dir, (char *)mode, NULL};
    return run(argv);
}

/* The provider found the first session and is to join it: a clean-up of /tmp removes the
 * runtime directory, and another process starts a session in the registry made again. */
static void at_point(int point) {
    if (point != WPT_POINT_ATTACHING || !atomic_exchange(&g_armed, 0)) return;
    g_other = clean_up_elsewhere(g_runtime) == 0 ? run_mode("other") : -1;
}

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    g_dir = argv[1];
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    uint32_t slot = 0, generation = 0;
    if (argc == 3) {
        TRACEHANDLE h = 0;
        ULONG rc;
        if (strcmp(argv[2], "first") == 0) {
            rc = start(g_dir, "join-found", &h);
            if (rc == ERROR_SUCCESS) rc = EnableTrace(1, 0, 4, &CONTROL, h);
        } else if (strcmp(argv[2], "other") == 0) {
            rc = start(g_dir, "join-other", &h);
            if (rc == ERROR_SUCCESS) rc = wpt_registry_find("join-other", &slot, &generation);
            printf("other_slot %u other_generation %u\n", (unsigned)slot, (unsigned)generation);
        } else {
            return 2;
        }
        return (int)rc;
    }
    if (argc != 2) return 2;
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 4;
    g_self[n] = 0;
    int started = run_mode("first");
    if (started != 0) return 5;
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(0, "join-found", &info) != ERROR_SUCCESS) return 6;
    if (wpt_registry_find("join-found", &slot, &generation) != ERROR_SUCCESS) return 7;
    printf("first_slot %u first_generation %u\n", (unsigned)slot, (unsigned)generation);
    wpt_test_point = at_point;
    atomic_store(&g_armed, 1);
    TRACE_GUID_REGISTRATION reg = {&CONTROL, NULL};
    TRACEHANDLE provider = 0;
    if (RegisterTraceGuidsA(track_control, NULL, &CONTROL, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS)
        return 8;
    wpt_test_point = NULL;
    int enabled = atomic_load(&g_enabled);
    printf("started %d other %d enabled %d stop %u\n", started, g_other, enabled,
           (unsigned)stop_by_name("join-other"));
    /* the first session's host ends with its directory; never left behind if not */
    if (wpt_process_start(info.HostProcessId)) kill((pid_t)info.HostProcessId, SIGTERM);
    UnregisterTraceGuids(provider);
    return 0;
}
