/* SPDX-License-Identifier: BSD-3-Clause */
/* The optimizer updates beyond SGD and AdamW (kernels_elem.cu): Lion,
 * RMSprop, and LARS and LAMB per tensor with their norms read on the
 * device. Expressions as in src/optim/rules.c and layerwise.c, so each
 * element rounds as on the CPU (--fmad=false); every update is guarded. */
#include "compute/cuda/kernels.cuh"

#define EACH(i, n) for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

__global__ void lion_k(float *p, const float *gr, float *m, size_t n, float lr, float decay, float b1, float b2,
                       tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    EACH(i, n)
    {
        float u = b1 * m[i] + (1.0f - b1) * gr[i];
        float s = u > 0.0f ? 1.0f : u < 0.0f ? -1.0f : u;
        p[i] = p[i] * decay - lr * s;
        m[i] = b2 * m[i] + (1.0f - b2) * gr[i];
        guard_note(gd, p[i]);
        guard_note(gd, m[i]); /* an infinite gradient's sign is finite */
    }
}

int tsr_gpu_lion(tsr_gpu_t *g, float *dp, const float *dg, float *dm, size_t n, float lr, float decay, float b1,
                 float b2, const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_lion");
    BEGIN(g, "tsr_gpu_lion", dp, dg, dm);
    lion_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, dg, dm, n, lr, decay, b1, b2, guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_lion");
}

__global__ void rmsprop_k(float *p, const float *gr, float *sq, float *mean, float *buf, size_t n, float lr,
                          float al, float eps, float wd, float mu, tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    EACH(i, n)
    {
        float gi = gr[i] + wd * p[i];
        float s = al * sq[i] + (1.0f - al) * gi * gi, avg;
        sq[i] = s;
        if (mean) {
            float mi = al * mean[i] + (1.0f - al) * gi;
            mean[i] = mi;
            avg = sqrtf(s - mi * mi) + eps;
        } else {
            avg = sqrtf(s) + eps;
        }
        if (buf) {
            float b = mu * buf[i] + gi / avg;
            buf[i] = b;
            p[i] -= lr * b;
        } else {
            p[i] -= lr * (gi / avg);
        }
        guard_note(gd, p[i]);
    }
}

int tsr_gpu_rmsprop(tsr_gpu_t *g, float *dp, const float *dg, float *dsq, float *dmean, float *dbuf, size_t n,
                    float lr, float alpha, float eps, float wd, float mu, const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_rmsprop");
    BEGIN(g, "tsr_gpu_rmsprop", dp, dg, dsq);
    rmsprop_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, dg, dsq, dmean, dbuf, n, lr, alpha, eps, wd, mu,
                                                              guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_rmsprop");
}

__global__ void lars_k(float *p, const float *gr, float *v, size_t n, float lr, double wd, float mu, int first,
                       double eta, double eps, const double *norm2, tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    double trust = 1.0;
    if (norm2) {
        double pn = sqrt(norm2[0]), gn = sqrt(norm2[1]);
        if (pn > 0 && gn > 0)
            trust = eta * pn / (gn + wd * pn + eps);
    }
    float tr = (float)trust, w = (float)wd;
    EACH(i, n)
    {
        float d = (gr[i] + w * p[i]) * tr;
        if (v) {
            float vi = first ? d : mu * v[i] + d;
            v[i] = vi;
            p[i] -= lr * vi;
        } else {
            p[i] -= lr * d;
        }
        guard_note(gd, p[i]);
    }
}

int tsr_gpu_lars(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, double wd, float mu,
                 int first, double eta, double eps, const double *dnorm2, const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_lars");
    BEGIN(g, "tsr_gpu_lars", dp, dg);
    lars_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, dg, dv, n, lr, wd, mu, first, eta, eps, dnorm2,
                                                           guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_lars");
}

__global__ void lamb_moments_k(const float *p, const float *gr, float *m, float *v, float *u, size_t n, float b1,
                               float b2, float eps, float bc1, float bc2s, float wd, tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    EACH(i, n)
    {
        float gi = gr[i];
        float mi = b1 * m[i] + (1.0f - b1) * gi;
        float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        u[i] = (mi / bc1) / (sqrtf(vi) / bc2s + eps) + wd * p[i];
    }
}

int tsr_gpu_lamb_moments(tsr_gpu_t *g, const float *dp, const float *dg, float *dm, float *dv, float *du, size_t n,
                         float b1, float b2, float eps, float bc1, float bc2s, float wd, const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_lamb_moments");
    BEGIN(g, "tsr_gpu_lamb_moments", dp, dg, dm, dv, du);
    lamb_moments_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, dg, dm, dv, du, n, b1, b2, eps, bc1, bc2s, wd,
                                                                   guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_lamb_moments");
}

__global__ void lamb_apply_k(float *p, const float *u, size_t n, float lr, const double *norm2, tsr_gpu_guard_t gd)
{
    if (guard_skips(gd))
        return;
    double ratio = 1.0;
    if (norm2) {
        double pn = sqrt(norm2[0]), un = sqrt(norm2[1]);
        if (pn > 0 && un > 0)
            ratio = pn / un;
    }
    float f = (float)(lr * ratio);
    EACH(i, n)
    {
        p[i] -= f * u[i];
        guard_note(gd, p[i]);
    }
}

int tsr_gpu_lamb_apply(tsr_gpu_t *g, float *dp, const float *du, size_t n, float lr, const double *dnorm2,
                       const tsr_gpu_guard_t *guard)
{
    if (n == 0)
        return noop(g, "tsr_gpu_lamb_apply");
    BEGIN(g, "tsr_gpu_lamb_apply", dp, du);
    lamb_apply_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(dp, du, n, lr, dnorm2, guard_or_none(guard));
    return tsr_cuda_check_launch("tsr_gpu_lamb_apply");
}
