/* SPDX-License-Identifier: BSD-3-Clause */
/* ln(eps=1e-5): layer normalisation over each sample's features, with an
 * elementwise scale and shift (PyTorch's LayerNorm over the whole sample
 * shape; ONNX's LayerNormalization with axis 1). Parameters gamma [f] then
 * beta [f] in storage (channels-last) order; state: each sample's mean and
 * 1/std. */
#include "model/layers/layers.h"

#include <math.h>
#include <string.h>

static int ln_shape(tsr_layer_t *l)
{
    if (!(l->arg[0] > 0 && l->arg[0] < 1))
        return tsr_error_set(TSR_EINVAL, "ln(eps=%g): expected eps in (0, 1)", l->arg[0]);
    size_t f = shape_size(l->in);
    l->out = l->in;
    l->nparams = 2 * f;
    l->state_floats = 2 * l->max_batch;
    return TSR_OK;
}

static void ln_init(tsr_layer_t *l, tsr_rng_t *r)
{
    (void)r;
    size_t f = shape_size(l->in);
    for (size_t i = 0; i < f; i++) {
        l->params[i] = 1.0f;
        l->params[f + i] = 0.0f;
    }
}

static int ln_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t f = shape_size(l->in);
    const float *gamma = l->params, *beta = l->params + f;
    float *mean = l->state, *invstd = l->state + l->max_batch;
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * f;
        float *ys = y + s * f;
        double sum = 0, sq = 0;
        for (size_t i = 0; i < f; i++)
            sum += xs[i];
        double mu = sum / (double)f;
        for (size_t i = 0; i < f; i++)
            sq += ((double)xs[i] - mu) * ((double)xs[i] - mu);
        float m = (float)mu, is = (float)(1.0 / sqrt(sq / (double)f + l->arg[0]));
        mean[s] = m;
        invstd[s] = is;
        for (size_t i = 0; i < f; i++)
            ys[i] = (xs[i] - m) * is * gamma[i] + beta[i];
    }
    return TSR_OK;
}

static int ln_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy, float *dx,
                       size_t n)
{
    (void)run, (void)y;
    size_t f = shape_size(l->in);
    const float *gamma = l->params, *mean = l->state, *invstd = l->state + l->max_batch;
    float *dg = l->grads, *db = l->grads + f;
    memset(l->grads, 0, 2 * f * sizeof *l->grads);
    for (size_t s = 0; s < n; s++) {
        const float *xs = x + s * f, *ds = dy + s * f;
        float m = mean[s], is = invstd[s];
        double a = 0, b = 0; /* means of dxhat and dxhat * xhat */
        for (size_t i = 0; i < f; i++) {
            float xh = (xs[i] - m) * is;
            dg[i] += ds[i] * xh;
            db[i] += ds[i];
            float g = ds[i] * gamma[i];
            a += g;
            b += (double)g * xh;
        }
        if (!dx)
            continue;
        float am = (float)(a / (double)f), bm = (float)(b / (double)f);
        float *o = dx + s * f;
        for (size_t i = 0; i < f; i++) {
            float xh = (xs[i] - m) * is;
            o[i] = is * (ds[i] * gamma[i] - am - xh * bm);
        }
    }
    return TSR_OK;
}

static int ln_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t f = shape_size(l->in);
    return tsr_gpu_ln_forward(gpu, x, n, f, l->arg[0], l->params, l->params + f, l->state, l->state + l->max_batch, y);
}

static int ln_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                           float *dy, float *dx, size_t n)
{
    (void)run, (void)y;
    return tsr_gpu_ln_backward(gpu, x, dy, n, shape_size(l->in), l->params, l->state, l->state + l->max_batch, l->grads,
                               dx);
}

static double ln_flops(const tsr_layer_t *l) { return 5.0 * (double)shape_size(l->in); }

const tsr_layer_kind_t tsr_kind_ln = {
    .abi = TSR_LAYER_ABI,
    .name = "ln",
    .args = "eps=1e-5",
    .flags = TSR_LAYER_NEEDS_X,
    .shape = ln_shape,
    .init = ln_init,
    .forward = ln_forward,
    .backward = ln_backward,
    .flops = ln_flops,
    .gpu_forward = ln_gpu_forward,
    .gpu_backward = ln_gpu_backward,
};
