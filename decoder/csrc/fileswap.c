/* fileswap.c: renameat2(RENAME_EXCHANGE) through the system call itself: older C libraries
 * have no wrapper for it, and looking one up at run time (ctypes) costs milliseconds. */
#include <errno.h>
#include "fileswap.h"

#ifdef __linux__
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

int fileswap_exchange(const char *a, const char *b)
{
#if defined(__linux__) && defined(SYS_renameat2)
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, FILESWAP_RENAME_EXCHANGE);
#else
    (void)a;
    (void)b;
    errno = ENOSYS;
    return -1;
#endif
}
