/* SPDX-License-Identifier: BSD-3-Clause */
/* Direct convolution for windows of few values (k*k*c small, one group:
 * the first layer of an image net, c = 1 or 3), channels last. There
 * im2col + GEMM spends its time on the copy, on zeroing and writing C and
 * on packing, not on the k*k*c multiply-adds per output, so each output
 * pixel is computed in place: its M outputs (one vector run) take each
 * tap's input value times that tap's row of the transposed weights. */
#include "tessera/compute.h"
#include "common/vec.h"

#include <string.h>

/* The taps of output pixel (oh, ow) that fall inside the input, as
 * offsets of their input pixel in the sample and of their weight row. */
static inline size_t taps(const tsr_conv_geom_t *g, int oh, int ow, uint32_t *xoff, uint32_t *woff)
{
    size_t nt = 0, C = (size_t)g->c;
    for (int kh = 0; kh < g->k; kh++) {
        int ih = oh * g->stride - g->pad + kh * g->dil;
        if (ih < 0 || ih >= g->h)
            continue;
        for (int kw = 0; kw < g->k; kw++) {
            int iw = ow * g->stride - g->pad + kw * g->dil;
            if (iw < 0 || iw >= g->w)
                continue;
            xoff[nt] = (uint32_t)(((size_t)ih * (size_t)g->w + (size_t)iw) * C);
            woff[nt++] = (uint32_t)(((size_t)kh * (size_t)g->k + (size_t)kw) * C);
        }
    }
    return nt;
}

/* Outputs per block: the block's sums stay in vector registers over the
 * taps (2 AVX registers), instead of a load and store per tap. */
#define OB 16

/* One output pixel of one sample: its M outputs from its nt taps. */
static inline void pixel(const float *xs, size_t C, const float *wt, const float *bias, size_t M, tsr_act_t act,
                         size_t nt, const uint32_t *xoff, const uint32_t *woff, float *restrict yr)
{
    size_t o0 = 0;
    for (; o0 + OB <= M; o0 += OB) {
        float acc[OB];
        for (size_t o = 0; o < OB; o++)
            acc[o] = bias ? bias[o0 + o] : 0.0f;
        for (size_t t = 0; t < nt; t++)
            for (size_t c = 0; c < C; c++) {
                const float xv = xs[xoff[t] + c];
                const float *restrict wr = wt + (woff[t] + c) * M + o0;
                for (size_t o = 0; o < OB; o++)
                    acc[o] += xv * wr[o];
            }
        for (size_t o = 0; o < OB; o++)
            yr[o0 + o] = acc[o];
    }
    for (size_t o = o0; o < M; o++)
        yr[o] = bias ? bias[o] : 0.0f;
    for (size_t t = 0; t < nt && o0 < M; t++)
        for (size_t c = 0; c < C; c++) {
            const float xv = xs[xoff[t] + c];
            const float *restrict wr = wt + (woff[t] + c) * M;
            for (size_t o = o0; o < M; o++)
                yr[o] += xv * wr[o];
        }
    if (act == TSR_ACT_RELU)
        for (size_t o = 0; o < M; o++)
            yr[o] = yr[o] > 0.0f ? yr[o] : 0.0f;
    else if (act != TSR_ACT_NONE)
        tsr_compute_act(act, yr, M);
}

/* Pixels per block of the interior: PB x OB sums (8 AVX registers) over
 * the taps, each weight row loaded once for the PB pixels. Written with
 * vector types: as plain loops GCC vectorises across the pixels instead
 * and shuffles (4x slower than pixel by pixel). */
#define PB 4
typedef float v8f __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4))); /* unaligned loads and stores */
typedef int v8i __attribute__((vector_size(32)));

/* np (1 or PB) consecutive output pixels of one row that share their taps
 * (pixel j reads tap t at xoff[t] + j*step): the same sums, in the same
 * order, as pixel() for each; M a multiple of OB. */
