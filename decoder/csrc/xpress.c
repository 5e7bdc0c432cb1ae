/* xpress.c: MS-XCA Plain LZ77 decompression (COMPRESSION_FORMAT_XPRESS), bounds-checked.
 *
 * Written from the MS-XCA description in docs/pdb-and-compression.md §B3: 32-bit flag words
 * (bit 31 first; 0 = literal, 1 = match), 16-bit match tokens (distance-1 << 3 | length),
 * long lengths in a shared nibble, then a byte, then u16/u32 escapes.
 */
#include <string.h>
#include "etlread.h"

int etlrd_xpress_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap,
                            size_t *produced, size_t *consumed)
{
    size_t ip = 0, op = 0, half = (size_t)-1;
    uint32_t flags = 0;
    int nflags = 0;
    int rc = 0;
    for (;;) {
        if (nflags == 0) {
            if (ip + 4 > src_len)
                break;                               /* end of input */
            memcpy(&flags, src + ip, 4);
            ip += 4;
            nflags = 32;
        }
        nflags--;
        if (!((flags >> nflags) & 1)) {              /* literal */
            if (ip >= src_len)
                break;                               /* input ended on a literal slot */
            if (op >= dst_cap) { rc = ETLRD_XPRESS_OVERFLOW; goto out; }
            dst[op++] = src[ip++];
            continue;
        }
        if (ip == src_len)
            break;                                   /* normal end: unused flag bits are ones */
        if (ip + 2 > src_len) { rc = ETLRD_XPRESS_TRUNCATED; goto out; }
        uint32_t token = (uint32_t)src[ip] | ((uint32_t)src[ip + 1] << 8);
        ip += 2;
        size_t distance = (token >> 3) + 1;
        size_t length = token & 7;
        if (length == 7) {
            if (half == (size_t)-1) {
                if (ip >= src_len) { rc = ETLRD_XPRESS_TRUNCATED; goto out; }
                half = ip;
                length = src[ip++] & 0x0F;
            } else {
                length = src[half] >> 4;
                half = (size_t)-1;
            }
            if (length == 15) {
                if (ip >= src_len) { rc = ETLRD_XPRESS_TRUNCATED; goto out; }
                length = src[ip++];
                if (length == 255) {
                    if (ip + 2 > src_len) { rc = ETLRD_XPRESS_TRUNCATED; goto out; }
                    length = (size_t)src[ip] | ((size_t)src[ip + 1] << 8);
                    ip += 2;
                    if (length == 0) {
                        if (ip + 4 > src_len) { rc = ETLRD_XPRESS_TRUNCATED; goto out; }
                        uint32_t l32;
                        memcpy(&l32, src + ip, 4);
                        length = l32;
                        ip += 4;
                    }
                    if (length < 15 + 7) { rc = ETLRD_XPRESS_TRUNCATED; goto out; }
                    length -= 15 + 7;
                }
                length += 15;
            }
            length += 7;
        }
        length += 3;
        if (distance > op) { rc = ETLRD_XPRESS_BAD_DISTANCE; goto out; }
        if (length > dst_cap - op) { rc = ETLRD_XPRESS_OVERFLOW; goto out; }
        uint8_t *to = dst + op;
        const uint8_t *from = to - distance;
        if (distance >= 8 && length + 8 <= dst_cap - op) {
            /* 8 bytes at a time; may write up to 7 bytes past the match (inside dst_cap,
             * overwritten by what follows) and never reads bytes not yet written */
            for (size_t i = 0; i < length; i += 8)
                memcpy(to + i, from + i, 8);
        } else {                                     /* short distance: a repeating run */
            for (size_t i = 0; i < length; i++)
                to[i] = from[i];
        }
        op += length;
    }
out:
    if (produced)
        *produced = op;
    if (consumed)
        *consumed = ip;
    return rc;
}
