/* SPDX-License-Identifier: BSD-3-Clause */
/* The coordinator's copy of the ranks' counters and resource use (perf.c,
 * perf_metrics.c; internal). */
#ifndef TSR_SERVE_PERF_H
#define TSR_SERVE_PERF_H
#include "serve/internal.h"

enum { HOST_LEN = 64 };

struct serve_perf {
    pthread_mutex_t mu;
    int world, nevents;
    char events[TSR_PERF_MAX_EVENTS][128];
    const char *evp[TSR_PERF_MAX_EVENTS];
    char note[1024];
    char (*hosts)[HOST_LEN];
    tsr_perf_totals_t *tot;
    tsr_resource_t *res;
    double *cnt; /* world * TSR_COUNTER_COUNT */
};

/* One rank's figures (or the process's own: rank -1, tot NULL). */
typedef struct view {
    int rank;
    const char *host;
    const tsr_perf_totals_t *tot;
    const tsr_resource_t *res;
    const double *cnt;
} view_t;

/* Calls fn once, under the lock, with every rank's view, or with the
 * process's own (one view, rank -1, no phases) when nobody published. */
typedef void serve_perf_fn(const serve_perf_t *p, const view_t *v, int n, void *arg);
void serve_perf_views(tsr_serve_t *s, serve_perf_fn *fn, void *arg);

#endif
