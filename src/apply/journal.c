/* SPDX-License-Identifier: BSD-3-Clause */
/* The journal beside an apply output's temporary: which partitions are in
 * it. Text, one record a line, each appended and fsynced after the
 * partitions' rows were written and flushed:
 *     tessera-apply-journal 1 <fingerprint>
 *     done <first> <count>
 * The fingerprint covers the function, the input (path, size, time), the
 * model, the dataset, the columns and the partition size, so a rerun with
 * other arguments starts afresh. A line without its newline (a kill while
 * appending) is ignored. Rank 0 alone reads and writes it. */
#include "apply/internal.h"

#include "common/fileutil.h"
#include "tessera/error.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int apply_journal_load(const char *path, uint32_t fingerprint, uint8_t *done, size_t nparts)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[256];
    unsigned fp = 0, version = 0;
    size_t n = 0;
    if (!fgets(line, sizeof line, f) || sscanf(line, "tessera-apply-journal %u %x", &version, &fp) != 2 ||
        version != 1 || fp != fingerprint) {
        fclose(f);
        return 0;
    }
    while (fgets(line, sizeof line, f)) {
        unsigned long long first, count;
        if (!strchr(line, '\n') || sscanf(line, "done %llu %llu", &first, &count) != 2)
            break;
        for (unsigned long long p = first; p < first + count && p < nparts; p++)
            if (!done[p]) {
                done[p] = 1;
                n++;
            }
    }
    fclose(f);
    return (int)(n > 0);
}

static int append(const char *path, const char *text, int create)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | (create ? O_CREAT | O_TRUNC : O_APPEND), 0644);
    if (fd < 0)
        return tsr_error_set(TSR_EIO, "%s: cannot write the apply journal: %m", path);
    int rc = tsr_file_write_all(fd, text, strlen(text));
    if (rc == TSR_OK && fsync(fd) != 0)
        rc = tsr_error_set(TSR_EIO, "%s: fsync: %m", path);
    close(fd);
    return rc;
}

int apply_journal_start(const char *path, uint32_t fingerprint)
{
    char head[64];
    snprintf(head, sizeof head, "tessera-apply-journal 1 %08x\n", (unsigned)fingerprint);
    return append(path, head, 1);
}

int apply_journal_add(const char *path, const size_t *parts, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return tsr_error_set(TSR_ENOMEM, "apply: out of memory for the journal");
    for (size_t i = 0; i < n;) { /* runs of consecutive partitions, one line each */
        size_t j = i + 1;
        while (j < n && parts[j] == parts[j - 1] + 1)
            j++;
        fprintf(f, "done %zu %zu\n", parts[i], j - i);
        i = j;
    }
    fclose(f);
    int rc = len ? append(path, buf, 0) : TSR_OK;
    free(buf);
    return rc;
}
