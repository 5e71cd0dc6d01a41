/* SPDX-License-Identifier: BSD-3-Clause */
/* The GPU layer in a build without CUDA: every tsr_gpu_* call fails with
 * TSR_ENOTSUP and tsr_gpu_count() is 0, so callers need no #ifdef. With
 * CUDA the real functions in src/compute/cuda/ are built instead and this
 * file is empty. */
#ifndef TSR_HAVE_CUDA
#include "compute/gpu_train.h"
#include "tessera/error.h"

#define NOCUDA "built without CUDA (configure with TESSERA_WITH_CUDA=ON and the CUDA Toolkit)"

static int nocuda(const char *fn) { return tsr_error_set(TSR_ENOTSUP, "%s: " NOCUDA, fn); }

int tsr_gpu_count(void)
{
    tsr_error_set(TSR_ENOTSUP, NOCUDA); /* says why it is 0 */
    return 0;
}

int tsr_gpu_pci_busid(int dev, char *buf, size_t len)
{
    if (buf && len)
        buf[0] = '\0';
    return nocuda("tsr_gpu_pci_busid");
}

int tsr_gpu_create(int dev, tsr_gpu_t **out)
{
    *out = NULL;
    return nocuda("tsr_gpu_create");
}

void tsr_gpu_destroy(tsr_gpu_t *g) {}

int tsr_gpu_device(const tsr_gpu_t *g) { return -1; }

const char *tsr_gpu_name(const tsr_gpu_t *g) { return ""; }

void *tsr_gpu_stream(tsr_gpu_t *g) { return NULL; }

int tsr_gpu_alloc(tsr_gpu_t *g, size_t bytes, void **dptr)
{
    *dptr = NULL;
    return nocuda("tsr_gpu_alloc");
}

void tsr_gpu_free(tsr_gpu_t *g, void *dptr) {}

int tsr_gpu_host_alloc(size_t bytes, void **ptr)
{
    *ptr = NULL;
    return nocuda("tsr_gpu_host_alloc");
}

void tsr_gpu_host_free(void *ptr) {}

int tsr_gpu_upload(tsr_gpu_t *g, void *dst, const void *src, size_t bytes) { return nocuda("tsr_gpu_upload"); }

int tsr_gpu_download(tsr_gpu_t *g, void *dst, const void *src, size_t bytes) { return nocuda("tsr_gpu_download"); }

int tsr_gpu_memset0(tsr_gpu_t *g, void *dptr, size_t bytes) { return nocuda("tsr_gpu_memset0"); }

int tsr_gpu_copy(tsr_gpu_t *g, void *ddst, const void *dsrc, size_t bytes) { return nocuda("tsr_gpu_copy"); }

int tsr_gpu_sync(tsr_gpu_t *g) { return nocuda("tsr_gpu_sync"); }

int tsr_gpu_stream_create(tsr_gpu_t *g, void **stream)
{
    *stream = NULL;
    return nocuda("tsr_gpu_stream_create");
}

void tsr_gpu_stream_destroy(void *stream) {}

int tsr_gpu_stream_sync(void *stream) { return nocuda("tsr_gpu_stream_sync"); }

int tsr_gpu_stream_done(void *stream)
{
    (void)stream;
    return nocuda("tsr_gpu_stream_done");
}

int tsr_gpu_event_create(void **event)
{
    *event = NULL;
    return nocuda("tsr_gpu_event_create");
}

void tsr_gpu_event_destroy(void *event) {}

int tsr_gpu_event_record(void *event, void *stream) { return nocuda("tsr_gpu_event_record"); }

int tsr_gpu_stream_wait_event(void *stream, void *event) { return nocuda("tsr_gpu_stream_wait_event"); }

int tsr_gpu_event_elapsed_ms(void *start, void *end, float *ms) { return nocuda("tsr_gpu_event_elapsed_ms"); }

int tsr_gpu_gemm(tsr_gpu_t *g, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *da,
                 const float *db, float beta, float *dc)
{
    return nocuda("tsr_gpu_gemm");
}

int tsr_gpu_add_bias(tsr_gpu_t *g, float *dy, const float *dbias, size_t rows, size_t n)
{
    return nocuda("tsr_gpu_add_bias");
}

int tsr_gpu_bias_grad(tsr_gpu_t *g, const float *ddy, size_t rows, size_t n, float *ddb)
{
    return nocuda("tsr_gpu_bias_grad");
}

