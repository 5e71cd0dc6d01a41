/* SPDX-License-Identifier: BSD-3-Clause */
/* tsr_comm_options_t.fixed_tree (train.reproducible = world): on a
 * power-of-two world every back-end that accepts it sums each element as
 * the perfect binary tree over ranks in rank order, bit for bit: shm on one
 * node (local ranks pairwise), shm over fake nodes (node subtrees, then the
 * leaders' rabenseifner), mpi with rabenseifner and with tree, auto. Worlds
 * that are not a power of two, ring, alltoall and nccl are refused; shm on
 * uneven nodes is refused by name and taken over by mpi under auto. */
#define COMM_TEST_NAME "test_comm_tree"
#include "comm_order.h"
#include "comm_test.h"

#include <mpi.h>

static float *expected_sums(size_t n, uint64_t seed)
{
    float *e = malloc((n ? n : 1) * sizeof *e), v[ORDER_MAXP];
    for (size_t i = 0; e && i < n; i++) {
        for (int r = 0; r < size; r++)
            v[r] = value(seed, r, i);
        e[i] = order_pairwise(v, 0, size);
    }
    return e;
}

/* One engine with the tree: its sums against the tree's, bit for bit. */
static void run_case(const char *backend, const char *alg, size_t n, size_t bucket, const char *expect_be)
{
    uint64_t seed = 0xfeed + n * 31 + bucket;
    float *buf = malloc((n ? n : 1) * sizeof *buf), *e = expected_sums(n, seed);
    tsr_comm_t *c = NULL;
    tsr_comm_options_t o = {.backend = backend, .algorithm = alg, .bucket_bytes = bucket, .fixed_tree = 1};
    fill(buf, n, seed, rank);
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    CHECK(rc == TSR_OK, "%s/%s n=%zu: create: %s", backend, alg, n, tsr_last_error());
    if (!rc) {
        CHECK(!expect_be || !strcmp(tsr_comm_backend(c), expect_be), "%s/%s: ran %s, expected %s", backend, alg,
              tsr_comm_backend(c), expect_be);
        for (int step = 0; step < 2 && !rc; step++) { /* twice: the state resets between steps */
            fill(buf, n, seed, rank);
            rc = staged(c, n, seed + (uint64_t)step);
            CHECK(rc == TSR_OK, "%s/%s n=%zu step %d: %s", backend, alg, n, step, tsr_last_error());
            size_t bad = 0;
            for (size_t i = 0; i < n && !rc; i++)
                bad += bits(buf[i]) != bits(e[i]);
            CHECK(bad == 0, "%s/%s n=%zu bucket %zu step %d: %zu sums not the tree's", backend, alg, n, bucket, step,
                  bad);
        }
    }
    tsr_comm_destroy(c);
    free(buf);
    free(e);
}

static void refused(const char *backend, const char *alg, const char *why)
{
    float buf[8] = {0};
    tsr_comm_t *c = NULL;
    tsr_comm_options_t o = {.backend = backend, .algorithm = alg, .fixed_tree = 1};
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, 8, &c);
    CHECK(rc != TSR_OK && strstr(tsr_last_error(), why), "%s/%s: rc %d, '%s', expected '%s'", backend, alg, rc,
          tsr_last_error(), why);
    tsr_comm_destroy(c);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    static const size_t sizes[] = {1, 7, 1000, 4096 + 3, 100003};
    if (size & (size - 1)) {
        refused("auto", "auto", "power-of-two number of ranks");
        refused("mpi", "rabenseifner", "power-of-two number of ranks");
    } else {
        const char *shm_be = size > 1 ? "shm" : NULL; /* one rank: whatever auto takes */
        refused("mpi", "ring", "rabenseifner or tree");
        refused("mpi", "alltoall", "rabenseifner or tree");
        refused("nccl", "auto", "nccl cannot sum in a fixed tree");
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (size_t b = 0; b < 2; b++) {
                size_t bucket = b ? 4096 : 0;
                run_case("shm", "auto", sizes[i], bucket, shm_be);
                run_case("mpi", "rabenseifner", sizes[i], bucket, "mpi");
                run_case("mpi", "tree", sizes[i], bucket, "mpi");
                run_case("auto", "auto", sizes[i], bucket, NULL);
            }
        if (size >= 4) {
            /* two fake nodes of size/2 consecutive ranks: hierarchical shm */
            setenv("TSR_COMM_FAKE_NODES", "2", 1);
            run_case("shm", "auto", 100003, 4096, "shm");
            run_case("shm", "tree", 4096 + 3, 0, "shm");
            /* three fake nodes on four ranks (1, 1, 2): uneven */
            setenv("TSR_COMM_FAKE_NODES", "3", 1);
            refused("shm", "auto", "same power-of-two number of consecutive ranks");
            run_case("auto", "auto", 4096 + 3, 4096, "mpi");
            unsetenv("TSR_COMM_FAKE_NODES");
        }
    }
    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, "test_comm_tree: %ld of %ld checks FAILED on %d ranks\n", total_fail, total_checks, size);
        else
            printf("test_comm_tree: %ld checks passed on %d ranks\n", total_checks, size);
    }
    MPI_Finalize();
    return total_fail ? 1 : 0;
}
