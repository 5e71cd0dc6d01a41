/* SPDX-License-Identifier: BSD-3-Clause */
/* Rank-prefixed log lines. */
#include "tessera/log.h"

#include <stdio.h>
#include <time.h>

static int log_rank = 0;
static int log_size = 1;
static int log_level = TSR_LOG_INFO;
static int log_all = 0;

void tsr_log_set_rank(int rank, int size)
{
    log_rank = rank;
    log_size = size;
}

void tsr_log_set_level(int level) { log_level = level; }

void tsr_log_set_all_ranks(int on) { log_all = on; }

void tsr_vlog(int level, const char *fmt, va_list ap)
{
    if (level > log_level)
        return;
    if (level >= TSR_LOG_INFO && log_rank != 0 && !log_all)
        return;
    FILE *f = level <= TSR_LOG_WARN ? stderr : stdout;
    char line[2048];
    int n;
    if (log_rank == 0 && log_size >= 1 && !(log_all && log_size > 1))
        n = snprintf(line, sizeof line, "tessera: ");
    else
        n = snprintf(line, sizeof line, "tessera[rank %d]: ", log_rank);
    if (level == TSR_LOG_ERROR)
        n += snprintf(line + n, sizeof line - (size_t)n, "error: ");
    else if (level == TSR_LOG_WARN)
        n += snprintf(line + n, sizeof line - (size_t)n, "warning: ");
    if (n < (int)sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    /* One write per line so lines from ranks do not interleave mid-line. */
    fprintf(f, "%s\n", line);
    fflush(f);
}

void tsr_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tsr_vlog(level, fmt, ap);
    va_end(ap);
}

double tsr_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
