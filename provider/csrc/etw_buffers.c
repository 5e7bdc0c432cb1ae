/* etw_buffers.c: a session's buffer memory and the writers' slow paths (new buffer, retire).
 *
 * Layout of the region every writer maps (offsets recorded in its header, wpt_shm):
 *     [wpt_shm][nslots x wpt_slot][capacity x wpt_desc][page-aligned data: capacity x BufferSize]
 * All cross-process state is in the region and changes by compare-and-swap only: a writer
 * killed at any instruction leaves the pool usable (at worst one buffer is never reused), and
 * a signal handler that logs while its thread is inside these functions cannot deadlock.
 *
 * - Free buffers form a stack (index + ABA tag in one 64-bit word). Buffers never used yet
 *   are taken by bumping next_unused up to MaximumBuffers; their memory is committed then
 *   (its pages filled with MADV_POPULATE_WRITE), so a full tmpfs is an ERROR_OUTOFMEMORY drop,
 *   not a SIGBUS.
 * - A slot word holds its install count next to the buffer index: the install number is
 *   the buffer's position in its processor stream, which the flusher writes in order.
 * - Retiring is one CAS that empties the slot; the flusher finds retired buffers by phase (or,
 *   if the retiring writer died before setting it, as closed buffers no slot points to).
 *   Phases and states carry the buffer's generation (one per install): a writer held up
 *   anywhere acts on the generation it saw or on nothing.
 * The capacity mapped is larger than MaximumBuffers so that UPDATE can raise it; the extra
 * buffers cost address space only. A process fills its page tables for a buffer the first
 * time it takes it (one madvise instead of a fault per page), and for everything committed
 * when it maps the session.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "_etw_internal.h"

_Atomic(wpt_view *) wpt_views[WPPTRACE_MAX_SESSIONS];
#ifdef WPT_TEST_POINTS
void (*wpt_test_point)(int point);
#endif
_Atomic uint32_t wpt_global_sequence;

#define ALIGN_UP(x, a) (((x) + (a) - 1) & ~((uint64_t)(a) - 1))
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23          /* Linux 5.14; older kernels answer EINVAL */
#endif

/* Fill this process's page tables for [addr, addr + size) of the session memory. */
static void populate(void *addr, size_t size) {
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)addr & ~(uintptr_t)(page - 1);
    madvise((void *)start, size + ((uintptr_t)addr - start), MADV_POPULATE_WRITE);
}

/* The first time this process takes buffer index1: populate its pages. */
static void map_buffer(wpt_view *v, uint32_t index1) {
    uint64_t bit = 1ull << ((index1 - 1) % 64);
    _Atomic uint64_t *word = &v->mapped[(index1 - 1) / 64];
    if (atomic_load_explicit(word, memory_order_relaxed) & bit) return;
    populate(wpt_buffer_data(v, index1), v->buffer_size);
    atomic_fetch_or_explicit(word, bit, memory_order_relaxed);
}

uint32_t wpt_pool_capacity(uint32_t buffer_size, uint32_t max_buffers) {
    uint64_t spare = (1ull << 30) / buffer_size;         /* room to grow: up to 1 GiB mapped */
    uint64_t cap = spare > 1024 ? 1024 : spare;
    if (cap < max_buffers) cap = max_buffers;
    if (cap > WPT_MAX_BUFFERS) cap = WPT_MAX_BUFFERS;
    if (cap * buffer_size > WPT_MAX_POOL_BYTES) cap = max_buffers;
    return (uint32_t)cap;
}

static uint64_t layout(wpt_shm *h, uint32_t nslots, uint32_t capacity, uint32_t buffer_size) {
    long page = sysconf(_SC_PAGESIZE);
    h->slots_offset = ALIGN_UP(sizeof(wpt_shm), 64);
    h->desc_offset = h->slots_offset + (uint64_t)nslots * sizeof(wpt_slot);
    h->data_offset = ALIGN_UP(h->desc_offset + (uint64_t)capacity * sizeof(wpt_desc), (uint64_t)page);
    return ALIGN_UP(h->data_offset + (uint64_t)capacity * buffer_size, (uint64_t)page);
}

