/* wpprender.h: the C message renderer: compiled per-message programs -> tracefmt text.
 *
 * Python compiles a TMF message (and the trace prefix bound to it) into a program blob
 * (wpptrace.tmf.native) and registers it once; a batch call then renders many records'
 * argument bytes into one output buffer, one line per record. Whatever the C side cannot
 * print exactly as the Python renderer does (argument bytes that do not fit, rare item
 * types, out-of-range clocks) is left as a hole: the row's index and output position are
 * reported and Python renders that line.
 *
 * Python sees these declarations through wpprender.cdef (keep the two in step).
 */
#ifndef WPPTRACE_WPPRENDER_H
#define WPPTRACE_WPPRENDER_H
#include <stddef.h>
#include <stdint.h>

#define WPPR_MAGIC          0x32525057u   /* "WPR2": program blob version */

/* program flags */
#define WPPR_P_PREFIX       1      /* the message starts with %0: the prefix goes in front */
#define WPPR_P_SHARED       2      /* a shared prefix: other programs name it, no row uses it */

/* argument wire forms */
#define WPPR_W_FIXED        1      /* size bytes */
#define WPPR_W_PTR          2      /* the record's pointer size */
#define WPPR_W_CSTR         3      /* NUL-terminated ANSI */
#define WPPR_W_WSTR         4      /* NUL-terminated UTF-16LE */
#define WPPR_W_PSTR         5      /* USHORT byte count + ANSI */
#define WPPR_W_PWSTR        6      /* USHORT byte count + UTF-16LE */
#define WPPR_W_HEXDUMP      7      /* USHORT byte count + bytes */
#define WPPR_A_REDUCE       1      /* argument flag: ItemRString / ItemRWString reduction */

/* ops */
#define WPPR_OP_LIT         1      /* pool text p1, length p2 */
#define WPPR_OP_PREFIX_END  2      /* the ops before this one are the prefix */
#define WPPR_OP_INT         3      /* integer argument under a printf spec */
#define WPPR_OP_DBL         4      /* double argument under a printf spec */
#define WPPR_OP_TEXT        5      /* string argument, %s semantics */
#define WPPR_OP_FORM        6      /* an item's own text (status name, GUID ...), then %s */
#define WPPR_OP_PVAR        7      /* prefix variable arg (3 tid, 5/6 times, 7 seq, 8 pid, 9 cpu) */
#define WPPR_OP_PTIME       8      /* prefix variable 4: the time text */
#define WPPR_OP_PSTR        9      /* string arg of the message's program (a shared prefix's %1, %2, markers) */

/* OP_FORM items */
#define WPPR_F_NTSTATUS     1
#define WPPR_F_HRESULT      2
#define WPPR_F_WINERROR     3
#define WPPR_F_NDIS_STATUS  4
#define WPPR_F_NDIS_OID     5
#define WPPR_F_GUID         6
#define WPPR_F_CHAR4        7
#define WPPR_F_HEXDUMP      8
#define WPPR_F_LIST         9      /* table: n, (value, off, len) x n sorted */
#define WPPR_F_SET          10     /* table: n, (off, len) x n by bit */
#define WPPR_F_ENUM         11     /* table: as LIST */
#define WPPR_F_FLAGS        12     /* table: as LIST, then (off, len) x 32 bit names */
#define WPPR_F_FLAGS_NONE   13     /* ItemFlagsEnum without its #enumv block: 0x%x */
#define WPPR_F_DOUBLE       14     /* %g */

/* spec flag bits */
#define WPPR_MINUS          1
#define WPPR_PLUS           2
#define WPPR_SPACE          4
#define WPPR_HASH           8
#define WPPR_ZERO           16

/* status tables */
#define WPPR_ST_NTSTATUS    0
#define WPPR_ST_WINERROR    1
#define WPPR_ST_HRESULT     2
#define WPPR_ST_NDIS_STATUS 3
#define WPPR_ST_NDIS_OID    4

/* output forms of the rows (wppr_set_output) */
#define WPPR_OUT_TEXT       0      /* the tracefmt line */
#define WPPR_OUT_CSV        1      /* a CSV row: the program's decoration (GuidName,MessageName),
                                      the row's facts, then the line as the last field */
#define WPPR_OUT_JSON       2      /* a JSON object: time, the decoration's head, the row's facts,
                                      the text and the typed arguments */
