/* SPDX-License-Identifier: BSD-3-Clause */
/* Gradient accumulation over a step's micro-batches (internal). Sequential:
 * one buffer, acc = g0, acc += g1, ... Tree (train.reproducible = world): a
 * binary counter of partial sums, so k = 2^j micro-batches are summed as a
 * perfect binary tree, ((g0 + g1) + (g2 + g3)) + ..., the same tree the
 * recursive halving/doubling allreduce continues across ranks. A host tree
 * whose k - 1 earlier gradients fit TSR_ACCUM_FLAT_BYTES keeps them apart
 * ("flat") and sums the whole tree in the last backward, cache block by
 * cache block: the same sums in the same order, with the k - 1 intermediate
 * passes over the buffer gone (5 passes instead of 9 for k = 4). */
#ifndef TSR_TRAIN_ACCUM_H
#define TSR_TRAIN_ACCUM_H
#include "tessera/compute.h"

#include <stddef.h>

#define TSR_ACCUM_LEVELS 17 /* k <= 65536 micro-batches; flat: k <= 18 */
#define TSR_ACCUM_FLAT_BYTES ((size_t)256 << 20)

typedef struct tsr_accum {
    tsr_gpu_t *gpu; /* NULL: host buffers */
    size_t n;       /* floats per buffer */
    int tree, flat, depth, used;
    float *buf[TSR_ACCUM_LEVELS];
    size_t size[TSR_ACCUM_LEVELS]; /* micro-batches summed in buf[i] */
    size_t hi;                     /* the last micro-batch: above hi already added */
} tsr_accum_t;

/* Buffers for k micro-batches (none when k < 2); TSR_ENOMEM names the bytes. */
int tsr_accum_init(tsr_accum_t *a, tsr_gpu_t *gpu, size_t n, size_t k, int tree, int rank);
void tsr_accum_free(tsr_accum_t *a);
/* Before the first micro-batch of a step. */
void tsr_accum_begin(tsr_accum_t *a);
/* After an earlier (not the last) micro-batch's backward: takes g in. */
int tsr_accum_push(tsr_accum_t *a, const float *g);
/* A host tree's free buffer, where the next earlier micro-batch's backward
 * may write its gradients (tsr_model_set_grads_target) instead of copying
 * them in; NULL where there is none (a GPU, a sequential sum). */
float *tsr_accum_slot(const tsr_accum_t *a);
/* After that backward: the slot joins the counter (or the flat set), as
 * tsr_accum_push would have taken its copy (the same sums in the same order). */
void tsr_accum_push_slot(tsr_accum_t *a);
/* Inside the last micro-batch's backward: g[offset, hi) += the held sums. */
int tsr_accum_finish_from(tsr_accum_t *a, float *g, size_t offset);
#endif
