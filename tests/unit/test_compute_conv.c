/* SPDX-License-Identifier: BSD-3-Clause */
/* Unit tests of the CPU convolution and pooling kernels
 * (src/compute/cpu_conv.c, channels last) against direct loops: im2col
 * followed by GEMM equals a naive convolution (stride, padding, dilation,
 * channel groups), col2im is im2col's adjoint (<im2col x, c> = <x,
 * col2im c>), max pooling gives the first maximum and its offset and
 * routes gradients there (tiling and overlapping windows), average pooling
 * and its adjoint; max pooling after a ReLU against max pooling then the
 * ReLU's mask, bit for bit; the direct kernels for small windows against
 * sums. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "conv_test_util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Element (s, h, w, c) of an NHWC tensor. */
static size_t nhwc(const tsr_conv_geom_t *g, size_t s, int h, int w, int c)
{
    return ((s * (size_t)g->h + (size_t)h) * (size_t)g->w + (size_t)w) * (size_t)g->c + (size_t)c;
}

/* Element (s, oh, ow, c) of an output with C channels per pixel. */
static size_t out_at(const tsr_conv_geom_t *g, size_t s, int oh, int ow, size_t c, size_t C)
{
    return ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * C + c;
}

/* Shapes: h, w, c, k, stride, pad, dilation, groups. */
static const int convs[][8] = {
    {5, 5, 1, 3, 1, 0, 1, 1},
    {6, 7, 3, 3, 1, 1, 1, 1},
    {7, 6, 4, 3, 2, 1, 1, 2},
    {9, 9, 2, 3, 1, 2, 2, 1},
    {8, 5, 6, 1, 1, 0, 1, 3},
    {4, 4, 9, 4, 3, 2, 1, 1},
    {11, 3, 5, 2, 2, 0, 1, 1},
    /* One group, dilation 1 (im2col's contiguous-run path): channels not a
     * multiple of 8, stride 2, padding as wide as or wider than the kernel. */
    {9, 8, 13, 3, 1, 1, 1, 1},
    {10, 10, 12, 3, 2, 1, 1, 1},
    {4, 5, 3, 1, 1, 2, 1, 1},
    {5, 6, 3, 3, 2, 3, 1, 1},
    {6, 6, 1, 5, 1, 2, 1, 1},
    /* A first layer's shape: one channel, 3x3, padding 1, rows wider than
     * a block of interior pixels. */
    {12, 14, 1, 3, 1, 1, 1, 1},
};

static void test_conv_im2col(void **state)
{
    (void)state;
    const size_t n = 2, out_per_group = 3;
    for (size_t t = 0; t < sizeof convs / sizeof convs[0]; t++) {
        const int *v = convs[t];
        tsr_conv_geom_t g = geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
        int groups = v[7], cg = g.c / groups;
        size_t pix = n * (size_t)g.oh * (size_t)g.ow, kk = (size_t)g.k * (size_t)g.k * (size_t)cg;
        float *x = randv(n * (size_t)g.h * (size_t)g.w * (size_t)g.c, 20 + t);
        float *wt = randv(kk * out_per_group, 40 + t), *col = malloc(pix * kk * sizeof *col);
        float *y = malloc(pix * out_per_group * sizeof *y), *c2 = randv(pix * kk, 60 + t);
        float *dx = calloc(n * (size_t)g.h * (size_t)g.w * (size_t)g.c, sizeof *dx);
        for (int grp = 0; grp < groups; grp++) {
            tsr_compute_im2col(x, n, &g, grp * cg, cg, col);
            /* y[pix, out] = col[pix, kk] . wt[kk, out] */
            tsr_compute_gemm(0, 0, pix, out_per_group, kk, 1.0f, col, wt, 0.0f, y);
            for (size_t s = 0; s < n; s++)
                for (int oh = 0; oh < g.oh; oh++)
                    for (int ow = 0; ow < g.ow; ow++)
                        for (size_t o = 0; o < out_per_group; o++) {
                            double acc = 0;
                            for (int kh = 0; kh < g.k; kh++)
                                for (int kw = 0; kw < g.k; kw++)
                                    for (int c = 0; c < cg; c++) {
                                        int ih = oh * g.stride - g.pad + kh * g.dil;
                                        int iw = ow * g.stride - g.pad + kw * g.dil;
                                        if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w)
                                            continue;
                                        size_t tap = ((size_t)kh * (size_t)g.k + (size_t)kw) * (size_t)cg + (size_t)c;
                                        float xv = x[nhwc(&g, s, ih, iw, grp * cg + c)];
                                        acc += (double)xv * wt[tap * out_per_group + o];
                                    }
                            size_t at = out_at(&g, s, oh, ow, o, out_per_group);
                            if (fabs(y[at] - acc) > 1e-5 * fmax(1, fabs(acc)))
                                fail_msg("conv case %zu group %d: y[%zu] = %.9g, want %.9g", t, grp, at, (double)y[at],
                                         acc);
                        }
            /* The adjoint: <im2col(x), c2> = <x, col2im(c2)> over this group's channels. */
            memset(dx, 0, n * (size_t)g.h * (size_t)g.w * (size_t)g.c * sizeof *dx);
            tsr_compute_col2im(c2, n, &g, grp * cg, cg, dx);
            double lhs = dot(col, c2, pix * kk), rhs = dot(x, dx, n * (size_t)g.h * (size_t)g.w * (size_t)g.c);
            if (fabs(lhs - rhs) > 1e-5 * fmax(1, fabs(lhs)))
                fail_msg("col2im case %zu group %d: <im2col x, c> = %.12g, <x, col2im c> = %.12g", t, grp, lhs, rhs);
        }
        free(x), free(wt), free(col), free(y), free(c2), free(dx);
    }
}

