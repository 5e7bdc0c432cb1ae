/* wpp_rows.c: one buffer's records -> compact WPP rows with small-integer ids (see wpp_rows.h).
 *
 * Open-addressing hash tables, sized once (keys grow by doubling up to their cap; memo slots
 * carry a hash tag so a probe rarely touches the entries); ids are
 * handed out in first-seen order and never reused, so Python can mirror each table with a
 * plain list. Memo entries keep a copy of their argument bytes in an arena (bounded).
 *
 * The GUIDs, numbers, argument bytes and thread ids hashed here come from the file, so the
 * hashes are keyed with a secret seed per table, and no lookup looks at more than
 * PROBE_LIMIT slots: a file built to pile its keys onto few slots gets no id for the extra
 * ones (Python's slow path, still correct) instead of quadratic work.
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

typedef struct { uint8_t guid[16]; uint32_t number; uint32_t memo_left; } key_entry;
typedef struct { uint64_t hash; uint64_t at; uint32_t key; uint32_t len; uint32_t flags; } memo_entry;
typedef struct { uint32_t cpu, pid, tid; } head_entry;

struct wpprow_tables {
    key_entry *keys; uint32_t nkeys, keys_alloc, key_cap, memo_per_key;
    uint32_t *key_slots; uint32_t key_mask;
    memo_entry *memos; uint32_t nmemos, memo_cap; uint64_t *memo_slots; uint32_t memo_mask;
    uint8_t *arena; uint64_t arena_used, arena_alloc, arena_cap;
    head_entry *heads; uint32_t nheads, head_cap; uint32_t *head_slots; uint32_t head_mask;
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

wpprow_tables *wpprow_tables_new(uint32_t key_cap, uint32_t memo_cap, uint32_t memo_per_key,
                                 uint64_t arena_cap, uint32_t head_cap)
{
    wpprow_tables *t = calloc(1, sizeof(*t));
    if (!t) return NULL;
    t->key_cap = key_cap; t->memo_cap = memo_cap; t->memo_per_key = memo_per_key;
    t->arena_cap = arena_cap; t->head_cap = head_cap;
    t->keys_alloc = key_cap < 1024 ? key_cap : 1024;
    t->key_mask = pow2_at_least(2 * (uint64_t)t->keys_alloc) - 1;
    t->memo_mask = pow2_at_least(2 * (uint64_t)memo_cap) - 1;
    t->head_mask = pow2_at_least(2 * (uint64_t)head_cap) - 1;
    t->keys = malloc(sizeof(key_entry) * (t->keys_alloc ? t->keys_alloc : 1));
    t->key_slots = malloc(sizeof(uint32_t) * (t->key_mask + 1));
    t->memos = malloc(sizeof(memo_entry) * (memo_cap ? memo_cap : 1));
    t->memo_slots = malloc(sizeof(uint64_t) * (t->memo_mask + 1));
    t->heads = malloc(sizeof(head_entry) * (head_cap ? head_cap : 1));
    t->head_slots = malloc(sizeof(uint32_t) * (t->head_mask + 1));
    t->scratch = malloc(sizeof(etlrd_record) * SCRATCH_RECORDS);
    t->seed = secret_seed(t);
    if (!t->keys || !t->key_slots || !t->memos || !t->memo_slots || !t->heads || !t->head_slots
            || !t->scratch) {
        wpprow_tables_free(t);
        return NULL;
    }
    memset(t->key_slots, 0xFF, sizeof(uint32_t) * (t->key_mask + 1));
    memset(t->memo_slots, 0xFF, sizeof(uint64_t) * (t->memo_mask + 1));
    memset(t->head_slots, 0xFF, sizeof(uint32_t) * (t->head_mask + 1));
    return t;
}

void wpprow_tables_free(wpprow_tables *t)
{
    if (!t) return;
    free(t->keys); free(t->key_slots); free(t->memos); free(t->memo_slots);
    free(t->arena); free(t->heads); free(t->head_slots); free(t->scratch);
    free(t);
}

void wpprow_tables_set_seed(wpprow_tables *t, uint64_t seed) { t->seed = seed; }

uint32_t wpprow_key_count(const wpprow_tables *t) { return t->nkeys; }

int wpprow_key_info(const wpprow_tables *t, uint32_t key, uint8_t *guid, uint32_t *number)
{
    if (key >= t->nkeys) return 0;
    memcpy(guid, t->keys[key].guid, 16);
    *number = t->keys[key].number;
    return 1;
}

void wpprow_key_memo_left(wpprow_tables *t, uint32_t key, uint32_t left)
{
    if (key < t->nkeys) t->keys[key].memo_left = left;
}

static uint64_t key_hash(const wpprow_tables *t, const uint8_t *guid, uint32_t number)
{
    return hash_bytes(guid, 16, t->seed ^ (number + 1));
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
        if (t->keys[i].number == number && !memcmp(t->keys[i].guid, guid, 16)) return i;
        if (probes == PROBE_LIMIT) return WPPROW_KEY_OVERFLOW;
    }
    if (t->nkeys >= t->key_cap) return WPPROW_KEY_OVERFLOW;
    if (t->nkeys >= t->keys_alloc) {
        if (!grow_keys(t)) return WPPROW_KEY_OVERFLOW;
        return key_id(t, guid, number);     /* slots moved: probe again (inserts below) */
    }
    uint32_t i = t->nkeys++;
    memcpy(t->keys[i].guid, guid, 16);
    t->keys[i].number = number;
    t->keys[i].memo_left = t->memo_per_key;
    t->key_slots[s] = i;
    return i;
}

