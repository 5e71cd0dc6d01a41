/* SPDX-License-Identifier: BSD-3-Clause */
/* Helpers shared by the .cu files: launch sizes, argument checks and warp
 * reductions. CUDA C++ only. */
#ifndef TSR_COMPUTE_CUDA_KERNELS_CUH
#define TSR_COMPUTE_CUDA_KERNELS_CUH
#include "compute/cuda/gpu_internal.h"
#include "tessera/error.h"

#define TSR_THREADS 256
#define TSR_FULL_MASK 0xffffffffu

/* Blocks for a grid-stride loop over n items: enough to fill any current
 * GPU, capped so huge n does not overflow the grid. */
static inline unsigned elem_blocks(size_t n)
{
    size_t b = (n + TSR_THREADS - 1) / TSR_THREADS;
    return b > 8192 ? 8192u : (unsigned)b;
}

/* A grid-stride loop: each thread takes i, i + the grid's threads, ... */
#define FOR_EACH(i, n)                                                                                                 \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

/* Zero-size calls do nothing, but still reject a NULL handle. */
static inline int noop(tsr_gpu_t *g, const char *fn)
{
    return g ? TSR_OK : tsr_error_set(TSR_EINVAL, "%s: NULL GPU handle", fn);
}

/* Binds the handle's device and rejects NULL buffers: TSR_OK to go on. */
static inline int begin(tsr_gpu_t *g, const char *fn, int nptr, const void *const *ptrs)
{
    int rc = tsr_cuda_bind(g, fn);
    if (rc)
        return rc;
    for (int i = 0; i < nptr; i++)
        if (!ptrs[i])
            return tsr_error_set(TSR_EINVAL, "%s: NULL device pointer (argument %d)", fn, i + 1);
    return TSR_OK;
}
#define BEGIN(g, fn, ...)                                                                                             \
    do {                                                                                                              \
        const void *ptrs_[] = {__VA_ARGS__};                                                                          \
        int rc_ = begin(g, fn, (int)(sizeof ptrs_ / sizeof ptrs_[0]), ptrs_);                                         \
        if (rc_)                                                                                                      \
            return rc_;                                                                                               \
    } while (0)

/* Butterfly reductions: every lane ends with the same bits, since lane L
 * adds x[L] + x[L^m] and lane L^m adds x[L^m] + x[L] (addition commutes). */
template <typename T> __device__ inline T warp_sum(T v)
{
    for (int off = 16; off > 0; off >>= 1)
        v += __shfl_xor_sync(TSR_FULL_MASK, v, off);
    return v;
}

__device__ inline float warp_max(float v)
{
    for (int off = 16; off > 0; off >>= 1) {
        float o = __shfl_xor_sync(TSR_FULL_MASK, v, off);
        v = o > v ? o : v;
    }
    return v;
}

/* Fixed-shape tree over a block's shared array s[TSR_THREADS]: the same
 * order every run. Result in s[0]. */
template <typename T> __device__ inline void block_sum(T *s)
{
    for (unsigned off = TSR_THREADS / 2; off > 0; off >>= 1) {
        __syncthreads();
        if (threadIdx.x < off)
            s[threadIdx.x] += s[threadIdx.x + off];
    }
    __syncthreads();
}
/* Column sums over a block of 32 columns x 8 row lanes: each thread's
 * partial acc into s[threadIdx.y][threadIdx.x], the column's total (a
 * fixed-order tree) ends in s[0][threadIdx.x]. */
template <typename T> __device__ inline void lanes_sum(T (*s)[32], T acc)
{
    s[threadIdx.y][threadIdx.x] = acc;
    for (unsigned off = 4; off > 0; off >>= 1) {
        __syncthreads();
        if (threadIdx.y < off)
            s[threadIdx.y][threadIdx.x] += s[threadIdx.y + off][threadIdx.x];
    }
}

/* The guard (compute.h): whether this update is skipped (one thread
 * counts it), and the note of a non-finite weight. */
__device__ static inline bool guard_skips(tsr_gpu_guard_t gd)
{
    if (!gd.skip_if || isfinite(*gd.skip_if))
        return false;
    if (gd.note && !gd.quiet && blockIdx.x == 0 && threadIdx.x == 0)
        gd.note[1]++;
    return true;
}

__device__ static inline void guard_note(tsr_gpu_guard_t gd, float p)
{
    /* Every thread that sees one writes the same value: no atomics needed. */
    if (!isfinite(p) && gd.note && gd.note[0] == 0)
        gd.note[0] = gd.step;
}

static inline tsr_gpu_guard_t guard_or_none(const tsr_gpu_guard_t *guard)
{
    tsr_gpu_guard_t none = {NULL, NULL, 0, 0};
    return guard ? *guard : none;
}

#endif
