/* SPDX-License-Identifier: BSD-3-Clause */
/* Batch norm's running statistics applied in a fixed order (model.h,
 * tsr_model_defer_stats): a micro-batch's record is, for every bn layer in
 * order, its batch mean [C] then its unbiased variance [C]. */
#include "model/internal.h"
#include "model/layers/layers.h"

#include <string.h>

void tsr_model_defer_stats(tsr_model_t *m, int on) { m->defer_stats = on; }

size_t tsr_model_stats_floats(const tsr_model_t *m)
{
    size_t n = 0;
    for (int i = 0; i < m->nl; i++)
        if (m->layer[i].kind == &tsr_kind_bn)
            n += 2 * (size_t)m->layer[i].in.c;
    return n;
}

void tsr_model_stats_take(const tsr_model_t *m, float *dst)
{
    for (int i = 0; i < m->nl; i++) {
        const tsr_layer_t *l = &m->layer[i];
        if (l->kind != &tsr_kind_bn)
            continue;
        size_t C = (size_t)l->in.c;
        memcpy(dst, l->state, C * sizeof *dst);             /* the batch mean */
        memcpy(dst + C, l->state + 2 * C, C * sizeof *dst); /* its unbiased variance */
        dst += 2 * C;
    }
}

void tsr_model_stats_apply(tsr_model_t *m, const float *stats, size_t count)
{
    for (size_t k = 0; k < count; k++)
        for (int i = 0; i < m->nl; i++) {
            tsr_layer_t *l = &m->layer[i];
            if (l->kind != &tsr_kind_bn)
                continue;
            size_t C = (size_t)l->in.c;
            layer_bn_running_update(l->buffers, l->buffers + C, (float)l->arg[0], stats, stats + C, C);
            stats += 2 * C;
        }
}
