/* etw_ipc.c: the control plane's sockets and framing.
 *
 * Unix stream sockets in the runtime directory. Every message is a frame: a 16-byte header
 * (magic, kind, payload length, status) and the payload; a file descriptor (a session's
 * memory) travels as SCM_RIGHTS with the header. Both ends check the peer's credentials
 * (SO_PEERCRED): a process of another user is refused even if it reached the socket. All
 * waits are bounded by the caller's timeout; a malformed frame fails with EPROTO.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include "_etw_internal.h"

#ifdef WPT_TEST_POINTS
int wpt_test_request_fd = -1;
#endif

static int make_address(const char *path, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n >= sizeof a->sun_path) return -1;
    memcpy(a->sun_path, path, n + 1);
    return 0;
}

static int peer_is_us(int fd, struct ucred *cred) {
    socklen_t len = sizeof *cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, cred, &len) != 0) return 0;
    return cred->uid == geteuid();
}

int wpt_ipc_socket(void) {
    return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

int wpt_ipc_listen_on(int fd, const char *path) {
    struct sockaddr_un a;
    if (make_address(path, &a) != 0) return -1;
    /* the runtime directory checked again right before the bind: it may have been removed
     * and made again by someone else since it was last used */
    if (wpt_runtime_dir(NULL) != ERROR_SUCCESS) { errno = EACCES; return -1; }
    unlink(path);                           /* a stale socket of a process that is gone */
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || chmod(path, 0600) != 0 || listen(fd, 64) != 0)
        return -1;
    return 0;
}

int wpt_ipc_listen(const char *path) {
    int fd = wpt_ipc_socket();
    if (fd < 0) return -1;
    if (wpt_ipc_listen_on(fd, path) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

int wpt_ipc_accept(int listen_fd, int flags, uint32_t *peer_pid, uint32_t *peer_uid) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | flags);
    if (fd < 0) return -1;
    struct ucred cred = {0, 0, 0};
    int ok = peer_is_us(fd, &cred);
    if (peer_pid) *peer_pid = (uint32_t)cred.pid;
    if (peer_uid) *peer_uid = (uint32_t)cred.uid;
    if (!ok) {
        close(fd);
        errno = EACCES;
        return -2;
    }
    return fd;
}

static int wait_for(int fd, short events, int64_t deadline) {
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            int64_t left = deadline - wpt_mono_ms();
            if (left <= 0) { errno = ETIMEDOUT; return -1; }
            timeout = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = {fd, events, 0};
        int rc = poll(&p, 1, timeout);
        if (rc > 0) return 0;
        if (rc == 0) { errno = ETIMEDOUT; return -1; }
        if (errno != EINTR) return -1;
    }
}

static int64_t deadline_of(int timeout_ms) {
    return timeout_ms < 0 ? -1 : wpt_mono_ms() + timeout_ms;
}

int wpt_ipc_client(const char *path, ULONG *rc) {
    struct sockaddr_un a;
    if (make_address(path, &a) != 0) { *rc = ERROR_BAD_PATHNAME; return -1; }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { *rc = wpt_win32_of_errno(errno, ERROR_OUTOFMEMORY); return -1; }
    *rc = ERROR_SUCCESS;
    return fd;
}

int wpt_ipc_connect(const char *path, int timeout_ms, ULONG *rc) {
    int fd = wpt_ipc_client(path, rc);
    return fd < 0 ? -1 : wpt_ipc_connect_on(fd, path, timeout_ms, rc);
}

int wpt_ipc_connect_on(int fd, const char *path, int timeout_ms, ULONG *rc) {
    struct sockaddr_un a;
    if (make_address(path, &a) != 0) {
        close(fd);
        *rc = ERROR_BAD_PATHNAME;
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        if (e == EAGAIN || e == EINPROGRESS) {
            /* the listener's backlog is full: retry until the deadline */
            int64_t deadline = deadline_of(timeout_ms);
            while (e == EAGAIN || e == EINPROGRESS) {
                struct timespec nap = {0, 2 * 1000 * 1000};
                nanosleep(&nap, NULL);
                if (deadline >= 0 && wpt_mono_ms() >= deadline) break;
                e = connect(fd, (struct sockaddr *)&a, sizeof a) == 0 ? 0 : errno;
                if (e == EISCONN) e = 0;
            }
        }
        if (e) {
            close(fd);
            *rc = e == EACCES || e == EPERM ? ERROR_ACCESS_DENIED
                 : (e == EAGAIN || e == EINPROGRESS) ? ERROR_BUSY : ERROR_WMI_INSTANCE_NOT_FOUND;
            return -1;
        }
    }
    struct ucred cred;
    if (!peer_is_us(fd, &cred)) {
        close(fd);
        *rc = ERROR_ACCESS_DENIED;
        return -1;
    }
    *rc = ERROR_SUCCESS;
    return fd;
}

