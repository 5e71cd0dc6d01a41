/* SPDX-License-Identifier: BSD-3-Clause */
/* res{...}: "res" opens a residual block (its input is kept and passed on
 * unchanged), "res_end" closes it, adding the kept input to the block's
 * output; the model's executor does both (model.c), since they span layers.
 * The shapes must agree: res_end's shape function is told the kept input's
 * shape through arg[0..2] by the model. */
#include "model/layers/layers.h"

static int res_shape(tsr_layer_t *l)
{
    l->out = l->in;
    return TSR_OK;
}

static double res_flops(const tsr_layer_t *l) { return l->kind == &tsr_kind_res_end ? (double)shape_size(l->out) : 0; }

const tsr_layer_kind_t tsr_kind_res = {
    .abi = TSR_LAYER_ABI,
    .name = "res",
    .flags = TSR_LAYER_ALIAS,
    .shape = res_shape,
    .flops = res_flops,
};

const tsr_layer_kind_t tsr_kind_res_end = {
    .abi = TSR_LAYER_ABI,
    .name = "res_end",
    .shape = res_shape,
    .flops = res_flops,
};
