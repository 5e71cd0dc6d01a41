/* SPDX-License-Identifier: BSD-3-Clause */
/* The cost of monitoring per call, against a bare clock read measured in
 * the same run: tsr_perf_phase without events (what every phase switch of
 * a step costs with [monitor] perf = true), with one PAPI event
 * (sde:::tessera::steps; hardware events where the machine has counters,
 * --events LIST), tessera's counter add, and a resource sample (taken once
 * per publish, not per step). Median of --reps repetitions of --calls calls.
 * Usage: bench_perf [--calls N] [--reps R] [--events LIST] */
#include "tessera/error.h"
#include "tessera/log.h"
#include "tessera/perf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static volatile double sink;

/* ns per call of fn, median of reps. */
static double time_it(void (*fn)(void *, long), void *arg, long calls, int reps)
{
    double *t = calloc((size_t)reps, sizeof *t), med;
    for (int r = 0; r < reps; r++) {
        double t0 = tsr_time_now();
        fn(arg, calls);
        t[r] = (tsr_time_now() - t0) / (double)calls * 1e9;
    }
    qsort(t, (size_t)reps, sizeof *t, cmp);
    med = t[reps / 2];
    free(t);
    return med;
}

static void clock_reads(void *arg, long n)
{
    double s = 0;
    for (long i = 0; i < n; i++)
        s += tsr_time_now();
    sink = s;
}

static void phases(void *arg, long n)
{
    for (long i = 0; i < n; i++)
        tsr_perf_phase(arg, (tsr_phase_t)(1 + i % 6));
}

static void adds(void *arg, long n)
{
    for (long i = 0; i < n; i++)
        tsr_counter_add(TSR_COUNTER_SAMPLES, 1);
}

static void samples(void *arg, long n)
{
    tsr_resource_t r;
    for (long i = 0; i < n; i++)
        tsr_resource_sample(NULL, &r);
    sink = r.rss_bytes;
}

int main(int argc, char **argv)
{
    long calls = 1000000;
    int reps = 9;
    const char *events = "sde:::tessera::steps";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--calls"))
            calls = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--reps"))
            reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--events"))
            events = argv[i + 1];
    }
    if (calls < 1 || reps < 1) {
        fprintf(stderr, "bench_perf: --calls and --reps must be positive\n");
        return 2;
    }
    tsr_perf_t *bare = NULL, *ev = NULL;
    if (tsr_perf_create(NULL, &bare)) {
        fprintf(stderr, "bench_perf: %s\n", tsr_last_error());
        return 1;
    }
    int have_ev = tsr_perf_create(events, &ev) == TSR_OK && tsr_perf_nevents(ev) > 0;
    if (!have_ev)
        fprintf(stderr, "bench_perf: events '%s' not counted here: %s\n", events,
                ev && tsr_perf_note(ev) ? tsr_perf_note(ev) : tsr_last_error());
    double clk = time_it(clock_reads, NULL, calls, reps);
    printf("clock read (peer)                 %8.1f ns\n", clk);
    double ph = time_it(phases, bare, calls, reps);
    printf("tsr_perf_phase, no events         %8.1f ns  %5.2fx the clock\n", ph, ph / clk);
    if (have_ev) {
        double pe = time_it(phases, ev, calls / 10 + 1, reps);
        printf("tsr_perf_phase, %-17.17s %8.1f ns  %5.2fx the clock\n", events, pe, pe / clk);
    }
    double ad = time_it(adds, NULL, calls, reps);
    printf("tsr_counter_add                   %8.1f ns  %5.2fx the clock\n", ad, ad / clk);
    double rs = time_it(samples, NULL, calls / 1000 + 1, reps);
    printf("tsr_resource_sample               %8.1f ns  %5.2fx the clock\n", rs, rs / clk);
    tsr_perf_destroy(bare);
    tsr_perf_destroy(ev);
    return 0;
}
