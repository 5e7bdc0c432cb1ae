/* wpp_values.h: the typed argument values of a chunk of WPP rows, decoded in one call for
 * DecodedMessage.args (decoder/row_messages.py).
 *
 * Each message key may have a value layout (made from the TMF by Python: per argument its
 * wire form and the kind of value decode_args gives, the WPPR_J_* kinds of the JSON output).
 * One call decodes the arguments of every row of a chunk into five pools, one per kind, and
 * says where each row's values are, so Python makes a chunk's values with a few calls and a
 * message's with one slice. A row whose key has no layout, whose bytes do not fit it or
 * whose values only Python gives exactly (a string holding a NUL) is left to Python.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 */
#ifndef WPPTRACE_WPP_VALUES_H
#define WPPTRACE_WPP_VALUES_H
#include <stdint.h>
#include "wpp_rows.h"

/* the pools, in the order Python lays them end to end */
#define WPPV_UNSIGNED        0      /* uint64: the zero-extended value */
#define WPPV_SIGNED          1      /* int64: sign-extended from the spec's bits */
#define WPPV_DOUBLE          2      /* double */
#define WPPV_STRING          3      /* UTF-8 text, each value followed by a NUL */
#define WPPV_GUID            4      /* 16 bytes (bytes_le) */
#define WPPV_POOLS           5

/* A value layout (at layouts + key_layout[key]): u16 nargs, u16 0, then per argument u8 wire
 * (WPPR_W_*), u8 size (of a fixed one), u8 flags (WPPR_A_REDUCE), u8 kind (WPPR_J_*), u8 bits
 * of a signed value at pointer size 4, u8 at 8, u16 0. */
#define WPPV_LAYOUT_HEAD     4
#define WPPV_LAYOUT_ARG      8

typedef struct {
    wppr_buf pool[WPPV_POOLS];
    wppr_buf order;         /* uint32 per value, rows in order: its index in the pools laid end
                               to end (set when the call returns) */
    uint32_t count[WPPV_POOLS];
} wppv_values;

/* Decode the values of the rows refs[0:n] (rows, row_counts, datas, pointer_sizes, nslots
 * as wpprow_render takes them) into out, emptied first. key_layout[key] (nkeys of them): the
 * offset of the key's layout in layouts[0:layouts_len], or -1 (Python's). Per row i: ids[i]
 * = key + 1, or 0 when Python decodes it; its values are order[starts[i]:starts[i + 1]]
 * (starts has n + 1 entries). 0, or -1 when out of memory. */
int wppv_decode(const uint64_t *refs, uint32_t n, const wpprow *const *rows,
                const uint32_t *row_counts, const uint8_t *const *datas,
                const uint32_t *pointer_sizes, uint32_t nslots, const int32_t *key_layout,
                uint32_t nkeys, const uint8_t *layouts, uint32_t layouts_len, int32_t *ids,
                uint32_t *starts, wppv_values *out);
/* free the buffers of v (it may be used again) */
void wppv_free(wppv_values *v);

#endif
