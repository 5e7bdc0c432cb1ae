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
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "_wppr_internal.h"

#define ARG_SIZE 4
#define OP_SIZE 24
#define HEADER_SIZE 24
#define STRING_SIZE 8
#define ROW_HOLE 1
#define PVAR_PADDED 1
#define PUTS(o, lit) wppr_put(o, lit, sizeof(lit) - 1)

typedef struct {
    uint8_t wire, size, flags;
} pr_arg;

typedef struct {
    uint8_t op, conv, flags, bits, item, quoted;   /* item: PVAR_PADDED for a prefix variable
                                                      under %d / %x / %X, padding to <= 20 */
    uint16_t arg;
    int32_t width, prec;
    uint32_t p1, p2;
    uint32_t tail, tail_len;          /* the literal text printed after the op (pool span) */
} pr_op;

typedef struct {
    uint8_t kind, bits4, bits8;
    uint32_t off, len;                /* JSON: the text before the value, in the decoration */
    int32_t name, type;               /* columns: the argument's name and type ids */
} deco_arg;

/* how a program's rows look as CSV rows or JSON objects (wppr_set_decoration) */
typedef struct {
    uint32_t head_len;                /* CSV: GuidName,MessageName; JSON: "guid" .. "flags" */
    uint16_t nargs;
    uint8_t plain_literals;           /* JSON: the message's literal text needs no escape */
    deco_arg *args;
    uint8_t *text;                    /* the head, then the argument texts */
} deco;

typedef struct program {
    uint32_t flags;
    uint16_t nargs, nops, nprefix;    /* nprefix: index of the PREFIX_END op (nops if none) */
    uint16_t nstr;                    /* strings of this program */
    uint32_t max_pstr;                /* PSTR indexes it prints up to (32 bits: string 65535 + 1) */
    int32_t shared;                   /* shared prefix program id, or -1 */
    pr_arg *args;
    pr_op *ops;
    uint32_t *str;                    /* nstr x (pool offset, length) */
    uint8_t *pool;
    uint32_t pool_len;
    struct program *prefix;           /* the shared prefix program (resolved when added) */
    deco *deco;                       /* CSV / JSON decoration, or NULL */
    uint64_t rows;
} program;

struct wppr_renderer {
    program **progs;
    uint32_t nprogs, cap;
    int noprefix;
    int output, quote_all;            /* WPPR_OUT_*, every CSV field quoted */
    int no_text;                      /* text lines decided (holes, rows counted), not printed */
    int64_t iso_second;               /* the FILETIME second of iso and filetime */
    uint8_t iso[48];                  /* '{"timestamp":"YYYY-MM-DDTHH:MM:SS.' */
    uint8_t filetime[48];             /* 'Z","filetime":' and the second's digits */
    int iso_len, filetime_len;
    wppr_second_cache time;
    uint32_t *off, *len;              /* per argument of the current row */
    uint64_t *val;
    size_t *json_at, *json_len;       /* JSON: where a string argument's escaped text already is in
                                         the output (json_len SIZE_MAX: nowhere) */
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
    r->iso_second = INT64_MIN;
    return r;
}

static void free_program(program *p)
{
    if (p) free(p->deco);              /* one block: the decoration, its args and text */
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
    free(r->json_at);
    free(r->json_len);
    free(r);
}

void wppr_set_options(wppr_renderer *r, int utc, int noprefix)
{
    if (r->time.utc != (utc != 0)) r->time.second = INT64_MIN;
    r->time.utc = utc != 0;
    r->noprefix = noprefix != 0;
}

void wppr_set_output(wppr_renderer *r, int output, int quote_all)
{
    r->output = output == WPPR_OUT_CSV || output == WPPR_OUT_JSON || output == WPPR_OUT_COLUMNS
                ? output : WPPR_OUT_TEXT;
    r->quote_all = quote_all != 0;
}

int wppr_output(const wppr_renderer *r) { return r->output; }

void wppr_set_text(wppr_renderer *r, int wanted) { r->no_text = !wanted; }

uint32_t wppr_program_rows_all(const wppr_renderer *r, uint64_t *out, uint32_t cap)
{
    for (uint32_t i = 0; i < cap && i < r->nprogs; i++) out[i] = r->progs[i]->rows;
    return r->nprogs;
}

uint64_t wppr_program_rows_of(const wppr_renderer *r, const int32_t *progs, uint32_t n)
{
    uint64_t rows = 0;
    for (uint32_t i = 0; i < n; i++)
        if (progs[i] >= 0 && (uint32_t)progs[i] < r->nprogs) rows += r->progs[progs[i]]->rows;
    return rows;
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

/* Each literal that follows an op printing a value becomes that op's tail: a row runs about
 * half as many ops (the prefix "[%9]%8.%3::%4 [%1]" is six instead of eleven). The
 * PREFIX_END op keeps its place: the literal after it starts the message. */
static void fold_literals(program *p)
{
    uint16_t k = 0, prefix_end = UINT16_MAX;
    for (uint16_t i = 0; i < p->nops; i++) {
        const pr_op *op = &p->ops[i];
        if (op->op == WPPR_OP_LIT && !op->p2)   /* prints nothing: no op to run per row */
            continue;
        if (op->op == WPPR_OP_LIT && k > 0) {
            pr_op *prev = &p->ops[k - 1];
            if (prev->op != WPPR_OP_LIT && prev->op != WPPR_OP_PREFIX_END && !prev->tail_len) {
                prev->tail = op->p1;
                prev->tail_len = op->p2;
                continue;
            }
        }
        if (op->op == WPPR_OP_PREFIX_END) prefix_end = k;
        p->ops[k++] = *op;
    }
    p->nops = k;
    p->nprefix = prefix_end == UINT16_MAX ? k : prefix_end;
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
            op->item = strchr("dxX", op->conv) && !(op->flags & ~WPPR_ZERO) && op->prec < 0
                       && op->width <= 20 ? PVAR_PADDED : 0;
            __attribute__((fallthrough));     /* not a comment: clang reads only the attribute */
        case WPPR_OP_PTIME:
            if (i >= p->nprefix && p->nprefix != p->nops) goto bad;
            break;
        case WPPR_OP_PSTR:
            if (op->arg >= p->max_pstr) p->max_pstr = (uint32_t)op->arg + 1;
            break;
        default:
            goto bad;
        }
        if (op->width > 8192 || op->prec > 8192) goto bad;
    }
    fold_literals(p);
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
        size_t *json_at = realloc(r->json_at, n * sizeof *json_at), *json_len;
        if (json_at) r->json_at = json_at;
        json_len = realloc(r->json_len, n * sizeof *json_len);
        if (json_len) r->json_len = json_len;
        if (!off || !ln || !val || !json_at || !json_len) { free_program(p); return -1; }
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

