/* SPDX-License-Identifier: BSD-3-Clause */
/* In-process tasks over real MPI ranks: rank 0 submits, every rank runs
 * (run on 1, 2 and 3 ranks). Results come back right, dependencies and
 * retries hold across ranks, task ids seen inside tasks are rank 0's, and
 * with rank 0 not running tasks itself every task ran on another rank. */
#include "tessera/error.h"
#include "tessera/tasks.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;
static long checks, failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "test_tasks_api[rank %d of %d]: FAIL at %s:%d: ", rank, size, __FILE__, __LINE__);         \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

/* result: (arg * 3 + 1, the rank that ran it, the id it saw) */
static int compute(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    long v[3];
    if (len != sizeof(long))
        return 2;
    memcpy(&v[0], arg, sizeof v[0]);
    v[0] = v[0] * 3 + 1;
    v[1] = tsr_task_rank(ctx);
    v[2] = (long)tsr_task_id(ctx);
    return tsr_task_set_result(ctx, v, sizeof v);
}

/* fails on its first attempt */
static int once_bad(tsr_task_ctx_t *ctx, const void *arg, size_t len)
{
    (void)arg;
    (void)len;
    return tsr_task_attempt(ctx) == 1 ? 9 : 0;
}

static void run(int run_on_root)
{
    tsr_tasks_config_t cfg;
    tsr_tasks_config_default(&cfg);
    cfg.comm = MPI_COMM_WORLD;
    cfg.threads = 2;
    cfg.run_on_root = run_on_root;
    tsr_tasks_t *t = NULL;
    int rc = tsr_tasks_create(&cfg, &t);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    if (rc)
        return;
    CHECK(tsr_tasks_register(t, compute) == TSR_OK, "register");
    CHECK(tsr_tasks_register(t, once_bad) == TSR_OK, "register");
    if (rank != 0) {
        CHECK(tsr_tasks_submit(t, compute, NULL, 0, NULL, NULL) == TSR_EINVAL, "submit off rank 0 must fail");
        CHECK(tsr_tasks_work(t) == TSR_OK, "work: %s", tsr_last_error());
        tsr_tasks_destroy(t);
        return;
    }
    enum { N = 30000 };
    tsr_task_id_t *id = malloc(N * sizeof *id);
    for (long i = 0; i < N; i++)
        CHECK(tsr_tasks_submit(t, compute, &i, sizeof i, NULL, &id[i]) == TSR_OK, "submit %ld", i);
    /* a chain across whatever ranks run it, and a retry */
    tsr_task_opts_t o = {.after = &id[N - 1], .nafter = 1, .retries = 1};
    tsr_task_id_t dep, flaky;
    long x = 7;
    CHECK(tsr_tasks_submit(t, compute, &x, sizeof x, &o, &dep) == TSR_OK, "submit dep");
    CHECK(tsr_tasks_submit(t, once_bad, NULL, 0, &o, &flaky) == TSR_OK, "submit flaky");
    CHECK(tsr_tasks_wait_all(t) == TSR_OK, "wait_all: %s", tsr_last_error());
    long per_rank[64] = {0};
    for (long i = 0; i < N; i++) {
        const long *v;
        size_t n = 0;
        tsr_tasks_result(t, id[i], (const void **)&v, &n, NULL, NULL);
        CHECK(n == 3 * sizeof(long) && v[0] == i * 3 + 1 && v[2] == (long)id[i], "task %ld: result wrong", i);
        if (n == 3 * sizeof(long) && v[1] >= 0 && v[1] < 64)
            per_rank[v[1]]++;
    }
    tsr_task_state_t st;
    tsr_tasks_wait(t, dep, &st);
    CHECK(st == TSR_TASK_SUCCEEDED, "dependent task: state %d", st);
    int attempts = 0;
    tsr_tasks_result(t, flaky, NULL, NULL, NULL, &attempts);
    CHECK(tsr_tasks_state(t, flaky) == TSR_TASK_SUCCEEDED && attempts == 2, "retried task: %d attempts", attempts);
    tsr_tasks_stats_t s;
    tsr_tasks_stats(t, &s);
    if (size > 1 && !run_on_root)
        CHECK(per_rank[0] == 0 && s.remote >= N, "rank 0 ran %ld tasks, %llu ran elsewhere", per_rank[0],
              (unsigned long long)s.remote);
    if (size > 1 && !run_on_root)
        for (int r = 1; r < size && r < 64; r++)
            CHECK(per_rank[r] > 0, "rank %d ran no task", r);
    printf("test_tasks_api: %d ranks, run_on_root %d: %llu tasks, %llu on other ranks\n", size, run_on_root,
           (unsigned long long)s.finished, (unsigned long long)s.remote);
    free(id);
    tsr_tasks_destroy(t);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    run(1);
    if (size > 1)
        run(0);
    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, "test_tasks_api: %ld of %ld checks FAILED on %d ranks\n", total_fail, total_checks, size);
        else
            printf("test_tasks_api: %ld checks passed on %d ranks\n", total_checks, size);
    }
    MPI_Finalize();
    return total_fail ? 1 : 0;
}
