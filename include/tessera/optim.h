/* SPDX-License-Identifier: BSD-3-Clause */
/* Optimizers over a flat parameter buffer: SGD with (Nesterov) momentum,
 * AdamW, Adam (coupled L2), Lion, LAMB, LARS and RMSprop; linear warmup then
 * a schedule (constant, cosine, step, multi-step, exponential, polynomial,
 * one-cycle, reduce-on-plateau); global-norm clipping. */
#ifndef TESSERA_OPTIM_H
#define TESSERA_OPTIM_H
#include "tessera/api.h"
#include <stddef.h>
#include "tessera/compute.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    TSR_OPTIM_SGD = 0,
    TSR_OPTIM_ADAMW = 1,
    TSR_OPTIM_ADAM, /* coupled L2, as torch.optim.Adam's weight_decay */
    TSR_OPTIM_LION,
    TSR_OPTIM_LAMB,
    TSR_OPTIM_LARS,
    TSR_OPTIM_RMSPROP
} tsr_optim_kind_t;
/* After warmup; every schedule counts steps from the end of warmup. */
typedef enum {
    TSR_SCHED_CONSTANT = 0,
    TSR_SCHED_COSINE = 1,
    TSR_SCHED_STEP,        /* lr * gamma^(k / step_size) */
    TSR_SCHED_MULTISTEP,   /* lr * gamma^(milestones <= k) */
    TSR_SCHED_EXPONENTIAL, /* lr * gamma^k */
    TSR_SCHED_POLYNOMIAL,  /* min_lr + (lr - min_lr) (1 - k/K)^power */
    TSR_SCHED_ONECYCLE,    /* OneCycleLR, cosine anneal, two phases */
    TSR_SCHED_PLATEAU      /* ReduceLROnPlateau (mode min, rel threshold) */
} tsr_sched_t;
#define TSR_OPTIM_MAX_MILESTONES 32
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
    long planned_steps;             /* the run as configured, for the checks (0: total_steps); a
                                     * cap (train.max_steps) may cut total_steps below it */
    double min_lr;
    double clip_norm; /* <= 0: no clipping */
    tsr_nonfinite_t on_nonfinite;
    double alpha;                              /* RMSprop smoothing */
    int centered;                              /* RMSprop */
    double trust_coef;                         /* LARS eta */
    int exclude_bias_norm;                     /* LARS/LAMB: 1-d tensors neither decay nor adapt */
    long step_size;                            /* step */
    double gamma;                              /* step, multistep, exponential */
    long milestones[TSR_OPTIM_MAX_MILESTONES]; /* multistep: increasing */
    int nmilestones;
    double power;                                           /* polynomial */
    double max_lr, pct_start, div_factor, final_div_factor; /* onecycle; max_lr <= 0: lr */
    long plateau_patience, plateau_cooldown;
    double plateau_factor, plateau_threshold; /* plateau; min_lr is its floor */
} tsr_optim_config_t;

/* A tensor of the flat buffer, for the layer-wise rules (LAMB, LARS):
 * exclude leaves it out of weight decay and the trust ratio. */
typedef struct tsr_optim_segment {
    size_t offset, size;
    int exclude;
} tsr_optim_segment_t;

typedef struct tsr_optim tsr_optim_t;

/* Checks the configuration, the schedule against planned_steps (else
 * total_steps) when set: a milestone or warmup past the run is TSR_EINVAL
 * naming the key. */
TSR_API int tsr_optim_create(const tsr_optim_config_t *cfg, size_t n, tsr_optim_t **out);
TSR_API void tsr_optim_destroy(tsr_optim_t *o);
/* The tensors, sorted or not, which must tile [0, n) exactly; copied.
 * Without it the buffer is one tensor. Before the first step. */
TSR_API int tsr_optim_set_segments(tsr_optim_t *o, const tsr_optim_segment_t *seg, int nseg);
/* The validation metric (lower is better) for reduce-on-plateau, after an
 * evaluation; a pure function of the values observed, so ranks observing
 * the same value agree. Its state is in tsr_optim_state. No-op for other
 * schedules. */
TSR_API void tsr_optim_observe(tsr_optim_t *o, double metric);
/* "sgd", "adamw", ...: the configuration's names. */
TSR_API const char *tsr_optim_kind_name(tsr_optim_kind_t kind);

/* The learning rate at step (0-based). */
TSR_API double tsr_optim_lr(const tsr_optim_t *o, long step);
/* One update of params from grads (grads may be scaled by clipping).
 * *grad_norm (may be NULL) gets the global L2 norm before clipping. */
TSR_API int tsr_optim_step(tsr_optim_t *o, float *params, float *grads, double *grad_norm);
/* The same step in parts, for an update fused into backward: each part of
 * the weights updated as soon as its gradients are final, while they are
 * still in cache. Possible (1) where the step needs nothing of the whole
 * buffer: a CPU optimizer with an element-wise rule (not LARS/LAMB), no
 * clipping and on_nonfinite not skip. The parts cover [0, n) once each,
 * in any order; tsr_optim_step_close then ends the step. The weights and
 * state are bit for bit tsr_optim_step's. */
TSR_API int tsr_optim_splittable(const tsr_optim_t *o);
TSR_API void tsr_optim_step_part(tsr_optim_t *o, float *params, const float *grads, size_t offset, size_t count);
TSR_API void tsr_optim_step_close(tsr_optim_t *o);
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

/* Optimizer state for checkpoints: nstate floats and the step. The
 * optimizer's arrays (SGD/LARS: velocity if momentum; AdamW/Adam/LAMB: m,
 * v; Lion: m; RMSprop: square average, then the mean if centered, then
 * the velocity if momentum), then with reduce-on-plateau 4 floats: best,
 * bad evaluations, cooldown left, current lr. On a GPU only the arrays
 * move; the plateau's floats stay on the host. */
TSR_API float *tsr_optim_state(tsr_optim_t *o, size_t *nstate);
TSR_API void tsr_optim_set_steps_taken(tsr_optim_t *o, long steps);

/* Dynamic loss scaling for fp16 training, with PyTorch GradScaler's rules:
 * the loss is multiplied by scale before backward and the gradients
 * divided by it before the update; a step whose gradients hold NaN or Inf
 * is skipped and scale *= backoff; after interval finite steps in a row
 * scale *= growth (kept when that would overflow). Plain data, so the
 * checkpoint registers its fields (scale as a double, the counters as int64). */
typedef struct tsr_loss_scaler {
    double scale, growth, backoff;
    int64_t interval;
    int64_t good;    /* finite steps since the scale last changed */
    int64_t skipped; /* steps skipped for NaN/Inf gradients */
} tsr_loss_scaler_t;
/* PyTorch's defaults: scale 65536, growth 2, backoff 0.5, interval 2000. */
TSR_API void tsr_loss_scaler_init(tsr_loss_scaler_t *s);
/* After a step's gradients were checked: finite 1 (the update is applied)
 * or 0 (skipped). Returns finite. */
TSR_API int tsr_loss_scaler_update(tsr_loss_scaler_t *s, int finite);

#ifdef __cplusplus
}
#endif
#endif