static wpt_view *make_view(void *map, size_t size, int memfd, int private_pool) {
    wpt_view *v = calloc(1, sizeof *v);
    if (!v) return NULL;
    wpt_shm *sh = map;
    v->mapped = calloc(sh->capacity / 64 + 1, sizeof *v->mapped);
    if (!v->mapped) {
        free(v);
        return NULL;
    }
    v->sh = sh;
    v->slots = (wpt_slot *)(void *)((unsigned char *)map + sh->slots_offset);
    v->desc = (wpt_desc *)(void *)((unsigned char *)map + sh->desc_offset);
    v->data = (unsigned char *)map + sh->data_offset;
    v->buffer_size = sh->buffer_size;
    v->nslots = sh->nslots;
    v->capacity = sh->capacity;
    v->logger_id = (uint16_t)sh->logger_id;
    v->registry_generation = sh->generation;
    v->private_pool = (uint8_t)private_pool;
    v->sequence = private_pool ? &wpt_global_sequence : &sh->global_sequence;
    v->memfd = memfd;
    v->map = map;
    v->map_size = size;
    return v;
}

/* Commit the memory of buffer index1 (its pages exist from now on): its pages are filled
 * through this process's mapping, which fails (no SIGBUS) when the tmpfs is full. Not with
 * fallocate on the memfd: a writer takes no lock, and a retire may close the memfd meanwhile
 * and the application open a file that takes its number. A retired view's mapping is zero
 * pages: filling them is harmless. */
static int commit_buffer(wpt_view *v, uint32_t index1) {
    if (wpt_injected_failure()) return -1;
    if (v->memfd < 0) return 0;                 /* anonymous memory: committed on first touch */
    WPT_TEST_POINT(WPT_POINT_COMMIT_MEMORY);
    unsigned char *data = wpt_buffer_data(v, index1);
    long page = sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)data & ~(uintptr_t)(page - 1);
    int rc;
    do rc = madvise((void *)start, v->buffer_size + ((uintptr_t)data - start), MADV_POPULATE_WRITE);
    while (rc != 0 && errno == EINTR);
    if (rc == 0) return 0;
    if (errno != EINVAL) return -1;             /* the tmpfs is full (EFAULT), no memory */
    /* a kernel before 5.14: fallocate, with the memfd number read as late as can be */
    off_t at = (off_t)(v->sh->data_offset + (uint64_t)(index1 - 1) * v->buffer_size);
    do rc = fallocate(v->memfd, 0, at, v->buffer_size); while (rc != 0 && errno == EINTR);
    return rc == 0 || errno == EOPNOTSUPP ? 0 : -1;
}

