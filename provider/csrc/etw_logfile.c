/* etw_logfile.c: the .etl file sink: header buffer, sequential and circular data buffers.
 *
 * Layout per docs/etl-format.md §4: buffer 0 is the header buffer, data buffers follow, each
 * exactly BufferSize bytes. After every data buffer the header record is rewritten (its
 * BuffersWritten, EventsLost, BuffersLost), so a writer that dies leaves a file that readers
 * walk up to the last flushed buffer. EndTime stays 0 until a clean stop writes it (as on
 * Windows, where EndTime is 0 in a file still being logged to): readers tell a file whose
 * writer never stopped by EndTime == 0 (docs/unclean-stop.md). Circular files reuse data slots 1..N in turn;
 * readers order them by SequenceNumber. A sequential file that reaches MaximumFileSize
 * keeps its contents and counts further buffers in LogBuffersLost.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"

struct wpt_logfile {
    int fd;
    uint32_t buffer_size;
    uint64_t data_buffers;     /* data buffers written so far */
    uint64_t capacity;         /* data slots the size limit allows, 0 = unlimited */
    int circular;
    int failed;                /* errno of the first data buffer write that failed (0: none) */
    unsigned char *header;     /* scratch copy of buffer 0 */
    uint32_t header_used;      /* bytes of buffer 0 before its 0xFF fill, as last written */
};

/* Test hook: after `skip` more writes of .etl files succeed, the next `count` fail with errno
 * `error` (a full or failing disk, which no test can have for real). */
static _Atomic int g_fail_skip, g_fail_count, g_fail_errno;

void wpptrace_debug_fail_file_writes(int skip, int count, int error) {
    atomic_store(&g_fail_count, 0);
    atomic_store(&g_fail_errno, error);
    atomic_store(&g_fail_skip, skip);
    atomic_store(&g_fail_count, count);
}

static int injected_write_failure(void) {
    if (atomic_load_explicit(&g_fail_count, memory_order_relaxed) <= 0) return 0;
    int skip = atomic_load(&g_fail_skip);
    while (skip > 0)
        if (atomic_compare_exchange_weak(&g_fail_skip, &skip, skip - 1)) return 0;
    int n = atomic_load(&g_fail_count);
    while (n > 0)
        if (atomic_compare_exchange_weak(&g_fail_count, &n, n - 1)) {
            errno = atomic_load(&g_fail_errno);
            return 1;
        }
    return 0;
}

static ULONG errno_to_win32(int e) {
    switch (e) {
    case ENOENT: case ENOTDIR: case ENAMETOOLONG: case EISDIR: return ERROR_BAD_PATHNAME;
    case EACCES: case EPERM: case EROFS: return ERROR_ACCESS_DENIED;
    case EEXIST: return ERROR_ALREADY_EXISTS;
    case EWOULDBLOCK: return ERROR_BUSY;           /* another process's file lease */
    default: return wpt_win32_of_errno(e, ERROR_BAD_PATHNAME);   /* no descriptor: not the path */
    }
}

/* Why a write to an open file (a buffer, a header, its size, the flush to the disk) failed,
 * as a Win32 code: a full disk (or the user's quota of it), the file size limit passed
 * (as winerror.py's errno table names them), or else a write fault. Never ERROR_INVALID_HANDLE or
 * ERROR_ACCESS_DENIED: from ControlTrace(STOP) or UPDATE those would say that nothing was done,
 * when the session did stop or switch files. */
static ULONG write_error(int e) {
    switch (e) {
    case ENOSPC: case EDQUOT: return ERROR_DISK_FULL;
    case EFBIG: return ERROR_FILE_TOO_LARGE;
    default: return ERROR_WRITE_FAULT;
    }
}

static int write_all(int fd, const void *buf, size_t n, off_t pos) {
    const unsigned char *p = buf;
    if (injected_write_failure()) return -1;
    while (n) {
        ssize_t w = pwrite(fd, p, n, pos);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        pos += w;
    }
    return 0;
}

static uint32_t file_buffers(const wpt_logfile *lf) {
    uint64_t n = lf->data_buffers;
    if (lf->capacity && n > lf->capacity) n = lf->capacity;
    return (uint32_t)(1 + n);
}

/* ---- the file itself: shared by a session's own file and a file fed with received buffers */

