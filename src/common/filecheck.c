/* SPDX-License-Identifier: BSD-3-Clause */
/* What a path may be before tessera reads or replaces it (fileutil.h): the
 * one place every reader and writer asks, so a FIFO, a device node or one
 * of a command's own inputs is refused the same way everywhere. */
#include "common/fileutil.h"
#include "tessera/error.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tsr_file_kind(mode_t mode)
{
    if (S_ISREG(mode))
        return "a regular file";
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISLNK(mode))
        return "a symbolic link";
    return "not a regular file";
}

int tsr_file_resolve(const char *path, char *buf, size_t len)
{
    char cur[PATH_MAX], link[PATH_MAX];
    if (snprintf(cur, sizeof cur, "%s", path) >= (int)sizeof cur)
        return tsr_error_set(TSR_EINVAL, "%s: path too long", path);
    /* The kernel's own limit on links followed in one lookup. */
    for (int hops = 0; hops < 40; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            break;
        ssize_t n = readlink(cur, link, sizeof link - 1);
        if (n < 0)
            break;
        link[n] = '\0';
        const char *slash = strrchr(cur, '/');
        char next[PATH_MAX];
        int w = link[0] == '/' || !slash ? snprintf(next, sizeof next, "%s", link)
                                         : snprintf(next, sizeof next, "%.*s/%s", (int)(slash - cur), cur, link);
        if (w < 0 || w >= (int)sizeof next)
            return tsr_error_set(TSR_EINVAL, "%s: the path its links lead to is too long", path);
        memcpy(cur, next, (size_t)w + 1);
    }
    if (snprintf(buf, len, "%s", cur) >= (int)len)
        return tsr_error_set(TSR_EINVAL, "%s: path too long", path);
    return TSR_OK;
}

/* path with its directory made absolute and free of links and "..", for
 * comparing files that do not exist (yet); "" if the directory is missing. */
static void canonical(const char *path, char *buf, size_t len)
{
    char res[PATH_MAX], dir[PATH_MAX], real[PATH_MAX];
    buf[0] = '\0';
    if (tsr_file_resolve(path, res, sizeof res) != TSR_OK)
        return;
    const char *slash = strrchr(res, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - res) : 1, slash ? res : ".");
    if (!dir[0])
        strcpy(dir, "/");
    if (realpath(dir, real))
        snprintf(buf, len, "%s/%s", strcmp(real, "/") ? real : "", slash ? slash + 1 : res);
}

int tsr_file_check_output(const char *path, const char *const *inputs, int n)
{
    struct stat out, in;
    if (!path || !path[0])
        return tsr_error_set(TSR_EINVAL, "the output path is empty");
    int exists = stat(path, &out) == 0;
    if (exists && !S_ISREG(out.st_mode))
        return tsr_error_set(TSR_EINVAL, "%s is %s, not a regular file; refusing to replace it with one", path,
                             tsr_file_kind(out.st_mode));
    char outc[2 * PATH_MAX], inc[2 * PATH_MAX];
    if (!exists)
        canonical(path, outc, sizeof outc);
    for (int i = 0; i < n; i++) {
        const char *p = inputs[i];
        if (!p || !p[0])
            continue;
        int same;
        if (stat(p, &in) == 0)
            same = exists && in.st_dev == out.st_dev && in.st_ino == out.st_ino;
        else if (!exists && outc[0]) {
            canonical(p, inc, sizeof inc);
            same = strcmp(inc, outc) == 0;
        } else
            same = 0;
        if (same)
            return tsr_error_set(TSR_EINVAL,
                                 "%s is the same file as the input %s; refusing to overwrite an "
                                 "input (choose another output path)",
                                 path, p);
    }
    return TSR_OK;
}

int tsr_file_check_input(const char *path, const char *expected)
{
    struct stat st;
    if (!path || !path[0])
        return tsr_error_set(TSR_EDATA, "an input path is empty; expected %s", expected);
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP || errno == ENAMETOOLONG)
            return tsr_error_set(TSR_EDATA, "%s: no such file (expected %s)", path, expected);
        return tsr_error_set(TSR_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return tsr_error_set(TSR_EDATA, "%s is %s, not a regular file; expected %s", path, tsr_file_kind(st.st_mode),
                             expected);
    return TSR_OK;
}