static inline __attribute__((always_inline)) void pixels(const int np, const float *xs, size_t C, size_t step,
                                                         const float *wt, const float *bias, size_t M, tsr_act_t act,
                                                         size_t nt, const uint32_t *xoff, const uint32_t *woff,
                                                         float *restrict yr)
{
    for (size_t o0 = 0; o0 < M; o0 += OB) {
        v8f b0 = {0}, b1 = {0}, a[PB][2];
        if (bias)
            b0 = *(const v8u *)(bias + o0), b1 = *(const v8u *)(bias + o0 + 8);
        for (int j = 0; j < np; j++)
            a[j][0] = b0, a[j][1] = b1;
        for (size_t t = 0; t < nt; t++)
            for (size_t c = 0; c < C; c++) {
                const float *xp = xs + xoff[t] + c;
                const float *wr = wt + (woff[t] + c) * M + o0;
                const v8f w0 = *(const v8u *)wr, w1 = *(const v8u *)(wr + 8);
                for (int j = 0; j < np; j++) {
                    const float xv = xp[(size_t)j * step];
                    a[j][0] += xv * w0, a[j][1] += xv * w1;
                }
            }
        for (int j = 0; j < np; j++)
            for (int h = 0; h < 2; h++) {
                v8f v = a[j][h];
                if (act == TSR_ACT_RELU) /* v > 0 ? v : 0, NaN to 0, as pixel() */
                    v = (v8f)((v8i)v & (v > (v8f){0}));
                *(v8u *)(yr + (size_t)j * M + o0 + 8 * (size_t)h) = v;
            }
    }
    if (act != TSR_ACT_NONE && act != TSR_ACT_RELU)
        tsr_compute_act(act, yr, (size_t)np * M);
}

/* One pixel with its own taps: in vectors where M allows. */
static inline void one(const float *xs, size_t C, const float *wt, const float *bias, size_t M, tsr_act_t act,
                       size_t nt, const uint32_t *xoff, const uint32_t *woff, float *restrict yr)
{
    if (M % OB == 0)
        pixels(1, xs, C, 0, wt, bias, M, act, nt, xoff, woff, yr);
    else
        pixel(xs, C, wt, bias, M, act, nt, xoff, woff, yr);
}

size_t tsr_compute_conv_direct_taps(const tsr_conv_geom_t *g)
{
    return (size_t)g->oh * (size_t)g->ow * (2 * (size_t)g->k * (size_t)g->k + 1);
}

TSR_HOT void tsr_compute_conv_direct(const float *x, size_t n, const tsr_conv_geom_t *g, const float *wt,
                                     const float *bias, size_t M, tsr_act_t act, uint32_t *tab, float *y)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    const size_t npix = (size_t)g->oh * (size_t)g->ow, kk = (size_t)g->k * (size_t)g->k;
    if (!tab) {
        uint32_t xoff[TSR_CONV_DIRECT_MAX], woff[TSR_CONV_DIRECT_MAX];
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                size_t nt = taps(g, oh, ow, xoff, woff);
                for (size_t s = 0; s < n; s++)
                    pixel(x + s * in_sample, C, wt, bias, M, act, nt, xoff, woff,
                          y + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * M);
            }
        return;
    }
    /* Every pixel's taps once (offsets in a sample, below 2^28 values),
     * then sample by sample: each sample's input stays in L1 and its
     * outputs are written in order. Each output's sums are the same. */
    uint32_t *nts = tab + 2 * kk * npix;
    for (int oh = 0, p = 0; oh < g->oh; oh++)
        for (int ow = 0; ow < g->ow; ow++, p++)
            nts[p] = (uint32_t)taps(g, oh, ow, tab + (size_t)p * 2 * kk, tab + (size_t)p * 2 * kk + kk);
    /* A row's columns whose every kw tap is inside the input share one tap
     * set, shifted by stride*C per column: PB of them run at once. */
    int clo = 0, chi = g->ow;
    while (clo < chi && clo * g->stride - g->pad < 0)
        clo++;
    while (chi > clo && (chi - 1) * g->stride - g->pad + (g->k - 1) * g->dil >= g->w)
        chi--;
    if (M % OB)
        clo = chi = 0; /* the blocks need whole runs of OB outputs */
    const size_t step = (size_t)g->stride * C;
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (size_t oh = 0, p = 0; oh < (size_t)g->oh; oh++) {
            size_t row_end = p + (size_t)g->ow, lo = p + (size_t)clo, hi = p + (size_t)chi;
            for (; p < lo; p++)
                one(xs, C, wt, bias, M, act, nts[p], tab + p * 2 * kk, tab + p * 2 * kk + kk, y + (s * npix + p) * M);
            for (; p + PB <= hi; p += PB)
                pixels(PB, xs, C, step, wt, bias, M, act, nts[p], tab + p * 2 * kk, tab + p * 2 * kk + kk,
                       y + (s * npix + p) * M);
            for (; p < row_end; p++)
                one(xs, C, wt, bias, M, act, nts[p], tab + p * 2 * kk, tab + p * 2 * kk + kk, y + (s * npix + p) * M);
        }
    }
}

