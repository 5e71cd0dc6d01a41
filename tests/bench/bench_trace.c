/* SPDX-License-Identifier: BSD-3-Clause */
/* What recording one timeline event costs: tsr_trace_event_at (the phase
 * timers' path: the clock was read already) and tsr_trace_mark (reads the
 * clock, as the engine and the writer thread do), against an empty loop of
 * the same clock reads in the same run, alternated in blocks; medians over
 * runs. run_trace_bench.sh turns the figure into a share of the step. */
#include "tessera/log.h"
#include "tessera/trace.h"

#include <stdio.h>
#include <stdlib.h>

enum { N = 1 << 20, REPS = 9 };

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(void)
{
    tsr_trace_t *t = NULL;
    /* A ring smaller than N: wrapping around is the steady state of a long run. */
    if (tsr_trace_create("/dev/null", 0, 1 << 16, 1, &t))
        return 1;
    tsr_trace_set_current(t);
    double at[REPS], mark[REPS], clock[REPS], sink = 0;
    for (int r = 0; r < REPS; r++) {
        double t0 = tsr_time_now();
        for (int i = 0; i < N; i++)
            tsr_trace_event_at(t, TSR_TRACE_FORWARD, i & 1 ? 'E' : 'B', 0, t0);
        double t1 = tsr_time_now();
        for (int i = 0; i < N; i++)
            tsr_trace_mark(TSR_TRACE_BUCKET, i & 1 ? 'e' : 'b', i);
        double t2 = tsr_time_now();
        for (int i = 0; i < N; i++)
            sink += tsr_time_now();
        double t3 = tsr_time_now();
        at[r] = (t1 - t0) / N * 1e9;
        mark[r] = (t2 - t1) / N * 1e9;
        clock[r] = (t3 - t2) / N * 1e9;
    }
    qsort(at, REPS, sizeof *at, cmp);
    qsort(mark, REPS, sizeof *mark, cmp);
    qsort(clock, REPS, sizeof *clock, cmp);
    printf("{\"event_at_ns\": %.2f, \"mark_ns\": %.2f, \"clock_ns\": %.2f, \"event_at_range\": [%.2f, %.2f], "
           "\"mark_range\": [%.2f, %.2f], \"dropped\": %llu, \"sink\": %d}\n",
           at[REPS / 2], mark[REPS / 2], clock[REPS / 2], at[0], at[REPS - 1], mark[0], mark[REPS - 1],
           (unsigned long long)tsr_trace_dropped(t), sink > 0);
    tsr_trace_set_current(NULL);
    tsr_trace_destroy(t);
    return 0;
}
