/* SPDX-License-Identifier: BSD-3-Clause */
/* Mixed precision (train.precision = bf16 / fp16): casts between fp32 and
 * the half types, the backward of an activation whose output is stored
 * half, and the loss scaler's unscale. The GEMMs are cuBLAS's (gpu.c,
 * tsr_gpu_gemm_half); everything else of the step stays fp32. */
#include "compute/cuda/kernels.cuh"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

/* One spelling for both half types, on the device and in the emulator. */
__device__ static inline float to_f(__nv_bfloat16 h) { return __bfloat162float(h); }
__device__ static inline float to_f(__half h) { return __half2float(h); }
__device__ static inline void from_f(float f, __nv_bfloat16 *h) { *h = __float2bfloat16(f); }
__device__ static inline void from_f(float f, __half *h) { *h = __float2half(f); }

template <typename T> __global__ void to_half_k(const float *x, T *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        from_f(x[i], &y[i]);
}

template <typename T> __global__ void from_half_k(const T *x, float *y, size_t n)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        y[i] = to_f(x[i]);
}

static int check_half(tsr_precision_t p, const char *fn)
{
    if (p != TSR_PRECISION_BF16 && p != TSR_PRECISION_FP16)
        return tsr_error_set(TSR_EINVAL, "%s: precision %d is not a half type", fn, (int)p);
    return TSR_OK;
}

/* The launches, one line each for tests/cudaemu/launch.cmake (which drops
 * the stream: the emulator runs every stream in order). */
template <typename T> static void to_half(const float *x, void *y, size_t n, cudaStream_t s)
{
    (void)s;
    to_half_k<T><<<elem_blocks(n), TSR_THREADS, 0, s>>>(x, (T *)y, n);
}

template <typename T> static void from_half(const void *x, float *y, size_t n, cudaStream_t s)
{
    (void)s;
    from_half_k<T><<<elem_blocks(n), TSR_THREADS, 0, s>>>((const T *)x, y, n);
}

int tsr_gpu_to_half(tsr_gpu_t *g, tsr_precision_t p, const float *dsrc, void *ddst, size_t n, void *stream)
{
    int rc = check_half(p, "tsr_gpu_to_half");
    if (rc || n == 0)
        return rc ? rc : noop(g, "tsr_gpu_to_half");
    BEGIN(g, "tsr_gpu_to_half", dsrc, ddst);
    cudaStream_t s = stream ? (cudaStream_t)stream : g->stream;
    if (p == TSR_PRECISION_BF16)
        to_half<__nv_bfloat16>(dsrc, ddst, n, s);
    else
        to_half<__half>(dsrc, ddst, n, s);
    return tsr_cuda_check_launch("tsr_gpu_to_half");
}

int tsr_gpu_from_half(tsr_gpu_t *g, tsr_precision_t p, const void *dsrc, float *ddst, size_t n, void *stream)
{
    int rc = check_half(p, "tsr_gpu_from_half");
    if (rc || n == 0)
        return rc ? rc : noop(g, "tsr_gpu_from_half");
    BEGIN(g, "tsr_gpu_from_half", dsrc, ddst);
    cudaStream_t s = stream ? (cudaStream_t)stream : g->stream;
    if (p == TSR_PRECISION_BF16)
        from_half<__nv_bfloat16>(dsrc, ddst, n, s);
    else
        from_half<__half>(dsrc, ddst, n, s);
    return tsr_cuda_check_launch("tsr_gpu_from_half");
}

/* dy *= act'(.) from the activation's output y, stored half: the
 * derivative is formed in fp32 from the stored value, as autocast's
 * backward of a half activation does. */
template <typename T> __global__ void act_backward_half_k(int act, const T *y, float *dy, size_t len)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        float v = to_f(y[i]);
        if (act == TSR_ACT_RELU)
            dy[i] = v > 0.0f ? dy[i] : 0.0f;
        else if (act == TSR_ACT_TANH)
            dy[i] *= 1.0f - v * v;
        else
            dy[i] *= v * (1.0f - v);
    }
}

template <typename T> static void act_backward_half(tsr_gpu_t *g, int act, const void *y, float *dy, size_t len)
{
    (void)g;
    act_backward_half_k<T><<<elem_blocks(len), TSR_THREADS, 0, g->stream>>>(act, (const T *)y, dy, len);
}

int tsr_gpu_act_backward_half(tsr_gpu_t *g, tsr_precision_t p, tsr_act_t act, const void *dy_out, float *ddy,
                              size_t len)
{
    int rc = check_half(p, "tsr_gpu_act_backward_half");
    if (!rc && (act == TSR_ACT_GELU || act == TSR_ACT_SILU || (unsigned)act > (unsigned)TSR_ACT_SILU))
        rc = tsr_error_set(TSR_EINVAL, "tsr_gpu_act_backward_half: activation %d has no GPU version", (int)act);
    if (rc || len == 0 || act == TSR_ACT_NONE)
        return rc ? rc : noop(g, "tsr_gpu_act_backward_half");
    BEGIN(g, "tsr_gpu_act_backward_half", dy_out, ddy);
    if (p == TSR_PRECISION_BF16)
        act_backward_half<__nv_bfloat16>(g, (int)act, dy_out, ddy, len);
    else
        act_backward_half<__half>(g, (int)act, dy_out, ddy, len);
    return tsr_cuda_check_launch("tsr_gpu_act_backward_half");
}

__global__ void scale_k(float *x, size_t n, float s)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

int tsr_gpu_scale(tsr_gpu_t *g, float *dx, size_t n, float s)
{
    if (n == 0)
        return noop(g, "tsr_gpu_scale");
    BEGIN(g, "tsr_gpu_scale", dx);
    scale_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dx, n, s);
    return tsr_cuda_check_launch("tsr_gpu_scale");
}
