/* wpprender.c: programs (one per TMF message and prefix) and the batch renderer (wpprender.h).
 *
 * A program blob, little-endian, as wpptrace.tmf.native writes it:
 *   u32 magic, u32 flags, u16 nargs, u16 nops, u32 pool length, i32 shared prefix program
 *   (-1: none), u16 nstrings, u16 0,
 *   nargs x {u8 wire, u8 size, u8 flags, u8 0},
 *   nops x {u8 op, u8 conv, u8 flags, u8 bits, u8 item, u8 quoted, u16 arg, i32 width,
 *           i32 precision, u32 p1, u32 p2},
 *   nstrings x {u32 pool offset, u32 length},
 *   the pool (literal UTF-8 text and the name tables of lists, sets and enums).
 * The prefix is either the program's own ops before PREFIX_END, or a shared prefix program
 * (the same for every message of a run, so it stays in cache) whose PSTR ops print this
 * program's strings: the component, the message name and marker values.
 * A row is rendered in two passes: the argument block is split into its arguments (every
 * length checked against the bytes), then the ops print the prefix and the message. A row
 * whose bytes do not fit, or that needs what only Python prints exactly, becomes a hole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_wppr_internal.h"

#define ARG_SIZE 4
#define OP_SIZE 24
#define HEADER_SIZE 24
#define STRING_SIZE 8
#define ROW_HOLE 1

typedef struct {
    uint8_t wire, size, flags;
} pr_arg;

typedef struct {
    uint8_t op, conv, flags, bits, item, quoted;
    uint16_t arg;
    int32_t width, prec;
    uint32_t p1, p2;
} pr_op;

typedef struct program {
    uint32_t flags;
    uint16_t nargs, nops, nprefix;    /* nprefix: index of the PREFIX_END op (nops if none) */
    uint16_t nstr, max_pstr;          /* strings of this program; PSTR indexes it prints up to */
    int32_t shared;                   /* shared prefix program id, or -1 */
    pr_arg *args;
    pr_op *ops;
    uint32_t *str;                    /* nstr x (pool offset, length) */
    uint8_t *pool;
    uint32_t pool_len;
    struct program *prefix;           /* the shared prefix program (resolved when added) */
    uint64_t rows;
} program;

struct wppr_renderer {
    program **progs;
    uint32_t nprogs, cap;
    int noprefix;
    wppr_second_cache time;
    uint32_t *off, *len;              /* per argument of the current row */
    uint64_t *val;
    uint32_t scratch;
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t rd64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint64_t rd_le(const uint8_t *p, unsigned size)
{
    switch (size) {
    case 1: return p[0];
    case 2: return rd16(p);
    case 4: return rd32(p);
    case 8: return rd64(p);
    default: return 0;
    }
}

wppr_renderer *wppr_new(void)
{
    wppr_renderer *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->time.second = INT64_MIN;
    return r;
}

static void free_program(program *p)
{
    free(p);                           /* one block: the struct, its args, ops and pool */
}

void wppr_free(wppr_renderer *r)
{
    if (!r) return;
    for (uint32_t i = 0; i < r->nprogs; i++) free_program(r->progs[i]);
    free(r->progs);
    free(r->off);
    free(r->len);
    free(r->val);
    free(r);
}

void wppr_set_options(wppr_renderer *r, int utc, int noprefix)
{
    if (r->time.utc != (utc != 0)) r->time.second = INT64_MIN;
    r->time.utc = utc != 0;
    r->noprefix = noprefix != 0;
}

uint64_t wppr_program_rows(const wppr_renderer *r, int32_t program)
{
    return program >= 0 && (uint32_t)program < r->nprogs ? r->progs[program]->rows : 0;
}

/* -- loading ----------------------------------------------------------------------------- */

static int pool_span(const program *p, uint64_t off, uint64_t len)
{
    return off <= p->pool_len && len <= p->pool_len - off;
}

/* the name table of a LIST / ENUM / SET / FLAGS op lies inside the pool */
static int table_ok(const program *p, const pr_op *op)
{
    if (!pool_span(p, op->p1, 4)) return 0;
    uint32_t n = rd32(p->pool + op->p1);
    uint64_t row = op->item == WPPR_F_SET ? 8 : 12;
    uint64_t size = 4 + (uint64_t)n * row + (op->item == WPPR_F_FLAGS ? 32 * 8 : 0);
    if (!pool_span(p, op->p1, size)) return 0;
    const uint8_t *t = p->pool + op->p1 + 4;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *e = t + i * row + (row == 12 ? 4 : 0);
        if (!pool_span(p, rd32(e), rd32(e + 4))) return 0;
    }
    if (op->item == WPPR_F_FLAGS)
        for (uint32_t b = 0; b < 32; b++) {
            const uint8_t *e = t + n * row + b * 8;
            if (rd32(e + 4) != UINT32_MAX && !pool_span(p, rd32(e), rd32(e + 4))) return 0;
        }
    return 1;
}

