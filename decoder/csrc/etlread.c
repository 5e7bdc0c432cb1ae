/* etlread.c: walk the trace records of one ETL buffer into a flat array (the hot path).
 *
 * One pass, no allocation: each record's marker picks its header family (docs/etl-format.md
 * §2.2), its fixed header is decoded into an etlrd_record and its payload located.
 * Damage never stops the walk for good: the problem is reported and the walk resumes at
 * the next 8-byte boundary that holds a plausible record header.
 */
#include <stddef.h>
#include <string.h>
#include "etl_layout.h"
#include "etlread.h"

static inline uint16_t rd16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static inline uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static inline int64_t rd64(const uint8_t *p) { int64_t v; memcpy(&v, p, 8); return v; }

#define ALIGN8(x) (((x) + 7u) & ~7u)

/* Header family of a marker: kind, fixed header size and where the size lives.
 * Returns 0 if the marker is not a record marker. */
static int classify(uint32_t marker, const uint8_t *rec, uint32_t avail,
                    uint8_t *kind, uint32_t *fixed, uint32_t *size)
{
    uint32_t top = marker >> 24;
    if (top == TRACE_RECORD_MARKER_MESSAGE) {
        *kind = ETLRD_KIND_MESSAGE;
        *fixed = sizeof(MESSAGE_TRACE_HEADER);
        *size = marker & 0xFFFF;
        return 1;
    }
    if (top != TRACE_RECORD_MARKER_FIXED)
        return 0;
    uint32_t type = (marker >> 16) & 0xFF;
    uint32_t extra = 0;
    switch (type) {
    case TRACE_HEADER_TYPE_SYSTEM32: case TRACE_HEADER_TYPE_SYSTEM64:
    case TRACE_HEADER_TYPE_COMPACT32: case TRACE_HEADER_TYPE_COMPACT64:
    case TRACE_HEADER_TYPE_PERFINFO32: case TRACE_HEADER_TYPE_PERFINFO64:
        /* kernel-style: size in Packet.Size; PEBS index and PMC counters follow the header */
        if (avail < offsetof(SYSTEM_TRACE_HEADER, ThreadId))
            return 0;
        *size = rd16(rec + offsetof(SYSTEM_TRACE_HEADER, Size));
        if (marker & TRACE_HEADER_PEBS_INDEX_FLAG)
            extra = TRACE_HEADER_PEBS_INDEX_SIZE;
        extra += TRACE_HEADER_PMC_COUNTER_SIZE * ((marker & TRACE_HEADER_PMC_COUNTERS_MASK) >> 8);
        if (type <= TRACE_HEADER_TYPE_SYSTEM64) {
            *kind = ETLRD_KIND_SYSTEM; *fixed = sizeof(SYSTEM_TRACE_HEADER) + extra;
        } else if (type <= TRACE_HEADER_TYPE_COMPACT64) {
            *kind = ETLRD_KIND_COMPACT; *fixed = COMPACT_HEADER_SIZE + extra;
        } else {
            *kind = ETLRD_KIND_PERFINFO; *fixed = sizeof(PERFINFO_TRACE_HEADER) + extra;
        }
        return 1;
    case TRACE_HEADER_TYPE_FULL_HEADER32: case TRACE_HEADER_TYPE_FULL_HEADER64:
        *kind = ETLRD_KIND_FULL; *fixed = sizeof(EVENT_TRACE_HEADER);
        break;
    case TRACE_HEADER_TYPE_INSTANCE32: case TRACE_HEADER_TYPE_INSTANCE64:
        *kind = ETLRD_KIND_INSTANCE; *fixed = sizeof(EVENT_INSTANCE_GUID_HEADER);
        break;
    case TRACE_HEADER_TYPE_EVENT_HEADER32: case TRACE_HEADER_TYPE_EVENT_HEADER64:
        *kind = ETLRD_KIND_EVENT; *fixed = sizeof(EVENT_HEADER);
        break;
    default:
        /* a fixed-family record we do not decode (TIMED, ERROR, WNODE, newer types):
         * its size is in the low word; skip it by that */
        *kind = ETLRD_KIND_UNKNOWN; *fixed = 4;
        break;
    }
    *size = marker & 0xFFFF;
    return 1;
}