ULONG wpt_pool_create(const wpt_pool_config *c, wpt_view **view_out, int *memfd_out) {
    wpt_shm probe;
    memset(&probe, 0, sizeof probe);
    uint64_t size = layout(&probe, c->nslots, c->capacity, c->buffer_size);
    int memfd = -1;
    void *map;
    if (c->private_pool) {
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    } else {
        memfd = (int)syscall(SYS_memfd_create, "wpptrace-session", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (memfd < 0) return wpt_win32_of_errno(errno, ERROR_OUTOFMEMORY);   /* no descriptor left */
        uint64_t control = probe.data_offset;
        if (ftruncate(memfd, (off_t)size) != 0
            || fallocate(memfd, 0, 0, (off_t)control) != 0
            || fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
            close(memfd);
            return ERROR_OUTOFMEMORY;
        }
        map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    }
    if (map == MAP_FAILED) {
        if (memfd >= 0) close(memfd);
        return ERROR_OUTOFMEMORY;
    }
    wpt_shm *sh = map;
    sh->magic = WPT_SHM_MAGIC;
    sh->version = WPT_SHM_VERSION;
    sh->map_size = size;
    sh->buffer_size = c->buffer_size;
    sh->nslots = c->nslots;
    sh->capacity = c->capacity;
    sh->logger_id = c->logger_id;
    sh->generation = c->generation;
    sh->log_file_mode = c->log_file_mode;
    sh->clock_type = c->clock_type;
    sh->owner_pid = wpt_current_pid();
    sh->filetime_offset = c->filetime_offset;
    sh->cycles = c->cycles;
    layout(sh, c->nslots, c->capacity, c->buffer_size);
    atomic_store(&sh->max_buffers, c->max_buffers);
    atomic_store(&sh->status, WPT_STARTING);
    wpt_view *v = make_view(map, size, memfd, c->private_pool);
    if (!v) {
        munmap(map, size);
        if (memfd >= 0) close(memfd);
        return ERROR_OUTOFMEMORY;
    }
    /* MinimumBuffers up front: committed, their pages touched, in the free stack */
    for (uint32_t i = 1; i <= c->min_buffers; i++) {
        if (commit_buffer(v, i) != 0) {
            munmap(map, size);
            if (memfd >= 0) close(memfd);
            free(v->mapped);
            free(v);
            return ERROR_OUTOFMEMORY;
        }
        memset(wpt_buffer_data(v, i), 0, c->buffer_size);
        v->mapped[(i - 1) / 64] |= 1ull << ((i - 1) % 64);
        atomic_store(&v->desc[i - 1].backed, 1);
        atomic_store(&v->desc[i - 1].state, WPT_CLOSED);
        wpt_pool_push(v, i);
    }
    atomic_store(&sh->next_unused, c->min_buffers);
    *view_out = v;
    if (memfd_out) *memfd_out = memfd;
    else if (memfd >= 0) close(memfd);
    return ERROR_SUCCESS;
}

ULONG wpt_view_map(int memfd, uint64_t map_size, uint16_t logger_id, uint32_t generation,
                   wpt_view **view_out) {
    struct stat st;
    if (fstat(memfd, &st) != 0 || (uint64_t)st.st_size != map_size || map_size < sizeof(wpt_shm))
        return ERROR_BAD_FORMAT;
    /* A file its sender could still shrink would fault (SIGBUS) this application's writes to
     * the view once shrunk; one without F_SEAL_SEAL could be sealed against growing later (a
     * commit of a new buffer fails). Sealed both ways, what is checked here stays true. */
    int seals = fcntl(memfd, F_GET_SEALS);
    if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_SEAL)) != (F_SEAL_SHRINK | F_SEAL_SEAL))
        return ERROR_BAD_FORMAT;
    void *map = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
    if (map == MAP_FAILED) return ERROR_OUTOFMEMORY;
    const wpt_shm *sh = map;
    /* The host is a process of our own user, but check what we will index with. */
    uint64_t bs = sh->buffer_size;
    int ok = sh->magic == WPT_SHM_MAGIC && sh->version == WPT_SHM_VERSION
          && sh->map_size == map_size && sh->logger_id == logger_id
          && wpt_generation_said(sh->generation, generation)
          && bs >= 1024 && bs <= (uint64_t)MAX_ETW_BUFFER_SIZE_KB * 1024 && bs % 1024 == 0
          && sh->nslots >= 1 && sh->nslots <= 1024
          && sh->capacity >= 1 && sh->capacity <= WPT_MAX_BUFFERS
          && sh->slots_offset >= sizeof(wpt_shm)
          && sh->desc_offset >= sh->slots_offset + (uint64_t)sh->nslots * sizeof(wpt_slot)
          && sh->data_offset >= sh->desc_offset + (uint64_t)sh->capacity * sizeof(wpt_desc)
          && sh->data_offset + (uint64_t)sh->capacity * bs <= map_size
          && sh->slots_offset % 64 == 0 && sh->desc_offset % 64 == 0;
    if (!ok) {
        munmap(map, map_size);
        return ERROR_BAD_FORMAT;
    }
    wpt_view *v = make_view(map, map_size, memfd, 0);
    if (!v) {
        munmap(map, map_size);
        return ERROR_OUTOFMEMORY;
    }
    v->registry_generation = generation;     /* what the host checked the JOIN against */
    /* page tables for the control part and every buffer committed so far */
    uint32_t used = atomic_load(&v->sh->next_unused);
    if (used > v->capacity) used = v->capacity;
    populate(map, sh->data_offset + (size_t)used * v->buffer_size);
    for (uint32_t i = 0; i < used; i++) v->mapped[i / 64] |= 1ull << (i % 64);
    *view_out = v;
    return ERROR_SUCCESS;
}

/* Replaced and retired views, kept for writers that may still hold them. */
static _Atomic(wpt_view *) g_retired_views;

static int claim_locked(wpt_view *v);
static void swap_claimed(wpt_view *v);
static pthread_mutex_t g_swap_lock;

void wpt_view_publish(wpt_view *v) {
    uint32_t slot = wpt_slot_of_id(v->logger_id);
    wpt_view *old = atomic_load(&wpt_views[slot]);
    if (old && old != v) WPT_TEST_POINT(WPT_POINT_VIEW_RETIRE);    /* as wpt_view_retire's */
    /* the old view taken out and claimed at once (see wpt_view_retire) */
    pthread_mutex_lock(&g_swap_lock);
    old = atomic_exchange_explicit(&wpt_views[slot], v, memory_order_acq_rel);
    int claimed = old && old != v && claim_locked(old);
    pthread_mutex_unlock(&g_swap_lock);
    if (claimed) swap_claimed(old);
}

#ifdef WPT_TEST_POINTS
_Atomic uint32_t wpt_views_retired;
#endif

