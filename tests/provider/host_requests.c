/* host_requests.c: requests to a session host built by hand, with the incarnation of the
 * registry its session was found in in front or not, whole or cut short
 * (tests/provider/test_stale_incarnation.py builds it).
 *
 *     host_requests DIR
 * DIR: where the session's log file goes (the runtime directory is the environment's).
 * Prints "name value" pairs: what the host answered to each request, and what the builder
 * answered to a payload longer than any request's ("toolong").
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include "_etw_internal.h"
#include "session_calls.h"

static char g_path[256];
static uint32_t g_for;

/* The host's answer to `kind` with `length` bytes of `payload`, as they are (past the frame
 * that says an UPDATE was taken up). */
static ULONG raw(uint32_t kind, const void *payload, uint32_t length) {
    wpt_wire_props w;
    return wpt_ipc_call_accepted_on(-1, g_path, kind, g_for, payload, length, &w, sizeof w, NULL, WPT_HOST_REPLY_MS,
                                    WPT_HOST_LONG_REPLY_MS);
}

/* The same for a request the builder made. */
static ULONG built(uint32_t incarnation, uint32_t kind, const void *payload, uint32_t length) {
    wpt_host_request r;
    ULONG rc = wpt_host_request_of(&r, incarnation, kind, payload, length);
    return rc == ERROR_SUCCESS ? raw(r.kind, r.payload, r.length) : rc;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    TRACEHANDLE h = 0;
    if (start(argv[1], "host-requests", &h) != ERROR_SUCCESS) return 3;
    uint32_t slot, generation, incarnation;
    if (wpt_registry_find_in("host-requests", &slot, &generation, &incarnation) != ERROR_SUCCESS || !incarnation)
        return 4;
    if (wpt_socket_path(g_path, sizeof g_path, 's', slot) != ERROR_SUCCESS) return 5;
    g_for = wpt_for_session(generation);
    wpt_wire_update u;
    memset(&u, 0, sizeof u);
    unsigned char whole[sizeof(wpt_wire_update) + 1];
    memset(whole, 0, sizeof whole);
    unsigned char prefix[sizeof(wpt_wire_incarnation) + sizeof u];
    memcpy(prefix, &incarnation, sizeof incarnation);
    memcpy(prefix + sizeof incarnation, &u, sizeof u);
    printf("plain %u ", (unsigned)built(0, WPT_REQ_QUERY, NULL, 0));
    printf("same %u ", (unsigned)built(incarnation, WPT_REQ_QUERY, NULL, 0));
    printf("other %u ", (unsigned)built(incarnation + 1, WPT_REQ_QUERY, NULL, 0));
    printf("update %u ", (unsigned)built(incarnation, WPT_REQ_UPDATE, &u, sizeof u));
    printf("toolong %u ", (unsigned)built(incarnation, WPT_REQ_UPDATE, whole, sizeof whole));
    for (uint32_t n = 0; n < sizeof(wpt_wire_incarnation); n++)
        printf("short%u %u ", (unsigned)n, (unsigned)raw(WPT_REQ_QUERY | WPT_REQ_IN_INCARNATION, prefix, n));
    printf("cut %u ", (unsigned)raw(WPT_REQ_UPDATE | WPT_REQ_IN_INCARNATION, prefix, sizeof prefix - 1));
    printf("otherstop %u ", (unsigned)built(incarnation + 1, WPT_REQ_STOP, NULL, 0));
    printf("stop %u\n", (unsigned)stop(h));
    return 0;
}
