/* stale_incarnation.c: a control request for a session found in a registry that a clean-up
 * removed before the request went, while this process never opened the registry made again:
 * a session of that registry has the same slot, generation and socket path, and its host must
 * refuse the request (tests/provider/test_stale_incarnation.py builds it with the core's test
 * points).
 *
 *     stale_incarnation DIR query      the process that finds a session, then QUERYs its host
 *     stale_incarnation DIR subscribe  the same with real-time sessions and a subscription
 *     stale_incarnation DIR other[-rt] starts the other session (in a process of its own)
 * DIR: where the log files go (the runtime directory is the environment's).
 * Prints "found N asked N name X other N stop N": what StartTrace of the session found
 * returned, what its QUERY (or the subscription) returned and the session name its answer gave
 * ("-" for none, or for a subscription), what the other start returned, what stopping the
 * other session by name returned.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const char *g_dir, *g_runtime;
static int g_armed, g_realtime;
static ULONG g_other = 0xFFFFFFFF;

/* The QUERY found its session (the registry's lock let go), has not sent it: a clean-up of
 * /tmp removes the runtime directory, and another process starts a session in the registry
 * made again, which gets the same slot and generation. */
static void at_target_found(int point) {
    if (point != WPT_POINT_TARGET_FOUND || !g_armed) return;
    g_armed = 0;
    if (clean_up_elsewhere(g_runtime) != 0) return;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = 0;
    char *other[] = {self, (char *)g_dir, g_realtime ? "other-rt" : "other", NULL};
    g_other = (ULONG)run(other);
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_dir = argv[1];
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    TRACEHANDLE h = 0;
    if (strcmp(argv[2], "other") == 0) return (int)start(g_dir, "incarnation-other", &h);
    if (strcmp(argv[2], "other-rt") == 0) return (int)start_rt("incarnation-other", &h);
    g_realtime = strcmp(argv[2], "subscribe") == 0;
    ULONG found = g_realtime ? start_rt("incarnation-found", &h) : start(g_dir, "incarnation-found", &h);
    WPPTRACE_SESSION_INFO info;
    if (found != ERROR_SUCCESS || wpptrace_session_info(h, NULL, &info) != ERROR_SUCCESS) return 4;
    wpt_test_point = at_target_found;
    g_armed = 1;
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    b.p.LoggerNameOffset = sizeof b.p;
    ULONG asked;
    const char *name = "-";
    if (g_realtime) {
        wpptrace_rt_subscription *sub = NULL;
        asked = wpptrace_rt_subscribe("incarnation-found", &sub, NULL);
        if (sub) wpptrace_rt_close(sub);
    } else {
        asked = ControlTrace(h, NULL, &b.p, EVENT_TRACE_CONTROL_QUERY);
        if (asked == ERROR_SUCCESS && ((const char *)&b.p)[b.p.LoggerNameOffset])
            name = (const char *)&b.p + b.p.LoggerNameOffset;
    }
    wpt_test_point = NULL;
    printf("found %u asked %u name %s other %u ", (unsigned)found, (unsigned)asked, name, (unsigned)g_other);
    printf("stop %u\n", (unsigned)stop_by_name("incarnation-other"));
    /* the first session's host ended with its directory; never left behind if not */
    if (wpt_process_start(info.HostProcessId)) kill((pid_t)info.HostProcessId, SIGTERM);
    return 0;
}
