/* callback_after_clean_up.c: another process enables this process's provider on its session;
 * the endpoint thread is held at the core's test point with the ControlCallback queued, not
 * run. Meanwhile a clean-up removes the runtime directory (the session's host ends), another
 * process starts a session that gets the same LoggerId and generation in the registry made
 * again, and this process finds the registry replaced (its handles made stale). The callback
 * then runs with the first session's handle. Usage: callback_after_clean_up DIR OUT PYTHON, as
 * clean_up_handout. Prints "name value" pairs:
 *   started:  the CLI's start of the first session (0)
 *   enabled:  the CLI's enable of this process's provider on it (0)
 *   ended:    1 if its host ended after the clean-up
 *   other:    the CLI's start of the other session (0)
 *   same_id:  1 if the other session has the LoggerId of the first
 *   called:   1 if the ControlCallback ran with the first session's handle
 *   query:    a QUERY by that handle afterwards (ERROR_WMI_INSTANCE_NOT_FOUND)
 *   enable:   an EnableTrace by it (ERROR_INVALID_HANDLE)
 *   running:  the CLI's QUERY of the other session after all that (0: it runs) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "_etw_internal.h"

static const char *g_dir, *g_out, *g_python;
static _Atomic int g_armed, g_called;
static int g_ended = -1, g_other = -1, g_same_id = -1;
static ULONG g_first_id, g_host;
static _Atomic TRACEHANDLE g_given;
static const GUID g_control = {0x3e2d1c0b, 0x5a4f, 0x4e3d, {0x9c, 0x8b, 0x7a, 0x69, 0x58, 0x47, 0x36, 0x25}};
static const GUID g_message = {0x3e2d1c0c, 0x5a4f, 0x4e3d, {0x9c, 0x8b, 0x7a, 0x69, 0x58, 0x47, 0x36, 0x25}};

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* `wpptrace session ACTION NAME [OPTION VALUE]`, started (its pid) */
static pid_t cli_start(const char *action, const char *name, const char *option, const char *value) {
    pid_t pid = fork();
    if (pid == 0) {
        int quiet = open("/dev/null", O_WRONLY);      /* what it prints is not ours to print */
        if (quiet >= 0) dup2(quiet, 1);
        if (option) execl(g_python, g_python, "-m", "wpptrace", "session", action, name, option, value, (char *)NULL);
        else execl(g_python, g_python, "-m", "wpptrace", "session", action, name, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int cli_wait(pid_t pid) {
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int cli(const char *action, const char *name, const char *option, const char *value) {
    return cli_wait(cli_start(action, name, option, value));
}

/* Is the process gone (no such process, or a zombie)? Not our child: it is not waited for. */
static int gone(ULONG pid) {
    char path[64], text[512];
    snprintf(path, sizeof path, "/proc/%u/stat", (unsigned)pid);
    FILE *f = fopen(path, "r");
    if (!f) return 1;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    const char *end = strrchr(text, ')');
    return !end || end[1] != ' ' || end[2] == 'Z' || end[2] == 'X';
}

/* Held with the callback queued: the clean-up, the other session, and this process looking at
 * the registry made again (a session info by name hands no handle out). */
static void clean_up_meanwhile(int point) {
    if (point != WPT_POINT_CALLBACKS_CONFIRMED || !atomic_load(&g_armed)) return;
    atomic_store(&g_armed, 0);
    nftw(g_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 1200 && !gone(g_host); i++) nanosleep(&nap, NULL);    /* 60 s at most */
    g_ended = gone(g_host);
    nftw(g_dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);  /* whatever the ending host made again */
    char file[4096];
    snprintf(file, sizeof file, "%s/b.etl", g_out);
    g_other = cli("start", "other-b", "-f", file);
    WPPTRACE_SESSION_INFO info;
    g_same_id = wpptrace_session_info(0, "other-b", &info) == ERROR_SUCCESS && info.LoggerId == g_first_id;
}

static ULONG callback(WMIDPREQUESTCODE code, PVOID context, ULONG *size, PVOID buffer) {
    (void)context;
    (void)size;
    if (code == WMI_ENABLE_EVENTS) {
        atomic_store(&g_given, GetTraceLoggerHandle(buffer));
        atomic_store(&g_called, 1);
    }
    return ERROR_SUCCESS;
}

typedef struct { EVENT_TRACE_PROPERTIES p; char names[4096]; } props_block;

static ULONG control(TRACEHANDLE h, const char *name, ULONG code, TRACEHANDLE *handle) {
    props_block b;
    memset(&b, 0, sizeof b);
    b.p.Wnode.BufferSize = sizeof b;
    ULONG rc = ControlTraceA(h, name, &b.p, code);
    if (handle) *handle = b.p.Wnode.HistoricalContext;
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 4) return 2;
    g_dir = argv[1];
    g_out = argv[2];
    g_python = argv[3];
    setenv("WPPTRACE_RUNTIME_DIR", g_dir, 1);
    char file[4096];
    snprintf(file, sizeof file, "%s/s.etl", g_out);
    int started = cli("start", "hosted-s", "-f", file);
    WPPTRACE_SESSION_INFO info;
    if (wpptrace_session_info(0, "hosted-s", &info) != ERROR_SUCCESS) return 3;   /* no handle out */
    g_host = info.HostProcessId;
    g_first_id = info.LoggerId;
    TRACE_GUID_REGISTRATION reg = {&g_message, NULL};
    TRACEHANDLE registration;
    if (RegisterTraceGuids(callback, NULL, &g_control, 1, &reg, NULL, NULL, &registration) != ERROR_SUCCESS)
        return 4;
    wpt_test_point = clean_up_meanwhile;
    atomic_store(&g_armed, 1);
    char guid[64];
    snprintf(guid, sizeof guid, "3e2d1c0b-5a4f-4e3d-9c8b-7a6958473625");
    int enabled = cli("enable", "hosted-s", "--guid", guid);
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 2400 && !atomic_load(&g_called); i++) nanosleep(&nap, NULL);   /* 120 s */
    wpt_test_point = NULL;
    TRACEHANDLE given = atomic_load(&g_given);
    int called = atomic_load(&g_called) && (uint16_t)given == g_first_id;
    ULONG query = control(given & 0xFF00FFFFull, NULL, EVENT_TRACE_CONTROL_QUERY, NULL);
    ULONG enable = EnableTrace(1, 0, 4, &g_control, given & 0xFF00FFFFull);
    int running = cli("query", "other-b", NULL, NULL);
    cli("stop", "other-b", NULL, NULL);
    UnregisterTraceGuids(registration);
    printf("started %d enabled %d ended %d other %d same_id %d\n", started, enabled, g_ended, g_other, g_same_id);
    printf("called %d query %u enable %u running %d\n", called, (unsigned)query, (unsigned)enable, running);
    return 0;
}
