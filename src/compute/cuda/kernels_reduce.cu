/* SPDX-License-Identifier: BSD-3-Clause */
/* GPU kernels that sum: bias gradients, sum of squares, softmax and the
 * losses. Each tsr_gpu_* here is the extern "C" function compute.h (the
 * sum of squares and the losses: compute/gpu_train.h) declares.
 *
 * Every sum a user sees (loss, norm, bias gradient) is bit-reproducible
 * run to run: no float atomics. Pass one writes per-block (or per-row)
 * partials, each summed in a fixed order by a fixed-shape tree; pass two,
 * one block, sums the partials in a fixed order and stores or adds the
 * result. The split into blocks depends on the sizes alone, never on the
 * device, so the bits agree across GPUs of one architecture too.
 * Softmax and the cross-entropies give one warp to each row (the class
 * count is small next to the batch). */
#include "compute/cuda/kernels.cuh"

#include <math.h>

#define ROWS_PER_BLOCK (TSR_THREADS / 32)
#define RED_MAX_BLOCKS 1024
#define BG_ROWS 256 /* rows per bias-gradient partial */

/* Partial-sum blocks for n items (4 per thread before the cap). */
static unsigned red_blocks(size_t n)
{
    size_t b = (n + 4 * TSR_THREADS - 1) / (4 * TSR_THREADS);
    return b > RED_MAX_BLOCKS ? RED_MAX_BLOCKS : (unsigned)b;
}

