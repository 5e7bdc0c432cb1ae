/* fastpath.c: the wpptrace._fastpath extension, METH_FASTCALL builtins that write TraceMessage
 * records from Python.
 *
 * cffi calls cost about 0.3 us each (GIL release, errno save, argument conversion), more than
 * writing the record. These builtins keep the GIL (the core's logging path is lock-free and
 * short), take Python objects directly and end in the same core entries as the cffi path
 * (wpptrace_trace_packed / wpptrace_trace_args of wpptrace._core), so records are byte-identical.
 *
 * This module uses CPython's full (non-limited) API, so it is built for one interpreter version
 * (its file name carries the version tag); wpptrace._core stays on the limited API. The core is
 * reached through function pointers that provider/fastpath.py takes from _core's cffi library
 * and passes to bind(): one copy of the core's state, shared by both modules.
 *
 * Builtins:
 *   bind(trace_packed_address, trace_args_address, missing): connect to the core (once)
 *   trace_packed(handle, flags, guid_le|None, number, payload) -> Win32 code
 *   trace_message(handle, flags, guid_le|None, number, *byte_args) -> Win32 code
 *   register_site(guid_le|None, number, flags, codes, converters) -> site id
 *   trace_site(handle, site_id, args_tuple) -> Win32 code, or -1: "a value did not take the
 *       fast form; let Python's checker pack it (or raise naming the call site)". Nothing is
 *       written then.
 *   trace_site_slots(handle, site_id, a0, a1, a2, a3, more) -> the same for the level methods'
 *       signature (four slots defaulting to the marker given to bind()).
 *   site_writer(by_format) -> write(handle, fmt, a0, a1, a2, a3, more): trace_site_slots with
 *       the site looked up in a provider's {format: (format, site_id, ...)} dict by the format
 *       object; -2 (NEEDS_SITE) when it names no site.
 *
 * A site's program is one type code per argument:
 *   b h i q  signed 8/16/32/64-bit int        B H I Q  unsigned 8/16/32/64-bit int
 *   d        double                           s        str -> UTF-8 + NUL
 *   S        str -> UTF-16LE + NUL            g        object with .bytes_le (16 bytes)
 *   o        converters[i](value) -> bytes (Python-encoded types: SID, IP, counted strings ...)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "wpptrace_etw.h"

#define NEEDS_CHECKER (-1)        /* trace_site's "not packed: use the Python checker" */
#define NEEDS_SITE    (-2)        /* a writer's "this format object names no site yet" */
#define STACK_PAYLOAD 512
#define STACK_ARGS    32

/* The core's entries, set by bind() (the addresses of wpptrace._core's functions). */
typedef __typeof__(&wpptrace_trace_packed) trace_packed_fn;
typedef __typeof__(&wpptrace_trace_args) trace_args_fn;
static trace_packed_fn core_trace_packed;
static trace_args_fn core_trace_args;

typedef struct {
    unsigned char guid[16];
    int has_guid;
    USHORT number;
    ULONG flags;
    Py_ssize_t nargs;
    char *codes;                  /* nargs type codes */
    PyObject *converters;         /* tuple (None where not 'o') */
} site_program;

/* Sites live as long as the process (one per trace call site). Only touched with the GIL. */
static site_program **g_sites;
static Py_ssize_t g_nsites, g_site_cap;
static PyObject *g_bytes_le;      /* interned "bytes_le" */
static PyObject *g_missing;       /* the level methods' "no argument" default (bind) */

/* ---- argument helpers ---------------------------------------------------------------------- */

static int get_handle(PyObject *o, TRACEHANDLE *out) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return -1;
    *out = (TRACEHANDLE)v;
    return 0;
}

static int get_u32(PyObject *o, unsigned long max, unsigned long *out, const char *what) {
    unsigned long v = PyLong_AsUnsignedLong(o);
    if (v == (unsigned long)-1 && PyErr_Occurred()) return -1;
    if (v > max) {
        PyErr_Format(PyExc_OverflowError, "%s out of range: %lu", what, v);
        return -1;
    }
    *out = v;
    return 0;
}

