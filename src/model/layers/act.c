/* SPDX-License-Identifier: BSD-3-Clause */
/* Activations as layers: relu, tanh, sigmoid (derivative from the output,
 * so the model may run them in place or fuse them into the layer before)
 * and gelu (erf form, as PyTorch's default), silu (from the input). */
#include "model/layers/layers.h"

#include <string.h>

static int act_shape(tsr_layer_t *l)
{
    l->out = l->in;
    return TSR_OK;
}

static int act_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t len = n * shape_size(l->in);
    tsr_act_t a = layer_act_of(l->kind);
    if (l->kind->flags & TSR_LAYER_NEEDS_Y) {
        if (y != x)
            memcpy(y, x, len * sizeof *y);
        tsr_compute_act(a, y, len);
    } else {
        tsr_compute_act_x(a, x, y, len);
    }
    return TSR_OK;
}

static int act_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                        float *dx, size_t n)
{
    (void)run;
    size_t len = n * shape_size(l->in);
    tsr_act_t a = layer_act_of(l->kind);
    if (!dx)
        return TSR_OK;
    if (l->kind->flags & TSR_LAYER_NEEDS_Y) {
        if (dx != dy)
            memcpy(dx, dy, len * sizeof *dx);
        tsr_compute_act_backward(a, y, dx, len);
    } else {
        tsr_compute_act_x_backward(a, x, dy, dx, len);
    }
    return TSR_OK;
}

static int act_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    return tsr_gpu_act_x(gpu, layer_act_of(l->kind), x, y, n * shape_size(l->in));
}

static int act_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                            float *dy, float *dx, size_t n)
{
    (void)run;
    size_t len = n * shape_size(l->in);
    tsr_act_t a = layer_act_of(l->kind);
    if (!dx)
        return TSR_OK;
    if (!(l->kind->flags & TSR_LAYER_NEEDS_Y))
        return tsr_gpu_act_x_backward(gpu, a, x, dy, dx, len);
    int rc = tsr_gpu_copy(gpu, dx, dy, len * sizeof *dx);
    return rc ? rc : tsr_gpu_act_backward(gpu, a, y, dx, len);
}

static double act_flops(const tsr_layer_t *l) { return (double)shape_size(l->in); }

#define ACT_KIND(id, nm, fl)                                                                                           \
    const tsr_layer_kind_t id = {                                                                                      \
        .abi = TSR_LAYER_ABI,                                                                                          \
        .name = nm,                                                                                                    \
        .flags = fl,                                                                                                   \
        .shape = act_shape,                                                                                            \
        .forward = act_forward,                                                                                        \
        .backward = act_backward,                                                                                      \
        .flops = act_flops,                                                                                            \
        .gpu_forward = act_gpu_forward,                                                                                \
        .gpu_backward = act_gpu_backward,                                                                              \
    }
ACT_KIND(tsr_kind_relu, "relu", TSR_LAYER_NEEDS_Y);
ACT_KIND(tsr_kind_tanh, "tanh", TSR_LAYER_NEEDS_Y);
ACT_KIND(tsr_kind_sigmoid, "sigmoid", TSR_LAYER_NEEDS_Y);
ACT_KIND(tsr_kind_gelu, "gelu", TSR_LAYER_NEEDS_X);
ACT_KIND(tsr_kind_silu, "silu", TSR_LAYER_NEEDS_X);

tsr_act_t layer_act_of(const tsr_layer_kind_t *k)
{
    return k == &tsr_kind_relu      ? TSR_ACT_RELU
           : k == &tsr_kind_tanh    ? TSR_ACT_TANH
           : k == &tsr_kind_sigmoid ? TSR_ACT_SIGMOID
           : k == &tsr_kind_gelu    ? TSR_ACT_GELU
           : k == &tsr_kind_silu    ? TSR_ACT_SILU
                                    : TSR_ACT_NONE;
}
