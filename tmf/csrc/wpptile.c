/* wpptile.c: a TMF text split at its tiles (see wpptile.h).
 *
 * The pattern (wpptrace.tmf.grammar._TILE_PATTERN) read as the steps it takes: a match starts
 * at a line's start only (its look-behind), and every part of it is decided without going
 * back (the name and digit runs end at a character their class does not hold, which the blank
 * after them must be; the block's and the trailer's repeats give back no line, as the comment
 * of the pattern says), so the split is one pass over the lines.
 */
#include <string.h>
#include "wpptile.h"

enum {
    NAME = 1,        /* [!#-~]: a character of the #typev line's name */
    LINE = 2,        /* [!"$-/:-@G-Z\[-`g-z|~]: a block line may start with it */
    HEX = 4,         /* [0-9A-Fa-f] */
    DIGIT = 8,       /* [0-9] */
};

/* The pattern's character classes, a bit each (GNU range initializers, as gcc and clang take them) */
static const uint8_t kind[256] = {
    ['!'] = NAME | LINE, ['"'] = LINE, ['#'] = NAME, ['$' ... '/'] = NAME | LINE,
    ['0' ... '9'] = NAME | HEX | DIGIT, [':' ... '@'] = NAME | LINE, ['A' ... 'F'] = NAME | HEX,
    ['G' ... 'Z'] = NAME | LINE, ['[' ... '`'] = NAME | LINE, ['a' ... 'f'] = NAME | HEX,
    ['g' ... 'z'] = NAME | LINE, ['{'] = NAME, ['|'] = NAME | LINE, ['}'] = NAME, ['~'] = NAME | LINE,
};

/* A block line starting with a hex digit at p: one of 8 hex digits and "-" (a GUID) ends the block. */
static int guid_like(const uint8_t *text, uint64_t size, uint64_t p)
{
    if (size - p < 9 || text[p + 8] != '-')
        return 0;
    for (int i = 1; i < 8; i++)
        if (!(kind[text[p + i]] & HEX))
            return 0;
    return 1;
}

/* The end of the tile at line start p (its #typev line ends at eol, a "\n"), its number in
 * *number; 0 when there is none. */
static uint64_t tile_at(const uint8_t *text, uint64_t size, uint64_t p, uint64_t eol, uint32_t *number)
{
    uint64_t q = p + 5, start;
    if (text[q] == 'v')
        q++;
    if (text[q] != ' ')
        return 0;
    for (start = ++q; kind[text[q]] & NAME; q++) {}
    if (q == start || text[q] != ' ')
        return 0;
    uint32_t value = 0;
    for (start = ++q; kind[text[q]] & DIGIT; q++)
        value = value * 10 + (uint32_t)(text[q] - '0');
    if (q == start || q - start > 5 || text[q] != ' ' || text[q + 1] != '"')
        return 0;
    q += 2;
    if (memchr(text + q, '"', eol - q) == NULL)
        return 0;
    /* (every read above stops at eol: "\n" is in no class, and is not " " or "\"") */
    q = eol + 1;
    if (size - q < 2 || text[q] != '{' || text[q + 1] != '\n')
        return 0;
    for (q += 2; q < size; ) {
        uint8_t k = kind[text[q]];
        if (!(k & LINE) && !((k & HEX) && !guid_like(text, size, q)))
            break;
        const uint8_t *nl = memchr(text + q + 1, '\n', size - q - 1);
        if (nl == NULL)
            return 0;   /* the line is not the block's, nor "}" */
        q = (uint64_t)(nl - text) + 1;
    }
    if (size - q < 2 || text[q] != '}' || text[q + 1] != '\n')
        return 0;
    for (q += 2; q < size; ) {
        if (text[q] == '\n') {
            q++;
        } else if (size - q >= 2 && text[q] == '/' && text[q + 1] == '/') {
            const uint8_t *nl = memchr(text + q + 2, '\n', size - q - 2);
            if (nl == NULL)
                break;
            q = (uint64_t)(nl - text) + 1;
        } else {
            break;
        }
    }
    *number = value;
    return q;
}

int64_t wppt_split(const uint8_t *text, uint64_t size, uint64_t *out, uint64_t cap)
{
    uint64_t tiles = 0, rest = 0, p = 0;
    while (p < size) {
        const uint8_t *nl = memchr(text + p, '\n', size - p);
        if (nl == NULL)
            break;      /* a tile's lines all end with "\n" */
        uint64_t eol = (uint64_t)(nl - text);
        uint32_t number;
        uint64_t end;
        if (eol - p >= 5 && memcmp(text + p, "#type", 5) == 0 && (end = tile_at(text, size, p, eol, &number)) != 0) {
            if (tiles == cap) {
                out[4 * tiles] = rest;  /* where a next call goes on: the end of the last tile */
                return -1;
            }
            out[4 * tiles] = p - rest;
            out[4 * tiles + 1] = eol + 1 - p;
            out[4 * tiles + 2] = number;
            out[4 * tiles + 3] = end - (eol + 1);
            tiles++;
            rest = p = end;
        } else {
            p = eol + 1;
        }
    }
    out[4 * tiles] = size - rest;
    return (int64_t)tiles;
}
