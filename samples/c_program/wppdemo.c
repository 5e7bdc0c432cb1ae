/* wppdemo.c: a C program traced with WPP-style macros through the wpptrace core (see README.md).
 * Usage: wppdemo OUT.etl (own session) | wppdemo --provider [ROUNDS [THREADS]] (a session elsewhere) */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "wpptrace_etw.h"
#include "wppdemo.tmh"

#define TRACE_LEVEL_ERROR       2
#define TRACE_LEVEL_WARNING     3
#define TRACE_LEVEL_INFORMATION 4
#define TRACE_LEVEL_VERBOSE     5
static const char *names[] = {"alpha.cfg", "beta.dat", "gamma.log"};

static void start_driver(void)
{
    TraceEvents(TRACE_LEVEL_INFORMATION, TRACE_DRIVER, "%!FUNC! starting");
}

static void read_files(void)
{
    for (int i = 0; i < 3; i++) {
        TraceEvents(TRACE_LEVEL_INFORMATION, TRACE_IO, "opened %s with %d bytes", names[i], 100 * (i + 1));
        void *buffer = (void *)(uintptr_t)(0x7ff000001000ull + 0x1000ull * (unsigned)i);
        TraceEvents(TRACE_LEVEL_VERBOSE, TRACE_IO, "read %d into buffer %p", i, buffer);
    }
}

static void check_status(unsigned status, int tries)
{
    TraceEvents(TRACE_LEVEL_WARNING, TRACE_NET, "link status %!STATUS! after %d tries", status, tries);
}

static void stop_driver(void)
{
    TraceEvents(TRACE_LEVEL_ERROR, TRACE_DRIVER, "%!FUNC! stopping");
}

static void trace_all(void)
{
    start_driver();
    read_files();
    check_status(0xC000020Cu, 3);                         /* STATUS_CONNECTION_DISCONNECTED */
    stop_driver();
}

static long g_rounds = 1;

/* A service's worker thread: the same calls, round after round. */
static void *worker(void *arg)
{
    for (long r = 0; r < g_rounds; r++)
        trace_all();
    return arg;
}

int main(int argc, char **argv)
{
    int provider = argc >= 2 && strcmp(argv[1], "--provider") == 0;
    if (provider ? argc > 4 : argc != 2) {
        fprintf(stderr, "usage: %s OUT.etl | --provider [ROUNDS [THREADS]]\n", argv[0]);
        return 2;
    }
    if (provider) {
        /* No session of its own, as a driver or service: a session started elsewhere
         * (wpptrace session start / tracelog, a test's capture) that holds the control GUID
         * enables it during WPP_INIT_TRACING; with none, every TraceEvents is skipped.
         * THREADS threads (default 1) each run the calls ROUNDS times (default 1). */
        g_rounds = argc > 2 ? atol(argv[2]) : 1;
        int threads = argc > 3 ? atoi(argv[3]) : 1;
        if (g_rounds < 1 || threads < 1 || threads > 64) { fprintf(stderr, "bad ROUNDS or THREADS\n"); return 2; }
        ULONG rc = WPP_INIT_TRACING("wppdemo");
        if (rc != ERROR_SUCCESS) { fprintf(stderr, "WPP_INIT_TRACING: %u\n", rc); return 1; }
        pthread_t tid[64];
        for (int t = 0; t < threads; t++)
            if (pthread_create(&tid[t], NULL, worker, NULL) != 0) { fprintf(stderr, "pthread_create\n"); return 1; }
        for (int t = 0; t < threads; t++) pthread_join(tid[t], NULL);
        WPP_CLEANUP();
        return 0;
    }
    enum { NAME_ROOM = 256, PATH_ROOM = 4096 };
    size_t size = sizeof(EVENT_TRACE_PROPERTIES) + NAME_ROOM + PATH_ROOM;
    EVENT_TRACE_PROPERTIES *props = calloc(1, size);
    if (!props) { fprintf(stderr, "out of memory\n"); return 1; }
    props->Wnode.BufferSize = (ULONG)size;
    props->Wnode.Flags = WNODE_FLAG_TRACED_GUID;
    props->Wnode.ClientContext = 1;                       /* QPC-like clock */
    props->BufferSize = 4;                                /* KB */
    props->MinimumBuffers = 2;
    props->MaximumBuffers = 8;
    props->LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL;
    props->LoggerNameOffset = sizeof(EVENT_TRACE_PROPERTIES);
    props->LogFileNameOffset = sizeof(EVENT_TRACE_PROPERTIES) + NAME_ROOM;
    snprintf((char *)props + props->LogFileNameOffset, PATH_ROOM, "%s", argv[1]);

    TRACEHANDLE session = 0;
    ULONG rc = StartTraceA(&session, "WppDemoSession", props);
    if (rc != ERROR_SUCCESS) { fprintf(stderr, "StartTrace: %u\n", rc); return 1; }
    rc = WPP_INIT_TRACING("wppdemo");
    if (rc == ERROR_SUCCESS)
        rc = EnableTrace(1, TRACE_DRIVER | TRACE_IO | TRACE_NET, TRACE_LEVEL_VERBOSE, &WPP_ControlGuid_WppDemo, session);
    if (rc != ERROR_SUCCESS) { fprintf(stderr, "WPP_INIT_TRACING/EnableTrace: %u\n", rc); return 1; }

    trace_all();

    rc = ControlTraceA(session, NULL, props, EVENT_TRACE_CONTROL_STOP);
    WPP_CLEANUP();
    printf("wrote %s: %u buffers, %u events lost\n", argv[1], props->BuffersWritten, props->EventsLost);
    free(props);
    return rc == ERROR_SUCCESS ? 0 : 1;
}
