/* etw_registry.c: the per-user runtime directory and the registry of sessions and enables.
 *
 * The runtime directory ($WPPTRACE_RUNTIME_DIR, else $XDG_RUNTIME_DIR/wpptrace, else
 * /tmp/wpptrace-<uid>) is created 0700 and refused unless it is a real directory owned by
 * us with no group or other access: everything a session exposes (control sockets, the
 * registry, host logs) lives there, so only our own user reaches it. Its parent must be ours
 * or root's, and sticky if others may write to it, so nobody else can move it away. The
 * checks run again each time the directory is used (before a socket is bound or a file made
 * in it): a directory removed while a process runs (a /tmp clean-up) is made again by us, or
 * refused if someone else made it first. They are made on the directory held open, and it is
 * used through that descriptor, never by its name again (see check_dir). A /tmp/wpptrace-<uid> another user created first is
 * refused (ERROR_ACCESS_DENIED), never replaced by another name: the fix is to remove it or
 * to set WPPTRACE_RUNTIME_DIR to a private directory.
 *
 * The registry is one fixed-size file mapped by every process: the table of loggers (64
 * slots, as Windows has: LoggerId = slot) and the table of enabled providers (which session
 * holds each control GUID, with flags, level and a version that orders changes). Writers
 * hold flock(LOCK_EX), readers LOCK_SH; a process-local mutex first, because flock locks
 * belong to the open file and do not exclude threads of one process. A process that dies
 * holding the lock releases it; an entry whose process is gone is treated as free. One that is
 * stopped holding it (SIGSTOP, a debugger) keeps it: the wait for it is bounded, and the
 * caller fails with ERROR_BUSY rather than hang.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"

#ifdef WPT_TEST_POINTS
_Atomic int wpt_test_dir_number_reused;
int64_t wpt_registry_wait_ms = 10000;
const char *wpt_proc_fd_dir = "/proc/self/fd";
#endif

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static char g_dir[PATH_MAX];
/* not resolved yet; once ERROR_SUCCESS it stays so, and g_dir is read without the lock */
static _Atomic ULONG g_dir_rc = ERROR_INVALID_PARAMETER;
static int g_fd = -1;
static wpt_registry *g_reg;
/* the mapping of a registry a clean-up removed, until this process's sessions are in the next */
static const wpt_registry *g_dropped;
/* The incarnation of the registry this process's handles came from (0: none opened yet). It
 * is kept across fork(): a child forked before its parent found a clean-up opens the registry
 * made again (its own mapping is dropped at the fork), whose incarnation is another, and makes
 * the handles it inherited stale then. The inode cannot tell: a file made again often gets the
 * number of the one removed. */
static uint32_t g_incarnation;
/* One more each time a registry replaced made this process's handles stale (under g_lock): a
 * handle resolved in the registry with the lock held, or an enable queued then, is handed out
 * only if it did not change meanwhile (see wpt_handle_issued_in). */
static _Atomic uint32_t g_handle_epoch;

/* The directory is held open (g_dir_fd) and used only through that descriptor: every path
 * handed out is "/proc/self/fd/<n>/..." (g_dir_at), which the kernel resolves through the held
 * descriptor, never by the name again. The checks are made on what was opened (fstat), so the
 * directory checked is the one used, even if its name is given to another directory between
 * the check and a bind, connect or open. A check that finds another (private, ours) directory
 * at the name puts it in the same descriptor number (dup3), so paths already made stay valid. */
static pthread_mutex_t g_dir_lock = PTHREAD_MUTEX_INITIALIZER;
static _Atomic int g_dir_fd = -1;
static dev_t g_dir_dev;                 /* what g_dir_fd holds (a descriptor closed under us is */
static ino_t g_dir_ino;                 /* not ours any more: it is never written over) */
/* One more each time another directory is held in place of the one held (removed, made again):
 * its inode number may be the removed one's all the same */
static _Atomic uint32_t g_dir_replaced;
/* Read without the lock: each number's path is made once and never changed or freed, so a
 * thread reads a whole one while another moves the directory to another number (which happens
 * only when the application closed ours). A number used before takes its path back: the paths
 * kept are at most one per descriptor number, however often the application closes ours. */
static _Atomic(const char *) g_dir_at = "";
typedef struct dir_path {
    int fd;
    char *at;
    struct dir_path *next;
} dir_path;
static dir_path *g_dir_paths;

/* The path of the directory held at `fd` (g_dir_lock held), NULL without memory. */
static const char *path_at(int fd) {
    for (dir_path *p = g_dir_paths; p; p = p->next)
        if (p->fd == fd) return p->at;
    dir_path *p = malloc(sizeof *p);
    if (!p || asprintf(&p->at, "%s/%d", WPT_PROC_FD_DIR, fd) < 0) {
        free(p);
        return NULL;
    }
    p->fd = fd;
    p->next = g_dir_paths;
    g_dir_paths = p;
    return p->at;
}

/* A process at its descriptor limit, or out of memory, is told so, not that the runtime
 * directory's path is bad (wpt_win32_of_errno). */
static ULONG open_failure(int e) {
    return e == EACCES || e == EPERM || e == ELOOP || e == ENOTDIR ? ERROR_ACCESS_DENIED
                                                                   : wpt_win32_of_errno(e, ERROR_BAD_PATHNAME);
}

