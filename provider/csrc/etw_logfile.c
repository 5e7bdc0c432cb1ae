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
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"

struct wpt_logfile {
    int fd;
    uint64_t data_buffers;     /* data buffers written so far */
    uint64_t capacity;         /* data slots the size limit allows, 0 = unlimited */
    int circular;
    unsigned char *header;     /* scratch copy of buffer 0 */
};

static ULONG errno_to_win32(int e) {
    switch (e) {
    case ENOENT: case ENOTDIR: case ENAMETOOLONG: case EISDIR: return ERROR_BAD_PATHNAME;
    case EACCES: case EPERM: case EROFS: return ERROR_ACCESS_DENIED;
    case ENOMEM: return ERROR_OUTOFMEMORY;
    default: return ERROR_BAD_PATHNAME;
    }
}

static int write_all(int fd, const void *buf, size_t n, off_t pos) {
    const unsigned char *p = buf;
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

ULONG wpt_logfile_check_path(const char *path) {
    /* Session files are private to their user (traces carry process data). */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return errno_to_win32(errno);
    close(fd);
    return ERROR_SUCCESS;
}

ULONG wpt_logfile_open(wpt_session *s) {
    wpt_logfile *lf = calloc(1, sizeof *lf);
    if (!lf) return ERROR_OUTOFMEMORY;
    lf->header = malloc(s->buffer_size);
    if (!lf->header) { free(lf); return ERROR_OUTOFMEMORY; }
    lf->circular = (s->log_file_mode & EVENT_TRACE_FILE_MODE_CIRCULAR) != 0;
    lf->capacity = s->max_file_bytes ? s->max_file_bytes / s->buffer_size - 1 : 0;
    lf->fd = open(s->logfile_name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (lf->fd >= 0 && fchmod(lf->fd, 0600) != 0) { /* an existing file keeps its mode: narrow it */
        close(lf->fd);
        lf->fd = -1;
    }
    if (lf->fd < 0) {
        ULONG rc = errno_to_win32(errno);
        free(lf->header);
        free(lf);
        return rc;
    }
    memset(lf->header, 0xFF, s->buffer_size);
    wpt_build_header_buffer(s, lf->header, 0, 1);
    if (write_all(lf->fd, lf->header, s->buffer_size, 0) != 0) {
        ULONG rc = errno_to_win32(errno);
        close(lf->fd);
        free(lf->header);
        free(lf);
        return rc;
    }
    s->logfile = lf;
    return ERROR_SUCCESS;
}

int wpt_logfile_write(wpt_session *s, const unsigned char *buffer) {
    wpt_logfile *lf = s->logfile;
    uint64_t slot;
    if (lf->circular) slot = lf->data_buffers % lf->capacity;
    else if (lf->capacity && lf->data_buffers >= lf->capacity) {
        atomic_fetch_add(&s->log_buffers_lost, 1);
        return 1;
    } else slot = lf->data_buffers;
    if (write_all(lf->fd, buffer, s->buffer_size, (off_t)((1 + slot) * s->buffer_size)) != 0) {
        atomic_fetch_add(&s->log_buffers_lost, 1);
        return 1;
    }
    lf->data_buffers++;
    return 0;
}

void wpt_logfile_update_header(wpt_session *s, int final) {
    wpt_logfile *lf = s->logfile;
    int64_t end_time = 0;                  /* 0 until stopped: the clean-stop marker */
    if (final) {
        end_time = wpt_filetime_now();
        if (end_time < s->start_filetime) end_time = s->start_filetime;   /* clock stepped back */
        if (end_time == 0) end_time = 1;
    }
    wpt_build_header_buffer(s, lf->header, end_time, file_buffers(lf));
    const WMI_BUFFER_HEADER *bh = (const WMI_BUFFER_HEADER *)lf->header;
    write_all(lf->fd, lf->header, bh->SavedOffset, 0);
}

void wpt_logfile_abandon(wpt_session *s) {
    wpt_logfile *lf = s->logfile;
    close(lf->fd);                   /* another process's copy (a host, a forked child) writes */
    free(lf->header);
    free(lf);
    s->logfile = NULL;
}

int wpt_logfile_fd(const wpt_session *s) {
    return s->logfile ? s->logfile->fd : -1;
}

void wpt_logfile_close(wpt_session *s) {
    wpt_logfile *lf = s->logfile;
    wpt_logfile_update_header(s, 1);
    if (ftruncate(lf->fd, (off_t)file_buffers(lf) * s->buffer_size) != 0) { /* size already right */ }
    close(lf->fd);
    free(lf->header);
    free(lf);
    s->logfile = NULL;
}
