/* SPDX-License-Identifier: BSD-3-Clause */
/* The built-in layer kinds (one file each) and what they share. Internal. */
#ifndef TSR_MODEL_LAYERS_H
#define TSR_MODEL_LAYERS_H
#include "tessera/layer.h"
#include "tessera/compute.h"
#include "tessera/error.h"
#include "compute/gpu_layers.h"

extern const tsr_layer_kind_t tsr_kind_dense, tsr_kind_conv, tsr_kind_maxpool, tsr_kind_avgpool, tsr_kind_gap,
    tsr_kind_flatten, tsr_kind_bn, tsr_kind_ln, tsr_kind_dropout, tsr_kind_embed, tsr_kind_res, tsr_kind_res_end,
    tsr_kind_relu, tsr_kind_tanh, tsr_kind_sigmoid, tsr_kind_gelu, tsr_kind_silu;

/* Values per sample of a shape. */
static inline size_t shape_size(tsr_shape_t s) { return (size_t)s.c * (size_t)s.h * (size_t)s.w; }

/* U(-bound, bound) into p[0..n), PyTorch's default for Linear and Conv. */
void layer_uniform(float *p, size_t n, double bound, tsr_rng_t *r);
/* The activation a kind stands for (the act kinds), else TSR_ACT_NONE. */
tsr_act_t layer_act_of(const tsr_layer_kind_t *k);
/* The known kind nearest to name (for "did you mean"). */
const char *layer_nearest(const char *name);
int tsr_layer_is_builtin(const tsr_layer_kind_t *k);
/* Batch norm's running mean and variance after one batch (bn.c). */
void layer_bn_running_update(float *rmean, float *rvar, float mom, const float *mean, const float *uvar, size_t C);
/* A layer's forward and backward; plugins' run under a crash guard (guard.c). */
int layer_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n);
int layer_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy, float *dx,
                   size_t n);
/* On a GPU (model_gpu_graph.c) a layer's gpu_forward and gpu_backward get
 * a view of it: params, grads, state and the run's ws in device memory,
 * buffers in host memory (saved as they are). The built-in kinds reach
 * the host layer (batch norm's statistics) and a host workspace of the
 * layer's ws_floats through it; plugins see a plain tsr_layer_t. */
typedef struct layer_gpu_view {
    tsr_layer_t dev;
    tsr_layer_t *host;
    float *host_ws;
} layer_gpu_view_t;
static inline layer_gpu_view_t *layer_view(tsr_layer_t *l) { return (layer_gpu_view_t *)(void *)l; }
/* Device workspace floats a layer needs on the GPU (conv lowers bigger
 * chunks there than on the CPU). */
size_t layer_gpu_ws_floats(const tsr_layer_t *l);
/* Whether conv (a conv with its ReLU fused) can pool into maxpool pool as it
 * goes (tsr_layer_t.pool; conv.c): the direct kernels' shapes, a window of
 * stride k that tiles the conv's output, no input gradient wanted. */
int layer_conv_can_pool(const tsr_layer_t *conv, const tsr_layer_t *pool, int needs_dx);
/* A pooling layer's windows as a geometry (pool.c). */
tsr_conv_geom_t layer_pool_geom(const tsr_layer_t *pool);
/* 1 when the pool's windows tile its input: each position in one window. */
int layer_pool_tiles(const tsr_layer_t *pool);
/* embed's token-id check on the host batch (the GPU runs it before the upload). */
int layer_embed_check(const tsr_layer_t *l, const float *x, size_t n);
/* The file a plugin kind came from ("built-in" for tessera's). */
const char *layer_kind_origin(const tsr_layer_kind_t *k);
/* "3x28x28" */
const char *layer_shape_text(tsr_shape_t s, char *buf, size_t len);

#endif
