/* fastpath.c: the wpptrace._fastpath extension: the Provider's level methods in C, and
 * METH_FASTCALL builtins that write TraceMessage records from Python.
 *
 * cffi calls cost about 0.3 us each (GIL release, errno save, argument conversion), more than
 * writing the record. This module keeps the GIL (the core's logging path is lock-free and
 * short), takes Python objects directly and ends in the same core entries as the cffi path
 * (wpptrace_trace_packed / wpptrace_trace_args of wpptrace._core), so records are byte-identical.
 *
 * It uses CPython's full (non-limited) API, so it is built for one interpreter version (its file
 * name carries the version tag); wpptrace._core stays on the limited API. The core is reached
 * through function pointers that provider/fastpath.py takes from _core's cffi library and passes
 * to bind(): one copy of the core's state, shared by both modules.
 *
 * provider_type() makes the class wpptrace.provider.Provider: its Python methods and the level
 * methods in C (critical, fatal, error, warning, info, verbose, debug: (flag, fmt, *args); log:
 * (level, flag, fmt, *args)). A call
 *   1. tests the enable state (session handle, level, flag bits) and returns if disabled;
 *   2. finds its call site by the calling frame's code object and instruction offset in a
 *      per-provider table that Python fills (_cache_site) after resolving the site once, and
 *      empties of a code object (_forget_code) as the code object is freed;
 *   3. packs the values by the site's program and writes the record.
 * Anything else (site not cached yet, a value the program does not take, a non-int flag) goes to
 * the Python method self._trace(level, method, flag, fmt, args, code, lasti, globals), which
 * resolves, packs with the validating encoders, writes, or drops and counts.
 *
 * Builtins:
 *   bind(trace_packed_address, trace_args_address, raised_by_signal_handler): connect to the
 *       core (once), and to the check of which failed conversions are the application's
 *   trace_packed(handle, flags, guid_le|None, number, payload) -> Win32 code
 *   trace_message(handle, flags, guid_le|None, number, *byte_args) -> Win32 code
 *       (an int out of its C type's range: ERROR_INVALID_PARAMETER, nothing written; they run
 *       in the traced application, so only a value of the wrong type raises: TypeError)
 *   register_site(guid_le|None, number, flags, codes, converters) -> site id
 *   trace_site(handle, site_id, args_tuple) -> Win32 code, or -1 (NEEDS_CHECKER): a value did
 *       not take the program's form; nothing was written (a handle out of range, as above).
 *   provider_type(name, base) -> the provider class (see above).
 *   stack_room() -> bytes of C stack left below the calling thread's current frame, or None
 *       where the system does not say (the scan of a source checks it first: CPython's parser
 *       and compiler recurse on the C stack, and a thread made with a small stack size would
 *       crash in them on a deeply nested source).
 *
 * A site's program is one type code per argument:
 *   b h i q  signed 8/16/32/64-bit int        B H I Q  unsigned 8/16/32/64-bit int
 *   n        64-bit int of either signedness (-2**63 .. 2**64-1, two's complement)
 *   d        double (float or int)            s        str -> UTF-8 + NUL
 *   S        str() of the value -> UTF-16LE + NUL (lone surrogates as their code units)
 *   g        object with .bytes_le (16 bytes)
 *   o        converters[i](value) -> bytes (types encoded in Python: SID, IP, counted strings ...)
 * Integers take int objects only, 's' exact str only: other values go to Python, which applies
 * Python's own conversions (int() of a float for %d ...) and writes the same bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <structmember.h>
#include <stdint.h>
#include <string.h>
#if PY_VERSION_HEX < 0x030B0000
#include <frameobject.h>
#endif
#include "wpptrace_etw.h"

#define NEEDS_CHECKER (-1)        /* "not packed: let Python's encoders pack it" */
#define NO_MEMORY     (-3)
#define APP_EXCEPTION (-4)        /* KeyboardInterrupt, SystemExit ...: set, for the caller */
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
static PyObject *g_trace;         /* interned "_trace" */
static PyObject *g_signal_check;  /* raised_by_signal_handler(exc) -> bool, from bind() */

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

/* An int argument of a TraceMessage call (the handle, flags, message number) read up to `max`:
 * 1 read, 0 out of range (ERROR_INVALID_PARAMETER for the caller to return: the call runs in
 * the traced application, which an OverflowError would reach), -1 not an int (TypeError set). */
static int get_arg(PyObject *o, unsigned long long max, unsigned long long *out) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) return -1;
        PyErr_Clear();      /* negative, or above 64 bits */
        return 0;
    }
    if (v > max) return 0;
    *out = v;
    return 1;
}

