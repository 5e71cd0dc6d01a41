/* SPDX-License-Identifier: BSD-3-Clause */
/* The SimGrid build, checked under smpirun (ctest mpi.simgrid.*): the
 * runtime starts on SMPI's MPI_THREAD_SINGLE with helper threads off, "shm"
 * says it is unavailable and "auto" takes "mpi", and every allreduce
 * algorithm sums, bit for bit, in its documented order (comm_order.h) on
 * the simulated ranks, for several buffer, bucket and piece sizes, twice
 * with identical bits. It also prints the simulated time of one 1 MiB
 * allreduce per algorithm, which nothing checks (tests never judge time).
 * With a SLURM topology.conf as argv[1] (topology.conf here: leaves of 4
 * hosts), hier and auto run on its leaves where they are equal (8 ranks)
 * and hier is refused where they are not (6 ranks: leaves of 4 and 2). */
#include "tessera/comm.h"
#include "tessera/error.h"
#include "tessera/runtime.h"
#include "comm_order.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank, size;
static long checks, failures;
static const char *topology; /* runtime.topology of the cases run (NULL: auto) */

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            failures++;                                                                                                \
            fprintf(stderr, "test_sim_comm[rank %d of %d]: FAIL at %s:%d: ", rank, size, __FILE__, __LINE__);          \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

static uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Random sign and mantissa, exponents over 2^-12..2^12: sums depend on the
 * order of addition. */
static float value(uint64_t seed, int r, size_t i)
{
    uint64_t h = mix(seed ^ mix((uint64_t)r * 0x632be59bd9b4e019ULL + 1) ^ mix((uint64_t)i + 0x12345));
    float mant = (float)((h >> 40) & 0xffffff) / (float)0x1000000 + 0.5f;
    float v = ldexpf(mant, (int)((h >> 8) % 25) - 12);
    return (h & 1) ? -v : v;
}

static uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void run_case(int alg, size_t n, size_t bucket_bytes, int piece_kb)
{
    float *buf = malloc((n ? n : 1) * sizeof *buf), *first = malloc((n ? n : 1) * sizeof *first);
    float v[ORDER_MAXP];
    if (!buf || !first) {
        fprintf(stderr, "test_sim_comm: out of memory\n");
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    char kb[32];
    snprintf(kb, sizeof kb, "%d", piece_kb);
    if (piece_kb)
        setenv("TSR_COMM_PIECE_KB", kb, 1);
    tsr_comm_options_t o = {.algorithm = tsr_alg_name(alg), .bucket_bytes = bucket_bytes, .topology = topology};
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    CHECK(rc == TSR_OK, "create %s n=%zu: %s", o.algorithm, n, tsr_last_error());
    if (rc)
        goto out;
    CHECK(strcmp(tsr_comm_backend(c), "mpi") == 0, "auto chose '%s' under SimGrid, want mpi", tsr_comm_backend(c));
    size_t unit = bucket_bytes ? bucket_bytes / 4 : n;
    int ran = tsr_alg_resolve(alg, size);
    for (int round = 0; round < 2; round++) {
        uint64_t seed = 77 + n * 3 + bucket_bytes + (uint64_t)alg * 101;
        for (size_t i = 0; i < n; i++)
            buf[i] = value(seed, rank, i);
        rc = tsr_comm_allreduce(c);
        CHECK(rc == TSR_OK, "allreduce %s n=%zu: %s", o.algorithm, n, tsr_last_error());
        size_t bad = 0, at = 0;
        for (size_t i = 0; i < n; i++) {
            size_t off, m, ulen;
            order_piece_at(n, unit, ran, size, i, &off, &m, &ulen);
            for (int r = 0; r < size; r++)
                v[r] = value(seed, r, i);
            float want = order_sum(order_alg(ran, size, ulen), v, size, off, m);
            if (bits(buf[i]) != bits(want) || (round && bits(buf[i]) != bits(first[i])))
                at = bad++ ? at : i;
        }
        CHECK(bad == 0, "%s n=%zu bucket_bytes=%zu pieces %d KiB, round %d: %zu wrong, first at %zu", o.algorithm, n,
              bucket_bytes, piece_kb, round, bad, at);
        memcpy(first, buf, n * sizeof *buf);
    }
    tsr_comm_destroy(c);
out:
    unsetenv("TSR_COMM_PIECE_KB");
    free(buf);
    free(first);
}

/* Simulated seconds of one allreduce of `bytes` by alg (one bucket). */
static double sim_time(int alg, size_t bytes)
{
    size_t n = bytes / sizeof(float);
    float *buf = calloc(n, sizeof *buf);
    tsr_comm_options_t o = {.algorithm = tsr_alg_name(alg), .topology = topology};
    tsr_comm_t *c = NULL;
    double t = -1;
    if (buf && tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c) == TSR_OK) {
        MPI_Barrier(MPI_COMM_WORLD);
        double t0 = MPI_Wtime();
        if (tsr_comm_allreduce(c) == TSR_OK)
            t = MPI_Wtime() - t0;
    }
    tsr_comm_destroy(c);
    free(buf);
    return t;
}

