/* SPDX-License-Identifier: BSD-3-Clause */
/* conv(out, k, stride=1, pad=0, dilation=1, groups=1): 2-D convolution on
 * channels-last tensors, lowered to GEMM. The input is copied window by
 * window (im2col) into the shared workspace a chunk of samples at a time,
 * so the copy stays in cache for the GEMM that reads it; a 1x1 convolution
 * with stride 1 needs no copy. Weights [out, k, k, in/groups] then bias
 * [out]; the activation after it may be fused into the bias pass. */
#include "model/layers/layers.h"

#include <math.h>
#include <string.h>

enum { A_OUT, A_K, A_STRIDE, A_PAD, A_DIL, A_GROUPS };
/* Floats of im2col workspace per chunk: 256 KiB, so that backward's
 * column chunk and its gradient (2 x 256 KiB) stay in a 1 MiB L2 between
 * the copy and the GEMMs (2^19 was 10-20% slower on the CNN of issue 16). */
#define CHUNK_FLOATS ((size_t)1 << 16)
/* On a GPU: enough rows for the GEMMs to fill the device. */
#define GPU_CHUNK_FLOATS ((size_t)1 << 24)

static tsr_conv_geom_t geom(const tsr_layer_t *l)
{
    return (tsr_conv_geom_t){
        l->in.h,  l->in.w, l->in.c, (int)l->arg[A_K], (int)l->arg[A_STRIDE], (int)l->arg[A_PAD], (int)l->arg[A_DIL],
        l->out.h, l->out.w};
}

static int direct(const tsr_layer_t *l)
{
    return l->arg[A_K] == 1 && l->arg[A_STRIDE] == 1 && l->arg[A_PAD] == 0 && l->arg[A_GROUPS] == 1;
}

/* A window of few values, one group: the direct kernels (cpu_conv_direct.c)
 * beat im2col + GEMM there (the first layer of an image net). */
static int small(const tsr_layer_t *l)
{
    size_t kk = (size_t)l->arg[A_K] * (size_t)l->arg[A_K] * (size_t)l->in.c;
    return l->arg[A_GROUPS] == 1 && kk <= TSR_CONV_DIRECT_MAX && !direct(l);
}

/* The widest max pool a small conv pools into as it goes. */
#define POOL_MAX_K 4

int layer_conv_can_pool(const tsr_layer_t *l, const tsr_layer_t *p, int needs_dx)
{
    int k = (int)p->arg[0], st = p->arg[1] > 0 ? (int)p->arg[1] : k;
    return small(l) && !needs_dx && l->fused_act == TSR_ACT_RELU && k == st && k >= 1 && k <= POOL_MAX_K &&
           l->out.h % k == 0 && l->out.w % k == 0;
}

/* Weights [M, kk] into [kk, M]; back: a [kk, M] gradient into [M, kk]. */
static void transpose(const float *src, size_t M, size_t kk, float *dst, int back)
{
    for (size_t o = 0; o < M; o++)
        for (size_t j = 0; j < kk; j++) {
            if (back)
                dst[o * kk + j] = src[j * M + o];
            else
                dst[j * M + o] = src[o * kk + j];
        }
}

/* Samples per im2col chunk of at most cap floats. */
static size_t chunk_of(const tsr_layer_t *l, size_t cap)
{
    size_t kk = (size_t)l->arg[A_K] * (size_t)l->arg[A_K] * (size_t)(l->in.c / (int)l->arg[A_GROUPS]);
    size_t per = (size_t)l->out.h * (size_t)l->out.w * kk;
    size_t ns = per ? cap / per : 1;
    if (ns < 1)
        ns = 1;
    return ns < l->max_batch ? ns : l->max_batch;
}

static size_t chunk(const tsr_layer_t *l) { return chunk_of(l, CHUNK_FLOATS); }
static int whole(double v, double lo, double hi) { return v >= lo && v <= hi && v == floor(v); }

