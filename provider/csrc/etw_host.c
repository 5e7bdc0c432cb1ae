/* etw_host.c: session host processes: how StartTrace makes one, and what it does.
 *
 * StartTrace prepares the session in the calling process (memory, .etl file: errors are
 * reported to the caller as on Windows), then forks twice: the host is a child of init in
 * its own session (setsid), so it outlives the caller and no terminal signal reaches it.
 * The host keeps only what it needs (the session memory, the .etl file, its log in the
 * runtime directory), starts the flusher, registers in the registry, answers the caller
 * through a pipe, and serves its control socket (s-<LoggerId>.sock) until STOP or SIGTERM:
 *     QUERY FLUSH UPDATE STOP   ControlTrace
 *     JOIN                      a provider process asks for the session memory (memfd)
 *     SUBSCRIBE                 a real-time consumer: buffers are streamed to it
 * Every connection is checked to come from our user; a malformed request gets an error
 * reply and a line in the host log, and is closed. The host stops cleanly (final header,
 * providers disabled, registry entry freed) on STOP, on SIGTERM, and when its socket or the
 * runtime directory is removed (then nobody could reach it to stop it).
 * The host never runs the caller's code: it is a fork of the caller that only runs the C
 * core, so a C program's sessions need no other executable.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

int wpt_in_host;
volatile int wpt_forking_host;        /* the atfork child handler leaves a host alone */

static int g_log_fd = -1;
static int g_signal_pipe[2] = {-1, -1};

/* "YYYY-MM-DDTHH:MM:SSZ " of a UTC time, by integer arithmetic (days to civil date, as in
 * Howard Hinnant's date algorithms): a host is forked from a process with other threads, and
 * gmtime_r/strftime take glibc's time-zone lock, which one of those threads may have held at
 * the fork, never to be released in the host. Returns the characters written (21). */
static int utc_stamp(char *out, size_t size, int64_t seconds) {
    int64_t days = seconds >= 0 ? seconds / 86400 : -((-seconds + 86399) / 86400);
    int64_t rest = seconds - days * 86400;
    days += 719468;
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t day = doy - (153 * mp + 2) / 5 + 1;
    int64_t month = mp < 10 ? mp + 3 : mp - 9;
    int64_t year = yoe + era * 400 + (month <= 2);
    return snprintf(out, size, "%04lld-%02lld-%02lldT%02lld:%02lld:%02lldZ ", (long long)year,
                    (long long)month, (long long)day, (long long)(rest / 3600),
                    (long long)(rest / 60 % 60), (long long)(rest % 60));
}

void wpt_host_log(const char *fmt, ...) {
    if (g_log_fd < 0) return;
    char line[768];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int n = utc_stamp(line, sizeof line, (int64_t)now.tv_sec);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0) return;
    n += m < (int)(sizeof line - (size_t)n - 1) ? m : (int)(sizeof line - (size_t)n - 2);
    line[n++] = '\n';
    ssize_t w = write(g_log_fd, line, (size_t)n);
    (void)w;
}

ULONG wpt_host_call(uint32_t slot, uint32_t meant_for, uint32_t kind, const void *payload,
                    uint32_t length, void *reply, uint32_t reply_size, int *reply_fd) {
    return wpt_host_call_in(0, slot, meant_for, kind, payload, length, reply, reply_size, reply_fd);
}

static ULONG host_socket_path(char *path, size_t size, uint32_t slot) {
    /* a runtime directory removed (by a clean-up) and not made again for this thread took the
     * session's host with it: the session is gone, as when its socket refuses the connection */
    return wpt_runtime_dir_missing_as_none(wpt_socket_path(path, size, 's', slot));
}

ULONG wpt_host_call_in(uint32_t incarnation, uint32_t slot, uint32_t meant_for, uint32_t kind,
                       const void *payload, uint32_t length, void *reply, uint32_t reply_size,
                       int *reply_fd) {
    wpt_host_prepared c;
    ULONG rc = wpt_host_call_prepare(&c, incarnation, slot, kind, payload, length);
    return rc != ERROR_SUCCESS ? rc : wpt_host_call_send(&c, meant_for, reply, reply_size, reply_fd);
}

ULONG wpt_host_open_in(uint32_t incarnation, uint32_t slot, uint32_t meant_for, uint32_t kind, wpt_frame *frame,
                       void **reply, uint32_t max_length, int *reply_fd, int timeout_ms, int *conn) {
    wpt_host_prepared c;
    ULONG rc = wpt_host_call_prepare(&c, incarnation, slot, kind, NULL, 0);
    if (rc != ERROR_SUCCESS) {
        if (reply_fd) *reply_fd = -1;
        *conn = -1;
        return rc;
    }
    return wpt_ipc_open_on(c.fd, c.path, c.request.kind, meant_for, c.request.payload, c.request.length, frame,
                           reply, max_length, reply_fd, timeout_ms, conn);
}

ULONG wpt_host_call_prepare(wpt_host_prepared *c, uint32_t incarnation, uint32_t slot, uint32_t kind,
                            const void *payload, uint32_t length) {
    c->fd = -1;
    ULONG rc = host_socket_path(c->path, sizeof c->path, slot);
    if (rc == ERROR_SUCCESS) rc = wpt_host_request_of(&c->request, incarnation, kind, payload, length);
    if (rc == ERROR_SUCCESS) c->fd = wpt_ipc_client(c->path, &rc);
    return rc;
}

