/* leave_after_clean_up.c: a program whose runtime directory a clean-up removed leaves (it
 * unregisters its provider, stops its private session and the session it started in a host,
 * closes its endpoint): none of these makes the directory again; a new session's start does,
 * and so does one a STOP's own ControlCallback makes after another clean-up
 * (tests/provider/test_leaving_after_clean_up.py builds it).
 *
 *     leave_after_clean_up DIR
 * DIR: where the sessions' log files go (the runtime directory is the environment's).
 * Prints each step and what it returned, then "there 0|1": whether the directory exists.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID CONTROL = {0x5c0a3e2d, 0x41b7, 0x4d69, {0x9a, 0x11, 0x0c, 0x7e, 0x52, 0x38, 0x6f, 0x14}};
static const GUID CALLING = {0x8e2f61b4, 0x0d3c, 0x47a5, {0xb1, 0x29, 0x6e, 0x03, 0xd4, 0x5a, 0x77, 0xc8}};
static const char *g_runtime, *g_dir;
static ULONG g_called = 0xFFFFFFFFu;     /* the callback's StartTrace, once it ran */
static TRACEHANDLE g_called_session;

/* A provider whose DISABLE starts a session of its own. */
static ULONG starts_on_disable(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code == WMI_DISABLE_EVENTS && g_called == 0xFFFFFFFFu)
        g_called = start_private_file(g_dir, "leaving-called", &g_called_session);
    return ERROR_SUCCESS;
}

static void there(void) {
    printf("there %d\n", access(g_runtime, F_OK) == 0);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    g_dir = argv[1];
    if (!g_runtime) return 3;
    TRACE_GUID_REGISTRATION reg = {&CONTROL, NULL};
    TRACEHANDLE provider = 0, private_session = 0, hosted = 0;
    if (RegisterTraceGuidsA(quiet, NULL, &CONTROL, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS) return 4;
    if (start_private_file(argv[1], "leaving-private", &private_session) != ERROR_SUCCESS) return 5;
    if (EnableTrace(1, 0, 4, &CONTROL, private_session) != ERROR_SUCCESS) return 6;
    if (start(argv[1], "leaving-hosted", &hosted) != ERROR_SUCCESS) return 7;
    if (clean_up_elsewhere(g_runtime) != 0) return 8;
    printf("unregistered %u ", (unsigned)UnregisterTraceGuids(provider));
    there();
    printf("private %u ", (unsigned)stop(private_session));
    there();
    printf("hosted %u ", (unsigned)stop(hosted));
    there();
    wpptrace_endpoint_close();
    printf("closed ");
    there();
    TRACEHANDLE again = 0;
    printf("started %u ", (unsigned)start_private_file(argv[1], "leaving-again", &again));
    there();
    stop(again);
    /* the STOP of a private session runs its providers' DISABLE callbacks, which are the
     * application's: a session one of them starts makes the directory again */
    TRACEHANDLE calling = 0, stopped = 0;
    TRACE_GUID_REGISTRATION called = {&CALLING, NULL};
    if (RegisterTraceGuidsA(starts_on_disable, NULL, &CALLING, 1, &called, NULL, NULL, &calling) != ERROR_SUCCESS)
        return 9;
    if (start_private_file(argv[1], "leaving-stopped", &stopped) != ERROR_SUCCESS) return 10;
    if (EnableTrace(1, 0, 4, &CALLING, stopped) != ERROR_SUCCESS) return 11;
    if (clean_up_elsewhere(g_runtime) != 0) return 12;
    printf("stopped %u ", (unsigned)stop(stopped));
    printf("called %u ", (unsigned)g_called);
    there();
    if (g_called_session) stop(g_called_session);
    UnregisterTraceGuids(calling);
    return 0;
}