static int conv_shape(tsr_layer_t *l)
{
    const double *a = l->arg;
    char s[48];
    if (!whole(a[A_OUT], 1, 1 << 20) || !whole(a[A_K], 1, 1024) || !whole(a[A_STRIDE], 1, 1024) ||
        !whole(a[A_PAD], 0, 1024) || !whole(a[A_DIL], 1, 1024) || !whole(a[A_GROUPS], 1, 1 << 20))
        return tsr_error_set(TSR_EINVAL, "conv: expected whole numbers: out >= 1, k >= 1, stride >= 1, pad >= 0, "
                                         "dilation >= 1, groups >= 1");
    int g = (int)a[A_GROUPS], out = (int)a[A_OUT], k = (int)a[A_K];
    if (l->in.c % g || out % g)
        return tsr_error_set(TSR_EINVAL, "conv: groups = %d must divide the input's %d channels and the %d outputs", g,
                             l->in.c, out);
    int span = (int)a[A_DIL] * (k - 1) + 1, pad = (int)a[A_PAD];
    if (span > l->in.h + 2 * pad || span > l->in.w + 2 * pad)
        return tsr_error_set(TSR_EINVAL,
                             "conv: the kernel (%dx%d, dilation %d: spans %d) is larger than its input "
                             "%s with padding %d",
                             k, k, (int)a[A_DIL], span, layer_shape_text(l->in, s, sizeof s), pad);
    int st = (int)a[A_STRIDE];
    l->out = (tsr_shape_t){out, (l->in.h + 2 * pad - span) / st + 1, (l->in.w + 2 * pad - span) / st + 1};
    size_t kk = (size_t)k * (size_t)k * (size_t)(l->in.c / g);
    l->nparams = (size_t)out * kk + (size_t)out;
    l->ws_floats = (direct(l) ? 0 : 2 * chunk(l) * (size_t)l->out.h * (size_t)l->out.w * kk) + (size_t)out + 16;
    if (small(l)) { /* the direct kernels' transposed weights, the forward's taps, a pool's rows */
        tsr_conv_geom_t cg = geom(l);
        size_t need =
            kk * (size_t)out + tsr_compute_conv_direct_taps(&cg) + POOL_MAX_K * (size_t)l->out.w * (size_t)out + 16;
        l->ws_floats = l->ws_floats > need ? l->ws_floats : need;
    }
    return TSR_OK;
}

static void conv_init(tsr_layer_t *l, tsr_rng_t *r)
{
    size_t fan_in = (size_t)l->arg[A_K] * (size_t)l->arg[A_K] * (size_t)(l->in.c / (int)l->arg[A_GROUPS]);
    layer_uniform(l->params, l->nparams, 1.0 / sqrt((double)fan_in), r);
}

