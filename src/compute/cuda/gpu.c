/* SPDX-License-Identifier: BSD-3-Clause */
/* GPU layer, host side: devices, the handle (device + non-blocking stream +
 * cuBLAS bound to it), memory, streams, events and GEMM through cuBLAS.
 * The CUDA kernels are in kernels_elem.cu and kernels_reduce.cu, which
 * implement their tsr_gpu_* functions directly (extern "C" through
 * compute.h) and share this file's helpers through gpu_internal.h. */
#include "compute/cuda/gpu_internal.h"
#include "compute/gpu_layers.h"
#include "tessera/error.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tsr_cuda_check(cudaError_t e, const char *what)
{
    if (e == cudaSuccess)
        return TSR_OK;
    /* The runtime also keeps e as its "last error", which the next
     * launch check would report as that launch's: clear it here. */
    (void)cudaGetLastError();
    int code = e == cudaErrorMemoryAllocation ? TSR_ENOMEM : TSR_EINTERNAL;
    return tsr_error_set(code, "%s: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int tsr_cuda_check_launch(const char *what)
{
    cudaError_t e = cudaGetLastError();
    if (e == cudaSuccess)
        return TSR_OK;
    return tsr_error_set(TSR_EINTERNAL, "%s: kernel launch: %s (%s)", what, cudaGetErrorString(e), cudaGetErrorName(e));
}

int tsr_cuda_bind(tsr_gpu_t *g, const char *what)
{
    if (!g)
        return tsr_error_set(TSR_EINVAL, "%s: NULL GPU handle", what);
    cudaError_t e = cudaSetDevice(g->dev);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tsr_error_set(TSR_EINTERNAL, "%s: cudaSetDevice(%d): %s", what, g->dev, cudaGetErrorString(e));
    }
    return TSR_OK;
}

int tsr_cuda_scratch(tsr_gpu_t *g, size_t bytes, void **p)
{
    if (bytes > g->scratch_bytes) {
        size_t want = bytes > 2 * g->scratch_bytes ? bytes : 2 * g->scratch_bytes;
        want = want < ((size_t)64 << 10) ? ((size_t)64 << 10) : want;
        /* Work already queued may still read the old buffer. */
        int rc = tsr_cuda_check(cudaStreamSynchronize(g->stream), "GPU scratch: cudaStreamSynchronize");
        if (rc)
            return rc;
        cudaFree(g->scratch);
        g->scratch = NULL;
        g->scratch_bytes = 0;
        char what[96];
        snprintf(what, sizeof what, "GPU scratch: cudaMalloc of %zu bytes", want);
        if ((rc = tsr_cuda_check(cudaMalloc(&g->scratch, want), what)))
            return rc;
        g->scratch_bytes = want;
    }
    *p = g->scratch;
    return TSR_OK;
}

/* ---- devices and the handle ---------------------------------------- */

int tsr_gpu_count(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        /* Not a failure (a CPU-only node), but the message says why. */
        (void)cudaGetLastError();
        tsr_error_set(TSR_ENOTSUP, "cudaGetDeviceCount: %s (%s)", cudaGetErrorString(e), cudaGetErrorName(e));
        return 0;
    }
    if (n == 0)
        tsr_error_set(TSR_ENOTSUP, "cudaGetDeviceCount: no CUDA device");
    return n;
}

static int check_dev(int dev, const char *fn)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return tsr_error_set(TSR_EINVAL, "%s: CUDA device %d requested, but cudaGetDeviceCount failed: %s", fn, dev,
                             cudaGetErrorString(e));
    }
    if (dev < 0 || dev >= n)
        return tsr_error_set(TSR_EINVAL, "%s: CUDA device %d out of range (this process sees %d)", fn, dev, n);
    return TSR_OK;
}

int tsr_gpu_pci_busid(int dev, char *buf, size_t len)
{
    if (!buf || len < 13)
        return tsr_error_set(TSR_EINVAL, "tsr_gpu_pci_busid: buffer must hold 13 bytes");
    int rc = check_dev(dev, "tsr_gpu_pci_busid");
    if (rc)
        return rc;
    /* Built from the attributes rather than cudaDeviceGetPCIBusId, whose
     * spelling (domain width, case) differs from the documented one. */
    int dom = 0, bus = 0, slot = 0;
    if ((rc = tsr_cuda_check(cudaDeviceGetAttribute(&dom, cudaDevAttrPciDomainId, dev), "cudaDeviceGetAttribute")) ||
        (rc = tsr_cuda_check(cudaDeviceGetAttribute(&bus, cudaDevAttrPciBusId, dev), "cudaDeviceGetAttribute")) ||
        (rc = tsr_cuda_check(cudaDeviceGetAttribute(&slot, cudaDevAttrPciDeviceId, dev), "cudaDeviceGetAttribute")))
        return rc;
    snprintf(buf, len, "%04x:%02x:%02x.0", (unsigned)dom, (unsigned)bus, (unsigned)slot);
    return TSR_OK;
}

