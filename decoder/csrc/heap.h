/* heap.h: whether the process's allocator keeps the memory a decoding run frees.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * A formatting run frees and allocates again, chunk after chunk, blocks of hundreds of KB
 * (rows, text, a window's output held until its place is known). glibc gives the top of its
 * heap back to the kernel whenever more than 128 KB are free there, so each chunk's blocks
 * come back as fresh pages, each a page fault (about 1.5 us on a VM): 2,000 of a 1M-event
 * run's 10,000, more with fmt -j, whose processes copy-on-write besides. Held, the freed
 * blocks serve the next chunk.
 */
#ifndef WPPTRACE_HEAP_H
#define WPPTRACE_HEAP_H
#include <stdint.h>

/* how much free memory the heap keeps at its top while held, and the size from which a block
 * gets its own mapping (then freed straight back) */
#define HEAP_HELD_TOP 67108864
#define HEAP_HELD_OWN_MAPPING 4194304

/* hold = 1: freed memory stays in the process (up to HEAP_HELD_TOP at the heap's top; blocks
 * under HEAP_HELD_OWN_MAPPING from the heap); hold = 0: the allocator's default thresholds
 * back (128 KB both: the free top goes back at the next free; its adaptive threshold stays
 * off, and values set before are not restored: for a process that ends with the run). Returns 1 where the allocator can be told (glibc), else 0
 * (nothing done). */
int32_t heap_hold(int32_t hold);

#endif
