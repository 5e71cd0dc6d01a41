/* SPDX-License-Identifier: BSD-3-Clause */
/* flatten: (c, h, w) -> (c*h*w, 1, 1). The data does not move (the model
 * aliases the buffer); only the shape changes. Channels-last order: a dense
 * layer after it sees (h, w, c), which the ONNX export maps back. */
#include "model/layers/layers.h"

static int flatten_shape(tsr_layer_t *l)
{
    l->out = (tsr_shape_t){(int)shape_size(l->in), 1, 1};
    return TSR_OK;
}

static double no_flops(const tsr_layer_t *l)
{
    (void)l;
    return 0;
}

const tsr_layer_kind_t tsr_kind_flatten = {
    .abi = TSR_LAYER_ABI,
    .name = "flatten",
    .flags = TSR_LAYER_ALIAS,
    .shape = flatten_shape,
    .flops = no_flops,
};
