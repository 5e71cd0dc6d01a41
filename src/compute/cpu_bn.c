/* SPDX-License-Identifier: BSD-3-Clause */
/* Batch norm's backward kernels: the per-column sums of dy and of
 * dy * (x - mean) in double, rows in order, then dx. For 16, 32 and 64
 * columns (batch norm's usual channel counts) both sums stay in registers
 * over every row, as tsr_compute_colsums does; each column still adds its
 * rows in the same order, so the bits are the plain loops'. After a tiling
 * maxpool (tsr_compute_bn_grad_*_pooled) each position's gradient is read
 * from the pooled gradient and the argmax as it goes. */
#include "tessera/compute.h"
#include "common/vec.h"

#include <string.h>

typedef float bn_v8u __attribute__((vector_size(32), aligned(4))); /* unaligned loads */
typedef double bn_v8d __attribute__((vector_size(64)));

/* Sums over NB*8 columns in registers: s += dz, q += dz * (x - m). */
typedef struct sums {
    bn_v8d s[8], q[8], m[8];
} sums_t;

static inline __attribute__((always_inline)) void sums_init(sums_t *a, int nb, const float *mean)
{
    for (int b = 0; b < nb; b++) {
        a->s[b] = a->q[b] = (bn_v8d){0};
        for (int i = 0; i < 8; i++)
            a->m[b][i] = (double)mean[8 * b + i];
    }
}

static inline __attribute__((always_inline)) void sums_row(sums_t *a, int nb, const float *dz, const float *xr)
{
    for (int b = 0; b < nb; b++) {
        bn_v8d d = __builtin_convertvector(*(const bn_v8u *)(dz + 8 * b), bn_v8d);
        bn_v8d v = __builtin_convertvector(*(const bn_v8u *)(xr + 8 * b), bn_v8d);
        a->s[b] += d;
        a->q[b] += d * (v - a->m[b]);
    }
}

static inline __attribute__((always_inline)) void sums_out(const sums_t *a, int nb, double *sdy, double *sdx)
{
    for (int b = 0; b < nb; b++)
        for (int i = 0; i < 8; i++) {
            sdy[8 * b + i] = a->s[b][i];
            sdx[8 * b + i] = a->q[b][i];
        }
}

/* The plain loop's row: sdy[j] += dz[j], sdx[j] += dz[j] * (x[j] - mean[j]). */
static inline __attribute__((always_inline)) void plain_row(size_t n, const float *restrict dz,
                                                            const float *restrict xr, const float *mean,
                                                            double *restrict sdy, double *restrict sdx)
{
    for (size_t j = 0; j < n; j++) {
        sdy[j] += (double)dz[j];
        sdx[j] += (double)dz[j] * ((double)xr[j] - (double)mean[j]);
    }
}

/* Rows r of x and dz, both n wide, summed (dz may be computed per row by
 * the caller; here it is dy itself). */
static inline __attribute__((always_inline)) void grad_sums(const float *x, const float *dy, size_t rows, size_t n,
                                                            const float *mean, double *sdy, double *sdx)
{
    int nb = n == 16 ? 2 : n == 32 ? 4 : n == 64 ? 8 : 0;
    if (nb) {
        sums_t a;
        sums_init(&a, nb, mean);
        for (size_t r = 0; r < rows; r++)
            sums_row(&a, nb, dy + r * n, x + r * n);
        sums_out(&a, nb, sdy, sdx);
        return;
    }
    memset(sdy, 0, n * sizeof *sdy);
    memset(sdx, 0, n * sizeof *sdx);
    for (size_t r = 0; r < rows; r++)
        plain_row(n, dy + r * n, x + r * n, mean, sdy, sdx);
}

TSR_HOT void tsr_compute_bn_grad_sums(const float *x, const float *dy, size_t rows, size_t n, const float *mean,
                                      double *restrict sdy, double *restrict sdx)
{
    grad_sums(x, dy, rows, n, mean, sdy, sdx);
}

