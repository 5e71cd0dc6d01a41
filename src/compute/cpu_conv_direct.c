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
static inline size_t taps(const tsr_conv_geom_t *g, int oh, int ow, size_t *xoff, size_t *woff)
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
            xoff[nt] = ((size_t)ih * (size_t)g->w + (size_t)iw) * C;
            woff[nt++] = ((size_t)kh * (size_t)g->k + (size_t)kw) * C;
        }
    }
    return nt;
}

TSR_HOT void tsr_compute_conv_direct(const float *x, size_t n, const tsr_conv_geom_t *g, const float *wt,
                                     const float *bias, size_t M, tsr_act_t act, float *y)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    size_t xoff[TSR_CONV_DIRECT_MAX], woff[TSR_CONV_DIRECT_MAX];
    for (int oh = 0; oh < g->oh; oh++)
        for (int ow = 0; ow < g->ow; ow++) {
            size_t nt = taps(g, oh, ow, xoff, woff);
            for (size_t s = 0; s < n; s++) {
                const float *xs = x + s * in_sample;
                float *restrict yr = y + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * M;
                for (size_t o = 0; o < M; o++)
                    yr[o] = bias ? bias[o] : 0.0f;
                for (size_t t = 0; t < nt; t++)
                    for (size_t c = 0; c < C; c++) {
                        const float xv = xs[xoff[t] + c];
                        const float *restrict wr = wt + (woff[t] + c) * M;
                        for (size_t o = 0; o < M; o++)
                            yr[o] += xv * wr[o];
                    }
                if (act == TSR_ACT_RELU)
                    for (size_t o = 0; o < M; o++)
                        yr[o] = yr[o] > 0.0f ? yr[o] : 0.0f;
                else if (act != TSR_ACT_NONE)
                    tsr_compute_act(act, yr, M);
            }
        }
}

TSR_HOT void tsr_compute_conv_direct_wgrad(const float *x, const float *dy, size_t n, const tsr_conv_geom_t *g,
                                           size_t M, float *gwt)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    size_t xoff[TSR_CONV_DIRECT_MAX], woff[TSR_CONV_DIRECT_MAX];
    memset(gwt, 0, (size_t)g->k * (size_t)g->k * C * M * sizeof *gwt);
    /* Samples outermost: every gradient element sums its pixels in one
     * fixed order (sample, row, column), whatever the batch. */
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                size_t nt = taps(g, oh, ow, xoff, woff);
                const float *restrict dr = dy + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * M;
                for (size_t t = 0; t < nt; t++)
                    for (size_t c = 0; c < C; c++) {
                        const float xv = xs[xoff[t] + c];
                        float *restrict gr = gwt + (woff[t] + c) * M;
                        for (size_t o = 0; o < M; o++)
                            gr[o] += xv * dr[o];
                    }
            }
    }
}
