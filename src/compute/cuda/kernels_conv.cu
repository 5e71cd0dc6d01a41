/* SPDX-License-Identifier: BSD-3-Clause */
/* Convolution lowering and pooling on channels-last tensors (the
 * tsr_gpu_* of compute/gpu_layers.h), one thread per output element. The
 * backward passes gather rather than scatter: each input element sums the
 * outputs it fed in the order src/compute/cpu_conv.c adds them (windows
 * by ascending output row, then column), so the bits are the CPU's and no
 * atomics are needed. */
#include "compute/gpu_layers.h"
#include "compute/cuda/kernels.cuh"

__global__ void im2col_k(const float *x, size_t n, tsr_conv_geom_t g, int c0, int cg, float *col)
{
    size_t kk = (size_t)g.k * g.k * cg, total = n * g.oh * g.ow * kk, in_sample = (size_t)g.h * g.w * g.c;
    FOR_EACH(i, total)
    {
        size_t row = i / kk, e = i % kk;
        int c = (int)(e % cg), kw = (int)(e / cg % g.k), kh = (int)(e / cg / g.k);
        int ow = (int)(row % g.ow), oh = (int)(row / g.ow % g.oh);
        size_t s = row / g.ow / g.oh;
        int ih = oh * g.stride - g.pad + kh * g.dil, iw = ow * g.stride - g.pad + kw * g.dil;
        col[i] = ih < 0 || ih >= g.h || iw < 0 || iw >= g.w ? 0.0f
                                                            : x[s * in_sample + ((size_t)ih * g.w + iw) * g.c + c0 + c];
    }
}

/* dx[s, ih, iw, c0 + c] = the sum of the col entries that copied it. */
__global__ void col2im_k(const float *col, size_t n, tsr_conv_geom_t g, int c0, int cg, float *dx)
{
    size_t kk = (size_t)g.k * g.k * cg, total = n * g.h * g.w * cg;
    FOR_EACH(i, total)
    {
        int c = (int)(i % cg), iw = (int)(i / cg % g.w), ih = (int)(i / cg / g.w % g.h);
        size_t s = i / cg / g.w / g.h;
        float acc = 0.0f;
        /* Descending taps are ascending output positions: the CPU's order. */
        for (int kh = g.k - 1; kh >= 0; kh--) {
            int th = ih + g.pad - kh * g.dil;
            if (th < 0 || th % g.stride || th / g.stride >= g.oh)
                continue;
            int oh = th / g.stride;
            for (int kw = g.k - 1; kw >= 0; kw--) {
                int tw = iw + g.pad - kw * g.dil;
                if (tw < 0 || tw % g.stride || tw / g.stride >= g.ow)
                    continue;
                int ow = tw / g.stride;
                acc += col[((s * g.oh + oh) * g.ow + ow) * kk + ((size_t)kh * g.k + kw) * cg + c];
            }
        }
        dx[(s * g.h * g.w + (size_t)ih * g.w + iw) * g.c + c0 + c] = acc;
    }
}

__global__ void pool_k(int max, const float *x, size_t n, tsr_conv_geom_t g, float *y, int32_t *argmax)
{
    size_t C = g.c, total = n * g.oh * g.ow * C, in_sample = (size_t)g.h * g.w * C;
    float inv = 1.0f / (float)(g.k * g.k);
    FOR_EACH(i, total)
    {
        size_t c = i % C, pix = i / C;
        int ow = (int)(pix % g.ow), oh = (int)(pix / g.ow % g.oh);
        const float *xs = x + pix / g.ow / g.oh * in_sample;
        size_t first = ((size_t)(oh * g.stride) * g.w + (size_t)(ow * g.stride)) * C + c;
        float v = max ? xs[first] : 0.0f;
        int32_t a = (int32_t)first;
        for (int kh = 0; kh < g.k; kh++)
            for (int kw = 0; kw < g.k; kw++) {
                size_t off = ((size_t)(oh * g.stride + kh) * g.w + (size_t)(ow * g.stride + kw)) * C + c;
                float xv = xs[off];
                if (!max)
                    v += xv;
                else if (xv > v) /* the first maximum wins */
                    v = xv, a = (int32_t)off;
            }
        y[i] = max ? v : v * inv;
        if (max)
            argmax[i] = a;
    }
}

/* Each input element gathers from the windows that contain it. */
__global__ void pool_backward_k(int max, const float *dy, const int32_t *argmax, size_t n, tsr_conv_geom_t g, float *dx)
{
    size_t C = g.c, total = n * g.h * g.w * C, out_sample = (size_t)g.oh * g.ow * C;
    float inv = 1.0f / (float)(g.k * g.k);
    FOR_EACH(i, total)
    {
        size_t off = i % ((size_t)g.h * g.w * C), s = i / ((size_t)g.h * g.w * C), c = off % C;
        int iw = (int)(off / C % g.w), ih = (int)(off / C / g.w);
        int oh0 = ih - g.k + 1 > 0 ? (ih - g.k + 1 + g.stride - 1) / g.stride : 0, oh1 = ih / g.stride;
        int ow0 = iw - g.k + 1 > 0 ? (iw - g.k + 1 + g.stride - 1) / g.stride : 0, ow1 = iw / g.stride;
        float acc = 0.0f;
        for (int oh = oh0; oh <= oh1 && oh < g.oh; oh++)
            for (int ow = ow0; ow <= ow1 && ow < g.ow; ow++) {
                size_t o = s * out_sample + ((size_t)oh * g.ow + ow) * C + c;
                if (!max)
                    acc += dy[o] * inv;
                else if (argmax[o] == (int32_t)off)
                    acc += dy[o];
            }
        dx[i] = acc;
    }
}

