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
/* Copy n bytes between buffers that do not overlap. Most pieces (digits, names, short
 * literals) are short: they move as one or two overlapping words, with no call into the C
 * library. */
static inline void wppr_copy(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n > 16) {
        memcpy(d, s, n);
    } else if (n >= 8) {
        memcpy(d, s, 8);
        memcpy(d + n - 8, s + n - 8, 8);
    } else if (n >= 4) {
        memcpy(d, s, 4);
        memcpy(d + n - 4, s + n - 4, 4);
    } else if (n) {
        d[0] = s[0];
        d[n / 2] = s[n / 2];
        d[n - 1] = s[n - 1];
    }
}
/* wppr_copy for text of any length up to 64 bytes (a message's literal text) in 16-byte
 * words, the last one overlapping */
static inline void wppr_copy_text(uint8_t *d, const uint8_t *s, size_t n)
{
    if (n <= 16 || n > 64) {
        wppr_copy(d, s, n);
        return;
    }
    for (size_t i = 0; i + 16 < n; i += 16) memcpy(d + i, s + i, 16);
    memcpy(d + n - 16, s + n - 16, 16);
}
static inline int wppr_put(wppr_buf *b, const void *p, size_t n)
{
    if (n == 0) return 0;      /* a buffer with no memory yet: no data + len on its NULL */
    if (wppr_reserve(b, n)) return -1;
    wppr_copy(b->data + b->len, p, n);
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

/* Digits are written backwards, straight into the buffer, once their count is known: two
 * decimal digits per division, two hex digits per byte. */
static const char WPPR_DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";
static const char WPPR_HEX_LOWER[] = "0123456789abcdef", WPPR_HEX_UPPER[] = "0123456789ABCDEF";
/* the two hex digits of every byte value */
static const char WPPR_HEX_PAIRS_LOWER[] =
    "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
    "404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
    "606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
    "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
    "e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
static const char WPPR_HEX_PAIRS_UPPER[] =
    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F"
    "202122232425262728292A2B2C2D2E2F303132333435363738393A3B3C3D3E3F"
    "404142434445464748494A4B4C4D4E4F505152535455565758595A5B5C5D5E5F"
    "606162636465666768696A6B6C6D6E6F707172737475767778797A7B7C7D7E7F"
    "808182838485868788898A8B8C8D8E8F909192939495969798999A9B9C9D9E9F"
    "A0A1A2A3A4A5A6A7A8A9AAABACADAEAFB0B1B2B3B4B5B6B7B8B9BABBBCBDBEBF"
    "C0C1C2C3C4C5C6C7C8C9CACBCCCDCECFD0D1D2D3D4D5D6D7D8D9DADBDCDDDEDF"
    "E0E1E2E3E4E5E6E7E8E9EAEBECEDEEEFF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF";

static inline int wppr_dec_len(uint64_t v)
{
    static const uint64_t pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};
    /* from the bit length (1233/4096 ~ log10(2)), one comparison to settle */
    int t = ((64 - __builtin_clzll(v | 1)) * 1233) >> 12;
    int n = t + (v >= pow10[t]);
    return n ? n : 1;
}

static inline int wppr_hex_len(uint64_t v) { return (64 - __builtin_clzll(v | 1) + 3) >> 2; }

/* the decimal digits of v ending at end (dec_len(v) of them) */
static inline void wppr_dec_at(uint8_t *end, uint64_t v)
{
    while (v >= 100) {
        unsigned k = (unsigned)(v % 100) * 2;
        v /= 100;
        *--end = (uint8_t)WPPR_DIGIT_PAIRS[k + 1];
        *--end = (uint8_t)WPPR_DIGIT_PAIRS[k];
    }
    if (v >= 10) {
        *--end = (uint8_t)WPPR_DIGIT_PAIRS[v * 2 + 1];
        *--end = (uint8_t)WPPR_DIGIT_PAIRS[v * 2];
    } else {
        *--end = (uint8_t)('0' + v);
    }
}

/* the decimal digits of v at o (room for 20 is the caller's); where they end */
static inline uint8_t *wppr_dec_put(uint8_t *o, uint64_t v)
{
    int n = wppr_dec_len(v);
    wppr_dec_at(o + n, v);
    return o + n;
}

/* n hex digits of v ending at end: leading zeros when n > hex_len(v) */
static inline void wppr_hex_at(uint8_t *end, uint64_t v, int n, int upper)
{
    const char *pairs = upper ? WPPR_HEX_PAIRS_UPPER : WPPR_HEX_PAIRS_LOWER;
    for (; n >= 2; n -= 2, v >>= 8) {
        end -= 2;
        memcpy(end, pairs + (v & 255) * 2, 2);
    }
    if (n) *--end = (uint8_t)pairs[(v & 15) * 2 + 1];
}

static inline void wppr_fill(uint8_t *d, uint8_t c, int n)
{
    if (n > 16) {
        memset(d, c, (size_t)n);
        return;
    }
    for (int i = 0; i < n; i++) d[i] = c;
}

