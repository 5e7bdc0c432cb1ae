/* wppcompile.h: a TMF message's program blob (wpprender.h) made in C from its format string,
 * its argument table and its trailer: the bytes wpptrace.tmf.native.ProgramPlan.encode gives
 * for the same message, for a message whose every part this compiler knows.
 *
 * The compiler decides nothing about item types or printf specs itself: the op of an insert
 * (an argument's item class under a spec text) is put in its table by Python, from the
 * Python compile of a one-insert format (wpptrace.tmf.native_compile). A message with an
 * insert whose op is not in the table yet is answered WPPC_NEED (which class and spec);
 * anything else it does not handle exactly (an escape or marker it cannot resolve, an insert
 * %1..%9, an unterminated spec, a table full) is answered WPPC_DECLINE, and Python compiles
 * the message as before. Every read is bounds-checked: the texts come from TMF files.
 */
#ifndef WPPTRACE_WPPCOMPILE_H
#define WPPTRACE_WPPCOMPILE_H
#include <stdint.h>

#define WPPC_DECLINE  (-1)   /* Python compiles this message */
#define WPPC_NEED     (-2)   /* an insert's op is not known: see wppc_need */
#define WPPC_ROOM     (-3)   /* the output buffer is too small */

#define WPPC_OP_SIZE  24     /* a packed op (wpptrace.tmf.native's _OP) */
#define WPPC_SPEC_MAX 32     /* longest spec text kept in the table */

typedef struct wppc_table wppc_table;

/* What a WPPC_NEED answer asks for: the op of item class cls under the spec text
 * fmt[spec_at : spec_at + spec_len] (spec_len -1: the insert has no spec). */
typedef struct {
    uint32_t cls;
    int32_t spec_at;
    int32_t spec_len;
} wppc_need;

/* A table. escapes[c] (c < 128) is the character "%c" stands for in a format, 0 when the
 * compiler must decline it; empty and defaulted are NUL-separated marker names (n of each):
 * the markers that print empty without a trailer value, and those whose value is derived
 * from other fields (declined when the trailer has no such key). NULL when out of memory. */
wppc_table *wppc_new(const uint8_t *escapes, const uint8_t *empty, uint32_t empty_len,
                     const uint8_t *defaulted, uint32_t defaulted_len);
void wppc_free(wppc_table *t);

/* Put the op of item class cls under a spec text (spec_len -1: no spec); op NULL: messages
 * with that insert are declined. Returns 0, or -1 when the table is full or the spec too long. */
int wppc_put_op(wppc_table *t, uint32_t cls, const uint8_t *spec, int32_t spec_len, const uint8_t *op);

/* The program blob of one message into out[0:cap]: its length, or WPPC_DECLINE / WPPC_NEED
 * (need filled) / WPPC_ROOM.
 *   fmt:     the format string, UTF-8
 *   args:    u32 count, then per argument in block order: u32 insert number, u32 item class,
 *            its 4-byte argument row (the first argument of an insert number is the one used)
 *   trailer: the trailer's keys in order, then its values, each followed by a NUL
 *   program: the shared prefix program the blob calls (-1: none)
 *   strings: the texts the message gives that prefix: u32 count, u32 length of each, then
 *            the texts end to end
 *   prefix:  the message starts with %0 (the blob's WPPR_P_PREFIX flag) */
int64_t wppc_message(wppc_table *t, const uint8_t *fmt, uint32_t fmt_len,
                     const uint8_t *args, uint32_t args_len, const uint8_t *trailer, uint32_t trailer_len, int32_t program,
                     const uint8_t *strings, uint32_t strings_len, int prefix,
                     uint8_t *out, uint32_t cap, wppc_need *need);

#endif