ULONG wpt_host_call_send(wpt_host_prepared *c, uint32_t meant_for, void *reply, uint32_t reply_size,
                         int *reply_fd) {
    uint32_t kind = c->request.kind & ~(WPT_REQ_IN_INCARNATION | WPT_REQ_SAY_ACCEPTED);
    int fd = c->fd;
    c->fd = -1;                             /* wpt_ipc_call_on closes it */
    /* A FLUSH or UPDATE is waited for as any request until the host says it took it up (a host
     * stopped takes nothing up: ERROR_BUSY as for a QUERY), then as long as its buffers and
     * files may take to reach the disk. A STOP's flush to disk is waited for as long at once. */
    if (kind == WPT_REQ_FLUSH || kind == WPT_REQ_UPDATE)
        return wpt_ipc_call_accepted_on(fd, c->path, c->request.kind, meant_for, c->request.payload,
                                        c->request.length, reply, reply_size, reply_fd, WPT_HOST_REPLY_MS,
                                        WPT_HOST_LONG_REPLY_MS);
    int timeout = kind == WPT_REQ_STOP ? WPT_HOST_LONG_REPLY_MS : WPT_HOST_REPLY_MS;
    return wpt_ipc_call_on(fd, c->path, c->request.kind, meant_for, c->request.payload, c->request.length,
                           reply, reply_size, reply_fd, timeout);
}

ULONG wpt_host_request_of(wpt_host_request *out, uint32_t incarnation, uint32_t kind, const void *payload,
                          uint32_t length) {
    wpt_wire_incarnation prefix = {incarnation};
    uint32_t at = incarnation ? (uint32_t)sizeof prefix : 0;
    if (length > sizeof out->payload - at) return ERROR_INVALID_PARAMETER;   /* no request is longer */
    out->kind = incarnation ? kind | WPT_REQ_IN_INCARNATION : kind;
    out->length = at + length;
    if (at) memcpy(out->payload, &prefix, sizeof prefix);
    if (length) memcpy(out->payload + at, payload, length);
    return ERROR_SUCCESS;
}

/* The incarnation a request with WPT_REQ_IN_INCARNATION carries, taken off its kind and payload
 * (*f and *payload): 1; -1 for a payload too short to hold it; 0 for a request without it. */
static int take_incarnation(wpt_frame *f, const unsigned char **payload, uint32_t *incarnation) {
    if (!(f->kind & WPT_REQ_IN_INCARNATION)) return 0;
    wpt_wire_incarnation prefix;
    if (f->length < sizeof prefix) return -1;
    memcpy(&prefix, *payload, sizeof prefix);
    *incarnation = prefix.incarnation;
    f->kind &= ~WPT_REQ_IN_INCARNATION;
    f->length -= (uint32_t)sizeof prefix;
    *payload += sizeof prefix;
    return 1;
}

/* The log of the host of the session in `slot`, in the runtime directory `dir`: the one name
 * the host writes (through the directory's held descriptor) and callers point people at
 * (through its name). The NT Kernel Logger, LoggerId 0xFFFF, has slot 0. */
static ULONG host_log_path(char *out, size_t size, const char *dir, uint32_t slot) {
    int n = snprintf(out, size, "%s/s-%u.log", dir, slot);
    return n > 0 && (size_t)n < size ? ERROR_SUCCESS : ERROR_BAD_PATHNAME;
}

ULONG wpptrace_host_log_path(ULONG logger_id, char *path, ULONG size) {
    uint32_t slot = logger_id > 0xFFFF ? UINT32_MAX : wpt_handle_slot(logger_id);
    if (!path || !size || slot == UINT32_MAX) return ERROR_INVALID_PARAMETER;
    const char *dir = wpptrace_runtime_directory();
    if (!dir) return ERROR_ACCESS_DENIED;      /* no usable runtime directory */
    return host_log_path(path, size, dir, slot);
}

/* ---- inside the host ------------------------------------------------------------------- */

static void on_sigterm(int sig) {
    (void)sig;
    char c = 'T';
    ssize_t w = write(g_signal_pipe[1], &c, 1);
    (void)w;
}

static int cmp_int(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return x < y ? -1 : x > y;
}

static void close_range_of(unsigned from, unsigned to) {
    if (from > to) return;
    if (syscall(SYS_close_range, from, to, 0) == 0) return;
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (long fd = from; fd <= (long)to && fd < max; fd++) close((int)fd);
}

/* Close every descriptor but `keep` (the caller's pipes and sockets must not stay open in a
 * process that outlives it). */
static void close_all_but(int *keep, int n) {
    qsort(keep, (size_t)n, sizeof *keep, cmp_int);
    unsigned from = 3;
    for (int i = 0; i < n; i++) {
        if (keep[i] < (int)from) continue;
        close_range_of(from, (unsigned)keep[i] - 1);
        from = (unsigned)keep[i] + 1;
    }
    close_range_of(from, ~0u);
}

/* The caller's other sessions are none of the host's business: drop their mappings (so they
 * do not keep another session's memory alive), free their views and forget the caller's
 * private sessions. A view can be both published and a session's: each is freed once. */
static void drop_inherited_sessions(wpt_session *mine) {
    wpt_view *dropped[2 * WPPTRACE_MAX_SESSIONS];
    int ndropped = 0;
    for (int i = 0; i < WPPTRACE_MAX_SESSIONS; i++) {
        wpt_view *found[2] = {atomic_exchange(&wpt_views[i], NULL), NULL};
        wpt_session *other = &wpt_sessions[i];
        if (other != mine && atomic_load(&other->role) != WPT_ROLE_NONE) {
            found[1] = other->view;
            other->view = NULL;
            wpt_session_set_role(other, WPT_ROLE_NONE);
            atomic_store(&other->status, WPT_FREE);
        }
        for (int k = 0; k < 2; k++) {
            wpt_view *v = found[k];
            int seen = v == NULL || v == mine->view;
            for (int j = 0; j < ndropped && !seen; j++) seen = dropped[j] == v;
            if (seen) continue;
            dropped[ndropped++] = v;
            if (v->map) munmap(v->map, v->map_size);
            free(v->mapped);
            free(v);
        }
    }
}

/* How long a stopping host waits for the registry's lock before it completes its log file: a
 * lock is held only a moment, and one held longer (a process stopped holding it) must not use
 * up a stop's grace period (docker stop sends SIGKILL 10 s after SIGTERM) before the buffers
 * and the final header are written. Nothing is lost by giving up: the providers are disabled
 * after the file is complete. */
