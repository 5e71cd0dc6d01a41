/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the CPU compute kernels (src/compute/cpu.c) against
 * reference loops and formulas in double precision: GEMM (every transpose,
 * alpha and beta, leading dimensions, empty products; through each library
 * of runtime.gemm this build has) against the naive triple loop; bias
 * and its gradient; each activation, its derivative from the output and
 * from the input (against the formula and central differences), the fused
 * bias+activation passes against the unfused ones; softmax; column sums
 * and the per-column affine map; activation names. Sizes are odd so the
 * vectorised loops' tails run too. Convolution and pooling are in
 * test_compute_conv.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "tessera/compute.h"
#include "tessera/error.h"
#include "tessera/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static float *randv(size_t n, uint64_t seed, double lo, double hi)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    tsr_rng_t r;
    tsr_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * tsr_rng_uniform(&r));
    return v;
}

/* |got - want| <= tol * max(1, |want|), naming the kernel and the index. */
static void near(const char *what, size_t i, double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol * fmax(1.0, fabs(want))))
        fail_msg("%s[%zu]: got %.9g, want %.9g", what, i, got, want);
}

/* ---- GEMM ---- */

/* op(X)[r][c] of a row-major matrix stored rows x cols (before op). */
static double at(const float *x, int trans, size_t ld, size_t r, size_t c)
{
    return trans ? x[c * ld + r] : x[r * ld + c];
}

static void check_gemm(void)
{
    static const size_t dims[][3] = {{1, 1, 1},   {3, 5, 7},    {17, 9, 33}, {64, 31, 1},
                                     {1, 40, 65}, {33, 33, 33}, {4, 3, 0},   {0, 3, 2}};
    static const float ab[][2] = {{1, 0}, {0.5f, 1}, {-2, 0.25f}};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (size_t s = 0; s < sizeof ab / sizeof ab[0]; s++) {
                    size_t m = dims[d][0], n = dims[d][1], k = dims[d][2];
                    float alpha = ab[s][0], beta = ab[s][1];
                    float *a = randv(m * k, 1 + d, -1, 1), *b = randv(k * n, 2 + d, -1, 1);
                    float *c = randv(m * n, 3 + d, -1, 1), *c0 = malloc(m * n * sizeof *c0);
                    memcpy(c0, c, m * n * sizeof *c);
                    tsr_compute_gemm(ta, tb, m, n, k, alpha, a, b, beta, c);
                    for (size_t i = 0; i < m; i++)
                        for (size_t j = 0; j < n; j++) {
                            double acc = 0, mag = 0;
                            for (size_t p = 0; p < k; p++) {
                                double x = at(a, ta, ta ? m : k, i, p) * at(b, tb, tb ? k : n, p, j);
                                acc += x;
                                mag += fabs(x);
                            }
                            double want = alpha * acc + beta * c0[i * n + j];
                            if (fabs(c[i * n + j] - want) > 1e-5 * (fabs(alpha) * mag + fabs(beta) + 1))
                                fail_msg("gemm %zux%zux%zu ta=%d tb=%d alpha=%g beta=%g: c[%zu][%zu] = %.9g, want %.9g",
                                         m, n, k, ta, tb, (double)alpha, (double)beta, i, j, (double)c[i * n + j],
                                         want);
                        }
                    free(a), free(b), free(c), free(c0);
                }
}

/* A block of bigger matrices: only the m x n block of C changes. */
static void check_gemm_ld(void)
{
    const size_t m = 5, n = 7, k = 6, lda = 11, ldb = 9, ldc = 13;
    float *a = randv(m * lda, 4, -1, 1), *b = randv(k * ldb, 5, -1, 1), *c = randv(m * ldc, 6, -1, 1);
    float *c0 = malloc(m * ldc * sizeof *c0);
    memcpy(c0, c, m * ldc * sizeof *c);
    tsr_compute_gemm_ld(0, 0, m, n, k, 1.0f, a, lda, b, ldb, 0.5f, c, ldc);
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < ldc; j++) {
            if (j >= n) {
                assert_memory_equal(&c[i * ldc + j], &c0[i * ldc + j], sizeof *c);
                continue;
            }
            double acc = 0;
            for (size_t p = 0; p < k; p++)
                acc += (double)a[i * lda + p] * b[p * ldb + j];
            near("gemm_ld", i * ldc + j, c[i * ldc + j], acc + 0.5 * c0[i * ldc + j], 1e-5);
        }
    free(a), free(b), free(c), free(c0);
}

