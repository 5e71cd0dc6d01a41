/* The CUDA emulator's runtime: the CUDA runtime calls tessera makes
 * (devices, memory, streams, events) and the kernel executor, on the CPU.
 *
 * Why: the GPU layer's kernels and host code must run in CI, which has no
 * GPU. Built with ASan/UBSan, this finds what compute-sanitizer would find
 * in a kernel (out-of-bounds reads and writes: device memory is malloc'd),
 * plus index, launch-shape and barrier mistakes, and wrong-sized copies.
 * What it cannot find: races between blocks or streams (blocks run one
 * after another, streams complete every call before returning), real
 * device rounding of expf and friends, and speed. Those need hardware
 * (the `gpu` ctest label).
 *
 * Executor: each block runs its threads as ucontext fibers on the calling
 * thread, in linear thread order. A fiber runs until it finishes or
 * reaches a barrier: __syncthreads() (all live threads of the block) or a
 * warp shuffle (all 32 lanes of its warp). A kernel that would hang or be
 * undefined on a GPU (lanes of one warp at different barriers, a shuffle
 * with an exited lane or a partial mask) stops the process with a line
 * naming the kernel and block. */
#include "cuda_runtime.h"

#include <chrono>
#include <mutex>
#include <set>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <cstdint>
#include <cstring>
#include <ucontext.h>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EMU_ASAN 1
#else
#define EMU_ASAN 0
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

/* ---- errors ------------------------------------------------------------ */

thread_local cudaError_t last_error = cudaSuccess;

cudaError_t fail(cudaError_t e)
{
    last_error = e;
    return e;
}

/* ---- kernel executor ----------------------------------------------------- */

enum State { RUNNABLE, AT_SYNC, AT_WARP, DONE };

/* ---- context switch ---------------------------------------------------------
 * x86-64: callee-saved registers, MXCSR and the x87 control word, no system
 * call (glibc's swapcontext saves the signal mask with one each time, which
 * made the emulator 100 times slower). Elsewhere: ucontext. */
#if defined(__x86_64__)
struct Context {
    void *sp;
};
extern "C" void tsr_emu_switch(void **save_sp, void *load_sp);
asm(R"(
    .text
    .globl tsr_emu_switch
    .type tsr_emu_switch, @function
tsr_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size tsr_emu_switch, .-tsr_emu_switch
    .section .note.GNU-stack,"",@progbits
    .text
)");

void ctx_switch(Context *from, Context *to)
{
    tsr_emu_switch(&from->sp, to->sp);
}

/* A frame that tsr_emu_switch "returns" from into fn, with fn entered as
 * if called (rsp = 8 mod 16) and the caller's MXCSR and x87 control word. */
void ctx_make(Context *c, char *stack, size_t size, void (*fn)())
{
    uintptr_t top = ((uintptr_t)stack + size) & ~(uintptr_t)15;
    uint64_t *sp = (uint64_t *)top;
    *--sp = 0;                  /* fn's return address: it never returns */
    *--sp = (uintptr_t)fn;      /* tsr_emu_switch's return address */
    for (int i = 0; i < 6; i++) /* rbp rbx r12 r13 r14 r15 */
        *--sp = 0;
    uint32_t mxcsr;
    uint16_t fpucw;
    asm volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(fpucw));
    --sp;
    std::memcpy((char *)sp, &mxcsr, 4);
    std::memcpy((char *)sp + 4, &fpucw, 2);
    c->sp = sp;
}
#else
struct Context {
    ucontext_t uc;
};

void ctx_switch(Context *from, Context *to)
{
    swapcontext(&from->uc, &to->uc);
}

void ctx_make(Context *c, char *stack, size_t size, void (*fn)())
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = stack;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = nullptr;
    makecontext(&c->uc, fn, 0);
}
#endif

struct Fiber {
    Context ctx;
    State state;
    uint3 tid;
    char *stack;
    void *asan_fake_stack;
};

constexpr size_t STACK_BYTES = 64 << 10;
constexpr unsigned FULL_MASK = 0xffffffffu;