static unsigned row_blocks(size_t rows)
{
    size_t b = (rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK;
    return b > 8192 ? 8192u : (unsigned)b;
}

/* Pass two: one block sums part[0..np) into *dst (added when add). */
template <typename T> __global__ void finish_k(const T *part, size_t np, T *dst, int add)
{
    __shared__ T s[TSR_THREADS];
    T acc = 0;
    for (size_t i = threadIdx.x; i < np; i += TSR_THREADS)
        acc += part[i];
    s[threadIdx.x] = acc;
    block_sum(s);
    if (threadIdx.x == 0)
        *dst = add ? *dst + s[0] : s[0];
}

/* ---- bias gradient: column sums ------------------------------------- */

/* Block (32 columns x 8 row lanes) sums one chunk of rows per column. */
__global__ void bias_grad_k(const float *dy, size_t rows, size_t n, size_t chunk, float *out)
{
    __shared__ float s[8][32];
    size_t j = blockIdx.x * (size_t)32 + threadIdx.x;
    size_t r0 = blockIdx.y * chunk, r1 = r0 + chunk < rows ? r0 + chunk : rows;
    float acc = 0.0f;
    if (j < n)
        for (size_t r = r0 + threadIdx.y; r < r1; r += 8)
            acc += dy[r * n + j];
    lanes_sum(s, acc);
    if (threadIdx.y == 0 && j < n)
        out[blockIdx.y * n + j] = s[0][threadIdx.x];
}

__global__ void bias_grad_finish_k(const float *part, size_t chunks, size_t n, float *db)
{
    for (size_t j = blockIdx.x * (size_t)blockDim.x + threadIdx.x; j < n; j += (size_t)gridDim.x * blockDim.x) {
        float acc = 0.0f;
        for (size_t c = 0; c < chunks; c++)
            acc += part[c * n + j];
        db[j] = acc;
    }
}

int tsr_gpu_bias_grad(tsr_gpu_t *g, const float *ddy, size_t rows, size_t n, float *ddb)
{
    if (n == 0)
        return noop(g, "tsr_gpu_bias_grad");
    if (rows == 0) { /* a sum of nothing: zeros, as the CPU's memset */
        BEGIN(g, "tsr_gpu_bias_grad", ddb);
        return tsr_cuda_check(cudaMemsetAsync(ddb, 0, n * sizeof *ddb, g->stream), "tsr_gpu_bias_grad: cudaMemsetAsync");
    }
    BEGIN(g, "tsr_gpu_bias_grad", ddy, ddb);
    size_t chunk = (rows + 65534) / 65535; /* grid.y is at most 65535 */
    chunk = chunk < BG_ROWS ? BG_ROWS : chunk;
    size_t chunks = (rows + chunk - 1) / chunk;
    float *out = ddb;
    if (chunks > 1) {
        void *p = NULL;
        int rc = tsr_cuda_scratch(g, chunks * n * sizeof(float), &p);
        if (rc)
            return tsr_error_prefix(rc, "tsr_gpu_bias_grad: ");
        out = (float *)p;
    }
    dim3 grid((unsigned)((n + 31) / 32), (unsigned)chunks), block(32, 8);
    bias_grad_k<<<grid, block, 0, g->stream>>>(ddy, rows, n, chunk, out);
    if (chunks > 1)
        bias_grad_finish_k<<<elem_blocks(n), TSR_THREADS, 0, g->stream>>>(out, chunks, n, ddb);
    return tsr_cuda_check_launch("tsr_gpu_bias_grad");
}

/* ---- sum of squares ----------------------------------------------- */

__global__ void sumsq_k(const float *x, size_t n, double *part)
{
    __shared__ double s[TSR_THREADS];
    double acc = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        double v = x[i];
        acc += v * v;
    }
    s[threadIdx.x] = acc;
    block_sum(s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s[0];
}

int tsr_gpu_sumsq(tsr_gpu_t *g, const float *dx, size_t n, double *dsumsq)
{
    if (n == 0) {
        BEGIN(g, "tsr_gpu_sumsq", dsumsq);
        return tsr_cuda_check(cudaMemsetAsync(dsumsq, 0, sizeof *dsumsq, g->stream), "tsr_gpu_sumsq: cudaMemsetAsync");
    }
    BEGIN(g, "tsr_gpu_sumsq", dx, dsumsq);
    unsigned nb = red_blocks(n);
    void *part = NULL;
    int rc = tsr_cuda_scratch(g, nb * sizeof(double), &part);
    if (rc)
        return tsr_error_prefix(rc, "tsr_gpu_sumsq: ");
    sumsq_k<<<nb, TSR_THREADS, 0, g->stream>>>(dx, n, (double *)part);
    finish_k<double><<<1, TSR_THREADS, 0, g->stream>>>((const double *)part, nb, dsumsq, 0);
    return tsr_cuda_check_launch("tsr_gpu_sumsq");
}

/* ---- softmax and cross-entropy ---------------------------------------- */

/* One warp's softmax of a row, as tsr_compute_softmax: p = exp(z - max) *
 * (1 / sum). p may alias z: all lanes have read z for the max before any
 * passes the shuffles in warp_max, and each lane then rewrites only the
 * elements it reads. */
__device__ inline void row_softmax(const float *z, float *p, size_t n, unsigned lane)
{
    float mx = z[0];
    for (size_t j = lane; j < n; j += 32)
        mx = z[j] > mx ? z[j] : mx;
    mx = warp_max(mx);
    float s = 0.0f;
    for (size_t j = lane; j < n; j += 32) {
        float e = expf(z[j] - mx);
        p[j] = e;
        s += e;
    }
    float inv = 1.0f / warp_sum(s);
    for (size_t j = lane; j < n; j += 32)
        p[j] *= inv;
}

#define FOR_EACH_ROW(r, rows)                                                                                         \
    for (size_t r = (blockIdx.x * (size_t)blockDim.x + threadIdx.x) / 32; r < (rows);                                 \
         r += (size_t)gridDim.x * blockDim.x / 32)

__global__ void softmax_k(const float *z, float *p, size_t rows, size_t n)
{
    unsigned lane = threadIdx.x & 31;
    FOR_EACH_ROW(r, rows)
    row_softmax(z + r * n, p + r * n, n, lane);
}

int tsr_gpu_softmax(tsr_gpu_t *g, const float *dz, float *dp, size_t rows, size_t n)
{
    if (rows == 0 || n == 0)
        return noop(g, "tsr_gpu_softmax");
    BEGIN(g, "tsr_gpu_softmax", dz, dp);
    softmax_k<<<row_blocks(rows), TSR_THREADS, 0, g->stream>>>(dz, dp, rows, n);
    return tsr_cuda_check_launch("tsr_gpu_softmax");
}

/* delta = scale * (softmax - onehot), loss[r] = -log(max(p[label], 1e-30)),
 * in model.c's order: p, then p - 1 at the label, then times scale. A label
 * outside [0, k) (the loader validates them) reads nothing and gives NaN. */
__global__ void xent_delta_k(const float *z, const int32_t *labels, size_t rows, size_t k, float scale, float *delta,
                             double *loss)
{
    unsigned lane = threadIdx.x & 31;
    FOR_EACH_ROW(r, rows)
    {
        float *d = delta + r * k;
        row_softmax(z + r * k, d, k, lane);
        int32_t y = labels[r];
        for (size_t j = lane; j < k; j += 32) {
            float p = d[j];
            if (y >= 0 && (size_t)y == j) {
                float pc = p > 1e-30f ? p : 1e-30f;
                loss[r] = -log((double)pc);
                p -= 1.0f;
            }
            d[j] = p * scale;
        }
        if (lane == 0 && (y < 0 || (size_t)y >= k))
            loss[r] = nan("");
    }
}

int tsr_gpu_xent_delta(tsr_gpu_t *g, const float *dz, const int32_t *dlabels, size_t rows, size_t k, float scale,
                       float *ddelta, double *dloss)
{
    if (rows == 0 || k == 0)
        return noop(g, "tsr_gpu_xent_delta");
    BEGIN(g, "tsr_gpu_xent_delta", dz, dlabels, ddelta, dloss);
    void *part = NULL;
    int rc = tsr_cuda_scratch(g, rows * sizeof(double), &part);
    if (rc)
        return tsr_error_prefix(rc, "tsr_gpu_xent_delta: ");
    xent_delta_k<<<row_blocks(rows), TSR_THREADS, 0, g->stream>>>(dz, dlabels, rows, k, scale, ddelta,
                                                                   (double *)part);
    finish_k<double><<<1, TSR_THREADS, 0, g->stream>>>((const double *)part, rows, dloss, 1);
    return tsr_cuda_check_launch("tsr_gpu_xent_delta");
}

/* Evaluation, as tsr_model_evaluate: argmax is the first maximum; the loss
 * is log(sum exp(z - max)) - (z[label] - max) in double. */
__global__ void xent_eval_k(const float *z, const int32_t *labels, size_t rows, size_t k, double *loss,
                            unsigned long long *ok)
{
    unsigned lane = threadIdx.x & 31;
    FOR_EACH_ROW(r, rows)
    {
        const float *o = z + r * k;
        /* Each lane's first maximum, then the warp's: larger value, or the
         * same value at a smaller index. */
        float mx = -INFINITY;
        size_t best = (size_t)-1;
        for (size_t j = lane; j < k; j += 32)
            if (best == (size_t)-1 || o[j] > mx)
                mx = o[j], best = j;
        for (int off = 16; off > 0; off >>= 1) {
            float om = __shfl_xor_sync(TSR_FULL_MASK, mx, off);
            size_t ob = __shfl_xor_sync(TSR_FULL_MASK, best, off);
            if (om > mx || (om == mx && ob < best))
                mx = om, best = ob;
        }
        double s = 0.0;
        for (size_t j = lane; j < k; j += 32)
            s += exp((double)(o[j] - mx));
        s = warp_sum(s);
        if (lane == 0) {
            int32_t y = labels[r];
            int in = y >= 0 && (size_t)y < k;
            loss[r] = in ? log(s) - (double)(o[y] - mx) : nan("");
            ok[r] = in && best == (size_t)y;
        }
    }
}

int tsr_gpu_xent_eval(tsr_gpu_t *g, const float *dz, const int32_t *dlabels, size_t rows, size_t k, double *dloss,
                      unsigned long long *dcorrect)
{
    if (rows == 0 || k == 0)
        return noop(g, "tsr_gpu_xent_eval");
    BEGIN(g, "tsr_gpu_xent_eval", dz, dlabels, dloss, dcorrect);
    void *part = NULL;
    int rc = tsr_cuda_scratch(g, rows * (sizeof(double) + sizeof(unsigned long long)), &part);
    if (rc)
        return tsr_error_prefix(rc, "tsr_gpu_xent_eval: ");
    double *loss = (double *)part;
    unsigned long long *ok = (unsigned long long *)(loss + rows);
    xent_eval_k<<<row_blocks(rows), TSR_THREADS, 0, g->stream>>>(dz, dlabels, rows, k, loss, ok);
    finish_k<double><<<1, TSR_THREADS, 0, g->stream>>>(loss, rows, dloss, 1);
    finish_k<unsigned long long><<<1, TSR_THREADS, 0, g->stream>>>(ok, rows, dcorrect, 1);
    return tsr_cuda_check_launch("tsr_gpu_xent_eval");
}

/* ---- mean squared error --------------------------------------------- */

/* Training: e in float as model.c; eval (delta NULL): e in double as
 * tsr_model_evaluate. Per-block partial sums of e^2 / k. */
__global__ void mse_k(const float *out, const float *t, size_t len, size_t k, float c, float scale, float *delta,
                      double *part)
{
    __shared__ double s[TSR_THREADS];
    double acc = 0.0;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < len; i += (size_t)gridDim.x * blockDim.x) {
        if (delta) {
            float e = out[i] - t[i];
            delta[i] = c * e * scale;
            acc += (double)e * e / (double)k;
        } else {
            double e = (double)out[i] - (double)t[i];
            acc += e * e / (double)k;
        }
    }
    s[threadIdx.x] = acc;
    block_sum(s);
    if (threadIdx.x == 0)
        part[blockIdx.x] = s[0];
}

