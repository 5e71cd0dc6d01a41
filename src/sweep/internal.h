/* SPDX-License-Identifier: BSD-3-Clause */
/* The sweep's parts (internal): plan (parameters, trials, ASHA rungs),
 * trial (one trial's configuration), coord (rank 0's table of trials,
 * what to run next, results files), sweep (groups, the exchange with the
 * coordinator, running trials). */
#ifndef TSR_SWEEP_INTERNAL_H
#define TSR_SWEEP_INTERNAL_H
#include "tessera/config.h"
#include "tessera/options.h"
#include "tessera/sweep.h"

enum { SWEEP_MAX_RUNGS = 16, SWEEP_MAX_EPOCHS = 1024, SWEEP_ERR_LEN = 256 };

struct tsr_sweep_plan {
    int nkeys, ngrid; /* the first ngrid keys are the grid's */
    char **keys;      /* "section.key" */
    long trials, grid_size;
    char **values; /* trials x nkeys */
    /* Levels: level i < nrungs trains to rungs[i] epochs, level nrungs to
     * epochs (the run's whole length). Without ASHA nrungs is 0. */
    int nrungs;
    long rungs[SWEEP_MAX_RUNGS];
    double keep;
    long epochs;
};

/* trial.c: the configuration of trial t: the base file, the options' sets,
 * the trial's values, then what the sweep sets itself (train.output and
 * checkpoint.dir under DIR/trials/<t>/, resuming, no registration, no
 * coordinator). dir: the trial's directory, out of len bytes. */
int sweep_trial_config(const tsr_sweep_plan_t *p, const tsr_sweep_options_t *o, long t, tsr_config_t **out);
int sweep_trial_dir(const tsr_sweep_options_t *o, long t, char *dir, size_t len);
/* Whether "section.key" is one the sweep sets for each trial. */
int sweep_key_reserved(const char *key);

/* A trial's state in the coordinator's table. */
typedef enum { TR_PENDING, TR_RUNNING, TR_WAITING, TR_DONE, TR_PRUNED, TR_FAILED, TR_SKIPPED } tsr_trial_state_t;

typedef struct sweep_point {
    double train_loss, test_loss, test_accuracy;
} sweep_point_t;

typedef struct sweep_trial {
    tsr_trial_state_t state;
    int level;                         /* running or finished: the level it trains to / reached; -1: none */
    double score[SWEEP_MAX_RUNGS + 1]; /* per level reached: higher is better; NAN: not reached */
    int promoted[SWEEP_MAX_RUNGS + 1]; /* went on from this level */
    double train_loss, test_loss, test_accuracy, seconds;
    double finished_at; /* seconds from the start of this run of the sweep to its last report; NAN: none */
    long epochs;
    sweep_point_t *hist; /* epochs points */
    char error[SWEEP_ERR_LEN];
} sweep_trial_t;

/* What a group is told to do next. */
typedef struct sweep_assign {
    int kind; /* SWEEP_RUN, SWEEP_WAIT, SWEEP_END */
    int level;
    long trial, until_epoch;
} sweep_assign_t;
enum { SWEEP_RUN = 1, SWEEP_WAIT = 2, SWEEP_END = 3 };

/* What a group says of the trial it ran. */
typedef struct sweep_report {
    long trial;
    int level, rc, nhist;
    double train_loss, test_loss, test_accuracy, seconds;
    char error[SWEEP_ERR_LEN];
    sweep_point_t hist[SWEEP_MAX_EPOCHS]; /* by epoch - 1; sent up to nhist */
} sweep_report_t;

typedef struct sweep_coord sweep_coord_t;

/* coord.c (rank 0): the table, loaded from DIR/trials.json when there is
 * one (a different sweep there is TSR_EINVAL); the next assignment for a
 * group; a group's report; results written to DIR atomically; the best
 * trial registered. groups: how many groups ask. */
int sweep_coord_create(const tsr_sweep_plan_t *p, const tsr_sweep_options_t *o, int groups, sweep_coord_t **out);
void sweep_coord_destroy(sweep_coord_t *c);
void sweep_coord_next(sweep_coord_t *c, sweep_assign_t *a);
void sweep_coord_report(sweep_coord_t *c, const sweep_report_t *r);
/* A stop signal: every later ask ends. */
void sweep_coord_stop(sweep_coord_t *c);
int sweep_coord_stopped(const sweep_coord_t *c);
int sweep_coord_write(sweep_coord_t *c);
/* At the end: trials never started become skipped, waiting ones pruned;
 * the best done trial registered (once) in registry with its parameters. */
int sweep_coord_finish(sweep_coord_t *c, const char *registry, size_t max_params, tsr_sweep_result_t *res);
/* The table as JSON text (trials.json, GET /sweep); malloc'd. */
char *sweep_coord_json(sweep_coord_t *c);
/* Called after every change (the coordinator's route). */
void sweep_coord_on_change(sweep_coord_t *c, void (*fn)(void *arg, const char *json), void *arg);

/* results.c: the table as CSV and JSON, and the JSON read back. */
char *sweep_results_csv(const tsr_sweep_plan_t *p, const sweep_trial_t *t, size_t *len);
char *sweep_results_json(const tsr_sweep_plan_t *p, const sweep_trial_t *t, const char *best_id, long best,
                         double elapsed);
int sweep_results_load(const char *path, const tsr_sweep_plan_t *p, sweep_trial_t *t, char *best_id, size_t idlen);
const char *sweep_state_name(tsr_trial_state_t s);

#endif
