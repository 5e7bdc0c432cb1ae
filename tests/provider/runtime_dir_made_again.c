/* runtime_dir_made_again.c: the runtime directory held, then removed and made again with the
 * inode number of the one removed (a disk filesystem may reuse it: the test build's knob has
 * the check find that number). Usage: runtime_dir_made_again RUNTIME, a directory that does
 * not exist yet. Prints "name value":
 *   registry:  the registry's lock taken after the clean-up (0), else the error
 *   landed:    1 if the registry is in the directory made again */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "_etw_internal.h"

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    setenv("WPPTRACE_RUNTIME_DIR", argv[1], 1);
    if (wpt_runtime_dir(NULL) != ERROR_SUCCESS) return 3;
    if (rmdir(argv[1]) != 0) return 4;        /* a clean-up: it is empty yet */
    atomic_store(&wpt_test_dir_number_reused, 1);
    ULONG rc = ERROR_SUCCESS;
    wpt_registry *reg = wpt_registry_lock(0, &rc);
    if (reg) wpt_registry_unlock();
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/registry", argv[1]);
    printf("registry %u landed %d\n", (unsigned)rc, stat(path, &st) == 0);
    return 0;
}