/* a JSON value kind fits the argument it prints */
static int deco_fits_arg(const deco_arg *d, const pr_arg *a)
{
    int num = (a->wire == WPPR_W_FIXED && a->size <= 8) || a->wire == WPPR_W_PTR;
    switch (d->kind) {
    case WPPR_J_UNSIGNED: return num;
    case WPPR_J_SIGNED:
        return num && (d->bits4 == 8 || d->bits4 == 16 || d->bits4 == 32 || d->bits4 == 64)
               && (d->bits8 == 8 || d->bits8 == 16 || d->bits8 == 32 || d->bits8 == 64);
    case WPPR_J_STRING:
        return a->wire == WPPR_W_CSTR || a->wire == WPPR_W_WSTR || a->wire == WPPR_W_PSTR
               || a->wire == WPPR_W_PWSTR;
    case WPPR_J_GUID: return a->wire == WPPR_W_FIXED && a->size == 16;
    case WPPR_J_DOUBLE: return a->wire == WPPR_W_FIXED && a->size == 8;
    default: return 0;
    }
}

/* an argument's JSON kind and signed widths from its decoration entry (kind, bits at pointer
 * size 4, at 8); 0 when the kind cannot print the argument */
static int deco_arg_kind(deco_arg *d, const uint8_t *entry, const pr_arg *a)
{
    d->kind = entry[0];
    d->bits4 = entry[1];
    d->bits8 = entry[2];
    return deco_fits_arg(d, a);
}

static int literals_need_no_escape(const program *p);

int wppr_set_decoration(wppr_renderer *r, int32_t id, const uint8_t *blob, uint32_t len)
{
    if (id < 0 || (uint32_t)id >= r->nprogs || r->output == WPPR_OUT_TEXT) return -1;
    program *p = r->progs[id];
    uint32_t head = len, nargs = 0, at = 0;
    if (r->output == WPPR_OUT_COLUMNS) {
        if (len < 2 || (nargs = rd16(blob)) != p->nargs || len != 2 + 12 * nargs) return -1;
        deco *d = calloc(1, sizeof *d + nargs * sizeof(deco_arg) + 1);
        if (!d) return -1;
        d->args = (deco_arg *)(d + 1);
        d->text = (uint8_t *)(d->args + nargs);
        d->nargs = (uint16_t)nargs;
        for (uint32_t i = 0; i < nargs; i++) {
            const uint8_t *q = blob + 2 + 12 * i;
            deco_arg *a = &d->args[i];
            memcpy(&a->name, q + 4, 4);
            memcpy(&a->type, q + 8, 4);
            if (!deco_arg_kind(a, q, &p->args[i])) {
                free(d);
                return -1;
            }
        }
        free(p->deco);
        p->deco = d;
        return 0;
    }
    if (r->output == WPPR_OUT_JSON) {             /* check the layout before allocating */
        if (len < 6 || (head = rd32(blob)) > len - 6) return -1;
        nargs = rd16(blob + 4 + head);
        if (nargs != p->nargs) return -1;
        at = 6 + head;
        for (uint32_t i = 0; i < nargs; i++) {
            if (len - at < 8 || rd32(blob + at + 4) > len - at - 8) return -1;
            at += 8 + rd32(blob + at + 4);
        }
        if (at != len) return -1;
    }
    deco *d = calloc(1, sizeof *d + nargs * sizeof(deco_arg) + len + 1);
    if (!d) return -1;
    d->args = (deco_arg *)(d + 1);
    d->text = (uint8_t *)(d->args + nargs);
    d->head_len = head;
    d->nargs = (uint16_t)nargs;
    if (r->output == WPPR_OUT_CSV) {
        memcpy(d->text, blob, len);
    } else {
        memcpy(d->text, blob + 4, head);
        uint32_t text = head;
        at = 6 + head;
        for (uint32_t i = 0; i < nargs; i++) {
            deco_arg *a = &d->args[i];
            a->len = rd32(blob + at + 4);
            a->off = text;
            memcpy(d->text + text, blob + at + 8, a->len);
            text += a->len;
            if (!deco_arg_kind(a, blob + at, &p->args[i])) {
                free(d);
                return -1;
            }
            at += 8 + a->len;
        }
        d->plain_literals = (uint8_t)literals_need_no_escape(p);
    }
    free(p->deco);
    p->deco = d;
    return 0;
}

/* -- one row ----------------------------------------------------------------------------- */

