/* SPDX-License-Identifier: BSD-3-Clause */
/* The CUDA emulator's runtime API (tests/cudaemu): the calls tessera's GPU
 * layer makes (devices, memory, streams, events), on the CPU.
 *
 * Why the emulator: the GPU layer's kernels and host code must run in CI,
 * which has no GPU. Built with ASan/UBSan, it finds what compute-sanitizer
 * would find in a kernel (out-of-bounds reads and writes: device memory
 * is malloc'd), plus index, launch-shape and barrier mistakes
 * (executor.cpp) and wrong-sized copies (here). Streams complete every
 * call before returning, so ordering mistakes between streams stay for
 * hardware (the `gpu` ctest label). */
#include "cuda_runtime.h"
#include "emu_internal.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

namespace {

/* ---- errors ------------------------------------------------------------ */

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

/* ---- devices ------------------------------------------------------------- */

int device_count()
{
    const char *e = std::getenv("TSR_CUDAEMU_DEVICES");
    return e && *e ? std::atoi(e) : 1;
}
thread_local int current_device = 0;

/* Device allocations, so copies and memsets can be checked against them
 * (cudaMemcpy rejects a device range that is not allocated). */
std::mutex mem_lock;
std::map<const char *, size_t> device_mem;
std::set<const void *> streams, events_live;

bool in_device_mem(const void *p, size_t bytes)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    auto it = device_mem.upper_bound(static_cast<const char *>(p));
    if (it == device_mem.begin())
        return false;
    --it;
    const char *c = static_cast<const char *>(p);
    return c >= it->first && (size_t)(c - it->first) <= it->second && bytes <= it->second - (size_t)(c - it->first);
}

/* Handles (streams, events) live from create to destroy. */
bool live(const std::set<const void *> &set, const void *h)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    return set.count(h) != 0;
}

template <typename T> cudaError_t track(std::set<const void *> &set, T *h, T **out)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    set.insert(h);
    *out = h;
    return cudaSuccess;
}

template <typename T> cudaError_t untrack(std::set<const void *> &set, T *h)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    if (!h || !set.erase(h))
        return fail(cudaErrorInvalidResourceHandle);
    delete h;
    return cudaSuccess;
}

bool stream_ok(cudaStream_t s) /* NULL: the default stream */
{
    return !s || live(streams, s);
}
} // namespace

struct CUstream_st {
    int flags;
};
struct CUevent_st {
    double t_ms;
    bool recorded;
};

extern "C" {

const char *cudaGetErrorName(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e)
{
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    }
    return "unknown error";
}

cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaGetDeviceCount(int *n)
{
    *n = device_count();
    return *n > 0 ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int dev)
{
    if (dev < 0 || dev >= device_count())
        return fail(cudaErrorInvalidDevice);
    current_device = dev;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int dev)
{
    if (dev < 0 || dev >= device_count())
        return fail(cudaErrorInvalidDevice);
    std::memset(p, 0, sizeof *p);
    std::snprintf(p->name, sizeof p->name, "tessera CUDA emulator (CPU)");
    p->totalGlobalMem = (size_t)1 << 34;
    p->major = 9;
    p->multiProcessorCount = 1;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int dev)
{
    if (dev < 0 || dev >= device_count())
        return fail(cudaErrorInvalidDevice);
    /* PCI 0000:e0+dev:00.0: no such device in hwloc, as on a node whose
     * GPUs it cannot see. */
    *v = a == cudaDevAttrPciBusId ? 0xe0 + dev : 0;
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **p, size_t bytes)
{
    *p = nullptr;
    char *m = static_cast<char *>(std::malloc(bytes ? bytes : 1));
    if (!m)
        return fail(cudaErrorMemoryAllocation);
    /* cudaMalloc does not clear: NaN bytes make reads of memory nobody
     * wrote show up in results. */
    std::memset(m, 0xff, bytes);
    std::lock_guard<std::mutex> hold(mem_lock);
    device_mem[m] = bytes;
    *p = m;
    return cudaSuccess;
}

cudaError_t cudaFree(void *p)
{
    if (!p)
        return cudaSuccess;
    std::lock_guard<std::mutex> hold(mem_lock);
    auto it = device_mem.find(static_cast<char *>(p));
    if (it == device_mem.end())
        return fail(cudaErrorInvalidValue);
    device_mem.erase(it);
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **p, size_t bytes)
{
    *p = std::malloc(bytes ? bytes : 1);
    return *p ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void *p)
{
    std::free(p);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind, cudaStream_t s)
{
    if (!stream_ok(s))
        return fail(cudaErrorInvalidResourceHandle);
    if (!bytes)
        return cudaSuccess;
    bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    if (!dst || !src || (dst_dev && !in_device_mem(dst, bytes)) || (src_dev && !in_device_mem(src, bytes)))
        return fail(cudaErrorInvalidValue);
    std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t s)
{
    if (!stream_ok(s))
        return fail(cudaErrorInvalidResourceHandle);
    if (bytes && !in_device_mem(p, bytes))
        return fail(cudaErrorInvalidValue);
    if (bytes)
        std::memset(p, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    return track(streams, new CUstream_st{(int)flags}, s);
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    return untrack(streams, s);
}

/* Every call completes before it returns, so streams are always idle. */
cudaError_t cudaStreamSynchronize(cudaStream_t s)
{
    return stream_ok(s) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamQuery(cudaStream_t s)
{
    return cudaStreamSynchronize(s);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags)
{
    return stream_ok(s) && live(events_live, e) && !flags ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    return track(events_live, new CUevent_st{0.0, false}, e);
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    return untrack(events_live, e);
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    if (!stream_ok(s) || !live(events_live, e))
        return fail(cudaErrorInvalidResourceHandle);
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    e->t_ms = std::chrono::duration<double, std::milli>(now).count();
    e->recorded = true;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    return live(events_live, e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    if (!live(events_live, start) || !live(events_live, end) || !start->recorded || !end->recorded)
        return fail(cudaErrorInvalidResourceHandle);
    *ms = (float)(end->t_ms - start->t_ms);
    return cudaSuccess;
}

} // extern "C"

cudaError_t tsr_emu_fail(cudaError_t e)
{
    return fail(e);
}
