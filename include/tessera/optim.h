/* Optimizers over a flat parameter buffer: SGD with (Nesterov) momentum and
 * AdamW; linear warmup then constant or cosine decay; global-norm clipping. */
#ifndef TESSERA_OPTIM_H
#define TESSERA_OPTIM_H
#include <stddef.h>
#include "tessera/compute.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TSR_OPTIM_SGD = 0, TSR_OPTIM_ADAMW = 1 } tsr_optim_kind_t;
typedef enum { TSR_SCHED_CONSTANT = 0, TSR_SCHED_COSINE = 1 } tsr_sched_t;
/* What an update with NaN or Inf gradients does: STOP updates (the caller
 * learns from tsr_optim_nonfinite_step and stops); SKIP leaves weights and
 * state unchanged (the step still counts for the schedule). */
typedef enum { TSR_NONFINITE_STOP = 0, TSR_NONFINITE_SKIP = 1 } tsr_nonfinite_t;

typedef struct tsr_optim_config {
    tsr_optim_kind_t kind;
    double lr, momentum, weight_decay;
    int nesterov;
    double beta1, beta2, eps;
    tsr_sched_t schedule;
    long warmup_steps, total_steps; /* total_steps bounds the cosine */
    double min_lr;
    double clip_norm;               /* <= 0: no clipping */
    tsr_nonfinite_t on_nonfinite;
} tsr_optim_config_t;

typedef struct tsr_optim tsr_optim_t;

TSR_API int tsr_optim_create(const tsr_optim_config_t *cfg, size_t n, tsr_optim_t **out);
TSR_API void tsr_optim_destroy(tsr_optim_t *o);

/* The learning rate at step (0-based). */
TSR_API double tsr_optim_lr(const tsr_optim_t *o, long step);
/* One update of params from grads (grads may be scaled by clipping).
 * *grad_norm (may be NULL) gets the global L2 norm before clipping. */
TSR_API int tsr_optim_step(tsr_optim_t *o, float *params, float *grads, double *grad_norm);
TSR_API long tsr_optim_steps_taken(const tsr_optim_t *o);
/* The first update (1-based) after which a weight was NaN or Inf (NaN or
 * Inf gradients, or an update that overflowed), or 0. Checked as part of
 * the update, so free on the CPU; on a GPU the kernels note it on the
 * device and this reads it (waits for the stream: call it where the host
 * waits anyway), returning -1 if the read fails. */
TSR_API long tsr_optim_nonfinite_step(tsr_optim_t *o);
/* Updates skipped for non-finite gradients (on_nonfinite = SKIP); reads
 * the device on a GPU. */
TSR_API long tsr_optim_skipped_steps(tsr_optim_t *o);

/* On a GPU: the state moves to device memory and tsr_optim_step takes
 * device pointers (tsr_model_work_params/grads). tsr_optim_state stays the
 * host mirror: download before reading it (checkpoints), upload after
 * writing it (restore). */
TSR_API int tsr_optim_to_gpu(tsr_optim_t *o, tsr_gpu_t *gpu);
TSR_API int tsr_optim_download(tsr_optim_t *o);
TSR_API int tsr_optim_upload(tsr_optim_t *o);

/* Optimizer state for checkpoints: nstate floats (0, n or 2n) and the step. */
TSR_API float *tsr_optim_state(tsr_optim_t *o, size_t *nstate);
TSR_API void tsr_optim_set_steps_taken(tsr_optim_t *o, long steps);

#ifdef __cplusplus
}
#endif
#endif
