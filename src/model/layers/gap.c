/* SPDX-License-Identifier: BSD-3-Clause */
/* gap: global average pooling, (c, h, w) -> (c, 1, 1). */
#include "model/layers/layers.h"
#include "common/vec.h"

#include <string.h>

static int gap_shape(tsr_layer_t *l)
{
    l->out = (tsr_shape_t){l->in.c, 1, 1};
    return TSR_OK;
}

static int gap_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t C = (size_t)l->in.c, hw = (size_t)l->in.h * (size_t)l->in.w;
    float inv = 1.0f / (float)hw;
    for (size_t s = 0; s < n; s++) {
        float *restrict yo = y + s * C;
        const float *xs = x + s * hw * C;
        memset(yo, 0, C * sizeof *yo);
        for (size_t p = 0; p < hw; p++) {
            const float *restrict xr = xs + p * C;
            EACH8(c, C, yo[c] += xr[c]);
        }
        EACH8(c, C, yo[c] *= inv);
    }
    return TSR_OK;
}

static int gap_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                        float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    if (!dx)
        return TSR_OK;
    size_t C = (size_t)l->in.c, hw = (size_t)l->in.h * (size_t)l->in.w;
    float inv = 1.0f / (float)hw;
    for (size_t s = 0; s < n; s++) {
        const float *restrict d = dy + s * C;
        for (size_t p = 0; p < hw; p++) {
            float *restrict xr = dx + (s * hw + p) * C;
            EACH8(c, C, xr[c] = d[c] * inv);
        }
    }
    return TSR_OK;
}

static int gap_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    return tsr_gpu_gap(gpu, x, n, (size_t)l->in.h * (size_t)l->in.w, (size_t)l->in.c, y);
}

static int gap_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                            float *dy, float *dx, size_t n)
{
    (void)run, (void)x, (void)y;
    return dx ? tsr_gpu_gap_backward(gpu, dy, n, (size_t)l->in.h * (size_t)l->in.w, (size_t)l->in.c, dx) : TSR_OK;
}

static double gap_flops(const tsr_layer_t *l) { return (double)shape_size(l->in); }

const tsr_layer_kind_t tsr_kind_gap = {
    .abi = TSR_LAYER_ABI,
    .name = "gap",
    .shape = gap_shape,
    .forward = gap_forward,
    .backward = gap_backward,
    .flops = gap_flops,
    .gpu_forward = gap_gpu_forward,
    .gpu_backward = gap_gpu_backward,
};