/* Hold `fd` (a directory checked as ours, dev/ino in st) at g_dir_fd (g_dir_lock held). */
static ULONG hold_dir(int fd, const struct stat *st) {
    struct stat held;
    if (g_dir_fd >= 0 && fstat(g_dir_fd, &held) == 0 && held.st_dev == g_dir_dev
        && held.st_ino == g_dir_ino) {
        int same_number = held.st_dev == st->st_dev && held.st_ino == st->st_ino;
#ifdef WPT_TEST_POINTS
        if (atomic_exchange(&wpt_test_dir_number_reused, 0)) same_number = 1;
#endif
        /* a held directory with no name left was removed: the one found may have its inode
         * number all the same (a disk filesystem reuses it), and is another */
        if (same_number && held.st_nlink > 0) {
            close(fd);
            return ERROR_SUCCESS;
        }
        int same = dup3(fd, g_dir_fd, O_CLOEXEC);
        int e = errno;
        close(fd);
        if (same < 0) return wpt_win32_of_errno(e, ERROR_BAD_PATHNAME);
        atomic_fetch_add(&g_dir_replaced, 1);
    } else {
        const char *at = path_at(fd);          /* the first, or ours was closed by someone else */
        if (!at) {
            close(fd);
            return ERROR_OUTOFMEMORY;
        }
        if (access(at, F_OK) != 0) {           /* no /proc (a chroot, a sandbox) */
            close(fd);
            return ERROR_NOT_SUPPORTED;
        }
        /* ours was closed under us: the one found is another if its number is */
        if (g_dir_ino && (g_dir_dev != st->st_dev || g_dir_ino != st->st_ino)) atomic_fetch_add(&g_dir_replaced, 1);
        g_dir_fd = fd;
        WPT_TEST_POINT(WPT_POINT_RUNTIME_DIR_HOLDING);
        atomic_store(&g_dir_at, at);
    }
    g_dir_dev = st->st_dev;
    g_dir_ino = st->st_ino;
    return ERROR_SUCCESS;
}

/* Did this thread's last check find no directory at the name (its parent missing, or nothing
 * in it by the name: ENOENT, ENOTDIR on the way)? Told by the check itself, never by looking
 * again: a directory made again meanwhile by another process is not the one the check missed.
 * Written where a lookup ends: by check_dir, from what check_dir_locked found (0 when no check
 * ran: a busy lock), and by ensure_dir and wpt_runtime_dir_present for a path that cannot be
 * resolved (no check either);
 * read once by wpt_runtime_dir_missing_as_none; cleared in a forked child. */
static __thread int t_dir_absent;

static int absent(int e) {
    return e == ENOENT || e == ENOTDIR;
}

/* Make the directory if it is missing (`make`), then check it and its parent (see the top),
 * through descriptors: the parent opened, checked, the directory made and opened in it (never
 * through a link), checked, and held (g_dir_lock held). *missing: whether the check failed
 * because no directory is at the name (see t_dir_absent). */
static ULONG check_dir_locked(int make, int *missing) {
    *missing = 0;
    char parent[PATH_MAX];
    size_t n = strlen(g_dir);
    memcpy(parent, g_dir, n + 1);
    while (n > 1 && parent[n - 1] == '/') parent[--n] = 0;
    char *slash = strrchr(parent, '/');
    if (!slash || !slash[1]) return ERROR_BAD_PATHNAME;
    char name[NAME_MAX + 1];
    if (strlen(slash + 1) > NAME_MAX) return ERROR_BAD_PATHNAME;
    strcpy(name, slash + 1);
    slash[slash == parent ? 1 : 0] = 0;
    int up = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (up < 0) {
        *missing = absent(errno);
        return wpt_win32_of_errno(errno, ERROR_BAD_PATHNAME);
    }
    WPT_TEST_POINT(WPT_POINT_RUNTIME_DIR_OPENING);
    struct stat st;
    if (fstat(up, &st) != 0) {
        int e = errno;
        close(up);
        return wpt_win32_of_errno(e, ERROR_BAD_PATHNAME);
    }
    if ((st.st_uid != geteuid() && st.st_uid != 0) || ((st.st_mode & 022) && !(st.st_mode & S_ISVTX))) {
        close(up);
        return ERROR_ACCESS_DENIED;           /* someone else could rename ours and put theirs */
    }
    if (make && mkdirat(up, name, 0700) != 0 && errno != EEXIST) {
        int e = errno;
        close(up);
        return e == EACCES ? ERROR_ACCESS_DENIED : wpt_win32_of_errno(e, ERROR_BAD_PATHNAME);
    }
    int fd = openat(up, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int e = errno;
    close(up);
    if (fd < 0) {
        *missing = e == ENOENT;            /* ENOTDIR here: something else has the name */
        return open_failure(e);
    }
    if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077)) {
        close(fd);
        return ERROR_ACCESS_DENIED;           /* not ours, or others could reach our sockets */
    }
    ULONG rc = hold_dir(fd, &st);
    WPT_TEST_POINT(WPT_POINT_RUNTIME_DIR_CHECKED);
    return rc;
}

static int mutex_by(pthread_mutex_t *m, int64_t deadline);

/* Not cancelled midway: open, openat and close are cancellation points, and a thread cancelled
 * there left g_dir_lock held (every later use of the directory waited for it, then failed
 * busy) and a descriptor open. */
/* The process ends (a session host stopping): a directory a clean-up removed, or a registry,
 * is not made again just for it to leave the registry. */
static _Atomic int g_ending;

void wpt_runtime_dir_ending(void) {
    atomic_store(&g_ending, 1);
}

/* This thread is leaving the registry or only looking in it (stopping, asking for or listing
 * sessions): the same, for this call only. A call that starts something new (a registration's
 * endpoint, a session) makes them again. */
static __thread int t_not_made;

int wpt_runtime_dir_not_made_begin(void) {
    int was = t_not_made;
    t_not_made = 1;
    return was;
}

void wpt_runtime_dir_not_made_end(int was) {
    t_not_made = was;
}

uint32_t wpt_registry_incarnation(void) {
    return __atomic_load_n(&g_incarnation, __ATOMIC_RELAXED);    /* a host's serving thread */
}

