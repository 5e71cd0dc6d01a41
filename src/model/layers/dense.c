/* SPDX-License-Identifier: BSD-3-Clause */
/* dense(out): y = x W^T + b over the flattened sample, W [out, in] then b
 * [out] in the flat buffer; the activation after it, when it can run in
 * place, is applied in the same pass as the bias (fused_act). */
#include "model/layers/layers.h"

#include <math.h>

static int dense_shape(tsr_layer_t *l)
{
    double out = l->arg[0];
    if (out < 1 || out > (1 << 24) || out != floor(out))
        return tsr_error_set(TSR_EINVAL, "dense(%g): expected a width of 1 to %d", out, 1 << 24);
    size_t in = shape_size(l->in);
    l->out = (tsr_shape_t){(int)out, 1, 1};
    l->nparams = in * (size_t)out + (size_t)out;
    return TSR_OK;
}

static void dense_init(tsr_layer_t *l, tsr_rng_t *r)
{
    size_t in = shape_size(l->in);
    layer_uniform(l->params, l->nparams, 1.0 / sqrt((double)in), r);
}

static int dense_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t in = shape_size(l->in), out = (size_t)l->out.c;
    const float *w = l->params;
    tsr_compute_gemm(0, 1, n, out, in, 1.0f, x, w, 0.0f, y);
    tsr_compute_bias_act(y, w + in * out, n, out, (tsr_act_t)l->fused_act);
    return TSR_OK;
}

static int dense_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                          float *dx, size_t n)
{
    size_t in = shape_size(l->in), out = (size_t)l->out.c;
    float *gb = l->grads + in * out;
    /* dy *= act'(y) and db = (or +=, accumulating) the column sums of dy, in one pass */
    if (run->accumulate)
        tsr_compute_act_bias_grad_add((tsr_act_t)l->fused_act, y, dy, n, out, gb);
    else
        tsr_compute_act_bias_grad((tsr_act_t)l->fused_act, y, dy, n, out, gb);
    /* dW = dy^T x (+ dW) */
    tsr_compute_gemm(1, 0, out, in, n, 1.0f, dy, x, run->accumulate ? 1.0f : 0.0f, l->grads);
    if (dx)
        tsr_compute_gemm(0, 0, n, in, out, 1.0f, dy, l->params, 0.0f, dx); /* dx = dy W */
    return TSR_OK;
}

static int dense_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t in = shape_size(l->in), out = (size_t)l->out.c;
    int rc = tsr_gpu_gemm(gpu, 0, 1, n, out, in, 1.0f, x, l->params, 0.0f, y);
    if (!rc)
        rc = tsr_gpu_add_bias(gpu, y, l->params + in * out, n, out);
    if (!rc && l->fused_act)
        rc = tsr_gpu_act(gpu, (tsr_act_t)l->fused_act, y, n * out);
    return rc;
}

static int dense_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                              float *dy, float *dx, size_t n)
{
    (void)run;
    size_t in = shape_size(l->in), out = (size_t)l->out.c;
    int rc = l->fused_act ? tsr_gpu_act_backward(gpu, (tsr_act_t)l->fused_act, y, dy, n * out) : TSR_OK;
    if (!rc)
        rc = tsr_gpu_bias_grad(gpu, dy, n, out, l->grads + in * out);
    if (!rc)
        rc = tsr_gpu_gemm(gpu, 1, 0, out, in, n, 1.0f, dy, x, 0.0f, l->grads);
    if (!rc && dx)
        rc = tsr_gpu_gemm(gpu, 0, 0, n, in, out, 1.0f, dy, l->params, 0.0f, dx);
    return rc;
}

static double dense_flops(const tsr_layer_t *l) { return 2.0 * (double)shape_size(l->in) * (double)l->out.c; }

const tsr_layer_kind_t tsr_kind_dense = {
    .abi = TSR_LAYER_ABI,
    .name = "dense",
    .args = "out",
    .flags = TSR_LAYER_NEEDS_X | TSR_LAYER_ACCUMULATES,
    .shape = dense_shape,
    .init = dense_init,
    .forward = dense_forward,
    .backward = dense_backward,
    .flops = dense_flops,
    .gpu_forward = dense_gpu_forward,
    .gpu_backward = dense_gpu_backward,
};
