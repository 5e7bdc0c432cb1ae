/* start_claim_across_clean_up.c: StartTrace of a hosted session while only the runtime
 * directory's registry file is removed (an age-based clean-up of /tmp takes the old registry and leaves the
 * fresh socket and the directory), and this process finds the registry made again before the
 * handle is handed out (tests/provider/test_start_claim_across_clean_up.py builds it with the
 * core's test points and runs it).
 *
 *     start_claim_across_clean_up MODE OUT
 * MODE: removed    held once the host answered: the registry removed and made again here;
 *                  the host keeps its socket (nothing tells it to stop)
 *       put-back   the same, and the host's entry written into the registry made again, as
 *                  the host puts its session back there
 *       claimed    the host held before it binds its socket, StartTrace giving up waiting for
 *                  its answer; meanwhile the registry removed and made again, and the slot
 *                  and generation claimed there by another process (this one's parent)
 * WPPTRACE_RUNTIME_DIR names the runtime directory (made by the test). Prints "name value"
 * pairs of integers:
 *   start    StartTrace's result          handle   1 if it handed out a handle
 *   joins    the sessions this thread went to join after the host answered
 *   query    a QUERY by the handle        stop     a STOP by the handle (put-back)
 *   ended    1 if the host ended (within 60 s)
 *   kept     (claimed) 1 if the other process's claim was still there when StartTrace
 *            returned                     left     and after the host ended
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <time.h>
#include "_etw_internal.h"

static const char *g_out;
static pid_t g_main_pid;
static pthread_t g_main_thread;
static _Atomic int g_armed, g_answered, g_joins;
static int g_mode;                          /* 0 removed, 1 put-back, 2 claimed */
static uint32_t g_slot, g_generation, g_host_pid;

typedef struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props_block;

/* 1 once the process (not our child: never waited for) is gone or a zombie, 0 if it still runs
 * after 60 s. */
static int wait_gone(uint32_t pid) {
    struct timespec nap = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 3000; i++) {
        if (wpt_process_gone(pid)) return 1;
        nanosleep(&nap, NULL);
    }
    return wpt_process_gone(pid);
}

static void props_of(props_block *b, const char *file) {
    memset(b, 0, sizeof *b);
    b->p.Wnode.BufferSize = sizeof *b;
    b->p.LogFileMode = EVENT_TRACE_FILE_MODE_SEQUENTIAL;
    b->p.LoggerNameOffset = sizeof b->p;
    b->p.LogFileNameOffset = sizeof b->p + 1024;
    if (file && strlen(file) < sizeof b->names - 1024) memcpy(b->names + 1024, file, strlen(file) + 1);
}

static void out_path(char *path, size_t size, const char *name) {
    snprintf(path, size, "%s/%s", g_out, name);
}

/* The entry of the session started (by its name), copied; 0 if there is none. */
static int find_entry(wpt_reg_logger *copy) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 0;
    int found = 0;
    for (uint32_t i = 0; i < WPPTRACE_MAX_SESSIONS && !found; i++)
        if (reg->loggers[i].state != WPT_FREE && strcmp(reg->loggers[i].name, "hosted-s") == 0) {
            *copy = reg->loggers[i];
            g_slot = i;
            g_generation = copy->generation;
            found = 1;
        }
    wpt_registry_unlock();
    return found;
}

/* The registry file removed, as a clean-up of /tmp removes an old file, and made again by
 * this process (which finds the clean-up so); `entry`, if any, written there in the slot. */
static void remove_registry(const wpt_reg_logger *entry) {
    const char *dir = getenv("WPPTRACE_RUNTIME_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/registry", dir ? dir : ".");
    unlink(path);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return;
    if (entry) reg->loggers[g_slot] = *entry;
    wpt_registry_unlock();
}