/* an op reads its argument the way the argument is laid out (a blob cannot make the renderer
 * read a string as a GUID, past its bytes) */
static int op_fits_arg(const pr_op *op, const pr_arg *a)
{
    int fixed = a->wire == WPPR_W_FIXED, num = (fixed && a->size <= 8) || a->wire == WPPR_W_PTR;
    switch (op->op) {
    case WPPR_OP_INT:
        return num && op->conv && strchr("diuxXopcCneEfgGsS", op->conv)
               && (op->bits == 0 || op->bits == 8 || op->bits == 16 || op->bits == 32 || op->bits == 64);
    case WPPR_OP_DBL: return fixed && a->size == 8 && op->conv && strchr("eEfgG", op->conv);
    case WPPR_OP_TEXT:
        return a->wire == WPPR_W_CSTR || a->wire == WPPR_W_WSTR || a->wire == WPPR_W_PSTR
               || a->wire == WPPR_W_PWSTR;
    default:
        switch (op->item) {
        case WPPR_F_GUID: return fixed && a->size == 16;
        case WPPR_F_CHAR4: return fixed && a->size == 4;
        case WPPR_F_HEXDUMP: return a->wire == WPPR_W_HEXDUMP;
        case WPPR_F_DOUBLE: return fixed && a->size == 8;
        case WPPR_F_NTSTATUS: case WPPR_F_HRESULT: case WPPR_F_WINERROR: case WPPR_F_NDIS_STATUS:
        case WPPR_F_NDIS_OID: case WPPR_F_LIST: case WPPR_F_SET: case WPPR_F_ENUM: case WPPR_F_FLAGS:
        case WPPR_F_FLAGS_NONE:
            return num;
        default:
            return 0;
        }
    }
}

