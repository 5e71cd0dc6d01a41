/* SPDX-License-Identifier: BSD-3-Clause */
/* Multi-rank test of the comm engine's "mpi" back-end: sums must equal,
 * bit for bit, a reference sum taken locally in the order of the algorithm
 * that ran (comm_order.h; every rank can regenerate every other rank's
 * inputs), for every algorithm, many buffer, bucket and piece sizes,
 * whether buckets are started all at once or in stages as backward would,
 * and step after step on one engine. */
#define COMM_TEST_NAME "test_comm"
#include "comm_test.h"
#include "comm_order.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The engine under test: algorithm (TSR_ALG_*) and TSR_COMM_PIECE_KB (0: unset). */
typedef struct setting {
    int alg;
    int piece_kb;
} setting_t;

static size_t unit_of(size_t n, size_t bucket_bytes)
{
    return bucket_bytes == 0 ? n : (bucket_bytes / 4 ? bucket_bytes / 4 : 1);
}

/* The sum every rank must get: element i in its piece's algorithm's order
 * (with TSR_COMM_PIECE_KB as the engine saw it: set for the whole case). */
static void reference(float *ref, size_t n, size_t bucket_bytes, const setting_t *k, uint64_t seed)
{
    float v[ORDER_MAXP];
    size_t unit = unit_of(n, bucket_bytes);
    int alg = tsr_alg_resolve(k->alg, size);
    for (size_t i = 0; i < n; i++) {
        size_t off, m, ulen;
        order_piece_at(n, unit, alg, size, i, &off, &m, &ulen);
        for (int r = 0; r < size; r++)
            v[r] = value(seed, r, i);
        ref[i] = order_sum(order_alg(alg, size, ulen), v, size, off, m);
    }
}

static const char *cur_alg = "?"; /* for messages */

/* Compares bitwise; reports the first mismatch only. */
static void check_equal(const float *got, const float *want, size_t n, const char *what, size_t nelem,
                        size_t bucket_bytes)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (bits(got[i]) != bits(want[i])) {
            if (!bad)
                first = i;
            bad++;
        }
    }
    CHECK(bad == 0,
          "%s (%s, n=%zu, bucket_bytes=%zu): %zu elements differ; first at %zu: got %a (0x%08x), want %a (0x%08x)",
          what, cur_alg, nelem, bucket_bytes, bad, first, bad ? got[first] : 0.0, bad ? bits(got[first]) : 0u,
          bad ? want[first] : 0.0, bad ? bits(want[first]) : 0u);
}

static void check_guards(const float *mem, size_t n, size_t bucket_bytes)
{
    int ok = 1;
    for (int g = 0; g < GUARD; g++)
        ok &= bits(mem[g]) == bits(guard_value) && bits(mem[GUARD + n + (size_t)g]) == bits(guard_value);
    CHECK(ok, "memory outside buf[0..%zu) was written (bucket_bytes=%zu)", n, bucket_bytes);
}

static size_t expected_buckets(size_t n, size_t bucket_bytes)
{
    if (n == 0)
        return 0;
    size_t be = bucket_bytes == 0 ? n : (bucket_bytes / 4 ? bucket_bytes / 4 : 1);
    return (n + be - 1) / be;
}

