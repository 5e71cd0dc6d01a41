/* SPDX-License-Identifier: BSD-3-Clause */
/* Dense kernels used by the model module, row-major: on the CPU through
 * CBLAS, on NVIDIA GPUs through cuBLAS and CUDA kernels (tsr_gpu_*). */
#ifndef TESSERA_COMPUTE_H
#define TESSERA_COMPUTE_H
#include "tessera/api.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* relu, tanh and sigmoid take their derivative from their output (so they
 * may run in place); gelu (erf form) and silu from their input. */
typedef enum { TSR_ACT_NONE = 0, TSR_ACT_RELU, TSR_ACT_TANH, TSR_ACT_SIGMOID, TSR_ACT_GELU, TSR_ACT_SILU } tsr_act_t;
#define TSR_ACT_COUNT 6

/* train.precision: the compute type of a GPU run's GEMMs and stored
 * activations (weights and optimizer state stay fp32). */
typedef enum { TSR_PRECISION_FP32 = 0, TSR_PRECISION_BF16, TSR_PRECISION_FP16 } tsr_precision_t;

/* runtime.gemm: which library runs the CPU's GEMMs. auto = oneDNN where
 * tessera was built with it (TESSERA_WITH_ONEDNN), else OpenBLAS. The
 * choice is the calling thread's; a thread that makes none runs OpenBLAS,
 * whose result for a row does not depend on the batch it is in (oneDNN's
 * does, in the last bits), as inference wants. Training sets it on its
 * thread. */
typedef enum { TSR_GEMM_AUTO = 0, TSR_GEMM_ONEDNN, TSR_GEMM_OPENBLAS } tsr_gemm_t;
/* TSR_ENOTSUP (message set) for a library this build lacks. */
TSR_API int tsr_compute_set_gemm(tsr_gemm_t g);
TSR_API tsr_gemm_t tsr_compute_get_gemm(void);
TSR_API int tsr_compute_gemm_available(tsr_gemm_t g);
TSR_API const char *tsr_compute_gemm_name(tsr_gemm_t g);
/* The GEMM in use and its kernels, e.g. "oneDNN 2.6.3 avx512_core kernels" or
 * "OpenBLAS Haswell kernels", for the training line. */
TSR_API void tsr_compute_gemm_describe(char *buf, size_t len);

/* C[M,N] = alpha * op(A) * op(B) + beta * C, op = transpose when trans != 0. */
TSR_API void tsr_compute_gemm(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                              const float *b, float beta, float *c);
/* The same with leading dimensions (row-major: lda, ldb, ldc elements
 * between rows). */
TSR_API void tsr_compute_gemm_ld(int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha, const float *a,
                                 size_t lda, const float *b, size_t ldb, float beta, float *c, size_t ldc);
/* y[rows, n] += bias[n] broadcast over rows. */
TSR_API void tsr_compute_add_bias(float *y, const float *bias, size_t rows, size_t n);
/* db[n] = sum over rows of dy[rows, n] (overwrites db). */
TSR_API void tsr_compute_bias_grad(const float *dy, size_t rows, size_t n, float *db);
/* In-place activation of y[len]. */
TSR_API void tsr_compute_act(tsr_act_t act, float *y, size_t len);
/* dy[len] *= act'(.) given the activation's output y. */
TSR_API void tsr_compute_act_backward(tsr_act_t act, const float *y, float *dy, size_t len);
/* Row-wise softmax of z[rows, n] into p (may alias z). */
TSR_API void tsr_compute_softmax(const float *z, float *p, size_t rows, size_t n);

/* One pass: y[rows, n] = act(y + bias) (bias may be NULL; act relu, tanh,
 * sigmoid or none). */
TSR_API void tsr_compute_bias_act(float *y, const float *bias, size_t rows, size_t n, tsr_act_t act);
/* One pass: dy *= act'(y) (act as above), and db[n] = column sums of the
 * result unless db is NULL. */
