/* wppcompile.c: a TMF message's program blob made in C (see wppcompile.h).
 *
 * The blob is laid out as wpptrace.tmf.native.ProgramPlan.encode lays it: head, argument
 * rows, ops, the prefix strings' (offset, length) rows, then the pool: the literal runs
 * without a marker (in order), the runs with one (the message's own texts, in order), the
 * prefix strings. A run is the literal text and marker values between two inserts; an empty
 * run has no op.
 */
#include <stdlib.h>
#include <string.h>
#include "wppcompile.h"
#include "wpprender.h"

#define SLOTS 1024            /* ops kept: (item class, spec) pairs; a driver uses dozens */
#define MAX_ARGS 255
#define MAX_PAIRS 64
#define MAX_NAMES 32
#define HEAD_SIZE 24          /* native._HEAD */
#define ROW_SIZE 4            /* native._ARG */
#define STRING_SIZE 8         /* native._STRING */
#define TEXT_LIMIT (1u << 30) /* no run text grows past this */

typedef struct {
    uint8_t used, declined;
    int8_t spec_len;          /* -1: no spec */
    uint32_t cls;
    uint8_t spec[WPPC_SPEC_MAX];
    uint8_t op[WPPC_OP_SIZE];
} slot;

typedef struct {
    uint8_t *data;
    uint32_t len, cap;
} buf;

typedef struct {
    const uint8_t *at;
    uint32_t len;
} text;

struct wppc_table {
    uint8_t escapes[128];
    text empty[MAX_NAMES], defaulted[MAX_NAMES];
    uint32_t nempty, ndefaulted;
    uint8_t *names;           /* the names' bytes */
    slot slots[SLOTS];
    uint32_t used;
    buf ops, late, plain;     /* scratch of one message, kept between calls */
    uint8_t *op_late;         /* per op in ops: its text is a late (marker) run's */
    uint32_t op_late_cap;
};

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void wr16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Split n NUL-ended names out of src (a copy kept in dst); -1 when they are not that. */
static int split_names(const uint8_t *src, uint32_t len, uint8_t *dst, text *names, uint32_t *count)
{
    uint32_t n = 0, start = 0;
    if (len)
        memcpy(dst, src, len);
    for (uint32_t i = 0; i < len; i++) {
        if (dst[i] != 0)
            continue;
        if (n == MAX_NAMES)
            return -1;
        names[n].at = dst + start;
        names[n].len = i - start;
        n++;
        start = i + 1;
    }
    if (start != len)
        return -1;
    *count = n;
    return 0;
}

wppc_table *wppc_new(const uint8_t *escapes, const uint8_t *empty, uint32_t empty_len,
                     const uint8_t *defaulted, uint32_t defaulted_len)
{
    wppc_table *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->names = malloc((size_t)empty_len + defaulted_len + 1);
    if (t->names == NULL
        || split_names(empty, empty_len, t->names, t->empty, &t->nempty) != 0
        || split_names(defaulted, defaulted_len, t->names + empty_len, t->defaulted, &t->ndefaulted) != 0) {
        wppc_free(t);
        return NULL;
    }
    memcpy(t->escapes, escapes, sizeof t->escapes);
    return t;
}

void wppc_free(wppc_table *t)
{
    if (t == NULL)
        return;
    free(t->names);
    free(t->ops.data);
    free(t->late.data);
    free(t->plain.data);
    free(t->op_late);
    free(t);
}

static uint32_t slot_hash(uint32_t cls, const uint8_t *spec, int32_t spec_len)
{
    uint32_t h = 2166136261u ^ cls;
    h *= 16777619u;
    h ^= (uint32_t)(spec_len + 1);
    h *= 16777619u;
    for (int32_t i = 0; i < spec_len; i++) {
        h ^= spec[i];
        h *= 16777619u;
    }
    return h;
}

/* The slot of (cls, spec), or the free slot where it goes (NULL: the table is full). */
static slot *find_slot(wppc_table *t, uint32_t cls, const uint8_t *spec, int32_t spec_len)
{
    uint32_t at = slot_hash(cls, spec, spec_len) % SLOTS;
    for (uint32_t probe = 0; probe < SLOTS; probe++) {
        slot *s = &t->slots[(at + probe) % SLOTS];
        if (!s->used)
            return s;
        if (s->cls == cls && s->spec_len == spec_len
            && (spec_len <= 0 || memcmp(s->spec, spec, (size_t)spec_len) == 0))
            return s;
    }
    return NULL;
}

