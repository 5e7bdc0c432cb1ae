/* fork_held_dir.c: a fork that goes on without the runtime directory's lock while a check holds
 * the directory at a new descriptor and has not stored its path yet. The application closed
 * the descriptor the directory was held at and put another directory of its own at that
 * number; the next check opened the runtime directory again at another number. The fork waits
 * for the lock a short while (the registry's wait, shortened), then goes on. Usage:
 * fork_held_dir RUNTIME OTHER, two directories of this user, private. Prints "name value":
 *   forked:  1 if the fork gave up waiting for the directory's lock and went on without it
 *   child:   1 if the child's paths in the runtime directory reach it, 0 if they reach the
 *            application's directory (the path of the old number) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "child_calls.h"

static sem_t g_held, g_forked;
static _Atomic int g_armed, g_went_on;
static const char *g_runtime;
static int g_forked_meanwhile = -1, g_child = -1;

static void hold_check(int point) {
    if (point == WPT_POINT_FORK_UNLOCKED) atomic_store(&g_went_on, 1);
    if (point != WPT_POINT_RUNTIME_DIR_HOLDING || !atomic_exchange(&g_armed, 0)) return;
    sem_post(&g_held);
    sem_wait(&g_forked);
}

/* 1 if the directory the core's paths go through is the runtime directory. */
static int paths_reach_runtime(void) {
    const char *dir = NULL;
    struct stat at, runtime;
    if (wpt_runtime_dir(&dir) != ERROR_SUCCESS || !dir) return 0;
    return stat(dir, &at) == 0 && stat(g_runtime, &runtime) == 0 && at.st_dev == runtime.st_dev
        && at.st_ino == runtime.st_ino;
}

static void *forker(void *arg) {
    (void)arg;
    sem_wait(&g_held);
    pid_t pid = fork_tied();
    if (pid == 0) {
        wpt_test_point = NULL;
        _exit(paths_reach_runtime() ? 0 : 1);
    }
    int status = 0;
    if (pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status))
        g_child = WEXITSTATUS(status) == 0;
    g_forked_meanwhile = atomic_load(&g_went_on);
    sem_post(&g_forked);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    g_runtime = argv[1];
    setenv("WPPTRACE_RUNTIME_DIR", g_runtime, 1);
    sem_init(&g_held, 0, 0);
    sem_init(&g_forked, 0, 0);
    wpt_registry_wait_ms = 200;               /* the fork waits this long for the lock */
    if (!paths_reach_runtime()) return 3;
    int held = wpt_runtime_dir_fd();
    int other = open(argv[2], O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (held < 0 || other < 0 || dup3(other, held, O_CLOEXEC) != held) return 4;
    close(other);                             /* the application's directory at our number */
    pthread_t t;
    if (pthread_create(&t, NULL, forker, NULL) != 0) return 5;
    wpt_test_point = hold_check;
    atomic_store(&g_armed, 1);
    int parent = paths_reach_runtime();
    wpt_test_point = NULL;
    pthread_join(t, NULL);
    printf("parent %d forked %d child %d\n", parent, g_forked_meanwhile, g_child);
    return 0;
}
