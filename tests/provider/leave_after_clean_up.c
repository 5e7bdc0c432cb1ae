/* leave_after_clean_up.c: a program whose runtime directory a clean-up removed leaves (it
 * unregisters its provider, stops its private session and the session it started in a host,
 * closes its endpoint): none of these makes the directory again; a new session's start does
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
static const char *g_runtime;

static ULONG quiet(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)code;
    (void)context;
    (void)size;
    (void)buffer;
    return ERROR_SUCCESS;
}

static void there(void) {
    printf("there %d\n", access(g_runtime, F_OK) == 0);
}

static ULONG start_private(const char *dir, const char *name, TRACEHANDLE *h) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    b.p.BufferSize = 1;
    b.p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_PRIVATE_LOGGER_MODE;
    b.p.LogFileNameOffset = sizeof b.p;
    snprintf(b.names, sizeof b.names, "%s/%s.etl", dir, name);
    return StartTrace(h, name, &b.p);
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    g_runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!g_runtime) return 3;
    TRACE_GUID_REGISTRATION reg = {&CONTROL, NULL};
    TRACEHANDLE provider = 0, private_session = 0, hosted = 0;
    if (RegisterTraceGuidsA(quiet, NULL, &CONTROL, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS) return 4;
    if (start_private(argv[1], "leaving-private", &private_session) != ERROR_SUCCESS) return 5;
    if (EnableTrace(1, 0, 4, &CONTROL, private_session) != ERROR_SUCCESS) return 6;
    if (start(argv[1], "leaving-hosted", &hosted) != ERROR_SUCCESS) return 7;
    pid_t cleaner = fork();             /* a clean-up of /tmp, by another process */
    if (cleaner == 0) {
        execlp("rm", "rm", "-rf", g_runtime, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (cleaner < 0 || waitpid(cleaner, &status, 0) != cleaner || status != 0) return 8;
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
    printf("started %u ", (unsigned)start_private(argv[1], "leaving-again", &again));
    there();
    stop(again);
    return 0;
}
