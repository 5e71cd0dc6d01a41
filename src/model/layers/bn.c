/* SPDX-License-Identifier: BSD-3-Clause */
/* bn(momentum=0.1, eps=1e-5): batch normalisation per channel (per feature
 * for flat inputs), as PyTorch's BatchNorm: batch statistics in training
 * (over every rank's batch with model.sync_bn), running mean and unbiased
 * variance kept as buffers and used in evaluation. Parameters gamma [c],
 * beta [c]; buffers running_mean [c], running_var [c]; state: the batch's
 * mean and 1/std for backward, and the unbiased variance the running one
 * takes (tsr_model_stats_take reads mean and that). A ReLU after it is
 * fused (fused_act): applied in the normalising pass, its mask in the
 * gradient sums' pass. */
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

/* The batch mean from the column sums (over every rank's rows with
 * sync_bn): sum [C+1] becomes the mean; *N the rows counted. */
static int batch_mean(const tsr_layer_t *l, const tsr_layer_run_t *run, double *sum, size_t C, size_t rows, double *N)
{
    sum[C] = (double)rows;
    int rc = reduce(l, run, sum, (int)C + 1);
    if (rc)
        return rc;
    *N = sum[C];
    for (size_t c = 0; c < C; c++)
        sum[c] /= *N;
    return TSR_OK;
}

/* From the sums of squares about shift (NULL: about the batch mean
 * center): state's mean, 1/std and unbiased variance, and the running
 * statistics unless deferred. */
static int batch_stats(tsr_layer_t *l, const tsr_layer_run_t *run, const double *center, const double *shift,
                       double *sq, size_t C, double N)
{
    int rc = reduce(l, run, sq, (int)C);
    if (rc)
        return rc;
    float *mean = l->state, *invstd = l->state + C;
    for (size_t c = 0; c < C; c++) {
        double d = shift ? center[c] - shift[c] : 0.0, var = (sq[c] - N * d * d) / N;
        var = var > 0.0 ? var : 0.0;
        mean[c] = (float)center[c];
        invstd[c] = (float)(1.0 / sqrt(var + l->arg[1]));
        l->state[2 * C + c] = (float)(N > 1 ? var * N / (N - 1) : var);
    }
    if (!run->defer_stats)
        layer_bn_running_update(l->buffers, l->buffers + C, (float)l->arg[0], mean, l->state + 2 * C, C);
    return TSR_OK;
}

/* y = (x - mean) * scale + shift, with the fused ReLU; after a tiling
 * maxpool (l->pool) pooled in the same pass: y is then the maxpool's
 * output and its argmax the maxpool's state (layer.h). */
static void normalise(const tsr_layer_t *l, const float *x, size_t n, const float *mean, const float *scale,
                      const float *shift, float *y)
{
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    if (l->pool) {
        tsr_conv_geom_t g = layer_pool_geom(l->pool);
        tsr_compute_affine_relu_maxpool(x, n, &g, mean, scale, shift, y, (int32_t *)(void *)l->pool->state);
    } else if (l->fused_act == TSR_ACT_RELU)
        tsr_compute_affine_cols_relu(x, rows, C, mean, scale, shift, y);
    else
        tsr_compute_affine_cols(x, rows, C, mean, scale, shift, y);
}

static int bn_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    double *sum = (double *)(void *)run->ws, *sq = sum + C + 1, *K = sq + C;
    float *scale = (float *)(void *)(K + C), *shift = scale + C;
    const float *gamma = l->params, *beta = l->params + C;
    if (!run->train) {
        for (size_t c = 0; c < C; c++) {
            scale[c] = gamma[c] / sqrtf(l->buffers[C + c] + (float)l->arg[1]);
            shift[c] = beta[c];
        }
        normalise(l, x, n, l->buffers, scale, shift, y);
        return TSR_OK;
    }
    /* One pass for both sums: the squares about the running mean K (the
     * same on every rank with sync_bn), which sits near the batch's mean,
     * so the shift back to it below loses nothing in double. */
    double N;
    for (size_t c = 0; c < C; c++)
        K[c] = (double)l->buffers[c];
    tsr_compute_colsums(x, rows, C, K, sum, sq);
    int rc = batch_mean(l, run, sum, C, rows, &N);
    if (rc)
        return rc;
    if ((rc = batch_stats(l, run, sum, K, sq, C, N)))
        return rc;
    for (size_t c = 0; c < C; c++) {
        scale[c] = gamma[c] * l->state[C + c];
        shift[c] = beta[c];
    }
    normalise(l, x, n, l->state, scale, shift, y);
    return TSR_OK;
}

