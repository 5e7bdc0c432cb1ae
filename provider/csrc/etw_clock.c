/* etw_clock.c: clocks, process facts (tid/pid/CPU count/boot time, liveness), UTF-8/UTF-16
 * text, and the allocation-failure injection tests use. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "_utf8.h"

#ifdef WPT_TEST_POINTS
int64_t wpt_wall_shift_ns;
uint64_t (*wpt_test_cycles)(void);
double wpt_test_cycles_per_ns;
#define WALL_SHIFT_NS wpt_wall_shift_ns
#else
#define WALL_SHIFT_NS 0
#endif

static int64_t ns_of(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    int64_t ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    return clock == CLOCK_REALTIME ? ns + WALL_SHIFT_NS : ns;
}

/* ns -> 100 ns ticks, rounding down for negative values too */
static int64_t ticks_of(int64_t ns) {
    return ns >= 0 ? ns / 100 : -((-ns + 99) / 100);
}

int64_t wpt_filetime_now(void) {
    return ticks_of(ns_of(CLOCK_REALTIME)) + WPT_FILETIME_UNIX_EPOCH;
}

/* The wall clock minus another clock (`base`), as this process measured it last. Offsets
 * between two of the kernel's clocks stay fixed until the wall clock is set (or, for
 * CLOCK_MONOTONIC, the machine resumes from suspend). A time service on a virtual machine
 * sets it often by small amounts (milliseconds a second have been seen), and a preempted
 * bracket can be off by more than its width shows, so a new measurement within SAME_OFFSET_NS
 * of the kept one, beyond both measurements' errors, means the same offset: the kept one is
 * used, and every session this process starts converts its timestamps the same way (their
 * files merge in logging order). What this keeps off in absolute time stays under that bound
 * (the kept offset is replaced once the real one moved further). A measurement further off
 * is a clock step: it replaces the kept one, and sessions started from then on show the step.
 * Read and written under wpt_control_lock (StartTrace). */
#define SAME_OFFSET_NS 1000000
typedef struct {
    int64_t offset, error;      /* ns; error: half the width of the bracket it came from */
    int known;
} clock_link;

static clock_link g_wall_mono, g_wall_boot;

/* A value read between two reads of a base clock: the base at the middle of the bracket, the
 * bracket's width, the value. */
typedef struct {
    int64_t base_at, width, value;
} bracket;

#define BRACKETS 7

/* The tightest of BRACKETS brackets of `read` by `base`, so a preemption between two reads
 * widens only the bracket it hit, and that one is not used. */
static bracket tightest(clockid_t base, int64_t (*read)(void)) {
    bracket best = {0, INT64_MAX, 0};
    for (int i = 0; i < BRACKETS; i++) {
        int64_t before = ns_of(base);
        int64_t value = read();
        int64_t after = ns_of(base);
        if (after - before < best.width) best = (bracket){before + (after - before) / 2, after - before, value};
    }
    return best;
}

static int64_t wall_read(void) {
    WPT_TEST_POINT(WPT_POINT_CLOCK_PAIR_BEGUN);      /* the bracket's first read is made */
    return ns_of(CLOCK_REALTIME);
}

static int64_t cycles_read(void) { return (int64_t)wpt_rdtsc(); }

/* wall - base from the tightest bracket; *base_at gets base at its middle, the instant the
 * offset is for. */
static void measure(clockid_t base, clock_link *out, int64_t *base_at) {
    bracket b = tightest(base, wall_read);
    *base_at = b.base_at;
    out->offset = b.value - b.base_at;
    out->error = b.width - b.width / 2;
    out->known = 1;
}

/* The kept offset of wall to `base` once a new measurement confirmed it (or replaced it). */
static int64_t linked_offset(clockid_t base, clock_link *kept, int64_t *base_at) {
    clock_link now;
    measure(base, &now, base_at);
    int64_t apart = now.offset > kept->offset ? now.offset - kept->offset : kept->offset - now.offset;
    if (!kept->known || apart - now.error - kept->error > SAME_OFFSET_NS) *kept = now;
    return kept->offset;
}

