/* SPDX-License-Identifier: BSD-3-Clause */
/* Multi-rank test of the hierarchical allreduce and of the topology it
 * reads: each rank sets SLURM_TOPOLOGY_ADDR as slurmd would under the
 * topology/tree plugin ("top.LEAF.node"), for leaves of consecutive ranks
 * and for leaves of interleaved ones; sums must equal, bit for bit, the
 * order comm_order.h writes down (a ring within each leaf, then across
 * them), over sizes, buckets and pieces, all at once and staged as
 * backward marks them, and as the node leaders' algorithm under "shm"
 * (every rank its own fake node); auto beside it must go on running its flat choice
 * (it never picks hier: alg_select.c). Worlds that cannot form equal
 * leaves of two or more (5 ranks) must refuse hier on every rank with one
 * line, and auto must run there. */
#define COMM_TEST_NAME "test_comm_topo"
#include "comm_test.h"
#include "comm_order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Leaf of rank r: L consecutive ranks (block) or every G-th (interleaved). */
static int leaf_of(int r, int L, int interleaved) { return interleaved ? r % (size / L) : r / L; }

static void set_topology(int L, int interleaved)
{
    char addr[64];
    snprintf(addr, sizeof addr, "top.leaf%d.node%d", leaf_of(rank, L, interleaved), rank);
    setenv("SLURM_TOPOLOGY_ADDR", addr, 1);
    order_groups = size / L;
    order_L = L;
    int fill_of[ORDER_MAXP] = {0};
    for (int r = 0; r < size; r++) { /* groups in the order of their lowest rank: leaf g's lowest is g's first */
        int g = leaf_of(r, L, interleaved);
        order_member[g * L + fill_of[g]++] = r;
    }
}

static void run(int alg, size_t n, size_t bucket_bytes, int piece_kb)
{
    float *buf = malloc((n ? n : 1) * sizeof *buf), *ref = malloc((n ? n : 1) * sizeof *ref);
    float v[ORDER_MAXP];
    char kb[16];
    snprintf(kb, sizeof kb, "%d", piece_kb);
    if (piece_kb)
        setenv("TSR_COMM_PIECE_KB", kb, 1);
    tsr_comm_options_t o = {.backend = "mpi", .algorithm = tsr_alg_name(alg), .bucket_bytes = bucket_bytes};
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    CHECK(rc == TSR_OK, "create %s n=%zu bucket=%zu: %s", o.algorithm, n, bucket_bytes, tsr_last_error());
    size_t unit = bucket_bytes ? bucket_bytes / 4 : (n ? n : 1);
    for (int step = 0; !rc && step < 3; step++) {
        uint64_t seed = 7777u * n + bucket_bytes + 31u * (uint64_t)step + (uint64_t)piece_kb;
        fill(buf, n, seed, rank);
        for (size_t i = 0; i < n; i++) {
            size_t off, m, ulen;
            order_piece_at(n, unit, tsr_alg_resolve(alg, size), size, i, &off, &m, &ulen);
            for (int r = 0; r < size; r++)
                v[r] = value(seed, r, i);
            ref[i] = order_sum(order_alg(tsr_alg_resolve(alg, size), size, ulen), v, size, off, m);
        }
        rc = step == 1 ? staged(c, n, seed) : tsr_comm_allreduce(c);
        CHECK(rc == TSR_OK, "allreduce %s step %d: %s", o.algorithm, step, tsr_last_error());
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < n; i++)
            if (bits(buf[i]) != bits(ref[i]) && !bad++)
                first = i;
        CHECK(bad == 0, "%s n=%zu bucket=%zu piece_kb=%d step %d: %zu differ, first at %zu: %a want %a", o.algorithm, n,
              bucket_bytes, piece_kb, step, bad, first, bad ? buf[first] : 0.0, bad ? ref[first] : 0.0);
    }
    if (!rc && n > 0 && size > AUTO_ALLTOALL_MAX) {
        const char *got = tsr_comm_algorithm(c, 0);
        CHECK(got && (alg == TSR_ALG_HIER) == (strcmp(got, "hier") == 0), "%s: bucket 0 runs %s", o.algorithm,
              got ? got : "none");
    }
    tsr_comm_destroy(c);
    unsetenv("TSR_COMM_PIECE_KB");
    free(buf);
    free(ref);
}

/* "shm" with every rank its own (fake) node, so the node leaders are all
 * the ranks and run hier between them: the leaders see the topology too.
 * 256-byte chunks (64 floats) are the leaders' buckets. */
