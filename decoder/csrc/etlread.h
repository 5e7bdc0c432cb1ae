/* etlread.h: the C hot path of the ETL reader: record walking, MS-XCA decompression, the
 * buffer index of an uncompressed file and the search for a buffer header after damage
 * (etlindex.c).
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * The walker never trusts a length from the file: every read is bounds-checked
 * against the buffer it was given.
 */
#ifndef WPPTRACE_ETLREAD_H
#define WPPTRACE_ETLREAD_H
#include <stdint.h>
#include <stddef.h>

/* record kinds (index into the by-kind counters) */
#define ETLRD_KIND_SYSTEM    0
#define ETLRD_KIND_COMPACT   1
#define ETLRD_KIND_PERFINFO  2
#define ETLRD_KIND_FULL      3
#define ETLRD_KIND_INSTANCE  4
#define ETLRD_KIND_EVENT     5
#define ETLRD_KIND_MESSAGE   6
#define ETLRD_KIND_UNKNOWN   7
#define ETLRD_KIND_COUNT     8

/* etlrd_record.present bits: which optional facts the record carried */
#define ETLRD_HAS_TIMESTAMP  0x01
#define ETLRD_HAS_THREAD     0x02
#define ETLRD_HAS_PROCESS    0x04
#define ETLRD_HAS_GUID       0x08
#define ETLRD_HAS_SEQUENCE   0x10
#define ETLRD_HAS_COMPONENT  0x20

/* etlrd_walk_result.error codes: what was expected at error_offset */
#define ETLRD_OK                 0
#define ETLRD_ERR_SHORT_HEADER   1   /* fewer bytes left than the record's fixed header */
#define ETLRD_ERR_BAD_MARKER     2   /* first ULONG is no known record marker */
#define ETLRD_ERR_BAD_SIZE       3   /* record size smaller than its header or past the end */
#define ETLRD_ERR_BAD_ITEMS      4   /* message items / header extensions overrun the record */

typedef struct {
    uint32_t offset;          /* record start, bytes from the buffer start */
    uint32_t size;            /* size from the record header (alignment pad excluded) */
    uint32_t payload_offset;  /* user data (message items / extensions stripped) */
    uint32_t payload_size;
    int64_t  timestamp;       /* raw clock; previous record's value if absent */
    uint32_t thread_id;
    uint32_t process_id;
    uint32_t sequence;        /* message sequence */
    uint32_t component_id;    /* message component id / instance id */
    uint64_t keyword;
    uint8_t  guid[16];        /* provider / message GUID (bytes_le) */
    uint32_t ext_offset;      /* EVENT_HEADER extended items, 0 if none */
    uint32_t ext_size;
    uint16_t event_id;        /* message number / EVENT_DESCRIPTOR.Id / HookId */
    uint16_t flags;           /* OptionFlags / EVENT_HEADER.Flags / marker low word */
    uint16_t task;
    uint16_t version;         /* header Version (system: marker low word; event: descriptor) */
    uint8_t  kind;            /* ETLRD_KIND_* */
    uint8_t  header_type;     /* TRACE_HEADER_TYPE_* (0x0F for messages) */
    uint8_t  level;
    uint8_t  opcode;          /* EVENT_DESCRIPTOR.Opcode / Class.Type / HookId type */
    uint8_t  channel;
    uint8_t  present;         /* ETLRD_HAS_* */
    uint8_t  reserved[2];
} etlrd_record;

typedef struct {
    uint32_t count;           /* records written to the output array */
    uint32_t end_offset;      /* where the walk stopped */
    uint32_t error;           /* ETLRD_ERR_* of the first problem, 0 if none */
    uint32_t error_offset;    /* offset of that problem in the buffer */
    uint32_t errors;          /* problems met (each followed by a resync) */
    uint32_t skipped_bytes;   /* bytes passed over while resynchronising */
    uint32_t by_kind[ETLRD_KIND_COUNT];
    int64_t  last_timestamp;  /* in: time before the first record; out: last time seen */
    uint32_t more;            /* 1: output array full, call again from end_offset */
    uint32_t resync_point;    /* the walk's own state between calls (zero like the rest) */
    int64_t  max_timestamp;   /* out: the latest time of the records walked, if timed */
    uint32_t timed;           /* out: records walked (each with a time, own or carried) */
    uint32_t ends_damaged;    /* out: 1 if the walk ended skipping damage up to end (a record
                               * cut off there is counted so), 0 if on a record boundary */
} etlrd_walk_result;

