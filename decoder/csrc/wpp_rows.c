/* wpp_rows.c: one buffer's records -> compact WPP rows with message key ids (see wpp_rows.h),
 * and the rows printed by the C renderer (wpprow_render).
 *
 * The key table is open addressing (it grows by doubling up to its cap); ids are handed out
 * in first-seen order and never reused, so Python can mirror the table with a plain list.
 * The GUIDs and numbers hashed here come from the file, so the hashes are keyed with a secret
 * seed per table, and no lookup looks at more than PROBE_LIMIT slots: a file built to pile
 * its keys onto few slots gets no id for the extra ones (Python's slow path, still correct)
 * instead of quadratic work.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/random.h>
#endif
#include "etl_layout.h"
#include "etlread.h"
#include "wpp_rows.h"

#define SCRATCH_RECORDS 16384   /* etlrd records per walk call (as records.py's _CHUNK) */
#define PROBE_LIMIT 64          /* slots one lookup may look at (random keys: a few) */
#define EMPTY32 0xFFFFFFFFu

typedef struct { uint8_t guid[sizeof(GUID)]; uint32_t number; } key_entry;

struct wpprow_tables {
    key_entry *keys; uint32_t nkeys, keys_alloc, key_cap;
    uint32_t *key_slots; uint32_t key_mask;
    etlrd_record *scratch;
    uint64_t seed;
};

static uint64_t mix(uint64_t h) { h ^= h >> 33; h *= 0xff51afd7ed558ccdULL; h ^= h >> 33; return h; }

static uint64_t hash_bytes(const uint8_t *p, uint32_t n, uint64_t seed)
{
    uint64_t h = seed ^ (n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) { uint64_t v; memcpy(&v, p, 8); h = (h ^ mix(v)) * 0x9E3779B97F4A7C15ULL; p += 8; n -= 8; }
    if (n) { uint64_t v = 0; memcpy(&v, p, n); h = (h ^ mix(v ^ ((uint64_t)n << 56))) * 0x9E3779B97F4A7C15ULL; }
    return mix(h);
}

static uint32_t pow2_at_least(uint64_t n) { uint32_t s = 16; while (s < n) s <<= 1; return s; }

