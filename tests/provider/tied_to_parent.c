/* tied_to_parent.c: linked into every C program the tests build. The program gets SIGKILL when
 * the thread that started it ends (a killed test run, a test program that died), so none is
 * left running without its parent. WPPTRACE_TEST_PARENT names the test program that spawned it
 * (set here for the programs this one starts): if that one ended before the tie was made, this
 * one ends at once. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

/* Whether process `pid` has ended: gone, or a zombie its own parent has not waited for yet
 * (declared in child_calls.h). */
int process_ended(pid_t pid) {
    if (kill(pid, 0) != 0) return errno == ESRCH;
    char path[40], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(stat, 1, sizeof stat - 1, f);
    fclose(f);
    stat[n] = 0;
    const char *state = strrchr(stat, ')');         /* the name may hold anything but ends here */
    return state && state[1] == ' ' && (state[2] == 'Z' || state[2] == 'X');
}

__attribute__((constructor)) static void tied_to_parent(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char *named = getenv("WPPTRACE_TEST_PARENT");
    pid_t spawner = named ? (pid_t)atoi(named) : 0;
    /* another parent than the one named (a program started through a shell) is tied to as well */
    if (spawner > 0 && getppid() != spawner && process_ended(spawner)) _exit(126);
    char own[24];
    snprintf(own, sizeof own, "%d", (int)getpid());
    setenv("WPPTRACE_TEST_PARENT", own, 1);
}
