/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the convolutions by oneDNN's direct kernels
 * (src/compute/conv_dnnl.c) against sums in double: forward with bias,
 * with and without a fused ReLU, the weight gradient and the input
 * gradient, over strides, padding wider than the kernel, dilation, groups
 * and depthwise; the ResNet's shapes must not be declined; a thread whose
 * GEMM is OpenBLAS is declined and nothing is written; a cache that
 * overflows drops entries and stays right. Without oneDNN in the build,
 * only the declining is checked. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conv_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* h, w, c, k, stride, pad, dilation, groups, out channels, must be taken. */
static const int shapes[][10] = {
    {14, 14, 32, 3, 1, 1, 1, 1, 32, 1}, /* the ResNet's blocks */
    {7, 7, 64, 3, 1, 1, 1, 1, 64, 1},   {14, 14, 32, 3, 1, 1, 1, 1, 64, 1}, {9, 9, 16, 3, 2, 1, 1, 1, 24, 0},
    {9, 9, 8, 3, 1, 2, 2, 1, 16, 0},    {8, 8, 16, 3, 1, 1, 1, 2, 32, 0},   {8, 8, 16, 3, 1, 1, 1, 16, 16, 0},
    {6, 7, 3, 3, 1, 1, 1, 1, 5, 0},     {5, 6, 3, 3, 2, 3, 1, 1, 4, 0},
};

typedef struct ref {
    double *y, *gw, *dx;
} ref_t;

/* The convolution and its gradients as sums in double. */
static ref_t reference(const float *x, const float *w, const float *b, const float *dy, size_t n,
                       const tsr_conv_geom_t *g, int groups, size_t M)
{
    size_t cg = (size_t)g->c / (size_t)groups, mg = M / (size_t)groups, kk = (size_t)g->k * (size_t)g->k * cg;
    size_t in = n * (size_t)g->h * (size_t)g->w * (size_t)g->c, out = n * (size_t)g->oh * (size_t)g->ow * M;
    ref_t r = {calloc(out, sizeof(double)), calloc(M * kk, sizeof(double)), calloc(in, sizeof(double))};
    assert_true(r.y && r.gw && r.dx);
    for (size_t s = 0; s < n; s++)
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++)
                for (size_t o = 0; o < M; o++) {
                    size_t at = ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * M + o, grp = o / mg;
                    double acc = b[o];
                    for (int kh = 0; kh < g->k; kh++)
                        for (int kw = 0; kw < g->k; kw++) {
                            int ih = oh * g->stride - g->pad + kh * g->dil, iw = ow * g->stride - g->pad + kw * g->dil;
                            if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                                continue;
                            for (size_t c = 0; c < cg; c++) {
                                size_t xi =
                                    ((s * (size_t)g->h + (size_t)ih) * (size_t)g->w + (size_t)iw) * (size_t)g->c +
                                    grp * cg + c;
                                size_t wi = o * kk + ((size_t)kh * (size_t)g->k + (size_t)kw) * cg + c;
                                acc += (double)x[xi] * w[wi];
                                r.gw[wi] += (double)dy[at] * x[xi];
                                r.dx[xi] += (double)dy[at] * w[wi];
                            }
                        }
                    r.y[at] = acc;
                }
    return r;
}

static void near(const char *what, size_t t, const float *got, const double *want, size_t len, int relu)
{
    for (size_t i = 0; i < len; i++) {
        double v = relu && want[i] < 0 ? 0.0 : want[i];
        if (fabs(got[i] - v) > 2e-5 * fmax(1, fabs(v)))
            fail_msg("shape %zu %s[%zu] = %.9g, want %.9g", t, what, i, (double)got[i], v);
    }
}

