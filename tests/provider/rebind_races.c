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
 *       fork_busy  the registry's lock is held by a stopped process (another run of this
 *             program, MODE hold) when the endpoint thread binds the socket again after the
 *             clean-up: once the thread waits for that lock, another thread forks (the parent
 *             waits 30 s at most for the fork to return). Prints "prompt 1" if the fork
 *             returned while the thread still waited (before the holder was let go), then
 *             "bound 1" once the socket is in the directory again (the holder killed).
 *       exit_busy  the same, the process exits instead of forking; an atexit handler run after
 *             the core's prints "prompt 1" if the exit got there while the thread still waited
 *             (the holder is killed after 30 s if not, and "prompt 0" printed), then kills the
 *             holder and waits until the thread is past its bind (held there until the process
 *             ends). Prints "pid N" and "rebound 1" if the thread got there; the test looks for
 *             p-N.sock in the directory once it ended.
 *       reused  the directory made again is found with the inode number of the one the socket
 *             was bound in (the test build's knob: a disk filesystem may reuse it). Prints
 *             "deferred N": the checks that put the bind off (as for a directory that stayed)
 *             before the socket was bound again.
 *       hold  (run by the busy modes) holds the lock of DIR/registry, says so on its stdout,
 *             and stops itself.
 * DIR is unused but by hold (the runtime directory is the environment's).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID g_control = {0x7b1e4a40, 0x5c2d, 0x4e6f, {1, 2, 3, 4, 5, 6, 7, 8}};
static sem_t g_held, g_release;
static _Atomic int g_hold_at;               /* the test point the endpoint thread is held at */
static _Atomic int g_polled;                /* the endpoint thread polled since it was let go */
static _Atomic int g_released;
static _Atomic int g_rebinding_seen;        /* the endpoint thread reached WPT_POINT_REBINDING */
static _Atomic int g_rebound_seen;          /* ... and WPT_POINT_REBOUND */
static _Atomic int g_waiting;               /* it waits for the registry's lock between them */
static _Atomic int g_forked;
static _Atomic int g_stay_rebound;          /* the endpoint thread stays at WPT_POINT_REBOUND */
static pid_t g_holder = -1;
static volatile sig_atomic_t g_late;        /* the holder was killed: the exit waited too long */

/* Held once. In `fork` mode for 3 s at most: with the socket bound under the endpoint's lock,
 * the fork waits for the thread, and nobody lets it go meanwhile. */
static _Atomic int g_deferred;

static void at_point(int point) {
    if (point == WPT_POINT_REBIND_DEFERRED) atomic_fetch_add(&g_deferred, 1);
    if (point == WPT_POINT_REBINDING) atomic_store(&g_rebinding_seen, 1);
    if (point == WPT_POINT_REBOUND) atomic_store(&g_rebound_seen, 1);
    if (point == WPT_POINT_REBOUND && atomic_load(&g_stay_rebound))
        for (;;) pause();                   /* until the process ends */
    if (point == WPT_POINT_REGISTRY_WAITING && atomic_load(&g_rebinding_seen) && !atomic_load(&g_rebound_seen))
        atomic_store(&g_waiting, 1);
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

static void let_go_at_exit(void) {
    atomic_store(&g_released, 1);
    sem_post(&g_release);
    wait_for(&g_polled, 20000);             /* the thread's attempt to bind is over */
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

/* MODE hold: the registry's lock held, then stopped (killed with its parent: tied_to_parent.c). */
static int hold(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/registry", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0 || write(1, "h", 1) != 1) return 1;
    raise(SIGSTOP);
    for (;;) pause();
}

/* Another run of this program (spawned: no fork handler runs) holding the registry's lock,
 * stopped; -1 if it did not get there. */
static pid_t spawn_holder(const char *self, const char *dir) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    char *args[] = {(char *)self, "hold", (char *)dir, NULL};
    pid_t pid;
    int failed = posix_spawn(&pid, self, &fa, NULL, args, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(p[1]);
    char c;
    int status;
    if (failed || read(p[0], &c, 1) != 1 || waitpid(pid, &status, WUNTRACED) != pid || !WIFSTOPPED(status))
        pid = -1;
    close(p[0]);
    return pid;
}

static void end_holder(void) {
    if (g_holder <= 0) return;
    kill(g_holder, SIGKILL);
    waitpid(g_holder, NULL, 0);
    g_holder = -1;
}

/* Its child exits at once, and this thread ends before the child is reaped: a tied child
 * (fork_tied) would be killed as the thread ends, its exit status lost. */
static void *forker(void *arg) {
    pid_t child = fork();
    if (child == 0) _exit(0);
    *(pid_t *)arg = child;
    atomic_store(&g_forked, 1);
    return NULL;
}

static void too_late(int sig) {
    (void)sig;
    g_late = 1;
    kill(g_holder, SIGKILL);
}

/* Run after the core's handler at exit (registered before it). */
static void exited(void) {
    alarm(0);
    printf("prompt %d\n", !g_late && !atomic_load(&g_rebound_seen));
    fflush(stdout);
    end_holder();
    wait_for(&g_rebound_seen, 20000);       /* the registry's lock taken: the bind is over */
    printf("pid %d rebound %d\n", (int)getpid(), atomic_load(&g_rebound_seen));
    fflush(stdout);
}

/* MODE fork_busy and exit_busy. */
static int busy(const char *self, const char *dir, int exiting) {
    wpt_registry_wait_ms = 120000;          /* the thread waits until the holder is let go */
    if (exiting) {
        atexit(exited);
        atomic_store(&g_stay_rebound, 1);
    }
    TRACEHANDLE r;
    TRACE_GUID_REGISTRATION reg = {&g_control, NULL};
    if (RegisterTraceGuids(quiet, NULL, &g_control, 1, &reg, NULL, NULL, &r) != ERROR_SUCCESS) return 4;
    atomic_store(&g_hold_at, WPT_POINT_REBINDING);
    wpt_test_point = at_point;
    if (remove_and_make_again(dir) != 0) return 5;
    if ((g_holder = spawn_holder(self, dir)) < 0) return 9;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 20;
    if (sem_timedwait(&g_held, &until) != 0) return 6;
    sem_post(&g_release);
    wait_for(&g_waiting, 20000);
    if (!atomic_load(&g_waiting)) return 10;
    if (exiting) {
        signal(SIGALRM, too_late);
        alarm(30);
        exit(0);
    }
    pthread_t t;
    pid_t child = -1;
    if (pthread_create(&t, NULL, forker, &child) != 0) return 7;
    for (int i = 0; i < 30000 && !atomic_load(&g_forked); i++) usleep(1000);
    printf("prompt %d\n", atomic_load(&g_forked) && !atomic_load(&g_rebound_seen));
    end_holder();
    pthread_join(t, NULL);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 8;
    char sock[4096];
    snprintf(sock, sizeof sock, "%s/p-%d.sock", dir, (int)getpid());
    struct stat st;
    int bound = 0;
    for (int i = 0; i < 20000 && !bound; i++) {
        bound = stat(sock, &st) == 0 && S_ISSOCK(st.st_mode);
        if (!bound) usleep(1000);
    }
    printf("bound %d\n", bound);
    UnregisterTraceGuids(r);
    return 0;
}

/* MODE reused. */
static int reused(const char *dir) {
    TRACEHANDLE r;
    TRACE_GUID_REGISTRATION reg = {&g_control, NULL};
    if (RegisterTraceGuids(quiet, NULL, &g_control, 1, &reg, NULL, NULL, &r) != ERROR_SUCCESS) return 4;
    wpt_test_point = at_point;
    atomic_store(&wpt_test_bound_dir_number_reused, 1);
    if (remove_and_make_again(dir) != 0) return 5;
    wait_for(&g_rebinding_seen, 20000);
    if (!atomic_load(&g_rebinding_seen)) return 6;
    printf("deferred %d\n", atomic_load(&g_deferred));
    UnregisterTraceGuids(r);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    if (strcmp(argv[1], "hold") == 0) return hold(argv[2]);
    const char *dir = getenv("WPPTRACE_RUNTIME_DIR");
    if (!dir) return 3;
    sem_init(&g_held, 0, 0);
    sem_init(&g_release, 0, 0);
    if (strcmp(argv[1], "fork_busy") == 0 || strcmp(argv[1], "exit_busy") == 0)
        return busy(argv[0], dir, argv[1][0] == 'e');
    if (strcmp(argv[1], "reused") == 0) return reused(dir);
    int exiting = strcmp(argv[1], "exit") == 0;
    if (!exiting && strcmp(argv[1], "fork") != 0) return 2;
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
    pid_t parent = getpid(), child = fork_tied();
    if (child < 0) return 7;
    if (child == 0) _exit(sockets_named(parent));
    sem_post(&g_release);
    int status;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 8;
    printf("leaked %d\n", WEXITSTATUS(status));
    UnregisterTraceGuids(r);
    return 0;
}