static int split_args(wppr_renderer *r, const program *p, const uint8_t *a, uint32_t n, int ps)
{
    uint32_t off = 0;
    for (uint16_t i = 0; i < p->nargs; i++) {
        const pr_arg *arg = &p->args[i];
        if (wppr_arg_span(arg->wire, arg->size, ps, a, n, &off, &r->off[i], &r->len[i]))
            return ROW_HOLE;
        if (arg->wire == WPPR_W_FIXED || arg->wire == WPPR_W_PTR)
            r->val[i] = r->len[i] <= 8 ? rd_le(a + r->off[i], r->len[i]) : 0;
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

static int put_status_code(wppr_buf *o, int kind, uint32_t code, const char *unknown)
{
    const wppr_status_row *row = wppr_status_row_of(kind, code);
    if (row) {                                         /* 0x%08x(NAME), Win32: %u(NAME) */
        int rc = kind == WPPR_ST_WINERROR ? wppr_put_u64(o, code)
                                          : PUTS(o, "0x") || wppr_put_hex(o, code, 8, 0);
        if (rc || wppr_putc(o, '(') || wppr_put(o, row->name, row->len)) return -1;
        return wppr_putc(o, ')');
    }
    if (!unknown) return PUTS(o, "0x") || wppr_put_hex(o, code, 8, 0) ? -1 : 0;
    /* NAME=%8X: upper-case hex, space-padded to 8 */
    if (wppr_put(o, unknown, strlen(unknown)) || wppr_putc(o, '=')) return -1;
    int digits = 1;
    while (digits < 8 && code >> (4 * digits)) digits++;
    if (wppr_reserve(o, 8)) return -1;
    memset(o->data + o->len, ' ', (size_t)(8 - digits));
    o->len += (size_t)(8 - digits);
    return wppr_put_hex(o, code, digits, 1);
}

/* success codes, the most common ones, print their name without a table look-up */
static inline int put_status(wppr_buf *o, int kind, uint32_t code, const char *zero, const char *unknown)
{
    if (code == 0 && zero) return wppr_put(o, zero, strlen(zero));
    return put_status_code(o, kind, code, unknown);
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

static int put_guid(wppr_buf *o, const uint8_t *a)
{                                       /* lower case, no braces; Data1..3 little-endian */
    if (wppr_put_hex(o, rd32(a), 8, 0) || wppr_putc(o, '-') || wppr_put_hex(o, rd16(a + 4), 4, 0)
            || wppr_putc(o, '-') || wppr_put_hex(o, rd16(a + 6), 4, 0) || wppr_putc(o, '-')
            || put_hex_bytes(o, a + 8, 2) || wppr_putc(o, '-'))
        return -1;
    return put_hex_bytes(o, a + 10, 6);
}

/* inlined into both bodies of the ops loop, as it was into the one */
static inline __attribute__((always_inline)) int
put_form(wppr_buf *o, const program *p, const pr_op *op, const uint8_t *a, uint32_t len,
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
    case WPPR_F_GUID: return put_guid(o, a);
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
        if (PUTS(o, "0x") || wppr_put_hex(o, code, 8, 0)) return -1;
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
                if (!first && PUTS(o, " | ")) return -1;
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
    return wppr_put_string(o, arg->wire, arg->flags & WPPR_A_REDUCE, a, len);
}

/* bytes a JSON escape adds to a character (0: written as it is) */
static const uint8_t JSON_EXTRA[256] = {
    5, 5, 5, 5, 5, 5, 5, 5, 1, 1, 1, 5, 1, 1, 5, 5,      /* \b \t \n \f \r: 1 */
    5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,      /* '"' */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,      /* '\\' */
};

/* b->data[start:] escaped as the inside of a JSON string, in place: what Python's json module
 * escapes with ensure_ascii off (quote, backslash, control characters; \uXXXX lower case) */
/* how many bytes of p[0:n] surely need no escape: whole 8-byte words without a control
 * character, quote or backslash (each test is exact: "a byte below k" / "a byte equal to 0") */
static size_t json_clean_words(const uint8_t *p, size_t n)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, q, s;
        memcpy(&x, p + i, 8);
        q = x ^ (ones * '"');
        s = x ^ (ones * '\\');
        if (((x - ones * 0x20) & ~x & highs) | ((q - ones) & ~q & highs) | ((s - ones) & ~s & highs))
            break;
    }
    return i;
}

static int json_escape(wppr_buf *b, size_t start)
{
    static const char hex[] = "0123456789abcdef";
    size_t extra = 0;
    for (size_t i = start + json_clean_words(b->data + start, b->len - start); i < b->len; i++)
        extra += JSON_EXTRA[b->data[i]];
    if (!extra) return 0;
    if (wppr_reserve(b, extra)) return -1;
    size_t j = b->len + extra;
    for (size_t i = b->len; i-- > start;) {
        uint8_t c = b->data[i];
        char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r'
                 : c == '\t' ? 't' : c == '\b' ? 'b' : c == '\f' ? 'f' : 0;
        if (e) {
            b->data[--j] = (uint8_t)e;
            b->data[--j] = '\\';
        } else if (c < 0x20) {
            b->data[--j] = (uint8_t)hex[c & 15];
            b->data[--j] = (uint8_t)hex[c >> 4];
            b->data[--j] = '0';
            b->data[--j] = '0';
            b->data[--j] = 'u';
            b->data[--j] = '\\';
        } else {
            b->data[--j] = c;
        }
    }
    b->len += extra;
    return 0;
}

/* no byte of the literal text of p's message (its ops after the prefix and their tails) is
 * one JSON escapes */
static int literals_need_no_escape(const program *p)
{
    for (uint16_t i = p->nprefix < p->nops ? p->nprefix + 1 : 0; i < p->nops; i++) {
        const pr_op *op = &p->ops[i];
        const uint8_t *lit = p->pool + op->tail;
        uint32_t n = op->tail_len;
        for (uint32_t k = 0; k < n; k++)
            if (JSON_EXTRA[lit[k]]) return 0;
        if (op->op == WPPR_OP_LIT)
            for (uint32_t k = 0; k < op->p2; k++)
                if (JSON_EXTRA[p->pool[op->p1 + k]]) return 0;
    }
    return 1;
}

/* the ops whose text may hold what JSON escapes: strings, markers, %c / %C, quoted values and
 * the items printing characters or names from the TMF (status names, GUIDs, hex digits and
 * numbers never do) */
static int op_may_need_escape(const pr_op *op)
{
    switch (op->op) {
    case WPPR_OP_TEXT: case WPPR_OP_PSTR:
        return 1;
    case WPPR_OP_INT:
        return op->conv == 'c' || op->conv == 'C';
    case WPPR_OP_FORM:
        return op->quoted || op->item == WPPR_F_CHAR4 || op->item == WPPR_F_LIST
               || op->item == WPPR_F_SET || op->item == WPPR_F_ENUM || op->item == WPPR_F_FLAGS;
    default:
        return 0;
    }
}

/* The ops [from, to) of p. json: the text goes inside a JSON string and p's literals need no
 * escape (deco.plain_literals): each value is escaped as it is printed, so the literals are
 * never scanned. text 0: the ops decide the row (a hole or not) and print nothing, o untouched;
 * only PTIME decides anything (every other op's conversion and item were checked against its
 * argument when the program was added, and split_args checked the bytes), so no text is
 * needed to decide. Inlined into its callers, each with json and text constants. */
static inline __attribute__((always_inline)) int
run_ops_as(wppr_renderer *r, const program *p, uint16_t from, uint16_t to, const wppr_row *row,
           int ps, wppr_buf *o, const program *msg, int json, int text)
{
    for (uint16_t i = from; i < to; i++) {
        const pr_op *op = &p->ops[i];
        size_t start = text ? o->len : 0, value = start;
        int rc = 0;
        if (!text && op->op != WPPR_OP_PTIME) continue;
        switch (op->op) {
        case WPPR_OP_LIT:
            if (wppr_reserve(o, op->p2)) return -1;
            wppr_copy_text(o->data + o->len, p->pool + op->p1, op->p2);
            o->len += op->p2;
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
            if (!rc && (op->width > 0 || op->prec >= 0))
                rc = wppr_finish_str(o, start, op->flags, op->width, op->prec);
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
            rc = op->item == PVAR_PADDED ? wppr_put_padded(o, v, op->conv, op->flags & WPPR_ZERO, op->width)
                 : wppr_put_pyint(o, v, op->conv, op->flags, op->width, op->prec);
            break;
        }
        case WPPR_OP_PSTR:                 /* msg->nstr > op->arg: checked when msg was added */
            rc = wppr_put(o, msg->pool + msg->str[2 * op->arg], msg->str[2 * op->arg + 1]);
            break;
        case WPPR_OP_PTIME: {
            if (row->milli == WPPR_TIME_OUT_OF_RANGE) return ROW_HOLE;
            if (!text) continue;
            if (row->milli != WPPR_NO_TIME) {       /* written in place: 64 bytes at most */
                if (wppr_reserve(o, 64)) return -1;
                o->len += (size_t)wppr_time_cached(&r->time, row->milli, (char *)o->data + o->len);
            }
            if (op->width > 0 || op->prec >= 0)
                rc = wppr_finish_str(o, start, op->flags & WPPR_MINUS, op->width, op->prec);
            break;
        }
        default:
            break;
        }
        if (rc) return rc;
        if (json && op_may_need_escape(op)) {
            if (json_escape(o, value)) return -1;
            if (op->op == WPPR_OP_TEXT && !op->quoted && op->width <= 0 && op->prec < 0) {
                r->json_at[op->arg] = value;      /* the argument's JSON value, as it is */
                r->json_len[op->arg] = o->len - value;
            }
        }
        if (op->tail_len) {
            if (wppr_reserve(o, op->tail_len)) return -1;
            wppr_copy_text(o->data + o->len, p->pool + op->tail, op->tail_len);
            o->len += op->tail_len;
        }
    }
    return 0;
}