static int bn_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy, float *dx,
                       size_t n)
{
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    double *sdy = (double *)(void *)run->ws, *sdx = sdy + C; /* sums of dy and dy*(x-mean) */
    const float *mean = l->state, *invstd = l->state + C, *gamma = l->params;
    /* A fused ReLU's mask in the same pass, unless a maxpool applied it;
     * after a tiling maxpool, dy is its pooled gradient (layer.h). */
    tsr_conv_geom_t pg = l->pool ? layer_pool_geom(l->pool) : (tsr_conv_geom_t){0};
    const int32_t *argmax = l->pool ? (const int32_t *)(const void *)l->pool->state : NULL;
    if (argmax)
        tsr_compute_bn_grad_sums_pooled(x, dy, argmax, n, &pg, mean, sdy, sdx);
    else if (l->fused_act == TSR_ACT_RELU && !l->grad_masked)
        tsr_compute_bn_grad_sums_relu(x, dy, y, rows, C, mean, sdy, sdx);
    else
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
    if (argmax)
        tsr_compute_bn_grad_input_pooled(x, dy, argmax, n, &pg, mean, a, b, k, dx);
    else
        tsr_compute_bn_grad_input(x, dy, rows, C, mean, a, b, k, dx);
    return TSR_OK;
}

/* On a GPU: the column sums on the device, the statistics on the host as
 * above (two small downloads: the ranks' sums for sync_bn, the running
 * statistics and the deferred records stay where the CPU keeps them), the
 * normalisation on the device. */
static int bn_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    layer_gpu_view_t *v = layer_view(l);
    tsr_layer_t *h = v->host;
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    const float *gamma = l->params, *beta = l->params + C;
    float eps = (float)l->arg[1];
    if (!run->train) {
        int rc = tsr_gpu_upload(gpu, run->ws, h->buffers, 2 * C * sizeof(float));
        if (!rc)
            rc = tsr_gpu_bn_apply(gpu, x, rows, C, run->ws, NULL, run->ws + C, eps, gamma, beta, y);
        return rc || !l->fused_act ? rc : tsr_gpu_act(gpu, (tsr_act_t)l->fused_act, y, rows * C);
    }
    double *dsum = (double *)(void *)run->ws, *dsq = dsum + C + 1, *sum = (double *)(void *)v->host_ws,
           *sq = sum + C + 1;
    double N;
    int rc = tsr_gpu_colsums(gpu, x, rows, C, NULL, dsum, NULL);
    if (!rc)
        rc = tsr_gpu_download(gpu, sum, dsum, C * sizeof *sum);
    if (!rc)
        rc = batch_mean(h, run, sum, C, rows, &N);
    if (!rc)
        rc = tsr_gpu_upload(gpu, dsum, sum, C * sizeof *sum);
    if (!rc)
        rc = tsr_gpu_colsums(gpu, x, rows, C, dsum, NULL, dsq);
    if (!rc)
        rc = tsr_gpu_download(gpu, sq, dsq, C * sizeof *sq);
    if (!rc)
        rc = batch_stats(h, run, sum, NULL, sq, C, N);
    if (!rc)
        rc = tsr_gpu_upload(gpu, l->state, h->state, 2 * C * sizeof(float));
    if (!rc)
        rc = tsr_gpu_bn_apply(gpu, x, rows, C, l->state, l->state + C, NULL, eps, gamma, beta, y);
    return rc || !l->fused_act ? rc : tsr_gpu_act(gpu, (tsr_act_t)l->fused_act, y, rows * C);
}

static int bn_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                           float *dy, float *dx, size_t n)
{
    size_t C = (size_t)l->in.c, rows = n * (size_t)l->in.h * (size_t)l->in.w;
    double *dsums = (double *)(void *)run->ws, N = (double)rows;
    const float *mean = l->state, *invstd = l->state + C;
    /* The fused activation's derivative (the GPU's maxpool applies no mask). */
    int rc = l->fused_act ? tsr_gpu_act_backward(gpu, (tsr_act_t)l->fused_act, y, dy, rows * C) : TSR_OK;
    if (!rc)
        rc = tsr_gpu_colsums_dot(gpu, dy, x, mean, rows, C, dsums, dsums + C);
    if (!rc)
        rc = tsr_gpu_bn_grads(gpu, dsums, invstd, C, l->grads);
    if (rc || !dx)
        return rc;
    if (l->sync && run->allreduce) {
        double *sums = (double *)(void *)layer_view(l)->host_ws;
        if ((rc = tsr_gpu_download(gpu, sums, dsums, 2 * C * sizeof *sums)))
            return rc;
        sums[2 * C] = N;
        if ((rc = run->allreduce(sums, 2 * (int)C + 1, run->allreduce_arg)) ||
            (rc = tsr_gpu_upload(gpu, dsums, sums, 2 * C * sizeof *sums)))
            return rc;
        N = sums[2 * C];
    }
    return tsr_gpu_bn_dx(gpu, x, dy, rows, C, mean, invstd, l->params, dsums, N, dx);
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
    .gpu_forward = bn_gpu_forward,
    .gpu_backward = bn_gpu_backward,
};
