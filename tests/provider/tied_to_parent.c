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
#include <sys/prctl.h>
#include <unistd.h>

__attribute__((constructor)) static void tied_to_parent(void) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    const char *named = getenv("WPPTRACE_TEST_PARENT");
    pid_t spawner = named ? (pid_t)atoi(named) : 0;
    /* another parent than the one named (a program started through a shell) is tied to as well */
    if (spawner > 0 && getppid() != spawner && kill(spawner, 0) != 0 && errno == ESRCH) _exit(126);
    char own[24];
    snprintf(own, sizeof own, "%d", (int)getpid());
    setenv("WPPTRACE_TEST_PARENT", own, 1);
}