/* Input value of tap (kh, kw, c) of output pixel (s, oh, ow); 0 in the padding. */
static float tap_value(const float *x, const tsr_conv_geom_t *g, size_t s, int oh, int ow, size_t j)
{
    int c = (int)(j % (size_t)g->c), kw = (int)(j / (size_t)g->c) % g->k, kh = (int)(j / (size_t)g->c) / g->k;
    int ih = oh * g->stride - g->pad + kh * g->dil, iw = ow * g->stride - g->pad + kw * g->dil;
    if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
        return 0.0f;
    return x[nhwc(g, s, ih, iw, c)];
}

/* The direct kernels (one group, small windows) against sums over the
 * taps: forward with bias and with a fused ReLU, and the weight gradient;
 * 11 outputs (not a multiple of the vector width: pixel by pixel) and 32
 * (the interior's blocks of pixels, and 3-wide windows' taps at once in
 * the weight gradient), whose sums must be the same bits either way. */
static void test_conv_direct(void **state)
{
    (void)state;
    const size_t n = 3;
    int tested = 0;
    for (size_t mi = 0; mi < 2; mi++)
        for (size_t t = 0; t < sizeof convs / sizeof convs[0]; t++) {
            const size_t M = mi ? 32 : 11;
            const int *v = convs[t];
            tsr_conv_geom_t g = geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
            size_t kk = (size_t)g.k * (size_t)g.k * (size_t)g.c, pix = n * (size_t)g.oh * (size_t)g.ow;
            if (v[7] != 1 || kk > TSR_CONV_DIRECT_MAX)
                continue;
            tested++;
            float *x = randv(n * (size_t)g.h * (size_t)g.w * (size_t)g.c, 200 + t), *wt = randv(kk * M, 220 + t);
            float *bias = randv(M, 240 + t), *dy = randv(pix * M, 260 + t), *y = malloc(pix * M * sizeof *y);
            float *gwt = malloc(kk * M * sizeof *gwt), *gb = malloc(M * sizeof *gb);
            uint32_t *tab = malloc(tsr_compute_conv_direct_taps(&g) * sizeof *tab);
            float *plain[2] = {malloc(pix * M * sizeof(float)), malloc(pix * M * sizeof(float))};
            /* mode bit 0: fused ReLU; bit 1: the taps workspace, whose sums are the same bits */
            for (int mode = 0; mode < 4; mode++) {
                int relu = mode & 1;
                tsr_compute_conv_direct(x, n, &g, wt, bias, M, relu ? TSR_ACT_RELU : TSR_ACT_NONE,
                                        mode & 2 ? tab : NULL, y);
                if (mode & 2)
                    assert_memory_equal(y, plain[relu], pix * M * sizeof *y);
                else
                    memcpy(plain[relu], y, pix * M * sizeof *y);
                for (size_t s = 0; s < n; s++)
                    for (int oh = 0; oh < g.oh; oh++)
                        for (int ow = 0; ow < g.ow; ow++)
                            for (size_t o = 0; o < M; o++) {
                                double acc = bias[o];
                                for (size_t j = 0; j < kk; j++)
                                    acc += (double)tap_value(x, &g, s, oh, ow, j) * wt[j * M + o];
                                if (relu && acc < 0)
                                    acc = 0;
                                size_t at = out_at(&g, s, oh, ow, o, M);
                                if (fabs(y[at] - acc) > 1e-5 * fmax(1, fabs(acc)))
                                    fail_msg("direct conv case %zu relu %d: y[%zu] = %.9g, want %.9g", t, relu, at,
                                             (double)y[at], acc);
                            }
            }
            tsr_compute_conv_direct_wgrad(x, dy, n, &g, M, gwt, gb);
            /* the bias gradient: the same bits as tsr_compute_act_bias_grad's */
            float *dyc = malloc(pix * M * sizeof *dyc), *gb2 = malloc(M * sizeof *gb2);
            memcpy(dyc, dy, pix * M * sizeof *dyc);
            tsr_compute_act_bias_grad(TSR_ACT_NONE, y, dyc, pix, M, gb2);
            assert_memory_equal(gb, gb2, M * sizeof *gb);
            free(dyc), free(gb2);
            for (size_t j = 0; j < kk; j++)
                for (size_t o = 0; o < M; o++) {
                    double acc = 0;
                    for (size_t s = 0; s < n; s++)
                        for (int oh = 0; oh < g.oh; oh++)
                            for (int ow = 0; ow < g.ow; ow++)
                                acc += (double)tap_value(x, &g, s, oh, ow, j) * dy[out_at(&g, s, oh, ow, o, M)];
                    if (fabs(gwt[j * M + o] - acc) > 1e-4 * fmax(1, fabs(acc)))
                        fail_msg("direct conv wgrad case %zu: gwt[%zu][%zu] = %.9g, want %.9g", t, j, o,
                                 (double)gwt[j * M + o], acc);
                }
            free(x), free(wt), free(bias), free(dy), free(y), free(gwt), free(gb), free(tab), free(plain[0]),
                free(plain[1]);
        }
    assert_true(tested >= 10);
}

