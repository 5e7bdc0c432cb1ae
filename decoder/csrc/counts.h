/* counts.h: per-message counts of another process added to this one's in one call.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * fmt -j's parent adds each worker's counts (one per message the worker met) at the end of
 * the run, by each message's place in its own counts, and its summary's counts are its own
 * and those: one loop here instead of one Python statement per message in the run's serial
 * end.
 */
#ifndef WPPTRACE_COUNTS_H
#define WPPTRACE_COUNTS_H
#include <stdint.h>

/* totals[places[i]] += counts[i] for i in [0, m), a place given twice taking both counts;
 * a place outside [0, n) (-1: the message has none) adds nothing. Returns how many counts
 * not 0 had no place (the caller adds those otherwise). */
int64_t counts_add_at(int64_t *totals, int64_t n, const int64_t *places, const int64_t *counts,
                      int64_t m);

/* totals[i] += more[i] for i in [0, n). */
void counts_add(int64_t *totals, const int64_t *more, int64_t n);

#endif