static program *parse_program(const uint8_t *blob, uint32_t size)
{
    if (size < HEADER_SIZE || rd32(blob) != WPPR_MAGIC) return NULL;
    uint16_t nargs = rd16(blob + 8), nops = rd16(blob + 10), nstr = rd16(blob + 20);
    uint32_t pool_len = rd32(blob + 12);
    uint64_t need = HEADER_SIZE + (uint64_t)nargs * ARG_SIZE + (uint64_t)nops * OP_SIZE
                    + (uint64_t)nstr * STRING_SIZE + pool_len;
    if (need != size) return NULL;
    /* one block, so that rendering a row touches as few cache lines as possible */
    size_t ops_at = (sizeof(program) + 7) & ~(size_t)7;
    size_t str_at = ops_at + (size_t)nops * sizeof(pr_op);
    size_t args_at = str_at + (size_t)nstr * 2 * sizeof(uint32_t);
    size_t pool_at = args_at + (size_t)nargs * sizeof(pr_arg);
    program *p = calloc(1, pool_at + pool_len + 1);
    if (!p) return NULL;
    p->flags = rd32(blob + 4);
    p->nargs = nargs;
    p->nops = nops;
    p->nstr = nstr;
    memcpy(&p->shared, blob + 16, 4);
    p->pool_len = pool_len;
    p->ops = (pr_op *)((uint8_t *)p + ops_at);
    p->str = (uint32_t *)((uint8_t *)p + str_at);
    p->args = (pr_arg *)((uint8_t *)p + args_at);
    p->pool = (uint8_t *)p + pool_at;
    const uint8_t *q = blob + HEADER_SIZE;
    for (uint16_t i = 0; i < p->nargs; i++, q += ARG_SIZE) {
        p->args[i].wire = q[0];
        p->args[i].size = q[1];
        p->args[i].flags = q[2];
        if (q[0] < WPPR_W_FIXED || q[0] > WPPR_W_HEXDUMP) goto bad;
        if (q[0] == WPPR_W_FIXED && q[1] != 1 && q[1] != 2 && q[1] != 4 && q[1] != 8 && q[1] != 16) goto bad;
    }
    const uint8_t *strings = blob + HEADER_SIZE + p->nargs * ARG_SIZE + p->nops * OP_SIZE;
    memcpy(p->pool, strings + (size_t)nstr * STRING_SIZE, p->pool_len);
    for (uint16_t k = 0; k < nstr; k++) {
        p->str[2 * k] = rd32(strings + k * STRING_SIZE);
        p->str[2 * k + 1] = rd32(strings + k * STRING_SIZE + 4);
        if (!pool_span(p, p->str[2 * k], p->str[2 * k + 1])) goto bad;
    }
    p->nprefix = p->nops;
    for (uint16_t i = 0; i < p->nops; i++, q += OP_SIZE) {
        pr_op *op = &p->ops[i];
        op->op = q[0];
        op->conv = q[1];
        op->flags = q[2];
        op->bits = q[3];
        op->item = q[4];
        op->quoted = q[5];
        op->arg = rd16(q + 6);
        memcpy(&op->width, q + 8, 4);
        memcpy(&op->prec, q + 12, 4);
        op->p1 = rd32(q + 16);
        op->p2 = rd32(q + 20);
        switch (op->op) {
        case WPPR_OP_LIT:
            if (!pool_span(p, op->p1, op->p2)) goto bad;
            break;
        case WPPR_OP_PREFIX_END:
            if (p->nprefix != p->nops) goto bad;
            p->nprefix = i;
            break;
        case WPPR_OP_INT: case WPPR_OP_DBL: case WPPR_OP_TEXT: case WPPR_OP_FORM:
            if (op->arg >= p->nargs || !op_fits_arg(op, &p->args[op->arg])) goto bad;
            if (op->op == WPPR_OP_FORM && (op->item == WPPR_F_LIST || op->item == WPPR_F_SET
                    || op->item == WPPR_F_ENUM || op->item == WPPR_F_FLAGS) && !table_ok(p, op))
                goto bad;
            break;
        case WPPR_OP_PVAR:
            if (!op->conv || !strchr("dxXos", op->conv)) goto bad;
            /* fall through */
        case WPPR_OP_PTIME:
            if (i >= p->nprefix && p->nprefix != p->nops) goto bad;
            break;
        case WPPR_OP_PSTR:
            if (op->arg >= p->max_pstr) p->max_pstr = (uint16_t)(op->arg + 1);
            break;
        default:
            goto bad;
        }
        if (op->width > 8192 || op->prec > 8192) goto bad;
    }
    return p;
bad:
    free_program(p);
    return NULL;
}

int32_t wppr_add_program(wppr_renderer *r, const uint8_t *blob, uint32_t len)
{
    program *p = parse_program(blob, len);
    if (!p) return -1;
    if (p->shared >= 0) {                  /* a registered prefix whose strings this one has */
        program *prefix = (uint32_t)p->shared < r->nprogs ? r->progs[p->shared] : NULL;
        if (!prefix || !(prefix->flags & WPPR_P_SHARED) || prefix->max_pstr > p->nstr
                || (p->flags & WPPR_P_SHARED) || p->nprefix != p->nops) {
            free_program(p);
            return -1;
        }
        p->prefix = prefix;
    } else if ((p->flags & WPPR_P_SHARED) ? (p->nargs || p->nprefix != p->nops)
                                           : p->max_pstr > p->nstr) {
        free_program(p);
        return -1;
    }
    if (p->nargs > r->scratch) {
        uint32_t n = p->nargs;
        uint32_t *off = realloc(r->off, n * sizeof *off), *ln;
        if (off) r->off = off;
        ln = realloc(r->len, n * sizeof *ln);
        if (ln) r->len = ln;
        uint64_t *val = realloc(r->val, n * sizeof *val);
        if (val) r->val = val;
        if (!off || !ln || !val) { free_program(p); return -1; }
        r->scratch = n;
    }
    if (r->nprogs == r->cap) {
        uint32_t cap = r->cap ? r->cap * 2 : 256;
        program **progs = realloc(r->progs, cap * sizeof *progs);
        if (!progs) { free_program(p); return -1; }
        r->progs = progs;
        r->cap = cap;
    }
    r->progs[r->nprogs] = p;
    return (int32_t)r->nprogs++;
}

/* -- one row ----------------------------------------------------------------------------- */