TSR_API void tsr_compute_act_bias_grad(tsr_act_t act, const float *y, float *dy, size_t rows, size_t n, float *db);
/* The same, adding the column sums into db (gradient accumulation): db[j]
 * += each row's value in row order. */
TSR_API void tsr_compute_act_bias_grad_add(tsr_act_t act, const float *y, float *dy, size_t rows, size_t n, float *db);
/* Dropout's mask applied: out[i] = in[i] * scale where the top 32 bits of
 * tsr_rng_counter(key, i) are at or above thr, else +0 (tsr_gpu_dropout's
 * bits). Branch-free: the kept elements are random, so a branch on each
 * was mispredicted a quarter of the time at p = 0.25. */
TSR_API void tsr_compute_dropout(uint64_t key, uint32_t thr, float scale, const float *in, float *out, size_t len);
/* y = act(x) for any activation, out of place; and dx = dy * act'(x). */
TSR_API void tsr_compute_act_x(tsr_act_t act, const float *x, float *y, size_t len);
TSR_API void tsr_compute_act_x_backward(tsr_act_t act, const float *x, const float *dy, float *dx, size_t len);

/* ---- convolution and pooling, channels last (NHWC) ----
 * A geometry: input h x w x c, kernel k x k, stride, padding, dilation,
 * output oh x ow. */
typedef struct tsr_conv_geom {
    int h, w, c, k, stride, pad, dil, oh, ow;
} tsr_conv_geom_t;
/* col[n*oh*ow, k*k*cg]: for each output pixel its input window over the
 * channels [c0, c0+cg), in (kh, kw, c) order; zeros outside the image. */
TSR_API void tsr_compute_im2col(const float *x, size_t n, const tsr_conv_geom_t *g, int c0, int cg, float *col);
/* The adjoint: adds col's values back into dx (which the caller zeroes). */
TSR_API void tsr_compute_col2im(const float *col, size_t n, const tsr_conv_geom_t *g, int c0, int cg, float *dx);
/* Direct convolution over all channels (one group) for a window of at
 * most TSR_CONV_DIRECT_MAX values (k*k*c): y[n*oh*ow, M] = act(bias +
 * sum over taps of x * wt), wt being the weights transposed to [k*k*c, M]
 * ((kh, kw, c) order). wgrad: gwt[k*k*c, M] = sum over output pixels of
 * x's tap times dy (overwritten; each element sums samples, rows, columns
 * in order), and, where gb is not NULL, the bias gradient gb[M] (dy's sum
 * over pixels in order, as tsr_compute_act_bias_grad's, in the same pass). */
#define TSR_CONV_DIRECT_MAX 32
TSR_API void tsr_compute_conv_direct(const float *x, size_t n, const tsr_conv_geom_t *g, const float *wt,
                                     const float *bias, size_t M, tsr_act_t act, uint32_t *taps, float *y);
/* The entries of the forward's taps workspace (every output pixel's input
 * and weight offsets, made once per call so that the samples can run one
 * by one): taps may be NULL, the forward then runs pixel by pixel over
 * the batch, writing n output streams at once (3x slower at batch 128). */
TSR_API size_t tsr_compute_conv_direct_taps(const tsr_conv_geom_t *g);
TSR_API void tsr_compute_conv_direct_wgrad(const float *x, const float *dy, size_t n, const tsr_conv_geom_t *g,
                                           size_t M, float *gwt, float *gb);
/* The direct convolution with its ReLU and a k x k max pool of stride k
 * whose windows tile the conv's output (oh and ow multiples of k), in one
 * pass: y[n*(oh/k)*(ow/k), M] and argmax as tsr_compute_maxpool_relu
 * writes them from the conv's output, which is never stored (rows: k*ow*M+1
 * floats of scratch, taps as for tsr_compute_conv_direct, not NULL). The
 * same bits as the two calls. */
