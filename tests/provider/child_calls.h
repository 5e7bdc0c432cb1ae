/* child_calls.h: the processes of the C test programs of this folder (the test builder puts the
 * folder on their include path), in order: a process (a session's host, a child) waited for
 * until it ended; the count of this process's open descriptors; its children. A child never
 * outlives the process that made it, so a test run killed midway leaves none behind: one forked
 * with fork_tied() gets SIGKILL when the thread that forked it ends (fork from a thread that
 * lives until the child is reaped); a program of this folder started with run() ties itself to
 * its spawner as it starts (tied_to_parent.c, linked into every program the tests build).
 * clean_up_elsewhere() runs a clean-up of /tmp in another process. */
#ifndef WPPTRACE_TESTS_CHILD_CALLS_H
#define WPPTRACE_TESTS_CHILD_CALLS_H

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Whether process `pid` has ended: gone, or a zombie not yet waited for (tied_to_parent.c). */
int process_ended(pid_t pid);

/* 1 once process `pid` (ours or not: never waited for) has ended, 0 if it still runs after 60 s. */
static inline int wait_gone(pid_t pid) {
    struct timespec nap = {0, 20 * 1000 * 1000};
    for (int i = 0; i < 3000 && !process_ended(pid); i++) nanosleep(&nap, NULL);
    return process_ended(pid);
}

/* The descriptors this process has open (-1 if /proc/self/fd cannot be read). */
static inline int open_descriptors(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

extern char **environ;

/* fork(), its child killed once the forking thread ends; a child whose parent ended before
 * that was set ends at once. */
static inline pid_t fork_tied(void) {
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(126);
    }
    return pid;
}

/* run `argv` in a process of its own and wait for it: its exit status, -1 if it did not exit.
 * Spawned, not forked: no fork handler runs, so the caller may hold the core's locks. */
static inline int run(char *const argv[]) {
    pid_t pid;
    fflush(stdout);
    if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0) return -1;
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A clean-up of /tmp removing `dir`, by another process (rm -rf): rm's exit status. */
static inline int clean_up_elsewhere(const char *dir) {
    char *rm[] = {"/bin/rm", "-rf", (char *)dir, NULL};
    return run(rm);
}

#endif
