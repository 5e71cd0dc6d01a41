/* SPDX-License-Identifier: BSD-3-Clause */
/* bench_ckpt (b): the step-time overhead of asynchronous (and
 * synchronous) checkpoints on MLP training; see bench_ckpt.c. */
#include "bench_ckpt.h"
#include "tessera/ckpt.h"
#include "tessera/model.h"
#include "tessera/optim.h"
#include "tessera/place.h"
#include "tessera/rng.h"

#include <stdint.h>

/* ---- (b) asynchronous checkpoints during training ---- */

#define NLAYERS 3
#define NBATCHES 60
static const size_t sizes[NLAYERS + 1] = {784, 256, 256, 10};

typedef struct {
    tsr_model_t *model;
    tsr_optim_t *optim;
    float *x;
    int32_t *y;
    size_t batch, next;
    double loss;
} trainer_t;

static void train_step(trainer_t *t)
{
    size_t b = t->next;
    t->next = (t->next + 1) % NBATCHES;
    tsr_model_forward(t->model, t->x + b * t->batch * sizes[0], t->batch);
    t->loss += tsr_model_backward(t->model, t->y + b * t->batch, NULL, t->batch, 1.0f / (float)t->batch, NULL, NULL);
    tsr_optim_step(t->optim, tsr_model_params(t->model), tsr_model_grads(t->model), NULL);
}

typedef struct {
    double step_s;                   /* whole run / steps */
    double thread_cpu_s, proc_cpu_s; /* CPU time per step: the training thread, the process */
    double caller_s;                 /* time spent inside tsr_ckpt_* calls on the training thread, per checkpoint */
    double writer_s;                 /* the writer's time for the last checkpoint (snapshot excluded) */
    int writes;
    size_t bytes;
} run_t;

static run_t train_run(trainer_t *t, int mode, long steps, long every, long *step_base)
{
    run_t res = {0};
    tsr_ckpt_t *c = NULL;
    int64_t opt_steps = 0;
    if (mode != MODE_NONE) {
        char dir[8192];
        snprintf(dir, sizeof dir, "%s/train", workdir);
        tsr_ckpt_config_t cfg = {.dir = dir, .keep = 2, .every_steps = every, .async = mode == MODE_ASYNC};
        int rc = tsr_ckpt_create(&cfg, &c);
        float *p = tsr_model_params(t->model);
        for (int i = 0; i < NLAYERS && !rc; i++) {
            char name[64];
            size_t wd[2] = {sizes[i + 1], sizes[i]}, bd[1] = {sizes[i + 1]};
            float *w = p + tsr_model_layer_offset(t->model, 2 * i); /* dense layers are 0, 2, 4 (relu between) */
            snprintf(name, sizeof name, "/model/layer_%d/weight", i);
            rc = tsr_ckpt_register(c, name, w, TSR_CKPT_FLOAT32, 2, wd);
            snprintf(name, sizeof name, "/model/layer_%d/bias", i);
            if (!rc)
                rc = tsr_ckpt_register(c, name, w + sizes[i] * sizes[i + 1], TSR_CKPT_FLOAT32, 1, bd);
        }
        size_t nstate = 0, one = 1;
        float *state = tsr_optim_state(t->optim, &nstate);
        if (!rc && nstate)
            rc = tsr_ckpt_register(c, "/optimizer/state", state, TSR_CKPT_FLOAT32, 1, &nstate);
        if (!rc)
            rc = tsr_ckpt_register(c, "/optimizer/steps", &opt_steps, TSR_CKPT_INT64, 1, &one);
        if (rc)
            die("checkpoint set-up", rc);
        res.bytes = tsr_ckpt_bytes(c);
    }
    /* Steps are numbered on from earlier runs, so every run writes new file
     * names, yet each run starts its cadence at its own first step. */
    long base = *step_base;
    double in_ckpt = 0;
    double t0 = now(), tc0 = clock_s(CLOCK_THREAD_CPUTIME_ID), pc0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (long s = 1; s <= steps; s++) {
        train_step(t);
        if (!c)
            continue;
        /* As the training loop does it (src/train/train.c). */
        double c0 = now();
        int rc = TSR_OK;
        if (!tsr_ckpt_busy(c))
            rc = tsr_ckpt_wait(c);
        if (!rc && s % every == 0) {
            opt_steps = tsr_optim_steps_taken(t->optim);
            tsr_ckpt_meta_t m = {.step = base + s, .world_size = 1, .seed = 1};
            rc = tsr_ckpt_write(c, &m, mode == MODE_SYNC);
            res.writes++;
        }
        in_ckpt += now() - c0;
        if (rc)
            die("checkpoint write", rc);
    }
    if (c) {
        double c0 = now();
        int rc = tsr_ckpt_wait(c); /* the last write is part of the run */
        in_ckpt += now() - c0;
        if (rc)
            die("checkpoint write", rc);
    }
    double el = now() - t0;
    res.step_s = el / (double)steps;
    res.thread_cpu_s = (clock_s(CLOCK_THREAD_CPUTIME_ID) - tc0) / (double)steps;
    res.proc_cpu_s = (clock_s(CLOCK_PROCESS_CPUTIME_ID) - pc0) / (double)steps;
    res.caller_s = res.writes ? in_ckpt / res.writes : 0.0;
    if (c) {
        res.writer_s = tsr_ckpt_last_write_seconds(c);
        tsr_ckpt_destroy(c);
    }
    *step_base = base + steps;
    return res;
}

