/* clean_up_calls.h: what the C test programs of a clean-up of the runtime directory share (the
 * test builds them with this folder on their include path): their arguments DIR OUT PYTHON, the
 * directory removed as a /tmp clean-up does, `wpptrace session` run by the interpreter given,
 * the clean-up that ends a session's host followed by another process's session, and
 * ControlTrace with room for the names; with the session calls of session_calls.h. */
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
#include "session_calls.h"

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

/* What the clean-up below found: -1 until it ran. */
static int g_ended = -1, g_other = -1, g_same_id = -1;

/* A clean-up of /tmp that removes the runtime directory (the session's host ``host`` ends,
 * g_ended 1 if it did), then another process's session "other-b" started (g_other the CLI's
 * status) in the registry made again, and this process looking at that registry (a session
 * info by name hands no handle out): g_same_id 1 if the other session got ``first_id``. */
static inline void clean_up_then_other_session(unsigned host, ULONG first_id) {
    remove_tree(g_dir);
    g_ended = wait_gone((pid_t)host);
    remove_tree(g_dir);                     /* whatever the ending host made again */
    char file[4096];
    out_file(file, "b.etl");
    g_other = cli(g_python, "start", "other-b", "-f", file);
    WPPTRACE_SESSION_INFO info;
    g_same_id = wpptrace_session_info(0, "other-b", &info) == ERROR_SUCCESS && info.LoggerId == first_id;
}

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