static void file_free(wpt_logfile *lf) {
    if (lf->fd >= 0) close(lf->fd);
    free(lf->header);
    free(lf);
}

/* Why the last log path this thread tried was refused, in words (empty: not refused by a rule),
 * for wpptrace_log_path_refusal; the host's log gets the same line. */
static __thread char t_refusal[WPT_MAX_PATH + 256];

static void __attribute__((format(printf, 2, 3))) refuse(const char *path, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_refusal, sizeof t_refusal, fmt, ap);
    va_end(ap);
    wpt_host_log("log file %s refused: %s", path, t_refusal);
}

/* Links followed on one log-file path at most (the kernel's own limit). */
#define LOG_PATH_LINKS_MAX 40

/* A descriptor (O_PATH) of the directory `dir` ("" or a relative name: from the current
 * directory) reached one component at a time, the kernel never following a link: each link is
 * read and followed here, and only if it belongs to this user, to root or to the owner of the
 * directory holding it (the kernel's protected_symlinks rule). A link's owner chose where it
 * leads, so a link of a third user (planted in a directory of theirs on our path) could lead our
 * log file onto any file of ours; our own links (a home directory that is a link) work, and so
 * does a link whose owner owns its directory too and could have put anything there anyway: in
 * a user namespace host root is nobody (65534), who owns both "/" and /var/run -> /run, and an
 * NFSv4 export may show its links and directories as nobody's. A link in a directory others may
 * write to (a shared /tmp) is followed only if it and the directory are ours: the safe form of
 * the rule, since what such a directory holds under a name is not ours to trust even when it
 * looks it. -1 with *rc set on failure; `path` names the log file in the host's log. */
static int open_log_dir(const char *path, const char *dir, ULONG *rc) {
    char todo[WPT_MAX_PATH], next[WPT_MAX_PATH], name[NAME_MAX + 1];
    if (strlen(dir) >= sizeof todo) {
        *rc = ERROR_BAD_PATHNAME;
        return -1;
    }
    strcpy(todo, dir);
    /* the directories walked, as the walk reached them (links followed): names a refused link */
    char walked[WPT_MAX_PATH];
    size_t walked_len = 0;
    walked[0] = 0;
    int at = open(todo[0] == '/' ? "/" : ".", O_PATH | O_DIRECTORY | O_CLOEXEC), links = 0;
    if (at < 0) {
        *rc = errno_to_win32(errno);
        return -1;
    }
    const char *p = todo;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) return at;
        size_t len = strcspn(p, "/");
        if (len > NAME_MAX) {
            errno = ENAMETOOLONG;
            break;
        }
        memcpy(name, p, len);
        name[len] = 0;
        p += len;                                      /* at "/..." or at the end */
        if (strcmp(name, ".") == 0) continue;
        size_t walked_before = walked_len;
        int m = snprintf(walked + walked_len, sizeof walked - walked_len, "%s%s",
                         walked_len || todo[0] == '/' ? "/" : "", name);
        if (m > 0 && (size_t)m < sizeof walked - walked_len) walked_len += (size_t)m;
        /* O_DIRECTORY: an O_PATH open has no open intent, so an automount point (autofs, a
         * kernel one) would stay unmounted and the next step would look into it empty; wanting
         * a directory mounts it. ENOTDIR: a link (or no directory), looked at without it. */
        int fd = openat(at, name, O_PATH | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0 && errno == ENOTDIR) fd = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0) break;
        if (fstat(fd, &st) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            break;
        }
        if (S_ISDIR(st.st_mode)) {
            close(at);
            at = fd;
            continue;
        }
        walked[walked_len] = 0;                        /* the link's own path, for people */
        if (!S_ISLNK(st.st_mode)) {
            close(fd);
            errno = ENOTDIR;
            break;
        }
        struct stat in;
        if (fstat(at, &in) != 0) {
            int e = errno;
            close(fd);
            errno = e;
            break;
        }
        uid_t me = geteuid();
        if (st.st_uid != me && st.st_uid != 0 && st.st_uid != in.st_uid) {
            refuse(path, "the link %s on its path belongs to user %u, not to this user (%u), root or "
                   "the owner of its directory (%u)", walked, (unsigned)st.st_uid, (unsigned)me,
                   (unsigned)in.st_uid);
            close(fd);
            close(at);
            *rc = ERROR_ACCESS_DENIED;
            return -1;
        }
        if ((in.st_mode & 022) && (in.st_uid != me || st.st_uid != me)) {
            refuse(path, "the link %s on its path is in a directory others may write to, where a "
                   "link is followed only if it and the directory belong to this user (%u) (the "
                   "protected_symlinks rule, strictly)", walked, (unsigned)me);
            close(fd);
            close(at);
            *rc = ERROR_ACCESS_DENIED;
            return -1;
        }
        ssize_t n = -1;
        if (++links > LOG_PATH_LINKS_MAX) errno = ELOOP;
        else n = readlinkat(fd, "", next, sizeof next);
        close(fd);
        if (n <= 0) {
            if (n == 0) errno = ENOENT;                /* an empty link leads nowhere */
            break;
        }
        size_t rest = strlen(p);
        if ((size_t)n + rest >= sizeof next) {
            errno = ENAMETOOLONG;
            break;
        }
        memcpy(next + n, p, rest + 1);                 /* the link's target, then what was left */
        memcpy(todo, next, (size_t)n + rest + 1);
        p = todo;
        walked_len = todo[0] == '/' ? 0 : walked_before;
        walked[walked_len] = 0;
        if (todo[0] == '/') {
            close(at);
            at = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
            if (at < 0) {
                *rc = errno_to_win32(errno);
                return -1;
            }
        }
    }
    *rc = errno_to_win32(errno);
    close(at);
    return -1;
}