/* Could a record start at rec? Used only to resynchronise after damage. */
static int plausible(const uint8_t *rec, uint32_t avail)
{
    uint8_t kind; uint32_t fixed, size;
    if (avail < 4)
        return 0;
    uint32_t marker = rd32(rec);
    if (!classify(marker, rec, avail, &kind, &fixed, &size))
        return 0;
    if (kind == ETLRD_KIND_UNKNOWN || kind == ETLRD_KIND_MESSAGE) {
        if (kind == ETLRD_KIND_UNKNOWN)
            return 0;   /* too weak a signal to resume on */
        if ((marker >> 16) & 0xFF)
            return 0;   /* message Reserved byte is 0 in every writer */
    }
    return size >= fixed && size <= avail;
}

/* Decode the fixed header of one record whose kind/size are known to fit. */
static int decode(const uint8_t *rec, uint32_t off, uint32_t marker, uint8_t kind,
                  uint32_t fixed, uint32_t size, etlrd_record *r, int64_t prev_ts)
{
    memset(r, 0, sizeof(*r));
    r->offset = off;
    r->size = size;
    r->kind = kind;
    r->header_type = (uint8_t)((marker >> 16) & 0xFF);
    r->timestamp = prev_ts;
    uint32_t payload = fixed;
    switch (kind) {
    case ETLRD_KIND_SYSTEM:
    case ETLRD_KIND_COMPACT: {
        /* copies, not casts: rec may sit at any address (a caller's memoryview), and the
         * compact form is only COMPACT_HEADER_SIZE bytes of this struct */
        SYSTEM_TRACE_HEADER hdr = {0}, *h = &hdr;
        memcpy(&hdr, rec, kind == ETLRD_KIND_COMPACT ? COMPACT_HEADER_SIZE : sizeof(hdr));
        r->thread_id = h->ThreadId;
        r->process_id = h->ProcessId;
        r->timestamp = h->SystemTime;
        r->present = ETLRD_HAS_TIMESTAMP | ETLRD_HAS_THREAD | ETLRD_HAS_PROCESS;
        r->event_id = h->HookId;
        r->opcode = (uint8_t)(h->HookId & 0xFF);
        r->version = (uint16_t)(marker & 0xFF);
        r->flags = (uint16_t)(marker & 0xFFFF);
        break;
    }
    case ETLRD_KIND_PERFINFO: {
        PERFINFO_TRACE_HEADER hdr, *h = &hdr;
        memcpy(&hdr, rec, sizeof(hdr));
        r->timestamp = h->SystemTime;
        r->present = ETLRD_HAS_TIMESTAMP;
        r->event_id = h->HookId;
        r->opcode = (uint8_t)(h->HookId & 0xFF);
        r->version = (uint16_t)(marker & 0xFF);
        r->flags = (uint16_t)(marker & 0xFFFF);
        break;
    }
    case ETLRD_KIND_FULL:
    case ETLRD_KIND_INSTANCE: {
        EVENT_TRACE_HEADER hdr, *h = &hdr;
        memcpy(&hdr, rec, sizeof(hdr));
        r->thread_id = h->ThreadId;
        r->process_id = h->ProcessId;
        r->timestamp = h->TimeStamp;
        memcpy(r->guid, &h->Guid, sizeof r->guid);
        r->present = ETLRD_HAS_TIMESTAMP | ETLRD_HAS_THREAD | ETLRD_HAS_PROCESS | ETLRD_HAS_GUID;
        r->event_id = h->Type;
        r->opcode = h->Type;
        r->level = h->Level;
        r->version = h->Version;
        if (kind == ETLRD_KIND_INSTANCE)
            memcpy(&r->component_id, rec + offsetof(EVENT_INSTANCE_GUID_HEADER, InstanceId),
                   sizeof r->component_id);
        break;
    }
    case ETLRD_KIND_EVENT: {
        EVENT_HEADER hdr, *h = &hdr;
        memcpy(&hdr, rec, sizeof(hdr));
        r->thread_id = h->ThreadId;
        r->process_id = h->ProcessId;
        r->timestamp = h->TimeStamp;
        memcpy(r->guid, &h->ProviderId, sizeof r->guid);
        r->present = ETLRD_HAS_TIMESTAMP | ETLRD_HAS_THREAD | ETLRD_HAS_PROCESS | ETLRD_HAS_GUID;
        r->flags = h->Flags;
        r->event_id = h->EventDescriptor.Id;
        r->version = h->EventDescriptor.Version;
        r->channel = h->EventDescriptor.Channel;
        r->level = h->EventDescriptor.Level;
        r->opcode = h->EventDescriptor.Opcode;
        r->task = h->EventDescriptor.Task;
        r->keyword = h->EventDescriptor.Keyword;
        if (h->Flags & EVENT_HEADER_FLAG_EXTENDED_INFO) {
            /* extended items (EVENT_EXTENDED_ITEM_HEADER, then data): Reserved1 is the
             * item's total size (8-aligned); Linkage bit 0 says another item follows */
            uint32_t pos = payload;
            for (;;) {
                if (pos + sizeof(EVENT_EXTENDED_ITEM_HEADER) > size)
                    return ETLRD_ERR_BAD_ITEMS;
                uint32_t isize = rd16(rec + pos + offsetof(EVENT_EXTENDED_ITEM_HEADER, Reserved1));
                uint32_t linkage = rd16(rec + pos + offsetof(EVENT_EXTENDED_ITEM_HEADER, Linkage));
                if (isize < sizeof(EVENT_EXTENDED_ITEM_HEADER) || (isize % DEFAULT_TRACE_ALIGNMENT)
                        || pos + isize > size)
                    return ETLRD_ERR_BAD_ITEMS;
                pos += isize;
                if (!(linkage & 1))
                    break;
            }
            r->ext_offset = off + payload;
            r->ext_size = pos - payload;
            payload = pos;
        }
        break;
    }
    case ETLRD_KIND_MESSAGE: {
        MESSAGE_TRACE_HEADER hdr, *h = &hdr;
        memcpy(&hdr, rec, sizeof(hdr));
        uint32_t flags = h->OptionFlags;
        uint32_t pos = payload;
        r->event_id = h->MessageNumber;
        r->flags = (uint16_t)flags;
        /* the items MessageFlags announce, in this order: sequence (ULONG), GUID or
         * component id (ULONG), timestamp (LONGLONG), thread and process ids (2 ULONG) */
        if (flags & TRACE_MESSAGE_SEQUENCE) {
            if (pos + sizeof(uint32_t) > size) return ETLRD_ERR_BAD_ITEMS;
            r->sequence = rd32(rec + pos); pos += sizeof(uint32_t);
            r->present |= ETLRD_HAS_SEQUENCE;
        }
        if (flags & TRACE_MESSAGE_GUID) {
            if (pos + sizeof(GUID) > size) return ETLRD_ERR_BAD_ITEMS;
            memcpy(r->guid, rec + pos, sizeof(GUID)); pos += sizeof(GUID);
            r->present |= ETLRD_HAS_GUID;
        } else if (flags & TRACE_MESSAGE_COMPONENTID) {
            if (pos + sizeof(uint32_t) > size) return ETLRD_ERR_BAD_ITEMS;
            r->component_id = rd32(rec + pos); pos += sizeof(uint32_t);
            r->present |= ETLRD_HAS_COMPONENT;
        }
        if (flags & TRACE_MESSAGE_TIMESTAMP) {
            if (pos + sizeof(int64_t) > size) return ETLRD_ERR_BAD_ITEMS;
            r->timestamp = rd64(rec + pos); pos += sizeof(int64_t);
            r->present |= ETLRD_HAS_TIMESTAMP;
        }
        if (flags & TRACE_MESSAGE_SYSTEMINFO) {
            if (pos + 2 * sizeof(uint32_t) > size) return ETLRD_ERR_BAD_ITEMS;
            r->thread_id = rd32(rec + pos);
            r->process_id = rd32(rec + pos + sizeof(uint32_t)); pos += 2 * sizeof(uint32_t);
            r->present |= ETLRD_HAS_THREAD | ETLRD_HAS_PROCESS;
        }
        payload = pos;
        break;
    }
    default:
        break;
    }
    r->payload_offset = off + payload;
    r->payload_size = size - payload;
    return ETLRD_OK;
}