static int blas_check(cublasStatus_t s, const char *what)
{
    if (s == CUBLAS_STATUS_SUCCESS)
        return TSR_OK;
    int code = s == CUBLAS_STATUS_ALLOC_FAILED ? TSR_ENOMEM : TSR_EINTERNAL;
    return tsr_error_set(code, "%s: %s", what, tsr_cublas.status_string(s));
}

int tsr_gpu_create(int dev, tsr_gpu_t **out)
{
    *out = NULL;
    int rc = check_dev(dev, "tsr_gpu_create");
    if (rc)
        return rc;
    tsr_gpu_t *g = calloc(1, sizeof *g);
    if (!g)
        return tsr_error_set(TSR_ENOMEM, "tsr_gpu_create: out of memory");
    g->dev = dev;
    struct cudaDeviceProp prop;
    if ((rc = tsr_cuda_check(cudaSetDevice(dev), "tsr_gpu_create: cudaSetDevice")) ||
        (rc = tsr_cuda_check(cudaGetDeviceProperties(&prop, dev), "tsr_gpu_create: cudaGetDeviceProperties")) ||
        (rc = tsr_cuda_check(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking),
                             "tsr_gpu_create: cudaStreamCreateWithFlags")))
        goto fail;
    snprintf(g->name, sizeof g->name, "%s", prop.name);
    if ((rc = tsr_cublas_load()) || (rc = blas_check(tsr_cublas.create(&g->blas), "tsr_gpu_create: cublasCreate")))
        goto fail;
    /* FP32 throughout (no TF32 tensor-core inputs), so GEMMs match the
     * CPU's to float rounding. */
    if ((rc = blas_check(tsr_cublas.set_stream(g->blas, g->stream), "tsr_gpu_create: cublasSetStream")) ||
        (rc = blas_check(tsr_cublas.set_math_mode(g->blas, CUBLAS_DEFAULT_MATH), "tsr_gpu_create: cublasSetMathMode")))
        goto fail;
    *out = g;
    return TSR_OK;
fail:
    tsr_gpu_destroy(g);
    return tsr_error_prefix(rc, "CUDA device %d: ", dev);
}

void tsr_gpu_destroy(tsr_gpu_t *g)
{
    if (!g)
        return;
    (void)cudaSetDevice(g->dev);
    if (g->stream)
        (void)cudaStreamSynchronize(g->stream);
    if (g->blas)
        (void)tsr_cublas.destroy(g->blas);
    if (g->scratch)
        (void)cudaFree(g->scratch);
    if (g->stream)
        (void)cudaStreamDestroy(g->stream);
    (void)cudaGetLastError();
    free(g);
}

int tsr_gpu_device(const tsr_gpu_t *g) { return g ? g->dev : -1; }

const char *tsr_gpu_name(const tsr_gpu_t *g) { return g ? g->name : ""; }

void *tsr_gpu_stream(tsr_gpu_t *g) { return g ? (void *)g->stream : NULL; }

/* ---- memory ---------------------------------------------------------- */

int tsr_gpu_alloc(tsr_gpu_t *g, size_t bytes, void **dptr)
{
    *dptr = NULL;
    int rc = tsr_cuda_bind(g, "tsr_gpu_alloc");
    if (rc || bytes == 0)
        return rc;
    char what[96];
    snprintf(what, sizeof what, "cudaMalloc of %zu bytes on device %d", bytes, g->dev);
    void *p = NULL;
    if ((rc = tsr_cuda_check(cudaMalloc(&p, bytes), what)))
        return rc;
    if ((rc = tsr_cuda_check(cudaMemsetAsync(p, 0, bytes, g->stream), "tsr_gpu_alloc: cudaMemsetAsync")) ||
        (rc = tsr_cuda_check(cudaStreamSynchronize(g->stream), "tsr_gpu_alloc: cudaStreamSynchronize"))) {
        (void)cudaFree(p);
        return rc;
    }
    *dptr = p;
    return TSR_OK;
}

void tsr_gpu_free(tsr_gpu_t *g, void *dptr)
{
    if (!dptr)
        return;
    if (g)
        (void)cudaSetDevice(g->dev);
    (void)cudaFree(dptr);
    (void)cudaGetLastError();
}

