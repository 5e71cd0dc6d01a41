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
static inline __attribute__((always_inline)) void pixel(const float *xs, size_t C, const float *wt, const float *bias,
                                                        size_t M, tsr_act_t act, size_t nt, const uint32_t *xoff,
                                                        const uint32_t *woff, float *restrict yr)
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
static inline __attribute__((always_inline)) void one(const float *xs, size_t C, const float *wt, const float *bias,
                                                      size_t M, tsr_act_t act, size_t nt, const uint32_t *xoff,
                                                      const uint32_t *woff, float *restrict yr)
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

/* What the output rows of one call share: every pixel's taps, and the
 * columns whose every kw tap is inside the input (they share one tap set,
 * shifted by stride*C per column: PB of them run at once). */
typedef struct rows {
    const tsr_conv_geom_t *g;
    size_t C, M, kk, step; /* kk: taps per pixel at most (k*k) */
    const uint32_t *tab, *nts;
    int clo, chi;
} rows_t;

static rows_t rows_of(const tsr_conv_geom_t *g, size_t M, uint32_t *tab)
{
    rows_t r = {g, (size_t)g->c, M, (size_t)g->k * (size_t)g->k, (size_t)g->stride * (size_t)g->c, tab, NULL, 0, g->ow};
    size_t npix = (size_t)g->oh * (size_t)g->ow;
    uint32_t *nts = tab + 2 * r.kk * npix;
    for (int oh = 0, p = 0; oh < g->oh; oh++)
        for (int ow = 0; ow < g->ow; ow++, p++)
            nts[p] = (uint32_t)taps(g, oh, ow, tab + (size_t)p * 2 * r.kk, tab + (size_t)p * 2 * r.kk + r.kk);
    r.nts = nts;
    while (r.clo < r.chi && r.clo * g->stride - g->pad < 0)
        r.clo++;
    while (r.chi > r.clo && (r.chi - 1) * g->stride - g->pad + (g->k - 1) * g->dil >= g->w)
        r.chi--;
    if (M % OB)
        r.clo = r.chi = 0; /* the blocks need whole runs of OB outputs */
    return r;
}

/* Output row oh of one sample (xs) into yrow[ow * M]. */
static inline __attribute__((always_inline)) void out_row(const rows_t *r, const float *xs, const float *wt,
                                                          const float *bias, tsr_act_t act, int oh, float *yrow)
{
    const size_t M = r->M, kk2 = 2 * r->kk, p0 = (size_t)oh * (size_t)r->g->ow;
    const uint32_t *tab = r->tab, *nts = r->nts;
    size_t p = p0, row_end = p0 + (size_t)r->g->ow, lo = p0 + (size_t)r->clo, hi = p0 + (size_t)r->chi;
    for (; p < lo; p++)
        one(xs, r->C, wt, bias, M, act, nts[p], tab + p * kk2, tab + p * kk2 + r->kk, yrow + (p - p0) * M);
    for (; p + PB <= hi; p += PB)
        pixels(PB, xs, r->C, r->step, wt, bias, M, act, nts[p], tab + p * kk2, tab + p * kk2 + r->kk,
               yrow + (p - p0) * M);
    for (; p < row_end; p++)
        one(xs, r->C, wt, bias, M, act, nts[p], tab + p * kk2, tab + p * kk2 + r->kk, yrow + (p - p0) * M);
}

TSR_HOT void tsr_compute_conv_direct(const float *x, size_t n, const tsr_conv_geom_t *g, const float *wt,
                                     const float *bias, size_t M, tsr_act_t act, uint32_t *tab, float *y)
{
    const size_t C = (size_t)g->c, in_sample = (size_t)g->h * (size_t)g->w * C;
    const size_t npix = (size_t)g->oh * (size_t)g->ow;
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
    rows_t r = rows_of(g, M, tab);
    for (size_t s = 0; s < n; s++)
        for (int oh = 0; oh < g->oh; oh++)
            out_row(&r, x + s * in_sample, wt, bias, act, oh, y + (s * npix + (size_t)oh * (size_t)g->ow) * M);
}

/* The output columns [lo, hi) whose tap at column offset off (kw*dil - pad)
 * falls inside the input. */
