/* wppr_text.c: the renderer's text primitives: output buffer, ANSI / UTF-16 decoding,
 * %s width and precision, MSVC printf of integers, Python's %-operator on doubles and on
 * the prefix's integers. Each reproduces, byte for byte, what the Python renderer prints
 * (wpptrace.tmf.cprintf / itemtypes / decoder.prefix); the tests compare the two. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_wppr_internal.h"
#include "_utf8.h"

/* A borrowed buffer outgrown: its text moves to the buffer's own memory, made large enough
 * (what that memory held is of no use: not copied by a realloc). */
static int leave_borrowed(wppr_buf *b, size_t extra)
{
    size_t cap = b->own_cap ? b->own_cap : 65536;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = b->own;
    if (cap > b->own_cap) {
        free(b->own);
        b->own = NULL;
        b->own_cap = 0;
        p = malloc(cap);
        if (!p) return -1;
    } else {
        cap = b->own_cap;
    }
    if (b->len) memcpy(p, b->data, b->len);
    b->data = p;
    b->cap = cap;
    b->own = NULL;
    b->own_cap = 0;
    b->borrowed = 0;
    return 0;
}

int wppr_grow(wppr_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return 0;
    if (b->borrowed) return leave_borrowed(b, extra);
    size_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

void wppr_buf_free(wppr_buf *b)
{
    free(b->borrowed ? b->own : b->data);
    memset(b, 0, sizeof *b);
}

void wppr_buf_borrow(wppr_buf *b, uint8_t *mem, size_t cap)
{
    if (!b->borrowed) {
        b->own = b->data;
        b->own_cap = b->cap;
        b->borrowed = 1;
    }
    b->data = mem;
    b->cap = cap;
    b->len = 0;
}

void wppr_buf_return(wppr_buf *b)
{
    if (!b->borrowed) return;
    b->data = b->own;
    b->cap = b->own_cap;
    b->len = 0;
    b->own = NULL;
    b->own_cap = 0;
    b->borrowed = 0;
}


int wppr_put_cp(wppr_buf *b, uint32_t cp)
{
    if (wppr_reserve(b, 4)) return -1;
    b->len += (size_t)wpt_utf8_put(b->data + b->len, cp);     /* callers give cp <= 0x10FFFF */
    return 0;
}

/* -- decoding ----------------------------------------------------------------------------- */

/* Length of the valid UTF-8 prefix of p[0:n] under Python's strict decoder (no surrogates,
 * no overlong forms, nothing above U+10FFFF). */
static size_t utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF) need = 1;
        else if (c == 0xE0) { need = 2; lo = 0xA0; }
        else if (c >= 0xE1 && c <= 0xEC) need = 2;
        else if (c == 0xED) { need = 2; hi = 0x9F; }
        else if (c >= 0xEE && c <= 0xEF) need = 2;
        else if (c == 0xF0) { need = 3; lo = 0x90; }
        else if (c >= 0xF1 && c <= 0xF3) need = 3;
        else if (c == 0xF4) { need = 3; hi = 0x8F; }
        else return i;
        if (i + need >= n) return i;
        if (p[i + 1] < lo || p[i + 1] > hi) return i;
        for (size_t k = 2; k <= need; k++)
            if ((p[i + k] & 0xC0) != 0x80) return i;
        i += need + 1;
    }
    return n;
}

/* cp1252 bytes 0x80..0x9F; 0 marks the five undefined bytes (decoded as U+FFFD) */
static const uint16_t CP1252_HIGH[32] = {
    0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160, 0x2039, 0x0152,
    0, 0x017D, 0, 0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014, 0x02DC, 0x2122, 0x0161,
    0x203A, 0x0153, 0, 0x017E, 0x0178,
};

static uint32_t cp1252(uint8_t c)
{
    if (c < 0x80 || c >= 0xA0) return c;
    uint16_t cp = CP1252_HIGH[c - 0x80];
    return cp ? cp : 0xFFFD;
}

int wppr_put_cp1252(wppr_buf *b, const uint8_t *p, size_t n)
{
    if (wppr_reserve(b, 3 * n)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) b->data[b->len++] = p[i];
        else wppr_put_cp(b, cp1252(p[i]));
    }
    return 0;
}

int wppr_put_ansi(wppr_buf *b, const uint8_t *p, size_t n)
{
    /* ANSI code page text; modern providers often log UTF-8, which is tried first */
    if (utf8_valid(p, n) == n) return wppr_put(b, p, n);
    return wppr_put_cp1252(b, p, n);
}