static int run_ops(wppr_renderer *r, const program *p, uint16_t from, uint16_t to, const wppr_row *row,
                   int ps, wppr_buf *o, const program *msg)
{
    return run_ops_as(r, p, from, to, row, ps, o, msg, 0, 1);
}

/* run_ops deciding the row without printing it (wppr_set_text) */
static int check_ops(wppr_renderer *r, const program *p, uint16_t from, uint16_t to,
                     const wppr_row *row, int ps, wppr_buf *o, const program *msg)
{
    return run_ops_as(r, p, from, to, row, ps, o, msg, 0, 0);
}

static int run_json_ops(wppr_renderer *r, const program *p, uint16_t from, uint16_t to,
                        const wppr_row *row, int ps, wppr_buf *o)
{
    return run_ops_as(r, p, from, to, row, ps, o, p, 1, 1);
}

/* the line of a row (prefix and message) without its line end; text 0: only decided
 * (check_ops), nothing printed */
static inline __attribute__((always_inline)) int
render_line_as(wppr_renderer *r, program *p, const wppr_row *row, int ps, wppr_buf *o, int text)
{
    int rc;
    uint16_t body = p->nprefix < p->nops ? p->nprefix + 1 : 0;
    int (*ops)(wppr_renderer *, const program *, uint16_t, uint16_t, const wppr_row *, int,
               wppr_buf *, const program *) = text ? run_ops : check_ops;
    /* a column's text is the message alone, whatever noprefix says */
    if ((p->flags & WPPR_P_PREFIX) && !r->noprefix && r->output != WPPR_OUT_COLUMNS) {
        if (p->prefix) {
            if ((rc = ops(r, p->prefix, 0, p->prefix->nops, row, ps, o, p))) return rc;
        } else if (body && (rc = ops(r, p, 0, p->nprefix, row, ps, o, p))) {
            return rc;
        }
    }
    return ops(r, p, body, p->nops, row, ps, o, p);
}