static void note_error(etlrd_walk_result *res, uint32_t code, uint32_t off)
{
    if (!res->errors) {
        res->error = code;
        res->error_offset = off;
    }
    res->errors++;
}

/* Do valid records follow each other from start to the end of the events (end of data,
 * 0xFF fill, or a tail too short for a record)? Returns how many (0: the chain breaks). */
uint32_t etlrd_chain_ok(const uint8_t *buf, uint32_t end, uint32_t start)
{
    uint32_t off = start, records = 0;
    while (off < end && end - off >= 4) {
        const uint8_t *rec = buf + off;
        uint32_t avail = end - off, marker = rd32(rec);
        uint8_t kind; uint32_t fixed, size;
        if (marker == 0xFFFFFFFFu)
            break;
        if (!classify(marker, rec, avail, &kind, &fixed, &size) || avail < fixed
                || size < fixed || size > avail)
            return 0;
        records++;
        off += ALIGN8(size);
    }
    return records;
}

/* Positions remembered while looking for a resume point: a record leads at most
 * ALIGN8(0xFFFF) = 64 KiB further (sizes are 16-bit), so a ring of twice that many
 * 8-byte slots always still holds the answer for the position a record leads to. */
#define RING_SLOTS (2u * 65536u / 8u)
#define NO_POINT 0xFFFFFFFFu