int wpt_runtime_dir_may_make(void) {
    return !atomic_load(&g_ending) && !t_not_made;
}

ULONG wpt_runtime_dir_missing_as_none(ULONG rc) {
    /* read once, for the failure of the check that set it: a later ERROR_BAD_PATHNAME from
     * elsewhere (a path too long, a link) is never taken for a directory found missing */
    int absent_now = t_dir_absent;
    t_dir_absent = 0;
    if (wpt_runtime_dir_may_make()) return rc;
    if (rc == ERROR_FILE_NOT_FOUND) return ERROR_WMI_INSTANCE_NOT_FOUND;  /* no registry file */
    /* ERROR_BAD_PATHNAME is also a check that failed otherwise: only a directory the check
     * found not there means no session */
    if (rc == ERROR_BAD_PATHNAME && absent_now) return ERROR_WMI_INSTANCE_NOT_FOUND;
    return rc;
}

/* check_dir_locked with the lock taken by `deadline` (else ERROR_BUSY), the directory made if
 * missing when `make` and this thread may make it (wpt_runtime_dir_may_make, asked once the lock
 * is held); what it found is this thread's t_dir_absent. */
static ULONG check_dir(int make, int64_t deadline) {
    int state = wpt_cancel_hold();
    ULONG rc = ERROR_BUSY;
    int missing = 0;
    if (mutex_by(&g_dir_lock, deadline) == 0) {
        rc = check_dir_locked(make && wpt_runtime_dir_may_make(), &missing);
        pthread_mutex_unlock(&g_dir_lock);
    }
    t_dir_absent = missing;
    wpt_cancel_restore(state);
    return rc;
}

/* The directory's path from the environment (g_lock held). */
static ULONG resolve_path(void) {
    const char *env = getenv("WPPTRACE_RUNTIME_DIR");
    const char *xdg = getenv("XDG_RUNTIME_DIR");
    int n;
    if (env && *env) n = snprintf(g_dir, sizeof g_dir, "%s", env);
    else if (xdg && xdg[0] == '/') n = snprintf(g_dir, sizeof g_dir, "%s/wpptrace", xdg);
    else n = snprintf(g_dir, sizeof g_dir, "/tmp/wpptrace-%u", (unsigned)geteuid());
    /* any length: sockets are bound and reached through the short /proc path, not the name */
    if (n <= 0 || (size_t)n >= sizeof g_dir || g_dir[0] != '/') return ERROR_BAD_PATHNAME;
    return ERROR_SUCCESS;
}

/* The path is fixed by the first success (g_lock held); the checks run on every call. */
static ULONG ensure_dir(int64_t deadline) {
    if (g_dir_rc == ERROR_SUCCESS) return check_dir(1, deadline);
    ULONG rc = resolve_path();
    if (rc == ERROR_SUCCESS) rc = check_dir(1, deadline);
    else t_dir_absent = 0;              /* a path that cannot be resolved is not "absent" */
    g_dir_rc = rc;
    return rc;
}

/* The lock is held while the registry is (up to WPT_REGISTRY_WAIT_MS elsewhere): a directory
 * resolved once is read without it, and resolving it waits as the registry lock does, then
 * fails with ERROR_BUSY (the caller reports it as a busy control plane). */
ULONG wpt_runtime_dir(const char **dir_out) {
    ULONG rc;
    int64_t deadline = wpt_mono_ms() + WPT_REGISTRY_WAIT_MS;
    if (atomic_load(&g_dir_rc) == ERROR_SUCCESS) {
        rc = check_dir(1, deadline);
    } else {
        if (mutex_by(&g_lock, deadline) != 0) return ERROR_BUSY;
        rc = ensure_dir(deadline);
        pthread_mutex_unlock(&g_lock);
    }
    if (dir_out) *dir_out = atomic_load(&g_dir_at);   /* the one the check held */
    return rc;
}

const char *wpptrace_runtime_directory(void) {
    int state = wpt_cancel_hold();
    ULONG rc = wpt_runtime_dir(NULL);
    wpt_cancel_restore(state);
    return rc == ERROR_SUCCESS ? g_dir : NULL;   /* its name, for people */
}

const char *wpt_runtime_dir_name(void) {
    return atomic_load(&g_dir_rc) == ERROR_SUCCESS ? g_dir : "";
}

uint32_t wpt_runtime_dir_replaced(void) {
    return atomic_load(&g_dir_replaced);
}

int wpt_runtime_dir_fd(void) {
    return atomic_load(&g_dir_rc) == ERROR_SUCCESS ? g_dir_fd : -1;
}

/* The directory as check_dir finds it, but never made again: ERROR_SUCCESS if it is there (held
 * now), else why not. A directory a clean-up removed stays removed until something is to be
 * made in it. */
ULONG wpt_runtime_dir_present(void) {
    if (atomic_load(&g_dir_rc) != ERROR_SUCCESS) {
        t_dir_absent = 0;               /* no check ran: a path not resolved is not "absent" */
        return ERROR_BAD_PATHNAME;
    }
    return check_dir(0, wpt_mono_ms() + WPT_REGISTRY_WAIT_MS);
}

/* Through the descriptor held now, checked (and held again if the application closed ours):
 * never by a path made with an older number, which may be another directory of the
 * application's by now. A directory a clean-up removed is not made again for it (a process
 * that ended after the clean-up left it made again, empty). */