static int conv_forward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    tsr_conv_geom_t g = geom(l);
    int groups = (int)l->arg[A_GROUPS], cg = l->in.c / groups;
    size_t M = (size_t)l->out.c, mg = M / (size_t)groups, kk = (size_t)g.k * (size_t)g.k * (size_t)cg;
    size_t opix = (size_t)g.oh * (size_t)g.ow, in_sample = (size_t)g.h * (size_t)g.w * (size_t)g.c;
    const float *w = l->params, *b = l->params + M * kk;
    if (direct(l)) {
        tsr_compute_gemm(0, 1, n * opix, M, kk, 1.0f, x, w, 0.0f, y);
        tsr_compute_bias_act(y, b, n * opix, M, (tsr_act_t)l->fused_act);
        return TSR_OK;
    }
    if (small(l)) {
        transpose(w, M, kk, run->ws, 0);
        uint32_t *taps = (uint32_t *)(run->ws + M * kk);
        if (l->pool) /* y is the maxpool's output */
            tsr_compute_conv_direct_pool(x, n, &g, run->ws, b, M, (int)l->pool->arg[0], taps,
                                         run->ws + M * kk + tsr_compute_conv_direct_taps(&g), y,
                                         (int32_t *)(void *)l->pool->state);
        else
            tsr_compute_conv_direct(x, n, &g, run->ws, b, M, (tsr_act_t)l->fused_act, taps, y);
        return TSR_OK;
    }
    int rc = tsr_compute_conv_dnnl(x, n, &g, groups, M, w, b, (tsr_act_t)l->fused_act, y);
    if (rc <= 0) /* done by oneDNN's direct kernels, or failed */
        return rc;
    size_t ns = chunk(l);
    for (size_t s0 = 0; s0 < n; s0 += ns) {
        size_t cnt = n - s0 < ns ? n - s0 : ns, rows = cnt * opix;
        float *yc = y + s0 * opix * M;
        for (int gi = 0; gi < groups; gi++) {
            tsr_compute_im2col(x + s0 * in_sample, cnt, &g, gi * cg, cg, run->ws);
            tsr_compute_gemm_ld(0, 1, rows, mg, kk, 1.0f, run->ws, kk, w + (size_t)gi * mg * kk, kk, 0.0f,
                                yc + (size_t)gi * mg, M);
        }
        tsr_compute_bias_act(yc, b, rows, M, (tsr_act_t)l->fused_act);
    }
    return TSR_OK;
}

static int conv_backward(tsr_layer_t *l, const tsr_layer_run_t *run, const float *x, const float *y, float *dy,
                         float *dx, size_t n)
{
    tsr_conv_geom_t g = geom(l);
    int groups = (int)l->arg[A_GROUPS], cg = l->in.c / groups;
    size_t M = (size_t)l->out.c, mg = M / (size_t)groups, kk = (size_t)g.k * (size_t)g.k * (size_t)cg;
    size_t opix = (size_t)g.oh * (size_t)g.ow, in_sample = (size_t)g.h * (size_t)g.w * (size_t)g.c;
    float *gw = l->grads, *gb = gw + M * kk;
    /* The maxpool after a fused ReLU has applied its mask (layer.h). */
    tsr_act_t act = l->grad_masked ? TSR_ACT_NONE : (tsr_act_t)l->fused_act;
    if (direct(l)) {
        tsr_compute_act_bias_grad(act, y, dy, n * opix, M, gb);
        tsr_compute_gemm(1, 0, M, kk, n * opix, 1.0f, dy, x, 0.0f, gw);
        if (dx)
            tsr_compute_gemm(0, 0, n * opix, kk, M, 1.0f, dy, l->params, 0.0f, dx);
        return TSR_OK;
    }
    if (small(l) && !dx) { /* the input gradient, when wanted, takes col2im's way below */
        /* No activation left to undo: the bias gradient rides on the weight
         * gradient's pass over dy (the same sums), not a pass of its own. */
        if (l->pool) /* dy is the maxpool's gradient */
            tsr_compute_conv_direct_wgrad_pool(x, dy, (const int32_t *)(const void *)l->pool->state, n, &g, M,
                                               (int)l->pool->arg[0], run->ws + M * kk, run->ws, gb);
        else {
            if (act != TSR_ACT_NONE)
                tsr_compute_act_bias_grad(act, y, dy, n * opix, M, gb);
            tsr_compute_conv_direct_wgrad(x, dy, n, &g, M, run->ws, act == TSR_ACT_NONE ? gb : NULL);
        }
        transpose(run->ws, M, kk, gw, 1);
        return TSR_OK;
    }
    if (tsr_compute_get_gemm() == TSR_GEMM_ONEDNN && (act == TSR_ACT_NONE || act == TSR_ACT_RELU)) {
        /* oneDNN: the activation's derivative and the bias gradient first
         * (our pass sums the bias faster than oneDNN's own, in SSE). Only
         * on its threads: elsewhere the chunks below sum the bias, and this
         * pass would be a second one over dy. */
        tsr_compute_act_bias_grad(act, y, dy, n * opix, M, gb);
        int rc = tsr_compute_conv_dnnl_backward(x, dy, n, &g, groups, M, (tsr_act_t)l->fused_act, l->params, gw, dx);
        if (rc <= 0)
            return rc;
        act = TSR_ACT_NONE; /* declined: dy already holds the derivative */
    }
    size_t ns = chunk(l);
    float *col = run->ws, *dcol = run->ws + ns * opix * kk, *db = dcol + ns * opix * kk;
    if (dx)
        memset(dx, 0, n * in_sample * sizeof *dx);
    memset(gb, 0, M * sizeof *gb);
    for (size_t s0 = 0; s0 < n; s0 += ns) {
        size_t cnt = n - s0 < ns ? n - s0 : ns, rows = cnt * opix;
        float *dyc = dy + s0 * opix * M;
        /* The activation's derivative and the bias gradient chunk by chunk,
         * so the chunk of dy is still in cache for the GEMMs below. */
        tsr_compute_act_bias_grad(act, y + s0 * opix * M, dyc, rows, M, db);
        for (size_t j = 0; j < M; j++)
            gb[j] += db[j];
        for (int gi = 0; gi < groups; gi++) {
            tsr_compute_im2col(x + s0 * in_sample, cnt, &g, gi * cg, cg, col);
            tsr_compute_gemm_ld(1, 0, mg, kk, rows, 1.0f, dyc + (size_t)gi * mg, M, col, kk, s0 ? 1.0f : 0.0f,
                                gw + (size_t)gi * mg * kk, kk);
            if (dx) {
                tsr_compute_gemm_ld(0, 0, rows, kk, mg, 1.0f, dyc + (size_t)gi * mg, M,
                                    l->params + (size_t)gi * mg * kk, kk, 0.0f, dcol, kk);
                tsr_compute_col2im(dcol, cnt, &g, gi * cg, cg, dx + s0 * in_sample);
            }
        }
    }
    return TSR_OK;
}

