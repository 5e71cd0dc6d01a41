/* SPDX-License-Identifier: BSD-3-Clause */
/* Multi-rank test of the "shm" comm back-end. Every sum must equal, bit
 * for bit, a reference taken locally in the back-end's documented order:
 * within a node, ranks in ascending order; then the node sums in the order
 * of the leaders' algorithm (comm_order.h; nodes ordered by their lowest
 * rank, each chunk a bucket of the leaders' "mpi" back-end). With one node
 * that is rank order.
 *
 * The hierarchical path (several nodes, leaders reducing over MPI) is
 * exercised on one machine through the back-end's test hook
 * TSR_COMM_FAKE_NODES=K, which cuts the ranks into K blocks, the first
 * blocks the smaller (3 ranks, K=2: {0}, {1,2}, whose sums v0 + (v1 + v2)
 * differ from rank order). The reference learns the real node layout from
 * MPI_Comm_split_type, so the test also holds on several machines.
 * TSR_COMM_SHM_CHUNK shrinks the chunks to force many of them (the ring
 * wraps round, slices of a chunk are empty), and TSR_COMM_SHM_SYNC=barrier
 * selects the MPI_Barrier-synchronised variant. */
#define COMM_TEST_NAME "test_comm_shm"
#include "comm_test.h"
#include "comm_order.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int *real_node; /* lowest world rank on each rank's real node */

/* node[r] = the lowest rank on rank r's node when the back-end runs with
 * TSR_COMM_FAKE_NODES=fake (0: unset) on a world of p ranks. */
static void node_layout(int fake, int p, int *node)
{
    int k = fake > p ? p : fake;
    for (int r = 0; r < p; r++) {
        int color = k > 0 ? (int)(((long)(r + 1) * k - 1) / p) : 0;
        node[r] = r;
        for (int q = 0; q < r; q++) {
            int qcolor = k > 0 ? (int)(((long)(q + 1) * k - 1) / p) : 0;
            if (real_node[q] == real_node[r] && qcolor == color) {
                node[r] = q;
                break;
            }
        }
    }
}

/* shm's chunk size in floats for n floats and TSR_COMM_SHM_CHUNK = bytes
 * (0: the default 128 KiB), as backend_shm_setup.c cuts them. */
static size_t chunk_floats(size_t n, size_t bytes)
{
    size_t cf = (bytes ? bytes : (size_t)128 << 10) / sizeof(float);
    cf &= ~(size_t)15;
    if (cf < 16)
        cf = 16;
    size_t nround = (n + 15) & ~(size_t)15;
    if (cf > nround)
        cf = nround > 0 ? nround : 16;
    return cf;
}

/* Element i of the sum in the back-end's order for the given layout: node
 * partial sums in rank order, combined over nodes by the leaders'
 * algorithm alg on the piece of the chunk (of cf floats) holding i. */
static float ordered_sum(uint64_t seed, size_t i, const int *node, int p, int alg, size_t n, size_t cf)
{
    float part[ORDER_MAXP];
    int nn = 0;
    for (int lead = 0; lead < p; lead++) {
        if (node[lead] != lead)
            continue;
        float acc = value(seed, lead, i);
        for (int r = lead + 1; r < p; r++)
            if (node[r] == lead)
                acc += value(seed, r, i);
        part[nn++] = acc;
    }
    size_t off, m, ulen;
    alg = tsr_alg_resolve(alg, nn);
    order_piece_at(n, cf, alg, nn, i, &off, &m, &ulen);
    return order_sum(order_alg(alg, nn, ulen), part, nn, off, m);
}

static void check_equal(const float *got, const float *want, size_t n, const char *what, const char *tag)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (bits(got[i]) != bits(want[i])) {
            if (!bad)
                first = i;
            bad++;
        }
    }
    CHECK(bad == 0, "%s (%s): %zu of %zu elements differ; first at %zu: got %a (0x%08x), want %a (0x%08x)", what, tag,
          bad, n, first, bad ? got[first] : 0.0, bad ? bits(got[first]) : 0u, bad ? want[first] : 0.0,
          bad ? bits(want[first]) : 0u);
}