static void run_shm(size_t n)
{
    enum { CHUNK_FLOATS = 64 };
    char nodes[16];
    snprintf(nodes, sizeof nodes, "%d", size);
    setenv("TSR_COMM_FAKE_NODES", nodes, 1);
    setenv("TSR_COMM_SHM_CHUNK", "256", 1);
    float *buf = malloc(n * sizeof *buf), *ref = malloc(n * sizeof *ref);
    float v[ORDER_MAXP];
    tsr_comm_options_t o = {.backend = "shm", .algorithm = "hier"};
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    CHECK(rc == TSR_OK, "shm, leaders on hier, n=%zu: %s", n, tsr_last_error());
    if (!rc) {
        const char *got = tsr_comm_algorithm(c, 0);
        CHECK(got && strcmp(got, "hier") == 0, "shm's leaders run %s, want hier", got ? got : "none");
        fill(buf, n, 4242 + n, rank);
        for (size_t i = 0; i < n; i++) {
            size_t off, m, ulen;
            order_piece_at(n, CHUNK_FLOATS, TSR_ALG_HIER, size, i, &off, &m, &ulen);
            for (int r = 0; r < size; r++)
                v[r] = value(4242 + n, r, i);
            ref[i] = order_sum(TSR_ALG_HIER, v, size, off, m);
        }
        rc = tsr_comm_allreduce(c);
        size_t bad = 0;
        for (size_t i = 0; !rc && i < n; i++)
            bad += bits(buf[i]) != bits(ref[i]);
        CHECK(rc == TSR_OK && bad == 0, "shm, leaders on hier, n=%zu: rc %d, %zu elements differ", n, rc, bad);
    }
    tsr_comm_destroy(c);
    unsetenv("TSR_COMM_FAKE_NODES");
    unsetenv("TSR_COMM_SHM_CHUNK");
    free(buf);
    free(ref);
}

static void cases(void)
{
    static const size_t sizes[] = {1, 5, 1000, 4096 + 3, 100003};
    static const size_t buckets[] = {0, 12, 4096, 64 * 1024};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof buckets / sizeof buckets[0]; j++) {
            if (sizes[i] > 5000 && buckets[j] < 1024)
                continue;
            run(TSR_ALG_HIER, sizes[i], buckets[j], 0);
            run(TSR_ALG_AUTO, sizes[i], buckets[j], 0);
        }
    run(TSR_ALG_HIER, 100003, 0, 1); /* 1 KiB pieces: many schedules in flight */
    run_shm(1000);
    run_shm(4096 + 3);
}

/* What must be refused, on every rank alike. */
static void refusals(void)
{
    float x[64] = {0};
    tsr_comm_t *c = NULL;
    unsetenv("SLURM_TOPOLOGY_ADDR");
    tsr_comm_options_t o = {.backend = "mpi", .algorithm = "hier"};
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_EINVAL && !c && strstr(tsr_last_error(), "hier needs") &&
              strstr(tsr_last_error(), "SLURM_TOPOLOGY_ADDR is unset"),
          "hier without a topology: rc %d: %s", rc, tsr_last_error());
    /* some ranks with a switch, others without */
    if (rank % 2)
        setenv("SLURM_TOPOLOGY_ADDR", "top.leaf0.node", 1);
    rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_EINVAL && !c && strstr(tsr_last_error(), "rank 0 has no switch and rank 1 has 'top.leaf0'"),
          "mixed SLURM_TOPOLOGY_ADDR: rc %d: %s", rc, tsr_last_error());
    unsetenv("SLURM_TOPOLOGY_ADDR");
    o.topology = "none";
    rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_EINVAL && strstr(tsr_last_error(), "runtime.topology = none"), "none: %s", tsr_last_error());
    o.topology = "node"; /* every rank on this one host: one group */
    rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_EINVAL && strstr(tsr_last_error(), "1 group of"), "node: %s", tsr_last_error());
    o.topology = "/nonexistent/topology.conf";
    rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_EDATA && strstr(tsr_last_error(), "rank 0: /nonexistent/topology.conf: no such file"),
          "missing file: rc %d: %s", rc, tsr_last_error());
    /* leaves of unequal size: rank 0 alone, the rest in another */
    setenv("SLURM_TOPOLOGY_ADDR", rank < 1 ? "top.a.n" : "top.b.n", 1);
    o.topology = NULL;
    rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_EINVAL && strstr(tsr_last_error(), "differ in size"), "unequal leaves: %s", tsr_last_error());
    o.algorithm = "auto"; /* auto runs there, flat */
    rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 64, &c);
    CHECK(rc == TSR_OK && (size <= AUTO_ALLTOALL_MAX || strcmp(tsr_comm_algorithm(c, 0), "hier") != 0),
          "auto on unequal leaves: %s", rc ? tsr_last_error() : tsr_comm_algorithm(c, 0));
    tsr_comm_destroy(c);
    unsetenv("SLURM_TOPOLOGY_ADDR");
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    if (size >= 4 && size != 5)
        refusals();
    for (int L = 2; L < size; L++) {
        if (size % L)
            continue;
        for (int inter = 0; inter < 2; inter++) {
            set_topology(L, inter);
            cases();
        }
    }
    if (size == 5) { /* no equal leaves of 2 or more: refused alike, auto runs */
        setenv("SLURM_TOPOLOGY_ADDR", rank < 3 ? "top.a.n" : "top.b.n", 1);
        float x[8] = {0};
        tsr_comm_t *c = NULL;
        tsr_comm_options_t o = {.backend = "mpi", .algorithm = "hier"};
        int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, x, 8, &c);
        CHECK(rc == TSR_EINVAL && strstr(tsr_last_error(), "3 ranks in 'top.a', 2 in another"), "5 ranks: %s",
              tsr_last_error());
        run(TSR_ALG_AUTO, 100003, 0, 0);
        unsetenv("SLURM_TOPOLOGY_ADDR");
    }
    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, "test_comm_topo: %ld of %ld checks FAILED on %d ranks\n", total_fail, total_checks, size);
        else
            printf("test_comm_topo: %ld checks passed on %d ranks\n", total_checks, size);
    }
    MPI_Finalize();
    return total_fail ? 1 : 0;
}
