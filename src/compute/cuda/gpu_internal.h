/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared by the GPU layer's files: the handle's layout and the helpers that
 * turn CUDA/cuBLAS failures into tessera errors. Included from C (gpu.c) and
 * from CUDA C++ (the .cu files), so it holds declarations only. */
#ifndef TSR_COMPUTE_CUDA_GPU_INTERNAL_H
#define TSR_COMPUTE_CUDA_GPU_INTERNAL_H
#include "compute/gpu_train.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tsr_gpu {
    int dev;
    cudaStream_t stream;
    cublasHandle_t blas;
    /* Device scratch for the two-pass reductions, grown on demand and kept,
     * so steady-state steps allocate nothing. */
    void *scratch;
    size_t scratch_bytes;
    char name[256];
};

/* Returns TSR_OK, or sets "<what>: <CUDA error string>" and returns
 * TSR_ENOMEM for allocation failures, TSR_EINTERNAL otherwise. */
int tsr_cuda_check(cudaError_t e, const char *what);
/* After kernel launches: picks up launch errors (bad configuration). */
int tsr_cuda_check_launch(const char *what);
/* Makes the handle's device current on the calling thread, so a handle made
 * on one thread works on another (the serve batcher's). */
int tsr_cuda_bind(tsr_gpu_t *g, const char *what);
/* At least bytes of device scratch, valid for work queued on g's stream
 * until the next call. */
int tsr_cuda_scratch(tsr_gpu_t *g, size_t bytes, void **p);

/* The cuBLAS calls tessera makes, resolved by tsr_cublas_load (cublas_load.c)
 * the first time a handle is created: linking cuBLAS would slow every
 * process's start-up. */
typedef struct tsr_cublas {
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    cublasStatus_t (*set_math_mode)(cublasHandle_t, cublasMath_t);
    cublasStatus_t (*sgemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const float *,
                            const float *, int, const float *, int, const float *, float *, int);
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
    const char *(*status_string)(cublasStatus_t);
} tsr_cublas_t;
extern tsr_cublas_t tsr_cublas;
/* Loads cuBLAS once; TSR_ENOTSUP with a message naming what was tried. */
int tsr_cublas_load(void);

#ifdef __cplusplus
}
#endif
#endif
