/* rebind_races.c: a provider process binds its endpoint socket again after a clean-up of the
 * runtime directory (WPPTRACE_RUNTIME_DIR) while the process exits or forks
 * (tests/provider/test_rebind_races.py builds it with the core's test points and runs it).
 *
 *     rebind_races MODE DIR
 * MODE: exit  the endpoint thread is held as it is about to bind the socket again in the
 *             directory made again; the process exits meanwhile, and an atexit handler run
 *             after the core's lets the thread go on and waits until it polls again. Prints
 *             "pid N" first; the test looks for p-N.sock in the directory once it ended.
 *       fork  the endpoint thread is held once it bound the socket again (for 3 s at most);
 *             the process forks meanwhile. Prints "leaked N": the listening sockets named
 *             p-<parent's pid>.sock the child found open.
 * DIR is unused (the runtime directory is the environment's).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

static const GUID g_control = {0x7b1e4a40, 0x5c2d, 0x4e6f, {1, 2, 3, 4, 5, 6, 7, 8}};
static sem_t g_held, g_release;
static _Atomic int g_hold_at;               /* the test point the endpoint thread is held at */
static _Atomic int g_polled;                /* the endpoint thread polled since it was let go */
static _Atomic int g_released;

/* Held once. In `fork` mode for 3 s at most: with the socket bound under the endpoint's lock,
 * the fork waits for the thread, and nobody lets it go meanwhile. */
static void at_point(int point) {
    if (point == WPT_POINT_ENDPOINT_POLL && atomic_load(&g_released)) atomic_store(&g_polled, 1);
    if (point != atomic_load(&g_hold_at)) return;
    atomic_store(&g_hold_at, 0);
    sem_post(&g_held);
    if (point == WPT_POINT_REBINDING) {     /* let go by the handler run after the core's at exit */
        while (sem_wait(&g_release) != 0 && errno == EINTR) {}
        return;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 3;
    while (sem_timedwait(&g_release, &until) != 0 && errno == EINTR) {}
}

static ULONG quiet(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)code;
    (void)context;
    (void)size;
    (void)buffer;
    return ERROR_SUCCESS;
}

/* A clean-up of /tmp: the runtime directory and its files removed, then made again (as another
 * process's first use does). */
static int remove_and_make_again(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
    return rmdir(dir) == 0 && mkdir(dir, 0700) == 0 ? 0 : -1;
}

static void wait_for(_Atomic int *flag) {
    for (int i = 0; i < 20000 && !atomic_load(flag); i++) usleep(1000);
}

static void let_go_at_exit(void) {
    atomic_store(&g_released, 1);
    sem_post(&g_release);
    wait_for(&g_polled);                    /* the thread's attempt to bind is over */
}

/* The sockets open here named p-<pid>.sock. */
static int sockets_named(pid_t pid) {
    char name[64];
    snprintf(name, sizeof name, "/p-%d.sock", (int)pid);
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d) return -1;
    struct dirent *e;
    while ((e = readdir(d))) {
        int fd = atoi(e->d_name);
        struct sockaddr_un a;
        socklen_t len = sizeof a;
        memset(&a, 0, sizeof a);
        if (e->d_name[0] == '.' || fd == dirfd(d) || getsockname(fd, (struct sockaddr *)&a, &len) != 0
            || a.sun_family != AF_UNIX)
            continue;
        size_t have = strnlen(a.sun_path, sizeof a.sun_path), want = strlen(name);
        n += have >= want && memcmp(a.sun_path + have - want, name, want) == 0;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int exiting = strcmp(argv[1], "exit") == 0;
    if (!exiting && strcmp(argv[1], "fork") != 0) return 2;
    const char *dir = getenv("WPPTRACE_RUNTIME_DIR");
    if (!dir) return 3;
    sem_init(&g_held, 0, 0);
    sem_init(&g_release, 0, 0);
    if (exiting) atexit(let_go_at_exit);    /* before the core's: run after it */
    TRACEHANDLE r;
    TRACE_GUID_REGISTRATION reg = {&g_control, NULL};
    if (RegisterTraceGuids(quiet, NULL, &g_control, 1, &reg, NULL, NULL, &r) != ERROR_SUCCESS) return 4;
    atomic_store(&g_hold_at, exiting ? WPT_POINT_REBINDING : WPT_POINT_REBOUND);
    wpt_test_point = at_point;
    if (remove_and_make_again(dir) != 0) return 5;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    if (sem_timedwait(&g_held, &until) != 0) return 6;
    if (exiting) {
        printf("pid %d\n", (int)getpid());
        fflush(stdout);
        exit(0);
    }
    pid_t parent = getpid(), child = fork();
    if (child < 0) return 7;
    if (child == 0) _exit(sockets_named(parent));
    sem_post(&g_release);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 8;
    printf("leaked %d\n", WEXITSTATUS(status));
    UnregisterTraceGuids(r);
    return 0;
}
