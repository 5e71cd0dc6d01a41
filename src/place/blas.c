/* SPDX-License-Identifier: BSD-3-Clause */
/* Which kernel set OpenBLAS runs. It picks one by the CPU when it loads,
 * or takes OPENBLAS_CORETYPE; the training line names it, since the two
 * can differ twofold in GEMM rate on one machine (AVX2 Haswell kernels
 * against AVX-512 Cooperlake ones on an AMD Zen 5 core: 100 against 195
 * GFLOP/s for SGEMM). */
#include "tessera/place.h"

/* libopenblas's own; declared here as openblas_set_num_threads is (bind.c). */
char *openblas_get_corename(void);

const char *tsr_place_blas_core(void)
{
    const char *core = openblas_get_corename();
    return core ? core : "unknown";
}
