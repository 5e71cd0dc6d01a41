/* Shared by the GPU layer's files: the handle's layout and the helpers that
 * turn CUDA/cuBLAS failures into tessera errors. Included from C (gpu.c) and
 * from CUDA C++ (the .cu files), so it holds declarations only. */
#ifndef TSR_COMPUTE_CUDA_GPU_INTERNAL_H
#define TSR_COMPUTE_CUDA_GPU_INTERNAL_H
#include "tessera/compute.h"

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

#ifdef __cplusplus
}
#endif
#endif
