/* SPDX-License-Identifier: BSD-3-Clause */
/* libcublas.so.13 for the CUDA emulator (tests/cudaemu): the entry points
 * src/compute/cuda/cublas_load.c opens, with cuBLAS's argument rules
 * (column-major, leading dimensions at least the stored rows and 1) and
 * a reference SGEMM on host memory. A wrong operand mapping or leading
 * dimension in the caller gives a wrong product or an out-of-bounds read
 * that ASan reports. GemmEx takes bf16 or fp16 A and B, an fp32 C and
 * fp32 compute, as tessera's mixed precision calls it. Built as a shared library and found through
 * LD_LIBRARY_PATH, so the real dlopen path is the one tested. */
#include <cublas_v2.h>
#include <cudaemu_half.h>

#include <stdlib.h>

struct cublasContext {
    cudaStream_t stream;
    cublasMath_t math;
};

cublasStatus_t cublasCreate_v2(cublasHandle_t *h)
{
    *h = calloc(1, sizeof **h);
    return *h ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

cublasStatus_t cublasDestroy_v2(cublasHandle_t h)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    free(h);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math = m;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusString(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

static int max1(int v) { return v > 1 ? v : 1; }

/* C = alpha op(A) op(B) + beta C, C m x n, op(A) m x k, op(B) k x n, all
 * column-major. As cuBLAS: C is not read when beta is 0, and k = 0 scales
 * C by beta. */
/* Element i of a matrix stored as type t. */
static float load(const void *p, cudaDataType t, size_t i)
{
    if (t == CUDA_R_16BF)
        return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    if (t == CUDA_R_16F)
        return __half2float(((const __half *)p)[i]);
    return ((const float *)p)[i];
}

static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                           int ldb, const float *beta, float *C, int ldc);

cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                              const float *alpha, const float *A, int lda, const float *B, int ldb, const float *beta,
                              float *C, int ldc)
{
    return gemm(h, ta, tb, m, n, k, alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, beta, C, ldc);
}

/* As cuBLAS: A and B of one half type, C fp32, fp32 compute; alpha and
 * beta are floats then. */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t algo)
{
    if (at != bt || (at != CUDA_R_16BF && at != CUDA_R_16F && at != CUDA_R_32F) || ct != CUDA_R_32F ||
        compute != CUBLAS_COMPUTE_32F || algo != CUBLAS_GEMM_DEFAULT)
        return CUBLAS_STATUS_INVALID_VALUE;
    return gemm(h, ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ldc);
}

static cublasStatus_t gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                           const float *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                           int ldb, const float *beta, float *C, int ldc)
{
    if (!h)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    if ((ta != CUBLAS_OP_N && ta != CUBLAS_OP_T) || (tb != CUBLAS_OP_N && tb != CUBLAS_OP_T) || m < 0 || n < 0 ||
        k < 0 || lda < max1(ta == CUBLAS_OP_N ? m : k) || ldb < max1(tb == CUBLAS_OP_N ? k : n) || ldc < max1(m) ||
        !alpha || !beta)
        return CUBLAS_STATUS_INVALID_VALUE;
    float a = *alpha, b = *beta;
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double acc = 0.0;
            for (int l = 0; l < k; l++) {
                float x = load(A, at, ta == CUBLAS_OP_N ? i + (size_t)l * lda : l + (size_t)i * lda);
                float y = load(B, bt, tb == CUBLAS_OP_N ? l + (size_t)j * ldb : j + (size_t)l * ldb);
                acc += (double)x * y;
            }
            float *c = &C[i + (size_t)j * ldc];
            *c = b == 0.0f ? a * (float)acc : a * (float)acc + b * *c;
        }
    return CUBLAS_STATUS_SUCCESS;
}
