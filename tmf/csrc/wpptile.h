/* wpptile.h: a TMF text split at its tiles (the message entries written as tracepdb writes
 * them) in C: the split wpptrace.tmf.grammar's _TILE pattern makes (_TILE.split(text)), for a
 * text the caller has checked is ASCII with no "\r". The pattern is the reference; this is its
 * fast form (the tests compare the two over every TMF text of the suite and mutations of them).
 *
 * A tile: a line "#type" (at the line's start) "v"? " " name " " number " " followed by a
 * quote and, later on the line, another one; then a line "{", lines that start with a printable
 * ASCII character other than "#", "{", "}" and not with eight hex digits and "-" (a blank,
 * control or non-ASCII start ends the block), a line "}", and the // and empty lines
 * after it. Every line of a tile ends with "\n". The name is printable ASCII but blank and
 * quote; the number 1 to 5 digits.
 */
#ifndef WPPTRACE_WPPTILE_H
#define WPPTRACE_WPPTILE_H
#include <stdint.h>

/* The fewest bytes a tile takes ("#type a 0 \"\"\n{\n}\n"): a text of n bytes has at most
 * n / WPPT_TILE_MIN tiles. (The caller need not reserve that much: see wppt_split's -1.) */
#define WPPT_TILE_MIN 17

/* Split text[0:size] at its tiles, as the pattern's split lays out its pieces: out[0] the
 * length of the text before the first tile, then for each tile its #typev line's length, its
 * message number, its block's length (with the // and empty lines after it) and the length
 * of the text up to the next tile (or the end): 4 * tiles + 1 values. Returns the number of
 * tiles, or -1 when out (4 * cap + 1 values) has no room for them: then out holds the first
 * cap tiles' 4 * cap values and out[4 * cap] the offset the split goes on from (the end of the
 * last of them, a line's start), to be called again on text[offset:size]. */
int64_t wppt_split(const uint8_t *text, uint64_t size, uint64_t *out, uint64_t cap);

#endif