static uint64_t secret_seed(const void *salt)
{
    uint64_t seed = 0;
#if defined(__linux__)
    if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
        return seed;
#endif
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return mix((uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (uint64_t)(uintptr_t)salt);
}

wpprow_tables *wpprow_tables_new(uint32_t key_cap)
{
    wpprow_tables *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->key_cap = key_cap;
    t->keys_alloc = key_cap < 1024 ? key_cap : 1024;
    t->key_mask = pow2_at_least(2 * (uint64_t)t->keys_alloc) - 1;
    t->keys = malloc(sizeof(key_entry) * (t->keys_alloc ? t->keys_alloc : 1));
    t->key_slots = malloc(sizeof(uint32_t) * (t->key_mask + 1));
    t->scratch = malloc(sizeof(etlrd_record) * SCRATCH_RECORDS);
    t->seed = secret_seed(t);
    if (!t->keys || !t->key_slots || !t->scratch) {
        wpprow_tables_free(t);
        return NULL;
    }
    memset(t->key_slots, 0xFF, sizeof(uint32_t) * (t->key_mask + 1));
    return t;
}

void wpprow_tables_free(wpprow_tables *t)
{
    if (!t) return;
    free(t->keys); free(t->key_slots); free(t->scratch);
    free(t);
}

void wpprow_tables_set_seed(wpprow_tables *t, uint64_t seed) { t->seed = seed; }

uint32_t wpprow_key_count(const wpprow_tables *t) { return t->nkeys; }

int wpprow_key_info(const wpprow_tables *t, uint32_t key, uint8_t *guid, uint32_t *number)
{
    if (key >= t->nkeys) return 0;
    memcpy(guid, t->keys[key].guid, sizeof(GUID));
    *number = t->keys[key].number;
    return 1;
}

static uint64_t key_hash(const wpprow_tables *t, const uint8_t *guid, uint32_t number)
{
    return hash_bytes(guid, sizeof(GUID), t->seed ^ (number + 1));
}

static int grow_keys(wpprow_tables *t)
{
    uint32_t alloc = t->keys_alloc * 2 > t->key_cap ? t->key_cap : t->keys_alloc * 2;
    uint32_t mask = pow2_at_least(2 * (uint64_t)alloc) - 1;
    key_entry *keys = realloc(t->keys, sizeof(key_entry) * alloc);
    if (!keys) return 0;
    t->keys = keys;
    uint32_t *slots = malloc(sizeof(uint32_t) * (mask + 1));
    if (!slots) return 0;
    memset(slots, 0xFF, sizeof(uint32_t) * (mask + 1));
    for (uint32_t i = 0; i < t->nkeys; i++) {
        /* every key keeps a slot; a key landing past PROBE_LIMIT is just not found again
         * (no id from then on, the slow path), never given a second id */
        uint32_t s = (uint32_t)key_hash(t, t->keys[i].guid, t->keys[i].number) & mask;
        while (slots[s] != EMPTY32) s = (s + 1) & mask;
        slots[s] = i;
    }
    free(t->key_slots);
    t->key_slots = slots; t->key_mask = mask; t->keys_alloc = alloc;
    return 1;
}

static uint32_t key_id(wpprow_tables *t, const uint8_t *guid, uint32_t number)
{
    uint32_t s = (uint32_t)key_hash(t, guid, number) & t->key_mask;
    for (uint32_t probes = 1;; s = (s + 1) & t->key_mask, probes++) {
        uint32_t i = t->key_slots[s];
        if (i == EMPTY32) break;
        if (t->keys[i].number == number && !memcmp(t->keys[i].guid, guid, sizeof(GUID))) return i;
        if (probes == PROBE_LIMIT) return WPPROW_KEY_OVERFLOW;
    }
    if (t->nkeys >= t->key_cap) return WPPROW_KEY_OVERFLOW;
    if (t->nkeys >= t->keys_alloc) {
        if (!grow_keys(t)) return WPPROW_KEY_OVERFLOW;
        return key_id(t, guid, number);     /* slots moved: probe again (inserts below) */
    }
    uint32_t i = t->nkeys++;
    memcpy(t->keys[i].guid, guid, sizeof(GUID));
    t->keys[i].number = number;
    t->key_slots[s] = i;
    return i;
}

static __int128 floor_div(__int128 a, __int128 b)
{
    __int128 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* FILETIME milliseconds of a raw time, as TimeConverter computes it (floor divisions), and
 * the FILETIME itself in *filetime */
static int64_t floor_div64(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static int64_t milli_of(int64_t ts, const wpprow_clock *c, int64_t *filetime)
{
    if (c->den <= 0)
        return INT64_MIN + 1;
    int64_t delta, ft64;
    if (c->num == c->den && !__builtin_sub_overflow(ts, c->origin, &delta)
            && !__builtin_add_overflow(c->start, delta, &ft64) && ft64 > INT64_MIN + 10000) {
        /* a 10 MHz or FILETIME clock: 64-bit arithmetic gives the same values */
        *filetime = ft64 < 0 ? INT64_MIN : ft64;
        return floor_div64(ft64, 10000);
    }
    __int128 ft = (__int128)c->start + floor_div(((__int128)ts - c->origin) * c->num, c->den);
    __int128 ms = floor_div(ft, 10000);
    if (ms <= (__int128)INT64_MIN + 1 || ms > (__int128)INT64_MAX)
        return INT64_MIN + 1;                    /* out of range: Python computes the text */
    /* INT64_MIN: a FILETIME only Python writes (JSON rows holding it are holes) */
    *filetime = ft < 0 || ft > (__int128)INT64_MAX ? INT64_MIN : (int64_t)ft;
    return (int64_t)ms;
}

uint32_t wpprow_walk(wpprow_tables *t, const uint8_t *buf, uint32_t end, uint32_t start,
                     uint32_t cpu, uint32_t slot, uint32_t first_index, const wpprow_clock *clock,
                     wpprow *out, uint32_t max_rows, etlrd_walk_result *res)
{
    uint32_t cap = max_rows < SCRATCH_RECORDS ? max_rows : SCRATCH_RECORDS;
    uint32_t n = etlrd_walk(buf, end, start, t->scratch, cap, res);
    for (uint32_t i = 0; i < n; i++) {
        const etlrd_record *r = &t->scratch[i];
        wpprow *w = &out[i];
        memset(w, 0, sizeof(*w));
        w->timestamp = r->timestamp;
        w->milli = (r->present & ETLRD_HAS_TIMESTAMP) ? milli_of(r->timestamp, clock, &w->filetime)
                                                      : INT64_MIN;
        w->thread_id = r->thread_id;
        w->process_id = r->process_id;
        w->sequence = r->sequence;
        w->payload_offset = r->payload_offset;
        w->payload_size = r->payload_size;
        w->cpu = cpu;
        w->slot = slot;
        w->index = first_index + i;
        w->number = r->event_id;
        w->flags = r->flags;
        w->kind = r->kind;
        w->present = r->present;
        if (r->kind != ETLRD_KIND_MESSAGE) {
            w->key = WPPROW_NOT_MESSAGE;
            continue;
        }
        /* the GUID sits right after the header (and the sequence, if any) */
        if (r->present & ETLRD_HAS_GUID)
            w->guid_offset = r->offset + sizeof(MESSAGE_TRACE_HEADER)
                + ((r->present & ETLRD_HAS_SEQUENCE) ? sizeof(uint32_t) : 0);
        w->key = key_id(t, r->guid, r->event_id);
    }
    return n;
}

int wpprow_render(wppr_renderer *r, const uint64_t *refs, uint32_t n, const wpprow *const *rows,
                  const uint32_t *row_counts, const uint8_t *const *datas,
                  const uint32_t *pointer_sizes, uint32_t nslots, const int32_t *key_program,
                  uint32_t nkeys, wppr_buf *out, uint32_t *holes, uint64_t *hole_at,
                  uint32_t *nholes, uint32_t *skipped, uint64_t *ends)
{
    uint32_t h = 0, skip = 0;
    int rc = 0, json = wppr_output(r) == WPPR_OUT_JSON;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)(refs[i] >> 32), index = (uint32_t)refs[i];
        const wpprow *w = slot < nslots && index < row_counts[slot] ? &rows[slot][index] : NULL;
        if (w && w->key == WPPROW_NOT_MESSAGE) {
            skip++;
        } else {
            wppr_row row;
            row.program = w && w->key < nkeys ? key_program[w->key] : WPPR_HOLE;
            /* a JSON object without the message GUID has another head: Python's */
            if (json && row.program >= 0 && !(w->present & ETLRD_HAS_GUID)) row.program = WPPR_HOLE;
            if (row.program >= 0) {
                row.args = datas[slot] + w->payload_offset;
                row.size = w->payload_size;
                row.milli = w->milli;
                row.filetime = w->filetime;
                row.thread_id = w->thread_id;
                row.process_id = w->process_id;
                row.sequence = w->sequence;
                row.cpu = w->cpu;
                row.pointer_size = (w->flags & TRACE_MESSAGE_POINTER64) ? 8
                                   : (w->flags & TRACE_MESSAGE_POINTER32) ? 4 : pointer_sizes[slot];
                rc = wppr_render_row(r, &row, out);
                if (rc < 0) break;
            }
            if (row.program < 0 || rc) {
                holes[h] = i;
                hole_at[h++] = out->len;
                rc = 0;
            }
        }
        if (ends) ends[i] = out->len;
    }
    *nholes = h;
    *skipped = skip;
    return rc;
}
