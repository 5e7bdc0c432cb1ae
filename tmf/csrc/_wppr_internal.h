/* _wppr_internal.h: what the renderer's C files share (not seen by Python). */
#ifndef WPPTRACE_WPPR_INTERNAL_H
#define WPPTRACE_WPPR_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "wpprender.h"

/* -- output buffer (wppr_text.c) -- */
#include <string.h>
int wppr_grow(wppr_buf *b, size_t extra);             /* 0, or -1: out of memory */
/* inline: the renderer calls these several times per field of every row */
static inline int wppr_reserve(wppr_buf *b, size_t extra)   /* 0, or -1: out of memory */
{
    return b->len + extra <= b->cap ? 0 : wppr_grow(b, extra);
}
static inline int wppr_put(wppr_buf *b, const void *p, size_t n)
{
    if (wppr_reserve(b, n)) return -1;
    uint8_t *d = b->data + b->len;
    if (n <= 16) {                      /* most pieces are short: no call into the C library */
        const uint8_t *s = p;
        for (size_t i = 0; i < n; i++) d[i] = s[i];
    } else {
        memcpy(d, p, n);
    }
    b->len += n;
    return 0;
}
static inline int wppr_putc(wppr_buf *b, uint8_t c)
{
    if (b->len == b->cap && wppr_grow(b, 1)) return -1;
    b->data[b->len++] = c;
    return 0;
}
int wppr_put_cp(wppr_buf *b, uint32_t cp);             /* one code point as UTF-8 */

/* -- text conversions, each appending UTF-8 to b -- */
int wppr_put_ansi(wppr_buf *b, const uint8_t *p, size_t n);    /* UTF-8 if valid, else cp1252 */
int wppr_put_utf16(wppr_buf *b, const uint8_t *p, size_t n);   /* UTF-16LE, errors -> U+FFFD */
int wppr_put_cp1252(wppr_buf *b, const uint8_t *p, size_t n);
void wppr_reduce(wppr_buf *b, size_t start);                     /* ItemRString rules */

/* Apply %s semantics to the text at b->data[start:]: keep at most prec code points (prec >= 0),
 * then pad to width with spaces (left-justified with WPPR_MINUS). */
int wppr_finish_str(wppr_buf *b, size_t start, int flags, int width, int prec);
/* Pad the text at b->data[start:] to width the way the C runtime pads a number: spaces, or
 * zeros after the sign and 0x (zero_ok and WPPR_ZERO). */
int wppr_pad(wppr_buf *b, size_t start, int flags, int width, int zero_ok);

/* MSVC printf of a zero-extended integer slot value under a spec (d i u x X o p c C n s and
 * the float conversions); bits: how many bits the spec reads. 1: the text cannot be
 * produced exactly (Python renders the row). */
int wppr_put_int(wppr_buf *b, uint64_t value, int conv, int flags, int width, int prec, int bits,
                 int pointer_size);
/* Python's %-operator on a double (conv e E f g G), or %g text with conv 0. */
int wppr_put_double(wppr_buf *b, double value, int conv, int flags, int width, int prec);
/* Python's %-operator on a non-negative int (conv d x X o s), for the prefix. */
int wppr_put_pyint(wppr_buf *b, uint64_t value, int conv, int flags, int width, int prec);
int wppr_put_u64(wppr_buf *b, uint64_t v);
int wppr_put_hex(wppr_buf *b, uint64_t v, int digits, int upper);  /* zero-padded to digits */

/* -- status names (wppr_status.c) -- */
typedef struct { uint32_t code; uint32_t len; const char *name; } wppr_status_row;
/* the table row of a code (NULL: none); wppr_status_name's rules */
const wppr_status_row *wppr_status_row_of(int kind, uint32_t code);
extern const wppr_status_row wppr_status_ntstatus[], wppr_status_winerror[], wppr_status_hresult[],
    wppr_status_ndis_status[], wppr_status_ndis_oid[];
extern const uint32_t wppr_status_sizes[5];

/* -- time text (wppr_time.c) -- */
typedef struct {
    int64_t second;           /* FILETIME second of text, or INT64_MIN */
    int utc;
    char text[48];            /* "MM/DD/YYYY-HH:MM:SS." */
    int len;
} wppr_second_cache;
/* "YYYY-MM-DDTHH:MM:SS." of a FILETIME second, UTC (the year kept to 0..9999, as the
 * Python side does), into out (32 bytes); returns its length */
int wppr_iso_second(int64_t second, char *out);
/* the time text of FILETIME milliseconds (floor(FILETIME / 10000)) into out (64 bytes) */
int wppr_time_cached(wppr_second_cache *c, int64_t milli, char *out);

#endif
