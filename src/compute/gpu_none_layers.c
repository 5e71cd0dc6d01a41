/* SPDX-License-Identifier: BSD-3-Clause */
/* compute/gpu_layers.h in a build without CUDA: every call fails with
 * TSR_ENOTSUP, as gpu_none.c's. */
#ifndef TSR_HAVE_CUDA
#include "compute/gpu_layers.h"
#include "tessera/error.h"

#define NOCUDA(fn)                                                                                                     \
    tsr_error_set(TSR_ENOTSUP, "%s: built without CUDA (configure with TESSERA_WITH_CUDA=ON and the CUDA Toolkit)", fn)

int tsr_gpu_gemm_ld(tsr_gpu_t *g, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *da,
                    size_t lda, const float *db, size_t ldb, float beta, float *dc, size_t ldc)
{
    return NOCUDA("tsr_gpu_gemm_ld");
}

int tsr_gpu_act_x(tsr_gpu_t *g, tsr_act_t act, const float *dx, float *dy, size_t len)
{
    return NOCUDA("tsr_gpu_act_x");
}

int tsr_gpu_act_x_backward(tsr_gpu_t *g, tsr_act_t act, const float *dx, const float *ddy, float *ddx, size_t len)
{
    return NOCUDA("tsr_gpu_act_x_backward");
}

int tsr_gpu_add(tsr_gpu_t *g, const float *da, const float *db, float *dc, size_t n) { return NOCUDA("tsr_gpu_add"); }

int tsr_gpu_dropout(tsr_gpu_t *g, uint64_t key, uint32_t thr, float scale, const float *din, float *dout, size_t len)
{
    return NOCUDA("tsr_gpu_dropout");
}

int tsr_gpu_embed(tsr_gpu_t *g, const float *dids, const float *dw, size_t ntok, size_t d, float *dy)
{
    return NOCUDA("tsr_gpu_embed");
}

int tsr_gpu_embed_backward(tsr_gpu_t *g, const float *dids, const float *ddy, size_t ntok, size_t d, size_t vocab,
                           float *dgw)
{
    return NOCUDA("tsr_gpu_embed_backward");
}

int tsr_gpu_im2col(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, int c0, int cg, float *dcol)
{
    return NOCUDA("tsr_gpu_im2col");
}

int tsr_gpu_col2im(tsr_gpu_t *g, const float *dcol, size_t n, const tsr_conv_geom_t *geom, int c0, int cg, float *ddx)
{
    return NOCUDA("tsr_gpu_col2im");
}

int tsr_gpu_maxpool(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, float *dy, int32_t *dargmax)
{
    return NOCUDA("tsr_gpu_maxpool");
}

int tsr_gpu_maxpool_backward(tsr_gpu_t *g, const float *ddy, const int32_t *dargmax, size_t n,
                             const tsr_conv_geom_t *geom, float *ddx)
{
    return NOCUDA("tsr_gpu_maxpool_backward");
}

int tsr_gpu_avgpool(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, float *dy)
{
    return NOCUDA("tsr_gpu_avgpool");
}

int tsr_gpu_avgpool_backward(tsr_gpu_t *g, const float *ddy, size_t n, const tsr_conv_geom_t *geom, float *ddx)
{
    return NOCUDA("tsr_gpu_avgpool_backward");
}

int tsr_gpu_gap(tsr_gpu_t *g, const float *dx, size_t n, size_t hw, size_t C, float *dy)
{
    return NOCUDA("tsr_gpu_gap");
}

int tsr_gpu_gap_backward(tsr_gpu_t *g, const float *ddy, size_t n, size_t hw, size_t C, float *ddx)
{
    return NOCUDA("tsr_gpu_gap_backward");
}

int tsr_gpu_colsums(tsr_gpu_t *g, const float *dx, size_t rows, size_t n, const double *dcenter, double *dsum,
                    double *dsumsq)
{
    return NOCUDA("tsr_gpu_colsums");
}

int tsr_gpu_colsums_dot(tsr_gpu_t *g, const float *ddy, const float *dx, const float *dmean, size_t rows, size_t n,
                        double *dsdy, double *dsdx)
{
    return NOCUDA("tsr_gpu_colsums_dot");
}

int tsr_gpu_bn_apply(tsr_gpu_t *g, const float *dx, size_t rows, size_t C, const float *dmean, const float *dinvstd,
                     const float *dvar, float eps, const float *dgamma, const float *dbeta, float *dy)
{
    return NOCUDA("tsr_gpu_bn_apply");
}

int tsr_gpu_bn_grads(tsr_gpu_t *g, const double *dsums, const float *dinvstd, size_t C, float *dgrads)
{
    return NOCUDA("tsr_gpu_bn_grads");
}

int tsr_gpu_bn_dx(tsr_gpu_t *g, const float *dx, const float *ddy, size_t rows, size_t C, const float *dmean,
                  const float *dinvstd, const float *dgamma, const double *dsums, double N, float *ddx)
{
    return NOCUDA("tsr_gpu_bn_dx");
}

int tsr_gpu_ln_forward(tsr_gpu_t *g, const float *dx, size_t n, size_t f, double eps, const float *dgamma,
                       const float *dbeta, float *dmean, float *dinvstd, float *dy)
{
    return NOCUDA("tsr_gpu_ln_forward");
}

int tsr_gpu_ln_backward(tsr_gpu_t *g, const float *dx, const float *ddy, size_t n, size_t f, const float *dgamma,
                        const float *dmean, const float *dinvstd, float *dgrads, float *ddx)
{
    return NOCUDA("tsr_gpu_ln_backward");
}

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int tsr_gpu_none_layers_empty_t;
#endif
