/* wpp_rows.h: compact WPP rows for the formatter's hot path (tables + one walk per buffer).
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * The walk itself is etlrd_walk (etlread.c); this layer only turns each record into a
 * small fixed row and gives repeated facts small integer ids, so the Python loop indexes
 * lists instead of hashing tuples of bytes:
 *   key  = id of (message GUID, number), assigned in first-seen order;
 *   memo = id of (key, OptionFlags, argument bytes): same id, same formatted text;
 *   head = id of (processor, process id, thread id).
 * Every table is bounded, and so is the work of one lookup; past either bound an id is
 * "none" (memo, head) or WPPROW_KEY_OVERFLOW (key) and Python takes its slow path for that
 * row.
 */
#ifndef WPPTRACE_WPP_ROWS_H
#define WPPTRACE_WPP_ROWS_H
#include <stdint.h>
#include "etlread.h"

#define WPPROW_NOT_MESSAGE   0xFFFFFFFE    /* key of a record that is not a TraceMessage */
#define WPPROW_KEY_OVERFLOW  0xFFFFFFFD    /* key table full: Python resolves by GUID */
#define WPPROW_MAX_PAYLOAD   4096          /* longer argument blocks are never memoised */
#define WPPROW_LOGFILE_HEADER 0xFFFFFFFC   /* key the engine gives the log-file header record */

/* The session clock: FILETIME = start + floor((raw - origin) * num / den)
 * (decoder/timestamps.py TimeConverter.linear). */
typedef struct {
    int64_t start;
    int64_t origin;
    int64_t num;
    int64_t den;
} wpprow_clock;

typedef struct {              /* the hot fields first: the formatter unpacks only those */
    int64_t  timestamp;       /* raw clock (carried forward when absent), the merge key */
    int64_t  milli;           /* FILETIME // 10000 (milliseconds); INT64_MIN: the record has
                                 no time, INT64_MIN + 1: its time is out of range */
    uint32_t memo;            /* memo id, or the tables' memo_none */
    uint32_t head;            /* (cpu, pid, tid) id, or the tables' head_none */
    uint32_t key;             /* message key id, WPPROW_NOT_MESSAGE or WPPROW_KEY_OVERFLOW */
    uint32_t slot;            /* the caller's buffer slot (which bytes object holds the data) */
    uint32_t index;           /* row number within its buffer (first_index + i) */
    uint32_t thread_id;
    uint32_t process_id;
    uint32_t sequence;
    uint32_t payload_offset;  /* argument bytes in the buffer */
    uint32_t payload_size;
    uint32_t guid_offset;     /* message GUID in the buffer (0: none) */
    uint32_t cpu;
    uint16_t number;          /* message number / event id */
    uint16_t flags;           /* OptionFlags */
    uint8_t  kind;            /* ETLRD_KIND_* */
    uint8_t  present;         /* ETLRD_HAS_* */
} wpprow;

typedef struct wpprow_tables wpprow_tables;

/* New tables: at most key_cap keys, memo_cap memo entries (memo_per_key per key, payload
 * copies at most arena_cap bytes in all), head_cap heads. NULL if out of memory. */
wpprow_tables *wpprow_tables_new(uint32_t key_cap, uint32_t memo_cap, uint32_t memo_per_key,
                                 uint64_t arena_cap, uint32_t head_cap);
void wpprow_tables_free(wpprow_tables *t);
/* Fix the hash seed (normally secret and random), before the first walk: tests use it to
 * build inputs that all hash to one slot. */
void wpprow_tables_set_seed(wpprow_tables *t, uint64_t seed);
uint32_t wpprow_key_count(const wpprow_tables *t);
/* GUID (bytes_le) and number of a key id; 0 if no such key */
int wpprow_key_info(const wpprow_tables *t, uint32_t key, uint8_t *guid, uint32_t *number);
/* how many more memo ids this key may get (0: never memoise it) */
void wpprow_key_memo_left(wpprow_tables *t, uint32_t key, uint32_t left);

/* Walk buf[start:end) like etlrd_walk (same result counters, same resynchronisation) and
 * write one row per record to out (at most max_rows; res->more = 1 when full, continue from
 * res->end_offset). clock: raw clock -> FILETIME (for milli). Returns the rows. */
uint32_t wpprow_walk(wpprow_tables *t, const uint8_t *buf, uint32_t end, uint32_t start,
                     uint32_t cpu, uint32_t slot, uint32_t first_index, const wpprow_clock *clock,
                     wpprow *out, uint32_t max_rows, etlrd_walk_result *res);

#endif
