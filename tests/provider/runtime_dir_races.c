/* runtime_dir_races.c: the runtime directory given another directory's name between its check
 * and its use (the core's test point after the check). Usage: runtime_dir_races MODE DIR,
 * with DIR the runtime directory to use (it must not exist). Prints "name value" pairs.
 *   listen:   a socket bound right after the check
 *   registry: the registry made right after the check
 * The directory checked is renamed DIR.checked and a directory anyone may write to takes
 * its name: what is made must be in the one checked, nothing in the other.
 *   no-proc:  no /proc (its descriptors named in a directory that is not there): "dir RC"
 *             (ERROR_NOT_SUPPORTED, not a refusal of the directory) */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"

static char g_dir[512], g_checked[600];
static _Atomic int g_armed;

static void swap_directory(int point) {
    if (point != WPT_POINT_RUNTIME_DIR_CHECKED || !atomic_exchange(&g_armed, 0)) return;
    if (rename(g_dir, g_checked) != 0 || mkdir(g_dir, 0700) != 0 || chmod(g_dir, 0777) != 0)
        _exit(10);
}

static int exists_in(const char *dir, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return lstat(path, &st) == 0;
}

int main(int argc, char **argv) {
    if (argc != 3 || strlen(argv[2]) >= sizeof g_dir) return 2;
    snprintf(g_dir, sizeof g_dir, "%s", argv[2]);
    snprintf(g_checked, sizeof g_checked, "%s.checked", g_dir);
    setenv("WPPTRACE_RUNTIME_DIR", g_dir, 1);
    wpt_test_point = swap_directory;
    if (strcmp(argv[1], "listen") == 0) {
        char path[600];
        if (wpt_socket_path(path, sizeof path, 'p', 999999997) != 0) return 3;
        atomic_store(&g_armed, 1);
        int fd = wpt_ipc_listen(path);
        printf("made %d in_checked %d in_other %d\n", fd >= 0, exists_in(g_checked, "p-999999997.sock"),
               exists_in(g_dir, "p-999999997.sock"));
        if (fd >= 0) close(fd);
    } else if (strcmp(argv[1], "no-proc") == 0) {
        wpt_proc_fd_dir = "/nonexistent-proc/self/fd";
        printf("dir %u\n", (unsigned)wpt_runtime_dir(NULL));
    } else if (strcmp(argv[1], "registry") == 0) {
        if (wpt_runtime_dir(NULL) != ERROR_SUCCESS) return 3;
        atomic_store(&g_armed, 1);
        ULONG rc;
        wpt_registry *reg = wpt_registry_lock(1, &rc);
        if (reg) wpt_registry_unlock();
        printf("made %d in_checked %d in_other %d\n", reg != NULL, exists_in(g_checked, "registry"),
               exists_in(g_dir, "registry"));
    } else {
        return 2;
    }
    return 0;
}
