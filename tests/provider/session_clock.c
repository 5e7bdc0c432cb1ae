/* session_clock.c: sessions started while the core's clock reads are held (as a preemption
 * holds them) or after the wall clock was stepped (tests/provider/test_session_clock.py builds
 * it with WPT_TEST_POINTS and runs it).
 *
 *     session_clock MODE OUT_DIR
 * MODE: held-later  session a (OUT_DIR/a.etl) starts; then session b (b.etl) starts with every
 *                   pair of clock reads its start makes held 10 ms after the pair's first read;
 *                   then 100 messages are logged, alternately to a and b (value i: the i-th
 *                   logged), each in a later 100 ns tick of the session clock than the one
 *                   before
 *       held-first  session a starts with only the first pair of clock reads held, 50 ms;
 *                   then this program measures the wall clock minus CLOCK_MONOTONIC itself
 *                   and prints it in 100 ns ticks, as FILETIME ("wall_minus_mono N")
 *       stepped     session a starts; the wall clock the core reads is set 1000 s on; then
 *                   session b starts; 100 messages as in held-later
 *       stepped-5ms as stepped, set 5 ms on (a small step, still a step)
 *       nudged      as stepped, set 200 us on (as a time service on a virtual machine sets it)
 *       cycles      the core's cycle counter is this program's, calibrated at 2999.7 cycles
 *                   a microsecond; session a starts with clock type 3, then messages 1, 60
 *                   and 1000 are logged when the counter has run that many seconds since,
 *                   and message 0 when it reads 1 s before the start (another processor's
 *                   counter behind)
 * Prints "logged N" (and for held-first "wall_minus_mono N"), stops the sessions, exits 0.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

static GUID g_msg = {0x5e55c10c, 0x1, 0x2, {3, 4, 5, 6, 7, 8, 9, 10}};
static int g_holds_left;       /* pairs still to hold; -1: every one */
static long g_hold_ms;

static void at_point(int point) {
    if (point != WPT_POINT_CLOCK_PAIR_BEGUN || !g_holds_left) return;
    if (g_holds_left > 0) g_holds_left--;
    struct timespec pause = {g_hold_ms / 1000, (g_hold_ms % 1000) * 1000000L};
    nanosleep(&pause, NULL);
}

typedef struct {
    EVENT_TRACE_PROPERTIES p;
    char names[4096];
} props_t;

#define CYCLES_PER_SECOND 2999700000ull   /* 2999.7 MHz: no whole number of MHz */
static _Atomic uint64_t g_cycles = 1000000000000ull;
static uint64_t read_cycles(void) { return g_cycles; }
static uint32_t g_clock_type = 1;

static TRACEHANDLE start(props_t *props, const char *dir, const char *which) {
    memset(props, 0, sizeof *props);
    props->p.Wnode.BufferSize = sizeof *props;
    props->p.Wnode.ClientContext = g_clock_type;
    props->p.BufferSize = 4;
    props->p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL | EVENT_TRACE_NO_PER_PROCESSOR_BUFFERING;
    props->p.LogFileNameOffset = sizeof props->p;
    snprintf(props->names, sizeof props->names, "%s/%s.etl", dir, which);
    char name[64];
    snprintf(name, sizeof name, "session-clock-%s-%d", which, (int)getpid());
    TRACEHANDLE h = 0;
    if (StartTrace(&h, name, &props->p)) return 0;
    return h;
}

/* i-th message to a or b; the next one is logged in a later tick of the session clock */
static int log_alternately(TRACEHANDLE a, TRACEHANDLE b, unsigned count) {
    int logged = 0;
    for (unsigned i = 0; i < count; i++) {
        uint32_t v = i;
        if (TraceMessage(i % 2 ? b : a, 0x2B, &g_msg, 10, &v, sizeof v, NULL) == 0) logged++;
        int64_t t = wpt_mono100_now();
        while (wpt_mono100_now() <= t) {}
    }
    return logged;
}

/* FILETIME - CLOCK_MONOTONIC (100 ns ticks), from the tightest of many bracketed reads */
static int64_t wall_minus_mono(void) {
    int64_t best = INT64_MAX, offset = 0;
    for (int i = 0; i < 1000; i++) {
        struct timespec m0, w, m1;
        clock_gettime(CLOCK_MONOTONIC, &m0);
        clock_gettime(CLOCK_REALTIME, &w);
        clock_gettime(CLOCK_MONOTONIC, &m1);
        int64_t before = m0.tv_sec * 1000000000LL + m0.tv_nsec;
        int64_t after = m1.tv_sec * 1000000000LL + m1.tv_nsec;
        if (after - before < best) {
            best = after - before;
            offset = w.tv_sec * 1000000000LL + w.tv_nsec - (before + best / 2);
        }
    }
    return offset / 100 + WPT_FILETIME_UNIX_EPOCH;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    const char *mode = argv[1], *dir = argv[2];
    props_t pa, pb;
    TRACEHANDLE a = 0, b = 0;
    int logged = 0;
    wpt_test_point = at_point;
    if (!strcmp(mode, "held-later")) {
        if (!(a = start(&pa, dir, "a"))) return 3;
        g_hold_ms = 10;
        g_holds_left = -1;
        if (!(b = start(&pb, dir, "b"))) return 3;
        g_holds_left = 0;
        logged = log_alternately(a, b, 100);
    } else if (!strcmp(mode, "held-first")) {
        g_hold_ms = 50;
        g_holds_left = 1;
        if (!(a = start(&pa, dir, "a"))) return 3;
        printf("wall_minus_mono %lld\n", (long long)wall_minus_mono());
    } else if (!strcmp(mode, "stepped") || !strcmp(mode, "stepped-5ms") || !strcmp(mode, "nudged")) {
        if (!(a = start(&pa, dir, "a"))) return 3;
        wpt_wall_shift_ns = !strcmp(mode, "stepped") ? 1000 * 1000000000LL
                            : !strcmp(mode, "nudged") ? 200 * 1000LL : 5 * 1000000LL;
        if (!(b = start(&pb, dir, "b"))) return 3;
        logged = log_alternately(a, b, 100);
    } else if (!strcmp(mode, "cycles")) {
        wpt_test_cycles = read_cycles;
        wpt_test_cycles_per_ns = CYCLES_PER_SECOND / 1e9;
        g_clock_type = EVENT_TRACE_CLOCK_CPUCYCLE;
        uint64_t started = g_cycles;
        if (!(a = start(&pa, dir, "a"))) return 3;
        static const uint32_t seconds[] = {1, 60, 1000, 0};
        for (unsigned i = 0; i < 4; i++) {
            uint32_t v = seconds[i];
            g_cycles = v ? started + v * CYCLES_PER_SECOND : started - CYCLES_PER_SECOND;
            if (TraceMessage(a, 0x2B, &g_msg, 10, &v, sizeof v, NULL) == 0) logged++;
        }
    } else {
        return 2;
    }
    wpt_test_point = NULL;
    if (a && ControlTrace(a, NULL, &pa.p, EVENT_TRACE_CONTROL_STOP)) return 4;
    if (b && ControlTrace(b, NULL, &pb.p, EVENT_TRACE_CONTROL_STOP)) return 4;
    printf("logged %d\n", logged);
    return 0;
}