int tsr_gpu_act(tsr_gpu_t *g, tsr_act_t act, float *dy, size_t len) { return nocuda("tsr_gpu_act"); }

int tsr_gpu_act_backward(tsr_gpu_t *g, tsr_act_t act, const float *dy_out, float *ddy, size_t len)
{
    return nocuda("tsr_gpu_act_backward");
}

int tsr_gpu_softmax(tsr_gpu_t *g, const float *dz, float *dp, size_t rows, size_t n)
{
    return nocuda("tsr_gpu_softmax");
}

int tsr_gpu_xent_delta(tsr_gpu_t *g, const float *dz, const int32_t *dlabels, size_t rows, size_t k, float scale,
                       float *ddelta, double *dloss)
{
    return nocuda("tsr_gpu_xent_delta");
}

int tsr_gpu_mse_delta(tsr_gpu_t *g, const float *dout, const float *dtargets, size_t rows, size_t k, float scale,
                      float *ddelta, double *dloss)
{
    return nocuda("tsr_gpu_mse_delta");
}

int tsr_gpu_xent_eval(tsr_gpu_t *g, const float *dz, const int32_t *dlabels, size_t rows, size_t k, double *dloss,
                      unsigned long long *dcorrect)
{
    return nocuda("tsr_gpu_xent_eval");
}

int tsr_gpu_mse_eval(tsr_gpu_t *g, const float *dout, const float *dtargets, size_t rows, size_t k, double *dloss)
{
    return nocuda("tsr_gpu_mse_eval");
}

int tsr_gpu_sumsq(tsr_gpu_t *g, const float *dx, size_t n, double *dsumsq) { return nocuda("tsr_gpu_sumsq"); }

int tsr_gpu_clip(tsr_gpu_t *g, float *dx, size_t n, const double *dsumsq, double clip)
{
    return nocuda("tsr_gpu_clip");
}

int tsr_gpu_sgd(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, float wd, float mu,
                int nesterov, int first, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_sgd");
}

int tsr_gpu_adamw(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step, float decay,
                  float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_adamw");
}

int tsr_gpu_adam(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step, float decay,
                 float l2, float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_adam");
}

int tsr_gpu_lion(tsr_gpu_t *g, float *dp, const float *dg, float *dm, size_t n, float lr, float decay, float b1,
                 float b2, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_lion");
}

int tsr_gpu_rmsprop(tsr_gpu_t *g, float *dp, const float *dg, float *dsq, float *dmean, float *dbuf, size_t n, float lr,
                    float alpha, float eps, float wd, float mu, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_rmsprop");
}

int tsr_gpu_lars(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, double wd, float mu,
                 int first, double eta, double eps, const double *dnorm2, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_lars");
}

int tsr_gpu_lamb_moments(tsr_gpu_t *g, const float *dp, const float *dg, float *dm, float *dv, float *du, size_t n,
                         float b1, float b2, float eps, float bc1, float bc2s, float wd, const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_lamb_moments");
}

int tsr_gpu_lamb_apply(tsr_gpu_t *g, float *dp, const float *du, size_t n, float lr, const double *dnorm2,
                       const tsr_gpu_guard_t *guard)
{
    return nocuda("tsr_gpu_lamb_apply");
}

int tsr_gpu_to_half(tsr_gpu_t *g, tsr_precision_t p, const float *dsrc, void *ddst, size_t n, void *stream)
{
    return nocuda("tsr_gpu_to_half");
}

int tsr_gpu_from_half(tsr_gpu_t *g, tsr_precision_t p, const void *dsrc, float *ddst, size_t n, void *stream)
{
    return nocuda("tsr_gpu_from_half");
}

int tsr_gpu_gemm_half(tsr_gpu_t *g, tsr_precision_t p, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, const void *da, const void *db, float beta, float *dc)
{
    return nocuda("tsr_gpu_gemm_half");
}

int tsr_gpu_act_backward_half(tsr_gpu_t *g, tsr_precision_t p, tsr_act_t act, const void *dy_out, float *ddy,
                              size_t len)
{
    return nocuda("tsr_gpu_act_backward_half");
}

int tsr_gpu_scale(tsr_gpu_t *g, float *dx, size_t n, float s) { return nocuda("tsr_gpu_scale"); }
#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int tsr_gpu_none_empty_t;
#endif