TSR_API void tsr_compute_conv_direct_pool(const float *x, size_t n, const tsr_conv_geom_t *g, const float *wt,
                                          const float *bias, size_t M, int k, uint32_t *taps, float *rows, float *y,
                                          int32_t *argmax);
/* Its weight and bias gradients from the pooled gradient dy[n*(oh/k)*(ow/k),
 * M] and that argmax: the same bits as tsr_compute_maxpool_backward then
 * tsr_compute_conv_direct_wgrad, without the conv-sized gradient. */
TSR_API void tsr_compute_conv_direct_wgrad_pool(const float *x, const float *dy, const int32_t *argmax, size_t n,
                                                const tsr_conv_geom_t *g, size_t M, int k, float *rows, float *gwt,
                                                float *gb);
/* A convolution by oneDNN's direct kernels (conv_dnnl.c), where oneDNN is
 * the calling thread's GEMM (tsr_compute_set_gemm): x [n, h, w, c], groups
 * as im2col's, weights w [M, k, k, c/groups] and bias b [M] as the conv
 * layer keeps them; y [n, oh, ow, M] = act(conv + b) for act NONE or RELU.
 * Backward from dy (the activation's derivative already applied): gw
 * and, unless dx is NULL, dx (both overwritten; the bias gradient is the
 * caller's); act names the forward's, whose primitives backward shares. Each returns 0 when
 * done, 1 when it declines (not this thread's GEMM, no oneDNN in this
 * build, another activation, or only oneDNN's slow reference kernels for
 * the shape: lower to im2col then), or an error code. */
TSR_API int tsr_compute_conv_dnnl(const float *x, size_t n, const tsr_conv_geom_t *g, int groups, size_t M,
                                  const float *w, const float *b, tsr_act_t act, float *y);
TSR_API int tsr_compute_conv_dnnl_backward(const float *x, const float *dy, size_t n, const tsr_conv_geom_t *g,
                                           int groups, size_t M, tsr_act_t act, const float *w, float *gw, float *dx);
/* Max pooling (no padding); argmax[n*oh*ow*c] records each maximum's
 * offset in its sample for the backward pass. */
TSR_API void tsr_compute_maxpool(const float *x, size_t n, const tsr_conv_geom_t *g, float *y, int32_t *argmax);
/* The same after a ReLU: argmax is -1 where the window's maximum is not
 * positive, so backward passes no gradient there and the ReLU's own mask
 * is already applied (the layer before may skip it). */
TSR_API void tsr_compute_maxpool_relu(const float *x, size_t n, const tsr_conv_geom_t *g, float *y, int32_t *argmax);
/* dx = dy scattered to each maximum (argmax < 0: nowhere). */
TSR_API void tsr_compute_maxpool_backward(const float *dy, const int32_t *argmax, size_t n, const tsr_conv_geom_t *g,
                                          float *dx);
/* Average pooling (no padding: every window is whole). */
TSR_API void tsr_compute_avgpool(const float *x, size_t n, const tsr_conv_geom_t *g, float *y);
TSR_API void tsr_compute_avgpool_backward(const float *dy, size_t n, const tsr_conv_geom_t *g, float *dx);

/* ---- normalisation ----
 * Column sums of x[rows, n] in double: sum[j] and, unless sumsq is NULL,
 * the sum of (x - center[j])^2 (center NULL: 0). */
TSR_API void tsr_compute_colsums(const float *x, size_t rows, size_t n, const double *center, double *sum,
                                 double *sumsq);
/* y = (x - mean[j]) * scale[j] + shift[j] per column (batch-norm's
 * inference form and its training apply, with scale = gamma*invstd). */
TSR_API void tsr_compute_affine_cols(const float *x, size_t rows, size_t n, const float *mean, const float *scale,
                                     const float *shift, float *y);
/* The same with a ReLU after it: y = max(0, ...) (batch norm with its
 * ReLU fused). */
TSR_API void tsr_compute_affine_cols_relu(const float *x, size_t rows, size_t n, const float *mean, const float *scale,
                                          const float *shift, float *y);
