/* order.c: the merge's inner loops (order.h). */
#include <stddef.h>
#include <stdlib.h>
#include "order.h"

int64_t order_running_max(const int64_t *in, uint32_t stride, uint32_t n, int64_t initial,
                          int64_t *out)
{
    int64_t run = initial;
    for (uint32_t i = 0; i < n; i++) {
        int64_t v = in[(size_t)i * stride];
        if (v > run) run = v;
        out[i] = run;
    }
    return run;
}

int64_t order_max(const int64_t *in, uint32_t n, int64_t initial)
{
    int64_t run = initial;
    for (uint32_t i = 0; i < n; i++)
        if (in[i] > run) run = in[i];
    return run;
}

void order_gather(const int64_t *in, uint32_t stride, uint32_t n, int64_t *out)
{
    for (uint32_t i = 0; i < n; i++) out[i] = in[(size_t)i * stride];
}

uint32_t order_merge_below(uint32_t nstreams, const int64_t *const *keys, const uint32_t *lens,
                           uint32_t *pos, int64_t window, const uint64_t *bases, uint64_t *out,
                           int64_t *out_keys)
{
    uint32_t end[ORDER_STACK_STREAMS], *ends = end, taken = 0, live = 0;
    uint32_t big[nstreams > ORDER_STACK_STREAMS ? nstreams : 1];
    if (nstreams > ORDER_STACK_STREAMS) ends = big;
    for (uint32_t s = 0; s < nstreams; s++) {        /* each stream's run below the window */
        uint32_t lo = pos[s], hi = lens[s];
        while (lo < hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            if (keys[s][mid] < window) lo = mid + 1;
            else hi = mid;
        }
        ends[s] = lo;
        if (lo > pos[s]) live++;
    }
    while (live) {
        uint32_t best = nstreams;
        int64_t key = 0;
        for (uint32_t s = 0; s < nstreams; s++)       /* strictly smaller: ties stay lower */
            if (pos[s] < ends[s] && (best == nstreams || keys[s][pos[s]] < key)) {
                best = s;
                key = keys[s][pos[s]];
            }
        /* the whole run of the best stream up to the next stream's key goes at once */
        int64_t limit = INT64_MAX;
        int limit_inclusive = 1;          /* no other stream: no limit */
        for (uint32_t s = 0; s < nstreams; s++)
            if (s != best && pos[s] < ends[s] && keys[s][pos[s]] <= limit) {
                /* a lower stream takes ties, so the best one stops before an equal key of a
                 * lower stream and runs through equal keys of a higher one */
                int incl = s > best;
                if (keys[s][pos[s]] < limit || (!incl && limit_inclusive)) {
                    limit = keys[s][pos[s]];
                    limit_inclusive = incl;
                }
            }
        const int64_t *k = keys[best];
        uint32_t i = pos[best], e = ends[best];
        uint64_t base = bases ? bases[best] : (uint64_t)best << 32;
        do {
            out[taken] = base + i;
            out_keys[taken++] = k[i++];
        } while (i < e && (k[i] < limit || (limit_inclusive && k[i] == limit)));
        pos[best] = i;
        if (i == e) live--;
    }
    return taken;
}

typedef struct {
    uint16_t processor;
    int64_t sequence;
    uint32_t position;
} order_buffer;

/* processor, then sequence, then file order: what a stable sort by sequence of each
 * processor's buffers (taken in file order) gives */
static int compare_buffers(const void *a, const void *b)
{
    const order_buffer *x = a, *y = b;
    if (x->processor != y->processor) return x->processor < y->processor ? -1 : 1;
    if (x->sequence != y->sequence) return x->sequence < y->sequence ? -1 : 1;
    return x->position < y->position ? -1 : x->position > y->position;
}

int32_t order_streams(const uint16_t *processors, const int64_t *sequences, uint32_t n,
                      uint32_t *positions, uint32_t *lens)
{
    if (n <= 1) return 0;
    order_buffer *buffers = malloc((size_t)(n - 1) * sizeof *buffers);
    if (buffers == NULL) return -1;
    for (uint32_t i = 1; i < n; i++)
        buffers[i - 1] = (order_buffer){processors[i], sequences[i], i};
    qsort(buffers, n - 1, sizeof *buffers, compare_buffers);
    int32_t groups = 0;
    for (uint32_t i = 0; i < n - 1; i++) {
        if (i == 0 || buffers[i].processor != buffers[i - 1].processor) lens[groups++] = 0;
        lens[groups - 1]++;
        positions[i] = buffers[i].position;
    }
    free(buffers);
    return groups;
}