#define STOP_FIRST_LOCK_MS 1000

/* Tell every provider process (but `exclude`) that the session is going away, and take its
 * enables out of the registry: only while the registry's entry of the slot is this host's own.
 * After a clean-up the registry held now may give the slot and generation to another
 * process's session (a registry made again counts claims from 0 too): its enables and its
 * providers are not this host's to drop. A host left out of that registry changes nothing
 * there; its joined providers learn from the JOIN connection's end that the session is gone.
 * Unless `patiently`, the wait for the registry is short (STOP_FIRST_LOCK_MS): 0 when it was
 * given up (nothing done), so that the caller completes the log file first and comes back
 * patiently. */
/* Is the registry's entry of the session's slot still this host's? Across a clean-up the
 * registry made again may have given the slot and generation to another process's session. */
static int entry_is_ours(const wpt_registry *reg, const wpt_session *s) {
    const wpt_reg_logger *e = &reg->loggers[wpt_slot_of_id(s->logger_id)];
    return e->state != WPT_FREE && e->generation == s->registry_generation
        && e->host_pid == (uint32_t)getpid() && e->host_start == wpt_own_start();
}

static int disable_providers(wpt_session *s, uint32_t exclude, int patiently) {
    ULONG rc;
    int ours = 0;
    wpt_registry *reg = patiently ? wpt_registry_lock_patiently(1, &rc)
                                  : wpt_registry_lock_within(1, STOP_FIRST_LOCK_MS, &rc);
    if (!reg && rc == ERROR_BUSY && !patiently) return 0;
    if (reg) {
        ours = entry_is_ours(reg, s);
        for (int i = 0; i < WPT_MAX_ENABLES && ours; i++) {
            wpt_reg_enable *en = &reg->enables[i];
            if (en->used && en->logger_id == s->logger_id && en->generation == (uint8_t)s->registry_generation)
                en->used = 0;
        }
        wpt_registry_unlock();
    }
    if (!ours) return 1;
    wpt_wire_enable msg;
    memset(&msg, 0, sizeof msg);     /* GUID 0: everything enabled on this session */
    msg.logger_handle = wpt_handle_of(s->logger_id, (uint8_t)s->registry_generation, 0, 0);
    msg.clock_type = s->clock_type;
    msg.from_pid = exclude;
    wpt_broadcast(WPT_REQ_DISABLE, wpt_for_session(s->registry_generation), &msg);
    return 1;
}

static int socket_still_ours(const char *path, const struct stat *mine) {
    struct stat st;
    return mine->st_ino && stat(path, &st) == 0 && st.st_ino == mine->st_ino
        && st.st_dev == mine->st_dev;
}

/* Remove the socket file at `path` if it is still the one this host bound (`mine`), with the
 * registry locked: every host binds under that lock, so a path that still names ours is no
 * newer host's (our listening socket keeps its inode from being reused). */
static void remove_own_socket(const char *path, const struct stat *mine) {
    if (socket_still_ours(path, mine)) unlink(path);
}

typedef struct {
    wpt_session *session;
    uint32_t requester;
    int done_fd;
    const char *path;
    struct stat bound;          /* the socket file this host bound at path */
    ULONG result;               /* the STOP's: why the log file could not be completed (its
                                 * flush to the disk and close included), if so */
    pthread_t thread;           /* the stopper, if `threaded` (none could be had: the work was
                                 * done in the serve loop, and there is nothing to join) */
    int threaded;
} stop_job;

static void *stopper_main(void *arg) {
    stop_job *job = arg;
    wpt_session *s = job->session;
    wpt_runtime_dir_ending();
    /* A process stopped (SIGSTOP, a debugger) holding the registry's lock must not keep the log
     * file from being completed: the wait is short here, and once given up the providers are
     * disabled after the file is complete, with the same check of the entry, however long
     * that takes (as the entry's freeing below). */
    int disabled = disable_providers(s, job->requester, 0);
    /* The flush to the disk is part of the STOP's wait (this thread, not the serve loop, waits
     * for it): a failure of it is the STOP's answer, as for a private session. */
    job->result = wpt_session_stop(s);
    if (job->result != ERROR_SUCCESS)
        wpt_host_log("the log file %s could not be completed (error %u)", s->logfile_name,
                     (unsigned)job->result);
    wpt_rt_settle(s, 5000);     /* consumers that read get everything before STOP returns */
    if (!disabled) {
        /* the STOP's reply waits for this too (a StartTrace of the name that had the lock first
         * found the entry still running): the log says the file is not what is waited for */
        if (job->result == ERROR_SUCCESS && s->logfile_name[0])
            wpt_host_log("the log file %s is complete; waiting for the registry's lock to disable the "
                         "providers and free the entry", s->logfile_name);
        else
            wpt_host_log("waiting for the registry's lock to disable the providers and free the entry");
        disable_providers(s, job->requester, 1);
    }
    /* The entry is freed (its socket goes with it) only while it is still this host's: a
     * process that judged it gone (it may see another pid namespace) may have freed it, and a
     * newer session taken the slot and the path. Then only a socket file still ours goes. */
    uint32_t slot = wpt_slot_of_id(s->logger_id);
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock_patiently(1, &rc);
    if (reg) {
        if (entry_is_ours(reg, s)) {
            GUID unused[1];
            wpt_registry_forget(reg, slot, unused, 0);
        } else {
            remove_own_socket(job->path, &job->bound);
        }
        wpt_registry_unlock();
    } else {
        remove_own_socket(job->path, &job->bound);   /* no registry: no other host can bind */
    }
    WPT_TEST_POINT(WPT_POINT_STOPPER_FREED);
    char c = 'S';
    ssize_t w = write(job->done_fd, &c, 1);
    (void)w;
    return NULL;
}

