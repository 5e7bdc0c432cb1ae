/* heap.c: holding the memory a decoding run frees (heap.h). */
#include "heap.h"

#if defined(__GLIBC__)
#include <malloc.h>

/* glibc's defaults (mallopt(3)). Setting either threshold turns glibc's adaptive mmap
 * threshold off for good and replaces any value the environment or the program set (none can
 * be read back): so only a process that ends with the run holds (a command line's own) */
#define GLIBC_DEFAULT_THRESHOLD (128 * 1024)

int32_t heap_hold(int32_t hold)
{
    if (hold) {
        mallopt(M_TRIM_THRESHOLD, HEAP_HELD_TOP);
        mallopt(M_MMAP_THRESHOLD, HEAP_HELD_OWN_MAPPING);
    } else {
        mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT_THRESHOLD);
        mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT_THRESHOLD);   /* the next free trims */
    }
    return 1;
}
#else
int32_t heap_hold(int32_t hold)
{
    (void)hold;
    return 0;
}
#endif
