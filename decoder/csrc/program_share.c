/* program_share.c: the shared table of compiled message programs (program_share.h). */
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include "program_share.h"
#include "program_records.h"

#define PSHARE_MAGIC 0x31504d4152505057ull    /* "WPPRAMP1" */
/* yields while a slot's claimer writes its key (a few instructions after its claim): a
 * claimer killed in between leaves the key unwritten, and the message is compiled apart */
#define PSHARE_KEY_WAIT 100000

static pshare_head *head_of(const pshare_table *table) { return (pshare_head *)table->mem; }

static pshare_slot *slots_of(const pshare_table *table)
{
    return (pshare_slot *)(table->mem + sizeof(pshare_head));
}

static uint8_t *arena_of(const pshare_table *table)
{
    return table->mem + sizeof(pshare_head) + table->slots * sizeof(pshare_slot);
}

uint64_t pshare_size(uint64_t slots, uint64_t arena)
{
    return sizeof(pshare_head) + slots * sizeof(pshare_slot) + arena;
}

int pshare_init(pshare_table *table, uint8_t *mem, uint64_t size, uint64_t slots)
{
    if (slots == 0 || (slots & (slots - 1)) || slots > (1ull << 32)
        || size < pshare_size(slots, 0))
        return -1;
    table->mem = mem;
    table->slots = slots;
    table->arena = size - pshare_size(slots, 0);
    pshare_head *head = head_of(table);
    head->used = 0;
    __atomic_store_n(&head->magic, PSHARE_MAGIC, __ATOMIC_RELEASE);
    return 0;
}

static uint64_t mix64(uint64_t h)                  /* splitmix64's finaliser */
{
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 27;
    h *= 0x94D049BB133111EBull;
    h ^= h >> 31;
    return h;
}

static uint64_t guid_hash(const uint8_t *guid)
{
    uint64_t a, b;
    memcpy(&a, guid, 8);
    memcpy(&b, guid + 8, 8);
    return mix64(a ^ (b * 0x9E3779B97F4A7C15ull));
}

/* A key's first slot: a GUID's numbers in one run of 64 (number >> 6) share an aligned
 * block of 64 slots, each at its own place in it (number & 63), the block placed by a hash
 * of the GUID and the run. A run's processes touch a page or two of the table per TMF file
 * instead of one per message; a block of a GUID's consecutive numbers anywhere would push
 * every other GUID whose block met it past the whole block, and each lookup of those with it. */
static uint64_t first_slot(uint64_t guid_h, uint32_t number, uint64_t mask)
{
    uint64_t low = mask < 63 ? mask : 63;
    return (mix64(guid_h ^ (number >> 6)) & mask & ~low) | (number & low);
}

/* A key's tag: a hash of the whole key (0 marks a free slot). */
static uint64_t key_tag(uint64_t guid_h, uint32_t number)
{
    return mix64(guid_h ^ ((uint64_t)number << 17 | number)) | 1;
}

/* The slot of a key along its probe sequence, its state in *state (PSHARE_FULL: none).
 * claim: an empty slot met first is taken (PSHARE_MINE) and a key still being written is
 * waited for; else the search ends there (never claims). */
static int64_t find_slot(const pshare_table *table, const uint8_t *guid, uint32_t number,
                         int claim, uint32_t *state)
{
    pshare_head *head = head_of(table);
    pshare_slot *slots = slots_of(table);
    uint64_t guid_h = guid_hash(guid), mask = table->slots - 1, h = key_tag(guid_h, number);
    *state = PSHARE_FULL;
    if (__atomic_load_n(&head->magic, __ATOMIC_ACQUIRE) != PSHARE_MAGIC)
        return -1;
    for (uint64_t probe = 0, i = first_slot(guid_h, number, mask); probe <= mask;
         probe++, i = (i + 1) & mask) {
        pshare_slot *slot = &slots[i];
        uint64_t tag = __atomic_load_n(&slot->tag, __ATOMIC_ACQUIRE);
        if (tag == 0) {
            if (!claim)
                return -1;
            uint64_t expected = 0;
            if (__atomic_compare_exchange_n(&slot->tag, &expected, h, 0, __ATOMIC_ACQ_REL,
                                            __ATOMIC_ACQUIRE)) {
                memcpy(slot->guid, guid, 16);
                slot->number = number;
                __atomic_store_n(&slot->state, PSHARE_CLAIMED, __ATOMIC_RELEASE);
                *state = PSHARE_MINE;
                return (int64_t)i;
            }
            tag = expected;                        /* another process took it just now */
        }
        if (tag != h)
            continue;
        /* the key is written before the state leaves EMPTY (release): read after it */
        uint32_t now = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        for (int k = 0; claim && now == PSHARE_EMPTY && k < PSHARE_KEY_WAIT; k++) {
            sched_yield();
            now = __atomic_load_n(&slot->state, __ATOMIC_ACQUIRE);
        }
        if (now == PSHARE_EMPTY)
            return -1;
        if (slot->number == number && memcmp(slot->guid, guid, 16) == 0) {
            *state = now;
            return (int64_t)i;
        }
    }
    return -1;
}

