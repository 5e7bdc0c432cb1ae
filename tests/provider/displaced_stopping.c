/* displaced_stopping.c: EnableTrace on the handle of a private session that a registry made
 * again after a clean-up left out, while its STOP has it STOPPING (the core's test point in the
 * STOP, in the thread that stops it). Usage: displaced_stopping DIR OUT PYTHON, with DIR the
 * runtime directory to use (it must not exist), OUT a directory for the files and PYTHON an
 * interpreter with wpptrace installed (its CLI starts the other process's session). Prints
 * "name value" pairs:
 *   displaced: sessions of this process left out (1: the other session took LoggerId 1 first)
 *   other_id:  the other session's LoggerId (1, as ours)
 *   enable:    what EnableTrace said of our handle while STOPPING (ERROR_INVALID_HANDLE)
 *   stopping:  1 if our session said STOPPING then
 *   held_by:   the LoggerId holding the GUID after the STOP (0: none; 1 if the enable landed
 *              on the other session)
 *   other:     the CLI's QUERY of the other session after our STOP (0: it runs) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_etw_internal.h"
#include "clean_up_calls.h"

static const GUID g_guid = {0x5c1a2b3d, 0x4e5f, 0x4a6b, {0x8c, 0x7d, 0x6e, 0x5f, 0x4a, 0x3b, 0x2c, 0x1d}};
static TRACEHANDLE g_a;
static _Atomic int g_armed;
static ULONG g_enable_rc = 1;
static int g_stopping;

static void enable_while_stopping(int point) {
    if (point != WPT_POINT_PRIVATE_STOPPED || !atomic_exchange(&g_armed, 0)) return;
    g_stopping = atomic_load(&wpt_sessions[wpt_handle_slot(g_a)].status) == WPT_STOPPING;
    g_enable_rc = EnableTrace(1, 0, 4, &g_guid, g_a);
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    take_arguments(argv);
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    b.p.BufferSize = 1;
    b.p.LogFileMode = EVENT_TRACE_PRIVATE_LOGGER_MODE | EVENT_TRACE_PRIVATE_IN_PROC;
    b.p.LogFileNameOffset = sizeof b.p;
    out_file(b.names, "a.etl");
    if (StartTraceA(&g_a, "displaced-a", &b.p) != ERROR_SUCCESS) return 3;
    if (remove_tree(g_dir) != 0) return 4;   /* a clean-up of /tmp */
    char other_file[4096];
    out_file(other_file, "b.etl");
    if (cli(g_python, "start", "other-b", "-f", other_file) != 0) return 5;
    WPPTRACE_SESSION_INFO info;
    ULONG listed = 0;
    wpptrace_list_sessions(NULL, NULL, 0, &listed);        /* the registry made again is read */
    if (wpptrace_session_info(0, "other-b", &info) != ERROR_SUCCESS) return 6;
    printf("displaced %u other_id %u\n", (unsigned)wpptrace_sessions_displaced(), (unsigned)info.LoggerId);

    wpt_test_point = enable_while_stopping;
    atomic_store(&g_armed, 1);
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    ControlTraceA(g_a, NULL, &b.p, EVENT_TRACE_CONTROL_STOP);
    wpt_test_point = NULL;

    WPPTRACE_PROVIDER_INFO providers[64];
    ULONG total = 0;
    unsigned held_by = 0;
    wpptrace_enumerate_providers(providers, 64, &total);
    for (ULONG i = 0; i < total && i < 64; i++)
        if (memcmp(&providers[i].Guid, &g_guid, sizeof g_guid) == 0 && providers[i].IsEnable)
            held_by = providers[i].LoggerId;
    int other = cli(g_python, "query", "other-b", NULL, NULL);
    cli(g_python, "stop", "other-b", NULL, NULL);
    printf("enable %u stopping %d held_by %u other %d\n", (unsigned)g_enable_rc, g_stopping, held_by, other);
    return 0;
}
