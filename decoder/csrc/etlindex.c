/* etlindex.c: buffer headers of an uncompressed .etl file into the index columns. */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include "etl_layout.h"
#include "etlread.h"

/* All size bytes or nothing: a short read (end of file, a device that returns less) or an
 * error is the caller's to judge, with its own reads. */
static int read_exact(int fd, int64_t offset, void *out, size_t size)
{
    size_t got = 0;
    while (got < size) {
        ssize_t n = pread(fd, (char *)out + got, size - got, (off_t)(offset + (int64_t)got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return 0;
        got += (size_t)n;
    }
    return 1;
}

static int all_zero(const WMI_BUFFER_HEADER *h)
{
    static const WMI_BUFFER_HEADER zero;
    return memcmp(h, &zero, sizeof *h) == 0;
}

int64_t etlrd_index_fixed(int fd, int64_t file_size, uint32_t stride, int64_t *offset,
                          int64_t first_index, etlrd_index_columns *cols, int64_t capacity,
                          int64_t *empty)
{
    int64_t n = 0, at = *offset;
    WMI_BUFFER_HEADER h;
    uint32_t first;
    if (stride < sizeof h)
        return 0;
    while (n < capacity && at < file_size && file_size - at >= (int64_t)stride) {
        if (!read_exact(fd, at, &h, sizeof h))
            break;
        if (all_zero(&h)) {
            /* records after a zeroed header are damage the caller reports */
            if (!read_exact(fd, at + (int64_t)sizeof h, &first, sizeof first)
                || (first != 0 && first != 0xFFFFFFFFu))
                break;
            ++*empty;
            at += stride;
            continue;
        }
        if (h.BufferSize != stride && first_index + n != 0)
            break;
        cols->file_offset[n] = at;
        cols->size_on_disk[n] = stride;
        cols->sequence[n] = h.SequenceNumber;
        cols->timestamp[n] = h.TimeStamp;
        cols->saved_offset[n] = h.SavedOffset;
        cols->filled_bytes[n] = h.FilledBytes;
        cols->state[n] = h.State;
        cols->processor[n] = (h.BufferFlag & ETW_BUFFER_FLAG_PROC_INDEX)
            ? (uint16_t)(h.ClientContext.ProcessorIndex & ETW_PROCESSOR_INDEX_MASK)
            : (uint16_t)(h.ClientContext.ProcessorIndex & 0xFF);
        cols->logger_id[n] = h.ClientContext.LoggerId;
        cols->flags[n] = h.BufferFlag;
        cols->buffer_type[n] = h.BufferType;
        n++;
        at += stride;
    }
    *offset = at;
    return n;
}