TSR_HOT void tsr_compute_bn_grad_sums_relu(const float *x, float *dy, const float *y, size_t rows, size_t n,
                                           const float *mean, double *restrict sdy, double *restrict sdx)
{
    for (size_t r = 0; r < rows; r++) { /* the mask first, over all of dy (in place) */
        const float *restrict yr = y + r * n;
        float *restrict dr = dy + r * n;
        for (size_t j = 0; j < n; j++)
            dr[j] = yr[j] > 0.0f ? dr[j] : 0.0f;
    }
    grad_sums(x, dy, rows, n, mean, sdy, sdx);
}

TSR_HOT void tsr_compute_bn_grad_input(const float *x, const float *dy, size_t rows, size_t n, const float *mean,
                                       const float *a, const float *b, const float *k, float *dx)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * n, *dr = dy + r * n;
        float *o = dx + r * n;
        for (size_t j = 0; j < n; j++)
            o[j] = a[j] * (dr[j] - b[j] - (xr[j] - mean[j]) * k[j]);
    }
}

/* Position (h, w)'s gradient of sample s after a tiling maxpool: per
 * column, the window's pooled gradient where its argmax points here, else
 * 0 (what tsr_compute_maxpool_backward writes there). */
static inline __attribute__((always_inline)) void pooled_row(const float *dy, const int32_t *argmax,
                                                             const tsr_conv_geom_t *g, size_t s, int h, int w,
                                                             float *restrict dz)
{
    const size_t C = (size_t)g->c;
    size_t o = ((s * (size_t)g->oh + (size_t)(h / g->k)) * (size_t)g->ow + (size_t)(w / g->k)) * C;
    const float *restrict d = dy + o;
    const int32_t *restrict a = argmax + o;
    int32_t off = (int32_t)(((size_t)h * (size_t)g->w + (size_t)w) * C);
    for (size_t c = 0; c < C; c++)
        dz[c] = a[c] == off + (int32_t)c ? d[c] : 0.0f;
}

enum { POOLED_MAX_C = TSR_BN_POOLED_MAX_C }; /* the row buffer on the stack */

static inline __attribute__((always_inline)) void pooled_sums(const float *x, const float *dy, const int32_t *argmax,
                                                              size_t samples, const tsr_conv_geom_t *g,
                                                              const float *mean, int nb, double *sdy, double *sdx)
{
    const size_t C = (size_t)g->c;
    float dz[POOLED_MAX_C];
    sums_t acc;
    if (nb)
        sums_init(&acc, nb, mean);
    else {
        memset(sdy, 0, C * sizeof *sdy);
        memset(sdx, 0, C * sizeof *sdx);
    }
    for (size_t s = 0; s < samples; s++)
        for (int h = 0; h < g->h; h++)
            for (int w = 0; w < g->w; w++) {
                const float *xr = x + ((s * (size_t)g->h + (size_t)h) * (size_t)g->w + (size_t)w) * C;
                pooled_row(dy, argmax, g, s, h, w, dz);
                if (nb)
                    sums_row(&acc, nb, dz, xr);
                else
                    plain_row(C, dz, xr, mean, sdy, sdx);
            }
    if (nb)
        sums_out(&acc, nb, sdy, sdx);
}

TSR_HOT void tsr_compute_bn_grad_sums_pooled(const float *x, const float *dy, const int32_t *argmax, size_t samples,
                                             const tsr_conv_geom_t *g, const float *mean, double *restrict sdy,
                                             double *restrict sdx)
{
    if (g->c == 16)
        pooled_sums(x, dy, argmax, samples, g, mean, 2, sdy, sdx);
    else if (g->c == 32)
        pooled_sums(x, dy, argmax, samples, g, mean, 4, sdy, sdx);
    else if (g->c == 64)
        pooled_sums(x, dy, argmax, samples, g, mean, 8, sdy, sdx);
    else
        pooled_sums(x, dy, argmax, samples, g, mean, 0, sdy, sdx);
}