static uint32_t memo_id(wpprow_tables *t, uint32_t key, uint32_t flags, const uint8_t *p, uint32_t n)
{
    uint32_t none = t->memo_cap;
    if (n > WPPROW_MAX_PAYLOAD) return none;
    uint64_t h = hash_bytes(p, n, t->seed ^ (((uint64_t)key << 16) ^ flags));
    uint32_t s = (uint32_t)h & t->memo_mask;
    uint64_t tag = h & 0xFFFFFFFF00000000ULL;
    for (uint32_t probes = 1;; s = (s + 1) & t->memo_mask, probes++) {
        uint64_t slot = t->memo_slots[s];
        if (slot == UINT64_MAX) break;
        if ((slot & 0xFFFFFFFF00000000ULL) == tag) {
            uint32_t i = (uint32_t)slot;
            memo_entry *m = &t->memos[i];
            if (m->hash == h && m->key == key && m->flags == flags && m->len == n
                    && !memcmp(t->arena + m->at, p, n))
                return i;
        }
        if (probes == PROBE_LIMIT) return none;
    }
    key_entry *k = &t->keys[key];
    if (!k->memo_left || t->nmemos >= t->memo_cap || t->arena_used + n > t->arena_cap)
        return none;
    if (t->arena_used + n > t->arena_alloc) {
        uint64_t alloc = t->arena_alloc ? t->arena_alloc * 2 : 65536;
        while (alloc < t->arena_used + n) alloc *= 2;
        if (alloc > t->arena_cap) alloc = t->arena_cap;
        uint8_t *a = realloc(t->arena, alloc ? alloc : 1);
        if (!a) return none;
        t->arena = a; t->arena_alloc = alloc;
    }
    k->memo_left--;
    uint32_t i = t->nmemos++;
    memo_entry *m = &t->memos[i];
    m->hash = h; m->key = key; m->flags = flags; m->len = n; m->at = t->arena_used;
    if (n) memcpy(t->arena + t->arena_used, p, n);
    t->arena_used += n;
    t->memo_slots[s] = tag | i;
    return i;
}

static uint32_t head_id(wpprow_tables *t, uint32_t cpu, uint32_t pid, uint32_t tid)
{
    uint64_t h = mix(((uint64_t)pid << 32 | tid) ^ mix(cpu + 0x9E3779B97F4A7C15ULL) ^ t->seed);
    uint32_t s = (uint32_t)h & t->head_mask;
    for (uint32_t probes = 1;; s = (s + 1) & t->head_mask, probes++) {
        uint32_t i = t->head_slots[s];
        if (i == EMPTY32) break;
        head_entry *e = &t->heads[i];
        if (e->tid == tid && e->pid == pid && e->cpu == cpu) return i;
        if (probes == PROBE_LIMIT) return t->head_cap;
    }
    if (t->nheads >= t->head_cap) return t->head_cap;
    uint32_t i = t->nheads++;
    t->heads[i].cpu = cpu; t->heads[i].pid = pid; t->heads[i].tid = tid;
    t->head_slots[s] = i;
    return i;
}

static __int128 floor_div(__int128 a, __int128 b)
{
    __int128 q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

/* FILETIME milliseconds of a raw time, as TimeConverter computes it (floor divisions) */
static int64_t milli_of(int64_t ts, const wpprow_clock *c)
{
    if (c->den <= 0)
        return INT64_MIN + 1;
    __int128 ft = (__int128)c->start + floor_div(((__int128)ts - c->origin) * c->num, c->den);
    __int128 ms = floor_div(ft, 10000);
    if (ms <= (__int128)INT64_MIN + 1 || ms > (__int128)INT64_MAX)
        return INT64_MIN + 1;                    /* out of range: Python computes the text */
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
        w->milli = (r->present & ETLRD_HAS_TIMESTAMP) ? milli_of(r->timestamp, clock) : INT64_MIN;
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
        w->memo = t->memo_cap;
        w->head = t->head_cap;
        if (r->kind != ETLRD_KIND_MESSAGE) {
            w->key = WPPROW_NOT_MESSAGE;
            continue;
        }
        /* the GUID sits right after the header (and the sequence, if any) */
        if (r->present & ETLRD_HAS_GUID)
            w->guid_offset = r->offset + sizeof(MESSAGE_TRACE_HEADER)
                + ((r->present & ETLRD_HAS_SEQUENCE) ? sizeof(uint32_t) : 0);
        w->key = key_id(t, r->guid, r->event_id);
        if (w->key < t->nkeys)
            w->memo = memo_id(t, w->key, r->flags, buf + r->payload_offset, r->payload_size);
        w->head = head_id(t, cpu, r->process_id, r->thread_id);
    }
    return n;
}