static int not_bound(void) {
    PyErr_SetString(PyExc_RuntimeError, "wpptrace._fastpath is not bound to the core");
    return -1;
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

enum { SIGNED, UNSIGNED, EITHER };

/* Did the application's signal handler raise the exception set now? (Python decides:
 * tracing_interrupts.raised_by_signal_handler, given to bind().) The exception stays set. */
static int raised_by_signal_handler(void) {
    if (!g_signal_check) return 0;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
    PyObject *r = PyObject_CallOneArg(g_signal_check, exc);
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (tb) PyException_SetTraceback(exc, tb);
    PyObject *r = PyObject_CallOneArg(g_signal_check, exc);
#endif
    int yes = r == Py_True;
    if (r) Py_DECREF(r);
    else PyErr_Clear();       /* the check failed: the conversion's failure decides */
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    PyErr_Restore(type, exc, tb);
#endif
    return yes;
}

/* A value's own conversion (str(), a converter, .bytes_le) failed. An Exception is Python's to
 * report: 0, the Python path converts again and drops the call or raises naming the site. A
 * KeyboardInterrupt or SystemExit raised meanwhile belongs to the application, as with logging,
 * and so does what the application's signal handler raised there (a deadline ...): it stays
 * set (-2). */
static int conversion_failed(void) {
    if (PyErr_ExceptionMatches(PyExc_Exception) && !raised_by_signal_handler()) {
        PyErr_Clear();
        return 0;
    }
    return -2;
}

/* Integers: 1 = written, 0 = does not fit / not an int (Python decides), -1 no memory. */
static int put_int(payload_buf *b, PyObject *v, int size, int mode) {
    if (!PyLong_Check(v)) return 0;
    unsigned long long bits;
    int overflow = 0;
    long long s = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (s == -1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    if (overflow > 0 && size == 8 && mode != SIGNED) {
        bits = PyLong_AsUnsignedLongLong(v);
        if (bits == (unsigned long long)-1 && PyErr_Occurred()) { PyErr_Clear(); return 0; }
    } else {
        if (overflow) return 0;
        if (size < 8) {
            long long lo = mode == UNSIGNED ? 0 : -(1LL << (8 * size - 1));
            long long hi = mode == SIGNED ? (1LL << (8 * size - 1)) - 1 : (1LL << (8 * size)) - 1;
            if (s < lo || s > hi) return 0;
        } else if (mode == UNSIGNED && s < 0) {
            return 0;
        }
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
    if (!PyUnicode_CheckExact(v)) return 0;        /* a subclass may have its own __str__ */
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (!s) { PyErr_Clear(); return 0; }           /* lone surrogates: Python says so */
    if (memchr(s, 0, (size_t)n)) return 0;          /* NUL cannot travel NUL-terminated */
    unsigned char *at = buf_room(b, (size_t)n + 1);
    if (!at) return -1;
    memcpy(at, s, (size_t)n);
    at[n] = 0;
    return 1;
}

static int put_utf16_str(payload_buf *b, PyObject *v) {
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
    size_t start = b->len;
    unsigned char *at = buf_room(b, 2 * units + 2);
    if (!at) return -1;
    if (kind == PyUnicode_1BYTE_KIND) {
        const Py_UCS1 *c = data;
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!c[i]) { b->len = start; return 0; }            /* NUL */
            at[2 * i] = c[i];
            at[2 * i + 1] = 0;
        }
        at += 2 * n;
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c == 0) { b->len = start; return 0; }
            if (c > 0xFFFF) {
                c -= 0x10000;
                unsigned hi = 0xD800 | (c >> 10), lo = 0xDC00 | (c & 0x3FF);
                *at++ = (unsigned char)hi; *at++ = (unsigned char)(hi >> 8);
                *at++ = (unsigned char)lo; *at++ = (unsigned char)(lo >> 8);
            } else {   /* lone surrogates travel as the code units Python holds */
                *at++ = (unsigned char)c; *at++ = (unsigned char)(c >> 8);
            }
        }
    }
    at[0] = at[1] = 0;
    return 1;
}

/* %s: str() of any value, as Python's % does (a str subclass may have its own __str__). */
static int put_utf16(payload_buf *b, PyObject *v) {
    if (PyUnicode_CheckExact(v)) return put_utf16_str(b, v);
    PyObject *text = PyObject_Str(v);
    if (!text) return conversion_failed();     /* Python calls it again and reports the error */
    int rc = PyUnicode_Check(text) ? put_utf16_str(b, text) : 0;
    Py_DECREF(text);
    return rc;
}

