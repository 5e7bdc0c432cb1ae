/* host_end_crowded.c: wpt_host_end (a StartTrace making a host it started stop) with exactly
 * one descriptor free, which pidfd_open would take: the host's start could not then be read
 * from /proc (EMFILE). The "host" is a child of this program that blocks SIGTERM, so a signal
 * sent stays pending where /proc shows it (tests/provider/test_host_end_crowded.py builds it
 * with the core's test points).
 *
 *     host_end_crowded            one descriptor free
 *     host_end_crowded refused    descriptors to spare, pidfd_send_signal refused (EPERM)
 * Prints "pidfd N signalled N unstopped N forked N": whether pidfd_open is there at all,
 * whether the child was sent SIGTERM, wpptrace_hosts_not_stopped() afterwards, and what it says
 * in a child forked then (the parent's hosts are the parent's to report).
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

static int g_fillers[4096];
static int g_filled;

/* Every descriptor taken but one. */
static void crowd(void) {
    int f;
    while (g_filled < 4096 && (f = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) g_fillers[g_filled++] = f;
    if (g_filled) close(g_fillers[--g_filled]);
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

int main(int argc, char **argv) {
    int refused = argc == 2 && strcmp(argv[1], "refused") == 0;
    if (argc > 1 && !refused) return 9;
    int ready[2];
    if (pipe(ready) != 0) return 2;
    sigset_t term;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pid_t child = fork();
    if (child < 0) return 3;
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
    if (refused) atomic_store(&wpt_test_signal_refused, 1);
    else crowd();
    wpt_host_end(&host);
    give_back();
    atomic_store(&wpt_test_signal_refused, 0);
    if (setrlimit(RLIMIT_NOFILE, &old) != 0) return 8;
    fflush(stdout);
    pid_t forked = fork();
    if (forked == 0) _exit((int)wpptrace_hosts_not_stopped());
    int status = 0;
    int forked_said = forked > 0 && waitpid(forked, &status, 0) == forked && WIFEXITED(status)
                    ? WEXITSTATUS(status) : -1;
    printf("pidfd %d signalled %d unstopped %u forked %d\n", pidfd, term_pending(child),
           (unsigned)wpptrace_hosts_not_stopped(), forked_said);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    return 0;
}