void wpt_runtime_unlink(const char *name) {
    if (atomic_load(&g_dir_rc) != ERROR_SUCCESS) return;   /* nothing was made in it */
    int state = wpt_cancel_hold();
    if (mutex_by(&g_dir_lock, wpt_mono_ms() + WPT_REGISTRY_WAIT_MS) == 0) {
        int missing;
        if (check_dir_locked(0, &missing) == ERROR_SUCCESS) unlinkat(g_dir_fd, name, 0);
        pthread_mutex_unlock(&g_dir_lock);
    }
    wpt_cancel_restore(state);
}

ULONG wpt_socket_path(char *out, size_t size, char kind, uint32_t number) {
    const char *dir;
    ULONG rc = wpt_runtime_dir(&dir);
    if (rc != ERROR_SUCCESS) return rc;
    int n = snprintf(out, size, "%s/%c-%u.sock", dir, kind, number);
    return n > 0 && (size_t)n < size ? ERROR_SUCCESS : ERROR_BAD_PATHNAME;
}

/* Random, never 0 nor WPT_INCARNATION_PRIVATE; without getrandom (an old kernel, a sandbox) the clock and the pid. */
static uint32_t new_incarnation(void) {
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint32_t)ts.tv_nsec ^ ((uint32_t)ts.tv_sec * 2654435761u) ^ (wpt_current_pid() * 40503u);
    }
    return v && v != WPT_INCARNATION_PRIVATE ? v : 1;
}

static void init_registry(wpt_registry *reg) {
    memset(reg, 0, sizeof *reg);
    reg->magic = WPT_REG_MAGIC;
    reg->version = WPT_REG_VERSION;
    reg->size = (uint32_t)sizeof *reg;
}

static int flock_retry(int fd, int op) {
    int rc;
    do rc = flock(fd, op); while (rc != 0 && errno == EINTR);
    return rc;
}

/* flock(op) by `deadline` (wpt_mono_ms), else -1 with errno EWOULDBLOCK. flock has no timed
 * wait: it is tried again after naps doubling from 0.1 ms up to 12.8 ms (a lock is held for a
 * moment). */
static int flock_by(int fd, int op, int64_t deadline) {
    long nap_ns = 100 * 1000;
    for (;;) {
        if (flock(fd, op | LOCK_NB) == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK || wpt_mono_ms() >= deadline) return -1;
        if (nap_ns == 100 * 1000) WPT_TEST_POINT(WPT_POINT_REGISTRY_WAITING);
        struct timespec nap = {0, nap_ns};
        nanosleep(&nap, NULL);
        if (nap_ns < 10 * 1000 * 1000) nap_ns *= 2;
    }
}

static ULONG lock_failure(void) {
    return errno == EWOULDBLOCK ? ERROR_BUSY : ERROR_ACCESS_DENIED;
}

/* Sessions of this process that a registry made again after a clean-up could not take back
 * (g_lock held for all of these): per slot, the dropped registry holding its entry and enables
 * (a dropped mapping is never unmapped), until the session is put back or stops. */
static const wpt_registry *g_displaced[WPPTRACE_MAX_SESSIONS];
static int g_displaced_pending;
static _Atomic uint32_t g_sessions_displaced;
/* Per slot, the whole generation of the last session of this process left out so (0: none):
 * its handle (slot, low 8 bits) is that session's, never the registry's session of the slot,
 * whose handle may have the very same value (see wpt_handle_displaced). */
static uint32_t g_displaced_generation[WPPTRACE_MAX_SESSIONS];

ULONG wpptrace_sessions_displaced(void) {
    return atomic_load(&g_sessions_displaced);
}

static void forget_displaced(uint32_t slot);

int wpt_handle_displaced(TRACEHANDLE h, const wpt_reg_logger *e) {
    uint32_t slot = wpt_handle_slot(h), mine = slot < WPPTRACE_MAX_SESSIONS ? g_displaced_generation[slot] : 0;
    if (!mine || (uint8_t)mine != wpt_handle_generation(h)) return 0;
    return !(e->generation == mine && e->host_pid == wpt_current_pid());    /* put back: ours */
}

/* Is `mine` (an entry of a dropped registry) a session this process still runs, a private
 * one or the one this host runs? Told from this process's own state, never from /proc (a
 * process at its descriptor limit cannot read it, and a session that runs on was taken for
 * one that stopped): the entry is this process's (its pid, its start if known) and the
 * session of its slot here is still the one of that generation. */
static int still_ours(const wpt_reg_logger *mine, uint32_t slot) {
    if (mine->state == WPT_FREE || mine->host_pid != wpt_current_pid()) return 0;
    uint64_t start = wpt_own_start();
    if (start && mine->host_start != start) return 0;       /* an earlier process of our pid */
    wpt_session *s = &wpt_sessions[slot];
    return atomic_load(&s->role) != WPT_ROLE_NONE && s->registry_generation == mine->generation;
}

static void make_stale_all_but(uint32_t slot, uint32_t keep, uint32_t keep_too);

/* A registry a clean-up removed: the one made since counts claims from the start, so its
 * sessions get the LoggerIds and generations of the old one's, and a handle this process was
 * handed for a session of the old one has the value of another session there (another
 * process's). Every such value is stale from now on, but those of this process's sessions
 * that run on (put back, or left out: see wpt_handle_displaced): a listing or a lookup by name
 * hands it out again for the new session. `old` is NULL in a forked child that never mapped
 * the removed registry: it has no session of its own yet. */
static void make_dropped_handles_stale(const wpt_registry *old) {
    atomic_fetch_add(&g_handle_epoch, 1);      /* before the marks: see wpt_handle_issued_in */
    for (uint32_t slot = 0; slot < WPPTRACE_MAX_SESSIONS; slot++) {
        const wpt_reg_logger *mine = old ? &old->loggers[slot] : NULL;
        make_stale_all_but(slot, mine && still_ours(mine, slot) ? mine->generation : 0,
                           g_displaced_generation[slot]);
    }
}