/* Why an existing file (its lstat) must not become a log file, said in a host's log; or
 * ERROR_SUCCESS. */
static ULONG refusal(const char *path, const struct stat *st) {
    if (S_ISLNK(st->st_mode)) {
        refuse(path, "it is a symbolic link (never followed: it could point at any file)");
        return ERROR_ACCESS_DENIED;
    }
    if (!S_ISREG(st->st_mode)) {
        refuse(path, "it is not a regular file");
        return ERROR_BAD_PATHNAME;
    }
    if (st->st_uid != geteuid()) {
        refuse(path, "it belongs to user %u, not to this user (%u)", (unsigned)st->st_uid,
               (unsigned)geteuid());
        return ERROR_ACCESS_DENIED;
    }
    if (st->st_nlink != 1) {
        /* another name (a hard link another user made) may be a file this path was never
         * meant to reach: emptying it would empty that file */
        refuse(path, "it has %lu hard links (emptying it would empty the file under its other "
               "names too)", (unsigned long)st->st_nlink);
        return ERROR_ACCESS_DENIED;
    }
    return ERROR_SUCCESS;
}

/* `path` as the directory to walk (dir, "" for the current one) and the file's name in it:
 * its last component. NULL if it names a directory or is too long. */
static const char *split_log_path(const char *path, char dir[WPT_MAX_PATH]) {
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    if (!*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0 || strlen(name) > NAME_MAX
        || strlen(path) >= WPT_MAX_PATH)
        return NULL;
    size_t dir_len = slash ? (slash == path ? 1 : (size_t)(slash - path)) : 0;
    memcpy(dir, path, dir_len);
    dir[dir_len] = 0;
    return name;
}

/* Remove `name` in the directory `at` if it is still the file `made`: one this process made
 * for an attempt that then failed (a name given to another file meanwhile is left alone).
 * Left open: a start of the same path in another process that opened this very file (it found
 * it there) before the unlink keeps writing into a file that no longer has a name. No check
 * of the name closes that (it is the same inode either way); it takes two starts of one path
 * at once, and the other start's session then ends with no file to show for it. */
