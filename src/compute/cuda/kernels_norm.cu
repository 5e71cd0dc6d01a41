/* SPDX-License-Identifier: BSD-3-Clause */
/* Batch and layer normalisation kernels (compute/gpu_layers.h). Column
 * sums are double, in two passes with fixed shapes like the bias gradient
 * (kernels_reduce.cu): bit-reproducible run to run, equal to the CPU's
 * sequential sums to double rounding. The per-element expressions are
 * bn.c's and ln.c's. */
#include "compute/gpu_layers.h"
#include "compute/cuda/kernels.cuh"

#define CS_ROWS 256 /* rows per partial */
enum { CS_SUM, CS_SQ, CS_DOT };

/* Block (32 columns x 8 row lanes) sums one chunk of rows per column:
 * x (CS_SUM), (x - dc)^2 (CS_SQ), dy * (x - fc) (CS_DOT, dy in a). */
__global__ void colsums_k(int mode, const float *a, const float *x, const double *dc, const float *fc, size_t rows,
                          size_t n, size_t chunk, double *out)
{
    __shared__ double s[8][32];
    size_t j = blockIdx.x * (size_t)32 + threadIdx.x;
    size_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    double acc = 0.0;
    if (j < n)
        for (size_t r = r0 + threadIdx.y; r < r1; r += 8) {
            double v = (double)x[r * n + j];
            if (mode == CS_SQ) {
                double d = v - (dc ? dc[j] : 0.0);
                acc += d * d;
            } else if (mode == CS_DOT) {
                acc += (double)a[r * n + j] * (v - (double)fc[j]);
            } else {
                acc += v;
            }
        }
    lanes_sum(s, acc);
    if (threadIdx.y == 0 && j < n)
        out[blockIdx.y * n + j] = s[0][threadIdx.x];
}

__global__ void colsums_finish_k(const double *part, size_t chunks, size_t n, double *dst)
{
    FOR_EACH(j, n)
    {
        double acc = 0.0;
        for (size_t c = 0; c < chunks; c++)
            acc += part[c * n + j];
        dst[j] = acc;
    }
}

static int colsums(tsr_gpu_t *g, const char *fn, int mode, const float *a, const float *x, const double *dc,
                   const float *fc, size_t rows, size_t n, double *dst)
{
    size_t chunk = (rows + 65534) / 65535;
    chunk = chunk < CS_ROWS ? CS_ROWS : chunk;
    size_t chunks = rows ? (rows + chunk - 1) / chunk : 1;
    void *p = NULL;
    int rc = tsr_cuda_scratch(g, chunks * n * sizeof(double), &p);
    if (rc)
        return tsr_error_prefix(rc, "%s: ", fn);
    dim3 grid((unsigned)((n + 31) / 32), (unsigned)chunks), block(32, 8);
    colsums_k<<<grid, block, 0, g->stream>>>(mode, a, x, dc, fc, rows, n, chunk, (double *)p);
    colsums_finish_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>((const double *)p, chunks, n, dst);
    return tsr_cuda_check_launch(fn);
}

int tsr_gpu_colsums(tsr_gpu_t *g, const float *dx, size_t rows, size_t n, const double *dcenter, double *dsum,
                    double *dsumsq)
{
    if (n == 0)
        return noop(g, "tsr_gpu_colsums");
    BEGIN(g, "tsr_gpu_colsums", dx);
    int rc = dsum ? colsums(g, "tsr_gpu_colsums", CS_SUM, NULL, dx, NULL, NULL, rows, n, dsum) : TSR_OK;
    if (!rc && dsumsq)
        rc = colsums(g, "tsr_gpu_colsums", CS_SQ, NULL, dx, dcenter, NULL, rows, n, dsumsq);
    return rc;
}

int tsr_gpu_colsums_dot(tsr_gpu_t *g, const float *ddy, const float *dx, const float *dmean, size_t rows, size_t n,
                        double *dsdy, double *dsdx)
{
    if (n == 0)
        return noop(g, "tsr_gpu_colsums_dot");
    BEGIN(g, "tsr_gpu_colsums_dot", ddy, dx, dmean, dsdy, dsdx);
    int rc = colsums(g, "tsr_gpu_colsums_dot", CS_SUM, NULL, ddy, NULL, NULL, rows, n, dsdy);
    return rc ? rc : colsums(g, "tsr_gpu_colsums_dot", CS_DOT, ddy, dx, NULL, dmean, rows, n, dsdx);
}