int tsr_gpu_host_alloc(size_t bytes, void **ptr)
{
    *ptr = NULL;
    if (bytes == 0)
        return TSR_OK;
    char what[96];
    snprintf(what, sizeof what, "cudaMallocHost of %zu bytes", bytes);
    return tsr_cuda_check(cudaMallocHost(ptr, bytes), what);
}

void tsr_gpu_host_free(void *ptr)
{
    if (ptr) {
        (void)cudaFreeHost(ptr);
        (void)cudaGetLastError();
    }
}

int tsr_gpu_upload(tsr_gpu_t *g, void *dst, const void *src, size_t bytes)
{
    int rc = tsr_cuda_bind(g, "tsr_gpu_upload");
    if (rc || bytes == 0)
        return rc;
    return tsr_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g->stream),
                          "tsr_gpu_upload: cudaMemcpyAsync");
}

int tsr_gpu_download(tsr_gpu_t *g, void *dst, const void *src, size_t bytes)
{
    int rc = tsr_cuda_bind(g, "tsr_gpu_download");
    if (rc)
        return rc;
    if (bytes && (rc = tsr_cuda_check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g->stream),
                                      "tsr_gpu_download: cudaMemcpyAsync")))
        return rc;
    /* Even for 0 bytes: callers rely on "download waits". */
    return tsr_cuda_check(cudaStreamSynchronize(g->stream), "tsr_gpu_download: cudaStreamSynchronize");
}

int tsr_gpu_copy(tsr_gpu_t *g, void *ddst, const void *dsrc, size_t bytes)
{
    int rc = tsr_cuda_bind(g, "tsr_gpu_copy");
    if (rc || bytes == 0 || ddst == dsrc)
        return rc;
    return tsr_cuda_check(cudaMemcpyAsync(ddst, dsrc, bytes, cudaMemcpyDeviceToDevice, g->stream),
                          "tsr_gpu_copy: cudaMemcpyAsync");
}

int tsr_gpu_memset0(tsr_gpu_t *g, void *dptr, size_t bytes)
{
    int rc = tsr_cuda_bind(g, "tsr_gpu_memset0");
    if (rc || bytes == 0)
        return rc;
    return tsr_cuda_check(cudaMemsetAsync(dptr, 0, bytes, g->stream), "tsr_gpu_memset0: cudaMemsetAsync");
}

int tsr_gpu_sync(tsr_gpu_t *g)
{
    int rc = tsr_cuda_bind(g, "tsr_gpu_sync");
    return rc ? rc : tsr_cuda_check(cudaStreamSynchronize(g->stream), "tsr_gpu_sync: cudaStreamSynchronize");
}

/* ---- streams and events ---------------------------------------------- */

int tsr_gpu_stream_create(tsr_gpu_t *g, void **stream)
{
    *stream = NULL;
    int rc = tsr_cuda_bind(g, "tsr_gpu_stream_create");
    if (rc)
        return rc;
    cudaStream_t s = NULL;
    if ((rc = tsr_cuda_check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking),
                             "tsr_gpu_stream_create: cudaStreamCreateWithFlags")))
        return rc;
    *stream = s;
    return TSR_OK;
}

void tsr_gpu_stream_destroy(void *stream)
{
    if (stream) {
        (void)cudaStreamDestroy((cudaStream_t)stream);
        (void)cudaGetLastError();
    }
}

int tsr_gpu_stream_sync(void *stream)
{
    return tsr_cuda_check(cudaStreamSynchronize((cudaStream_t)stream), "tsr_gpu_stream_sync: cudaStreamSynchronize");
}

int tsr_gpu_stream_done(void *stream)
{
    cudaError_t e = cudaStreamQuery((cudaStream_t)stream);
    if (e == cudaErrorNotReady)
        return 0;
    int rc = tsr_cuda_check(e, "tsr_gpu_stream_done: cudaStreamQuery");
    return rc ? rc : 1;
}

int tsr_gpu_event_create(void **event)
{
    *event = NULL;
    cudaEvent_t e = NULL;
    int rc = tsr_cuda_check(cudaEventCreate(&e), "tsr_gpu_event_create: cudaEventCreate");
    if (rc)
        return rc;
    *event = e;
    return TSR_OK;
}

void tsr_gpu_event_destroy(void *event)
{
    if (event) {
        (void)cudaEventDestroy((cudaEvent_t)event);
        (void)cudaGetLastError();
    }
}

int tsr_gpu_event_record(void *event, void *stream)
{
    return tsr_cuda_check(cudaEventRecord((cudaEvent_t)event, (cudaStream_t)stream),
                          "tsr_gpu_event_record: cudaEventRecord");
}