/* Every library this build has (OpenBLAS always); auto is oneDNN where it
 * is built in. Each is bit-reproducible: the same product twice is equal. */
static void each_gemm(void (*check)(void))
{
    tsr_gemm_t was = tsr_compute_get_gemm();
    assert_true(tsr_compute_gemm_available(TSR_GEMM_OPENBLAS));
    for (int g = TSR_GEMM_ONEDNN; g <= TSR_GEMM_OPENBLAS; g++) {
        if (!tsr_compute_gemm_available((tsr_gemm_t)g)) {
            assert_int_equal(tsr_compute_set_gemm((tsr_gemm_t)g), TSR_ENOTSUP);
            continue;
        }
        assert_int_equal(tsr_compute_set_gemm((tsr_gemm_t)g), 0);
        check();
        size_t m = 40, n = 70, k = 300;
        float *a = randv(m * k, 7, -1, 1), *b = randv(k * n, 8, -1, 1);
        float *c1 = calloc(m * n, sizeof *c1), *c2 = calloc(m * n, sizeof *c2);
        tsr_compute_gemm(0, 1, m, n, k, 1.0f, a, b, 0.0f, c1);
        tsr_compute_gemm(0, 1, m, n, k, 1.0f, a, b, 0.0f, c2);
        assert_memory_equal(c1, c2, m * n * sizeof *c1);
        free(a), free(b), free(c1), free(c2);
    }
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_AUTO), 0);
    assert_int_equal(tsr_compute_get_gemm(),
                     tsr_compute_gemm_available(TSR_GEMM_ONEDNN) ? TSR_GEMM_ONEDNN : TSR_GEMM_OPENBLAS);
    char what[96];
    tsr_compute_gemm_describe(what, sizeof what);
    assert_non_null(strstr(what, tsr_compute_get_gemm() == TSR_GEMM_ONEDNN ? "oneDNN" : "OpenBLAS"));
    assert_int_equal(tsr_compute_set_gemm(was), 0);
}

static void test_gemm(void **state)
{
    (void)state;
    each_gemm(check_gemm);
}

static void test_gemm_ld(void **state)
{
    (void)state;
    each_gemm(check_gemm_ld);
}

/* ---- bias and activations ---- */

static void test_bias(void **state)
{
    (void)state;
    const size_t rows = 7, n = 19;
    float *y = randv(rows * n, 7, -1, 1), *bias = randv(n, 8, -1, 1), *y0 = malloc(rows * n * sizeof *y0);
    float db[19];
    memcpy(y0, y, rows * n * sizeof *y);
    tsr_compute_add_bias(y, bias, rows, n);
    for (size_t i = 0; i < rows * n; i++)
        assert_true(y[i] == y0[i] + bias[i % n]);
    memset(db, 0x7f, sizeof db); /* overwritten, not added to */
    tsr_compute_bias_grad(y0, rows, n, db);
    for (size_t j = 0; j < n; j++) {
        double s = 0;
        for (size_t r = 0; r < rows; r++)
            s += y0[r * n + j];
        near("bias_grad", j, db[j], s, 1e-6);
    }
    free(y), free(bias), free(y0);
}

static double ref_act(tsr_act_t act, double x)
{
    switch (act) {
    case TSR_ACT_RELU: return x > 0 ? x : 0;
    case TSR_ACT_TANH: return tanh(x);
    case TSR_ACT_SIGMOID: return 1 / (1 + exp(-x));
    case TSR_ACT_GELU: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case TSR_ACT_SILU: return x / (1 + exp(-x));
    default: return x;
    }
}

