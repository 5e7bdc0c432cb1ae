/* application_threads.c: the count of this process's threads that are not the core's, made
 * while core threads end and start (tests/provider/test_application_threads.py builds it with
 * WPT_TEST_POINTS and runs it).
 *
 *     application_threads MODE DIR
 * MODE: churn  one core thread A runs; as the count is made, A ends before the listing and a
 *              new core thread C starts after it (so neither is listed, while the core's count
 *              is the same before and after)
 * Prints "application_threads N" (the main thread is the only one of the application), then
 * exits 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

typedef struct {
    sem_t running, end;
    _Atomic uint32_t tid;
    pthread_t thread;
} core_thread;

static core_thread g_a, g_c;
static _Atomic int g_end_armed, g_start_armed;

static void *core_thread_main(void *arg) {
    core_thread *t = arg;
    atomic_store(&t->tid, wpt_current_tid());
    sem_post(&t->running);
    while (sem_wait(&t->end) != 0 && errno == EINTR) {}
    return NULL;
}

static int start_core_thread(core_thread *t) {
    sem_init(&t->running, 0, 0);
    sem_init(&t->end, 0, 0);
    if (wpt_thread_create(&t->thread, core_thread_main, t) != 0) return -1;
    while (sem_wait(&t->running) != 0 && errno == EINTR) {}    /* it counted itself by now */
    return 0;
}

/* `t` ended and gone from /proc/self/task (0), or still listed after 10 s (-1). */
static int end_core_thread(core_thread *t) {
    sem_post(&t->end);
    pthread_join(t->thread, NULL);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%u", (unsigned)atomic_load(&t->tid));
    for (int i = 0; i < 10000; i++) {
        if (access(path, F_OK) != 0) return 0;
        usleep(1000);
    }
    return -1;
}

static _Atomic int g_hook_failed;

static void at_point(int point) {
    if (point == WPT_POINT_THREADS_LISTING && atomic_exchange(&g_end_armed, 0))
        atomic_fetch_or(&g_hook_failed, end_core_thread(&g_a) != 0);
    if (point == WPT_POINT_THREADS_LISTED && atomic_exchange(&g_start_armed, 0))
        atomic_fetch_or(&g_hook_failed, start_core_thread(&g_c) != 0);
}

static int churn(void) {
    if (start_core_thread(&g_a) != 0) return 3;
    atomic_store(&g_end_armed, 1);
    atomic_store(&g_start_armed, 1);
    wpt_test_point = at_point;
    int counted = wpt_application_threads();
    wpt_test_point = NULL;
    if (atomic_load(&g_hook_failed)) return 4;
    printf("application_threads %d\n", counted);
    fflush(stdout);
    return end_core_thread(&g_c) == 0 ? 0 : 5;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    if (strcmp(argv[1], "churn") == 0) return churn();
    return 2;
}