static int split_args(wppr_renderer *r, const program *p, const uint8_t *a, uint32_t n, int ps)
{
    uint32_t off = 0;
    for (uint16_t i = 0; i < p->nargs; i++) {
        const pr_arg *arg = &p->args[i];
        uint32_t size;
        switch (arg->wire) {
        case WPPR_W_FIXED: case WPPR_W_PTR:
            size = arg->wire == WPPR_W_PTR ? (uint32_t)ps : arg->size;
            if (size > n - off) return ROW_HOLE;
            r->off[i] = off;
            r->len[i] = size;
            r->val[i] = size <= 8 ? rd_le(a + off, size) : 0;
            off += size;
            break;
        case WPPR_W_CSTR: {
            const uint8_t *z = off < n ? memchr(a + off, 0, n - off) : NULL;
            if (!z) return ROW_HOLE;
            r->off[i] = off;
            r->len[i] = (uint32_t)(z - (a + off));
            off += r->len[i] + 1;
            break;
        }
        case WPPR_W_WSTR: {
            uint32_t k = off;
            while (k + 1 < n && (a[k] | a[k + 1])) k += 2;
            if (k + 1 >= n) return ROW_HOLE;
            r->off[i] = off;
            r->len[i] = k - off;
            off = k + 2;
            break;
        }
        default: {                     /* USHORT byte count + bytes */
            if (n - off < 2) return ROW_HOLE;
            uint32_t count = rd16(a + off);
            if (count > n - off - 2) return ROW_HOLE;
            r->off[i] = off + 2;
            r->len[i] = count;
            off += 2 + count;
            break;
        }
        }
    }
    return 0;
}