/* One launch at a time, from any host thread (the executor's state and
 * the kernels' __shared__ statics are process-wide). */
std::mutex launch_lock;
/* Fibers and their stacks, kept from launch to launch. */
struct Pool : std::vector<Fiber> {
    ~Pool()
    {
        for (Fiber &f : *this)
            std::free(f.stack);
    }
} fibers;
Context sched_ctx;
Fiber *cur;
const std::function<void()> *cur_body;
const char *cur_kernel;
unsigned long long slots[1024]; /* shuffle values, by linear thread index */
const void *sched_stack_bottom;
size_t sched_stack_size;

[[noreturn]] void die(const char *what)
{
    std::fprintf(stderr, "cuda emulator: kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s\n", cur_kernel,
                 blockIdx.x, blockIdx.y, blockIdx.z, cur ? cur->tid.x : 0u, cur ? cur->tid.y : 0u,
                 cur ? cur->tid.z : 0u, what);
    std::abort();
}

/* Fiber side: back to the scheduler; returns when resumed. */
void yield_to_scheduler(State st)
{
    Fiber *me = cur;
    me->state = st;
#if EMU_ASAN
    __sanitizer_start_switch_fiber(st == DONE ? nullptr : &me->asan_fake_stack, sched_stack_bottom,
                                   sched_stack_size);
#endif
    ctx_switch(&me->ctx, &sched_ctx);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(me->asan_fake_stack, &sched_stack_bottom, &sched_stack_size);
#endif
}

void fiber_main()
{
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom, &sched_stack_size);
#endif
    (*cur_body)();
    yield_to_scheduler(DONE);
    die("finished fiber resumed");
}

void resume(Fiber *f)
{
    cur = f;
    threadIdx = f->tid;
#if EMU_ASAN
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, f->stack, STACK_BYTES);
#endif
    ctx_switch(&sched_ctx, &f->ctx);
#if EMU_ASAN
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
    cur = nullptr;
}

unsigned lin(const Fiber *f)
{
    return (unsigned)(f - fibers.data());
}

/* Releases one barrier's waiters; false when none can go on. */
bool release(unsigned n)
{
    bool any = false;
    for (unsigned w = 0; w < n; w += 32) {
        unsigned end = w + 32 < n ? w + 32 : n, waiting = 0, other = 0;
        for (unsigned i = w; i < end; i++)
            fibers[i].state == AT_WARP ? waiting++ : fibers[i].state != DONE ? other++ : 0;
        if (!waiting || other)
            continue;
        if (waiting != 32) {
            cur = &fibers[w];
            die("warp shuffle with a full mask, but the warp has exited or missing lanes");
        }
        for (unsigned i = w; i < end; i++)
            fibers[i].state = RUNNABLE;
        any = true;
    }
    if (any)
        return true;
    for (unsigned i = 0; i < n; i++)
        if (fibers[i].state == AT_WARP) {
            cur = &fibers[i];
            die("lanes of one warp wait at different barriers (a shuffle and __syncthreads)");
        }
    /* All live threads are at __syncthreads (exited ones count as arrived). */
    for (unsigned i = 0; i < n; i++)
        if (fibers[i].state == AT_SYNC)
            fibers[i].state = RUNNABLE, any = true;
    return any;
}

/* Its own frame: getcontext (the ucontext fallback) returns twice, which
 * would clobber a loop counter around it. */
__attribute__((noinline)) void fiber_init(Fiber *f, unsigned i)
{
    f->tid = {i % blockDim.x, (i / blockDim.x) % blockDim.y, i / (blockDim.x * blockDim.y)};
    f->state = RUNNABLE;
#if EMU_ASAN
    __asan_unpoison_memory_region(f->stack, STACK_BYTES);
#endif
    ctx_make(&f->ctx, f->stack, STACK_BYTES, fiber_main);
}

void run_block(unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        fiber_init(&fibers[i], i);
    for (;;) {
        for (unsigned i = 0; i < n; i++)
            if (fibers[i].state == RUNNABLE)
                resume(&fibers[i]);
        if (!release(n))
            break;
    }
}

} // namespace