static uint32_t g_cpu_mhz;
static uint64_t g_cycle_mult;          /* g_cpu_mhz over the measured rate, times 2^31 */
static pthread_once_t g_mhz_once = PTHREAD_ONCE_INIT;

/* A (CLOCK_MONOTONIC ns, cycle counter) pair read as close together as we can (the tightest
 * bracket), so a preemption during one read does not skew the calibration. */
static void clock_pair(int64_t *ns, uint64_t *cycles) {
    bracket b = tightest(CLOCK_MONOTONIC, cycles_read);
    *ns = b.base_at;
    *cycles = (uint64_t)b.value;
}

static void measure_cpu_mhz(void) {
    /* Calibrate the cycle counter against CLOCK_MONOTONIC over 20 ms (clock type 3). The
     * header holds whole MHz and the counter runs at some fraction more or less (156 us a
     * second off at 3.2 GHz), so sessions scale the counter to the whole MHz (g_cycle_mult):
     * raw / CpuSpeedInMHz is then the time every reader computes, ours and Windows'. */
    int64_t t0, t1;
    uint64_t c0, c1;
    clock_pair(&t0, &c0);
    struct timespec pause = {0, 20 * 1000 * 1000};
    nanosleep(&pause, NULL);
    clock_pair(&t1, &c1);
    double per_ns = t1 > t0 ? (double)(c1 - c0) / (double)(t1 - t0) : 0.0;
#ifdef WPT_TEST_POINTS
    if (wpt_test_cycles_per_ns > 0) per_ns = wpt_test_cycles_per_ns;
#endif
    double mhz = per_ns * 1000.0;
    g_cpu_mhz = mhz < 1.0 ? 1 : mhz > 4e9 ? 4000000000u : (uint32_t)(mhz + 0.5);
    double mult = mhz > 0 ? (double)g_cpu_mhz / mhz * 2147483648.0 + 0.5 : 0.0;
    /* a counter too slow to scale in range (under 1 MHz) is left as it is */
    g_cycle_mult = mult >= 1.0 && mult < 4294967296.0 ? (uint64_t)mult : 0;
}

uint32_t wpt_cpu_mhz(void) {
    pthread_once(&g_mhz_once, measure_cpu_mhz);
    return g_cpu_mhz;
}

void wpt_session_clock(uint32_t clock_type, wpt_clock_anchor *a) {
    int64_t mono;
    a->filetime_offset = ticks_of(linked_offset(CLOCK_MONOTONIC, &g_wall_mono, &mono))
                         + WPT_FILETIME_UNIX_EPOCH;
    a->cycles = (wpt_cycle_scale){0, 0};
    if (clock_type == EVENT_TRACE_CLOCK_CPUCYCLE) {
        uint64_t cycles;
        wpt_cpu_mhz();                            /* calibrated: g_cycle_mult is known */
        clock_pair(&mono, &cycles);
        a->cycles = (wpt_cycle_scale){cycles, g_cycle_mult};   /* the scale meets it here */
        a->raw = (int64_t)cycles;
        a->start_filetime = ticks_of(mono) + a->filetime_offset;
    } else {
        a->start_filetime = ticks_of(mono) + a->filetime_offset;
        a->raw = clock_type == EVENT_TRACE_CLOCK_SYSTEMTIME ? a->start_filetime : ticks_of(mono);
    }
    int64_t boot;
    a->boot_filetime = ticks_of(linked_offset(CLOCK_BOOTTIME, &g_wall_boot, &boot))
                       + WPT_FILETIME_UNIX_EPOCH;
}

uint32_t wpt_processor_count(void) {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    if (n < 1) n = 1;
    if (n > 1024) n = 1024;
    return (uint32_t)n;
}

/* Thread and process ids are cached: getpid/gettid are system calls (~50 ns). The fork
 * handler (etw_endpoint.c) clears both in the child. Both slow paths are plain system calls,
 * so the first event a signal handler logs may take them. */
__thread uint32_t wpt_tls_tid;
uint32_t wpt_cached_pid;