static int put_bytes_of(payload_buf *b, PyObject *encoded) {
    if (!encoded) return conversion_failed();
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

/* Pack `values` by the site's program and write the record: the Win32 code, NEEDS_CHECKER
 * (nothing written), NO_MEMORY (MemoryError set) or APP_EXCEPTION (the application's exception
 * set). */
static long pack_write(const site_program *s, TRACEHANDLE h, PyObject *const *values, Py_ssize_t n) {
    if (n != s->nargs) return NEEDS_CHECKER;
    payload_buf b;
    buf_init(&b);
    int ok = 1;
    for (Py_ssize_t i = 0; i < n && ok == 1; i++) {
        PyObject *v = values[i];
        switch (s->codes[i]) {
        case 'b': ok = put_int(&b, v, 1, SIGNED); break;
        case 'h': ok = put_int(&b, v, 2, SIGNED); break;
        case 'i': ok = put_int(&b, v, 4, SIGNED); break;
        case 'q': ok = put_int(&b, v, 8, SIGNED); break;
        case 'B': ok = put_int(&b, v, 1, UNSIGNED); break;
        case 'H': ok = put_int(&b, v, 2, UNSIGNED); break;
        case 'I': ok = put_int(&b, v, 4, UNSIGNED); break;
        case 'Q': ok = put_int(&b, v, 8, UNSIGNED); break;
        case 'n': ok = put_int(&b, v, 8, EITHER); break;
        case 'd': ok = put_double(&b, v); break;
        case 's': ok = put_utf8(&b, v); break;
        case 'S': ok = put_utf16(&b, v); break;
        case 'g': ok = put_guid(&b, v); break;
        default:  ok = put_bytes_of(&b, PyObject_CallOneArg(PyTuple_GET_ITEM(s->converters, i), v));
        }
    }
    long rc;
    if (ok == -2) rc = APP_EXCEPTION;
    else if (ok < 0) { PyErr_NoMemory(); rc = NO_MEMORY; }
    else if (ok == 0) rc = NEEDS_CHECKER;
    else rc = (long)core_trace_packed(h, s->flags, s->has_guid ? (const char *)s->guid : NULL,
                                      s->number, (const char *)b.p, b.len);
    buf_free(&b);
    return rc;
}

/* ---- builtins ------------------------------------------------------------------------------- */

static PyObject *py_trace_message(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs < 4) {
        PyErr_SetString(PyExc_TypeError, "trace_message(handle, flags, guid_le, number, *byte_args)");
        return NULL;
    }
    if (!core_trace_args) return not_bound(), NULL;
    unsigned long long h = 0, flags = 0, number = 0;
    const char *guid;
    /* Each read is checked before the next: a TypeError left set would meet the next read's
     * OverflowError, which get_arg clears (NULL with no exception: SystemError). */
    int read_h, read_flags, read_number;
    if ((read_h = get_arg(args[0], ~0ull, &h)) < 0) return NULL;
    if ((read_flags = get_arg(args[1], 0xFFFFFFFFull, &flags)) < 0) return NULL;
    if ((read_number = get_arg(args[3], 0xFFFFull, &number)) < 0) return NULL;
    int g = get_guid(args[2], &guid);
    if (g < 0) return NULL;
    if (g == 0 || !read_h || !read_flags || !read_number) {
        /* A value of the wrong type is a TypeError whatever else is wrong (checked only here,
         * on the refusal's path: the call's own loop below meets it otherwise). */
        for (Py_ssize_t i = 4; i < nargs; i++)
            if (!PyObject_CheckBuffer(args[i])) {
                PyErr_Format(PyExc_TypeError, "a bytes-like object is required, not '%.100s'",
                             Py_TYPE(args[i])->tp_name);
                return NULL;
            }
        return PyLong_FromLong(ERROR_INVALID_PARAMETER);
    }
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
    result = PyLong_FromUnsignedLong(core_trace_args((TRACEHANDLE)h, (ULONG)flags, (LPCGUID)(const void *)guid,
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
        if (codes[i] == 0 || !strchr("bhiqBHIQndsSgo", codes[i])) {
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

static const site_program *site_of(PyObject *id_obj) {
    Py_ssize_t id = PyLong_AsSsize_t(id_obj);
    if (id == -1 && PyErr_Occurred()) return NULL;
    if (id < 0 || id >= g_nsites) {
        PyErr_SetString(PyExc_ValueError, "unknown site id");
        return NULL;
    }
    return g_sites[id];
}

static PyObject *py_trace_site(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyTuple_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "trace_site(handle, site_id, args: tuple)");
        return NULL;
    }
    if (!core_trace_packed) return not_bound(), NULL;
    unsigned long long h = 0;
    int read_h = get_arg(args[0], ~0ull, &h);
    if (read_h < 0) return NULL;
    const site_program *s = site_of(args[1]);
    if (!s) return NULL;
    if (!read_h) return PyLong_FromLong(ERROR_INVALID_PARAMETER);
    long rc = pack_write(s, (TRACEHANDLE)h, &PyTuple_GET_ITEM(args[2], 0), PyTuple_GET_SIZE(args[2]));
    return rc == NO_MEMORY || rc == APP_EXCEPTION ? NULL : PyLong_FromLong(rc);
}

static void *address_of(PyObject *o) {
    unsigned long long v = PyLong_AsUnsignedLongLong(o);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) return NULL;
    if (!v) PyErr_SetString(PyExc_ValueError, "a NULL core function");
    return (void *)(uintptr_t)v;
}

static PyObject *py_bind(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "bind(trace_packed_address, trace_args_address, raised_by_signal_handler)");
        return NULL;
    }
    void *packed = address_of(args[0]);
    if (!packed) return NULL;
    void *targs = address_of(args[1]);
    if (!targs) return NULL;
    core_trace_packed = (trace_packed_fn)packed;
    core_trace_args = (trace_args_fn)targs;
    Py_INCREF(args[2]);
    Py_XSETREF(g_signal_check, args[2]);
    Py_RETURN_NONE;
}