static int mse(tsr_gpu_t *g, const char *fn, const float *dout, const float *dtargets, size_t rows, size_t k,
               float scale, float *ddelta, double *dloss)
{
    size_t len = rows * k;
    unsigned nb = red_blocks(len);
    void *part = NULL;
    int rc = tsr_cuda_scratch(g, nb * sizeof(double), &part);
    if (rc)
        return tsr_error_prefix(rc, "%s: ", fn);
    float c = 2.0f / (float)k;
    mse_k<<<nb, TSR_THREADS, 0, g->stream>>>(dout, dtargets, len, k, c, scale, ddelta, (double *)part);
    finish_k<double><<<1, TSR_THREADS, 0, g->stream>>>((const double *)part, nb, dloss, 1);
    return tsr_cuda_check_launch(fn);
}

int tsr_gpu_mse_delta(tsr_gpu_t *g, const float *dout, const float *dtargets, size_t rows, size_t k, float scale,
                      float *ddelta, double *dloss)
{
    if (rows == 0 || k == 0)
        return noop(g, "tsr_gpu_mse_delta");
    BEGIN(g, "tsr_gpu_mse_delta", dout, dtargets, ddelta, dloss);
    return mse(g, "tsr_gpu_mse_delta", dout, dtargets, rows, k, scale, ddelta, dloss);
}

int tsr_gpu_mse_eval(tsr_gpu_t *g, const float *dout, const float *dtargets, size_t rows, size_t k, double *dloss)
{
    if (rows == 0 || k == 0)
        return noop(g, "tsr_gpu_mse_eval");
    BEGIN(g, "tsr_gpu_mse_eval", dout, dtargets, dloss);
    return mse(g, "tsr_gpu_mse_eval", dout, dtargets, rows, k, 0.0f, NULL, dloss);
}