uint32_t wpt_current_tid_slow(void) {
    wpt_tls_tid = (uint32_t)syscall(SYS_gettid);
    return wpt_tls_tid;
}

uint32_t wpt_current_pid_slow(void) {
    wpt_cached_pid = (uint32_t)getpid();
    return wpt_cached_pid;
}

/* /proc/<id>/stat: "pid (comm) S ppid ... starttime(22) ..."; comm may hold spaces and
 * parentheses, so fields are counted from the last ')'. Returns the state letter, 0 if the
 * file is not there; *start gets field 22. */
static char proc_stat(uint32_t id, uint64_t *start) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%u/stat", id);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ') return 0;
    char state = p[2];
    p += 2;
    for (int field = 3; field < 22 && p; field++) {
        p = strchr(p, ' ');
        if (p) p++;
    }
    if (start) *start = p ? strtoull(p, NULL, 10) : 0;
    return state;
}

uint64_t wpt_process_start(uint32_t pid) {
    uint64_t start = 0;
    if (!pid) return 0;
    char state = proc_stat(pid, &start);
    if (!state || state == 'Z' || state == 'X') return 0;
    return start ? start : 1;
}

/* Did /proc fail to answer for want of descriptors or memory (errno of a failed proc_stat)?
 * That says nothing of the process or thread looked up. */
static int could_not_tell(int e) {
    return e == EMFILE || e == ENFILE || e == ENOMEM || e == ENOBUFS || e == EAGAIN || e == EINTR;
}

int wpt_process_is(uint32_t pid, uint64_t start) {
    if (!pid) return 0;
    uint64_t now = 0;
    errno = 0;
    char state = proc_stat(pid, &now);
    if (!state) return could_not_tell(errno) ? -1 : 0;
    if (state == 'Z' || state == 'X') return 0;
    return (now ? now : 1) == start;
}

int wpt_process_gone(uint32_t pid) {
    if (!pid) return 1;
    errno = 0;
    char state = proc_stat(pid, NULL);
    if (!state) return !could_not_tell(errno);
    return state == 'Z' || state == 'X';
}

int wpt_thread_gone(uint32_t tid) {
    errno = 0;
    char state = proc_stat(tid, NULL);
    if (!state) return !could_not_tell(errno);
    return state == 'Z' || state == 'X';
}

/* The core's threads alive in this process. Each counts itself once it runs and uncounts
 * itself before it ends, so the count never exceeds the core's threads the kernel lists.
 * g_core_churn moves with every such change: a listing it did not move across saw the same
 * core threads all along. */
static _Atomic int g_core_threads;
static _Atomic uint32_t g_core_churn;
static __thread int t_core_thread;

typedef struct {
    void *(*main)(void *);
    void *arg;
} core_thread_start;

static void core_thread_ends(void *unused) {
    (void)unused;
    atomic_fetch_sub(&g_core_threads, 1);
    atomic_fetch_add(&g_core_churn, 1);
}

static void *core_thread_main(void *arg) {
    core_thread_start start = *(core_thread_start *)arg;
    free(arg);
    t_core_thread = 1;
    atomic_fetch_add(&g_core_threads, 1);
    atomic_fetch_add(&g_core_churn, 1);
    void *result;
    pthread_cleanup_push(core_thread_ends, NULL);     /* however it ends */
    result = start.main(start.arg);
    pthread_cleanup_pop(1);
    return result;
}

#ifdef WPT_TEST_POINTS
_Atomic int wpt_test_threads_refused;
#endif

int wpt_thread_create(pthread_t *thread, void *(*main)(void *), void *arg) {
#ifdef WPT_TEST_POINTS
    if (atomic_load(&wpt_test_threads_refused)) return EAGAIN;
#endif
    core_thread_start *start = malloc(sizeof *start);
    if (!start) return EAGAIN;
    *start = (core_thread_start){main, arg};
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);     /* the new thread inherits the full mask */
    int rc = pthread_create(thread, NULL, core_thread_main, start);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) free(start);
    return rc;
}

