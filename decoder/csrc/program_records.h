/* program_records.h: message records (decoder/program_share.py's format: those fmt's program
 * cache keeps and `fmt -j` processes share) installed in the C renderer many in one call.
 *
 * A record: a 32-byte head (the printer mode it was made for (4 bytes), u32 flags, i32 the
 * shared prefix program its blob calls (-1: none), u32 lengths of component, name, Unknown
 * line, program blob and decoration), then those five, all little-endian.
 */
#ifndef WPPTRACE_PROGRAM_RECORDS_H
#define WPPTRACE_PROGRAM_RECORDS_H
#include <stdint.h>
#include "wpprender.h"

#define PRECORD_HEAD 32
#define PRECORD_HAS_PREFIX 1      /* the message's format starts with %0 */
#define PRECORD_UNKNOWN 2         /* a message without format: it has an Unknown line */
#define PRECORD_DECORATED 4       /* the record has a decoration */

/* Register the programs of n records with r: record i is base[offsets[i] : offsets[i] +
 * lengths[i]] (length 0: none); without offsets (NULL), the records lie end to end in
 * base[0:size]. programs[i] gets its program id (decorated when the record has a
 * decoration), or -1 when it cannot serve: none, not whole (its head's lengths are not its
 * length), made for another mode than mode[0:4] or another shared prefix program than
 * prefix, a text holding a NUL, or a program or decoration the renderer refuses (then the
 * message is compiled instead). flags[i] gets an installed record's PRECORD_* flags; its
 * component, name and Unknown line (empty when none) are appended to strings, each ended by
 * a NUL (room: the records' lengths). Returns the bytes written to strings. */
uint64_t precord_install(wppr_renderer *r, const uint8_t *base, uint64_t size,
                         const uint64_t *offsets, const uint32_t *lengths, uint32_t n,
                         const uint8_t *mode, int32_t prefix, int32_t *programs, uint8_t *flags,
                         uint8_t *strings);

#endif