static int render_line(wppr_renderer *r, program *p, const wppr_row *row, int ps, wppr_buf *o)
{
    return render_line_as(r, p, row, ps, o, 1);
}

/* out of line: its ops loop inlined into render_row would cost every printed row its
 * registers saved and restored */
static __attribute__((noinline)) int
check_line(wppr_renderer *r, program *p, const wppr_row *row, int ps, wppr_buf *o)
{
    return render_line_as(r, p, row, ps, o, 0);
}

/* b->data[start:] as a CSV field (Python's csv module from 3.13: quoted when it holds a comma,
 * a quote, a line feed or a carriage return, or when every field is; quotes doubled),
 * rewritten in place */
static int csv_field(wppr_buf *b, size_t start, int quote_all)
{
    size_t quotes = 0;
    int special = quote_all;
    const uint8_t *p = b->data + start, *end = b->data + b->len;
    if (!special)                       /* most lines hold none of the four: memchr finds out */
        special = memchr(p, ',', (size_t)(end - p)) || memchr(p, '"', (size_t)(end - p))
                  || memchr(p, '\n', (size_t)(end - p)) || memchr(p, '\r', (size_t)(end - p));
    if (!special) return 0;
    for (const uint8_t *q = p; (q = memchr(q, '"', (size_t)(end - q))); q++) quotes++;
    if (wppr_reserve(b, quotes + 2)) return -1;
    size_t j = b->len + quotes + 2;
    b->data[--j] = '"';
    for (size_t i = b->len; i-- > start;) {
        b->data[--j] = b->data[i];
        if (b->data[i] == '"') b->data[--j] = '"';
    }
    b->data[--j] = '"';
    b->len += quotes + 2;
    return 0;
}


/* a literal copied to w; where it ends */
#define put_literal(w, lit) (memcpy((w), (lit), sizeof(lit) - 1), (w) + sizeof(lit) - 1)

/* Python's "0x%04X" at w; where it ends */
static uint8_t *put_hex4_at(uint8_t *w, uint32_t v)
{
    int n = wppr_hex_len(v);
    if (n < 4) n = 4;
    w[0] = '0';
    w[1] = 'x';
    wppr_hex_at(w + 2 + n, v, n, 1);
    return w + 2 + n;
}

/* a CSV row: GuidName,MessageName (the decoration), ThreadId, SystemTime, KernelTime,
 * UserTime, SequenceNum, ProcessId, CpuNumber, then the line (decoder.output.CsvRows) */
static int render_csv(wppr_renderer *r, program *p, const wppr_row *row, int ps, wppr_buf *o)
{
    const deco *d = p->deco;
    int q = r->quote_all, rc;
    if (!d || row->milli == WPPR_TIME_OUT_OF_RANGE) return ROW_HOLE;
    /* the fields before the line after one room check: two hex ids (10 bytes each), the time
     * (64 at most), two decimal numbers (10 each), quotes and commas */
    if (wppr_reserve(o, d->head_len + 160)) return -1;
    uint8_t *w = o->data + o->len;
#define QUOTE() if (q) *w++ = '"'
    memcpy(w, d->text, d->head_len);
    w += d->head_len;
    *w++ = ',';
    QUOTE();
    w = put_hex4_at(w, row->thread_id);
    QUOTE();
    *w++ = ',';
    QUOTE();
    if (row->milli != WPPR_NO_TIME) w += wppr_time_cached(&r->time, row->milli, (char *)w);
    QUOTE();
    w = q ? put_literal(w, ",\"0\",\"0\",") : put_literal(w, ",0,0,");
    QUOTE();
    w = wppr_dec_put(w, row->sequence);
    QUOTE();
    *w++ = ',';
    QUOTE();
    w = put_hex4_at(w, row->process_id);
    QUOTE();
    *w++ = ',';
    QUOTE();
    w = wppr_dec_put(w, row->cpu);
    QUOTE();
    *w++ = ',';
#undef QUOTE
    o->len = (size_t)(w - o->data);
    size_t line = o->len;
    if ((rc = render_line(r, p, row, ps, o))) return rc;
    if (csv_field(o, line, q)) return -1;
    return wppr_putc(o, '\n');
}

/* the p significant digits of d, correctly rounded (%.*e), into digits; its decimal exponent */
static int sig_digits(double d, int p, char *digits, int *exp10)
{
    char text[40];
    snprintf(text, sizeof text, "%.*e", p - 1, fabs(d));
    int n = 0;
    const char *c = text;
    for (; *c && *c != 'e'; c++)
        if (*c >= '0' && *c <= '9') digits[n++] = *c;
    digits[n] = 0;
    *exp10 = *c == 'e' ? atoi(c + 1) : 0;
    return n;
}

/* digits x 10^(exp10 - n + 1) with the sign of d, read back as a double equals d */
static int round_trips(double d, const char *digits, int exp10)
{
    char text[48];
    snprintf(text, sizeof text, "%s%c.%se%d", d < 0 || signbit(d) ? "-" : "", digits[0],
             digits + 1, exp10);
    return strtod(text, NULL) == d;
}

/* digits (n of them) moved by one unit in the last place; 0 when that changes their count */
static int step_digits(char *digits, int n, int up)
{
    for (int k = n - 1; k >= 0; k--) {
        if (up ? digits[k] < '9' : digits[k] > '0') {
            digits[k] = (char)(digits[k] + (up ? 1 : -1));
            return !(digits[0] == '0');
        }
        digits[k] = up ? '0' : '9';
    }
    return 0;
}