/* guid_le: None or 16 bytes. Returns 1 ok, 0 bad length (ERROR_INVALID_PARAMETER), -1 error. */
static int get_guid(PyObject *o, const char **out) {
    if (o == Py_None) { *out = NULL; return 1; }
    if (!PyBytes_Check(o)) {
        PyErr_Format(PyExc_TypeError, "message GUID: expected 16 bytes or None, got %.100s",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    if (PyBytes_GET_SIZE(o) != 16) return 0;
    *out = PyBytes_AS_STRING(o);
    return 1;
}

/* ---- payload writer: a stack buffer, grown on the heap for big messages ---------------------- */

typedef struct {
    unsigned char *p;
    size_t len, cap;
    unsigned char stack[STACK_PAYLOAD];
} payload_buf;

static void buf_init(payload_buf *b) { b->p = b->stack; b->len = 0; b->cap = sizeof b->stack; }
static void buf_free(payload_buf *b) { if (b->p != b->stack) PyMem_Free(b->p); }

static unsigned char *buf_room(payload_buf *b, size_t n) {
    if (b->cap - b->len < n) {
        size_t cap = b->cap * 2;
        while (cap - b->len < n) cap *= 2;
        unsigned char *p = PyMem_Malloc(cap);
        if (!p) return NULL;
        memcpy(p, b->p, b->len);
        buf_free(b);
        b->p = p;
        b->cap = cap;
    }
    unsigned char *at = b->p + b->len;
    b->len += n;
    return at;
}

/* Integers: 1 = written, 0 = does not fit / not an int (checker decides). */
static int put_int(payload_buf *b, PyObject *v, int size, int is_signed) {
    if (!PyLong_Check(v)) return 0;
    unsigned long long bits;
    int overflow = 0;
    long long s = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (s == -1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    if (is_signed) {
        if (overflow) return 0;
        if (size < 8) {
            long long lim = 1LL << (8 * size - 1);
            if (s < -lim || s >= lim) return 0;
        }
        bits = (unsigned long long)s;
    } else if (overflow > 0 && size == 8) {
        bits = PyLong_AsUnsignedLongLong(v);
        if (bits == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    } else {
        if (overflow || s < 0) return 0;
        if (size < 8 && (unsigned long long)s >> (8 * size)) return 0;
        bits = (unsigned long long)s;
    }
    unsigned char *at = buf_room(b, (size_t)size);
    if (!at) return -1;
    for (int i = 0; i < size; i++) at[i] = (unsigned char)(bits >> (8 * i));   /* little-endian */
    return 1;
}

static int put_double(payload_buf *b, PyObject *v) {
    double d;
    if (PyFloat_Check(v)) d = PyFloat_AS_DOUBLE(v);
    else if (PyLong_Check(v)) {
        d = PyLong_AsDouble(v);
        if (d == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    } else return 0;
    unsigned char *at = buf_room(b, 8);
    if (!at) return -1;
    memcpy(at, &d, 8);   /* the hosts we build on are little-endian, as the ETL format */
    return 1;
}

static int put_utf8(payload_buf *b, PyObject *v) {
    if (!PyUnicode_Check(v)) return 0;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (!s) { PyErr_Clear(); return 0; }           /* lone surrogates: the checker says so */
    if (memchr(s, 0, (size_t)n)) return 0;          /* NUL cannot travel NUL-terminated */
    unsigned char *at = buf_room(b, (size_t)n + 1);
    if (!at) return -1;
    memcpy(at, s, (size_t)n);
    at[n] = 0;
    return 1;
}

static int put_utf16(payload_buf *b, PyObject *v) {
    if (!PyUnicode_Check(v)) return 0;
#if PY_VERSION_HEX < 0x030C0000   /* 3.10/3.11: a legacy str may need its canonical form */
    if (PyUnicode_READY(v) < 0) { PyErr_Clear(); return 0; }
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(v);
    int kind = PyUnicode_KIND(v);
    const void *data = PyUnicode_DATA(v);
    size_t units = (size_t)n;
    if (kind == PyUnicode_4BYTE_KIND)
        for (Py_ssize_t i = 0; i < n; i++)
            if (PyUnicode_READ(kind, data, i) > 0xFFFF) units++;
    unsigned char *at = buf_room(b, 2 * units + 2);
    if (!at) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c == 0 || (c >= 0xD800 && c <= 0xDFFF)) return 0;   /* NUL, lone surrogate */
        if (c > 0xFFFF) {
            c -= 0x10000;
            unsigned hi = 0xD800 | (c >> 10), lo = 0xDC00 | (c & 0x3FF);
            *at++ = (unsigned char)hi; *at++ = (unsigned char)(hi >> 8);
            *at++ = (unsigned char)lo; *at++ = (unsigned char)(lo >> 8);
        } else {
            *at++ = (unsigned char)c; *at++ = (unsigned char)(c >> 8);
        }
    }
    at[0] = at[1] = 0;
    return 1;
}

static int put_bytes_of(payload_buf *b, PyObject *encoded) {
    if (!encoded) { PyErr_Clear(); return 0; }
    int rc = 0;
    if (PyBytes_Check(encoded)) {
        Py_ssize_t n = PyBytes_GET_SIZE(encoded);
        unsigned char *at = buf_room(b, (size_t)n);
        if (!at) rc = -1;
        else { memcpy(at, PyBytes_AS_STRING(encoded), (size_t)n); rc = 1; }
    }
    Py_DECREF(encoded);
    return rc;
}

static int put_guid(payload_buf *b, PyObject *v) {
    PyObject *raw = PyObject_GetAttr(v, g_bytes_le);
    if (raw && (!PyBytes_Check(raw) || PyBytes_GET_SIZE(raw) != 16)) {
        Py_DECREF(raw);
        return 0;
    }
    return put_bytes_of(b, raw);
}

/* ---- builtins ------------------------------------------------------------------------------- */

static PyObject *py_trace_message(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs < 4) {
        PyErr_SetString(PyExc_TypeError, "trace_message(handle, flags, guid_le, number, *byte_args)");
        return NULL;
    }
    if (!core_trace_args) {
        PyErr_SetString(PyExc_RuntimeError, "wpptrace._fastpath is not bound to the core");
        return NULL;
    }
    TRACEHANDLE h;
    unsigned long flags, number;
    const char *guid;
    if (get_handle(args[0], &h) || get_u32(args[1], 0xFFFFFFFFul, &flags, "flags")
        || get_u32(args[3], 0xFFFFul, &number, "message number"))
        return NULL;
    int g = get_guid(args[2], &guid);
    if (g < 0) return NULL;
    if (g == 0) return PyLong_FromLong(ERROR_INVALID_PARAMETER);
    Py_ssize_t count = nargs - 4;
    WPPTRACE_ARG stack_items[STACK_ARGS];
    Py_buffer stack_views[STACK_ARGS];
    WPPTRACE_ARG *items = stack_items;
    Py_buffer *views = stack_views;
    if (count > STACK_ARGS) {
        items = PyMem_Malloc(sizeof *items * (size_t)count);
        views = PyMem_Malloc(sizeof *views * (size_t)count);
        if (!items || !views) {
            PyMem_Free(items);
            PyMem_Free(views);
            return PyErr_NoMemory();
        }
    }
    Py_ssize_t held = 0;
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *a = args[4 + i];
        if (PyBytes_Check(a)) {
            items[i].Data = PyBytes_AS_STRING(a);
            items[i].Size = (size_t)PyBytes_GET_SIZE(a);
            continue;
        }
        if (PyObject_GetBuffer(a, &views[held], PyBUF_SIMPLE) < 0) goto done;
        items[i].Data = views[held].buf;
        items[i].Size = (size_t)views[held].len;
        held++;
    }
    result = PyLong_FromUnsignedLong(core_trace_args(h, (ULONG)flags, (LPCGUID)(const void *)guid,
                                                         (USHORT)number, items, (ULONG)count));
done:
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&views[i]);
    if (items != stack_items) { PyMem_Free(items); PyMem_Free(views); }
    return result;
}

