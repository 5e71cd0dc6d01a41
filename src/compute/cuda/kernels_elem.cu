/* SPDX-License-Identifier: BSD-3-Clause */
/* Element-wise GPU kernels: bias, activations and the optimizer updates.
 * Each tsr_gpu_* here is the extern "C" function compute.h (the optimizer
 * updates: compute/gpu_train.h) declares; it checks its arguments, launches
 * on the handle's stream and reports launch errors (errors while running
 * surface at the next wait). Expressions are written as in src/compute/cpu.c
 * and src/optim/optim.c, and nvcc runs with --fmad=false, so each element
 * rounds as on the CPU. */
#include "compute/cuda/kernels.cuh"

__global__ void add_bias_k(float *y, const float *bias, size_t rows, size_t n)
{
    size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (j >= n)
        return;
    float b = bias[j];
    for (size_t r = blockIdx.y; r < rows; r += gridDim.y)
        y[r * n + j] += b;
}

int tsr_gpu_add_bias(tsr_gpu_t *g, float *dy, const float *dbias, size_t rows, size_t n)
{
    if (rows == 0 || n == 0)
        return noop(g, "tsr_gpu_add_bias");
    BEGIN(g, "tsr_gpu_add_bias", dy, dbias);
    /* One thread per column, rows spread over grid.y: a narrow output
     * layer (n = 10) does not waste 256-wide blocks. */
    unsigned threads = n >= TSR_THREADS ? TSR_THREADS : (unsigned)((n + 31) / 32 * 32);
    size_t bx = (n + threads - 1) / threads;
    dim3 grid((unsigned)bx, (unsigned)(rows < 1024 ? rows : 1024));
    add_bias_k<<<grid, threads, 0, g->stream>>>(dy, dbias, rows, n);
    return tsr_cuda_check_launch("tsr_gpu_add_bias");
}

__global__ void act_k(int act, float *y, size_t len)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (act == TSR_ACT_RELU)
            y[i] = v > 0.0f ? v : 0.0f;
        else if (act == TSR_ACT_TANH)
            y[i] = tanhf(v);
        else
            y[i] = 1.0f / (1.0f + expf(-v));
    }
}

static int check_act(tsr_act_t act, const char *fn)
{
    if ((unsigned)act > (unsigned)TSR_ACT_SIGMOID)
        return tsr_error_set(TSR_EINVAL, "%s: unknown activation %d", fn, (int)act);
    return TSR_OK;
}

int tsr_gpu_act(tsr_gpu_t *g, tsr_act_t act, float *dy, size_t len)
{
    int rc = check_act(act, "tsr_gpu_act");
    if (rc)
        return rc;
    if (len == 0 || act == TSR_ACT_NONE)
        return noop(g, "tsr_gpu_act");
    BEGIN(g, "tsr_gpu_act", dy);
    act_k<<<elem_blocks(len), TSR_THREADS, 0, g->stream>>>((int)act, dy, len);
    return tsr_cuda_check_launch("tsr_gpu_act");
}

/* dy *= act'(.) from the activation's output y. */
__global__ void act_backward_k(int act, const float *y, float *dy, size_t len)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        float v = y[i];
        if (act == TSR_ACT_RELU)
            dy[i] = v > 0.0f ? dy[i] : 0.0f;
        else if (act == TSR_ACT_TANH)
            dy[i] *= 1.0f - v * v;
        else
            dy[i] *= v * (1.0f - v);
    }
}

int tsr_gpu_act_backward(tsr_gpu_t *g, tsr_act_t act, const float *dy_out, float *ddy, size_t len)
{
    int rc = check_act(act, "tsr_gpu_act_backward");
    if (rc)
        return rc;
    if (len == 0 || act == TSR_ACT_NONE)
        return noop(g, "tsr_gpu_act_backward");
    BEGIN(g, "tsr_gpu_act_backward", dy_out, ddy);
    act_backward_k<<<elem_blocks(len), TSR_THREADS, 0, g->stream>>>((int)act, dy_out, ddy, len);
    return tsr_cuda_check_launch("tsr_gpu_act_backward");
}

/* Global-norm clipping with the norm read on the device: one thread per
 * block computes the factor in double, as optim.c does on the host. */
__global__ void clip_k(float *x, size_t n, const double *sumsq, double clip)
{
    __shared__ float f;
    __shared__ int on;
    if (threadIdx.x == 0) {
        double norm = sqrt(*sumsq);
        on = norm > clip;
        f = on ? (float)(clip / (norm + 1e-6)) : 1.0f;
    }
    __syncthreads();
    if (!on)
        return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
        x[i] *= f;
}

int tsr_gpu_clip(tsr_gpu_t *g, float *dx, size_t n, const double *dsumsq, double clip)
{
    if (n == 0)
        return noop(g, "tsr_gpu_clip");
    BEGIN(g, "tsr_gpu_clip", dx, dsumsq);
    clip_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dx, n, dsumsq, clip);
    return tsr_cuda_check_launch("tsr_gpu_clip");
}

/* SGD, PyTorch's rule; v may be NULL (no momentum). */
__global__ void sgd_k(float *p, const float *gr, float *v, size_t n, float lr, float wd, float mu, int nesterov,
                      int first, tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = gr[i] + wd * p[i];
        if (!v) {
            p[i] -= lr * gi;
            guard_note(gd, p[i]);
            continue;
        }
        float vi = first ? gi : mu * v[i] + gi;
        v[i] = vi;
        p[i] -= lr * (nesterov ? gi + mu * vi : vi);
        guard_note(gd, p[i]);
    }
}

int tsr_gpu_sgd(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, float wd, float mu,
                int nesterov, int first, const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_sgd");
    BEGIN(g, "tsr_gpu_sgd", dp, dg);
    sgd_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, dg, dv, n, lr, wd, mu, nesterov, first,
                                                          guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_sgd");
}

/* AdamW (l2 = 0) and Adam (decay = 1, l2 = weight decay on the gradient). */
__global__ void adamw_k(float *p, const float *gr, float *m, float *v, size_t n, float step, float decay, float l2,
                        float b1, float b2, float eps, float bc2s, tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float gi = gr[i] + l2 * p[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / bc2s + eps);
        guard_note(gd, p[i]);
    }
}

int tsr_gpu_adam(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step, float decay,
                 float l2, float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_adam");
    BEGIN(g, "tsr_gpu_adam", dp, dg, dm, dv);
    adamw_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, dg, dm, dv, n, step, decay, l2, b1, b2, eps, bc2s,
                                                            guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_adam");
}

int tsr_gpu_adamw(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step, float decay,
                  float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard)
{
    return tsr_gpu_adam(g, dp, dg, dm, dv, n, step, decay, 0.0f, b1, b2, eps, bc2s, guard);
}
