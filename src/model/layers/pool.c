/* SPDX-License-Identifier: BSD-3-Clause */
/* maxpool(k, stride=k) and avgpool(k, stride=k): pooling over k x k
 * windows without padding; max pooling keeps where each maximum came from
 * (state) for the backward pass. */
#include "model/layers/layers.h"

#include <math.h>
#include <stdint.h>

tsr_conv_geom_t layer_pool_geom(const tsr_layer_t *l)
{
    int k = (int)l->arg[0];
    return (tsr_conv_geom_t){l->in.h, l->in.w, l->in.c,  k,       l->arg[1] > 0 ? (int)l->arg[1] : k,
                             0,       1,       l->out.h, l->out.w};
}

int layer_pool_tiles(const tsr_layer_t *l)
{
    tsr_conv_geom_t g = layer_pool_geom(l);
    return g.stride == g.k && g.oh * g.k == g.h && g.ow * g.k == g.w;
}

static int pool_shape(tsr_layer_t *l)
{
    double k = l->arg[0], st = l->arg[1];
    char s[48];
    if (k < 1 || k > 4096 || k != floor(k) || st < 0 || st > 4096 || st != floor(st))
        return tsr_error_set(TSR_EINVAL, "%s(%g, stride=%g): expected whole numbers k >= 1 and stride >= 1",
                             l->kind->name, k, st);
    if ((int)k > l->in.h || (int)k > l->in.w)
        return tsr_error_set(TSR_EINVAL, "%s: the window %dx%d is larger than its input %s", l->kind->name, (int)k,
                             (int)k, layer_shape_text(l->in, s, sizeof s));
    int stride = st > 0 ? (int)st : (int)k;
    l->out = (tsr_shape_t){l->in.c, (l->in.h - (int)k) / stride + 1, (l->in.w - (int)k) / stride + 1};
    if (l->kind == &tsr_kind_maxpool)
        l->state_floats = l->max_batch * shape_size(l->out); /* int32 argmax, one per output */
    return TSR_OK;
}

static int max_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    tsr_conv_geom_t g = layer_pool_geom(l);
    (l->mask_relu ? tsr_compute_maxpool_relu : tsr_compute_maxpool)(x, n, &g, y, (int32_t *)(void *)l->state);
    return TSR_OK;
}

static int max_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                        float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    tsr_conv_geom_t g = layer_pool_geom(l);
    if (dx)
        tsr_compute_maxpool_backward(dy, (const int32_t *)(const void *)l->state, n, &g, dx);
    return TSR_OK;
}

static int avg_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    tsr_conv_geom_t g = layer_pool_geom(l);
    tsr_compute_avgpool(x, n, &g, y);
    return TSR_OK;
}

static int avg_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                        float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    tsr_conv_geom_t g = layer_pool_geom(l);
    if (dx)
        tsr_compute_avgpool_backward(dy, n, &g, dx);
    return TSR_OK;
}

static int max_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    tsr_conv_geom_t g = layer_pool_geom(l);
    return tsr_gpu_maxpool(gpu, x, n, &g, y, (int32_t *)(void *)l->state);
}

static int max_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                            float *dy, float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    tsr_conv_geom_t g = layer_pool_geom(l);
    return dx ? tsr_gpu_maxpool_backward(gpu, dy, (const int32_t *)(const void *)l->state, n, &g, dx) : TSR_OK;
}

static int avg_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    tsr_conv_geom_t g = layer_pool_geom(l);
    return tsr_gpu_avgpool(gpu, x, n, &g, y);
}

static int avg_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                            float *dy, float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    tsr_conv_geom_t g = layer_pool_geom(l);
    return dx ? tsr_gpu_avgpool_backward(gpu, dy, n, &g, dx) : TSR_OK;
}

static double pool_flops(const tsr_layer_t *l) { return l->arg[0] * l->arg[0] * (double)shape_size(l->out); }

const tsr_layer_kind_t tsr_kind_maxpool = {
    .abi = TSR_LAYER_ABI,
    .name = "maxpool",
    .args = "k stride=0",
    .shape = pool_shape,
    .forward = max_forward,
    .backward = max_backward,
    .flops = pool_flops,
    .gpu_forward = max_gpu_forward,
    .gpu_backward = max_gpu_backward,
};

const tsr_layer_kind_t tsr_kind_avgpool = {
    .abi = TSR_LAYER_ABI,
    .name = "avgpool",
    .args = "k stride=0",
    .shape = pool_shape,
    .forward = avg_forward,
    .backward = avg_backward,
    .flops = pool_flops,
    .gpu_forward = avg_gpu_forward,
    .gpu_backward = avg_gpu_backward,
};