/* trace_packed is TraceMessage with one argument: the payload the caller packed. */
static PyObject *py_trace_packed(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "trace_packed(handle, flags, guid_le, number, payload) takes 5 arguments");
        return NULL;
    }
    return py_trace_message(self, args, nargs);
}

static PyObject *py_register_site(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 5 || !PyUnicode_Check(args[3]) || !PyTuple_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError,
                        "register_site(guid_le, number, flags, codes: str, converters: tuple)");
        return NULL;
    }
    const char *guid;
    unsigned long number, flags;
    int g = get_guid(args[0], &guid);
    if (g < 0) return NULL;
    if (g == 0) { PyErr_SetString(PyExc_ValueError, "message GUID must be 16 bytes"); return NULL; }
    if (get_u32(args[1], 0xFFFFul, &number, "message number")
        || get_u32(args[2], 0xFFFFFFFFul, &flags, "flags"))
        return NULL;
    Py_ssize_t n;
    const char *codes = PyUnicode_AsUTF8AndSize(args[3], &n);
    if (!codes) return NULL;
    if (PyTuple_GET_SIZE(args[4]) != n) {
        PyErr_SetString(PyExc_ValueError, "one converter (or None) per type code");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!strchr("bhiqBHIQdsSgo", codes[i]) || codes[i] == 0) {
            PyErr_Format(PyExc_ValueError, "unknown type code %R", args[3]);
            return NULL;
        }
        if (codes[i] == 'o' && !PyCallable_Check(PyTuple_GET_ITEM(args[4], i))) {
            PyErr_SetString(PyExc_TypeError, "type code 'o' needs a callable converter");
            return NULL;
        }
    }
    if (g_nsites == g_site_cap) {
        Py_ssize_t cap = g_site_cap ? 2 * g_site_cap : 64;
        site_program **grown = PyMem_Realloc(g_sites, sizeof *grown * (size_t)cap);
        if (!grown) return PyErr_NoMemory();
        g_sites = grown;
        g_site_cap = cap;
    }
    site_program *s = PyMem_Calloc(1, sizeof *s);
    char *copy = PyMem_Malloc((size_t)n + 1);
    if (!s || !copy) {
        PyMem_Free(s);
        PyMem_Free(copy);
        return PyErr_NoMemory();
    }
    memcpy(copy, codes, (size_t)n + 1);
    if (guid) { memcpy(s->guid, guid, 16); s->has_guid = 1; }
    s->number = (USHORT)number;
    s->flags = (ULONG)flags;
    s->nargs = n;
    s->codes = copy;
    Py_INCREF(args[4]);
    s->converters = args[4];
    g_sites[g_nsites] = s;
    return PyLong_FromSsize_t(g_nsites++);
}

