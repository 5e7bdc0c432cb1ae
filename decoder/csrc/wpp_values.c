/* wpp_values.c: a chunk's typed argument values (see wpp_values.h).
 *
 * The values are the ones MessageFormatter.decode_values gives: the renderer's wire rules
 * split the argument block (wppr_arg_span) and its string conversions make the text
 * (wppr_put_string), so the values, the text and the JSON output read the same bytes the
 * same way. A row that fails part-way is taken back whole: every pool returns to its length
 * before the row. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "wpp_values.h"
#include "_wppr_internal.h"

#define INDEX_BITS 29           /* order entries hold kind << INDEX_BITS | index until the end */
#define ROW_PYTHON 1

static uint64_t rd_le(const uint8_t *p, uint32_t size)
{
    uint64_t v = 0;
    memcpy(&v, p, size);          /* little-endian host, as the renderer reads */
    return v;
}

static int put_order(wppv_values *out, int kind, size_t *counts)
{
    if (counts[kind] >= (1u << INDEX_BITS)) return -1;
    uint32_t entry = (uint32_t)kind << INDEX_BITS | (uint32_t)counts[kind]++;
    return wppr_put(&out->order, &entry, 4);
}

/* one argument's value into its pool: 0; ROW_PYTHON: Python's; -1: out of memory */
static int put_value(wppv_values *out, const uint8_t *arg, int ps, const uint8_t *a,
                     uint32_t start, uint32_t len, size_t *counts)
{
    int wire = arg[0], kind = arg[3];
    int number = wire == WPPR_W_FIXED || wire == WPPR_W_PTR;
    int pool;
    switch (kind) {
    case WPPR_J_UNSIGNED: case WPPR_J_SIGNED: {
        if (!number || !(len == 1 || len == 2 || len == 4 || len == 8)) return ROW_PYTHON;
        uint64_t v = rd_le(a + start, len);
        pool = WPPV_UNSIGNED;
        if (kind == WPPR_J_SIGNED) {      /* as printed: the spec's bits of the slot, signed */
            int bits = ps == 8 ? arg[5] : arg[4];
            if (bits != 8 && bits != 16 && bits != 32 && bits != 64) return ROW_PYTHON;
            uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
            v &= mask;
            if (v >> (bits - 1)) v |= ~mask;
            pool = WPPV_SIGNED;
        }
        if (wppr_put(&out->pool[pool], &v, 8)) return -1;
        break;
    }
    case WPPR_J_DOUBLE:
        if (wire != WPPR_W_FIXED || len != 8) return ROW_PYTHON;
        pool = WPPV_DOUBLE;
        if (wppr_put(&out->pool[pool], a + start, 8)) return -1;
        break;
    case WPPR_J_GUID:
        if (wire != WPPR_W_FIXED || len != 16) return ROW_PYTHON;
        pool = WPPV_GUID;
        if (wppr_put(&out->pool[pool], a + start, 16)) return -1;
        break;
    case WPPR_J_STRING: {
        if (wire != WPPR_W_CSTR && wire != WPPR_W_WSTR && wire != WPPR_W_PSTR
                && wire != WPPR_W_PWSTR)
            return ROW_PYTHON;
        pool = WPPV_STRING;
        wppr_buf *s = &out->pool[pool];
        size_t at = s->len;
        if (wppr_put_string(s, wire, arg[2] & WPPR_A_REDUCE, a + start, len)) return -1;
        /* NUL separates the values: text holding one (a counted string's) is Python's. An
         * empty text may leave the pool with no memory yet: nothing to search then */
        if (s->len > at && memchr(s->data + at, 0, s->len - at)) return ROW_PYTHON;
        if (wppr_putc(s, 0)) return -1;
        break;
    }
    default:
        return ROW_PYTHON;
    }
    return put_order(out, pool, counts);
}

/* one row's values: 0; ROW_PYTHON; -1 */
static int put_row(wppv_values *out, const uint8_t *layout, uint32_t nargs, int ps,
                   const uint8_t *a, uint32_t n, size_t *counts)
{
    uint32_t off = 0;
    for (uint32_t i = 0; i < nargs; i++) {
        const uint8_t *arg = layout + WPPV_LAYOUT_HEAD + i * WPPV_LAYOUT_ARG;
        uint32_t start, len;
        if (wppr_arg_span(arg[0], arg[1], ps, a, n, &off, &start, &len)) return ROW_PYTHON;
        int rc = put_value(out, arg, ps, a, start, len, counts);
        if (rc) return rc;
    }
    return 0;
}

int wppv_decode(const uint64_t *refs, uint32_t n, const wpprow *const *rows,
                const uint32_t *row_counts, const uint8_t *const *datas,
                const uint32_t *pointer_sizes, uint32_t nslots, const int32_t *key_layout,
                uint32_t nkeys, const uint8_t *layouts, uint32_t layouts_len, int32_t *ids,
                uint32_t *starts, wppv_values *out)
{
    size_t counts[WPPV_POOLS] = {0};
    for (int k = 0; k < WPPV_POOLS; k++) out->pool[k].len = 0;
    out->order.len = 0;
    for (uint32_t i = 0; i < n; i++) {
        starts[i] = (uint32_t)(out->order.len / 4);
        ids[i] = 0;
        uint32_t slot = (uint32_t)(refs[i] >> 32), index = (uint32_t)refs[i];
        if (slot >= nslots || index >= row_counts[slot]) continue;
        const wpprow *w = &rows[slot][index];
        if (w->key >= nkeys || key_layout[w->key] < 0) continue;
        uint32_t at = (uint32_t)key_layout[w->key];
        if (at > layouts_len || layouts_len - at < WPPV_LAYOUT_HEAD) continue;
        const uint8_t *layout = layouts + at;
        uint32_t nargs = (uint32_t)(layout[0] | layout[1] << 8);
        if ((layouts_len - at - WPPV_LAYOUT_HEAD) / WPPV_LAYOUT_ARG < nargs) continue;
        int ps = (int)wpprow_pointer_size(w, pointer_sizes[slot]);
        if (ps != 4 && ps != 8) continue;
        size_t marks[WPPV_POOLS], order = out->order.len, before[WPPV_POOLS];
        for (int k = 0; k < WPPV_POOLS; k++) {
            marks[k] = out->pool[k].len;
            before[k] = counts[k];
        }
        int rc = put_row(out, layout, nargs, ps, datas[slot] + w->payload_offset,
                         w->payload_size, counts);
        if (rc < 0) return -1;
        if (rc) {                         /* Python's: the row's values taken back */
            for (int k = 0; k < WPPV_POOLS; k++) {
                out->pool[k].len = marks[k];
                counts[k] = before[k];
            }
            out->order.len = order;
            continue;
        }
        ids[i] = (int32_t)(w->key + 1);
    }
    starts[n] = (uint32_t)(out->order.len / 4);
    /* the pools laid end to end: each entry becomes its index there */
    uint32_t base[WPPV_POOLS], total = 0;
    for (int k = 0; k < WPPV_POOLS; k++) {
        base[k] = total;
        total += (uint32_t)counts[k];
        out->count[k] = (uint32_t)counts[k];
    }
    uint32_t *order = (uint32_t *)(void *)out->order.data;
    for (uint32_t j = 0; j < starts[n]; j++)
        order[j] = base[order[j] >> INDEX_BITS] + (order[j] & ((1u << INDEX_BITS) - 1));
    return 0;
}

void wppv_free(wppv_values *v)
{
    for (int k = 0; k < WPPV_POOLS; k++) wppr_buf_free(&v->pool[k]);
    wppr_buf_free(&v->order);
}
