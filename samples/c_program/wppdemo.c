/* wppdemo.c: a C program traced with WPP-style macros through the wpptrace core (see README.md).
 * Usage: wppdemo OUT.etl (own session writing OUT.etl) | wppdemo --provider (a session elsewhere) */
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

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.etl | --provider\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "--provider") == 0) {
        /* No session of its own, as a driver or service: a session started elsewhere
         * (wpptrace session start / tracelog, a test's capture) that holds the control GUID
         * enables it during WPP_INIT_TRACING; with none, every TraceEvents is skipped. */
        ULONG rc = WPP_INIT_TRACING("wppdemo");
        if (rc != ERROR_SUCCESS) { fprintf(stderr, "WPP_INIT_TRACING: %u\n", rc); return 1; }
        trace_all();
        WPP_CLEANUP();
        return 0;
    }
    enum { NAME_ROOM = 256, PATH_ROOM = 4096 };
    size_t size = sizeof(EVENT_TRACE_PROPERTIES) + NAME_ROOM + PATH_ROOM;
    EVENT_TRACE_PROPERTIES *props = calloc(1, size);
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
