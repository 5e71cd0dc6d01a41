/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera's own counters read through PAPI's API alone, as any PAPI tool
 * would ("sde:::tessera::<name>", no tessera code on the reading side):
 * a real cache and a real training run on 1-3 ranks, read in the running
 * process before, between and after them. */
#include "tessera/cache.h"
#include "tessera/config.h"
#include "tessera/error.h"
#include "tessera/options.h"
#include "tessera/runtime.h"
#include "tessera/train.h"

#include <papi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int rank, size;
static long checks, failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "test_perf_sde[rank %d of %d]: FAIL at %s:%d: ", rank, size, __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

enum { STEPS, SAMPLES, MPI_BYTES, SHM_BYTES, CKPT_BYTES, HITS, MISSES, NEV };
static const char *const events[NEV] = {
    "sde:::tessera::steps",
    "sde:::tessera::samples",
    "sde:::tessera::reduced_bytes_mpi",
    "sde:::tessera::reduced_bytes_shm",
    "sde:::tessera::ckpt_bytes",
    "sde:::tessera::cache_hits",
    "sde:::tessera::cache_misses",
};

static int train(tsr_runtime_t *rt, const char *dir, tsr_train_result_t *res)
{
    tsr_config_t *cfg = NULL;
    tsr_train_options_t opt;
    char set[5][4200];
    snprintf(set[0], sizeof set[0], "data.path=%s/examples/data/digits.h5", TSR_SOURCE_DIR);
    snprintf(set[1], sizeof set[1], "train.output=%s/model.h5", dir);
    snprintf(set[2], sizeof set[2], "checkpoint.dir=%s/ckpt", dir);
    snprintf(set[3], sizeof set[3], "serve.registry=%s/registry", dir);
    snprintf(set[4], sizeof set[4], "runtime.progress=none");
    const char *fixed[] = {"train.epochs=2", "train.batch_size=16", "train.register=false", "model.hidden=32"};
    int rc = tsr_config_create(&cfg), failed = -1;
    for (int i = 0; !rc && i < 5; i++)
        rc = tsr_config_set(cfg, set[i]);
    for (int i = 0; !rc && i < 4; i++)
        rc = tsr_config_set(cfg, fixed[i]);
    if (!rc)
        rc = tsr_options_train(cfg, &opt);
    if (!rc)
        rc = tsr_train_run(rt, &opt, res, &failed);
    if (rc)
        fprintf(stderr, "rank %d: training failed: %s\n", rank, tsr_last_error());
    tsr_config_destroy(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    tsr_runtime_t *rt = NULL;
    if (tsr_runtime_create(&argc, &argv, &rt)) {
        fprintf(stderr, "runtime: %s\n", tsr_last_error());
        return 1;
    }
    rank = tsr_runtime_rank(rt);
    size = tsr_runtime_size(rt);
    char dir[64] = "/tmp/tsr_perf_sde.XXXXXX";
    if (rank == 0 && !mkdtemp(dir))
        dir[0] = 0;
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    CHECK(dir[0], "mkdtemp failed");

    /* The reading side: PAPI only. */
    int es = PAPI_NULL, prc = PAPI_library_init(PAPI_VER_CURRENT);
    CHECK(prc == PAPI_VER_CURRENT, "PAPI_library_init: %d", prc);
    CHECK(PAPI_create_eventset(&es) == PAPI_OK, "PAPI_create_eventset");
    for (int i = 0; i < NEV; i++) {
        prc = PAPI_add_named_event(es, events[i]);
        CHECK(prc == PAPI_OK, "PAPI_add_named_event(%s): %s", events[i], PAPI_strerror(prc));
    }
    long long v0[NEV], v1[NEV], v2[NEV];
    CHECK(PAPI_start(es) == PAPI_OK, "PAPI_start");
    CHECK(PAPI_read(es, v0) == PAPI_OK, "PAPI_read");
    for (int i = 0; i < NEV; i++)
        CHECK(v0[i] == 0, "%s reads %lld at start", events[i], v0[i]);

    /* Cache: two misses and a hit. */
    tsr_cache_config_t cc = {.max_bytes = 1 << 20};
    tsr_cache_t *cache = NULL;
    char buf[8];
    CHECK(tsr_cache_create(&cc, &cache) == TSR_OK, "cache");
    tsr_cache_get(cache, "k", 1, buf, sizeof buf, NULL);
    tsr_cache_put(cache, "k", 1, "v", 1);
    tsr_cache_get(cache, "k", 1, buf, sizeof buf, NULL);
    tsr_cache_get(cache, "j", 1, buf, sizeof buf, NULL);
    tsr_cache_destroy(cache);
    CHECK(PAPI_read(es, v1) == PAPI_OK, "PAPI_read");
    CHECK(v1[HITS] == 1 && v1[MISSES] == 2, "cache hits %lld misses %lld, expected 1 and 2", v1[HITS], v1[MISSES]);
    CHECK(v1[STEPS] == 0, "steps %lld before training", v1[STEPS]);

    tsr_train_result_t res;
    memset(&res, 0, sizeof res);
    CHECK(train(rt, dir, &res) == TSR_OK, "training");
    CHECK(PAPI_read(es, v2) == PAPI_OK, "PAPI_read");
    CHECK(res.steps > 0 && v2[STEPS] == res.steps, "steps: PAPI %lld, the run %ld", v2[STEPS], res.steps);
    /* Each rank's batch is 16; an epoch's last batch may be short. */
    CHECK(v2[SAMPLES] > (res.steps - res.epochs) * 16 && v2[SAMPLES] <= res.steps * 16,
          "samples %lld for %ld steps of 16", v2[SAMPLES], res.steps);
    /* Every step's gradient, plus the start-up's timed reductions (tsr_comm_calibrate). */
    long long reduced = v2[MPI_BYTES] + v2[SHM_BYTES], grad = (long long)res.nparams * 4;
    CHECK(reduced >= res.steps * grad && reduced % grad == 0 && reduced <= (res.steps + 16) * grad,
          "gradient bytes reduced %lld: expected whole gradients of %lld bytes, at least %ld", reduced, grad,
          res.steps);
    CHECK(rank == 0 ? v2[CKPT_BYTES] > 0 : v2[CKPT_BYTES] == 0, "checkpoint bytes %lld on rank %d", v2[CKPT_BYTES],
          rank);
    PAPI_stop(es, v2);
    PAPI_cleanup_eventset(es);
    PAPI_destroy_eventset(&es);

    if (rank == 0 && dir[0]) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    long all = 0;
    MPI_Allreduce(&failures, &all, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0)
        printf("test_perf_sde: %ld checks on %d ranks, %ld failures\n", checks, size, all);
    tsr_runtime_destroy(rt);
    return all ? 1 : 0;
}
