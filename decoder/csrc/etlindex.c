/* etlindex.c: locating buffer headers: those of an uncompressed .etl file into the index
 * columns, and the next plausible one after damage in a compressed file. */
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

#define SHAPE_AT(field) offsetof(WMI_BUFFER_HEADER, field)
_Static_assert(SHAPE_AT(BufferType) + 2 == ETLRD_HEADER_SHAPE_SPAN, "the shape ends with BufferType");

/* The shape test of etlrd_next_header_shape but for BufferSize's low bytes (tested first). */
static int header_shape_rest(const uint8_t *h)
{
    enum { size_top = ((uint64_t)2 * MAX_ETW_BUFFER_SIZE_KB * 1024 - 1) >> 24 };
    const uint8_t *state = h + SHAPE_AT(State), *flag = h + SHAPE_AT(BufferFlag),
                  *type = h + SHAPE_AT(BufferType);
    return h[SHAPE_AT(BufferSize) + 3] <= size_top
        && h[SHAPE_AT(SequenceNumber) + 7] < 0x80
        && state[0] <= 7 && !state[1] && !state[2] && !state[3]
        && flag[0] < 0x80 && !flag[1]
        && type[0] <= 8 && !type[1];
}

int64_t etlrd_next_header_shape(const uint8_t *buf, int64_t len, int64_t start)
{
    int64_t p = start < 0 ? 0 : start, last = len - ETLRD_HEADER_SHAPE_SPAN;
    while (p <= last) {
        const uint8_t *size = buf + p + SHAPE_AT(BufferSize);
        if (size[1] || size[2] || size[0] >= (int)sizeof(WMI_BUFFER_HEADER)) {
            if (header_shape_rest(buf + p))
                return p;
            p++;
        } else if (size[0]) {
            p++;
        } else {
            /* three zero bytes: a candidate needs a non-zero byte among its first three, so
             * none starts before the two bytes ahead of the next non-zero byte */
            int64_t q = p + SHAPE_AT(BufferSize) + 3;
            uint64_t word;
            while (q + 8 <= len && (memcpy(&word, buf + q, 8), word == 0))
                q += 8;
            while (q < len && !buf[q])
                q++;
            p = q - SHAPE_AT(BufferSize) - 2;
        }
    }
    return -1;
}