__global__ void gap_k(const float *x, size_t n, size_t hw, size_t C, float *y)
{
    float inv = 1.0f / (float)hw;
    FOR_EACH(i, n * C)
    {
        const float *xs = x + i / C * hw * C + i % C;
        float acc = 0.0f;
        for (size_t p = 0; p < hw; p++)
            acc += xs[p * C];
        y[i] = acc * inv;
    }
}

__global__ void gap_backward_k(const float *dy, size_t n, size_t hw, size_t C, float *dx)
{
    float inv = 1.0f / (float)hw;
    FOR_EACH(i, n * hw * C)
    dx[i] = dy[i / (hw * C) * C + i % C] * inv;
}

#define LAUNCH(fn, total, ...)                                                                                         \
    do {                                                                                                               \
        if ((total) == 0)                                                                                              \
            return noop(g, fn);                                                                                        \
        BEGIN(g, fn, __VA_ARGS__);                                                                                     \
    } while (0)

int tsr_gpu_im2col(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, int c0, int cg, float *dcol)
{
    size_t total = n * geom->oh * geom->ow * (size_t)geom->k * geom->k * cg;
    LAUNCH("tsr_gpu_im2col", total, dx, dcol);
    im2col_k<<<elem_blocks(total), TSR_THREADS, 0, g->stream>>>(dx, n, *geom, c0, cg, dcol);
    return tsr_cuda_check_launch("tsr_gpu_im2col");
}

int tsr_gpu_col2im(tsr_gpu_t *g, const float *dcol, size_t n, const tsr_conv_geom_t *geom, int c0, int cg, float *ddx)
{
    size_t total = n * geom->h * geom->w * (size_t)cg;
    LAUNCH("tsr_gpu_col2im", total, dcol, ddx);
    col2im_k<<<elem_blocks(total), TSR_THREADS, 0, g->stream>>>(dcol, n, *geom, c0, cg, ddx);
    return tsr_cuda_check_launch("tsr_gpu_col2im");
}

int tsr_gpu_maxpool(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, float *dy, int32_t *dargmax)
{
    size_t total = n * geom->oh * geom->ow * (size_t)geom->c;
    LAUNCH("tsr_gpu_maxpool", total, dx, dy, dargmax);
    pool_k<<<elem_blocks(total), TSR_THREADS, 0, g->stream>>>(1, dx, n, *geom, dy, dargmax);
    return tsr_cuda_check_launch("tsr_gpu_maxpool");
}

int tsr_gpu_maxpool_backward(tsr_gpu_t *g, const float *ddy, const int32_t *dargmax, size_t n,
                             const tsr_conv_geom_t *geom, float *ddx)
{
    size_t total = n * geom->h * geom->w * (size_t)geom->c;
    LAUNCH("tsr_gpu_maxpool_backward", total, ddy, dargmax, ddx);
    pool_backward_k<<<elem_blocks(total), TSR_THREADS, 0, g->stream>>>(1, ddy, dargmax, n, *geom, ddx);
    return tsr_cuda_check_launch("tsr_gpu_maxpool_backward");
}

int tsr_gpu_avgpool(tsr_gpu_t *g, const float *dx, size_t n, const tsr_conv_geom_t *geom, float *dy)
{
    size_t total = n * geom->oh * geom->ow * (size_t)geom->c;
    LAUNCH("tsr_gpu_avgpool", total, dx, dy);
    pool_k<<<elem_blocks(total), TSR_THREADS, 0, g->stream>>>(0, dx, n, *geom, dy, (int32_t *)NULL);
    return tsr_cuda_check_launch("tsr_gpu_avgpool");
}

int tsr_gpu_avgpool_backward(tsr_gpu_t *g, const float *ddy, size_t n, const tsr_conv_geom_t *geom, float *ddx)
{
    size_t total = n * geom->h * geom->w * (size_t)geom->c;
    LAUNCH("tsr_gpu_avgpool_backward", total, ddy, ddx);
    pool_backward_k<<<elem_blocks(total), TSR_THREADS, 0, g->stream>>>(0, ddy, (const int32_t *)NULL, n, *geom, ddx);
    return tsr_cuda_check_launch("tsr_gpu_avgpool_backward");
}

int tsr_gpu_gap(tsr_gpu_t *g, const float *dx, size_t n, size_t hw, size_t C, float *dy)
{
    LAUNCH("tsr_gpu_gap", n * C * hw, dx, dy);
    gap_k<<<elem_blocks(n * C), TSR_THREADS, 0, g->stream>>>(dx, n, hw, C, dy);
    return tsr_cuda_check_launch("tsr_gpu_gap");
}

int tsr_gpu_gap_backward(tsr_gpu_t *g, const float *ddy, size_t n, size_t hw, size_t C, float *ddx)
{
    LAUNCH("tsr_gpu_gap_backward", n * C * hw, ddy, ddx);
    gap_backward_k<<<elem_blocks(n * hw * C), TSR_THREADS, 0, g->stream>>>(ddy, n, hw, C, ddx);
    return tsr_cuda_check_launch("tsr_gpu_gap_backward");
}
