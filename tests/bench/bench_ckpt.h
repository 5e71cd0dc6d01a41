/* SPDX-License-Identifier: BSD-3-Clause */
/* What the two halves of bench_ckpt share: (a) write bandwidth in
 * bench_ckpt.c (with main), (b) checkpoints during training in
 * bench_ckpt_train.c. See bench_ckpt.c for what each measures. */
#ifndef TSR_BENCH_CKPT_H
#define TSR_BENCH_CKPT_H
#include "bench_util.h"
#include "tessera/error.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SIZES 8
#define MAX_REPS 64

static inline double clock_s(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline double now(void) { return clock_s(CLOCK_MONOTONIC); }

/* bench_median sorts in place; callers here keep their per-run order. */
static inline double median(const double *v, int n)
{
    double s[MAX_REPS];
    memcpy(s, v, (size_t)n * sizeof *s);
    return bench_median(s, n);
}

static inline void die(const char *what, int rc)
{
    fprintf(stderr, "bench_ckpt: %s: %s (%s)\n", what, tsr_last_error(), tsr_strerror(rc));
    exit(1);
}

/* The fresh directory every file of the run goes to (bench_ckpt.c). */
extern char workdir[4096];

enum { MODE_NONE = 0, MODE_ASYNC, MODE_SYNC, NMODES };
static const char *mode_name[NMODES] = {"none", "async", "sync"};

typedef struct {
    double step_s[NMODES];   /* medians */
    double overhead[NMODES]; /* median over rounds of (mode / none - 1) */
    double overhead_of_medians[NMODES];
    double overhead_best[NMODES];                             /* fastest run of each kind against the fastest without */
    double thread_cpu_s[NMODES], thread_cpu_overhead[NMODES]; /* training thread CPU per step (medians) */
    double extra_cpu_per_ckpt_s[NMODES]; /* process CPU beyond the no-checkpoint run, per checkpoint */
    double caller_s[NMODES], writer_s[NMODES];
    int writes;
    size_t bytes;
} train_res_t;

/* (b): steps per run, a checkpoint every `every` steps, rounds of the three
 * kinds of run (none, async, sync) in rotating order. */
void bench_train(long steps, long every, int rounds, train_res_t *out);

#endif
