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
 *       taken      as removed, and the registry made again gives the slot and generation to
 *                  another process's running session (this one's parent) with a provider
 *                  enabled on it; this process listens at a provider socket of its own
 *       refused    as removed, pidfd_open refused (EPERM, as an older container's seccomp
 *                  profile does) when StartTrace makes the host stop
 * WPPTRACE_RUNTIME_DIR names the runtime directory (made by the test). Prints "name value"
 * pairs of integers:
 *   start    StartTrace's result          handle   1 if it handed out a handle
 *   joins    the sessions this thread went to join after the host answered
 *   query    a QUERY by the handle        stop     a STOP by the handle (put-back)
 *   ended    1 if the host ended (within 60 s)
 *   kept     (claimed) 1 if the other process's claim was still there when StartTrace
 *            returned                     left     and after the host ended
 *   enabled  (taken) 1 if the other session's enable was still in the registry once the host
 *            ended                        told     the requests the provider socket was sent
 *   unstopped  (refused) wpptrace_hosts_not_stopped()
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <time.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const char *g_out;
static pid_t g_main_pid;
static pthread_t g_main_thread;
static _Atomic int g_armed, g_answered, g_joins;
static int g_mode;                          /* 0 removed, 1 put-back, 2 claimed, 3 taken,
                                             * 4 refused */
static uint32_t g_slot, g_generation, g_host_pid;

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
static void remove_registry_enabled(const wpt_reg_logger *entry, const wpt_reg_enable *enable) {
    const char *dir = getenv("WPPTRACE_RUNTIME_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/registry", dir ? dir : ".");
    unlink(path);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return;
    if (entry) reg->loggers[g_slot] = *entry;
    if (enable) reg->enables[0] = *enable;
    wpt_registry_unlock();
}

static void remove_registry(const wpt_reg_logger *entry) {
    remove_registry_enabled(entry, NULL);
}

static const GUID g_other_guid = {0x5eb0c1a7, 0x2d41, 0x4f0e, {0x9a, 0x61, 0x13, 0x8c, 0x44, 0x07, 0xbe, 0x52}};

/* The slot and generation given to another process's running session (this one's parent's)
 * in the registry made again, with a provider enabled on it. */
static void give_slot_to_other(const wpt_reg_logger *host) {
    wpt_reg_logger other = *host;
    other.state = WPT_RUNNING;
    other.host_pid = (uint32_t)getppid();
    other.host_start = wpt_process_start(other.host_pid);
    snprintf(other.name, sizeof other.name, "other-b");
    wpt_reg_enable en;
    memset(&en, 0, sizeof en);
    en.used = 1;
    en.logger_id = (uint16_t)g_slot;
    en.generation = (uint8_t)g_generation;
    en.level = 4;
    en.guid = g_other_guid;
    en.clock_type = host->clock_type;
    en.version = 1;
    remove_registry_enabled(&other, &en);
}

/* Is the other session's enable still in the registry? */
static int other_enabled(void) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (!reg) return 0;
    int there = 0;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        const wpt_reg_enable *en = &reg->enables[i];
        if (en->used && en->logger_id == g_slot && en->generation == (uint8_t)g_generation
            && memcmp(&en->guid, &g_other_guid, sizeof en->guid) == 0)
            there = 1;
    }
    wpt_registry_unlock();
    return there;
}

/* A provider socket of this process (p-<pid>.sock): the requests sent to it are counted (none
 * answered). */
static int g_listener = -1;
static _Atomic int g_told;
static char g_listen_path[4096];

static void *listen_main(void *arg) {
    (void)arg;
    for (;;) {
        int fd = accept(g_listener, NULL, NULL);
        if (fd < 0) return NULL;
        char head[16];
        if (read(fd, head, sizeof head) > 0) atomic_fetch_add(&g_told, 1);
        close(fd);
    }
}

static int listen_as_provider(void) {
    const char *dir = getenv("WPPTRACE_RUNTIME_DIR");
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    snprintf(g_listen_path, sizeof g_listen_path, "%s/p-%u.sock", dir ? dir : ".", (unsigned)getpid());
    if (strlen(g_listen_path) >= sizeof a.sun_path) return -1;
    memcpy(a.sun_path, g_listen_path, strlen(g_listen_path) + 1);
    g_listener = socket(AF_UNIX, SOCK_STREAM, 0);
    if (g_listener < 0 || bind(g_listener, (struct sockaddr *)&a, sizeof a) != 0
        || listen(g_listener, 16) != 0)
        return -1;
    pthread_t t;
    if (pthread_create(&t, NULL, listen_main, NULL) != 0) return -1;
    pthread_detach(t);
    return 0;
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
        if (g_mode == 3) give_slot_to_other(&host);
        else remove_registry(g_mode == 1 ? &host : NULL);
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
           : strcmp(argv[1], "claimed") == 0 ? 2 : strcmp(argv[1], "taken") == 0 ? 3
           : strcmp(argv[1], "refused") == 0 ? 4 : -1;
    if (g_mode < 0) return 2;
    g_out = argv[2];
    g_main_pid = getpid();
    g_main_thread = pthread_self();
    if (g_mode == 2) wpt_host_answer_ms = 1000;
    if (g_mode == 3 && listen_as_provider() != 0) return 1;
    if (g_mode == 4) atomic_store(&wpt_test_pidfd_refused, 1);
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
    int ended = g_host_pid ? wait_gone((pid_t)g_host_pid) : -1;
    if (ended == 0) kill((pid_t)g_host_pid, SIGTERM);
    if (g_mode == 2) {
        printf(" kept %d left %d", kept, claim_there());
        forget_claim();
    }
    if (g_mode == 3) {
        printf(" enabled %d told %d", other_enabled(), atomic_load(&g_told));
        forget_claim();
        unlink(g_listen_path);
    }
    if (g_mode == 4) printf(" unstopped %u", (unsigned)wpptrace_hosts_not_stopped());
    printf(" ended %d\n", ended);
    return 0;
}