/* Send one frame by `deadline` (wpt_mono_ms; -1: none). */
static int send_by(int fd, uint32_t kind, uint32_t status, const void *payload, uint32_t length,
                   int pass_fd, int64_t deadline) {
    wpt_frame head = {WPT_WIRE_MAGIC, kind, length, status};
    struct iovec iov[2] = {{&head, sizeof head}, {(void *)payload, length}};
    int niov = length ? 2 : 1;
    union {
        struct cmsghdr h;
        char room[CMSG_SPACE(sizeof(int))];
    } control;
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)niov;
    if (pass_fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.room;
        msg.msg_controllen = sizeof control.room;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
    }
    size_t total = sizeof head + length, sent = 0;
    while (sent < total) {
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN && wait_for(fd, POLLOUT, deadline) == 0) continue;
            return -1;
        }
        sent += (size_t)n;
        msg.msg_control = NULL;             /* the descriptor went with the first bytes */
        msg.msg_controllen = 0;
        while (n > 0 && msg.msg_iovlen) {  /* advance the iovecs past what was sent */
            if ((size_t)n >= msg.msg_iov->iov_len) {
                n -= (ssize_t)msg.msg_iov->iov_len;
                msg.msg_iov++;
                msg.msg_iovlen--;
            } else {
                msg.msg_iov->iov_base = (char *)msg.msg_iov->iov_base + n;
                msg.msg_iov->iov_len -= (size_t)n;
                n = 0;
            }
        }
    }
    return 0;
}

int wpt_ipc_send(int fd, uint32_t kind, uint32_t status, const void *payload, uint32_t length,
                 int pass_fd, int timeout_ms) {
    return send_by(fd, kind, status, payload, length, pass_fd, deadline_of(timeout_ms));
}

/* Read exactly n bytes; the first read may bring a descriptor. */
static int read_exact(int fd, void *buf, size_t n, int *got_fd, int64_t deadline) {
    size_t have = 0;
    while (have < n) {
        union {
            struct cmsghdr h;
            char room[CMSG_SPACE(sizeof(int))];
        } control;
        struct iovec iov = {(char *)buf + have, n - have};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.room;
        msg.msg_controllen = sizeof control.room;
        ssize_t r = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN && wait_for(fd, POLLIN, deadline) == 0) continue;
            return -1;
        }
        /* Every descriptor that came is ours to close: the first one is kept if the caller
         * wants one, the others (a peer may send several in one message) are closed. */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS
                || c->cmsg_len < CMSG_LEN(0))
                continue;
            size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < count; i++) {
                int passed;
                memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof passed);
                if (got_fd && *got_fd < 0) *got_fd = passed;
                else close(passed);
            }
        }
        /* control data cut short: more descriptors (or other data) than a frame of ours has */
        if (msg.msg_flags & MSG_CTRUNC) { errno = EPROTO; return -1; }
        if (r == 0) { errno = ECONNRESET; return -1; }
        have += (size_t)r;
    }
    return 0;
}

/* Receive one frame by `deadline` (wpt_mono_ms; -1: none). */
static int recv_by(int fd, wpt_frame *frame, void **payload, uint32_t max_length, int *received_fd,
                   int64_t deadline) {
    int passed = -1;
    if (read_exact(fd, frame, sizeof *frame, &passed, deadline) != 0) goto fail;
    if (frame->magic != WPT_WIRE_MAGIC || frame->length > max_length) {
        errno = EPROTO;
        goto fail;
    }
    void *buf = *payload;
    int owned = 0;
    if (!buf && frame->length) {
        buf = malloc(frame->length);
        if (!buf) { errno = ENOMEM; goto fail; }
        owned = 1;
    }
    if (frame->length && read_exact(fd, buf, frame->length, &passed, deadline) != 0) {
        if (owned) free(buf);
        goto fail;
    }
    if (owned) *payload = buf;
    if (received_fd) *received_fd = passed;
    else if (passed >= 0) close(passed);
    return 0;
fail:
    if (passed >= 0) close(passed);
    return -1;
}

int wpt_ipc_recv(int fd, wpt_frame *frame, void **payload, uint32_t max_length, int *received_fd,
                 int timeout_ms) {
    return recv_by(fd, frame, payload, max_length, received_fd, deadline_of(timeout_ms));
}

ULONG wpt_ipc_failure(int e) {
    return e == ETIMEDOUT ? ERROR_BUSY
         : e == EPROTO ? ERROR_BAD_FORMAT
         : wpt_win32_of_errno(e, ERROR_WMI_INSTANCE_NOT_FOUND);
}

/* A reply not handed to the caller: what wpt_ipc_recv allocated or received with it goes. */
static void drop_reply(void **reply, void *given, int *reply_fd) {
    if (reply_fd && *reply_fd >= 0) {
        close(*reply_fd);
        *reply_fd = -1;
    }
    if (*reply != given) {
        free(*reply);
        *reply = given;
    }
}

