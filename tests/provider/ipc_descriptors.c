/* ipc_descriptors.c: a frame that brings more descriptors than the control plane takes.
 * (tests/provider/test_ipc_descriptors.py builds it on the core and runs it.)
 *
 *     ipc_descriptors MODE
 * One end of a socket pair sends a frame header whose SCM_RIGHTS message holds N descriptors
 * (copies of /dev/null); the other end receives it with wpt_ipc_recv, asking for one. MODE:
 *     two     N = 2: one control message as long as the receiver's room for one descriptor
 *             (the room is rounded up to fit a second int on 64-bit systems)
 *     three   N = 3: more than the room holds, so the control data arrives cut short
 *     one     N = 1: the frame a host sends, for comparison
 * prints "received 0|1 eproto 0|1 kept 0|1 leaked N": whether the frame was received, whether
 * it failed with EPROTO, whether a descriptor was handed over, and how many descriptors more
 * this process has open afterwards than before (the handed-over one closed); exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "child_calls.h"


int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int count = strcmp(argv[1], "three") == 0 ? 3 : strcmp(argv[1], "two") == 0 ? 2 : 1;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return 3;
    int before = open_descriptors();

    int fds[3];
    for (int i = 0; i < count; i++) fds[i] = open("/dev/null", O_RDONLY | O_CLOEXEC);
    wpt_frame head = {WPT_WIRE_MAGIC, WPT_REPLY, 0, 0};
    struct iovec iov = {&head, sizeof head};
    union {
        struct cmsghdr h;
        char room[CMSG_SPACE(3 * sizeof(int))];
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.room;
    msg.msg_controllen = CMSG_SPACE((size_t)count * sizeof(int));
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN((size_t)count * sizeof(int));
    memcpy(CMSG_DATA(c), fds, (size_t)count * sizeof(int));
    if (sendmsg(pair[0], &msg, 0) != (ssize_t)sizeof head) return 4;
    for (int i = 0; i < count; i++) close(fds[i]);   /* the copies in flight are the receiver's */

    wpt_frame frame;
    char buf[16];
    void *payload = buf;
    int kept = -1;
    int rc = wpt_ipc_recv(pair[1], &frame, &payload, sizeof buf, &kept, 1000);
    int eproto = rc != 0 && errno == EPROTO;
    int had = kept >= 0;
    if (kept >= 0) close(kept);
    int after = open_descriptors();
    printf("received %d eproto %d kept %d leaked %d\n", rc == 0, eproto, had, after - before);
    return 0;
}
