/* SPDX-License-Identifier: BSD-3-Clause */
/* Element-wise kernels of the layer graph (compute/gpu_layers.h): every
 * activation out of place and its derivative from the input, the residual
 * add, dropout's counter-based mask and the embedding's gather. The
 * expressions are src/compute/cpu.c's and the layer files', nvcc runs with
 * --fmad=false, so each element rounds as on the CPU. */
#include "compute/gpu_layers.h"
#include "compute/cuda/kernels.cuh"
#include "tessera/rng.h"

__device__ static inline float act_of(int act, float v)
{
    switch (act) {
    case TSR_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case TSR_ACT_TANH: return tanhf(v);
    case TSR_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case TSR_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case TSR_ACT_SILU: return v / (1.0f + expf(-v));
    default: return v;
    }
}

__global__ void act_x_k(int act, const float *x, float *y, size_t len)
{
    FOR_EACH(i, len)
    y[i] = act_of(act, x[i]);
}

/* tsr_compute_act_x_backward's expressions. */
__global__ void act_x_backward_k(int act, const float *x, const float *dy, float *dx, size_t len)
{
    FOR_EACH(i, len)
    {
        float v = x[i], d = dy[i];
        switch (act) {
        case TSR_ACT_GELU: {
            float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
            float pdf = 0.39894228040143268f * expf(-0.5f * v * v);
            dx[i] = d * (cdf + v * pdf);
            break;
        }
        case TSR_ACT_SILU: {
            float s = 1.0f / (1.0f + expf(-v));
            dx[i] = d * s * (1.0f + v * (1.0f - s));
            break;
        }
        case TSR_ACT_RELU: dx[i] = v > 0.0f ? d : 0.0f; break;
        case TSR_ACT_TANH: {
            float t = tanhf(v);
            dx[i] = d * (1.0f - t * t);
            break;
        }
        case TSR_ACT_SIGMOID: {
            float s = 1.0f / (1.0f + expf(-v));
            dx[i] = d * s * (1.0f - s);
            break;
        }
        default: dx[i] = d; break;
        }
    }
}

static int check_act(tsr_act_t act, const char *fn)
{
    if ((unsigned)act >= (unsigned)TSR_ACT_COUNT)
        return tsr_error_set(TSR_EINVAL, "%s: unknown activation %d", fn, (int)act);
    return TSR_OK;
}

int tsr_gpu_act_x(tsr_gpu_t *g, tsr_act_t act, const float *dx, float *dy, size_t len)
{
    int rc = check_act(act, "tsr_gpu_act_x");
    if (rc || len == 0)
        return rc ? rc : noop(g, "tsr_gpu_act_x");
    BEGIN(g, "tsr_gpu_act_x", dx, dy);
    act_x_k<<<elem_blocks(len), TSR_THREADS, 0, g->stream>>>((int)act, dx, dy, len);
    return tsr_cuda_check_launch("tsr_gpu_act_x");
}

int tsr_gpu_act_x_backward(tsr_gpu_t *g, tsr_act_t act, const float *dx, const float *ddy, float *ddx, size_t len)
{
    int rc = check_act(act, "tsr_gpu_act_x_backward");
    if (rc || len == 0)
        return rc ? rc : noop(g, "tsr_gpu_act_x_backward");
    BEGIN(g, "tsr_gpu_act_x_backward", dx, ddy, ddx);
    act_x_backward_k<<<elem_blocks(len), TSR_THREADS, 0, g->stream>>>((int)act, dx, ddy, ddx, len);
    return tsr_cuda_check_launch("tsr_gpu_act_x_backward");
}

__global__ void add_k(const float *a, const float *b, float *c, size_t n)
{
    FOR_EACH(i, n)
    c[i] = a[i] + b[i];
}

int tsr_gpu_add(tsr_gpu_t *g, const float *da, const float *db, float *dc, size_t n)
{
    if (n == 0)
        return noop(g, "tsr_gpu_add");
    BEGIN(g, "tsr_gpu_add", da, db, dc);
    add_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(da, db, dc, n);
    return tsr_cuda_check_launch("tsr_gpu_add");
}

__global__ void dropout_k(uint64_t key, uint32_t thr, float scale, const float *in, float *out, size_t len)
{
    FOR_EACH(i, len)
    out[i] = (uint32_t)(tsr_rng_counter(key, i) >> 32) >= thr ? in[i] * scale : 0.0f;
}

int tsr_gpu_dropout(tsr_gpu_t *g, uint64_t key, uint32_t thr, float scale, const float *din, float *dout, size_t len)
{
    if (len == 0)
        return noop(g, "tsr_gpu_dropout");
    BEGIN(g, "tsr_gpu_dropout", din, dout);
    dropout_k<<<elem_blocks(len), TSR_THREADS, 0, g->stream>>>(key, thr, scale, din, dout, len);
    return tsr_cuda_check_launch("tsr_gpu_dropout");
}

__global__ void embed_k(const float *ids, const float *w, size_t ntok, size_t d, float *y)
{
    FOR_EACH(i, ntok * d)
    y[i] = w[(size_t)ids[i / d] * d + i % d];
}

/* One thread per column adds the tokens' rows in token order (ids checked
 * by the caller), as embed.c: no atomics, the CPU's bits. */
__global__ void embed_backward_k(const float *ids, const float *dy, size_t ntok, size_t d, float *gw)
{
    FOR_EACH(j, d)
    for (size_t i = 0; i < ntok; i++)
        gw[(size_t)ids[i] * d + j] += dy[i * d + j];
}

int tsr_gpu_embed(tsr_gpu_t *g, const float *dids, const float *dw, size_t ntok, size_t d, float *dy)
{
    if (ntok == 0 || d == 0)
        return noop(g, "tsr_gpu_embed");
    BEGIN(g, "tsr_gpu_embed", dids, dw, dy);
    embed_k<<<elem_blocks(ntok * d), TSR_THREADS, 0, g->stream>>>(dids, dw, ntok, d, dy);
    return tsr_cuda_check_launch("tsr_gpu_embed");
}

int tsr_gpu_embed_backward(tsr_gpu_t *g, const float *dids, const float *ddy, size_t ntok, size_t d, size_t vocab,
                           float *dgw)
{
    if (d == 0 || vocab == 0)
        return noop(g, "tsr_gpu_embed_backward");
    BEGIN(g, "tsr_gpu_embed_backward", dids, ddy, dgw);
    int rc = tsr_cuda_check(cudaMemsetAsync(dgw, 0, vocab * d * sizeof *dgw, g->stream),
                            "tsr_gpu_embed_backward: cudaMemsetAsync");
    if (rc || ntok == 0)
        return rc;
    embed_backward_k<<<elem_blocks(d), TSR_THREADS, 0, g->stream>>>(dids, ddy, ntok, d, dgw);
    return tsr_cuda_check_launch("tsr_gpu_embed_backward");
}
