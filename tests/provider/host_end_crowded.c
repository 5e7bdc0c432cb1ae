/* host_end_crowded.c: wpt_host_end (a StartTrace making a host it started stop) with few
 * descriptors free, with its signal refused, or with the host's start unreadable once its pidfd
 * is taken. The "host" is a child of this program that blocks SIGTERM, so a signal sent stays
 * pending where /proc shows it (tests/provider/test_host_end_crowded.py builds it with the
 * core's test points).
 *
 *     host_end_crowded MODE
 *       one-free          one descriptor free: the pidfd takes it, the start cannot be read
 *       none-free         no descriptor free: pidfd_open fails
 *       two-free          two descriptors free: the pidfd and the read of the start
 *       taken-after       descriptors to spare, every one taken once the pidfd is (as another
 *                         thread may)
 *       refused           descriptors to spare, pidfd_send_signal refused (EPERM)
 *       unreadable        the start unreadable (ENOMEM) once the pidfd is taken
 *       unreadable-gone   the same, and the host gone (reaped) once the pidfd is taken
 * Prints "pidfd N signalled N unstopped N forked N by-pidfd N by-pid N": whether pidfd_open is
 * there at all, whether the child was sent SIGTERM (-1: it is gone), wpptrace_hosts_not_stopped()
 * afterwards, what that says in a child forked then (the parent's hosts are the parent's to
 * report), and how many hosts were signalled through a pidfd and by their pid.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "child_calls.h"

static int g_fillers[4096];
static int g_filled;

/* Every descriptor taken but `spare`. */
static void crowd(int spare) {
    int f;
    while (g_filled < 4096 && (f = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) g_fillers[g_filled++] = f;
    while (spare-- > 0 && g_filled) close(g_fillers[--g_filled]);
}

static void give_back(void) {
    while (g_filled) close(g_fillers[--g_filled]);
}

/* Is SIGTERM pending for the process `pid` (blocked there)? */
static int term_pending(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    unsigned long long pending = 0, shared = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "SigPnd:", 7) == 0) pending = strtoull(line + 7, NULL, 16);
        if (strncmp(line, "ShdPnd:", 7) == 0) shared = strtoull(line + 7, NULL, 16);
    }
    fclose(f);
    return ((pending | shared) >> (SIGTERM - 1)) & 1;
}

static pid_t g_host;
static int g_at_pidfd;                  /* 1: take every descriptor; 2: end and reap the host */

static void at_point(int point) {
    if (point != WPT_POINT_HOST_PIDFD_TAKEN) return;
    if (g_at_pidfd == 1) crowd(0);
    if (g_at_pidfd == 2 && kill(g_host, SIGKILL) == 0) waitpid(g_host, NULL, 0);
}

int main(int argc, char **argv) {
    if (argc != 2) return 9;
    const char *mode = argv[1];
    int free_left = strcmp(mode, "one-free") == 0 ? 1 : strcmp(mode, "none-free") == 0 ? 0
                  : strcmp(mode, "two-free") == 0 ? 2 : -1;
    if (free_left < 0 && strcmp(mode, "taken-after") != 0 && strcmp(mode, "refused") != 0
        && strcmp(mode, "unreadable") != 0 && strcmp(mode, "unreadable-gone") != 0) return 9;
    int ready[2];
    if (pipe(ready) != 0) return 2;
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pid_t child = fork_tied();          /* a stand-in for a host, which never ends by itself */
    if (child < 0) return 3;
    g_host = child;
    if (child == 0) {
        sigprocmask(SIG_BLOCK, &term, NULL);
        if (write(ready[1], "r", 1) != 1) _exit(1);
        for (;;) pause();
    }
    close(ready[1]);
    char c;
    if (read(ready[0], &c, 1) != 1) return 4;
    close(ready[0]);
    wpt_process_ref host = {(uint32_t)child, wpt_process_start((uint32_t)child)};
    if (!host.start) return 5;
    int probe = (int)syscall(SYS_pidfd_open, child, 0);
    int pidfd = probe >= 0;
    if (probe >= 0) close(probe);
    struct rlimit old, low;
    if (getrlimit(RLIMIT_NOFILE, &old) != 0) return 6;
    low = old;
    low.rlim_cur = 64;
    if (setrlimit(RLIMIT_NOFILE, &low) != 0) return 7;
    if (strcmp(mode, "refused") == 0) atomic_store(&wpt_test_signal_refused, 1);
    if (strncmp(mode, "unreadable", 10) == 0) atomic_store(&wpt_test_start_unreadable, 1);
    g_at_pidfd = strcmp(mode, "taken-after") == 0 ? 1 : strcmp(mode, "unreadable-gone") == 0 ? 2 : 0;
    wpt_test_point = at_point;
    if (free_left >= 0) crowd(free_left);
    wpt_host_end(&host);
    give_back();
    wpt_test_point = NULL;
    atomic_store(&wpt_test_signal_refused, 0);
    atomic_store(&wpt_test_start_unreadable, 0);
    if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 8;
    fflush(stdout);
    pid_t forked = fork_tied();
    if (forked == 0) _exit((int)wpptrace_hosts_not_stopped());
    int status = 0;
    int forked_said = forked > 0 && waitpid(forked, &status, 0) == forked && WIFEXITED(status)
                    ? WEXITSTATUS(status) : -1;
    printf("pidfd %d signalled %d unstopped %u forked %d by-pidfd %d by-pid %d\n", pidfd,
           g_at_pidfd == 2 ? -1 : term_pending(child), (unsigned)wpptrace_hosts_not_stopped(),
           forked_said, atomic_load(&wpt_test_host_end_by_pidfd), atomic_load(&wpt_test_host_end_by_pid));
    if (g_at_pidfd != 2) {
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
    }
    return 0;
}