int wppr_put_utf16(wppr_buf *b, const uint8_t *p, size_t n)
{
    if (wppr_reserve(b, 3 * (n / 2) + 3)) return -1;
    size_t i = 0;
    while (i + 1 < n) {
        uint32_t u = p[i] | (uint32_t)p[i + 1] << 8;
        i += 2;
        if (u < 0xD800 || u > 0xDFFF) { wppr_put_cp(b, u); continue; }
        if (u <= 0xDBFF && i + 1 < n) {
            uint32_t v = p[i] | (uint32_t)p[i + 1] << 8;
            if (v >= 0xDC00 && v <= 0xDFFF) {
                wppr_put_cp(b, 0x10000 + ((u - 0xD800) << 10) + (v - 0xDC00));
                i += 2;
                continue;
            }
        }
        wppr_put_cp(b, 0xFFFD);            /* an unpaired surrogate */
    }
    if (i < n) wppr_put_cp(b, 0xFFFD);     /* an odd byte at the end */
    return 0;
}

void wppr_reduce(wppr_buf *b, size_t start)
{
    /* tabs, commas and CR -> spaces, LF -> commas; trailing spaces and commas dropped */
    for (size_t i = start; i < b->len; i++) {
        uint8_t c = b->data[i];
        if (c == '\t' || c == ',' || c == '\r') b->data[i] = ' ';
        else if (c == '\n') b->data[i] = ',';
    }
    while (b->len > start && (b->data[b->len - 1] == ' ' || b->data[b->len - 1] == ','))
        b->len--;
}

int wppr_put_string(wppr_buf *b, int wire, int reduce, const uint8_t *p, size_t n)
{
    size_t start = b->len;
    int rc = wire == WPPR_W_WSTR || wire == WPPR_W_PWSTR
             ? wppr_put_utf16(b, p, n & ~(size_t)1)     /* an odd count drops its last byte */
             : wppr_put_ansi(b, p, n);
    if (!rc && reduce) wppr_reduce(b, start);
    return rc;
}

/* -- width and precision ---------------------------------------------------------------- */

static size_t code_points(const uint8_t *p, size_t n)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += (p[i] & 0xC0) != 0x80;
    return count;
}

static int insert_fill(wppr_buf *b, size_t at, uint8_t fill, size_t count)
{
    if (wppr_reserve(b, count)) return -1;
    memmove(b->data + at + count, b->data + at, b->len - at);
    memset(b->data + at, fill, count);
    b->len += count;
    return 0;
}

int wppr_pad(wppr_buf *b, size_t start, int flags, int width, int zero_ok)
{
    if (width <= 0) return 0;
    size_t cps = code_points(b->data + start, b->len - start);
    if (cps >= (size_t)width) return 0;
    size_t fill = (size_t)width - cps;
    if (flags & WPPR_MINUS) {
        if (wppr_reserve(b, fill)) return -1;
        memset(b->data + b->len, ' ', fill);
        b->len += fill;
        return 0;
    }
    if (zero_ok && (flags & WPPR_ZERO)) {
        size_t at = start;
        if (at < b->len && (b->data[at] == '+' || b->data[at] == '-' || b->data[at] == ' ')) at++;
        if (at + 1 < b->len && b->data[at] == '0' && (b->data[at + 1] == 'x' || b->data[at + 1] == 'X'))
            at += 2;
        return insert_fill(b, at, '0', fill);
    }
    return insert_fill(b, start, ' ', fill);
}

int wppr_finish_str(wppr_buf *b, size_t start, int flags, int width, int prec)
{
    if (prec >= 0) {
        size_t i = start, cps = 0;
        while (i < b->len) {
            if ((b->data[i] & 0xC0) != 0x80) {
                if (cps == (size_t)prec) break;
                cps++;
            }
            i++;
        }
        b->len = i;
    }
    return wppr_pad(b, start, flags, width, 0);
}

/* -- numbers ----------------------------------------------------------------------------- */

