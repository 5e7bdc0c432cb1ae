/* order.h: the inner loops of the ProcessTrace-order merge and of its processor streams
 * (decoder/ordering.py).
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * A stream's merge keys are the running maximum of its records' times; the merge takes, per
 * window, every key below the window from all streams and puts them in key order, ties to
 * the lower stream (the order a stable sort of the streams' runs, one after the other, gives).
 */
#ifndef WPPTRACE_ORDER_H
#define WPPTRACE_ORDER_H
#include <stdint.h>

#define ORDER_STACK_STREAMS 64     /* streams a merge keeps its run ends for on the stack */

/* out[i] = max(initial, in[0], ..., in[i * stride]) for i < n; returns out[n - 1] (initial
 * when n is 0). in and out may be the same array when stride is 1. */
int64_t order_running_max(const int64_t *in, uint32_t stride, uint32_t n, int64_t initial,
                          int64_t *out);

/* max(initial, in[0], ..., in[n - 1]): a batch's last merge key, where the keys themselves
 * are not needed (every one of them falls inside the window). */
int64_t order_max(const int64_t *in, uint32_t n, int64_t initial);

/* out[i] = in[i * stride] for i < n (a field of an array of structures). */
void order_gather(const int64_t *in, uint32_t stride, uint32_t n, int64_t *out);

/* One window: from each stream s (keys[s][0:lens[s]], non-decreasing), the keys from pos[s]
 * up to the first one not below `window`, merged by key (ties: the lower stream first); pos[s]
 * is moved past them. out[k] = bases[s] + index when bases is not NULL, else s << 32 | index;
 * out_keys[k] = the key. out and out_keys have room for every key taken (the caller counted
 * them). Returns how many were taken. */
uint32_t order_merge_below(uint32_t nstreams, const int64_t *const *keys, const uint32_t *lens,
                           uint32_t *pos, int64_t window, const uint64_t *bases, uint64_t *out,
                           int64_t *out_keys);

/* The processor streams of a buffer index (decoder/ordering.py buffer_streams): the buffers
 * 1 .. n - 1 (0 is the header buffer) grouped by processor, the groups in processor order,
 * each in sequence order (file order for equal numbers). positions gets the n - 1 positions
 * one group after the other, lens each group's length (room for n - 1 of each). Returns how
 * many groups, or -1 when memory ran out. */
int32_t order_streams(const uint16_t *processors, const int64_t *sequences, uint32_t n,
                      uint32_t *positions, uint32_t *lens);

#endif
