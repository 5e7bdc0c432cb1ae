/* fake_host.c: a real-time subscription to a session whose host answers as a mode says
 * (tests/provider/test_fake_host.py builds it with WPT_TEST_POINTS and runs it with a runtime
 * directory of its own).
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
 *     hangup      the connection closed without a reply: gone
 *     garbage     a frame with another magic
 *     long        a success reply with more payload than a subscription's answer has (a
 *                 QUERY takes what it knows of a longer reply, as of a newer build's)
 *     unbound     nobody listens at the path
 *     backlog     the socket listens, nobody accepts, and its backlog is full
 *     consumers   (a real host) a real-time session with as many consumers as its host serves
 * prints "subscribe RC query RC" ("subscribed N subscribe RC" for consumers); exits 0.
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
    e->flags = WPT_REG_REALTIME;
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
    } else if (is("silent")) {
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
        int fd = wpt_ipc_accept(g_listen, NULL, NULL);
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

static int consumers(void) {
    typedef struct { EVENT_TRACE_PROPERTIES p; char names[1024]; } props_block;
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    b.p.BufferSize = 1;
    b.p.LogFileMode = EVENT_TRACE_REAL_TIME_MODE;
    TRACEHANDLE h;
    if (StartTrace(&h, "fake-host", &b.p) != ERROR_SUCCESS) return 3;
    wpptrace_rt_subscription *subs[80];
    int n = 0;
    ULONG rc = ERROR_SUCCESS;
    while (n < 80 && (rc = wpptrace_rt_subscribe("fake-host", &subs[n], NULL)) == ERROR_SUCCESS) n++;
    for (int i = 0; i < n; i++) wpptrace_rt_close(subs[i]);
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    if (ControlTrace(h, NULL, &b.p, EVENT_TRACE_CONTROL_STOP) != ERROR_SUCCESS) return 4;
    printf("subscribed %d subscribe %u\n", n, (unsigned)rc);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_mode = argv[1];
    if (is("consumers")) return consumers();
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
    if (is("silent")) wpt_host_reply_ms = 300;
    if (is("busy-closed")) wpt_test_point = at_request_connected;
    wpptrace_rt_subscription *sub = NULL;
    ULONG subscribed = wpptrace_rt_subscribe("fake-host", &sub, NULL);
    if (sub) wpptrace_rt_close(sub);
    typedef struct { EVENT_TRACE_PROPERTIES p; char names[1024]; } props_block;
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    ULONG queried = ControlTrace(0, "fake-host", &b.p, EVENT_TRACE_CONTROL_QUERY);
    wpt_test_point = NULL;
    if (hosted) pthread_join(host, NULL);
    printf("subscribe %u query %u\n", (unsigned)subscribed, (unsigned)queried);
    return 0;
}