/* The STOP's work in a thread of its own, so that the serve loop answers meanwhile; in the
 * caller's if no thread can be had (the process at its thread limit). */
static void start_stopper(stop_job *job) {
    int rc = wpt_thread_create(&job->thread, stopper_main, job);
    job->threaded = rc == 0;
    if (!job->threaded) {
        wpt_host_log("no thread for the STOP's work (error %d): done in the serve loop, which "
                     "answers nothing else meanwhile", rc);
        stopper_main(job);
    }
}

#define MAX_CONNS 256

typedef struct {
    int fd;
    uint32_t pid;
    int joined;                 /* a provider holding the session memory: watched for EOF */
    int64_t since;
    uint32_t have;
    unsigned char buf[sizeof(wpt_frame) + WPT_HOST_REQUEST_MAX];
} conn;

static void reply(int fd, ULONG status, const void *payload, uint32_t length, int pass_fd) {
    if (wpt_ipc_send(fd, WPT_REPLY, status, payload, length, pass_fd, 2000) != 0)
        wpt_host_log("reply to a client failed: %s", strerror(errno));
}

/* A FLUSH or UPDATE taken up: its caller waits for the work on the disk from now on. */
static void accepted(int fd) {
    if (wpt_ipc_send(fd, WPT_ACCEPTED, ERROR_SUCCESS, NULL, 0, -1, 2000) != 0)
        wpt_host_log("telling a client its request was taken up failed: %s", strerror(errno));
}

static const char *kind_name(uint32_t kind) {
    switch (kind) {
    case WPT_REQ_QUERY: return "QUERY";
    case WPT_REQ_FLUSH: return "FLUSH";
    case WPT_REQ_UPDATE: return "UPDATE";
    case WPT_REQ_STOP: return "STOP";
    case WPT_REQ_JOIN: return "JOIN";
    case WPT_REQ_SUBSCRIBE: return "SUBSCRIBE";
    case WPT_REQ_HOLD: return "HOLD";
    default: return "unknown";
    }
}

/* Handle one complete request; returns 1 if the connection is taken over (kept open by the
 * loop as a joined provider, handed to a consumer thread, or waiting for STOP). */
static int handle(wpt_session *s, conn *c, const wpt_frame *request, const unsigned char *payload,
                  stop_job *job, int *stopping, int *stop_reply_fd) {
    wpt_wire_props props;
    wpt_frame own = *request;
    const wpt_frame *f = &own;
    uint32_t incarnation = 0;
    int carried = take_incarnation(&own, &payload, &incarnation);
    int say_accepted = (own.kind & WPT_REQ_SAY_ACCEPTED) != 0;   /* (a caller of an earlier build: not) */
    own.kind &= ~WPT_REQ_SAY_ACCEPTED;
    if (carried < 0) {
        own.kind = 0;                                 /* malformed, said below */
    } else if (carried && incarnation != wpt_registry_incarnation()) {
        /* found in another registry: a clean-up removed the one this host is in */
        reply(c->fd, ERROR_WMI_INSTANCE_NOT_FOUND, NULL, 0, -1);
        return 0;
    }
    if (!wpt_request_is_for(f->status, s->registry_generation)) {
        reply(c->fd, ERROR_WMI_INSTANCE_NOT_FOUND, NULL, 0, -1);   /* meant for an older session */
        return 0;
    }
    switch (f->kind) {
    case WPT_REQ_QUERY:
        if (f->length) break;
        wpt_session_props(s, &props);
        reply(c->fd, ERROR_SUCCESS, &props, sizeof props, -1);
        return 0;
    case WPT_REQ_FLUSH:
        if (f->length) break;
        if (say_accepted) accepted(c->fd);
        wpt_session_flush(s);
        wpt_session_props(s, &props);
        reply(c->fd, ERROR_SUCCESS, &props, sizeof props, -1);
        return 0;
    case WPT_REQ_HOLD: {
        if (f->length != sizeof(uint32_t)) break;
        uint32_t hold;
        memcpy(&hold, payload, sizeof hold);
        wpt_session_hold(s, hold != 0);
        reply(c->fd, ERROR_SUCCESS, NULL, 0, -1);
        return 0;
    }
    case WPT_REQ_UPDATE: {
        if (f->length != sizeof(wpt_wire_update)) break;
        wpt_wire_update u;
        memcpy(&u, payload, sizeof u);
        if (u.has_logfile && !memchr(u.logfile, 0, sizeof u.logfile)) break;
        if (say_accepted) accepted(c->fd);
        ULONG rc = ERROR_SUCCESS, old_file_error = ERROR_SUCCESS, new_file_error = ERROR_SUCCESS;
        uint32_t switched = 0;
        if (u.flush_timer != s->flush_timer_field) {
            s->flush_timer_field = u.flush_timer;
            wpt_session_update_flush_timer(s, wpt_flush_interval(u.flush_timer, s->log_file_mode));
        }
        if (u.max_buffers > s->max_buffers) rc = wpt_session_grow_max(s, u.max_buffers);
        if (rc == ERROR_SUCCESS && u.has_logfile && u.logfile[0]) {
            if (u.logfile[0] != '/') rc = ERROR_BAD_PATHNAME;    /* the caller made it absolute */
            else rc = wpt_session_switch_file(s, u.logfile, &old_file_error, &new_file_error, &switched);
        }
        wpt_session_props(s, &props);
        props.old_file_error = old_file_error;     /* which file failed, apart */
        props.new_file_error = new_file_error;
        props.file_switched = switched;
        reply(c->fd, rc, &props, sizeof props, -1);
        return 0;
    }
    case WPT_REQ_JOIN: {
        if (f->length) break;
        if (*stopping) {
            reply(c->fd, ERROR_WMI_INSTANCE_NOT_FOUND, NULL, 0, -1);
            return 0;
        }
        /* the whole generation (older builds check its low 8 bits) */
        wpt_wire_join j = {s->view->map_size, s->logger_id, s->registry_generation};
        reply(c->fd, ERROR_SUCCESS, &j, sizeof j, s->memfd);
        c->joined = 1;
        return 1;
    }
    case WPT_REQ_SUBSCRIBE: {
        if (f->length) break;
        if (!s->realtime || *stopping) {
            reply(c->fd, ERROR_WMI_INSTANCE_NOT_FOUND, NULL, 0, -1);
            return 0;
        }
        ULONG served = wpt_rt_serve(s, c->fd);
        if (served != ERROR_SUCCESS) {
            reply(c->fd, served, NULL, 0, -1);     /* ERROR_BUSY: as many consumers as it serves */
            return 0;
        }
        c->fd = -1;              /* the consumer thread owns it now */
        return 1;
    }
    case WPT_REQ_STOP:
        if (f->length) break;
        if (*stopping) {
            reply(c->fd, ERROR_WMI_INSTANCE_NOT_FOUND, NULL, 0, -1);
            return 0;
        }
        *stopping = 1;
        *stop_reply_fd = c->fd;
        job->requester = c->pid;
        start_stopper(job);
        c->fd = -1;
        return 1;
    default:
        break;
    }
    /* as it came (an incarnation too short to read makes the kind 0 above) */
    wpt_host_log("malformed %s request (kind %#x, %u payload bytes) from pid %u: refused",
                 kind_name(request->kind & ~(WPT_REQ_IN_INCARNATION | WPT_REQ_SAY_ACCEPTED)), request->kind, request->length, c->pid);
    reply(c->fd, ERROR_INVALID_PARAMETER, NULL, 0, -1);
    return 0;
}

