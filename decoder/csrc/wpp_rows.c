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
#include <stddef.h>
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
#include "_wppr_internal.h"        /* the renderer's buffer appends, inlined (columns) */

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

uint32_t wpprow_key_infos(const wpprow_tables *t, uint32_t first, uint32_t n, uint8_t *out)
{
    uint32_t done = 0;
    for (uint32_t key = first; key < t->nkeys && done < n; key++, done++, out += 20) {
        memcpy(out, t->keys[key].guid, sizeof(GUID));
        memcpy(out + 16, &t->keys[key].number, 4);
    }
    return done;
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
        return WPPR_TIME_OUT_OF_RANGE;
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
        return WPPR_TIME_OUT_OF_RANGE;           /* Python computes the text */
    /* INT64_MIN: a FILETIME only Python writes (JSON rows holding it are holes) */
    *filetime = ft < 0 || ft > (__int128)INT64_MAX ? INT64_MIN : (int64_t)ft;
    return (int64_t)ms;
}

/* where the GUID of a record that is not a message lies in its buffer (0: it carries none):
 * an event's ProviderId, a full or instance record's class GUID */
static uint32_t record_guid_offset(const etlrd_record *r)
{
    if (!(r->present & ETLRD_HAS_GUID)) return 0;
    switch (r->kind) {
    case ETLRD_KIND_EVENT: return r->offset + (uint32_t)offsetof(EVENT_HEADER, ProviderId);
    case ETLRD_KIND_FULL:
    case ETLRD_KIND_INSTANCE: return r->offset + (uint32_t)offsetof(EVENT_TRACE_HEADER, Guid);
    default: return 0;
    }
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
                                                      : WPPR_NO_TIME;
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
            w->guid_offset = record_guid_offset(r);
            continue;
        }
        /* the GUID sits right after the header (and the sequence, if any) */
        if (r->present & ETLRD_HAS_GUID)
            w->guid_offset = r->offset + (uint32_t)sizeof(MESSAGE_TRACE_HEADER)   /* inside the record */
                + ((r->present & ETLRD_HAS_SEQUENCE) ? (uint32_t)sizeof(uint32_t) : 0);
        w->key = key_id(t, r->guid, r->event_id);
    }
    return n;
}

/* the renderer's row (all but the program) from a walked row of a buffer's data; the
 * message's own pointer-size flags win over its file's */
static void fill_row(wppr_row *row, const wpprow *w, const uint8_t *data, uint32_t file_pointer_size)
{
    row->args = data + w->payload_offset;
    row->size = w->payload_size;
    row->milli = w->milli;
    row->filetime = w->filetime;
    row->thread_id = w->thread_id;
    row->process_id = w->process_id;
    row->sequence = w->sequence;
    row->cpu = w->cpu;
    row->pointer_size = wpprow_pointer_size(w, file_pointer_size);
    row->reserved = 0;
}

/* the walked row a ref (slot << 32 | index) names, or NULL when it names none */
static inline const wpprow *row_of(uint64_t ref, const wpprow *const *rows,
                                   const uint32_t *row_counts, uint32_t nslots)
{
    uint32_t slot = (uint32_t)(ref >> 32), index = (uint32_t)ref;
    return slot < nslots && index < row_counts[slot] ? &rows[slot][index] : NULL;
}