/* Views whose memory is being swapped (claimed, not swapped yet), linked by `older`; the lock
 * guards the list, the closing of each view's memfd and the claim, and is held for moments
 * only (never across a test point): a fork waits for it, so a child finds the list whole. A
 * writer reads the memfd number without it: from kernel 5.14 on it never uses the number (see
 * commit_buffer); before, its fallocate fallback still does, and may reach a descriptor that
 * took the number after the close. */
static pthread_mutex_t g_swap_lock = PTHREAD_MUTEX_INITIALIZER;
static wpt_view *g_swapping;

/* g_swap_lock held: `v` is this caller's to swap (0: taken already, or a forked child's copy
 * of a private pool, unmapped). The endpoint thread (the host gone) and a STOP or clean-up of
 * this process may retire the same view at once: one of them swaps its memory. Twice, the
 * second closed the memfd number again (by then maybe another descriptor of the process) and
 * listed the view twice. */
static int claim_locked(wpt_view *v) {
    if (atomic_exchange(&v->retired, 1) || !v->map) return 0;
    v->older = g_swapping;              /* a child forked before the swap finishes it */
    g_swapping = v;
    return 1;
}

void wpt_view_retire(wpt_view *v) {
    uint32_t slot = wpt_slot_of_id(v->logger_id);
    WPT_TEST_POINT(WPT_POINT_VIEW_RETIRE);
    /* Taken out of its slot and claimed at once, under the lock: a child forked in between
     * found the view neither published nor being swapped, and kept its memory mapped (and its
     * memfd open) until it exited. */
    pthread_mutex_lock(&g_swap_lock);
    wpt_view *expect = v;
    atomic_compare_exchange_strong(&wpt_views[slot], &expect, NULL);
    int claimed = claim_locked(v);
    pthread_mutex_unlock(&g_swap_lock);
    if (claimed) swap_claimed(v);
}