void __syncthreads(void)
{
    if (!cur)
        die("__syncthreads outside a kernel");
    yield_to_scheduler(AT_SYNC);
}

namespace tsr_emu {

void shfl_xor(unsigned mask, const void *in, void *out, size_t size, int lane_mask)
{
    if (!cur)
        die("warp shuffle outside a kernel");
    if (mask != FULL_MASK)
        die("warp shuffle with a partial mask (the emulator supports full warps only)");
    unsigned me = lin(cur);
    slots[me] = 0;
    std::memcpy(&slots[me], in, size);
    yield_to_scheduler(AT_WARP); /* every lane has written */
    unsigned src = (me & ~31u) | ((me & 31u) ^ ((unsigned)lane_mask & 31u));
    std::memcpy(out, &slots[src], size);
    yield_to_scheduler(AT_WARP); /* every lane has read: slots may be reused */
}

void run(const char *kernel, dim3 grid, dim3 block, const std::function<void()> &body)
{
    unsigned long long nthreads = (unsigned long long)block.x * block.y * block.z;
    if (!grid.x || !grid.y || !grid.z || !block.x || !block.y || !block.z || nthreads > 1024 || block.z > 64 ||
        grid.y > 65535 || grid.z > 65535 || grid.x > 0x7fffffffu) {
        fail(cudaErrorInvalidConfiguration);
        return;
    }
    std::lock_guard<std::mutex> hold(launch_lock);
    unsigned n = (unsigned)nthreads;
    while (fibers.size() < n) {
        fibers.push_back(Fiber{});
        fibers.back().stack = static_cast<char *>(std::malloc(STACK_BYTES));
        if (!fibers.back().stack) {
            fibers.pop_back();
            fail(cudaErrorMemoryAllocation);
            return;
        }
    }
    cur_kernel = kernel;
    cur_body = &body;
    gridDim = grid;
    blockDim = block;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = {x, y, z};
                run_block(n);
            }
    cur_body = nullptr;
}

} // namespace tsr_emu

/* ---- devices ------------------------------------------------------------- */

namespace {
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

bool stream_ok(cudaStream_t s)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    return !s || streams.count(s);
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
    *s = new CUstream_st{(int)flags};
    std::lock_guard<std::mutex> hold(mem_lock);
    streams.insert(*s);
    return cudaSuccess;
}

cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    if (!s || !streams.erase(s))
        return fail(cudaErrorInvalidResourceHandle);
    delete s;
    return cudaSuccess;
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
    std::lock_guard<std::mutex> hold(mem_lock);
    return (s && !streams.count(s)) || !events_live.count(e) || flags ? fail(cudaErrorInvalidResourceHandle)
                                                                      : cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = new CUevent_st{0.0, false};
    std::lock_guard<std::mutex> hold(mem_lock);
    events_live.insert(*e);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    if (!e || !events_live.erase(e))
        return fail(cudaErrorInvalidResourceHandle);
    delete e;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s)
{
    if (!stream_ok(s))
        return fail(cudaErrorInvalidResourceHandle);
    {
        std::lock_guard<std::mutex> hold(mem_lock);
        if (!events_live.count(e))
            return fail(cudaErrorInvalidResourceHandle);
    }
    auto now = std::chrono::steady_clock::now().time_since_epoch();
    e->t_ms = std::chrono::duration<double, std::milli>(now).count();
    e->recorded = true;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t e)
{
    std::lock_guard<std::mutex> hold(mem_lock);
    return events_live.count(e) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end)
{
    {
        std::lock_guard<std::mutex> hold(mem_lock);
        if (!events_live.count(start) || !events_live.count(end))
            return fail(cudaErrorInvalidResourceHandle);
    }
    if (!start->recorded || !end->recorded)
        return fail(cudaErrorInvalidResourceHandle);
    *ms = (float)(end->t_ms - start->t_ms);
    return cudaSuccess;
}

} // extern "C"