static double ref_grad(tsr_act_t act, double x)
{
    double s = 1 / (1 + exp(-x)), t = tanh(x);
    switch (act) {
    case TSR_ACT_RELU: return x > 0 ? 1 : 0;
    case TSR_ACT_TANH: return 1 - t * t;
    case TSR_ACT_SIGMOID: return s * (1 - s);
    case TSR_ACT_GELU: return 0.5 * (1 + erf(x / sqrt(2.0))) + x * exp(-0.5 * x * x) / sqrt(2 * M_PI);
    case TSR_ACT_SILU: return s * (1 + x * (1 - s));
    default: return 1;
    }
}

enum { LEN = 1003 };

static void test_activations(void **state)
{
    (void)state;
    float *x = randv(LEN, 9, -6, 6), *dy = randv(LEN, 10, -1, 1);
    x[0] = 0, x[1] = -0.0f, x[2] = 30, x[3] = -30; /* the kinks and saturation */
    float y[LEN], y2[LEN], d[LEN], dx[LEN];
    for (int a = 0; a < TSR_ACT_COUNT; a++) {
        tsr_act_t act = (tsr_act_t)a;
        const char *name = tsr_act_name(act);
        memcpy(y, x, sizeof y);
        tsr_compute_act(act, y, LEN);
        tsr_compute_act_x(act, x, y2, LEN);
        for (size_t i = 0; i < LEN; i++) {
            near(name, i, y[i], ref_act(act, x[i]), 2e-6);
            assert_memory_equal(&y[i], &y2[i], sizeof *y); /* in place and out of place agree */
        }
        /* From the input: the formula, and central differences away from relu's kink. */
        tsr_compute_act_x_backward(act, x, dy, dx, LEN);
        for (size_t i = 0; i < LEN; i++) {
            near(name, i, dx[i], dy[i] * ref_grad(act, x[i]), 2e-5);
            double h = 1e-4;
            if (fabs(x[i]) > 1e-2) {
                double fd = (ref_act(act, x[i] + h) - ref_act(act, x[i] - h)) / (2 * h);
                near(name, i, dx[i], dy[i] * fd, 1e-4);
            }
        }
        /* From the output, for the kinds that take it so. */
        if (act == TSR_ACT_RELU || act == TSR_ACT_TANH || act == TSR_ACT_SIGMOID) {
            memcpy(d, dy, sizeof d);
            tsr_compute_act_backward(act, y, d, LEN);
            for (size_t i = 0; i < LEN; i++)
                near(name, i, d[i], dy[i] * ref_grad(act, x[i]), 2e-5);
        }
    }
    free(x), free(dy);
}

/* bias_act = add_bias then act; act_bias_grad = act_backward then bias_grad. */
static void test_fused(void **state)
{
    (void)state;
    const size_t rows = 5, n = 21;
    static const tsr_act_t acts[] = {TSR_ACT_NONE, TSR_ACT_RELU, TSR_ACT_TANH, TSR_ACT_SIGMOID};
    float *x = randv(rows * n, 11, -3, 3), *bias = randv(n, 12, -1, 1), *dy = randv(rows * n, 13, -1, 1);
    float a[5 * 21], b[5 * 21], da[5 * 21], db_[5 * 21], ga[21], gb[21];
    for (size_t t = 0; t < sizeof acts / sizeof acts[0]; t++) {
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            memcpy(a, x, sizeof a);
            memcpy(b, x, sizeof b);
            tsr_compute_bias_act(a, with_bias ? bias : NULL, rows, n, acts[t]);
            if (with_bias)
                tsr_compute_add_bias(b, bias, rows, n);
            tsr_compute_act(acts[t], b, rows * n);
            assert_memory_equal(a, b, sizeof a);
        }
        memcpy(da, dy, sizeof da);
        memcpy(db_, dy, sizeof db_);
        tsr_compute_act_bias_grad(acts[t], a, da, rows, n, ga);
        tsr_compute_act_backward(acts[t], a, db_, rows * n);
        tsr_compute_bias_grad(db_, rows, n, gb);
        assert_memory_equal(da, db_, sizeof da);
        assert_memory_equal(ga, gb, sizeof ga);                   /* the same sums in the same order */
        tsr_compute_act_bias_grad(acts[t], a, da, rows, n, NULL); /* no bias gradient asked */
    }
    free(x), free(bias), free(dy);
}

