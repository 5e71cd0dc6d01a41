/* SPDX-License-Identifier: BSD-3-Clause */
/* Convolution lowering and pooling on channels-last (NHWC) tensors. im2col
 * copies whole channel runs (memcpy of cg floats per kernel tap), so the
 * GEMM that follows sees one row per output pixel. */
#include "tessera/compute.h"
#include "common/vec.h"

#include <string.h>

/* The kernel columns [*lo, *hi) of output column ow that fall inside the
 * input (dilation 1): their input pixels are consecutive. */
static inline void tap_span(const tsr_conv_geom_t *g, int ow, int *lo, int *hi)
{
    int iw0 = ow * g->stride - g->pad;
    *lo = iw0 >= 0 ? 0 : -iw0 < g->k ? -iw0 : g->k;
    *hi = g->w - iw0 < g->k ? g->w - iw0 : g->k;
    if (*hi < *lo)
        *hi = *lo;
}

TSR_HOT void tsr_compute_im2col(const float *x, size_t n, const tsr_conv_geom_t *g, int c0, int cg, float *col)
{
    const size_t kk = (size_t)g->k * (size_t)g->k * (size_t)cg;
    const size_t in_sample = (size_t)g->h * (size_t)g->w * (size_t)g->c;
    /* Every channel and dilation 1: a kernel row's taps inside the input
     * are one contiguous run of k * c floats, copied at once. */
    const int runs = g->dil == 1 && cg == g->c;
    const size_t C = (size_t)g->c;
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                float *row = col + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * kk;
                if (runs) {
                    int lo, hi;
                    tap_span(g, ow, &lo, &hi);
                    const int iw0 = ow * g->stride - g->pad;
                    for (int kh = 0; kh < g->k; kh++, row += (size_t)g->k * C) {
                        int ih = oh * g->stride - g->pad + kh;
                        if (ih < 0 || ih >= g->h) {
                            memset(row, 0, (size_t)g->k * C * sizeof *row);
                            continue;
                        }
                        memset(row, 0, (size_t)lo * C * sizeof *row);
                        memcpy(row + (size_t)lo * C, xs + ((size_t)ih * (size_t)g->w + (size_t)(iw0 + lo)) * C,
                               (size_t)(hi - lo) * C * sizeof *row);
                        memset(row + (size_t)hi * C, 0, (size_t)(g->k - hi) * C * sizeof *row);
                    }
                    continue;
                }
                for (int kh = 0; kh < g->k; kh++) {
                    int ih = oh * g->stride - g->pad + kh * g->dil;
                    for (int kw = 0; kw < g->k; kw++, row += cg) {
                        int iw = ow * g->stride - g->pad + kw * g->dil;
                        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w) {
                            memset(row, 0, (size_t)cg * sizeof *row);
                        } else {
                            const float *src = xs + ((size_t)ih * (size_t)g->w + (size_t)iw) * (size_t)g->c + c0;
                            if (cg == 1)
                                *row = *src;
                            else
                                for (size_t c = 0; c < (size_t)cg; c++) {
                                    row[c] = src[c];
                                }
                        }
                    }
                }
            }
    }
}

TSR_HOT void tsr_compute_col2im(const float *col, size_t n, const tsr_conv_geom_t *g, int c0, int cg, float *dx)
{
    const size_t kk = (size_t)g->k * (size_t)g->k * (size_t)cg;
    const size_t in_sample = (size_t)g->h * (size_t)g->w * (size_t)g->c;
    const int runs = g->dil == 1 && cg == g->c;
    const size_t C = (size_t)g->c;
    for (size_t s = 0; s < n; s++) {
        float *xs = dx + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                const float *row = col + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * kk;
                if (runs) { /* as im2col: one run of taps per kernel row */
                    int lo, hi;
                    tap_span(g, ow, &lo, &hi);
                    const int iw0 = ow * g->stride - g->pad;
                    for (int kh = 0; kh < g->k; kh++, row += (size_t)g->k * C) {
                        int ih = oh * g->stride - g->pad + kh;
                        if (ih < 0 || ih >= g->h)
                            continue;
                        float *restrict dst = xs + ((size_t)ih * (size_t)g->w + (size_t)(iw0 + lo)) * C;
                        const float *restrict r = row + (size_t)lo * C;
                        for (size_t i = 0, len = (size_t)(hi - lo) * C; i < len; i++)
                            dst[i] += r[i];
                    }
                    continue;
                }
                for (int kh = 0; kh < g->k; kh++) {
                    int ih = oh * g->stride - g->pad + kh * g->dil;
                    for (int kw = 0; kw < g->k; kw++, row += cg) {
                        int iw = ow * g->stride - g->pad + kw * g->dil;
                        if (ih < 0 || ih >= g->h || iw < 0 || iw >= g->w)
                            continue;
                        float *restrict dst = xs + ((size_t)ih * (size_t)g->w + (size_t)iw) * (size_t)g->c + c0;
                        const float *restrict r = row;
                        for (int c = 0; c < cg; c++)
                            dst[c] += r[c];
                    }
                }
            }
    }
}