/* no (p-1)-digit neighbour of d's correctly rounded p-1 digits reads back as d: the rounded p
 * digits are then the shortest (0 when one does, or when a step changes the digit count) */
static int no_shorter_neighbour(double d, int p)
{
    char other[24];
    int e2, m = sig_digits(d, p - 1, other, &e2);
    for (int up = 0; up < 2; up++) {
        char near[24];
        memcpy(near, other, (size_t)m + 1);
        if (!step_digits(near, m, up) || round_trips(d, near, e2)) return 0;
    }
    return 1;
}

/* Python's repr of a finite double: the shortest digits that read back as it (the correctly
 * rounded ones of that length), laid out as repr does. 1 (a hole) when the shortest length is
 * not certain: a shorter neighbour of the rounded digits would also read back. A normal double
 * starts at 15 digits: any decimal of at most 15 digits reads back from its nearest double
 * rounded to 15 (DBL_DIG), so when those round-trip they are the shortest ones padded with
 * zeros, and when they do not the shortest has 16 or 17 digits. */
static int put_py_repr(wppr_buf *o, double d)
{
    char digits[24];
    int n = 0, e = 0, p;
    if (fabs(d) >= DBL_MIN) {
        for (p = 15; p <= 17; p++) {
            n = sig_digits(d, p, digits, &e);
            if (p == 17 || round_trips(d, digits, e)) break;
        }
        if (p == 17 && !no_shorter_neighbour(d, p)) return ROW_HOLE;
    } else {                              /* zero and subnormals: fewer digits are exact */
        for (p = 1; p <= 17; p++) {
            n = sig_digits(d, p, digits, &e);
            if (round_trips(d, digits, e)) break;
        }
        if (p > 17 || (p > 1 && !no_shorter_neighbour(d, p))) return ROW_HOLE;
    }
    while (n > 1 && digits[n - 1] == '0') digits[--n] = 0;    /* repr drops trailing zeros */
    int decpt = e + 1;
    if ((signbit(d) && wppr_putc(o, '-'))) return -1;
    if (decpt <= -4 || decpt > 16) {      /* d.ddde+XX */
        if (wppr_putc(o, (uint8_t)digits[0])) return -1;
        if (n > 1 && (wppr_putc(o, '.') || wppr_put(o, digits + 1, (size_t)(n - 1)))) return -1;
        char text[16];
        int k = snprintf(text, sizeof text, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
        if (k < 0 || k >= (int)sizeof text) return -1;   /* never: |e| <= 324 */
        return wppr_put(o, text, (size_t)k);
    }
    if (decpt <= 0) {                     /* 0.000ddd */
        if (PUTS(o, "0.")) return -1;
        for (int k = 0; k < -decpt; k++)
            if (wppr_putc(o, '0')) return -1;
        return wppr_put(o, digits, (size_t)n);
    }
    if (decpt >= n) {                     /* ddd000.0 */
        if (wppr_put(o, digits, (size_t)n)) return -1;
        for (int k = n; k < decpt; k++)
            if (wppr_putc(o, '0')) return -1;
        return PUTS(o, ".0");
    }
    size_t whole = (size_t)decpt, rest = (size_t)n - whole;   /* 0 < decpt < n here */
    return wppr_put(o, digits, whole) || wppr_putc(o, '.') || wppr_put(o, digits + whole, rest)
           ? -1 : 0;
}

static int put_json_value(wppr_renderer *r, const program *p, const deco_arg *d, uint16_t i,
                          const wppr_row *row, int ps, wppr_buf *o)
{
    uint64_t v = r->val[i];
    switch (d->kind) {
    case WPPR_J_UNSIGNED:
        return wppr_put_u64(o, v);
    case WPPR_J_SIGNED: {
        int bits = ps == 8 ? d->bits8 : d->bits4;
        uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        v &= mask;
        if (!(v >> (bits - 1))) return wppr_put_u64(o, v);
        return wppr_putc(o, '-') || wppr_put_u64(o, (~v + 1) & mask) ? -1 : 0;
    }
    case WPPR_J_GUID:
        return wppr_putc(o, '"') || put_guid(o, row->args + r->off[i]) || wppr_putc(o, '"') ? -1 : 0;
    case WPPR_J_DOUBLE: {             /* json.dumps: repr; NaN and infinities as strings */
        double x;
        memcpy(&x, row->args + r->off[i], 8);
        if (isnan(x)) return PUTS(o, "\"nan\"");
        if (isinf(x)) return x > 0 ? PUTS(o, "\"inf\"") : PUTS(o, "\"-inf\"");
        return put_py_repr(o, x);
    }
    default: {                                        /* WPPR_J_STRING */
        size_t at = r->json_at[i], len = r->json_len[i];
        if (len != SIZE_MAX) {                        /* the text printed it: a copy */
            if (wppr_reserve(o, len + 2)) return -1;
            uint8_t *w = o->data + o->len;
            w[0] = '"';
            memcpy(w + 1, o->data + at, len);
            w[len + 1] = '"';
            o->len += len + 2;
            return 0;
        }
        if (wppr_putc(o, '"')) return -1;
        size_t start = o->len;
        if (put_string(o, &p->args[i], row->args + r->off[i], r->len[i])) return -1;
        if (json_escape(o, start)) return -1;
        return wppr_putc(o, '"');
    }
    }
}

/* the literal keys between the head and the text, all of them (their room is reserved at once) */
#define JSON_FACTS ",\"processor\":,\"thread_id\":,\"process_id\":,\"sequence\":,\"text\":\""

/* '{"timestamp":"<ISO 8601 UTC, 100 ns>Z","filetime":<FILETIME>': the text around the seven
 * tick digits is the same for a whole second, and so are FILETIME's digits before them */
static int put_json_time(wppr_renderer *r, int64_t ft, wppr_buf *o)
{
    int64_t second = ft / 10000000;
    uint32_t ticks = (uint32_t)(ft % 10000000);
    if (second != r->iso_second) {
        memcpy(r->iso, "{\"timestamp\":\"", 14);
        r->iso_len = 14 + wppr_iso_second(second, (char *)r->iso + 14);
        uint8_t *f = put_literal(r->filetime, "Z\",\"filetime\":");
        if (second) f = wppr_dec_put(f, (uint64_t)second);
        r->filetime_len = (int)(f - r->filetime);
        r->iso_second = second;
    }
    if (wppr_reserve(o, (size_t)(r->iso_len + r->filetime_len) + 14)) return -1;
    uint8_t *w = o->data + o->len;
    memcpy(w, r->iso, (size_t)r->iso_len);
    w += r->iso_len;
    uint8_t *digits = w;
    memcpy(w, "0000000", 7);
    if (ticks) wppr_dec_at(w + 7, ticks);
    w += 7;
    memcpy(w, r->filetime, (size_t)r->filetime_len);
    w += r->filetime_len;
    if (second) {                     /* FILETIME's last seven digits are the ticks */
        memcpy(w, digits, 7);
        w += 7;
    } else {
        w = wppr_dec_put(w, ticks);
    }
    o->len = (size_t)(w - o->data);
    return 0;
}

/* a JSON object (decoder.output.JsonRows): time, the decoration's head, the row's facts, the
 * message text (no prefix) and the typed arguments */
static int render_json(wppr_renderer *r, program *p, const wppr_row *row, int ps, wppr_buf *o)
{
    const deco *d = p->deco;
    int rc;
    if (!d || row->milli == WPPR_TIME_OUT_OF_RANGE) return ROW_HOLE;
    if (row->milli == WPPR_NO_TIME) {
        if (PUTS(o, "{\"timestamp\":null,\"filetime\":null")) return -1;
    } else if (row->filetime >= WPPR_ISO_END_FILETIME) {     /* a five-digit year */
        if (wppr_reserve(o, 64)) return -1;
        uint8_t *w = put_literal(o->data + o->len, "{\"timestamp\":null,\"filetime\":");
        o->len = (size_t)(wppr_dec_put(w, (uint64_t)row->filetime) - o->data);
    } else {
        if (row->filetime < 0) return ROW_HOLE;
        if (put_json_time(r, row->filetime, o)) return -1;
    }
    /* the head and the row's facts: one reservation, the numbers written in place */
    if (wppr_reserve(o, d->head_len + sizeof JSON_FACTS + 4 * 10)) return -1;
    uint8_t *w = o->data + o->len;
    memcpy(w, d->text, d->head_len);
    w += d->head_len;
    w = put_literal(w, ",\"processor\":");
    w = wppr_dec_put(w, row->cpu);
    w = put_literal(w, ",\"thread_id\":");
    w = wppr_dec_put(w, row->thread_id);
    w = put_literal(w, ",\"process_id\":");
    w = wppr_dec_put(w, row->process_id);
    w = put_literal(w, ",\"sequence\":");
    w = wppr_dec_put(w, row->sequence);
    w = put_literal(w, ",\"text\":\"");
    o->len = (size_t)(w - o->data);
    size_t text = o->len;
    if (d->plain_literals && !((p->flags & WPPR_P_PREFIX) && !r->noprefix)) {
        for (uint16_t i = 0; i < p->nargs; i++) r->json_len[i] = SIZE_MAX;
        if ((rc = run_json_ops(r, p, p->nprefix < p->nops ? p->nprefix + 1 : 0, p->nops, row, ps, o)))
            return rc;
    } else {
        for (uint16_t i = 0; i < p->nargs; i++) r->json_len[i] = SIZE_MAX;
        if ((rc = render_line(r, p, row, ps, o))) return rc;
        if (json_escape(o, text)) return -1;
    }
    if (PUTS(o, "\",\"args\":[")) return -1;
    for (uint16_t i = 0; i < d->nargs; i++) {
        const deco_arg *a = &d->args[i];
        if ((i && wppr_putc(o, ',')) || wppr_put(o, d->text + a->off, a->len)) return -1;
        if ((rc = put_json_value(r, p, a, i, row, ps, o))) return rc;    /* -1, or a hole */
        if (wppr_putc(o, '}')) return -1;
    }
    return PUTS(o, "]}\n");
}

/* -- Arrow columns ------------------------------------------------------------------ */

static int put32(wppr_buf *b, uint32_t v) { return wppr_put(b, &v, 4); }

/* text_off and arg_off hold their first offset (0) once reset; a column stays below 2 GiB */
int wppr_columns_reset(wppr_columns *c)
{
    wppr_buf *bufs[] = {&c->text_off, &c->text, &c->arg_off, &c->arg_name, &c->arg_type,
                        &c->arg_int, &c->arg_float, &c->arg_has, &c->str_off, &c->str};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) wppr_buf_free(bufs[i]);
    c->rows = c->args = 0;
    return put32(&c->text_off, 0) || put32(&c->arg_off, 0) || put32(&c->str_off, 0) ? -1 : 0;
}