/* Read what is there; returns 1 when a whole frame is buffered, -1 on EOF/error/malformed. */
static int pump(conn *c, wpt_frame *f) {
    for (;;) {
        uint32_t need = sizeof(wpt_frame);
        if (c->have >= sizeof(wpt_frame)) {
            memcpy(f, c->buf, sizeof *f);
            if (f->magic != WPT_WIRE_MAGIC || f->length > WPT_HOST_REQUEST_MAX) return -2;
            need += f->length;
            if (c->have >= need) return 1;
        }
        ssize_t n = read(c->fd, c->buf + c->have, need - c->have);
        if (n == 0) return -1;
        if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 0 : -1;
        c->have += (uint32_t)n;
    }
}

/* The process that spawned this host (StartTrace's caller), told before the fork. */
static wpt_process_ref g_caller;

/* WPPTRACE_START_ENDS_WITH_CALLER: the host stops the session once its caller has ended,
 * watched through a pidfd (readable then), else (no pidfd: an old kernel, a sandbox refusing
 * the call) by its pid and start time each second. */
static int g_watch_caller, g_caller_fd = -1;
static _Atomic int g_caller_polled;     /* a test's: hosts started from now on poll */

void wpptrace_debug_watch_caller_by_polling(int on) {
    atomic_store(&g_caller_polled, on != 0);
}

/* 1 once the caller has ended (its pid gone, or another process's now); its start unknown or
 * unreadable: 0 (it is not taken for ended on a guess). */
static int caller_ended(void) {
    return g_caller.start && wpt_process_is(g_caller.pid, g_caller.start) == 0;
}

/* Start watching the caller. Called before the caller is answered: it waits for that answer,
 * so the pid is its own unless it was killed meanwhile, which its start time tells (then it
 * has ended: 1, the session is not started). */
static int watch_caller(void) {
    g_watch_caller = 1;
#ifdef SYS_pidfd_open
    if (!atomic_load(&g_caller_polled))
        g_caller_fd = (int)syscall(SYS_pidfd_open, (pid_t)g_caller.pid, 0);   /* close-on-exec */
#endif
    return caller_ended();
}