/* relu: a ReLU came before, so a window whose maximum is not positive
 * passes no gradient (argmax -1); inlined into both entry points. */
static inline __attribute__((always_inline)) void maxpool(const float *x, size_t n, const tsr_conv_geom_t *g, float *y,
                                                          int32_t *argmax, int relu)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                size_t o = ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * C;
                float *restrict yo = y + o;
                int32_t *restrict ao = argmax + o;
                size_t first = ((size_t)(oh * g->stride) * (size_t)g->w + (size_t)(ow * g->stride)) * C;
                const float *restrict x0 = xs + first;
                if (g->k == 2) { /* the common 2x2 window in one pass, its maximum in registers */
                    const size_t o1 = first + C, o2 = first + (size_t)g->w * C, o3 = o2 + C;
                    const float *restrict x1 = xs + o1, *restrict x2 = xs + o2, *restrict x3 = xs + o3;
                    for (size_t c = 0; c < C; c++) {
                        float b = x0[c];
                        int32_t a = (int32_t)(first + c);
                        a = x1[c] > b ? (int32_t)(o1 + c) : a;
                        b = x1[c] > b ? x1[c] : b;
                        a = x2[c] > b ? (int32_t)(o2 + c) : a;
                        b = x2[c] > b ? x2[c] : b;
                        a = x3[c] > b ? (int32_t)(o3 + c) : a;
                        b = x3[c] > b ? x3[c] : b;
                        yo[c] = b;
                        ao[c] = relu && !(b > 0.0f) ? -1 : a;
                    }
                    continue;
                }
                for (size_t c = 0; c < C; c++) {
                    yo[c] = x0[c];
                    ao[c] = (int32_t)(first + c);
                }
                for (int kh = 0; kh < g->k; kh++)
                    for (int kw = 0; kw < g->k; kw++) {
                        size_t off = ((size_t)(oh * g->stride + kh) * (size_t)g->w + (size_t)(ow * g->stride + kw)) * C;
                        const float *restrict xr = xs + off;
                        /* The first maximum wins, as in PyTorch; selects, not branches, so it vectorises
                         * (a plain loop: at -O3 EACH8's 8-loop is unrolled first and stays scalar). */
                        for (size_t c = 0; c < C; c++) {
                            int gt = xr[c] > yo[c];
                            yo[c] = gt ? xr[c] : yo[c];
                            ao[c] = gt ? (int32_t)(off + c) : ao[c];
                        }
                    }
                if (relu)
                    for (size_t c = 0; c < C; c++)
                        ao[c] = yo[c] > 0.0f ? ao[c] : -1;
            }
    }
}

TSR_HOT void tsr_compute_maxpool(const float *x, size_t n, const tsr_conv_geom_t *g, float *y, int32_t *argmax)
{
    maxpool(x, n, g, y, argmax, 0);
}

TSR_HOT void tsr_compute_maxpool_relu(const float *x, size_t n, const tsr_conv_geom_t *g, float *y, int32_t *argmax)
{
    maxpool(x, n, g, y, argmax, 1);
}

TSR_HOT void tsr_compute_maxpool_backward(const float *dy, const int32_t *argmax, size_t n, const tsr_conv_geom_t *g,
                                          float *dx)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    const size_t out_sample = (size_t)g->oh * (size_t)g->ow * C;
    if (g->stride == g->k && g->oh * g->k == g->h && g->ow * g->k == g->w) {
        /* Windows tile the input: every input element belongs to one window,
         * so each is written once (no zeroing pass, no scatter). */
        for (size_t s = 0; s < n; s++) {
            float *xs = dx + s * in_sample;
            for (int oh = 0; oh < g->oh; oh++)
                for (int ow = 0; ow < g->ow; ow++) {
                    size_t o = ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * C;
                    const float *restrict d = dy + o;
                    const int32_t *restrict a = argmax + o;
                    for (int kh = 0; kh < g->k; kh++)
                        for (int kw = 0; kw < g->k; kw++) {
                            size_t off = ((size_t)(oh * g->k + kh) * (size_t)g->w + (size_t)(ow * g->k + kw)) * C;
                            float *restrict xr = xs + off;
                            for (size_t c = 0; c < C; c++)
                                xr[c] = a[c] == (int32_t)(off + c) ? d[c] : 0.0f;
                        }
                }
        }
        return;
    }
    memset(dx, 0, n * in_sample * sizeof *dx);
    for (size_t s = 0; s < n; s++) {
        float *xs = dx + s * in_sample;
        const float *ds = dy + s * out_sample;
        const int32_t *as = argmax + s * out_sample;
        for (size_t i = 0; i < out_sample; i++)
            if (as[i] >= 0)
                xs[as[i]] += ds[i];
    }
}