/* Batch-norm backward over x[rows, n] and dy: per column the sums of dy
 * and of dy * (x - mean) in double, rows in order; then
 * dx = a * (dy - b - (x - mean) * k) per column. */
TSR_API void tsr_compute_bn_grad_sums(const float *x, const float *dy, size_t rows, size_t n, const float *mean,
                                      double *sdy, double *sdx);
/* The sums after a fused ReLU: dy becomes dy where y (the ReLU's output)
 * is positive, else 0, in place, and the sums are taken of that. */
TSR_API void tsr_compute_bn_grad_sums_relu(const float *x, float *dy, const float *y, size_t rows, size_t n,
                                           const float *mean, double *sdy, double *sdx);
TSR_API void tsr_compute_bn_grad_input(const float *x, const float *dy, size_t rows, size_t n, const float *mean,
                                       const float *a, const float *b, const float *k, float *dx);
/* The most columns (g->c) the pooled kernels below take. */
#define TSR_BN_POOLED_MAX_C 1024
/* Batch norm's normalisation with a ReLU, then a maxpool of geometry g
 * whose windows tile x (samples x g->h x g->w rows of g->c columns), in
 * one pass: y and argmax as tsr_compute_affine_cols_relu followed by
 * tsr_compute_maxpool_relu give them, bit for bit, without the full-size
 * output. */
TSR_API void tsr_compute_affine_relu_maxpool(const float *x, size_t samples, const tsr_conv_geom_t *g,
                                             const float *mean, const float *scale, const float *shift, float *y,
                                             int32_t *argmax);
/* The backward's two passes after such a maxpool: dy is its pooled
 * gradient, and each position's gradient (the window's where the argmax
 * points at it, else 0) is read from dy and argmax in x's row order, so
 * the sums and dx have the bits of tsr_compute_maxpool_backward followed
 * by tsr_compute_bn_grad_sums and tsr_compute_bn_grad_input. */
TSR_API void tsr_compute_bn_grad_sums_pooled(const float *x, const float *dy, const int32_t *argmax, size_t samples,
                                             const tsr_conv_geom_t *g, const float *mean, double *sdy, double *sdx);
TSR_API void tsr_compute_bn_grad_input_pooled(const float *x, const float *dy, const int32_t *argmax, size_t samples,
                                              const tsr_conv_geom_t *g, const float *mean, const float *a,
                                              const float *b, const float *k, float *dx);

TSR_API const char *tsr_act_name(tsr_act_t act);
/* Returns -1 for an unknown name. */
TSR_API int tsr_act_parse(const char *name);

/* ---- GPU (CUDA) -------------------------------------------------------
 * The same kernels on device memory, through cuBLAS and the CUDA kernels
 * in src/compute/cuda/. Built with TESSERA_WITH_CUDA; in a build without
 * it every call below fails with TSR_ENOTSUP ("built without CUDA") and
 * tsr_gpu_count() is 0, so callers need no #ifdef.
 *
 * A handle owns one device, a compute stream and a cuBLAS handle bound to
 * that stream. Calls that take a handle are asynchronous on its stream
 * (kernels, uploads) unless they say they wait; errors a kernel hits while
 * running surface at the next call that waits (tsr_gpu_sync, download).
 * Pointers named d* are device memory. Streams and events are opaque
 * (cudaStream_t, cudaEvent_t) so that C code outside src/compute/cuda/
 * never includes CUDA headers. */
typedef struct tsr_gpu tsr_gpu_t;

/* CUDA devices this process sees; 0 without CUDA support, a driver or a
 * device. Never fails; when it returns 0, tsr_last_error() says why. */