/* (handle, site_id) -> the handle and the site's program; NULL with an exception if bad. */
static const site_program *site_args(PyObject *const *args, TRACEHANDLE *h) {
    if (get_handle(args[0], h)) return NULL;
    Py_ssize_t id = PyLong_AsSsize_t(args[1]);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (id < 0 || id >= g_nsites) {
        PyErr_SetString(PyExc_ValueError, "unknown site id");
        return NULL;
    }
    return g_sites[id];
}

/* Pack `values` by the site's program and write the record (or answer NEEDS_CHECKER). */
static PyObject *pack_and_write(const site_program *s, TRACEHANDLE h, PyObject *const *values,
                                Py_ssize_t n) {
    if (n != s->nargs) return PyLong_FromLong(NEEDS_CHECKER);
    if (!core_trace_packed) {
        PyErr_SetString(PyExc_RuntimeError, "wpptrace._fastpath is not bound to the core");
        return NULL;
    }
    payload_buf b;
    buf_init(&b);
    int ok = 1;
    for (Py_ssize_t i = 0; i < n && ok == 1; i++) {
        PyObject *v = values[i];
        switch (s->codes[i]) {
        case 'b': ok = put_int(&b, v, 1, 1); break;
        case 'h': ok = put_int(&b, v, 2, 1); break;
        case 'i': ok = put_int(&b, v, 4, 1); break;
        case 'q': ok = put_int(&b, v, 8, 1); break;
        case 'B': ok = put_int(&b, v, 1, 0); break;
        case 'H': ok = put_int(&b, v, 2, 0); break;
        case 'I': ok = put_int(&b, v, 4, 0); break;
        case 'Q': ok = put_int(&b, v, 8, 0); break;
        case 'd': ok = put_double(&b, v); break;
        case 's': ok = put_utf8(&b, v); break;
        case 'S': ok = put_utf16(&b, v); break;
        case 'g': ok = put_guid(&b, v); break;
        default:  ok = put_bytes_of(&b, PyObject_CallOneArg(PyTuple_GET_ITEM(s->converters, i), v));
        }
    }
    PyObject *result;
    if (ok < 0) result = PyErr_NoMemory();
    else if (ok == 0) result = PyLong_FromLong(NEEDS_CHECKER);
    else
        result = PyLong_FromUnsignedLong(core_trace_packed(h, s->flags,
                                                               s->has_guid ? (const char *)s->guid : NULL,
                                                               s->number, (const char *)b.p, b.len));
    buf_free(&b);
    return result;
}