/* ---- ProviderCore: the level methods -------------------------------------------------------- */

/* The site cache: (code object, instruction offset) -> site id, open addressing (linear
 * probing). The table holds no reference to a code object (code compiled again, as a reload
 * does, would be kept for the life of the provider): Python keeps a weak reference to each one
 * cached, whose callback forgets its entries (_forget_code) as the object is freed, before its
 * address can be another object's. */
typedef struct {
    PyObject *code;               /* borrowed; NULL: empty slot */
    int lasti;
    int site;
} cache_slot;

/* 3.12+: the instance dict and weak references are the interpreter's (managed), so attribute
 * and method lookups on a provider get the same specialisations as on Python objects. */
#if PY_VERSION_HEX >= 0x030C0000
#define MANAGED_DICT 1
#else
#define MANAGED_DICT 0
#endif

typedef struct {
    PyObject_HEAD
#if !MANAGED_DICT
    PyObject *dict;               /* the Python attributes of the provider */
    PyObject *weakrefs;
#endif
    TRACEHANDLE handle;           /* 0: not enabled */
    unsigned int flags;           /* enable flags */
    unsigned int level;           /* enable level (0: every level) */
    unsigned long long events_dropped;
    unsigned int last_error;
    cache_slot *slots;
    Py_ssize_t cap, used;
    unsigned long long forget_visits;   /* slots looked at forgetting freed code objects (their cost) */
} ProviderCore;

static size_t slot_hash(PyObject *code, int lasti) {
    size_t h = (size_t)(uintptr_t)code >> 4;
    h ^= (size_t)(unsigned)lasti * 0x9E3779B1u;
    return h ^ (h >> 15);
}

static int cache_find(const ProviderCore *self, PyObject *code, int lasti) {
    if (!self->cap) return -1;
    size_t mask = (size_t)self->cap - 1;
    for (size_t i = slot_hash(code, lasti) & mask;; i = (i + 1) & mask) {
        const cache_slot *s = &self->slots[i];
        if (!s->code) return -1;
        if (s->code == code && s->lasti == lasti) return s->site;
    }
}

static void cache_put_slot(cache_slot *slots, Py_ssize_t cap, PyObject *code, int lasti, int site) {
    size_t mask = (size_t)cap - 1;
    size_t i = slot_hash(code, lasti) & mask;
    while (slots[i].code && !(slots[i].code == code && slots[i].lasti == lasti)) i = (i + 1) & mask;
    slots[i].code = code;
    slots[i].lasti = lasti;
    slots[i].site = site;
}

static int cache_put(ProviderCore *self, PyObject *code, int lasti, int site) {
    if (2 * (self->used + 1) > self->cap) {
        Py_ssize_t cap = self->cap ? 2 * self->cap : 64;
        cache_slot *grown = PyMem_Calloc((size_t)cap, sizeof *grown);
        if (!grown) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < self->cap; i++)
            if (self->slots[i].code)
                cache_put_slot(grown, cap, self->slots[i].code, self->slots[i].lasti, self->slots[i].site);
        PyMem_Free(self->slots);
        self->slots = grown;
        self->cap = cap;
    }
    if (cache_find(self, code, lasti) < 0) self->used++;
    cache_put_slot(self->slots, self->cap, code, lasti, site);
    return 0;
}

