/* SPDX-License-Identifier: BSD-3-Clause */
/* What the comm engine's multi-rank tests share (test_comm.c: the "mpi"
 * back-end, test_comm_shm.c: "shm"): the check counters, inputs every rank
 * can regenerate for every other, bitwise views of floats, and the staged
 * readiness backward gives. Define COMM_TEST_NAME (the program's name, for
 * messages) first. */
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
            fprintf(stderr, COMM_TEST_NAME "[rank %d of %d]: FAIL at %s:%d: ", rank, size, __FILE__, __LINE__);        \
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

/* Guard values on either side of a tested buffer. */
enum { GUARD = 4 };
static const float guard_value = -1234.5f;

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

#endif