#define WPPR_OUT_COLUMNS    3      /* Arrow columns (wppr_columns): the message text and the
                                      typed arguments; the prefix is never printed */

/* JSON argument values (decoration blob) */
#define WPPR_J_UNSIGNED     1      /* the zero-extended value in decimal */
#define WPPR_J_SIGNED       2      /* signed at the spec's bits (per pointer size) */
#define WPPR_J_STRING       3      /* the decoded text as a JSON string */
#define WPPR_J_GUID         4      /* "xxxxxxxx-xxxx-..." */
#define WPPR_J_DOUBLE       5      /* Python's repr of the double ("nan", "inf", "-inf" as strings) */

/* which value of a column argument is set (wppr_columns.arg_has) */
#define WPPR_C_INT          1      /* arg_int */
#define WPPR_C_FLOAT        2      /* arg_float */
#define WPPR_C_STR          4      /* the string at str_off */

/* row.program values that are not programs */
#define WPPR_SKIP           -1     /* not a message: counted, nothing printed */
#define WPPR_HOLE           -2     /* Python prints this row */

/* row.milli values that are not times */
#define WPPR_NO_TIME        (INT64_MIN)              /* the record has no time: empty time text */
#define WPPR_TIME_OUT_OF_RANGE (INT64_MIN + 1)      /* Python places it: rows printing it are holes */
#define WPPR_ISO_END_FILETIME 2650467744000000000LL /* 10000-01-01: no ISO 8601 text from here on
                                                       (a JSON timestamp is null) */

/* A growable output buffer: data[0:len) printed, room up to cap. While it borrows caller
 * memory (wppr_buf_borrow), data is that memory: never grown in place nor freed; a text that
 * outgrows it moves to the buffer's own memory (own, own_cap), which it keeps from then on. */
typedef struct {
    uint8_t *data;
    size_t len;
    size_t cap;
    uint8_t *own;            /* while borrowing: the buffer's own memory (NULL: none yet) */
    size_t own_cap;
    int borrowed;            /* data is caller memory */
} wppr_buf;

typedef struct {
    const uint8_t *args;     /* argument bytes */
    int64_t milli;           /* FILETIME // 10000, WPPR_NO_TIME or WPPR_TIME_OUT_OF_RANGE */
    uint32_t size;           /* argument byte count */
    int32_t program;         /* program id, WPPR_SKIP or WPPR_HOLE */
    uint32_t thread_id;
    uint32_t process_id;
    uint32_t sequence;
    uint32_t cpu;
    uint32_t pointer_size;   /* of the message's arguments: 4 or 8 */
    uint32_t reserved;
    int64_t filetime;        /* the row's FILETIME (JSON), valid when milli is a time */
} wppr_row;

/* The text and typed arguments of a batch of rows in Arrow's layouts: fixed-width values,
 * int32 offsets (first 0) + data. Per row: text_off (its text), arg_off (its first argument);
 * per argument: name and type ids (the decoration's), its int64, double and string values,
 * arg_has telling which one is set (WPPR_C_*). The renderer appends; the caller takes the
 * buffers (wppr_columns_reset frees whatever was not taken). */
typedef struct {
    wppr_buf text_off;
    wppr_buf text;
    wppr_buf arg_off;
    wppr_buf arg_name;
    wppr_buf arg_type;
    wppr_buf arg_int;
    wppr_buf arg_float;
    wppr_buf arg_has;
    wppr_buf str_off;
    wppr_buf str;
    uint32_t rows;
    uint32_t args;
} wppr_columns;

typedef struct wppr_renderer wppr_renderer;

wppr_renderer *wppr_new(void);
void wppr_free(wppr_renderer *r);
/* Register a program blob; its id (>= 0), or -1 for a malformed blob or no memory. */
int32_t wppr_add_program(wppr_renderer *r, const uint8_t *blob, uint32_t len);
/* utc: time text in UTC (else local time); noprefix: never a prefix. */
void wppr_set_options(wppr_renderer *r, int utc, int noprefix);
/* Append the line of one row (program >= 0) to out: 0; 1: a hole (out unchanged); -1: out
 * of memory. Counts the rows each program rendered. */
int wppr_render_row(wppr_renderer *r, const wppr_row *row, wppr_buf *out);
/* Start loading what rendering a row of program id reads (its program, its argument
 * bytes args) into the cache, a row ahead of rendering it: rows jump between programs. */