/* The entry (code, lasti) removed, in place (no allocation: it runs as the code object is
 * freed): found from its hash, and the slot emptied filled again from the entries after it that
 * probed past it, so the cost is that of its cluster, not of the table. */
static void cache_forget(ProviderCore *self, const void *code, int lasti) {
    if (!self->cap) return;
    size_t mask = (size_t)self->cap - 1;
    size_t hole = slot_hash((PyObject *)code, lasti) & mask;
    for (;; hole = (hole + 1) & mask) {
        self->forget_visits++;
        if (!self->slots[hole].code) return;   /* not cached */
        if (self->slots[hole].code == code && self->slots[hole].lasti == lasti) break;
    }
    for (size_t j = (hole + 1) & mask; self->slots[j].code; j = (j + 1) & mask) {
        self->forget_visits++;
        size_t home = slot_hash(self->slots[j].code, self->slots[j].lasti) & mask;
        /* the entry at j stays if its home lies cyclically in (hole, j] */
        int stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
        if (stays) continue;
        self->slots[hole] = self->slots[j];
        hole = j;
    }
    self->slots[hole].code = NULL;
    self->used--;
}

static void cache_clear(ProviderCore *self) {
    cache_slot *slots = self->slots;
    self->slots = NULL;
    self->cap = self->used = 0;
    PyMem_Free(slots);
}

/* The calling Python frame's code object (borrowed) and instruction offset in bytes, as
 * frame.f_lasti gives it; NULL if there is no Python caller. */
static PyObject *caller_code(int *lasti, PyFrameObject **frame_out) {
    PyFrameObject *frame = PyEval_GetFrame();   /* borrowed */
    if (!frame) return NULL;
    *frame_out = frame;
#if PY_VERSION_HEX >= 0x030B0000
    PyCodeObject *code = PyFrame_GetCode(frame);   /* new reference; the frame keeps it alive */
    Py_DECREF(code);
    *lasti = PyFrame_GetLasti(frame);
#else
    PyCodeObject *code = frame->f_code;
    *lasti = frame->f_lasti * (int)sizeof(_Py_CODEUNIT);
#endif
    return (PyObject *)code;
}

/* The Python side failed for want of room: no memory, or no stack left for its frames (a call
 * made near the recursion limit). That is the process's state, not the call's fault: the event
 * is lost and counted, as when the buffers are full, and the application never sees the
 * exception (nor in strict mode, which is about calls that cannot be written). Anything else
 * (strict mode's error, KeyboardInterrupt ...) stays set for the caller. */
static PyObject *lost_for_room(ProviderCore *self) {
    if (!PyErr_ExceptionMatches(PyExc_MemoryError) && !PyErr_ExceptionMatches(PyExc_RecursionError))
        return NULL;
    PyErr_Clear();
    self->events_dropped++;
    self->last_error = ERROR_NOT_ENOUGH_MEMORY;
    Py_RETURN_NONE;
}

/* Hand the call to Python: self._trace(level, method, flag, fmt, args, code, lasti, globals). */
static PyObject *to_python(ProviderCore *self, PyObject *level, PyObject *method, PyObject *const *args,
                           Py_ssize_t nargs, Py_ssize_t fixed) {
    PyFrameObject *frame = NULL;
    int lasti = -1;
    PyObject *code = caller_code(&lasti, &frame);
    if (!code) Py_RETURN_NONE;   /* called from C with no Python frame: no call site */
    PyObject *flag = nargs > fixed - 2 ? args[fixed - 2] : Py_None;
    PyObject *fmt = nargs > fixed - 1 ? args[fixed - 1] : Py_None;
    PyObject *rest = PyTuple_New(nargs > fixed ? nargs - fixed : 0);
    if (!rest) return lost_for_room(self);
    for (Py_ssize_t i = fixed; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(rest, i - fixed, args[i]);
    }
    PyObject *lasti_obj = PyLong_FromLong(lasti);
    PyObject *globals = PyEval_GetGlobals();   /* borrowed */
    PyObject *result = NULL;
    if (lasti_obj)
        result = PyObject_CallMethodObjArgs((PyObject *)self, g_trace, level, method, flag, fmt, rest, code,
                                            lasti_obj, globals ? globals : Py_None, NULL);
    Py_DECREF(rest);
    Py_XDECREF(lasti_obj);
    return result ? result : lost_for_room(self);
}

/* One level method call: args are (flag, fmt, values...) after `fixed - 2` leading arguments
 * (log's level). */
