/* clean_up_handout.c: ControlTrace QUERY (or a session info) by the handle of another
 * process's session, held at the core's test point between finding the session in the
 * registry (lock let go) and handing its handle out and asking its host. Meanwhile a clean-up
 * removes the runtime directory (the session's host ends), another process starts a session
 * that gets the same LoggerId and generation in the registry made again, and this process
 * finds the registry replaced (its handles made stale). Usage: clean_up_handout DIR OUT PYTHON
 * [info], with DIR the runtime directory to use (it must not exist), OUT a directory for the
 * files and PYTHON an interpreter with wpptrace installed (its CLI starts the other processes'
 * sessions); with "info" the call held is wpptrace_session_info. Prints "name value" pairs:
 *   started:  the CLI's start of the first session (0)
 *   ended:    1 if its host ended after the clean-up
 *   other:    the CLI's start of the other session (0)
 *   same_id:  1 if the other session has the LoggerId of the first
 *   held:     the call held at the test point (ERROR_WMI_INSTANCE_NOT_FOUND: its session ended)
 *   query:    a QUERY by the same handle afterwards (ERROR_WMI_INSTANCE_NOT_FOUND)
 *   stop:     a STOP by it (ERROR_WMI_INSTANCE_NOT_FOUND)
 *   running:  the CLI's QUERY of the other session after all that (0: it runs) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_etw_internal.h"
#include "clean_up_calls.h"

static _Atomic int g_armed;
static ULONG g_first_id, g_host;

/* Held with the session found: the clean-up, the other session, and this process looking at
 * the registry made again (a session info by name hands no handle out). */
static void clean_up_meanwhile(int point) {
    if (point != WPT_POINT_TARGET_FOUND || !atomic_exchange(&g_armed, 0)) return;
    clean_up_then_other_session(g_host, g_first_id);
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) return 2;
    int by_info = argc == 5 && strcmp(argv[4], "info") == 0;
    take_arguments(argv);
    char file[4096];
    out_file(file, "s.etl");
    int started = cli(g_python, "start", "hosted-s", "-f", file);
    TRACEHANDLE h = 0;
    if (control(0, "hosted-s", EVENT_TRACE_CONTROL_QUERY, &h) != ERROR_SUCCESS) return 3;
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(h, NULL, &info) != ERROR_SUCCESS) return 4;
    g_host = info.HostProcessId;
    g_first_id = info.LoggerId;

    wpt_test_point = clean_up_meanwhile;
    atomic_store(&g_armed, 1);
    ULONG held = by_info ? wpptrace_session_info(h, NULL, &info) : control(h, NULL, EVENT_TRACE_CONTROL_QUERY, NULL);
    wpt_test_point = NULL;
    ULONG query = control(h, NULL, EVENT_TRACE_CONTROL_QUERY, NULL);
    ULONG stop = control(h, NULL, EVENT_TRACE_CONTROL_STOP, NULL);
    int running = cli(g_python, "query", "other-b", NULL, NULL);
    cli(g_python, "stop", "other-b", NULL, NULL);
    printf("started %d ended %d other %d same_id %d\n", started, g_ended, g_other, g_same_id);
    printf("held %u query %u stop %u running %d\n", (unsigned)held, (unsigned)query, (unsigned)stop, running);
    return 0;
}