/* ReLU's backward as a select: y > 0 keeps dy bit for bit (NaN, Inf and
 * -0 gradients too), y <= 0, -0 or NaN gives +0, in the 8-wide blocks and
 * the remainder, alone and fused with the bias gradient. */
static void test_relu_backward_select(void **state)
{
    (void)state;
    enum { N = 19 };
    const float inf = INFINITY, nan = NAN;
    const float y[N] = {1, -1, 0, -0.0f, nan, inf, -inf, 1e-38f, -1e-38f, 2, 3, -3, 0, 5, nan, 1, -0.0f, 7, 1e-45f};
    const float g[N] = {nan, 2, 3, 4, 5, -0.0f, 6, inf, 7, -inf, -0.0f, 8, 9, 0.5f, 1, -2, 3, nan, -4};
    float d[N], e[N], db[N];
    memcpy(d, g, sizeof d);
    tsr_compute_act_backward(TSR_ACT_RELU, y, d, N);
    for (size_t i = 0; i < N; i++) {
        float want = y[i] > 0.0f ? g[i] : 0.0f;
        assert_memory_equal(&d[i], &want, sizeof want);
    }
    memcpy(e, g, sizeof e);
    tsr_compute_act_bias_grad(TSR_ACT_RELU, y, e, 1, N, db);
    assert_memory_equal(e, d, sizeof e);
    for (size_t i = 0; i < N; i++) {
        float want = 0.0f + d[i];
        assert_memory_equal(&db[i], &want, sizeof want);
    }
}

static void test_softmax(void **state)
{
    (void)state;
    const size_t rows = 6, n = 11;
    float *z = randv(rows * n, 14, -8, 8), p[6 * 11];
    for (size_t j = 0; j < n; j++)
        z[5 * n + j] = 1000.0f + (float)j; /* large logits: no overflow */
    tsr_compute_softmax(z, p, rows, n);
    for (size_t r = 0; r < rows; r++) {
        double mx = z[r * n], s = 0, total = 0;
        for (size_t j = 1; j < n; j++)
            mx = fmax(mx, z[r * n + j]);
        for (size_t j = 0; j < n; j++)
            s += exp(z[r * n + j] - mx);
        for (size_t j = 0; j < n; j++) {
            near("softmax", r * n + j, p[r * n + j], exp(z[r * n + j] - mx) / s, 1e-6);
            total += p[r * n + j];
        }
        near("softmax row sum", r, total, 1.0, 1e-5);
    }
    tsr_compute_softmax(z, z, rows, n); /* in place */
    assert_memory_equal(z, p, sizeof p);
    free(z);
}

/* ---- normalisation helpers ---- */

/* Batch norm's backward sums (16, 32 and 64 columns in registers, others
 * by rows) and the same after a tiling maxpool, read from the pooled
 * gradient (tsr_compute_bn_grad_*_pooled): the bits of plain row-by-row
 * double sums over the maxpool's full-size gradient, and dx the bits of
 * tsr_compute_bn_grad_input on it. */
