/* SPDX-License-Identifier: BSD-3-Clause */
/* Gradient accumulation (accum.h): sequential or as a fixed binary tree. */
#include "train/accum.h"
#include "common/bigbuf.h"
#include "common/vec.h"
#include "tessera/error.h"

#include <stdlib.h>
#include <string.h>

/* y[0..n) += x[0..n): on a GPU add_bias with one row is that sum, queued on
 * the compute stream before the engine's event for the bucket. */
static int add_into(tsr_gpu_t *gpu, float *y, const float *x, size_t n)
{
    if (gpu)
        return tsr_gpu_add_bias(gpu, y, x, 1, n);
    tsr_compute_add_bias(y, x, 1, n); /* one row: y += x, the -O3 AVX2 kernel */
    return TSR_OK;
}

/* dst = src (on a GPU a device-to-device copy on the compute stream). */
static int copy_into(tsr_gpu_t *gpu, float *dst, const float *src, size_t n)
{
    if (!gpu) {
        memcpy(dst, src, n * sizeof(float));
        return TSR_OK;
    }
    return tsr_gpu_copy(gpu, dst, src, n * sizeof(float));
}

int tsr_accum_init(tsr_accum_t *a, tsr_gpu_t *gpu, size_t n, size_t k, int tree, int rank)
{
    memset(a, 0, sizeof *a);
    a->gpu = gpu;
    a->n = n;
    a->tree = tree;
    if (k < 2)
        return TSR_OK;
    /* A tree over k holds at most one partial sum per bit of k - 1; a flat
     * one all k - 1 earlier gradients. */
    size_t bytes = (n ? n : 1) * sizeof(float);
    int levels = 1;
    if (tree)
        for (levels = 0; ((size_t)1 << levels) < k; levels++)
            ;
    a->flat = tree && !gpu && k - 1 <= TSR_ACCUM_LEVELS && (k - 1) * bytes <= TSR_ACCUM_FLAT_BYTES;
    if (a->flat)
        levels = (int)(k - 1);
    for (int i = 0; i < levels; i++) {
        if (gpu ? tsr_gpu_alloc(gpu, bytes, (void **)&a->buf[i]) != TSR_OK
                : !(a->buf[i] = tsr_bigbuf_alloc(bytes, 0))) {
            a->buf[i] = NULL;
            tsr_accum_free(a);
            return tsr_error_set(TSR_ENOMEM, "rank %d: out of memory for the accumulated gradients (%d x %zu bytes)",
                                 rank, levels, bytes);
        }
        a->depth = i + 1;
    }
    return TSR_OK;
}

void tsr_accum_free(tsr_accum_t *a)
{
    for (int i = 0; i < a->depth; i++) {
        if (a->gpu)
            tsr_gpu_free(a->gpu, a->buf[i]);
        else
            free(a->buf[i]);
        a->buf[i] = NULL;
    }
    a->depth = a->used = 0;
}

void tsr_accum_begin(tsr_accum_t *a)
{
    a->used = 0;
    a->hi = a->n;
}

/* Equal-sized neighbours among the top t blocks merge (lower + upper). */
static int merge(tsr_accum_t *a, int t)
{
    int rc;
    while (t > 1 && a->size[t - 2] == a->size[t - 1]) {
        if ((rc = add_into(a->gpu, a->buf[t - 2], a->buf[t - 1], a->n)))
            return rc;
        a->size[t - 2] *= 2;
        t--;
    }
    a->used = t;
    return TSR_OK;
}

float *tsr_accum_slot(const tsr_accum_t *a)
{
    return !a->gpu && a->tree && a->used < a->depth ? a->buf[a->used] : NULL;
}

/* The slot is a new single on top: joining the single below it first is
 * push's add of g into that single, then the same merges. */
void tsr_accum_push_slot(tsr_accum_t *a)
{
    a->size[a->used] = 1;
    if (a->flat)
        a->used++;
    else
        (void)merge(a, a->used + 1); /* host adds cannot fail */
}

