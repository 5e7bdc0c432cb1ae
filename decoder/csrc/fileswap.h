/* fileswap.h: swapping two file names in one step, for outputs replaced in place.
 *
 * Python sees these declarations as they are (the cffi cdef is generated from this header).
 */
#ifndef WPPTRACE_FILESWAP_H
#define WPPTRACE_FILESWAP_H

#define FILESWAP_RENAME_EXCHANGE 2      /* renameat2's flag (linux/fs.h), for C libraries without it */

/* Swap the names a and b (paths relative to the working directory) atomically: Linux's
 * renameat2 with RENAME_EXCHANGE. 0, or -1 with errno set (ENOSYS where the system has no
 * such call; EINVAL where the file system cannot). */
int fileswap_exchange(const char *a, const char *b);

#endif