static void test_bn_grad_sums_bits(void **state)
{
    (void)state;
    static const size_t widths[] = {13, 16, 32, 64};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        const size_t C = widths[wi], S = 3, H = 6, W = 4, R = S * H * W;
        const tsr_conv_geom_t g = {(int)H, (int)W, (int)C, 2, 2, 0, 1, (int)H / 2, (int)W / 2};
        float *x = randv(R * C, 21 + (unsigned)wi, -3, 3), *mean = randv(C, 22, -1, 1);
        float *y = randv(R * C, 23, -1, 1), *pooled = malloc(R / 4 * C * sizeof(float));
        float *dz = malloc(R * C * sizeof(float)), *dx1 = malloc(R * C * sizeof(float));
        float *dx2 = malloc(R * C * sizeof(float)), *a = randv(C, 24, 0.5, 2), *b = randv(C, 25, -1, 1);
        float *k = randv(C, 26, -1, 1);
        int32_t *arg = malloc(R / 4 * C * sizeof(int32_t));
        double s1[64], q1[64];
        assert_non_null(pooled && dz && dx1 && dx2 && arg);
        tsr_compute_maxpool_relu(y, S, &g, pooled, arg); /* some windows pass nothing (argmax -1) */
        float *pdy = randv(R / 4 * C, 27, -2, 2);
        tsr_compute_maxpool_backward(pdy, arg, S, &g, dz);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 0)
                tsr_compute_bn_grad_sums(x, dz, R, C, mean, s1, q1);
            else
                tsr_compute_bn_grad_sums_pooled(x, pdy, arg, S, &g, mean, s1, q1);
            for (size_t j = 0; j < C; j++) {
                double s = 0, q = 0;
                for (size_t r = 0; r < R; r++) {
                    s += (double)dz[r * C + j];
                    q += (double)dz[r * C + j] * ((double)x[r * C + j] - (double)mean[j]);
                }
                if (s1[j] != s || q1[j] != q)
                    fail_msg("bn grad sums (%s), %zu columns, column %zu: %.17g %.17g, want %.17g %.17g",
                             pass ? "pooled" : "full", C, j, s1[j], q1[j], s, q);
            }
        }
        tsr_compute_bn_grad_input(x, dz, R, C, mean, a, b, k, dx1);
        tsr_compute_bn_grad_input_pooled(x, pdy, arg, S, &g, mean, a, b, k, dx2);
        assert_memory_equal(dx1, dx2, R * C * sizeof(float));
        /* the ReLU's mask in place, then the same sums */
        float *dm = malloc(R * C * sizeof(float));
        memcpy(dm, dz, R * C * sizeof(float));
        tsr_compute_bn_grad_sums_relu(x, dm, y, R, C, mean, s1, q1);
        for (size_t j = 0; j < C; j++) {
            double s = 0, q = 0;
            for (size_t r = 0; r < R; r++) {
                double d = y[r * C + j] > 0.0f ? (double)dz[r * C + j] : 0.0;
                s += d;
                q += d * ((double)x[r * C + j] - (double)mean[j]);
            }
            if (s1[j] != s || q1[j] != q)
                fail_msg("bn grad sums (relu), %zu columns, column %zu", C, j);
        }
        free(x), free(mean), free(y), free(pooled), free(dz), free(dx1), free(dx2), free(a), free(b), free(k);
        free(arg), free(pdy), free(dm);
    }
}

/* Batch norm's normalisation, ReLU and a tiling maxpool in one pass: the
 * bits of tsr_compute_affine_cols_relu then tsr_compute_maxpool_relu, y
 * and argmax, for the 2x2 path and the general one (3x3), 13 and 32
 * columns. */
static void test_affine_relu_maxpool_bits(void **state)
{
    (void)state;
    for (int k = 2; k <= 3; k++)
        for (size_t C = 13; C <= 32; C += 19) {
            const size_t S = 2, H = (size_t)(2 * k), W = (size_t)(3 * k), R = S * H * W, P = S * 2 * 3 * C;
            const tsr_conv_geom_t g = {(int)H, (int)W, (int)C, k, k, 0, 1, 2, 3};
            float *x = randv(R * C, 31 + (unsigned)k, -3, 3), *mean = randv(C, 32, -1, 1);
            float *scale = randv(C, 33, 0.5, 2), *shift = randv(C, 34, -1, 1);
            float *z = malloc(R * C * sizeof(float)), *y1 = malloc(P * sizeof(float)), *y2 = malloc(P * sizeof(float));
            int32_t *a1 = malloc(P * sizeof(int32_t)), *a2 = malloc(P * sizeof(int32_t));
            assert_non_null(z && y1 && y2 && a1 && a2);
            tsr_compute_affine_cols_relu(x, R, C, mean, scale, shift, z);
            tsr_compute_maxpool_relu(z, S, &g, y1, a1);
            tsr_compute_affine_relu_maxpool(x, S, &g, mean, scale, shift, y2, a2);
            assert_memory_equal(y1, y2, P * sizeof(float));
            assert_memory_equal(a1, a2, P * sizeof(int32_t));
            free(x), free(mean), free(scale), free(shift), free(z), free(y1), free(y2), free(a1), free(a2);
        }
}