/* Write this process's session of slot `slot` (its entry in `old`) into `reg` with its
 * enables: 1 if done. Not while the slot is another live session's, nor once the slot's count
 * of claims in `reg` reached the session's generation: the count would go back, and a later
 * claim there be given a generation a session of `reg` had, whose handles would reach it. */
static int put_back(const wpt_registry *old, wpt_registry *reg, uint32_t slot) {
    const wpt_reg_logger *mine = &old->loggers[slot];
    wpt_reg_logger *now = &reg->loggers[slot];
    if ((now->state != WPT_FREE && wpt_reg_alive(now)) || now->generation >= mine->generation) return 0;
    if (now->state != WPT_FREE) {
        GUID unused[1];
        wpt_registry_forget(reg, slot, unused, 0);     /* its process is gone */
    }
    *now = *mine;
    uint16_t id = slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : (uint16_t)slot;
    int free_at = 0;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        wpt_reg_enable en = old->enables[i];
        if (!en.used || en.logger_id != id || en.generation != (uint8_t)mine->generation) continue;
        while (free_at < WPT_MAX_ENABLES && reg->enables[free_at].used) free_at++;
        if (free_at == WPT_MAX_ENABLES) break;
        reg->enables[free_at] = en;
    }
    return 1;
}

/* The sessions of this process (a private one, or the one this host runs) that a registry
 * removed by a clean-up held, written again into the one made since (its lock held), with
 * their enables: they are listed and found by name again, and no new session is given their
 * LoggerId. One whose LoggerId another process took there first cannot be given another (its
 * handles carry it): it runs on, found in this process only (by its handle and name), said
 * once (the host's log, wpptrace_sessions_displaced), its handle never taken for the other
 * session, and it is put back as soon as its slot allows (put_back_displaced). */
static void republish_own(const wpt_registry *old, wpt_registry *reg) {
    make_dropped_handles_stale(old);
    for (uint32_t slot = 0; slot < WPPTRACE_MAX_SESSIONS; slot++) {
        const wpt_reg_logger *mine = &old->loggers[slot];
        if (!still_ours(mine, slot) || put_back(old, reg, slot)) continue;
        g_displaced[slot] = old;
        g_displaced_pending = 1;
        atomic_fetch_add(&g_sessions_displaced, 1);
        g_displaced_generation[slot] = mine->generation;
        wpt_host_log("session %.*s (LoggerId %u) is not in the registry made again after a clean-up "
                     "of the runtime directory: another session took its LoggerId there first; it runs "
                     "on, found by this process only", (int)sizeof mine->name, mine->name,
                     (unsigned)(slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : slot));
    }
    if (old->last_version > reg->last_version) reg->last_version = old->last_version;
}

/* Sessions left out by republish_own put back once their slots allow, or forgotten once they
 * stopped (the registry locked exclusively). */
static void put_back_displaced(wpt_registry *reg) {
    int left = 0;
    for (uint32_t slot = 0; slot < WPPTRACE_MAX_SESSIONS; slot++) {
        const wpt_registry *old = g_displaced[slot];
        if (!old) continue;
        if (!still_ours(&old->loggers[slot], slot)) {
            g_displaced[slot] = NULL;
            forget_displaced(slot);
        } else if (put_back(old, reg, slot)) {
            g_displaced[slot] = NULL;
            g_displaced_generation[slot] = 0;       /* its handle names its entry again */
        } else {
            left = 1;
        }
    }
    g_displaced_pending = left;
}

/* The one rule for this user's registry file, for open_registry and wpptrace_registry_refusal
 * alike (the code StartTrace returns and the words said for it cannot drift apart):
 * ERROR_SUCCESS if the file `st` describes (lstat of its name, or fstat of it opened), with
 * `head` its first words (magic, version, size; NULL if not read), is one this version uses
 * (an empty file, or one not yet filled in, is made one); else the Win32 code, and with `why`
 * the words for people (`path` named, what to do). */
static ULONG registry_rule(const char *path, const struct stat *st, const uint32_t *head,
                           char *why, size_t size) {
    uid_t me = geteuid();
    enum { USABLE, LINK, NOT_FILE, OWNER, MODE, FORMAT } reason = USABLE;
    if (S_ISLNK(st->st_mode)) reason = LINK;
    else if (!S_ISREG(st->st_mode)) reason = NOT_FILE;
    else if (st->st_uid != me) reason = OWNER;
    else if (st->st_mode & 077) reason = MODE;
    else if ((st->st_size != 0 && st->st_size != (off_t)sizeof(wpt_registry))
             || (head && head[0] != 0 && (head[0] != WPT_REG_MAGIC || head[1] != WPT_REG_VERSION
                                          || head[2] != sizeof(wpt_registry))))
        reason = FORMAT;
    int have_words = why && size && path;
    switch (reason) {
    case USABLE:
        return ERROR_SUCCESS;
    case LINK:
        if (have_words) snprintf(why, size, "its registry %s is a symbolic link; it must be a file of "
                                 "this user (remove it)", path);
        return ERROR_BAD_PATHNAME;
    case NOT_FILE:
        if (have_words) snprintf(why, size, "its registry %s is not a file (remove it)", path);
        return ERROR_BAD_PATHNAME;
    case OWNER:
        if (have_words) snprintf(why, size, "its registry %s belongs to user %u, not to this user (%u) "
                                 "(remove it)", path, (unsigned)st->st_uid, (unsigned)me);
        return ERROR_ACCESS_DENIED;
    case MODE:
        if (have_words) snprintf(why, size, "its registry %s has mode %04o; it must be private to this "
                                 "user (0600: chmod 600 it)", path, (unsigned)(st->st_mode & 07777));
        return ERROR_ACCESS_DENIED;
    case FORMAT:
        break;
    }
    if (have_words) snprintf(why, size, "its registry %s was made by another wpptrace version (or is "
                             "damaged): stop its sessions with that version, or remove it", path);
    return ERROR_BAD_FORMAT;
}

