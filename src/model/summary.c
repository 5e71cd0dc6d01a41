/* SPDX-License-Identifier: BSD-3-Clause */
/* tessera model summary: a table of layers, output shapes, parameters and
 * FLOPs per sample. */
#include "model/internal.h"
#include "model/layers/layers.h"

#include <stdio.h>
#include <stdlib.h>

char *tsr_model_summary(const tsr_model_t *m)
{
    size_t cap = 256 + (size_t)m->nl * 160, n = 0;
    char *buf = malloc(cap), text[96], shape[48];
    if (!buf)
        return NULL;
    double total = 0;
#define PUT(...) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, __VA_ARGS__)
    PUT("%-5s %-32s %-14s %12s %14s\n", "layer", "kind", "output", "parameters", "FLOPs/sample");
    PUT("%-5s %-32s %-14s %12s %14s\n", "", "input", layer_shape_text(m->spec.input, shape, sizeof shape), "", "");
    int depth = 0;
    for (int i = 0; i < m->nl; i++) {
        const tsr_layer_t *l = &m->layer[i];
        double f = l->kind->flops ? l->kind->flops(l) : 0;
        char ind[64] = "";
        if (l->kind == &tsr_kind_res_end && depth > 0)
            depth--;
        snprintf(ind, sizeof ind, "%*s", 2 * depth, "");
        tsr_layer_spec_text(&m->spec.layer[i], text, sizeof text);
        if (l->kind == &tsr_kind_res_end)
            snprintf(text, sizeof text, "} + input of layer %d", m->block[i]);
        char full[192]; /* indent, spec text and mark: never cut */
        snprintf(full, sizeof full, "%s%s%s", ind, text, m->role[i] == ROLE_FUSED ? " (fused)" : "");
        PUT("%-5d %-32s %-14s %12zu %14.0f\n", i, full, layer_shape_text(l->out, shape, sizeof shape),
            l->nparams + l->nbuffers, f);
        if (l->kind == &tsr_kind_res)
            depth++;
        total += f;
    }
    PUT("total: %zu parameters (%zu trained, %zu buffers), %.4g forward FLOPs per sample, %.4g for a training "
        "step's forward and backward; loss %s\n",
        m->nparams + m->nbuffers, m->nparams, m->nbuffers, total, tsr_model_flops_per_sample(m),
        tsr_loss_name(m->spec.loss));
#undef PUT
    return buf;
}
