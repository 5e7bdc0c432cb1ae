/* clean_up_calls.h: what the C test programs of a clean-up of the runtime directory share (the
 * test builds them with this folder on their include path): their arguments DIR OUT PYTHON, the
 * directory removed as a /tmp clean-up does, `wpptrace session` run by the interpreter given, a
 * process that is not ours (a session host) waited for until it ended, the clean-up that ends
 * a session's host followed by another process's session, and ControlTrace with room for the
 * names. */
#ifndef WPPTRACE_TESTS_CLEAN_UP_CALLS_H
#define WPPTRACE_TESTS_CLEAN_UP_CALLS_H

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "child_calls.h"

/* DIR (the runtime directory to use, made this process's; it must not exist), OUT (a directory
 * for the files) and PYTHON (an interpreter with wpptrace installed, whose CLI starts the other
 * processes' sessions). */
static const char *g_dir, *g_out, *g_python;

static inline void take_arguments(char **argv) {
    g_dir = argv[1];
    g_out = argv[2];
    g_python = argv[3];
    setenv("WPPTRACE_RUNTIME_DIR", g_dir, 1);
}

/* OUT/NAME in ``file``. */
static inline void out_file(char file[4096], const char *name) {
    snprintf(file, 4096, "%s/%s", g_out, name);
}

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
    pid_t pid = fork_tied();
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

/* What the clean-up below found: -1 until it ran. */
static int g_ended = -1, g_other = -1, g_same_id = -1;

/* A clean-up of /tmp that removes the runtime directory (the session's host ``host`` ends,
 * g_ended 1 if it did), then another process's session "other-b" started (g_other the CLI's
 * status) in the registry made again, and this process looking at that registry (a session
 * info by name hands no handle out): g_same_id 1 if the other session got ``first_id``. */
static inline void clean_up_then_other_session(unsigned host, ULONG first_id) {
    remove_tree(g_dir);
    g_ended = wait_gone(host);
    remove_tree(g_dir);                     /* whatever the ending host made again */
    char file[4096];
    out_file(file, "b.etl");
    g_other = cli(g_python, "start", "other-b", "-f", file);
    WPPTRACE_SESSION_INFO info;
    g_same_id = wpptrace_session_info(0, "other-b", &info) == ERROR_SUCCESS && info.LoggerId == first_id;
}

/* EVENT_TRACE_PROPERTIES with room for the names after it. */
typedef struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props_block;

/* ControlTraceA with properties that have room for the names; the session's handle in
 * ``handle`` if given. */
static inline ULONG control(TRACEHANDLE h, const char *name, ULONG code, TRACEHANDLE *handle) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    ULONG rc = ControlTraceA(h, name, &b.p, code);
    if (handle) *handle = b.p.Wnode.HistoricalContext;
    return rc;
}

#endif
