/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process task overhead: empty tasks submitted and waited for through
 * the C API (tsr_tasks_submit + tsr_tasks_wait_all), against GNU OpenMP
 * tasks (#pragma omp task in one single region, the same empty body, the
 * same threads) measured in the same run, alternating, for 1k to 1M tasks;
 * the median and spread over --reps; the memory a queued task costs (RSS
 * growth while a million wait behind one blocked thread). Under mpirun
 * with several ranks: tasks/s across ranks (rank 0 submitting, every rank
 * running; --remote-only keeps rank 0's threads out).
 *
 *   bench_tasks [--reps 5] [--max 1000000] [--threads N] [--json]
 *   mpirun -n 2 bench_tasks --ranks [--remote-only]
 *   mpirun -n 2 bench_tasks --balance   (2000 heavy-tailed sleeps, one thread per rank: makespan / ideal)
 *   bench_tasks --make-journal DIR TASKS DONE   (for run_tasks_bench.sh's restart timing)
 */
#include "bench_util.h"
#include "tasks/journal.h"
#include "tessera/error.h"
#include "tessera/tasks.h"

#ifdef TSR_BENCH_OPENMP
#include <omp.h>
#endif
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_long sink;

static int empty(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    (void)arg;
    (void)len;
    return 0;
}

static void omp_empty(long i) { atomic_fetch_add_explicit(&sink, i & 1, memory_order_relaxed); }

static double run_tessera(tsr_tasks_t *t, long n)
{
    double t0 = bench_now();
    for (long i = 0; i < n; i++)
        if (tsr_tasks_submit(t, empty, &i, sizeof i, NULL, NULL) != TSR_OK) {
            fprintf(stderr, "submit: %s\n", tsr_last_error());
            exit(1);
        }
    tsr_tasks_wait_all(t);
    return bench_now() - t0;
}

/* GNU OpenMP (libgomp) tasks; where the compiler has no OpenMP, a plain
 * loop of the same calls stands in (and the column says so). */
static double run_omp(long n, int threads)
{
    double t0 = bench_now();
#ifdef TSR_BENCH_OPENMP
#pragma omp parallel num_threads(threads)
#pragma omp single
    for (long i = 0; i < n; i++) {
#pragma omp task firstprivate(i)
        omp_empty(i);
    }
#else
    (void)threads;
    for (long i = 0; i < n; i++)
        omp_empty(i);
#endif
    return bench_now() - t0;
}

static int procs(void)
{
#ifdef TSR_BENCH_OPENMP
    return omp_get_num_procs();
#else
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
#endif
}

static long rss_kb(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f && fscanf(f, "%ld %ld", &pages, &rss) != 2)
        rss = 0;
    if (f)
        fclose(f);
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static atomic_int gate;
static int blocker(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    (void)arg;
    (void)len;
    while (!atomic_load(&gate))
        usleep(1000);
    return 0;
}

/* RSS growth per task while a million tasks wait in the queue. */
static double bytes_per_queued(long n)
{
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.threads = 1;
    tsr_tasks_t *t = NULL;
    tsr_tasks_create(&cfg, &t);
    atomic_store(&gate, 0);
    tsr_tasks_submit(t, blocker, NULL, 0, NULL, NULL);
    long before = rss_kb();
    for (long i = 0; i < n; i++)
        tsr_tasks_submit(t, empty, &i, sizeof i, NULL, NULL);
    long after = rss_kb();
    atomic_store(&gate, 1);
    tsr_tasks_destroy(t);
    return (double)(after - before) * 1024.0 / (double)n;
}

static int single(int reps, long max, int threads, int json)
{
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.threads = threads;
    tsr_tasks_t *t = NULL;
    if (tsr_tasks_create(&cfg, &t) != TSR_OK) {
        fprintf(stderr, "create: %s\n", tsr_last_error());
        return 1;
    }
    int nth = threads ? threads : procs();
    run_tessera(t, 10000); /* warm-up: threads started, pages touched */
    run_omp(10000, nth);
    if (!json)
        printf("%9s %14s %10s %14s %10s %9s\n", "tasks", "tessera/s", "ns/task", "omp tasks/s", "ns/task", "ratio");
    for (long n = 1000; n <= max; n *= 10) {
        double a[64], b[64], r[64];
        for (int k = 0; k < reps && k < 64; k++) {
            a[k] = run_tessera(t, n);
            b[k] = run_omp(n, nth);
            r[k] = b[k] / a[k];
        }
        qsort(a, (size_t)reps, sizeof *a, bench_cmp_double);
        qsort(b, (size_t)reps, sizeof *b, bench_cmp_double);
        qsort(r, (size_t)reps, sizeof *r, bench_cmp_double);
        double ma = a[reps / 2], mb = b[reps / 2];
        if (json)
            printf("{\"tasks\":%ld,\"tessera_per_s\":%.0f,\"tessera_per_s_min\":%.0f,\"tessera_per_s_max\":%.0f,"
                   "\"omp_per_s\":%.0f,\"ratio\":%.3f,\"ratio_min\":%.3f,\"ratio_max\":%.3f}\n",
                   n, n / ma, n / a[reps - 1], n / a[0], n / mb, r[reps / 2], r[0], r[reps - 1]);
        else
            printf("%9ld %14.0f %10.0f %14.0f %10.0f %9.2f   (tessera %.0f-%.0f/s, ratio %.2f-%.2f over %d runs)\n", n,
                   n / ma, 1e9 * ma / n, n / mb, 1e9 * mb / n, r[reps / 2], n / a[reps - 1], n / a[0], r[0],
                   r[reps - 1], reps);
        fflush(stdout);
    }
    tsr_tasks_stats_t st;
    tsr_tasks_stats(t, &st);
    tsr_tasks_destroy(t);
    double bpt = bytes_per_queued(max);
    printf("%s memory: %.0f bytes per queued task (RSS growth over %ld queued; the record is %zu bytes); %llu "
           "batches stolen; %d threads\n",
           json ? "#" : "", bpt, max, st.bytes_per_task, (unsigned long long)st.steals, nth);
    return 0;
}

static int ranks(long n, int remote_only, int reps)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.comm = MPI_COMM_WORLD;
    cfg.run_on_root = !remote_only;
    tsr_tasks_t *t = NULL;
    if (tsr_tasks_create(&cfg, &t) != TSR_OK || tsr_tasks_register(t, empty) != TSR_OK) {
        fprintf(stderr, "rank %d: %s\n", rank, tsr_last_error());
        return 1;
    }
    if (rank) {
        tsr_tasks_work(t);
        tsr_tasks_destroy(t);
        return 0;
    }
    double a[64];
    run_tessera(t, 10000);
    for (int k = 0; k < reps && k < 64; k++)
        a[k] = run_tessera(t, n);
    qsort(a, (size_t)reps, sizeof *a, bench_cmp_double);
    tsr_tasks_stats_t st;
    tsr_tasks_stats(t, &st);
    printf("across %d ranks%s: %ld empty tasks: %.0f tasks/s median (%.0f-%.0f over %d runs), %.1f%% run on other "
           "ranks\n",
           size, remote_only ? " (rank 0 only dispatches)" : "", n, n / a[reps / 2], n / a[reps - 1], n / a[0], reps,
           100.0 * (double)st.remote / (double)st.finished);
    tsr_tasks_destroy(t);
    return 0;
}

static int sleeper(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    double s;
    memcpy(&s, arg, len < sizeof s ? len : sizeof s);
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
    return 0;
}

/* The scheduler's balance without process start-up: 2000 sleeps drawn from
 * a Pareto distribution (alpha 1.5, mean about 25 ms, cut at 1.5 s) on one
 * thread per rank; the makespan over max(sum / threads, longest). */
static int balance(int reps)
{
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.comm = MPI_COMM_WORLD;
    cfg.threads = 1;
    tsr_tasks_t *t = NULL;
    if (tsr_tasks_create(&cfg, &t) != TSR_OK || tsr_tasks_register(t, sleeper) != TSR_OK)
        return 1;
    if (rank) {
        tsr_tasks_work(t);
        tsr_tasks_destroy(t);
        return 0;
    }
    enum { N = 2000 };
    static double d[N];
    uint64_t s = 7;
    double sum = 0, longest = 0;
    for (int i = 0; i < N; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = ((double)(s >> 11) + 0.5) * 0x1p-53;
        d[i] = 0.025 / 3 * pow(u, -1 / 1.5);
        d[i] = d[i] > 1.5 ? 1.5 : d[i];
        sum += d[i];
        longest = d[i] > longest ? d[i] : longest;
    }
    double ideal = sum / size > longest ? sum / size : longest, r[64];
    for (int k = 0; k < reps && k < 64; k++) {
        double t0 = bench_now();
        for (int i = 0; i < N; i++)
            tsr_tasks_submit(t, sleeper, &d[i], sizeof d[i], NULL, NULL);
        tsr_tasks_wait_all(t);
        r[k] = (bench_now() - t0) / ideal;
    }
    qsort(r, (size_t)reps, sizeof *r, bench_cmp_double);
    /* How long the machine takes for those sleeps one after another (a
     * sample of 200): a loaded machine oversleeps, whoever schedules. */
    double want = 0, t0 = bench_now();
    for (int i = 0; i < N; i += N / 200) {
        sleeper(NULL, &d[i], sizeof d[i]);
        want += d[i];
    }
    double over = (bench_now() - t0) / want;
    printf("balance (C tasks, %d ranks x 1 thread): 2000 Pareto sleeps, ideal %.2f s: makespan %.3fx ideal median "
           "(%.3f-%.3f over %d runs); this machine sleeps %.3fx what is asked, so %.3fx of what it allows\n",
           size, ideal, r[reps / 2], r[0], r[reps - 1], reps, over, r[reps / 2] / over);
    tsr_tasks_destroy(t);
    return 0;
}

/* A journal as a farm of TASKS plain-line tasks leaves it with DONE of them
 * succeeded (ids "1".."TASKS": a file of one command per line). */
static int make_journal(const char *dir, long tasks, long done)
{
    journal_t *j = NULL;
    if (journal_open(dir, 5, NULL, NULL, &j) != TSR_OK) {
        fprintf(stderr, "%s\n", tsr_last_error());
        return 1;
    }
    double t = (double)time(NULL);
    tbuf_t *r = journal_begin(j, J_RUN);
    tbuf_u32(r, 1);
    tbuf_f64(r, t);
    tbuf_u32(r, 2);
    tbuf_str(r, "");
    tbuf_u64(r, (uint64_t)tasks);
    tbuf_str(r, "bench");
    tbuf_u32(r, 0);
    journal_end(j);
    for (long i = 1; i <= done; i++) {
        char id[32];
        snprintf(id, sizeof id, "%ld", i);
        tbuf_t *b = journal_begin(j, J_START);
        tbuf_str(b, id);
        tbuf_u16(b, 1);
        tbuf_u16(b, (unsigned)(i & 1));
        tbuf_f64(b, t);
        tbuf_str(b, "cpus 0");
        journal_end(j);
        b = journal_begin(j, J_FINISH);
        tbuf_str(b, id);
        tbuf_u16(b, 1);
        tbuf_u8(b, 1 /* exited */);
        tbuf_u32(b, 0);
        tbuf_u8(b, TSR_TASK_SUCCEEDED);
        tbuf_f64(b, t);
        tbuf_f64(b, t + 0.001);
        tbuf_u16(b, (unsigned)(i & 1));
        tbuf_str(b, NULL);
        journal_end(j);
    }
    int rc = journal_sync(j);
    journal_close(j);
    printf("journal %s/journal: %ld of %ld tasks succeeded\n", dir, done, tasks);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    int reps = 5, threads = 0, json = 0, across = 0, remote_only = 0, bal = 0;
    long max = 1000000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
            max = atol(argv[++i]);
        else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--ranks") == 0)
            across = 1;
        else if (strcmp(argv[i], "--remote-only") == 0)
            remote_only = 1;
        else if (strcmp(argv[i], "--balance") == 0)
            across = bal = 1;
        else if (strcmp(argv[i], "--make-journal") == 0 && i + 3 < argc)
            return make_journal(argv[i + 1], atol(argv[i + 2]), atol(argv[i + 3]));
        else {
            fprintf(stderr, "usage: bench_tasks [--reps N] [--max N] [--threads N] [--json] | --ranks "
                            "[--remote-only] | --balance | --make-journal DIR TASKS DONE\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64)
        reps = 5;
    if (!across)
        return single(reps, max, threads, json);
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    int rc = bal ? balance(reps) : ranks(max, remote_only, reps);
    MPI_Finalize();
    return rc;
}
