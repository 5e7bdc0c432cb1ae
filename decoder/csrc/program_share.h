/* program_share.h: compiled message programs shared by the processes of one `fmt -j` run
 * (decoder/program_share.py).
 *
 * The table lives in an anonymous shared mapping made before the workers are forked. The
 * first process that needs a message claims its slot and compiles it; the others use the
 * record it publishes instead of compiling the message again. Records are opaque bytes here.
 * A slot is claimed by a compare-and-swap of its tag (the key's hash), then its key is
 * written and its state set; a record is copied once into the arena, then published by a
 * release store of the state, so a process that reads READY reads the whole record.
 */
#ifndef WPPTRACE_PROGRAM_SHARE_H
#define WPPTRACE_PROGRAM_SHARE_H
#include <stdint.h>
#include "wpprender.h"

#define PSHARE_EMPTY 0      /* nobody has needed this message yet */
#define PSHARE_CLAIMED 1    /* a process is compiling it */
#define PSHARE_READY 2      /* its record is there */
#define PSHARE_REFUSED 3    /* no record will come: each process compiles it itself */
#define PSHARE_MINE 4       /* pshare_claim: this caller claimed it and publishes or refuses */
#define PSHARE_FULL 5       /* pshare_claim: no slot for it (or its key was never written) */

/* The meeting of a run's processes over their first keys (pshare_post, pshare_meet): each
 * posts the messages its first window needs compiled, and once all have posted they share
 * out the whole set by TMF GUID, so no TMF file is read by two processes for them. */
#define PSHARE_MEET_OPEN 0      /* not decided yet */
#define PSHARE_MEET_AGREED 1    /* every process posted: each compiles its share of them */
#define PSHARE_MEET_ABANDONED 2 /* one gave up waiting: first come, first compiled */
#define PSHARE_POSTERS 64       /* processes that can post (the arrays below) */

typedef struct pshare_slot {
    uint64_t tag;           /* the key's hash, never 0; 0 = free */
    uint32_t state;
    uint32_t number;
    uint8_t guid[16];
    uint64_t offset;        /* the record: arena[offset : offset + length] */
    uint32_t length;
    uint32_t reserved;
} pshare_slot;

typedef struct pshare_head {
    uint64_t magic;
    uint64_t used;          /* arena bytes handed out (may pass `arena`: then nothing fits) */
    uint32_t meeting;       /* PSHARE_MEET_* */
    uint32_t reserved;
    uint64_t post_offset[PSHARE_POSTERS];   /* where process k's posted keys are */
    uint32_t post_count[PSHARE_POSTERS];    /* their number + 1, stored last (release); 0: not posted */
} pshare_head;

/* A process's handle on a table: the map, and the sizes this process made the table with,
 * kept in its own memory (copied at the fork). Every process of a run writes the map: the
 * bounds a slot, record or post is checked against are never read from it. */
typedef struct pshare_table {
    uint8_t *mem;
    uint64_t slots;         /* a power of 2 */
    uint64_t arena;         /* bytes for records */
} pshare_table;

/* The bytes a table of `slots` slots (a power of 2) and `arena` record bytes takes. */
uint64_t pshare_size(uint64_t slots, uint64_t arena);

/* Make a table in `size` zeroed bytes at `mem` (8-byte aligned), its handle in *table; 0, or
 * -1 when the sizes do not fit or `slots` is not a power of 2. */
int pshare_init(pshare_table *table, uint8_t *mem, uint64_t size, uint64_t slots);

/* The slot of (guid, number), claimed for the caller when nobody had it: *state is MINE,
 * CLAIMED (another process compiles it), READY or REFUSED; -1 with FULL when there is no
 * slot for it. */
int64_t pshare_claim(const pshare_table *table, const uint8_t *guid, uint32_t number,
                     uint32_t *state);

/* A slot's state now (acquire: READY means its record can be read). */
uint32_t pshare_state(const pshare_table *table, int64_t slot);

/* Publish the record of a slot the caller claimed: 0, or -1 (then REFUSED) when the arena
 * has no room for it. */
int pshare_publish(const pshare_table *table, int64_t slot, const uint8_t *data, uint32_t length);

/* Publish the record of a slot the caller claimed, laid out in the arena from its parts
 * (program_records.h's format, the bytes decoder/program_share.py's pack_parts makes): the
 * printer mode it is for (4 bytes), whether the format starts with %0, the shared prefix
 * program its blob calls (-1: none), component, name, Unknown line (NULL: none), program blob
 * and decoration (NULL: none). 0, or -1 (then REFUSED) when the arena has no room for it. */
