/* SPDX-License-Identifier: BSD-3-Clause */
/* The cuBLAS API as tessera's GPU layer uses it, for the CUDA emulator
 * (tests/cudaemu): a column-major reference SGEMM (and GemmEx on bf16 and
 * fp16 inputs) with cuBLAS's argument rules stands in for the library that
 * src/compute/cuda/cublas_load.c opens. */
#ifndef TSR_CUDAEMU_CUBLAS_V2_H
#define TSR_CUDAEMU_CUBLAS_V2_H
#include "cuda_runtime.h"

#define CUBLAS_VER_MAJOR 13

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_ALLOC_FAILED = 3,
    CUBLAS_STATUS_INVALID_VALUE = 7
} cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1, CUBLAS_OP_C = 2 } cublasOperation_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0, CUBLAS_TF32_TENSOR_OP_MATH = 3 } cublasMath_t;
typedef struct cublasContext *cublasHandle_t;
/* library_types.h and cublasGemmEx's enums, with the toolkit's values. */
typedef enum cudaDataType_t { CUDA_R_32F = 0, CUDA_R_16F = 2, CUDA_R_16BF = 14 } cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;

#ifdef __cplusplus
}
#endif
#endif
