/* clean_up_calls.h: what the C test programs of a clean-up of the runtime directory share (the
 * test builds them with this folder on their include path): the directory removed as a /tmp
 * clean-up does, `wpptrace session` run by the interpreter given, and a process that is not
 * ours (a session host) waited for until it ended. */
#ifndef WPPTRACE_TESTS_CLEAN_UP_CALLS_H
#define WPPTRACE_TESTS_CLEAN_UP_CALLS_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static inline int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static inline int remove_tree(const char *dir) {
    return nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* `PYTHON -m wpptrace session ACTION NAME [OPTION VALUE]` started: its pid. */
static inline pid_t cli_start(const char *python, const char *action, const char *name, const char *option,
                              const char *value) {
    pid_t pid = fork();
    if (pid == 0) {
        int quiet = open("/dev/null", O_WRONLY);      /* what it prints is not ours to print */
        if (quiet >= 0) dup2(quiet, 1);
        if (option) execl(python, python, "-m", "wpptrace", "session", action, name, option, value, (char *)NULL);
        else execl(python, python, "-m", "wpptrace", "session", action, name, (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Its exit status, -1 if it did not exit. */
static inline int cli_wait(pid_t pid) {
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static inline int cli(const char *python, const char *action, const char *name, const char *option,
                      const char *value) {
    return cli_wait(cli_start(python, action, name, option, value));
}

/* Is the process gone (no such process, or a zombie)? */
static inline int process_gone(unsigned pid) {
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%u/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *end = strrchr(text, ')');
    return !end || end[1] != ' ' || end[2] == 'Z' || end[2] == 'X';
}

/* 1 once it ended, 0 if it still runs after 60 s (it is not our child: never waited for). */
static inline int wait_gone(unsigned pid) {
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 1200 && !process_gone(pid); i++) nanosleep(&nap, NULL);
    return process_gone(pid);
}

#endif
