/* SPDX-License-Identifier: BSD-3-Clause */
/* bn(momentum=0.1, eps=1e-5): batch normalisation per channel (per feature
 * for flat inputs), as PyTorch's BatchNorm: batch statistics in training
 * (over every rank's batch with model.sync_bn), running mean and unbiased
 * variance kept as buffers and used in evaluation. Parameters gamma [c],
 * beta [c]; buffers running_mean [c], running_var [c]; state: the batch's
 * mean and 1/std for backward, and the unbiased variance the running one
 * takes (tsr_model_stats_take reads mean and that). */
#include "model/layers/layers.h"

#include <math.h>
#include <string.h>

static int bn_shape(tsr_layer_t *l)
{
    double mom = l->arg[0], eps = l->arg[1];
    if (!(mom >= 0 && mom <= 1) || !(eps > 0 && eps < 1))
        return tsr_error_set(TSR_EINVAL, "bn(momentum=%g, eps=%g): expected momentum in [0, 1] and eps in (0, 1)", mom,
                             eps);
    size_t C = (size_t)l->in.c;
    l->out = l->in;
    l->nparams = 2 * C;
    l->nbuffers = 2 * C;
    l->state_floats = 3 * C;
    l->ws_floats = 8 * C + 4; /* forward: 3 double vectors and a count, 2 float vectors */
    return TSR_OK;
}

static void bn_init(tsr_layer_t *l, tsr_rng_t *r)
{
    (void)r;
    size_t C = (size_t)l->in.c;
    for (size_t c = 0; c < C; c++) {
        l->params[c] = 1.0f;      /* gamma */
        l->params[C + c] = 0.0f;  /* beta */
        l->buffers[c] = 0.0f;     /* running mean */
        l->buffers[C + c] = 1.0f; /* running variance */
    }
}

/* Sums n doubles over the ranks when the statistics are synchronised. */
static int reduce(const tsr_layer_t *l, const tsr_layer_run_t *run, double *v, int n)
{
    if (!l->sync || !run->allreduce)
        return TSR_OK;
    return run->allreduce(v, n, run->allreduce_arg);
}

void layer_bn_running_update(float *rmean, float *rvar, float mom, const float *mean, const float *uvar, size_t C)
{
    for (size_t c = 0; c < C; c++) {
        rmean[c] = (1.0f - mom) * rmean[c] + mom * mean[c];
        rvar[c] = (1.0f - mom) * rvar[c] + mom * uvar[c];
    }
}

static int bn_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    double *sum = (double *)(void *)run->ws, *sq = sum + C + 1, *tmp = sq + C;
    float *mean = l->state, *invstd = l->state + C;
    float *scale = (float *)(void *)(tmp + C), *shift = scale + C;
    const float *gamma = l->params, *beta = l->params + C;
    float *rmean = l->buffers, *rvar = l->buffers + C;
    if (!run->train) {
        for (size_t c = 0; c < C; c++) {
            scale[c] = gamma[c] / sqrtf(rvar[c] + (float)l->arg[1]);
            shift[c] = beta[c];
        }
        tsr_compute_affine_cols(x, rows, C, rmean, scale, shift, y);
        return TSR_OK;
    }
    tsr_compute_colsums(x, rows, C, NULL, sum, NULL);
    sum[C] = (double)rows;
    int rc = reduce(l, run, sum, (int)C + 1);
    if (rc)
        return rc;
    double N = sum[C];
    for (size_t c = 0; c < C; c++)
        sum[c] /= N; /* now the mean */
    double *center = sum;
    tsr_compute_colsums(x, rows, C, center, tmp, sq);
    if ((rc = reduce(l, run, sq, (int)C)))
        return rc;
    float mom = (float)l->arg[0];
    for (size_t c = 0; c < C; c++) {
        double var = sq[c] / N;
        mean[c] = (float)center[c];
        invstd[c] = (float)(1.0 / sqrt(var + l->arg[1]));
        scale[c] = gamma[c] * invstd[c];
        shift[c] = beta[c];
        l->state[2 * C + c] = (float)(N > 1 ? var * N / (N - 1) : var);
    }
    if (!run->defer_stats)
        layer_bn_running_update(rmean, rvar, mom, mean, l->state + 2 * C, C);
    tsr_compute_affine_cols(x, rows, C, mean, scale, shift, y);
    return TSR_OK;
}

static int bn_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy, float *dx,
                       size_t n)
{
    (void)y;
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    double *sdy = (double *)(void *)run->ws, *sdx = sdy + C; /* sums of dy and dy*(x-mean) */
    const float *mean = l->state, *invstd = l->state + C, *gamma = l->params;
    tsr_compute_bn_grad_sums(x, dy, rows, C, mean, sdy, sdx);
    for (size_t c = 0; c < C; c++) {
        l->grads[c] = (float)(sdx[c] * invstd[c]); /* dgamma */
        l->grads[C + c] = (float)sdy[c];           /* dbeta */
    }
    if (!dx)
        return TSR_OK;
    double N = (double)rows;
    if (l->sync && run->allreduce) {
        double *cnt = sdx + C;
        *cnt = N;
        int rc = run->allreduce(sdy, 2 * (int)C + 1, run->allreduce_arg);
        if (rc)
            return rc;
        N = *cnt;
    }
    float *a = (float *)(void *)(sdx + C + 1), *b = a + C, *k = b + C;
    for (size_t c = 0; c < C; c++) {
        double is = invstd[c];
        a[c] = (float)(gamma[c] * is); /* dx = a*(dy - b - (x-mean)*k) */
        b[c] = (float)(sdy[c] / N);
        k[c] = (float)(sdx[c] / N * is * is);
    }
    tsr_compute_bn_grad_input(x, dy, rows, C, mean, a, b, k, dx);
    return TSR_OK;
}

static double bn_flops(const tsr_layer_t *l) { return 2.0 * (double)shape_size(l->in); }

const tsr_layer_kind_t tsr_kind_bn = {
    .abi = TSR_LAYER_ABI,
    .name = "bn",
    .args = "momentum=0.1 eps=1e-5",
    .flags = TSR_LAYER_NEEDS_X,
    .shape = bn_shape,
    .init = bn_init,
    .forward = bn_forward,
    .backward = bn_backward,
    .flops = bn_flops,
};
