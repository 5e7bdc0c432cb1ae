/* stopper_refused.c: a session host that cannot start a thread for a STOP's work (a process at
 * its thread limit) does the work itself, then answers (tests/provider/test_stopper_refused.py
 * builds it with the core's test points).
 *
 *     stopper_refused DIR
 * Starts the session "stopper-refused" logging to DIR/stopper-refused.etl; its host finds every
 * thread refused once it runs. Logs 20 messages and stops the session. Prints "stop RC": what
 * the STOP answered.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID g_message = {0x5c1e2f70, 0x3b9a, 0x4d18, {1, 2, 3, 4, 5, 6, 7, 8}};

/* Bytes not zero left where the serve loop's locals will be (its frame is made below the
 * caller of this test point, as this function's is): one read before it is set is not zero by
 * chance (glibc's pthread_join answers ESRCH for a zero thread, and crashes for another). */
static void __attribute__((noinline)) scribble_below(void) {
    volatile unsigned char pattern[64 * 1024];
    for (size_t i = 0; i < sizeof pattern; i++) pattern[i] = 0xA5;
}

/* in the host only (this program's fork): its serve loop runs with no thread to be had */
static void at_point(int point) {
    if (point != WPT_POINT_HOST_RUNNING || !wpt_in_host) return;
    atomic_store(&wpt_test_threads_refused, 1);
    scribble_below();
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    wpt_test_point = at_point;
    TRACEHANDLE h = 0;
    if (start(argv[1], "stopper-refused", &h) != ERROR_SUCCESS) return 3;
    for (uint32_t i = 0; i < 20; i++)
        if (TraceMessage(h, 0x2B, &g_message, 10, &i, sizeof i, NULL) != ERROR_SUCCESS) return 4;
    printf("stop %u\n", (unsigned)control_by_name("stopper-refused", EVENT_TRACE_CONTROL_STOP));
    return 0;
}
