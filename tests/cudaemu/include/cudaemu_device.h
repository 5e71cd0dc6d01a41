/* SPDX-License-Identifier: BSD-3-Clause */
/* Device-side CUDA C++ for the CUDA emulator (tests/cudaemu): kernels
 * compile as ordinary C++ functions and each launch runs every block in
 * turn on the calling CPU thread, one fiber per CUDA thread, so
 * __syncthreads() and warp shuffles keep their meaning. tests/cudaemu/
 * launch.cmake rewrites `k<<<grid, block, shmem, stream>>>(args)` into
 * tsr_emu_launch("k", grid, block, k, args). */
#ifndef TSR_CUDAEMU_DEVICE_H
#define TSR_CUDAEMU_DEVICE_H
#include <functional>
#include <math.h>
#include <stddef.h>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
/* Blocks run one after another, so a function-local static is exactly one
 * block's shared memory. */
#define __shared__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

/* The running CUDA thread's coordinates, set by the scheduler before it
 * resumes each fiber. */
extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

void __syncthreads(void);

namespace tsr_emu {
void run(const char *kernel, dim3 grid, dim3 block, const std::function<void()> &body);
void shfl_xor(unsigned mask, const void *in, void *out, size_t size, int lane_mask);
} // namespace tsr_emu

template <typename T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask)
{
    static_assert(sizeof(T) <= 8, "shuffles move at most 8 bytes");
    T out;
    tsr_emu::shfl_xor(mask, &v, &out, sizeof v, lane_mask);
    return out;
}

template <typename... P, typename... A>
void tsr_emu_launch(const char *kernel, dim3 grid, dim3 block, void (*k)(P...), A... args)
{
    tsr_emu::run(kernel, grid, block, [&]() { k(args...); });
}
#endif