void wppr_mem_free(void *p) { free(p); }

int wppr_columns_text(wppr_columns *c, const uint8_t *text, size_t len)
{
    if (text && wppr_put(&c->text, text, len)) return -1;
    return c->text.len > INT32_MAX ? -1 : put32(&c->text_off, (uint32_t)c->text.len);
}

static int end_arg(wppr_columns *c, int32_t name, int32_t type, uint8_t has, int64_t i, double f)
{
    if (c->str.len > INT32_MAX) return -1;
    if (put32(&c->arg_name, (uint32_t)name) || put32(&c->arg_type, (uint32_t)type)
            || wppr_put(&c->arg_int, &i, 8) || wppr_put(&c->arg_float, &f, 8)
            || wppr_putc(&c->arg_has, has) || put32(&c->str_off, (uint32_t)c->str.len))
        return -1;
    c->args++;
    return 0;
}

int wppr_columns_arg(wppr_columns *c, int32_t name, int32_t type, uint8_t has, int64_t i,
                     double f, const uint8_t *str, size_t len)
{
    if (str && wppr_put(&c->str, str, len)) return -1;
    return end_arg(c, name, type, has, i, f);
}

int wppr_columns_end_row(wppr_columns *c)
{
    if (put32(&c->arg_off, c->args)) return -1;
    c->rows++;
    return 0;
}