static PyObject *level_call(ProviderCore *self, unsigned level, PyObject *level_obj, PyObject *method,
                            PyObject *const *args, Py_ssize_t nargs, Py_ssize_t fixed) {
    if (!self->handle || (self->level && level > self->level)) Py_RETURN_NONE;   /* disabled */
    if (nargs < fixed - 1 || !PyLong_Check(args[fixed - 2]))
        return to_python(self, level_obj, method, args, nargs, fixed);   /* Python reports it */
    unsigned long flag = PyLong_AsUnsignedLongMask(args[fixed - 2]);
    if (flag == (unsigned long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        return to_python(self, level_obj, method, args, nargs, fixed);
    }
    if (!(flag & self->flags)) Py_RETURN_NONE;                                      /* disabled */
    PyFrameObject *frame = NULL;
    int lasti = -1;
    PyObject *code = caller_code(&lasti, &frame);
    if (!code) Py_RETURN_NONE;
    int site = cache_find(self, code, lasti);
    if (site < 0 || !core_trace_packed)
        return to_python(self, level_obj, method, args, nargs, fixed);
    long rc = pack_write(g_sites[site], self->handle, args + fixed, nargs - fixed);
    if (rc == NEEDS_CHECKER)
        return to_python(self, level_obj, method, args, nargs, fixed);
    if (rc == APP_EXCEPTION)
        return NULL;
    if (rc == NO_MEMORY) {
        PyErr_Clear();   /* never into the application: the event is lost, as a full buffer */
        rc = ERROR_NOT_ENOUGH_MEMORY;
    }
    if (rc) {
        self->events_dropped++;
        self->last_error = (unsigned int)rc;
    }
    Py_RETURN_NONE;
}

static PyObject *g_level_objs[6];      /* 0..5 as Python ints */
static PyObject *g_method_names[8];    /* interned method names */

#define LEVEL_METHOD(fname, index, lvl)                                                          \
    static PyObject *core_##fname(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {    \
        return level_call((ProviderCore *)self, lvl, g_level_objs[lvl], g_method_names[index],  \
                          args, nargs, 2);                                                        \
    }
LEVEL_METHOD(critical, 0, 1)
LEVEL_METHOD(fatal, 1, 1)
LEVEL_METHOD(error, 2, 2)
LEVEL_METHOD(warning, 3, 3)
LEVEL_METHOD(info, 4, 4)
LEVEL_METHOD(verbose, 5, 5)
LEVEL_METHOD(debug, 6, 5)

static PyObject *core_log(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    ProviderCore *self = (ProviderCore *)op;
    if (!self->handle) Py_RETURN_NONE;
    if (nargs < 1 || !PyLong_Check(args[0]))
        return to_python(self, nargs ? args[0] : Py_None, g_method_names[7], args, nargs, 3);
    unsigned long level = PyLong_AsUnsignedLongMask(args[0]) & 0xFF;
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return to_python(self, args[0], g_method_names[7], args, nargs, 3);
    }
    return level_call(self, (unsigned)level, args[0], g_method_names[7], args, nargs, 3);
}

static PyObject *core_set_state(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    ProviderCore *self = (ProviderCore *)op;
    TRACEHANDLE h;
    unsigned long flags, level;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "_set_core_state(handle, flags, level)");
        return NULL;
    }
    if (get_handle(args[0], &h) || get_u32(args[1], 0xFFFFFFFFul, &flags, "flags")
        || get_u32(args[2], 0xFFul, &level, "level"))
        return NULL;
    self->handle = h;
    self->flags = (unsigned)flags;
    self->level = (unsigned)level;
    Py_RETURN_NONE;
}

static PyObject *core_cache_site(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    ProviderCore *self = (ProviderCore *)op;
    if (nargs != 3 || !PyCode_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "_cache_site(code, lasti, site_id)");
        return NULL;
    }
    long lasti = PyLong_AsLong(args[1]);
    if (lasti == -1 && PyErr_Occurred()) return NULL;
    if (!site_of(args[2])) return NULL;
    if (cache_put(self, args[0], (int)lasti, (int)PyLong_AsLong(args[2])) < 0) return NULL;
    Py_RETURN_NONE;
}

static PyObject *core_forget_code(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyTuple_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "_forget_code(code_id, lastis: tuple)");
        return NULL;
    }
    void *code = PyLong_AsVoidPtr(args[0]);
    if (!code && PyErr_Occurred()) return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args[1]); i++) {
        long lasti = PyLong_AsLong(PyTuple_GET_ITEM(args[1], i));
        if (lasti == -1 && PyErr_Occurred()) return NULL;
        cache_forget((ProviderCore *)op, code, (int)lasti);
    }
    Py_RETURN_NONE;
}