static void swap_claimed(wpt_view *v) {
#ifdef WPT_TEST_POINTS
    atomic_fetch_add(&wpt_views_retired, 1);
#endif
    WPT_TEST_POINT(WPT_POINT_VIEW_RETIRING);
    /* Zero pages in place of the session memory: its pages are released, and a writer that
     * still holds this view reads status 0 and fails. */
    mmap(v->map, v->map_size, PROT_READ | PROT_WRITE,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
    pthread_mutex_lock(&g_swap_lock);
    if (v->memfd >= 0) close(v->memfd);
    v->memfd = -1;
    wpt_view **at = &g_swapping;
    while (*at && *at != v) at = &(*at)->older;
    if (*at) *at = v->older;
    v->map = NULL;
    pthread_mutex_unlock(&g_swap_lock);
    WPT_TEST_POINT(WPT_POINT_VIEW_RETIRED);
    v->older = atomic_load(&g_retired_views);
    while (!atomic_compare_exchange_weak(&g_retired_views, &v->older, v)) {}
}

void wpt_views_fork_prepare(void) { pthread_mutex_lock(&g_swap_lock); }
void wpt_views_fork_parent(void) { pthread_mutex_unlock(&g_swap_lock); }

/* The child of a fork made while views were being swapped: no thread of the child goes on with
 * the swaps, so it makes them (the session memory and its memfd are not kept alive here). */
void wpt_views_after_fork(void) {
    pthread_mutex_init(&g_swap_lock, NULL);
    for (wpt_view *v = g_swapping; v; v = v->older) {
        if (v->map) mmap(v->map, v->map_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
        if (v->memfd >= 0) close(v->memfd);
        v->memfd = -1;
        v->map = NULL;
    }
    g_swapping = NULL;       /* their view structures are left: the child's writers may hold them */
}

void wpt_pool_push(wpt_view *v, uint32_t index1) {
    wpt_shm *sh = v->sh;
    uint64_t top = atomic_load_explicit(&sh->free_top, memory_order_acquire);
    for (;;) {
        atomic_store_explicit(&v->desc[index1 - 1].next, (uint32_t)top, memory_order_relaxed);
        uint64_t want = (((top >> 32) + 1) << 32) | index1;
        if (atomic_compare_exchange_weak_explicit(&sh->free_top, &top, want,
                                                  memory_order_acq_rel, memory_order_acquire))
            break;
    }
    atomic_fetch_add_explicit(&sh->free_count, 1, memory_order_relaxed);
}

uint32_t wpt_pool_pop(wpt_view *v) {
    wpt_shm *sh = v->sh;
    uint64_t top = atomic_load_explicit(&sh->free_top, memory_order_acquire);
    for (;;) {
        uint32_t index1 = (uint32_t)top;
        if (index1 == 0 || index1 > v->capacity) return 0;
        uint32_t next = atomic_load_explicit(&v->desc[index1 - 1].next, memory_order_relaxed);
        uint64_t want = (((top >> 32) + 1) << 32) | next;
        if (atomic_compare_exchange_weak_explicit(&sh->free_top, &top, want,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            atomic_fetch_sub_explicit(&sh->free_count, 1, memory_order_relaxed);
            return index1;
        }
    }
}

void wpt_wake_flusher(wpt_shm *sh) {
    atomic_fetch_add(&sh->wake, 1);
    if (atomic_load(&sh->flusher_sleeping))
        syscall(SYS_futex, &sh->wake, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

ULONG wpt_install_buffer(wpt_view *v, wpt_slot *slot, uint32_t stream) {
    wpt_shm *sh = v->sh;
    if (atomic_load_explicit(&sh->status, memory_order_acquire) != WPT_RUNNING)
        return ERROR_INVALID_HANDLE;                 /* stopping (or stopped): no new buffers */
    uint64_t word = atomic_load_explicit(&slot->word, memory_order_acquire);
    if ((uint32_t)word) return ERROR_SUCCESS;        /* another writer installed one */
    uint32_t index1 = wpt_pool_pop(v);
    if (!index1) {
        uint32_t n = atomic_load(&sh->next_unused);
        for (;;) {
            uint32_t limit = atomic_load(&sh->max_buffers);
            if (n >= limit || n >= v->capacity) return ERROR_NOT_ENOUGH_MEMORY;
            if (atomic_compare_exchange_weak(&sh->next_unused, &n, n + 1)) break;
        }
        index1 = n + 1;
    }
    wpt_desc *d = &v->desc[index1 - 1];
    if (!atomic_load(&d->backed)) {
        if (commit_buffer(v, index1) != 0) {
            wpt_pool_push(v, index1);                /* the next taker tries again */
            return ERROR_OUTOFMEMORY;
        }
        atomic_store(&d->backed, 1);
    }
    map_buffer(v, index1);
    /* The new generation's state (open) before its phase: the flusher takes an ACTIVE buffer
     * only if the state of the same generation is closed. */
    uint32_t gen = (uint32_t)(atomic_load(&d->state) >> 32) + 1;
    atomic_store_explicit(&d->processor, stream, memory_order_relaxed);
    atomic_store_explicit(&d->stream_seq, (uint32_t)(word >> 32) + 1, memory_order_relaxed);
    atomic_store_explicit(&d->state, ((uint64_t)gen << 32) | WPT_BUFFER_HEADER_SIZE, memory_order_release);
    atomic_store_explicit(&d->phase, wpt_phase(gen, WPT_BUF_ACTIVE), memory_order_release);
    uint64_t want = (((word >> 32) + 1) << 32) | index1;
    WPT_TEST_POINT(WPT_POINT_INSTALL_PREPARED);
    if (atomic_compare_exchange_strong_explicit(&slot->word, &word, want,
                                                memory_order_acq_rel, memory_order_acquire)) {
        /* The zero pages that replace a retired view's memory hold an empty slot of install
         * count 0, which is what a stream's first install expects: a writer held over STOP
         * installs "successfully" there. The status on those pages says so. */
        if (atomic_load_explicit(&sh->status, memory_order_acquire) == WPT_FREE)
            return ERROR_INVALID_HANDLE;
        return ERROR_SUCCESS;
    }
    /* another writer installed one first: ours goes back, unused (FREE before closed: a
     * closed ACTIVE buffer in no slot is one the flusher takes) */
    atomic_store(&d->phase, wpt_phase(gen, WPT_BUF_FREE));
    atomic_fetch_or(&d->state, WPT_CLOSED);
    wpt_pool_push(v, index1);
    return ERROR_SUCCESS;
}

void wpt_retire(wpt_view *v, wpt_slot *slot, uint64_t word, uint32_t generation) {
    uint32_t index1 = (uint32_t)word;
    if (atomic_compare_exchange_strong(&slot->word, &word, word & 0xFFFFFFFF00000000ull)) {
        WPT_TEST_POINT(WPT_POINT_RETIRE_SLOT_EMPTIED);
        uint64_t phase = wpt_phase(generation, WPT_BUF_ACTIVE);
        atomic_compare_exchange_strong(&v->desc[index1 - 1].phase, &phase,
                                       wpt_phase(generation, WPT_BUF_RETIRED));
        wpt_wake_flusher(v->sh);
    }
}