static PyObject *py_trace_site(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyTuple_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "trace_site(handle, site_id, args: tuple)");
        return NULL;
    }
    TRACEHANDLE h;
    const site_program *s = site_args(args, &h);
    if (!s) return NULL;
    return pack_and_write(s, h, &PyTuple_GET_ITEM(args[2], 0), PyTuple_GET_SIZE(args[2]));
}

static PyObject *write_slots(const site_program *s, TRACEHANDLE h, PyObject *const *slots,
                             PyObject *more);

/* The level methods' argument shape: four slots defaulting to the MISSING marker, then a tuple
 * of the rest. Values are the leading non-MISSING slots, then `more` when all four are used. */
static PyObject *py_trace_site_slots(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 7 || !PyTuple_Check(args[6]) || !g_missing) {
        PyErr_SetString(PyExc_TypeError,
                        "trace_site_slots(handle, site_id, a0, a1, a2, a3, more: tuple) after set_missing()");
        return NULL;
    }
    TRACEHANDLE h;
    const site_program *s = site_args(args, &h);
    if (!s) return NULL;
    return write_slots(s, h, args + 2, args[6]);
}

static PyObject *write_slots(const site_program *s, TRACEHANDLE h, PyObject *const *slots,
                             PyObject *more) {
    Py_ssize_t used = 0;
    while (used < 4 && slots[used] != g_missing) used++;
    for (Py_ssize_t i = used; i < 4; i++)
        if (slots[i] != g_missing) return PyLong_FromLong(NEEDS_CHECKER);   /* out of order */
    Py_ssize_t extra = PyTuple_GET_SIZE(more);
    if (extra == 0) return pack_and_write(s, h, slots, used);
    if (used < 4) return PyLong_FromLong(NEEDS_CHECKER);
    PyObject *stack_values[STACK_ARGS];
    PyObject **values = stack_values;
    if (4 + extra > STACK_ARGS) {
        values = PyMem_Malloc(sizeof *values * (size_t)(4 + extra));
        if (!values) return PyErr_NoMemory();
    }
    memcpy(values, slots, 4 * sizeof *values);
    memcpy(values + 4, &PyTuple_GET_ITEM(more, 0), (size_t)extra * sizeof *values);
    PyObject *result = pack_and_write(s, h, values, 4 + extra);
    if (values != stack_values) PyMem_Free(values);
    return result;
}

/* A provider's writer: self is its dict {format str: (the same str object, site id, ...)}.
 * write(handle, fmt, a0, a1, a2, a3, more) -> as trace_site_slots, or NEEDS_SITE when the
 * format object does not name a site (Python then finds it from the caller's frame). */
