/* private_enable_in_child.c: a process enables a provider's GUID on a private session of its
 * own, before the provider registers, and forks. In the child a clean-up removes the runtime
 * directory and another process starts a session in the registry made again, which gets the
 * private session's slot and generation. Then the child's provider registers: the enable it
 * inherited names a private session, which has no host and is the parent's alone, so it must not
 * join the other process's session (tests/provider/test_private_enable_in_child.py builds it
 * with the core's test points).
 *
 *     private_enable_in_child DIR          the parent of the private session
 *     private_enable_in_child DIR other    starts the other session and prints its slot and
 *                                          generation
 * DIR: where the log files go (the runtime directory is the environment's).
 * Prints "private_slot N private_generation N other_slot N other_generation N started N
 * enabled_on N other N enabled N stop N": the sessions' slots and whole generations, what the
 * private start and its EnableTrace returned, what the other start returned, whether the child's
 * provider was enabled once registered (1: it joined the other session), and what stopping the
 * other session by name returned.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "_etw_internal.h"
#include "session_calls.h"

static const GUID CONTROL = {0x2b7d40e1, 0x6c58, 0x4f93, {0xa1, 0x0e, 0x54, 0xd2, 0x8b, 0x36, 0xc9, 0x7f}};
static char g_self[4096];
static const char *g_dir;

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    g_dir = argv[1];
    const char *runtime = getenv("WPPTRACE_RUNTIME_DIR");
    if (!runtime) return 3;
    uint32_t slot = 0, generation = 0;
    if (argc == 3) {
        if (strcmp(argv[2], "other") != 0) return 2;
        TRACEHANDLE h = 0;
        ULONG rc = start(g_dir, "private-other", &h);
        if (rc == ERROR_SUCCESS) rc = wpt_registry_find("private-other", &slot, &generation);
        printf("other_slot %u other_generation %u\n", (unsigned)slot, (unsigned)generation);
        return (int)rc;
    }
    if (argc != 2) return 2;
    ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
    if (n <= 0) return 4;
    g_self[n] = 0;
    TRACEHANDLE h = 0;
    ULONG started = start_private_file(g_dir, "private-first", &h);
    ULONG enabled_on = started == ERROR_SUCCESS ? EnableTrace(1, 0, 4, &CONTROL, h) : 0xFFFFFFFFu;
    slot = wpt_handle_slot(h);
    generation = wpt_sessions[slot].registry_generation;
    printf("private_slot %u private_generation %u started %u enabled_on %u\n", (unsigned)slot,
           (unsigned)generation, (unsigned)started, (unsigned)enabled_on);
    fflush(stdout);
    pid_t child = fork_tied();
    if (child < 0) return 5;
    if (child == 0) {
        char *other_argv[] = {g_self, (char *)g_dir, "other", NULL};
        int other = clean_up_elsewhere(runtime) == 0 ? run(other_argv) : -1;
        TRACE_GUID_REGISTRATION reg = {&CONTROL, NULL};
        TRACEHANDLE provider = 0;
        if (RegisterTraceGuidsA(track_control, NULL, &CONTROL, 1, &reg, NULL, NULL, &provider) != ERROR_SUCCESS)
            _exit(6);
        int enabled = atomic_load(&g_enabled);
        printf("other %d enabled %d stop %u\n", other, enabled, (unsigned)stop_by_name("private-other"));
        fflush(stdout);
        UnregisterTraceGuids(provider);
        _exit(0);
    }
    int status = 0;
    if (waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 7;
    stop(h);
    return WEXITSTATUS(status);
}
