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
    for (size_t s = 0; s < n; s++)
        for (size_t p = 0; p < npix; p++)
            pixel(x + s * in_sample, C, wt, bias, M, act, nts[p], tab + p * 2 * kk, tab + p * 2 * kk + kk,
                  y + (s * npix + p) * M);
}

TSR_HOT void tsr_compute_conv_direct_wgrad(const float *x, const float *dy, size_t n, const tsr_conv_geom_t *g,
                                           size_t M, float *gwt)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    memset(gwt, 0, (size_t)g->k * (size_t)g->k * C * M * sizeof *gwt);
    /* One output row at a time (its dy stays in L1), each gradient element
     * summing that row's pixels in order; over the rows, samples then rows:
     * a fixed order, whatever the batch. */
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++) {
            const float *drow = dy + (s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow * M;
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