/* Open and map the registry file (g_lock held). */
static ULONG open_registry(int64_t deadline) {
    if (g_reg) {
        struct stat now;
        if (fstat(g_fd, &now) != 0 || now.st_nlink > 0) return ERROR_SUCCESS;
        /* a clean-up removed the directory and the registry with it: the one made again is
         * the one other processes use now, and this process's sessions are put in it. The
         * old mapping is left in place (a caller may still read it); only the file is let go. */
        g_dropped = g_reg;
        close(g_fd);
        g_fd = -1;
        g_reg = NULL;
    }
    ULONG checked = ensure_dir(deadline);
    if (checked != ERROR_SUCCESS) return checked;
    (void)wpt_own_start();        /* read while descriptors are to be had: claims record it */
    int make = wpt_runtime_dir_may_make() ? O_CREAT : 0;
    struct stat st;
    /* looked at before it is opened: a FIFO or a device is never opened */
    if (fstatat(g_dir_fd, "registry", &st, AT_SYMLINK_NOFOLLOW) == 0) {
        ULONG refused = registry_rule(NULL, &st, NULL, NULL, 0);
        if (refused != ERROR_SUCCESS) return refused;
    }
    int fd = openat(g_dir_fd, "registry", O_RDWR | O_CLOEXEC | O_NOFOLLOW | make, 0600);
    if (fd < 0)
        return errno == EACCES ? ERROR_ACCESS_DENIED : errno == ENOENT ? ERROR_FILE_NOT_FOUND : wpt_win32_of_errno(errno, ERROR_BAD_PATHNAME);
    if (fstat(fd, &st) != 0) {
        close(fd);
        return ERROR_ACCESS_DENIED;
    }
    ULONG refused = registry_rule(NULL, &st, NULL, NULL, 0);     /* another file there since */
    if (refused != ERROR_SUCCESS) {
        close(fd);
        return refused;
    }
    if (flock_by(fd, LOCK_EX, deadline) != 0) {
        ULONG failed = lock_failure();
        close(fd);
        return failed;
    }
    ULONG rc = fstat(fd, &st) == 0 ? registry_rule(NULL, &st, NULL, NULL, 0) : ERROR_ACCESS_DENIED;
    if (rc == ERROR_SUCCESS && st.st_size == 0 && ftruncate(fd, sizeof(wpt_registry)) != 0)
        rc = ERROR_OUTOFMEMORY;
    void *map = MAP_FAILED;
    if (rc == ERROR_SUCCESS) {
        map = mmap(NULL, sizeof(wpt_registry), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) rc = ERROR_OUTOFMEMORY;
    }
    if (rc == ERROR_SUCCESS) {
        wpt_registry *reg = map;
        uint32_t head[3] = {reg->magic, reg->version, reg->size};
        if (reg->magic == 0) init_registry(reg);
        else rc = registry_rule(NULL, &st, head, NULL, 0);
        if (rc == ERROR_SUCCESS) {
            if (!reg->incarnation) reg->incarnation = new_incarnation();
            if (g_dropped) republish_own(g_dropped, reg);
            else if (g_incarnation && reg->incarnation != g_incarnation)
                make_dropped_handles_stale(NULL);   /* removed before this process (a child) looked */
            __atomic_store_n(&g_incarnation, reg->incarnation, __ATOMIC_RELAXED);
        }
    }
    flock_retry(fd, LOCK_UN);
    if (rc != ERROR_SUCCESS) {
        if (map != MAP_FAILED) munmap(map, sizeof(wpt_registry));
        close(fd);
        return rc;
    }
    g_fd = fd;
    g_reg = map;
    g_dropped = NULL;
    return ERROR_SUCCESS;
}

/* Why open_registry would refuse this user's registry, in words for people (its path named,
 * what to do), from a look at it that changes nothing (no lock taken, nothing made). */
ULONG wpptrace_registry_refusal(char *Why, ULONG Size) {
    if (Size && !Why) return ERROR_INVALID_PARAMETER;
    if (Size) Why[0] = 0;
    const char *dir = wpptrace_runtime_directory();
    if (!dir) return ERROR_SUCCESS;               /* the directory's own refusal says it */
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/registry", dir);
    struct stat st;
    if (lstat(path, &st) != 0) return ERROR_SUCCESS;   /* none yet: made when needed */
    ULONG rc = registry_rule(path, &st, NULL, Why, Size);
    if (rc != ERROR_SUCCESS || st.st_size == 0) return rc;
    uint32_t head[3] = {0, 0, 0};                 /* magic, version, size */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    ssize_t got = fd >= 0 ? pread(fd, head, sizeof head, 0) : -1;
    if (fd >= 0) close(fd);
    return got == (ssize_t)sizeof head ? registry_rule(path, &st, head, Why, Size) : ERROR_SUCCESS;
}

/* The process mutex by `deadline` (a thread of this process may be stopped holding it too),
 * on the monotonic clock: a step of the wall clock neither stretches nor cuts the wait. */
static int mutex_by(pthread_mutex_t *m, int64_t deadline) {
    int64_t left = deadline - wpt_mono_ms();
    if (left < 0) left = 0;
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += (time_t)(left / 1000);
    until.tv_nsec += (long)(left % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, &until);
}

wpt_registry *wpt_registry_lock(int exclusive, ULONG *rc) {
    return wpt_registry_lock_within(exclusive, WPT_REGISTRY_WAIT_MS, rc);
}