int wpprow_render(wppr_renderer *r, const uint64_t *refs, uint32_t n, const wpprow *const *rows,
                  const uint32_t *row_counts, const uint8_t *const *datas,
                  const uint32_t *pointer_sizes, uint32_t nslots, const int32_t *key_program,
                  uint32_t nkeys, wppr_buf *out, uint32_t *holes, uint64_t *hole_at,
                  uint32_t *nholes, uint32_t *skipped, uint64_t *ends)
{
    uint32_t h = 0, skip = 0;
    int rc = 0, json = wppr_output(r) == WPPR_OUT_JSON;
    const wpprow *next = n ? row_of(refs[0], rows, row_counts, nslots) : NULL;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t slot = (uint32_t)(refs[i] >> 32);
        const wpprow *w = next;
        if (i + 1 < n) {   /* the next row: its program and arguments load while this one renders */
            next = row_of(refs[i + 1], rows, row_counts, nslots);
            if (next && next->key < nkeys)
                wppr_prefetch(r, key_program[next->key],
                              datas[(uint32_t)(refs[i + 1] >> 32)] + next->payload_offset);
        }
        if (w && w->key == WPPROW_NOT_MESSAGE) {
            skip++;
        } else {
            wppr_row row;
            row.program = w && w->key < nkeys ? key_program[w->key] : WPPR_HOLE;
            /* a JSON object without the message GUID has another head: Python's */
            if (json && row.program >= 0 && !(w->present & ETLRD_HAS_GUID)) row.program = WPPR_HOLE;
            if (row.program >= 0) {
                fill_row(&row, w, datas[slot], pointer_sizes[slot]);
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

/* -- Arrow columns ------------------------------------------------------------------------ */

#define FILETIME_UNIX 116444736000000000LL
#define COLUMN_BYTES_MAX (1u << 30)

int wpprow_columns_reset(wpprow_columns *out)
{
    wppr_buf *bufs[] = {&out->filetime, &out->ns, &out->cpu, &out->pid, &out->tid, &out->sequence,
                        &out->payload_size, &out->number, &out->kind, &out->key, &out->source,
                        &out->flags};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) wppr_buf_free(bufs[i]);
    return wppr_columns_reset(&out->msg);
}

int wpprow_columns_reserve(wpprow_columns *out, uint32_t rows, uint32_t args, size_t text,
                           size_t str)
{
    size_t n = rows, a = args;
    wppr_columns *m = &out->msg;
    return wppr_reserve(&out->filetime, 8 * n) || wppr_reserve(&out->ns, 8 * n)
           || wppr_reserve(&out->cpu, 4 * n) || wppr_reserve(&out->pid, 4 * n)
           || wppr_reserve(&out->tid, 4 * n) || wppr_reserve(&out->sequence, 4 * n)
           || wppr_reserve(&out->payload_size, 4 * n) || wppr_reserve(&out->number, 2 * n)
           || wppr_reserve(&out->kind, n) || wppr_reserve(&out->key, 4 * n)
           || wppr_reserve(&out->source, 4 * n) || wppr_reserve(&out->flags, n)
           || wppr_reserve(&m->text_off, 4 * n + 4) || wppr_reserve(&m->text, text)
           || wppr_reserve(&m->arg_off, 4 * n + 4) || wppr_reserve(&m->arg_name, 4 * a)
           || wppr_reserve(&m->arg_type, 4 * a) || wppr_reserve(&m->arg_int, 8 * a)
           || wppr_reserve(&m->arg_float, 8 * a) || wppr_reserve(&m->arg_has, a)
           || wppr_reserve(&m->str_off, 4 * a + 4) || wppr_reserve(&m->str, str) ? -1 : 0;
}

static int put_fixed(wppr_buf *b, const void *p, size_t n)
{
    if (wppr_reserve(b, n)) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* the row's own fields; time: the FILETIME is known (else Python computes it) */
static int put_row_fields(wpprow_columns *o, const wpprow *w, int32_t source, int time)
{
    int64_t ft = 0, ns = 0;
    uint8_t flags = (w->present & ETLRD_HAS_GUID) ? 0 : WPPROW_C_NO_GUID;
    if (w->kind != ETLRD_KIND_MESSAGE) {      /* (PID 0 is a process: not "none") */
        if (!(w->present & ETLRD_HAS_PROCESS)) flags |= WPPROW_C_NO_PID;
        if (!(w->present & ETLRD_HAS_THREAD)) flags |= WPPROW_C_NO_TID;
    }
    if (time) {
        ft = w->filetime;
        flags |= WPPROW_C_TIME;
        /* nanoseconds since 1970 when they fit an int64 */
        if (ft - FILETIME_UNIX >= INT64_MIN / 100 + 1 && ft - FILETIME_UNIX <= INT64_MAX / 100) {
            ns = (ft - FILETIME_UNIX) * 100;
            flags |= WPPROW_C_NS;
        }
    }
    int32_t key = (int32_t)w->key;
    uint8_t kind = w->kind;
    return put_fixed(&o->filetime, &ft, 8) || put_fixed(&o->ns, &ns, 8)
           || put_fixed(&o->cpu, &w->cpu, 4) || put_fixed(&o->pid, &w->process_id, 4)
           || put_fixed(&o->tid, &w->thread_id, 4) || put_fixed(&o->sequence, &w->sequence, 4)
           || put_fixed(&o->payload_size, &w->payload_size, 4)
           || put_fixed(&o->number, &w->number, 2) || put_fixed(&o->kind, &kind, 1)
           || put_fixed(&o->key, &key, 4) || put_fixed(&o->source, &source, 4)
           || put_fixed(&o->flags, &flags, 1) ? -1 : 0;
}

int64_t wpprow_put_columns(wppr_renderer *r, const uint64_t *refs, uint32_t start, uint32_t n,
                           const wpprow *const *rows, const uint32_t *row_counts,
                           const uint8_t *const *datas, const uint32_t *pointer_sizes,
                           const int32_t *sources, uint32_t nslots, const int32_t *key_program,
                           uint32_t nkeys, int all_records, uint32_t max_rows, wpprow_columns *out,
                           uint32_t *skipped, int *why)
{
    uint32_t skip = 0;
    *why = WPPROW_C_DONE;
    for (uint32_t i = start; i < n; i++) {
        uint32_t slot = (uint32_t)(refs[i] >> 32);
        const wpprow *w = row_of(refs[i], rows, row_counts, nslots);
        if (!w) return -1;                        /* the caller's refs are its own rows */
        if (w->key == WPPROW_NOT_MESSAGE && !all_records) {
            skip++;
            continue;
        }
        if (out->msg.rows >= max_rows || out->msg.text.len >= COLUMN_BYTES_MAX
                || out->msg.str.len >= COLUMN_BYTES_MAX) {
            *skipped += skip;
            *why = WPPROW_C_FULL;
            return i;
        }
        /* a time the row clock gives as a FILETIME (INT64_MIN: one only Python computes) */
        int time = w->milli != WPPR_NO_TIME && w->milli != WPPR_TIME_OUT_OF_RANGE
                   && w->filetime != INT64_MIN;
        int32_t program = w->key < nkeys ? key_program[w->key] : WPPR_HOLE;
        if (w->milli != WPPR_NO_TIME && !time) program = WPPR_HOLE;
        if (put_row_fields(out, w, sources[slot], time)) return -1;
        int rc = 1;
        if (program >= 0) {
            wppr_row row;
            row.program = program;
            fill_row(&row, w, datas[slot], pointer_sizes[slot]);
            rc = wppr_column_row(r, &row, &out->msg);
            if (rc < 0) return -1;
        }
        if (rc) {
            *skipped += skip;
            *why = WPPROW_C_HOLE;
            return i;
        }
    }
    *skipped += skip;
    return n;
}