/* One output row's share of the weight gradient for one (kh, c) and the
 * K = k taps along the row at once (K x WB sums in registers: the chains
 * of one element's sums, each a latency-bound run of FMAs, then overlap).
 * Each element still adds the row's columns in order, so its sums are
 * those of one tap at a time. */
static inline __attribute__((always_inline)) void wgrad_row(const int K, const size_t WB, const tsr_conv_geom_t *g,
                                                            const float *xrow, size_t C, size_t c, const float *drow,
                                                            size_t M, float *gr0)
{
    int lo[4], hi[4], off[4], all_lo = g->ow, all_hi = 0, in_lo = 0, in_hi = g->ow;
    for (int kw = 0; kw < K; kw++) {
        off[kw] = kw * g->dil - g->pad, lo[kw] = 0, hi[kw] = g->ow;
        while (lo[kw] < hi[kw] && lo[kw] * g->stride + off[kw] < 0)
            lo[kw]++;
        while (hi[kw] > lo[kw] && (hi[kw] - 1) * g->stride + off[kw] >= g->w)
            hi[kw]--;
        all_lo = lo[kw] < all_lo ? lo[kw] : all_lo, all_hi = hi[kw] > all_hi ? hi[kw] : all_hi;
        in_lo = lo[kw] > in_lo ? lo[kw] : in_lo, in_hi = hi[kw] < in_hi ? hi[kw] : in_hi;
    }
    if (in_hi < in_lo)
        in_hi = in_lo;
    const size_t kstride = C * M; /* from tap kw to kw + 1 in gwt */
    for (size_t o0 = 0; o0 < M; o0 += WB) {
        float acc[4][32];
        for (int kw = 0; kw < K; kw++)
            for (size_t o = 0; o < WB; o++)
                acc[kw][o] = gr0[(size_t)kw * kstride + o0 + o];
        int ow = all_lo;
        for (; ow < in_lo; ow++) /* the left edge: some taps outside */
            for (int kw = 0; kw < K; kw++)
                if (ow >= lo[kw] && ow < hi[kw]) {
                    const float xv = xrow[(size_t)(ow * g->stride + off[kw]) * C + c];
                    for (size_t o = 0; o < WB; o++)
                        acc[kw][o] += xv * drow[(size_t)ow * M + o0 + o];
                }
        for (; ow < in_hi; ow++) {
            const float *restrict dr = drow + (size_t)ow * M + o0;
            for (int kw = 0; kw < K; kw++) {
                const float xv = xrow[(size_t)(ow * g->stride + off[kw]) * C + c];
                for (size_t o = 0; o < WB; o++)
                    acc[kw][o] += xv * dr[o];
            }
        }
        for (; ow < all_hi; ow++) /* the right edge */
            for (int kw = 0; kw < K; kw++)
                if (ow >= lo[kw] && ow < hi[kw]) {
                    const float xv = xrow[(size_t)(ow * g->stride + off[kw]) * C + c];
                    for (size_t o = 0; o < WB; o++)
                        acc[kw][o] += xv * drow[(size_t)ow * M + o0 + o];
                }
        for (int kw = 0; kw < K; kw++)
            for (size_t o = 0; o < WB; o++)
                gr0[(size_t)kw * kstride + o0 + o] = acc[kw][o];
    }
}

