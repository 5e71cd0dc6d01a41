/* SPDX-License-Identifier: BSD-3-Clause */
/* dropout(p): in training each value is kept with probability 1-p and
 * scaled by 1/(1-p); in evaluation it passes unchanged. The mask comes from
 * a counter-based RNG keyed by (seed, rank, step, layer) and the element's
 * index, so backward recomputes it (no state), runs are bit-reproducible
 * and a resumed run draws the masks an uninterrupted one would. */
#include "model/layers/layers.h"

#include <string.h>

static int dropout_shape(tsr_layer_t *l)
{
    if (!(l->arg[0] >= 0 && l->arg[0] < 1))
        return tsr_error_set(TSR_EINVAL, "dropout(%g): expected a probability in [0, 1)", l->arg[0]);
    l->out = l->in;
    return TSR_OK;
}

static uint64_t key_of(const tsr_layer_t *l, const tsr_layer_run_t *run)
{
    return tsr_rng_key(run->seed, (uint64_t)run->rank, run->step, 0x5000 + (uint64_t)l->index);
}
static uint32_t thr_of(const tsr_layer_t *l) { return (uint32_t)(l->arg[0] * 4294967296.0); }
static float scale_of(const tsr_layer_t *l) { return (float)(1.0 / (1.0 - l->arg[0])); }

/* keep when the top 32 bits are at or above p * 2^32 */
static void apply(const tsr_layer_t *l, const tsr_layer_run_t *run, const float *in, float *out, size_t len)
{
    tsr_compute_dropout(key_of(l, run), thr_of(l), scale_of(l), in, out, len);
}

static int dropout_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    size_t len = n * shape_size(l->in);
    if (!run->train || l->arg[0] == 0)
        memcpy(y, x, len * sizeof *y);
    else
        apply(l, run, x, y, len);
    return TSR_OK;
}

static int dropout_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                            float *dx, size_t n)
{
    (void)x, (void)y;
    size_t len = n * shape_size(l->in);
    if (!dx)
        return TSR_OK;
    if (l->arg[0] == 0)
        memcpy(dx, dy, len * sizeof *dx);
    else
        apply(l, run, dy, dx, len);
    return TSR_OK;
}

/* The same masks on a GPU (the key and counters are dropout.c's). */
static int dropout_gpu_run(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *in, float *out, size_t n,
                           int copy)
{
    size_t len = n * shape_size(l->in);
    if (copy || l->arg[0] == 0)
        return tsr_gpu_copy(gpu, out, in, len * sizeof *out);
    return tsr_gpu_dropout(gpu, key_of(l, run), thr_of(l), scale_of(l), in, out, len);
}

static int dropout_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y,
                               size_t n)
{
    return dropout_gpu_run(l, gpu, run, x, y, n, !run->train);
}

static int dropout_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                                float *dy, float *dx, size_t n)
{
    (void)x, (void)y;
    return dx ? dropout_gpu_run(l, gpu, run, dy, dx, n, 0) : TSR_OK;
}

static double dropout_flops(const tsr_layer_t *l) { return (double)shape_size(l->in); }

const tsr_layer_kind_t tsr_kind_dropout = {
    .abi = TSR_LAYER_ABI,
    .name = "dropout",
    .args = "p",
    .shape = dropout_shape,
    .forward = dropout_forward,
    .backward = dropout_backward,
    .flops = dropout_flops,
    .gpu_forward = dropout_gpu_forward,
    .gpu_backward = dropout_gpu_backward,
};