static int digits_of(char *out, uint64_t v, int base, int upper)
{
    char tmp[24];
    const char *set = upper ? WPPR_HEX_UPPER : WPPR_HEX_LOWER;
    int n = 0;
    do { tmp[n++] = set[v % (unsigned)base]; v /= (unsigned)base; } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

int wppr_put_u64(wppr_buf *b, uint64_t v)
{
    int n = wppr_dec_len(v);
    if (wppr_reserve(b, (size_t)n)) return -1;
    wppr_dec_at(b->data + b->len + n, v);
    b->len += (size_t)n;
    return 0;
}

int wppr_put_hex(wppr_buf *b, uint64_t v, int digits, int upper)
{
    int n = wppr_hex_len(v);
    if (n < digits) n = digits;
    if (wppr_reserve(b, (size_t)n)) return -1;
    wppr_hex_at(b->data + b->len + n, v, n, upper);
    b->len += (size_t)n;
    return 0;
}

static int put_float(wppr_buf *b, double value, int conv, int flags, int width, int prec);

int wppr_put_int(wppr_buf *b, uint64_t value, int conv, int flags, int width, int prec, int bits,
                 int pointer_size)
{
    size_t start = b->len;
    switch (conv) {
    case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': {
        uint64_t mask = bits >= 64 ? ~0ULL : (1ULL << bits) - 1;
        uint64_t v = value & mask, mag = v;
        int neg = 0;
        if ((conv == 'd' || conv == 'i') && (v >> (bits - 1)) & 1) {
            neg = 1;
            mag = (~v + 1) & mask;         /* the magnitude of the two's complement value */
        }
        char head[3];
        int n = 0, h = 0, base = conv == 'o' ? 8 : (conv == 'x' || conv == 'X') ? 16 : 10;
        if (!(prec == 0 && mag == 0))
            n = base == 10 ? wppr_dec_len(mag) : base == 16 ? wppr_hex_len(mag)
                                                       : (64 - __builtin_clzll(mag | 1) + 2) / 3;
        if (conv == 'd' || conv == 'i') {
            if (neg) head[h++] = '-';
            else if (flags & WPPR_PLUS) head[h++] = '+';
            else if (flags & WPPR_SPACE) head[h++] = ' ';
        }
        int zeros = prec > n ? prec - n : 0;
        if (flags & WPPR_HASH) {
            if (conv == 'o' && !(zeros || (n > 0 && mag == 0))) zeros++;   /* one leading 0 */
            else if ((conv == 'x' || conv == 'X') && mag != 0) { head[h++] = '0'; head[h++] = (char)conv; }
        }
        int len = h + zeros + n, pad = width > len ? width - len : 0;
        if (wppr_reserve(b, (size_t)(len + pad))) return -1;
        uint8_t *o = b->data + b->len;
        if (pad && !(flags & WPPR_MINUS) && !(prec < 0 && (flags & WPPR_ZERO))) {
            wppr_fill(o, ' ', pad);                  /* right-justified */
            o += pad;
            pad = 0;
        }
        for (int i = 0; i < h; i++) *o++ = (uint8_t)head[i];
        if (pad && !(flags & WPPR_MINUS)) {     /* zero padding after the sign and 0x */
            zeros += pad;
            pad = 0;
        }
        wppr_fill(o, '0', zeros);
        o += zeros;
        if (base == 10) {
            if (n) wppr_dec_at(o + n, mag);
        } else if (base == 16) {
            wppr_hex_at(o + n, mag, n, conv == 'X');
        } else {
            uint64_t m = mag;
            for (int i = n; i > 0; i--, m >>= 3) o[i - 1] = (uint8_t)('0' + (m & 7));
        }
        o += n;
        wppr_fill(o, ' ', pad);                      /* left-justified */
        o += pad;
        b->len = (size_t)(o - b->data);
        return 0;
    }
    case 'p': {
        uint64_t v = pointer_size >= 8 ? value : value & 0xFFFFFFFFull;
        if (wppr_put_hex(b, v, pointer_size * 2, 1)) return -1;
        return wppr_pad(b, start, flags, width, 0);
    }
    case 'c': {
        uint8_t c = (uint8_t)value;
        if (wppr_put_cp1252(b, &c, 1)) return -1;
        return wppr_pad(b, start, flags, width, 0);
    }
    case 'C': {
        uint32_t cp = (uint32_t)(value & 0xFFFF);
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
        if (wppr_put_cp(b, cp)) return -1;
        return wppr_pad(b, start, flags, width, 0);
    }
    case 'n':
        return 0;
    case 'e': case 'E': case 'f': case 'g': case 'G':
        return put_float(b, (double)value, conv, flags, width, prec);
    case 's': case 'S':
        if (wppr_put_u64(b, value)) return -1;
        return wppr_finish_str(b, start, flags, width, prec);
    default:
        return 1;
    }
}