int tsr_gpu_stream_wait_event(void *stream, void *event)
{
    return tsr_cuda_check(cudaStreamWaitEvent((cudaStream_t)stream, (cudaEvent_t)event, 0),
                          "tsr_gpu_stream_wait_event: cudaStreamWaitEvent");
}

int tsr_gpu_event_elapsed_ms(void *start, void *end, float *ms)
{
    int rc = tsr_cuda_check(cudaEventSynchronize((cudaEvent_t)end), "tsr_gpu_event_elapsed_ms: cudaEventSynchronize");
    return rc ? rc
              : tsr_cuda_check(cudaEventElapsedTime(ms, (cudaEvent_t)start, (cudaEvent_t)end),
                               "tsr_gpu_event_elapsed_ms: cudaEventElapsedTime");
}

/* ---- GEMM ------------------------------------------------------------ */

/* C = op(A) op(B) in row-major, through cuBLAS's column-major GEMM; A and
 * B of type t (fp32: cublasSgemm; bf16/fp16: cublasGemmEx with fp32
 * accumulation), C fp32. */
static int gemm(tsr_gpu_t *g, const char *fn, cudaDataType t, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                float alpha, const void *da, size_t lda_, const void *db, size_t ldb_, float beta, float *dc,
                size_t ldc_)
{
    int rc = tsr_cuda_bind(g, fn);
    if (rc || m == 0 || n == 0)
        return rc;
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX)
        return tsr_error_set(TSR_EINVAL, "%s: %zux%zux%zu exceeds cuBLAS's int sizes", fn, m, n, k);
    /* Row-major leading dimensions exactly as tsr_compute_gemm's (clamped
     * to 1 for k = 0, which cuBLAS rejects but treats as C = beta*C). */
    if (lda_ > INT_MAX || ldb_ > INT_MAX || ldc_ > INT_MAX)
        return tsr_error_set(TSR_EINVAL, "%s: leading dimensions %zu, %zu, %zu exceed cuBLAS's int sizes", fn, lda_,
                             ldb_, ldc_);
    int lda = lda_ ? (int)lda_ : trans_a ? (int)m : (int)k, ldb = ldb_ ? (int)ldb_ : trans_b ? (int)k : (int)n;
    int ldc = ldc_ ? (int)ldc_ : (int)n;
    lda = lda < 1 ? 1 : lda;
    ldb = ldb < 1 ? 1 : ldb;
    /* A row-major X is the column-major X^T, so C = op(A) op(B) is computed
     * as C^T = op(B)^T op(A)^T: swap the operands, keep each one's flag. */
    cublasOperation_t ob = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, oa = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s =
        t == CUDA_R_32F
            ? tsr_cublas.sgemm(g->blas, ob, oa, (int)n, (int)m, (int)k, &alpha, db, ldb, da, lda, &beta, dc, ldc)
            : tsr_cublas.gemm_ex(g->blas, ob, oa, (int)n, (int)m, (int)k, &alpha, db, t, ldb, da, t, lda, &beta, dc,
                                 CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    if (s != CUBLAS_STATUS_SUCCESS)
        return tsr_error_set(s == CUBLAS_STATUS_ALLOC_FAILED ? TSR_ENOMEM : TSR_EINTERNAL,
                             "%s: %s (m=%zu n=%zu k=%zu trans=%d,%d): %s", fn,
                             t == CUDA_R_32F ? "cublasSgemm" : "cublasGemmEx", m, n, k, trans_a, trans_b,
                             tsr_cublas.status_string(s));
    return TSR_OK;
}

int tsr_gpu_gemm(tsr_gpu_t *g, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *da,
                 const float *db, float beta, float *dc)
{
    return gemm(g, "tsr_gpu_gemm", CUDA_R_32F, trans_a, trans_b, m, n, k, alpha, da, 0, db, 0, beta, dc, 0);
}

int tsr_gpu_gemm_ld(tsr_gpu_t *g, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *da,
                    size_t lda, const float *db, size_t ldb, float beta, float *dc, size_t ldc)
{
    return gemm(g, "tsr_gpu_gemm_ld", CUDA_R_32F, trans_a, trans_b, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc);
}

int tsr_gpu_gemm_half(tsr_gpu_t *g, tsr_precision_t p, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, const void *da, const void *db, float beta, float *dc)
{
    if (p != TSR_PRECISION_BF16 && p != TSR_PRECISION_FP16)
        return tsr_error_set(TSR_EINVAL, "tsr_gpu_gemm_half: precision %d is not a half type", (int)p);
    return gemm(g, "tsr_gpu_gemm_half", p == TSR_PRECISION_BF16 ? CUDA_R_16BF : CUDA_R_16F, trans_a, trans_b, m, n, k,
                alpha, da, 0, db, 0, beta, dc, 0);
}
