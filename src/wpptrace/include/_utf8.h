/* _utf8.h: one code point as UTF-8, written once for the C parts that write UTF-8 (the
 * provider core's names, the TMF renderer's text). Not part of the cffi declarations. */
#ifndef WPPTRACE_UTF8_H
#define WPPTRACE_UTF8_H
#include <stdint.h>

/* Writes cp (at most 0x10FFFF: each lead byte's bits fit it) to out[0..3] as UTF-8 and
 * returns the bytes written, 1 to 4. A surrogate is written as its three bytes: callers
 * that must not write one replace it first. */
static inline int wpt_utf8_put(uint8_t out[4], uint32_t cp)
{
    if (cp < 0x80) { out[0] = (uint8_t)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (uint8_t)(0xC0 | cp >> 6); out[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (uint8_t)(0xE0 | cp >> 12); out[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        out[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | cp >> 18); out[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    out[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F)); out[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

#endif
