/* host_requests.c: requests to a session host built by hand, with the incarnation of the
 * registry its session was found in in front or not, whole or cut short
 * (tests/provider/test_stale_incarnation.py builds it).
 *
 *     host_requests DIR [older-client]
 * DIR: where the session's log file goes (the runtime directory is the environment's).
 * Prints "name value" pairs: what the host answered to each request, and what the builder
 * answered to a payload longer than any request's ("toolong").
 * older-client: a FLUSH and an UPDATE to DIR/switched.etl sent as a client of an earlier build
 * sends them (a reply is the one frame it reads): "flush RC flushnamed 0|1 update RC
 * switched 0|1" (named: the reply's properties are the session's; switched: they name the new
 * file); then a FLUSH that asks to be told it was taken up, read the same way: "asked RC
 * toldfirst 0|1" (1: the first frame said so); then "stop RC".
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
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

/* `kind` (with the incarnation in front) as a client of an earlier build sends it: the one frame
 * it reads is the reply, its properties into *w. */
static ULONG as_older_client(uint32_t incarnation, uint32_t kind, const void *payload, uint32_t length,
                             wpt_wire_props *w) {
    wpt_host_request r;
    ULONG rc = wpt_host_request_of(&r, incarnation, kind, payload, length);
    memset(w, 0, sizeof *w);
    return rc == ERROR_SUCCESS ? wpt_ipc_call(g_path, r.kind, g_for, r.payload, r.length, w, sizeof *w, NULL,
                                              WPT_HOST_LONG_REPLY_MS)
                               : rc;
}

static int older_client(const char *dir, uint32_t incarnation, TRACEHANDLE h) {
    wpt_wire_props w;
    ULONG flushed = as_older_client(incarnation, WPT_REQ_FLUSH, NULL, 0, &w);
    int flush_named = strcmp(w.name, "host-requests") == 0;
    wpt_wire_update u;
    memset(&u, 0, sizeof u);
    u.flush_timer = 1;
    u.has_logfile = 1;
    snprintf(u.logfile, sizeof u.logfile, "%s/switched.etl", dir);
    ULONG updated = as_older_client(incarnation, WPT_REQ_UPDATE, &u, sizeof u, &w);
    printf("flush %u flushnamed %d update %u switched %d ", (unsigned)flushed, flush_named, (unsigned)updated,
           strcmp(w.logfile, u.logfile) == 0);
    /* a caller that asks is told first (read here as the older client reads: not the reply) */
    wpt_host_request r;
    wpt_frame first;
    void *reply = NULL;
    int conn = -1;
    memset(&first, 0, sizeof first);
    ULONG asked = wpt_host_request_of(&r, incarnation, WPT_REQ_FLUSH | WPT_REQ_SAY_ACCEPTED, NULL, 0);
    if (asked == ERROR_SUCCESS)
        asked = wpt_ipc_open_on(-1, g_path, r.kind, g_for, r.payload, r.length, &first, &reply,
                                WPT_WIRE_MAX_CONTROL, NULL, WPT_HOST_LONG_REPLY_MS, &conn);
    free(reply);
    if (conn >= 0) close(conn);
    printf("asked %u toldfirst %d ", (unsigned)asked, first.kind == WPT_ACCEPTED);
    printf("stop %u\n", (unsigned)stop(h));
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2 && !(argc == 3 && strcmp(argv[2], "older-client") == 0)) return 2;
    TRACEHANDLE h = 0;
    if (start(argv[1], "host-requests", &h) != ERROR_SUCCESS) return 3;
    uint32_t slot, generation, incarnation;
    if (wpt_registry_find_in("host-requests", &slot, &generation, &incarnation) != ERROR_SUCCESS || !incarnation)
        return 4;
    if (wpt_socket_path(g_path, sizeof g_path, 's', slot) != ERROR_SUCCESS) return 5;
    g_for = wpt_for_session(generation);
    if (argc == 3) return older_client(argv[1], incarnation, h);
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