int64_t pshare_claim(const pshare_table *table, const uint8_t *guid, uint32_t number,
                     uint32_t *state)
{
    return find_slot(table, guid, number, 1, state);
}

/* the READY slot of a key, or -1 (looked at, never claimed) */
static int64_t ready_slot(const pshare_table *table, const uint8_t *guid, uint32_t number)
{
    uint32_t state;
    int64_t slot = find_slot(table, guid, number, 0, &state);
    return state == PSHARE_READY ? slot : -1;
}

void pshare_ready(const pshare_table *table, const uint8_t *guids, const uint32_t *numbers,
                  uint32_t n, int64_t *slots)
{
    for (uint32_t i = 0; i < n; i++)
        slots[i] = ready_slot(table, guids + 16 * (uint64_t)i, numbers[i]);
}

static pshare_slot *slot_at(const pshare_table *table, int64_t slot)
{
    if (slot < 0 || (uint64_t)slot >= table->slots)
        return NULL;
    return &slots_of(table)[slot];
}

uint32_t pshare_state(const pshare_table *table, int64_t slot)
{
    pshare_slot *s = slot_at(table, slot);
    return s ? __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) : PSHARE_FULL;
}

/* `length` arena bytes handed out at *offset; -1 when they do not fit (what was taken past the
 * arena's end stays taken: nothing fits after it) */
static int arena_take(const pshare_table *table, uint64_t length, uint64_t *offset)
{
    *offset = __atomic_fetch_add(&head_of(table)->used, length, __ATOMIC_RELAXED);
    return *offset > table->arena || length > table->arena - *offset ? -1 : 0;
}

int pshare_publish(const pshare_table *table, int64_t slot, const uint8_t *data, uint32_t length)
{
    pshare_slot *s = slot_at(table, slot);
    if (s == NULL)
        return -1;
    uint64_t offset;
    if (arena_take(table, length, &offset) != 0) {
        __atomic_store_n(&s->state, PSHARE_REFUSED, __ATOMIC_RELEASE);
        return -1;
    }
    memcpy(arena_of(table) + offset, data, length);
    s->offset = offset;
    s->length = length;
    __atomic_store_n(&s->state, PSHARE_READY, __ATOMIC_RELEASE);
    return 0;
}

static uint8_t *put32(uint8_t *at, uint32_t v)
{
    at[0] = (uint8_t)v;
    at[1] = (uint8_t)(v >> 8);
    at[2] = (uint8_t)(v >> 16);
    at[3] = (uint8_t)(v >> 24);
    return at + 4;
}

static uint8_t *put(uint8_t *at, const uint8_t *data, uint32_t length)
{
    if (length)
        memcpy(at, data, length);
    return at + length;
}

/* The record of a claimed slot laid out in the arena from its parts (pshare_publish_parts),
 * its mode's 4 bytes as a little-endian u32. */