TSR_API int tsr_gpu_count(void);
/* PCI bus id of device dev ("0000:3b:00.0"), for hwloc locality. */
TSR_API int tsr_gpu_pci_busid(int dev, char *buf, size_t len);
/* Makes dev the calling thread's device and creates the handle. */
TSR_API int tsr_gpu_create(int dev, tsr_gpu_t **out);
TSR_API void tsr_gpu_destroy(tsr_gpu_t *g);
TSR_API int tsr_gpu_device(const tsr_gpu_t *g);
/* The device's name ("NVIDIA H100 80GB HBM3"). */
TSR_API const char *tsr_gpu_name(const tsr_gpu_t *g);
TSR_API void *tsr_gpu_stream(tsr_gpu_t *g);

/* Device memory, zeroed (waits). Free accepts NULL. */
TSR_API int tsr_gpu_alloc(tsr_gpu_t *g, size_t bytes, void **dptr);
TSR_API void tsr_gpu_free(tsr_gpu_t *g, void *dptr);
/* Page-locked host memory for fast asynchronous copies. Free accepts NULL. */
TSR_API int tsr_gpu_host_alloc(size_t bytes, void **ptr);
TSR_API void tsr_gpu_host_free(void *ptr);
/* Host to device, asynchronous on the stream (src must stay valid until
 * the next sync unless it is pageable memory, which CUDA stages first). */
TSR_API int tsr_gpu_upload(tsr_gpu_t *g, void *dst, const void *src, size_t bytes);
/* Device to host; waits for everything before it on the stream. */
TSR_API int tsr_gpu_download(tsr_gpu_t *g, void *dst, const void *src, size_t bytes);
TSR_API int tsr_gpu_memset0(tsr_gpu_t *g, void *dptr, size_t bytes);
/* Device to device on the stream (asynchronous; the ranges must not overlap). */
TSR_API int tsr_gpu_copy(tsr_gpu_t *g, void *ddst, const void *dsrc, size_t bytes);
/* Waits for the stream; reports any error a kernel hit. */
TSR_API int tsr_gpu_sync(tsr_gpu_t *g);

/* More streams and events for overlap (the NCCL back-end's comm stream). */
TSR_API int tsr_gpu_stream_create(tsr_gpu_t *g, void **stream);
TSR_API void tsr_gpu_stream_destroy(void *stream);
TSR_API int tsr_gpu_stream_sync(void *stream);
/* Without waiting: 1 when everything queued on stream has run, 0 while
 * work is pending, or a TSR_E* code for an error the work hit. */
TSR_API int tsr_gpu_stream_done(void *stream);
/* On the calling thread's current device (the last handle created or used). */
TSR_API int tsr_gpu_event_create(void **event);
TSR_API void tsr_gpu_event_destroy(void *event);
TSR_API int tsr_gpu_event_record(void *event, void *stream);
/* Later work on stream waits for event (no host wait). */
TSR_API int tsr_gpu_stream_wait_event(void *stream, void *event);
/* Milliseconds between two recorded events (waits for end). */
TSR_API int tsr_gpu_event_elapsed_ms(void *start, void *end, float *ms);

/* Kernels: the CPU functions above on device memory, same row-major
 * layout and the same results to float rounding. */
TSR_API int tsr_gpu_gemm(tsr_gpu_t *g, int trans_a, int trans_b, size_t m, size_t n, size_t k, float alpha,
                         const float *da, const float *db, float beta, float *dc);
TSR_API int tsr_gpu_add_bias(tsr_gpu_t *g, float *dy, const float *dbias, size_t rows, size_t n);
TSR_API int tsr_gpu_bias_grad(tsr_gpu_t *g, const float *ddy, size_t rows, size_t n, float *ddb);
TSR_API int tsr_gpu_act(tsr_gpu_t *g, tsr_act_t act, float *dy, size_t len);
TSR_API int tsr_gpu_act_backward(tsr_gpu_t *g, tsr_act_t act, const float *dy_out, float *ddy, size_t len);
TSR_API int tsr_gpu_softmax(tsr_gpu_t *g, const float *dz, float *dp, size_t rows, size_t n);
#ifdef __cplusplus
}
#endif
#endif
