/* SPDX-License-Identifier: BSD-3-Clause */
/* Checkpoint directories: scanning newest first, retention, stale temps. */
#include "ckpt/internal.h"
#include "common/fileutil.h"
#include "tessera/error.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    long step;
    char name[256];
} entry_t;

static int parse_name(const char *name, long *step)
{
    char tail[8];
    int used = 0;
    if (sscanf(name, "ckpt-%ld%n", step, &used) != 1 || *step < 0)
        return -1;
    snprintf(tail, sizeof tail, "%s", name + used);
    return strcmp(tail, ".h5") == 0 ? 0 : -1;
}

static int newest_first(const void *a, const void *b)
{
    long x = ((const entry_t *)a)->step, y = ((const entry_t *)b)->step;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The ckpt-*.h5 names in dir, newest first; *n gets the count. */
static int list_dir(const char *dir, entry_t **out, int *n)
{
    DIR *d = opendir(dir);
    entry_t *v = NULL;
    int cap = 0;
    *n = 0;
    *out = NULL;
    if (!d)
        return errno == ENOENT ? TSR_OK : tsr_error_set(TSR_EIO, "%s: cannot list: %s", dir, strerror(errno));
    for (struct dirent *e; (e = readdir(d));) {
        long step;
        if (parse_name(e->d_name, &step))
            continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            entry_t *nv = realloc(v, (size_t)cap * sizeof *v);
            if (!nv) {
                free(v);
                closedir(d);
                return tsr_error_set(TSR_ENOMEM, "%s: out of memory listing checkpoints", dir);
            }
            v = nv;
        }
        v[*n].step = step;
        snprintf(v[*n].name, sizeof v[*n].name, "%s", e->d_name);
        (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(v, (size_t)*n, sizeof *v, newest_first);
    *out = v;
    return TSR_OK;
}

int tsr_ckpt_scan(const char *dir, tsr_ckpt_visit_fn fn, void *arg)
{
    entry_t *v;
    int n, rc = list_dir(dir, &v, &n), visited = 0;
    if (rc)
        return rc;
    for (int i = 0; i < n; i++) {
        char path[4096];
        tsr_ckpt_info_t info;
        snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
        int vrc = tsr_ckpt_file_read(path, &info, NULL, 0);
        visited++;
        int stop = fn(path, vrc, vrc ? NULL : &info, arg);
        if (!vrc)
            tsr_ckpt_info_free(&info);
        if (stop)
            break;
    }
    free(v);
    return visited;
}

int tsr_ckpt_dir_owns(const char *dir, const char *path)
{
    char target[4096];
    struct stat a, b;
    long step;
    if (tsr_file_resolve(path, target, sizeof target) != TSR_OK)
        return 0;
    char *slash = strrchr(target, '/');
    if (parse_name(slash ? slash + 1 : target, &step) != 0)
        return 0;
    if (slash == target)
        target[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        strcpy(target, ".");
    return stat(dir, &a) == 0 && stat(target, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

void tsr_ckpt_retain(const char *dir, int keep)
{
    entry_t *v;
    int n;
    if (keep < 1 || list_dir(dir, &v, &n))
        return;
    for (int i = keep; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, v[i].name);
        unlink(path);
    }
    free(v);
}

int tsr_ckpt_clean_stale(const char *dir)
{
    DIR *d = opendir(dir);
    int removed = 0;
    if (!d)
        return 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *t = strstr(e->d_name, ".tmp.");
        long pid;
        if (strncmp(e->d_name, ".ckpt-", 6) != 0 || !t || sscanf(t + 5, "%ld", &pid) != 1)
            continue;
        /* A live writer on this host (this process included) still owns its file. */
        if (pid > 0 && (pid == (long)getpid() || kill((pid_t)pid, 0) == 0))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}