/* Walk the records of buf[start:end). Writes at most max_records records (out may be NULL
 * with max_records 0 to only count). Stops at end, at a 0xFFFFFFFF fill marker, or when
 * out is full (more = 1, end_offset = where to continue with the same result and end;
 * counters accumulate). Zero the result before the first call. A damaged record is
 * counted (the first one in error/error_offset), then the walk resumes at the earliest
 * 8-byte boundary from which records chain cleanly to the end of the events, failing that
 * at the next plausible record header. Time is linear in end - start. Returns
 * result->count. */
uint32_t etlrd_walk(const uint8_t *buf, uint32_t end, uint32_t start,
                    etlrd_record *out, uint32_t max_records, etlrd_walk_result *result);

/* Number of valid records chained from start to the end of the events (0 if the chain
 * breaks): used to check that a resync point or the space past FilledBytes is real. */
uint32_t etlrd_chain_ok(const uint8_t *buf, uint32_t end, uint32_t start);

/* MS-XCA Plain LZ77 (COMPRESSION_FORMAT_XPRESS). Decodes src into dst (at most dst_cap
 * bytes). Returns 0, or on malformed input ETLRD_XPRESS_TRUNCATED (input ends inside an
 * item), ETLRD_XPRESS_BAD_DISTANCE (reference before the start of output) or
 * ETLRD_XPRESS_OVERFLOW (output would exceed dst_cap). *produced / *consumed always tell
 * how far decoding got, so the good prefix of a damaged stream stays usable. */
#define ETLRD_XPRESS_TRUNCATED    1
#define ETLRD_XPRESS_BAD_DISTANCE 2
#define ETLRD_XPRESS_OVERFLOW     3
int etlrd_xpress_decompress(const uint8_t *src, size_t src_len, uint8_t *dst, size_t dst_cap,
                            size_t *produced, size_t *consumed);

/* ---- the buffer index (etlindex.c) ---------------------------------------------------
 * Only the regular run of an uncompressed file's buffers is read here; every buffer that
 * needs judging (a short read, a zeroed header before records, a cut-off buffer, a
 * BufferSize other than the session's) is left to decoder/etlfile.py, which reports it, so
 * damaged files read exactly as with Python reads alone. */

/* The columns of decoder/etlfile.py BufferIndex, in its order: entry i of every array is
 * buffer i's. */
typedef struct {
    int64_t  *file_offset;
    int64_t  *size_on_disk;
    int64_t  *sequence;
    int64_t  *timestamp;
    uint32_t *saved_offset;
    uint32_t *filled_bytes;
    uint32_t *state;
    uint16_t *processor;        /* ProcessorIndex as GetEventProcessorIndex reads it */
    uint16_t *logger_id;
    uint16_t *flags;            /* BufferFlag */
    uint16_t *buffer_type;
} etlrd_index_columns;

/* Read the WMI_BUFFER_HEADER at *offset, *offset + stride, ... of the file open as fd
 * (pread: the descriptor's position is not used) into cols[0..capacity), while each buffer
 * is whole inside file_size, its header is read whole and not all zeros, and its BufferSize
 * is stride (but for buffer 0, which may differ: first_index is the index of the first
 * buffer read). A never-written slot (a header of zeros followed by a zero or 0xFFFFFFFF
 * ULONG) is passed over and counted in *empty. Stops at the first other buffer or at a read
 * error (left for the caller to read and report), or after capacity entries. Returns the
 * entries written; *offset is where it stopped. */
int64_t etlrd_index_fixed(int fd, int64_t file_size, uint32_t stride, int64_t *offset,
                          int64_t first_index, etlrd_index_columns *cols, int64_t capacity,
                          int64_t *empty);

/* After damage in a compressed file: the first position p >= start of buf[0, len) where a
 * WMI_BUFFER_HEADER could start, by the shape of its fields alone (the caller then checks
 * the candidate whole): BufferSize's low three bytes at least sizeof(WMI_BUFFER_HEADER) or
 * above 0xFFFFFF, its top byte at most that of 2 * MAX_ETW_BUFFER_SIZE - 1; SequenceNumber
 * not negative; State at most 7; BufferFlag below 0x80; BufferType at most 8. The shape
 * spans ETLRD_HEADER_SHAPE_SPAN bytes from p, all inside buf. Runs of zeros are passed a
 * word at a time (no candidate starts before their last two bytes). Returns -1 if none. */
#define ETLRD_HEADER_SHAPE_SPAN 56
int64_t etlrd_next_header_shape(const uint8_t *buf, int64_t len, int64_t start);

#endif