static void remove_made_at(int at, const char *name, const struct stat *made) {
    struct stat st;
    if (fstatat(at, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == made->st_dev
        && st.st_ino == made->st_ino)
        unlinkat(at, name, 0);
}

/* The same, the directory reached again as open_private reaches it. */
static void remove_made(const char *path, const struct stat *made) {
    char dir[WPT_MAX_PATH];
    const char *name = split_log_path(path, dir);
    ULONG rc;
    int at = name ? open_log_dir(path, dir, &rc) : -1;
    if (at < 0) return;
    remove_made_at(at, name, made);
    close(at);
}

/* Hold the open file `fd` as a session's log file: a write lock on the whole file, of its open
 * file description (F_OFD_SETLK), so it lasts as long as any descriptor of that description
 * does: across the fork to a host process (the caller's copy closed), until the session
 * closes the file (a stop, a switch to another file) or its process dies. Another start or
 * switch to the same file is refused, ERROR_SHARING_VIOLATION (what Windows' logger meets on a
 * file another session holds open without write sharing), before anything in the file
 * changes. The lock is advisory: readers (a decoder, dissect.etl) read on. A file system
 * without such locks (ENOLCK, EINVAL: some FUSE or NFS mounts) leaves the file unguarded, as
 * it was before there was a guard. */
static ULONG hold_log_file(const char *path, int fd) {
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 0};
    if (fcntl(fd, F_OFD_SETLK, &lock) == 0) return ERROR_SUCCESS;
    if (errno != EAGAIN && errno != EACCES) return ERROR_SUCCESS;
    refuse(path, "another process holds it locked (a running session writes it? stop that session, "
                 "or give another file)");
    return ERROR_SHARING_VIOLATION;
}

/* Open (or create) `path` for a session file (O_EXCL in `flags`: only a new one), private
 * (0600): every directory on the path reached as open_log_dir says, then the file itself never
 * through a link, and used only if it is a regular file of our own user with no other name.
 * An existing file is looked at (O_PATH: a FIFO or a device is never opened) before it is
 * opened by its name in the directory held, and used only if the open reached the very inode
 * looked at and no running session holds it (hold_log_file, whose lock *fd then carries);
 * nothing in it changes before those checks. *fd on success, and *made the file's stat if
 * this call created it (st_ino 0 if it existed); `probe`: only see that it could be opened,
 * and remove a file this call made for it. A refusal is ERROR_ACCESS_DENIED (a link, a file
 * of another user, a second name), ERROR_BAD_PATHNAME (not a regular file) or
 * ERROR_SHARING_VIOLATION (a running session's file), said in a host's log. */