static int publish_parts(const pshare_table *table, int64_t slot, uint32_t mode, int has_prefix,
                         int32_t prefix_program, const uint8_t *component,
                         uint32_t component_length, const uint8_t *name, uint32_t name_length,
                         const uint8_t *unknown, uint32_t unknown_length, const uint8_t *blob,
                         uint32_t blob_length, const uint8_t *decoration,
                         uint32_t decoration_length)
{
    pshare_slot *s = slot_at(table, slot);
    if (s == NULL)
        return -1;
    if (unknown == NULL)
        unknown_length = 0;
    if (decoration == NULL)
        decoration_length = 0;
    uint64_t length = (uint64_t)PRECORD_HEAD + component_length + name_length + unknown_length
                      + blob_length + decoration_length, offset;
    /* (a record's length is a u32 in its slot) */
    if (length > UINT32_MAX || arena_take(table, length, &offset) != 0) {
        __atomic_store_n(&s->state, PSHARE_REFUSED, __ATOMIC_RELEASE);
        return -1;
    }
    uint32_t flags = (has_prefix ? PRECORD_HAS_PREFIX : 0) | (unknown ? PRECORD_UNKNOWN : 0)
                     | (decoration ? PRECORD_DECORATED : 0);
    uint8_t *at = put32(arena_of(table) + offset, mode);
    at = put32(at, flags);
    at = put32(at, (uint32_t)prefix_program);
    at = put32(at, component_length);
    at = put32(at, name_length);
    at = put32(at, unknown_length);
    at = put32(at, blob_length);
    at = put32(at, decoration_length);
    at = put(at, component, component_length);
    at = put(at, name, name_length);
    at = put(at, unknown, unknown_length);
    at = put(at, blob, blob_length);
    put(at, decoration, decoration_length);
    s->offset = offset;
    s->length = (uint32_t)length;
    __atomic_store_n(&s->state, PSHARE_READY, __ATOMIC_RELEASE);
    return 0;
}

int pshare_publish_parts(const pshare_table *table, int64_t slot, const uint8_t *mode,
                         int has_prefix, int32_t prefix_program, const uint8_t *component,
                         uint32_t component_length, const uint8_t *name, uint32_t name_length,
                         const uint8_t *unknown, uint32_t unknown_length, const uint8_t *blob,
                         uint32_t blob_length, const uint8_t *decoration,
                         uint32_t decoration_length)
{
    uint32_t mode_le = (uint32_t)mode[0] | (uint32_t)mode[1] << 8 | (uint32_t)mode[2] << 16
                       | (uint32_t)mode[3] << 24;
    return publish_parts(table, slot, mode_le, has_prefix, prefix_program, component,
                         component_length, name, name_length, unknown, unknown_length, blob,
                         blob_length, decoration, decoration_length);
}

int64_t pshare_publish_claim(const pshare_table *table, int64_t slot, uint32_t mode,
                             int has_prefix, int32_t prefix_program, const uint8_t *component,
                             uint32_t component_length, const uint8_t *name, uint32_t name_length,
                             const uint8_t *unknown, uint32_t unknown_length, const uint8_t *blob,
                             uint32_t blob_length, const uint8_t *decoration,
                             uint32_t decoration_length, const uint8_t *next_guid,
                             uint32_t next_number, uint32_t *state)
{
    publish_parts(table, slot, mode, has_prefix, prefix_program, component, component_length,
                  name, name_length, unknown, unknown_length, blob, blob_length, decoration,
                  decoration_length);
    if (next_guid == NULL) {
        *state = PSHARE_FULL;
        return -1;
    }
    return find_slot(table, next_guid, next_number, 1, state);
}

int64_t pshare_add_publish_claim(const pshare_table *table, wppr_renderer *renderer,
                                 int32_t *program, int64_t slot, uint32_t mode, int has_prefix,
                                 int32_t prefix_program, const uint8_t *component,
                                 uint32_t component_length, const uint8_t *name,
                                 uint32_t name_length, const uint8_t *blob, uint32_t blob_length,
                                 const uint8_t *next_guid, uint32_t next_number, uint32_t *state)
{
    *program = wppr_add_program(renderer, blob, blob_length);
    if (*program < 0) {     /* refused, not left claimed: no process waits for its record */
        pshare_refuse(table, slot);
        *state = PSHARE_FULL;
        return -1;
    }
    return pshare_publish_claim(table, slot, mode, has_prefix, prefix_program, component,
                                component_length, name, name_length, NULL, 0, blob, blob_length,
                                NULL, 0, next_guid, next_number, state);
}

void pshare_refuse(const pshare_table *table, int64_t slot)
{
    pshare_slot *s = slot_at(table, slot);
    if (s != NULL)
        __atomic_store_n(&s->state, PSHARE_REFUSED, __ATOMIC_RELEASE);
}