/* The bias gradient's share of one output row: its pixels in order, as
 * tsr_compute_act_bias_grad sums them (while the row is in L1). */
static inline void bias_row(const float *restrict drow, size_t ow, size_t M, float *restrict gb)
{
    for (size_t p = 0; p < ow; p++)
        for (size_t o = 0; o < M; o++)
            gb[o] += drow[p * M + o];
}

TSR_HOT void tsr_compute_conv_direct_wgrad(const float *x, const float *dy, size_t n, const tsr_conv_geom_t *g,
                                           size_t M, float *gwt, float *gb)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    memset(gwt, 0, (size_t)g->k * (size_t)g->k * C * M * sizeof *gwt);
    if (gb)
        memset(gb, 0, M * sizeof *gb);
    /* 3-wide windows with whole runs of outputs: a row's three taps at once. */
    if (g->k == 3 && M % OB == 0) {
        for (size_t s = 0; s < n; s++) {
            const float *xs = x + s * in_sample;
            for (int oh = 0; oh < g->oh; oh++) {
                const float *drow = dy + (s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow * M;
                if (gb)
                    bias_row(drow, (size_t)g->ow, M, gb);
                for (int kh = 0; kh < 3; kh++) {
                    int ih = oh * g->stride - g->pad + kh * g->dil;
                    if (ih < 0 || ih >= g->h)
                        continue;
                    const float *xrow = xs + (size_t)ih * (size_t)g->w * C;
                    for (size_t c = 0; c < C; c++) {
                        float *gr0 = gwt + ((size_t)kh * 3 * C + c) * M;
                        if (M % 32 == 0)
                            wgrad_row(3, 32, g, xrow, C, c, drow, M, gr0);
                        else
                            wgrad_row(3, OB, g, xrow, C, c, drow, M, gr0);
                    }
                }
            }
        }
        return;
    }
    /* One output row at a time (its dy stays in L1), each gradient element
     * summing that row's pixels in order; over the rows, samples then rows:
     * a fixed order, whatever the batch. */
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++) {
            const float *drow = dy + (s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow * M;
            if (gb)
                bias_row(drow, (size_t)g->ow, M, gb);
            for (int kh = 0; kh < g->k; kh++) {
                int ih = oh * g->stride - g->pad + kh * g->dil;
                if (ih < 0 || ih >= g->h)
                    continue;
                for (int kw = 0; kw < g->k; kw++) {
                    /* the output columns whose tap kw is inside the input */
                    int off = kw * g->dil - g->pad, lo = 0, hi = g->ow;
                    while (lo < hi && lo * g->stride + off < 0)
                        lo++;
                    while (hi > lo && (hi - 1) * g->stride + off >= g->w)
                        hi--;
                    const float *xrow = xs + (size_t)ih * (size_t)g->w * C;
                    for (size_t c = 0; c < C; c++) {
                        float *gr = gwt + (((size_t)kh * (size_t)g->k + (size_t)kw) * C + c) * M;
                        size_t o0 = 0;
                        for (; o0 + OB <= M; o0 += OB) {
                            float acc[OB];
                            for (size_t o = 0; o < OB; o++)
                                acc[o] = gr[o0 + o];
                            for (int ow = lo; ow < hi; ow++) {
                                const float xv = xrow[(size_t)(ow * g->stride + off) * C + c];
                                const float *restrict dr = drow + (size_t)ow * M + o0;
                                for (size_t o = 0; o < OB; o++)
                                    acc[o] += xv * dr[o];
                            }
                            for (size_t o = 0; o < OB; o++)
                                gr[o0 + o] = acc[o];
                        }
                        for (int ow = lo; ow < hi && o0 < M; ow++) {
                            const float xv = xrow[(size_t)(ow * g->stride + off) * C + c];
                            const float *restrict dr = drow + (size_t)ow * M;
                            for (size_t o = o0; o < M; o++)
                                gr[o] += xv * dr[o];
                        }
                    }
                }
            }
        }
    }
}