/* Python's %-operator on a double: the C library's text for finite values; inf and nan as
 * Python prints them (no sign on nan, zero padding honoured). */
static int put_float(wppr_buf *b, double value, int conv, int flags, int width, int prec)
{
    size_t start = b->len;
    if (!isfinite(value)) {
        int upper = conv == 'E' || conv == 'G';
        const char *body = isnan(value) ? (upper ? "NAN" : "nan") : (upper ? "INF" : "inf");
        if (isinf(value) && value < 0) wppr_putc(b, '-');
        else if (flags & WPPR_PLUS) wppr_putc(b, '+');
        else if (flags & WPPR_SPACE) wppr_putc(b, ' ');
        if (wppr_put(b, body, 3)) return -1;
        return wppr_pad(b, start, flags, width, 1);
    }
    char fmt[48];
    int k = 0;
    fmt[k++] = '%';
    if (flags & WPPR_MINUS) fmt[k++] = '-';
    if (flags & WPPR_PLUS) fmt[k++] = '+';
    if (flags & WPPR_SPACE) fmt[k++] = ' ';
    if (flags & WPPR_HASH) fmt[k++] = '#';
    if (flags & WPPR_ZERO) fmt[k++] = '0';
    if (width >= 0) k += snprintf(fmt + k, sizeof fmt - (size_t)k, "%d", width);
    if (prec >= 0) k += snprintf(fmt + k, sizeof fmt - (size_t)k, ".%d", prec);
    fmt[k++] = (char)conv;
    fmt[k] = 0;
    char small[64];
    int n = snprintf(small, sizeof small, fmt, value);
    if (n < 0) return 1;
    if ((size_t)n < sizeof small) return wppr_put(b, small, (size_t)n);
    if (wppr_reserve(b, (size_t)n + 1)) return -1;
    snprintf((char *)b->data + b->len, (size_t)n + 1, fmt, value);
    b->len += (size_t)n;
    return 0;
}

int wppr_put_double(wppr_buf *b, double value, int conv, int flags, int width, int prec)
{
    if (conv == 0) {                       /* "%g" % value */
        if (isnan(value)) return wppr_put(b, "nan", 3);
        return put_float(b, value, 'g', 0, -1, -1);
    }
    return put_float(b, value, conv, flags, width, prec);
}

int wppr_put_pyint(wppr_buf *b, uint64_t value, int conv, int flags, int width, int prec)
{
    size_t start = b->len;
    if ((conv == 'X' || conv == 'x' || conv == 'd') && !(flags & ~WPPR_ZERO) && prec < 0
            && width <= 20) {
        return wppr_put_padded(b, value, conv, flags & WPPR_ZERO, width);
    }
    if (conv == 's') {
        if (wppr_put_u64(b, value)) return -1;
        return wppr_finish_str(b, start, flags & WPPR_MINUS, width, prec);
    }
    char d[24];
    int n = digits_of(d, value, conv == 'o' ? 8 : (conv == 'x' || conv == 'X') ? 16 : 10, conv == 'X');
    char head[4];
    int h = 0;
    if (flags & WPPR_PLUS) head[h++] = '+';
    else if (flags & WPPR_SPACE) head[h++] = ' ';
    if (flags & WPPR_HASH && conv != 'd') {
        head[h++] = '0';
        head[h++] = conv == 'o' ? 'o' : (char)conv;
    }
    int body = h + (n > prec ? n : prec);
    if (width > body && !(flags & WPPR_MINUS) && !(flags & WPPR_ZERO)) {
        if (wppr_reserve(b, (size_t)(width - body))) return -1;
        memset(b->data + b->len, ' ', (size_t)(width - body));
        b->len += (size_t)(width - body);
    }
    if (wppr_put(b, head, (size_t)h)) return -1;
    int zeros = (n > prec ? n : prec) - n;
    if (width > body && !(flags & WPPR_MINUS) && (flags & WPPR_ZERO)) zeros += width - body;
    if (wppr_reserve(b, (size_t)zeros + (size_t)n)) return -1;
    memset(b->data + b->len, '0', (size_t)zeros);
    b->len += (size_t)zeros;
    memcpy(b->data + b->len, d, (size_t)n);
    b->len += (size_t)n;
    if (width > body && (flags & WPPR_MINUS)) {
        if (wppr_reserve(b, (size_t)(width - body))) return -1;
        memset(b->data + b->len, ' ', (size_t)(width - body));
        b->len += (size_t)(width - body);
    }
    return 0;
}