static void test_colsums_affine(void **state)
{
    (void)state;
    const size_t rows = 9, n = 13;
    float *x = randv(rows * n, 15, -2, 2), *mean = randv(n, 16, -1, 1), *scale = randv(n, 17, 0.5, 2);
    float *shift = randv(n, 18, -1, 1), y[9 * 13];
    double sum[13], sumsq[13], center[13];
    for (size_t j = 0; j < n; j++)
        center[j] = 0.25 * (double)j;
    for (int centred = 0; centred < 2; centred++) {
        tsr_compute_colsums(x, rows, n, centred ? center : NULL, sum, sumsq);
        for (size_t j = 0; j < n; j++) {
            double s = 0, q = 0, c = centred ? center[j] : 0;
            for (size_t r = 0; r < rows; r++) {
                s += x[r * n + j];
                q += (x[r * n + j] - c) * (x[r * n + j] - c);
            }
            near("colsums sum", j, sum[j], s, 1e-12);
            near("colsums sumsq", j, sumsq[j], q, 1e-12);
        }
    }
    /* 16, 32 and 64 columns take the kernel that holds the sums in
     * registers: the same bits as row-by-row sums. */
    for (size_t w = 16; w <= 64; w *= 2) {
        const size_t R = 37;
        float *xw = randv(R * w, 19, -3, 3);
        double s2[64], q2[64], cw[64];
        for (size_t j = 0; j < w; j++)
            cw[j] = 0.1 * (double)j - 1;
        for (int centred = 0; centred < 2; centred++) {
            tsr_compute_colsums(xw, R, w, centred ? cw : NULL, s2, q2);
            for (size_t j = 0; j < w; j++) {
                double s = 0, q = 0, c = centred ? cw[j] : 0;
                for (size_t r = 0; r < R; r++) {
                    double v = xw[r * w + j], d = centred ? v - c : v;
                    s += v;
                    q += d * d;
                }
                if (s2[j] != s || q2[j] != q)
                    fail_msg("colsums of %zu columns (centred %d), column %zu: %.17g %.17g, want %.17g %.17g", w,
                             centred, j, s2[j], q2[j], s, q);
            }
        }
        free(xw);
    }
    tsr_compute_colsums(x, rows, n, NULL, sum, NULL);
    tsr_compute_affine_cols(x, rows, n, mean, scale, shift, y);
    for (size_t i = 0; i < rows * n; i++)
        near("affine_cols", i, y[i], ((double)x[i] - mean[i % n]) * scale[i % n] + shift[i % n], 1e-6);
    /* With the ReLU fused: the same values, clamped; and the gradient sums
     * after it equal the plain sums of the ReLU-masked dy, bit for bit. */
    float yr[9 * 13], dy[9 * 13], dm[9 * 13];
    tsr_compute_affine_cols_relu(x, rows, n, mean, scale, shift, yr);
    for (size_t i = 0; i < rows * n; i++)
        if (yr[i] != (y[i] > 0 ? y[i] : 0.0f))
            fail_msg("affine_cols_relu[%zu] = %.9g, want max(0, %.9g)", i, (double)yr[i], (double)y[i]);
    for (size_t i = 0; i < rows * n; i++)
        dy[i] = dm[i] = (float)(i % 7) - 3.0f;
    for (size_t i = 0; i < rows * n; i++)
        dm[i] = yr[i] > 0 ? dm[i] : 0.0f;
    double sdy[13], sdx[13], wdy[13], wdx[13];
    tsr_compute_bn_grad_sums_relu(x, dy, yr, rows, n, mean, sdy, sdx);
    tsr_compute_bn_grad_sums(x, dm, rows, n, mean, wdy, wdx);
    assert_memory_equal(dy, dm, sizeof dy);
    assert_memory_equal(sdy, wdy, sizeof sdy);
    assert_memory_equal(sdx, wdx, sizeof sdx);
    free(x), free(mean), free(scale), free(shift);
}