void wpt_core_threads_after_fork(void) {
    atomic_store(&g_core_threads, t_core_thread);   /* only the forking thread is left */
}

/* A core thread that ended before the listing read its entry and another that counted itself
 * after its tid was passed cancel out in the counts, while the listing has neither: it is made
 * again until no core thread started or ended across it. */
#define THREAD_LISTINGS 16

int wpt_application_threads(void) {
    for (int listing = 0; listing < THREAD_LISTINGS; listing++) {
        uint32_t churn = atomic_load(&g_core_churn);
        int core = atomic_load(&g_core_threads);
        WPT_TEST_POINT(WPT_POINT_THREADS_LISTING);
        DIR *d = opendir("/proc/self/task");
        if (!d) return -1;
        int tasks = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') tasks++;
        closedir(d);
        WPT_TEST_POINT(WPT_POINT_THREADS_LISTED);
        if (atomic_load(&g_core_churn) == churn) return tasks > core ? tasks - core : 0;
    }
    return 1;     /* the core's threads kept changing: taken for one more, looked at again */
}

static _Atomic int g_fail_allocations;

void wpptrace_debug_fail_allocations(int count) { atomic_store(&g_fail_allocations, count); }

int wpt_injected_failure(void) {
    int n = atomic_load(&g_fail_allocations);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&g_fail_allocations, &n, n - 1)) return 1;
    }
    return 0;
}

int wpt_valid_name(const char *name) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++)
        if (*p < 0x20 || *p == 0x7F) return 0;
    return n > 0 && n < WPT_MAX_NAME;
}

static __thread ULONG t_last_error;
void wpt_set_last_error(ULONG code) { t_last_error = code; }
ULONG wpptrace_get_last_error(void) { return t_last_error; }

size_t wpt_utf8_to_utf16(const char *in, uint16_t *out, size_t out_units) {
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)in;
    if (out_units == 0) return 0;
    while (*p) {
        uint32_t cp;
        int extra;
        if (*p < 0x80) { cp = *p; extra = 0; }
        else if ((*p & 0xE0) == 0xC0) { cp = *p & 0x1F; extra = 1; }
        else if ((*p & 0xF0) == 0xE0) { cp = *p & 0x0F; extra = 2; }
        else if ((*p & 0xF8) == 0xF0) { cp = *p & 0x07; extra = 3; }
        else { cp = 0xFFFD; extra = 0; }
        p++;
        for (int i = 0; i < extra; i++) {
            if ((*p & 0xC0) != 0x80) { cp = 0xFFFD; break; }
            cp = (cp << 6) | (*p++ & 0x3F);
        }
        if (cp >= 0x10000) {
            if (n + 2 >= out_units) break;
            cp -= 0x10000;
            out[n++] = (uint16_t)(0xD800 | (cp >> 10));
            out[n++] = (uint16_t)(0xDC00 | (cp & 0x3FF));
        } else {
            if (n + 1 >= out_units) break;
            out[n++] = (uint16_t)cp;
        }
    }
    out[n] = 0;
    return n;
}

int wpt_utf16_to_utf8(const uint16_t *in, char *out, size_t out_size) {
    size_t n = 0;
    for (; *in; in++) {
        uint32_t cp = *in;
        if (cp >= 0xD800 && cp < 0xDC00 && in[1] >= 0xDC00 && in[1] < 0xE000) {
            cp = 0x10000 + ((cp - 0xD800) << 10) + (in[1] - 0xDC00);
            in++;
        } else if (cp >= 0xD800 && cp < 0xE000) {
            cp = 0xFFFD;                     /* an unpaired surrogate: no valid UTF-8 for it */
        }
        uint8_t buf[4];
        int len = wpt_utf8_put(buf, cp);     /* cp <= 0x10FFFF: one UTF-16 unit or a pair */
        if (n + (size_t)len + 1 > out_size) return -1;
        memcpy(out + n, buf, (size_t)len);
        n += (size_t)len;
    }
    if (n + 1 > out_size) return -1;
    out[n] = 0;
    return 0;
}