static PyObject *py_write_by_format(PyObject *by_format, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7 || !PyTuple_Check(args[6]) || !g_missing) {
        PyErr_SetString(PyExc_TypeError, "write(handle, fmt, a0, a1, a2, a3, more: tuple)");
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(by_format, args[1]);   /* borrowed */
    if (!entry) return PyErr_Occurred() ? NULL : PyLong_FromLong(NEEDS_SITE);
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 2 || PyTuple_GET_ITEM(entry, 0) != args[1])
        return PyLong_FromLong(NEEDS_SITE);
    PyObject *key[2] = {args[0], PyTuple_GET_ITEM(entry, 1)};
    TRACEHANDLE h;
    const site_program *s = site_args(key, &h);
    if (!s) return NULL;
    return write_slots(s, h, args + 2, args[6]);
}

static PyMethodDef write_by_format_def = {
    "write", (PyCFunction)(void (*)(void))py_write_by_format, METH_FASTCALL,
    "write(handle, fmt, a0, a1, a2, a3, more) -> Win32 code, NEEDS_CHECKER (-1) or NEEDS_SITE (-2)"};

static PyObject *py_site_writer(PyObject *self, PyObject *by_format) {
    (void)self;
    if (!PyDict_CheckExact(by_format)) {
        PyErr_SetString(PyExc_TypeError, "site_writer(by_format: dict)");
        return NULL;
    }
    return PyCFunction_New(&write_by_format_def, by_format);
}

static void *address_of(PyObject *o) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if (!v) PyErr_SetString(PyExc_ValueError, "a NULL core function");
    return (void *)(uintptr_t)v;
}

static PyObject *py_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "bind(trace_packed_address, trace_args_address, missing)");
        return NULL;
    }
    void *packed = address_of(args[0]);
    if (!packed) return NULL;
    void *targs = address_of(args[1]);
    if (!targs) return NULL;
    core_trace_packed = (trace_packed_fn)packed;
    core_trace_args = (trace_args_fn)targs;
    Py_INCREF(args[2]);
    Py_XSETREF(g_missing, args[2]);
    Py_RETURN_NONE;
}

static PyMethodDef fastpath_methods[] = {
    {"trace_packed", (PyCFunction)(void (*)(void))py_trace_packed, METH_FASTCALL,
     "trace_packed(handle, flags, guid_le|None, number, payload) -> Win32 code (never raises for Win32 failures)"},
    {"trace_message", (PyCFunction)(void (*)(void))py_trace_message, METH_FASTCALL,
     "trace_message(handle, flags, guid_le|None, number, *byte_args) -> Win32 code"},
    {"register_site", (PyCFunction)(void (*)(void))py_register_site, METH_FASTCALL,
     "register_site(guid_le, number, flags, codes, converters) -> site id"},
    {"trace_site", (PyCFunction)(void (*)(void))py_trace_site, METH_FASTCALL,
     "trace_site(handle, site_id, args) -> Win32 code, or -1 when Python's checker must pack"},
    {"trace_site_slots", (PyCFunction)(void (*)(void))py_trace_site_slots, METH_FASTCALL,
     "trace_site_slots(handle, site_id, a0, a1, a2, a3, more) -> as trace_site, slots ending at the MISSING marker"},
    {"site_writer", py_site_writer, METH_O,
     "site_writer(by_format) -> write(handle, fmt, a0, a1, a2, a3, more), looking the site up by the format object"},
    {"bind", (PyCFunction)(void (*)(void))py_bind, METH_FASTCALL,
     "bind(trace_packed_address, trace_args_address, missing): connect to wpptrace._core"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT, "wpptrace._fastpath",
    "METH_FASTCALL builtins writing TraceMessage records (see provider/fastpath.py)", -1,
    fastpath_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    g_bytes_le = PyUnicode_InternFromString("bytes_le");
    if (!g_bytes_le) return NULL;
    return PyModule_Create(&fastpath_module);
}