wpt_registry *wpt_registry_lock_within(int exclusive, int64_t wait_ms, ULONG *rc) {
    int64_t deadline = wpt_mono_ms() + wait_ms;
    if (mutex_by(&g_lock, deadline) != 0) {
        if (rc) *rc = ERROR_BUSY;
        return NULL;
    }
    ULONG r = open_registry(deadline);
    if (r == ERROR_SUCCESS && flock_by(g_fd, exclusive ? LOCK_EX : LOCK_SH, deadline) != 0)
        r = lock_failure();
    if (r == ERROR_SUCCESS && exclusive && g_displaced_pending) put_back_displaced(g_reg);
    if (r != ERROR_SUCCESS) {
        pthread_mutex_unlock(&g_lock);
        if (rc) *rc = r;
        return NULL;
    }
    if (rc) *rc = ERROR_SUCCESS;
    return g_reg;
}

/* The lock however long it takes, never ERROR_BUSY: for the paths that give back what they
 * hold (a claimed slot, a bound socket), which must not leave it behind because another
 * process held the lock a while (they hold it only a moment). NULL only for a registry that
 * cannot be had at all (*rc says why). */
wpt_registry *wpt_registry_lock_patiently(int exclusive, ULONG *rc) {
    for (;;) {
        ULONG r;
        wpt_registry *reg = wpt_registry_lock(exclusive, &r);
        if (reg || r != ERROR_BUSY) {
            if (rc) *rc = r;
            return reg;
        }
    }
}

void wpt_registry_unlock(void) {
    flock_retry(g_fd, LOCK_UN);
    pthread_mutex_unlock(&g_lock);
}

/* A child never sees the held directory half moved to another number (it leaked one). The
 * wait is bounded as any wait for the registry: a check holds the lock across the open of the
 * directory's parent, which a hung filesystem may never answer, and fork() waited as long with
 * the endpoint's, the registrations' and the attach locks held. Given up on, the fork goes on
 * without it (the child holds the directory again: see wpt_registry_after_fork). */
static int g_dir_locked_for_fork;

void wpt_registry_fork_prepare(void) {
    g_dir_locked_for_fork = mutex_by(&g_dir_lock, wpt_mono_ms() + WPT_REGISTRY_WAIT_MS) == 0;
    if (!g_dir_locked_for_fork) WPT_TEST_POINT(WPT_POINT_FORK_UNLOCKED);
}

void wpt_registry_fork_parent(void) {
    if (g_dir_locked_for_fork) pthread_mutex_unlock(&g_dir_lock);
}

/* A forked child shares the parent's open registry file, and with it the parent's flock:
 * it must open its own. (The mapping it inherited is the same shared file, but is dropped
 * too, to keep one rule.) The incarnation its handles came from stays: the file it opens may
 * be a registry made again after a clean-up its parent had not found yet. */
void wpt_registry_after_fork(void) {
    pthread_mutex_init(&g_lock, NULL);
    pthread_mutex_init(&g_dir_lock, NULL);
    /* Forked without the directory's lock: a check may have been between its stores, the
     * descriptor held and its path out of step. The held directory is forgotten (the
     * descriptor stays open, unused), so the next check holds it again, both stores made. */
    if (!g_dir_locked_for_fork) {
        g_dir_dev = 0;
        g_dir_ino = 0;
    }
    if (g_reg) munmap(g_reg, sizeof(wpt_registry));
    if (g_fd >= 0) close(g_fd);
    g_reg = NULL;
    g_dropped = NULL;
    g_fd = -1;
    /* forked during a STOP (by a ControlCallback, say): the child is not leaving, and its only
     * thread kept the flag for good (every start after a clean-up failed) */
    t_not_made = 0;
    t_dir_absent = 0;          /* nor is the parent's last check the child's */
    for (uint32_t slot = 0; slot < WPPTRACE_MAX_SESSIONS; slot++) forget_displaced(slot);
    memset(g_displaced, 0, sizeof g_displaced);     /* the parent's sessions, not the child's */
    g_displaced_pending = 0;
    atomic_store(&g_sessions_displaced, 0);
}

/* Gone only if /proc says so: an entry whose process could not be looked up (no descriptor
 * left) is alive, as freeing it would hand a live session's LoggerId and socket to another.
 * This process's own entries are told without /proc. */
int wpt_reg_alive(const wpt_reg_logger *e) {
    if (e->state == WPT_FREE || !e->host_pid) return 0;
    if (e->host_pid == wpt_current_pid()) {
        uint64_t own = wpt_own_start();
        if (own) return e->host_start == own;
    }
    return wpt_process_is(e->host_pid, e->host_start) != 0;
}

static _Atomic uint64_t g_own_start;
static _Atomic uint32_t g_own_start_pid;       /* whose start it is (a forked child reads its own) */

uint64_t wpt_own_start(void) {
    uint32_t me = wpt_current_pid();
    if (atomic_load(&g_own_start_pid) == me) return atomic_load(&g_own_start);
    uint64_t start = wpt_process_start(me);
    if (start) {
        atomic_store(&g_own_start, start);
        atomic_store(&g_own_start_pid, me);
    }
    return start;
}

uint64_t wpt_next_version(wpt_registry *reg) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    if (reg) {
        if (v <= reg->last_version) v = reg->last_version + 1;
        reg->last_version = v;
    }
    return v;
}

