/* SPDX-License-Identifier: BSD-3-Clause */
/* Layers as ONNX nodes (onnx_layers.c), for the model walker (onnx.c).
 * Internal to src/export. */
#ifndef TSR_EXPORT_ONNX_LAYERS_H
#define TSR_EXPORT_ONNX_LAYERS_H
#include "export/onnx_build.h"
#include "tessera/error.h"

/* The current value: its name, and whether it is [N, C, H, W] (else [N, D]). */
typedef struct onnx_val {
    const char *name;
    int rank4;
} onnx_val_t;

/* Adds layer l from *v; a layer that computes something writes out and
 * *v becomes out (dropout and flatten leave or reshape *v). tmp holds the
 * layer's parameter count of floats (reordered weights). Returns b->rc. */
int onnx_layer(tsr_onnx_t *b, const tsr_layer_t *l, onnx_val_t *v, const char *out, float *tmp);
/* *v as [N, D] in tessera's order (channels last). */
void onnx_to_flat(tsr_onnx_t *b, onnx_val_t *v, tsr_shape_t s);

#endif