__global__ void bn_apply_k(const float *x, size_t len, size_t C, const float *mean, const float *invstd,
                           const float *var, float eps, const float *gamma, const float *beta, float *y)
{
    FOR_EACH(i, len)
    {
        size_t c = i % C;
        float scale = var ? gamma[c] / sqrtf(var[c] + eps) : gamma[c] * invstd[c];
        y[i] = (x[i] - mean[c]) * scale + beta[c];
    }
}

int tsr_gpu_bn_apply(tsr_gpu_t *g, const float *dx, size_t rows, size_t C, const float *dmean, const float *dinvstd,
                     const float *dvar, float eps, const float *dgamma, const float *dbeta, float *dy)
{
    if (rows == 0 || C == 0)
        return noop(g, "tsr_gpu_bn_apply");
    BEGIN(g, "tsr_gpu_bn_apply", dx, dmean, dvar ? (const void *)dvar : (const void *)dinvstd, dgamma, dbeta, dy);
    bn_apply_k<<<elem_blocks(rows * C), TSR_THREADS, 0, g->stream>>>(dx, rows * C, C, dmean, dinvstd, dvar, eps, dgamma,
                                                                     dbeta, dy);
    return tsr_cuda_check_launch("tsr_gpu_bn_apply");
}

__global__ void bn_grads_k(const double *sums, const float *invstd, size_t C, float *grads)
{
    FOR_EACH(c, C)
    {
        grads[c] = (float)(sums[C + c] * invstd[c]);
        grads[C + c] = (float)sums[c];
    }
}

int tsr_gpu_bn_grads(tsr_gpu_t *g, const double *dsums, const float *dinvstd, size_t C, float *dgrads)
{
    if (C == 0)
        return noop(g, "tsr_gpu_bn_grads");
    BEGIN(g, "tsr_gpu_bn_grads", dsums, dinvstd, dgrads);
    bn_grads_k<<<elem_blocks(C), TSR_THREADS, 0, g->stream>>>(dsums, dinvstd, C, dgrads);
    return tsr_cuda_check_launch("tsr_gpu_bn_grads");
}

__global__ void bn_dx_k(const float *x, const float *dy, size_t len, size_t C, const float *mean, const float *invstd,
                        const float *gamma, const double *sums, double N, float *dx)
{
    FOR_EACH(i, len)
    {
        size_t c = i % C;
        double is = invstd[c];
        float a = (float)(gamma[c] * is), b = (float)(sums[c] / N), k = (float)(sums[C + c] / N * is * is);
        dx[i] = a * (dy[i] - b - (x[i] - mean[c]) * k);
    }
}

int tsr_gpu_bn_dx(tsr_gpu_t *g, const float *dx, const float *ddy, size_t rows, size_t C, const float *dmean,
                  const float *dinvstd, const float *dgamma, const double *dsums, double N, float *ddx)
{
    if (rows == 0 || C == 0)
        return noop(g, "tsr_gpu_bn_dx");
    BEGIN(g, "tsr_gpu_bn_dx", dx, ddy, dmean, dinvstd, dgamma, dsums, ddx);
    bn_dx_k<<<elem_blocks(rows * C), TSR_THREADS, 0, g->stream>>>(dx, ddy, rows * C, C, dmean, dinvstd, dgamma, dsums,
                                                                  N, ddx);
    return tsr_cuda_check_launch("tsr_gpu_bn_dx");
}

/* ---- layer norm: one block per sample ---------------------------------- */

__global__ void ln_forward_k(const float *x, size_t n, size_t f, double eps, const float *gamma, const float *beta,
                             float *mean, float *invstd, float *y)
{
    __shared__ double s[TSR_THREADS];
    __shared__ float m, is;
    for (size_t smp = blockIdx.x; smp < n; smp += gridDim.x) {
        const float *xs = x + smp * f;
        double acc = 0.0;
        for (size_t i = threadIdx.x; i < f; i += TSR_THREADS)
            acc += xs[i];
        s[threadIdx.x] = acc;
        block_sum(s);
        double mu = s[0] / (double)f;
        __syncthreads(); /* everyone has read s[0] */
        acc = 0.0;
        for (size_t i = threadIdx.x; i < f; i += TSR_THREADS)
            acc += ((double)xs[i] - mu) * ((double)xs[i] - mu);
        s[threadIdx.x] = acc;
        block_sum(s);
        if (threadIdx.x == 0) {
            m = (float)mu;
            is = (float)(1.0 / sqrt(s[0] / (double)f + eps));
            mean[smp] = m;
            invstd[smp] = is;
        }
        __syncthreads();
        for (size_t i = threadIdx.x; i < f; i += TSR_THREADS)
            y[smp * f + i] = (xs[i] - m) * is * gamma[i] + beta[i];
        __syncthreads(); /* m and is are rewritten for the next sample */
    }
}