void bench_train(long steps, long every, int rounds, train_res_t *out)
{
    tsr_place_set_blas_threads(1);
    tsr_model_spec_t spec;
    tsr_model_spec_mlp(&spec, sizes, NLAYERS, TSR_ACT_RELU, TSR_LOSS_XENT);
    trainer_t t = {.batch = 128};
    int rc = tsr_model_create(&spec, t.batch, &t.model);
    if (rc)
        die("model", rc);
    tsr_model_init(t.model, 1);
    tsr_optim_config_t oc;
    memset(&oc, 0, sizeof oc);
    oc.kind = TSR_OPTIM_SGD;
    oc.lr = 0.01;
    oc.momentum = 0.9;
    oc.beta1 = 0.9;
    oc.beta2 = 0.999;
    oc.eps = 1e-8;
    oc.schedule = TSR_SCHED_CONSTANT;
    if ((rc = tsr_optim_create(&oc, tsr_model_nparams(t.model), &t.optim)))
        die("optimizer", rc);
    size_t nx = NBATCHES * t.batch * sizes[0];
    t.x = malloc(nx * sizeof *t.x);
    t.y = malloc(NBATCHES * t.batch * sizeof *t.y);
    if (!t.x || !t.y) {
        fprintf(stderr, "bench_ckpt: out of memory\n");
        exit(1);
    }
    tsr_rng_t rng;
    tsr_rng_seed(&rng, 1234, 0);
    for (size_t i = 0; i < nx; i++)
        t.x[i] = (float)tsr_rng_uniform(&rng);
    for (size_t i = 0; i < NBATCHES * t.batch; i++)
        t.y[i] = (int32_t)tsr_rng_below(&rng, sizes[NLAYERS]);

    long base = 0;
    train_run(&t, MODE_NONE, steps / 10 + 1, every, &base); /* warm-up */
    train_run(&t, MODE_ASYNC, every + 1, every, &base);
    double v[NMODES][MAX_REPS], ov[NMODES][MAX_REPS];
    double caller[NMODES][MAX_REPS], writer[NMODES][MAX_REPS];
    double tcpu[NMODES][MAX_REPS], tcov[NMODES][MAX_REPS], xcpu[NMODES][MAX_REPS];
    for (int r = 0; r < rounds; r++) {
        run_t res[NMODES];
        for (int k = 0; k < NMODES; k++) { /* none, async, sync; then rotated */
            int mode = (k + r) % NMODES;
            res[mode] = train_run(&t, mode, steps, every, &base);
            fprintf(stderr, "  round %d %-5s %.4f ms/step\n", r + 1, mode_name[mode], 1e3 * res[mode].step_s);
        }
        for (int m = 0; m < NMODES; m++) {
            v[m][r] = res[m].step_s;
            ov[m][r] = res[m].step_s / res[MODE_NONE].step_s - 1.0;
            caller[m][r] = res[m].caller_s;
            writer[m][r] = res[m].writer_s;
            tcpu[m][r] = res[m].thread_cpu_s;
            tcov[m][r] = res[m].thread_cpu_s / res[MODE_NONE].thread_cpu_s - 1.0;
            xcpu[m][r] = res[m].writes
                             ? (res[m].proc_cpu_s - res[MODE_NONE].proc_cpu_s) * (double)steps / (double)res[m].writes
                             : 0.0;
        }
        out->writes = res[MODE_ASYNC].writes;
        out->bytes = res[MODE_ASYNC].bytes;
    }
    for (int m = 0; m < NMODES; m++) {
        double best = v[m][0], best_none = v[MODE_NONE][0];
        for (int r = 1; r < rounds; r++) {
            best = v[m][r] < best ? v[m][r] : best;
            best_none = v[MODE_NONE][r] < best_none ? v[MODE_NONE][r] : best_none;
        }
        out->overhead_best[m] = best / best_none - 1.0;
        out->thread_cpu_s[m] = median(tcpu[m], rounds);
        out->thread_cpu_overhead[m] = median(tcov[m], rounds);
        out->extra_cpu_per_ckpt_s[m] = median(xcpu[m], rounds);
        out->step_s[m] = median(v[m], rounds);
        out->overhead[m] = median(ov[m], rounds);
        out->caller_s[m] = median(caller[m], rounds);
        out->writer_s[m] = median(writer[m], rounds);
    }
    for (int m = 0; m < NMODES; m++)
        out->overhead_of_medians[m] = out->step_s[m] / out->step_s[MODE_NONE] - 1.0;
    if (t.loss != t.loss)
        fprintf(stderr, "bench_ckpt: loss is NaN\n");
    tsr_model_destroy(t.model);
    tsr_optim_destroy(t.optim);
    free(t.x);
    free(t.y);
}