const uint8_t *pshare_record(const pshare_table *table, int64_t slot, uint32_t *length)
{
    pshare_slot *s = slot_at(table, slot);
    *length = 0;
    if (s == NULL || __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != PSHARE_READY)
        return NULL;
    if (s->offset > table->arena || s->length > table->arena - s->offset)
        return NULL;
    *length = s->length;
    return arena_of(table) + s->offset;
}

void pshare_records(const pshare_table *table, const int64_t *slots, uint32_t n, uint64_t *offsets,
                    uint32_t *lengths)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t length;
        const uint8_t *record = pshare_record(table, slots[i], &length);
        offsets[i] = record ? (uint64_t)(record - arena_of(table)) : 0;
        lengths[i] = record ? length : 0;
    }
}

const uint8_t *pshare_arena(const pshare_table *table) { return arena_of(table); }

int pshare_post(const pshare_table *table, uint32_t k, const uint8_t *guids,
                const uint32_t *numbers, uint32_t n)
{
    pshare_head *head = head_of(table);
    if (k >= PSHARE_POSTERS || __atomic_load_n(&head->post_count[k], __ATOMIC_ACQUIRE) != 0)
        return -1;
    uint64_t offset;
    if (arena_take(table, 20ull * n, &offset) != 0)
        return -1;
    uint8_t *at = arena_of(table) + offset;
    if (n) {
        memcpy(at, guids, 16ull * n);
        memcpy(at + 16ull * n, numbers, 4ull * n);
    }
    head->post_offset[k] = offset;
    __atomic_store_n(&head->post_count[k], n + 1, __ATOMIC_RELEASE);
    return 0;
}

int64_t pshare_posted(const pshare_table *table, uint32_t k, const uint8_t **keys)
{
    pshare_head *head = head_of(table);
    *keys = NULL;
    if (k >= PSHARE_POSTERS)
        return -1;
    uint32_t count = __atomic_load_n(&head->post_count[k], __ATOMIC_ACQUIRE);
    uint64_t offset = head->post_offset[k];
    if (count == 0)
        return -1;
    /* every process of the run writes the map: a post whose keys do not lie in the arena
     * (a damaged map) is not read, but taken as not posted */
    if (offset > table->arena || 20ull * (count - 1) > table->arena - offset)
        return -1;
    *keys = arena_of(table) + offset;
    return (int64_t)count - 1;
}

uint32_t pshare_meet(const pshare_table *table, uint32_t outcome)
{
    pshare_head *head = head_of(table);
    uint32_t expected = PSHARE_MEET_OPEN;
    if (__atomic_compare_exchange_n(&head->meeting, &expected, outcome, 0, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE))
        return outcome;
    return expected;
}

/* a GUID of the posts: where its keys' numbers are (sorted and made distinct: `count` of
 * them), its place in GUID order, its weight and the process it goes to */
typedef struct share_guid {
    uint8_t guid[16];
    uint32_t first, count, filled, rank, owner;
    uint64_t weight;
} share_guid;

static int guid_bytes_order(const void *a, const void *b)
{
    return memcmp((*(share_guid *const *)a)->guid, (*(share_guid *const *)b)->guid, 16);
}

static int guid_weight_order(const void *a, const void *b)
{
    const share_guid *x = *(share_guid *const *)a, *y = *(share_guid *const *)b;
    if (x->weight != y->weight)
        return x->weight > y->weight ? -1 : 1;            /* the heaviest first */
    return memcmp(x->guid, y->guid, 16);
}