static void serve(wpt_session *s, int listen_fd, const char *path, const struct stat *mine) {
    conn *conns = calloc(MAX_CONNS, sizeof *conns);
    struct pollfd *pfd = calloc(MAX_CONNS + 4, sizeof *pfd);
    int done_pipe[2];
    if (!conns || !pfd || pipe2(done_pipe, O_CLOEXEC) != 0) {
        free(conns);
        free(pfd);
        return;
    }
    for (int i = 0; i < MAX_CONNS; i++) conns[i].fd = -1;
    stop_job job = {.session = s, .done_fd = done_pipe[1], .path = path, .bound = *mine,
                    .result = ERROR_SUCCESS};
    int stopping = 0, stop_reply_fd = -1;
    int64_t next_check = wpt_mono_ms() + 1000;
    /* Out of descriptors, a connection waiting to be accepted keeps the listening socket
     * readable: it rests until then instead of being polled again at once (a busy loop). */
    int64_t accept_paused_until = 0;
    int said_out_of_descriptors = 0;
    for (;;) {
        int n = 0;
        pfd[n++] = (struct pollfd){listen_fd, wpt_mono_ms() < accept_paused_until ? 0 : POLLIN, 0};
        pfd[n++] = (struct pollfd){g_signal_pipe[0], POLLIN, 0};
        pfd[n++] = (struct pollfd){done_pipe[0], POLLIN, 0};
        pfd[n++] = (struct pollfd){stopping ? -1 : g_caller_fd, POLLIN, 0};   /* -1: not polled */
        for (int i = 0; i < MAX_CONNS; i++)
            if (conns[i].fd >= 0) pfd[n++] = (struct pollfd){conns[i].fd, POLLIN, 0};
        int rc = poll(pfd, (nfds_t)n, 500);
        if (rc < 0 && errno != EINTR) break;
        int64_t now = wpt_mono_ms();
        if (pfd[2].revents) {                     /* the stopper finished: answer and leave */
            if (job.threaded) pthread_join(job.thread, NULL);
            if (stop_reply_fd >= 0) {
                wpt_wire_props props;
                wpt_session_props(s, &props);
                reply(stop_reply_fd, job.result, &props, sizeof props, -1);
                close(stop_reply_fd);
            }
            break;
        }
        int start_stop = 0;
        if (pfd[1].revents) {
            char c;
            while (read(g_signal_pipe[0], &c, 1) > 0) {}
            wpt_host_log("SIGTERM: stopping");
            start_stop = 1;
        }
        int caller_gone = pfd[3].revents != 0;      /* its pidfd, else its pid each second */
        if (now >= next_check) {
            next_check = now + 1000;
            if (g_watch_caller && g_caller_fd < 0 && caller_ended()) caller_gone = 1;
            if (!stopping && !socket_still_ours(path, mine)) {
                wpt_host_log("the control socket %s/%s was removed: stopping", wpt_runtime_dir_name(),
                             strrchr(path, '/') + 1);
                start_stop = 1;
            }
            /* a request that never completes is dropped */
            for (int i = 0; i < MAX_CONNS; i++)
                if (conns[i].fd >= 0 && !conns[i].joined && now - conns[i].since > 10000) {
                    wpt_host_log("request from pid %u incomplete after 10 s: closed", conns[i].pid);
                    close(conns[i].fd);
                    conns[i].fd = -1;
                }
        }
        if (caller_gone && !stopping) {
            wpt_host_log("the process that started the session (pid %u) ended: stopping",
                         (unsigned)g_caller.pid);
            start_stop = 1;
        }
        if (start_stop && !stopping) {
            stopping = 1;
            job.requester = 0;
            start_stopper(&job);
        }
        if (pfd[0].revents & POLLIN) {
            for (;;) {
                uint32_t pid = 0, uid = 0;
                int fd = wpt_ipc_accept(listen_fd, SOCK_NONBLOCK, &pid, &uid);
                if (fd == -2) {
                    wpt_host_log("refused a connection from pid %u of uid %u (not our user %u)",
                                 pid, uid, (unsigned)geteuid());
                    continue;
                }
                if (fd < 0) {
                    if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        accept_paused_until = now + 1000;
                        if (!said_out_of_descriptors++)
                            wpt_host_log("out of descriptors: new connections wait until some are free");
                    }
                    break;
                }
                int slot = -1;
                for (int i = 0; i < MAX_CONNS && slot < 0; i++)
                    if (conns[i].fd < 0) slot = i;
                if (slot < 0) {
                    /* alive, only busy: the caller must not take the host for gone */
                    wpt_host_log("too many connections: refused pid %u", pid);
                    wpt_ipc_send(fd, WPT_REPLY, ERROR_BUSY, NULL, 0, -1, 0);
                    close(fd);
                    continue;
                }
                conns[slot] = (conn){.fd = fd, .pid = pid, .since = now};
            }
        }
        for (int k = 4; k < n; k++) {
            if (!pfd[k].revents) continue;
            conn *c = NULL;
            for (int i = 0; i < MAX_CONNS && !c; i++)
                if (conns[i].fd == pfd[k].fd) c = &conns[i];
            if (!c) continue;
            if (c->joined) {              /* a provider process closed or died: nothing to do */
                char tmp[64];
                if (read(c->fd, tmp, sizeof tmp) <= 0) {
                    close(c->fd);
                    c->fd = -1;
                }
                continue;
            }
            wpt_frame f;
            int got = pump(c, &f);
            if (got == 0) continue;
            if (got < 0) {
                if (got == -2) {
                    wpt_host_log("malformed frame from pid %u (magic %#x, length %u): closed",
                                 c->pid, f.magic, f.length);
                    wpt_ipc_send(c->fd, WPT_REPLY, ERROR_INVALID_PARAMETER, NULL, 0, -1, 500);
                }
                close(c->fd);
                c->fd = -1;
                continue;
            }
            int kept = handle(s, c, &f, c->buf + sizeof f, &job, &stopping, &stop_reply_fd);
            if (!kept || c->fd < 0) {
                if (c->fd >= 0) close(c->fd);
                c->fd = -1;
            } else {
                c->have = 0;
            }
        }
    }
    for (int i = 0; i < MAX_CONNS; i++)
        if (conns[i].fd >= 0) close(conns[i].fd);
    free(conns);
    free(pfd);
}

/* The slot's entry is still the one the host's caller claimed. A caller that died while its
 * host started left an entry that counts as free: a newer session may have the slot, and its
 * host the socket path, by now. So may a claim of another process in a registry made again
 * after a clean-up, with the same slot and generation: the claimant's pid and start tell. */
static int claimed_by_caller(const wpt_reg_logger *e, const wpt_session *s) {
    return e->generation == s->registry_generation && e->state == WPT_STARTING
        && e->host_pid == g_caller.pid && (!g_caller.start || e->host_start == g_caller.start);
}

/* Open (empty) the host log and bind the control socket (which removes a stale file at the
 * path) only under the registry lock and while the entry is the caller's: never over a newer
 * session's log or socket. `bound` tells the socket file made from any file at the path later. */
static ULONG listen_if_ours(wpt_session *s, uint32_t slot, const char *path, const char *log_path,
                            int *listen_fd, struct stat *bound) {
    ULONG rc;
    wpt_registry *reg = wpt_registry_lock(1, &rc);
    if (!reg) return rc;
    if (!claimed_by_caller(&reg->loggers[slot], s)) {
        rc = ERROR_WMI_INSTANCE_NOT_FOUND;
    } else {
        g_log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if ((*listen_fd = wpt_ipc_listen(path)) < 0) rc = ERROR_ACCESS_DENIED;
        else if (stat(path, bound) != 0) memset(bound, 0, sizeof *bound);
    }
    wpt_registry_unlock();
    return rc;
}

/* What a host tells the process that spawned it, through a pipe, once it runs or failed. */
typedef struct {
    uint32_t rc;
    uint32_t pid;
    uint64_t start;             /* its wpt_own_start(): the host told from a later process */
} host_answer;

