/* fdwait.c: waiting for a descriptor to read (fdwait.h). */
#include "fdwait.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>

int32_t fd_wait_readable(const int32_t *fds, int32_t n, int32_t timeout_ms)
{
    struct pollfd local[FDWAIT_ON_STACK];
    struct pollfd *polled = local;
    int32_t i;
    int result;

    if (n < 0) {
        errno = EINVAL;
        return -1;
    }
    if (n > FDWAIT_ON_STACK) {
        polled = malloc(sizeof *polled * (size_t)n);
        if (polled == NULL) {
            errno = ENOMEM;
            return -1;
        }
    }
    for (i = 0; i < n; i++) {
        polled[i].fd = fds[i];
        polled[i].events = POLLIN;
        polled[i].revents = 0;
    }
    result = poll(polled, (nfds_t)n, timeout_ms);
    if (polled != local) {
        int saved = errno;
        free(polled);
        errno = saved;
    }
    return (int32_t)result;
}