size_t wpt_registry_forget(wpt_registry *reg, uint32_t slot, GUID *guids, size_t max) {
    wpt_reg_logger *e = &reg->loggers[slot];
    uint16_t id = slot == WPT_KERNEL_SLOT ? KERNEL_LOGGER_ID : (uint16_t)slot;
    size_t n = 0;
    for (int i = 0; i < WPT_MAX_ENABLES; i++) {
        wpt_reg_enable *en = &reg->enables[i];
        if (en->used && en->logger_id == id && en->generation == (uint8_t)e->generation) {
            if (n < max) guids[n] = en->guid;
            n++;
            en->used = 0;
        }
    }
    e->state = WPT_FREE;
    e->host_pid = 0;
    e->host_start = 0;
    /* The slot's socket goes with its entry, under the lock: every host binds its path under
     * the lock while its entry is claimed, so what is there now is this session's (or a stale
     * one's); once the slot is free a new session may take it and bind the same path. */
    char name[32];
    snprintf(name, sizeof name, "s-%u.sock", slot);
    unlinkat(g_dir_fd, name, 0);
    return n;
}

/* ---- handles this process gave out ---------------------------------------------------------- */

/* Per slot and 8-bit value, the whole generation of the last session this process handed a
 * handle out for (0: none; the first claim of a slot is generation 1). */
static _Atomic uint32_t g_issued[WPPTRACE_MAX_SESSIONS][256];

/* A value made stale by a session that stopped (left out of the registry, see forget_displaced)
 * or by a clean-up (make_dropped_handles_stale): only a handout the registry backs (StartTrace,
 * a lookup, a listing) names a session by it again. */
#define WPT_HANDLE_STALE UINT32_MAX

void wpt_handle_issued(uint32_t slot, uint32_t generation) {
    if (slot < WPPTRACE_MAX_SESSIONS && generation)
        atomic_store_explicit(&g_issued[slot][generation & 0xFFu], generation, memory_order_relaxed);
}

uint32_t wpt_handle_epoch(void) {
    return atomic_load(&g_handle_epoch);
}

/* The handout and the marks are ordered by the epoch (sequentially consistent, the marks made
 * after it changed): a handout that still read the epoch it was resolved under stored its
 * value before the marks read it, so they make it stale; one that read it changed undoes its
 * store. A value never handed out is made stale too, or it would be taken as it names. A
 * handout of the same value from the registry made again, at that very moment in another
 * thread, may be made stale with it: it names no session then, until handed out again. */
int wpt_handle_issued_in(uint32_t slot, uint32_t generation, uint32_t epoch) {
    if (slot >= WPPTRACE_MAX_SESSIONS || !generation) return 0;
    _Atomic uint32_t *at = &g_issued[slot][generation & 0xFFu];
    if (atomic_load(&g_handle_epoch) == epoch) {
        atomic_store(at, generation);
        if (atomic_load(&g_handle_epoch) == epoch) return 1;
        uint32_t mine = generation;
        atomic_compare_exchange_strong(at, &mine, WPT_HANDLE_STALE);
        return 0;
    }
    uint32_t none = 0;
    atomic_compare_exchange_strong(at, &none, WPT_HANDLE_STALE);
    return 0;
}

void wpt_handle_make_stale(uint32_t slot, uint32_t generation) {
    if (slot < WPPTRACE_MAX_SESSIONS && generation)
        atomic_store_explicit(&g_issued[slot][generation & 0xFFu], WPT_HANDLE_STALE, memory_order_relaxed);
}

/* A ControlCallback's handle: it is the session's the enable named when it was queued, which
 * may have stopped before the callback runs (no lock is held then). A value made stale
 * meanwhile stays so: the compare-and-swap never writes over the mark, whichever comes first.
 * One queued before a clean-up this process found since is not handed out (as in
 * wpt_handle_issued_in). */
void wpt_handle_seen(uint32_t slot, uint32_t generation, uint32_t epoch) {
    if (slot >= WPPTRACE_MAX_SESSIONS || !generation) return;
    _Atomic uint32_t *at = &g_issued[slot][generation & 0xFFu];
    if (atomic_load(&g_handle_epoch) != epoch) {
        uint32_t none = 0;
        atomic_compare_exchange_strong(at, &none, WPT_HANDLE_STALE);
        return;
    }
    uint32_t now = atomic_load(at);
    while (now != generation) {
        if (now == WPT_HANDLE_STALE || atomic_compare_exchange_weak(at, &now, generation)) break;
    }
    if (now == WPT_HANDLE_STALE || atomic_load(&g_handle_epoch) == epoch) return;
    uint32_t mine = generation;
    atomic_compare_exchange_strong(at, &mine, WPT_HANDLE_STALE);
}

/* Every value of `slot` handed out stale, but the generations `keep` and `keep_too` (0: none;
 * g_lock held). */
static void make_stale_all_but(uint32_t slot, uint32_t keep, uint32_t keep_too) {
    for (uint32_t v = 0; v < 256; v++) {
        uint32_t now = atomic_load(&g_issued[slot][v]);
        /* tried again while a handout changes the value under it */
        while (now && now != WPT_HANDLE_STALE && now != keep && now != keep_too
               && !atomic_compare_exchange_weak(&g_issued[slot][v], &now, WPT_HANDLE_STALE)) {
        }
    }
}

/* A displaced session of this process gone (stopped, or the parent's in a forked child): the
 * other session of its slot is listed and found again, while the handle the gone one had
 * (the very same value) stays stale until this process is handed one for the other. */
static void forget_displaced(uint32_t slot) {
    uint32_t mine = g_displaced_generation[slot];
    if (!mine) return;
    g_displaced_generation[slot] = 0;
    wpt_handle_make_stale(slot, mine);
}

int wpt_handle_stale(TRACEHANDLE h, uint32_t generation) {
    uint32_t slot = wpt_handle_slot(h);
    if (slot == UINT32_MAX) return 0;
    uint32_t issued = atomic_load_explicit(&g_issued[slot][wpt_handle_generation(h)], memory_order_relaxed);
    return issued != 0 && issued != generation;
}
