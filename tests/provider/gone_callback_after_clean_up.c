/* gone_callback_after_clean_up.c: the STOP of a session whose host died frees its registry
 * entry and runs this process's DISABLE callbacks for it; a clean-up removes the runtime
 * directory in between, and the callback starts a session of its own, which makes the directory
 * again (tests/provider/test_gone_callback_after_clean_up.py builds it with the core's test points).
 *
 *     gone_callback_after_clean_up DIR
 * DIR: where the sessions' log files go (the runtime directory is the environment's).
 * Prints "gone N stopped N called N there N": whether the host was gone before the STOP, what
 * the STOP returned, what the callback's StartTrace returned, whether the directory exists.
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

static const GUID CALLING = {0x71c3e0a8, 0x5d24, 0x4b9f, {0x86, 0x1e, 0x2f, 0xa0, 0x5b, 0xc7, 0x39, 0xd6}};
static const char *g_runtime, *g_dir;
static ULONG g_called = 0xFFFFFFFFu;
static TRACEHANDLE g_called_session;
static _Atomic int g_hold, g_held, g_armed;

/* A provider whose DISABLE starts a session of its own. */
static ULONG starts_on_disable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code == WMI_DISABLE_EVENTS && g_called == 0xFFFFFFFFu)
        g_called = start_private_file(g_dir, "gone-called", &g_called_session);
    return ERROR_SUCCESS;
}

/* The endpoint thread is held before its poll while g_hold is set: it must not hear the host's
 * end (and disable the provider) before the STOP finds the host gone. Once the STOP freed the
 * gone host's entry, a clean-up of /tmp removes the runtime directory. */
static void at_point(int point) {
    if (point == WPT_POINT_ENDPOINT_POLL && wpt_on_endpoint_thread()) {
        while (atomic_load(&g_hold)) {
            atomic_store(&g_held, 1);
            poll(NULL, 0, 5);
        }
    }
    if (point == WPT_POINT_GONE_FREED && atomic_exchange(&g_armed, 0)) clean_up_elsewhere(g_runtime);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    g_dir = argv[1];
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    TRACE_GUID_REGISTRATION reg = {&CALLING, NULL};
    TRACEHANDLE provider = 0, hosted = 0;
    if (RegisterTraceGuidsA(starts_on_disable, NULL, &CALLING, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS)
        return 4;
    if (start(g_dir, "gone-hosted", &hosted) != ERROR_SUCCESS) return 5;
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(hosted, NULL, &info) != ERROR_SUCCESS) return 6;
    if (EnableTrace(1, 0, 4, &CALLING, hosted) != ERROR_SUCCESS) return 7;
    wpt_test_point = at_point;
    atomic_store(&g_hold, 1);
    for (int i = 0; i < 6000 && !atomic_load(&g_held); i++) poll(NULL, 0, 5);
    if (!atomic_load(&g_held)) return 8;
    kill((pid_t)info.HostProcessId, SIGKILL);
    int gone = wait_gone((pid_t)info.HostProcessId);
    atomic_store(&g_armed, 1);
    printf("gone %d stopped %u ", gone, (unsigned)stop(hosted));
    printf("called %u there %d\n", (unsigned)g_called, access(g_runtime, F_OK) == 0);
    atomic_store(&g_hold, 0);
    wpt_test_point = NULL;
    if (g_called_session) stop(g_called_session);
    UnregisterTraceGuids(provider);
    return 0;
}