static inline void tap_cols(const tsr_conv_geom_t *g, int off, int *lo, int *hi)
{
    *lo = 0, *hi = g->ow;
    while (*lo < *hi && *lo * g->stride + off < 0)
        (*lo)++;
    while (*hi > *lo && (*hi - 1) * g->stride + off >= g->w)
        (*hi)--;
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
        off[kw] = kw * g->dil - g->pad;
        tap_cols(g, off[kw], &lo[kw], &hi[kw]);
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
static inline __attribute__((always_inline)) void bias_row(const float *restrict drow, size_t ow, size_t M,
                                                           float *restrict gb)
{
    for (size_t p = 0; p < ow; p++)
        for (size_t o = 0; o < M; o++)
            gb[o] += drow[p * M + o];
}

/* Output row oh of one sample: its share of the weight gradient (and of
 * the bias gradient where gb is not NULL), from its dy row drow[ow * M]. */
static inline __attribute__((always_inline)) void wgrad_out_row(const tsr_conv_geom_t *g, const float *xs,
                                                                const float *drow, int oh, size_t M, float *gwt,
                                                                float *gb)
{
    const size_t C = (size_t)g->c;
    if (gb)
        bias_row(drow, (size_t)g->ow, M, gb);
    /* 3-wide windows with whole runs of outputs: a row's three taps at once. */
    if (g->k == 3 && M % OB == 0) {
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
        return;
    }
    for (int kh = 0; kh < g->k; kh++) {
        int ih = oh * g->stride - g->pad + kh * g->dil;
        if (ih < 0 || ih >= g->h)
            continue;
        for (int kw = 0; kw < g->k; kw++) {
            int off = kw * g->dil - g->pad, lo, hi;
            tap_cols(g, off, &lo, &hi);
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

TSR_HOT void tsr_compute_conv_direct_wgrad(const float *x, const float *dy, size_t n, const tsr_conv_geom_t *g,
                                           size_t M, float *gwt, float *gb)
{
    const size_t in_sample = (size_t)g->h * (size_t)g->w * (size_t)g->c;
    memset(gwt, 0, (size_t)g->k * (size_t)g->k * (size_t)g->c * M * sizeof *gwt);
    if (gb)
        memset(gb, 0, M * sizeof *gb);
    /* One output row at a time (its dy stays in L1), each gradient element
     * summing that row's pixels in order; over the rows, samples then rows:
     * a fixed order, whatever the batch. */
    for (size_t s = 0; s < n; s++)
        for (int oh = 0; oh < g->oh; oh++)
            wgrad_out_row(g, x + s * in_sample, dy + (s * (size_t)g->oh + (size_t)oh) * (size_t)g->ow * M, oh, M, gwt,
                          gb);
}

/* ---- With the ReLU and a k x k max pool of stride k that tiles the output ---- */

TSR_HOT void tsr_compute_conv_direct_pool(const float *x, size_t n, const tsr_conv_geom_t *g, const float *wt,
                                          const float *bias, size_t M, int k, uint32_t *tab, float *rows, float *y,
                                          int32_t *argmax)
{
    const size_t in_sample = (size_t)g->h * (size_t)g->w * (size_t)g->c, OW = (size_t)g->ow;
    const int ph = g->oh / k, pw = g->ow / k;
    /* a row of windows' k conv rows, pooled as one k-row image of M channels */
    const tsr_conv_geom_t band = {k, g->ow, (int)M, k, k, 0, 1, 1, pw};
    rows_t r = rows_of(g, M, tab);
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * in_sample;
        for (int py = 0; py < ph; py++) {
            /* the window's k rows, in L1, then pooled by the maxpool's own kernel */
            for (int kh = 0; kh < k; kh++)
                out_row(&r, xs, wt, bias, TSR_ACT_RELU, py * k + kh, rows + (size_t)kh * OW * M);
            size_t o = (s * (size_t)ph + (size_t)py) * (size_t)pw * M;
            int32_t *ao = argmax + o;
            tsr_compute_maxpool_relu(rows, 1, &band, y + o, ao);
            /* the band's offsets into the conv's output sample; -1 stays */
            const int32_t base = (int32_t)((size_t)(py * k) * OW * M);
            for (size_t j = 0; j < (size_t)pw * M; j++)
                ao[j] += ao[j] >= 0 ? base : 0;
        }
    }
}

TSR_HOT void tsr_compute_conv_direct_wgrad_pool(const float *x, const float *dy, const int32_t *argmax, size_t n,
                                                const tsr_conv_geom_t *g, size_t M, int k, float *rows, float *gwt,
                                                float *gb)
{
    const size_t in_sample = (size_t)g->h * (size_t)g->w * (size_t)g->c, OW = (size_t)g->ow;
    const int ph = g->oh / k, pw = g->ow / k;
    const size_t band = (size_t)k * OW * M; /* the k output rows of one row of windows */
    memset(gwt, 0, (size_t)g->k * (size_t)g->k * (size_t)g->c * M * sizeof *gwt);
    if (gb)
        memset(gb, 0, M * sizeof *gb);
    for (size_t s = 0; s < n; s++)
        for (int py = 0; py < ph; py++) {
            /* tsr_compute_maxpool_backward's values for these k rows (each
             * element its window's gradient or 0), then the rows in order:
             * the sums of the unfused pair, bit for bit */
            memset(rows, 0, band * sizeof *rows);
            size_t o = (s * (size_t)ph + (size_t)py) * (size_t)pw * M, base = (size_t)(py * k) * OW * M;
            /* branch-free (the ReLU's mask is a coin flip): a window that
             * passes nothing writes the slot after the rows */
            for (size_t j = 0; j < (size_t)pw * M; j++)
                rows[argmax[o + j] >= 0 ? (size_t)argmax[o + j] - base : band] = dy[o + j];
            for (int kh = 0; kh < k; kh++)
                wgrad_out_row(g, x + s * in_sample, rows + (size_t)kh * OW * M, py * k + kh, M, gwt, gb);
        }
}
