/* runtime_dir_holds.c: the runtime directory's held descriptor and its lock (tests/provider/
 * test_runtime_dir_holds.py builds it with WPT_TEST_POINTS and runs it).
 *
 *     runtime_dir_holds MODE DIR
 * MODE: dir-check-held  a thread's check of the runtime directory DIR is held where it opened
 *                       the directory's parent (as a hung filesystem holds it), the wait for
 *                       the registry shortened to 300 ms; another thread forks. Prints
 *                       "forked 0|1" (whether fork() returned in the parent within 5 s, the
 *                       check still held), then "check RC" once the check went on
 *       re-held         100 times the application puts a file of its own at the held
 *                       descriptor's number and closes it after the next check (the directory
 *                       is held again at another number, the two numbers taking turns). Prints
 *                       "paths N": how many paths of the directory the core handed out
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "child_calls.h"

static sem_t g_arrived, g_go;
static _Atomic int g_armed;
static ULONG g_checked = 99;

static void at_point(int point) {
    if (point != WPT_POINT_RUNTIME_DIR_OPENING || !atomic_exchange(&g_armed, 0)) return;
    sem_post(&g_arrived);
    while (sem_wait(&g_go) != 0 && errno == EINTR) {}
}

static void *check_directory(void *arg) {
    (void)arg;
    g_checked = wpt_runtime_dir(NULL);
    return NULL;
}

static void *fork_once(void *arg) {
    (void)arg;
    pid_t child = fork_tied();
    if (child == 0) _exit(0);
    int status;
    while (child > 0 && waitpid(child, &status, 0) < 0 && errno == EINTR) {}
    return NULL;
}

static int dir_check_held(void) {
    if (wpt_runtime_dir(NULL) != ERROR_SUCCESS) return 3;      /* resolved and made */
    wpt_registry_wait_ms = 300;
    sem_init(&g_arrived, 0, 0);
    sem_init(&g_go, 0, 0);
    wpt_test_point = at_point;
    atomic_store(&g_armed, 1);
    pthread_t checker, forker;
    if (pthread_create(&checker, NULL, check_directory, NULL) != 0) return 4;
    while (sem_wait(&g_arrived) != 0 && errno == EINTR) {}
    if (pthread_create(&forker, NULL, fork_once, NULL) != 0) return 5;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    int forked = pthread_timedjoin_np(forker, NULL, &until) == 0;
    printf("forked %d\n", forked);
    sem_post(&g_go);
    pthread_join(checker, NULL);
    if (!forked) pthread_join(forker, NULL);
    printf("check %u\n", (unsigned)g_checked);
    fflush(stdout);
    return 0;
}

static int re_held(void) {
    const char *seen[100];
    int paths = 0;
    for (int i = 0; i < 100; i++) {
        const char *dir;
        int held = wpt_runtime_dir_fd();
        if (held >= 0) {
            int mine = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (mine < 0 || dup2(mine, held) < 0) return 3;    /* the application's file there now */
            close(mine);
        }
        if (wpt_runtime_dir(&dir) != ERROR_SUCCESS) return 4;
        if (held >= 0) close(held);
        int known = 0;
        for (int k = 0; k < paths && !known; k++) known = seen[k] == dir;
        if (!known) seen[paths++] = dir;
    }
    printf("paths %d\n", paths);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    setenv("WPPTRACE_RUNTIME_DIR", argv[2], 1);
    if (strcmp(argv[1], "dir-check-held") == 0) return dir_check_held();
    if (strcmp(argv[1], "re-held") == 0) return re_held();
    return 2;
}
