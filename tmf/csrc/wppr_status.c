/* wppr_status.c: lookups in the status name tables (wppr_status_data.c) and the names tracefmt
 * gives an item's code: HRESULTs of FACILITY_WIN32 name the Win32 error, FACILITY_NT_BIT values
 * the NTSTATUS; NDIS_STATUS values also name NTSTATUS codes. */
#include "_wppr_internal.h"

#define FACILITY_WIN32 7u
#define FACILITY_NT_BIT 0x10000000u

static const wppr_status_row *const TABLES[5] = {
    wppr_status_ntstatus, wppr_status_winerror, wppr_status_hresult, wppr_status_ndis_status,
    wppr_status_ndis_oid,
};

uint32_t wppr_status_count(int kind)
{
    return kind >= 0 && kind < 5 ? wppr_status_sizes[kind] : 0;
}

int wppr_status_entry(int kind, uint32_t index, uint32_t *code, const char **name)
{
    if (index >= wppr_status_count(kind)) return 0;
    *code = TABLES[kind][index].code;
    *name = TABLES[kind][index].name;
    return 1;
}

/* one bucket of the generated hash index (half a row on average) instead of a binary search:
 * random codes, which a trace's error values often are, miss at once */
static const wppr_status_row *find(int kind, uint32_t code)
{
    if (kind < 0 || kind >= 5) return NULL;
    const wppr_status_hash *h = &wppr_status_hashes[kind];
    const wppr_status_row *t = TABLES[kind];
    uint32_t b = (code * wppr_status_hash_multiplier) >> h->shift;
    for (uint32_t i = h->start[b], end = h->start[b + 1]; i < end; i++)
        if (t[h->slots[i]].code == code) return &t[h->slots[i]];
    return NULL;
}

const char *wppr_status_lookup(int kind, uint32_t code)
{
    const wppr_status_row *row = find(kind, code);
    return row ? row->name : NULL;
}

const wppr_status_row *wppr_status_row_of(int kind, uint32_t code)
{
    const wppr_status_row *row;
    switch (kind) {
    case WPPR_ST_HRESULT:
        if ((code & 0x80000000u) && ((code >> 16) & 0x1FFF) == FACILITY_WIN32
                && (row = find(WPPR_ST_WINERROR, code & 0xFFFF)))
            return row;
        if ((code & FACILITY_NT_BIT) && (row = find(WPPR_ST_NTSTATUS, code & ~FACILITY_NT_BIT)))
            return row;
        if ((row = find(WPPR_ST_HRESULT, code))) return row;
        return find(WPPR_ST_WINERROR, code);
    case WPPR_ST_NDIS_STATUS:
        if ((row = find(WPPR_ST_NDIS_STATUS, code))) return row;
        return find(WPPR_ST_NTSTATUS, code);
    default:
        return find(kind, code);
    }
}

const char *wppr_status_name(int kind, uint32_t code)
{
    const wppr_status_row *row = wppr_status_row_of(kind, code);
    return row ? row->name : NULL;
}