int tsr_accum_push(tsr_accum_t *a, const float *g)
{
    if (a->flat) {
        if (a->used >= a->depth)
            return tsr_error_set(TSR_EINVAL, "gradient accumulation: more micro-batches than the tree was sized for");
        memcpy(a->buf[a->used], g, a->n * sizeof(float));
        a->size[a->used++] = 1;
        return TSR_OK;
    }
    if (!a->tree) {
        int rc = a->used ? add_into(a->gpu, a->buf[0], g, a->n) : copy_into(a->gpu, a->buf[0], g, a->n);
        a->used = 1;
        return rc;
    }
    /* Binary counter: a new single joins the top single, and equal-sized
     * neighbours merge (lower block + upper block; + is commutative). */
    int rc, t = a->used;
    if (t > 0 && a->size[t - 1] == 1) {
        if ((rc = add_into(a->gpu, a->buf[t - 1], g, a->n)))
            return rc;
        a->size[t - 1] = 2;
        return merge(a, t);
    }
    if (t >= a->depth)
        return tsr_error_set(TSR_EINVAL, "gradient accumulation: more micro-batches than the tree was sized for");
    a->size[t] = 1;
    a->used = t + 1;
    return copy_into(a->gpu, a->buf[t], g, a->n);
}

/* The flat tree's sums, 8-wide at -O2 (EACH8 needs distinct arrays). */
TSR_HOT static void add2(float *restrict d, const float *restrict x, size_t n) { EACH8(i, n, d[i] += x[i]); }
TSR_HOT static void add3(float *restrict d, const float *restrict x, const float *restrict y, size_t n)
{
    EACH8(i, n, d[i] = x[i] + y[i]);
}

/* d = x + y where d may be x or y (+ is commutative: the same bits). */
static void sum_into(float *d, const float *x, const float *y, size_t n)
{
    if (d == x)
        add2(d, y, n);
    else if (d == y)
        add2(d, x, n);
    else
        add3(d, x, y, n);
}

#define FLAT_BLOCK 1024 /* floats: the tree's partial sums stay in L1 */

/* g[0, len) = the tree over leaf[0..nleaf) and g, the binary counter of
 * merge() and then finish's sums from the smallest block up, run on one
 * cache block at a time: partial sums live in tmp, leaves are read once. */
static void flat_block(float *const *leaf, int nleaf, float *g, size_t len, float (*tmp)[FLAT_BLOCK])
{
    const float *p[TSR_ACCUM_LEVELS + 1];
    size_t sz[TSR_ACCUM_LEVELS + 1];
    int t = 0;
    for (int j = 0; j < nleaf; j++) {
        p[t] = leaf[j];
        sz[t++] = 1;
        for (; t > 1 && sz[t - 2] == sz[t - 1]; t--) { /* lower + upper, as merge() */
            sum_into(tmp[t - 2], p[t - 2], p[t - 1], len);
            p[t - 2] = tmp[t - 2];
            sz[t - 2] *= 2;
        }
    }
    /* g joins the smallest block, and the sum each next one up (finish's order). */
    const float *acc = g;
    for (int i = t - 1; i >= 0; i--) {
        float *out = i ? tmp[i] : g;
        sum_into(out, acc, p[i], len);
        acc = out;
    }
}

static void flat_finish(const tsr_accum_t *a, float *g, size_t lo, size_t hi)
{
    float tmp[TSR_ACCUM_LEVELS][FLAT_BLOCK];
    float *leaf[TSR_ACCUM_LEVELS];
    for (size_t b = lo; b < hi; b += FLAT_BLOCK) {
        size_t len = hi - b < FLAT_BLOCK ? hi - b : FLAT_BLOCK;
        for (int i = 0; i < a->used; i++)
            leaf[i] = a->buf[i] + b;
        flat_block(leaf, a->used, g + b, len, tmp);
    }
}

int tsr_accum_finish_from(tsr_accum_t *a, float *g, size_t offset)
{
    int rc = TSR_OK;
    if (a->flat && offset < a->hi)
        flat_finish(a, g, offset, a->hi);
    else if (offset < a->hi)
        /* Smallest block first: g pairs with the single before it, then the pair with the pair below... */
        for (int i = a->used - 1; i >= 0 && !rc; i--)
            rc = add_into(a->gpu, g + offset, a->buf[i] + offset, a->hi - offset);
    a->hi = offset < a->hi ? offset : a->hi;
    return rc;
}
