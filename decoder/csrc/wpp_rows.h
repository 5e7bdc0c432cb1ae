/* wpp_rows.h: compact WPP rows for the formatter (a key table + one walk per buffer), and
 * their printing by the C renderer (tmf/csrc/wpprender.h).
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * The walk itself is etlrd_walk (etlread.c); this layer turns each record into a small fixed
 * row and gives each message (GUID, number) a small integer key id, assigned in first-seen
 * order, which indexes the message's renderer program. The key table is bounded, and so is
 * the work of one lookup; past either bound a row's key is WPPROW_KEY_OVERFLOW and Python
 * prints it.
 */
#ifndef WPPTRACE_WPP_ROWS_H
#define WPPTRACE_WPP_ROWS_H
#include <stdint.h>
#include "etl_layout.h"       /* TRACE_MESSAGE_POINTER64/32 */
#include "etlread.h"
#include "wpprender.h"

#define WPPROW_NOT_MESSAGE   0xFFFFFFFE    /* key of a record that is not a TraceMessage */
#define WPPROW_KEY_OVERFLOW  0xFFFFFFFD    /* key table full: Python resolves by GUID */
#define WPPROW_LOGFILE_HEADER 0xFFFFFFFC   /* key the engine gives the log-file header record */

/* The session clock: FILETIME = start + floor((raw - origin) * num / den)
 * (decoder/timestamps.py TimeConverter.linear). */
typedef struct {
    int64_t start;
    int64_t origin;
    int64_t num;
    int64_t den;
} wpprow_clock;

typedef struct {
    int64_t  timestamp;       /* raw clock (carried forward when absent), the merge key */
    int64_t  milli;           /* FILETIME // 10000 (milliseconds), WPPR_NO_TIME or
                                 WPPR_TIME_OUT_OF_RANGE */
    uint32_t key;             /* message key id, WPPROW_NOT_MESSAGE or WPPROW_KEY_OVERFLOW */
    uint32_t slot;            /* the caller's buffer slot (which bytes object holds the data) */
    uint32_t index;           /* row number within its buffer (first_index + i) */
    uint32_t thread_id;
    uint32_t process_id;
    uint32_t sequence;
    uint32_t payload_offset;  /* argument bytes in the buffer */
    uint32_t payload_size;
    uint32_t guid_offset;     /* message / provider GUID in the buffer (0: none) */
    uint32_t cpu;
    uint16_t number;          /* message number / event id */
    uint16_t flags;           /* OptionFlags */
    uint8_t  kind;            /* ETLRD_KIND_* */
    uint8_t  present;         /* ETLRD_HAS_* */
    int64_t  filetime;        /* the record's FILETIME when milli is a time */
} wpprow;

/* BEGIN C ONLY: the pointer size of a row's arguments: the message's own
 * TRACE_MESSAGE_POINTER64/32 flag, else its file's */
static inline uint32_t wpprow_pointer_size(const wpprow *w, uint32_t file_pointer_size)
{
    return (w->flags & TRACE_MESSAGE_POINTER64) ? 8
           : (w->flags & TRACE_MESSAGE_POINTER32) ? 4 : file_pointer_size;
}
/* END C ONLY */

typedef struct wpprow_tables wpprow_tables;

/* A new key table of at most key_cap keys; NULL if out of memory. */
wpprow_tables *wpprow_tables_new(uint32_t key_cap);
void wpprow_tables_free(wpprow_tables *t);
/* Fix the hash seed (normally secret and random), before the first walk: tests use it to
 * build inputs that all hash to one slot. */
void wpprow_tables_set_seed(wpprow_tables *t, uint64_t seed);
uint32_t wpprow_key_count(const wpprow_tables *t);
/* GUID (bytes_le) and number of a key id; 0 if no such key */
int wpprow_key_info(const wpprow_tables *t, uint32_t key, uint8_t *guid, uint32_t *number);
/* GUID (bytes_le) and number (native u32) of the keys first .. first + n - 1, 20 bytes each
 * at out; the keys written (fewer when the table has fewer) */
uint32_t wpprow_key_infos(const wpprow_tables *t, uint32_t first, uint32_t n, uint8_t *out);

/* Walk buf[start:end) like etlrd_walk (same result counters, same resynchronisation) and
 * write one row per record to out (at most max_rows; res->more = 1 when full, continue from
 * res->end_offset). clock: raw clock -> FILETIME (for milli). Returns the rows. */
