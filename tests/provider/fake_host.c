/* fake_host.c: made-up peers of the control plane: a session whose host answers as a mode
 * says, a registry entry another process of the user wrote (tests/provider/test_fake_host.py
 * builds it with WPT_TEST_POINTS and runs it with a runtime directory of its own).
 *
 *     fake_host MODE OUT_DIR
 * This process registers a real-time session "fake-host" in slot 1 as its own (RUNNING, its
 * host this process), and a thread of it plays the host at s-1.sock while the main thread
 * subscribes to the session (wpptrace_rt_subscribe), then queries it (ControlTrace QUERY).
 * MODE is how the host answers each:
 *     busy        an ERROR_BUSY reply
 *     refused     an ERROR_WMI_INSTANCE_NOT_FOUND reply (a host of another generation)
 *     busy-closed an ERROR_BUSY reply, the connection closed before the request was sent, as a
 *                 host with no room for another connection does
 *     silent      no reply (the wait for it shortened to 300 ms): alive, slow to answer
 *     silent-flush  as silent, for a FLUSH and then an UPDATE (a host stopped): the wait for
 *                 their reply after the host took them up made 10 minutes, which they must
 *                 not wait (the request was never taken up)
 *     slow-flush  the FLUSH and the UPDATE taken up at once (WPT_ACCEPTED, said as a host says
 *                 it: to a caller that asks), answered a second later, past the 300 ms wait for
 *                 a request to be taken up: they must succeed
 *     hangup      the connection closed without a reply: gone
 *     garbage     a frame with another magic
 *     long        a success reply with more payload than a subscription's answer has (a
 *                 QUERY takes what it knows of a longer reply, as of a newer build's)
 *     unbound     nobody listens at the path
 *     backlog     the socket listens, nobody accepts, and its backlog is full
 *     consumers   (a real host) a real-time session with as many consumers as its host serves
 *     odd-enable  (no host) the registry holds an enable entry naming a LoggerId far beyond its
 *                 table; this process, a provider, lists the providers and gets an ENABLE that
 *                 matches the entry at its endpoint, as another process would send it
 *     made-up-disable  (a real host) this process enables its provider for a session it
 *                 started, then gets at its endpoint a DISABLE for the provider's GUID and one
 *                 for the whole session, as another process could make them up; then it stops
 *                 the session
 * prints "subscribe RC query RC" ("flush RC update RC" for silent-flush and slow-flush, "subscribed N subscribe RC" for consumers, "listed RC
 * providers N enable RC enabled 0|1" for odd-enable, "disable_guid RC disable_all RC
 * enabled_after 0|1 enabled_stopped 0|1" for made-up-disable); exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const char *g_mode;
static int g_listen = -1;
static sem_t g_replied;

static int is(const char *mode) { return strcmp(g_mode, mode) == 0; }

/* The session as a host registers it, this process its host. */
static int register_fake(void) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg || reg->loggers[1].state != WPT_FREE) return -1;
    wpt_reg_logger *e = &reg->loggers[1];
    e->generation++;
    e->state = WPT_RUNNING;
    e->host_pid = (uint32_t)getpid();
    e->host_start = wpt_process_start(e->host_pid);
    e->flags = WPT_REG_REALTIME | WPT_REG_SAYS_ACCEPTED;
    e->log_file_mode = EVENT_TRACE_REAL_TIME_MODE;
    e->clock_type = EVENT_TRACE_CLOCK_PERFCOUNTER;
    snprintf(e->name, sizeof e->name, "fake-host");
    wpt_registry_unlock();
    return 0;
}

/* busy-closed: the request waits, connected, until the host answered and closed. */
static void at_request_connected(int point) {
    if (point == WPT_POINT_REQUEST_CONNECTED) sem_wait(&g_replied);
}