static const uint8_t *table_name(const program *p, const pr_op *op, uint32_t value, uint32_t *len)
{
    const uint8_t *t = p->pool + op->p1;
    uint32_t lo = 0, hi = rd32(t);
    t += 4;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint32_t v = rd32(t + mid * 12);
        if (v == value) {
            *len = rd32(t + mid * 12 + 8);
            return p->pool + rd32(t + mid * 12 + 4);
        }
        if (v < value) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

static int put_status(wppr_buf *o, int kind, uint32_t code, const char *zero, const char *unknown)
{
    if (code == 0 && zero) return wppr_put(o, zero, strlen(zero));
    const wppr_status_row *row = wppr_status_row_of(kind, code);
    if (row) {                                         /* 0x%08x(NAME), Win32: %u(NAME) */
        int rc = kind == WPPR_ST_WINERROR ? wppr_put_u64(o, code)
                                          : wppr_put(o, "0x", 2) || wppr_put_hex(o, code, 8, 0);
        if (rc || wppr_putc(o, '(') || wppr_put(o, row->name, row->len)) return -1;
        return wppr_putc(o, ')');
    }
    if (!unknown) return wppr_put(o, "0x", 2) || wppr_put_hex(o, code, 8, 0) ? -1 : 0;
    char text[32];                                     /* NAME=%8X */
    int n = snprintf(text, sizeof text, "%s=%8X", unknown, code);
    return wppr_put(o, text, (size_t)n);
}

static int put_hex_bytes(wppr_buf *o, const uint8_t *a, int n)
{
    static const char hex[] = "0123456789abcdef";
    if (wppr_reserve(o, (size_t)n * 2)) return -1;
    for (int i = 0; i < n; i++) {
        o->data[o->len++] = (uint8_t)hex[a[i] >> 4];
        o->data[o->len++] = (uint8_t)hex[a[i] & 15];
    }
    return 0;
}

static int put_form(wppr_buf *o, const program *p, const pr_op *op, const uint8_t *a, uint32_t len,
                    uint64_t value)
{
    char text[64];
    uint32_t code = (uint32_t)value, nlen;
    const uint8_t *name;
    switch (op->item) {
    case WPPR_F_NTSTATUS: return put_status(o, WPPR_ST_NTSTATUS, code, "STATUS_SUCCESS", "NTSTATUS");
    case WPPR_F_HRESULT: return put_status(o, WPPR_ST_HRESULT, code, "S_OK", "HRESULT");
    case WPPR_F_WINERROR: return put_status(o, WPPR_ST_WINERROR, code, NULL, "WINERROR");
    case WPPR_F_NDIS_STATUS:
        return put_status(o, WPPR_ST_NDIS_STATUS, code, "NDIS_STATUS_SUCCESS", "NDIS_STATUS");
    case WPPR_F_NDIS_OID: return put_status(o, WPPR_ST_NDIS_OID, code, NULL, NULL);
    case WPPR_F_GUID:                   /* lower case, no braces; Data1..3 little-endian */
        if (wppr_put_hex(o, rd32(a), 8, 0) || wppr_putc(o, '-') || wppr_put_hex(o, rd16(a + 4), 4, 0)
                || wppr_putc(o, '-') || wppr_put_hex(o, rd16(a + 6), 4, 0) || wppr_putc(o, '-')
                || put_hex_bytes(o, a + 8, 2) || wppr_putc(o, '-'))
            return -1;
        return put_hex_bytes(o, a + 10, 6);
    case WPPR_F_CHAR4: return wppr_put_cp1252(o, a, 4);
    case WPPR_F_HEXDUMP:
        if (wppr_reserve(o, (size_t)len * 3)) return -1;
        for (uint32_t i = 0; i < len; i++) {
            static const char hex[] = "0123456789ABCDEF";
            if (i) o->data[o->len++] = ' ';
            o->data[o->len++] = (uint8_t)hex[a[i] >> 4];
            o->data[o->len++] = (uint8_t)hex[a[i] & 15];
        }
        return 0;
    case WPPR_F_LIST: {
        if (wppr_put(o, "0x", 2) || wppr_put_hex(o, code, 8, 0)) return -1;
        if ((name = table_name(p, op, code, &nlen)))
            if (wppr_putc(o, '(') || wppr_put(o, name, nlen) || wppr_putc(o, ')')) return -1;
        return 0;
    }
    case WPPR_F_ENUM:
        if ((name = table_name(p, op, code, &nlen))) return wppr_put(o, name, nlen);
        return wppr_put_u64(o, value);
    case WPPR_F_SET: {
        const uint8_t *t = p->pool + op->p1;
        uint32_t count = rd32(t);
        if (wppr_putc(o, '[')) return -1;
        int first = 1;
        for (unsigned bit = 0; bit < 64 && value >> bit; bit++) {
            if (!((value >> bit) & 1)) continue;
            if (!first && wppr_putc(o, ',')) return -1;
            first = 0;
            if (bit < count) {
                if (wppr_put(o, p->pool + rd32(t + 4 + bit * 8), rd32(t + 8 + bit * 8))) return -1;
            } else if (wppr_put_u64(o, bit)) return -1;
        }
        return wppr_putc(o, ']');
    }
    case WPPR_F_FLAGS: {
        if ((name = table_name(p, op, code, &nlen))) {
            if (wppr_put(o, name, nlen)) return -1;
        } else {
            const uint8_t *bits = p->pool + op->p1 + 4 + rd32(p->pool + op->p1) * 12;
            int first = 1;
            for (unsigned bit = 0; bit < 32 && code >> bit; bit++) {
                if (!((code >> bit) & 1)) continue;
                if (!first && wppr_put(o, " | ", 3)) return -1;
                first = 0;
                uint32_t bl = rd32(bits + bit * 8 + 4);
                if (bl != UINT32_MAX) {
                    if (wppr_put(o, p->pool + rd32(bits + bit * 8), bl)) return -1;
                } else if (wppr_put_u64(o, bit)) return -1;
            }
        }
        int n = snprintf(text, sizeof text, "(0x%x)", code);
        return wppr_put(o, text, (size_t)n);
    }
    case WPPR_F_FLAGS_NONE: {
        int n = snprintf(text, sizeof text, "0x%x", code);
        return wppr_put(o, text, (size_t)n);
    }
    case WPPR_F_DOUBLE: {
        double d;
        memcpy(&d, a, 8);
        return wppr_put_double(o, d, 0, 0, -1, -1);
    }
    default:
        return ROW_HOLE;
    }
}

static int put_string(wppr_buf *o, const pr_arg *arg, const uint8_t *a, uint32_t len)
{
    size_t start = o->len;
    int rc;
    if (arg->wire == WPPR_W_WSTR || arg->wire == WPPR_W_PWSTR)
        rc = wppr_put_utf16(o, a, len & ~1u);     /* an odd count drops its last byte */
    else
        rc = wppr_put_ansi(o, a, len);
    if (!rc && (arg->flags & WPPR_A_REDUCE)) wppr_reduce(o, start);
    return rc;
}

static int run_ops(wppr_renderer *r, const program *p, uint16_t from, uint16_t to, const wppr_row *row,
                   int ps, wppr_buf *o, const program *msg)
{
    for (uint16_t i = from; i < to; i++) {
        const pr_op *op = &p->ops[i];
        size_t start = o->len;
        int rc = 0;
        switch (op->op) {
        case WPPR_OP_LIT:
            rc = wppr_put(o, p->pool + op->p1, op->p2);
            break;
        case WPPR_OP_INT:
            rc = wppr_put_int(o, r->val[op->arg], op->conv, op->flags, op->width, op->prec,
                              op->bits ? op->bits : ps * 8, ps);
            break;
        case WPPR_OP_DBL: {
            double d;
            memcpy(&d, row->args + r->off[op->arg], 8);
            rc = wppr_put_double(o, d, op->conv, op->flags, op->width, op->prec);
            break;
        }
        case WPPR_OP_TEXT: case WPPR_OP_FORM:
            if (op->quoted && wppr_putc(o, '"')) return -1;
            start = o->len;
            rc = op->op == WPPR_OP_TEXT
                 ? put_string(o, &p->args[op->arg], row->args + r->off[op->arg], r->len[op->arg])
                 : put_form(o, p, op, row->args + r->off[op->arg], r->len[op->arg], r->val[op->arg]);
            if (!rc) rc = wppr_finish_str(o, start, op->flags, op->width, op->prec);
            if (!rc && op->quoted) rc = wppr_putc(o, '"');
            break;
        case WPPR_OP_PVAR: {
            uint64_t v = 0;
            switch (op->arg) {
            case 3: v = row->thread_id; break;
            case 7: v = row->sequence; break;
            case 8: v = row->process_id; break;
            case 9: v = row->cpu; break;
            default: v = 0; break;        /* %5 / %6: kernel and user time are not recorded */
            }
            rc = wppr_put_pyint(o, v, op->conv, op->flags, op->width, op->prec);
            break;
        }
        case WPPR_OP_PSTR:                 /* msg->nstr > op->arg: checked when msg was added */
            rc = wppr_put(o, msg->pool + msg->str[2 * op->arg], msg->str[2 * op->arg + 1]);
            break;
        case WPPR_OP_PTIME: {
            char text[64];
            if (row->milli == WPPR_TIME_OUT_OF_RANGE) return ROW_HOLE;
            if (row->milli != WPPR_NO_TIME)
                rc = wppr_put(o, text, (size_t)wppr_time_cached(&r->time, row->milli, text));
            if (!rc) rc = wppr_finish_str(o, start, op->flags & WPPR_MINUS, op->width, op->prec);
            break;
        }
        default:
            break;
        }
        if (rc) return rc;
    }
    return 0;
}

static int render_row(wppr_renderer *r, program *p, const wppr_row *row, wppr_buf *o)
{
    int ps = (int)row->pointer_size;
    if ((ps != 4 && ps != 8) || (p->flags & WPPR_P_SHARED)) return ROW_HOLE;
    int rc = split_args(r, p, row->args, row->size, ps);
    if (rc) return rc;
    uint16_t body = p->nprefix < p->nops ? p->nprefix + 1 : 0;
    if ((p->flags & WPPR_P_PREFIX) && !r->noprefix) {
        if (p->prefix) {
            if ((rc = run_ops(r, p->prefix, 0, p->prefix->nops, row, ps, o, p))) return rc;
        } else if (body && (rc = run_ops(r, p, 0, p->nprefix, row, ps, o, p))) {
            return rc;
        }
    }
    if ((rc = run_ops(r, p, body, p->nops, row, ps, o, p))) return rc;
    return wppr_putc(o, '\n');
}

int wppr_render_row(wppr_renderer *r, const wppr_row *row, wppr_buf *out)
{
    int32_t id = row->program;
    if (id < 0 || (uint32_t)id >= r->nprogs) return ROW_HOLE;
    size_t mark = out->len;
    int rc = render_row(r, r->progs[id], row, out);
    if (rc) {
        out->len = mark;
        return rc;
    }
    r->progs[id]->rows++;
    return 0;
}

int wppr_render(wppr_renderer *r, const wppr_row *rows, uint32_t n, wppr_buf *out,
                uint32_t *holes, uint64_t *hole_at, uint32_t *nholes)
{
    uint32_t h = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (rows[i].program == WPPR_SKIP) continue;
        int rc = wppr_render_row(r, &rows[i], out);
        if (rc < 0) {
            *nholes = h;
            return -1;
        }
        if (rc) {
            holes[h] = i;
            hole_at[h++] = out->len;
        }
    }
    *nholes = h;
    return 0;
}
