/* SPDX-License-Identifier: BSD-3-Clause */
/* What the convolution kernels' unit tests share (test_compute_conv.c,
 * test_compute_conv_dnnl.c): random tensors in [-1, 1) and a geometry with
 * its output size. Include after cmocka.h. */
#ifndef TSR_TEST_CONV_UTIL_H
#define TSR_TEST_CONV_UTIL_H
#include "tessera/compute.h"
#include "tessera/rng.h"

#include <stdint.h>
#include <stdlib.h>

static inline float *randv(size_t n, uint64_t seed)
{
    float *v = malloc((n ? n : 1) * sizeof *v);
    assert_non_null(v);
    tsr_rng_t r;
    tsr_rng_seed(&r, seed, 0);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(2 * tsr_rng_uniform(&r) - 1);
    return v;
}

static inline tsr_conv_geom_t geom(int h, int w, int c, int k, int stride, int pad, int dil)
{
    tsr_conv_geom_t g = {h, w, c, k, stride, pad, dil, 0, 0};
    g.oh = (h + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    g.ow = (w + 2 * pad - dil * (k - 1) - 1) / stride + 1;
    return g;
}
#endif