int pshare_publish_parts(const pshare_table *table, int64_t slot, const uint8_t *mode,
                         int has_prefix, int32_t prefix_program, const uint8_t *component,
                         uint32_t component_length, const uint8_t *name, uint32_t name_length,
                         const uint8_t *unknown, uint32_t unknown_length, const uint8_t *blob,
                         uint32_t blob_length, const uint8_t *decoration,
                         uint32_t decoration_length);

/* pshare_publish_parts (`mode`: its 4 bytes as a little-endian u32), then pshare_claim of
 * the next message the caller compiles (`next_guid` NULL: none, -1 with FULL): one call a
 * message where a process compiles one after another. Whether the record was published is
 * the slot's state (READY, or REFUSED when the arena had no room). */
int64_t pshare_publish_claim(const pshare_table *table, int64_t slot, uint32_t mode,
                             int has_prefix, int32_t prefix_program, const uint8_t *component,
                             uint32_t component_length, const uint8_t *name, uint32_t name_length,
                             const uint8_t *unknown, uint32_t unknown_length, const uint8_t *blob,
                             uint32_t blob_length, const uint8_t *decoration,
                             uint32_t decoration_length, const uint8_t *next_guid,
                             uint32_t next_number, uint32_t *state);

/* The program blob of a message with a format (no Unknown line) and no decoration
 * registered with `renderer` (its id in *program), then pshare_publish_claim of its record:
 * one call a message where a process compiles text lines one after another. *program -1:
 * the renderer refused the blob: the slot is refused and nothing is claimed (-1 with FULL). */
int64_t pshare_add_publish_claim(const pshare_table *table, wppr_renderer *renderer,
                                 int32_t *program, int64_t slot, uint32_t mode, int has_prefix,
                                 int32_t prefix_program, const uint8_t *component,
                                 uint32_t component_length, const uint8_t *name,
                                 uint32_t name_length, const uint8_t *blob, uint32_t blob_length,
                                 const uint8_t *next_guid, uint32_t next_number, uint32_t *state);

/* Say that a claimed slot gets no record. */
void pshare_refuse(const pshare_table *table, int64_t slot);

/* A READY slot's record (*length bytes), NULL when it is not READY. */
const uint8_t *pshare_record(const pshare_table *table, int64_t slot, uint32_t *length);

/* The slots of the keys (guids: n x 16 bytes, numbers) whose records are READY, -1 for the
 * others (none claimed: a key not READY yet is left to pshare_claim). */
void pshare_ready(const pshare_table *table, const uint8_t *guids, const uint32_t *numbers,
                  uint32_t n, int64_t *slots);

/* Where the records of slots[0:n] are in the arena (pshare_arena): offsets[i], lengths[i];
 * length 0 for a slot that is not READY. */
void pshare_records(const pshare_table *table, const int64_t *slots, uint32_t n, uint64_t *offsets,
                    uint32_t *lengths);

/* Post the keys process `k` needs first (guids: n x 16 bytes, numbers): 0, or -1 when `k` is
 * not below PSHARE_POSTERS, it posted already or the arena has no room (it then takes part
 * in no meeting: pshare_meet abandons it). */
int pshare_post(const pshare_table *table, uint32_t k, const uint8_t *guids,
                const uint32_t *numbers, uint32_t n);

/* The keys process `k` posted: their number, and where they are (`n` GUIDs of 16 bytes, then
 * `n` numbers) in *keys; -1 when it has not posted, or its keys do not lie in the arena
 * (a damaged map: taken as not posted). */
int64_t pshare_posted(const pshare_table *table, uint32_t k, const uint8_t **keys);

/* The meeting's shares of the keys processes 0..processes-1 posted (all of them posted:
 * else -1), as decoder/program_share.py's shares_of gives them out: whole GUIDs, each weighed
 * by its distinct keys plus `file_weight`, the heaviest first to the least loaded of the
 * processes that posted some (the lowest number of those). Writes the distinct GUIDs in
 * order (16 bytes each) to guids, then each process's keys, process 0's first, in GUID then
 * number order: guid_of[i] (the index of its GUID in guids) and numbers[i], counts[k] of
 * them for process k (every array as large as the keys posted in all). Returns the
 * number of GUIDs, or -1 (a process has not posted, or no memory). */
int64_t pshare_shares(const pshare_table *table, uint32_t processes, uint32_t file_weight,
                      uint8_t *guids, uint32_t *guid_of, uint32_t *numbers, uint32_t *counts);

/* Decide the meeting if it is still open (to AGREED or ABANDONED, `outcome`): the outcome
 * every process then sees. */
uint32_t pshare_meet(const pshare_table *table, uint32_t outcome);

/* The arena the records are in. */
const uint8_t *pshare_arena(const pshare_table *table);

#endif
