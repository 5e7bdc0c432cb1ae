/* callback_after_clean_up.c: another process enables this process's provider on its session;
 * the endpoint thread is held at the core's test point with the ControlCallback queued, not
 * run. Meanwhile a clean-up removes the runtime directory (the session's host ends), another
 * process starts a session that gets the same LoggerId and generation in the registry made
 * again, and this process finds the registry replaced (its handles made stale). The callback
 * then runs with the first session's handle. Usage: callback_after_clean_up DIR OUT PYTHON, as
 * clean_up_handout. Prints "name value" pairs:
 *   started:  the CLI's start of the first session (0)
 *   enabled:  the CLI's enable of this process's provider on it (0)
 *   ended:    1 if its host ended after the clean-up
 *   other:    the CLI's start of the other session (0)
 *   same_id:  1 if the other session has the LoggerId of the first
 *   called:   1 if the ControlCallback ran with the first session's handle
 *   query:    a QUERY by that handle afterwards (ERROR_WMI_INSTANCE_NOT_FOUND)
 *   enable:   an EnableTrace by it (ERROR_INVALID_HANDLE)
 *   running:  the CLI's QUERY of the other session after all that (0: it runs) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "_etw_internal.h"
#include "clean_up_calls.h"

static _Atomic int g_armed, g_called;
static ULONG g_first_id, g_host;
static _Atomic TRACEHANDLE g_given;
static const GUID g_control = {0x3e2d1c0b, 0x5a4f, 0x4e3d, {0x9c, 0x8b, 0x7a, 0x69, 0x58, 0x47, 0x36, 0x25}};
static const GUID g_message = {0x3e2d1c0c, 0x5a4f, 0x4e3d, {0x9c, 0x8b, 0x7a, 0x69, 0x58, 0x47, 0x36, 0x25}};

/* Held with the callback queued: the clean-up, the other session, and this process looking at
 * the registry made again (a session info by name hands no handle out). */
static void clean_up_meanwhile(int point) {
    if (point != WPT_POINT_CALLBACKS_CONFIRMED || !atomic_load(&g_armed)) return;
    atomic_store(&g_armed, 0);
    clean_up_then_other_session(g_host, g_first_id);
}

static ULONG callback(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    if (code == WMI_ENABLE_EVENTS) {
        atomic_store(&g_given, GetTraceLoggerHandle(buffer));
        atomic_store(&g_called, 1);
    }
    return ERROR_SUCCESS;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    take_arguments(argv);
    char file[4096];
    out_file(file, "s.etl");
    int started = cli(g_python, "start", "hosted-s", "-f", file);
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(0, "hosted-s", &info) != ERROR_SUCCESS) return 3;   /* no handle out */
    g_host = info.HostProcessId;
    g_first_id = info.LoggerId;
    TRACE_GUID_REGISTRATION reg = {&g_message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(callback, NULL, &g_control, 1, &reg, NULL, NULL, &registration) != ERROR_SUCCESS)
        return 4;
    wpt_test_point = clean_up_meanwhile;
    atomic_store(&g_armed, 1);
    char guid[64];
    snprintf(guid, sizeof guid, "3e2d1c0b-5a4f-4e3d-9c8b-7a6958473625");
    int enabled = cli(g_python, "enable", "hosted-s", "--guid", guid);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 2400 && !atomic_load(&g_called); i++) nanosleep(&nap, NULL);   /* 120 s */
    wpt_test_point = NULL;
    TRACEHANDLE given = atomic_load(&g_given);
    int called = atomic_load(&g_called) && (uint16_t)given == g_first_id;
    ULONG query = control(given & 0xFF00FFFFull, NULL, EVENT_TRACE_CONTROL_QUERY, NULL);
    ULONG enable = EnableTrace(1, 0, 4, &g_control, given & 0xFF00FFFFull);
    int running = cli(g_python, "query", "other-b", NULL, NULL);
    cli(g_python, "stop", "other-b", NULL, NULL);
    UnregisterTraceGuids(registration);
    printf("started %d enabled %d ended %d other %d same_id %d\n", started, enabled, g_ended, g_other, g_same_id);
    printf("called %d query %u enable %u running %d\n", called, (unsigned)query, (unsigned)enable, running);
    return 0;
}
