/* fdwait.h: waiting until one of a few descriptors has something to read, or a time passes.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 * fmt -j's parent waits on its workers' pipes for their news. Python's select module is a
 * shared library: loading it costs a process 1.0-1.7 ms (its dlopen), and it cannot be
 * loaded with no descriptor left; this module is loaded already. poll(2): no limit on the
 * descriptors' numbers (select's FD_SETSIZE).
 */
#ifndef WPPTRACE_FDWAIT_H
#define WPPTRACE_FDWAIT_H
#include <stdint.h>

/* descriptors waited on without an allocation (fmt -j's parent: one per worker) */
#define FDWAIT_ON_STACK 16

/* Wait up to timeout_ms (-1: no limit) until one of the n descriptors fds can be read
 * without waiting (data, its other end closed, or an error). Returns how many can, 0 when
 * the time passed first, -1 when the wait could not be made or a signal ended it (errno
 * says: EINTR for a signal). */
int32_t fd_wait_readable(const int32_t *fds, int32_t n, int32_t timeout_ms);

#endif