/* Python's "%d" / "%x" / "%X" % v padded to width with zeros (zero) or spaces: the prefix's
 * usual %04X and %d; width at most 20 */
static inline __attribute__((always_inline)) int
wppr_put_padded(wppr_buf *b, uint64_t v, int conv, int zero, int width)
{
    int n = conv == 'd' ? wppr_dec_len(v) : wppr_hex_len(v);
    int pad = width > n ? width - n : 0;
    if (wppr_reserve(b, (size_t)(pad + n))) return -1;
    uint8_t *o = b->data + b->len;
    if (conv == 'd') {
        wppr_fill(o, zero ? '0' : ' ', pad);
        wppr_dec_at(o + pad + n, v);
    } else if (zero) {                  /* the zeros are the value's leading digits */
        wppr_hex_at(o + pad + n, v, pad + n, conv == 'X');
    } else {
        wppr_fill(o, ' ', pad);
        wppr_hex_at(o + pad + n, v, n, conv == 'X');
    }
    b->len += (size_t)(pad + n);
    return 0;
}


/* -- text conversions, each appending UTF-8 to b -- */
int wppr_put_ansi(wppr_buf *b, const uint8_t *p, size_t n);    /* UTF-8 if valid, else cp1252 */
int wppr_put_utf16(wppr_buf *b, const uint8_t *p, size_t n);   /* UTF-16LE, errors -> U+FFFD */
int wppr_put_cp1252(wppr_buf *b, const uint8_t *p, size_t n);
void wppr_reduce(wppr_buf *b, size_t start);                     /* ItemRString rules */
/* the text of a string argument of wire form wire (WPPR_W_CSTR .. PWSTR; reduce: the
 * WPPR_A_REDUCE rules applied) from its bytes p[0:n] */
int wppr_put_string(wppr_buf *b, int wire, int reduce, const uint8_t *p, size_t n);

/* -- argument blocks -- */
/* Where the argument of wire form wire (WPPR_W_*; size: a fixed one's bytes, ps: a pointer's)
 * starting at a[*off] lies in a[0:n]: its bytes are a[*start:*start + *len] and *off moves
 * past it (a string's terminator, a count's USHORT). 0, or 1 when the bytes end inside it.
 * Inline: the renderer splits every argument of every row with it. */
static inline int wppr_arg_span(int wire, uint32_t size, int ps, const uint8_t *a, uint32_t n,
                                uint32_t *off, uint32_t *start, uint32_t *len)
{
    uint32_t at = *off;
    switch (wire) {
    case WPPR_W_FIXED: case WPPR_W_PTR:
        size = wire == WPPR_W_PTR ? (uint32_t)ps : size;
        if (size > n - at) return 1;
        *start = at;
        *len = size;
        *off = at + size;
        return 0;
    case WPPR_W_CSTR: {
        const uint8_t *z = at < n ? memchr(a + at, 0, n - at) : NULL;
        if (!z) return 1;
        *start = at;
        *len = (uint32_t)(z - (a + at));
        *off = at + *len + 1;
        return 0;
    }
    case WPPR_W_WSTR: {
        uint32_t k = at;
        while (k + 1 < n && (a[k] | a[k + 1])) k += 2;
        if (k + 1 >= n) return 1;
        *start = at;
        *len = k - at;
        *off = k + 2;
        return 0;
    }
    default: {                     /* USHORT byte count + bytes */
        if (n - at < 2) return 1;
        uint32_t count = (uint32_t)(a[at] | a[at + 1] << 8);
        if (count > n - at - 2) return 1;
        *start = at + 2;
        *len = count;
        *off = at + 2 + count;
        return 0;
    }
    }
}

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
/* a kind's hash index: the rows of bucket (code * multiplier) >> shift are
 * slots[start[b]] .. slots[start[b + 1] - 1] (indices into its table) */
typedef struct { uint32_t shift; const uint16_t *start; const uint16_t *slots; } wppr_status_hash;
extern const uint32_t wppr_status_hash_multiplier;
extern const wppr_status_hash wppr_status_hashes[5];

/* -- time text (wppr_time.c) -- */
typedef struct {
    int64_t second;           /* FILETIME second of text, or INT64_MIN */
    int utc;
    char text[64];            /* "MM/DD/YYYY-HH:MM:SS." then the digits of milli */
    int len;                  /* of the second's text */
    int64_t milli;            /* the milliseconds whose digits follow it (if second is set) */
} wppr_second_cache;
/* "YYYY-MM-DDTHH:MM:SS." of a FILETIME second, UTC (the year kept to 0..9999, as the
 * Python side does), into out (32 bytes); returns its length */
int wppr_iso_second(int64_t second, char *out);
/* the time text of FILETIME milliseconds (floor(FILETIME / 10000)) into out (64 bytes) */
int wppr_time_cached(wppr_second_cache *c, int64_t milli, char *out);

#endif