/* The earliest 8-aligned p >= from (with at least 4 bytes left) where the walk can go on
 * for good: the start of the 0xFF fill tail (only 0xFF bytes from p to end, not a -1 inside
 * a payload), or a plausible record header from which records chain cleanly to the end of
 * the events (as etlrd_chain_ok). NO_POINT if there is none.
 *
 * One backward pass, linear in end - from: whether the records chain cleanly from p to the
 * end depends only on p's own record and on the same answer for the position it leads
 * to, which lies ahead of p and was therefore already computed. */
static uint32_t first_clean_point(const uint8_t *buf, uint32_t end, uint32_t from)
{
    uint8_t ends_clean[RING_SLOTS / 8];           /* bit per slot: chain from here ends cleanly */
    uint32_t fill = end, best = NO_POINT;
    if (from >= end || end - from < 4)
        return NO_POINT;
    while (fill > from && buf[fill - 1] == 0xFFu)
        fill--;
    uint32_t last = from + ((end - 4 - from) & ~7u);
    for (uint32_t p = last;; p -= 8) {
        uint32_t slot = ((p - from) / 8) % RING_SLOTS;
        const uint8_t *rec = buf + p;
        uint32_t avail = end - p, marker = rd32(rec);
        int clean;
        if (marker == 0xFFFFFFFFu) {
            clean = 1;                            /* the events end here */
        } else {
            uint8_t kind; uint32_t fixed, size;
            clean = 0;
            if (classify(marker, rec, avail, &kind, &fixed, &size) && avail >= fixed
                    && size >= fixed && size <= avail) {
                uint32_t next = p + ALIGN8(size);
                if (next > last)
                    clean = 1;                    /* past the last record position */
                else {
                    uint32_t ns = ((next - from) / 8) % RING_SLOTS;
                    clean = (ends_clean[ns / 8] >> (ns % 8)) & 1;
                }
            }
            if (clean && plausible(rec, avail))
                best = p;
        }
        if (p >= fill)
            best = p;                             /* 0xFF from here to the end */
        if (clean)
            ends_clean[slot / 8] |= (uint8_t)(1u << (slot % 8));
        else
            ends_clean[slot / 8] &= (uint8_t)~(1u << (slot % 8));
        if (p == from)
            break;
    }
    return best;
}

