/* cuts.h: the window bounds of ``fmt -j`` (decoder/parallel.py ``cut_keys``) in one C pass.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * The same arithmetic as the Python sweep, operation for operation in the same order (IEEE
 * doubles, no fused multiply-add), so the cuts are the same numbers.
 */
#ifndef WPPTRACE_CUTS_H
#define WPPTRACE_CUTS_H
#include <stdint.h>

/* a cut further into a buffer's span than this many ticks is left to the caller (the sweep's
 * int64 arithmetic keeps this much room) */
#define CUTS_MAX_TICKS 9200000000000000000

/* The raw times at which the data buffers' bytes written reach each bound: stream s is the
 * buffers positions[first_s : first_s + lens[s]] (first_s: the lens before it added up) of
 * the index columns times (flush time) and sizes (filled bytes); each buffer's bytes
 * (max(1, size)) are written evenly since the previous flush of its stream (the first ones
 * since the earliest flush). The bounds are total * parts[i] / whole for i < nparts, total
 * the bytes of every buffer. cuts gets the cut times, increasing (a cut not after the one
 * before it is left out), at most nparts. Returns how many; -1 when a time or a cut does not
 * fit the sweep's 64-bit arithmetic, or memory ran out (the caller cuts in Python). */
int32_t cuts_sweep(const int64_t *times, const uint32_t *sizes, const uint32_t *positions,
                   const uint32_t *lens, uint32_t nstreams, const double *parts, uint32_t nparts,
                   double whole, int64_t *cuts);

#endif
