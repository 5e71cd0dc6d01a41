/* SPDX-License-Identifier: BSD-3-Clause */
/* The ONNX message under construction (onnx_build.c): nodes, initializers
 * and the strings they name, all owned by the builder and freed together.
 * Internal to src/export. */
#ifndef TSR_EXPORT_ONNX_BUILD_H
#define TSR_EXPORT_ONNX_BUILD_H
#include "tessera/export.h"

#include "onnx.pb-c.h"

struct tsr_onnx {
    int rc;     /* the first error: every later call does nothing */
    int layer;  /* names are "layer_<layer>.<what>" */
    int tmp;    /* counter for tsr_onnx_value */
    void **blk; /* everything allocated, freed by onnx_build_free */
    size_t nblk, cblk;
    Onnx__NodeProto **node;
    size_t nnode, cnode;
    Onnx__TensorProto **init;
    size_t ninit, cinit;
};

void onnx_build_free(tsr_onnx_t *b);
/* Zeroed memory the builder owns, or NULL (b->rc set). */
void *onnx_alloc(tsr_onnx_t *b, size_t size);
/* printf into memory the builder owns ("" after an error). */
char *onnx_printf(tsr_onnx_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An int64 initializer (shapes for Reshape); returns its name. */
const char *onnx_int64s(tsr_onnx_t *b, const char *what, const int64_t *v, int n);
/* One-input and two-input nodes; return the output's name (a fresh value). */
const char *onnx_op1(tsr_onnx_t *b, const char *op, const char *x);
const char *onnx_op2(tsr_onnx_t *b, const char *op, const char *x, const char *y);
/* A float scalar initializer, shape [1] (broadcasts). */
const char *onnx_scalar(tsr_onnx_t *b, const char *what, float v);
/* The node added last (NULL if none). */
Onnx__NodeProto *onnx_last(tsr_onnx_t *b);

#endif