/* After damage at bad_off (the last good record of this stretch started at last_good, or
 * ~0u): where the walk resumes. The earliest clean point after last_good (a resync may
 * step back into the last record: its size was the damage); failing that, the first
 * plausible record header after bad_off; failing that, end.
 *
 * *point keeps the clean point between calls (0: not searched yet, else point + 1 or
 * NO_POINT): the walk only moves forward and, once at a clean point, never needs another
 * resync, so one search serves the whole walk and the total work stays linear. */
static uint32_t resync(const uint8_t *buf, uint32_t end, uint32_t last_good, uint32_t bad_off,
                       uint32_t *point)
{
    uint32_t from = ALIGN8((last_good == ~0u ? bad_off : last_good) + 1);
    if (*point == 0 || (*point != NO_POINT && *point - 1 < from)) {
        uint32_t p = first_clean_point(buf, end, from);
        *point = p == NO_POINT ? NO_POINT : p + 1;
    }
    if (*point != NO_POINT)
        return *point - 1;
    /* no clean point anywhere ahead: every later resync lands here, each scan starting
     * past the previous one */
    for (uint32_t p = ALIGN8(bad_off + 1); p < end && end - p >= 4; p += 8)
        if (plausible(buf + p, end - p))
            return p;
    return end;
}

uint32_t etlrd_walk(const uint8_t *buf, uint32_t end, uint32_t start,
                    etlrd_record *out, uint32_t max_records, etlrd_walk_result *res)
{
    uint32_t off = start, n = 0, last_good = ~0u, damaged_to_end = 0;
    int64_t ts = res->last_timestamp;
    res->count = 0;
    res->more = 0;
    while (off < end && end - off >= 4) {
        const uint8_t *rec = buf + off;
        uint32_t avail = end - off;
        uint32_t marker = rd32(rec);
        uint8_t kind; uint32_t fixed = 0, size = 0;
        uint32_t problem = ETLRD_OK;
        if (marker == 0xFFFFFFFFu)
            break;                               /* 0xFF fill: end of events */
        if (!classify(marker, rec, avail, &kind, &fixed, &size))
            problem = avail < 8 ? ETLRD_ERR_SHORT_HEADER : ETLRD_ERR_BAD_MARKER;
        else if (avail < fixed)
            problem = ETLRD_ERR_SHORT_HEADER;
        else if (size < fixed || size > avail)
            problem = ETLRD_ERR_BAD_SIZE;
        if (problem) {
            note_error(res, problem, off);
            /* resume where records chain again (never before the last resync: last_good
             * is forgotten, and the resume point is past both it and the damage) */
            uint32_t p = resync(buf, end, last_good, off, &res->resync_point);
            if (p > off)
                res->skipped_bytes += p - off;
            last_good = ~0u;
            off = p;
            damaged_to_end = p >= end || end - p < 4;
            continue;
        }
        if (n >= max_records && out) {
            res->more = 1;                       /* caller's array is full: resume later */
            break;
        }
        etlrd_record scratch;
        etlrd_record *r = out ? &out[n] : &scratch;
        int rc = decode(rec, off, marker, kind, fixed, size, r, ts);
        if (rc) {
            note_error(res, (uint32_t)rc, off);  /* an ETLRD_ERR_ code: positive */
            res->skipped_bytes += size;         /* damaged record dropped, walk goes on */
        } else {
            res->by_kind[kind]++;
            ts = r->timestamp;
            if (!res->timed++ || ts > res->max_timestamp)
                res->max_timestamp = ts;
            if (out)
                n++;
        }
        last_good = off;
        off += ALIGN8(size);
        damaged_to_end = 0;
    }
    res->count = n;
    res->end_offset = off < end ? off : end;
    res->ends_damaged = damaged_to_end;
    res->last_timestamp = ts;
    return n;
}
