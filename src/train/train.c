/* SPDX-License-Identifier: BSD-3-Clause */
/* A training run: set-up, resume, the loop, the model file, teardown. */
#include "train/setup.h"
#include "tessera/error.h"
#include "tessera/place.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int save_model(tsr_train_ctx_t *ctx, const tsr_train_result_t *res)
{
    char acc[32], loss[32], steps[32], world[16];
    snprintf(acc, sizeof acc, "%.6f", res->test_accuracy);
    snprintf(loss, sizeof loss, "%.6f", res->test_loss);
    snprintf(steps, sizeof steps, "%ld", res->steps);
    snprintf(world, sizeof world, "%d", ctx->world);
    const char *attrs[] = {"config", ctx->ckpt.config_text, "test_accuracy", acc,       "test_loss",   loss, "steps",
                           steps,    "world_size",          world,           "dataset", ctx->data.path};
    int rc = tsr_model_download(ctx->net.model);
    return rc ? rc : tsr_model_save(ctx->net.model, ctx->opt->train.output, attrs, 6);
}

/* How much of the gradient reduction backward hid, mean over ranks. */
static void report_comm(tsr_train_ctx_t *ctx)
{
    const tsr_train_comm_t *c = &ctx->comm;
    double in[2] = {c->exposed, c->hidden}, sum[2] = {0, 0};
    if (tsr_runtime_allreduce(ctx->rt, in, sum, 2, MPI_DOUBLE, MPI_SUM, "the reduction statistics", -1))
        return;
    double ref = tsr_comm_reference_seconds(c->engine), n = (double)c->steps * ctx->world;
    if (ctx->rank != 0 || c->steps == 0 || ref <= 0)
        return;
    tsr_log(TSR_LOG_INFO,
            "comm %s: a blocking allreduce of the gradients takes %.3f ms; per step the reduction "
            "cost %.3f ms on the critical path and %.3f ms (%.0f%%) was hidden behind backward (mean of %d ranks)",
            tsr_comm_backend(c->engine), 1e3 * ref, 1e3 * sum[0] / n, 1e3 * sum[1] / n, 100 * sum[1] / n / ref,
            ctx->world);
}

/* Resumed at the end of training. With the model file there, nothing is
 * trained, written or registered (already_done); without it, the model is
 * evaluated and written as the first run would have. Collective. */
static int finished_already(tsr_train_ctx_t *ctx, const tsr_train_pos_t *start, tsr_train_result_t *res)
{
    const char *out = ctx->opt->train.output;
    int present = ctx->rank == 0 && access(out, F_OK) == 0;
    int rc = tsr_runtime_bcast(ctx->rt, &present, 1, MPI_INT, 0, "the check for a finished run");
    if (rc)
        return rc;
    if (present) {
        res->steps = start->step;
        res->epochs = ctx->sched.stop_epoch;
        res->test_loss = res->test_accuracy = res->train_loss = NAN;
        tsr_log(TSR_LOG_INFO,
                "resume: the checkpoint is at step %ld, the end of this run (%ld epochs, %ld steps): "
                "training had finished; the model file %s and the registry are left as they are",
                start->step, ctx->sched.epochs, ctx->sched.total_steps, out);
        res->already_done = 1;
        return TSR_OK;
    }
    tsr_log(TSR_LOG_INFO,
            "resume: the checkpoint is at step %ld, the end of this run, but %s is missing: "
            "evaluating and writing it",
            start->step, out);
    return TSR_OK;
}

static void say_what(const tsr_train_ctx_t *ctx, size_t nparams)
{
    const tsr_train_sched_t *sc = &ctx->sched;
    const tsr_comm_t *c = ctx->comm.engine;
    char acc[80] = "", gemm[96], alg[48] = "";
    tsr_compute_gemm_describe(gemm, sizeof gemm);
    const char *a = c && tsr_comm_nbuckets(c) ? tsr_comm_algorithm(c, 0) : NULL;
    if (a) /* the first bucket's; auto may pick others for smaller ones */
        snprintf(alg, sizeof alg, ", %s", a);
    if (sc->accum > 1)
        snprintf(acc, sizeof acc, " (%zu micro-batches of %zu: global batch %zu)", sc->accum, sc->micro,
                 sc->batch * (size_t)ctx->world);
    tsr_log(TSR_LOG_INFO,
            "training %s: %zu samples x %zu features, model %zu parameters, %d ranks x batch %zu%s, "
            "%zu steps/epoch, comm %s (%zu buckets%s%s), %d BLAS thread%s per rank (GEMM: %s)",
            ctx->data.path, tsr_dataset_rows(ctx->data.train), tsr_dataset_dim(ctx->data.train), nparams, ctx->world,
            sc->batch, acc, sc->steps_per_epoch, tsr_comm_backend(c), tsr_comm_nbuckets(c), alg,
            tsr_comm_staged(c) ? ", GPU gradients staged through host memory" : "", sc->blas_threads,
            sc->blas_threads == 1 ? "" : "s", gemm);
    tsr_log(TSR_LOG_DEBUG, "%s: %s", tsr_runtime_hostname(ctx->rt), sc->placement);
}

