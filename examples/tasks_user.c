/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process tasks through the public C API (tessera/tasks.h): a Monte
 * Carlo estimate of pi cut into many small tasks, spread over the threads
 * of every MPI rank.
 *
 * Every rank creates the farm and registers the same functions in the same
 * order (a function pointer means nothing in another process; its number
 * does). Rank 0 submits: one task per batch of samples, whose result is its
 * hit count (8 bytes); a "check" task that runs only after every sample
 * task succeeded (dependencies), at a high priority so it runs as soon as
 * it may; each task may be retried twice. A completion callback counts
 * the finished tasks. The other ranks run what rank 0 sends them until it
 * destroys the farm. Results do not depend on which rank or thread ran a
 * task, so every run prints the same estimate.
 *
 * Usage: mpirun -n 2 tessera_tasks_user [--tasks N] [--samples S]
 * Prints (rank 0):
 *     pi ~ <estimate> from <N x S> samples in <N> tasks (<R> on other ranks)
 */
#include "tessera/error.h"
#include "tessera/tasks.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long samples = 100000;
static atomic_long done;

/* splitmix64: a deterministic stream per task */
static uint64_t next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int sample(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    uint64_t seed;
    if (len != sizeof seed)
        return 1;
    memcpy(&seed, arg, sizeof seed);
    int64_t hits = 0;
    for (long i = 0; i < samples; i++) {
        double x = (double)(next(&seed) >> 11) * 0x1p-53, y = (double)(next(&seed) >> 11) * 0x1p-53;
        hits += x * x + y * y <= 1.0;
    }
    return tsr_task_set_result(ctx, &hits, sizeof hits);
}

static int check(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)ctx;
    (void)arg;
    (void)len;
    return 0; /* reached only when every sample task succeeded */
}

static void counted(tsr_tasks_t *t, tsr_task_id_t id, tsr_task_state_t st, void *user)
{
    (void)t;
    (void)id;
    (void)st;
    (void)user;
    atomic_fetch_add(&done, 1);
}

int main(int argc, char **argv)
{
    long ntasks = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--tasks") == 0)
            ntasks = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--samples") == 0)
            samples = atol(argv[i + 1]);
    }
    int provided, rank;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.comm = MPI_COMM_WORLD;
    tsr_tasks_t *t = NULL;
    if (tsr_tasks_create(&cfg, &t) != TSR_OK || tsr_tasks_register(t, sample) != TSR_OK ||
        tsr_tasks_register(t, check) != TSR_OK) {
        fprintf(stderr, "tasks_user: %s\n", tsr_last_error());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int rc = 0;
    if (rank != 0) {
        rc = tsr_tasks_work(t) != TSR_OK;
    } else {
        tsr_task_id_t *ids = malloc((size_t)ntasks * sizeof *ids);
        tsr_task_opts_t o = {.retries = 2, .on_done = counted};
        for (long i = 0; i < ntasks && ids; i++) {
            uint64_t seed = 1000003u * (uint64_t)i;
            if (tsr_tasks_submit(t, sample, &seed, sizeof seed, &o, &ids[i]) != TSR_OK)
                rc = 1;
        }
        tsr_task_opts_t after = {.after = ids, .nafter = (size_t)ntasks, .priority = 10};
        tsr_task_id_t last;
        if (!ids || tsr_tasks_submit(t, check, NULL, 0, &after, &last) != TSR_OK)
            rc = 1;
        if (tsr_tasks_wait_all(t) != TSR_OK)
            rc = 1;
        int64_t hits = 0;
        for (long i = 0; i < ntasks && !rc; i++) {
            const void *p;
            size_t n;
            int64_t h;
            if (tsr_tasks_result(t, ids[i], &p, &n, NULL, NULL) != TSR_OK || n != sizeof h) {
                rc = 1;
                break;
            }
            memcpy(&h, p, sizeof h);
            hits += h;
        }
        tsr_tasks_stats_t st;
        tsr_tasks_stats(t, &st);
        if (!rc && tsr_tasks_state(t, last) == TSR_TASK_SUCCEEDED)
            printf("pi ~ %.10f from %ld x %ld samples in %ld tasks (%llu on other ranks, %ld callbacks)\n",
                   4.0 * (double)hits / ((double)ntasks * (double)samples), ntasks, samples, ntasks,
                   (unsigned long long)st.remote, (long)atomic_load(&done));
        else
            fprintf(stderr, "tasks_user: %s\n", tsr_last_error()[0] ? tsr_last_error() : "a task failed");
        free(ids);
    }
    tsr_tasks_destroy(t);
    MPI_Finalize();
    return rc;
}