static void run_case(size_t n, size_t bucket_bytes, const setting_t *k)
{
    float *mem = malloc((n + 2 * GUARD) * sizeof *mem);
    float *ref = malloc((n ? n : 1) * sizeof *ref);
    float *first = malloc((n ? n : 1) * sizeof *first);
    if (!mem || !ref || !first) {
        fprintf(stderr, "test_comm[rank %d]: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    for (size_t i = 0; i < n + 2 * GUARD; i++)
        mem[i] = guard_value;
    float *buf = mem + GUARD;
    tsr_comm_t *c = NULL;
    /* The "mpi" back-end by name ("auto" picks "shm" when ranks share a
     * node; test_comm_shm.c covers that one and check_auto the choice). */
    tsr_comm_options_t o = {.backend = "mpi", .algorithm = tsr_alg_name(k->alg), .bucket_bytes = bucket_bytes};
    char kb[32];
    snprintf(kb, sizeof kb, "%d", k->piece_kb);
    if (k->piece_kb)
        setenv("TSR_COMM_PIECE_KB", kb, 1);
    int rc = tsr_comm_create_opts(MPI_COMM_WORLD, &o, buf, n, &c);
    CHECK(rc == TSR_OK, "create(n=%zu, bucket_bytes=%zu, %s): %s", n, bucket_bytes, o.algorithm, tsr_last_error());
    if (rc) {
        unsetenv("TSR_COMM_PIECE_KB");
        free(mem), free(ref), free(first);
        return;
    }
    CHECK(strcmp(tsr_comm_backend(c), "mpi") == 0, "backend is '%s', want mpi", tsr_comm_backend(c));
    CHECK(tsr_comm_nbuckets(c) == expected_buckets(n, bucket_bytes), "n=%zu bucket_bytes=%zu: %zu buckets, want %zu", n,
          bucket_bytes, tsr_comm_nbuckets(c), expected_buckets(n, bucket_bytes));
    /* Each bucket reports the algorithm its first piece runs. */
    size_t nb = tsr_comm_nbuckets(c);
    for (size_t b = 0; b < nb; b++) {
        if (b == 8 && nb > 16)
            b = nb - 8; /* the first and last few */
        const char *got = tsr_comm_algorithm(c, b);
        size_t off, m, ulen, unit = unit_of(n, bucket_bytes);
        size_t end = n - b * unit, start = end > unit ? end - unit : 0;
        int alg = tsr_alg_resolve(k->alg, size);
        order_piece_at(n, unit, alg, size, start, &off, &m, &ulen);
        const char *want = size == 1 ? NULL : tsr_alg_name(order_alg(alg, size, ulen));
        CHECK(want ? got && strcmp(got, want) == 0 : got == NULL, "bucket %zu runs %s, want %s", b, got ? got : "none",
              want ? want : "none");
    }

    /* 1. all at once */
    uint64_t seed = 1000003u * n + bucket_bytes + 7919u * (uint64_t)k->alg;
    fill(buf, n, seed, rank);
    reference(ref, n, bucket_bytes, k, seed);
    rc = tsr_comm_allreduce(c);
    CHECK(rc == TSR_OK, "allreduce: %s", tsr_last_error());
    check_equal(buf, ref, n, "allreduce", n, bucket_bytes);
    check_guards(mem, n, bucket_bytes);
    CHECK(tsr_comm_last_wait_seconds(c) >= 0.0, "negative wait time");
    memcpy(first, buf, n * sizeof *buf);

    /* 2. the same inputs again give the same bits */
    fill(buf, n, seed, rank);
    rc = tsr_comm_allreduce(c);
    CHECK(rc == TSR_OK, "repeat allreduce: %s", tsr_last_error());
    check_equal(buf, first, n, "repeat run", n, bucket_bytes);

    /* 3. staged readiness, then wait, on the same inputs */
    fill(buf, n, seed, rank);
    rc = staged(c, n, seed);
    CHECK(rc == TSR_OK, "staged: %s", tsr_last_error());
    check_equal(buf, ref, n, "staged", n, bucket_bytes);

    /* 4. several more steps on one engine, new inputs each step */
    for (int step = 0; step < 3; step++) {
        uint64_t s2 = seed * 31 + (uint64_t)step + 1;
        fill(buf, n, s2, rank);
        reference(ref, n, bucket_bytes, k, s2);
        rc = step % 2 ? tsr_comm_allreduce(c) : staged(c, n, s2);
        CHECK(rc == TSR_OK, "step %d: %s", step, tsr_last_error());
        check_equal(buf, ref, n, "reused engine", n, bucket_bytes);
    }
    check_guards(mem, n, bucket_bytes);
    tsr_comm_destroy(c);
    unsetenv("TSR_COMM_PIECE_KB");
    free(mem);
    free(ref);
    free(first);
}

/* The test only means something if addition order shows in the bits, and
 * the algorithms' orders differ where they can (tree is rank order on 3
 * ranks, every order is the same on 2). */
static void check_order_matters(void)
{
    if (size < 3)
        return;
    size_t differ = 0, ring = 0, tree = 0;
    float v[ORDER_MAXP];
    for (size_t i = 0; i < 10000; i++) {
        float fwd = value(7, 0, i), bwd = value(7, size - 1, i);
        for (int r = 1; r < size; r++)
            fwd += value(7, r, i);
        for (int r = size - 2; r >= 0; r--)
            bwd += value(7, r, i);
        differ += bits(fwd) != bits(bwd);
        for (int r = 0; r < size; r++)
            v[r] = value(7, r, i);
        float a2a = order_sum(TSR_ALG_ALLTOALL, v, size, 0, 1);
        ring += bits(order_sum(TSR_ALG_RING, v, size, 0, (size_t)size)) != bits(a2a);
        tree += bits(order_sum(TSR_ALG_TREE, v, size, 0, 1)) != bits(a2a);
    }
    CHECK(differ > 100, "only %zu of 10000 sums depend on the order: inputs too tame", differ);
    CHECK(ring > 100, "only %zu of 10000 ring sums differ from rank order", ring);
    CHECK(size < 4 || tree > 100, "only %zu of 10000 tree sums differ from rank order", tree);
}

static void check_errors(void)
{
    float x[4] = {0};
    tsr_comm_t *c = (tsr_comm_t *)x; /* must be overwritten with NULL */
    int rc = tsr_comm_create(MPI_COMM_WORLD, "x", x, 4, 0, &c);
    CHECK(rc == TSR_EINVAL, "unknown backend: rc %d, want TSR_EINVAL", rc);
    CHECK(c == NULL, "unknown backend: *out not NULL");
    CHECK(strcmp(tsr_last_error(), "comm: unknown backend 'x'; expected mpi, shm, nccl or auto") == 0,
          "unknown backend message: '%s'", tsr_last_error());

    rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", NULL, 4, 0, &c);
    CHECK(rc == TSR_EINVAL, "NULL buffer: rc %d, want TSR_EINVAL", rc);

    /* A single bucket larger than MPI's int counts is refused up front,
     * before anything touches the (here imaginary) buffer. */
    rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", x, (size_t)INT_MAX + 5, 0, &c);
    CHECK(rc == TSR_EINVAL && c == NULL, "oversized bucket: rc %d, want TSR_EINVAL", rc);
    CHECK(strstr(tsr_last_error(), "bucket") != NULL, "oversized bucket message: '%s'", tsr_last_error());

    rc = tsr_comm_create(MPI_COMM_WORLD, "mpi", x, 4, 8, &c);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    if (!rc) {
        rc = tsr_comm_ready_from(c, 5);
        CHECK(rc == TSR_EINVAL, "ready_from past the end: rc %d, want TSR_EINVAL", rc);
        CHECK(tsr_comm_allreduce(c) == TSR_OK, "allreduce after a refused call: %s", tsr_last_error());
    }
    tsr_comm_destroy(c);
    tsr_comm_destroy(NULL);
    CHECK(tsr_comm_nbuckets(NULL) == 0, "nbuckets(NULL)");

    /* nccl takes GPU buffers only; in a build without NCCL it never is available. */
    rc = tsr_comm_create(MPI_COMM_WORLD, "nccl", x, 4, 0, &c);
    CHECK(rc == TSR_ENOTSUP && c == NULL, "nccl on host memory: rc %d, want TSR_ENOTSUP", rc);
    CHECK(strstr(tsr_last_error(), "nccl") && strstr(tsr_last_error(), "host"), "nccl message: '%s'", tsr_last_error());

    /* Calibration: a positive reference time; the engine still sums right after. */
    float y[300];
    for (int i = 0; i < 300; i++)
        y[i] = 0;
    rc = tsr_comm_create(MPI_COMM_WORLD, NULL, y, 300, 64, &c);
    CHECK(rc == TSR_OK, "create: %s", tsr_last_error());
    CHECK(tsr_comm_calibrate(c, 0) == TSR_EINVAL, "calibrate 0 accepted");
    CHECK(tsr_comm_calibrate(c, 3) == TSR_OK && tsr_comm_reference_seconds(c) > 0, "calibrate: %s", tsr_last_error());
    for (int i = 0; i < 300; i++)
        y[i] = (float)(rank + i);
    CHECK(tsr_comm_ready_from(c, 150) == TSR_OK && tsr_comm_wait(c) == TSR_OK, "step after calibrate");
    for (int i = 0; i < 300; i++)
        CHECK(y[i] == (float)(size * i + size * (size - 1) / 2), "after calibrate: y[%d] = %g", i, y[i]);
    CHECK(tsr_comm_last_exposed_seconds(c) >= tsr_comm_last_wait_seconds(c), "exposed < wait");
    CHECK(tsr_comm_last_hidden_seconds(c) >= 0 && tsr_comm_last_hidden_seconds(c) <= tsr_comm_reference_seconds(c),
          "hidden %g outside [0, reference %g]", tsr_comm_last_hidden_seconds(c), tsr_comm_reference_seconds(c));
    tsr_comm_destroy(c);

    /* n == 0 is a valid, empty engine. */
    rc = tsr_comm_create(MPI_COMM_WORLD, NULL, NULL, 0, 64, &c);
    CHECK(rc == TSR_OK, "empty engine: %s", tsr_last_error());
    if (!rc) {
        CHECK(tsr_comm_nbuckets(c) == 0, "empty engine has %zu buckets", tsr_comm_nbuckets(c));
        CHECK(tsr_comm_ready_from(c, 0) == TSR_OK && tsr_comm_wait(c) == TSR_OK, "empty engine step: %s",
              tsr_last_error());
    }
    tsr_comm_destroy(c);
}

/* "auto" is "shm" when some node holds more than one rank, else "mpi". */
static void check_auto(void)
{
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    int local = 1, most = 1;
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    MPI_Allreduce(&local, &most, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    float x[8] = {0};
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create(MPI_COMM_WORLD, "auto", x, 8, 0, &c);
    CHECK(rc == TSR_OK, "auto: %s", tsr_last_error());
    if (!rc) {
        const char *want = most > 1 ? "shm" : "mpi";
        CHECK(strcmp(tsr_comm_backend(c), want) == 0, "auto chose '%s', want %s (%d ranks on the fullest node)",
              tsr_comm_backend(c), want, most);
    }
    tsr_comm_destroy(c);
    c = NULL;
    rc = tsr_comm_create(MPI_COMM_WORLD, NULL, x, 8, 0, &c); /* NULL means auto */
    CHECK(rc == TSR_OK && c && strcmp(tsr_comm_backend(c), most > 1 ? "shm" : "mpi") == 0, "NULL backend: %s",
          rc ? tsr_last_error() : tsr_comm_backend(c));
    tsr_comm_destroy(c);
}

/* A communicator other than the world: the engine duplicates it and works
 * on the ranks in it only (here, even and odd world ranks separately). */
static void check_subcomm(void)
{
    MPI_Comm sub;
    MPI_Comm_split(MPI_COMM_WORLD, rank % 2, rank, &sub);
    int srank, ssize;
    MPI_Comm_rank(sub, &srank);
    MPI_Comm_size(sub, &ssize);
    enum { N = 777 };
    float buf[N], want[N], v[ORDER_MAXP];
    for (size_t i = 0; i < N; i++) {
        buf[i] = value(99, srank, i);
        for (int r = 0; r < ssize; r++)
            v[r] = value(99, r, i);
        size_t off, m, ulen;
        int alg = tsr_alg_resolve(TSR_ALG_AUTO, ssize);
        order_piece_at(N, 100, alg, ssize, i, &off, &m, &ulen);
        want[i] = order_sum(order_alg(alg, ssize, ulen), v, ssize, off, m);
    }
    tsr_comm_t *c = NULL;
    int rc = tsr_comm_create(sub, "mpi", buf, N, 100 * sizeof(float), &c);
    CHECK(rc == TSR_OK, "create on a sub-communicator: %s", tsr_last_error());
    if (!rc) {
        rc = tsr_comm_allreduce(c);
        CHECK(rc == TSR_OK, "allreduce on a sub-communicator: %s", tsr_last_error());
        check_equal(buf, want, N, "sub-communicator", N, 100 * sizeof(float));
    }
    tsr_comm_destroy(c);
    MPI_Comm_free(&sub);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);

    static const size_t sizes[] = {0, 1, 2, 3, 5, 7, 1000, 1023, 4096 + 3, 100003};
    static const size_t buckets[] = {0, 4, 12, 1024, 64 * 1024};
    /* Every algorithm on every size and bucket; then pieces of 1 KiB (256
     * floats: a bucket runs as many schedules) on fewer. */
    static const setting_t settings[] = {
        {TSR_ALG_AUTO, 0}, {TSR_ALG_RING, 0}, {TSR_ALG_RABENSEIFNER, 0}, {TSR_ALG_TREE, 0}, {TSR_ALG_ALLTOALL, 0},
        {TSR_ALG_AUTO, 1}, {TSR_ALG_RING, 1}, {TSR_ALG_RABENSEIFNER, 1}, {TSR_ALG_TREE, 1},
    };
    check_order_matters();
    check_errors();
    check_auto();
    check_subcomm();
    for (size_t a = 0; a < sizeof settings / sizeof settings[0]; a++) {
        const setting_t *k = &settings[a];
        cur_alg = tsr_alg_name(k->alg);
        double t0 = MPI_Wtime();
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
            for (size_t j = 0; j < sizeof buckets / sizeof buckets[0]; j++) {
                /* small pieces: one bucket and 64 KiB ones */
                if (k->piece_kb && j != 0 && j != 4)
                    continue;
                /* tens of thousands of tiny buckets (more pieces than
                 * TAG_MOD tags): auto only, 4-byte buckets only (12-byte
                 * ones added nothing but a quarter of the test's time),
                 * and only up to 3 ranks (slow when 5 or 6 share two cores) */
                if (sizes[i] > 5000 && buckets[j] < 1024 && (k->alg != TSR_ALG_AUTO || size > 3 || buckets[j] != 4))
                    continue;
                if (size > 3 && sizes[i] > 5000 && j != 0 && j != 4)
                    continue;
                run_case(sizes[i], buckets[j], k);
            }
        if (getenv("TSR_TEST_VERBOSE") && rank == 0)
            printf("%s pieces %d KiB: %.3f s\n", cur_alg, k->piece_kb, MPI_Wtime() - t0);
    }

    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, "test_comm: %ld of %ld checks FAILED on %d ranks\n", total_fail, total_checks, size);
        else
            printf("test_comm: %ld checks passed on %d ranks\n", total_checks, size);
    }
    MPI_Finalize();
    return total_fail ? 1 : 0;
}