int wppc_put_op(wppc_table *t, uint32_t cls, const uint8_t *spec, int32_t spec_len, const uint8_t *op)
{
    if (spec_len < -1 || spec_len > WPPC_SPEC_MAX)
        return -1;
    if (t->used >= SLOTS * 3 / 4)
        return -1;               /* kept short of full: a probe always meets a free slot */
    slot *s = find_slot(t, cls, spec, spec_len);
    if (s == NULL)
        return -1;
    if (!s->used)
        t->used++;
    s->used = 1;
    s->cls = cls;
    s->spec_len = (int8_t)spec_len;
    if (spec_len > 0)
        memcpy(s->spec, spec, (size_t)spec_len);
    s->declined = op == NULL;
    if (op != NULL)
        memcpy(s->op, op, WPPC_OP_SIZE);
    return 0;
}

static int grow(buf *b, uint64_t need)
{
    if (need <= b->cap)
        return 0;
    if (need > TEXT_LIMIT)
        return -1;
    uint64_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    uint8_t *data = realloc(b->data, (size_t)cap);
    if (data == NULL)
        return -1;
    b->data = data;
    b->cap = (uint32_t)cap;
    return 0;
}

static int append(buf *b, const uint8_t *p, uint32_t n)
{
    if (grow(b, (uint64_t)b->len + n) != 0)
        return -1;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static int same(text a, const uint8_t *p, uint32_t n)
{
    return a.len == n && (n == 0 || memcmp(a.at, p, n) == 0);
}

static int among(const text *names, uint32_t count, const uint8_t *p, uint32_t n)
{
    for (uint32_t i = 0; i < count; i++)
        if (same(names[i], p, n))
            return 1;
    return 0;
}

static uint8_t upper(uint8_t c)
{
    return c >= 'a' && c <= 'z' ? (uint8_t)(c - 32) : c;
}

/* A marker's text, as decoder.prefix.MessageMarkers gives it from the trailer: 1 with *value
 * set, 0 for none (the caller prints its text without a value), -1 to decline. */
static int marker_value(const wppc_table *t, const text *keys, const text *values, uint32_t npairs,
                        const uint8_t *name, uint32_t n, text *value)
{
    for (uint32_t i = 0; i < npairs; i++)
        if (same(keys[i], name, n)) {
            *value = values[i];
            return 1;
        }
    if (among(t->defaulted, t->ndefaulted, name, n))
        return -1;               /* derived from other fields: Python's */
    for (uint32_t i = 0; i < npairs; i++) {   /* the first key of that upper-case name */
        int match = keys[i].len == n;
        for (uint32_t k = 0; k < keys[i].len; k++) {
            if (keys[i].at[k] >= 0x80)
                return -1;       /* a non-ASCII key may upper-case to the name */
            if (match && upper(keys[i].at[k]) != name[k])
                match = 0;
        }
        if (match) {
            *value = values[i];
            return 1;
        }
    }
    if (among(t->empty, t->nempty, name, n)) {
        value->at = name;
        value->len = 0;
        return 1;
    }
    return 0;
}

typedef struct {
    wppc_table *t;
    int marker;               /* the run being read has a marker */
    uint32_t start;           /* where its text starts in late or plain */
    uint32_t nops;
} walk;

static int run_text(walk *w, const uint8_t *p, uint32_t n)
{
    /* a run's text goes to plain until a marker makes it the message's own (late) */
    return append(w->marker ? &w->t->late : &w->t->plain, p, n);
}

static int run_marker(walk *w, const uint8_t *p, uint32_t n)
{
    wppc_table *t = w->t;
    if (!w->marker) {            /* the run's text so far moves to late */
        uint32_t had = t->plain.len - w->start;
        uint32_t at = t->late.len;
        if (had && append(&t->late, t->plain.data + w->start, had) != 0)
            return -1;
        t->plain.len = w->start;
        w->start = at;
        w->marker = 1;
    }
    return append(&t->late, p, n);
}

static int add_op(walk *w, const uint8_t *op, int late)
{
    wppc_table *t = w->t;
    if (append(&t->ops, op, WPPC_OP_SIZE) != 0)
        return -1;
    if (w->nops >= t->op_late_cap) {
        uint32_t cap = t->op_late_cap ? t->op_late_cap * 2 : 64;
        uint8_t *flags = realloc(t->op_late, cap);
        if (flags == NULL)
            return -1;
        t->op_late = flags;
        t->op_late_cap = cap;
    }
    t->op_late[w->nops++] = (uint8_t)late;
    return 0;
}

/* End the run: a literal op over its text, none for an empty one. */
static int end_run(walk *w)
{
    wppc_table *t = w->t;
    buf *b = w->marker ? &t->late : &t->plain;
    uint32_t n = b->len - w->start;
    int rc = 0;
    if (n) {
        uint8_t op[WPPC_OP_SIZE] = {WPPR_OP_LIT};
        memset(op + 8, 0xFF, 8);              /* width, precision: none */
        wr32(op + 16, w->start);              /* made absolute when the blob is laid out */
        wr32(op + 20, n);
        rc = add_op(w, op, w->marker);
    }
    w->marker = 0;
    w->start = t->plain.len;
    return rc;
}

static int is_name_start(uint8_t c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

static int is_name(uint8_t c)
{
    return is_name_start(c) || (c >= '0' && c <= '9');
}

int64_t wppc_message(wppc_table *t, const uint8_t *fmt, uint32_t fmt_len,
                     const uint8_t *args, uint32_t args_len, const uint8_t *trailer,
                     uint32_t trailer_len, int32_t program, const uint8_t *strings,
                     uint32_t strings_len, int prefix, uint8_t *out, uint32_t cap, wppc_need *need)
{
    if (args_len < 4 || strings_len < 4)
        return WPPC_DECLINE;
    uint32_t nargs = rd32(args);
    if (nargs > MAX_ARGS || args_len != 4 + 12u * nargs)
        return WPPC_DECLINE;
    uint32_t nstrings = rd32(strings);
    if (nstrings > 0xFFFF || (uint64_t)strings_len < 4 + 4 * (uint64_t)nstrings)
        return WPPC_DECLINE;
    const uint8_t *string_lens = strings + 4;
    const uint8_t *string_texts = string_lens + 4 * nstrings;
    uint64_t strings_total = 0;
    for (uint32_t k = 0; k < nstrings; k++)
        strings_total += rd32(string_lens + 4 * k);
    if (strings_total != strings_len - 4 - 4 * (uint64_t)nstrings)
        return WPPC_DECLINE;

    text keys[2 * MAX_PAIRS], values[MAX_PAIRS];
    uint32_t field = 0, start = 0;
    for (uint32_t i = 0; i < trailer_len; i++) {
        if (trailer[i] != 0)
            continue;
        if (field == 2 * MAX_PAIRS)
            return WPPC_DECLINE;
        keys[field].at = trailer + start;   /* the values follow the keys: moved below */
        keys[field].len = i - start;
        field++;
        start = i + 1;
    }
    if (field % 2 != 0 || start != trailer_len)
        return WPPC_DECLINE;
    uint32_t npairs = field / 2;
    for (uint32_t k = 0; k < npairs; k++)
        values[k] = keys[npairs + k];

    walk w = {t, 0, 0, 0};
    t->ops.len = t->late.len = t->plain.len = 0;
    uint32_t i = 0;
    while (i < fmt_len) {
        const uint8_t *pct = memchr(fmt + i, '%', fmt_len - i);
        uint32_t j = pct ? (uint32_t)(pct - fmt) : fmt_len;
        if (run_text(&w, fmt + i, j - i) != 0)
            return WPPC_ROOM;
        if (j >= fmt_len)
            break;
        if (j + 1 >= fmt_len) {                  /* a lone '%' at the end is copied */
            if (run_text(&w, (const uint8_t *)"%", 1) != 0)
                return WPPC_ROOM;
            break;
        }
        uint8_t ch = fmt[j + 1];
        if (ch == '0') {
            if (j != 0)
                break;                           /* %0 past the start ends the format */
            text value = {fmt, 0};
            int found = marker_value(t, keys, values, npairs, (const uint8_t *)"PREFIX", 6, &value);
            if (found < 0)
                return WPPC_DECLINE;
            if (run_marker(&w, value.at, found ? value.len : 0) != 0)
                return WPPC_ROOM;
            i = j + 2;
            continue;
        }
        if (ch >= '1' && ch <= '9') {
            uint32_t k = j + 2, index = ch - '0';
            if (k < fmt_len && fmt[k] >= '0' && fmt[k] <= '9')
                index = index * 10 + (fmt[k++] - '0');
            if (index < 10)
                return WPPC_DECLINE;             /* %1..%9: prefix variables */
            int32_t spec_at = -1, spec_len = -1;
            if (k < fmt_len && fmt[k] == '!') {
                const uint8_t *close = memchr(fmt + k + 1, '!', fmt_len - k - 1);
                if (close == NULL)
                    return WPPC_DECLINE;         /* unterminated: Python reports it */
                spec_at = (int32_t)(k + 1);
                spec_len = (int32_t)(close - fmt) - spec_at;
                if (spec_len > WPPC_SPEC_MAX)
                    return WPPC_DECLINE;
                i = (uint32_t)(close - fmt) + 1;
            } else {
                i = k;
            }
            uint32_t arg = 0;
            while (arg < nargs && rd32(args + 4 + 12 * arg) != index)
                arg++;
            if (arg == nargs)
                return WPPC_DECLINE;             /* an insert with no argument */
            uint32_t cls = rd32(args + 8 + 12 * arg);
            const uint8_t *spec = spec_at >= 0 ? fmt + spec_at : NULL;
            slot *s = find_slot(t, cls, spec, spec_len);
            if (s == NULL)
                return WPPC_DECLINE;
            if (!s->used) {
                need->cls = cls;
                need->spec_at = spec_at;
                need->spec_len = spec_len;
                return WPPC_NEED;
            }
            if (s->declined)
                return WPPC_DECLINE;
            uint8_t op[WPPC_OP_SIZE];
            memcpy(op, s->op, WPPC_OP_SIZE);
            wr16(op + 6, arg);
            if (end_run(&w) != 0 || add_op(&w, op, 0) != 0)
                return WPPC_ROOM;
            continue;
        }
        if (ch == '!' && j + 2 < fmt_len && is_name_start(fmt[j + 2])) {
            uint32_t k = j + 3;
            while (k < fmt_len && is_name(fmt[k]))
                k++;
            if (k < fmt_len && fmt[k] == '!') {  /* %!NAME! */
                const uint8_t *name = fmt + j + 2;
                uint32_t n = k - j - 2;
                if (n == 3 && memcmp(name, "END", 3) == 0) {
                    /* Python's reader checks the specs after it too (a bad one is a counted
                       format error), so only a final one is read here */
                    if (k + 1 != fmt_len)
                        return WPPC_DECLINE;
                    break;
                }
                text value = {name, 0};
                int found = marker_value(t, keys, values, npairs, name, n, &value);
                if (found < 0)
                    return WPPC_DECLINE;
                int rc;
                if (found)
                    rc = run_marker(&w, value.at, value.len);
                else if (n == 6 && memcmp(name, "PREFIX", 6) == 0)
                    rc = run_marker(&w, name, 0);
                else                             /* unknown: it stays visible */
                    rc = run_marker(&w, fmt + j + 1, n + 2);
                if (rc != 0)
                    return WPPC_ROOM;
                i = k + 1;
                continue;
            }
        }
        if (ch >= 0x80 || t->escapes[ch] == 0)
            return WPPC_DECLINE;
        if (run_text(&w, &t->escapes[ch], 1) != 0)
            return WPPC_ROOM;
        i = j + 2;
    }
    if (end_run(&w) != 0)
        return WPPC_ROOM;
    if (w.nops > 0xFFFF)
        return WPPC_DECLINE;

    uint64_t pool = (uint64_t)t->plain.len + t->late.len + strings_total;
    uint64_t size = HEAD_SIZE + (uint64_t)ROW_SIZE * nargs + (uint64_t)WPPC_OP_SIZE * w.nops
                    + (uint64_t)STRING_SIZE * nstrings + pool;
    if (size > cap || pool > 0xFFFFFFFFu)
        return WPPC_ROOM;

    uint8_t *p = out;
    wr32(p, WPPR_MAGIC);
    wr32(p + 4, prefix ? WPPR_P_PREFIX : 0);
    wr16(p + 8, nargs);
    wr16(p + 10, w.nops);
    wr32(p + 12, (uint32_t)pool);
    wr32(p + 16, (uint32_t)program);
    wr16(p + 20, nstrings);
    wr16(p + 22, 0);
    p += HEAD_SIZE;
    for (uint32_t a = 0; a < nargs; a++, p += ROW_SIZE)
        memcpy(p, args + 12 + 12 * a, ROW_SIZE);
    if (w.nops)                                  /* no ops: the table may not exist yet */
        memcpy(p, t->ops.data, (size_t)WPPC_OP_SIZE * w.nops);
    for (uint32_t k = 0; k < w.nops; k++, p += WPPC_OP_SIZE)
        if (t->op_late[k])
            wr32(p + 16, rd32(p + 16) + t->plain.len);
    uint32_t at = t->plain.len + t->late.len;
    for (uint32_t k = 0; k < nstrings; k++, p += STRING_SIZE) {
        uint32_t n = rd32(string_lens + 4 * k);
        wr32(p, at);
        wr32(p + 4, n);
        at += n;
    }
    if (t->plain.len)
        memcpy(p, t->plain.data, t->plain.len);
    p += t->plain.len;
    if (t->late.len)
        memcpy(p, t->late.data, t->late.len);
    p += t->late.len;
    if (strings_total)
        memcpy(p, string_texts, (size_t)strings_total);
    return (int64_t)size;
}
