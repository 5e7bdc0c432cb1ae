/* cuts.c: the window bounds of fmt -j (cuts.h). */
/* the Python sweep rounds each product before its sum: so must this one */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif
#include <stdlib.h>
#include "cuts.h"

typedef struct {
    int64_t t;          /* a buffer span's end, or a flush */
    double change;      /* of the rate bytes come at from t on */
    double lump;        /* bytes written at once at t (a span of no time) */
} cut_change;

/* Python's order of (t, change, lump) tuples (equal ones are the same values) */
static int compare_changes(const void *a, const void *b)
{
    const cut_change *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    if (x->change != y->change) return x->change < y->change ? -1 : 1;
    if (x->lump != y->lump) return x->lump < y->lump ? -1 : 1;
    return 0;
}

/* Sort changes[0:n] whose streams' runs are changes[starts[s]:starts[s + 1]], s < nruns:
 * a stream flushed in time order makes its changes in order already, so each run is
 * sorted only if it is not, and the runs are merged pairwise (into spare, n entries);
 * equal changes are the same values, so any order of them is Python's. Returns where the
 * sorted changes are (changes or spare). */
static cut_change *sort_runs(cut_change *changes, cut_change *spare, size_t n, size_t *starts,
                             uint32_t nruns)
{
    for (uint32_t s = 0; s < nruns; s++) {
        size_t lo = starts[s], hi = starts[s + 1];
        for (size_t i = lo + 1; i < hi; i++) {
            if (compare_changes(&changes[i - 1], &changes[i]) > 0) {
                qsort(changes + lo, hi - lo, sizeof *changes, compare_changes);
                break;
            }
        }
    }
    cut_change *from = changes, *to = spare;
    while (nruns > 1) {
        uint32_t merged = 0;
        for (uint32_t s = 0; s < nruns; s += 2, merged++) {
            size_t a = starts[s], mid = starts[s + 1];        /* (starts[nruns] is n) */
            size_t end = s + 1 < nruns ? starts[s + 2] : mid;
            size_t b = mid, out = a;
            while (a < mid && b < end)
                to[out++] = compare_changes(&from[b], &from[a]) < 0 ? from[b++] : from[a++];
            while (a < mid) to[out++] = from[a++];
            while (b < end) to[out++] = from[b++];
            starts[merged] = starts[s];
        }
        starts[merged] = n;
        nruns = merged;
        cut_change *swap = from;
        from = to;
        to = swap;
    }
    return from;
}

/* hi - lo (hi >= lo) as Python's float of the int: one rounding */
static double span(int64_t lo, int64_t hi)
{
    return (double)((uint64_t)hi - (uint64_t)lo);
}

int32_t cuts_sweep(const int64_t *times, const uint32_t *sizes, const uint32_t *positions,
                   const uint32_t *lens, uint32_t nstreams, const double *parts, uint32_t nparts,
                   double whole, int64_t *cuts)
{
    size_t count = 0;
    for (uint32_t s = 0; s < nstreams; s++) count += lens[s];
    if (count == 0) return 0;
    int64_t start = times[positions[0]];
    for (size_t i = 1; i < count; i++)
        if (times[positions[i]] < start) start = times[positions[i]];
    /* the changes, as many spare for the merge, and where each stream's run starts */
    cut_change *made_changes = malloc(4 * count * sizeof *made_changes);
    size_t *starts = malloc(((size_t)nstreams + 1) * sizeof *starts);
    double *bounds = malloc((nparts ? nparts : 1) * sizeof *bounds);
    if (made_changes == NULL || starts == NULL || bounds == NULL) {
        free(made_changes);
        free(starts);
        free(bounds);
        return -1;
    }
    cut_change *changes = made_changes;
    size_t n = 0, at_buffer = 0;
    double total = 0.0;
    for (uint32_t s = 0; s < nstreams; s++) {
        starts[s] = n;
        int64_t previous = start;
        for (uint32_t j = 0; j < lens[s]; j++, at_buffer++) {
            uint32_t p = positions[at_buffer];
            int64_t flushed = times[p];
            int64_t lo = previous <= flushed ? previous : flushed;
            int64_t hi = previous <= flushed ? flushed : previous;
            double weight = sizes[p] > 1 ? (double)sizes[p] : 1.0;
            total += weight;
            if (hi > lo) {
                double rate = weight / span(lo, hi);
                changes[n++] = (cut_change){lo, rate, 0.0};
                changes[n++] = (cut_change){hi, -rate, 0.0};
            } else {
                changes[n++] = (cut_change){hi, 0.0, weight};
            }
            previous = flushed;
        }
    }
    starts[nstreams] = n;
    changes = sort_runs(made_changes, made_changes + 2 * count, n, starts, nstreams);
    for (uint32_t k = 0; k < nparts; k++) bounds[k] = total * parts[k] / whole;
    int32_t made = 0;
    int failed = 0;
    double done = 0.0, rate = 0.0;
    int64_t at = start;
    uint32_t k = 0;
    for (size_t i = 0; i < n && !failed; i++) {
        int64_t t = changes[i].t;
        double reached = done + rate * span(at, t);
        while (k < nparts && reached >= bounds[k]) {      /* crossed inside (at, t] */
            int64_t cut = t;
            if (rate > 0) {
                double q = (bounds[k] - done) / rate;
                if (!(q > -(double)CUTS_MAX_TICKS && q < (double)CUTS_MAX_TICKS)
                        || __builtin_add_overflow(at, (int64_t)q, &cut)) {
                    failed = 1;
                    break;
                }
            }
            if (made == 0 || cut > cuts[made - 1]) cuts[made++] = cut;
            k++;
        }
        done = reached + changes[i].lump;
        rate = rate + changes[i].change;
        at = t;
        while (k < nparts && done >= bounds[k]) {         /* reached by a buffer's bytes at t */
            if (made == 0 || t > cuts[made - 1]) cuts[made++] = t;
            k++;
        }
    }
    free(made_changes);
    free(starts);
    free(bounds);
    return failed ? -1 : made;
}
