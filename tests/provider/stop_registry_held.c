/* stop_registry_held.c: a hosted session left running for a test that stops its host while
 * another process holds the registry's lock (tests/provider/test_stop_registry_held.py builds
 * it with the core's test points).
 *
 *     stop_registry_held DIR
 * Starts the session "registry-held" logging to DIR/registry-held.etl, logs 20 messages and
 * exits, its host left running. Prints "host N": the host's pid. The wait for the registry is
 * 10 min in this process, and so in the host (a fork of it): longer than the test waits, so a
 * host that gives up its first wait does so on a limit of its own.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID g_message = {0x2f6a9c10, 0x7d3e, 0x4b21, {8, 7, 6, 5, 4, 3, 2, 1}};

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    wpt_registry_wait_ms = 600000;
    TRACEHANDLE h = 0;
    WPPTRACE_SESSION_INFO info;
    if (start(argv[1], "registry-held", &h) != ERROR_SUCCESS || wpptrace_session_info(h, NULL, &info) != ERROR_SUCCESS)
        return 3;
    for (uint32_t i = 0; i < 20; i++)
        if (TraceMessage(h, 0x2B, &g_message, 10, &i, sizeof i, NULL) != ERROR_SUCCESS) return 4;
    printf("host %u\n", (unsigned)info.HostProcessId);
    return 0;
}
