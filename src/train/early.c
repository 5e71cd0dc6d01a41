/* SPDX-License-Identifier: BSD-3-Clause */
/* Early stopping on a test metric and the best model: after each
 * evaluation the counters move the same way on every rank (the metric is a
 * global sum), rank 0 copies the weights of an improvement, and everything
 * is in the checkpoint so a requeued run continues the same count. */
#include "train/setup.h"
#include "tessera/error.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tsr_train_early_setup(tsr_train_ctx_t *ctx)
{
    const tsr_loop_options_t *t = &ctx->opt->train;
    const tsr_config_t *cfg = ctx->opt->config;
    tsr_train_early_t *e = &ctx->early;
    int plateau = ctx->opt->optim.schedule == TSR_SCHED_PLATEAU;
    /* Reduce-on-plateau watches the evaluations too: their step is kept so
     * that a resumed run makes the one its checkpoint came before. */
    e->on = t->early_stop_patience > 0 || t->keep_best || plateau;
    e->best = e->best_loss = e->best_accuracy = NAN;
    if (!e->on)
        return TSR_OK;
    const char *sect = t->early_stop_patience > 0 || t->keep_best ? "train" : "optim";
    const char *key = t->early_stop_patience > 0 ? "early_stop_patience" : t->keep_best ? "keep_best" : "schedule";
    if (!ctx->data.test || !t->eval)
        return tsr_error_set(TSR_EINVAL,
                             "[%s] %s (%s) watches the test split, but %s; give [data] test_path "
                             "(or /X_test in the dataset) and leave train.eval = true",
                             sect, key, tsr_config_origin(cfg, sect, key),
                             !ctx->data.test ? "this run has none" : "train.eval = false");
    if (t->early_stop_accuracy && !tsr_dataset_is_labels(ctx->data.train))
        return tsr_error_set(TSR_EINVAL,
                             "[train] early_stop_metric = accuracy (%s) needs class labels; %s has float "
                             "targets: use loss",
                             tsr_config_origin(cfg, "train", "early_stop_metric"), ctx->data.path);
    if (!(t->early_stop_min_delta >= 0))
        return tsr_error_set(TSR_EINVAL, "[train] early_stop_min_delta = %g (%s): expected a value >= 0",
                             t->early_stop_min_delta, tsr_config_origin(cfg, "train", "early_stop_min_delta"));
    e->nparams = tsr_model_nparams(ctx->net.model);
    tsr_model_buffers(ctx->net.model, &e->nbuffers);
    if (t->keep_best && ctx->rank == 0) {
        size_t n = e->nparams + e->nbuffers;
        e->best_params = malloc((n ? n : 1) * sizeof(float));
        if (!e->best_params)
            return tsr_error_set(TSR_ENOMEM, "out of memory for the best model's copy (%zu floats)", n);
    }
    return TSR_OK;
}

int tsr_train_early_register(tsr_train_ctx_t *ctx)
{
    tsr_train_early_t *e = &ctx->early;
    tsr_ckpt_t *c = ctx->ckpt.engine;
    size_t one = 1, n = e->nparams + e->nbuffers;
    int64_t *ints[] = {&e->best_step, &e->bad, &e->stopped, &e->eval_step};
    const char *names[] = {"/early/best_step", "/early/bad", "/early/stopped", "/early/eval_step"};
    int rc = TSR_OK;
    if (!e->on || !c)
        return TSR_OK;
    for (int i = 0; i < 4 && !rc; i++)
        rc = tsr_ckpt_register(c, names[i], ints[i], TSR_CKPT_INT64, 1, &one);
    if (!rc)
        rc = tsr_ckpt_register(c, "/early/best", &e->best, TSR_CKPT_FLOAT64, 1, &one);
    if (!rc)
        rc = tsr_ckpt_register(c, "/early/best_loss", &e->best_loss, TSR_CKPT_FLOAT64, 1, &one);
    if (!rc)
        rc = tsr_ckpt_register(c, "/early/best_accuracy", &e->best_accuracy, TSR_CKPT_FLOAT64, 1, &one);
    if (!rc && e->best_params)
        rc = tsr_ckpt_register(c, "/early/best_weights", e->best_params, TSR_CKPT_FLOAT32, 1, &n);
    return rc;
}

/* Rank 0: the model's weights and buffers now, into the best copy. */
static int keep(tsr_train_ctx_t *ctx)
{
    tsr_train_early_t *e = &ctx->early;
    size_t nb;
    if (!e->best_params)
        return TSR_OK;
    int rc = tsr_model_download(ctx->net.model);
    if (rc)
        return tsr_error_prefix(rc, "keeping the best model: ");
    memcpy(e->best_params, tsr_model_params(ctx->net.model), e->nparams * sizeof(float));
    const float *b = tsr_model_buffers(ctx->net.model, &nb);
    if (nb)
        memcpy(e->best_params + e->nparams, b, nb * sizeof(float));
    return TSR_OK;
}