static void __attribute__((noreturn)) host_main(wpt_session *s, int ready_fd) {
    wpt_in_host = 1;
    WPT_TEST_POINT(WPT_POINT_HOST_FORKED);
    /* a clean process state: default signals, none blocked, no terminal, no caller's cwd */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    signal(SIGINT, SIG_IGN);
    umask(077);
    if (chdir("/") != 0) { /* stays where it was */ }
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0);
        dup2(null, 1);
        dup2(null, 2);
        close(null);
    }
    ULONG rc = ERROR_SUCCESS;
    char path[256], log_path[256];
    uint32_t slot = wpt_slot_of_id(s->logger_id);
    const char *dir;
    rc = wpt_runtime_dir(&dir);
    if (rc != ERROR_SUCCESS && rc != ERROR_BUSY) rc = ERROR_ACCESS_DENIED;
    if (rc == ERROR_SUCCESS) rc = host_log_path(log_path, sizeof log_path, dir, slot);
    int keep[6];
    int nkeep = 0;
    keep[nkeep++] = ready_fd;
    if (s->memfd >= 0) keep[nkeep++] = s->memfd;
    int lf = wpt_logfile_fd(s);
    if (lf >= 0) keep[nkeep++] = lf;
    int held_dir = wpt_runtime_dir_fd();      /* its paths go through this descriptor */
    if (held_dir >= 0) keep[nkeep++] = held_dir;
    close_all_but(keep, nkeep);
    drop_inherited_sessions(s);
    wpt_registry_after_fork();
    /* read while this process has its descriptors to spare: its entry records it, and an entry
     * whose start is not its process's is taken for a gone host's */
    if (rc == ERROR_SUCCESS && !wpt_own_start()) rc = ERROR_OUTOFMEMORY;
    if (pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) rc = wpt_win32_of_errno(errno, ERROR_OUTOFMEMORY);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigterm;
    sigaction(SIGTERM, &sa, NULL);
    int listen_fd = -1;
    struct stat bound;
    memset(&bound, 0, sizeof bound);
    if (rc == ERROR_SUCCESS) {
        rc = wpt_socket_path(path, sizeof path, 's', slot);
        WPT_TEST_POINT(WPT_POINT_HOST_LISTENING);
        if (rc == ERROR_SUCCESS) rc = listen_if_ours(s, slot, path, log_path, &listen_fd, &bound);
    }
    if (rc == ERROR_SUCCESS) WPT_TEST_POINT(WPT_POINT_HOST_BOUND);
    if (rc == ERROR_SUCCESS && s->ends_with_caller && watch_caller())
        rc = ERROR_WMI_INSTANCE_NOT_FOUND;          /* its caller was killed while it started */
    if (rc == ERROR_SUCCESS) rc = wpt_session_run(s);
    WPT_TEST_POINT(WPT_POINT_HOST_RUNNING);
    if (rc == ERROR_SUCCESS) {
        wpt_registry *reg = wpt_registry_lock(1, &rc);
        if (reg) {
            wpt_reg_logger *e = &reg->loggers[slot];
            if (claimed_by_caller(e, s)) {
                e->host_pid = (uint32_t)getpid();
                e->host_start = wpt_own_start();
                e->flags |= WPT_REG_CHECKS_INCARNATION | WPT_REG_SAYS_ACCEPTED;
                e->state = WPT_RUNNING;
            } else {
                /* the caller gave up (or died): the session is not started, nothing of it stays */
                rc = ERROR_WMI_INSTANCE_NOT_FOUND;
            }
            wpt_registry_unlock();
        }
    }
    if (rc != ERROR_SUCCESS) wpt_runtime_dir_ending();
    if (rc != ERROR_SUCCESS && listen_fd >= 0) {
        /* before the answer (the caller frees the entry then); the path may be a newer
         * session's host's by now */
        ULONG locked;
        wpt_registry *reg = wpt_registry_lock_patiently(1, &locked);
        if (reg) {
            remove_own_socket(path, &bound);
            wpt_registry_unlock();
        }
        close(listen_fd);
    }
    host_answer answer = {rc, (uint32_t)getpid(), wpt_own_start()};
    ssize_t w = write(ready_fd, &answer, sizeof answer);
    (void)w;
    close(ready_fd);
    if (rc != ERROR_SUCCESS) _exit(1);
    wpt_host_log("session \"%s\" (LoggerId %u) running, pid %u, file \"%s\"", s->name, s->logger_id,
                 (unsigned)getpid(), s->logfile_name);
    if (g_watch_caller && g_caller_fd < 0)
        wpt_host_log("no pidfd for the process that started the session (pid %u): whether it ended "
                     "is looked at each second", (unsigned)g_caller.pid);
    serve(s, listen_fd, path, &bound);
    wpt_host_log("session \"%s\" stopped: %u buffers written, %u events lost",
                 s->name, atomic_load(&s->buffers_written), wpt_events_lost(s));
    /* consumers that were not reading when the session stopped still get what was queued
     * for them (ProcessTrace after the stop), for a while */
    wpt_rt_close_hub(s, 60000);
    _exit(0);
}

#ifdef WPT_TEST_POINTS
int64_t wpt_host_answer_ms = 30000;
int64_t wpt_host_reply_ms = 10000;
int64_t wpt_host_long_reply_ms = 120000;
#endif

