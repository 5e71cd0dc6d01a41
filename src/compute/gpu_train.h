/* SPDX-License-Identifier: BSD-3-Clause */
/* The GPU kernels of training's loss and optimizer steps (internal: for
 * src/model and src/optim, not installed). The same conventions as the
 * public tsr_gpu_* calls in tessera/compute.h: asynchronous on the handle's
 * stream, device pointers named d*, TSR_ENOTSUP in a build without CUDA. */
#ifndef TSR_COMPUTE_GPU_TRAIN_H
#define TSR_COMPUTE_GPU_TRAIN_H
#include "tessera/compute.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Training loss: softmax cross-entropy of logits dz[rows,k] against
 * dlabels (int32), delta = scale * (softmax - onehot); adds the sum of
 * -log(max(p[label], 1e-30)) to *dloss (one device double). */
int tsr_gpu_xent_delta(tsr_gpu_t *g, const float *dz, const int32_t *dlabels, size_t rows, size_t k, float scale,
                       float *ddelta, double *dloss);
/* MSE: delta = scale * 2/k * (out - target); adds sum (out-target)^2 / k to *dloss. */
int tsr_gpu_mse_delta(tsr_gpu_t *g, const float *dout, const float *dtargets, size_t rows, size_t k, float scale,
                      float *ddelta, double *dloss);
/* Evaluation: adds the cross-entropy sum (log-sum-exp form) to *dloss and
 * the count of rows whose argmax (first maximum) equals the label to *dcorrect. */
int tsr_gpu_xent_eval(tsr_gpu_t *g, const float *dz, const int32_t *dlabels, size_t rows, size_t k, double *dloss,
                      unsigned long long *dcorrect);
int tsr_gpu_mse_eval(tsr_gpu_t *g, const float *dout, const float *dtargets, size_t rows, size_t k, double *dloss);

/* Optimizer pieces (src/optim's rules; the caller computes lr and the bias
 * corrections on the host). *dsumsq (device double) = sum of dx[i]^2. */
int tsr_gpu_sumsq(tsr_gpu_t *g, const float *dx, size_t n, double *dsumsq);
/* dx *= clip / (sqrt(*dsumsq) + 1e-6) when sqrt(*dsumsq) > clip; reads the
 * norm on the device, so no host wait. */
int tsr_gpu_clip(tsr_gpu_t *g, float *dx, size_t n, const double *dsumsq, double clip);
/* Non-finite values in an update, noted on the device so that the host
 * need not wait: the update is skipped when *skip_if (device double, the
 * gradients' sum of squares; NULL: never) is NaN or Inf, which adds 1 to
 * note[1]; a new weight that is NaN or Inf sets note[0] (device, two
 * int64) to step if note[0] is still 0. note may be NULL. quiet: a skip
 * is not counted (an update of several launches counts it in one). */
typedef struct tsr_gpu_guard {
    const double *skip_if;
    long long *note;
    long long step;
    int quiet;
} tsr_gpu_guard_t;
/* SGD: gi = g + wd*p; without velocity (dv NULL) p -= lr*gi; with it:
 * first step v = gi, else v = mu*v + gi; p -= lr*(nesterov ? gi + mu*v : v). */
int tsr_gpu_sgd(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, float wd, float mu,
                int nesterov, int first, const tsr_gpu_guard_t *guard);
/* AdamW: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p = p*decay - step*m / (sqrt(v)/bc2s + eps). */
int tsr_gpu_adamw(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step, float decay,
                  float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard);
/* The same with gi = g + l2*p in place of g (Adam's coupled L2: decay 1). */
int tsr_gpu_adam(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step, float decay,
                 float l2, float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard);
/* Lion: u = b1*m + (1-b1)*g; p = p*decay - lr*sign(u) (sign(0) = 0, NaN
 * kept); m = b2*m + (1-b2)*g. */
int tsr_gpu_lion(tsr_gpu_t *g, float *dp, const float *dg, float *dm, size_t n, float lr, float decay, float b1,
                 float b2, const tsr_gpu_guard_t *guard);
/* RMSprop: gi = g + wd*p; sq = a*sq + (1-a)*gi^2; centered (dmean not
 * NULL): mean = a*mean + (1-a)*gi, d = sqrt(sq - mean^2) + eps, else
 * sqrt(sq) + eps; with dbuf: buf = mu*buf + gi/d, p -= lr*buf; else
 * p -= lr*(gi/d). */
int tsr_gpu_rmsprop(tsr_gpu_t *g, float *dp, const float *dg, float *dsq, float *dmean, float *dbuf, size_t n, float lr,
                    float alpha, float eps, float wd, float mu, const tsr_gpu_guard_t *guard);
/* LARS on one tensor: trust = eta*|p|/(|g| + wd*|p| + eps) in double from
 * dnorm2 (device doubles |p|^2, |g|^2), 1 where either is 0 or dnorm2 is
 * NULL; d = (g + wd*p)*trust; dv NULL: p -= lr*d; else v = first ? d :
 * mu*v + d, p -= lr*v. */
int tsr_gpu_lars(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, double wd, float mu,
                 int first, double eta, double eps, const double *dnorm2, const tsr_gpu_guard_t *guard);
/* LAMB on one tensor in two launches: moments updates m and v and writes
 * u = (m/bc1)/(sqrt(v)/bc2s + eps) + wd*p into du; apply does p -= f*u with
 * f = lr*|p|/|u| from dnorm2 (device doubles |p|^2, |u|^2), f = lr where
 * either is 0 or dnorm2 is NULL. */
int tsr_gpu_lamb_moments(tsr_gpu_t *g, const float *dp, const float *dg, float *dm, float *dv, float *du, size_t n,
                         float b1, float b2, float eps, float bc1, float bc2s, float wd, const tsr_gpu_guard_t *guard);
int tsr_gpu_lamb_apply(tsr_gpu_t *g, float *dp, const float *du, size_t n, float lr, const double *dnorm2,
                       const tsr_gpu_guard_t *guard);

/* Mixed precision (train.precision = bf16 or fp16; p names the half
 * type, never TSR_PRECISION_FP32): the half-width copies are bf16 or IEEE
 * fp16 values, 2 bytes each. to_half rounds to nearest even (fp16: beyond
 * 65504 gives Inf, as PyTorch's .half()); from_half is exact. stream:
 * where to queue (NULL: the handle's stream; the nccl back-end casts on
 * its own). */
int tsr_gpu_to_half(tsr_gpu_t *g, tsr_precision_t p, const float *dsrc, void *ddst, size_t n, void *stream);
int tsr_gpu_from_half(tsr_gpu_t *g, tsr_precision_t p, const void *dsrc, float *ddst, size_t n, void *stream);
/* tsr_gpu_gemm with A and B half (p) and C fp32: cublasGemmEx with fp32
 * accumulation (CUBLAS_COMPUTE_32F), the products of autocast. */
int tsr_gpu_gemm_half(tsr_gpu_t *g, tsr_precision_t p, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                      float alpha, const void *da, const void *db, float beta, float *dc);
/* tsr_gpu_act_backward with the activation's output y stored half (p). */
int tsr_gpu_act_backward_half(tsr_gpu_t *g, tsr_precision_t p, tsr_act_t act, const void *dy_out, float *ddy,
                              size_t len);
/* dx *= s (the loss scaler's unscale). */
int tsr_gpu_scale(tsr_gpu_t *g, float *dx, size_t n, float s);

#ifdef __cplusplus
}
#endif
#endif
