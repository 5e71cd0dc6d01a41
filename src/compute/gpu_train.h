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
 * int64) to step if note[0] is still 0. note may be NULL. */
typedef struct tsr_gpu_guard {
    const double *skip_if;
    long long *note;
    long long step;
} tsr_gpu_guard_t;
/* SGD: gi = g + wd*p; without velocity (dv NULL) p -= lr*gi; with it:
 * first step v = gi, else v = mu*v + gi; p -= lr*(nesterov ? gi + mu*v : v). */
int tsr_gpu_sgd(tsr_gpu_t *g, float *dp, const float *dg, float *dv, size_t n, float lr, float wd, float mu,
                int nesterov, int first, const tsr_gpu_guard_t *guard);
/* AdamW: m = b1*m + (1-b1)*g; v = b2*v + (1-b2)*g^2;
 * p = p*decay - step*m / (sqrt(v)/bc2s + eps). */
int tsr_gpu_adamw(tsr_gpu_t *g, float *dp, const float *dg, float *dm, float *dv, size_t n, float step,
                  float decay, float b1, float b2, float eps, float bc2s, const tsr_gpu_guard_t *guard);

#ifdef __cplusplus
}
#endif
#endif