/* After the loop: the model file (rank 0) and what the run says of itself. */
static int finish(tsr_train_ctx_t *ctx, tsr_train_result_t *res, int *failed_rank)
{
    report_comm(ctx);
    tsr_train_perf_report(ctx);
    int trc = tsr_train_trace_report(ctx); /* trace: the bottleneck report */
    if ((trc = tsr_runtime_agree(ctx->rt, trc, failed_rank)))
        return trc;
    /* With keep_best the best evaluation's weights, everywhere. */
    int rc = tsr_runtime_agree(ctx->rt, tsr_train_early_finish(ctx, res), failed_rank);
    if (!rc)
        rc = tsr_runtime_agree(ctx->rt, tsr_train_report_metrics(ctx), failed_rank);
    if (rc)
        return rc;
    res->skipped_steps = tsr_optim_skipped_steps(ctx->net.optim);
    res->scaler_skipped = ctx->amp.scaling ? (long)ctx->amp.scaler.skipped : 0;
    res->loss_scale = ctx->amp.scaling ? ctx->amp.scaler.scale : 0;
    if (ctx->ckpt.engine) {
        res->ckpt_written = tsr_ckpt_written(ctx->ckpt.engine);
        res->ckpt_failed = tsr_ckpt_failed(ctx->ckpt.engine);
    }
    /* Every rank holds the same weights; rank 0 writes them (the best
     * evaluation's with keep_best). */
    rc = ctx->rank == 0 ? save_model(ctx, res) : TSR_OK;
    return tsr_runtime_agree(ctx->rt, rc, failed_rank);
}

int tsr_train_run(tsr_runtime_t *rt, const tsr_train_options_t *opt, tsr_train_result_t *res, int *failed_rank)
{
    tsr_train_ctx_t ctx;
    tsr_train_pos_t start;
    double t0 = tsr_time_now();
    memset(res, 0, sizeof *res);
    res->best_step = -1;
    int rc = tsr_train_setup(&ctx, rt, opt, failed_rank);
    if (rc)
        goto out;
    res->nparams = tsr_model_nparams(ctx.net.model);
    say_what(&ctx, res->nparams);
    rc = tsr_train_ckpt_setup(&ctx);
    if ((rc = tsr_runtime_agree(rt, rc, failed_rank)))
        goto out;
    if ((rc = tsr_train_ckpt_resume(&ctx, &start, failed_rank)))
        goto out;
    if ((rc = tsr_train_monitor_setup(&ctx, failed_rank)) || (rc = tsr_train_perf_setup(&ctx, failed_rank)))
        goto out;
    if ((rc = tsr_train_trace_setup(&ctx))) /* trace: the timeline, clocks aligned */
        goto out;
    if (start.step >= ctx.sched.total_steps || start.epoch >= ctx.sched.stop_epoch || ctx.early.stopped) {
        /* A requeue of a job that had finished: its model file stays. */
        if ((rc = finished_already(&ctx, &start, res)) || res->already_done)
            goto out;
    }
    rc = tsr_train_loop(&ctx, &start, res);
    if (!rc && res->steps == start.step && ctx.data.test && opt->train.eval) /* nothing trained */
        rc = tsr_train_evaluate(&ctx, &res->test_loss, &res->test_accuracy, start.step);
    tsr_fault_point(&ctx.faults, ctx.rank, "end");
    if ((rc = tsr_runtime_agree(rt, ctx.sched.peer_failed ? TSR_OK : rc, failed_rank)))
        goto out;
    rc = finish(&ctx, res, failed_rank);
    res->wall_seconds = tsr_time_now() - t0;
    if (!rc) {
        tsr_train_snapshot_t done = {"done",
                                     res->steps,
                                     res->epochs,
                                     res->train_loss,
                                     res->test_loss,
                                     res->test_accuracy,
                                     res->samples_per_second};
        tsr_train_monitor_publish(&ctx, &done);
        tsr_train_monitor_finish(&ctx, opt->train.output, 1);
    }
out:
    tsr_train_trace_save(&ctx); /* trace: the timeline at the end, even of a failed run */
    tsr_train_trace_free(&ctx);
    tsr_train_teardown(&ctx);
    return rc;
}