/* One connection answered as the mode says. */
static void answer(int fd) {
    if (is("busy-closed")) {
        wpt_ipc_send(fd, WPT_REPLY, ERROR_BUSY, NULL, 0, -1, 1000);
        close(fd);
        sem_post(&g_replied);
        return;
    }
    wpt_frame f;
    void *payload = NULL;
    if (wpt_ipc_recv(fd, &f, &payload, WPT_WIRE_MAX_CONTROL, NULL, 5000) != 0) {
        close(fd);
        return;
    }
    free(payload);
    if (is("busy") || is("refused")) {
        wpt_ipc_send(fd, WPT_REPLY, is("busy") ? ERROR_BUSY : ERROR_WMI_INSTANCE_NOT_FOUND, NULL, 0,
                     -1, 1000);
    } else if (is("garbage")) {
        wpt_frame bad = {0x21444142u, WPT_REPLY, 0, 0};
        ssize_t w = write(fd, &bad, sizeof bad);
        (void)w;
    } else if (is("long")) {
        char more[64] = {0};
        wpt_ipc_send(fd, WPT_REPLY, ERROR_SUCCESS, more, sizeof more, -1, 1000);
    } else if (is("slow-flush")) {
        if (f.kind & WPT_REQ_SAY_ACCEPTED)     /* as a host does: only to a caller that asks */
            wpt_ipc_send(fd, WPT_ACCEPTED, ERROR_SUCCESS, NULL, 0, -1, 1000);
        usleep(1000 * 1000);
        wpt_ipc_send(fd, WPT_REPLY, ERROR_SUCCESS, NULL, 0, -1, 1000);
    } else if (is("silent") || is("silent-flush")) {
        char c;
        while (read(fd, &c, 1) > 0) {}     /* until the caller gives up */
    }
    close(fd);                             /* hangup: no reply at all */
}

/* The subscription's connection, then the QUERY's. */
static void *host_main(void *arg) {
    (void)arg;
    for (int served = 0; served < 2; served++) {
        struct pollfd p = {g_listen, POLLIN, 0};
        if (poll(&p, 1, 10000) != 1) return NULL;
        int fd = wpt_ipc_accept(g_listen, 0, NULL, NULL);
        if (fd < 0) return NULL;
        answer(fd);
    }
    return NULL;
}

static int listen_unaccepted(const char *path, int *filler) {
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof a.sun_path) return -1;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 0) != 0) return -1;
    /* one connection waiting fills a backlog of 0 */
    *filler = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (*filler < 0 || connect(*filler, (struct sockaddr *)&a, sizeof a) != 0) return -1;
    return fd;
}

/* sets g_enabled on an enable only (odd_enable reads it after unregistering) */
static ULONG on_control(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    (void)buffer;
    if (code == WMI_ENABLE_EVENTS) atomic_store(&g_enabled, 1);
    return ERROR_SUCCESS;
}

static int made_up_disable(const char *dir) {
    static const GUID control = {0x7b4d3e22, 0x2e3f, 0x4c6b, {1, 2, 3, 4, 5, 6, 7, 8}};
    static const GUID message = {0x7b4d3e23, 0x2e3f, 0x4c6b, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACEHANDLE h;
    if (start(dir, "made-up", &h) != ERROR_SUCCESS) return 3;
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(track_control, NULL, &control, 1, &reg, NULL, NULL, &registration)) return 4;
    if (EnableTrace(1, 0x5, 4, &control, h) != ERROR_SUCCESS || !atomic_load(&g_enabled)) return 5;
    char path[256];
    if (wpt_socket_path(path, sizeof path, 'p', (uint32_t)getpid()) != 0) return 6;
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    msg.guid = control;
    msg.version = UINT64_MAX;
    msg.logger_handle = atomic_load(&g_logger);
    ULONG disable_guid = wpt_ipc_call(path, WPT_REQ_DISABLE, 0, &msg, sizeof msg, NULL, 0, NULL, 5000);
    memset(&msg.guid, 0, sizeof msg.guid);
    msg.logger_handle = h;
    ULONG disable_all = wpt_ipc_call(path, WPT_REQ_DISABLE, 0, &msg, sizeof msg, NULL, 0, NULL, 5000);
    int enabled_after = atomic_load(&g_enabled);
    if (stop(h) != ERROR_SUCCESS) return 7;
    int enabled_stopped = atomic_load(&g_enabled);
    UnregisterTraceGuids(registration);
    printf("disable_guid %u disable_all %u enabled_after %d enabled_stopped %d\n",
           (unsigned)disable_guid, (unsigned)disable_all, enabled_after, enabled_stopped);
    return 0;
}