static double conv_flops(const tsr_layer_t *l)
{
    double kk = l->arg[A_K] * l->arg[A_K] * (double)(l->in.c / (int)l->arg[A_GROUPS]);
    return 2.0 * kk * (double)l->out.c * (double)l->out.h * (double)l->out.w;
}

size_t layer_gpu_ws_floats(const tsr_layer_t *l)
{
    if (l->kind != &tsr_kind_conv || direct(l))
        return l->ws_floats;
    size_t kk = (size_t)l->arg[A_K] * (size_t)l->arg[A_K] * (size_t)(l->in.c / (int)l->arg[A_GROUPS]);
    return 2 * chunk_of(l, GPU_CHUNK_FLOATS) * (size_t)l->out.h * (size_t)l->out.w * kk + 16;
}

/* The same lowering on a GPU: im2col per chunk and group, cuBLAS GEMMs,
 * bias and the fused activation over the whole batch. */
static int conv_gpu_forward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, float *y, size_t n)
{
    tsr_gpu_t *G = gpu;
    tsr_conv_geom_t g = geom(l);
    int groups = (int)l->arg[A_GROUPS], cg = l->in.c / groups;
    size_t M = (size_t)l->out.c, mg = M / (size_t)groups, kk = (size_t)g.k * (size_t)g.k * (size_t)cg;
    size_t opix = (size_t)g.oh * (size_t)g.ow, in_sample = (size_t)g.h * (size_t)g.w * (size_t)g.c;
    const float *w = l->params, *b = l->params + M * kk;
    int rc = TSR_OK;
    if (direct(l)) {
        rc = tsr_gpu_gemm(G, 0, 1, n * opix, M, kk, 1.0f, x, w, 0.0f, y);
    } else {
        size_t ns = chunk_of(l, GPU_CHUNK_FLOATS);
        for (size_t s0 = 0; !rc && s0 < n; s0 += ns) {
            size_t cnt = n - s0 < ns ? n - s0 : ns, rows = cnt * opix;
            for (int gi = 0; !rc && gi < groups; gi++) {
                rc = tsr_gpu_im2col(G, x + s0 * in_sample, cnt, &g, gi * cg, cg, run->ws);
                if (!rc)
                    rc = tsr_gpu_gemm_ld(G, 0, 1, rows, mg, kk, 1.0f, run->ws, kk, w + (size_t)gi * mg * kk, kk, 0.0f,
                                         y + s0 * opix * M + (size_t)gi * mg, M);
            }
        }
    }
    if (!rc)
        rc = tsr_gpu_add_bias(G, y, b, n * opix, M);
    if (!rc && l->fused_act)
        rc = tsr_gpu_act(G, (tsr_act_t)l->fused_act, y, n * opix * M);
    return rc;
}