static PyObject *core_clear_sites(PyObject *op, PyObject *unused) {
    (void)unused;
    cache_clear((ProviderCore *)op);
    Py_RETURN_NONE;
}

#if PY_VERSION_HEX >= 0x030D0000
#define VISIT_MANAGED_DICT PyObject_VisitManagedDict
#define CLEAR_MANAGED_DICT PyObject_ClearManagedDict
#elif MANAGED_DICT
#define VISIT_MANAGED_DICT _PyObject_VisitManagedDict
#define CLEAR_MANAGED_DICT _PyObject_ClearManagedDict
#endif

static int core_traverse(PyObject *op, visitproc visit, void *arg) {
    ProviderCore *self = (ProviderCore *)op;
    Py_VISIT(Py_TYPE(op));
#if MANAGED_DICT
    int rc = VISIT_MANAGED_DICT(op, visit, arg);
    if (rc) return rc;
#else
    Py_VISIT(self->dict);
#endif
    (void)self;
    return 0;
}

static int core_clear(PyObject *op) {
    ProviderCore *self = (ProviderCore *)op;
#if MANAGED_DICT
    CLEAR_MANAGED_DICT(op);
#else
    Py_CLEAR(self->dict);
#endif
    cache_clear(self);
    return 0;
}

static void core_dealloc(PyObject *op) {
    PyTypeObject *tp = Py_TYPE(op);
    PyObject_GC_UnTrack(op);
#if MANAGED_DICT
    PyObject_ClearWeakRefs(op);
#else
    if (((ProviderCore *)op)->weakrefs) PyObject_ClearWeakRefs(op);
#endif
    core_clear(op);
    tp->tp_free(op);
    Py_DECREF(tp);
}

#define LEVEL_DOC(name, lvl) name "(flag, fmt, *args): trace at level " #lvl " if flag is enabled"
static PyMethodDef core_methods[] = {
    {"critical", (PyCFunction)(void (*)(void))core_critical, METH_FASTCALL, LEVEL_DOC("critical", 1)},
    {"fatal", (PyCFunction)(void (*)(void))core_fatal, METH_FASTCALL, LEVEL_DOC("fatal", 1)},
    {"error", (PyCFunction)(void (*)(void))core_error, METH_FASTCALL, LEVEL_DOC("error", 2)},
    {"warning", (PyCFunction)(void (*)(void))core_warning, METH_FASTCALL, LEVEL_DOC("warning", 3)},
    {"info", (PyCFunction)(void (*)(void))core_info, METH_FASTCALL, LEVEL_DOC("info", 4)},
    {"verbose", (PyCFunction)(void (*)(void))core_verbose, METH_FASTCALL, LEVEL_DOC("verbose", 5)},
    {"debug", (PyCFunction)(void (*)(void))core_debug, METH_FASTCALL, LEVEL_DOC("debug", 5)},
    {"log", (PyCFunction)(void (*)(void))core_log, METH_FASTCALL,
     "log(level, flag, fmt, *args): trace at the given level if flag is enabled"},
    {"_set_core_state", (PyCFunction)(void (*)(void))core_set_state, METH_FASTCALL,
     "_set_core_state(handle, flags, level): the enable state the level methods test"},
    {"_cache_site", (PyCFunction)(void (*)(void))core_cache_site, METH_FASTCALL,
     "_cache_site(code, lasti, site_id): calls at this code object and offset write this site"},
    {"_forget_code", (PyCFunction)(void (*)(void))core_forget_code, METH_FASTCALL,
     "_forget_code(id(code), lastis): forget the sites cached for a code object being freed"},
    {"_clear_sites", core_clear_sites, METH_NOARGS, "_clear_sites(): forget the cached call sites"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef core_members[] = {
    {"events_dropped", T_ULONGLONG, offsetof(ProviderCore, events_dropped), 0,
     "events the session refused (no free buffer, larger than a buffer) or lost for want of memory or stack"},
    {"last_error", T_UINT, offsetof(ProviderCore, last_error), 0, "the last refusal's Win32 code"},
    {"_cache_entries", T_PYSSIZET, offsetof(ProviderCore, used), READONLY, "call sites in the C methods' cache"},
    {"_forget_visits", T_ULONGLONG, offsetof(ProviderCore, forget_visits), READONLY,
     "cache slots looked at forgetting freed code objects (the cost of forgetting, for tests)"},
#if !MANAGED_DICT
    {"__dictoffset__", T_PYSSIZET, offsetof(ProviderCore, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(ProviderCore, weakrefs), READONLY, NULL},
#endif
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef core_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyType_Slot core_slots[] = {
    {Py_tp_methods, core_methods},
    {Py_tp_members, core_members},
    {Py_tp_getset, core_getset},
    {Py_tp_traverse, core_traverse},
    {Py_tp_clear, core_clear},
    {Py_tp_dealloc, core_dealloc},
    {0, NULL},
};

/* provider_type(name, base) -> the provider class: `base` (a Python class with __slots__ = (),
 * holding the Python methods) plus the C level methods, the enable state and the site cache.
 * The level methods are defined on the class its instances have, so CPython's call
 * specialisation for C methods (which wants the exact type) applies to `trace.info(...)`. */
static PyObject *py_stack_room(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    (void)args;
    if (nargs != 0) {
        PyErr_SetString(PyExc_TypeError, "stack_room() takes no arguments");
        return NULL;
    }
    pthread_attr_t attr;
    void *low = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) != 0) Py_RETURN_NONE;
    int rc = pthread_attr_getstack(&attr, &low, &size);
    pthread_attr_destroy(&attr);
    /* The stack grows down on every platform this builds for: what is left lies between the
     * current frame and the lowest usable address (the guard page is below it). */
    volatile char here = 0;
    uintptr_t sp = (uintptr_t)&here, base = (uintptr_t)low;
    if (rc != 0 || sp < base || sp - base > size) Py_RETURN_NONE;
    return PyLong_FromSize_t((size_t)(sp - base));
}

static PyObject *py_provider_type(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyUnicode_Check(args[0]) || !PyType_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "provider_type(name: str, base: type)");
        return NULL;
    }
    Py_ssize_t n;
    const char *name = PyUnicode_AsUTF8AndSize(args[0], &n);
    if (!name) return NULL;
    char *kept = PyMem_Malloc((size_t)n + 1);   /* tp_name points here for the type's lifetime */
    if (!kept) return PyErr_NoMemory();
    memcpy(kept, name, (size_t)n + 1);
    unsigned int flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
#if MANAGED_DICT
    flags |= Py_TPFLAGS_MANAGED_DICT | Py_TPFLAGS_MANAGED_WEAKREF;
#endif
    PyType_Spec spec = {kept, sizeof(ProviderCore), 0, flags, core_slots};
    PyObject *bases = PyTuple_Pack(1, args[1]);
    if (!bases) return NULL;
    PyObject *type = PyType_FromSpecWithBases(&spec, bases);
    Py_DECREF(bases);
    return type;
}