int main(int argc, char **argv)
{
    tsr_runtime_t *rt = NULL;
    int rc = tsr_runtime_create(&argc, &argv, &rt);
    if (rc) {
        fprintf(stderr, "test_sim_comm: runtime: %s\n", tsr_last_error());
        return 1;
    }
    rank = tsr_runtime_rank(rt);
    size = tsr_runtime_size(rt);
    int provided = 0;
    MPI_Query_thread(&provided);
    CHECK(provided == MPI_THREAD_SINGLE && !tsr_runtime_helper_threads(rt),
          "thread level %d, helper threads %d: want SINGLE and none", provided, tsr_runtime_helper_threads(rt));

    float x[4] = {0};
    tsr_comm_t *c = NULL;
    rc = tsr_comm_create(MPI_COMM_WORLD, "shm", x, 4, 0, &c);
    CHECK(rc == TSR_ENOTSUP && !c, "shm under SimGrid: rc %d (%s), want TSR_ENOTSUP", rc, tsr_last_error());

    static const size_t sizes[] = {1, 7, 1000, 4099, 40000};
    static const size_t buckets[] = {0, 1024};
    /* Many buckets are checked at 4099 floats (17 of 1 KiB); 40000 floats
     * in 1 KiB buckets (157) added nothing more and took most of the
     * test's time: SMPI matches messages by scanning its queues, which
     * that many buckets in flight make long. */
    for (int alg = TSR_ALG_AUTO; alg < TSR_ALG_HIER; alg++)
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (size_t j = 0; j < sizeof buckets / sizeof buckets[0]; j++)
                if (!buckets[j] || sizes[i] < 5000)
                    run_case(alg, sizes[i], buckets[j], 0);
    for (int alg = TSR_ALG_AUTO; alg < TSR_ALG_ALLTOALL; alg++)
        run_case(alg, 40000, 0, 16); /* 10 pieces of 4096 floats */
    /* 800 KB: 6 pieces of 128 KiB and more, but at most 4 for the ring */
    run_case(TSR_ALG_RING, 200000, 0, 0);
    run_case(TSR_ALG_RABENSEIFNER, 200000, 0, 0);

    if (argc > 1 && size == 8) { /* leaves n[0-3] and n[4-7] */
        topology = argv[1];
        order_groups = 2;
        order_L = 4;
        for (int r = 0; r < size; r++)
            order_member[r] = r;
        for (int alg = TSR_ALG_AUTO; alg <= TSR_ALG_HIER; alg += TSR_ALG_HIER)
            for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
                for (size_t j = 0; j < sizeof buckets / sizeof buckets[0]; j++)
                    if (!buckets[j] || sizes[i] < 5000)
                        run_case(alg, sizes[i], buckets[j], 0);
        run_case(TSR_ALG_HIER, 200000, 0, 0);
    } else if (argc > 1) {
        tsr_comm_options_t o = {.algorithm = "hier", .topology = argv[1]};
        rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 4, &c);
        CHECK(rc == TSR_EINVAL && strstr(tsr_last_error(), "differ in size"), "hier on leaves of 4 and 2: %s",
              tsr_last_error());
    }

    for (int alg = TSR_ALG_AUTO; alg < (topology ? TSR_ALG_COUNT : TSR_ALG_HIER); alg++) {
        double t = sim_time(alg, (size_t)1 << 20);
        CHECK(t > 0, "timing %s failed", tsr_alg_name(alg));
        if (rank == 0)
            printf("1 MiB on %d simulated ranks, %-12s %9.1f us simulated\n", size, tsr_alg_name(alg), t * 1e6);
    }

    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, "test_sim_comm: %ld of %ld checks FAILED on %d simulated ranks\n", total_fail, total_checks,
                    size);
        else
            printf("test_sim_comm: %ld checks passed on %d simulated ranks\n", total_checks, size);
    }
    tsr_runtime_destroy(rt);
    return total_fail ? 1 : 0;
}