ULONG wpt_host_spawn(wpt_session *s, wpt_process_ref *host) {
    *host = (wpt_process_ref){0, 0};
    g_caller = (wpt_process_ref){wpt_current_pid(), wpt_own_start()};   /* as its claim says */
    int ready[2];
    if (pipe2(ready, O_CLOEXEC) != 0) return wpt_win32_of_errno(errno, ERROR_OUTOFMEMORY);
    wpt_forking_host = 1;
    pid_t first = fork();
    if (first == 0) {
        setsid();
        pid_t second = fork();
        if (second != 0) _exit(second < 0 ? 1 : 0);
        close(ready[0]);
        host_main(s, ready[1]);
    }
    wpt_forking_host = 0;
    close(ready[1]);
    if (first < 0) {
        close(ready[0]);
        return ERROR_OUTOFMEMORY;
    }
    while (waitpid(first, NULL, 0) < 0 && errno == EINTR) {}
    host_answer answer = {ERROR_OUTOFMEMORY, 0, 0};
    size_t have = 0;
    int timed_out = 0;
    struct pollfd p = {ready[0], POLLIN, 0};
    int64_t deadline = wpt_mono_ms() + WPT_HOST_ANSWER_MS;
    while (have < sizeof answer) {
        int left = (int)(deadline - wpt_mono_ms());
        if (left <= 0) {
            WPT_TEST_POINT(WPT_POINT_HOST_UNANSWERED);
            timed_out = 1;
            break;
        }
        int ready_now = poll(&p, 1, left);
        if (ready_now < 0 && errno != EINTR) break;
        if (ready_now <= 0) continue;      /* a read now would block past the deadline */
        ssize_t n = read(ready[0], (char *)&answer + have, sizeof answer - have);
        if (n == 0) break;
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            break;
        }
        have += (size_t)n;
    }
    close(ready[0]);
    if (timed_out) return ERROR_BUSY;      /* no answer in time, as for a control request */
    if (have != sizeof answer) return ERROR_OUTOFMEMORY;
    *host = (wpt_process_ref){answer.pid, answer.start};
    return answer.rc;
}

#ifdef WPT_TEST_POINTS
_Atomic int wpt_test_pidfd_refused;
_Atomic int wpt_test_signal_refused;
_Atomic int wpt_test_start_unreadable;
_Atomic int wpt_test_host_end_by_pidfd, wpt_test_host_end_by_pid;
#define WPT_TEST_COUNT(counter) atomic_fetch_add(&(counter), 1)
#else
#define WPT_TEST_COUNT(counter) ((void)0)
#endif

static _Atomic uint32_t g_hosts_not_stopped;

ULONG wpptrace_hosts_not_stopped(void) {
    return atomic_load(&g_hosts_not_stopped);
}

void wpt_hosts_after_fork(void) {
    atomic_store(&g_hosts_not_stopped, 0);
}

#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
/* wpt_process_is once the pidfd is taken; a test makes /proc fail to answer (ENOMEM), as a
 * kernel short of memory may */
static int host_still_is(uint32_t pid, uint64_t start) {
#ifdef WPT_TEST_POINTS
    if (atomic_load(&wpt_test_start_unreadable)) {
        errno = ENOMEM;
        return -1;
    }
#endif
    return wpt_process_is(pid, start);
}

/* `sig` sent through pidfd `fd`: 0, or -1 and errno (EPERM from seccomp or an LSM, say; a test
 * makes it so) */
static int signal_through(int fd, int sig) {
#ifdef WPT_TEST_POINTS
    if (atomic_load(&wpt_test_signal_refused)) {
        errno = EPERM;
        return -1;
    }
#endif
    return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}
#endif

/* Through a pidfd taken while the process is still the host (its start checked after the
 * pidfd was taken): a pid reused since is never signalled. Without a pidfd (an old kernel, a
 * sandbox refusing the call) the start is checked and the host signalled by its pid, as close
 * as that can get. A caller at its descriptor limit gets the same by-pid fallback, on purpose:
 * pidfd_open refused for want of a descriptor, or the pidfd taking the last one so the start
 * cannot then be read (the pidfd is closed first, giving that descriptor back to the check).
 * A host that could not be told (its start unknown, or /proc unreadable, also once the pidfd is
 * taken: it may be another process that took the pid since; or a signal refused) runs on
 * unfindable by name: counted once (wpptrace_hosts_not_stopped). A host stopping by SIGTERM
 * stops as by STOP (its file completed; its providers disabled and its entry freed only while
 * the registry's entry of its slot is still its own). */
void wpt_host_end(const wpt_process_ref *host) {
    if (!host->pid) return;
#if defined(SYS_pidfd_open) && defined(SYS_pidfd_send_signal)
    if (host->start) {
        int fd = (int)syscall(SYS_pidfd_open, (pid_t)host->pid, 0);
#ifdef WPT_TEST_POINTS
        if (fd >= 0 && atomic_load(&wpt_test_pidfd_refused)) {
            close(fd);
            fd = -1;
            errno = EPERM;
        }
#endif
        if (fd >= 0) {
            WPT_TEST_POINT(WPT_POINT_HOST_PIDFD_TAKEN);
            int is = host_still_is(host->pid, host->start);
            if (is < 0 && (errno == EMFILE || errno == ENFILE)) {
                close(fd);                  /* no descriptor for /proc: by its pid, below */
            } else {
                if (is == 1) {
                    WPT_TEST_COUNT(wpt_test_host_end_by_pidfd);
                    /* refused (not gone): the host runs on */
                    if (signal_through(fd, SIGTERM) != 0 && errno != ESRCH)
                        atomic_fetch_add(&g_hosts_not_stopped, 1);
                } else if (is < 0 && (signal_through(fd, 0) == 0 || errno != ESRCH)) {
                    /* its start unreadable (no memory for the read, say): the process may be
                     * another that took the pid, so it is not signalled, but counted unless it
                     * is gone */
                    atomic_fetch_add(&g_hosts_not_stopped, 1);
                }
                close(fd);
                return;
            }
        } else if (errno == ESRCH) {
            return;                         /* gone */
        }
    }
#endif
    int is = host->start ? wpt_process_is(host->pid, host->start) : -1;
    if (is == 1) {
        WPT_TEST_COUNT(wpt_test_host_end_by_pid);
        if (kill((pid_t)host->pid, SIGTERM) == 0) return;
    }
    if (is != 0 && !wpt_process_gone(host->pid)) atomic_fetch_add(&g_hosts_not_stopped, 1);
}