static void test_act_names(void **state)
{
    (void)state;
    for (int a = 0; a < TSR_ACT_COUNT; a++)
        assert_int_equal(tsr_act_parse(tsr_act_name((tsr_act_t)a)), a);
    assert_string_equal(tsr_act_name(TSR_ACT_GELU), "gelu");
    assert_string_equal(tsr_act_name((tsr_act_t)TSR_ACT_COUNT), "unknown");
    assert_int_equal(tsr_act_parse("swish"), -1);
    assert_int_equal(tsr_act_parse("RELU"), -1);
    assert_int_equal(tsr_act_parse(""), -1);
}

/* Dropout's branch-free mask gives the bits of the rule it replaced (and
 * of the GPU kernel): in * scale where kept, +0 where dropped, NaN and
 * negative inputs included; the accumulation and act_bias_grad_add's sums
 * likewise match their plain loops. */
static void test_dropout_bits(void **state)
{
    (void)state;
    enum { N = 1031 };
    float in[N], got[N], want[N];
    for (int i = 0; i < N; i++)
        in[i] = i % 97 == 0 ? NAN : (float)(i % 13) - 6.5f;
    uint32_t thrs[] = {0u, 1073741824u, 3221225472u, 4294967295u};
    for (int t = 0; t < 4; t++) {
        uint64_t key = tsr_rng_key(7, (uint64_t)t, 3, 0x5001);
        float scale = 1.0f / 0.75f;
        for (int i = 0; i < N; i++)
            want[i] = (uint32_t)(tsr_rng_counter(key, (uint64_t)i) >> 32) >= thrs[t] ? in[i] * scale : 0.0f;
        tsr_compute_dropout(key, thrs[t], scale, in, got, N);
        assert_memory_equal(got, want, sizeof got);
    }
}

static void test_act_bias_grad_add(void **state)
{
    (void)state;
    enum { R = 5, C = 19 };
    float y[R * C], dy[R * C], dy2[R * C], db[C], want[C];
    for (int i = 0; i < R * C; i++) {
        y[i] = (float)((i * 7) % 11) - 5.0f;
        dy[i] = dy2[i] = (float)((i * 5) % 13) * 0.37f - 2.0f;
    }
    for (int j = 0; j < C; j++)
        db[j] = want[j] = 0.25f * (float)j;
    tsr_compute_act_bias_grad_add(TSR_ACT_RELU, y, dy, R, C, db);
    for (int r = 0; r < R; r++)
        for (int j = 0; j < C; j++) {
            float g = y[r * C + j] > 0.0f ? dy2[r * C + j] : 0.0f;
            assert_true(dy[r * C + j] == g);
            want[j] += g;
        }
    assert_memory_equal(db, want, sizeof db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_gemm_ld),
        cmocka_unit_test(test_bias),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_fused),
        cmocka_unit_test(test_relu_backward_select),
        cmocka_unit_test(test_softmax),
        cmocka_unit_test(test_colsums_affine),
        cmocka_unit_test(test_bn_grad_sums_bits),
        cmocka_unit_test(test_affine_relu_maxpool_bits),
        cmocka_unit_test(test_act_names),
        cmocka_unit_test(test_dropout_bits),
        cmocka_unit_test(test_act_bias_grad_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
