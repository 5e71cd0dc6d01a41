/* SPDX-License-Identifier: BSD-3-Clause */
/* The GPU kernels of the layer graph's built-in layers (internal: for
 * src/model/layers, not installed): the CPU functions of tessera/compute.h
 * and of the layer files on device memory, channels last (NHWC), the same
 * conventions as tessera/compute.h's tsr_gpu_* (asynchronous on the
 * handle's stream, device pointers named d*, TSR_ENOTSUP without CUDA).
 * Gathers instead of scatters, and fixed summation orders, so every result
 * is bit-reproducible run to run; the element-wise ones, pooling, im2col,
 * col2im, gap and embed sum in the CPU's order and give its bits. */
#ifndef TSR_COMPUTE_GPU_LAYERS_H
#define TSR_COMPUTE_GPU_LAYERS_H
#include "compute/gpu_train.h"

#ifdef __cplusplus
extern "C" {
#endif

/* tsr_compute_gemm_ld on the device (row-major leading dimensions). */
int tsr_gpu_gemm_ld(tsr_gpu_t *g, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *da,
                    size_t lda, const float *db, size_t ldb, float beta, float *dc, size_t ldc);
/* y = act(x) for every activation (gelu, silu too), y may be x; and
 * dx = dy * act'(x) (dx may be dy): tsr_compute_act_x and its backward. */
int tsr_gpu_act_x(tsr_gpu_t *g, tsr_act_t act, const float *dx, float *dy, size_t len);
int tsr_gpu_act_x_backward(tsr_gpu_t *g, tsr_act_t act, const float *dx, const float *ddy, float *ddx, size_t len);
/* c = a + b element-wise (c may be a or b): the residual add. */
int tsr_gpu_add(tsr_gpu_t *g, const float *da, const float *db, float *dc, size_t n);
/* dropout: out[i] = in[i] * scale where the top 32 bits of
 * tsr_rng_counter(key, i) are at or above thr, else 0 (dropout.c's mask). */
int tsr_gpu_dropout(tsr_gpu_t *g, uint64_t key, uint32_t thr, float scale, const float *din, float *dout, size_t len);
/* embed: y[i, :] = w[ids[i], :] for ntok token ids (floats, checked by the
 * caller); backward adds dy's rows into dgw[ids[i], :] in token order
 * (dgw zeroed first, here). */
int tsr_gpu_embed(tsr_gpu_t *g, const float *dids, const float *dw, size_t ntok, size_t d, float *dy);
int tsr_gpu_embed_backward(tsr_gpu_t *g, const float *dids, const float *ddy, size_t ntok, size_t d, size_t vocab,
                           float *dgw);

/* Convolution lowering and pooling: tsr_compute_im2col, col2im (which here
 * writes dx's channels [c0, c0+cg) rather than adding: no zeroing needed),
 * maxpool (argmax per output, each maximum's offset in its sample),
 * avgpool, and their backward passes. */
int tsr_gpu_im2col(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, int c0, int cg, float *dcol);
int tsr_gpu_col2im(tsr_gpu_t *g, const float *dcol, size_t n, const tsr_conv_geom_t *geom, int c0, int cg, float *ddx);
int tsr_gpu_maxpool(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, float *dy, int32_t *dargmax);
int tsr_gpu_maxpool_backward(tsr_gpu_t *g, const float *ddy, const int32_t *dargmax, size_t n,
                             const tsr_conv_geom_t *geom, float *ddx);
int tsr_gpu_avgpool(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, float *dy);
int tsr_gpu_avgpool_backward(tsr_gpu_t *g, const float *ddy, size_t n, const tsr_conv_geom_t *geom, float *ddx);
/* Global average pooling of x[n, hw, C] into y[n, C], and back. */
int tsr_gpu_gap(tsr_gpu_t *g, const float *dx, size_t n, size_t hw, size_t C, float *dy);
int tsr_gpu_gap_backward(tsr_gpu_t *g, const float *ddy, size_t n, size_t hw, size_t C, float *ddx);

/* Normalisation. Column sums of x[rows, n] in double (tsr_compute_colsums):
 * dsum, and unless dsumsq is NULL the sum of (x - center)^2 (dcenter NULL:
 * 0). colsums_dot: dsdy = column sums of dy, dsdx = of dy * (x - mean). */
int tsr_gpu_colsums(tsr_gpu_t *g, const float *dx, size_t rows, size_t n, const double *dcenter, double *dsum,
                    double *dsumsq);
int tsr_gpu_colsums_dot(tsr_gpu_t *g, const float *ddy, const float *dx, const float *dmean, size_t rows, size_t n,
                        double *dsdy, double *dsdx);
/* Batch norm's apply, bn.c's expressions: training (dvar NULL) y = (x -
 * mean) * (gamma * invstd) + beta; evaluation y = (x - mean) * (gamma /
 * sqrtf(var + eps)) + beta with the running mean and variance. */
int tsr_gpu_bn_apply(tsr_gpu_t *g, const float *dx, size_t rows, size_t C, const float *dmean, const float *dinvstd,
                     const float *dvar, float eps, const float *dgamma, const float *dbeta, float *dy);
/* dgamma = sdx * invstd, dbeta = sdy from the sums (dsums: sdy [C] then sdx [C]). */
int tsr_gpu_bn_grads(tsr_gpu_t *g, const double *dsums, const float *dinvstd, size_t C, float *dgrads);
/* dx = a (dy - b - (x - mean) k), a = gamma invstd, b = sdy / N, k = sdx / N invstd^2. */
int tsr_gpu_bn_dx(tsr_gpu_t *g, const float *dx, const float *ddy, size_t rows, size_t C, const float *dmean,
                  const float *dinvstd, const float *dgamma, const double *dsums, double N, float *ddx);
/* Layer norm over each of n samples of f features (ln.c): the mean and
 * 1/std of each sample into dmean, dinvstd. Backward: dgrads = dgamma [f]
 * then dbeta [f]; dtmp holds n*f floats; ddx may be NULL. */
int tsr_gpu_ln_forward(tsr_gpu_t *g, const float *dx, size_t n, size_t f, double eps, const float *dgamma,
                       const float *dbeta, float *dmean, float *dinvstd, float *dy);
int tsr_gpu_ln_backward(tsr_gpu_t *g, const float *dx, const float *ddy, size_t n, size_t f, const float *dgamma,
                        const float *dmean, const float *dinvstd, float *dgrads, float *ddx);

#ifdef __cplusplus
}
#endif
#endif
