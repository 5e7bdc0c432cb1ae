/* start_after_clean_up.c: StartTrace of a hosted session, held at the core's test point once
 * its host answered (the session registered, the registry's lock let go) and before its handle
 * is handed out. Meanwhile a clean-up removes the runtime directory (the session's host ends),
 * another process starts a session that gets the same LoggerId and generation in the registry
 * made again, and this process finds the registry replaced. Usage: start_after_clean_up DIR OUT
 * PYTHON, with DIR the runtime directory to use (it must not exist), OUT a directory for the
 * files and PYTHON an interpreter with wpptrace installed (its CLI starts the other session).
 * Prints "name value" pairs:
 *   ended:    1 if the host of the session started ended after the clean-up
 *   other:    the CLI's start of the other session (0)
 *   same_id:  1 if the other session has the LoggerId of the one started
 *   start:    StartTrace's result (ERROR_WMI_INSTANCE_NOT_FOUND: its session ended)
 *   handle:   1 if it handed out a handle
 *   names:    1 if a QUERY by that handle answered (it named the other session)
 *   running:  the CLI's QUERY of the other session after all that (0: it runs) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_etw_internal.h"
#include "clean_up_calls.h"

static _Atomic int g_armed;

/* Held with the session registered: the clean-up, the other session, and this process looking
 * at the registry made again (a session info by name hands no handle out). */
static void clean_up_meanwhile(int point) {
    if (point != WPT_POINT_HOST_ANSWERED || !atomic_exchange(&g_armed, 0)) return;
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(0, "hosted-s", &info) != ERROR_SUCCESS) return;
    clean_up_then_other_session(info.HostProcessId, info.LoggerId);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    take_arguments(argv);
    char file[4096];
    out_file(file, "s.etl");
    props_block b;
    props_of(&b, file);
    TRACEHANDLE h = 0;
    wpt_test_point = clean_up_meanwhile;
    atomic_store(&g_armed, 1);
    ULONG start = StartTraceA(&h, "hosted-s", &b.p);
    wpt_test_point = NULL;
    int names = 0;
    if (h) {
        props_of(&b, NULL);
        names = ControlTraceA(h, NULL, &b.p, EVENT_TRACE_CONTROL_QUERY) == ERROR_SUCCESS;
    }
    int running = cli(g_python, "query", "other-b", NULL, NULL);
    cli(g_python, "stop", "other-b", NULL, NULL);
    printf("ended %d other %d same_id %d\n", g_ended, g_other, g_same_id);
    printf("start %u handle %d names %d running %d\n", (unsigned)start, h != 0, names, running);
    return 0;
}