static int odd_enable(void) {
    static const GUID control = {0x7b4d3e20, 0x2e3f, 0x4c6b, {1, 2, 3, 4, 5, 6, 7, 8}};
    static const GUID message = {0x7b4d3e21, 0x2e3f, 0x4c6b, {1, 2, 3, 4, 5, 6, 7, 8}};
    TRACE_GUID_REGISTRATION reg = {&message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(on_control, NULL, &control, 1, &reg, NULL, NULL, &registration)) return 3;
    ULONG rc;
    wpt_registry *r = wpt_registry_lock(1, &rc);
    if (!r) return 4;
    wpt_reg_enable *en = &r->enables[0];
    en->used = 1;
    en->guid = control;
    en->logger_id = 0xFFFE;              /* no slot: 64 of them, and the kernel's 0xFFFF */
    en->generation = 0;
    en->level = 4;
    en->flags = 0x5;
    en->clock_type = 1;
    en->version = wpt_next_version(r);
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);
    msg.guid = control;
    msg.version = en->version;
    msg.logger_handle = wpt_handle_of(en->logger_id, 0, en->flags, en->level);
    msg.clock_type = 1;
    wpt_registry_unlock();
    WPPTRACE_PROVIDER_INFO info[8];
    ULONG total = 0;
    ULONG listed = wpptrace_enumerate_providers(info, 8, &total);
    uint32_t enabled_here = 0;
    for (ULONG i = 0; i < total && i < 8; i++) enabled_here += info[i].IsEnable;
    char path[256];
    if (wpt_socket_path(path, sizeof path, 'p', (uint32_t)getpid()) != 0) return 5;
    ULONG answered = wpt_ipc_call(path, WPT_REQ_ENABLE, 0, &msg, sizeof msg, NULL, 0, NULL, 5000);
    UnregisterTraceGuids(registration);
    printf("listed %u providers %u enabled_entries %u enable %u enabled %d\n", (unsigned)listed,
           (unsigned)total, enabled_here, (unsigned)answered, atomic_load(&g_enabled));
    return 0;
}

static int consumers(void) {
    TRACEHANDLE h;
    if (start_rt("fake-host", &h) != ERROR_SUCCESS) return 3;
    wpptrace_rt_subscription *subs[80];
    int n = 0;
    ULONG rc = ERROR_SUCCESS;
    while (n < 80 && (rc = wpptrace_rt_subscribe("fake-host", &subs[n], NULL)) == ERROR_SUCCESS) n++;
    for (int i = 0; i < n; i++) wpptrace_rt_close(subs[i]);
    if (stop(h) != ERROR_SUCCESS) return 4;
    printf("subscribed %d subscribe %u\n", n, (unsigned)rc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_mode = argv[1];
    if (is("consumers")) return consumers();
    if (is("odd-enable")) return odd_enable();
    if (is("made-up-disable")) return made_up_disable(argv[2]);
    sem_init(&g_replied, 0, 0);
    if (register_fake() != 0) return 3;
    char path[256];
    if (wpt_socket_path(path, sizeof path, 's', 1) != 0) return 4;
    int filler = -1;
    pthread_t host;
    int hosted = 0;
    if (is("backlog")) {
        if ((g_listen = listen_unaccepted(path, &filler)) < 0) return 5;
    } else if (!is("unbound")) {
        if ((g_listen = wpt_ipc_listen(path)) < 0) return 5;
        if (pthread_create(&host, NULL, host_main, NULL) != 0) return 6;
        hosted = 1;
    }
    if (is("silent") || is("silent-flush") || is("slow-flush")) wpt_host_reply_ms = 300;
    if (is("silent-flush") || is("slow-flush")) {
        wpt_host_long_reply_ms = 600000;
        ULONG flushed = control_by_name("fake-host", EVENT_TRACE_CONTROL_FLUSH);
        ULONG updated = control_by_name("fake-host", EVENT_TRACE_CONTROL_UPDATE);
        pthread_join(host, NULL);
        printf("flush %u update %u\n", (unsigned)flushed, (unsigned)updated);
        return 0;
    }
    if (is("busy-closed")) wpt_test_point = at_request_connected;
    wpptrace_rt_subscription *sub = NULL;
    ULONG subscribed = wpptrace_rt_subscribe("fake-host", &sub, NULL);
    if (sub) wpptrace_rt_close(sub);
    ULONG queried = query_by_name("fake-host");
    wpt_test_point = NULL;
    if (hosted) pthread_join(host, NULL);
    printf("subscribe %u query %u\n", (unsigned)subscribed, (unsigned)queried);
    return 0;
}
