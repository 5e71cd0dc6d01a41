/* What the comm engine's multi-rank tests share (test_comm.c: the "mpi"
 * back-end, test_comm_shm.c: "shm"): the check counters, inputs that every
 * rank can regenerate for every other, bitwise comparison, guarded buffers,
 * the staged readiness backward gives, the four phases every engine runs
 * against a reference sum, the sub-communicator case and the closing tally.
 * Define COMM_TEST_NAME (the program's name, for messages) first. */
#ifndef TSR_TESTS_MPI_COMM_TEST_H
#define TSR_TESTS_MPI_COMM_TEST_H
#include "tessera/comm.h"
#include "tessera/error.h"

#include <math.h>
#include <stdint.h>
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
            fprintf(stderr, COMM_TEST_NAME "[rank %d of %d]: FAIL at %s:%d: ", rank, size, __FILE__, __LINE__);       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

static inline uint64_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Rank r's input element i for a given seed: random sign, 24 random
 * mantissa bits and an exponent spread over 2^-12..2^12, so the sum of a
 * few of them depends on the order they are added in. */
static inline float value(uint64_t seed, int r, size_t i)
{
    uint64_t h = mix(seed ^ mix((uint64_t)r * 0x632be59bd9b4e019ULL + 1) ^ mix((uint64_t)i + 0x12345));
    float mant = (float)((h >> 40) & 0xffffff) / (float)0x1000000 + 0.5f; /* [0.5, 1.5) */
    int ex = (int)((h >> 8) % 25) - 12;
    float v = ldexpf(mant, ex);
    return (h & 1) ? -v : v;
}

static inline void fill(float *buf, size_t n, uint64_t seed, int r)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = value(seed, r, i);
}

static inline uint32_t bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* Compares bitwise; reports the first mismatch only. tag names the case. */
static inline void check_equal(const float *got, const float *want, size_t n, const char *what, const char *tag)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (bits(got[i]) != bits(want[i])) {
            if (!bad)
                first = i;
            bad++;
        }
    }
    CHECK(bad == 0, "%s (%s): %zu of %zu elements differ; first at %zu: got %a (0x%08x), want %a (0x%08x)", what,
          tag, bad, n, first, bad ? got[first] : 0.0, bad ? bits(got[first]) : 0u, bad ? want[first] : 0.0,
          bad ? bits(want[first]) : 0u);
}

/* A buffer of n floats with GUARD guard values on either side; the data
 * starts at mem + GUARD. Aborts the job when out of memory. */
enum { GUARD = 4 };
static const float guard_value = -1234.5f;

static inline void *alloc_or_abort(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, COMM_TEST_NAME "[rank %d]: out of memory\n", rank);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    return p;
}

static inline float *guarded_alloc(size_t n)
{
    float *mem = alloc_or_abort((n + 2 * GUARD) * sizeof *mem);
    for (size_t i = 0; i < n + 2 * GUARD; i++)
        mem[i] = guard_value;
    return mem;
}

static inline void check_guards(const float *mem, size_t n, const char *tag)
{
    int ok = 1;
    for (int g = 0; g < GUARD; g++)
        ok &= bits(mem[g]) == bits(guard_value) && bits(mem[GUARD + n + (size_t)g]) == bits(guard_value);
    CHECK(ok, "memory outside buf[0..%zu) was written (%s)", n, tag);
}

/* Marks the buffer ready from the end in uneven steps, as backward does
 * layer by layer. The schedule differs from rank to rank on purpose: only
 * the bucket order must agree, not the timing. */
static inline int staged(tsr_comm_t *c, size_t n, uint64_t seed)
{
    uint64_t h = mix(seed ^ (uint64_t)(rank + 77));
    size_t off = n;
    int rc = tsr_comm_ready_from(c, n); /* nothing ready yet: starts nothing */
    while (!rc && off > 0) {
        h = mix(h);
        size_t step = 1 + (size_t)(h % (n / 5 + 1));
        off = step < off ? off - step : 0;
        rc = tsr_comm_ready_from(c, off);
        if (!rc && (h >> 20) % 3 == 0) /* the same offset twice changes nothing */
            rc = tsr_comm_ready_from(c, off);
    }
    return rc ? rc : tsr_comm_wait(c);
}

