/* program_records.c: message records installed in the C renderer (program_records.h). */
#include <string.h>
#include "program_records.h"

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* one record: its program id, or -1; its texts appended at *out */
static int32_t install_one(wppr_renderer *r, const uint8_t *rec, uint32_t len,
                           const uint8_t *mode, int32_t prefix, uint8_t *flags, uint8_t **out)
{
    if (len < PRECORD_HEAD || memcmp(rec, mode, 4) != 0)
        return -1;
    uint32_t bits = rd32(rec + 4);
    int32_t made_with = (int32_t)rd32(rec + 8);
    uint64_t lens[5], total = PRECORD_HEAD;
    for (int k = 0; k < 5; k++) {
        lens[k] = rd32(rec + 12 + 4 * k);
        total += lens[k];
    }
    if (total != len || (made_with >= 0 && made_with != prefix))
        return -1;
    const uint8_t *component = rec + PRECORD_HEAD, *name = component + lens[0];
    const uint8_t *unknown = name + lens[1], *blob = unknown + lens[2], *decoration = blob + lens[3];
    uint64_t unknown_len = (bits & PRECORD_UNKNOWN) ? lens[2] : 0;
    /* the texts go back NUL-separated: one with a NUL in it is compiled instead */
    if (memchr(component, 0, lens[0]) || memchr(name, 0, lens[1]) || memchr(unknown, 0, unknown_len))
        return -1;
    int32_t program = wppr_add_program(r, blob, (uint32_t)lens[3]);
    if (program < 0)
        return -1;
    if ((bits & PRECORD_DECORATED)
            && wppr_set_decoration(r, program, decoration, (uint32_t)lens[4]) < 0)
        return -1;                    /* its id stays taken, unused: as a refused decoration */
    *flags = (uint8_t)(bits & (PRECORD_HAS_PREFIX | PRECORD_UNKNOWN | PRECORD_DECORATED));
    uint8_t *at = *out;
    memcpy(at, component, lens[0]);
    at += lens[0];
    *at++ = 0;
    memcpy(at, name, lens[1]);
    at += lens[1];
    *at++ = 0;
    memcpy(at, unknown, unknown_len);
    at += unknown_len;
    *at++ = 0;
    *out = at;
    return program;
}

uint64_t precord_install(wppr_renderer *r, const uint8_t *base, uint64_t size,
                         const uint64_t *offsets, const uint32_t *lengths, uint32_t n, const uint8_t *mode, int32_t prefix,
                         int32_t *programs, uint8_t *flags, uint8_t *strings)
{
    uint8_t *out = strings;
    uint64_t at = 0;                  /* records end to end: where the next one starts */
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *record = base + (offsets ? offsets[i] : at);
        uint32_t length = lengths[i];
        at += length;
        flags[i] = 0;
        programs[i] = length && (offsets || at <= size)
                      ? install_one(r, record, length, mode, prefix, &flags[i], &out) : -1;
    }
    return (uint64_t)(out - strings);
}