static ULONG open_private(const char *path, int flags, int probe, int *fd_out, struct stat *made) {
    char dir[WPT_MAX_PATH];
    const char *name = split_log_path(path, dir);
    made->st_ino = 0;
    if (!name) return ERROR_BAD_PATHNAME;              /* a directory, or too long */
    ULONG rc;
    int at = open_log_dir(path, dir, &rc);
    if (at < 0) return rc;
    rc = ERROR_ACCESS_DENIED;                          /* if the name keeps coming and going */
    for (int tries = 0; tries < 8; tries++) {
        int fd = openat(at, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
        if (fd >= 0) {                                 /* a new file: ours, with this name only */
            if (fstat(fd, made) != 0) made->st_ino = 0;
            /* another start that found it at once may hold it already: then it is that
             * session's file, left alone */
            rc = hold_log_file(path, fd);
            if (rc != ERROR_SUCCESS) {
                made->st_ino = 0;
                close(fd);
                break;
            }
            if (probe && made->st_ino) remove_made_at(at, name, made);
            *fd_out = fd;
            break;
        }
        if (errno != EEXIST || (flags & O_EXCL)) {
            rc = errno_to_win32(errno);
            break;
        }
        int seen = openat(at, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
        if (seen < 0) {
            if (errno == ENOENT) continue;             /* removed meanwhile: make it */
            rc = errno_to_win32(errno);
            break;
        }
        struct stat st, now;
        rc = fstat(seen, &st) != 0 ? errno_to_win32(errno) : refusal(path, &st);
        close(seen);
        if (rc != ERROR_SUCCESS) break;
        /* By name (no /proc needed), O_NONBLOCK: a file lease another process holds makes the
         * open fail (ERROR_BUSY) rather than wait for the lease's break, which may hold a
         * thread whose cancellation is held off. */
        fd = openat(at, name, flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            if (errno == ENOENT || errno == ELOOP) continue;   /* replaced meanwhile: again */
            rc = errno_to_win32(errno);
            break;
        }
        int fl = fcntl(fd, F_GETFL);
        if (fstat(fd, &now) != 0 || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
            rc = errno_to_win32(errno);
            close(fd);
            break;
        }
        if (now.st_dev != st.st_dev || now.st_ino != st.st_ino) {
            close(fd);                                 /* another file took the name: again */
            rc = ERROR_ACCESS_DENIED;
            continue;
        }
        rc = hold_log_file(path, fd);
        if (rc != ERROR_SUCCESS) {
            close(fd);
            break;
        }
        if ((st.st_mode & 07777) != 0600 && fchmod(fd, 0600) != 0) {
            rc = errno_to_win32(errno);                /* an existing file keeps its mode: narrow it */
            close(fd);
        } else *fd_out = fd;
        break;
    }
    close(at);
    return rc;
}

/* Create the file (`exclusive`: never an existing one; else empty it once it is known to be
 * ours), private to its user; lf->header is allocated, not written. *made as open_private
 * says. */
static ULONG file_create(const char *path, uint32_t buffer_size, int exclusive, wpt_logfile **out,
                         struct stat *made) {
    wpt_logfile *lf = calloc(1, sizeof *lf);
    made->st_ino = 0;
    if (!lf) return ERROR_OUTOFMEMORY;
    lf->fd = -1;
    lf->buffer_size = buffer_size;
    lf->header = malloc(buffer_size);
    if (!lf->header) { file_free(lf); return ERROR_OUTOFMEMORY; }
    ULONG rc = open_private(path, O_RDWR | (exclusive ? O_EXCL : 0), 0, &lf->fd, made);
    if (rc == ERROR_SUCCESS && !exclusive && ftruncate(lf->fd, 0) != 0) rc = write_error(errno);
    if (rc != ERROR_SUCCESS) {
        file_free(lf);
        return rc;
    }
    *out = lf;
    return ERROR_SUCCESS;
}

/* The header buffer, whole (the file's first write). */
static uint32_t header_used(const wpt_logfile *lf) {
    const WMI_BUFFER_HEADER *bh = (const WMI_BUFFER_HEADER *)lf->header;
    return bh->SavedOffset <= lf->buffer_size ? bh->SavedOffset : lf->buffer_size;
}

static ULONG file_put_header(wpt_logfile *lf) {
    if (write_all(lf->fd, lf->header, lf->buffer_size, 0) != 0) return write_error(errno);
    lf->header_used = header_used(lf);
    return ERROR_SUCCESS;
}

/* One data buffer into its slot; 1 if it was lost (size limit reached, write failed). */
static int file_put(wpt_logfile *lf, const unsigned char *buffer) {
    uint64_t slot;
    if (lf->circular) slot = lf->data_buffers % lf->capacity;
    else if (lf->capacity && lf->data_buffers >= lf->capacity) return 1;
    else slot = lf->data_buffers;
    if (write_all(lf->fd, buffer, lf->buffer_size, (off_t)((1 + slot) * lf->buffer_size)) != 0) {
        if (!lf->failed) lf->failed = errno;
        return 1;
    }
    lf->data_buffers++;
    return 0;
}

/* The header record again (its counters moved); only the used part of buffer 0. -1 (errno
 * set) if it could not be written. Not kept in lf->failed: each rewrite replaces the last, so
 * only the final one decides whether the file is complete (its caller checks it). */
static int file_rewrite_header(wpt_logfile *lf) {
    uint32_t used = header_used(lf), span = used;
    if (lf->header_used > used) {
        /* a shorter header (the file named by a shorter name): the fill comes back over the
         * end of the longer one */
        memset(lf->header + used, 0xFF, lf->header_used - used);
        span = lf->header_used;
    }
    if (write_all(lf->fd, lf->header, span, 0) != 0) return -1;
    lf->header_used = used;
    return 0;
}

/* Flush fd to the disk and close it: `failed`, else the errno of the step that failed. */
static int sync_and_close(int fd, int failed) {
    WPT_TEST_POINT(WPT_POINT_FILE_SYNC);
    if (fdatasync(fd) != 0 && !failed) failed = errno;
    if (close(fd) != 0 && !failed && errno != EINTR) failed = errno;
    return failed;
}

/* Cut what a shorter circular wrap left behind, flush to the disk and close (the file is freed
 * whatever happens): 0, or the errno of the first step that failed, a data buffer write of
 * the file's before included. With `sync_fd`, the flush to the disk and the close are left to
 * the caller (*sync_fd). */
static int file_finish(wpt_logfile *lf, int *sync_fd) {
    int failed = lf->failed;
    if (ftruncate(lf->fd, (off_t)file_buffers(lf) * lf->buffer_size) != 0 && !failed) failed = errno;
    int fd = lf->fd;
    lf->fd = -1;
    file_free(lf);
    if (!sync_fd) return sync_and_close(fd, failed);
    *sync_fd = fd;
    return failed;
}

/* ---- a session's own file ------------------------------------------------------------------ */

ULONG wpptrace_log_path_refusal(LPCSTR Path, char *Why, ULONG Size) {
    if (!Path || (Size && !Why)) return ERROR_INVALID_PARAMETER;
    t_refusal[0] = 0;
    ULONG rc = wpt_logfile_check_path(Path);
    if (Size) snprintf(Why, Size, "%s", rc == ERROR_SUCCESS ? "" : t_refusal);
    return rc;
}

ULONG wpt_logfile_check_path(const char *path) {
    /* Session files are private to their user (traces carry process data). */
    int fd;
    struct stat made;
    ULONG rc = open_private(path, O_WRONLY, 1, &fd, &made);
    if (rc == ERROR_SUCCESS) close(fd);
    return rc;
}

ULONG wpt_logfile_open(wpt_session *s) {
    wpt_logfile *lf;
    struct stat made;
    ULONG rc = file_create(s->logfile_name, s->buffer_size, 0, &lf, &made);
    if (rc != ERROR_SUCCESS) return rc;
    lf->circular = (s->log_file_mode & EVENT_TRACE_FILE_MODE_CIRCULAR) != 0;
    lf->capacity = s->max_file_bytes ? s->max_file_bytes / s->buffer_size - 1 : 0;
    memset(lf->header, 0xFF, s->buffer_size);
    wpt_build_header_buffer(s, lf->header, 0, 1);
    rc = file_put_header(lf);
    if (rc != ERROR_SUCCESS) {
        file_free(lf);
        remove_made(s->logfile_name, &made);       /* a file made for nothing is not left behind */
        return rc;
    }
    s->logfile = lf;
    return ERROR_SUCCESS;
}

int wpt_logfile_write(wpt_session *s, const unsigned char *buffer) {
    if (file_put(s->logfile, buffer)) {
        atomic_fetch_add(&s->log_buffers_lost, 1);
        return 1;
    }
    return 0;
}

/* 0, or -1 (errno set) if the header could not be written. */
static int rewrite_session_header(wpt_session *s, int final) {
    wpt_logfile *lf = s->logfile;
    int64_t end_time = 0;                  /* 0 until stopped: the clean-stop marker */
    if (final) {
        end_time = wpt_filetime_now();
        if (end_time < s->start_filetime) end_time = s->start_filetime;   /* clock stepped back */
        if (end_time == 0) end_time = 1;
    }
    wpt_build_header_buffer(s, lf->header, end_time, file_buffers(lf));
    return file_rewrite_header(lf);
}

void wpt_logfile_update_header(wpt_session *s, int final) {
    /* a rewrite that fails while the session runs is repaired by the next one; the final one
     * is checked by the close */
    (void)rewrite_session_header(s, final);
}

void wpt_logfile_abandon(wpt_session *s) {
    file_free(s->logfile);           /* another process's copy (a host, a forked child) writes */
    s->logfile = NULL;
}

int wpt_logfile_fd(const wpt_session *s) {
    return s->logfile ? s->logfile->fd : -1;
}

int wpt_logfile_is_current(const wpt_session *s, const char *path) {
    /* with no file open, only the name can tell */
    if (!s->logfile) return s->logfile_name[0] && strcmp(path, s->logfile_name) == 0;
    /* the open file by any name (a link on the way, '..', a second hard link, its new name after
     * a rename); another file put in its place under its name is another file (Windows holds
     * the file against deletion, so there only its own file can be at its name) */
    struct stat open_file, named;
    return fstat(s->logfile->fd, &open_file) == 0 && stat(path, &named) == 0
        && open_file.st_dev == named.st_dev && open_file.st_ino == named.st_ino;
}

ULONG wpt_logfile_close(wpt_session *s, int *sync_fd) {
    if (rewrite_session_header(s, 1) != 0 && !s->logfile->failed) s->logfile->failed = errno;
    int failed = file_finish(s->logfile, sync_fd);
    s->logfile = NULL;
    return failed ? write_error(failed) : ERROR_SUCCESS;
}

ULONG wpt_logfile_sync_close(int fd) {
    int failed = fd >= 0 ? sync_and_close(fd, 0) : 0;
    return failed ? write_error(failed) : ERROR_SUCCESS;
}

/* ---- a file written from another session's buffers (a collector of relayed sessions) ------
 * The session's header buffer becomes buffer 0 as received, except the totals that describe
 * this file: BuffersWritten, EventsLost, BuffersLost, EndTime, and the file mode (sequential,
 * no size limit). Data buffers are appended in the order given, and the header record is
 * rewritten after each, as for a session's own file: a collector that dies leaves a file
 * readable up to its last buffer. */

struct wpptrace_etl_stream {
    wpt_logfile *lf;
    int pointer32;                 /* the header record is a TRACE_LOGFILE_HEADER32 */
    uint32_t events_lost, buffers_lost;
};

#define STREAM_HEADER_RECORD ((uint32_t)sizeof(WMI_BUFFER_HEADER))
#define STREAM_LOGFILE_HEADER (STREAM_HEADER_RECORD + (uint32_t)sizeof(SYSTEM_TRACE_HEADER))

/* Set a field of the header record whichever pointer size wrote it. */
#define SET_TLH(st, field, value) do {                                                       \
        __typeof__(((TRACE_LOGFILE_HEADER64 *)0)->field) v_ = (value);                       \
        size_t off_ = (st)->pointer32 ? offsetof(TRACE_LOGFILE_HEADER32, field)              \
                                      : offsetof(TRACE_LOGFILE_HEADER64, field);             \
        memcpy((st)->lf->header + STREAM_LOGFILE_HEADER + off_, &v_, sizeof v_);             \
    } while (0)

static int stream_update_header(wpptrace_etl_stream *st, int64_t end_time) {
    uint32_t mode;
    memcpy(&mode, st->lf->header + STREAM_LOGFILE_HEADER + offsetof(TRACE_LOGFILE_HEADER64, LogFileMode),
           sizeof mode);
    mode = (mode & ~(uint32_t)EVENT_TRACE_FILE_MODE_CIRCULAR) | EVENT_TRACE_FILE_MODE_SEQUENTIAL;
    SET_TLH(st, LogFileMode, mode);
    SET_TLH(st, MaximumFileSize, 0);
    SET_TLH(st, BuffersWritten, file_buffers(st->lf));
    SET_TLH(st, EventsLost, st->events_lost);
    SET_TLH(st, BuffersLost, st->buffers_lost);
    SET_TLH(st, EndTime, end_time);
    return file_rewrite_header(st->lf);
}

/* Is `b` (size bytes) a header buffer whose first record is the log-file header? */
static ULONG check_header_buffer(const unsigned char *b, uint32_t size, int *pointer32) {
    if (size < STREAM_LOGFILE_HEADER + sizeof(TRACE_LOGFILE_HEADER64)
        || size > (uint32_t)MAX_ETW_BUFFER_SIZE_KB * 1024u)
        return ERROR_BAD_LENGTH;
    WMI_BUFFER_HEADER bh;
    SYSTEM_TRACE_HEADER rec;
    uint32_t tlh_size, tlh_buffer_size, pointer_size;
    memcpy(&bh, b, sizeof bh);
    memcpy(&rec, b + STREAM_HEADER_RECORD, sizeof rec);
    memcpy(&pointer_size, b + STREAM_LOGFILE_HEADER + offsetof(TRACE_LOGFILE_HEADER64, PointerSize),
           sizeof pointer_size);
    memcpy(&tlh_buffer_size, b + STREAM_LOGFILE_HEADER + offsetof(TRACE_LOGFILE_HEADER64, BufferSize),
           sizeof tlh_buffer_size);
    if (pointer_size != 4 && pointer_size != 8) return ERROR_BAD_FORMAT;
    tlh_size = pointer_size == 4 ? sizeof(TRACE_LOGFILE_HEADER32) : sizeof(TRACE_LOGFILE_HEADER64);
    if (bh.BufferSize != size || tlh_buffer_size != size || bh.BufferType != ETW_BUFFER_TYPE_HEADER
        || (bh.BufferFlag & ETW_BUFFER_FLAG_COMPRESSED)
        || (rec.HeaderType != TRACE_HEADER_TYPE_SYSTEM32 && rec.HeaderType != TRACE_HEADER_TYPE_SYSTEM64)
        || rec.Size < sizeof rec + tlh_size
        || bh.SavedOffset > size || bh.SavedOffset < STREAM_HEADER_RECORD + rec.Size)
        return ERROR_BAD_FORMAT;
    *pointer32 = pointer_size == 4;
    return ERROR_SUCCESS;
}

ULONG wpptrace_etl_stream_create(LPCSTR Path, const void *HeaderBuffer, ULONG BufferSize,
                                 wpptrace_etl_stream **Stream) {
    if (!Path || !HeaderBuffer || !Stream) return ERROR_INVALID_PARAMETER;
    *Stream = NULL;
    int pointer32;
    ULONG rc = check_header_buffer(HeaderBuffer, BufferSize, &pointer32);
    if (rc != ERROR_SUCCESS) return rc;
    wpptrace_etl_stream *st = calloc(1, sizeof *st);
    if (!st) return ERROR_OUTOFMEMORY;
    st->pointer32 = pointer32;
    struct stat made;
    rc = file_create(Path, BufferSize, 1, &st->lf, &made);
    if (rc != ERROR_SUCCESS) {
        free(st);
        return rc;
    }
    memcpy(st->lf->header, HeaderBuffer, BufferSize);
    stream_update_header(st, 0);
    rc = file_put_header(st->lf);
    if (rc != ERROR_SUCCESS) {
        file_free(st->lf);
        remove_made(Path, &made);      /* nothing of it is usable; it was ours (O_EXCL) */
        free(st);
        return rc;
    }
    *Stream = st;
    return ERROR_SUCCESS;
}

ULONG wpptrace_etl_stream_write(wpptrace_etl_stream *Stream, const void *Buffer, ULONG Size) {
    if (!Stream || !Buffer) return ERROR_INVALID_PARAMETER;
    WMI_BUFFER_HEADER bh;
    if (Size != Stream->lf->buffer_size) return ERROR_BAD_LENGTH;
    memcpy(&bh, Buffer, sizeof bh);
    if (bh.BufferSize != Size || bh.BufferType == ETW_BUFFER_TYPE_HEADER) return ERROR_BAD_FORMAT;
    errno = 0;
    if (file_put(Stream->lf, Buffer)) return errno ? write_error(errno) : ERROR_BAD_LENGTH;
    stream_update_header(Stream, 0);
    return ERROR_SUCCESS;
}

ULONG wpptrace_etl_stream_set_lost(wpptrace_etl_stream *Stream, ULONG EventsLost, ULONG BuffersLost) {
    if (!Stream) return ERROR_INVALID_PARAMETER;
    Stream->events_lost = EventsLost;
    Stream->buffers_lost = BuffersLost;
    stream_update_header(Stream, 0);
    return ERROR_SUCCESS;
}

ULONG wpptrace_etl_stream_buffers(const wpptrace_etl_stream *Stream) {
    return Stream ? file_buffers(Stream->lf) : 0;
}

ULONG wpptrace_etl_stream_close(wpptrace_etl_stream *Stream, LONGLONG EndTime) {
    if (!Stream) return ERROR_INVALID_PARAMETER;
    if (EndTime) {                     /* never before StartTime (clocks differ), never 0 */
        int64_t start;
        memcpy(&start, Stream->lf->header + STREAM_LOGFILE_HEADER
               + (Stream->pointer32 ? offsetof(TRACE_LOGFILE_HEADER32, StartTime)
                                    : offsetof(TRACE_LOGFILE_HEADER64, StartTime)), sizeof start);
        if (EndTime < start) EndTime = start;
        if (EndTime == 0) EndTime = 1;
    }
    /* Every step is checked: the caller says the file is complete only if all of it is on
     * the disk (the first failure is the one reported; the file is closed anyway). A write
     * that failed before was reported by its own call. */
    wpt_logfile *lf = Stream->lf;
    lf->failed = stream_update_header(Stream, EndTime) != 0 ? errno : 0;
    int failed = file_finish(lf, NULL);
    free(Stream);
    return failed ? write_error(failed) : ERROR_SUCCESS;
}
