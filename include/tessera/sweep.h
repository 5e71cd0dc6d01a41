/* SPDX-License-Identifier: BSD-3-Clause */
/* Hyperparameter sweeps in one job: the world is split into groups of
 * ranks_per_trial ranks (MPI_Comm_split), each group trains one trial at a
 * time through the normal training path (tsr_train_run on its own
 * runtime), and rank 0 hands trials out as groups ask for them. Grid and
 * random parameters, successive halving (asynchronous, ASHA-style) on
 * epochs, a budget in trials or seconds; results in DIR/trials.csv and
 * DIR/trials.json (per-epoch metrics too), the best model registered with
 * its parameters as metadata, GET /sweep on the coordinator. A sweep run
 * again on the same DIR resumes: finished trials are not rerun and a
 * trial under way resumes from its own checkpoints. */
#ifndef TESSERA_SWEEP_H
#define TESSERA_SWEEP_H
#include <stdint.h>
#include "tessera/runtime.h"
#include "tessera/api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tsr_sweep_options {
    const char *config;      /* the base configuration file */
    const char *const *sets; /* "section.key=value" over it, for every trial */
    int nsets;
    const char *const *grid; /* "section.key=v1,v2,...": every value */
    int ngrid;
    const char *const *random; /* "section.key=uniform:A:B", loguniform:A:B, int:A:B, choice:a|b|c */
    int nrandom;
    long trials;           /* 0: the grid's size (random parameters need it) */
    int ranks_per_trial;   /* ranks per group; must divide the world's size */
    const char *dir;       /* results, each trial's model and checkpoints */
    uint64_t seed;         /* random parameters' draws */
    const char *asha;      /* "R1,R2,...[:KEEP]": rungs in epochs, fraction kept; NULL: off */
    long budget_trials;    /* trials started at most; 0: all */
    double budget_seconds; /* no trial starts or is promoted after this; 0: no limit */
} tsr_sweep_options_t;

/* The trials a sweep will run: parsed and checked against the
 * configuration schema and the training options (an unknown key names the
 * nearest one; an empty grid, a bad distribution or value, a key the sweep
 * sets itself, ASHA rungs outside the run: TSR_EINVAL naming it). No MPI. */
typedef struct tsr_sweep_plan tsr_sweep_plan_t;
TSR_API int tsr_sweep_plan_create(const tsr_sweep_options_t *o, tsr_sweep_plan_t **out);
TSR_API void tsr_sweep_plan_destroy(tsr_sweep_plan_t *p); /* accepts NULL */
TSR_API long tsr_sweep_plan_trials(const tsr_sweep_plan_t *p);
TSR_API int tsr_sweep_plan_nkeys(const tsr_sweep_plan_t *p);
TSR_API const char *tsr_sweep_plan_key(const tsr_sweep_plan_t *p, int k);               /* "optim.lr" */
TSR_API const char *tsr_sweep_plan_value(const tsr_sweep_plan_t *p, long trial, int k); /* as set */

typedef struct tsr_sweep_result {
    long trials, done, pruned, failed, skipped; /* skipped: never started (budget or a stop) */
    long best;                                  /* the best finished trial, or -1 */
    double best_accuracy, best_loss;
    char best_id[96]; /* its registry id, or "" */
    double wall_seconds;
} tsr_sweep_result_t;

/* Runs the sweep. Collective over rt's world; every rank returns the same
 * code: TSR_OK when every trial ended (a trial that fails is recorded as
 * failed, the others go on), TSR_ESTOPPED after a stop signal (trials under
 * way checkpointed; run again to resume), or the error that stopped it
 * (*failed_rank names the rank whose tsr_last_error() explains it). */
TSR_API int tsr_sweep_run(tsr_runtime_t *rt, const tsr_sweep_options_t *o, tsr_sweep_result_t *res, int *failed_rank);

#ifdef __cplusplus
}
#endif
#endif
