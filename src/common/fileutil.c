/* SPDX-License-Identifier: BSD-3-Clause */
#include "common/fileutil.h"
#include "tessera/error.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tsr_file_tmpname(const char *path, char *buf, size_t len)
{
    char target[4096];
    int rc = tsr_file_resolve(path, target, sizeof target);
    if (rc)
        return rc;
    const char *slash = strrchr(target, '/');
    int n;
    if (slash)
        n = snprintf(buf, len, "%.*s/.%s.tmp.%ld", (int)(slash - target), target, slash + 1, (long)getpid());
    else
        n = snprintf(buf, len, ".%s.tmp.%ld", target, (long)getpid());
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "%s: path too long", path);
    return TSR_OK;
}

int tsr_file_create_tmp(const char *path, char *tmp, size_t len)
{
    int rc = tsr_file_tmpname(path, tmp, len);
    if (rc)
        return rc;
    /* The name carries this process's id, so whatever is there is stale or
     * planted; opening it could follow a link to someone else's file. */
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = tsr_error_set(TSR_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        tmp[0] = '\0';
        return rc;
    }
    return fd;
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    /* Some file systems refuse fsync on directories; that is not a failure. */
    if (rc != 0 && (errno == EINVAL || errno == EBADF) && (flags & O_DIRECTORY))
        rc = 0;
    close(fd);
    return rc;
}

int tsr_file_commit(const char *tmp, const char *path)
{
    char dir[4096], target[4096];
    struct stat a, b;
    int rc = tsr_file_resolve(path, target, sizeof target);
    if (rc == TSR_OK)
        rc = tsr_file_check_output(path, NULL, 0);
    /* A link that leads nowhere a path can name (a pipe, a deleted file
     * behind /proc/self/fd/N) cannot be replaced by a rename. */
    if (rc == TSR_OK && stat(path, &a) == 0 && (stat(target, &b) != 0 || a.st_ino != b.st_ino || a.st_dev != b.st_dev))
        rc =
            tsr_error_set(TSR_EINVAL, "%s: leads to a file without a name (%s); refusing to write there", path, target);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    if (fsync_path(tmp, O_RDONLY) != 0) {
        int e = errno;
        unlink(tmp);
        return tsr_error_set(TSR_EIO, "%s: fsync failed: %s", path, strerror(e));
    }
    if (rename(tmp, target) != 0) {
        int e = errno;
        unlink(tmp);
        return tsr_error_set(TSR_EIO, "%s: rename from %s failed: %s", path, tmp, strerror(e));
    }
    snprintf(dir, sizeof dir, "%s", target);
    if (fsync_path(dirname(dir), O_RDONLY | O_DIRECTORY) != 0)
        return tsr_error_set(TSR_EIO, "%s: fsync of its directory failed: %s", path, strerror(errno));
    return TSR_OK;
}

void tsr_file_discard(const char *tmp)
{
    if (tmp && tmp[0])
        unlink(tmp);
}

int tsr_path_join(const char *dir, const char *rel, char *buf, size_t len)
{
    int n;
    if (rel[0] == '/' || !dir || !dir[0] || strcmp(dir, ".") == 0)
        n = snprintf(buf, len, "%s", rel);
    else
        n = snprintf(buf, len, "%s/%s", dir, rel);
    if (n < 0 || (size_t)n >= len)
        return tsr_error_set(TSR_EINVAL, "%s: path too long", rel);
    return TSR_OK;
}

int tsr_file_write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    size_t left = len;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return tsr_error_set(TSR_EIO, "write failed after %zu of %zu bytes: %s", len - left, len,
                                 strerror(w < 0 ? errno : ENOSPC));
        p += w;
        left -= (size_t)w;
    }
    return TSR_OK;
}

int tsr_file_copy_to_fd(const char *from, int to_fd)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return tsr_error_set(TSR_EIO, "%s: %s", from, strerror(errno));
    char buf[1 << 16];
    ssize_t n;
    int rc = TSR_OK;
    while (rc == TSR_OK && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        rc = n < 0 ? tsr_error_set(TSR_EIO, "%s: read failed: %s", from, strerror(errno))
                   : tsr_file_write_all(to_fd, buf, (size_t)n);
    }
    close(in);
    return rc;
}

/* Fills a new temporary for path by fill(fd, arg) and commits it. */
static int write_via_tmp(const char *path, int (*fill)(int fd, const void *a, size_t n), const void *a, size_t n)
{
    char tmp[4096];
    int fd = tsr_file_create_tmp(path, tmp, sizeof tmp);
    if (fd < 0)
        return fd;
    int rc = fill(fd, a, n);
    if (rc == TSR_OK && fsync(fd) != 0)
        rc = tsr_error_set(TSR_EIO, "fsync failed: %s", strerror(errno));
    if (close(fd) != 0 && rc == TSR_OK)
        rc = tsr_error_set(TSR_EIO, "close failed: %s", strerror(errno));
    if (rc) {
        unlink(tmp);
        return tsr_error_prefix(rc, "%s: ", path);
    }
    return tsr_file_commit(tmp, path);
}

static int fill_copy(int fd, const void *from, size_t n)
{
    (void)n;
    return tsr_file_copy_to_fd(from, fd);
}

int tsr_file_write_atomic(const char *path, const void *buf, size_t len)
{
    return write_via_tmp(path, tsr_file_write_all, buf, len);
}

int tsr_file_copy_atomic(const char *from, const char *path) { return write_via_tmp(path, fill_copy, from, 0); }

int tsr_mkdir_p(const char *dir)
{
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s", dir);
    if (n < 0 || (size_t)n >= sizeof buf)
        return tsr_error_set(TSR_EINVAL, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return tsr_error_set(TSR_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return tsr_error_set(TSR_EIO, "cannot create directory %s: %s", buf, strerror(errno));
    return TSR_OK;
}