/* ---- module ----------------------------------------------------------------------------------- */

static PyMethodDef fastpath_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))py_bind, METH_FASTCALL,
     "bind(trace_packed_address, trace_args_address, raised_by_signal_handler): connect to wpptrace._core"},
    {"trace_packed", (PyCFunction)(void (*)(void))py_trace_packed, METH_FASTCALL,
     "trace_packed(handle, flags, guid_le|None, number, payload) -> Win32 code (never raises for Win32 failures)"},
    {"trace_message", (PyCFunction)(void (*)(void))py_trace_message, METH_FASTCALL,
     "trace_message(handle, flags, guid_le|None, number, *byte_args) -> Win32 code"},
    {"register_site", (PyCFunction)(void (*)(void))py_register_site, METH_FASTCALL,
     "register_site(guid_le, number, flags, codes, converters) -> site id"},
    {"trace_site", (PyCFunction)(void (*)(void))py_trace_site, METH_FASTCALL,
     "trace_site(handle, site_id, args) -> Win32 code, or -1 when Python's encoders must pack"},
    {"provider_type", (PyCFunction)(void (*)(void))py_provider_type, METH_FASTCALL,
     "provider_type(name, base) -> the provider class: base's Python methods and the C level methods"},
    {"stack_room", (PyCFunction)(void (*)(void))py_stack_room, METH_FASTCALL,
     "stack_room() -> bytes of C stack left to the calling thread, or None where unknown"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef fastpath_module = {
    PyModuleDef_HEAD_INIT, "wpptrace._fastpath",
    "The Provider's level methods and TraceMessage builtins in C (see provider/fastpath.py)", -1,
    fastpath_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void) {
    static const char *names[8] = {"critical", "fatal", "error", "warning", "info", "verbose", "debug", "log"};
    g_bytes_le = PyUnicode_InternFromString("bytes_le");
    g_trace = PyUnicode_InternFromString("_trace");
    if (!g_bytes_le || !g_trace) return NULL;
    for (int i = 0; i < 8; i++)
        if (!(g_method_names[i] = PyUnicode_InternFromString(names[i]))) return NULL;
    for (int i = 0; i < 6; i++)
        if (!(g_level_objs[i] = PyLong_FromLong(i))) return NULL;
    return PyModule_Create(&fastpath_module);
}