static void test_conv_dnnl_against_sums(void **state)
{
    (void)state;
    if (!tsr_compute_gemm_available(TSR_GEMM_ONEDNN))
        skip();
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_ONEDNN), 0);
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const int *v = shapes[t];
        tsr_conv_geom_t g = geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        int groups = v[7];
        size_t M = (size_t)v[8], n = 2 + t % 2, kk = (size_t)g.k * (size_t)g.k * (size_t)(g.c / groups);
        size_t in = n * (size_t)g.h * (size_t)g.w * (size_t)g.c, out = n * (size_t)g.oh * (size_t)g.ow * M;
        float *x = randv(in, 10 + t), *w = randv(M * kk, 30 + t), *b = randv(M, 50 + t), *dy = randv(out, 70 + t);
        float *y = malloc(out * sizeof *y), *gw = malloc(M * kk * sizeof *gw), *dx = malloc(in * sizeof *dx);
        ref_t r = reference(x, w, b, dy, n, &g, groups, M);
        for (int relu = 0; relu < 2; relu++) {
            tsr_act_t act = relu ? TSR_ACT_RELU : TSR_ACT_NONE;
            int rc = tsr_compute_conv_dnnl(x, n, &g, groups, M, w, b, act, y);
            assert_true(rc == 0 || rc == 1);
            if (v[9] && rc)
                fail_msg("shape %zu (a ResNet conv) was declined: oneDNN has no fast kernel for it", t);
            if (rc)
                continue;
            near("y", t, y, r.y, out, relu);
            /* dy as it is (no ReLU derivative): the gradients are linear in it. */
            assert_int_equal(tsr_compute_conv_dnnl_backward(x, dy, n, &g, groups, M, act, w, gw, dx), 0);
            near("gw", t, gw, r.gw, M * kk, 0);
            near("dx", t, dx, r.dx, in, 0);
            memset(gw, 0, M * kk * sizeof *gw);
            assert_int_equal(tsr_compute_conv_dnnl_backward(x, dy, n, &g, groups, M, act, w, gw, NULL), 0);
            near("gw (no dx)", t, gw, r.gw, M * kk, 0);
        }
        free(r.y), free(r.gw), free(r.dx);
        free(x), free(w), free(b), free(dy), free(y), free(gw), free(dx);
    }
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_OPENBLAS), 0);
}

/* OpenBLAS as this thread's GEMM (inference's choice), or no oneDNN in
 * the build: declined, y untouched. */
static void test_conv_dnnl_declines(void **state)
{
    (void)state;
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_OPENBLAS), 0);
    tsr_conv_geom_t g = geom(8, 8, 16, 3, 1, 1, 1);
    size_t n = 2, M = 16, out = n * 64 * M;
    float *x = randv(n * 64 * 16, 1), *w = randv(M * 9 * 16, 2), *b = randv(M, 3), *y = malloc(out * sizeof *y);
    for (size_t i = 0; i < out; i++)
        y[i] = 7.0f;
    assert_int_equal(tsr_compute_conv_dnnl(x, n, &g, 1, M, w, b, TSR_ACT_NONE, y), 1);
    assert_int_equal(tsr_compute_conv_dnnl_backward(x, y, n, &g, 1, M, TSR_ACT_NONE, w, w, NULL), 1);
    if (tsr_compute_gemm_available(TSR_GEMM_ONEDNN)) { /* another activation is not oneDNN's here */
        assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_ONEDNN), 0);
        assert_int_equal(tsr_compute_conv_dnnl(x, n, &g, 1, M, w, b, TSR_ACT_TANH, y), 1);
        assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_OPENBLAS), 0);
    }
    for (size_t i = 0; i < out; i++)
        assert_true(y[i] == 7.0f);
    free(x), free(w), free(b), free(y);
}

/* More batch sizes than the cache holds: old entries are dropped and
 * remade, and every result stays right (the last batch of an epoch and
 * evaluation make new sizes). */
static void test_conv_dnnl_cache(void **state)
{
    (void)state;
    if (!tsr_compute_gemm_available(TSR_GEMM_ONEDNN))
        skip();
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_ONEDNN), 0);
    tsr_conv_geom_t g = geom(5, 5, 8, 3, 1, 1, 1);
    size_t M = 8, kk = 9 * 8;
    float *w = randv(M * kk, 5), *b = randv(M, 6), *x = randv(64 * 25 * 8, 7), *y = malloc(64 * 25 * M * sizeof *y);
    for (int pass = 0; pass < 2; pass++)
        for (size_t n = 1; n <= 60; n += pass ? 7 : 1) {
            assert_int_equal(tsr_compute_conv_dnnl(x, n, &g, 1, M, w, b, TSR_ACT_NONE, y), 0);
            size_t last = (n - 1) * 25 * M; /* the last sample's first pixel, first channel: taps (1,1).. */
            double acc = b[0];
            for (int kh = 1; kh < 3; kh++)
                for (int kw = 1; kw < 3; kw++)
                    for (size_t c = 0; c < 8; c++)
                        acc += (double)x[(n - 1) * 200 + ((size_t)(kh - 1) * 5 + (size_t)(kw - 1)) * 8 + c] *
                               w[((size_t)kh * 3 + (size_t)kw) * 8 + c];
            if (fabs(y[last] - acc) > 2e-5 * fmax(1, fabs(acc)))
                fail_msg("batch %zu: y = %.9g, want %.9g", n, (double)y[last], acc);
        }
    assert_int_equal(tsr_compute_set_gemm(TSR_GEMM_OPENBLAS), 0);
    free(w), free(b), free(x), free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_dnnl_against_sums),
        cmocka_unit_test(test_conv_dnnl_declines),
        cmocka_unit_test(test_conv_dnnl_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
