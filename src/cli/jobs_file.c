/* SPDX-License-Identifier: BSD-3-Clause */
/* The list of submitted jobs: one line per job, appended in one write. */
#include "cli/jobs_file.h"
#include "common/fileutil.h"
#include "common/text.h"
#include "tessera/error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* mkdir -p for the last component's parents and itself. */
static int make_dirs(char *path)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int r = mkdir(path, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int tsr_jobs_file_path(char *buf, size_t n, int create_dir)
{
    char dir[4096];
    const char *v;
    if ((v = getenv("TESSERA_STATE_DIR")) && *v)
        snprintf(dir, sizeof dir, "%s", v);
    else if ((v = getenv("XDG_STATE_HOME")) && *v)
        snprintf(dir, sizeof dir, "%s/tessera", v);
    else if ((v = getenv("HOME")) && *v)
        snprintf(dir, sizeof dir, "%s/.local/state/tessera", v);
    else
        return -1;
    if (create_dir && make_dirs(dir) != 0)
        return -1;
    if ((size_t)snprintf(buf, n, "%s/jobs", dir) >= n)
        return -1;
    return 0;
}

int tsr_jobs_file_add(unsigned long job_id, const char *config, const char *workdir)
{
    char path[4200], line[8400], conf[4096], wd[4096];
    if (tsr_jobs_file_path(path, sizeof path, 1) != 0)
        return tsr_error_set(TSR_EIO, "cannot create the directory for the list of submitted jobs (%s)",
                             strerror(errno));
    /* Appended, not renamed: a FIFO there would block the open, a device
     * would take the line. */
    const char *ins[1] = {config};
    int rc = tsr_file_check_output(path, ins, 1);
    if (rc)
        return rc;
    /* One job per line, tab-separated: a tab or newline in a path must not
     * make another line (the paths are shown, not used). */
    tsr_text_printable(config, conf, sizeof conf);
    tsr_text_printable(workdir, wd, sizeof wd);
    int len = snprintf(line, sizeof line, "%lu\t%ld\t%s\t%s\n", job_id, (long)time(NULL), conf, wd);
    if (len < 0 || (size_t)len >= sizeof line)
        return tsr_error_set(TSR_EINVAL, "path too long for the list of submitted jobs");
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return tsr_error_set(TSR_EIO, "%s: %s", path, strerror(errno));
    ssize_t w = write(fd, line, (size_t)len);
    int e = errno;
    close(fd);
    if (w != len)
        return tsr_error_set(TSR_EIO, "%s: write failed: %s", path, w < 0 ? strerror(e) : "short write");
    return TSR_OK;
}
