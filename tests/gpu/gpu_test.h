/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers for the GPU tests (tests/gpu/test_*.c): one device handle G,
 * random data, upload/download, comparisons that print one line each. */
#ifndef TSR_TESTS_GPU_TEST_H
#define TSR_TESTS_GPU_TEST_H
#include "compute/gpu_train.h"
#include "tessera/error.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tsr_gpu_t *G;
static int nfail, npass;
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

#define CK(call)                                                                                                       \
    do {                                                                                                               \
        int rc_ = (call);                                                                                              \
        if (rc_ != TSR_OK) {                                                                                           \
            fprintf(stderr, "FAIL %s:%d: %s = %d: %s\n", __FILE__, __LINE__, #call, rc_, tsr_last_error());            \
            exit(1);                                                                                                   \
        }                                                                                                              \
    } while (0)

static inline float frand(float lo, float hi)
{
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (float)((rng_state >> 40) * (1.0 / 16777216.0));
}

static inline float *hrand(size_t n, float lo, float hi)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    for (size_t i = 0; i < n; i++)
        h[i] = frand(lo, hi);
    return h;
}

static inline void *dup_mem(const void *h, size_t bytes)
{
    void *c = malloc(bytes ? bytes : 1);
    memcpy(c, h, bytes);
    return c;
}

static inline void *dev(const void *h, size_t bytes)
{
    void *d = NULL;
    CK(tsr_gpu_alloc(G, bytes, &d));
    if (h)
        CK(tsr_gpu_upload(G, d, h, bytes));
    return d;
}

static inline void *host(const void *d, size_t bytes)
{
    void *h = malloc(bytes ? bytes : 1);
    CK(tsr_gpu_download(G, h, d, bytes));
    return h;
}

static inline void report(const char *what, double err, double tol)
{
    int ok = err <= tol;
    printf("%s: %s (max error %.3g, tolerance %.3g)\n", ok ? "ok" : "FAIL", what, err, tol);
    ok ? npass++ : nfail++;
}

/* Largest |got - want| / scale. */
static inline void cmp_scaled(const char *what, const float *got, const float *want, size_t n, double scale, double tol)
{
    double err = 0.0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / scale;
        err = e > err || isnan(e) ? e : err;
    }
    report(what, err, tol);
}

/* Relative to the larger of 1 and max |want|. */
static inline void cmp(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double scale = 1.0;
    for (size_t i = 0; i < n; i++)
        scale = fabs(want[i]) > scale ? fabs(want[i]) : scale;
    cmp_scaled(what, got, want, n, scale, tol);
}

static inline void cmp_dev(const char *what, const float *d, const float *want, size_t n, double tol)
{
    float *h = host(d, n * sizeof *h);
    cmp(what, h, want, n, tol);
    free(h);
}

static inline void cmp_scalar(const char *what, double got, double want, double tol)
{
    report(what, fabs(got - want) / (fabs(want) > 1.0 ? fabs(want) : 1.0), tol);
}

static inline void check(const char *what, int cond)
{
    printf("%s: %s\n", cond ? "ok" : "FAIL", what);
    cond ? npass++ : nfail++;
}

/* Creates G on device 0, or exits 77 (skipped) without a device. */
static inline void gpu_test_start(void)
{
    int n = tsr_gpu_count();
    if (n == 0) {
        printf("SKIP: no CUDA device (tsr_gpu_count() = 0): %s\n", tsr_last_error());
        exit(77);
    }
    CK(tsr_gpu_create(0, &G));
    char bus[32];
    CK(tsr_gpu_pci_busid(0, bus, sizeof bus));
    printf("device 0 of %d: %s at %s\n", n, tsr_gpu_name(G), bus);
}

static inline int gpu_test_end(void)
{
    CK(tsr_gpu_sync(G));
    tsr_gpu_destroy(G);
    printf("%d passed, %d failed\n", npass, nfail);
    return nfail ? 1 : 0;
}
#endif