TSR_HOT void tsr_compute_avgpool(const float *x, size_t n, const tsr_conv_geom_t *g, float *y)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    const float inv = 1.0f / (float)(g->k * g->k);
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                float *restrict yo = y + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * C;
                memset(yo, 0, C * sizeof *yo);
                for (int kh = 0; kh < g->k; kh++)
                    for (int kw = 0; kw < g->k; kw++) {
                        const float *restrict xr =
                            xs + ((size_t)(oh * g->stride + kh) * (size_t)g->w + (size_t)(ow * g->stride + kw)) * C;
                        for (size_t c = 0; c < C; c++) {
                            yo[c] += xr[c];
                        }
                    }
                for (size_t c = 0; c < C; c++) {
                    yo[c] *= inv;
                }
            }
    }
}

TSR_HOT void tsr_compute_avgpool_backward(const float *dy, size_t n, const tsr_conv_geom_t *g, float *dx)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    const float inv = 1.0f / (float)(g->k * g->k);
    memset(dx, 0, n * in_sample * sizeof *dx);
    for (size_t s = 0; s < n; s++) {
        float *xs = dx + s * in_sample;
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                const float *restrict d = dy + ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * C;
                for (int kh = 0; kh < g->k; kh++)
                    for (int kw = 0; kw < g->k; kw++) {
                        float *restrict xr =
                            xs + ((size_t)(oh * g->stride + kh) * (size_t)g->w + (size_t)(ow * g->stride + kw)) * C;
                        for (size_t c = 0; c < C; c++) {
                            xr[c] += d[c] * inv;
                        }
                    }
            }
    }
}

/* Plain loops below, not EACH8: these files build at -O3, where EACH8's
 * 8-loop is unrolled before the vectoriser sees it. Each column still sums
 * its rows in order, so results do not depend on the vector width. */
typedef float cs_v8u __attribute__((vector_size(32), aligned(4))); /* unaligned loads */
typedef double cs_v8d __attribute__((vector_size(64)));

/* Both column sums of NB*8 columns held in registers over every row (the
 * loops below reload and store them each row: 13-17 GB/s at 32 columns);
 * each column still sums its rows in order, so the bits are the loops'. */
static inline __attribute__((always_inline)) void colsums_regs(const float *x, size_t rows, int nb,
                                                               const double *center, double *sum, double *sumsq)
{
    cs_v8d s[8], q[8], c[8];
    for (int b = 0; b < nb; b++) {
        s[b] = q[b] = (cs_v8d){0};
        for (int i = 0; i < 8; i++)
            c[b][i] = center ? center[8 * b + i] : 0.0;
    }
    const size_t n = (size_t)nb * 8;
    for (size_t r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            cs_v8d v = __builtin_convertvector(*(const cs_v8u *)(x + r * n + 8 * (size_t)b), cs_v8d), d = v - c[b];
            s[b] += v;
            q[b] += center ? d * d : v * v;
        }
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 8; i++) {
            sum[8 * b + i] = s[b][i];
            sumsq[8 * b + i] = q[b][i];
        }
}

/* restrict, and both sums in one loop: with sum and sumsq free to alias,
 * GCC reloaded them every row. */
TSR_HOT void tsr_compute_colsums(const float *x, size_t rows, size_t n, const double *restrict center,
                                 double *restrict sum, double *restrict sumsq)
{
    if (sumsq && (n == 32 || n == 64 || n == 16)) { /* batch norm's usual channel counts */
        if (n == 16)
            colsums_regs(x, rows, 2, center, sum, sumsq);
        else if (n == 32)
            colsums_regs(x, rows, 4, center, sum, sumsq);
        else
            colsums_regs(x, rows, 8, center, sum, sumsq);
        return;
    }
    memset(sum, 0, n * sizeof *sum);
    if (sumsq)
        memset(sumsq, 0, n * sizeof *sumsq);
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * n;
        if (!sumsq)
            for (size_t j = 0; j < n; j++)
                sum[j] += (double)xr[j];
        else if (center)
            for (size_t j = 0; j < n; j++) {
                double v = (double)xr[j], d = v - center[j];
                sum[j] += v;
                sumsq[j] += d * d;
            }
        else
            for (size_t j = 0; j < n; j++) {
                double v = (double)xr[j];
                sum[j] += v;
                sumsq[j] += v * v;
            }
    }
}

TSR_HOT void tsr_compute_affine_cols(const float *x, size_t rows, size_t n, const float *mean, const float *scale,
                                     const float *shift, float *y)
{
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * n;
        float *restrict yr = y + r * n;
        for (size_t j = 0; j < n; j++)
            yr[j] = (xr[j] - mean[j]) * scale[j] + shift[j];
    }
}

TSR_HOT void tsr_compute_affine_cols_relu(const float *x, size_t rows, size_t n, const float *mean, const float *scale,
                                          const float *shift, float *y)
{
    for (size_t r = 0; r < rows; r++) {
        const float *restrict xr = x + r * n;
        float *restrict yr = y + r * n;
        for (size_t j = 0; j < n; j++) {
            float v = (xr[j] - mean[j]) * scale[j] + shift[j];
            yr[j] = v > 0.0f ? v : 0.0f;
        }
    }
}