/* Pooling shapes: h, w, c, k, stride (no padding). stride == k tiles the
 * input (the backward pass's fast path); stride < k overlaps. */
static const int pools[][5] = {{4, 4, 3, 2, 2}, {6, 9, 5, 3, 3}, {5, 5, 2, 3, 1}, {7, 6, 17, 2, 1}, {5, 7, 1, 3, 2}};

/* Pooling case t over n samples: its geometry and the input and output
 * lengths. */
static tsr_conv_geom_t pool_geom(size_t t, size_t n, size_t *in, size_t *out)
{
    const int *v = pools[t];
    tsr_conv_geom_t g = geom(v[0], v[1], v[2], v[3], v[4], 0, 1);
    *in = n * (size_t)g.h * (size_t)g.w * (size_t)g.c;
    *out = n * (size_t)g.oh * (size_t)g.ow * (size_t)g.c;
    return g;
}

/* The direct conv pooling as it goes (a first layer's conv, ReLU, k x k
 * max pool of stride k) against the three calls it replaces, forward and
 * backward: the same bits, argmax included. */
static void test_conv_direct_pool(void **state)
{
    (void)state;
    /* h, w, c, kernel, stride, pad, dilation, pool k */
    static const int cases[][8] = {{12, 14, 1, 3, 1, 1, 1, 2}, {8, 8, 3, 3, 1, 1, 1, 2},  {9, 9, 2, 3, 1, 1, 1, 3},
                                   {10, 6, 1, 5, 1, 2, 1, 2},  {7, 11, 2, 3, 2, 1, 1, 2}, {8, 12, 1, 3, 1, 2, 2, 4}};
    const size_t n = 3;
    for (size_t mi = 0; mi < 2; mi++)
        for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
            const int *v = cases[t], k = v[7];
            const size_t M = mi ? 32 : 11;
            tsr_conv_geom_t g = geom(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
            tsr_conv_geom_t pg = {g.oh, g.ow, (int)M, k, k, 0, 1, g.oh / k, g.ow / k};
            if (g.oh % k || g.ow % k)
                fail_msg("case %zu: the pool does not tile %dx%d", t, g.oh, g.ow);
            size_t kk = (size_t)g.k * (size_t)g.k * (size_t)g.c, pix = n * (size_t)g.oh * (size_t)g.ow;
            size_t ppix = n * (size_t)pg.oh * (size_t)pg.ow;
            float *x = randv(n * (size_t)g.h * (size_t)g.w * (size_t)g.c, 300 + t), *wt = randv(kk * M, 320 + t);
            float *bias = randv(M, 340 + t), *dyp = randv(ppix * M, 360 + t);
            float *yc = malloc(pix * M * sizeof *yc), *y1 = malloc(ppix * M * sizeof *y1);
            float *y2 = malloc(ppix * M * sizeof *y2), *dfull = malloc(pix * M * sizeof *dfull);
            float *rows = malloc(((size_t)k * (size_t)g.ow * M + 1) * sizeof *rows);
            float *g1 = malloc(kk * M * sizeof *g1), *g2 = malloc(kk * M * sizeof *g2);
            float *b1 = malloc(M * sizeof *b1), *b2 = malloc(M * sizeof *b2);
            int32_t *a1 = malloc(ppix * M * sizeof *a1), *a2 = malloc(ppix * M * sizeof *a2);
            uint32_t *tab = malloc(tsr_compute_conv_direct_taps(&g) * sizeof *tab);
            tsr_compute_conv_direct(x, n, &g, wt, bias, M, TSR_ACT_RELU, tab, yc);
            tsr_compute_maxpool_relu(yc, n, &pg, y1, a1);
            tsr_compute_conv_direct_pool(x, n, &g, wt, bias, M, k, tab, rows, y2, a2);
            assert_memory_equal(y1, y2, ppix * M * sizeof *y1);
            assert_memory_equal(a1, a2, ppix * M * sizeof *a1);
            tsr_compute_maxpool_backward(dyp, a1, n, &pg, dfull);
            tsr_compute_conv_direct_wgrad(x, dfull, n, &g, M, g1, b1);
            tsr_compute_conv_direct_wgrad_pool(x, dyp, a2, n, &g, M, k, rows, g2, b2);
            assert_memory_equal(g1, g2, kk * M * sizeof *g1);
            assert_memory_equal(b1, b2, M * sizeof *b1);
            free(x), free(wt), free(bias), free(dyp), free(yc), free(y1), free(y2), free(dfull), free(rows);
            free(g1), free(g2), free(b1), free(b2), free(a1), free(a2), free(tab);
        }
}