/* `accepted_ms`: the peer may first say it took the request up (WPT_ACCEPTED), after which
 * its reply is waited for that long (0: no such frame is expected). */
static ULONG open_on(int client, const char *path, uint32_t kind, uint32_t status, const void *payload,
                     uint32_t length, wpt_frame *frame, void **reply, uint32_t max_length,
                     int *reply_fd, int timeout_ms, int accepted_ms, int *conn) {
    ULONG rc;
    void *given = *reply;
    if (reply_fd) *reply_fd = -1;
    *conn = -1;
    if (client < 0 && (client = wpt_ipc_client(path, &rc)) < 0) return rc;
    /* one deadline for the whole request: connecting, sending and the reply */
    int64_t deadline = deadline_of(timeout_ms);
    int fd = wpt_ipc_connect_on(client, path, timeout_ms >= 0 && timeout_ms < 2000 ? timeout_ms : 2000, &rc);
    if (fd < 0) return rc;
#ifdef WPT_TEST_POINTS
    wpt_test_request_fd = fd;
#endif
    WPT_TEST_POINT(WPT_POINT_REQUEST_CONNECTED);
    /* A peer that is gone refuses the bytes at once (EPIPE); one that keeps the connection
     * but does not read or answer it in time is alive, only busy. A host that refuses a
     * connection it has no room for answers ERROR_BUSY at once and closes it, maybe before the
     * request went: its answer is read all the same. */
    int sent = send_by(fd, kind, status, payload, length, -1, deadline) == 0;
    int e = errno;
    if (!sent && e != ETIMEDOUT && recv_by(fd, frame, reply, max_length, reply_fd, wpt_mono_ms()) == 0
        && frame->kind == WPT_REPLY && frame->status != ERROR_SUCCESS) {
        drop_reply(reply, given, reply_fd);
        close(fd);
        return frame->status;
    }
    int got = sent ? recv_by(fd, frame, reply, max_length, reply_fd, deadline) : -1;
    if (got == 0 && accepted_ms && frame->kind == WPT_ACCEPTED) {
        drop_reply(reply, given, reply_fd);
        got = recv_by(fd, frame, reply, max_length, reply_fd, deadline_of(accepted_ms));
    }
    if (got != 0) {
        rc = wpt_ipc_failure(sent ? errno : e);
        close(fd);
        return rc;
    }
    if (frame->kind != WPT_REPLY) {
        drop_reply(reply, given, reply_fd);
        close(fd);
        return ERROR_BAD_FORMAT;
    }
    *conn = fd;
    return ERROR_SUCCESS;
}

ULONG wpt_ipc_open_on(int client, const char *path, uint32_t kind, uint32_t status, const void *payload,
                      uint32_t length, wpt_frame *frame, void **reply, uint32_t max_length,
                      int *reply_fd, int timeout_ms, int *conn) {
    return open_on(client, path, kind, status, payload, length, frame, reply, max_length, reply_fd, timeout_ms,
                   0, conn);
}

ULONG wpt_ipc_call(const char *path, uint32_t kind, uint32_t status, const void *payload,
                   uint32_t length, void *reply, uint32_t reply_size, int *reply_fd, int timeout_ms) {
    return wpt_ipc_call_on(-1, path, kind, status, payload, length, reply, reply_size, reply_fd, timeout_ms);
}

static ULONG call_on(int client, const char *path, uint32_t kind, uint32_t status, const void *payload,
                     uint32_t length, void *reply, uint32_t reply_size, int *reply_fd, int timeout_ms,
                     int accepted_ms) {
    wpt_frame frame;
    void *buf = NULL;
    int fd;
    ULONG rc = open_on(client, path, kind, status, payload, length, &frame, &buf, WPT_WIRE_MAX_CONTROL,
                       reply_fd, timeout_ms, accepted_ms, &fd);
    if (rc != ERROR_SUCCESS) return rc;
    close(fd);
    if (reply) {
        memset(reply, 0, reply_size);
        memcpy(reply, buf, frame.length < reply_size ? frame.length : reply_size);
    }
    free(buf);
    return frame.status;
}

ULONG wpt_ipc_call_on(int client, const char *path, uint32_t kind, uint32_t status, const void *payload,
                      uint32_t length, void *reply, uint32_t reply_size, int *reply_fd, int timeout_ms) {
    return call_on(client, path, kind, status, payload, length, reply, reply_size, reply_fd, timeout_ms, 0);
}

ULONG wpt_ipc_call_accepted_on(int client, const char *path, uint32_t kind, uint32_t status,
                               const void *payload, uint32_t length, void *reply, uint32_t reply_size,
                               int *reply_fd, int timeout_ms, int accepted_ms) {
    return call_on(client, path, kind, status, payload, length, reply, reply_size, reply_fd, timeout_ms,
                   accepted_ms);
}