static int number_order(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int64_t pshare_shares(const pshare_table *table, uint32_t processes, uint32_t file_weight,
                      uint8_t *guids, uint32_t *guid_of, uint32_t *numbers, uint32_t *counts)
{
    if (processes == 0 || processes > PSHARE_POSTERS)
        return -1;
    /* each post read once, through pshare_posted's bounds: the arrays below are as large
     * as what was read, whatever the map says later */
    const uint8_t *keys_at[PSHARE_POSTERS];
    int64_t posts[PSHARE_POSTERS];
    uint64_t total = 0;
    for (uint32_t k = 0; k < processes; k++) {
        posts[k] = pshare_posted(table, k, &keys_at[k]);
        if (posts[k] < 0)
            return -1;
        total += (uint64_t)posts[k];
        counts[k] = 0;
    }
    if (total == 0)
        return 0;
    uint64_t cap = 16;
    while (cap < 2 * total)
        cap *= 2;
    int64_t *by_hash = malloc(cap * sizeof *by_hash);     /* a GUID's group by its hash; -1: none */
    uint32_t *group_of = malloc(total * sizeof *group_of);
    uint32_t *posted_numbers = malloc(total * sizeof *posted_numbers);
    uint32_t *grouped = malloc(total * sizeof *grouped);
    share_guid *groups = malloc(total * sizeof *groups);
    share_guid **by_guid = malloc(total * sizeof *by_guid);
    share_guid **by_weight = malloc(total * sizeof *by_weight);
    uint64_t *loads = malloc(processes * sizeof *loads);
    int64_t found = -1;
    if (!by_hash || !group_of || !posted_numbers || !grouped || !groups || !by_guid || !by_weight
        || !loads)
        goto done;
    memset(by_hash, 0xff, cap * sizeof *by_hash);
    /* each posted key's GUID group */
    uint64_t n = 0, ngroups = 0;
    for (uint32_t k = 0; k < processes; k++) {
        const uint8_t *at = keys_at[k];
        int64_t posted = posts[k];
        loads[k] = posted > 0 ? 0 : UINT64_MAX;           /* one that posted none gets none */
        for (int64_t i = 0; i < posted; i++, n++) {
            const uint8_t *guid = at + 16 * i;
            uint64_t h = guid_hash(guid) & (cap - 1);
            while (by_hash[h] >= 0 && memcmp(groups[by_hash[h]].guid, guid, 16))
                h = (h + 1) & (cap - 1);
            if (by_hash[h] < 0) {
                memcpy(groups[ngroups].guid, guid, 16);
                groups[ngroups].count = groups[ngroups].filled = 0;
                by_guid[ngroups] = &groups[ngroups];
                by_hash[h] = (int64_t)ngroups++;
            }
            group_of[n] = (uint32_t)by_hash[h];
            groups[by_hash[h]].count++;
            memcpy(&posted_numbers[n], at + 16 * posted + 4 * i, 4);
        }
    }
    /* the groups in GUID order; each one's numbers together, sorted and made distinct */
    qsort(by_guid, ngroups, sizeof *by_guid, guid_bytes_order);
    for (uint64_t r = 0, first = 0; r < ngroups; r++) {
        by_guid[r]->rank = (uint32_t)r;
        by_guid[r]->first = (uint32_t)first;
        first += by_guid[r]->count;
        memcpy(guids + 16 * r, by_guid[r]->guid, 16);
    }
    for (uint64_t i = 0; i < n; i++) {
        share_guid *group = &groups[group_of[i]];
        grouped[group->first + group->filled++] = posted_numbers[i];
    }
    for (uint64_t g = 0; g < ngroups; g++) {
        share_guid *group = &groups[g];
        uint32_t *its = grouped + group->first, distinct = 0;
        qsort(its, group->count, sizeof *its, number_order);
        for (uint32_t i = 0; i < group->count; i++)
            if (distinct == 0 || its[distinct - 1] != its[i])
                its[distinct++] = its[i];
        group->count = distinct;
        group->weight = (uint64_t)distinct + file_weight;
        by_weight[g] = group;
    }
    /* the heaviest GUID first to the least loaded process (the lowest number of those) */
    qsort(by_weight, ngroups, sizeof *by_weight, guid_weight_order);
    for (uint64_t j = 0; j < ngroups; j++) {
        uint32_t least = 0;
        for (uint32_t k = 1; k < processes; k++)
            if (loads[k] < loads[least])
                least = k;
        loads[least] += by_weight[j]->weight;
        by_weight[j]->owner = least;
    }
    /* each process's keys: its GUIDs in order, each one's numbers in order */
    uint64_t out = 0;
    for (uint32_t k = 0; k < processes; k++)
        for (uint64_t r = 0; r < ngroups; r++) {
            share_guid *group = by_guid[r];
            if (group->owner != k)
                continue;
            for (uint32_t i = 0; i < group->count; i++, out++) {
                guid_of[out] = (uint32_t)r;
                numbers[out] = grouped[group->first + i];
            }
            counts[k] += group->count;
        }
    found = (int64_t)ngroups;
done:
    free(by_hash);
    free(group_of);
    free(posted_numbers);
    free(grouped);
    free(groups);
    free(by_guid);
    free(by_weight);
    free(loads);
    return found;
}
