/* SPDX-License-Identifier: BSD-3-Clause */
/* embed(vocab, dim): token ids to vectors. The input is a row of t token
 * ids (stored as floats, whole numbers in [0, vocab)); the output has
 * shape (dim, 1, t), one vector per token in channels-last order, so gap
 * averages the tokens and flatten concatenates them. Parameters W [vocab,
 * dim], N(0, 1) like PyTorch's Embedding. Only the first layer. */
#include "model/layers/layers.h"

#include <math.h>
#include <string.h>

static int embed_shape(tsr_layer_t *l)
{
    double v = l->arg[0], d = l->arg[1];
    char s[48];
    if (v < 1 || v > (1 << 24) || v != floor(v) || d < 1 || d > (1 << 16) || d != floor(d))
        return tsr_error_set(TSR_EINVAL, "embed(%g, %g): expected a vocabulary of 1 to %d and a width of 1 to %d", v, d,
                             1 << 24, 1 << 16);
    if (l->index != 0)
        return tsr_error_set(TSR_EINVAL, "embed: takes token ids, so it must be the first layer");
    if (l->in.h != 1 || l->in.w != 1)
        return tsr_error_set(TSR_EINVAL, "embed: expected a flat row of token ids, got the input %s",
                             layer_shape_text(l->in, s, sizeof s));
    l->out = (tsr_shape_t){(int)d, 1, l->in.c};
    l->nparams = (size_t)v * (size_t)d;
    return TSR_OK;
}

static void embed_init(tsr_layer_t *l, tsr_rng_t *r)
{
    for (size_t i = 0; i < l->nparams; i += 2) { /* Box-Muller */
        double u1 = tsr_rng_uniform(r), u2 = tsr_rng_uniform(r);
        double rad = sqrt(-2.0 * log(u1 > 1e-300 ? u1 : 1e-300));
        l->params[i] = (float)(rad * cos(6.283185307179586 * u2));
        if (i + 1 < l->nparams)
            l->params[i + 1] = (float)(rad * sin(6.283185307179586 * u2));
    }
}

int layer_embed_check(const tsr_layer_t *l, const float *x, size_t n)
{
    size_t t = (size_t)l->in.c, d = (size_t)l->arg[1];
    double vocab = l->arg[0];
    for (size_t i = 0; i < n * t; i++) {
        float id = x[i];
        if (!(id >= 0 && id < vocab && id == floorf(id)))
            return tsr_error_set(TSR_EDATA,
                                 "embed(%g, %zu): input value %g (row %zu, position %zu) is not a token "
                                 "id in 0..%g",
                                 vocab, d, (double)id, i / t, i % t, vocab - 1);
    }
    return TSR_OK;
}

static int embed_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    size_t t = (size_t)l->in.c, d = (size_t)l->arg[1];
    int rc = layer_embed_check(l, x, n);
    for (size_t i = 0; !rc && i < n * t; i++)
        memcpy(y + i * d, l->params + (size_t)x[i] * d, d * sizeof *y);
    return rc;
}

/* On a GPU the model checks the ids on the host before the upload. */
static int embed_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    (void)run;
    return tsr_gpu_embed(gpu, x, l->params, n * (size_t)l->in.c, (size_t)l->arg[1], y);
}

static int embed_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                              float *dy, float *dx, size_t n)
{
    (void)run, (void)y, (void)dx;
    return tsr_gpu_embed_backward(gpu, x, dy, n * (size_t)l->in.c, (size_t)l->arg[1], (size_t)l->arg[0], l->grads);
}

static int embed_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                          float *dx, size_t n)
{
    (void)run, (void)y, (void)dx;
    size_t t = (size_t)l->in.c, d = (size_t)l->arg[1];
    memset(l->grads, 0, l->nparams * sizeof *l->grads);
    for (size_t i = 0; i < n * t; i++) {
        float *g = l->grads + (size_t)x[i] * d;
        const float *dr = dy + i * d;
        for (size_t j = 0; j < d; j++)
            g[j] += dr[j];
    }
    return TSR_OK;
}

static double embed_flops(const tsr_layer_t *l) { return (double)shape_size(l->out); }

const tsr_layer_kind_t tsr_kind_embed = {
    .abi = TSR_LAYER_ABI,
    .name = "embed",
    .args = "vocab dim",
    .flags = TSR_LAYER_NEEDS_X,
    .shape = embed_shape,
    .init = embed_init,
    .forward = embed_forward,
    .backward = embed_backward,
    .flops = embed_flops,
    .gpu_forward = embed_gpu_forward,
    .gpu_backward = embed_gpu_backward,
};
