/* SPDX-License-Identifier: BSD-3-Clause */
/* Each layer's parameters and buffers under the names model files and
 * checkpoints use. */
#include "model/internal.h"
#include "model/layers/layers.h"

#include <string.h>

static void put(tsr_model_tensor_t *t, const char *name, float *data, int nd, size_t d0, size_t d1, size_t d2,
                size_t d3)
{
    t->name = name;
    t->data = data;
    t->ndims = nd;
    t->dims[0] = d0, t->dims[1] = d1, t->dims[2] = d2, t->dims[3] = d3;
}

int tsr_model_tensors(tsr_model_t *m, int i, tsr_model_tensor_t *t)
{
    tsr_layer_t *l = &m->layer[i];
    const tsr_layer_kind_t *k = l->kind;
    size_t out = (size_t)l->out.c, n = 0;
    if (k == &tsr_kind_dense) {
        size_t in = shape_size(l->in);
        put(&t[n++], "weight", l->params, 2, out, in, 0, 0);
        put(&t[n++], "bias", l->params + out * in, 1, out, 0, 0, 0);
    } else if (k == &tsr_kind_conv) {
        size_t kk = (size_t)l->arg[1], cg = (size_t)l->in.c / (size_t)l->arg[5];
        put(&t[n++], "weight", l->params, 4, out, kk, kk, cg);
        put(&t[n++], "bias", l->params + out * kk * kk * cg, 1, out, 0, 0, 0);
    } else if (k == &tsr_kind_bn) {
        size_t c = (size_t)l->in.c;
        put(&t[n++], "weight", l->params, 1, c, 0, 0, 0);
        put(&t[n++], "bias", l->params + c, 1, c, 0, 0, 0);
        put(&t[n++], "running_mean", l->buffers, 1, c, 0, 0, 0);
        put(&t[n++], "running_var", l->buffers + c, 1, c, 0, 0, 0);
    } else if (k == &tsr_kind_ln) {
        size_t f = shape_size(l->in);
        put(&t[n++], "weight", l->params, 1, f, 0, 0, 0);
        put(&t[n++], "bias", l->params + f, 1, f, 0, 0, 0);
    } else if (k == &tsr_kind_embed) {
        put(&t[n++], "weight", l->params, 2, (size_t)l->arg[0], (size_t)l->arg[1], 0, 0);
    } else {
        if (l->nparams)
            put(&t[n++], "params", l->params, 1, l->nparams, 0, 0, 0);
        if (l->nbuffers)
            put(&t[n++], "buffers", l->buffers, 1, l->nbuffers, 0, 0, 0);
    }
    return (int)n;
}