int tsr_train_early_observe(tsr_train_ctx_t *ctx, long step, double loss, double accuracy, int *stop)
{
    const tsr_loop_options_t *t = &ctx->opt->train;
    tsr_train_early_t *e = &ctx->early;
    *stop = 0;
    if (!e->on)
        return TSR_OK;
    e->eval_step = step;
    /* The test loss is global: every rank's schedule decides alike. */
    if (ctx->opt->optim.schedule == TSR_SCHED_PLATEAU)
        tsr_optim_observe(ctx->net.optim, loss);
    double m = t->early_stop_accuracy ? accuracy : loss, d = t->early_stop_min_delta;
    int better = isnan(e->best) || (t->early_stop_accuracy ? m > e->best + d : m < e->best - d);
    if (better) {
        e->best = m;
        e->best_loss = loss;
        e->best_accuracy = accuracy;
        e->best_step = step;
        e->bad = 0;
        return keep(ctx);
    }
    e->bad++;
    if (t->early_stop_patience > 0 && e->bad >= t->early_stop_patience) {
        e->stopped = 1;
        *stop = 1;
        tsr_log(TSR_LOG_INFO,
                "early stopping at step %ld: the test %s has not improved by more than %g in %ld "
                "evaluations; the best, %.6g, was at step %lld",
                step, t->early_stop_accuracy ? "accuracy" : "loss", d, (long)e->bad, e->best, (long long)e->best_step);
    }
    return TSR_OK;
}

int tsr_train_early_resumed(tsr_train_ctx_t *ctx)
{
    tsr_train_early_t *e = &ctx->early;
    if (!e->on)
        return TSR_OK;
    double d[3] = {e->best, e->best_loss, e->best_accuracy};
    int64_t i[4] = {e->best_step, e->bad, e->stopped, e->eval_step};
    int rc = tsr_runtime_bcast(ctx->rt, d, 3, MPI_DOUBLE, 0, "the checkpoint broadcast");
    if (!rc)
        rc = tsr_runtime_bcast(ctx->rt, i, 4, MPI_INT64_T, 0, "the checkpoint broadcast");
    e->best = d[0], e->best_loss = d[1], e->best_accuracy = d[2];
    e->best_step = i[0], e->bad = i[1], e->stopped = i[2], e->eval_step = i[3];
    return rc;
}

int tsr_train_early_finish(tsr_train_ctx_t *ctx, tsr_train_result_t *res)
{
    tsr_train_early_t *e = &ctx->early;
    res->best_step = e->on && !isnan(e->best) ? e->best_step : -1;
    res->early_stopped = (int)e->stopped;
    if (!ctx->opt->train.keep_best || isnan(e->best))
        return TSR_OK;
    /* Rank 0 kept them; every rank gets them, for the final report's metrics. */
    size_t nb;
    float *p = tsr_model_params(ctx->net.model), *b = tsr_model_buffers(ctx->net.model, &nb);
    int rc = tsr_model_download(ctx->net.model);
    if (!rc && e->best_params) {
        memcpy(p, e->best_params, e->nparams * sizeof(float));
        if (nb)
            memcpy(b, e->best_params + e->nparams, nb * sizeof(float));
    }
    if (!rc)
        rc = tsr_runtime_bcast(ctx->rt, p, (int)e->nparams, MPI_FLOAT, 0, "the best model's broadcast");
    if (!rc && nb)
        rc = tsr_runtime_bcast(ctx->rt, b, (int)nb, MPI_FLOAT, 0, "the best model's broadcast");
    if (!rc)
        rc = tsr_model_upload(ctx->net.model);
    if (rc)
        return tsr_error_prefix(rc, "rank %d: the best model: ", ctx->rank);
    char acc[48] = "";
    if (!isnan(e->best_accuracy))
        snprintf(acc, sizeof acc, ", accuracy %.2f%%", 100 * e->best_accuracy);
    tsr_log(TSR_LOG_INFO,
            "keep_best: the model file holds the weights of step %lld (test loss %.4f%s), not those "
            "of the last step, %ld (test loss %.4f)",
            (long long)e->best_step, e->best_loss, acc, res->steps, res->test_loss);
    res->test_loss = e->best_loss;
    res->test_accuracy = e->best_accuracy;
    return TSR_OK;
}

void tsr_train_early_free(tsr_train_ctx_t *ctx)
{
    free(ctx->early.best_params);
    ctx->early.best_params = NULL;
}
