/* SPDX-License-Identifier: BSD-3-Clause */
/* The CPU's GEMM: oneDNN's JIT SGEMM where tessera is built with it, else
 * OpenBLAS's CBLAS (runtime.gemm). oneDNN picks AVX-512 or AVX2 by the CPU
 * when it loads; OpenBLAS may be held to an older kernel set by
 * OPENBLAS_CORETYPE, and its Haswell kernels ran our layer shapes at half
 * oneDNN's rate on an AVX-512 core (tests/bench/README.md). Both sum in an
 * order fixed by the shapes and the thread count, so runs stay
 * bit-reproducible; the two differ from each other in the last bits.
 * OpenBLAS's results for a row of A do not depend on the other rows (at
 * the kernels it runs here), oneDNN's do: it blocks K by the shape, and
 * below 16 rows takes other kernels. So the choice is the calling
 * thread's: training sets oneDNN on its own thread, and every other thread
 * (the coordinator's /predict, apply predict) keeps OpenBLAS, whose
 * predictions of a row are the same bits whatever batch it came in. */
#include "tessera/compute.h"
#include "tessera/error.h"
#include "tessera/place.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#ifdef TSR_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#endif

static _Thread_local tsr_gemm_t gemm_impl = TSR_GEMM_OPENBLAS;

int tsr_compute_gemm_available(tsr_gemm_t g)
{
#ifdef TSR_HAVE_ONEDNN
    return g == TSR_GEMM_ONEDNN || g == TSR_GEMM_OPENBLAS;
#else
    return g == TSR_GEMM_OPENBLAS;
#endif
}

int tsr_compute_set_gemm(tsr_gemm_t g)
{
    if (g == TSR_GEMM_AUTO)
        g = tsr_compute_gemm_available(TSR_GEMM_ONEDNN) ? TSR_GEMM_ONEDNN : TSR_GEMM_OPENBLAS;
    if (!tsr_compute_gemm_available(g))
        return tsr_error_set(TSR_ENOTSUP,
                             "compute: GEMM '%s' is not in this build, which has OpenBLAS only (configure with "
                             "TESSERA_WITH_ONEDNN=ON and libdnnl-dev installed)",
                             tsr_compute_gemm_name(g));
    gemm_impl = g;
    return TSR_OK;
}

tsr_gemm_t tsr_compute_get_gemm(void) { return gemm_impl; }

const char *tsr_compute_gemm_name(tsr_gemm_t g)
{
    switch (g) {
    case TSR_GEMM_AUTO: return "auto";
    case TSR_GEMM_ONEDNN: return "onednn";
    case TSR_GEMM_OPENBLAS: return "openblas";
    }
    return "?";
}

void tsr_compute_gemm_describe(char *buf, size_t len)
{
#ifdef TSR_HAVE_ONEDNN
    if (gemm_impl == TSR_GEMM_ONEDNN) {
        const dnnl_version_t *v = dnnl_version();
        const char *isa = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
        if (isa && strncmp(isa, "cpu_isa_", 8) == 0)
            isa += 8;
        snprintf(buf, len, "oneDNN %d.%d.%d %s kernels", v->major, v->minor, v->patch, isa ? isa : "unknown");
        return;
    }
#endif
    snprintf(buf, len, "OpenBLAS %s kernels", tsr_place_blas_core());
}

void tsr_compute_gemm_ld(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                         size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc)
{
#ifdef TSR_HAVE_ONEDNN
    /* Empty products go to CBLAS, which defines them (C = beta C). */
    if (gemm_impl == TSR_GEMM_ONEDNN && m && n && k &&
        dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', (dnnl_dim_t)m, (dnnl_dim_t)n, (dnnl_dim_t)k, alpha, a,
                   (dnnl_dim_t)lda, b, (dnnl_dim_t)ldb, beta, c, (dnnl_dim_t)ldc) == dnnl_success)
        return;
#endif
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

void tsr_compute_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                      const float *b, float beta, float *c)
{
    tsr_compute_gemm_ld(trans_a, trans_b, m, n, k, alpha, a, trans_a ? m : k, b, trans_b ? k : n, beta, c, n);
}
