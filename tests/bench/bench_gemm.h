/* SPDX-License-Identifier: BSD-3-Clause */
/* --gemm NAME for the training benchmarks: the CPU GEMM library of the
 * calling thread (runtime.gemm's names). */
#ifndef TSR_BENCH_GEMM_H
#define TSR_BENCH_GEMM_H
#include "tessera/compute.h"

#include <stdio.h>
#include <string.h>

/* 0, or 2 with a line on stderr. */
static inline int bench_set_gemm(const char *prog, const char *name)
{
    tsr_gemm_t g = !strcmp(name, "onednn")     ? TSR_GEMM_ONEDNN
                   : !strcmp(name, "openblas") ? TSR_GEMM_OPENBLAS
                   : !strcmp(name, "auto")     ? TSR_GEMM_AUTO
                                               : (tsr_gemm_t)-1;
    if ((int)g < 0 || tsr_compute_set_gemm(g)) {
        fprintf(stderr, "%s: --gemm %s: expected auto, onednn or openblas (%s)\n", prog, name,
                tsr_compute_gemm_available(TSR_GEMM_ONEDNN) ? "this build has both" : "this build has openblas");
        return 2;
    }
    return 0;
}

#endif