/* one argument's typed value (the JSON kinds: the value decode_args gives, as Arrow holds it) */
static int column_arg(wppr_renderer *r, const program *p, const deco_arg *d, uint16_t i,
                      const wppr_row *row, int ps, wppr_columns *c)
{
    uint64_t v = r->val[i];
    double f = 0;
    switch (d->kind) {
    case WPPR_J_UNSIGNED:                 /* 64-bit values keep their bits */
        return end_arg(c, d->name, d->type, WPPR_C_INT, (int64_t)v, 0);
    case WPPR_J_SIGNED: {
        int bits = ps == 8 ? d->bits8 : d->bits4;
        uint64_t mask = bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
        v &= mask;
        if (v >> (bits - 1)) v |= ~mask;
        return end_arg(c, d->name, d->type, WPPR_C_INT, (int64_t)v, 0);
    }
    case WPPR_J_DOUBLE:
        memcpy(&f, row->args + r->off[i], 8);
        return end_arg(c, d->name, d->type, WPPR_C_FLOAT, 0, f);
    case WPPR_J_GUID:
        if (put_guid(&c->str, row->args + r->off[i])) return -1;
        return end_arg(c, d->name, d->type, WPPR_C_STR, 0, 0);
    default:                              /* WPPR_J_STRING */
        if (put_string(&c->str, &p->args[i], row->args + r->off[i], r->len[i])) return -1;
        return end_arg(c, d->name, d->type, WPPR_C_STR, 0, 0);
    }
}

static int column_row(wppr_renderer *r, program *p, const wppr_row *row, wppr_columns *c)
{
    int ps = (int)row->pointer_size, rc;
    const deco *d = p->deco;
    if ((ps != 4 && ps != 8) || (p->flags & WPPR_P_SHARED) || !d) return ROW_HOLE;
    if ((rc = split_args(r, p, row->args, row->size, ps))) return rc;
    if ((rc = render_line(r, p, row, ps, &c->text))) return rc;
    if (wppr_columns_text(c, NULL, 0)) return -1;       /* the text is there: its end offset */
    for (uint16_t i = 0; i < d->nargs; i++)
        if ((rc = column_arg(r, p, &d->args[i], i, row, ps, c))) return rc;
    return wppr_columns_end_row(c);
}

int wppr_column_row(wppr_renderer *r, const wppr_row *row, wppr_columns *c)
{
    int32_t id = row->program;
    if (id < 0 || (uint32_t)id >= r->nprogs || r->output != WPPR_OUT_COLUMNS) return ROW_HOLE;
    /* what a hole or a failure leaves is taken back: the marks of every buffer it touches */
    size_t text = c->text.len, text_off = c->text_off.len, str = c->str.len;
    size_t arg_at[6] = {c->arg_name.len, c->arg_type.len, c->arg_int.len, c->arg_float.len,
                        c->arg_has.len, c->str_off.len};
    uint32_t args = c->args;
    int rc = column_row(r, r->progs[id], row, c);
    if (rc) {
        c->text.len = text;
        c->text_off.len = text_off;
        c->str.len = str;
        c->arg_name.len = arg_at[0];
        c->arg_type.len = arg_at[1];
        c->arg_int.len = arg_at[2];
        c->arg_float.len = arg_at[3];
        c->arg_has.len = arg_at[4];
        c->str_off.len = arg_at[5];
        c->args = args;
        return rc;
    }
    r->progs[id]->rows++;
    return 0;
}

static int render_row(wppr_renderer *r, program *p, const wppr_row *row, wppr_buf *o)
{
    int ps = (int)row->pointer_size;
    if ((ps != 4 && ps != 8) || (p->flags & WPPR_P_SHARED)) return ROW_HOLE;
    if (r->output != WPPR_OUT_TEXT && !p->deco) return ROW_HOLE;
    if (r->output == WPPR_OUT_COLUMNS) return ROW_HOLE;      /* wppr_column_row's */
    int rc = split_args(r, p, row->args, row->size, ps);
    if (rc) return rc;
    if (r->output == WPPR_OUT_CSV) return render_csv(r, p, row, ps, o);
    if (r->output == WPPR_OUT_JSON) return render_json(r, p, row, ps, o);
    if (r->no_text) return check_line(r, p, row, ps, o);
    if ((rc = render_line(r, p, row, ps, o))) return rc;
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

void wppr_prefetch(const wppr_renderer *r, int32_t id, const uint8_t *args)
{
    if (id < 0 || (uint32_t)id >= r->nprogs) return;
    const uint8_t *p = (const uint8_t *)r->progs[id];
    /* the struct and the first ops, then the argument bytes the row reads */
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
    __builtin_prefetch(p + 128);
    __builtin_prefetch(args);
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