uint32_t wpprow_walk(wpprow_tables *t, const uint8_t *buf, uint32_t end, uint32_t start,
                     uint32_t cpu, uint32_t slot, uint32_t first_index, const wpprow_clock *clock,
                     wpprow *out, uint32_t max_rows, etlrd_walk_result *res);

/* Print the rows refs[0:n] (slot << 32 | row index in that slot's rows) with the renderer r,
 * appending their lines to out. key_program[key] is a message key's program (WPPR_HOLE: Python
 * prints it); a row's argument bytes lie in datas[slot], its pointer size defaults to
 * pointer_sizes[slot]. Rows that are not messages print nothing and are counted in *skipped;
 * the log-file header row, unresolved keys and the renderer's holes are reported as holes
 * (wppr_render). ends, if not NULL, gets the output length after each ref. 0, or -1 when
 * out of memory. */
int wpprow_render(wppr_renderer *r, const uint64_t *refs, uint32_t n, const wpprow *const *rows,
                  const uint32_t *row_counts, const uint8_t *const *datas,
                  const uint32_t *pointer_sizes, uint32_t nslots, const int32_t *key_program,
                  uint32_t nkeys, wppr_buf *out, uint32_t *holes, uint64_t *hole_at,
                  uint32_t *nholes, uint32_t *skipped, uint64_t *ends);

/* Arrow columns of rows (decoder/arrow.py): the rows' own fields, one buffer each, beside the
 * renderer's text and typed arguments (msg). Per row: filetime and the nanoseconds since 1970
 * (int64), cpu, pid, tid, sequence, payload size (uint32), number (uint16), kind (uint8),
 * the key id (int32), the source number the caller gave the row's slot (int32), and flags
 * (WPPROW_C_*). */
#define WPPROW_C_TIME        1      /* filetime is set */
#define WPPROW_C_NS          2      /* ns is set (the FILETIME fits int64 nanoseconds since 1970) */
#define WPPROW_C_NO_GUID     4      /* the record has no message GUID */
#define WPPROW_C_NO_PID      8      /* a record that is not a message logs no process id */
#define WPPROW_C_NO_TID      16     /* ... and no thread id (a message's print as 0, as fmt's) */

/* why wpprow_put_columns stopped before the end of its refs */
#define WPPROW_C_DONE        0
#define WPPROW_C_HOLE        1      /* the row's own fields are in; its text and arguments are
                                       the caller's (wppr_columns_text / _arg / _end_row) */
#define WPPROW_C_FULL        2      /* the batch holds max_rows rows, or 1 GiB of text or strings */

typedef struct {
    wppr_columns msg;
    wppr_buf filetime;
    wppr_buf ns;
    wppr_buf cpu;
    wppr_buf pid;
    wppr_buf tid;
    wppr_buf sequence;
    wppr_buf payload_size;
    wppr_buf number;
    wppr_buf kind;
    wppr_buf key;
    wppr_buf source;
    wppr_buf flags;
} wpprow_columns;

/* Append the rows refs[start:n] to out as wpprow_render prints them (renderer r in
 * WPPR_OUT_COLUMNS form), until one is left to the caller. Rows that are not messages are
 * skipped and counted in *skipped, unless all_records (then they are holes, as are the log-file
 * header, unresolved keys, times only Python computes and the renderer's holes). sources[slot]:
 * the source number of the slot's rows. Returns the index of the first ref not done (n when
 * all are) and sets *why (WPPROW_C_*: at a hole the row's own fields are in, at FULL the row
 * is not); -1 when out of memory. */
int64_t wpprow_put_columns(wppr_renderer *r, const uint64_t *refs, uint32_t start, uint32_t n,
                           const wpprow *const *rows, const uint32_t *row_counts,
                           const uint8_t *const *datas, const uint32_t *pointer_sizes,
                           const int32_t *sources, uint32_t nslots, const int32_t *key_program,
                           uint32_t nkeys, int all_records, uint32_t max_rows, wpprow_columns *out,
                           uint32_t *skipped, int *why);
/* Empty out (first offsets written), freeing the buffers still held: 0, or -1. */
int wpprow_columns_reset(wpprow_columns *out);
/* Make room for rows rows, args arguments, text and str bytes (the size of the last batch,
 * so that the next one does not grow its buffers step by step): 0, or -1. */
int wpprow_columns_reserve(wpprow_columns *out, uint32_t rows, uint32_t args, size_t text,
                           size_t str);

#endif