static void test_maxpool(void **state)
{
    (void)state;
    const size_t n = 2;
    for (size_t t = 0; t < sizeof pools / sizeof pools[0]; t++) {
        size_t in, out;
        tsr_conv_geom_t g = pool_geom(t, n, &in, &out);
        float *x = randv(in, 80 + t), *y = malloc(out * sizeof *y), *dy = randv(out, 90 + t);
        float *dx = malloc(in * sizeof *dx);
        double *want_dx = calloc(in, sizeof *want_dx);
        int32_t *arg = malloc(out * sizeof *arg);
        for (size_t i = 0; i < in; i += 5)
            x[i] = 0.5f; /* ties: the first maximum in window order wins */
        tsr_compute_maxpool(x, n, &g, y, arg);
        for (size_t s = 0; s < n; s++)
            for (int oh = 0; oh < g.oh; oh++)
                for (int ow = 0; ow < g.ow; ow++)
                    for (int c = 0; c < g.c; c++) {
                        size_t best = nhwc(&g, s, oh * g.stride, ow * g.stride, c);
                        for (int kh = 0; kh < g.k; kh++)
                            for (int kw = 0; kw < g.k; kw++) {
                                size_t i = nhwc(&g, s, oh * g.stride + kh, ow * g.stride + kw, c);
                                if (x[i] > x[best])
                                    best = i;
                            }
                        size_t o = out_at(&g, s, oh, ow, (size_t)c, (size_t)g.c);
                        size_t in_sample = (size_t)g.h * (size_t)g.w * (size_t)g.c;
                        assert_true(y[o] == x[best]);
                        if ((size_t)arg[o] != best - s * in_sample)
                            fail_msg("maxpool case %zu: argmax[%zu] = %d, want %zu", t, o, arg[o],
                                     best - s * in_sample);
                        want_dx[best] += dy[o];
                    }
        memset(dx, 0x7f, in * sizeof *dx); /* every element is written */
        tsr_compute_maxpool_backward(dy, arg, n, &g, dx);
        for (size_t i = 0; i < in; i++)
            if (fabs(dx[i] - want_dx[i]) > 1e-6)
                fail_msg("maxpool backward case %zu: dx[%zu] = %.9g, want %.9g", t, i, (double)dx[i], want_dx[i]);
        free(x), free(y), free(dy), free(dx), free(want_dx), free(arg);
    }
}