/* Element i of the sum every rank must get for seed, in the back-end's
 * order (arg: what the test's reference needs). */
typedef float (*comm_ref_fn)(uint64_t seed, size_t i, const void *arg);

/* The four phases on engine c over buf[n] (inside a guarded allocation):
 * 1. every bucket at once against the reference; 2. the same inputs again
 * give the same bits; 3. staged readiness, then wait; 4. three more steps
 * with new inputs on the same engine, staged and at once in turn. */
static inline void run_steps(tsr_comm_t *c, float *buf, size_t n, uint64_t seed, comm_ref_fn ref_fn,
                             const void *arg, const char *tag)
{
    float *ref = alloc_or_abort(n * sizeof *ref), *first = alloc_or_abort(n * sizeof *first);
    fill(buf, n, seed, rank);
    for (size_t i = 0; i < n; i++)
        ref[i] = ref_fn(seed, i, arg);
    int rc = tsr_comm_allreduce(c);
    CHECK(rc == TSR_OK, "allreduce (%s): %s", tag, tsr_last_error());
    check_equal(buf, ref, n, "allreduce", tag);
    check_guards(buf - GUARD, n, tag);
    CHECK(tsr_comm_last_wait_seconds(c) >= 0.0, "negative wait time (%s)", tag);
    memcpy(first, buf, n * sizeof *buf);

    fill(buf, n, seed, rank);
    rc = tsr_comm_allreduce(c);
    CHECK(rc == TSR_OK, "repeat (%s): %s", tag, tsr_last_error());
    check_equal(buf, first, n, "repeat run", tag);

    fill(buf, n, seed, rank);
    rc = staged(c, n, seed);
    CHECK(rc == TSR_OK, "staged (%s): %s", tag, tsr_last_error());
    check_equal(buf, ref, n, "staged", tag);

    for (int step = 0; step < 3; step++) {
        uint64_t s2 = seed * 31 + (uint64_t)step + 1;
        fill(buf, n, s2, rank);
        for (size_t i = 0; i < n; i++)
            ref[i] = ref_fn(s2, i, arg);
        rc = step % 2 ? tsr_comm_allreduce(c) : staged(c, n, s2);
        CHECK(rc == TSR_OK, "step %d (%s): %s", step, tag, tsr_last_error());
        check_equal(buf, ref, n, "reused engine", tag);
    }
    check_guards(buf - GUARD, n, tag);
    free(ref);
    free(first);
}

/* A communicator other than the world (even and odd world ranks): the
 * engine duplicates it and works on its ranks only. compare: the sums must
 * be in the sub-communicator's rank order (the back-end's order there). */
static inline void check_subcomm(const char *backend, int compare)
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
    int rc = tsr_comm_create(sub, backend, buf, N, 100 * sizeof(float), &c);
    CHECK(rc == TSR_OK, "create on a sub-communicator: %s", tsr_last_error());
    if (!rc) {
        rc = tsr_comm_allreduce(c);
        CHECK(rc == TSR_OK, "allreduce on a sub-communicator: %s", tsr_last_error());
        if (compare)
            check_equal(buf, want, N, "sub-communicator", "n=777");
    }
    tsr_comm_destroy(c);
    MPI_Comm_free(&sub);
}

/* Sums the checks over the ranks, prints the tally on rank 0 and returns
 * the exit status (0: every check passed on every rank). */
static inline int finish_checks(void)
{
    long total_fail = 0, total_checks = 0;
    MPI_Allreduce(&failures, &total_fail, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    MPI_Allreduce(&checks, &total_checks, 1, MPI_LONG, MPI_SUM, MPI_COMM_WORLD);
    if (rank == 0) {
        if (total_fail)
            fprintf(stderr, COMM_TEST_NAME ": %ld of %ld checks FAILED on %d ranks\n", total_fail, total_checks, size);
        else
            printf(COMM_TEST_NAME ": %ld checks passed on %d ranks\n", total_checks, size);
    }
    return total_fail ? 1 : 0;
}

#endif