void wppr_prefetch(const wppr_renderer *r, int32_t id, const uint8_t *args);
/* Render rows[0:n] as lines appended to out. Rows Python must print are reported in
 * holes[] (row index) with hole_at[] (the output length at their place); *nholes is set.
 * Returns 0, or -1 when out of memory. */
int wppr_render(wppr_renderer *r, const wppr_row *rows, uint32_t n, wppr_buf *out,
                uint32_t *holes, uint64_t *hole_at, uint32_t *nholes);
/* The output form of the rows (WPPR_OUT_*); quote_all: every CSV field quoted. */
void wppr_set_output(wppr_renderer *r, int output, int quote_all);
int wppr_output(const wppr_renderer *r);
/* wanted 0: text lines (WPPR_OUT_TEXT) are decided as when printed (the same holes, the same
 * rows counted) but nothing is appended to the output; 1 (the default): printed. */
void wppr_set_text(wppr_renderer *r, int wanted);
/* The decoration of a program's CSV rows or JSON objects (without one, its rows in those
 * forms are holes). CSV: the row's first fields, as CSV text. JSON: u32 head length, the
 * head (the keys "guid" .. "flags" with a leading comma), u16 argument count, then per
 * argument u8 WPPR_J_* kind, u8 bits at pointer size 4, u8 bits at pointer size 8, u8 0,
 * u32 length and the text before its value ('{"name":..,"type":..,"value":').
 * 0, or -1 for a malformed blob or no memory. */
int wppr_set_decoration(wppr_renderer *r, int32_t program, const uint8_t *blob, uint32_t len);
/* Columns (WPPR_OUT_COLUMNS): append one row's text and typed arguments to c: 0; 1: a hole
 * (c unchanged); -1: out of memory. The program's decoration: u16 argument count, then per
 * argument u8 WPPR_J_* kind, u8 bits at pointer size 4, u8 bits at pointer size 8, u8 0,
 * i32 name id, i32 type id. Counts the rows each program rendered. */
int wppr_column_row(wppr_renderer *r, const wppr_row *row, wppr_columns *c);
/* Append a row made elsewhere: its text (NULL: none, an empty string), then its arguments one
 * by one (str NULL: no string), then end the row. 0, or -1 when out of memory. */
int wppr_columns_text(wppr_columns *c, const uint8_t *text, size_t len);
int wppr_columns_arg(wppr_columns *c, int32_t name, int32_t type, uint8_t has, int64_t i,
                     double f, const uint8_t *str, size_t len);
int wppr_columns_end_row(wppr_columns *c);
/* Empty c (the first offsets written), freeing the buffers still held. 0, or -1. */
int wppr_columns_reset(wppr_columns *c);
/* free() for the buffers a caller took out of a wppr_columns */
void wppr_mem_free(void *p);
/* Rows rendered by each program so far, into out[0..cap) (by program id); the number of
 * programs (out may be NULL when cap is 0). */
uint32_t wppr_program_rows_all(const wppr_renderer *r, uint64_t *out, uint32_t cap);
/* Rows rendered so far by the programs progs[0..n) together (ids that are no program add 0). */
uint64_t wppr_program_rows_of(const wppr_renderer *r, const int32_t *progs, uint32_t n);
void wppr_buf_free(wppr_buf *b);
/* Print into caller memory mem[0:cap) from now on (emptied): the text lies where it was
 * printed, in mem while it fits, else in the buffer's own memory (what mem held copied
 * there first; mem is left as it is and the buffer borrows no more). */
void wppr_buf_borrow(wppr_buf *b, uint8_t *mem, size_t cap);
/* Borrow no more: a buffer still in caller memory gets its own memory back, emptied (the text
 * stays in the caller's memory); one that moved out keeps its text. */
void wppr_buf_return(wppr_buf *b);

/* the status name tables (generated from the mingw-w64 headers) */
uint32_t wppr_status_count(int kind);
int wppr_status_entry(int kind, uint32_t index, uint32_t *code, const char **name);
const char *wppr_status_lookup(int kind, uint32_t code);
/* the name tracefmt shows for a code of an item (HRESULT: Win32 / NTSTATUS facilities ...) */
const char *wppr_status_name(int kind, uint32_t code);

/* the time text of a FILETIME, MM/DD/YYYY-HH:MM:SS.mmm (local time unless utc), into out
 * (at least 64 bytes); returns its length */
int wppr_time_text(int64_t filetime, int utc, char *out);

#endif