/* After a ReLU: the same maxima, argmax -1 where the maximum is not
 * positive, and backward's dx equal, bit for bit, to plain maxpool's
 * backward followed by the ReLU's mask (what the conv then skips). */
static void test_maxpool_relu(void **state)
{
    (void)state;
    const size_t n = 2;
    for (size_t t = 0; t < sizeof pools / sizeof pools[0]; t++) {
        size_t in, out;
        tsr_conv_geom_t g = pool_geom(t, n, &in, &out);
        float *x = randv(in, 180 + t), *dy = randv(out, 190 + t);
        float *y1 = malloc(out * sizeof *y1), *y2 = malloc(out * sizeof *y2);
        float *dx1 = malloc(in * sizeof *dx1), *dx2 = malloc(in * sizeof *dx2);
        int32_t *a1 = malloc(out * sizeof *a1), *a2 = malloc(out * sizeof *a2);
        for (size_t i = 0; i < in; i++)
            x[i] = x[i] > 0.0f && i % 3 == 0 ? x[i] : 0.0f;                /* a ReLU's output, sparse */
        memset(x, 0, (size_t)g.k * (size_t)g.w * (size_t)g.c * sizeof *x); /* whole windows of zeros */
        tsr_compute_maxpool(x, n, &g, y1, a1);
        tsr_compute_maxpool_relu(x, n, &g, y2, a2);
        assert_memory_equal(y1, y2, out * sizeof *y1);
        size_t masked = 0;
        for (size_t o = 0; o < out; o++) {
            assert_int_equal(a2[o], y1[o] > 0.0f ? a1[o] : -1);
            masked += a2[o] < 0;
        }
        assert_true(masked > 0);
        tsr_compute_maxpool_backward(dy, a1, n, &g, dx1);
        for (size_t i = 0; i < in; i++)
            dx1[i] = x[i] > 0.0f ? dx1[i] : 0.0f;
        memset(dx2, 0x7f, in * sizeof *dx2); /* every element is written */
        tsr_compute_maxpool_backward(dy, a2, n, &g, dx2);
        if (memcmp(dx1, dx2, in * sizeof *dx1))
            fail_msg("maxpool after a ReLU, case %zu: backward differs from maxpool's then the mask", t);
        free(x), free(dy), free(y1), free(y2), free(dx1), free(dx2), free(a1), free(a2);
    }
}

static void test_avgpool(void **state)
{
    (void)state;
    const size_t n = 2;
    for (size_t t = 0; t < sizeof pools / sizeof pools[0]; t++) {
        size_t in, out;
        tsr_conv_geom_t g = pool_geom(t, n, &in, &out);
        float *x = randv(in, 100 + t), *y = malloc(out * sizeof *y), *dy = randv(out, 110 + t);
        float *dx = malloc(in * sizeof *dx);
        tsr_compute_avgpool(x, n, &g, y);
        for (size_t s = 0; s < n; s++)
            for (int oh = 0; oh < g.oh; oh++)
                for (int ow = 0; ow < g.ow; ow++)
                    for (int c = 0; c < g.c; c++) {
                        double acc = 0;
                        for (int kh = 0; kh < g.k; kh++)
                            for (int kw = 0; kw < g.k; kw++)
                                acc += x[nhwc(&g, s, oh * g.stride + kh, ow * g.stride + kw, c)];
                        acc /= g.k * g.k;
                        size_t o = out_at(&g, s, oh, ow, (size_t)c, (size_t)g.c);
                        if (fabs(y[o] - acc) > 1e-6)
                            fail_msg("avgpool case %zu: y[%zu] = %.9g, want %.9g", t, o, (double)y[o], acc);
                    }
        memset(dx, 0x7f, in * sizeof *dx);
        tsr_compute_avgpool_backward(dy, n, &g, dx);
        double lhs = dot(y, dy, out), rhs = dot(x, dx, in);
        if (fabs(lhs - rhs) > 1e-5 * fmax(1, fabs(lhs)))
            fail_msg("avgpool backward case %zu: <pool x, dy> = %.12g, <x, dx> = %.12g", t, lhs, rhs);
        free(x), free(y), free(dy), free(dx);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_im2col),      cmocka_unit_test(test_conv_direct),
        cmocka_unit_test(test_conv_direct_pool), cmocka_unit_test(test_maxpool),
        cmocka_unit_test(test_maxpool_relu),     cmocka_unit_test(test_avgpool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