int tsr_gpu_ln_forward(tsr_gpu_t *g, const float *dx, size_t n, size_t f, double eps, const float *dgamma,
                       const float *dbeta, float *dmean, float *dinvstd, float *dy)
{
    if (n == 0 || f == 0)
        return noop(g, "tsr_gpu_ln_forward");
    BEGIN(g, "tsr_gpu_ln_forward", dx, dgamma, dbeta, dmean, dinvstd, dy);
    unsigned blocks = (unsigned)(n < 8192 ? n : 8192);
    ln_forward_k<<<blocks, TSR_THREADS, 0, g->stream>>>(dx, n, f, eps, dgamma, dbeta, dmean, dinvstd, dy);
    return tsr_cuda_check_launch("tsr_gpu_ln_forward");
}

/* dgamma and dbeta: one thread per feature over the samples in order, as ln.c. */
__global__ void ln_param_grads_k(const float *x, const float *dy, size_t n, size_t f, const float *mean,
                                 const float *invstd, float *grads)
{
    FOR_EACH(i, f)
    {
        float dg = 0.0f, db = 0.0f;
        for (size_t smp = 0; smp < n; smp++) {
            float xh = (x[smp * f + i] - mean[smp]) * invstd[smp], d = dy[smp * f + i];
            dg += d * xh;
            db += d;
        }
        grads[i] = dg;
        grads[f + i] = db;
    }
}

__global__ void ln_dx_k(const float *x, const float *dy, size_t n, size_t f, const float *gamma, const float *mean,
                        const float *invstd, float *dx)
{
    __shared__ double sa[TSR_THREADS], sb[TSR_THREADS];
    for (size_t smp = blockIdx.x; smp < n; smp += gridDim.x) {
        const float *xs = x + smp * f, *ds = dy + smp * f;
        float m = mean[smp], is = invstd[smp];
        double a = 0.0, b = 0.0;
        for (size_t i = threadIdx.x; i < f; i += TSR_THREADS) {
            float xh = (xs[i] - m) * is, gi = ds[i] * gamma[i];
            a += gi;
            b += (double)gi * xh;
        }
        sa[threadIdx.x] = a;
        sb[threadIdx.x] = b;
        block_sum(sa);
        block_sum(sb);
        float am = (float)(sa[0] / (double)f), bm = (float)(sb[0] / (double)f);
        for (size_t i = threadIdx.x; i < f; i += TSR_THREADS) {
            float xh = (xs[i] - m) * is;
            dx[smp * f + i] = is * (ds[i] * gamma[i] - am - xh * bm);
        }
        __syncthreads(); /* sa, sb are rewritten for the next sample */
    }
}

int tsr_gpu_ln_backward(tsr_gpu_t *g, const float *dx, const float *ddy, size_t n, size_t f, const float *dgamma,
                        const float *dmean, const float *dinvstd, float *dgrads, float *ddx)
{
    if (n == 0 || f == 0)
        return noop(g, "tsr_gpu_ln_backward");
    BEGIN(g, "tsr_gpu_ln_backward", dx, ddy, dgamma, dmean, dinvstd, dgrads);
    ln_param_grads_k<<<elem_blocks(f), TSR_THREADS, 0, g->stream>>>(dx, ddy, n, f, dmean, dinvstd, dgrads);
    unsigned blocks = (unsigned)(n < 8192 ? n : 8192);
    if (ddx)
        ln_dx_k<<<blocks, TSR_THREADS, 0, g->stream>>>(dx, ddy, n, f, dgamma, dmean, dinvstd, ddx);
    return tsr_cuda_check_launch("tsr_gpu_ln_backward");
}