static int conv_gpu_backward(tsr_layer_t *l, void *gpu, const tsr_layer_run_t *run, const float *x, const float *y,
                             float *dy, float *dx, size_t n)
{
    tsr_gpu_t *G = gpu;
    tsr_conv_geom_t g = geom(l);
    int groups = (int)l->arg[A_GROUPS], cg = l->in.c / groups;
    size_t M = (size_t)l->out.c, mg = M / (size_t)groups, kk = (size_t)g.k * (size_t)g.k * (size_t)cg;
    size_t opix = (size_t)g.oh * (size_t)g.ow, in_sample = (size_t)g.h * (size_t)g.w * (size_t)g.c;
    float *gw = l->grads, *gb = gw + M * kk;
    int rc = l->fused_act ? tsr_gpu_act_backward(G, (tsr_act_t)l->fused_act, y, dy, n * opix * M) : TSR_OK;
    if (!rc)
        rc = tsr_gpu_bias_grad(G, dy, n * opix, M, gb);
    if (!rc && direct(l)) {
        rc = tsr_gpu_gemm(G, 1, 0, M, kk, n * opix, 1.0f, dy, x, 0.0f, gw);
        if (!rc && dx)
            rc = tsr_gpu_gemm(G, 0, 0, n * opix, kk, M, 1.0f, dy, l->params, 0.0f, dx);
        return rc;
    }
    size_t ns = chunk_of(l, GPU_CHUNK_FLOATS);
    float *col = run->ws, *dcol = run->ws + ns * opix * kk;
    for (size_t s0 = 0; !rc && s0 < n; s0 += ns) {
        size_t cnt = n - s0 < ns ? n - s0 : ns, rows = cnt * opix;
        const float *dyc = dy + s0 * opix * M;
        for (int gi = 0; !rc && gi < groups; gi++) {
            rc = tsr_gpu_im2col(G, x + s0 * in_sample, cnt, &g, gi * cg, cg, col);
            if (!rc)
                rc = tsr_gpu_gemm_ld(G, 1, 0, mg, kk, rows, 1.0f, dyc + (size_t)gi * mg, M, col, kk, s0 ? 1.0f : 0.0f,
                                     gw + (size_t)gi * mg * kk, kk);
            if (!rc && dx)
                rc = tsr_gpu_gemm_ld(G, 0, 0, rows, kk, mg, 1.0f, dyc + (size_t)gi * mg, M,
                                     l->params + (size_t)gi * mg * kk, kk, 0.0f, dcol, kk);
            if (!rc && dx)
                rc = tsr_gpu_col2im(G, dcol, cnt, &g, gi * cg, cg, dx + s0 * in_sample);
        }
    }
    return rc;
}

const tsr_layer_kind_t tsr_kind_conv = {
    .abi = TSR_LAYER_ABI,
    .name = "conv",
    .args = "out k stride=1 pad=0 dilation=1 groups=1",
    .flags = TSR_LAYER_NEEDS_X,
    .shape = conv_shape,
    .init = conv_init,
    .forward = conv_forward,
    .backward = conv_backward,
    .gpu_forward = conv_gpu_forward,
    .gpu_backward = conv_gpu_backward,
    .flops = conv_flops,
};
