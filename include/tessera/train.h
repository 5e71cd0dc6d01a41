/* SPDX-License-Identifier: BSD-3-Clause */
/* The training step loop: ties runtime, place, data, model, optim and comm. */
#ifndef TESSERA_TRAIN_H
#define TESSERA_TRAIN_H
#include "tessera/options.h"
#include "tessera/runtime.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_train_result {
    long steps;                /* optimizer steps taken */
    long epochs;               /* epochs completed */
    double train_loss;         /* mean loss of the last epoch */
    double test_loss;          /* mean test loss after the last epoch (NaN without a test split) */
    double test_accuracy;      /* fraction correct (NaN without a test split or for MSE) */
    double wall_seconds;       /* from start of training to the model being written */
    double samples_per_second; /* global training samples per second of step loop */
    size_t nparams;
    long skipped_steps;             /* updates skipped for NaN/Inf gradients (train.on_nonfinite = skip_step) */
    long ckpt_written, ckpt_failed; /* checkpoint writes of this run (rank 0's count; 0 elsewhere) */
    int already_done;    /* resumed from a checkpoint at the end of training: nothing was trained or written */
    long best_step;      /* early stopping or keep_best: the step of the best evaluation; -1 otherwise */
    int early_stopped;   /* training stopped early (train.early_stop_patience) */
    long scaler_skipped; /* train.precision = fp16: updates skipped for NaN/Inf scaled gradients */
    double loss_scale;   /* fp16: the loss scale at the end; 0 otherwise */
} tsr_train_result_t;

/* Trains as the options say (options.h: tsr_options_train parses a configuration). Collective over the runtime's world:
 * every rank returns the same code, and when it is not TSR_OK *failed_rank
 * names the rank whose tsr_last_error() explains it. A run whose weights
 * become NaN or Inf stops at that step with TSR_EDIVERGED (nothing written
 * or registered, earlier checkpoints kept); a run resumed from a checkpoint
 * at its end trains nothing and leaves the model file and registry as
 * they are (already_done). */
TSR_API int tsr_train_run(tsr_runtime_t *rt, const tsr_train_options_t *opt, tsr_train_result_t *res, int *failed_rank);
/* The model the options describe, as `tessera model summary` prints it
 * (tsr_model_summary); reads the data's shape and classes. No MPI.
 * *text is malloc'd. */
TSR_API int tsr_train_model_summary(const tsr_train_options_t *opt, char **text);

#ifdef __cplusplus
}
#endif
#endif