TSR_HOT void tsr_compute_bn_grad_input_pooled(const float *x, const float *dy, const int32_t *argmax, size_t samples,
                                              const tsr_conv_geom_t *g, const float *mean, const float *a,
                                              const float *b, const float *k, float *dx)
{
    const size_t C = (size_t)g->c;
    float dz[POOLED_MAX_C];
    for (size_t s = 0; s < samples; s++)
        for (int h = 0; h < g->h; h++)
            for (int w = 0; w < g->w; w++) {
                size_t r = ((s * (size_t)g->h + (size_t)h) * (size_t)g->w + (size_t)w) * C;
                const float *restrict xr = x + r;
                float *restrict o = dx + r;
                pooled_row(dy, argmax, g, s, h, w, dz);
                for (size_t j = 0; j < C; j++)
                    o[j] = a[j] * (dz[j] - b[j] - (xr[j] - mean[j]) * k[j]);
            }
}

/* relu((x - mean) * scale + shift), as tsr_compute_affine_cols_relu. */
static inline __attribute__((always_inline)) float affine_relu(float x, float m, float sc, float sh)
{
    float v = (x - m) * sc + sh;
    return v > 0.0f ? v : 0.0f;
}

TSR_HOT void tsr_compute_affine_relu_maxpool(const float *x, size_t samples, const tsr_conv_geom_t *g,
                                             const float *restrict mean, const float *restrict scale,
                                             const float *restrict shift, float *y, int32_t *argmax)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    for (size_t s = 0; s < samples; s++)
        for (int oh = 0; oh < g->oh; oh++)
            for (int ow = 0; ow < g->ow; ow++) {
                size_t o = ((s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow + (size_t)ow) * C;
                float *restrict yo = y + o;
                int32_t *restrict ao = argmax + o;
                size_t first = ((size_t)(oh * g->k) * (size_t)g->w + (size_t)(ow * g->k)) * C;
                const float *restrict xs = x + s * in_sample;
                if (g->k == 2) { /* the maxpool's 2x2 chain, on the normalised values, in registers */
                    const size_t o1 = first + C, o2 = first + (size_t)g->w * C, o3 = o2 + C;
                    for (size_t c = 0; c < C; c++) {
                        float b = affine_relu(xs[first + c], mean[c], scale[c], shift[c]);
                        float v1 = affine_relu(xs[o1 + c], mean[c], scale[c], shift[c]);
                        float v2 = affine_relu(xs[o2 + c], mean[c], scale[c], shift[c]);
                        float v3 = affine_relu(xs[o3 + c], mean[c], scale[c], shift[c]);
                        int32_t a = (int32_t)(first + c);
                        a = v1 > b ? (int32_t)(o1 + c) : a;
                        b = v1 > b ? v1 : b;
                        a = v2 > b ? (int32_t)(o2 + c) : a;
                        b = v2 > b ? v2 : b;
                        a = v3 > b ? (int32_t)(o3 + c) : a;
                        b = v3 > b ? v3 : b;
                        yo[c] = b;
                        ao[c] = b > 0.0f ? a : -1; /* the ReLU's mask: no gradient through a zero maximum */
                    }
                    continue;
                }
                for (size_t c = 0; c < C; c++) {
                    yo[c] = affine_relu(xs[first + c], mean[c], scale[c], shift[c]);
                    ao[c] = (int32_t)(first + c);
                }
                for (int kh = 0; kh < g->k; kh++) /* row-major, the first maximum winning */
                    for (int kw = 0; kw < g->k; kw++) {
                        size_t off = ((size_t)(oh * g->k + kh) * (size_t)g->w + (size_t)(ow * g->k + kw)) * C;
                        for (size_t c = 0; c < C; c++) {
                            float v = affine_relu(xs[off + c], mean[c], scale[c], shift[c]);
                            int gt = v > yo[c];
                            yo[c] = gt ? v : yo[c];
                            ao[c] = gt ? (int32_t)(off + c) : ao[c];
                        }
                    }
                for (size_t c = 0; c < C; c++)
                    ao[c] = yo[c] > 0.0f ? ao[c] : -1;
            }
}
