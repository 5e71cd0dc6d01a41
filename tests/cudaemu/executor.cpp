/* SPDX-License-Identifier: BSD-3-Clause */
/* The CUDA emulator's kernel executor (tests/cudaemu): each launch runs
 * every block in turn on the calling thread, each CUDA thread of a block
 * as a fiber, in linear thread order. A fiber runs until it finishes or
 * reaches a barrier: __syncthreads() (all live threads of the block) or a
 * warp shuffle (all 32 lanes of its warp). A kernel that would hang or be
 * undefined on a GPU (lanes of one warp at different barriers, a shuffle
 * with an exited lane or a partial mask) stops the process with a line
 * naming the kernel and block.
 *
 * What this cannot find: races between blocks (they run one after
 * another), device rounding of expf and friends, and speed. */
#include "cuda_runtime.h"
#include "emu_internal.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
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

/* TSR_CUDAEMU_ORDER=reverse runs blocks and, between barriers, threads in
 * reverse order. A GPU promises neither order, so a kernel must give the
 * same result both ways: a missing __syncthreads hides in one order and
 * shows in the other (a read of a slot that a later thread writes), and so
 * does a block that reads another block's output of the same launch. */
bool reverse_order()
{
    static const bool rev = [] {
        const char *e = std::getenv("TSR_CUDAEMU_ORDER");
        return e && std::strcmp(e, "reverse") == 0;
    }();
    return rev;
}

void run_block(unsigned n)
{
    bool rev = reverse_order();
    for (unsigned i = 0; i < n; i++)
        fiber_init(&fibers[i], i);
    for (;;) {
        for (unsigned k = 0; k < n; k++) {
            unsigned i = rev ? n - 1 - k : k;
            if (fibers[i].state == RUNNABLE)
                resume(&fibers[i]);
        }
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
        tsr_emu_fail(cudaErrorInvalidConfiguration);
        return;
    }
    std::lock_guard<std::mutex> hold(launch_lock);
    unsigned n = (unsigned)nthreads;
    while (fibers.size() < n) {
        fibers.push_back(Fiber{});
        fibers.back().stack = static_cast<char *>(std::malloc(STACK_BYTES));
        if (!fibers.back().stack) {
            fibers.pop_back();
            tsr_emu_fail(cudaErrorMemoryAllocation);
            return;
        }
    }
    cur_kernel = kernel;
    cur_body = &body;
    gridDim = grid;
    blockDim = block;
    unsigned long long nblocks = (unsigned long long)grid.x * grid.y * grid.z;
    for (unsigned long long k = 0; k < nblocks; k++) {
        unsigned long long b = reverse_order() ? nblocks - 1 - k : k;
        blockIdx = {(unsigned)(b % grid.x), (unsigned)(b / grid.x % grid.y), (unsigned)(b / grid.x / grid.y)};
        run_block(n);
    }
    cur_body = nullptr;
}

} // namespace tsr_emu