static void at_point(int point) {
    if (getpid() != g_main_pid) {
        /* the host (a fork of this process): held before it binds its socket */
        if (point == WPT_POINT_HOST_FORKED && g_mode == 2) {
            char path[4096];
            out_path(path, sizeof path, "host.pid");
            FILE *f = fopen(path, "w");
            if (f) {
                fprintf(f, "%u\n", (unsigned)getpid());
                fclose(f);
            }
            out_path(path, sizeof path, "go");
            struct timespec nap = {0, 20 * 1000 * 1000};
            for (int i = 0; i < 3000 && access(path, F_OK) != 0; i++) nanosleep(&nap, NULL);
        }
        return;
    }
    if (point == WPT_POINT_JOIN_CHOSEN && atomic_load(&g_answered)
        && pthread_equal(pthread_self(), g_main_thread))
        atomic_fetch_add(&g_joins, 1);
    if (point == WPT_POINT_HOST_ANSWERED && g_mode != 2 && atomic_exchange(&g_armed, 0)) {
        wpt_reg_logger host;
        if (!find_entry(&host)) return;
        g_host_pid = host.host_pid;
        /* a host that puts its session back opened that registry, and checks requests against
         * its incarnation; this one never opened it, so its entry there says it checks none */
        host.flags &= ~(uint32_t)WPT_REG_CHECKS_INCARNATION;
        remove_registry(g_mode == 1 ? &host : NULL);
        atomic_store(&g_answered, 1);
    }
    if (point == WPT_POINT_HOST_UNANSWERED && g_mode == 2 && atomic_exchange(&g_armed, 0)) {
        wpt_reg_logger claim;
        if (!find_entry(&claim)) return;
        /* another process's claim of the slot and generation, in the registry made again */
        claim.host_pid = (uint32_t)getppid();
        claim.host_start = wpt_process_start(claim.host_pid);
        snprintf(claim.name, sizeof claim.name, "other-b");
        remove_registry(&claim);
    }
}

/* Is the other process's claim still in the slot? */
static int claim_there(void) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 0;
    const wpt_reg_logger *e = &reg->loggers[g_slot];
    int there = e->state == WPT_STARTING && e->generation == g_generation
             && e->host_pid == (uint32_t)getppid();
    wpt_registry_unlock();
    return there;
}

static void forget_claim(void) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return;
    if (reg->loggers[g_slot].host_pid == (uint32_t)getppid()) {
        GUID unused[1];
        wpt_registry_forget(reg, g_slot, unused, 0);
    }
    wpt_registry_unlock();
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_mode = strcmp(argv[1], "removed") == 0 ? 0 : strcmp(argv[1], "put-back") == 0 ? 1
           : strcmp(argv[1], "claimed") == 0 ? 2 : -1;
    if (g_mode < 0) return 2;
    g_out = argv[2];
    g_main_pid = getpid();
    g_main_thread = pthread_self();
    if (g_mode == 2) wpt_host_answer_ms = 1000;
    char file[4096];
    out_path(file, sizeof file, "s.etl");
    props_block b;
    props_of(&b, file);
    TRACEHANDLE h = 0;
    wpt_test_point = at_point;
    atomic_store(&g_armed, 1);
    ULONG start = StartTraceA(&h, "hosted-s", &b.p);
    int joins = atomic_load(&g_joins);
    int kept = g_mode == 2 ? claim_there() : 0;
    wpt_test_point = NULL;
    printf("start %u handle %d joins %d", (unsigned)start, h != 0, joins);
    if (g_mode == 1) {
        props_of(&b, NULL);
        ULONG query = h ? ControlTraceA(h, NULL, &b.p, EVENT_TRACE_CONTROL_QUERY) : ERROR_INVALID_HANDLE;
        props_of(&b, NULL);
        ULONG stop = h ? ControlTraceA(h, NULL, &b.p, EVENT_TRACE_CONTROL_STOP) : ERROR_INVALID_HANDLE;
        printf(" query %u stop %u", (unsigned)query, (unsigned)stop);
    }
    if (g_mode == 2) {
        char path[4096];
        out_path(path, sizeof path, "go");
        FILE *go = fopen(path, "w");
        if (go) fclose(go);
        out_path(path, sizeof path, "host.pid");
        FILE *f = fopen(path, "r");
        unsigned pid = 0;
        if (f) {
            if (fscanf(f, "%u", &pid) != 1) pid = 0;
            fclose(f);
        }
        g_host_pid = pid;
    }
    int ended = g_host_pid ? wait_gone(g_host_pid) : -1;
    if (ended == 0) kill((pid_t)g_host_pid, SIGTERM);
    if (g_mode == 2) {
        printf(" kept %d left %d", kept, claim_there());
        forget_claim();
    }
    printf(" ended %d\n", ended);
    return 0;
}