typedef struct config {
    int fake;     /* TSR_COMM_FAKE_NODES, 0: unset */
    size_t chunk; /* TSR_COMM_SHM_CHUNK in bytes, 0: unset */
    int barrier;  /* TSR_COMM_SHM_SYNC=barrier */
    int alg;      /* the leaders' algorithm, TSR_ALG_* */
} config_t;

static void set_env(const config_t *k)
{
    char v[32];
    if (k->fake) {
        snprintf(v, sizeof v, "%d", k->fake);
        setenv("TSR_COMM_FAKE_NODES", v, 1);
    }
    if (k->chunk) {
        snprintf(v, sizeof v, "%zu", k->chunk);
        setenv("TSR_COMM_SHM_CHUNK", v, 1);
    }
    if (k->barrier)
        setenv("TSR_COMM_SHM_SYNC", "barrier", 1);
}

static void clear_env(void)
{
    unsetenv("TSR_COMM_FAKE_NODES");
    unsetenv("TSR_COMM_SHM_CHUNK");
    unsetenv("TSR_COMM_SHM_SYNC");
}

static void run_case(size_t n, size_t bucket_bytes, const config_t *k)
{
    char tag[160];
    snprintf(tag, sizeof tag, "n=%zu bucket_bytes=%zu fake_nodes=%d chunk=%zu%s %s", n, bucket_bytes, k->fake, k->chunk,
             k->barrier ? " barrier" : "", tsr_alg_name(k->alg));
    size_t cf = chunk_floats(n, k->chunk);
    float *mem = malloc((n + 2 * GUARD) * sizeof *mem);
    float *ref = malloc((n ? n : 1) * sizeof *ref);
    float *first = malloc((n ? n : 1) * sizeof *first);
    int *node = malloc((size_t)size * sizeof *node);
    if (!mem || !ref || !first || !node) {
        fprintf(stderr, "test_comm_shm[rank %d]: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    node_layout(k->fake, size, node);
    for (size_t i = 0; i < n + 2 * GUARD; i++)
        mem[i] = guard_value;
    float *buf = mem + GUARD;
    tsr_comm_t *c = NULL;
    set_env(k);
    tsr_comm_options_t o = {.backend = "shm", .algorithm = tsr_alg_name(k->alg), .bucket_bytes = bucket_bytes};
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    clear_env();
    CHECK(rc == TSR_OK, "create (%s): %s", tag, tsr_last_error());
    if (rc)
        goto out;
    CHECK(strcmp(tsr_comm_backend(c), "shm") == 0, "backend is '%s'", tsr_comm_backend(c));

    /* 1. all at once */
    uint64_t seed = 1000003u * n + bucket_bytes * 7 + (uint64_t)k->fake * 13 + k->chunk + 101u * (uint64_t)k->alg;
    fill(buf, n, seed, rank);
    for (size_t i = 0; i < n; i++)
        ref[i] = ordered_sum(seed, i, node, size, k->alg, n, cf);
    rc = tsr_comm_allreduce(c);
    CHECK(rc == TSR_OK, "allreduce (%s): %s", tag, tsr_last_error());
    check_equal(buf, ref, n, "allreduce", tag);
    memcpy(first, buf, n * sizeof *buf);

    /* 2. the same inputs again: the same bits */
    fill(buf, n, seed, rank);
    rc = tsr_comm_allreduce(c);
    CHECK(rc == TSR_OK, "repeat (%s): %s", tag, tsr_last_error());
    check_equal(buf, first, n, "repeat run", tag);

    /* 3. staged readiness */
    fill(buf, n, seed, rank);
    rc = staged(c, n, seed);
    CHECK(rc == TSR_OK, "staged (%s): %s", tag, tsr_last_error());
    check_equal(buf, ref, n, "staged", tag);

    /* 4. more steps on one engine, new inputs each */
    for (int step = 0; step < 3; step++) {
        uint64_t s2 = seed * 31 + (uint64_t)step + 1;
        fill(buf, n, s2, rank);
        for (size_t i = 0; i < n; i++)
            ref[i] = ordered_sum(s2, i, node, size, k->alg, n, cf);
        rc = step % 2 ? tsr_comm_allreduce(c) : staged(c, n, s2);
        CHECK(rc == TSR_OK, "step %d (%s): %s", step, tag, tsr_last_error());
        check_equal(buf, ref, n, "reused engine", tag);
    }
    int ok = 1;
    for (int g = 0; g < GUARD; g++)
        ok &= bits(mem[g]) == bits(guard_value) && bits(mem[GUARD + n + (size_t)g]) == bits(guard_value);
    CHECK(ok, "memory outside buf[0..%zu) was written (%s)", n, tag);
    tsr_comm_destroy(c);
out:
    free(mem);
    free(ref);
    free(first);
    free(node);
}

/* The hierarchical reference must really differ from rank order, or the
 * fake-node cases prove nothing. */
static void check_order_matters(void)
{
    if (size < 3)
        return;
    int *node = malloc((size_t)size * sizeof *node), *flat = malloc((size_t)size * sizeof *flat);
    node_layout(2, size, node);
    for (int r = 0; r < size; r++)
        flat[r] = 0;
    size_t differ = 0;
    for (size_t i = 0; i < 10000; i++)
        differ += bits(ordered_sum(7, i, node, size, TSR_ALG_ALLTOALL, 10000, 10000)) !=
                  bits(ordered_sum(7, i, flat, size, TSR_ALG_ALLTOALL, 10000, 10000));
    CHECK(differ > 100, "only %zu of 10000 hierarchical sums differ from rank order", differ);
    free(node);
    free(flat);
}

/* Overlap: on one node, tsr_comm_ready_from does every phase whose inputs
 * the other ranks have provided. After each rank has declared everything
 * ready, three rounds of (barrier, ready_from) suffice for one chunk (copy
 * in, reduce, copy out) with no tsr_comm_wait at all. */
static void check_overlap(void)
{
    int one = 1;
    for (int r = 0; r < size; r++)
        one &= real_node[r] == 0;
    if (!one)
        return;
    enum { N = 1000 };
    float buf[N], want[N];
    int flat[64] = {0};
    if (size > 64)
        return;
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create(MPI_COMM_WORLD, "shm", buf, N, 256, &c);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    if (rc)
        return;
    for (int step = 0; step < 3; step++) {
        fill(buf, N, 555 + (uint64_t)step, rank);
        for (size_t i = 0; i < N; i++)
            want[i] = ordered_sum(555 + (uint64_t)step, i, flat, size, TSR_ALG_AUTO, N, chunk_floats(N, 0));
        rc = tsr_comm_ready_from(c, 0);
        for (int round = 0; round < 3 && !rc; round++) {
            MPI_Barrier(MPI_COMM_WORLD);
            rc = tsr_comm_ready_from(c, 0);
        }
        CHECK(rc == TSR_OK, "ready_from: %s", tsr_last_error());
        check_equal(buf, want, N, "sums complete before tsr_comm_wait", "n=1000");
        MPI_Barrier(MPI_COMM_WORLD);
        rc = tsr_comm_wait(c);
        CHECK(rc == TSR_OK, "wait: %s", tsr_last_error());
        check_equal(buf, want, N, "after tsr_comm_wait", "n=1000");
    }
    tsr_comm_destroy(c);
}

static const char *auto_choice(int fake)
{
    float x[8] = {0};
    tsr_comm_t *c = NULL;
    config_t k = {.fake = fake};
    set_env(&k);
    int rc = tsr_comm_create(MPI_COMM_WORLD, "auto", x, 8, 0, &c);
    clear_env();
    CHECK(rc == TSR_OK, "auto with fake_nodes=%d: %s", fake, tsr_last_error());
    const char *name = rc ? "?" : tsr_comm_backend(c); /* a static string */
    tsr_comm_destroy(c);
    return name;
}

/* "auto" is shm exactly when some node holds more than one rank. */
static void check_auto(void)
{
    int *node = malloc((size_t)size * sizeof *node);
    for (int fake = 0; fake <= size; fake++) {
        node_layout(fake, size, node);
        int shared = 0;
        for (int r = 0; r < size; r++)
            shared |= node[r] != r;
        const char *got = auto_choice(fake), *want = shared ? "shm" : "mpi";
        CHECK(strcmp(got, want) == 0, "auto with fake_nodes=%d chose '%s', want %s", fake, got, want);
    }
    free(node);
}

static void check_errors(void)
{
    float x[4] = {0};
    tsr_comm_t *c = NULL;
    setenv("TSR_COMM_FAKE_NODES", "two", 1);
    int rc = tsr_comm_create(MPI_COMM_WORLD, "shm", x, 4, 0, &c);
    clear_env();
    CHECK(rc == TSR_EINVAL && c == NULL, "bad TSR_COMM_FAKE_NODES: rc %d, want TSR_EINVAL", rc);
    CHECK(strstr(tsr_last_error(), "TSR_COMM_FAKE_NODES") != NULL, "message: '%s'", tsr_last_error());

    setenv("TSR_COMM_SHM_SYNC", "spin", 1);
    rc = tsr_comm_create(MPI_COMM_WORLD, "shm", x, 4, 0, &c);
    clear_env();
    CHECK(rc == TSR_EINVAL && c == NULL, "bad TSR_COMM_SHM_SYNC: rc %d, want TSR_EINVAL", rc);

    /* Ranks that disagree all fail, none hangs. */
    if (size > 1) {
        setenv("TSR_COMM_SHM_CHUNK", rank == 0 ? "1024" : "2048", 1);
        rc = tsr_comm_create(MPI_COMM_WORLD, "shm", x, 4, 0, &c);
        clear_env();
        CHECK(rc == TSR_EINVAL && c == NULL, "disagreeing ranks: rc %d, want TSR_EINVAL", rc);
        CHECK(strstr(tsr_last_error(), "differ") != NULL, "message: '%s'", tsr_last_error());
    }

    rc = tsr_comm_create(MPI_COMM_WORLD, "shm", x, 4, 8, &c);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    if (!rc) {
        CHECK(tsr_comm_ready_from(c, 5) == TSR_EINVAL, "ready_from past the end accepted");
        for (int i = 0; i < 4; i++)
            x[i] = (float)(rank + i);
        CHECK(tsr_comm_allreduce(c) == TSR_OK, "allreduce after a refused call: %s", tsr_last_error());
        for (int i = 0; i < 4; i++)
            CHECK(x[i] == (float)(size * (size - 1) / 2 + size * i), "x[%d] = %g", i, (double)x[i]);
    }
    tsr_comm_destroy(c);
}

/* A sub-communicator (even and odd world ranks): the engine works on its
 * ranks only, and its nodes are the sub-communicator's. */
static void check_subcomm(void)
{
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &sub);
    int srank, ssize;
    MPI_Comm_rank(sub, &srank);
    MPI_Comm_size(sub, &ssize);
    enum { N = 777 };
    float buf[N], want[N];
    for (size_t i = 0; i < N; i++) {
        buf[i] = value(99, srank, i);
        float acc = value(99, 0, i);
        for (int r = 1; r < ssize; r++)
            acc += value(99, r, i);
        want[i] = acc;
    }
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create(sub, "shm", buf, N, 100 * sizeof(float), &c);
    CHECK(rc == TSR_OK, "create on a sub-communicator: %s", tsr_last_error());
    if (!rc) {
        rc = tsr_comm_allreduce(c);
        CHECK(rc == TSR_OK, "allreduce on a sub-communicator: %s", tsr_last_error());
        /* one real node: rank order within the sub-communicator */
        int one = 1;
        for (int r = 0; r < size; r++)
            one &= real_node[r] == 0;
        if (one)
            check_equal(buf, want, N, "sub-communicator", "n=777");
    }
    tsr_comm_destroy(c);
    MPI_Comm_free(&sub);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    clear_env();

    /* The real node layout: the lowest world rank on each rank's node. */
    real_node = malloc((size_t)size * sizeof *real_node);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int lowest = rank;
    MPI_Allreduce(MPI_IN_PLACE, &lowest, 1, MPI_INT, MPI_MIN, node);
    MPI_Allgather(&lowest, 1, MPI_INT, real_node, 1, MPI_INT, MPI_COMM_WORLD);
    MPI_Comm_free(&node);

    check_order_matters();
    check_errors();
    check_auto();
    check_subcomm();
    check_overlap();

    int verbose = getenv("TSR_TEST_VERBOSE") ? atoi(getenv("TSR_TEST_VERBOSE")) : 0;
    /* Real nodes, default chunks (128 KiB = 32768 floats: 100003 floats
     * is 4 chunks, 2^20 + 5 is 33, so the ring of 4 slots wraps within a
     * step and across steps), every bucket size. */
    static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 17, 1000, 1023, 4096 + 3, 100003, (1u << 20) + 5};
    static const size_t buckets[] = {0, 4, 12, 1024, 64 * 1024};
    /* Fake nodes, tiny chunks, barrier sync: fewer sizes each. */
    static const size_t small_sizes[] = {0, 1, 3, 7, 1000, 4096 + 3, 100003};
    static const size_t small_buckets[] = {0, 12, 4096};
    config_t configs[24];
    int nconf = 0;
    configs[nconf++] = (config_t){0, 0, 0, TSR_ALG_AUTO};
    configs[nconf++] = (config_t){0, 64, 0, TSR_ALG_AUTO};  /* 16 floats: slices empty on most ranks */
    configs[nconf++] = (config_t){0, 256, 0, TSR_ALG_AUTO}; /* 64 floats */
    configs[nconf++] = (config_t){0, 0, 1, TSR_ALG_AUTO};   /* MPI_Barrier sync */
    configs[nconf++] = (config_t){0, 256, 1, TSR_ALG_AUTO};
    for (int fake = 2; fake <= size && fake <= 4; fake++) {
        configs[nconf++] = (config_t){fake, 0, 0, TSR_ALG_AUTO};
        configs[nconf++] = (config_t){fake, 256, 0, TSR_ALG_AUTO};
    }
    /* Every leaders' algorithm, every rank its own node. */
    for (int alg = TSR_ALG_RING; alg < TSR_ALG_HIER && size > 1; alg++) /* hier: test_comm_topo.c */
        configs[nconf++] = (config_t){size, 256, 0, alg};
    for (int ci = 0; ci < nconf; ci++) {
        const config_t *k = &configs[ci];
        int full = ci == 0;
        size_t ns = full ? sizeof sizes / sizeof sizes[0] : sizeof small_sizes / sizeof small_sizes[0];
        size_t nb = full ? sizeof buckets / sizeof buckets[0] : sizeof small_buckets / sizeof small_buckets[0];
        double t0 = MPI_Wtime();
        for (size_t i = 0; i < ns; i++) {
            size_t n = full ? sizes[i] : small_sizes[i];
            /* thousands of chunks a step: slow when oversubscribed */
            if (k->chunk && n > 5000 && (k->chunk == 64 || k->fake || k->barrier))
                continue;
            for (size_t j = 0; j < nb; j++) {
                /* the big buffer once, to keep the test quick */
                if (n > 200000 && j != 0)
                    continue;
                double t1 = MPI_Wtime();
                run_case(n, full ? buckets[j] : small_buckets[j], k);
                if (verbose > 1 && rank == 0)
                    printf("  n=%zu bucket=%zu: %.3f s\n", n, full ? buckets[j] : small_buckets[j], MPI_Wtime() - t1);
            }
        }
        if (verbose && rank == 0)
            printf("fake_nodes=%d chunk=%zu barrier=%d: %.3f s\n", k->fake, k->chunk, k->barrier, MPI_Wtime() - t0);
    }

    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, "test_comm_shm: %ld of %ld checks FAILED on %d ranks\n", total_fail, total_checks, size);
        else
            printf("test_comm_shm: %ld checks passed on %d ranks\n", total_checks, size);
    }
    free(real_node);
    MPI_Finalize();
    return total_fail ? 1 : 0;
}
